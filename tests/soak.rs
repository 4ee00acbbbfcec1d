//! Soak: ferrotail runs for `FERROTAIL_SOAK_SECS` (default 20) against the mock Loki while a
//! writer appends to three files, each rotated by rename every few seconds (logrotate-style,
//! three old generations kept), and Loki fails at random (503, 429, resets before and after
//! storing a batch). At the end: nothing lost, duplicates only from batches whose answer was
//! lost, resident memory and open descriptors flat (start and end figures printed).
//!
//! The hour-long run reported in docs/reliability.md:
//!
//! ```sh
//! FERROTAIL_SOAK_SECS=3600 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Config reloads are not part of it: ferrotail refuses `enable_runtime_reload` (no `/reload`
//! yet), so there is nothing to reload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::accounting::{Tally, append_bytes};
use common::mock_loki::{MockLoki, Reply};
use common::process::{Ferrotail, rss_kib};
use rand::{Rng, SeedableRng};

const FILES: usize = 3;
const LINES_PER_SECOND: u64 = 600;
const ROTATE_EVERY: Duration = Duration::from_secs(4);

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run with --include-ignored (20 s) or FERROTAIL_SOAK_SECS=3600 for the hour"]
async fn soak_rotation_and_random_loki_failures() {
    let secs: u64 = std::env::var("FERROTAIL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("FERROTAIL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    println!("soak: {secs} s, FERROTAIL_FAULT_SEED={seed}");
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let cfg = common::process::config(
        dir.path(),
        mock.url().as_str(),
        &logs.join("*.log").display().to_string(),
        "",
        "ferrotail:\n  inflight_bytes: 4MB",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);

    // The writer: a thread appending numbered lines and rotating each file by rename.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (logs, stop) = (logs.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut written: Vec<Bytes> = Vec::new();
            let started = Instant::now();
            let mut rotations = 0u64;
            let mut last_rotation = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // Catch up to the target rate in small batches.
                let due = started.elapsed().as_millis() as u64 * LINES_PER_SECOND / 1000;
                let mut batch: Vec<Vec<Bytes>> = vec![Vec::new(); FILES];
                while (written.len() as u64) < due {
                    let i = written.len();
                    let line = Bytes::from(format!(
                        "soak-{i:010} file={} level=info msg=\"request served\" bytes={}",
                        i % FILES,
                        i * 7 % 10_000
                    ));
                    batch[i % FILES].push(line.clone());
                    written.push(line);
                }
                for (f, lines) in batch.iter().enumerate() {
                    if !lines.is_empty() {
                        append_bytes(&logs.join(format!("app{f}.log")), lines);
                    }
                }
                if last_rotation.elapsed() >= ROTATE_EVERY {
                    last_rotation = Instant::now();
                    rotations += 1;
                    for f in 0..FILES {
                        let base = logs.join(format!("app{f}.log"));
                        // Keep three old generations, as `rotate 3` would.
                        let _ = std::fs::remove_file(base.with_extension("log.3"));
                        for g in (1..3).rev() {
                            let _ = std::fs::rename(
                                base.with_extension(format!("log.{g}")),
                                base.with_extension(format!("log.{}", g + 1)),
                            );
                        }
                        let _ = std::fs::rename(&base, base.with_extension("log.1"));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (written, rotations)
        })
    };

    // Loki: a new random behaviour every half second.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut samples: Vec<(u64, u64, usize)> = Vec::new(); // (elapsed s, RSS KiB, fds)
    let started = Instant::now();
    let mut next_sample = Instant::now() + Duration::from_secs(5.min(secs / 4).max(1));
    while Instant::now() < deadline {
        let reply = match rng.random_range(0..100) {
            0..12 => Some(Reply::status(503)),
            12..18 => Some(Reply::with_retry_after(429, "1")),
            18..21 => Some(Reply::Reset),
            21..24 => Some(Reply::StoreThenReset),
            _ => None,
        };
        mock.set_fallback(reply);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if Instant::now() >= next_sample {
            let (_, rss) = rss_kib(ft.pid());
            samples.push((started.elapsed().as_secs(), rss, open_fds(ft.pid())));
            next_sample += Duration::from_secs((secs / 20).clamp(1, 60));
        }
    }
    mock.set_fallback(None);
    stop.store(true, Ordering::Relaxed);
    let (written, rotations) = writer.join().unwrap();
    let want: HashSet<&Bytes> = written.iter().collect();
    mock.wait_until(
        Duration::from_secs(300),
        &format!("all {} lines", written.len()),
        |stored| {
            let got: HashSet<&Bytes> = stored.iter().map(|e| &e.line).collect();
            want.iter().all(|l| got.contains(l))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let (peak, end_rss) = rss_kib(ft.pid());
    let end_fds = open_fds(ft.pid());
    assert!(ft.stop().success());

    let t = Tally::of("soak", &written, &mock.entries());
    t.assert_complete();
    t.assert_duplicates_within(&mock.lines_of_lost_answers());

    let (_, start_rss, start_fds) = *samples.first().expect("at least one sample");
    println!(
        "soak: {secs} s, {} lines, {rotations} rotations of {FILES} files, {} requests, \
         {} duplicates; RSS start {start_rss} KiB, end {end_rss} KiB, peak {peak} KiB; \
         fds start {start_fds}, end {end_fds}",
        written.len(),
        mock.requests().len(),
        t.duplicated
    );
    println!("soak samples (s, RSS KiB, fds): {samples:?}");
    assert!(
        end_rss <= start_rss + start_rss / 2 + 8 * 1024,
        "RSS grew from {start_rss} KiB to {end_rss} KiB"
    );
    // Each file may hold a few generations open while it catches up after a failure.
    assert!(
        end_fds <= start_fds + 2 * FILES,
        "descriptors grew from {start_fds} to {end_fds}"
    );
}
