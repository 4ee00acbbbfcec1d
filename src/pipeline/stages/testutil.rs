//! Helpers for stage tests: pipelines from YAML snippets, entries from label pairs.

use std::sync::Arc;

use bytes::Bytes;

use std::time::Instant;

use crate::entry::{Ack, Entry, LabelSet, Timestamp};
use crate::metrics::Metrics;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::{Pipeline, PipelineError};

/// The read time given to test entries.
pub const READ_TIME: Timestamp = Timestamp(1_000_000_000);

/// Parses a YAML list of stages.
pub fn stages_yaml(yaml: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML {yaml:?}: {e}"))
}

/// A pipeline (job `test`, path `p`) from a YAML list of stages, with its metrics.
pub fn pipeline_and_metrics(yaml: &str) -> (Pipeline, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let p = Pipeline::new("test", &stages_yaml(yaml), "p", Arc::clone(&metrics))
        .unwrap_or_else(|e| panic!("pipeline {yaml:?} refused: {e}"));
    (p, metrics)
}

/// A pipeline from a YAML list of stages.
pub fn pipeline(yaml: &str) -> Pipeline {
    pipeline_and_metrics(yaml).0
}

/// The error text of a pipeline that must be refused.
pub fn pipeline_err(yaml: &str) -> String {
    match Pipeline::new("test", &stages_yaml(yaml), "p", Arc::new(Metrics::new())) {
        Ok(_) => panic!("pipeline {yaml:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

/// The typed error of a pipeline that must be refused.
pub fn pipeline_error(yaml: &str) -> PipelineError {
    match Pipeline::new("test", &stages_yaml(yaml), "p", Arc::new(Metrics::new())) {
        Ok(_) => panic!("pipeline {yaml:?} was accepted"),
        Err(e) => e,
    }
}

/// An entry with `labels` and `line`, read at [`READ_TIME`].
pub fn entry_with(labels: &[(&str, &str)], line: Bytes) -> Entry {
    Entry::new(
        LabelSet::from_pairs(labels.iter().copied()),
        READ_TIME,
        line,
        Ack::none(),
    )
}

/// Runs one entry through `p`.
pub fn run_entry(p: &mut Pipeline, e: Entry) -> Vec<Entry> {
    let mut out = Vec::new();
    p.process(e, &mut out);
    out
}

/// Runs one line through `p`, expecting exactly one entry out.
pub fn run_one(p: &mut Pipeline, labels: &[(&str, &str)], line: &str) -> Entry {
    let mut out = run_entry(
        p,
        entry_with(labels, Bytes::copy_from_slice(line.as_bytes())),
    );
    assert_eq!(out.len(), 1, "expected one entry out for {line:?}");
    out.remove(0)
}

/// Runs the stages of `yaml` on one line and returns the entry with its extracted map (`None`
/// when a stage dropped it).
pub fn run_stages(yaml: &str, labels: &[(&str, &str)], line: &str) -> Option<PipelineEntry> {
    let mut p = pipeline(yaml);
    let mut pe = PipelineEntry::new(entry_with(labels, Bytes::copy_from_slice(line.as_bytes())));
    for stage in &mut p.stages {
        let mut released = Vec::new();
        match stage.process(&mut pe, &mut released) {
            Outcome::Keep => {}
            Outcome::Drop(_) | Outcome::Held => return None,
        }
        assert!(released.is_empty());
    }
    Some(pe)
}

/// The line as text.
pub fn line(e: &Entry) -> &str {
    std::str::from_utf8(&e.line).expect("test lines are UTF-8")
}

/// Asserts the entry's labels are exactly `expected`.
pub fn assert_labels(e: &Entry, expected: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = e.labels.iter().collect();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(got, want, "labels");
}

/// A stand-in for a buffering stage (`multiline`): holds every entry whose line is `hold` and
/// releases the held ones before the next entry, on a flush, or on a flush of their stream
/// (entries whose labels equal the flushed ones). `blocks` is what `may_block` answers.
#[derive(Default)]
pub struct Holding {
    /// The held entries.
    pub held: Vec<PipelineEntry>,
    /// The answer of `may_block`.
    pub blocks: bool,
}

impl Stage for Holding {
    fn process(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        released.append(&mut self.held);
        if &pe.entry.line[..] == b"hold" {
            let taken = std::mem::replace(pe, PipelineEntry::new(entry_with(&[], Bytes::new())));
            self.held.push(taken);
            return Outcome::Held;
        }
        Outcome::Keep
    }

    fn flush(&mut self, _now: Option<Instant>, released: &mut Vec<PipelineEntry>) {
        released.append(&mut self.held);
    }

    fn flush_stream(&mut self, labels: &LabelSet, released: &mut Vec<PipelineEntry>) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|pe| pe.entry.labels == *labels);
        self.held = rest;
        released.extend(mine);
    }

    fn may_block(&self) -> bool {
        self.blocks
    }
}

/// The build context of a stage of type `stage` built directly (job `test`, path
/// `p[0].<stage>`), with its metrics.
pub fn build_context(stage: &str) -> (BuildContext, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let cx = BuildContext {
        job: "test".into(),
        path: format!("p[0].{stage}"),
        metrics: Arc::clone(&metrics),
    };
    (cx, metrics)
}
