//! `-config.expand-env` semantics (drone/envsubst).

use crate::config::{ExpandErrorKind, expand_env};

fn env(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("loki.example".into()),
        "PATH_V" => Some("/var/log/app/x.log".into()),
        "WORD" => Some("hello".into()),
        "MIXED" => Some("hELLO".into()),
        "EMPTY" => Some(String::new()),
        "PORT" => Some("3100".into()),
        _ => None,
    }
}

fn ok(text: &str) -> String {
    expand_env(text, env).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ExpandErrorKind {
    match expand_env(text, env) {
        Ok(v) => panic!("{text:?} expanded to {v:?} but should fail"),
        Err(e) => e.kind,
    }
}

#[test]
fn plain_references() {
    assert_eq!(
        ok("url: http://${HOST}:${PORT}/push"),
        "url: http://loki.example:3100/push"
    );
    assert_eq!(ok("a: ${UNSET}|${EMPTY}|"), "a: ||");
    assert_eq!(ok("bare $HOST stays"), "bare $HOST stays");
    assert_eq!(ok("price: 5$"), "price: 5$");
    assert_eq!(ok("no refs at all\n"), "no refs at all\n");
    assert_eq!(ok("${HOST}${PORT}"), "loki.example3100");
}

#[test]
fn defaults() {
    for op in [":-", ":=", "=", ":?", ":+"] {
        assert_eq!(ok(&format!("${{UNSET{op}dflt}}")), "dflt", "{op}");
        assert_eq!(ok(&format!("${{EMPTY{op}dflt}}")), "dflt", "{op}");
        assert_eq!(ok(&format!("${{WORD{op}dflt}}")), "hello", "{op}");
    }
    assert_eq!(
        ok("${UNSET:-http://${HOST}:${PORT}}"),
        "http://loki.example:3100"
    );
    assert_eq!(ok("${UNSET:-}"), "");
    assert_eq!(ok("${UNSET:-a b/c}"), "a b/c");
    assert_eq!(ok("${UNSET:-x}}"), "x}");
    assert_eq!(ok("${UNSET:-$$}"), "$$", "no escapes inside a default");
}

#[test]
fn escapes() {
    assert_eq!(ok("$$"), "$");
    assert_eq!(ok("$${HOST}"), "${HOST}");
    assert_eq!(ok("$$$${HOST}"), "$${HOST}");
    assert_eq!(ok("$$${HOST}"), "$loki.example");
    assert_eq!(ok(r"regex: '\\d+\\.\\d+'"), r"regex: '\d+\.\d+'");
    assert_eq!(ok(r"a\/b"), "a/b");
    assert_eq!(ok(r"keep \d and \n"), r"keep \d and \n");
    assert_eq!(ok(r"\\${HOST}"), r"\loki.example");
    assert_eq!(ok("end\\"), "end\\");
}

#[test]
fn string_functions() {
    assert_eq!(ok("${#WORD}"), "5");
    assert_eq!(ok("${#UNSET}"), "0");
    assert_eq!(ok("${WORD^}"), "Hello");
    assert_eq!(ok("${WORD^^}"), "HELLO");
    assert_eq!(ok("${MIXED,}"), "hELLO");
    assert_eq!(ok("${MIXED,,}"), "hello");
    assert_eq!(ok("${WORD,^}"), "hello", "mixed case ops leave the value");
    assert_eq!(ok("${WORD:1}"), "ello");
    assert_eq!(ok("${WORD:1:3}"), "ell");
    assert_eq!(ok("${WORD:1:30}"), "ello");
    assert_eq!(ok("${WORD:9}"), "");
    assert_eq!(
        ok("${WORD: -2}"),
        "hello",
        "unparsable offset leaves the value"
    );
    assert_eq!(ok("${WORD:x}"), "hello");
    assert_eq!(ok("${PATH_V#*/}"), "var/log/app/x.log");
    assert_eq!(ok("${PATH_V##*/}"), "x.log");
    assert_eq!(ok("${PATH_V%/*}"), "/var/log/app");
    assert_eq!(ok("${PATH_V%%/*}"), "");
    assert_eq!(ok("${PATH_V%.log}"), "/var/log/app/x");
    assert_eq!(ok("${WORD#h?l}"), "lo");
    assert_eq!(ok("${WORD#[a-h]}"), "ello");
    assert_eq!(ok("${WORD#[^h]}"), "hello");
    assert_eq!(ok("${WORD/l/L}"), "heLlo");
    assert_eq!(ok("${WORD//l/L}"), "heLLo");
    assert_eq!(ok("${WORD/l/}"), "helo");
    assert_eq!(ok("${WORD/#he/HE}"), "HEllo");
    assert_eq!(ok("${WORD/#x/X}"), "hello");
    assert_eq!(ok("${WORD/%lo/LO}"), "helLO");
    assert_eq!(ok(r"${PATH_V//\//_}"), "_var_log_app_x.log");
}

#[test]
fn errors() {
    assert_eq!(err("${"), ExpandErrorKind::VariableName);
    assert_eq!(err("${}"), ExpandErrorKind::VariableName);
    assert_eq!(err("${ HOST}"), ExpandErrorKind::VariableName);
    assert_eq!(err("${HOST"), ExpandErrorKind::MissingClosingBrace);
    assert_eq!(err("${HOST-default}"), ExpandErrorKind::MissingClosingBrace);
    assert_eq!(err("${HOST+alt}"), ExpandErrorKind::MissingClosingBrace);
    assert_eq!(err("${HOST.x}"), ExpandErrorKind::MissingClosingBrace);
    assert_eq!(err("${HOST:-abc"), ExpandErrorKind::FunctionArgument);
    assert_eq!(err("${HOST:}"), ExpandErrorKind::FunctionArgument);
    assert_eq!(err("${HOST:"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${HOST:\u{e9}}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${HOST:1:2"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${#}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${#HOST"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${HOST^^^}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${HOST/a}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(err("${HOST#}"), ExpandErrorKind::FunctionArgument);
}

#[test]
fn errors_anywhere_and_with_line() {
    let e = expand_env("a: 1\n# a comment with ${ broken\nb: 2\n", env).unwrap_err();
    assert_eq!(e.kind, ExpandErrorKind::VariableName);
    assert_eq!(e.line, 2);
    assert_eq!(e.to_string(), "unable to parse variable name at line 2");
}

#[test]
fn whole_config() {
    let text = "clients:\n  - url: http://${HOST}:${PORT:-3100}/loki/api/v1/push\n    tenant_id: ${TENANT:-fake}\n\
                scrape_configs:\n  - job_name: x\n    pipeline_stages:\n      - regex:\n          expression: '^(?P<n>\\\\d+)$'\n";
    let out = ok(text);
    assert!(out.contains("url: http://loki.example:3100/loki/api/v1/push"));
    assert!(out.contains("tenant_id: fake"));
    assert!(out.contains(r"expression: '^(?P<n>\d+)$'"), "{out}");
}
