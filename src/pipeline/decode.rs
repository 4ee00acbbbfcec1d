//! Decoding of stage bodies the way Promtail's `mapstructure` does it (spec §7.1).
//!
//! - Unknown keys are ignored, as in Promtail (configs with typos must keep loading), but each
//!   one is logged as a warning naming the stage and the key, so typos are visible.
//! - Keys match field names exactly or, failing that, ignoring ASCII case (mapstructure does).
//! - *Strict* decoding (most stages): a value must already have the field's type (a YAML list or
//!   a number where a string is expected is an error); `null` means "not set".
//! - *Weak* decoding (`drop`, `multiline`, `cri`, `limit`, `sampling`, `pack`): scalars convert
//!   between strings, numbers and booleans (`max_lines: "10"`, `longer_than: 8192`).
//!
//! Error texts imitate mapstructure's (`'source' expected type 'string', got unconvertible type
//! 'int', value: '1'`); the pipeline wraps them as `invalid <type> stage config: <err>`.

use serde_yaml::{Mapping, Value};

/// Go's name for the type of a YAML value as yaml.v2 decodes it (for error texts).
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Sequence(_) => "[]interface {}",
        Value::Mapping(_) => "map[interface {}]interface {}",
        Value::Tagged(t) => go_type(&t.value),
    }
}

/// A short rendering of a scalar for error texts.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(_) | Value::Mapping(_) => "...".to_string(),
        Value::Tagged(t) => show(&t.value),
    }
}

fn unconvertible(name: &str, want: &str, v: &Value) -> String {
    format!(
        "'{name}' expected type '{want}', got unconvertible type '{}', value: '{}'",
        go_type(v),
        show(v)
    )
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

/// Decodes a string strictly: only a YAML string is accepted; `null` is `None`.
pub fn string(name: &str, v: &Value) -> Result<Option<String>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(unconvertible(name, "string", other)),
    }
}

/// Decodes a string weakly: numbers and booleans are converted (`true` → `1`, as mapstructure).
pub fn weak_string(name: &str, v: &Value) -> Result<Option<String>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Bool(b) => Ok(Some(if *b { "1" } else { "0" }.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(unconvertible(name, "string", other)),
    }
}

/// Decodes a boolean strictly.
pub fn boolean(name: &str, v: &Value) -> Result<Option<bool>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(unconvertible(name, "bool", other)),
    }
}

/// Decodes a boolean weakly: numbers (non-zero is true) and Go's `strconv.ParseBool` strings.
pub fn weak_boolean(name: &str, v: &Value) -> Result<Option<bool>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) => Ok(Some(n.as_f64() != Some(0.0))),
        Value::String(s) if s.is_empty() => Ok(Some(false)),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
            _ => Err(format!("cannot parse '{name}' as bool: invalid syntax")),
        },
        other => Err(unconvertible(name, "bool", other)),
    }
}

/// Decodes an integer strictly.
pub fn integer(name: &str, v: &Value) -> Result<Option<i64>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64()),
        other => Err(unconvertible(name, "int", other)),
    }
}

/// Decodes an integer weakly: floats are truncated, strings parsed, booleans are 0/1.
pub fn weak_integer(name: &str, v: &Value) -> Result<Option<i64>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() => Ok(Some(f as i64)),
            _ => Err(unconvertible(name, "int", v)),
        },
        Value::Bool(b) => Ok(Some(i64::from(*b))),
        Value::String(s) if s.is_empty() => Ok(Some(0)),
        Value::String(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|e| format!("cannot parse '{name}' as int: {e}")),
        other => Err(unconvertible(name, "int", other)),
    }
}

/// Decodes a float weakly.
pub fn weak_float(name: &str, v: &Value) -> Result<Option<f64>, String> {
    match untag(v) {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::Bool(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
        Value::String(s) if s.is_empty() => Ok(Some(0.0)),
        Value::String(s) => s
            .parse::<f64>()
            .map(Some)
            .map_err(|e| format!("cannot parse '{name}' as float: {e}")),
        other => Err(unconvertible(name, "float64", other)),
    }
}

/// Decodes a list of strings strictly (`null` is an empty list).
pub fn string_list(name: &str, v: &Value) -> Result<Vec<String>, String> {
    match untag(v) {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(&format!("{name}[{i}]"), item).map(Option::unwrap_or_default))
            .collect(),
        other => Err(format!(
            "'{name}': source data must be an array or slice, got {}",
            go_type(other)
        )),
    }
}

/// Decodes a mapping of string to optional string strictly, in YAML order (`null` is empty).
pub fn string_map(name: &str, v: &Value) -> Result<Vec<(String, Option<String>)>, String> {
    match untag(v) {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, val)| {
                let key = match untag(k) {
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(unconvertible(
                            &format!("{name}[{}]", show(other)),
                            "string",
                            other,
                        ));
                    }
                };
                let value = string(&format!("{name}[{key}]"), val)?;
                Ok((key, value))
            })
            .collect(),
        other => Err(format!("'{name}' expected a map, got '{}'", go_type(other))),
    }
}

/// The fields of a stage body that is a mapping of named options.
pub struct Fields<'a> {
    map: Option<&'a Mapping>,
}

impl<'a> Fields<'a> {
    /// Checks that `body` is a mapping (or null: every field unset) and warns about every key
    /// that is not one of `known` (`path` names the stage in the warning).
    pub fn new(body: &'a Value, known: &[&str], path: &str) -> Result<Self, String> {
        let map = match untag(body) {
            Value::Null => None,
            Value::Mapping(m) => Some(m),
            other => {
                return Err(format!("'' expected a map, got '{}'", go_type(other)));
            }
        };
        for key in map.iter().flat_map(|m| m.keys()) {
            let name = match untag(key) {
                Value::String(s) => s.as_str(),
                other => {
                    return Err(format!(
                        "'' has invalid keys: {} (type {})",
                        show(other),
                        go_type(other)
                    ));
                }
            };
            if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                tracing::warn!(
                    stage = path,
                    key = name,
                    "Unknown key in pipeline stage config is ignored (as Promtail does); check for a typo."
                );
            }
        }
        Ok(Fields { map })
    }

    /// The value of field `name` (exact match first, then ignoring ASCII case); `None` if absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let map = self.map?;
        if let Some(v) = map.get(name) {
            return Some(v);
        }
        map.iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    }

    /// A strictly decoded string field.
    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        self.get(name).map_or(Ok(None), |v| string(name, v))
    }

    /// A strictly decoded boolean field.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, String> {
        self.get(name).map_or(Ok(None), |v| boolean(name, v))
    }

    /// A strictly decoded list-of-strings field.
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, String> {
        self.get(name)
            .map_or(Ok(Vec::new()), |v| string_list(name, v))
    }

    /// A strictly decoded string-to-string map field.
    pub fn string_map(&self, name: &str) -> Result<Vec<(String, Option<String>)>, String> {
        self.get(name)
            .map_or(Ok(Vec::new()), |v| string_map(name, v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn strict_rejects_other_types() {
        assert_eq!(string("s", &yaml("abc")).unwrap().as_deref(), Some("abc"));
        assert_eq!(string("s", &yaml("~")).unwrap(), None);
        let err = string("source", &yaml("1")).unwrap_err();
        assert_eq!(
            err,
            "'source' expected type 'string', got unconvertible type 'int', value: '1'"
        );
        assert!(string("s", &yaml("[a]")).is_err());
        assert!(boolean("b", &yaml("\"true\"")).is_err());
        assert_eq!(boolean("b", &yaml("true")).unwrap(), Some(true));
        assert!(integer("i", &yaml("\"10\"")).is_err());
        assert!(string_list("l", &yaml("a")).is_err());
        assert!(string_map("m", &yaml("{a: [1]}")).is_err());
    }

    #[test]
    fn weak_converts_scalars() {
        assert_eq!(weak_integer("i", &yaml("\"10\"")).unwrap(), Some(10));
        assert_eq!(weak_integer("i", &yaml("8192")).unwrap(), Some(8192));
        assert_eq!(weak_float("f", &yaml("\"0.5\"")).unwrap(), Some(0.5));
        assert_eq!(
            weak_string("s", &yaml("8192")).unwrap().as_deref(),
            Some("8192")
        );
        assert_eq!(weak_boolean("b", &yaml("\"true\"")).unwrap(), Some(true));
        assert_eq!(weak_boolean("b", &yaml("0")).unwrap(), Some(false));
        assert!(weak_integer("i", &yaml("abc")).is_err());
    }

    #[test]
    fn fields_match_case_insensitively_and_keep_yaml_order() {
        let body = yaml("{Source: x, expressions: {b: y, a: ~}}");
        let f = Fields::new(&body, &["source", "expressions"], "p").unwrap();
        assert_eq!(f.string("source").unwrap().as_deref(), Some("x"));
        assert_eq!(
            f.string_map("expressions").unwrap(),
            vec![
                ("b".to_string(), Some("y".to_string())),
                ("a".to_string(), None)
            ]
        );
        assert!(Fields::new(&yaml("[1]"), &[], "p").is_err());
        assert!(
            Fields::new(&yaml("~"), &[], "p")
                .unwrap()
                .get("x")
                .is_none()
        );
    }
}
