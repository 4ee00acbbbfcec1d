//! One `docker_sd_configs[]` element: strict parsing with Prometheus 2.55's keys and defaults
//! (`DockerSDConfig` in `discovery/moby/docker.go`) and the checks of the host address.
//!
//! Invariants: unknown keys are refused by name; every key Prometheus knows is either honoured
//! or refused as "not supported yet" (never ignored silently); a setting that passes here has a
//! usable `unix://`, `tcp://` or `http://` host and a refresh interval above zero.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::units::PromDuration;
use crate::units::de::{bool11, nullable, opt_bool11, text, text_list};

/// Where the Docker engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerHost {
    /// `unix://<path>`: the engine's Unix socket.
    Unix(PathBuf),
    /// `tcp://<host>:<port>` or `http://<host>[:<port>]`: plain HTTP; `<host>:<port>`.
    Tcp(String),
}

/// One `filters` entry: Docker's container list filter `name` with its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerFilter {
    /// `name`: the filter (`name`, `label`, `network`, `status`, ...).
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// `values`.
    #[serde(deserialize_with = "text_list")]
    pub values: Vec<String>,
}

/// A validated `docker_sd_configs` element, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerSdSettings {
    /// `host` as written (for messages; a password in it is masked there).
    pub host: String,
    /// `host`, parsed.
    pub address: DockerHost,
    /// `port`, default 80: the port of `__address__` for containers without published TCP
    /// ports.
    pub port: i64,
    /// `host_networking_host`, default `localhost`: `__address__` of containers in host
    /// networking mode.
    pub host_networking_host: String,
    /// `match_first_network`, default true: with several networks, only the first (by name)
    /// makes targets.
    pub match_first_network: bool,
    /// `filters`, default none: passed to the engine's container list.
    pub filters: Vec<DockerFilter>,
    /// `refresh_interval`, default 60s.
    pub refresh_interval: Duration,
}

impl DockerSdSettings {
    /// The host for messages and logs, with a password masked.
    pub fn host_for_messages(&self) -> String {
        match self.address {
            DockerHost::Unix(_) => self.host.clone(),
            DockerHost::Tcp(_) => crate::redact::url(&self.host),
        }
    }
}

/// The YAML of one element as Prometheus' `DockerSDConfig` reads it (HTTP client keys inline).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDockerSdConfig {
    #[serde(deserialize_with = "text")]
    host: String,
    #[serde(deserialize_with = "nullable")]
    port: i64,
    #[serde(deserialize_with = "nullable")]
    filters: Vec<DockerFilter>,
    #[serde(deserialize_with = "text")]
    host_networking_host: String,
    refresh_interval: PromDuration,
    #[serde(deserialize_with = "bool11")]
    match_first_network: bool,
    // prometheus-common's HTTPClientConfig, inlined.
    basic_auth: Option<serde_yaml::Value>,
    authorization: Option<serde_yaml::Value>,
    oauth2: Option<serde_yaml::Value>,
    bearer_token: Option<serde_yaml::Value>,
    bearer_token_file: Option<serde_yaml::Value>,
    tls_config: Option<serde_yaml::Value>,
    #[serde(deserialize_with = "opt_bool11")]
    follow_redirects: Option<bool>,
    #[serde(deserialize_with = "opt_bool11")]
    enable_http2: Option<bool>,
    proxy_url: Option<serde_yaml::Value>,
    no_proxy: Option<serde_yaml::Value>,
    #[serde(deserialize_with = "opt_bool11")]
    proxy_from_environment: Option<bool>,
    proxy_connect_header: Option<serde_yaml::Value>,
    http_headers: Option<serde_yaml::Value>,
}

impl Default for RawDockerSdConfig {
    /// Prometheus' `DefaultDockerSDConfig`.
    fn default() -> Self {
        RawDockerSdConfig {
            host: String::new(),
            port: 80,
            filters: Vec::new(),
            host_networking_host: "localhost".to_owned(),
            refresh_interval: PromDuration(Duration::from_secs(60)),
            match_first_network: true,
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            follow_redirects: None,
            enable_http2: None,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: None,
            proxy_connect_header: None,
            http_headers: None,
        }
    }
}

/// Whether a raw HTTP client key holds a setting (null, `""` and `{}` are Prometheus' unset).
fn is_set(v: &Option<serde_yaml::Value>) -> bool {
    match v {
        None | Some(serde_yaml::Value::Null) => false,
        Some(serde_yaml::Value::String(s)) => !s.is_empty(),
        Some(serde_yaml::Value::Mapping(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

/// Parses and checks one raw `docker_sd_configs[]` element. The error names the problem (and
/// an unknown or unsupported key by name).
pub fn settings_from_yaml(raw: &serde_yaml::Value) -> Result<DockerSdSettings, String> {
    let raw: RawDockerSdConfig = crate::units::de::from_value(raw).map_err(|e| e.to_string())?;
    if raw.host.is_empty() {
        return Err("host missing".to_owned());
    }
    let address = parse_host(&raw.host)?;

    // The HTTP client settings: follow_redirects and enable_http2 change nothing towards the
    // engine (it never redirects; plain HTTP/1.1 is what Docker's own client speaks to it).
    let http_keys = [
        ("basic_auth", is_set(&raw.basic_auth)),
        ("authorization", is_set(&raw.authorization)),
        ("oauth2", is_set(&raw.oauth2)),
        ("bearer_token", is_set(&raw.bearer_token)),
        ("bearer_token_file", is_set(&raw.bearer_token_file)),
        ("tls_config", is_set(&raw.tls_config)),
        ("proxy_url", is_set(&raw.proxy_url)),
        ("no_proxy", is_set(&raw.no_proxy)),
        (
            "proxy_from_environment",
            raw.proxy_from_environment == Some(true),
        ),
        ("proxy_connect_header", is_set(&raw.proxy_connect_header)),
        ("http_headers", is_set(&raw.http_headers)),
    ];
    if let Some((key, _)) = http_keys.iter().find(|(_, set)| *set) {
        return Err(match address {
            DockerHost::Unix(_) => format!(
                "docker_sd_configs {key} is not supported yet (Promtail ignores it with a \
                 unix:// host: remove it)"
            ),
            DockerHost::Tcp(_) => format!("docker_sd_configs {key} is not supported yet"),
        });
    }
    if raw.refresh_interval.0.is_zero() {
        // Prometheus would panic on a zero ticker after the first refresh.
        return Err("refresh_interval: must be greater than 0".to_owned());
    }
    Ok(DockerSdSettings {
        host: raw.host,
        address,
        port: raw.port,
        host_networking_host: raw.host_networking_host,
        match_first_network: raw.match_first_network,
        filters: raw.filters,
        refresh_interval: raw.refresh_interval.0,
    })
}

/// The engine address, as Docker's client reads `<scheme>://<address>`.
fn parse_host(host: &str) -> Result<DockerHost, String> {
    let shown = crate::redact::url(host);
    let Some((scheme, rest)) = host.split_once("://") else {
        return Err(format!(
            "unable to parse docker host {shown:?}: expected unix:///path/to/docker.sock or \
             tcp://host:port"
        ));
    };
    match scheme {
        "unix" => {
            if rest.is_empty() {
                return Err(format!(
                    "docker host {shown:?} names no socket (unix:///var/run/docker.sock)"
                ));
            }
            Ok(DockerHost::Unix(PathBuf::from(rest)))
        }
        "tcp" | "http" => {
            let url = reqwest::Url::parse(&format!("http://{rest}"))
                .map_err(|e| format!("invalid docker host {shown:?}: {e}"))?;
            let Some(name) = url.host_str().filter(|h| !h.is_empty()) else {
                return Err(format!("invalid docker host {shown:?}: no host name"));
            };
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!(
                    "docker host {shown:?}: credentials in the host are not supported"
                ));
            }
            if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                return Err(format!(
                    "docker host {shown:?}: a path after the address is not supported yet"
                ));
            }
            // Docker's client dials a tcp:// address as written (a port is required); an
            // http:// one goes through an HTTP client (port 80 by default).
            let port = match (url.port(), scheme) {
                (Some(p), _) => p,
                (None, "http") => 80,
                (None, _) => {
                    return Err(format!(
                        "docker host {shown:?} has no port (tcp://host:2375)"
                    ));
                }
            };
            Ok(DockerHost::Tcp(format!("{name}:{port}")))
        }
        "https" => Err(format!(
            "docker host {shown:?}: https hosts (TLS to the engine) are not supported yet; use \
             unix:// or tcp://"
        )),
        other => Err(format!(
            "docker host {shown:?}: scheme {other:?} is not supported (use unix:// or tcp://)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<DockerSdSettings, String> {
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        settings_from_yaml(&v)
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let s = parse("host: unix:///var/run/docker.sock").unwrap();
        assert_eq!(
            s,
            DockerSdSettings {
                host: "unix:///var/run/docker.sock".into(),
                address: DockerHost::Unix("/var/run/docker.sock".into()),
                port: 80,
                host_networking_host: "localhost".into(),
                match_first_network: true,
                filters: vec![],
                refresh_interval: Duration::from_secs(60),
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            "host: tcp://127.0.0.1:2375\nport: 8080\nhost_networking_host: node-1\n\
             match_first_network: no\nrefresh_interval: 1m30s\nfollow_redirects: false\n\
             enable_http2: true\n\
             filters: [{name: name, values: [flog, web]}, {name: label, values: ['a=b']}]\n",
        )
        .unwrap();
        assert_eq!(s.address, DockerHost::Tcp("127.0.0.1:2375".into()));
        assert_eq!(s.port, 8080);
        assert_eq!(s.host_networking_host, "node-1");
        assert!(!s.match_first_network);
        assert_eq!(s.refresh_interval, Duration::from_secs(90));
        assert_eq!(
            s.filters,
            [
                DockerFilter {
                    name: "name".into(),
                    values: vec!["flog".into(), "web".into()]
                },
                DockerFilter {
                    name: "label".into(),
                    values: vec!["a=b".into()]
                },
            ]
        );
        let s = parse("host: http://docker.internal").unwrap();
        assert_eq!(s.address, DockerHost::Tcp("docker.internal:80".into()));
        let s = parse("host: 'tcp://[::1]:2375'").unwrap();
        assert_eq!(s.address, DockerHost::Tcp("[::1]:2375".into()));
    }

    #[test]
    fn problems_are_named() {
        for (yaml, want) in [
            ("port: 1", "host missing"),
            ("host: ''", "host missing"),
            ("host: /var/run/docker.sock", "unable to parse docker host"),
            ("host: 'unix://'", "names no socket"),
            ("host: 'tcp://docker'", "has no port"),
            ("host: 'tcp://u:p@docker:1'", "credentials"),
            ("host: 'tcp://docker:1/v1'", "a path after the address"),
            ("host: 'https://docker:2376'", "https hosts"),
            ("host: 'ssh://me@docker'", "scheme \"ssh\" is not supported"),
            ("host: 'tcp://docker:99999'", "invalid docker host"),
            (
                "host: unix:///d.sock\nrefresh_interval: 0s",
                "refresh_interval: must be greater than 0",
            ),
            ("host: unix:///d.sock\nrefresh_interval: 5x", "unknown unit"),
            ("host: unix:///d.sock\nport: eighty", "invalid"),
            (
                "host: unix:///d.sock\nsurprise: 1",
                "unknown field `surprise`",
            ),
            (
                "host: unix:///d.sock\nfilters: [{name: a, value: [b]}]",
                "unknown field `value`",
            ),
            (
                "host: unix:///d.sock\ntls_config: {ca_file: /ca}",
                "docker_sd_configs tls_config is not supported yet (Promtail ignores it",
            ),
            (
                "host: tcp://d:1\nbasic_auth: {username: u}",
                "docker_sd_configs basic_auth is not supported yet",
            ),
            (
                "host: tcp://d:1\nproxy_from_environment: true",
                "docker_sd_configs proxy_from_environment is not supported yet",
            ),
        ] {
            let msg = parse(yaml).unwrap_err();
            assert!(msg.contains(want), "{yaml:?}: {msg:?} lacks {want:?}");
        }
        // A password in the host is masked in messages.
        let msg = parse("host: 'ftp://u:hunter2@docker'").unwrap_err();
        assert!(
            !msg.contains("hunter2") && msg.contains("<secret>"),
            "{msg}"
        );
    }

    #[test]
    fn unset_http_client_keys_pass() {
        let s = parse(
            "host: unix:///d.sock\ntls_config: {}\nbearer_token: ''\nproxy_from_environment: false\n\
             basic_auth:\n",
        );
        assert!(s.is_ok(), "{s:?}");
    }
}
