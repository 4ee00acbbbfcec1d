//! File discovery and tailing: globs → open files → chunks of lines → one channel per job.
//!
//! ```text
//!  Tailer::run ─┬─ discovery: re-glob at start, every sync_period, on fs create events
//!               │     (one notify watcher for all watched directories)
//!               ├─ poller: one stat() per idle file per poll interval, wakes readers on change
//!               └─ readers (one tokio task per open file; reads in spawn_blocking)
//!                     budget permits ─► read chunk ─► LineBuffer ─► Vec<Entry> ─► job channel
//!                     (then `Released(labels)` when the reader lets its file go)
//! ```
//!
//! Invariants:
//! - a file's committed position only moves when the entries of a chunk are dropped (acknowledged):
//!   every chunk is registered with the file's ack [`Tracker`](crate::ack::Tracker)
//!   at the end offset of its last complete line, and positions follow the tracker;
//! - an unterminated last line is never emitted; it is emitted once its `\n` arrives;
//! - memory per file is O(`max_line_bytes` + `read_buffer_bytes`) whatever the input: a line
//!   longer than the cap is truncated or dropped while it is read, never buffered whole;
//! - bytes in flight are bounded by the byte budget: a reader takes permits for a chunk before
//!   reading it and they come back when the chunk is acknowledged (backpressure);
//! - on shutdown readers stop reading but do not detach their trackers, so acknowledgements that
//!   arrive during the flush still move positions;
//! - idle files cost one `stat()` per poll interval in a shared poller, not a thread or a timer
//!   each; blocking reads of all files share a few blocking slots.
//!
//! Files: `glob.rs` (doublestar globs), `line_buffer.rs` (split and cap), `file.rs` (one open
//! file's blocking rounds), `reader.rs` (the per-file async state machine), `poller.rs` (idle
//! files), `tailer.rs` (discovery, watcher, reader life cycle), `status.rs` (`/ready`,
//! `/targets`).

mod file;
mod glob;
mod identity;
#[doc(hidden)]
pub mod line_buffer;
mod poller;
mod reader;
mod stamper;
mod status;
mod tailer;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::time::Duration;

use crate::entry::LabelSet;

pub use glob::{GlobError, check_glob};
pub use status::{FileStatus, TailStatus};
pub use tailer::Tailer;

/// One file target: a glob of files to tail and the labels of their entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTarget {
    /// The scrape job; entries go to this job's channel.
    pub job: String,
    /// Target labels (labels starting with `__` already removed). `filename` is added per file.
    pub labels: LabelSet,
    /// The `__path__` glob (doublestar syntax, spec §5.1). Relative patterns are evaluated
    /// against the working directory.
    pub include: String,
    /// The `__path_exclude__` glob, if any.
    pub exclude: Option<String>,
}

/// What to do with a line longer than [`TailSettings::max_line_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongLineAction {
    /// Keep the first `max_line_bytes` bytes of the line.
    Truncate,
    /// Drop the whole line.
    Drop,
}

impl LongLineAction {
    /// The `action` label value of `ferrotail_long_lines_total`.
    pub fn label(self) -> &'static str {
        match self {
            LongLineAction::Truncate => "truncated",
            LongLineAction::Drop => "dropped",
        }
    }
}

/// Tailing settings (runtime form of Promtail's `target_config` and `file_watch_config`, plus
/// ferrotail's read-time limits).
#[derive(Clone, Debug)]
pub struct TailSettings {
    /// How often globs are re-evaluated. Default: `10s`.
    pub sync_period: Duration,
    /// Poll interval of an idle file right after a change. Default: `250ms`.
    pub min_poll: Duration,
    /// Longest poll interval of an idle file (doubles from `min_poll` while nothing changes).
    /// Default: `250ms`.
    pub max_poll: Duration,
    /// Longest line kept at read time, in bytes (without its `\n`); 0 is taken as 1 (the cap
    /// cannot be switched off: it is what bounds a reader's memory). Default: 256 KiB.
    pub max_line_bytes: usize,
    /// What to do with longer lines. Default: truncate.
    pub long_line_action: LongLineAction,
    /// Most bytes read from a file at once (one chunk; 0 is taken as 1). Default: 64 KiB.
    pub read_buffer_bytes: usize,
}

impl Default for TailSettings {
    fn default() -> Self {
        TailSettings {
            sync_period: Duration::from_secs(10),
            min_poll: Duration::from_millis(250),
            max_poll: Duration::from_millis(250),
            max_line_bytes: 256 * 1024,
            long_line_action: LongLineAction::Truncate,
            read_buffer_bytes: 64 * 1024,
        }
    }
}
