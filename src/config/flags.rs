//! Promtail's command-line flags with Go `flag` package syntax (spec §2.1–2.2).
//!
//! `-x` and `--x`, `-x=v` and `-x v`; a boolean is set true by `-x` and false only by
//! `-x=false`; parsing stops at the first non-flag argument or after `--`. Values are checked
//! while parsing, as Go does, so a bad value is a flag error.
//!
//! Config flags are recorded as `Some(value)` only when given: [`apply_flags`] lays them over
//! the YAML, giving the precedence *flag given > YAML > default*.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Config;
use super::sections::LongLineAction;
use super::types::{ByteSize, GoDuration, LogFormat, LogLevel};

/// Why the command line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `-h` or `-help`: print [`usage`] to stdout and exit 2.
    #[error("flag: help requested")]
    Help,
    /// An unknown flag, a missing or malformed value (exit 2).
    #[error("{0}\nRun with -help to get list of available parameters")]
    Invalid(String),
}

/// A value type a flag can hold.
trait FlagValue: Sized {
    /// The type word shown by [`usage`] (empty for booleans).
    const KIND: &'static str;
    /// Whether `-x` alone means true.
    const IS_BOOL: bool = false;
    fn parse_flag(s: &str) -> Result<Self, String>;
}

impl FlagValue for bool {
    const KIND: &'static str = "";
    const IS_BOOL: bool = true;
    fn parse_flag(s: &str) -> Result<Self, String> {
        match s {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err("parse error".into()),
        }
    }
}

impl FlagValue for String {
    const KIND: &'static str = "string";
    fn parse_flag(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}

impl FlagValue for GoDuration {
    const KIND: &'static str = "duration";
    fn parse_flag(s: &str) -> Result<Self, String> {
        // Unlike YAML, a flag never takes a bare integer (Go's flag.Duration).
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        if digits != "0" && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        GoDuration::parse(s)
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/`0` prefixes, `_` separators.
fn parse_go_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') && !prefixed {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

macro_rules! int_flag {
    ($($t:ty => $kind:literal),*) => {$(
        impl FlagValue for $t {
            const KIND: &'static str = $kind;
            fn parse_flag(s: &str) -> Result<Self, String> {
                parse_go_int(s)
                    .ok_or_else(|| "parse error".to_owned())
                    .and_then(|v| <$t>::try_from(v).map_err(|_| "value out of range".to_owned()))
            }
        }
    )*};
}
int_flag!(i64 => "int", u16 => "int", u32 => "int", u64 => "int");

impl FlagValue for f64 {
    const KIND: &'static str = "float";
    fn parse_flag(s: &str) -> Result<Self, String> {
        s.parse().map_err(|_| "parse error".to_owned())
    }
}

impl FlagValue for ByteSize {
    const KIND: &'static str = "value";
    fn parse_flag(s: &str) -> Result<Self, String> {
        ByteSize::parse(&s.to_ascii_uppercase())
    }
}

impl FlagValue for LogLevel {
    const KIND: &'static str = "value";
    fn parse_flag(s: &str) -> Result<Self, String> {
        LogLevel::parse(s)
    }
}

impl FlagValue for LogFormat {
    const KIND: &'static str = "string";
    fn parse_flag(s: &str) -> Result<Self, String> {
        LogFormat::parse(s)
    }
}

impl FlagValue for LongLineAction {
    const KIND: &'static str = "string";
    fn parse_flag(s: &str) -> Result<Self, String> {
        LongLineAction::parse(s)
    }
}

/// The value of `-client.url`: a URL that may carry `user:password@`, so its `Debug` masks the
/// password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlFlag(pub String);

impl FlagValue for UrlFlag {
    const KIND: &'static str = "string";
    fn parse_flag(s: &str) -> Result<Self, String> {
        Ok(UrlFlag(s.to_owned()))
    }
}

impl std::fmt::Debug for UrlFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UrlFlag")
            .field(&crate::redact::url(&self.0))
            .finish()
    }
}

/// The value of `-client.external-labels`: `k1=v1,k2=v2` (CSV; a single `k=v` may be quoted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelsFlag(pub BTreeMap<String, String>);

impl FlagValue for LabelsFlag {
    const KIND: &'static str = "value";
    fn parse_flag(s: &str) -> Result<Self, String> {
        LabelsFlag::parse(s)
    }
}

impl LabelsFlag {
    /// Parses `k1=v1,k2=v2` as Promtail does (exactly one `=`: the whole value, surrounding
    /// quotes removed; otherwise one CSV record of `k=v` fields).
    pub fn parse(s: &str) -> Result<Self, String> {
        let pairs = match s.matches('=').count() {
            0 => return Err(format!("{s} must be formatted as key=value")),
            1 => vec![s.trim_matches('"').to_owned()],
            _ => parse_csv_record(s)?,
        };
        let mut out = BTreeMap::new();
        for pair in pairs {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("{pair} must be formatted as key=value"));
            };
            if k.is_empty() {
                return Err(format!("invalid name {k:?}"));
            }
            out.insert(k.to_owned(), v.to_owned());
        }
        Ok(LabelsFlag(out))
    }
}

/// One CSV record as Go's `encoding/csv` reads it (quoted fields, `""` escapes).
fn parse_csv_record(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// How one flag is parsed and shown.
struct FlagSpec {
    name: &'static str,
    usage: &'static str,
    kind: &'static str,
    is_bool: bool,
    default: &'static str,
    set: fn(&mut Flags, &str) -> Result<(), String>,
}

macro_rules! define_flags {
    (
        process { $( $pf:ident = $pn:literal, $pu:literal; )* }
        config { $( $cf:ident : $ct:ty = $cn:literal, $cd:literal, $cu:literal => |$c:ident, $v:ident| $apply:expr; )* }
    ) => {
        /// The parsed command line.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Flags {
            /// `-config.file`: comma-separated candidates; the first that exists is loaded.
            pub config_file: String,
            $( #[doc = concat!("`-", $pn, "`: ", $pu)] pub $pf: bool, )*
            $( #[doc = concat!("`-", $cn, "` when given: ", $cu)] pub $cf: Option<$ct>, )*
            /// Names of the flags given, in command-line order (repeats included).
            pub given: Vec<&'static str>,
            /// Arguments after the flags (not used by Promtail).
            pub args: Vec<String>,
        }

        const SPECS: &[FlagSpec] = &[
            FlagSpec {
                name: "config.file",
                usage: "yaml file to load",
                kind: "string",
                is_bool: false,
                default: "",
                set: |f, s| { f.config_file = s.to_owned(); Ok(()) },
            },
            $( FlagSpec {
                name: $pn,
                usage: $pu,
                kind: "",
                is_bool: true,
                default: "false",
                set: |f, s| { f.$pf = <bool as FlagValue>::parse_flag(s)?; Ok(()) },
            }, )*
            $( FlagSpec {
                name: $cn,
                usage: $cu,
                kind: <$ct as FlagValue>::KIND,
                is_bool: <$ct as FlagValue>::IS_BOOL,
                default: $cd,
                set: |f, s| { f.$cf = Some(<$ct as FlagValue>::parse_flag(s)?); Ok(()) },
            }, )*
        ];

        /// Lays the config flags that were given over `cfg` (flag > YAML > default) and records
        /// `-inspect`. [`super::load`] calls this; call it yourself only after
        /// [`Config::parse_str`].
        pub fn apply_flags(cfg: &mut Config, flags: &Flags) {
            $( if let Some($v) = flags.$cf.clone() {
                let $c: &mut Config = cfg;
                $apply
            } )*
            cfg.inspect = flags.inspect;
        }
    };
}

define_flags! {
    process {
        config_expand_env = "config.expand-env", "Expands ${var} in config according to the values of the environment variables.";
        version = "version", "Print this builds version information";
        check_syntax = "check-syntax", "Validate the config file of its syntax";
        dry_run = "dry-run", "Start but print entries instead of sending them to Loki.";
        inspect = "inspect", "Allows for detailed inspection of pipeline stages";
        print_config_stderr = "print-config-stderr", "Dump the entire config object to stderr";
        log_config_reverse_order = "log-config-reverse-order", "Dump the entire config object at Info log level with the order reversed.";
    }
    config {
        file_watch_min_poll_frequency: GoDuration = "file-watch.min_poll_frequency", "250ms", "Minimum period to poll for file changes" => |c, v| c.global.file_watch_config.min_poll_frequency = v;
        file_watch_max_poll_frequency: GoDuration = "file-watch.max_poll_frequency", "250ms", "Maximum period to poll for file changes" => |c, v| c.global.file_watch_config.max_poll_frequency = v;
        server_http_listen_address: String = "server.http-listen-address", "", "HTTP server listen address." => |c, v| c.server.http_listen_address = v;
        server_http_listen_port: u16 = "server.http-listen-port", "80", "HTTP server listen port." => |c, v| c.server.http_listen_port = v;
        server_http_listen_network: String = "server.http-listen-network", "tcp", "HTTP server listen network, default tcp" => |c, v| c.server.http_listen_network = v;
        server_http_conn_limit: i64 = "server.http-conn-limit", "0", "Maximum number of simultaneous http connections, <=0 to disable" => |c, v| c.server.http_listen_conn_limit = v;
        server_grpc_listen_address: String = "server.grpc-listen-address", "", "gRPC server listen address." => |c, v| c.server.grpc_listen_address = v;
        server_grpc_listen_port: u16 = "server.grpc-listen-port", "9095", "gRPC server listen port." => |c, v| c.server.grpc_listen_port = v;
        server_grpc_listen_network: String = "server.grpc-listen-network", "tcp", "gRPC server listen network" => |c, v| c.server.grpc_listen_network = v;
        server_grpc_conn_limit: i64 = "server.grpc-conn-limit", "0", "Maximum number of simultaneous grpc connections, <=0 to disable" => |c, v| c.server.grpc_listen_conn_limit = v;
        server_grpc_collect_max_streams_by_conn: bool = "server.grpc-collect-max-streams-by-conn", "true", "If true, the max streams by connection gauge will be collected." => |c, v| c.server.grpc_collect_max_streams_by_conn = v;
        server_proxy_protocol_enabled: bool = "server.proxy-protocol-enabled", "false", "Enables PROXY protocol." => |c, v| c.server.proxy_protocol_enabled = v;
        server_tls_cipher_suites: String = "server.tls-cipher-suites", "", "Comma-separated list of cipher suites to use." => |c, v| c.server.tls_cipher_suites = v;
        server_tls_min_version: String = "server.tls-min-version", "", "Minimum TLS version to use." => |c, v| c.server.tls_min_version = v;
        server_http_tls_cert_path: String = "server.http-tls-cert-path", "", "HTTP server cert path." => |c, v| c.server.http_tls_config.cert_file = v;
        server_http_tls_key_path: String = "server.http-tls-key-path", "", "HTTP server key path." => |c, v| c.server.http_tls_config.key_file = v;
        server_http_tls_client_auth: String = "server.http-tls-client-auth", "", "HTTP TLS Client Auth type." => |c, v| c.server.http_tls_config.client_auth_type = v;
        server_http_tls_ca_path: String = "server.http-tls-ca-path", "", "HTTP TLS Client CA path." => |c, v| c.server.http_tls_config.client_ca_file = v;
        server_grpc_tls_cert_path: String = "server.grpc-tls-cert-path", "", "GRPC TLS server cert path." => |c, v| c.server.grpc_tls_config.cert_file = v;
        server_grpc_tls_key_path: String = "server.grpc-tls-key-path", "", "GRPC TLS server key path." => |c, v| c.server.grpc_tls_config.key_file = v;
        server_grpc_tls_client_auth: String = "server.grpc-tls-client-auth", "", "GRPC TLS Client Auth type." => |c, v| c.server.grpc_tls_config.client_auth_type = v;
        server_grpc_tls_ca_path: String = "server.grpc-tls-ca-path", "", "GRPC TLS Client CA path." => |c, v| c.server.grpc_tls_config.client_ca_file = v;
        server_register_instrumentation: bool = "server.register-instrumentation", "true", "Register the intrumentation handlers (/metrics etc)." => |c, v| c.server.register_instrumentation = v;
        server_report_grpc_codes: bool = "server.report-grpc-codes-in-instrumentation-label-enabled", "false", "Report gRPC statuses in instrumentation labels." => |c, v| c.server.report_grpc_codes_in_instrumentation_label_enabled = v;
        server_graceful_shutdown_timeout: GoDuration = "server.graceful-shutdown-timeout", "30s", "Timeout for graceful shutdowns" => |c, v| c.server.graceful_shutdown_timeout = v;
        server_http_read_timeout: GoDuration = "server.http-read-timeout", "30s", "Read timeout for entire HTTP request, including headers and body." => |c, v| c.server.http_server_read_timeout = v;
        server_http_read_header_timeout: GoDuration = "server.http-read-header-timeout", "0s", "Read timeout for HTTP request headers. If set to 0, value of -server.http-read-timeout is used." => |c, v| c.server.http_server_read_header_timeout = v;
        server_http_write_timeout: GoDuration = "server.http-write-timeout", "30s", "Write timeout for HTTP server" => |c, v| c.server.http_server_write_timeout = v;
        server_http_idle_timeout: GoDuration = "server.http-idle-timeout", "2m0s", "Idle timeout for HTTP server" => |c, v| c.server.http_server_idle_timeout = v;
        server_http_log_closed_connections: bool = "server.http-log-closed-connections-without-response-enabled", "false", "Log closed connections that did not receive any response." => |c, v| c.server.http_log_closed_connections_without_response_enabled = v;
        server_grpc_max_recv_msg_size_bytes: i64 = "server.grpc-max-recv-msg-size-bytes", "4194304", "Limit on the size of a gRPC message this server can receive (bytes)." => |c, v| c.server.grpc_server_max_recv_msg_size = v;
        server_grpc_max_send_msg_size_bytes: i64 = "server.grpc-max-send-msg-size-bytes", "4194304", "Limit on the size of a gRPC message this server can send (bytes)." => |c, v| c.server.grpc_server_max_send_msg_size = v;
        server_grpc_max_concurrent_streams: u64 = "server.grpc-max-concurrent-streams", "100", "Limit on the number of concurrent streams for gRPC calls per client connection (0 = unlimited)" => |c, v| c.server.grpc_server_max_concurrent_streams = v;
        server_grpc_keepalive_max_connection_idle: GoDuration = "server.grpc.keepalive.max-connection-idle", "2562047h47m16.854775807s", "The duration after which an idle connection should be closed." => |c, v| c.server.grpc_server_max_connection_idle = v;
        server_grpc_keepalive_max_connection_age: GoDuration = "server.grpc.keepalive.max-connection-age", "2562047h47m16.854775807s", "The maximum amount of time a connection may exist before it will be closed." => |c, v| c.server.grpc_server_max_connection_age = v;
        server_grpc_keepalive_max_connection_age_grace: GoDuration = "server.grpc.keepalive.max-connection-age-grace", "2562047h47m16.854775807s", "An additive period after max-connection-age after which the connection will be forcibly closed." => |c, v| c.server.grpc_server_max_connection_age_grace = v;
        server_grpc_keepalive_time: GoDuration = "server.grpc.keepalive.time", "2h0m0s", "Duration after which a keepalive probe is sent in case of no activity over the connection." => |c, v| c.server.grpc_server_keepalive_time = v;
        server_grpc_keepalive_timeout: GoDuration = "server.grpc.keepalive.timeout", "20s", "After having pinged for keepalive check, the duration after which an idle connection should be closed." => |c, v| c.server.grpc_server_keepalive_timeout = v;
        server_grpc_keepalive_min_time_between_pings: GoDuration = "server.grpc.keepalive.min-time-between-pings", "5m0s", "Minimum amount of time a client should wait before sending a keepalive ping." => |c, v| c.server.grpc_server_min_time_between_pings = v;
        server_grpc_keepalive_ping_without_stream_allowed: bool = "server.grpc.keepalive.ping-without-stream-allowed", "false", "If true, server allows keepalive pings even when there are no active streams." => |c, v| c.server.grpc_server_ping_without_stream_allowed = v;
        server_grpc_stats_tracking_enabled: bool = "server.grpc.stats-tracking-enabled", "true", "If true, gRPC message size and inflight metrics are tracked." => |c, v| c.server.grpc_server_stats_tracking_enabled = v;
        server_grpc_recv_buffer_pools_enabled: bool = "server.grpc.recv-buffer-pools-enabled", "false", "Deprecated option, has no effect." => |c, v| c.server.grpc_server_recv_buffer_pools_enabled = v;
        server_grpc_num_workers: i64 = "server.grpc.num-workers", "0", "If non-zero, configures the amount of GRPC server workers used to serve the requests." => |c, v| c.server.grpc_server_num_workers = v;
        server_path_prefix: String = "server.path-prefix", "", "Base path to serve all API routes from (e.g. /v1/)" => |c, v| c.server.http_path_prefix = v;
        log_level: LogLevel = "log.level", "info", "Only log messages with the given severity or above. Valid levels: [debug, info, warn, error]" => |c, v| c.server.log_level = v;
        log_format: LogFormat = "log.format", "logfmt", "Output log messages in the given format. Valid formats: [logfmt, json]" => |c, v| c.server.log_format = v;
        server_log_source_ips_enabled: bool = "server.log-source-ips-enabled", "false", "Optionally log the source IPs." => |c, v| c.server.log_source_ips_enabled = v;
        server_log_source_ips_full: bool = "server.log-source-ips-full", "false", "Log all source IPs instead of only the originating one." => |c, v| c.server.log_source_ips_full = v;
        server_log_source_ips_header: String = "server.log-source-ips-header", "", "Header field storing the source IPs." => |c, v| c.server.log_source_ips_header = v;
        server_log_source_ips_regex: String = "server.log-source-ips-regex", "", "Regex for matching the source IPs." => |c, v| c.server.log_source_ips_regex = v;
        server_log_request_headers: bool = "server.log-request-headers", "false", "Optionally log request headers." => |c, v| c.server.log_request_headers = v;
        server_log_request_headers_exclude_list: String = "server.log-request-headers-exclude-list", "", "Comma separated list of headers to exclude from logging." => |c, v| c.server.log_request_exclude_headers_list = v;
        server_log_request_at_info_level_enabled: bool = "server.log-request-at-info-level-enabled", "false", "Optionally log requests at info level instead of debug level." => |c, v| c.server.log_request_at_info_level_enabled = v;
        server_trace_request_headers: bool = "server.trace-request-headers", "false", "Optionally add request headers to tracing spans." => |c, v| c.server.trace_request_headers = v;
        server_trace_request_headers_exclude_list: String = "server.trace-request-headers-exclude-list", "", "Comma separated list of headers to exclude from tracing spans." => |c, v| c.server.trace_request_exclude_headers_list = v;
        server_create_new_traces: bool = "server.create-new-traces", "false", "Creates new traces for each call rather than continuing the existing trace." => |c, v| c.server.create_new_traces = v;
        server_throughput_latency_cutoff: GoDuration = "server.throughput.latency-cutoff", "0s", "Requests taking over the cutoff are observed to measure throughput (accepted, ignored)." => |_c, _v| {};
        server_throughput_unit: String = "server.throughput.unit", "samples_processed", "Unit of the server throughput metric (accepted, ignored)." => |_c, _v| {};
        server_disable: bool = "server.disable", "false", "Disable the http and grpc server." => |c, v| c.server.disable = v;
        server_profiling_enabled: bool = "server.profiling_enabled", "false", "Enable the /debug/fgprof and /debug/pprof endpoints for profiling." => |c, v| c.server.profiling_enabled = v;
        server_enable_runtime_reload: bool = "server.enable-runtime-reload", "false", "Enable reload via HTTP request." => |c, v| c.server.enable_runtime_reload = v;
        client_url: UrlFlag = "client.url", "", "URL of log server (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).url = Some(v.0).filter(|u| !u.is_empty());
        client_batch_wait: GoDuration = "client.batch-wait", "1s", "Maximum wait period before sending batch (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).batchwait = v;
        client_batch_size_bytes: u64 = "client.batch-size-bytes", "1048576", "Maximum batch size to accrue before sending (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).batchsize = v;
        client_max_retries: u32 = "client.max-retries", "0", "Maximum number of retries when sending batches; 0 or unset = retry until delivered (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).backoff_config.max_retries = Some(v);
        client_min_backoff: GoDuration = "client.min-backoff", "500ms", "Initial backoff time between retries (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).backoff_config.min_period = v;
        client_max_backoff: GoDuration = "client.max-backoff", "5m0s", "Maximum backoff time between retries (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).backoff_config.max_period = v;
        client_timeout: GoDuration = "client.timeout", "10s", "Maximum time to wait for server to respond to a request (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).timeout = v;
        client_tenant_id: String = "client.tenant-id", "", "Tenant ID to use when pushing logs to Loki (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).tenant_id = v;
        client_drop_rate_limited_batches: bool = "client.drop-rate-limited-batches", "false", "Do not retry batches that have been rate limited by Loki (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).drop_rate_limited_batches = v;
        client_external_labels: LabelsFlag = "client.external-labels", "", "list of external labels to add to each log (e.g: --client.external-labels=lb1=v1,lb2=v2) (deprecated)." => |c, v| c.client.get_or_insert_with(Default::default).external_labels = v.0;
        positions_file: String = "positions.file", "/var/log/positions.yaml", "Location to read/write positions from." => |c, v| c.positions.filename = v;
        positions_sync_period: GoDuration = "positions.sync-period", "10s", "Period with this to sync the position file." => |c, v| c.positions.sync_period = v;
        positions_ignore_invalid_yaml: bool = "positions.ignore-invalid-yaml", "false", "whether to ignore & later overwrite positions files that are corrupted" => |c, v| c.positions.ignore_invalid_yaml = v;
        target_sync_period: GoDuration = "target.sync-period", "10s", "Period to resync directories being watched and files being tailed." => |c, v| c.target_config.sync_period = v;
        stdin: bool = "stdin", "false", "Set to true to pipe logs to promtail." => |c, v| c.target_config.stdin = v;
        limit_readline_rate: f64 = "limit.readline-rate", "10000", "The rate limit in log lines per second that this instance may push to Loki." => |c, v| c.limits_config.readline_rate = v;
        limit_readline_burst: i64 = "limit.readline-burst", "10000", "The cap in the quantity of burst lines that this instance may push to Loki." => |c, v| c.limits_config.readline_burst = v;
        limit_readline_rate_enabled: bool = "limit.readline-rate-enabled", "false", "When true, enforces rate limiting on this instance." => |c, v| c.limits_config.readline_rate_enabled = v;
        limit_readline_rate_drop: bool = "limit.readline-rate-drop", "true", "When true, exceeding the rate limit causes this instance to discard log lines, rather than sending them to Loki." => |c, v| c.limits_config.readline_rate_drop = v;
        max_streams: u64 = "max-streams", "0", "Maximum number of active streams. 0 to disable." => |c, v| c.limits_config.max_streams = v;
        max_line_size: ByteSize = "max-line-size", "0B", "Maximum log line byte size allowed without dropping. Example: 256kb, 2M. 0 to disable." => |c, v| c.limits_config.max_line_size = v;
        max_line_size_truncate: bool = "max-line-size-truncate", "false", "Whether to truncate lines that exceed max_line_size." => |c, v| c.limits_config.max_line_size_truncate = v;
        tracing_enabled: bool = "tracing.enabled", "true", "Set to false to disable tracing." => |c, v| c.tracing.enabled = v;
        ferrotail_inflight_bytes: ByteSize = "ferrotail.inflight-bytes", "4MB", "Byte budget of entries read but not yet acknowledged; reading pauses when it is full." => |c, v| c.ferrotail.inflight_bytes = v;
        ferrotail_max_line_size_default: ByteSize = "ferrotail.max-line-size-default", "256KB", "Read-time line cap used when max_line_size is 0." => |c, v| c.ferrotail.max_line_size_default = v;
        ferrotail_long_line_action: LongLineAction = "ferrotail.long-line-action", "truncate", "What to do with a line over the read-time cap: truncate or drop." => |c, v| c.ferrotail.long_line_action = v;
        ferrotail_shutdown_timeout: GoDuration = "ferrotail.shutdown-timeout", "30s", "How long a graceful shutdown waits for in-flight batches." => |c, v| c.ferrotail.shutdown_timeout = v;
        ferrotail_client_concurrency: u32 = "ferrotail.client-concurrency", "1", "Concurrent push requests per client and tenant (at least 1)." => |c, v| c.ferrotail.client_concurrency = v;
    }
}

impl Flags {
    /// Parses the arguments (without the program name) with Go `flag` semantics.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, FlagError> {
        let args: Vec<String> = args.into_iter().collect();
        let mut flags = Flags::default();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if arg.len() < 2 || !arg.starts_with('-') {
                break;
            }
            let body = if let Some(rest) = arg.strip_prefix("--") {
                if rest.is_empty() {
                    i += 1;
                    break;
                }
                rest
            } else {
                &arg[1..]
            };
            if body.starts_with('-') || body.starts_with('=') {
                return Err(FlagError::Invalid(format!("bad flag syntax: {arg}")));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(spec) = SPECS.iter().find(|s| s.name == name) else {
                if name == "help" || name == "h" {
                    return Err(FlagError::Help);
                }
                return Err(FlagError::Invalid(format!(
                    "flag provided but not defined: -{name}"
                )));
            };
            i += 1;
            if spec.is_bool {
                let value = inline.unwrap_or("true");
                (spec.set)(&mut flags, value).map_err(|e| {
                    FlagError::Invalid(format!("invalid boolean value {value:?} for -{name}: {e}"))
                })?;
            } else {
                let value = match inline {
                    Some(v) => v.to_owned(),
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => {
                        return Err(FlagError::Invalid(format!(
                            "flag needs an argument: -{name}"
                        )));
                    }
                };
                (spec.set)(&mut flags, &value).map_err(|e| {
                    FlagError::Invalid(format!("invalid value {value:?} for flag -{name}: {e}"))
                })?;
            }
            flags.given.push(spec.name);
        }
        flags.args = args[i.min(args.len())..].to_vec();
        Ok(flags)
    }

    /// Whether the flag `name` (without dashes) was on the command line.
    pub fn was_given(&self, name: &str) -> bool {
        self.given.contains(&name)
    }
}

/// The help text (Go `flag` style), for `-help`; print it to stdout and exit 2.
pub fn usage() -> String {
    let mut specs: Vec<&FlagSpec> = SPECS.iter().collect();
    specs.sort_by_key(|s| s.name);
    let mut out = String::from("Usage of ferrotail:\n");
    for s in specs {
        let _ = write!(out, "  -{}", s.name);
        if !s.kind.is_empty() {
            let _ = write!(out, " {}", s.kind);
        }
        let _ = write!(out, "\n    \t{}", s.usage);
        let zero = matches!(s.default, "" | "0" | "false" | "0s" | "0B");
        if !zero {
            if s.kind == "string" {
                let _ = write!(out, " (default {:?})", s.default);
            } else {
                let _ = write!(out, " (default {})", s.default);
            }
        }
        out.push('\n');
    }
    out
}
