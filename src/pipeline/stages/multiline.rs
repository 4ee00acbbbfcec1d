//! `multiline`: joins the lines of a block (a stack trace, a pretty-printed record) into one
//! entry (spec §7.2).
//!
//! ```yaml
//! multiline:
//!   firstline: '^\[\d{4}'   # required, RE2; a matching line starts a block
//!   max_wait_time: 3s       # Go duration; a block idle this long is sent on
//!   max_lines: 128          # a block is sent on when it has this many lines (0: no limit)
//! ```
//!
//! Behaviour (Promtail's):
//! - blocks are kept per stream, keyed by the entry's labels *as they are at this stage*;
//! - until a stream has seen a line matching `firstline`, its lines pass through unchanged; from
//!   then on every line of that stream is held: a first line sends the current block on and
//!   starts a new one, other lines are appended, joined with `\n` (a `\r` kept at the end of a
//!   CRLF line stays in the text);
//! - a block goes on when a first line arrives, when it reaches `max_lines`, when its stream has
//!   been idle for `max_wait_time`, when its file is released ([`Stage::flush_stream`]), and at
//!   the end of input;
//! - the block's entry has the labels, timestamp and extracted map of its first line and no
//!   structured metadata; after a flush by size or time, the following continuation lines form
//!   a block that reuses the previous first line's labels, timestamp and extracted map.
//!
//! At-least-once: the block's entry carries the acknowledgements of *all* its lines (merged),
//! so a file position only moves past a held line once the whole block is delivered. Held lines
//! keep their read chunks' byte-budget permits, so a block without a limit (`max_lines: 0`) is
//! still bounded: reading pauses when the budget is spent, and the idle timeout sends it on.
//!
//! Differences from Promtail:
//! - the idle timer is driven by the runtime's flush tick (every 500 ms): it starts at the first
//!   tick after the last line, so a block goes on between `max_wait_time` and
//!   `max_wait_time` + 500 ms after its last line (Promtail: at `max_wait_time`). This keeps the
//!   clock off the per-line path and makes timeouts testable with injected instants;
//! - when a file is released its stream's state is forgotten after its block is sent on
//!   (Promtail keeps the state of every stream it ever saw, for the life of the process). A file
//!   that comes back at the same path starts again by passing lines through until a first line.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use serde_yaml::Value as Yaml;

use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::pipeline::decode::{Fields, weak_integer, weak_string};
use crate::pipeline::extracted::Extracted;
use crate::pipeline::re2;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::pipeline::stages::held::Held;
use crate::units::GoDuration;

const MAX_LINES_DEFAULT: u64 = 128;
const MAX_WAIT_DEFAULT: Duration = Duration::from_secs(3);

/// Parses a duration given to a stage as a string, with Go's `time.ParseDuration` (a bare number
/// other than `0` has no unit and is an error, as in Go). Negative durations are zero.
pub(crate) fn parse_stage_duration(s: &str) -> Result<Duration, String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && digits != "0" {
        return Err(format!("time: missing unit in duration {s:?}"));
    }
    GoDuration::parse(s).map(GoDuration::as_std)
}

/// The `multiline` stage.
pub struct MultilineStage {
    firstline: regex::bytes::Regex,
    /// 0: no limit.
    max_lines: u64,
    max_wait: Duration,
    streams: HashMap<LabelSet, StreamState>,
}

/// One stream's state: the current block and the first line it (and later blocks) use.
struct StreamState {
    /// Labels, timestamp and extracted map of the last first line.
    labels: LabelSet,
    timestamp: Timestamp,
    stamp: Stamp,
    extracted: Extracted,
    /// The lines of the current block (empty: no block held).
    lines: Vec<Bytes>,
    /// Acks, idle timer, and the files seen in this stream (they outlive a block).
    held: Held,
}

impl StreamState {
    /// The current block as an entry, if any. `keep_template`: the first line is kept for the
    /// following continuation lines (else the template is moved out).
    fn take_block(&mut self, keep_template: bool) -> Option<PipelineEntry> {
        if self.lines.is_empty() {
            return None;
        }
        let line = join_lines(&mut self.lines, b"\n");
        let extracted = if keep_template {
            self.extracted.clone()
        } else {
            std::mem::take(&mut self.extracted)
        };
        let mut entry = Entry::new(
            self.labels.clone(),
            self.timestamp,
            line,
            self.held.take_ack(),
        );
        entry.stamp = self.stamp;
        Some(PipelineEntry { entry, extracted })
    }
}

/// Joins `lines` with `sep` (no copy for a single line) and empties the list.
pub(crate) fn join_lines(lines: &mut Vec<Bytes>, sep: &[u8]) -> Bytes {
    if lines.len() == 1 {
        return lines.pop().unwrap_or_default();
    }
    let len =
        lines.iter().map(Bytes::len).sum::<usize>() + sep.len() * lines.len().saturating_sub(1);
    let mut out = BytesMut::with_capacity(len);
    for (i, l) in lines.drain(..).enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(&l);
    }
    out.freeze()
}

impl MultilineStage {
    /// Builds the stage from its YAML body (weakly decoded, like Promtail).
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["firstline", "max_lines", "max_wait_time"], &cx.path)?;
        let weak_str = |name: &str| f.get(name).map_or(Ok(None), |v| weak_string(name, v));
        let Some(firstline) = weak_str("firstline")? else {
            return Err("multiline stage config must define `firstline` regular expression".into());
        };
        let firstline = re2::compile_bytes(&firstline)
            .map_err(|e| format!("multiline stage first line regex compilation error: {e}"))?;
        let max_wait = match weak_str("max_wait_time")? {
            None => MAX_WAIT_DEFAULT,
            Some(s) => parse_stage_duration(&s)
                .map_err(|e| format!("multiline stage `max_wait_time` parse error: {e}"))?,
        };
        let max_lines = match f
            .get("max_lines")
            .map_or(Ok(None), |v| weak_integer("max_lines", v))?
        {
            None => MAX_LINES_DEFAULT,
            Some(n) => u64::try_from(n)
                .map_err(|_| format!("cannot parse 'max_lines', {n} overflows uint"))?,
        };
        Ok(MultilineStage {
            firstline,
            max_lines,
            max_wait,
            streams: HashMap::new(),
        })
    }
}

impl Stage for MultilineStage {
    fn process(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        let is_first = self.firstline.is_match(&pe.entry.line);
        let state = match self.streams.get_mut(&pe.entry.labels) {
            Some(state) => state,
            // Lines before a stream's first `firstline` match pass through.
            None if !is_first => return Outcome::Keep,
            None => self
                .streams
                .entry(pe.entry.labels.clone())
                .or_insert_with(|| StreamState {
                    labels: LabelSet::new(),
                    timestamp: Timestamp::default(),
                    stamp: Stamp::ReadTime,
                    extracted: Extracted::default(),
                    lines: Vec::new(),
                    held: Held::default(),
                }),
        };
        if is_first {
            released.extend(state.take_block(false));
        }
        state.held.add(pe);
        if is_first {
            state.labels = pe.entry.labels.clone();
            state.timestamp = pe.entry.timestamp;
            state.stamp = pe.entry.stamp;
            state.extracted = std::mem::take(&mut pe.extracted);
        }
        state.lines.push(std::mem::take(&mut pe.entry.line));
        if state.lines.len() as u64 == self.max_lines {
            released.extend(state.take_block(true));
        }
        Outcome::Held
    }

    fn flush(&mut self, now: Option<Instant>, released: &mut Vec<PipelineEntry>) {
        for state in self.streams.values_mut() {
            if state.lines.is_empty() {
                continue;
            }
            if now.is_none_or(|now| state.held.expired(now, self.max_wait)) {
                released.extend(state.take_block(true));
            }
        }
    }

    fn flush_stream(&mut self, labels: &LabelSet, released: &mut Vec<PipelineEntry>) {
        self.streams.retain(|_, state| {
            if !state.held.forget_origin(labels) {
                return true;
            }
            released.extend(state.take_block(true));
            !state.held.no_origin()
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "multiline_tests.rs"]
mod tests;
