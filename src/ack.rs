//! Acknowledgement tracking: a source's committed position only advances over a contiguous
//! prefix of read chunks whose entries are all finished.
//!
//! A reader registers every chunk it reads with its source's [`Tracker`] (in read order) and gets
//! an [`Ack`] back; every entry made from the chunk carries a clone. An entry is *finished* when
//! it is dropped: after every client has had a 2xx for it, after Loki rejected it for good (counted),
//! or after the pipeline dropped it on purpose (counted). When the last clone of a chunk's `Ack`
//! is dropped the chunk is complete, and the tracker's committed offset moves to the end of the
//! longest completed prefix.
//!
//! Invariants:
//! - `committed()` never passes the end of a chunk that has an entry still alive;
//! - `committed()` never decreases;
//! - after [`Tracker::freeze`] nothing is committed any more: at the shutdown deadline the
//!   entries still in flight are dropped without being delivered, and freezing first keeps that
//!   drop from counting as an acknowledgement. (`panic = "abort"` in release builds keeps a
//!   panicking task from doing the same.)
//! - a chunk may carry a byte-budget permit; it is returned when the chunk completes, which is
//!   what bounds the bytes in flight (DESIGN.md contract 3);
//! - a chunk whose read-time stamps are replayable ([`crate::positions::stamps`]) is pushed only
//!   once they are saved: [`stamps_saved`] waits, through the [`StampGate`], for the tracker's
//!   saved `through` to reach its end.
//!
//! [`Cursor`] is the same tracking for positions that are not byte offsets (journal cursors,
//! Docker log times), and [`receipt`] for sources with nothing to replay from, which answer
//! their sender only once its entries are finished.
//!
//! A leaf module: it imports nothing of the crate, so [`crate::entry`] can carry an [`Ack`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Ordered completion tracking for one source (one open file, one journal, ...).
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
    frozen: AtomicBool,
    /// Signalled whenever the committed position advances (the positions writer saves soon).
    on_commit: Option<Arc<Notify>>,
    /// Tells when saves are on disk; `None`: stamps are never waited for.
    gate: Option<Arc<StampGate>>,
    /// How far this source's stamps are on disk (the `through` of the last save).
    stamps_saved: AtomicU64,
}

#[derive(Debug)]
struct State {
    next_seq: u64,
    /// Chunks not yet committed, in read order: (sequence number, end offset, complete).
    pending: VecDeque<(u64, u64, bool)>,
    committed: u64,
    /// End offset of the last registered chunk (what has been read and handed on).
    read: u64,
}

impl Tracker {
    /// A tracker whose committed (and read) position starts at `start`.
    pub fn new(start: u64) -> Arc<Self> {
        Self::build(start, None, None)
    }

    /// A tracker that signals `on_commit` each time its committed position advances.
    pub fn with_notify(start: u64, on_commit: Arc<Notify>) -> Arc<Self> {
        Self::build(start, Some(on_commit), None)
    }

    /// A tracker that signals `on_commit` on every commit, and whose stamped chunks wait for
    /// `gate` before they are pushed; stamps up to `saved` are on disk already.
    pub fn with_gate(
        start: u64,
        on_commit: Arc<Notify>,
        gate: Arc<StampGate>,
        saved: u64,
    ) -> Arc<Self> {
        let t = Self::build(start, Some(on_commit), Some(gate));
        t.stamps_saved.store(saved, Ordering::Release);
        t
    }

    fn build(
        start: u64,
        on_commit: Option<Arc<Notify>>,
        gate: Option<Arc<StampGate>>,
    ) -> Arc<Self> {
        Arc::new(Tracker {
            state: Mutex::new(State {
                next_seq: 0,
                pending: VecDeque::new(),
                committed: start,
                read: start,
            }),
            frozen: AtomicBool::new(false),
            on_commit,
            gate,
            stamps_saved: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the state is a
        // plain queue that is consistent after every statement, so keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the next chunk, which ends at `end_offset`, and returns its acknowledgement.
    /// Chunks must be registered in read order with non-decreasing end offsets.
    pub fn chunk(self: &Arc<Self>, end_offset: u64, permit: Option<OwnedSemaphorePermit>) -> Ack {
        self.stamped_chunk(end_offset, permit, false)
    }

    /// [`Tracker::chunk`] for a chunk whose stamps are replayable when saved up to its end
    /// (`replayable`): it is then pushed only once they are.
    pub fn stamped_chunk(
        self: &Arc<Self>,
        end_offset: u64,
        permit: Option<OwnedSemaphorePermit>,
        replayable: bool,
    ) -> Ack {
        let seq = {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.pending.push_back((seq, end_offset, false));
            st.read = st.read.max(end_offset);
            seq
        };
        Ack(AckRepr::One(Arc::new(Chunk {
            tracker: Arc::clone(self),
            seq,
            stamps_end: if replayable { end_offset } else { 0 },
            _permit: permit,
        })))
    }

    /// The stamps of this source are on disk up to `through` (a save finished).
    pub fn stamps_saved(&self, through: u64) {
        self.stamps_saved.fetch_max(through, Ordering::AcqRel);
    }

    /// Whether a chunk ending at `end` may be pushed: its stamps are saved, or nothing waits.
    fn stamps_ready(&self, end: u64) -> bool {
        end == 0
            || self.stamps_saved.load(Ordering::Acquire) >= end
            || self.gate.as_ref().is_none_or(|g| !g.waits())
    }

    /// Moves both the read and the committed position to `offset` when nothing is in flight
    /// (used when a source skips data on purpose, e.g. after a truncation restarts at 0).
    /// Returns false, changing nothing, while chunks are pending.
    pub fn reset(&self, offset: u64) -> bool {
        let mut st = self.lock();
        if !st.pending.is_empty() || self.frozen.load(Ordering::Acquire) {
            return false;
        }
        st.committed = offset;
        st.read = offset;
        true
    }

    /// The end of the longest prefix of chunks that are complete.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// The end of the last chunk handed on.
    pub fn read(&self) -> u64 {
        self.lock().read
    }

    /// Number of chunks read but not yet committed.
    pub fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    /// Stops all further commits (shutdown deadline reached with entries still in flight).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    fn complete(&self, seq: u64) {
        if self.frozen.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.lock();
        if let Some(front) = st.pending.front().map(|p| p.0)
            && let Some(slot) = seq.checked_sub(front).and_then(|i| usize::try_from(i).ok())
            && let Some(p) = st.pending.get_mut(slot)
        {
            p.2 = true;
        }
        let before = st.committed;
        while let Some(&(_, end, true)) = st.pending.front() {
            st.pending.pop_front();
            st.committed = st.committed.max(end);
        }
        let advanced = st.committed != before || st.pending.is_empty();
        drop(st);
        if advanced && let Some(n) = &self.on_commit {
            n.notify_one();
        }
    }
}

/// Ordered completion over positions that are not byte offsets: a journal cursor, a Docker log
/// time. Each chunk carries the position to commit once it and every chunk before it are
/// complete; [`Cursor::committed`] is the position of the last chunk of that prefix.
///
/// It is the byte-offset [`Tracker`] run over chunk numbers, so both kinds of source commit
/// through the same path (and freeze, and return budget permits, the same way).
#[derive(Debug)]
pub struct Cursor<P> {
    tracker: Arc<Tracker>,
    state: Mutex<CursorState<P>>,
}

#[derive(Debug)]
struct CursorState<P> {
    /// The position of the complete prefix (or the start position).
    committed: Option<P>,
    /// Positions of registered chunks not yet known to be committed: (chunk number, position).
    pending: VecDeque<(u64, P)>,
    next: u64,
}

impl<P: Clone> Cursor<P> {
    /// A cursor whose committed position starts at `start` (`None`: nothing committed yet);
    /// `on_commit` is signalled whenever a chunk completes the prefix.
    pub fn new(start: Option<P>, on_commit: Option<Arc<Notify>>) -> Arc<Self> {
        Arc::new(Cursor {
            tracker: Tracker::build(0, on_commit, None),
            state: Mutex::new(CursorState {
                committed: start,
                pending: VecDeque::new(),
                next: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, CursorState<P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the next chunk, which commits `position` once it and every chunk before it
    /// are complete. Chunks must be registered in source order.
    pub fn chunk(&self, position: P, permit: Option<OwnedSemaphorePermit>) -> Ack {
        let mut st = self.lock();
        st.next += 1;
        let n = st.next;
        st.pending.push_back((n, position));
        // Registered under the lock, so chunk numbers reach the tracker in order.
        self.tracker.chunk(n, permit)
    }

    /// The position of the longest complete prefix of chunks (or the start position).
    pub fn committed(&self) -> Option<P> {
        let done = self.tracker.committed();
        let mut st = self.lock();
        while st.pending.front().is_some_and(|(n, _)| *n <= done) {
            if let Some((_, p)) = st.pending.pop_front() {
                st.committed = Some(p);
            }
        }
        st.committed.clone()
    }

    /// Number of chunks registered but not yet committed.
    pub fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    /// Stops all further commits (shutdown deadline reached with entries still in flight).
    pub fn freeze(&self) {
        self.tracker.freeze();
    }
}

/// For a source with nothing to replay from (a push request, a syslog message): an [`Ack`]
/// whose [`Delivered`] resolves once every entry made from it is finished, so that the
/// sender is answered only then. It holds a budget permit like any chunk. A receipt that
/// nobody will ever abandon; a source whose answer depends on it takes its receipts from
/// [`Receipts::issue`] instead.
pub fn receipt(permit: Option<OwnedSemaphorePermit>) -> (Ack, Delivered) {
    issue(permit, CancellationToken::new())
}

fn issue(permit: Option<OwnedSemaphorePermit>, abandoned: CancellationToken) -> (Ack, Delivered) {
    let notify = Arc::new(Notify::new());
    let tracker = Tracker::build(0, Some(Arc::clone(&notify)), None);
    let ack = tracker.chunk(1, permit);
    (
        ack,
        Delivered {
            tracker,
            notify,
            abandoned,
        },
    )
}

/// Every receipt a running process has given out, so that the shutdown deadline can abandon
/// them all at once: [`Receipts::abandon_all`] is synchronous, and the topology calls it
/// *before* the clients drop what they hold, so an entry dropped undelivered can never make a
/// receipt answer `true` (the same ordering as freezing the position trackers).
///
/// It also keeps the answers still to be written to senders ([`Receipts::answer_later`]), so
/// that the process does not exit between a delivery and its answer.
#[derive(Clone, Debug, Default)]
pub struct Receipts {
    abandoned: CancellationToken,
    answers: TaskTracker,
}

impl Receipts {
    /// A receipt (see [`receipt`]) that [`Receipts::abandon_all`] abandons.
    pub fn issue(&self, permit: Option<OwnedSemaphorePermit>) -> (Ack, Delivered) {
        issue(permit, self.abandoned.child_token())
    }

    /// Abandons every receipt given out, and every one given out later: their
    /// [`Delivered::wait`] answers `false` from now on.
    pub fn abandon_all(&self) {
        self.abandoned.cancel();
    }

    /// Runs `answering` (what writes answers still waiting for their receipts) in the
    /// background; [`Receipts::answered`] waits for it.
    pub fn answer_later<F>(&self, answering: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.answers.spawn(answering);
    }

    /// Waits, at most `limit`, until every answer given to [`Receipts::answer_later`] is
    /// written; `false` when some were not.
    pub async fn answered(&self, limit: Duration) -> bool {
        self.answers.close();
        tokio::time::timeout(limit, self.answers.wait())
            .await
            .is_ok()
    }
}

/// Resolves when the entries of a [`receipt`] are finished.
#[derive(Debug)]
pub struct Delivered {
    tracker: Arc<Tracker>,
    notify: Arc<Notify>,
    abandoned: CancellationToken,
}

impl Delivered {
    /// Waits until every entry is finished: `true`. `false` once the receipt is abandoned
    /// ([`Delivered::abandon`], [`Receipts::abandon_all`]: the shutdown deadline drops entries
    /// undelivered, and the sender must not be told they were kept), even if its entries
    /// finish afterwards.
    pub async fn wait(&self) -> bool {
        loop {
            let next = self.notify.notified();
            tokio::pin!(next);
            next.as_mut().enable();
            if self.abandoned.is_cancelled() {
                return false;
            }
            if self.tracker.committed() >= 1 {
                return true;
            }
            tokio::select! {
                _ = next => {}
                _ = self.abandoned.cancelled() => {}
            }
        }
    }

    /// Whether every entry is finished already (and the receipt not abandoned).
    pub fn is_done(&self) -> bool {
        !self.abandoned.is_cancelled() && self.tracker.committed() >= 1
    }

    /// Entries still in flight will be dropped without being delivered: [`Delivered::wait`]
    /// answers `false` from now on.
    pub fn abandon(&self) {
        self.abandoned.cancel();
    }
}

/// Tells senders when saved marks are on disk.
#[derive(Debug, Default)]
pub struct StampGate {
    /// Positions are written to disk (not in memory, not `-dry-run`).
    required: AtomicBool,
    /// The last save failed, or the writer stopped: nothing should wait.
    open: AtomicBool,
    saved: Notify,
}

impl StampGate {
    /// Marks must be on disk before their chunks are pushed.
    pub fn require(&self) {
        self.required.store(true, Ordering::Release);
    }

    /// Whether a sender should wait for marks to be saved.
    pub fn waits(&self) -> bool {
        self.required.load(Ordering::Acquire) && !self.open.load(Ordering::Acquire)
    }

    /// A save finished (`ok`) or failed; wakes the waiting senders either way.
    pub fn saved(&self, ok: bool) {
        self.open.store(!ok, Ordering::Release);
        self.saved.notify_waiters();
    }

    /// Nothing is saved any more (the writer stopped): let every sender go.
    pub fn close(&self) {
        self.open.store(true, Ordering::Release);
        self.saved.notify_waiters();
    }

    /// Resolves at the next [`StampGate::saved`] or [`StampGate::close`].
    pub fn next_save(&self) -> tokio::sync::futures::Notified<'_> {
        self.saved.notified()
    }
}

/// One registered chunk; completes when the last `Ack` referring to it is dropped.
#[derive(Debug)]
struct Chunk {
    tracker: Arc<Tracker>,
    seq: u64,
    /// End offset its stamps must be saved up to before it is pushed (0: none).
    stamps_end: u64,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.tracker.complete(self.seq);
    }
}

/// Waits until every chunk of `acks` may be pushed (its stamps are saved, or nothing waits),
/// at most `max`. Returns false when it gave up (the push goes ahead: at worst a crash
/// re-sends these lines with new stamps, as if they were not replayable).
pub async fn stamps_saved(acks: &[Ack], max: Duration) -> bool {
    let wait = async {
        let mut last: Option<&Arc<Chunk>> = None;
        for chunk in acks.iter().flat_map(Ack::chunks) {
            if last.is_some_and(|l| Arc::ptr_eq(l, chunk)) {
                continue; // the lines of one chunk are usually side by side
            }
            last = Some(chunk);
            let t = &chunk.tracker;
            while !t.stamps_ready(chunk.stamps_end) {
                let Some(gate) = &t.gate else { break };
                let next = gate.next_save();
                tokio::pin!(next);
                next.as_mut().enable();
                if t.stamps_ready(chunk.stamps_end) {
                    break;
                }
                next.await;
            }
        }
    };
    tokio::time::timeout(max, wait).await.is_ok()
}

/// The acknowledgement an entry carries: none (sources without positions), one chunk, or several
/// (an entry merged from lines of several chunks, e.g. by `multiline`).
#[derive(Clone, Debug, Default)]
pub struct Ack(AckRepr);

#[derive(Clone, Debug, Default)]
enum AckRepr {
    #[default]
    None,
    One(Arc<Chunk>),
    Many(Vec<Arc<Chunk>>),
}

impl Ack {
    /// An acknowledgement that tracks nothing (for sources that have no position).
    pub fn none() -> Self {
        Ack(AckRepr::None)
    }

    fn chunks(&self) -> &[Arc<Chunk>] {
        match &self.0 {
            AckRepr::None => &[],
            AckRepr::One(c) => std::slice::from_ref(c),
            AckRepr::Many(v) => v,
        }
    }

    /// Makes `self` also hold `other`'s chunks, so that they complete only when `self` is done.
    pub fn merge(&mut self, other: Ack) {
        let mine = std::mem::take(&mut self.0);
        self.0 = match (mine, other.0) {
            (a, AckRepr::None) => a,
            (AckRepr::None, b) => b,
            // Consecutive lines of one chunk: the chunk is held once.
            (AckRepr::One(a), AckRepr::One(b)) if Arc::ptr_eq(&a, &b) => AckRepr::One(a),
            (AckRepr::One(a), AckRepr::One(b)) => AckRepr::Many(vec![a, b]),
            (AckRepr::One(a), AckRepr::Many(mut b)) => {
                b.insert(0, a);
                AckRepr::Many(b)
            }
            (AckRepr::Many(mut a), AckRepr::One(b)) => {
                if !a.last().is_some_and(|last| Arc::ptr_eq(last, &b)) {
                    a.push(b);
                }
                AckRepr::Many(a)
            }
            (AckRepr::Many(mut a), AckRepr::Many(b)) => {
                a.extend(b);
                AckRepr::Many(a)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_contiguous_prefix() {
        let t = Tracker::new(10);
        let a = t.chunk(20, None);
        let b = t.chunk(30, None);
        let c = t.chunk(40, None);
        assert_eq!(t.read(), 40);
        drop(b);
        assert_eq!(
            t.committed(),
            10,
            "b completed before a: nothing may commit"
        );
        drop(a);
        assert_eq!(t.committed(), 30);
        drop(c);
        assert_eq!(t.committed(), 40);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn clones_hold_the_chunk_open() {
        let t = Tracker::new(0);
        let a = t.chunk(5, None);
        let a2 = a.clone();
        drop(a);
        assert_eq!(t.committed(), 0);
        drop(a2);
        assert_eq!(t.committed(), 5);
    }

    #[test]
    fn merged_ack_completes_all_its_chunks_together() {
        let t = Tracker::new(0);
        let mut a = t.chunk(5, None);
        let b = t.chunk(9, None);
        a.merge(b);
        assert_eq!(t.committed(), 0);
        drop(a);
        assert_eq!(t.committed(), 9);
    }

    #[test]
    fn merging_lines_of_one_chunk_holds_it_once() {
        let t = Tracker::new(0);
        let a = t.chunk(5, None);
        let mut m = a.clone();
        m.merge(a.clone());
        m.merge(a);
        assert!(matches!(m.0, AckRepr::One(_)));
        let b = t.chunk(9, None);
        m.merge(b.clone());
        m.merge(b);
        assert!(matches!(&m.0, AckRepr::Many(v) if v.len() == 2));
        assert_eq!(t.committed(), 0);
        drop(m);
        assert_eq!(t.committed(), 9);
    }

    #[test]
    fn frozen_tracker_commits_nothing() {
        let t = Tracker::new(0);
        let a = t.chunk(5, None);
        t.freeze();
        drop(a);
        assert_eq!(t.committed(), 0);
    }

    #[test]
    fn permit_returns_when_chunk_completes() {
        let sem = Arc::new(tokio::sync::Semaphore::new(100));
        let t = Tracker::new(0);
        let permit = Arc::clone(&sem).try_acquire_many_owned(60).ok();
        let a = t.chunk(60, permit);
        assert_eq!(sem.available_permits(), 40);
        drop(a);
        assert_eq!(sem.available_permits(), 100);
    }

    #[test]
    fn reset_only_when_idle() {
        let t = Tracker::new(50);
        let a = t.chunk(60, None);
        assert!(!t.reset(0));
        drop(a);
        assert!(t.reset(0));
        assert_eq!(t.committed(), 0);
    }

    #[tokio::test]
    async fn the_gate_wakes_waiters_and_opens_on_failure() {
        let gate = std::sync::Arc::new(StampGate::default());
        assert!(!gate.waits(), "in memory: nothing waits");
        gate.require();
        assert!(gate.waits());
        let next = gate.next_save();
        tokio::pin!(next);
        next.as_mut().enable();
        gate.saved(false);
        tokio::time::timeout(std::time::Duration::from_secs(10), next)
            .await
            .expect("woken by the save");
        assert!(!gate.waits(), "a failed save opens the gate");
        gate.saved(true);
        assert!(gate.waits());
        gate.close();
        assert!(!gate.waits());
    }

    #[test]
    fn a_cursor_commits_the_position_of_the_complete_prefix() {
        let c = Cursor::new(Some("start".to_string()), None);
        let a = c.chunk("a".to_string(), None);
        let b = c.chunk("b".to_string(), None);
        let d = c.chunk("d".to_string(), None);
        drop(b);
        assert_eq!(
            c.committed().as_deref(),
            Some("start"),
            "a is still in flight"
        );
        drop(a);
        assert_eq!(c.committed().as_deref(), Some("b"));
        assert_eq!(c.in_flight(), 1);
        c.freeze();
        drop(d);
        assert_eq!(
            c.committed().as_deref(),
            Some("b"),
            "frozen: d is not committed"
        );
    }

    #[test]
    fn a_cursor_without_start_has_nothing_committed_until_a_chunk_completes() {
        let c: Arc<Cursor<u64>> = Cursor::new(None, None);
        let a = c.chunk(7, None);
        let mut merged = c.chunk(9, None);
        merged.merge(a);
        assert_eq!(c.committed(), None);
        drop(merged);
        assert_eq!(c.committed(), Some(9));
    }

    #[tokio::test]
    async fn a_receipt_resolves_when_every_entry_is_finished() {
        let sem = Arc::new(tokio::sync::Semaphore::new(10));
        let permit = Arc::clone(&sem).try_acquire_many_owned(4).ok();
        let (ack, delivered) = receipt(permit);
        let copies = vec![ack.clone(), ack.clone()];
        drop(ack);
        assert!(!delivered.is_done());
        let waiter = tokio::spawn(async move { delivered.wait().await });
        drop(copies);
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the receipt resolves once its entries are dropped")
            .expect("task");
        assert!(got);
        assert_eq!(sem.available_permits(), 10, "the permit is returned");
    }

    #[tokio::test]
    async fn abandon_all_reaches_receipts_given_before_and_after_and_wakes_waiters() {
        let receipts = Receipts::default();
        let (ack, delivered) = receipts.issue(None);
        let (done_ack, done) = receipts.issue(None);
        drop(done_ack);
        assert!(done.is_done());
        let waiter = tokio::spawn(async move { delivered.wait().await });
        tokio::task::yield_now().await;
        receipts.abandon_all();
        // The entries are dropped after the deadline (a client giving up): still not kept.
        drop(ack);
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("a waiter wakes when every receipt is abandoned")
            .expect("task");
        assert!(!got);
        assert!(
            !done.is_done(),
            "an abandoned receipt is not done, even if it was"
        );
        let (late_ack, late) = receipts.issue(None);
        drop(late_ack);
        assert!(
            !late.wait().await,
            "a receipt given after abandon_all is abandoned too"
        );
        // A plain receipt belongs to no set: abandon_all leaves it alone.
        let (own_ack, own) = receipt(None);
        drop(own_ack);
        assert!(own.wait().await);
    }

    #[tokio::test]
    async fn an_abandoned_receipt_answers_not_delivered() {
        let (ack, delivered) = receipt(None);
        delivered.abandon();
        drop(ack);
        let got = tokio::time::timeout(Duration::from_secs(10), delivered.wait())
            .await
            .expect("an abandoned receipt answers at once");
        assert!(!got);
    }
}
