//! Fuzzing entry points: one function per cargo-fuzz target in `fuzz/fuzz_targets/`, also fed
//! every saved input under `fuzz/regressions/<target>/` by `tests/fuzz_regressions.rs`.
//!
//! Responsibility: drive the code that reads untrusted or user-written input exactly as
//! production does (the same parse, validate and build functions, the same pipeline), from an
//! arbitrary byte string.
//!
//! Invariants:
//! - a function here never panics on any input: errors of the code under test are returned and
//!   ignored. A panic is a bug of ferrotail (DESIGN.md contract 5), not of the harness;
//! - where a module documents a round trip (a duration prints to text that parses back to the
//!   same value, a positions file we write reads back to the map we wrote), the function
//!   asserts it, so a broken promise shows up as a crash too;
//! - nothing reads the process environment, the clock or the file system, so an input replays
//!   the same way everywhere.
//!
//! Not a stable API: hidden from the docs, only for the fuzz crate and its regression test.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ByteSize, Config, GoDuration, PromDuration};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::positions::Positions;
use crate::positions::file::decode_positions;
use crate::positions::yaml::{parse_positions, parse_sidecar, render_positions, render_sidecar};

/// The input as text, or `None` when it is not UTF-8 (every text entry point refuses that
/// before parsing, as `config::load` and `Positions::open` do).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `-config.file`: parse and validate the YAML text as `config::load` does with
/// `-config.expand-env` off, print it masked (`-print-config-stderr`), and, when it is valid,
/// build every job's pipeline as `app::run` does at start.
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(cfg) = Config::parse_str(text, "fuzz.yaml") else {
        return;
    };
    let valid = cfg.validate().is_ok();
    let _ = cfg.to_yaml_masked();
    if valid {
        let metrics = Arc::new(Metrics::new());
        for (i, sc) in cfg.scrape_configs.iter().enumerate() {
            let path = format!("scrape_configs[{i}].pipeline_stages");
            let _ = Pipeline::new(
                &sc.job_name,
                &sc.pipeline_stages,
                &path,
                Arc::clone(&metrics),
            );
        }
    }
}

/// The positions file reader (`Positions::open` without the file I/O), then the writer: what
/// is loaded and written back must read back as the same map, so a rollback to Promtail (or a
/// restart) loses nothing. The same text is also read as an identity sidecar, which must round
/// trip too.
pub fn positions(data: &[u8]) {
    if let Ok(values) = decode_positions(data) {
        let loaded = Positions::in_memory();
        loaded.load_values(values, &HashMap::new());
        let (snapshot, _) = loaded.snapshot();
        let written = render_positions(&snapshot);
        match parse_positions(&written) {
            Ok(read_back) => assert_eq!(read_back, snapshot, "positions file {written:?}"),
            Err(e) => panic!("the positions file we wrote does not parse: {e}\n{written}"),
        }
    }
    let Some(text) = text(data) else { return };
    if let Ok(entries) = parse_sidecar(text) {
        let written = render_sidecar("fuzz.yaml", &entries);
        match parse_sidecar(&written) {
            Ok(read_back) => assert_eq!(read_back, entries, "sidecar {written:?}"),
            Err(e) => panic!("the sidecar we wrote does not parse: {e}\n{written}"),
        }
    }
}

/// Go durations (`sync_period`, `max_wait_time`, ...), Prometheus durations and byte sizes:
/// each value that parses prints to text that parses back to it (`config::types`).
pub fn go_duration(data: &[u8]) {
    let Some(text) = text(data) else { return };
    assert_round_trip(text, GoDuration::parse);
    assert_round_trip(text, PromDuration::parse);
    assert_round_trip(text, ByteSize::parse);
    let _ = crate::pipeline::stages::multiline::parse_stage_duration(text);
}

/// When `text` parses, its printed form parses back to the same value.
fn assert_round_trip<T>(text: &str, parse: fn(&str) -> Result<T, String>)
where
    T: std::fmt::Display + std::fmt::Debug + PartialEq,
{
    if let Ok(v) = parse(text) {
        let printed = v.to_string();
        assert_eq!(parse(&printed), Ok(v), "{text:?} printed as {printed:?}");
    }
}
