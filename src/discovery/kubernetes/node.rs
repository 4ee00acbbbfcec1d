//! The pure conversion of one Node object into its target group, as Prometheus 2.55's node
//! role builds it (`discovery/kubernetes/node.go`, `buildNode`/`nodeLabels`/`nodeAddress`).
//!
//! Invariants: a node has exactly one target, `<address>:<kubelet port>`, where the address
//! is the first of the node's addresses of the most preferred type (`InternalIP`,
//! `InternalDNS`, `ExternalIP`, `ExternalDNS`, `LegacyHostIP`, `Hostname`) and the port is
//! `status.daemonEndpoints.kubeletEndpoint.port` (0 when absent, as in Prometheus); a node
//! with no address of those types has no target (Prometheus logs it and publishes nothing
//! for it either). The target carries `instance` = the node's name and
//! `__meta_kubernetes_node_address_<type>` = the first address of every type the node lists;
//! the node's metadata labels and `__meta_kubernetes_node_provider_id` are shared.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use super::meta::{
    Labels, add_object_meta_labels, join_host_port, sanitize_label_name, set, target_group,
};
use crate::discovery::TargetGroup;

/// The address types in Prometheus' order of preference (from Kubernetes'
/// `pkg/util/node`).
const PREFERENCE: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// The source of a node's group: `node/<name>`.
pub fn node_source(name: &str) -> String {
    format!("node/{name}")
}

/// The target group of `node` (none when it has no usable address).
pub fn node_groups(node: &Node) -> Vec<TargetGroup> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let status = node.status.as_ref();
    // The first address of each type, in the order the node lists them.
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for a in status
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default()
    {
        by_type
            .entry(a.type_.as_str())
            .or_insert(a.address.as_str());
    }
    let Some(address) = PREFERENCE.iter().find_map(|t| by_type.get(t)) else {
        tracing::warn!(
            node = name,
            "No node address found; the node has no target."
        );
        return Vec::new();
    };
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |k| k.port);

    let mut group = Labels::new();
    set(
        &mut group,
        "node_provider_id",
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .unwrap_or_default(),
    );
    add_object_meta_labels(&mut group, &node.metadata, "node");

    let mut target = Labels::new();
    target.insert("instance".to_owned(), name.to_owned());
    for (ty, a) in &by_type {
        set(
            &mut target,
            &format!("node_address_{}", sanitize_label_name(ty)),
            *a,
        );
    }
    vec![target_group(
        join_host_port(address, &port.to_string()),
        &group,
        target,
        &node_source(name),
    )]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).unwrap()
    }

    fn get<'a>(g: &'a TargetGroup, k: &str) -> Option<&'a str> {
        g.labels.get(k).map(String::as_str)
    }

    /// A node with `addresses` (type, address) and the kubelet on 10250.
    fn with_addresses(addresses: &[(&str, &str)]) -> Node {
        let addresses: Vec<serde_json::Value> = addresses
            .iter()
            .map(|(t, a)| serde_json::json!({"type": t, "address": a}))
            .collect();
        node(serde_json::json!({
            "metadata": {"name": "worker-1"},
            "status": {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
        }))
    }

    #[test]
    fn address_follows_prometheus_preference_order() {
        // (the node's addresses as (type, address), the expected target)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[
                    ("Hostname", "worker-1"),
                    ("ExternalIP", "203.0.113.7"),
                    ("InternalIP", "10.0.0.5"),
                    ("InternalIP", "10.0.0.6"),
                ],
                Some("10.0.0.5:10250"),
            ),
            (
                &[("Hostname", "worker-1"), ("InternalDNS", "w1.internal")],
                Some("w1.internal:10250"),
            ),
            (
                &[
                    ("ExternalDNS", "w1.example.com"),
                    ("ExternalIP", "203.0.113.7"),
                ],
                Some("203.0.113.7:10250"),
            ),
            (
                &[("Hostname", "worker-1"), ("ExternalDNS", "w1.example.com")],
                Some("w1.example.com:10250"),
            ),
            (
                &[("Hostname", "worker-1"), ("LegacyHostIP", "192.0.2.1")],
                Some("192.0.2.1:10250"),
            ),
            (&[("Hostname", "worker-1")], Some("worker-1:10250")),
            (&[("InternalIP", "fd00::5")], Some("[fd00::5]:10250")),
            (&[("SomethingElse", "x")], None),
            (&[], None),
        ];
        for (addresses, want) in cases {
            let groups = node_groups(&with_addresses(addresses));
            let got = groups.first().map(|g| g.targets[0].as_str());
            assert_eq!(got, *want, "{addresses:?}");
            assert!(groups.len() <= 1);
        }
    }

    #[test]
    fn labels_of_a_realistic_node() {
        let n = node(serde_json::json!({
            "metadata": {
                "name": "ip-10-0-0-5.ec2.internal",
                "labels": {"kubernetes.io/hostname": "ip-10-0-0-5", "node-role.kubernetes.io/worker": ""},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"}
            },
            "spec": {"providerID": "aws:///eu-west-1a/i-0abc"},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "10.0.0.5"},
                    {"type": "InternalIP", "address": "fd00::5"},
                    {"type": "Hostname", "address": "ip-10-0-0-5.ec2.internal"},
                    {"type": "InternalDNS", "address": "ip-10-0-0-5.ec2.internal"}
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
            }
        }));
        let groups = node_groups(&n);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.targets, ["10.0.0.5:10250"]);
        assert_eq!(g.source, "node/ip-10-0-0-5.ec2.internal");
        let want = [
            ("instance", "ip-10-0-0-5.ec2.internal"),
            ("__meta_kubernetes_node_name", "ip-10-0-0-5.ec2.internal"),
            (
                "__meta_kubernetes_node_provider_id",
                "aws:///eu-west-1a/i-0abc",
            ),
            ("__meta_kubernetes_node_address_InternalIP", "10.0.0.5"),
            (
                "__meta_kubernetes_node_address_Hostname",
                "ip-10-0-0-5.ec2.internal",
            ),
            (
                "__meta_kubernetes_node_address_InternalDNS",
                "ip-10-0-0-5.ec2.internal",
            ),
            (
                "__meta_kubernetes_node_label_kubernetes_io_hostname",
                "ip-10-0-0-5",
            ),
            (
                "__meta_kubernetes_node_labelpresent_kubernetes_io_hostname",
                "true",
            ),
            (
                "__meta_kubernetes_node_label_node_role_kubernetes_io_worker",
                "",
            ),
            (
                "__meta_kubernetes_node_labelpresent_node_role_kubernetes_io_worker",
                "true",
            ),
            (
                "__meta_kubernetes_node_annotation_node_alpha_kubernetes_io_ttl",
                "0",
            ),
            (
                "__meta_kubernetes_node_annotationpresent_node_alpha_kubernetes_io_ttl",
                "true",
            ),
        ];
        for (k, v) in want {
            assert_eq!(get(g, k), Some(v), "{k}");
        }
        assert_eq!(
            g.labels.len(),
            want.len(),
            "no other labels: {:?}",
            g.labels
        );
    }

    #[test]
    fn missing_kubelet_endpoint_and_provider_give_port_0_and_empty_id() {
        let n = node(serde_json::json!({
            "metadata": {"name": "bare"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]}
        }));
        let g = &node_groups(&n)[0];
        assert_eq!(g.targets, ["10.0.0.9:0"]);
        assert_eq!(get(g, "__meta_kubernetes_node_provider_id"), Some(""));
        let nameless = node(serde_json::json!({"metadata": {}}));
        assert!(node_groups(&nameless).is_empty());
    }
}
