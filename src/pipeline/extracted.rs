//! The extracted map: the per-entry scratch data that stages share (spec §7.1).
//!
//! Invariants:
//! - the map is *seeded* with the entry's labels as they were when the entry entered the
//!   pipeline; the seed is a shared [`LabelSet`] (one `Arc` clone per line), never copied key by
//!   key. Written keys live in a small overlay that shadows the seed, removed keys shadow it with a
//!   tombstone. Later label changes are not mirrored (Promtail does not either);
//! - string values are [`Text`]: shared, immutable UTF-8 bytes, so a value taken from a JSON line
//!   is a slice of the line's `Bytes` (no copy), and `output` can turn it back into a line for free;
//! - numbers are `f64` (Promtail parses JSON numbers as float64) and turn into strings with Go's
//!   `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::LabelSet;

/// A key of the extracted map. Stages build their keys once from their configuration and clone
/// the `Arc` per line, so writing a key never allocates.
pub type Key = Arc<str>;

/// Shared, immutable UTF-8 text (a `Bytes` whose content is valid UTF-8 by construction).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// Text of a static string (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Text(Bytes::from_static(s.as_bytes()))
    }

    /// Copies `s` into a new shared buffer.
    pub fn copy_from(s: &str) -> Self {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The text of `s`, sharing `buf`'s allocation when `s` lies inside `buf` (the common case of
    /// a string borrowed from a parsed line), copying it otherwise.
    pub fn slice_of(buf: &Bytes, s: &str) -> Self {
        let (start, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let p = s.as_ptr() as usize;
        if !s.is_empty() && p >= start && p + s.len() <= end {
            Text(buf.slice(p - start..p - start + s.len()))
        } else {
            Text::copy_from(s)
        }
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        // Every constructor takes a `str`, so this cannot fail; re-checking keeps the crate free
        // of `unsafe` and costs a few nanoseconds on short values.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared bytes (e.g. to become a log line without copying).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The shared bytes, by reference.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(Bytes::from(s))
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Self {
        Text::from_static(s)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of the extracted map.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(Text),
    /// A number (JSON numbers are always `f64`, as in Promtail).
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// JSON `null` (also what `json` stores for an expression that matches nothing).
    Null,
}

impl Value {
    /// A borrowed view of the value.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(t) => ValueRef::Str(t.as_str()),
            Value::Num(n) => ValueRef::Num(*n),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Null => ValueRef::Null,
        }
    }

    /// A string value copied from `s`.
    pub fn str(s: &str) -> Self {
        Value::Str(Text::copy_from(s))
    }
}

/// A borrowed view of a [`Value`] (or of a seed label, which is always a string).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a str),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// Null.
    Null,
}

impl<'a> ValueRef<'a> {
    /// Promtail's `getString` (spec §7.1): strings as they are, numbers in Go's shortest decimal
    /// form without exponent, booleans as `true`/`false`; `None` for null, which makes the
    /// calling stage skip the key.
    pub fn to_text(self) -> Option<Cow<'a, str>> {
        match self {
            ValueRef::Str(s) => Some(Cow::Borrowed(s)),
            ValueRef::Num(n) => Some(Cow::Owned(format_go_float(n))),
            ValueRef::Bool(true) => Some(Cow::Borrowed("true")),
            ValueRef::Bool(false) => Some(Cow::Borrowed("false")),
            ValueRef::Null => None,
        }
    }

    /// Whether the value is null.
    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that round-trip, written
/// without an exponent (`1e21` → `1000000000000000000000`, `1e-6` → `0.000001`).
pub fn format_go_float(f: f64) -> String {
    let mut s = String::new();
    write_go_float(f, &mut s);
    s
}

/// [`format_go_float`] appending to `out` (no allocation when it has room).
pub fn write_go_float(f: f64, out: &mut String) {
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    // Rust's `Display` for f64 is exactly that: shortest round-trip digits, no exponent.
    // (`NaN` is spelled the same in both languages.)
    let _ = write!(out, "{f}");
}

/// Go's `strconv.FormatFloat(f, 'e', -1, 64)` for a finite `f`, appended to `out`: the shortest
/// digits that round-trip, one before the point, and an exponent with its sign and at least two
/// digits (`1e+21`, `1.5e-07`, `-1.5e-300`). Used where Go writes floats with an exponent
/// (json-iterator's encoder, `fmt`'s `%v`).
pub fn write_go_float_exp(f: f64, out: &mut String) {
    // Rust's `LowerExp` without a precision has the same shortest digits; only the exponent is
    // spelled differently (`1e21`, `1.5e-7`).
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
}

/// One written key of the overlay; `None` is a tombstone for a removed key.
type Slot = (Key, Option<Value>);

/// The extracted map of one entry (see the module docs for the seeding rule).
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    seed: LabelSet,
    written: Vec<Slot>,
}

impl Extracted {
    /// A map seeded with `labels` (shared, not copied).
    pub fn new(labels: LabelSet) -> Self {
        Extracted {
            seed: labels,
            written: Vec::new(),
        }
    }

    /// Empties the map and seeds it with `labels`, keeping the overlay's allocation (the pipeline
    /// reuses one map for every line).
    pub fn reset(&mut self, labels: LabelSet) {
        self.seed = labels;
        self.written.clear();
    }

    /// Re-seeds from `labels` *over* the current content: label values overwrite same-named keys,
    /// other keys stay (the `match` stage's semantics, spec §7.1).
    /// Keys of the old seed that `labels` lack stay (copied into the overlay), as in Promtail
    /// where the map is one map and re-seeding only writes.
    pub fn reseed(&mut self, labels: LabelSet) {
        let old = std::mem::replace(&mut self.seed, labels);
        for (k, v) in old.iter() {
            if !self.seed.contains(k) && self.slot(k).is_none() {
                self.written.push((Arc::from(k), Some(Value::str(v))));
            }
        }
        let seed = &self.seed;
        self.written
            .retain(|(k, v)| v.is_some() && !seed.contains(k));
    }

    /// The labels the map was seeded with (the entry's labels when it entered the pipeline, or
    /// when a `match` stage re-seeded it). Buffering stages use it to know which stream a held
    /// entry came from.
    pub fn seed(&self) -> &LabelSet {
        &self.seed
    }

    fn slot(&self, key: &str) -> Option<&Slot> {
        self.written.iter().find(|(k, _)| &**k == key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<ValueRef<'_>> {
        match self.slot(key) {
            Some((_, Some(v))) => Some(v.as_ref()),
            Some((_, None)) => None,
            None => self.seed.get(key).map(ValueRef::Str),
        }
    }

    /// The value of `key` as an owned (cheaply shared) [`Value`].
    pub fn get_value(&self, key: &str) -> Option<Value> {
        match self.slot(key) {
            Some((_, v)) => v.clone(),
            None => self.seed.get(key).map(Value::str),
        }
    }

    /// Whether `key` is present (a null value counts as present).
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: Key, value: Value) {
        match self.written.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = Some(value),
            None => self.written.push((key, Some(value))),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        match self.written.iter_mut().find(|(k, _)| &**k == key) {
            Some(slot) => slot.1 = None,
            None => {
                if self.seed.contains(key) {
                    self.written.push((Arc::from(key), None));
                }
            }
        }
    }

    /// Every key and value: written keys in the order they were first written, then the seed
    /// labels they do not shadow, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> {
        let written = self
            .written
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (&**k, v.as_ref())));
        let seed = self
            .seed
            .iter()
            .filter(|(k, _)| self.slot(k).is_none())
            .map(|(k, v)| (k, ValueRef::Str(v)));
        written.chain(seed)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the map has no keys.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formatting_has_no_exponent() {
        for (f, s) in [
            (200.0, "200"),
            (1.5, "1.5"),
            (0.000001, "0.000001"),
            (1e21, "1000000000000000000000"),
            (1562723913000.0, "1562723913000"),
            (12.34, "12.34"),
            (-0.5, "-0.5"),
            (1e-7, "0.0000001"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_go_float(f), s, "{f:e}");
        }
    }

    #[test]
    fn go_float_exponent_formatting() {
        for (f, s) in [
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (-1.5e-300, "-1.5e-300"),
            (123456789012345678901234567890.0, "1.2345678901234568e+29"),
            (5e-324, "5e-324"),
            (1e100, "1e+100"),
            (0.0, "0e+00"),
            (125.0, "1.25e+02"),
        ] {
            let mut out = String::from(">");
            write_go_float_exp(f, &mut out);
            assert_eq!(out, format!(">{s}"), "{f:?}");
        }
    }

    #[test]
    fn to_text_follows_promtail_get_string() {
        assert_eq!(ValueRef::Str("a").to_text().as_deref(), Some("a"));
        assert_eq!(ValueRef::Num(125.0).to_text().as_deref(), Some("125"));
        assert_eq!(ValueRef::Bool(true).to_text().as_deref(), Some("true"));
        assert_eq!(ValueRef::Bool(false).to_text().as_deref(), Some("false"));
        assert_eq!(ValueRef::Null.to_text(), None);
    }

    #[test]
    fn seeded_with_labels_and_shadowed_by_writes() {
        let labels = LabelSet::from_pairs([("job", "varlogs"), ("filename", "/a.log")]);
        let mut ex = Extracted::new(labels.clone());
        assert_eq!(ex.get("job"), Some(ValueRef::Str("varlogs")));
        assert_eq!(ex.len(), 2);
        ex.insert(Arc::from("job"), Value::Num(1.0));
        assert_eq!(ex.get("job"), Some(ValueRef::Num(1.0)));
        ex.insert(Arc::from("level"), Value::Null);
        assert!(ex.contains("level"));
        assert_eq!(ex.get("level"), Some(ValueRef::Null));
        ex.remove("filename");
        assert_eq!(ex.get("filename"), None);
        assert_eq!(ex.len(), 2);
        // The seed is shared, never modified.
        assert_eq!(labels.get("filename"), Some("/a.log"));
        let keys: Vec<_> = ex.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["job", "level"]);
    }

    #[test]
    fn reset_and_reseed() {
        let mut ex = Extracted::new(LabelSet::from_pairs([("a", "1")]));
        ex.insert(Arc::from("b"), Value::str("x"));
        ex.insert(Arc::from("c"), Value::str("y"));
        ex.reseed(LabelSet::from_pairs([("b", "label")]));
        assert_eq!(ex.get("b"), Some(ValueRef::Str("label")));
        assert_eq!(ex.get("c"), Some(ValueRef::Str("y")));
        // A key of the old seed that the new labels lack stays.
        assert_eq!(ex.get("a"), Some(ValueRef::Str("1")));
        ex.remove("a");
        ex.reseed(LabelSet::from_pairs([("b", "again")]));
        assert_eq!(ex.get("a"), None);
        ex.reset(LabelSet::new());
        assert!(ex.is_empty());
    }

    #[test]
    fn text_slices_share_the_buffer() {
        let line = Bytes::from_static(br#"{"level":"info"}"#);
        let s = std::str::from_utf8(&line[10..14]).unwrap();
        let t = Text::slice_of(&line, s);
        assert_eq!(t.as_str(), "info");
        assert_eq!(t.as_bytes().as_ptr(), line[10..].as_ptr());
        let other = String::from("info");
        let copied = Text::slice_of(&line, &other);
        assert_eq!(copied.as_str(), "info");
        assert_ne!(copied.as_bytes().as_ptr(), other.as_ptr());
    }
}
