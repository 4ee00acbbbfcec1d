//! The main HTTP server: `/metrics`, `/ready`, `/targets`, `/service-discovery`, `/config` and `/` (spec §9.1), all
//! under `server.http_path_prefix`, over plain HTTP or TLS (`server.http_tls_config`, see
//! [`tls`]).
//!
//! `/ready` answers 200 `Ready` when `health_check_target` is false or at least one file is being
//! tailed, else 500 with Promtail's message (Kubernetes readiness probes and the Helm chart rely
//! on both). `/config` shows the effective config with every secret masked. The pages are plain
//! text: Promtail's HTML is not an API, but the paths are kept because users bookmark them.
//! What each endpoint exposes is listed in docs/security.md.
//!
//! Connections: HTTP/1.1 with keep-alive; a client gets `read_header_timeout` to finish the TLS
//! handshake and then to send each request's headers (Go's `ReadHeaderTimeout`, which stops a
//! slow client from holding a connection open forever). Plain HTTP sent to the TLS port gets
//! Go's answer (400, "Client sent an HTTP request to an HTTPS server."). On shutdown the listener
//! closes at once, requests in progress get [`SHUTDOWN_GRACE`] to finish, idle connections are
//! closed.

mod pages;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::discovery::targets::JobReport;
use crate::metrics::Metrics;
use crate::tail::FileStatus;
pub use tls::{ClientAuth, MinVersion, ServerTlsSettings, TlsError};

/// What the server reports about the running shipper.
pub trait Status: Send + Sync {
    /// Whether at least one target is ready (for file targets: a file is being tailed).
    fn ready(&self) -> bool;
    /// The files being tailed, with their offsets.
    fn files(&self) -> Vec<FileStatus>;
    /// What discovery made of each job's targets (for `/targets` and `/service-discovery`).
    fn jobs(&self) -> Arc<Vec<JobReport>> {
        Arc::default()
    }
}

/// Settings of the main HTTP server (from Promtail's `server:` block).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Address to listen on (`http_listen_address:http_listen_port`).
    pub listen: SocketAddr,
    /// Prefix of every route (`http_path_prefix`), without a trailing slash.
    pub path_prefix: String,
    /// `/ready` requires a ready target (`health_check_target`). Default: true.
    pub health_check_target: bool,
    /// `/metrics` is served (`register_instrumentation` or `profiling_enabled`). Default: true.
    pub serve_metrics: bool,
    /// TLS (`http_tls_config`); `None` serves plain HTTP. Default: none.
    pub tls: Option<ServerTlsSettings>,
    /// The longest a client may take to complete the TLS handshake, and to send a request's
    /// headers (`http_server_read_header_timeout`, or `http_server_read_timeout` when that is
    /// 0). `None`: no limit. Default: 30s.
    pub read_header_timeout: Option<Duration>,
}

/// The HTTP server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address cannot be bound (in use, not local, no permission).
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS setting or file is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How long requests in progress may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    status: Arc<dyn Status>,
    config_yaml: Arc<str>,
    health_check_target: bool,
    targets_path: String,
}

/// A bound, not yet serving, HTTP server.
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    read_header_timeout: Option<Duration>,
}

const NOT_READY: &str = "Not ready: Unable to find any logs to tail. Please verify permissions, volumes, scrape_config, etc.\n";

/// Go's answer to plain HTTP on a TLS port.
const HTTP_TO_HTTPS: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

impl Server {
    /// Loads the TLS certificate (if any), then binds the listener (a port in use is an error,
    /// as in Promtail).
    pub async fn bind(
        settings: &ServerSettings,
        metrics: Arc<Metrics>,
        status: Arc<dyn Status>,
        config_yaml: String,
    ) -> Result<Server, ServerError> {
        let tls = match &settings.tls {
            Some(t) => Some(TlsAcceptor::from(tls::server_config(t)?)),
            None => None,
        };
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let prefix = settings.path_prefix.trim_end_matches('/').to_string();
        let state = AppState {
            metrics,
            status,
            config_yaml: config_yaml.into(),
            health_check_target: settings.health_check_target,
            targets_path: format!("{prefix}/targets"),
        };
        let path = |p: &str| format!("{prefix}{p}");
        let mut router = Router::new()
            .route(&path("/ready"), any(ready))
            .route(&path("/targets"), any(targets))
            .route(&path("/service-discovery"), any(service_discovery))
            .route(&path("/config"), any(config))
            .route(&path("/"), any(root));
        if !prefix.is_empty() {
            router = router.route(&prefix, any(root));
        }
        if settings.serve_metrics {
            router = router.route(&path("/metrics"), any(metrics_handler));
        }
        let router = router.with_state(state);
        Ok(Server {
            listener,
            router,
            tls,
            read_header_timeout: settings.read_header_timeout,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` is cancelled, then lets requests in progress finish (at most
    /// [`SHUTDOWN_GRACE`]).
    pub async fn run(self, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        let conn = Arc::new(ConnectionSettings {
            router: self.router,
            tls: self.tls,
            read_header_timeout: self.read_header_timeout,
        });
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(Arc::clone(&conn).serve(stream, graceful.watcher()));
                }
                // The client gave up before we took the connection: nothing to do.
                Err(e) if is_connection_error(&e) => {}
                // Out of file descriptors or similar: wait instead of spinning.
                Err(e) => {
                    tracing::error!(error = %e, "HTTP server cannot accept a connection.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        drop(self.listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("HTTP requests still in progress at shutdown were cut off.");
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// What every connection needs.
struct ConnectionSettings {
    router: Router,
    tls: Option<TlsAcceptor>,
    read_header_timeout: Option<Duration>,
}

impl ConnectionSettings {
    /// Serves one connection to its end. Failures are the client's (bad handshake, reset,
    /// timeout) and only logged at debug level.
    async fn serve(self: Arc<Self>, stream: TcpStream, watcher: Watcher) {
        let Some(acceptor) = &self.tls else {
            self.serve_http(stream, watcher).await;
            return;
        };
        let handshake = async {
            if !starts_like_tls(&stream).await? {
                refuse_plain_http(stream).await;
                return Ok(None);
            }
            acceptor.accept(stream).await.map(Some)
        };
        let handshake = match self.read_header_timeout {
            Some(limit) => match tokio::time::timeout(limit, handshake).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!("TLS handshake timed out.");
                    return;
                }
            },
            None => handshake.await,
        };
        match handshake {
            Ok(Some(tls_stream)) => self.serve_http(tls_stream, watcher).await,
            Ok(None) => tracing::debug!("Plain HTTP request on the TLS port refused."),
            Err(e) => tracing::debug!(error = %e, "TLS handshake failed."),
        }
    }

    async fn serve_http<I>(&self, io: I, watcher: Watcher)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.read_header_timeout);
        let service = TowerToHyperService::new(self.router.clone());
        let conn = http.serve_connection(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, "HTTP connection ended with an error.");
        }
    }
}

/// Tells a plain HTTP client why it gets nothing, as Go's server does (best effort). The
/// request is read and thrown away for a moment after the answer: closing a socket with unread
/// input resets the connection, and the client would then lose the answer.
async fn refuse_plain_http(mut stream: TcpStream) {
    if stream.write_all(HTTP_TO_HTTPS).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Whether the first byte a client sent opens a TLS handshake (false for plain HTTP, whose
/// first byte is a method's letter). Waits for that byte.
async fn starts_like_tls(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    Ok(n == 1 && first[0] == TLS_HANDSHAKE)
}

async fn ready(State(s): State<AppState>) -> Response {
    if !s.health_check_target || s.status.ready() {
        (StatusCode::OK, "Ready").into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            NOT_READY,
        )
            .into_response()
    }
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn targets(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (jobs, files) = (s.status.jobs(), s.status.files());
    if pages::wants_json(accept(&headers)) {
        json(pages::targets_json(&jobs, &files))
    } else {
        html(pages::targets_html(&jobs, &files))
    }
}

async fn service_discovery(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let jobs = s.status.jobs();
    if pages::wants_json(accept(&headers)) {
        json(pages::discovery_json(&jobs))
    } else {
        html(pages::discovery_html(&jobs))
    }
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn config(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s.config_yaml.to_string(),
    )
        .into_response()
}

async fn root(State(s): State<AppState>) -> Response {
    Redirect::to(&s.targets_path).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fake(AtomicBool);
    impl Status for Fake {
        fn ready(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
        fn files(&self) -> Vec<FileStatus> {
            vec![FileStatus {
                job: "j".into(),
                path: "/var/log/a.log".into(),
                open: true,
                read_offset: 20,
                committed_offset: 10,
                size: 20,
            }]
        }
        fn jobs(&self) -> Arc<Vec<JobReport>> {
            Arc::new(vec![JobReport {
                job: "j".into(),
                ..JobReport::default()
            }])
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    async fn start(prefix: &str, health: bool, fake: Arc<Fake>) -> (SocketAddr, CancellationToken) {
        let settings = ServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            path_prefix: prefix.into(),
            health_check_target: health,
            serve_metrics: true,
            tls: None,
            read_header_timeout: Some(Duration::from_secs(30)),
        };
        let server = Server::bind(
            &settings,
            Arc::new(Metrics::new()),
            fake,
            "a: <secret>\n".into(),
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(server.run(stop.clone()));
        (addr, stop)
    }

    #[tokio::test]
    async fn ready_follows_targets_and_health_check_setting() {
        let fake = Arc::new(Fake(AtomicBool::new(false)));
        let (addr, stop) = start("", true, Arc::clone(&fake)).await;
        let r = get(addr, "/ready").await;
        assert!(r.starts_with("HTTP/1.1 500"), "{r}");
        assert!(r.contains("Unable to find any logs to tail"), "{r}");
        fake.0.store(true, Ordering::SeqCst);
        let r = get(addr, "/ready").await;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("Ready"), "{r}");
        stop.cancel();

        let (addr, stop) = start("", false, Arc::new(Fake(AtomicBool::new(false)))).await;
        assert!(get(addr, "/ready").await.starts_with("HTTP/1.1 200"));
        stop.cancel();
    }

    #[tokio::test]
    async fn routes_live_under_the_path_prefix() {
        let (addr, stop) = start("/promtail", true, Arc::new(Fake(AtomicBool::new(true)))).await;
        let m = get(addr, "/promtail/metrics").await;
        assert!(m.contains("promtail_build_info"), "{m}");
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 404"));
        let root = get(addr, "/promtail/").await;
        assert!(root.contains("location: /promtail/targets"), "{root}");
        assert!(
            get(addr, "/promtail/targets")
                .await
                .contains("/var/log/a.log")
        );
        assert!(get(addr, "/promtail/config").await.contains("<secret>"));
        let sd = get(addr, "/promtail/service-discovery").await;
        assert!(
            sd.starts_with("HTTP/1.1 200") && sd.contains("text/html"),
            "{sd}"
        );
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /promtail/targets HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("application/json"), "{out}");
        assert!(out.contains("\"committed_offset\": 10"), "{out}");
        stop.cancel();
    }
}
