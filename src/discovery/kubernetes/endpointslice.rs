//! The pure conversion of one EndpointSlice (`discovery.k8s.io/v1`, with its Service and the
//! pods its endpoints reference) into its target groups, as Prometheus 2.55's endpointslice
//! role builds them (`discovery/kubernetes/endpointslice.go`, `buildEndpointSlice`, with the
//! v1 adaptor of `endpointslice_adaptor.go`).
//!
//! Invariants:
//! - Targets come endpoint by endpoint, then port by port, then address by address; a slice
//!   without ports has no targets. The address is `<address>:<port>`, or the bare address for
//!   a port without a number.
//! - Optional fields give a label only when set (port name, protocol, number, app protocol;
//!   the endpoint's `ready`/`serving`/`terminating` conditions, hostname, node name, zone,
//!   target reference); each `deprecatedTopology` entry gives
//!   `endpointslice_endpoint_topology_<key>` and `..._topology_present_<key>`.
//! - The pod join is the endpoints role's (see [`super::endpoints`]), except that a matched
//!   container port's protocol is the container's, as in Prometheus.
//! - Shared by every target: the namespace, `endpointslice_address_type`, the slice's metadata
//!   labels, and the labels of the service named by its `kubernetes.io/service-name` label
//!   when that service is watched.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::endpoints::{PodLookup, SeenPods, container_port_labels, container_with_port, pod_ref};
use super::meta::{
    Labels, add_object_meta_labels, join_host_port, namespace_and_name, port_unsigned,
    sanitize_label_name, set, target_group,
};
use super::pod::pod_labels;
use super::service::service_labels;
use super::settings::Role;
use super::store::ObjectKey;
use crate::discovery::TargetGroup;

/// The label naming the service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The source of a slice's groups: `endpointslice/<namespace>/<name>`.
pub fn endpointslice_source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

/// The name of the service `slice` belongs to, if it says.
pub fn service_name(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)
        .map(String::as_str)
}

/// The objects [`endpointslice_groups`] reads besides `slice`: its service and every pod an
/// endpoint references.
pub(crate) fn endpointslice_dependencies(slice: &EndpointSlice) -> Vec<ObjectKey> {
    let (namespace, _) = namespace_and_name(&slice.metadata);
    let mut deps = Vec::new();
    if let Some(svc) = service_name(slice) {
        deps.push(ObjectKey::new(Role::Service, namespace, svc));
    }
    for ep in slice.endpoints.iter().flatten() {
        if let Some((ns, name)) = pod_ref(ep.target_ref.as_ref()) {
            deps.push(ObjectKey::new(Role::Pod, ns, name));
        }
    }
    deps
}

/// The target groups of `slice`; `service` is the watched service named by its
/// `kubernetes.io/service-name` label, `pod` finds a watched pod.
pub fn endpointslice_groups(
    slice: &EndpointSlice,
    service: Option<&Service>,
    pod: PodLookup<'_, '_>,
) -> Vec<TargetGroup> {
    let (namespace, name) = namespace_and_name(&slice.metadata);
    let source = endpointslice_source(namespace, name);
    let mut group = Labels::new();
    set(&mut group, "namespace", namespace);
    set(
        &mut group,
        "endpointslice_address_type",
        slice.address_type.as_str(),
    );
    add_object_meta_labels(&mut group, &slice.metadata, "endpointslice");
    if let Some(svc) = service {
        group.extend(service_labels(svc));
    }

    let mut seen = SeenPods::default();
    let mut out = Vec::new();
    let ports = slice.ports.as_deref().unwrap_or_default();
    for ep in slice.endpoints.iter().flatten() {
        for port in ports {
            for addr in &ep.addresses {
                let target = slice_target(ep, port, pod, &mut seen);
                let address = match port.port {
                    Some(p) => join_host_port(addr, &port_unsigned(p)),
                    None => addr.clone(),
                };
                out.push(target_group(address, &group, target, &source));
            }
        }
    }
    seen.uncovered_targets(&group, &source, &mut out);
    out
}

/// The labels of one endpoint and port.
fn slice_target<'p>(
    ep: &Endpoint,
    port: &EndpointPort,
    pod: PodLookup<'_, 'p>,
    seen: &mut SeenPods<'p>,
) -> Labels {
    let mut target = Labels::new();
    let t = &mut target;
    let mut opt = |name: &str, value: Option<&str>| {
        if let Some(v) = value {
            set(t, name, v);
        }
    };
    opt("endpointslice_port_name", port.name.as_deref());
    opt("endpointslice_port_protocol", port.protocol.as_deref());
    opt(
        "endpointslice_port",
        port.port.map(port_unsigned).as_deref(),
    );
    opt(
        "endpointslice_port_app_protocol",
        port.app_protocol.as_deref(),
    );
    let conditions = ep.conditions.as_ref();
    let flag = |b: Option<bool>| b.map(|b| b.to_string());
    opt(
        "endpointslice_endpoint_conditions_ready",
        flag(conditions.and_then(|c| c.ready)).as_deref(),
    );
    opt(
        "endpointslice_endpoint_conditions_serving",
        flag(conditions.and_then(|c| c.serving)).as_deref(),
    );
    opt(
        "endpointslice_endpoint_conditions_terminating",
        flag(conditions.and_then(|c| c.terminating)).as_deref(),
    );
    opt("endpointslice_endpoint_hostname", ep.hostname.as_deref());
    if let Some(r) = &ep.target_ref {
        opt(
            "endpointslice_address_target_kind",
            Some(r.kind.as_deref().unwrap_or_default()),
        );
        opt(
            "endpointslice_address_target_name",
            Some(r.name.as_deref().unwrap_or_default()),
        );
    }
    opt("endpointslice_endpoint_node_name", ep.node_name.as_deref());
    opt("endpointslice_endpoint_zone", ep.zone.as_deref());
    for (k, v) in ep.deprecated_topology.iter().flatten() {
        let k = sanitize_label_name(k);
        set(
            t,
            &format!("endpointslice_endpoint_topology_{k}"),
            v.as_str(),
        );
        set(
            t,
            &format!("endpointslice_endpoint_topology_present_{k}"),
            "true",
        );
    }

    let Some(p) = pod_ref(ep.target_ref.as_ref()).and_then(|(ns, name)| pod(ns, name)) else {
        return target;
    };
    target.extend(pod_labels(p));
    if let Some(number) = port.port
        && let Some((c, cport)) = container_with_port(p, number)
    {
        container_port_labels(
            &mut target,
            c,
            cport,
            &port_unsigned(number),
            cport.protocol.as_deref().unwrap_or_default(),
        );
    }
    seen.record(p, port.port);
    target
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).unwrap()
    }

    fn api_pod(name: &str, ip: &str) -> Pod {
        from(serde_json::json!({
            "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "api", "image": "api:3", "ports": [
                    {"name": "grpc", "containerPort": 9000, "protocol": "TCP"},
                    {"name": "admin", "containerPort": 9901}
                ]}
            ]},
            "status": {"podIP": ip, "phase": "Running"}
        }))
    }

    fn api_service() -> Service {
        from(serde_json::json!({
            "metadata": {"name": "api", "namespace": "prod", "labels": {"team": "core"}},
            "spec": {"ports": [{"port": 9000}]}
        }))
    }

    /// An IPv6 slice of service `api`: a ready pod endpoint with two addresses, a terminating
    /// pod endpoint, an endpoint without target; two ports, one with every field.
    fn api_slice() -> EndpointSlice {
        from(serde_json::json!({
            "metadata": {"name": "api-x7k2p", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "api",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv6",
            "endpoints": [
                {"addresses": ["fd00::1", "fd00::11"],
                 "conditions": {"ready": true, "serving": true, "terminating": false},
                 "hostname": "api-0", "nodeName": "node-a", "zone": "eu-west-1a",
                 "deprecatedTopology": {"topology.kubernetes.io/region": "eu-west-1"},
                 "targetRef": {"kind": "Pod", "namespace": "prod", "name": "api-0"}},
                {"addresses": ["fd00::2"],
                 "conditions": {"ready": false, "serving": false, "terminating": true},
                 "targetRef": {"kind": "Pod", "namespace": "prod", "name": "api-1"}},
                {"addresses": ["fd00::3"]}
            ],
            "ports": [
                {"name": "grpc", "port": 9000, "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"},
                {"name": "all"}
            ]
        }))
    }

    fn build(slice: &EndpointSlice, svc: Option<&Service>, pods: &[Pod]) -> Vec<TargetGroup> {
        let lookup = |ns: &str, name: &str| {
            pods.iter()
                .find(|p| namespace_and_name(&p.metadata) == (ns, name))
        };
        endpointslice_groups(slice, svc, &lookup)
    }

    fn get<'a>(g: &'a TargetGroup, k: &str) -> Option<&'a str> {
        g.labels
            .get(&format!("__meta_kubernetes_{k}"))
            .map(String::as_str)
    }

    #[test]
    fn target_order_conditions_and_optional_labels() {
        let pods = [api_pod("api-0", "fd00::1"), api_pod("api-1", "fd00::2")];
        let svc = api_service();
        let groups = build(&api_slice(), Some(&svc), &pods);
        let rows: Vec<(&str, Option<&str>, Option<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.targets[0].as_str(),
                    get(g, "endpointslice_endpoint_conditions_ready"),
                    get(g, "pod_container_port_name"),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("[fd00::1]:9000", Some("true"), Some("grpc")),
                ("[fd00::11]:9000", Some("true"), Some("grpc")),
                ("fd00::1", Some("true"), None),
                ("fd00::11", Some("true"), None),
                ("[fd00::2]:9000", Some("false"), Some("grpc")),
                ("fd00::2", Some("false"), None),
                ("[fd00::3]:9000", None, None),
                ("fd00::3", None, None),
                // Uncovered ports: 9901 of each pod (a numberless port covers nothing).
                ("[fd00::1]:9901", None, Some("admin")),
                ("[fd00::2]:9901", None, Some("admin")),
            ]
        );
        assert!(
            groups
                .iter()
                .all(|g| g.source == "endpointslice/prod/api-x7k2p")
        );

        let first = &groups[0];
        for (k, v) in [
            ("namespace", "prod"),
            ("endpointslice_address_type", "IPv6"),
            ("endpointslice_name", "api-x7k2p"),
            ("endpointslice_label_kubernetes_io_service_name", "api"),
            (
                "endpointslice_labelpresent_kubernetes_io_service_name",
                "true",
            ),
            ("service_name", "api"),
            ("service_label_team", "core"),
            ("endpointslice_port_name", "grpc"),
            ("endpointslice_port_protocol", "TCP"),
            ("endpointslice_port", "9000"),
            ("endpointslice_port_app_protocol", "kubernetes.io/h2c"),
            ("endpointslice_endpoint_conditions_serving", "true"),
            ("endpointslice_endpoint_conditions_terminating", "false"),
            ("endpointslice_endpoint_hostname", "api-0"),
            ("endpointslice_endpoint_node_name", "node-a"),
            ("endpointslice_endpoint_zone", "eu-west-1a"),
            (
                "endpointslice_endpoint_topology_topology_kubernetes_io_region",
                "eu-west-1",
            ),
            (
                "endpointslice_endpoint_topology_present_topology_kubernetes_io_region",
                "true",
            ),
            ("endpointslice_address_target_kind", "Pod"),
            ("endpointslice_address_target_name", "api-0"),
            ("pod_name", "api-0"),
            ("pod_container_name", "api"),
            ("pod_container_image", "api:3"),
            ("pod_container_port_number", "9000"),
            ("pod_container_port_protocol", "TCP"),
        ] {
            assert_eq!(get(first, k), Some(v), "{k}");
        }
        // The numberless port: no number, protocol or app protocol labels.
        let bare = &groups[2];
        assert_eq!(get(bare, "endpointslice_port_name"), Some("all"));
        for k in [
            "endpointslice_port",
            "endpointslice_port_protocol",
            "endpointslice_port_app_protocol",
        ] {
            assert_eq!(get(bare, k), None, "{k}");
        }
        // The endpoint without conditions, target, hostname, node or zone.
        let plain = &groups[6];
        for k in [
            "endpointslice_endpoint_conditions_serving",
            "endpointslice_endpoint_hostname",
            "endpointslice_endpoint_node_name",
            "endpointslice_endpoint_zone",
            "endpointslice_address_target_kind",
            "pod_name",
        ] {
            assert_eq!(get(plain, k), None, "{k}");
        }
        // A matched container port's protocol is the container's (empty here), not the port's.
        let admin_slice: EndpointSlice = from(serde_json::json!({
            "metadata": {"name": "s", "namespace": "prod"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"],
                           "targetRef": {"kind": "Pod", "namespace": "prod", "name": "api-0"}}],
            "ports": [{"port": 9901, "protocol": "TCP"}]
        }));
        assert_eq!(service_name(&admin_slice), None);
        let groups = build(&admin_slice, None, &pods);
        assert_eq!(get(&groups[0], "pod_container_port_protocol"), Some(""));
        assert_eq!(get(&groups[0], "endpointslice_port_protocol"), Some("TCP"));
        assert_eq!(groups.len(), 2, "9000 uncovered");
    }

    #[test]
    fn no_ports_no_targets_and_dependencies() {
        let mut slice = api_slice();
        slice.ports = None;
        assert!(build(&slice, None, &[]).is_empty());
        assert_eq!(service_name(&api_slice()), Some("api"));
        assert_eq!(
            endpointslice_dependencies(&api_slice()),
            [
                ObjectKey::new(Role::Service, "prod", "api"),
                ObjectKey::new(Role::Pod, "prod", "api-0"),
                ObjectKey::new(Role::Pod, "prod", "api-1"),
            ]
        );
    }
}
