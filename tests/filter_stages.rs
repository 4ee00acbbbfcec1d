//! End-to-end test of the filtering and metrics stages (`match`, `drop`, `limit`, `sampling`,
//! `metrics`) in the `ferrotail` binary against the mock Loki: what is kept reaches Loki, what is
//! dropped is counted on `/metrics` and still acknowledged (its position is committed), and the
//! `metrics` stage's families are served on `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::mock_loki::MockLoki;
use common::process::{Ferrotail, append, config, positions_offset, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn sample(metrics: &str, prefix: &str) -> Option<String> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_drop_and_count_and_metrics_are_served() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let stages = r#"      - json:
          expressions: {level: level, msg: msg}
      - labels: {level: }
      - metrics:
          lines_total:
            type: Counter
            description: "lines seen"
            config: {match_all: true, action: inc}
      - match:
          selector: '{level="debug"}'
          action: drop
          drop_counter_reason: debug_noise
      - match:
          selector: '{level="info"} |= "health"'
          stages:
            - drop: {source: msg, value: "health check"}
      - drop:
          longer_than: 60
      - sampling: {rate: 1}
      - limit: {rate: 100000, burst: 100000, drop: true}"#;
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        stages,
        "",
    );
    let long = "x".repeat(80);
    let lines: Vec<String> = vec![
        r#"{"level":"info","msg":"kept 1"}"#.into(),
        r#"{"level":"debug","msg":"noise"}"#.into(),
        r#"{"level":"info","msg":"health check"}"#.into(),
        r#"{"level":"info","msg":"health check failed"}"#.into(),
        format!(r#"{{"level":"warn","msg":"{long}"}}"#),
        r#"{"level":"error","msg":"kept 2"}"#.into(),
    ];
    append(&log, &lines);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let mut got: Vec<String> = got
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect();
    got.sort();
    let mut want = vec![lines[0].clone(), lines[3].clone(), lines[5].clone()];
    want.sort();
    assert_eq!(got, want);
    // Dropped lines are acknowledged: the position reaches the end of the file.
    let size = std::fs::metadata(&log).unwrap().len();
    wait_until(WAIT, "the position to reach the end of the file", || {
        positions_offset(dir.path(), &log) == Some(size)
    });
    let metrics = ft.http_get("/metrics");
    for (prefix, want) in [
        ("logentry_dropped_lines_total{reason=\"debug_noise\"}", " 1"),
        ("logentry_dropped_lines_total{reason=\"drop_stage\"}", " 2"),
    ] {
        let line = sample(&metrics, prefix).unwrap_or_else(|| panic!("no {prefix}:\n{metrics}"));
        assert!(line.ends_with(want), "{line}");
    }
    let file = log.display().to_string();
    for (level, n) in [("info", 3), ("debug", 1), ("warn", 1), ("error", 1)] {
        let prefix = format!(
            "promtail_custom_lines_total{{filename=\"{file}\",job=\"test\",level=\"{level}\"}}"
        );
        let line = sample(&metrics, &prefix).unwrap_or_else(|| panic!("no {prefix}:\n{metrics}"));
        assert!(line.ends_with(&format!(" {n}")), "{line}");
    }
    assert!(metrics.contains("# HELP promtail_custom_lines_total lines seen"));
    assert!(ft.stop().success());
    // Nothing else arrived.
    assert_eq!(mock.entries().len(), 3);
}
