//! The periodic positions writer task.
//!
//! Every `sync_period` it saves the positions (a no-op when nothing changed) and then forgets
//! files that no longer exist (spec §6.2, §6.4), both on a blocking thread. It does not save on
//! shutdown: the final save belongs after the last entries have been flushed and acknowledged,
//! so the caller runs [`Positions::save`] itself at that point.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::store::Positions;

/// The shortest period the writer accepts; a shorter one (e.g. `0s`) is raised to this, since
/// every period also `stat`s every file in the map.
pub const MIN_SYNC_PERIOD: Duration = Duration::from_millis(100);

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

    /// Runs until `shutdown` is cancelled. The first save happens one period after the start.
    /// A save in progress is finished before this returns. Write errors are logged and counted
    /// by [`Positions::save`] and retried at the next period.
    pub async fn run(self, shutdown: CancellationToken) {
        let period = self.sync_period;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        // After a slow save (e.g. a hung NFS mount), wait a full period rather than catching up
        // with a burst of saves.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let positions = Arc::clone(&self.positions);
            let done = tokio::task::spawn_blocking(move || {
                // The error is already logged and counted; the next period retries.
                let _ = positions.save();
                positions.cleanup();
            })
            .await;
            if let Err(e) = done {
                error!(error = %e, "The positions save task failed.");
            }
        }
    }
}
