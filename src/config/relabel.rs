//! `relabel_configs` entries (Prometheus relabeling, spec §4.5): the YAML shape with its
//! defaults, regex compilation at load (a bad regex is a parse error, as in Promtail) and the
//! load-time validation rules.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de::{nullable, opt_text_list, parse_scalar, scalar_deserialize, text};

/// A relabel action (case-insensitive in YAML).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RelabelAction {
    /// `replace` (default)
    #[default]
    Replace,
    /// `keep`
    Keep,
    /// `drop`
    Drop,
    /// `keepequal`
    KeepEqual,
    /// `dropequal`
    DropEqual,
    /// `hashmod`
    HashMod,
    /// `labelmap`
    LabelMap,
    /// `labeldrop`
    LabelDrop,
    /// `labelkeep`
    LabelKeep,
    /// `lowercase`
    Lowercase,
    /// `uppercase`
    Uppercase,
}

impl RelabelAction {
    /// Parses an action name, ignoring case.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_lowercase().as_str() {
            "replace" => RelabelAction::Replace,
            "keep" => RelabelAction::Keep,
            "drop" => RelabelAction::Drop,
            "keepequal" => RelabelAction::KeepEqual,
            "dropequal" => RelabelAction::DropEqual,
            "hashmod" => RelabelAction::HashMod,
            "labelmap" => RelabelAction::LabelMap,
            "labeldrop" => RelabelAction::LabelDrop,
            "labelkeep" => RelabelAction::LabelKeep,
            "lowercase" => RelabelAction::Lowercase,
            "uppercase" => RelabelAction::Uppercase,
            _ => return Err(format!("unknown relabel action {s:?}")),
        })
    }

    /// The lowercase YAML name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for RelabelAction {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// A null action keeps the default, as in Promtail.
scalar_deserialize!(RelabelAction, RelabelAction::parse, RelabelAction::Replace);

impl Serialize for RelabelAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A relabel regex: the source text and its compiled, fully anchored form `^(?:<src>)$` (as
/// Promtail 3.4's Prometheus 2.55 anchors it: `.` does not match a newline).
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    compiled: regex::Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends, as Prometheus does.
    pub fn new(source: &str) -> Result<Self, String> {
        let compiled = regex::Regex::new(&format!("^(?:{source})$"))
            .map_err(|e| format!("error parsing regexp {source:?}: {e}"))?;
        Ok(RelabelRegex {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The regex as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The anchored, compiled regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.compiled
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Promtail reads a null regex as the empty regex.
        match parse_scalar(d, None, |s| RelabelRegex::new(s).map(Some))? {
            Some(r) => Ok(r),
            None => RelabelRegex::new("").map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// The default regex, `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default separator, `;`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default replacement, `$1`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One `relabel_configs` element.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelabelConfig {
    /// `source_labels`, default unset: label names whose values are joined by `separator`.
    #[serde(
        deserialize_with = "opt_text_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_labels: Option<Vec<String>>,
    /// `separator`, default `;`.
    #[serde(deserialize_with = "text")]
    pub separator: String,
    /// `regex`, default unset = `(.*)` (see [`RelabelConfig::regex`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<RelabelRegex>,
    /// `modulus`, default 0; required (> 0) for `hashmod`.
    #[serde(deserialize_with = "nullable")]
    pub modulus: u64,
    /// `target_label`, default `""`.
    #[serde(deserialize_with = "text")]
    pub target_label: String,
    /// `replacement`, default `$1`.
    #[serde(deserialize_with = "text")]
    pub replacement: String,
    /// `action`, default `replace`.
    pub action: RelabelAction,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: None,
            separator: DEFAULT_SEPARATOR.into(),
            regex: None,
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.into(),
            action: RelabelAction::Replace,
        }
    }
}

impl RelabelConfig {
    /// The effective regex (`(.*)` when unset).
    pub fn regex(&self) -> RelabelRegex {
        match &self.regex {
            Some(r) => r.clone(),
            // The default pattern is a constant that always compiles; build it directly.
            None => RelabelRegex {
                source: DEFAULT_REGEX.into(),
                compiled: default_regex(),
            },
        }
    }

    /// Prometheus' load-time relabel validation as Promtail 3.4 runs it: legacy label names
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`; Promtail 3.4 refuses `foo.bar`), a `target_label` with `$`
    /// references and a `labelmap` replacement made of name characters and references only.
    pub fn validate(&self) -> Result<(), String> {
        use crate::units::is_legacy_label_name as valid;
        use RelabelAction::*;
        let a = self.action;
        let target = &self.target_label;
        let invalid_target = || format!("{target:?} is invalid 'target_label' for {a} action");
        if a == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && self.target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        if a == Replace && !target.contains('$') && !valid(target)
            || a == Replace && target.contains('$') && !is_relabel_target(target)
            || matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
                && !valid(target)
        {
            return Err(invalid_target());
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !is_relabel_target(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                self.replacement
            ));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (self.regex.is_some()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (self.source_labels.is_some()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        if let Some(name) = self.source_labels.iter().flatten().find(|n| !valid(n)) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        Ok(())
    }
}

/// Prometheus' `relabelTarget`: label-name characters and `$n` / `${name}` references, at
/// least one, not starting with a digit (`\w` is ASCII in Go).
fn is_relabel_target(s: &str) -> bool {
    static TARGET: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    TARGET
        .get_or_init(|| {
            regex::Regex::new(
                r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$",
            )
            .expect("constant regex compiles")
        })
        .is_match(s)
}

fn default_regex() -> regex::Regex {
    static DEFAULT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| regex::Regex::new("^(?:(.*))$").expect("constant regex compiles"))
        .clone()
}
