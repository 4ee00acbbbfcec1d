#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Kubernetes deployment files, checked without a cluster and without `helm`:
//! `deploy/kubernetes/*.yaml` (the DaemonSet with the Promtail chart's default config, and the
//! sidecar example, whose config the binary must accept) and the chart in
//! `deploy/helm/ferrotail/` (its values carry the Promtail chart's names and defaults, and every
//! `.Values.…` its templates use exists), and what docker/Dockerfile needs from the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of a multi-document YAML file (empty documents left out).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read manifest");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().expect("every document has a kind")
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

/// The config file a ConfigMap carries under `key`, parsed.
fn config_of(configmap: &Value, key: &str) -> (String, Value) {
    let text = configmap["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap has data.{key}"))
        .to_owned();
    let parsed: Value = serde_yaml::from_str(&text).expect("the config parses as YAML");
    (text, parsed)
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers")
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("a container named {name}"))
}

fn check_probes_and_hardening(c: &Value) {
    let port = &c["ports"][0];
    assert_eq!(port["name"].as_str(), Some("http-metrics"));
    assert_eq!(port["containerPort"].as_u64(), Some(3101));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"]["path"].as_str(),
            Some("/ready"),
            "{probe}"
        );
        assert_eq!(
            c[probe]["httpGet"]["port"].as_str(),
            Some("http-metrics"),
            "{probe}"
        );
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
}

fn mount_path<'a>(c: &'a Value, volume: &str) -> (&'a str, bool) {
    let m = c["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"].as_str() == Some(volume))
        .unwrap_or_else(|| panic!("a mount of volume {volume}"));
    (
        m["mountPath"].as_str().expect("mountPath"),
        m["readOnly"].as_bool().unwrap_or(false),
    )
}

fn volume<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("a volume named {name}"))
}

/// The Promtail chart's default `kubernetes-pods` job, checked on the parsed config.
fn check_kubernetes_pods_job(config: &Value) {
    let job = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .find(|j| j["kubernetes_sd_configs"].is_sequence())
        .expect("a kubernetes_sd_configs job");
    assert_eq!(job["job_name"].as_str(), Some("kubernetes-pods"));
    assert_eq!(
        job["kubernetes_sd_configs"][0]["role"].as_str(),
        Some("pod")
    );
    let rules = job["relabel_configs"]
        .as_sequence()
        .expect("relabel_configs");
    assert!(
        rules.iter().any(|r| {
            r["target_label"].as_str() == Some("__path__")
                && r["separator"].as_str() == Some("/")
                && r["replacement"].as_str() == Some("/var/log/pods/*$1/*.log")
                && r.get("regex").is_none()
                && strs(&r["source_labels"])
                    == [
                        "__meta_kubernetes_pod_uid",
                        "__meta_kubernetes_pod_container_name",
                    ]
        }),
        "the chart's __path__ rule from pod uid and container name"
    );
    // The static pods' rule, and the labels the chart's dashboards rely on.
    assert!(
        rules
            .iter()
            .any(|r| r["regex"].as_str() == Some("true/(.*)")
                && r["target_label"].as_str() == Some("__path__"))
    );
    for label in [
        "app",
        "instance",
        "component",
        "node_name",
        "namespace",
        "job",
        "pod",
        "container",
    ] {
        assert!(
            rules
                .iter()
                .any(|r| r["target_label"].as_str() == Some(label)),
            "a rule setting {label}"
        );
    }
    let stages = job["pipeline_stages"]
        .as_sequence()
        .expect("pipeline_stages");
    assert!(stages.iter().any(|s| s.get("cri").is_some()), "a cri stage");
}

#[test]
fn daemonset_manifests() {
    let docs = documents(&root().join("deploy/kubernetes/daemonset.yaml"));
    let kinds: Vec<&str> = docs.iter().map(kind_of).collect();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(
        !kinds.contains(&"Service"),
        "no Service, as in the Promtail chart"
    );
    for doc in &docs {
        assert!(
            doc["metadata"].get("namespace").is_none(),
            "namespace-less manifests"
        );
    }

    // RBAC: what the Promtail chart grants.
    let role = one(&docs, "ClusterRole");
    let rule = &role["rules"][0];
    assert_eq!(strs(&rule["apiGroups"]), [""]);
    let resources = strs(&rule["resources"]);
    for r in ["nodes", "nodes/proxy", "services", "endpoints", "pods"] {
        assert!(resources.contains(&r), "{r} in {resources:?}");
    }
    let mut verbs = strs(&rule["verbs"]);
    verbs.sort_unstable();
    assert_eq!(verbs, ["get", "list", "watch"]);
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["name"],
        one(&docs, "ServiceAccount")["metadata"]["name"]
    );

    // The config: the chart's default, positions under /run/ferrotail.
    let configmap = one(&docs, "ConfigMap");
    let (_, config) = config_of(configmap, "config.yaml");
    check_kubernetes_pods_job(&config);
    assert_eq!(
        config["clients"][0]["url"].as_str(),
        Some("http://loki-gateway/loki/api/v1/push")
    );
    assert_eq!(
        config["positions"]["filename"].as_str(),
        Some("/run/ferrotail/positions.yaml")
    );
    assert_eq!(config["server"]["http_listen_port"].as_u64(), Some(3101));

    // The DaemonSet.
    let ds = one(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["serviceAccountName"],
        one(&docs, "ServiceAccount")["metadata"]["name"]
    );
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(0));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    let tolerated: Vec<&str> = pod["tolerations"]
        .as_sequence()
        .expect("tolerations")
        .iter()
        .map(|t| t["key"].as_str().expect("key"))
        .collect();
    assert!(tolerated.contains(&"node-role.kubernetes.io/control-plane"));
    assert!(tolerated.contains(&"node-role.kubernetes.io/master"));

    let c = container(ds, "ferrotail");
    assert_eq!(
        strs(&c["args"]),
        ["-config.file=/etc/ferrotail/config.yaml"]
    );
    let hostname = c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| e["name"].as_str() == Some("HOSTNAME"))
        .expect("HOSTNAME env");
    assert_eq!(
        hostname["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    check_probes_and_hardening(c);
    assert_eq!(c["resources"]["requests"]["cpu"].as_str(), Some("50m"));
    assert_eq!(c["resources"]["requests"]["memory"].as_str(), Some("64Mi"));
    assert_eq!(c["resources"]["limits"]["memory"].as_str(), Some("128Mi"));

    // Host paths: the logs read-only, the positions directory writable and created.
    for (host, read_only) in [
        ("/var/log/pods", true),
        ("/var/lib/docker/containers", true),
        ("/run/ferrotail", false),
    ] {
        let vol = pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .find(|v| v["hostPath"]["path"].as_str() == Some(host))
            .unwrap_or_else(|| panic!("a hostPath volume for {host}"));
        let name = vol["name"].as_str().expect("volume name");
        assert_eq!(mount_path(c, name), (host, read_only), "{host}");
    }
    assert_eq!(
        volume(ds, "run")["hostPath"]["type"].as_str(),
        Some("DirectoryOrCreate")
    );
    // The config volume is the ConfigMap, mounted where -config.file points.
    let config_volume = pod["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["configMap"]["name"] == configmap["metadata"]["name"])
        .expect("the ConfigMap as a volume");
    assert_eq!(
        mount_path(c, config_volume["name"].as_str().expect("name")).0,
        "/etc/ferrotail"
    );
}

#[test]
fn sidecar_manifests_and_config_accepted_by_the_binary() {
    let docs = documents(&root().join("deploy/kubernetes/sidecar.yaml"));
    let deployment = one(&docs, "Deployment");
    let configmap = one(&docs, "ConfigMap");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    let sidecar = container(deployment, "ferrotail");
    check_probes_and_hardening(sidecar);
    let app = container(deployment, "app");

    // Both containers share an emptyDir; the job's glob and the positions are on it.
    let logs = volume(deployment, "logs");
    assert!(logs["emptyDir"].is_mapping(), "logs is an emptyDir");
    let (dir, read_only) = mount_path(sidecar, "logs");
    assert!(!read_only, "positions are written to the emptyDir");
    assert_eq!(mount_path(app, "logs").0, dir);
    let (text, config) = config_of(configmap, "config.yaml");
    let job = &config["scrape_configs"][0];
    let path = job["static_configs"][0]["labels"]["__path__"]
        .as_str()
        .expect("__path__");
    assert!(path.starts_with(&format!("{dir}/")), "{path} under {dir}");
    let positions = config["positions"]["filename"].as_str().expect("positions");
    assert!(
        positions.starts_with(&format!("{dir}/")),
        "{positions} under {dir}"
    );
    assert!(
        config["scrape_configs"]
            .as_sequence()
            .expect("scrape_configs")
            .iter()
            .all(|j| j.get("kubernetes_sd_configs").is_none()),
        "the sidecar needs no discovery"
    );

    // ferrotail accepts it today, with the flags and environment the Deployment gives it.
    let args = strs(&sidecar["args"]);
    assert!(args.contains(&"-config.file=/etc/ferrotail/config.yaml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, text).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrotail"));
    cmd.arg("-check-syntax")
        .arg(format!("-config.file={}", file.display()));
    for arg in args.iter().filter(|a| !a.starts_with("-config.file=")) {
        cmd.arg(arg);
    }
    cmd.env("POD_NAME", "example-app-5d9c7b-x2x9q")
        .env("POD_NAMESPACE", "default");
    let out = cmd.output().expect("run ferrotail");
    assert!(
        out.status.success(),
        "ferrotail -check-syntax refused the sidecar config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Helm chart

fn chart() -> PathBuf {
    root().join("deploy/helm/ferrotail")
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `a.b.c` names a key of `values` (its value may be null).
fn has_key(values: &Value, dotted: &str) -> bool {
    let mut node = values;
    for part in dotted.split('.') {
        match node.as_mapping().and_then(|m| m.get(part)) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// The Promtail chart's values a Promtail values file commonly sets. (`securityContext` there is
/// `podSecurityContext` plus `containerSecurityContext`.)
const PROMTAIL_VALUES: &[&str] = &[
    "config.clients",
    "config.logLevel",
    "config.serverPort",
    "config.positions",
    "config.snippets.pipelineStages",
    "config.snippets.extraScrapeConfigs",
    "config.snippets.extraRelabelConfigs",
    "config.snippets.scrapeConfigs",
    "config.snippets.common",
    "config.file",
    "extraArgs",
    "extraEnv",
    "extraVolumes",
    "extraVolumeMounts",
    "tolerations",
    "nodeSelector",
    "affinity",
    "resources",
    "podAnnotations",
    "podLabels",
    "serviceAccount.create",
    "serviceAccount.name",
    "rbac.create",
    "image.registry",
    "image.repository",
    "image.tag",
    "image.pullPolicy",
    "podSecurityContext",
    "containerSecurityContext",
    "livenessProbe",
    "readinessProbe",
    "updateStrategy",
    "priorityClassName",
    "defaultVolumes",
    "defaultVolumeMounts",
    "httpPathPrefix",
];

#[test]
fn helm_chart_values_and_templates() {
    let chart_yaml = yaml_file(&chart().join("Chart.yaml"));
    assert_eq!(chart_yaml["name"].as_str(), Some("ferrotail"));
    assert_eq!(chart_yaml["version"].as_str(), Some("0.1.0"));
    assert_eq!(chart_yaml["apiVersion"].as_str(), Some("v2"));
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .expect("package version")
        .trim_matches('"');
    assert_eq!(chart_yaml["appVersion"].as_str(), Some(version));

    let values = yaml_file(&chart().join("values.yaml"));
    let missing: Vec<&&str> = PROMTAIL_VALUES
        .iter()
        .filter(|k| !has_key(&values, k))
        .collect();
    assert!(missing.is_empty(), "Promtail values missing: {missing:?}");
    // The Promtail chart's defaults.
    assert_eq!(values["config"]["serverPort"].as_u64(), Some(3101));
    assert_eq!(values["config"]["logLevel"].as_str(), Some("info"));
    assert_eq!(
        values["config"]["clients"][0]["url"].as_str(),
        Some("http://loki-gateway/loki/api/v1/push")
    );
    assert_eq!(
        values["config"]["positions"]["filename"].as_str(),
        Some("/run/promtail/positions.yaml")
    );
    assert_eq!(values["tolerations"].as_sequence().map(Vec::len), Some(2));
    assert_eq!(
        values["readinessProbe"]["httpGet"]["port"].as_str(),
        Some("http-metrics")
    );
    assert_eq!(
        values["containerSecurityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );

    // The default scrape config is the plain DaemonSet's, which is the Promtail chart's: the
    // snippet with its template lines taken out, plus `common` and `pipelineStages`.
    let snippets = &values["config"]["snippets"];
    let untemplated = strip_template_lines(snippets["scrapeConfigs"].as_str().expect("string"));
    let mut jobs: Value = serde_yaml::from_str(&untemplated).expect("scrapeConfigs parses");
    let job = &mut jobs[0];
    job["pipeline_stages"] = snippets["pipelineStages"].clone();
    let mut rules = job["relabel_configs"].as_sequence().expect("rules").clone();
    rules.extend(
        snippets["common"]
            .as_sequence()
            .expect("common")
            .iter()
            .cloned(),
    );
    job["relabel_configs"] = Value::Sequence(rules);
    let docs = documents(&root().join("deploy/kubernetes/daemonset.yaml"));
    let (_, plain) = config_of(one(&docs, "ConfigMap"), "config.yaml");
    assert_eq!(
        jobs, plain["scrape_configs"],
        "the chart's default job = the DaemonSet's"
    );
    let mut rendered = Value::Mapping(Default::default());
    rendered["scrape_configs"] = jobs;
    check_kubernetes_pods_job(&rendered);

    // Every `.Values.x.y` in the templates (and in the templated strings of values.yaml)
    // exists in values.yaml.
    let re = regex::Regex::new(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").expect("regex");
    let mut sources = vec![std::fs::read_to_string(chart().join("values.yaml")).expect("values")];
    let mut names = Vec::new();
    for entry in std::fs::read_dir(chart().join("templates")).expect("templates") {
        let path = entry.expect("entry").path();
        names.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
        sources.push(std::fs::read_to_string(&path).expect("template"));
    }
    names.sort();
    assert_eq!(
        names,
        [
            "_helpers.tpl",
            "clusterrole.yaml",
            "clusterrolebinding.yaml",
            "configmap.yaml",
            "daemonset.yaml",
            "serviceaccount.yaml"
        ]
    );
    let mut references = Vec::new();
    for source in &sources {
        for cap in re.captures_iter(source) {
            references.push(cap[1].trim_start_matches('.').to_owned());
        }
    }
    references.sort();
    references.dedup();
    assert!(
        references.len() >= 40,
        "the scan found only {} references: {references:?}",
        references.len()
    );
    for expected in [
        "config.file",
        "tolerations",
        "extraArgs",
        "config.serverPort",
    ] {
        assert!(
            references.iter().any(|r| r == expected),
            "{expected} referenced"
        );
    }
    let unknown: Vec<&String> = references.iter().filter(|r| !has_key(&values, r)).collect();
    assert!(
        unknown.is_empty(),
        "referenced but not in values.yaml: {unknown:?}"
    );

    // The DaemonSet template keeps the essentials of the plain manifest.
    let ds = std::fs::read_to_string(chart().join("templates/daemonset.yaml")).expect("ds");
    for needle in [
        "fieldPath: spec.nodeName",
        "name: HOSTNAME",
        "name: http-metrics",
        "tpl .Values.config.file",
    ] {
        assert!(ds.contains(needle), "daemonset.yaml has {needle}");
    }
    let cm = std::fs::read_to_string(chart().join("templates/configmap.yaml")).expect("cm");
    assert!(
        cm.contains("tpl .Values.config.file ."),
        "configmap renders config.file with tpl"
    );
    assert!(
        ds.contains("-config.file=/etc/ferrotail/promtail.yaml") && cm.contains("promtail.yaml: |")
    );
}

/// The text without template actions: lines holding `{{` go, and so do the lines inside
/// `if`/`with`/`range` blocks (left out as with default values: false and empty).
fn strip_template_lines(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("{{") {
            let action = t
                .trim_start_matches("{{")
                .trim_start_matches('-')
                .trim_start();
            if ["if ", "with ", "range "]
                .iter()
                .any(|k| action.starts_with(k))
            {
                depth += 1;
            } else if action.starts_with("end") {
                depth = depth.checked_sub(1).expect("balanced blocks");
            }
            continue;
        }
        if depth == 0 {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(depth, 0, "balanced blocks");
    out
}

/// docker/Dockerfile cannot be built here (no Docker engine): check what can be checked
/// without one. Every `COPY` from the build context names a file or folder of the repository,
/// every `COPY --from=` a stage defined before it, the `--target` its comments tell users to
/// build is a stage, and the default image (the last stage) is the distroless one, while the
/// `journal` stage installs journalctl's package and runs as the same non-root user.
#[test]
fn the_dockerfile_copies_what_exists_and_has_the_journal_stage() {
    let text = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    let mut stages: Vec<String> = Vec::new();
    let mut last_from = String::new();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["FROM", image, "AS", name] => {
                stages.push(name.to_string());
                last_from = image.to_string();
            }
            ["FROM", image] => last_from = image.to_string(),
            ["COPY", from, src, _dest] if from.starts_with("--from=") => {
                let stage = &from["--from=".len()..];
                assert!(
                    stages.iter().any(|s| s == stage),
                    "COPY {from}: no such stage"
                );
                assert!(
                    src.starts_with('/'),
                    "COPY {from} {src}: a path in the stage"
                );
            }
            ["COPY", srcs @ .., _dest] => {
                for src in srcs {
                    assert!(
                        root().join(src).exists(),
                        "COPY {src}: not in the repository"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(
        last_from.starts_with("gcr.io/distroless/"),
        "the default image is distroless, not {last_from}"
    );
    assert!(
        text.contains("--target journal") && stages.iter().any(|s| s == "journal"),
        "the journal variant is a stage its comments build"
    );
    let journal = text
        .split("AS journal")
        .nth(1)
        .and_then(|rest| rest.split("\nFROM ").next())
        .unwrap();
    assert!(
        journal.contains("install -y --no-install-recommends systemd"),
        "journalctl comes with Debian's systemd package:\n{journal}"
    );
    assert!(journal.contains("USER 65532:65532"), "non-root:\n{journal}");
}
