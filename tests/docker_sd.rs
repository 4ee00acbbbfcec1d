//! `docker_sd_configs` against a fake Docker engine on a Unix socket: discovery publishes
//! Prometheus' labels for containers on several networks, with ports and in host networking
//! mode, and follows containers that start and stop; `Engine::logs` reads the whole history or
//! from `since`, joins lines Docker split into 16 KiB messages, keeps stdout and stderr apart,
//! reads a TTY container's raw stream, gets lines written while it follows, and ends when the
//! container stops. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fake_docker::{API_VERSION, ContainerSpec, FakeDocker};
use ferrotail::discovery::TargetGroup;
use ferrotail::discovery::docker::{DockerSd, DockerSdSettings, settings_from_yaml};
use ferrotail::metrics::Metrics;
use ferrotail::sources::docker::engine::{DockerError, Engine};
use ferrotail::sources::docker::frames::{LogLine, LogStream};
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// 2024-05-01T10:00:00Z in Unix nanoseconds.
const T0: i64 = 1_714_557_600_000_000_000;
const SEC: i64 = 1_000_000_000;

fn settings(fake: &FakeDocker, extra: &str) -> DockerSdSettings {
    let yaml = format!("host: unix://{}\n{extra}", fake.socket().display());
    settings_from_yaml(&serde_yaml::from_str(&yaml).unwrap()).unwrap()
}

fn engine(fake: &FakeDocker) -> (Engine, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::connect(&settings(fake, ""), Arc::clone(&metrics)).unwrap();
    (engine, metrics)
}

/// The container IDs in a published list, in order, each once.
fn ids(groups: &[TargetGroup]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        let id = g.labels["__meta_docker_container_id"].clone();
        if out.last() != Some(&id) {
            out.push(id);
        }
    }
    out
}

/// Waits (at most [`WAIT`]) until the published list satisfies `pred`.
async fn wait_for(
    rx: &mut watch::Receiver<Vec<TargetGroup>>,
    what: &str,
    pred: impl Fn(&[TargetGroup]) -> bool,
) -> Vec<TargetGroup> {
    let waited = tokio::time::timeout(WAIT, rx.wait_for(|g| pred(g)))
        .await
        .map(|r| r.map(|g| g.clone()));
    match waited {
        Ok(Ok(g)) => g,
        Ok(Err(_)) => panic!("{what}: the discoverer stopped"),
        Err(_) => panic!(
            "{what}: not published within {WAIT:?}; last published: {:?}",
            *rx.borrow()
        ),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_publishes_prometheus_labels_and_follows_containers() {
    let fake = FakeDocker::start().await;
    fake.add_network(
        "shop_backend",
        "net-backend",
        true,
        &[("com.docker.compose.network", "backend")],
    );
    fake.run(
        ContainerSpec::new("aaaa1111", "shop-web-1", "172.17.0.2")
            .network("shop_backend", "net-backend", "172.20.0.5")
            .label("com.docker.compose.service", "web")
            .label("logging", "on")
            .port(80, 8080, "tcp")
            .port(9000, 0, "tcp")
            .port(53, 0, "udp"),
    );
    fake.run(ContainerSpec::new("bbbb2222", "node-agent", "").host_network());

    let sd = DockerSd::new(
        settings(
            &fake,
            "refresh_interval: 100ms\nhost_networking_host: node-1\n",
        ),
        Arc::new(Metrics::new()),
    );
    let (tx, mut rx) = watch::channel(Vec::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sd.run(tx, shutdown.clone()));

    let groups = wait_for(&mut rx, "the first refresh", |g| !g.is_empty()).await;
    // Docker lists the newest container first.
    assert_eq!(ids(&groups), ["bbbb2222", "aaaa1111"]);
    let agent = &groups[0];
    assert_eq!(agent.targets, ["node-1"]);
    assert_eq!(agent.source, "Docker");
    assert_eq!(
        agent.labels,
        labels(&[
            ("__meta_docker_container_id", "bbbb2222"),
            ("__meta_docker_container_name", "/node-agent"),
            ("__meta_docker_container_network_mode", "host"),
            ("__meta_docker_network_id", "net-host"),
            ("__meta_docker_network_ingress", "false"),
            ("__meta_docker_network_internal", "false"),
            ("__meta_docker_network_ip", ""),
            ("__meta_docker_network_name", "host"),
            ("__meta_docker_network_scope", "local"),
        ])
    );
    // match_first_network (default): `bridge` comes before `shop_backend`; TCP ports only.
    let web: Vec<&TargetGroup> = groups[1..].iter().collect();
    let addresses: Vec<&str> = web.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(addresses, ["172.17.0.2:80", "172.17.0.2:9000"]);
    assert_eq!(
        web[0].labels,
        labels(&[
            ("__meta_docker_container_id", "aaaa1111"),
            (
                "__meta_docker_container_label_com_docker_compose_service",
                "web"
            ),
            ("__meta_docker_container_label_logging", "on"),
            ("__meta_docker_container_name", "/shop-web-1"),
            ("__meta_docker_container_network_mode", "bridge"),
            ("__meta_docker_network_id", "net-bridge"),
            ("__meta_docker_network_ingress", "false"),
            ("__meta_docker_network_internal", "false"),
            ("__meta_docker_network_ip", "172.17.0.2"),
            ("__meta_docker_network_name", "bridge"),
            ("__meta_docker_network_scope", "local"),
            ("__meta_docker_port_private", "80"),
            ("__meta_docker_port_public", "8080"),
            ("__meta_docker_port_public_ip", "0.0.0.0"),
        ])
    );
    assert!(!web[1].labels.contains_key("__meta_docker_port_public"));

    // A container that starts appears; one that stops goes.
    fake.run(ContainerSpec::new("cccc3333", "worker", "172.17.0.3"));
    wait_for(&mut rx, "a started container", |g| {
        ids(g) == ["cccc3333", "bbbb2222", "aaaa1111"]
    })
    .await;
    fake.stop("aaaa1111");
    let groups = wait_for(&mut rx, "a stopped container", |g| {
        ids(g) == ["cccc3333", "bbbb2222"]
    })
    .await;
    // Without ports: the default port 80.
    assert_eq!(groups[0].targets, ["172.17.0.3:80"]);

    // The API version was negotiated once, before the first list.
    let requests = fake.requests();
    let routes: Vec<&str> = requests.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(routes[..2], ["/version", "/containers/json"], "{routes:?}");
    assert_eq!(routes.iter().filter(|r| **r == "/version").count(), 1);

    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the discoverer stops within 30 s of shutdown")
        .unwrap();
}

#[tokio::test]
async fn discovery_without_match_first_network_and_with_filters() {
    let fake = FakeDocker::start().await;
    fake.add_network("backend", "net-backend", false, &[("tier", "db")]);
    fake.run(
        ContainerSpec::new("aaaa1111", "web", "172.17.0.2")
            .network("backend", "net-backend", "172.20.0.5")
            .label("logging", "on"),
    );
    fake.run(ContainerSpec::new("bbbb2222", "quiet", "172.17.0.3"));
    let sd = DockerSd::new(
        settings(
            &fake,
            "match_first_network: false\nport: 9100\n\
             filters: [{name: label, values: ['logging=on']}]\n",
        ),
        Arc::new(Metrics::new()),
    );
    let (tx, mut rx) = watch::channel(Vec::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sd.run(tx, shutdown.clone()));
    let groups = wait_for(&mut rx, "the first refresh", |g| !g.is_empty()).await;
    let addresses: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
    // One target per network, in network name order.
    assert_eq!(addresses, ["172.20.0.5:9100", "172.17.0.2:9100"]);
    assert_eq!(groups[0].labels["__meta_docker_network_label_tier"], "db");
    let request = fake
        .wait_for_request("a filtered list", WAIT, |r| r.route == "/containers/json")
        .await
        .unwrap();
    assert_eq!(
        request.query.get("filters").map(String::as_str),
        Some(r#"{"label":["logging=on"]}"#)
    );
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn discovery_publishes_once_when_the_engine_is_away_and_finds_it_later() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let yaml = format!(
        "host: unix://{}\nrefresh_interval: 50ms\n",
        socket.display()
    );
    let s = settings_from_yaml(&serde_yaml::from_str(&yaml).unwrap()).unwrap();
    let (tx, mut rx) = watch::channel(vec![TargetGroup::default()]);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(DockerSd::new(s, Arc::new(Metrics::new())).run(tx, shutdown.clone()));
    wait_for(
        &mut rx,
        "the failed first refresh",
        <[TargetGroup]>::is_empty,
    )
    .await;
    // The engine starts later, at that path.
    let fake = FakeDocker::start().await;
    std::fs::remove_file(&socket).ok();
    std::os::unix::fs::symlink(fake.socket(), &socket).unwrap();
    fake.run(ContainerSpec::new("aaaa1111", "late", "172.17.0.2"));
    wait_for(&mut rx, "containers of an engine that came up", |g| {
        ids(g) == ["aaaa1111"]
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// The next item of a log stream, within [`WAIT`].
async fn next<S>(logs: &mut S, what: &str) -> Option<Result<LogLine, DockerError>>
where
    S: Stream<Item = Result<LogLine, DockerError>> + Unpin,
{
    tokio::time::timeout(WAIT, logs.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// The next `n` lines (failing on an error or the end).
async fn take<S>(logs: &mut S, n: usize, what: &str) -> Vec<LogLine>
where
    S: Stream<Item = Result<LogLine, DockerError>> + Unpin,
{
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match next(logs, what).await {
            Some(Ok(line)) => out.push(line),
            Some(Err(e)) => panic!("{what}: error after {} lines: {e}", out.len()),
            None => panic!("{what}: the stream ended after {} lines", out.len()),
        }
    }
    out
}

fn text(l: &LogLine) -> &str {
    std::str::from_utf8(&l.line).unwrap()
}

#[tokio::test]
async fn logs_are_read_from_since_joined_and_followed_until_the_container_stops() {
    let fake = FakeDocker::start().await;
    fake.run(ContainerSpec::new("aaaa1111", "app", "172.17.0.2"));
    let id = "aaaa1111";
    // History: a line at T0, then lines at T0+100 s (one split by Docker into three
    // messages), stdout and stderr interleaved, the same line twice.
    fake.write_line(id, LogStream::Stdout, T0 + 5, "before since");
    let long = "0123456789abcdef".repeat(2500); // 40 000 bytes: three 16 KiB messages
    fake.write_line(id, LogStream::Stdout, T0 + 100 * SEC, "first");
    fake.write_line(id, LogStream::Stderr, T0 + 100 * SEC + 1, "warning: disk");
    fake.write_line(id, LogStream::Stdout, T0 + 100 * SEC + 2, &long);
    fake.write_line(id, LogStream::Stdout, T0 + 100 * SEC + 3, "same");
    fake.write_line(id, LogStream::Stdout, T0 + 100 * SEC + 3, "same");
    fake.write_line(id, LogStream::Stderr, T0 + 101 * SEC, "error: \r\n");

    let (engine, metrics) = engine(&fake);
    assert!(!engine.container_tty(id).await.unwrap());
    let since = (T0 + 100 * SEC) / SEC;
    let mut logs = Box::pin(engine.logs(id, since, false, 0));
    let got = take(&mut logs, 6, "the history from since").await;
    let seen: Vec<(LogStream, i64, String)> = got
        .iter()
        .map(|l| (l.stream, l.timestamp_ns, text(l).to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            (LogStream::Stdout, T0 + 100 * SEC, "first".to_owned()),
            (
                LogStream::Stderr,
                T0 + 100 * SEC + 1,
                "warning: disk".to_owned()
            ),
            (LogStream::Stdout, T0 + 100 * SEC + 2, long.clone()),
            (LogStream::Stdout, T0 + 100 * SEC + 3, "same".to_owned()),
            (LogStream::Stdout, T0 + 100 * SEC + 3, "same".to_owned()),
            (LogStream::Stderr, T0 + 101 * SEC, "error: ".to_owned()),
        ]
    );
    let request = fake
        .wait_for_request("the log request", WAIT, |r| r.route.ends_with("/logs"))
        .await
        .unwrap();
    assert_eq!(request.route, format!("/containers/{id}/logs"));
    assert!(request.path.starts_with(&format!("/v{API_VERSION}/")));
    for (k, v) in [
        ("follow", "1"),
        ("stdout", "1"),
        ("stderr", "1"),
        ("timestamps", "1"),
        ("since", &since.to_string()[..]),
    ] {
        assert_eq!(request.query.get(k).map(String::as_str), Some(v), "{k}");
    }

    // Lines written while the log is followed arrive too: a burst, interleaved.
    for i in 0..500 {
        let stream = if i % 3 == 0 {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        };
        fake.write_line(id, stream, T0 + 200 * SEC + i, &format!("burst {i}"));
    }
    let burst = take(&mut logs, 500, "the live burst").await;
    for (i, l) in burst.iter().enumerate() {
        assert_eq!(text(l), format!("burst {i}"));
        assert_eq!(l.timestamp_ns, T0 + 200 * SEC + i as i64);
    }

    // A malformed frame is skipped and counted.
    fake.send_raw(
        id,
        &[
            1, 0, 0, 0, 0, 0, 0, 9, b'n', b'o', b' ', b's', b't', b'a', b'm', b'p', b'\n',
        ],
    );
    fake.write_partial(id, LogStream::Stdout, T0 + 300 * SEC, "last words");
    // The container stops: the unterminated last output is emitted, then the stream ends.
    fake.stop(id);
    let last = take(&mut logs, 1, "the last words").await;
    assert_eq!(text(&last[0]), "last words");
    assert!(
        next(&mut logs, "the end of the stream").await.is_none(),
        "the stream goes on after the container stopped"
    );
    assert_eq!(metrics.docker_target_parsing_errors.get(), 1);
}

#[tokio::test]
async fn the_whole_history_is_read_from_since_zero() {
    let fake = FakeDocker::start().await;
    fake.run(ContainerSpec::new("aaaa1111", "app", "172.17.0.2"));
    for i in 0..3 {
        fake.write_line(
            "aaaa1111",
            LogStream::Stdout,
            T0 + i * SEC,
            &format!("l{i}"),
        );
    }
    let (engine, _) = engine(&fake);
    let mut logs = Box::pin(engine.logs("aaaa1111", 0, false, 0));
    let got = take(&mut logs, 3, "the whole history").await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["l0", "l1", "l2"]);
    fake.stop("aaaa1111");
    assert!(next(&mut logs, "the end").await.is_none());
}

#[tokio::test]
async fn tty_containers_are_read_raw() {
    let fake = FakeDocker::start().await;
    fake.run(ContainerSpec::new("tty00001", "shell", "172.17.0.4").tty());
    let id = "tty00001";
    let long = "x".repeat(20_000);
    fake.write_line(id, LogStream::Stdout, T0, "$ ls");
    fake.write_line(id, LogStream::Stdout, T0 + 1, &long);
    fake.write_line(id, LogStream::Stdout, T0 + 2, "done\r");
    let (engine, _) = engine(&fake);
    assert!(engine.container_tty(id).await.unwrap());
    let mut logs = Box::pin(engine.logs(id, 0, true, 0));
    let got = take(&mut logs, 3, "the TTY history").await;
    assert_eq!(
        got.iter().map(text).collect::<Vec<_>>(),
        ["$ ls", &long, "done"]
    );
    assert!(got.iter().all(|l| l.stream == LogStream::Stdout));
    assert_eq!(got[1].timestamp_ns, T0 + 1);
    fake.stop(id);
    assert!(next(&mut logs, "the end").await.is_none());
}

#[tokio::test]
async fn long_lines_are_cut_at_the_limit() {
    let fake = FakeDocker::start().await;
    fake.run(ContainerSpec::new("aaaa1111", "app", "172.17.0.2"));
    // 100 000 bytes: seven messages of at most 16 KiB.
    let long = "y".repeat(100_000);
    fake.write_line("aaaa1111", LogStream::Stdout, T0, &long);
    fake.write_line("aaaa1111", LogStream::Stdout, T0 + 1, "after");
    let (engine, _) = engine(&fake);
    let mut logs = Box::pin(engine.logs("aaaa1111", 0, false, 40_000));
    let got = take(&mut logs, 2, "a cut line").await;
    // Emitted with the message that crosses 40 000 bytes (the third), the rest dropped.
    assert_eq!(got[0].line.len(), 3 * 16 * 1024);
    assert_eq!(text(&got[1]), "after");
}

#[tokio::test]
async fn errors_name_the_engine_and_the_container() {
    let fake = FakeDocker::start().await;
    let (engine, _) = engine(&fake);
    let mut logs = Box::pin(engine.logs("nope", 0, false, 0));
    let err = match next(&mut logs, "a missing container").await {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(err.is_not_found(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&fake.host()) && msg.contains("nope") && msg.contains("No such container"),
        "{msg}"
    );
    assert!(next(&mut logs, "after an error").await.is_none());
    let err = engine.container_tty("nope").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        err.to_string().contains("inspecting container nope"),
        "{err}"
    );

    // No engine at all.
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("host: unix://{}/none.sock", dir.path().display());
    let s = settings_from_yaml(&serde_yaml::from_str(&yaml).unwrap()).unwrap();
    let err = Engine::connect(&s, Arc::new(Metrics::new()))
        .err()
        .expect("no socket, no engine");
    assert!(err.to_string().contains("none.sock"), "{err}");

    // Something that is not a socket where the socket should be.
    let plain = dir.path().join("plain.sock");
    std::fs::write(&plain, b"").unwrap();
    let yaml = format!("host: unix://{}", plain.display());
    let s = settings_from_yaml(&serde_yaml::from_str(&yaml).unwrap()).unwrap();
    let engine = Engine::connect(&s, Arc::new(Metrics::new())).unwrap();
    let err = engine.list_containers(&[]).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("plain.sock") && msg.contains("negotiating the API version"),
        "{msg}"
    );
    let mut logs = Box::pin(engine.logs("abc", 0, false, 0));
    let msg = match next(&mut logs, "logs without an engine").await {
        Some(Err(e)) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(
        msg.contains("plain.sock") && msg.contains("container abc"),
        "{msg}"
    );
}
