//! `structured_metadata` (old name `non_indexed_labels`): attaches structured metadata to the
//! entry (spec §7.4). Same body as `labels`.
//!
//! For each configured name, in YAML order: the value of the extracted key if it is there and
//! stringifiable; otherwise, in a second pass, the value of the stream label of that name. Every
//! stream label whose name is a used source and whose value is the value used is then removed:
//! the label *moves* to structured metadata (this keeps high-cardinality values such as pod UIDs
//! out of the stream labels).

use serde_yaml::Value as Yaml;

use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::pipeline::stages::labels::decode_label_map;

/// The `structured_metadata` stage.
pub struct StructuredMetadataStage {
    /// (metadata name, extracted key or label name).
    pairs: Vec<(String, String)>,
}

impl StructuredMetadataStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        Ok(StructuredMetadataStage {
            pairs: decode_label_map(body)?,
        })
    }
}

impl Stage for StructuredMetadataStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let entry = &mut pe.entry;
        // (source, value) pairs that were used; a handful at most, so a Vec is the fastest map.
        let mut used: Vec<(&str, String)> = Vec::new();
        for (name, source) in &self.pairs {
            if let Some(value) = pe.extracted.get(source).and_then(|v| v.to_text()) {
                let value = value.into_owned();
                entry
                    .structured_metadata
                    .push((name.clone(), value.clone()));
                match used.iter_mut().find(|(s, _)| *s == source) {
                    Some(slot) => slot.1 = value,
                    None => used.push((source, value)),
                }
            }
        }
        for (name, source) in &self.pairs {
            if used.iter().any(|(s, _)| s == source) {
                continue;
            }
            if let Some(value) = entry.labels.get(source) {
                let value = value.to_string();
                entry
                    .structured_metadata
                    .push((name.clone(), value.clone()));
                used.push((source, value));
            }
        }
        for (source, value) in &used {
            if entry.labels.get(source) == Some(value.as_str()) {
                entry.labels.remove(source);
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::stages::testutil::*;

    fn sm(out: &crate::entry::Entry) -> Vec<(&str, &str)> {
        out.structured_metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn from_json_and_deprecated_name() {
        for stage in ["structured_metadata", "non_indexed_labels"] {
            let mut p = pipeline(&format!(
                "- json:\n    expressions:\n      app:\n- {stage}:\n    app:\n"
            ));
            let out = run_one(&mut p, &[], r#"{"app":"loki" ,"component":"ingester"}"#);
            assert_eq!(sm(&out), [("app", "loki")]);
            assert_labels(&out, &[]);
        }
    }

    #[test]
    fn documented_example_with_labels() {
        let mut p = pipeline(
            r#"
- json:
    expressions:
      stream: stream
      traceID: traceID
- labels:
    stream:
- structured_metadata:
    traceID:
"#,
        );
        let out = run_one(
            &mut p,
            &[],
            r#"{"log":"log message\n","stream":"stderr","traceID":"0242ac120002","time":"2019-04-30T02:12:41.8443515Z"}"#,
        );
        assert_eq!(sm(&out), [("traceID", "0242ac120002")]);
        assert_labels(&out, &[("stream", "stderr")]);
    }

    #[test]
    fn json_with_regular_labels() {
        let mut p = pipeline(
            "- json:\n    expressions:\n      app:\n      component:\n- structured_metadata:\n    app:\n- labels:\n    component:\n",
        );
        let out = run_one(&mut p, &[], r#"{"app":"loki" ,"component":"ingester"}"#);
        assert_eq!(sm(&out), [("app", "loki")]);
        assert_labels(&out, &[("component", "ingester")]);
    }

    #[test]
    fn moves_stream_labels() {
        // From discovery labels: the label moves to structured metadata.
        let mut p = pipeline("- structured_metadata:\n    pod:\n");
        let out = run_one(&mut p, &[("source", "test"), ("pod", "ingester-0")], "x");
        assert_eq!(sm(&out), [("pod", "ingester-0")]);
        assert_labels(&out, &[("source", "test")]);
    }

    #[test]
    fn from_static_labels_under_another_name() {
        let mut p = pipeline(
            "- static_labels:\n    component: querier\n    pod: loki-querier-664f97db8d-qhnwg\n- structured_metadata:\n    pod_name: pod\n",
        );
        let out = run_one(&mut p, &[], "sample log line");
        assert_eq!(sm(&out), [("pod_name", "loki-querier-664f97db8d-qhnwg")]);
        assert_labels(&out, &[("component", "querier")]);
    }

    #[test]
    fn extracted_value_wins_and_differing_label_stays() {
        // `pod` is extracted as "ingester" while the label says "ingester-0": the extracted value
        // is used and the label stays (values differ); `source` comes from the seeded label and
        // moves.
        let mut p = pipeline(
            "- json:\n    expressions:\n      pod:\n- structured_metadata:\n    pod_name: pod\n    source_name: source\n",
        );
        let out = run_one(
            &mut p,
            &[("source", "test"), ("pod", "ingester-0")],
            r#"{"app":"loki","pod":"ingester"}"#,
        );
        assert_eq!(
            sm(&out),
            [("pod_name", "ingester"), ("source_name", "test")]
        );
        assert_labels(&out, &[("pod", "ingester-0")]);
    }

    #[test]
    fn null_and_numbers() {
        let mut p = pipeline(
            "- json:\n    expressions:\n      n:\n      z:\n- structured_metadata:\n    n:\n    z:\n",
        );
        let out = run_one(&mut p, &[], r#"{"n":200,"z":null}"#);
        assert_eq!(sm(&out), [("n", "200")]);
    }

    #[test]
    fn invalid_names_refused() {
        assert_eq!(
            pipeline_err("- structured_metadata:\n    trace.id:\n"),
            "p[0].structured_metadata: invalid structured_metadata stage config: invalid label name: trace.id"
        );
    }
}
