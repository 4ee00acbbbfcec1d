//! Command-line flags: Go syntax, precedence over YAML, the deprecated `-client.*` client.

use std::collections::BTreeMap;

use super::parse;
use crate::config::{
    ByteSize, Config, FlagError, Flags, GoDuration, LabelsFlag, LogFormat, LogLevel, apply_flags,
    usage,
};

fn flags(args: &[&str]) -> Flags {
    Flags::parse(args.iter().map(|s| s.to_string()))
        .unwrap_or_else(|e| panic!("{args:?} rejected: {e}"))
}

fn flag_err(args: &[&str]) -> FlagError {
    Flags::parse(args.iter().map(|s| s.to_string())).expect_err("should be rejected")
}

#[test]
fn dash_styles_and_value_forms() {
    for args in [
        &["-config.file=/etc/p.yaml"][..],
        &["--config.file=/etc/p.yaml"],
        &["-config.file", "/etc/p.yaml"],
        &["--config.file", "/etc/p.yaml"],
    ] {
        let f = flags(args);
        assert_eq!(f.config_file, "/etc/p.yaml", "{args:?}");
        assert!(f.was_given("config.file"));
    }
    let f = flags(&[
        "-server.http-listen-port",
        "9080",
        "--positions.sync-period=5s",
    ]);
    assert_eq!(f.server_http_listen_port, Some(9080));
    assert_eq!(f.positions_sync_period, Some(GoDuration::from_secs(5)));
    assert_eq!(
        f.given,
        ["server.http-listen-port", "positions.sync-period"]
    );
    assert_eq!(f.client_url, None, "not given");
}

#[test]
fn booleans() {
    let f = flags(&[
        "-dry-run",
        "--config.expand-env",
        "-stdin=true",
        "-tracing.enabled=false",
    ]);
    assert!(f.dry_run && f.config_expand_env);
    assert_eq!(f.stdin, Some(true));
    assert_eq!(f.tracing_enabled, Some(false));
    // A bool does not take the next argument: `false` is the first positional argument.
    let f = flags(&["-dry-run", "false", "-version"]);
    assert!(f.dry_run && !f.version);
    assert_eq!(f.args, ["false", "-version"]);
    for v in [
        "1", "t", "T", "TRUE", "True", "0", "f", "F", "FALSE", "False",
    ] {
        flags(&[&format!("-check-syntax={v}")]);
    }
    let e = flag_err(&["-dry-run=yes"]);
    assert!(
        e.to_string()
            .contains("invalid boolean value \"yes\" for -dry-run"),
        "{e}"
    );
}

#[test]
fn value_types_are_checked() {
    let f = flags(&[
        "-max-line-size=256kb",
        "-log.level=debug",
        "-log.format=json",
        "-limit.readline-rate=12.5",
        "-client.max-retries=0x10",
        "-ferrotail.long-line-action=drop",
    ]);
    assert_eq!(f.max_line_size, Some(ByteSize(262_144)));
    assert_eq!(f.log_level, Some(LogLevel::Debug));
    assert_eq!(f.log_format, Some(LogFormat::Json));
    assert_eq!(f.limit_readline_rate, Some(12.5));
    assert_eq!(f.client_max_retries, Some(16));
    for (args, needle) in [
        (&["-log.level=verbose"][..], "unrecognized log level"),
        (&["-log.format=xml"], "unrecognized log format"),
        (&["-client.batch-wait=10"], "missing unit"),
        (&["-client.batch-wait=1d"], "unknown unit"),
        (&["-server.http-listen-port=70000"], "out of range"),
        (&["-max-streams=-1"], "out of range"),
        (&["-server.http-listen-port=x"], "parse error"),
        (
            &["-client.external-labels=novalue"],
            "must be formatted as key=value",
        ),
    ] {
        let e = flag_err(args).to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(e.contains("invalid value"), "{args:?}: {e}");
        assert!(
            e.ends_with("Run with -help to get list of available parameters"),
            "{e}"
        );
    }
}

#[test]
fn syntax_errors_help_and_termination() {
    assert_eq!(flag_err(&["-h"]), FlagError::Help);
    assert_eq!(flag_err(&["-help"]), FlagError::Help);
    assert_eq!(flag_err(&["--help"]), FlagError::Help);
    let e = flag_err(&["-nope=1"]).to_string();
    assert_eq!(
        e,
        "flag provided but not defined: -nope\nRun with -help to get list of available parameters"
    );
    assert!(
        flag_err(&["-config.file"])
            .to_string()
            .contains("flag needs an argument: -config.file")
    );
    assert!(
        flag_err(&["---x"])
            .to_string()
            .contains("bad flag syntax: ---x")
    );
    assert!(flag_err(&["-=x"]).to_string().contains("bad flag syntax"));
    let f = flags(&["-dry-run", "--", "-version"]);
    assert!(!f.version);
    assert_eq!(f.args, ["-version"]);
    let f = flags(&["positional", "-version"]);
    assert!(!f.version);
    let f = flags(&["-"]);
    assert_eq!(f.args, ["-"]);
    // The value of a non-bool flag may start with a dash.
    let f = flags(&["-client.tenant-id", "-t-"]);
    assert_eq!(f.client_tenant_id.as_deref(), Some("-t-"));
    // The last occurrence wins.
    let f = flags(&["-positions.file=a", "-positions.file=b"]);
    assert_eq!(f.positions_file.as_deref(), Some("b"));
}

#[test]
fn precedence_flag_over_yaml_over_default() {
    let yaml = "positions: {filename: /yaml/positions.yaml}\nserver: {http_listen_port: 9080}\n";
    let mut cfg = parse(yaml);
    apply_flags(
        &mut cfg,
        &flags(&["-positions.file=/flag/p.yaml", "-target.sync-period=3s"]),
    );
    assert_eq!(cfg.positions.filename, "/flag/p.yaml", "flag beats YAML");
    assert_eq!(
        cfg.server.http_listen_port, 9080,
        "YAML kept when the flag is not given"
    );
    assert_eq!(
        cfg.target_config.sync_period,
        GoDuration::from_secs(3),
        "flag beats default"
    );
    assert_eq!(
        cfg.positions.sync_period,
        GoDuration::from_secs(10),
        "default kept"
    );
    // A flag given with its default value still overrides YAML.
    let mut cfg = parse(yaml);
    apply_flags(&mut cfg, &flags(&["-server.http-listen-port=80"]));
    assert_eq!(cfg.server.http_listen_port, 80);
}

#[test]
fn every_config_flag_lands_somewhere() {
    let mut cfg = Config::default();
    let f = flags(&[
        "-file-watch.min_poll_frequency=1s",
        "-server.http-tls-cert-path=/c.pem",
        "-log.level=warn",
        "-server.path-prefix=/p",
        "-limit.readline-rate-enabled",
        "-max-streams=7",
        "-max-line-size-truncate",
        "-positions.ignore-invalid-yaml",
        "-ferrotail.inflight-bytes=1mb",
        "-ferrotail.client-concurrency=4",
        "-ferrotail.shutdown-timeout=5s",
        "-inspect",
    ]);
    apply_flags(&mut cfg, &f);
    assert_eq!(
        cfg.global.file_watch_config.min_poll_frequency,
        GoDuration::from_secs(1)
    );
    assert_eq!(cfg.server.http_tls_config.cert_file, "/c.pem");
    assert_eq!(cfg.server.log_level, LogLevel::Warn);
    assert_eq!(cfg.server.http_path_prefix, "/p");
    assert!(cfg.limits_config.readline_rate_enabled);
    assert_eq!(cfg.limits_config.max_streams, 7);
    assert!(cfg.limits_config.max_line_size_truncate);
    assert!(cfg.positions.ignore_invalid_yaml);
    assert_eq!(cfg.ferrotail.inflight_bytes, ByteSize(1 << 20));
    assert_eq!(cfg.ferrotail.client_concurrency, 4);
    assert_eq!(cfg.ferrotail.shutdown_timeout, GoDuration::from_secs(5));
    assert!(cfg.inspect);
}

#[test]
fn client_url_flag_appends_a_client() {
    let mut cfg = parse("clients:\n- url: http://yaml:3100/loki/api/v1/push\n");
    apply_flags(
        &mut cfg,
        &flags(&[
            "-client.url=http://cli:3100/loki/api/v1/push",
            "-client.batch-wait=5s",
            "-client.tenant-id=t1",
            "-client.max-retries=3",
        ]),
    );
    let clients = cfg.effective_clients();
    assert_eq!(clients.len(), 2);
    assert_eq!(
        clients[0].url.as_deref(),
        Some("http://yaml:3100/loki/api/v1/push")
    );
    assert_eq!(
        clients[0].batchwait,
        GoDuration::from_secs(1),
        "YAML client keeps its defaults"
    );
    let cli = &clients[1];
    assert_eq!(cli.url.as_deref(), Some("http://cli:3100/loki/api/v1/push"));
    assert_eq!(cli.batchwait, GoDuration::from_secs(5));
    assert_eq!(cli.tenant_id, "t1");
    assert_eq!(cli.backoff_config.max_retries, Some(3));
    assert_eq!(
        cli.batchsize,
        1 << 20,
        "client defaults for flags not given"
    );
    let paths: Vec<String> = cfg
        .effective_clients_with_paths()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(paths, ["clients[0]", "client"]);
    // Applying again does not duplicate the client.
    let again = cfg.clone();
    apply_flags(
        &mut cfg,
        &flags(&["-client.url=http://cli:3100/loki/api/v1/push"]),
    );
    assert_eq!(
        cfg.effective_clients().len(),
        again.effective_clients().len()
    );
}

#[test]
fn client_flags_without_url_add_no_client() {
    let mut cfg = parse("clients:\n- url: http://yaml/push\n");
    apply_flags(&mut cfg, &flags(&["-client.batch-wait=5s"]));
    assert_eq!(cfg.effective_clients().len(), 1);
}

#[test]
fn external_labels_merge_into_every_client() {
    let mut cfg = parse(
        "clients:\n- url: http://a/push\n  external_labels: {b: own, c: own}\n- url: http://b/push\n",
    );
    apply_flags(&mut cfg, &flags(&["-client.external-labels=a=1,b=2"]));
    let clients = cfg.effective_clients();
    assert_eq!(clients.len(), 2, "external labels alone add no client");
    let want0 = BTreeMap::from([
        ("a".into(), "1".into()),
        ("b".into(), "own".into()),
        ("c".into(), "own".into()),
    ]);
    assert_eq!(
        clients[0].external_labels, want0,
        "a client's own labels win"
    );
    let want1 = BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
    assert_eq!(clients[1].external_labels, want1);
}

#[test]
fn labels_flag_syntax() {
    let parse_labels = LabelsFlag::parse;
    let m = |pairs: &[(&str, &str)]| {
        LabelsFlag(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(parse_labels("a=b"), Ok(m(&[("a", "b")])));
    assert_eq!(parse_labels("\"a=b\""), Ok(m(&[("a", "b")])));
    assert_eq!(parse_labels("a=1,b=2"), Ok(m(&[("a", "1"), ("b", "2")])));
    assert_eq!(
        parse_labels("\"a=x,y\",b=2"),
        Ok(m(&[("a", "x,y"), ("b", "2")]))
    );
    assert_eq!(parse_labels("a==b"), Ok(m(&[("a", "=b")])));
    assert!(parse_labels("ab").is_err());
    assert_eq!(
        parse_labels("a=1,b"),
        Ok(m(&[("a", "1,b")])),
        "one `=`: the whole value"
    );
    assert!(parse_labels("a=1,b,c=2").is_err());
    assert!(parse_labels("a=1,b\"=2").is_err());
    assert!(parse_labels("=1,b=2").is_err());
}

#[test]
fn usage_lists_flags_go_style() {
    let u = usage();
    assert!(u.starts_with("Usage of ferrotail:\n"));
    assert!(u.contains("  -client.batch-wait duration\n    \tMaximum wait period before sending batch (deprecated). (default 1s)\n"), "{u}");
    assert!(u.contains("  -dry-run\n    \t"));
    assert!(u.contains("  -server.http-listen-network string\n"));
    assert!(u.contains("(default \"tcp\")"));
    assert!(u.contains("  -ferrotail.inflight-bytes value\n"));
    assert!(u.contains("  -log.level value\n"));
    let names: Vec<&str> = u
        .lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name");
}
