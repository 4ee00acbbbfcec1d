//! Tests of the `match` stage: keep and drop actions, nested stages and re-seeding, forwarding
//! of flushes, Promtail's config errors and the example of its docs.

use bytes::Bytes;

use super::{Action, MatchStage};
use crate::entry::LabelSet;
use crate::pipeline::stages::testutil::*;
use crate::pipeline::{PipelineError, ValueRef};

fn drops(metrics: &crate::metrics::Metrics, reason: &str) -> u64 {
    metrics
        .logentry_dropped_lines
        .with_label_values(&[reason])
        .get()
}

#[test]
fn keep_runs_nested_stages_only_on_matching_entries() {
    let yaml = r#"
- match:
    selector: '{app="loki"}'
    stages:
    - static_labels: {matched: "yes"}
"#;
    let mut p = pipeline(yaml);
    let out = run_one(&mut p, &[("app", "loki")], "l");
    assert_labels(&out, &[("app", "loki"), ("matched", "yes")]);
    let out = run_one(&mut p, &[("app", "other")], "l");
    assert_labels(&out, &[("app", "other")]);
    let out = run_one(&mut p, &[], "l");
    assert_labels(&out, &[]);
}

#[test]
fn selector_sees_current_labels_and_line() {
    let yaml = r#"
- static_labels: {app: loki}
- match:
    selector: '{app="loki"} |= "GET" != "health"'
    stages:
    - static_labels: {matched: "yes"}
"#;
    let mut p = pipeline(yaml);
    assert_eq!(
        run_one(&mut p, &[], "GET /").labels.get("matched"),
        Some("yes")
    );
    assert_eq!(
        run_one(&mut p, &[], "GET /health").labels.get("matched"),
        None
    );
    assert_eq!(run_one(&mut p, &[], "POST /").labels.get("matched"), None);
}

#[test]
fn nested_extracted_map_is_reseeded_from_current_labels() {
    // `level` is extracted as "warn", then set as a label "WARN" by static_labels; inside the
    // match the label value overwrites the extracted one; `msg` stays.
    let yaml = r#"
- json:
    expressions:
      level:
      msg:
- static_labels: {level: WARN}
- match:
    selector: '{level="WARN"}'
    stages:
    - output:
        source: level
"#;
    let mut p = pipeline(yaml);
    let out = run_one(&mut p, &[], r#"{"level":"warn","msg":"m"}"#);
    assert_eq!(line(&out), "WARN");
    // Outside of the match the extracted value is not touched.
    let pe = run_stages(
        "- json:\n    expressions:\n      level:\n      msg:\n- static_labels: {level: WARN}\n- match:\n    selector: '{level=\"WARN\"}'\n    stages:\n    - labels:\n        m: msg\n",
        &[("job", "j")],
        r#"{"level":"warn","msg":"m"}"#,
    )
    .unwrap();
    assert_eq!(pe.entry.labels.get("m"), Some("m"));
    assert_eq!(pe.extracted.get("level"), Some(ValueRef::Str("WARN")));
    assert_eq!(pe.extracted.get("job"), Some(ValueRef::Str("j")));
}

#[test]
fn drop_action_counts_with_reason() {
    let (mut p, metrics) = pipeline_and_metrics(
        "- match:\n    selector: '{app=\"a\"} |~ \"debug\"'\n    action: drop\n",
    );
    assert!(
        run_entry(
            &mut p,
            entry_with(&[("app", "a")], Bytes::from_static(b"a debug"))
        )
        .is_empty()
    );
    assert_eq!(
        run_entry(
            &mut p,
            entry_with(&[("app", "a")], Bytes::from_static(b"info"))
        )
        .len(),
        1
    );
    assert_eq!(
        run_entry(
            &mut p,
            entry_with(&[("app", "b")], Bytes::from_static(b"debug"))
        )
        .len(),
        1
    );
    assert_eq!(drops(&metrics, "match_stage"), 1);
    let (mut p, metrics) = pipeline_and_metrics(
        "- match:\n    selector: '{app=\"a\"}'\n    action: drop\n    drop_counter_reason: noisy\n",
    );
    assert!(run_entry(&mut p, entry_with(&[("app", "a")], Bytes::new())).is_empty());
    assert_eq!(drops(&metrics, "noisy"), 1);
}

#[test]
fn nested_drop_is_counted_by_the_nested_stage() {
    let (mut p, metrics) = pipeline_and_metrics(
        "- match:\n    selector: '{app=\"a\"}'\n    stages:\n    - drop:\n        expression: x\n",
    );
    assert!(
        run_entry(
            &mut p,
            entry_with(&[("app", "a")], Bytes::from_static(b"x"))
        )
        .is_empty()
    );
    assert_eq!(drops(&metrics, "drop_stage"), 1);
    assert_eq!(drops(&metrics, "match_stage"), 0);
}

#[test]
fn nested_match() {
    let yaml = r#"
- match:
    selector: '{app=~"a.*"}'
    stages:
    - static_labels: {outer: "1"}
    - match:
        selector: '{outer="1", app="ab"}'
        stages:
        - static_labels: {inner: "1"}
"#;
    let mut p = pipeline(yaml);
    assert_labels(
        &run_one(&mut p, &[("app", "ab")], "l"),
        &[("app", "ab"), ("outer", "1"), ("inner", "1")],
    );
    assert_labels(
        &run_one(&mut p, &[("app", "ac")], "l"),
        &[("app", "ac"), ("outer", "1")],
    );
}

fn holding_match() -> crate::pipeline::Pipeline {
    let mut p = pipeline(
        "- match:\n    selector: '{app=\"a\"}'\n    stages:\n    - static_labels: {x: \"1\"}\n    - static_labels: {y: \"1\"}\n- static_labels: {after: \"1\"}\n",
    );
    let m = &mut p.stages[0];
    // Rebuild the match stage with a holding stage between its two nested stages.
    let stages = crate::pipeline::build_stages(
        "test",
        &stages_yaml("- static_labels: {x: \"1\"}\n- static_labels: {y: \"1\"}\n"),
        "n",
        &std::sync::Arc::new(crate::metrics::Metrics::new()),
    )
    .unwrap();
    let mut stages = stages;
    stages.insert(
        1,
        Box::new(Holding {
            blocks: true,
            ..Holding::default()
        }),
    );
    let selector = super::Selector::parse("{app=\"a\"}").unwrap();
    *m = Box::new(MatchStage {
        selector,
        action: Action::Keep(stages),
        spare: None,
    });
    p
}

#[test]
fn held_entries_are_released_through_the_rest() {
    let mut p = holding_match();
    assert!(p.may_block());
    let mut out = Vec::new();
    p.process(
        entry_with(&[("app", "a")], Bytes::from_static(b"hold")),
        &mut out,
    );
    assert!(out.is_empty());
    // A non-matching entry passes the held one.
    p.process(
        entry_with(&[("app", "b")], Bytes::from_static(b"other")),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_labels(&out[0], &[("app", "b"), ("after", "1")]);
    out.clear();
    // A matching entry releases the held one first.
    p.process(
        entry_with(&[("app", "a")], Bytes::from_static(b"next")),
        &mut out,
    );
    let lines: Vec<_> = out.iter().map(line).collect();
    assert_eq!(lines, ["hold", "next"]);
    for e in &out {
        assert_labels(e, &[("app", "a"), ("x", "1"), ("y", "1"), ("after", "1")]);
    }
    out.clear();
    // flush and flush_stream are forwarded.
    p.process(
        entry_with(&[("app", "a")], Bytes::from_static(b"hold")),
        &mut out,
    );
    p.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert_labels(
        &out[0],
        &[("app", "a"), ("x", "1"), ("y", "1"), ("after", "1")],
    );
    out.clear();
    p.process(
        entry_with(&[("app", "a")], Bytes::from_static(b"hold")),
        &mut out,
    );
    p.flush_stream(&LabelSet::from_pairs([("app", "zzz")]), &mut out);
    assert!(out.is_empty());
    p.flush_stream(&LabelSet::from_pairs([("app", "a"), ("x", "1")]), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(line(&out[0]), "hold");
}

#[test]
fn may_block_is_false_without_blocking_nested_stages() {
    let p =
        pipeline("- match:\n    selector: '{a=\"b\"}'\n    stages:\n    - static_labels: {x: y}\n");
    assert!(!p.may_block());
    // A waiting `limit` inside a match makes the pipeline blocking; a dropping one does not.
    let nested = |drop: bool| {
        pipeline(&format!(
            "- match:\n    selector: '{{a=\"b\"}}'\n    stages:\n    - limit: {{rate: 1, burst: 1, drop: {drop}}}\n"
        ))
        .may_block()
    };
    assert!(nested(false));
    assert!(!nested(true));
}

#[test]
fn config_errors() {
    let pre = "p[0].match: invalid match stage config: ";
    let err = |body: &str| pipeline_err(&format!("- match:\n{body}"));
    let stages = "    stages:\n    - static_labels: {a: b}\n";
    assert_eq!(
        err(""),
        format!("{pre}selector statement required for match stage")
    );
    assert_eq!(
        err(&format!(
            "    pipeline_name: ''\n    selector: '{{a=\"b\"}}'\n{stages}"
        )),
        format!("{pre}match stage pipeline name can be omitted but cannot be an empty string")
    );
    assert_eq!(
        err(&format!(
            "    selector: '{{a=\"b\"}}'\n    action: keeep\n{stages}"
        )),
        format!("{pre}match stage action should be 'keep' or 'drop'")
    );
    assert_eq!(
        err("    selector: '{a=\"b\"}'\n"),
        format!(
            "{pre}match stage requires at least one additional stage to be defined in '- stages'"
        )
    );
    assert_eq!(
        err(&format!(
            "    selector: '{{a=\"b\"}}'\n    action: drop\n{stages}"
        )),
        format!("{pre}match stage configured to drop entries cannot contains stages")
    );
    assert_eq!(
        err(&format!("    selector: '{{a=\"b\"'\n{stages}")),
        format!(
            "{pre}invalid selector syntax for match stage: parse error at line 1, col 7: syntax error: unexpected $end, expecting }} or ,"
        )
    );
    assert_eq!(
        err(&format!("    selector: '{{}}'\n{stages}")),
        format!(
            "{pre}invalid selector syntax for match stage: parse error at line 1, col 2: syntax error: unexpected }}, expecting IDENTIFIER"
        )
    );
    assert!(
        err(&format!("    selector: '{{a=\"b\"}} |~ \"(\"'\n{stages}")).starts_with(&format!(
            "{pre}error parsing pipeline: error parsing regexp"
        ))
    );
    assert_eq!(
        err(&format!("    selector: 1\n{stages}")),
        format!("{pre}'selector' expected type 'string', got unconvertible type 'int', value: '1'")
    );
    assert_eq!(
        err("    selector: '{a=\"b\"}'\n    stages: {a: b}\n"),
        format!(
            "{pre}'stages': source data must be an array or slice, got map[interface {{}}]interface {{}}"
        )
    );
    // An error in a nested stage names its own path.
    let e = pipeline_error("- match:\n    selector: '{a=\"b\"}'\n    stages:\n    - output: {}\n");
    assert!(matches!(e, PipelineError::InvalidConfig { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "p[0].match.stages[0].output: invalid output stage config: output source value is required if output is specified"
    );
    // pipeline_name set and non-empty is accepted; action case matters.
    pipeline(&format!(
        "- match:\n    pipeline_name: x\n    selector: '{{a=\"b\"}}'\n{stages}"
    ));
    assert!(
        err(&format!(
            "    selector: '{{a=\"b\"}}'\n    action: KEEP\n{stages}"
        ))
        .contains("'keep' or 'drop'")
    );
}

/// The example of Promtail's docs (match.md).
#[test]
fn doc_example() {
    let yaml = r#"
- json:
    expressions:
      app:
- labels:
    app:
- match:
    selector: '{app="loki"}'
    stages:
    - json:
        expressions:
          msg: message
- match:
    pipeline_name: "app2"
    selector: '{app="pokey"}'
    action: keep
    stages:
    - json:
        expressions:
          msg: msg
- match:
    selector: '{app="promtail"} |~ ".*noisy error.*"'
    action: drop
    drop_counter_reason: promtail_noisy_error
- output:
    source: msg
"#;
    let (mut p, metrics) = pipeline_and_metrics(yaml);
    let first = r#"{ "time":"2012-11-01T22:08:41+00:00", "app":"loki", "component": ["parser","type"], "level" : "WARN", "message" : "app1 log line" }"#;
    let second = r#"{ "time":"2012-11-01T22:08:41+00:00", "app":"promtail", "component": ["parser","type"], "level" : "ERROR", "message" : "foo noisy error" }"#;
    let out = run_one(&mut p, &[], first);
    assert_eq!(line(&out), "app1 log line");
    assert_labels(&out, &[("app", "loki")]);
    assert!(
        run_entry(
            &mut p,
            entry_with(&[], Bytes::from_static(second.as_bytes()))
        )
        .is_empty()
    );
    assert_eq!(drops(&metrics, "promtail_noisy_error"), 1);
}
