//! Promtail's configuration, read the way Promtail reads it (spec §2–§4, §12).
//!
//! Responsibilities:
//! - serde structs that mirror Promtail's YAML 1:1 ([`Config`] and the section types), strict
//!   about unknown keys except under `server:` (warned about), with Promtail's defaults;
//! - Promtail's value syntax: Go and Prometheus durations, byte sizes, YAML 1.1 booleans, any
//!   scalar into a string field ([`types`], `de`);
//! - `-config.expand-env` ([`expand_env`]), the command line ([`Flags`], [`usage`],
//!   [`apply_flags`]) and loading ([`load`], [`Config::parse_str`]);
//! - validation after flags ([`Config::validate`]): Promtail's start-up checks plus the refusal,
//!   by YAML path, of every setting ferrotail does not implement yet;
//! - printing the effective config with secrets masked ([`Config::to_yaml_masked`]);
//! - a linear-time guard against deeply nested flow collections, run before any YAML text
//!   reaches serde_yaml (`yaml_depth`, also used for the positions file).
//!
//! Invariants: a config that Promtail accepts parses (it may then be refused by `validate` with
//! the path of the unsupported key, never silently ignored); every parse error names the YAML
//! path and, when known, the line and column; nothing here reads the process environment except
//! [`load`] (for `-config.expand-env`).

mod client;
/// yaml.v2's reading of scalars (lives in [`crate::units`]).
pub use crate::units::de;
mod envsubst;
mod flags;
mod http;
mod print;
mod relabel;
mod scrape;
mod sections;
mod server;
pub mod types;
mod validate;
pub(crate) use crate::units::yaml_depth;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use client::{BackoffConfig, ClientConfig};
pub use de::parse_yaml11_bool;
pub use envsubst::{ExpandError, ExpandErrorKind, expand_env};
pub use flags::{FlagError, Flags, LabelsFlag, UrlFlag, apply_flags, usage};
pub use http::{Authorization, BasicAuth, HttpHeader, OAuth2, TlsConfig, TlsVersion};
pub use relabel::{RelabelAction, RelabelConfig, RelabelRegex};
pub use scrape::{DecompressionConfig, FileSdConfig, RawMapping, ScrapeConfig, StaticConfig};
pub use sections::{
    FerrotailConfig, FileWatchConfig, GlobalConfig, LimitsConfig, LongLineAction, OptionsConfig,
    PositionsConfig, TargetConfig, TracingConfig, WalConfig, WalWatchConfig,
};
pub use server::{ServerConfig, ServerTlsConfig};
pub use types::{ByteSize, GoDuration, LogFormat, LogLevel, PromDuration};

use de::nullable;

/// The whole configuration file (all top-level keys optional).
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `global:`.
    #[serde(deserialize_with = "nullable")]
    pub global: GlobalConfig,
    /// `server:`.
    #[serde(deserialize_with = "nullable")]
    pub server: ServerConfig,
    /// `client:`, the deprecated single client, also set by the `-client.*` flags. It is used
    /// (appended to `clients`) only when it has a URL; its `external_labels` are merged into
    /// every client. Use [`Config::effective_clients`] for the resulting list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientConfig>,
    /// `clients:` as written in the YAML (see [`Config::effective_clients`]).
    #[serde(deserialize_with = "nullable")]
    pub clients: Vec<ClientConfig>,
    /// `positions:`.
    #[serde(deserialize_with = "nullable")]
    pub positions: PositionsConfig,
    /// `scrape_configs:`.
    #[serde(deserialize_with = "nullable")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `limits_config:`.
    #[serde(deserialize_with = "nullable")]
    pub limits_config: LimitsConfig,
    /// `target_config:`.
    #[serde(deserialize_with = "nullable")]
    pub target_config: TargetConfig,
    /// `options:` (empty since Promtail 3.0).
    #[serde(deserialize_with = "nullable")]
    pub options: OptionsConfig,
    /// `tracing:`.
    #[serde(deserialize_with = "nullable")]
    pub tracing: TracingConfig,
    /// `wal:`.
    #[serde(deserialize_with = "nullable")]
    pub wal: WalConfig,
    /// `ferrotail:` (ferrotail's own settings).
    #[serde(deserialize_with = "nullable")]
    pub ferrotail: FerrotailConfig,
    /// Warnings found while parsing (unknown `server:` keys, `stream_lag_labels`); returned
    /// again by [`Config::validate`].
    #[serde(skip)]
    pub warnings: Vec<Warning>,
    /// `-inspect` was given (set by [`apply_flags`]; not supported yet).
    #[serde(skip)]
    pub inspect: bool,
}

/// A non-fatal finding to log at start (level warn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The YAML path or flag concerned, e.g. `server.http_listen_host`.
    pub path: String,
    /// What is wrong and what ferrotail does about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What validation needs from the layers above `config` (the runtime's own parsers of
/// discovery and TLS settings), so that `config` imports none of them: [`crate::settings`]
/// implements it. Each answer is the error message, or the warnings as `(path, message)`.
pub trait RuntimeChecks {
    /// The server's TLS keys (`server.`-relative paths).
    fn server_tls(&self, cfg: &Config) -> Result<Vec<(String, String)>, (String, String)>;
    /// One `kubernetes_sd_configs[]` element.
    fn kubernetes_sd(&self, raw: &serde_yaml::Value) -> Result<(), String>;
    /// One `docker_sd_configs[]` element.
    fn docker_sd(&self, raw: &serde_yaml::Value) -> Result<(), String>;
    /// The `files` patterns of one `file_sd_configs[]` element.
    fn file_sd_files(&self, files: &[String]) -> Result<(), String>;
    /// The settings of a non-file target (`syslog`, `loki_push_api`, ...): `None` when
    /// ferrotail has no such source yet (refused as not supported).
    fn source(&self, key: &str, raw: &serde_yaml::Mapping) -> Option<Result<(), String>>;
}

/// A config file that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where the text came from (file path), or empty.
    pub origin: String,
    /// YAML path of the offending key (`scrape_configs[0].static_configs[0].lables`), if known.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
    /// 1-based line and column, if known.
    pub location: Option<(usize, usize)>,
    /// Add Promtail's hint about `-config.expand-env` (set when expansion was off).
    pub expand_env_hint: bool,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if !self.origin.is_empty() {
            write!(f, "{}: ", self.origin)?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " at line {line} column {column}")?;
        }
        if self.expand_env_hint {
            f.write_str(
                ". Use `-config.expand-env=true` flag if you want to expand environment variables \
                 in your config file",
            )?;
        }
        Ok(())
    }
}

/// Why the configuration cannot be used. `main` prints `Unable to parse config: <err>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// None of the `-config.file` candidates exists.
    #[error("{0} does not exist, set config.file for custom config path")]
    NotFound(String),
    /// The file exists but could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `-config.expand-env` failed.
    #[error("{origin}: {source}")]
    Expand {
        /// The file.
        origin: String,
        /// The expansion error.
        #[source]
        source: ExpandError,
    },
    /// YAML syntax, unknown key, wrong type, duplicate key, bad value, or a load-time check
    /// (`job_name is empty`, duplicate job names, HTTP client settings).
    #[error("{0}")]
    Parse(ParseError),
    /// Validation problems (all of them, one per line when several).
    #[error("{}", format_problems(.0))]
    Invalid(Vec<String>),
}

fn format_problems(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => {
            let mut s = format!("{} problems in the configuration:", many.len());
            for p in many {
                s.push_str("\n  - ");
                s.push_str(p);
            }
            s
        }
    }
}

/// Loads the configuration as Promtail does: the first existing file of `-config.file` (none:
/// defaults only), env expansion when `-config.expand-env`, strict parsing, then the flags that
/// were given ([`apply_flags`]). Run [`Config::validate`] on the result.
pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
    let mut cfg = if flags.config_file.is_empty() {
        Config::default()
    } else {
        let path = flags
            .config_file
            .split(',')
            .map(str::trim)
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| ConfigError::NotFound(flags.config_file.clone()))?;
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_err)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.utf8_error(),
            ))
        })?;
        let text = if flags.config_expand_env {
            expand_env(&text, |name| std::env::var(name).ok()).map_err(|source| {
                ConfigError::Expand {
                    origin: path.to_owned(),
                    source,
                }
            })?
        } else {
            text
        };
        Config::parse_str(&text, path).map_err(|e| match e {
            ConfigError::Parse(mut p) => {
                p.expand_env_hint = !flags.config_expand_env;
                ConfigError::Parse(p)
            }
            other => other,
        })?
    };
    apply_flags(&mut cfg, flags);
    Ok(cfg)
}

impl Config {
    /// Parses config text (already env-expanded); `origin` names it in errors (a file path, or
    /// `""`). No flags are applied.
    pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        validate::parse(text, origin)
    }

    /// The clients to run: `clients` in order, then the `client:` block / `-client.*` flags
    /// client if it has a URL, each with the `client:` external labels merged under its own.
    pub fn effective_clients(&self) -> Vec<ClientConfig> {
        self.effective_clients_with_paths()
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    /// [`Config::effective_clients`] with the YAML path of each (`clients[0]`, `client`).
    pub fn effective_clients_with_paths(&self) -> Vec<(String, ClientConfig)> {
        let mut out: Vec<(String, ClientConfig)> = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("clients[{i}]"), c.clone()))
            .collect();
        if let Some(single) = &self.client {
            if single.url.is_some() {
                out.push(("client".to_owned(), single.clone()));
            }
            if !single.external_labels.is_empty() {
                for (_, c) in &mut out {
                    for (k, v) in &single.external_labels {
                        c.external_labels
                            .entry(k.clone())
                            .or_insert_with(|| v.clone());
                    }
                }
            }
        }
        out
    }

    /// The read-time line cap in bytes: `limits_config.max_line_size`, or
    /// `ferrotail.max_line_size_default` when that is 0.
    pub fn read_line_cap(&self) -> u64 {
        match self.limits_config.max_line_size.bytes() {
            0 => self.ferrotail.max_line_size_default.bytes(),
            n => n,
        }
    }

    /// Checks the loaded config (after flags): Promtail's start-up checks, then the settings
    /// ferrotail does not support yet, with `runtime` checking what only the runtime's parsers
    /// can (discovery and TLS settings; [`crate::settings::check`] passes them). All problems
    /// are reported together; warnings (including those found while parsing) are returned for
    /// logging.
    pub fn validate_with(&self, runtime: &dyn RuntimeChecks) -> Result<Vec<Warning>, ConfigError> {
        validate::validate(self, runtime)
    }

    /// The effective config as YAML, every secret replaced by `<secret>`
    /// (for `-print-config-stderr`, `-log-config-reverse-order` and `-dry-run`).
    pub fn to_yaml_masked(&self) -> String {
        print::to_yaml_masked(self)
    }
}

#[cfg(test)]
mod tests;
