//! Wiring of the parts and the ordered start and shutdown.
//!
//! Start: metrics → positions (read) → clients → one pipeline task per job → tailer → HTTP
//! server → positions writer. Shutdown on SIGTERM/SIGINT, within `ferrotail.shutdown_timeout`:
//! stop reading → let the pipelines drain → flush every client (normal retry policy) → final
//! positions write. If the deadline passes first, every tracker is frozen *before* the clients
//! are told to give up, so entries abandoned in flight are not mistaken for acknowledged ones:
//! they are simply read again at the next start (DESIGN.md contracts 2 and 6).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::{Clients, DryRunPrinter, Sink};
use crate::config::Config;
use crate::discovery::file_sd::FileSd;
use crate::discovery::kubernetes::{self, KubernetesSd};
use crate::discovery::targets::{self, JobReport, JobTargets};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pipeline::readline_limit::ReadlineLimiter;
use crate::pipeline::stream_clock::StreamClock;
use crate::positions::{Positions, PositionsWriter};
use crate::server::{Server, Status};
use crate::settings;
use crate::tail::{FileStatus, TailEvent, TailStatus, Tailer};

/// How the process was asked to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `-dry-run`: print entries instead of pushing them; never write positions.
    pub dry_run: bool,
}

/// Batches of entries queued between a job's readers and its pipeline task.
const PIPELINE_QUEUE: usize = 8;

/// How long the start waits for every discoverer's first answer before tailing (see
/// [`targets::first_set`]).
const DISCOVERY_FIRST_WAIT: Duration = Duration::from_secs(10);

struct TailerStatus {
    tail: TailStatus,
    jobs: tokio::sync::watch::Receiver<Arc<Vec<JobReport>>>,
}

impl Status for TailerStatus {
    fn ready(&self) -> bool {
        self.tail.files_active() > 0
    }
    fn files(&self) -> Vec<FileStatus> {
        self.tail.files()
    }
    fn jobs(&self) -> Arc<Vec<JobReport>> {
        Arc::clone(&self.jobs.borrow())
    }
}

/// Runs ferrotail until SIGTERM/SIGINT, then shuts down in order.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());

    let pos_settings = settings::positions(&cfg, opts.dry_run);
    let positions = {
        let (s, m) = (pos_settings.clone(), Arc::clone(&metrics));
        tokio::task::spawn_blocking(move || Positions::open(&s, m))
            .await
            .context("opening the positions file")??
    };

    let budget_bytes = usize::try_from(cfg.ferrotail.inflight_bytes.bytes())
        .unwrap_or(usize::MAX)
        .clamp(64 * 1024, Semaphore::MAX_PERMITS);
    let budget = Arc::new(Semaphore::new(budget_bytes));
    metrics.inflight_budget_bytes.set(budget_bytes as i64);

    let hard_stop = CancellationToken::new();
    let sink = if opts.dry_run {
        print_clients(&cfg);
        Sink::DryRun(DryRunPrinter::stdout())
    } else {
        let clients = settings::clients(&cfg)?;
        Sink::Loki(
            Clients::start(clients, Arc::clone(&metrics), hard_stop.clone())
                .context("starting the Loki clients")?,
        )
    };
    let sink = Arc::new(sink);

    // Promtail's `limits_config.readline_rate_*`: one bucket for every job, after the pipelines.
    let readline_limit = ReadlineLimiter::from_config(&cfg.limits_config, &metrics);
    let mut outputs: HashMap<String, mpsc::Sender<TailEvent>> = HashMap::new();
    let mut pipelines = JoinSet::new();
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
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

    // Discovery: each job's static groups and discoverers; their file targets follow what
    // the discoverers publish (the tailer applies each set by difference).
    let stop_discovery = CancellationToken::new();
    let host = settings::hostname();
    let mut jobs = Vec::new();
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
        let mut discovered = Vec::new();
        for (j, raw) in sc.kubernetes_sd_configs.iter().flatten().enumerate() {
            // Validated at load; this only fails if that check and this one disagree.
            let k8s = kubernetes::settings_from_yaml(raw, &host).map_err(|e| {
                anyhow::anyhow!("scrape_configs[{i}].kubernetes_sd_configs[{j}]: {e}")
            })?;
            let (tx, rx) = tokio::sync::watch::channel(Vec::new());
            tokio::spawn(KubernetesSd::new(k8s).run(tx, stop_discovery.clone()));
            discovered.push(rx);
        }
        for fsd in sc.file_sd_configs.iter().flatten() {
            let (tx, rx) = tokio::sync::watch::channel(Vec::new());
            let sd = FileSd::new(
                fsd.files.clone(),
                fsd.refresh_interval.0,
                Arc::clone(&metrics),
            );
            tokio::spawn(sd.run(tx, stop_discovery.clone()));
            discovered.push(rx);
        }
        jobs.push(JobTargets {
            job: sc.job_name.clone(),
            rules: settings::relabel_rules(&sc.relabel_configs),
            static_groups: settings::static_groups(sc),
            discovered,
        });
    }
    let (first, first_report) =
        targets::first_set(&mut jobs, &host, &metrics, DISCOVERY_FIRST_WAIT).await;
    let (targets_tx, targets) = tokio::sync::watch::channel(first);
    let (reports_tx, reports) = tokio::sync::watch::channel(Arc::new(first_report));
    tokio::spawn(targets::run(
        jobs,
        host,
        Arc::clone(&metrics),
        targets_tx,
        reports_tx,
        stop_discovery.clone(),
    ));
    let tailer = Tailer::new(
        targets,
        settings::tail(&cfg),
        Arc::clone(&positions),
        Arc::clone(&budget),
        Arc::clone(&metrics),
        outputs,
    );
    let status = tailer.status();

    let stop_server = CancellationToken::new();
    if !cfg.server.disable {
        let server = Server::bind(
            &settings::server(&cfg)?,
            Arc::clone(&metrics),
            Arc::new(TailerStatus {
                tail: status.clone(),
                jobs: reports,
            }),
            cfg.to_yaml_masked(),
        )
        .await
        .context("starting the HTTP server")?;
        tracing::info!(address = %server.local_addr()?, tls = server.is_tls(), "Server listening.");
        tokio::spawn(server.run(stop_server.clone()));
    }

    let stop_writer = CancellationToken::new();
    let writer = (!opts.dry_run).then(|| {
        tokio::spawn(
            PositionsWriter::new(Arc::clone(&positions), pos_settings.sync_period)
                .run(stop_writer.clone()),
        )
    });
    let gauge = {
        let (m, b) = (Arc::clone(&metrics), Arc::clone(&budget));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                m.inflight_bytes
                    .set((budget_bytes - b.available_permits()) as i64);
            }
        })
    };

    let stop_tail = CancellationToken::new();
    let mut tail_task = tokio::spawn(tailer.run(stop_tail.clone()));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Starting ferrotail.");

    tokio::select! {
        _ = shutdown_signal() => {}
        r = &mut tail_task => {
            // The tailer only returns on shutdown; if it ended, say so and stop cleanly.
            tracing::error!(result = ?r.err(), "The tailer stopped unexpectedly.");
        }
    }
    let deadline = Instant::now() + cfg.ferrotail.shutdown_timeout.as_std();
    tracing::info!("Stopping: reading stops, in-flight entries are flushed.");

    stop_discovery.cancel();
    stop_tail.cancel();
    let drained = tokio::time::timeout_at(deadline.into(), async {
        let _ = (&mut tail_task).await;
        while pipelines.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let flushed = if drained {
        match Arc::try_unwrap(sink) {
            Ok(sink) => {
                let mut flush = tokio::spawn(sink.shutdown());
                tokio::select! {
                    _ = &mut flush => true,
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        give_up(&positions, &hard_stop);
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
        give_up(&positions, &hard_stop);
        tail_task.abort();
        pipelines.abort_all();
        tracing::warn!(
            "Shutdown deadline reached with entries in flight; they will be read again at the next start."
        );
    }

    stop_writer.cancel();
    if let Some(w) = writer {
        let _ = w.await;
    }
    gauge.abort();
    if !opts.dry_run {
        let p = Arc::clone(&positions);
        match tokio::task::spawn_blocking(move || p.save()).await {
            Ok(Ok(())) => {}
            // Already logged and counted by save(); the positions file keeps its last value.
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "Final positions write did not run."),
        }
    }
    stop_server.cancel();
    tracing::info!("Stopped.");
    Ok(())
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

/// Freezes every committed position, then tells the clients to stop retrying.
fn give_up(positions: &Positions, hard_stop: &CancellationToken) {
    positions.freeze_all();
    hard_stop.cancel();
}

/// Runs one job's pipeline on the events of its readers until the channel closes, then sends
/// on whatever buffering stages still hold. What comes out goes through the read-line rate
/// limit, if any, and gets distinct read-time timestamps per stream on its way to the sink.
async fn run_pipeline(
    mut pipeline: Pipeline,
    mut rx: mpsc::Receiver<TailEvent>,
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
                    Some(TailEvent::Entries(batch)) => {
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
                    Some(TailEvent::Released(labels)) => pipeline.flush_stream(&labels, &mut out),
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

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("Cannot install signal handlers; stopping on Ctrl-C only.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::warn!("SIGHUP received: configuration reload is not supported yet; restart to apply changes.");
            }
        }
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

    fn entries(labels: &LabelSet, lines: &[&'static str]) -> TailEvent {
        TailEvent::Entries(
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
        tx.send(TailEvent::Released(a.clone())).await.unwrap();
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
