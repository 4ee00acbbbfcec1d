//! Batcher and delivery tests against a scripted in-memory transport, on tokio's paused clock
//! (time advances only when every task waits, so timings are exact and nothing sleeps).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ack::Tracker;
use crate::client::proto::{PushRequest, decode_push};
use crate::client::sender::SendContext;
use crate::client::settings::BackoffSettings;
use crate::client::transport::Attempt;
use crate::entry::{Ack, Timestamp};
use crate::metrics::Metrics;

const HOST: &str = "loki:3100";

/// One attempt the fake transport saw.
#[derive(Debug)]
struct Seen {
    tenant: String,
    at: Instant,
    req: PushRequest,
}

/// Answers from per-tenant scripts, then 204; records every attempt.
struct Fake {
    scripts: Mutex<HashMap<String, VecDeque<Attempt>>>,
    /// Tenants answered 503 forever.
    down: Vec<String>,
    seen: UnboundedSender<Seen>,
}

fn answered(status: u16) -> Attempt {
    Attempt::Answered {
        status,
        retry_after: None,
        message: format!("server returned HTTP status {status}"),
    }
}

impl Transport for Fake {
    async fn attempt(&self, tenant: &str, body: &Bytes) -> Attempt {
        let req = decode_push(body).expect("the batcher must send valid bodies");
        let _ = self.seen.send(Seen {
            tenant: tenant.to_owned(),
            at: Instant::now(),
            req,
        });
        if self.down.iter().any(|t| t == tenant) {
            return answered(503);
        }
        let mut scripts = self.scripts.lock().unwrap();
        scripts
            .get_mut(tenant)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| answered(204))
    }
}

struct Harness {
    input: mpsc::Sender<Vec<Entry>>,
    task: JoinHandle<()>,
    metrics: Arc<Metrics>,
    seen: UnboundedReceiver<Seen>,
    hard_stop: CancellationToken,
}

fn config() -> BatchConfig {
    BatchConfig {
        batch_wait: Duration::from_secs(1),
        batch_size: 1024 * 1024,
        tenant_id: String::new(),
        external_labels: LabelSet::new(),
        max_line_size: 0,
        max_line_size_truncate: false,
        max_streams: 0,
        concurrency: 1,
    }
}

fn start(
    cfg: BatchConfig,
    backoff: BackoffSettings,
    scripts: Vec<(&str, Vec<Attempt>)>,
    down: &[&str],
) -> Harness {
    let (seen_tx, seen) = unbounded_channel();
    let metrics = Arc::new(Metrics::new());
    let hard_stop = CancellationToken::new();
    let ctx = Arc::new(SendContext {
        transport: Fake {
            scripts: Mutex::new(
                scripts
                    .into_iter()
                    .map(|(t, s)| (t.to_owned(), s.into()))
                    .collect(),
            ),
            down: down.iter().map(|s| s.to_string()).collect(),
            seen: seen_tx,
        },
        metrics: Arc::clone(&metrics),
        host: HOST.into(),
        name: "test".into(),
        backoff,
        drop_rate_limited: false,
        hard_stop: hard_stop.clone(),
    });
    let (input, rx) = mpsc::channel(8);
    let task = tokio::spawn(Batcher::new(cfg, ctx, rx).run());
    Harness {
        input,
        task,
        metrics,
        seen,
        hard_stop,
    }
}

fn fast_backoff(max_retries: Option<u32>) -> BackoffSettings {
    BackoffSettings {
        min_period: Duration::from_millis(100),
        max_period: Duration::from_secs(1),
        max_retries,
    }
}

fn entry(labels: &[(&str, &str)], line: &str) -> Entry {
    Entry::new(
        LabelSet::from_pairs(labels.iter().copied()),
        Timestamp(1_700_000_000_000_000_000),
        Bytes::copy_from_slice(line.as_bytes()),
        Ack::none(),
    )
}

fn lines(req: &PushRequest) -> Vec<(String, String)> {
    req.streams
        .iter()
        .flat_map(|s| {
            s.entries.iter().map(|e| {
                (
                    s.labels.clone(),
                    String::from_utf8_lossy(&e.line).into_owned(),
                )
            })
        })
        .collect()
}

fn counter(m: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
    m.with_label_values(labels).get()
}

#[tokio::test(start_paused = true)]
async fn batch_is_sent_after_batch_wait() {
    let mut h = start(config(), fast_backoff(Some(10)), vec![], &[]);
    let t0 = Instant::now();
    h.input
        .send(vec![entry(&[("job", "a")], "x")])
        .await
        .unwrap();
    let seen = h.seen.recv().await.unwrap();
    let waited = seen.at - t0;
    // Sent on the first tick (every 100 ms) at which the batch is at least 1 s old.
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_millis(1100),
        "sent after {waited:?}"
    );
    assert_eq!(
        lines(&seen.req),
        [(r#"{job="a"}"#.to_owned(), "x".to_owned())]
    );
    drop(h.input);
    h.task.await.unwrap();
    assert_eq!(counter(&h.metrics.sent_entries, &[HOST]), 1);
}

#[tokio::test(start_paused = true)]
async fn batch_is_split_when_it_would_exceed_batch_size() {
    let cfg = BatchConfig {
        batch_size: 10,
        ..config()
    };
    let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
    let t0 = Instant::now();
    let e = |l: &str| entry(&[("job", "a")], l);
    h.input
        .send(vec![e("aaaa"), e("bbbb"), e("cccc"), e("0123456789abc")])
        .await
        .unwrap();
    let first = h.seen.recv().await.unwrap();
    assert_eq!(
        first.at, t0,
        "a full batch is sent at once, not after batch_wait"
    );
    assert_eq!(lines(&first.req).len(), 2, "4+4 fit, 4+4+4 > 10");
    let second = h.seen.recv().await.unwrap();
    assert_eq!(
        lines(&second.req)
            .iter()
            .map(|l| l.1.as_str())
            .collect::<Vec<_>>(),
        ["cccc"]
    );
    // An entry bigger than batch_size travels alone, in an over-sized batch.
    drop(h.input);
    let third = h.seen.recv().await.unwrap();
    assert_eq!(lines(&third.req).len(), 1);
    assert_eq!(lines(&third.req)[0].1, "0123456789abc");
    h.task.await.unwrap();
    assert_eq!(counter(&h.metrics.sent_entries, &[HOST]), 4);
}

#[tokio::test(start_paused = true)]
async fn tenants_get_separate_batches_without_the_tenant_label() {
    let cfg = BatchConfig {
        tenant_id: "default".into(),
        ..config()
    };
    let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
    h.input
        .send(vec![
            entry(&[("job", "a"), ("__tenant_id__", "t1")], "1"),
            entry(&[("job", "a")], "2"),
            entry(&[("job", "a"), ("__tenant_id__", "t2")], "3"),
            entry(&[("job", "a"), ("__tenant_id__", "t1")], "4"),
        ])
        .await
        .unwrap();
    drop(h.input);
    let mut got = Vec::new();
    for _ in 0..3 {
        let s = h.seen.recv().await.unwrap();
        got.push((s.tenant, lines(&s.req)));
    }
    h.task.await.unwrap();
    got.sort();
    let job_a = r#"{job="a"}"#.to_owned();
    assert_eq!(
        got,
        vec![
            ("default".to_owned(), vec![(job_a.clone(), "2".to_owned())]),
            (
                "t1".to_owned(),
                vec![
                    (job_a.clone(), "1".to_owned()),
                    (job_a.clone(), "4".to_owned())
                ]
            ),
            ("t2".to_owned(), vec![(job_a, "3".to_owned())]),
        ]
    );
    // Per-tenant series exist for every reason (spec §8.5).
    let text = h.metrics.render();
    assert!(
        text.contains(r#"promtail_dropped_entries_total{host="loki:3100",reason="stream_limited",tenant="t2"} 0"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn external_labels_are_merged_under_entry_labels() {
    let cfg = BatchConfig {
        external_labels: LabelSet::from_pairs([("cluster", "prod"), ("job", "external")]),
        ..config()
    };
    let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
    h.input
        .send(vec![entry(&[("job", "mine")], "x")])
        .await
        .unwrap();
    drop(h.input);
    let s = h.seen.recv().await.unwrap();
    assert_eq!(lines(&s.req)[0].0, r#"{cluster="prod", job="mine"}"#);
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn max_line_size_drops_or_truncates_with_metrics() {
    for truncate in [false, true] {
        let cfg = BatchConfig {
            max_line_size: 4,
            max_line_size_truncate: truncate,
            ..config()
        };
        let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
        h.input
            .send(vec![
                entry(&[("job", "a")], "abcdefgh"),
                entry(&[("job", "a")], "ok"),
            ])
            .await
            .unwrap();
        drop(h.input);
        let s = h.seen.recv().await.unwrap();
        h.task.await.unwrap();
        let got: Vec<String> = lines(&s.req).into_iter().map(|l| l.1).collect();
        let labels = [HOST, "", "line_too_long"];
        if truncate {
            assert_eq!(got, ["abcd", "ok"]);
            assert_eq!(counter(&h.metrics.mutated_entries, &labels), 1);
            assert_eq!(counter(&h.metrics.mutated_bytes, &labels), 4);
            assert_eq!(counter(&h.metrics.dropped_entries, &labels), 0);
        } else {
            assert_eq!(got, ["ok"]);
            assert_eq!(counter(&h.metrics.dropped_entries, &labels), 1);
            assert_eq!(counter(&h.metrics.dropped_bytes, &labels), 8);
            assert_eq!(counter(&h.metrics.mutated_entries, &labels), 0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn max_streams_drops_with_stream_limited_and_keeps_running() {
    let cfg = BatchConfig {
        max_streams: 2,
        ..config()
    };
    let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
    h.input
        .send(vec![
            entry(&[("job", "a")], "1"),
            entry(&[("job", "b")], "2"),
            entry(&[("job", "c")], "333"),
            entry(&[("job", "a")], "4"),
        ])
        .await
        .unwrap();
    let s = h.seen.recv().await.unwrap();
    assert_eq!(lines(&s.req).len(), 3);
    let labels = [HOST, "", "stream_limited"];
    assert_eq!(counter(&h.metrics.dropped_entries, &labels), 1);
    assert_eq!(counter(&h.metrics.dropped_bytes, &labels), 3);
    // The client is still alive: a new batch may hold the stream that was refused.
    h.input
        .send(vec![entry(&[("job", "c")], "5")])
        .await
        .unwrap();
    drop(h.input);
    let s = h.seen.recv().await.unwrap();
    assert_eq!(lines(&s.req), [(r#"{job="c"}"#.to_owned(), "5".to_owned())]);
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_then_delivers_and_acks_only_after_success() {
    let mut h = start(
        config(),
        fast_backoff(Some(10)),
        vec![("", vec![answered(503), answered(503), answered(503)])],
        &[],
    );
    let tracker = Tracker::new(0);
    let mut e = entry(&[("job", "a")], "x");
    e.ack = tracker.chunk(100, None);
    h.input.send(vec![e]).await.unwrap();
    for attempt in 1..=3 {
        h.seen.recv().await.unwrap();
        // Wait for the delivery task to take the answer: the retry counter tells.
        while counter(&h.metrics.batch_retries, &[HOST, ""]) < attempt {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            tracker.committed(),
            0,
            "not acknowledged after failure {attempt}"
        );
    }
    h.seen.recv().await.unwrap();
    drop(h.input);
    h.task.await.unwrap();
    assert_eq!(tracker.committed(), 100);
    assert_eq!(counter(&h.metrics.batch_retries, &[HOST, ""]), 3);
    assert_eq!(counter(&h.metrics.sent_entries, &[HOST]), 1);
    assert!(counter(&h.metrics.sent_bytes, &[HOST]) > 0);
    assert_eq!(
        counter(&h.metrics.sent_bytes, &[HOST]),
        counter(&h.metrics.encoded_bytes, &[HOST]),
        "encoded once, sent once"
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_drop_with_the_last_status_reason() {
    let mut h = start(
        config(),
        fast_backoff(Some(3)),
        vec![("", vec![answered(503), answered(503), answered(429)])],
        &[],
    );
    let tracker = Tracker::new(0);
    let mut e = entry(&[("job", "a")], "x");
    e.ack = tracker.chunk(7, None);
    h.input.send(vec![e]).await.unwrap();
    drop(h.input);
    h.task.await.unwrap();
    let mut attempts = 0;
    while h.seen.try_recv().is_ok() {
        attempts += 1;
    }
    assert_eq!(attempts, 3, "max_retries 3 means 3 attempts in total");
    assert_eq!(counter(&h.metrics.batch_retries, &[HOST, ""]), 3);
    assert_eq!(
        counter(&h.metrics.dropped_entries, &[HOST, "", "rate_limited"]),
        1
    );
    assert_eq!(
        counter(&h.metrics.dropped_entries, &[HOST, "", "ingester_error"]),
        0
    );
    assert_eq!(tracker.committed(), 7, "a counted drop acknowledges");
}

#[tokio::test(start_paused = true)]
async fn permanent_rejection_drops_at_once() {
    let mut h = start(
        config(),
        fast_backoff(Some(10)),
        vec![("", vec![answered(400)])],
        &[],
    );
    h.input
        .send(vec![
            entry(&[("job", "a")], "x"),
            entry(&[("job", "a")], "y"),
        ])
        .await
        .unwrap();
    drop(h.input);
    h.task.await.unwrap();
    assert!(h.seen.try_recv().is_ok());
    assert!(h.seen.try_recv().is_err(), "a 400 is not retried");
    let labels = [HOST, "", "ingester_error"];
    assert_eq!(counter(&h.metrics.dropped_entries, &labels), 2);
    assert_eq!(
        counter(&h.metrics.dropped_bytes, &labels),
        counter(&h.metrics.encoded_bytes, &[HOST]),
        "dropped bytes are the compressed batch size"
    );
    assert_eq!(counter(&h.metrics.batch_retries, &[HOST, ""]), 0);
}

#[tokio::test(start_paused = true)]
async fn a_tenant_in_retry_does_not_hold_up_another() {
    let mut h = start(config(), fast_backoff(None), vec![], &["down"]);
    for i in 0..3 {
        h.input
            .send(vec![
                entry(&[("job", "a"), ("__tenant_id__", "down")], &format!("d{i}")),
                entry(&[("job", "a"), ("__tenant_id__", "up")], &format!("u{i}")),
            ])
            .await
            .unwrap();
        // Let each pair become its own batch.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut up = Vec::new();
    while up.len() < 3 {
        let s = h.seen.recv().await.unwrap();
        if s.tenant == "up" {
            up.extend(lines(&s.req).into_iter().map(|l| l.1));
        }
    }
    assert_eq!(up, ["u0", "u1", "u2"]);
    // Shutdown cannot finish while "down" retries forever; the hard stop ends it.
    drop(h.input);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!h.task.is_finished());
    h.hard_stop.cancel();
    h.task.await.unwrap();
    assert_eq!(counter(&h.metrics.sent_entries, &[HOST]), 3);
    assert_eq!(
        counter(
            &h.metrics.dropped_entries,
            &[HOST, "down", "ingester_error"]
        ),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_minimum_wait() {
    let ra = Attempt::Answered {
        status: 429,
        retry_after: Some(Duration::from_millis(700)),
        message: "slow down".into(),
    };
    let mut h = start(config(), fast_backoff(Some(10)), vec![("", vec![ra])], &[]);
    h.input
        .send(vec![entry(&[("job", "a")], "x")])
        .await
        .unwrap();
    drop(h.input);
    let first = h.seen.recv().await.unwrap();
    let second = h.seen.recv().await.unwrap();
    let gap = second.at - first.at;
    // The back-off alone would be in [100, 200) ms.
    assert_eq!(gap, Duration::from_millis(700));
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_every_open_batch() {
    let cfg = BatchConfig {
        batch_wait: Duration::from_secs(3600),
        ..config()
    };
    let mut h = start(cfg, fast_backoff(Some(10)), vec![], &[]);
    h.input
        .send(vec![
            entry(&[("job", "a"), ("__tenant_id__", "x")], "1"),
            entry(&[("job", "a"), ("__tenant_id__", "y")], "2"),
        ])
        .await
        .unwrap();
    let t0 = Instant::now();
    drop(h.input);
    h.task.await.unwrap();
    assert_eq!(
        Instant::now(),
        t0,
        "flushed at once, without waiting for batch_wait"
    );
    let mut n = 0;
    while h.seen.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 2);
    assert_eq!(counter(&h.metrics.sent_entries, &[HOST]), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrency_allows_parallel_batches_of_one_tenant() {
    let cfg = BatchConfig {
        batch_size: 1,
        concurrency: 3,
        ..config()
    };
    // The tenant is down: with concurrency 3, three batches are attempted before any retry.
    let mut h = start(cfg, fast_backoff(None), vec![], &[""]);
    h.input
        .send(vec![
            entry(&[("job", "a")], "1"),
            entry(&[("job", "a")], "2"),
            entry(&[("job", "a")], "3"),
            entry(&[("job", "a")], "4"),
        ])
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut first_round = Vec::new();
    while first_round.len() < 3 {
        let s = h.seen.recv().await.unwrap();
        assert_eq!(s.at, t0);
        first_round.extend(lines(&s.req).into_iter().map(|l| l.1));
    }
    first_round.sort();
    assert_eq!(first_round, ["1", "2", "3"]);
    h.hard_stop.cancel();
    drop(h.input);
    h.task.await.unwrap();
}
