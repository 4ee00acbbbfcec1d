//! `metrics`: counters, gauges and histograms computed from entries, exported on `/metrics`
//! (spec §7.4, §9.2).
//!
//! ```yaml
//! metrics:
//!   <name>:
//!     type: Counter | Gauge | Histogram   # case-insensitive, required
//!     description: "help text"
//!     source: <extracted key>             # default: <name>
//!     prefix: promtail_custom_            # default (also when empty)
//!     max_idle_duration: 5m               # Go duration, >= 1s; default 5m
//!     config:
//!       # Counter: action inc|add (required), value, match_all, count_entry_bytes
//!       # Gauge:   action set|inc|dec|add|sub (required), value
//!       # Histogram: buckets (default Prometheus' .005 … 10), value
//! ```
//!
//! - The family is `<prefix><name>`; a series' labels are the entry's labels at this stage,
//!   without names starting with `__`.
//! - Without `match_all` the source key must be in the extracted map (a `null` value counts:
//!   `inc`/`dec` still count it). `value` keeps only entries whose value, as text, equals it.
//! - `add`/`set`/`sub`/observe convert the value to a float: numbers as they are, booleans 1/0,
//!   strings parsed as floats, else as Go durations in seconds (`"250ms"` → 0.25); a value that
//!   does not convert is skipped.
//! - `match_all: true` counts every entry (`inc`), or its line's bytes with
//!   `count_entry_bytes: true` (`add`); `match_all` with `add` and no `count_entry_bytes` counts
//!   nothing, as in Promtail.
//! - A series not updated for `max_idle_duration` (whole seconds) is removed after the scrape
//!   that finds it idle, as in Promtail. The stage's series go when the stage is dropped.
//!
//! Differences from Promtail: a negative counter `add` is ignored (Promtail panics, spec §12
//! #12); series are keyed by their exported labels, so two label sets that differ only in `__`
//! labels share a series (Promtail exports duplicates, which fail its scrape); metric names must
//! be legacy Prometheus names and histogram buckets increasing, checked at load (Promtail
//! panics); several metrics with config errors report the first in YAML order (Promtail's order
//! is random).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto;
use serde_yaml::Value as Yaml;

use crate::entry::LabelSet;
use crate::pipeline::decode::{self, Fields};
use crate::pipeline::extracted::ValueRef;
use crate::pipeline::stage::{BuildContext, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;
use crate::pipeline::stages::drop::parse_go_duration;

/// Prometheus' default buckets.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Unix seconds now.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CounterAction {
    Inc,
    Add,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GaugeAction {
    Set,
    Inc,
    Dec,
    Add,
    Sub,
}

#[derive(Debug)]
enum Kind {
    Counter {
        action: CounterAction,
        match_all: bool,
        count_bytes: bool,
    },
    Gauge(GaugeAction),
    Histogram,
}

/// One series' state.
#[derive(Debug)]
struct Series {
    /// Counter or gauge value; histogram sum.
    value: f64,
    /// Histogram: observations per bucket (not cumulative), then the total count.
    buckets: Vec<u64>,
    count: u64,
    last_mod: i64,
}

/// One metric family and its series, shared by the stage and its collector.
struct Family {
    name: String,
    help: String,
    kind: proto::MetricType,
    /// Histogram upper bounds (without `+Inf`).
    bounds: Vec<f64>,
    max_idle_secs: i64,
    clock: fn() -> i64,
    series: Mutex<HashMap<LabelSet, Series>>,
}

impl Family {
    /// Applies `f` to the series of `labels` (created at zero), marking it updated.
    fn update(&self, labels: &LabelSet, f: impl FnOnce(&mut Series)) {
        let clean = |k: &str| !k.starts_with("__") && !k.is_empty();
        let owned;
        let key = if labels.iter().all(|(k, _)| clean(k)) {
            labels
        } else {
            owned = LabelSet::from_pairs(labels.iter().filter(|(k, _)| clean(k)));
            &owned
        };
        let now = (self.clock)();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if !series.contains_key(key) {
            series.insert(
                key.clone(),
                Series {
                    value: 0.0,
                    buckets: vec![0; self.bounds.len()],
                    count: 0,
                    last_mod: now,
                },
            );
        }
        if let Some(s) = series.get_mut(key) {
            f(s);
            s.last_mod = now;
        }
    }

    fn observe(&self, labels: &LabelSet, v: f64) {
        let i = self.bounds.iter().position(|b| v <= *b);
        self.update(labels, |s| {
            if let Some(i) = i {
                s.buckets[i] += 1;
            }
            s.count += 1;
            s.value += v;
        });
    }

    /// The family's samples; then removes the series idle for `max_idle_secs`.
    fn collect(&self) -> proto::MetricFamily {
        let mut mf = proto::MetricFamily::default();
        mf.set_name(self.name.clone());
        mf.set_help(self.help.clone());
        mf.set_field_type(self.kind);
        let now = (self.clock)();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut metrics = Vec::with_capacity(series.len());
        for (labels, s) in series.iter() {
            let mut m = proto::Metric::default();
            m.set_label(
                labels
                    .iter()
                    .map(|(k, v)| {
                        let mut p = proto::LabelPair::default();
                        p.set_name(k.to_string());
                        p.set_value(v.to_string());
                        p
                    })
                    .collect(),
            );
            match self.kind {
                proto::MetricType::COUNTER => {
                    let mut c = proto::Counter::default();
                    c.set_value(s.value);
                    m.set_counter(c);
                }
                proto::MetricType::GAUGE => {
                    let mut g = proto::Gauge::default();
                    g.set_value(s.value);
                    m.set_gauge(g);
                }
                _ => {
                    let mut h = proto::Histogram::default();
                    let mut cumulative = 0;
                    h.set_bucket(
                        self.bounds
                            .iter()
                            .zip(&s.buckets)
                            .map(|(bound, n)| {
                                cumulative += n;
                                let mut b = proto::Bucket::default();
                                b.set_cumulative_count(cumulative);
                                b.set_upper_bound(*bound);
                                b
                            })
                            .collect(),
                    );
                    h.set_sample_count(s.count);
                    h.set_sample_sum(s.value);
                    m.set_histogram(h);
                }
            }
            metrics.push(m);
        }
        series.retain(|_, s| now.saturating_sub(s.last_mod) < self.max_idle_secs);
        mf.set_metric(metrics);
        mf
    }
}

/// The collector of one stage's families, registered on the process registry.
#[derive(Clone)]
struct StageCollector {
    /// A descriptor unique to this stage (the registry needs one to tell collectors apart; it
    /// names no family that is exported).
    desc: Arc<Desc>,
    families: Arc<Vec<Arc<Family>>>,
}

impl Collector for StageCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.families.iter().map(|f| f.collect()).collect()
    }
}

/// One configured metric.
struct MetricDef {
    source: String,
    value: Option<String>,
    kind: Kind,
    family: Arc<Family>,
}

/// The `metrics` stage.
pub struct MetricsStage {
    metrics: Vec<MetricDef>,
    collector: StageCollector,
    registry: prometheus::Registry,
}

/// Promtail's `getFloat`: numbers, booleans, float strings, else Go durations in seconds.
fn to_float(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Num(n) => Some(n),
        ValueRef::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        ValueRef::Str(s) => s
            .parse::<f64>()
            .ok()
            .or_else(|| parse_go_duration(s).ok().map(|ns| ns as f64 / 1e9)),
        ValueRef::Null => None,
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Decodes the histogram `buckets`: a list of numbers (strictly: no strings).
fn decode_buckets(v: Option<&Yaml>) -> Result<Vec<f64>, String> {
    let items = match v {
        None | Some(Yaml::Null) => return Ok(DEFAULT_BUCKETS.to_vec()),
        Some(Yaml::Sequence(items)) => items,
        Some(other) => {
            return Err(format!(
                "'buckets': source data must be an array or slice, got {}",
                decode::go_type(other)
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Yaml::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
            other => {
                return Err(format!(
                    "'buckets[{i}]' expected type 'float64', got unconvertible type '{}', value: '{}'",
                    decode::go_type(other),
                    decode::weak_string("", other)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                ));
            }
        }
    }
    if out.last().is_some_and(|b| *b == f64::INFINITY) {
        out.pop();
    }
    if out.is_empty() {
        return Ok(DEFAULT_BUCKETS.to_vec());
    }
    for w in out.windows(2) {
        if w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less) {
            return Err(format!(
                "histogram buckets must be in increasing order: {:.6} >= {:.6}",
                w[0], w[1]
            ));
        }
    }
    Ok(out)
}

/// Unique ids for the stages' registry descriptors.
static STAGE_IDS: AtomicU64 = AtomicU64::new(0);

impl MetricsStage {
    /// Builds the stage from its YAML body and registers its families.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        Self::build_with_clock(body, cx, unix_now)
    }

    /// [`MetricsStage::build`] with a clock of Unix seconds (tests inject one).
    pub(crate) fn build_with_clock(
        body: &Yaml,
        cx: &BuildContext,
        clock: fn() -> i64,
    ) -> Result<Self, BuildError> {
        let map = match body {
            Yaml::Null => None,
            Yaml::Mapping(m) => Some(m),
            other => {
                return Err(format!("'' expected a map, got '{}'", decode::go_type(other)).into());
            }
        };
        let mut metrics = Vec::new();
        for (key, config) in map.into_iter().flatten() {
            let Some(name) = key.as_str() else {
                return Err(format!(
                    "'' has invalid keys: {}",
                    decode::weak_string("", key)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                )
                .into());
            };
            metrics.push(Self::metric(name, config, cx, clock)?);
        }
        let families: Vec<Arc<Family>> = metrics.iter().map(|m| Arc::clone(&m.family)).collect();
        let id = STAGE_IDS.fetch_add(1, Ordering::Relaxed).to_string();
        let desc = Desc::new(
            "ferrotail_metrics_stage".to_string(),
            "Families of one metrics stage.".to_string(),
            Vec::new(),
            HashMap::from([("stage".to_string(), id)]),
        )
        .map_err(|e| format!("metrics stage: {e}"))?;
        let collector = StageCollector {
            desc: Arc::new(desc),
            families: Arc::new(families),
        };
        let registry = cx.metrics.registry().clone();
        registry
            .register(Box::new(collector.clone()))
            .map_err(|e| format!("metrics stage: {e}"))?;
        Ok(MetricsStage {
            metrics,
            collector,
            registry,
        })
    }

    /// Decodes and validates one metric.
    fn metric(
        name: &str,
        config: &Yaml,
        cx: &BuildContext,
        clock: fn() -> i64,
    ) -> Result<MetricDef, String> {
        let path = format!("{}.{name}", cx.path);
        let f = Fields::new(
            config,
            &[
                "type",
                "description",
                "source",
                "prefix",
                "max_idle_duration",
                "config",
            ],
            &path,
        )?;
        let ty = f.string("type")?.unwrap_or_default().to_lowercase();
        let help = f.string("description")?.unwrap_or_default();
        let source = f.string("source")?.unwrap_or_else(|| name.to_string());
        let prefix = f
            .string("prefix")?
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "promtail_custom_".to_string());
        let idle = f.string("max_idle_duration")?;
        if !matches!(ty.as_str(), "counter" | "gauge" | "histogram") {
            return Err(format!(
                "invalid metric type '{ty}', metric type must be one of 'counter', 'gauge', or 'histogram'"
            ));
        }
        let max_idle_secs = match idle {
            None => 300,
            Some(d) => {
                let ns = parse_go_duration(&d).map_err(|e| {
                    format!("max_idle_duration could not be parsed as a time.Duration: '{e}'")
                })?;
                if ns < 1_000_000_000 {
                    return Err("max_idle_duration less than 1s not allowed".to_string());
                }
                ns / 1_000_000_000
            }
        };
        let full_name = format!("{prefix}{name}");
        if !is_metric_name(&full_name) {
            return Err(format!("invalid metric name: {full_name:?}"));
        }
        let null = Yaml::Null;
        let body = f.get("config").unwrap_or(&null);
        let known: &[&str] = match ty.as_str() {
            "counter" => &["match_all", "count_entry_bytes", "value", "action"],
            "gauge" => &["value", "action"],
            _ => &["value", "buckets"],
        };
        let c = Fields::new(body, known, &format!("{path}.config"))?;
        let value = c.string("value")?;
        let mut bounds = Vec::new();
        let (kind, proto_kind) = match ty.as_str() {
            "counter" => {
                let match_all = c.boolean("match_all")?;
                let count_bytes = c.boolean("count_entry_bytes")?;
                let action = c.string("action")?.unwrap_or_default();
                if action.is_empty() {
                    return Err("counter action must be defined as either `inc` or `add`".into());
                }
                let action = match action.to_lowercase().as_str() {
                    "inc" => CounterAction::Inc,
                    "add" => CounterAction::Add,
                    other => {
                        return Err(format!(
                            "action {other} is not valid, action must be either `inc` or `add`"
                        ));
                    }
                };
                let match_all = match_all == Some(true);
                let count_bytes = count_bytes == Some(true);
                if match_all && value.is_some() {
                    return Err("`match_all: true` cannot be combined with `value`, please remove `match_all` or `value`".into());
                }
                if count_bytes && !match_all {
                    return Err(
                        "`count_entry_bytes: true` can only be set with `match_all: true`".into(),
                    );
                }
                if count_bytes && action != CounterAction::Add {
                    return Err(
                        "`count_entry_bytes: true` can only be used with `action: add`".into(),
                    );
                }
                (
                    Kind::Counter {
                        action,
                        match_all,
                        count_bytes,
                    },
                    proto::MetricType::COUNTER,
                )
            }
            "gauge" => {
                let action = c.string("action")?.unwrap_or_default();
                if action.is_empty() {
                    return Err(
                        "gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`"
                            .into(),
                    );
                }
                let action = match action.to_lowercase().as_str() {
                    "set" => GaugeAction::Set,
                    "inc" => GaugeAction::Inc,
                    "dec" => GaugeAction::Dec,
                    "add" => GaugeAction::Add,
                    "sub" => GaugeAction::Sub,
                    other => {
                        return Err(format!(
                            "action {other} is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`"
                        ));
                    }
                };
                (Kind::Gauge(action), proto::MetricType::GAUGE)
            }
            _ => {
                bounds = decode_buckets(c.get("buckets"))?;
                (Kind::Histogram, proto::MetricType::HISTOGRAM)
            }
        };
        Ok(MetricDef {
            source,
            value,
            kind,
            family: Arc::new(Family {
                name: full_name,
                help,
                kind: proto_kind,
                bounds,
                max_idle_secs,
                clock,
                series: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl Drop for MetricsStage {
    fn drop(&mut self) {
        // The stage's series go with it (Promtail deletes them at cleanup).
        let _ = self.registry.unregister(Box::new(self.collector.clone()));
    }
}

impl Stage for MetricsStage {
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        let labels = &pe.entry.labels;
        for m in &self.metrics {
            let fam = &m.family;
            if let Kind::Counter {
                action,
                match_all: true,
                count_bytes,
            } = m.kind
            {
                if count_bytes {
                    let n = pe.entry.line.len() as f64;
                    fam.update(labels, |s| s.value += n);
                } else if action == CounterAction::Inc {
                    fam.update(labels, |s| s.value += 1.0);
                }
                continue;
            }
            let Some(v) = pe.extracted.get(&m.source) else {
                continue;
            };
            if let Some(want) = &m.value {
                match v.to_text() {
                    Some(text) if text == want.as_str() => {}
                    _ => continue,
                }
            }
            match m.kind {
                Kind::Counter { action, .. } => match action {
                    CounterAction::Inc => fam.update(labels, |s| s.value += 1.0),
                    CounterAction::Add => match to_float(v) {
                        // A negative add would panic Promtail; it is ignored here.
                        Some(f) if f >= 0.0 || f.is_nan() => fam.update(labels, |s| s.value += f),
                        _ => {}
                    },
                },
                Kind::Gauge(action) => match action {
                    GaugeAction::Inc => fam.update(labels, |s| s.value += 1.0),
                    GaugeAction::Dec => fam.update(labels, |s| s.value -= 1.0),
                    GaugeAction::Set | GaugeAction::Add | GaugeAction::Sub => {
                        if let Some(f) = to_float(v) {
                            fam.update(labels, |s| match action {
                                GaugeAction::Set => s.value = f,
                                GaugeAction::Add => s.value += f,
                                _ => s.value -= f,
                            });
                        }
                    }
                },
                Kind::Histogram => {
                    if let Some(f) = to_float(v) {
                        fam.observe(labels, f);
                    }
                }
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "metrics_tests.rs"]
mod tests;
