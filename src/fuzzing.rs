//! Fuzzing entry points: one function per cargo-fuzz target in `fuzz/fuzz_targets/`, also fed
//! every saved input under `fuzz/regressions/<target>/` by `tests/fuzz_regressions.rs`.
//!
//! Responsibility: drive the code that reads untrusted or user-written input exactly as
//! production does (the same parse, validate and build functions, the same pipeline), from an
//! arbitrary byte string.
//!
//! Invariants:
//! - a function here never panics on any input: errors of the code under test are returned and
//!   ignored. A panic is a bug of ferrotail (DESIGN.md contract 5), not of the harness;
//! - where a module documents a round trip (a duration prints to text that parses back to the
//!   same value, a positions file we write reads back to the map we wrote), the function
//!   asserts it, so a broken promise shows up as a crash too;
//! - an input replays the same way everywhere: the harness reads neither the environment nor the
//!   file system, and the clock only as the base of the instants it injects into flushes (only
//!   their differences matter). The one outside input left is the machine's time zone, which the
//!   `timestamp` stage inside `docker` and `cri` reads at build time as in production; the
//!   `timestamp` target passes its zones explicitly.
//!
//! Not a stable API: hidden from the docs, only for the fuzz crate and its regression test.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_yaml::Value;

use crate::ack::Tracker;
use crate::config::Config;
use crate::entry::{Ack, Entry, LabelSet, Timestamp};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pipeline::gotemplate::funcs::quote_meta;
use crate::pipeline::gotime::{GoLayout, Zone};
use crate::pipeline::re2;
use crate::pipeline::stages::selector::Selector;
use crate::pipeline::stages::timestamp::TimeParser;
use crate::positions::Positions;
use crate::positions::file::decode_positions;
use crate::positions::yaml::{parse_positions, parse_sidecar, render_positions, render_sidecar};
use crate::units::yaml_depth::check_flow_depth;
use crate::units::{ByteSize, GoDuration, PromDuration};

/// The input as text, or `None` when it is not UTF-8 (every text entry point refuses that
/// before parsing, as `config::load` and `Positions::open` do).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `-config.file`: parse and validate the YAML text as `config::load` does with
/// `-config.expand-env` off, print it masked (`-print-config-stderr`), and, when it is valid,
/// build every job's pipeline as `app::run` does at start.
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    assert_depth_guard_refuses_only_what_serde_yaml_refuses(text);
    let Ok(cfg) = Config::parse_str(text, "fuzz.yaml") else {
        return;
    };
    let valid = crate::settings::check(&cfg).is_ok();
    let _ = cfg.to_yaml_masked();
    if valid {
        let metrics = Arc::new(Metrics::new());
        for (i, sc) in cfg.scrape_configs.iter().enumerate() {
            let path = format!("scrape_configs[{i}].pipeline_stages");
            let _ = Pipeline::new(
                &sc.job_name,
                &sc.pipeline_stages,
                &path,
                Arc::clone(&metrics),
            );
        }
    }
}

/// The guard run before serde_yaml ([`check_flow_depth`]) must never refuse a text serde_yaml
/// accepts. Checked up to libFuzzer's default input size: beyond, what the guard refuses is
/// exactly what serde_yaml takes quadratic time on.
fn assert_depth_guard_refuses_only_what_serde_yaml_refuses(text: &str) {
    if text.len() > 4096 {
        return;
    }
    if let Err(e) = check_flow_depth(text) {
        let parsed = serde_yaml::from_str::<Value>(text);
        assert!(
            parsed.is_err(),
            "the depth guard refused YAML that parses: {e}"
        );
    }
}

/// The positions file reader (`Positions::open` without the file I/O), then the writer: what
/// is loaded and written back must read back as the same map, so a rollback to Promtail (or a
/// restart) loses nothing. The same text is also read as an identity sidecar, which must round
/// trip too.
pub fn positions(data: &[u8]) {
    if let Some(text) = text(data) {
        assert_depth_guard_refuses_only_what_serde_yaml_refuses(text);
    }
    if let Ok(values) = decode_positions(data) {
        let loaded = Positions::in_memory();
        loaded.load_values(values, &HashMap::new());
        let snapshot = loaded.snapshot().values;
        let written = render_positions(&snapshot);
        match parse_positions(&written) {
            Ok(read_back) => assert_eq!(read_back, snapshot, "positions file {written:?}"),
            Err(e) => panic!("the positions file we wrote does not parse: {e}\n{written}"),
        }
    }
    let Some(text) = text(data) else { return };
    if let Ok(entries) = parse_sidecar(text) {
        let written = render_sidecar("fuzz.yaml", &entries);
        match parse_sidecar(&written) {
            Ok(read_back) => assert_eq!(read_back, entries, "sidecar {written:?}"),
            Err(e) => panic!("the sidecar we wrote does not parse: {e}\n{written}"),
        }
    }
}

/// Go durations (`sync_period`, `max_wait_time`, ...), Prometheus durations and byte sizes:
/// each value that parses prints to text that parses back to it (`config::types`).
pub fn go_duration(data: &[u8]) {
    let Some(text) = text(data) else { return };
    assert_round_trip(text, GoDuration::parse);
    assert_round_trip(text, PromDuration::parse);
    assert_round_trip(text, ByteSize::parse);
    let _ = crate::pipeline::stages::multiline::parse_stage_duration(text);
}

/// When `text` parses, its printed form parses back to the same value.
fn assert_round_trip<T>(text: &str, parse: fn(&str) -> Result<T, String>)
where
    T: std::fmt::Display + std::fmt::Debug + PartialEq,
{
    if let Ok(v) = parse(text) {
        let printed = v.to_string();
        assert_eq!(parse(&printed), Ok(v), "{text:?} printed as {printed:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline stages
// ---------------------------------------------------------------------------------------------

/// The labels of the stream a fuzzed line belongs to (`b`: the second stream of a sequence).
fn stream(b: bool) -> LabelSet {
    let file = if b {
        "/var/log/b.log"
    } else {
        "/var/log/a.log"
    };
    LabelSet::from_pairs([("job", "fuzz"), ("filename", file)])
}

/// A time inside what every layout and zone can represent (2023-11-14T22:13:20Z).
const READ_TIME: Timestamp = Timestamp(1_700_000_000_000_000_000);

/// Builds a pipeline through [`Pipeline::new`], the builder `app::run` uses. The stages are
/// harness constants (or a fixed shape around fuzzed text): a refusal of a constant is a bug of
/// the harness and panics; `None` is a refusal of fuzzed text.
fn build(stages: &[Value], fuzzed_config: bool) -> Option<Pipeline> {
    match Pipeline::new("fuzz", stages, "pipeline_stages", shared_metrics()) {
        Ok(p) => Some(p),
        Err(_) if fuzzed_config => None,
        Err(e) => panic!("the harness's own pipeline is refused: {e}"),
    }
}

/// One registry for all the fixed pipelines (their metric label sets are bounded), so a run
/// does not register every family again per input.
fn shared_metrics() -> Arc<Metrics> {
    static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();
    Arc::clone(METRICS.get_or_init(|| Arc::new(Metrics::new())))
}

/// Parses a harness constant: a YAML list of stages.
fn stages(yaml: &str) -> Vec<Value> {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("harness YAML {yaml:?}: {e}"))
}

/// Runs `line` through the pipeline of `stages` (see [`build`]), as the tailer hands over one
/// line, then flushes it as at the end of a file.
fn run_line(stages: &[Value], fuzzed_config: bool, line: &[u8]) {
    if let Some(mut p) = build(stages, fuzzed_config) {
        process_line(&mut p, line);
    }
}

fn process_line(p: &mut Pipeline, line: &[u8]) {
    let entry = Entry::new(
        stream(false),
        READ_TIME,
        Bytes::copy_from_slice(line),
        Ack::none(),
    );
    let mut out = Vec::new();
    p.process(entry, &mut out);
    p.flush_all(&mut out);
}

/// [`run_line`] for a pipeline of stages that keep no state between lines (`json`, `regex`,
/// `logfmt`, `labels`, `output`): it is built once per configuration and reused, as in
/// production, so the fuzzer's time goes to the lines rather than to compiling expressions.
fn run_line_stateless(yaml: &'static str, line: &[u8]) {
    thread_local! {
        static BUILT: RefCell<HashMap<&'static str, Pipeline>> = RefCell::new(HashMap::new());
    }
    BUILT.with_borrow_mut(|built| {
        if let Some(p) = built.get_mut(yaml) {
            return process_line(p, line);
        }
        if let Some(mut p) = build(&stages(yaml), false) {
            process_line(&mut p, line);
            built.insert(yaml, p);
        }
    });
}

/// The first byte picks one of `configs`, the rest is the line.
fn pick<'a>(data: &'a [u8], configs: &[&'static str]) -> Option<(&'static str, &'a [u8])> {
    let (&first, line) = data.split_first()?;
    Some((configs[usize::from(first) % configs.len()], line))
}

/// `json` (both the streamed simple-path extractor and the JMESPath DOM path, the line or an
/// extracted source, `drop_malformed`), then `labels` and `output` on what it extracted.
pub fn json(data: &[u8]) {
    const CONFIGS: &[&str] = &[
        r#"[{json: {expressions: {level: , user: data.user.name, stream: '"grpc.stream"'}}},
            {labels: {level: }}, {output: {source: user}}]"#,
        r#"[{json: {expressions: {first: 'items[0].name', n: 'length(items)', keys: 'keys(@)',
            all: '*'}}}, {output: {source: first}}]"#,
        r#"[{json: {expressions: {msg: , inner: nested}, drop_malformed: true}},
            {json: {expressions: {x: x, y: 'a.b'}, source: inner}}, {labels: {x: }}]"#,
        r#"[{json: {expressions: {t: time, l: log}}}, {output: {source: l}}]"#,
    ];
    if let Some((yaml, line)) = pick(data, CONFIGS) {
        run_line_stateless(yaml, line);
    }
}

/// `regex` on the line and on an extracted value, with a few Go patterns.
pub fn regex(data: &[u8]) {
    const CONFIGS: &[&str] = &[
        r#"[{regex: {expression: '^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]*)\] "(?P<method>\w+) (?P<path>[^ "]*)[^"]*" (?P<status>\d{3}) (?P<size>\d+|-)'}},
            {labels: {method: , status: }}]"#,
        r#"[{regex: {expression: '(?s)^(?P<level>[A-Z]+)\s+(?P<rest>.*)$'}},
            {regex: {expression: '(?P<k>\w+)=(?P<v>"[^"]*"|\S*)', source: rest}}, {output: {source: v}}]"#,
        r#"[{regex: {expression: '(?P<a>\p{L}+)|(?P<b>[\d\x{2028}]+)|(?P<c>\Q.*\E)'}}]"#,
    ];
    if let Some((yaml, line)) = pick(data, CONFIGS) {
        run_line_stateless(yaml, line);
    }
}

/// `logfmt` on the line and on an extracted value.
pub fn logfmt(data: &[u8]) {
    const CONFIGS: &[&str] = &[
        r#"[{logfmt: {mapping: {level: , msg: message, ts: }}}, {labels: {level: }},
            {output: {source: msg}}]"#,
        r#"[{logfmt: {mapping: {inner: }}}, {logfmt: {mapping: {a: , b: a}, source: inner}}]"#,
    ];
    if let Some((yaml, line)) = pick(data, CONFIGS) {
        run_line_stateless(yaml, line);
    }
}

/// `docker` (Docker's json-file lines).
pub fn docker(data: &[u8]) {
    run_line(&stages("[{docker: {}}]"), false, data);
}

/// Splits `data` into the line sequence of the buffering targets: one line per `\n`, where a
/// line starting with 0x01 is a flush tick (a second later than the last), 0x02 releases stream
/// `a` (its file was closed), and 0x03 puts the rest of the line in stream `b` instead of `a`.
/// Each line is its own read chunk; at the end everything is flushed and every chunk must be
/// acknowledged (nothing held for ever, nothing lost: DESIGN.md contract 2). Returns the lines
/// that came out, per stream, in order.
fn run_sequence(p: &mut Pipeline, data: &[u8]) -> [Vec<Bytes>; 2] {
    let tracker = Tracker::new(0);
    let base = Instant::now();
    let mut ticks = 0u64;
    let mut out = Vec::new();
    let mut shipped: [Vec<Bytes>; 2] = [Vec::new(), Vec::new()];
    let mut chunks = 0u64;
    let mut ship = |out: &mut Vec<Entry>| {
        for e in out.drain(..) {
            let b = e.labels.get("filename") == Some("/var/log/b.log");
            shipped[usize::from(b)].push(e.line.clone());
        }
    };
    for line in data.split(|&b| b == b'\n') {
        match line.first() {
            Some(1) => {
                ticks += 1;
                p.flush(base + Duration::from_secs(ticks), &mut out);
            }
            Some(2) => p.flush_stream(&stream(false), &mut out),
            _ => {
                let (b, text) = match line.split_first() {
                    Some((3, rest)) => (true, rest),
                    _ => (false, line),
                };
                chunks += 1;
                let entry = Entry::new(
                    stream(b),
                    READ_TIME,
                    Bytes::copy_from_slice(text),
                    tracker.chunk(chunks, None),
                );
                p.process(entry, &mut out);
            }
        }
        ship(&mut out);
    }
    p.flush_all(&mut out);
    ship(&mut out);
    assert_eq!(
        tracker.committed(),
        chunks,
        "every line must be acknowledged once the pipeline is flushed and its output shipped"
    );
    shipped
}

/// The lines of stream `b` (or `a`) in the sequence format of [`run_sequence`].
fn stream_lines(data: &[u8], b: bool) -> Vec<&[u8]> {
    data.split(|&c| c == b'\n')
        .filter_map(|line| match line.split_first() {
            Some((1 | 2, _)) => None,
            Some((3, rest)) => b.then_some(rest),
            _ => (!b).then_some(line),
        })
        .collect()
}

/// `multiline` over a line sequence of two streams (first byte: `max_lines` 0–4, then the
/// sequence, see [`run_sequence`]). Besides acknowledgements, a block is its lines joined with
/// `\n` and lines never change order within a stream, so each stream's shipped lines joined with
/// `\n` must equal its input lines joined with `\n`.
pub fn multiline(data: &[u8]) {
    let Some((&first, seq)) = data.split_first() else {
        return;
    };
    let yaml = format!(
        r#"[{{multiline: {{firstline: '^\[\d', max_wait_time: 1500ms, max_lines: {}}}}}]"#,
        first % 5
    );
    let Some(mut p) = build(&stages(&yaml), false) else {
        return;
    };
    let shipped = run_sequence(&mut p, seq);
    for (i, b) in [false, true].into_iter().enumerate() {
        let want = stream_lines(seq, b).join(&b'\n');
        let got = shipped[i].join(&b'\n');
        assert!(
            got == want,
            "stream {i}: shipped {:?}, read {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }
}

/// `cri` over a line sequence of two streams (first byte: the options, then the sequence, see
/// [`run_sequence`]): partial lines are held, joined, cut, released on ticks and on file release.
pub fn cri(data: &[u8]) {
    let Some((&first, seq)) = data.split_first() else {
        return;
    };
    let yaml = format!(
        "[{{cri: {{max_partial_lines: {}, max_partial_line_size: {}, \
         max_partial_line_size_truncate: {}}}}}]",
        1 + (first & 3),
        (first >> 2) & 0x1f,
        first & 0x80 != 0,
    );
    if let Some(mut p) = build(&stages(&yaml), false) {
        run_sequence(&mut p, seq);
    }
}

/// Builds a YAML mapping from pairs.
fn mapping<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::String(k.to_owned()), v))
            .collect(),
    )
}

/// Splits at the first 0x00: (text, rest), the text as UTF-8.
fn split_nul(data: &[u8]) -> Option<(&str, &[u8])> {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let rest = data.get(cut + 1..).unwrap_or_default();
    Some((text(&data[..cut])?, rest))
}

/// Go templates: `<template> 0x00 <line>`. The template is parsed by the `template` stage (on an
/// existing and on a new key) and the `replace` stage, exactly as from a config, and executed on
/// the values `logfmt` extracted from the line (`a=...`, `b=...`; `logfmt` rather than `regex`
/// because compiling a regex per input would take most of the fuzzer's time).
pub fn gotemplate(data: &[u8]) {
    let Some((template, line)) = split_nul(data) else {
        return;
    };
    let t = Value::String(template.to_owned());
    let s = |v: &str| Value::String(v.to_owned());
    let stages = vec![
        mapping([(
            "logfmt",
            mapping([("mapping", mapping([("a", Value::Null), ("b", Value::Null)]))]),
        )]),
        mapping([(
            "template",
            mapping([("source", s("a")), ("template", t.clone())]),
        )]),
        mapping([(
            "template",
            mapping([("source", s("new")), ("template", t.clone())]),
        )]),
        mapping([(
            "replace",
            mapping([("expression", s(r"(\w+)(?P<n>\d)?")), ("replace", t)]),
        )]),
        mapping([("output", mapping([("source", s("new"))]))]),
    ];
    run_line(&stages, true, line);
}

/// The LogQL selector of `match`: `<selector> 0x00 <line>`, parsed, then matched against fixed
/// labels and the line.
pub fn selector(data: &[u8]) {
    let Some((text, line)) = split_nul(data) else {
        return;
    };
    if let Ok(sel) = Selector::parse(text) {
        let labels = LabelSet::from_pairs([("app", "nginx"), ("level", "warn"), ("job", "fuzz")]);
        let _ = sel.matches(&labels, line);
        let _ = sel.matches(&LabelSet::new(), line);
    }
}

/// The RE2 → `regex` translation: `<pattern> 0x00 <haystack>`, compiled for text and bytes and
/// run on the haystack. Also checks the translation on a known-good pattern: Go's
/// `regexp.QuoteMeta` of any text is a pattern that matches exactly that text.
pub fn re2(data: &[u8]) {
    let Some((pattern, haystack)) = split_nul(data) else {
        return;
    };
    let _ = re2::translate(pattern);
    if let Ok(re) = re2::compile(pattern)
        && let Ok(h) = std::str::from_utf8(haystack)
    {
        let _ = re.captures(h);
    }
    if let Ok(re) = re2::compile_bytes(pattern) {
        let _ = re.captures_iter(haystack).count();
    }
    let literal = format!("^{}$", quote_meta(pattern));
    match re2::compile(&literal) {
        Ok(re) => assert!(
            re.is_match(pattern),
            "{literal:?} does not match {pattern:?}"
        ),
        // The regex crate's 10 MiB program limit refuses a long enough literal: a refusal, not
        // a mistranslation.
        Err(e) if e.ends_with("exceeds size limit of 10485760 bytes.") => {}
        Err(e) => panic!("Go's QuoteMeta of {pattern:?} is refused: {e}"),
    }
}

/// Go's named layouts and ferrotail's numeric formats, as the `timestamp` stage names them.
const NAMED_FORMATS: &[&str] = &[
    "ANSIC",
    "UnixDate",
    "RubyDate",
    "RFC822",
    "RFC822Z",
    "RFC850",
    "RFC1123",
    "RFC1123Z",
    "RFC3339",
    "RFC3339Nano",
    "Unix",
    "UnixMs",
    "UnixUs",
    "UnixNs",
];

/// Timestamps: `<layout> 0x00 <value>`. The value is parsed with the layout (a Go reference
/// layout, or a named format), as the `timestamp` stage does: without and with a `location`
/// (zones with DST and half-hour offsets), at "now"s around New Year for year-less layouts; and
/// with every named format.
pub fn timestamp(data: &[u8]) {
    let Some((layout, value)) = split_nul(data) else {
        return;
    };
    let Some(value) = text(value) else { return };
    // 2023-12-31T23:30:00Z and 2024-01-01T00:30:00Z, for the year of year-less layouts.
    const NOWS: [i64; 2] = [1_704_065_400, 1_704_069_000];
    let zones = [None, Some("Europe/Berlin"), Some("Australia/Lord_Howe")];
    for zone in zones {
        let location = zone.and_then(|z| Zone::load(z).ok());
        let local = location.unwrap_or(Zone::Utc);
        let parser = TimeParser::new(layout, &[], location, local);
        for now in NOWS {
            let _ = parser.parse(value, now);
        }
    }
    if let Ok(parsed) = GoLayout::new(layout).parse(value) {
        let _ = parsed.to_unix_nanos(parsed.year, Zone::Utc, Zone::Utc);
    }
    for name in NAMED_FORMATS {
        let _ = TimeParser::new(name, &[], None, Zone::Utc).parse(value, NOWS[0]);
    }
}

/// The Docker log stream decoder (`sources::docker::frames`): the first byte picks the framing
/// (bit 0: TTY) and the line limit (the other bits times 8; 0 is the 256 KiB default), the
/// second the size of the pieces the rest is fed in. Fed whole and fed in pieces, the stream
/// must give the same lines, error and count of skipped frames (the decoder is incremental),
/// and no line may be longer than the limit plus one frame's worth.
pub fn docker_frames(data: &[u8]) {
    use crate::sources::docker::frames::{DEFAULT_MAX_LINE, Decoder, LogLine};

    let [options, piece, stream @ ..] = data else {
        return;
    };
    let tty = options & 1 == 1;
    let max_line = usize::from(options >> 1) * 8;
    let piece = usize::from(*piece % 64) + 1;
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut decoder = Decoder::new(tty, max_line);
        let mut lines: Vec<LogLine> = Vec::new();
        let mut error = None;
        for p in pieces {
            if let Err(e) = decoder.feed(Bytes::copy_from_slice(p), &mut lines) {
                error.get_or_insert(e);
            }
        }
        decoder.finish(&mut lines);
        (lines, error, decoder.take_parse_errors())
    };
    let whole = run(&mut std::iter::once(stream));
    let split = run(&mut stream.chunks(piece));
    assert_eq!(
        whole, split,
        "feeding in pieces of {piece} bytes changed the result"
    );
    let limit = if max_line == 0 {
        DEFAULT_MAX_LINE
    } else {
        max_line
    };
    for l in &whole.0 {
        assert!(
            l.line.len() <= limit + 32 * 1024,
            "a line of {} bytes passed the limit {limit}",
            l.line.len()
        );
    }
}

/// The GELF decoder (`sources::gelf::decode`): the input is a sequence of datagrams, each a
/// 2-byte big-endian length then its bytes, received one second apart (so incomplete
/// messages expire along the way) by a defragmenter with small bounds. Every complete payload
/// is decoded (gzip, zlib or plain). The bounds must hold after every datagram, and a decoded
/// message's line must be JSON that reads back to the same line.
pub fn gelf(data: &[u8]) {
    use crate::sources::gelf::decode::{Defragmenter, Limits, decode_payload, parse_message};

    let limits = Limits {
        max_messages: 4,
        max_bytes: 4096,
        timeout: Duration::from_secs(5),
        max_decompressed: 1 << 20,
    };
    let mut defrag = Defragmenter::new(limits);
    let start = Instant::now();
    let mut rest = data;
    let mut second = 0u64;
    while let [hi, lo, tail @ ..] = rest {
        let n = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        second += 1;
        let now = start + Duration::from_secs(second);
        if let Ok(Some(payload)) = defrag.push(datagram, now)
            && let Ok(m) = decode_payload(&payload, limits.max_decompressed)
        {
            let line = m.to_json();
            let again = parse_message(line.as_bytes())
                .unwrap_or_else(|e| panic!("the line {line:?} does not read back: {e}"));
            assert_eq!(again.to_json(), line, "the line changed on a second pass");
        }
        assert!(defrag.pending_messages() <= limits.max_messages);
        assert!(defrag.pending_bytes() <= limits.max_bytes);
    }
}

/// The Heroku drain body parser (`sources::heroku`): the input up to the first NUL byte is the
/// request's query string, the rest the body; the body's messages are made into entries as
/// the handler does (labels from the fields and the query parameters).
pub fn heroku(data: &[u8]) {
    let Some((query, body)) = split_nul(data) else {
        return;
    };
    crate::sources::heroku::entries_of_body(body, query);
}

/// `push` (`loki_push_api` bodies): the first byte picks how the rest is sent — snappy
/// protobuf or JSON, plain, gzip or deflate, the raw endpoint's text, or a bare label string —
/// and the rest is decoded as the push server decodes it, under a 1 MiB charge cap. Asserts
/// that decompression never holds more than it was charged for and that decoded labels print
/// (Loki's way) to a string that parses back to them.
pub fn push(data: &[u8]) {
    use crate::sources::push::decode::{PushError, decode_push, parse_labels, raw_lines};
    const CAP: usize = 1 << 20;
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let check_labels = |labels: &std::collections::BTreeMap<String, String>| {
        let set = crate::entry::LabelSet::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let key = set.stream_key();
        let back = parse_labels(&key).unwrap_or_else(|e| panic!("{key:?} does not parse: {e}"));
        let want: std::collections::BTreeMap<String, String> = set
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(back, want, "{key:?} parses to other labels");
    };
    let (ct, ce) = match mode % 8 {
        0 => (Some("application/x-protobuf"), None),
        1 => (Some("application/x-protobuf"), Some("gzip")),
        2 => (Some("application/x-protobuf"), Some("deflate")),
        3 => (Some("application/json"), None),
        4 => (Some("application/json"), Some("gzip")),
        5 => (Some("application/json"), Some("deflate")),
        6 => {
            let lines = raw_lines(&body);
            assert!(lines.iter().all(|l| !l.is_empty() && !l.contains(&b'\n')));
            return;
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(&body)
                && let Ok(labels) = parse_labels(text)
            {
                check_labels(&labels);
            }
            return;
        }
    };
    let mut charged = 0usize;
    let mut charge = |n: usize| {
        charged += n;
        if charged > CAP {
            Err(PushError::TooLarge("over the cap".into()))
        } else {
            Ok(())
        }
    };
    if let Ok(d) = decode_push(body, ct, ce, &mut charge) {
        assert!(charged <= CAP, "held {charged} bytes past the cap");
        for s in &d.streams {
            check_labels(&s.labels);
        }
    }
}

/// The syslog framing and parsers (`sources::syslog`): the first byte picks the format (bit
/// 0: RFC 3164) and `max_message_length` (the other bits times 4, plus 1), the second the size
/// of the pieces the rest is fed in. Fed whole and fed in pieces, the stream must give the
/// same frames and error (the framer is incremental), no frame may pass the limit, and every
/// frame goes through the parser of the format (with a fixed clock, so RFC 3164's year
/// replays the same way).
pub fn syslog(data: &[u8]) {
    use crate::sources::syslog::framing::{Frame, Framer};
    use crate::sources::syslog::parse::{parse_rfc3164, parse_rfc5424};

    let [options, piece, stream @ ..] = data else {
        return;
    };
    let rfc3164 = options & 1 == 1;
    let max = usize::from(options >> 1) * 4 + 1;
    let piece = usize::from(*piece % 64) + 1;
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut framer = Framer::new(max);
        let mut frames: Vec<Frame> = Vec::new();
        let mut error = None;
        for p in pieces {
            if let Err(e) = framer.push(p, &mut frames) {
                error = Some(e);
                break;
            }
            assert!(
                framer.buffered() <= max,
                "the framer holds more than {max} bytes"
            );
        }
        if error.is_none()
            && let Err(e) = framer.finish(&mut frames)
        {
            error = Some(e);
        }
        (frames, error)
    };
    let whole = run(&mut std::iter::once(stream));
    let split = run(&mut stream.chunks(piece));
    assert_eq!(
        whole, split,
        "feeding in pieces of {piece} bytes changed the result"
    );
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    for f in &whole.0 {
        assert!(
            f.data.len() <= max,
            "a frame of {} bytes passed {max}",
            f.data.len()
        );
        let parsed = if rfc3164 {
            parse_rfc3164(&f.data, now)
        } else {
            parse_rfc5424(&f.data)
        };
        if let Ok(m) = parsed {
            let _ = (m.severity_keyword(), m.facility_keyword());
            assert!(m.message_start <= f.data.len());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(shipped: &[Bytes]) -> Vec<&str> {
        shipped
            .iter()
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn sequences_ship_blocks_per_stream_and_acknowledge_everything() {
        let mut p = build(
            &stages(r"[{multiline: {firstline: '^\[', max_lines: 0}}]"),
            false,
        )
        .unwrap();
        let shipped = run_sequence(
            &mut p,
            b"x\n[1 a\nb\n\x03[2 c\n\x03d\n\x02\n[3 e\n\x01\n\x01",
        );
        assert_eq!(lines(&shipped[0]), ["x", "[1 a\nb", "[3 e"]);
        assert_eq!(lines(&shipped[1]), ["[2 c\nd"]);
        assert_eq!(stream_lines(b"x\n\x01\n\x03y\n\x02\nz", true), [b"y"]);
        assert_eq!(
            stream_lines(b"x\n\x01\n\x03y\n\x02\nz", false),
            [b"x", b"z"]
        );
    }

    #[test]
    fn split_nul_cuts_at_the_first_zero() {
        assert_eq!(split_nul(b"a\0b\0c"), Some(("a", &b"b\0c"[..])));
        assert_eq!(split_nul(b"abc"), Some(("abc", &b""[..])));
        assert_eq!(split_nul(b"\xff\0x"), None);
    }
}
