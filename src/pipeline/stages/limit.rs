//! `limit`: rate-limits entries with a token bucket, waiting or dropping (spec §7.5).
//!
//! ```yaml
//! limit:
//!   rate: 10                   # required > 0: lines per second (float)
//!   burst: 10                  # required > 0: bucket size (starts full)
//!   drop: false                # false: wait for a token (back-pressure); true: drop the excess
//!   by_label_name: namespace   # one bucket per value of this label; requires drop: true
//!   max_distinct_labels: 10000 # buckets kept; raised to at least 10000
//! ```
//!
//! - One bucket per stage (so per job), or per value of `by_label_name`; an entry without that
//!   label is never limited.
//! - Dropped entries count in `logentry_dropped_lines_total{reason="ratelimit_drop_stage"}`
//!   and, by label, in `logentry_dropped_lines_by_label_total{label_name, label_value}`.
//! - Per-label buckets live in a two-generation map like Promtail's: when the new generation
//!   reaches `max_distinct_labels` it becomes the old one (the one before is discarded) and the
//!   by-label drop counter is reset, as Promtail does (the whole family).
//! - Without `drop`, `process` sleeps until a token is free: the stage says so with
//!   [`Stage::may_block`], and the runtime runs the pipeline where blocking is allowed.
//! - The body is decoded weakly (`rate: "0.5"`).
//!
//! The bucket is [`governor`]'s GCRA, which admits exactly what Go's `rate.Limiter` (a token
//! bucket of `burst` tokens refilled at `rate`/s, starting full) admits.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use prometheus::IntCounterVec;
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::{self, Fields};
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// Promtail's floor of `max_distinct_labels`.
const MIN_DISTINCT_LABELS: usize = 10_000;

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Promtail's two-generation map of per-label buckets.
struct GenMap<C: Clock> {
    new: HashMap<String, Limiter<C>>,
    old: HashMap<String, Limiter<C>>,
    max: usize,
}

/// Where the stage sleeps while it waits for a token (tests advance a fake clock instead).
pub(crate) type Sleep = Box<dyn FnMut(Duration) + Send>;

/// The `limit` stage.
pub struct LimitStage<C: Clock = DefaultClock> {
    quota: Quota,
    clock: C,
    drop: bool,
    /// The single bucket (without `by_label_name`).
    single: Limiter<C>,
    by_label: Option<(String, GenMap<C>)>,
    dropped: DropCounter,
    dropped_by_label: IntCounterVec,
    sleep: Sleep,
}

impl LimitStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        Self::build_with_clock(
            body,
            cx,
            DefaultClock::default(),
            Box::new(std::thread::sleep),
        )
    }
}

impl<C> LimitStage<C>
where
    C: Clock + Clone + Send,
    C::Instant: Send,
{
    /// [`LimitStage::build`] with a clock and a sleep function (tests inject fakes).
    pub(crate) fn build_with_clock(
        body: &Yaml,
        cx: &BuildContext,
        clock: C,
        sleep: Sleep,
    ) -> Result<Self, BuildError> {
        let f = Fields::new(
            body,
            &[
                "rate",
                "burst",
                "drop",
                "by_label_name",
                "max_distinct_labels",
            ],
            &cx.path,
        )?;
        let get = |n: &str| f.get(n);
        let rate = get("rate").map_or(Ok(None), |v| decode::weak_float("rate", v))?;
        let burst = get("burst").map_or(Ok(None), |v| decode::weak_integer("burst", v))?;
        let drop = get("drop").map_or(Ok(None), |v| decode::weak_boolean("drop", v))?;
        let by_label = get("by_label_name")
            .map_or(Ok(None), |v| decode::weak_string("by_label_name", v))?
            .unwrap_or_default();
        let max_distinct = get("max_distinct_labels")
            .map_or(Ok(None), |v| decode::weak_integer("max_distinct_labels", v))?
            .unwrap_or(0);
        let rate = rate.unwrap_or(0.0);
        let burst = burst.unwrap_or(0);
        let drop = drop.unwrap_or(false);
        // NaN is refused too (Go would accept it and limit nothing sensible).
        if rate.is_nan() || rate <= 0.0 || burst <= 0 {
            return Err("limit stage failed to parse rate or burst".into());
        }
        if !by_label.is_empty() && !drop {
            return Err("When ratelimiting by label, drop must be true".into());
        }
        // The bucket works in nanoseconds on 64 bits: one token per year at the slowest, and
        // period × burst within 2^62 ns (~146 years); no real config comes near either.
        let period = Duration::try_from_secs_f64(1.0 / rate)
            .unwrap_or(Duration::MAX)
            .clamp(Duration::from_nanos(1), Duration::from_secs(365 * 86_400));
        let max_burst = (1u128 << 62) / period.as_nanos().max(1);
        let burst = u32::try_from(burst)
            .unwrap_or(u32::MAX)
            .min(u32::try_from(max_burst).unwrap_or(u32::MAX));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let by_label = if by_label.is_empty() {
            None
        } else {
            let max = usize::try_from(max_distinct).unwrap_or(0);
            if max < MIN_DISTINCT_LABELS {
                tracing::warn!(
                    stage = cx.path.as_str(),
                    "max_distinct_labels was adjusted up to the minimal reasonable value of {MIN_DISTINCT_LABELS}"
                );
            }
            Some((
                by_label,
                GenMap {
                    new: HashMap::new(),
                    old: HashMap::new(),
                    max: max.max(MIN_DISTINCT_LABELS),
                },
            ))
        };
        Ok(LimitStage {
            single: RateLimiter::direct_with_clock(quota, clock.clone()),
            quota,
            clock,
            drop,
            by_label,
            dropped: cx.drop_counter("ratelimit_drop_stage"),
            dropped_by_label: cx.metrics.logentry_dropped_lines_by_label.clone(),
            sleep,
        })
    }

    #[cfg(test)]
    fn set_max_distinct(&mut self, max: usize) {
        if let Some((_, g)) = &mut self.by_label {
            g.max = max;
        }
    }
}

impl<C> Stage for LimitStage<C>
where
    C: Clock + Clone + Send,
    C::Instant: Send,
{
    fn process(&mut self, pe: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        if let Some((name, gens)) = &mut self.by_label {
            let Some(value) = pe.entry.labels.get(name) else {
                return Outcome::Keep;
            };
            let allowed = match gens.new.get(value) {
                Some(l) => l.check().is_ok(),
                None => {
                    let l = gens.old.remove(value).unwrap_or_else(|| {
                        RateLimiter::direct_with_clock(self.quota, self.clock.clone())
                    });
                    let allowed = l.check().is_ok();
                    gens.new.insert(value.to_string(), l);
                    if gens.new.len() >= gens.max {
                        gens.old = std::mem::take(&mut gens.new);
                        self.dropped_by_label.reset();
                    }
                    allowed
                }
            };
            if allowed {
                return Outcome::Keep;
            }
            self.dropped_by_label
                .with_label_values(&[name.as_str(), value])
                .inc();
            return self.dropped.count();
        }
        if self.drop {
            return match self.single.check() {
                Ok(()) => Outcome::Keep,
                Err(_) => self.dropped.count(),
            };
        }
        // Wait for a token.
        while let Err(not_until) = self.single.check() {
            let wait = not_until.wait_time_from(self.clock.now());
            (self.sleep)(wait.max(Duration::from_micros(1)));
        }
        Outcome::Keep
    }

    fn may_block(&self) -> bool {
        !self.drop
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "limit_tests.rs"]
mod tests;
