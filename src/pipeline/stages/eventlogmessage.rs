//! `eventlogmessage`: extracts the `Key: value` lines of a Windows Event Log message
//! (spec §7.2).
//!
//! ```yaml
//! eventlogmessage:
//!   source: message             # default `message`; must be a valid legacy label name
//!   overwrite_existing: false   # false: a key already in the map gets `_extracted` appended
//!   drop_invalid_labels: false  # false: invalid keys are sanitised (invalid runes and a
//!                               # leading digit become `_`); true: such lines are skipped
//! ```
//!
//! The source value is split on `\r\n`; each line with a `:` gives
//! `extracted[key before the first ':'] = the rest, trimmed of white space`; lines without `:`
//! are skipped. A missing source key leaves the entry as it is. A source value that cannot be a
//! string (null) drops the entry, as in Promtail.
//!
//! Difference from Promtail: that drop is counted, as
//! `logentry_dropped_lines_total{reason="eventlogmessage_invalid_source"}` (Promtail drops the
//! entry without counting it; every loss is counted here).

use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Text, Value};
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::units::is_legacy_label_name;

/// The `eventlogmessage` stage.
pub struct EventLogMessageStage {
    source: String,
    overwrite_existing: bool,
    drop_invalid_labels: bool,
    dropped: DropCounter,
}

/// Prometheus' `SanitizeFullLabelName` as Promtail has it: every rune that is not
/// `[a-zA-Z0-9_]` (a digit only after the first rune) becomes `_`; empty becomes `_`.
pub fn sanitize_label_name(input: &str) -> String {
    if input.is_empty() {
        return "_".to_string();
    }
    input
        .char_indices()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() || c == '_' || (c.is_ascii_digit() && i > 0) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl EventLogMessageStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &["source", "overwrite_existing", "drop_invalid_labels"],
            &cx.path,
        )?;
        let source = f.string("source")?;
        if let Some(s) = &source
            && !is_legacy_label_name(s)
        {
            return Err(format!("invalid label name: {s}").into());
        }
        Ok(EventLogMessageStage {
            source: source.unwrap_or_else(|| "message".to_string()),
            overwrite_existing: f.boolean("overwrite_existing")?.unwrap_or(false),
            drop_invalid_labels: f.boolean("drop_invalid_labels")?.unwrap_or(false),
            dropped: cx.drop_counter("eventlogmessage_invalid_source"),
        })
    }
}

impl Stage for EventLogMessageStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let message = match pe.extracted.get_value(&self.source) {
            None => return Outcome::Keep,
            Some(Value::Str(t)) => t,
            Some(Value::Null) => return self.dropped.count(),
            Some(other) => match other.as_ref().to_text() {
                Some(s) => Text::from(s.into_owned()),
                None => return self.dropped.count(),
            },
        };
        let text = message.as_str();
        for line in text.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                tracing::debug!(line, "invalid line parsed from message");
                continue;
            };
            let mut key = if is_legacy_label_name(key) {
                key.to_string()
            } else if self.drop_invalid_labels {
                continue;
            } else {
                sanitize_label_name(key)
            };
            if !self.overwrite_existing && pe.extracted.contains(&key) {
                key.push_str("_extracted");
            }
            let value = Text::slice_of(message.bytes(), value.trim());
            pe.extracted.insert(Key::from(key), Value::Str(value));
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::sanitize_label_name;
    use crate::pipeline::extracted::ValueRef;
    use crate::pipeline::stages::testutil::*;

    fn s(v: &str) -> Option<ValueRef<'_>> {
        Some(ValueRef::Str(v))
    }

    #[test]
    fn documented_example() {
        let pe = run_stages(
            "- json:\n    expressions:\n      message:\n      Overwritten:\n- eventlogmessage:\n    source: message\n    overwrite_existing: true\n",
            &[],
            r#"{"event_id": 1, "Overwritten": "old", "message": "Message type:\r\nOverwritten: new\r\nImage: C:\\Users\\User\\promtail.exe"}"#,
        )
        .unwrap();
        let ex = &pe.extracted;
        assert_eq!(ex.get("Image"), s(r"C:\Users\User\promtail.exe"));
        assert_eq!(ex.get("Message_type"), s(""));
        assert_eq!(ex.get("Overwritten"), s("new"));
        assert_eq!(ex.len(), 4);
    }

    #[test]
    fn existing_keys_get_a_suffix_unless_overwritten() {
        let yaml =
            "- json:\n    expressions:\n      message:\n      Level:\n- eventlogmessage: {}\n";
        let pe = run_stages(
            yaml,
            &[],
            r#"{"Level":"old","message":"Level: new\r\nLevel: newer\r\nno colon here\r\nA: 1"}"#,
        )
        .unwrap();
        let ex = &pe.extracted;
        assert_eq!(ex.get("Level"), s("old"));
        // The second occurrence overwrites the first suffixed one.
        assert_eq!(ex.get("Level_extracted"), s("newer"));
        assert_eq!(ex.get("A"), s("1"));
        assert_eq!(ex.len(), 4);
    }

    #[test]
    fn invalid_keys_sanitised_or_dropped() {
        let line = r#"{"message":"1st key: a\r\nkey-2: b\r\n: c\r\nkeé: d\r\nok:  e:f  "}"#;
        let pe = run_stages(
            "- json:\n    expressions:\n      message:\n- eventlogmessage:\n",
            &[],
            line,
        )
        .unwrap();
        let ex = &pe.extracted;
        assert_eq!(ex.get("_st_key"), s("a"));
        assert_eq!(ex.get("key_2"), s("b"));
        assert_eq!(ex.get("_"), s("c"));
        assert_eq!(ex.get("ke_"), s("d"));
        assert_eq!(ex.get("ok"), s("e:f"));
        let pe = run_stages(
            "- json:\n    expressions:\n      message:\n- eventlogmessage:\n    drop_invalid_labels: true\n",
            &[],
            line,
        )
        .unwrap();
        let keys: Vec<_> = pe.extracted.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["message", "ok"]);
        assert_eq!(sanitize_label_name(""), "_");
        assert_eq!(sanitize_label_name("a1"), "a1");
    }

    #[test]
    fn source_missing_keeps_null_drops_counted() {
        let (mut p, metrics) = pipeline_and_metrics(
            "- json:\n    expressions:\n      msg:\n- eventlogmessage:\n    source: msg\n",
        );
        let dropped = || {
            metrics
                .logentry_dropped_lines
                .with_label_values(&["eventlogmessage_invalid_source"])
                .get()
        };
        // Not JSON: `msg` is never set, the entry is kept.
        assert_eq!(line(&run_one(&mut p, &[], "plain")), "plain");
        // A JSON number is stringified.
        let out = run_one(&mut p, &[], r#"{"msg":12}"#);
        assert_eq!(line(&out), r#"{"msg":12}"#);
        assert_eq!(dropped(), 0);
        // A path `json` does not find is null in the map: dropped (as Promtail), counted.
        for input in [r#"{"other":1}"#, r#"{"msg":null}"#] {
            let out = run_entry(&mut p, entry_with(&[], bytes::Bytes::from(input)));
            assert!(out.is_empty(), "{input}");
        }
        assert_eq!(dropped(), 2);
    }

    #[test]
    fn source_from_a_label_and_config_errors() {
        let pe = run_stages("- eventlogmessage:", &[("message", "A: 1\r\nB:2")], "x").unwrap();
        assert_eq!(pe.extracted.get("A"), s("1"));
        assert_eq!(pe.extracted.get("B"), s("2"));
        assert_eq!(
            pipeline_err("- eventlogmessage: {source: 'bad-name'}"),
            "p[0].eventlogmessage: invalid eventlogmessage stage config: invalid label name: bad-name"
        );
        assert!(
            pipeline_err("- eventlogmessage: {overwrite_existing: 'yes'}")
                .contains("'overwrite_existing' expected type 'bool'")
        );
    }
}
