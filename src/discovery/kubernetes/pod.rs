//! The pure conversion of one Pod object into its target groups, as Prometheus 2.55's pod role
//! builds them (`discovery/kubernetes/pod.go`, `buildPod`/`podLabels`, and
//! `addObjectMetaLabels` in `kubernetes.go`).
//!
//! Invariants: a pod without an IP has no targets (so no groups); otherwise there is one
//! target per declared port of each container, or one per container without ports, regular
//! containers first, then init containers (ephemeral containers are not targets); every group
//! carries the pod-level labels plus its own container-level labels.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

use crate::discovery::TargetGroup;

/// The prefix of every label the Kubernetes discovery sets.
const META: &str = "__meta_kubernetes_";

/// The source of a pod's groups: `pod/<namespace>/<name>`, Prometheus' group source.
pub fn pod_source(namespace: &str, name: &str) -> String {
    format!("pod/{namespace}/{name}")
}

/// The target groups of `pod`, in Prometheus' target order.
///
/// Prometheus makes one group per pod holding one label set per target. [`TargetGroup`] has
/// no per-target labels, so each target becomes a group of its own with the pod's labels and
/// the target's merged (the merged set is exactly what relabeling sees in Prometheus); all
/// groups of a pod share the pod's source.
pub fn pod_groups(pod: &Pod) -> Vec<TargetGroup> {
    let meta = &pod.metadata;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let name = meta.name.as_deref().unwrap_or_default();
    let source = pod_source(namespace, name);
    let status = pod.status.as_ref();
    let pod_ip = status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default();
    if pod_ip.is_empty() {
        // Not scheduled or not started yet: Prometheus publishes the group without targets.
        return Vec::new();
    }

    let pod_labels = pod_labels(pod, namespace, name, pod_ip);
    let spec = pod.spec.as_ref();
    let regular: &[Container] = spec.map_or(&[], |s| s.containers.as_slice());
    let init: &[Container] = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let statuses: &[ContainerStatus] = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let init_statuses: &[ContainerStatus] = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();

    let mut out = Vec::new();
    let all = regular
        .iter()
        .map(|c| (c, false, statuses))
        .chain(init.iter().map(|c| (c, true, init_statuses)));
    for (container, is_init, statuses) in all {
        // An unknown status (not started yet) gives an empty id, as in Prometheus.
        let id = statuses
            .iter()
            .find(|s| s.name == container.name)
            .and_then(|s| s.container_id.clone())
            .unwrap_or_default();
        let mut labels = pod_labels.clone();
        let mut set = |k: &str, v: String| {
            labels.insert(format!("{META}{k}"), v);
        };
        set("pod_container_name", container.name.clone());
        set("pod_container_id", id);
        set(
            "pod_container_image",
            container.image.clone().unwrap_or_default(),
        );
        set("pod_container_init", is_init.to_string());
        let ports = container.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            out.push(TargetGroup {
                targets: vec![pod_ip.to_owned()],
                labels,
                source: source.clone(),
            });
            continue;
        }
        for port in ports {
            // Go formats the int32 through a uint64 conversion; kept for identical output
            // even on a (never valid) negative port.
            let number = (i64::from(port.container_port) as u64).to_string();
            let mut labels = labels.clone();
            let mut set = |k: &str, v: String| {
                labels.insert(format!("{META}{k}"), v);
            };
            set("pod_container_port_number", number.clone());
            set(
                "pod_container_port_name",
                port.name.clone().unwrap_or_default(),
            );
            set(
                "pod_container_port_protocol",
                port.protocol.clone().unwrap_or_default(),
            );
            out.push(TargetGroup {
                targets: vec![join_host_port(pod_ip, &number)],
                labels,
                source: source.clone(),
            });
        }
    }
    out
}

/// The labels shared by every target of a pod (`podLabels` plus the namespace).
fn pod_labels(pod: &Pod, namespace: &str, name: &str, pod_ip: &str) -> BTreeMap<String, String> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let mut labels = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        labels.insert(format!("{META}{k}"), v.to_owned());
    };
    set("namespace", namespace);
    set("pod_name", name);
    set("pod_ip", pod_ip);
    set("pod_ready", &pod_ready(pod));
    set(
        "pod_phase",
        status.and_then(|s| s.phase.as_deref()).unwrap_or_default(),
    );
    set(
        "pod_node_name",
        spec.and_then(|s| s.node_name.as_deref())
            .unwrap_or_default(),
    );
    set(
        "pod_host_ip",
        status
            .and_then(|s| s.host_ip.as_deref())
            .unwrap_or_default(),
    );
    set("pod_uid", meta.uid.as_deref().unwrap_or_default());
    // The first owner reference marked as controller; a kind or name left empty is not set.
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        if !owner.kind.is_empty() {
            set("pod_controller_kind", &owner.kind);
        }
        if !owner.name.is_empty() {
            set("pod_controller_name", &owner.name);
        }
    }
    for (k, v) in meta.labels.iter().flatten() {
        let k = sanitize_label_name(k);
        set(&format!("pod_label_{k}"), v);
        set(&format!("pod_labelpresent_{k}"), "true");
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let k = sanitize_label_name(k);
        set(&format!("pod_annotation_{k}"), v);
        set(&format!("pod_annotationpresent_{k}"), "true");
    }
    labels
}

/// The status of the pod's `Ready` condition in lower case, `unknown` without one.
fn pod_ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or_else(|| "unknown".to_owned(), |c| c.status.to_lowercase())
}

/// Every character outside `[a-zA-Z0-9_]` replaced by `_` (one `_` per character, not per
/// byte, as Go's regexp replacement works on runes). Prometheus' `strutil.SanitizeLabelName`.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Go's `net.JoinHostPort`: an IPv6 address (any host with a `:`) is bracketed.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
