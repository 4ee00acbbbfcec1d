//! The one value that crosses every boundary: [`Entry`], with its [`LabelSet`] and [`Timestamp`].
//!
//! Invariants:
//! - a `LabelSet` is always sorted by name (it is a `BTreeMap`) and shared copy-on-write, so the
//!   entries of one target share one allocation until a stage changes a label;
//! - `Entry::line` is raw bytes: invalid UTF-8 is carried as it is, end to end (Promtail sends it
//!   unchanged, spec §5.8);
//! - an `Entry` holds the [`Ack`] of the read chunk it came from; the chunk's position is committed
//!   only when every entry (and every clone of it, one per client) has been dropped after delivery
//!   or a counted, deliberate drop (DESIGN.md contract 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use crate::ack::Ack;

/// Reserved label set by the `tenant` stage; removed before the entry is grouped into a stream.
pub const TENANT_LABEL: &str = "__tenant_id__";

/// A log stream's labels: sorted by name, shared copy-on-write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSet(Arc<BTreeMap<String, String>>);

impl LabelSet {
    /// An empty label set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a label set from name/value pairs (a later duplicate name wins).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        LabelSet(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether label `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Sets a label (copies the shared map first if another entry shares it).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if self.0.get(&name) == Some(&value) {
            return; // avoids un-sharing the map for a no-op
        }
        Arc::make_mut(&mut self.0).insert(name, value);
    }

    /// Removes a label, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        if !self.0.contains_key(name) {
            return None;
        }
        Arc::make_mut(&mut self.0).remove(name)
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        if self.0.iter().all(|(k, v)| keep(k, v)) {
            return;
        }
        Arc::make_mut(&mut self.0).retain(|k, v| keep(k, v));
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `other` shares this set's allocation (a pointer comparison: entries of one
    /// read chunk share their labels until a stage changes them).
    pub fn shares(&self, other: &LabelSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Loki's stream selector for these labels, `{a="b", c="d"}`, sorted by name, values quoted
    /// like Go's `strconv.Quote` (spec §8.6). Labels whose name starts with `__` (the reserved
    /// tenant label) are left out.
    pub fn stream_key(&self) -> String {
        let mut out = String::with_capacity(16 + self.0.len() * 24);
        out.push('{');
        let mut first = true;
        for (name, value) in self.0.iter() {
            if name.starts_with("__") {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(name);
            out.push('=');
            go_quote_into(&mut out, value);
        }
        out.push('}');
        out
    }
}

impl std::fmt::Display for LabelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.stream_key())
    }
}

/// Appends `s` quoted with the escaping rules of Go's `strconv.Quote`.
pub fn go_quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A point in time as nanoseconds since the Unix epoch (covers the years 1678 to 2262).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a `SystemTime`, saturating outside the representable range.
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(
                i64::try_from(e.duration().as_nanos())
                    .map(|n| -n)
                    .unwrap_or(i64::MIN),
            ),
        }
    }

    /// Seconds and nanoseconds (in `[0, 1e9)`) as protobuf's `Timestamp` wants them.
    pub fn seconds_nanos(self) -> (i64, i32) {
        (
            self.0.div_euclid(1_000_000_000),
            self.0.rem_euclid(1_000_000_000) as i32,
        )
    }
}

/// Where an entry's timestamp came from, which decides whether ferrotail may move it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stamp {
    /// The time the line was read (files without a `timestamp` stage). Loki keeps one entry
    /// per stream, timestamp and line, so these are made distinct and strictly increasing per
    /// stream after the pipeline ([`crate::pipeline::stream_clock`]).
    #[default]
    ReadTime,
    /// Set from the line or by its sender (a `timestamp` stage, a pushed entry): shipped as it
    /// is, as Promtail does.
    Given,
    /// The read-time stamp the line was handed on with before (a re-send after a restart or
    /// after its target came back, [`crate::positions::stamps`]): shipped as it is, so that
    /// Loki merges it with its first send instead of storing it twice.
    Replayed,
}

/// One log line with its stream labels, timestamp, structured metadata and acknowledgement.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The stream labels.
    pub labels: LabelSet,
    /// The entry's time (read time for files unless a `timestamp` stage sets it).
    pub timestamp: Timestamp,
    /// Where `timestamp` came from.
    pub stamp: Stamp,
    /// The line, as raw bytes, without its `\n` (a `\r` before it is kept, spec §5.4).
    pub line: Bytes,
    /// Structured metadata pairs, in the order they were added.
    pub structured_metadata: Vec<(String, String)>,
    /// The acknowledgement of the read chunk this entry came from.
    pub ack: Ack,
}

impl Entry {
    /// A new entry stamped at read time, without structured metadata.
    pub fn new(labels: LabelSet, timestamp: Timestamp, line: Bytes, ack: Ack) -> Self {
        Entry {
            labels,
            timestamp,
            stamp: Stamp::ReadTime,
            line,
            structured_metadata: Vec::new(),
            ack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_key_sorted_and_quoted_like_go() {
        // Appendix B of the spec.
        let l = LabelSet::from_pairs([
            ("job", "varlogs"),
            ("filename", "/var/log/a b\".log"),
            ("host", "h"),
        ]);
        assert_eq!(
            l.stream_key(),
            r#"{filename="/var/log/a b\".log", host="h", job="varlogs"}"#
        );
    }

    #[test]
    fn stream_key_skips_reserved_and_escapes_controls() {
        let l = LabelSet::from_pairs([("__tenant_id__", "t"), ("a", "x\ny\u{1}\\é")]);
        assert_eq!(l.stream_key(), r#"{a="x\ny\x01\\é"}"#);
    }

    #[test]
    fn copy_on_write_does_not_touch_the_original() {
        let a = LabelSet::from_pairs([("job", "x")]);
        let mut b = a.clone();
        b.insert("level", "info");
        assert_eq!(a.len(), 1);
        assert_eq!(b.get("level"), Some("info"));
        b.remove("job");
        assert_eq!(a.get("job"), Some("x"));
    }

    #[test]
    fn timestamp_split_handles_negative_times() {
        assert_eq!(
            Timestamp(1_700_000_000_000_000_005).seconds_nanos(),
            (1_700_000_000, 5)
        );
        assert_eq!(Timestamp(-1).seconds_nanos(), (-1, 999_999_999));
    }
}
