//! One path's reader: a state machine run as a tokio task, with every file system call in a
//! blocking round (`spawn_blocking`), never on the runtime's threads. Rounds of all readers
//! share a small number of blocking slots, so 10,000 busy files do not mean 10,000 threads.
//!
//! ```text
//!  attach (resume plan) ─► find older generations again, open the path ─► queue
//!     ─► [permits ─► read round ─► chunk ─► send]*
//!        ▲                                          │ end of file
//!        │ next queued generation, or the path      ▼
//!        └──────── rotated ◄── drain old fd ◄── park until the poller sees a change
//!                  │  the old fd is kept ROTATE_WAIT, read again if it grows
//!                  truncated ─► the old content is left, a new generation at 0 (same fd)
//!                  path gone ─► drain old fd, wait ROTATE_WAIT for a new file, close, exit
//! ```
//!
//! Invariants:
//! - a chunk is registered with its generation's tracker at the offset just after its last
//!   complete line, only once a channel slot is reserved for its entries, so a shutdown while
//!   waiting never leaves a registered chunk whose entries were not handed on;
//! - budget permits for a read are taken *before* reading (bounded by what the file holds), so a
//!   reader blocked by backpressure holds no read data;
//! - rotation: the path's new identity is seen first, then the old descriptor is read to its
//!   end, so everything written to the old file before the rotation was noticed is read once;
//!   and for [`ROTATE_WAIT`] after, what the service still writes through its old descriptor
//!   (it reopens only on logrotate's signal) is read too: a generation is let go only after that
//!   grace, counting an unterminated last line as lost;
//! - whatever the reader is doing (reading, waiting for budget or for room in the job's
//!   channel), a file system event saying a file was created at or renamed to its path makes it
//!   look at the path at once (and it looks at least every [`WATCH_FALLBACK`], for file systems
//!   without events); a newer generation found there is opened and held (up to
//!   [`MAX_HELD_GENERATIONS`]), then read from its start after the older ones. So rotations
//!   while shipping lags behind lose nothing;
//! - every generation the reader reads, holds or has left with lines in flight is in the path's
//!   committed state ([`crate::positions::PathState`]), so after a crash a restarted reader finds
//!   the rotated ones again (as `app.log.1`, or a copytruncate copy) and reads them to their
//!   end before the newer one; one that is gone is counted in
//!   `ferrotail_rotation_lost_bytes_total` and named in a warning;
//! - on shutdown the generations stay attached to positions (acks during the flush still
//!   commit);
//! - a reader that lets its file go (deleted, no longer matched, failed) says so with
//!   `SourceEvent::Released(labels)` after its last entries, so the pipeline sends on the blocks
//!   buffering stages hold for it. A rotation is not a release: the same stream goes on in the
//!   new file (Promtail does not cut a multiline block there either).

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use prometheus::{IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::TailSettings;
use super::file::{OpenFile, Opened, Resolved, Round, Split, find_copy, fingerprint_of, resolve};
use super::poller::PollSlot;
use super::status::ReaderShared;
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;
use crate::positions::{
    FINGERPRINT_BYTES, FileIdentity, Fingerprint, GenHandle, PathState, Phase, Positions,
    ResumePlan, Stamps,
};
use crate::sources::SourceEvent;

/// Newer generations of a path a reader holds open while it still reads an older one. Past
/// this, later generations are left to the path (a warning says so): a bound on descriptors.
pub(crate) const MAX_HELD_GENERATIONS: usize = 16;

/// How often a busy reader looks at its path without a file system event saying it changed.
/// Events make this rare; the bound keeps 10,000 readers waiting for budget cheap.
pub(crate) const WATCH_FALLBACK: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a generation rotated away (renamed, or the path removed) is still watched for
/// lines written through a descriptor the service has not reopened yet (logrotate renames,
/// then the service reopens on its `postrotate` signal). Fluent Bit's `rotate_wait` has the
/// same role (5 s); Promtail closes at once and loses those lines.
pub(crate) const ROTATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A generation rotated away, still read when it grows until `until`.
struct Draining {
    of: Box<OpenFile>,
    until: Instant,
}

/// Why a reader ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The tailer is shutting down.
    Shutdown,
    /// Asked to stop (the path no longer matches); what the files held was read first.
    Stopped,
    /// The path vanished; the open file was read to its end and closed.
    Deleted,
    /// Nothing was at the path when the reader started (and nothing older was left to read).
    Missing,
    /// The file could not be opened (logged); retried at the next sync.
    OpenFailed,
    /// Reading failed (logged); retried at the next sync.
    Failed,
    /// The job's channel is closed.
    OutputClosed,
}

/// Everything a reader needs besides its file.
pub(crate) struct ReaderCtx {
    pub(crate) job: String,
    /// Which target reads the path: the owner of the generations this reader adds.
    pub(crate) owner: u64,
    pub(crate) path: PathBuf,
    /// The path as a string: positions key and `filename` label.
    pub(crate) key: String,
    /// Target labels plus `filename`.
    pub(crate) labels: LabelSet,
    pub(crate) settings: Arc<TailSettings>,
    pub(crate) positions: Arc<Positions>,
    pub(crate) budget: Arc<Semaphore>,
    /// Most permits one chunk may take (the whole budget), so a chunk never waits for ever.
    pub(crate) budget_cap: usize,
    /// Blocking rounds in progress at once, over all readers (bounds the threads used).
    pub(crate) io_slots: Arc<Semaphore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) output: mpsc::Sender<SourceEvent>,
    pub(crate) shared: Arc<ReaderShared>,
    pub(crate) slot: Arc<PollSlot>,
    /// Set before `stop` when the reader stops because its target was removed: the path's
    /// position is then kept (detached), not forgotten as for a path that no longer matches.
    pub(crate) target_removed: Arc<AtomicBool>,
}

/// Metric handles of one reader, looked up once.
struct FileMetrics {
    read_lines: IntCounter,
    read_bytes: IntGauge,
    file_bytes: IntGauge,
    long_lines: IntCounter,
    lost_bytes: IntCounter,
}

/// A generation opened and registered, waiting to be read.
struct Queued {
    opened: Opened,
    start: u64,
    generation: GenHandle,
}

/// Runs one reader until it ends; cleans up its `files_active` share on every path.
pub(crate) async fn run(
    ctx: ReaderCtx,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> Exit {
    let fm = FileMetrics {
        read_lines: ctx.metrics.read_lines.with_label_values(&[&ctx.key]),
        read_bytes: ctx.metrics.read_bytes.with_label_values(&[&ctx.key]),
        file_bytes: ctx.metrics.file_bytes.with_label_values(&[&ctx.key]),
        long_lines: ctx
            .metrics
            .long_lines
            .with_label_values(&[&ctx.job, ctx.settings.long_line_action.label()]),
        lost_bytes: ctx
            .metrics
            .rotation_lost_bytes
            .with_label_values(&[&ctx.job]),
    };
    let (state, plan) = ctx.positions.attach(&ctx.key, ctx.owner);
    let mut reader = Reader {
        ctx: &ctx,
        fm: &fm,
        stop: &stop,
        shutdown: &shutdown,
        state: Arc::clone(&state),
        queue: VecDeque::new(),
        last_watch: Instant::now(),
        draining: Vec::new(),
        last_drain: Instant::now(),
        linger_until: None,
        last_stamp: i64::MIN,
    };
    let exit = match reader.begin(plan).await {
        Ok(of) => {
            ctx.metrics.files_active.inc();
            let exit = reader.read_loop(of).await;
            ctx.metrics.files_active.dec();
            exit
        }
        Err(exit) => exit,
    };
    ctx.shared.set_tracker(None);
    if matches!(exit, Exit::Stopped | Exit::Deleted | Exit::Missing) {
        for d in std::mem::take(&mut reader.draining) {
            reader.retire(&d.of);
        }
        if exit == Exit::Stopped && ctx.target_removed.load(Ordering::Acquire) {
            // The target went, not the file: its position stays for a later reader.
            state.detach(ctx.owner);
        } else {
            // Gone for good: what is in flight still commits, then the path is forgotten.
            state.release(ctx.owner);
        }
    }
    if matches!(exit, Exit::Stopped | Exit::Deleted | Exit::Failed) {
        // Buffering stages (`multiline`, `cri`) send on what they hold for this file. At
        // shutdown the pipeline flushes everything anyway, so do not wait for room then.
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {}
            _ = ctx.output.send(SourceEvent::Released(ctx.labels.clone())) => {}
        }
    }
    exit
}

struct Reader<'a> {
    ctx: &'a ReaderCtx,
    fm: &'a FileMetrics,
    stop: &'a CancellationToken,
    shutdown: &'a CancellationToken,
    /// The path's committed state, which this reader's generations are part of.
    state: Arc<PathState>,
    /// Generations opened and waiting, oldest first: rotated ones found again at start, then
    /// newer ones that appeared at the path while an older one is read.
    queue: VecDeque<Queued>,
    /// When the path was last looked at for a newer generation.
    last_watch: Instant,
    /// Generations rotated away and replaced by a newer one, still read if written to.
    draining: Vec<Draining>,
    /// When the draining generations were last looked at.
    last_drain: Instant,
    /// Until when the file being read is kept after its path was left empty.
    linger_until: Option<Instant>,
    /// The last read-time stamp handed on (new marks come after it).
    last_stamp: i64,
}

impl Reader<'_> {
    /// Finds what the plan names and opens the first generation to read.
    async fn begin(&mut self, plan: ResumePlan) -> Result<Box<OpenFile>, Exit> {
        let (path, key) = (self.ctx.path.clone(), self.ctx.key.clone());
        // Stamps older than a replay may use are dropped here, once, by the restart's clock.
        let now = Timestamp::now().0;
        let resolved = match self.blocking(move || resolve(&path, &key, &plan)).await {
            Ok(r) => r,
            Err(e) => return Err(self.open_failed(&e)),
        };
        let Resolved {
            older,
            lost,
            current,
            current_stamps,
            open_error,
        } = resolved;
        for g in lost {
            let bytes = g.size.saturating_sub(g.offset);
            self.fm.lost_bytes.inc_by(bytes);
            tracing::warn!(path = %self.ctx.key, job = %self.ctx.job, dev = g.identity.dev, inode = g.identity.ino, offset = g.offset, size = g.size, lost_bytes = bytes,
                "A rotated generation of this file whose lines were not all delivered is gone (deleted, compressed or moved out of its directory); what it held past the offset is lost.");
        }
        for (opened, g, name) in older {
            tracing::info!(path = %self.ctx.key, job = %self.ctx.job, found = %name.display(), offset = g.offset,
                "Found a rotated generation with lines not yet delivered; reading it to its end before the newer one.");
            self.hold(opened, g.offset, g.stamps.fresh(now));
        }
        match (current, open_error) {
            (Some((opened, start)), _) => self.hold(opened, start, current_stamps.fresh(now)),
            (None, Some(e)) => {
                let exit = self.open_failed(&e);
                if self.queue.is_empty() {
                    return Err(exit);
                }
            }
            (None, None) => {}
        }
        match self.queue.pop_front() {
            Some(q) => self.start(q).await,
            None => Err(Exit::Missing),
        }
    }

    /// Registers `opened` as a held generation of this reader, with the stamps its lines
    /// from `start` on were handed on with before a restart, and queues it.
    fn hold(&mut self, opened: Opened, start: u64, stamps: Stamps) {
        let generation = self.state.add_stamped(
            self.ctx.owner,
            opened.identity,
            opened.fingerprint,
            start,
            opened.size,
            Phase::Held,
            stamps,
        );
        self.queue.push_back(Queued {
            opened,
            start,
            generation,
        });
    }

    /// Starts reading a queued generation (in a blocking task: it seeks).
    async fn start(&mut self, q: Queued) -> Result<Box<OpenFile>, Exit> {
        let settings = Arc::clone(&self.ctx.settings);
        let Queued {
            opened,
            start,
            generation,
        } = q;
        let attached = self
            .blocking(move || OpenFile::start(opened, start, generation, &settings).map(Box::new))
            .await;
        match attached {
            Ok(Ok(of)) => {
                of.generation.reading();
                self.ctx.shared.set_tracker(Some(Arc::clone(&of.tracker)));
                self.ctx.shared.set_size(of.size);
                self.fm.read_bytes.set(gauge_value(of.pos));
                self.fm.file_bytes.set(gauge_value(of.size));
                tracing::info!(path = %self.ctx.key, job = %self.ctx.job, offset = of.pos, "Tailing file.");
                Ok(of)
            }
            Ok(Err(e)) => Err(self.open_failed(&e)),
            Err(e) => Err(self.open_failed(&e)),
        }
    }

    /// Logs why a file could not be opened (retried at the next sync).
    fn open_failed(&self, error: &dyn std::fmt::Display) -> Exit {
        tracing::warn!(path = %self.ctx.key, job = %self.ctx.job, error = %error, "Failed to open file for tailing; retrying at the next sync.");
        Exit::OpenFailed
    }

    /// Opens what the path names now as a new generation read from its start.
    async fn open_at_path(&mut self) -> Result<Box<OpenFile>, Exit> {
        let path = self.ctx.path.clone();
        match self.blocking(move || Opened::open(&path)).await {
            Ok(Ok(opened)) => {
                self.hold(opened, 0, Stamps::default());
                match self.queue.pop_back() {
                    Some(q) => self.start(q).await,
                    None => Err(Exit::OpenFailed),
                }
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(Exit::Deleted),
            Ok(Err(e)) => Err(self.open_failed(&e)),
            Err(e) => Err(self.open_failed(&e)),
        }
    }

    async fn read_loop(&mut self, mut of: Box<OpenFile>) -> Exit {
        let read_buffer = self.ctx.settings.read_buffer_bytes.max(1);
        loop {
            if self.shutdown.is_cancelled() {
                return Exit::Shutdown;
            }
            if self.ctx.slot.take_replaced() || self.last_watch.elapsed() >= WATCH_FALLBACK {
                self.watch_path(&of).await;
            }
            if !self.draining.is_empty()
                && self.last_drain.elapsed() >= self.ctx.settings.min_poll
                && let Err(exit) = self.drain(&of).await
            {
                return exit;
            }
            let want = of.want(read_buffer).min(self.ctx.budget_cap);
            let permit = if want > 0 {
                match self.acquire(want).await {
                    Ok(Some(p)) => Some(p),
                    // The path changed, or a while passed: look at it, then wait on.
                    Ok(None) => continue,
                    Err(exit) => return exit,
                }
            } else {
                None
            };
            let round;
            (of, round) = match self.read_round(of, permit.as_ref(), read_buffer).await {
                Ok(r) => r,
                Err(exit) => return exit,
            };
            match round {
                Ok(Round::Read { bytes, split }) => {
                    let permit = trim(permit, bytes);
                    if let Err(exit) = self.emit(&mut of, split, permit, None).await {
                        return exit;
                    }
                }
                Ok(Round::NeedPermits) => {}
                Ok(Round::Eof) => {
                    self.ctx.shared.set_size(of.size);
                    self.fm.file_bytes.set(gauge_value(of.size));
                    of.generation.set_size(of.size);
                    if self.stop.is_cancelled() {
                        return Exit::Stopped;
                    }
                    if let Err(exit) = self.park(&mut of).await {
                        return exit;
                    }
                }
                Ok(Round::Truncated { lost }) => {
                    let read = of.line_end();
                    // Lines of the old content may still be in flight: that generation stays
                    // in the committed state (as a possible copy) until they are delivered.
                    of.generation.truncated(read);
                    // Looked for even when nothing seen is unread: the service may have
                    // written more between the last look and the copy, and only the copy
                    // still holds it.
                    let (path, id, fp) = (self.ctx.path.clone(), of.identity, of.fingerprint);
                    let copy = self
                        .blocking(move || find_copy(&path, id, fp, read))
                        .await
                        .ok()
                        .flatten()
                        .filter(|(copy, _)| copy.size > read);
                    if let Some((copy, name)) = copy {
                        // copytruncate: what was not read yet is in the copy. Read it there
                        // (from the last complete line), then the file again from its start.
                        let uncovered = (lost + read).saturating_sub(copy.size);
                        self.fm.lost_bytes.inc_by(uncovered);
                        tracing::info!(path = %self.ctx.key, copy = %name.display(), offset = read, lost_bytes = uncovered, "File was truncated after being copied; reading the rest of its old content from the copy, then the file again from the start.");
                        let generation = self.state.add(
                            self.ctx.owner,
                            of.identity,
                            Fingerprint::default(),
                            0,
                            0,
                            Phase::Held,
                        );
                        self.queue.push_front(Queued {
                            opened: of.into_opened(),
                            start: 0,
                            generation,
                        });
                        self.hold(copy, read, Stamps::default());
                        let Some(q) = self.queue.pop_back() else {
                            return Exit::Failed;
                        };
                        match self.start(q).await {
                            Ok(new) => of = new,
                            Err(exit) => return exit,
                        }
                        continue;
                    }
                    self.fm.lost_bytes.inc_by(lost);
                    tracing::info!(path = %self.ctx.key, offset = of.pos, size = of.size, lost_bytes = lost, "File was truncated; reading it again from the start.");
                    let generation = self.state.add(
                        self.ctx.owner,
                        of.identity,
                        Fingerprint::default(),
                        0,
                        0,
                        Phase::Reading,
                    );
                    match of.restart(generation) {
                        Ok(()) => self.ctx.shared.set_tracker(Some(Arc::clone(&of.tracker))),
                        Err(e) => {
                            tracing::warn!(path = %self.ctx.key, error = %e, "Seeking to the start of a truncated file failed.");
                            return Exit::Failed;
                        }
                    }
                }
                Ok(Round::Rotated { replaced }) => {
                    // Held generations are read even when asked to stop: they hold lines of
                    // the path that nothing else will read.
                    let next = if let Some(q) = self.queue.pop_front() {
                        tracing::info!(path = %self.ctx.key, held = self.queue.len(), "File was rotated; reading the next generation, opened while this one was read, from the start.");
                        Some(self.start(q).await)
                    } else if replaced && !self.stop.is_cancelled() {
                        tracing::info!(path = %self.ctx.key, "File was rotated; reading the new file from the start.");
                        Some(self.open_at_path().await)
                    } else {
                        None
                    };
                    match next {
                        Some(Ok(new)) => {
                            let old = std::mem::replace(&mut of, new);
                            self.drain_later(old);
                            self.linger_until = None;
                            continue;
                        }
                        Some(Err(exit)) => {
                            self.retire(&of);
                            return exit;
                        }
                        None => {}
                    }
                    if self.stop.is_cancelled() {
                        self.retire(&of);
                        return Exit::Stopped;
                    }
                    // The path is empty (between a rename and the new file, or removed):
                    // the service may still write through its descriptor for a while.
                    let until = *self
                        .linger_until
                        .get_or_insert_with(|| Instant::now() + ROTATE_WAIT);
                    if Instant::now() < until {
                        if let Err(exit) = self.linger(until).await {
                            return exit;
                        }
                        continue;
                    }
                    tracing::info!(path = %self.ctx.key, "File was removed; it was read to its end and is closed.");
                    self.retire(&of);
                    return Exit::Deleted;
                }
                Err(e) => {
                    tracing::warn!(path = %self.ctx.key, job = %self.ctx.job, error = %e, "Reading file failed; retrying at the next sync.");
                    return Exit::Failed;
                }
            }
        }
    }

    /// Looks at the path for a generation newer than `of` and the queued ones, and holds it
    /// open. Queued generations that were short when opened get their fingerprint and size
    /// taken again, so that a crash leaves enough to recognise them by.
    async fn watch_path(&mut self, of: &OpenFile) {
        self.last_watch = Instant::now();
        let short: Vec<(usize, File)> = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, q)| u64::from(q.opened.fingerprint.len) < FINGERPRINT_BYTES)
            // dup(2) of a descriptor does not block
            .filter_map(|(i, q)| q.opened.file.try_clone().ok().map(|f| (i, f)))
            .collect();
        let full = self.queue.len() >= MAX_HELD_GENERATIONS;
        let mut known: Vec<FileIdentity> = self.queue.iter().map(|q| q.opened.identity).collect();
        known.extend(self.draining.iter().map(|d| d.of.identity));
        known.push(of.identity);
        let path = self.ctx.path.clone();
        let looked = self
            .blocking(move || {
                let newer = (!full)
                    .then(|| OpenFile::open_newer(&path, &known))
                    .flatten();
                let grown: Vec<(usize, Fingerprint, u64)> = short
                    .into_iter()
                    .filter_map(|(i, f)| {
                        let size = f.metadata().ok()?.len();
                        Some((i, fingerprint_of(&f, FINGERPRINT_BYTES).ok()?, size))
                    })
                    .collect();
                (newer, grown)
            })
            .await;
        let Ok((newer, grown)) = looked else {
            return;
        };
        for (i, fp, size) in grown {
            if let Some(q) = self.queue.get_mut(i) {
                q.generation.set_size(size);
                if fp != q.opened.fingerprint {
                    q.opened.fingerprint = fp;
                    q.generation.set_fingerprint(fp);
                }
            }
        }
        if full {
            tracing::warn!(path = %self.ctx.key, held = self.queue.len(), "Rotated faster than it can be read: no more generations are held open; later ones are read only if still at the path.");
            return;
        }
        if let Some(opened) = newer {
            tracing::info!(path = %self.ctx.key, held = self.queue.len() + 1, "File was rotated while an older generation is still being read; holding the new one open.");
            self.hold(opened, 0, Stamps::default());
        }
    }

    /// Keeps a generation that was rotated away for [`ROTATE_WAIT`], read again when it grows.
    fn drain_later(&mut self, of: Box<OpenFile>) {
        if self.draining.len() >= MAX_HELD_GENERATIONS {
            let oldest = self.draining.remove(0);
            self.retire(&oldest.of);
        }
        self.draining.push(Draining {
            of,
            until: Instant::now() + ROTATE_WAIT,
        });
        self.last_drain = Instant::now();
    }

    /// Lets a generation go: its last unterminated line can no longer be completed (counted
    /// as lost), and it stays in the committed state only while lines are in flight.
    fn retire(&self, of: &OpenFile) {
        let lost = of.buffer.pending_bytes();
        if lost > 0 {
            self.fm.lost_bytes.inc_by(lost);
        }
        of.generation.left(of.size);
    }

    /// Reads what was written to generations rotated away since they were last looked at;
    /// retires those past their time. `current` is the file being read.
    async fn drain(&mut self, current: &OpenFile) -> Result<(), Exit> {
        self.last_drain = Instant::now();
        let read_buffer = self.ctx.settings.read_buffer_bytes.max(1);
        for mut d in std::mem::take(&mut self.draining) {
            let keep = loop {
                let want = d.of.want(read_buffer).min(self.ctx.budget_cap);
                let permit = if want > 0 {
                    match self.acquire(want).await {
                        Ok(Some(p)) => Some(p),
                        Ok(None) => break true, // looked at again next time
                        Err(exit) => return Err(exit),
                    }
                } else {
                    None
                };
                let round;
                (d.of, round) = self.read_round(d.of, permit.as_ref(), read_buffer).await?;
                match round {
                    Ok(Round::Read { bytes, split }) => {
                        let permit = trim(permit, bytes);
                        self.emit(&mut d.of, split, permit, Some(current)).await?;
                    }
                    Ok(Round::NeedPermits) => {}
                    Ok(Round::Eof | Round::Rotated { .. }) => break Instant::now() < d.until,
                    Ok(Round::Truncated { lost }) => {
                        self.fm.lost_bytes.inc_by(lost);
                        break false;
                    }
                    Err(e) => {
                        tracing::debug!(path = %self.ctx.key, error = %e, "Reading a rotated file failed; it is let go.");
                        break false;
                    }
                }
            };
            if keep {
                self.draining.push(d);
            } else {
                self.retire(&d.of);
            }
        }
        Ok(())
    }

    /// Waits a little while the path is empty and the file is kept (or until a file appears
    /// at the path, or the reader is stopped).
    async fn linger(&self, until: Instant) -> Result<(), Exit> {
        let wake = (Instant::now() + self.ctx.settings.min_poll).min(until);
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Exit::Shutdown),
            _ = self.stop.cancelled() => Ok(()),
            _ = self.ctx.slot.replaced() => {
                // seen by the next round of the file at the path
                self.ctx.slot.take_replaced();
                Ok(())
            }
            _ = tokio::time::sleep_until(wake.into()) => Ok(()),
        }
    }

    /// One read round of `of` on the blocking pool, reading at most what `permit` grants.
    async fn read_round(
        &self,
        mut of: Box<OpenFile>,
        permit: Option<&OwnedSemaphorePermit>,
        read_buffer: usize,
    ) -> Result<(Box<OpenFile>, std::io::Result<Round>), Exit> {
        let granted = permit.map_or(0, |p| p.num_permits());
        let path = self.ctx.path.clone();
        self.blocking(move || {
            let round = of.round(granted, read_buffer, &path);
            (of, round)
        })
        .await
        .map_err(|e| {
            tracing::error!(path = %self.ctx.key, error = %e, "Reading file failed.");
            Exit::Failed
        })
    }

    /// Runs `f` on the blocking pool once a blocking slot is free.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        // The slots are never closed; if they were, running without one is still correct.
        let slot = Arc::clone(&self.ctx.io_slots).acquire_owned().await.ok();
        let res = tokio::task::spawn_blocking(f).await;
        drop(slot);
        res
    }

    /// Waits for budget permits (backpressure) or shutdown; `None` when a file appeared at the
    /// path or [`WATCH_FALLBACK`] passed without permits, so that the caller looks at the path.
    async fn acquire(&self, n: usize) -> Result<Option<OwnedSemaphorePermit>, Exit> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Exit::Shutdown),
            p = Arc::clone(&self.ctx.budget).acquire_many_owned(n) => p.map(Some).map_err(|_| {
                tracing::error!(path = %self.ctx.key, "The in-flight byte budget was closed; the reader stops.");
                Exit::Failed
            }),
            _ = self.ctx.slot.replaced() => Ok(None),
            _ = tokio::time::sleep(WATCH_FALLBACK) => Ok(None),
        }
    }

    /// Parks at end of file until the file changes, or the reader is stopped.
    async fn park(&self, of: &mut OpenFile) -> Result<(), Exit> {
        let slot = &self.ctx.slot;
        let min_poll = self.ctx.settings.min_poll;
        slot.park(of.identity, of.pos, of.modified, min_poll);
        let res = tokio::select! {
            _ = self.shutdown.cancelled() => Err(Exit::Shutdown),
            _ = self.stop.cancelled() => Ok(()),
            _ = slot.woken() => Ok(()),
            // generations rotated away are looked at too
            _ = tokio::time::sleep(min_poll), if !self.draining.is_empty() => Ok(()),
        };
        if let Some(size) = slot.unpark() {
            // A hint of how much to read; a smaller size (truncation) is found by the next
            // round's own fstat, and keeping the larger one keeps the lost-bytes count right.
            of.size = of.size.max(size);
        }
        res
    }

    /// Hands the lines of the last round on as one chunk. While it waits for room in the
    /// job's channel, a file appearing at the path is still opened and held at once.
    /// `current` is the file being read when `of` is a generation rotated away (draining).
    async fn emit(
        &mut self,
        of: &mut OpenFile,
        split: Split,
        permit: Option<OwnedSemaphorePermit>,
        current: Option<&OpenFile>,
    ) -> Result<(), Exit> {
        let end = of.line_end();
        if split.long_lines > 0 {
            self.fm.long_lines.inc_by(split.long_lines);
        }
        if split.consumed == 0 {
            return Ok(()); // only part of a line so far; its permits go back
        }
        if of.lines.is_empty() {
            // Only dropped long lines: nothing to deliver, so the chunk completes at once and
            // the position moves past them when the chunks before it complete.
            drop(of.tracker.chunk(end, None));
            of.starts.clear();
        } else {
            let (ctx, shutdown) = (self.ctx, self.shutdown);
            let slot = loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return Err(Exit::Shutdown),
                    s = ctx.output.reserve() => break s,
                    _ = ctx.slot.replaced() => {
                        ctx.slot.take_replaced();
                        match current {
                            Some(c) => self.watch_path(c).await,
                            None => self.watch_path(of).await,
                        }
                    }
                }
            };
            let Ok(slot) = slot else {
                tracing::warn!(job = %self.ctx.job, path = %self.ctx.key, "The job's entry channel is closed; the reader stops.");
                return Err(Exit::OutputClosed);
            };
            // Stamped and recorded before the chunk is registered: its stamps must be in the
            // save that lets it be pushed.
            let mut stamps = Vec::with_capacity(of.lines.len());
            let chunk_start = end - split.consumed;
            let (mark, replayed) = of.stamper.stamp(
                chunk_start,
                &of.starts,
                Timestamp::now().0,
                &mut self.last_stamp,
                &mut stamps,
            );
            let replayable = of.generation.stamped(mark, end);
            let ack = of.tracker.stamped_chunk(end, permit, replayable);
            let entries: Vec<Entry> = of
                .lines
                .drain(..)
                .zip(stamps)
                .enumerate()
                .map(|(i, (line, ts))| {
                    let mut e =
                        Entry::new(self.ctx.labels.clone(), Timestamp(ts), line, ack.clone());
                    if i < replayed {
                        // Sent before: the stream clock must not move it (Loki merges it).
                        e.stamp = Stamp::Replayed;
                    }
                    e
                })
                .collect();
            of.starts.clear();
            slot.send(SourceEvent::Entries(entries));
        }
        self.fm.read_lines.inc_by(split.lines);
        of.generation.set_size(of.size);
        if current.is_some() {
            return Ok(()); // the path's gauges follow the file being read
        }
        self.fm.read_bytes.set(gauge_value(end));
        self.fm.file_bytes.set(gauge_value(of.size));
        self.ctx.shared.set_size(of.size);
        self.ctx.shared.refresh_uncommitted();
        Ok(())
    }
}

/// Keeps `keep` of the permits (the bytes actually read) and returns the rest to the budget.
fn trim(permit: Option<OwnedSemaphorePermit>, keep: usize) -> Option<OwnedSemaphorePermit> {
    let mut permit = permit?;
    if permit.num_permits() <= keep {
        return Some(permit);
    }
    permit.split(keep).filter(|p| p.num_permits() > 0)
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
