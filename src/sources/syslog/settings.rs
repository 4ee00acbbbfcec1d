//! The `syslog` block of a scrape config (spec §4.7): strict parsing with Promtail 3.4's keys
//! and defaults (`SyslogTargetConfig` and the defaults its transport applies).
//!
//! Invariants: unknown keys are refused by name; every key Promtail reads is honoured, and the
//! `tls_config` keys Promtail accepts but never uses are either meaningless for a listener
//! (accepted, documented) or refused as not supported (never ignored silently); a setting that
//! passes here has a listen address, a protocol of `tcp` or `udp`, an idle timeout and a
//! maximum message length above zero.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::units::GoDuration;
use crate::units::de::{bool11, opt_text, parse_scalar, text, text_map};

/// Promtail's idle timeout of a TCP connection (used for `0`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Promtail's longest message (used for `0`).
pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 8192;

/// The transport the listener uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `tcp` (default): a stream per connection, octet counting or newline framing.
    Tcp,
    /// `udp`: one or more messages per datagram.
    Udp,
}

/// How messages are parsed (`syslog_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `rfc5424` (default).
    Rfc5424,
    /// `rfc3164` (BSD syslog).
    Rfc3164,
}

/// TLS of a TCP listener: `cert_file` and `key_file`, and with `ca_file` a client
/// certificate is required and verified against it (Promtail's `newTLSConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// CAs that client certificates must chain to; `None`: no client certificate asked for.
    pub ca_file: Option<PathBuf>,
}

/// A validated `syslog` block, ready to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSettings {
    /// `listen_address` (required), `host:port`.
    pub listen_address: String,
    /// `listen_protocol`, default `tcp`.
    pub protocol: Protocol,
    /// `idle_timeout`, default (and for `0`) 120s: a TCP connection with no data for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// `label_structured_data`, default false: RFC 5424 structured data as
    /// `__syslog_message_sd_<id>_<param>` labels.
    pub label_structured_data: bool,
    /// `labels`, default none: added to every entry (before relabeling).
    pub labels: BTreeMap<String, String>,
    /// `use_incoming_timestamp`, default false: the message's own timestamp when it has one.
    pub use_incoming_timestamp: bool,
    /// `use_rfc5424_message`, default false: the whole RFC 5424 message as the line.
    pub use_rfc5424_message: bool,
    /// `syslog_format`, default `rfc5424`.
    pub format: Format,
    /// `max_message_length`, default (and for `0`) 8192 bytes: longer messages are cut here.
    pub max_message_length: usize,
    /// `tls_config` (TCP only), default none.
    pub tls: Option<TlsFiles>,
}

/// The YAML as Promtail's `SyslogTargetConfig` reads it.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawSyslog {
    #[serde(deserialize_with = "text")]
    listen_address: String,
    #[serde(deserialize_with = "text")]
    listen_protocol: String,
    #[serde(deserialize_with = "go_duration")]
    idle_timeout: GoDuration,
    #[serde(deserialize_with = "bool11")]
    label_structured_data: bool,
    #[serde(deserialize_with = "text_map")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "bool11")]
    use_incoming_timestamp: bool,
    #[serde(deserialize_with = "bool11")]
    use_rfc5424_message: bool,
    syslog_format: Option<RawFormat>,
    #[serde(deserialize_with = "int")]
    max_message_length: i64,
    tls_config: Option<RawTls>,
}

/// `syslog_format`: Promtail reads a plain string; the configuration reference shows
/// `{type: ...}` (spec §12 item 15), which is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawFormat {
    Plain(Option<String>),
    Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    },
}

/// prometheus/common's `TLSConfig`, as Promtail's syslog target reads it (only the three
/// file keys are used by Promtail).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawTls {
    #[serde(deserialize_with = "opt_text")]
    ca_file: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    cert_file: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    key_file: Option<String>,
    // Client-side settings: meaningless for a listener; Promtail accepts and ignores them.
    #[serde(deserialize_with = "opt_text")]
    server_name: Option<String>,
    #[serde(deserialize_with = "bool11")]
    insecure_skip_verify: bool,
    // Accepted by Promtail's parser but never used by its syslog target: refused here.
    #[serde(deserialize_with = "opt_text")]
    ca: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    cert: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    key: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    ca_ref: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    cert_ref: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    key_ref: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    min_version: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    max_version: Option<String>,
}

fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<GoDuration, D::Error> {
    parse_scalar(d, GoDuration::ZERO, GoDuration::parse)
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    parse_scalar(d, 0, |s| {
        s.parse::<i64>()
            .map_err(|_| format!("cannot parse {s:?} as an integer"))
    })
}

/// Checks a raw `syslog` block as validation does at load.
pub fn check(raw: &serde_yaml::Mapping) -> Result<(), String> {
    parse(raw).map(|_| ())
}

/// Parses and checks a raw `syslog` block. The error names the key and the problem.
pub fn parse(raw: &serde_yaml::Mapping) -> Result<SyslogSettings, String> {
    let raw: RawSyslog = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| e.to_string())?;
    if raw.listen_address.is_empty() {
        return Err("listen_address missing".to_owned());
    }
    let protocol = match raw.listen_protocol.as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(format!(
                "listen_protocol: invalid transport protocol. expected 'tcp' or 'udp', got '{other}'"
            ));
        }
    };
    if raw.idle_timeout.is_negative() {
        return Err(format!("idle_timeout: {} is negative", raw.idle_timeout));
    }
    let idle_timeout = match raw.idle_timeout.as_std() {
        d if d.is_zero() => DEFAULT_IDLE_TIMEOUT,
        d => d,
    };
    let format_text = match raw.syslog_format {
        None => None,
        Some(RawFormat::Plain(s)) => s,
        Some(RawFormat::Typed { kind }) => kind,
    };
    // Promtail compares with "rfc3164" and treats every other value as RFC 5424; a value that
    // is neither name is refused here rather than read as something the user did not write.
    let format = match format_text.as_deref().unwrap_or("") {
        "" | "rfc5424" => Format::Rfc5424,
        "rfc3164" => Format::Rfc3164,
        other => {
            return Err(format!(
                "syslog_format: {other:?} is not a syslog format (rfc5424 or rfc3164)"
            ));
        }
    };
    let max_message_length = match raw.max_message_length {
        0 => DEFAULT_MAX_MESSAGE_LENGTH,
        n if n < 0 => return Err(format!("max_message_length: {n} is negative")),
        n => usize::try_from(n)
            .map_err(|_| format!("max_message_length: {n} is too large"))?
            .min(MAX_MESSAGE_LENGTH_CAP),
    };
    let tls = match raw.tls_config {
        None => None,
        Some(t) => tls_files(t, protocol)?,
    };
    Ok(SyslogSettings {
        listen_address: raw.listen_address,
        protocol,
        idle_timeout,
        label_structured_data: raw.label_structured_data,
        labels: raw.labels,
        use_incoming_timestamp: raw.use_incoming_timestamp,
        use_rfc5424_message: raw.use_rfc5424_message,
        format,
        max_message_length,
        tls,
    })
}

/// The largest `max_message_length` honoured (64 MiB): a message is buffered whole, so the
/// setting is a memory bound and must stay one.
pub const MAX_MESSAGE_LENGTH_CAP: usize = 64 << 20;

fn tls_files(t: RawTls, protocol: Protocol) -> Result<Option<TlsFiles>, String> {
    for (key, set) in [
        ("ca", t.ca.is_some()),
        ("cert", t.cert.is_some()),
        ("key", t.key.is_some()),
        ("ca_ref", t.ca_ref.is_some()),
        ("cert_ref", t.cert_ref.is_some()),
        ("key_ref", t.key_ref.is_some()),
        ("min_version", t.min_version.is_some()),
        ("max_version", t.max_version.is_some()),
    ] {
        if set {
            return Err(format!(
                "tls_config.{key} is not supported for syslog (Promtail's syslog target reads \
                 only cert_file, key_file and ca_file)"
            ));
        }
    }
    // server_name and insecure_skip_verify configure a TLS client; a listener has no use for
    // them (Promtail ignores them too).
    let _ = (t.server_name, t.insecure_skip_verify);
    if t.cert_file.is_none() && t.key_file.is_none() && t.ca_file.is_none() {
        return Ok(None);
    }
    if protocol == Protocol::Udp {
        return Err(
            "tls_config applies to TCP only (listen_protocol is udp; Promtail ignores it there)"
                .to_owned(),
        );
    }
    let (Some(cert), Some(key)) = (t.cert_file, t.key_file) else {
        return Err("tls_config: certificate and key files are required".to_owned());
    };
    Ok(Some(TlsFiles {
        cert_file: PathBuf::from(cert),
        key_file: PathBuf::from(key),
        ca_file: t.ca_file.map(PathBuf::from),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_yaml(text: &str) -> Result<SyslogSettings, String> {
        let v: serde_yaml::Mapping = serde_yaml::from_str(text).unwrap();
        parse(&v)
    }

    #[test]
    fn defaults_are_promtails() {
        let s = parse_yaml("listen_address: 127.0.0.1:1514").unwrap();
        assert_eq!(s.protocol, Protocol::Tcp);
        assert_eq!(s.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.max_message_length, 8192);
        assert_eq!(s.format, Format::Rfc5424);
        assert!(!s.label_structured_data && !s.use_incoming_timestamp && !s.use_rfc5424_message);
        assert!(s.labels.is_empty() && s.tls.is_none());
        // 0 means the default, as in Promtail.
        let s =
            parse_yaml("{listen_address: a:1, idle_timeout: 0, max_message_length: 0}").unwrap();
        assert_eq!(s.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.max_message_length, 8192);
    }

    #[test]
    fn every_key_is_read() {
        let s = parse_yaml(
            "listen_address: 0.0.0.0:601\nlisten_protocol: udp\nidle_timeout: 5m\n\
             label_structured_data: yes\nlabels: {job: syslog, n: 1}\n\
             use_incoming_timestamp: true\nuse_rfc5424_message: on\n\
             syslog_format: rfc3164\nmax_message_length: 100\n",
        )
        .unwrap();
        assert_eq!(s.protocol, Protocol::Udp);
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert!(s.label_structured_data && s.use_incoming_timestamp && s.use_rfc5424_message);
        assert_eq!(s.labels.get("n").map(String::as_str), Some("1"));
        assert_eq!(s.format, Format::Rfc3164);
        assert_eq!(s.max_message_length, 100);
    }

    #[test]
    fn format_as_mapping_is_accepted() {
        let s = parse_yaml("{listen_address: a:1, syslog_format: {type: rfc3164}}").unwrap();
        assert_eq!(s.format, Format::Rfc3164);
    }

    #[test]
    fn tls_files() {
        let s =
            parse_yaml("{listen_address: a:1, tls_config: {cert_file: c, key_file: k}}").unwrap();
        let t = s.tls.unwrap();
        assert_eq!(t.cert_file, PathBuf::from("c"));
        assert_eq!(t.ca_file, None);
        let s = parse_yaml(
            "{listen_address: a:1, tls_config: {cert_file: c, key_file: k, ca_file: ca, server_name: x}}",
        )
        .unwrap();
        assert_eq!(s.tls.unwrap().ca_file, Some(PathBuf::from("ca")));
        // An empty tls_config is no TLS, as in Promtail.
        assert!(
            parse_yaml("{listen_address: a:1, tls_config: {}}")
                .unwrap()
                .tls
                .is_none()
        );
    }

    #[test]
    fn problems_are_named() {
        for (yaml, needle) in [
            ("{listen_protocol: udp}", "listen_address missing"),
            ("{listen_address: a:1, listen_protocol: sctp}", "got 'sctp'"),
            ("{listen_address: a:1, bogus: 1}", "bogus"),
            ("{listen_address: a:1, idle_timeout: 2x}", "idle_timeout"),
            ("{listen_address: a:1, idle_timeout: -1s}", "negative"),
            ("{listen_address: a:1, max_message_length: -5}", "negative"),
            ("{listen_address: a:1, max_message_length: many}", "integer"),
            ("{listen_address: a:1, syslog_format: rfc9999}", "rfc9999"),
            (
                "{listen_address: a:1, tls_config: {cert_file: c}}",
                "certificate and key",
            ),
            (
                "{listen_address: a:1, tls_config: {ca_file: c}}",
                "certificate and key",
            ),
            (
                "{listen_address: a:1, tls_config: {cert: c, key: k}}",
                "tls_config.cert",
            ),
            ("{listen_address: a:1, tls_config: {bogus: 1}}", "bogus"),
            (
                "{listen_address: a:1, listen_protocol: udp, tls_config: {cert_file: c, key_file: k}}",
                "TCP only",
            ),
            (
                "{listen_address: a:1, use_incoming_timestamp: maybe}",
                "boolean",
            ),
        ] {
            let e = parse_yaml(yaml).unwrap_err();
            assert!(e.contains(needle), "{yaml}: {e}");
        }
    }
}
