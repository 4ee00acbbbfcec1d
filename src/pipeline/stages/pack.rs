//! `pack`: wraps the line and some extracted values into a JSON object for Loki's `| unpack`
//! (spec §7.2).
//!
//! ```yaml
//! pack:
//!   labels: [container, pod]   # keys of the extracted map (labels are there initially)
//!   ingest_timestamp: true     # default true: the timestamp becomes the time of packing
//! ```
//!
//! Decoding is weak, as Promtail's (`labels: pod` is a one-element list, numbers become
//! strings, `ingest_timestamp: "false"` works). The new line is
//! `{"container":"app","pod":"p1","_entry":"<line>"}`: the keys found (stringifiable values
//! only: null is skipped) sorted by name, then `_entry`, strings escaped like json-iterator's
//! (`<`, `>`, `&` as `\u003c`..., each invalid UTF-8 byte of the line as `\ufffd`). Every packed
//! key is removed from the stream labels, if it is one.

use bytes::Bytes;
use serde_yaml::Value as Yaml;

use crate::entry::Timestamp;
use crate::pipeline::decode::{self, Fields};
use crate::pipeline::extracted::ValueRef;
use crate::pipeline::jsonx::{GoEncoder, write_go_bytes_body_as, write_go_json_str};
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `pack` stage.
pub struct PackStage {
    /// The keys to pack, sorted, without duplicates.
    keys: Vec<String>,
    ingest_timestamp: bool,
    /// Which keys were found in the current entry.
    found: Vec<bool>,
    /// When set, the clock (tests); otherwise the wall clock.
    now: Option<fn() -> Timestamp>,
}

/// A weakly decoded list of strings: a single scalar is a one-element list.
fn weak_string_list(name: &str, v: &Yaml) -> Result<Vec<String>, String> {
    match v {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                decode::weak_string(&format!("{name}[{i}]"), item).map(Option::unwrap_or_default)
            })
            .collect(),
        Yaml::Tagged(t) => weak_string_list(name, &t.value),
        other => Ok(decode::weak_string(name, other)?.into_iter().collect()),
    }
}

impl PackStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["labels", "ingest_timestamp"], &cx.path)?;
        let mut keys = match f.get("labels") {
            Some(v) => weak_string_list("labels", v)?,
            None => Vec::new(),
        };
        keys.sort();
        keys.dedup();
        let ingest_timestamp = match f.get("ingest_timestamp") {
            Some(v) => decode::weak_boolean("ingest_timestamp", v)?.unwrap_or(true),
            None => true,
        };
        Ok(PackStage {
            found: vec![false; keys.len()],
            keys,
            ingest_timestamp,
            now: None,
        })
    }
}

impl Stage for PackStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let mut out = String::with_capacity(pe.entry.line.len() + 16 + self.keys.len() * 32);
        out.push('{');
        for (key, found) in self.keys.iter().zip(self.found.iter_mut()) {
            *found = false;
            // Strings are borrowed; numbers and booleans formatted; null skipped.
            let Some(text) = pe.extracted.get(key).and_then(ValueRef::to_text) else {
                continue;
            };
            *found = true;
            write_go_json_str(key, &mut out);
            out.push(':');
            write_go_json_str(&text, &mut out);
            out.push(',');
        }
        out.push_str("\"_entry\":\"");
        write_go_bytes_body_as(&pe.entry.line, &mut out, GoEncoder::JsonIterator);
        out.push_str("\"}");
        for (key, found) in self.keys.iter().zip(&self.found) {
            if *found {
                pe.entry.labels.remove(key);
            }
        }
        pe.entry.line = Bytes::from(out);
        if self.ingest_timestamp {
            pe.entry.timestamp = self.now.map_or_else(Timestamp::now, |now| now());
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::entry::Timestamp;
    use crate::pipeline::stages::testutil::*;

    fn packed(yaml: &str, labels: &[(&str, &str)], input: &str) -> crate::entry::Entry {
        let mut p = pipeline(yaml);
        run_one(&mut p, labels, input)
    }

    #[test]
    fn documented_example() {
        let before = Timestamp::now();
        let out = packed(
            "- pack:\n    labels:\n      - container\n",
            &[("container", "myapp"), ("job", "j")],
            "original log message",
        );
        assert_eq!(
            line(&out),
            r#"{"container":"myapp","_entry":"original log message"}"#
        );
        assert_labels(&out, &[("job", "j")]);
        // ingest_timestamp defaults to true: the time of packing.
        assert!(out.timestamp >= before && out.timestamp != READ_TIME);
        let out = packed(
            "- pack:\n    labels: [pod, container]\n",
            &[("container", "myapp"), ("pod", "pod-3223f")],
            "original log message",
        );
        assert_eq!(
            line(&out),
            r#"{"container":"myapp","pod":"pod-3223f","_entry":"original log message"}"#
        );
        assert_labels(&out, &[]);
    }

    #[test]
    fn promtail_cases() {
        // Extracted values (not labels) are packed and labels untouched; numbers stringified;
        // missing keys and nulls skipped; the line is escaped.
        let out = packed(
            "- json:\n    expressions:\n      extr1:\n      n:\n      z:\n- pack:\n    labels: [extr1, n, z, missing]\n    ingest_timestamp: false\n",
            &[("foo", "bar")],
            r#"{"extr1":"etr1val","n":1.5,"z":null}"#,
        );
        assert_eq!(
            line(&out),
            r#"{"extr1":"etr1val","n":"1.5","_entry":"{\"extr1\":\"etr1val\",\"n\":1.5,\"z\":null}"}"#
        );
        assert_labels(&out, &[("foo", "bar")]);
        assert_eq!(out.timestamp, READ_TIME);
        // Nothing found: only the entry.
        let out = packed("- pack:\n    labels: [x]\n", &[], "a<b>&\"c\"\n\u{2028}");
        assert_eq!(
            line(&out),
            r#"{"_entry":"a\u003cb\u003e\u0026\"c\"\n\u2028"}"#
        );
        // No labels at all is accepted.
        let out = packed("- pack: {}", &[("a", "1")], "m");
        assert_eq!(line(&out), r#"{"_entry":"m"}"#);
        assert_labels(&out, &[("a", "1")]);
    }

    #[test]
    fn a_label_added_later_is_not_in_the_extracted_map() {
        // Labels set by a stage are not mirrored into the extracted map (Promtail the same),
        // so `pack` finds them only under their extracted name.
        let out = packed(
            "- json:\n    expressions:\n      lvl: level\n- labels:\n    level: lvl\n- pack:\n    labels: [level, lvl]\n    ingest_timestamp: false\n",
            &[],
            r#"{"level":"info"}"#,
        );
        assert_eq!(
            line(&out),
            r#"{"lvl":"info","_entry":"{\"level\":\"info\"}"}"#
        );
        assert_labels(&out, &[("level", "info")]);
    }

    #[test]
    fn weak_decoding() {
        let out = packed(
            "- pack:\n    labels: pod\n    ingest_timestamp: 'false'\n",
            &[("pod", "p")],
            "m",
        );
        assert_eq!(line(&out), r#"{"pod":"p","_entry":"m"}"#);
        assert_eq!(out.timestamp, READ_TIME);
        let out = packed(
            "- pack:\n    labels: [1]\n    ingest_timestamp: 0\n",
            &[("1", "x")],
            "m",
        );
        assert_eq!(line(&out), r#"{"1":"x","_entry":"m"}"#);
        assert!(
            pipeline_err("- pack: {labels: [a], ingest_timestamp: maybe}")
                .contains("invalid pack stage config: cannot parse 'ingest_timestamp' as bool")
        );
    }

    #[test]
    fn invalid_utf8_bytes_become_escaped_replacement_characters() {
        let mut p = pipeline("- pack: {labels: [a]}");
        let mut out = Vec::new();
        p.process(
            entry_with(&[("a", "1")], bytes::Bytes::from_static(b"x\xff\xe2\x82y")),
            &mut out,
        );
        assert_eq!(
            line(&out[0]),
            r#"{"a":"1","_entry":"x\ufffd\ufffd\ufffdy"}"#
        );
    }

    #[test]
    fn clock_is_used_when_set() {
        let body: serde_yaml::Value = serde_yaml::from_str("{labels: [a]}").unwrap();
        let cx = crate::pipeline::BuildContext {
            job: "t".into(),
            path: "p".into(),
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new()),
        };
        let mut stage = super::PackStage::build(&body, &cx).unwrap();
        stage.now = Some(|| Timestamp(42));
        let mut pe = crate::pipeline::PipelineEntry::new(entry_with(
            &[("a", "1")],
            bytes::Bytes::from_static(b"m"),
        ));
        let mut released = Vec::new();
        assert!(matches!(
            crate::pipeline::Stage::process(&mut stage, &mut pe, &mut released),
            crate::pipeline::Outcome::Keep
        ));
        assert_eq!(pe.entry.timestamp, Timestamp(42));
    }
}
