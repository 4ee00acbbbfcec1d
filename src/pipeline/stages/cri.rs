//! `cri`: parses the CRI log format (containerd, CRI-O) and re-joins lines the runtime split
//! into partial fragments (spec §7.2).
//!
//! ```yaml
//! cri:
//!   max_partial_lines: 100                # streams with a partial line held at once (0: 100)
//!   max_partial_line_size: 0              # bytes; only used with the next option
//!   max_partial_line_size_truncate: false # cut held partial lines to max_partial_line_size
//! ```
//!
//! A line `<time> <stream> <flags> <content>` is split exactly as Promtail's regex
//! `^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$` would
//! (`\S` is Go's ASCII class: anything but `\t \n \f \r` and space); the four values go to the
//! extracted map. Then, as in Promtail's base pipeline: `labels: {stream: }`,
//! `timestamp: {source: time, format: RFC3339Nano}` (failures fudge the timestamp),
//! `output: {source: content}` and `output: {source: tags}`. A line that does not match passes
//! through those stages unchanged (it is a full line).
//!
//! Partial lines, per stream (the entry's labels after the base stages, so per file and per
//! `stream`):
//! - `flags` `P`: the content is appended to the stream's held partial line (or starts one) and
//!   nothing goes on. If `max_partial_lines` streams already hold a partial line, all of them go
//!   on first, each as its own entry, and this fragment starts a new partial line;
//! - any other flags: a held partial line of the stream is completed with this content and goes
//!   on with this (last) fragment's labels, timestamp and extracted map; otherwise the line goes
//!   on as it is;
//! - with `max_partial_line_size_truncate: true` the joined line is cut to
//!   `max_partial_line_size` bytes after each append (0 cuts it to nothing, as in Promtail).
//!
//! A partial line that goes on by itself has the labels, timestamp and extracted map of its last
//! fragment. Its entry carries the acknowledgements of all its fragments (at-least-once).
//!
//! Differences from Promtail (which holds a partial line until its `F` fragment arrives, however
//! long that takes, and loses it at shutdown):
//! - a held partial line goes on by itself after 3 s without a new fragment for its stream
//!   (checked on the runtime's 500 ms flush tick), when its file is released, and at shutdown.
//!   The runtime writes the fragments of one line back to back, so this only happens when the
//!   container died mid-line; it keeps a partial line from holding its file's position (and the
//!   in-flight byte budget) for ever;
//! - content that is not valid UTF-8 keeps its bytes in the line (the extracted `content` value
//!   is the lossy UTF-8 text).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_yaml::Value as Yaml;

use crate::entry::{Ack, Entry, LabelSet, Timestamp};
use crate::pipeline::decode::{Fields, weak_boolean, weak_integer};
use crate::pipeline::extracted::{Key, Text, Value, ValueRef};
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::held::Held;
use crate::pipeline::stages::multiline::join_lines;
use crate::pipeline::stages::{BuildError, StageType, build};

const MAX_PARTIAL_LINES_DEFAULT: i64 = 100;
/// How long a partial line waits for its next fragment before it goes on by itself.
const PARTIAL_WAIT: Duration = Duration::from_secs(3);

/// Byte ranges of the four parts of a CRI line.
#[derive(Debug, PartialEq, Eq)]
struct CriParts {
    time: std::ops::Range<usize>,
    stream: std::ops::Range<usize>,
    flags: std::ops::Range<usize>,
    content: std::ops::Range<usize>,
}

/// Go's `\s` (ASCII): tab, newline, form feed, carriage return, space.
fn is_go_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// A non-empty run of non-space bytes starting at `from`, which must be followed by a space.
fn token(line: &[u8], from: usize) -> Option<std::ops::Range<usize>> {
    let len = line.get(from..)?.iter().position(|&b| is_go_space(b))?;
    (len > 0 && line[from + len] == b' ').then_some(from..from + len)
}

/// Splits a line like Promtail's CRI regex (see the module docs); `None` if it does not match.
fn split_cri(line: &[u8]) -> Option<CriParts> {
    let time = token(line, 0)?;
    let s = time.end + 1;
    let stream = [&b"stdout "[..], b"stderr "]
        .iter()
        .find(|p| line[s..].starts_with(p))
        .map(|_| s..s + 6)?;
    let flags = token(line, stream.end + 1)?;
    let content = flags.end + 1..line.len();
    Some(CriParts {
        time,
        stream,
        flags,
        content,
    })
}

/// A partial line held for one stream.
struct Partial {
    /// The last fragment's entry (its line moved to `fragments`) and extracted map.
    last: PipelineEntry,
    fragments: Vec<Bytes>,
    len: usize,
    held: Held,
}

impl Partial {
    fn into_entry(mut self) -> PipelineEntry {
        self.last.entry.line = join_lines(&mut self.fragments, b"");
        self.last.entry.ack = self.held.take_ack();
        self.last
    }
}

/// The `cri` stage.
pub struct CriStage {
    keys: [Key; 4],
    labels: Box<dyn Stage>,
    timestamp: Box<dyn Stage>,
    output_content: Box<dyn Stage>,
    output_tags: Box<dyn Stage>,
    max_partial_lines: i64,
    /// `Some(n)`: cut partial lines to n bytes.
    truncate_to: Option<usize>,
    partials: HashMap<LabelSet, Partial>,
}

impl CriStage {
    /// Builds the stage from its YAML body (weakly decoded, like Promtail).
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &[
                "max_partial_lines",
                "max_partial_line_size",
                "max_partial_line_size_truncate",
            ],
            &cx.path,
        )?;
        let int = |name: &str| f.get(name).map_or(Ok(None), |v| weak_integer(name, v));
        let max_partial_lines = match int("max_partial_lines")? {
            None | Some(0) => MAX_PARTIAL_LINES_DEFAULT,
            Some(n) => n,
        };
        let size = int("max_partial_line_size")?.unwrap_or(0);
        let size = u64::try_from(size)
            .map_err(|_| format!("cannot parse 'max_partial_line_size', {size} overflows uint"))?;
        let truncate = f
            .get("max_partial_line_size_truncate")
            .map_or(Ok(None), |v| {
                weak_boolean("max_partial_line_size_truncate", v)
            })?
            .unwrap_or(false);
        let base = |ty: StageType, yaml: &str| -> Result<Box<dyn Stage>, BuildError> {
            let body: Yaml = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
            build(ty, &body, cx)
        };
        Ok(CriStage {
            keys: ["time", "stream", "flags", "content"].map(Key::from),
            labels: base(StageType::Labels, "{stream: }")?,
            timestamp: base(StageType::Timestamp, "{source: time, format: RFC3339Nano}")?,
            output_content: base(StageType::Output, "{source: content}")?,
            output_tags: base(StageType::Output, "{source: tags}")?,
            max_partial_lines,
            truncate_to: truncate.then(|| usize::try_from(size).unwrap_or(usize::MAX)),
            partials: HashMap::new(),
        })
    }

    /// Cuts the fragments to `truncate_to` bytes in total, if set.
    fn truncate(&self, fragments: &mut Vec<Bytes>, len: &mut usize) {
        let Some(max) = self.truncate_to else { return };
        if *len <= max {
            return;
        }
        let mut kept = 0;
        fragments.retain_mut(|frag| {
            let room = max - kept;
            if room == 0 {
                return false;
            }
            frag.truncate(room);
            kept += frag.len();
            true
        });
        *len = kept;
    }

    /// Parses the line into the extracted map and runs the base stages (they always keep the
    /// entry, but their outcome is honoured).
    fn parse(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        let mut raw_content = None;
        if let Some(parts) = split_cri(&pe.entry.line) {
            let line = pe.entry.line.clone();
            let ranges = [parts.time, parts.stream, parts.flags, parts.content];
            for (i, (key, range)) in self.keys.iter().zip(ranges).enumerate() {
                let text = match std::str::from_utf8(&line[range.clone()]) {
                    Ok(s) => Text::slice_of(&line, s),
                    Err(_) => {
                        if i == 3 {
                            raw_content = Some(line.slice(range.clone()));
                        }
                        Text::from(String::from_utf8_lossy(&line[range]).into_owned())
                    }
                };
                pe.extracted.insert(Key::clone(key), Value::Str(text));
            }
        }
        for stage in [
            &mut self.labels,
            &mut self.timestamp,
            &mut self.output_content,
        ] {
            match stage.process(pe, released) {
                Outcome::Keep => {}
                other => return other,
            }
        }
        if let Some(raw) = raw_content {
            pe.entry.line = raw;
        }
        self.output_tags.process(pe, released)
    }
}

impl Stage for CriStage {
    fn process(&mut self, pe: &mut PipelineEntry, released: &mut Vec<PipelineEntry>) -> Outcome {
        match self.parse(pe, released) {
            Outcome::Keep => {}
            other => return other,
        }
        let partial = matches!(pe.extracted.get("flags"), Some(ValueRef::Str("P")));
        if !partial {
            // A full line: completes the stream's partial line, if any.
            let Some(mut prev) = self.partials.remove(&pe.entry.labels) else {
                return Outcome::Keep;
            };
            prev.len += pe.entry.line.len();
            prev.fragments.push(std::mem::take(&mut pe.entry.line));
            let (mut fragments, mut len) = (std::mem::take(&mut prev.fragments), prev.len);
            self.truncate(&mut fragments, &mut len);
            pe.entry.line = join_lines(&mut fragments, b"");
            pe.entry.ack.merge(prev.held.take_ack());
            return Outcome::Keep;
        }
        if self.partials.len() as i64 >= self.max_partial_lines {
            tracing::warn!(
                threshold = self.max_partial_lines,
                "cri stage: partial lines upperbound exceeded. merging it to single line"
            );
            released.extend(self.partials.drain().map(|(_, p)| p.into_entry()));
        }
        let line = std::mem::take(&mut pe.entry.line);
        let key = pe.entry.labels.clone();
        // The entry stays behind as an empty shell (it is dropped as held); its content moves.
        let shell = Entry::new(key.clone(), Timestamp(0), Bytes::new(), Ack::none());
        let last = PipelineEntry {
            entry: std::mem::replace(&mut pe.entry, shell),
            extracted: std::mem::take(&mut pe.extracted),
        };
        let mut p = match self.partials.remove(&key) {
            Some(mut p) => {
                p.last = last;
                p
            }
            None => Partial {
                last,
                fragments: Vec::new(),
                len: 0,
                held: Held::default(),
            },
        };
        p.held.add(&mut p.last);
        p.len += line.len();
        p.fragments.push(line);
        self.truncate(&mut p.fragments, &mut p.len);
        self.partials.insert(key, p);
        Outcome::Held
    }

    fn flush(&mut self, now: Option<Instant>, released: &mut Vec<PipelineEntry>) {
        let expired: Vec<LabelSet> = self
            .partials
            .iter_mut()
            .filter_map(|(k, p)| {
                now.is_none_or(|now| p.held.expired(now, PARTIAL_WAIT))
                    .then(|| k.clone())
            })
            .collect();
        for k in expired {
            released.extend(self.partials.remove(&k).map(Partial::into_entry));
        }
    }

    fn flush_stream(&mut self, labels: &LabelSet, released: &mut Vec<PipelineEntry>) {
        let of_stream: Vec<LabelSet> = self
            .partials
            .iter_mut()
            .filter_map(|(k, p)| p.held.forget_origin(labels).then(|| k.clone()))
            .collect();
        for k in of_stream {
            released.extend(self.partials.remove(&k).map(Partial::into_entry));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "cri_tests.rs"]
mod tests;
