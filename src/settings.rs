//! Converts the Promtail-shaped [`Config`] into the runtime settings of each part, once, at
//! start. Runtime code never sees YAML types or re-validates.
//!
//! File targets of `static_configs` are made from their groups as discovered ones are
//! ([`crate::discovery::targets`], spec §4.6).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::client::{Auth, BackoffSettings, ClientSettings, PemSource, Secret, TlsSettings};
use crate::config::{ClientConfig, Config};
use crate::discovery::TargetGroup;
use crate::entry::LabelSet;
use crate::metrics::Metrics;
use crate::positions::PositionsSettings;
use crate::redact;
use crate::server::tls::CipherSuites;
use crate::server::{ClientAuth, MinVersion, ServerSettings, ServerTlsSettings};
use crate::tail::{FileTarget, LongLineAction, TailSettings};

/// Errors turning a validated config into runtime settings (things only checkable here).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    /// YAML path of the offending value.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Settings of the main HTTP server (`server:`), TLS included. The TLS files are read later, by
/// [`crate::server::Server::bind`].
pub fn server(cfg: &Config) -> Result<ServerSettings, SettingsError> {
    let s = &cfg.server;
    let err = |path: &str, message: String| SettingsError {
        path: format!("server.{path}"),
        message,
    };
    let ip: IpAddr = if s.http_listen_address.is_empty() {
        // Promtail's default: every interface (docs/security.md advises a loopback address).
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        s.http_listen_address.parse().map_err(|e| {
            err(
                "http_listen_address",
                format!("{:?}: {e}", s.http_listen_address),
            )
        })?
    };
    let read_header_timeout = [
        s.http_server_read_header_timeout,
        s.http_server_read_timeout,
    ]
    .into_iter()
    .map(|d| d.as_std())
    .find(|d| !d.is_zero());
    Ok(ServerSettings {
        listen: SocketAddr::new(ip, s.http_listen_port),
        path_prefix: s.http_path_prefix.clone(),
        health_check_target: s.health_check_target(),
        serve_metrics: s.register_instrumentation || s.profiling_enabled,
        tls: server_tls(cfg)
            .map(|(tls, _warnings)| tls)
            .map_err(|(path, message)| err(&path, message))?,
        read_header_timeout,
    })
}

/// A problem or warning about a key under `server.`: `(path, message)`.
pub type ServerProblem = (String, String);

/// `server.http_tls_config` and the server-wide TLS keys, checked: the settings (`None` when TLS
/// is off) and warnings, or the first problem. [`crate::config::Config::validate`] runs this too,
/// so that problems are reported with every other one and warnings are logged at start.
pub fn server_tls(
    cfg: &Config,
) -> Result<(Option<ServerTlsSettings>, Vec<ServerProblem>), ServerProblem> {
    let s = &cfg.server;
    let t = &s.http_tls_config;
    let mut warnings = Vec::new();
    // Checked even without TLS, as dskit does at start.
    let (min_version, warning) =
        MinVersion::parse(&s.tls_min_version).map_err(|e| ("tls_min_version".to_owned(), e))?;
    warnings.extend(warning.map(|w| ("tls_min_version".to_owned(), w)));
    let suites = CipherSuites::parse(&s.tls_cipher_suites)
        .map_err(|e| ("tls_cipher_suites".to_owned(), e))?;
    if !suites.unsupported.is_empty() {
        warnings.push((
            "tls_cipher_suites".to_owned(),
            format!(
                "not offered, as rustls implements only AEAD suites with forward secrecy: {}",
                suites.unsupported.join(",")
            ),
        ));
    }
    let client_auth = ClientAuth::parse(&t.client_auth_type)
        .map_err(|e| ("http_tls_config.client_auth_type".to_owned(), e))?;
    if !t.is_set() {
        // Without TLS these keys change nothing: no warning either.
        return Ok((None, Vec::new()));
    }
    let path = |key: &str| format!("http_tls_config.{key}");
    // dskit turns TLS on only when both a certificate and a key are given, and otherwise serves
    // plain HTTP without a word; a half-written TLS block is refused here instead.
    let cert = pem_source(&t.cert, &t.cert_file).ok_or_else(|| {
        (
            path("cert_file"),
            "missing one of cert or cert_file (the server would otherwise serve plain HTTP)"
                .to_owned(),
        )
    })?;
    let key = secret(&t.key, &t.key_file).ok_or_else(|| {
        (
            path("key_file"),
            "missing one of key or key_file (the server would otherwise serve plain HTTP)"
                .to_owned(),
        )
    })?;
    let client_ca = pem_source(&t.client_ca, &t.client_ca_file);
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err((
            path("client_ca_file"),
            "client CA's have been configured without a Client Auth Policy (set \
             client_auth_type)"
                .to_owned(),
        ));
    }
    // Go would verify against the system's CAs, i.e. accept any publicly issued certificate:
    // surely not what was meant.
    if client_ca.is_none() && client_auth.verifies() {
        return Err((
            path("client_ca_file"),
            format!(
                "client_auth_type {} needs client_ca_file (or client_ca)",
                t.client_auth_type
            ),
        ));
    }
    let tls = ServerTlsSettings {
        cert,
        key,
        client_auth,
        client_ca,
        min_version,
        tls12_suites: suites.tls12,
    };
    Ok((Some(tls), warnings))
}

/// A value given as a file or inline: the file wins (as in Prometheus' HTTP client and
/// exporter-toolkit); `None` when neither is set.
fn file_or_inline<T>(
    inline: &str,
    file: &str,
    from_file: fn(PathBuf) -> T,
    from_text: fn(String) -> T,
) -> Option<T> {
    if !file.is_empty() {
        Some(from_file(PathBuf::from(file)))
    } else if !inline.is_empty() {
        Some(from_text(inline.to_owned()))
    } else {
        None
    }
}

/// A file path or inline PEM text.
fn pem_source(inline: &str, file: &str) -> Option<PemSource> {
    file_or_inline(inline, file, PemSource::File, PemSource::Inline)
}

/// Positions settings (`-dry-run` opens the file read-only).
pub fn positions(cfg: &Config, dry_run: bool) -> PositionsSettings {
    PositionsSettings {
        filename: PathBuf::from(&cfg.positions.filename),
        sync_period: cfg.positions.sync_period.as_std(),
        ignore_invalid_yaml: cfg.positions.ignore_invalid_yaml,
        read_only: dry_run,
    }
}

/// Tailer settings. The read-time line cap: with `limits_config.max_line_size` set, lines are
/// cut one byte past it, so the client still sees them as too long and applies Promtail's
/// drop-or-truncate rule and metrics; without it, ferrotail's own cap and action apply.
pub fn tail(cfg: &Config) -> TailSettings {
    let limit = cfg.limits_config.max_line_size.bytes();
    let (max_line_bytes, long_line_action) = if limit > 0 {
        (limit.saturating_add(1), LongLineAction::Truncate)
    } else {
        (
            cfg.ferrotail.max_line_size_default.bytes(),
            match cfg.ferrotail.long_line_action {
                crate::config::LongLineAction::Drop => LongLineAction::Drop,
                crate::config::LongLineAction::Truncate => LongLineAction::Truncate,
            },
        )
    };
    let fw = &cfg.global.file_watch_config;
    let (mut min_poll, mut max_poll) = (
        fw.min_poll_frequency.as_std(),
        fw.max_poll_frequency.as_std(),
    );
    if min_poll.is_zero() && max_poll.is_zero() {
        min_poll = Duration::from_millis(250);
        max_poll = Duration::from_millis(250);
    }
    TailSettings {
        sync_period: cfg.target_config.sync_period.as_std(),
        min_poll,
        max_poll,
        max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
        long_line_action,
        read_buffer_bytes: 64 * 1024,
    }
}

/// The host name Promtail compares `__host__` with: `$HOSTNAME`, else the kernel's.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_default()
}

/// File targets of every `static_configs` job (spec §4.2, §4.6), as
/// [`crate::discovery::targets`] makes them from discovered groups.
pub fn file_targets(cfg: &Config, metrics: &Metrics) -> Vec<FileTarget> {
    let host = hostname();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for sc in &cfg.scrape_configs {
        crate::discovery::targets::file_targets_of(
            &sc.job_name,
            &relabel_rules(&sc.relabel_configs),
            &static_groups(sc),
            &host,
            metrics,
            &mut seen,
            &mut out,
            &mut Default::default(),
        );
    }
    out
}

/// A job's `static_configs` as target groups (a group without targets has `localhost`).
pub fn static_groups(sc: &crate::config::ScrapeConfig) -> Vec<TargetGroup> {
    sc.static_configs
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, group)| TargetGroup {
            targets: group.targets_or_default(),
            labels: group.labels.clone(),
            source: format!("{}/static/{i}", sc.job_name),
        })
        .collect()
}

/// A secret given in a file (read for every use) or inline.
fn secret(inline: &str, file: &str) -> Option<Secret> {
    file_or_inline(inline, file, Secret::File, Secret::Inline)
}

/// Settings of every client (the `clients` list, then the `client:`/`-client.url` one).
pub fn clients(cfg: &Config) -> Result<Vec<ClientSettings>, SettingsError> {
    let mut out = Vec::new();
    for (path, c) in cfg.effective_clients_with_paths() {
        out.push(client(cfg, &path, &c)?);
    }
    Ok(out)
}

fn client(cfg: &Config, path: &str, c: &ClientConfig) -> Result<ClientSettings, SettingsError> {
    let err = |message: String| SettingsError {
        path: path.to_string(),
        message,
    };
    let url_text = c.url.clone().unwrap_or_default();
    // URLs are echoed with their password masked (they may carry `user:password@`).
    let url = reqwest::Url::parse(&url_text)
        .map_err(|e| err(format!("url {:?}: {e}", redact::url(&url_text))))?;
    let auth = if let Some(b) = &c.basic_auth {
        Auth::Basic {
            username: secret(&b.username, &b.username_file)
                .unwrap_or(Secret::Inline(String::new())),
            password: secret(&b.password, &b.password_file)
                .unwrap_or(Secret::Inline(String::new())),
        }
    } else if let Some(a) = &c.authorization {
        let scheme = if a.auth_type.is_empty() {
            "Bearer".to_string()
        } else {
            a.auth_type.clone()
        };
        match secret(&a.credentials, &a.credentials_file) {
            Some(credentials) => Auth::Authorization {
                scheme,
                credentials,
            },
            None => Auth::None,
        }
    } else if let Some(t) = secret(&c.bearer_token, &c.bearer_token_file) {
        Auth::Bearer(t)
    } else {
        Auth::None
    };
    let proxy_url = match c.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            reqwest::Url::parse(p)
                .map_err(|e| err(format!("proxy_url {:?}: {e}", redact::url(p))))?,
        ),
        None => None,
    };
    let t = &c.tls_config;
    let tls = TlsSettings {
        ca: pem_source(&t.ca, &t.ca_file),
        cert: pem_source(&t.cert, &t.cert_file),
        key: secret(&t.key, &t.key_file),
        server_name: Some(t.server_name.clone()).filter(|s| !s.is_empty()),
        insecure_skip_verify: t.insecure_skip_verify,
    };
    let max_line = cfg.limits_config.max_line_size.bytes();
    Ok(ClientSettings {
        url,
        name: if c.name.is_empty() {
            default_client_name(c)
        } else {
            c.name.clone()
        },
        tenant_id: Some(c.tenant_id.clone()).filter(|t| !t.is_empty()),
        batch_wait: c.batchwait.as_std(),
        batch_size: usize::try_from(c.batchsize).unwrap_or(usize::MAX),
        timeout: c.timeout.as_std(),
        headers: c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        external_labels: LabelSet::from_pairs(c.external_labels.clone()),
        backoff: BackoffSettings {
            min_period: c.backoff_config.min_period.as_std(),
            max_period: c.backoff_config.max_period.as_std(),
            max_retries: c.backoff_config.max_retries,
        },
        drop_rate_limited_batches: c.drop_rate_limited_batches,
        auth,
        proxy_url,
        proxy_from_environment: c.proxy_from_environment,
        tls,
        follow_redirects: c.follow_redirects,
        concurrency: cfg.ferrotail.client_concurrency.max(1) as usize,
        max_line_size: (max_line > 0).then(|| usize::try_from(max_line).unwrap_or(usize::MAX)),
        max_line_size_truncate: cfg.limits_config.max_line_size_truncate,
        max_streams: usize::try_from(cfg.limits_config.max_streams).unwrap_or(usize::MAX),
    })
}

/// Promtail's default client name: the first 6 hex digits of the sha256 of the client's YAML.
fn default_client_name(c: &ClientConfig) -> String {
    use sha2::{Digest, Sha256};
    let yaml = serde_yaml::to_string(c).unwrap_or_default();
    let digest = Sha256::digest(yaml.as_bytes());
    digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// Runtime relabel rules of a validated `relabel_configs` list (spec §4.5), with the semantics of
/// Promtail 3.4 (Prometheus 2.55): the regex anchored as `^(?:...)$` in Go syntax, legacy label
/// names for `replace` targets.
pub fn relabel_rules(
    configs: &[crate::config::RelabelConfig],
) -> Vec<crate::discovery::relabel::Rule> {
    use crate::config::RelabelAction as A;
    use crate::discovery::relabel::{Action, NameScheme, Rule, anchored_regex};
    configs
        .iter()
        .map(|c| {
            let regex = c.regex();
            Rule {
                source_labels: c.source_labels.clone().unwrap_or_default(),
                separator: c.separator.clone(),
                target_label: c.target_label.clone(),
                // The config compiled the pattern already (a bad one failed the load); it
                // compiles again here. Should the Go translation refuse it, the config's own
                // compilation is still a faithful anchoring of the same pattern.
                regex: anchored_regex(regex.as_str()).unwrap_or_else(|_| regex.regex().clone()),
                modulus: c.modulus,
                replacement: c.replacement.clone(),
                action: match c.action {
                    A::Replace => Action::Replace,
                    A::Keep => Action::Keep,
                    A::Drop => Action::Drop,
                    A::KeepEqual => Action::KeepEqual,
                    A::DropEqual => Action::DropEqual,
                    A::HashMod => Action::HashMod,
                    A::LabelMap => Action::LabelMap,
                    A::LabelDrop => Action::LabelDrop,
                    A::LabelKeep => Action::LabelKeep,
                    A::Lowercase => Action::Lowercase,
                    A::Uppercase => Action::Uppercase,
                },
                names: NameScheme::Legacy,
            }
        })
        .collect()
}

/// What kind of job a scrape config is: Promtail takes the first of its sources in its
/// precedence order (spec §4.1): any service-discovery list but `docker_sd_configs` makes a
/// file job, then `journal`, `syslog`, ..., `cloudflare`, `docker_sd_configs`, `heroku_drain`.
pub enum JobKind<'a> {
    /// Files from static and discovered targets.
    Files,
    /// Container logs through the Docker engine, one element per `docker_sd_configs[]`.
    Docker(&'a [serde_yaml::Value]),
    /// Another source, by its key (`syslog`, `loki_push_api`, ...), with its settings.
    Other(&'static str, &'a serde_yaml::Mapping),
}

/// The kind of `sc` (see [`JobKind`]).
pub fn job_kind(sc: &crate::config::ScrapeConfig) -> JobKind<'_> {
    let file_job = sc
        .sd_lists()
        .iter()
        .any(|(key, n)| *key != "docker_sd_configs" && n.is_some());
    if file_job {
        if sc.docker_sd_configs.is_some() {
            tracing::warn!(job = %sc.job_name, "The job has file targets; its docker_sd_configs are ignored, as Promtail does.");
        }
        return JobKind::Files;
    }
    for (key, raw) in sc.other_targets() {
        if key == "heroku_drain"
            && let Some(docker) = &sc.docker_sd_configs
        {
            return JobKind::Docker(docker);
        }
        if let Some(raw) = raw {
            return JobKind::Other(key, raw);
        }
    }
    match &sc.docker_sd_configs {
        Some(docker) => JobKind::Docker(docker),
        None => JobKind::Files,
    }
}

/// The longest Docker log line kept, as Promtail's docker target: `limits_config.max_line_size`,
/// or 256 KiB when that is 0.
pub fn docker_max_line(cfg: &Config) -> usize {
    match cfg.limits_config.max_line_size.bytes() {
        0 => 256 * 1024,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// Promtail's `limits_config.readline_rate_*`: one bucket for every job, or `None` when
/// `readline_rate_enabled` is false.
pub fn readline_limit(
    cfg: &Config,
    metrics: &Metrics,
) -> Option<std::sync::Arc<crate::pipeline::readline_limit::ReadlineLimiter>> {
    let l = &cfg.limits_config;
    l.readline_rate_enabled.then(|| {
        std::sync::Arc::new(crate::pipeline::readline_limit::ReadlineLimiter::new(
            l.readline_rate,
            l.readline_burst,
            l.readline_rate_drop,
            metrics,
        ))
    })
}

/// The job `-stdin` uses without scrape configs: Promtail's `stdin` job with the labels
/// `job="stdin"` and `hostname=<host>`.
pub fn stdin_default_job() -> crate::config::ScrapeConfig {
    let yaml = format!(
        "job_name: stdin\nstatic_configs:\n  - labels: {{job: stdin}}\n  - labels: {{hostname: {}}}\n",
        serde_json::Value::String(hostname())
    );
    serde_yaml::from_str(&yaml).unwrap_or_default()
}

/// The labels of `-stdin` entries: the union of the job's `static_configs` labels, later
/// groups winning (Promtail's merge; a `__path__` label stays, as in Promtail).
pub fn stdin_labels(sc: &crate::config::ScrapeConfig) -> LabelSet {
    let mut labels = std::collections::BTreeMap::new();
    for group in sc.static_configs() {
        labels.extend(group.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    LabelSet::from_pairs(labels)
}

/// The runtime's checks of what validation cannot parse itself ([`crate::config::RuntimeChecks`]).
pub struct Runtime;

impl crate::config::RuntimeChecks for Runtime {
    fn server_tls(&self, cfg: &Config) -> Result<Vec<(String, String)>, (String, String)> {
        server_tls(cfg).map(|(_, warnings)| warnings)
    }
    fn kubernetes_sd(&self, raw: &serde_yaml::Value) -> Result<(), String> {
        // The host only adds the node filter; what is checked does not depend on it.
        crate::discovery::kubernetes::settings_from_yaml(raw, "").map(|_| ())
    }
    fn docker_sd(&self, raw: &serde_yaml::Value) -> Result<(), String> {
        crate::discovery::docker::settings_from_yaml(raw).map(|_| ())
    }
    fn file_sd_files(&self, files: &[String]) -> Result<(), String> {
        crate::discovery::file_sd::check_config(files).map_err(|e| e.to_string())
    }
    fn source(&self, key: &str, raw: &serde_yaml::Mapping) -> Option<Result<(), String>> {
        crate::sources::check(key, raw)
    }
}

/// Checks `cfg` completely: the config's own rules and the runtime's parsers (see
/// [`crate::config::Config::validate_with`]).
pub fn check(cfg: &Config) -> Result<Vec<crate::config::Warning>, crate::config::ConfigError> {
    cfg.validate_with(&Runtime)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn targets(yaml: &str) -> (Vec<FileTarget>, Metrics) {
        let cfg = Config::parse_str(yaml, "test.yaml").unwrap();
        let metrics = Metrics::new();
        let t = file_targets(&cfg, &metrics);
        (t, metrics)
    }

    #[test]
    fn static_targets_go_through_the_jobs_relabel_rules() {
        let yaml = r#"
clients: [{url: http://loki:3100/loki/api/v1/push}]
scrape_configs:
- job_name: apps
  static_configs:
  - targets: [localhost]
    labels: {app: web, team: Payments, __logdir: /srv/web, empty: ""}
  - labels: {app: batch, __logdir: /srv/batch}
  - labels: {app: debug, __path__: /tmp/debug.log}
  relabel_configs:
  - {source_labels: [app], regex: debug, action: drop}
  - {source_labels: [__logdir], target_label: __path__, replacement: '$1/*.log'}
  - {source_labels: [team], target_label: team, action: lowercase}
  - {action: labelmap, regex: 'app', replacement: service}
"#;
        let (t, metrics) = targets(yaml);
        let got: Vec<(String, String)> = t
            .iter()
            .map(|t| (t.include.clone(), t.labels.stream_key()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/srv/web/*.log".to_owned(),
                    r#"{app="web", service="web", team="payments"}"#.to_owned()
                ),
                (
                    "/srv/batch/*.log".to_owned(),
                    r#"{app="batch", service="batch"}"#.to_owned()
                ),
            ],
            "the empty-valued label is gone, __ labels removed after relabeling"
        );
        let dropped = metrics.targets_failed.with_label_values(&["dropped"]).get();
        assert_eq!(dropped, 1, "the debug target was dropped by its rule");
    }

    #[test]
    fn a_rule_that_builds_no_path_leaves_the_target_without_one() {
        let yaml = r#"
clients: [{url: http://loki:3100/loki/api/v1/push}]
scrape_configs:
- job_name: apps
  static_configs:
  - labels: {__path__: /var/log/a.log}
  relabel_configs:
  - {action: labeldrop, regex: __path__}
"#;
        let (t, metrics) = targets(yaml);
        assert!(t.is_empty());
        assert_eq!(
            metrics.targets_failed.with_label_values(&["no_path"]).get(),
            1
        );
    }

    #[test]
    fn the_readline_limit_only_when_enabled() {
        let m = Metrics::new();
        let mut cfg = Config::default();
        assert!(readline_limit(&cfg, &m).is_none());
        cfg.limits_config.readline_rate_enabled = true;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(readline_limit(&cfg, &m).is_some());
    }
}
