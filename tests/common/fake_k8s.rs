//! A fake Kubernetes API server for the pod discovery tests: plain HTTP/1.1 on 127.0.0.1,
//! answering pod list requests (`GET /api/v1/pods`, or `/api/v1/namespaces/<ns>/pods`) with
//! a resourceVersion, and watch requests (`watch=true|1&resourceVersion=N`) with a chunked
//! stream of JSON watch events: the recorded events after `N`, then live ones.
//!
//! Like a real API server it applies the `spec.nodeName=<node>` field selector, numbers every
//! change with a growing resourceVersion, answers a watch from a compacted resourceVersion
//! with an `ERROR` event of code 410 (Gone), and can be told to close the open watches
//! ([`FakeK8s::close_watches`]), send a bookmark, or forget history ([`FakeK8s::compact`]).
//! Every request is recorded; waits are bounded and fail with a clear message.

#![allow(dead_code)] // each test binary uses a different part of the fake

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Clone, Debug)]
pub struct K8sRequest {
    /// The path.
    pub path: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
}

impl K8sRequest {
    /// Whether this is a watch request.
    pub fn is_watch(&self) -> bool {
        matches!(
            self.query.get("watch").map(String::as_str),
            Some("true" | "1")
        )
    }
}

struct StoredPod {
    node: String,
    object: Value,
}

#[derive(Default)]
struct State {
    /// The resourceVersion of the latest change.
    rv: u64,
    /// Watches from a resourceVersion below this are answered with 410 Gone.
    compacted: u64,
    pods: BTreeMap<String, StoredPod>,
    /// (resourceVersion, node of the pod, the event's JSON line).
    history: Vec<(u64, String, String)>,
    /// Open watches: their node filter and the sender of their body.
    watches: Vec<(Option<String>, mpsc::UnboundedSender<Bytes>)>,
    requests: Vec<K8sRequest>,
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

/// The running fake; stops when dropped.
pub struct FakeK8s {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeK8s {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response body fed by a channel: a watch stream that ends when the sender is dropped.
struct ChannelBody(mpsc::UnboundedReceiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn gone_event() -> Value {
    json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version", "reason": "Expired", "code": 410
    }})
}

/// The node a `fieldSelector` restricts to, if any.
fn node_of_selector(selector: Option<&String>) -> Option<String> {
    selector?
        .split(',')
        .find_map(|t| t.strip_prefix("spec.nodeName="))
        .map(str::to_owned)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let request = K8sRequest { path, query };
    let namespace = request
        .path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|r| r.strip_suffix("/pods"))
        .map(str::to_owned);
    if request.path != "/api/v1/pods" && namespace.is_none() {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")).boxed());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    }
    let node = node_of_selector(request.query.get("fieldSelector"));
    let ns_matches = |object: &Value| {
        namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"] == ns)
    };
    let node_matches = |n: &str| node.as_deref().is_none_or(|want| want == n);
    let watch = request.is_watch();
    let from: u64 = request
        .query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    let mut st = shared.lock();
    st.requests.push(request);
    let resp = if watch {
        let (tx, rx) = mpsc::unbounded_channel();
        if from < st.compacted {
            let _ = tx.send(line(&gone_event()));
            // The sender drops here: the stream ends after the error, as the server's does.
        } else {
            for (rv, n, ev) in &st.history {
                let ev: Value = serde_json::from_str(ev).unwrap_or_default();
                if *rv > from && node_matches(n) && ns_matches(&ev["object"]) {
                    let _ = tx.send(line(&ev));
                }
            }
            st.watches.push((node.clone(), tx));
        }
        Response::new(ChannelBody(rx).boxed())
    } else {
        let items: Vec<Value> = st
            .pods
            .values()
            .filter(|p| node_matches(&p.node) && ns_matches(&p.object))
            .map(|p| p.object.clone())
            .collect();
        let list = json!({
            "kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": st.rv.to_string()},
            "items": items,
        });
        Response::new(Full::new(Bytes::from(list.to_string())).boxed())
    };
    drop(st);
    shared.changed.notify_waiters();
    Ok(resp)
}

impl FakeK8s {
    /// Starts the fake on an ephemeral port.
    pub async fn start() -> FakeK8s {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let server_shared = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&server_shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(Arc::clone(&shared), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeK8s {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Records an event and sends it to the open watches that see that node.
    fn publish(st: &mut State, node: &str, event: Value) {
        let rv = st.rv;
        let bytes = line(&event);
        st.watches.retain(|(filter, tx)| {
            if filter.as_deref().is_some_and(|f| f != node) {
                return !tx.is_closed();
            }
            tx.send(bytes.clone()).is_ok()
        });
        st.history.push((rv, node.to_owned(), event.to_string()));
    }

    /// Adds (or replaces) a running pod in namespace `default` on `node` with one container
    /// `main` declaring `ports`.
    pub fn add_pod(&self, name: &str, node: &str, ports: &[i32]) {
        let mut st = self.shared.lock();
        st.rv += 1;
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
            .collect();
        let object = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "resourceVersion": st.rv.to_string(), "labels": {"app": name}
            },
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "img", "ports": ports}]},
            "status": {"podIP": "10.1.2.3", "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let kind = if st.pods.contains_key(name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.pods.insert(
            name.to_owned(),
            StoredPod {
                node: node.to_owned(),
                object: object.clone(),
            },
        );
        Self::publish(&mut st, node, json!({"type": kind, "object": object}));
    }

    /// Deletes a pod (a `DELETED` event carrying its last state).
    pub fn delete_pod(&self, name: &str) {
        let mut st = self.shared.lock();
        let Some(mut pod) = st.pods.remove(name) else {
            return;
        };
        st.rv += 1;
        pod.object["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        Self::publish(
            &mut st,
            &pod.node,
            json!({"type": "DELETED", "object": pod.object}),
        );
    }

    /// Advances the resourceVersion without a pod change and sends a `BOOKMARK` with it to
    /// the open watches; returns that resourceVersion.
    pub fn bookmark(&self) -> u64 {
        let mut st = self.shared.lock();
        st.rv += 1;
        let rv = st.rv;
        let event = json!({"type": "BOOKMARK", "object": {
            "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}
        }});
        let bytes = line(&event);
        st.watches.retain(|(_, tx)| tx.send(bytes.clone()).is_ok());
        rv
    }

    /// Ends every open watch stream (cleanly, as a server-side timeout does).
    pub fn close_watches(&self) {
        self.shared.lock().watches.clear();
    }

    /// Deletes `name` without any event (as if its event had been compacted away), forgets
    /// all history, answers the open watches with 410 Gone and ends them. From now on a watch
    /// from an older resourceVersion gets 410 too; only a new list sees the current state.
    pub fn compact_deleting(&self, name: &str) {
        let mut st = self.shared.lock();
        st.pods.remove(name);
        st.rv += 1;
        st.compacted = st.rv;
        st.history.clear();
        let gone = line(&gone_event());
        for (_, tx) in st.watches.drain(..) {
            let _ = tx.send(gone.clone());
        }
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<K8sRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many list requests arrived so far.
    pub fn list_count(&self) -> usize {
        self.requests().iter().filter(|r| !r.is_watch()).count()
    }

    /// Waits until a request satisfies `pred`; returns it, or an error after `timeout`.
    pub async fn wait_for_request(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&K8sRequest) -> bool,
    ) -> Result<K8sRequest, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return Ok(r);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "no {what} within {timeout:?}; requests: {:?}",
                    self.requests()
                ));
            }
        }
    }
}
