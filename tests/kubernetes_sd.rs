//! `kubernetes_sd_configs` against a fake API server, through the discoverer's published
//! groups. Role pod: Promtail's node filter reaches the server and pods of other nodes are
//! never published; pods added and deleted change the published groups; a watch the server
//! closes is resumed from the last resourceVersion (bookmarks included) without a relist; a
//! 410 Gone leads to a relist that also drops what was deleted meanwhile. Role node: nodes
//! listed cluster-wide with their selector, added, changed and deleted. Role endpoints: the
//! endpoints, services and pods of a namespace listed and watched, the pod and service labels
//! joined, following pod changes. Roles endpointslice, service and ingress: listed from their
//! API groups, a watched addition published. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fake_k8s::FakeK8s;
use ferrotail::discovery::TargetGroup;
use ferrotail::discovery::kubernetes::{KubernetesSd, settings_from_yaml};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
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

/// A running discoverer.
struct Running {
    rx: watch::Receiver<Vec<TargetGroup>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Starts a discoverer for `yaml` (the `api_server` key is added) and waits for its first
    /// publication.
    async fn start(k8s: &FakeK8s, yaml: &str) -> Running {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&format!("{yaml}\napi_server: {}", k8s.url())).unwrap();
        let settings = settings_from_yaml(&yaml, NODE).unwrap();
        let (tx, mut rx) = watch::channel(Vec::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(KubernetesSd::new(settings).run(tx, shutdown.clone()));
        tokio::time::timeout(WAIT, rx.changed())
            .await
            .expect("no first publication within 30 s")
            .expect("the discoverer stopped");
        Running { rx, shutdown, task }
    }

    /// Waits until the published groups satisfy `pred`; returns them.
    async fn wait(
        &mut self,
        what: &str,
        pred: impl Fn(&[TargetGroup]) -> bool,
    ) -> Vec<TargetGroup> {
        let rx = &mut self.rx;
        let fut = async {
            loop {
                {
                    let groups = rx.borrow_and_update();
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
                "timed out after {WAIT:?} waiting for {what}; last published: {:#?}",
                summary(&self.rx.borrow())
            ),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the discoverer did not stop at shutdown")
            .unwrap();
    }
}

/// (source, address) of each published group.
fn summary(groups: &[TargetGroup]) -> Vec<(String, String)> {
    groups
        .iter()
        .map(|g| (g.source.clone(), g.targets.join(",")))
        .collect()
}

/// The addresses of the groups of `source`.
fn addresses(groups: &[TargetGroup], source: &str) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.source == source)
        .flat_map(|g| g.targets.clone())
        .collect()
}

fn label<'a>(g: &'a TargetGroup, name: &str) -> Option<&'a str> {
    g.labels
        .get(&format!("__meta_kubernetes_{name}"))
        .map(String::as_str)
}

/// A node `name` at `ip` whose kubelet listens on 10250.
fn node(name: &str, ip: &str, pool: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "pool": pool}},
        "spec": {"providerID": format!("fake://{name}")},
        "status": {
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_role_lists_and_watches_nodes() {
    let k8s = FakeK8s::start().await;
    k8s.apply("nodes", node("worker-1", "10.0.0.1", "a"));
    let mut sd = Running::start(
        &k8s,
        "role: node\nnamespaces: {names: [ignored]}\nselectors: [{role: node, label: 'kubernetes.io/os=linux'}]",
    )
    .await;
    let groups = sd
        .wait("node worker-1", |g| {
            !addresses(g, "node/worker-1").is_empty()
        })
        .await;
    assert_eq!(
        summary(&groups),
        [("node/worker-1".into(), "10.0.0.1:10250".into())]
    );
    let g = &groups[0];
    assert_eq!(
        g.labels.get("instance").map(String::as_str),
        Some("worker-1")
    );
    assert_eq!(label(g, "node_name"), Some("worker-1"));
    assert_eq!(label(g, "node_provider_id"), Some("fake://worker-1"));
    assert_eq!(label(g, "node_address_InternalIP"), Some("10.0.0.1"));
    assert_eq!(label(g, "node_address_Hostname"), Some("worker-1"));
    assert_eq!(label(g, "node_label_pool"), Some("a"));

    // Nodes are cluster-wide (namespaces do not apply), with the node selector and no node
    // filter.
    let list = k8s
        .wait_for_request("node list", WAIT, |r| !r.is_watch())
        .await
        .unwrap();
    assert_eq!(list.path, "/api/v1/nodes");
    assert_eq!(
        list.query.get("labelSelector").map(String::as_str),
        Some("kubernetes.io/os=linux")
    );
    assert_eq!(list.query.get("fieldSelector"), None);
    k8s.wait_for_request("node watch", WAIT, |r| {
        r.is_watch() && r.path == "/api/v1/nodes"
    })
    .await
    .unwrap();

    // Added, changed, deleted.
    k8s.apply("nodes", node("worker-2", "fd00::2", "b"));
    sd.wait("node worker-2", |g| {
        addresses(g, "node/worker-2") == ["[fd00::2]:10250"]
    })
    .await;
    k8s.apply("nodes", node("worker-1", "10.0.0.1", "c"));
    sd.wait("worker-1's new label", |g| {
        g.iter()
            .any(|g| g.source == "node/worker-1" && label(g, "node_label_pool") == Some("c"))
    })
    .await;
    k8s.delete("nodes", "", "worker-1");
    let groups = sd
        .wait("worker-1 deleted", |g| {
            summary(g).len() == 1 && addresses(g, "node/worker-1").is_empty()
        })
        .await;
    assert_eq!(
        summary(&groups),
        [("node/worker-2".into(), "[fd00::2]:10250".into())]
    );
    sd.stop().await;
}

/// Pod `name` in `shop` at `ip` on `node` (not this instance's node: the endpoints role has
/// no node filter), container `app` declaring 8080 and 9090.
fn shop_pod(name: &str, ip: &str, version: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                     "labels": {"app": "web", "version": version}},
        "spec": {"nodeName": "node-b", "containers": [{"name": "app", "image": "app:1", "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ]}]},
        "status": {"podIP": ip, "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// Endpoints `name` in `shop`: `ready` and `not_ready` pod addresses (pod name, IP) on `port`.
fn shop_endpoints(
    name: &str,
    ready: &[(&str, &str)],
    not_ready: &[(&str, &str)],
    port: i32,
) -> serde_json::Value {
    let addr = |(pod, ip): &(&str, &str)| {
        json!({"ip": ip, "nodeName": "node-b",
               "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}})
    };
    json!({
        "metadata": {"name": name, "namespace": "shop"},
        "subsets": [{
            "addresses": ready.iter().map(addr).collect::<Vec<_>>(),
            "notReadyAddresses": not_ready.iter().map(addr).collect::<Vec<_>>(),
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_role_joins_pods_and_services_and_follows_them() {
    let k8s = FakeK8s::start().await;
    k8s.apply(
        "services",
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}},
               "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}}),
    );
    k8s.apply("pods", shop_pod("web-0", "10.0.0.1", "1"));
    k8s.apply("pods", shop_pod("web-1", "10.0.0.2", "1"));
    k8s.apply(
        "endpoints",
        shop_endpoints(
            "web",
            &[("web-0", "10.0.0.1")],
            &[("web-1", "10.0.0.2")],
            8080,
        ),
    );
    // Another namespace is not watched.
    k8s.apply(
        "endpoints",
        json!({"metadata": {"name": "x", "namespace": "other"},
               "subsets": [{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 1}]}]}),
    );
    let mut sd = Running::start(
        &k8s,
        "role: endpoints\nnamespaces: {names: [shop]}\nselectors: [{role: endpoints, label: 'app!=none'}]",
    )
    .await;
    let groups = sd
        .wait("endpoints web", |g| {
            addresses(g, "endpoints/shop/web").len() == 4
        })
        .await;
    assert_eq!(
        addresses(&groups, "endpoints/shop/web"),
        [
            "10.0.0.1:8080",
            "10.0.0.2:8080",
            "10.0.0.1:9090",
            "10.0.0.2:9090"
        ],
        "ready, not ready, then each pod's uncovered container port"
    );
    assert_eq!(
        groups.len(),
        4,
        "nothing of namespace other: {:?}",
        summary(&groups)
    );
    let ready = &groups[0];
    for (k, v) in [
        ("namespace", "shop"),
        ("endpoints_name", "web"),
        ("endpoint_ready", "true"),
        ("endpoint_port_name", "http"),
        ("endpoint_node_name", "node-b"),
        ("endpoint_address_target_kind", "Pod"),
        ("endpoint_address_target_name", "web-0"),
        ("service_name", "web"),
        ("service_label_tier", "front"),
        ("pod_name", "web-0"),
        ("pod_label_version", "1"),
        ("pod_container_name", "app"),
        ("pod_container_port_name", "http"),
    ] {
        assert_eq!(label(ready, k), Some(v), "{k}");
    }
    assert_eq!(label(&groups[1], "endpoint_ready"), Some("false"));
    assert_eq!(
        label(&groups[2], "pod_container_port_name"),
        Some("metrics")
    );

    // The three kinds are listed and watched in the namespace; the selector goes to the
    // endpoints only, and the pods have no node filter (role pod only).
    for kind in ["pods", "services", "endpoints"] {
        let path = format!("/api/v1/namespaces/shop/{kind}");
        let list = k8s
            .wait_for_request(&format!("{kind} list"), WAIT, |r| {
                !r.is_watch() && r.path == path
            })
            .await
            .unwrap();
        assert_eq!(list.query.get("fieldSelector"), None, "{kind}");
        let want = (kind == "endpoints").then_some("app!=none");
        assert_eq!(
            list.query.get("labelSelector").map(String::as_str),
            want,
            "{kind}"
        );
        k8s.wait_for_request(&format!("{kind} watch"), WAIT, |r| {
            r.is_watch() && r.path == path
        })
        .await
        .unwrap();
    }

    // A watched pod change reaches the endpoints' targets.
    k8s.apply("pods", shop_pod("web-0", "10.0.0.1", "2"));
    sd.wait("web-0's new version label", |g| {
        g.iter()
            .filter(|g| label(g, "pod_name") == Some("web-0"))
            .all(|g| label(g, "pod_label_version") == Some("2"))
    })
    .await;
    // The service goes: its labels leave the endpoints' targets.
    k8s.delete("services", "shop", "web");
    sd.wait("service labels gone", |g| {
        !g.is_empty() && g.iter().all(|g| label(g, "service_name").is_none())
    })
    .await;
    // Endpoints added and deleted.
    k8s.apply(
        "endpoints",
        shop_endpoints("api", &[("api-0", "10.0.0.5")], &[], 7000),
    );
    sd.wait("endpoints api", |g| {
        addresses(g, "endpoints/shop/api") == ["10.0.0.5:7000"]
    })
    .await;
    k8s.delete("endpoints", "shop", "web");
    let groups = sd
        .wait("endpoints web deleted", |g| {
            addresses(g, "endpoints/shop/web").is_empty()
        })
        .await;
    assert_eq!(
        summary(&groups),
        [("endpoints/shop/api".into(), "10.0.0.5:7000".into())]
    );
    sd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpointslice_service_and_ingress_roles_list_and_watch() {
    let k8s = FakeK8s::start().await;
    k8s.apply(
        "services",
        json!({"metadata": {"name": "api", "namespace": "prod"},
               "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7",
                        "ports": [{"name": "grpc", "port": 9000, "protocol": "TCP"}]}}),
    );
    let slice = |name: &str, ip: &str| {
        json!({
            "metadata": {"name": name, "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "api"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "grpc", "port": 9000, "protocol": "TCP"}]
        })
    };
    k8s.apply("endpointslices", slice("api-a", "10.0.1.1"));
    k8s.apply(
        "ingresses",
        json!({"metadata": {"name": "shop", "namespace": "prod"},
               "spec": {"tls": [{"hosts": ["shop.example.com"]}],
                        "rules": [{"host": "shop.example.com"}]}}),
    );

    let mut sd = Running::start(&k8s, "role: endpointslice").await;
    let groups = sd
        .wait("slice api-a", |g| {
            !addresses(g, "endpointslice/prod/api-a").is_empty()
        })
        .await;
    assert_eq!(
        addresses(&groups, "endpointslice/prod/api-a"),
        ["10.0.1.1:9000"]
    );
    assert_eq!(label(&groups[0], "service_name"), Some("api"));
    assert_eq!(
        label(&groups[0], "endpointslice_endpoint_conditions_ready"),
        Some("true")
    );
    k8s.wait_for_request("slice list", WAIT, |r| {
        !r.is_watch() && r.path == "/apis/discovery.k8s.io/v1/endpointslices"
    })
    .await
    .unwrap();
    k8s.apply("endpointslices", slice("api-b", "10.0.1.2"));
    sd.wait("slice api-b", |g| {
        addresses(g, "endpointslice/prod/api-b") == ["10.0.1.2:9000"]
    })
    .await;
    sd.stop().await;

    let mut sd = Running::start(&k8s, "role: service").await;
    let groups = sd.wait("service api", |g| !g.is_empty()).await;
    assert_eq!(
        summary(&groups),
        [("svc/prod/api".into(), "api.prod.svc:9000".into())]
    );
    assert_eq!(label(&groups[0], "service_cluster_ip"), Some("10.96.0.7"));
    k8s.delete("services", "prod", "api");
    sd.wait("service api deleted", |g| g.is_empty()).await;
    sd.stop().await;

    let mut sd = Running::start(&k8s, "role: ingress\nnamespaces: {names: [prod]}").await;
    let groups = sd.wait("ingress shop", |g| !g.is_empty()).await;
    assert_eq!(
        summary(&groups),
        [("ingress/prod/shop".into(), "shop.example.com".into())]
    );
    assert_eq!(label(&groups[0], "ingress_scheme"), Some("https"));
    assert_eq!(label(&groups[0], "ingress_path"), Some("/"));
    k8s.wait_for_request("ingress list", WAIT, |r| {
        !r.is_watch() && r.path == "/apis/networking.k8s.io/v1/namespaces/prod/ingresses"
    })
    .await
    .unwrap();
    sd.stop().await;
}
