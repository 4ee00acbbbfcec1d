//! The pure conversion of one Endpoints object (with the Service of the same name and the
//! pods its addresses reference) into its target groups, as Prometheus 2.55's endpoints role
//! builds them (`discovery/kubernetes/endpoints.go`, `buildEndpoints`), and the pod join it
//! shares with the endpointslice role.
//!
//! Invariants:
//! - Targets come subset by subset, port by port: first the subset's ready addresses
//!   (`endpoint_ready="true"`), then its not-ready ones (`"false"`), each addressed
//!   `<ip>:<port>`; a subset without ports has no targets.
//! - An address whose `targetRef` is a pod found in the watched pods gets that pod's labels
//!   (Prometheus' `podLabels`) and, when a container of the pod declares the endpoint's port,
//!   that container's name, image and port labels.
//! - For every pod so referenced that has an IP, each container port that no endpoint port of
//!   this object covered gets a target of its own (`<pod ip>:<port>`, pod and container
//!   labels, no `endpoint_*` labels), after the endpoint targets, pods in the order first
//!   referenced (Prometheus walks a Go map here, so its order varies; ours is fixed).
//! - Shared by every target: the namespace, the service's labels when a service of the same
//!   namespace and name is watched, and the endpoints object's metadata labels.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EndpointAddress, EndpointPort, Endpoints, ObjectReference, Pod,
    Service,
};

use super::meta::{
    Labels, add_object_meta_labels, join_host_port, namespace_and_name, port_unsigned, set,
    target_group,
};
use super::pod::pod_labels;
use super::service::service_labels;
use super::settings::Role;
use super::store::ObjectKey;
use crate::discovery::TargetGroup;

/// Finds a watched pod by namespace and name.
pub type PodLookup<'a, 'p> = &'a dyn Fn(&str, &str) -> Option<&'p Pod>;

/// The label Kubernetes sets on an Endpoints object it truncated to 1000 addresses.
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// The source of an endpoints object's groups: `endpoints/<namespace>/<name>`.
pub fn endpoints_source(namespace: &str, name: &str) -> String {
    format!("endpoints/{namespace}/{name}")
}

/// The objects [`endpoints_groups`] reads besides `eps`: the service of the same namespace
/// and name, and every pod an address (ready or not) references.
pub(crate) fn endpoints_dependencies(eps: &Endpoints) -> Vec<ObjectKey> {
    let (namespace, name) = namespace_and_name(&eps.metadata);
    let mut deps = vec![ObjectKey::new(Role::Service, namespace, name)];
    for subset in eps.subsets.iter().flatten() {
        let addresses = subset.addresses.iter().flatten();
        for addr in addresses.chain(subset.not_ready_addresses.iter().flatten()) {
            if let Some((ns, name)) = pod_ref(addr.target_ref.as_ref()) {
                deps.push(ObjectKey::new(Role::Pod, ns, name));
            }
        }
    }
    deps
}

/// The target groups of `eps`; `service` is the watched service of the same namespace and
/// name, `pod` finds a watched pod.
pub fn endpoints_groups(
    eps: &Endpoints,
    service: Option<&Service>,
    pod: PodLookup<'_, '_>,
) -> Vec<TargetGroup> {
    let (namespace, name) = namespace_and_name(&eps.metadata);
    let source = endpoints_source(namespace, name);
    let mut group = Labels::new();
    set(&mut group, "namespace", namespace);
    if let Some(svc) = service {
        group.extend(service_labels(svc));
    }
    add_object_meta_labels(&mut group, &eps.metadata, "endpoints");
    match eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(OVER_CAPACITY))
        .map(String::as_str)
    {
        Some("truncated") => tracing::warn!(endpoints = %source,
            "Number of endpoints in one Endpoints object exceeds 1000 and has been truncated, please use \"role: endpointslice\" instead."),
        Some("warning") => tracing::warn!(endpoints = %source,
            "Number of endpoints in one Endpoints object exceeds 1000, please use \"role: endpointslice\" instead."),
        _ => {}
    }

    let mut seen = SeenPods::default();
    let mut out = Vec::new();
    for subset in eps.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            let ready = subset.addresses.iter().flatten().map(|a| (a, "true"));
            let not_ready = subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, "false"));
            for (addr, ready) in ready.chain(not_ready) {
                let target = endpoint_target(addr, port, ready, pod, &mut seen);
                let address = join_host_port(&addr.ip, &port_unsigned(port.port));
                out.push(target_group(address, &group, target, &source));
            }
        }
    }
    seen.uncovered_targets(&group, &source, &mut out);
    out
}

/// The labels of one address and port.
fn endpoint_target<'p>(
    addr: &EndpointAddress,
    port: &EndpointPort,
    ready: &str,
    pod: PodLookup<'_, 'p>,
    seen: &mut SeenPods<'p>,
) -> Labels {
    let mut target = Labels::new();
    let t = &mut target;
    set(
        t,
        "endpoint_port_name",
        port.name.as_deref().unwrap_or_default(),
    );
    set(
        t,
        "endpoint_port_protocol",
        port.protocol.as_deref().unwrap_or_default(),
    );
    set(t, "endpoint_ready", ready);
    if let Some(r) = &addr.target_ref {
        set(
            t,
            "endpoint_address_target_kind",
            r.kind.as_deref().unwrap_or_default(),
        );
        set(
            t,
            "endpoint_address_target_name",
            r.name.as_deref().unwrap_or_default(),
        );
    }
    if let Some(node) = &addr.node_name {
        set(t, "endpoint_node_name", node.as_str());
    }
    if let Some(host) = addr.hostname.as_deref().filter(|h| !h.is_empty()) {
        set(t, "endpoint_hostname", host);
    }
    let Some(p) = pod_ref(addr.target_ref.as_ref()).and_then(|(ns, name)| pod(ns, name)) else {
        return target;
    };
    target.extend(pod_labels(p));
    if let Some((c, cport)) = container_with_port(p, port.port) {
        // Prometheus takes the number and, for Endpoints, the protocol from the endpoint port.
        container_port_labels(
            &mut target,
            c,
            cport,
            &port_unsigned(port.port),
            port.protocol.as_deref().unwrap_or_default(),
        );
    }
    seen.record(p, Some(port.port));
    target
}

/// The namespace and name a `targetRef` of kind `Pod` points at.
pub(crate) fn pod_ref(r: Option<&ObjectReference>) -> Option<(&str, &str)> {
    let r = r?;
    if r.kind.as_deref() != Some("Pod") {
        return None;
    }
    Some((
        r.namespace.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default(),
    ))
}

/// The container declaring `port` and that port, as Prometheus picks it: the first matching
/// port of a container, the last container that has one winning.
pub(crate) fn container_with_port(pod: &Pod, port: i32) -> Option<(&Container, &ContainerPort)> {
    pod.spec.as_ref()?.containers.iter().rev().find_map(|c| {
        c.ports
            .iter()
            .flatten()
            .find(|cp| cp.container_port == port)
            .map(|cp| (c, cp))
    })
}

/// The `pod_container_*` labels of a matched or uncovered container port.
pub(crate) fn container_port_labels(
    target: &mut Labels,
    c: &Container,
    cport: &ContainerPort,
    number: &str,
    protocol: &str,
) {
    set(target, "pod_container_name", c.name.as_str());
    set(
        target,
        "pod_container_image",
        c.image.as_deref().unwrap_or_default(),
    );
    set(
        target,
        "pod_container_port_name",
        cport.name.as_deref().unwrap_or_default(),
    );
    set(target, "pod_container_port_number", number);
    set(target, "pod_container_port_protocol", protocol);
}

/// The pods referenced so far, in the order first referenced, with the endpoint ports that
/// made targets for them (`None`: a port without a number, which covers nothing).
#[derive(Default)]
pub(crate) struct SeenPods<'p> {
    pods: Vec<(&'p Pod, Vec<Option<i32>>)>,
}

impl<'p> SeenPods<'p> {
    /// Notes that `pod` got a target for `port`.
    pub(crate) fn record(&mut self, pod: &'p Pod, port: Option<i32>) {
        let key = namespace_and_name(&pod.metadata);
        match self
            .pods
            .iter_mut()
            .find(|(p, _)| namespace_and_name(&p.metadata) == key)
        {
            Some((_, ports)) => ports.push(port),
            None => self.pods.push((pod, vec![port])),
        }
    }

    /// A target for every container port of a referenced pod with an IP that no recorded
    /// port covers, appended to `out`.
    pub(crate) fn uncovered_targets(
        &self,
        group: &Labels,
        source: &str,
        out: &mut Vec<TargetGroup>,
    ) {
        for (pod, covered) in &self.pods {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .unwrap_or_default();
            // The IP is empty while a pod starts or after it was evicted.
            if ip.is_empty() {
                continue;
            }
            let containers = pod.spec.as_ref().map_or(&[][..], |s| &s.containers);
            for c in containers {
                for cport in c.ports.iter().flatten() {
                    if covered.contains(&Some(cport.container_port)) {
                        continue;
                    }
                    let number = port_unsigned(cport.container_port);
                    let mut target = Labels::new();
                    container_port_labels(
                        &mut target,
                        c,
                        cport,
                        &number,
                        cport.protocol.as_deref().unwrap_or_default(),
                    );
                    target.extend(pod_labels(pod));
                    out.push(target_group(
                        join_host_port(ip, &number),
                        group,
                        target,
                        source,
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).unwrap()
    }

    /// A running pod `name` in `shop` with IP `ip`: container `app` declaring 8080 (http) and
    /// 9090 (metrics), container `sidecar` declaring 15090/UDP.
    fn web_pod(name: &str, ip: &str) -> Pod {
        from(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "app", "image": "app:1", "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                ]},
                {"name": "sidecar", "image": "side:2", "ports": [
                    {"containerPort": 15090, "protocol": "UDP"}
                ]}
            ]},
            "status": {"podIP": ip, "hostIP": "192.168.1.2", "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
    }

    fn web_service() -> Service {
        from(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80, "targetPort": 8080}]}
        }))
    }

    /// Two subsets: the first with two ports, a ready pod address, a ready address without
    /// target and a not-ready pod address; the second with an IPv6 node address.
    fn web_endpoints() -> Endpoints {
        from(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "t"}},
            "subsets": [
                {
                    "addresses": [
                        {"ip": "10.0.0.1", "nodeName": "node-a", "hostname": "web-0",
                         "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-0"}},
                        {"ip": "10.0.0.9"}
                    ],
                    "notReadyAddresses": [
                        {"ip": "10.0.0.2", "nodeName": "node-b",
                         "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-1"}}
                    ],
                    "ports": [
                        {"name": "http", "port": 8080, "protocol": "TCP"},
                        {"name": "other", "port": 7000, "protocol": "TCP"}
                    ]
                },
                {
                    "addresses": [
                        {"ip": "fd00::7", "hostname": "",
                         "targetRef": {"kind": "Node", "name": "node-c"}}
                    ],
                    "ports": [{"port": 10250, "protocol": "TCP"}]
                },
                {"addresses": [{"ip": "10.0.0.50"}]}
            ]
        }))
    }

    fn build(eps: &Endpoints, svc: Option<&Service>, pods: &[Pod]) -> Vec<TargetGroup> {
        let lookup = |ns: &str, name: &str| {
            pods.iter()
                .find(|p| namespace_and_name(&p.metadata) == (ns, name))
        };
        endpoints_groups(eps, svc, &lookup)
    }

    fn get<'a>(g: &'a TargetGroup, k: &str) -> Option<&'a str> {
        g.labels
            .get(&format!("__meta_kubernetes_{k}"))
            .map(String::as_str)
    }

    #[test]
    fn target_order_readiness_and_joined_labels() {
        let pods = [web_pod("web-0", "10.0.0.1"), web_pod("web-1", "10.0.0.2")];
        let svc = web_service();
        let groups = build(&web_endpoints(), Some(&svc), &pods);
        // (address, ready, target kind/name, container, container port number)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: Vec<Row> = groups
            .iter()
            .map(|g| {
                (
                    g.targets[0].as_str(),
                    get(g, "endpoint_ready"),
                    get(g, "endpoint_address_target_name"),
                    get(g, "pod_container_name"),
                    get(g, "pod_container_port_number"),
                )
            })
            .collect();
        let want: &[Row] = &[
            (
                "10.0.0.1:8080",
                Some("true"),
                Some("web-0"),
                Some("app"),
                Some("8080"),
            ),
            ("10.0.0.9:8080", Some("true"), None, None, None),
            (
                "10.0.0.2:8080",
                Some("false"),
                Some("web-1"),
                Some("app"),
                Some("8080"),
            ),
            // 7000 is no container's port: pod labels, no container labels.
            ("10.0.0.1:7000", Some("true"), Some("web-0"), None, None),
            ("10.0.0.9:7000", Some("true"), None, None, None),
            ("10.0.0.2:7000", Some("false"), Some("web-1"), None, None),
            ("[fd00::7]:10250", Some("true"), Some("node-c"), None, None),
            // Uncovered container ports, pod by pod in the order first referenced.
            ("10.0.0.1:9090", None, None, Some("app"), Some("9090")),
            ("10.0.0.1:15090", None, None, Some("sidecar"), Some("15090")),
            ("10.0.0.2:9090", None, None, Some("app"), Some("9090")),
            ("10.0.0.2:15090", None, None, Some("sidecar"), Some("15090")),
        ];
        assert_eq!(rows, want);
        assert!(groups.iter().all(|g| g.source == "endpoints/shop/web"));

        let first = &groups[0];
        for (k, v) in [
            ("namespace", "shop"),
            ("endpoints_name", "web"),
            ("endpoints_label_app", "web"),
            ("endpoints_labelpresent_app", "true"),
            (
                "endpoints_annotation_endpoints_kubernetes_io_last_change_trigger_time",
                "t",
            ),
            ("service_name", "web"),
            ("service_label_tier", "front"),
            ("service_labelpresent_tier", "true"),
            ("endpoint_port_name", "http"),
            ("endpoint_port_protocol", "TCP"),
            ("endpoint_node_name", "node-a"),
            ("endpoint_hostname", "web-0"),
            ("endpoint_address_target_kind", "Pod"),
            ("pod_name", "web-0"),
            ("pod_ip", "10.0.0.1"),
            ("pod_uid", "uid-web-0"),
            ("pod_ready", "true"),
            ("pod_phase", "Running"),
            ("pod_node_name", "node-a"),
            ("pod_host_ip", "192.168.1.2"),
            ("pod_label_app", "web"),
            ("pod_container_image", "app:1"),
            ("pod_container_port_name", "http"),
            ("pod_container_port_protocol", "TCP"),
        ] {
            assert_eq!(get(first, k), Some(v), "{k}");
        }
        // The pod role's per-container labels are not part of the join.
        assert_eq!(get(first, "pod_container_id"), None);
        assert_eq!(get(first, "pod_container_init"), None);
        // An address without a hostname or node gets neither label; an empty hostname neither.
        assert_eq!(get(&groups[1], "endpoint_hostname"), None);
        assert_eq!(get(&groups[1], "endpoint_node_name"), None);
        assert_eq!(get(&groups[1], "endpoint_address_target_kind"), None);
        assert_eq!(get(&groups[6], "endpoint_hostname"), None);
        assert_eq!(
            get(&groups[6], "endpoint_address_target_kind"),
            Some("Node")
        );
        assert_eq!(get(&groups[6], "endpoint_port_name"), Some(""));
        // An uncovered port has the pod's and the service's labels, no endpoint labels.
        let extra = &groups[8];
        assert_eq!(get(extra, "pod_container_port_protocol"), Some("UDP"));
        assert_eq!(get(extra, "pod_container_port_name"), Some(""));
        assert_eq!(get(extra, "service_name"), Some("web"));
        assert_eq!(get(extra, "endpoint_port_name"), None);
    }

    #[test]
    fn without_service_or_pods_only_the_endpoints_labels() {
        let groups = build(&web_endpoints(), None, &[]);
        assert_eq!(groups.len(), 7, "no pod: no uncovered ports");
        for g in &groups {
            assert_eq!(get(g, "service_name"), None);
            assert_eq!(get(g, "pod_name"), None);
            assert_eq!(get(g, "endpoints_name"), Some("web"));
        }
        // A referenced pod without an IP joins its labels but gets no extra targets.
        let mut pending = web_pod("web-0", "");
        pending.status.as_mut().unwrap().pod_ip = None;
        let groups = build(&web_endpoints(), None, &[pending]);
        assert_eq!(groups.len(), 7);
        assert_eq!(get(&groups[0], "pod_name"), Some("web-0"));
        assert_eq!(get(&groups[0], "pod_ip"), Some(""));
    }

    #[test]
    fn endpoint_protocol_is_used_for_matched_container_ports() {
        let eps: Endpoints = from(serde_json::json!({
            "metadata": {"name": "dns", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1",
                "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-0"}}],
                "ports": [{"port": 15090, "protocol": "TCP"}]}]
        }));
        let groups = build(&eps, None, &[web_pod("web-0", "10.0.0.1")]);
        assert_eq!(get(&groups[0], "pod_container_name"), Some("sidecar"));
        assert_eq!(get(&groups[0], "pod_container_port_protocol"), Some("TCP"));
        let rest: Vec<&str> = groups[1..].iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(rest, ["10.0.0.1:8080", "10.0.0.1:9090"]);
    }

    #[test]
    fn empty_endpoints_and_dependencies() {
        let eps: Endpoints = from(serde_json::json!({"metadata": {"name": "e", "namespace": "n"}}));
        assert!(build(&eps, Some(&web_service()), &[]).is_empty());
        let deps = endpoints_dependencies(&web_endpoints());
        assert_eq!(
            deps,
            [
                ObjectKey::new(Role::Service, "shop", "web"),
                ObjectKey::new(Role::Pod, "shop", "web-0"),
                ObjectKey::new(Role::Pod, "shop", "web-1"),
            ]
        );
    }
}
