//! Read-time timestamps of one generation's lines, as a function of where each line starts
//! ([`crate::positions::stamps`] says why): replayed from the saved marks below their
//! `through`, otherwise from the generation's current mark, or a new one when that would lag
//! the read time by more than [`MAX_LAG`].
//!
//! Invariants:
//! - the stamps a reader hands on are strictly increasing in the order it hands them on, over
//!   all its generations (a new mark is later than the reader's last stamp), except replayed
//!   ones, which are exactly what the same lines got before the restart;
//! - a line is replayed only below the saved `through`: everything it was handed on with
//!   before a crash, nothing it was not.

use crate::positions::{MAX_LAG, Mark, Stamps};

/// The stamping state of one generation.
#[derive(Debug, Default)]
pub(crate) struct Stamper {
    /// What was saved before a restart (empty for a new generation).
    restored: Stamps,
    /// The mark new lines follow.
    mark: Option<Mark>,
}

impl Stamper {
    /// A stamper that first gives lines below `restored.through` their saved stamps.
    pub(crate) fn new(restored: Stamps) -> Self {
        Stamper {
            restored,
            mark: None,
        }
    }

    /// Stamps the lines of one chunk, which start at `base + starts[i]`, read at `now`; `last`
    /// is the reader's last stamp (updated). Pushes one stamp per line onto `out` and returns
    /// the mark the lines that were not replayed follow (`None` when all were replayed) and
    /// how many lines were replayed (always the first ones: they lie below `through`).
    pub(crate) fn stamp(
        &mut self,
        base: u64,
        starts: &[u64],
        now: i64,
        last: &mut i64,
        out: &mut Vec<i64>,
    ) -> (Option<Mark>, usize) {
        let mut used: Option<Mark> = None;
        let mut replayed = 0;
        for &rel in starts {
            let at = base + rel;
            let ts = match self.restored.replay(at) {
                Some(ts) => {
                    replayed += 1;
                    ts
                }
                None => {
                    let m = match used {
                        Some(m) => m,
                        None => {
                            let m = self.mark_for(at, now, *last);
                            used = Some(m);
                            m
                        }
                    };
                    follow(m, at)
                }
            };
            *last = (*last).max(ts);
            out.push(ts);
        }
        (used, replayed)
    }

    /// The mark a chunk whose first new line starts at `at` follows: the current one while it
    /// lags the read time by at most [`MAX_LAG`] and stays after the reader's last stamp,
    /// otherwise a new one at `at`.
    fn mark_for(&mut self, at: u64, now: i64, last: i64) -> Mark {
        if let Some(m) = self.mark
            && at >= m.offset
        {
            let predicted = follow(m, at);
            if now.saturating_sub(predicted) <= MAX_LAG && predicted > last {
                return m;
            }
        }
        let m = Mark {
            offset: at,
            ts: now.max(last.saturating_add(1)),
        };
        self.mark = Some(m);
        m
    }
}

/// The stamp of the line starting at `at` under mark `m` (one nanosecond a byte).
fn follow(m: Mark, at: u64) -> i64 {
    m.ts.saturating_add(i64::try_from(at.saturating_sub(m.offset)).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_765_000_000_000_000_000;

    fn stamp(s: &mut Stamper, base: u64, starts: &[u64], now: i64, last: &mut i64) -> Vec<i64> {
        let mut out = Vec::new();
        s.stamp(base, starts, now, last, &mut out);
        out
    }

    #[test]
    fn lines_read_together_are_a_byte_apart_in_nanoseconds() {
        let mut s = Stamper::default();
        let mut last = i64::MIN;
        // Three 20-byte lines, all the same text in a real log.
        assert_eq!(
            stamp(&mut s, 0, &[0, 20, 40], T0, &mut last),
            vec![T0, T0 + 20, T0 + 40]
        );
        // The next chunk a millisecond later goes on from the same mark.
        assert_eq!(
            stamp(&mut s, 60, &[0, 20], T0 + 1_000_000, &mut last),
            vec![T0 + 60, T0 + 80]
        );
        // Much later: a new mark at the read time.
        let later = T0 + 5 * MAX_LAG;
        assert_eq!(stamp(&mut s, 100, &[0], later, &mut last), vec![later]);
        assert_eq!(last, later);
    }

    #[test]
    fn a_new_mark_never_goes_back_behind_the_readers_last_stamp() {
        let mut s = Stamper::default();
        let mut last = T0 + 1_000;
        // The clock says T0, but the reader already gave out T0 + 1000 (another generation).
        assert_eq!(
            stamp(&mut s, 0, &[0, 5], T0, &mut last),
            vec![T0 + 1_001, T0 + 1_006]
        );
    }

    #[test]
    fn a_restart_gives_handed_on_lines_their_stamps_again() {
        // Before the crash: chunks of lines, some far apart in time.
        let mut before = Stamper::default();
        let mut saved = Stamps::default();
        let mut last = i64::MIN;
        let mut first = Vec::new();
        let chunks: [(u64, &[u64], i64); 3] = [
            (0, &[0, 30, 60], T0),
            (90, &[0, 30], T0 + 2 * MAX_LAG),
            (150, &[0, 30, 60, 90], T0 + 2 * MAX_LAG + 1_000),
        ];
        for (base, starts, now) in chunks {
            let (mark, _) = before.stamp(base, starts, now, &mut last, &mut first);
            let end = base + starts.last().unwrap() + 30;
            assert!(saved.record(mark, end, 0));
        }
        // Committed up to 90; the rest was in flight. A restart reads from 90, in other chunks.
        saved.prune(90);
        let mut after = Stamper::new(saved);
        let mut last = i64::MIN;
        let now = T0 + 3_600_000_000_000;
        let mut again = Vec::new();
        let (_, replayed) = after.stamp(
            90,
            &[0, 30, 60, 90, 120, 150, 180],
            now,
            &mut last,
            &mut again,
        );
        assert_eq!(replayed, 6, "the lines below through");
        assert_eq!(
            again[..6],
            first[3..],
            "handed-on lines get their stamps again"
        );
        assert_eq!(again[6], now, "a line never handed on gets a new one");
    }
}
