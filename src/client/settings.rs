//! Runtime settings of one Loki client: plain, validated values (the config module converts
//! Promtail's `clients[]` YAML into these; nothing here parses YAML).
//!
//! Secrets ([`Secret`]) never appear in `Debug` or `Display` output; file-backed secrets are read
//! again for every request so that rotated credentials take effect without a restart (spec §3.3).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::entry::LabelSet;
use crate::redact;

/// Everything one client needs (one `clients[]` element plus the `limits_config` values that act
/// per client). Its `Debug` masks the URL's password and sensitive header values.
#[derive(Clone)]
pub struct ClientSettings {
    /// The full push URL, e.g. `http://loki:3100/loki/api/v1/push`. Userinfo in it
    /// (`https://user:token@host/...`) is used as basic auth and never sent as part of the URL.
    pub url: Url,
    /// The client's name, used in log lines and error messages.
    pub name: String,
    /// The tenant sent as `X-Scope-OrgID` when an entry has no `__tenant_id__` label. `None` or
    /// empty: no header. Default: none.
    pub tenant_id: Option<String>,
    /// A batch is sent at the latest this long after its first entry. Default: `1s`.
    pub batch_wait: Duration,
    /// A batch is sent before it would grow past this many bytes (spec §8.2). Default: `1048576`.
    pub batch_size: usize,
    /// Deadline for one whole HTTP attempt, response included. Default: `10s`.
    pub timeout: Duration,
    /// Extra headers sent with every request (in this order). Names already set by the client
    /// (`Content-Type`, `User-Agent`, `X-Scope-OrgID` when a tenant is set) are skipped with a
    /// warning; an `Authorization` header here wins over [`ClientSettings::auth`].
    pub headers: Vec<(String, String)>,
    /// Labels added to every entry of this client; the entry's own labels win on conflict.
    pub external_labels: LabelSet,
    /// Retry policy for 429, 5xx and transport errors.
    pub backoff: BackoffSettings,
    /// Drop a batch at once when Loki answers 429 instead of retrying it. Default: `false`.
    pub drop_rate_limited_batches: bool,
    /// Authentication. Default: none.
    pub auth: Auth,
    /// Proxy for every request. Default: none.
    pub proxy_url: Option<Url>,
    /// Use the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` environment variables (Promtail's
    /// `proxy_from_environment`). Ignored when `proxy_url` is set. Default: `false`.
    pub proxy_from_environment: bool,
    /// TLS options for `https` URLs.
    pub tls: TlsSettings,
    /// Follow HTTP redirects (at most 10). Default: `true`.
    pub follow_redirects: bool,
    /// Requests in flight at once per tenant. 1 keeps every stream in order; more can reorder
    /// entries of one stream (Loki accepts that within its out-of-order window). Default: `1`;
    /// 0 counts as 1.
    pub concurrency: usize,
    /// Lines longer than this many bytes are dropped (or truncated, see below). Default: none.
    pub max_line_size: Option<usize>,
    /// Truncate over-long lines to `max_line_size` bytes instead of dropping them.
    /// Default: `false`.
    pub max_line_size_truncate: bool,
    /// Most distinct streams in one batch; an entry for a further stream is dropped and counted
    /// with reason `stream_limited`. 0 = no limit. Default: `0`.
    pub max_streams: usize,
}

impl ClientSettings {
    /// Settings with Promtail's defaults (spec Appendix A) for `url`; the name defaults to the
    /// URL's host.
    pub fn new(url: Url) -> Self {
        let name = url.host_str().unwrap_or("loki").to_owned();
        ClientSettings {
            url,
            name,
            tenant_id: None,
            batch_wait: Duration::from_secs(1),
            batch_size: 1024 * 1024,
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            external_labels: LabelSet::new(),
            backoff: BackoffSettings::default(),
            drop_rate_limited_batches: false,
            auth: Auth::None,
            proxy_url: None,
            proxy_from_environment: false,
            tls: TlsSettings::default(),
            follow_redirects: true,
            concurrency: 1,
            max_line_size: None,
            max_line_size_truncate: false,
            max_streams: 0,
        }
    }

    /// The `host` label of the client metrics: the URL's host and, when present, its port,
    /// without userinfo (spec §9.2).
    pub fn host_label(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let ClientSettings {
            url,
            name,
            tenant_id,
            batch_wait,
            batch_size,
            timeout,
            headers,
            external_labels,
            backoff,
            drop_rate_limited_batches,
            auth,
            proxy_url,
            proxy_from_environment,
            tls,
            follow_redirects,
            concurrency,
            max_line_size,
            max_line_size_truncate,
            max_streams,
        } = self;
        f.debug_struct("ClientSettings")
            .field("url", &redact::url(url.as_str()))
            .field("name", name)
            .field("tenant_id", tenant_id)
            .field("batch_wait", batch_wait)
            .field("batch_size", batch_size)
            .field("timeout", timeout)
            .field("headers", &redact::Headers(headers))
            .field("external_labels", external_labels)
            .field("backoff", backoff)
            .field("drop_rate_limited_batches", drop_rate_limited_batches)
            .field("auth", auth)
            .field(
                "proxy_url",
                &proxy_url.as_ref().map(|u| redact::url(u.as_str())),
            )
            .field("proxy_from_environment", proxy_from_environment)
            .field("tls", tls)
            .field("follow_redirects", follow_redirects)
            .field("concurrency", concurrency)
            .field("max_line_size", max_line_size)
            .field("max_line_size_truncate", max_line_size_truncate)
            .field("max_streams", max_streams)
            .finish()
    }
}

/// Retry timing (Promtail's `backoff_config`, spec §8.4). A `Retry-After` header on a retryable
/// answer raises the next sleep to its value, capped at `max_period` (a server asking for an
/// hour must not stall a stream longer than the operator allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffSettings {
    /// Lower bound of the first sleep. Default: `500ms`.
    pub min_period: Duration,
    /// Upper bound of any sleep. Default: `5m`.
    pub max_period: Duration,
    /// Attempts in total before a batch is dropped. `None` or `Some(0)`: retry until delivered
    /// or hard stop. Default: `Some(10)`.
    pub max_retries: Option<u32>,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings {
            min_period: Duration::from_millis(500),
            max_period: Duration::from_secs(300),
            max_retries: Some(10),
        }
    }
}

/// A secret value, given inline or as a file that is read again for every request.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value itself.
    Inline(String),
    /// A file holding the value; surrounding whitespace is trimmed (as Prometheus' HTTP client
    /// does).
    File(PathBuf),
}

impl Secret {
    /// The current value (reads the file for [`Secret::File`]).
    pub async fn value(&self) -> std::io::Result<String> {
        match self {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::File(path) => {
                let text = tokio::fs::read_to_string(path).await?;
                Ok(text.trim().to_owned())
            }
        }
    }
}

impl Secret {
    /// The file, for a file secret.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Secret::Inline(_) => None,
            Secret::File(path) => Some(path),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str(redact::MASK),
            Secret::File(path) => write!(f, "<secret in {}>", path.display()),
        }
    }
}

/// How requests authenticate (Prometheus HTTP client options; at most one is set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No authentication header (URL userinfo still gives basic auth).
    #[default]
    None,
    /// `basic_auth`.
    Basic {
        /// The user name.
        username: Secret,
        /// The password (may be an empty inline value).
        password: Secret,
    },
    /// `bearer_token` / `bearer_token_file`: `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `authorization`: `Authorization: <scheme> <credentials>`.
    Authorization {
        /// The scheme, e.g. `Bearer`.
        scheme: String,
        /// The credentials.
        credentials: Secret,
    },
}

/// PEM data given inline or as a file (read once at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PemSource {
    /// The PEM text itself.
    Inline(String),
    /// A file holding PEM text.
    File(PathBuf),
}

impl PemSource {
    /// The file, for PEM data given as a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PemSource::Inline(_) => None,
            PemSource::File(path) => Some(path),
        }
    }
}

/// TLS options (Promtail's `tls_config`). All files are read when the client starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA certificates that replace the system roots. Default: the system and webpki roots.
    pub ca: Option<PemSource>,
    /// Client certificate chain (needs `key`).
    pub cert: Option<PemSource>,
    /// Client private key (needs `cert`); a secret when inline.
    pub key: Option<Secret>,
    /// Verify the server certificate against this name instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate. Default: `false`.
    pub insecure_skip_verify: bool,
}

impl TlsSettings {
    /// Whether every option is at its default (then reqwest's own TLS set-up is used).
    pub fn is_default(&self) -> bool {
        *self == TlsSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_printed() {
        let s = Secret::Inline("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "<secret> <secret>");
        let auth = Auth::Basic {
            username: Secret::Inline("user".into()),
            password: s,
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        let f = Secret::File("/run/token".into());
        assert_eq!(f.to_string(), "<secret in /run/token>");
    }

    #[test]
    fn settings_debug_masks_url_proxy_and_credential_headers() {
        let mut s = ClientSettings::new(
            Url::parse("https://user:hunter2@logs.example/loki/api/v1/push").unwrap(),
        );
        s.proxy_url = Some(Url::parse("http://proxyuser:hunter3@proxy:3128").unwrap());
        s.headers = vec![
            ("Authorization".into(), "Bearer hunter4".into()),
            ("X-Scope-OrgID".into(), "tenant-a".into()),
        ];
        s.auth = Auth::Bearer(Secret::Inline("hunter5".into()));
        s.tls.key = Some(Secret::Inline("-----BEGIN PRIVATE KEY----- hunter6".into()));
        let out = format!("{s:?} {s:#?}");
        assert!(!out.contains("hunter"), "{out}");
        for shown in [
            "https://user:<secret>@logs.example/loki/api/v1/push",
            "http://proxyuser:<secret>@proxy:3128/",
            "tenant-a",
        ] {
            assert!(out.contains(shown), "{shown} missing from {out}");
        }
    }

    #[test]
    fn host_label_has_port_but_no_userinfo() {
        let s = ClientSettings::new(
            Url::parse("https://u:p@logs.example:3100/loki/api/v1/push").unwrap(),
        );
        assert_eq!(s.host_label(), "logs.example:3100");
        let s = ClientSettings::new(Url::parse("http://loki/loki/api/v1/push").unwrap());
        assert_eq!(s.host_label(), "loki");
    }

    #[tokio::test]
    async fn file_secret_is_trimmed_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n").unwrap();
        let s = Secret::File(path.clone());
        assert_eq!(s.value().await.unwrap(), "one");
        std::fs::write(&path, "  two ").unwrap();
        assert_eq!(s.value().await.unwrap(), "two");
    }
}
