//! Push bodies as Loki 3.4.6 reads them (`pkg/loghttp/push.ParseLokiRequest`): the
//! `Content-Encoding` (none, `snappy` (passed on), `gzip`, `deflate`), then by `Content-Type`
//! JSON (`application/json`) or snappy-block protobuf (anything else), then each stream's label
//! string parsed as PromQL's `ParseMetric` does. Also the raw endpoint's newline-delimited text.
//!
//! Invariants:
//! - a body is decoded whole or refused whole: one bad stream or entry refuses the request (as
//!   Loki does), so a pusher never gets half of a request accepted;
//! - memory grows only through `charge`: every decompressed buffer is charged before it is
//!   filled (snappy's declared length before allocating it, gzip/deflate output per 64 KiB), so
//!   a small body cannot make a large allocation past the byte budget;
//! - lines are raw bytes: protobuf lines are slices of the decompressed body (no copy), and
//!   invalid UTF-8 passes unchanged.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::client::proto;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The body cannot be read (bad encoding, bad protobuf/JSON, bad labels): 400.
    #[error("{0}")]
    BadRequest(String),
    /// The byte budget has no room for it now: 429, try again later.
    #[error("{0}")]
    Full(String),
    /// It can never fit in the byte budget: 413.
    #[error("{0}")]
    TooLarge(String),
}

/// One pushed stream: its parsed labels (empty values removed) and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedStream {
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Entries in the order pushed.
    pub entries: Vec<PushedEntry>,
}

/// One pushed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedEntry {
    /// Unix nanoseconds, as pushed.
    pub timestamp: i64,
    /// The line's bytes.
    pub line: Bytes,
    /// Structured metadata pairs, in the order pushed.
    pub structured_metadata: Vec<(String, String)>,
}

/// A decoded body.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The streams, in the order pushed.
    pub streams: Vec<PushedStream>,
    /// Bytes the entries keep alive once the intermediate buffers are gone (the decompressed
    /// protobuf they are slices of, or the JSON lines and metadata they own).
    pub kept: usize,
}

/// Decompression output is charged in steps of this size.
const STEP: usize = 64 * 1024;

/// Decodes a `/loki/api/v1/push` body. `charge(n)` is called before `n` more bytes are held
/// (decompressed output); its error stops decoding and is returned.
pub fn decode_push(
    body: Bytes,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    charge: &mut dyn FnMut(usize) -> Result<(), PushError>,
) -> Result<Decoded, PushError> {
    let body = match content_encoding.unwrap_or("") {
        // Loki passes a snappy body on as it is: the protobuf decoder unsnappies it.
        "" | "snappy" => body,
        "gzip" => inflate(flate2::read::MultiGzDecoder::new(&body[..]), "gzip", charge)?,
        "deflate" => {
            // Go's compress/flate is raw DEFLATE; HTTP's "deflate" is the zlib wrapping. A zlib
            // header never starts a raw stream an encoder writes, so both are taken.
            if looks_like_zlib(&body) {
                inflate(flate2::read::ZlibDecoder::new(&body[..]), "zlib", charge)?
            } else {
                inflate(
                    flate2::read::DeflateDecoder::new(&body[..]),
                    "flate",
                    charge,
                )?
            }
        }
        other => {
            return Err(PushError::BadRequest(format!(
                "Content-Encoding {other:?} not supported"
            )));
        }
    };
    match media_type(content_type)?.as_str() {
        "application/json" => decode_json(&body),
        _ => decode_proto(&body, charge),
    }
}

/// Go's `mime.ParseMediaType` as far as Loki's choice depends on it: the lowercased type before
/// any parameter; no type at all is Go's error.
fn media_type(content_type: Option<&str>) -> Result<String, PushError> {
    let t = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t.is_empty() {
        return Err(PushError::BadRequest("mime: no media type".to_owned()));
    }
    Ok(t)
}

fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

/// Reads a decompressor to its end, charging its output as it grows.
fn inflate(
    mut r: impl Read,
    what: &str,
    charge: &mut dyn FnMut(usize) -> Result<(), PushError>,
) -> Result<Bytes, PushError> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        charge(STEP)?;
        let start = out.len();
        out.resize(start + STEP, 0);
        let mut filled = start;
        while filled < out.len() {
            match r.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PushError::BadRequest(format!("{what}: {e}"))),
            }
        }
        let done = filled < out.len();
        out.truncate(filled);
        if done {
            return Ok(Bytes::from(out));
        }
    }
}

/// Snappy block, then protobuf `PushRequest`.
fn decode_proto(
    body: &[u8],
    charge: &mut dyn FnMut(usize) -> Result<(), PushError>,
) -> Result<Decoded, PushError> {
    use prost::Message as _;
    let bad = |e: String| PushError::BadRequest(e);
    let len = snap::raw::decompress_len(body).map_err(|e| bad(format!("snappy: {e}")))?;
    charge(len)?;
    let mut raw = vec![0u8; len];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut raw)
        .map_err(|e| bad(format!("snappy: {e}")))?;
    raw.truncate(n);
    let raw = Bytes::from(raw);
    let req = proto::PushRequest::decode(raw.clone())
        .map_err(|e| bad(format!("invalid protobuf PushRequest: {e}")))?;
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let labels = parse_labels(&s.labels)
            .map_err(|e| bad(format!("couldn't parse labels: {e} (in {:?})", s.labels)))?;
        let entries = s
            .entries
            .into_iter()
            .map(|e| PushedEntry {
                timestamp: e.timestamp.map(|t| t.unix_nanos()).unwrap_or(0),
                line: e.line,
                structured_metadata: e
                    .structured_metadata
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect(),
            })
            .collect();
        streams.push(PushedStream { labels, entries });
    }
    Ok(Decoded {
        streams,
        kept: raw.len(),
    })
}

/// Loki's JSON push body (`loghttp.PushRequest`).
fn decode_json(body: &[u8]) -> Result<Decoded, PushError> {
    let req: JsonPush = serde_json::from_slice(body)
        .map_err(|e| PushError::BadRequest(format!("invalid JSON push request: {e}")))?;
    let mut kept = 0;
    let mut streams = Vec::new();
    for s in req.streams.unwrap_or_default() {
        // Loki turns the object into a label string and parses that: names must be label
        // names, and empty values are dropped.
        let mut labels = BTreeMap::new();
        for (name, value) in s.stream.unwrap_or_default() {
            if !is_label_name(&name) {
                return Err(PushError::BadRequest(format!(
                    "couldn't parse labels: invalid label name {name:?}"
                )));
            }
            if !value.0.is_empty() {
                labels.insert(name, value.0);
            }
        }
        let entries: Vec<PushedEntry> = s
            .values
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .map(|e| e.0)
            .collect();
        for e in &entries {
            kept += e.line.len()
                + e.structured_metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
        }
        streams.push(PushedStream { labels, entries });
    }
    Ok(Decoded { streams, kept })
}

#[derive(Deserialize)]
struct JsonPush {
    #[serde(default)]
    streams: Option<Vec<JsonStream>>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: Option<BTreeMap<String, LabelValue>>,
    #[serde(default)]
    values: Option<Vec<Option<JsonEntry>>>,
}

/// A stream label value: Loki takes a string, or the text of a number or boolean.
struct LabelValue(String);

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(LabelValue(s)),
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                Ok(LabelValue(v.to_string()))
            }
            other => Err(de::Error::custom(format!(
                "label value must be a string, got {other}"
            ))),
        }
    }
}

/// `["<unix ns>", "<line>", {"<name>": "<value>", ...}]`: the timestamp and line are strings,
/// the optional third element an object of strings; further elements are ignored (as Loki does).
struct JsonEntry(PushedEntry);

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an entry [\"<unix nanoseconds>\", \"<line>\", {metadata}]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonEntry, A::Error> {
                let mut e = PushedEntry {
                    timestamp: 0,
                    line: Bytes::new(),
                    structured_metadata: Vec::new(),
                };
                if let Some(ts) = seq.next_element::<String>()? {
                    e.timestamp = ts.parse().map_err(|_| {
                        de::Error::custom(format!(
                            "error reading entry timestamp: {ts:?} is not an integer"
                        ))
                    })?;
                } else {
                    return Ok(JsonEntry(e));
                }
                if let Some(line) = seq.next_element::<String>()? {
                    e.line = Bytes::from(line);
                } else {
                    return Ok(JsonEntry(e));
                }
                if let Some(Metadata(m)) = seq.next_element::<Metadata>()? {
                    e.structured_metadata = m;
                }
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(JsonEntry(e))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Structured metadata: an object of strings, in its order.
struct Metadata(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings (structured metadata)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(Metadata(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The raw endpoint's body: each non-empty line, trailing `\r`/`\n` removed (Go's
/// `strings.TrimRight(line, "\r\n")`), as a slice of `body`.
pub fn raw_lines(body: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i);
        let mut trimmed = end;
        while trimmed > start && matches!(body[trimmed - 1], b'\r' | b'\n') {
            trimmed -= 1;
        }
        if trimmed > start {
            out.push(body.slice(start..trimmed));
        }
        start = end + 1;
    }
    out
}

fn is_label_name(name: &str) -> bool {
    crate::units::is_legacy_label_name(name)
}

/// Parses a stream's label string as PromQL's `ParseMetric` does: an optional metric name (as
/// `__name__`), then `{name="value", ...}` (a trailing comma allowed; values in `"..."`,
/// `'...'` with Go's escapes, or `` `...` `` raw; names plain or quoted, but legacy label names
/// as Loki 3.4.6 requires). A repeated name is an error; labels with an empty value are
/// dropped, as Loki drops them.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let mut out = BTreeMap::new();
    p.ws();
    if p.peek()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
    {
        let name = p.ident(true);
        out.insert("__name__".to_owned(), name);
        p.ws();
        if p.peek().is_none() {
            return Ok(out);
        }
    }
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let name = match p.peek() {
            Some(b'"' | b'\'' | b'`') => p.string()?,
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => p.ident(false),
            Some(c) => {
                return Err(format!(
                    "unexpected character {:?} at {} (a label name)",
                    c as char, p.i
                ));
            }
            None => return Err("unexpected end of input inside braces".to_owned()),
        };
        if !is_label_name(&name) {
            // Quoted names are PromQL syntax, but Loki 3.4.6 takes legacy names only.
            return Err(format!("invalid label name {name:?}"));
        }
        p.ws();
        p.expect(b'=')?;
        p.ws();
        let value = match p.peek() {
            Some(b'"' | b'\'' | b'`') => p.string()?,
            _ => return Err(format!("expected a quoted label value at {}", p.i)),
        };
        if out.contains_key(&name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        out.insert(name, value);
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.expect(b'}')?;
        break;
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the labels at {}", p.i));
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(got) => format!(
                "expected {:?} at {}, got {:?}",
                c as char, self.i, got as char
            ),
            None => format!("expected {:?} at the end of input", c as char),
        })
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*` (with `:` for a metric name). The caller checked the first.
    fn ident(&mut self, colon: bool) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':'))
        {
            self.i += 1;
        }
        // ASCII only, so the slice is UTF-8.
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// A quoted string, unescaped like Go's `strconv.Unquote`.
    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        let Some(q) = self.peek() else {
            return Err("expected a string".to_owned());
        };
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(format!("unterminated string starting at {start}"));
            };
            self.i += 1;
            if c == q {
                break;
            }
            if q == b'`' {
                out.push(c);
                continue;
            }
            match c {
                b'\n' => return Err(format!("newline in string starting at {start}")),
                b'\\' => self.escape(q, &mut out)?,
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in string starting at {start}"))
    }

    /// The `n` digits in `radix` of an escape that started at `at`.
    fn digits(&mut self, n: usize, radix: u32, at: usize) -> Result<u32, String> {
        let end = self.i + n;
        let text = self
            .s
            .get(self.i..end)
            .and_then(|d| std::str::from_utf8(d).ok())
            .ok_or_else(|| format!("short escape at {at}"))?;
        // from_str_radix takes a sign, Go does not.
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad escape at {at}"));
        }
        let v = u32::from_str_radix(text, radix).map_err(|_| format!("bad escape at {at}"))?;
        self.i = end;
        Ok(v)
    }

    fn escape(&mut self, q: u8, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.i - 1;
        let Some(c) = self.peek() else {
            return Err(format!("unterminated escape at {at}"));
        };
        self.i += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' | b'\'' if c == q => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        match c {
            b'x' => out.push(self.digits(2, 16, at)? as u8),
            b'0'..=b'7' => {
                self.i -= 1;
                let v = self.digits(3, 8, at)?;
                out.push(u8::try_from(v).map_err(|_| format!("octal escape over 255 at {at}"))?);
            }
            b'u' | b'U' => {
                let v = self.digits(if c == b'u' { 4 } else { 8 }, 16, at)?;
                let ch = char::from_u32(v).ok_or_else(|| format!("invalid code point at {at}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(format!("unknown escape \\{} at {at}", other as char)),
        }
        Ok(())
    }
}
