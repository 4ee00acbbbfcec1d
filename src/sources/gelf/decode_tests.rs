#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

const ID: [u8; 8] = *b"msgid001";

fn chunk(id: [u8; 8], seq: u8, count: u8, body: &[u8]) -> Vec<u8> {
    let mut out = CHUNK_MAGIC.to_vec();
    out.extend_from_slice(&id);
    out.push(seq);
    out.push(count);
    out.extend_from_slice(body);
    out
}

/// `payload` cut into `count` chunks of message `id`.
fn chunks(id: [u8; 8], payload: &[u8], count: u8) -> Vec<Vec<u8>> {
    let size = payload.len().div_ceil(count as usize);
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, part)| chunk(id, i as u8, count, part))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const SAMPLE: &str = r#"{"version":"1.1","host":"web-1","short_message":"GET /health 200","timestamp":1700000000.125,"level":6,"facility":"nginx","_path":"/health","_status":200}"#;

#[test]
fn a_plain_message_is_read_and_written_back_as_go_gelf_does() {
    let m = decode_payload(SAMPLE.as_bytes(), 1 << 20).unwrap();
    assert_eq!(m.host, "web-1");
    assert_eq!(m.level_keyword(), Some("informational"));
    assert_eq!(m.to_json(), SAMPLE);
}

#[test]
fn gzip_and_zlib_payloads_are_inflated() {
    for payload in [gzip(SAMPLE.as_bytes()), zlib(SAMPLE.as_bytes())] {
        let m = decode_payload(&payload, 1 << 20).unwrap();
        assert_eq!(m.to_json(), SAMPLE);
    }
}

#[test]
fn field_order_omitted_zero_fields_and_dropped_unknown_fields() {
    // level 0 and empty full_message/facility are left out (omitempty), unknown fields are
    // dropped, additional fields come sorted, numbers as Go writes float64.
    let m = decode_payload(
        br#"{"_z":1e21,"_a":0.0000001,"_m":[1,"x<y",{"b":true,"a":null}],"short_message":"s","unknown":1,"level":0,"host":"h","version":"1.1","_big":12345678901234567890}"#,
        1 << 20,
    )
    .unwrap();
    assert_eq!(m.level_keyword(), Some("emergency"));
    assert_eq!(
        m.to_json(),
        r#"{"version":"1.1","host":"h","short_message":"s","timestamp":0,"_a":1e-7,"_big":12345678901234567000,"_m":[1,"x\u003cy",{"a":null,"b":true}],"_z":1e+21}"#
    );
}

#[test]
fn go_string_escaping() {
    let mut s = String::new();
    go_string(&mut s, "a\"b\\c\n\t\u{1}&\u{2028}é");
    assert_eq!(s, r#""a\"b\\c\n\t\u0001\u0026\u2028é""#);
}

#[test]
fn level_is_truncated_and_unknown_levels_have_no_keyword() {
    let m = parse_message(br#"{"level":3.9}"#).unwrap();
    assert_eq!((m.level, m.level_keyword()), (3, Some("error")));
    let m = parse_message(br#"{"level":9}"#).unwrap();
    assert_eq!(m.level_keyword(), None);
    let m = parse_message(br#"{"level":-1}"#).unwrap();
    assert_eq!(m.level_keyword(), None);
}

#[test]
fn bad_payloads_are_errors() {
    for (payload, want) in [
        (&b"not json"[..], "invalid JSON"),
        (b"[1,2]", "not a JSON object"),
        (br#"{"host":5}"#, "invalid type for field host"),
        (
            br#"{"timestamp":"now"}"#,
            "invalid type for field timestamp",
        ),
        (br#"{"level":null}"#, "invalid type for field level"),
        (b"", "invalid JSON"),
        (&[0x1f, 0x8b, 1, 2, 3][..], "gzip payload"),
        (&[0x78, 0x9c, 0xff, 0xff][..], "zlib payload"),
    ] {
        let e = decode_payload(payload, 1 << 20).unwrap_err().to_string();
        assert!(e.contains(want), "{payload:?}: {e}");
    }
}

#[test]
fn trailing_data_after_the_object_is_ignored_and_bad_utf8_replaced() {
    let m = parse_message(b"{\"short_message\":\"a\xffb\"} trailing").unwrap();
    assert_eq!(m.short, "a\u{fffd}b");
}

#[test]
fn a_compression_bomb_is_refused() {
    let big = format!(r#"{{"short_message":"{}"}}"#, "a".repeat(100_000));
    let e = decode_payload(&gzip(big.as_bytes()), 10_000).unwrap_err();
    assert_eq!(e, GelfError::TooLarge(10_000));
}

#[test]
fn chunks_out_of_order_are_reassembled() {
    let payload = gzip(SAMPLE.as_bytes());
    let mut parts = chunks(ID, &payload, 4);
    parts.reverse();
    parts.swap(1, 2);
    let mut d = Defragmenter::new(Limits::default());
    let now = Instant::now();
    let last = parts.pop().unwrap();
    for p in &parts {
        assert_eq!(d.push(p, now).unwrap(), None);
    }
    assert_eq!(d.pending_messages(), 1);
    let whole = d.push(&last, now).unwrap().unwrap();
    assert_eq!(whole, payload);
    assert_eq!(decode_payload(&whole, 1 << 20).unwrap().to_json(), SAMPLE);
    assert_eq!((d.pending_messages(), d.pending_bytes()), (0, 0));
}

#[test]
fn interleaved_messages_and_a_whole_datagram_between_chunks() {
    let a = chunks(*b"aaaaaaaa", SAMPLE.as_bytes(), 2);
    let b = chunks(*b"bbbbbbbb", SAMPLE.as_bytes(), 3);
    let mut d = Defragmenter::new(Limits::default());
    let now = Instant::now();
    assert_eq!(d.push(&a[0], now).unwrap(), None);
    assert_eq!(d.push(&b[2], now).unwrap(), None);
    assert_eq!(
        d.push(SAMPLE.as_bytes(), now).unwrap().unwrap(),
        SAMPLE.as_bytes()
    );
    assert_eq!(d.push(&b[0], now).unwrap(), None);
    assert_eq!(d.push(&a[1], now).unwrap().unwrap(), SAMPLE.as_bytes());
    assert_eq!(d.push(&b[1], now).unwrap().unwrap(), SAMPLE.as_bytes());
}

#[test]
fn duplicate_chunks_count_once() {
    let parts = chunks(ID, SAMPLE.as_bytes(), 3);
    let mut d = Defragmenter::new(Limits::default());
    let now = Instant::now();
    assert_eq!(d.push(&parts[0], now).unwrap(), None);
    assert_eq!(d.push(&parts[0], now).unwrap(), None);
    assert_eq!(d.push(&parts[1], now).unwrap(), None);
    assert_eq!(d.push(&parts[1], now).unwrap(), None);
    assert_eq!(d.push(&parts[2], now).unwrap().unwrap(), SAMPLE.as_bytes());
    // A chunk of the finished message arriving late starts a new message, which expires.
    assert_eq!(d.push(&parts[2], now).unwrap(), None);
    assert_eq!(d.expire(now + CHUNK_TIMEOUT), 1);
}

#[test]
fn a_missing_chunk_expires_after_five_seconds_and_is_counted() {
    let parts = chunks(ID, SAMPLE.as_bytes(), 3);
    let mut d = Defragmenter::new(Limits::default());
    let start = Instant::now();
    d.push(&parts[0], start).unwrap();
    d.push(&parts[2], start + Duration::from_secs(1)).unwrap();
    assert_eq!(d.next_deadline(), Some(start + CHUNK_TIMEOUT));
    assert_eq!(d.expire(start + Duration::from_millis(4999)), 0);
    assert_eq!(d.expire(start + CHUNK_TIMEOUT), 1);
    assert_eq!((d.pending_messages(), d.pending_bytes()), (0, 0));
    assert_eq!(d.take_dropped(), (1, 0));
    assert_eq!(d.take_dropped(), (0, 0));
    // The missing chunk arriving after the expiry completes nothing.
    assert_eq!(
        d.push(&parts[1], start + Duration::from_secs(6)).unwrap(),
        None
    );
}

#[test]
fn bad_chunks_are_errors() {
    let mut d = Defragmenter::new(Limits::default());
    let now = Instant::now();
    assert_eq!(d.push(&CHUNK_MAGIC, now), Err(GelfError::ShortChunk));
    assert_eq!(
        d.push(&chunk(ID, 0, 0, b"x")[..12], now),
        Err(GelfError::ShortChunk)
    );
    assert_eq!(
        d.push(&chunk(ID, 0, 0, b"x"), now),
        Err(GelfError::ChunkCount(0))
    );
    assert_eq!(
        d.push(&chunk(ID, 0, 129, b"x"), now),
        Err(GelfError::ChunkCount(129))
    );
    assert!(matches!(
        d.push(&chunk(ID, 3, 3, b"x"), now),
        Err(GelfError::ChunkMismatch { .. })
    ));
    d.push(&chunk(ID, 0, 3, b"x"), now).unwrap();
    assert!(matches!(
        d.push(&chunk(ID, 1, 4, b"x"), now),
        Err(GelfError::ChunkMismatch { expected: 3, .. })
    ));
    assert_eq!(d.push(b"", now), Err(GelfError::Empty));
    // A message in one chunk needs no reassembly.
    assert_eq!(
        d.push(&chunk(*b"single01", 0, 1, b"{}"), now)
            .unwrap()
            .unwrap(),
        b"{}"
    );
}

#[test]
fn a_full_128_chunk_message_is_accepted() {
    // Exactly 128 parts of 100 bytes.
    let payload = format!(r#"{{"short_message":"{}"}}"#, "x".repeat(128 * 100 - 20));
    let parts = chunks(ID, payload.as_bytes(), 128);
    assert_eq!(parts.len(), 128);
    let mut d = Defragmenter::new(Limits::default());
    let now = Instant::now();
    let mut out = None;
    for p in parts.iter().rev() {
        out = d.push(p, now).unwrap();
    }
    assert_eq!(out.unwrap(), payload.as_bytes());
}

#[test]
fn pending_messages_and_bytes_are_bounded_oldest_evicted_first() {
    let limits = Limits {
        max_messages: 3,
        max_bytes: 100,
        ..Limits::default()
    };
    let mut d = Defragmenter::new(limits);
    let now = Instant::now();
    for i in 0..5u8 {
        d.push(&chunk([i; 8], 0, 2, &[b'a'; 10]), now).unwrap();
    }
    assert_eq!(d.pending_messages(), 3);
    assert_eq!(d.take_dropped(), (0, 2));
    // The oldest left are 2, 3, 4: completing 2 works, 0 is gone (a new message).
    assert!(d.push(&chunk([2; 8], 1, 2, b"b"), now).unwrap().is_some());
    assert_eq!(d.push(&chunk([0; 8], 1, 2, b"b"), now).unwrap(), None);
    // Bytes: a 95-byte chunk evicts the others.
    d.push(&chunk([9; 8], 0, 2, &[b'c'; 95]), now).unwrap();
    assert!(d.pending_bytes() <= 100, "{}", d.pending_bytes());
    // A message that alone passes the byte bound is dropped.
    d.push(&chunk([9; 8], 1, 2, &[b'c'; 10]), now).unwrap();
    assert!(d.pending_bytes() <= 100);
    let (_, evicted) = d.take_dropped();
    assert!(evicted >= 3, "{evicted}");
}
