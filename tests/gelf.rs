//! The GELF source end to end: the `ferrotail` binary listens for GELF on UDP (127.0.0.1) and
//! pushes to the mock Loki. Plain, gzip and zlib messages, chunked messages sent out of order
//! with duplicate chunks, a burst of identical messages (kept apart by their read-time
//! stamps), a message dropped by a relabel rule, malformed datagrams and an incomplete
//! chunked message that expires: every entry's labels, line and timestamp are checked, and
//! the counters.
//!
//! UDP may drop datagrams under load even on loopback, so volumes stay small (under 100
//! datagrams of under 1 KiB, far below a socket buffer) and every datagram is sent once.
//! Every wait is bounded and says what it waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::body::gzip;
use common::config::ConfigFile;
use common::mock_loki::{MockLoki, ReceivedEntry};
use common::process::{Ferrotail, metric};

const WAIT: Duration = Duration::from_secs(60);

/// Two GELF jobs: `graylog` (the senders' timestamps, relabeled, facility `noise` dropped) and
/// `repeated` (read-time stamps).
fn write_config(dir: &Path, loki: &str) -> PathBuf {
    ConfigFile::new(dir, loki)
        .scrape(
            r#"  - job_name: graylog
    gelf:
      listen_address: 127.0.0.1:0
      use_incoming_timestamp: true
      labels:
        job: gelf
    relabel_configs:
      - source_labels: [__gelf_message_level]
        target_label: level
      - source_labels: [__gelf_message_host]
        target_label: host
      - source_labels: [__gelf_message_facility]
        target_label: facility
      - source_labels: [__gelf_message_facility]
        regex: noise
        action: drop
  - job_name: repeated
    gelf:
      listen_address: 127.0.0.1:0
      labels:
        job: gelf-read-time
"#,
        )
        .write()
}

/// The UDP address of job `job`'s GELF listener, from its log line.
fn gelf_addr(ft: &Ferrotail, job: &str) -> String {
    ft.logged_address(
        WAIT,
        "the GELF listening log line",
        "Listening for GELF UDP messages.",
        Some(job),
    )
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `payload` cut into `count` chunks of message `id`.
fn chunks(id: u64, payload: &[u8], count: usize) -> Vec<Vec<u8>> {
    let size = payload.len().div_ceil(count);
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, part)| {
            let mut c = vec![0x1e, 0x0f];
            c.extend_from_slice(&id.to_be_bytes());
            c.push(i as u8);
            c.push(count as u8);
            c.extend_from_slice(part);
            c
        })
        .collect()
}

/// A message whose JSON, as the sender writes it, is already in go-gelf's order, so the line
/// Promtail ships is this text byte for byte.
fn message(host: &str, short: &str, ts: &str, level: u8, facility: &str, extra: &str) -> String {
    format!(
        r#"{{"version":"1.1","host":"{host}","short_message":"{short}","timestamp":{ts},"level":{level},"facility":"{facility}"{extra}}}"#
    )
}

/// Go's `int64(seconds * 1e9)` of a GELF timestamp (not exact above 2^53 ns: the same
/// rounding as Promtail's).
fn ns(ts: &str) -> i64 {
    (ts.parse::<f64>().unwrap() * 1e9) as i64
}

/// One expected entry: labels, line, timestamp.
type Expected = (String, String, i64);

fn labels(level: &str, host: &str, facility: &str) -> String {
    format!(r#"{{facility="{facility}", host="{host}", job="gelf", level="{level}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gelf_messages_are_shipped_with_their_labels_lines_and_timestamps() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), loki.url().as_ref());
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let graylog = gelf_addr(&ft, "graylog");
    let repeated = gelf_addr(&ft, "repeated");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |addr: &str, d: &[u8]| {
        sock.send_to(d, addr).unwrap();
    };

    let mut expected: Vec<Expected> = Vec::new();
    let base = 1_700_000_000i64;
    // A burst of plain messages: nginx access lines with fields, distinct timestamps.
    for i in 0..30 {
        let m = message(
            "web-1",
            &format!("GET /api/orders/{} 200", i % 3),
            &format!("{}.25", base + i),
            6,
            "nginx",
            &format!(r#","_path":"/api/orders/{}","_status":200"#, i % 3),
        );
        send(&graylog, m.as_bytes());
        expected.push((
            labels("informational", "web-1", "nginx"),
            m,
            ns(&format!("{}.25", base + i)),
        ));
    }
    // gzip and zlib.
    for (i, compress) in [gzip as fn(&[u8]) -> Vec<u8>, zlib].into_iter().enumerate() {
        let m = message(
            "db-1",
            "slow query",
            &format!("{}.5", base + 100 + i as i64),
            4,
            "postgres",
            r#","_duration_ms":1234.5"#,
        );
        send(&graylog, &compress(m.as_bytes()));
        expected.push((
            labels("warning", "db-1", "postgres"),
            m,
            ns(&format!("{}.5", base + 100 + i as i64)),
        ));
    }
    // A chunked gzip message with a long stack trace, chunks reversed and one sent twice.
    let trace =
        "java.lang.IllegalStateException: boom\\n\\tat com.example.Service.run(Service.java:42)"
            .repeat(20);
    let m = message(
        "app-1",
        "exception",
        &format!("{}", base + 200),
        3,
        "java",
        &format!(r#","_trace":"{trace}""#),
    );
    let mut parts = chunks(7, &gzip(m.as_bytes()), 4);
    parts.reverse();
    let dup = parts[1].clone();
    parts.insert(2, dup);
    for p in &parts {
        send(&graylog, p);
    }
    expected.push((
        labels("error", "app-1", "java"),
        m,
        (base + 200) * 1_000_000_000,
    ));
    // An uncompressed chunked message interleaved with a whole one.
    let m1 = message(
        "app-2",
        "chunked plain",
        &format!("{}", base + 300),
        5,
        "worker",
        "",
    );
    let m2 = message(
        "app-2",
        "between chunks",
        &format!("{}", base + 301),
        7,
        "worker",
        "",
    );
    let p1 = chunks(8, m1.as_bytes(), 2);
    send(&graylog, &p1[1]);
    send(&graylog, m2.as_bytes());
    send(&graylog, &p1[0]);
    expected.push((
        labels("notice", "app-2", "worker"),
        m1,
        (base + 300) * 1_000_000_000,
    ));
    expected.push((
        labels("debug", "app-2", "worker"),
        m2.clone(),
        (base + 301) * 1_000_000_000,
    ));
    // Dropped by a relabel rule (decoded, so counted as an entry as Promtail counts it).
    send(
        &graylog,
        message("x", "noise", "1", 6, "noise", "").as_bytes(),
    );
    // Malformed: garbage, JSON that is no object, a wrong field type, a short chunk, broken gzip.
    let malformed: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        b"[1,2,3]".to_vec(),
        br#"{"host":42}"#.to_vec(),
        vec![0x1e, 0x0f, 1, 2, 3],
        vec![0x1f, 0x8b, 0, 0, 0],
    ];
    for d in &malformed {
        send(&graylog, d);
    }
    // An incomplete chunked message: expires after 5 s, counted.
    send(&graylog, &chunks(9, m2.as_bytes(), 3)[0]);

    // Identical messages without incoming timestamps: each kept, at distinct read times.
    let same = message("cron", "heartbeat", "0", 6, "cron", "");
    for _ in 0..10 {
        send(&repeated, same.as_bytes());
    }

    let total = expected.len() + 10;
    let entries = loki
        .wait_for_entries(total, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    assert_eq!(entries.len(), total, "unexpected entries: {entries:#?}");
    let (graylog_entries, repeated_entries): (Vec<&ReceivedEntry>, Vec<&ReceivedEntry>) = entries
        .iter()
        .partition(|e| e.labels.contains(r#"job="gelf""#));
    let mut got: Vec<Expected> = graylog_entries
        .iter()
        .map(|e| (e.labels.clone(), e.line_str(), e.timestamp_ns))
        .collect();
    got.sort_by_key(|e| e.2);
    expected.sort_by_key(|e| e.2);
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), expected.len());

    assert_eq!(repeated_entries.len(), 10);
    let mut stamps: Vec<i64> = repeated_entries.iter().map(|e| e.timestamp_ns).collect();
    stamps.sort();
    stamps.dedup();
    assert_eq!(stamps.len(), 10, "read-time stamps must be distinct");
    for e in &repeated_entries {
        assert_eq!(e.labels, r#"{job="gelf-read-time"}"#);
        // Timestamp 0 is written as Go writes it; the line is the message as sent.
        assert_eq!(e.line_str(), same);
    }

    // Counters: every decoded message, and every datagram or message that gave none (the
    // malformed ones and the expired message).
    let decoded = (expected.len() + 1 + 10) as f64;
    let errors = (malformed.len() + 1) as f64;
    ft.wait_until(WAIT, "the GELF counters", || {
        metric(&ft, "promtail_gelf_target_entries_total", &[]) == Some(decoded)
            && metric(&ft, "promtail_gelf_target_parsing_errors_total", &[]) == Some(errors)
    });
    assert_eq!(
        metric(&ft, "ferrotail_gelf_chunked_messages_expired_total", &[]),
        Some(1.0)
    );
    assert_eq!(ft.stop().code(), Some(0));
}

#[test]
fn an_address_in_use_fails_the_start_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{disable: true}}\npositions: {{filename: {}}}\nclients: [{{url: 'http://127.0.0.1:1/loki/api/v1/push'}}]\nscrape_configs:\n  - job_name: g\n    gelf: {{listen_address: '{addr}'}}\n",
            dir.path().join("p.yaml").display()
        ),
    )
    .unwrap();
    let out = common::process::run_bounded(
        &[&format!("-config.file={}", cfg.display())],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
}
