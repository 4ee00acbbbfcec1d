//! GELF datagrams to messages: chunk reassembly ([`Defragmenter`]), decompression and the JSON
//! reading and re-encoding of a message ([`Message`]), as Promtail's GELF reader
//! (`grafana/go-gelf` v2) does them.
//!
//! - A datagram starting with `0x1e 0x0f` is a chunk: 8 bytes of message id, a sequence number
//!   and a count, then a part of the payload. Chunks may come in any order; a duplicate chunk is
//!   ignored (the first copy counts); the message is complete when every sequence number of its
//!   count has come. A message not complete 5 s after its first chunk (Graylog's limit, also
//!   go-gelf's) is dropped and counted as expired.
//! - Any other datagram is a whole payload. A payload starting with `0x1f 0x8b` is gzip, one
//!   starting with `0x78` whose first two bytes are a multiple of 31 is zlib, anything else is
//!   taken as plain JSON (Graylog's rule).
//! - The payload's first JSON value must be an object; its known fields must have their GELF
//!   types, fields starting with `_` are the additional fields, other fields are dropped. The
//!   line is the message written back as go-gelf writes it ([`Message::to_json`]).
//!
//! Invariants (memory is bounded whatever arrives):
//! - at most [`Limits::max_messages`] incomplete messages and [`Limits::max_bytes`] bytes of
//!   their chunks are held: a chunk that would pass either bound evicts the oldest incomplete
//!   messages first (counted as evicted);
//! - a decompressed payload larger than [`Limits::max_decompressed`] is an error, so a
//!   compression bomb costs that much at most;
//! - nothing here panics on any input.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pipeline::jsonx::{self, GoEncoder};

/// The first two bytes of a chunk.
pub const CHUNK_MAGIC: [u8; 2] = [0x1e, 0x0f];
/// Magic (2) + message id (8) + sequence number (1) + count (1).
pub const CHUNK_HEADER: usize = 12;
/// The most chunks a message may have (GELF's limit).
pub const MAX_CHUNKS: u8 = 128;
/// How long the chunks of a message may take to arrive (Graylog's and go-gelf's 5 s).
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounds of a [`Defragmenter`] and of decompression.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Incomplete messages held at once.
    pub max_messages: usize,
    /// Bytes of chunk payloads held at once.
    pub max_bytes: usize,
    /// How long a message's chunks may take (from its first chunk).
    pub timeout: Duration,
    /// Largest decompressed payload.
    pub max_decompressed: usize,
}

impl Default for Limits {
    /// 4,096 messages and 32 MiB of chunks (a full 128-chunk message of 8 KiB chunks is 1 MiB),
    /// 5 s, 16 MiB decompressed.
    fn default() -> Self {
        Limits {
            max_messages: 4096,
            max_bytes: 32 << 20,
            timeout: CHUNK_TIMEOUT,
            max_decompressed: 16 << 20,
        }
    }
}

/// Why a datagram or a message gave no entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GelfError {
    /// A chunk with no payload after its 12-byte header.
    #[error("chunked message size must be greater than {CHUNK_HEADER} bytes")]
    ShortChunk,
    /// A chunk whose count is 0 or above 128.
    #[error("chunk count {0} is not between 1 and {MAX_CHUNKS}")]
    ChunkCount(u8),
    /// A chunk whose count differs from the first chunk's, or whose sequence number is not
    /// below the count.
    #[error("chunk {seq} of {count} does not fit message with {expected} chunks")]
    ChunkMismatch {
        /// Its sequence number.
        seq: u8,
        /// Its count.
        count: u8,
        /// The count of the message's first chunk.
        expected: u8,
    },
    /// An empty datagram.
    #[error("empty datagram")]
    Empty,
    /// The gzip or zlib stream is corrupt (and what it gave is no JSON object).
    #[error("{kind} payload: {message}")]
    Decompress {
        /// `gzip` or `zlib`.
        kind: &'static str,
        /// The decoder's error.
        message: String,
    },
    /// The decompressed payload is larger than the limit.
    #[error("decompressed payload larger than {0} bytes")]
    TooLarge(usize),
    /// The payload is not a JSON value.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The JSON value is not an object.
    #[error("the message is not a JSON object")]
    NotObject,
    /// A known field has the wrong type.
    #[error("invalid type for field {0}")]
    FieldType(String),
}

/// One incomplete chunked message.
struct Pending {
    /// Creation order (oldest first), the key in [`Defragmenter::order`].
    seq: u64,
    deadline: Instant,
    chunks: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Reassembles chunked messages; see the module doc for its bounds.
pub struct Defragmenter {
    limits: Limits,
    pending: HashMap<[u8; 8], Pending>,
    /// Pending message ids by creation order: the oldest is evicted first and expires first
    /// (every message has the same timeout).
    order: BTreeMap<u64, [u8; 8]>,
    next_seq: u64,
    bytes: usize,
    /// Messages dropped incomplete after the timeout, since the last [`Defragmenter::take_dropped`].
    expired: u64,
    /// Messages dropped incomplete to keep within the bounds, since the last take.
    evicted: u64,
}

impl Defragmenter {
    /// An empty defragmenter with `limits`.
    pub fn new(limits: Limits) -> Self {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            expired: 0,
            evicted: 0,
        }
    }

    /// Takes one datagram received at `now`: the payload of a complete message (a whole
    /// datagram, or the last missing chunk of one), `None` while a message is incomplete, or
    /// the error that makes the datagram useless.
    pub fn push(&mut self, datagram: &[u8], now: Instant) -> Result<Option<Vec<u8>>, GelfError> {
        self.expire(now);
        if datagram.is_empty() {
            return Err(GelfError::Empty);
        }
        if !datagram.starts_with(&CHUNK_MAGIC) {
            return Ok(Some(datagram.to_vec()));
        }
        if datagram.len() <= CHUNK_HEADER {
            return Err(GelfError::ShortChunk);
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&datagram[2..10]);
        let (seq, count) = (datagram[10], datagram[11]);
        if count == 0 || count > MAX_CHUNKS {
            return Err(GelfError::ChunkCount(count));
        }
        let body = &datagram[CHUNK_HEADER..];
        if let Some(p) = self.pending.get(&id) {
            let expected = p.chunks.len() as u8;
            if count != expected || seq >= count {
                return Err(GelfError::ChunkMismatch {
                    seq,
                    count,
                    expected,
                });
            }
            if p.chunks[seq as usize].is_some() {
                return Ok(None); // a duplicate: the first copy counts
            }
        } else if seq >= count {
            return Err(GelfError::ChunkMismatch {
                seq,
                count,
                expected: count,
            });
        }
        if count == 1 {
            // A message in one chunk is complete at once: nothing to hold.
            return Ok(Some(body.to_vec()));
        }
        self.make_room(&id, body.len());
        if self.bytes + body.len() > self.limits.max_bytes {
            // This message alone would pass the bound: it can never complete.
            if let Some(p) = self.pending.remove(&id) {
                self.forget(&p);
            }
            self.evicted += 1;
            return Ok(None);
        }
        let p = match self.pending.get_mut(&id) {
            Some(p) => p,
            None => {
                let seq_no = self.next_seq;
                self.next_seq += 1;
                self.order.insert(seq_no, id);
                self.pending.entry(id).or_insert(Pending {
                    seq: seq_no,
                    deadline: now + self.limits.timeout,
                    chunks: vec![None; count as usize],
                    received: 0,
                    bytes: 0,
                })
            }
        };
        p.chunks[seq as usize] = Some(body.to_vec());
        p.received += 1;
        p.bytes += body.len();
        self.bytes += body.len();
        if p.received < p.chunks.len() {
            return Ok(None);
        }
        let Some(p) = self.pending.remove(&id) else {
            return Ok(None);
        };
        self.forget(&p);
        let mut out = Vec::with_capacity(p.bytes);
        for c in p.chunks.into_iter().flatten() {
            out.extend_from_slice(&c);
        }
        Ok(Some(out))
    }

    /// Evicts the oldest incomplete messages (other than `keep`) until `extra` more bytes and,
    /// when `keep` is new, one more message fit the limits.
    fn make_room(&mut self, keep: &[u8; 8], extra: usize) {
        let new = !self.pending.contains_key(keep);
        loop {
            let too_many = new && self.pending.len() >= self.limits.max_messages;
            let too_big = self.bytes + extra > self.limits.max_bytes;
            if !too_many && !too_big {
                return;
            }
            let victim = self.order.values().find(|id| *id != keep).copied();
            let Some(victim) = victim else { return };
            if let Some(p) = self.pending.remove(&victim) {
                self.forget(&p);
                self.evicted += 1;
            }
        }
    }

    /// Drops the bookkeeping of a message taken out of `pending`.
    fn forget(&mut self, p: &Pending) {
        self.order.remove(&p.seq);
        self.bytes -= p.bytes;
    }

    /// Drops the messages whose time is up at `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some((_, id)) = self.order.first_key_value() {
            let id = *id;
            let Some(p) = self.pending.get(&id) else {
                self.order.pop_first();
                continue;
            };
            if p.deadline > now {
                break;
            }
            if let Some(p) = self.pending.remove(&id) {
                self.forget(&p);
            }
            n += 1;
        }
        self.expired += n as u64;
        n
    }

    /// When the oldest incomplete message expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        let (_, id) = self.order.first_key_value()?;
        self.pending.get(id).map(|p| p.deadline)
    }

    /// Incomplete messages held now.
    pub fn pending_messages(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of chunks held now.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Messages dropped incomplete since the last call: `(expired, evicted)`.
    pub fn take_dropped(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.expired),
            std::mem::take(&mut self.evicted),
        )
    }
}

/// A GELF message as go-gelf reads it: the known fields with their types, and the additional
/// (`_`) fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// `version`.
    pub version: String,
    /// `host`.
    pub host: String,
    /// `short_message`.
    pub short: String,
    /// `full_message`.
    pub full: String,
    /// `timestamp`: seconds since the epoch with a fraction; 0 when absent.
    pub timestamp: f64,
    /// `level`, truncated to an integer as Go does; 0 when absent.
    pub level: i32,
    /// `facility`.
    pub facility: String,
    /// The additional fields, by name.
    pub extra: BTreeMap<String, Value>,
}

impl Message {
    /// The keyword of the level (`emergency` ... `debug`), `None` outside 0..=7.
    pub fn level_keyword(&self) -> Option<&'static str> {
        usize::try_from(self.level)
            .ok()
            .and_then(|l| crate::sources::SEVERITY_KEYWORDS.get(l))
            .copied()
    }

    /// The message as go-gelf's `MarshalJSONBuf` writes it (Promtail's line): `version`,
    /// `host`, `short_message`, `full_message` (when not empty), `timestamp`, `level` (when
    /// not 0), `facility` (when not empty), then the additional fields sorted by name; strings
    /// and numbers written as Go's `encoding/json` writes them.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.short.len() + self.full.len());
        out.push_str("{\"version\":");
        go_string(&mut out, &self.version);
        out.push_str(",\"host\":");
        go_string(&mut out, &self.host);
        out.push_str(",\"short_message\":");
        go_string(&mut out, &self.short);
        if !self.full.is_empty() {
            out.push_str(",\"full_message\":");
            go_string(&mut out, &self.full);
        }
        out.push_str(",\"timestamp\":");
        go_float(&mut out, self.timestamp);
        if self.level != 0 {
            let _ = write!(out, ",\"level\":{}", self.level);
        }
        if !self.facility.is_empty() {
            out.push_str(",\"facility\":");
            go_string(&mut out, &self.facility);
        }
        for (k, v) in &self.extra {
            out.push(',');
            go_string(&mut out, k);
            out.push(':');
            go_value(&mut out, v);
        }
        out.push('}');
        out
    }
}

/// Decompresses (if it is gzip or zlib) and reads one complete payload.
pub fn decode_payload(payload: &[u8], max_decompressed: usize) -> Result<Message, GelfError> {
    let (kind, data) = if payload.starts_with(&[0x1f, 0x8b]) {
        (
            Some("gzip"),
            inflate(flate2::read::MultiGzDecoder::new(payload), max_decompressed),
        )
    } else if payload.len() >= 2
        && payload[0] == 0x78
        && (u16::from(payload[0]) * 256 + u16::from(payload[1])) % 31 == 0
    {
        (
            Some("zlib"),
            inflate(flate2::read::ZlibDecoder::new(payload), max_decompressed),
        )
    } else {
        (None, (payload.to_vec(), None))
    };
    let (data, failure) = data;
    if data.len() > max_decompressed {
        return Err(GelfError::TooLarge(max_decompressed));
    }
    match parse_message(&data) {
        Ok(m) => Ok(m),
        // A stream that broke before a whole JSON object came out: the stream's error says
        // more than the JSON parser's.
        Err(e) => match (kind, failure) {
            (Some(kind), Some(message)) => Err(GelfError::Decompress { kind, message }),
            _ => Err(e),
        },
    }
}

/// Reads a decoder to its end or its first error, keeping at most `max + 1` bytes (one more
/// than allowed tells an oversized payload). Like Go's decoder, what came out before an error
/// (a truncated stream, a bad checksum) is still used if it holds a whole JSON object.
fn inflate(mut r: impl Read, max: usize) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let failure = (&mut r)
        .take(limit)
        .read_to_end(&mut out)
        .err()
        .map(|e| e.to_string());
    (out, failure)
}

/// Reads the first JSON value of `data` (what follows it is ignored, as Go's `json.Decoder`
/// does) into a [`Message`]. Invalid UTF-8 is replaced, as Go's decoder does.
pub fn parse_message(data: &[u8]) -> Result<Message, GelfError> {
    let text = String::from_utf8_lossy(data);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(GelfError::Json(e.to_string())),
        None => return Err(GelfError::Json("no JSON value".to_string())),
    };
    let Value::Object(fields) = value else {
        return Err(GelfError::NotObject);
    };
    let mut m = Message::default();
    for (k, v) in fields {
        if k.starts_with('_') {
            m.extra.insert(k, v);
            continue;
        }
        let text_field = |v: Value| match v {
            Value::String(s) => Ok(s),
            _ => Err(GelfError::FieldType(k.clone())),
        };
        match k.as_str() {
            "version" => m.version = text_field(v)?,
            "host" => m.host = text_field(v)?,
            "short_message" => m.short = text_field(v)?,
            "full_message" => m.full = text_field(v)?,
            "facility" => m.facility = text_field(v)?,
            "timestamp" => {
                m.timestamp = v.as_f64().ok_or_else(|| GelfError::FieldType(k.clone()))?;
            }
            "level" => {
                let l = v.as_f64().ok_or_else(|| GelfError::FieldType(k.clone()))?;
                m.level = go_int32(l);
            }
            // go-gelf drops fields it does not know.
            _ => {}
        }
    }
    Ok(m)
}

/// Go's `int32(f)`: truncation toward zero; out of range (or NaN) gives the value amd64
/// gives, `MinInt32`.
fn go_int32(f: f64) -> i32 {
    let t = f.trunc();
    if t >= f64::from(i32::MIN) && t <= f64::from(i32::MAX) {
        t as i32
    } else {
        i32::MIN
    }
}

/// Appends `s` as Go's `encoding/json` writes a string (HTML-safe escaping, on by default).
pub fn go_string(out: &mut String, s: &str) {
    out.push('"');
    jsonx::write_go_str_body_as(s, out, GoEncoder::Std);
    out.push('"');
}

/// Appends `f` as Go's `encoding/json` writes a float64 (`1e+21`, `1e-7`).
pub fn go_float(out: &mut String, f: f64) {
    jsonx::write_go_json_float_as(f, out, GoEncoder::Std);
}

/// Appends a JSON value as Go writes an `interface{}` it decoded: numbers as float64, object
/// keys sorted.
fn go_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => go_float(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(out, k);
                out.push(':');
                go_value(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
