//! End-to-end tests of the `ferrotail` binary against the in-process mock Loki: the path from a
//! Promtail config to entries in Loki, rotation, restarts, crashes, Loki failures and bad input.
//! Every wait is bounded and fails with a message saying what was awaited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::mock_loki::{MockLoki, Reply};
use common::process::{Ferrotail, append, config, positions_offset, run, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const NO_STAGES: &str = "      []";

fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} line {i}")).collect()
}

/// Counts how often each line arrived.
fn counts(mock: &MockLoki) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for e in mock.entries() {
        *m.entry(e.line.to_vec()).or_insert(0) += 1;
    }
    m
}

fn assert_each_exactly_once(mock: &MockLoki, expected: &[String]) {
    let c = counts(mock);
    for l in expected {
        assert_eq!(
            c.get(l.as_bytes()).copied().unwrap_or(0),
            1,
            "line {l:?}: {c:?}"
        );
    }
    assert_eq!(
        mock.entries().len(),
        expected.len(),
        "unexpected extra entries"
    );
}

fn assert_each_at_least_once(mock: &MockLoki, expected: &[String]) {
    let c = counts(mock);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|l| !c.contains_key(l.as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, first: {:?}",
        missing.len(),
        missing.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_become_labelled_entries() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        &[
            r#"{"level":"info","msg":"started","time":"2026-11-20T09:15:02.123456789Z"}"#.into(),
            r#"{"level":"error","msg":"boom","time":"2026-11-20T09:15:03Z"}"#.into(),
        ],
    );
    let stages = r#"      - json:
          expressions: {level: level, msg: msg, ts: time}
      - labels: {level: }
      - timestamp: {source: ts, format: RFC3339Nano}
      - output: {source: msg}"#;
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        stages,
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let file = log.display().to_string();
    let mut got: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.labels.clone(),
                e.timestamp_ns,
                String::from_utf8_lossy(&e.line).into_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                format!(r#"{{filename="{file}", job="test", level="error"}}"#),
                1_795_166_103_000_000_000,
                "boom".to_string()
            ),
            (
                format!(r#"{{filename="{file}", job="test", level="info"}}"#),
                1_795_166_102_123_456_789,
                "started".to_string()
            ),
        ]
    );
    assert!(ft.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_and_copytruncate_lose_and_duplicate_nothing() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let first = lines("before", 0..200);
    append(&log, &first);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(200, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));

    // Rename rotation with lines written to the old file just before, the new one right after.
    let during_old = lines("old-during", 0..50);
    append(&log, &during_old);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    let during_new = lines("new-after", 0..50);
    append(&log, &during_new);
    mock.wait_for_entries(300, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));

    // copytruncate: wait until everything is shipped, copy, truncate, write more.
    std::fs::copy(&log, dir.path().join("app.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    let after_truncate = lines("after-truncate", 0..30);
    append(&log, &after_truncate);
    mock.wait_for_entries(330, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));

    assert!(ft.stop().success());
    let all: Vec<String> = [first, during_old, during_new, after_truncate].concat();
    assert_each_exactly_once(&mock, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_exactly_where_it_stopped() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let first = lines("first", 0..100);
    append(&log, &first);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(100, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(
        positions_offset(dir.path(), &log),
        Some(size),
        "final positions write"
    );

    let second = lines("second", 0..100);
    append(&log, &second);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(200, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    assert_each_exactly_once(&mock, &[first, second].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_delivers_every_line() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let all = lines("payload", 0..20_000);
    append(&log, &all[..10_000]);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    // Kill once some, but not all, have arrived.
    wait_until(WAIT, "first entries", || !mock.entries().is_empty());
    append(&log, &all[10_000..]);
    ft.kill9();
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = counts(&mock);
        if all.iter().all(|l| c.contains_key(l.as_bytes())) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lines lost after kill -9:\n{}",
            ft.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ft.stop().success());
    assert_each_at_least_once(&mock, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtail_positions_file_is_picked_up() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let old = lines("already-shipped-by-promtail", 0..10);
    append(&log, &old);
    let offset = std::fs::metadata(&log).unwrap().len();
    // What Promtail wrote: explicit key form is what yaml.v2 uses for long keys; use it here.
    std::fs::write(
        dir.path().join("positions.yaml"),
        format!("positions:\n  ? {}\n  : \"{offset}\"\n", log.display()),
    )
    .unwrap();
    let new = lines("new", 0..10);
    append(&log, &new);
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(10, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    assert_each_exactly_once(&mock, &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_503_for_a_while_loses_nothing() {
    let mock = MockLoki::start().await;
    mock.script((0..5).map(|_| Reply::with_body(503, "ingester unavailable")));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let all = lines("x", 0..500);
    append(&log, &all);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(500, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    assert_each_exactly_once(&mock, &all);
    assert!(mock.requests().len() >= 6, "the 503s were answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_429_with_retry_after_is_retried() {
    let mock = MockLoki::start().await;
    mock.script([Reply::with_retry_after(429, "1")]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    // Retry-After is honoured up to backoff_config.max_period: raise it above 1s here.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_period: 200ms", "max_period: 5s");
    std::fs::write(&cfg, text).unwrap();
    let all = lines("y", 0..20);
    append(&log, &all);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(20, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let reqs = mock.requests();
    assert!(reqs.len() >= 2, "429 then a retry");
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(900),
        "the retry waited for Retry-After: 1"
    );
    assert!(ft.stop().success());
    assert_each_exactly_once(&mock, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_400_drops_the_batch_and_counts_it() {
    let mock = MockLoki::start().await;
    mock.script([Reply::with_body(
        400,
        "entry for stream '{job=\"test\"}' has timestamp too old",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    append(&log, &lines("rejected", 0..5));
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_until(WAIT, "the rejected request", || !mock.requests().is_empty());
    // The rejected batch is acknowledged (dropped on purpose): its offset gets committed.
    let size = std::fs::metadata(&log).unwrap().len();
    wait_until(WAIT, "the position to move past the dropped batch", || {
        positions_offset(dir.path(), &log) == Some(size)
    });
    let later = lines("accepted", 0..5);
    append(&log, &later);
    mock.wait_for_entries(5, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let stderr = ft.stderr();
    assert!(
        stderr.contains("timestamp too old"),
        "Loki's message is logged:\n{stderr}"
    );
    let metrics = ft.http_get("/metrics");
    let dropped = metrics
        .lines()
        .find(|l| {
            l.starts_with("promtail_dropped_entries_total{")
                && l.contains("reason=\"ingester_error\"")
        })
        .unwrap_or_else(|| panic!("no ingester_error drop series:\n{metrics}"));
    assert!(
        dropped.ends_with(" 5"),
        "5 entries dropped and counted: {dropped}"
    );
    assert!(ft.stop().success());
    assert_each_exactly_once(&mock, &later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_line_without_newline_is_capped_in_bounded_memory() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&log).unwrap();
        f.write_all(b"small before\n").unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\nsmall after\n").unwrap();
    }
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    // The baseline: the same binary idle on a small file (a debug binary's own code pages are
    // most of its RSS, and they grow with every feature).
    let idle_dir = tempfile::tempdir().unwrap();
    let small = idle_dir.path().join("small.log");
    std::fs::write(&small, "small before\nsmall after\n").unwrap();
    let idle_mock = MockLoki::start().await;
    let idle_cfg = config(
        idle_dir.path(),
        idle_mock.url().as_str(),
        &small.display().to_string(),
        NO_STAGES,
        "",
    );
    let idle = Ferrotail::start(idle_dir.path(), &idle_cfg, &[]);
    idle_mock
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", idle.stderr()));
    let (baseline, _) = common::process::rss_kib(idle.pid());
    assert!(idle.stop().success());

    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let lens: Vec<usize> = got.iter().map(|e| e.line.len()).collect();
    assert_eq!(
        lens,
        vec![12, 256 * 1024, 11],
        "default cap is 256 KiB, truncated"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", ft.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kb < baseline + 16 * 1024,
        "peak RSS {hwm_kb} KiB for a 50 MB line, idle {baseline} KiB"
    );
    assert!(ft.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_shipped_as_bytes() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bin.log");
    std::fs::write(&log, b"ok\n\xff\xfe bad \xc3\x28 bytes\r\n").unwrap();
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        NO_STAGES,
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let lines: Vec<&[u8]> = got.iter().map(|e| &e.line[..]).collect();
    assert_eq!(
        lines,
        vec![&b"ok"[..], &b"\xff\xfe bad \xc3\x28 bytes\r"[..]]
    );
    assert!(ft.stop().success());
}

#[test]
fn bad_config_exits_1_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\nscrape_configs:\n  - job_name: x\n    static_configs:\n      - lables: {job: x}\n",
    )
    .unwrap();
    let out = run(&[&format!("-config.file={}", cfg.display())]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lables"), "names the key: {text}");
    assert!(text.contains("line 6"), "names the line: {text}");
}

#[test]
fn unsupported_target_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kafka.yaml");
    std::fs::write(
        &cfg,
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\nscrape_configs:\n  - job_name: kafka\n    kafka: {brokers: ['k:9092'], topics: [logs]}\n",
    )
    .unwrap();
    let out = run(&[&format!("-config.file={}", cfg.display())]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("scrape_configs[0].kafka is not supported: ")
            && text.contains("loki.source.kafka"),
        "names the key and what to use instead: {text}"
    );
}

#[test]
fn bundled_configs_all_pass_check_syntax() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let out = run(&[&format!("-config.file={}", p.display()), "-check-syntax"]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            p.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    assert!(n >= 3, "found only {n} configs");
}

#[test]
fn version_and_help_flags() {
    let out = run(&["-version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ferrotail, version"));
    let out = run(&["-help"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "Go flag semantics: -help exits 2"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("-config.file"));
}
