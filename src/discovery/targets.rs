//! From discovered target groups to file targets (spec §4.6), and the task that keeps the
//! tailer's target set current while discovery changes.
//!
//! For each target of each group of a job: the group's labels plus `__address__` go through
//! the job's relabel rules (dropped: counted as `dropped`); a `__host__` naming another host
//! drops it (`wrong_host`); without `__path__` it is ignored (`no_path`); then every `__*`
//! label is removed and the target is keyed by job, path globs and labels, a repeated key
//! being counted as `exists`. The counters follow each evaluation, as Promtail's do for each
//! discovery update.
//!
//! Invariants:
//! - the set sent to the tailer is complete (every job, static and discovered groups alike):
//!   the tailer applies it by difference, so a target that stays keeps its readers;
//! - a job whose discovery has not answered yet contributes its static groups only; a
//!   discoverer that stops keeps its last groups (targets are removed only by an update that
//!   no longer lists them).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::TargetGroup;
use super::relabel::{Rule, process};
use crate::entry::LabelSet;
use crate::metrics::Metrics;
use crate::tail::FileTarget;

/// One job's sources of targets.
#[derive(Debug)]
pub struct JobTargets {
    /// The job's name.
    pub job: String,
    /// Its `relabel_configs`.
    pub rules: Vec<Rule>,
    /// Its `static_configs`, as groups.
    pub static_groups: Vec<TargetGroup>,
    /// Its discoverers' latest groups (one channel per discoverer).
    pub discovered: Vec<watch::Receiver<Vec<TargetGroup>>>,
}

/// Most dropped targets a job's report lists (Promtail's page shows at most 100 too); the
/// rest are only counted.
pub const MAX_DROPPED_SHOWN: usize = 100;

/// One discovered target as `/targets` and `/service-discovery` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TargetReport {
    /// Where its group came from.
    pub source: String,
    /// The labels discovery gave it, before relabeling (with `__address__`).
    pub discovered_labels: BTreeMap<String, String>,
    /// Its labels after relabeling and the removal of `__*` labels (empty when dropped).
    pub labels: BTreeMap<String, String>,
    /// Its `__path__` glob (empty when dropped for having none).
    pub path: String,
    /// Why it was dropped (`dropped` by a rule, `wrong_host`, `no_path`, `exists`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<&'static str>,
}

/// What one evaluation made of a job's groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobReport {
    /// The job's name.
    pub job: String,
    /// The targets it tails.
    pub active: Vec<TargetReport>,
    /// The first [`MAX_DROPPED_SHOWN`] targets it dropped.
    pub dropped: Vec<TargetReport>,
    /// How many it dropped in all.
    pub dropped_total: usize,
}

impl JobReport {
    /// Records a dropped target (the first [`MAX_DROPPED_SHOWN`] are listed, all counted).
    pub fn drop_target(&mut self, mut t: TargetReport, reason: &'static str) {
        self.dropped_total += 1;
        if self.dropped.len() < MAX_DROPPED_SHOWN {
            t.dropped = Some(reason);
            self.dropped.push(t);
        }
    }
}

/// Turns one job's groups into file targets, appending them to `out` and what became of each
/// to `report`; `seen` holds the keys of the targets already made (over every job of one
/// evaluation).
#[allow(clippy::too_many_arguments)]
pub fn file_targets_of(
    job: &str,
    rules: &[Rule],
    groups: &[TargetGroup],
    host: &str,
    metrics: &Metrics,
    seen: &mut HashSet<(String, String, String, Option<String>)>,
    out: &mut Vec<FileTarget>,
    report: &mut JobReport,
) {
    let failed = |reason: &str| metrics.targets_failed.with_label_values(&[reason]).inc();
    for group in groups {
        for address in &group.targets {
            let mut labels: BTreeMap<String, String> = group.labels.clone();
            labels.insert("__address__".into(), address.clone());
            let mut seen_as = TargetReport {
                source: group.source.clone(),
                discovered_labels: labels.clone(),
                ..TargetReport::default()
            };
            // Always, like Promtail: with no rules it still drops empty-valued labels.
            if !process(rules, &mut labels) {
                failed("dropped");
                report.drop_target(seen_as, "dropped");
                continue;
            }
            if labels.get("__host__").is_some_and(|h| h != host) {
                failed("wrong_host");
                report.drop_target(seen_as, "wrong_host");
                continue;
            }
            let Some(include) = labels.get("__path__").cloned() else {
                tracing::info!(job = %job, source = %group.source, "Target has no __path__ label, ignoring it.");
                failed("no_path");
                report.drop_target(seen_as, "no_path");
                continue;
            };
            seen_as.path = include.clone();
            let exclude = labels
                .get("__path_exclude__")
                .cloned()
                .filter(|e| !e.is_empty());
            labels.retain(|k, _| !k.starts_with("__"));
            seen_as.labels = labels.clone();
            let labels = LabelSet::from_pairs(labels);
            let key = (
                job.to_owned(),
                include.clone(),
                labels.stream_key(),
                exclude.clone(),
            );
            if !seen.insert(key) {
                failed("exists");
                report.drop_target(seen_as, "exists");
                continue;
            }
            report.active.push(seen_as);
            out.push(FileTarget {
                job: job.to_owned(),
                labels,
                include,
                exclude,
            });
        }
    }
}

/// The file targets of every job, from their static groups and their discoverers' latest
/// groups, and what became of each discovered target.
fn evaluate(
    jobs: &[JobTargets],
    host: &str,
    metrics: &Metrics,
) -> (Vec<FileTarget>, Vec<JobReport>) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut reports = Vec::with_capacity(jobs.len());
    for j in jobs {
        let mut report = JobReport {
            job: j.job.clone(),
            ..JobReport::default()
        };
        let discovered: Vec<Vec<TargetGroup>> =
            j.discovered.iter().map(|rx| rx.borrow().clone()).collect();
        for groups in std::iter::once(&j.static_groups).chain(&discovered) {
            file_targets_of(
                &j.job,
                &j.rules,
                groups,
                host,
                metrics,
                &mut seen,
                &mut out,
                &mut report,
            );
        }
        reports.push(report);
    }
    (out, reports)
}

/// The first complete target set: waits until every discoverer has published once (its
/// first scan), at most `max` (a discoverer that has not answered by then counts as empty
/// until it does). The tailer forgets saved paths no target matches when it starts, so its
/// first set must not miss a discovered target for want of waiting.
pub async fn first_set(
    jobs: &mut [JobTargets],
    host: &str,
    metrics: &Metrics,
    max: std::time::Duration,
) -> (Vec<FileTarget>, Vec<JobReport>) {
    let deadline = tokio::time::Instant::now() + max;
    for rx in jobs.iter_mut().flat_map(|j| j.discovered.iter_mut()) {
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            tracing::warn!(after = ?max, "A discoverer has not answered yet; its targets are added when it does.");
            break;
        }
    }
    evaluate(jobs, host, metrics)
}

/// Keeps `out` holding the file targets of `jobs` and `reports` what became of each
/// discovered target: evaluated now, and again whenever a discoverer publishes, until
/// `shutdown`.
pub async fn run(
    jobs: Vec<JobTargets>,
    host: String,
    metrics: Arc<Metrics>,
    out: watch::Sender<Vec<FileTarget>>,
    reports: watch::Sender<Arc<Vec<JobReport>>>,
    shutdown: CancellationToken,
) {
    let (set, report) = evaluate(&jobs, &host, &metrics);
    out.send_replace(set);
    reports.send_replace(Arc::new(report));
    // One small task per discoverer turns its updates into a wake-up of this one.
    let wake = Arc::new(Notify::new());
    let mut watchers = JoinSet::new();
    for rx in jobs.iter().flat_map(|j| j.discovered.iter()) {
        let (mut rx, wake, stop) = (rx.clone(), Arc::clone(&wake), shutdown.clone());
        watchers.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return; // its last groups stay
                        }
                        wake.notify_one();
                    }
                }
            }
        });
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
        }
        let (set, report) = evaluate(&jobs, &host, &metrics);
        reports.send_replace(Arc::new(report));
        out.send_if_modified(|cur| {
            if *cur == set {
                return false;
            }
            *cur = set;
            true
        });
    }
    watchers.shutdown().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::discovery::relabel::{Action, NameScheme, anchored_regex};

    fn group(path: &str, labels: &[(&str, &str)]) -> TargetGroup {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert("__path__".into(), path.into());
        TargetGroup {
            targets: vec!["localhost".into()],
            labels: l,
            source: path.into(),
        }
    }

    fn paths(set: &[FileTarget]) -> Vec<String> {
        set.iter().map(|t| t.include.clone()).collect()
    }

    async fn next(rx: &mut watch::Receiver<Vec<FileTarget>>) -> Vec<String> {
        tokio::time::timeout(Duration::from_secs(30), rx.changed())
            .await
            .expect("a new target set within 30 s")
            .expect("the task is running");
        paths(&rx.borrow_and_update())
    }

    #[tokio::test]
    async fn the_target_set_follows_discovery_and_keeps_static_groups() {
        let (sd_tx, sd_rx) = watch::channel(Vec::new());
        // Keep only groups whose `team` is `payments`.
        let keep = Rule {
            source_labels: vec!["team".into()],
            separator: ";".into(),
            target_label: String::new(),
            regex: anchored_regex("payments").unwrap(),
            modulus: 0,
            replacement: "$1".into(),
            action: Action::Keep,
            names: NameScheme::Legacy,
        };
        let jobs = vec![
            JobTargets {
                job: "fixed".into(),
                rules: Vec::new(),
                static_groups: vec![group("/var/log/syslog", &[])],
                discovered: Vec::new(),
            },
            JobTargets {
                job: "apps".into(),
                rules: vec![keep],
                static_groups: Vec::new(),
                discovered: vec![sd_rx],
            },
        ];
        let metrics = Arc::new(Metrics::new());
        let (out_tx, mut out) = watch::channel(Vec::new());
        let (reports_tx, reports) = watch::channel(Arc::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            jobs,
            "h".into(),
            Arc::clone(&metrics),
            out_tx,
            reports_tx,
            shutdown.clone(),
        ));
        assert_eq!(next(&mut out).await, ["/var/log/syslog"]);
        sd_tx.send_replace(vec![
            group("/srv/a/*.log", &[("team", "payments")]),
            group("/srv/b/*.log", &[("team", "search")]),
        ]);
        assert_eq!(next(&mut out).await, ["/var/log/syslog", "/srv/a/*.log"]);
        assert_eq!(
            metrics.targets_failed.with_label_values(&["dropped"]).get(),
            1
        );
        {
            let r = reports.borrow();
            let apps = &r[1];
            assert_eq!((apps.job.as_str(), apps.active.len()), ("apps", 1));
            assert_eq!(apps.dropped_total, 1);
            let d = &apps.dropped[0];
            assert_eq!(d.dropped, Some("dropped"));
            assert_eq!(
                d.discovered_labels["team"], "search",
                "labels before relabeling"
            );
            assert_eq!(apps.active[0].labels["team"], "payments");
            assert!(!apps.active[0].labels.contains_key("__path__"));
        }
        sd_tx.send_replace(vec![group("/srv/c/*.log", &[("team", "payments")])]);
        assert_eq!(next(&mut out).await, ["/var/log/syslog", "/srv/c/*.log"]);
        // The discoverer stops: its last groups stay.
        drop(sd_tx);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("stops at shutdown")
            .unwrap();
        assert_eq!(paths(&out.borrow()), ["/var/log/syslog", "/srv/c/*.log"]);
    }
}
