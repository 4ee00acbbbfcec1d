//! End-to-end tests of the buffering stages (`cri`, `multiline`) and the read-line rate limit
//! through the `ferrotail` binary and the in-process mock Loki. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::mock_loki::MockLoki;
use common::process::{Ferrotail, append, config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Starts ferrotail on `log` with `stages` (and top-level `extra` config).
fn start(dir: &Path, mock: &MockLoki, log: &Path, stages: &str, extra: &str) -> Ferrotail {
    let cfg = config(
        dir,
        mock.url().as_str(),
        &log.display().to_string(),
        stages,
        extra,
    );
    Ferrotail::start(dir, &cfg, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_partials_and_multiline_blocks_are_joined() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pod.log");
    append(
        &log,
        &[
            "2026-11-20T09:15:02.000000001Z stdout F [INFO] started".into(),
            "2026-11-20T09:15:03.000000000Z stderr F [ERROR] boom".into(),
            "2026-11-20T09:15:03.000000001Z stderr P java.lang.Exc".into(),
            "2026-11-20T09:15:03.000000002Z stderr F eption: x".into(),
            "2026-11-20T09:15:03.000000003Z stderr F \tat A.b(A.java:1)".into(),
        ],
    );
    let stages = r#"      - cri: {}
      - multiline:
          firstline: '^\['
          max_wait_time: 500ms"#;
    let ft = start(dir.path(), &mock, &log, stages, "");
    let got = mock
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let file = log.display().to_string();
    let mut got: Vec<_> = got
        .iter()
        .map(|e| (e.labels.clone(), e.timestamp_ns, e.line_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                format!(r#"{{filename="{file}", job="test", stream="stderr"}}"#),
                1_795_166_103_000_000_000,
                "[ERROR] boom\njava.lang.Exception: x\n\tat A.b(A.java:1)".to_string()
            ),
            (
                format!(r#"{{filename="{file}", job="test", stream="stdout"}}"#),
                1_795_166_102_000_000_001,
                "[INFO] started".to_string()
            ),
        ]
    );
    assert!(ft.stop().success());
    assert_eq!(mock.entries().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_sends_its_held_block_at_once() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &["START one".into(), "  more".into()]);
    // The block would wait an hour for more lines; releasing the file sends it.
    let stages = r#"      - multiline:
          firstline: '^START'
          max_wait_time: 1h"#;
    let ft = start(dir.path(), &mock, &log, stages, "");
    wait_until(WAIT, "the file is read", || {
        ft.http_get("/metrics")
            .lines()
            .any(|l| l.starts_with("promtail_read_lines_total{") && l.ends_with(" 2"))
    });
    assert!(mock.entries().is_empty(), "the block is held");
    std::fs::remove_file(&log).unwrap();
    let got = mock
        .wait_for_entries(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert_eq!(got[0].line_str(), "START one\n  more");
    assert!(ft.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_rate_drop_keeps_the_burst_and_counts_the_rest() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
    append(&log, &lines);
    let limits = "limits_config:\n  readline_rate_enabled: true\n  readline_rate: 0.001\n  readline_burst: 3\n";
    let ft = start(dir.path(), &mock, &log, "      []", limits);
    mock.wait_for_entries(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    wait_until(WAIT, "7 counted drops", || {
        ft.http_get("/metrics")
            .lines()
            .any(|l| l == r#"logentry_dropped_lines_total{reason="global_rate_limiter_drop"} 7"#)
    });
    let mut got: Vec<String> = mock.entries().iter().map(|e| e.line_str()).collect();
    got.sort();
    assert_eq!(got, ["line 0", "line 1", "line 2"]);
    assert!(ft.stop().success());
}
