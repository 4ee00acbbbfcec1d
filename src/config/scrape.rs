//! `scrape_configs[]` (spec §4.1–4.3): one job each, with its source, pipeline and relabeling.
//!
//! Pipeline stages stay raw YAML here (the pipeline module parses them, leniently, as Promtail
//! does). Target kinds ferrotail does not implement yet are kept as raw YAML so that any config
//! Promtail accepts still parses; validation then refuses them by path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::de::{bool11, nullable, text, text_list, text_map};
use super::relabel::RelabelConfig;
use super::types::{GoDuration, PromDuration};

/// A raw YAML mapping (a target kind kept as it is).
pub type RawMapping = serde_yaml::Mapping;

/// One `scrape_configs[]` element.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// `job_name`: required, unique.
    #[serde(deserialize_with = "text")]
    pub job_name: String,
    /// `pipeline_stages`, default empty: raw stage definitions, parsed by the pipeline module.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub pipeline_stages: Vec<serde_yaml::Value>,
    /// `relabel_configs`, default empty.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// `encoding`, default `""` (files are UTF-8; other charsets not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub encoding: String,
    /// `decompression`, default unset (not supported yet when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decompression: Option<DecompressionConfig>,
    /// `static_configs`: present (even empty) makes this a file job. `None` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_configs: Option<Vec<StaticConfig>>,
    /// `file_sd_configs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_sd_configs: Option<Vec<FileSdConfig>>,
    /// `kubernetes_sd_configs` (kept raw here; read by `discovery::kubernetes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `consul_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consul_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `consulagent_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consulagent_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `dns_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `digitalocean_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digitalocean_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `dockerswarm_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerswarm_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `serverset_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverset_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `nerve_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nerve_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `marathon_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marathon_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `gce_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gce_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `ec2_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `openstack_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openstack_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `azure_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `triton_sd_configs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triton_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `docker_sd_configs` (kept raw here; read by `discovery::docker`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_sd_configs: Option<Vec<serde_yaml::Value>>,
    /// `journal` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<RawMapping>,
    /// `syslog` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog: Option<RawMapping>,
    /// `gcplog` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcplog: Option<RawMapping>,
    /// `loki_push_api` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loki_push_api: Option<RawMapping>,
    /// `windows_events` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_events: Option<RawMapping>,
    /// `kafka` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<RawMapping>,
    /// `azure_event_hubs` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_event_hubs: Option<RawMapping>,
    /// `gelf` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gelf: Option<RawMapping>,
    /// `cloudflare` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloudflare: Option<RawMapping>,
    /// `heroku_drain` (not supported yet; kept raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heroku_drain: Option<RawMapping>,
}

impl ScrapeConfig {
    /// The service-discovery list keys (file jobs) and whether each is present / non-empty.
    /// `static_configs`, `file_sd_configs` and `kubernetes_sd_configs` come first; the others are
    /// not supported yet.
    pub(crate) fn sd_lists(&self) -> [(&'static str, Option<usize>); 17] {
        fn len<T>(v: &Option<Vec<T>>) -> Option<usize> {
            v.as_ref().map(Vec::len)
        }
        [
            ("static_configs", len(&self.static_configs)),
            ("file_sd_configs", len(&self.file_sd_configs)),
            ("kubernetes_sd_configs", len(&self.kubernetes_sd_configs)),
            ("consul_sd_configs", len(&self.consul_sd_configs)),
            ("consulagent_sd_configs", len(&self.consulagent_sd_configs)),
            ("dns_sd_configs", len(&self.dns_sd_configs)),
            (
                "digitalocean_sd_configs",
                len(&self.digitalocean_sd_configs),
            ),
            ("dockerswarm_sd_configs", len(&self.dockerswarm_sd_configs)),
            ("serverset_sd_configs", len(&self.serverset_sd_configs)),
            ("nerve_sd_configs", len(&self.nerve_sd_configs)),
            ("marathon_sd_configs", len(&self.marathon_sd_configs)),
            ("gce_sd_configs", len(&self.gce_sd_configs)),
            ("ec2_sd_configs", len(&self.ec2_sd_configs)),
            ("openstack_sd_configs", len(&self.openstack_sd_configs)),
            ("azure_sd_configs", len(&self.azure_sd_configs)),
            ("triton_sd_configs", len(&self.triton_sd_configs)),
            ("docker_sd_configs", len(&self.docker_sd_configs)),
        ]
    }

    /// The non-file target keys, in Promtail's precedence order, with their raw settings when
    /// set (`docker_sd_configs`, between `cloudflare` and `heroku_drain` in that order, is a list
    /// and comes with the discovery lists).
    pub(crate) fn other_targets(&self) -> [(&'static str, Option<&RawMapping>); 10] {
        [
            ("journal", self.journal.as_ref()),
            ("syslog", self.syslog.as_ref()),
            ("gcplog", self.gcplog.as_ref()),
            ("loki_push_api", self.loki_push_api.as_ref()),
            ("windows_events", self.windows_events.as_ref()),
            ("kafka", self.kafka.as_ref()),
            ("azure_event_hubs", self.azure_event_hubs.as_ref()),
            ("gelf", self.gelf.as_ref()),
            ("cloudflare", self.cloudflare.as_ref()),
            ("heroku_drain", self.heroku_drain.as_ref()),
        ]
    }

    /// Whether the job has any source Promtail would accept (a file SD key or another target).
    pub fn has_target(&self) -> bool {
        self.sd_lists().iter().any(|(_, n)| n.is_some())
            || self.other_targets().iter().any(|(_, set)| set.is_some())
    }

    /// The static target groups (empty when `static_configs` is absent).
    pub fn static_configs(&self) -> &[StaticConfig] {
        self.static_configs.as_deref().unwrap_or(&[])
    }
}

/// One `static_configs[]` target group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// `targets`, default empty = one `localhost` target (see [`StaticConfig::targets_or_default`]).
    /// Each becomes `__address__`; for file jobs they only multiply identical targets.
    #[serde(deserialize_with = "text_list", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `labels`, default empty: the group's labels, incl. `__path__` and `__path_exclude__`.
    #[serde(deserialize_with = "text_map")]
    pub labels: BTreeMap<String, String>,
}

impl StaticConfig {
    /// `targets`, or `["localhost"]` when empty (Promtail's default).
    pub fn targets_or_default(&self) -> Vec<String> {
        if self.targets.is_empty() {
            vec!["localhost".to_owned()]
        } else {
            self.targets.clone()
        }
    }
}

/// One `file_sd_configs[]` element.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSdConfig {
    /// `files`: globs of `.json`/`.yml`/`.yaml` target files.
    #[serde(deserialize_with = "text_list")]
    pub files: Vec<String>,
    /// `refresh_interval`, default 5m (Prometheus duration).
    pub refresh_interval: PromDuration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: PromDuration(std::time::Duration::from_secs(300)),
        }
    }
}

/// `decompression` of a file job.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecompressionConfig {
    /// `enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub enabled: bool,
    /// `initial_delay`, default 0s.
    pub initial_delay: GoDuration,
    /// `format`: `gz`, `z` or `bz2`; default `""`.
    #[serde(deserialize_with = "text")]
    pub format: String,
}
