//! One file's reader: a state machine run as a tokio task, with every file system call in a
//! blocking round (`spawn_blocking`), never on the runtime's threads. Rounds of all readers
//! share a small number of blocking slots, so 10,000 busy files do not mean 10,000 threads.
//!
//! ```text
//!  open (start offset from positions) ─► [permits ─► read round ─► chunk ─► send]*
//!        ▲                                          │ end of file
//!        │ path names a new file                    ▼
//!        └──────── rotated ◄── drain old fd ◄── park until the poller sees a change
//!                  truncated ─► restart at 0 on the same fd (new tracker)
//!                  path gone ─► drain old fd, close, exit (Deleted)
//! ```
//!
//! Invariants:
//! - a chunk is registered with the tracker at the offset just after its last complete line,
//!   only once a channel slot is reserved for its entries, so a shutdown while waiting never
//!   leaves a registered chunk whose entries were not handed on;
//! - budget permits for a read are taken *before* reading (bounded by what the file holds), so a
//!   reader blocked by backpressure holds no read data;
//! - rotation: the path's new identity is seen first, then the old descriptor is read to its
//!   end, so everything written to the old file before the rotation was noticed is read once;
//! - on shutdown the tracker stays attached to positions (acks during the flush still commit).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::TailSettings;
use super::identity::identity_of;
use super::line_buffer::{LineBuffer, Split};
use super::poller::PollSlot;
use super::status::ReaderShared;
use crate::entry::{Entry, LabelSet, Timestamp};
use crate::metrics::Metrics;
use crate::positions::acks::Tracker;
use crate::positions::{FileIdentity, Positions, SavedPosition};

/// Why a reader ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The tailer is shutting down.
    Shutdown,
    /// Asked to stop (the path no longer matches); what the file held was read first.
    Stopped,
    /// The path vanished; the open file was read to its end and closed.
    Deleted,
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
    pub(crate) output: mpsc::Sender<Vec<Entry>>,
    pub(crate) shared: Arc<ReaderShared>,
    pub(crate) slot: Arc<PollSlot>,
}

/// Metric handles of one reader, looked up once.
struct FileMetrics {
    read_lines: IntCounter,
    read_bytes: IntGauge,
    file_bytes: IntGauge,
    long_lines: IntCounter,
    lost_bytes: IntCounter,
}

/// An open file and its reading state (moved into each blocking round and back).
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    identity: FileIdentity,
    /// Offset of the next byte to read from `file`.
    pos: u64,
    /// File size at the last `fstat` (or the poll that woke the reader).
    size: u64,
    buffer: LineBuffer,
    tracker: Arc<Tracker>,
    /// Lines completed by the last round (reused between rounds).
    lines: Vec<Bytes>,
}

/// What one blocking round found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Round {
    /// `bytes` were read; `split` tells what completed (the lines are in `OpenFile::lines`).
    Read { bytes: usize, split: Split },
    /// There is data to read but no permits were granted for it (`size` is up to date).
    NeedPermits,
    /// End of file, and the path still names this file.
    Eof,
    /// The file is shorter than what was read: truncated in place. `lost` counts bytes that were
    /// in it and never read (what the previous size showed beyond the read offset, and an
    /// unterminated line).
    Truncated { lost: u64 },
    /// End of file, and the path names another file (`replaced`) or nothing.
    Rotated { replaced: bool },
}

/// Where reading starts for a file with identity `id` and size `size` (spec §5.3 plus the
/// identity check Promtail's positions cannot do).
pub(crate) fn start_offset(
    key: &str,
    saved: Option<SavedPosition>,
    id: FileIdentity,
    size: u64,
) -> u64 {
    match saved {
        None => 0,
        Some(SavedPosition {
            identity: Some(saved_id),
            offset,
        }) if saved_id != id => {
            tracing::info!(
                path = key,
                offset,
                "File was replaced while it was not tailed; reading it from the start."
            );
            0
        }
        Some(SavedPosition { offset, .. }) if size < offset => {
            tracing::info!(
                path = key,
                offset,
                size,
                "File is shorter than its saved position (truncated while not tailed); reading it from the start."
            );
            0
        }
        Some(SavedPosition { offset, .. }) => offset,
    }
}

impl OpenFile {
    /// Opens `path` (blocking) and attaches a new tracker to positions. `from_start` ignores the
    /// saved position (a file that replaced the one being read).
    pub(crate) fn open(
        path: &Path,
        key: &str,
        positions: &Positions,
        settings: &TailSettings,
        from_start: bool,
    ) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "file is a directory",
            ));
        }
        let identity = identity_of(&meta);
        let start = if from_start {
            0
        } else {
            start_offset(key, positions.get(key), identity, meta.len())
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start))?;
        }
        let tracker = Tracker::new(start);
        positions.track(key, identity, Arc::clone(&tracker));
        Ok(OpenFile {
            file,
            identity,
            pos: start,
            size: meta.len(),
            buffer: LineBuffer::new(settings.max_line_bytes, settings.long_line_action),
            tracker,
            lines: Vec::new(),
        })
    }

    /// Offset just after the last complete line read.
    pub(crate) fn line_end(&self) -> u64 {
        self.pos - self.buffer.pending_bytes()
    }

    /// Bytes worth reading next (what the file holds beyond the read offset, up to one buffer).
    fn want(&self, read_buffer: usize) -> usize {
        let left = self.size.saturating_sub(self.pos);
        usize::try_from(left).unwrap_or(usize::MAX).min(read_buffer)
    }

    /// One blocking round: reads at most `granted` bytes, or checks for truncation and rotation
    /// at end of file.
    pub(crate) fn round(
        &mut self,
        granted: usize,
        read_buffer: usize,
        path: &Path,
    ) -> io::Result<Round> {
        let prev_size = self.size;
        self.size = self.file.metadata()?.len();
        if self.size < self.pos {
            return Ok(self.truncated(prev_size));
        }
        if self.size > self.pos {
            let want = self.want(read_buffer).min(granted);
            if want == 0 {
                return Ok(Round::NeedPermits);
            }
            let bytes = self.buffer.read_from(&mut self.file, want)?;
            if bytes == 0 {
                // The size said there was more; wait for the next change instead of spinning.
                return Ok(Round::Eof);
            }
            self.pos += bytes as u64;
            let split = self.buffer.split_lines(&mut self.lines);
            return Ok(Round::Read { bytes, split });
        }
        // At end of file. Look at the path first, then at the descriptor again: what the writer
        // put in the old file before the path changed is then visible and gets read.
        let replaced = match std::fs::metadata(path) {
            Ok(meta) if identity_of(&meta) == self.identity => return Ok(Round::Eof),
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "Checking a file's path failed.");
                return Ok(Round::Eof);
            }
        };
        let prev_size = self.size;
        self.size = self.file.metadata()?.len();
        if self.size < self.pos {
            return Ok(self.truncated(prev_size));
        }
        if self.size > self.pos {
            return Ok(Round::NeedPermits);
        }
        Ok(Round::Rotated { replaced })
    }

    fn truncated(&self, prev_size: u64) -> Round {
        Round::Truncated {
            lost: prev_size.saturating_sub(self.pos) + self.buffer.pending_bytes(),
        }
    }

    /// Starts again at offset 0 of the same descriptor, with a new tracker (after truncation).
    fn restart(&mut self) -> io::Result<Arc<Tracker>> {
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.buffer.clear();
        self.tracker = Tracker::new(0);
        Ok(Arc::clone(&self.tracker))
    }

    /// Capacity of the line buffer (tests assert it stays bounded).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buffer.capacity()
    }

    #[cfg(test)]
    pub(crate) fn take_lines(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.lines)
    }
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
    let mut reader = Reader {
        ctx: &ctx,
        fm: &fm,
        stop: &stop,
        shutdown: &shutdown,
    };
    let Some(of) = reader.open(false).await else {
        return Exit::OpenFailed;
    };
    ctx.metrics.files_active.inc();
    let exit = reader.read_loop(of).await;
    ctx.metrics.files_active.dec();
    ctx.shared.set_tracker(None);
    exit
}

struct Reader<'a> {
    ctx: &'a ReaderCtx,
    fm: &'a FileMetrics,
    stop: &'a CancellationToken,
    shutdown: &'a CancellationToken,
}

impl Reader<'_> {
    /// Opens the path in a blocking task; logs and returns `None` on failure.
    async fn open(&mut self, from_start: bool) -> Option<Box<OpenFile>> {
        let (path, key) = (self.ctx.path.clone(), self.ctx.key.clone());
        let (positions, settings) = (
            Arc::clone(&self.ctx.positions),
            Arc::clone(&self.ctx.settings),
        );
        let opened = self
            .blocking(move || {
                OpenFile::open(&path, &key, &positions, &settings, from_start).map(Box::new)
            })
            .await;
        match opened {
            Ok(Ok(of)) => {
                self.ctx.shared.set_tracker(Some(Arc::clone(&of.tracker)));
                self.ctx.shared.set_size(of.size);
                self.fm.read_bytes.set(gauge_value(of.pos));
                self.fm.file_bytes.set(gauge_value(of.size));
                tracing::info!(path = %self.ctx.key, job = %self.ctx.job, offset = of.pos, "Tailing file.");
                Some(of)
            }
            Ok(Err(e)) => {
                tracing::warn!(path = %self.ctx.key, job = %self.ctx.job, error = %e, "Failed to open file for tailing; retrying at the next sync.");
                None
            }
            Err(e) => {
                tracing::error!(path = %self.ctx.key, error = %e, "Opening file failed.");
                None
            }
        }
    }

    async fn read_loop(&mut self, mut of: Box<OpenFile>) -> Exit {
        let read_buffer = self.ctx.settings.read_buffer_bytes.max(1);
        loop {
            if self.shutdown.is_cancelled() {
                return Exit::Shutdown;
            }
            let want = of.want(read_buffer).min(self.ctx.budget_cap);
            let permit = if want > 0 {
                match self.acquire(want).await {
                    Ok(p) => Some(p),
                    Err(exit) => return exit,
                }
            } else {
                None
            };
            let granted = permit.as_ref().map_or(0, |p| p.num_permits());
            let path = self.ctx.path.clone();
            let done = self
                .blocking(move || {
                    let round = of.round(granted, read_buffer, &path);
                    (of, round)
                })
                .await;
            let round;
            (of, round) = match done {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(path = %self.ctx.key, error = %e, "Reading file failed.");
                    return Exit::Failed;
                }
            };
            match round {
                Ok(Round::Read { bytes, split }) => {
                    let permit = trim(permit, bytes);
                    if let Err(exit) = self.emit(&mut of, split, permit).await {
                        return exit;
                    }
                }
                Ok(Round::NeedPermits) => {}
                Ok(Round::Eof) => {
                    self.ctx.shared.set_size(of.size);
                    self.fm.file_bytes.set(gauge_value(of.size));
                    if self.stop.is_cancelled() {
                        return Exit::Stopped;
                    }
                    if let Err(exit) = self.park(&mut of).await {
                        return exit;
                    }
                }
                Ok(Round::Truncated { lost }) => {
                    self.fm.lost_bytes.inc_by(lost);
                    tracing::info!(path = %self.ctx.key, offset = of.pos, size = of.size, lost_bytes = lost, "File was truncated; reading it again from the start.");
                    match of.restart() {
                        Ok(tracker) => {
                            self.ctx.positions.track(
                                &self.ctx.key,
                                of.identity,
                                Arc::clone(&tracker),
                            );
                            self.ctx.shared.set_tracker(Some(tracker));
                        }
                        Err(e) => {
                            tracing::warn!(path = %self.ctx.key, error = %e, "Seeking to the start of a truncated file failed.");
                            return Exit::Failed;
                        }
                    }
                }
                Ok(Round::Rotated { replaced }) => {
                    let lost = of.buffer.pending_bytes();
                    if lost > 0 {
                        // An unterminated last line of the old file can never be completed.
                        self.fm.lost_bytes.inc_by(lost);
                    }
                    if self.stop.is_cancelled() {
                        return Exit::Stopped;
                    }
                    if !replaced {
                        tracing::info!(path = %self.ctx.key, "File was removed; it was read to its end and is closed.");
                        return Exit::Deleted;
                    }
                    tracing::info!(path = %self.ctx.key, "File was rotated; reading the new file from the start.");
                    // The old descriptor is closed here, after its last read.
                    drop(of);
                    match self.open(true).await {
                        Some(new) => of = new,
                        None => return Exit::OpenFailed,
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %self.ctx.key, job = %self.ctx.job, error = %e, "Reading file failed; retrying at the next sync.");
                    return Exit::Failed;
                }
            }
        }
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

    /// Waits for budget permits (backpressure) or shutdown.
    async fn acquire(&self, n: usize) -> Result<OwnedSemaphorePermit, Exit> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Exit::Shutdown),
            p = Arc::clone(&self.ctx.budget).acquire_many_owned(n) => p.map_err(|_| {
                tracing::error!(path = %self.ctx.key, "The in-flight byte budget was closed; the reader stops.");
                Exit::Failed
            }),
        }
    }

    /// Parks at end of file until the file changes, or the reader is stopped.
    async fn park(&self, of: &mut OpenFile) -> Result<(), Exit> {
        let slot = &self.ctx.slot;
        slot.park(of.identity, of.pos, self.ctx.settings.min_poll);
        let res = tokio::select! {
            _ = self.shutdown.cancelled() => Err(Exit::Shutdown),
            _ = self.stop.cancelled() => Ok(()),
            _ = slot.woken() => Ok(()),
        };
        if let Some(size) = slot.unpark() {
            // A hint of how much to read; a smaller size (truncation) is found by the next
            // round's own fstat, and keeping the larger one keeps the lost-bytes count right.
            of.size = of.size.max(size);
        }
        res
    }

    /// Hands the lines of the last round on as one chunk.
    async fn emit(
        &self,
        of: &mut OpenFile,
        split: Split,
        permit: Option<OwnedSemaphorePermit>,
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
        } else {
            let slot = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(Exit::Shutdown),
                s = self.ctx.output.reserve() => s,
            };
            let Ok(slot) = slot else {
                tracing::warn!(job = %self.ctx.job, path = %self.ctx.key, "The job's entry channel is closed; the reader stops.");
                return Err(Exit::OutputClosed);
            };
            let ack = of.tracker.chunk(end, permit);
            let ts = Timestamp::now();
            let entries: Vec<Entry> = of
                .lines
                .drain(..)
                .map(|line| Entry::new(self.ctx.labels.clone(), ts, line, ack.clone()))
                .collect();
            slot.send(entries);
        }
        self.fm.read_lines.inc_by(split.lines);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tail::LongLineAction;
    use std::io::Write;

    fn settings(cap: usize, action: LongLineAction, read: usize) -> TailSettings {
        TailSettings {
            max_line_bytes: cap,
            long_line_action: action,
            read_buffer_bytes: read,
            ..TailSettings::default()
        }
    }

    const ID: FileIdentity = FileIdentity { dev: 1, ino: 7 };

    #[test]
    fn start_offset_rules() {
        let saved = |offset, identity| Some(SavedPosition { offset, identity });
        let other = FileIdentity { dev: 1, ino: 8 };
        assert_eq!(start_offset("/f", None, ID, 100), 0, "new file: from 0");
        assert_eq!(start_offset("/f", saved(40, Some(ID)), ID, 100), 40);
        assert_eq!(
            start_offset("/f", saved(40, None), ID, 100),
            40,
            "Promtail positions have no identity"
        );
        assert_eq!(
            start_offset("/f", saved(40, Some(other)), ID, 100),
            0,
            "replaced while stopped"
        );
        assert_eq!(
            start_offset("/f", saved(400, Some(ID)), ID, 100),
            0,
            "truncated while stopped"
        );
        assert_eq!(start_offset("/f", saved(100, Some(ID)), ID, 100), 100);
    }

    /// Drives rounds with unlimited permits until end of file; returns the lines.
    fn drain(of: &mut OpenFile, path: &Path, read: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match of.round(usize::MAX, read, path).unwrap() {
                Round::Read { .. } | Round::NeedPermits => {
                    out.extend(of.take_lines().iter().map(|b| b.to_vec()))
                }
                Round::Eof => return out,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn fifty_megabyte_line_keeps_the_buffer_bounded() {
        let cap = 256 * 1024;
        let read = 64 * 1024;
        for action in [LongLineAction::Truncate, LongLineAction::Drop] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("big.log");
            let mut f = File::create(&path).unwrap();
            let block = vec![b'x'; 1024 * 1024];
            for _ in 0..50 {
                f.write_all(&block).unwrap();
            }
            f.flush().unwrap();
            let positions = Positions::in_memory();
            let s = settings(cap, action, read);
            let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
            let mut max_capacity = 0;
            loop {
                match of.round(usize::MAX, read, &path).unwrap() {
                    Round::Read { split, .. } => {
                        assert_eq!(split, Split::default(), "nothing completes without a \\n");
                        max_capacity = max_capacity.max(of.buffer_capacity());
                    }
                    Round::Eof => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(
                of.take_lines().is_empty(),
                "an unterminated line is never emitted"
            );
            assert_eq!(of.pos, 50 * 1024 * 1024);
            assert_eq!(of.line_end(), 0);
            assert!(
                max_capacity <= cap + read,
                "buffer capacity {max_capacity} for a 50 MiB line (cap {cap}, read {read})"
            );
            f.write_all(b"\nnext\n").unwrap();
            f.flush().unwrap();
            let lines = drain(&mut of, &path, read);
            let want: Vec<Vec<u8>> = match action {
                LongLineAction::Truncate => vec![vec![b'x'; cap], b"next".to_vec()],
                LongLineAction::Drop => vec![b"next".to_vec()],
            };
            assert_eq!(lines, want);
            assert_eq!(of.line_end(), 50 * 1024 * 1024 + 6);
        }
    }

    #[test]
    fn reads_no_more_than_granted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let positions = Positions::in_memory();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
        assert_eq!(of.round(0, 1024, &path).unwrap(), Round::NeedPermits);
        let r = of.round(5, 1024, &path).unwrap();
        assert_eq!(
            r,
            Round::Read {
                bytes: 5,
                split: Split {
                    lines: 1,
                    consumed: 4,
                    long_lines: 0
                }
            }
        );
        assert_eq!(of.take_lines(), vec![Bytes::from_static(b"one")]);
        assert_eq!(of.line_end(), 4);
    }

    #[test]
    fn rotation_and_truncation_are_reported_at_end_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\npart").unwrap();
        let positions = Positions::in_memory();
        let s = settings(100, LongLineAction::Truncate, 1024);
        let mut of = OpenFile::open(&path, "k", &positions, &s, false).unwrap();
        assert_eq!(drain(&mut of, &path, 1024).len(), 2);
        // Truncated in place: the unterminated "part" is lost.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Truncated { lost: 4 }
        );
        of.restart().unwrap();
        std::fs::write(&path, b"x\n").unwrap();
        assert_eq!(drain(&mut of, &path, 1024), vec![b"x".to_vec()]);
        // Renamed away and replaced.
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Rotated { replaced: false }
        );
        std::fs::write(&path, b"new\n").unwrap();
        assert_eq!(
            of.round(usize::MAX, 1024, &path).unwrap(),
            Round::Rotated { replaced: true }
        );
    }
}
