//! `drop`: drops entries that meet every configured criterion (spec §7.5).
//!
//! ```yaml
//! drop:
//!   source: key | [k1, k2]   # extracted keys
//!   separator: ";"           # joins the values of several keys (default ";")
//!   expression: '<RE2>'      # unanchored; on the joined values, or on the line without source
//!   value: '<exact string>'  # requires source; exclusive with expression
//!   older_than: 24h          # Go duration: timestamp < now - d
//!   longer_than: 8kb         # bytes (int or string with a unit): len(line) > n
//!   drop_counter_reason: drop_stage
//! ```
//!
//! Promtail's rules, kept exactly (including the ones its docs state differently, spec §12 #10):
//! - at least one of `source`, `expression`, `older_than`, `longer_than` is required;
//! - the criteria are ANDed; checks run cheapest first and stop at the first that fails;
//! - `source` alone: drop when **all** the keys exist in the extracted map (a `null` value, as
//!   `json` stores for an expression that matched nothing, exists);
//! - `source` with `expression`/`value`: the values of the keys that exist are joined with
//!   `separator` (keys that do not exist are skipped, so no key at all gives `""`); a null value
//!   keeps the entry; `value` compares the joined text for equality (Promtail compiles it to
//!   `^QuoteMeta(value)$`, which is the same);
//! - the body is decoded weakly (`longer_than: 8192`, `value: 200` are accepted).
//!
//! Differences from Promtail: a `source` list holding a non-string is refused with Promtail's
//! "invalid type" error (Promtail panics). `longer_than` errors use Promtail's text but the byte
//! size grammar is [`ByteSize`]'s.

use std::time::SystemTime;

use serde_yaml::Value as Yaml;

use crate::entry::Timestamp;
use crate::pipeline::decode::{self, Fields};
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::units::ByteSize;
use crate::units::GoDuration;

const ERR_EMPTY: &str = "drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`";
const ERR_VALUE_AND_EXPRESSION: &str =
    "drop stage config error, `value` and `expression` cannot both be defined at the same time.";
const ERR_SOURCE_TYPE: &str = "drop stage source invalid type should be string or list of strings";
const ERR_VALUE_WITHOUT_SOURCE: &str =
    "drop stage config must contain `source` if `value` is specified";

/// Go's `time.ParseDuration` exactly: unlike config durations, a bare number other than `0` has
/// no unit and is an error.
pub(crate) fn parse_go_duration(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits != "0" && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("time: missing unit in duration {s:?}"));
    }
    GoDuration::parse(s).map(GoDuration::as_nanos)
}

/// Promtail's `flagext.ByteSize.Set`: the text is upper-cased, then parsed as a byte size.
fn parse_byte_size(s: &str) -> Result<u64, String> {
    let upper = s.to_uppercase();
    ByteSize::parse(&upper).map(ByteSize::bytes).map_err(|e| {
        let why = if e.contains("out of range") {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("strconv.UnmarshalText: parsing {upper:?}: {why}")
    })
}

/// What the values of `source` are compared with.
enum Test {
    /// Only the presence of every key.
    Present,
    /// The joined values match the regex.
    Regex(regex::Regex),
    /// The joined values equal the text.
    Equals(String),
}

/// The `drop` stage.
pub struct DropStage {
    longer_than: Option<u64>,
    /// In nanoseconds.
    older_than: Option<i64>,
    /// The keys of `source` (`None`: not configured).
    source: Option<Vec<String>>,
    separator: String,
    test: Test,
    /// `expression` without `source`: matched against the line.
    line_regex: Option<regex::bytes::Regex>,
    dropped: DropCounter,
    /// The clock of `older_than` (tests inject one).
    pub(crate) now: fn() -> Timestamp,
    /// Reused buffer for joined values.
    joined: String,
}

/// Decodes `source`: a string or a list of strings (weakly decoded values keep their type).
fn decode_source(v: &Yaml) -> Result<Option<Vec<String>>, String> {
    match v {
        Yaml::Null => Ok(None),
        Yaml::Tagged(t) => decode_source(&t.value),
        Yaml::String(s) => Ok(Some(vec![s.clone()])),
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.clone()),
                _ => Err(ERR_SOURCE_TYPE.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(ERR_SOURCE_TYPE.to_string()),
    }
}

impl DropStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &[
                "drop_counter_reason",
                "source",
                "value",
                "separator",
                "expression",
                "older_than",
                "longer_than",
            ],
            &cx.path,
        )?;
        let weak = |name: &str| -> Result<Option<String>, String> {
            f.get(name)
                .map_or(Ok(None), |v| decode::weak_string(name, v))
        };
        let reason = weak("drop_counter_reason")?;
        let value = weak("value")?;
        let separator = weak("separator")?;
        let expression = weak("expression")?;
        let older_than = weak("older_than")?;
        let longer_than = weak("longer_than")?;
        let source = f.get("source").map_or(Ok(None), decode_source);
        let source_set = f.get("source").is_some_and(|v| !v.is_null());
        if !source_set && expression.is_none() && older_than.is_none() && longer_than.is_none() {
            return Err(ERR_EMPTY.into());
        }
        let source = source?;
        let reason = reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "drop_stage".to_string());
        let older_than = match older_than {
            Some(d) => Some(parse_go_duration(&d).map_err(|e| {
                format!("drop stage invalid duration, {d} cannot be converted to a duration: {e}")
            })?),
            None => None,
        };
        if value.is_some() && source.is_none() {
            return Err(ERR_VALUE_WITHOUT_SOURCE.into());
        }
        if value.is_some() && expression.is_some() {
            return Err(ERR_VALUE_AND_EXPRESSION.into());
        }
        let compile_err = |e: String| format!("drop stage regex compilation error: {e}");
        let mut test = Test::Present;
        let mut line_regex = None;
        if let Some(expr) = &expression {
            if source.is_some() {
                test = Test::Regex(crate::pipeline::re2::compile(expr).map_err(compile_err)?);
            } else {
                line_regex = Some(crate::pipeline::re2::compile_bytes(expr).map_err(compile_err)?);
            }
        }
        if let Some(v) = value {
            test = Test::Equals(v);
        }
        let longer_than = match longer_than {
            Some(s) => Some(
                parse_byte_size(&s)
                    .map_err(|e| format!("drop stage failed to parse longer_than to bytes: {e}"))?,
            ),
            None => None,
        };
        Ok(DropStage {
            longer_than,
            older_than,
            source,
            separator: separator.unwrap_or_else(|| ";".to_string()),
            test,
            line_regex,
            dropped: cx.drop_counter(&reason),
            now: || Timestamp::from_system_time(SystemTime::now()),
            joined: String::new(),
        })
    }

    /// Whether every configured criterion holds.
    fn should_drop(&mut self, pe: &PipelineEntry) -> bool {
        if let Some(max) = self.longer_than
            && pe.entry.line.len() as u64 <= max
        {
            return false;
        }
        if let Some(age) = self.older_than {
            let limit = (self.now)().0.saturating_sub(age);
            if pe.entry.timestamp.0 >= limit {
                return false;
            }
        }
        if let Some(regex) = &self.line_regex
            && !regex.is_match(&pe.entry.line)
        {
            return false;
        }
        let Some(keys) = &self.source else {
            return true;
        };
        let ex = &pe.extracted;
        if let Test::Present = self.test {
            return keys.iter().all(|k| ex.contains(k));
        }
        // Join the values of the keys that exist; a single value is borrowed.
        self.joined.clear();
        let mut first = true;
        for key in keys {
            let Some(v) = ex.get(key) else { continue };
            let Some(text) = v.to_text() else {
                return false;
            };
            if !first {
                self.joined.push_str(&self.separator);
            }
            first = false;
            self.joined.push_str(&text);
        }
        match &self.test {
            Test::Regex(r) => r.is_match(&self.joined),
            Test::Equals(v) => self.joined == *v,
            Test::Present => true,
        }
    }
}

impl Stage for DropStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        if self.should_drop(pe) {
            self.dropped.count()
        } else {
            Outcome::Keep
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "drop_tests.rs"]
mod tests;
