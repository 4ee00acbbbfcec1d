//! The pure conversion of one Pod object into its target groups, as Prometheus 2.55's pod role
//! builds them (`discovery/kubernetes/pod.go`, `buildPod`/`podLabels`, and
//! `addObjectMetaLabels` in `kubernetes.go`).
//!
//! Invariants: a pod without an IP has no targets (so no groups); otherwise there is one
//! target per declared port of each container, or one per container without ports, regular
//! containers first, then init containers (ephemeral containers are not targets); every group
//! carries the pod-level labels plus its own container-level labels. `pod_labels` is
//! Prometheus' `podLabels`, which the endpoints and endpointslice roles add to the targets of
//! pods they reference.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

use super::meta::{
    Labels, add_object_meta_labels, join_host_port, namespace_and_name, port_unsigned, set,
    target_group,
};
use crate::discovery::TargetGroup;

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
    let (namespace, name) = namespace_and_name(&pod.metadata);
    let source = pod_source(namespace, name);
    let status = pod.status.as_ref();
    let pod_ip = status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default();
    if pod_ip.is_empty() {
        // Not scheduled or not started yet: Prometheus publishes the group without targets.
        return Vec::new();
    }

    let mut group = pod_labels(pod);
    set(&mut group, "namespace", namespace);
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
        let mut target = Labels::new();
        set(&mut target, "pod_container_name", container.name.as_str());
        set(&mut target, "pod_container_id", id);
        set(
            &mut target,
            "pod_container_image",
            container.image.as_deref().unwrap_or_default(),
        );
        set(&mut target, "pod_container_init", is_init.to_string());
        let ports = container.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            out.push(target_group(pod_ip.to_owned(), &group, target, &source));
            continue;
        }
        for port in ports {
            let number = port_unsigned(port.container_port);
            let mut target = target.clone();
            set(&mut target, "pod_container_port_number", number.as_str());
            set(
                &mut target,
                "pod_container_port_name",
                port.name.as_deref().unwrap_or_default(),
            );
            set(
                &mut target,
                "pod_container_port_protocol",
                port.protocol.as_deref().unwrap_or_default(),
            );
            out.push(target_group(
                join_host_port(pod_ip, &number),
                &group,
                target,
                &source,
            ));
        }
    }
    out
}

/// Prometheus' `podLabels`: the labels describing a pod (not its namespace, which the pod
/// role adds to its groups and the endpoints roles take from their own object).
pub(crate) fn pod_labels(pod: &Pod) -> Labels {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let mut labels = Labels::new();
    let l = &mut labels;
    set(
        l,
        "pod_ip",
        status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default(),
    );
    set(l, "pod_ready", pod_ready(pod));
    set(
        l,
        "pod_phase",
        status.and_then(|s| s.phase.as_deref()).unwrap_or_default(),
    );
    set(
        l,
        "pod_node_name",
        spec.and_then(|s| s.node_name.as_deref())
            .unwrap_or_default(),
    );
    set(
        l,
        "pod_host_ip",
        status
            .and_then(|s| s.host_ip.as_deref())
            .unwrap_or_default(),
    );
    set(l, "pod_uid", meta.uid.as_deref().unwrap_or_default());
    add_object_meta_labels(l, meta, "pod");
    // The first owner reference marked as controller; a kind or name left empty is not set.
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        if !owner.kind.is_empty() {
            set(l, "pod_controller_kind", owner.kind.as_str());
        }
        if !owner.name.is_empty() {
            set(l, "pod_controller_name", owner.name.as_str());
        }
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
