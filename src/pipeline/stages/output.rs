//! `output`: replaces the log line with an extracted value (spec §7.4).
//!
//! ```yaml
//! output:
//!   source: message     # required
//! ```
//!
//! A missing key or a null value leaves the line unchanged. A string value that came from the
//! line itself becomes the new line without a copy (both share the read chunk's bytes).

use bytes::Bytes;
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Value, format_go_float};
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `output` stage.
pub struct OutputStage {
    source: String,
}

impl OutputStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["source"], &cx.path)?;
        match f.string("source")? {
            Some(source) if !source.is_empty() => Ok(OutputStage { source }),
            _ => Err("output source value is required if output is specified".into()),
        }
    }
}

impl Stage for OutputStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let line = match pe.extracted.get_value(&self.source) {
            None | Some(Value::Null) => return Outcome::Keep,
            Some(Value::Str(t)) => t.into_bytes(),
            Some(Value::Num(n)) => Bytes::from(format_go_float(n)),
            Some(Value::Bool(b)) => Bytes::from_static(if b { b"true" } else { b"false" }),
        };
        pe.entry.line = line;
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::stages::testutil::*;

    const LINE: &str = r#"
{
	"time":"2012-11-01T22:08:41+00:00",
	"app":"loki",
	"component": ["parser","type"],
	"level" : "WARN",
	"nested" : {"child":"value"},
	"message" : "this is a log line"
}
"#;

    #[test]
    fn sets_the_line_from_json() {
        let mut p =
            pipeline("- json:\n    expressions:\n      out: message\n- output:\n    source: out\n");
        assert_eq!(line(&run_one(&mut p, &[], LINE)), "this is a log line");
    }

    #[test]
    fn documented_example() {
        let mut p = pipeline(
            "- json:\n    expressions:\n      user: user\n      message: message\n- labels:\n    user:\n- output:\n    source: message\n",
        );
        let out = run_one(
            &mut p,
            &[],
            r#"{"user": "alexis", "message": "hello, world!"}"#,
        );
        assert_eq!(line(&out), "hello, world!");
        assert_labels(&out, &[("user", "alexis")]);
    }

    #[test]
    fn missing_null_and_composite_values() {
        let mut p = pipeline(
            "- json:\n    expressions:\n      out: message\n      n: nested\n      num: num\n- output:\n    source: out\n",
        );
        // The key is missing in the JSON: `out` is null, the line stays.
        let no_msg = r#"{"nested":{"child":"value"}}"#;
        assert_eq!(line(&run_one(&mut p, &[], no_msg)), no_msg);
        let mut p =
            pipeline("- json:\n    expressions:\n      n: nested\n- output:\n    source: n\n");
        assert_eq!(line(&run_one(&mut p, &[], no_msg)), r#"{"child":"value"}"#);
        let mut p = pipeline("- json:\n    expressions:\n      num:\n- output:\n    source: num\n");
        assert_eq!(line(&run_one(&mut p, &[], r#"{"num":1.50}"#)), "1.5");
        // Not in the extracted map at all.
        let mut p = pipeline("- output:\n    source: nothing\n");
        assert_eq!(line(&run_one(&mut p, &[], "replaceme")), "replaceme");
        // A seeded label is a value like any other.
        let mut p = pipeline("- output:\n    source: job\n");
        assert_eq!(
            line(&run_one(&mut p, &[("job", "varlogs")], "x")),
            "varlogs"
        );
    }

    #[test]
    fn shares_the_line_bytes() {
        let mut p =
            pipeline("- json:\n    expressions:\n      m: message\n- output:\n    source: m\n");
        let input = bytes::Bytes::from_static(br#"{"message":"hello"}"#);
        let out = run_entry(&mut p, entry_with(&[], input.clone()));
        assert_eq!(out[0].line.as_ptr(), input[12..].as_ptr());
    }

    #[test]
    fn source_is_required() {
        for body in ["- output:", "- output: {}", "- output: {source: ''}"] {
            assert_eq!(
                pipeline_err(body),
                "p[0].output: invalid output stage config: output source value is required if output is specified"
            );
        }
    }
}
