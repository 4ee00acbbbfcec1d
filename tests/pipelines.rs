//! End-to-end test of a realistic Kubernetes-style pipeline through the binary: `cri` with a
//! partial line, `multiline` for a Java stack trace, `match` with nested `json` + `labels`,
//! `match` with `action: drop`, `regex`, `template`, `output` and `tenant`; every shipped
//! entry is checked (labels, timestamp, line, tenant), the drop is counted, the position is
//! committed past the dropped line and nothing is shipped twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::mock_loki::MockLoki;
use common::process::{Ferrotail, append, config, positions_offset, wait_until};

const WAIT: Duration = Duration::from_secs(60);

const STAGES: &str = r#"      - cri: {}
      - multiline:
          firstline: '^\S'
          max_wait_time: 300ms
      - match:
          selector: '{stream="stdout"}'
          stages:
            - json:
                expressions: {level: level, msg: msg, team: team}
            - labels: {level: }
      - match:
          selector: '{level="debug"}'
          action: drop
          drop_counter_reason: debug_noise
      - regex:
          expression: '^(?P<severity>\w+)'
      - template:
          source: msg
          template: '{{ if .msg }}{{ ToUpper .level }}: {{ .msg }}{{ else }}[{{ .severity | ToLower }}] {{ .Entry }}{{ end }}'
      - output: {source: msg}
      - tenant: {source: team}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_pipeline_ships_every_entry_as_promtail_would() {
    let mock = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    let input: Vec<String> = [
        r#"2026-11-20T09:15:02.000000001Z stdout F {"level":"info","msg":"started","team":"payments"}"#,
        r#"2026-11-20T09:15:03.000000000Z stdout F {"level":"debug","msg":"cache miss","team":"payments"}"#,
        r#"2026-11-20T09:15:04.000000000Z stderr P Exception in thread "main" java.lang.IllegalStateException: boo"#,
        "2026-11-20T09:15:04.000000000Z stderr F m",
        "2026-11-20T09:15:04.100000000Z stderr F \tat com.example.App.run(App.java:42)",
        "2026-11-20T09:15:04.200000000Z stderr F \tat com.example.App.main(App.java:7)",
        r#"2026-11-20T09:15:05.000000000Z stdout F {"level":"error","msg":"payment failed","team":"payments"}"#,
        "2026-11-20T09:15:06.000000000Z stderr F WARN disk almost full",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    append(&log, &input);
    let size = std::fs::metadata(&log).unwrap().len();
    let cfg = config(
        dir.path(),
        mock.url().as_str(),
        &log.display().to_string(),
        STAGES,
        "",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let got = mock
        .wait_for_entries(4, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let file = log.display().to_string();
    let mut got: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.timestamp_ns,
                e.labels.clone(),
                e.line_str(),
                e.tenant.clone(),
            )
        })
        .collect();
    got.sort();
    let payments = Some("payments".to_string());
    assert_eq!(
        got,
        vec![
            (
                1_795_166_102_000_000_001,
                format!(r#"{{filename="{file}", job="test", level="info", stream="stdout"}}"#),
                "INFO: started".to_string(),
                payments.clone(),
            ),
            (
                1_795_166_104_000_000_000,
                format!(r#"{{filename="{file}", job="test", stream="stderr"}}"#),
                "[exception] Exception in thread \"main\" java.lang.IllegalStateException: boom\n\
                 \tat com.example.App.run(App.java:42)\n\
                 \tat com.example.App.main(App.java:7)"
                    .to_string(),
                None,
            ),
            (
                1_795_166_105_000_000_000,
                format!(r#"{{filename="{file}", job="test", level="error", stream="stdout"}}"#),
                "ERROR: payment failed".to_string(),
                payments.clone(),
            ),
            (
                1_795_166_106_000_000_000,
                format!(r#"{{filename="{file}", job="test", stream="stderr"}}"#),
                "[warn] WARN disk almost full".to_string(),
                None,
            ),
        ]
    );
    let metrics = ft.http_get("/metrics");
    assert!(
        metrics.contains(r#"logentry_dropped_lines_total{reason="debug_noise"} 1"#),
        "drop not counted:\n{metrics}"
    );
    // The dropped debug line is acknowledged: the whole file is committed.
    wait_until(WAIT, "the position of the whole file", || {
        positions_offset(dir.path(), &log) == Some(size)
    });
    assert!(ft.stop().success());
    assert_eq!(mock.entries().len(), 4, "an entry was shipped twice");
}
