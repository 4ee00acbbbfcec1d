//! Sources: what reads entries and hands them to the jobs' pipelines — the file tailer
//! ([`crate::tail::Tailer`]) and Docker container logs ([`docker`]); the journal, syslog and
//! push sources plug in the same way.
//!
//! A source is a [`Source`]: the topology ([`crate::topology`]) gives it a [`SourceContext`]
//! (the channels of the jobs it feeds, the shared byte [`Budget`], the positions, the metrics
//! and its shutdown token) and runs it as one task.
//!
//! The contract every source keeps (DESIGN.md contracts 2 and 3):
//! - every entry carries an [`Ack`](crate::ack::Ack) from the source's tracker (a file's
//!   [`Tracker`](crate::ack::Tracker), a [`Cursor`](crate::ack::Cursor) attached through
//!   [`PositionMap::attach_cursor`](crate::positions::PositionMap::attach_cursor), or a [`receipt`](crate::ack::receipt) for a source with
//!   nothing to replay from), and its position moves only when those entries are finished;
//! - it takes budget permits for what it reads before reading more, and they return when the
//!   entries are finished: memory in flight is bounded whatever the input rate;
//! - at shutdown it stops reading, hands on what it has read, and returns: dropping its output
//!   senders is what lets the pipelines finish. Its trackers stay attached, so what the clients
//!   acknowledge during the flush still moves positions.

pub mod docker;
pub mod gelf;
pub mod heroku;
pub mod journal;
pub mod push;
pub mod rfc5424;
pub mod stdin;
pub mod syslog;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::entry::{Entry, LabelSet};
use crate::metrics::Metrics;
use crate::positions::Positions;

/// What a source sends to a job's pipeline task: the same for every kind of source.
#[derive(Debug)]
pub enum SourceEvent {
    /// Entries read together (one read chunk of a file, one batch of container log lines), in
    /// source order.
    Entries(Vec<Entry>),
    /// A stream ended (a file deleted or no longer matched, a container stopped): nothing more
    /// will come from the stream with these initial labels until it is read again, so
    /// buffering stages send on what they hold for it.
    Released(LabelSet),
}

/// The channel of each job a source feeds, by job name.
pub type Outputs = HashMap<String, mpsc::Sender<SourceEvent>>;

/// The byte budget every source takes permits from (one permit per byte in flight,
/// DESIGN.md contract 3).
#[derive(Clone, Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    size: usize,
}

impl Budget {
    /// A budget of `bytes` (at least 1, at most what a semaphore holds).
    pub fn new(bytes: usize) -> Self {
        let size = bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Budget {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes taken now.
    pub fn in_use(&self) -> usize {
        self.size - self.permits.available_permits()
    }

    /// The semaphore behind it.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// Waits for `bytes` permits (no more than the whole budget, so one large read cannot wait
    /// forever). `None` only if the semaphore was closed.
    pub async fn acquire(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = bytes.clamp(1, self.size) as u32;
        Arc::clone(&self.permits).acquire_many_owned(n).await.ok()
    }

    /// Takes `bytes` permits only if they are free now (no more than the whole budget, as
    /// [`Budget::acquire`]): `None` when they are not, for a source that tells its sender to
    /// come back later rather than waiting (the push API answers 429).
    pub fn try_acquire(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = bytes.clamp(1, self.size) as u32;
        Arc::clone(&self.permits).try_acquire_many_owned(n).ok()
    }
}

/// What a running source is given.
#[derive(Clone)]
pub struct SourceContext {
    /// The channels of the jobs it feeds.
    pub outputs: Outputs,
    /// The shared byte budget.
    pub budget: Budget,
    /// The positions map it commits through.
    pub positions: Arc<Positions>,
    /// The process metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the source must stop reading.
    pub shutdown: CancellationToken,
    /// Where a source that answers its senders after delivery takes its receipts, so that
    /// the shutdown deadline abandons them before the clients drop what they hold.
    pub receipts: crate::ack::Receipts,
}

impl SourceContext {
    /// The channel of `job`'s pipeline. `None`, logged naming the source (`what`), when the
    /// topology gave the source no such job: the source then does not run.
    pub fn output(&self, job: &str, what: &str) -> Option<mpsc::Sender<SourceEvent>> {
        let out = self.outputs.get(job).cloned();
        if out.is_none() {
            tracing::error!(
                job,
                "The {what} source has no pipeline to feed; it does not run."
            );
        }
        out
    }
}

/// The severity keywords of syslog's levels 0 to 7 (go-syslog's `SeverityLevel`), which
/// Promtail's syslog and GELF targets both use for their level labels.
pub const SEVERITY_KEYWORDS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

/// A source of entries, run as one task by the topology.
pub trait Source: Send + 'static {
    /// What it is, for logs ("file tailer", "docker_sd job=containers").
    fn describe(&self) -> String;

    /// Reads until `ctx.shutdown`, keeping the contract of the module doc, then returns.
    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Checks the settings of the non-file source `key` (`syslog`, `loki_push_api`, ...), as
/// validation does at load: `None` when ferrotail has no such source yet.
pub fn check(key: &str, raw: &serde_yaml::Mapping) -> Option<Result<(), String>> {
    // Each source's module adds its arm here.
    match key {
        "journal" => Some(journal::check(raw)),
        "syslog" => Some(syslog::check(raw)),
        "gelf" => Some(gelf::check(raw)),
        "heroku_drain" => Some(heroku::check(raw)),
        "loki_push_api" => Some(push::check(raw)),
        _ => None,
    }
}

/// Builds (and binds: listeners are opened here, so that a port in use fails the start) the
/// non-file source `key` of job `job`, with the job's relabel rules.
pub async fn bind(
    key: &str,
    job: &str,
    raw: &serde_yaml::Mapping,
    rules: Vec<crate::discovery::relabel::Rule>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Box<dyn Source>> {
    // Each source's module adds its arm here.
    match key {
        "journal" => Ok(Box::new(journal::JournalSource::new(
            job,
            journal::settings_from_yaml(raw).map_err(anyhow::Error::msg)?,
            rules,
        ))),
        "syslog" => syslog::bind(job, raw, rules, metrics).await,
        "gelf" => Ok(Box::new(
            gelf::GelfSource::bind(job, raw, rules, metrics).await?,
        )),
        "heroku_drain" => Ok(Box::new(
            heroku::HerokuSource::bind(job, raw, rules, metrics).await?,
        )),
        "loki_push_api" => push::bind(job, raw, rules, metrics).await,
        _ => anyhow::bail!("{key} is not supported yet"),
    }
}
