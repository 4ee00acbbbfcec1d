//! `labeldrop`: removes the listed labels (spec §7.4). The list must not be empty.
//!
//! ```yaml
//! labeldrop: [kubernetes_pod_name, filename]
//! ```

use serde_yaml::Value as Yaml;

use crate::pipeline::decode;
use crate::pipeline::memo::LastLabels;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `labeldrop` stage.
pub struct LabelDropStage {
    names: Vec<String>,
    memo: LastLabels,
}

impl LabelDropStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        let names = decode::string_list("", body)?;
        if names.is_empty() {
            return Err("labeldrop stage config cannot be empty".into());
        }
        Ok(LabelDropStage {
            names,
            memo: LastLabels::default(),
        })
    }
}

impl Stage for LabelDropStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let names = &self.names;
        self.memo.apply(&mut pe.entry.labels, |l| {
            l.retain(|k, _| !names.iter().any(|n| n == k));
        });
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::stages::testutil::*;

    #[test]
    fn drops_listed_labels() {
        let input = [("testLabel1", "testValue"), ("testLabel2", "testValue")];
        let mut p = pipeline("- labeldrop: [testLabel1]");
        assert_labels(&run_one(&mut p, &input, ""), &[("testLabel2", "testValue")]);
        let mut p = pipeline("- labeldrop: [testLabel1, testLabel2]");
        assert_labels(&run_one(&mut p, &input, ""), &[]);
        let mut p = pipeline("- labeldrop: [foobar]");
        assert_labels(&run_one(&mut p, &input, ""), &input);
    }

    #[test]
    fn documented_example_keeps_the_value_in_the_extracted_map() {
        // The docs pair it with `replace` (not implemented yet); the label is gone, the
        // extracted map still has it.
        let mut p = pipeline("- labeldrop: [kubernetes_pod_name]");
        let out = run_one(
            &mut p,
            &[("kubernetes_pod_name", "loki-0"), ("job", "k8s")],
            "x",
        );
        assert_labels(&out, &[("job", "k8s")]);
    }

    #[test]
    fn empty_list_is_refused() {
        for body in ["- labeldrop: []", "- labeldrop:"] {
            assert_eq!(
                pipeline_err(body),
                "p[0].labeldrop: invalid labeldrop stage config: labeldrop stage config cannot be empty"
            );
        }
        assert!(pipeline_err("- labeldrop: a").contains("must be an array"));
    }
}
