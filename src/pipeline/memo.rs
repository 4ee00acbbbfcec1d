//! Memoisation of deterministic label-set edits.
//!
//! Entries of one stream arrive with the same shared `LabelSet`; remembering earlier
//! input → output pairs turns the per-line map copy of a label edit into an `Arc` clone, and
//! makes every entry of the stream share one output map (cheap to compare downstream).
//! [`LastLabels`] serves edits that depend only on the input (`static_labels`, `labeldrop`,
//! `labelallow`); [`ValueMemo`] edits that also depend on a few extracted values (`labels`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::entry::LabelSet;

/// The last input and output of a label-set edit that depends on nothing but its input.
#[derive(Debug, Default)]
pub struct LastLabels {
    last: Option<(LabelSet, LabelSet)>,
}

impl LastLabels {
    /// Applies `edit` to `labels`, or reuses the previous result when `labels` equals the
    /// previous input (compared by pointer first, then by content).
    pub fn apply(&mut self, labels: &mut LabelSet, edit: impl FnOnce(&mut LabelSet)) {
        if let Some((input, output)) = &self.last
            && input == labels
        {
            *labels = output.clone();
            return;
        }
        let input = labels.clone();
        edit(labels);
        self.last = Some((input, labels.clone()));
    }
}

/// Remembered outputs per input label set, keyed by the values that were applied.
///
/// Bounded: at most [`ValueMemo::INPUTS`] input label sets (most recently used first) with at
/// most [`ValueMemo::PER_INPUT`] value combinations each. When values are so varied that
/// fewer than half of the lookups hit (e.g. a label taken from a request id), the memo stands
/// aside for a while instead of paying for insertions that never pay back.
#[derive(Debug, Default)]
pub struct ValueMemo {
    tables: Vec<(LabelSet, ValueTable)>,
    window_lookups: u32,
    window_hits: u32,
    bypass: u32,
}

/// Remembered outputs by the hash of their values (the key is already a hash).
type ValueTable =
    HashMap<u64, Vec<(Box<[Option<Box<str>>]>, LabelSet)>, BuildHasherDefault<PassThrough>>;

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn hash_values(values: &[Option<&str>]) -> u64 {
    // FNV-1a with a separator per value; the table verifies candidates, so collisions only
    // cost a comparison.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for v in values {
        match v {
            Some(s) => {
                s.bytes().for_each(&mut eat);
                eat(0xff);
            }
            None => eat(0xfe),
        }
    }
    h
}

impl ValueMemo {
    /// Input label sets remembered.
    pub const INPUTS: usize = 8;
    /// Value combinations remembered per input label set.
    pub const PER_INPUT: usize = 256;
    const WINDOW: u32 = 4096;
    const BYPASS: u32 = 65_536;

    /// Sets `labels` to the remembered output for (`labels`, `values`), or applies `edit` and
    /// remembers its result.
    pub fn apply(
        &mut self,
        labels: &mut LabelSet,
        values: &[Option<&str>],
        edit: impl FnOnce(&mut LabelSet),
    ) {
        if self.bypass > 0 {
            self.bypass -= 1;
            edit(labels);
            return;
        }
        self.window_lookups += 1;
        if self.window_lookups >= Self::WINDOW {
            if self.window_hits < Self::WINDOW / 2 {
                self.bypass = Self::BYPASS;
                self.tables.clear();
            }
            self.window_lookups = 0;
            self.window_hits = 0;
        }
        let h = hash_values(values);
        let slot = match self.tables.iter().position(|(input, _)| input == labels) {
            Some(i) => {
                // Keep the most recently used input first.
                self.tables[..=i].rotate_right(1);
                0
            }
            None => {
                if self.tables.len() >= Self::INPUTS {
                    self.tables.pop();
                }
                self.tables
                    .insert(0, (labels.clone(), ValueTable::default()));
                0
            }
        };
        let table = &mut self.tables[slot].1;
        let same = |stored: &[Option<Box<str>>]| {
            stored.len() == values.len()
                && stored.iter().zip(values).all(|(a, b)| a.as_deref() == *b)
        };
        if let Some(out) = table
            .get(&h)
            .and_then(|bucket| bucket.iter().find(|(v, _)| same(v)))
            .map(|(_, out)| out.clone())
        {
            self.window_hits += 1;
            *labels = out;
            return;
        }
        edit(labels);
        if table.len() >= Self::PER_INPUT {
            table.clear();
        }
        let stored: Box<[Option<Box<str>>]> = values.iter().map(|v| v.map(Box::from)).collect();
        table.entry(h).or_default().push((stored, labels.clone()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_previous_output() {
        let mut memo = LastLabels::default();
        let input = LabelSet::from_pairs([("a", "1")]);
        let mut first = input.clone();
        memo.apply(&mut first, |l| l.insert("b", "2"));
        let mut second = input.clone();
        let mut called = false;
        memo.apply(&mut second, |_| called = true);
        assert!(!called);
        assert_eq!(first, second);
        let mut other = LabelSet::from_pairs([("a", "2")]);
        memo.apply(&mut other, |l| l.insert("b", "3"));
        assert_eq!(other.get("b"), Some("3"));
    }

    #[test]
    fn value_memo_matches_direct_application() {
        let mut memo = ValueMemo::default();
        let inputs = [
            LabelSet::from_pairs([("job", "a")]),
            LabelSet::from_pairs([("job", "b")]),
        ];
        // Many inputs and value combinations, more than the memo holds, in a repeating order.
        for round in 0..3 {
            for i in 0..600 {
                let input = &inputs[i % 2];
                let v = format!("v{}", i % 300);
                let values = [Some(v.as_str()), if i % 3 == 0 { None } else { Some("x") }];
                let edit = |l: &mut LabelSet| {
                    if let Some(v) = values[0] {
                        l.insert("level", v);
                    }
                    if let Some(v) = values[1] {
                        l.insert("other", v);
                    }
                };
                let mut direct = input.clone();
                edit(&mut direct);
                let mut memoised = input.clone();
                memo.apply(&mut memoised, &values, edit);
                assert_eq!(memoised, direct, "round {round} line {i}");
            }
        }
    }

    #[test]
    fn value_memo_shares_outputs_and_steps_aside_for_unique_values() {
        let mut memo = ValueMemo::default();
        let input = LabelSet::from_pairs([("job", "a")]);
        let mut first = input.clone();
        memo.apply(&mut first, &[Some("info")], |l| l.insert("level", "info"));
        let mut second = input.clone();
        let mut called = false;
        memo.apply(&mut second, &[Some("info")], |_| called = true);
        assert!(!called, "second lookup must hit");
        assert_eq!(first, second);
        for i in 0..ValueMemo::WINDOW * 2 {
            let v = i.to_string();
            let mut l = input.clone();
            memo.apply(&mut l, &[Some(v.as_str())], |l| l.insert("id", v.as_str()));
            assert_eq!(l.get("id"), Some(v.as_str()));
        }
        assert!(
            memo.bypass > 0,
            "unique values must switch the memo off for a while"
        );
    }
}
