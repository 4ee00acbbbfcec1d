//! The DaemonSet of `deploy/kubernetes/daemonset.yaml` end to end: its ConfigMap's config (the
//! Promtail Helm chart's default, unchanged but for the Loki URL, the API server, the positions
//! file and the host root of `/var/log/pods`) runs against a fake Kubernetes API server and
//! ships the CRI files of this node's pods to the mock Loki with the chart's labels. Pods of
//! another node are not read; a deleted pod's target stops. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::fake_k8s::FakeK8s;
use common::mock_loki::MockLoki;
use common::process::{Ferrotail, append, metric};
use serde::Deserialize as _;

const WAIT: Duration = Duration::from_secs(60);

/// The ConfigMap's `config.yaml`, pointed at the test's servers and directories.
fn daemonset_config(dir: &Path, loki: &MockLoki, k8s: &FakeK8s) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/daemonset.yaml"),
    )
    .unwrap();
    let config = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the DaemonSet file has a ConfigMap");
    let config = config["data"]["config.yaml"].as_str().unwrap();
    let pods = dir.join("var/log/pods");
    let mut cfg: serde_yaml::Value =
        serde_yaml::from_str(&config.replace("/var/log/pods/", &format!("{}/", pods.display())))
            .unwrap();
    cfg["server"]["http_listen_port"] = 0.into();
    cfg["server"]["http_listen_address"] = "127.0.0.1".into();
    cfg["server"]["grpc_listen_port"] = 0.into();
    cfg["clients"][0]["url"] = loki.url().to_string().into();
    cfg["clients"][0]["batchwait"] = "50ms".into();
    cfg["positions"]["filename"] = dir.join("positions.yaml").display().to_string().into();
    let job = &mut cfg["scrape_configs"][0];
    assert_eq!(job["kubernetes_sd_configs"][0]["role"], "pod");
    job["kubernetes_sd_configs"][0]["api_server"] = k8s.url().into();
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    path
}

/// The kubelet's file of container `main` of pod `name` (namespace `default`, uid `uid-<name>`).
fn pod_log(dir: &Path, name: &str) -> std::path::PathBuf {
    let d = dir.join(format!("var/log/pods/default_{name}_uid-{name}/main"));
    std::fs::create_dir_all(&d).unwrap();
    d.join("0.log")
}

/// CRI lines (`<time> stdout F <message>`), a second apart from `start`.
fn cri(tag: &str, start: usize, n: usize) -> Vec<String> {
    (start..start + n)
        .map(|i| {
            format!(
                "2026-12-07T05:00:{:02}.000000000Z stdout F {tag} request {i} done",
                i % 60
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemonset_config_ships_this_nodes_pods() {
    let mock = MockLoki::start().await;
    let k8s = FakeK8s::start().await;
    let dir = tempfile::tempdir().unwrap();
    k8s.add_pod("web", "node-a", &[]);
    k8s.add_pod("other", "node-b", &[]);
    append(&pod_log(dir.path(), "web"), &cri("web", 0, 3));
    append(&pod_log(dir.path(), "other"), &cri("other", 0, 3));
    let cfg = daemonset_config(dir.path(), &mock, &k8s);
    let ft = Ferrotail::start_with_env(dir.path(), &cfg, &[], &[("HOSTNAME", "node-a")]);

    let entries = mock
        .wait_for_entries(3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let e = &entries[0];
    for label in [
        r#"app="web""#,
        r#"container="main""#,
        r#"job="default/web""#,
        r#"namespace="default""#,
        r#"node_name="node-a""#,
        r#"pod="web""#,
        r#"stream="stdout""#,
    ] {
        assert!(e.labels.contains(label), "{label} in {}", e.labels);
    }
    assert_eq!(
        e.line_str(),
        "web request 0 done",
        "the cri stage took the message"
    );

    // A pod added to this node is tailed; a deleted one stops.
    k8s.add_pod("api", "node-a", &[8080]);
    append(&pod_log(dir.path(), "api"), &cri("api", 0, 2));
    mock.wait_for_entries(5, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    k8s.delete_pod("web");
    ft.wait_until(WAIT, "only the api pod's file tailed", || {
        metric(&ft, "promtail_files_active_total", &[]) == Some(1.0)
    });
    append(&pod_log(dir.path(), "web"), &cri("web", 3, 2));
    append(&pod_log(dir.path(), "api"), &cri("api", 2, 2));
    mock.wait_for_entries(7, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert!(ft.stop().success());

    let lines: Vec<String> = mock.entries().iter().map(|e| e.line_str()).collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("other ")),
        "a pod of another node was read: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l == "web request 3 done"),
        "a deleted pod's file was read on: {lines:?}"
    );
    let watch = k8s
        .requests()
        .into_iter()
        .find(|r| r.is_watch())
        .expect("a watch request");
    assert_eq!(
        watch.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-a"),
        "the node filter: {:?}",
        watch.query
    );
}
