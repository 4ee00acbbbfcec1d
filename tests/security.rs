//! Security properties of the `ferrotail` binary, end to end against the in-process mock Loki:
//! secrets never reach stderr (logs, `-print-config-stderr`, client errors) or the `/config`
//! page.
//!
//! Every secret in these configs contains `SECRET`, so one search finds any leak.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::mock_loki::{MockLoki, Reply};
use common::process::{Ferrotail, append, wait_until};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_stderr_or_the_config_page() {
    let mock = MockLoki::start().await;
    // The first answers are failures, so that client errors are logged.
    mock.script([
        Reply::with_body(500, "mock failure"),
        Reply::Reset,
        Reply::with_body(503, "mock unavailable"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &["one line".to_owned()]);
    let addr = mock.addr();
    let config = dir.path().join("config.yaml");
    let text = format!(
        r#"server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  log_level: debug
positions:
  filename: {pos}
  sync_period: 100ms
clients:
  # Basic auth from the URL's userinfo, through a proxy (the mock) with its own credentials.
  - url: http://user:SECRET_URL_PASS@{addr}/loki/api/v1/push
    proxy_url: http://proxyuser:SECRET_PROXY_PASS@{addr}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: bearer
    bearer_token: SECRET_BEARER
    headers: {{X-Api-Key: SECRET_HEADER, X-Scope-OrgID: visible-tenant}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: basic
    basic_auth: {{username: visible-user, password: SECRET_BASIC}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: authorization
    authorization: {{type: Token, credentials: SECRET_CREDENTIALS}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
scrape_configs:
  - job_name: test
    static_configs:
      - labels: {{job: test, __path__: {log}}}
"#,
        pos = dir.path().join("positions.yaml").display(),
        log = log.display(),
    );
    std::fs::write(&config, text).unwrap();

    let ft = Ferrotail::start(dir.path(), &config, &["-print-config-stderr"]);
    // Four clients, one line each; the scripted failures are retried.
    mock.wait_for_entries(4, WAIT).await.unwrap();
    let page = ft.http_get("/config");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(!page.contains("SECRET"), "/config leaks a secret:\n{page}");
    for shown in [
        "http://user:<secret>@",
        "http://proxyuser:<secret>@",
        "bearer_token: <secret>",
        "password: <secret>",
        "credentials: <secret>",
        "X-Api-Key: <secret>",
        "visible-tenant",
        "visible-user",
    ] {
        assert!(page.contains(shown), "/config lacks {shown:?}:\n{page}");
    }
    wait_until(WAIT, "the retried client errors in the log", || {
        ft.stderr().contains("error sending batch, will retry")
    });
    let stderr_path = ft.stderr_path.clone();
    assert!(ft.stop().success());

    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains("# Loki Config") && stderr.contains("bearer_token: <secret>"),
        "-print-config-stderr output missing:\n{stderr}"
    );
    assert!(
        stderr.contains("level=debug"),
        "the debug level (dependencies' logs included) must be on:\n{stderr}"
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for leak in [
        "SECRET".to_owned(),
        b64("user:SECRET_URL_PASS"),
        b64("proxyuser:SECRET_PROXY_PASS"),
        b64("visible-user:SECRET_BASIC"),
    ] {
        assert!(!stderr.contains(&leak), "stderr leaks {leak:?}:\n{stderr}");
    }
    // The credentials were sent all the same.
    let auth: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    for expected in [
        format!("Basic {}", b64("user:SECRET_URL_PASS")),
        "Bearer SECRET_BEARER".to_owned(),
        format!("Basic {}", b64("visible-user:SECRET_BASIC")),
        "Token SECRET_CREDENTIALS".to_owned(),
    ] {
        assert!(auth.contains(&expected), "{expected} not sent: {auth:?}");
    }
}
