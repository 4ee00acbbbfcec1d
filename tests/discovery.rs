//! Targets from discovery, end to end through the binary and the mock Loki: `file_sd_configs`
//! files added, changed and removed while lines flow, with `relabel_configs` on the
//! discovered labels. Targets that stay are never read again; a removed target stops and
//! keeps its position; nothing is lost or repeated. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::mock_loki::MockLoki;
use common::process::{Ferrotail, append, metric};

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &Path, loki: &MockLoki) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: 0, grpc_listen_port: 0}}
positions: {{filename: {pos}, sync_period: 100ms}}
clients:
  - url: {url}
    batchwait: 50ms
target_config: {{sync_period: 200ms}}
scrape_configs:
  - job_name: apps
    file_sd_configs:
      - files: [{sd}/*.yaml]
        refresh_interval: 1h
    relabel_configs:
      - source_labels: [__meta_filepath]
        regex: '.*/([^/]+)\.yaml'
        target_label: sd_file
      - source_labels: [tier]
        regex: debug
        action: drop
"#,
        pos = dir.join("positions.yaml").display(),
        url = loki.url(),
        sd = dir.join("targets").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes an SD file atomically (as config management does), listing `logs`.
fn write_sd(dir: &Path, name: &str, groups: &[(&Path, &str, &str)]) {
    let mut text = String::new();
    for (log, app, tier) in groups {
        text.push_str(&format!(
            "- targets: [localhost]\n  labels: {{__path__: '{}', app: {app}, tier: {tier}}}\n",
            log.display()
        ));
    }
    let tmp = dir.join("targets").join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("targets").join(name)).unwrap();
}

fn lines(tag: &str, n: usize) -> Vec<String> {
    // Real logs repeat themselves: two messages, alternating, with a sequence number.
    (0..n)
        .map(|i| {
            let msg = if i % 2 == 0 {
                "connection reset by peer"
            } else {
                "retrying request"
            };
            format!("{tag} {i:03} {msg}")
        })
        .collect()
}

async fn wait_entries(mock: &MockLoki, n: usize, ft: &Ferrotail) {
    mock.wait_for_entries(n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_come_and_go_while_lines_flow() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("targets")).unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let (a, b, dbg) = (
        dir.path().join("logs/a.log"),
        dir.path().join("logs/b.log"),
        dir.path().join("logs/debug.log"),
    );
    let (la, lb) = (lines("a", 40), lines("b", 30));
    append(&a, &la[..10]);
    append(&b, &lb[..10]);
    append(&dbg, &lines("debug", 5));
    write_sd(
        dir.path(),
        "web.yaml",
        &[(&a, "web", "prod"), (&dbg, "web", "debug")],
    );
    let cfg = config(dir.path(), &mock);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);

    // The first file's target, relabeled from the SD file's labels; the debug one dropped.
    wait_entries(&mock, 10, &ft).await;
    let e = &mock.entries()[0];
    assert!(
        e.labels.contains(r#"app="web""#) && e.labels.contains(r#"sd_file="web""#),
        "labels from the SD file and relabeling: {}",
        e.labels
    );
    assert!(!e.labels.contains("__"), "{}", e.labels);

    // /service-discovery shows the discovered labels, the relabeled ones and why the debug
    // target was dropped.
    let sd = ft.http_get("/service-discovery");
    assert!(sd.contains("tier=&quot;debug&quot;"), "{sd}");
    assert!(sd.contains("dropped: dropped"), "{sd}");
    assert!(sd.contains("sd_file=&quot;web&quot;"), "{sd}");

    // A second SD file: its target is added; the first keeps its reader.
    write_sd(dir.path(), "batch.yaml", &[(&b, "batch", "prod")]);
    wait_entries(&mock, 20, &ft).await;
    append(&a, &la[10..20]);
    append(&b, &lb[10..20]);
    wait_entries(&mock, 40, &ft).await;

    // web.yaml goes: a's target is removed, its reader stops after what a.log holds.
    std::fs::remove_file(dir.path().join("targets/web.yaml")).unwrap();
    ft.wait_until(WAIT, "one file tailed", || {
        metric(&ft, "promtail_files_active_total", &[]) == Some(1.0)
    });
    assert_eq!(metric(&ft, "promtail_targets_active_total", &[]), Some(1.0));
    append(&a, &la[20..30]); // no target reads it now
    append(&b, &lb[20..30]);
    wait_entries(&mock, 50, &ft).await;
    let seen: Vec<String> = mock.entries().iter().map(|e| e.line_str()).collect();
    assert!(
        !seen.iter().any(|l| l == &la[20]),
        "a line written after its target was removed was read"
    );

    // It comes back: a.log is read on from where its reader stopped.
    write_sd(dir.path(), "web.yaml", &[(&a, "web", "prod")]);
    append(&a, &la[30..40]);
    wait_entries(&mock, 70, &ft).await;
    assert!(ft.stop().success());

    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in mock.entries() {
        *counts.entry(e.line_str()).or_default() += 1;
    }
    let mut want: Vec<&String> = la.iter().chain(&lb).collect();
    want.sort();
    let mut got: Vec<&String> = counts.keys().collect();
    got.sort();
    assert_eq!(
        got, want,
        "every line of a and b, nothing of the dropped target"
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "no line read twice: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_back_while_its_lines_were_in_flight_is_not_kept_twice() {
    let mock = MockLoki::start().await;
    // Answers come a second late: the target is removed while its lines are in flight.
    mock.set_delay(Some(Duration::from_secs(1)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("targets")).unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let a = dir.path().join("logs/a.log");
    let la = lines("a", 200);
    append(&a, &la[..100]);
    write_sd(dir.path(), "web.yaml", &[(&a, "web", "prod")]);
    let cfg = config(dir.path(), &mock);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    // Read (and so pushed within a batchwait): its answer is a second away.
    let size = std::fs::metadata(&a).unwrap().len() as f64;
    ft.wait_until(WAIT, "a.log read to its end", || {
        metric(&ft, "promtail_read_bytes_total", &["a.log"]) == Some(size)
    });
    std::fs::remove_file(dir.path().join("targets/web.yaml")).unwrap();
    ft.wait_until(WAIT, "the target's reader stopped", || {
        metric(&ft, "promtail_files_active_total", &[]) == Some(0.0)
    });
    // Back at once: the new reader starts where the committed position was, before the lines
    // still in flight, and sends them again with the timestamps of their first send.
    write_sd(dir.path(), "web.yaml", &[(&a, "web", "prod")]);
    append(&a, &la[100..]);
    wait_entries(&mock, 200, &ft).await;
    let ft_log = ft.stderr();
    assert!(ft.stop().success());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in mock.entries() {
        *counts.entry(e.line_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 200, "every line");
    assert!(
        counts.values().all(|n| *n == 1),
        "lines kept twice: the re-sent ones must carry their first timestamps ({} merged)",
        mock.merged()
    );
    assert!(
        mock.merged() > 0,
        "the lines in flight at the removal were sent again (and merged)\n{}",
        ft_log
    );
}
