//! `regex`: extracts the named groups of a Go (RE2) regular expression (spec §7.2).
//!
//! ```yaml
//! regex:
//!   expression: '^(?P<level>\w+) (?P<msg>.*)$'   # required, Go RE2 syntax
//!   source: <key>                                # default: the line; "" is an error
//! ```
//!
//! The expression is compiled once at load by [`crate::pipeline::re2`]. The first match (leftmost
//! first, unanchored) writes every *named* group to the extracted map, `""` for a group that did
//! not take part (as Go's `FindStringSubmatch`). No match, a missing `source` key or a null
//! source value leaves the entry unchanged. Captured values share the line's (or the source
//! value's) buffer, no copy.
//!
//! Difference from Promtail: an expression without named groups is accepted (as Promtail does)
//! but logged as a warning at load, since such a stage can never do anything.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Text, Value};
use crate::pipeline::re2;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::{BuildError, source};

/// The `regex` stage.
pub struct RegexStage {
    re: regex::Regex,
    /// (group index, extracted key) of every named group.
    groups: Vec<(usize, Key)>,
    source: Option<String>,
    locations: regex::CaptureLocations,
}

impl RegexStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["expression", "source"], &cx.path)?;
        let expression = f.string("expression")?.unwrap_or_default();
        let source = f.string("source")?;
        if expression.is_empty() {
            return Err("expression is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let re = re2::compile(&expression)
            .map_err(|e| format!("could not compile regular expression: {e}"))?;
        let groups: Vec<(usize, Key)> = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, name)| name.map(|n| (i, Key::from(n))))
            .collect();
        if groups.is_empty() {
            tracing::warn!(
                stage = %cx.path,
                expression = %expression,
                "regex stage has no named capture group and extracts nothing"
            );
        }
        Ok(RegexStage {
            locations: re.capture_locations(),
            re,
            groups,
            source,
        })
    }
}

impl Stage for RegexStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let Some(text) = source::input(self.source.as_deref(), pe) else {
            return Outcome::Keep;
        };
        let s = text.as_str();
        if self.re.captures_read(&mut self.locations, s).is_none() {
            return Outcome::Keep;
        }
        for (i, key) in &self.groups {
            let value = match self.locations.get(*i) {
                Some((start, end)) => Text::slice_of(text.bytes(), &s[start..end]),
                None => Text::from_static(""),
            };
            pe.extracted.insert(key.clone(), Value::Str(value));
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "regex_tests.rs"]
mod tests;
