use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{ContainerSummary, Network};
use serde_json::{Value, json};

use super::*;

fn settings(match_first_network: bool) -> DockerSdSettings {
    DockerSdSettings {
        host: "unix:///var/run/docker.sock".into(),
        address: DockerHost::Unix("/var/run/docker.sock".into()),
        port: 80,
        host_networking_host: "localhost".into(),
        match_first_network,
        filters: vec![],
        refresh_interval: Duration::from_secs(60),
    }
}

fn containers(v: Value) -> Vec<ContainerSummary> {
    serde_json::from_value(v).unwrap()
}

fn networks() -> Vec<Network> {
    serde_json::from_value(json!([
        {"Name": "bridge", "Id": "net-bridge", "Scope": "local", "Driver": "bridge",
         "Internal": false, "Ingress": false, "Labels": {}},
        {"Name": "backend", "Id": "net-backend", "Scope": "local", "Driver": "bridge",
         "Internal": true, "Labels": {"com.example.tier": "db", "owner-team": "ops"}},
        {"Name": "host", "Id": "net-host", "Scope": "local", "Driver": "host"},
    ]))
    .unwrap()
}

fn endpoint(network_id: &str, ip: &str) -> Value {
    json!({"NetworkID": network_id, "IPAddress": ip, "Gateway": "", "MacAddress": ""})
}

/// A web container on two networks with a published TCP port, an unpublished one and a UDP
/// one; a host-networking container; one sharing the web container's network.
fn sample() -> Vec<ContainerSummary> {
    containers(json!([
        {
            "Id": "aaa111", "Names": ["/web"], "Image": "nginx", "State": "running",
            "Labels": {"com.docker.compose.service": "web", "app": "shop"},
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 9000, "Type": "tcp"},
                {"PrivatePort": 53, "Type": "udp"},
            ],
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {"Networks": {
                "bridge": endpoint("net-bridge", "172.17.0.2"),
                "backend": endpoint("net-backend", "172.20.0.5"),
            }},
        },
        {
            "Id": "bbb222", "Names": ["/agent"], "State": "running", "Labels": {},
            "Ports": [], "HostConfig": {"NetworkMode": "host"},
            "NetworkSettings": {"Networks": {"host": endpoint("net-host", "")}},
        },
        {
            "Id": "ccc333", "Names": ["/sidecar", "/web/sidecar"], "State": "running",
            "HostConfig": {"NetworkMode": "container:aaa111"},
            "NetworkSettings": {"Networks": {}},
        },
    ]))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const WEB_COMMON: [(&str, &str); 5] = [
    ("__meta_docker_container_id", "aaa111"),
    ("__meta_docker_container_name", "/web"),
    ("__meta_docker_container_network_mode", "bridge"),
    (
        "__meta_docker_container_label_com_docker_compose_service",
        "web",
    ),
    ("__meta_docker_container_label_app", "shop"),
];

const BACKEND: [(&str, &str); 7] = [
    ("__meta_docker_network_id", "net-backend"),
    ("__meta_docker_network_name", "backend"),
    ("__meta_docker_network_scope", "local"),
    ("__meta_docker_network_internal", "true"),
    ("__meta_docker_network_ingress", "false"),
    ("__meta_docker_network_label_com_example_tier", "db"),
    ("__meta_docker_network_label_owner_team", "ops"),
];

const BRIDGE: [(&str, &str); 5] = [
    ("__meta_docker_network_id", "net-bridge"),
    ("__meta_docker_network_name", "bridge"),
    ("__meta_docker_network_scope", "local"),
    ("__meta_docker_network_internal", "false"),
    ("__meta_docker_network_ingress", "false"),
];

fn group(address: &str, parts: &[&[(&str, &str)]]) -> TargetGroup {
    let mut l = BTreeMap::new();
    for p in parts {
        l.extend(labels(p));
    }
    TargetGroup {
        targets: vec![address.to_owned()],
        labels: l,
        source: "Docker".into(),
    }
}

#[test]
fn containers_make_prometheus_targets() {
    let got = target_groups(&sample(), &networks(), &settings(true));
    let host_common: [(&str, &str); 3] = [
        ("__meta_docker_container_id", "bbb222"),
        ("__meta_docker_container_name", "/agent"),
        ("__meta_docker_container_network_mode", "host"),
    ];
    let host_net: [(&str, &str); 6] = [
        ("__meta_docker_network_ip", ""),
        ("__meta_docker_network_id", "net-host"),
        ("__meta_docker_network_name", "host"),
        ("__meta_docker_network_scope", "local"),
        ("__meta_docker_network_internal", "false"),
        ("__meta_docker_network_ingress", "false"),
    ];
    let sidecar_common: [(&str, &str); 3] = [
        ("__meta_docker_container_id", "ccc333"),
        ("__meta_docker_container_name", "/sidecar"),
        ("__meta_docker_container_network_mode", "container:aaa111"),
    ];
    let port80: [(&str, &str); 4] = [
        ("__meta_docker_network_ip", "172.20.0.5"),
        ("__meta_docker_port_private", "80"),
        ("__meta_docker_port_public", "8080"),
        ("__meta_docker_port_public_ip", "0.0.0.0"),
    ];
    let port9000: [(&str, &str); 2] = [
        ("__meta_docker_network_ip", "172.20.0.5"),
        ("__meta_docker_port_private", "9000"),
    ];
    let want = vec![
        // match_first_network: `backend` comes before `bridge`. One target per TCP port.
        group("172.20.0.5:80", &[&WEB_COMMON, &BACKEND, &port80]),
        group("172.20.0.5:9000", &[&WEB_COMMON, &BACKEND, &port9000]),
        group("localhost", &[&host_common, &host_net]),
        // The sidecar shares the web container's network; it has no ports of its own, so it
        // gets the fallback port.
        group(
            "172.20.0.5:80",
            &[
                &sidecar_common,
                &BACKEND,
                &[("__meta_docker_network_ip", "172.20.0.5")],
            ],
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn every_network_makes_targets_without_match_first_network() {
    let web = &sample()[..1];
    let mut s = settings(false);
    s.port = 8443;
    let got = target_groups(web, &networks(), &s);
    let addresses: Vec<&str> = got.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(
        addresses,
        [
            "172.20.0.5:80",
            "172.20.0.5:9000",
            "172.17.0.2:80",
            "172.17.0.2:9000"
        ]
    );
    assert_eq!(
        got[2]
            .labels
            .get("__meta_docker_network_name")
            .map(String::as_str),
        Some("bridge")
    );
    assert!(
        got[2]
            .labels
            .iter()
            .all(|(k, _)| !k.starts_with("__meta_docker_network_label_"))
    );
    for (k, v) in BRIDGE {
        assert_eq!(got[2].labels.get(k).map(String::as_str), Some(v), "{k}");
    }
}

#[test]
fn containers_without_tcp_ports_use_the_fallback_port() {
    let c = containers(json!([{
        "Id": "ddd", "Names": ["/dns"],
        "Ports": [{"PrivatePort": 53, "Type": "udp"}],
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {"Networks": {"v6": endpoint("net-unknown", "fd00::5")}},
    }]));
    let mut s = settings(true);
    s.port = 9100;
    let got = target_groups(&c, &[], &s);
    assert_eq!(
        got,
        [group(
            "[fd00::5]:9100",
            &[&[
                ("__meta_docker_container_id", "ddd"),
                ("__meta_docker_container_name", "/dns"),
                ("__meta_docker_container_network_mode", "default"),
                ("__meta_docker_network_ip", "fd00::5"),
            ]]
        )]
    );
    // Go prints the int port through uint64.
    s.port = -1;
    let got = target_groups(&c, &[], &s);
    assert_eq!(got[0].targets, ["[fd00::5]:18446744073709551615"]);
}

#[test]
fn odd_containers_make_no_targets_and_no_trouble() {
    let c = containers(json!([
        // No name: skipped.
        {"Id": "n1", "Names": [], "NetworkSettings": {"Networks": {"bridge": endpoint("x", "1.2.3.4")}}},
        {"Id": "n2"},
        // No network at all.
        {"Id": "n3", "Names": ["/lonely"], "HostConfig": {"NetworkMode": "none"}},
        // Sharing the network of a container that is not running.
        {"Id": "n4", "Names": ["/orphan"], "HostConfig": {"NetworkMode": "container:gone"}},
        // A cycle of shared networks.
        {"Id": "n5", "Names": ["/a"], "HostConfig": {"NetworkMode": "container:n6"}},
        {"Id": "n6", "Names": ["/b"], "HostConfig": {"NetworkMode": "container:n5"}},
    ]));
    assert!(target_groups(&c, &[], &settings(true)).is_empty());
}

#[test]
fn sanitized_label_names_resolve_the_same_way_every_time() {
    let c = containers(json!([{
        "Id": "e", "Names": ["/e"],
        "Labels": {"a.b": "dot", "a-b": "dash", "a/b": "slash"},
        "NetworkSettings": {"Networks": {"bridge": endpoint("net-bridge", "10.0.0.1")}},
    }]));
    for _ in 0..5 {
        let got = target_groups(&c, &networks(), &settings(true));
        // Key order `a-b` < `a.b` < `a/b`: the last one wins.
        assert_eq!(
            got[0]
                .labels
                .get("__meta_docker_container_label_a_b")
                .map(String::as_str),
            Some("slash")
        );
    }
}

#[test]
fn unchanged_lists_are_not_published_again() {
    let (tx, mut rx) = watch::channel(Vec::new());
    assert!(
        publish(&tx, vec![], true),
        "the first refresh always notifies"
    );
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    let list = target_groups(&sample(), &networks(), &settings(true));
    assert!(publish(&tx, list.clone(), false));
    rx.mark_unchanged();
    assert!(!publish(&tx, list, false));
    assert!(!rx.has_changed().unwrap());
}

#[tokio::test]
async fn an_unreachable_engine_publishes_an_empty_list_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(true);
    let socket = dir.path().join("missing.sock");
    s.host = format!("unix://{}", socket.display());
    s.address = DockerHost::Unix(socket);
    s.refresh_interval = Duration::from_millis(20);
    let (tx, mut rx) = watch::channel(vec![TargetGroup::default()]);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(DockerSd::new(s, Arc::new(Metrics::new())).run(tx, shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(30), rx.changed())
        .await
        .expect("the first refresh is published within 30 s")
        .unwrap();
    assert!(rx.borrow_and_update().is_empty());
    // Later failures publish nothing.
    let again = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    assert!(again.is_err(), "a failed refresh published something");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task stops within 30 s of shutdown")
        .unwrap();
}
