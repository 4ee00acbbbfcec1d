//! `replace`: rewrites the captured parts of every match of a regular expression (spec §7.2).
//!
//! ```yaml
//! replace:
//!   expression: '<RE2>'     # required; its capture groups mark what is replaced
//!   source: <key>           # default: the line; "" is an error
//!   replace: '<template>'   # Go template; default "" deletes the captured text
//! ```
//!
//! For every match and every capture group that took part (left to right), the captured text
//! is replaced by the rendered template, whose data is the extracted values plus `.Value` = the
//! captured text; text outside the groups is kept. A group nested in one already replaced is
//! not replaced again. The result goes back to the line, or to `extracted[source]`. A named
//! group also sets `extracted[name]` to the replacement of the text it captured in the first
//! match. No match, a missing or null source, or a template execution error: nothing changes.
//!
//! Differences from Promtail: the template is parsed once at start, so a bad template is a
//! start-up error (Promtail parses it on every line and silently does nothing); a line that is
//! not valid UTF-8 has its invalid bytes replaced by U+FFFD when it is rewritten.

use std::collections::HashMap;

use bytes::Bytes;
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Text, Value};
use crate::pipeline::gotemplate::GoTemplate;
use crate::pipeline::re2;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::{BuildError, source};

/// The `replace` stage.
pub struct ReplaceStage {
    re: regex::Regex,
    /// (group index, extracted key) of every named group.
    named: Vec<(usize, Key)>,
    source: Option<Key>,
    template: GoTemplate,
}

impl ReplaceStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        if body.is_null() {
            return Err("empty replace stage configuration".into());
        }
        let f = Fields::new(body, &["expression", "source", "replace"], &cx.path)?;
        let expression = f.string("expression")?.unwrap_or_default();
        if expression.is_empty() {
            return Err("expression is required".into());
        }
        let source = f.string("source")?;
        if source.as_deref() == Some("") {
            return Err("empty source in replace stage".into());
        }
        let re = re2::compile(&expression)
            .map_err(|e| format!("could not compile regular expression: {e}"))?;
        let template = GoTemplate::parse(
            "pipeline_template",
            &f.string("replace")?.unwrap_or_default(),
        )?;
        let named = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, name)| name.map(|n| (i, Key::from(n))))
            .collect();
        Ok(ReplaceStage {
            re,
            named,
            source: source.map(Key::from),
            template,
        })
    }

    /// The input with every captured group replaced, and the replacement of each captured text.
    fn rewrite(
        &self,
        input: &str,
        pe: &PipelineEntry,
    ) -> Result<(String, HashMap<String, String>), String> {
        let mut out = String::with_capacity(input.len());
        let mut replaced: HashMap<String, String> = HashMap::new();
        let mut prev_end = 0;
        for caps in self.re.captures_iter(input) {
            for m in caps.iter().skip(1).flatten() {
                let captured = m.as_str();
                let data = self.template.data(&pe.extracted, &[("Value", captured)]);
                let rendered = self.template.render(&data)?;
                // Promtail's rule, kept as is: a group that starts inside the previous
                // replacement is not written again (but its replacement is still recorded).
                if prev_end == 0 || prev_end <= m.start() {
                    out.push_str(&input[prev_end..m.start()]);
                    out.push_str(&rendered);
                    prev_end = m.end();
                }
                replaced.insert(captured.to_string(), rendered);
            }
        }
        out.push_str(&input[prev_end..]);
        Ok((out, replaced))
    }
}

impl Stage for ReplaceStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let Some(text) = source::input(self.source.as_deref(), pe) else {
            return Outcome::Keep;
        };
        let input = text.as_str();
        // Go's FindStringSubmatch: the groups of the first match ("" when a group is absent).
        let Some(first) = self.re.captures(input) else {
            return Outcome::Keep;
        };
        let (result, replaced) = match self.rewrite(input, pe) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "replace stage: template failed, nothing changed");
                return Outcome::Keep;
            }
        };
        let named: Vec<(Key, String)> = self
            .named
            .iter()
            .filter_map(|(i, key)| {
                let captured = first.get(*i).map_or("", |m| m.as_str());
                replaced.get(captured).map(|r| (key.clone(), r.clone()))
            })
            .collect();
        match &self.source {
            Some(key) => pe
                .extracted
                .insert(key.clone(), Value::Str(Text::from(result))),
            None => pe.entry.line = Bytes::from(result),
        }
        for (key, v) in named {
            pe.extracted.insert(key, Value::Str(Text::from(v)));
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[path = "replace_tests.rs"]
mod tests;
