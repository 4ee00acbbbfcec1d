//! Tests of the `drop` stage: every criterion alone and combined, Promtail's config errors and
//! the examples of its docs.

use std::sync::Arc;

use bytes::Bytes;

use super::DropStage;
use crate::entry::Timestamp;
use crate::metrics::Metrics;
use crate::pipeline::stage::{Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::testutil::*;

const NS: i64 = 1_000_000_000;

/// Whether `stages` (YAML list) drop `line` with `labels`.
fn dropped(yaml: &str, labels: &[(&str, &str)], line: &str) -> bool {
    let (mut p, metrics) = pipeline_and_metrics(yaml);
    let out = run_entry(
        &mut p,
        entry_with(labels, Bytes::copy_from_slice(line.as_bytes())),
    );
    let total: u64 = metrics
        .logentry_dropped_lines
        .with_label_values(&["drop_stage"])
        .get();
    assert_eq!(out.is_empty(), total == 1, "drop counted once");
    out.is_empty()
}

/// A stage built directly from a body, with a fixed clock.
fn stage(body: &str, now: fn() -> Timestamp) -> (DropStage, Arc<Metrics>) {
    let (cx, metrics) = build_context("drop");
    let body: serde_yaml::Value = serde_yaml::from_str(body).unwrap();
    let mut s = DropStage::build(&body, &cx).unwrap_or_else(|e| panic!("{e:?}"));
    s.now = now;
    (s, metrics)
}

fn is_dropped(s: &mut DropStage, pe: &mut PipelineEntry) -> bool {
    matches!(s.process(pe, &mut Vec::new()), Outcome::Drop(_))
}

/// 2020-08-12T12:00:00Z, the "now" of the docs' example.
fn doc_now() -> Timestamp {
    Timestamp(1_597_233_600 * NS)
}

#[test]
fn longer_than() {
    let yaml = "- drop:\n    longer_than: 10b\n";
    assert!(dropped(yaml, &[], "12345678901"));
    assert!(!dropped(yaml, &[], "1234567890"));
    assert!(!dropped(yaml, &[], "123"));
    // Weakly decoded integer, units in any case.
    assert!(dropped("- drop:\n    longer_than: 3\n", &[], "1234"));
    let one_kb = "x".repeat(1024);
    assert!(!dropped("- drop:\n    longer_than: 1kb\n", &[], &one_kb));
    assert!(dropped(
        "- drop:\n    longer_than: 1Kb\n",
        &[],
        &(one_kb + "x")
    ));
    // Bytes, not characters.
    assert!(dropped("- drop:\n    longer_than: 2\n", &[], "é€"));
}

#[test]
fn older_than() {
    let (mut s, _) = stage("older_than: 24h", doc_now);
    let mut old = PipelineEntry::new(entry_with(&[], Bytes::from_static(b"x")));
    old.entry.timestamp = Timestamp(doc_now().0 - 25 * 3600 * NS);
    assert!(is_dropped(&mut s, &mut old));
    let mut young = PipelineEntry::new(entry_with(&[], Bytes::from_static(b"x")));
    young.entry.timestamp = Timestamp(doc_now().0 - 23 * 3600 * NS);
    assert!(!is_dropped(&mut s, &mut young));
    // Exactly at the limit is not older.
    let mut edge = PipelineEntry::new(entry_with(&[], Bytes::from_static(b"x")));
    edge.entry.timestamp = Timestamp(doc_now().0 - 24 * 3600 * NS);
    assert!(!is_dropped(&mut s, &mut edge));
}

#[test]
fn source_alone_requires_every_key() {
    let yaml = "- drop:\n    source: [level, msg]\n";
    let json = "- json:\n    expressions:\n      level:\n      msg:\n";
    // Both present (json stores null for a missing key, which counts as present).
    assert!(dropped(&format!("{json}{yaml}"), &[], r#"{"level":"x"}"#));
    // Labels seed the extracted map.
    assert!(dropped(yaml, &[("level", "a"), ("msg", "b")], "x"));
    assert!(!dropped(yaml, &[("level", "a")], "x"));
    assert!(!dropped(yaml, &[], "x"));
    assert!(dropped(
        "- drop:\n    source: level\n",
        &[("level", "")],
        "x"
    ));
}

#[test]
fn expression_on_the_line() {
    let yaml = "- drop:\n    expression: \".*debug.*\"\n";
    assert!(dropped(yaml, &[], "this is a debug line"));
    assert!(!dropped(yaml, &[], "this is an info line"));
    // Unanchored.
    assert!(dropped(
        "- drop:\n    expression: debug\n",
        &[],
        "a debug b"
    ));
    // Go's ASCII `\d`.
    assert!(!dropped("- drop:\n    expression: '^\\d+$'\n", &[], "٣"));
}

#[test]
fn expression_on_joined_sources() {
    let yaml = "- drop:\n    source: [a, b]\n    separator: '#'\n    expression: '^x#y$'\n";
    assert!(dropped(yaml, &[("a", "x"), ("b", "y")], "l"));
    assert!(!dropped(yaml, &[("a", "x"), ("b", "z")], "l"));
    // Missing keys are skipped, not joined as empty.
    let yaml = "- drop:\n    source: [a, b]\n    expression: '^y$'\n";
    assert!(dropped(yaml, &[("b", "y")], "l"));
    // No key at all: the empty string is matched.
    assert!(dropped(
        "- drop:\n    source: a\n    expression: '^$'\n",
        &[],
        "l"
    ));
    // Default separator.
    let yaml = "- drop:\n    source: [a, b]\n    expression: '^x;y$'\n";
    assert!(dropped(yaml, &[("a", "x"), ("b", "y")], "l"));
    // Numbers and booleans are stringified; null keeps the entry.
    let yaml = "- json:\n    expressions:\n      n:\n      b:\n      z:\n- drop:\n    source: [n, b]\n    expression: '^1.5;true$'\n";
    assert!(dropped(yaml, &[], r#"{"n":1.50,"b":true}"#));
    let yaml =
        "- json:\n    expressions:\n      z:\n- drop:\n    source: z\n    expression: '.*'\n";
    assert!(!dropped(yaml, &[], r#"{"a":1}"#));
}

#[test]
fn value_is_an_exact_match() {
    let yaml = "- drop:\n    source: level\n    value: error\n";
    assert!(dropped(yaml, &[("level", "error")], "l"));
    assert!(!dropped(yaml, &[("level", "errors")], "l"));
    assert!(!dropped(yaml, &[("level", "an error")], "l"));
    // Regex metacharacters are literal.
    let yaml = "- drop:\n    source: x\n    value: 'a.b'\n";
    assert!(dropped(yaml, &[("x", "a.b")], "l"));
    assert!(!dropped(yaml, &[("x", "axb")], "l"));
    // Weakly decoded: a number is its text.
    let yaml =
        "- json:\n    expressions:\n      status:\n- drop:\n    source: status\n    value: 200\n";
    assert!(dropped(yaml, &[], r#"{"status":200}"#));
    assert!(!dropped(yaml, &[], r#"{"status":404}"#));
    let yaml = "- drop:\n    source: [a, b]\n    separator: '-'\n    value: 'x-y'\n";
    assert!(dropped(yaml, &[("a", "x"), ("b", "y")], "l"));
}

#[test]
fn criteria_are_anded() {
    let yaml = "- drop:\n    expression: debug\n    longer_than: 10\n";
    assert!(dropped(yaml, &[], "debug debug debug"));
    assert!(!dropped(yaml, &[], "debug"));
    assert!(!dropped(yaml, &[], "info info info info"));
    let yaml = "- drop:\n    source: a\n    longer_than: 2\n";
    assert!(dropped(yaml, &[("a", "")], "abc"));
    assert!(!dropped(yaml, &[("a", "")], "ab"));
    assert!(!dropped(yaml, &[], "abc"));
}

#[test]
fn custom_reason_and_default_when_empty() {
    let (mut p, metrics) =
        pipeline_and_metrics("- drop:\n    longer_than: 1\n    drop_counter_reason: too_long\n");
    assert!(run_entry(&mut p, entry_with(&[], Bytes::from_static(b"ab"))).is_empty());
    let c = |r: &str| metrics.logentry_dropped_lines.with_label_values(&[r]).get();
    assert_eq!(c("too_long"), 1);
    assert!(dropped(
        "- drop:\n    longer_than: 1\n    drop_counter_reason: ''\n",
        &[],
        "ab"
    ));
}

#[test]
fn config_errors() {
    let err = |body: &str| pipeline_err(&format!("- drop:\n{body}"));
    let pre = "p[0].drop: invalid drop stage config: ";
    for body in [
        "",
        "    {}",
        "    separator: x\n    value: y\n",
        "    source: ~\n",
    ] {
        assert_eq!(
            err(body),
            format!(
                "{pre}drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`"
            ),
            "{body:?}"
        );
    }
    assert_eq!(
        err("    older_than: 1x\n"),
        format!(
            "{pre}drop stage invalid duration, 1x cannot be converted to a duration: time: unknown unit \"x\" in duration \"1x\""
        )
    );
    assert_eq!(
        err("    older_than: 10\n"),
        format!(
            "{pre}drop stage invalid duration, 10 cannot be converted to a duration: time: missing unit in duration \"10\""
        )
    );
    assert_eq!(
        err("    expression: x\n    value: y\n"),
        format!("{pre}drop stage config must contain `source` if `value` is specified")
    );
    assert_eq!(
        err("    source: a\n    expression: x\n    value: y\n"),
        format!(
            "{pre}drop stage config error, `value` and `expression` cannot both be defined at the same time."
        )
    );
    assert!(
        err("    expression: '(?P<ts[0-9]+).*'\n")
            .starts_with(&format!("{pre}drop stage regex compilation error: "))
    );
    assert_eq!(
        err("    longer_than: 23qb\n"),
        format!(
            "{pre}drop stage failed to parse longer_than to bytes: strconv.UnmarshalText: parsing \"23QB\": invalid syntax"
        )
    );
    for source in ["1", "{a: b}", "[a, 1]"] {
        assert_eq!(
            err(&format!("    source: {source}\n")),
            format!("{pre}drop stage source invalid type should be string or list of strings")
        );
    }
}

// --- The examples of Promtail's docs (drop.md). ---

#[test]
fn doc_simple_source_list() {
    let yaml = "- drop:\n    source: [\"level\",\"msg\"]\n";
    assert!(dropped(yaml, &[("level", "info"), ("msg", "m")], "x"));
    // Promtail's code needs both (its docs say "at least one"; spec §12 #10 keeps the code).
    assert!(!dropped(yaml, &[("level", "info")], "x"));
}

#[test]
fn doc_regex_concatenated_sources() {
    let yaml = r##"
- json:
    expressions:
     level:
     msg:
- drop:
    source:     ["level","msg"]
    separator:   "#"
    expression:  "(error|ERROR)#.*\/loki\/api\/push.*"
"##;
    // The docs' lines are not valid JSON (unescaped quotes in msg); these are, with the same
    // content.
    let msg = r#"11.11.11.11 - \"POST /loki/api/push/ HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0\""#;
    for level in ["error", "ERROR"] {
        let line = format!(
            r#"{{"time":"2019-01-01T01:00:00.000000001Z", "level": "{level}", "msg":"{msg}"}}"#
        );
        assert!(dropped(yaml, &[], &line), "{line}");
    }
    let line =
        format!(r#"{{"time":"2019-01-01T01:00:00.000000001Z", "level": "info", "msg":"{msg}"}}"#);
    assert!(!dropped(yaml, &[], &line));
}

#[test]
fn doc_value_match() {
    let yaml = "- json:\n    expressions:\n     level:\n     msg:\n- drop:\n    source: \"level\"\n    value:  \"error\"\n";
    assert!(dropped(
        yaml,
        &[],
        r#"{"time":"2019-01-01T01:00:00.000000001Z", "level": "error", "msg":"11.11.11.11 - POST"}"#
    ));
    assert!(!dropped(yaml, &[], r#"{"level": "warn", "msg":"m"}"#));
}

#[test]
fn doc_old_lines() {
    let parse = "- json:\n    expressions:\n     time:\n     msg:\n- timestamp:\n    source: time\n    format: RFC3339\n";
    let (mut s, metrics) = stage(
        "older_than: 24h\ndrop_counter_reason: \"line_too_old\"\n",
        doc_now,
    );
    let mut run = |time: &str| {
        let line = format!(r#"{{"time":"{time}", "level": "error", "msg":"m"}}"#);
        let mut pe = run_stages(parse, &[], &line).unwrap();
        is_dropped(&mut s, &mut pe)
    };
    assert!(run("2020-08-11T11:00:00Z"));
    assert!(!run("2020-08-11T13:00:00Z"));
    assert_eq!(
        metrics
            .logentry_dropped_lines
            .with_label_values(&["line_too_old"])
            .get(),
        1
    );
}

#[test]
fn doc_long_lines() {
    let (mut p, metrics) = pipeline_and_metrics(
        "- drop:\n    longer_than: 8kb\n    drop_counter_reason: \"line_too_long\"\n",
    );
    let long = Bytes::from("x".repeat(8193));
    assert!(run_entry(&mut p, entry_with(&[], long)).is_empty());
    let ok = Bytes::from("x".repeat(8192));
    assert_eq!(run_entry(&mut p, entry_with(&[], ok)).len(), 1);
    assert_eq!(
        metrics
            .logentry_dropped_lines
            .with_label_values(&["line_too_long"])
            .get(),
        1
    );
}

#[test]
fn doc_regex_and_length() {
    let yaml = "- drop:\n    expression: \".*debug.*\"\n    longer_than: 1kb\n";
    let long_debug = format!("debug {}", "x".repeat(1024));
    assert!(dropped(yaml, &[], &long_debug));
    assert!(!dropped(yaml, &[], "short debug"));
    assert!(!dropped(yaml, &[], &"x".repeat(2000)));
}

#[test]
fn doc_time_or_length_or_regex() {
    let yaml = r#"
- json:
    expressions:
     time:
     msg:
- timestamp:
    source: time
    format: RFC3339
- drop:
    older_than: 24h
- drop:
    longer_than: 8kb
- drop:
    source: "msg"
    expression: ".*trace.*"
"#;
    let now = Timestamp::now().0 / NS;
    let recent = |secs_ago: i64| {
        let t = now - secs_ago;
        // RFC 3339 from Unix seconds (UTC).
        let days = t.div_euclid(86_400);
        let (y, m) = crate::pipeline::gotime::civil_from_days(days);
        let d = days - crate::pipeline::gotime::days_from_civil(y, m, 1) + 1;
        let s = t.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    };
    // A day and an hour of margin: no timing sensitivity.
    let line = |time: &str, msg: &str| format!(r#"{{"time":"{time}","msg":"{msg}"}}"#);
    assert!(!dropped(yaml, &[], &line(&recent(3600), "hello")));
    assert!(dropped(yaml, &[], &line(&recent(3 * 86_400), "hello")));
    assert!(dropped(yaml, &[], &line(&recent(3600), "a trace b")));
    assert!(dropped(yaml, &[], &line(&recent(3600), &"x".repeat(9000))));
}
