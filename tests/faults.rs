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
#[path = "faults/crash.rs"]
mod crash;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/repeated.rs"]
mod repeated;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::accounting::{Tally, append_bytes, assert_promtail_can_read, fixed_lines};
use common::config::ConfigFile;
use common::mock_loki::{MockLoki, Reply};
use common::process::{Ferrotail, metric, rss_kib, wait_until};
use rand::{Rng, SeedableRng};

const WAIT: Duration = Duration::from_secs(90);

/// A config with one client and one job tailing `glob`; `client` is added to the client's
/// mapping (4-space indent), `top` at the top level.
fn config(dir: &Path, loki: &MockLoki, glob: &str, client: &str, top: &str) -> PathBuf {
    Cfg::new(dir, loki.url().as_ref(), glob)
        .client(client)
        .top(top)
        .write()
}

/// A scenario's config file, built up from the defaults of [`config`]: positions synced every
/// 100 ms, the client retrying forever (`max_retries: 0`) with backoff from 20 ms to 200 ms,
/// targets synced every 200 ms, one job `faults` tailing the glob.
struct Cfg {
    file: ConfigFile,
    glob: String,
    stages: String,
}

impl Cfg {
    fn new(dir: &Path, url: &str, glob: &str) -> Cfg {
        Cfg {
            file: ConfigFile::new(dir, url)
                .positions_sync("100ms")
                .backoff("20ms", "200ms")
                .max_retries(0)
                .target_sync("200ms"),
            glob: glob.to_owned(),
            stages: String::new(),
        }
    }
    /// Written to `name` in the same directory (a second config for one positions file).
    fn named(mut self, name: &str) -> Cfg {
        self.file = self.file.named(name);
        self
    }
    /// More keys of the client's mapping (unindented).
    fn client(mut self, text: &str) -> Cfg {
        self.file = self.file.client(text);
        self
    }
    /// More top-level sections.
    fn top(mut self, text: &str) -> Cfg {
        self.file = self.file.top(text);
        self
    }
    /// `pipeline_stages` of the job (YAML list items, 6-space indent added).
    fn stages(mut self, text: &str) -> Cfg {
        self.stages = text.to_owned();
        self
    }
    /// `positions.sync_period`.
    fn sync_period(mut self, period: &str) -> Cfg {
        self.file = self.file.positions_sync(period);
        self
    }
    fn write(self) -> PathBuf {
        let stages = if self.stages.is_empty() {
            String::new()
        } else {
            format!("    pipeline_stages:\n{}", indent(&self.stages, 6))
        };
        self.file
            .scrape(&format!(
                r#"  - job_name: faults
{stages}    static_configs:
      - targets: [localhost]
        labels:
          job: faults
          __path__: {glob}
"#,
                glob = self.glob,
            ))
            .write()
    }
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
    .unwrap_or_else(|e| {
        let got: HashSet<Bytes> = mock.entries().into_iter().map(|e| e.line).collect();
        let missing: Vec<&Bytes> = lines.iter().filter(|l| !got.contains(*l)).collect();
        panic!(
            "{e}\n{} lines missing, the first: {:?}\nferrotail stderr:\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            ft.stderr()
        )
    });
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
    let window = mock.lines_of_lost_answers();
    assert!(
        !window.is_empty() && mock.merged() > 0,
        "a batch stored before its answer was lost is sent again ({} merged)",
        mock.merged()
    );
    // Sent again with the same timestamps, so Loki keeps each line once.
    t.assert_exactly_once();
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
    // The late answers come after the retries succeeded; wait until both are in.
    wait_until(WAIT, "the two late answers", || {
        mock.requests().iter().filter(|r| r.late).count() == 2
    });
    assert!(ft.stop().success());
    let t = Tally::of(
        "loki_slower_than_the_client_timeout",
        &lines,
        &mock.entries(),
    );
    t.assert_complete();
    // The slow answers are 204s the client never read: their batches are the window.
    let requests = mock.requests();
    let late: Vec<_> = requests.iter().filter(|r| r.late).collect();
    let retried = requests
        .iter()
        .filter(|r| !r.late)
        .any(|r| r.lines.first() == late[0].lines.first());
    assert!(
        retried,
        "the batch that timed out was sent again: {:?}",
        requests
            .iter()
            .map(|r| (r.status, r.entries, r.lines.first().cloned()))
            .collect::<Vec<_>>()
    );
    let slow: HashSet<Bytes> = late.iter().flat_map(|r| r.lines.iter().cloned()).collect();
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
/// checks that nothing was lost, that every line sent again after a kill lay at or after the
/// position committed on disk at that kill, and that Loki's rule merged every one of them: a
/// restart gives lines it re-sends the timestamps of their first send.
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
    println!(
        "{scenario}: {kills} kills, {} sent again and merged, {} kept twice",
        mock.merged(),
        t.duplicated
    );
    assert_eq!(
        t.duplicated, 0,
        "{scenario}: lines sent again after a kill must carry the timestamps of their first \
         send (so that Loki keeps them once); {} were kept twice",
        t.duplicated
    );
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

/// Rotates `app.log` by rename `gens - 1` times while shipping lags (every push waits and the
/// budget is small), running `after` on each rotated file; every line must arrive exactly once.
async fn rotate_while_behind(scenario: &str, gens: usize, after: impl Fn(&Path)) {
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
    let per_gen = 2000;
    let lines = fixed_lines(scenario, 0..gens * per_gen, 120);
    append_bytes(&log, &lines[..per_gen]);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    for g in 1..gens {
        let rotated = dir.path().join(format!("app.log.{g}"));
        std::fs::rename(&log, &rotated).unwrap();
        append_bytes(&log, &lines[g * per_gen..(g + 1) * per_gen]);
        after(&rotated);
        // Rotate again as soon as ferrotail holds the new generation open (it looks at the
        // path every 250 ms even while it is still reading an older one).
        wait_until(WAIT, &format!("generation {g} held open"), || {
            holds_open(ft.pid(), &log)
        });
    }
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    Tally::of(scenario, &lines, &mock.entries()).assert_exactly_once();
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_faster_than_shipping() {
    rotate_while_behind("rename_rotation_while_behind", 12, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_after_rotate_while_behind() {
    // logrotate with `compress` (no delaycompress): gzip replaces the renamed file by
    // `app.log.<g>.gz` and deletes it.
    rotate_while_behind("compress_after_rotate_while_behind", 5, |rotated| {
        let status = std::process::Command::new("gzip")
            .arg(rotated)
            .status()
            .expect("running gzip");
        assert!(status.success());
        assert!(!rotated.exists(), "gzip removed the rotated file");
    })
    .await;
}

/// A temp dir, `app.log` in it and a config tailing it with small batches and a 64 KB budget,
/// so that reading stops early when shipping lags.
fn behind(mock: &MockLoki) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(
        dir.path(),
        mock,
        &log.display().to_string(),
        "batchsize: 16384",
        "ferrotail:\n  inflight_bytes: 64KB",
    );
    (dir, log, cfg)
}

/// copytruncate while far behind (Loki down, reading stopped at the budget): most of the file
/// is only in the copy when it is truncated. With the copy still there (`app.log.1`), the
/// rest of the old content is read from it; compressed away at once, what only it held is
/// lost, and counted exactly.
async fn copytruncate_while_behind(compress_copy: bool) {
    let mock = MockLoki::start().await;
    mock.set_fallback(Some(Reply::status(503)));
    let (dir, log, cfg) = behind(&mock);
    let copy = dir.path().join("app.log.1");
    let first = fixed_lines("copytrunc", 0..5000, 120);
    let second = fixed_lines("copytrunc", 5000..6000, 120);
    append_bytes(&log, &first);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_requests(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    std::fs::copy(&log, &copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    if compress_copy {
        let gzip = std::process::Command::new("gzip").arg(&copy).status();
        assert!(gzip.expect("running gzip").success() && !copy.exists());
    }
    mock.set_fallback(None);
    // The truncation is found once reading resumes; wait for it before writing more.
    let found = if compress_copy {
        "was truncated; reading it again from the start"
    } else {
        "reading the rest of its old content from the copy"
    };
    ft.wait_until(WAIT, "the truncation to be found", || {
        ft.stderr().contains(found)
    });
    let lost_bytes = metric(&ft, "ferrotail_rotation_lost_bytes_total", &[]).unwrap_or(0.0);
    append_bytes(&log, &second);
    wait_all(&mock, &second, &ft).await;
    let all = [first, second].concat();
    if !compress_copy {
        wait_all(&mock, &all, &ft).await;
    }
    assert!(ft.stop().success());
    let t = Tally::of(
        if compress_copy {
            "copytruncate_while_behind, copy compressed (lost = only in the copy, counted)"
        } else {
            "copytruncate_while_behind, copy kept"
        },
        &all,
        &mock.entries(),
    );
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
    if !compress_copy {
        t.assert_exactly_once();
        assert_eq!(lost_bytes, 0.0, "nothing counted as lost");
        return;
    }
    t.assert_nothing_unexpected();
    assert_eq!(t.duplicated, 0);
    // What is missing is exactly a tail of the first part (never read before the truncation),
    // and the counter says how many bytes that was.
    let missing_bytes: usize = t.lost.iter().map(|l| l.len() + 1).sum();
    assert!(!t.lost.is_empty(), "the scenario must truncate unread data");
    assert_eq!(
        lost_bytes as usize, missing_bytes,
        "ferrotail_rotation_lost_bytes_total counts the bytes lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_while_behind_reads_the_rest_from_the_copy() {
    copytruncate_while_behind(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_while_behind_counts_what_only_a_compressed_copy_holds() {
    copytruncate_while_behind(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_deleted_while_read() {
    let mock = MockLoki::start().await;
    mock.set_delay(Some(Duration::from_millis(20)));
    let (dir, log, cfg) = behind(&mock);
    let lines = fixed_lines("deleted", 0..10_000, 120);
    append_bytes(&log, &lines);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    std::fs::remove_file(&log).unwrap();
    assert!(
        mock.entries().len() < lines.len(),
        "deleted while still being read"
    );
    wait_all(&mock, &lines, &ft).await;
    // Once read to its end it is closed and its position forgotten.
    wait_until(WAIT, "the deleted file to be closed", || {
        !holds_open_deleted(ft.pid(), &log)
    });
    assert!(ft.stop().success());
    Tally::of("file_deleted_while_read", &lines, &mock.entries()).assert_exactly_once();
}

/// How a late-writes scenario rotates.
#[derive(Clone, Copy)]
enum LateWrites {
    /// The new file is created at once, and the late lines written once its lines arrived.
    AfterTheNewFile,
    /// The path stays empty for a while (three glob evaluations), then the late lines are
    /// written and the new file is created.
    WhileThePathIsEmpty,
}

/// logrotate renames, and the service reopens only on its `postrotate` signal: until then its
/// lines still go through the old descriptor into the rotated file. Only the grace period in
/// which a rotated generation is still read (ROTATE_WAIT, 5 s) can ship them: written once
/// ferrotail has moved on to the new file, or once the glob has been evaluated with the path
/// missing (which used to stop the reader at once).
async fn late_writes_after_a_rename(scenario: &str, how: LateWrites) {
    use std::io::Write as _;
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let glob = dir.path().join("*.log");
    let cfg = config(dir.path(), &mock, &glob.display().to_string(), "", "");
    let before = fixed_lines("before-rotation", 0..2000, 120);
    let late = fixed_lines("late-write", 0..500, 120);
    let after = fixed_lines("new-file", 0..2000, 120);
    let mut service = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let write = |f: &mut std::fs::File, lines: &[Bytes]| {
        let text: Vec<u8> = lines
            .iter()
            .flat_map(|l| [&l[..], b"\n"].concat())
            .collect();
        f.write_all(&text).unwrap();
    };
    write(&mut service, &before);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &before, &ft).await;
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    match how {
        LateWrites::AfterTheNewFile => {
            append_bytes(&log, &after);
            wait_all(&mock, &after, &ft).await;
            write(&mut service, &late);
        }
        LateWrites::WhileThePathIsEmpty => {
            // Part of the scenario, not a wait for an event: the path stays empty across
            // three evaluations of the glob (`target_config.sync_period: 200ms`).
            tokio::time::sleep(Duration::from_millis(600)).await;
            write(&mut service, &late);
            append_bytes(&log, &after);
        }
    }
    drop(service);
    let all: Vec<Bytes> = [before, late, after].concat();
    wait_all(&mock, &all, &ft).await;
    assert!(ft.stop().success());
    Tally::of(scenario, &all, &mock.entries()).assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_through_the_old_descriptor_after_a_rename_are_shipped() {
    late_writes_after_a_rename("late_writes_after_rename", LateWrites::AfterTheNewFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_through_the_old_descriptor_while_the_path_is_empty_are_shipped() {
    late_writes_after_a_rename(
        "late_writes_while_the_path_is_empty",
        LateWrites::WhileThePathIsEmpty,
    )
    .await;
}

/// Whether process `pid` still has `path` open after it was deleted.
fn holds_open_deleted(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let deleted = format!("{} (deleted)", path.display());
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == deleted.as_str())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_to_a_smaller_size_then_grown() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "");
    let before = fixed_lines("trunc", 0..1000, 120);
    let after = fixed_lines("trunc", 1000..1500, 120);
    append_bytes(&log, &before);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &before, &ft).await;
    // Keep the first 100 lines, cut the rest.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(100 * 121)
        .unwrap();
    // Like Promtail, a file found shorter is read again from the start: the kept 100 lines
    // come again. Wait for them before growing the file past its old size.
    mock.wait_for_entries(1100, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    append_bytes(&log, &after);
    wait_all(&mock, &after, &ft).await;
    assert!(ft.stop().success());
    let all = [before.clone(), after].concat();
    let t = Tally::of(
        "truncated_to_a_smaller_size_then_grown",
        &all,
        &mock.entries(),
    );
    t.assert_complete();
    let kept: HashSet<Bytes> = before[..100].iter().cloned().collect();
    assert_eq!(t.duplicated_lines(), kept, "only the kept lines come twice");
    assert_eq!(t.duplicated, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_removed_and_recreated() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let cfg = config(
        dir.path(),
        &mock,
        &logs.join("*.log").display().to_string(),
        "",
        "",
    );
    let first = fixed_lines("dir-a", 0..500, 120);
    let second = fixed_lines("dir-b", 0..500, 120);
    append_bytes(&logs.join("a.log"), &first);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(&mock, &first, &ft).await;
    std::fs::remove_dir_all(&logs).unwrap();
    wait_until(WAIT, "a.log to be let go", || {
        !holds_open_deleted(ft.pid(), &logs.join("a.log"))
    });
    std::fs::create_dir(&logs).unwrap();
    // Same name as before: a new file, read from its start.
    append_bytes(&logs.join("a.log"), &second);
    wait_all(&mock, &second, &ft).await;
    assert!(ft.stop().success());
    Tally::of(
        "directory_removed_and_recreated",
        &[first, second].concat(),
        &mock.entries(),
    )
    .assert_exactly_once();
}

/// Ships `lines` while positions cannot be written (`break_positions`), checks that the
/// daemon says so and keeps shipping, then repairs it (`repair`) and checks that the position
/// is written again.
async fn positions_unwritable(
    scenario: &str,
    state: &Path,
    break_positions: impl FnOnce(),
    repair: impl FnOnce(),
) {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let pos = state.join("positions.yaml");
    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "")
        .to_str()
        .unwrap()
        .to_owned();
    // Point the positions at `state`.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("filename: {}", dir.path().join("positions.yaml").display()),
        &format!("filename: {}", pos.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let first = fixed_lines("pos-a", 0..500, 120);
    let second = fixed_lines("pos-b", 0..500, 120);
    append_bytes(&log, &first);
    let ft = Ferrotail::start(dir.path(), Path::new(&cfg), &[]);
    wait_all(&mock, &first, &ft).await;
    let size = std::fs::metadata(&log).unwrap().len().to_string();
    wait_until(WAIT, "the first position to be written", || {
        std::fs::read_to_string(&pos).is_ok_and(|t| t.contains(&size))
    });
    break_positions();
    append_bytes(&log, &second);
    wait_all(&mock, &second, &ft).await;
    wait_until(WAIT, "positions write errors to be counted", || {
        metric(&ft, "ferrotail_positions_write_errors_total", &[]).is_some_and(|v| v > 0.0)
    });
    wait_until(WAIT, "the error to be logged", || {
        ft.stderr().contains("Error writing positions file")
    });
    repair();
    let size = std::fs::metadata(&log).unwrap().len().to_string();
    assert!(
        !std::fs::read_to_string(&pos).is_ok_and(|t| t.contains(&size)),
        "the position after the second part cannot have been written while broken"
    );
    wait_until(WAIT, "the position to be written again", || {
        std::fs::read_to_string(&pos).is_ok_and(|t| t.contains(&size))
    });
    let stderr = ft.stderr_path.clone();
    assert!(
        ft.stop().success(),
        "{}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
    Tally::of(scenario, &[first, second].concat(), &mock.entries()).assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_file_unwritable_keeps_shipping_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (s1, s2) = (state.clone(), state.clone());
    positions_unwritable(
        "positions_file_unwritable",
        &state,
        // A regular file where the directory was: every write fails (ENOTDIR), even as root.
        move || {
            // Renamed, not removed: ferrotail may be writing a temp file in it right now.
            std::fs::rename(&s1, s1.with_extension("old")).unwrap();
            std::fs::write(&s1, b"not a directory").unwrap();
        },
        move || {
            std::fs::remove_file(&s2).unwrap();
            std::fs::create_dir(&s2).unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: needs mount(2) for a tmpfs; run with --include-ignored"]
async fn positions_on_a_full_disk_keeps_shipping_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("tiny");
    std::fs::create_dir(&state).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&state)
        .output()
        .expect("running mount");
    if !mount.status.success() {
        // Without CAP_SYS_ADMIN there is no small disk to fill; the unwritable-directory
        // scenario above still covers the write-error path. Say so loudly in the output.
        println!(
            "SKIPPED positions_on_a_full_disk: cannot mount a tmpfs here: {}",
            String::from_utf8_lossy(&mount.stderr).trim()
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(state.clone());
    let filler = state.join("filler");
    let f2 = filler.clone();
    positions_unwritable(
        "positions_on_a_full_disk",
        &state,
        move || {
            // Fill the tmpfs to the last byte: the next positions write gets ENOSPC.
            use std::io::Write;
            let mut f = std::fs::File::create(&filler).unwrap();
            let block = vec![b'x'; 4096];
            while f.write_all(&block).is_ok() {}
            let _ = f.write_all(b"x");
            let _ = f.sync_all();
        },
        move || std::fs::remove_file(&f2).unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_files_in_one_glob() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("many");
    std::fs::create_dir(&logs).unwrap();
    let n = 10_000;
    let lines = fixed_lines("many", 0..2 * n, 60);
    for i in 0..n {
        append_bytes(&logs.join(format!("f{i:05}.log")), &lines[2 * i..2 * i + 1]);
    }
    let cfg = config(
        dir.path(),
        &mock,
        &logs.join("*.log").display().to_string(),
        "",
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    wait_all(
        &mock,
        &lines.iter().step_by(2).cloned().collect::<Vec<_>>(),
        &ft,
    )
    .await;
    // Every file grows once more while all of them are tailed.
    for i in 0..n {
        append_bytes(
            &logs.join(format!("f{i:05}.log")),
            &lines[2 * i + 1..2 * i + 2],
        );
    }
    wait_all(&mock, &lines, &ft).await;
    let (peak, _) = rss_kib(ft.pid());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", ft.pid()))
        .unwrap()
        .count();
    assert!(ft.stop().success());
    println!("10,000 files: peak RSS {peak} KiB, {fds} descriptors open");
    Tally::of("ten_thousand_files_in_one_glob", &lines, &mock.entries()).assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_file_is_shipped_line_by_line() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("blob.log");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    let mut data = vec![0u8; 2 << 20];
    rng.fill(&mut data[..]);
    data.push(b'\n');
    std::fs::write(&log, &data).unwrap();
    // What Loki must get: every `\n`-terminated piece (a `\r` before it kept), none empty
    // being special, each cut to the 256 KiB default cap.
    let expected: Vec<Bytes> = data
        .split(|b| *b == b'\n')
        .take(data.split(|b| *b == b'\n').count() - 1)
        .map(|l| Bytes::copy_from_slice(&l[..l.len().min(256 << 10)]))
        .collect();
    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(expected.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    let lines: Vec<Bytes> = got.iter().map(|e| e.line.clone()).collect();
    assert_eq!(lines.len(), expected.len());
    assert!(
        lines == expected,
        "binary lines shipped byte for byte, in order"
    );
    println!(
        "FAULT-TALLY binary_file\twritten={}\tdelivered={}\tduplicated=0\tlost=0\tunexpected=0",
        expected.len(),
        lines.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: writes 200 MB; run with --include-ignored"]
async fn one_200_mb_line_is_capped_in_bounded_memory() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("huge.log");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        f.write_all(b"before\n").unwrap();
        let chunk = vec![b'z'; 1 << 20];
        for _ in 0..200 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\nafter\n").unwrap();
    }
    // The baseline: the same binary idle, tailing a small file (a debug binary's own code
    // pages are most of its RSS, and they grow with every feature).
    let idle_dir = tempfile::tempdir().unwrap();
    let small = idle_dir.path().join("small.log");
    std::fs::write(&small, "before\nafter\n").unwrap();
    let idle_mock = MockLoki::start().await;
    let idle_cfg = config(
        idle_dir.path(),
        &idle_mock,
        &small.display().to_string(),
        "",
        "",
    );
    let idle = Ferrotail::start(idle_dir.path(), &idle_cfg, &[]);
    idle_mock
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", idle.stderr()));
    let (baseline, _) = rss_kib(idle.pid());
    assert!(idle.stop().success());

    let cfg = config(dir.path(), &mock, &log.display().to_string(), "", "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let (peak, _) = rss_kib(ft.pid());
    let long = metric(&ft, "ferrotail_long_lines_total", &["action=\"truncated\""]);
    assert!(ft.stop().success());
    let lens: Vec<usize> = got.iter().map(|e| e.line.len()).collect();
    assert_eq!(lens, vec![6, 256 << 10, 5]);
    assert_eq!(long, Some(1.0), "the cut is counted");
    println!("200 MB line: peak RSS {peak} KiB (idle: {baseline} KiB)");
    assert!(
        peak < baseline + 16 * 1024,
        "peak RSS {peak} KiB for a 200 MB line, idle {baseline} KiB"
    );
}

/// A valid config for [`every_bad_value_is_refused_with_a_message_naming_it`].
const GOOD_CONFIG: &str = r#"server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  grpc_listen_port: 0
  log_level: info
positions:
  filename: /tmp/badcfg/pos.yaml
  sync_period: 10s
clients:
  - url: http://127.0.0.1:1/loki/api/v1/push
    batchwait: 1s
    batchsize: 1048576
    timeout: 10s
    tenant_id: t
    backoff_config:
      min_period: 500ms
      max_period: 5m
      max_retries: 10
    external_labels:
      host: a
target_config:
  sync_period: 10s
limits_config:
  max_line_size: 0
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [localhost]
        labels:
          job: app
          __path__: /tmp/badcfg/*.log
    pipeline_stages:
      - json:
          expressions: {level: level}
      - labels:
          level:
"#;

/// Each case breaks one key of [`GOOD_CONFIG`] (replacing the first occurrence of the second
/// field by the third); ferrotail must exit 1 with a message that names it (the fourth).
#[test]
fn every_bad_value_is_refused_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = GOOD_CONFIG.replace("/tmp/badcfg", &dir.path().display().to_string());
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "server.http_listen_port",
            "http_listen_port: 0",
            "http_listen_port: eighty",
            "server.http_listen_port",
        ),
        (
            "server.http_listen_port range",
            "http_listen_port: 0",
            "http_listen_port: 70000",
            "server.http_listen_port",
        ),
        (
            "server.log_level",
            "log_level: info",
            "log_level: loud",
            "server.log_level",
        ),
        (
            "server.http_listen_address",
            "http_listen_address: 127.0.0.1",
            "http_listen_address: not-an-ip",
            "server.http_listen_address",
        ),
        (
            "positions.sync_period",
            "sync_period: 10s\nclients",
            "sync_period: soon\nclients",
            "positions.sync_period",
        ),
        (
            "positions.filename empty",
            "filename: /tmp/badcfg/pos.yaml",
            "filename: ''",
            "positions.filename",
        ),
        (
            "clients.url",
            "url: http://127.0.0.1:1/loki/api/v1/push",
            "url: ftp://x/y",
            "clients[0].url",
        ),
        (
            "clients.batchwait",
            "batchwait: 1s",
            "batchwait: -3",
            "clients[0].batchwait",
        ),
        (
            "clients.batchsize",
            "batchsize: 1048576",
            "batchsize: huge",
            "clients[0].batchsize",
        ),
        (
            "clients.timeout",
            "timeout: 10s",
            "timeout: 10 seconds",
            "clients[0].timeout",
        ),
        (
            "backoff min_period",
            "min_period: 500ms",
            "min_period: 5x",
            "clients[0].backoff_config.min_period",
        ),
        (
            "backoff max_retries",
            "max_retries: 10",
            "max_retries: many",
            "clients[0].backoff_config.max_retries",
        ),
        (
            "external_labels bad name",
            "host: a",
            "0host: a",
            "clients[0].external_labels",
        ),
        (
            "target_config.sync_period",
            "sync_period: 10s\nlimits",
            "sync_period: often\nlimits",
            "target_config.sync_period",
        ),
        (
            "limits max_line_size",
            "max_line_size: 0",
            "max_line_size: big",
            "limits_config.max_line_size",
        ),
        (
            "static_configs labels",
            "job: app",
            "job: [1, 2]",
            "scrape_configs[0].static_configs[0].labels",
        ),
        (
            "stage unknown",
            "      - json:\n",
            "      - jsn:\n",
            "scrape_configs[0].pipeline_stages[0]: Unknown stage type: jsn",
        ),
        (
            "json expressions",
            "expressions: {level: level}",
            "expressions: {level: 'a[['}",
            "scrape_configs[0].pipeline_stages[0].json",
        ),
        (
            "labels bad name",
            "          level:\n",
            "          0level:\n",
            "scrape_configs[0].pipeline_stages[1].labels",
        ),
        (
            "regex bad",
            "      - json:\n          expressions: {level: level}\n",
            "      - regex:\n          expression: '(?P<x'\n",
            "scrape_configs[0].pipeline_stages[0].regex",
        ),
        (
            "timestamp bad format",
            "      - json:\n          expressions: {level: level}\n",
            "      - timestamp:\n          source: t\n          format: RFC3339\n          location: Mars/Olympus\n",
            "scrape_configs[0].pipeline_stages[0].timestamp",
        ),
        (
            "template bad",
            "      - json:\n          expressions: {level: level}\n",
            "      - template:\n          source: x\n          template: '{{ nope .x }}'\n",
            "scrape_configs[0].pipeline_stages[0].template",
        ),
        (
            "match bad selector",
            "      - json:\n          expressions: {level: level}\n",
            "      - match:\n          selector: '{app=}'\n          stages: []\n",
            "scrape_configs[0].pipeline_stages[0].match",
        ),
        (
            "ferrotail inflight",
            "limits_config:",
            "ferrotail:\n  inflight_bytes: 0\nlimits_config:",
            "ferrotail.inflight_bytes",
        ),
        (
            "unknown top key",
            "limits_config:",
            "limit_config: {}\nlimits_config:",
            "limit_config",
        ),
        (
            "yaml syntax",
            "scrape_configs:",
            "scrape_configs: [\n",
            "line 27",
        ),
        (
            "tab indent",
            "    batchwait: 1s",
            "\tbatchwait: 1s",
            "line 11",
        ),
    ];
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &good).unwrap();
    let ok = common::process::run_bounded(
        &[&format!("-config.file={}", path.display()), "-check-syntax"],
        WAIT,
    );
    assert_eq!(ok.status.code(), Some(0), "the base config is valid");
    let mut failures = Vec::new();
    for (name, old, new, names) in cases {
        let old = old.replace("/tmp/badcfg", &dir.path().display().to_string());
        assert!(
            good.contains(&old),
            "case {name}: {old:?} not in the base config"
        );
        std::fs::write(&path, good.replacen(&old, new, 1)).unwrap();
        // Stage errors are found when the pipelines are built, after the syntax check, so run
        // for real; every case must exit before tailing anything.
        let out =
            common::process::run_bounded(&[&format!("-config.file={}", path.display())], WAIT);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.code() != Some(1) || !text.contains(names) {
            failures.push(format!(
                "{name}: exit {:?}, wanted a message naming {names:?}:\n{text}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    println!(
        "FAULT-TALLY bad_config_values\tcases={}\trefused_with_a_clear_message={}",
        cases.len(),
        cases.len() - failures.len()
    );
}
