//! `logfmt`: extracts values of a logfmt line (spec §7.2).
//!
//! ```yaml
//! logfmt:
//!   mapping:            # required, non-empty: extracted key: logfmt key (empty = same name)
//!     level:
//!     msg: message
//!   source: <key>       # default: the line; "" is an error
//! ```
//!
//! The decoder follows go-logfmt's, which Promtail uses:
//! - the input is split into records at `\n` (a `\r` before it is dropped), every record is
//!   scanned; bytes up to and including space are separators;
//! - a key runs to `=` or a separator; a bare key (no `=`) and `key=` give `""`;
//! - a value runs to a separator; `"..."` values end at the first unescaped quote and, when they
//!   contain a backslash, are unescaped like JSON strings (`\"`, `\\`, `\n`, `\uXXXX`, ...);
//! - syntax errors end the scan (logged at debug level): a `"` in a key, `=` without a key, `=`
//!   or `"` inside an unquoted value, an unterminated or invalid quoted value, an invalid UTF-8
//!   key, a record longer than 64 KiB (the limit of Go's `bufio.Scanner`). Values extracted
//!   before the error stay, as in Promtail.
//!
//! Only mapped keys are extracted, always as strings, the last occurrence winning. Values share
//! the line's buffer unless they had to be unescaped.
//!
//! Difference from Promtail: two extracted keys mapped to the same logfmt key keep only one of
//! them in Promtail (whichever its map iteration gives); here it is always the last in YAML
//! order.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Text, Value};
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::{BuildError, source};

/// Go's `bufio.MaxScanTokenSize`: longer records make the scanner fail.
const MAX_RECORD: usize = 64 * 1024;

/// The `logfmt` stage.
pub struct LogfmtStage {
    /// (logfmt key, extracted key).
    inverse: Vec<(String, Key)>,
    source: Option<String>,
}

impl LogfmtStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["mapping", "source"], &cx.path)?;
        let mapping = f.string_map("mapping")?;
        let source = f.string("source")?;
        if mapping.is_empty() {
            return Err("logfmt mapping is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let mut inverse: Vec<(String, Key)> = Vec::with_capacity(mapping.len());
        for (extracted, logfmt) in mapping {
            let logfmt = match logfmt {
                Some(l) if !l.is_empty() => l,
                _ => extracted.clone(),
            };
            let key = Key::from(extracted.as_str());
            match inverse.iter_mut().find(|(l, _)| *l == logfmt) {
                Some(slot) => slot.1 = key,
                None => inverse.push((logfmt, key)),
            }
        }
        Ok(LogfmtStage { inverse, source })
    }
}

impl Stage for LogfmtStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let Some(text) = source::input(self.source.as_deref(), pe) else {
            return Outcome::Keep;
        };
        let inverse = &self.inverse;
        let extracted = &mut pe.extracted;
        let result = decode(text.as_str(), |key, value| {
            if let Some((_, k)) = inverse.iter().find(|(l, _)| l == key) {
                let v = match value {
                    Val::Borrowed(s) => Text::slice_of(text.bytes(), s),
                    Val::Owned(s) => Text::from(s),
                };
                extracted.insert(k.clone(), Value::Str(v));
            }
        });
        if let Err(e) = result {
            tracing::debug!(error = e, "failed to decode logfmt");
        }
        Outcome::Keep
    }
}

/// A decoded value: a slice of the input, or unescaped text.
#[derive(Debug, PartialEq)]
pub enum Val<'a> {
    /// Borrowed from the input.
    Borrowed(&'a str),
    /// Unescaped.
    Owned(String),
}

/// Scans `input` like go-logfmt's decoder and calls `emit(key, value)` for every pair, in
/// order, until the end or the first syntax error (returned).
pub fn decode<'a>(
    input: &'a str,
    mut emit: impl FnMut(&'a str, Val<'a>),
) -> Result<(), &'static str> {
    for record in input.split('\n') {
        if record.len() >= MAX_RECORD {
            return Err("bufio.Scanner: token too long");
        }
        let record = record.strip_suffix('\r').unwrap_or(record);
        decode_record(record, &mut emit)?;
    }
    Ok(())
}

fn decode_record<'a>(
    line: &'a str,
    emit: &mut impl FnMut(&'a str, Val<'a>),
) -> Result<(), &'static str> {
    let b = line.as_bytes();
    let mut pos = 0;
    loop {
        // Separators.
        while pos < b.len() && b[pos] <= b' ' {
            pos += 1;
        }
        if pos >= b.len() {
            return Ok(());
        }
        // Key.
        let start = pos;
        while pos < b.len() && b[pos] > b' ' && b[pos] != b'=' && b[pos] != b'"' {
            pos += 1;
        }
        if b.get(pos) == Some(&b'"') {
            return Err("unexpected '\"'");
        }
        if pos == start {
            // `=` with no key before it.
            return Err("unexpected '='");
        }
        let key = &line[start..pos];
        if key.contains('\u{fffd}') {
            return Err("invalid key");
        }
        if b.get(pos) != Some(&b'=') {
            emit(key, Val::Borrowed(""));
            continue;
        }
        pos += 1; // '='
        match b.get(pos) {
            None => {
                emit(key, Val::Borrowed(""));
                return Ok(());
            }
            Some(&c) if c <= b' ' => {
                emit(key, Val::Borrowed(""));
                continue;
            }
            Some(b'"') => {
                let (value, end) = quoted(line, pos)?;
                emit(key, value);
                pos = end;
            }
            Some(_) => {
                let start = pos;
                while pos < b.len() && b[pos] > b' ' {
                    if b[pos] == b'=' || b[pos] == b'"' {
                        return Err("unexpected byte in value");
                    }
                    pos += 1;
                }
                emit(key, Val::Borrowed(&line[start..pos]));
            }
        }
    }
}

/// The quoted value starting at `line[open]` (a `"`) and the position after its closing quote.
fn quoted(line: &str, open: usize) -> Result<(Val<'_>, usize), &'static str> {
    let b = line.as_bytes();
    let mut has_esc = false;
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                has_esc = true;
                i += 2;
            }
            b'"' => {
                let inner = &line[open + 1..i];
                let value = if has_esc {
                    Val::Owned(unquote(inner).ok_or("invalid quoted value")?)
                } else {
                    Val::Borrowed(inner)
                };
                return Ok((value, i + 1));
            }
            _ => i += 1,
        }
    }
    Err("unterminated quoted value")
}

/// Unescapes the inside of a quoted value like Go's JSON string decoding (control characters
/// and unknown escapes are invalid; lone surrogates become U+FFFD).
fn unquote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                '\'' => out.push('\''),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hi = hex4(&mut chars)?;
                    if (0xD800..0xDC00).contains(&hi) {
                        // A surrogate pair, if the next escape completes it.
                        let rest = chars.as_str();
                        if let Some(lo) = rest
                            .strip_prefix("\\u")
                            .and_then(|r| r.get(..4))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .filter(|lo| (0xDC00..0xE000).contains(lo))
                        {
                            let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            chars = rest[6..].chars();
                            continue;
                        }
                    }
                    out.push(char::from_u32(hi).unwrap_or('\u{fffd}'));
                }
                _ => return None,
            },
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "logfmt_tests.rs"]
mod tests;
