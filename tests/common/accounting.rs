//! The accounting every fault scenario ends with: of the lines written, how many Loki stored
//! (at least once), how many more times than once, how many never, and whether anything it
//! stored was never written. Each tally is also appended to
//! `$CARGO_TARGET_TMPDIR/fault-report.tsv`, the figures docs/reliability.md reports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::Write;

use bytes::Bytes;

use super::mock_loki::ReceivedEntry;

/// The outcome of one scenario. Lines are counted as a multiset: a line written five times
/// (real logs repeat lines) must be stored five times, and the mock stores entries by Loki's
/// rule, so five identical lines with one timestamp count once.
#[derive(Debug)]
pub struct Tally {
    pub scenario: String,
    /// Lines written (with repeats).
    pub written: usize,
    /// Written lines stored (a line written n times and stored m times counts min(n, m)).
    pub delivered: usize,
    /// Extra copies stored (a line written once and stored 3 times counts 2).
    pub duplicated: usize,
    /// Written lines never stored, one element per missing copy.
    pub lost: Vec<Bytes>,
    /// Stored lines that were never written.
    pub unexpected: Vec<Bytes>,
    /// Each stored line and how often.
    pub counts: HashMap<Bytes, usize>,
    /// Each written line and how often.
    pub wanted: HashMap<Bytes, usize>,
}

impl Tally {
    /// Tallies `stored` against the lines `written` (repeats allowed).
    pub fn of(scenario: &str, written: &[Bytes], stored: &[ReceivedEntry]) -> Tally {
        let mut counts: HashMap<Bytes, usize> = HashMap::new();
        for e in stored {
            *counts.entry(e.line.clone()).or_insert(0) += 1;
        }
        let mut wanted: HashMap<Bytes, usize> = HashMap::new();
        for l in written {
            *wanted.entry(l.clone()).or_insert(0) += 1;
        }
        let mut lost = Vec::new();
        // In written order, so the first lost line is the earliest one.
        let mut seen: HashMap<&Bytes, usize> = HashMap::new();
        for l in written {
            let n = seen.entry(l).or_insert(0);
            *n += 1;
            if *n > counts.get(l).copied().unwrap_or(0) {
                lost.push(l.clone());
            }
        }
        let unexpected: Vec<Bytes> = counts
            .keys()
            .filter(|l| !wanted.contains_key(*l))
            .cloned()
            .collect();
        let duplicated = counts
            .iter()
            .filter_map(|(l, n)| wanted.get(l).map(|w| n.saturating_sub(*w)))
            .sum();
        let t = Tally {
            scenario: scenario.to_owned(),
            written: written.len(),
            delivered: written.len() - lost.len(),
            duplicated,
            lost,
            unexpected,
            counts,
            wanted,
        };
        t.record();
        t
    }

    /// Lines stored more often than they were written.
    pub fn duplicated_lines(&self) -> HashSet<Bytes> {
        self.counts
            .iter()
            .filter(|(l, n)| self.wanted.get(*l).is_some_and(|w| *n > w))
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// Nothing lost, nothing invented.
    pub fn assert_complete(&self) {
        assert!(
            self.lost.is_empty(),
            "{}: {} of {} lines lost, first {:?}",
            self.scenario,
            self.lost.len(),
            self.written,
            self.lost.first()
        );
        self.assert_nothing_unexpected();
    }

    pub fn assert_nothing_unexpected(&self) {
        assert!(
            self.unexpected.is_empty(),
            "{}: {} stored lines were never written, first {:?}",
            self.scenario,
            self.unexpected.len(),
            self.unexpected.first()
        );
    }

    /// Every line stored exactly once.
    pub fn assert_exactly_once(&self) {
        self.assert_complete();
        assert_eq!(
            self.duplicated,
            0,
            "{}: {} duplicates, e.g. {:?}",
            self.scenario,
            self.duplicated,
            self.duplicated_lines().iter().next()
        );
    }

    /// Every duplicate is one of `allowed` (the lines of the batches whose answer was lost).
    pub fn assert_duplicates_within(&self, allowed: &HashSet<Bytes>) {
        let outside: Vec<Bytes> = self
            .duplicated_lines()
            .into_iter()
            .filter(|l| !allowed.contains(l))
            .collect();
        assert!(
            outside.is_empty(),
            "{}: {} lines duplicated outside the in-flight window, e.g. {:?}",
            self.scenario,
            outside.len(),
            outside.first()
        );
    }

    fn record(&self) {
        let line = format!(
            "{}\twritten={}\tdelivered={}\tduplicated={}\tlost={}\tunexpected={}\n",
            self.scenario,
            self.written,
            self.delivered,
            self.duplicated,
            self.lost.len(),
            self.unexpected.len()
        );
        print!("FAULT-TALLY {line}");
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-report.tsv");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// `n` distinct fixed-width lines `<tag>-<i, 8 digits> <padding>`, `width` bytes each without
/// the `\n`, so line `i` starts at byte `i * (width + 1)`.
pub fn fixed_lines(tag: &str, range: std::ops::Range<usize>, width: usize) -> Vec<Bytes> {
    range
        .map(|i| {
            let mut s = format!("{tag}-{i:08} ");
            assert!(s.len() <= width, "width too small for {s:?}");
            while s.len() < width {
                s.push((b'a' + (s.len() % 26) as u8) as char);
            }
            Bytes::from(s)
        })
        .collect()
}

/// Appends lines, each with `\n`, and syncs.
pub fn append_bytes(path: &std::path::Path, lines: &[Bytes]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

/// Checks that Go Promtail would read `positions` back (rollback loses nothing): what
/// `yaml.UnmarshalStrict` into `{positions: map[string]string}` accepts, with every file key's
/// value a non-negative integer, as Promtail's tailer parses it.
pub fn assert_promtail_can_read(positions: &std::path::Path) {
    let text = std::fs::read_to_string(positions)
        .unwrap_or_else(|e| panic!("reading {}: {e}", positions.display()));
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", positions.display()));
    let top = doc.as_mapping().expect("a mapping at the top");
    assert_eq!(top.len(), 1, "only `positions` at the top:\n{text}");
    let map = top
        .get("positions")
        .and_then(|v| v.as_mapping())
        .unwrap_or_else(|| panic!("`positions` must be a mapping:\n{text}"));
    for (k, v) in map {
        let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
            panic!("keys and values must be strings for Promtail: {k:?}: {v:?}\n{text}");
        };
        if !k.starts_with("cursor-") && !k.starts_with("journal-") {
            assert!(
                v.parse::<i64>().is_ok_and(|n| n >= 0),
                "{k}: {v:?} is not an offset Promtail can parse\n{text}"
            );
        }
    }
}
