//! The syslog source (`syslog` scrape config, spec §4.7): a TCP (optionally TLS) or UDP
//! listener that parses RFC 5424 or RFC 3164 messages into entries.
//!
//! Per message, as Promtail: the job's `labels`, `__syslog_connection_ip_address`,
//! `__syslog_connection_hostname` (when the rules can see it, [`peer_name`]) and the
//! `__syslog_message_*` labels of the message (with `label_structured_data`, one
//! `__syslog_message_sd_<id>_<param>` per structured data parameter, `@` in the id becoming
//! `_`) go through the job's relabel rules (a drop drops the message); labels starting with
//! `__` are then removed. The line is MSG (with `use_rfc5424_message`, the whole RFC 5424
//! message as received); the timestamp is the message's with `use_incoming_timestamp` when it
//! has one, else the read time. Messages without MSG are counted
//! (`promtail_syslog_empty_messages_total`) and dropped; messages that do not parse are counted
//! (`promtail_syslog_target_parsing_errors_total`) and dropped; a stream that cannot be framed
//! is counted the same way and its connection closed.
//!
//! Invariants:
//! - syslog has nothing to replay from: entries carry a [`receipt`] that holds the budget
//!   permits of their bytes, and nothing is acknowledged to the sender;
//! - a connection takes budget permits for what one read produced before it reads again, so
//!   when the budget is full (a slow or failing Loki) reading pauses and TCP pushes back on
//!   the sender; memory per connection is one read buffer plus at most `max_message_length`
//!   bytes of a partial message;
//! - the listener is bound by [`bind`], so a port in use fails the start;
//! - at shutdown the listener stops accepting, connections stop reading, what was read is
//!   handed on, and `run` returns once every connection task has.

pub mod framing;
pub mod parse;
pub mod peer_name;
pub mod settings;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use self::framing::{Frame, Framer};
use self::parse::{Message, parse_rfc3164, parse_rfc5424};
pub use self::settings::{Format, Protocol, SyslogSettings, check};
use super::{Budget, Source, SourceContext, SourceEvent};
use crate::discovery::relabel::{Rule, process};
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;

/// Bytes asked of the socket per read.
const READ_BUFFER: usize = 64 * 1024;

/// Promtail's syslog counters (and one of ferrotail's), registered once per metrics registry.
#[derive(Clone)]
pub struct SyslogMetrics {
    /// `promtail_syslog_target_entries_total`: entries handed on.
    pub entries: IntCounter,
    /// `promtail_syslog_target_parsing_errors_total`: messages (or streams) that did not parse.
    pub parsing_errors: IntCounter,
    /// `promtail_syslog_empty_messages_total`: messages without MSG, dropped.
    pub empty_messages: IntCounter,
    /// `ferrotail_syslog_truncated_messages_total`: messages cut at `max_message_length`.
    pub truncated: IntCounter,
}

impl SyslogMetrics {
    /// The syslog counters on `metrics`' registry, shared by every syslog job (registered on
    /// first use).
    pub fn on(metrics: &Metrics) -> Self {
        SyslogMetrics {
            entries: metrics.shared_counter(
                "promtail_syslog_target_entries_total",
                "Total number of successful entries sent to the syslog target",
            ),
            parsing_errors: metrics.shared_counter(
                "promtail_syslog_target_parsing_errors_total",
                "Total number of parsing errors while receiving syslog messages",
            ),
            empty_messages: metrics.shared_counter(
                "promtail_syslog_empty_messages_total",
                "Total number of empty messages receiving from syslog",
            ),
            truncated: metrics.shared_counter(
                "ferrotail_syslog_truncated_messages_total",
                "Syslog messages longer than max_message_length, cut there",
            ),
        }
    }
}

enum Listener {
    Tcp(TcpListener, Option<TlsAcceptor>),
    Udp(UdpSocket),
}

/// The syslog source of one job.
pub struct SyslogSource {
    job: String,
    settings: Arc<SyslogSettings>,
    rules: Arc<Vec<Rule>>,
    metrics: SyslogMetrics,
    listener: Listener,
    local: SocketAddr,
}

/// Parses `raw` and binds its listener for job `job`: a port in use, an address that does
/// not resolve or a TLS file that does not load fails here, naming the address or the file.
pub async fn bind(
    job: &str,
    raw: &serde_yaml::Mapping,
    rules: Vec<Rule>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Box<dyn Source>> {
    let settings = settings::parse(raw).map_err(|e| anyhow::anyhow!(e))?;
    SyslogSource::bind(job, settings, rules, metrics)
        .await
        .map(|s| Box::new(s) as Box<dyn Source>)
}

/// Go's `:port` means every interface.
fn listen_address(address: &str) -> String {
    if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_owned()
    }
}

fn tls_acceptor(tls: &settings::TlsFiles) -> anyhow::Result<TlsAcceptor> {
    use crate::client::{PemSource, Secret};
    use crate::server::tls::{ClientAuth, MinVersion, ServerTlsSettings, server_config};
    let s = ServerTlsSettings {
        cert: PemSource::File(tls.cert_file.clone()),
        key: Secret::File(tls.key_file.clone()),
        client_auth: if tls.ca_file.is_some() {
            ClientAuth::RequireAndVerifyClientCert
        } else {
            ClientAuth::NoClientCert
        },
        client_ca: tls.ca_file.clone().map(PemSource::File),
        min_version: MinVersion::Tls12,
        tls12_suites: None,
    };
    let config =
        server_config(&s).map_err(|e| anyhow::anyhow!("tls_config.{}: {}", e.origin, e.problem))?;
    // The HTTP server's config announces http/1.1; syslog has no application protocol.
    let mut config = (*config).clone();
    config.alpn_protocols.clear();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl SyslogSource {
    /// Binds the listener of `settings` (see [`bind`]).
    pub async fn bind(
        job: &str,
        settings: SyslogSettings,
        rules: Vec<Rule>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let address = listen_address(&settings.listen_address);
        let listener = match settings.protocol {
            Protocol::Tcp => {
                let tls = settings.tls.as_ref().map(tls_acceptor).transpose()?;
                let l = TcpListener::bind(&address)
                    .await
                    .with_context(|| format!("cannot listen for syslog on {address} (tcp)"))?;
                Listener::Tcp(l, tls)
            }
            Protocol::Udp => Listener::Udp(
                UdpSocket::bind(&address)
                    .await
                    .with_context(|| format!("cannot listen for syslog on {address} (udp)"))?,
            ),
        };
        let local = match &listener {
            Listener::Tcp(l, _) => l.local_addr(),
            Listener::Udp(u) => u.local_addr(),
        }
        .with_context(|| format!("syslog listener on {address}"))?;
        tracing::info!(job, address = %local, protocol = ?settings.protocol, tls = settings.tls.is_some(), "syslog listening on address");
        Ok(SyslogSource {
            job: job.to_owned(),
            settings: Arc::new(settings),
            rules: Arc::new(rules),
            metrics: SyslogMetrics::on(metrics),
            listener,
            local,
        })
    }

    /// The bound address (the port chosen when `listen_address` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn run_source(self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "syslog") else {
            return;
        };
        let peer_names = peer_name::needed_by(&self.rules);
        let shared = Arc::new(Shared {
            job: self.job,
            settings: self.settings,
            rules: self.rules,
            metrics: self.metrics,
            output,
            budget: ctx.budget.clone(),
            shutdown: ctx.shutdown.clone(),
            peer_names,
            names: peer_name::Cache::default(),
        });
        match self.listener {
            Listener::Tcp(listener, tls) => accept_loop(shared, listener, tls).await,
            Listener::Udp(socket) => udp_loop(shared, socket).await,
        }
    }
}

impl Source for SyslogSource {
    fn describe(&self) -> String {
        format!("syslog job={} listen={}", self.job, self.local)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_source(ctx))
    }
}

/// What every connection of one source shares.
struct Shared {
    job: String,
    settings: Arc<SyslogSettings>,
    rules: Arc<Vec<Rule>>,
    metrics: SyslogMetrics,
    output: mpsc::Sender<SourceEvent>,
    budget: Budget,
    shutdown: CancellationToken,
    /// The rules can see `__syslog_connection_hostname`: senders' names are looked up.
    peer_names: bool,
    /// UDP senders' names.
    names: peer_name::Cache,
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                conns.spawn(async move {
                    let idle = shared.settings.idle_timeout;
                    match tls {
                        None => read_stream(&shared, stream, peer.ip()).await,
                        Some(acceptor) => {
                            let handshake = tokio::select! {
                                _ = shared.shutdown.cancelled() => return,
                                h = tokio::time::timeout(idle, acceptor.accept(stream)) => h,
                            };
                            match handshake {
                                Ok(Ok(s)) => read_stream(&shared, s, peer.ip()).await,
                                Ok(Err(e)) => {
                                    tracing::warn!(job = %shared.job, peer = %peer, error = %e, "syslog TLS handshake failed");
                                }
                                Err(_) => {
                                    tracing::debug!(job = %shared.job, peer = %peer, "syslog TLS handshake timed out");
                                }
                            }
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(job = %shared.job, error = %e, "failed to accept syslog connection");
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Reads one connection until it ends, idles out, fails to frame, or the shutdown.
async fn read_stream<S: AsyncRead + Unpin>(shared: &Shared, mut stream: S, peer: IpAddr) {
    // One lookup per connection, before its first read, as Promtail.
    let name = if shared.peer_names {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            n = peer_name::lookup(peer) => Some(n),
        }
    } else {
        None
    };
    let mut labeler = Labeler::new(shared, peer, name);
    let mut framer = Framer::new(shared.settings.max_message_length);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut frames = Vec::new();
    loop {
        let read = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = tokio::time::timeout(shared.settings.idle_timeout, stream.read(&mut buf)) => r,
        };
        let ended = match read {
            Err(_) => {
                tracing::debug!(job = %shared.job, peer = %peer, "syslog connection timed out");
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(job = %shared.job, peer = %peer, error = %e, "syslog connection failed");
                true
            }
            Ok(Ok(0)) => true,
            Ok(Ok(n)) => {
                if let Err(e) = framer.push(&buf[..n], &mut frames) {
                    framing_error(shared, peer, &e);
                    hand_on(shared, &mut labeler, &mut frames).await;
                    return;
                }
                false
            }
        };
        if ended && let Err(e) = framer.finish(&mut frames) {
            framing_error(shared, peer, &e);
        }
        if !hand_on(shared, &mut labeler, &mut frames).await || ended {
            return;
        }
    }
    // Shutdown: what was framed was handed on already; a partial message is lost, as in
    // Promtail (the sender never got an acknowledgement for it either).
}

fn framing_error(shared: &Shared, peer: IpAddr, e: &framing::FramingError) {
    tracing::warn!(job = %shared.job, peer = %peer, error = %e, "error parsing syslog stream");
    shared.metrics.parsing_errors.inc();
}

async fn udp_loop(shared: Arc<Shared>, socket: UdpSocket) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut frames = Vec::new();
    // One labeler per sender (its IP is a label); the last one is kept, as senders mostly
    // come back-to-back.
    let mut labeler: Option<(IpAddr, Labeler)> = None;
    loop {
        let (n, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors and the like: nothing was received.
                    tracing::debug!(job = %shared.job, error = %e, "failed to read syslog packet");
                    continue;
                }
            },
        };
        let ip = peer.ip();
        let l = match &mut labeler {
            Some((cached, l)) if *cached == ip && l.fresh() => l,
            _ => {
                let name = if shared.peer_names {
                    Some(shared.names.name(ip).await)
                } else {
                    None
                };
                &mut labeler.insert((ip, Labeler::new(&shared, ip, name))).1
            }
        };
        // Each datagram holds whole messages: framing starts afresh and ends with it.
        let mut framer = Framer::new(shared.settings.max_message_length);
        let result = framer
            .push(&buf[..n], &mut frames)
            .and_then(|()| framer.finish(&mut frames));
        if let Err(e) = result {
            framing_error(&shared, ip, &e);
        }
        if !hand_on(&shared, l, &mut frames).await {
            break;
        }
    }
}

/// Turns parsed messages into label sets, reusing the last result while the labels repeat
/// (entries of one sender then share one allocation).
struct Labeler {
    base: BTreeMap<String, String>,
    last: Option<(BTreeMap<String, String>, Option<LabelSet>)>,
    /// When the sender's name was looked up (a UDP sender's is looked up again later).
    named_at: Option<std::time::Instant>,
}

impl Labeler {
    /// `name`: the sender's looked-up name, when the rules can see it.
    fn new(shared: &Shared, peer: IpAddr, name: Option<String>) -> Self {
        let mut base = shared.settings.labels.clone();
        base.insert(
            "__syslog_connection_ip_address".to_owned(),
            peer.to_canonical().to_string(),
        );
        let named_at = name.is_some().then(std::time::Instant::now);
        if let Some(name) = name {
            base.insert(peer_name::LABEL.to_owned(), name);
        }
        Labeler {
            base,
            last: None,
            named_at,
        }
    }

    /// Whether its sender's name (if any) is recent enough to reuse.
    fn fresh(&self) -> bool {
        self.named_at
            .is_none_or(|t| t.elapsed() < peer_name::CACHE_TTL)
    }

    /// The entry labels of `m`: `None` when a rule drops it.
    fn labels(&mut self, shared: &Shared, m: &Message<'_>) -> Option<LabelSet> {
        let mut l = self.base.clone();
        let mut set = |k: &str, v: &str| {
            l.insert(k.to_owned(), v.to_owned());
        };
        set("__syslog_message_severity", m.severity_keyword());
        set("__syslog_message_facility", m.facility_keyword());
        for (k, v) in [
            ("__syslog_message_hostname", m.hostname),
            ("__syslog_message_app_name", m.app_name),
            ("__syslog_message_proc_id", m.proc_id),
            ("__syslog_message_msg_id", m.msg_id),
        ] {
            if let Some(v) = v {
                set(k, v);
            }
        }
        if shared.settings.label_structured_data {
            for (id, params) in &m.structured_data {
                let id = id.replace('@', "_");
                for (name, value) in params {
                    l.insert(format!("__syslog_message_sd_{id}_{name}"), value.clone());
                }
            }
        }
        if let Some((input, out)) = &self.last
            && *input == l
        {
            return out.clone();
        }
        let input = l.clone();
        let out = process(&shared.rules, &mut l).then(|| {
            l.retain(|k, _| !k.starts_with("__"));
            LabelSet::from_pairs(l)
        });
        self.last = Some((input, out.clone()));
        out
    }
}

/// Parses `frames` (draining them) into entries and hands them on with budget permits for
/// their bytes. Returns false when the pipeline is gone.
async fn hand_on(shared: &Shared, labeler: &mut Labeler, frames: &mut Vec<Frame>) -> bool {
    if frames.is_empty() {
        return true;
    }
    let now = Timestamp::now();
    let today = chrono::Utc::now();
    let mut entries = Vec::with_capacity(frames.len());
    let (mut errors, mut empty, mut truncated) = (0u64, 0u64, 0u64);
    for frame in frames.drain(..) {
        truncated += u64::from(frame.truncated);
        let parsed = match shared.settings.format {
            Format::Rfc5424 => parse_rfc5424(&frame.data),
            Format::Rfc3164 => parse_rfc3164(&frame.data, today),
        };
        let m = match parsed {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(job = %shared.job, error = %e, "error parsing syslog message");
                errors += 1;
                continue;
            }
        };
        let Some(msg) = m.message else {
            empty += 1;
            continue;
        };
        let Some(labels) = labeler.labels(shared, &m) else {
            continue;
        };
        let line =
            if shared.settings.use_rfc5424_message && shared.settings.format == Format::Rfc5424 {
                frame.data.clone()
            } else {
                frame.data.slice_ref(msg)
            };
        let mut entry = Entry::new(labels, now, line, crate::ack::Ack::none());
        if shared.settings.use_incoming_timestamp
            && let Some(ts) = m.timestamp
        {
            entry.timestamp = Timestamp(ts);
            entry.stamp = Stamp::Given;
        }
        entries.push(entry);
    }
    shared.metrics.parsing_errors.inc_by(errors);
    shared.metrics.empty_messages.inc_by(empty);
    shared.metrics.truncated.inc_by(truncated);
    if entries.is_empty() {
        return true;
    }
    let bytes: usize = entries.iter().map(|e| e.line.len()).sum();
    // Waiting here keeps the connection from being read: the sender's writes stall in TCP.
    // At shutdown what was read is handed on without waiting (one read at most).
    let permit = tokio::select! {
        biased;
        p = shared.budget.acquire(bytes) => p,
        _ = shared.shutdown.cancelled() => None,
    };
    let (ack, _delivered) = crate::ack::receipt(permit);
    let n = entries.len() as u64;
    for e in &mut entries {
        e.ack = ack.clone();
    }
    drop(ack);
    let sent = shared
        .output
        .send(SourceEvent::Entries(entries))
        .await
        .is_ok();
    if sent {
        shared.metrics.entries.inc_by(n);
    }
    sent
}
