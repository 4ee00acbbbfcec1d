//! `docker_sd_configs` (spec §4.9): the running containers of a Docker engine, listed every
//! `refresh_interval` and published as target groups on a watch channel.
//!
//! The behaviour is that of Prometheus 2.55's `discovery/moby` Docker SD (`docker.go`,
//! `network.go`) as vendored by Promtail 3.4.6; [`settings`] parses the YAML, the engine is
//! reached through [`crate::sources::docker::engine::Engine`]:
//! - every refresh lists the running containers (with `filters`) and every network;
//! - a container without a name is skipped. Its labels: `__meta_docker_container_id`,
//!   `_name` (its first name, with Docker's leading `/`), `_network_mode`, and
//!   `__meta_docker_container_label_<name>` for each of its labels (name sanitized to
//!   `[a-zA-Z0-9_]`);
//! - a container without networks of its own that shares another container's network
//!   (`container:<id>`) uses that container's networks, following such links;
//! - with `match_first_network` and several networks, only the first by name is used;
//! - per network: one target per TCP port, with `__meta_docker_network_ip`,
//!   `__meta_docker_port_private`, and for a published port `__meta_docker_port_public` and
//!   `__meta_docker_port_public_ip`; `__address__` = `<ip>:<private port>`. Without TCP ports,
//!   one target with `__address__` = `<ip>:<port>` (the `port` setting), or
//!   `host_networking_host` for a container in `host` network mode. Each target also has the
//!   network's labels: `__meta_docker_network_id`, `_name`, `_scope`, `_internal`, `_ingress`
//!   and `__meta_docker_network_label_<name>`.
//!
//! Invariants: each target is its own [`TargetGroup`] (`targets` = its `__address__`, `labels`
//! = the rest, source `Docker`), in the engine's container order, then by network name, then in
//! port order: the same answer always gives the same list. The list is published after the
//! first refresh, even when it is empty or failed (consumers then know discovery has answered),
//! and after that only when it changes; a failed refresh keeps the previous list. An
//! unreachable engine is logged naming its host and tried again at the next refresh. The task
//! ends at `shutdown` or when no receiver is left, and never panics on what the engine sends.
//!
//! Deliberate differences: networks are taken in name order rather than Go's random map order;
//! a cycle of containers sharing each other's network ends the lookup (Prometheus would loop
//! for ever); `https://` hosts and HTTP client settings other than `follow_redirects` and
//! `enable_http2` are refused as not supported yet.

pub mod settings;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerSummary, EndpointSettings, Network, PortSummaryTypeEnum};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use settings::{DockerFilter, DockerHost, DockerSdSettings, settings_from_yaml};

use super::TargetGroup;
use crate::discovery::kubernetes::sanitize_label_name;
use crate::metrics::Metrics;
use crate::sources::docker::engine::{DockerError, Engine};

/// The source of every group this discoverer publishes (Prometheus' group source).
pub const SOURCE: &str = "Docker";

/// `__meta_docker_container_id`: the key consumers use to find a target's container.
pub const CONTAINER_ID_LABEL: &str = "__meta_docker_container_id";
const CONTAINER_NAME_LABEL: &str = "__meta_docker_container_name";
const CONTAINER_NETWORK_MODE_LABEL: &str = "__meta_docker_container_network_mode";
const CONTAINER_LABEL_PREFIX: &str = "__meta_docker_container_label_";
const NETWORK_IP_LABEL: &str = "__meta_docker_network_ip";
const NETWORK_PREFIX: &str = "__meta_docker_network_";
const PORT_PRIVATE_LABEL: &str = "__meta_docker_port_private";
const PORT_PUBLIC_LABEL: &str = "__meta_docker_port_public";
const PORT_PUBLIC_IP_LABEL: &str = "__meta_docker_port_public_ip";

/// The shortest period between refreshes (validation refuses 0; a floor keeps a tiny value
/// from turning into a busy loop).
const MIN_REFRESH: Duration = Duration::from_millis(10);

/// The discoverer of one `docker_sd_configs` element.
pub struct DockerSd {
    settings: DockerSdSettings,
    metrics: Arc<Metrics>,
}

impl DockerSd {
    /// A discoverer for `settings`; nothing happens until [`DockerSd::run`]. `metrics` goes to
    /// the engine client.
    pub fn new(settings: DockerSdSettings, metrics: Arc<Metrics>) -> Self {
        DockerSd { settings, metrics }
    }

    /// Publishes the groups of the running containers on `out` (see the module doc) until
    /// `shutdown`, or until every receiver of `out` is gone.
    pub async fn run(self, out: watch::Sender<Vec<TargetGroup>>, shutdown: CancellationToken) {
        let host = self.settings.host_for_messages();
        let mut engine: Option<Engine> = None;
        let mut first = true;
        let mut failing = false;
        let mut ticker = tokio::time::interval(self.settings.refresh_interval.max(MIN_REFRESH));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: the first refresh runs at once.
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = out.closed() => return,
                _ = ticker.tick() => {}
            }
            let refreshed = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                r = self.refresh(&mut engine) => r,
            };
            match refreshed {
                Ok(list) => {
                    if failing {
                        tracing::info!(host = %host, "Docker service discovery reaches the engine again.");
                        failing = false;
                    }
                    publish(&out, list, first);
                }
                Err(e) => {
                    // Every failure is logged, as Prometheus does, at the refresh interval.
                    tracing::warn!(host = %host, error = %e,
                        "Docker service discovery cannot list containers; the previous targets are kept and it tries again at the next refresh.");
                    failing = true;
                    if first {
                        publish(&out, Vec::new(), true);
                    }
                }
            }
            first = false;
        }
    }

    /// One refresh: the engine's containers and networks, as target groups.
    async fn refresh(&self, engine: &mut Option<Engine>) -> Result<Vec<TargetGroup>, DockerError> {
        let engine = match engine {
            Some(e) => e,
            None => engine.insert(Engine::connect(&self.settings, Arc::clone(&self.metrics))?),
        };
        let containers = engine.list_containers(&self.settings.filters).await?;
        let networks = engine.list_networks().await?;
        Ok(target_groups(&containers, &networks, &self.settings))
    }
}

/// Sets `out` to `list` when it differs (or when `force`), notifying receivers only then.
fn publish(out: &watch::Sender<Vec<TargetGroup>>, list: Vec<TargetGroup>, force: bool) -> bool {
    out.send_if_modified(|current| {
        if !force && *current == list {
            return false;
        }
        *current = list;
        true
    })
}

/// The labels of each network by ID (Prometheus' `getNetworksLabels`).
fn network_labels(networks: &[Network]) -> HashMap<&str, BTreeMap<String, String>> {
    let mut out = HashMap::with_capacity(networks.len());
    for n in networks {
        let id = n.id.as_deref().unwrap_or_default();
        let mut labels = BTreeMap::new();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        labels.insert(format!("{NETWORK_PREFIX}id"), id.to_owned());
        labels.insert(format!("{NETWORK_PREFIX}name"), text(&n.name));
        labels.insert(format!("{NETWORK_PREFIX}scope"), text(&n.scope));
        labels.insert(
            format!("{NETWORK_PREFIX}internal"),
            n.internal.unwrap_or(false).to_string(),
        );
        labels.insert(
            format!("{NETWORK_PREFIX}ingress"),
            n.ingress.unwrap_or(false).to_string(),
        );
        for (k, v) in sorted(n.labels.as_ref()) {
            labels.insert(
                format!("{NETWORK_PREFIX}label_{}", sanitize_label_name(k)),
                v.clone(),
            );
        }
        out.insert(id, labels);
    }
    out
}

/// A label map in key order, so that two keys sanitized to the same name resolve the same way
/// every time (the last in order wins).
fn sorted(map: Option<&HashMap<String, String>>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = map.into_iter().flatten().collect();
    v.sort();
    v
}

/// Go's `net.JoinHostPort`: a host with a `:` (IPv6) is bracketed.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn network_mode(c: &ContainerSummary) -> &str {
    c.host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        .unwrap_or_default()
}

fn own_networks(c: &ContainerSummary) -> BTreeMap<&str, &EndpointSettings> {
    c.network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .into_iter()
        .flatten()
        .map(|(name, n)| (name.as_str(), n))
        .collect()
}

/// The networks that make a container's targets: its own, or those of the container whose
/// network it shares (`container:<id>`), followed until one has networks.
fn networks_of<'a>(
    c: &'a ContainerSummary,
    by_id: &HashMap<&str, &'a ContainerSummary>,
) -> BTreeMap<&'a str, &'a EndpointSettings> {
    let mut networks = own_networks(c);
    let mut mode = network_mode(c);
    let mut seen: HashSet<&str> = HashSet::new();
    while networks.is_empty() {
        let Some(target) = mode.strip_prefix("container:") else {
            break;
        };
        // A cycle of containers sharing each other's network has no network to find.
        if !seen.insert(target) {
            break;
        }
        let Some(other) = by_id.get(target) else {
            break;
        };
        networks = own_networks(other);
        mode = network_mode(other);
    }
    networks
}

/// The target groups of one refresh (Prometheus' `DockerDiscovery.refresh`, one group per
/// target; see the module doc).
pub fn target_groups(
    containers: &[ContainerSummary],
    networks: &[Network],
    settings: &DockerSdSettings,
) -> Vec<TargetGroup> {
    let network_labels = network_labels(networks);
    let by_id: HashMap<&str, &ContainerSummary> = containers
        .iter()
        .filter_map(|c| Some((c.id.as_deref()?, c)))
        .collect();
    // Go formats the int port through a uint64 conversion; kept for identical output.
    let default_port = (settings.port as u64).to_string();
    let mut out = Vec::new();
    for c in containers {
        let Some(name) = c.names.as_ref().and_then(|n| n.first()) else {
            continue;
        };
        let mode = network_mode(c);
        let mut common = BTreeMap::new();
        common.insert(
            CONTAINER_ID_LABEL.to_owned(),
            c.id.clone().unwrap_or_default(),
        );
        common.insert(CONTAINER_NAME_LABEL.to_owned(), name.clone());
        common.insert(CONTAINER_NETWORK_MODE_LABEL.to_owned(), mode.to_owned());
        for (k, v) in sorted(c.labels.as_ref()) {
            common.insert(
                format!("{CONTAINER_LABEL_PREFIX}{}", sanitize_label_name(k)),
                v.clone(),
            );
        }
        let mut networks = networks_of(c, &by_id);
        if settings.match_first_network && networks.len() > 1 {
            networks = networks.into_iter().take(1).collect();
        }
        let ports = c.ports.as_deref().unwrap_or_default();
        for endpoint in networks.values() {
            let ip = endpoint.ip_address.as_deref().unwrap_or_default();
            let net_labels = endpoint
                .network_id
                .as_deref()
                .and_then(|id| network_labels.get(id));
            let group = |mut labels: BTreeMap<String, String>, address: String| {
                labels.extend(common.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(n) = net_labels {
                    labels.extend(n.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                TargetGroup {
                    targets: vec![address],
                    labels,
                    source: SOURCE.to_owned(),
                }
            };
            let mut added = false;
            for p in ports {
                if p.typ != Some(PortSummaryTypeEnum::TCP) {
                    continue;
                }
                let private = p.private_port.to_string();
                let mut labels = BTreeMap::new();
                labels.insert(NETWORK_IP_LABEL.to_owned(), ip.to_owned());
                labels.insert(PORT_PRIVATE_LABEL.to_owned(), private.clone());
                if let Some(public) = p.public_port.filter(|p| *p > 0) {
                    labels.insert(PORT_PUBLIC_LABEL.to_owned(), public.to_string());
                    labels.insert(
                        PORT_PUBLIC_IP_LABEL.to_owned(),
                        p.ip.clone().unwrap_or_default(),
                    );
                }
                out.push(group(labels, join_host_port(ip, &private)));
                added = true;
            }
            if !added {
                // No TCP port: the fallback port, or the configured host for host networking
                // (such containers have no ports of their own).
                let mut labels = BTreeMap::new();
                labels.insert(NETWORK_IP_LABEL.to_owned(), ip.to_owned());
                let address = if mode == "host" {
                    settings.host_networking_host.clone()
                } else {
                    join_host_port(ip, &default_port)
                };
                out.push(group(labels, address));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
