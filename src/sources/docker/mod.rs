//! The Docker source (`docker_sd_configs`, spec §4.9): container logs read through the engine
//! API, one task per container.
//!
//! The job's Docker discovery ([`crate::discovery::docker`]) publishes target groups; each
//! container (`__meta_docker_container_id`; the first target of a container wins, as Promtail
//! keeps one target per container) gets a task that follows its log from the saved cursor
//! ([`engine`], [`frames`]). Each entry's labels are the container's discovered labels plus
//! `__meta_docker_container_log_stream` (`stdout`/`stderr`) through the job's relabel rules,
//! then without `__` labels (computed once per container and stream); its timestamp is
//! Docker's.
//!
//! Positions: `cursor-<container id>` holds the Unix seconds of the last entry, as Promtail's
//! (so a positions file can go back and forth between them), but committed through an
//! [`ack::Cursor`](crate::ack::Cursor): it moves only over entries every client has
//! acknowledged, never over lines merely handed on. A restart asks Docker for `since=<saved
//! seconds>`, so the entries of that second are sent again with the same timestamps and lines,
//! which Loki keeps once.
//!
//! Invariants:
//! - lines are read in batches as they are ready; each batch takes budget permits for its
//!   bytes before it is handed on, and returns them when its entries are finished;
//! - a container's task ends when its log stream ends (the container stopped) or at shutdown;
//!   a container discovered again later (restarted) gets a new task from its committed cursor;
//!   one that is no longer discovered keeps its task until its stream ends (Promtail never
//!   removes a Docker target either);
//! - an engine error is logged naming the container and retried at the next discovery
//!   refresh, from the committed cursor: nothing read is skipped.

pub mod engine;
pub mod frames;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use self::engine::{DockerError, Engine};
use self::frames::{LogLine, LogStream};
use super::{Budget, Source, SourceContext, SourceEvent};
use crate::ack::Cursor;
use crate::discovery::TargetGroup;
use crate::discovery::docker::{CONTAINER_ID_LABEL, DockerSd, DockerSdSettings};
use crate::discovery::relabel::{Rule, process};
use crate::discovery::targets::{JobReport, TargetReport};
use crate::entry::{Entry, LabelSet, Stamp, Timestamp};
use crate::metrics::Metrics;
use crate::positions::Positions;

/// Most lines handed on as one batch (one acknowledgement, one budget request).
const MAX_BATCH: usize = 1024;

/// Shortest wait before a container whose stream failed is tried again.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// The positions key of a container (Promtail's).
pub fn position_key(container_id: &str) -> String {
    format!("cursor-{container_id}")
}

/// The Docker source of one `docker_sd_configs` element of a job.
pub struct DockerSource {
    job: String,
    settings: DockerSdSettings,
    rules: Arc<Vec<Rule>>,
    max_line: usize,
    groups: watch::Receiver<Vec<TargetGroup>>,
    /// What `/targets` and `/service-discovery` show of this source's containers.
    report: watch::Sender<JobReport>,
}

impl DockerSource {
    /// Starts the discovery of `settings` (stopped by `stop_discovery`) and returns the
    /// source that reads the logs of what it finds, for job `job` with its relabel `rules`;
    /// lines longer than `max_line` are cut there (Promtail's docker target limit).
    pub fn start(
        job: &str,
        settings: DockerSdSettings,
        rules: Vec<Rule>,
        max_line: usize,
        metrics: &Arc<Metrics>,
        stop_discovery: &CancellationToken,
        report: watch::Sender<JobReport>,
    ) -> Self {
        let (tx, groups) = watch::channel(Vec::new());
        tokio::spawn(
            DockerSd::new(settings.clone(), Arc::clone(metrics)).run(tx, stop_discovery.clone()),
        );
        DockerSource {
            job: job.to_string(),
            settings,
            rules: Arc::new(rules),
            max_line,
            groups,
            report,
        }
    }

    async fn run_source(mut self, ctx: SourceContext) {
        let Some(output) = ctx.output(&self.job, "Docker") else {
            return;
        };
        let engine = match Engine::connect(&self.settings, Arc::clone(&ctx.metrics)) {
            Ok(engine) => engine,
            Err(e) => {
                tracing::error!(job = %self.job, error = %e, "Cannot use the Docker engine; no container logs are read for this job.");
                ctx.shutdown.cancelled().await;
                return;
            }
        };
        let shared = Arc::new(Shared {
            job: self.job.clone(),
            engine,
            rules: Arc::clone(&self.rules),
            max_line: self.max_line,
            output,
            budget: ctx.budget.clone(),
            positions: Arc::clone(&ctx.positions),
            metrics: Arc::clone(&ctx.metrics),
            shutdown: ctx.shutdown.clone(),
        });
        let mut tasks: JoinSet<Result<(), DockerError>> = JoinSet::new();
        let mut running: HashMap<Id, String> = HashMap::new();
        let mut latest: Vec<TargetGroup> = Vec::new();
        // Containers are tried again at this pace when their stream ended or failed while
        // discovery still lists them (a restarted container keeps its id and its groups).
        let retry = self.settings.refresh_interval.max(MIN_RETRY);
        let mut tick = tokio::time::interval(retry);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut updates = true;
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                changed = self.groups.changed(), if updates => {
                    if changed.is_err() {
                        updates = false;
                        continue;
                    }
                    latest = self.groups.borrow_and_update().clone();
                    self.report.send_replace(report(&self.job, &latest, &self.rules));
                    start_new(&shared, &latest, &mut tasks, &mut running);
                }
                _ = tick.tick() => start_new(&shared, &latest, &mut tasks, &mut running),
                Some(ended) = tasks.join_next_with_id() => {
                    let (id, result) = match ended {
                        Ok((id, r)) => (id, r.map_err(|e| e.to_string())),
                        Err(e) => (e.id(), Err(e.to_string())),
                    };
                    let container = running.remove(&id).unwrap_or_default();
                    if let Err(e) = result {
                        tracing::warn!(job = %self.job, container = %container, error = %e, "Reading a container's log failed; it is tried again from its committed position.");
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl Source for DockerSource {
    fn describe(&self) -> String {
        format!("docker_sd job={}", self.job)
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_source(ctx))
    }
}

/// What every container task of one source shares.
struct Shared {
    job: String,
    engine: Engine,
    rules: Arc<Vec<Rule>>,
    max_line: usize,
    output: mpsc::Sender<SourceEvent>,
    budget: Budget,
    positions: Arc<Positions>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// Starts a task for each container of `groups` that has none (the first target of a
/// container gives its labels).
fn start_new(
    shared: &Arc<Shared>,
    groups: &[TargetGroup],
    tasks: &mut JoinSet<Result<(), DockerError>>,
    running: &mut HashMap<Id, String>,
) {
    for group in groups {
        for address in &group.targets {
            let Some(id) = group.labels.get(CONTAINER_ID_LABEL) else {
                continue;
            };
            if running.values().any(|r| r == id) {
                continue;
            }
            let mut labels = group.labels.clone();
            labels.insert("__address__".to_string(), address.clone());
            let task = tasks.spawn(follow(Arc::clone(shared), id.clone(), labels));
            running.insert(task.id(), id.clone());
        }
    }
}

/// What becomes of each discovered target: a container's first target is read (its labels:
/// those of its `stdout` entries), a container dropped by the rules for both streams is
/// `dropped`, a container's further targets are `exists`.
pub fn report(job: &str, groups: &[TargetGroup], rules: &[Rule]) -> JobReport {
    let mut out = JobReport {
        job: job.to_string(),
        ..JobReport::default()
    };
    let mut seen = std::collections::HashSet::new();
    for group in groups {
        for address in &group.targets {
            let mut discovered = group.labels.clone();
            discovered.insert("__address__".to_string(), address.clone());
            let id = discovered
                .get(CONTAINER_ID_LABEL)
                .cloned()
                .unwrap_or_default();
            let mut t = TargetReport {
                source: group.source.clone(),
                path: format!("docker container {}", id.get(..12).unwrap_or(&id)),
                ..TargetReport::default()
            };
            let streams = [LogStream::Stdout, LogStream::Stderr]
                .map(|s| stream_labels(&discovered, s, rules));
            t.discovered_labels = discovered;
            let reason = if !seen.insert(id) {
                Some("exists")
            } else if streams.iter().all(Option::is_none) {
                Some("dropped")
            } else {
                None
            };
            match reason {
                Some(r) => out.drop_target(t, r),
                None => {
                    let labels = streams.into_iter().flatten().next().unwrap_or_default();
                    t.labels = labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    out.active.push(t);
                }
            }
        }
    }
    out
}

/// The labels of a container's entries from one of its streams: its discovered labels plus
/// `__meta_docker_container_log_stream`, through the rules, without `__` labels. `None`:
/// dropped by a rule.
pub fn stream_labels(
    discovered: &BTreeMap<String, String>,
    stream: LogStream,
    rules: &[Rule],
) -> Option<LabelSet> {
    let mut labels = discovered.clone();
    labels.insert(
        "__meta_docker_container_log_stream".to_string(),
        stream.as_str().to_string(),
    );
    if !process(rules, &mut labels) {
        return None;
    }
    labels.retain(|k, _| !k.starts_with("__"));
    Some(LabelSet::from_pairs(labels))
}

/// Follows one container's log from its committed position until its stream ends or the
/// shutdown, handing lines on in batches.
async fn follow(
    shared: Arc<Shared>,
    id: String,
    discovered: BTreeMap<String, String>,
) -> Result<(), DockerError> {
    let cursor = shared.positions.attach_cursor(&position_key(&id));
    let since = resume_since(&cursor);
    let tty = shared.engine.container_tty(&id).await?;
    let stdout = stream_labels(&discovered, LogStream::Stdout, &shared.rules);
    let stderr = stream_labels(&discovered, LogStream::Stderr, &shared.rules);
    if stdout.as_ref().is_some_and(LabelSet::is_empty) {
        tracing::warn!(job = %shared.job, container = %id, "The container's entries have no labels after relabeling; Loki refuses them (add relabel_configs that keep a label, as with Promtail).");
    }
    tracing::info!(job = %shared.job, container = %id, since, tty, "Reading the container's log.");
    let lines = shared
        .engine
        .logs(&id, since, tty, shared.max_line)
        .ready_chunks(MAX_BATCH);
    tokio::pin!(lines);
    let mut result = Ok(());
    loop {
        let batch = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            next = lines.next() => match next {
                Some(batch) => batch,
                None => break,
            },
        };
        let mut read = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(line) => read.push(line),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let sent = hand_on(&shared, &cursor, read, [&stdout, &stderr]).await;
        if !sent || result.is_err() {
            break;
        }
    }
    for labels in [stdout, stderr].into_iter().flatten() {
        // Buffering stages send on what they hold for the container's streams.
        let _ = shared.output.send(SourceEvent::Released(labels)).await;
    }
    result
}

/// Where a container's log is read from: Promtail's saved Unix seconds (the entries of that
/// second are read again), or its whole history.
fn resume_since(cursor: &Cursor<String>) -> i64 {
    cursor
        .committed()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .max(0)
}

/// Hands one batch of lines on, as entries sharing one acknowledgement that commits the
/// seconds of the batch's last line. Returns false when reading must stop (shutdown while
/// waiting for budget, or the pipeline is gone): what was not handed on is read again from
/// the committed position.
async fn hand_on(
    shared: &Shared,
    cursor: &Cursor<String>,
    lines: Vec<LogLine>,
    labels: [&Option<LabelSet>; 2],
) -> bool {
    let Some(last) = lines.last() else {
        return true;
    };
    let bytes: usize = lines.iter().map(|l| l.line.len()).sum();
    let permit = tokio::select! {
        _ = shared.shutdown.cancelled() => return false,
        p = shared.budget.acquire(bytes) => p,
    };
    let ack = cursor.chunk(
        last.timestamp_ns.div_euclid(1_000_000_000).to_string(),
        permit,
    );
    let n = lines.len() as u64;
    let entries: Vec<Entry> = lines
        .into_iter()
        .filter_map(|l| {
            let stream_labels = match l.stream {
                LogStream::Stdout => labels[0],
                LogStream::Stderr => labels[1],
            };
            let mut e = Entry::new(
                stream_labels.clone()?,
                Timestamp(l.timestamp_ns),
                l.line,
                ack.clone(),
            );
            e.stamp = Stamp::Given;
            Some(e)
        })
        .collect();
    shared.metrics.docker_target_entries.inc_by(n);
    drop(ack);
    entries.is_empty()
        || shared
            .output
            .send(SourceEvent::Entries(entries))
            .await
            .is_ok()
}
