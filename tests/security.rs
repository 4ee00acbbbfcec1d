//! Security properties of the `ferrotail` binary, end to end against the in-process mock Loki:
//! secrets never reach stderr (logs, `-print-config-stderr`, client errors) or the `/config`
//! page; credential files are re-read; state files are private; the HTTP server speaks TLS as
//! configured.
//!
//! Every secret in these configs contains `SECRET`, so one search finds any leak.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine as _;
use common::mock_loki::{MockLoki, Reply};
use common::pki::{Pki, client, https_get};
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
    # One mock stands for four Lokis: a label per client keeps their streams apart (Loki
    # would merge the same entry pushed four times into one stream).
    external_labels: {{client: proxied}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: bearer
    external_labels: {{client: bearer}}
    bearer_token: SECRET_BEARER
    headers: {{X-Api-Key: SECRET_HEADER, X-Scope-OrgID: visible-tenant}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: basic
    external_labels: {{client: basic}}
    basic_auth: {{username: visible-user, password: SECRET_BASIC}}
    batchwait: 50ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
  - url: http://{addr}/loki/api/v1/push
    name: authorization
    external_labels: {{client: authorization}}
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

/// The `Authorization` headers the mock received with `prefix`, in arrival order.
fn auth_headers(mock: &MockLoki, prefix: &str) -> Vec<String> {
    mock.requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter(|v| v.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_files_are_read_again_for_every_push() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let (password, token, credentials) = (
        dir.path().join("password"),
        dir.path().join("token"),
        dir.path().join("credentials"),
    );
    std::fs::write(&password, "pass-1\n").unwrap();
    std::fs::write(&token, "token-1\n").unwrap();
    std::fs::write(&credentials, "cred-1\n").unwrap();
    let addr = mock.addr();
    let config = dir.path().join("config.yaml");
    let client = |name: &str, auth: String| {
        format!(
            "  - url: http://{addr}/loki/api/v1/push\n    name: {name}\n    {auth}\n    \
             external_labels: {{client: {name}}}\n    \
             batchwait: 50ms\n    backoff_config: {{min_period: 20ms, max_period: 100ms}}\n"
        )
    };
    let text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: 0}}\n\
         positions: {{filename: {pos}, sync_period: 100ms}}\n\
         clients:\n{basic}{bearer}{authz}\
         scrape_configs:\n  - job_name: test\n    static_configs:\n      \
         - labels: {{job: test, __path__: {log}}}\n",
        pos = dir.path().join("positions.yaml").display(),
        basic = client(
            "basic",
            format!(
                "basic_auth: {{username: u, password_file: {}}}",
                password.display()
            )
        ),
        bearer = client("bearer", format!("bearer_token_file: {}", token.display())),
        authz = client(
            "authz",
            format!(
                "authorization: {{type: Token, credentials_file: {}}}",
                credentials.display()
            )
        ),
        log = log.display(),
    );
    std::fs::write(&config, text).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    append(&log, &["first".to_owned()]);
    let ft = Ferrotail::start(dir.path(), &config, &[]);
    mock.wait_for_entries(3, WAIT).await.unwrap();

    // Rotated between two pushes: the next push carries the new value, without a restart.
    std::fs::write(&password, "pass-2\n").unwrap();
    std::fs::write(&token, "token-2\n").unwrap();
    std::fs::write(&credentials, "cred-2\n").unwrap();
    append(&log, &["second".to_owned()]);
    mock.wait_for_entries(6, WAIT).await.unwrap();
    assert_eq!(
        auth_headers(&mock, "Basic "),
        [
            format!("Basic {}", b64("u:pass-1")),
            format!("Basic {}", b64("u:pass-2"))
        ]
    );
    assert_eq!(
        auth_headers(&mock, "Bearer "),
        ["Bearer token-1", "Bearer token-2"]
    );
    assert_eq!(
        auth_headers(&mock, "Token "),
        ["Token cred-1", "Token cred-2"]
    );

    // A file that cannot be read: a clear error naming the setting and the file, the batch is
    // retried (not dropped), and it is delivered once the file is back.
    std::fs::remove_file(&token).unwrap();
    append(&log, &["third".to_owned()]);
    let expected = format!("unable to read bearer_token_file {}", token.display());
    wait_until(WAIT, "the unreadable-file error in the log", || {
        ft.stderr().contains(&expected)
    });
    wait_until(WAIT, "the failed batch to be retried", || {
        ft.stderr().matches(&expected).count() >= 2
    });
    std::fs::write(&token, "token-3\n").unwrap();
    mock.wait_for_entries(9, WAIT).await.unwrap();
    assert_eq!(
        auth_headers(&mock, "Bearer ").last().map(String::as_str),
        Some("Bearer token-3")
    );
    let stderr_path = ft.stderr_path.clone();
    assert!(ft.stop().success());
    let stderr = std::fs::read_to_string(stderr_path).unwrap();
    assert!(
        !stderr.contains("final error sending batch"),
        "nothing may be dropped:\n{stderr}"
    );
    // The state files the binary wrote are private (Promtail: 0600).
    for state in ["positions.yaml", "positions.yaml.ferrotail"] {
        let mode = std::fs::metadata(dir.path().join(state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{state}");
    }
    let lines: Vec<String> = mock.entries().iter().map(|e| e.line_str()).collect();
    for line in ["first", "second", "third"] {
        assert_eq!(
            lines.iter().filter(|l| *l == line).count(),
            3,
            "{line} once per client: {lines:?}"
        );
    }
}

/// `text` as a YAML block scalar indented by `indent` spaces.
fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = "|\n".to_owned();
    for line in text.lines() {
        out.push_str(&pad);
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_server_speaks_tls_as_configured() {
    let mock = MockLoki::start().await;
    let pki = Pki::new();
    let server_leaf = pki.server("ferrotail.test");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("clients-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let log = dir.path().join("app.log");
    append(&log, &["one line".to_owned()]);
    let config = dir.path().join("config.yaml");
    let text = format!(
        "server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 0\n  \
         tls_min_version: VersionTLS12\n  http_tls_config:\n    \
         client_auth_type: RequireAndVerifyClientCert\n    client_ca_file: {ca}\n    \
         cert: {cert}    key: {key}\
         positions: {{filename: {pos}}}\n\
         clients: [{{url: '{url}'}}]\n\
         scrape_configs:\n  - job_name: test\n    static_configs:\n      \
         - labels: {{job: test, __path__: {log}}}\n",
        ca = ca.display(),
        cert = block(&server_leaf.cert_pem, 6),
        key = block(&server_leaf.key_pem, 6),
        pos = dir.path().join("positions.yaml").display(),
        url = mock.url(),
        log = log.display(),
    );
    std::fs::write(&config, text).unwrap();
    let ft = Ferrotail::start(dir.path(), &config, &[]);
    let addr: std::net::SocketAddr = ft.http_addr().parse().unwrap();
    assert!(ft.stderr().contains("tls=true"), "{}", ft.stderr());

    let scraper = pki.client("scraper");
    let with_cert = client(&pki, Some(&scraper), rustls::DEFAULT_VERSIONS);
    let metrics = https_get(addr, with_cert.clone(), "ferrotail.test", "/metrics")
        .await
        .unwrap();
    assert!(
        metrics.response.starts_with("HTTP/1.1 200")
            && metrics.response.contains("promtail_build_info"),
        "{}",
        metrics.response
    );
    let page = https_get(addr, with_cert, "ferrotail.test", "/config")
        .await
        .unwrap()
        .response;
    assert!(
        page.contains("key: <secret>") && !page.contains("PRIVATE KEY"),
        "{page}"
    );
    let without = https_get(
        addr,
        client(&pki, None, rustls::DEFAULT_VERSIONS),
        "ferrotail.test",
        "/metrics",
    )
    .await;
    assert!(without.is_err(), "no client certificate must be refused");
    let plain = ft.http_get("/metrics");
    assert!(plain.starts_with("HTTP/1.0 400 Bad Request"), "{plain}");
    assert!(ft.stop().success());
}
