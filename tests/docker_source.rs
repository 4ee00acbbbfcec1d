//! The Docker source end to end: the `ferrotail` binary reads container logs from a fake
//! Docker engine (Unix socket) and pushes them to the mock Loki — relabeled labels per
//! stream, Docker's timestamps, lines Docker split into 16 KiB messages joined, repeated
//! lines kept apart by their timestamps; the `cursor-<id>` position committed only after
//! acknowledgement and resumed with `since` after a restart (what is sent again carries the
//! same timestamps, so Loki keeps it once); a container that stops and one that starts.
//! Every wait is bounded and says what it waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::ConfigFile;
use common::fake_docker::{ContainerSpec, FakeDocker};
use common::mock_loki::{MockLoki, ReceivedEntry, arrivals, base_time};
use common::process::Ferrotail;
use ferrotail::sources::docker::frames::LogStream;

const WAIT: Duration = Duration::from_secs(60);
const SEC: i64 = 1_000_000_000;
const WEB: &str = "4f1c0a9d2b3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a";
const WORKER: &str = "9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f";

/// One job, `containers`, discovering the fake engine's containers every 200 ms: the name,
/// stream and `app` label as labels, containers labeled `skip=yes` dropped.
fn write_config(dir: &Path, loki: &str, docker: &FakeDocker) -> PathBuf {
    ConfigFile::new(dir, loki)
        .positions_sync("100ms")
        .backoff("20ms", "200ms")
        .scrape(&format!(
            r#"  - job_name: containers
    docker_sd_configs:
      - host: {host}
        refresh_interval: 200ms
    relabel_configs:
      - source_labels: [__meta_docker_container_name]
        regex: '/(.*)'
        target_label: container
      - source_labels: [__meta_docker_container_log_stream]
        target_label: stream
      - source_labels: [__meta_docker_container_label_app]
        target_label: app
      - source_labels: [__meta_docker_container_label_skip]
        regex: 'yes'
        action: drop
"#,
            host = docker.host(),
        ))
        .write()
}

/// What a container wrote: (stream, timestamp, line).
type Written = Vec<(LogStream, i64, String)>;

/// Writes a realistic burst: health checks repeated many times a second, an error every 25
/// lines on stderr, and one 40 KiB line (split by Docker into three messages).
fn burst(docker: &FakeDocker, id: &str, from: i64, n: usize, out: &mut Written) {
    for i in 0..n {
        // 4 ms apart: 250 lines per second share a second (what `since` resumes from).
        let t = from + i as i64 * 4_000_000;
        let (stream, line) = if i % 25 == 24 {
            (
                LogStream::Stderr,
                "level=error msg=\"upstream timed out\"".to_string(),
            )
        } else if i == n / 2 {
            (
                LogStream::Stdout,
                format!("payload {}", "x".repeat(40 * 1024)),
            )
        } else {
            (LogStream::Stdout, "GET /healthz 200 0.4ms".to_string())
        };
        docker.write_line(id, stream, t, &line);
        out.push((stream, t, line));
    }
}

fn cursor(dir: &Path, id: &str) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("positions.yaml")).ok()?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let s = v.get("positions")?.get(format!("cursor-{id}"))?;
    match s {
        serde_yaml::Value::String(s) => s.parse().ok(),
        serde_yaml::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Every written line arrived with its stream's labels and Docker's timestamp.
fn check_arrived(entries: &[ReceivedEntry], written: &Written, container: &str, app: &str) {
    let got = arrivals(entries);
    let labels: HashMap<(i64, String), &str> = entries
        .iter()
        .map(|e| ((e.timestamp_ns, e.line_str()), e.labels.as_str()))
        .collect();
    for (stream, t, line) in written {
        let key = (*t, line.clone());
        assert!(
            got.contains_key(&key),
            "line at {t} ({} bytes) of {container} never arrived",
            line.len()
        );
        let want = format!(
            r#"{{app="{app}", container="{container}", stream="{}"}}"#,
            stream.as_str()
        );
        assert_eq!(labels[&key], want, "labels of the line at {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_are_shipped_and_resumed_from_the_acknowledged_cursor() {
    let loki = MockLoki::start().await;
    let docker = FakeDocker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &docker);
    let t0 = base_time();

    docker.run(ContainerSpec::new(WEB, "web", "172.17.0.2").label("app", "shop"));
    let mut written = Written::new();
    // History written before ferrotail starts: read from the start (no position yet).
    burst(&docker, WEB, t0, 600, &mut written);

    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let entries = loki
        .wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    check_arrived(&entries, &written, "web", "shop");

    // Lines written while it follows.
    burst(&docker, WEB, t0 + 10 * SEC, 300, &mut written);
    let entries = loki
        .wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    check_arrived(&entries, &written, "web", "shop");
    assert!(
        arrivals(&entries).values().all(|&n| n == 1),
        "a line arrived twice before any restart"
    );

    // The cursor is the second of the last acknowledged line.
    let last_second = written.last().unwrap().1.div_euclid(SEC);
    ft.wait_until(WAIT, "the cursor to reach the last line's second", || {
        cursor(dir.path(), WEB) == Some(last_second)
    });
    assert_eq!(ft.stop().code(), Some(0));
    assert_eq!(cursor(dir.path(), WEB), Some(last_second));

    // Written while ferrotail is down; the restart asks Docker for `since=<cursor>`.
    let before = written.len();
    burst(&docker, WEB, t0 + 20 * SEC, 200, &mut written);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    docker
        .wait_for_request("the restart's log request", WAIT, |r| {
            r.route.ends_with("/logs") && r.query.get("since") == Some(&last_second.to_string())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let keys: Vec<(i64, String)> = written.iter().map(|(_, t, l)| (*t, l.clone())).collect();
    loki.wait_until(WAIT, "every line of the outage", |e| {
        let got = arrivals(e);
        keys[before..].iter().all(|k| got.contains_key(k))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let entries = loki.entries();
    check_arrived(&entries, &written, "web", "shop");
    // Sent again: only the lines of the cursor's second, with their first timestamps (Loki
    // keeps one entry per stream, timestamp and line).
    for ((t, line), n) in arrivals(&entries) {
        if n > 1 {
            assert_eq!(
                t.div_euclid(SEC),
                last_second,
                "{line:?} at {t} sent {n} times but is not of the resumed second"
            );
            assert_eq!(n, 2, "{line:?} at {t} sent {n} times");
        }
    }
    assert_eq!(ft.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_come_and_go_and_dropped_ones_are_not_read() {
    let loki = MockLoki::start().await;
    let docker = FakeDocker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &docker);
    let t0 = base_time();

    docker.run(ContainerSpec::new(WEB, "web", "172.17.0.2").label("app", "shop"));
    docker.run(
        ContainerSpec::new(WORKER, "sidecar", "172.17.0.3")
            .label("app", "mesh")
            .label("skip", "yes"),
    );
    let mut web = Written::new();
    burst(&docker, WEB, t0, 100, &mut web);
    let mut skipped = Written::new();
    burst(&docker, WORKER, t0, 50, &mut skipped);

    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    loki.wait_for_entries(web.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));

    // The web container stops (its stream ends); a new one starts with the same name.
    docker.stop(WEB);
    let second = "b".repeat(64);
    docker.run(ContainerSpec::new(&second, "web", "172.17.0.4").label("app", "shop"));
    let mut restarted = Written::new();
    burst(&docker, &second, t0 + 30 * SEC, 120, &mut restarted);
    let all: Vec<(LogStream, i64, String)> = web.iter().chain(&restarted).cloned().collect();
    let keys: Vec<(i64, String)> = all.iter().map(|(_, t, l)| (*t, l.clone())).collect();
    loki.wait_until(WAIT, "the new container's lines", |e| {
        let got = arrivals(e);
        keys.iter().all(|k| got.contains_key(k))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let entries = loki.entries();
    check_arrived(&entries, &all, "web", "shop");
    // The pages list the containers: read, or dropped by the rules.
    let targets = ft.http_get("/targets");
    assert!(
        targets.contains(&format!("docker container {}", &second[..12])),
        "{targets}"
    );
    let sd = ft.http_get("/service-discovery");
    assert!(
        sd.contains(WORKER) && sd.contains("dropped: dropped"),
        "{sd}"
    );
    assert!(
        entries.iter().all(|e| !e.labels.contains("mesh")),
        "the container dropped by relabeling was shipped"
    );
    assert_eq!(ft.stop().code(), Some(0));
    let positions: BTreeMap<String, String> = {
        let text = std::fs::read_to_string(dir.path().join("positions.yaml")).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        serde_yaml::from_value(v["positions"].clone()).unwrap()
    };
    assert!(
        positions.contains_key(&format!("cursor-{WEB}")),
        "{positions:?}"
    );
    assert!(
        positions.contains_key(&format!("cursor-{second}")),
        "{positions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_refused_by_loki_is_committed_and_a_crash_loses_nothing() {
    let loki = MockLoki::start().await;
    loki.set_fallback(Some(common::mock_loki::Reply::status(503)));
    let docker = FakeDocker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &docker);
    let t0 = base_time();
    docker.run(ContainerSpec::new(WEB, "web", "172.17.0.2").label("app", "shop"));
    let mut written = Written::new();
    burst(&docker, WEB, t0, 400, &mut written);

    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    // Loki refuses every push, several times over: nothing may be committed.
    loki.wait_for_requests(5, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert_eq!(
        cursor(dir.path(), WEB),
        None,
        "committed before any push succeeded"
    );
    ft.kill9();
    assert_eq!(cursor(dir.path(), WEB), None);

    loki.set_fallback(None);
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let entries = loki
        .wait_for_entries(written.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    check_arrived(&entries, &written, "web", "shop");
    assert_eq!(ft.stop().code(), Some(0));
}
