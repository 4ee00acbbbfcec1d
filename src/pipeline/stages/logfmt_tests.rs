//! Tests of the `logfmt` stage: Promtail's documented examples and stage tests, go-logfmt's
//! decoding rules and edge cases.

use super::{Val, decode};
use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stages::testutil::*;

fn s(v: &str) -> Option<ValueRef<'_>> {
    Some(ValueRef::Str(v))
}

const DOC_LINE: &str = r#"time=2012-11-01T22:08:41+00:00 app=loki level=WARN duration=125 message="this is a log line" extra="user=foo""#;

/// Every pair `decode` yields, and its result.
fn pairs(input: &str) -> (Vec<(String, String)>, Result<(), &'static str>) {
    let mut out = Vec::new();
    let r = decode(input, |k, v| {
        let v = match v {
            Val::Borrowed(s) => s.to_string(),
            Val::Owned(s) => s,
        };
        out.push((k.to_string(), v));
    });
    (out, r)
}

fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn documented_example_using_the_line() {
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      timestamp: time\n      app:\n      duration:\n      unknown:\n",
        &[],
        DOC_LINE,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("timestamp"), s("2012-11-01T22:08:41+00:00"));
    assert_eq!(ex.get("app"), s("loki"));
    assert_eq!(ex.get("duration"), s("125"));
    assert_eq!(ex.get("unknown"), None);
    assert_eq!(ex.len(), 3);
}

#[test]
fn documented_example_using_extracted_data() {
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      extra:\n- logfmt:\n    mapping:\n      user:\n    source: extra\n",
        &[],
        DOC_LINE,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("extra"), s("user=foo"));
    assert_eq!(pe.extracted.get("user"), s("foo"));
    assert_eq!(pe.extracted.len(), 2);
}

#[test]
fn promtail_test_line_keeps_values_before_a_syntax_error() {
    // Promtail's test line: a tab separator, and a stray quote at the end (a syntax error
    // after every mapped key was read).
    let line = "\n\t\ttime=2012-11-01T22:08:41+00:00 app=loki\tlevel=WARN duration=125 message=\"this is a log line\" extra=\"user=foo\"\"\n\t";
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      out:  message\n      app:\n      duration:\n      unknown:\n",
        &[],
        line,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("out"), s("this is a log line"));
    assert_eq!(ex.get("app"), s("loki"));
    assert_eq!(ex.get("duration"), s("125"));
    assert_eq!(ex.len(), 3);
}

#[test]
fn decoder_follows_go_logfmt() {
    assert_eq!(
        pairs("a=1 b c= d=\"x y\" e=\"q\\\"uo\\\\te\\n\\u00e9\"  f=\"\""),
        (
            kv(&[
                ("a", "1"),
                ("b", ""),
                ("c", ""),
                ("d", "x y"),
                ("e", "q\"uo\\te\né"),
                ("f", "")
            ]),
            Ok(())
        )
    );
    // Records on several lines are all scanned; `\r\n` works.
    assert_eq!(
        pairs("a=1\r\nb=2\n\nc=3"),
        (kv(&[("a", "1"), ("b", "2"), ("c", "3")]), Ok(()))
    );
    // A quoted value may be followed directly by the next key.
    assert_eq!(pairs("a=\"x\"b=2"), (kv(&[("a", "x"), ("b", "2")]), Ok(())));
    // Surrogate pairs, lone surrogates.
    assert_eq!(
        pairs(r#"a="\ud83d\ude00" b="\ud83d""#),
        (kv(&[("a", "😀"), ("b", "\u{fffd}")]), Ok(())),
    );
}

#[test]
fn decoder_errors_stop_the_scan() {
    for (input, before, err) in [
        ("a=1 =2 b=3", &[("a", "1")][..], "unexpected '='"),
        ("a=1 b\"c=2", &[("a", "1")][..], "unexpected '\"'"),
        ("a=b=c d=1", &[][..], "unexpected byte in value"),
        ("a=x\"y", &[][..], "unexpected byte in value"),
        (
            "a=1 b=\"open",
            &[("a", "1")][..],
            "unterminated quoted value",
        ),
        (
            "a=1 b=\"bad\\x\"",
            &[("a", "1")][..],
            "invalid quoted value",
        ),
        (
            "a=1\nb=\"x\nc=3",
            &[("a", "1")][..],
            "unterminated quoted value",
        ),
        ("k\u{fffd}=1", &[][..], "invalid key"),
    ] {
        assert_eq!(pairs(input), (kv(before), Err(err)), "{input:?}");
    }
    let long = format!("a=1\nb={}", "x".repeat(70_000));
    assert_eq!(
        pairs(&long),
        (kv(&[("a", "1")]), Err("bufio.Scanner: token too long"))
    );
}

#[test]
fn last_occurrence_wins_and_values_are_strings() {
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      level:\n      n:\n",
        &[],
        "level=info n=1.50 level=warn",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("level"), s("warn"));
    assert_eq!(pe.extracted.get("n"), s("1.50"));
}

#[test]
fn source_missing_or_null_is_a_no_op() {
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      a:\n    source: nothing\n",
        &[],
        "a=1",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), None);
    let pe = run_stages(
        "- json:\n    expressions:\n      x:\n- logfmt:\n    mapping:\n      a:\n    source: x\n",
        &[],
        r#"{"x":null}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), None);
}

#[test]
fn labels_and_output_from_logfmt() {
    let mut p = pipeline(
        "- logfmt:\n    mapping:\n      level:\n      msg:\n- labels:\n    level:\n- output:\n    source: msg\n",
    );
    let input = bytes::Bytes::from_static(b"level=error msg=boom");
    let out = run_entry(&mut p, entry_with(&[("job", "j")], input.clone()));
    assert_eq!(line(&out[0]), "boom");
    // The value shares the line's buffer.
    assert_eq!(out[0].line.as_ptr(), input[16..].as_ptr());
    assert_labels(&out[0], &[("job", "j"), ("level", "error")]);
}

#[test]
fn two_keys_for_one_logfmt_key_keep_the_last() {
    let pe = run_stages(
        "- logfmt:\n    mapping:\n      x: level\n      y: level\n",
        &[],
        "level=info",
    )
    .unwrap();
    assert_eq!(pe.extracted.get("x"), None);
    assert_eq!(pe.extracted.get("y"), s("info"));
}

#[test]
fn config_errors() {
    for (yaml, want) in [
        ("- logfmt:", "logfmt mapping is required"),
        ("- logfmt: {mapping: {}}", "logfmt mapping is required"),
        ("- logfmt: {mapping: {a: }, source: ''}", "empty source"),
        (
            "- logfmt: {mapping: {a: 1}}",
            "'mapping[a]' expected type 'string', got unconvertible type 'int', value: '1'",
        ),
    ] {
        assert_eq!(
            pipeline_err(yaml),
            format!("p[0].logfmt: invalid logfmt stage config: {want}"),
            "{yaml}"
        );
    }
}
