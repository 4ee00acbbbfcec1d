//! The [`Stage`] trait and what stages work on: [`PipelineEntry`], [`Outcome`], [`DropCounter`].
//!
//! Invariants:
//! - a `PipelineEntry` exists only inside the pipeline; its extracted map never crosses a
//!   channel;
//! - a stage can only drop an entry by returning [`Outcome::Drop`], whose payload can only be
//!   made by [`DropCounter::count`]: every deliberate drop is counted in
//!   `logentry_dropped_lines_total{reason}` (DESIGN.md contract 4), and dropping the entry is what
//!   acknowledges it (contract 2).

use std::sync::Arc;
use std::time::Instant;

use prometheus::IntCounter;

use super::extracted::Extracted;
use crate::entry::{Entry, LabelSet};
use crate::metrics::Metrics;

/// An entry on its way through the pipeline, with the extracted map of its stages.
#[derive(Debug)]
pub struct PipelineEntry {
    /// The entry (labels, timestamp, line, structured metadata, ack).
    pub entry: Entry,
    /// The shared scratch data of the stages, seeded with the entry's initial labels.
    pub extracted: Extracted,
}

impl PipelineEntry {
    /// Wraps `entry` with an extracted map seeded from its labels.
    pub fn new(entry: Entry) -> Self {
        let extracted = Extracted::new(entry.labels.clone());
        PipelineEntry { entry, extracted }
    }
}

/// Proof that a drop was counted (only [`DropCounter::count`] makes one).
#[derive(Debug)]
pub struct Counted(());

/// What a stage did with an entry.
#[derive(Debug)]
#[must_use]
pub enum Outcome {
    /// Pass the (possibly changed) entry to the next stage.
    Keep,
    /// Drop the entry; the drop has been counted.
    Drop(Counted),
    /// The stage keeps the entry for later (buffering stages such as `multiline`); nothing goes
    /// on now. The stage must have moved the entry's content out (e.g. with `std::mem::replace`)
    /// and will release it from a later `process` or from `flush`.
    Held,
}

/// One pipeline stage. Stages run synchronously, in order, on one entry at a time.
pub trait Stage: Send {
    /// Processes one entry in place.
    ///
    /// Buffering stages may push entries they held earlier to `released`; those come *before*
    /// `entry` in the stream and go on to the next stage first. Other stages ignore `released`.
    fn process(&mut self, entry: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome;

    /// Releases held entries: all of them when `now` is `None` (end of input, shutdown), else
    /// those whose wait has timed out at `now`. Stateless stages hold nothing.
    fn flush(&mut self, now: Option<Instant>, released: &mut Vec<PipelineEntry>) {
        let _ = (now, released);
    }

    /// Releases what is held for the one stream whose initial labels are `labels` (its file
    /// was released: end of a rotated file, deletion, target gone). Stages that hold entries
    /// per stream release that stream's; containers of stages (`match`) forward the call.
    fn flush_stream(&mut self, labels: &LabelSet, released: &mut Vec<PipelineEntry>) {
        let _ = (labels, released);
    }

    /// Whether `process` may block the calling thread (the `limit` stage without `drop`
    /// waits for its rate). The runtime then runs the pipeline with
    /// `tokio::task::block_in_place`.
    fn may_block(&self) -> bool {
        false
    }
}

/// A pre-resolved `logentry_dropped_lines_total{reason}` series.
#[derive(Clone, Debug)]
pub struct DropCounter(IntCounter);

impl DropCounter {
    /// The series for `reason`.
    pub fn new(metrics: &Metrics, reason: &str) -> Self {
        DropCounter(metrics.logentry_dropped_lines.with_label_values(&[reason]))
    }

    /// Counts one dropped entry and returns the outcome that drops it.
    pub fn count(&self) -> Outcome {
        self.0.inc();
        Outcome::Drop(Counted(()))
    }
}

/// What a stage's constructor may use besides its own YAML body.
#[derive(Clone)]
pub struct BuildContext {
    /// The scrape job's name.
    pub job: String,
    /// Where the stage is in the config, e.g. `scrape_configs[0].pipeline_stages[2].json`
    /// (for warnings).
    pub path: String,
    /// Every metric family.
    pub metrics: Arc<Metrics>,
}

impl BuildContext {
    /// A drop counter for `reason`.
    pub fn drop_counter(&self, reason: &str) -> DropCounter {
        DropCounter::new(&self.metrics, reason)
    }
}
