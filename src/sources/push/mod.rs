//! The Loki push API source (`loki_push_api`, spec §4.8): an HTTP server of its own per job
//! taking `POST /loki/api/v1/push` (snappy protobuf or JSON, optionally gzip/deflate, as Loki
//! 3.4.6 takes them, see [`decode`]) and Promtail's `POST /promtail/api/v1/raw`
//! (newline-delimited text), plus `GET /ready`, all under `server.http_path_prefix`.
//!
//! Each pushed stream gets the job's `labels` over its own, then the job's relabel rules (a drop
//! drops that stream only: Promtail's bug of answering 204 and skipping the rest of the request
//! is not copied, spec §12 #9), then loses its `__` labels. Raw lines get exactly the job's
//! `labels`. Timestamps are the time of receipt (made distinct per stream by the stream clock)
//! unless `use_incoming_timestamp`.
//!
//! Answers: 204 once the entries are handed to the job's pipeline (Promtail's answer), or with
//! `ack_after_delivery` once every client has accepted them (or Loki rejected them for good,
//! counted there); 400 with the reason for a body that cannot be read (nothing of it is kept);
//! 429 with `Retry-After` when the byte budget has no room for the request now; 413 when it
//! never could; 503 while shutting down.
//!
//! Invariants:
//! - memory: a request's body and decompressed data take byte-budget permits as they are read
//!   ([`Budget::try_acquire`]: the pusher is told to retry rather than waited on), and what its
//!   entries keep alive holds them until every entry is finished;
//! - every entry carries its request's receipt ack ([`Receipts::issue`]), so the answer with
//!   `ack_after_delivery` means what every client said;
//! - a push whose entries are still in flight when the shutdown deadline abandons them gets 503
//!   and is sent again (at-least-once): the topology abandons every receipt before the clients
//!   drop what they hold, so a dropped entry never reads as delivered. Pushes delivered by the
//!   shutdown flush are answered 204;
//! - at shutdown the listener closes at once, requests already being read are handed on (at most
//!   [`HAND_ON_GRACE`]), then the source drops its pipeline sender and returns; answers still
//!   waiting for delivery are written by their connections in the background.

pub mod decode;
pub mod settings;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, RwLock, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::decode::{Decoded, PushError, PushedStream};
pub use self::settings::{PushSettings, check};
use super::{Budget, Source, SourceContext, SourceEvent};
use crate::ack::Receipts;
use crate::discovery::relabel::{Rule, process};
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;

/// How long requests already being read at shutdown may take to be handed on.
pub const HAND_ON_GRACE: Duration = Duration::from_secs(5);

/// Budget bytes charged per entry on top of its line and metadata: what an [`Entry`] itself
/// takes, so that a body of empty entries cannot hold more memory than it is charged for.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>();

/// `Retry-After` of a 429 (seconds): a pusher comes back once some entries were delivered.
const RETRY_AFTER_SECS: &str = "1";

/// Binds the `loki_push_api` source of job `job` from its raw settings (checked at load).
pub async fn bind(
    job: &str,
    raw: &serde_yaml::Mapping,
    rules: Vec<Rule>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Box<dyn Source>> {
    let settings = settings::parse(raw).map_err(anyhow::Error::msg)?;
    Ok(Box::new(
        PushSource::bind(job, settings, rules, metrics).await?,
    ))
}

/// A bound push server, not yet serving.
pub struct PushSource {
    job: String,
    settings: PushSettings,
    rules: Vec<Rule>,
    listener: TcpListener,
    addr: SocketAddr,
    metrics: PushMetrics,
}

impl PushSource {
    /// Binds the listener (an address in use is an error naming it, as in Promtail).
    pub async fn bind(
        job: &str,
        settings: PushSettings,
        rules: Vec<Rule>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<PushSource> {
        let listen = settings.listen();
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("loki_push_api server: listening on {listen}"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("loki_push_api server: the address bound for {listen}"))?;
        tracing::info!(address = %addr, job, "loki_push_api server listening.");
        Ok(PushSource {
            job: job.to_owned(),
            settings,
            rules,
            listener,
            addr,
            metrics: PushMetrics::register(job, metrics),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    async fn run_source(self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "loki_push_api") else {
            return;
        };
        let SourceContext {
            budget,
            shutdown,
            receipts,
            ..
        } = ctx;
        let raw_labels = LabelSet::from_pairs(
            self.settings
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let shared = Arc::new(Shared {
            labels: self.settings.labels.clone(),
            raw_labels,
            rules: self.rules,
            use_incoming_timestamp: self.settings.use_incoming_timestamp,
            ack_after_delivery: self.settings.ack_after_delivery,
            read_timeout: self.settings.read_timeout,
            budget,
            output: RwLock::new(Some(output)),
            handing: TaskTracker::new(),
            shutdown: shutdown.clone(),
            receipts,
            metrics: self.metrics,
        });
        let prefix = &self.settings.path_prefix;
        let router = Router::new()
            .route(&format!("{prefix}/loki/api/v1/push"), post(push))
            .route(&format!("{prefix}/promtail/api/v1/raw"), post(raw))
            .route(&format!("{prefix}/ready"), get(ready))
            .with_state(Arc::clone(&shared));
        let conn = Arc::new(Connections {
            router,
            read_header_timeout: self.settings.read_header_timeout,
        });
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(Arc::clone(&conn).serve(stream, graceful.watcher()));
                }
                Err(e) if is_connection_error(&e) => {}
                // Out of file descriptors or similar: wait instead of spinning.
                Err(e) => {
                    tracing::error!(job = %self.job, error = %e, "loki_push_api server cannot accept a connection.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        drop(self.listener);
        shared.handing.close();
        if tokio::time::timeout(HAND_ON_GRACE, shared.handing.wait())
            .await
            .is_err()
        {
            tracing::warn!(job = %self.job, "loki_push_api: requests still being read at shutdown were cut off (their pushers were not answered 204).");
        }
        // Waits for handlers in the middle of a send; later ones find no pipeline (503).
        *shared.output.write().await = None;
        // Idle connections close now; answers still waiting for delivery are written when the
        // pipelines and clients have drained, which happens after this source returns (the
        // topology waits for them, bounded, before the process exits).
        shared.receipts.answer_later(async move {
            let _ = tokio::time::timeout(Duration::from_secs(300), graceful.shutdown()).await;
        });
    }
}

impl Source for PushSource {
    fn describe(&self) -> String {
        format!("loki_push_api job={} on {}", self.job, self.addr)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_source(ctx))
    }
}

/// The metrics of one push job. Promtail registers none for this target on its exposed
/// registry (its push server's dskit metrics go to a private one), so these are ferrotail's.
#[derive(Clone)]
struct PushMetrics {
    requests: IntCounterVec,
    entries: IntCounter,
    dropped: IntCounterVec,
}

impl PushMetrics {
    fn register(job: &str, metrics: &Metrics) -> Self {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("job", job);
        // The names and label sets are constants: building them cannot fail.
        let requests = IntCounterVec::new(
            opts(
                "ferrotail_push_requests_total",
                "Requests to a loki_push_api server, by endpoint (push, raw) and answer.",
            ),
            &["endpoint", "code"],
        );
        let entries = IntCounter::with_opts(opts(
            "ferrotail_push_entries_total",
            "Entries received by a loki_push_api server and handed to the job's pipeline.",
        ));
        let dropped = IntCounterVec::new(
            opts(
                "ferrotail_push_dropped_entries_total",
                "Pushed entries not handed on: their stream was dropped by relabel_configs \
                 (relabel) or left without labels (no_labels).",
            ),
            &["reason"],
        );
        let (Ok(requests), Ok(entries), Ok(dropped)) = (requests, entries, dropped) else {
            unreachable!("constant metric definitions")
        };
        for reason in ["relabel", "no_labels"] {
            dropped.with_label_values(&[reason]);
        }
        let registry = metrics.registry();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(entries.clone()),
            Box::new(dropped.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::warn!(job, error = %e, "loki_push_api metrics not registered.");
            }
        }
        PushMetrics {
            requests,
            entries,
            dropped,
        }
    }
}

/// What every request handler shares.
struct Shared {
    labels: BTreeMap<String, String>,
    /// The labels of raw lines (the job's `labels`, empty values left out).
    raw_labels: LabelSet,
    rules: Vec<Rule>,
    use_incoming_timestamp: bool,
    ack_after_delivery: bool,
    read_timeout: Option<Duration>,
    budget: Budget,
    /// The job's pipeline; `None` once the source has returned.
    output: RwLock<Option<mpsc::Sender<SourceEvent>>>,
    /// Requests between their start and the hand-off of their entries.
    handing: TaskTracker,
    shutdown: CancellationToken,
    receipts: Receipts,
    metrics: PushMetrics,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Push,
    Raw,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Push => "push",
            Endpoint::Raw => "raw",
        }
    }
}

async fn push(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    s.handle(Endpoint::Push, &headers, body).await
}

async fn raw(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    s.handle(Endpoint::Raw, &headers, body).await
}

async fn ready() -> &'static str {
    "ready"
}

/// A refusal, as Go's `http.Error` writes it.
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{message}\n"),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    r
}

fn refusal(e: &PushError) -> Response {
    match e {
        PushError::BadRequest(m) => refuse(StatusCode::BAD_REQUEST, m),
        PushError::Full(m) => refuse(StatusCode::TOO_MANY_REQUESTS, m),
        PushError::TooLarge(m) => refuse(StatusCode::PAYLOAD_TOO_LARGE, m),
    }
}

const SHUTTING_DOWN: &str =
    "ferrotail is shutting down: the entries may not have been delivered, send them again";

impl Shared {
    async fn handle(&self, endpoint: Endpoint, headers: &HeaderMap, body: Body) -> Response {
        let response = self.receive(endpoint, headers, body).await;
        self.metrics
            .requests
            .with_label_values(&[endpoint.name(), response.status().as_str()])
            .inc();
        response
    }

    async fn receive(&self, endpoint: Endpoint, headers: &HeaderMap, body: Body) -> Response {
        // Held until the entries are handed on: shutdown waits for it (bounded).
        let handing = self.handing.token();
        if self.shutdown.is_cancelled() {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN);
        }
        let mut meter = Meter::new(&self.budget);
        let (events, count, delivered) = match self.read(endpoint, headers, body, &mut meter).await
        {
            Ok(built) => built,
            Err(e) => {
                if !matches!(e, PushError::BadRequest(_)) {
                    tracing::debug!(error = %e, "loki_push_api request refused.");
                } else {
                    tracing::warn!(error = %e, "loki_push_api: failed to parse incoming push request.");
                }
                return refusal(&e);
            }
        };
        if !events.is_empty() {
            let out = self.output.read().await;
            let Some(tx) = out.as_ref() else {
                return refuse(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN);
            };
            if tx.send(SourceEvent::Entries(events)).await.is_err() {
                return refuse(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN);
            }
            self.metrics.entries.inc_by(count as u64);
        }
        drop(handing);
        if self.ack_after_delivery {
            // `false` only once the shutdown deadline abandoned the receipt: what the clients
            // drop then must not be answered as kept.
            if !delivered.wait().await {
                return refuse(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN);
            }
        }
        StatusCode::NO_CONTENT.into_response()
    }

    /// Reads, decodes and labels a request: its entries (in one batch), their number and the
    /// receipt that resolves when they are finished.
    async fn read(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Body,
        meter: &mut Meter<'_>,
    ) -> Result<(Vec<Entry>, usize, crate::ack::Delivered), PushError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = read_body(body, declared, meter, self.read_timeout).await?;
        let now = Timestamp::now();
        let (streams, kept) = match endpoint {
            Endpoint::Push => {
                let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
                let Decoded { streams, kept } = decode::decode_push(
                    body,
                    text(header::CONTENT_TYPE),
                    text(header::CONTENT_ENCODING),
                    &mut |n| meter.charge(n),
                )?;
                (self.label_streams(streams), kept)
            }
            Endpoint::Raw => {
                let lines = decode::raw_lines(&body);
                let kept = body.len();
                let entries = lines
                    .into_iter()
                    .map(|line| decode::PushedEntry {
                        timestamp: now.0,
                        line,
                        structured_metadata: Vec::new(),
                    })
                    .collect();
                (vec![(self.raw_labels.clone(), entries, false)], kept)
            }
        };
        let count: usize = streams.iter().map(|(_, e, _)| e.len()).sum();
        let metadata: usize = streams
            .iter()
            .flat_map(|(_, e, _)| e.iter())
            .flat_map(|e| e.structured_metadata.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        // What the entries keep alive; the intermediate buffers are gone by now.
        meter.settle(kept + metadata + count * ENTRY_OVERHEAD)?;
        let (ack, delivered) = self.receipts.issue(meter.take());
        let mut events = Vec::with_capacity(count);
        for (labels, entries, given) in streams {
            for e in entries {
                let (timestamp, stamp) = if given {
                    (Timestamp(e.timestamp), Stamp::Given)
                } else {
                    (now, Stamp::ReadTime)
                };
                events.push(Entry {
                    labels: labels.clone(),
                    timestamp,
                    stamp,
                    line: e.line,
                    structured_metadata: e.structured_metadata,
                    ack: ack.clone(),
                });
            }
        }
        Ok((events, count, delivered))
    }

    /// Each pushed stream's final labels: the job's `labels` over the pushed ones, the relabel
    /// rules, no `__` labels. A stream the rules drop (or that is left with no labels) is
    /// counted and skipped; the others go on. The flag says whether the pushed timestamps are
    /// kept.
    fn label_streams(
        &self,
        streams: Vec<PushedStream>,
    ) -> Vec<(LabelSet, Vec<decode::PushedEntry>, bool)> {
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            let mut labels = s.labels;
            for (k, v) in &self.labels {
                labels.insert(k.clone(), v.clone());
            }
            let kept = process(&self.rules, &mut labels);
            if !kept || labels.is_empty() {
                let reason = if kept { "no_labels" } else { "relabel" };
                self.metrics
                    .dropped
                    .with_label_values(&[reason])
                    .inc_by(s.entries.len() as u64);
                continue;
            }
            labels.retain(|k, _| !k.starts_with("__"));
            out.push((
                LabelSet::from_pairs(labels),
                s.entries,
                self.use_incoming_timestamp,
            ));
        }
        out
    }
}

/// Reads a body, charging its bytes to the budget as they arrive. A refusal reads (and throws
/// away) the rest first, so that the answer reaches a pusher still sending.
async fn read_body(
    body: Body,
    declared: Option<usize>,
    meter: &mut Meter<'_>,
    limit: Option<Duration>,
) -> Result<Bytes, PushError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let read = async {
        if let Some(n) = declared {
            meter.charge(n)?;
            buf.reserve(n);
        }
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| PushError::BadRequest(format!("reading the request body: {e}")))?;
            let over = (buf.len() + chunk.len()).saturating_sub(declared.unwrap_or(0));
            meter.charge(over.min(chunk.len()))?;
            buf.extend_from_slice(&chunk);
        }
        Ok::<_, PushError>(())
    };
    let result = match limit {
        Some(l) => tokio::time::timeout(l, read).await.unwrap_or_else(|_| {
            Err(PushError::BadRequest(
                "reading the request body timed out".to_owned(),
            ))
        }),
        None => read.await,
    };
    if let Err(e) = result {
        if !matches!(e, PushError::BadRequest(_)) {
            drop(buf);
            // Bounded: the rest of the body is thrown away as it comes, for a few seconds.
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
        return Err(e);
    }
    Ok(buf.freeze())
}

/// The budget permits one request holds, taken without waiting.
struct Meter<'a> {
    budget: &'a Budget,
    permit: Option<OwnedSemaphorePermit>,
    held: usize,
}

impl<'a> Meter<'a> {
    fn new(budget: &'a Budget) -> Self {
        Meter {
            budget,
            permit: None,
            held: 0,
        }
    }

    /// Takes `n` more bytes: `Full` when the budget has no room now, `TooLarge` when the
    /// request would need more than all of it.
    fn charge(&mut self, n: usize) -> Result<(), PushError> {
        if n == 0 {
            return Ok(());
        }
        let size = self.budget.size();
        if self.held.saturating_add(n) > size {
            return Err(PushError::TooLarge(format!(
                "request body too large: it needs more than the byte budget of {size} bytes \
                 (ferrotail.inflight_bytes); send smaller batches"
            )));
        }
        let Some(p) = self.budget.try_acquire(n) else {
            return Err(PushError::Full(format!(
                "ferrotail's byte budget is full ({size} bytes in flight to Loki); retry later"
            )));
        };
        match &mut self.permit {
            Some(held) => held.merge(p),
            None => self.permit = Some(p),
        }
        self.held += n;
        Ok(())
    }

    /// Holds exactly `keep` bytes from now on (at least one): returns the excess, or takes
    /// what is missing.
    fn settle(&mut self, keep: usize) -> Result<(), PushError> {
        let keep = keep.max(1);
        if keep > self.held {
            return self.charge(keep - self.held);
        }
        if let Some(p) = &mut self.permit
            && let Some(excess) = p.split(self.held - keep)
        {
            drop(excess);
            self.held = keep;
        }
        Ok(())
    }

    fn take(&mut self) -> Option<OwnedSemaphorePermit> {
        self.held = 0;
        self.permit.take()
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
struct Connections {
    router: Router,
    read_header_timeout: Option<Duration>,
}

impl Connections {
    /// Serves one connection to its end (HTTP/1.1 with keep-alive). Failures are the client's
    /// and only logged at debug level.
    async fn serve(self: Arc<Self>, stream: TcpStream, watcher: Watcher) {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.read_header_timeout);
        let service = TowerToHyperService::new(self.router.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, "loki_push_api connection ended with an error.");
        }
    }
}
