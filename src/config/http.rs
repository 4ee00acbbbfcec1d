//! The Prometheus HTTP client settings inlined in a Promtail client (prometheus-common's
//! `HTTPClientConfig`): credentials, TLS, proxy and header settings, with the consistency checks
//! Promtail runs at load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::de::{bool11, nullable, opt_text, parse_scalar, text, text_list, text_map};

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

/// `basic_auth`. Each of username and password has exactly one source.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicAuth {
    /// `username`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// `username_file`: read (trimmed) on every request.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    /// `username_ref` (secret manager reference; not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub username_ref: String,
    /// `password` (secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `password_file`: read (trimmed) on every request.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub password_file: String,
    /// `password_ref` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub password_ref: String,
}

/// `authorization`: sends `Authorization: <type> <credentials>`.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    /// `type`, default `Bearer` (see [`Authorization::scheme`]); `basic` is rejected.
    #[serde(
        rename = "type",
        deserialize_with = "text",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth_type: String,
    /// `credentials` (secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub credentials: String,
    /// `credentials_file`: read (trimmed) on every request.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
    /// `credentials_ref` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub credentials_ref: String,
}

impl Authorization {
    /// The scheme sent in the header: `type` trimmed, or `Bearer` when empty.
    pub fn scheme(&self) -> &str {
        match self.auth_type.trim() {
            "" => "Bearer",
            t => t,
        }
    }
}

/// `oauth2` (accepted and checked like Promtail; refused by validation for now).
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2 {
    /// `client_id`.
    #[serde(deserialize_with = "text")]
    pub client_id: String,
    /// `client_secret` (secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    /// `client_secret_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_secret_file: String,
    /// `client_secret_ref`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_secret_ref: String,
    /// `client_certificate_key_id`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_certificate_key_id: String,
    /// `client_certificate_key` (secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_certificate_key: String,
    /// `client_certificate_key_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_certificate_key_file: String,
    /// `client_certificate_key_ref`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub client_certificate_key_ref: String,
    /// `grant_type`, default `client_credentials`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub grant_type: String,
    /// `signature_algorithm` (jwt-bearer only): RS256, RS384 or RS512.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub signature_algorithm: String,
    /// `iss`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub iss: String,
    /// `audience`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub audience: String,
    /// `claims`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_yaml::Mapping>,
    /// `scopes`.
    #[serde(deserialize_with = "text_list", skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `token_url`.
    #[serde(deserialize_with = "text")]
    pub token_url: String,
    /// `endpoint_params`.
    #[serde(
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub endpoint_params: BTreeMap<String, String>,
    /// `tls_config`.
    #[serde(deserialize_with = "nullable")]
    pub tls_config: TlsConfig,
    /// `proxy_url`.
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// `no_proxy`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    /// `proxy_from_environment`.
    #[serde(deserialize_with = "bool11", skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,
    /// `proxy_connect_header` (secret values).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
}

/// One `http_headers` entry: values, secrets and files whose contents are sent.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpHeader {
    /// `values`.
    #[serde(deserialize_with = "text_list", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// `secrets` (secret).
    #[serde(deserialize_with = "text_list", skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// `files`.
    #[serde(deserialize_with = "text_list", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// A TLS protocol version for `min_version`/`max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS10`
    Tls10,
    /// `TLS11`
    Tls11,
    /// `TLS12`
    Tls12,
    /// `TLS13`
    Tls13,
}

impl TlsVersion {
    /// Parses `TLS10` .. `TLS13`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(format!("unknown TLS version: {s}")),
        }
    }

    /// The YAML name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A null field is `None` before this runs (the field is an `Option`).
        parse_scalar(d, None, |s| TlsVersion::parse(s).map(Some))?
            .ok_or_else(|| serde::de::Error::custom("unknown TLS version: "))
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `tls_config` of a client (Prometheus TLS config).
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// `ca`: inline CA PEM.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// `cert`: inline client certificate PEM.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// `key`: inline client key PEM (secret).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `ca_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// `cert_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    /// `key_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    /// `ca_ref` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub ca_ref: String,
    /// `cert_ref` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub cert_ref: String,
    /// `key_ref` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub key_ref: String,
    /// `server_name`: expected server name (SNI and verification).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// `insecure_skip_verify`, default false.
    #[serde(deserialize_with = "bool11")]
    pub insecure_skip_verify: bool,
    /// `min_version`, default unset (not supported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// `max_version`, default unset (not supported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

pub(super) fn count_set(values: &[bool]) -> usize {
    values.iter().filter(|v| **v).count()
}

impl TlsConfig {
    /// Prometheus' TLS config check.
    pub fn check(&self) -> Result<(), String> {
        let set = |s: &String| !s.is_empty();
        if count_set(&[set(&self.ca), set(&self.ca_file), set(&self.ca_ref)]) > 1 {
            return Err("at most one of ca, ca_file & ca_ref must be configured".into());
        }
        if count_set(&[set(&self.cert), set(&self.cert_file), set(&self.cert_ref)]) > 1 {
            return Err("at most one of cert, cert_file & cert_ref must be configured".into());
        }
        if count_set(&[set(&self.key), set(&self.key_file), set(&self.key_ref)]) > 1 {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = set(&self.cert) || set(&self.cert_file) || set(&self.cert_ref);
        let has_key = set(&self.key) || set(&self.key_file) || set(&self.key_ref);
        if has_cert && !has_key {
            return Err(
                "exactly one of key or key_file must be configured when a client \
                        certificate is configured"
                    .into(),
            );
        }
        if has_key && !has_cert {
            return Err(
                "exactly one of cert or cert_file must be configured when a client key \
                        is configured"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Headers Prometheus does not let `http_headers` set.
pub(super) const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-prometheus-scrape-timeout-seconds",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

pub(super) fn check_proxy(
    proxy_url: &Option<String>,
    no_proxy: &str,
    from_env: bool,
    connect_header: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    if !connect_header.is_empty() && !from_env && proxy_url.is_none() {
        return Err(
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment \
                    must also be configured"
                .into(),
        );
    }
    if from_env && proxy_url.is_some() {
        return Err(
            "if proxy_from_environment is configured, proxy_url must not be configured".into(),
        );
    }
    if from_env && !no_proxy.is_empty() {
        return Err(
            "if proxy_from_environment is configured, no_proxy must not be configured".into(),
        );
    }
    if proxy_url.is_none() && !no_proxy.is_empty() {
        return Err("if no_proxy is configured, proxy_url must also be configured".into());
    }
    Ok(())
}
