//! `docker`: parses Docker's json-file log lines (spec §7.2).
//!
//! ```yaml
//! docker: {}
//! ```
//!
//! No options: whatever the body holds is ignored, as in Promtail (keys of a mapping body are
//! warned about). The stage is Promtail's fixed pipeline, built here from the same stages:
//!
//! ```yaml
//! - json: {expressions: {output: log, stream: stream, timestamp: time}}
//! - labels: {stream: }
//! - timestamp: {source: timestamp, format: RFC3339Nano}   # action_on_failure: fudge
//! - output: {source: output}
//! ```
//!
//! So `output`, `stream` and `timestamp` are left in the extracted map for later stages, the
//! `log` field keeps its trailing `\n`, Docker's 16 KiB split of long lines is not re-joined, and
//! a line that is not JSON passes unchanged (its timestamp fudged or kept).

use std::sync::Arc;

use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// Promtail's docker pipeline.
const STAGES: &str = "
- json: {expressions: {output: log, stream: stream, timestamp: time}}
- labels: {stream: }
- timestamp: {source: timestamp, format: RFC3339Nano}
- output: {source: output}
";

/// The `docker` stage.
pub struct DockerStage {
    stages: Vec<Box<dyn Stage>>,
}

impl DockerStage {
    /// Builds the stage (its body is ignored).
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        if body.is_mapping() {
            Fields::new(body, &[], &cx.path)?;
        }
        let yaml: Vec<Yaml> = serde_yaml::from_str(STAGES).map_err(|e| e.to_string())?;
        let stages =
            crate::pipeline::build_stages(&cx.job, &yaml, &cx.path, &Arc::clone(&cx.metrics))
                .map_err(|e| BuildError::Nested(Box::new(e)))?;
        Ok(DockerStage { stages })
    }
}

impl Stage for DockerStage {
    fn process(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        for stage in &mut self.stages {
            match stage.process(pe, released) {
                Outcome::Keep => {}
                other => return other,
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::entry::Timestamp;
    use crate::pipeline::extracted::ValueRef;
    use crate::pipeline::stages::testutil::*;

    #[test]
    fn documented_example() {
        let pe = run_stages(
            "- docker: {}",
            &[],
            r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
        )
        .unwrap();
        let ex = &pe.extracted;
        assert_eq!(ex.get("output"), Some(ValueRef::Str("log message\n")));
        assert_eq!(ex.get("stream"), Some(ValueRef::Str("stderr")));
        assert_eq!(
            ex.get("timestamp"),
            Some(ValueRef::Str("2019-04-30T02:12:41.8443515Z"))
        );
        assert_eq!(pe.entry.timestamp, Timestamp(1_556_590_361_844_351_500));
        assert_eq!(&pe.entry.line[..], b"log message\n");
        assert_eq!(pe.entry.labels.get("stream"), Some("stderr"));
    }

    #[test]
    fn promtail_test_lines() {
        // From Promtail's docker tests: labels kept, stream added, line and time replaced.
        let mut p = pipeline("- docker:");
        let out = run_one(
            &mut p,
            &[("foo", "bar")],
            r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
        );
        assert_eq!(line(&out), "log message\n");
        assert_labels(&out, &[("foo", "bar"), ("stream", "stderr")]);
        // Not JSON: unchanged, read time kept.
        let out = run_one(&mut p, &[("foo", "bar")], "i'm not json");
        assert_eq!(line(&out), "i'm not json");
        assert_eq!(out.timestamp, READ_TIME);
        assert_labels(&out, &[("foo", "bar")]);
        // A bad time is fudged from the last good one of the same label set.
        let out = run_one(
            &mut p,
            &[("foo", "bar")],
            r#"{"log":"x","stream":"stderr","time":"garbage"}"#,
        );
        assert_eq!(out.timestamp, Timestamp(1_556_590_361_844_351_501));
        assert_eq!(line(&out), "x");
    }

    #[test]
    fn later_stages_see_the_extracted_keys() {
        let mut p = pipeline("- docker: {}\n- output:\n    source: stream\n");
        let out = run_one(
            &mut p,
            &[],
            r#"{"log":"m","stream":"stdout","time":"2019-04-30T02:12:41Z"}"#,
        );
        assert_eq!(line(&out), "stdout");
    }

    #[test]
    fn options_are_ignored() {
        for yaml in ["- docker: {foo: bar}", "- docker: [1]", "- docker: 3"] {
            let mut p = pipeline(yaml);
            let out = run_one(&mut p, &[], r#"{"log":"m"}"#);
            assert_eq!(line(&out), "m");
        }
    }
}
