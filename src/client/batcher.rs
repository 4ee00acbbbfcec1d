//! The per-client task: takes entries from the client's bounded input queue, batches them per
//! tenant (spec §8.1, §8.2) and schedules the sealed batches on per-tenant senders.
//!
//! Invariants:
//! - one open batch per tenant; it is sealed when the next entry would push it past
//!   `batch_size`, when it is `batch_wait` old (checked every `batch_wait / 10`, at least 10 ms),
//!   or at shutdown;
//! - each tenant has its own queue of sealed batches served by at most `concurrency` deliveries
//!   at once, so a tenant in retry never holds up another tenant's batches;
//! - the task stops taking input while [`QUEUED_BATCHES_LIMIT`] sealed batches wait for a sender
//!   (backpressure towards `Clients::send`); the byte budget upstream usually bounds memory long
//!   before that;
//! - entries are dropped only when delivered, rejected for good, or dropped on purpose with a
//!   counted reason (`line_too_long`, `stream_limited`, send failures).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::batch::{Batch, Rejected, Sealed, entry_size};
use super::proto::Encoder;
use super::sender::SendContext;
use super::transport::Transport;
use crate::entry::{Entry, LabelSet, TENANT_LABEL};

/// Sealed batches that may wait for a sender (all tenants of one client together) before the
/// client stops taking input.
pub const QUEUED_BATCHES_LIMIT: usize = 32;

/// The batching part of a client's settings.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// Seal a batch this long after its creation.
    pub batch_wait: Duration,
    /// Seal a batch before it grows past this size.
    pub batch_size: usize,
    /// Tenant for entries without `__tenant_id__` ("" = none).
    pub tenant_id: String,
    /// Labels merged under every entry's labels.
    pub external_labels: LabelSet,
    /// Line length limit (0 = off).
    pub max_line_size: usize,
    /// Truncate instead of dropping over-long lines.
    pub max_line_size_truncate: bool,
    /// Distinct streams per batch (0 = off).
    pub max_streams: usize,
    /// Deliveries in flight per tenant (at least 1).
    pub concurrency: usize,
}

#[derive(Default)]
struct Tenant {
    open: Option<Batch>,
    queue: VecDeque<Sealed>,
    in_flight: usize,
}

/// One client's batching and scheduling task.
pub struct Batcher<T> {
    cfg: BatchConfig,
    ctx: Arc<SendContext<T>>,
    input: mpsc::Receiver<Vec<Entry>>,
    state: State,
}

struct State {
    tenants: HashMap<String, Tenant>,
    in_flight: JoinSet<String>,
    /// Tenant of each delivery task, to find it again if the task panicked.
    task_tenants: HashMap<Id, String>,
    /// Sealed batches waiting in the tenants' queues.
    queued: usize,
    encoder: Encoder,
}

impl<T: Transport> Batcher<T> {
    /// A batcher reading `input` and delivering through `ctx`.
    pub fn new(
        cfg: BatchConfig,
        ctx: Arc<SendContext<T>>,
        input: mpsc::Receiver<Vec<Entry>>,
    ) -> Self {
        Batcher {
            cfg,
            ctx,
            input,
            state: State {
                tenants: HashMap::new(),
                in_flight: JoinSet::new(),
                task_tenants: HashMap::new(),
                queued: 0,
                encoder: Encoder::new(),
            },
        }
    }

    /// Runs until the input is closed and every batch is delivered or dropped, or until the
    /// hard stop.
    pub async fn run(mut self) {
        let tick = (self.cfg.batch_wait / 10).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut accepting = true;
        let hard_stop = self.ctx.hard_stop.clone();
        loop {
            // Biased: completions free senders first; the ticker (ready once per tick) cannot
            // starve the input but is never starved by a busy input either.
            tokio::select! {
                biased;
                _ = hard_stop.cancelled() => break,
                Some(done) = self.state.in_flight.join_next_with_id(), if !self.state.in_flight.is_empty() => {
                    self.state.finished(&self.cfg, &self.ctx, done);
                }
                _ = ticker.tick(), if accepting => {
                    self.state.flush_aged(&self.cfg, &self.ctx, Instant::now());
                }
                msg = self.input.recv(), if accepting && self.state.queued < QUEUED_BATCHES_LIMIT => {
                    match msg {
                        Some(entries) => {
                            let now = Instant::now();
                            for entry in entries {
                                self.state.add(&self.cfg, &self.ctx, entry, now);
                            }
                        }
                        None => {
                            accepting = false;
                            self.state.seal_all(&self.cfg, &self.ctx);
                        }
                    }
                }
            }
            if !accepting && self.state.idle() {
                break;
            }
        }
        // Hard stop: abandon what is left (the trackers are frozen by then).
        self.state.in_flight.shutdown().await;
    }
}

impl State {
    fn add<T: Transport>(
        &mut self,
        cfg: &BatchConfig,
        ctx: &Arc<SendContext<T>>,
        mut entry: Entry,
        now: Instant,
    ) {
        // A shared clone, so that the tenant name does not borrow the entry we move below.
        let labels = entry.labels.clone();
        let tenant = labels
            .get(TENANT_LABEL)
            .or_else(|| cfg.external_labels.get(TENANT_LABEL))
            .unwrap_or(cfg.tenant_id.as_str());
        if !self.tenants.contains_key(tenant) {
            ctx.metrics.init_tenant(&ctx.host, tenant);
            self.tenants.insert(tenant.to_owned(), Tenant::default());
        }

        if cfg.max_line_size > 0 && entry.line.len() > cfg.max_line_size {
            let reason_labels = [ctx.host.as_str(), tenant, "line_too_long"];
            if cfg.max_line_size_truncate {
                let removed = entry.line.len() - cfg.max_line_size;
                ctx.metrics
                    .mutated_entries
                    .with_label_values(&reason_labels)
                    .inc();
                ctx.metrics
                    .mutated_bytes
                    .with_label_values(&reason_labels)
                    .inc_by(removed as u64);
                entry.line.truncate(cfg.max_line_size);
            } else {
                ctx.metrics
                    .dropped_entries
                    .with_label_values(&reason_labels)
                    .inc();
                ctx.metrics
                    .dropped_bytes
                    .with_label_values(&reason_labels)
                    .inc_by(entry.line.len() as u64);
                return; // counted, deliberate drop: acknowledges the entry
            }
        }

        let size = entry_size(&entry);
        let full = self.tenants.get_mut(tenant).and_then(|t| match &t.open {
            Some(b) if b.bytes() + size > cfg.batch_size => t.open.take(),
            _ => None,
        });
        if let Some(batch) = full {
            self.seal(cfg, ctx, tenant, batch);
        }
        let Some(t) = self.tenants.get_mut(tenant) else {
            return; // unreachable: inserted above and only removed when idle
        };
        let batch = t.open.get_or_insert_with(|| Batch::new(now));
        if let Err(Rejected::StreamLimit(entry)) =
            batch.add(entry, size, &cfg.external_labels, cfg.max_streams)
        {
            let reason_labels = [ctx.host.as_str(), tenant, "stream_limited"];
            ctx.metrics
                .dropped_entries
                .with_label_values(&reason_labels)
                .inc();
            ctx.metrics
                .dropped_bytes
                .with_label_values(&reason_labels)
                .inc_by(entry.line.len() as u64);
            tracing::debug!(client = %ctx.name, tenant, max_streams = cfg.max_streams, "Entry dropped: the batch has reached max_streams.");
        }
    }

    fn seal<T: Transport>(
        &mut self,
        cfg: &BatchConfig,
        ctx: &Arc<SendContext<T>>,
        tenant: &str,
        batch: Batch,
    ) {
        match batch.seal(&mut self.encoder) {
            Ok(sealed) => {
                ctx.metrics
                    .encoded_bytes
                    .with_label_values(&[&ctx.host])
                    .inc_by(sealed.body.len() as u64);
                if let Some(t) = self.tenants.get_mut(tenant) {
                    t.queue.push_back(sealed);
                    self.queued += 1;
                }
                self.dispatch(cfg, ctx, tenant);
            }
            Err((error, acks, entries)) => {
                tracing::error!(client = %ctx.name, tenant, %error, "error encoding batch");
                let reason_labels = [ctx.host.as_str(), tenant, "ingester_error"];
                ctx.metrics
                    .dropped_entries
                    .with_label_values(&reason_labels)
                    .inc_by(entries as u64);
                drop(acks); // counted drop
            }
        }
    }

    fn dispatch<T: Transport>(
        &mut self,
        cfg: &BatchConfig,
        ctx: &Arc<SendContext<T>>,
        tenant: &str,
    ) {
        let Some(t) = self.tenants.get_mut(tenant) else {
            return;
        };
        while t.in_flight < cfg.concurrency.max(1) {
            let Some(batch) = t.queue.pop_front() else {
                break;
            };
            t.in_flight += 1;
            self.queued -= 1;
            let handle = self
                .in_flight
                .spawn(Arc::clone(ctx).deliver(tenant.to_owned(), batch));
            self.task_tenants.insert(handle.id(), tenant.to_owned());
        }
    }

    fn finished<T: Transport>(
        &mut self,
        cfg: &BatchConfig,
        ctx: &Arc<SendContext<T>>,
        done: Result<(Id, String), JoinError>,
    ) {
        let (id, tenant) = match done {
            Ok((id, tenant)) => (id, tenant),
            Err(e) => {
                tracing::error!(client = %ctx.name, error = %e, "A delivery task failed; its batch is lost.");
                match self.task_tenants.get(&e.id()) {
                    Some(t) => (e.id(), t.clone()),
                    None => return,
                }
            }
        };
        self.task_tenants.remove(&id);
        if let Some(t) = self.tenants.get_mut(&tenant) {
            t.in_flight = t.in_flight.saturating_sub(1);
        }
        self.dispatch(cfg, ctx, &tenant);
        if let Some(t) = self.tenants.get(&tenant)
            && t.open.is_none()
            && t.queue.is_empty()
            && t.in_flight == 0
        {
            self.tenants.remove(&tenant);
        }
    }

    fn flush_aged<T: Transport>(
        &mut self,
        cfg: &BatchConfig,
        ctx: &Arc<SendContext<T>>,
        now: Instant,
    ) {
        let aged: Vec<String> = self
            .tenants
            .iter()
            .filter(|(_, t)| {
                t.open
                    .as_ref()
                    .is_some_and(|b| now.saturating_duration_since(b.created()) >= cfg.batch_wait)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for tenant in aged {
            if let Some(batch) = self.tenants.get_mut(&tenant).and_then(|t| t.open.take()) {
                self.seal(cfg, ctx, &tenant, batch);
            }
        }
    }

    fn seal_all<T: Transport>(&mut self, cfg: &BatchConfig, ctx: &Arc<SendContext<T>>) {
        let open: Vec<String> = self
            .tenants
            .iter()
            .filter(|(_, t)| t.open.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for tenant in open {
            if let Some(batch) = self.tenants.get_mut(&tenant).and_then(|t| t.open.take()) {
                self.seal(cfg, ctx, &tenant, batch);
            }
        }
    }

    fn idle(&self) -> bool {
        self.queued == 0
            && self.in_flight.is_empty()
            && self.tenants.values().all(|t| t.open.is_none())
    }
}

#[cfg(test)]
#[path = "batcher_tests.rs"]
mod tests;
