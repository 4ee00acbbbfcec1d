//! Loading: defaults (Appendix A), Appendix C configs, strict parsing and its error messages,
//! files and `-config.expand-env`.

use std::time::Duration;

use super::{parse, parse_err};
use crate::config::{
    ByteSize, Config, ConfigError, Flags, GoDuration, LogFormat, LogLevel, LongLineAction,
    RelabelAction, load,
};

const VM: &str = "\
server: {http_listen_port: 9080, grpc_listen_port: 0}
positions: {filename: /tmp/positions.yaml}
clients: [{url: http://loki:3100/loki/api/v1/push}]
scrape_configs:
  - job_name: system
    static_configs:
      - targets: [localhost]
        labels: {job: varlogs, __path__: /var/log/*log}
";

pub(super) const JOURNAL: &str = "\
scrape_configs:
  - job_name: journal
    journal: {max_age: 12h, labels: {job: systemd-journal}}
    relabel_configs:
      - source_labels: ['__journal__systemd_unit']
        target_label: 'unit'
";

pub(super) const SYSLOG: &str = "\
scrape_configs:
  - job_name: syslog
    syslog:
      listen_address: 0.0.0.0:1514
      idle_timeout: 60s
      label_structured_data: yes        # YAML 1.1 boolean!
      labels: {job: syslog}
    relabel_configs:
      - source_labels: ['__syslog_message_hostname']
        target_label: 'host'
";

pub(super) const PUSH: &str = "\
scrape_configs:
  - job_name: push1
    loki_push_api:
      server: {http_listen_port: 3500, grpc_listen_port: 3600}
      labels: {pushserver: push1}
";

#[test]
fn defaults_match_appendix_a() {
    let c = Config::default();
    assert_eq!(parse(""), c, "an empty file is all defaults");
    assert_eq!(parse("# just a comment\n"), c);
    assert_eq!(c.server.http_listen_port, 80);
    assert_eq!(c.server.grpc_listen_port, 9095);
    assert_eq!(c.server.log_level, LogLevel::Info);
    assert_eq!(c.server.log_format, LogFormat::Logfmt);
    assert!(c.server.register_instrumentation);
    assert!(c.server.health_check_target());
    assert_eq!(c.server.http_listen_network, "tcp");
    assert_eq!(
        c.server.graceful_shutdown_timeout,
        GoDuration::from_secs(30)
    );
    assert_eq!(
        c.server.http_server_idle_timeout,
        GoDuration::from_secs(120)
    );
    assert_eq!(c.positions.filename, "/var/log/positions.yaml");
    assert_eq!(c.positions.sync_period, GoDuration::from_secs(10));
    assert!(!c.positions.ignore_invalid_yaml);
    assert_eq!(c.target_config.sync_period, GoDuration::from_secs(10));
    assert!(!c.target_config.stdin);
    let fw = &c.global.file_watch_config;
    assert_eq!(fw.min_poll_frequency.as_std(), Duration::from_millis(250));
    assert_eq!(fw.max_poll_frequency.as_std(), Duration::from_millis(250));
    let l = &c.limits_config;
    assert!(!l.readline_rate_enabled);
    assert_eq!(l.readline_rate, 10000.0);
    assert_eq!(l.readline_burst, 10000);
    assert!(l.readline_rate_drop);
    assert_eq!(l.max_streams, 0);
    assert_eq!(l.max_line_size, ByteSize(0));
    assert!(!l.max_line_size_truncate);
    assert!(
        c.tracing.enabled,
        "tracing defaults to true in Promtail's code"
    );
    assert!(!c.wal.enabled);
    assert_eq!(c.wal.clean_segments_older_than, GoDuration::from_secs(3600));
    assert!(c.clients.is_empty() && c.client.is_none() && c.scrape_configs.is_empty());
    // ferrotail's own defaults.
    assert_eq!(c.ferrotail.inflight_bytes.bytes(), 4 << 20);
    assert_eq!(c.ferrotail.max_line_size_default.bytes(), 256 << 10);
    assert_eq!(c.ferrotail.long_line_action, LongLineAction::Truncate);
    assert_eq!(c.ferrotail.shutdown_timeout, GoDuration::from_secs(30));
    assert_eq!(c.ferrotail.client_concurrency, 1);
    assert_eq!(c.read_line_cap(), 256 << 10);
}

#[test]
fn client_defaults_match_appendix_a() {
    let c = &parse("clients:\n- url: http://loki:3100/loki/api/v1/push\n").clients[0];
    assert_eq!(c.batchwait, GoDuration::from_secs(1));
    assert_eq!(c.batchsize, 1_048_576);
    assert_eq!(c.timeout, GoDuration::from_secs(10));
    assert_eq!(c.backoff_config.min_period, GoDuration::from_millis(500));
    assert_eq!(c.backoff_config.max_period, GoDuration::from_secs(300));
    assert_eq!(
        c.backoff_config.max_retries, None,
        "unset: ferrotail retries until delivered"
    );
    assert_eq!(c.backoff_config.retry_limit(), None);
    assert!(!c.drop_rate_limited_batches);
    assert!(c.follow_redirects && c.enable_http2);
    assert_eq!(c.tenant_id, "");
    let c = &parse("clients:\n- url: http://x\n  backoff_config: {max_retries: 0}\n").clients[0];
    assert_eq!(c.backoff_config.max_retries, Some(0));
    assert_eq!(
        c.backoff_config.retry_limit(),
        None,
        "0 = forever, as in Promtail"
    );
    let c = &parse("clients:\n- url: http://x\n  backoff_config: {max_retries: 10}\n").clients[0];
    assert_eq!(c.backoff_config.retry_limit(), Some(10));
}

#[test]
fn appendix_c_vm_config() {
    let c = parse(VM);
    assert_eq!(c.server.http_listen_port, 9080);
    assert_eq!(c.server.grpc_listen_port, 0);
    assert_eq!(c.positions.filename, "/tmp/positions.yaml");
    assert_eq!(
        c.positions.sync_period,
        GoDuration::from_secs(10),
        "unset keys keep defaults"
    );
    let sc = &c.scrape_configs[0];
    assert_eq!(sc.job_name, "system");
    assert_eq!(sc.static_configs()[0].targets, ["localhost"]);
    assert_eq!(sc.static_configs()[0].labels["__path__"], "/var/log/*log");
    assert_eq!(c.validate_with(&crate::settings::Runtime).unwrap(), vec![]);
}

#[test]
fn appendix_c_other_configs_parse() {
    let j = parse(JOURNAL);
    let journal = j.scrape_configs[0].journal.as_ref().unwrap();
    assert_eq!(journal.get("max_age").and_then(|v| v.as_str()), Some("12h"));
    let rc = &j.scrape_configs[0].relabel_configs[0];
    assert_eq!(
        rc.source_labels.as_deref(),
        Some(&["__journal__systemd_unit".to_owned()][..])
    );
    assert_eq!(rc.target_label, "unit");
    assert_eq!(rc.action, RelabelAction::Replace);
    assert_eq!(rc.regex().as_str(), "(.*)");
    // Anchored as Promtail 3.4 does, `^(?:...)$`: `.` does not match a newline (checked
    // against Promtail 3.4.6: a default rule on a value with a newline sets nothing).
    assert!(rc.regex().regex().is_match("anything at all"));
    assert!(!rc.regex().regex().is_match("anything\nat all"));
    assert!(parse(SYSLOG).scrape_configs[0].syslog.is_some());
    assert!(parse(PUSH).scrape_configs[0].loki_push_api.is_some());
}

#[test]
fn null_and_empty_sections_keep_defaults() {
    let c = parse("limits_config:\npositions: ~\nserver: {}\nglobal:\noptions: {}\nclients:\n");
    assert_eq!(c, Config::default());
    let c = parse("clients:\n- url: http://x\n  backoff_config:\n  tls_config: ~\n");
    assert_eq!(
        c.clients[0].backoff_config.min_period,
        GoDuration::from_millis(500)
    );
}

#[test]
fn unknown_key_names_path_and_line() {
    let err = parse_err(
        "clients: [{url: http://x}]\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [x]\n        lables: {a: b}\n",
    );
    assert_eq!(
        err.path.as_deref(),
        Some("scrape_configs[0].static_configs[0].lables")
    );
    assert_eq!(err.location, Some((6, 9)));
    assert!(
        err.message.starts_with("unknown field `lables`"),
        "{}",
        err.message
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "test.yaml: scrape_configs[0].static_configs[0].lables: unknown field `lables`"
        ),
        "{shown}"
    );
    assert!(shown.ends_with(" at line 6 column 9"), "{shown}");

    let err = parse_err("serverr:\n  http_listen_port: 1\n");
    assert_eq!(err.path.as_deref(), Some("serverr"));
    assert_eq!(err.location, Some((1, 1)));
    let err = parse_err("clients:\n- url: http://x\n  batch_wait: 1s\n");
    assert_eq!(err.path.as_deref(), Some("clients[0].batch_wait"));
    let err = parse_err("options:\n  foo: 1\n");
    assert_eq!(err.path.as_deref(), Some("options.foo"));
    let err = parse_err("positions:\n  file: /x\n");
    assert_eq!(err.path.as_deref(), Some("positions.file"));
}

#[test]
fn wrong_types_and_bad_values() {
    let err = parse_err("server:\n  http_listen_port: abc\n");
    assert_eq!(err.path.as_deref(), Some("server.http_listen_port"));
    assert_eq!(err.location, Some((2, 21)));
    let err = parse_err("clients:\n  - url: http://x\n    batchwait: 1d\n");
    assert_eq!(err.path.as_deref(), Some("clients[0].batchwait"));
    assert!(
        err.message.contains("unknown unit \"d\""),
        "{}",
        err.message
    );
    assert_eq!(err.location.map(|l| l.0), Some(3));
    let err = parse_err("scrape_configs: {job_name: x}\n");
    assert_eq!(err.path.as_deref(), Some("scrape_configs"));
    let err = parse_err("server:\n  log_level: verbose\n");
    assert_eq!(err.path.as_deref(), Some("server.log_level"));
    assert!(err.message.contains("unrecognized log level"));
    let err = parse_err("server:\n  log_format: xml\n");
    assert_eq!(err.path.as_deref(), Some("server.log_format"));
    let err = parse_err("scrape_configs:\n- job_name: a\n  journal: [1]\n");
    assert_eq!(err.path.as_deref(), Some("scrape_configs[0].journal"));
    let err = parse_err("clients:\n- url: http://x\n  tls_config: {min_version: TLS9}\n");
    assert!(
        err.message.contains("unknown TLS version: TLS9"),
        "{}",
        err.message
    );
    let err = parse_err("a: [\n");
    assert!(
        err.message.contains("did not find expected"),
        "{}",
        err.message
    );
}

#[test]
fn duplicate_keys_are_fatal() {
    let err = parse_err(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels:\n          job: a\n          job: b\n",
    );
    assert!(
        err.message.contains("duplicate entry with key \"job\""),
        "{err}"
    );
    assert_eq!(
        err.path.as_deref(),
        Some("scrape_configs[0].static_configs[0].labels")
    );
    assert!(err.location.is_some());
    let err = parse_err("server: {}\nserver: {}\n");
    assert!(err.message.contains("duplicate"), "{err}");
    let err = parse_err("server:\n  foo: 1\n  foo: 2\n");
    assert!(
        err.message.contains("duplicate"),
        "unknown server keys too: {err}"
    );
}

#[test]
fn job_names_are_checked_at_load() {
    let err = parse_err("scrape_configs:\n- static_configs: []\n");
    assert_eq!(
        err.to_string(),
        "test.yaml: scrape_configs[0]: job_name is empty"
    );
    let err = parse_err(
        "scrape_configs:\n- job_name: x\n  static_configs: []\n- job_name: x\n  static_configs: []\n",
    );
    assert!(
        err.to_string()
            .ends_with("found multiple scrape configs with job name \"x\""),
        "{err}"
    );
}

#[test]
fn http_client_config_is_checked_at_load() {
    for (body, needle) in [
        (
            "basic_auth: {username: u, password: p, password_file: /f}",
            "at most one of basic_auth password",
        ),
        (
            "basic_auth: {username: u, username_file: /f}",
            "at most one of basic_auth username",
        ),
        (
            "bearer_token: t\n  bearer_token_file: /f",
            "at most one of bearer_token & bearer_token_file",
        ),
        (
            "bearer_token: t\n  basic_auth: {username: u}",
            "at most one of basic_auth, oauth2, bearer_token",
        ),
        (
            "authorization: {type: basic, credentials: c}",
            "authorization type cannot be set to \"basic\"",
        ),
        (
            "authorization: {type: Basic, credentials: c}",
            "authorization type cannot be set to \"basic\"",
        ),
        (
            "authorization: {credentials: c, credentials_file: /f}",
            "at most one of authorization credentials",
        ),
        (
            "authorization: {credentials: c}\n  bearer_token: t",
            "authorization is not compatible",
        ),
        (
            "authorization: {credentials: c}\n  basic_auth: {username: u}",
            "at most one of basic_auth, oauth2 & authorization",
        ),
        (
            "oauth2: {client_id: i}",
            "oauth2 token_url must be configured",
        ),
        (
            "oauth2: {token_url: http://t}",
            "oauth2 client_id must be configured",
        ),
        (
            "no_proxy: localhost",
            "if no_proxy is configured, proxy_url must also be configured",
        ),
        (
            "proxy_from_environment: true\n  proxy_url: http://p",
            "proxy_url must not be configured",
        ),
        (
            "proxy_connect_header: {X: [a]}",
            "if proxy_connect_header is configured",
        ),
        (
            "tls_config: {cert_file: /c}",
            "exactly one of key or key_file",
        ),
        (
            "tls_config: {ca: x, ca_file: /y}",
            "at most one of ca, ca_file",
        ),
        (
            "http_headers: {Authorization: {values: [x]}}",
            "setting header \"Authorization\" is not allowed",
        ),
    ] {
        let err = parse_err(&format!("clients:\n- url: http://x\n  {body}\n"));
        assert_eq!(err.path.as_deref(), Some("clients[0]"), "{body}");
        assert!(err.message.contains(needle), "{body}: {}", err.message);
    }
    let err = parse_err("client:\n  url: http://x\n  bearer_token: a\n  bearer_token_file: b\n");
    assert_eq!(err.path.as_deref(), Some("client"));
    // Valid combinations.
    let c = parse("clients:\n- url: http://x\n  authorization: {credentials: c}\n");
    assert_eq!(
        c.clients[0].authorization.as_ref().unwrap().scheme(),
        "Bearer"
    );
    parse("clients:\n- url: http://x\n  basic_auth: {username: u, password_file: /p}\n");
    parse(
        "clients:\n- url: http://x\n  tls_config: {cert_file: /c, key: k, insecure_skip_verify: true}\n",
    );
}

#[test]
fn relabel_regex_is_compiled_at_load() {
    let err = parse_err(
        "scrape_configs:\n- job_name: a\n  static_configs: []\n  relabel_configs:\n  - regex: '(unclosed'\n",
    );
    assert_eq!(
        err.path.as_deref(),
        Some("scrape_configs[0].relabel_configs[0].regex")
    );
    assert!(
        err.message.contains("error parsing regexp"),
        "{}",
        err.message
    );
    let err =
        parse_err("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: explode\n");
    assert!(
        err.message.contains("unknown relabel action \"explode\""),
        "{}",
        err.message
    );
    let c = parse(
        "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: LabelMap\n    regex: 'a(.+)'\n",
    );
    let rc = &c.scrape_configs[0].relabel_configs[0];
    assert_eq!(rc.action, RelabelAction::LabelMap);
    assert!(
        rc.regex().regex().is_match("abc") && !rc.regex().regex().is_match("xabc"),
        "anchored"
    );
}

#[test]
fn server_unknown_keys_warn() {
    let c = parse(
        "server:\n  http_listen_port: 9080\n  http_listen_host: x\n  grpc_server_max_connection_age: 5m\n",
    );
    assert_eq!(c.server.http_listen_port, 9080);
    assert_eq!(
        c.server.grpc_server_max_connection_age,
        GoDuration::from_secs(300)
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].path, "server.http_listen_host");
    assert_eq!(
        c.warnings[0].to_string(),
        "server.http_listen_host: unknown key, ignored"
    );
    let c = parse("server:\n  cluster_validation: {label: x, grpc: {enabled: true}}\n");
    assert!(c.warnings.is_empty());
}

#[test]
fn stream_lag_labels_are_accepted_with_a_warning() {
    let c = parse(
        "options:\n  stream_lag_labels: filename\nclients:\n- url: http://x\n  stream_lag_labels: [a]\n",
    );
    let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["clients[0].stream_lag_labels", "options.stream_lag_labels"]
    );
    let warnings = c.validate_with(&crate::settings::Runtime).unwrap();
    assert_eq!(warnings.len(), 2, "validate returns the parse warnings");
}

#[test]
fn yaml_merge_keys_are_resolved() {
    let c = parse(
        "clients:\n  - &c\n    url: http://a/push\n    tenant_id: t\n  - <<: *c\n    url: http://b/push\n",
    );
    assert_eq!(c.clients.len(), 2);
    assert_eq!(c.clients[1].url.as_deref(), Some("http://b/push"));
    assert_eq!(c.clients[1].tenant_id, "t");
    let err = parse_err("clients:\n  - &c\n    url: http://a/push\n  - <<: *c\n    urll: x\n");
    assert_eq!(err.path.as_deref(), Some("clients[1].urll"));
    assert_eq!(
        err.location, None,
        "lines refer to the rewritten text, so none is given"
    );
}

fn flags(args: &[&str]) -> Flags {
    Flags::parse(args.iter().map(|s| s.to_string())).unwrap()
}

#[test]
fn load_picks_the_first_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("promtail.yaml");
    std::fs::write(&real, VM).unwrap();
    let missing = dir.path().join("missing.yaml");
    let list = format!("{}, {}", missing.display(), real.display());
    let cfg = load(&flags(&[
        &format!("-config.file={list}"),
        "-server.http-listen-port=1234",
    ]))
    .unwrap();
    assert_eq!(cfg.scrape_configs[0].job_name, "system");
    assert_eq!(
        cfg.server.http_listen_port, 1234,
        "flags are applied by load"
    );

    let err = load(&flags(&[&format!("-config.file={}", missing.display())])).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "{} does not exist, set config.file for custom config path",
            missing.display()
        )
    );
}

#[test]
fn load_without_file_uses_defaults_and_flags() {
    let cfg = load(&flags(&["-client.url=http://loki/push"])).unwrap();
    assert_eq!(cfg.effective_clients().len(), 1);
    assert_eq!(cfg.positions.filename, "/var/log/positions.yaml");
}

#[test]
fn load_adds_the_expand_env_hint_only_without_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "server:\n  http_listen_port: ${PORT}\n").unwrap();
    let arg = format!("-config.file={}", path.display());
    let err = load(&flags(&[&arg])).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: server.http_listen_port: ", path.display())),
        "{err}"
    );
    assert!(
        err.ends_with(". Use `-config.expand-env=true` flag if you want to expand environment variables in your config file"),
        "{err}"
    );
    // With expansion (an unset variable with a default; the process env is not touched).
    std::fs::write(
        &path,
        "server:\n  http_listen_port: ${FERROTAIL_TEST_SURELY_UNSET_7Q:-9080}\n  log_level: bogus\n",
    )
    .unwrap();
    let err = load(&flags(&[&arg, "-config.expand-env"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unrecognized log level"), "{err}");
    assert!(!err.contains("expand-env"), "{err}");
    std::fs::write(
        &path,
        "server:\n  http_listen_port: ${FERROTAIL_TEST_SURELY_UNSET_7Q:-9080}\n",
    )
    .unwrap();
    let cfg = load(&flags(&[&arg, "-config.expand-env=true"])).unwrap();
    assert_eq!(cfg.server.http_listen_port, 9080);
    std::fs::write(&path, "# ${ broken\n").unwrap();
    let err = load(&flags(&[&arg, "-config.expand-env"])).unwrap_err();
    assert!(matches!(err, ConfigError::Expand { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: unable to parse variable name at line 1",
            path.display()
        )
    );
    // Without expansion the same text is a plain comment.
    load(&flags(&[&arg])).unwrap();
}

#[test]
fn load_rejects_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.yaml");
    std::fs::write(&path, b"server: {http_listen_address: \"\xff\"}\n").unwrap();
    let err = load(&flags(&[&format!("-config.file={}", path.display())])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn server_known_keys_match_the_struct() {
    use crate::config::{ServerConfig, ServerTlsConfig};
    let server = ServerConfig {
        http_tls_config: ServerTlsConfig {
            cert_file: "x".into(),
            ..Default::default()
        },
        grpc_tls_config: ServerTlsConfig {
            cert_file: "x".into(),
            ..Default::default()
        },
        cluster_validation: Some(serde_yaml::Value::Null),
        health_check_target: Some(true),
        ..Default::default()
    };
    let value = serde_yaml::to_value(&server).unwrap();
    let mut keys: Vec<&str> = value
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    let mut known = ServerConfig::KNOWN_KEYS.to_vec();
    known.sort_unstable();
    assert_eq!(keys, known);
    // And every known key parses without a warning.
    let text: String = ServerConfig::KNOWN_KEYS
        .iter()
        .map(|k| format!("  {k}: ~\n"))
        .collect();
    assert!(parse(&format!("server:\n{text}")).warnings.is_empty());
}

#[test]
fn deep_flow_nesting_is_refused_before_serde_yaml_scans_it() {
    // Found by probing the config fuzz target with large inputs: `[` repeated takes serde_yaml
    // quadratic time (32 KiB: seconds) before its recursion limit refuses it.
    let text = format!("scrape_configs: {}", "[".repeat(40_000));
    let e = parse_err(&text);
    assert_eq!(
        e.to_string(),
        "test.yaml: flow collections ([...] or {...}) nested more than 128 deep at line 1 \
         column 145"
    );
    assert_eq!(e.location, Some((1, 145)));
}
