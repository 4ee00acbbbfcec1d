//! The `json` stage's fast path: a single pass over the document that validates it and picks
//! out the values of a [`PathTrie`] without building anything for the keys it does not want.
//!
//! Why not serde_json's streaming API: going through serde's visitor machinery for every key
//! and skipped value cost about 2 ns per byte on typical 250-byte log lines, most of the
//! stage's time; this scanner does the same validation with tight byte loops (spec peers §F.3:
//! never build a DOM per line).
//!
//! Contract (checked against the serde_json/JMESPath path by a differential property test):
//! - the document must be exactly one JSON value (RFC 8259 grammar: no trailing commas,
//!   comments, leading zeros, control characters in strings, bad escapes), surrounded only by
//!   whitespace; the top level must be an object or `null`, else [`Malformed`];
//! - strings that are skipped are not checked for UTF-8 (like Go); a string that is extracted
//!   must be valid UTF-8, else `Malformed` (the caller retries invalid UTF-8 on a lossy copy);
//!   `\u` escapes must pair their surrogates everywhere (serde_json's rule, so both paths agree;
//!   Go would substitute U+FFFD);
//! - an extracted string without escapes is a slice of the input `Bytes`, not a copy; numbers
//!   are `f64` (an out-of-range number such as `1e400` is `Malformed`, as in serde_json);
//! - a duplicate key's last occurrence wins; a wanted array or object is validated here and
//!   then built once with serde_json to be re-serialised.

use bytes::Bytes;
use serde::de::DeserializeSeed;

use super::extracted::{Text, Value};
use super::jsonx::{GoVar, Malformed, PathTrie};

type Res<T> = Result<T, Malformed>;

/// Scans `input`, filling `out[i]` for every path of `trie` (null where nothing matches).
pub fn extract_fast(input: &Bytes, trie: &PathTrie, out: &mut [Option<Value>]) -> Res<()> {
    trie.reset(out);
    let mut s = Scanner {
        buf: input,
        src: input,
        pos: 0,
    };
    s.ws();
    match s.peek() {
        Some(b'{') => s.object(trie, out)?,
        Some(b'n') => s.literal(b"null")?,
        _ => return Err(Malformed),
    }
    s.ws();
    if s.pos == s.buf.len() {
        Ok(())
    } else {
        Err(Malformed)
    }
}

struct Scanner<'a> {
    buf: &'a [u8],
    src: &'a Bytes,
    pos: usize,
}

/// Bytes that end the fast part of a string scan: `"`, `\` and control characters.
const fn string_stops() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}
static STRING_STOPS: [bool; 256] = string_stops();

/// The index of the first `"`, `\` or control character at or after `i` (or the length).
/// Eight bytes at a time: for each test, `(w - ONES * n) & !w & HIGH` flags bytes below `n`
/// (zero bytes after an xor); only flags above a true match can be spurious, so the lowest
/// flag is exact.
#[inline(always)]
fn skip_plain(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = buf.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flags = (w.wrapping_sub(ONES * 0x20) & !w)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        let flags = flags & HIGH;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while buf.get(i).is_some_and(|&c| !STRING_STOPS[usize::from(c)]) {
        i += 1;
    }
    i
}

fn hex(c: u8) -> Option<u16> {
    match c {
        b'0'..=b'9' => Some(u16::from(c - b'0')),
        b'a'..=b'f' => Some(u16::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(c - b'A' + 10)),
        _ => None,
    }
}

/// The four hex digits at `at` as a UTF-16 code unit.
fn hex4(buf: &[u8], at: usize) -> Res<u16> {
    buf.get(at..at + 4)
        .ok_or(Malformed)?
        .iter()
        .try_fold(0u16, |acc, &c| hex(c).map(|h| acc * 16 + h))
        .ok_or(Malformed)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        let mut i = self.pos;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(i) {
            i += 1;
        }
        self.pos = i;
    }

    fn expect(&mut self, c: u8) -> Res<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Res<()> {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Scans a string whose opening quote is at `pos`; returns the content range and whether
    /// it has escapes. Escapes are checked for syntax; `pos` ends after the closing quote.
    #[inline]
    fn string(&mut self) -> Res<(usize, usize, bool)> {
        self.expect(b'"')?;
        let start = self.pos;
        // Most strings have no escapes: one scan to the closing quote.
        let end = skip_plain(self.buf, start);
        if self.buf.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok((start, end, false));
        }
        self.pos = end;
        self.string_with_escapes(start)
    }

    /// The rest of [`Scanner::string`] from the first stop that is not the closing quote.
    #[cold]
    fn string_with_escapes(&mut self, start: usize) -> Res<(usize, usize, bool)> {
        let mut escaped = false;
        loop {
            self.pos = skip_plain(self.buf, self.pos);
            match self.peek() {
                Some(b'"') => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    match self.buf.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2;
                        }
                        Some(b'u') => {
                            // Surrogates must come in pairs (serde_json, which the general
                            // path uses, refuses lone ones).
                            let unit = hex4(self.buf, self.pos + 2)?;
                            self.pos += 6;
                            match unit {
                                0xD800..=0xDBFF => {
                                    if self.buf.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                        return Err(Malformed);
                                    }
                                    if !(0xDC00..=0xDFFF).contains(&hex4(self.buf, self.pos + 2)?) {
                                        return Err(Malformed);
                                    }
                                    self.pos += 6;
                                }
                                0xDC00..=0xDFFF => return Err(Malformed),
                                _ => {}
                            }
                        }
                        _ => return Err(Malformed),
                    }
                }
                // A control character or the end of the input.
                _ => return Err(Malformed),
            }
        }
    }

    /// Scans a number at `pos` (JSON grammar) and returns its text range. A number too large
    /// for an `f64` (`1e400`) is malformed, wanted or not, as for Go's and serde_json's
    /// decoders.
    fn number(&mut self) -> Res<(usize, usize)> {
        let start = self.pos;
        let (start, end) = self.number_syntax(start)?;
        if end - start > 300 || self.buf[start..end].iter().any(|&c| c == b'e' || c == b'E') {
            let text = std::str::from_utf8(&self.buf[start..end]).map_err(|_| Malformed)?;
            let f: f64 = text.parse().map_err(|_| Malformed)?;
            if !f.is_finite() {
                return Err(Malformed);
            }
        }
        Ok((start, end))
    }

    fn number_syntax(&mut self, start: usize) -> Res<(usize, usize)> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Malformed),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Malformed);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Malformed);
            }
            self.digits();
        }
        Ok((start, self.pos))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Skips one value of any kind, validating it. Iterative, so deep nesting cannot overflow
    /// the stack.
    fn skip_value(&mut self) -> Res<()> {
        // Open containers: true for an object, false for an array.
        let mut stack = BoolStack::default();
        loop {
            // A value.
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => return Err(Malformed),
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&is_object) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match (self.peek(), is_object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.ws();
                        self.key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        stack.pop();
                    }
                    _ => return Err(Malformed),
                }
            }
        }
    }

    /// A key and its colon (whitespace before the key already skipped).
    fn key(&mut self) -> Res<(usize, usize, bool)> {
        let k = self.string()?;
        self.ws();
        self.expect(b':')?;
        Ok(k)
    }

    /// Scans an object at `pos`, filling the slots of `node`'s children.
    fn object(&mut self, node: &PathTrie, out: &mut [Option<Value>]) -> Res<()> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut scratch = Vec::new();
        loop {
            let (start, end, escaped) = self.key()?;
            let raw = &self.buf[start..end];
            let child = if escaped {
                scratch.clear();
                unescape_into(raw, &mut scratch)?;
                node.child(&scratch)
            } else {
                node.child(raw)
            };
            self.ws();
            match child {
                Some(child) => self.wanted(child, out)?,
                None => self.skip_value()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// Reads the value at `pos` for a trie node that wants it (or wants something inside it).
    fn wanted(&mut self, node: &PathTrie, out: &mut [Option<Value>]) -> Res<()> {
        // A later duplicate key replaces whatever an earlier one set.
        node.reset(out);
        let value = match self.peek() {
            Some(b'"') => {
                let (start, end, escaped) = self.string()?;
                let raw = &self.buf[start..end];
                if escaped {
                    let mut bytes = Vec::with_capacity(raw.len());
                    unescape_into(raw, &mut bytes)?;
                    Value::Str(Text::from(String::from_utf8(bytes).map_err(|_| Malformed)?))
                } else {
                    let s = std::str::from_utf8(raw).map_err(|_| Malformed)?;
                    Value::Str(Text::slice_of(self.src, s))
                }
            }
            Some(b'{') if node.targets.is_empty() => return self.object(node, out),
            Some(b'[') if node.targets.is_empty() => {
                // Paths go through objects only: everything below stays null.
                return self.skip_value();
            }
            Some(b'{' | b'[') => {
                let start = self.pos;
                self.skip_value()?;
                let mut de = serde_json::Deserializer::from_slice(&self.buf[start..self.pos]);
                let var = GoVar.deserialize(&mut de).map_err(|_| Malformed)?;
                node.fill_from(&var, out);
                return Ok(());
            }
            Some(b't') => {
                self.literal(b"true")?;
                Value::Bool(true)
            }
            Some(b'f') => {
                self.literal(b"false")?;
                Value::Bool(false)
            }
            Some(b'n') => {
                self.literal(b"null")?;
                return Ok(()); // already null
            }
            Some(b'-' | b'0'..=b'9') => {
                let (start, end) = self.number()?;
                let text = std::str::from_utf8(&self.buf[start..end]).map_err(|_| Malformed)?;
                let f: f64 = text.parse().map_err(|_| Malformed)?;
                if !f.is_finite() {
                    return Err(Malformed);
                }
                Value::Num(f)
            }
            _ => return Err(Malformed),
        };
        node.set(out, value);
        Ok(())
    }
}

/// A stack of booleans that lives in one machine word up to 64 levels deep (the common case
/// never allocates) and spills into a `Vec` beyond.
#[derive(Default)]
struct BoolStack {
    bits: u64,
    len: usize,
    spill: Vec<bool>,
}

impl BoolStack {
    fn push(&mut self, v: bool) {
        if self.len < 64 {
            self.bits = (self.bits & !(1 << self.len)) | (u64::from(v) << self.len);
        } else {
            self.spill.push(v);
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        if self.len > 64 {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    fn last(&self) -> Option<&bool> {
        match self.len {
            0 => None,
            n if n <= 64 => Some(if self.bits >> (n - 1) & 1 == 1 {
                &true
            } else {
                &false
            }),
            _ => self.spill.last(),
        }
    }
}

/// Decodes the escapes of a string's content (already syntax-checked) into `out`, as UTF-8
/// bytes. Unpaired surrogates are refused (as serde_json does).
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) -> Res<()> {
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1).ok_or(Malformed)?;
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let read4 = |at: usize| hex4(raw, at);
                let hi = read4(i)?;
                i += 4;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        if raw.get(i..i + 2) != Some(b"\\u") {
                            return Err(Malformed);
                        }
                        let lo = read4(i + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(Malformed);
                        }
                        i += 6;
                        0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Malformed),
                    _ => u32::from(hi),
                };
                let ch = char::from_u32(code).ok_or(Malformed)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return Err(Malformed),
        };
        out.push(simple);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "jsonscan_tests.rs"]
mod tests;
