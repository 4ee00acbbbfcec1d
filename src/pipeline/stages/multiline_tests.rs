//! Tests of the `multiline` stage: Promtail's documented examples, its stage tests, and the
//! edge cases of spec §7.2 (timeouts use injected instants).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ack::Tracker;
use crate::entry::{Entry, LabelSet, Timestamp};
use crate::pipeline::Pipeline;
use crate::pipeline::stages::testutil::*;

const FLASK: &str = r#"[2020-12-03 11:36:20] "GET /hello HTTP/1.1" 200 -
[2020-12-03 11:36:23] ERROR in app: Exception on /error [GET]
Traceback (most recent call last):
  File "/home/pallets/.pyenv/versions/3.8.5/lib/python3.8/site-packages/flask/app.py", line 2447, in wsgi_app
    response = self.full_dispatch_request()
Exception: Sorry, this route always breaks
[2020-12-03 11:36:23] "GET /error HTTP/1.1" 500 -
[2020-12-03 11:36:26] "GET /hello HTTP/1.1" 200 -
[2020-12-03 11:36:27] "GET /hello HTTP/1.1" 200 -"#;

const FLASK_STAGE: &str = r#"
- multiline:
    firstline: '^\[\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}:\d{2}\]'
    max_wait_time: 3s
"#;

/// Feeds `lines` of stream `labels` (timestamps 1, 2, 3, ... s) and returns what came out.
fn feed(p: &mut Pipeline, labels: &[(&str, &str)], lines: &[&str]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut e = entry_with(labels, Bytes::copy_from_slice(l.as_bytes()));
        e.timestamp = Timestamp((i as i64 + 1) * 1_000_000_000);
        p.process(e, &mut out);
    }
    out
}

fn flush_all(p: &mut Pipeline) -> Vec<Entry> {
    let mut out = Vec::new();
    p.flush_all(&mut out);
    out
}

fn lines(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(line).collect()
}

#[test]
fn documented_flask_example() {
    let mut p = pipeline(FLASK_STAGE);
    let input: Vec<&str> = FLASK.lines().collect();
    let mut out = feed(&mut p, &[("job", "flask")], &input);
    // The last block is held until the end of input.
    assert_eq!(out.len(), 4);
    out.extend(flush_all(&mut p));
    assert_eq!(
        lines(&out),
        vec![
            r#"[2020-12-03 11:36:20] "GET /hello HTTP/1.1" 200 -"#,
            concat!(
                "[2020-12-03 11:36:23] ERROR in app: Exception on /error [GET]\n",
                "Traceback (most recent call last):\n",
                r#"  File "/home/pallets/.pyenv/versions/3.8.5/lib/python3.8/site-packages/flask/app.py", line 2447, in wsgi_app"#,
                "\n    response = self.full_dispatch_request()\n",
                "Exception: Sorry, this route always breaks"
            ),
            r#"[2020-12-03 11:36:23] "GET /error HTTP/1.1" 500 -"#,
            r#"[2020-12-03 11:36:26] "GET /hello HTTP/1.1" 200 -"#,
            r#"[2020-12-03 11:36:27] "GET /hello HTTP/1.1" 200 -"#,
        ]
    );
    // A block has its first line's timestamp and labels.
    assert_eq!(out[1].timestamp, Timestamp(2_000_000_000));
    assert_labels(&out[1], &[("job", "flask")]);
    assert!(out.iter().all(|e| e.structured_metadata.is_empty()));
}

#[test]
fn documented_zero_width_space_example() {
    let mut p = pipeline("- multiline:\n    firstline: '^\\x{200B}\\['\n    max_wait_time: 3s\n");
    let input = [
        "\u{200B}[2021-01-07 14:17:43,494] [DEBUG] [akka.io.TcpListener] - New connection accepted",
        "\u{200B}[2021-01-07 14:17:43,499] [ERROR] [akka.actor.ActorSystemImpl] - Error during processing of request",
        "java.lang.Exception: oh no! oh is unknown",
        "\tat com.grafana.UserRoutes.$anonfun$userRoutes$6(UserRoutes.scala:28)",
        "\tat akka.http.scaladsl.server.Directive$.$anonfun$addByNameNullaryApply$2(Directive.scala:166)",
        "[2021-01-07 14:17:44,000] no zero-width space: a continuation",
    ];
    let mut out = feed(&mut p, &[], &input);
    out.extend(flush_all(&mut p));
    assert_eq!(out.len(), 2);
    assert_eq!(line(&out[0]), input[0]);
    assert_eq!(line(&out[1]), input[1..].join("\n"));
}

#[test]
fn lines_before_the_first_firstline_pass_through() {
    let mut p = pipeline("- multiline:\n    firstline: '^START'\n");
    let out = feed(&mut p, &[], &["a", "b", "START 1", "c"]);
    assert_eq!(lines(&out), vec!["a", "b"]);
    assert_eq!(lines(&flush_all(&mut p)), vec!["START 1\nc"]);
    // The stream now exists: non-first lines are held, not passed through.
    assert!(feed(&mut p, &[], &["d"]).is_empty());
    assert_eq!(lines(&flush_all(&mut p)), vec!["d"]);
}

#[test]
fn block_longer_than_max_lines_is_split() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n    max_lines: 3\n");
    let out = feed(&mut p, &[], &["F1", "a", "b", "c", "d", "F2", "e"]);
    assert_eq!(lines(&out), vec!["F1\na\nb", "c\nd"]);
    // The continuation block reuses the first line's timestamp (Promtail's behaviour).
    assert_eq!(out[0].timestamp, Timestamp(1_000_000_000));
    assert_eq!(out[1].timestamp, Timestamp(1_000_000_000));
    let rest = flush_all(&mut p);
    assert_eq!(lines(&rest), vec!["F2\ne"]);
    assert_eq!(rest[0].timestamp, Timestamp(6_000_000_000));
}

#[test]
fn max_lines_one_and_zero() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n    max_lines: 1\n");
    assert_eq!(
        lines(&feed(&mut p, &[], &["F1", "a", "F2"])),
        vec!["F1", "a", "F2"]
    );
    // 0 means no limit (Promtail compares the count to max_lines after each line).
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n    max_lines: \"0\"\n");
    let many: Vec<String> = (0..300).map(|i| format!("l{i}")).collect();
    let mut input = vec!["F"];
    input.extend(many.iter().map(String::as_str));
    assert!(feed(&mut p, &[], &input).is_empty());
    let out = flush_all(&mut p);
    assert_eq!(out.len(), 1);
    assert_eq!(line(&out[0]).lines().count(), 301);
}

#[test]
fn default_max_lines_is_128() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let mut input = vec!["F"];
    input.extend(std::iter::repeat_n("x", 200));
    let out = feed(&mut p, &[], &input);
    assert_eq!(out.len(), 1);
    assert_eq!(line(&out[0]).lines().count(), 128);
    assert_eq!(line(&flush_all(&mut p)[0]).lines().count(), 73);
}

#[test]
fn idle_block_is_sent_after_max_wait_time() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n    max_wait_time: 3s\n");
    assert!(feed(&mut p, &[], &["F1", "a"]).is_empty());
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.flush(t0, &mut out); // starts the idle timer
    p.flush(t0 + Duration::from_millis(2500), &mut out);
    assert!(out.is_empty());
    // A new line restarts the timer.
    assert!(feed(&mut p, &[], &["b"]).is_empty());
    p.flush(t0 + Duration::from_secs(3), &mut out);
    p.flush(t0 + Duration::from_millis(5500), &mut out);
    assert!(out.is_empty());
    p.flush(t0 + Duration::from_secs(6), &mut out);
    assert_eq!(lines(&out), vec!["F1\na\nb"]);
    // Nothing held any more; later continuation lines form a block with the old first line.
    out.clear();
    p.flush(t0 + Duration::from_secs(20), &mut out);
    assert!(out.is_empty());
    let mut more = feed(&mut p, &[], &["c"]);
    assert!(more.is_empty());
    p.flush(t0 + Duration::from_secs(21), &mut more);
    p.flush(t0 + Duration::from_secs(24), &mut more);
    assert_eq!(lines(&more), vec!["c"]);
    assert_eq!(more[0].timestamp, Timestamp(1_000_000_000));
}

#[test]
fn zero_wait_sends_at_the_second_tick() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n    max_wait_time: 0s\n");
    assert!(feed(&mut p, &[], &["F1", "a"]).is_empty());
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.flush(t0, &mut out);
    p.flush(t0, &mut out);
    assert_eq!(lines(&out), vec!["F1\na"]);
}

#[test]
fn streams_are_kept_apart() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let a: &[(&str, &str)] = &[("filename", "a.log")];
    let b: &[(&str, &str)] = &[("filename", "b.log")];
    let mut out = Vec::new();
    out.extend(feed(&mut p, a, &["F a1"]));
    out.extend(feed(&mut p, b, &["F b1"]));
    out.extend(feed(&mut p, a, &["a cont"]));
    out.extend(feed(&mut p, b, &["b cont"]));
    out.extend(feed(&mut p, a, &["F a2"]));
    assert_eq!(lines(&out), vec!["F a1\na cont"]);
    assert_eq!(out[0].labels.get("filename"), Some("a.log"));
    let mut rest = flush_all(&mut p);
    rest.sort_by(|x, y| x.line.cmp(&y.line));
    assert_eq!(lines(&rest), vec!["F a2", "F b1\nb cont"]);
}

#[test]
fn releasing_one_stream_sends_only_its_block() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let a: &[(&str, &str)] = &[("filename", "a.log")];
    let b: &[(&str, &str)] = &[("filename", "b.log")];
    assert!(feed(&mut p, a, &["F a", "a2"]).is_empty());
    assert!(feed(&mut p, b, &["F b", "b2"]).is_empty());
    let mut out = Vec::new();
    p.flush_stream(&LabelSet::from_pairs(a.iter().copied()), &mut out);
    assert_eq!(lines(&out), vec!["F a\na2"]);
    // The released stream's state is gone: its next lines pass through until a first line.
    assert_eq!(lines(&feed(&mut p, a, &["late"])), vec!["late"]);
    assert_eq!(lines(&flush_all(&mut p)), vec!["F b\nb2"]);
}

#[test]
fn release_uses_the_initial_labels_even_when_a_stage_changed_them() {
    let mut p = pipeline(
        "- static_labels: {stream: stdout}\n- multiline:\n    firstline: '^F'\n- labeldrop: [stream]\n",
    );
    let a: &[(&str, &str)] = &[("filename", "a.log")];
    assert!(feed(&mut p, a, &["F a", "a2"]).is_empty());
    let mut out = Vec::new();
    p.flush_stream(&LabelSet::from_pairs([("filename", "other.log")]), &mut out);
    assert!(out.is_empty());
    p.flush_stream(&LabelSet::from_pairs(a.iter().copied()), &mut out);
    assert_eq!(lines(&out), vec!["F a\na2"]);
    assert_labels(&out[0], a);
}

#[test]
fn crlf_lines_keep_their_carriage_returns() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    assert!(feed(&mut p, &[], &["F1\r", "a\r", "b"]).is_empty());
    assert_eq!(lines(&flush_all(&mut p)), vec!["F1\r\na\r\nb"]);
}

#[test]
fn firstline_labels_timestamp_and_extracted_win() {
    let mut p = pipeline(
        "- json: {expressions: {level: level}}\n- multiline:\n    firstline: '^\\{'\n- labels: {level: }\n",
    );
    let mut out = feed(
        &mut p,
        &[("job", "j")],
        &[r#"{"level":"error"}"#, "  at x", r#"{"level":"info"}"#],
    );
    out.extend(flush_all(&mut p));
    assert_eq!(out.len(), 2);
    assert_eq!(line(&out[0]), "{\"level\":\"error\"}\n  at x");
    assert_labels(&out[0], &[("job", "j"), ("level", "error")]);
    assert_labels(&out[1], &[("job", "j"), ("level", "info")]);
    assert_eq!(out[1].timestamp, Timestamp(3_000_000_000));
}

#[test]
fn structured_metadata_before_the_stage_is_dropped() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let mut e = entry_with(&[], Bytes::from_static(b"F"));
    e.structured_metadata.push(("trace_id".into(), "1".into()));
    let mut out = Vec::new();
    p.process(e, &mut out);
    p.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].structured_metadata.is_empty());
}

#[test]
fn block_is_acknowledged_only_when_all_its_lines_are() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let t = Tracker::new(0);
    let labels = LabelSet::from_pairs([("filename", "a.log")]);
    let mut out = Vec::new();
    // Chunk 1: a complete block and the start of the next one; chunk 2: its continuation.
    let c1 = t.chunk(10, None);
    for l in ["F1", "x", "F2"] {
        let e = Entry::new(labels.clone(), READ_TIME, Bytes::from(l), c1.clone());
        p.process(e, &mut out);
    }
    drop(c1);
    let c2 = t.chunk(20, None);
    p.process(
        Entry::new(labels.clone(), READ_TIME, Bytes::from("y"), c2.clone()),
        &mut out,
    );
    drop(c2);
    assert_eq!(lines(&out), vec!["F1\nx"]);
    out.clear(); // delivered
    assert_eq!(t.committed(), 0, "F2 of chunk 1 is still held");
    p.flush_stream(&labels, &mut out);
    assert_eq!(lines(&out), vec!["F2\ny"]);
    assert_eq!(t.committed(), 0);
    out.clear();
    assert_eq!(t.committed(), 20);
}

#[test]
fn invalid_utf8_lines_are_joined_as_bytes() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let mut out = Vec::new();
    for l in [&b"F\xff"[..], b"\xfe\xfd", b"F"] {
        p.process(entry_with(&[], Bytes::copy_from_slice(l)), &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].line[..], b"F\xff\n\xfe\xfd");
}

#[test]
fn weak_decoding_of_options() {
    let mut p = pipeline("- multiline:\n    firstline: 12\n    max_lines: '2'\n");
    assert_eq!(
        lines(&feed(&mut p, &[], &["12a", "b", "c"])),
        vec!["12a\nb"]
    );
}

#[test]
fn config_errors() {
    for body in [
        "- multiline:",
        "- multiline: {}",
        "- multiline: {max_lines: 3}",
    ] {
        assert_eq!(
            pipeline_err(body),
            "p[0].multiline: invalid multiline stage config: multiline stage config must define `firstline` regular expression"
        );
    }
    let err = pipeline_err("- multiline: {firstline: '(?P<x'}");
    assert!(
        err.starts_with(
            "p[0].multiline: invalid multiline stage config: multiline stage first line regex compilation error: "
        ),
        "{err}"
    );
    assert_eq!(
        pipeline_err("- multiline: {firstline: x, max_wait_time: 3}"),
        "p[0].multiline: invalid multiline stage config: multiline stage `max_wait_time` parse error: time: missing unit in duration \"3\""
    );
    assert!(
        pipeline_err("- multiline: {firstline: x, max_wait_time: soon}").contains("parse error")
    );
    assert!(pipeline_err("- multiline: {firstline: x, max_lines: -1}").contains("max_lines"));
    assert!(pipeline_err("- multiline: {firstline: x, max_lines: many}").contains("max_lines"));
}

#[test]
fn a_first_line_acknowledges_with_its_own_block() {
    let mut p = pipeline("- multiline:\n    firstline: '^F'\n");
    let t = Tracker::new(0);
    let labels = LabelSet::from_pairs([("filename", "a.log")]);
    let mut out = Vec::new();
    for (l, end) in [("F1", 10), ("F2", 20)] {
        let ack = t.chunk(end, None);
        p.process(
            Entry::new(labels.clone(), READ_TIME, Bytes::from(l), ack),
            &mut out,
        );
    }
    assert_eq!(lines(&out), vec!["F1"]);
    out.clear(); // delivered
    assert_eq!(t.committed(), 10, "F2 (chunk 2) is still held");
    p.flush_all(&mut out);
    out.clear();
    assert_eq!(t.committed(), 20);
}
