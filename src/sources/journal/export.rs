//! journalctl's export format (`journalctl -o export`), parsed incrementally: entries are
//! separated by an empty line; a field is `NAME=value\n`, or, for a value that is binary or
//! holds a newline, `NAME\n` + 64-bit little-endian length + the value + `\n`.
//!
//! Invariants: bytes may be fed in chunks cut anywhere; memory is bounded by
//! [`MAX_FIELD`] per field and [`MAX_ENTRY`] per entry (a larger value is skipped, not
//! buffered, and its entry is marked [`JournalEntry::oversized`]); a malformed line ends the
//! stream with an error naming it (journalctl never writes one: it means another program).

use bytes::Bytes;

/// Largest field value kept (journald's own default limit on an entry is 768 MiB, but a
/// message that large is not a log line a shipper should hold).
pub const MAX_FIELD: usize = 8 * 1024 * 1024;
/// Largest entry kept, all fields together.
pub const MAX_ENTRY: usize = 16 * 1024 * 1024;
/// Longest text field line before it is taken as malformed.
const MAX_TEXT_LINE: usize = MAX_FIELD + 256;

/// One journal entry as journalctl exported it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalEntry {
    /// `__CURSOR`.
    pub cursor: String,
    /// `__REALTIME_TIMESTAMP`, Unix microseconds.
    pub realtime_us: i64,
    /// The data fields (names not starting with `__`), in export order.
    pub fields: Vec<(String, Bytes)>,
    /// A value was larger than [`MAX_FIELD`] (or the entry than [`MAX_ENTRY`]) and was dropped.
    pub oversized: bool,
}

impl JournalEntry {
    /// The last value of field `name`.
    pub fn field(&self, name: &str) -> Option<&Bytes> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// What cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    /// A line that is neither `NAME=value`, a binary field name nor empty.
    #[error("malformed journal export line starting {0:?}")]
    Malformed(String),
}

#[derive(Debug)]
enum State {
    /// Reading lines.
    Lines,
    /// After a binary field's name: waiting for its 8-byte length.
    Length(String),
    /// Reading `len` bytes of a binary value (and its `\n`).
    Value { name: String, len: usize },
    /// Skipping `left` bytes of an oversized value (and its `\n`).
    Skip { left: usize },
}

/// The incremental parser.
#[derive(Debug)]
pub struct ExportParser {
    buf: Vec<u8>,
    state: State,
    entry: JournalEntry,
    size: usize,
}

impl Default for ExportParser {
    fn default() -> Self {
        ExportParser {
            buf: Vec::new(),
            state: State::Lines,
            entry: JournalEntry::default(),
            size: 0,
        }
    }
}

impl ExportParser {
    /// Parses `data`, appending the entries it completes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<JournalEntry>) -> Result<(), ExportError> {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        let result = loop {
            match std::mem::replace(&mut self.state, State::Lines) {
                State::Lines => {
                    let Some(nl) = memchr::memchr(b'\n', &self.buf[pos..]) else {
                        if self.buf.len() - pos > MAX_TEXT_LINE {
                            break Err(self.malformed(pos));
                        }
                        break Ok(());
                    };
                    let line = &self.buf[pos..pos + nl];
                    if line.is_empty() {
                        if !self.entry.cursor.is_empty() || !self.entry.fields.is_empty() {
                            out.push(std::mem::take(&mut self.entry));
                        }
                        self.size = 0;
                    } else if let Some(eq) = memchr::memchr(b'=', line) {
                        let name = String::from_utf8_lossy(&line[..eq]).into_owned();
                        let value = Bytes::copy_from_slice(&line[eq + 1..]);
                        self.add(name, value);
                    } else {
                        let name = String::from_utf8_lossy(line).into_owned();
                        self.state = State::Length(name);
                    }
                    pos += nl + 1;
                }
                State::Length(name) => {
                    if self.buf.len() - pos < 8 {
                        self.state = State::Length(name);
                        break Ok(());
                    }
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&self.buf[pos..pos + 8]);
                    pos += 8;
                    let len = usize::try_from(u64::from_le_bytes(n)).unwrap_or(usize::MAX);
                    if len > MAX_FIELD || self.size.saturating_add(len) > MAX_ENTRY {
                        self.entry.oversized = true;
                        self.state = State::Skip {
                            left: len.saturating_add(1),
                        };
                    } else {
                        self.state = State::Value { name, len };
                    }
                }
                State::Value { name, len } => {
                    if self.buf.len() - pos < len + 1 {
                        self.state = State::Value { name, len };
                        break Ok(());
                    }
                    let value = Bytes::copy_from_slice(&self.buf[pos..pos + len]);
                    pos += len + 1; // the value's trailing `\n`
                    self.add(name, value);
                }
                State::Skip { left } => {
                    let n = left.min(self.buf.len() - pos);
                    pos += n;
                    if n < left {
                        self.state = State::Skip { left: left - n };
                        break Ok(());
                    }
                }
            }
        };
        self.buf.drain(..pos);
        result
    }

    fn add(&mut self, name: String, value: Bytes) {
        match name.as_str() {
            "__CURSOR" => self.entry.cursor = String::from_utf8_lossy(&value).into_owned(),
            "__REALTIME_TIMESTAMP" => {
                self.entry.realtime_us = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
            n if n.starts_with("__") => {}
            _ => {
                if value.len() > MAX_FIELD || self.size + value.len() > MAX_ENTRY {
                    self.entry.oversized = true;
                    return;
                }
                self.size += value.len();
                self.entry.fields.push((name, value));
            }
        }
    }

    fn malformed(&self, pos: usize) -> ExportError {
        let end = (pos + 40).min(self.buf.len());
        ExportError::Malformed(String::from_utf8_lossy(&self.buf[pos..end]).into_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn binary_field(name: &str, value: &[u8]) -> Vec<u8> {
        let mut v = format!("{name}\n").into_bytes();
        v.extend_from_slice(&(value.len() as u64).to_le_bytes());
        v.extend_from_slice(value);
        v.push(b'\n');
        v
    }

    fn sample() -> Vec<u8> {
        let mut v = b"__CURSOR=s=abc;i=1;b=b1;m=3e8;t=628a78ff34c00;x=1\n__REALTIME_TIMESTAMP=1733550000000000\n__MONOTONIC_TIMESTAMP=1000\n_BOOT_ID=b1\nMESSAGE=hello one\nPRIORITY=6\n_SYSTEMD_UNIT=ssh.service\n\n".to_vec();
        v.extend_from_slice(b"__CURSOR=s=abc;i=2\n__REALTIME_TIMESTAMP=1733550000000100\n");
        v.extend(binary_field("MESSAGE", b"line one\nline two\x00"));
        v.extend_from_slice(b"PRIORITY=3\n\n");
        v
    }

    #[test]
    fn text_and_binary_fields_in_any_chunking() {
        let input = sample();
        for cut in 1..input.len() {
            let mut p = ExportParser::default();
            let mut out = Vec::new();
            for chunk in input.chunks(cut) {
                p.feed(chunk, &mut out).unwrap();
            }
            assert_eq!(out.len(), 2, "chunks of {cut}");
            assert_eq!(out[0].cursor, "s=abc;i=1;b=b1;m=3e8;t=628a78ff34c00;x=1");
            assert_eq!(out[0].realtime_us, 1_733_550_000_000_000);
            assert_eq!(out[0].field("MESSAGE").unwrap().as_ref(), b"hello one");
            assert!(out[0].fields.iter().all(|(n, _)| !n.starts_with("__")));
            assert_eq!(
                out[1].field("MESSAGE").unwrap().as_ref(),
                b"line one\nline two\x00"
            );
            assert_eq!(out[1].field("PRIORITY").unwrap().as_ref(), b"3");
        }
    }

    #[test]
    fn an_oversized_value_is_skipped_and_marked() {
        let mut input = b"__CURSOR=c1\n".to_vec();
        input.extend(binary_field("MESSAGE", &vec![b'x'; MAX_FIELD + 1]));
        input.extend_from_slice(b"PRIORITY=6\n\n__CURSOR=c2\nMESSAGE=next\n\n");
        let mut p = ExportParser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(64 * 1024) {
            p.feed(chunk, &mut out).unwrap();
            assert!(
                p.buf.len() <= 64 * 1024 + 16,
                "the skipped value is not buffered"
            );
        }
        assert_eq!(out.len(), 2);
        assert!(out[0].oversized && out[0].field("MESSAGE").is_none());
        assert_eq!(out[0].cursor, "c1");
        assert!(!out[1].oversized);
        assert_eq!(out[1].field("MESSAGE").unwrap().as_ref(), b"next");
    }

    #[test]
    fn a_never_ending_line_is_an_error() {
        let mut p = ExportParser::default();
        let mut out = Vec::new();
        let junk = vec![b'x'; MAX_TEXT_LINE + 1];
        assert!(matches!(
            p.feed(&junk, &mut out),
            Err(ExportError::Malformed(_))
        ));
    }
}
