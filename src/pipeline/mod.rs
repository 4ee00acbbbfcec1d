//! The pipeline of a scrape job: Promtail's `pipeline_stages`, run synchronously, stage after
//! stage, on one entry at a time (spec §7).
//!
//! Responsibilities and invariants:
//! - [`Pipeline::new`] validates the whole stage list at load, with Promtail's error texts,
//!   prefixed with the YAML path of the stage (`scrape_configs[0].pipeline_stages[2].json:
//!   invalid json stage config: ...`); every stage type of Promtail is implemented, an unknown
//!   one is refused, never ignored;
//! - every entry handed to [`Pipeline::process`] either comes out in `out` or is dropped by a
//!   stage that counted it (`logentry_dropped_lines_total{reason}`); dropping the `Entry` is what
//!   acknowledges it, so a deliberate drop lets the file position advance (DESIGN.md contract 2);
//! - the extracted map starts as the entry's labels (shared, not copied) and is discarded at the
//!   end; one map allocation is reused for every line;
//! - only buffering stages (`multiline`, `cri`) hold entries; [`Pipeline::flush`] and
//!   [`Pipeline::flush_all`] release them in order through the remaining stages.

use std::sync::Arc;
use std::time::Instant;

use serde_yaml::Value;

use crate::entry::{Entry, LabelSet};
use crate::metrics::Metrics;

pub mod decode;
pub mod extracted;
pub mod gotemplate;
pub mod gotime;
pub mod jsonscan;
pub mod jsonx;
pub mod lru;
pub mod memo;
pub mod re2;
pub mod readline_limit;
pub mod stage;
pub mod stages;
pub mod stream_clock;

pub use extracted::{Extracted, Key, Text, Value as ExtractedValue, ValueRef};
pub use stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
pub use stages::StageType;

/// A pipeline configuration error (fatal at load, like Promtail's).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A list element is not a mapping.
    #[error(
        "{path}: invalid YAML config, make sure each stage of your pipeline is a YAML object (must end with a `:`), check stage `- {stage}`"
    )]
    NotAMapping {
        /// YAML path of the element.
        path: String,
        /// The element as written.
        stage: String,
    },
    /// A stage mapping has more than one key.
    #[error("{path}: pipeline stage must contain only one key")]
    TooManyKeys {
        /// YAML path of the element.
        path: String,
    },
    /// A stage key is not a string.
    #[error("{path}: pipeline stage key must be a string")]
    KeyNotString {
        /// YAML path of the element.
        path: String,
    },
    /// A stage type Promtail does not know.
    #[error("{path}: Unknown stage type: {stage}")]
    UnknownStage {
        /// YAML path of the element.
        path: String,
        /// The key.
        stage: String,
    },
    /// The stage's body is invalid.
    #[error("{path}.{stage}: invalid {stage} stage config: {reason}")]
    InvalidConfig {
        /// YAML path of the element.
        path: String,
        /// The stage type.
        stage: String,
        /// What is wrong (Promtail's text where it has one).
        reason: String,
    },
}

/// A scrape job's pipeline.
pub struct Pipeline {
    job: String,
    stages: Vec<Box<dyn Stage>>,
    /// A spare extracted map, so its allocation is reused from line to line.
    spare: Option<Extracted>,
    /// Reused buffer of finished entries.
    scratch: Vec<PipelineEntry>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("job", &self.job)
            .field("stages", &self.stages.len())
            .finish()
    }
}

/// Renders a YAML value on one line for error messages.
fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_default(),
    }
}

/// Builds the stages of a `pipeline_stages` list (also the nested `stages` of `match`).
/// `yaml_path` is where the list is in the config (e.g. `scrape_configs[0].pipeline_stages`);
/// errors name `<yaml_path>[i].<stage>`.
pub fn build_stages(
    job: &str,
    stages: &[Value],
    yaml_path: &str,
    metrics: &Arc<Metrics>,
) -> Result<Vec<Box<dyn Stage>>, PipelineError> {
    let mut built = Vec::with_capacity(stages.len());
    for (i, element) in stages.iter().enumerate() {
        let path = format!("{yaml_path}[{i}]");
        let map = match element {
            Value::Tagged(t) => t.value.as_mapping(),
            other => other.as_mapping(),
        };
        let Some(map) = map else {
            return Err(PipelineError::NotAMapping {
                path,
                stage: yaml_inline(element),
            });
        };
        if map.len() > 1 {
            return Err(PipelineError::TooManyKeys { path });
        }
        // An empty mapping (`- {}`) is no stage at all; Promtail accepts it the same way.
        let Some((key, body)) = map.iter().next() else {
            continue;
        };
        let Some(name) = key.as_str() else {
            return Err(PipelineError::KeyNotString { path });
        };
        let Some(ty) = StageType::from_name(name) else {
            return Err(PipelineError::UnknownStage {
                path,
                stage: name.to_string(),
            });
        };
        let cx = BuildContext {
            job: job.to_string(),
            path: format!("{path}.{name}"),
            metrics: Arc::clone(metrics),
        };
        match stages::build(ty, body, &cx) {
            Ok(stage) => built.push(stage),
            Err(stages::BuildError::Invalid(reason)) => {
                return Err(PipelineError::InvalidConfig {
                    path,
                    stage: name.to_string(),
                    reason,
                });
            }
            Err(stages::BuildError::Nested(e)) => return Err(*e),
        }
    }
    Ok(built)
}

/// Runs `pe` through `stages[from..]`, pushing what comes out to `out` (entries released by
/// buffering stages first, in stream order). A dropped or held entry's extracted map goes to
/// `spare` for reuse.
pub fn run_stages(
    stages: &mut [Box<dyn Stage>],
    from: usize,
    mut pe: PipelineEntry,
    out: &mut Vec<PipelineEntry>,
    spare: &mut Option<Extracted>,
) {
    for i in from..stages.len() {
        let mut released = Vec::new();
        let outcome = stages[i].process(&mut pe, &mut released);
        // Entries a buffering stage released come before this one.
        for earlier in released {
            run_stages(stages, i + 1, earlier, out, spare);
        }
        match outcome {
            Outcome::Keep => {}
            Outcome::Drop(_) | Outcome::Held => {
                if spare.is_none() {
                    *spare = Some(pe.extracted);
                }
                return; // dropping `pe.entry` here acknowledges it
            }
        }
    }
    out.push(pe);
}

/// Releases held entries of `stages` (timed out at `now`, or all when `None`) through the
/// stages after the one that held them.
pub fn flush_stages(
    stages: &mut [Box<dyn Stage>],
    now: Option<Instant>,
    out: &mut Vec<PipelineEntry>,
    spare: &mut Option<Extracted>,
) {
    for i in 0..stages.len() {
        let mut released = Vec::new();
        stages[i].flush(now, &mut released);
        for pe in released {
            run_stages(stages, i + 1, pe, out, spare);
        }
    }
}

/// Releases what `stages` hold for the stream `labels` through the stages after them.
pub fn flush_stream_stages(
    stages: &mut [Box<dyn Stage>],
    labels: &LabelSet,
    out: &mut Vec<PipelineEntry>,
    spare: &mut Option<Extracted>,
) {
    for i in 0..stages.len() {
        let mut released = Vec::new();
        stages[i].flush_stream(labels, &mut released);
        for pe in released {
            run_stages(stages, i + 1, pe, out, spare);
        }
    }
}

impl Pipeline {
    /// Builds the pipeline of job `job` from its `pipeline_stages` list (see [`build_stages`]).
    pub fn new(
        job: &str,
        stages: &[Value],
        yaml_path: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Pipeline, PipelineError> {
        Ok(Pipeline {
            job: job.to_string(),
            stages: build_stages(job, stages, yaml_path, &metrics)?,
            spare: None,
            scratch: Vec::new(),
        })
    }

    /// The job this pipeline belongs to.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the pipeline has no stages (entries pass unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Whether a stage may block the calling thread (see [`Stage::may_block`]).
    pub fn may_block(&self) -> bool {
        self.stages.iter().any(|s| s.may_block())
    }

    /// Runs one entry through every stage and pushes what comes out to `out`: usually the one
    /// entry, none when a stage dropped it (counted) or holds it, several when a buffering stage
    /// released earlier entries.
    pub fn process(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        if self.stages.is_empty() {
            out.push(entry);
            return;
        }
        let mut extracted = self.spare.take().unwrap_or_default();
        extracted.reset(entry.labels.clone());
        let mut scratch = std::mem::take(&mut self.scratch);
        run_stages(
            &mut self.stages,
            0,
            PipelineEntry { entry, extracted },
            &mut scratch,
            &mut self.spare,
        );
        self.drain(&mut scratch, out);
        self.scratch = scratch;
    }

    /// Releases the entries buffering stages have held past their timeout at `now`, through
    /// the stages after them.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Entry>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        flush_stages(&mut self.stages, Some(now), &mut scratch, &mut self.spare);
        self.drain(&mut scratch, out);
        self.scratch = scratch;
    }

    /// Releases every held entry (end of input, shutdown).
    pub fn flush_all(&mut self, out: &mut Vec<Entry>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        flush_stages(&mut self.stages, None, &mut scratch, &mut self.spare);
        self.drain(&mut scratch, out);
        self.scratch = scratch;
    }

    /// Releases every entry held for the stream `labels` (its file was released).
    pub fn flush_stream(&mut self, labels: &LabelSet, out: &mut Vec<Entry>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        flush_stream_stages(&mut self.stages, labels, &mut scratch, &mut self.spare);
        self.drain(&mut scratch, out);
        self.scratch = scratch;
    }

    /// Moves finished entries to `out`, keeping one extracted map for reuse.
    fn drain(&mut self, scratch: &mut Vec<PipelineEntry>, out: &mut Vec<Entry>) {
        for pe in scratch.drain(..) {
            if self.spare.is_none() {
                self.spare = Some(pe.extracted);
            }
            out.push(pe.entry);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
