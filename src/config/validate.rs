//! Parsing passes and validation.
//!
//! Parsing runs in two passes over the text: a generic one (YAML syntax, duplicate keys anywhere,
//! unknown `server:` keys) and a typed, strict one whose errors carry the YAML path (from
//! serde_path_to_error) and the line/column (from serde_yaml). Then the checks Promtail makes
//! while unmarshalling (job names, HTTP client consistency) run, so they are parse errors too.
//!
//! Validation runs on the loaded config after flags: Promtail's start-up checks, then the
//! refusal of every setting ferrotail does not implement yet. All problems are collected.

use std::collections::HashMap;

use serde_yaml::Value;

use super::yaml_depth::{TooDeep, check_flow_depth};
use super::{ClientConfig, Config, ConfigError, ParseError, RuntimeChecks, ServerConfig, Warning};

fn parse_error(
    origin: &str,
    path: Option<String>,
    message: String,
    location: Option<(usize, usize)>,
) -> ConfigError {
    ConfigError::Parse(ParseError {
        origin: origin.to_owned(),
        path,
        message,
        location,
        expand_env_hint: false,
    })
}

/// Splits a serde_yaml error into path, bare message and location.
fn yaml_error(
    origin: &str,
    p2e_path: Option<String>,
    err: &serde_yaml::Error,
    with_location: bool,
) -> ConfigError {
    let mut message = err.to_string();
    let mut location = err.location().map(|l| (l.line(), l.column()));
    if let Some((line, column)) = location {
        let suffix = format!(" at line {line} column {column}");
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        } else if message.contains(" at line ") {
            // A libyaml syntax error names its own positions inside the message.
            location = None;
        }
    }
    // serde_yaml prefixes the path of the enclosing node; keep ours (which is deeper) instead.
    let mut path = p2e_path.filter(|p| p != ".");
    if let Some((prefix, rest)) = message.split_once(": ") {
        let looks_like_path = !prefix.contains(' ');
        let covered = path.as_deref().is_some_and(|p| p.starts_with(prefix));
        if looks_like_path && (covered || path.is_none()) {
            if path.is_none() {
                path = Some(prefix.to_owned());
            }
            message = rest.to_owned();
        }
    }
    parse_error(origin, path, message, location.filter(|_| with_location))
}

fn has_merge_keys(v: &Value) -> bool {
    match v {
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_keys(v)),
        Value::Sequence(s) => s.iter().any(has_merge_keys),
        Value::Tagged(t) => has_merge_keys(&t.value),
        _ => false,
    }
}

pub(super) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    // Deep flow nesting would make serde_yaml take quadratic time before refusing it.
    check_flow_depth(text).map_err(|e| {
        let location = Some((e.line, e.column));
        parse_error(origin, None, TooDeep::MESSAGE.to_owned(), location)
    })?;
    // Pass 1: syntax and duplicate keys (a `serde_yaml::Value` rejects duplicates at any depth).
    let mut doc: Value =
        serde_yaml::from_str(text).map_err(|e| yaml_error(origin, None, &e, true))?;
    // YAML merge keys (`<<: *anchor`) are resolved on the generic tree, which is then printed
    // and parsed again; line numbers would then refer to the rewritten text, so they are dropped.
    let merged;
    let (source, with_location) = if has_merge_keys(&doc) {
        doc.apply_merge()
            .map_err(|e| yaml_error(origin, None, &e, false))?;
        merged = serde_yaml::to_string(&doc).map_err(|e| yaml_error(origin, None, &e, false))?;
        (merged.as_str(), false)
    } else {
        (text, true)
    };

    let mut warnings = Vec::new();
    if let Some(Value::Mapping(server)) = doc.get("server") {
        for key in server.keys() {
            let name = key
                .as_str()
                .map_or_else(|| format!("{key:?}"), str::to_owned);
            if !ServerConfig::KNOWN_KEYS.contains(&name.as_str()) {
                warnings.push(Warning {
                    path: format!("server.{name}"),
                    message: "unknown key, ignored".to_owned(),
                });
            }
        }
    }

    // Pass 2: the typed, strict parse.
    let de = serde_yaml::Deserializer::from_str(source);
    let mut cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        yaml_error(origin, Some(path), e.inner(), with_location)
    })?;

    // Checks Promtail makes while unmarshalling.
    let mut seen = HashMap::new();
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
        if sc.job_name.is_empty() {
            let msg = "job_name is empty".to_owned();
            return Err(parse_error(
                origin,
                Some(format!("scrape_configs[{i}]")),
                msg,
                None,
            ));
        }
        if seen.insert(sc.job_name.as_str(), i).is_some() {
            let msg = format!(
                "found multiple scrape configs with job name {:?}",
                sc.job_name
            );
            return Err(parse_error(
                origin,
                Some(format!("scrape_configs[{i}]")),
                msg,
                None,
            ));
        }
    }
    let clients = cfg
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("clients[{i}]"), c));
    for (path, c) in clients.chain(cfg.client.iter().map(|c| ("client".to_owned(), c))) {
        c.check()
            .map_err(|msg| parse_error(origin, Some(path.clone()), msg, None))?;
        if c.stream_lag_labels.is_some() {
            warnings.push(stream_lag_warning(format!("{path}.stream_lag_labels")));
        }
    }
    if cfg.options.stream_lag_labels.is_some() {
        warnings.push(stream_lag_warning("options.stream_lag_labels".to_owned()));
    }
    cfg.warnings = warnings;
    Ok(cfg)
}

fn stream_lag_warning(path: String) -> Warning {
    Warning {
        path,
        message: "removed in Promtail 3.0 (the metric it fed no longer exists); ignored".to_owned(),
    }
}

/// Label names must be legacy Prometheus names, as Prometheus' `LabelName` YAML decoding (and
/// so Promtail) requires; `__path__` and the other `__` names pass.
fn check_label_names<'a>(
    path: &str,
    names: impl Iterator<Item = &'a String>,
    problems: &mut Vec<String>,
) {
    for name in names {
        if !crate::units::is_legacy_label_name(name) {
            problems.push(format!("{path}: {name:?} is not a valid label name"));
        }
    }
}

/// What to use for a Promtail source ferrotail does not have and has no plan for: the refusal
/// names a maintained replacement, so that a user can move the job rather than wait.
fn instead(key: &str) -> Option<&'static str> {
    Some(match key {
        "windows_events" => {
            "ferrotail runs on Linux only; ship the Windows event log with Grafana Alloy \
             (loki.source.windowsevent)"
        }
        "kafka" => {
            "ferrotail has no Kafka consumer; read the topics with Grafana Alloy \
             (loki.source.kafka) or Vector (kafka source) and send to Loki, or to a ferrotail \
             loki_push_api job"
        }
        "gcplog" => {
            "ferrotail has no Google Pub/Sub client; use Grafana Alloy (loki.source.gcplog, pull \
             or push subscriptions) or Vector (gcp_pubsub source)"
        }
        "azure_event_hubs" => {
            "ferrotail has no Event Hubs client; use Grafana Alloy \
             (loki.source.azure_event_hubs) or Vector (its kafka source on the hub's Kafka \
             endpoint)"
        }
        "cloudflare" => {
            "ferrotail does not pull Cloudflare Logpull; use Grafana Alloy \
             (loki.source.cloudflare)"
        }
        _ => return None,
    })
}

fn not_supported(problems: &mut Vec<String>, path: impl std::fmt::Display) {
    problems.push(format!("{path} is not supported yet"));
}

fn check_url(field: &str, url: &str, problems: &mut Vec<String>) {
    // The URL is echoed with its password masked: these messages reach stdout and the logs.
    let shown = crate::redact::url(url);
    match reqwest::Url::parse(url) {
        Err(e) => problems.push(format!("{field}: invalid URL {shown:?}: {e}")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => problems.push(format!(
            "{field}: unsupported scheme {:?} in {shown:?} (http or https)",
            u.scheme()
        )),
        Ok(_) => {}
    }
}

fn refuse_client(p: &str, c: &ClientConfig, problems: &mut Vec<String>) {
    if c.oauth2.is_some() {
        not_supported(problems, format_args!("{p}.oauth2"));
    }
    if c.http_headers.is_some() {
        not_supported(problems, format_args!("{p}.http_headers"));
    }
    if c.proxy_from_environment {
        not_supported(problems, format_args!("{p}.proxy_from_environment"));
    }
    if !c.no_proxy.is_empty() {
        not_supported(problems, format_args!("{p}.no_proxy"));
    }
    if !c.proxy_connect_header.is_empty() {
        not_supported(problems, format_args!("{p}.proxy_connect_header"));
    }
    if let Some(u) = &c.proxy_url {
        check_url(&format!("{p}.proxy_url"), u, problems);
    }
    let tls = &c.tls_config;
    let refs = [
        ("ca_ref", &tls.ca_ref),
        ("cert_ref", &tls.cert_ref),
        ("key_ref", &tls.key_ref),
    ];
    for (key, v) in refs {
        if !v.is_empty() {
            not_supported(problems, format_args!("{p}.tls_config.{key}"));
        }
    }
    if tls.min_version.is_some() {
        not_supported(problems, format_args!("{p}.tls_config.min_version"));
    }
    if tls.max_version.is_some() {
        not_supported(problems, format_args!("{p}.tls_config.max_version"));
    }
    if let Some(b) = &c.basic_auth {
        for (key, v) in [
            ("username_ref", &b.username_ref),
            ("password_ref", &b.password_ref),
        ] {
            if !v.is_empty() {
                not_supported(problems, format_args!("{p}.basic_auth.{key}"));
            }
        }
    }
    if let Some(a) = &c.authorization
        && !a.credentials_ref.is_empty()
    {
        not_supported(problems, format_args!("{p}.authorization.credentials_ref"));
    }
}

pub(super) fn validate(
    cfg: &Config,
    runtime: &dyn RuntimeChecks,
) -> Result<Vec<Warning>, ConfigError> {
    let mut problems = Vec::new();
    let mut warnings = cfg.warnings.clone();

    // Clients.
    let clients = cfg.effective_clients_with_paths();
    if clients.is_empty() {
        problems.push("at least one client config must be provided".to_owned());
    }
    let mut names: HashMap<String, &str> = HashMap::new();
    for (path, c) in &clients {
        match &c.url {
            None => problems.push(format!("{path}: client needs target URL")),
            Some(u) => check_url(&format!("{path}.url"), u, &mut problems),
        }
        let name = c.effective_name();
        if names.insert(name.clone(), path).is_some() {
            problems.push(format!(
                "{path}: duplicate client configs are not allowed, found duplicate for name: {name}"
            ));
        }
        refuse_client(path, c, &mut problems);
        // Promtail panics on a non-positive ticker; say which key instead.
        if c.batchwait.0 <= 0 {
            problems.push(format!("{path}.batchwait must be greater than 0"));
        }
        check_label_names(
            &format!("{path}.external_labels"),
            c.external_labels.keys(),
            &mut problems,
        );
    }
    if cfg.client.as_ref().is_some_and(|c| c.url.is_some()) {
        warnings.push(Warning {
            path: "client".to_owned(),
            message: "the client block and the -client.* flags are deprecated in favour of the \
                      clients block"
                .to_owned(),
        });
    }

    // Scrape configs.
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
        let p = format!("scrape_configs[{i}]");
        if !cfg.target_config.stdin && !sc.has_target() {
            problems.push(format!(
                "no valid target scrape config defined for {:?}",
                sc.job_name
            ));
        }
        for (j, st) in sc.static_configs().iter().enumerate() {
            check_label_names(
                &format!("{p}.static_configs[{j}].labels"),
                st.labels.keys(),
                &mut problems,
            );
        }
        for (j, rc) in sc.relabel_configs.iter().enumerate() {
            if let Err(e) = rc.validate() {
                problems.push(format!("{p}.relabel_configs[{j}]: {e}"));
            }
        }
        // static_configs, file_sd_configs, kubernetes_sd_configs and docker_sd_configs are
        // supported; the other discoveries not yet.
        for (key, len) in sc.sd_lists().into_iter().skip(3) {
            if key != "docker_sd_configs" && len.is_some_and(|n| n > 0) {
                not_supported(&mut problems, format_args!("{p}.{key}"));
            }
        }
        for (j, k) in sc.kubernetes_sd_configs.iter().flatten().enumerate() {
            if let Err(e) = runtime.kubernetes_sd(k) {
                problems.push(format!("{p}.kubernetes_sd_configs[{j}]: {e}"));
            }
        }
        for (j, d) in sc.docker_sd_configs.iter().flatten().enumerate() {
            if let Err(e) = runtime.docker_sd(d) {
                problems.push(format!("{p}.docker_sd_configs[{j}]: {e}"));
            }
        }
        for (j, fsd) in sc.file_sd_configs.iter().flatten().enumerate() {
            // Promtail refuses a bad pattern when it loads the config, as here.
            if let Err(e) = runtime.file_sd_files(&fsd.files) {
                problems.push(format!("{p}.file_sd_configs[{j}].files: {e}"));
            }
            if fsd.refresh_interval.0.is_zero() {
                // Prometheus would panic on a zero ticker.
                problems.push(format!(
                    "{p}.file_sd_configs[{j}].refresh_interval: must be greater than 0"
                ));
            }
        }
        for (key, raw) in sc.other_targets() {
            let Some(raw) = raw else { continue };
            match runtime.source(key, raw) {
                None => match instead(key) {
                    Some(what) => problems.push(format!("{p}.{key} is not supported: {what}")),
                    None => not_supported(&mut problems, format_args!("{p}.{key}")),
                },
                Some(Err(e)) => problems.push(format!("{p}.{key}: {e}")),
                Some(Ok(())) => {}
            }
        }
        if sc.decompression.as_ref().is_some_and(|d| d.enabled) {
            not_supported(&mut problems, format_args!("{p}.decompression"));
        }
        if !sc.encoding.is_empty() {
            not_supported(&mut problems, format_args!("{p}.encoding"));
        }
    }

    // Process-wide settings.
    // Promtail would run and fail every positions write; nothing could ever be resumed.
    if cfg.positions.filename.is_empty() {
        problems.push("positions.filename must not be empty".to_owned());
    }
    match runtime.server_tls(cfg) {
        Ok(server_warnings) => {
            warnings.extend(server_warnings.into_iter().map(|(path, message)| Warning {
                path: format!("server.{path}"),
                message,
            }));
        }
        Err((path, message)) => problems.push(format!("server.{path}: {message}")),
    }
    if cfg.server.grpc_tls_config.is_set() {
        not_supported(&mut problems, "server.grpc_tls_config");
    }
    if cfg.wal.enabled {
        not_supported(&mut problems, "wal");
    }
    // Accepting it without serving `/reload` would let a deployment believe reloads work.
    if cfg.server.enable_runtime_reload {
        not_supported(&mut problems, "server.enable_runtime_reload: true");
    }
    if cfg.inspect {
        not_supported(&mut problems, "-inspect");
    }

    // ferrotail's own settings.
    let ft = &cfg.ferrotail;
    if ft.client_concurrency == 0 {
        problems.push("ferrotail.client_concurrency must be at least 1".to_owned());
    }
    if ft.inflight_bytes.bytes() == 0 {
        problems.push("ferrotail.inflight_bytes must be greater than 0".to_owned());
    }
    if ft.max_line_size_default.bytes() == 0 {
        problems.push("ferrotail.max_line_size_default must be greater than 0".to_owned());
    }

    if problems.is_empty() {
        Ok(warnings)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}
