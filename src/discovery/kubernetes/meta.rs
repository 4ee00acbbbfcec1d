//! Label helpers shared by every role: the `__meta_kubernetes_` prefix, Prometheus' label name
//! sanitising, the labels of an object's metadata (`addObjectMetaLabels` in Prometheus 2.55's
//! `discovery/kubernetes/kubernetes.go`), Go's port formatting and `net.JoinHostPort`, and the
//! flattening of a Prometheus group (shared labels plus per-target labels) into
//! [`TargetGroup`]s.
//!
//! Invariants: every label name produced here starts with `__meta_kubernetes_` and holds only
//! `[a-zA-Z0-9_]` after the prefix; nothing here fails or panics, whatever the object holds.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::discovery::TargetGroup;

/// The prefix of every label the Kubernetes discovery sets.
pub(crate) const META: &str = "__meta_kubernetes_";

/// A label set being built.
pub(crate) type Labels = BTreeMap<String, String>;

/// Sets `__meta_kubernetes_<name>` to `value`.
pub(crate) fn set(labels: &mut Labels, name: &str, value: impl Into<String>) {
    labels.insert(format!("{META}{name}"), value.into());
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

/// `<role>_name`, then `<role>_label_<name>` and `<role>_labelpresent_<name>` for each label
/// and `<role>_annotation_<name>` and `<role>_annotationpresent_<name>` for each annotation
/// (names sanitised), as Prometheus' `addObjectMetaLabels`.
pub(crate) fn add_object_meta_labels(labels: &mut Labels, meta: &ObjectMeta, role: &str) {
    set(
        labels,
        &format!("{role}_name"),
        meta.name.as_deref().unwrap_or_default(),
    );
    for (k, v) in meta.labels.iter().flatten() {
        let k = sanitize_label_name(k);
        set(labels, &format!("{role}_label_{k}"), v.as_str());
        set(labels, &format!("{role}_labelpresent_{k}"), "true");
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let k = sanitize_label_name(k);
        set(labels, &format!("{role}_annotation_{k}"), v.as_str());
        set(labels, &format!("{role}_annotationpresent_{k}"), "true");
    }
}

/// An `int32` port as Go's `strconv.FormatUint(uint64(port), 10)` writes it: through a
/// sign-extending conversion, so even a (never valid) negative port gives Prometheus' text.
pub(crate) fn port_unsigned(port: i32) -> String {
    (i64::from(port) as u64).to_string()
}

/// Go's `net.JoinHostPort`: an IPv6 address (any host with a `:`) is bracketed.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The namespace and name of an object (empty when the server sent none).
pub(crate) fn namespace_and_name(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// One target of a Prometheus group as a [`TargetGroup`] of its own: the group's labels
/// overlaid by the target's (a target label wins, as when Prometheus merges them before
/// relabeling).
pub(crate) fn target_group(
    address: String,
    group: &Labels,
    target: Labels,
    source: &str,
) -> TargetGroup {
    let mut labels = group.clone();
    labels.extend(target);
    TargetGroup {
        targets: vec![address],
        labels,
        source: source.to_owned(),
    }
}
