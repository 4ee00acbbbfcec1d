//! Scenario 2 of the data-loss issue: rotation under load, `logrotate` with `rotate 1` (the
//! previous `.1` is replaced at every rotation), one or several files at once, by rename or by
//! copytruncate. A rotation that lands while a reader finds its path empty must not make it
//! miss the generation created right after; a truncation between two looks must not be taken
//! for growth, and what the reader had not read yet is read from the copy.

use std::io::Write;

use super::*;

/// One writer per file, like a service with logrotate: writes bursts through its open
/// descriptor, and every `rotate_every` lines deletes `.1`, renames the file to `.1`, writes a
/// few more lines to the old descriptor (the service has not reopened yet), pauses, and goes on
/// in a new file. With `copytruncate`, it copies the file to `.1` and truncates it instead
/// (the service writes in append mode, as copytruncate requires). Returns every line written,
/// per file.
fn rotating_writers(
    dir: &Path,
    files: usize,
    per_file: usize,
    rotate_every: usize,
    copytruncate: bool,
    seed: u64,
) -> Vec<Vec<Bytes>> {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    };
    let handles: Vec<_> = (0..files)
        .map(|f| {
            let path = dir.join(format!("app-{f}.log"));
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (f as u64 * 7919));
                let rotated = PathBuf::from(format!("{}.1", path.display()));
                let mut out = open(&path);
                let mut written = Vec::with_capacity(per_file);
                let mut since_rotation = 0;
                while written.len() < per_file {
                    let burst = rng.random_range(50..400).min(per_file - written.len());
                    let mut buf = Vec::new();
                    for _ in 0..burst {
                        let i = written.len();
                        let line = Bytes::from(format!(
                            "level=warn file={f} seq={i:07} msg=\"connection reset by peer\""
                        ));
                        buf.extend_from_slice(&line);
                        buf.push(b'\n');
                        written.push(line);
                    }
                    out.write_all(&buf).unwrap();
                    since_rotation += burst;
                    if since_rotation >= rotate_every && copytruncate {
                        since_rotation = 0;
                        std::fs::copy(&path, &rotated).unwrap();
                        out.set_len(0).unwrap();
                    } else if since_rotation >= rotate_every {
                        since_rotation = 0;
                        let _ = std::fs::remove_file(&rotated);
                        std::fs::rename(&path, &rotated).unwrap();
                        for _ in 0..rng.random_range(0..20) {
                            let i = written.len();
                            let line = Bytes::from(format!(
                                "level=info file={f} seq={i:07} msg=\"late write to the rotated file\""
                            ));
                            out.write_all(&line).unwrap();
                            out.write_all(b"\n").unwrap();
                            written.push(line);
                        }
                        // The gap between the rename and the new file, where the path is empty.
                        std::thread::sleep(Duration::from_millis(rng.random_range(0..4)));
                        out = open(&path);
                    }
                    // About 20,000 lines/s per file.
                    std::thread::sleep(Duration::from_micros(burst as u64 * 50));
                }
                written
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

async fn rotation_under_load(
    scenario: &str,
    files: usize,
    runs: usize,
    copytruncate: bool,
    seed: u64,
) {
    for run in 0..runs {
        let mock = MockLoki::start().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = Cfg::new(
            dir.path(),
            mock.url().as_str(),
            &dir.path().join("*.log").display().to_string(),
        )
        .write();
        // The files exist and ferrotail tails them before the service writes and rotates, as
        // on a running host: at 20,000 lines/s a generation is renamed after 0.2 s and deleted
        // 0.2 s later, so a start slower than that (a loaded CI machine) would lose one that
        // ferrotail never had a chance to see (4,088 lines once, before this wait).
        for f in 0..files {
            std::fs::File::create(dir.path().join(format!("app-{f}.log"))).unwrap();
        }
        let ft = Ferrotail::start(dir.path(), &cfg, &[]);
        ft.wait_until(WAIT, "every file tailed before the writers start", || {
            metric(&ft, "promtail_files_active_total", &[]) == Some(files as f64)
        });
        let d = dir.path().to_path_buf();
        let run_seed = seed.wrapping_add(run as u64);
        let written = tokio::task::spawn_blocking(move || {
            rotating_writers(&d, files, 40_000, 4_000, copytruncate, run_seed)
        })
        .await
        .unwrap();
        let all: Vec<Bytes> = written.concat();
        wait_all(&mock, &all, &ft).await;
        assert!(ft.stop().success());
        let t = Tally::of(&format!("{scenario} run {run}"), &all, &mock.entries());
        t.assert_exactly_once();
        assert_promtail_can_read(&dir.path().join("positions.yaml"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_under_load_loses_no_generation() {
    rotation_under_load("rename_rotation_under_load_1_file", 1, 1, false, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_under_load_of_two_files() {
    rotation_under_load("rename_rotation_under_load_2_files", 2, 1, false, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with --include-ignored (the README's full test command)"]
async fn rename_rotation_under_load_many_runs() {
    let base = seed();
    rotation_under_load("rename_rotation_under_load_1_file", 1, 20, false, base).await;
    rotation_under_load("rename_rotation_under_load_2_files", 2, 5, false, base).await;
    rotation_under_load("rename_rotation_under_load_5_files", 5, 5, false, base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_under_load_loses_nothing() {
    rotation_under_load("copytruncate_under_load_2_files", 2, 1, true, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with --include-ignored (the README's full test command)"]
async fn copytruncate_under_load_many_runs() {
    let base = seed();
    rotation_under_load("copytruncate_under_load_1_file", 1, 10, true, base).await;
    rotation_under_load("copytruncate_under_load_5_files", 5, 3, true, base).await;
}
