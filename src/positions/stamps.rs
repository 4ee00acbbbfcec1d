//! Read-time timestamps that a restart gives again, so that what a crash re-sends is merged by
//! Loki instead of stored twice.
//!
//! Loki keeps one entry per (stream, timestamp, line). At-least-once delivery re-sends, after a
//! `kill -9`, every line past the committed offset: the push that was in flight and whatever
//! was acknowledged after the last save. If those lines come back with the timestamps of
//! their first send, Loki keeps them once; with new read times it keeps both copies.
//!
//! So a generation's read-time timestamps are a function of the byte offset where each line
//! starts, through a short list of [`Mark`]s: the line at offset `s` gets
//! `mark.ts + (s - mark.offset)` for the last mark at or before `s`. Offsets grow by at least
//! one byte a line, so stamps are distinct and strictly increasing within a generation. A new
//! mark is set at the first line of a chunk whose stamp would lag its read time by more than
//! [`MAX_LAG`] (so stamps stay within that of the read time, as Promtail's `time.Now()` is).
//!
//! The marks from the committed offset on, and `through` (the end of what was handed on), are
//! saved in the identity sidecar with the generation. A restarted reader stamps lines below
//! `through` from them, and only lines it had never handed on get new ones.
//!
//! Invariants:
//! - a chunk is pushed to Loki only once the save that holds its marks is on disk (the sender
//!   waits on [`crate::ack::StampGate`]: usually not at all, since batches fill for longer than the few
//!   milliseconds a save takes); unless saves fail or positions are not written (in-memory,
//!   `-dry-run`), when nothing waits and a crash may duplicate what was in flight, as before;
//! - at most [`MAX_MARKS`] marks a generation: past that (a slow trickle of lines while Loki is
//!   unreachable), later chunks are stamped as usual but not saved, and not waited for;
//! - marks older than [`MAX_REPLAY_AGE`] are not replayed: after a long stop, Loki could refuse
//!   entries that old (a duplicate is better than a rejected line).

/// Longest a read-time stamp may lag the time its chunk was read before a new mark is set.
pub const MAX_LAG: i64 = 10_000_000; // 10 ms

/// Most marks saved for one generation.
pub const MAX_MARKS: usize = 256;

/// Marks older than this (by their timestamp, against the restart's clock) are not replayed.
pub const MAX_REPLAY_AGE: i64 = 3_600_000_000_000; // 1 h

/// A stamp anchor: the line starting at `offset` (or the first after it) was stamped `ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Byte offset in the generation.
    pub offset: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
}

/// The saved stamps of one generation: marks in offset order, valid below `through`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    /// Anchors, ascending by offset.
    pub marks: Vec<Mark>,
    /// End of what was handed on with these marks (0 = nothing).
    pub through: u64,
}

impl Stamps {
    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty() || self.through == 0
    }

    /// The stamp a line starting at `offset` was given, when it was handed on before.
    pub fn replay(&self, offset: u64) -> Option<i64> {
        if offset >= self.through {
            return None;
        }
        let i = self.marks.partition_point(|m| m.offset <= offset);
        let m = self.marks.get(i.checked_sub(1)?)?;
        Some(m.ts.saturating_add(i64::try_from(offset - m.offset).unwrap_or(i64::MAX)))
    }

    /// Records a chunk handed on up to `end` whose lines past the replayed ones were stamped
    /// from `mark` (`None`: all of them were replayed). Returns false, changing nothing, when
    /// the marks are full: that chunk is not replayable.
    pub fn record(&mut self, mark: Option<Mark>, end: u64, committed: u64) -> bool {
        self.prune(committed);
        if let Some(m) = mark
            && self.marks.last() != Some(&m)
        {
            if self.marks.len() >= MAX_MARKS {
                return false;
            }
            if self.marks.last().is_some_and(|l| l.offset >= m.offset) {
                // Marks only move forward; anything else is a generation started again.
                self.marks.clear();
            }
            self.marks.push(m);
        }
        if self.marks.is_empty() {
            return false;
        }
        self.through = self.through.max(end);
        true
    }

    /// Forgets marks no line at or after `committed` needs (keeps the last one at or before it).
    pub fn prune(&mut self, committed: u64) {
        if committed >= self.through {
            self.marks.clear();
            self.through = 0;
            return;
        }
        let keep_from = self.marks.partition_point(|m| m.offset <= committed);
        if keep_from > 1 {
            self.marks.drain(..keep_from - 1);
        }
    }

    /// These stamps without marks older than [`MAX_REPLAY_AGE`] before `now` (all of them or
    /// none: a replay must not mix old and new anchors below `through`).
    pub fn fresh(mut self, now: i64) -> Self {
        if self
            .marks
            .first()
            .is_some_and(|m| now.saturating_sub(m.ts) > MAX_REPLAY_AGE)
        {
            self.marks.clear();
            self.through = 0;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(offset: u64, ts: i64) -> Mark {
        Mark { offset, ts }
    }

    #[test]
    fn replay_follows_the_last_mark_below_through() {
        let s = Stamps {
            marks: vec![m(100, 5_000), m(400, 9_000)],
            through: 700,
        };
        assert_eq!(s.replay(99), None, "before the first mark");
        assert_eq!(s.replay(100), Some(5_000));
        assert_eq!(s.replay(250), Some(5_150));
        assert_eq!(s.replay(400), Some(9_000));
        assert_eq!(s.replay(699), Some(9_299));
        assert_eq!(s.replay(700), None, "never handed on");
    }

    #[test]
    fn record_extends_prunes_and_caps() {
        let mut s = Stamps::default();
        assert!(!s.record(None, 50, 0), "no mark: nothing replayable");
        assert!(s.record(Some(m(0, 10)), 50, 0));
        assert!(s.record(Some(m(0, 10)), 90, 0), "the same mark goes on");
        assert_eq!((s.marks.len(), s.through), (1, 90));
        assert!(s.record(Some(m(90, 1_000)), 200, 0));
        // Committed past the first mark's range: it goes, the one covering 120 stays.
        s.prune(120);
        assert_eq!(s.marks, vec![m(90, 1_000)]);
        s.prune(200);
        assert!(s.is_empty(), "all acknowledged: nothing to replay");
        // A reader's mark outlives a prune: the next chunk records it again.
        assert!(s.record(Some(m(90, 1_000)), 260, 200));
        assert_eq!(s.replay(230), Some(1_140));
        let mut full = Stamps::default();
        for i in 0..MAX_MARKS as u64 {
            assert!(full.record(Some(m(i * 10, i as i64)), i * 10 + 10, 0));
        }
        assert!(!full.record(Some(m(99_999, 1)), 100_000, 0));
        assert_eq!(full.through, MAX_MARKS as u64 * 10, "unchanged when full");
    }

    #[test]
    fn old_marks_are_not_replayed() {
        let s = Stamps {
            marks: vec![m(0, 1_000)],
            through: 10,
        };
        assert_eq!(s.clone().fresh(1_000 + MAX_REPLAY_AGE), s);
        assert!(s.fresh(1_001 + MAX_REPLAY_AGE).is_empty());
    }
}
