//! A fake Kubernetes API server for the discovery tests: plain HTTP/1.1 on 127.0.0.1,
//! answering list requests for pods, nodes, services, endpoints (`/api/v1/...`), endpoint
//! slices (`/apis/discovery.k8s.io/v1/...`) and ingresses (`/apis/networking.k8s.io/v1/...`),
//! in all namespaces or in one (`.../namespaces/<ns>/<resource>`; nodes are cluster-wide), with
//! a resourceVersion, and watch requests (`watch=true|1&resourceVersion=N`) with a chunked
//! stream of JSON watch events of that resource: the recorded events after `N`, then live ones.
//!
//! Like a real API server it applies the pods' `spec.nodeName=<node>` field selector (other
//! selectors are recorded, not applied), numbers every change with a growing resourceVersion,
//! answers a watch from a compacted resourceVersion with an `ERROR` event of code 410 (Gone),
//! and can be told to close the open watches ([`FakeK8s::close_watches`]), send a bookmark, or
//! forget history ([`FakeK8s::compact_deleting`]). Every request is recorded; waits are
//! bounded and fail with a clear message.

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

/// A resource the fake serves.
struct Resource {
    /// Its plural name, the last path segment.
    plural: &'static str,
    /// The `kind` of its objects.
    kind: &'static str,
    /// Its `apiVersion`.
    api_version: &'static str,
    /// The path its URLs start with.
    prefix: &'static str,
    /// Whether its objects live in namespaces.
    namespaced: bool,
}

const RESOURCES: [Resource; 6] = [
    Resource {
        plural: "pods",
        kind: "Pod",
        api_version: "v1",
        prefix: "/api/v1",
        namespaced: true,
    },
    Resource {
        plural: "nodes",
        kind: "Node",
        api_version: "v1",
        prefix: "/api/v1",
        namespaced: false,
    },
    Resource {
        plural: "services",
        kind: "Service",
        api_version: "v1",
        prefix: "/api/v1",
        namespaced: true,
    },
    Resource {
        plural: "endpoints",
        kind: "Endpoints",
        api_version: "v1",
        prefix: "/api/v1",
        namespaced: true,
    },
    Resource {
        plural: "endpointslices",
        kind: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        prefix: "/apis/discovery.k8s.io/v1",
        namespaced: true,
    },
    Resource {
        plural: "ingresses",
        kind: "Ingress",
        api_version: "networking.k8s.io/v1",
        prefix: "/apis/networking.k8s.io/v1",
        namespaced: true,
    },
];

fn resource(plural: &str) -> &'static Resource {
    RESOURCES
        .iter()
        .find(|r| r.plural == plural)
        .unwrap_or_else(|| panic!("the fake API server does not serve {plural:?}"))
}

/// The resource and namespace (`None`: all) a request path names.
fn parse_path(path: &str) -> Option<(&'static Resource, Option<String>)> {
    RESOURCES.iter().find_map(|r| {
        let rest = path.strip_prefix(r.prefix)?;
        if rest.strip_prefix('/') == Some(r.plural) {
            return Some((r, None));
        }
        if !r.namespaced {
            return None;
        }
        let (ns, plural) = rest.strip_prefix("/namespaces/")?.split_once('/')?;
        (plural == r.plural && !ns.is_empty()).then(|| (r, Some(ns.to_owned())))
    })
}

/// An object's key: resource, namespace ("" for nodes), name.
type Key = (&'static str, String, String);

/// The node a pod runs on (`None` for other objects).
fn node_of(plural: &str, object: &Value) -> Option<String> {
    (plural == "pods").then(|| object["spec"]["nodeName"].as_str().unwrap_or("").to_owned())
}

/// One open watch.
struct Watch {
    plural: &'static str,
    namespace: Option<String>,
    /// The pods' node filter.
    node: Option<String>,
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Watch {
    /// Whether an event of an object of `plural` in `namespace` on `node` reaches this watch.
    fn sees(&self, plural: &str, namespace: &str, node: Option<&str>) -> bool {
        self.plural == plural
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && match (&self.node, node) {
                (Some(want), Some(n)) => want == n,
                _ => true,
            }
    }
}

/// One recorded change.
struct Change {
    rv: u64,
    plural: &'static str,
    namespace: String,
    node: Option<String>,
    /// The event's JSON line.
    event: Bytes,
}

#[derive(Default)]
struct State {
    /// The resourceVersion of the latest change.
    rv: u64,
    /// Watches from a resourceVersion below this are answered with 410 Gone.
    compacted: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Change>,
    watches: Vec<Watch>,
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
    let Some((res, namespace)) = parse_path(&request.path) else {
        shared.lock().requests.push(request);
        shared.changed.notify_waiters();
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")).boxed());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    let node = if res.plural == "pods" {
        node_of_selector(request.query.get("fieldSelector"))
    } else {
        None
    };
    let watch = Watch {
        plural: res.plural,
        namespace,
        node,
        // Replaced below for a watch.
        tx: mpsc::unbounded_channel().0,
    };
    let is_watch = request.is_watch();
    let from: u64 = request
        .query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    let mut st = shared.lock();
    st.requests.push(request);
    let resp = if is_watch {
        let (tx, rx) = mpsc::unbounded_channel();
        if from < st.compacted {
            let _ = tx.send(line(&gone_event()));
            // The sender drops here: the stream ends after the error, as the server's does.
        } else {
            for c in &st.history {
                if c.rv > from && watch.sees(c.plural, &c.namespace, c.node.as_deref()) {
                    let _ = tx.send(c.event.clone());
                }
            }
            st.watches.push(Watch { tx, ..watch });
        }
        Response::new(ChannelBody(rx).boxed())
    } else {
        let items: Vec<Value> = st
            .objects
            .iter()
            .filter(|((plural, ns, _), object)| {
                watch.sees(plural, ns, node_of(plural, object).as_deref())
            })
            .map(|(_, object)| object.clone())
            .collect();
        let list = json!({
            "kind": format!("{}List", res.kind), "apiVersion": res.api_version,
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

    /// Records an event and sends it to the open watches that see it.
    fn publish(st: &mut State, key: &Key, node: Option<String>, event: Value) {
        let rv = st.rv;
        let bytes = line(&event);
        let (plural, namespace) = (key.0, key.1.clone());
        st.watches.retain(|w| {
            if !w.sees(plural, &namespace, node.as_deref()) {
                return !w.tx.is_closed();
            }
            w.tx.send(bytes.clone()).is_ok()
        });
        st.history.push(Change {
            rv,
            plural,
            namespace,
            node,
            event: bytes,
        });
    }

    /// Adds or replaces an object of resource `plural` (`pods`, `nodes`, `services`,
    /// `endpoints`, `endpointslices`, `ingresses`): `kind`, `apiVersion` and a new
    /// `metadata.resourceVersion` are filled in; `metadata.name` (and `metadata.namespace`
    /// for namespaced resources) must be set. Sends `ADDED` or `MODIFIED`.
    pub fn apply(&self, plural: &str, mut object: Value) {
        let res = resource(plural);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        let namespace = if res.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .expect("metadata.namespace")
                .to_owned()
        } else {
            String::new()
        };
        let mut st = self.shared.lock();
        st.rv += 1;
        object["kind"] = json!(res.kind);
        object["apiVersion"] = json!(res.api_version);
        object["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        let key: Key = (res.plural, namespace, name);
        let kind = if st.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.objects.insert(key.clone(), object.clone());
        let node = node_of(res.plural, &object);
        Self::publish(&mut st, &key, node, json!({"type": kind, "object": object}));
    }

    /// Deletes an object (a `DELETED` event carrying its last state); `namespace` is ignored
    /// for nodes.
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let res = resource(plural);
        let namespace = if res.namespaced { namespace } else { "" };
        let key: Key = (res.plural, namespace.to_owned(), name.to_owned());
        let mut st = self.shared.lock();
        let Some(mut object) = st.objects.remove(&key) else {
            return;
        };
        st.rv += 1;
        object["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        let node = node_of(res.plural, &object);
        Self::publish(
            &mut st,
            &key,
            node,
            json!({"type": "DELETED", "object": object}),
        );
    }

    /// Adds (or replaces) a running pod in namespace `default` on `node` with one container
    /// `main` declaring `ports`.
    pub fn add_pod(&self, name: &str, node: &str, ports: &[i32]) {
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
            .collect();
        self.apply(
            "pods",
            json!({
                "metadata": {
                    "name": name, "namespace": "default", "uid": format!("uid-{name}"),
                    "labels": {"app": name}
                },
                "spec": {"nodeName": node, "containers": [{"name": "main", "image": "img", "ports": ports}]},
                "status": {"podIP": "10.1.2.3", "phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }),
        );
    }

    /// Deletes pod `name` of namespace `default`.
    pub fn delete_pod(&self, name: &str) {
        self.delete("pods", "default", name);
    }

    /// Advances the resourceVersion without a change and sends a `BOOKMARK` with it to the
    /// open watches; returns that resourceVersion.
    pub fn bookmark(&self) -> u64 {
        let mut st = self.shared.lock();
        st.rv += 1;
        let rv = st.rv;
        st.watches.retain(|w| {
            let res = resource(w.plural);
            let event = json!({"type": "BOOKMARK", "object": {
                "kind": res.kind, "apiVersion": res.api_version,
                "metadata": {"resourceVersion": rv.to_string()}
            }});
            w.tx.send(line(&event)).is_ok()
        });
        rv
    }

    /// Ends every open watch stream (cleanly, as a server-side timeout does).
    pub fn close_watches(&self) {
        self.shared.lock().watches.clear();
    }

    /// Deletes pod `name` of namespace `default` without any event (as if its event had been
    /// compacted away), forgets all history, answers the open watches with 410 Gone and ends
    /// them. From now on a watch from an older resourceVersion gets 410 too; only a new list
    /// sees the current state.
    pub fn compact_deleting(&self, name: &str) {
        let mut st = self.shared.lock();
        st.objects
            .remove(&("pods", "default".to_owned(), name.to_owned()));
        st.rv += 1;
        st.compacted = st.rv;
        st.history.clear();
        let gone = line(&gone_event());
        for w in st.watches.drain(..) {
            let _ = w.tx.send(gone.clone());
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
