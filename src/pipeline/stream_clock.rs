//! Distinct, strictly increasing read-time timestamps per stream.
//!
//! Loki keeps one entry per (stream, timestamp, line): two identical lines with the same
//! timestamp in one stream are stored once. Every line of a read chunk is stamped with the
//! same instant, so repeated lines (`connection reset by peer` five times in a burst) would
//! collapse inside Loki although every one of them was sent. Promtail stamps each line with its
//! own `time.Now()`, which is usually, not always, distinct.
//!
//! [`StreamClock`] runs on a job's entries after its pipeline, when their final labels (the
//! stream) are known, and before they are handed to the clients (so every client and every
//! retry of a batch sends the same timestamps, and Loki deduplicates a re-sent batch instead
//! of storing it twice).
//!
//! Invariants:
//! - an entry stamped at read time ([`Stamp::ReadTime`]) leaves with a timestamp strictly
//!   greater than the previous read-time entry of its stream that passed this clock: its own
//!   read time, or the previous one plus 1 ns when that is not later. Entries keep their order,
//!   so a stream's lines are in file order, also when several files feed one stream;
//! - entries whose timestamp is given ([`Stamp::Given`]: a `timestamp` stage) are untouched
//!   and do not move the clock (Promtail ships them as they are); so are re-sent lines
//!   ([`Stamp::Replayed`]): they carry the stamp of their first send, which the clock has
//!   already passed, and moving them would make Loki keep them twice;
//! - a read time more than [`MAX_LEAD`] behind its stream's clock means the wall clock was set
//!   back: the entry keeps its own time instead of being pushed ahead of the clock (Loki refuses
//!   entries too far in the future);
//! - memory is bounded: a stream is forgotten once no entry of it was read within [`HORIZON`]
//!   of the newest read time seen; entries of one job arrive in read order (one channel, one
//!   task), so no entry of a forgotten stream can still arrive with a time it could collide
//!   with.
//!
//! A stream fed by two scrape jobs has one clock per job (each job's pipeline runs on its own);
//! such streams are rare, since the `job` label usually differs.

use std::collections::HashMap;

use crate::entry::{Entry, LabelSet, Stamp};

/// How far behind its stream's clock a read time may be and still be moved after it; further
/// behind, the wall clock went back.
pub const MAX_LEAD: i64 = 1_000_000_000;

/// How long (in read time) a stream's clock is kept after its last entry.
pub const HORIZON: i64 = 10_000_000_000;

/// The clocks of one job's streams.
#[derive(Debug, Default)]
pub struct StreamClock {
    /// Last timestamp given to a read-time entry, per stream.
    last: HashMap<LabelSet, i64>,
    /// The stream of the previous entry and its clock: consecutive entries of one chunk share
    /// their labels, so most entries need a pointer comparison, not a hash.
    recent: Option<(LabelSet, i64)>,
    /// The newest read time seen.
    newest: i64,
    /// `newest` when the streams were last pruned.
    pruned_at: i64,
}

impl StreamClock {
    /// An empty clock.
    pub fn new() -> Self {
        StreamClock {
            newest: i64::MIN,
            pruned_at: i64::MIN,
            ..Self::default()
        }
    }

    /// Gives the read-time entries of `entries` their stream's next timestamp, in order.
    pub fn stamp(&mut self, entries: &mut [Entry]) {
        for e in entries.iter_mut() {
            if e.stamp != Stamp::ReadTime {
                continue;
            }
            let read = e.timestamp.0;
            if read > self.newest || read < self.newest.saturating_sub(HORIZON) {
                self.newest = read;
            }
            let last = self.clock_of(&e.labels);
            if read <= last && last - read < MAX_LEAD {
                e.timestamp.0 = last + 1;
            }
            self.set_recent(&e.labels, e.timestamp.0);
        }
        self.flush_recent();
        if self.newest.saturating_sub(self.pruned_at) > HORIZON || self.newest < self.pruned_at {
            self.prune();
        }
    }

    /// Number of streams with a clock (tests check the bound).
    pub fn streams(&self) -> usize {
        self.last.len() + usize::from(self.recent.is_some())
    }

    fn clock_of(&mut self, labels: &LabelSet) -> i64 {
        match &self.recent {
            Some((l, t)) if l.shares(labels) || l == labels => *t,
            _ => {
                self.flush_recent();
                self.last.get(labels).copied().unwrap_or(i64::MIN)
            }
        }
    }

    fn set_recent(&mut self, labels: &LabelSet, t: i64) {
        match &mut self.recent {
            Some((l, last)) if l.shares(labels) || l == labels => *last = t,
            _ => {
                self.flush_recent();
                self.recent = Some((labels.clone(), t));
            }
        }
    }

    fn flush_recent(&mut self) {
        if let Some((l, t)) = self.recent.take() {
            self.last.insert(l, t);
        }
    }

    fn prune(&mut self) {
        let keep_from = self.newest.saturating_sub(HORIZON);
        self.last.retain(|_, t| *t >= keep_from);
        self.pruned_at = self.newest;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::{Ack, Timestamp};

    fn entry(labels: &LabelSet, ts: i64, line: &'static str) -> Entry {
        Entry::new(
            labels.clone(),
            Timestamp(ts),
            Bytes::from(line),
            Ack::none(),
        )
    }

    fn times(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.timestamp.0).collect()
    }

    #[test]
    fn lines_of_one_chunk_get_a_nanosecond_each() {
        let a = LabelSet::from_pairs([("job", "x")]);
        let mut es: Vec<Entry> = (0..5).map(|_| entry(&a, 1_000, "same line")).collect();
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![1_000, 1_001, 1_002, 1_003, 1_004]);
        // The next chunk, read in the same nanosecond as the last bump, goes on after it.
        let mut next = vec![entry(&a, 1_002, "same line"), entry(&a, 5_000, "later")];
        clock.stamp(&mut next);
        assert_eq!(times(&next), vec![1_005, 5_000]);
    }

    #[test]
    fn two_files_feeding_one_stream_never_share_a_timestamp() {
        // After `labeldrop: [filename]` two files' chunks (different label allocations, equal
        // labels) interleave in one stream.
        let from_a = LabelSet::from_pairs([("job", "x")]);
        let from_b = LabelSet::from_pairs([("job", "x")]);
        assert!(!from_a.shares(&from_b));
        let mut es = vec![
            entry(&from_a, 10, "retrying request"),
            entry(&from_a, 10, "retrying request"),
            entry(&from_b, 10, "retrying request"),
            entry(&from_b, 11, "retrying request"),
            entry(&from_a, 11, "retrying request"),
        ];
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![10, 11, 12, 13, 14]);
    }

    #[test]
    fn streams_have_their_own_clocks() {
        let a = LabelSet::from_pairs([("job", "a")]);
        let b = LabelSet::from_pairs([("job", "b")]);
        let mut es = vec![entry(&a, 7, "x"), entry(&b, 7, "x"), entry(&a, 7, "x")];
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![7, 7, 8]);
    }

    #[test]
    fn given_timestamps_are_left_alone_and_do_not_move_the_clock() {
        let a = LabelSet::from_pairs([("job", "a")]);
        let mut given = entry(&a, 500, "parsed");
        given.stamp = Stamp::Given;
        let mut given_again = entry(&a, 500, "parsed");
        given_again.stamp = Stamp::Given;
        let mut es = vec![entry(&a, 100, "r"), given, given_again, entry(&a, 100, "r")];
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![100, 500, 500, 101]);
    }

    #[test]
    fn replayed_stamps_are_left_alone_and_do_not_move_the_clock() {
        let a = LabelSet::from_pairs([("job", "a")]);
        let mut again = entry(&a, 100, "sent before");
        again.stamp = Stamp::Replayed;
        let mut es = vec![entry(&a, 300, "r"), again, entry(&a, 300, "r")];
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![300, 100, 301]);
    }

    #[test]
    fn a_clock_set_back_is_followed_not_outrun() {
        let a = LabelSet::from_pairs([("job", "a")]);
        let hour = 3_600_000_000_000;
        let mut es = vec![entry(&a, 2 * hour, "x"), entry(&a, hour, "x")];
        let mut clock = StreamClock::new();
        clock.stamp(&mut es);
        assert_eq!(times(&es), vec![2 * hour, hour]);
    }

    #[test]
    fn idle_streams_are_forgotten() {
        let mut clock = StreamClock::new();
        for i in 0..1_000 {
            let l = LabelSet::from_pairs([("filename", format!("/f{i}"))]);
            clock.stamp(&mut [entry(&l, 1_000 + i, "x")]);
        }
        assert_eq!(clock.streams(), 1_000);
        let l = LabelSet::from_pairs([("filename", "/late")]);
        clock.stamp(&mut [entry(&l, 1_000 + 2 * HORIZON, "x")]);
        assert_eq!(
            clock.streams(),
            1,
            "only the stream read within the horizon"
        );
    }
}
