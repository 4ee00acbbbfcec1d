//! Scenario 1 of the data-loss issue: a file rotated while Loki is unreachable, then
//! `kill -9`, then Loki back and a restart. Whatever of the rotated generation is still on disk
//! must arrive; what is gone must be counted in `ferrotail_rotation_lost_bytes_total`.

use super::*;

/// How the file is rotated.
#[derive(Clone, Copy, Debug)]
enum Rotate {
    /// `mv app.log app.log.1` and a new `app.log` (logrotate's default).
    Rename,
    /// `cp app.log app.log.1` then truncate `app.log` (logrotate `copytruncate`).
    CopyTruncate,
    /// Rename, then gzip `app.log.1` (deleting it) before the restart: the rotated lines are
    /// only in the `.gz`, which ferrotail does not read.
    Compress,
}

/// JSON lines of generation `gen`, as a service writes them: a timestamp each, a handful of
/// messages over and over.
fn json_lines(generation: usize, n: usize) -> Vec<Bytes> {
    const MESSAGES: [&str; 4] = [
        "connection reset by peer",
        "retrying request",
        "request completed",
        "cache miss",
    ];
    (0..n)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"ts":"2026-12-04T05:{:02}:{:02}.{:06}Z","level":"info","msg":"{}","gen":{generation}}}"#,
                generation % 60,
                i / 1000 % 60,
                i % 1000 * 997,
                MESSAGES[i % MESSAGES.len()]
            ))
        })
        .collect()
}

/// A URL where nothing listens (connections are refused).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/loki/api/v1/push")
}

fn read_lines(ft: &Ferrotail, log: &Path) -> f64 {
    metric(
        ft,
        "promtail_read_lines_total",
        &[&format!("path=\"{}\"", log.display())],
    )
    .unwrap_or(0.0)
}

/// Runs the scenario; `saved`: wait until the positions hold the rotated generation before the
/// kill (else the kill comes as soon as the new file is read: what was saved by then may name
/// only the first generation, at the path where it no longer is).
async fn rotate_while_down_then_crash(scenario: &str, rotate: Rotate, saved: bool) {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let rotated = dir.path().join("app.log.1");
    let glob = dir.path().join("*.log").display().to_string();
    let down = Cfg::new(dir.path(), &dead_url(), &glob)
        .named("down.yaml")
        .write();
    let up = Cfg::new(dir.path(), mock.url().as_str(), &glob).write();
    let (first, second) = (json_lines(1, 2000), json_lines(2, 2000));
    append_bytes(&log, &first);
    let ft = Ferrotail::start(dir.path(), &down, &[]);
    ft.wait_until(WAIT, "the first generation read", || {
        read_lines(&ft, &log) >= 2000.0
    });
    // Nothing is acknowledged while Loki is down, but the first generation is written down
    // (offset 0, its identity and fingerprint) soon after it is opened. A kill before that
    // first save leaves nothing to resume from, as with Promtail.
    let sidecar = dir.path().join("positions.yaml.ferrotail");
    ft.wait_until(WAIT, "the first generation in the sidecar", || {
        std::fs::read_to_string(&sidecar).is_ok_and(|t| t.contains("app.log"))
    });
    match rotate {
        Rotate::Rename | Rotate::Compress => std::fs::rename(&log, &rotated).unwrap(),
        Rotate::CopyTruncate => {
            std::fs::copy(&log, &rotated).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .unwrap()
                .set_len(0)
                .unwrap();
        }
    }
    append_bytes(&log, &second);
    // Nothing is acknowledged while Loki is down: every line read holds its bytes of the
    // in-flight budget. (The per-path line counter starts again when a reader of a removed
    // path ends and one of the new file begins, as Promtail's does.)
    let both: usize = [&first, &second]
        .iter()
        .flat_map(|g| g.iter())
        .map(|l| l.len() + 1)
        .sum();
    ft.wait_until(WAIT, "the second generation read", || {
        metric(&ft, "ferrotail_inflight_bytes", &[]).unwrap_or(0.0) >= both as f64
    });
    if let Rotate::Compress = rotate {
        let status = std::process::Command::new("gzip")
            .arg(&rotated)
            .status()
            .expect("running gzip");
        assert!(status.success() && !rotated.exists());
    }
    if saved {
        ft.wait_until(WAIT, "the rotated generation in the sidecar", || {
            std::fs::read_to_string(&sidecar).is_ok_and(|t| t.contains("older: ["))
        });
    }
    ft.kill9();
    assert_eq!(mock.entries().len(), 0, "Loki was unreachable");
    assert_promtail_can_read(&dir.path().join("positions.yaml"));

    let ft = Ferrotail::start(dir.path(), &up, &[]);
    let all = [first.clone(), second.clone()].concat();
    match rotate {
        Rotate::Rename | Rotate::CopyTruncate => {
            wait_all(&mock, &all, &ft).await;
            assert!(ft.stop().success());
            Tally::of(scenario, &all, &mock.entries()).assert_exactly_once();
        }
        Rotate::Compress => {
            wait_all(&mock, &second, &ft).await;
            let first_bytes: usize = first.iter().map(|l| l.len() + 1).sum();
            let mut counted = 0.0;
            ft.wait_until(WAIT, "the gone generation counted", || {
                counted = metric(&ft, "ferrotail_rotation_lost_bytes_total", &[]).unwrap_or(0.0);
                counted > 0.0
            });
            assert!(
                ft.stderr().contains("is gone (deleted, compressed"),
                "a warning names the lost generation:\n{}",
                ft.stderr()
            );
            assert!(ft.stop().success());
            let t = Tally::of(scenario, &all, &mock.entries());
            t.assert_nothing_unexpected();
            assert_eq!(t.duplicated, 0);
            assert_eq!(
                t.lost, first,
                "exactly the compressed generation is missing"
            );
            assert_eq!(counted as usize, first_bytes, "and counted with its bytes");
        }
    }
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_while_loki_is_down_then_kill_9() {
    rotate_while_down_then_crash("rename_while_down_then_kill_9", Rotate::Rename, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_while_loki_is_down_then_kill_9_after_a_save() {
    rotate_while_down_then_crash("rename_while_down_saved_then_kill_9", Rotate::Rename, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_while_loki_is_down_then_kill_9() {
    rotate_while_down_then_crash(
        "copytruncate_while_down_then_kill_9",
        Rotate::CopyTruncate,
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_while_loki_is_down_then_kill_9_after_a_save() {
    rotate_while_down_then_crash(
        "copytruncate_while_down_saved_then_kill_9",
        Rotate::CopyTruncate,
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_while_loki_is_down_then_kill_9_counts_the_loss() {
    rotate_while_down_then_crash(
        "compress_while_down_then_kill_9 (lost = compressed away, counted)",
        Rotate::Compress,
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_while_stopped_is_read_from_where_it_was_left() {
    // Promtail's gap: ferrotail is stopped (cleanly) in the middle of a file, the file is
    // rotated while it is down, and the rest of it is in app.log.1 at the restart.
    let mock = MockLoki::start().await;
    mock.set_delay(Some(Duration::from_millis(30)));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let glob = dir.path().join("*.log").display().to_string();
    let cfg = Cfg::new(dir.path(), mock.url().as_str(), &glob)
        .client("batchsize: 8192")
        .top("ferrotail:\n  inflight_bytes: 64KB")
        .write();
    let (first, second) = (json_lines(1, 3000), json_lines(2, 500));
    append_bytes(&log, &first);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    mock.wait_for_entries(300, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());
    let stored = mock.entries().len();
    assert!(stored < first.len(), "stopped in the middle ({stored})");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append_bytes(&log, &second);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let all = [first, second].concat();
    wait_all(&mock, &all, &ft).await;
    assert!(ft.stop().success());
    Tally::of("rotated_while_stopped", &all, &mock.entries()).assert_exactly_once();
}

/// Scenario 3: a backlog, `kill -9` when Loki holds a third of it and again at two thirds,
/// restarts. Positions are saved soon after each acknowledgement (not only every
/// `sync_period`, here 10 s), so what a kill re-sends is bounded by what could be acknowledged
/// between two saves, whatever the in-flight budget: the requests in flight at the kill and
/// those answered since the last save. With the mock answering each push after 20 ms and a
/// save a few milliseconds after each acknowledgement, usually a batch or two get through per
/// sender. The bound allows `concurrency + 7` full batches per kill (4,328 lines): a loaded CI
/// machine can delay a save by a few pushes (2,210 lines once), while saves every
/// `sync_period` would re-send up to the 40,000 lines between two kills. The re-sent lines
/// carry their first timestamps, so none of them is kept twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_re_sends_only_the_requests_between_two_saves() {
    const WIDTH: usize = 120;
    const BATCH: usize = 64 * 1024;
    const CONCURRENCY: usize = 1;
    let mock = MockLoki::start().await;
    mock.set_delay(Some(Duration::from_millis(20)));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = Cfg::new(dir.path(), mock.url().as_str(), &log.display().to_string())
        .client(&format!("batchsize: {BATCH}"))
        .sync_period("10s")
        .write();
    let lines = fixed_lines("backlog", 0..120_000, WIDTH);
    append_bytes(&log, &lines);
    let bound = (CONCURRENCY + 7) * BATCH / (WIDTH + 1);
    let mut ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let mut kills: Vec<usize> = Vec::new();
    for third in 1..=2 {
        let target = lines.len() * third / 3;
        mock.wait_for_entries(target, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
        ft.kill9();
        // Requests received by the kill; what the restart sends again is counted in requests,
        // since Loki's rule (and the mock's) merges lines re-sent with their first timestamps.
        kills.push(mock.requests().len());
        assert_promtail_can_read(&dir.path().join("positions.yaml"));
        ft = Ferrotail::start(dir.path(), &cfg, &[]);
    }
    wait_all(&mock, &lines, &ft).await;
    assert!(ft.stop().success());
    let entries = mock.entries();
    let t = Tally::of(
        "kill_9_backlog (2 kills, sync_period 10s)",
        &lines,
        &entries,
    );
    t.assert_complete();
    t.assert_nothing_unexpected();
    let requests = mock.requests();
    for (k, &seen) in kills.iter().enumerate() {
        let before: HashSet<&Bytes> = requests[..seen]
            .iter()
            .filter(|r| r.stored > 0)
            .flat_map(|r| &r.lines)
            .collect();
        let end = kills.get(k + 1).copied().unwrap_or(requests.len());
        let again = requests[seen..end]
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|l| before.contains(l))
            .count();
        println!("kill {k}: {again} lines sent again (bound {bound})");
        assert!(
            again <= bound,
            "kill {k} re-sent {again} lines, more than {bound} ({} batches of {BATCH} bytes)",
            CONCURRENCY + 7
        );
    }
    assert_eq!(
        t.duplicated, 0,
        "lines sent again after a kill must carry their first timestamps, so that Loki keeps \
         them once"
    );
    assert_promtail_can_read(&dir.path().join("positions.yaml"));
}
