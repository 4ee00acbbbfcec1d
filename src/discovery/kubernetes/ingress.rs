//! The pure conversion of one Ingress object (`networking.k8s.io/v1`) into its target groups,
//! as Prometheus 2.55's ingress role builds them (`discovery/kubernetes/ingress.go`,
//! `buildIngress`/`ingressLabels`, with the v1 adaptor of `ingress_adaptor.go`).
//!
//! Invariants: one target per path of each rule, rules in order and paths in order, addressed
//! by the rule's host (empty when the rule has none; no port). A rule without an `http`
//! section counts as the single path `/`, and an empty path is `/`; a rule whose `http` lists
//! no paths has no targets. The scheme is `https` when a host of any `tls` entry equals the
//! rule's host or matches it as a one-label wildcard (`*.example.com`), `http` otherwise. The
//! namespace, `ingress_class_name` (only when set) and the metadata labels are shared.

use k8s_openapi::api::networking::v1::Ingress;

use super::meta::{Labels, add_object_meta_labels, namespace_and_name, set, target_group};
use crate::discovery::TargetGroup;

/// The source of an ingress' groups: `ingress/<namespace>/<name>`.
pub fn ingress_source(namespace: &str, name: &str) -> String {
    format!("ingress/{namespace}/{name}")
}

/// The target groups of `ingress`, one per rule and path.
pub fn ingress_groups(ingress: &Ingress) -> Vec<TargetGroup> {
    let (namespace, name) = namespace_and_name(&ingress.metadata);
    let source = ingress_source(namespace, name);
    let spec = ingress.spec.as_ref();
    let mut group = Labels::new();
    set(&mut group, "namespace", namespace);
    if let Some(class) = spec.and_then(|s| s.ingress_class_name.as_deref()) {
        set(&mut group, "ingress_class_name", class);
    }
    add_object_meta_labels(&mut group, &ingress.metadata, "ingress");

    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_deref())
        .unwrap_or_default()
        .iter()
        .flat_map(|t| t.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    let mut out = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_deref()).unwrap_or_default() {
        let host = rule.host.as_deref().unwrap_or_default();
        let scheme = if tls_hosts.iter().any(|p| matches_host_pattern(p, host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<&str> = match &rule.http {
            None => vec!["/"],
            Some(http) => http
                .paths
                .iter()
                .map(|p| match p.path.as_deref() {
                    None | Some("") => "/",
                    Some(path) => path,
                })
                .collect(),
        };
        for path in paths {
            let mut target = Labels::new();
            set(&mut target, "ingress_scheme", scheme);
            set(&mut target, "ingress_host", host);
            set(&mut target, "ingress_path", path);
            out.push(target_group(host.to_owned(), &group, target, &source));
        }
    }
    out
}

/// Whether `host` equals `pattern`, or `pattern` is `*.` followed by the same labels as
/// `host` after its first one (the wildcard stands for exactly one label).
fn matches_host_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let host: Vec<&str> = host.split('.').collect();
    pattern.first() == Some(&"*") && pattern.len() == host.len() && pattern[1..] == host[1..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ingress(json: serde_json::Value) -> Ingress {
        serde_json::from_value(json).unwrap()
    }

    fn backend() -> serde_json::Value {
        serde_json::json!({"service": {"name": "web", "port": {"number": 80}}})
    }

    #[test]
    fn rules_paths_and_tls_schemes() {
        let ing = ingress(serde_json::json!({
            "metadata": {
                "name": "shop", "namespace": "prod",
                "labels": {"app": "shop"},
                "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": [
                    {"hosts": ["shop.example.com"], "secretName": "shop-tls"},
                    {"hosts": ["*.api.example.com"]}
                ],
                "rules": [
                    {"host": "shop.example.com", "http": {"paths": [
                        {"path": "/cart", "pathType": "Prefix", "backend": backend()},
                        {"path": "", "pathType": "Prefix", "backend": backend()},
                        {"pathType": "ImplementationSpecific", "backend": backend()}
                    ]}},
                    {"host": "v1.api.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend()}
                    ]}},
                    {"host": "deep.v1.api.example.com", "http": {"paths": [
                        {"path": "/x", "pathType": "Exact", "backend": backend()}
                    ]}},
                    {"host": "plain.example.com"},
                    {"http": {"paths": [{"path": "/any", "pathType": "Prefix", "backend": backend()}]}},
                    {"host": "nopaths.example.com", "http": {"paths": []}}
                ]
            }
        }));
        let groups = ingress_groups(&ing);
        let got: Vec<(&str, &str, &str)> = groups
            .iter()
            .map(|g| {
                (
                    g.targets[0].as_str(),
                    g.labels["__meta_kubernetes_ingress_scheme"].as_str(),
                    g.labels["__meta_kubernetes_ingress_path"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("shop.example.com", "https", "/cart"),
                ("shop.example.com", "https", "/"),
                ("shop.example.com", "https", "/"),
                ("v1.api.example.com", "https", "/"),
                ("deep.v1.api.example.com", "http", "/x"),
                ("plain.example.com", "http", "/"),
                ("", "http", "/any"),
            ]
        );
        for g in &groups {
            assert_eq!(g.source, "ingress/prod/shop");
            assert_eq!(
                g.labels["__meta_kubernetes_ingress_host"].as_str(),
                g.targets[0]
            );
            for (k, v) in [
                ("namespace", "prod"),
                ("ingress_name", "shop"),
                ("ingress_class_name", "nginx"),
                ("ingress_label_app", "shop"),
                ("ingress_labelpresent_app", "true"),
                (
                    "ingress_annotation_nginx_ingress_kubernetes_io_rewrite_target",
                    "/",
                ),
                (
                    "ingress_annotationpresent_nginx_ingress_kubernetes_io_rewrite_target",
                    "true",
                ),
            ] {
                assert_eq!(
                    g.labels
                        .get(&format!("__meta_kubernetes_{k}"))
                        .map(String::as_str),
                    Some(v),
                    "{k}"
                );
            }
            assert_eq!(g.labels.len(), 10, "{:?}", g.labels);
        }
    }

    #[test]
    fn no_class_no_rules() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "default-only", "namespace": "ns"},
            "spec": {"defaultBackend": backend()}
        }));
        assert!(ingress_groups(&ing).is_empty());
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"rules": [{"host": "a.example"}]}
        }));
        let g = &ingress_groups(&ing)[0];
        assert!(
            !g.labels
                .contains_key("__meta_kubernetes_ingress_class_name")
        );
    }

    #[test]
    fn host_patterns() {
        let cases = [
            ("a.example.com", "a.example.com", true),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "a.example.org", false),
            ("a.*.com", "a.example.com", false),
            ("*", "", true),
            ("*", "localhost", true),
            ("", "", true),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(
                matches_host_pattern(pattern, host),
                want,
                "{pattern} {host}"
            );
        }
    }
}
