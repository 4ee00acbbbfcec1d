//! `-stdin` through the `ferrotail` binary: lines piped in are shipped through the first
//! scrape config's pipeline with its static labels (or `job="stdin"` and `hostname` without
//! scrape configs), and the process flushes and exits 0 at end of input. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mock_loki::MockLoki;

const WAIT: Duration = Duration::from_secs(60);

fn write_config(dir: &Path, loki: &str, scrape: &str) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  disable: true\npositions:\n  filename: {}\nclients:\n  - url: {loki}\n    batchwait: 50ms\n{scrape}",
            dir.join("positions.yaml").display()
        ),
    )
    .unwrap();
    path
}

/// Runs `ferrotail -stdin` with `input` on its standard input; returns its exit code and
/// stderr once it exits by itself (bounded).
fn run_with_input(config: &Path, input: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrotail"))
        .arg(format!("-config.file={}", config.display()))
        .arg("-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "ferrotail -stdin did not exit within {WAIT:?} after its input closed; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_lines_go_through_the_first_job_and_the_process_exits_at_end_of_input() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        loki.url().as_ref(),
        r#"scrape_configs:
  - job_name: piped
    static_configs:
      - labels: {job: batch, env: prod}
      - labels: {team: payments}
    pipeline_stages:
      - json:
          expressions: {level: level}
      - labels: {level: ""}
  - job_name: ignored
    static_configs:
      - labels: {job: ignored, __path__: /nonexistent/*.log}
"#,
    );
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..3000 {
        let level = if i % 10 == 9 { "error" } else { "info" };
        let line = format!(r#"{{"level":"{level}","msg":"request served","n":{i}}}"#);
        input.push_str(&line);
        input.push_str(if i % 2 == 0 { "\r\n" } else { "\n" });
        if i % 100 == 0 {
            input.push('\n'); // empty lines are skipped
        }
        expected.push((level, line));
    }
    let (code, stderr) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run_with_input(&cfg, input.as_bytes())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    // Exited only after flushing: everything is in Loki already.
    let entries = loki.entries();
    assert_eq!(entries.len(), expected.len(), "{stderr}");
    let mut got: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.labels.clone(), e.line_str()))
        .collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(level, line)| {
            (
                format!(r#"{{env="prod", job="batch", level="{level}", team="payments"}}"#),
                line.clone(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(
        !dir.path().join("positions.yaml").exists(),
        "-stdin must not write positions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_scrape_configs_entries_are_labelled_job_stdin_and_hostname() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref(), "");
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        run_with_input(
            &cfg,
            b"connection reset by peer\nconnection reset by peer\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let entries = loki.entries();
    assert_eq!(entries.len(), 2, "{stderr}");
    for e in &entries {
        assert!(
            e.labels.starts_with("{hostname=\"") && e.labels.ends_with(", job=\"stdin\"}"),
            "{}",
            e.labels
        );
        assert_eq!(e.line_str(), "connection reset by peer");
    }
    assert_ne!(
        entries[0].timestamp_ns, entries[1].timestamp_ns,
        "repeated lines get distinct timestamps, so Loki keeps both"
    );
}
