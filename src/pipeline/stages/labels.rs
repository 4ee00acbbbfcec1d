//! `labels`: sets stream labels from extracted values (spec §7.4).
//!
//! ```yaml
//! labels:
//!   level:            # label "level" from extracted "level"
//!   app: service      # label "app" from extracted "service"
//! ```
//!
//! Names must match `[a-zA-Z_][a-zA-Z0-9_]*` (checked at load: `invalid label name: X`). A
//! missing or null (non-stringifiable) value leaves the label untouched; an empty string sets an
//! empty label, as in Promtail.
//!
//! Performance: the result is a function of the input label set and the values, and a stream
//! sees few distinct values (levels, status codes), so the last few results are memoised: a hit
//! shares the previous entry's `LabelSet` (an `Arc` clone) instead of copying the map.

use std::borrow::Cow;

use serde_yaml::Value as Yaml;

use crate::entry::LabelSet;
use crate::pipeline::decode;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::{BuildError, is_legacy_label_name};

/// How many (input, values) → output results are remembered.
const MEMO_SLOTS: usize = 8;
/// Stages with more pairs than this skip the memo.
const MEMO_MAX_PAIRS: usize = 8;

/// Decodes the `labels`/`structured_metadata` body: label name → extracted key (empty = same).
pub fn decode_label_map(body: &Yaml) -> Result<Vec<(String, String)>, String> {
    let pairs = decode::string_map("", body)?;
    let mut out = Vec::with_capacity(pairs.len());
    for (name, source) in pairs {
        if !is_legacy_label_name(&name) {
            return Err(format!("invalid label name: {name}"));
        }
        let source = match source {
            Some(s) if !s.is_empty() => s,
            _ => name.clone(),
        };
        out.push((name, source));
    }
    Ok(out)
}

struct Memo {
    input: LabelSet,
    values: Vec<Option<String>>,
    output: LabelSet,
}

/// The `labels` stage.
pub struct LabelsStage {
    /// (label name, extracted key), in YAML order.
    pairs: Vec<(String, String)>,
    memo: Vec<Memo>,
    next_slot: usize,
}

impl LabelsStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        Ok(LabelsStage {
            pairs: decode_label_map(body)?,
            memo: Vec::new(),
            next_slot: 0,
        })
    }

    fn apply(labels: &mut LabelSet, pairs: &[(String, String)], values: &[Option<Cow<'_, str>>]) {
        for ((name, _), value) in pairs.iter().zip(values) {
            if let Some(v) = value {
                if labels.get(name) != Some(v.as_ref()) {
                    labels.insert(name.as_str(), v.as_ref());
                }
            }
        }
    }
}

impl Stage for LabelsStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let ex = &pe.extracted;
        let value = |src: &str| ex.get(src).and_then(|v| v.to_text());
        if self.pairs.len() > MEMO_MAX_PAIRS {
            let values: Vec<_> = self.pairs.iter().map(|(_, s)| value(s)).collect();
            Self::apply(&mut pe.entry.labels, &self.pairs, &values);
            return Outcome::Keep;
        }
        let values: [Option<Cow<'_, str>>; MEMO_MAX_PAIRS] =
            std::array::from_fn(|i| self.pairs.get(i).and_then(|(_, s)| value(s)));
        let values = &values[..self.pairs.len()];
        if values.iter().all(Option::is_none) {
            return Outcome::Keep;
        }
        let labels = &mut pe.entry.labels;
        let hit = self.memo.iter().find(|m| {
            m.input == *labels
                && m.values
                    .iter()
                    .zip(values)
                    .all(|(a, b)| a.as_deref() == b.as_deref())
        });
        if let Some(m) = hit {
            *labels = m.output.clone();
            return Outcome::Keep;
        }
        let input = labels.clone();
        Self::apply(labels, &self.pairs, values);
        let memo = Memo {
            input,
            values: values
                .iter()
                .map(|v| v.as_ref().map(|s| s.to_string()))
                .collect(),
            output: labels.clone(),
        };
        if self.memo.len() < MEMO_SLOTS {
            self.memo.push(memo);
        } else {
            self.memo[self.next_slot] = memo;
            self.next_slot = (self.next_slot + 1) % MEMO_SLOTS;
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "labels_tests.rs"]
mod tests;
