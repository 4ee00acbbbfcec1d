//! Tests of the pipeline framework: config validation, ordering, drops and acknowledgement.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::stages::testutil::*;
use super::*;
use crate::ack::Tracker;
use crate::entry::{Entry, LabelSet};

#[test]
fn pipeline_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Pipeline>();
}

#[test]
fn empty_pipeline_passes_entries_unchanged() {
    let mut p = pipeline("[]");
    assert!(p.is_empty());
    let out = run_one(&mut p, &[("job", "j")], "hello");
    assert_eq!(line(&out), "hello");
    assert_labels(&out, &[("job", "j")]);
    assert_eq!(out.timestamp, READ_TIME);
}

#[test]
fn stage_with_two_keys_is_refused() {
    let yaml = "- json: {expressions: {a: }}\n  labels: {a: }\n";
    assert_eq!(
        pipeline_err(yaml),
        "p[0]: pipeline stage must contain only one key"
    );
}

#[test]
fn unknown_stage_type_is_refused() {
    assert_eq!(
        pipeline_err("- labels: {a: }\n- jsonn: {}\n"),
        "p[1]: Unknown stage type: jsonn"
    );
}

#[test]
fn not_a_mapping_is_refused() {
    assert_eq!(
        pipeline_err("- json"),
        "p[0]: invalid YAML config, make sure each stage of your pipeline is a YAML object (must end with a `:`), check stage `- json`"
    );
    assert!(pipeline_err("- ~").contains("check stage `- <nil>`"));
    assert_eq!(
        pipeline_err("- {1: x}"),
        "p[0]: pipeline stage key must be a string"
    );
}

#[test]
fn real_yaml_path_in_errors() {
    let stages = stages_yaml("- json: {}\n");
    let err = Pipeline::new(
        "job",
        &stages,
        "scrape_configs[3].pipeline_stages",
        Arc::new(Metrics::new()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scrape_configs[3].pipeline_stages[0].json: invalid json stage config: JMES expression is required"
    );
}

#[test]
fn unknown_keys_in_a_stage_are_ignored() {
    // Promtail ignores them (a warning is logged here); the stage still works.
    let mut p = pipeline("- output: {source: job, sourse: typo, extra: [1, 2]}\n");
    let out = run_one(&mut p, &[("job", "varlogs")], "x");
    assert_eq!(line(&out), "varlogs");
}

#[test]
fn empty_mapping_is_no_stage() {
    let p = pipeline("- {}\n- labels: {a: }\n");
    assert_eq!(p.len(), 1);
}

#[test]
fn stages_run_in_order_and_extracted_is_seeded_from_initial_labels() {
    // `labels` copies the seeded `filename` into `file`; `labeldrop` removes `filename`; a later
    // `output` still reads the extracted (seeded) value, not the current labels.
    let mut p = pipeline(
        "- labels: {file: filename}\n- labeldrop: [filename]\n- output: {source: filename}\n",
    );
    let out = run_one(&mut p, &[("filename", "/var/log/a.log")], "x");
    assert_labels(&out, &[("file", "/var/log/a.log")]);
    assert_eq!(line(&out), "/var/log/a.log");
    // Labels added by a stage are not mirrored into the extracted map.
    let mut p = pipeline("- static_labels: {added: yes}\n- output: {source: added}\n");
    assert_eq!(line(&run_one(&mut p, &[], "x")), "x");
}

#[test]
fn extracted_map_does_not_leak_between_lines() {
    let mut p = pipeline("- json: {expressions: {a: }}\n- labels: {a: }\n");
    let first = run_one(&mut p, &[], r#"{"a":"1"}"#);
    assert_labels(&first, &[("a", "1")]);
    // Malformed: nothing extracted, so `a` must not come from the previous line.
    let second = run_one(&mut p, &[], "not json");
    assert_labels(&second, &[]);
}

#[test]
fn dropped_entry_is_counted_and_acknowledged() {
    let (mut p, metrics) =
        pipeline_and_metrics("- json: {expressions: {a: }, drop_malformed: true}\n");
    let tracker = Tracker::new(0);
    let good_ack = tracker.chunk(10, None);
    let bad_ack = tracker.chunk(20, None);
    let good = Entry::new(
        LabelSet::new(),
        READ_TIME,
        Bytes::from_static(br#"{"a":1}"#),
        good_ack,
    );
    let bad = Entry::new(
        LabelSet::new(),
        READ_TIME,
        Bytes::from_static(b"{oops"),
        bad_ack,
    );
    let mut out = Vec::new();
    p.process(bad, &mut out);
    assert!(out.is_empty(), "malformed line must be dropped");
    // The second chunk is complete, but the first one's entry is still alive.
    assert_eq!(tracker.committed(), 0);
    p.process(good, &mut out);
    assert_eq!(out.len(), 1);
    drop(out);
    assert_eq!(
        tracker.committed(),
        20,
        "the dropped entry must count as acknowledged"
    );
    let text = metrics.render();
    assert!(
        text.contains("logentry_dropped_lines_total{reason=\"json_malformed\"} 1"),
        "{text}"
    );
}

#[test]
fn buffering_stage_releases_in_order_through_later_stages() {
    let mut p = pipeline("- static_labels: {a: b}\n- static_labels: {c: d}\n");
    // Put the buffering stage between the two.
    p.stages.insert(1, Box::new(Holding::default()));
    let mut out = Vec::new();
    p.process(entry_with(&[], Bytes::from_static(b"hold")), &mut out);
    assert!(out.is_empty());
    p.process(entry_with(&[], Bytes::from_static(b"next")), &mut out);
    let lines: Vec<_> = out.iter().map(line).collect();
    assert_eq!(lines, ["hold", "next"]);
    for e in &out {
        assert_labels(e, &[("a", "b"), ("c", "d")]);
    }
    out.clear();
    p.process(entry_with(&[], Bytes::from_static(b"hold")), &mut out);
    p.flush(Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert_labels(&out[0], &[("a", "b"), ("c", "d")]);
    out.clear();
    p.flush_all(&mut out);
    assert!(out.is_empty());
}
