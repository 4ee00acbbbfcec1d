//! The Heroku drain source (`heroku_drain`, spec §4.11): an HTTP server of its own that takes
//! Heroku's log drain requests, `POST <http_path_prefix>/heroku/api/v1/drain`, as Promtail's
//! Heroku target does.
//!
//! Settings: `server` (the HTTP keys of a `server` block, see [`server_settings`]; an unset
//! port is 0, a free port, as in Promtail), `labels`, `use_incoming_timestamp`; unknown keys are
//! refused. The body is logplex's framing of RFC 5424 messages ([`parse`]). Each message
//! becomes one entry:
//! - line: the message's MSG part as it is;
//! - labels: `__heroku_drain_host`, `__heroku_drain_app`, `__heroku_drain_proc`,
//!   `__heroku_drain_log_id`, `__heroku_drain_param_<name>` for each query parameter (values
//!   of a repeated name comma-joined) and `__tenant_id__` from `X-Scope-OrgID`, through the
//!   job's relabel rules, then without `__` labels, on top of the job's `labels` (which, as in
//!   Promtail, the rules do not see); the tenant is set again afterwards, as Promtail does;
//! - timestamp: the message's with `use_incoming_timestamp`, else the time it was read.
//!
//! Answers: 204 once the entries are handed to the pipeline (Promtail's answer on receipt);
//! 400 with the error when the body cannot be read to its end (the messages before the error
//! are still handed on, as Promtail does); 413 for a body above [`MAX_BODY`]; 429 with
//! `Retry-After` when the byte budget stays full for [`BUDGET_WAIT`] (logplex retries).
//!
//! Invariants: every request takes budget permits for its body before its entries are made,
//! held until they are finished; a body is read to at most [`MAX_BODY`] bytes; at shutdown the
//! listener closes, requests in progress get [`crate::server::SHUTDOWN_GRACE`], then the
//! source returns and no handler keeps the job's channel.
//!
//! Deliberate difference: a message whose labels a relabel rule drops is dropped; Promtail
//! sends it with the job's `labels` only.

pub mod parse;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::IntCounter;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::parse::{DrainMessage, parse_body};
use super::{Budget, Source, SourceContext, SourceEvent};
use crate::ack;
use crate::config::ServerConfig;
use crate::discovery::relabel::{Rule, process};
use crate::entry::{Ack, Entry, LabelSet, Stamp, TENANT_LABEL, Timestamp};
use crate::metrics::Metrics;
use crate::units::de::{bool11, text_map};

/// Largest request body taken (logplex sends far smaller batches).
pub const MAX_BODY: usize = 16 << 20;

/// How long a request waits for the byte budget before it is answered 429.
pub const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// The route, under `http_path_prefix`.
pub const DRAIN_PATH: &str = "/heroku/api/v1/drain";

/// The HTTP settings taken from the `server` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HerokuServer {
    /// `http_listen_address` (empty: every interface) and `http_listen_port` (unset: 0).
    pub host: String,
    /// The port.
    pub port: u16,
    /// `http_path_prefix`, without a trailing slash.
    pub path_prefix: String,
    /// `http_server_read_header_timeout`, or `http_server_read_timeout` when that is 0
    /// (dskit's defaults when 0: 30 s).
    pub read_header_timeout: Duration,
    /// `http_server_read_timeout` (0: 30 s): the longest a request body may take.
    pub read_timeout: Duration,
}

/// The settings of a `heroku_drain` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HerokuSettings {
    /// `server`.
    pub server: HerokuServer,
    /// `labels`: on every entry, under the relabeled ones.
    pub labels: BTreeMap<String, String>,
    /// `use_incoming_timestamp`, default false.
    pub use_incoming_timestamp: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawHeroku {
    server: Option<serde_yaml::Value>,
    #[serde(deserialize_with = "text_map")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "bool11")]
    use_incoming_timestamp: bool,
}

/// Parses and checks a raw `heroku_drain` block; the error names the problem.
pub fn settings(raw: &serde_yaml::Mapping) -> Result<HerokuSettings, String> {
    let raw: RawHeroku = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| e.to_string())?;
    for name in raw.labels.keys() {
        if !crate::units::is_legacy_label_name(name) {
            return Err(format!("labels: {name:?} is not a valid label name"));
        }
    }
    let server = match &raw.server {
        None | Some(serde_yaml::Value::Null) => server_settings(&serde_yaml::Mapping::new()),
        Some(serde_yaml::Value::Mapping(m)) => server_settings(m),
        Some(_) => Err("server: expected a mapping".to_string()),
    }
    .map_err(|e| format!("server.{e}").replace("server.server:", "server:"))?;
    Ok(HerokuSettings {
        server,
        labels: raw.labels,
        use_incoming_timestamp: raw.use_incoming_timestamp,
    })
}

/// Checks a raw `heroku_drain` block, as validation does at load.
pub fn check(raw: &serde_yaml::Mapping) -> Result<(), String> {
    settings(raw).map(|_| ())
}

/// The HTTP keys of a `server` block as Promtail merges it over dskit's defaults (a zero or
/// unset value keeps the default, except the ports, where unset is 0). Keys of the gRPC
/// server and of logging are accepted and have no effect; a non-zero `grpc_listen_port` is
/// refused (ferrotail opens no gRPC port here, and Promtail serves nothing on it), as are the
/// HTTP features not supported yet (TLS, a connection limit, the PROXY protocol).
pub fn server_settings(raw: &serde_yaml::Mapping) -> Result<HerokuServer, String> {
    for key in raw.keys() {
        let name = key.as_str().unwrap_or_default();
        if !ServerConfig::KNOWN_KEYS.contains(&name) {
            return Err(format!(
                "{}: unknown key",
                serde_yaml::to_string(key).unwrap_or_default().trim_end()
            ));
        }
    }
    let s: ServerConfig = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| format!("server: {e}"))?;
    let set = |k: &str| raw.get(k).is_some_and(|v| !v.is_null());
    if set("grpc_listen_port") && s.grpc_listen_port != 0 {
        return Err(format!(
            "grpc_listen_port: {}: heroku_drain serves HTTP only in ferrotail (Promtail's gRPC port here serves nothing); remove it or set 0",
            s.grpc_listen_port
        ));
    }
    if s.http_tls_config.is_set() {
        return Err(
            "http_tls_config is not supported yet for heroku_drain (terminate TLS in front of it)"
                .into(),
        );
    }
    if !matches!(s.http_listen_network.as_str(), "" | "tcp" | "tcp4" | "tcp6") {
        return Err(format!(
            "http_listen_network: {:?} is not supported (tcp)",
            s.http_listen_network
        ));
    }
    if s.http_listen_conn_limit > 0 {
        return Err("http_listen_conn_limit is not supported yet for heroku_drain".into());
    }
    if s.proxy_protocol_enabled {
        return Err("proxy_protocol_enabled is not supported yet for heroku_drain".into());
    }
    let or_30s = |d: Duration| {
        if d.is_zero() {
            Duration::from_secs(30)
        } else {
            d
        }
    };
    let read_timeout = or_30s(s.http_server_read_timeout.as_std());
    let header = s.http_server_read_header_timeout.as_std();
    let host = if s.http_listen_address.is_empty() {
        "0.0.0.0".to_string()
    } else {
        s.http_listen_address.clone()
    };
    Ok(HerokuServer {
        host,
        port: if set("http_listen_port") {
            s.http_listen_port
        } else {
            0
        },
        path_prefix: s.http_path_prefix.trim_end_matches('/').to_string(),
        read_header_timeout: if header.is_zero() {
            read_timeout
        } else {
            header
        },
        read_timeout,
    })
}

/// The Heroku counters (Promtail's two).
#[derive(Clone)]
struct HerokuMetrics {
    entries: IntCounter,
    errors: IntCounter,
}

/// A bound Heroku drain server of one job.
pub struct HerokuSource {
    job: String,
    settings: HerokuSettings,
    rules: Arc<Vec<Rule>>,
    listener: TcpListener,
    local: SocketAddr,
    metrics: HerokuMetrics,
}

impl HerokuSource {
    /// Parses `raw` and binds its listener (an address in use fails, naming it).
    pub async fn bind(
        job: &str,
        raw: &serde_yaml::Mapping,
        rules: Vec<Rule>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<HerokuSource> {
        let settings = settings(raw).map_err(anyhow::Error::msg)?;
        let (host, port) = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind((host, port))
            .await
            .map_err(|e| anyhow::anyhow!("listening for Heroku drains on {host}:{port}: {e}"))?;
        let local = listener.local_addr()?;
        tracing::info!(job = %job, address = %local, "Listening for Heroku drain requests.");
        Ok(HerokuSource {
            job: job.to_string(),
            settings,
            rules: Arc::new(rules),
            listener,
            local,
            metrics: HerokuMetrics {
                entries: metrics.shared_counter(
                    "promtail_heroku_drain_target_entries_total",
                    "Number of successful entries received by the Heroku target",
                ),
                errors: metrics.shared_counter(
                    "promtail_heroku_drain_target_parsing_errors_total",
                    "Number of parsing errors while receiving Heroku messages",
                ),
            },
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn run_source(self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "Heroku drain") else {
            return;
        };
        let shared = Arc::new(Handler {
            settings: self.settings.clone(),
            rules: Arc::clone(&self.rules),
            output: Mutex::new(Some(output)),
            budget: ctx.budget.clone(),
            metrics: self.metrics.clone(),
        });
        let path = format!("{}{DRAIN_PATH}", self.settings.server.path_prefix);
        let router = Router::new()
            .route(&path, post(drain))
            .with_state(Arc::clone(&shared));
        let graceful = GracefulShutdown::new();
        let mut conns = JoinSet::new();
        let header_timeout = self.settings.server.read_header_timeout;
        loop {
            let accepted = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                Some(_) = conns.join_next() => continue,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(job = %self.job, error = %e, "Heroku drain server cannot accept a connection.");
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    }
                }
            };
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = http.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
            let watched = graceful.watch(conn);
            conns.spawn(async move {
                if let Err(e) = watched.await {
                    tracing::debug!(error = %e, "Heroku drain connection ended with an error.");
                }
            });
        }
        drop(self.listener);
        drop(router);
        if tokio::time::timeout(crate::server::SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(job = %self.job, "Heroku drain requests still in progress at shutdown were cut off.");
        }
        conns.abort_all();
        while conns.join_next().await.is_some() {}
        // No handler may keep the job's channel open past the source's end.
        shared
            .output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl Source for HerokuSource {
    fn describe(&self) -> String {
        format!("heroku_drain job={} http={}", self.job, self.local)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_source(ctx))
    }
}

/// What the drain handler needs.
struct Handler {
    settings: HerokuSettings,
    rules: Arc<Vec<Rule>>,
    output: Mutex<Option<mpsc::Sender<SourceEvent>>>,
    budget: Budget,
    metrics: HerokuMetrics,
}

fn answer(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn drain(
    State(h): State<Arc<Handler>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes\n"),
        );
    }
    let read = tokio::time::timeout(
        h.settings.server.read_timeout,
        axum::body::to_bytes(body, MAX_BODY),
    );
    let body = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}\n"),
            );
        }
        Err(_) => {
            return answer(
                StatusCode::REQUEST_TIMEOUT,
                "reading the request body timed out\n".into(),
            );
        }
    };
    let Ok(permit) = tokio::time::timeout(BUDGET_WAIT, h.budget.acquire(body.len())).await else {
        let mut r = answer(
            StatusCode::TOO_MANY_REQUESTS,
            "too many entries in flight; retry later\n".into(),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    };
    let (messages, error) = parse_body(&body);
    let request = RequestLabels {
        params: query_params(uri.query().unwrap_or("")),
        tenant: headers
            .get("x-scope-orgid")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|t| !t.is_empty()),
    };
    let (receipt, _delivered) = ack::receipt(permit);
    let n = messages.len() as u64;
    let entries: Vec<Entry> = messages
        .into_iter()
        .filter_map(|m| entry(&h.settings, &h.rules, &request, m, receipt.clone()))
        .collect();
    drop(receipt);
    h.metrics.entries.inc_by(n);
    if !entries.is_empty() {
        let output = h
            .output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let sent = match output {
            Some(tx) => tx.send(SourceEvent::Entries(entries)).await.is_ok(),
            None => false,
        };
        if !sent {
            return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
        }
    }
    match error {
        Some(e) => {
            h.metrics.errors.inc();
            tracing::warn!(error = %e, "Failed to read an incoming Heroku drain request.");
            answer(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// What a request gives every one of its entries.
pub struct RequestLabels {
    /// The query parameters, values of a repeated name comma-joined.
    pub params: BTreeMap<String, String>,
    /// `X-Scope-OrgID`, when not empty.
    pub tenant: Option<String>,
}

/// The entry of one message (see the module doc); `None` when a relabel rule drops it.
pub fn entry(
    settings: &HerokuSettings,
    rules: &[Rule],
    request: &RequestLabels,
    m: DrainMessage,
    ack: Ack,
) -> Option<Entry> {
    let mut labels = BTreeMap::from([
        ("__heroku_drain_host".to_string(), m.hostname),
        ("__heroku_drain_app".to_string(), m.application),
        ("__heroku_drain_proc".to_string(), m.process),
        ("__heroku_drain_log_id".to_string(), m.id),
    ]);
    for (k, v) in &request.params {
        labels.insert(format!("__heroku_drain_param_{k}"), v.clone());
    }
    if let Some(t) = &request.tenant {
        labels.insert(TENANT_LABEL.to_string(), t.clone());
    }
    if !process(rules, &mut labels) {
        return None;
    }
    let mut out = settings.labels.clone();
    out.extend(labels.into_iter().filter(|(k, _)| !k.starts_with("__")));
    if let Some(t) = &request.tenant {
        out.insert(TENANT_LABEL.to_string(), t.clone());
    }
    let labels = LabelSet::from_pairs(out);
    if settings.use_incoming_timestamp {
        let mut e = Entry::new(labels, Timestamp(m.timestamp_ns), m.message, ack);
        e.stamp = Stamp::Given;
        Some(e)
    } else {
        Some(Entry::new(labels, Timestamp::now(), m.message, ack))
    }
}

/// Go's `url.ParseQuery` as `URL.Query` uses it: `&`-separated `name=value` pairs, `+` and
/// `%XX` decoded; a pair with a `;` or a bad escape is skipped. Values of a repeated name are
/// comma-joined in order.
pub fn query_params(query: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (unescape(k), unescape(v)) else {
            continue;
        };
        out.entry(k).or_default().push(v);
    }
    out.into_iter().map(|(k, v)| (k, v.join(","))).collect()
}

/// Decodes `+` and `%XX`; `None` for a bad escape.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let hi = b.get(i + 1).copied().and_then(hex)?;
                let lo = b.get(i + 2).copied().and_then(hex)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// For the fuzz target: reads a body and makes its entries as the handler does.
#[doc(hidden)]
pub fn entries_of_body(body: &[u8], query: &str) -> usize {
    let (messages, _) = parse_body(&Bytes::copy_from_slice(body));
    let settings = HerokuSettings {
        server: HerokuServer {
            host: String::new(),
            port: 0,
            path_prefix: String::new(),
            read_header_timeout: Duration::ZERO,
            read_timeout: Duration::ZERO,
        },
        labels: BTreeMap::new(),
        use_incoming_timestamp: true,
    };
    let request = RequestLabels {
        params: query_params(query),
        tenant: None,
    };
    messages
        .into_iter()
        .filter_map(|m| entry(&settings, &[], &request, m, Ack::none()))
        .count()
}

#[cfg(test)]
mod tests;
