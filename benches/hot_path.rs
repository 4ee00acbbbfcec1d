//! Criterion benchmarks of the hot path, one stage at a time:
//! line splitting, the `json`/`regex`/`logfmt` + `labels`, `multiline`, `cri` + `json`,
//! `match` + `drop` and `json` + `template` pipelines, and encoding a push (protobuf + snappy).
//!
//! ```text
//! cargo bench --bench hot_path
//! ```
//! Inputs are generated here (250-byte JSON lines like the end-to-end benchmark's).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use ferrotail::client::proto::{Encoder, EntryAdapter, ProtoTimestamp, PushRequest, StreamAdapter};
use ferrotail::entry::{Ack, Entry, LabelSet, Timestamp};
use ferrotail::metrics::Metrics;
use ferrotail::pipeline::Pipeline;
use ferrotail::tail::LongLineAction;
use ferrotail::tail::line_buffer::LineBuffer;

fn json_line(i: u64) -> String {
    let levels = ["info", "debug", "warn", "error"];
    format!(
        concat!(
            r#"{{"time":"2026-11-20T09:{:02}:{:02}.{:09}Z","level":"{}","msg":"request completed","#,
            r#""method":"GET","path":"/api/v1/orders/{}","status":200,"duration_ms":{},"#,
            r#""user":"user-{}","trace_id":"{:016x}{:016x}"}}"#
        ),
        (i / 60) % 60,
        i % 60,
        i % 1_000_000_000,
        levels[(i % 4) as usize],
        i % 10_000,
        i % 997,
        i % 5_000,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    )
}

/// The same content as [`json_line`], as a logfmt line.
fn logfmt_line(i: u64) -> String {
    let levels = ["info", "debug", "warn", "error"];
    format!(
        concat!(
            r#"time=2026-11-20T09:{:02}:{:02}.{:09}Z level={} msg="request completed" "#,
            r#"method=GET path=/api/v1/orders/{} status=200 duration_ms={} "#,
            r#"user=user-{} trace_id={:016x}{:016x}"#
        ),
        (i / 60) % 60,
        i % 60,
        i % 1_000_000_000,
        levels[(i % 4) as usize],
        i % 10_000,
        i % 997,
        i % 5_000,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    )
}

fn corpus(lines: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        out.extend_from_slice(json_line(i).as_bytes());
        out.push(b'\n');
    }
    out
}

fn line_split(c: &mut Criterion) {
    let data = corpus(40_000);
    let mut g = c.benchmark_group("line_split");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("64KiB_chunks", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            let mut buf = LineBuffer::new(256 * 1024, LongLineAction::Truncate);
            let mut n = 0u64;
            for chunk in data.chunks(64 * 1024) {
                buf.extend(chunk);
                n += buf.split_lines(&mut out, &mut Vec::new()).lines;
                out.clear();
            }
            n
        })
    });
    g.finish();
}

/// Runs 1000 lines made by `make_line` through the pipeline of `yaml`, as benchmark
/// `pipeline/<id>`.
fn bench_pipeline(c: &mut Criterion, id: &str, yaml: &str, make_line: fn(u64) -> String) {
    let lines = (0..1000).map(|i| Bytes::from(make_line(i))).collect();
    bench_pipeline_lines(c, id, yaml, lines);
}

/// Runs `lines` (one stream) through the pipeline of `yaml`, flushing what buffering stages
/// hold at the end of each iteration.
fn bench_pipeline_lines(c: &mut Criterion, name: &str, yaml: &str, lines: Vec<Bytes>) {
    let stages: Vec<serde_yaml::Value> = serde_yaml::from_str(yaml).expect("stage YAML");
    let mut pipeline =
        Pipeline::new("bench", &stages, "bench", Arc::new(Metrics::new())).expect("pipeline");
    let labels = LabelSet::from_pairs([("job", "bench"), ("filename", "/var/log/app.log")]);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(name, |b| {
        let mut out = Vec::with_capacity(lines.len());
        b.iter(|| {
            for l in &lines {
                let e = Entry::new(labels.clone(), Timestamp(0), l.clone(), Ack::none());
                pipeline.process(e, &mut out);
            }
            pipeline.flush_all(&mut out);
            let n = out.len();
            out.clear();
            n
        })
    });
    g.finish();
}

/// `multiline` over 1000 lines: blocks of one log line and a 9-line stack trace.
fn pipeline_multiline(c: &mut Criterion) {
    let lines = (0..1000u64)
        .map(|i| {
            Bytes::from(if i % 10 == 0 {
                format!(
                    "[2026-11-20 09:{:02}:{:02}] ERROR request {i} failed",
                    (i / 60) % 60,
                    i % 60
                )
            } else {
                format!(
                    "\tat com.example.Service.method{i}(Service.java:{})",
                    i % 997
                )
            })
        })
        .collect();
    bench_pipeline_lines(
        c,
        "multiline_1000_lines",
        "- multiline:\n    firstline: '^\\[\\d{4}-\\d{2}-\\d{2}'\n",
        lines,
    );
}

/// `cri` + `json` + `labels` over 1000 CRI lines holding JSON (every 50th line split in two
/// partial fragments).
fn pipeline_cri_json(c: &mut Criterion) {
    let lines = (0..1000u64)
        .map(|i| {
            let time = format!("2026-11-20T09:{:02}:{:02}.{:09}Z", (i / 60) % 60, i % 60, i);
            let json = json_line(i);
            Bytes::from(if i % 50 == 0 {
                let (a, b) = json.split_at(json.len() / 2);
                format!("{time} stdout P {a}\n{time} stdout F {b}")
            } else {
                format!("{time} stdout F {json}")
            })
        })
        .flat_map(|l: Bytes| {
            l.split(|&b| b == b'\n')
                .map(Bytes::copy_from_slice)
                .collect::<Vec<_>>()
        })
        .collect();
    bench_pipeline_lines(
        c,
        "cri_json_labels_1000_lines",
        "- cri: {}\n- json:\n    expressions: {level: level, status: status}\n- labels:\n    level:\n",
        lines,
    );
}

fn pipeline_json_labels(c: &mut Criterion) {
    bench_pipeline(
        c,
        "json_labels_1000_lines",
        "- json:\n    expressions: {level: level, status: status}\n- labels:\n    level:\n",
        json_line,
    );
}

/// The `match` + `drop` filters on JSON lines: the debug lines about orders are dropped by a
/// `match` selector, a `drop` regex on the line checks the rest.
fn pipeline_match_drop(c: &mut Criterion) {
    bench_pipeline(
        c,
        "match_drop_1000_lines",
        concat!(
            "- json:\n    expressions: {level: level}\n- labels:\n    level:\n",
            "- match:\n    selector: '{level=\"debug\"} |= \"orders\"'\n    action: drop\n",
            "- drop:\n    expression: '\"status\":5[0-9][0-9]'\n",
        ),
        json_line,
    );
}

fn pipeline_regex_labels(c: &mut Criterion) {
    bench_pipeline(
        c,
        "regex_labels_1000_lines",
        "- regex:\n    expression: '^time=(?P<time>\\S+) level=(?P<level>\\w+) msg=\"(?P<msg>[^\"]*)\".* status=(?P<status>\\d+)'\n- labels:\n    level:\n",
        logfmt_line,
    );
}

fn pipeline_logfmt_labels(c: &mut Criterion) {
    bench_pipeline(
        c,
        "logfmt_labels_1000_lines",
        "- logfmt:\n    mapping: {level: , status: }\n- labels:\n    level:\n",
        logfmt_line,
    );
}

/// `json` + `template` + `output` on JSON lines: the line becomes `LEVEL: message`.
fn pipeline_template(c: &mut Criterion) {
    bench_pipeline(
        c,
        "json_template_output_1000_lines",
        concat!(
            "- json:\n    expressions: {level: level, msg: msg}\n",
            "- template:\n    source: out\n    template: '{{ ToUpper .level }}: {{ .msg }}'\n",
            "- output:\n    source: out\n",
        ),
        json_line,
    );
}

fn encode(c: &mut Criterion) {
    // One 1 MiB batch: 4 streams of ~1,050 entries of ~250 bytes.
    let streams: Vec<StreamAdapter> = (0..4)
        .map(|s| StreamAdapter {
            labels: format!(r#"{{filename="/var/log/app.log", job="bench", level="l{s}"}}"#),
            entries: (0..1050)
                .map(|i| EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_795_166_102 + i,
                        nanos: (i as i32) * 1000,
                    }),
                    line: Bytes::from(json_line(i as u64 * 4 + s)),
                    structured_metadata: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let req = PushRequest { streams };
    let raw: u64 = req
        .streams
        .iter()
        .flat_map(|s| s.entries.iter())
        .map(|e| e.line.len() as u64)
        .sum();
    let mut encoder = Encoder::new();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(raw));
    g.bench_function("protobuf_snappy_1MiB_batch", |b| {
        b.iter(|| encoder.encode(&req).expect("encode").len())
    });
    g.finish();
}

criterion_group!(
    benches,
    line_split,
    pipeline_json_labels,
    pipeline_multiline,
    pipeline_cri_json,
    pipeline_match_drop,
    pipeline_regex_labels,
    pipeline_logfmt_labels,
    pipeline_template,
    encode
);
criterion_main!(benches);
