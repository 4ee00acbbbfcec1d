//! Converts the Promtail-shaped [`Config`] into the runtime settings of each part, once, at
//! start. Runtime code never sees YAML types or re-validates.
//!
//! File targets follow spec §4.6 for `static_configs` (no relabeling yet: it is refused by
//! validation): each target gets `__address__`, is dropped when `__host__` names another host,
//! ignored without `__path__`, loses every `__*` label, and duplicates are counted as `exists`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::client::{Auth, BackoffSettings, ClientSettings, PemSource, Secret, TlsSettings};
use crate::config::{ClientConfig, Config};
use crate::entry::LabelSet;
use crate::metrics::Metrics;
use crate::positions::PositionsSettings;
use crate::redact;
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
fn hostname() -> String {
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

/// File targets of every `static_configs` job (spec §4.2, §4.6).
pub fn file_targets(cfg: &Config, metrics: &Metrics) -> Vec<FileTarget> {
    let host = hostname();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for sc in &cfg.scrape_configs {
        for group in sc.static_configs.iter().flatten() {
            for address in group.targets_or_default() {
                let mut labels: BTreeMap<String, String> = group.labels.clone();
                labels.insert("__address__".into(), address);
                if let Some(h) = labels.get("__host__")
                    && *h != host
                {
                    metrics
                        .targets_failed
                        .with_label_values(&["wrong_host"])
                        .inc();
                    continue;
                }
                let Some(include) = labels.get("__path__").cloned() else {
                    tracing::info!(job = %sc.job_name, "Target has no __path__ label, ignoring it.");
                    metrics.targets_failed.with_label_values(&["no_path"]).inc();
                    continue;
                };
                let exclude = labels
                    .get("__path_exclude__")
                    .cloned()
                    .filter(|e| !e.is_empty());
                labels.retain(|k, _| !k.starts_with("__"));
                let labels = LabelSet::from_pairs(labels);
                let key = (
                    sc.job_name.clone(),
                    include.clone(),
                    labels.stream_key(),
                    exclude.clone(),
                );
                if !seen.insert(key) {
                    metrics.targets_failed.with_label_values(&["exists"]).inc();
                    continue;
                }
                out.push(FileTarget {
                    job: sc.job_name.clone(),
                    labels,
                    include,
                    exclude,
                });
            }
        }
    }
    out
}

fn secret(inline: &str, file: &str) -> Option<Secret> {
    if !file.is_empty() {
        Some(Secret::File(PathBuf::from(file)))
    } else if !inline.is_empty() {
        Some(Secret::Inline(inline.to_string()))
    } else {
        None
    }
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
    let pem = |inline: &str, file: &str| {
        if !file.is_empty() {
            Some(PemSource::File(PathBuf::from(file)))
        } else if !inline.is_empty() {
            Some(PemSource::Inline(inline.to_string()))
        } else {
            None
        }
    };
    let tls = TlsSettings {
        ca: pem(&t.ca, &t.ca_file),
        cert: pem(&t.cert, &t.cert_file),
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
