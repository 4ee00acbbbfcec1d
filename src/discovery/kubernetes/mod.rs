//! `kubernetes_sd_configs` (spec §4.4): the objects of a role listed and watched through the
//! Kubernetes API, turned into target groups and published on a watch channel.
//!
//! The behaviour is that of Prometheus 2.55's `discovery/kubernetes` as vendored by Promtail
//! 3.4.6, for all six roles, plus Promtail's node filter for `role: pod`
//! (`fulfillKubePodSelector` in its file target manager): the pod field selector always holds
//! `spec.nodeName=<host>`, so a DaemonSet instance only sees the pods of its own node.
//! [`settings`] parses and checks the YAML, [`selector`] checks selector syntax; one module
//! per role converts one object ([`pod`], [`node`], [`service`], [`endpoints`],
//! [`endpointslice`], [`ingress`], with the shared label helpers in [`meta`]); `store` keeps
//! the objects found and the groups built from them; this module builds the API client and
//! runs the watches.
//!
//! - Client: `kubeconfig_file` (its current context), or `api_server` with the HTTP client
//!   settings (bearer token or token file, basic auth, TLS files), or else the in-cluster
//!   config (service account token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`,
//!   `KUBERNETES_SERVICE_HOST`/`_PORT`).
//! - Streams: one list+watch per watched kind ([`Role::watched_kinds`]: the role's own kind;
//!   for `endpoints` and `endpointslice` also pods and services, whose labels they join) and
//!   per namespace (`namespaces.names`, plus the pod's own namespace with `own_namespace`), or
//!   one over all namespaces; nodes are cluster-wide and ignore `namespaces`. Each stream
//!   takes the selector configured for its kind. kube-runtime's watcher resumes a closed
//!   watch from the last resourceVersion (bookmarks included) and relists after 410 Gone;
//!   errors (unreachable API, 403) are logged naming the API server, the kind and the
//!   namespace, and retried with exponential backoff (0.8 s to 30 s).
//! - A relist replaces everything that stream had found (objects deleted meanwhile go away).
//!
//! Invariants: the published list is the groups of every known object of the role's kind,
//! ordered by source (`pod/<namespace>/<name>`, `node/<name>`, `svc/...`, `endpoints/...`,
//! `endpointslice/...`, `ingress/...`) and then by target order within the object, each built
//! from the current state of the objects it reads; it is published once every stream has
//! finished its first list (even when empty: consumers then know discovery has answered), and
//! after that only when it changes. A client that cannot be built is logged as an error and an
//! empty list published, as Prometheus runs without that discoverer. The task ends at
//! `shutdown` or when no receiver is left; it never panics on what the API server sends.
//!
//! Deliberate differences: each target is its own [`TargetGroup`] (see [`pod::pod_groups`]);
//! an object without targets publishes nothing rather than an empty group (the same for
//! consumers); the endpoints roles rebuild a target group whenever a pod or service it reads
//! changes (Prometheus only on a pod's phase change or a service event, keeping older labels
//! until then), and list the targets of uncovered container ports in a fixed order; only the
//! `discovery.k8s.io/v1` EndpointSlice and `networking.k8s.io/v1` Ingress APIs are used
//! (Kubernetes 1.21 and 1.19 and later; Prometheus falls back to the v1beta1 APIs on older
//! servers); relative file paths are not joined with the config file's directory;
//! `attach_metadata.node`, oauth2, proxies and `http_headers` are refused as not supported yet.

pub mod endpoints;
pub mod endpointslice;
pub mod ingress;
pub mod meta;
pub mod node;
pub mod pod;
pub mod selector;
pub mod service;
pub mod settings;
mod store;

use std::path::Path;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, select_all};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_objects};
use kube::{Client, Config};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use endpoints::{endpoints_groups, endpoints_source};
pub use endpointslice::{endpointslice_groups, endpointslice_source};
pub use ingress::{ingress_groups, ingress_source};
pub use meta::sanitize_label_name;
pub use node::{node_groups, node_source};
pub use pod::{pod_groups, pod_source};
pub use service::{service_groups, service_source};
pub use settings::{
    BasicAuthSettings, KubernetesSdSettings, Role, Selector, TlsSettings, node_filter,
    settings_from_yaml,
};

use super::TargetGroup;
use store::{Object, State};

/// Where a pod's service account files are mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Why the API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesSdError {
    /// The in-cluster config is missing (not in a pod, or no service account mounted).
    #[error("cannot use the in-cluster Kubernetes config: {0}")]
    InCluster(String),
    /// The kubeconfig file cannot be read or used.
    #[error("cannot use kubeconfig file {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// `api_server` is not a usable URI.
    #[error("invalid api_server URL {url}: {message}")]
    ApiServer {
        /// The URL (password masked).
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A credentials file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The own-namespace file is unreadable or empty.
    #[error("could not determine the pod's namespace: {0}")]
    OwnNamespace(String),
    /// kube refused the configuration (TLS files, ...).
    #[error("cannot create the Kubernetes client: {0}")]
    Client(String),
}

/// The discoverer of one `kubernetes_sd_configs` element.
pub struct KubernetesSd {
    settings: KubernetesSdSettings,
}

/// The events of all streams, each tagged with its stream's index.
type Events = BoxStream<'static, (usize, watcher::Result<Event<Object>>)>;

/// One list+watch: a kind, in one namespace or (`None`) in all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StreamSpec {
    kind: Role,
    namespace: Option<String>,
}

impl KubernetesSd {
    /// A discoverer for `settings`; nothing happens until [`KubernetesSd::run`].
    pub fn new(settings: KubernetesSdSettings) -> Self {
        KubernetesSd { settings }
    }

    /// Publishes the groups of the discovered objects on `out` (see the module doc) until
    /// `shutdown`, or until every receiver of `out` is gone.
    pub async fn run(self, out: watch::Sender<Vec<TargetGroup>>, shutdown: CancellationToken) {
        let role = self.settings.role;
        let built = tokio::select! {
            () = shutdown.cancelled() => return,
            built = build_client(&self.settings) => built,
        };
        let (client, server, own_namespace) = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, %role, "Kubernetes service discovery cannot start; it finds nothing.");
                out.send_replace(Vec::new());
                return;
            }
        };
        let specs = stream_specs(role, &namespaces(&self.settings, own_namespace));
        let streams: Vec<Events> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let config = watch_config(&self.settings.selector(spec.kind));
                object_stream(&client, spec, config, i)
            })
            .collect();
        let mut events = select_all(streams);
        let mut state = State::new(role, specs.len());
        let mut published = false;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                () = out.closed() => return,
                next = events.next() => next,
            };
            let Some((i, event)) = next else {
                // The watchers never end on their own; nothing more can come.
                return;
            };
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    log_watch_error(&server, specs.get(i), &e);
                    continue;
                }
            };
            if !state.apply(i, event) {
                continue;
            }
            if !published {
                if state.all_listed() {
                    out.send_replace(state.groups());
                    published = true;
                }
            } else {
                let groups = state.groups();
                out.send_if_modified(|cur| {
                    if *cur == groups {
                        false
                    } else {
                        *cur = groups;
                        true
                    }
                });
            }
        }
    }
}

/// Logs a failed list or watch of the stream `spec` (the watcher retries it).
fn log_watch_error(server: &str, spec: Option<&StreamSpec>, e: &watcher::Error) {
    let kind = spec.map_or("", |s| s.kind.as_str());
    let namespace = spec.and_then(|s| s.namespace.as_deref()).unwrap_or("(all)");
    match e {
        // An expired resourceVersion is routine: the watcher relists after its backoff.
        watcher::Error::WatchError(status) if status.code == 410 => {
            tracing::debug!(api_server = %server, kind, namespace,
                "Kubernetes watch expired (410 Gone); relisting.");
        }
        e => tracing::warn!(api_server = %server, kind, namespace, error = %e,
            "Kubernetes discovery failed to list or watch; retrying with backoff."),
    }
}

/// The streams a `role` discoverer runs: for each namespace, each watched kind (nodes once,
/// cluster-wide).
fn stream_specs(role: Role, namespaces: &[Option<String>]) -> Vec<StreamSpec> {
    if role == Role::Node {
        return vec![StreamSpec {
            kind: Role::Node,
            namespace: None,
        }];
    }
    namespaces
        .iter()
        .flat_map(|ns| {
            role.watched_kinds().iter().map(|kind| StreamSpec {
                kind: *kind,
                namespace: ns.clone(),
            })
        })
        .collect()
}

/// The watcher settings for a kind's selector (an empty selector is not sent).
fn watch_config(selector: &Selector) -> watcher::Config {
    let mut config = watcher::Config::default();
    if let Some(field) = &selector.field {
        config = config.fields(field);
    }
    if let Some(label) = &selector.label {
        config = config.labels(label);
    }
    config
}

/// The list+watch of `spec`, its events tagged with `i` and its objects wrapped in
/// [`Object`].
fn object_stream(client: &Client, spec: &StreamSpec, config: watcher::Config, i: usize) -> Events {
    let ns = spec.namespace.as_deref();
    match spec.kind {
        Role::Pod => typed(namespaced::<Pod>(client, ns), config, i, |o| {
            Object::Pod(Box::new(o))
        }),
        Role::Service => typed(namespaced::<Service>(client, ns), config, i, |o| {
            Object::Service(Box::new(o))
        }),
        Role::Endpoints => typed(namespaced::<Endpoints>(client, ns), config, i, |o| {
            Object::Endpoints(Box::new(o))
        }),
        Role::EndpointSlice => typed(namespaced::<EndpointSlice>(client, ns), config, i, |o| {
            Object::EndpointSlice(Box::new(o))
        }),
        Role::Ingress => typed(namespaced::<Ingress>(client, ns), config, i, |o| {
            Object::Ingress(Box::new(o))
        }),
        Role::Node => typed(Api::<Node>::all(client.clone()), config, i, |o| {
            Object::Node(Box::new(o))
        }),
    }
}

/// The API of a namespaced kind in `namespace`, or in all namespaces.
fn namespaced<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// kube-runtime's watcher over `api` (with its default backoff), mapped into [`Object`]s.
fn typed<K>(api: Api<K>, config: watcher::Config, i: usize, wrap: fn(K) -> Object) -> Events
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    watch_objects(api, config)
        .default_backoff()
        .map(move |ev| {
            let ev = ev.map(|e| match e {
                Event::Apply(o) => Event::Apply(wrap(o)),
                Event::Delete(o) => Event::Delete(wrap(o)),
                Event::Init => Event::Init,
                Event::InitApply(o) => Event::InitApply(wrap(o)),
                Event::InitDone => Event::InitDone,
            });
            (i, ev)
        })
        .boxed()
}

/// The namespaces to watch (`None`: all of them), as Prometheus' `getNamespaces`, without
/// duplicates.
fn namespaces(settings: &KubernetesSdSettings, own: Option<String>) -> Vec<Option<String>> {
    let mut names = settings.namespaces.clone();
    if settings.own_namespace
        && let Some(own) = own
    {
        names.push(own);
    }
    if names.is_empty() && !settings.own_namespace {
        return vec![None];
    }
    let mut out: Vec<Option<String>> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o.as_deref() == Some(n.as_str())) {
            out.push(Some(n));
        }
    }
    out
}

/// The client, the API server's URL for messages, and the own namespace when asked for.
async fn build_client(
    s: &KubernetesSdSettings,
) -> Result<(Client, String, Option<String>), KubernetesSdError> {
    let mut own_namespace = None;
    let config = if let Some(path) = &s.kubeconfig_file {
        let kerr = |e: &dyn std::fmt::Display| KubernetesSdError::Kubeconfig {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let kc = Kubeconfig::read_from(path).map_err(|e| kerr(&e))?;
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| kerr(&e))?
    } else if let Some(url) = &s.api_server {
        api_server_config(s, url)?
    } else {
        let config =
            Config::incluster().map_err(|e| KubernetesSdError::InCluster(e.to_string()))?;
        if s.own_namespace {
            own_namespace = Some(read_own_namespace(
                &Path::new(SERVICE_ACCOUNT_DIR).join("namespace"),
            )?);
        }
        tracing::info!("Using pod service account via in-cluster config.");
        config
    };
    let server = crate::redact::url(&config.cluster_url.to_string());
    let client = Client::try_from(config).map_err(|e| KubernetesSdError::Client(e.to_string()))?;
    Ok((client, server, own_namespace))
}

fn read_own_namespace(path: &Path) -> Result<String, KubernetesSdError> {
    let ns = std::fs::read_to_string(path)
        .map_err(|e| KubernetesSdError::OwnNamespace(format!("{}: {e}", path.display())))?;
    if ns.is_empty() {
        return Err(KubernetesSdError::OwnNamespace(
            "could not read own namespace name (empty file)".into(),
        ));
    }
    Ok(ns)
}

/// The client config for an explicit `api_server` and its HTTP client settings.
fn api_server_config(s: &KubernetesSdSettings, url: &str) -> Result<Config, KubernetesSdError> {
    let uri: hyper::Uri =
        url.parse().map_err(
            |e: hyper::http::uri::InvalidUri| KubernetesSdError::ApiServer {
                url: crate::redact::url(url),
                message: e.to_string(),
            },
        )?;
    let mut config = Config::new(uri);
    if let Some(token) = &s.bearer_token {
        config.auth_info.token = Some(token.clone().into());
    }
    if let Some(file) = &s.bearer_token_file {
        // kube re-reads the file as it changes (projected service account tokens rotate).
        config.auth_info.token_file = Some(file.display().to_string());
    }
    if let Some(b) = &s.basic_auth {
        let read = |what: &'static str, path: &Path| {
            std::fs::read_to_string(path)
                // Surrounding white space trimmed, as prometheus-common's FileSecret does.
                .map(|v| v.trim().to_owned())
                .map_err(|source| KubernetesSdError::File {
                    what,
                    path: path.display().to_string(),
                    source,
                })
        };
        let username = match &b.username_file {
            Some(f) => read("basic_auth username_file", f)?,
            None => b.username.clone(),
        };
        let password = match &b.password_file {
            Some(f) => read("basic_auth password_file", f)?,
            None => b.password.clone(),
        };
        config.auth_info.username = Some(username);
        config.auth_info.password = Some(password.into());
    }
    if let Some(ca) = &s.tls.ca_file {
        // kube re-reads it periodically, which also follows CA rotation.
        config.root_cert_file = Some(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&s.tls.cert_file, &s.tls.key_file) {
        config.auth_info.client_certificate = Some(cert.display().to_string());
        config.auth_info.client_key = Some(key.display().to_string());
    }
    config.tls_server_name = s.tls.server_name.clone();
    config.accept_invalid_certs = s.tls.insecure_skip_verify;
    Ok(config)
}

#[cfg(test)]
mod tests;
