//! Support shared by the crate's unit tests (compiled only for them).
//!
//! Property tests: every `proptest!` block of the crate takes its runner settings from
//! [`proptest_config`], so that the default `cargo test` run is the same on every machine and
//! every time (a fixed seed, no failure files written into the source tree), while a long
//! campaign with random seeds stays one environment variable away (docs/fuzzing.md, "Property
//! tests"):
//!
//! - `FERROTAIL_PROPTEST_RANDOM=1`: a random seed per test, printed with the test's output when
//!   it fails (`PROPTEST_RNG_SEED=<seed>` replays it);
//! - `FERROTAIL_PROPTEST_CASES=<n>`: `n` cases for every property test instead of its own count.
//!
//! proptest still applies its own `PROPTEST_*` variables on top of these settings.

use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, RngSeed};

/// The seed of the default run. Any value would do; changing it changes every drawn case, so a
/// change of seed is a change of the test suite.
const FIXED_SEED: u64 = 0x00f3_7707_a11e;

/// Whether `FERROTAIL_PROPTEST_RANDOM` asks for random seeds (set, and neither empty nor `0`).
fn random_requested() -> bool {
    std::env::var_os("FERROTAIL_PROPTEST_RANDOM").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The runner settings of a property test that draws `cases` cases by default.
///
/// The default run uses ChaCha (proptest's default generator, named here so that a change of
/// default cannot change the cases) with [`FIXED_SEED`], and keeps no failure file: a failure
/// prints its (shrunk) input, which then becomes a regression unit test next to the property.
pub(crate) fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = match std::env::var("FERROTAIL_PROPTEST_CASES") {
        Ok(n) => n.trim().parse().unwrap_or_else(|_| {
            panic!("FERROTAIL_PROPTEST_CASES must be a number of cases, not {n:?}")
        }),
        Err(_) => cases,
    };
    let seed = if random_requested() {
        let seed = rand::random::<u64>();
        // Captured with the test's output, so shown only when the test fails.
        eprintln!("proptest seed {seed} (replay: PROPTEST_RNG_SEED={seed})");
        seed
    } else {
        FIXED_SEED
    };
    ProptestConfig {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    #[test]
    fn the_default_run_draws_the_same_cases_every_time() {
        if random_requested() {
            return;
        }
        let draw = || {
            let mut runner = TestRunner::new(proptest_config(1));
            (0..16)
                .map(|_| {
                    any::<u64>()
                        .new_tree(&mut runner)
                        .map(|t| t.current())
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<u64>, String>>()
        };
        let first = draw();
        assert!(first.is_ok(), "{first:?}");
        assert_eq!(first, draw());
        let config = proptest_config(7);
        assert!(config.failure_persistence.is_none());
        if std::env::var_os("FERROTAIL_PROPTEST_CASES").is_none() {
            assert_eq!(config.cases, 7);
        }
    }
}
