use bytes::Bytes;
use proptest::prelude::*;

use super::*;

/// 2024-05-01T10:00:00Z in Unix seconds.
const BASE: i64 = 1_714_557_600;

/// Docker's timestamp (RFC3339NanoFixed) for `BASE` seconds plus `ns` nanoseconds.
fn ts(ns: u32) -> String {
    format!("2024-05-01T10:00:00.{ns:09}Z")
}

fn ns(ns: u32) -> i64 {
    BASE * 1_000_000_000 + i64::from(ns)
}

/// One multiplexed frame.
fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A frame whose payload is `ts(t) + " " + text`.
fn tframe(stream: u8, t: u32, text: &str) -> Vec<u8> {
    frame(stream, format!("{} {text}", ts(t)).as_bytes())
}

fn line(stream: LogStream, t: u32, text: &str) -> LogLine {
    LogLine {
        stream,
        timestamp_ns: ns(t),
        line: Bytes::copy_from_slice(text.as_bytes()),
    }
}

fn out_line(t: u32, text: &str) -> LogLine {
    line(LogStream::Stdout, t, text)
}

fn err_line(t: u32, text: &str) -> LogLine {
    line(LogStream::Stderr, t, text)
}

/// What a decoder gives for `input` in one piece, then `finish`.
struct Decoded {
    lines: Vec<LogLine>,
    error: Option<FrameError>,
    parse_errors: u64,
}

fn decode_pieces(tty: bool, max: usize, pieces: &[&[u8]], finish: bool) -> Decoded {
    let mut d = Decoder::new(tty, max);
    let mut lines = Vec::new();
    let mut error = None;
    for p in pieces {
        if let Err(e) = d.feed(Bytes::copy_from_slice(p), &mut lines) {
            error.get_or_insert(e);
        }
    }
    if finish {
        d.finish(&mut lines);
    }
    Decoded {
        lines,
        error,
        parse_errors: d.take_parse_errors(),
    }
}

fn decode(tty: bool, max: usize, input: &[u8]) -> Decoded {
    decode_pieces(tty, max, &[input], true)
}

/// Decodes `input` whole and byte by byte, checks both agree, and returns the result.
fn decode_checked(tty: bool, max: usize, input: &[u8]) -> Decoded {
    let whole = decode(tty, max, input);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let split = decode_pieces(tty, max, &bytes, true);
    assert_eq!(whole.lines, split.lines, "byte by byte differs");
    assert_eq!(whole.error, split.error);
    assert_eq!(whole.parse_errors, split.parse_errors);
    whole
}

#[test]
fn timestamps_parse_to_unix_nanoseconds() {
    assert_eq!(parse_timestamp(ts(123).as_bytes()), Some(ns(123)));
    assert_eq!(
        parse_timestamp(b"2024-05-01T10:00:00Z"),
        Some(BASE * 1_000_000_000)
    );
    assert_eq!(
        parse_timestamp(b"2024-05-01T12:00:00.5+02:00"),
        Some(ns(500_000_000))
    );
    for bad in [
        &b""[..],
        b"2024-05-01",
        b"hello",
        b"2024-05-01T10:00:00.1",
        b"\xff\xfe",
        // Outside the range of i64 nanoseconds.
        b"1500-01-01T00:00:00Z",
        b"2300-01-01T00:00:00Z",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad:?}");
    }
}

#[test]
fn multiplexed_frames_give_lines_per_stream() {
    let mut input = tframe(1, 1, "hello\n");
    input.extend(tframe(2, 2, "oops\r\n"));
    input.extend(tframe(0, 3, "stdin goes to stdout\n"));
    input.extend(tframe(1, 4, "same line\n"));
    input.extend(tframe(1, 4, "same line\n"));
    input.extend(tframe(1, 5, "\n"));
    input.extend(tframe(1, 6, "many endings\n\r\n\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(
        got.lines,
        [
            out_line(1, "hello"),
            err_line(2, "oops"),
            out_line(3, "stdin goes to stdout"),
            out_line(4, "same line"),
            out_line(4, "same line"),
            out_line(5, ""),
            out_line(6, "many endings"),
        ]
    );
    assert_eq!(got.error, None);
    assert_eq!(got.parse_errors, 0);
}

#[test]
fn one_piece_lines_are_not_copied() {
    let input = Bytes::from(tframe(1, 1, "zero copy\n"));
    let mut d = Decoder::new(false, 0);
    let mut lines = Vec::new();
    d.feed(input.clone(), &mut lines).unwrap();
    assert_eq!(lines, [out_line(1, "zero copy")]);
    let inside = input.as_ptr_range();
    assert!(
        inside.contains(&lines[0].line.as_ptr()),
        "the line is a slice of the input"
    );
}

#[test]
fn long_lines_split_by_docker_are_joined() {
    // Docker cuts lines at 16 KiB: every part but the last lacks the `\n`, all share the
    // timestamp.
    let long = "x".repeat(16 * 1024);
    let mut input = tframe(1, 7, &long);
    input.extend(tframe(2, 8, "stderr in between\n"));
    input.extend(tframe(1, 7, &long));
    input.extend(tframe(1, 7, "end\n"));
    input.extend(tframe(1, 9, "next\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(
        got.lines,
        [
            err_line(8, "stderr in between"),
            out_line(7, &format!("{long}{long}end")),
            out_line(9, "next"),
        ]
    );
}

#[test]
fn a_new_timestamp_ends_the_joined_line() {
    let mut input = tframe(1, 1, "partial");
    input.extend(tframe(1, 2, "other event\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(
        got.lines,
        [out_line(1, "partial"), out_line(2, "other event")]
    );
}

#[test]
fn trailing_cr_lf_of_every_frame_is_removed() {
    // As Promtail trims each frame, a part ending in `\r` loses it even mid-line.
    let mut input = tframe(1, 1, "a\r");
    input.extend(tframe(1, 1, "b\r\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(got.lines, [out_line(1, "ab")]);
}

#[test]
fn too_long_lines_are_cut_at_the_frame_that_crosses_the_limit() {
    let part = "y".repeat(40);
    let mut input = Vec::new();
    for _ in 0..4 {
        input.extend(tframe(1, 1, &part));
    }
    input.extend(tframe(1, 1, "tail\n"));
    input.extend(tframe(1, 2, "fits\n"));
    // A one-frame line longer than the limit is not cut.
    let big = "z".repeat(250);
    input.extend(tframe(1, 3, &format!("{big}\n")));
    let got = decode_checked(false, 100, &input);
    assert_eq!(
        got.lines,
        [
            // 40 + 40 + 40 > 100: emitted with the third part; the rest up to `\n` is dropped.
            out_line(1, &part.repeat(3)),
            out_line(2, "fits"),
            out_line(3, &big),
        ]
    );
}

#[test]
fn discarding_stops_at_a_new_timestamp() {
    let part = "y".repeat(60);
    let mut input = tframe(1, 1, &part);
    input.extend(tframe(1, 1, &part));
    input.extend(tframe(1, 1, &part));
    // No `\n` came for the long line, but another event starts.
    input.extend(tframe(1, 2, "new\n"));
    let got = decode_checked(false, 100, &input);
    assert_eq!(
        got.lines,
        [out_line(1, &part.repeat(2)), out_line(2, "new")]
    );
}

#[test]
fn the_default_limit_is_256_kib() {
    let part = "p".repeat(16 * 1024);
    let mut input = Vec::new();
    for _ in 0..20 {
        input.extend(tframe(1, 1, &part));
    }
    input.extend(tframe(1, 1, "\n"));
    let got = decode(false, 0, &input);
    assert_eq!(got.lines.len(), 1);
    // 17 parts are 272 KiB > 256 KiB: emitted there.
    assert_eq!(got.lines[0].line.len(), 17 * 16 * 1024);
}

#[test]
fn frames_without_timestamp_are_skipped_and_counted() {
    let mut input = frame(1, b"no timestamp here\n");
    input.extend(frame(1, b"nospace"));
    input.extend(frame(1, b""));
    input.extend(frame(2, b"2024-13-01T00:00:00Z bad month\n"));
    input.extend(frame(1, &[b'9'; 200]));
    input.extend(tframe(1, 1, "fine\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(got.lines, [out_line(1, "fine")]);
    assert_eq!(got.parse_errors, 5);
}

#[test]
fn a_frame_without_timestamp_continues_a_joined_line_whole() {
    let mut input = tframe(1, 1, "start ");
    input.extend(frame(1, b"middle without stamp "));
    input.extend(frame(1, b"end\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(got.lines, [out_line(1, "start middle without stamp end")]);
    assert_eq!(got.parse_errors, 0);
}

#[test]
fn daemon_errors_end_the_stream() {
    let mut input = tframe(1, 1, "before\n");
    input.extend(frame(3, b"container gone"));
    input.extend(tframe(1, 2, "after\n"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(got.lines, [out_line(1, "before")]);
    assert_eq!(
        got.error,
        Some(FrameError::Daemon("container gone".to_owned()))
    );
    assert_eq!(
        got.error.map(|e| e.to_string()).unwrap_or_default(),
        "error from the Docker daemon in the log stream: container gone"
    );
}

#[test]
fn unknown_stream_types_end_the_stream() {
    let mut input = tframe(1, 1, "before\n");
    input.extend(frame(7, b"???"));
    let got = decode_checked(false, 0, &input);
    assert_eq!(got.lines, [out_line(1, "before")]);
    assert_eq!(got.error, Some(FrameError::UnknownStream(7)));
}

#[test]
fn the_end_emits_a_joined_line_and_drops_a_cut_frame() {
    let mut input = tframe(1, 1, "unterminated");
    input.extend(tframe(2, 2, "stderr too"));
    // Without `finish` both wait for the rest of their line.
    let pending = decode_pieces(false, 0, &[&input], false);
    assert!(pending.lines.is_empty());
    let cut = tframe(1, 3, "cut short\n");
    input.extend(&cut[..cut.len() - 4]);
    let got = decode_checked(false, 0, &input);
    // The cut frame's new timestamp emits the stdout line at once; `finish` the stderr one.
    assert_eq!(
        got.lines,
        [out_line(1, "unterminated"), err_line(2, "stderr too")]
    );
}

#[test]
fn tty_streams_are_cut_at_newlines() {
    let input = format!("{} first\n{} second\r\n{} third\n", ts(1), ts(2), ts(3));
    let got = decode_checked(true, 0, input.as_bytes());
    assert_eq!(
        got.lines,
        [
            out_line(1, "first"),
            out_line(2, "second"),
            out_line(3, "third")
        ]
    );
}

#[test]
fn tty_long_lines_are_cut_where_docker_cut_them_and_joined() {
    // Docker writes a long TTY line as 16 KiB messages, each with its own timestamp: a
    // timestamp and its space are 31 bytes, so every message is one 16 415-byte frame.
    let long = "t".repeat(16 * 1024);
    let input = format!("{} {long}{} {long}{} end\n", ts(5), ts(5), ts(5));
    let got = decode_checked(true, 0, input.as_bytes());
    assert_eq!(got.lines, [out_line(5, &format!("{long}{long}end"))]);
    assert_eq!(got.parse_errors, 0);
}

#[test]
fn tty_output_without_newline_is_emitted_at_the_end() {
    let input = format!("{} line\n{} prompt> ", ts(1), ts(2));
    let got = decode_checked(true, 0, input.as_bytes());
    assert_eq!(got.lines, [out_line(1, "line"), out_line(2, "prompt> ")]);
    // A TTY frame without a timestamp at the start counts as a parsing error.
    let got = decode_checked(true, 0, b"no stamp\n");
    assert!(got.lines.is_empty());
    assert_eq!(got.parse_errors, 1);
}

#[test]
fn memory_stays_bounded_on_a_huge_frame() {
    let mut d = Decoder::new(false, 1024);
    let mut lines = Vec::new();
    // A header announcing almost 4 GiB, then a timestamp and 8 MiB without a newline.
    let mut head = vec![1, 0, 0, 0];
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    head.extend_from_slice(format!("{} ", ts(1)).as_bytes());
    d.feed(Bytes::from(head), &mut lines).unwrap();
    let chunk = Bytes::from(vec![b'm'; 64 * 1024]);
    for _ in 0..128 {
        d.feed(chunk.clone(), &mut lines).unwrap();
    }
    assert!(lines.is_empty());
    assert!(
        d.stdout.acc.len() <= 1024 + FRAME_SLACK,
        "held {} bytes",
        d.stdout.acc.len()
    );
    d.finish(&mut lines);
    assert_eq!(lines.len(), 0, "a frame cut short by the end is dropped");
}

#[test]
fn tty_without_newlines_stays_bounded() {
    let mut d = Decoder::new(true, 1000);
    let mut lines = Vec::new();
    let mut data = format!("{} ", ts(1)).into_bytes();
    data.extend(vec![b'r'; 4 * 1024 * 1024]);
    d.feed(Bytes::from(data), &mut lines).unwrap();
    // The first frame (16 415 bytes) crosses the limit and is emitted; the following ones have
    // no timestamp and are counted, as in Promtail.
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].line.len(), TTY_FRAME_MAX - 31);
    assert!(d.stdout.acc.capacity() <= 1000 + FRAME_SLACK + TTY_FRAME_MAX);
    assert!(d.take_parse_errors() > 200);
}

fn arbitrary_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (0u8..3, 0u32..4, "[a-c \r\n]{0,40}").prop_map(|(s, t, text)| tframe(s, t, &text)),
        (0u8..3, "[a-c \r\n]{0,40}").prop_map(|(s, text)| frame(s, text.as_bytes())),
        (0u8..3, 0u32..2, 0usize..300).prop_map(|(s, t, n)| tframe(s, t, &"L".repeat(n))),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_split_gives_the_same_result(
        input in arbitrary_stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        tty in any::<bool>(),
        max in prop_oneof![Just(0usize), 1usize..200],
    ) {
        let whole = decode(tty, max, &input);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for c in at {
            pieces.push(&input[prev..c]);
            prev = c;
        }
        pieces.push(&input[prev..]);
        let split = decode_pieces(tty, max, &pieces, true);
        prop_assert_eq!(whole.lines, split.lines);
        prop_assert_eq!(whole.error, split.error);
        prop_assert_eq!(whole.parse_errors, split.parse_errors);
    }
}
