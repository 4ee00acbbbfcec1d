//! `kubernetes_sd_configs` with `role: pod` (spec §4.4): pods listed and watched through the
//! Kubernetes API, each turned into target groups and published on a watch channel.
//!
//! The behaviour is that of Prometheus 2.55's `discovery/kubernetes` pod role as vendored by
//! Promtail 3.4.6, plus Promtail's node filter (`fulfillKubePodSelector` in its file target
//! manager): the pod field selector always holds `spec.nodeName=<host>`, so a DaemonSet
//! instance only sees the pods of its own node. [`settings`] parses and checks the YAML,
//! [`selector`] checks selector syntax, [`pod`] converts one pod; this module builds the API
//! client and runs the watches.
//!
//! - Client: `kubeconfig_file` (its current context), or `api_server` with the HTTP client
//!   settings (bearer token or token file, basic auth, TLS files), or else the in-cluster
//!   config (service account token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`,
//!   `KUBERNETES_SERVICE_HOST`/`_PORT`).
//! - One list+watch per namespace (`namespaces.names`, plus the pod's own namespace with
//!   `own_namespace`), or one over all namespaces. kube-runtime's watcher resumes a closed
//!   watch from the last resourceVersion (bookmarks included) and relists after 410 Gone;
//!   errors (unreachable API, 403) are logged naming the API server and retried with
//!   exponential backoff (0.8 s to 30 s).
//! - A relist replaces everything that stream had found (pods deleted meanwhile go away).
//!
//! Invariants: the published list is the groups of every known pod, ordered by source
//! (`pod/<namespace>/<name>`) and then by target order within the pod; it is published once
//! every stream has finished its first list (even when empty: consumers then know discovery
//! has answered), and after that only when it changes. A client that cannot be built is
//! logged as an error and an empty list published, as Prometheus runs without that
//! discoverer. The task ends at `shutdown` or when no receiver is left; it never panics on
//! what the API server sends.
//!
//! Deliberate differences: each target is its own [`TargetGroup`] (see [`pod::pod_groups`]);
//! a pod without an IP publishes nothing rather than an empty group (the same for
//! consumers); relative file paths are not joined with the config file's directory;
//! `attach_metadata.node`, oauth2, proxies and `http_headers` are refused as not supported yet.

pub mod pod;
pub mod selector;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, select_all};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_pods};
use kube::{Client, Config};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use pod::{pod_groups, pod_source, sanitize_label_name};
pub use settings::{
    BasicAuthSettings, KubernetesSdSettings, Role, TlsSettings, node_filter, settings_from_yaml,
};

use super::TargetGroup;

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

/// The pod discoverer of one `kubernetes_sd_configs` element.
pub struct KubernetesSd {
    settings: KubernetesSdSettings,
}

impl KubernetesSd {
    /// A discoverer for `settings`; nothing happens until [`KubernetesSd::run`].
    pub fn new(settings: KubernetesSdSettings) -> Self {
        KubernetesSd { settings }
    }

    /// Publishes the groups of the discovered pods on `out` (see the module doc) until
    /// `shutdown`, or until every receiver of `out` is gone.
    pub async fn run(self, out: watch::Sender<Vec<TargetGroup>>, shutdown: CancellationToken) {
        let built = tokio::select! {
            () = shutdown.cancelled() => return,
            built = build_client(&self.settings) => built,
        };
        let (client, server, own_namespace) = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "Kubernetes service discovery cannot start; it finds no pods.");
                out.send_replace(Vec::new());
                return;
            }
        };
        let namespaces = namespaces(&self.settings, own_namespace);
        let mut config = watcher::Config::default().fields(&self.settings.field_selector);
        if let Some(labels) = &self.settings.label_selector {
            config = config.labels(labels);
        }
        let streams: Vec<BoxStream<'static, (usize, watcher::Result<Event<Pod>>)>> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let api: Api<Pod> = match ns {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                };
                watch_pods(api, config.clone())
                    .default_backoff()
                    .map(move |ev| (i, ev))
                    .boxed()
            })
            .collect();
        let mut events = select_all(streams);
        let mut state = PodState::new(namespaces.len());
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
                // An expired resourceVersion is routine: the watcher relists after its backoff.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    tracing::debug!(api_server = %server, "Kubernetes watch expired (410 Gone); relisting pods.");
                    continue;
                }
                Err(e) => {
                    let namespace = namespaces
                        .get(i)
                        .and_then(Option::as_deref)
                        .unwrap_or("(all)");
                    tracing::warn!(api_server = %server, namespace, error = %e,
                        "Kubernetes pod discovery failed; retrying with backoff.");
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

/// The pods each stream knows, keyed by uid.
struct PodState {
    streams: Vec<StreamPods>,
}

#[derive(Default)]
struct StreamPods {
    pods: HashMap<String, (String, Vec<TargetGroup>)>,
    /// Pods of a list in progress; they replace `pods` when it completes.
    relist: Option<HashMap<String, (String, Vec<TargetGroup>)>>,
    listed: bool,
}

/// A pod's key: its uid (a pod recreated under the same name is another pod), or its
/// namespaced name when the server sends none.
fn pod_key(pod: &Pod) -> String {
    match &pod.metadata.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

fn pod_entry(pod: &Pod) -> (String, Vec<TargetGroup>) {
    let source = pod_source(
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
    );
    (source, pod_groups(pod))
}

impl PodState {
    fn new(streams: usize) -> Self {
        PodState {
            streams: (0..streams).map(|_| StreamPods::default()).collect(),
        }
    }

    /// Applies one watcher event of stream `i`; true when the published list may change.
    fn apply(&mut self, i: usize, event: Event<Pod>) -> bool {
        let Some(s) = self.streams.get_mut(i) else {
            return false;
        };
        match event {
            Event::Init => {
                s.relist = Some(HashMap::new());
                false
            }
            Event::InitApply(pod) => {
                s.relist
                    .get_or_insert_with(HashMap::new)
                    .insert(pod_key(&pod), pod_entry(&pod));
                false
            }
            Event::InitDone => {
                s.pods = s.relist.take().unwrap_or_default();
                s.listed = true;
                true
            }
            Event::Apply(pod) => {
                s.pods.insert(pod_key(&pod), pod_entry(&pod));
                s.listed
            }
            Event::Delete(pod) => {
                s.pods.remove(&pod_key(&pod));
                s.listed
            }
        }
    }

    fn all_listed(&self) -> bool {
        self.streams.iter().all(|s| s.listed)
    }

    /// Every pod's groups, ordered by source, then by uid (for a name briefly held by two
    /// pods), then in target order.
    fn groups(&self) -> Vec<TargetGroup> {
        let mut pods: BTreeMap<(&str, &str), &[TargetGroup]> = BTreeMap::new();
        for s in &self.streams {
            for (key, (source, groups)) in &s.pods {
                pods.insert((source, key), groups);
            }
        }
        pods.into_values().flatten().cloned().collect()
    }
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
