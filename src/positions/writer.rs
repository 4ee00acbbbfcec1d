//! The positions writer task.
//!
//! It saves as soon as something a save writes has changed (a commit, a generation added or
//! left: [`Positions::dirty`]), and in any case every `sync_period` (spec §6.2); what a `kill -9`
//! re-sends is then what was in flight, not what was acknowledged but not yet written down.
//! Saves are coalesced: one at a time, and the next one started by changes waits at least
//! [`MIN_SAVE_GAP`] and as long as the last one took, so commits that come faster are written
//! together and saving, even a large file (10,000 paths) under a stream of commits, keeps one
//! thread at most half busy (most of a small save is waiting for `fsync`). Every `sync_period`
//! it also forgets files that no longer exist (spec §6.4). All file work is on a blocking
//! thread. It does not save on shutdown: the final save belongs after the last entries have
//! been flushed and acknowledged, so the caller runs [`Positions::save`] itself at that point.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::file::Positions;
use crate::ack::StampGate;

/// The shortest period the writer accepts; a shorter one (e.g. `0s`) is raised to this, since
/// every period also `stat`s every file in the map.
pub const MIN_SYNC_PERIOD: Duration = Duration::from_millis(100);

/// The shortest time between two saves started by changes: commits that come faster are
/// written together. Short, because at a backlog's pace (300,000 lines/s against a local
/// Loki) every millisecond between an acknowledgement and its save is 300 lines a crash would
/// send again; a save of a small positions file takes about a millisecond.
pub const MIN_SAVE_GAP: Duration = Duration::from_millis(5);

/// Saves the positions every sync period until shut down.
#[derive(Debug)]
pub struct PositionsWriter {
    positions: Arc<Positions>,
    sync_period: Duration,
}

impl PositionsWriter {
    /// A writer for `positions` that saves every `sync_period` (at least [`MIN_SYNC_PERIOD`]).
    pub fn new(positions: Arc<Positions>, sync_period: Duration) -> Self {
        PositionsWriter {
            positions,
            sync_period: sync_period.max(MIN_SYNC_PERIOD),
        }
    }

    /// Runs until `shutdown` is cancelled: saves soon after each change, and every period
    /// (with the cleanup of vanished files). A save in progress is finished before this
    /// returns. Write errors are logged and counted by [`Positions::save`] and retried at the
    /// next change or period.
    pub async fn run(self, shutdown: CancellationToken) {
        // No save comes after this task: senders waiting for one go ahead.
        let _open_gate = OpenGateOnDrop(Arc::clone(self.positions.gate()));
        let period = self.sync_period;
        let dirty = self.positions.dirty();
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        // After a slow save (e.g. a hung NFS mount), wait a full period rather than catching up
        // with a burst of saves.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let mut last_took = Duration::ZERO;
        // After a failed save (full disk, read-only mount), changes wait for the next period:
        // one error a period in the log, not twenty a second.
        let mut failing = false;
        loop {
            let periodic = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => true,
                _ = dirty.notified(), if !failing => false,
            };
            if !periodic {
                // Changes that arrive meanwhile leave a permit behind: the next round saves them.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(last_save + gap(last_took, period)) => {}
                }
            }
            let positions = Arc::clone(&self.positions);
            let done = tokio::task::spawn_blocking(move || {
                // The cost of the save itself, not the wait for a blocking thread.
                let started = std::time::Instant::now();
                // The error is already logged and counted; a later round retries.
                let saved = positions.save().is_ok();
                let took = started.elapsed();
                if periodic {
                    positions.cleanup();
                }
                (saved, took)
            })
            .await;
            last_save = Instant::now();
            failing = match done {
                Ok((saved, took)) => {
                    last_took = took;
                    !saved
                }
                Err(e) => {
                    error!(error = %e, "The positions save task failed.");
                    true
                }
            };
        }
    }
}

struct OpenGateOnDrop(Arc<StampGate>);

impl Drop for OpenGateOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// How long a save started by changes waits after the last one, which took `took`.
fn gap(took: Duration, period: Duration) -> Duration {
    MIN_SAVE_GAP.max(took).min(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_follows_the_cost_of_a_save_within_the_period() {
        let period = Duration::from_secs(10);
        assert_eq!(gap(Duration::ZERO, period), MIN_SAVE_GAP);
        assert_eq!(gap(Duration::from_micros(800), period), MIN_SAVE_GAP);
        assert_eq!(
            gap(Duration::from_millis(30), period),
            Duration::from_millis(30)
        );
        assert_eq!(gap(Duration::from_secs(60), period), period);
    }
}
