//! Tests of the `json` stage, from Promtail's documented examples, its stage tests and the
//! edge cases of spec §7.2.

use crate::pipeline::extracted::{Value, ValueRef};
use crate::pipeline::stages::testutil::*;

const LOG_LINE: &str = r#"
{
	"time":"2012-11-01T22:08:41+00:00",
	"app":"loki",
	"component": ["parser","type"],
	"level" : "WARN",
	"nested" : {"child":"value"},
    "duration" : 125,
	"message" : "this is a log line",
	"extra": "{\"user\":\"marco\"}"
}
"#;

const FIXTURE: &str = r#"
{
	"time":"2012-11-01T22:08:41+00:00",
	"app":"loki",
	"component": ["parser","type"],
	"level" : "WARN",
	"numeric": {
		"float": 12.34,
		"integer": 123,
		"string": "123"
	},
	"nested" : {"child":"value"},
	"message" : "this is a log line",
	"complex" : {
		"log" : {"array":[{"test1":"test2"},{"test3":"test4"}],"prop":"value","prop2":"val2"}
	}
}
"#;

fn s(v: &str) -> Option<ValueRef<'_>> {
    Some(ValueRef::Str(v))
}

#[test]
fn extracts_without_source() {
    let pe = run_stages(
        "- json:\n    expressions:\n      out: message\n      app:\n      nested:\n      duration:\n      unknown:\n",
        &[],
        LOG_LINE,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("out"), s("this is a log line"));
    assert_eq!(ex.get("app"), s("loki"));
    assert_eq!(ex.get("nested"), s(r#"{"child":"value"}"#));
    assert_eq!(ex.get("duration"), Some(ValueRef::Num(125.0)));
    // A path that matches nothing stores null (spec §12 #11).
    assert_eq!(ex.get("unknown"), Some(ValueRef::Null));
    assert_eq!(ex.len(), 5);
}

#[test]
fn second_stage_reads_a_source_key() {
    let pe = run_stages(
        "- json:\n    expressions:\n      extra:\n- json:\n    expressions:\n      user:\n    source: extra\n",
        &[],
        LOG_LINE,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("extra"), s(r#"{"user":"marco"}"#));
    assert_eq!(pe.extracted.get("user"), s("marco"));
}

#[test]
fn nested_paths_numbers_arrays_and_jmespath_indexing() {
    let yaml = "- json:\n    expressions:\n      time:\n      app:\n      component:\n      level:\n      float: numeric.float\n      integer: numeric.integer\n      string: numeric.string\n      nested:\n      message:\n      complex: complex.log.array[1].test3\n";
    let pe = run_stages(yaml, &[], FIXTURE).unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("time"), s("2012-11-01T22:08:41+00:00"));
    assert_eq!(ex.get("component"), s(r#"["parser","type"]"#));
    assert_eq!(ex.get("level"), s("WARN"));
    assert_eq!(ex.get("float"), Some(ValueRef::Num(12.34)));
    assert_eq!(ex.get("integer"), Some(ValueRef::Num(123.0)));
    assert_eq!(ex.get("string"), s("123"));
    assert_eq!(ex.get("nested"), s(r#"{"child":"value"}"#));
    assert_eq!(ex.get("message"), s("this is a log line"));
    assert_eq!(ex.get("complex"), s("test4"));
}

#[test]
fn same_results_with_and_without_the_fast_path() {
    // `@ == @` forces the general (DOM) path for the whole stage; results must not change.
    let simple = "- json:\n    expressions:\n      a: numeric.float\n      b: nested\n      c: component\n      d: missing.deeper\n      e: numeric\n";
    let general = format!("{simple}      force: '@ == @'\n");
    let fast = run_stages(simple, &[], FIXTURE).unwrap();
    let slow = run_stages(&general, &[], FIXTURE).unwrap();
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(fast.extracted.get(key), slow.extracted.get(key), "{key}");
    }
    assert_eq!(slow.extracted.get("force"), Some(ValueRef::Bool(true)));
    assert_eq!(
        fast.extracted.get("e"),
        s(r#"{"float":12.34,"integer":123,"string":"123"}"#)
    );
}

#[test]
fn source_key_edge_cases() {
    let yaml = "- json:\n    expressions:\n      app:\n    source: log\n";
    // Source from the extracted map (here: a seeded label).
    let pe = run_stages(yaml, &[("log", r#"{"app":"x"}"#)], "{}").unwrap();
    assert_eq!(pe.extracted.get("app"), s("x"));
    // Missing source: no-op, nothing extracted.
    let pe = run_stages(yaml, &[], FIXTURE).unwrap();
    assert_eq!(pe.extracted.get("app"), None);
    // A source that is not JSON: malformed, nothing extracted, entry kept.
    let pe = run_stages(yaml, &[("log", "not a json")], FIXTURE).unwrap();
    assert_eq!(pe.extracted.get("app"), None);
    // A null source is not malformed, even with drop_malformed.
    let drop_yaml = "- json:\n    expressions:\n      n:\n      app:\n- json:\n    expressions:\n      app:\n    source: n\n    drop_malformed: true\n";
    let pe = run_stages(drop_yaml, &[], r#"{"n":null}"#).unwrap();
    assert_eq!(pe.extracted.get("app"), Some(ValueRef::Null));
}

#[test]
fn drop_malformed() {
    let yaml = "- json:\n    drop_malformed: true\n    expressions:\n      page: page\n";
    assert!(
        run_stages(
            yaml,
            &[("foo", "bar")],
            r#"{"page": 1, "fruits": ["apple", "peach"]}"#
        )
        .is_some()
    );
    assert!(
        run_stages(
            yaml,
            &[("foo", "bar")],
            r#"{"page": 1, fruits": ["apple", "peach"]}"#
        )
        .is_none()
    );
    for not_an_object in ["[1,2]", "\"str\"", "12", "", "  ", "true"] {
        assert!(
            run_stages(yaml, &[], not_an_object).is_none(),
            "{not_an_object:?}"
        );
    }
    // Without drop_malformed the entry passes unchanged.
    let mut p = pipeline("- json:\n    expressions:\n      page:\n");
    assert_eq!(
        line(&run_one(&mut p, &[], "ts=now log=notjson")),
        "ts=now log=notjson"
    );
}

#[test]
fn null_document_is_an_empty_object() {
    let yaml = "- json:\n    drop_malformed: true\n    expressions:\n      a:\n      b: x.y\n";
    let pe = run_stages(yaml, &[], "null").unwrap();
    assert_eq!(pe.extracted.get("a"), Some(ValueRef::Null));
    assert_eq!(pe.extracted.get("b"), Some(ValueRef::Null));
}

#[test]
fn documented_examples() {
    let line = r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z","extra":"{\"user\":\"marco\"}"}"#;
    let pe = run_stages(
        "- json:\n    expressions:\n      output:    log\n      stream:    stream\n      timestamp: time\n      extra:\n- json:\n    expressions:\n      user:\n    source: extra\n",
        &[],
        line,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("output"), s("log message\n"));
    assert_eq!(ex.get("stream"), s("stderr"));
    assert_eq!(ex.get("timestamp"), s("2019-04-30T02:12:41.8443515Z"));
    assert_eq!(ex.get("extra"), s(r#"{"user":"marco"}"#));
    assert_eq!(ex.get("user"), s("marco"));
}

#[test]
fn quoted_identifiers_for_special_keys() {
    let line = r#"{"log":"log message\n","grpc.stream":"stderr","time":"2019-04-30T02:12:41.8443515Z","a-b":{"@c":1}}"#;
    let pe = run_stages(
        "- json:\n    expressions:\n      output: log\n      stream: '\"grpc.stream\"'\n      timestamp: time\n      c: '\"a-b\".\"@c\"'\n      unquoted: grpc.stream\n",
        &[],
        line,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("output"), s("log message\n"));
    assert_eq!(ex.get("stream"), s("stderr"));
    assert_eq!(ex.get("timestamp"), s("2019-04-30T02:12:41.8443515Z"));
    assert_eq!(ex.get("c"), Some(ValueRef::Num(1.0)));
    // Without quotes the key is a path `grpc` → `stream`, which does not exist.
    assert_eq!(ex.get("unquoted"), Some(ValueRef::Null));
}

#[test]
fn arrays_and_objects_become_go_json_strings() {
    let line = r#"{"a":[1,2.5,"x<y>&z",null,true,{"k":1e21}],"o":{"z":1,"a":{"b":[]}},"f":1e-7}"#;
    let pe = run_stages(
        "- json:\n    expressions:\n      a:\n      o:\n      f:\n",
        &[],
        line,
    )
    .unwrap();
    assert_eq!(
        pe.extracted.get("a"),
        s(r#"[1,2.5,"x\u003cy\u003e\u0026z",null,true,{"k":1e+21}]"#)
    );
    assert_eq!(pe.extracted.get("o"), s(r#"{"a":{"b":[]},"z":1}"#));
    // A number stays a number; turning it into a string never uses an exponent.
    assert_eq!(pe.extracted.get("f"), Some(ValueRef::Num(1e-7)));
    assert_eq!(
        ValueRef::Num(1e21).to_text().as_deref(),
        Some("1000000000000000000000")
    );
    let mut p = pipeline("- json:\n    expressions:\n      f:\n- labels:\n    f:\n");
    let out = run_one(&mut p, &[], r#"{"f":0.000001}"#);
    assert_labels(&out, &[("f", "0.000001")]);
}

#[test]
fn jmespath_functions_and_projections() {
    let line = r#"{"users":[{"name":"a","age":3},{"name":"b","age":5}],"msg":"Hello"}"#;
    let pe = run_stages(
        "- json:\n    expressions:\n      names: users[*].name\n      n: length(users)\n      oldest: max_by(users, &age).name\n      bad: abs(msg)\n",
        &[],
        line,
    )
    .unwrap();
    let ex = &pe.extracted;
    assert_eq!(ex.get("names"), s(r#"["a","b"]"#));
    assert_eq!(ex.get("n"), Some(ValueRef::Num(2.0)));
    assert_eq!(ex.get("oldest"), s("b"));
    // An evaluation error skips just that key.
    assert_eq!(ex.get("bad"), None);
}

#[test]
fn strings_from_the_line_share_its_bytes() {
    let mut p = pipeline("- json:\n    expressions:\n      m: message\n");
    let input = bytes::Bytes::from_static(br#"{"message":"hello","x":"a\"b"}"#);
    let mut pe = crate::pipeline::PipelineEntry::new(entry_with(&[], input.clone()));
    let mut released = Vec::new();
    let _ = p.stages[0].process(&mut pe, &mut released);
    match pe.extracted.get_value("m") {
        Some(Value::Str(t)) => assert_eq!(t.as_bytes().as_ptr(), input[12..].as_ptr()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_utf8_is_parsed_lossily() {
    let mut p = pipeline("- json:\n    expressions:\n      a:\n      b:\n- labels:\n    b:\n");
    let bytes = bytes::Bytes::from_static(b"{\"a\":\"x\xff\",\"b\":\"ok\"}");
    let out = run_entry(&mut p, entry_with(&[], bytes.clone()));
    assert_eq!(out.len(), 1);
    assert_labels(&out[0], &[("b", "ok")]);
    // The line itself is untouched.
    assert_eq!(out[0].line, bytes);
}

#[test]
fn escapes_in_values_and_keys() {
    let pe = run_stages(
        "- json:\n    expressions:\n      a:\n      uni:\n",
        &[],
        r#"{"a":"tab\there \u00e9 \ud83d\ude00","un\u0069":"é"}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), s("tab\there é 😀"));
    assert_eq!(pe.extracted.get("uni"), s("é"));
}

#[test]
fn duplicate_keys_last_wins() {
    let pe = run_stages(
        "- json:\n    expressions:\n      a:\n      b: o.x\n",
        &[],
        r#"{"a":1,"o":{"x":"first"},"a":"second","o":{"y":2}}"#,
    )
    .unwrap();
    assert_eq!(pe.extracted.get("a"), s("second"));
    assert_eq!(pe.extracted.get("b"), Some(ValueRef::Null));
}

#[test]
fn config_errors() {
    let invalid = |reason: &str| format!("p[0].json: invalid json stage config: {reason}");
    assert_eq!(
        pipeline_err("- json:"),
        invalid("JMES expression is required")
    );
    assert_eq!(
        pipeline_err("- json: {}"),
        invalid("JMES expression is required")
    );
    assert_eq!(
        pipeline_err("- json: {expressions: {a: b}, source: ''}"),
        invalid("empty source")
    );
    assert!(
        pipeline_err("- json: {expressions: {extr1: '3##@$#33'}}")
            .starts_with(&invalid("could not compile JMES expression: "))
    );
    // Strict types: a list where a string is expected.
    assert!(pipeline_err("- json: {expressions: {a: [b]}}").contains("expected type 'string'"));
    assert!(
        pipeline_err("- json: {expressions: {a: b}, drop_malformed: 'yes'}")
            .contains("expected type 'bool'")
    );
    assert!(pipeline_err("- json: [a]").contains("expected a map"));
}

/// JSON numbers and the text Promtail makes of them: Go parses them correctly rounded
/// (`strconv.ParseFloat`); `getString` writes the shortest decimal that reads back the same float
/// (`strconv.FormatFloat(f, 'f', -1, 64)`), never with an exponent; an object holding the number
/// is written back as JSON by json-iterator (`'e'` format below 1e-6 and from 1e21 on). The
/// expected strings are written out here, not computed by the code under test.
fn go_number_texts() -> Vec<(&'static str, String, &'static str)> {
    let zeros = |n: usize| "0".repeat(n);
    vec![
        ("1e-30", format!("0.{}1", zeros(29)), "1e-30"),
        ("1e21", "1000000000000000000000".into(), "1e+21"),
        (
            "12345678901234567890",
            "12345678901234567000".into(),
            "12345678901234567000",
        ),
        ("-1.5e-300", format!("-0.{}15", zeros(299)), "-1.5e-300"),
        // Past u64: serde_json reads it as a float, not as an integer.
        (
            "123456789012345678901234567890",
            "123456789012345680000000000000".into(),
            "1.2345678901234568e+29",
        ),
        ("0.1", "0.1".into(), "0.1"),
        ("-0", "-0".into(), "-0"),
        ("0.000001", "0.000001".into(), "0.000001"),
        ("5e-324", format!("0.{}5", zeros(323)), "5e-324"),
        (
            "2.2250738585072011e-308",
            format!("0.{}2225073858507201", zeros(307)),
            "2.225073858507201e-308",
        ),
        (
            "1.7976931348623157e308",
            format!("17976931348623157{}", zeros(292)),
            "1.7976931348623157e+308",
        ),
    ]
}

#[test]
fn numbers_are_parsed_exactly_and_formatted_like_go() {
    // All simple paths: the streaming fast path (`o` wanted whole and `o.num` inside it: that
    // object is parsed with serde_json). An array index in the same stage: the whole document is
    // parsed and every expression, the plain ones too, is evaluated on it.
    let fast = "- json:\n    expressions:\n      num:\n      deep: o.num\n      o:\n";
    let full = format!("{fast}      first_item: 'items[0]'\n");
    for (number, text, json) in go_number_texts() {
        let line = format!(r#"{{"items":[{number}],"num":{number},"o":{{"num":{number}}}}}"#);
        for (path, yaml, keys) in [
            ("fast", fast, &["num", "deep"][..]),
            ("full", &full, &["num", "deep", "first_item"][..]),
        ] {
            let pe = run_stages(yaml, &[], &line).unwrap();
            for key in keys {
                let got = pe.extracted.get(key).and_then(|v| v.to_text());
                assert_eq!(got.as_deref(), Some(text.as_str()), "{path} {key} {number}");
            }
            let object = format!(r#"{{"num":{json}}}"#);
            assert_eq!(pe.extracted.get("o"), s(&object), "{path} o {number}");
            // And as a label value, through the whole pipeline.
            let mut p = pipeline(&format!("{yaml}- labels:\n    num:\n"));
            let out = run_one(&mut p, &[], &line);
            assert_labels(&out, &[("num", &text)]);
        }
    }
}
