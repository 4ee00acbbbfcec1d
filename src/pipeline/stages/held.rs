//! What the buffering stages (`multiline`, `cri`) share about the lines they hold: the merged
//! acknowledgement, an idle timer driven by the runtime's flush ticks, and which streams (files,
//! by their initial labels) the lines came from, for [`Stage::flush_stream`].
//!
//! The idle timer starts at the first flush tick that sees the held lines idle (ticks come every
//! 500 ms) and expires `wait` later, so nothing reads the clock per line and tests drive it with
//! injected instants.
//!
//! [`Stage::flush_stream`]: crate::pipeline::Stage::flush_stream

use std::time::{Duration, Instant};

use crate::entry::{Ack, LabelSet};
use crate::pipeline::stage::PipelineEntry;

/// Bookkeeping of held lines.
#[derive(Debug, Default)]
pub(crate) struct Held {
    ack: Ack,
    idle_since: Option<Instant>,
    origins: Vec<LabelSet>,
}

impl Held {
    /// Takes `pe`'s acknowledgement into the held one, notes the stream it came from, and
    /// restarts the idle timer.
    pub(crate) fn add(&mut self, pe: &mut PipelineEntry) {
        self.ack
            .merge(std::mem::replace(&mut pe.entry.ack, Ack::none()));
        let origin = pe.extracted.seed();
        if !self.origins.iter().any(|o| o == origin) {
            self.origins.push(origin.clone());
        }
        self.idle_since = None;
    }

    /// The merged acknowledgement of everything held so far (the timer stops).
    pub(crate) fn take_ack(&mut self) -> Ack {
        self.idle_since = None;
        std::mem::take(&mut self.ack)
    }

    /// Called on a flush tick at `now`: whether the held lines have been idle for `wait`.
    pub(crate) fn expired(&mut self, now: Instant, wait: Duration) -> bool {
        match self.idle_since {
            None => {
                self.idle_since = Some(now);
                false
            }
            Some(since) => now.saturating_duration_since(since) >= wait,
        }
    }

    /// Whether lines of stream `labels` were added; forgets that stream.
    pub(crate) fn forget_origin(&mut self, labels: &LabelSet) -> bool {
        let before = self.origins.len();
        self.origins.retain(|o| o != labels);
        self.origins.len() != before
    }

    /// Whether no stream is remembered any more.
    pub(crate) fn no_origin(&self) -> bool {
        self.origins.is_empty()
    }
}
