#![allow(clippy::unwrap_used)]

use super::*;
use crate::entry::LabelSet;
use crate::pipeline::extracted::Value as XValue;

fn render(src: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
    let t = GoTemplate::parse("t", src)?;
    let mut x = Extracted::new(LabelSet::default());
    for (k, v) in pairs {
        x.insert(Arc::from(*k), XValue::str(v));
    }
    t.render(&t.data(&x, &[]))
}

fn ok(src: &str, pairs: &[(&str, &str)]) -> String {
    render(src, pairs).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn go_template_language() {
    let d = [("app", "loki"), ("level", "WARN"), ("n", "5")];
    assert_eq!(ok("{{ .app }}", &d), "loki");
    assert_eq!(ok("{{ .missing }}", &d), "<no value>");
    assert_eq!(
        ok(r#"{{ if eq .app "loki" }}yes{{ else }}no{{ end }}"#, &d),
        "yes"
    );
    assert_eq!(ok("a {{- .app -}} b", &d), "alokib");
    assert_eq!(ok("{{ .level | ToLower }}", &d), "warn");
    assert_eq!(
        ok(r#"{{ printf "%s=%q" .app .level }}"#, &d),
        r#"loki="WARN""#
    );
    assert_eq!(ok("{{ with .app }}[{{ . }}]{{ end }}", &d), "[loki]");
    assert_eq!(ok("{{ $x := .app }}{{ $x }}-{{ $.n }}", &d), "loki-5");
    assert_eq!(ok(r#"{{ index . "app" }}"#, &d), "loki");
    assert_eq!(
        ok("{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", &d),
        "app=loki;level=WARN;n=5;"
    );
    assert_eq!(
        ok(
            r#"{{ if and (ne .app "x") (not (eq .n "4")) }}ok{{ end }}"#,
            &d
        ),
        "ok"
    );
    assert_eq!(ok("{{ len .app }}", &d), "4");
}

#[test]
fn only_named_fields_are_converted_unless_dot_is_used() {
    let t = GoTemplate::parse("t", "{{ .a }} {{ $.b }} {{ with .c }}{{ .d }}{{ end }}").unwrap();
    let fields: Vec<&str> = t
        .fields
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.as_ref())
        .collect();
    assert_eq!(fields, ["a", "b", "c", "d"]);
    assert!(
        GoTemplate::parse("t", "{{ index . \"a\" }}")
            .unwrap()
            .fields
            .is_none()
    );
    assert!(GoTemplate::parse("t", "{{ $ }}").unwrap().fields.is_none());
}

#[test]
fn unknown_and_unimplemented_functions_are_refused_at_parse() {
    assert_eq!(
        GoTemplate::parse("t", "{{ nosuch .a }}").unwrap_err(),
        r#"template: t: function "nosuch" not defined"#
    );
    assert_eq!(
        GoTemplate::parse("t", "{{ if .a }}{{ .a | dateModify \"1h\" }}{{ end }}").unwrap_err(),
        r#"template: t: function "dateModify" of sprig is not supported by ferrotail yet"#
    );
    let e = GoTemplate::parse("t", "{{ .a ").unwrap_err();
    assert!(e.contains("template: t:1"), "{e}");
}

#[test]
fn promtail_functions() {
    let d = [("v", "  Hello World  "), ("x", "a-b-c")];
    assert_eq!(ok("{{ ToUpper .v }}", &d), "  HELLO WORLD  ");
    assert_eq!(ok("{{ TrimSpace .v }}", &d), "Hello World");
    assert_eq!(ok(r#"{{ Replace .x "-" "+" 1 }}"#, &d), "a+b-c");
    assert_eq!(ok(r#"{{ Replace .x "-" "+" -1 }}"#, &d), "a+b+c");
    assert_eq!(ok(r#"{{ Trim .x "ac" }}"#, &d), "-b-");
    assert_eq!(ok(r#"{{ TrimLeft .x "a-" }}"#, &d), "b-c");
    assert_eq!(ok(r#"{{ TrimRight .x "c-" }}"#, &d), "a-b");
    assert_eq!(ok(r#"{{ TrimPrefix .x "a-" }}"#, &d), "b-c");
    assert_eq!(ok(r#"{{ TrimSuffix .x "-c" }}"#, &d), "a-b");
    // SHA3-256 and SHA-256 of the concatenation, in argument order.
    assert_eq!(
        ok(r#"{{ Hash "" "abc" }}"#, &d),
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
    assert_eq!(
        ok(r#"{{ Sha2Hash "a" "bc" }}"#, &d),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        ok(r#"{{ "bc" | Sha2Hash "a" }}"#, &d),
        ok(r#"{{ Sha2Hash "a" "bc" }}"#, &d)
    );
    assert_eq!(
        ok(r#"{{ regexReplaceAll "(\\w+)-(\\w+)" .x "${2}_$1" }}"#, &d),
        "b_a-c"
    );
    assert_eq!(
        ok(r#"{{ regexReplaceAllLiteral "-" .x "$1" }}"#, &d),
        "a$1b$1c"
    );
}

#[test]
fn string_functions_refuse_a_missing_value() {
    let e = render("{{ ToUpper .missing }}", &[]).unwrap_err();
    assert!(
        e.contains("ToUpper") && e.contains("expected string"),
        "{e}"
    );
    assert!(
        render("{{ ToUpper 3 }}", &[])
            .unwrap_err()
            .contains("expected string")
    );
    assert!(render(r#"{{ regexReplaceAll "(" "a" "b" }}"#, &[]).is_err());
}

#[test]
fn sprig_functions() {
    let d = [
        ("s", "Hello, World"),
        ("p", "/var/log/pods/app.log"),
        ("e", ""),
        ("n", "7"),
    ];
    for (src, want) in [
        ("{{ upper .s }}", "HELLO, WORLD"),
        ("{{ lower .s }}", "hello, world"),
        (r#"{{ title "hello big_world-x" }}"#, "Hello Big_world-X"),
        (r#"{{ trim "  x  " }}"#, "x"),
        (r#"{{ trimAll "$" "$5.00$" }}"#, "5.00"),
        (r#"{{ .s | trimPrefix "Hello, " }}"#, "World"),
        (r#"{{ trimSuffix "World" .s }}"#, "Hello, "),
        (r#"{{ contains "World" .s }}"#, "true"),
        (
            r#"{{ hasPrefix "Hell" .s }} {{ hasSuffix "x" .s }}"#,
            "true false",
        ),
        (r#"{{ replace "o" "0" .s }}"#, "Hell0, W0rld"),
        (r#"{{ repeat 3 "ab" }}"#, "ababab"),
        (r#"{{ nospace " a b\tc " }}"#, "abc"),
        (
            r#"{{ trunc 5 .s }}|{{ trunc -5 .s }}|{{ trunc 50 "ab" }}"#,
            "Hello|World|ab",
        ),
        (r#"{{ substr 0 5 .s }}|{{ substr 7 -1 .s }}"#, "Hello|World"),
        (
            r#"{{ quote .s "a\"b" }}|{{ squote .s }}"#,
            r#""Hello, World" "a\"b"|'Hello, World'"#,
        ),
        (r#"{{ cat "a" 1 .missing "b" }}"#, "a 1 b"),
        (r#"{{ indent 2 "a\nb" }}"#, "  a\n  b"),
        (
            r#"{{ plural "file" "files" 1 }} {{ plural "file" "files" 2 }}"#,
            "file files",
        ),
        (r#"{{ (split "," "a,b,c")._1 }}"#, "b"),
        (r#"{{ join "-" (splitList "," "a,b,c") }}"#, "a-b-c"),
        (r#"{{ index (splitList "/" .p) 3 }}"#, "pods"),
        (
            "{{ add .n 1 2 }} {{ add1 .n }} {{ sub .n 2 }} {{ mul .n 2 }} {{ div .n 2 }} {{ mod .n 4 }}",
            "10 8 5 14 3 3",
        ),
        (
            r#"{{ max 1 .n 3 }} {{ min 4 .n 3 }} {{ atoi "12" }} {{ int "x" }}"#,
            "7 3 12 0",
        ),
        (
            r#"{{ .e | default "none" }}|{{ .missing | default "none" }}|{{ .n | default "none" }}"#,
            "none|none|7",
        ),
        (
            r#"{{ empty .e }} {{ empty .n }} {{ coalesce .e .missing "z" }}"#,
            "true false z",
        ),
        (r#"{{ ternary "y" "n" (eq .n "7") }}"#, "y"),
        (
            r#"{{ b64enc "hi" }} {{ b64dec "aGk=" }} {{ b64dec "!!" }}"#,
            "aGk= hi illegal base64 data at input byte 0",
        ),
        (
            r#"{{ sha256sum "abc" }}"#,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            r#"{{ regexMatch "^H" .s }} {{ regexFind "[A-Z]\\w+" .s }} {{ regexFindAll "o" .s -1 }}"#,
            "true Hello [o o]",
        ),
        (
            r#"{{ regexSplit "[, ]+" .s -1 }} {{ regexQuoteMeta "a.b" }}"#,
            r"[Hello World] a\.b",
        ),
        (
            r#"{{ base .p }} {{ dir .p }} {{ ext .p }} {{ clean "a/../b" }}"#,
            "app.log /var/log/pods .log b",
        ),
        (
            r#"{{ first (list 1 2) }} {{ last (list 1 2) }} {{ get (dict "a" "b") "a" }} {{ hasKey (dict "a" 1) "b" }}"#,
            "1 2 b false",
        ),
        (r#"{{ toString 5 }}"#, "5"),
    ] {
        assert_eq!(ok(src, &d), want, "{src}");
    }
    assert!(
        render("{{ div 1 0 }}", &[])
            .unwrap_err()
            .contains("divide by zero")
    );
}

#[test]
fn text_built_from_a_count_is_bounded() {
    // Found by feeding hostile templates to the gotemplate fuzz target: `repeat` panicked
    // (capacity overflow) and `indent` aborted (allocation failure) on a huge count; a large one
    // took gigabytes per line.
    for src in [
        r#"{{ repeat 9223372036854775807 "ab" }}"#,
        r#"{{ repeat 1000000000 "x" }}"#,
        r#"{{ indent 9223372036854775807 "x" }}"#,
        r#"{{ nindent 9000000 "a\nb" }}"#,
    ] {
        let e = render(src, &[]).unwrap_err();
        assert!(
            e.contains("result longer than 16777216 bytes"),
            "{src}: {e}"
        );
    }
    assert_eq!(ok(r#"{{ nindent 1 "a" }}"#, &[]), "\n a");
    assert_eq!(ok(r#"{{ indent -1 "a" }}"#, &[]), "a");
    assert_eq!(ok(r#"{{ repeat 16777216 "x" | len }}"#, &[]), "16777216");
}

#[test]
fn a_render_is_bounded() {
    let e = render(r#"{{ range 100 }}{{ repeat 1000000 "x" }}{{ end }}"#, &[]).unwrap_err();
    assert_eq!(e, "template: t: output longer than 16777216 bytes");
    assert_eq!(ok(r#"{{ range 3 }}x{{ end }}"#, &[]), "xxx");
}
