//! Fault injection: the real binary against the mock Loki, each scenario ending with an exact
//! accounting ([`Tally`]) of what was written against what Loki stored: every line at least
//! once, duplicates only where an answer was lost (the in-flight window), nothing invented, and
//! every loss that cannot be avoided counted where an operator sees it.
//!
//! The fast scenarios run in the default `cargo test`; the long ones are `#[ignore]`d and run by
//! the README's full test command (`cargo test -- --include-ignored`), which `.ci/run` uses.
//! `FERROTAIL_FAULT_SEED` changes the seed of the randomised ones (the seed is printed).
//! docs/reliability.md describes each scenario and the figures of the last run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::accounting::{Tally, append_bytes, fixed_lines};
use common::mock_loki::{MockLoki, Reply};
use common::process::{Ferrotail, metric, rss_kib, wait_until};
use rand::{Rng, SeedableRng};

const WAIT: Duration = Duration::from_secs(90);

/// A config with one client and one job tailing `glob`; `client` is added to the client's
/// mapping (4-space indent), `top` at the top level.
fn config(dir: &Path, loki: &MockLoki, glob: &str, client: &str, top: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        r#"server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  grpc_listen_port: 0
positions:
  filename: {pos}
  sync_period: 100ms
clients:
  - url: {url}
    batchwait: 50ms
    backoff_config:
      min_period: 20ms
      max_period: 200ms
      max_retries: 0
{client}
target_config:
  sync_period: 200ms
scrape_configs:
  - job_name: faults
    static_configs:
      - targets: [localhost]
        labels:
          job: faults
          __path__: {glob}
{top}
"#,
        pos = dir.join("positions.yaml").display(),
        url = loki.url(),
        client = indent(client, 4),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

fn seed() -> u64 {
    let seed = std::env::var("FERROTAIL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    println!("FERROTAIL_FAULT_SEED={seed}");
    seed
}

/// Waits until every line of `lines` was stored at least once.
async fn wait_all(mock: &MockLoki, lines: &[Bytes], ft: &Ferrotail) {
    let want: HashSet<&Bytes> = lines.iter().collect();
    mock.wait_until(WAIT, &format!("all {} lines", lines.len()), |stored| {
        let got: HashSet<&Bytes> = stored.iter().map(|e| &e.line).collect();
        want.iter().all(|l| got.contains(l))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nferrotail stderr:\n{}", ft.stderr()));
}

/// The lines of the requests whose entries were stored but whose answer did not say so: the
/// only lines a correct client may send twice.
fn lines_of_lost_answers(mock: &MockLoki) -> HashSet<Bytes> {
    mock.requests()
        .iter()
        .filter(|r| r.stored > 0 && !matches!(r.status, Some(200..=299)))
        .flat_map(|r| r.lines[..r.stored].iter().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_answers_then_success_deliver_exactly_once() {
    let mock = MockLoki::start().await;
    mock.script([
        Reply::status(500),
        Reply::status(502),
        Reply::status(503),
        Reply::status(504),
        Reply::status(429),
        Reply::status(429),
        Reply::with_retry_after(429, "1"),
        Reply::status(429),
        Reply::with_body(500, "internal error"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = fixed_lines("retry", 0..3000, 200);
    append_bytes(&log, &lines);
    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    let statuses: Vec<Option<u16>> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        &statuses[..9],
        &[500, 502, 503, 504, 429, 429, 429, 429, 500].map(Some),
        "every scripted failure was met"
    );
    Tally::of("retryable_answers_then_success", &lines, &mock.entries()).assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_half_written_answers_duplicate_only_those_batches() {
    let mock = MockLoki::start().await;
    mock.script([
        Reply::Reset,
        Reply::StoreThenReset,
        Reply::StoreThenTruncate,
        Reply::Reset,
        Reply::StoreThenReset,
        Reply::StoreThenTruncate,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = fixed_lines("reset", 0..5000, 200);
    append_bytes(&log, &lines);
    // Small batches, so the faults hit different lines.
    let cfg = config(
        dir.path(),
        &mock,
        &log.display().to_string(),
        "batchsize: 65536",
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    let t = Tally::of("resets_and_half_written_answers", &lines, &mock.entries());
    t.assert_complete();
    let window = lines_of_lost_answers(&mock);
    t.assert_duplicates_within(&window);
    assert!(
        t.duplicated > 0,
        "a batch stored before its answer was lost is sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_slower_than_the_client_timeout() {
    let mock = MockLoki::start().await;
    // Two answers arrive well after the client gave up; the mock stores those batches anyway.
    mock.script([
        Reply::After(Duration::from_millis(1500), Box::new(Reply::status(204))),
        Reply::After(Duration::from_millis(1500), Box::new(Reply::status(204))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = fixed_lines("slow", 0..2000, 200);
    append_bytes(&log, &lines);
    let cfg = config(
        dir.path(),
        &mock,
        &log.display().to_string(),
        "timeout: 300ms\nbatchsize: 131072",
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    let t = Tally::of(
        "loki_slower_than_the_client_timeout",
        &lines,
        &mock.entries(),
    );
    t.assert_complete();
    // The slow answers are 204s the client never read: their batches are the window.
    let requests = mock.requests();
    let slow: HashSet<Bytes> = requests[..2]
        .iter()
        .flat_map(|r| r.lines.iter().cloned())
        .collect();
    t.assert_duplicates_within(&slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_accepting_part_of_a_batch_with_400_is_counted_as_dropped() {
    let mock = MockLoki::start().await;
    mock.script([Reply::Partial {
        keep: 10,
        status: 400,
        body: "entry too far behind".to_owned(),
    }]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = fixed_lines("partial", 0..1000, 200);
    append_bytes(&log, &lines);
    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let first = mock
        .wait_for_requests(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()))[0]
        .clone();
    let rejected: HashSet<Bytes> = first.lines[10..].iter().cloned().collect();
    let rest: Vec<Bytes> = lines
        .iter()
        .filter(|l| !first.lines.contains(l))
        .cloned()
        .collect();
    wait_all(&mock, &rest, &ft).await;
    // A 400 is not retried (Promtail's rule); the whole batch is counted as dropped.
    let mut dropped = None;
    wait_until(WAIT, "the dropped-entries counter", || {
        dropped = metric(
            &ft,
            "promtail_dropped_entries_total",
            &["reason=\"ingester_error\""],
        );
        dropped.is_some_and(|v| v > 0.0)
    });
    assert_eq!(
        dropped,
        Some(first.entries as f64),
        "the whole batch counted"
    );
    assert!(ft.stop().success());
    let t = Tally::of(
        "loki_accepting_part_of_a_batch_with_400",
        &lines,
        &mock.entries(),
    );
    t.assert_nothing_unexpected();
    let lost: HashSet<Bytes> = t.lost.iter().cloned().collect();
    assert_eq!(
        lost, rejected,
        "only the rejected part of that batch is missing"
    );
    assert_eq!(t.duplicated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_down_for_a_backlog_larger_than_the_memory_budget() {
    let mock = MockLoki::start().await;
    mock.set_fallback(Some(Reply::status(503)));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // 30 MB of backlog against a 1 MiB budget.
    let lines = fixed_lines("backlog", 0..135_000, 222);
    append_bytes(&log, &lines);
    let budget: f64 = (1u64 << 20) as f64;
    let cfg = config(
        dir.path(),
        &mock,
        &log.display().to_string(),
        "batchsize: 262144",
        "ferrotail:\n  inflight_bytes: 1MB",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_requests(20, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    // Reading has stopped at the budget while Loki refuses everything.
    let mut inflight = None;
    wait_until(WAIT, "the in-flight gauge", || {
        inflight = metric(&ft, "ferrotail_inflight_bytes", &[]);
        inflight.is_some_and(|v| v > 0.0)
    });
    let inflight = inflight.unwrap();
    assert!(
        inflight <= budget,
        "in flight {inflight} bytes over the {budget} budget"
    );
    let (peak_down, _) = rss_kib(ft.pid());
    mock.set_fallback(None);
    wait_all(&mock, &lines, &ft).await;
    let (peak, _) = rss_kib(ft.pid());
    assert!(ft.stop().success());
    println!("peak RSS while Loki was down: {peak_down} KiB; after the backlog: {peak} KiB");
    assert!(
        peak < 60 * 1024,
        "peak RSS {peak} KiB for a 30 MB backlog and a 1 MiB budget"
    );
    Tally::of(
        "loki_down_for_a_backlog_larger_than_the_budget",
        &lines,
        &mock.entries(),
    )
    .assert_exactly_once();
}

/// Kills ferrotail with SIGKILL `kills` times at random points while a writer appends, then
/// checks that nothing was lost and that every line sent again after a kill lay at or after
/// the position committed on disk at that kill.
async fn kill_9_at_random_points(scenario: &str, seed: u64, kills: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    const WIDTH: usize = 120;
    let per_round = 4000;
    let lines = fixed_lines("kill", 0..per_round * (kills + 1), WIDTH);
    let cfg = config(
        dir.path(),
        &mock,
        &log.display().to_string(),
        "batchsize: 32768",
        "ferrotail:\n  inflight_bytes: 256KB",
    );
    let offset_of = |line: &Bytes| -> u64 {
        let i: u64 = std::str::from_utf8(&line[5..13]).unwrap().parse().unwrap();
        i * (WIDTH as u64 + 1)
    };
    // (entries stored before the kill, offset committed on disk at the kill)
    let mut kills_seen: Vec<(usize, u64)> = Vec::new();
    let mut ft = Ferrotail::start(dir.path(), &cfg, &[]);
    for round in 0..kills {
        let chunk = &lines[round * per_round..(round + 1) * per_round];
        // Append in a few pieces, killing at a random number of stored entries.
        let before = mock.entries().len();
        let target = before + rng.random_range(0..per_round);
        for piece in chunk.chunks(per_round / 4) {
            append_bytes(&log, piece);
        }
        mock.wait_until(
            WAIT,
            &format!("{target} entries before kill {round}"),
            |s| s.len() >= target,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
        ft.kill9();
        let stored = mock.entries().len();
        let committed = positions_offset(dir.path(), &log).unwrap_or(0);
        kills_seen.push((stored, committed));
        ft = Ferrotail::start(dir.path(), &cfg, &[]);
    }
    append_bytes(&log, &lines[kills * per_round..]);
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    let entries = mock.entries();
    let t = Tally::of(scenario, &lines, &entries);
    t.assert_complete();
    // Duplicates after kill k: lines stored before it and again after it must lie at or past
    // the committed offset, i.e. in the window that was read but not yet acknowledged on disk.
    for (k, &(stored, committed)) in kills_seen.iter().enumerate() {
        let before: HashSet<&Bytes> = entries[..stored].iter().map(|e| &e.line).collect();
        let end = kills_seen.get(k + 1).map_or(entries.len(), |n| n.0);
        for e in &entries[stored..end] {
            if before.contains(&e.line) {
                assert!(
                    offset_of(&e.line) >= committed,
                    "{scenario}: line at offset {} sent again after kill {k}, but the \
                     committed position was {committed}",
                    offset_of(&e.line)
                );
            }
        }
    }
    println!("{scenario}: {kills} kills, {} duplicates", t.duplicated);
}

/// The committed offset of `file` in the positions file, if any.
fn positions_offset(dir: &Path, file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("positions.yaml")).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let v = doc.get("positions")?.get(file.to_str()?)?;
    v.as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_under_load() {
    kill_9_at_random_points("kill_9_at_random_points", seed(), 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with --include-ignored (the README's full test command)"]
async fn kill_9_at_random_points_many_seeds() {
    let base = seed();
    for s in 0..4 {
        kill_9_at_random_points("kill_9_many_seeds", base.wrapping_add(s), 10).await;
    }
}

/// Whether process `pid` has a descriptor open on the file now at `path`.
fn holds_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_faster_than_shipping() {
    let mock = MockLoki::start().await;
    // Every push waits, so reading runs ahead of shipping and the budget fills.
    mock.set_delay(Some(Duration::from_millis(20)));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        &mock,
        &dir.path().join("*.log").display().to_string(),
        "batchsize: 16384",
        "ferrotail:\n  inflight_bytes: 128KB",
    );
    let gens = 12;
    let per_gen = 2000;
    let lines = fixed_lines("rename", 0..gens * per_gen, 120);
    append_bytes(&log, &lines[..per_gen]);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    for g in 1..gens {
        std::fs::rename(&log, dir.path().join(format!("app.log.{g}"))).unwrap();
        append_bytes(&log, &lines[g * per_gen..(g + 1) * per_gen]);
        // Rotate again as soon as ferrotail holds the new generation open (it looks at the
        // path every 250 ms even while it is still reading an older one).
        wait_until(WAIT, &format!("generation {g} held open"), || {
            holds_open(ft.pid(), &log)
        });
    }
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    Tally::of(
        "rename_rotation_faster_than_shipping",
        &lines,
        &mock.entries(),
    )
    .assert_exactly_once();
}
