//! The retry schedule of one batch (Promtail's `backoff_config`, spec §8.4) and `Retry-After`
//! parsing. Pure code: the caller supplies the randomness and the clock.

use std::time::{Duration, SystemTime};

use rand::Rng;

use super::settings::BackoffSettings;

/// What to do after a failed, retryable attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Sleep for a duration drawn uniformly from `[lo, hi)` (exactly `lo` when `lo >= hi`),
    /// then try again.
    Sleep {
        /// Lower bound (inclusive).
        lo: Duration,
        /// Upper bound (exclusive).
        hi: Duration,
    },
    /// Retries are exhausted: give up without sleeping.
    GiveUp,
}

/// Exponential back-off with jitter, exactly as Promtail's (dskit's) `Backoff`.
///
/// After failure *k* the retry counter is *k*; with a limit *N* > 0 the batch is given up when
/// *k* ≥ *N* (so *N* attempts in total). Otherwise the sleep is drawn from `[lo, hi)`, starting
/// at `[min, min(2·min, max))`; after each sleep both bounds double, capped at `max`, as long as
/// `hi < max`.
#[derive(Clone, Debug)]
pub struct Backoff {
    settings: BackoffSettings,
    retries: u32,
    lo: Duration,
    hi: Duration,
}

impl Backoff {
    /// A fresh schedule for one batch.
    pub fn new(settings: BackoffSettings) -> Self {
        Backoff {
            settings,
            retries: 0,
            lo: settings.min_period,
            hi: settings
                .min_period
                .saturating_mul(2)
                .min(settings.max_period),
        }
    }

    /// Failed retryable attempts so far.
    #[cfg(test)]
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Records a failed retryable attempt and says what to do next.
    pub fn next(&mut self) -> Next {
        self.retries = self.retries.saturating_add(1);
        if let Some(limit) = self.settings.max_retries
            && limit > 0
            && self.retries >= limit
        {
            return Next::GiveUp;
        }
        if self.settings.min_period >= self.settings.max_period {
            return Next::Sleep {
                lo: self.settings.min_period,
                hi: self.settings.min_period,
            };
        }
        let step = Next::Sleep {
            lo: self.lo,
            hi: self.hi,
        };
        if self.hi < self.settings.max_period {
            self.lo = self.lo.saturating_mul(2).min(self.settings.max_period);
            self.hi = self.hi.saturating_mul(2).min(self.settings.max_period);
        }
        step
    }

    /// Like [`Backoff::next`], with the sleep drawn from `rng`.
    pub fn next_sleep(&mut self, rng: &mut impl Rng) -> Option<Duration> {
        match self.next() {
            Next::GiveUp => None,
            Next::Sleep { lo, hi } if lo >= hi => Some(lo),
            Next::Sleep { lo, hi } => Some(rng.random_range(lo..hi)),
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past gives zero; a value
/// that is neither gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate instead of failing.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn default_schedule_matches_appendix_b() {
        let mut b = Backoff::new(BackoffSettings::default());
        let expected = [
            (0.5, 1.0),
            (1.0, 2.0),
            (2.0, 4.0),
            (4.0, 8.0),
            (8.0, 16.0),
            (16.0, 32.0),
            (32.0, 64.0),
            (64.0, 128.0),
            (128.0, 256.0),
        ];
        for (i, (lo, hi)) in expected.into_iter().enumerate() {
            assert_eq!(
                b.next(),
                Next::Sleep {
                    lo: secs(lo),
                    hi: secs(hi)
                },
                "after failure {}",
                i + 1
            );
        }
        assert_eq!(b.next(), Next::GiveUp, "the 10th failure gives up");
        assert_eq!(b.retries(), 10);
    }

    #[test]
    fn bounds_stop_doubling_at_max_period() {
        let mut b = Backoff::new(BackoffSettings {
            min_period: secs(1.0),
            max_period: secs(5.0),
            max_retries: None,
        });
        let got: Vec<Next> = (0..6).map(|_| b.next()).collect();
        let s = |lo, hi| Next::Sleep {
            lo: secs(lo),
            hi: secs(hi),
        };
        // hi reaches max (5) while lo keeps its value from then on.
        assert_eq!(
            got,
            vec![
                s(1.0, 2.0),
                s(2.0, 4.0),
                s(4.0, 5.0),
                s(4.0, 5.0),
                s(4.0, 5.0),
                s(4.0, 5.0)
            ]
        );
    }

    #[test]
    fn zero_and_none_retry_forever() {
        for max_retries in [None, Some(0)] {
            let mut b = Backoff::new(BackoffSettings {
                min_period: secs(0.1),
                max_period: secs(1.0),
                max_retries,
            });
            for _ in 0..1000 {
                assert_ne!(b.next(), Next::GiveUp);
            }
        }
    }

    #[test]
    fn one_retry_means_one_attempt() {
        let mut b = Backoff::new(BackoffSettings {
            max_retries: Some(1),
            ..BackoffSettings::default()
        });
        assert_eq!(b.next(), Next::GiveUp);
    }

    #[test]
    fn min_not_below_max_sleeps_exactly_min() {
        let mut b = Backoff::new(BackoffSettings {
            min_period: secs(3.0),
            max_period: secs(2.0),
            max_retries: Some(3),
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(b.next_sleep(&mut rng), Some(secs(3.0)));
        assert_eq!(b.next_sleep(&mut rng), Some(secs(3.0)));
        assert_eq!(b.next_sleep(&mut rng), None);
    }

    #[test]
    fn jittered_sleeps_stay_in_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut b = Backoff::new(BackoffSettings::default());
            let mut lo = secs(0.5);
            while let Some(d) = b.next_sleep(&mut rng) {
                assert!(d >= lo && d < lo * 2, "{d:?} not in [{lo:?}, {:?})", lo * 2);
                lo *= 2;
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400); // 07:26:40 GMT
        assert_eq!(parse_retry_after("120", now), Some(secs(120.0)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(secs(80.0))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
