//! `static_labels`: sets fixed labels (spec §7.4).
//!
//! ```yaml
//! static_labels:
//!   custom_key: custom_val
//! ```
//!
//! Any non-empty name is accepted (Prometheus' UTF-8 rule); a null or empty value is ignored.
//! Existing labels of the same name are overwritten.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode;
use crate::pipeline::memo::LastLabels;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `static_labels` stage.
pub struct StaticLabelsStage {
    labels: Vec<(String, String)>,
    memo: LastLabels,
}

impl StaticLabelsStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        let mut labels = Vec::new();
        for (name, value) in decode::string_map("", body)? {
            if name.is_empty() {
                return Err(format!("invalid label name: {name}").into());
            }
            match value {
                Some(v) if !v.is_empty() => labels.push((name, v)),
                _ => {}
            }
        }
        Ok(StaticLabelsStage {
            labels,
            memo: LastLabels::default(),
        })
    }
}

impl Stage for StaticLabelsStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let labels = &self.labels;
        self.memo.apply(&mut pe.entry.labels, |l| {
            for (name, value) in labels {
                l.insert(name.as_str(), value.as_str());
            }
        });
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::stages::testutil::*;

    #[test]
    fn documented_example() {
        let mut p = pipeline(
            r#"
- json:
    expressions:
      stream: stream
- labels:
    stream:
- static_labels:
    custom_key: custom_val
"#,
        );
        let out = run_one(
            &mut p,
            &[],
            r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
        );
        assert_labels(&out, &[("custom_key", "custom_val"), ("stream", "stderr")]);
    }

    #[test]
    fn overwrites_and_skips_empty_values() {
        let mut p =
            pipeline("- static_labels: {staticLabel: val, empty: '', nothing: ~, testLabel: new}");
        let out = run_one(&mut p, &[("testLabel", "testValue")], "");
        assert_labels(&out, &[("staticLabel", "val"), ("testLabel", "new")]);
        // Same input again: the memoised result is shared.
        let again = run_one(&mut p, &[("testLabel", "testValue")], "");
        assert_labels(&again, &[("staticLabel", "val"), ("testLabel", "new")]);
    }

    #[test]
    fn names_are_utf8_and_values_strings() {
        let mut p = pipeline("- static_labels: {'service.name': api}");
        let out = run_one(&mut p, &[], "");
        assert_labels(&out, &[("service.name", "api")]);
        assert_eq!(
            pipeline_err("- static_labels: {'': x}"),
            "p[0].static_labels: invalid static_labels stage config: invalid label name: "
        );
        assert!(pipeline_err("- static_labels: {port: 8080}").contains("expected type 'string'"));
    }
}
