//! A fake Docker engine for the `docker_sd_configs` tests: HTTP/1.1 on a Unix socket in a
//! temporary directory, answering as Docker 27 does (API 1.45, any `/vX.Y/` prefix or none):
//! `GET /_ping`, `/version`, `/containers/json` (running containers; `filters` on `id`, `name`
//! and `label`, in the list or the old map form), `/containers/{id}/json` (inspect, with
//! `Config.Tty`), `/networks`, and `/containers/{id}/logs`.
//!
//! Logs are kept as Docker's json-file driver keeps them: messages of at most 16 KiB with a
//! timestamp each, a long line split into several messages with the same timestamp and a `\n`
//! on the last one only. `/logs` honours `stdout`, `stderr`, `timestamps`, `since` (Unix
//! seconds, fractional allowed: messages at or after it) and `follow`; it answers with the
//! multiplexed stream (an 8-byte header per message), or the raw stream for a TTY container.
//! A followed log gets the messages written later as they come, and ends when the container
//! stops ([`FakeDocker::stop`]). Every request is recorded; waits are bounded and fail with a
//! clear message.

#![allow(dead_code)] // each test binary uses a different part of the fake

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ferrotail::sources::docker::frames::LogStream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// The API version the fake reports.
pub const API_VERSION: &str = "1.45";

/// The longest message Docker's log driver stores; longer lines are split.
const MESSAGE_MAX: usize = 16 * 1024;

/// One request as received.
#[derive(Clone, Debug)]
pub struct DockerRequest {
    /// The path as sent (with its `/vX.Y` prefix, if any).
    pub path: String,
    /// The path without the version prefix.
    pub route: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
}

/// A container to add to the fake.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Its ID.
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// Whether it runs with a TTY.
    pub tty: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.NetworkMode`.
    pub network_mode: String,
    /// Its networks: (name, network ID, IP address).
    pub networks: Vec<(String, String, String)>,
    /// Its ports: (private, public (0: not published), type).
    pub ports: Vec<(u16, u16, String)>,
}

impl ContainerSpec {
    /// A container on the default bridge network at `ip`, without ports or labels.
    pub fn new(id: &str, name: &str, ip: &str) -> Self {
        ContainerSpec {
            id: id.to_owned(),
            name: name.to_owned(),
            tty: false,
            labels: BTreeMap::new(),
            network_mode: "bridge".to_owned(),
            networks: vec![("bridge".to_owned(), "net-bridge".to_owned(), ip.to_owned())],
            ports: Vec::new(),
        }
    }

    /// With a TTY.
    pub fn tty(mut self) -> Self {
        self.tty = true;
        self
    }

    /// With a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.to_owned(), v.to_owned());
        self
    }

    /// Attached to one more network.
    pub fn network(mut self, name: &str, id: &str, ip: &str) -> Self {
        self.networks
            .push((name.to_owned(), id.to_owned(), ip.to_owned()));
        self
    }

    /// With a port (`public` 0: not published).
    pub fn port(mut self, private: u16, public: u16, kind: &str) -> Self {
        self.ports.push((private, public, kind.to_owned()));
        self
    }

    /// In host networking mode (Docker then lists only the `host` network, without an IP).
    pub fn host_network(mut self) -> Self {
        self.network_mode = "host".to_owned();
        self.networks = vec![("host".to_owned(), "net-host".to_owned(), String::new())];
        self
    }

    /// The container as `GET /containers/json` lists it.
    fn summary(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(private, public, kind)| {
                if *public > 0 {
                    json!({"IP": "0.0.0.0", "PrivatePort": private, "PublicPort": public, "Type": kind})
                } else {
                    json!({"PrivatePort": private, "Type": kind})
                }
            })
            .collect();
        let networks: serde_json::Map<String, Value> = self
            .networks
            .iter()
            .map(|(name, id, ip)| {
                let endpoint = json!({
                    "IPAMConfig": null, "Links": null, "Aliases": null,
                    "MacAddress": if ip.is_empty() { "" } else { "02:42:ac:11:00:02" },
                    "DriverOpts": null, "NetworkID": id, "EndpointID": format!("ep-{id}"),
                    "Gateway": if ip.is_empty() { "" } else { "172.17.0.1" },
                    "IPAddress": ip, "IPPrefixLen": if ip.is_empty() { 0 } else { 16 },
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                    "DNSNames": null,
                });
                (name.clone(), endpoint)
            })
            .collect();
        json!({
            "Id": self.id,
            "Names": [format!("/{}", self.name)],
            "Image": "example/app:1.0",
            "ImageID": "sha256:5d1b2c7e0f",
            "Command": "/app --serve",
            "Created": 1_714_550_000,
            "Ports": ports,
            "Labels": self.labels,
            "State": "running",
            "Status": "Up 2 hours",
            "HostConfig": {"NetworkMode": self.network_mode},
            "NetworkSettings": {"Networks": networks},
            "Mounts": [],
        })
    }
}

/// One stored log message.
#[derive(Clone, Debug)]
struct Message {
    stream: LogStream,
    time_ns: i64,
    /// The text, with its `\n` when it ends a line.
    text: Bytes,
}

/// An open log request of a container.
struct Follower {
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    tx: mpsc::UnboundedSender<Bytes>,
}

struct Container {
    spec: ContainerSpec,
    running: bool,
    log: Vec<Message>,
    followers: Vec<Follower>,
}

#[derive(Default)]
struct State {
    /// In creation order; listed newest first, as Docker does.
    containers: Vec<Container>,
    networks: Vec<Value>,
    requests: Vec<DockerRequest>,
}

impl State {
    fn container(&mut self, id_or_name: &str) -> Option<&mut Container> {
        self.containers
            .iter_mut()
            .find(|c| c.spec.id == id_or_name || c.spec.name == id_or_name)
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

/// The running fake; stops when dropped.
pub struct FakeDocker {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response body fed by a channel: a log stream that ends when the sender is dropped.
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

/// Docker's `RFC3339NanoFixed` timestamp.
pub fn docker_time(time_ns: i64) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let nanos = time_ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
        .unwrap_or_default()
}

/// What `/logs` sends for one message.
fn encode(m: &Message, tty: bool, timestamps: bool) -> Bytes {
    let mut payload = Vec::with_capacity(m.text.len() + 32);
    if timestamps {
        payload.extend_from_slice(docker_time(m.time_ns).as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&m.text);
    if tty {
        return Bytes::from(payload);
    }
    let kind = match m.stream {
        LogStream::Stdout => 1,
        LogStream::Stderr => 2,
    };
    let mut out = vec![kind, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Bytes::from(out)
}

fn wants(f: &Follower, stream: LogStream) -> bool {
    match stream {
        LogStream::Stdout => f.stdout,
        LogStream::Stderr => f.stderr,
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn flag(query: &BTreeMap<String, String>, key: &str) -> bool {
    matches!(
        query.get(key).map(String::as_str),
        Some("1" | "true" | "True")
    )
}

/// `since`: Unix seconds, fractional allowed; 0 or absent: everything.
fn since_ns(query: &BTreeMap<String, String>) -> i64 {
    let Some(s) = query.get("since") else {
        return 0;
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().unwrap_or(0);
    let mut nanos = frac.to_owned();
    nanos.truncate(9);
    while nanos.len() < 9 {
        nanos.push('0');
    }
    secs * 1_000_000_000 + nanos.parse::<i64>().unwrap_or(0)
}

/// The `filters` query parameter: `{"name": ["a"]}` or the older `{"name": {"a": true}}`.
fn filters(query: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let Some(text) = query.get("filters") else {
        return BTreeMap::new();
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                Value::Object(o) => o.into_iter().map(|(k, _)| k).collect(),
                _ => Vec::new(),
            };
            (k, values)
        })
        .collect()
}

/// Docker's filter semantics: values of one filter are alternatives, filters all apply.
fn matches_filters(spec: &ContainerSpec, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(name, values)| {
        values.iter().any(|v| match name.as_str() {
            "id" => spec.id.starts_with(v.as_str()),
            "name" => spec.name.contains(v.as_str()),
            "label" => match v.split_once('=') {
                Some((k, val)) => spec.labels.get(k).is_some_and(|x| x == val),
                None => spec.labels.contains_key(v.as_str()),
            },
            _ => true,
        })
    })
}

fn json_response(status: StatusCode, v: &Value) -> Response<BoxBody<Bytes, Infallible>> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        "api-version",
        hyper::header::HeaderValue::from_static(API_VERSION),
    );
    resp
}

fn not_found(what: &str) -> Response<BoxBody<Bytes, Infallible>> {
    json_response(StatusCode::NOT_FOUND, &json!({"message": what}))
}

/// The path without its `/vX.Y` prefix.
fn route(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/v")
        && let Some((version, tail)) = rest.split_once('/')
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("/{tail}");
    }
    path.to_owned()
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
    let route = route(&path);
    let request = DockerRequest {
        path,
        route: route.clone(),
        query: query.clone(),
    };
    let mut st = shared.lock();
    st.requests.push(request);
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let resp = match segments.as_slice() {
        ["_ping"] => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"OK")).boxed());
            r.headers_mut().insert(
                "api-version",
                hyper::header::HeaderValue::from_static(API_VERSION),
            );
            r
        }
        ["version"] => json_response(
            StatusCode::OK,
            &json!({
                "Platform": {"Name": "Docker Engine - Community"},
                "Version": "27.5.1", "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                "GitCommit": "4c9b3b0", "GoVersion": "go1.22.11", "Os": "linux",
                "Arch": "amd64", "KernelVersion": "6.1.0", "BuildTime": "2025-01-22T13:41:17.000000000+00:00",
            }),
        ),
        ["containers", "json"] => {
            let all = flag(&query, "all");
            let filters = filters(&query);
            let list: Vec<Value> = st
                .containers
                .iter()
                .rev()
                .filter(|c| (all || c.running) && matches_filters(&c.spec, &filters))
                .map(|c| c.spec.summary())
                .collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        ["networks"] => json_response(StatusCode::OK, &Value::Array(st.networks.clone())),
        ["containers", id, "json"] => match st.container(id) {
            Some(c) => json_response(
                StatusCode::OK,
                &json!({
                    "Id": c.spec.id, "Name": format!("/{}", c.spec.name),
                    "State": {"Status": if c.running { "running" } else { "exited" },
                              "Running": c.running},
                    "Config": {"Hostname": "abc", "Tty": c.spec.tty, "OpenStdin": false,
                               "Image": "example/app:1.0", "Labels": c.spec.labels},
                    "HostConfig": {"NetworkMode": c.spec.network_mode, "LogConfig": {"Type": "json-file"}},
                }),
            ),
            None => not_found(&format!("No such container: {id}")),
        },
        ["containers", id, "logs"] => {
            let since = since_ns(&query);
            let follower = Follower {
                stdout: flag(&query, "stdout"),
                stderr: flag(&query, "stderr"),
                timestamps: flag(&query, "timestamps"),
                tx: mpsc::unbounded_channel().0,
            };
            let follow = flag(&query, "follow");
            match st.container(id) {
                None => not_found(&format!("No such container: {id}")),
                Some(_) if !follower.stdout && !follower.stderr => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "Bad parameters: you must choose at least one stream"}),
                ),
                Some(c) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let tty = c.spec.tty;
                    for m in &c.log {
                        if m.time_ns >= since && wants(&follower, m.stream) {
                            let _ = tx.send(encode(m, tty, follower.timestamps));
                        }
                    }
                    if follow && c.running {
                        c.followers.push(Follower { tx, ..follower });
                    }
                    let mut r = Response::new(ChannelBody(rx).boxed());
                    let kind = if tty {
                        "application/vnd.docker.raw-stream"
                    } else {
                        "application/vnd.docker.multiplexed-stream"
                    };
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(kind),
                    );
                    r
                }
            }
        }
        _ => not_found("page not found"),
    };
    drop(st);
    shared.changed.notify_waiters();
    Ok(resp)
}

impl FakeDocker {
    /// Starts the fake on `docker.sock` in a new temporary directory, with the `bridge`, `host`
    /// and `none` networks Docker always has.
    pub async fn start() -> FakeDocker {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake Docker socket");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        {
            let mut st = shared.lock();
            st.networks = vec![
                network_json("bridge", "net-bridge", "bridge", false, &[]),
                network_json("host", "net-host", "host", false, &[]),
                network_json("none", "net-none", "null", false, &[]),
            ];
        }
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
        FakeDocker {
            _dir: dir,
            socket,
            shared,
            server,
        }
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://<socket>`, the `host` of a `docker_sd_configs` entry.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Adds a user-defined network (`labels` as pairs).
    pub fn add_network(&self, name: &str, id: &str, internal: bool, labels: &[(&str, &str)]) {
        self.shared
            .lock()
            .networks
            .push(network_json(name, id, "bridge", internal, labels));
    }

    /// Starts a container (it is listed from now on).
    pub fn run(&self, spec: ContainerSpec) {
        let mut st = self.shared.lock();
        st.containers.retain(|c| c.spec.id != spec.id);
        st.containers.push(Container {
            spec,
            running: true,
            log: Vec::new(),
            followers: Vec::new(),
        });
    }

    /// Stops a container: it is no longer listed and its followed logs end.
    pub fn stop(&self, id: &str) {
        let mut st = self.shared.lock();
        if let Some(c) = st.container(id) {
            c.running = false;
            c.followers.clear();
        }
    }

    /// Stores one message as it is (no newline added) and sends it to the followers.
    fn push(&self, id: &str, m: Message) {
        let mut st = self.shared.lock();
        let Some(c) = st.container(id) else {
            panic!("fake Docker: no container {id}");
        };
        let tty = c.spec.tty;
        c.followers.retain(|f| {
            if !wants(f, m.stream) {
                return !f.tx.is_closed();
            }
            f.tx.send(encode(&m, tty, f.timestamps)).is_ok()
        });
        c.log.push(m);
    }

    /// Writes `text` and a newline as the container's output at `time_ns`: as Docker's log
    /// driver does, a line longer than 16 KiB becomes several messages with the same timestamp,
    /// only the last one ending with `\n`.
    pub fn write_line(&self, id: &str, stream: LogStream, time_ns: i64, text: &str) {
        let bytes = text.as_bytes();
        let mut parts: Vec<&[u8]> = bytes.chunks(MESSAGE_MAX).collect();
        if parts.is_empty() {
            parts.push(b"");
        }
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let mut t = part.to_vec();
            if i == last {
                t.push(b'\n');
            }
            self.push(
                id,
                Message {
                    stream,
                    time_ns,
                    text: Bytes::from(t),
                },
            );
        }
    }

    /// Writes output without a newline (a prompt, or a container's last words).
    pub fn write_partial(&self, id: &str, stream: LogStream, time_ns: i64, text: &str) {
        self.push(
            id,
            Message {
                stream,
                time_ns,
                text: Bytes::copy_from_slice(text.as_bytes()),
            },
        );
    }

    /// Sends raw bytes to the followers of `id` as they are (a malformed frame, say); they are
    /// not stored.
    pub fn send_raw(&self, id: &str, bytes: &[u8]) {
        let mut st = self.shared.lock();
        if let Some(c) = st.container(id) {
            for f in &c.followers {
                let _ = f.tx.send(Bytes::copy_from_slice(bytes));
            }
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<DockerRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many followed log streams `id` has open.
    pub fn followers(&self, id: &str) -> usize {
        let mut st = self.shared.lock();
        st.container(id).map_or(0, |c| {
            c.followers.retain(|f| !f.tx.is_closed());
            c.followers.len()
        })
    }

    /// Waits until a request satisfies `pred`; returns it, or an error after `timeout`.
    pub async fn wait_for_request(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&DockerRequest) -> bool,
    ) -> Result<DockerRequest, String> {
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

fn network_json(
    name: &str,
    id: &str,
    driver: &str,
    internal: bool,
    labels: &[(&str, &str)],
) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "Name": name, "Id": id, "Created": "2024-05-01T09:00:00.123456789Z",
        "Scope": "local", "Driver": driver, "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null,
                 "Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]},
        "Internal": internal, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {},
        "Options": {}, "Labels": labels,
    })
}
