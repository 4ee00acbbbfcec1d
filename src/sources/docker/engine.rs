//! The Docker engine API, as `docker_sd_configs` and the Docker source use it: list running
//! containers and networks (discovery), inspect a container (does it have a TTY?), and follow
//! a container's log (Promtail's `ContainerLogs` with follow, stdout, stderr, timestamps and
//! since).
//!
//! The API calls go through `bollard` (over the Unix socket, or plain HTTP for `tcp://` and
//! `http://` hosts). The API version is negotiated with the engine once, before the first
//! call, as Docker's Go client does with `WithAPIVersionNegotiation`, and prefixes the log
//! requests (bollard 0.21 sends its own requests without a version prefix: the engine answers
//! them in its current version, which its models read). The log stream is read with hyper on
//! a connection of its own and decoded by [`super::frames`]: bollard's log decoder holds a
//! whole frame or a whole TTY line in memory however long it is, which would break the memory
//! bound; ours does not.
//!
//! Invariants: every error names the engine's host (a password in it masked) and, where there
//! is one, the container; nothing the engine sends can make this module panic; a log stream
//! that ends because the container stopped ends the [`Engine::logs`] stream without an error,
//! after the last complete lines; frames without a timestamp are counted in
//! `promtail_docker_target_parsing_errors_total`. Calls other than the log stream time out
//! after `refresh_interval` (at least 1 s; Prometheus uses it as its HTTP client's timeout); a
//! followed log has no timeout once its headers have arrived.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerSummary, Network};
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::task::AbortOnDropHandle;

use super::frames::{Decoder, LogLine};
use crate::discovery::docker::{DockerFilter, DockerHost, DockerSdSettings};
use crate::metrics::Metrics;

/// The most of an error answer's body kept for its message.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// A failed call to the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine cannot be reached (socket missing, connection refused, ...).
    #[error("cannot connect to the Docker engine at {host}: {message}")]
    Connect {
        /// The engine's host (`unix:///var/run/docker.sock`).
        host: String,
        /// What went wrong.
        message: String,
    },
    /// An API call failed or its answer could not be read.
    #[error("Docker engine at {host}: {operation} failed: {message}")]
    Api {
        /// The engine's host.
        host: String,
        /// What was asked (`listing containers`, `inspecting container 4f2a…`).
        operation: String,
        /// The HTTP status of the engine's answer, when it answered with an error.
        status: Option<u16>,
        /// What went wrong (the engine's message where it gave one).
        message: String,
    },
    /// The log stream of a container could not be opened or broke.
    #[error("Docker engine at {host}: reading the logs of container {container} failed: {message}")]
    Logs {
        /// The engine's host.
        host: String,
        /// The container's ID (or name) as given.
        container: String,
        /// The HTTP status of the engine's answer, when it answered with an error.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
}

impl DockerError {
    /// Whether the engine answered 404: the container (or the API path) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DockerError::Api {
                status: Some(404),
                ..
            } | DockerError::Logs {
                status: Some(404),
                ..
            }
        )
    }
}

/// A client of one Docker engine; cheap to clone (clones share the connection settings and the
/// negotiated API version).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Docker,
    address: DockerHost,
    /// The host for messages (password masked).
    host: String,
    timeout: Duration,
    negotiated: tokio::sync::OnceCell<()>,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// A client for the engine of `settings.host`. Nothing is sent yet; for a Unix socket, the
    /// socket must exist. Frames without a timestamp are counted in `metrics`.
    pub fn connect(
        settings: &DockerSdSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Engine, DockerError> {
        let host = settings.host_for_messages();
        let timeout = settings.refresh_interval.max(Duration::from_secs(1));
        // bollard counts its timeout in whole seconds; round up so that it is never 0.
        let timeout_secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let connected = match &settings.address {
            DockerHost::Unix(path) => Docker::connect_with_unix(
                &path.to_string_lossy(),
                timeout_secs,
                bollard::API_DEFAULT_VERSION,
            ),
            DockerHost::Tcp(addr) => Docker::connect_with_http(
                &format!("tcp://{addr}"),
                timeout_secs,
                bollard::API_DEFAULT_VERSION,
            ),
        };
        let docker = connected.map_err(|e| DockerError::Connect {
            host: host.clone(),
            message: chain(&e),
        })?;
        Ok(Engine {
            inner: Arc::new(Inner {
                docker,
                address: settings.address.clone(),
                host,
                timeout,
                negotiated: tokio::sync::OnceCell::new(),
                metrics,
            }),
        })
    }

    /// The engine's host as configured (password masked), for messages.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The running containers (Docker's `GET /containers/json`), with `filters` applied by the
    /// engine, in the engine's order.
    pub async fn list_containers(
        &self,
        filters: &[DockerFilter],
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        self.ready().await?;
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        for f in filters {
            for v in &f.values {
                let values = by_name.entry(f.name.clone()).or_default();
                if !values.contains(v) {
                    values.push(v.clone());
                }
            }
        }
        let options = ListContainersOptions {
            all: false,
            limit: None,
            size: false,
            filters: (!by_name.is_empty()).then_some(by_name),
        };
        self.inner
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.api_error("listing containers", e))
    }

    /// Every network (Docker's `GET /networks`).
    pub async fn list_networks(&self) -> Result<Vec<Network>, DockerError> {
        self.ready().await?;
        self.inner
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| self.api_error("listing networks", e))
    }

    /// Whether the container runs with a TTY (`Config.Tty` of its inspection): its log stream
    /// is then raw rather than multiplexed.
    pub async fn container_tty(&self, id: &str) -> Result<bool, DockerError> {
        self.ready().await?;
        let inspected = self
            .inner
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.api_error(&format!("inspecting container {id}"), e))?;
        Ok(inspected.config.and_then(|c| c.tty).unwrap_or(false))
    }

    /// Follows the log of container `id` from `since_secs` (Unix seconds; 0 for its whole
    /// history; Docker sends the entries whose time is at or after it) until the container
    /// stops. `tty` selects the raw stream ([`Engine::container_tty`]); `max_line` is the
    /// line limit of [`Decoder::new`]. Nothing is sent before the stream is first polled; an
    /// error ends the stream.
    pub fn logs(
        &self,
        id: &str,
        since_secs: i64,
        tty: bool,
        max_line: usize,
    ) -> impl Stream<Item = Result<LogLine, DockerError>> + Send + 'static {
        let state = LogState::Start {
            engine: self.clone(),
            id: id.to_owned(),
            since: since_secs.max(0),
            tty,
            max_line,
        };
        futures_util::stream::unfold(state, LogState::next)
    }

    /// Negotiates the API version once (retried at the next call after a failure).
    async fn ready(&self) -> Result<(), DockerError> {
        self.inner
            .negotiated
            .get_or_try_init(|| async {
                self.inner
                    .docker
                    .clone()
                    .negotiate_version()
                    .await
                    .map(drop)
                    .map_err(|e| self.api_error("negotiating the API version", e))
            })
            .await
            .copied()
    }

    fn api_error(&self, operation: &str, e: bollard::errors::Error) -> DockerError {
        let (status, message) = match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => (Some(status_code), message),
            other => (None, chain(&other)),
        };
        DockerError::Api {
            host: self.inner.host.clone(),
            operation: operation.to_owned(),
            status,
            message,
        }
    }

    fn logs_error(&self, container: &str, status: Option<u16>, message: String) -> DockerError {
        DockerError::Logs {
            host: self.inner.host.clone(),
            container: container.to_owned(),
            status,
            message,
        }
    }

    /// Sends the log request and returns the body of a successful answer, with the task that
    /// drives the connection (aborted when dropped).
    async fn open_logs(
        &self,
        id: &str,
        since: i64,
    ) -> Result<(Incoming, AbortOnDropHandle<()>), DockerError> {
        self.ready().await.map_err(|e| match e {
            DockerError::Api {
                operation,
                status,
                message,
                ..
            } => self.logs_error(id, status, format!("{operation} failed: {message}")),
            other => other,
        })?;
        let version = self.inner.docker.client_version();
        let path = format!(
            "/v{}.{}/containers/{}/logs?stdout=1&stderr=1&follow=1&timestamps=1&since={since}",
            version.major_version,
            version.minor_version,
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC),
        );
        let opened = tokio::time::timeout(self.inner.timeout, async {
            match &self.inner.address {
                DockerHost::Unix(socket) => {
                    let io = tokio::net::UnixStream::connect(socket)
                        .await
                        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
                    send_get(io, "docker", &path).await
                }
                DockerHost::Tcp(addr) => {
                    let io = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
                    send_get(io, addr, &path).await
                }
            }
        })
        .await;
        let (response, conn) = match opened {
            Ok(Ok(r)) => r,
            Ok(Err(message)) => return Err(self.logs_error(id, None, message)),
            Err(_) => {
                return Err(self.logs_error(
                    id,
                    None,
                    format!("no answer within {:?}", self.inner.timeout),
                ));
            }
        };
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let text = tokio::time::timeout(self.inner.timeout, read_error_body(&mut body))
                .await
                .unwrap_or_default();
            return Err(self.logs_error(id, Some(status.as_u16()), error_message(status, &text)));
        }
        Ok((body, conn))
    }
}

/// An error with its causes (`client error (Connect): Permission denied (os error 13)`): the
/// outer messages of hyper and bollard alone do not say what went wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Sends `GET path` on a new HTTP/1.1 connection over `io`.
async fn send_get<T>(
    io: T,
    host: &str,
    path: &str,
) -> Result<(hyper::Response<Incoming>, AbortOnDropHandle<()>), String>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| chain(&e))?;
    let conn = AbortOnDropHandle::new(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "Docker log connection ended with an error.");
        }
    }));
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("ferrotail/", env!("CARGO_PKG_VERSION")),
        )
        .body(String::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| chain(&e))?;
    Ok((response, conn))
}

/// The next data of `body`: `None` at its end.
async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
                // Trailers carry nothing for us.
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The first [`ERROR_BODY_MAX`] bytes of an error answer.
async fn read_error_body(body: &mut Incoming) -> String {
    let mut text = Vec::new();
    while text.len() < ERROR_BODY_MAX {
        match next_data(body).await {
            Some(Ok(data)) => {
                let room = ERROR_BODY_MAX - text.len();
                text.extend_from_slice(&data[..room.min(data.len())]);
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The engine's message (`{"message": "..."}`), else the body, else the status.
fn error_message(status: hyper::StatusCode, body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_str::<Message>(body) {
        Ok(m) => format!("{status}: {}", m.message),
        Err(_) if body.trim().is_empty() => status.to_string(),
        Err(_) => format!("{status}: {}", body.trim()),
    }
}

/// The state of an [`Engine::logs`] stream.
enum LogState {
    Start {
        engine: Engine,
        id: String,
        since: i64,
        tty: bool,
        max_line: usize,
    },
    Reading(Box<Reading>),
    /// The stream is over: the lines decoded before its end, then the error that ended it.
    Ending {
        lines: VecDeque<LogLine>,
        error: Option<DockerError>,
    },
    Done,
}

struct Reading {
    engine: Engine,
    id: String,
    body: Incoming,
    decoder: Decoder,
    pending: VecDeque<LogLine>,
    /// Drives the connection; dropping the stream closes it.
    _conn: AbortOnDropHandle<()>,
}

type Step = Option<(Result<LogLine, DockerError>, LogState)>;

impl LogState {
    async fn next(mut self) -> Step {
        loop {
            self = match self {
                LogState::Done => return None,
                LogState::Ending { mut lines, error } => {
                    if let Some(line) = lines.pop_front() {
                        return Some((Ok(line), LogState::Ending { lines, error }));
                    }
                    return error.map(|e| (Err(e), LogState::Done));
                }
                LogState::Start {
                    engine,
                    id,
                    since,
                    tty,
                    max_line,
                } => match engine.open_logs(&id, since).await {
                    Ok((body, conn)) => LogState::Reading(Box::new(Reading {
                        engine,
                        id,
                        body,
                        decoder: Decoder::new(tty, max_line),
                        pending: VecDeque::new(),
                        _conn: conn,
                    })),
                    Err(e) => LogState::Ending {
                        lines: VecDeque::new(),
                        error: Some(e),
                    },
                },
                LogState::Reading(mut r) => {
                    if let Some(line) = r.pending.pop_front() {
                        return Some((Ok(line), LogState::Reading(r)));
                    }
                    r.read_more().await
                }
            };
        }
    }
}

impl Reading {
    /// Reads the next piece of the body: the state that follows.
    async fn read_more(mut self: Box<Self>) -> LogState {
        let mut lines = Vec::new();
        let outcome = match next_data(&mut self.body).await {
            Some(Ok(data)) => self
                .decoder
                .feed(data, &mut lines)
                .map(|()| true)
                .map_err(|e| e.to_string()),
            // Cut off (the engine went away): the source reads again from its position, so
            // a line still being joined is not emitted half.
            Some(Err(e)) => Err(format!("the log stream broke: {}", chain(&e))),
            // The container stopped.
            None => {
                self.decoder.finish(&mut lines);
                Ok(false)
            }
        };
        self.count_parse_errors();
        self.pending.extend(lines);
        match outcome {
            Ok(true) => LogState::Reading(self),
            Ok(false) => LogState::Ending {
                lines: std::mem::take(&mut self.pending),
                error: None,
            },
            Err(message) => LogState::Ending {
                lines: std::mem::take(&mut self.pending),
                error: Some(self.engine.logs_error(&self.id, None, message)),
            },
        }
    }

    fn count_parse_errors(&mut self) {
        let n = self.decoder.take_parse_errors();
        if n > 0 {
            self.engine
                .inner
                .metrics
                .docker_target_parsing_errors
                .inc_by(n);
            tracing::debug!(host = %self.engine.inner.host, container = %self.id, frames = n,
                "Docker log frames without a timestamp were skipped.");
        }
    }
}
