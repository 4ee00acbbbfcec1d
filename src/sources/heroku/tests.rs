#![allow(clippy::unwrap_used)]

use super::*;

fn mapping(yaml: &str) -> serde_yaml::Mapping {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn settings_defaults() {
    let s = settings(&mapping("{}")).unwrap();
    assert_eq!(
        s.server.port, 0,
        "an unset port is a free port, as in Promtail"
    );
    assert_eq!(s.server.host, "0.0.0.0");
    assert_eq!(s.server.read_timeout, Duration::from_secs(30));
    assert!(!s.use_incoming_timestamp);
    let s = settings(&mapping(
        "server: {http_listen_address: 127.0.0.1, http_listen_port: 8080, grpc_listen_port: 0, http_path_prefix: /x/, log_level: debug, http_server_read_timeout: 5s}\nlabels: {job: heroku}\nuse_incoming_timestamp: true\n",
    ))
    .unwrap();
    assert_eq!(
        (
            s.server.host.as_str(),
            s.server.port,
            s.server.path_prefix.as_str()
        ),
        ("127.0.0.1", 8080, "/x")
    );
    assert_eq!(s.server.read_header_timeout, Duration::from_secs(5));
    assert!(s.use_incoming_timestamp);
}

#[test]
fn bad_settings_are_named() {
    for (yaml, want) in [
        ("serverr: {}", "unknown field `serverr`"),
        (
            "server: {grpc_listen_port: 9095}",
            "server.grpc_listen_port: 9095",
        ),
        (
            "server: {http_listen_prot: 1}",
            "server.http_listen_prot: unknown key",
        ),
        (
            "server: {http_tls_config: {cert_file: a, key_file: b}}",
            "server.http_tls_config is not supported yet",
        ),
        (
            "server: {http_listen_network: unix}",
            "server.http_listen_network",
        ),
        ("server: {http_listen_port: x}", "server:"),
        ("server: 5", "server: expected a mapping"),
        ("labels: {'a-b': c}", "not a valid label name"),
    ] {
        let e = check(&mapping(yaml)).unwrap_err();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn query_parameters_like_go() {
    let p = query_params("a=1&b=x+y%21&a=2&c&bad=%zz&semi=1;2&=e");
    assert_eq!(p.get("a").map(String::as_str), Some("1,2"));
    assert_eq!(p.get("b").map(String::as_str), Some("x y!"));
    assert_eq!(p.get("c").map(String::as_str), Some(""));
    assert_eq!(p.get("").map(String::as_str), Some("e"));
    assert!(!p.contains_key("bad") && !p.contains_key("semi"));
}

fn rules(yaml: &str) -> Vec<Rule> {
    let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
    crate::settings::relabel_rules(&configs)
}

fn message() -> DrainMessage {
    DrainMessage {
        timestamp_ns: 1_700_000_000_123_456_000,
        hostname: "host".into(),
        application: "app".into(),
        process: "web.1".into(),
        id: "-".into(),
        message: Bytes::from_static(b"State changed from starting to up\n"),
    }
}

#[test]
fn entry_labels_tenant_and_timestamp() {
    let s = settings(&mapping(
        "labels: {job: heroku, app: fixed}\nuse_incoming_timestamp: true",
    ))
    .unwrap();
    let r = rules(
        r#"
- source_labels: [__heroku_drain_app]
  target_label: app
- source_labels: [__heroku_drain_proc]
  target_label: proc
- source_labels: [__heroku_drain_param_env]
  target_label: env
- source_labels: [job]
  regex: heroku
  action: drop
"#,
    );
    let req = RequestLabels {
        params: query_params("env=prod&env=eu"),
        tenant: Some("team-a".into()),
    };
    let e = entry(&s, &r, &req, message(), Ack::none()).unwrap();
    // The rules do not see `job` (Promtail adds the job's labels afterwards), relabeled
    // labels win over the job's, the tenant is kept.
    assert_eq!(
        e.labels.stream_key(),
        r#"{app="app", env="prod,eu", job="heroku", proc="web.1"}"#
    );
    assert_eq!(e.labels.get(TENANT_LABEL), Some("team-a"));
    assert_eq!(e.timestamp, Timestamp(1_700_000_000_123_456_000));
    assert_eq!(e.stamp, Stamp::Given);
    assert_eq!(&e.line[..], b"State changed from starting to up\n");

    let dropping =
        rules("- source_labels: [__heroku_drain_proc]\n  regex: web.*\n  action: drop\n");
    assert!(entry(&s, &dropping, &req, message(), Ack::none()).is_none());

    let s = settings(&mapping("{}")).unwrap();
    let e = entry(&s, &[], &req, message(), Ack::none()).unwrap();
    assert_eq!(e.stamp, Stamp::ReadTime);
    assert_eq!(e.labels.stream_key(), "{}");
}

fn handler(budget: Budget, tx: mpsc::Sender<SourceEvent>) -> Arc<Handler> {
    let metrics = Arc::new(Metrics::new());
    let counter = |n| metrics.shared_counter(n, "test");
    Arc::new(Handler {
        settings: settings(&mapping("labels: {job: heroku}")).unwrap(),
        rules: Arc::new(Vec::new()),
        output: Mutex::new(Some(tx)),
        budget,
        metrics: HerokuMetrics {
            entries: counter("promtail_heroku_drain_target_entries_total"),
            errors: counter("promtail_heroku_drain_target_parsing_errors_total"),
        },
    })
}

fn body() -> Body {
    let m = "<190>1 2019-07-20T17:50:10.879238Z host app web.1 - up";
    Body::from(format!("{} {m}{} {m}", m.len(), m.len()))
}

#[tokio::test(start_paused = true)]
async fn a_full_budget_answers_429_then_entries_hold_their_permits() {
    let budget = Budget::new(64);
    let held = budget.acquire(64).await;
    let (tx, mut rx) = mpsc::channel(4);
    let h = handler(budget.clone(), tx);
    let uri = Uri::from_static("/heroku/api/v1/drain");
    let r = drain(State(Arc::clone(&h)), uri.clone(), HeaderMap::new(), body()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert!(
        rx.try_recv().is_err(),
        "nothing is handed on without budget"
    );

    drop(held);
    let r = drain(State(Arc::clone(&h)), uri, HeaderMap::new(), body()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let Ok(SourceEvent::Entries(entries)) = rx.try_recv() else {
        panic!("no entries handed on");
    };
    assert_eq!(entries.len(), 2);
    assert!(
        budget.in_use() > 0,
        "the entries hold the request's permits"
    );
    drop(entries);
    assert_eq!(budget.in_use(), 0);
    assert_eq!(h.metrics.entries.get(), 2);
}
