//! `tenant`: picks the Loki tenant of the entry (spec §7.4).
//!
//! ```yaml
//! tenant:
//!   source: <extracted key>   # exactly one of source | label | value
//!   label: <label name>
//!   value: <literal>
//! ```
//!
//! The tenant is carried as the reserved label `__tenant_id__` ([`TENANT_LABEL`]): every client
//! sends the entry with that tenant (`X-Scope-OrgID`) instead of its own `tenant_id`, and the
//! label itself never reaches Loki (it is left out of the stream, spec §8.2). An empty,
//! missing or null value leaves the tenant as it was.

use serde_yaml::Value as Yaml;

use crate::entry::TENANT_LABEL;
use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// Where the tenant comes from.
enum From {
    Source(String),
    Label(String),
    Value(String),
}

/// The `tenant` stage.
pub struct TenantStage {
    from: From,
}

impl TenantStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["label", "source", "value"], &cx.path)?;
        let label = f.string("label")?.unwrap_or_default();
        let source = f.string("source")?.unwrap_or_default();
        let value = f.string("value")?.unwrap_or_default();
        let set = [&label, &source, &value]
            .iter()
            .filter(|s| !s.is_empty())
            .count();
        if set == 0 {
            return Err("label, source or value config are required".into());
        }
        if set > 1 {
            return Err("label, source and value are mutually exclusive: you should set source, value or label but not all".into());
        }
        let from = if !source.is_empty() {
            From::Source(source)
        } else if !label.is_empty() {
            From::Label(label)
        } else {
            From::Value(value)
        };
        Ok(TenantStage { from })
    }
}

impl Stage for TenantStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let tenant = match &self.from {
            From::Source(key) => match pe.extracted.get(key).and_then(ValueRef::to_text) {
                Some(t) => t.into_owned(),
                None => return Outcome::Keep,
            },
            From::Label(name) => match pe.entry.labels.get(name) {
                Some(v) => v.to_string(),
                None => return Outcome::Keep,
            },
            From::Value(v) => v.clone(),
        };
        if !tenant.is_empty() {
            pe.entry.labels.insert(TENANT_LABEL, tenant);
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::entry::TENANT_LABEL;
    use crate::pipeline::stages::testutil::*;

    const LINE: &str = r#"{"customer_id":"1","log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#;

    #[test]
    fn documented_example_from_source() {
        let mut p = pipeline(
            "- json:\n    expressions:\n      customer_id: customer_id\n- tenant:\n    source: customer_id\n",
        );
        let out = run_one(&mut p, &[("job", "j")], LINE);
        assert_labels(&out, &[("job", "j"), (TENANT_LABEL, "1")]);
        // The reserved label is not part of the stream sent to Loki.
        assert_eq!(out.labels.stream_key(), r#"{job="j"}"#);
    }

    #[test]
    fn value_label_and_overrides() {
        let mut p = pipeline("- tenant:\n    value: team-api\n");
        let out = run_one(&mut p, &[(TENANT_LABEL, "old")], "x");
        assert_labels(&out, &[(TENANT_LABEL, "team-api")]);
        let mut p = pipeline("- tenant:\n    label: namespace\n");
        let out = run_one(&mut p, &[("namespace", "ns1")], "x");
        assert_labels(&out, &[("namespace", "ns1"), (TENANT_LABEL, "ns1")]);
        // Label missing: nothing.
        let out = run_one(&mut p, &[("job", "j")], "x");
        assert_labels(&out, &[("job", "j")]);
        // The label is read at this point (a label set by an earlier stage counts).
        let mut p = pipeline(
            "- json:\n    expressions:\n      app:\n- labels:\n    app:\n- tenant:\n    label: app\n",
        );
        let out = run_one(&mut p, &[], r#"{"app":"api"}"#);
        assert_labels(&out, &[("app", "api"), (TENANT_LABEL, "api")]);
    }

    #[test]
    fn missing_null_empty_sources_keep_the_tenant() {
        let yaml = "- json:\n    expressions:\n      t:\n- tenant:\n    source: t\n";
        let mut p = pipeline(yaml);
        for input in [r#"{"x":1}"#, r#"{"t":null}"#, r#"{"t":""}"#, "not json"] {
            let out = run_one(&mut p, &[(TENANT_LABEL, "keep")], input);
            assert_labels(&out, &[(TENANT_LABEL, "keep")]);
        }
        // Numbers are stringified like getString.
        let out = run_one(&mut p, &[], r#"{"t":42}"#);
        assert_labels(&out, &[(TENANT_LABEL, "42")]);
    }

    #[test]
    fn exactly_one_option() {
        let none =
            "p[0].tenant: invalid tenant stage config: label, source or value config are required";
        let many = "p[0].tenant: invalid tenant stage config: label, source and value are mutually exclusive: you should set source, value or label but not all";
        for (yaml, want) in [
            ("- tenant:", none),
            ("- tenant: {}", none),
            ("- tenant: {value: ''}", none),
            ("- tenant: {value: a, source: b}", many),
            ("- tenant: {label: a, source: b}", many),
            ("- tenant: {label: a, value: b}", many),
            ("- tenant: {label: a, value: b, source: c}", many),
        ] {
            assert_eq!(pipeline_err(yaml), want, "{yaml}");
        }
    }
}
