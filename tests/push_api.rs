//! The `loki_push_api` source end to end: a pusher sends to the `ferrotail` binary's push
//! server, which relays to the mock Loki — snappy protobuf and JSON, plain, gzip and deflate,
//! several streams per request with repeated lines, structured metadata and pushed timestamps,
//! a relabel-dropped stream in the middle of a request (the streams after it still arrive), raw
//! lines. With `ack_after_delivery`, a refusing Loki holds the pusher's answer back and a
//! `kill -9` before the answer loses nothing that was answered; a full byte budget answers 429
//! with `Retry-After`. Every wait is bounded and says what it waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::body::gzip;
use common::config::ConfigFile;
use common::mock_loki::{MockLoki, ReceivedEntry, Reply, base_time};
use common::process::Ferrotail;
use ferrotail::client::proto::{
    Encoder, EntryAdapter, LabelPairAdapter, ProtoTimestamp, PushRequest, StreamAdapter,
};

const WAIT: Duration = Duration::from_secs(60);
const SEC: i64 = 1_000_000_000;

/// One push job, `relay`: `push` adds keys to its `loki_push_api` mapping, `extra` top-level
/// sections; the pushed timestamps are kept and `level="debug"` streams dropped.
fn write_config(dir: &Path, loki: &str, push: &str, extra: &str) -> PathBuf {
    ConfigFile::new(dir, loki)
        .positions_sync("100ms")
        .backoff("20ms", "200ms")
        .max_retries(1000)
        .top(extra)
        .scrape(&format!(
            r#"  - job_name: relay
    loki_push_api:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: 0
        grpc_listen_port: 0
      labels:
        pushserver: relay
      use_incoming_timestamp: true
{push}
    relabel_configs:
      - source_labels: [level]
        regex: debug
        action: drop
"#
        ))
        .write()
}

/// The push server's address, from its "listening" log line (bounded wait).
fn push_addr(ft: &Ferrotail) -> String {
    ft.logged_address(
        WAIT,
        "the push server's listening log line",
        "msg=\"loki_push_api server listening.\"",
        None,
    )
}

/// One pushed entry: (stream labels as Loki shows them, timestamp, line, metadata).
type Expect = (String, i64, String, Vec<(String, String)>);

/// A realistic request: `streams` streams of `n` entries each (an access log repeating the same
/// health check line within the same second, errors with a trace id in structured metadata),
/// plus a `level="debug"` stream in the middle that the job's relabel rules drop.
struct Batch {
    req: PushRequest,
    expect: Vec<Expect>,
}

fn batch(tag: &str, t0: i64, streams: usize, n: usize) -> Batch {
    let mut req = PushRequest::default();
    let mut expect = Vec::new();
    for s in 0..streams {
        if s == 1 {
            req.streams.push(StreamAdapter {
                labels: format!(r#"{{app="noisy", level="debug", batch="{tag}"}}"#),
                entries: (0..n)
                    .map(|i| entry(t0 + i as i64, "debug: cache miss", &[]))
                    .collect(),
            });
        }
        let app = format!("app{s}");
        let mut entries = Vec::new();
        for i in 0..n {
            let ts = t0 + (i as i64) * 1000 + s as i64;
            let (line, sm): (String, Vec<(&str, String)>) = if i % 10 == 9 {
                (
                    format!("ERROR {tag} request {i} failed: upstream timeout"),
                    vec![("trace_id", format!("{tag}-{s}-{i}"))],
                )
            } else {
                ("GET /healthz 200 0.001s".to_string(), vec![])
            };
            let sm_ref: Vec<(&str, &str)> = sm.iter().map(|(k, v)| (*k, v.as_str())).collect();
            entries.push(entry(ts, &line, &sm_ref));
            expect.push((
                format!(r#"{{app="{app}", batch="{tag}", level="info", pushserver="relay"}}"#),
                ts,
                line,
                sm.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ));
        }
        req.streams.push(StreamAdapter {
            labels: format!(r#"{{app="{app}", level="info", batch="{tag}"}}"#),
            entries,
        });
    }
    Batch { req, expect }
}

fn entry(ts: i64, line: &str, sm: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(ProtoTimestamp {
            seconds: ts.div_euclid(SEC),
            nanos: ts.rem_euclid(SEC) as i32,
        }),
        line: Bytes::copy_from_slice(line.as_bytes()),
        structured_metadata: sm
            .iter()
            .map(|(k, v)| LabelPairAdapter {
                name: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

/// The request as Loki's JSON push body.
fn json(req: &PushRequest) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = req
        .streams
        .iter()
        .map(|s| {
            let labels: serde_json::Map<String, serde_json::Value> = s
                .labels
                .trim_matches(['{', '}'])
                .split(", ")
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_string(), serde_json::Value::from(v.trim_matches('"')))
                })
                .collect();
            let values: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| {
                    let ts = e.timestamp.unwrap();
                    let ns = ts.seconds * SEC + i64::from(ts.nanos);
                    let mut v = vec![
                        serde_json::Value::from(ns.to_string()),
                        serde_json::Value::from(String::from_utf8_lossy(&e.line).into_owned()),
                    ];
                    if !e.structured_metadata.is_empty() {
                        let sm: serde_json::Map<String, serde_json::Value> = e
                            .structured_metadata
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::Value::from(p.value.clone())))
                            .collect();
                        v.push(serde_json::Value::Object(sm));
                    }
                    serde_json::Value::Array(v)
                })
                .collect();
            serde_json::json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Proto,
    ProtoGzip,
    Json,
    JsonDeflate,
}

/// Sends `req` in `format`; the status and the `Retry-After` header, or the transport error.
async fn push(
    http: &reqwest::Client,
    addr: &str,
    req: &PushRequest,
    format: Format,
) -> Result<(u16, Option<String>), String> {
    let proto = || Encoder::new().encode(req).unwrap().to_vec();
    let (ct, ce, body) = match format {
        Format::Proto => ("application/x-protobuf", None, proto()),
        Format::ProtoGzip => ("application/x-protobuf", Some("gzip"), gzip(&proto())),
        Format::Json => ("application/json", None, json(req)),
        Format::JsonDeflate => ("application/json", Some("deflate"), deflate(&json(req))),
    };
    let mut r = http
        .post(format!("http://{addr}/loki/api/v1/push"))
        .header("content-type", ct)
        .body(body);
    if let Some(ce) = ce {
        r = r.header("content-encoding", ce);
    }
    match tokio::time::timeout(WAIT, r.send()).await {
        Err(_) => Err(format!("no answer within {WAIT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) => Ok((
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )),
    }
}

fn received(entries: &[ReceivedEntry]) -> BTreeSet<Expect> {
    entries
        .iter()
        .map(|e| {
            (
                e.labels.clone(),
                e.timestamp_ns,
                e.line_str(),
                e.structured_metadata.clone(),
            )
        })
        .collect()
}

fn all_arrived(loki: &MockLoki, expect: &[Expect]) -> impl FnMut(&[ReceivedEntry]) -> bool {
    let want: BTreeSet<Expect> = expect.iter().cloned().collect();
    let _ = loki;
    move |got| want.is_subset(&received(got))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_arrives_whole_with_labels_timestamps_and_metadata() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref(), "", "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    let http = reqwest::Client::new();

    let t0 = base_time();
    let mut expect = Vec::new();
    for (k, format) in [
        Format::Proto,
        Format::ProtoGzip,
        Format::Json,
        Format::JsonDeflate,
    ]
    .into_iter()
    .enumerate()
    {
        // A burst: three requests per format, three streams of 120 entries each.
        for b in 0..3 {
            let tag = format!("{format:?}-{b}");
            let batch = batch(&tag, t0 + (k * 3 + b) as i64 * SEC, 3, 120);
            let answer = push(&http, &addr, &batch.req, format).await;
            assert_eq!(answer, Ok((204, None)), "{tag}");
            expect.extend(batch.expect);
        }
    }
    // Raw lines: the job's labels only, stamped on receipt.
    let raw = http
        .post(format!("http://{addr}/promtail/api/v1/raw"))
        .body("{\"level\":\"info\",\"msg\":\"raw one\"}\n{\"level\":\"info\",\"msg\":\"raw two\"}\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 204);

    loki.wait_until(WAIT, "every pushed entry and the raw lines", |got| {
        let want: BTreeSet<&Expect> = expect.iter().collect();
        let have = received(got);
        want.iter().all(|e| have.contains(*e))
            && got
                .iter()
                .filter(|e| e.labels == r#"{pushserver="relay"}"#)
                .count()
                == 2
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));

    let got = loki.entries();
    assert!(
        !got.iter()
            .any(|e| e.line_str().contains("debug: cache miss")),
        "the relabel-dropped streams are not shipped"
    );
    // Nothing but what was pushed (and the two raw lines) reached Loki.
    assert_eq!(received(&got).len(), expect.len() + 2);
    ft.stop();
}

fn ack_config(dir: &Path, loki: &MockLoki) -> PathBuf {
    write_config(
        dir,
        loki.url().as_ref(),
        "      ack_after_delivery: true",
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_answers_wait_for_loki() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ack_config(dir.path(), &loki);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    let http = reqwest::Client::new();
    let t0 = base_time();

    // Loki refuses for now: the pusher gets no answer while ferrotail retries.
    loki.set_fallback(Some(Reply::status(503)));
    let held = batch("held", t0, 2, 50);
    let pending = {
        let (http, addr, req) = (http.clone(), addr.clone(), held.req.clone());
        tokio::spawn(async move { push(&http, &addr, &req, Format::Proto).await })
    };
    loki.wait_for_requests(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));
    assert!(
        !pending.is_finished(),
        "the pusher was answered while Loki refused every push"
    );
    // Loki answers slowly, then at all: the answer comes once the entries are kept.
    loki.set_delay(Some(Duration::from_millis(300)));
    loki.set_fallback(None);
    let answer = tokio::time::timeout(WAIT, pending)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(answer, Ok((204, None)));
    let got = received(&loki.entries());
    for e in &held.expect {
        assert!(got.contains(e), "answered 204 but not in Loki: {e:?}");
    }
    ft.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill9_before_the_answer_loses_nothing_that_was_answered() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ack_config(dir.path(), &loki);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    let http = reqwest::Client::new();
    let t0 = base_time();

    // Answered while Loki works: in Loki.
    let mut answered = Vec::new();
    for b in 0..3 {
        let batch = batch(&format!("ok{b}"), t0 + b * SEC, 3, 40);
        assert_eq!(
            push(&http, &addr, &batch.req, Format::ProtoGzip).await,
            Ok((204, None))
        );
        answered.extend(batch.expect);
    }
    let got = received(&loki.entries());
    assert!(
        answered.iter().all(|e| got.contains(e)),
        "answered before Loki kept it"
    );

    // Loki refuses; a push is in flight, unanswered, when ferrotail is killed.
    loki.set_fallback(Some(Reply::status(503)));
    let lost = batch("inflight", t0 + 10 * SEC, 3, 40);
    let pending = {
        let (http, addr, req) = (http.clone(), addr.clone(), lost.req.clone());
        tokio::spawn(async move { push(&http, &addr, &req, Format::Json).await })
    };
    let seen = loki.requests().len();
    loki.wait_for_requests(seen + 2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));
    ft.kill9();
    let answer = tokio::time::timeout(WAIT, pending)
        .await
        .expect("the connection ended")
        .unwrap();
    assert!(
        !matches!(answer, Ok((204, _))),
        "a push was answered 204 although Loki never kept it: {answer:?}"
    );

    // The pusher sends again to the restarted relay, as Promtail's client retries.
    loki.set_fallback(None);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    assert_eq!(
        push(&http, &addr, &lost.req, Format::Json).await,
        Ok((204, None))
    );
    answered.extend(lost.expect);
    let got = received(&loki.entries());
    for e in &answered {
        assert!(got.contains(e), "answered 204 but lost: {e:?}");
    }
    ft.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_budget_answers_429_with_retry_after() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The smallest budget ferrotail takes; Loki refuses, so what was answered stays in flight.
    let cfg = write_config(
        dir.path(),
        loki.url().as_ref(),
        "",
        "ferrotail:\n  inflight_bytes: 65536",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    let http = reqwest::Client::new();
    let t0 = base_time();
    loki.set_fallback(Some(Reply::status(503)));

    let mut answered = Vec::new();
    let mut refused = None;
    for b in 0..50 {
        let batch = batch(&format!("b{b}"), t0 + b * SEC, 2, 60);
        match push(&http, &addr, &batch.req, Format::Proto).await {
            Ok((204, None)) => answered.extend(batch.expect),
            Ok((429, retry_after)) => {
                assert_eq!(retry_after.as_deref(), Some("1"), "429 says when to retry");
                refused = Some(batch);
                break;
            }
            other => panic!("unexpected answer to push {b}: {other:?}"),
        }
    }
    let refused = refused.expect("the budget filled up within 50 pushes");
    assert!(
        !answered.is_empty(),
        "some pushes fit before the budget was full"
    );

    // Loki is back: what was answered arrives, and the refused push goes through when retried.
    loki.set_fallback(None);
    loki.wait_until(WAIT, "every answered entry", all_arrived(&loki, &answered))
        .await
        .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));
    let mut status = None;
    for _ in 0..100 {
        match push(&http, &addr, &refused.req, Format::Proto).await {
            Ok((204, _)) => {
                status = Some(204);
                break;
            }
            // Still full for a moment: wait for Loki to take more, as a pusher would.
            Ok((429, _)) => {
                let n = loki.entries().len();
                let _ = loki
                    .wait_until(Duration::from_secs(2), "more entries", |got| got.len() > n)
                    .await;
            }
            other => panic!("unexpected answer to the retried push: {other:?}"),
        }
    }
    assert_eq!(
        status,
        Some(204),
        "the refused push went through once Loki was back"
    );
    loki.wait_until(
        WAIT,
        "the retried push",
        all_arrived(&loki, &refused.expect),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));
    let metrics = ft.http_get("/metrics");
    assert!(
        metrics
            .contains(r#"ferrotail_push_requests_total{code="429",endpoint="push",job="relay"}"#),
        "{metrics}"
    );
    ft.stop();
}

/// A push waits for delivery (ack_after_delivery, Loki refusing) when the relay is told to stop
/// (SIGTERM, `shutdown_timeout: 3s`). `loki_back`: Loki accepts once the shutdown has begun,
/// so the shutdown flush delivers the entries. Returns the pusher's answer, whether the
/// entries reached Loki, and the exit status.
async fn push_over_sigterm(loki_back: bool) -> (Result<(u16, Option<String>), String>, bool) {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        loki.url().as_ref(),
        "      ack_after_delivery: true",
        "ferrotail:\n  shutdown_timeout: 3s",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = push_addr(&ft);
    let http = reqwest::Client::new();
    loki.set_fallback(Some(Reply::status(503)));
    let held = batch("held", base_time(), 2, 30);
    let pending = {
        let (http, addr, req) = (http.clone(), addr.clone(), held.req.clone());
        tokio::spawn(async move { push(&http, &addr, &req, Format::Proto).await })
    };
    loki.wait_for_requests(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nferrotail's log:\n{}", ft.stderr()));
    ft.terminate();
    ft.wait_until(WAIT, "the shutdown to begin", || {
        ft.stderr().contains("Stopping: reading stops")
    });
    if loki_back {
        loki.set_fallback(None);
    }
    let answer = tokio::time::timeout(WAIT, pending)
        .await
        .expect("the pusher is answered (or its connection closed) before the relay exits")
        .unwrap();
    let log = ft.stderr();
    let status = tokio::task::spawn_blocking(move || ft.stop())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{log}");
    let got = received(&loki.entries());
    let delivered = held.expect.iter().all(|e| got.contains(e));
    (answer, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_delivered_by_the_shutdown_flush_is_answered_204_before_exit() {
    let (answer, delivered) = push_over_sigterm(true).await;
    assert!(delivered, "the shutdown flush delivered the held push");
    assert_eq!(answer, Ok((204, None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_abandoned_at_the_shutdown_deadline_is_never_answered_204() {
    let (answer, delivered) = push_over_sigterm(false).await;
    assert!(!delivered, "Loki refused every push");
    let (status, _) = answer.expect("the pusher gets an answer before the relay exits");
    assert_eq!(status, 503, "told to send again");
}
