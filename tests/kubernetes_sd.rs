//! `kubernetes_sd_configs` (`role: pod`) against a fake API server: Promtail's node filter
//! reaches the server and pods of other nodes are never published; pods added and deleted
//! change the published groups; a watch the server closes is resumed from the last
//! resourceVersion (bookmarks included) without a relist; a 410 Gone leads to a relist that
//! also drops what was deleted meanwhile. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fake_k8s::FakeK8s;
use ferrotail::discovery::TargetGroup;
use ferrotail::discovery::kubernetes::{KubernetesSd, settings_from_yaml};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const NODE: &str = "node-a";

/// The pod names in a published list (from `__meta_kubernetes_pod_name`).
fn pod_names(groups: &[TargetGroup]) -> Vec<String> {
    let mut names: Vec<String> = groups
        .iter()
        .filter_map(|g| g.labels.get("__meta_kubernetes_pod_name").cloned())
        .collect();
    names.dedup();
    names
}

/// Waits until the published groups satisfy `pred`, checking on every publication that no
/// pod of another node was ever published.
async fn wait_groups(
    rx: &mut watch::Receiver<Vec<TargetGroup>>,
    what: &str,
    pred: impl Fn(&[TargetGroup]) -> bool,
) -> Vec<TargetGroup> {
    let fut = async {
        loop {
            {
                let groups = rx.borrow_and_update();
                for g in groups.iter() {
                    assert_eq!(
                        g.labels
                            .get("__meta_kubernetes_pod_node_name")
                            .map(String::as_str),
                        Some(NODE),
                        "a pod of another node was published: {g:?}"
                    );
                }
                if pred(&groups) {
                    return groups.clone();
                }
            }
            rx.changed().await.expect("the discoverer stopped");
        }
    };
    match tokio::time::timeout(WAIT, fut).await {
        Ok(g) => g,
        Err(_) => panic!(
            "timed out after {WAIT:?} waiting for {what}; last published: {:?}",
            pod_names(&rx.borrow())
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_discovery_lists_watches_resumes_and_relists() {
    let k8s = FakeK8s::start().await;
    k8s.add_pod("a", NODE, &[8080, 9090]);
    k8s.add_pod("x", "node-b", &[]);

    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&format!("role: pod\napi_server: {}", k8s.url())).unwrap();
    let settings = settings_from_yaml(&yaml, NODE).unwrap();
    let (tx, mut rx) = watch::channel(Vec::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(KubernetesSd::new(settings).run(tx, shutdown.clone()));

    // The first publication: the initial list, filtered by node on the server.
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .expect("no first publication within 30 s")
        .expect("the discoverer stopped");
    let groups = wait_groups(&mut rx, "pod a", |g| pod_names(g) == ["a"]).await;
    let addrs: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(addrs, ["10.1.2.3:8080", "10.1.2.3:9090"]);
    let list = k8s
        .wait_for_request("list request", WAIT, |r| !r.is_watch())
        .await
        .unwrap();
    assert_eq!(list.path, "/api/v1/pods");
    assert_eq!(
        list.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-a"),
        "the node filter must reach the API server"
    );
    let watch_req = k8s
        .wait_for_request("watch request", WAIT, |r| r.is_watch())
        .await
        .unwrap();
    assert_eq!(
        watch_req.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-a")
    );

    // Added and deleted pods; a pod of another node changes nothing.
    k8s.add_pod("b", NODE, &[]);
    k8s.add_pod("y", "node-b", &[80]);
    wait_groups(&mut rx, "pods a and b", |g| pod_names(g) == ["a", "b"]).await;
    k8s.delete_pod("a");
    wait_groups(&mut rx, "pod a deleted", |g| pod_names(g) == ["b"]).await;

    // A closed watch resumes from the last resourceVersion seen (here a bookmark's).
    let lists_before = k8s.list_count();
    let rv = k8s.bookmark();
    k8s.close_watches();
    let resumed = k8s
        .wait_for_request("watch resumed from the bookmark", WAIT, |r| {
            r.is_watch() && r.query.get("resourceVersion") == Some(&rv.to_string())
        })
        .await
        .unwrap();
    assert_eq!(
        resumed.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-a")
    );
    k8s.add_pod("c", NODE, &[]);
    wait_groups(&mut rx, "pod c after the resumed watch", |g| {
        pod_names(g) == ["b", "c"]
    })
    .await;
    assert_eq!(
        k8s.list_count(),
        lists_before,
        "a closed watch must be resumed, not relisted"
    );

    // 410 Gone: the client relists, which also drops `b`, deleted without an event.
    k8s.compact_deleting("b");
    let after = k8s.resource_version();
    k8s.wait_for_request("relist after 410", WAIT, |r| !r.is_watch())
        .await
        .unwrap();
    wait_groups(&mut rx, "pod b gone after the relist", |g| {
        pod_names(g) == ["c"]
    })
    .await;
    assert!(k8s.list_count() > lists_before, "410 must lead to a relist");
    k8s.wait_for_request("watch after the relist", WAIT, |r| {
        r.is_watch()
            && r.query
                .get("resourceVersion")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v >= after)
    })
    .await
    .unwrap();
    k8s.add_pod("d", NODE, &[]);
    wait_groups(&mut rx, "pod d after the relist", |g| {
        pod_names(g) == ["c", "d"]
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the discoverer did not stop at shutdown")
        .unwrap();
}

#[tokio::test]
async fn empty_list_is_published_and_namespaces_are_watched_separately() {
    let k8s = FakeK8s::start().await;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&format!(
        "role: pod\napi_server: {}\nnamespaces: {{names: [one, two]}}\nselectors: [{{role: pod, label: app=web}}]",
        k8s.url()
    ))
    .unwrap();
    let settings = settings_from_yaml(&yaml, NODE).unwrap();
    let (tx, mut rx) = watch::channel(vec![TargetGroup::default()]);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(KubernetesSd::new(settings).run(tx, shutdown.clone()));
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .expect("no first publication within 30 s")
        .expect("the discoverer stopped");
    assert!(
        rx.borrow().is_empty(),
        "the first publication is the empty list"
    );
    for ns in ["one", "two"] {
        let r = k8s
            .wait_for_request(&format!("list in {ns}"), WAIT, |r| {
                !r.is_watch() && r.path == format!("/api/v1/namespaces/{ns}/pods")
            })
            .await
            .unwrap();
        assert_eq!(
            r.query.get("labelSelector").map(String::as_str),
            Some("app=web")
        );
    }
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the discoverer did not stop at shutdown")
        .unwrap();
}

#[tokio::test]
async fn unreachable_api_server_is_retried_until_shutdown() {
    // A port nobody listens on: bind, note the address, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&format!("role: pod\napi_server: http://{addr}")).unwrap();
    let settings = settings_from_yaml(&yaml, NODE).unwrap();
    let (tx, rx) = watch::channel(Vec::new());
    let shutdown = CancellationToken::new();
    let mut task = tokio::spawn(KubernetesSd::new(settings).run(tx, shutdown.clone()));
    // A few failed attempts' worth of time: it must neither publish nor end.
    let still_running = tokio::time::timeout(Duration::from_secs(2), &mut task)
        .await
        .is_err();
    assert!(
        still_running,
        "the discoverer ended on an unreachable server"
    );
    assert!(!rx.has_changed().unwrap(), "nothing may be published");
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the discoverer did not stop at shutdown")
        .unwrap();
}
