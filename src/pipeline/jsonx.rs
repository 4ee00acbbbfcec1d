//! JSON helpers for the `json` stage: a DOM-free fast path for simple paths, a DOM for the
//! general JMESPath case, and Go-compatible re-serialisation of arrays and objects.
//!
//! Fast path: when every expression is a chain of identifiers (`level`, `data.user.name`,
//! `'"grpc.stream"'`), the expressions are merged into a trie and the document is *streamed*
//! with serde_json: keys no expression wants are skipped without building anything, strings
//! without escapes become slices of the input `Bytes` (no copy), and only a value that is itself
//! wanted as a whole array or object is built as a DOM (to re-serialise it). The whole document
//! is still validated, so "malformed" means the same in both paths.
//!
//! Semantics kept from Promtail (go-jmespath over `json.Unmarshal` into `map[string]any`):
//! numbers are `f64`; a duplicate key's last occurrence wins; a path that does not match stores
//! null; the top level must be an object or `null` (treated as an empty object); arrays and
//! objects become compact JSON with `<`, `>`, `&` escaped as `\u003c`, `\u003e`, `\u0026` and
//! Go's float format (`1e+21`, `1e-07`). Object keys come out sorted (Go's order is random).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use jmespath::{Rcvar, Variable};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::extracted::{Text, Value, write_go_float, write_go_float_exp};

/// The input is not a JSON object (or `null`).
#[derive(Debug)]
pub struct Malformed;

/// A JMESPath expression that is a plain chain of identifiers, as its path segments.
pub fn simple_path(expr: &str) -> Option<Vec<String>> {
    let mut segs = Vec::new();
    let mut rest = expr;
    loop {
        if let Some(after) = rest.strip_prefix('"') {
            // A quoted identifier is a JSON string; find its closing quote.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end?;
            let seg: String = serde_json::from_str(&rest[..end + 2]).ok()?;
            segs.push(seg);
            rest = &after[end + 1..];
        } else {
            let n = rest
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            if n == 0 || rest.as_bytes()[0].is_ascii_digit() {
                return None;
            }
            segs.push(rest[..n].to_string());
            rest = &rest[n..];
        }
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Some(segs),
            None => return None,
        }
    }
}

/// A trie of simple paths; `targets` are the result slots of the paths that end here.
#[derive(Debug, Default)]
pub struct PathTrie {
    pub(crate) name: String,
    pub(crate) targets: Vec<usize>,
    pub(crate) children: Vec<PathTrie>,
}

impl PathTrie {
    /// Adds `path`, whose result goes to slot `target`.
    pub fn insert(&mut self, path: &[String], target: usize) {
        let Some((first, rest)) = path.split_first() else {
            self.targets.push(target);
            return;
        };
        let child = match self.children.iter().position(|c| &c.name == first) {
            Some(i) => &mut self.children[i],
            None => {
                self.children.push(PathTrie {
                    name: first.clone(),
                    ..PathTrie::default()
                });
                let last = self.children.len() - 1;
                &mut self.children[last]
            }
        };
        child.insert(rest, target);
    }

    pub(crate) fn child(&self, key: &[u8]) -> Option<&PathTrie> {
        self.children.iter().find(|c| c.name.as_bytes() == key)
    }

    pub(crate) fn set(&self, out: &mut [Option<Value>], v: Value) {
        if let Some((&last, rest)) = self.targets.split_last() {
            for &t in rest {
                out[t] = Some(v.clone());
            }
            out[last] = Some(v);
        }
    }

    /// Resets every slot of this subtree to null (a later duplicate key replaces an earlier one).
    pub(crate) fn reset(&self, out: &mut [Option<Value>]) {
        for &t in &self.targets {
            out[t] = Some(Value::Null);
        }
        for c in &self.children {
            c.reset(out);
        }
    }

    /// Fills this subtree's slots from an already built value.
    pub(crate) fn fill_from(&self, v: &Variable, out: &mut [Option<Value>]) {
        if !self.targets.is_empty() {
            self.set(out, variable_to_value(v));
        }
        for c in &self.children {
            match v.as_object().and_then(|o| o.get(&c.name)) {
                Some(cv) => c.fill_from(cv, out),
                None => c.reset(out),
            }
        }
    }
}

/// Builds a JMESPath [`Variable`] with every number as `f64` (what Go's decoder produces).
#[derive(Clone, Copy)]
pub struct GoVar;

impl<'de> DeserializeSeed<'de> for GoVar {
    type Value = Variable;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Variable, D::Error> {
        d.deserialize_any(self)
    }
}

fn num(f: f64) -> Variable {
    Number::from_f64(f).map_or(Variable::Null, Variable::Number)
}

impl<'de> Visitor<'de> for GoVar {
    type Value = Variable;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Variable, E> {
        Ok(Variable::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Variable, E> {
        Ok(num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Variable, E> {
        Ok(num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Variable, E> {
        Ok(num(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Variable, E> {
        Ok(Variable::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Variable, E> {
        Ok(Variable::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Variable, E> {
        Ok(Variable::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Variable, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(Rcvar::new(v));
        }
        Ok(Variable::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Variable, A::Error> {
        let mut obj = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            obj.insert(k, Rcvar::new(v)); // a later duplicate wins, as in Go
        }
        Ok(Variable::Object(obj))
    }
}

/// Parses a whole document for JMESPath: an object, or `null` (searched like an empty object).
pub fn parse_document(input: &[u8]) -> Result<Rcvar, Malformed> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let v = GoVar.deserialize(&mut de).map_err(|_| Malformed)?;
    de.end().map_err(|_| Malformed)?;
    match v {
        Variable::Object(_) | Variable::Null => Ok(Rcvar::new(v)),
        _ => Err(Malformed),
    }
}

/// The extracted value of a JMESPath result.
pub fn variable_to_value(v: &Variable) -> Value {
    match v {
        Variable::String(s) => Value::str(s),
        Variable::Number(n) => n.as_f64().map_or(Value::Null, Value::Num),
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Null | Variable::Expref(_) => Value::Null,
        Variable::Array(_) | Variable::Object(_) => {
            let mut s = String::new();
            write_go_json(v, &mut s);
            Value::Str(Text::from(s))
        }
    }
}

/// Writes `v` as compact JSON the way Promtail's encoder (json-iterator, HTML escaping on) does.
pub fn write_go_json(v: &Variable, out: &mut String) {
    match v {
        Variable::Null | Variable::Expref(_) => out.push_str("null"),
        Variable::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Variable::Number(n) => write_go_json_float(n.as_f64().unwrap_or(0.0), out),
        Variable::String(s) => write_go_json_str(s, out),
        Variable::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Variable::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_str(k, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

/// Which of Go's two JSON encoders a writer spells like: Promtail's pipeline stages encode
/// with json-iterator, while go-gelf and Promtail's journal target use `encoding/json`. Both
/// escape HTML characters (`<`, `>`, `&`, U+2028, U+2029 as `\u003c`...); they differ in two
/// details only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoEncoder {
    /// json-iterator: `\b` and `\f` as `\u0008`, `\u000c`; exponents with two digits
    /// (`1e-07`).
    JsonIterator,
    /// `encoding/json`: `\b` and `\f` short; a negative exponent without its leading zero
    /// (`1e-7`, but `1e+21`).
    Std,
}

/// json-iterator's float encoding: Go's `'f'` format, or `'e'` (`1e+21`, `1.5e-07`) below 1e-6
/// and from 1e21 on.
pub fn write_go_json_float(f: f64, out: &mut String) {
    write_go_json_float_as(f, out, GoEncoder::JsonIterator);
}

/// A float as `enc` writes a float64: the shortest digits that read back the same,
/// positional from 1e-6 to below 1e21, else with an exponent.
pub fn write_go_json_float_as(f: f64, out: &mut String, enc: GoEncoder) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        write_go_float(f, out);
        return;
    }
    let start = out.len();
    write_go_float_exp(f, out);
    // encoding/json: "clean up e-09 to e-9".
    if enc == GoEncoder::Std
        && let Some(i) = out[start..].find("e-0")
    {
        out.remove(start + i + 2);
    }
}

/// A JSON string with json-iterator's HTML-safe escaping.
pub fn write_go_json_str(s: &str, out: &mut String) {
    out.push('"');
    write_go_json_str_body(s, out);
    out.push('"');
}

/// The escaped content of [`write_go_json_str`], without the quotes.
pub fn write_go_json_str_body(s: &str, out: &mut String) {
    write_go_str_body_as(s, out, GoEncoder::JsonIterator);
}

/// The escaped content of a JSON string as `enc` writes it, without the quotes.
pub fn write_go_str_body_as(s: &str, out: &mut String, enc: GoEncoder) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' if enc == GoEncoder::Std => out.push_str("\\b"),
            '\u{0c}' if enc == GoEncoder::Std => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The escaped content of a JSON string made from bytes, as Go writes a string holding them:
/// each byte that is not part of valid UTF-8 as `\ufffd`.
pub fn write_go_bytes_body_as(bytes: &[u8], out: &mut String, enc: GoEncoder) {
    for chunk in bytes.utf8_chunks() {
        write_go_str_body_as(chunk.valid(), out, enc);
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fast(doc: &str, paths: &[&str]) -> Result<Vec<Value>, Malformed> {
        let mut trie = PathTrie::default();
        for (i, p) in paths.iter().enumerate() {
            trie.insert(&simple_path(p).unwrap(), i);
        }
        let mut out = vec![None; paths.len()];
        crate::pipeline::jsonscan::extract_fast(
            &bytes::Bytes::copy_from_slice(doc.as_bytes()),
            &trie,
            &mut out,
        )?;
        Ok(out.into_iter().map(Option::unwrap).collect())
    }

    #[test]
    fn the_two_go_encoders_differ_in_short_escapes_and_exponents_only() {
        let text = "a<b>&\"\\\n\r\t\u{8}\u{c}\u{1}\u{2028}é";
        let (mut iter, mut std) = (String::new(), String::new());
        write_go_str_body_as(text, &mut iter, GoEncoder::JsonIterator);
        write_go_str_body_as(text, &mut std, GoEncoder::Std);
        assert_eq!(
            iter,
            r#"a\u003cb\u003e\u0026\"\\\n\r\t\u0008\u000c\u0001\u2028é"#
        );
        assert_eq!(std, r#"a\u003cb\u003e\u0026\"\\\n\r\t\b\f\u0001\u2028é"#);
        for (f, iter_form, std_form) in [
            (1e21, "1e+21", "1e+21"),
            (1.5e-7, "1.5e-07", "1.5e-7"),
            (-2e-300, "-2e-300", "-2e-300"),
            (1e-10, "1e-10", "1e-10"),
            (0.000001, "0.000001", "0.000001"),
            (123456.5, "123456.5", "123456.5"),
            (0.0, "0", "0"),
        ] {
            let (mut a, mut b) = (String::new(), String::new());
            write_go_json_float_as(f, &mut a, GoEncoder::JsonIterator);
            write_go_json_float_as(f, &mut b, GoEncoder::Std);
            assert_eq!((a.as_str(), b.as_str()), (iter_form, std_form), "{f}");
        }
        let mut bytes = String::new();
        write_go_bytes_body_as(b"ok\xff\xc3<", &mut bytes, GoEncoder::Std);
        assert_eq!(bytes, r#"ok\ufffd\ufffd\u003c"#);
    }

    #[test]
    fn simple_paths() {
        assert_eq!(simple_path("level").unwrap(), ["level"]);
        assert_eq!(simple_path("a.b_2.C").unwrap(), ["a", "b_2", "C"]);
        assert_eq!(simple_path(r#""grpc.stream""#).unwrap(), ["grpc.stream"]);
        assert_eq!(simple_path(r#"a."b\"c".d"#).unwrap(), ["a", "b\"c", "d"]);
        for not_simple in [
            "", "a.", ".a", "a[0]", "a..b", "1a", "a || b", "@", "a . b", "\"a",
        ] {
            assert!(simple_path(not_simple).is_none(), "{not_simple}");
        }
    }

    #[test]
    fn fast_path_extracts_like_jmespath() {
        let doc =
            r#"{"a":"x","n":{"b":1.5,"c":[1,{"d":"<&>"}],"e":null},"t":true,"dup":1,"dup":"2"}"#;
        let got = fast(
            doc,
            &[
                "a", "n.b", "n.c", "n.e", "t", "missing", "a.deeper", "dup", "n",
            ],
        )
        .unwrap();
        assert_eq!(got[0], Value::str("x"));
        assert_eq!(got[1], Value::Num(1.5));
        assert_eq!(got[2], Value::str(r#"[1,{"d":"\u003c\u0026\u003e"}]"#));
        assert_eq!(got[3], Value::Null);
        assert_eq!(got[4], Value::Bool(true));
        assert_eq!(got[5], Value::Null);
        assert_eq!(got[6], Value::Null);
        assert_eq!(got[7], Value::str("2"));
        assert_eq!(
            got[8],
            Value::str(r#"{"b":1.5,"c":[1,{"d":"\u003c\u0026\u003e"}],"e":null}"#)
        );
    }

    #[test]
    fn fast_path_object_and_child_both_wanted() {
        let got = fast(r#"{"n":{"b":"v"}}"#, &["n", "n.b"]).unwrap();
        assert_eq!(got, [Value::str(r#"{"b":"v"}"#), Value::str("v")]);
        // A later duplicate that is not an object clears the deeper paths.
        let got = fast(r#"{"n":{"b":"v"},"n":3}"#, &["n.b"]).unwrap();
        assert_eq!(got, [Value::Null]);
    }

    #[test]
    fn fast_path_malformed_and_null() {
        assert!(fast("[1]", &["a"]).is_err());
        assert!(fast("\"s\"", &["a"]).is_err());
        assert!(fast("", &["a"]).is_err());
        assert!(fast("{\"a\":1} x", &["a"]).is_err());
        assert!(fast("{\"a\":1,}", &["a"]).is_err());
        assert!(fast("{\"b\":[1,}", &["a"]).is_err());
        assert_eq!(fast("null", &["a"]).unwrap(), [Value::Null]);
        assert_eq!(fast(" {\"a\" : 7 } ", &["a"]).unwrap(), [Value::Num(7.0)]);
    }

    #[test]
    fn escaped_strings_and_keys() {
        let got = fast(
            r#"{"k\u0065y":"a\nb","grpc.stream":"s"}"#,
            &["key", "\"grpc.stream\""],
        )
        .unwrap();
        assert_eq!(got, [Value::str("a\nb"), Value::str("s")]);
    }

    #[test]
    fn go_float_in_json() {
        let mut s = String::new();
        for f in [1e21, 1e-7, 1.5e-7, 125.0, 0.5, 1e20, 0.0] {
            write_go_json_float(f, &mut s);
            s.push(' ');
        }
        assert_eq!(s, "1e+21 1e-07 1.5e-07 125 0.5 100000000000000000000 0 ");
    }

    #[test]
    fn document_parse_for_jmespath() {
        let doc = parse_document(br#"{"a":[1,2]}"#).unwrap();
        let e = jmespath::compile("a[1]").unwrap();
        let r = jmespath::interpret(
            &doc,
            e.as_ast(),
            &mut jmespath::Context::new(e.as_str(), &jmespath::DEFAULT_RUNTIME),
        )
        .unwrap();
        assert_eq!(variable_to_value(&r), Value::Num(2.0));
        assert!(parse_document(b"[1]").is_err());
        assert!(parse_document(b"null").is_ok());
    }
}
