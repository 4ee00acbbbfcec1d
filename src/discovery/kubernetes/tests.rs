#![allow(clippy::unwrap_used)]

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use super::store::{Object, State};
use super::*;

fn pod(json: serde_json::Value) -> Pod {
    serde_json::from_value(json).unwrap()
}

fn web_pod() -> Pod {
    pod(serde_json::json!({
        "metadata": {
            "name": "web-1", "namespace": "shop", "uid": "uid-1",
            "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
            "annotations": {"prometheus.io/scrape": "true", "ünï": "x"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "a"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "b", "controller": true}
            ]
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [
                {"name": "app", "image": "app:1", "ports": [
                    {"containerPort": 8080, "name": "http", "protocol": "TCP"},
                    {"containerPort": 9090, "protocol": "UDP"}
                ]},
                {"name": "sidecar", "image": "side:2"}
            ],
            "initContainers": [{"name": "setup", "image": "init:3"}]
        },
        "status": {
            "podIP": "10.0.0.7", "hostIP": "192.168.1.2", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "containerID": "containerd://aaa", "image": "", "imageID": "", "ready": true, "restartCount": 0},
                {"name": "sidecar", "image": "", "imageID": "", "ready": true, "restartCount": 0}
            ],
            "initContainerStatuses": [
                {"name": "setup", "containerID": "containerd://iii", "image": "", "imageID": "", "ready": false, "restartCount": 0}
            ]
        }
    }))
}

fn get<'a>(g: &'a TargetGroup, k: &str) -> Option<&'a str> {
    g.labels
        .get(&format!("__meta_kubernetes_{k}"))
        .map(String::as_str)
}

#[test]
fn one_target_per_port_or_container_then_init_containers() {
    let groups = pod_groups(&web_pod());
    let addrs: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(
        addrs,
        ["10.0.0.7:8080", "10.0.0.7:9090", "10.0.0.7", "10.0.0.7"]
    );
    assert!(groups.iter().all(|g| g.targets.len() == 1));
    assert!(groups.iter().all(|g| g.source == "pod/shop/web-1"));

    let http = &groups[0];
    assert_eq!(get(http, "pod_container_name"), Some("app"));
    assert_eq!(get(http, "pod_container_id"), Some("containerd://aaa"));
    assert_eq!(get(http, "pod_container_image"), Some("app:1"));
    assert_eq!(get(http, "pod_container_init"), Some("false"));
    assert_eq!(get(http, "pod_container_port_name"), Some("http"));
    assert_eq!(get(http, "pod_container_port_number"), Some("8080"));
    assert_eq!(get(http, "pod_container_port_protocol"), Some("TCP"));
    assert_eq!(get(&groups[1], "pod_container_port_name"), Some(""));
    assert_eq!(get(&groups[1], "pod_container_port_protocol"), Some("UDP"));

    let sidecar = &groups[2];
    assert_eq!(get(sidecar, "pod_container_name"), Some("sidecar"));
    assert_eq!(
        get(sidecar, "pod_container_id"),
        Some(""),
        "no id in its status"
    );
    assert_eq!(get(sidecar, "pod_container_port_number"), None);

    let init = &groups[3];
    assert_eq!(get(init, "pod_container_name"), Some("setup"));
    assert_eq!(get(init, "pod_container_init"), Some("true"));
    assert_eq!(get(init, "pod_container_id"), Some("containerd://iii"));

    for g in &groups {
        assert_eq!(get(g, "namespace"), Some("shop"));
        assert_eq!(get(g, "pod_name"), Some("web-1"));
        assert_eq!(get(g, "pod_ip"), Some("10.0.0.7"));
        assert_eq!(get(g, "pod_uid"), Some("uid-1"));
        assert_eq!(get(g, "pod_node_name"), Some("node-a"));
        assert_eq!(get(g, "pod_host_ip"), Some("192.168.1.2"));
        assert_eq!(get(g, "pod_ready"), Some("true"));
        assert_eq!(get(g, "pod_phase"), Some("Running"));
        assert_eq!(get(g, "pod_controller_kind"), Some("ReplicaSet"));
        assert_eq!(get(g, "pod_controller_name"), Some("web-abc"));
    }
}

#[test]
fn labels_and_annotations_are_sanitised_with_presence_labels() {
    let g = &pod_groups(&web_pod())[0];
    assert_eq!(get(g, "pod_label_app_kubernetes_io_name"), Some("web"));
    assert_eq!(
        get(g, "pod_labelpresent_app_kubernetes_io_name"),
        Some("true")
    );
    assert_eq!(get(g, "pod_label_tier"), Some("front"));
    assert_eq!(get(g, "pod_annotation_prometheus_io_scrape"), Some("true"));
    assert_eq!(
        get(g, "pod_annotationpresent_prometheus_io_scrape"),
        Some("true")
    );
    // One `_` per character, not per UTF-8 byte.
    assert_eq!(get(g, "pod_annotation__n_"), Some("x"));
    assert_eq!(sanitize_label_name("a.b/c-d_E9"), "a_b_c_d_E9");
    assert!(
        g.labels
            .keys()
            .all(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    );
}

#[test]
fn static_pod_has_config_hash_annotation_and_no_controller() {
    let p = pod(serde_json::json!({
        "metadata": {
            "name": "kube-apiserver-node-a", "namespace": "kube-system", "uid": "mirror-uid",
            "annotations": {"kubernetes.io/config.hash": "0123abcd", "kubernetes.io/config.mirror": "0123abcd"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "n", "controller": true}]
        },
        "spec": {"nodeName": "node-a", "containers": [{"name": "kube-apiserver", "image": "k8s/apiserver"}]},
        "status": {"podIP": "192.168.1.2", "phase": "Running"}
    }));
    let groups = pod_groups(&p);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.targets, ["192.168.1.2"]);
    assert_eq!(
        get(g, "pod_annotation_kubernetes_io_config_hash"),
        Some("0123abcd")
    );
    assert_eq!(get(g, "pod_controller_kind"), Some("Node"));
    assert_eq!(get(g, "pod_ready"), Some("unknown"), "no Ready condition");
    assert_eq!(get(g, "pod_container_id"), Some(""));
}

#[test]
fn pod_without_ip_has_no_targets_and_ipv6_is_bracketed() {
    let pending = pod(serde_json::json!({
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Pending"}
    }));
    assert!(pod_groups(&pending).is_empty());
    let v6 = pod(serde_json::json!({
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        "status": {"podIP": "fd00::1"}
    }));
    assert_eq!(pod_groups(&v6)[0].targets, ["[fd00::1]:80"]);
}

fn parse(yaml: &str) -> Result<KubernetesSdSettings, String> {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    settings_from_yaml(&v, "node-a")
}

fn err(yaml: &str) -> String {
    parse(yaml).unwrap_err()
}

#[test]
fn minimal_pod_config_gets_the_node_filter() {
    let s = parse("role: pod").unwrap();
    assert_eq!(s.role, Role::Pod);
    assert_eq!(
        s.selector(Role::Pod).field.as_deref(),
        Some("spec.nodeName=node-a")
    );
    assert_eq!(s.selector(Role::Pod).label, None);
    assert_eq!(s.api_server, None);
    assert!(s.namespaces.is_empty());
    assert_eq!(s.host, "node-a");
}

#[test]
fn node_filter_is_appended_as_promtail_does() {
    let s = parse(
        "role: pod\nselectors: [{role: pod, field: 'status.phase=Running', label: 'app=web'}]",
    )
    .unwrap();
    let field = |s: &KubernetesSdSettings| s.selector(Role::Pod).field.unwrap();
    assert_eq!(field(&s), "status.phase=Running,spec.nodeName=node-a");
    assert_eq!(s.selector(Role::Pod).label.as_deref(), Some("app=web"));
    let s = parse("role: pod\nselectors: [{role: pod, field: 'spec.nodeName=node-a'}]").unwrap();
    assert_eq!(field(&s), "spec.nodeName=node-a");
    let s = parse("role: pod\nselectors: [{role: pod, label: 'app'}]").unwrap();
    assert_eq!(field(&s), "spec.nodeName=node-a");
}

#[test]
fn full_api_server_config() {
    let s = parse(
        "role: pod
api_server: https://k8s.example:6443
namespaces: {names: [a, b]}
bearer_token_file: /var/run/token
tls_config: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem, insecure_skip_verify: true}
follow_redirects: true
enable_http2: true
",
    )
    .unwrap();
    assert_eq!(s.api_server.as_deref(), Some("https://k8s.example:6443"));
    assert_eq!(s.namespaces, ["a", "b"]);
    assert_eq!(
        s.bearer_token_file.as_deref(),
        Some(Path::new("/var/run/token"))
    );
    assert_eq!(s.tls.ca_file.as_deref(), Some(Path::new("/ca.pem")));
    assert!(s.tls.insecure_skip_verify);
    let s = parse("role: pod\napi_server: http://x\nbasic_auth: {username: u, password: secretpw}")
        .unwrap();
    assert_eq!(s.basic_auth.as_ref().unwrap().username, "u");
    assert!(
        !format!("{s:?}").contains("secretpw"),
        "passwords are masked in Debug"
    );
    let s = parse("role: pod\napi_server: http://x\nauthorization: {credentials: tok}").unwrap();
    assert_eq!(s.bearer_token.as_deref(), Some("tok"));
}

#[test]
fn settings_errors() {
    let cases: &[(&str, &str)] = &[
        ("api_server: http://x", "role missing"),
        ("role: nope", "role: unknown Kubernetes SD role \"nope\""),
        ("role: ''", "role missing"),
        (
            "role: Pod",
            "role: unknown Kubernetes SD role \"Pod\" (expected one of: pod, service, endpoints, endpointslice, node, ingress)",
        ),
        ("role: pod\nfoo: 1", "unknown field `foo`"),
        ("role: pod\nnamespaces: {bar: 1}", "unknown field `bar`"),
        (
            "role: pod\nselectors: [{role: pod, x: 1}]",
            "unknown field `x`",
        ),
        (
            "role: pod\napi_server: http://x\nkubeconfig_file: /k",
            "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
        ),
        (
            "role: pod\nkubeconfig_file: /k\nbearer_token: t",
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
        ),
        (
            "role: pod\nbearer_token: t",
            "please provide the 'api_server' URL explicitly",
        ),
        (
            "role: pod\napi_server: http://x\nnamespaces: {own_namespace: true}",
            "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
        ),
        (
            "role: pod\nkubeconfig_file: /k\nnamespaces: {own_namespace: true}",
            "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
        ),
        (
            "role: pod\nselectors: [{role: pod}, {role: pod}]",
            "duplicated selector role: pod",
        ),
        (
            "role: pod\nselectors: [{role: service}]",
            "pod role supports only pod selectors",
        ),
        (
            "role: pod\nselectors: [{label: a}]",
            "pod role supports only pod selectors",
        ),
        (
            "role: endpoints\nselectors: [{role: node}]",
            "endpoints role supports only pod, service, endpoints selectors",
        ),
        (
            "role: endpointslice\nselectors: [{role: endpoints}]",
            "endpointslice role supports only pod, service, endpointslice selectors",
        ),
        (
            "role: node\nselectors: [{role: pod}]",
            "node role supports only node selectors",
        ),
        (
            "role: service\nselectors: [{role: endpoints}]",
            "service role supports only service selectors",
        ),
        (
            "role: ingress\nselectors: [{role: service}]",
            "ingress role supports only ingress selectors",
        ),
        (
            "role: endpoints\nselectors: [{role: pod}, {role: service}, {role: pod}]",
            "duplicated selector role: pod",
        ),
        (
            "role: endpoints\nselectors: [{role: endpoints, field: 'x'}]",
            "can't understand 'x'",
        ),
        (
            "role: pod\nselectors: [{role: pod}, {role: bogus}]",
            "selectors[1].role: unknown Kubernetes SD role \"bogus\"",
        ),
        (
            "role: node\nattach_metadata: {node: true}",
            "attach_metadata.node is not supported yet",
        ),
        (
            "role: pod\nselectors: [{role: pod, field: 'nonsense'}]",
            "can't understand 'nonsense'",
        ),
        (
            "role: pod\nselectors: [{role: pod, label: 'app in (a'}]",
            "unable to parse label selector",
        ),
        (
            "role: pod\nselectors: [{role: pod, label: 'a=b c'}]",
            "unable to parse label selector",
        ),
        (
            "role: pod\napi_server: http://x\nbearer_token: a\nbearer_token_file: b",
            "at most one of bearer_token & bearer_token_file",
        ),
        (
            "role: pod\napi_server: http://x\nbearer_token: a\nbasic_auth: {username: u}",
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file",
        ),
        (
            "role: pod\napi_server: http://x\nauthorization: {type: basic}",
            "use \"basic_auth\" instead",
        ),
        (
            "role: pod\napi_server: http://x\ntls_config: {cert_file: /c}",
            "exactly one of key or key_file",
        ),
        (
            "role: pod\napi_server: http://x\noauth2: {client_id: a, token_url: b}",
            "oauth2 is not supported yet",
        ),
        (
            "role: pod\nattach_metadata: {node: true}",
            "attach_metadata.node is not supported yet",
        ),
        (
            "role: pod\napi_server: 'not a url'",
            "invalid api_server URL",
        ),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(e.contains(want), "{yaml:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn selector_syntax() {
    for ok in [
        "",
        "a=b",
        "a==b,c!=d",
        "spec.nodeName=x,status.phase!=Failed",
        "a=b\\,c",
    ] {
        selector::check_field_selector(ok).unwrap();
    }
    for bad in ["a", "a=b\\x", "a=b=c"] {
        assert!(selector::check_field_selector(bad).is_err(), "{bad:?}");
    }
    for ok in [
        "",
        "app",
        "!app",
        "app=web",
        "app==web, tier!=db",
        "env in (prod, staging)",
        "env notin (dev)",
        "x>3",
        "app.kubernetes.io/name=web",
        "a=",
    ] {
        selector::check_label_selector(ok).unwrap();
    }
    for bad in ["=x", "x>y", "a b", "a,", "-bad=x", "a=-x-"] {
        assert!(selector::check_label_selector(bad).is_err(), "{bad:?}");
    }
}

fn pod_object(name: &str, labels: serde_json::Value) -> Object {
    Object::Pod(Box::new(pod(serde_json::json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}, {"containerPort": 9000}]}]},
        "status": {"podIP": "10.0.0.1"}
    }))))
}

#[test]
fn relist_replaces_a_streams_objects_and_groups_are_sorted() {
    let mk = |name: &str| pod_object(name, serde_json::json!({}));
    let mut state = State::new(Role::Pod, 1);
    assert!(!state.apply(0, Event::Init));
    assert!(!state.apply(0, Event::InitApply(mk("b"))));
    assert!(!state.apply(0, Event::InitApply(mk("a"))));
    assert!(!state.all_listed());
    assert!(state.apply(0, Event::InitDone));
    assert!(state.all_listed());
    let sources: Vec<String> = state.groups().into_iter().map(|g| g.source).collect();
    assert_eq!(sources, ["pod/ns/a", "pod/ns/a", "pod/ns/b", "pod/ns/b"]);
    assert!(state.apply(0, Event::Delete(mk("a"))));
    assert_eq!(state.groups().len(), 2);
    assert!(
        !state.apply(0, Event::Apply(mk("b"))),
        "an unchanged object changes nothing"
    );
    assert!(!state.apply(0, Event::Delete(mk("zz"))), "unknown object");
    // A pod without an IP has no groups: adding it changes nothing published.
    let mut pending = pod_object("pending", serde_json::json!({}));
    if let Object::Pod(p) = &mut pending {
        p.status = None;
    }
    assert!(!state.apply(0, Event::Apply(pending.clone())));
    assert!(!state.apply(0, Event::Delete(pending)));
    // A relist without `b` drops it.
    state.apply(0, Event::Init);
    state.apply(0, Event::InitApply(mk("c")));
    state.apply(0, Event::InitDone);
    let sources: Vec<String> = state.groups().into_iter().map(|g| g.source).collect();
    assert_eq!(sources, ["pod/ns/c", "pod/ns/c"]);
}

#[test]
fn sources_sort_as_strings_across_namespaces() {
    let svc = |ns: &str| {
        Object::Service(Box::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "x", "namespace": ns},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        ))
    };
    let mut state = State::new(Role::Service, 2);
    for (i, ns) in [(0, "a"), (1, "a-b")] {
        state.apply(i, Event::Init);
        state.apply(i, Event::InitApply(svc(ns)));
        assert!(state.apply(i, Event::InitDone));
    }
    let sources: Vec<String> = state.groups().into_iter().map(|g| g.source).collect();
    // '-' sorts before '/': the order of the source strings, not of (namespace, name).
    assert_eq!(sources, ["svc/a-b/x", "svc/a/x"]);
}

/// Endpoints `web` in `ns` with one ready address pointing at pod `p`, port 8080.
fn endpoints_object() -> Object {
    Object::Endpoints(Box::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1",
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "p"}}],
                "ports": [{"port": 8080, "protocol": "TCP"}]}]
        }))
        .unwrap(),
    ))
}

fn service_object(label: &str) -> Object {
    Object::Service(Box::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"tier": label}}
        }))
        .unwrap(),
    ))
}

#[test]
fn endpoints_follow_the_pods_and_services_they_read() {
    // Streams: 0 pods, 1 services, 2 endpoints (the order of Role::watched_kinds).
    let mut state = State::new(Role::Endpoints, 3);
    for i in [0, 1] {
        state.apply(i, Event::Init);
        assert!(state.apply(i, Event::InitDone));
    }
    assert!(!state.all_listed());
    state.apply(2, Event::Init);
    state.apply(2, Event::InitApply(endpoints_object()));
    assert!(state.apply(2, Event::InitDone));
    assert!(state.all_listed());
    let label = |state: &State, k: &str| -> Vec<Option<String>> {
        state
            .groups()
            .iter()
            .map(|g| g.labels.get(&format!("__meta_kubernetes_{k}")).cloned())
            .collect()
    };
    assert_eq!(
        label(&state, "pod_name"),
        [None],
        "the pod is not known yet"
    );

    // The pod arrives: the endpoints target gets its labels, and the uncovered port 9000 its
    // own target.
    assert!(state.apply(
        0,
        Event::Apply(pod_object("p", serde_json::json!({"v": "1"})))
    ));
    assert_eq!(
        label(&state, "pod_label_v"),
        [Some("1".to_owned()), Some("1".to_owned())]
    );
    let addrs: Vec<String> = state
        .groups()
        .into_iter()
        .map(|g| g.targets[0].clone())
        .collect();
    assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.1:9000"]);
    // The pod changes: its labels follow at once.
    assert!(state.apply(
        0,
        Event::Apply(pod_object("p", serde_json::json!({"v": "2"})))
    ));
    assert_eq!(label(&state, "pod_label_v")[0].as_deref(), Some("2"));
    // The service comes and goes.
    assert!(state.apply(1, Event::Apply(service_object("front"))));
    assert_eq!(
        label(&state, "service_label_tier")[0].as_deref(),
        Some("front")
    );
    assert!(state.apply(1, Event::Delete(service_object("front"))));
    assert_eq!(label(&state, "service_label_tier")[0], None);
    // A pod no endpoints object reads changes nothing published.
    assert!(!state.apply(0, Event::Apply(pod_object("other", serde_json::json!({})))));
    assert_eq!(state.groups().len(), 2);
    // A change of the pod that does not change the targets neither (here: its resourceVersion).
    let Object::Pod(mut p) = pod_object("p", serde_json::json!({"v": "2"})) else {
        unreachable!()
    };
    p.metadata.resource_version = Some("99".into());
    assert!(!state.apply(0, Event::Apply(Object::Pod(p))));
    // The pod goes: back to the bare endpoint target.
    state.apply(0, Event::Delete(pod_object("p", serde_json::json!({}))));
    assert_eq!(label(&state, "pod_name"), [None]);
    // The endpoints object goes: nothing left.
    state.apply(2, Event::Delete(endpoints_object()));
    assert!(state.groups().is_empty());
}

#[test]
fn every_role_is_accepted_with_its_own_selectors() {
    for role in Role::ALL {
        let s = parse(&format!("role: {role}")).unwrap();
        assert_eq!(s.role, role);
        // Promtail's node filter is for the pod role only.
        let pod_field = s.selector(Role::Pod).field;
        if role == Role::Pod {
            assert_eq!(pod_field.as_deref(), Some("spec.nodeName=node-a"));
        } else {
            assert_eq!(pod_field, None, "{role}");
        }
    }
    let s = parse(
        "role: endpoints
selectors:
  - {role: endpoints, label: 'app=web'}
  - {role: pod, field: 'status.phase=Running'}
  - {role: service, label: '', field: 'metadata.name=web'}",
    )
    .unwrap();
    assert_eq!(
        s.selector(Role::Endpoints),
        Selector {
            label: Some("app=web".into()),
            field: None
        }
    );
    assert_eq!(
        s.selector(Role::Pod).field.as_deref(),
        Some("status.phase=Running"),
        "no node filter for the endpoints role's pods"
    );
    assert_eq!(s.selector(Role::Service).label, None, "empty is unset");
    assert_eq!(s.selector(Role::Node), Selector::default());
    let s = parse("role: node\nselectors: [{role: node, label: 'node-role.kubernetes.io/worker'}]")
        .unwrap();
    assert_eq!(
        s.selector(Role::Node).label.as_deref(),
        Some("node-role.kubernetes.io/worker")
    );
}

#[test]
fn streams_per_role_and_namespace() {
    let ns = [Some("a".to_owned()), Some("b".to_owned())];
    let kinds = |role: Role, ns: &[Option<String>]| -> Vec<(Role, Option<String>)> {
        stream_specs(role, ns)
            .into_iter()
            .map(|s| (s.kind, s.namespace))
            .collect()
    };
    assert_eq!(kinds(Role::Node, &ns), [(Role::Node, None)]);
    assert_eq!(
        kinds(Role::Ingress, &ns),
        [
            (Role::Ingress, ns[0].clone()),
            (Role::Ingress, ns[1].clone())
        ]
    );
    assert_eq!(
        kinds(Role::EndpointSlice, &[None]),
        [
            (Role::Pod, None),
            (Role::Service, None),
            (Role::EndpointSlice, None)
        ]
    );
    assert_eq!(kinds(Role::Endpoints, &ns).len(), 6);
    assert!(kinds(Role::Pod, &[]).is_empty());
}

#[test]
fn namespaces_to_watch() {
    let mut s = parse("role: pod").unwrap();
    assert_eq!(namespaces(&s, None), [None]);
    s.namespaces = vec!["a".into(), "a".into()];
    assert_eq!(namespaces(&s, None), [Some("a".to_owned())]);
    s.own_namespace = true;
    s.namespaces.clear();
    assert_eq!(namespaces(&s, Some("me".into())), [Some("me".to_owned())]);
}
