//! `labelallow`: keeps only the listed labels (spec §7.4). The list must not be empty.
//!
//! ```yaml
//! labelallow: [kubernetes_pod_name, kubernetes_container_name]
//! ```
//!
//! Everything else goes, including `filename` and the reserved `__tenant_id__` set by a
//! `tenant` stage, unless they are listed.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode;
use crate::pipeline::memo::LastLabels;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `labelallow` stage.
pub struct LabelAllowStage {
    names: Vec<String>,
    memo: LastLabels,
}

impl LabelAllowStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        let names = decode::string_list("", body)?;
        if names.is_empty() {
            return Err("labelallow stage config cannot be empty".into());
        }
        Ok(LabelAllowStage {
            names,
            memo: LastLabels::default(),
        })
    }
}

impl Stage for LabelAllowStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let names = &self.names;
        self.memo.apply(&mut pe.entry.labels, |l| {
            l.retain(|k, _| names.iter().any(|n| n == k));
        });
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::entry::TENANT_LABEL;
    use crate::pipeline::stages::testutil::*;

    #[test]
    fn keeps_only_listed_labels() {
        let input = [
            ("testLabel1", "testValue"),
            ("testLabel2", "testValue"),
            ("testLabel3", "testValue"),
        ];
        let mut p = pipeline("- labelallow: [testLabel1]");
        assert_labels(&run_one(&mut p, &input, ""), &[("testLabel1", "testValue")]);
        let mut p = pipeline("- labelallow: [testLabel1, testLabel2]");
        assert_labels(
            &run_one(&mut p, &input, ""),
            &[("testLabel1", "testValue"), ("testLabel2", "testValue")],
        );
        let mut p = pipeline("- labelallow: [foobar]");
        assert_labels(&run_one(&mut p, &input, ""), &[]);
    }

    #[test]
    fn documented_example() {
        let mut p =
            pipeline("- labelallow:\n    - kubernetes_pod_name\n    - kubernetes_container_name\n");
        let out = run_one(
            &mut p,
            &[
                ("kubernetes_pod_name", "loki-pqrs"),
                ("kubernetes_container_name", "loki"),
                ("kubernetes_pod_template_hash", "79f5db67b"),
                ("kubernetes_controller_revision_hash", "774858987d"),
            ],
            "",
        );
        assert_labels(
            &out,
            &[
                ("kubernetes_container_name", "loki"),
                ("kubernetes_pod_name", "loki-pqrs"),
            ],
        );
    }

    #[test]
    fn drops_filename_and_tenant_unless_listed() {
        let input = [("filename", "/a.log"), (TENANT_LABEL, "t1"), ("job", "j")];
        let mut p = pipeline("- labelallow: [job]");
        assert_labels(&run_one(&mut p, &input, ""), &[("job", "j")]);
        let mut p = pipeline("- labelallow: [job, __tenant_id__]");
        assert_labels(
            &run_one(&mut p, &input, ""),
            &[(TENANT_LABEL, "t1"), ("job", "j")],
        );
    }

    #[test]
    fn empty_list_is_refused() {
        assert_eq!(
            pipeline_err("- labelallow: []"),
            "p[0].labelallow: invalid labelallow stage config: labelallow stage config cannot be empty"
        );
    }
}
