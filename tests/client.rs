//! Component tests of the Loki client (`ferrotail::client`) against the in-process mock Loki:
//! real HTTP (and TLS) on 127.0.0.1, real clock, bounded waits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrotail::ack::Tracker;
use ferrotail::client::{
    Auth, BackoffSettings, ClientSettings, Clients, PemSource, Secret, TlsSettings,
    USER_AGENT_VALUE,
};
use ferrotail::entry::{Ack, Entry, LabelSet, Timestamp};
use ferrotail::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use common::mock_loki::{MockLoki, ReceivedEntry, Reply};

/// Upper bound of every wait; a healthy run needs a fraction of it.
const WAIT: Duration = Duration::from_secs(20);

fn settings(mock: &MockLoki) -> ClientSettings {
    let mut s = ClientSettings::new(mock.url());
    s.name = "test".into();
    s.batch_wait = Duration::from_millis(20);
    s.backoff = BackoffSettings {
        min_period: Duration::from_millis(10),
        max_period: Duration::from_millis(40),
        max_retries: Some(10),
    };
    s
}

fn entry(labels: &[(&str, &str)], ts: i64, line: &[u8]) -> Entry {
    Entry::new(
        LabelSet::from_pairs(labels.iter().copied()),
        Timestamp(ts),
        Bytes::copy_from_slice(line),
        Ack::none(),
    )
}

fn start(settings: Vec<ClientSettings>) -> (Clients, Arc<Metrics>, CancellationToken) {
    let metrics = Arc::new(Metrics::new());
    let hard_stop = CancellationToken::new();
    let clients = Clients::start(settings, Arc::clone(&metrics), hard_stop.clone())
        .unwrap_or_else(|e| panic!("clients did not start: {e}"));
    (clients, metrics, hard_stop)
}

/// Shutdown must finish by itself; a hang fails the test with a message instead.
async fn shutdown(clients: Clients) {
    tokio::time::timeout(WAIT, clients.shutdown())
        .await
        .expect("shutdown did not finish");
}

#[tokio::test]
async fn entries_arrive_exactly() {
    let loki = MockLoki::start().await;
    let (clients, metrics, _) = start(vec![settings(&loki)]);
    let mut with_metadata = entry(&[("job", "b"), ("path", "/x \"y\"")], 3, b"meta");
    with_metadata.structured_metadata = vec![("trace_id".into(), "abc".into())];
    clients
        .send(vec![
            entry(&[("job", "a")], 1_700_000_000_000_000_001, b"first"),
            entry(
                &[("job", "a")],
                1_700_000_000_000_000_002,
                b"bad \xff\xfe utf8",
            ),
            with_metadata,
        ])
        .await;
    shutdown(clients).await;
    let mut got = loki.entries();
    got.sort_by_key(|e| e.timestamp_ns);
    let expect = |labels: &str, ts: i64, line: &[u8], md: Vec<(String, String)>| ReceivedEntry {
        tenant: None,
        labels: labels.to_owned(),
        timestamp_ns: ts,
        line: Bytes::copy_from_slice(line),
        structured_metadata: md,
    };
    assert_eq!(
        got,
        vec![
            expect(
                r#"{job="b", path="/x \"y\""}"#,
                3,
                b"meta",
                vec![("trace_id".into(), "abc".into())]
            ),
            expect(r#"{job="a"}"#, 1_700_000_000_000_000_001, b"first", vec![]),
            expect(
                r#"{job="a"}"#,
                1_700_000_000_000_000_002,
                b"bad \xff\xfe utf8",
                vec![]
            ),
        ]
    );
    assert_eq!(loki.requests().len(), 1, "one batch, one request");
    let host = loki.host();
    assert_eq!(metrics.sent_entries.with_label_values(&[&host]).get(), 3);
}

#[tokio::test]
async fn headers_follow_promtail() {
    let loki = MockLoki::start().await;
    let mut s = settings(&loki);
    s.tenant_id = Some("configured".into());
    s.headers = vec![
        ("X-Foo".into(), "bar".into()),
        ("Content-Type".into(), "text/plain".into()),
        ("User-Agent".into(), "not-us".into()),
    ];
    let (clients, _, _) = start(vec![s]);
    clients
        .send(vec![
            entry(&[("job", "a"), ("__tenant_id__", "t1")], 1, b"x"),
            entry(&[("job", "a")], 2, b"y"),
        ])
        .await;
    shutdown(clients).await;
    let mut reqs = loki.requests();
    assert_eq!(reqs.len(), 2);
    reqs.sort_by(|a, b| a.header("x-scope-orgid").cmp(&b.header("x-scope-orgid")));
    for (r, tenant) in reqs.iter().zip(["configured", "t1"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/loki/api/v1/push");
        assert_eq!(r.header("x-scope-orgid"), Some(tenant));
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(r.header("user-agent"), Some(USER_AGENT_VALUE));
        assert!(USER_AGENT_VALUE.starts_with("ferrotail/"));
        assert_eq!(r.header("x-foo"), Some("bar"));
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("authorization"), None);
        let n = |name: &str| r.headers.iter().filter(|(h, _)| h == name).count();
        assert_eq!(
            (n("content-type"), n("user-agent")),
            (1, 1),
            "custom duplicates skipped"
        );
    }
    let entries = loki.entries();
    assert!(entries.iter().all(|e| !e.labels.contains("__tenant_id__")));
}

#[tokio::test]
async fn retries_503_then_delivers_once_and_acks_only_after_success() {
    let loki = MockLoki::start().await;
    loki.set_fallback(Some(Reply::with_body(
        503,
        "ingester unavailable\nsecond line",
    )));
    let mut s = settings(&loki);
    s.backoff.max_retries = None;
    let (clients, metrics, _) = start(vec![s]);
    let tracker = Tracker::new(0);
    let mut e = entry(&[("job", "a")], 1, b"x");
    e.ack = tracker.chunk(42, None);
    clients.send(vec![e]).await;
    loki.wait_for_requests(3, WAIT).await.unwrap();
    assert_eq!(tracker.committed(), 0, "not acknowledged while Loki fails");
    loki.set_fallback(None);
    let got = loki.wait_for_entries(1, WAIT).await.unwrap();
    shutdown(clients).await;
    assert_eq!(got.len(), 1);
    assert_eq!(loki.entries().len(), 1, "delivered exactly once");
    assert_eq!(tracker.committed(), 42);
    let host = loki.host();
    let failed = loki.requests().len() as u64 - 1;
    assert!(failed >= 3);
    assert_eq!(
        metrics.batch_retries.with_label_values(&[&host, ""]).get(),
        failed
    );
    assert_eq!(
        metrics
            .request_duration
            .with_label_values(&["503", &host])
            .get_sample_count(),
        failed
    );
    assert_eq!(
        metrics
            .request_duration
            .with_label_values(&["204", &host])
            .get_sample_count(),
        1
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let loki = MockLoki::start().await;
    loki.script([Reply::with_retry_after(429, "1")]);
    let mut s = settings(&loki);
    s.backoff.max_period = Duration::from_secs(5);
    let (clients, metrics, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    loki.wait_for_entries(1, WAIT).await.unwrap();
    shutdown(clients).await;
    let reqs = loki.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_secs(1),
        "retried after {gap:?}, before Retry-After"
    );
    let host = loki.host();
    assert_eq!(
        metrics.batch_retries.with_label_values(&[&host, ""]).get(),
        1
    );
}

#[tokio::test]
async fn rejected_batch_is_dropped_counted_and_acked() {
    let loki = MockLoki::start().await;
    loki.script([Reply::with_body(400, "entry too far behind")]);
    let (clients, metrics, _) = start(vec![settings(&loki)]);
    let tracker = Tracker::new(0);
    let mut a = entry(&[("job", "a")], 1, b"x");
    a.ack = tracker.chunk(10, None);
    let mut b = entry(&[("job", "a")], 2, b"y");
    b.ack = tracker.chunk(20, None);
    clients.send(vec![a, b]).await;
    shutdown(clients).await;
    assert_eq!(loki.requests().len(), 1, "a 400 is not retried");
    assert!(loki.entries().is_empty());
    assert_eq!(tracker.committed(), 20);
    let host = loki.host();
    let labels = [host.as_str(), "", "ingester_error"];
    assert_eq!(metrics.dropped_entries.with_label_values(&labels).get(), 2);
    assert_eq!(
        metrics.dropped_bytes.with_label_values(&labels).get(),
        metrics.encoded_bytes.with_label_values(&[&host]).get()
    );
}

#[tokio::test]
async fn a_failing_client_does_not_stop_the_other() {
    let down = MockLoki::start().await;
    down.set_fallback(Some(Reply::status(503)));
    let up = MockLoki::start().await;
    let mut s_down = settings(&down);
    s_down.name = "down".into();
    s_down.backoff.max_retries = None;
    let mut s_up = settings(&up);
    s_up.name = "up".into();
    let (clients, _, hard_stop) = start(vec![s_down, s_up]);
    let tracker = Tracker::new(0);
    let total = 50;
    for i in 0..total {
        let mut e = entry(&[("job", "a")], i, format!("line {i}").as_bytes());
        e.ack = tracker.chunk(i as u64 + 1, None);
        clients.send(vec![e]).await;
    }
    let got = up.wait_for_entries(total as usize, WAIT).await.unwrap();
    let lines: Vec<String> = got.iter().map(ReceivedEntry::line_str).collect();
    let expected: Vec<String> = (0..total).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "in order, nothing missing");
    assert!(down.entries().is_empty());
    assert_eq!(tracker.committed(), 0, "the other client has not delivered");
    // Deadline: freeze, then hard stop; shutdown returns and nothing is committed.
    tracker.freeze();
    hard_stop.cancel();
    shutdown(clients).await;
    assert_eq!(tracker.committed(), 0);
}

#[tokio::test]
async fn bearer_token_file_is_read_for_every_request() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first\n").unwrap();
    let mut s = settings(&loki);
    s.auth = Auth::Bearer(Secret::File(token.clone()));
    let (clients, _, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    loki.wait_for_entries(1, WAIT).await.unwrap();
    std::fs::write(&token, "second").unwrap();
    clients.send(vec![entry(&[("job", "a")], 2, b"y")]).await;
    loki.wait_for_entries(2, WAIT).await.unwrap();
    shutdown(clients).await;
    let auth: Vec<Option<String>> = loki
        .requests()
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        auth,
        [
            Some("Bearer first".to_owned()),
            Some("Bearer second".to_owned())
        ]
    );
}

#[tokio::test]
async fn basic_auth_from_url_userinfo() {
    let loki = MockLoki::start().await;
    let mut s = settings(&loki);
    s.url = format!("http://user:p%40ss@{}/loki/api/v1/push", loki.addr())
        .parse()
        .unwrap();
    // The URL's userinfo wins over configured auth, as in Go.
    s.auth = Auth::Bearer(Secret::Inline("ignored".into()));
    let (clients, metrics, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    shutdown(clients).await;
    let reqs = loki.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("authorization"), Some("Basic dXNlcjpwQHNz"));
    assert_eq!(reqs[0].uri, "/loki/api/v1/push");
    // The host label has no userinfo.
    assert_eq!(
        metrics
            .sent_entries
            .with_label_values(&[&loki.host()])
            .get(),
        1
    );
}

#[tokio::test]
async fn custom_authorization_header_wins_over_auth() {
    let loki = MockLoki::start().await;
    let mut s = settings(&loki);
    s.headers = vec![("Authorization".into(), "Custom abc".into())];
    s.auth = Auth::Basic {
        username: Secret::Inline("u".into()),
        password: Secret::Inline("p".into()),
    };
    let (clients, _, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    shutdown(clients).await;
    let reqs = loki.requests();
    assert_eq!(reqs[0].header("authorization"), Some("Custom abc"));
    let n = reqs[0]
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn connection_reset_is_retried() {
    let loki = MockLoki::start().await;
    loki.script([Reply::Reset]);
    let (clients, metrics, _) = start(vec![settings(&loki)]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    loki.wait_for_entries(1, WAIT).await.unwrap();
    shutdown(clients).await;
    let host = loki.host();
    assert_eq!(loki.entries().len(), 1);
    assert_eq!(
        metrics
            .request_duration
            .with_label_values(&["-1", &host])
            .get_sample_count(),
        1
    );
    assert_eq!(
        metrics.batch_retries.with_label_values(&[&host, ""]).get(),
        1
    );
}

#[tokio::test]
async fn slow_answer_times_out_and_exhausted_retries_drop() {
    let loki = MockLoki::start().await;
    loki.set_delay(Some(Duration::from_secs(2)));
    let mut s = settings(&loki);
    s.timeout = Duration::from_millis(50);
    s.backoff.max_retries = Some(2);
    let (clients, metrics, _) = start(vec![s]);
    let tracker = Tracker::new(0);
    let mut e = entry(&[("job", "a")], 1, b"x");
    e.ack = tracker.chunk(5, None);
    clients.send(vec![e]).await;
    shutdown(clients).await;
    let host = loki.host();
    assert_eq!(
        metrics.batch_retries.with_label_values(&[&host, ""]).get(),
        2
    );
    assert_eq!(
        metrics
            .dropped_entries
            .with_label_values(&[&host, "", "ingester_error"])
            .get(),
        1
    );
    assert_eq!(
        metrics
            .request_duration
            .with_label_values(&["-1", &host])
            .get_sample_count(),
        2
    );
    assert_eq!(tracker.committed(), 5, "a counted drop acknowledges");
}

#[tokio::test]
async fn drop_rate_limited_batches_drops_a_429() {
    let loki = MockLoki::start().await;
    loki.script([Reply::status(429)]);
    let mut s = settings(&loki);
    s.drop_rate_limited_batches = true;
    let (clients, metrics, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    shutdown(clients).await;
    let host = loki.host();
    assert_eq!(loki.requests().len(), 1);
    assert_eq!(
        metrics
            .dropped_entries
            .with_label_values(&[&host, "", "rate_limited"])
            .get(),
        1
    );
    assert_eq!(
        metrics.batch_retries.with_label_values(&[&host, ""]).get(),
        0
    );
}

#[tokio::test]
async fn shutdown_flushes_pending_batches() {
    let loki = MockLoki::start().await;
    let mut s = settings(&loki);
    s.batch_wait = Duration::from_secs(3600);
    let (clients, _, _) = start(vec![s]);
    clients
        .send(vec![
            entry(&[("job", "a"), ("__tenant_id__", "t1")], 1, b"x"),
            entry(&[("job", "b")], 2, b"y"),
        ])
        .await;
    assert!(loki.requests().is_empty(), "nothing sent before batch_wait");
    shutdown(clients).await;
    assert_eq!(loki.entries().len(), 2);
}

#[tokio::test]
async fn hard_stop_ends_retrying() {
    let loki = MockLoki::start().await;
    loki.set_fallback(Some(Reply::status(500)));
    let mut s = settings(&loki);
    s.backoff.max_retries = None;
    let (clients, metrics, hard_stop) = start(vec![s]);
    let tracker = Tracker::new(0);
    let mut e = entry(&[("job", "a")], 1, b"x");
    e.ack = tracker.chunk(5, None);
    clients.send(vec![e]).await;
    loki.wait_for_requests(2, WAIT).await.unwrap();
    let stopping = tokio::spawn(clients.shutdown());
    // Graceful shutdown keeps retrying: it has not finished after more attempts.
    let seen = loki.requests().len();
    loki.wait_for_requests(seen + 2, WAIT).await.unwrap();
    assert!(!stopping.is_finished());
    tracker.freeze();
    hard_stop.cancel();
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("the hard stop ends shutdown")
        .unwrap();
    assert_eq!(tracker.committed(), 0);
    let host = loki.host();
    assert_eq!(
        metrics
            .dropped_entries
            .with_label_values(&[&host, "", "ingester_error"])
            .get(),
        0,
        "abandoned at the hard stop, not counted as dropped"
    );
}

#[tokio::test]
async fn proxy_url_is_used() {
    let proxy = MockLoki::start().await;
    let mut s = ClientSettings::new("http://loki.invalid:3100/loki/api/v1/push".parse().unwrap());
    s.batch_wait = Duration::from_millis(20);
    s.proxy_url = Some(proxy.base_url().parse().unwrap());
    let (clients, metrics, _) = start(vec![s]);
    clients.send(vec![entry(&[("job", "a")], 1, b"x")]).await;
    shutdown(clients).await;
    let reqs = proxy.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].uri, "http://loki.invalid:3100/loki/api/v1/push");
    assert_eq!(proxy.entries().len(), 1);
    assert_eq!(
        metrics
            .sent_entries
            .with_label_values(&["loki.invalid:3100"])
            .get(),
        1
    );
}

#[tokio::test]
async fn start_errors_name_the_client_and_file() {
    let mut s = ClientSettings::new("https://loki:3100/loki/api/v1/push".parse().unwrap());
    s.name = "prod".into();
    s.tls.ca = Some(PemSource::File("/nonexistent/ca.pem".into()));
    let err = Clients::start(vec![s], Arc::new(Metrics::new()), CancellationToken::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("prod") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );

    let a = ClientSettings::new("http://loki/loki/api/v1/push".parse().unwrap());
    let err = Clients::start(
        vec![a.clone(), a],
        Arc::new(Metrics::new()),
        CancellationToken::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("duplicate"), "{err}");
}

mod tls {
    use super::*;
    use crate::common::pki::{Pki, provider};

    fn server_config(pki: &Pki, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        let leaf = pki.server("loki.test");
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("test PKI");
        let builder = if require_client_cert {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(pki.roots()),
                provider(),
            )
            .build()
            .expect("test PKI");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(
            builder
                .with_single_cert(vec![leaf.cert_der], leaf.key_der)
                .expect("test PKI"),
        )
    }

    fn tls_client(loki: &MockLoki, name: &str, tls: TlsSettings) -> ClientSettings {
        let mut s = settings(loki);
        s.name = name.into();
        s.tls = tls;
        // One attempt: a TLS failure is then a counted drop instead of endless retries.
        s.backoff.max_retries = Some(1);
        s
    }

    fn delivered(metrics: &Metrics, host: &str) -> u64 {
        metrics.sent_entries.with_label_values(&[host]).get()
    }

    #[tokio::test]
    async fn self_signed_ca_server_name_and_insecure() {
        let pki = Pki::new();
        let loki = MockLoki::start_tls(server_config(&pki, false)).await;
        let ca = Some(PemSource::Inline(pki.ca_pem.clone()));
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();
        let cases = [
            // The certificate is for loki.test, the URL says 127.0.0.1.
            (
                TlsSettings {
                    ca: ca.clone(),
                    server_name: Some("loki.test".into()),
                    ..TlsSettings::default()
                },
                true,
            ),
            (
                TlsSettings {
                    ca: Some(PemSource::File(ca_file)),
                    server_name: Some("loki.test".into()),
                    ..TlsSettings::default()
                },
                true,
            ),
            (
                TlsSettings {
                    ca: ca.clone(),
                    ..TlsSettings::default()
                },
                false,
            ),
            (
                TlsSettings {
                    ca: ca.clone(),
                    server_name: Some("other.test".into()),
                    ..TlsSettings::default()
                },
                false,
            ),
            (
                TlsSettings {
                    server_name: Some("loki.test".into()),
                    ..TlsSettings::default()
                },
                false,
            ),
            (
                TlsSettings {
                    insecure_skip_verify: true,
                    ..TlsSettings::default()
                },
                true,
            ),
        ];
        for (i, (tls, ok)) in cases.into_iter().enumerate() {
            let (clients, metrics, _) = start(vec![tls_client(&loki, &format!("c{i}"), tls)]);
            clients
                .send(vec![entry(&[("case", &i.to_string())], 1, b"x")])
                .await;
            shutdown(clients).await;
            let host = loki.host();
            assert_eq!(delivered(&metrics, &host), u64::from(ok), "case {i}");
            let dropped = metrics
                .dropped_entries
                .with_label_values(&[&host, "", "ingester_error"])
                .get();
            assert_eq!(dropped, u64::from(!ok), "case {i}");
            if !ok {
                assert_eq!(
                    metrics
                        .request_duration
                        .with_label_values(&["-1", &host])
                        .get_sample_count(),
                    1,
                    "case {i}: a TLS failure is a transport error"
                );
            }
        }
        let labels: Vec<String> = loki.entries().into_iter().map(|e| e.labels).collect();
        assert_eq!(labels, [r#"{case="0"}"#, r#"{case="1"}"#, r#"{case="5"}"#]);
    }

    #[tokio::test]
    async fn client_certificate_is_presented() {
        let pki = Pki::new();
        let loki = MockLoki::start_tls(server_config(&pki, true)).await;
        let leaf = pki.client("client");
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("client.key");
        std::fs::write(&key_file, &leaf.key_pem).unwrap();
        let base = TlsSettings {
            ca: Some(PemSource::Inline(pki.ca_pem.clone())),
            server_name: Some("loki.test".into()),
            ..TlsSettings::default()
        };
        let with_cert = TlsSettings {
            cert: Some(PemSource::Inline(leaf.cert_pem)),
            key: Some(Secret::File(key_file)),
            ..base.clone()
        };
        for (name, tls, ok) in [("with-cert", with_cert, true), ("without", base, false)] {
            let (clients, metrics, _) = start(vec![tls_client(&loki, name, tls)]);
            clients
                .send(vec![entry(&[("client", name)], 1, b"x")])
                .await;
            shutdown(clients).await;
            assert_eq!(delivered(&metrics, &loki.host()), u64::from(ok), "{name}");
        }
        assert_eq!(loki.entries().len(), 1);
    }
}
