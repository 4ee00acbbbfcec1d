//! Tests of the `regex` stage: Promtail's documented examples, its stage tests and edge cases.

use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stages::testutil::*;

fn s(v: &str) -> Option<ValueRef<'_>> {
    Some(ValueRef::Str(v))
}

#[test]
fn documented_example_without_source() {
    let pe = run_stages(
        "- regex:\n    expression: \"^(?s)(?P<time>\\\\S+?) (?P<stream>stdout|stderr) (?P<flags>\\\\S+?) (?P<content>.*)$\"\n",
        &[],
        "2019-01-01T01:00:00.000000001Z stderr P i'm a log message!",
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("time"), s("2019-01-01T01:00:00.000000001Z"));
    assert_eq!(ex.get("stream"), s("stderr"));
    assert_eq!(ex.get("flags"), s("P"));
    assert_eq!(ex.get("content"), s("i'm a log message!"));
}

#[test]
fn documented_example_with_source() {
    let pe = run_stages(
        "- json:\n    expressions:\n      time:\n- regex:\n    expression: \"^(?P<year>\\\\d+)\"\n    source: \"time\"\n",
        &[],
        r#"{"time":"2019-01-01T01:00:00.000000001Z"}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("year"), s("2019"));
    assert_eq!(pe.extracted.len(), 2);
}

#[test]
fn documented_backslash_spellings_are_equivalent() {
    for yaml in [
        "- regex:\n    expression: ^(?P<w>\\w*)\n",
        "- regex:\n    expression: '^(?P<w>\\w*)'\n",
        "- regex:\n    expression: \"^(?P<w>\\\\w*)\"\n",
    ] {
        let pe = run_stages(yaml, &[], "abc def").unwrap();
        assert_eq!(pe.extracted.get("w"), s("abc"), "{yaml}");
    }
}

#[test]
fn case_insensitive_first_match_and_unnamed_groups() {
    let pe = run_stages(
        "- regex:\n    expression: '(?i)(?P<bad>panic:|core_dumped|failure|error|attack| bad |illegal |denied|refused|unauthorized|fatal|failed|Segmentation Fault|Corrupted)'\n",
        &[],
        "A Terrible Error has occurred!!!",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("bad"), s("Error"));
    let pe = run_stages(
        "- regex:\n    expression: '(\\w+) (?P<b>\\w+)'\n",
        &[("job", "j")],
        "one two three four",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("b"), s("two"));
    // Only the named group and the seeded label.
    assert_eq!(pe.extracted.len(), 2);
}

#[test]
fn group_that_did_not_take_part_is_empty_and_overwrites() {
    let pe = run_stages(
        "- regex:\n    expression: '^(?P<a>x)?(?P<b>y)'\n- regex:\n    expression: '^(?P<a>a)|(?P<c>y)'\n",
        &[],
        "y",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), s(""));
    assert_eq!(pe.extracted.get("b"), s("y"));
    assert_eq!(pe.extracted.get("c"), s("y"));
}

#[test]
fn no_match_missing_or_null_source_is_a_no_op() {
    let pe = run_stages("- regex:\n    expression: '^(?P<a>\\d+)$'\n", &[], "abc").unwrap();
    assert_eq!(pe.extracted.get("a"), None);
    let pe = run_stages(
        "- regex:\n    expression: '(?P<a>.*)'\n    source: missing\n",
        &[],
        "abc",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), None);
    // A JSON null (the key exists) cannot be converted: no-op.
    let pe = run_stages(
        "- json:\n    expressions:\n      time:\n- regex:\n    expression: '(?P<a>.*)'\n    source: time\n",
        &[],
        r#"{"time":null}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), None);
    // Numbers and booleans are converted like getString.
    let pe = run_stages(
        "- json:\n    expressions:\n      n:\n      b:\n- regex:\n    expression: '^(?P<int>\\d+)'\n    source: n\n- regex:\n    expression: '(?P<bool>.+)'\n    source: b\n",
        &[],
        r#"{"n":1562723913000.5,"b":true}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("int"), s("1562723913000"));
    assert_eq!(pe.extracted.get("bool"), s("true"));
}

#[test]
fn source_can_be_a_label() {
    let pe = run_stages(
        "- regex:\n    expression: '/var/log/(?P<app>[^/]+)/'\n    source: filename\n",
        &[("filename", "/var/log/nginx/access.log")],
        "line",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("app"), s("nginx"));
}

#[test]
fn labels_and_output_from_groups() {
    let mut p = pipeline(
        "- regex:\n    expression: '^level=(?P<level>\\w+) msg=\"(?P<msg>[^\"]*)\"'\n- labels:\n    level:\n- output:\n    source: msg\n",
    );
    let out = run_one(&mut p, &[("job", "j")], r#"level=warn msg="disk full""#);
    assert_eq!(line(&out), "disk full");
    assert_labels(&out, &[("job", "j"), ("level", "warn")]);
}

#[test]
fn invalid_utf8_lines_match_like_go() {
    let mut p = pipeline(
        "- regex:\n    expression: '^(?P<a>\\w+) (?P<rest>.*)$'\n- output:\n    source: a\n",
    );
    let out = run_entry(
        &mut p,
        entry_with(&[], bytes::Bytes::from_static(b"abc \xff\xfe end")),
    );
    assert_eq!(line(&out[0]), "abc");
}

#[test]
fn go_only_syntax_is_accepted() {
    let pe = run_stages(
        "- regex:\n    expression: '^(?P<json>{.*}) \\<(?P<tag>\\w+)\\>$'\n",
        &[],
        r#"{"a":1} <b>"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("json"), s(r#"{"a":1}"#));
    assert_eq!(pe.extracted.get("tag"), s("b"));
}

#[test]
fn config_errors() {
    for (yaml, want) in [
        ("- regex:", "expression is required"),
        ("- regex: {}", "expression is required"),
        ("- regex: {expression: ''}", "expression is required"),
        (
            "- regex: {expression: '(?P<a>.*)', source: ''}",
            "empty source",
        ),
        (
            "- regex: {expression: '(?P<ts[0-9]+).*'}",
            "could not compile regular expression: error parsing regexp `(?P<ts[0-9]+).*`",
        ),
        (
            "- regex: {expression: [a]}",
            "'expression' expected type 'string', got unconvertible type '[]interface {}'",
        ),
    ] {
        let err = pipeline_err(yaml);
        assert!(
            err.starts_with(&format!("p[0].regex: invalid regex stage config: {want}")),
            "{yaml}: {err}"
        );
    }
    // No named group: accepted (as Promtail), extracts nothing.
    let pe = run_stages("- regex: {expression: 'a(b)'}", &[], "ab").unwrap();
    assert!(pe.extracted.is_empty());
}
