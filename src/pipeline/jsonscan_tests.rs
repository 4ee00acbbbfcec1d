//! Tests of the fast JSON scanner, including a differential property test against the
//! serde_json + JMESPath path that the `json` stage uses for general expressions.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::pipeline::jsonx::{parse_document, simple_path};
use crate::test_support::proptest_config;

/// The paths every document is searched for.
const PATHS: [&str; 8] = [
    "a",
    "b",
    "a.b",
    "c.d.e",
    r#""x y""#,
    "n",
    r#""k\"q".a"#,
    "c",
];

fn trie() -> PathTrie {
    let mut t = PathTrie::default();
    for (i, p) in PATHS.iter().enumerate() {
        t.insert(&simple_path(p).unwrap(), i);
    }
    t
}

fn fast(doc: &[u8]) -> Result<Vec<Value>, Malformed> {
    let mut out = vec![None; PATHS.len()];
    extract_fast(&Bytes::copy_from_slice(doc), &trie(), &mut out)?;
    Ok(out.into_iter().map(Option::unwrap).collect())
}

fn slow(doc: &[u8]) -> Result<Vec<Value>, Malformed> {
    let root = parse_document(doc)?;
    Ok(PATHS
        .iter()
        .map(|p| {
            let e = jmespath::compile(p).unwrap();
            let mut cx = jmespath::Context::new(e.as_str(), &jmespath::DEFAULT_RUNTIME);
            variable_to_value(&jmespath::interpret(&root, e.as_ast(), &mut cx).unwrap())
        })
        .collect())
}

use crate::pipeline::jsonx::variable_to_value;

#[test]
fn skip_plain_finds_the_first_stop() {
    let cases: &[(&[u8], usize)] = &[
        (b"", 0),
        (b"abc", 3),
        (b"abcdefghij\"", 10),
        (b"abcdefgh\\", 8),
        (b"abcdefghijklmnop\x01", 16),
        (b"\xff\xfe\x80abcdefg\"", 10),
        (b"a\"b\"", 1),
        (b"0123456\x1f", 7),
        (b"0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~\x7f", 42),
    ];
    for (buf, want) in cases {
        assert_eq!(skip_plain(buf, 0), *want, "{buf:?}");
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]
    #[test]
    fn skip_plain_matches_a_byte_loop(buf in proptest::collection::vec(any::<u8>(), 0..64), start in 0usize..8) {
        let start = start.min(buf.len());
        let naive = (start..buf.len())
            .find(|&i| STRING_STOPS[usize::from(buf[i])])
            .unwrap_or(buf.len());
        prop_assert_eq!(skip_plain(&buf, start), naive);
    }
}

#[test]
fn valid_and_invalid_documents() {
    let valid: &[&str] = &[
        "{}",
        " { } ",
        "null",
        "\n\t null \r\n",
        r#"{"a":1}"#,
        r#"{"z":[],"y":{},"x":[[]],"w":[{}],"v":[1,"2",true,false,null,{"q":[-0.5e-3]}]}"#,
        r#"{"s":"\"\\\/\b\f\n\r\t\u0041\uD83D\uDE00"}"#,
        r#"{"n":-0,"m":0.0,"o":1E+2,"p":1e-2,"q":123456789012345678901234567890}"#,
        "{\"\u{e9}\":\"\u{1F600}\"}",
    ];
    for doc in valid {
        assert!(fast(doc.as_bytes()).is_ok(), "refused {doc}");
        assert!(slow(doc.as_bytes()).is_ok(), "slow refused {doc}");
    }
    let invalid: &[&str] = &[
        "",
        " ",
        "[]",
        "1",
        "\"a\"",
        "true",
        "nul",
        "nullnull",
        "{",
        "}",
        "{}}",
        "{} {}",
        r#"{"a"}"#,
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        r#"{,"a":1}"#,
        r#"{"a":1 "b":2}"#,
        r#"{a:1}"#,
        r#"{'a':1}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":+1}"#,
        r#"{"a":-}"#,
        r#"{"a":1e400}"#,
        r#"{"z":1e400}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\u12G4"}"#,
        "{\"a\":\"tab\there\"}",
        "{\"z\":\"new\nline\"}",
        r#"{"a":[1,]}"#,
        r#"{"z":[1,]}"#,
        r#"{"z":[1 2]}"#,
        r#"{"z":{"a":1,}}"#,
        r#"{"z":{"a" 1}}"#,
        r#"{"z":tru}"#,
        r#"{"z":nulll}"#,
        r#"{"a":"unterminated}"#,
        r#"{"a":"\uD800"}"#,
        r#"{"a":"\uDC00\uD800"}"#,
        // Lone surrogates are refused even where skipped (found by the differential test).
        r#"{"z":"\uDE00"}"#,
        r#"{"z":"\uD83Dx"}"#,
        r#"{"z":"\uD83D\u0041"}"#,
        r#"{"a":1}/*c*/"#,
    ];
    for doc in invalid {
        assert!(fast(doc.as_bytes()).is_err(), "accepted {doc}");
        assert!(slow(doc.as_bytes()).is_err(), "slow accepted {doc}");
    }
    // Invalid UTF-8 is fine where it is skipped (Go does not check), refused where extracted.
    assert!(fast(b"{\"z\":\"\xff\"}").is_ok());
    assert!(fast(b"{\"a\":\"\xff\"}").is_err());
}

/// Both paths read a number as the float nearest to it (Go's `strconv.ParseFloat`); the expected
/// values are Rust literals, which the compiler rounds correctly. serde_json needs its
/// `float_roundtrip` feature for that: without it the oracle of the differential test below read
/// `1e-30` (a random draw that failed) as `9.999999999999999e-31`.
#[test]
// Each literal spells its text digit for digit, so that the compiler does the rounding.
#[allow(clippy::excessive_precision)]
fn numbers_are_correctly_rounded_on_both_paths() {
    let n = PATHS.iter().position(|p| *p == "n").unwrap();
    let cases: &[(&str, f64)] = &[
        ("1e-30", 1e-30),
        ("-1.5e-300", -1.5e-300),
        ("1e21", 1e21),
        ("12345678901234567890", 12345678901234567890.0),
        (
            "123456789012345678901234567890",
            123456789012345678901234567890.0,
        ),
        ("9007199254740993", 9007199254740993.0),
        ("0.1", 0.1),
        ("2.2250738585072011e-308", 2.2250738585072011e-308),
        ("2.4703282292062328e-324", 2.4703282292062328e-324),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("7.1e-10", 7.1e-10),
        // Exactly halfway between 1 and the next float (to even: 1), then just above it.
        (
            "1.00000000000000011102230246251565404236316680908203125",
            1.00000000000000011102230246251565404236316680908203125,
        ),
        (
            "1.00000000000000011102230246251565404236316680908203126",
            1.00000000000000011102230246251565404236316680908203126,
        ),
    ];
    for (text, want) in cases {
        let doc = format!(r#"{{"n":{text}}}"#);
        for (path, got) in [
            ("fast", fast(doc.as_bytes())),
            ("slow", slow(doc.as_bytes())),
        ] {
            match &got.unwrap()[n] {
                Value::Num(f) => assert_eq!(f.to_bits(), want.to_bits(), "{path} {text}"),
                other => panic!("{path} {text}: {other:?}"),
            }
        }
    }
}

#[test]
fn deep_nesting_is_skipped_without_recursion() {
    let depth = 100_000;
    let doc = format!("{{\"z\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    assert!(fast(doc.as_bytes()).is_ok());
    let unbalanced = format!("{{\"z\":{}{}}}", "[".repeat(depth), "]".repeat(depth - 1));
    assert!(fast(unbalanced.as_bytes()).is_err());
    // Mixed containers deeper than the inline stack.
    let mixed = format!("{{\"z\":{}1{}}}", "[{\"k\":".repeat(70), "}]".repeat(70));
    assert!(fast(mixed.as_bytes()).is_ok());
    let wrong = format!("{{\"z\":{}1{}}}", "[{\"k\":".repeat(70), "]}".repeat(70));
    assert!(fast(wrong.as_bytes()).is_err());
}

/// A JSON value for the generator.
#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("d".to_string()),
        Just("e".to_string()),
        Just("n".to_string()),
        Just("x y".to_string()),
        Just("k\"q".to_string()),
        "[a-z]{1,3}",
    ]
}

fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        prop_oneof![
            (-1000i64..1000).prop_map(|n| n.to_string()),
            (-1000i64..1000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
            (1i64..10, -20i32..20).prop_map(|(a, e)| format!("{a}e{e}")),
            // Long mantissas over the whole exponent range, subnormals included, where
            // rounding is hard (below 1e308: an overflow would make the whole document
            // malformed on both paths, and the unit tests cover it).
            ("-?[1-9][0-9]{0,24}", "(\\.[0-9]{1,24})?", -350i32..284)
                .prop_map(|(m, f, e)| format!("{m}{f}e{e}")),
        ]
        .prop_map(J::Num),
        "[a-z <>&\"\\\\/\t\n\u{e9}\u{1F600}]{0,8}".prop_map(J::Str),
    ]
}

fn value() -> impl Strategy<Value = J> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            proptest::collection::vec((key(), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// Writes `j` with whitespace chosen by `ws` and escapes chosen by `esc`.
fn space(out: &mut String, ws: &mut impl Iterator<Item = u8>) {
    match ws.next() {
        Some(0) => out.push(' '),
        Some(1) => out.push_str("\n\t"),
        _ => {}
    }
}

fn write(j: &J, out: &mut String, ws: &mut impl Iterator<Item = u8>) {
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => write_str(s, out, ws),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, ws);
                write(item, out, ws);
            }
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, ws);
                write_str(k, out, ws);
                space(out, ws);
                out.push(':');
                write(v, out, ws);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String, esc: &mut impl Iterator<Item = u8>) {
    out.push('"');
    for c in s.chars() {
        let unicode_escape = esc.next() == Some(2);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if unicode_escape => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn document() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((key(), value()), 0..6),
        proptest::collection::vec(0u8..4, 64),
    )
        .prop_map(|(fields, ws)| {
            let mut out = String::new();
            write(&J::Obj(fields), &mut out, &mut ws.into_iter().cycle());
            out
        })
}

/// A document, possibly damaged by one edit that keeps it ASCII-structural.
fn maybe_damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        document(),
        0usize..4,
        any::<prop::sample::Index>(),
        0usize..12,
    )
        .prop_map(|(doc, op, at, ch)| {
            let mut bytes = doc.into_bytes();
            let i = at.index(bytes.len() + 1);
            let c = b"{}[],:\"\\0-.e"[ch];
            match op {
                // Insert a structural character (only at a char boundary).
                0 if i == bytes.len() || (bytes[i] as i8) >= -0x40 => bytes.insert(i, c),
                // Delete an ASCII byte.
                1 if i < bytes.len() && bytes[i].is_ascii() => {
                    bytes.remove(i);
                }
                _ => {}
            }
            bytes
        })
}

proptest! {
    #![proptest_config(proptest_config(2000))]
    #[test]
    fn fast_path_agrees_with_serde_json_and_jmespath(doc in maybe_damaged()) {
        let f = fast(&doc);
        let s = slow(&doc);
        match (&f, &s) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", String::from_utf8_lossy(&doc)),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(
                false,
                "fast {:?} / slow {:?} for {}",
                f.as_ref().map(|_| "ok"),
                s.as_ref().map(|_| "ok"),
                String::from_utf8_lossy(&doc)
            ),
        }
    }
}
