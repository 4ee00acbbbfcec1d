//! One `loki_push_api` block: strict parsing with Promtail 3.4.6's keys (`PushTargetConfig`:
//! `server`, `labels`, `use_incoming_timestamp`) plus ferrotail's `ack_after_delivery`.
//!
//! The `server` block is dskit's server config, as in Promtail: the HTTP keys are used, the gRPC
//! keys and the logging keys are accepted and change nothing, and a gRPC port other than 0 is
//! refused (ferrotail does not run Promtail's gRPC server; an unset port is 0 here, as in
//! Promtail's push target, not dskit's 9095).
//!
//! Invariants: unknown keys are refused by name (Promtail's YAML is strict there too); every key
//! is either honoured, accepted as changing nothing (said in docs/compatibility.md), or refused
//! as not supported yet; a setting that passes here binds unless the address is taken.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::units::GoDuration;
use crate::units::de::{bool11, nullable, text, text_map};

/// A validated `loki_push_api` block, ready to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSettings {
    /// `server.http_listen_address` (empty: every interface) and `server.http_listen_port`
    /// (default 0: a random port, as Promtail's push target).
    pub host: String,
    /// The port (0: chosen by the system).
    pub port: u16,
    /// `server.http_path_prefix`, without a trailing slash: prefix of every route.
    pub path_prefix: String,
    /// `server.http_server_read_header_timeout`, or `http_server_read_timeout` when that is 0
    /// (default 30s): the longest a client may take to send a request's headers.
    pub read_header_timeout: Option<Duration>,
    /// `server.http_server_read_timeout` (default 30s): the longest a request's body may take
    /// to arrive. `None`: no limit.
    pub read_timeout: Option<Duration>,
    /// `labels`: set on every entry, over the pushed labels of the same name.
    pub labels: BTreeMap<String, String>,
    /// `use_incoming_timestamp` (default false): keep the pushed timestamps instead of the
    /// time of receipt.
    pub use_incoming_timestamp: bool,
    /// ferrotail's `ack_after_delivery` (default false): answer a push only once its entries
    /// were accepted by every client (end-to-end at-least-once for relays); false answers as
    /// soon as they are handed to the pipeline, as Promtail does.
    pub ack_after_delivery: bool,
}

impl PushSettings {
    /// The address to bind, as `host:port` (`0.0.0.0` for an empty host).
    pub fn listen(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `loki_push_api` as Promtail reads it, plus ferrotail's key.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPush {
    #[serde(deserialize_with = "nullable")]
    server: RawServer,
    #[serde(deserialize_with = "text_map")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "bool11")]
    use_incoming_timestamp: bool,
    #[serde(deserialize_with = "bool11")]
    ack_after_delivery: bool,
}

/// dskit's `server.Config` keys (Promtail 3.4.6 vendors it; later dskit keys are accepted too,
/// as the main `server:` block accepts them). Keys read as `serde_yaml::Value` are accepted and
/// change nothing.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    #[serde(deserialize_with = "text")]
    http_listen_network: String,
    #[serde(deserialize_with = "text")]
    http_listen_address: String,
    #[serde(deserialize_with = "nullable")]
    http_listen_port: i64,
    #[serde(deserialize_with = "nullable")]
    http_listen_conn_limit: i64,
    #[serde(deserialize_with = "nullable")]
    grpc_listen_port: i64,
    #[serde(deserialize_with = "text")]
    http_path_prefix: String,
    http_tls_config: Option<serde_yaml::Value>,
    #[serde(deserialize_with = "text")]
    tls_cipher_suites: String,
    #[serde(deserialize_with = "text")]
    tls_min_version: String,
    #[serde(deserialize_with = "bool11")]
    proxy_protocol_enabled: bool,
    #[serde(deserialize_with = "bool11")]
    register_instrumentation: bool,
    graceful_shutdown_timeout: GoDuration,
    http_server_read_timeout: GoDuration,
    http_server_read_header_timeout: GoDuration,
    http_server_write_timeout: GoDuration,
    http_server_idle_timeout: GoDuration,
    // Accepted, change nothing: gRPC (no gRPC server is run; its port is checked above),
    // logging (ferrotail's log settings are the main server's, as Promtail copies them) and
    // instrumentation details.
    grpc_listen_network: Option<serde_yaml::Value>,
    grpc_listen_address: Option<serde_yaml::Value>,
    grpc_listen_conn_limit: Option<serde_yaml::Value>,
    grpc_collect_max_streams_by_conn: Option<serde_yaml::Value>,
    grpc_tls_config: Option<serde_yaml::Value>,
    report_grpc_codes_in_instrumentation_label_enabled: Option<serde_yaml::Value>,
    http_log_closed_connections_without_response_enabled: Option<serde_yaml::Value>,
    grpc_server_max_recv_msg_size: Option<serde_yaml::Value>,
    grpc_server_max_send_msg_size: Option<serde_yaml::Value>,
    grpc_server_max_concurrent_streams: Option<serde_yaml::Value>,
    grpc_server_max_connection_idle: Option<serde_yaml::Value>,
    grpc_server_max_connection_age: Option<serde_yaml::Value>,
    grpc_server_max_connection_age_grace: Option<serde_yaml::Value>,
    grpc_server_keepalive_time: Option<serde_yaml::Value>,
    grpc_server_keepalive_timeout: Option<serde_yaml::Value>,
    grpc_server_min_time_between_pings: Option<serde_yaml::Value>,
    grpc_server_ping_without_stream_allowed: Option<serde_yaml::Value>,
    grpc_server_num_workers: Option<serde_yaml::Value>,
    grpc_server_stats_tracking_enabled: Option<serde_yaml::Value>,
    grpc_server_recv_buffer_pools_enabled: Option<serde_yaml::Value>,
    log_format: Option<serde_yaml::Value>,
    log_level: Option<serde_yaml::Value>,
    log_source_ips_enabled: Option<serde_yaml::Value>,
    log_source_ips_full: Option<serde_yaml::Value>,
    log_source_ips_header: Option<serde_yaml::Value>,
    log_source_ips_regex: Option<serde_yaml::Value>,
    log_request_headers: Option<serde_yaml::Value>,
    log_request_at_info_level_enabled: Option<serde_yaml::Value>,
    log_request_exclude_headers_list: Option<serde_yaml::Value>,
    trace_request_headers: Option<serde_yaml::Value>,
    trace_request_exclude_headers_list: Option<serde_yaml::Value>,
    cluster_validation: Option<serde_yaml::Value>,
    create_new_traces: Option<serde_yaml::Value>,
}

impl Default for RawServer {
    /// dskit's defaults, with both ports 0 as Promtail's push target sets them when unset.
    fn default() -> Self {
        RawServer {
            http_listen_network: "tcp".into(),
            http_listen_address: String::new(),
            http_listen_port: 0,
            http_listen_conn_limit: 0,
            grpc_listen_port: 0,
            http_path_prefix: String::new(),
            http_tls_config: None,
            tls_cipher_suites: String::new(),
            tls_min_version: String::new(),
            proxy_protocol_enabled: false,
            register_instrumentation: true,
            graceful_shutdown_timeout: GoDuration::from_secs(30),
            http_server_read_timeout: GoDuration::from_secs(30),
            http_server_read_header_timeout: GoDuration::ZERO,
            http_server_write_timeout: GoDuration::from_secs(30),
            http_server_idle_timeout: GoDuration::from_secs(120),
            grpc_listen_network: None,
            grpc_listen_address: None,
            grpc_listen_conn_limit: None,
            grpc_collect_max_streams_by_conn: None,
            grpc_tls_config: None,
            report_grpc_codes_in_instrumentation_label_enabled: None,
            http_log_closed_connections_without_response_enabled: None,
            grpc_server_max_recv_msg_size: None,
            grpc_server_max_send_msg_size: None,
            grpc_server_max_concurrent_streams: None,
            grpc_server_max_connection_idle: None,
            grpc_server_max_connection_age: None,
            grpc_server_max_connection_age_grace: None,
            grpc_server_keepalive_time: None,
            grpc_server_keepalive_timeout: None,
            grpc_server_min_time_between_pings: None,
            grpc_server_ping_without_stream_allowed: None,
            grpc_server_num_workers: None,
            grpc_server_stats_tracking_enabled: None,
            grpc_server_recv_buffer_pools_enabled: None,
            log_format: None,
            log_level: None,
            log_source_ips_enabled: None,
            log_source_ips_full: None,
            log_source_ips_header: None,
            log_source_ips_regex: None,
            log_request_headers: None,
            log_request_at_info_level_enabled: None,
            log_request_exclude_headers_list: None,
            trace_request_headers: None,
            trace_request_exclude_headers_list: None,
            cluster_validation: None,
            create_new_traces: None,
        }
    }
}

/// Whether a raw TLS block holds a setting (null and `{}` and all-empty keys are unset).
fn tls_is_set(v: &Option<serde_yaml::Value>) -> bool {
    match v {
        None | Some(serde_yaml::Value::Null) => false,
        Some(serde_yaml::Value::Mapping(m)) => m.values().any(|v| match v {
            serde_yaml::Value::Null => false,
            serde_yaml::Value::String(s) => !s.is_empty(),
            _ => true,
        }),
        Some(_) => true,
    }
}

/// Checks one `loki_push_api` block, as validation does at load.
pub fn check(raw: &serde_yaml::Mapping) -> Result<(), String> {
    parse(raw).map(|_| ())
}

/// Parses and checks one `loki_push_api` block. The error names the problem (an unknown or
/// unsupported key by name).
pub fn parse(raw: &serde_yaml::Mapping) -> Result<PushSettings, String> {
    let raw: RawPush = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| e.to_string())?;
    let s = raw.server;
    if s.grpc_listen_port != 0 {
        return Err(format!(
            "server.grpc_listen_port: {} is refused: ferrotail serves the push API over HTTP \
             only (POST /loki/api/v1/push on http_listen_port) and runs no gRPC server; set \
             grpc_listen_port to 0 or remove it",
            s.grpc_listen_port
        ));
    }
    let port = u16::try_from(s.http_listen_port).map_err(|_| {
        format!(
            "server.http_listen_port: {} is not a port (0 to 65535)",
            s.http_listen_port
        )
    })?;
    match s.http_listen_network.as_str() {
        "" | "tcp" | "tcp4" | "tcp6" => {}
        other => {
            return Err(format!(
                "server.http_listen_network: {other:?} is not supported (tcp)"
            ));
        }
    }
    if tls_is_set(&s.http_tls_config) {
        return Err(
            "server.http_tls_config is not supported yet for loki_push_api (put a TLS proxy in \
             front, or use the main server's TLS for a relay on the same host)"
                .to_owned(),
        );
    }
    if s.http_listen_conn_limit > 0 {
        return Err("server.http_listen_conn_limit is not supported yet for loki_push_api".into());
    }
    if s.proxy_protocol_enabled {
        return Err("server.proxy_protocol_enabled is not supported yet for loki_push_api".into());
    }
    // tls_cipher_suites and tls_min_version only matter with TLS, which is refused above; dskit
    // checks their spelling even then, and so does the main server block: a typo is caught there
    // for the main server, here it changes nothing.
    let _ = (&s.tls_cipher_suites, &s.tls_min_version);
    // register_instrumentation: Promtail forces it off on push servers (no /metrics there).
    let _ = s.register_instrumentation;
    for name in raw.labels.keys() {
        if !crate::units::is_legacy_label_name(name) {
            return Err(format!(
                "labels: {name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            ));
        }
    }
    let nonzero = |d: GoDuration| Some(d.as_std()).filter(|d| !d.is_zero());
    Ok(PushSettings {
        host: s
            .http_listen_address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        path_prefix: s.http_path_prefix.trim_end_matches('/').to_owned(),
        read_header_timeout: nonzero(s.http_server_read_header_timeout)
            .or_else(|| nonzero(s.http_server_read_timeout)),
        read_timeout: nonzero(s.http_server_read_timeout),
        labels: raw.labels,
        use_incoming_timestamp: raw.use_incoming_timestamp,
        ack_after_delivery: raw.ack_after_delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_yaml(yaml: &str) -> Result<PushSettings, String> {
        let v: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
        parse(&v)
    }

    #[test]
    fn defaults_are_promtails_push_target_defaults() {
        let s = parse_yaml("{}").unwrap();
        assert_eq!(
            s,
            PushSettings {
                host: String::new(),
                port: 0,
                path_prefix: String::new(),
                read_header_timeout: Some(Duration::from_secs(30)),
                read_timeout: Some(Duration::from_secs(30)),
                labels: BTreeMap::new(),
                use_incoming_timestamp: false,
                ack_after_delivery: false,
            }
        );
        assert_eq!(s.listen(), "0.0.0.0:0");
    }

    #[test]
    fn every_key_is_read() {
        let s = parse_yaml(
            "server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 3500\n  \
             grpc_listen_port: 0\n  http_path_prefix: /relay/\n  \
             http_server_read_timeout: 10s\n  http_server_read_header_timeout: 2s\n  \
             grpc_server_max_recv_msg_size: 104857600\n  log_level: debug\n  \
             register_instrumentation: true\n\
             labels: {pushserver: push1, env: 1}\nuse_incoming_timestamp: yes\n\
             ack_after_delivery: true\n",
        )
        .unwrap();
        assert_eq!(s.listen(), "127.0.0.1:3500");
        assert_eq!(s.path_prefix, "/relay");
        assert_eq!(s.read_header_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.read_timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            s.labels,
            BTreeMap::from([
                ("env".to_owned(), "1".to_owned()),
                ("pushserver".to_owned(), "push1".to_owned())
            ])
        );
        assert!(s.use_incoming_timestamp && s.ack_after_delivery);
        let s = parse_yaml("server: {http_listen_address: '::1', http_listen_port: 9}").unwrap();
        assert_eq!(s.listen(), "[::1]:9");
        let s = parse_yaml("server:\nlabels:\n").unwrap();
        assert_eq!(s.port, 0);
    }

    #[test]
    fn problems_are_named() {
        for (yaml, want) in [
            (
                "server: {http_listen_port: 3500, grpc_listen_port: 3600}",
                "server.grpc_listen_port: 3600 is refused",
            ),
            ("server: {http_listen_port: 70000}", "not a port"),
            ("server: {http_listen_port: -1}", "not a port"),
            ("server: {http_listen_port: abc}", "invalid"),
            ("server: {http_listen_network: unix}", "not supported"),
            (
                "server: {http_tls_config: {cert_file: /c, key_file: /k}}",
                "http_tls_config is not supported yet",
            ),
            (
                "server: {http_listen_conn_limit: 5}",
                "http_listen_conn_limit is not supported yet",
            ),
            ("server: {surprise: 1}", "unknown field `surprise`"),
            ("server: {disable: true}", "unknown field `disable`"),
            ("max_send_msg_size: 1", "unknown field `max_send_msg_size`"),
            ("labels: {'a.b': x}", "not a valid label name"),
            ("use_incoming_timestamp: maybe", "cannot parse \"maybe\""),
            ("server: {http_server_read_timeout: 5x}", "unknown unit"),
        ] {
            let msg = parse_yaml(yaml).unwrap_err();
            assert!(msg.contains(want), "{yaml:?}: {msg:?} lacks {want:?}");
        }
    }

    #[test]
    fn unset_tls_passes() {
        for yaml in [
            "server: {http_tls_config: {}}",
            "server: {http_tls_config: {cert_file: ''}}",
            "server: {http_tls_config: }",
        ] {
            assert!(parse_yaml(yaml).is_ok(), "{yaml}");
        }
    }
}
