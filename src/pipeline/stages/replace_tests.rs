#![allow(clippy::unwrap_used)]

use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stages::testutil::*;

fn get(pe: &crate::pipeline::stage::PipelineEntry, key: &str) -> Option<String> {
    pe.extracted.get(key).map(|v| match v {
        ValueRef::Str(s) => s.to_string(),
        other => panic!("{key} is {other:?}"),
    })
}

const ACCESS: &str = r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#;

#[test]
fn documented_masking_example() {
    let mut p = pipeline("- replace:\n    expression: 'password (\\S+)'\n    replace: '****'\n");
    let out = run_one(
        &mut p,
        &[],
        "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password xyz!",
    );
    assert_eq!(
        line(&out),
        "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password ****"
    );
}

#[test]
fn documented_access_log_example_with_named_groups() {
    let yaml = r#"
- replace:
    expression: '^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\] "(?P<action>\S+)\s?(?P<path>\S+)?\s?(?P<protocol>\S+)?" (?P<status>\d{3}|-) (\d+|-)\s?"?(?P<referer>[^"]*)"?\s?"?(?P<useragent>[^"]*)?"?$'
    replace: '{{ if eq .Value "200" }}{{ Replace .Value "200" "HttpStatusOk" -1 }}{{ else }}{{ .Value | ToUpper }}{{ end }}'
"#;
    let pe = run_stages(yaml, &[], ACCESS).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&pe.entry.line),
        r#"11.11.11.11 - FRANK [25/JAN/2000:14:00:01 -0500] "GET /1986.JS HTTP/1.1" HttpStatusOk 932 "-" "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6""#
    );
    for (k, v) in [
        ("ip", "11.11.11.11"),
        ("identd", "-"),
        ("user", "FRANK"),
        ("timestamp", "25/JAN/2000:14:00:01 -0500"),
        ("action", "GET"),
        ("path", "/1986.JS"),
        ("protocol", "HTTP/1.1"),
        ("status", "HttpStatusOk"),
        ("referer", "-"),
        (
            "useragent",
            "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6",
        ),
    ] {
        assert_eq!(get(&pe, k).as_deref(), Some(v), "{k}");
    }
}

#[test]
fn documented_source_example_leaves_the_line() {
    let yaml = r#"
- json:
    expressions:
      level:
      msg:
- replace:
    expression: '\S+ - "POST (\S+) .*'
    source: msg
    replace: '/loki/api/v1/push'
"#;
    let input = r#"{"time":"2019-01-01T01:00:00.000000001Z", "level": "info", "msg": "11.11.11.11 - \"POST /loki/api/push/ HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0\""}"#;
    let pe = run_stages(yaml, &[], input).unwrap();
    assert_eq!(String::from_utf8_lossy(&pe.entry.line), input);
    assert_eq!(
        get(&pe, "msg").unwrap(),
        r#"11.11.11.11 - "POST /loki/api/v1/push HTTP/1.1" 200 932 "-" "Mozilla/5.0""#
    );
}

#[test]
fn every_match_and_every_group_outside_text_kept() {
    let mut p = pipeline(
        "- replace:\n    expression: '(\\d{2}.\\d{2}.\\d{2}.\\d{2}) - (\\S+)'\n    replace: '{{ ToUpper .Value }}x'\n",
    );
    let out = run_one(&mut p, &[], "11.11.11.11 - frank 12.12.12.12 - bob!");
    assert_eq!(line(&out), "11.11.11.11x - FRANKx 12.12.12.12x - BOB!x");
}

#[test]
fn empty_replacement_deletes_the_captured_text() {
    let mut p = pipeline("- replace:\n    expression: '11.11.11.11 - (\\S+\\s)'\n");
    let out = run_one(&mut p, &[], ACCESS);
    assert_eq!(line(&out), ACCESS.replacen("frank ", "", 1));
}

#[test]
fn nested_groups_are_replaced_once() {
    // The outer group replaces "ab"; the inner "b" starts inside it and is not written again,
    // but `inner` still gets its own replacement.
    let pe = run_stages(
        "- replace:\n    expression: '(?P<outer>a(?P<inner>b))c'\n    replace: '<{{ .Value }}>'\n",
        &[],
        "xabcx",
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&pe.entry.line), "x<ab>cx");
    assert_eq!(get(&pe, "outer").unwrap(), "<ab>");
    assert_eq!(get(&pe, "inner").unwrap(), "<b>");
}

#[test]
fn template_sees_the_extracted_values() {
    let pe = run_stages(
        "- replace:\n    expression: 'user=(\\S+)'\n    replace: '{{ .job }}:{{ Sha2Hash .Value \"salt\" | trunc 8 }}'\n",
        &[("job", "web")],
        "login user=alice ok",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&pe.entry.line),
        // sha256("alicesalt") = dd8028c8...
        "login user=web:dd8028c8 ok"
    );
}

#[test]
fn no_match_missing_source_and_template_errors_change_nothing() {
    for yaml in [
        "- replace:\n    expression: 'nomatch (\\S+)'\n    replace: 'x'\n",
        "- replace:\n    expression: '(\\S+)'\n    source: absent\n    replace: 'x'\n",
        "- replace:\n    expression: '(\\S+)'\n    replace: '{{ ToUpper .absent }}'\n",
    ] {
        let pe = run_stages(yaml, &[], "a line").unwrap();
        assert_eq!(String::from_utf8_lossy(&pe.entry.line), "a line", "{yaml}");
    }
}

#[test]
fn config_errors() {
    assert_eq!(
        pipeline_err("- replace:"),
        "p[0].replace: invalid replace stage config: empty replace stage configuration"
    );
    assert_eq!(
        pipeline_err("- replace: {replace: x}"),
        "p[0].replace: invalid replace stage config: expression is required"
    );
    assert_eq!(
        pipeline_err("- replace: {expression: '(a)', source: ''}"),
        "p[0].replace: invalid replace stage config: empty source in replace stage"
    );
    assert!(
        pipeline_err("- replace: {expression: '(a'}")
            .contains("could not compile regular expression")
    );
    assert!(
        pipeline_err("- replace: {expression: '(a)', replace: '{{ nosuch }}'}")
            .contains(r#"function "nosuch" not defined"#)
    );
}
