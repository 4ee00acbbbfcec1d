//! The generations of one path that its committed state covers.
//!
//! A path is a name; the files behind it change. After a rotation by rename the reader still
//! has lines of the old file (now `app.log.1`) in flight while it reads the new one; while
//! shipping lags behind it may hold several newer files open before it gets to them; after a
//! copytruncate, lines read from the old content may still be in flight while the same inode
//! starts again at 0. A crash in any of these states must not lose what is still on disk, so
//! the committed state of a path is the list of its *generations* that still matter, oldest
//! first, each with its identity, a fingerprint of its first bytes, its committed offset and
//! its size:
//!
//! - the generation being read ([`Phase::Reading`]);
//! - newer generations opened but not read yet ([`Phase::Held`], committed offset = start);
//! - older generations read to their end whose lines are not all acknowledged yet
//!   ([`Phase::Left`]); they are forgotten once their tracker has nothing in flight.
//!
//! Promtail's positions file keeps one offset per path: the newest generation's, since that
//! is the file Promtail would open at the path. The identity sidecar keeps the rest (see
//! `file.rs`), and a restarted reader finds the older generations again by identity in the
//! path's directory ([`crate::tail`]).
//!
//! Two targets may read one path; each reader is an *owner* and manages only its own
//! generations. Where two owners have a generation with the same identity, the smaller
//! committed offset is the one saved, so neither loses lines.
//!
//! Every change that a save must see (a commit, a generation added or left) signals the
//! positions writer through one shared [`Notify`], so positions follow acknowledgements
//! within a short, coalesced delay instead of once per `sync_period`.

use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::stamps::{Mark, Stamps};
use super::store::{FileIdentity, SavedPath, SavedPosition};
use crate::ack::StampGate;
use crate::ack::Tracker;

/// How many leading bytes of a file its fingerprint covers (fewer while the file is shorter).
pub const FINGERPRINT_BYTES: u64 = 256;

/// What recognises a file's content beyond its inode (inodes are reused after a delete): the
/// length and a hash of its first [`FINGERPRINT_BYTES`] bytes. `len == 0`: nothing known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Bytes hashed.
    pub len: u32,
    /// The first 8 bytes of their SHA-256, big-endian.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `head`, the first bytes of a file (at most [`FINGERPRINT_BYTES`]).
    pub fn of(head: &[u8]) -> Self {
        if head.is_empty() {
            return Fingerprint::default();
        }
        let digest = Sha256::digest(head);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Fingerprint {
            len: u32::try_from(head.len()).unwrap_or(u32::MAX),
            hash: u64::from_be_bytes(first),
        }
    }

    /// Whether nothing is known (an empty file when it was looked at).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `None` when nothing is known.
    pub fn known(self) -> Option<Self> {
        (!self.is_empty()).then_some(self)
    }
}

/// A generation as the sidecar saves it and a restarted reader looks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedGeneration {
    /// `(dev, inode)` of the file.
    pub identity: FileIdentity,
    /// Its first bytes.
    pub fingerprint: Fingerprint,
    /// Committed offset: everything before it is acknowledged.
    pub offset: u64,
    /// Its size when last seen (what is lost if it is gone: `size - offset`).
    pub size: u64,
    /// Its content was truncated away in place (copytruncate): it can only be found again as a
    /// copy, by fingerprint, under another name.
    pub copied: bool,
    /// The stamps of its lines handed on past `offset` (what a restart gives them again).
    pub stamps: Stamps,
}

/// What a reader starts from: older generations to read first (oldest first), then the saved
/// position of the file at the path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumePlan {
    /// Generations to find again and read to their end before the path's file.
    pub older: Vec<SavedGeneration>,
    /// The saved position of the file at the path, if any.
    pub current: Option<SavedPosition>,
    /// The size that file had when it was saved (what is lost if it is gone), 0 if unknown.
    pub current_size: u64,
    /// The stamps of that file's lines handed on past the saved offset.
    pub current_stamps: Stamps,
}

/// Where a generation is in its reader's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Being read.
    Reading,
    /// Opened, waiting until the older ones are read.
    Held,
    /// Read to its end (rotated away, or its content truncated); kept while lines of it are
    /// in flight.
    Left,
}

/// A reader's handle on one of its generations.
#[derive(Clone, Debug)]
pub struct GenHandle {
    state: Arc<PathState>,
    id: u64,
}

impl GenHandle {
    /// Records the generation's size. Not worth a save of its own (it only tells how much
    /// would be lost if the file vanished): the next save takes it along.
    pub fn set_size(&self, size: u64) {
        let mut inner = self.state.lock();
        if let Some(g) = inner.gens.iter_mut().find(|g| g.id == self.id) {
            g.size = size;
        }
    }

    /// Records the generation's fingerprint (its first bytes grew).
    pub fn set_fingerprint(&self, fingerprint: Fingerprint) {
        self.update(|g| g.fingerprint = fingerprint);
    }

    /// The generation is being read now.
    pub fn reading(&self) {
        self.update(|g| g.phase = Phase::Reading);
    }

    /// The generation was read to its end and left; `size` is what it held.
    pub fn left(&self, size: u64) {
        self.update(|g| {
            g.phase = Phase::Left;
            g.size = size;
        });
    }

    /// The generation's content was truncated away after `read` bytes of it were read: what
    /// is in flight can only be found again in a copy.
    pub fn truncated(&self, read: u64) {
        self.update(|g| {
            g.phase = Phase::Left;
            g.size = read;
            g.copied = true;
        });
    }

    /// Records a chunk handed on up to `end`, its lines past the replayed ones stamped from
    /// `mark`; true when its stamps will be saved (the chunk is then pushed only once they are).
    pub fn stamped(&self, mark: Option<Mark>, end: u64) -> bool {
        let mut inner = self.state.lock();
        let recorded = inner
            .gens
            .iter_mut()
            .find(|g| g.id == self.id)
            .is_some_and(|g| {
                let committed = g.tracker.committed();
                g.stamps.record(mark, end, committed)
            });
        drop(inner);
        if recorded {
            self.state.changed();
        }
        recorded
    }

    /// The stamps restored for this generation (what its first lines are given again).
    pub fn restored_stamps(&self) -> Stamps {
        let inner = self.state.lock();
        inner
            .gens
            .iter()
            .find(|g| g.id == self.id)
            .map(|g| g.stamps.clone())
            .unwrap_or_default()
    }

    /// The generation's tracker.
    pub fn tracker(&self) -> Arc<Tracker> {
        let inner = self.state.lock();
        inner
            .gens
            .iter()
            .find(|g| g.id == self.id)
            .map(|g| Arc::clone(&g.tracker))
            // Generations are removed only when left with nothing in flight; a handle whose
            // generation is gone gets a tracker that nothing reads.
            .unwrap_or_else(|| Tracker::new(0))
    }

    fn update(&self, f: impl FnOnce(&mut Live)) {
        let mut inner = self.state.lock();
        if let Some(g) = inner.gens.iter_mut().find(|g| g.id == self.id) {
            f(g);
        }
        drop(inner);
        self.state.changed();
    }
}

/// One generation in memory.
#[derive(Debug)]
struct Live {
    id: u64,
    owner: u64,
    identity: FileIdentity,
    fingerprint: Fingerprint,
    tracker: Arc<Tracker>,
    size: u64,
    phase: Phase,
    copied: bool,
    /// Marks of the lines handed on past the committed offset.
    stamps: Stamps,
}

impl Live {
    fn saved(&self) -> SavedGeneration {
        let offset = self.tracker.committed();
        let mut stamps = self.stamps.clone();
        stamps.prune(offset);
        SavedGeneration {
            identity: self.identity,
            fingerprint: self.fingerprint,
            offset,
            size: self.size,
            copied: self.copied,
            stamps,
        }
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Left && self.tracker.in_flight() == 0
    }
}

/// The generations of one path, shared by its readers and the positions map.
#[derive(Debug)]
pub struct PathState {
    inner: Mutex<Inner>,
    dirty: Arc<Notify>,
    gate: Arc<StampGate>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first (by when they were added).
    gens: Vec<Live>,
    next_id: u64,
    /// Readers attached now.
    owners: Vec<u64>,
    /// Owners that have attached at least once (a first attach gets `restored`).
    seen: Vec<u64>,
    /// What the positions file and sidecar said at start, for each owner's first attach.
    restored: ResumePlan,
    /// No reader will attach again (its path is gone): remove once nothing is in flight.
    forgotten: bool,
}

/// The path's state as a save writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSnapshot {
    /// The newest generation (the file at the path, as far as is known).
    pub current: SavedGeneration,
    /// Older generations with lines in flight, and held ones, oldest first.
    pub older: Vec<SavedGeneration>,
}

impl PathState {
    /// A state restored from disk (or empty), signalling `dirty` on every change; its chunks
    /// wait for `gate` before they are pushed.
    pub(crate) fn new(restored: ResumePlan, dirty: Arc<Notify>, gate: Arc<StampGate>) -> Arc<Self> {
        Arc::new(PathState {
            inner: Mutex::new(Inner {
                restored,
                ..Inner::default()
            }),
            dirty,
            gate,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every statement leaves the lists consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.dirty.notify_one();
    }

    /// Attaches reader `owner` and returns where it starts: on its first attach what was
    /// restored from disk; after a failed reader of the same owner, its own generations that
    /// were being read or held (found again by identity), and the path's newest position.
    pub fn attach(&self, owner: u64) -> ResumePlan {
        let mut inner = self.lock();
        inner.forgotten = false;
        if !inner.owners.contains(&owner) {
            inner.owners.push(owner);
        }
        if !inner.seen.contains(&owner) {
            inner.seen.push(owner);
            return inner.restored.clone();
        }
        // A reader of this owner ended without releasing (it failed): what it was reading or
        // holding is looked for again; what it left stays until acknowledged.
        let plan = Self::leave(&mut inner, owner);
        drop(inner);
        self.changed();
        plan
    }

    /// Reader `owner` stopped because its target was removed (not because the path went):
    /// the path's position stays (as Promtail keeps it), what is in flight still commits, and
    /// a reader of the same target attached later resumes where this one was.
    pub fn detach(&self, owner: u64) {
        let mut inner = self.lock();
        inner.owners.retain(|o| *o != owner);
        inner.seen.retain(|o| *o != owner);
        inner
            .gens
            .retain(|g| !(g.owner == owner && g.phase == Phase::Held));
        Self::leave(&mut inner, owner);
        drop(inner);
        self.changed();
    }

    /// Lets every generation of `owner` go (left: kept while in flight) and makes where it
    /// was the path's restored state, which is returned.
    fn leave(inner: &mut Inner, owner: u64) -> ResumePlan {
        let mut older = Vec::new();
        for g in inner.gens.iter_mut().filter(|g| g.owner == owner) {
            if g.phase != Phase::Left {
                older.push(g.saved());
                g.phase = Phase::Left;
            }
        }
        let newest = older.pop();
        let current = newest.as_ref().map(|g| SavedPosition {
            offset: g.offset,
            identity: Some(g.identity),
            fingerprint: g.fingerprint.known(),
        });
        let plan = ResumePlan {
            older,
            current,
            current_size: newest.as_ref().map_or(0, |g| g.size),
            current_stamps: newest.map(|g| g.stamps).unwrap_or_default(),
        };
        // Until a reader adds generations again, this is what the path's state is.
        inner.restored = plan.clone();
        plan
    }

    /// Adds a generation of `owner`, read from `start`, and returns its handle.
    pub fn add(
        self: &Arc<Self>,
        owner: u64,
        identity: FileIdentity,
        fingerprint: Fingerprint,
        start: u64,
        size: u64,
        phase: Phase,
    ) -> GenHandle {
        self.add_stamped(
            owner,
            identity,
            fingerprint,
            start,
            size,
            phase,
            Stamps::default(),
        )
    }

    /// [`PathState::add`] for a generation found again with the stamps it was saved with.
    #[allow(clippy::too_many_arguments)]
    pub fn add_stamped(
        self: &Arc<Self>,
        owner: u64,
        identity: FileIdentity,
        fingerprint: Fingerprint,
        start: u64,
        size: u64,
        phase: Phase,
        mut stamps: Stamps,
    ) -> GenHandle {
        stamps.prune(start);
        let tracker = Tracker::with_gate(
            start,
            Arc::clone(&self.dirty),
            Arc::clone(&self.gate),
            stamps.through,
        );
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.gens.push(Live {
            id,
            owner,
            identity,
            fingerprint,
            tracker,
            size,
            phase,
            copied: false,
            stamps,
        });
        drop(inner);
        self.changed();
        GenHandle {
            state: Arc::clone(self),
            id,
        }
    }

    /// Reader `owner` let its path go for good (the path vanished or no longer matches): what
    /// it was reading is left (kept while in flight), what it held is dropped. The state is
    /// forgotten once no owner is attached and nothing is in flight.
    pub fn release(&self, owner: u64) {
        let mut inner = self.lock();
        inner.owners.retain(|o| *o != owner);
        inner
            .gens
            .retain(|g| !(g.owner == owner && g.phase == Phase::Held));
        for g in inner.gens.iter_mut().filter(|g| g.owner == owner) {
            g.phase = Phase::Left;
        }
        if inner.owners.is_empty() {
            inner.forgotten = true;
        }
        drop(inner);
        self.changed();
    }

    /// Drops generations that are left with nothing in flight; true when the whole state can
    /// go (forgotten, no owner, nothing left).
    pub(crate) fn prune(&self) -> bool {
        let mut inner = self.lock();
        inner.gens.retain(|g| !g.finished());
        inner.forgotten && inner.owners.is_empty() && inner.gens.is_empty()
    }

    /// The newest position (the newest generation's, merged over owners), as `Positions::get`
    /// reports it; the restored one while no generation was added.
    pub fn newest(&self) -> Option<SavedPosition> {
        if let Some(s) = self.snapshot() {
            return Some(SavedPosition {
                offset: s.current.offset,
                identity: Some(s.current.identity),
                fingerprint: s.current.fingerprint.known(),
            });
        }
        self.lock().restored.current
    }

    /// What a save writes for this path; `None` while no generation was added (the restored
    /// values are then written as they were read).
    pub fn snapshot(&self) -> Option<PathSnapshot> {
        let inner = self.lock();
        let mut merged: Vec<SavedGeneration> = Vec::with_capacity(inner.gens.len());
        for g in inner.gens.iter().filter(|g| !g.finished()) {
            let s = g.saved();
            match merged
                .iter_mut()
                .find(|m| m.identity == s.identity && m.copied == s.copied)
            {
                Some(m) => {
                    if s.offset < m.offset {
                        // Two readers of one file: the stamps of the one further behind.
                        m.stamps = s.stamps.clone();
                    }
                    m.offset = m.offset.min(s.offset);
                    m.size = m.size.max(s.size);
                    if m.fingerprint.len < s.fingerprint.len {
                        m.fingerprint = s.fingerprint;
                    }
                }
                None => merged.push(s),
            }
        }
        drop(inner);
        // The newest generation that is not a truncated copy is the file at the path.
        let at = merged.iter().rposition(|g| !g.copied)?;
        let current = merged.remove(at);
        Some(PathSnapshot {
            current,
            older: merged,
        })
    }

    /// What a save writes for this path: its generations, or while it has none what was
    /// restored; `None` when it was let go.
    pub fn saved(&self) -> Option<SavedPath> {
        if let Some(snap) = self.snapshot() {
            return Some(SavedPath {
                offset: snap.current.offset,
                current: Some(snap.current),
                older: snap.older,
            });
        }
        let inner = self.lock();
        if inner.forgotten {
            return None;
        }
        let restored = &inner.restored;
        let current = restored.current?;
        Some(SavedPath {
            offset: current.offset,
            current: current.identity.map(|identity| SavedGeneration {
                identity,
                fingerprint: current.fingerprint.unwrap_or_default(),
                offset: current.offset,
                // Not known from a restored position; at least this much was there.
                size: current.offset,
                copied: false,
                stamps: restored.current_stamps.clone(),
            }),
            older: restored.older.clone(),
        })
    }

    /// Whether a reader is attached, lines are in flight, or restored generations wait for
    /// a reader: the path's position must not be forgotten.
    pub fn busy(&self) -> bool {
        let inner = self.lock();
        !inner.owners.is_empty()
            || inner.gens.iter().any(|g| !g.finished())
            || (inner.seen.is_empty() && !inner.restored.older.is_empty())
    }

    /// What was restored from disk (or computed at the last re-attach).
    pub fn restored(&self) -> ResumePlan {
        self.lock().restored.clone()
    }

    /// Whether a reader has attached since the start.
    pub fn attached_ever(&self) -> bool {
        !self.lock().seen.is_empty()
    }

    /// The tracker and saved-stamps end of every generation with stamps: what a save that
    /// starts now makes durable.
    pub(crate) fn stamp_ends(&self, out: &mut Vec<(Arc<Tracker>, u64)>) {
        for g in &self.lock().gens {
            if g.stamps.through > 0 {
                out.push((Arc::clone(&g.tracker), g.stamps.through));
            }
        }
    }

    /// Freezes every generation's tracker (shutdown deadline).
    pub fn freeze(&self) {
        for g in &self.lock().gens {
            g.tracker.freeze();
        }
    }

    /// Number of generations in memory (tests).
    pub fn generations(&self) -> usize {
        self.lock().gens.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: FileIdentity = FileIdentity { dev: 1, ino: 10 };
    const B: FileIdentity = FileIdentity { dev: 1, ino: 11 };

    fn state() -> Arc<PathState> {
        PathState::new(
            ResumePlan::default(),
            Arc::new(Notify::new()),
            Arc::default(),
        )
    }

    #[test]
    fn fingerprint_depends_on_the_bytes_and_their_count() {
        assert!(Fingerprint::of(b"").is_empty());
        let a = Fingerprint::of(b"connection reset by peer\n");
        assert_eq!(a, Fingerprint::of(b"connection reset by peer\n"));
        assert_ne!(a, Fingerprint::of(b"connection reset by peer!"));
        assert_eq!(a.len, 25);
    }

    #[test]
    fn an_older_generation_stays_until_its_lines_are_acknowledged() {
        let s = state();
        s.attach(0);
        let a = s.add(0, A, Fingerprint::of(b"a"), 0, 100, Phase::Reading);
        let ack = a.tracker().chunk(100, None);
        a.left(100);
        let b = s.add(0, B, Fingerprint::of(b"b"), 0, 0, Phase::Reading);
        let snap = s.snapshot().unwrap();
        assert_eq!(snap.current.identity, B);
        assert_eq!(snap.older.len(), 1);
        assert_eq!(snap.older[0].identity, A);
        assert_eq!(snap.older[0].offset, 0, "nothing of A acknowledged yet");
        assert_eq!(snap.older[0].size, 100);
        drop(ack);
        let snap = s.snapshot().unwrap();
        assert!(snap.older.is_empty(), "A fully acknowledged: {snap:?}");
        assert!(!s.prune());
        assert_eq!(s.generations(), 1);
        drop(b);
    }

    #[test]
    fn held_generations_are_saved_at_their_start() {
        let s = state();
        s.attach(0);
        let a = s.add(0, A, Fingerprint::default(), 40, 100, Phase::Reading);
        let _b = s.add(0, B, Fingerprint::default(), 0, 7, Phase::Held);
        let snap = s.snapshot().unwrap();
        assert_eq!(snap.current.identity, B);
        assert_eq!(snap.current.offset, 0);
        assert_eq!(snap.older[0].offset, 40);
        assert_eq!(s.newest().unwrap().offset, 0);
        drop(a);
    }

    #[test]
    fn a_truncated_generation_is_saved_as_a_copy_beside_the_new_content() {
        let s = state();
        s.attach(0);
        let old = s.add(0, A, Fingerprint::of(b"old"), 0, 50, Phase::Reading);
        let ack = old.tracker().chunk(50, None);
        old.truncated(50);
        let _new = s.add(0, A, Fingerprint::of(b"new"), 0, 0, Phase::Reading);
        let snap = s.snapshot().unwrap();
        assert_eq!(snap.current.fingerprint, Fingerprint::of(b"new"));
        assert!(!snap.current.copied);
        assert!(snap.older[0].copied);
        assert_eq!(snap.older[0].fingerprint, Fingerprint::of(b"old"));
        drop(ack);
    }

    #[test]
    fn two_owners_of_one_file_save_the_smaller_offset() {
        let s = state();
        s.attach(0);
        s.attach(1);
        let x = s.add(0, A, Fingerprint::default(), 0, 10, Phase::Reading);
        let y = s.add(1, A, Fingerprint::default(), 0, 10, Phase::Reading);
        drop(x.tracker().chunk(10, None));
        let held = y.tracker().chunk(10, None);
        let snap = s.snapshot().unwrap();
        assert_eq!(
            snap.current.offset, 0,
            "owner 1 has not got its lines acknowledged"
        );
        assert!(snap.older.is_empty());
        drop(held);
        assert_eq!(s.snapshot().unwrap().current.offset, 10);
    }

    #[test]
    fn a_failed_reader_resumes_what_it_read_and_held() {
        let s = state();
        assert_eq!(s.attach(0), ResumePlan::default());
        let a = s.add(0, A, Fingerprint::of(b"a"), 0, 100, Phase::Reading);
        drop(a.tracker().chunk(30, None));
        let _b = s.add(0, B, Fingerprint::of(b"b"), 0, 9, Phase::Held);
        let plan = s.attach(0);
        assert_eq!(plan.older.len(), 1);
        assert_eq!(plan.older[0].identity, A);
        assert_eq!(plan.older[0].offset, 30);
        assert_eq!(plan.current.unwrap().identity, Some(B));
    }

    #[test]
    fn a_detached_reader_keeps_the_position_for_the_next_one() {
        let s = state();
        s.attach(1);
        let g = s.add(1, A, Fingerprint::default(), 0, 0, Phase::Reading);
        let t = g.tracker();
        drop(t.chunk(100, None));
        let in_flight = t.chunk(180, None);
        s.add(1, B, Fingerprint::default(), 0, 0, Phase::Held);
        s.detach(1);
        assert!(s.busy(), "lines in flight: the path is busy");
        drop(in_flight);
        assert!(!s.prune(), "not forgotten: the position stays");
        assert!(!s.busy());
        assert_eq!(
            s.saved().map(|p| p.offset),
            Some(100),
            "where it was at the detach"
        );
        // The target comes back: its reader resumes there.
        let plan = s.attach(1);
        assert_eq!(
            plan.current.map(|c| (c.offset, c.identity)),
            Some((100, Some(A)))
        );
    }

    #[test]
    fn a_released_path_goes_once_nothing_is_in_flight() {
        let s = state();
        s.attach(0);
        let a = s.add(0, A, Fingerprint::default(), 0, 10, Phase::Reading);
        let ack = a.tracker().chunk(10, None);
        let _held = s.add(0, B, Fingerprint::default(), 0, 10, Phase::Held);
        s.release(0);
        assert!(!s.prune(), "lines of A are in flight");
        assert_eq!(s.generations(), 1, "the held generation is dropped at once");
        drop(ack);
        assert!(s.prune());
    }

    /// Whether `n` holds a stored permit (and consumes it). With time paused, the timeout
    /// only fires once the runtime has nothing else to do, so this is not a timing check.
    async fn signalled(n: &Notify) -> bool {
        tokio::time::timeout(std::time::Duration::from_secs(1), n.notified())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn every_change_signals_the_writer() {
        let dirty = Arc::new(Notify::new());
        let s = PathState::new(ResumePlan::default(), Arc::clone(&dirty), Arc::default());
        s.attach(0);
        let a = s.add(0, A, Fingerprint::default(), 0, 10, Phase::Reading);
        assert!(signalled(&dirty).await, "adding a generation signals");
        assert!(!signalled(&dirty).await);
        let ack = a.tracker().chunk(10, None);
        assert!(!signalled(&dirty).await, "reading alone commits nothing");
        drop(ack);
        assert!(signalled(&dirty).await, "a commit signals");
    }
}
