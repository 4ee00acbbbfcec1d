//! The main HTTP server: `/metrics`, `/ready`, `/targets`, `/config` and `/` (spec §9.1), all
//! under `server.http_path_prefix`.
//!
//! `/ready` answers 200 `Ready` when `health_check_target` is false or at least one file is being
//! tailed, else 500 with Promtail's message (Kubernetes readiness probes and the Helm chart rely
//! on both). `/config` shows the effective config with every secret masked. The pages are plain
//! text: Promtail's HTML is not an API, but the paths are kept because users bookmark them.
//! What each endpoint exposes is listed in docs/operations.md.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What the server reports about the running shipper.
pub trait Status: Send + Sync {
    /// Whether at least one target is ready (for file targets: a file is being tailed).
    fn ready(&self) -> bool;
    /// A plain-text description of the active targets (one line per file).
    fn targets(&self) -> String;
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
}

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
}

const NOT_READY: &str = "Not ready: Unable to find any logs to tail. Please verify permissions, volumes, scrape_config, etc.\n";

impl Server {
    /// Binds the listener (a port in use is an error, as in Promtail).
    pub async fn bind(
        settings: &ServerSettings,
        metrics: Arc<Metrics>,
        status: Arc<dyn Status>,
        config_yaml: String,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(settings.listen).await?;
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
            .route(&path("/config"), any(config))
            .route(&path("/"), any(root));
        if !prefix.is_empty() {
            router = router.route(&prefix, any(root));
        }
        if settings.serve_metrics {
            router = router.route(&path("/metrics"), any(metrics_handler));
        }
        let router = router.with_state(state);
        Ok(Server { listener, router })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped with an error.");
        }
    }
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

async fn targets(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s.status.targets(),
    )
        .into_response()
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
        fn targets(&self) -> String {
            "/var/log/a.log 10/20\n".into()
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
        stop.cancel();
    }
}
