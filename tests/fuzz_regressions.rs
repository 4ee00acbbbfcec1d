//! Replays every saved fuzz input (`fuzz/regressions/<target>/<name>`: the crashes and timeouts
//! the fuzzers found, plus small hand-written seeds) through `ferrotail::fuzzing::<target>` in
//! the normal `cargo test` run, so a fixed bug stays fixed without cargo-fuzz installed.
//!
//! Also checks that the three lists agree: every directory names a target function here, and
//! every target in `fuzz/fuzz_targets/` has a directory with at least one input.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ferrotail::fuzzing;

/// A target function of `ferrotail::fuzzing`.
type Target = fn(&[u8]);

/// The fuzz targets, by directory name.
const TARGETS: &[(&str, Target)] = &[
    ("config", fuzzing::config),
    ("positions", fuzzing::positions),
    ("go_duration", fuzzing::go_duration),
    ("json", fuzzing::json),
    ("regex", fuzzing::regex),
    ("logfmt", fuzzing::logfmt),
    ("docker", fuzzing::docker),
    ("docker_frames", fuzzing::docker_frames),
    ("multiline", fuzzing::multiline),
    ("cri", fuzzing::cri),
    ("gotemplate", fuzzing::gotemplate),
    ("selector", fuzzing::selector),
    ("re2", fuzzing::re2),
    ("timestamp", fuzzing::timestamp),
    ("gelf", fuzzing::gelf),
    ("heroku", fuzzing::heroku),
    ("syslog", fuzzing::syslog),
    ("push", fuzzing::push),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    out.sort();
    out
}

fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

#[test]
fn every_saved_input_replays_without_panicking() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for dir in sorted_entries(&fuzz_dir().join("regressions")) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(run) = target(&name) else {
            panic!(
                "{}: no fuzz target function `ferrotail::fuzzing::{name}` is listed in \
                 tests/fuzz_regressions.rs",
                dir.display()
            );
        };
        for file in sorted_entries(&dir) {
            let data = std::fs::read(&file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "these saved fuzz inputs panic (message above):\n  {}",
        failures.join("\n  ")
    );
    assert!(replayed > 0, "no saved fuzz input found");
}

#[test]
fn every_fuzz_target_has_a_function_and_saved_inputs() {
    let dir = fuzz_dir();
    let mut seen = Vec::new();
    for file in sorted_entries(&dir.join("fuzz_targets")) {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&file).unwrap();
        assert!(
            source.contains(&format!("ferrotail::fuzzing::{name}(")),
            "{} must call ferrotail::fuzzing::{name}",
            file.display()
        );
        assert!(
            target(&name).is_some(),
            "{}: add `{name}` to TARGETS in tests/fuzz_regressions.rs",
            file.display()
        );
        let inputs = dir.join("regressions").join(&name);
        assert!(
            inputs.is_dir() && !sorted_entries(&inputs).is_empty(),
            "{} has no saved inputs in {}",
            file.display(),
            inputs.display()
        );
        seen.push(name);
    }
    let unbuilt: Vec<&str> = TARGETS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !seen.iter().any(|s| s == n))
        .collect();
    assert!(
        unbuilt.is_empty(),
        "listed in TARGETS but without fuzz/fuzz_targets/<name>.rs: {unbuilt:?}"
    );
}
