//! The Heroku drain source end to end: the `ferrotail` binary serves
//! `POST /heroku/api/v1/drain` on 127.0.0.1 and pushes to the mock Loki. Logplex bodies of
//! router and dyno lines (repeated lines, bursts of requests), query parameters, a tenant
//! header, a body that breaks half-way (400, the messages before the break kept), wrong
//! methods and paths: every entry's labels, line and timestamp are checked, and the counters.
//! Every wait is bounded and says what it waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::ConfigFile;
use common::mock_loki::MockLoki;
use common::process::{Ferrotail, metric};

const WAIT: Duration = Duration::from_secs(60);

/// One drain job, `heroku`: the messages' timestamps, the app, proc and `env` parameter as
/// labels, `scheduler` procs dropped.
fn write_config(dir: &Path, loki: &str) -> PathBuf {
    ConfigFile::new(dir, loki)
        .scrape(
            r#"  - job_name: heroku
    heroku_drain:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: 0
        grpc_listen_port: 0
      labels:
        job: heroku
      use_incoming_timestamp: true
    relabel_configs:
      - source_labels: [__heroku_drain_app]
        target_label: app
      - source_labels: [__heroku_drain_proc]
        target_label: proc
      - source_labels: [__heroku_drain_param_env]
        target_label: env
      - source_labels: [__heroku_drain_proc]
        regex: scheduler.*
        action: drop
"#,
        )
        .write()
}

/// The drain server's address, from its log line.
fn drain_addr(ft: &Ferrotail) -> String {
    ft.logged_address(
        WAIT,
        "the Heroku drain listening log line",
        "msg=\"Listening for Heroku drain requests.\"",
        None,
    )
}

/// One message in logplex's framing.
fn frame(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

/// A message and what its entry must be: (message, proc, line, timestamp ns).
struct Msg {
    text: String,
    proc_: String,
    line: String,
    ts_ns: i64,
}

fn msg(second: i64, micros: i64, app: &str, proc_: &str, line: &str) -> Msg {
    let base = 1_700_000_000i64 + second;
    let ts = chrono::DateTime::from_timestamp(base, (micros * 1000) as u32)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    Msg {
        text: format!("<190>1 {ts} host {app} {proc_} - {line}"),
        proc_: proc_.to_string(),
        line: line.to_string(),
        ts_ns: base * 1_000_000_000 + micros * 1000,
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    tenant: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/logplex-1")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_requests_are_shipped_with_their_labels_lines_and_timestamps() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref());
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = drain_addr(&ft);
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/heroku/api/v1/drain");

    // (labels, line, timestamp, tenant)
    let mut expected: BTreeSet<(String, String, i64, Option<String>)> = BTreeSet::new();
    let mut decoded = 0;
    // A burst of 20 requests of 10 router lines each; the same lines repeat, kept apart by
    // their timestamps.
    for r in 0..20 {
        let msgs: Vec<Msg> = (0..10)
            .map(|i| {
                msg(
                    r,
                    i * 1000,
                    "shop",
                    "router",
                    &format!(
                        "at=info method=GET path=\"/health\" host=shop.herokuapp.com status=200 bytes={}\n",
                        100 + i % 2
                    ),
                )
            })
            .collect();
        let body: String = msgs.iter().map(|m| frame(&m.text)).collect();
        let resp = post(&client, &format!("{url}?env=prod&env=eu"), body, None).await;
        assert_eq!(
            resp.status(),
            204,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        for m in msgs {
            decoded += 1;
            expected.insert((
                format!(
                    r#"{{app="shop", env="prod,eu", job="heroku", proc="{}"}}"#,
                    m.proc_
                ),
                m.line,
                m.ts_ns,
                None,
            ));
        }
    }
    // Dyno lines with a tenant; one scheduler line dropped by a relabel rule.
    let dyno = [
        msg(100, 1, "shop", "web.1", "State changed from starting to up"),
        msg(
            100,
            2,
            "shop",
            "web.2",
            "Starting process with command `bundle exec puma`",
        ),
        msg(100, 3, "shop", "scheduler.4", "running cleanup"),
    ];
    let body: String = dyno.iter().map(|m| frame(&m.text)).collect();
    let resp = post(&client, &url, body, Some("team-a")).await;
    assert_eq!(resp.status(), 204);
    for m in &dyno[..2] {
        expected.insert((
            format!(r#"{{app="shop", job="heroku", proc="{}"}}"#, m.proc_),
            m.line.clone(),
            m.ts_ns,
            Some("team-a".to_string()),
        ));
    }
    decoded += 3;
    // A body that breaks after its first message: 400, the first message kept.
    let good = msg(200, 0, "shop", "web.1", "last words");
    let body = format!("{}{}", frame(&good.text), "99 <190>1 garbage");
    let resp = post(&client, &url, body, None).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("bad frame"));
    expected.insert((
        r#"{app="shop", job="heroku", proc="web.1"}"#.to_string(),
        good.line.clone(),
        good.ts_ns,
        None,
    ));
    decoded += 1;
    // Wrong method and path.
    assert_eq!(client.get(&url).send().await.unwrap().status(), 405);
    assert_eq!(
        client
            .post(format!("http://{addr}/loki/api/v1/push"))
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let entries = loki
        .wait_for_entries(expected.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let got: BTreeSet<(String, String, i64, Option<String>)> = entries
        .iter()
        .map(|e| {
            (
                e.labels.clone(),
                e.line_str(),
                e.timestamp_ns,
                e.tenant.clone(),
            )
        })
        .collect();
    assert_eq!(entries.len(), expected.len(), "{entries:#?}");
    assert_eq!(got, expected);

    ft.wait_until(WAIT, "the Heroku counters", || {
        metric(&ft, "promtail_heroku_drain_target_entries_total", &[]) == Some(decoded as f64)
            && metric(
                &ft,
                "promtail_heroku_drain_target_parsing_errors_total",
                &[],
            ) == Some(1.0)
    });
    assert_eq!(ft.stop().code(), Some(0));
}

#[test]
fn a_grpc_port_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{disable: true}}\npositions: {{filename: {}}}\nclients: [{{url: 'http://127.0.0.1:1/loki/api/v1/push'}}]\nscrape_configs:\n  - job_name: h\n    heroku_drain: {{server: {{grpc_listen_port: 9095}}}}\n",
            dir.path().join("p.yaml").display()
        ),
    )
    .unwrap();
    let out = common::process::run_bounded(
        &[&format!("-config.file={}", cfg.display())],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("scrape_configs[0].heroku_drain: server.grpc_listen_port"),
        "{stderr}"
    );
}
