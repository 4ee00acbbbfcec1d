//! Tests of the `labels` stage (Promtail's stage tests and documented example).

use crate::pipeline::stages::testutil::*;

const JSON_THEN_LABELS: &str = "
- json:
    expressions:
      level:
      app_rename: app
- labels:
    level:
    app: app_rename
";

#[test]
fn labels_from_json() {
    let mut p = pipeline(JSON_THEN_LABELS);
    let out = run_one(
        &mut p,
        &[],
        r#"{"time":"2012-11-01T22:08:41+00:00","app":"loki","component":["parser","type"],"level":"WARN"}"#,
    );
    assert_labels(&out, &[("app", "loki"), ("level", "WARN")]);
}

#[test]
fn missing_or_null_value_leaves_the_label_alone() {
    let mut p = pipeline(JSON_THEN_LABELS);
    // `level` is missing from the JSON, so it is null in the extracted map: not set.
    let out = run_one(&mut p, &[("level", "keep")], r#"{"app":"loki"}"#);
    assert_labels(&out, &[("app", "loki"), ("level", "keep")]);
    let mut p = pipeline("- labels:\n    testLabel: diff_source\n");
    let out = run_one(&mut p, &[], "");
    assert_labels(&out, &[]);
}

#[test]
fn name_and_source() {
    let mut p = pipeline("- labels:\n    testLabel:\n");
    let out = run_one(&mut p, &[("testLabel", "testValue")], "");
    assert_labels(&out, &[("testLabel", "testValue")]);
    let mut p = pipeline(
        "- json:\n    expressions:\n      diff_source:\n- labels:\n    testLabel: diff_source\n",
    );
    let out = run_one(&mut p, &[], r#"{"diff_source":"testValue"}"#);
    assert_labels(&out, &[("testLabel", "testValue")]);
}

#[test]
fn documented_example() {
    let mut p =
        pipeline("- json:\n    expressions:\n      stream: stream\n- labels:\n    stream:\n");
    let out = run_one(
        &mut p,
        &[],
        r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
    );
    assert_labels(&out, &[("stream", "stderr")]);
}

#[test]
fn numbers_booleans_and_empty_strings() {
    let mut p = pipeline(
        "- json:\n    expressions:\n      status:\n      ok:\n      empty:\n      big:\n      obj:\n- labels:\n    status:\n    ok:\n    empty:\n    big:\n    obj:\n",
    );
    let out = run_one(
        &mut p,
        &[],
        r#"{"status":200,"ok":false,"empty":"","big":1e21,"obj":{"a":1}}"#,
    );
    assert_labels(
        &out,
        &[
            ("big", "1000000000000000000000"),
            ("empty", ""),
            ("obj", r#"{"a":1}"#),
            ("ok", "false"),
            ("status", "200"),
        ],
    );
}

#[test]
fn overwrites_existing_labels_and_memo_is_correct() {
    let mut p = pipeline("- json:\n    expressions:\n      level:\n- labels:\n    level:\n");
    let base = [("job", "j"), ("level", "old")];
    // Alternate values and label sets; every result must be right whatever the memo holds.
    for (labels, line_, want) in [
        (&base[..], r#"{"level":"info"}"#, "info"),
        (&base[..], r#"{"level":"warn"}"#, "warn"),
        (&base[..], r#"{"level":"info"}"#, "info"),
        (&[("job", "other")][..], r#"{"level":"info"}"#, "info"),
        (&base[..], r#"{"x":1}"#, "old"),
        (&base[..], r#"{"level":"info"}"#, "info"),
    ] {
        let out = run_one(&mut p, labels, line_);
        assert_eq!(out.labels.get("level"), Some(want), "{labels:?} {line_}");
        assert_eq!(out.labels.get("job"), labels[0].1.into());
    }
    // Many distinct values: more than the memo holds per input label set.
    for i in 0..600 {
        let out = run_one(&mut p, &base, &format!(r#"{{"level":"l{i}"}}"#));
        assert_eq!(out.labels.get("level"), Some(format!("l{i}").as_str()));
    }
}

#[test]
fn same_stream_shares_one_label_set() {
    let mut p = pipeline("- json:\n    expressions:\n      level:\n- labels:\n    level:\n");
    let input = crate::entry::LabelSet::from_pairs([("job", "j")]);
    let mut outs = Vec::new();
    for _ in 0..2 {
        let e = crate::entry::Entry::new(
            input.clone(),
            READ_TIME,
            bytes::Bytes::from_static(br#"{"level":"info"}"#),
            crate::entry::Ack::none(),
        );
        outs.extend(run_entry(&mut p, e));
    }
    assert_eq!(outs[0].labels, outs[1].labels);
    assert_eq!(outs[0].labels.get("level"), Some("info"));
}

#[test]
fn many_pairs() {
    let names: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    let yaml = format!(
        "- labels:\n{}",
        names
            .iter()
            .map(|n| format!("    {n}:\n"))
            .collect::<String>()
    );
    let mut p = pipeline(&yaml);
    let labels: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let out = run_one(&mut p, &labels, "");
    assert_eq!(out.labels.len(), 10);
}

#[test]
fn invalid_label_names_are_refused_at_load() {
    for bad in ["'#*FDDS*'", "1abc", "a-b", "a.b", "''"] {
        let err = pipeline_err(&format!("- labels:\n    {bad}:\n"));
        assert!(
            err.starts_with("p[0].labels: invalid labels stage config: invalid label name: "),
            "{bad}: {err}"
        );
    }
    assert!(pipeline("- labels:\n    _ok_1:\n    A:\n").len() == 1);
    // A null body is an empty (no-op) stage, as in Promtail.
    assert!(pipeline("- labels:\n").len() == 1);
    assert!(pipeline_err("- labels: [a]").contains("expected a map"));
    assert!(pipeline_err("- labels: {a: 1}").contains("expected type 'string'"));
}
