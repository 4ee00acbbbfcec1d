//! Tests of the `limit` stage on a fake clock: drop, wait, per-label buckets and their
//! generations, config errors and the docs' examples.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use governor::clock::FakeRelativeClock;

use super::LimitStage;
use crate::metrics::Metrics;
use crate::pipeline::stage::{Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::testutil::*;

struct Harness {
    stage: LimitStage<FakeRelativeClock>,
    clock: FakeRelativeClock,
    metrics: Arc<Metrics>,
    /// Total time slept, in nanoseconds.
    slept: Arc<AtomicU64>,
}

fn harness(body: &str) -> Harness {
    let (cx, metrics) = build_context("limit");
    let clock = FakeRelativeClock::default();
    let slept = Arc::new(AtomicU64::new(0));
    let (c, s) = (clock.clone(), Arc::clone(&slept));
    let sleep = Box::new(move |d: Duration| {
        c.advance(d);
        s.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    });
    let body: serde_yaml::Value = serde_yaml::from_str(body).unwrap();
    let stage = LimitStage::build_with_clock(&body, &cx, clock.clone(), sleep).unwrap();
    Harness {
        stage,
        clock,
        metrics,
        slept,
    }
}

impl Harness {
    fn kept(&mut self, labels: &[(&str, &str)]) -> bool {
        let mut pe = PipelineEntry::new(entry_with(labels, Bytes::from_static(b"x")));
        matches!(self.stage.process(&mut pe, &mut Vec::new()), Outcome::Keep)
    }

    fn kept_of(&mut self, n: usize, labels: &[(&str, &str)]) -> usize {
        (0..n).filter(|_| self.kept(labels)).count()
    }

    fn drops(&self) -> u64 {
        self.metrics
            .logentry_dropped_lines
            .with_label_values(&["ratelimit_drop_stage"])
            .get()
    }

    fn drops_by(&self, value: &str) -> u64 {
        self.metrics
            .logentry_dropped_lines_by_label
            .with_label_values(&["namespace", value])
            .get()
    }
}

#[test]
fn doc_throttle_waits() {
    let mut h = harness("rate: 10\nburst: 10\n");
    assert!(h.stage.may_block());
    // The burst passes at once, then each line waits 100ms.
    assert_eq!(h.kept_of(10, &[]), 10);
    assert_eq!(h.slept.load(Ordering::Relaxed), 0);
    assert_eq!(h.kept_of(5, &[]), 5);
    let slept = h.slept.load(Ordering::Relaxed);
    assert!(
        (499_000_000..=501_000_000).contains(&slept),
        "slept {slept}ns"
    );
    assert_eq!(h.drops(), 0);
}

#[test]
fn doc_drop() {
    let mut h = harness("rate: 10\nburst: 10\ndrop: true\n");
    assert!(!h.stage.may_block());
    assert_eq!(h.kept_of(15, &[]), 10);
    assert_eq!(h.drops(), 5);
    h.clock.advance(Duration::from_millis(300));
    assert_eq!(h.kept_of(5, &[]), 3);
    h.clock.advance(Duration::from_secs(10));
    // The bucket refills to its burst, not more.
    assert_eq!(h.kept_of(20, &[]), 10);
}

#[test]
fn fractional_rate_and_weak_decoding() {
    let mut h = harness("rate: \"0.5\"\nburst: \"1\"\ndrop: \"true\"\n");
    assert!(h.kept(&[]));
    assert!(!h.kept(&[]));
    h.clock.advance(Duration::from_millis(1999));
    assert!(!h.kept(&[]));
    h.clock.advance(Duration::from_millis(1));
    assert!(h.kept(&[]));
}

#[test]
fn doc_by_label() {
    let mut h = harness("rate: 10\nburst: 10\ndrop: true\nby_label_name: \"namespace\"\n");
    assert_eq!(h.kept_of(12, &[("namespace", "a")]), 10);
    assert_eq!(h.kept_of(11, &[("namespace", "b")]), 10);
    // Without the label: never limited.
    assert_eq!(h.kept_of(100, &[("other", "a")]), 100);
    assert_eq!(h.drops(), 3);
    assert_eq!(h.drops_by("a"), 2);
    assert_eq!(h.drops_by("b"), 1);
    let text = h.metrics.render();
    assert!(
        text.contains(
            "logentry_dropped_lines_by_label_total{label_name=\"namespace\",label_value=\"a\"} 2"
        ),
        "{text}"
    );
}

#[test]
fn label_generations() {
    let mut h = harness("rate: 1\nburst: 1\ndrop: true\nby_label_name: namespace\n");
    h.stage.set_max_distinct(3);
    assert!(h.kept(&[("namespace", "a")]));
    assert!(!h.kept(&[("namespace", "a")]));
    assert_eq!(h.drops_by("a"), 1);
    assert!(h.kept(&[("namespace", "b")]));
    // The third value fills the generation: it becomes the old one, the counter is reset.
    assert!(h.kept(&[("namespace", "c")]));
    assert_eq!(h.drops_by("a"), 0);
    // `a` comes back from the old generation with its empty bucket.
    assert!(!h.kept(&[("namespace", "a")]));
    assert!(h.kept(&[("namespace", "d")]));
    assert!(h.kept(&[("namespace", "e")]));
    // a, d, e filled the next generation; b (old-old) is gone: a new, full bucket.
    assert!(h.kept(&[("namespace", "b")]));
}

#[test]
fn config_errors() {
    let pre = "p[0].limit: invalid limit stage config: ";
    let err = |body: &str| pipeline_err(&format!("- limit:\n{body}"));
    for body in [
        "",
        "    rate: 10\n",
        "    burst: 10\n",
        "    rate: 0\n    burst: 1\n",
        "    rate: 1\n    burst: -1\n",
        "    rate: -1\n    burst: 1\n",
    ] {
        assert_eq!(
            err(body),
            format!("{pre}limit stage failed to parse rate or burst"),
            "{body:?}"
        );
    }
    assert_eq!(
        err("    rate: 1\n    burst: 1\n    by_label_name: ns\n"),
        format!("{pre}When ratelimiting by label, drop must be true")
    );
    assert!(err("    rate: abc\n    burst: 1\n").contains("cannot parse 'rate' as float"));
    // Accepted, and a pipeline with a waiting limit may block.
    let p = pipeline("- limit:\n    rate: 1\n    burst: 1\n");
    assert!(p.may_block());
    let p = pipeline("- limit:\n    rate: 1e-300\n    burst: 1\n    drop: true\n");
    assert!(!p.may_block());
    pipeline(
        "- limit:\n    rate: 1e300\n    burst: 1e12\n    drop: true\n    by_label_name: x\n    max_distinct_labels: 5\n",
    );
}
