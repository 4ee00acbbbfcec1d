//! The pure conversion of one Service object into its target groups, as Prometheus 2.55's
//! service role builds them (`discovery/kubernetes/service.go`, `buildService`/
//! `serviceLabels`).
//!
//! Invariants: one target per port in `spec.ports`, in that order, addressed
//! `<name>.<namespace>.svc:<port>` (the cluster DNS name, never an IP); a service without
//! ports has no targets. Each target carries the port's name, number and protocol and the
//! service type; `service_cluster_ip` for every type but `ExternalName`, which gets
//! `service_external_name` instead; `service_loadbalancer_ip` for `LoadBalancer` only.
//! `service_labels` (namespace and metadata) is shared by every target and is what the
//! endpoints and endpointslice roles add for their service.

use k8s_openapi::api::core::v1::Service;

use super::meta::{
    Labels, add_object_meta_labels, join_host_port, namespace_and_name, set, target_group,
};
use crate::discovery::TargetGroup;

/// The source of a service's groups: `svc/<namespace>/<name>`.
pub fn service_source(namespace: &str, name: &str) -> String {
    format!("svc/{namespace}/{name}")
}

/// Prometheus' `serviceLabels`: the namespace and the service's metadata labels.
pub(crate) fn service_labels(svc: &Service) -> Labels {
    let mut labels = Labels::new();
    set(
        &mut labels,
        "namespace",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
    );
    add_object_meta_labels(&mut labels, &svc.metadata, "service");
    labels
}

/// The target groups of `svc`, one per port, in port order.
pub fn service_groups(svc: &Service) -> Vec<TargetGroup> {
    let (namespace, name) = namespace_and_name(&svc.metadata);
    let source = service_source(namespace, name);
    let group = service_labels(svc);
    let spec = svc.spec.as_ref();
    let kind = spec.and_then(|s| s.type_.as_deref()).unwrap_or_default();
    let host = format!("{name}.{namespace}.svc");
    let mut out = Vec::new();
    for port in spec.and_then(|s| s.ports.as_deref()).unwrap_or_default() {
        // Go's FormatInt of the int32: signed.
        let number = port.port.to_string();
        let mut target = Labels::new();
        let t = &mut target;
        set(
            t,
            "service_port_name",
            port.name.as_deref().unwrap_or_default(),
        );
        set(t, "service_port_number", number.as_str());
        set(
            t,
            "service_port_protocol",
            port.protocol.as_deref().unwrap_or_default(),
        );
        set(t, "service_type", kind);
        if kind == "ExternalName" {
            set(
                t,
                "service_external_name",
                spec.and_then(|s| s.external_name.as_deref())
                    .unwrap_or_default(),
            );
        } else {
            set(
                t,
                "service_cluster_ip",
                spec.and_then(|s| s.cluster_ip.as_deref())
                    .unwrap_or_default(),
            );
        }
        if kind == "LoadBalancer" {
            set(
                t,
                "service_loadbalancer_ip",
                spec.and_then(|s| s.load_balancer_ip.as_deref())
                    .unwrap_or_default(),
            );
        }
        out.push(target_group(
            join_host_port(&host, &number),
            &group,
            target,
            &source,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    fn get<'a>(g: &'a TargetGroup, k: &str) -> Option<&'a str> {
        g.labels
            .get(&format!("__meta_kubernetes_{k}"))
            .map(String::as_str)
    }

    #[test]
    fn one_target_per_port_with_type_specific_labels() {
        // (type, extra spec, per-type label expectations)
        type Case<'a> = (&'a str, serde_json::Value, &'a [(&'a str, Option<&'a str>)]);
        let cases: &[Case] = &[
            (
                "ClusterIP",
                serde_json::json!({"clusterIP": "10.96.0.10"}),
                &[
                    ("service_cluster_ip", Some("10.96.0.10")),
                    ("service_external_name", None),
                    ("service_loadbalancer_ip", None),
                ],
            ),
            (
                "NodePort",
                serde_json::json!({"clusterIP": "fd00:10:96::a"}),
                &[
                    ("service_cluster_ip", Some("fd00:10:96::a")),
                    ("service_loadbalancer_ip", None),
                ],
            ),
            (
                "LoadBalancer",
                serde_json::json!({"clusterIP": "10.96.0.11", "loadBalancerIP": "203.0.113.9"}),
                &[
                    ("service_cluster_ip", Some("10.96.0.11")),
                    ("service_loadbalancer_ip", Some("203.0.113.9")),
                ],
            ),
            (
                "LoadBalancer",
                serde_json::json!({"clusterIP": "10.96.0.12"}),
                &[("service_loadbalancer_ip", Some(""))],
            ),
            (
                "ExternalName",
                serde_json::json!({"externalName": "db.example.com"}),
                &[
                    ("service_external_name", Some("db.example.com")),
                    ("service_cluster_ip", None),
                ],
            ),
        ];
        for (kind, extra, want) in cases {
            let mut spec = serde_json::json!({
                "type": kind,
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"port": 9100}
                ]
            });
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let svc = service(serde_json::json!({
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": spec
            }));
            let groups = service_groups(&svc);
            let addrs: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
            assert_eq!(
                addrs,
                ["web.shop.svc:80", "web.shop.svc:53", "web.shop.svc:9100"],
                "{kind}"
            );
            assert_eq!(get(&groups[0], "service_port_name"), Some("http"));
            assert_eq!(get(&groups[1], "service_port_protocol"), Some("UDP"));
            assert_eq!(get(&groups[2], "service_port_name"), Some(""));
            assert_eq!(get(&groups[2], "service_port_protocol"), Some(""));
            assert_eq!(get(&groups[2], "service_port_number"), Some("9100"));
            for g in &groups {
                assert_eq!(get(g, "service_type"), Some(*kind));
                assert_eq!(g.source, "svc/shop/web");
                for (k, v) in *want {
                    assert_eq!(get(g, k), *v, "{kind} {k}");
                }
            }
        }
    }

    #[test]
    fn metadata_labels_and_no_ports() {
        let svc = service(serde_json::json!({
            "metadata": {
                "name": "api", "namespace": "prod",
                "labels": {"app.kubernetes.io/name": "api"},
                "annotations": {"prometheus.io/scrape": "true"}
            },
            "spec": {"clusterIP": "None", "ports": [{"port": 443, "protocol": "TCP"}]}
        }));
        let g = &service_groups(&svc)[0];
        let want = [
            ("namespace", "prod"),
            ("service_name", "api"),
            ("service_label_app_kubernetes_io_name", "api"),
            ("service_labelpresent_app_kubernetes_io_name", "true"),
            ("service_annotation_prometheus_io_scrape", "true"),
            ("service_annotationpresent_prometheus_io_scrape", "true"),
            ("service_port_name", ""),
            ("service_port_number", "443"),
            ("service_port_protocol", "TCP"),
            ("service_type", ""),
            ("service_cluster_ip", "None"),
        ];
        for (k, v) in want {
            assert_eq!(get(g, k), Some(v), "{k}");
        }
        assert_eq!(g.labels.len(), want.len(), "{:?}", g.labels);
        let portless = service(serde_json::json!({
            "metadata": {"name": "x", "namespace": "y"},
            "spec": {"type": "ClusterIP"}
        }));
        assert!(service_groups(&portless).is_empty());
    }
}
