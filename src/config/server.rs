//! The `server:` section (Promtail's server block over dskit's server config, spec §2.2/§3.2).
//!
//! Unlike the rest of the config this section is not strict: keys we do not know are accepted and
//! reported as warnings by the loader, because configs written for older Promtail versions carry
//! dskit keys that were later renamed or removed. [`ServerConfig::KNOWN_KEYS`] lists the keys
//! that are not warned about.

use serde::{Deserialize, Serialize};

use super::de::{bool11, nullable, opt_bool11, text};
use super::types::{GoDuration, LogFormat, LogLevel};

/// `server:`. Every key of dskit's server config is accepted; most only matter to Promtail's gRPC
/// server, which ferrotail does not run.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerConfig {
    /// `http_listen_network`, default `tcp`.
    #[serde(deserialize_with = "text")]
    pub http_listen_network: String,
    /// `http_listen_address`, default `""` (all interfaces).
    #[serde(deserialize_with = "text")]
    pub http_listen_address: String,
    /// `http_listen_port`, default `80`; 0 picks a free port.
    #[serde(deserialize_with = "nullable")]
    pub http_listen_port: u16,
    /// `http_listen_conn_limit`, default 0 (no limit).
    #[serde(deserialize_with = "nullable")]
    pub http_listen_conn_limit: i64,
    /// `grpc_listen_network`, default `tcp`.
    #[serde(deserialize_with = "text")]
    pub grpc_listen_network: String,
    /// `grpc_listen_address`, default `""`.
    #[serde(deserialize_with = "text")]
    pub grpc_listen_address: String,
    /// `grpc_listen_port`, default `9095`; 0 picks a free port.
    #[serde(deserialize_with = "nullable")]
    pub grpc_listen_port: u16,
    /// `grpc_listen_conn_limit`, default 0.
    #[serde(deserialize_with = "nullable")]
    pub grpc_listen_conn_limit: i64,
    /// `grpc_collect_max_streams_by_conn`, default true (gRPC only; ignored).
    #[serde(deserialize_with = "bool11")]
    pub grpc_collect_max_streams_by_conn: bool,
    /// `proxy_protocol_enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub proxy_protocol_enabled: bool,
    /// `tls_cipher_suites`, default `""`.
    #[serde(deserialize_with = "text")]
    pub tls_cipher_suites: String,
    /// `tls_min_version`, default `""`.
    #[serde(deserialize_with = "text")]
    pub tls_min_version: String,
    /// `http_tls_config`, default unset (all empty).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "ServerTlsConfig::is_unset"
    )]
    pub http_tls_config: ServerTlsConfig,
    /// `grpc_tls_config`, default unset (all empty).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "ServerTlsConfig::is_unset"
    )]
    pub grpc_tls_config: ServerTlsConfig,
    /// `register_instrumentation`, default true: serve `/metrics`.
    #[serde(deserialize_with = "bool11")]
    pub register_instrumentation: bool,
    /// `report_grpc_codes_in_instrumentation_label_enabled`, default false (ignored).
    #[serde(deserialize_with = "bool11")]
    pub report_grpc_codes_in_instrumentation_label_enabled: bool,
    /// `graceful_shutdown_timeout`, default 30s.
    pub graceful_shutdown_timeout: GoDuration,
    /// `http_server_read_timeout`, default 30s.
    pub http_server_read_timeout: GoDuration,
    /// `http_server_read_header_timeout`, default 0 (= the read timeout).
    pub http_server_read_header_timeout: GoDuration,
    /// `http_server_write_timeout`, default 30s.
    pub http_server_write_timeout: GoDuration,
    /// `http_server_idle_timeout`, default 120s.
    pub http_server_idle_timeout: GoDuration,
    /// `http_log_closed_connections_without_response_enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub http_log_closed_connections_without_response_enabled: bool,
    /// `grpc_server_max_recv_msg_size`, default 4194304 (ignored).
    #[serde(deserialize_with = "nullable")]
    pub grpc_server_max_recv_msg_size: i64,
    /// `grpc_server_max_send_msg_size`, default 4194304 (ignored).
    #[serde(deserialize_with = "nullable")]
    pub grpc_server_max_send_msg_size: i64,
    /// `grpc_server_max_concurrent_streams`, default 100 (ignored).
    #[serde(deserialize_with = "nullable")]
    pub grpc_server_max_concurrent_streams: u64,
    /// `grpc_server_max_connection_idle`, default infinite (ignored).
    pub grpc_server_max_connection_idle: GoDuration,
    /// `grpc_server_max_connection_age`, default infinite (ignored).
    pub grpc_server_max_connection_age: GoDuration,
    /// `grpc_server_max_connection_age_grace`, default infinite (ignored).
    pub grpc_server_max_connection_age_grace: GoDuration,
    /// `grpc_server_keepalive_time`, default 2h (ignored).
    pub grpc_server_keepalive_time: GoDuration,
    /// `grpc_server_keepalive_timeout`, default 20s (ignored).
    pub grpc_server_keepalive_timeout: GoDuration,
    /// `grpc_server_min_time_between_pings`, default 5m (ignored).
    pub grpc_server_min_time_between_pings: GoDuration,
    /// `grpc_server_ping_without_stream_allowed`, default false (ignored).
    #[serde(deserialize_with = "bool11")]
    pub grpc_server_ping_without_stream_allowed: bool,
    /// `grpc_server_num_workers`, default 0 (ignored).
    #[serde(deserialize_with = "nullable")]
    pub grpc_server_num_workers: i64,
    /// `grpc_server_stats_tracking_enabled`, default true (ignored).
    #[serde(deserialize_with = "bool11")]
    pub grpc_server_stats_tracking_enabled: bool,
    /// `grpc_server_recv_buffer_pools_enabled`, default false (ignored).
    #[serde(deserialize_with = "bool11")]
    pub grpc_server_recv_buffer_pools_enabled: bool,
    /// `log_format`, default `logfmt`.
    pub log_format: LogFormat,
    /// `log_level`, default `info`.
    pub log_level: LogLevel,
    /// `log_source_ips_enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub log_source_ips_enabled: bool,
    /// `log_source_ips_full`, default false.
    #[serde(deserialize_with = "bool11")]
    pub log_source_ips_full: bool,
    /// `log_source_ips_header`, default `""`.
    #[serde(deserialize_with = "text")]
    pub log_source_ips_header: String,
    /// `log_source_ips_regex`, default `""`.
    #[serde(deserialize_with = "text")]
    pub log_source_ips_regex: String,
    /// `log_request_headers`, default false.
    #[serde(deserialize_with = "bool11")]
    pub log_request_headers: bool,
    /// `log_request_at_info_level_enabled`, default false.
    #[serde(deserialize_with = "bool11")]
    pub log_request_at_info_level_enabled: bool,
    /// `log_request_exclude_headers_list`, default `""`.
    #[serde(deserialize_with = "text")]
    pub log_request_exclude_headers_list: String,
    /// `trace_request_headers`, default false.
    #[serde(deserialize_with = "bool11")]
    pub trace_request_headers: bool,
    /// `trace_request_exclude_headers_list`, default `""`.
    #[serde(deserialize_with = "text")]
    pub trace_request_exclude_headers_list: String,
    /// `http_path_prefix`, default `""`: every HTTP route is mounted under it.
    #[serde(deserialize_with = "text")]
    pub http_path_prefix: String,
    /// `cluster_validation` (experimental dskit block), default unset; accepted as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_validation: Option<serde_yaml::Value>,
    /// `create_new_traces`, default false.
    #[serde(deserialize_with = "bool11")]
    pub create_new_traces: bool,
    /// `external_url`, default `""` (links in the web UI).
    #[serde(deserialize_with = "text")]
    pub external_url: String,
    /// `health_check_target`, default unset = true: `/ready` needs a ready target.
    #[serde(
        deserialize_with = "opt_bool11",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_target: Option<bool>,
    /// `disable`, default false: no HTTP server at all.
    #[serde(deserialize_with = "bool11")]
    pub disable: bool,
    /// `profiling_enabled`, default false: serve `/debug/pprof`.
    #[serde(deserialize_with = "bool11")]
    pub profiling_enabled: bool,
    /// `enable_runtime_reload`, default false: serve `/reload`.
    #[serde(deserialize_with = "bool11")]
    pub enable_runtime_reload: bool,
}

impl ServerConfig {
    /// The keys of `server:` that are read; any other key is accepted with a warning.
    pub const KNOWN_KEYS: &'static [&'static str] = &[
        "http_listen_network",
        "http_listen_address",
        "http_listen_port",
        "http_listen_conn_limit",
        "grpc_listen_network",
        "grpc_listen_address",
        "grpc_listen_port",
        "grpc_listen_conn_limit",
        "grpc_collect_max_streams_by_conn",
        "proxy_protocol_enabled",
        "tls_cipher_suites",
        "tls_min_version",
        "http_tls_config",
        "grpc_tls_config",
        "register_instrumentation",
        "report_grpc_codes_in_instrumentation_label_enabled",
        "graceful_shutdown_timeout",
        "http_server_read_timeout",
        "http_server_read_header_timeout",
        "http_server_write_timeout",
        "http_server_idle_timeout",
        "http_log_closed_connections_without_response_enabled",
        "grpc_server_max_recv_msg_size",
        "grpc_server_max_send_msg_size",
        "grpc_server_max_concurrent_streams",
        "grpc_server_max_connection_idle",
        "grpc_server_max_connection_age",
        "grpc_server_max_connection_age_grace",
        "grpc_server_keepalive_time",
        "grpc_server_keepalive_timeout",
        "grpc_server_min_time_between_pings",
        "grpc_server_ping_without_stream_allowed",
        "grpc_server_num_workers",
        "grpc_server_stats_tracking_enabled",
        "grpc_server_recv_buffer_pools_enabled",
        "log_format",
        "log_level",
        "log_source_ips_enabled",
        "log_source_ips_full",
        "log_source_ips_header",
        "log_source_ips_regex",
        "log_request_headers",
        "log_request_at_info_level_enabled",
        "log_request_exclude_headers_list",
        "trace_request_headers",
        "trace_request_exclude_headers_list",
        "http_path_prefix",
        "cluster_validation",
        "create_new_traces",
        "external_url",
        "health_check_target",
        "disable",
        "profiling_enabled",
        "enable_runtime_reload",
    ];

    /// Whether `/ready` requires a ready target (`health_check_target`, default true).
    pub fn health_check_target(&self) -> bool {
        self.health_check_target.unwrap_or(true)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_network: "tcp".into(),
            http_listen_address: String::new(),
            http_listen_port: 80,
            http_listen_conn_limit: 0,
            grpc_listen_network: "tcp".into(),
            grpc_listen_address: String::new(),
            grpc_listen_port: 9095,
            grpc_listen_conn_limit: 0,
            grpc_collect_max_streams_by_conn: true,
            proxy_protocol_enabled: false,
            tls_cipher_suites: String::new(),
            tls_min_version: String::new(),
            http_tls_config: ServerTlsConfig::default(),
            grpc_tls_config: ServerTlsConfig::default(),
            register_instrumentation: true,
            report_grpc_codes_in_instrumentation_label_enabled: false,
            graceful_shutdown_timeout: GoDuration::from_secs(30),
            http_server_read_timeout: GoDuration::from_secs(30),
            http_server_read_header_timeout: GoDuration::ZERO,
            http_server_write_timeout: GoDuration::from_secs(30),
            http_server_idle_timeout: GoDuration::from_secs(120),
            http_log_closed_connections_without_response_enabled: false,
            grpc_server_max_recv_msg_size: 4 * 1024 * 1024,
            grpc_server_max_send_msg_size: 4 * 1024 * 1024,
            grpc_server_max_concurrent_streams: 100,
            grpc_server_max_connection_idle: GoDuration(i64::MAX),
            grpc_server_max_connection_age: GoDuration(i64::MAX),
            grpc_server_max_connection_age_grace: GoDuration(i64::MAX),
            grpc_server_keepalive_time: GoDuration::from_secs(2 * 3600),
            grpc_server_keepalive_timeout: GoDuration::from_secs(20),
            grpc_server_min_time_between_pings: GoDuration::from_secs(300),
            grpc_server_ping_without_stream_allowed: false,
            grpc_server_num_workers: 0,
            grpc_server_stats_tracking_enabled: true,
            grpc_server_recv_buffer_pools_enabled: false,
            log_format: LogFormat::Logfmt,
            log_level: LogLevel::Info,
            log_source_ips_enabled: false,
            log_source_ips_full: false,
            log_source_ips_header: String::new(),
            log_source_ips_regex: String::new(),
            log_request_headers: false,
            log_request_at_info_level_enabled: false,
            log_request_exclude_headers_list: String::new(),
            trace_request_headers: false,
            trace_request_exclude_headers_list: String::new(),
            http_path_prefix: String::new(),
            cluster_validation: None,
            create_new_traces: false,
            external_url: String::new(),
            health_check_target: None,
            disable: false,
            profiling_enabled: false,
            enable_runtime_reload: false,
        }
    }
}

/// `server.http_tls_config` / `server.grpc_tls_config` (dskit). All default to `""` = unset.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// `cert`: inline server certificate (YAML only).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// `key`: inline server key (YAML only; secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `client_ca`: inline CA for client certificates (YAML only).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_ca: String,
    /// `cert_file` (`-server.http-tls-cert-path`).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    /// `key_file` (`-server.http-tls-key-path`).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    /// `client_auth_type` (`-server.http-tls-client-auth`).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_auth_type: String,
    /// `client_ca_file` (`-server.http-tls-ca-path`).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_ca_file: String,
}

impl ServerTlsConfig {
    /// Whether any key is set.
    pub fn is_set(&self) -> bool {
        *self != ServerTlsConfig::default()
    }

    fn is_unset(&self) -> bool {
        !self.is_set()
    }
}
