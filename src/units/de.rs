//! Serde helpers that give ferrotail Promtail's (yaml.v2) reading of scalars.
//!
//! yaml.v2 is more forgiving than serde_yaml in three ways every config relies on:
//! - a string field takes any non-null scalar as its literal text (`tenant_id: 1` is `"1"`);
//! - booleans are YAML 1.1 (`yes`, `off`, `Y`, ...);
//! - a null scalar (`key:`, `~`, `null`) sets the field's zero value.
//!
//! Sections (structs, lists, maps) given as null keep their defaults instead (spec §2.4).
//!
//! All helpers read a scalar through `deserialize_option` + `deserialize_str`: serde_yaml then
//! hands over the scalar's source text unchanged (`0x1F` stays `0x1F`, `1.50` stays `1.50`).
//! Other modules use them with `#[serde(deserialize_with = "crate::units::de::bool11")]`; YAML
//! kept raw as a `serde_yaml::Value` (pipeline stages) goes through [`from_value`] so that the
//! helpers see text, as they do in a file.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deserializes raw YAML (e.g. one pipeline stage) into `T` with the same scalar reading as the
/// config file: the value is printed back to YAML text and parsed from that text.
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: &serde_yaml::Value,
) -> Result<T, serde_yaml::Error> {
    serde_yaml::from_str(&serde_yaml::to_string(value)?)
}

/// A scalar's text; `None` for a YAML null.
pub fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_option(OptScalarVisitor)
}

struct OptScalarVisitor;

impl<'de> Visitor<'de> for OptScalarVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(ScalarVisitor).map(Some)
    }
}

/// Accepts any scalar as text. serde_yaml calls `visit_str` with the source text; the numeric
/// and boolean arms serve other deserializers (e.g. a `serde_yaml::Value`).
struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Reads a scalar and parses its text with `parse`; null gives `on_null`. The parse runs inside
/// the visitor so that serde_yaml attaches the scalar's own line and column to an error.
pub fn parse_scalar<'de, D, T>(
    d: D,
    on_null: T,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Inner<T> {
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for Inner<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a scalar value")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
    }
    struct Outer<T> {
        on_null: T,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for Outer<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a scalar value")
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok(self.on_null)
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(self.on_null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            d.deserialize_str(Inner { parse: self.parse })
        }
    }
    d.deserialize_option(Outer { on_null, parse })
}

/// A scalar read as text (any scalar, its literal text), for map keys and list items.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(scalar(d)?.unwrap_or_default()))
    }
}

/// A string field: any scalar's text; null is `""`.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar(d)?.unwrap_or_default())
}

/// An optional string field: null and `""` are `None`.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar(d)?.filter(|s| !s.is_empty()))
}

/// Parses a YAML 1.1 boolean (`y|yes|true|on` and `n|no|false|off`, in the three usual cases).
pub fn parse_yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn bool_from<E: de::Error>(s: &str) -> Result<bool, E> {
    parse_yaml11_bool(s).ok_or_else(|| {
        E::custom(format!(
            "cannot parse {s:?} as a boolean (true/false, yes/no, on/off)"
        ))
    })
}

/// A boolean field with YAML 1.1 spellings; null is `false`.
pub fn bool11<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match scalar(d)? {
        None => Ok(false),
        Some(s) => bool_from(&s),
    }
}

/// An optional boolean field with YAML 1.1 spellings; null is `None`.
pub fn opt_bool11<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    scalar(d)?.map(|s| bool_from(&s)).transpose()
}

/// A section (struct, list or map) where null keeps the default.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `string -> string` map (labels, headers): keys and values take any scalar's text; null
/// values are `""`; a null map is empty. Duplicate keys are caught by the loader's first pass.
pub fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of strings")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Text(k)) = map.next_key()? {
                let Text(v) = map.next_value()?;
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    struct OptMap;
    impl<'de> Visitor<'de> for OptMap {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of strings")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(MapVisitor)
        }
    }
    d.deserialize_option(OptMap)
}

/// A list of strings whose items take any scalar's text; a null list is empty.
pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(opt_text_list(d)?.unwrap_or_default())
}

/// Like [`text_list`], but a missing or null list is `None` (Go's nil slice).
pub fn opt_text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct SeqVisitor;
    impl<'de> Visitor<'de> for SeqVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(s)) = seq.next_element()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    struct OptSeq;
    impl<'de> Visitor<'de> for OptSeq {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(SeqVisitor).map(Some)
        }
    }
    d.deserialize_option(OptSeq)
}

/// Implements `Deserialize` for a type parsed from a scalar's text by `parse`, with null mapped
/// to `on_null` (the Go zero value).
macro_rules! scalar_deserialize {
    ($ty:ty, $parse:expr, $on_null:expr) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::units::de::parse_scalar(d, $on_null, $parse)
            }
        }
    };
}
pub(crate) use scalar_deserialize;
