//! Every metric family in one place, on one private registry (no global state: two `App`s can
//! run in one process).
//!
//! Names and labels are Promtail's for what Promtail has (spec §9.2), so dashboards and alerts
//! keep working; `ferrotail_*` families measure what Promtail does not. Label values are bounded
//! (paths of tailed files, client hosts, tenants, fixed reason strings), never error text.
//! Hot paths count locally and add once per chunk or batch.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Drop reasons of `promtail_dropped_entries_total` (spec §9.2).
pub const DROP_REASONS: [&str; 4] = [
    "ingester_error",
    "rate_limited",
    "stream_limited",
    "line_too_long",
];

/// All metric families.
#[allow(missing_docs)]
pub struct Metrics {
    registry: Registry,
    /// Counters that source modules register on first use ([`Metrics::shared_counter`]).
    shared: std::sync::Mutex<std::collections::HashMap<&'static str, IntCounter>>,
    // --- file targets (Promtail) ---
    pub read_bytes: IntGaugeVec,
    pub read_lines: IntCounterVec,
    pub file_bytes: IntGaugeVec,
    pub files_active: IntGauge,
    pub targets_active: IntGauge,
    pub targets_failed: IntCounterVec,
    // --- client (Promtail) ---
    pub encoded_bytes: IntCounterVec,
    pub sent_bytes: IntCounterVec,
    pub sent_entries: IntCounterVec,
    pub dropped_entries: IntCounterVec,
    pub dropped_bytes: IntCounterVec,
    pub mutated_entries: IntCounterVec,
    pub mutated_bytes: IntCounterVec,
    pub batch_retries: IntCounterVec,
    pub request_duration: HistogramVec,
    // --- pipeline (Promtail) ---
    pub logentry_dropped_lines: IntCounterVec,
    /// Lines dropped by `limit` stages with `by_label_name`, per label name and value.
    pub logentry_dropped_lines_by_label: IntCounterVec,
    // --- process (Promtail) ---
    pub build_info: GaugeVec,
    pub config_reload_success: IntCounter,
    pub config_reload_fail: IntCounter,
    // --- Docker targets (Promtail) ---
    /// Entries read from container logs (counted by the Docker source).
    pub docker_target_entries: IntCounter,
    /// Docker log frames skipped for want of a timestamp.
    pub docker_target_parsing_errors: IntCounter,
    // --- journal targets (Promtail, plus ferrotail's own) ---
    /// Journal entries handed to a pipeline.
    pub journal_lines: IntCounter,
    /// Journal entries dropped, by `error` (`no_message`, `empty_labels`, `oversized`).
    pub journal_parsing_errors: IntCounterVec,
    /// Saved journal cursors that no longer exist (rotated or vacuumed away): reading restarted
    /// from `max_age`.
    pub journal_cursor_lost: IntCounter,
    /// journalctl runs that failed (not started, killed, unreadable output).
    pub journal_errors: IntCounter,
    // --- ferrotail's own ---
    /// Bytes read but not yet committed (acknowledged), per job.
    pub uncommitted_bytes: IntGaugeVec,
    /// Bytes of rotated or truncated files that were gone before they could be read, per job.
    pub rotation_lost_bytes: IntCounterVec,
    /// Lines longer than the read-time cap, per job and action (`truncated` or `dropped`).
    pub long_lines: IntCounterVec,
    /// Bytes held by entries in flight (the budget that makes readers wait).
    pub inflight_bytes: IntGauge,
    /// The in-flight byte budget.
    pub inflight_budget_bytes: IntGauge,
    /// Failed writes of the positions file.
    pub positions_write_errors: IntCounter,
    /// Reads of `file_sd_configs` files that failed (unreadable or unparsable; the file's
    /// previous target groups were kept). Prometheus counts these as
    /// `prometheus_sd_file_read_errors_total`, which Promtail does not expose.
    pub sd_file_read_errors: IntCounter,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    c
}

impl Metrics {
    /// Creates and registers every family. Metric definitions are constants, so a failure here
    /// is a programming error, not an input error.
    pub fn new() -> Self {
        let r = Registry::new();
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "promtail_request_duration_seconds",
                "Duration of send requests.",
            ),
            &["status_code", "host"],
        )
        .unwrap_or_else(|e| panic!("promtail_request_duration_seconds: {e}"));
        r.register(Box::new(request_duration.clone()))
            .unwrap_or_else(|e| panic!("promtail_request_duration_seconds: {e}"));
        let build_info = GaugeVec::new(
            Opts::new(
                "promtail_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, goversion from which promtail was built, and the goos and goarch for the build.",
            ),
            &["version", "revision", "branch", "goversion", "goos", "goarch", "tags"],
        )
        .unwrap_or_else(|e| panic!("promtail_build_info: {e}"));
        r.register(Box::new(build_info.clone()))
            .unwrap_or_else(|e| panic!("promtail_build_info: {e}"));
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("FERROTAIL_REVISION").unwrap_or(""),
                option_env!("FERROTAIL_BRANCH").unwrap_or(""),
                concat!("rust-ferrotail-", env!("CARGO_PKG_VERSION")),
                std::env::consts::OS,
                std::env::consts::ARCH,
                "",
            ])
            .set(1.0);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Registration can only fail on a name clash, which a fresh registry cannot have.
            let _ = r.register(Box::new(pc));
        }
        Metrics {
            read_bytes: gauge_vec(
                &r,
                "promtail_read_bytes_total",
                "Number of bytes read.",
                &["path"],
            ),
            read_lines: counter_vec(
                &r,
                "promtail_read_lines_total",
                "Number of lines read.",
                &["path"],
            ),
            file_bytes: gauge_vec(
                &r,
                "promtail_file_bytes_total",
                "Number of bytes total.",
                &["path"],
            ),
            files_active: gauge(&r, "promtail_files_active_total", "Number of active files."),
            targets_active: gauge(
                &r,
                "promtail_targets_active_total",
                "Number of active total.",
            ),
            targets_failed: counter_vec(
                &r,
                "promtail_targets_failed_total",
                "Number of failed targets.",
                &["reason"],
            ),
            encoded_bytes: counter_vec(
                &r,
                "promtail_encoded_bytes_total",
                "Number of bytes encoded and ready to send.",
                &["host"],
            ),
            sent_bytes: counter_vec(
                &r,
                "promtail_sent_bytes_total",
                "Number of bytes sent.",
                &["host"],
            ),
            sent_entries: counter_vec(
                &r,
                "promtail_sent_entries_total",
                "Number of log entries sent to the ingester.",
                &["host"],
            ),
            dropped_entries: counter_vec(
                &r,
                "promtail_dropped_entries_total",
                "Number of log entries dropped because failed to be sent to the ingester after all retries.",
                &["host", "tenant", "reason"],
            ),
            dropped_bytes: counter_vec(
                &r,
                "promtail_dropped_bytes_total",
                "Number of bytes dropped because failed to be sent to the ingester after all retries.",
                &["host", "tenant", "reason"],
            ),
            mutated_entries: counter_vec(
                &r,
                "promtail_mutated_entries_total",
                "The total number of log entries that have been mutated.",
                &["host", "tenant", "reason"],
            ),
            mutated_bytes: counter_vec(
                &r,
                "promtail_mutated_bytes_total",
                "The total number of bytes that have been mutated.",
                &["host", "tenant", "reason"],
            ),
            batch_retries: counter_vec(
                &r,
                "promtail_batch_retries_total",
                "Number of times batches has had to be retried.",
                &["host", "tenant"],
            ),
            request_duration,
            logentry_dropped_lines: counter_vec(
                &r,
                "logentry_dropped_lines_total",
                "A count of all log lines dropped as a result of a pipeline stage",
                &["reason"],
            ),
            logentry_dropped_lines_by_label: counter_vec(
                &r,
                "logentry_dropped_lines_by_label_total",
                "A count of all log lines dropped as a result of a pipeline stage",
                &["label_name", "label_value"],
            ),
            build_info,
            config_reload_success: counter(
                &r,
                "promtail_config_reload_success_total",
                "Number of reload success times.",
            ),
            config_reload_fail: counter(
                &r,
                "promtail_config_reload_fail_total",
                "Number of reload fail times.",
            ),
            docker_target_entries: counter(
                &r,
                "promtail_docker_target_entries_total",
                "Total number of successful entries sent to the Docker target",
            ),
            docker_target_parsing_errors: counter(
                &r,
                "promtail_docker_target_parsing_errors_total",
                "Total number of parsing errors while receiving Docker messages",
            ),
            journal_lines: counter(
                &r,
                "promtail_journal_target_lines_total",
                "Total number of successful journal lines read",
            ),
            journal_parsing_errors: counter_vec(
                &r,
                "promtail_journal_target_parsing_errors_total",
                "Total number of parsing errors while reading journal messages",
                &["error"],
            ),
            journal_cursor_lost: counter(
                &r,
                "ferrotail_journal_cursor_lost_total",
                "Saved journal cursors no longer in the journal; reading restarted from max_age.",
            ),
            journal_errors: counter(
                &r,
                "ferrotail_journal_errors_total",
                "journalctl runs that failed (not started, killed, unreadable output).",
            ),
            uncommitted_bytes: gauge_vec(
                &r,
                "ferrotail_uncommitted_bytes",
                "Bytes read from files but not yet acknowledged by every client, per job.",
                &["job"],
            ),
            rotation_lost_bytes: counter_vec(
                &r,
                "ferrotail_rotation_lost_bytes_total",
                "Bytes of rotated or truncated files that were gone before they could be read.",
                &["job"],
            ),
            long_lines: counter_vec(
                &r,
                "ferrotail_long_lines_total",
                "Lines longer than the read-time line cap, by action (truncated or dropped).",
                &["job", "action"],
            ),
            inflight_bytes: gauge(
                &r,
                "ferrotail_inflight_bytes",
                "Bytes of entries read and not yet acknowledged.",
            ),
            inflight_budget_bytes: gauge(
                &r,
                "ferrotail_inflight_budget_bytes",
                "The in-flight byte budget; readers wait when it is used up.",
            ),
            positions_write_errors: counter(
                &r,
                "ferrotail_positions_write_errors_total",
                "Failed writes of the positions file.",
            ),
            sd_file_read_errors: counter(
                &r,
                "ferrotail_sd_file_read_errors_total",
                "Reads of file_sd files that failed (unreadable or invalid); their previous target groups were kept.",
            ),
            registry: r,
            shared: Default::default(),
        }
    }

    /// Creates the per-host client series at 0, as Promtail does at client start (spec §8.5).
    pub fn init_client(&self, host: &str) {
        self.encoded_bytes.with_label_values(&[host]);
        self.sent_bytes.with_label_values(&[host]);
        self.sent_entries.with_label_values(&[host]);
    }

    /// Creates the per-tenant drop/mutation/retry series at 0 for every reason (spec §8.5).
    pub fn init_tenant(&self, host: &str, tenant: &str) {
        for reason in DROP_REASONS {
            self.dropped_entries
                .with_label_values(&[host, tenant, reason]);
            self.dropped_bytes
                .with_label_values(&[host, tenant, reason]);
            self.mutated_entries
                .with_label_values(&[host, tenant, reason]);
            self.mutated_bytes
                .with_label_values(&[host, tenant, reason]);
        }
        self.batch_retries.with_label_values(&[host, tenant]);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for I/O reasons; a malformed family would be a bug.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "Encoding metrics failed.");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The counter `name`, created and registered (with `help`) the first time a source asks
    /// for it: every job of one kind adds to the same counter, as Promtail shares one set per
    /// target manager (two `gelf` jobs add to one `promtail_gelf_target_entries_total`), while a
    /// registry refuses a second registration of a name.
    pub fn shared_counter(&self, name: &'static str, help: &str) -> IntCounter {
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared
            .entry(name)
            .or_insert_with(|| counter(&self.registry, name, help))
            .clone()
    }

    /// The underlying registry (for stages that register their own families, e.g. `metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_counter_is_one_per_registry_and_name() {
        let (m1, m2) = (Metrics::new(), Metrics::new());
        let a = m1.shared_counter("promtail_gelf_target_entries_total", "test");
        let b = m1.shared_counter("promtail_gelf_target_entries_total", "test");
        let c = m2.shared_counter("promtail_gelf_target_entries_total", "test");
        a.inc();
        b.inc();
        c.inc();
        assert_eq!((a.get(), c.get()), (2, 1));
        assert!(m1.render().contains("promtail_gelf_target_entries_total 2"));
        assert!(m2.render().contains("promtail_gelf_target_entries_total 1"));
    }

    #[test]
    fn promtail_names_are_exposed() {
        let m = Metrics::new();
        m.init_client("loki:3100");
        m.init_tenant("loki:3100", "");
        m.files_active.set(2);
        let text = m.render();
        for name in [
            "promtail_sent_entries_total{host=\"loki:3100\"} 0",
            "promtail_dropped_entries_total{host=\"loki:3100\",reason=\"line_too_long\",tenant=\"\"} 0",
            "promtail_files_active_total 2",
            "promtail_docker_target_entries_total 0",
            "promtail_docker_target_parsing_errors_total 0",
            "promtail_build_info{",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
    }
}
