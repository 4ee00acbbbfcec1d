//! `sampling`: keeps each entry with probability `rate`, independently (spec §7.5).
//!
//! ```yaml
//! sampling:
//!   rate: 0.1                        # 0.0..=1.0, the share of entries KEPT (default 0: none)
//!   drop_counter_reason: sampling_stage
//! ```
//!
//! As in Promtail, a random 63-bit number (never 0) is compared with `rate × (2^63 − 1)`: `rate:
//! 1` keeps everything, `rate: 0` (or no `rate`) drops everything. Dropped entries count in
//! `logentry_dropped_lines_total{reason=<drop_counter_reason>}`. The body is decoded weakly
//! (`rate: "0.5"`). The generator is seeded from the OS once per stage (tests inject a seed); the
//! random sequence differs from Go's, the distribution does not.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_yaml::Value as Yaml;

use crate::pipeline::decode::{self, Fields};
use crate::pipeline::stage::{BuildContext, DropCounter, Outcome, PipelineEntry, Stage};
use crate::pipeline::stages::BuildError;

/// The largest 63-bit number.
const MAX_RANDOM: u64 = (1 << 63) - 1;

/// The `sampling` stage.
pub struct SamplingStage {
    boundary: u64,
    rng: StdRng,
    dropped: DropCounter,
}

impl SamplingStage {
    /// Builds the stage from its YAML body.
    pub fn build(body: &Yaml, cx: &BuildContext) -> Result<Self, BuildError> {
        Self::build_with_rng(body, cx, StdRng::from_os_rng())
    }

    /// [`SamplingStage::build`] with a given generator (tests seed it).
    pub(crate) fn build_with_rng(
        body: &Yaml,
        cx: &BuildContext,
        rng: StdRng,
    ) -> Result<Self, BuildError> {
        let f = Fields::new(body, &["drop_counter_reason", "rate"], &cx.path)?;
        let reason = f
            .get("drop_counter_reason")
            .map_or(Ok(None), |v| decode::weak_string("drop_counter_reason", v))?
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "sampling_stage".to_string());
        let rate = f
            .get("rate")
            .map_or(Ok(None), |v| decode::weak_float("rate", v))?
            .unwrap_or(0.0);
        if rate.is_nan() || !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received {rate:.6}"
            )
            .into());
        }
        Ok(SamplingStage {
            // Go converts the product to uint64 the same way (truncation).
            boundary: (MAX_RANDOM as f64 * rate) as u64,
            rng,
            dropped: cx.drop_counter(&reason),
        })
    }

    /// A random number in 1..=2^63−1.
    fn random_id(&mut self) -> u64 {
        loop {
            let v = self.rng.random::<u64>() & MAX_RANDOM;
            if v != 0 {
                return v;
            }
        }
    }
}

impl Stage for SamplingStage {
    fn process(&mut self, _: &mut PipelineEntry, _: &mut Vec<PipelineEntry>) -> Outcome {
        if self.boundary >= self.random_id() {
            Outcome::Keep
        } else {
            self.dropped.count()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::SamplingStage;
    use crate::pipeline::stage::{Outcome, PipelineEntry, Stage};
    use crate::pipeline::stages::testutil::*;

    /// How many of `n` entries a stage built from `body` with seed 42 keeps, and its drop
    /// count under `reason`.
    fn kept(body: &str, n: usize, reason: &str) -> (usize, u64) {
        let (cx, metrics) = build_context("sampling");
        let body: serde_yaml::Value = serde_yaml::from_str(body).unwrap();
        let mut s = SamplingStage::build_with_rng(&body, &cx, StdRng::seed_from_u64(42)).unwrap();
        let kept = (0..n)
            .filter(|_| {
                let mut pe = PipelineEntry::new(entry_with(&[], Bytes::from_static(b"x")));
                matches!(s.process(&mut pe, &mut Vec::new()), Outcome::Keep)
            })
            .count();
        let drops = metrics
            .logentry_dropped_lines
            .with_label_values(&[reason])
            .get();
        (kept, drops)
    }

    #[test]
    fn doc_simple_sampling() {
        let (k, d) = kept("rate: 0.1", 10_000, "sampling_stage");
        assert!((900..=1100).contains(&k), "kept {k}");
        assert_eq!(k as u64 + d, 10_000);
    }

    #[test]
    fn bounds_and_reason() {
        assert_eq!(kept("rate: 1", 1000, "sampling_stage"), (1000, 0));
        assert_eq!(kept("rate: 0", 1000, "sampling_stage"), (0, 1000));
        assert_eq!(kept("{}", 10, "sampling_stage"), (0, 10));
        assert_eq!(
            kept(
                "rate: 0\ndrop_counter_reason: sampled_out",
                10,
                "sampled_out"
            ),
            (0, 10)
        );
        let (k, _) = kept("rate: \"0.5\"", 10_000, "sampling_stage");
        assert!((4800..=5200).contains(&k), "kept {k}");
    }

    #[test]
    fn doc_match_and_sampling() {
        let yaml = r#"
- json:
    expressions:
      app:
- labels:
    app:
- match:
    pipeline_name: "app2"
    selector: '{app="poki"}'
    stages:
    - sampling:
        rate: 0.1
"#;
        let (mut p, metrics) = pipeline_and_metrics(yaml);
        let mut kept = 0;
        for _ in 0..2000 {
            kept += run_entry(
                &mut p,
                entry_with(&[], Bytes::from_static(br#"{"app":"poki"}"#)),
            )
            .len();
            assert_eq!(
                run_entry(
                    &mut p,
                    entry_with(&[], Bytes::from_static(br#"{"app":"other"}"#))
                )
                .len(),
                1
            );
        }
        // Random seed here: a loose bound (the chance of missing it is below 1e-15).
        assert!((50..=400).contains(&kept), "kept {kept}");
        let drops = metrics
            .logentry_dropped_lines
            .with_label_values(&["sampling_stage"])
            .get();
        assert_eq!(kept as u64 + drops, 2000);
    }

    #[test]
    fn config_errors() {
        let pre = "p[0].sampling: invalid sampling stage config: ";
        assert_eq!(
            pipeline_err("- sampling:\n    rate: 1.5\n"),
            format!(
                "{pre}sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received 1.500000"
            )
        );
        assert_eq!(
            pipeline_err("- sampling:\n    rate: -0.1\n"),
            format!(
                "{pre}sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received -0.100000"
            )
        );
        assert!(
            pipeline_err("- sampling:\n    rate: x\n").contains("cannot parse 'rate' as float")
        );
    }
}
