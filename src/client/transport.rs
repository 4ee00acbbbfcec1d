//! One HTTP push attempt (spec §8.3): headers, authentication, proxy, TLS, the deadline, and the
//! answer boiled down to an [`Attempt`].
//!
//! Header precedence follows Promtail (Go's HTTP client): `Content-Type`, `User-Agent` and, with
//! a tenant, `X-Scope-OrgID` are ours and custom headers of the same name are skipped with a
//! warning; a custom `Authorization` header wins over everything else; URL userinfo comes next
//! (Go applies it before the auth round-tripper, which then leaves the header alone); the
//! configured `auth` comes last. File secrets are read for every attempt.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Client, RequestBuilder, Url};

use super::ClientError;
use super::backoff::parse_retry_after;
use super::settings::{Auth, ClientSettings, Secret};
use super::tls;
use crate::redact;

/// The `User-Agent` of every push.
pub const USER_AGENT_VALUE: &str = concat!("ferrotail/", env!("CARGO_PKG_VERSION"));

const ORG_ID: &str = "x-scope-orgid";

/// At most this much of an error body is read (Promtail's `maxErrMsgLen`).
const MAX_ERROR_BODY: usize = 1024;

/// The result of one push attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Loki answered with a status.
    Answered {
        /// The HTTP status code.
        status: u16,
        /// `Retry-After`, when present and parseable.
        retry_after: Option<Duration>,
        /// For non-2xx: `server returned HTTP status <status line> (<code>): <first body line>`.
        message: String,
    },
    /// No answer: connection, TLS, timeout, reset, or a secret file that cannot be read.
    Failed(String),
    /// The request cannot be built and retrying cannot help (e.g. a tenant that is not a valid
    /// header value).
    Unsendable(String),
}

/// Something that performs push attempts (HTTP in production, a fake in tests).
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` for `tenant` ("" = no tenant) once.
    fn attempt(&self, tenant: &str, body: &Bytes) -> impl Future<Output = Attempt> + Send;
}

/// Pushes over HTTP with reqwest. Its `Debug` shows no credential (see the impl).
pub struct HttpTransport {
    client: Client,
    name: String,
    url: Url,
    timeout: Duration,
    /// Custom headers other than `X-Scope-OrgID`, in configuration order.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// A custom `X-Scope-OrgID`, sent only for entries without a tenant.
    custom_org_id: Option<HeaderValue>,
    custom_authorization: bool,
    userinfo: Option<(String, Option<String>)>,
    auth: Auth,
    warned_org_id: AtomicBool,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // reqwest's `Client` is left out: its `Debug` prints the proxy URL with its password.
        f.debug_struct("HttpTransport")
            .field("name", &self.name)
            .field("url", &redact::url(self.url.as_str()))
            .field("timeout", &self.timeout)
            .field("headers", &redact::Headers(&self.headers))
            .field("custom_org_id", &self.custom_org_id)
            .field("custom_authorization", &self.custom_authorization)
            .field(
                "userinfo",
                &self
                    .userinfo
                    .as_ref()
                    .map(|(user, pass)| (user, pass.as_ref().map(|_| redact::MASK))),
            )
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Builds the HTTP client for `settings`. Bad TLS files, a bad proxy URL or bad header names
    /// are errors naming the client.
    pub fn new(settings: &ClientSettings) -> Result<Self, ClientError> {
        let client_name = settings.name.as_str();
        let scheme = settings.url.scheme();
        if scheme != "http" && scheme != "https" || settings.url.host_str().is_none() {
            return Err(ClientError::Url {
                client: client_name.to_owned(),
                url: redact::url(settings.url.as_str()),
                problem: "must be an http or https URL with a host".into(),
            });
        }
        let mut url = settings.url.clone();
        let userinfo = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode_str(url.username())
                .decode_utf8_lossy()
                .into_owned();
            let pass = url
                .password()
                .map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned());
            // Cannot fail for http(s) URLs with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, pass))
        };

        let mut headers = Vec::new();
        let mut custom_org_id = None;
        let mut custom_authorization = false;
        for (name, value) in &settings.headers {
            let bad = |problem: String| ClientError::Header {
                client: client_name.to_owned(),
                name: name.clone(),
                problem,
            };
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad("not a valid header name".into()))?;
            let mut hvalue = HeaderValue::from_str(value)
                .map_err(|_| bad("value is not a valid header value".into()))?;
            if hname == CONTENT_TYPE || hname == USER_AGENT {
                tracing::warn!(client = client_name, key = %name, "custom header key already exists, skipping");
                continue;
            }
            if hname.as_str() == ORG_ID {
                custom_org_id = Some(hvalue);
                continue;
            }
            if hname == AUTHORIZATION {
                custom_authorization = true;
                hvalue.set_sensitive(true);
            }
            headers.push((hname, hvalue));
        }

        let mut builder = Client::builder()
            .http1_only()
            .redirect(if settings.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if let Some(proxy) = &settings.proxy_url {
            let proxy =
                reqwest::Proxy::all(proxy.clone()).map_err(|source| ClientError::Proxy {
                    client: client_name.to_owned(),
                    url: redact::url(proxy.as_str()),
                    source,
                })?;
            builder = builder.no_proxy().proxy(proxy);
        } else if !settings.proxy_from_environment {
            builder = builder.no_proxy();
        }
        if !settings.tls.is_default() {
            builder =
                builder.use_preconfigured_tls(tls::client_config(client_name, &settings.tls)?);
        }
        let client = builder.build().map_err(|source| ClientError::Build {
            client: client_name.to_owned(),
            source,
        })?;
        Ok(HttpTransport {
            client,
            name: client_name.to_owned(),
            url,
            timeout: settings.timeout,
            headers,
            custom_org_id,
            custom_authorization,
            userinfo,
            auth: settings.auth.clone(),
            warned_org_id: AtomicBool::new(false),
        })
    }

    async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder, String> {
        if self.custom_authorization {
            return Ok(req);
        }
        if let Some((user, pass)) = &self.userinfo {
            return Ok(req.basic_auth(user, pass.as_ref()));
        }
        match &self.auth {
            Auth::None => Ok(req),
            Auth::Basic { username, password } => {
                let user = secret_value(username, "basic_auth.username_file").await?;
                let pass = secret_value(password, "basic_auth.password_file").await?;
                Ok(req.basic_auth(user, Some(pass)))
            }
            Auth::Bearer(token) => {
                let token = secret_value(token, "bearer_token_file").await?;
                sensitive(format!("Bearer {token}")).map(|v| req.header(AUTHORIZATION, v))
            }
            Auth::Authorization {
                scheme,
                credentials,
            } => {
                let cred = secret_value(credentials, "authorization.credentials_file").await?;
                sensitive(format!("{scheme} {cred}")).map(|v| req.header(AUTHORIZATION, v))
            }
        }
    }

    async fn attempt_inner(&self, tenant: &str, body: &Bytes) -> Attempt {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(USER_AGENT, USER_AGENT_VALUE);
        if tenant.is_empty() {
            if let Some(v) = &self.custom_org_id {
                req = req.header(ORG_ID, v.clone());
            }
        } else {
            match HeaderValue::from_str(tenant) {
                Ok(v) => req = req.header(ORG_ID, v),
                Err(_) => {
                    return Attempt::Unsendable(format!(
                        "tenant {tenant:?} is not a valid X-Scope-OrgID header value"
                    ));
                }
            }
            if self.custom_org_id.is_some() && !self.warned_org_id.swap(true, Ordering::Relaxed) {
                tracing::warn!(client = %self.name, key = "X-Scope-OrgID", "custom header key already exists, skipping");
            }
        }
        for (name, value) in &self.headers {
            req = req.header(name.clone(), value.clone());
        }
        req = match self.authorize(req).await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(e),
        };
        let resp = match req.body(body.clone()).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(error_chain(&e)),
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Answered {
                status: status.as_u16(),
                retry_after: None,
                message: String::new(),
            };
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let line = first_line(resp).await;
        let status_line = match status.canonical_reason() {
            Some(reason) => format!("{} {reason}", status.as_u16()),
            None => status.as_u16().to_string(),
        };
        Attempt::Answered {
            status: status.as_u16(),
            retry_after,
            message: format!(
                "server returned HTTP status {status_line} ({}): {line}",
                status.as_u16()
            ),
        }
    }
}

impl Transport for HttpTransport {
    async fn attempt(&self, tenant: &str, body: &Bytes) -> Attempt {
        // The deadline covers everything: secret files, connect, send and the error body.
        match tokio::time::timeout(self.timeout, self.attempt_inner(tenant, body)).await {
            Ok(a) => a,
            Err(_) => Attempt::Failed(format!(
                "request to {} timed out after {:?}",
                self.url, self.timeout
            )),
        }
    }
}

/// The current value of `secret` (a file is read again for every attempt, so a rotated secret
/// is used without a restart). A file that cannot be read is an error naming the setting and the
/// file; the attempt then fails like a network error and the batch is retried.
async fn secret_value(secret: &Secret, setting: &str) -> Result<String, String> {
    secret.value().await.map_err(|e| match secret {
        Secret::File(path) => format!("unable to read {setting} {}: {e}", path.display()),
        Secret::Inline(_) => format!("unable to read {setting}: {e}"),
    })
}

fn sensitive(value: String) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(&value)
        .map_err(|_| "the Authorization value is not a valid header value".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// The first line of the response body, reading at most 1024 bytes (as Promtail does).
async fn first_line(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(MAX_ERROR_BODY);
    let line = match memchr::memchr(b'\n', &buf) {
        Some(i) => &buf[..i],
        None => &buf[..],
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own text is only the outer).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = inner.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_header_and_url_are_start_errors() {
        let mut s = ClientSettings::new(Url::parse("http://loki:3100/loki/api/v1/push").unwrap());
        s.name = "c1".into();
        s.headers = vec![("Bad Name".into(), "v".into())];
        let msg = HttpTransport::new(&s).unwrap_err().to_string();
        assert!(msg.contains("c1") && msg.contains("Bad Name"), "{msg}");

        let s = ClientSettings::new(Url::parse("ftp://u:hunter2@loki/x").unwrap());
        let msg = HttpTransport::new(&s).unwrap_err().to_string();
        assert!(
            msg.contains("http or https") && msg.contains("ftp://u:<secret>@loki/x"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    /// A port on 127.0.0.1 where nothing listens (bound, then released).
    async fn closed_port() -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    #[tokio::test]
    async fn credentials_never_appear_in_debug_or_transport_errors() {
        let loki = closed_port().await;
        let proxy = closed_port().await;
        for with_proxy in [false, true] {
            let mut s = ClientSettings::new(
                Url::parse(&format!("http://user:hunter2@{loki}/loki/api/v1/push")).unwrap(),
            );
            s.headers = vec![("X-Api-Key".into(), "hunter3".into())];
            s.auth = Auth::Bearer(Secret::Inline("hunter4".into()));
            if with_proxy {
                s.proxy_url =
                    Some(Url::parse(&format!("http://proxyuser:hunter5@{proxy}")).unwrap());
            }
            let t = HttpTransport::new(&s).unwrap();
            let debug = format!("{t:?} {t:#?}");
            assert!(!debug.contains("hunter"), "{debug}");
            assert!(
                debug.contains("user") && debug.contains("<secret>"),
                "{debug}"
            );

            let attempt = t.attempt("", &Bytes::from_static(b"x")).await;
            let Attempt::Failed(msg) = &attempt else {
                panic!("a closed port must fail: {attempt:?}");
            };
            assert!(!msg.contains("hunter"), "{msg}");
            assert!(msg.contains(&loki.to_string()), "names the target: {msg}");
        }
    }

    #[test]
    fn userinfo_is_taken_out_of_the_url() {
        let s = ClientSettings::new(
            Url::parse("https://12345:glc%2Fxyz@logs.example/loki/api/v1/push").unwrap(),
        );
        let t = HttpTransport::new(&s).unwrap();
        assert_eq!(t.url.as_str(), "https://logs.example/loki/api/v1/push");
        assert_eq!(
            t.userinfo,
            Some(("12345".to_owned(), Some("glc/xyz".to_owned())))
        );
    }

    #[test]
    fn reserved_custom_headers_are_set_aside() {
        let mut s = ClientSettings::new(Url::parse("http://loki/loki/api/v1/push").unwrap());
        s.headers = vec![
            ("content-type".into(), "text/plain".into()),
            ("X-Scope-OrgID".into(), "fallback".into()),
            ("Authorization".into(), "Bearer custom".into()),
            ("X-Foo".into(), "bar".into()),
        ];
        let t = HttpTransport::new(&s).unwrap();
        let names: Vec<&str> = t.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "x-foo"]);
        assert!(t.custom_authorization);
        assert_eq!(t.custom_org_id, Some(HeaderValue::from_static("fallback")));
    }

    #[test]
    fn error_chain_includes_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "error sending request: connection refused");
    }
}
