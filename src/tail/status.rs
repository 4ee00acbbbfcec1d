//! A live view of the readers, for `/ready` (files being tailed) and `/targets` (offsets), and
//! the source of the `ferrotail_uncommitted_bytes{job}` gauge.
//!
//! Each reader owns one [`ReaderShared`] and updates it when it opens, reads or closes a file;
//! commits happen in other tasks (when entries are dropped), so committed offsets are read from
//! the trackers at the time of the query, never cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::IntGauge;

use crate::ack::Tracker;

/// One file being tailed, as seen by [`TailStatus::files`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileStatus {
    /// The scrape job.
    pub job: String,
    /// The path as matched (the `filename` label).
    pub path: String,
    /// Whether the file is open (false while its reader waits to open it again).
    pub open: bool,
    /// End of the last complete line handed on.
    pub read_offset: u64,
    /// End of the longest acknowledged prefix (what positions hold).
    pub committed_offset: u64,
    /// File size at the last read or poll.
    pub size: u64,
}

/// Cloneable handle on the tailer's readers.
#[derive(Clone, Debug, Default)]
pub struct TailStatus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    readers: Mutex<HashMap<u64, Arc<ReaderShared>>>,
    next_id: AtomicU64,
}

/// The part of a reader's state others may look at.
#[derive(Debug)]
pub(crate) struct ReaderShared {
    id: u64,
    job: String,
    path: String,
    /// The tracker of the open file; `None` while no file is open.
    tracker: Mutex<Option<Arc<Tracker>>>,
    size: AtomicU64,
    /// What this reader last added to the job's uncommitted gauge.
    reported_uncommitted: AtomicI64,
    uncommitted_gauge: IntGauge,
}

impl TailStatus {
    /// Number of files open for reading (a target is ready when this is above zero).
    pub fn files_active(&self) -> usize {
        self.lock()
            .values()
            .filter(|r| r.lock_tracker().is_some())
            .count()
    }

    /// Every reader, sorted by path then job.
    pub fn files(&self) -> Vec<FileStatus> {
        let mut out: Vec<FileStatus> = self.lock().values().map(|r| r.snapshot()).collect();
        out.sort_by(|a, b| (&a.path, &a.job).cmp(&(&b.path, &b.job)));
        out
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<ReaderShared>>> {
        self.inner.readers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new reader's shared state.
    pub(crate) fn register(
        &self,
        job: &str,
        path: &str,
        uncommitted_gauge: IntGauge,
    ) -> Arc<ReaderShared> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ReaderShared {
            id,
            job: job.to_string(),
            path: path.to_string(),
            tracker: Mutex::new(None),
            size: AtomicU64::new(0),
            reported_uncommitted: AtomicI64::new(0),
            uncommitted_gauge,
        });
        self.lock().insert(id, Arc::clone(&shared));
        shared
    }

    /// Removes a reader that has ended, taking its share out of the uncommitted gauge.
    pub(crate) fn unregister(&self, shared: &ReaderShared) {
        shared.set_tracker(None);
        self.lock().remove(&shared.id);
    }

    /// Brings every reader's share of `ferrotail_uncommitted_bytes` up to date (acks arrive in
    /// other tasks, so this runs periodically as well as after every chunk).
    pub(crate) fn refresh_uncommitted(&self) {
        let readers: Vec<Arc<ReaderShared>> = self.lock().values().cloned().collect();
        for r in readers {
            r.refresh_uncommitted();
        }
    }
}

impl ReaderShared {
    fn lock_tracker(&self) -> MutexGuard<'_, Option<Arc<Tracker>>> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tracker of the file now open (`None`: closed).
    pub(crate) fn set_tracker(&self, tracker: Option<Arc<Tracker>>) {
        *self.lock_tracker() = tracker;
        self.refresh_uncommitted();
    }

    /// Records the file size seen by the last read or poll.
    pub(crate) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// Updates this reader's share of the job's uncommitted-bytes gauge.
    pub(crate) fn refresh_uncommitted(&self) {
        let now = self
            .lock_tracker()
            .as_ref()
            .map(|t| t.read().saturating_sub(t.committed()))
            .unwrap_or(0);
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let before = self.reported_uncommitted.swap(now, Ordering::Relaxed);
        if now != before {
            self.uncommitted_gauge.add(now - before);
        }
    }

    fn snapshot(&self) -> FileStatus {
        let tracker = self.lock_tracker();
        FileStatus {
            job: self.job.clone(),
            path: self.path.clone(),
            open: tracker.is_some(),
            read_offset: tracker.as_ref().map(|t| t.read()).unwrap_or(0),
            committed_offset: tracker.as_ref().map(|t| t.committed()).unwrap_or(0),
            size: self.size.load(Ordering::Relaxed),
        }
    }
}
