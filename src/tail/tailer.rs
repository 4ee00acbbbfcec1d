//! The [`Tailer`]: discovery of files for every target, and the life cycle of their readers.
//!
//! Globs are evaluated at start, every `sync_period`, and for paths named by file system create
//! and rename events. One `notify` watcher serves every target; it watches each target's
//! literal base directory and the parent directory of every file being read (non-recursively).
//! Watcher errors are logged and discovery falls back to the periodic sync.
//!
//! A reader exists per (target, path). When a path stops matching, its reader reads what is
//! there, stops, and the path's position and per-path metrics are removed (spec §5.5, §6.4).
//! A reader whose file vanished has already closed it; its position is removed at once, so a
//! file that appears again at that path is read from the start. Readers that failed to open or
//! read are started again at the next sync, from the committed position.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::glob::PathMatcher;
use super::poller::{PollSlot, Poller};
use super::reader::{self, Exit, ReaderCtx};
use super::status::{ReaderShared, TailStatus};
use super::{FileTarget, TailSettings};
use crate::entry::LabelSet;
use crate::metrics::Metrics;
use crate::positions::Positions;
use crate::sources::{Source, SourceContext, SourceEvent};

/// Capacity of the queue of created paths from the watcher; when it is full, a full sync runs
/// instead.
const EVENT_QUEUE: usize = 4096;

/// Discovers and tails the files of a set of file targets, which may change while it runs: the
/// file [`Source`].
pub struct Tailer {
    targets: watch::Receiver<Vec<FileTarget>>,
    settings: Arc<TailSettings>,
    status: TailStatus,
}

impl Tailer {
    /// A tailer for the targets `targets` holds (and later sends: a target set is applied by
    /// its difference, so a target that stays keeps its readers). Entries of job `j` go to
    /// the context's `outputs[j]` as one `Vec` per read chunk.
    pub fn new(targets: watch::Receiver<Vec<FileTarget>>, settings: TailSettings) -> Self {
        Tailer {
            targets,
            settings: Arc::new(settings),
            status: TailStatus::default(),
        }
    }

    /// A handle on the readers (files tailed, offsets), valid before and during `run`.
    pub fn status(&self) -> TailStatus {
        self.status.clone()
    }

    /// Tails until `ctx.shutdown`; returns once every reader has stopped. Readers stop reading
    /// at shutdown but leave their trackers attached to positions, so entries acknowledged
    /// during the flush still move positions.
    pub async fn run(mut self, ctx: SourceContext) {
        let shutdown = ctx.shutdown;
        let poller = Arc::new(Poller::new(self.settings.min_poll, self.settings.max_poll));
        let poller_task =
            tokio::spawn(Arc::clone(&poller).run(self.status.clone(), shutdown.clone()));
        let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
        let resync = Arc::new(Notify::new());
        let watcher = make_watcher(event_tx, Arc::clone(&resync), Arc::clone(&poller));

        let mut d = Discovery {
            targets: HashMap::new(),
            matchers: Arc::new(Vec::new()),
            outputs: ctx.outputs,
            readers: HashMap::new(),
            joins: JoinSet::new(),
            watcher,
            watched: HashSet::new(),
            poller,
            shared: Shared {
                settings: self.settings,
                positions: ctx.positions,
                budget: Arc::clone(ctx.budget.semaphore()),
                budget_cap: ctx.budget.size(),
                io_slots: Arc::new(Semaphore::new(io_slots())),
                metrics: ctx.metrics,
                status: self.status,
            },
            shutdown: shutdown.clone(),
        };

        let period = d
            .shared
            .settings
            .sync_period
            .max(std::time::Duration::from_millis(10));
        let first = self.targets.borrow_and_update().clone();
        d.apply(first);
        d.resume_unread();
        d.sync().await;
        let mut next_sync = Instant::now() + period;
        // A fixed target set's sender may be gone: then nothing changes any more.
        let mut updates = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = self.targets.changed(), if updates => {
                    if changed.is_err() {
                        updates = false;
                        continue;
                    }
                    let set = self.targets.borrow_and_update().clone();
                    if d.apply(set) {
                        d.sync().await;
                        next_sync = Instant::now() + period;
                    }
                }
                _ = tokio::time::sleep_until(next_sync) => {
                    d.sync().await;
                    next_sync = Instant::now() + period;
                }
                _ = resync.notified() => {
                    d.sync().await;
                    next_sync = Instant::now() + period;
                }
                Some(path) = event_rx.recv() => {
                    let mut paths = vec![path];
                    while let Ok(p) = event_rx.try_recv() {
                        paths.push(p);
                    }
                    d.created(paths).await;
                }
                Some(ended) = d.joins.join_next_with_id() => d.ended(ended).await,
            }
        }
        while let Some(ended) = d.joins.join_next_with_id().await {
            d.ended(ended).await;
        }
        if let Err(e) = poller_task.await {
            tracing::error!(error = %e, "The file poller failed.");
        }
        let active = i64::try_from(d.targets.len()).unwrap_or(i64::MAX);
        d.shared.metrics.targets_active.sub(active);
    }
}

impl Source for Tailer {
    fn describe(&self) -> String {
        "file tailer".to_string()
    }

    fn run(
        self: Box<Self>,
        ctx: SourceContext,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(Tailer::run(*self, ctx))
    }
}

/// A valid target at run time, by its id (see [`target_id`]).
struct Target {
    job: String,
    labels: LabelSet,
    output: mpsc::Sender<SourceEvent>,
}

/// A target's identity across target sets: its job, globs and labels (spec §4.6 step 5). It
/// is also the owner id of its readers in the positions, so a target removed and added again
/// resumes where its readers were.
fn target_id(t: &FileTarget) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (&t.job, &t.include, &t.exclude, t.labels.stream_key()).hash(&mut h);
    // u64::MAX is the owner of no target (`resume_unread`).
    h.finish().min(u64::MAX - 1)
}

/// What every reader gets a handle on.
struct Shared {
    settings: Arc<TailSettings>,
    positions: Arc<Positions>,
    budget: Arc<Semaphore>,
    budget_cap: usize,
    io_slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    status: TailStatus,
}

/// A running reader, keyed by (target index, path).
struct Running {
    id: Id,
    stop: CancellationToken,
    /// Set with `stop` when the reader's target was removed (its position is kept).
    target_removed: Arc<AtomicBool>,
    shared: Arc<ReaderShared>,
    slot: Arc<PollSlot>,
}

/// (target id, path).
type ReaderKey = (u64, PathBuf);

struct Discovery {
    targets: HashMap<u64, Target>,
    /// Each target's globs, by target id (shared with the blocking scans).
    matchers: Arc<Vec<(u64, PathMatcher)>>,
    outputs: HashMap<String, mpsc::Sender<SourceEvent>>,
    readers: HashMap<ReaderKey, Running>,
    joins: JoinSet<(ReaderKey, Exit)>,
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    poller: Arc<Poller>,
    shared: Shared,
    shutdown: CancellationToken,
}

impl Discovery {
    /// Makes `set` the target set: targets that stay keep their readers, removed ones stop
    /// theirs (after reading what their files hold; positions are kept, as Promtail keeps
    /// them), added ones are tailed from the next sync. Returns whether anything changed.
    fn apply(&mut self, set: Vec<FileTarget>) -> bool {
        let mut wanted: HashMap<u64, FileTarget> = HashMap::with_capacity(set.len());
        for t in set {
            wanted.entry(target_id(&t)).or_insert(t);
        }
        let removed: Vec<u64> = self
            .targets
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in &removed {
            if let Some(t) = self.targets.remove(id) {
                tracing::info!(job = %t.job, labels = %t.labels, "Target removed; its readers stop after reading what their files hold.");
            }
            for (key, r) in &self.readers {
                if key.0 == *id {
                    r.target_removed.store(true, Ordering::Release);
                    r.stop.cancel();
                }
            }
        }
        let mut matchers: Vec<(u64, PathMatcher)> = self
            .matchers
            .iter()
            .filter(|(id, _)| !removed.contains(id))
            .cloned()
            .collect();
        let mut added = 0usize;
        for (id, t) in wanted {
            if self.targets.contains_key(&id) {
                continue;
            }
            let Some(output) = self.outputs.get(&t.job) else {
                tracing::error!(job = %t.job, path = %t.include, "No entry channel for this job; the target is skipped.");
                self.shared
                    .metrics
                    .targets_failed
                    .with_label_values(&["error"])
                    .inc();
                continue;
            };
            match PathMatcher::new(&t.include, t.exclude.as_deref()) {
                Ok(m) => {
                    matchers.push((id, m));
                    self.targets.insert(
                        id,
                        Target {
                            job: t.job,
                            labels: t.labels,
                            output: output.clone(),
                        },
                    );
                    added += 1;
                }
                Err(e) => {
                    tracing::error!(job = %t.job, error = %e, "Invalid file target; it is skipped.");
                    self.shared
                        .metrics
                        .targets_failed
                        .with_label_values(&["error"])
                        .inc();
                }
            }
        }
        let m = &self.shared.metrics.targets_active;
        m.add(i64::try_from(added).unwrap_or(i64::MAX));
        m.sub(i64::try_from(removed.len()).unwrap_or(i64::MAX));
        self.matchers = Arc::new(matchers);
        added > 0 || !removed.is_empty()
    }

    /// Re-evaluates every glob: starts readers for new matches, stops those of paths that no
    /// longer match, and updates the watched directories.
    async fn sync(&mut self) {
        let matchers = Arc::clone(&self.matchers);
        let found = tokio::task::spawn_blocking(move || {
            matchers
                .iter()
                .map(|(id, m)| (*id, m.scan()))
                .collect::<Vec<_>>()
        })
        .await;
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "Evaluating file globs failed.");
                return;
            }
        };
        let mut matched: HashSet<ReaderKey> = HashSet::new();
        for (id, paths) in found {
            for path in paths {
                matched.insert((id, path));
            }
        }
        for key in &matched {
            if !self.readers.contains_key(key) {
                self.start(key.clone());
            }
        }
        let unmatched: Vec<ReaderKey> = self
            .readers
            .iter()
            .filter(|(key, r)| !matched.contains(*key) && !r.stop.is_cancelled())
            .map(|(key, _)| key.clone())
            .collect();
        if !unmatched.is_empty() {
            // Walking ignores I/O errors (as doublestar does), so a transient error (EMFILE, a
            // directory briefly unreadable) would make files look unmatched, and stopping them
            // deletes their positions: everything would be read again. A path that is no longer
            // there is left to its reader: it sees the file go, reads what is still written to
            // it for ROTATE_WAIT, opens a file that appears at the path meanwhile, and ends by
            // itself. Stopping it here, in the gap between a rename and the new file, made it
            // miss the new generation (and lose it when that was rotated away before the next
            // glob evaluation). Only a path that is still there but no longer a regular file
            // (static globs match nothing else) is stopped.
            let stop = tokio::task::spawn_blocking(move || {
                unmatched
                    .into_iter()
                    .filter(|(_, p)| {
                        std::fs::symlink_metadata(p).is_ok()
                            && !std::fs::metadata(p).is_ok_and(|m| m.is_file())
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for key in stop {
                if let Some(running) = self.readers.get(&key) {
                    let job = self.targets.get(&key.0).map_or("", |t| t.job.as_str());
                    tracing::info!(job = %job, path = %key.1.display(), "Path no longer matches; its reader stops after reading what the file holds.");
                    running.stop.cancel();
                }
            }
        }
        self.update_watches();
    }

    /// Paths named by create/rename events: start readers for those that match a target.
    async fn created(&mut self, paths: Vec<PathBuf>) {
        let mut candidates: Vec<ReaderKey> = Vec::new();
        for path in paths {
            for (id, m) in self.matchers.iter() {
                let key = (*id, path.clone());
                if m.matches(&path)
                    && !self.readers.contains_key(&key)
                    && !candidates.contains(&key)
                {
                    candidates.push(key);
                }
            }
        }
        if candidates.is_empty() {
            return;
        }
        let files = tokio::task::spawn_blocking(move || {
            candidates.retain(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.is_file()));
            candidates
        })
        .await;
        match files {
            Ok(files) => {
                for key in files {
                    if !self.readers.contains_key(&key) {
                        self.start(key);
                    }
                }
                self.update_watches();
            }
            Err(e) => tracing::error!(error = %e, "Checking created files failed."),
        }
    }

    fn start(&mut self, key: ReaderKey) {
        let Some(t) = self.targets.get(&key.0) else {
            return; // removed meanwhile
        };
        let s = &self.shared;
        let path_str = key.1.to_string_lossy().into_owned();
        let mut labels = t.labels.clone();
        labels.insert("filename", path_str.clone());
        let shared = s.status.register(
            &t.job,
            &path_str,
            s.metrics.uncommitted_bytes.with_label_values(&[&t.job]),
        );
        let slot = self.poller.register(&key.1);
        let stop = CancellationToken::new();
        let target_removed = Arc::new(AtomicBool::new(false));
        let ctx = ReaderCtx {
            job: t.job.clone(),
            owner: key.0,
            path: key.1.clone(),
            key: path_str,
            labels,
            settings: Arc::clone(&s.settings),
            positions: Arc::clone(&s.positions),
            budget: Arc::clone(&s.budget),
            budget_cap: s.budget_cap,
            io_slots: Arc::clone(&s.io_slots),
            metrics: Arc::clone(&s.metrics),
            output: t.output.clone(),
            shared: Arc::clone(&shared),
            slot: Arc::clone(&slot),
            target_removed: Arc::clone(&target_removed),
        };
        let (task_key, reader_stop, shutdown) = (key.clone(), stop.clone(), self.shutdown.clone());
        let handle = self.joins.spawn(async move {
            let exit = reader::run(ctx, reader_stop, shutdown).await;
            (task_key, exit)
        });
        self.readers.insert(
            key,
            Running {
                id: handle.id(),
                stop,
                shared,
                slot,
                target_removed,
            },
        );
    }

    /// Starts readers for paths whose saved state names rotated generations not read yet,
    /// even when nothing is at the path any more (the reader reads them and ends). A path no
    /// target matches any more is forgotten, and what it had not read is counted as lost.
    fn resume_unread(&mut self) {
        for key in self.shared.positions.unread_generations() {
            let path = PathBuf::from(&key);
            let owners: Vec<u64> = self
                .matchers
                .iter()
                .filter(|(_, m)| m.matches(&path))
                .map(|(id, _)| *id)
                .collect();
            if owners.is_empty() {
                let plan = self.shared.positions.attach(&key, u64::MAX).1;
                let bytes: u64 = plan
                    .older
                    .iter()
                    .map(|g| g.size.saturating_sub(g.offset))
                    .sum();
                tracing::warn!(path = %key, generations = plan.older.len(), lost_bytes = bytes, "Rotated generations of this file were not all delivered, but no target matches the path any more; they are not read.");
                self.shared.positions.remove(&key);
                continue;
            }
            for id in owners {
                let key = (id, path.clone());
                if !self.readers.contains_key(&key) {
                    self.start(key);
                }
            }
        }
    }

    /// A reader task ended: forget it. When its path is gone (deleted, or nothing was there),
    /// a file may have appeared there since the reader last looked, and the event for it was
    /// ignored while the reader still existed: look again now, so that a generation created
    /// in between is never skipped.
    async fn ended(&mut self, ended: Result<(Id, (ReaderKey, Exit)), JoinError>) {
        let (key, exit) = match ended {
            Ok((_, done)) => done,
            Err(e) => {
                // Only reachable when a reader panicked (debug builds; release aborts).
                tracing::error!(error = %e, "A file reader failed.");
                let id = e.id();
                let Some(key) = self
                    .readers
                    .iter()
                    .find(|(_, r)| r.id == id)
                    .map(|(k, _)| k.clone())
                else {
                    return;
                };
                (key, Exit::Failed)
            }
        };
        tracing::debug!(path = %key.1.display(), ?exit, "File reader ended.");
        if let Some(r) = self.readers.remove(&key) {
            self.shared.status.unregister(&r.shared);
            self.poller.unregister(&r.slot);
        }
        if matches!(exit, Exit::Stopped | Exit::Deleted | Exit::Missing) {
            self.forget_path(&key.1);
            // A file may have appeared at the path while its reader was ending.
            if !self.shutdown.is_cancelled() {
                self.created(vec![key.1]).await;
            }
        }
    }

    /// Removes a path's per-path metrics, unless another target still reads it. (Its position
    /// goes once what is in flight is delivered: the reader released it.)
    fn forget_path(&self, path: &Path) {
        if self.readers.keys().any(|(_, p)| p == path) {
            return;
        }
        let key = path.to_string_lossy();
        let m = &self.shared.metrics;
        // Absent series are fine: the reader may never have read anything.
        let _ = m.read_bytes.remove_label_values(&[&key]);
        let _ = m.read_lines.remove_label_values(&[&key]);
        let _ = m.file_bytes.remove_label_values(&[&key]);
    }

    /// Watches each target's base directory and the directory of every file being read.
    fn update_watches(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let mut want: HashSet<PathBuf> = self
            .matchers
            .iter()
            .map(|(_, m)| m.base_dir().to_path_buf())
            .collect();
        for (_, path) in self.readers.keys() {
            if let Some(parent) = path.parent() {
                want.insert(parent.to_path_buf());
            }
        }
        self.watched.retain(|dir| {
            if want.contains(dir) {
                return true;
            }
            // The directory may be gone already, which also ends its watch.
            let _ = watcher.unwatch(dir);
            false
        });
        for dir in want {
            if self.watched.contains(&dir) {
                continue;
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                // Usually the directory does not exist yet; the next sync tries again.
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "Cannot watch directory.")
                }
            }
        }
    }
}

/// Blocking read rounds in progress at once: a few per core, enough that one slow file system
/// does not stall the others, few enough that thousands of busy files share a few threads.
fn io_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).clamp(16, 64)
}

/// One watcher for all directories. Its callback runs on notify's thread: it queues created
/// paths for discovery and wakes parked readers of any path an event names.
fn make_watcher(
    created: mpsc::Sender<PathBuf>,
    resync: Arc<Notify>,
    poller: Arc<Poller>,
) -> Option<RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(event) => {
            for p in &event.paths {
                poller.nudge(p);
            }
            let new_path = match event.kind {
                EventKind::Create(_) => event.paths.first(),
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => None,
                EventKind::Modify(ModifyKind::Name(_)) => event.paths.last(),
                _ => None,
            };
            if let Some(p) = new_path {
                poller.path_replaced(p);
            }
            if let Some(p) = new_path
                && created.try_send(p.clone()).is_err()
            {
                resync.notify_one();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "File system watcher error; new files are found at the next sync.");
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot create a file system watcher; new files are found at each sync only.");
            None
        }
    }
}
