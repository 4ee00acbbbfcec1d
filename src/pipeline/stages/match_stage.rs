//! `match`: runs nested stages on, or drops, the entries whose current labels and line match a
//! LogQL selector (spec §7.5).
//!
//! ```yaml
//! match:
//!   selector: '{app="nginx", level=~"warn|error"} |= "GET" != "health"'   # required
//!   action: keep                 # keep (default) | drop
//!   stages: [ ... ]              # required for keep, refused for drop
//!   pipeline_name: name          # optional; if set must not be empty; no other effect
//!   drop_counter_reason: match_stage
//! ```
//!
//! - The selector ([`Selector`]) is matched against the entry's **current** labels (not the
//!   extracted map) and its line.
//! - `keep`: a matching entry goes through the nested stages, whose extracted map is first
//!   re-seeded from the current labels (label values overwrite same-named keys, other keys stay);
//!   what the nested stages drop is dropped, what they hold is held, what they release goes on
//!   to the stages after `match`, before the entry. A non-matching entry passes unchanged.
//! - `drop`: a matching entry is dropped and counted in
//!   `logentry_dropped_lines_total{reason=<drop_counter_reason>}`.
//! - `flush`, `flush_stream` and `may_block` are forwarded to the nested stages.
//!
//! Config errors are Promtail's, in its order. The body is decoded strictly (`selector: 1` is
//! refused). Differences: an error in a nested stage names its own YAML path
//! (`...match.stages[0].json: ...`) instead of Promtail's wrapper text with the whole config
//! dumped. Stages run synchronously here, so the only reordering is the one of a buffering
//! nested stage: later entries that do not match pass an entry it holds (in Promtail any entry
//! inside the nested pipeline can be overtaken).

use std::time::Instant;

use serde_yaml::Value as Yaml;

use crate::entry::LabelSet;
use crate::pipeline::decode::{self, Fields};
use crate::pipeline::extracted::Extracted;
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::pipeline::stages::selector::{Selector, SelectorError};
use crate::pipeline::{build_stages, flush_stages, flush_stream_stages, run_stages};

/// What the stage does with a matching entry.
enum Action {
    /// Runs the nested stages.
    Keep(Vec<Box<dyn Stage>>),
    /// Drops the entry.
    Drop(DropCounter),
}

/// The `match` stage.
pub struct MatchStage {
    selector: Selector,
    action: Action,
    /// Extracted map allocation reused by nested runs.
    spare: Option<Extracted>,
}

impl MatchStage {
    /// Builds the stage and its nested stages from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &[
                "pipeline_name",
                "selector",
                "stages",
                "action",
                "drop_counter_reason",
            ],
            &cx.path,
        )?;
        let pipeline_name = f.string("pipeline_name")?;
        let selector = f.string("selector")?.unwrap_or_default();
        let stages: Vec<Yaml> = match f.get("stages") {
            None => Vec::new(),
            Some(v) => match v {
                Yaml::Null => Vec::new(),
                Yaml::Sequence(s) => s.clone(),
                other => {
                    return Err(format!(
                        "'stages': source data must be an array or slice, got {}",
                        decode::go_type(other)
                    )
                    .into());
                }
            },
        };
        let action = f.string("action")?.unwrap_or_default();
        let reason = f.string("drop_counter_reason")?;
        if pipeline_name.as_deref() == Some("") {
            return Err(
                "match stage pipeline name can be omitted but cannot be an empty string".into(),
            );
        }
        if selector.is_empty() {
            return Err("selector statement required for match stage".into());
        }
        let keep = match action.as_str() {
            "" | "keep" => true,
            "drop" => false,
            _ => return Err("match stage action should be 'keep' or 'drop'".into()),
        };
        if keep && stages.is_empty() {
            return Err(
                "match stage requires at least one additional stage to be defined in '- stages'"
                    .into(),
            );
        }
        if !keep && !stages.is_empty() {
            return Err("match stage configured to drop entries cannot contains stages".into());
        }
        let selector = match Selector::parse(&selector) {
            Ok(s) => s,
            Err(SelectorError::Parse(e)) => {
                return Err(format!("invalid selector syntax for match stage: {e}").into());
            }
            Err(SelectorError::Filter(e)) => {
                return Err(format!("error parsing pipeline: {e}").into());
            }
        };
        let action = if keep {
            let nested = build_stages(
                &cx.job,
                &stages,
                &format!("{}.stages", cx.path),
                &cx.metrics,
            )
            .map_err(|e| BuildError::Nested(Box::new(e)))?;
            Action::Keep(nested)
        } else {
            let reason = reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "match_stage".to_string());
            Action::Drop(cx.drop_counter(&reason))
        };
        Ok(MatchStage {
            selector,
            action,
            spare: None,
        })
    }
}

impl Stage for MatchStage {
    fn process(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        if !self.selector.matches(&pe.entry.labels, &pe.entry.line) {
            return Outcome::Keep;
        }
        let stages = match &mut self.action {
            Action::Drop(counter) => return counter.count(),
            Action::Keep(stages) => stages,
        };
        pe.extracted.reseed(pe.entry.labels.clone());
        // The entry runs through the nested stages in place; entries they release come before
        // it and finish the nested stages on their own.
        for i in 0..stages.len() {
            let mut earlier = Vec::new();
            let outcome = stages[i].process(pe, &mut earlier);
            for e in earlier {
                run_stages(stages, i + 1, e, released, &mut self.spare);
            }
            match outcome {
                Outcome::Keep => {}
                other => return other,
            }
        }
        Outcome::Keep
    }

    fn flush(&mut self, now: Option<Instant>, released: &mut Vec<PipelineEntry>) {
        if let Action::Keep(stages) = &mut self.action {
            flush_stages(stages, now, released, &mut self.spare);
        }
    }

    fn flush_stream(&mut self, labels: &LabelSet, released: &mut Vec<PipelineEntry>) {
        if let Action::Keep(stages) = &mut self.action {
            flush_stream_stages(stages, labels, released, &mut self.spare);
        }
    }

    fn may_block(&self) -> bool {
        match &self.action {
            Action::Keep(stages) => stages.iter().any(|s| s.may_block()),
            Action::Drop(_) => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "match_tests.rs"]
mod tests;
