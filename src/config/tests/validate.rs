//! Validation (Promtail's start-up checks and ferrotail's refusals) and masked printing.

use super::load::{JOURNAL, PUSH, SYSLOG};
use super::{parse, problems};
use crate::config::{Config, ConfigError, Flags, apply_flags};

const CLIENT: &str = "clients: [{url: http://loki:3100/loki/api/v1/push}]\n";

fn file_job(extra: &str) -> String {
    format!(
        "{CLIENT}scrape_configs:\n- job_name: files\n  static_configs:\n  - labels: {{__path__: /var/log/*.log}}\n{extra}"
    )
}

#[test]
fn appendix_c_targets_are_refused_by_path() {
    // journal is supported: Appendix C's example validates.
    assert!(
        parse(&format!("{CLIENT}{JOURNAL}"))
            .validate_with(&crate::settings::Runtime)
            .is_ok()
    );
    // syslog is supported: Appendix C's example validates.
    assert!(
        parse(&format!("{CLIENT}{SYSLOG}"))
            .validate_with(&crate::settings::Runtime)
            .is_ok()
    );
    // loki_push_api is supported, but Appendix C's example opens a gRPC port that ferrotail
    // does not serve: refused by path, saying what to change.
    let p = problems(&parse(&format!("{CLIENT}{PUSH}")));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "scrape_configs[0].loki_push_api: server.grpc_listen_port: 3600 is refused"
        ) && p[0].contains("set grpc_listen_port to 0"),
        "{p:?}"
    );
    let ok = format!(
        "{CLIENT}{}",
        PUSH.replace("grpc_listen_port: 3600", "grpc_listen_port: 0")
    );
    assert!(parse(&ok).validate_with(&crate::settings::Runtime).is_ok());
}

#[test]
fn http_tls_settings_are_checked() {
    let with =
        |server: &str| parse(&file_job("").replace(CLIENT, &format!("{CLIENT}server: {server}\n")));
    // Accepted (the files are read when the server starts).
    for ok in [
        "{http_tls_config: {cert_file: /c, key_file: /k}}",
        "{http_tls_config: {cert: C, key: K, client_auth_type: RequireAnyClientCert}}",
        "{http_tls_config: {cert_file: /c, key_file: /k, client_auth_type: \
         RequireAndVerifyClientCert, client_ca_file: /ca}}",
        "{http_tls_config: {cert_file: /c, key_file: /k, client_auth_type: \
         VerifyClientCertIfGiven, client_ca: CA}}",
        "{tls_min_version: VersionTLS13, tls_cipher_suites: \
         'TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'}",
    ] {
        let cfg = with(ok);
        assert!(
            cfg.validate_with(&crate::settings::Runtime).is_ok(),
            "{ok}: {:?}",
            cfg.validate_with(&crate::settings::Runtime)
        );
    }
    for (bad, want) in [
        (
            "{http_tls_config: {cert_file: /c}}",
            "server.http_tls_config.key_file: missing one of key or key_file",
        ),
        (
            "{http_tls_config: {key: K}}",
            "server.http_tls_config.cert_file: missing one of cert or cert_file",
        ),
        (
            "{http_tls_config: {client_auth_type: RequireAndVerifyClientCert}}",
            "server.http_tls_config.cert_file: missing one of cert or cert_file",
        ),
        (
            "{http_tls_config: {cert_file: /c, key_file: /k, client_auth_type: Always}}",
            "server.http_tls_config.client_auth_type: invalid ClientAuth: \"Always\"",
        ),
        (
            "{http_tls_config: {cert_file: /c, key_file: /k, client_ca_file: /ca}}",
            "server.http_tls_config.client_ca_file: client CA's have been configured without a \
             Client Auth Policy",
        ),
        (
            "{http_tls_config: {cert_file: /c, key_file: /k, client_auth_type: \
             RequireAndVerifyClientCert}}",
            "server.http_tls_config.client_ca_file: client_auth_type RequireAndVerifyClientCert \
             needs client_ca_file",
        ),
        (
            "{tls_min_version: TLS12}",
            "server.tls_min_version: TLS version \"TLS12\" not recognized",
        ),
        (
            "{tls_cipher_suites: 'TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384'}",
            "server.tls_cipher_suites: cipher suite \" TLS_AES_256_GCM_SHA384\" not recognized",
        ),
    ] {
        let p = problems(&with(bad));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert!(p[0].starts_with(want), "{bad}: {p:?}");
    }
    // Accepted with a warning (when TLS is on): what rustls cannot offer.
    let suites = "tls_min_version: VersionTLS10, tls_cipher_suites: \
                  'TLS_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'";
    assert!(
        with(&format!("{{{suites}}}"))
            .validate_with(&crate::settings::Runtime)
            .unwrap()
            .is_empty()
    );
    let w = with(&format!(
        "{{{suites}, http_tls_config: {{cert_file: /c, key_file: /k}}}}"
    ))
    .validate_with(&crate::settings::Runtime)
    .unwrap();
    let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["server.tls_min_version", "server.tls_cipher_suites"]
    );
    assert!(
        w[1].message.contains("TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{w:?}"
    );
}

#[test]
fn runtime_reload_is_refused_not_ignored() {
    let p = problems(&parse(&file_job("").replace(
        CLIENT,
        &format!("{CLIENT}server: {{enable_runtime_reload: true}}\n"),
    )));
    assert_eq!(
        p,
        ["server.enable_runtime_reload: true is not supported yet"]
    );
    let mut cfg = parse(&file_job(""));
    apply_flags(
        &mut cfg,
        &Flags::parse(["-server.enable-runtime-reload".to_owned()]).unwrap(),
    );
    assert_eq!(
        problems(&cfg),
        ["server.enable_runtime_reload: true is not supported yet"]
    );
}

#[test]
fn all_refusals_are_reported_together() {
    let text = "\
server:
  grpc_tls_config: {cert_file: /c, key_file: /k}
clients:
  - url: http://a/push
    oauth2: {client_id: i, client_secret: s, token_url: http://t}
  - url: http://b/push
    proxy_url: http://proxy:3128
    no_proxy: localhost
    http_headers: {X-A: {values: [v]}}
    tls_config: {min_version: TLS12, max_version: TLS13, ca_ref: r}
    basic_auth: {username: u, password_ref: p}
target_config: {stdin: true}
wal: {enabled: true}
scrape_configs:
  - job_name: a
    static_configs: [{labels: {__path__: /x}}]
    encoding: UTF-16
    decompression: {enabled: true, format: gz}
    relabel_configs: [{target_label: t}]
  - job_name: b
    file_sd_configs: [{files: [/etc/t/*.yaml]}]
    kubernetes_sd_configs: [{role: pod}]
    docker_sd_configs: [{host: 'https://docker:2376'}]
  - job_name: c
    kafka: {brokers: [k:9092], topics: [t]}
    cloudflare: {}
";
    let mut cfg = parse(text);
    apply_flags(&mut cfg, &Flags::parse(["-inspect".to_owned()]).unwrap());
    let p = problems(&cfg);
    let want = [
        "clients[0].oauth2 is not supported yet",
        "clients[1].http_headers is not supported yet",
        "clients[1].no_proxy is not supported yet",
        "clients[1].tls_config.ca_ref is not supported yet",
        "clients[1].tls_config.min_version is not supported yet",
        "clients[1].tls_config.max_version is not supported yet",
        "clients[1].basic_auth.password_ref is not supported yet",
        "scrape_configs[0].decompression is not supported yet",
        "scrape_configs[0].encoding is not supported yet",
        "scrape_configs[1].docker_sd_configs[0]: docker host \"https://docker:2376\": https \
         hosts (TLS to the engine) are not supported yet; use unix:// or tcp://",
        "scrape_configs[2].kafka is not supported: ferrotail has no Kafka consumer; read the \
         topics with Grafana Alloy (loki.source.kafka) or Vector (kafka source) and send to \
         Loki, or to a ferrotail loki_push_api job",
        "scrape_configs[2].cloudflare is not supported: ferrotail does not pull Cloudflare \
         Logpull; use Grafana Alloy (loki.source.cloudflare)",
        "server.grpc_tls_config is not supported yet",
        "wal is not supported yet",
        "-inspect is not supported yet",
    ];
    assert_eq!(p, want);
    let shown = ConfigError::Invalid(p).to_string();
    assert!(
        shown.starts_with("15 problems in the configuration:\n  - clients[0].oauth2"),
        "{shown}"
    );
}

#[test]
fn supported_client_settings_pass() {
    let text = "\
clients:
  - url: https://123:glc_token@logs.example.net/loki/api/v1/push
    name: cloud
    tenant_id: 1
    batchwait: 2s
    batchsize: 512000
    timeout: 5s
    headers: {X-Custom: v}
    external_labels: {cluster: prod}
    backoff_config: {min_period: 1s, max_period: 1m, max_retries: 20}
    drop_rate_limited_batches: true
    basic_auth: {username: u, password_file: /run/secrets/p}
    proxy_url: http://proxy:3128
    tls_config: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem, server_name: loki, insecure_skip_verify: false}
    follow_redirects: false
    enable_http2: false
  - url: http://loki:3100/loki/api/v1/push
    authorization: {type: Token, credentials_file: /t}
  - url: http://loki2:3100/loki/api/v1/push
    bearer_token: abc
  - url: http://loki3:3100/loki/api/v1/push
    decompression_is_not_here: 1
";
    let err = super::parse_err(text);
    assert_eq!(
        err.path.as_deref(),
        Some("clients[3].decompression_is_not_here")
    );
    let text = text.replace("    decompression_is_not_here: 1\n", "");
    let cfg = parse(&format!(
        "{text}limits_config: {{max_streams: 100, max_line_size: 1MB, max_line_size_truncate: true}}\n\
         scrape_configs:\n- job_name: f\n  static_configs: [{{labels: {{__path__: /x}}}}]\n  decompression: {{enabled: false}}\n"
    ));
    assert_eq!(
        cfg.validate_with(&crate::settings::Runtime).unwrap(),
        vec![]
    );
    assert_eq!(cfg.read_line_cap(), 1 << 20);
}

#[test]
fn clients_are_required_and_need_urls() {
    let p = problems(&parse(
        "scrape_configs:\n- job_name: a\n  static_configs: []\n",
    ));
    assert_eq!(p, ["at least one client config must be provided"]);
    let p = problems(&parse(
        "clients:\n- tenant_id: a\n- url: ftp://x/y\n- url: 'http://[::1'\n",
    ));
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(p[0], "clients[0]: client needs target URL");
    assert!(
        p[1].starts_with("clients[1].url: unsupported scheme \"ftp\""),
        "{}",
        p[1]
    );
    assert!(p[2].starts_with("clients[2].url: invalid URL"), "{}", p[2]);
    let p = problems(&parse(
        "clients:\n- url: http://x/push\n  proxy_url: socks5://p:1080\n",
    ));
    assert!(
        p[0].starts_with("clients[0].proxy_url: unsupported scheme"),
        "{p:?}"
    );
}

#[test]
fn duplicate_client_names() {
    let p = problems(&parse(
        "clients:\n- url: http://x/push\n- url: http://x/push\n",
    ));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(
            "clients[1]: duplicate client configs are not allowed, found duplicate for name: "
        ),
        "{}",
        p[0]
    );
    let p = problems(&parse(
        "clients:\n- url: http://a/push\n  name: l\n- url: http://b/push\n  name: l\n",
    ));
    assert_eq!(
        p,
        ["clients[1]: duplicate client configs are not allowed, found duplicate for name: l"]
    );
    let cfg = parse("clients:\n- url: http://a/push\n- url: http://b/push\n");
    cfg.validate_with(&crate::settings::Runtime).unwrap();
    let (a, b) = (
        cfg.clients[0].effective_name(),
        cfg.clients[1].effective_name(),
    );
    assert_eq!(a.len(), 6);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    assert_eq!(a, cfg.clients[0].clone().effective_name(), "stable");
}

#[test]
fn a_job_needs_a_target() {
    let p = problems(&parse(&format!(
        "{CLIENT}scrape_configs:\n- job_name: lonely\n  pipeline_stages: [{{docker: {{}}}}]\n"
    )));
    assert_eq!(p, ["no valid target scrape config defined for \"lonely\""]);
    // An empty static_configs list makes a file job with no targets (as in Promtail).
    parse(&format!(
        "{CLIENT}scrape_configs:\n- job_name: a\n  static_configs: []\n"
    ))
    .validate_with(&crate::settings::Runtime)
    .unwrap();
}

#[test]
fn file_sd_patterns_are_checked_as_promtail_checks_them() {
    let job = |files: &str, extra: &str| {
        parse(&format!(
            "{CLIENT}scrape_configs:\n- job_name: sd\n  file_sd_configs:\n  - files: {files}\n{extra}"
        ))
    };
    job("[/etc/targets/*.yaml, /etc/targets/extra.json]", "")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    for (files, needle) in [
        (
            "[/etc/*/targets.yaml]",
            "scrape_configs[0].file_sd_configs[0].files: ",
        ),
        (
            "[/etc/targets/*.txt]",
            "scrape_configs[0].file_sd_configs[0].files: ",
        ),
        ("[]", "scrape_configs[0].file_sd_configs[0].files: "),
    ] {
        let p = problems(&job(files, ""));
        assert_eq!(p.len(), 1, "{files}: {p:?}");
        assert!(p[0].starts_with(needle), "{files}: {p:?}");
    }
    let p = problems(&job("[/t/*.yaml]", "    refresh_interval: 0s\n"));
    assert_eq!(
        p,
        ["scrape_configs[0].file_sd_configs[0].refresh_interval: must be greater than 0"]
    );
}

#[test]
fn kubernetes_sd_configs_are_checked_as_prometheus_checks_them() {
    let job = |k8s: &str| {
        parse(&format!(
            "{CLIENT}scrape_configs:\n- job_name: pods\n  kubernetes_sd_configs: [{k8s}]\n"
        ))
    };
    job("{role: pod}")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    job("{role: pod, namespaces: {names: [a, b]}, selectors: [{role: pod, label: 'app=web'}]}")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    for role in ["node", "service", "endpoints", "endpointslice", "ingress"] {
        job(&format!("{{role: {role}}}"))
            .validate_with(&crate::settings::Runtime)
            .unwrap();
    }
    job("{role: endpoints, selectors: [{role: service, label: 'a=b'}, {role: pod, field: 'x=y'}]}")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    for (k8s, needle) in [
        ("{}", "role"),
        (
            "{role: pod, api_server: 'https://k', kubeconfig_file: /k}",
            "api_server",
        ),
        ("{role: pod, surprise: 1}", "surprise"),
        (
            "{role: services}",
            "role: unknown Kubernetes SD role \"services\"",
        ),
        (
            "{role: node, selectors: [{role: pod}]}",
            "node role supports only node selectors",
        ),
    ] {
        let p = problems(&job(k8s));
        assert_eq!(p.len(), 1, "{k8s}: {p:?}");
        assert!(
            p[0].starts_with("scrape_configs[0].kubernetes_sd_configs[0]: ")
                && p[0].contains(needle),
            "{k8s}: {p:?}"
        );
    }
}

#[test]
fn docker_sd_configs_are_checked_as_prometheus_checks_them() {
    let job = |docker: &str| {
        parse(&format!(
            "{CLIENT}scrape_configs:\n- job_name: containers\n  docker_sd_configs: [{docker}]\n"
        ))
    };
    job("{host: unix:///var/run/docker.sock}")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    job("{host: 'tcp://127.0.0.1:2375', refresh_interval: 5s, filters: [{name: name, values: [flog]}]}")
        .validate_with(&crate::settings::Runtime)
        .unwrap();
    for (docker, needle) in [
        ("{}", "host missing"),
        ("{host: unix:///d.sock, surprise: 1}", "surprise"),
        (
            "{host: unix:///d.sock, refresh_interval: 0s}",
            "refresh_interval",
        ),
        (
            "{host: 'tcp://d:1', oauth2: {client_id: i}}",
            "oauth2 is not supported yet",
        ),
    ] {
        let p = problems(&job(docker));
        assert_eq!(p.len(), 1, "{docker}: {p:?}");
        assert!(
            p[0].starts_with("scrape_configs[0].docker_sd_configs[0]: ") && p[0].contains(needle),
            "{docker}: {p:?}"
        );
    }
}

#[test]
fn relabel_rules_are_validated() {
    for (rule, needle) in [
        (
            "{action: hashmod, target_label: t}",
            "requires non-zero modulus",
        ),
        ("{action: replace}", "requires 'target_label' value"),
        (
            "{action: lowercase, target_label: t, replacement: x}",
            "'replacement' can not be set",
        ),
        (
            "{action: keepequal, target_label: t, separator: ','}",
            "requires only 'source_labels'",
        ),
        (
            "{action: keepequal, target_label: t, regex: '(.*)'}",
            "requires only 'source_labels'",
        ),
        (
            "{action: labeldrop, regex: x, target_label: t}",
            "requires only 'regex'",
        ),
        (
            "{action: labelkeep, source_labels: []}",
            "requires only 'regex'",
        ),
        (
            "{action: labelmap, replacement: ''}",
            "invalid 'replacement'",
        ),
        (
            "{source_labels: [''], target_label: t}",
            "is not a valid label name",
        ),
        // Promtail 3.4 validates names with Prometheus' legacy rule (checked against 3.4.6).
        (
            "{source_labels: [a], target_label: foo.bar}",
            "\"foo.bar\" is invalid 'target_label' for replace action",
        ),
        (
            "{source_labels: [a], target_label: '1x$1'}",
            "invalid 'target_label'",
        ),
        (
            "{action: uppercase, source_labels: [a], target_label: 'x-y'}",
            "invalid 'target_label' for uppercase action",
        ),
        (
            "{action: labelmap, regex: 'a_(.+)', replacement: 'b.$1'}",
            "invalid 'replacement' for labelmap action",
        ),
        (
            "{source_labels: [a.b], target_label: t}",
            "is not a valid label name",
        ),
    ] {
        let p = problems(&parse(&file_job(&format!("  relabel_configs: [{rule}]\n"))));
        assert!(
            p[0].starts_with("scrape_configs[0].relabel_configs[0]: "),
            "{rule}: {p:?}"
        );
        assert!(p[0].contains(needle), "{rule}: {p:?}");
        assert_eq!(p.len(), 1, "{rule}: {p:?}");
    }
    for ok in [
        "{action: keep, source_labels: [a], regex: b}",
        "{action: labeldrop, regex: x}",
        "{action: dropequal, source_labels: [a], target_label: b}",
        "{source_labels: [a, b], target_label: 'x_${1}_$2'}",
        "{action: labelmap, regex: '__meta_kubernetes_pod_label_(.+)'}",
    ] {
        let cfg = parse(&file_job(&format!("  relabel_configs: [{ok}]\n")));
        assert!(cfg.validate_with(&crate::settings::Runtime).is_ok(), "{ok}");
    }
}

#[test]
fn ferrotail_section() {
    let cfg = parse(&file_job(
        "ferrotail:\n  inflight_bytes: 16MB\n  max_line_size_default: 1mb\n  long_line_action: drop\n  shutdown_timeout: 1m\n  client_concurrency: 4\n",
    ));
    cfg.validate_with(&crate::settings::Runtime).unwrap();
    assert_eq!(cfg.ferrotail.inflight_bytes.bytes(), 16 << 20);
    assert_eq!(cfg.read_line_cap(), 1 << 20);
    let err = super::parse_err("ferrotail:\n  inflight: 1\n");
    assert_eq!(err.path.as_deref(), Some("ferrotail.inflight"));
    let err = super::parse_err("ferrotail:\n  long_line_action: split\n");
    assert!(
        err.message.contains("unknown long_line_action"),
        "{}",
        err.message
    );
    let cfg = parse(&file_job(
        "ferrotail: {client_concurrency: 0, inflight_bytes: 0}\n",
    ));
    assert_eq!(
        problems(&cfg),
        [
            "ferrotail.client_concurrency must be at least 1",
            "ferrotail.inflight_bytes must be greater than 0"
        ]
    );
}

#[test]
fn deprecated_client_block_warns() {
    let cfg = parse("client:\n  url: http://loki/push\n  external_labels: {a: b}\n");
    let w = cfg.validate_with(&crate::settings::Runtime).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "client");
    assert_eq!(cfg.effective_clients()[0].external_labels["a"], "b");
}

/// A config with every kind of secret Promtail's config can hold, each named `SECRET_*`.
const ALL_SECRETS: &str = "\
server:
  http_tls_config: {cert: CERTPEM, key: SECRET_SERVER_KEY}
clients:
  - url: https://user123:SECRET_URL_PASS@logs.example.net/loki/api/v1/push
    basic_auth: {username: visible_user, password: SECRET_BASIC}
    headers: {Authorization: SECRET_HEADER, X-Plain: visible_header}
    tls_config: {cert: CERTPEM, key: SECRET_TLS_KEY}
  - url: http://b/push
    bearer_token: SECRET_BEARER
  - url: http://c/push
    authorization: {type: Bearer, credentials: SECRET_CREDS}
    proxy_url: http://proxyuser:SECRET_PROXY_PASS@proxy:3128
  - url: http://d/push
    oauth2: {client_id: visible_id, client_secret: SECRET_OAUTH, token_url: http://t}
  - url: http://e/push
    http_headers: {X-A: {values: [visible_value], secrets: [SECRET_HH]}}
    proxy_url: http://p
    proxy_connect_header: {Proxy-Authorization: [SECRET_PCH]}
scrape_configs:
  - job_name: k
    kafka:
      authentication: {type: sasl, sasl_config: {user: visible_sasl, password: SECRET_SASL}}
  - job_name: cf
    cloudflare: {api_token: SECRET_CF, zone_id: z}
  - job_name: files
    static_configs: [{labels: {__path__: /x}}]
    pipeline_stages:
      - json: {expressions: {key: visible_stage_key}}
";

#[test]
fn masked_yaml_hides_every_secret() {
    let out = parse(ALL_SECRETS).to_yaml_masked();
    assert!(!out.contains("SECRET"), "{out}");
    for visible in [
        "visible_user",
        "visible_header",
        "visible_id",
        "visible_value",
        "visible_sasl",
        "visible_stage_key",
        "CERTPEM",
        "https://user123:<secret>@logs.example.net/loki/api/v1/push",
        "http://proxyuser:<secret>@proxy:3128",
    ] {
        assert!(out.contains(visible), "{visible} missing from:\n{out}");
    }
    // The printed config parses back (masked values are plain strings).
    let back: Config = serde_yaml::from_str(&out).unwrap();
    assert_eq!(back.scrape_configs.len(), 3);
}

#[test]
fn debug_output_of_config_types_hides_every_secret() {
    let mut cfg = parse(ALL_SECRETS);
    apply_flags(
        &mut cfg,
        &Flags::parse(["-client.url=http://flaguser:SECRET_FLAG_URL@loki/push".to_owned()])
            .unwrap(),
    );
    // `{:?}` of the config and of each part that holds secrets (what an error, a log field or
    // a panic would print), plain and pretty.
    let mut printed = vec![format!("{cfg:?}"), format!("{cfg:#?}")];
    printed.push(format!("{:?}", cfg.server));
    printed.push(format!("{:?}", cfg.server.http_tls_config));
    for c in cfg.effective_clients() {
        printed.push(format!("{c:?}"));
        printed.push(format!("{:?}", c.basic_auth));
        printed.push(format!("{:?}", c.authorization));
        printed.push(format!("{:?}", c.oauth2));
        printed.push(format!("{:?}", c.tls_config));
        printed.push(format!("{:?}", c.http_headers));
    }
    for sc in &cfg.scrape_configs {
        printed.push(format!("{sc:?}"));
    }
    let flags =
        Flags::parse(["-client.url=http://u:SECRET_FLAG_URL@loki/push".to_owned()]).unwrap();
    printed.push(format!("{flags:?}"));
    for out in &printed {
        assert!(!out.contains("SECRET"), "{out}");
    }
    let all = printed.concat();
    for visible in [
        "visible_user",
        "visible_header",
        "visible_id",
        "flaguser",
        "https://user123:<secret>@logs.example.net/loki/api/v1/push",
    ] {
        assert!(all.contains(visible), "{visible} missing from {all}");
    }
}

#[test]
fn url_errors_mask_the_password() {
    for url in [
        "http://user:SECRET_PORT@loki:99999/push",
        "ftp://user:SECRET_SCHEME@loki/push",
        "user:SECRET_NO_SCHEME@loki/push",
    ] {
        let text = format!(
            "clients: [{{url: '{url}', proxy_url: '{}'}}]\nscrape_configs:\n- job_name: f\n  \
             static_configs: [{{labels: {{__path__: /x}}}}]\n",
            url.replace("user:", "proxyuser:")
        );
        let p = problems(&parse(&text)).join("\n");
        assert!(!p.contains("SECRET"), "{p}");
        assert!(
            p.contains("user:<secret>@") && p.contains("proxy_url"),
            "{p}"
        );
    }
}

#[test]
fn printed_config_round_trips() {
    let cfg = parse(&file_job(
        "  pipeline_stages:\n  - regex: {expression: '^(?P<a>\\d+)'}\nlimits_config: {max_line_size: 256kb}\n\
         positions: {sync_period: 1.5s}\nserver: {log_level: debug}\n",
    ));
    let out = cfg.to_yaml_masked();
    assert!(out.contains("max_line_size: 256KB"), "{out}");
    assert!(out.contains("sync_period: 1.5s"), "{out}");
    let back = Config::parse_str(&out, "printed").unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn values_promtail_would_crash_or_misbehave_on_are_refused_by_path() {
    let text = "\
positions: {filename: ''}
clients:
- url: http://loki:3100/loki/api/v1/push
  batchwait: -1s
  external_labels: {0host: a, ok: b}
scrape_configs:
- job_name: files
  static_configs:
  - labels: {__path__: /var/log/*.log, my-label: x}
";
    assert_eq!(
        problems(&parse(text)),
        [
            "clients[0].batchwait must be greater than 0",
            "clients[0].external_labels: \"0host\" is not a valid label name",
            "scrape_configs[0].static_configs[0].labels: \"my-label\" is not a valid label name",
            "positions.filename must not be empty",
        ]
    );
}
