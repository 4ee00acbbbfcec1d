//! Value types: Go/Prometheus durations, byte sizes, YAML 1.1 booleans, scalars into strings.

use std::time::Duration;

use proptest::prelude::*;

use super::parse;
use crate::config::{ByteSize, GoDuration, PromDuration, parse_yaml11_bool};
use crate::test_support::proptest_config;

const SEC: i64 = 1_000_000_000;

#[test]
fn go_duration_parses_go_syntax() {
    let cases: &[(&str, i64)] = &[
        ("300ms", 300_000_000),
        ("1.5h", 5400 * SEC),
        ("2h45m", (2 * 3600 + 45 * 60) * SEC),
        ("10s", 10 * SEC),
        ("1us", 1_000),
        ("1\u{b5}s", 1_000),
        ("1\u{3bc}s", 1_000),
        ("15ns", 15),
        ("-3s", -3 * SEC),
        ("+5m", 300 * SEC),
        ("0", 0),
        ("-0", 0),
        (".5s", 500_000_000),
        ("1.s", SEC),
        ("1h1m1s1ms1us1ns", 3661 * SEC + 1_001_001),
        ("1.0000000001s", SEC),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
        // A bare integer is nanoseconds (YAML int, Promtail keeps it).
        ("10", 10),
        ("-10", -10),
    ];
    for (text, nanos) in cases {
        assert_eq!(GoDuration::parse(text), Ok(GoDuration(*nanos)), "{text}");
    }
}

#[test]
fn go_duration_rejects_what_go_rejects() {
    for (text, needle) in [
        ("", "invalid duration"),
        ("1d", "unknown unit \"d\""),
        ("1.5", "missing unit"),
        ("abc", "invalid duration"),
        ("s", "invalid duration"),
        (".s", "invalid duration"),
        ("1h-1m", "unknown unit \"h-\""),
        ("9999999999999999999h", "invalid duration"),
        ("2562047h47m16.854775808s", "invalid duration"),
        // Found with the go_duration fuzz target: two parts of 2^63 overflowed the sum (a panic in
        // debug builds).
        (
            "9223372036854775808ns9223372036854775808ns",
            "invalid duration",
        ),
        ("1 s", "unknown unit"),
    ] {
        let err = GoDuration::parse(text).expect_err(text);
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn go_duration_prints_like_go() {
    let cases: &[(i64, &str)] = &[
        (0, "0s"),
        (3600 * SEC, "1h0m0s"),
        (90 * SEC, "1m30s"),
        (1_500_000_000, "1.5s"),
        (500_000_000, "500ms"),
        (1_000, "1\u{b5}s"),
        (1_500, "1.5\u{b5}s"),
        (10, "10ns"),
        (-60 * SEC, "-1m0s"),
        ((2 * 3600 + 45 * 60) * SEC, "2h45m0s"),
        (i64::MAX, "2562047h47m16.854775807s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ];
    for (nanos, text) in cases {
        assert_eq!(GoDuration(*nanos).to_string(), *text);
    }
}

#[test]
fn go_duration_std_conversion() {
    assert_eq!(
        GoDuration::from_millis(250).as_std(),
        Duration::from_millis(250)
    );
    assert_eq!(GoDuration(-5).as_std(), Duration::ZERO);
    assert!(GoDuration(-5).is_negative());
    assert_eq!(
        GoDuration::from(Duration::from_secs(2)),
        GoDuration::from_secs(2)
    );
}

proptest! {
    #![proptest_config(proptest_config(256))]
    #[test]
    fn go_duration_display_round_trips(nanos in any::<i64>()) {
        let d = GoDuration(nanos);
        prop_assert_eq!(GoDuration::parse(&d.to_string()), Ok(d));
    }

    #[test]
    fn byte_size_display_round_trips(n in any::<u64>()) {
        let b = ByteSize(n);
        prop_assert_eq!(ByteSize::parse(&b.to_string()), Ok(b));
    }

    #[test]
    fn prom_duration_display_round_trips(ms in 0u64..(1u64 << 42)) {
        let d = PromDuration(Duration::from_millis(ms));
        prop_assert_eq!(PromDuration::parse(&d.to_string()), Ok(d));
    }
}

#[test]
fn go_duration_in_yaml() {
    let cfg = parse(
        "positions: {sync_period: 10}\ntarget_config: {sync_period: 1.5h}\n\
         global: {file_watch_config: {min_poll_frequency: ~, max_poll_frequency: 2h45m}}\n",
    );
    assert_eq!(cfg.positions.sync_period, GoDuration(10));
    assert_eq!(cfg.target_config.sync_period, GoDuration(5400 * SEC));
    assert_eq!(
        cfg.global.file_watch_config.min_poll_frequency,
        GoDuration::ZERO
    );
    assert_eq!(
        cfg.global
            .file_watch_config
            .max_poll_frequency
            .as_std()
            .as_secs(),
        9900
    );
}

#[test]
fn prom_duration_parses_and_prints() {
    let ms = |d: &str| PromDuration::parse(d).map(|p| p.as_std().as_millis() as u64);
    assert_eq!(ms("5m"), Ok(300_000));
    assert_eq!(ms("1h30m"), Ok(5_400_000));
    assert_eq!(ms("1d"), Ok(86_400_000));
    assert_eq!(ms("2w"), Ok(14 * 86_400_000));
    assert_eq!(ms("1y"), Ok(365 * 86_400_000));
    assert_eq!(ms("1h1ms"), Ok(3_600_001));
    assert_eq!(ms("0"), Ok(0));
    for bad in ["", "1.5h", "30", "1m1h", "5 m", "-5m", "1mm"] {
        assert!(PromDuration::parse(bad).is_err(), "{bad:?}");
    }
    let show = |ms: u64| PromDuration(Duration::from_millis(ms)).to_string();
    assert_eq!(show(0), "0s");
    assert_eq!(show(5_400_000), "1h30m");
    assert_eq!(show(90 * 86_400_000), "90d");
    assert_eq!(show(14 * 86_400_000), "2w");
    assert_eq!(show(1_500), "1s500ms");
}

#[test]
fn prom_duration_in_yaml() {
    let cfg = parse(
        "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: [a.yaml]\n  - files: [b.yaml]\n    refresh_interval: 1h30m\n",
    );
    let sd = cfg.scrape_configs[0].file_sd_configs.as_ref().unwrap();
    assert_eq!(
        sd[0].refresh_interval.as_std(),
        Duration::from_secs(300),
        "default 5m"
    );
    assert_eq!(sd[1].refresh_interval.as_std(), Duration::from_secs(5400));
}

#[test]
fn byte_sizes() {
    let cases: &[(&str, u64)] = &[
        ("256kb", 262_144),
        ("256KB", 262_144),
        ("256Kb", 262_144),
        ("256 kb", 262_144),
        ("256k", 262_144),
        ("1M", 1 << 20),
        ("2mb", 2 << 20),
        ("1g", 1 << 30),
        ("1GB", 1 << 30),
        ("1t", 1 << 40),
        ("1p", 1 << 50),
        ("1e", 1 << 60),
        ("1byte", 1),
        ("7b", 7),
        ("2kilobytes", 2048),
        ("3megabyte", 3 << 20),
        ("1024", 1024),
        ("", 0),
        ("0", 0),
    ];
    for (text, n) in cases {
        assert_eq!(ByteSize::parse(text), Ok(ByteSize(*n)), "{text}");
    }
    for bad in [
        "1.5MB",
        "-1",
        " 1",
        "1x",
        "MB",
        "99999999999999999999",
        "16e",
    ] {
        assert!(ByteSize::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(ByteSize(0).to_string(), "0B");
    assert_eq!(ByteSize(262_144).to_string(), "256KB");
    assert_eq!(ByteSize(1 << 20).to_string(), "1MB");
    assert_eq!(ByteSize(1536).to_string(), "1536B");
    assert_eq!(ByteSize(1000).to_string(), "1000B");
}

#[test]
fn byte_size_in_yaml() {
    let cfg = parse("limits_config: {max_line_size: 256kb}\n");
    assert_eq!(cfg.limits_config.max_line_size.bytes(), 262_144);
    let cfg = parse("limits_config: {max_line_size: 262144}\n");
    assert_eq!(cfg.limits_config.max_line_size.bytes(), 262_144);
    let err = super::parse_err("limits_config:\n  max_line_size: 1.5MB\n");
    assert_eq!(err.path.as_deref(), Some("limits_config.max_line_size"));
    assert_eq!(err.location, Some((2, 18)));
}

#[test]
fn yaml11_booleans() {
    for t in [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
    ] {
        assert_eq!(parse_yaml11_bool(t), Some(true), "{t}");
        let cfg = parse(&format!("positions: {{ignore_invalid_yaml: {t}}}\n"));
        assert!(cfg.positions.ignore_invalid_yaml, "{t}");
    }
    for f in [
        "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    ] {
        assert_eq!(parse_yaml11_bool(f), Some(false), "{f}");
        let cfg = parse(&format!("tracing: {{enabled: {f}}}\n"));
        assert!(!cfg.tracing.enabled, "{f}");
    }
    let cfg = parse(
        "clients:\n- url: http://x\n  follow_redirects: off\n  drop_rate_limited_batches: Y\n",
    );
    assert!(!cfg.clients[0].follow_redirects);
    assert!(cfg.clients[0].drop_rate_limited_batches);
    let err = super::parse_err("tracing:\n  enabled: maybe\n");
    assert_eq!(err.path.as_deref(), Some("tracing.enabled"));
    assert!(err.message.contains("boolean"), "{}", err.message);
}

#[test]
fn scalars_into_strings_keep_their_text() {
    let cfg = parse(
        "clients:\n- url: http://x\n  tenant_id: 1\n  name: 0x1F\n  headers: {X-Num: 1.50}\n  \
         external_labels: {n: 007, b: yes}\n",
    );
    let c = &cfg.clients[0];
    assert_eq!(c.tenant_id, "1");
    assert_eq!(c.name, "0x1F");
    assert_eq!(c.headers["X-Num"], "1.50");
    assert_eq!(c.external_labels["n"], "007");
    assert_eq!(c.external_labels["b"], "yes");
    let cfg = parse("clients:\n- url: http://x\n  tenant_id: ~\n");
    assert_eq!(cfg.clients[0].tenant_id, "", "null is the zero value");
    let cfg = parse(
        "scrape_configs:\n- job_name: 42\n  static_configs:\n  - targets: [1]\n    labels: {port: 8080}\n",
    );
    assert_eq!(cfg.scrape_configs[0].job_name, "42");
    assert_eq!(cfg.scrape_configs[0].static_configs()[0].targets, ["1"]);
    assert_eq!(
        cfg.scrape_configs[0].static_configs()[0].labels["port"],
        "8080"
    );
}

#[test]
fn raw_yaml_values_read_like_the_file() {
    #[derive(serde::Deserialize, Debug)]
    struct Stage {
        #[serde(deserialize_with = "crate::config::de::bool11")]
        drop_malformed: bool,
        #[serde(deserialize_with = "crate::config::de::text")]
        source: String,
        max_wait_time: GoDuration,
    }
    let cfg = parse(
        "scrape_configs:\n- job_name: a\n  static_configs: []\n  pipeline_stages:\n  - json: {drop_malformed: yes, source: 1.50, max_wait_time: 3s}\n",
    );
    let stage = &cfg.scrape_configs[0].pipeline_stages[0]["json"];
    let s: Stage = crate::config::de::from_value(stage).unwrap();
    assert!(s.drop_malformed);
    assert_eq!(s.source, "1.5", "a float prints back in its canonical form");
    assert_eq!(s.max_wait_time, GoDuration::from_secs(3));
}

#[test]
fn aliases_work() {
    let cfg = parse("clients:\n- &c {url: http://a/push, tenant_id: t}\nclient: *c\n");
    assert_eq!(cfg.client.as_ref().unwrap().tenant_id, "t");
}
