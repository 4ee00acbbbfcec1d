//! `timestamp`: sets the entry's time from an extracted value (spec §7.4).
//!
//! ```yaml
//! timestamp:
//!   source: time                  # required
//!   format: RFC3339Nano           # required: a Go layout or a named format
//!   fallback_formats: [UnixMs]    # tried in order when `format` fails
//!   location: Europe/Berlin       # IANA zone for custom layouts without an offset
//!   action_on_failure: fudge      # fudge (default) | skip
//! ```
//!
//! Formats: Go's named layouts (`ANSIC` … `RFC3339Nano`, parsed like `time.Parse`), `Unix`
//! (seconds, or `sec.frac` with the fraction scaled by its digit count), `UnixMs`, `UnixUs`,
//! `UnixNs`, and any other string as a Go reference layout ([`crate::pipeline::gotime`]).
//! `location` applies only to custom layouts. A custom layout without `2006` or `06` is
//! year-less: the current year is filled in, the previous one for a December value in January,
//! the next one for a January value in December.
//!
//! On failure (source missing, null, or unparsable) `fudge` uses the last timestamp parsed for
//! the same label set plus 1 ns (an LRU of 10,000 label sets, keyed on the labels *at this
//! stage*); without one, or with `skip`, the timestamp stays as it was (the read time).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_yaml::Value as Yaml;

use crate::entry::{Stamp, Timestamp};
use crate::pipeline::decode::Fields;
use crate::pipeline::gotime::{GoLayout, Zone, civil_from_days, local_zone};
use crate::pipeline::lru::LabelLru;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// Last-known timestamps kept for fudging (Promtail's value).
const FUDGE_CACHE_SIZE: usize = 10_000;

/// Go's named layouts.
const NAMED: [(&str, &str); 10] = [
    ("ANSIC", "Mon Jan _2 15:04:05 2006"),
    ("UnixDate", "Mon Jan _2 15:04:05 MST 2006"),
    ("RubyDate", "Mon Jan 02 15:04:05 -0700 2006"),
    ("RFC822", "02 Jan 06 15:04 MST"),
    ("RFC822Z", "02 Jan 06 15:04 -0700"),
    ("RFC850", "Monday, 02-Jan-06 15:04:05 MST"),
    ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"),
    ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"),
    ("RFC3339", "2006-01-02T15:04:05Z07:00"),
    ("RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"),
];

#[derive(Debug)]
enum Format {
    /// A named Go layout: `time.Parse` (UTC unless the value has a zone).
    Named(GoLayout),
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    /// A custom layout: `time.ParseInLocation` when a location is set.
    Custom {
        layout: GoLayout,
        yearless: bool,
    },
}

impl Format {
    fn new(s: &str) -> Format {
        if let Some((_, layout)) = NAMED.iter().find(|(name, _)| *name == s) {
            return Format::Named(GoLayout::new(layout));
        }
        match s {
            "Unix" => Format::Unix,
            "UnixMs" => Format::UnixMs,
            "UnixUs" => Format::UnixUs,
            "UnixNs" => Format::UnixNs,
            _ => Format::Custom {
                layout: GoLayout::new(s),
                yearless: !s.contains("06") && !s.contains("2006"),
            },
        }
    }
}

/// Promtail's `Unix` format: `sec` or `sec.frac`, the fraction scaled by its digit count with
/// Go's float arithmetic (so more than nine digits are truncated).
fn parse_unix(s: &str) -> Result<i64, &'static str> {
    let bad = |_| "invalid number";
    if s.bytes().filter(|&c| c == b'.').count() == 1 {
        let (sec, frac) = s.split_once('.').ok_or("invalid number")?;
        let sec: i64 = sec.parse().map_err(bad)?;
        let f: i64 = frac.parse().map_err(bad)?;
        let scale = 9 - i32::try_from(frac.len()).map_err(|_| "invalid number")?;
        let nsec = (f as f64 * 10f64.powi(scale)) as i64;
        return sec
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nsec))
            .ok_or("timestamp out of range");
    }
    let sec: i64 = s.parse().map_err(bad)?;
    sec.checked_mul(1_000_000_000)
        .ok_or("timestamp out of range")
}

fn parse_scaled(s: &str, ns_per_unit: i64) -> Result<i64, &'static str> {
    let n: i64 = s.parse().map_err(|_| "invalid number")?;
    n.checked_mul(ns_per_unit).ok_or("timestamp out of range")
}

/// The formats of one stage and the zones they need.
#[derive(Debug)]
pub struct TimeParser {
    formats: Vec<Format>,
    location: Option<Zone>,
    /// The machine's zone, for zone abbreviations in `time.Parse`.
    local: Zone,
    needs_now: bool,
}

impl TimeParser {
    /// A parser trying `format` first, then each of `fallback`; `location` is the stage's
    /// `location`, `local` the machine's zone ([`local_zone`]).
    pub fn new(format: &str, fallback: &[String], location: Option<Zone>, local: Zone) -> Self {
        let formats: Vec<Format> = std::iter::once(format)
            .chain(fallback.iter().map(String::as_str))
            .map(Format::new)
            .collect();
        let needs_now = formats
            .iter()
            .any(|f| matches!(f, Format::Custom { yearless: true, .. }));
        TimeParser {
            formats,
            location,
            local,
            needs_now,
        }
    }

    /// Parses `value` with the first format that accepts it; the error is the first format's.
    /// `now` (Unix seconds) decides the year of year-less layouts.
    pub fn parse(&self, value: &str, now: i64) -> Result<i64, &'static str> {
        let mut first_err = None;
        for f in &self.formats {
            match self.parse_one(f, value, now) {
                Ok(ns) => return Ok(ns),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or("no format"))
    }

    fn parse_one(&self, f: &Format, value: &str, now: i64) -> Result<i64, &'static str> {
        match f {
            Format::Named(layout) => layout.parse_unix_nanos(value, Zone::Utc, self.local),
            Format::Unix => parse_unix(value),
            Format::UnixMs => parse_scaled(value, 1_000_000),
            Format::UnixUs => parse_scaled(value, 1_000),
            Format::UnixNs => parse_scaled(value, 1),
            Format::Custom { layout, yearless } => {
                let (default, local) = match self.location {
                    Some(z) => (z, z),
                    None => (Zone::Utc, self.local),
                };
                let p = layout.parse(value)?;
                if !*yearless {
                    return p.to_unix_nanos(p.year, default, local);
                }
                if p.year != 0 {
                    return Err("timestamp is expected to not contain the year date component");
                }
                // Year-less: the year of "now" in the machine's zone, adjusted around New Year.
                let local_now = now + i64::from(self.local.offset_at(now));
                let (now_year, now_month) = civil_from_days(local_now.div_euclid(86_400));
                let year = match (p.month, now_month) {
                    (12, 1) => now_year - 1,
                    (1, 12) => now_year + 1,
                    _ => now_year,
                };
                p.to_unix_nanos(year, default, local)
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum OnFailure {
    Fudge,
    Skip,
}

/// The `timestamp` stage.
pub struct TimestampStage {
    source: String,
    parser: TimeParser,
    on_failure: OnFailure,
    last_known: LabelLru,
}

impl TimestampStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &[
                "source",
                "format",
                "fallback_formats",
                "location",
                "action_on_failure",
            ],
            &cx.path,
        )?;
        let source = f.string("source")?.unwrap_or_default();
        let format = f.string("format")?.unwrap_or_default();
        let fallback = f.string_list("fallback_formats")?;
        let location = f.string("location")?;
        let action = f.string("action_on_failure")?;
        if source.is_empty() {
            return Err("timestamp source value is required if timestamp is specified".into());
        }
        if format.is_empty() {
            return Err("timestamp format is required".into());
        }
        let location = match location {
            Some(name) => {
                Some(Zone::load(&name).map_err(|e| format!("invalid location specified: {e}"))?)
            }
            None => None,
        };
        let on_failure = match action.as_deref() {
            None | Some("fudge") => OnFailure::Fudge,
            Some("skip") => OnFailure::Skip,
            Some(_) => {
                return Err("invalid action on failure (supported values are [skip fudge])".into());
            }
        };
        Ok(TimestampStage {
            source,
            parser: TimeParser::new(&format, &fallback, location, local_zone()),
            last_known: LabelLru::new(if on_failure == OnFailure::Fudge {
                FUDGE_CACHE_SIZE
            } else {
                1
            }),
            on_failure,
        })
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Stage for TimestampStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let now = if self.parser.needs_now { now_unix() } else { 0 };
        let parsed = pe
            .extracted
            .get(&self.source)
            .and_then(|v| v.to_text())
            .and_then(|s| self.parser.parse(&s, now).ok());
        let entry = &mut pe.entry;
        match (parsed, &self.on_failure) {
            (Some(ns), OnFailure::Fudge) => {
                entry.timestamp = Timestamp(ns);
                entry.stamp = Stamp::Given;
                self.last_known.put(&entry.labels, entry.timestamp);
            }
            (Some(ns), OnFailure::Skip) => {
                entry.timestamp = Timestamp(ns);
                entry.stamp = Stamp::Given;
            }
            (None, OnFailure::Fudge) => {
                if let Some(last) = self.last_known.get(&entry.labels) {
                    entry.timestamp = Timestamp(last.0.saturating_add(1));
                    entry.stamp = Stamp::Given;
                    self.last_known.put(&entry.labels, entry.timestamp);
                }
            }
            (None, OnFailure::Skip) => {}
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "timestamp_tests.rs"]
mod tests;
