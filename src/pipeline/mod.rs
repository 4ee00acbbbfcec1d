//! The pipeline of a scrape job: Promtail's `pipeline_stages`, run synchronously, stage after
//! stage, on one entry at a time (spec §7).
//!
//! Responsibilities and invariants:
//! - [`Pipeline::new`] validates the whole stage list at load, with Promtail's error texts,
//!   prefixed with the YAML path of the stage (`scrape_configs[0].pipeline_stages[2].json:
//!   invalid json stage config: ...`); a stage type Promtail has and we do not yet is refused
//!   (`... .pipeline_stages[1].docker is not supported yet`), never ignored;
//! - every entry handed to [`Pipeline::process`] either comes out in `out` or is dropped by a
//!   stage that counted it (`logentry_dropped_lines_total{reason}`); dropping the `Entry` is what
//!   acknowledges it, so a deliberate drop lets the file position advance (DESIGN.md contract 2);
//! - the extracted map starts as the entry's labels (shared, not copied) and is discarded at the
//!   end; one map allocation is reused for every line;
//! - only buffering stages (`multiline`, `cri`, later) hold entries; [`Pipeline::flush`] and
//!   [`Pipeline::flush_all`] release them in order through the remaining stages.

use std::sync::Arc;
use std::time::Instant;

use serde_yaml::Value;

use crate::entry::Entry;
use crate::metrics::Metrics;

pub mod decode;
pub mod extracted;
pub mod gotime;
pub mod jsonscan;
pub mod jsonx;
pub mod lru;
pub mod memo;
pub mod stage;
pub mod stages;

pub use extracted::{Extracted, Key, Text, Value as ExtractedValue, ValueRef};
pub use stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
pub use stages::StageType;

/// A pipeline configuration error (fatal at load, like Promtail's).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A list element is not a mapping.
    #[error(
        "{path}: invalid YAML config, make sure each stage of your pipeline is a YAML object (must end with a `:`), check stage `- {stage}`"
    )]
    NotAMapping {
        /// YAML path of the element.
        path: String,
        /// The element as written.
        stage: String,
    },
    /// A stage mapping has more than one key.
    #[error("{path}: pipeline stage must contain only one key")]
    TooManyKeys {
        /// YAML path of the element.
        path: String,
    },
    /// A stage key is not a string.
    #[error("{path}: pipeline stage key must be a string")]
    KeyNotString {
        /// YAML path of the element.
        path: String,
    },
    /// A stage type Promtail does not know.
    #[error("{path}: Unknown stage type: {stage}")]
    UnknownStage {
        /// YAML path of the element.
        path: String,
        /// The key.
        stage: String,
    },
    /// A Promtail stage type this version does not implement.
    #[error("{path}.{stage} is not supported yet")]
    NotSupported {
        /// YAML path of the element.
        path: String,
        /// The stage type.
        stage: String,
    },
    /// The stage's body is invalid.
    #[error("{path}.{stage}: invalid {stage} stage config: {reason}")]
    InvalidConfig {
        /// YAML path of the element.
        path: String,
        /// The stage type.
        stage: String,
        /// What is wrong (Promtail's text where it has one).
        reason: String,
    },
}

/// A scrape job's pipeline.
pub struct Pipeline {
    job: String,
    stages: Vec<Box<dyn Stage>>,
    /// A spare extracted map, so its allocation is reused from line to line.
    spare: Option<Extracted>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("job", &self.job)
            .field("stages", &self.stages.len())
            .finish()
    }
}

/// Renders a YAML value on one line for error messages.
fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_default(),
    }
}

impl Pipeline {
    /// Builds the pipeline of job `job` from its `pipeline_stages` list. `yaml_path` is where
    /// the list is in the config (e.g. `scrape_configs[0].pipeline_stages`); errors name
    /// `<yaml_path>[i].<stage>`.
    pub fn new(
        job: &str,
        stages: &[Value],
        yaml_path: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Pipeline, PipelineError> {
        let mut built = Vec::with_capacity(stages.len());
        for (i, element) in stages.iter().enumerate() {
            let path = format!("{yaml_path}[{i}]");
            let map = match element {
                Value::Tagged(t) => t.value.as_mapping(),
                other => other.as_mapping(),
            };
            let Some(map) = map else {
                return Err(PipelineError::NotAMapping {
                    path,
                    stage: yaml_inline(element),
                });
            };
            if map.len() > 1 {
                return Err(PipelineError::TooManyKeys { path });
            }
            // An empty mapping (`- {}`) is no stage at all; Promtail accepts it the same way.
            let Some((key, body)) = map.iter().next() else {
                continue;
            };
            let Some(name) = key.as_str() else {
                return Err(PipelineError::KeyNotString { path });
            };
            let Some(ty) = StageType::from_name(name) else {
                return Err(PipelineError::UnknownStage {
                    path,
                    stage: name.to_string(),
                });
            };
            let cx = BuildContext {
                job: job.to_string(),
                path: format!("{path}.{name}"),
                metrics: Arc::clone(&metrics),
            };
            match stages::build(ty, body, &cx) {
                Ok(stage) => built.push(stage),
                Err(stages::BuildError::NotSupported) => {
                    return Err(PipelineError::NotSupported {
                        path,
                        stage: name.to_string(),
                    });
                }
                Err(stages::BuildError::Invalid(reason)) => {
                    return Err(PipelineError::InvalidConfig {
                        path,
                        stage: name.to_string(),
                        reason,
                    });
                }
            }
        }
        Ok(Pipeline {
            job: job.to_string(),
            stages: built,
            spare: None,
        })
    }

    /// The job this pipeline belongs to.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the pipeline has no stages (entries pass unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs one entry through every stage and pushes what comes out to `out`: usually the one
    /// entry, none when a stage dropped it (counted) or holds it, several when a buffering stage
    /// released earlier entries.
    pub fn process(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        if self.stages.is_empty() {
            out.push(entry);
            return;
        }
        let mut extracted = self.spare.take().unwrap_or_default();
        extracted.reset(entry.labels.clone());
        self.run(0, PipelineEntry { entry, extracted }, out);
    }

    /// Releases the entries buffering stages have held past their timeout at `now`, through
    /// the stages after them.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Entry>) {
        self.flush_inner(Some(now), out);
    }

    /// Releases every held entry (end of input, shutdown).
    pub fn flush_all(&mut self, out: &mut Vec<Entry>) {
        self.flush_inner(None, out);
    }

    fn flush_inner(&mut self, now: Option<Instant>, out: &mut Vec<Entry>) {
        for i in 0..self.stages.len() {
            let mut released = Vec::new();
            self.stages[i].flush(now, &mut released);
            for pe in released {
                self.run(i + 1, pe, out);
            }
        }
    }

    /// Runs `pe` through stages `from..`.
    fn run(&mut self, from: usize, mut pe: PipelineEntry, out: &mut Vec<Entry>) {
        for i in from..self.stages.len() {
            let mut released = Vec::new();
            let outcome = self.stages[i].process(&mut pe, &mut released);
            // Entries a buffering stage released come before this one.
            for earlier in released {
                self.run(i + 1, earlier, out);
            }
            match outcome {
                Outcome::Keep => {}
                Outcome::Drop(_) | Outcome::Held => {
                    self.recycle(pe.extracted);
                    return; // dropping `pe.entry` here acknowledges it
                }
            }
        }
        self.recycle(pe.extracted);
        out.push(pe.entry);
    }

    fn recycle(&mut self, extracted: Extracted) {
        if self.spare.is_none() {
            self.spare = Some(extracted);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
