//! The topology: what runs, per job and per client, and its ordered start and shutdown.
//!
//! [`Topology::start`] builds, in order: metrics → positions (read) → the byte budget → the
//! clients (or the `-dry-run` printer) → one pipeline task per job → discovery (each job's
//! static groups and discoverers) → the sources (the file tailer for file jobs, one Docker
//! source per `docker_sd_configs` job) → the HTTP server → the positions writer.
//!
//! [`Topology::stop`], within `ferrotail.shutdown_timeout`: stop discovery and reading → let
//! the pipelines drain (each source's return drops its senders) → flush every client (normal
//! retry policy) → final positions write → answers still owed to senders written (at most
//! 5 s). If the deadline passes first, every tracker is frozen and every receipt abandoned
//! *before* the clients are told to give up, so entries abandoned in flight are not mistaken
//! for acknowledged ones: they are read again at the next start, or their sender is told to
//! send them again (DESIGN.md contracts 2 and 6).
//!
//! Invariants: a job's entries go through its own pipeline instance, whichever source read
//! them; every source shares one byte budget and one positions map; nothing reads before the
//! clients, the pipelines and the positions it commits through exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::ack::Receipts;
use crate::app::RunOptions;
use crate::client::{Clients, DryRunPrinter, Sink};
use crate::config::Config;
use crate::discovery::TargetGroup;
use crate::discovery::docker;
use crate::discovery::file_sd::FileSd;
use crate::discovery::kubernetes::{self, KubernetesSd};
use crate::discovery::targets::{self, JobReport, JobTargets, TargetReport};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pipeline::readline_limit::ReadlineLimiter;
use crate::pipeline::stream_clock::StreamClock;
use crate::positions::{Positions, PositionsWriter};
use crate::server::{Server, Status};
use crate::settings::{self, JobKind};
use crate::sources::docker::DockerSource;
use crate::sources::{Budget, Outputs, Source, SourceContext, SourceEvent};
use crate::tail::{FileStatus, TailStatus, Tailer};

/// Batches of entries queued between a job's sources and its pipeline task.
const PIPELINE_QUEUE: usize = 8;

/// How long the start waits for every discoverer's first answer before tailing (see
/// [`targets::first_set`]).
const DISCOVERY_FIRST_WAIT: Duration = Duration::from_secs(10);

/// Everything that runs, started by [`Topology::start`] and stopped by [`Topology::stop`].
pub struct Topology {
    metrics: Arc<Metrics>,
    positions: Arc<Positions>,
    sink: Arc<Sink>,
    /// Tells the clients to stop retrying (shutdown deadline).
    hard_stop: CancellationToken,
    /// The receipts sources answer their senders by; abandoned with the trackers.
    receipts: Receipts,
    /// One task per job.
    pipelines: JoinSet<()>,
    /// One task per source, and what each is.
    sources: JoinSet<()>,
    source_names: HashMap<Id, String>,
    stop_sources: CancellationToken,
    stop_discovery: CancellationToken,
    stop_server: CancellationToken,
    stop_writer: CancellationToken,
    writer: Option<JoinHandle<()>>,
    gauge: JoinHandle<()>,
    dry_run: bool,
    shutdown_timeout: Duration,
}

/// `/ready`, `/targets` and `/service-discovery` from the file source and discovery.
struct TopologyStatus {
    tail: TailStatus,
    jobs: watch::Receiver<Arc<Vec<JobReport>>>,
    /// Each Docker source's containers, and each other source as one target.
    sources: Vec<watch::Receiver<JobReport>>,
    /// Sources other than files: ready as soon as one exists (Promtail's docker targets are).
    other_sources: bool,
}

impl Status for TopologyStatus {
    fn ready(&self) -> bool {
        self.other_sources || self.tail.files_active() > 0
    }
    fn files(&self) -> Vec<FileStatus> {
        self.tail.files()
    }
    fn jobs(&self) -> Arc<Vec<JobReport>> {
        let files = Arc::clone(&self.jobs.borrow());
        if self.sources.is_empty() {
            return files;
        }
        let mut all: Vec<JobReport> = files.as_ref().clone();
        all.extend(self.sources.iter().map(|r| r.borrow().clone()));
        Arc::new(all)
    }
}

impl Topology {
    /// Starts everything `cfg` describes, in the order of the module doc.
    pub async fn start(cfg: &Config, opts: &RunOptions) -> anyhow::Result<Topology> {
        let metrics = Arc::new(Metrics::new());

        // `-stdin`: only the first job's pipeline, fed by standard input; no other source, and
        // no positions (standard input cannot be read again).
        let stdin = cfg.target_config.stdin;
        let jobs = if stdin {
            if cfg.scrape_configs.len() > 1 {
                tracing::warn!(
                    skipped = cfg.scrape_configs.len() - 1,
                    "-stdin uses the first scrape config only; the others are skipped."
                );
            }
            &cfg.scrape_configs[..cfg.scrape_configs.len().min(1)]
        } else {
            &cfg.scrape_configs[..]
        };
        let pos_settings = settings::positions(cfg, opts.dry_run || stdin);
        let positions = {
            let (s, m) = (pos_settings.clone(), Arc::clone(&metrics));
            tokio::task::spawn_blocking(move || Positions::open(&s, m))
                .await
                .context("opening the positions file")??
        };

        let budget = Budget::new(
            usize::try_from(cfg.ferrotail.inflight_bytes.bytes())
                .unwrap_or(usize::MAX)
                .max(64 * 1024),
        );
        metrics.inflight_budget_bytes.set(budget.size() as i64);

        let hard_stop = CancellationToken::new();
        let sink = if opts.dry_run {
            print_clients(cfg);
            Sink::DryRun(DryRunPrinter::stdout())
        } else {
            let clients = settings::clients(cfg)?;
            Sink::Loki(
                Clients::start(clients, Arc::clone(&metrics), hard_stop.clone())
                    .context("starting the Loki clients")?,
            )
        };
        let sink = Arc::new(sink);

        // Promtail's `limits_config.readline_rate_*`: one bucket for every job, after the
        // pipelines.
        let readline_limit = settings::readline_limit(cfg, &metrics);
        let mut outputs: Outputs = HashMap::new();
        let mut pipelines = JoinSet::new();
        let stdin_default = settings::stdin_default_job();
        let pipeline_jobs = if stdin && jobs.is_empty() {
            std::slice::from_ref(&stdin_default)
        } else {
            jobs
        };
        for (i, sc) in pipeline_jobs.iter().enumerate() {
            let pipeline = Pipeline::new(
                &sc.job_name,
                &sc.pipeline_stages,
                &format!("scrape_configs[{i}].pipeline_stages"),
                Arc::clone(&metrics),
            )?;
            let (tx, rx) = mpsc::channel(PIPELINE_QUEUE);
            outputs.insert(sc.job_name.clone(), tx);
            pipelines.spawn(run_pipeline(
                pipeline,
                rx,
                Arc::clone(&sink),
                readline_limit.clone(),
            ));
        }

        // Discovery: each job's static groups and discoverers. File jobs' targets follow what
        // their discoverers publish (the tailer applies each set by difference); a Docker job's
        // containers are its source's targets.
        let stop_discovery = CancellationToken::new();
        let host = settings::hostname();
        let mut file_jobs = Vec::new();
        let mut sources: Vec<(Box<dyn Source>, Outputs)> = Vec::new();
        let mut source_reports = Vec::new();
        if stdin && let Some(sc) = pipeline_jobs.first() {
            let labels = settings::stdin_labels(sc);
            let source = crate::sources::stdin::StdinSource::new(&sc.job_name, labels);
            let output = outputs
                .get(&sc.job_name)
                .map(|tx| HashMap::from([(sc.job_name.clone(), tx.clone())]))
                .unwrap_or_default();
            sources.push((Box::new(source), output));
        }
        for (i, sc) in jobs.iter().enumerate().filter(|_| !stdin) {
            let output = || -> Outputs {
                outputs
                    .get(&sc.job_name)
                    .map(|tx| HashMap::from([(sc.job_name.clone(), tx.clone())]))
                    .unwrap_or_default()
            };
            match settings::job_kind(sc) {
                JobKind::Files => {
                    let mut discovered = Vec::new();
                    for (j, raw) in sc.kubernetes_sd_configs.iter().flatten().enumerate() {
                        // Validated at load; this only fails if that check and this one
                        // disagree.
                        let k8s = kubernetes::settings_from_yaml(raw, &host).map_err(|e| {
                            anyhow::anyhow!("scrape_configs[{i}].kubernetes_sd_configs[{j}]: {e}")
                        })?;
                        discovered.push(spawn_discoverer(&stop_discovery, |tx, stop| {
                            KubernetesSd::new(k8s).run(tx, stop)
                        }));
                    }
                    for fsd in sc.file_sd_configs.iter().flatten() {
                        let sd = FileSd::new(
                            fsd.files.clone(),
                            fsd.refresh_interval.0,
                            Arc::clone(&metrics),
                        );
                        discovered.push(spawn_discoverer(&stop_discovery, |tx, stop| {
                            sd.run(tx, stop)
                        }));
                    }
                    file_jobs.push(JobTargets {
                        job: sc.job_name.clone(),
                        rules: settings::relabel_rules(&sc.relabel_configs),
                        static_groups: settings::static_groups(sc),
                        discovered,
                    });
                }
                JobKind::Docker(docker) => {
                    for (j, raw) in docker.iter().enumerate() {
                        // Validated at load; this only fails if that check and this one
                        // disagree.
                        let d = docker::settings_from_yaml(raw).map_err(|e| {
                            anyhow::anyhow!("scrape_configs[{i}].docker_sd_configs[{j}]: {e}")
                        })?;
                        let (report_tx, report) = watch::channel(JobReport {
                            job: sc.job_name.clone(),
                            ..JobReport::default()
                        });
                        source_reports.push(report);
                        let source = DockerSource::start(
                            &sc.job_name,
                            d,
                            settings::relabel_rules(&sc.relabel_configs),
                            settings::docker_max_line(cfg),
                            &metrics,
                            &stop_discovery,
                            report_tx,
                        );
                        sources.push((Box::new(source), output()));
                    }
                }
                JobKind::Other(key, raw) => {
                    let source = crate::sources::bind(
                        key,
                        &sc.job_name,
                        raw,
                        settings::relabel_rules(&sc.relabel_configs),
                        &metrics,
                    )
                    .await
                    .with_context(|| format!("scrape_configs[{i}].{key}"))?;
                    let (_, report) =
                        watch::channel(source_report(&sc.job_name, raw, &source.describe()));
                    source_reports.push(report);
                    sources.push((source, output()));
                }
            }
        }
        let other_sources = !sources.is_empty();
        let (first, first_report) =
            targets::first_set(&mut file_jobs, &host, &metrics, DISCOVERY_FIRST_WAIT).await;
        let (targets_tx, file_targets) = watch::channel(first);
        let (reports_tx, reports) = watch::channel(Arc::new(first_report));
        tokio::spawn(targets::run(
            file_jobs,
            host,
            Arc::clone(&metrics),
            targets_tx,
            reports_tx,
            stop_discovery.clone(),
        ));
        let tailer = Tailer::new(file_targets, settings::tail(cfg));
        let status = tailer.status();
        // The tailer feeds every job: a file job's targets name it.
        sources.insert(0, (Box::new(tailer), outputs));

        let stop_server = CancellationToken::new();
        if !cfg.server.disable {
            let server = Server::bind(
                &settings::server(cfg)?,
                Arc::clone(&metrics),
                Arc::new(TopologyStatus {
                    tail: status,
                    jobs: reports,
                    sources: source_reports,
                    other_sources,
                }),
                cfg.to_yaml_masked(),
            )
            .await
            .context("starting the HTTP server")?;
            tracing::info!(address = %server.local_addr()?, tls = server.is_tls(), "Server listening.");
            tokio::spawn(server.run(stop_server.clone()));
        }

        let stop_writer = CancellationToken::new();
        let writer = (!opts.dry_run && !stdin).then(|| {
            tokio::spawn(
                PositionsWriter::new(Arc::clone(&positions), pos_settings.sync_period)
                    .run(stop_writer.clone()),
            )
        });
        let gauge = {
            let (m, b) = (Arc::clone(&metrics), budget.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    m.inflight_bytes.set(b.in_use() as i64);
                }
            })
        };

        let stop_sources = CancellationToken::new();
        let receipts = Receipts::default();
        let mut running = JoinSet::new();
        let mut source_names = HashMap::new();
        for (source, outputs) in sources {
            let name = source.describe();
            let ctx = SourceContext {
                outputs,
                budget: budget.clone(),
                positions: Arc::clone(&positions),
                metrics: Arc::clone(&metrics),
                shutdown: stop_sources.clone(),
                receipts: receipts.clone(),
            };
            let id = running.spawn(source.run(ctx)).id();
            source_names.insert(id, name);
        }

        Ok(Topology {
            metrics,
            positions,
            sink,
            hard_stop,
            receipts,
            pipelines,
            sources: running,
            source_names,
            stop_sources,
            stop_discovery,
            stop_server,
            stop_writer,
            writer,
            gauge,
            dry_run: opts.dry_run || stdin,
            shutdown_timeout: cfg.ferrotail.shutdown_timeout.as_std(),
        })
    }

    /// The process metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Resolves when a source returned before shutdown (sources run until told to stop), with
    /// what it was; never resolves while every source runs.
    pub async fn source_ended(&mut self) -> String {
        match self.sources.join_next_with_id().await {
            Some(Ok((id, ()))) => self.source_names.remove(&id).unwrap_or_default(),
            Some(Err(e)) => {
                let name = self.source_names.remove(&e.id()).unwrap_or_default();
                format!("{name} ({e})")
            }
            None => std::future::pending().await,
        }
    }

    /// Stops everything in the order of the module doc, within `shutdown_timeout`.
    pub async fn stop(mut self) {
        let deadline = Instant::now() + self.shutdown_timeout;
        self.stop_discovery.cancel();
        self.stop_sources.cancel();
        let drained = tokio::time::timeout_at(deadline.into(), async {
            while self.sources.join_next().await.is_some() {}
            while self.pipelines.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        let flushed = if drained {
            match Arc::try_unwrap(self.sink) {
                Ok(sink) => {
                    let mut flush = tokio::spawn(sink.shutdown());
                    tokio::select! {
                        _ = &mut flush => true,
                        _ = tokio::time::sleep_until(deadline.into()) => {
                            give_up(&self.positions, &self.receipts, &self.hard_stop);
                            let _ = tokio::time::timeout(Duration::from_secs(5), flush).await;
                            false
                        }
                    }
                }
                Err(_) => false,
            }
        } else {
            false
        };
        if !flushed {
            give_up(&self.positions, &self.receipts, &self.hard_stop);
            self.sources.abort_all();
            self.pipelines.abort_all();
            tracing::warn!(
                "Shutdown deadline reached with entries in flight; they will be read again at the next start."
            );
        }

        self.stop_writer.cancel();
        if let Some(w) = self.writer {
            let _ = w.await;
        }
        self.gauge.abort();
        if !self.dry_run {
            let p = Arc::clone(&self.positions);
            match tokio::task::spawn_blocking(move || p.save()).await {
                Ok(Ok(())) => {}
                // Already logged and counted by save(); the positions file keeps its last value.
                Ok(Err(_)) => {}
                Err(e) => tracing::error!(error = %e, "Final positions write did not run."),
            }
        }
        self.stop_server.cancel();
        // Senders waiting for a delivery answer (loki_push_api with ack_after_delivery) get it
        // before the process exits: 204 for what the flush delivered, 503 for what was
        // abandoned. Bounded: a sender that stopped reading cannot hold the exit.
        if !self.receipts.answered(ANSWER_GRACE).await {
            tracing::warn!("Some senders were not answered before exit; they will send again.");
        }
    }
}

/// How long the exit waits for answers still to be written to senders.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// How `/targets` shows a source that is its own target (a listener, the journal): one active
/// target whose path says what the source is and where it listens, with the job's `labels`
/// (what Promtail's syslog, push, GELF, Heroku and journal targets list as their labels).
fn source_report(job: &str, raw: &serde_yaml::Mapping, describe: &str) -> JobReport {
    let labels = raw
        .get("labels")
        .and_then(|v| crate::units::de::text_map(v.clone()).ok())
        .unwrap_or_default();
    // "syslog job=x listen=127.0.0.1:1514": the job is the report's own field.
    let source = describe.replacen(&format!(" job={job}"), "", 1);
    JobReport {
        job: job.to_owned(),
        active: vec![TargetReport {
            // The pages' "Path" column says what is read (as "docker container <id>" does).
            path: source.clone(),
            source,
            discovered_labels: labels.clone(),
            labels,
            ..TargetReport::default()
        }],
        ..JobReport::default()
    }
}

/// Starts one discoverer publishing on a new channel; returns the receiving end.
fn spawn_discoverer<F, Fut>(stop: &CancellationToken, run: F) -> watch::Receiver<Vec<TargetGroup>>
where
    F: FnOnce(watch::Sender<Vec<TargetGroup>>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(run(tx, stop.clone()));
    rx
}

/// Promtail's `-dry-run` banner: each client's config (secrets masked).
fn print_clients(cfg: &Config) {
    println!("Clients configured:");
    let masked: serde_yaml::Value =
        serde_yaml::from_str(&cfg.to_yaml_masked()).unwrap_or(serde_yaml::Value::Null);
    for key in ["clients", "client"] {
        let list = match masked.get(key) {
            Some(serde_yaml::Value::Sequence(items)) => items.clone(),
            Some(v @ serde_yaml::Value::Mapping(_)) => vec![v.clone()],
            _ => continue,
        };
        for c in list {
            println!("----------------------");
            print!("{}", serde_yaml::to_string(&c).unwrap_or_default());
        }
    }
}

/// Freezes every committed position and abandons every receipt, then tells the clients to
/// stop retrying: in that order, so that nothing the clients drop can look delivered.
fn give_up(positions: &Positions, receipts: &Receipts, hard_stop: &CancellationToken) {
    positions.freeze_all();
    receipts.abandon_all();
    hard_stop.cancel();
}

/// Runs one job's pipeline on the events of its readers until the channel closes, then sends
/// on whatever buffering stages still hold. What comes out goes through the read-line rate
/// limit, if any, and gets distinct read-time timestamps per stream on its way to the sink.
async fn run_pipeline(
    mut pipeline: Pipeline,
    mut rx: mpsc::Receiver<SourceEvent>,
    sink: Arc<Sink>,
    limit: Option<Arc<ReadlineLimiter>>,
) {
    let mut out = Vec::new();
    let mut clock = StreamClock::new();
    let blocking = pipeline.may_block();
    let mut flush_tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = rx.recv() => {
                match event {
                    None => break,
                    Some(SourceEvent::Entries(batch)) => {
                        if blocking {
                            // A `limit` stage that waits for its rate would stall a runtime
                            // worker; hand the worker's other tasks away while this one blocks.
                            tokio::task::block_in_place(|| {
                                for e in batch {
                                    pipeline.process(e, &mut out);
                                }
                            });
                        } else {
                            for e in batch {
                                pipeline.process(e, &mut out);
                            }
                        }
                    }
                    Some(SourceEvent::Released(labels)) => pipeline.flush_stream(&labels, &mut out),
                }
            }
            _ = flush_tick.tick() => {
                pipeline.flush(Instant::now(), &mut out);
            }
        }
        if let Some(limit) = &limit {
            limit.admit(&mut out).await;
        }
        if !out.is_empty() {
            clock.stamp(&mut out);
            sink.send(std::mem::take(&mut out)).await;
        }
    }
    pipeline.flush_all(&mut out);
    if let Some(limit) = &limit {
        limit.admit(&mut out).await;
    }
    if !out.is_empty() {
        clock.stamp(&mut out);
        sink.send(out).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::client::DryRunPrinter;
    use crate::entry::{Ack, Entry, LabelSet, Timestamp};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entries(labels: &LabelSet, lines: &[&'static str]) -> SourceEvent {
        SourceEvent::Entries(
            lines
                .iter()
                .map(|l| Entry::new(labels.clone(), Timestamp(0), Bytes::from(*l), Ack::none()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_released_file_sends_on_what_its_stream_holds() {
        let stages: Vec<serde_yaml::Value> =
            serde_yaml::from_str("- multiline:\n    firstline: '^F'\n").unwrap();
        let pipeline = Pipeline::new("j", &stages, "p", Arc::new(Metrics::new())).unwrap();
        let captured = Captured::default();
        let sink = Arc::new(Sink::DryRun(DryRunPrinter::new(
            Box::new(captured.clone()),
            false,
        )));
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(run_pipeline(pipeline, rx, Arc::clone(&sink), None));
        let a = LabelSet::from_pairs([("filename", "a.log")]);
        let b = LabelSet::from_pairs([("filename", "b.log")]);
        tx.send(entries(&a, &["F a", "a2"])).await.unwrap();
        tx.send(entries(&b, &["F b", "b2"])).await.unwrap();
        tx.send(SourceEvent::Released(a.clone())).await.unwrap();
        // a's stream is gone: this line passes through instead of joining a's block.
        tx.send(entries(&a, &["late"])).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let pos = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"))
        };
        assert!(pos("F a\na2") < pos("late"), "{text}");
        assert!(pos("late") < pos("F b\nb2"), "{text}");
        assert!(!text.contains("a2\nlate"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_readline_limit_applies_after_the_pipeline() {
        // The limit counts what leaves the pipeline: a multiline block is one line.
        let stages: Vec<serde_yaml::Value> =
            serde_yaml::from_str("- multiline:\n    firstline: '^F'\n").unwrap();
        let metrics = Arc::new(Metrics::new());
        let pipeline = Pipeline::new("j", &stages, "p", Arc::clone(&metrics)).unwrap();
        let captured = Captured::default();
        let sink = Arc::new(Sink::DryRun(DryRunPrinter::new(
            Box::new(captured.clone()),
            false,
        )));
        let limit = Arc::new(ReadlineLimiter::new(1.0, 2, true, &metrics));
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(run_pipeline(pipeline, rx, sink, Some(limit)));
        let a = LabelSet::from_pairs([("filename", "a.log")]);
        tx.send(entries(&a, &["F1", "x", "F2", "y", "F3", "F4"]))
            .await
            .unwrap();
        drop(tx);
        task.await.unwrap();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("F1\nx") && text.contains("F2\ny"), "{text}");
        assert!(!text.contains("F3") && !text.contains("F4"), "{text}");
        let dropped = metrics
            .logentry_dropped_lines
            .with_label_values(&["global_rate_limiter_drop"])
            .get();
        assert_eq!(dropped, 2);
    }
}
