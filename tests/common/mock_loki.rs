//! An in-process mock Loki for tests: an HTTP/1.1 server on 127.0.0.1 (plain or TLS) that
//! decodes snappy protobuf push bodies with `ferrotail::client::decode_push`, records every
//! request and every entry it accepted, and answers from a script.
//!
//! Answers: scripted replies are used first, one per request, in order; after that the
//! fallback reply (204 unless changed with [`MockLoki::set_fallback`]). A reply is a status
//! with an optional `Retry-After` and body, or one of the faults of [`Reply`]: a connection
//! reset before storing, a response lost after storing, a body cut short, a partial accept, a
//! late answer. An optional delay is applied before every answer. Entries are recorded only
//! when the reply says Loki stored them (a 2xx, or the faults that store), and by Loki's rule:
//! one entry per (tenant, stream, timestamp, line), a second one is merged into the first (a
//! retried batch, or identical lines stamped with the same instant). So
//! [`MockLoki::entries`] is what a real Loki would hold, not what was sent;
//! [`MockLoki::merged`] counts what it merged.
//!
//! Waiting is bounded: [`MockLoki::wait_for_entries`] returns an error with a clear message
//! instead of hanging.

#![allow(dead_code)] // each test binary uses a different part of the mock

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One entry Loki accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedEntry {
    /// The request's `X-Scope-OrgID`, if any.
    pub tenant: Option<String>,
    /// The stream's label string.
    pub labels: String,
    /// Unix nanoseconds.
    pub timestamp_ns: i64,
    /// The line's raw bytes.
    pub line: Bytes,
    /// Structured metadata pairs.
    pub structured_metadata: Vec<(String, String)>,
}

impl ReceivedEntry {
    /// The line as text (invalid UTF-8 replaced).
    pub fn line_str(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }
}

/// How many times each (timestamp, line) of `entries` arrived.
pub fn arrivals(entries: &[ReceivedEntry]) -> HashMap<(i64, String), usize> {
    let mut m = HashMap::new();
    for e in entries {
        *m.entry((e.timestamp_ns, e.line_str())).or_insert(0) += 1;
    }
    m
}

/// An hour ago, on a whole second, in Unix nanoseconds (a timestamp Loki takes).
pub fn base_time() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs() as i64;
    (now - 3600) * 1_000_000_000
}

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// When it arrived (after its body was read).
    pub at: Instant,
    /// HTTP method.
    pub method: String,
    /// The request target as sent (absolute form through a proxy).
    pub uri: String,
    /// Headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Number of entries in the body (0 if it did not decode).
    pub entries: usize,
    /// Why the body did not decode, if it did not.
    pub decode_error: Option<String>,
    /// The status answered, `None` for a reset connection.
    pub status: Option<u16>,
    /// The lines of the body's entries, in order.
    pub lines: Vec<Bytes>,
    /// How many of those entries the mock stored.
    pub stored: usize,
    /// Answered late ([`Reply::After`]); recorded when the answer was due, not on arrival.
    pub late: bool,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the mock answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer with a status.
    Status {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` header value.
        retry_after: Option<String>,
        /// Response body.
        body: String,
    },
    /// Close the connection without answering (nothing stored).
    Reset,
    /// Store the entries, then close the connection without answering: Loki kept the batch but
    /// the answer was lost, so a retry duplicates it.
    StoreThenReset,
    /// Store the entries and answer 200 with a `Content-Length` larger than the body sent,
    /// then close: a half-written response.
    StoreThenTruncate,
    /// Store the first `keep` entries and answer `status` (Loki rejecting part of a batch).
    Partial {
        /// Entries stored, from the start of the body.
        keep: usize,
        /// The status answered.
        status: u16,
        /// The body answered.
        body: String,
    },
    /// Wait, then answer with the inner reply (a Loki slower than the client's timeout).
    After(Duration, Box<Reply>),
}

impl Reply {
    /// A bare status.
    pub fn status(status: u16) -> Self {
        Reply::Status {
            status,
            retry_after: None,
            body: String::new(),
        }
    }

    /// A status with a body (Loki's error text).
    pub fn with_body(status: u16, body: &str) -> Self {
        Reply::Status {
            status,
            retry_after: None,
            body: body.to_owned(),
        }
    }

    /// A status with a `Retry-After` value.
    pub fn with_retry_after(status: u16, retry_after: &str) -> Self {
        Reply::Status {
            status,
            retry_after: Some(retry_after.to_owned()),
            body: String::new(),
        }
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    fallback: Option<Reply>,
    delay: Option<Duration>,
    entries: Vec<ReceivedEntry>,
    /// What `entries` holds, by Loki's identity of an entry.
    kept: HashSet<(Option<String>, String, i64, Bytes)>,
    /// Stored entries that Loki's rule merged into an earlier one.
    merged: usize,
    requests: Vec<ReceivedRequest>,
}

impl State {
    /// Stores entries the way Loki does: one per (tenant, stream, timestamp, line).
    fn store(&mut self, accepted: Vec<ReceivedEntry>) {
        for e in accepted {
            let id = (
                e.tenant.clone(),
                e.labels.clone(),
                e.timestamp_ns,
                e.line.clone(),
            );
            if self.kept.insert(id) {
                self.entries.push(e);
            } else {
                self.merged += 1;
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running mock Loki; stops when dropped.
pub struct MockLoki {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// The body of the mock's answers.
type MockBody = BoxBody<Bytes, std::io::Error>;

/// A body that announces 1000 bytes, sends 4 and then fails: a half-written answer.
struct CutShort {
    sent: bool,
}

impl hyper::body::Body for CutShort {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if self.sent {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other(
                "answer cut short on purpose",
            ))));
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
            b"half",
        )))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(1000)
    }
}

/// The error that makes hyper drop the connection without answering.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset on purpose")
    }
}

impl std::error::Error for ResetConnection {}

impl MockLoki {
    /// Starts a plain HTTP mock on 127.0.0.1 with a free port.
    pub async fn start() -> MockLoki {
        Self::start_inner(None).await
    }

    /// Starts an HTTPS mock with the given rustls server configuration.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> MockLoki {
        Self::start_inner(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> MockLoki {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let is_tls = tls.is_some();
        let server_shared = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&server_shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(Arc::clone(&shared), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            // A failed handshake is what the TLS tests expect to see.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        MockLoki {
            addr,
            tls: is_tls,
            shared,
            server,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://127.0.0.1:port` without a path (e.g. for a proxy URL).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The full push URL, `http://127.0.0.1:port/loki/api/v1/push`.
    pub fn url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("{}/loki/api/v1/push", self.base_url()))
            .expect("mock URL parses")
    }

    /// `host:port` as the client metrics label it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().script.extend(replies);
    }

    /// The reply once the script is used up (`None` = 204).
    pub fn set_fallback(&self, reply: Option<Reply>) {
        self.shared.lock().fallback = reply;
    }

    /// A delay before every answer (`None` = answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.shared.lock().delay = delay;
    }

    /// Every entry accepted so far, in arrival order.
    pub fn entries(&self) -> Vec<ReceivedEntry> {
        self.shared.lock().entries.clone()
    }

    /// Entries stored by a reply that Loki's rule merged into one it already held (same
    /// tenant, stream, timestamp and line).
    pub fn merged(&self) -> usize {
        self.shared.lock().merged
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The lines of the requests whose entries were stored but whose answer did not say so
    /// (stored then reset): the only lines a correct client may send twice.
    pub fn lines_of_lost_answers(&self) -> std::collections::HashSet<Bytes> {
        self.requests()
            .iter()
            .filter(|r| r.stored > 0 && !matches!(r.status, Some(200..=299)))
            .flat_map(|r| r.lines[..r.stored].iter().cloned())
            .collect()
    }

    /// Waits until at least `n` entries were accepted; an error after `timeout` says how far it
    /// got.
    pub async fn wait_for_entries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedEntry>, String> {
        self.wait(timeout, |st| (st.entries.len() >= n).then(|| st.entries.clone()))
            .await
            .map_err(|st| {
                format!(
                    "mock Loki: waited {timeout:?} for {n} entries, got {} entries in {} requests (statuses {:?})",
                    st.0,
                    st.1.len(),
                    st.1
                )
            })
    }

    /// Waits until `done` holds for the stored entries; an error after `timeout` names `what`
    /// and says how far it got.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[ReceivedEntry]) -> bool,
    ) -> Result<(), String> {
        self.wait(timeout, |st| done(&st.entries).then_some(()))
            .await
            .map_err(|st| {
                format!(
                    "mock Loki: waited {timeout:?} for {what}, got {} entries in {} requests (statuses {:?})",
                    st.0,
                    st.1.len(),
                    st.1
                )
            })
    }

    /// Waits until at least `n` requests arrived (answered or reset).
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedRequest>, String> {
        self.wait(timeout, |st| {
            (st.requests.len() >= n).then(|| st.requests.clone())
        })
        .await
        .map_err(|st| {
            format!(
                "mock Loki: waited {timeout:?} for {n} requests, got {} (statuses {:?})",
                st.1.len(),
                st.1
            )
        })
    }

    async fn wait<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, (usize, Vec<Option<u16>>)> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before looking, so that no change slips in between.
            let changed = self.shared.changed.notified();
            {
                let st = self.shared.lock();
                if let Some(v) = ready(&st) {
                    return Ok(v);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let st = self.shared.lock();
                return Err((
                    st.entries.len(),
                    st.requests.iter().map(|r| r.status).collect(),
                ));
            }
        }
    }
}

impl Drop for MockLoki {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, ResetConnection> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let tenant = req
        .headers()
        .get("x-scope-orgid")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(ResetConnection),
    };
    let at = Instant::now();
    let (reply, delay) = {
        let mut st = shared.lock();
        let reply = st
            .script
            .pop_front()
            .or_else(|| st.fallback.clone())
            .unwrap_or_else(|| Reply::status(204));
        (reply, st.delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let decoded = ferrotail::client::decode_push(&body);
    let mut request = ReceivedRequest {
        at,
        method,
        uri,
        headers,
        entries: 0,
        decode_error: None,
        status: None,
        lines: Vec::new(),
        stored: 0,
        late: false,
    };
    let mut accepted = Vec::new();
    match &decoded {
        Ok(push) => {
            for stream in &push.streams {
                for e in &stream.entries {
                    accepted.push(ReceivedEntry {
                        tenant: tenant.clone(),
                        labels: stream.labels.clone(),
                        timestamp_ns: e.timestamp.map(|t| t.unix_nanos()).unwrap_or(0),
                        line: e.line.clone(),
                        structured_metadata: e
                            .structured_metadata
                            .iter()
                            .map(|p| (p.name.clone(), p.value.clone()))
                            .collect(),
                    });
                }
            }
            request.entries = accepted.len();
        }
        Err(e) => request.decode_error = Some(e.to_string()),
    }
    request.lines = accepted.iter().map(|e| e.line.clone()).collect();
    let decode_error = decoded.err().map(|e| e.to_string());
    if let Reply::After(d, inner) = reply {
        request.late = true;
        // Like a real Loki, a slow answer is still processed when the client has given up
        // (hyper drops this handler then): the work runs in its own task.
        let task = tokio::spawn(async move {
            tokio::time::sleep(d).await;
            answer(shared, request, accepted, decode_error, *inner)
        });
        return task.await.unwrap_or(Err(ResetConnection));
    }
    answer(shared, request, accepted, decode_error, reply)
}

/// Records the request (and the entries the reply stores) and builds the answer.
fn answer(
    shared: Arc<Shared>,
    mut request: ReceivedRequest,
    mut accepted: Vec<ReceivedEntry>,
    decode_error: Option<String>,
    reply: Reply,
) -> Result<Response<MockBody>, ResetConnection> {
    let (status, retry_after, body, keep, truncate) = match reply {
        Reply::Reset => {
            shared.lock().requests.push(request);
            shared.changed.notify_waiters();
            return Err(ResetConnection);
        }
        Reply::StoreThenReset => {
            request.stored = accepted.len();
            {
                let mut st = shared.lock();
                st.store(accepted);
                st.requests.push(request);
            }
            shared.changed.notify_waiters();
            return Err(ResetConnection);
        }
        Reply::StoreThenTruncate => (200, None, "half".to_owned(), usize::MAX, true),
        Reply::Partial { keep, status, body } => (status, None, body, keep, false),
        Reply::Status {
            status,
            retry_after,
            body,
        } => {
            let keep = if (200..300).contains(&status) {
                usize::MAX
            } else {
                0
            };
            (status, retry_after, body, keep, false)
        }
        Reply::After(d, inner) => {
            // Nested delays: the outer one has passed; apply the inner at once.
            let _ = d;
            return answer(shared, request, accepted, decode_error, *inner);
        }
    };
    // A body that does not decode is what a real Loki rejects.
    let (status, body, keep) = match decode_error {
        Some(e) => (400, format!("mock Loki: {e}"), 0),
        None => (status, body, keep),
    };
    request.status = Some(status);
    {
        let mut st = shared.lock();
        accepted.truncate(keep);
        request.stored = accepted.len();
        st.store(accepted);
        st.requests.push(request);
    }
    shared.changed.notify_waiters();
    let body = if truncate {
        // 1000 bytes announced, 4 sent, then the body fails: hyper closes the connection.
        CutShort { sent: false }.boxed()
    } else {
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ra) = retry_after
        && let Ok(v) = hyper::header::HeaderValue::from_str(&ra)
    {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    Ok(resp)
}
