//! The Loki client: fan-out to every configured client, per-client batching per tenant and
//! stream, protobuf + snappy encoding, and delivery with retry and back-off (spec §8).
//!
//! ```text
//!  Clients::send ─► client 1 input (bounded) ─► Batcher ─► tenant queues ─► deliveries (≤ concurrency)
//!                └► client 2 input (bounded) ─► Batcher ─► ...
//! ```
//!
//! At least once: every client gets its own clone of each entry, and an entry's [`Ack`] clone is
//! dropped only after that client's batch got a 2xx, was rejected for good (4xx other than 429),
//! was dropped by policy (retries exhausted, `drop_rate_limited_batches`, `max_line_size`,
//! `max_streams`), each counted in `promtail_dropped_entries_total{reason}`, or at the hard stop
//! (when the caller has frozen the trackers). So a source's position passes an entry only when
//! every client is done with it.
//!
//! Backpressure: [`Clients::send`] waits while a client's input queue is full; a client stops
//! taking input while [`QUEUED_BATCHES_LIMIT`] sealed batches wait for a sender. One
//! tenant in retry does not delay other tenants' batches, and one client in retry does not
//! delay the others until its queues are full (Promtail serves clients one after the other, spec
//! §12 #20).
//!
//! [`Ack`]: crate::entry::Ack

mod backoff;
mod batch;
mod batcher;
mod dry_run;
pub mod proto;
mod sender;
mod settings;
mod tls;
mod transport;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use batcher::QUEUED_BATCHES_LIMIT;
pub use dry_run::DryRunPrinter;
pub use proto::{DecodeError, PushRequest, decode_push};
pub use settings::{Auth, BackoffSettings, ClientSettings, PemSource, Secret, TlsSettings};
pub use transport::USER_AGENT_VALUE;

use crate::entry::Entry;
use crate::metrics::Metrics;
use batcher::{BatchConfig, Batcher};
use sender::SendContext;
use transport::HttpTransport;

/// Messages (each a `Vec<Entry>` from one `send` call) a client's input queue holds.
const INPUT_QUEUE: usize = 8;

/// A client that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No client is configured.
    #[error("at least one client must be configured")]
    NoClients,
    /// Two clients have the same name.
    #[error("duplicate client name {0:?}: every client needs a distinct name")]
    DuplicateName(String),
    /// The URL is unusable.
    #[error("client {client}: url {url}: {problem}")]
    Url {
        /// Client name.
        client: String,
        /// The URL (password masked).
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// A file named in the settings cannot be read.
    #[error("client {client}: cannot read {what} {}: {source}", path.display())]
    ReadFile {
        /// Client name.
        client: String,
        /// The setting, e.g. `tls_config.ca_file`.
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS settings are unusable.
    #[error("client {client}: tls_config: {problem}")]
    Tls {
        /// Client name.
        client: String,
        /// What is wrong (names the file or setting).
        problem: String,
    },
    /// A custom header is invalid.
    #[error("client {client}: header {name:?}: {problem}")]
    Header {
        /// Client name.
        client: String,
        /// The header name as configured.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The proxy URL is unusable.
    #[error("client {client}: proxy_url {url}: {source}")]
    Proxy {
        /// Client name.
        client: String,
        /// The proxy URL (password masked).
        url: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// reqwest refused the configuration.
    #[error("client {client}: cannot build the HTTP client: {source}")]
    Build {
        /// Client name.
        client: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
}

/// Every configured Loki client, fed with the same entries.
#[derive(Debug)]
pub struct Clients {
    inputs: Vec<mpsc::Sender<Vec<Entry>>>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

impl Clients {
    /// Starts one batcher task per client (must be called inside a Tokio runtime). Every
    /// client's settings are checked (TLS files, proxy, headers) before any task starts.
    /// `hard_stop` ends all retrying at once; cancel it only after freezing the trackers.
    pub fn start(
        settings: Vec<ClientSettings>,
        metrics: Arc<Metrics>,
        hard_stop: CancellationToken,
    ) -> Result<Clients, ClientError> {
        if settings.is_empty() {
            return Err(ClientError::NoClients);
        }
        let mut names = HashSet::new();
        let mut prepared = Vec::with_capacity(settings.len());
        for s in settings {
            if !names.insert(s.name.clone()) {
                return Err(ClientError::DuplicateName(s.name));
            }
            let transport = HttpTransport::new(&s)?;
            prepared.push((s, transport));
        }
        let mut inputs = Vec::with_capacity(prepared.len());
        let mut tasks = Vec::with_capacity(prepared.len());
        for (s, transport) in prepared {
            let host = s.host_label();
            metrics.init_client(&host);
            let ctx = Arc::new(SendContext {
                transport,
                metrics: Arc::clone(&metrics),
                host,
                name: s.name.clone(),
                backoff: s.backoff,
                drop_rate_limited: s.drop_rate_limited_batches,
                hard_stop: hard_stop.clone(),
            });
            let cfg = BatchConfig {
                batch_wait: s.batch_wait,
                batch_size: s.batch_size,
                tenant_id: s.tenant_id.clone().unwrap_or_default(),
                external_labels: s.external_labels.clone(),
                max_line_size: s.max_line_size.unwrap_or(0),
                max_line_size_truncate: s.max_line_size_truncate,
                max_streams: s.max_streams,
                concurrency: s.concurrency.max(1),
            };
            let (tx, rx) = mpsc::channel(INPUT_QUEUE);
            inputs.push(tx);
            tasks.push((s.name, tokio::spawn(Batcher::new(cfg, ctx, rx).run())));
        }
        Ok(Clients { inputs, tasks })
    }

    /// Hands the entries to every client (a clone each), waiting while a client's input queue
    /// is full.
    pub async fn send(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let last = self.inputs.len().saturating_sub(1);
        let mut entries = Some(entries);
        for (i, input) in self.inputs.iter().enumerate() {
            let batch = if i == last {
                entries.take().unwrap_or_default()
            } else {
                entries.clone().unwrap_or_default()
            };
            if input.send(batch).await.is_err() {
                // Only after the hard stop (or a crashed task): the entries are abandoned.
                tracing::error!(client = %self.tasks[i].0, "The client has stopped; entries were not handed to it.");
            }
        }
    }

    /// Stops taking entries and waits until every pending batch is delivered or dropped (with
    /// the normal retry policy), or until the hard stop.
    pub async fn shutdown(self) {
        drop(self.inputs);
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(client = %name, error = %e, "A client task failed.");
            }
        }
    }
}

/// Where entries go after the pipeline: the Loki clients, or stdout with `-dry-run`.
#[derive(Debug)]
pub enum Sink {
    /// Push to Loki.
    Loki(Clients),
    /// Print instead of pushing.
    DryRun(DryRunPrinter),
}

impl Sink {
    /// Hands entries on (see [`Clients::send`] and [`DryRunPrinter::send`]).
    pub async fn send(&self, entries: Vec<Entry>) {
        match self {
            Sink::Loki(c) => c.send(entries).await,
            Sink::DryRun(p) => p.send(entries).await,
        }
    }

    /// Flushes and stops (see [`Clients::shutdown`]).
    pub async fn shutdown(self) {
        match self {
            Sink::Loki(c) => c.shutdown().await,
            Sink::DryRun(p) => p.shutdown().await,
        }
    }
}
