//! The process-wide read-line rate limit: Promtail's `limits_config.readline_rate_*` (spec §3.5).
//!
//! ```yaml
//! limits_config:
//!   readline_rate_enabled: false
//!   readline_rate: 10000      # lines per second (float)
//!   readline_burst: 10000
//!   readline_rate_drop: true  # true: drop what exceeds the rate; false: wait for it
//! ```
//!
//! As in Promtail, one token bucket is shared by every job and applied to the entries that come
//! *out* of each job's pipeline, just before the clients (so lines dropped or held by stages do
//! not count). Excess entries are dropped and counted in
//! `logentry_dropped_lines_total{reason="global_rate_limiter_drop"}` (dropping an entry
//! acknowledges it, DESIGN.md contract 2), or, without `readline_rate_drop`, the job's pipeline
//! task waits for tokens asynchronously (a timer, never a blocked runtime worker): reading then
//! slows down through the job channel (backpressure).
//!
//! The bucket is `governor`'s GCRA, equivalent to Go's `rate.Limiter` (starts full, refills at
//! `readline_rate`). Degenerate settings behave as Go's limiter does: an infinite rate never
//! limits; a rate ≤ 0 (or so small that it would not refill within a century) lets `burst`
//! lines through and then none; a burst ≤ 0 lets none through. Where Go's `Wait` fails at once
//! in those cases, Promtail ignores the error and sends the line, so in wait mode they are not
//! limited either.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::stage::DropCounter;
use crate::entry::Entry;
use crate::metrics::Metrics;

/// The drop reason of `logentry_dropped_lines_total` (Promtail's).
pub const DROP_REASON: &str = "global_rate_limiter_drop";

/// Largest `period × burst` in nanoseconds that the bucket represents (about 146 years); a rate
/// that would need more never refills in practice.
const MAX_SPAN_NANOS: u128 = 1 << 62;

/// Time since the limiter was made, on tokio's clock (so tests can pause and advance it).
#[derive(Clone, Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

enum Bucket {
    Unlimited,
    Gcra(RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>),
    /// Tokens that are never replenished (rate ≤ 0, burst ≤ 0).
    Fixed(AtomicU64),
}

/// The shared limiter (see the module docs).
pub struct ReadlineLimiter {
    bucket: Bucket,
    clock: TokioClock,
    drop: bool,
    dropped: DropCounter,
}

impl std::fmt::Debug for ReadlineLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadlineLimiter")
            .field("drop", &self.drop)
            .finish_non_exhaustive()
    }
}

impl ReadlineLimiter {
    /// A limiter of `rate` lines per second with bursts of `burst` lines; excess lines are
    /// dropped when `drop`, else waited for.
    pub fn new(rate: f64, burst: i64, drop: bool, metrics: &Metrics) -> Self {
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        let burst = u32::try_from(burst.max(0)).unwrap_or(u32::MAX);
        let fixed = |n: u32| Bucket::Fixed(AtomicU64::new(u64::from(n)));
        let bucket = if rate == f64::INFINITY {
            Bucket::Unlimited
        } else if rate.is_nan() || rate <= 0.0 {
            fixed(burst)
        } else {
            let period = Duration::try_from_secs_f64(1.0 / rate)
                .unwrap_or(Duration::MAX)
                .max(Duration::from_nanos(1));
            match (NonZeroU32::new(burst), Quota::with_period(period)) {
                (None, _) => fixed(0),
                (Some(b), Some(q)) if period.as_nanos() * u128::from(b.get()) <= MAX_SPAN_NANOS => {
                    Bucket::Gcra(RateLimiter::direct_with_clock(
                        q.allow_burst(b),
                        clock.clone(),
                    ))
                }
                (Some(_), _) => fixed(burst),
            }
        };
        if matches!(bucket, Bucket::Fixed(_)) {
            tracing::warn!(
                rate,
                burst,
                "limits_config.readline_rate/readline_burst never refill: after the burst, lines are {}.",
                if drop {
                    "all dropped"
                } else {
                    "not limited (as in Promtail)"
                }
            );
        }
        ReadlineLimiter {
            bucket,
            clock,
            drop,
            dropped: DropCounter::new(metrics, DROP_REASON),
        }
    }

    /// Takes a token if one is there now. `Err(wait)`: the next token comes after `wait`
    /// (`None`: never).
    fn try_take(&self) -> Result<(), Option<Duration>> {
        match &self.bucket {
            Bucket::Unlimited => Ok(()),
            Bucket::Gcra(limiter) => limiter
                .check()
                .map_err(|not_until| Some(not_until.wait_time_from(self.clock.now()))),
            Bucket::Fixed(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .map(|_| ())
                .map_err(|_| None),
        }
    }

    /// Applies the limit to `entries`, in order: drops (and counts) the entries over the rate,
    /// or waits until each has a token.
    pub async fn admit(&self, entries: &mut Vec<Entry>) {
        if self.drop {
            entries.retain(|_| match self.try_take() {
                Ok(()) => true,
                Err(_) => {
                    let _ = self.dropped.count();
                    false
                }
            });
            return;
        }
        for _ in 0..entries.len() {
            // A token that never comes: Go's `Wait` fails and Promtail sends the line anyway.
            while let Err(Some(wait)) = self.try_take() {
                tokio::time::sleep(wait.max(Duration::from_nanos(1))).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::{Ack, LabelSet, Timestamp};

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                Entry::new(
                    LabelSet::new(),
                    Timestamp(0),
                    Bytes::from(i.to_string()),
                    Ack::none(),
                )
            })
            .collect()
    }

    fn dropped(m: &Metrics) -> u64 {
        m.logentry_dropped_lines
            .with_label_values(&[DROP_REASON])
            .get()
    }

    #[tokio::test(start_paused = true)]
    async fn drop_mode_keeps_the_burst_then_the_rate() {
        let m = Metrics::new();
        let l = ReadlineLimiter::new(10.0, 5, true, &m);
        let mut batch = entries(8);
        l.admit(&mut batch).await;
        let kept: Vec<&[u8]> = batch.iter().map(|e| &e.line[..]).collect();
        assert_eq!(kept, [b"0", b"1", b"2", b"3", b"4"]);
        assert_eq!(dropped(&m), 3);
        // 10 lines/s: one token every 100 ms.
        tokio::time::advance(Duration::from_millis(250)).await;
        let mut batch = entries(5);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 2);
        assert_eq!(dropped(&m), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_mode_waits_for_tokens_without_dropping() {
        let m = Metrics::new();
        let l = ReadlineLimiter::new(2.0, 1, false, &m);
        let start = tokio::time::Instant::now();
        let mut batch = entries(5);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 5);
        assert_eq!(dropped(&m), 0);
        // One at once, then one every 500 ms (paused time advances by the sleeps only).
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn degenerate_settings_behave_like_go() {
        let m = Metrics::new();
        // Rate 0: the burst, then nothing (drop) or everything (wait, Go's Wait error ignored).
        let l = ReadlineLimiter::new(0.0, 2, true, &m);
        let mut batch = entries(4);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 2);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let mut batch = entries(1);
        l.admit(&mut batch).await;
        assert!(batch.is_empty());
        let l = ReadlineLimiter::new(0.0, 2, false, &m);
        let mut batch = entries(4);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 4);
        // Burst 0 drops everything; a negative burst too.
        for burst in [0, -1] {
            let l = ReadlineLimiter::new(100.0, burst, true, &m);
            let mut batch = entries(3);
            l.admit(&mut batch).await;
            assert!(batch.is_empty());
        }
        // An infinite rate never limits; a tiny one is a fixed burst; a huge one is fine.
        let l = ReadlineLimiter::new(f64::INFINITY, 0, true, &m);
        let mut batch = entries(3);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 3);
        let l = ReadlineLimiter::new(1e-300, 1, true, &m);
        let mut batch = entries(3);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 1);
        let l = ReadlineLimiter::new(1e300, i64::MAX, true, &m);
        let mut batch = entries(3);
        l.admit(&mut batch).await;
        assert_eq!(batch.len(), 3);
        let l = ReadlineLimiter::new(f64::NAN, 1, true, &m);
        assert!(matches!(l.bucket, Bucket::Fixed(_)));
    }
}
