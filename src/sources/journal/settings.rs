//! The `journal` block (spec §10.1), checked as Promtail checks it at start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::units::GoDuration;
use crate::units::de::{bool11, text, text_map};

/// A validated `journal` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSettings {
    /// `json`: the line is every field as JSON rather than `MESSAGE`.
    pub json: bool,
    /// `max_age`, default 7h: how far back to start without a usable cursor.
    pub max_age: Duration,
    /// `path`: the journal directory (empty: journalctl's default journals).
    pub path: Option<PathBuf>,
    /// `matches`, as `FIELD=value` pairs.
    pub matches: Vec<(String, String)>,
    /// `labels`, added before relabeling.
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default, deserialize_with = "bool11")]
    json: bool,
    #[serde(default, deserialize_with = "text")]
    max_age: String,
    #[serde(default, deserialize_with = "text")]
    path: String,
    #[serde(default, deserialize_with = "text")]
    matches: String,
    #[serde(default, deserialize_with = "text_map")]
    labels: BTreeMap<String, String>,
}

/// Parses and checks one `journal` block.
pub fn settings_from_yaml(raw: &serde_yaml::Mapping) -> Result<JournalSettings, String> {
    let raw: Raw = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| e.to_string())?;
    let max_age = if raw.max_age.is_empty() {
        Duration::from_secs(7 * 3600)
    } else {
        let d = GoDuration::parse(&raw.max_age)
            .map_err(|e| format!("max_age: parsing journal reader 'max_age' config value: {e}"))?;
        if d.is_negative() {
            return Err(format!("max_age: {:?} is negative", raw.max_age));
        }
        d.as_std()
    };
    let mut matches = Vec::new();
    for token in raw.matches.split_whitespace() {
        let mut parts = token.split('=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(field), Some(value), None) if !field.is_empty() => {
                matches.push((field.to_string(), value.to_string()));
            }
            _ => {
                return Err(format!(
                    "matches: error parsing journal reader 'matches' config value: {token:?} is not FIELD=value"
                ));
            }
        }
    }
    if let Some(bad) = raw
        .labels
        .keys()
        .find(|k| !crate::units::is_legacy_label_name(k))
    {
        return Err(format!("labels: {bad:?} is not a valid label name"));
    }
    Ok(JournalSettings {
        json: raw.json,
        max_age,
        path: Some(PathBuf::from(&raw.path)).filter(|p| !p.as_os_str().is_empty()),
        matches,
        labels: raw.labels,
    })
}

/// Checks one `journal` block (validation at load).
pub fn check(raw: &serde_yaml::Mapping) -> Result<(), String> {
    settings_from_yaml(raw).map(|_| ())
}
