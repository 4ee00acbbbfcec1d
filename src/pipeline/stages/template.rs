//! `template`: sets an extracted value from a Go `text/template` (spec §7.3).
//!
//! ```yaml
//! template:
//!   source: <key>            # required; the extracted key written (created when absent)
//!   template: '<template>'   # Go text/template, parsed once at start
//! ```
//!
//! The template sees every extracted value that can be a string under its own key, `.Value`
//! (the source's value, only when it exists) and `.Entry` (the line; invalid UTF-8 replaced by
//! U+FFFD, Go would keep the bytes). A non-empty result is written to `source`; an empty one
//! deletes `source`; an execution error (a missing value given to a string function, a bad
//! regex...) changes nothing, as in Promtail. Functions: see [`crate::pipeline::gotemplate`]; a
//! function ferrotail lacks is refused at start.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Text, Value};
use crate::pipeline::gotemplate::GoTemplate;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `template` stage.
pub struct TemplateStage {
    source: Key,
    template: GoTemplate,
}

impl TemplateStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        if body.is_null() {
            return Err("template stage config cannot be empty".into());
        }
        let f = Fields::new(body, &["source", "template"], &cx.path)?;
        let source = match f.string("source")? {
            Some(s) if !s.is_empty() => s,
            _ => return Err("template source value is required".into()),
        };
        let text = f.string("template")?.unwrap_or_default();
        let template = GoTemplate::parse("pipeline_template", &text)?;
        Ok(TemplateStage {
            source: Key::from(source),
            template,
        })
    }
}

impl Stage for TemplateStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let value = pe.extracted.get(&self.source).and_then(|v| v.to_text());
        let line = String::from_utf8_lossy(&pe.entry.line);
        let data = match &value {
            Some(v) => self
                .template
                .data(&pe.extracted, &[("Value", v), ("Entry", &line)]),
            None => self.template.data(&pe.extracted, &[("Entry", &line)]),
        };
        match self.template.render(&data) {
            Ok(s) if s.is_empty() => pe.extracted.remove(&self.source),
            Ok(s) => pe
                .extracted
                .insert(self.source.clone(), Value::Str(Text::from(s))),
            Err(e) => {
                tracing::debug!(error = %e, "template stage: execution failed, nothing changed")
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::pipeline::extracted::ValueRef;
    use crate::pipeline::stages::testutil::*;

    fn extracted(yaml: &str, labels: &[(&str, &str)], line: &str, key: &str) -> Option<String> {
        let pe = run_stages(yaml, labels, line).expect("entry kept");
        pe.extracted.get(key).map(|v| match v {
            ValueRef::Str(s) => s.to_string(),
            other => panic!("{key} is {other:?}"),
        })
    }

    const APP: &str = r#"{"app":"loki","level":"WARN","msg":"hello"}"#;
    const JSON: &str = "- json:\n    expressions: {app: app, level: level, msg: msg}\n";

    fn with_json(template: &str, source: &str) -> String {
        format!("{JSON}- template:\n    source: {source}\n    template: '{template}'\n")
    }

    #[test]
    fn documented_examples() {
        // A constant creates the key.
        let y = with_json("hello world!", "new_key");
        assert_eq!(extracted(&y, &[], APP, "new_key").unwrap(), "hello world!");
        // `.Value` and other keys.
        let y = with_json("{{ .Value }}_{{ .level }}", "app");
        assert_eq!(extracted(&y, &[], APP, "app").unwrap(), "loki_WARN");
        let y = with_json("{{ ToLower .Value }}", "level");
        assert_eq!(extracted(&y, &[], APP, "level").unwrap(), "warn");
        let y = with_json(r#"{{ Replace .Value "loki" "blokey" 1 }}"#, "app");
        assert_eq!(extracted(&y, &[], APP, "app").unwrap(), "blokey");
        let y = with_json(
            r#"{{ if eq .Value "WARN" }}{{ Replace .Value "WARN" "OK" -1 }}{{ else }}{{ .Value }}{{ end }}"#,
            "level",
        );
        assert_eq!(extracted(&y, &[], APP, "level").unwrap(), "OK");
        let y = with_json(r#"{{ Hash .Value "salt" }}"#, "app");
        assert_eq!(
            extracted(&y, &[], APP, "app").unwrap().len(),
            64,
            "hex SHA3-256"
        );
        let y = with_json(r#"{{ TrimPrefix .Value "lo" | ToUpper }}"#, "app");
        assert_eq!(extracted(&y, &[], APP, "app").unwrap(), "KI");
        // `.Entry` is the line.
        let y = format!(
            "{JSON}- template:\n    source: message\n    template: '{{{{.app}}}}: {{{{ .Entry }}}}'\n- output:\n    source: message\n"
        );
        let mut p = pipeline(&y);
        assert_eq!(line(&run_one(&mut p, &[], APP)), format!("loki: {APP}"));
        // Labels seed the map too.
        let y = "- template:\n    source: j\n    template: '{{ .job }}-x'\n";
        assert_eq!(
            extracted(y, &[("job", "varlogs")], "l", "j").unwrap(),
            "varlogs-x"
        );
    }

    #[test]
    fn missing_source_renders_no_value_and_empty_result_deletes() {
        let y = with_json("{{ .Value }}", "nothing");
        assert_eq!(extracted(&y, &[], APP, "nothing").unwrap(), "<no value>");
        let y = with_json("{{ if eq .Value \"x\" }}x{{ end }}", "app");
        assert_eq!(extracted(&y, &[], APP, "app"), None, "empty result deletes");
    }

    #[test]
    fn execution_errors_change_nothing() {
        let y = with_json("{{ ToUpper .nothing }}", "app");
        assert_eq!(extracted(&y, &[], APP, "app").unwrap(), "loki");
        let y = with_json(r#"{{ regexReplaceAll "(" .Value "x" }}"#, "app");
        assert_eq!(extracted(&y, &[], APP, "app").unwrap(), "loki");
    }

    #[test]
    fn numbers_and_booleans_are_strings_null_is_absent() {
        let y = "- json:\n    expressions: {n: n, b: b, z: z}\n- template:\n    source: out\n    template: '{{ .n }}|{{ .b }}|{{ .z }}'\n";
        assert_eq!(
            extracted(y, &[], r#"{"n":1.50,"b":true,"z":null}"#, "out").unwrap(),
            "1.5|true|<no value>"
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            pipeline_err("- template:"),
            "p[0].template: invalid template stage config: template stage config cannot be empty"
        );
        assert_eq!(
            pipeline_err("- template: {template: x}"),
            "p[0].template: invalid template stage config: template source value is required"
        );
        let e = pipeline_err("- template: {source: a, template: '{{ nosuch .a }}'}");
        assert!(e.contains(r#"function "nosuch" not defined"#), "{e}");
        let e = pipeline_err("- template: {source: a, template: '{{ now }}'}");
        assert!(
            e.contains(r#"function "now" of sprig is not supported by ferrotail yet"#),
            "{e}"
        );
        let e = pipeline_err("- template: {source: a, template: '{{ .a '}");
        assert!(e.contains("template: pipeline_template:1"), "{e}");
    }
}
