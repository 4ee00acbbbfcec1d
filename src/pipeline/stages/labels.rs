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
//! sees few distinct values (levels, status codes), so results are memoised
//! ([`ValueMemo`]): a hit shares an earlier entry's `LabelSet` (an `Arc` clone) instead of
//! copying the map.

use serde_yaml::Value as Yaml;

use crate::pipeline::decode;
use crate::pipeline::extracted::{Extracted, ValueRef, write_go_float};
use crate::pipeline::memo::ValueMemo;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::units::is_legacy_label_name;

/// Stages with more pairs than this collect their values on the heap.
const INLINE_PAIRS: usize = 8;

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

/// The `labels` stage.
pub struct LabelsStage {
    /// (label name, extracted key), in YAML order.
    pairs: Vec<(String, String)>,
    memo: ValueMemo,
    /// Per pair, the text of a number value (reused from line to line).
    numbers: Vec<String>,
}

impl LabelsStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, _cx: &BuildContext) -> Result<Self, BuildError> {
        let pairs = decode_label_map(body)?;
        Ok(LabelsStage {
            numbers: vec![String::new(); pairs.len()],
            pairs,
            memo: ValueMemo::default(),
        })
    }
}

/// The label values of one entry, by pair (`None`: missing or null, leave the label alone).
fn collect<'a>(
    pairs: &[(String, String)],
    numbers: &'a [String],
    ex: &'a Extracted,
) -> impl Iterator<Item = Option<&'a str>> {
    pairs
        .iter()
        .zip(numbers)
        .map(|((_, source), number)| match ex.get(source) {
            Some(ValueRef::Str(s)) => Some(s),
            Some(ValueRef::Num(_)) => Some(number.as_str()),
            Some(ValueRef::Bool(true)) => Some("true"),
            Some(ValueRef::Bool(false)) => Some("false"),
            Some(ValueRef::Null) | None => None,
        })
}

impl Stage for LabelsStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let LabelsStage {
            pairs,
            memo,
            numbers,
        } = self;
        let ex = &pe.extracted;
        // Numbers are formatted into reused buffers first, so values can borrow them.
        for ((_, source), number) in pairs.iter().zip(numbers.iter_mut()) {
            if let Some(ValueRef::Num(n)) = ex.get(source) {
                number.clear();
                write_go_float(n, number);
            }
        }
        let mut inline = [None; INLINE_PAIRS];
        let heap: Vec<Option<&str>>;
        let values: &[Option<&str>] = if pairs.len() <= INLINE_PAIRS {
            for (slot, v) in inline.iter_mut().zip(collect(pairs, numbers, ex)) {
                *slot = v;
            }
            &inline[..pairs.len()]
        } else {
            heap = collect(pairs, numbers, ex).collect();
            &heap
        };
        if values.iter().all(Option::is_none) {
            return Outcome::Keep;
        }
        memo.apply(&mut pe.entry.labels, values, |labels| {
            for ((name, _), value) in pairs.iter().zip(values) {
                if let Some(v) = *value
                    && labels.get(name) != Some(v)
                {
                    labels.insert(name.as_str(), v);
                }
            }
        });
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "labels_tests.rs"]
mod tests;
