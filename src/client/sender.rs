//! Delivering one sealed batch: attempts, result classification, back-off, metrics and logs
//! (spec §8.3, §8.4).
//!
//! A batch is dropped (which acknowledges its entries) only after a 2xx, a permanent rejection,
//! `drop_rate_limited_batches` on a 429, or exhausted retries, each counted with its reason. On
//! hard stop the batch is abandoned mid-way; the caller freezes the trackers first so that this
//! does not count as an acknowledgement. A batch's first attempt waits (briefly) for the save
//! that holds its read-time stamps (`positions::stamps`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::batch::Sealed;
use super::settings::BackoffSettings;
use super::transport::{Attempt, Transport};
use crate::ack::stamps_saved;
use crate::metrics::Metrics;

/// Longest a batch waits for the save that holds its lines' stamps. Saves follow changes
/// within milliseconds; past this (a very slow disk) the batch goes anyway.
pub const STAMPS_SAVED_WAIT: Duration = Duration::from_secs(1);

/// What a failed or successful attempt leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// 2xx: count as sent and drop.
    Delivered,
    /// 429, 5xx or no answer: retry after a back-off.
    Retry,
    /// Drop now, counted with this reason.
    Drop(&'static str),
}

/// Classifies an attempt like Promtail: 2xx delivered; 429 (unless dropped on purpose), 5xx and
/// transport errors retried; every other status dropped as `ingester_error`.
pub fn classify(attempt: &Attempt, drop_rate_limited: bool) -> Action {
    match attempt {
        Attempt::Answered { status, .. } if (200..300).contains(status) => Action::Delivered,
        Attempt::Answered { status: 429, .. } if drop_rate_limited => Action::Drop(RATE_LIMITED),
        Attempt::Answered { status, .. } if *status == 429 || (500..600).contains(status) => {
            Action::Retry
        }
        Attempt::Answered { .. } | Attempt::Unsendable(_) => Action::Drop(INGESTER_ERROR),
        Attempt::Failed(_) => Action::Retry,
    }
}

const RATE_LIMITED: &str = "rate_limited";
const INGESTER_ERROR: &str = "ingester_error";

/// What every delivery of one client shares.
pub struct SendContext<T> {
    /// Performs the attempts.
    pub transport: T,
    /// Metric families.
    pub metrics: Arc<Metrics>,
    /// The `host` label value.
    pub host: String,
    /// The client's name, for logs.
    pub name: String,
    /// The retry schedule.
    pub backoff: BackoffSettings,
    /// Drop on 429 instead of retrying.
    pub drop_rate_limited: bool,
    /// Cancelled at the shutdown deadline: stop retrying at once.
    pub hard_stop: CancellationToken,
}

impl<T: Transport> SendContext<T> {
    /// Delivers `batch` for `tenant` until it is delivered, dropped or the hard stop comes;
    /// returns the tenant so that the caller can schedule its next batch.
    pub async fn deliver(self: Arc<Self>, tenant: String, batch: Sealed) -> String {
        // Pushed only once the stamps of its lines are saved, so that a crash re-sends them
        // with the same timestamps and Loki keeps them once (usually no wait at all).
        tokio::select! {
            biased;
            _ = self.hard_stop.cancelled() => return tenant,
            saved = stamps_saved(&batch.acks, STAMPS_SAVED_WAIT) => if !saved {
                tracing::debug!(client = %self.name, tenant = %tenant, "The stamps of a batch were not saved in time; pushing it anyway.");
            },
        }
        let mut backoff = Backoff::new(self.backoff);
        loop {
            let started = std::time::Instant::now();
            let attempt = tokio::select! {
                biased;
                _ = self.hard_stop.cancelled() => return tenant,
                a = self.transport.attempt(&tenant, &batch.body) => a,
            };
            let code = match &attempt {
                Attempt::Answered { status, .. } => status.to_string(),
                Attempt::Failed(_) | Attempt::Unsendable(_) => "-1".to_owned(),
            };
            self.metrics
                .request_duration
                .with_label_values(&[code.as_str(), &self.host])
                .observe(started.elapsed().as_secs_f64());
            let (status, retry_after, error) = match &attempt {
                Attempt::Answered {
                    status,
                    retry_after,
                    message,
                } => (i32::from(*status), *retry_after, message.as_str()),
                Attempt::Failed(e) | Attempt::Unsendable(e) => (-1, None, e.as_str()),
            };
            match classify(&attempt, self.drop_rate_limited) {
                Action::Delivered => {
                    self.metrics
                        .sent_bytes
                        .with_label_values(&[&self.host])
                        .inc_by(batch.body.len() as u64);
                    self.metrics
                        .sent_entries
                        .with_label_values(&[&self.host])
                        .inc_by(batch.entries as u64);
                    return tenant; // dropping `batch` acknowledges its entries
                }
                Action::Drop(reason) => {
                    if reason == RATE_LIMITED {
                        tracing::warn!(client = %self.name, host = %self.host, tenant = %tenant, status, "dropping batch due to rate limiting applied at ingester");
                    } else {
                        tracing::error!(client = %self.name, host = %self.host, tenant = %tenant, status, error, "final error sending batch");
                    }
                    self.count_drop(&tenant, reason, &batch);
                    return tenant;
                }
                Action::Retry => {
                    tracing::warn!(client = %self.name, host = %self.host, tenant = %tenant, status, error, "error sending batch, will retry");
                    self.metrics
                        .batch_retries
                        .with_label_values(&[&self.host, &tenant])
                        .inc();
                    let Some(sleep) = backoff.next_sleep(&mut rand::rng()) else {
                        tracing::error!(client = %self.name, host = %self.host, tenant = %tenant, status, error, "final error sending batch");
                        let reason = if status == 429 {
                            RATE_LIMITED
                        } else {
                            INGESTER_ERROR
                        };
                        self.count_drop(&tenant, reason, &batch);
                        return tenant;
                    };
                    let sleep = wait_time(sleep, retry_after, self.backoff.max_period);
                    tokio::select! {
                        biased;
                        _ = self.hard_stop.cancelled() => return tenant,
                        _ = tokio::time::sleep(sleep) => {}
                    }
                }
            }
        }
    }

    fn count_drop(&self, tenant: &str, reason: &str, batch: &Sealed) {
        let labels = [self.host.as_str(), tenant, reason];
        self.metrics
            .dropped_entries
            .with_label_values(&labels)
            .inc_by(batch.entries as u64);
        self.metrics
            .dropped_bytes
            .with_label_values(&labels)
            .inc_by(batch.body.len() as u64);
    }
}

/// The sleep before the next attempt: the back-off, raised to the server's `Retry-After` when
/// that is longer, but never above `max_period`. The cap is a decision: a Loki (or proxy) asking
/// for an hour must not stall a stream for longer than the operator's configured maximum, and
/// the configured worst-case retry time (spec §8.4) stays true.
pub fn wait_time(
    backoff: Duration,
    retry_after: Option<Duration>,
    max_period: Duration,
) -> Duration {
    match retry_after {
        Some(ra) if ra > backoff => ra.min(max_period).max(backoff),
        _ => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Attempt {
        Attempt::Answered {
            status,
            retry_after: None,
            message: String::new(),
        }
    }

    #[test]
    fn classification_follows_promtail() {
        assert_eq!(classify(&answered(204), false), Action::Delivered);
        assert_eq!(classify(&answered(200), true), Action::Delivered);
        assert_eq!(classify(&answered(429), false), Action::Retry);
        assert_eq!(classify(&answered(429), true), Action::Drop("rate_limited"));
        assert_eq!(classify(&answered(500), true), Action::Retry);
        assert_eq!(classify(&answered(503), false), Action::Retry);
        for s in [301, 400, 401, 403, 404, 413] {
            assert_eq!(
                classify(&answered(s), false),
                Action::Drop("ingester_error"),
                "{s}"
            );
        }
        assert_eq!(
            classify(&Attempt::Failed("reset".into()), false),
            Action::Retry
        );
        assert_eq!(
            classify(&Attempt::Unsendable("bad tenant".into()), false),
            Action::Drop("ingester_error")
        );
    }

    #[test]
    fn retry_after_raises_the_wait_up_to_max_period() {
        let s = Duration::from_secs;
        assert_eq!(wait_time(s(1), None, s(300)), s(1));
        assert_eq!(wait_time(s(1), Some(s(30)), s(300)), s(30));
        assert_eq!(
            wait_time(s(10), Some(s(3)), s(300)),
            s(10),
            "never shorter than the back-off"
        );
        assert_eq!(
            wait_time(s(1), Some(s(3600)), s(300)),
            s(300),
            "capped at max_period"
        );
    }
}
