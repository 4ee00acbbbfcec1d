//! Tests of the `metrics` stage: every type and action, value filters and conversions, idle
//! expiry (injected clock), exposition on the registry, config errors and the docs' examples.

use std::cell::Cell;

use bytes::Bytes;

use super::MetricsStage;
use crate::pipeline::Stage;
use crate::pipeline::stage::PipelineEntry;
use crate::pipeline::stages::testutil::*;

thread_local! {
    static NOW: Cell<i64> = const { Cell::new(1_000) };
}

fn clock() -> i64 {
    NOW.with(Cell::get)
}

fn set_now(t: i64) {
    NOW.with(|n| n.set(t));
}

/// Runs `lines` (with `labels`) through `yaml` and returns the exposition text.
fn exposition(yaml: &str, labels: &[(&str, &str)], lines: &[&str]) -> String {
    let (mut p, metrics) = pipeline_and_metrics(yaml);
    for l in lines {
        run_one(&mut p, labels, l);
    }
    metrics.render()
}

fn has(text: &str, sample: &str) {
    assert!(
        text.lines().any(|l| l == sample),
        "missing {sample:?} in:\n{text}"
    );
}

fn lacks(text: &str, name: &str) {
    assert!(!text.contains(name), "unexpected {name:?} in:\n{text}");
}

#[test]
fn counter_inc_and_add() {
    let yaml = r#"
- json:
    expressions:
      n:
- metrics:
    hits:
      type: Counter
      description: "hits"
      source: n
      config:
        action: inc
    total:
      type: counter
      source: n
      config:
        action: ADD
"#;
    let text = exposition(
        yaml,
        &[("job", "j")],
        &[
            r#"{"n": 2}"#,
            r#"{"n": "1.5"}"#,
            r#"{"n": "250ms"}"#,
            r#"{"n": true}"#,
            r#"{"n": "abc"}"#,
            r#"{"n": -3}"#,
            r#"{"x": 1}"#,
        ],
    );
    has(&text, "# HELP promtail_custom_hits hits");
    has(&text, "# TYPE promtail_custom_hits counter");
    // The null from the line without `n` counts for inc (the key exists).
    has(&text, "promtail_custom_hits{job=\"j\"} 7");
    // 2 + 1.5 + 0.25 + 1; "abc" does not convert; -3 is ignored; null does not convert.
    has(&text, "promtail_custom_total{job=\"j\"} 4.75");
}

#[test]
fn source_must_exist_without_match_all() {
    let yaml = "- metrics:\n    c:\n      type: Counter\n      config:\n        action: inc\n";
    // Source defaults to the metric name.
    let text = exposition(yaml, &[("c", "x")], &["a", "b"]);
    has(&text, "promtail_custom_c{c=\"x\"} 2");
    let text = exposition(yaml, &[("d", "x")], &["a"]);
    lacks(&text, "promtail_custom_c");
}

#[test]
fn value_filter() {
    let yaml = r#"
- json:
    expressions:
      status:
- metrics:
    ok:
      type: Counter
      source: status
      config:
        value: "200"
        action: inc
"#;
    let text = exposition(
        yaml,
        &[],
        &[
            r#"{"status": 200}"#,
            r#"{"status": "200"}"#,
            r#"{"status": 500}"#,
            r#"{"status": null}"#,
        ],
    );
    has(&text, "promtail_custom_ok 2");
}

#[test]
fn gauge_actions() {
    let yaml = |action: &str| {
        format!(
            "- json:\n    expressions:\n      v:\n- metrics:\n    g:\n      type: Gauge\n      source: v\n      config:\n        action: {action}\n"
        )
    };
    let lines = [r#"{"v": 5}"#, r#"{"v": "2"}"#, r#"{"v": "x"}"#];
    has(
        &exposition(&yaml("set"), &[], &lines),
        "promtail_custom_g 2",
    );
    has(
        &exposition(&yaml("inc"), &[], &lines),
        "promtail_custom_g 3",
    );
    has(
        &exposition(&yaml("dec"), &[], &lines),
        "promtail_custom_g -3",
    );
    has(
        &exposition(&yaml("add"), &[], &lines),
        "promtail_custom_g 7",
    );
    has(
        &exposition(&yaml("sub"), &[], &lines),
        "promtail_custom_g -7",
    );
}

#[test]
fn histogram() {
    let yaml = r#"
- json:
    expressions:
      t:
- metrics:
    lat:
      type: Histogram
      description: "latency"
      source: t
      prefix: my_
      config:
        buckets: [0.1, 1, 10]
"#;
    let text = exposition(
        yaml,
        &[("app", "a")],
        &[
            r#"{"t": 0.05}"#,
            r#"{"t": "1"}"#,
            r#"{"t": "2s"}"#,
            r#"{"t": 100}"#,
        ],
    );
    has(&text, "# TYPE my_lat histogram");
    has(&text, "my_lat_bucket{app=\"a\",le=\"0.1\"} 1");
    has(&text, "my_lat_bucket{app=\"a\",le=\"1\"} 2");
    has(&text, "my_lat_bucket{app=\"a\",le=\"10\"} 3");
    has(&text, "my_lat_bucket{app=\"a\",le=\"+Inf\"} 4");
    has(&text, "my_lat_sum{app=\"a\"} 103.05");
    has(&text, "my_lat_count{app=\"a\"} 4");
    // Default buckets.
    let text = exposition(
        "- metrics:\n    h:\n      type: Histogram\n",
        &[("h", "0.3")],
        &["x"],
    );
    has(&text, "promtail_custom_h_bucket{h=\"0.3\",le=\"0.25\"} 0");
    has(&text, "promtail_custom_h_bucket{h=\"0.3\",le=\"0.5\"} 1");
    has(&text, "promtail_custom_h_bucket{h=\"0.3\",le=\"10\"} 1");
}

#[test]
fn series_labels_are_current_labels_without_reserved_ones() {
    let yaml = r#"
- static_labels: {level: warn, __tenant_id__: t}
- metrics:
    lines:
      type: Counter
      config:
        match_all: true
        action: inc
"#;
    let text = exposition(yaml, &[("job", "j")], &["a", "b"]);
    has(&text, "promtail_custom_lines{job=\"j\",level=\"warn\"} 2");
    lacks(&text, "__tenant_id__");
}

#[test]
fn idle_series_are_removed_after_the_scrape_that_finds_them_idle() {
    let (cx, metrics) = build_context("metrics");
    let body: serde_yaml::Value = serde_yaml::from_str(
        "c:\n  type: Counter\n  max_idle_duration: 1m30s\n  config:\n    match_all: true\n    action: inc\n",
    )
    .unwrap();
    set_now(1_000);
    let mut stage = MetricsStage::build_with_clock(&body, &cx, clock).unwrap();
    let mut run = |labels: &[(&str, &str)]| {
        let mut pe = PipelineEntry::new(entry_with(labels, Bytes::from_static(b"x")));
        let _ = stage.process(&mut pe, &mut Vec::new());
    };
    run(&[("a", "1")]);
    run(&[("a", "2")]);
    set_now(1_080);
    run(&[("a", "2")]);
    set_now(1_090);
    // a=1 is idle (90s) but still in this scrape; gone from the next.
    let text = metrics.render();
    has(&text, "promtail_custom_c{a=\"1\"} 1");
    has(&text, "promtail_custom_c{a=\"2\"} 2");
    let text = metrics.render();
    lacks(&text, "promtail_custom_c{a=\"1\"}");
    has(&text, "promtail_custom_c{a=\"2\"} 2");
    // Dropping the stage removes its families.
    drop(stage);
    lacks(&metrics.render(), "promtail_custom_c");
}

#[test]
fn two_stages_with_one_name_share_the_family() {
    let yaml = "- metrics:\n    c:\n      type: Counter\n      config:\n        match_all: true\n        action: inc\n";
    let (mut p, metrics) =
        pipeline_and_metrics(&format!("{yaml}- static_labels: {{x: y}}\n{yaml}"));
    run_one(&mut p, &[], "l");
    let text = metrics.render();
    has(&text, "promtail_custom_c 1");
    has(&text, "promtail_custom_c{x=\"y\"} 1");
    assert_eq!(text.matches("# TYPE promtail_custom_c counter").count(), 1);
}

#[test]
fn config_errors() {
    let pre = "p[0].metrics: invalid metrics stage config: ";
    let err = |body: &str| pipeline_err(&format!("- metrics:\n    m:\n{body}"));
    assert_eq!(
        err("      type: Summary\n"),
        format!(
            "{pre}invalid metric type 'summary', metric type must be one of 'counter', 'gauge', or 'histogram'"
        )
    );
    assert_eq!(
        err("      type: Counter\n      max_idle_duration: 500ms\n      config: {action: inc}\n"),
        format!("{pre}max_idle_duration less than 1s not allowed")
    );
    assert_eq!(
        err("      type: Counter\n      max_idle_duration: x\n      config: {action: inc}\n"),
        format!(
            "{pre}max_idle_duration could not be parsed as a time.Duration: 'time: invalid duration \"x\"'"
        )
    );
    assert_eq!(
        err("      type: Counter\n"),
        format!("{pre}counter action must be defined as either `inc` or `add`")
    );
    assert_eq!(
        err("      type: Counter\n      config: {action: set}\n"),
        format!("{pre}action set is not valid, action must be either `inc` or `add`")
    );
    assert_eq!(
        err("      type: Counter\n      config: {action: inc, match_all: true, value: x}\n"),
        format!(
            "{pre}`match_all: true` cannot be combined with `value`, please remove `match_all` or `value`"
        )
    );
    assert_eq!(
        err("      type: Counter\n      config: {action: add, count_entry_bytes: true}\n"),
        format!("{pre}`count_entry_bytes: true` can only be set with `match_all: true`")
    );
    assert_eq!(
        err(
            "      type: Counter\n      config: {action: inc, match_all: true, count_entry_bytes: true}\n"
        ),
        format!("{pre}`count_entry_bytes: true` can only be used with `action: add`")
    );
    assert_eq!(
        err("      type: Gauge\n"),
        format!("{pre}gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`")
    );
    assert_eq!(
        err("      type: Gauge\n      config: {action: mul}\n"),
        format!(
            "{pre}action mul is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`"
        )
    );
    assert_eq!(
        err("      type: Histogram\n      config: {buckets: [1, 0.5]}\n"),
        format!("{pre}histogram buckets must be in increasing order: 1.000000 >= 0.500000")
    );
    assert_eq!(
        err("      type: Histogram\n      config: {buckets: [\"1\"]}\n"),
        format!(
            "{pre}'buckets[0]' expected type 'float64', got unconvertible type 'string', value: '1'"
        )
    );
    assert_eq!(
        err("      type: Counter\n      prefix: 'a-'\n      config: {action: inc}\n"),
        format!("{pre}invalid metric name: \"a-m\"")
    );
    assert_eq!(
        err("      type: Gauge\n      config: {action: set, value: 1}\n"),
        format!("{pre}'value' expected type 'string', got unconvertible type 'int', value: '1'")
    );
    // No metrics at all is accepted (Promtail's empty map).
    pipeline("- metrics:\n");
    // `+Inf` as the last bucket is dropped; match_all false with value is fine.
    pipeline("- metrics:\n    h:\n      type: histogram\n      config: {buckets: [1, .inf]}\n");
    pipeline(
        "- metrics:\n    c:\n      type: counter\n      config: {action: inc, match_all: false, value: x}\n",
    );
}

// --- The examples of Promtail's docs (metrics.md). `regex` stages are replaced by `json` ones
// extracting the same keys. ---

#[test]
fn doc_counter_lines_and_bytes() {
    let yaml = r#"
- metrics:
    log_lines_total:
      type: Counter
      description: "total number of log lines"
      prefix: my_promtail_custom_
      max_idle_duration: 24h
      config:
        match_all: true
        action: inc
    log_bytes_total:
      type: Counter
      description: "total bytes of log lines"
      prefix: my_promtail_custom_
      max_idle_duration: 24h
      config:
        match_all: true
        count_entry_bytes: true
        action: add
"#;
    let text = exposition(yaml, &[("job", "varlogs")], &["hello", "héllo"]);
    has(
        &text,
        "my_promtail_custom_log_lines_total{job=\"varlogs\"} 2",
    );
    has(
        &text,
        "my_promtail_custom_log_bytes_total{job=\"varlogs\"} 11",
    );
}

#[test]
fn doc_counter_successful_orders() {
    // `regex` puts the key only on matching lines: the extracted map is seeded from labels.
    let yaml = r#"
- metrics:
    successful_orders_total:
      type: Counter
      description: "log lines with the message `order successful`"
      source: order_success
      config:
        action: inc
"#;
    let (mut p, metrics) = pipeline_and_metrics(yaml);
    run_one(&mut p, &[("order_success", "order successful")], "x");
    run_one(&mut p, &[("order_success", "order successful")], "x");
    run_one(&mut p, &[], "x");
    has(
        &metrics.render(),
        "promtail_custom_successful_orders_total{order_success=\"order successful\"} 2",
    );
}

#[test]
fn doc_counter_order_status() {
    let yaml = r#"
- json:
    expressions:
      order_status:
- metrics:
    successful_orders_total:
      type: Counter
      description: "successful orders"
      source: order_status
      config:
        value: success
        action: inc
    failed_orders_total:
      type: Counter
      description: "failed orders"
      source: order_status
      config:
        value: fail
        action: inc
"#;
    let text = exposition(
        yaml,
        &[],
        &[
            r#"{"order_status":"success"}"#,
            r#"{"order_status":"success"}"#,
            r#"{"order_status":"fail"}"#,
            r#"{"order_status":"pending"}"#,
        ],
    );
    has(&text, "promtail_custom_successful_orders_total 2");
    has(&text, "promtail_custom_failed_orders_total 1");
}

#[test]
fn doc_gauge_retries() {
    let yaml = r#"
- json:
    expressions:
      retries:
- metrics:
    retries_total:
      type: Gauge
      description: "total retries"
      source: retries
      config:
        action: add
"#;
    let text = exposition(yaml, &[], &[r#"{"retries":"3"}"#, r#"{"retries":"4"}"#]);
    has(&text, "promtail_custom_retries_total 7");
}

#[test]
fn doc_histogram_response_time() {
    let yaml = r#"
- json:
    expressions:
      response_time:
- metrics:
    http_response_time_seconds:
      type: Histogram
      description: "distribution of log response time"
      source: response_time
      config:
        buckets: [0.001,0.0025,0.005,0.010,0.025,0.050]
"#;
    let text = exposition(
        yaml,
        &[],
        &[
            r#"{"response_time":"0.5ms"}"#,
            r#"{"response_time":0.02}"#,
            r#"{"response_time":"1s"}"#,
        ],
    );
    has(
        &text,
        "promtail_custom_http_response_time_seconds_bucket{le=\"0.001\"} 1",
    );
    has(
        &text,
        "promtail_custom_http_response_time_seconds_bucket{le=\"0.025\"} 2",
    );
    has(
        &text,
        "promtail_custom_http_response_time_seconds_bucket{le=\"0.05\"} 2",
    );
    has(
        &text,
        "promtail_custom_http_response_time_seconds_bucket{le=\"+Inf\"} 3",
    );
    has(&text, "promtail_custom_http_response_time_seconds_count 3");
}

#[test]
fn doc_supported_values() {
    use super::to_float;
    use crate::pipeline::ValueRef;
    assert_eq!(to_float(ValueRef::Str("0.804")), Some(0.804));
    assert_eq!(to_float(ValueRef::Str("0.5ms")), Some(0.0005));
    assert_eq!(to_float(ValueRef::Str("10h")), Some(36_000.0));
    assert_eq!(to_float(ValueRef::Num(3.0)), Some(3.0));
    assert_eq!(to_float(ValueRef::Bool(true)), Some(1.0));
    assert_eq!(to_float(ValueRef::Bool(false)), Some(0.0));
    assert_eq!(to_float(ValueRef::Str("x")), None);
    assert_eq!(to_float(ValueRef::Null), None);
}
