//! Change detection for idle files: one `stat()` per parked file per poll interval, done for all
//! files in one blocking round, so 10,000 idle files cost 10,000 stats per interval and no
//! thread, timer or task wake-up each.
//!
//! A reader at end of file *parks* its slot with what it knows (the file's identity and how far
//! it has read) and awaits the slot's [`Notify`]. The poller wakes it when `stat(path)` shows
//! the path gone, a different file at the path (rotation), or a size other than the read
//! position (growth or truncation). A filesystem event for the path can wake it earlier
//! ([`Poller::nudge`]); a wake-up that finds nothing new only costs one empty read round.
//!
//! The interval starts at `min_poll` when a reader parks and doubles up to `max_poll` while
//! nothing changes (Promtail's `file_watch_config`; both default to 250 ms).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::identity::identity_of;
use super::status::TailStatus;
use crate::positions::FileIdentity;

/// One reader's parking place.
#[derive(Debug)]
pub(crate) struct PollSlot {
    path: PathBuf,
    state: Mutex<SlotState>,
    wake: Notify,
    /// A file was created at, or renamed to, the path since the reader last looked: it may
    /// be a newer generation to hold open while an older one is still read.
    replaced: AtomicBool,
    replaced_wake: Notify,
}

#[derive(Debug)]
struct SlotState {
    parked: bool,
    identity: Option<FileIdentity>,
    pos: u64,
    /// The file's modification time when the reader last looked.
    modified: Option<SystemTime>,
    /// Size seen by the poll that woke the reader.
    observed_size: Option<u64>,
    interval: Duration,
    next_due: Instant,
}

/// What a parked reader knows of its file.
#[derive(Clone, Copy, Debug)]
struct Parked {
    identity: FileIdentity,
    pos: u64,
    modified: Option<SystemTime>,
}

/// What one stat of a parked file found.
#[derive(Debug)]
enum Check {
    Unchanged,
    Changed(Option<u64>),
}

impl PollSlot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks the reader: from now on the poller compares the path with `identity`, `pos` and
    /// `modified` (a file truncated and written again to the same size changes only that).
    pub(crate) fn park(
        &self,
        identity: FileIdentity,
        pos: u64,
        modified: Option<SystemTime>,
        min_poll: Duration,
    ) {
        let mut st = self.lock();
        st.parked = true;
        st.identity = Some(identity);
        st.pos = pos;
        st.modified = modified;
        st.observed_size = None;
        st.interval = min_poll;
        st.next_due = Instant::now() + min_poll;
    }

    /// Waits until the poller or a filesystem event wakes the reader.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Ends parking; returns the file size the waking poll saw, if it was a poll.
    pub(crate) fn unpark(&self) -> Option<u64> {
        let mut st = self.lock();
        st.parked = false;
        st.observed_size.take()
    }

    fn nudge(&self) {
        if self.lock().parked {
            self.wake.notify_one();
        }
    }

    /// Whether a file appeared at the path since the last call (and clears it).
    pub(crate) fn take_replaced(&self) -> bool {
        self.replaced.swap(false, Ordering::AcqRel)
    }

    /// Waits until a file appears at the path (returns at once if one did since the last
    /// wait, even if nobody was waiting then).
    pub(crate) async fn replaced(&self) {
        self.replaced_wake.notified().await;
    }

    fn due(&self, now: Instant) -> Option<Parked> {
        let st = self.lock();
        match st.identity {
            Some(identity) if st.parked && st.next_due <= now => Some(Parked {
                identity,
                pos: st.pos,
                modified: st.modified,
            }),
            _ => None,
        }
    }

    fn polled(&self, check: Check, now: Instant, max_poll: Duration) {
        let mut st = self.lock();
        if !st.parked {
            return; // woken meanwhile by an event; this result is stale
        }
        match check {
            Check::Changed(size) => {
                st.parked = false;
                st.observed_size = size;
                drop(st);
                self.wake.notify_one();
            }
            Check::Unchanged => {
                st.interval = (st.interval * 2)
                    .min(max_poll)
                    .max(Duration::from_millis(1));
                st.next_due = now + st.interval;
            }
        }
    }
}

/// The shared poller of all readers of one tailer.
#[derive(Debug)]
pub(crate) struct Poller {
    slots: Mutex<HashMap<PathBuf, Vec<Arc<PollSlot>>>>,
    min_poll: Duration,
    max_poll: Duration,
}

impl Poller {
    pub(crate) fn new(min_poll: Duration, max_poll: Duration) -> Self {
        let min_poll = min_poll.max(Duration::from_millis(1));
        Poller {
            slots: Mutex::new(HashMap::new()),
            min_poll,
            max_poll: max_poll.max(min_poll),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Vec<Arc<PollSlot>>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new slot for a reader of `path`.
    pub(crate) fn register(&self, path: &Path) -> Arc<PollSlot> {
        let slot = Arc::new(PollSlot {
            path: path.to_path_buf(),
            state: Mutex::new(SlotState {
                parked: false,
                identity: None,
                pos: 0,
                modified: None,
                observed_size: None,
                interval: self.min_poll,
                next_due: Instant::now(),
            }),
            wake: Notify::new(),
            replaced: AtomicBool::new(false),
            replaced_wake: Notify::new(),
        });
        self.lock()
            .entry(path.to_path_buf())
            .or_default()
            .push(Arc::clone(&slot));
        slot
    }

    /// Removes a reader's slot.
    pub(crate) fn unregister(&self, slot: &Arc<PollSlot>) {
        let mut slots = self.lock();
        if let Some(v) = slots.get_mut(&slot.path) {
            v.retain(|s| !Arc::ptr_eq(s, slot));
            if v.is_empty() {
                slots.remove(&slot.path);
            }
        }
    }

    /// A filesystem event concerns `path`: wake its parked readers now.
    pub(crate) fn nudge(&self, path: &Path) {
        if let Some(v) = self.lock().get(path) {
            for s in v {
                s.nudge();
            }
        }
    }

    /// A file was created at, or renamed to, `path`: tell its readers, parked or busy.
    pub(crate) fn path_replaced(&self, path: &Path) {
        if let Some(v) = self.lock().get(path) {
            for s in v {
                s.replaced.store(true, Ordering::Release);
                s.replaced_wake.notify_one();
                s.nudge();
            }
        }
    }

    /// Polls parked files until `shutdown`; also refreshes the uncommitted-bytes gauges, since
    /// acknowledgements arrive without telling the readers.
    pub(crate) async fn run(self: Arc<Self>, status: TailStatus, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.min_poll);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let due: Vec<(Arc<PollSlot>, Parked)> = self
                .lock()
                .values()
                .flatten()
                .filter_map(|s| s.due(now).map(|p| (Arc::clone(s), p)))
                .collect();
            if !due.is_empty() {
                let checked = tokio::task::spawn_blocking(move || {
                    due.into_iter()
                        .map(|(slot, parked)| {
                            let check = check(&slot.path, parked);
                            (slot, check)
                        })
                        .collect::<Vec<_>>()
                })
                .await;
                match checked {
                    Ok(checked) => {
                        let now = Instant::now();
                        for (slot, check) in checked {
                            slot.polled(check, now, self.max_poll);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "File poll round failed."),
                }
            }
            status.refresh_uncommitted();
        }
    }
}

/// Whether the file at `path` is no longer what a reader parked on.
fn check(path: &Path, parked: Parked) -> Check {
    match std::fs::metadata(path) {
        Ok(meta) if identity_of(&meta) != parked.identity => Check::Changed(None),
        Ok(meta) if meta.len() != parked.pos || meta.modified().ok() != parked.modified => {
            Check::Changed(Some(meta.len()))
        }
        Ok(_) => Check::Unchanged,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Changed(None),
        Err(e) => {
            // Not fatal (Promtail exits here): the reader keeps its open file and the next
            // poll tries again.
            tracing::debug!(path = %path.display(), error = %e, "Polling a file failed.");
            Check::Unchanged
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replaced_path_reaches_busy_and_parked_readers_once() {
        let poller = Poller::new(Duration::from_millis(250), Duration::from_millis(250));
        let path = Path::new("/var/log/app.log");
        let busy = poller.register(path);
        let other = poller.register(Path::new("/var/log/other.log"));
        assert!(!busy.take_replaced());
        poller.path_replaced(path);
        // Stored for a reader that was not waiting yet: the wait returns at once.
        tokio::time::timeout(Duration::from_secs(10), busy.replaced())
            .await
            .expect("the stored notification");
        assert!(busy.take_replaced());
        assert!(!busy.take_replaced(), "taken once");
        assert!(!other.take_replaced(), "other paths are not told");
        // A parked reader is woken too.
        busy.park(
            FileIdentity { dev: 1, ino: 1 },
            0,
            None,
            Duration::from_millis(250),
        );
        poller.path_replaced(path);
        tokio::time::timeout(Duration::from_secs(10), busy.woken())
            .await
            .expect("the parked reader is woken");
        assert!(busy.take_replaced());
        poller.unregister(&busy);
        poller.path_replaced(path);
        assert!(!busy.take_replaced(), "an unregistered slot is not told");
    }

    #[test]
    fn a_file_written_again_to_the_same_size_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first generation\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let parked = Parked {
            identity: identity_of(&meta),
            pos: meta.len(),
            modified: meta.modified().ok(),
        };
        assert!(matches!(check(&path, parked), Check::Unchanged));
        // copytruncate then a burst of the same length, between two polls
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let later = meta.modified().unwrap() + Duration::from_secs(1);
        f.set_len(0).unwrap();
        std::fs::write(&path, b"other generation\n").unwrap();
        f.set_modified(later).unwrap();
        assert!(matches!(check(&path, parked), Check::Changed(Some(17))));
    }
}
