//! `json`: extracts values from a JSON object with JMESPath expressions (spec §7.2).
//!
//! ```yaml
//! json:
//!   expressions: {level: , user: data.user.name, stream: '"grpc.stream"'}
//!   source: <key>          # default: the line; "" is an error
//!   drop_malformed: false
//! ```
//!
//! Every expression is compiled once at load. When all of them are simple paths the document is
//! streamed without a DOM (see [`crate::pipeline::jsonx`]); otherwise it is parsed once per line
//! and every expression is evaluated with the `jmespath` crate. A malformed document leaves the
//! entry unchanged, or drops it with `drop_malformed` — counted as
//! `logentry_dropped_lines_total{reason="json_malformed"}` (Promtail does not count it; we count
//! every loss). Lines that are not valid UTF-8 are parsed from a lossy copy (Go accepts invalid
//! UTF-8 inside JSON strings, serde_json does not).

use bytes::Bytes;
use jmespath::{Context, DEFAULT_RUNTIME, Expression};
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::Fields;
use crate::pipeline::extracted::{Key, Value, format_go_float};
use crate::pipeline::jsonscan;
use crate::pipeline::jsonx::{self, Malformed, PathTrie};
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The `json` stage.
pub struct JsonStage {
    keys: Vec<Key>,
    exprs: Vec<Expression<'static>>,
    /// Set when every expression is a simple path.
    trie: Option<PathTrie>,
    source: Option<String>,
    drop_malformed: bool,
    dropped: DropCounter,
    /// One result slot per expression (`None`: evaluation failed, the key is skipped).
    results: Vec<Option<Value>>,
}

impl JsonStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["expressions", "source", "drop_malformed"], &cx.path)?;
        let expressions = f.string_map("expressions")?;
        let source = f.string("source")?;
        let drop_malformed = f.boolean("drop_malformed")?.unwrap_or(false);
        if expressions.is_empty() {
            return Err("JMES expression is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let mut keys = Vec::with_capacity(expressions.len());
        let mut exprs = Vec::with_capacity(expressions.len());
        let mut trie = Some(PathTrie::default());
        for (i, (name, expr)) in expressions.iter().enumerate() {
            // An empty expression means "the key itself".
            let text = match expr.as_deref() {
                None | Some("") => name.as_str(),
                Some(e) => e,
            };
            let compiled = jmespath::compile(text)
                .map_err(|e| format!("could not compile JMES expression: {e}"))?;
            match (jsonx::simple_path(text), trie.as_mut()) {
                (Some(path), Some(t)) => t.insert(&path, i),
                _ => trie = None,
            }
            keys.push(Key::from(name.as_str()));
            exprs.push(compiled);
        }
        Ok(JsonStage {
            results: Vec::with_capacity(keys.len()),
            keys,
            exprs,
            trie,
            source,
            drop_malformed,
            dropped: cx.drop_counter("json_malformed"),
        })
    }

    /// Fills `self.results` from `input`.
    fn evaluate(&mut self, input: &Bytes) -> Result<(), Malformed> {
        self.results.clear();
        self.results.resize(self.exprs.len(), None);
        if let Some(trie) = &self.trie {
            return jsonscan::extract_fast(input, trie, &mut self.results);
        }
        let doc = jsonx::parse_document(input)?;
        for (slot, expr) in self.results.iter_mut().zip(&self.exprs) {
            let mut cx = Context::new(expr.as_str(), &DEFAULT_RUNTIME);
            // An evaluation error skips just this key (Promtail does the same).
            if let Ok(r) = jmespath::interpret(&doc, expr.as_ast(), &mut cx) {
                *slot = Some(jsonx::variable_to_value(&r));
            }
        }
        Ok(())
    }
}

impl Stage for JsonStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let source_text;
        let input = match &self.source {
            None => &pe.entry.line,
            // A missing or null source is no input at all, not a malformed one.
            Some(src) => {
                source_text = match pe.extracted.get_value(src) {
                    None | Some(Value::Null) => return Outcome::Keep,
                    Some(Value::Str(t)) => t.into_bytes(),
                    Some(Value::Num(n)) => Bytes::from(format_go_float(n)),
                    Some(Value::Bool(b)) => Bytes::from_static(if b { b"true" } else { b"false" }),
                };
                &source_text
            }
        };
        let mut parsed = self.evaluate(input);
        if parsed.is_err() && std::str::from_utf8(input).is_err() {
            let lossy = Bytes::from(String::from_utf8_lossy(input).into_owned());
            parsed = self.evaluate(&lossy);
        }
        if parsed.is_err() {
            return if self.drop_malformed {
                self.dropped.count()
            } else {
                Outcome::Keep
            };
        }
        for (key, value) in self.keys.iter().zip(self.results.drain(..)) {
            if let Some(value) = value {
                pe.extracted.insert(key.clone(), value);
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "json_tests.rs"]
mod tests;
