//! One `kubernetes_sd_configs[]` element: strict parsing, Prometheus 2.55's checks
//! (`SDConfig.UnmarshalYAML` in `discovery/kubernetes/kubernetes.go`, with prometheus-common's
//! `HTTPClientConfig.Validate`), and Promtail's node filter.
//!
//! Invariants: every key Prometheus knows is either honoured or refused as "not supported
//! yet" (never ignored silently), unknown keys and unknown roles are refused by name; a
//! setting that passes here has one of Prometheus' six roles, selectors only for the kinds
//! that role watches (at most one per kind), at most one of `api_server` and
//! `kubeconfig_file`, and HTTP client settings only with `api_server`; with `role: pod` its
//! pod field selector holds Promtail's `spec.nodeName=<host>` (no other role gets the node
//! filter, as in Promtail).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::selector::{check_field_selector, check_label_selector};
use crate::config::{Authorization, BasicAuth, TlsConfig};
use crate::redact::MASK;
use crate::units::de::{bool11, opt_bool11, opt_text, text_list};

/// The field Promtail filters pods on (its `kubernetesPodNodeField`).
const NODE_FIELD: &str = "spec.nodeName";

/// A Kubernetes SD role; also names the kind of object a role lists and watches (the
/// endpoints roles watch pods and services too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `role: pod`: one target per container port (or container).
    Pod,
    /// `role: service`: one target per service port.
    Service,
    /// `role: endpoints`: one target per address and port of an Endpoints object.
    Endpoints,
    /// `role: endpointslice`: one target per address and port of an EndpointSlice.
    EndpointSlice,
    /// `role: node`: one target per node, its kubelet.
    Node,
    /// `role: ingress`: one target per rule host and path.
    Ingress,
}

impl Role {
    /// Every role, in the order Prometheus' messages list them.
    pub const ALL: [Role; 6] = [
        Role::Pod,
        Role::Service,
        Role::Endpoints,
        Role::EndpointSlice,
        Role::Node,
        Role::Ingress,
    ];

    /// The role's YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pod => "pod",
            Role::Service => "service",
            Role::Endpoints => "endpoints",
            Role::EndpointSlice => "endpointslice",
            Role::Node => "node",
            Role::Ingress => "ingress",
        }
    }

    /// The role named `name` (exactly, as Prometheus compares).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The kinds this role lists and watches, which are also the selector roles it accepts
    /// (Prometheus' `allowedSelectors`, in its order).
    pub fn watched_kinds(self) -> &'static [Role] {
        match self {
            Role::Pod => &[Role::Pod],
            Role::Service => &[Role::Service],
            Role::Endpoints => &[Role::Pod, Role::Service, Role::Endpoints],
            Role::EndpointSlice => &[Role::Pod, Role::Service, Role::EndpointSlice],
            Role::Node => &[Role::Node],
            Role::Ingress => &[Role::Ingress],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label and field selectors of one watched kind (`selectors[]`), empty ones left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `label`: a label selector the API server applies.
    pub label: Option<String>,
    /// `field`: a field selector the API server applies.
    pub field: Option<String>,
}

/// Basic authentication against the API server: each part is given inline or read from a
/// file when the client is built.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BasicAuthSettings {
    /// `username`.
    pub username: String,
    /// `username_file`.
    pub username_file: Option<PathBuf>,
    /// `password`.
    pub password: String,
    /// `password_file`.
    pub password_file: Option<PathBuf>,
}

impl fmt::Debug for BasicAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuthSettings")
            .field("username", &self.username)
            .field("username_file", &self.username_file)
            .field("password", &mask(&self.password))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// TLS towards the API server (`tls_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ca_file`: the CA bundle that signs the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `cert_file`: client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `key_file`: the client certificate's key.
    pub key_file: Option<PathBuf>,
    /// `server_name`: the name checked in the server's certificate.
    pub server_name: Option<String>,
    /// `insecure_skip_verify`.
    pub insecure_skip_verify: bool,
}

/// A validated `kubernetes_sd_configs` element, ready to run.
#[derive(Clone, PartialEq, Eq)]
pub struct KubernetesSdSettings {
    /// `role`.
    pub role: Role,
    /// `api_server`; with `kubeconfig_file` unset too, the in-cluster config is used.
    pub api_server: Option<String>,
    /// `kubeconfig_file` (its current context is used).
    pub kubeconfig_file: Option<PathBuf>,
    /// `namespaces.names`; empty with `own_namespace` false means every namespace.
    pub namespaces: Vec<String>,
    /// `namespaces.own_namespace` (in-cluster only).
    pub own_namespace: bool,
    /// The selectors by the kind they apply to; only kinds the role watches. With
    /// `role: pod` there is always a pod selector, whose field selector holds Promtail's node
    /// filter.
    pub selectors: BTreeMap<Role, Selector>,
    /// `bearer_token` (or `authorization.credentials`).
    pub bearer_token: Option<String>,
    /// `bearer_token_file` (or `authorization.credentials_file`); re-read as it changes.
    pub bearer_token_file: Option<PathBuf>,
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuthSettings>,
    /// `tls_config`.
    pub tls: TlsSettings,
    /// The host name of Promtail's node filter (`$HOSTNAME` or the kernel's).
    pub host: String,
}

impl fmt::Debug for KubernetesSdSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesSdSettings")
            .field("role", &self.role)
            .field(
                "api_server",
                &self.api_server.as_deref().map(crate::redact::url),
            )
            .field("kubeconfig_file", &self.kubeconfig_file)
            .field("namespaces", &self.namespaces)
            .field("own_namespace", &self.own_namespace)
            .field("selectors", &self.selectors)
            .field("bearer_token", &self.bearer_token.as_deref().map(mask))
            .field("bearer_token_file", &self.bearer_token_file)
            .field("basic_auth", &self.basic_auth)
            .field("tls", &self.tls)
            .field("host", &self.host)
            .finish()
    }
}

impl KubernetesSdSettings {
    /// The selector for the watched `kind` (empty when none was configured).
    pub fn selector(&self, kind: Role) -> Selector {
        self.selectors.get(&kind).cloned().unwrap_or_default()
    }
}

fn mask(s: &str) -> &str {
    if s.is_empty() { "" } else { MASK }
}

/// The YAML of one element, as Prometheus' `SDConfig` reads it (HTTP client keys inline).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSdConfig {
    #[serde(default, deserialize_with = "opt_text")]
    api_server: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    role: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    kubeconfig_file: Option<String>,
    #[serde(default)]
    namespaces: Option<RawNamespaces>,
    #[serde(default)]
    selectors: Option<Vec<RawSelector>>,
    #[serde(default)]
    attach_metadata: Option<RawAttachMetadata>,
    #[serde(default)]
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    authorization: Option<Authorization>,
    #[serde(default)]
    oauth2: Option<serde_yaml::Value>,
    #[serde(default, deserialize_with = "opt_text")]
    bearer_token: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    bearer_token_file: Option<String>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default, deserialize_with = "opt_bool11")]
    follow_redirects: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool11")]
    enable_http2: Option<bool>,
    #[serde(default, deserialize_with = "opt_text")]
    proxy_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    no_proxy: Option<String>,
    #[serde(default, deserialize_with = "opt_bool11")]
    proxy_from_environment: Option<bool>,
    #[serde(default)]
    proxy_connect_header: Option<serde_yaml::Value>,
    #[serde(default)]
    http_headers: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespaces {
    #[serde(default, deserialize_with = "bool11")]
    own_namespace: bool,
    #[serde(default, deserialize_with = "text_list")]
    names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(default, deserialize_with = "opt_text")]
    role: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    label: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    field: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachMetadata {
    #[serde(default, deserialize_with = "bool11")]
    node: bool,
}

/// A role name as Prometheus' `Role.UnmarshalYAML` accepts it; `key` names the YAML key in
/// the error.
fn parse_role(key: &str, role: &str) -> Result<Role, String> {
    Role::from_name(role).ok_or_else(|| {
        format!(
            "{key}: unknown Kubernetes SD role {role:?} (expected one of: {})",
            role_list(&Role::ALL)
        )
    })
}

/// `a, b, c`.
fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses and checks one raw `kubernetes_sd_configs[]` element; `host` is the host name of
/// Promtail's node filter. The error names the problem (and an unknown key by name).
pub fn settings_from_yaml(
    v: &serde_yaml::Value,
    host: &str,
) -> Result<KubernetesSdSettings, String> {
    let raw: RawSdConfig = crate::units::de::from_value(v).map_err(|e| e.to_string())?;

    // Role first: an unknown role is a parse error in Prometheus, before any other check.
    let role = raw
        .role
        .as_deref()
        .ok_or("role missing (one of: pod, service, endpoints, endpointslice, node, ingress)")?;
    let role = parse_role("role", role)?;
    let selectors = raw.selectors.as_deref().unwrap_or_default();
    let mut selector_roles = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        // A selector without a role has the empty role, which no role accepts (below).
        let r = match s.role.as_deref() {
            None => None,
            Some(r) => Some(parse_role(&format!("selectors[{i}].role"), r)?),
        };
        selector_roles.push(r);
    }

    let http = check_http_client(&raw)?;
    let custom_http = http.custom;
    if raw.api_server.is_some() && raw.kubeconfig_file.is_some() {
        return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
    }
    if raw.kubeconfig_file.is_some() && custom_http {
        return Err(
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'".into(),
        );
    }
    if raw.api_server.is_none() && custom_http {
        return Err(
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
                .into(),
        );
    }
    let (own_namespace, namespaces) = raw
        .namespaces
        .map_or((false, Vec::new()), |n| (n.own_namespace, n.names));
    if raw.api_server.is_some() && own_namespace {
        return Err("cannot use 'api_server' and 'namespaces.own_namespace' simultaneously".into());
    }
    if raw.kubeconfig_file.is_some() && own_namespace {
        return Err(
            "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously".into(),
        );
    }
    let mut seen: Vec<Option<Role>> = Vec::new();
    let mut by_kind = BTreeMap::new();
    for (s, r) in selectors.iter().zip(selector_roles) {
        if seen.contains(&r) {
            return Err(format!(
                "duplicated selector role: {}",
                r.map_or("", Role::as_str)
            ));
        }
        seen.push(r);
        let allowed = role.watched_kinds();
        let Some(r) = r.filter(|r| allowed.contains(r)) else {
            return Err(format!(
                "{role} role supports only {} selectors",
                role_list(allowed)
            ));
        };
        check_field_selector(s.field.as_deref().unwrap_or_default())?;
        check_label_selector(s.label.as_deref().unwrap_or_default())?;
        let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        by_kind.insert(
            r,
            Selector {
                label: non_empty(&s.label),
                field: non_empty(&s.field),
            },
        );
    }

    if raw.attach_metadata.is_some_and(|a| a.node) {
        return Err("kubernetes_sd_configs attach_metadata.node is not supported yet".into());
    }
    if let Some(url) = &raw.api_server {
        check_url(url)?;
    }

    if role == Role::Pod {
        // Promtail's node filter, for the pod role only.
        let pod = by_kind.entry(Role::Pod).or_insert_with(Selector::default);
        pod.field = Some(node_filter(pod.field.as_deref(), host));
    }

    Ok(KubernetesSdSettings {
        role,
        api_server: raw.api_server,
        kubeconfig_file: raw.kubeconfig_file.map(PathBuf::from),
        namespaces,
        own_namespace,
        selectors: by_kind,
        bearer_token: http.bearer_token,
        bearer_token_file: http.bearer_token_file,
        basic_auth: http.basic_auth,
        tls: http.tls,
        host: host.to_owned(),
    })
}

/// Promtail's `fulfillKubePodSelector`: `spec.nodeName=<host>` is the field selector when
/// there is none, and is appended after a `,` when the given one does not already contain it.
pub fn node_filter(field: Option<&str>, host: &str) -> String {
    let filter = format!("{NODE_FIELD}={host}");
    match field {
        None | Some("") => filter,
        Some(f) if f.contains(&filter) => f.to_owned(),
        Some(f) => format!("{f},{filter}"),
    }
}

/// `api_server` must be an absolute URL the client can use.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("invalid api_server URL {:?}: {e}", crate::redact::url(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "invalid api_server URL {:?}: scheme must be http or https",
            crate::redact::url(url)
        ));
    }
    Ok(())
}

/// The HTTP client keys, checked.
struct HttpSettings {
    /// Whether they differ from Prometheus' default HTTP client config.
    custom: bool,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    basic_auth: Option<BasicAuthSettings>,
    tls: TlsSettings,
}

fn not_supported(key: &str) -> String {
    format!("kubernetes_sd_configs {key} is not supported yet")
}

/// prometheus-common's `HTTPClientConfig.Validate` (and its TLS check), then the refusal of
/// what ferrotail does not implement for the API client.
fn check_http_client(raw: &RawSdConfig) -> Result<HttpSettings, String> {
    let bearer = raw.bearer_token.is_some() || raw.bearer_token_file.is_some();
    if raw.bearer_token.is_some() && raw.bearer_token_file.is_some() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    if (raw.basic_auth.is_some() || raw.oauth2.is_some()) && bearer {
        return Err(
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
                .into(),
        );
    }
    let set = |s: &String| !s.is_empty();
    if let Some(b) = &raw.basic_auth {
        if [
            set(&b.username),
            set(&b.username_file),
            set(&b.username_ref),
        ]
        .iter()
        .filter(|x| **x)
        .count()
            > 1
        {
            return Err(
                "at most one of basic_auth username, username_file & username_ref must be configured"
                    .into(),
            );
        }
        if [
            set(&b.password),
            set(&b.password_file),
            set(&b.password_ref),
        ]
        .iter()
        .filter(|x| **x)
        .count()
            > 1
        {
            return Err(
                "at most one of basic_auth password, password_file & password_ref must be configured"
                    .into(),
            );
        }
    }
    let mut bearer_token = raw.bearer_token.clone();
    let mut bearer_token_file = raw.bearer_token_file.clone().map(PathBuf::from);
    if let Some(a) = &raw.authorization {
        if bearer {
            return Err(
                "authorization is not compatible with bearer_token & bearer_token_file".into(),
            );
        }
        if [
            set(&a.credentials),
            set(&a.credentials_file),
            set(&a.credentials_ref),
        ]
        .iter()
        .filter(|x| **x)
        .count()
            > 1
        {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured"
                    .into(),
            );
        }
        let kind = a.auth_type.trim();
        if kind.eq_ignore_ascii_case("basic") {
            return Err(
                r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into(),
            );
        }
        if raw.basic_auth.is_some() || raw.oauth2.is_some() {
            return Err(
                "at most one of basic_auth, oauth2 & authorization must be configured".into(),
            );
        }
        // The API client sends bearer tokens only; other schemes would need raw headers.
        if !(kind.is_empty() || kind == "Bearer") {
            return Err(not_supported(&format!("authorization type {kind:?}")));
        }
        if set(&a.credentials_ref) {
            return Err(not_supported("authorization credentials_ref"));
        }
        bearer_token = Some(a.credentials.clone()).filter(|c| !c.is_empty());
        bearer_token_file = Some(&a.credentials_file)
            .filter(|c| !c.is_empty())
            .map(PathBuf::from);
    }
    let tls_raw = raw.tls_config.clone().unwrap_or_default();
    tls_raw.check()?;

    // Prometheus' checks passed; now what ferrotail cannot do (yet).
    if raw.oauth2.is_some() {
        return Err(not_supported("oauth2"));
    }
    if raw.proxy_url.is_some()
        || raw.no_proxy.is_some()
        || raw.proxy_from_environment == Some(true)
        || raw.proxy_connect_header.is_some()
    {
        return Err(not_supported("proxy configuration"));
    }
    if raw.http_headers.is_some() {
        return Err(not_supported("http_headers"));
    }
    if set(&tls_raw.ca) || set(&tls_raw.cert) || set(&tls_raw.key) {
        return Err(not_supported(
            "inline tls_config ca/cert/key (use the *_file keys)",
        ));
    }
    if set(&tls_raw.ca_ref) || set(&tls_raw.cert_ref) || set(&tls_raw.key_ref) {
        return Err(not_supported("tls_config *_ref"));
    }
    if tls_raw.min_version.is_some() || tls_raw.max_version.is_some() {
        return Err(not_supported("tls_config min_version/max_version"));
    }
    let basic_auth = match &raw.basic_auth {
        Some(b) if set(&b.username_ref) || set(&b.password_ref) => {
            return Err(not_supported("basic_auth username_ref/password_ref"));
        }
        Some(b) => Some(BasicAuthSettings {
            username: b.username.clone(),
            username_file: Some(&b.username_file).filter(|f| set(f)).map(PathBuf::from),
            password: b.password.clone(),
            password_file: Some(&b.password_file).filter(|f| set(f)).map(PathBuf::from),
        }),
        None => None,
    };
    let opt_path = |s: &String| Some(s).filter(|s| !s.is_empty()).map(PathBuf::from);
    let tls = TlsSettings {
        ca_file: opt_path(&tls_raw.ca_file),
        cert_file: opt_path(&tls_raw.cert_file),
        key_file: opt_path(&tls_raw.key_file),
        server_name: Some(tls_raw.server_name.clone()).filter(|s| !s.is_empty()),
        insecure_skip_verify: tls_raw.insecure_skip_verify,
    };
    // Anything but Prometheus' defaults (follow_redirects and enable_http2 true) is "custom".
    let custom = bearer
        || raw.basic_auth.is_some()
        || raw.authorization.is_some()
        || raw.oauth2.is_some()
        || raw
            .tls_config
            .as_ref()
            .is_some_and(|t| *t != TlsConfig::default())
        || raw.follow_redirects == Some(false)
        || raw.enable_http2 == Some(false)
        || raw.proxy_from_environment == Some(true);
    Ok(HttpSettings {
        custom,
        bearer_token,
        bearer_token_file,
        basic_auth,
        tls,
    })
}
