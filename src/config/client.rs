//! `clients[]` and the deprecated `client:` block (spec §3.3): one Loki endpoint each, with the
//! Prometheus HTTP client settings inlined as Promtail does.
//!
//! [`ClientConfig::check`] is the prometheus-common consistency check Promtail runs while
//! parsing (mutually exclusive credentials etc.); failing it is a load error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::de::{bool11, nullable, opt_text, text, text_map};
use super::http::{
    Authorization, BasicAuth, HttpHeader, OAuth2, RESERVED_HEADERS, TlsConfig, check_proxy,
    count_set, is_false,
};
use super::types::GoDuration;

/// One `clients[]` element (or the `client:` block, or the `-client.*` flags).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// `url`: the full push URL (`http://loki:3100/loki/api/v1/push`); required. May carry
    /// `user:password@` credentials, sent as basic auth.
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `name`, default `""` = the first 6 hex digits of the SHA-256 of this client's YAML
    /// (see [`ClientConfig::effective_name`]). Used in logs and for duplicate detection.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `tenant_id`, default `""`: `X-Scope-OrgID` (not sent when empty and no stage sets one).
    #[serde(deserialize_with = "text")]
    pub tenant_id: String,
    /// `batchwait`, default 1s: the longest a batch waits before it is sent.
    pub batchwait: GoDuration,
    /// `batchsize`, default 1048576: a batch is sent when it reaches this many bytes.
    #[serde(deserialize_with = "nullable")]
    pub batchsize: u64,
    /// `timeout`, default 10s: per HTTP request.
    pub timeout: GoDuration,
    /// `headers`, default empty: added to every push request.
    #[serde(
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
    /// `external_labels`, default empty: added to every entry unless the entry has the label.
    #[serde(
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub external_labels: BTreeMap<String, String>,
    /// `drop_rate_limited_batches`, default false: drop a batch answered with 429.
    #[serde(deserialize_with = "bool11")]
    pub drop_rate_limited_batches: bool,
    /// `backoff_config`: retry timing.
    #[serde(deserialize_with = "nullable")]
    pub backoff_config: BackoffConfig,
    /// `basic_auth`, default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `authorization`, default unset (`type` defaults to `Bearer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// `oauth2`, default unset (not supported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// `bearer_token`, default `""` (secret): shorthand for `authorization.credentials`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub bearer_token: String,
    /// `bearer_token_file`, default `""`: shorthand for `authorization.credentials_file`.
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    /// `tls_config`, default empty (system roots, verify).
    #[serde(deserialize_with = "nullable")]
    pub tls_config: TlsConfig,
    /// `follow_redirects`, default true.
    #[serde(deserialize_with = "bool11")]
    pub follow_redirects: bool,
    /// `enable_http2`, default true; accepted and ignored: pushes use HTTP/1.1 like Promtail.
    #[serde(deserialize_with = "bool11")]
    pub enable_http2: bool,
    /// `proxy_url`, default unset.
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// `no_proxy`, default `""` (not supported yet).
    #[serde(deserialize_with = "text", skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    /// `proxy_from_environment`, default false (not supported yet).
    #[serde(deserialize_with = "bool11", skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,
    /// `proxy_connect_header`, default empty (secret values; not supported yet).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
    /// `http_headers`, default unset (Prometheus header config; not supported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<BTreeMap<String, HttpHeader>>,
    /// `stream_lag_labels`: removed in Promtail 3.0; accepted with a warning and ignored.
    #[serde(skip_serializing)]
    pub stream_lag_labels: Option<serde_yaml::Value>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            url: None,
            name: String::new(),
            tenant_id: String::new(),
            batchwait: GoDuration::from_secs(1),
            batchsize: 1024 * 1024,
            timeout: GoDuration::from_secs(10),
            headers: BTreeMap::new(),
            external_labels: BTreeMap::new(),
            drop_rate_limited_batches: false,
            backoff_config: BackoffConfig::default(),
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: String::new(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
            no_proxy: String::new(),
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            http_headers: None,
            stream_lag_labels: None,
        }
    }
}

/// `backoff_config`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// `min_period`, default 500ms: the first retry delay.
    pub min_period: GoDuration,
    /// `max_period`, default 5m: the delay doubles up to this.
    pub max_period: GoDuration,
    /// `max_retries`: unset (default) = retry until delivered (ferrotail's at-least-once
    /// contract; Promtail's default is 10). When set, Promtail's meaning: 0 = forever, N = give up
    /// and drop the batch (counted) after N attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min_period: GoDuration::from_millis(500),
            max_period: GoDuration::from_secs(300),
            max_retries: None,
        }
    }
}

impl BackoffConfig {
    /// The attempt limit: `None` = retry forever (unset, or set to 0).
    pub fn retry_limit(&self) -> Option<u32> {
        self.max_retries.filter(|&n| n > 0)
    }
}

impl ClientConfig {
    /// The prometheus-common HTTP client config check Promtail runs at load (mutually exclusive
    /// credential sources, `authorization.type: basic`, proxy and TLS consistency, ...).
    pub fn check(&self) -> Result<(), String> {
        let bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && bearer {
            return Err(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must \
                        be configured"
                    .into(),
            );
        }
        if let Some(b) = &self.basic_auth {
            let set = |s: &String| !s.is_empty();
            if count_set(&[
                set(&b.username),
                set(&b.username_file),
                set(&b.username_ref),
            ]) > 1
            {
                return Err(
                    "at most one of basic_auth username, username_file & username_ref \
                            must be configured"
                        .into(),
                );
            }
            if count_set(&[
                set(&b.password),
                set(&b.password_file),
                set(&b.password_ref),
            ]) > 1
            {
                return Err(
                    "at most one of basic_auth password, password_file & password_ref \
                            must be configured"
                        .into(),
                );
            }
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            let set = |s: &String| !s.is_empty();
            if count_set(&[
                set(&a.credentials),
                set(&a.credentials_file),
                set(&a.credentials_ref),
            ]) > 1
            {
                return Err(
                    "at most one of authorization credentials & credentials_file must be \
                            configured"
                        .into(),
                );
            }
            if a.scheme().eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
            let set = |s: &String| !s.is_empty();
            if o.grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
                let keys = [
                    set(&o.client_certificate_key),
                    set(&o.client_certificate_key_file),
                    set(&o.client_certificate_key_ref),
                ];
                if count_set(&keys) > 1 {
                    return Err("at most one of oauth2 client_certificate_key, \
                                client_certificate_key_file & client_certificate_key_ref must be \
                                configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer"
                        .into());
                }
                if !o.signature_algorithm.is_empty()
                    && !["RS256", "RS384", "RS512"].contains(&o.signature_algorithm.as_str())
                {
                    return Err("valid signature algorithms are RS256, RS384 and RS512".into());
                }
            } else if count_set(&[
                set(&o.client_secret),
                set(&o.client_secret_file),
                set(&o.client_secret_ref),
            ]) > 1
            {
                return Err("at most one of oauth2 client_secret, client_secret_file & \
                            client_secret_ref must be configured using grant-type=client_credentials"
                    .into());
            }
            o.tls_config
                .check()
                .map_err(|e| format!("oauth2.tls_config: {e}"))?;
            check_proxy(
                &o.proxy_url,
                &o.no_proxy,
                o.proxy_from_environment,
                &o.proxy_connect_header,
            )
            .map_err(|e| format!("oauth2: {e}"))?;
        }
        check_proxy(
            &self.proxy_url,
            &self.no_proxy,
            self.proxy_from_environment,
            &self.proxy_connect_header,
        )?;
        if let Some(headers) = &self.http_headers {
            for name in headers.keys() {
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(format!("setting header {name:?} is not allowed"));
                }
            }
        }
        self.tls_config
            .check()
            .map_err(|e| format!("tls_config: {e}"))
    }

    /// The client's name: `name`, or the first 6 hex digits of the SHA-256 of its YAML.
    pub fn effective_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        use sha2::{Digest, Sha256};
        let yaml = serde_yaml::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(yaml.as_bytes());
        digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
    }
}
