//! The GELF source (`gelf`, spec §4.11): Graylog Extended Log Format messages over UDP, as
//! Promtail's GELF target reads them.
//!
//! Settings: `listen_address` (default `:12201`, every interface), `labels`,
//! `use_incoming_timestamp`; unknown keys are refused. Each datagram goes through
//! [`decode`]: chunks are reassembled (in any order, duplicates ignored, an incomplete message
//! dropped after 5 s and counted), gzip and zlib payloads are inflated, the JSON is read as
//! go-gelf reads it. Each message becomes one entry:
//! - line: the message written back as JSON, as Promtail writes it ([`decode::Message::to_json`]);
//! - labels: the job's `labels` plus `__gelf_message_level` (`emergency` ... `debug`),
//!   `__gelf_message_host`, `__gelf_message_version`, `__gelf_message_facility`, through the
//!   job's relabel rules (a drop drops the entry), then without `__` labels;
//! - timestamp: the message's `timestamp` with `use_incoming_timestamp` (when not 0), else the
//!   time it was read.
//!
//! Invariants:
//! - a datagram that yields no entry is counted (`promtail_gelf_target_parsing_errors_total`;
//!   incomplete messages also by why they were dropped), never a crash;
//! - the datagrams read together are handed on as one batch after taking budget permits for
//!   their lines; while the budget is full nothing is read (UDP has no backpressure: the
//!   kernel's socket buffer then drops what does not fit, as it does for Promtail);
//! - the chunks of incomplete messages are bounded by [`decode::Limits`];
//! - nothing can be read again: entries carry a receipt that only holds their budget permits.
//!   At shutdown reading stops, what was read is handed on, and the source returns.
//!
//! Deliberate difference: Promtail reads at most 1,420 bytes of a datagram (go-gelf's chunk
//! size), so a larger unchunked message fails there; the whole datagram is read here.

pub mod decode;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prometheus::IntCounter;
use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use self::decode::{Defragmenter, Limits, decode_payload};
use super::{Source, SourceContext, SourceEvent};
use crate::ack::{self, Ack};
use crate::discovery::relabel::{Rule, process};
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;
use crate::units::de::{bool11, text, text_map};

/// Promtail's default address.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":12201";

/// Most datagrams handed on as one batch.
const MAX_BATCH: usize = 512;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// The settings of a `gelf` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GelfSettings {
    /// `listen_address`, default `:12201`: `host:port`, an empty host for every interface.
    pub listen_address: String,
    /// `labels`: added to every entry (before relabeling).
    pub labels: BTreeMap<String, String>,
    /// `use_incoming_timestamp`, default false.
    pub use_incoming_timestamp: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawGelf {
    #[serde(deserialize_with = "text")]
    listen_address: String,
    #[serde(deserialize_with = "text_map")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "bool11")]
    use_incoming_timestamp: bool,
}

/// Parses and checks a raw `gelf` block; the error names the problem.
pub fn settings(raw: &serde_yaml::Mapping) -> Result<GelfSettings, String> {
    let raw: RawGelf = crate::units::de::from_value(&serde_yaml::Value::Mapping(raw.clone()))
        .map_err(|e| e.to_string())?;
    for name in raw.labels.keys() {
        if !crate::units::is_legacy_label_name(name) {
            return Err(format!("labels: {name:?} is not a valid label name"));
        }
    }
    let listen_address = if raw.listen_address.is_empty() {
        DEFAULT_LISTEN_ADDRESS.to_string()
    } else {
        raw.listen_address
    };
    split_host_port(&listen_address).map_err(|e| format!("listen_address: {e}"))?;
    Ok(GelfSettings {
        listen_address,
        labels: raw.labels,
        use_incoming_timestamp: raw.use_incoming_timestamp,
    })
}

/// Checks a raw `gelf` block, as validation does at load.
pub fn check(raw: &serde_yaml::Mapping) -> Result<(), String> {
    settings(raw).map(|_| ())
}

/// Splits Go's `host:port` (`[v6]:port` for IPv6; an empty host is every interface, here
/// `0.0.0.0`) into something `bind` resolves.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("{addr:?}: missing port in address"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{addr:?}: invalid port {port:?}"))?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.to_string(),
        None if host.contains(':') => {
            return Err(format!("{addr:?}: too many colons in address"));
        }
        None if host.is_empty() => "0.0.0.0".to_string(),
        None => host.to_string(),
    };
    Ok((host, port))
}

/// The GELF counters (Promtail's two, and why incomplete messages were dropped).
#[derive(Clone)]
struct GelfMetrics {
    entries: IntCounter,
    errors: IntCounter,
    expired: IntCounter,
    evicted: IntCounter,
}

impl GelfMetrics {
    fn new(metrics: &Arc<Metrics>) -> Self {
        GelfMetrics {
            entries: metrics.shared_counter(
                "promtail_gelf_target_entries_total",
                "Total number of successful entries sent to the gelf target",
            ),
            errors: metrics.shared_counter(
                "promtail_gelf_target_parsing_errors_total",
                "Total number of parsing errors while receiving gelf messages",
            ),
            expired: metrics.shared_counter(
                "ferrotail_gelf_chunked_messages_expired_total",
                "Chunked GELF messages dropped because their chunks did not all arrive within 5s (also counted as parsing errors).",
            ),
            evicted: metrics.shared_counter(
                "ferrotail_gelf_chunked_messages_evicted_total",
                "Incomplete chunked GELF messages dropped to keep the chunks held within their bounds (also counted as parsing errors).",
            ),
        }
    }
}

/// A bound GELF listener of one job.
pub struct GelfSource {
    job: String,
    settings: GelfSettings,
    rules: Arc<Vec<Rule>>,
    socket: UdpSocket,
    local: SocketAddr,
    metrics: GelfMetrics,
    limits: Limits,
}

impl GelfSource {
    /// Parses `raw` and binds its UDP socket (an address in use fails, naming it).
    pub async fn bind(
        job: &str,
        raw: &serde_yaml::Mapping,
        rules: Vec<Rule>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<GelfSource> {
        let settings = settings(raw).map_err(anyhow::Error::msg)?;
        let (host, port) = split_host_port(&settings.listen_address).map_err(anyhow::Error::msg)?;
        let socket = UdpSocket::bind((host.as_str(), port)).await.map_err(|e| {
            anyhow::anyhow!("listening for GELF on UDP {}: {e}", settings.listen_address)
        })?;
        let local = socket.local_addr()?;
        tracing::info!(job = %job, address = %local, "Listening for GELF UDP messages.");
        Ok(GelfSource {
            job: job.to_string(),
            settings,
            rules: Arc::new(rules),
            socket,
            local,
            metrics: GelfMetrics::new(metrics),
            limits: Limits::default(),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn run_source(self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "GELF") else {
            return;
        };
        let mut defrag = Defragmenter::new(self.limits);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let mut batch = Vec::new();
            let deadline = defrag.next_deadline();
            let wake = tokio::time::Instant::from_std(
                deadline.unwrap_or_else(|| Instant::now() + self.limits.timeout),
            );
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(wake), if deadline.is_some() => {
                    defrag.expire(Instant::now());
                }
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, _)) => self.take(&buf[..n], &mut defrag, &mut batch),
                    Err(e) => {
                        tracing::warn!(job = %self.job, error = %e, "Reading a GELF datagram failed.");
                        // Whatever it is, do not spin on it.
                        tokio::select! {
                            _ = ctx.shutdown.cancelled() => break,
                            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                        }
                    }
                },
            }
            // What else has arrived is taken with it, without waiting.
            while batch.len() < MAX_BATCH {
                match self.socket.try_recv_from(&mut buf) {
                    Ok((n, _)) => self.take(&buf[..n], &mut defrag, &mut batch),
                    Err(_) => break,
                }
            }
            let (expired, evicted) = defrag.take_dropped();
            if expired + evicted > 0 {
                self.metrics.expired.inc_by(expired);
                self.metrics.evicted.inc_by(evicted);
                self.metrics.errors.inc_by(expired + evicted);
                tracing::debug!(job = %self.job, expired, evicted, "Incomplete GELF messages dropped.");
            }
            if !batch.is_empty() && !hand_on(&ctx, &output, batch).await {
                break;
            }
        }
    }

    /// Decodes one datagram; a complete message becomes an entry of `batch` (unless a relabel
    /// rule drops it).
    fn take(&self, datagram: &[u8], defrag: &mut Defragmenter, batch: &mut Vec<Entry>) {
        let payload = match defrag.push(datagram, Instant::now()) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                self.metrics.errors.inc();
                tracing::debug!(job = %self.job, error = %e, "Bad GELF datagram.");
                return;
            }
        };
        match decode_payload(&payload, self.limits.max_decompressed) {
            Ok(msg) => {
                self.metrics.entries.inc();
                if let Some(e) = entry(&self.settings, &self.rules, &msg) {
                    batch.push(e);
                }
            }
            Err(e) => {
                self.metrics.errors.inc();
                tracing::debug!(job = %self.job, error = %e, "Bad GELF message.");
            }
        }
    }
}

/// The entry of one message (see the module doc); `None` when a relabel rule drops it.
pub fn entry(settings: &GelfSettings, rules: &[Rule], msg: &decode::Message) -> Option<Entry> {
    let mut labels = settings.labels.clone();
    let mut set = |k: &str, v: &str| {
        labels.insert(k.to_string(), v.to_string());
    };
    set("__gelf_message_level", msg.level_keyword().unwrap_or(""));
    set("__gelf_message_host", &msg.host);
    set("__gelf_message_version", &msg.version);
    set("__gelf_message_facility", &msg.facility);
    if !process(rules, &mut labels) {
        return None;
    }
    labels.retain(|k, _| !k.starts_with("__"));
    let line = Bytes::from(msg.to_json());
    let labels = LabelSet::from_pairs(labels);
    if settings.use_incoming_timestamp && msg.timestamp != 0.0 {
        // Go's time.Unix(0, int64(seconds * 1e9)).
        let ns = (msg.timestamp * 1e9) as i64;
        let mut e = Entry::new(labels, Timestamp(ns), line, Ack::none());
        e.stamp = Stamp::Given;
        Some(e)
    } else {
        Some(Entry::new(labels, Timestamp::now(), line, Ack::none()))
    }
}

/// Hands one batch on after taking budget permits for its lines (at shutdown, without
/// waiting for them: what was read is handed on). False when the pipeline is gone or the
/// source must stop.
async fn hand_on(
    ctx: &SourceContext,
    output: &mpsc::Sender<SourceEvent>,
    mut batch: Vec<Entry>,
) -> bool {
    let bytes: usize = batch.iter().map(|e| e.line.len()).sum();
    let (permit, stop) = tokio::select! {
        _ = ctx.shutdown.cancelled() => (None, true),
        p = ctx.budget.acquire(bytes) => (p, false),
    };
    let (receipt, _delivered) = ack::receipt(permit);
    for e in &mut batch {
        e.ack = receipt.clone();
    }
    drop(receipt);
    output.send(SourceEvent::Entries(batch)).await.is_ok() && !stop
}

impl Source for GelfSource {
    fn describe(&self) -> String {
        format!("gelf job={} udp={}", self.job, self.local)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_source(ctx))
    }
}

#[cfg(test)]
mod tests;
