//! The small top-level sections (spec §3.1, §3.4–3.9) and ferrotail's own `ferrotail:` section.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de::{bool11, nullable, text};
use super::types::{ByteSize, GoDuration};

/// `global:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// `file_watch_config`: per-file stat polling.
    #[serde(deserialize_with = "nullable")]
    pub file_watch_config: FileWatchConfig,
}

/// `global.file_watch_config`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileWatchConfig {
    /// `min_poll_frequency`, default 250ms (`-file-watch.min_poll_frequency`).
    pub min_poll_frequency: GoDuration,
    /// `max_poll_frequency`, default 250ms (`-file-watch.max_poll_frequency`); must be >= min.
    pub max_poll_frequency: GoDuration,
}

impl Default for FileWatchConfig {
    fn default() -> Self {
        FileWatchConfig {
            min_poll_frequency: GoDuration::from_millis(250),
            max_poll_frequency: GoDuration::from_millis(250),
        }
    }
}

/// `positions:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PositionsConfig {
    /// `filename`, default `/var/log/positions.yaml` (`-positions.file`).
    #[serde(deserialize_with = "text")]
    pub filename: String,
    /// `sync_period`, default 10s (`-positions.sync-period`).
    pub sync_period: GoDuration,
    /// `ignore_invalid_yaml`, default false (`-positions.ignore-invalid-yaml`): start empty
    /// instead of failing when the file is corrupt.
    #[serde(deserialize_with = "bool11")]
    pub ignore_invalid_yaml: bool,
}

impl Default for PositionsConfig {
    fn default() -> Self {
        PositionsConfig {
            filename: "/var/log/positions.yaml".into(),
            sync_period: GoDuration::from_secs(10),
            ignore_invalid_yaml: false,
        }
    }
}

/// `limits_config:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// `readline_rate_enabled`, default false (see `pipeline::readline_limit`).
    #[serde(deserialize_with = "bool11")]
    pub readline_rate_enabled: bool,
    /// `readline_rate`, default 10000 lines/s.
    #[serde(deserialize_with = "nullable")]
    pub readline_rate: f64,
    /// `readline_burst`, default 10000.
    #[serde(deserialize_with = "nullable")]
    pub readline_burst: i64,
    /// `readline_rate_drop`, default true.
    #[serde(deserialize_with = "bool11")]
    pub readline_rate_drop: bool,
    /// `max_streams`, default 0 (no limit): streams per client batch.
    #[serde(deserialize_with = "nullable")]
    pub max_streams: u64,
    /// `max_line_size`, default 0 (disabled): longer lines are dropped, or truncated with
    /// `max_line_size_truncate`.
    pub max_line_size: ByteSize,
    /// `max_line_size_truncate`, default false.
    #[serde(deserialize_with = "bool11")]
    pub max_line_size_truncate: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            readline_rate_enabled: false,
            readline_rate: 10000.0,
            readline_burst: 10000,
            readline_rate_drop: true,
            max_streams: 0,
            max_line_size: ByteSize(0),
            max_line_size_truncate: false,
        }
    }
}

/// `target_config:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// `sync_period`, default 10s (`-target.sync-period`): how often globs are re-evaluated.
    pub sync_period: GoDuration,
    /// `stdin`, default false (`-stdin`; not supported yet).
    #[serde(deserialize_with = "bool11")]
    pub stdin: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            sync_period: GoDuration::from_secs(10),
            stdin: false,
        }
    }
}

/// `options:` (empty in Promtail 3.x).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptionsConfig {
    /// `stream_lag_labels`: removed in Promtail 3.0; accepted with a warning and ignored.
    #[serde(skip_serializing)]
    pub stream_lag_labels: Option<serde_yaml::Value>,
}

/// `tracing:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// `enabled`, default true (`-tracing.enabled`); tracing is a no-op in ferrotail.
    #[serde(deserialize_with = "bool11")]
    pub enabled: bool,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig { enabled: true }
    }
}

/// `wal:` (undocumented Promtail WAL; `enabled: true` is not supported).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// `enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub enabled: bool,
    /// `dir`, default `""`.
    #[serde(deserialize_with = "text")]
    pub dir: String,
    /// `cleanSegmentsOlderThan`, default 1h.
    #[serde(rename = "cleanSegmentsOlderThan")]
    pub clean_segments_older_than: GoDuration,
    /// `watchConfig`.
    #[serde(rename = "watchConfig", deserialize_with = "nullable")]
    pub watch_config: WalWatchConfig,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            enabled: false,
            dir: String::new(),
            clean_segments_older_than: GoDuration::from_secs(3600),
            watch_config: WalWatchConfig::default(),
        }
    }
}

/// `wal.watchConfig`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalWatchConfig {
    /// `minReadFrequency`, default 250ms.
    #[serde(rename = "minReadFrequency")]
    pub min_read_frequency: GoDuration,
    /// `maxReadFrequency`, default 1s.
    #[serde(rename = "maxReadFrequency")]
    pub max_read_frequency: GoDuration,
}

impl Default for WalWatchConfig {
    fn default() -> Self {
        WalWatchConfig {
            min_read_frequency: GoDuration::from_millis(250),
            max_read_frequency: GoDuration::from_secs(1),
        }
    }
}

/// What the reader does with a line longer than the read-time cap
/// ([`FerrotailConfig::max_line_size_default`] or `limits_config.max_line_size`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LongLineAction {
    /// `truncate` (default): keep the first bytes up to the cap, skip the rest of the line.
    #[default]
    Truncate,
    /// `drop`: skip the whole line (counted).
    Drop,
}

impl LongLineAction {
    /// Parses `truncate` or `drop`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "truncate" => Ok(LongLineAction::Truncate),
            "drop" => Ok(LongLineAction::Drop),
            _ => Err(format!(
                "unknown long_line_action {s:?} (valid: truncate, drop)"
            )),
        }
    }

    /// The YAML/flag name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LongLineAction::Truncate => "truncate",
            LongLineAction::Drop => "drop",
        }
    }
}

impl fmt::Display for LongLineAction {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::de::scalar_deserialize!(
    LongLineAction,
    LongLineAction::parse,
    LongLineAction::Truncate
);

impl Serialize for LongLineAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `ferrotail:` — ferrotail's own settings (Promtail has no such section; all optional). Each
/// is also a flag `-ferrotail.<key with dashes>`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FerrotailConfig {
    /// `inflight_bytes`, default 4MiB (`-ferrotail.inflight-bytes`): byte budget of entries
    /// read but not yet acknowledged by every client. When it is full, reading pauses. Four
    /// default batches keep a sender busy while the next ones are built (BENCHMARKS.md: no
    /// faster with 64MiB against a real Loki, at a third of the memory).
    pub inflight_bytes: ByteSize,
    /// `max_line_size_default`, default 256KiB (`-ferrotail.max-line-size-default`): the
    /// read-time line cap used when `limits_config.max_line_size` is 0, so memory stays bounded
    /// by a file without newlines.
    pub max_line_size_default: ByteSize,
    /// `long_line_action`, default `truncate` (`-ferrotail.long-line-action`): what the reader
    /// does with a line over the cap: `truncate` or `drop`.
    pub long_line_action: LongLineAction,
    /// `shutdown_timeout`, default 30s (`-ferrotail.shutdown-timeout`): how long a graceful
    /// shutdown waits for in-flight batches before writing positions and exiting.
    pub shutdown_timeout: GoDuration,
    /// `client_concurrency`, default 1 (`-ferrotail.client-concurrency`, at least 1): concurrent
    /// push requests per client and tenant.
    #[serde(deserialize_with = "nullable")]
    pub client_concurrency: u32,
}

impl Default for FerrotailConfig {
    fn default() -> Self {
        FerrotailConfig {
            inflight_bytes: ByteSize(4 << 20),
            max_line_size_default: ByteSize(256 << 10),
            long_line_action: LongLineAction::Truncate,
            shutdown_timeout: GoDuration::from_secs(30),
            client_concurrency: 1,
        }
    }
}
