//! The syslog source end to end: the `ferrotail` binary listens for syslog (TCP with octet
//! counting and newline framing, UDP, TLS with and without a client certificate), parses RFC
//! 5424 and RFC 3164, relabels each message and pushes it to the mock Loki. Malformed, empty
//! and oversized messages are counted; with Loki refusing and a small in-flight budget the
//! sender is held back by TCP, and everything arrives once Loki recovers.
//! Every wait is bounded and says what it waited for; listeners use port 0 on 127.0.0.1 and
//! the tests read the bound address from the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::config::ConfigFile;
use common::mock_loki::{MockLoki, ReceivedEntry, Reply};
use common::pki::{Pki, client};
use common::process::{Ferrotail, metric, wait_until};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(60);

/// The syslog `jobs` (see [`job`]) under the base config, `extra` as more top-level sections.
fn write_config(dir: &Path, loki: &str, jobs: &str, extra: &str) -> PathBuf {
    ConfigFile::new(dir, loki)
        .backoff("20ms", "200ms")
        .top(extra)
        .scrape(jobs)
        .write()
}

/// The relabel rules every job uses: message fields as labels, `noisy` dropped.
const RELABEL: &str = r#"    relabel_configs:
      - source_labels: [__syslog_message_hostname]
        target_label: host
      - source_labels: [__syslog_message_app_name]
        target_label: app
      - source_labels: [__syslog_message_severity]
        target_label: level
      - source_labels: [__syslog_message_facility]
        target_label: facility
      - source_labels: [__syslog_connection_ip_address]
        target_label: peer
      - source_labels: [__syslog_message_app_name]
        regex: noisy
        action: drop
"#;

fn job(name: &str, syslog: &str) -> String {
    format!(
        "  - job_name: {name}\n    syslog:\n      listen_address: 127.0.0.1:0\n      labels: {{job: {name}}}\n{syslog}{RELABEL}"
    )
}

/// The address the syslog listener of `job` is bound to, from its log line.
fn syslog_addr(ft: &Ferrotail, job: &str) -> std::net::SocketAddr {
    let addr = ft.logged_address(
        WAIT,
        &format!("the syslog listener of {job}"),
        "syslog listening on address",
        Some(job),
    );
    addr.parse()
        .unwrap_or_else(|e| panic!("the syslog listener of {job} at {addr:?}: {e}"))
}

fn by_line(entries: &[ReceivedEntry]) -> HashMap<String, Vec<&ReceivedEntry>> {
    let mut m: HashMap<String, Vec<&ReceivedEntry>> = HashMap::new();
    for e in entries {
        m.entry(e.line_str()).or_default().push(e);
    }
    m
}

fn octet(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_over_tcp_with_both_framings_and_over_udp() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = [
        job(
            "s5424",
            "      label_structured_data: true\n      use_incoming_timestamp: true\n",
        ),
        job("s3164", "      syslog_format: rfc3164\n"),
        job("sudp", "      listen_protocol: udp\n"),
    ]
    .concat();
    let with_origin = jobs.replace(
        "        action: drop\n  - job_name: s3164",
        "        action: drop\n      - source_labels: [__syslog_message_sd_origin_32473_ip]\n        target_label: origin\n  - job_name: s3164",
    );
    assert_ne!(with_origin, jobs, "the origin rule was not added");
    let cfg = write_config(dir.path(), loki.url().as_ref(), &with_origin, "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let a5424 = syslog_addr(&ft, "s5424");
    let a3164 = syslog_addr(&ft, "s3164");
    let audp = syslog_addr(&ft, "sudp");

    let mut want = 0;
    // RFC 5424 over TCP, octet counting, in one burst of repeated lines (kept apart by their
    // timestamps) written in pieces that split messages.
    let mut burst = String::new();
    for i in 0..300 {
        let msg = if i % 50 == 49 {
            format!(
                "<11>1 2026-12-07T07:00:{:02}.000001Z web-01 nginx 77 - [origin@32473 ip=\"10.0.0.9\"] upstream timed out {i}",
                i % 60
            )
        } else {
            "<14>1 - web-01 nginx 77 - - GET /healthz 200".to_owned()
        };
        burst.push_str(&octet(&msg));
    }
    // Dropped by the rules, and one without MSG (counted as empty).
    burst.push_str(&octet("<14>1 - web-01 noisy - - - chatter"));
    burst.push_str(&octet("<14>1 - web-01 nginx - - -"));
    want += 300;
    let mut tcp = TcpStream::connect(a5424).await.unwrap();
    for piece in burst.as_bytes().chunks(777) {
        tcp.write_all(piece).await.unwrap();
        tcp.flush().await.unwrap();
    }
    // Newline framing on a second connection, mixed with octet counting.
    let mut tcp2 = TcpStream::connect(a5424).await.unwrap();
    tcp2.write_all(b"<165>1 2026-12-07T07:00:01+01:00 db-2 postgres 9 - - checkpoint starting\n")
        .await
        .unwrap();
    tcp2.write_all(octet("<165>1 - db-2 postgres 9 - - checkpoint complete").as_bytes())
        .await
        .unwrap();
    // The last newline-framed message ends with the connection.
    tcp2.write_all(b"<165>1 - db-2 postgres 9 - - last words")
        .await
        .unwrap();
    drop(tcp2);
    want += 3;

    // RFC 3164 (rsyslog's forwarding format) over TCP, newline framing.
    let mut bsd = TcpStream::connect(a3164).await.unwrap();
    for i in 0..200 {
        let line = format!(
            "<86>Dec  7 07:59:01 web-01 sshd[2231]: Accepted publickey for deploy port {}\n",
            50000 + i % 3
        );
        bsd.write_all(line.as_bytes()).await.unwrap();
    }
    bsd.write_all(
        b"<13>Dec  7 07:59:02 switch-3 %LINK-3-UPDOWN Interface Gi0/1, changed state to up\n",
    )
    .await
    .unwrap();
    want += 201;

    // UDP: one message per datagram.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..20 {
        let d = format!("<30>1 - lb-1 haproxy 5 - - udp datagram {i}");
        udp.send_to(d.as_bytes(), audp).await.unwrap();
    }
    want += 20;

    let entries = loki
        .wait_for_entries(want, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let lines = by_line(&entries);
    assert_eq!(
        lines["GET /healthz 200"].len(),
        294,
        "repeated lines merged"
    );
    for e in &lines["GET /healthz 200"] {
        assert_eq!(
            e.labels,
            r#"{app="nginx", facility="user", host="web-01", job="s5424", level="informational", peer="127.0.0.1"}"#
        );
    }
    // use_incoming_timestamp: the message's own time when it has one.
    assert_eq!(
        lines["checkpoint starting"][0].timestamp_ns,
        chrono::DateTime::parse_from_rfc3339("2026-12-07T06:00:01Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    );
    let timed_out = &lines["upstream timed out 49"][0];
    assert!(
        timed_out.labels.contains(r#"origin="10.0.0.9""#),
        "{}",
        timed_out.labels
    );
    assert!(timed_out.labels.contains(r#"level="error""#));
    assert!(!lines.contains_key("chatter"), "a dropped message arrived");
    for l in ["checkpoint starting", "checkpoint complete", "last words"] {
        assert!(lines.contains_key(l), "{l} never arrived");
    }
    let ssh = &lines["Accepted publickey for deploy port 50000"];
    assert_eq!(
        ssh[0].labels,
        r#"{app="sshd", facility="authpriv", host="web-01", job="s3164", level="informational", peer="127.0.0.1"}"#
    );
    let ssh_total: usize = (0..3)
        .map(|i| lines[&format!("Accepted publickey for deploy port {}", 50000 + i)].len())
        .sum();
    assert_eq!(ssh_total, 200, "read-time stamps keep repeated lines apart");
    assert!(lines.contains_key("%LINK-3-UPDOWN Interface Gi0/1, changed state to up"));
    for i in 0..20 {
        let e = &lines[&format!("udp datagram {i}")][0];
        assert!(e.labels.contains(r#"job="sudp""#) && e.labels.contains(r#"app="haproxy""#));
    }
    ft.wait_until(WAIT, "the entries and empty-message counters", || {
        metric(&ft, "promtail_syslog_target_entries_total", &[]) == Some(want as f64)
            && metric(&ft, "promtail_syslog_empty_messages_total", &[]) == Some(1.0)
    });
    drop(tcp);
    drop(bsd);
    assert_eq!(ft.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_are_counted() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = job(
        "bad",
        "      max_message_length: 64\n      idle_timeout: 1s\n",
    );
    let cfg = write_config(dir.path(), loki.url().as_ref(), &jobs, "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = syslog_addr(&ft, "bad");

    let mut c = TcpStream::connect(addr).await.unwrap();
    let long = format!("<14>1 - h app - - - {}", "x".repeat(500));
    let stream = [
        "<14>1 - h app - - - first\n".to_owned(),
        // Not RFC 5424: counted, the connection goes on.
        "<14>Oct 11 22:14:15 h app: bsd on a 5424 listener\n".to_owned(),
        "<999>1 - h app - - - bad priority\n".to_owned(),
        // Cut at 64 bytes, still a message; the rest of it is skipped.
        format!("{long}\n"),
        octet(&long),
        "<14>1 - h app - - - after the long ones\n".to_owned(),
    ]
    .concat();
    c.write_all(stream.as_bytes()).await.unwrap();
    // A stream that cannot be framed: counted once, its connection closed.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();

    let entries = loki
        .wait_for_entries(4, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let lines = by_line(&entries);
    assert!(lines.contains_key("first") && lines.contains_key("after the long ones"));
    let cut = "x".repeat(64 - "<14>1 - h app - - - ".len());
    assert_eq!(
        lines[&cut].len(),
        2,
        "both framings cut at max_message_length"
    );
    ft.wait_until(WAIT, "the error counters", || {
        metric(&ft, "promtail_syslog_target_parsing_errors_total", &[]) == Some(3.0)
            && metric(&ft, "ferrotail_syslog_truncated_messages_total", &[]) == Some(2.0)
    });
    // idle_timeout: a connection that sends nothing is closed by ferrotail.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(WAIT, idle.read(&mut buf))
        .await
        .expect("the idle connection was never closed");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // A connection still open does not hold the shutdown up.
    let _open = TcpStream::connect(addr).await.unwrap();
    drop(c);
    assert_eq!(ft.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_and_without_client_certificates() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let server = pki.server("127.0.0.1");
    let user = pki.client("rsyslog");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (cert, key, ca) = (
        write("server.crt", &server.cert_pem),
        write("server.key", &server.key_pem),
        write("ca.crt", &pki.ca_pem),
    );
    let jobs = [
        job(
            "tls",
            &format!("      tls_config:\n        cert_file: {cert}\n        key_file: {key}\n"),
        ),
        job(
            "mtls",
            &format!(
                "      tls_config:\n        cert_file: {cert}\n        key_file: {key}\n        ca_file: {ca}\n"
            ),
        ),
    ]
    .concat();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &jobs, "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let tls_addr = syslog_addr(&ft, "tls");
    let mtls_addr = syslog_addr(&ft, "mtls");

    let send = |addr, config, msg: &'static str| async move {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut s = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        s.write_all(msg.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
    send(
        tls_addr,
        client(&pki, None, versions),
        "<14>1 - h app - - - over tls\n",
    )
    .await
    .unwrap();
    send(
        mtls_addr,
        client(&pki, Some(&user), versions),
        "<14>1 - h app - - - over mutual tls\n",
    )
    .await
    .unwrap();
    // Without a certificate, the mutual TLS listener refuses (TLS 1.3 reports it after the
    // client's handshake, so the message may be written, but it never arrives).
    let _ = send(
        mtls_addr,
        client(&pki, None, versions),
        "<14>1 - h app - - - anonymous\n",
    )
    .await;
    let entries = loki
        .wait_for_entries(2, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    ft.wait_until(WAIT, "the refused handshake in the log", || {
        ft.stderr().contains("syslog TLS handshake failed")
    });
    let all = loki.entries();
    let lines = by_line(&all);
    assert!(lines.contains_key("over tls") && lines.contains_key("over mutual tls"));
    assert!(
        !lines.contains_key("anonymous"),
        "a client without a certificate got through"
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(ft.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loki_holds_the_sender_back_and_nothing_is_lost() {
    let loki = MockLoki::start().await;
    loki.set_fallback(Some(Reply::status(503)));
    let dir = tempfile::tempdir().unwrap();
    let jobs = job("bp", "");
    let budget = 64 * 1024;
    let cfg = write_config(
        dir.path(),
        loki.url().as_ref(),
        &jobs,
        "ferrotail:\n  inflight_bytes: 64KB\n",
    );
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let addr = syslog_addr(&ft, "bp");

    // 150,000 messages (about 20 MB with framing), far more than the budget and the socket
    // buffers together: bursts of the same line and a numbered one.
    let total = 150_000;
    let mut expected = Vec::with_capacity(total);
    let mut data = Vec::new();
    for i in 0..total {
        let msg = if i % 10 == 0 {
            format!("request {i} done in 12ms")
        } else {
            "heartbeat ok".to_owned()
        };
        let framed = octet(&format!(
            "<14>1 - app-1 worker 1 - - {msg} {}",
            "p".repeat(100)
        ));
        data.extend_from_slice(framed.as_bytes());
        expected.push(msg);
    }
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = Arc::clone(&written);
        tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            for piece in data.chunks(4096) {
                c.write_all(piece).await.unwrap();
                written.fetch_add(piece.len(), Ordering::Relaxed);
            }
            c.shutdown().await.unwrap();
            data.len()
        })
    };
    // While Loki refuses, the budget fills, reading stops and the writer stalls short of
    // the end: it makes no progress between two looks half a second apart.
    let mut last = usize::MAX;
    wait_until(WAIT, "the sender to be held back", || {
        std::thread::sleep(Duration::from_millis(500));
        let now = written.load(Ordering::Relaxed);
        let stalled = now == last && now > 0;
        last = now;
        stalled
    });
    assert!(
        !writer.is_finished(),
        "the sender wrote everything while Loki refused"
    );
    let inflight = metric(&ft, "ferrotail_inflight_bytes", &[]).unwrap_or(0.0);
    assert!(
        inflight <= budget as f64,
        "in flight {inflight} over the {budget} budget"
    );

    loki.set_fallback(None);
    let sent = tokio::time::timeout(WAIT, writer)
        .await
        .expect("the sender finished once Loki recovered")
        .unwrap();
    assert_eq!(written.load(Ordering::Relaxed), sent);
    let entries = loki
        .wait_for_entries(total, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let mut got: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        let line = e.line_str();
        let msg = line.trim_end_matches('p').trim_end().to_owned();
        *got.entry(msg).or_default() += 1;
    }
    let mut want: HashMap<String, usize> = HashMap::new();
    for m in expected {
        *want.entry(m).or_default() += 1;
    }
    assert_eq!(got, want, "every message arrived exactly once");
    assert_eq!(ft.stop().code(), Some(0));
}

#[test]
fn a_port_in_use_fails_the_start_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs = format!("  - job_name: clash\n    syslog:\n      listen_address: {addr}\n");
    let cfg = write_config(dir.path(), "http://127.0.0.1:9/loki/api/v1/push", &jobs, "");
    let out = common::process::run_bounded(&[&format!("-config.file={}", cfg.display())], WAIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("scrape_configs[0].syslog"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_are_listed_on_the_targets_page() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = [
        job("tcp_in", ""),
        job("udp_in", "      listen_protocol: udp\n"),
    ]
    .concat();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &jobs, "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let tcp = syslog_addr(&ft, "tcp_in");
    let udp = syslog_addr(&ft, "udp_in");
    let page = ft.http_get("/targets");
    for (job, addr) in [("tcp_in", tcp), ("udp_in", udp)] {
        assert!(page.contains(job), "job {job} on /targets:\n{page}");
        assert!(
            page.contains(&format!("syslog listen={addr}")),
            "the listener of {job} on /targets:\n{page}"
        );
    }
    let ready = ft.http_get("/ready");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert_eq!(ft.stop().code(), Some(0));
}

/// What the system resolver calls 127.0.0.1 (`getent hosts`, the same NSS lookup the source
/// makes), in Go's absolute form; empty when it has no name.
fn loopback_name() -> String {
    let out = std::process::Command::new("getent")
        .args(["hosts", "127.0.0.1"])
        .output()
        .expect("running getent (libc-bin)");
    let text = String::from_utf8_lossy(&out.stdout);
    let name = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    if name.contains('.') && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_name_is_looked_up_when_a_rule_reads_it() {
    let loki = MockLoki::start().await;
    let dir = tempfile::tempdir().unwrap();
    let by_name =
        "      - source_labels: [__syslog_connection_hostname]\n        target_label: sender\n";
    let jobs = [
        job("named_tcp", "").replace(RELABEL, &format!("{RELABEL}{by_name}")),
        job("named_udp", "      listen_protocol: udp\n")
            .replace(RELABEL, &format!("{RELABEL}{by_name}")),
        // No rule reads the name: no lookup, no label.
        job("unnamed", ""),
    ]
    .concat();
    let cfg = write_config(dir.path(), loki.url().as_ref(), &jobs, "");
    let ft = Ferrotail::start(dir.path(), &cfg, &[]);
    let (tcp_addr, udp_addr, plain) = (
        syslog_addr(&ft, "named_tcp"),
        syslog_addr(&ft, "named_udp"),
        syslog_addr(&ft, "unnamed"),
    );
    let mut tcp = TcpStream::connect(tcp_addr).await.unwrap();
    let mut other = TcpStream::connect(plain).await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..30 {
        let msg = octet(&format!(
            "<14>1 - web-01 nginx 77 - - GET /healthz 200 #{}",
            i % 3
        ));
        tcp.write_all(msg.as_bytes()).await.unwrap();
        other.write_all(msg.as_bytes()).await.unwrap();
        let d = format!("<30>1 - lb-1 haproxy 5 - - udp datagram {}", i % 3);
        udp.send_to(d.as_bytes(), udp_addr).await.unwrap();
    }
    tcp.flush().await.unwrap();
    other.flush().await.unwrap();
    let entries = loki
        .wait_for_entries(90, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ft.stderr()));
    let name = loopback_name();
    for e in &entries {
        let named = !e.labels.contains(r#"job="unnamed""#);
        // An empty name makes no label at all, as an empty label does in Promtail.
        let want = named && !name.is_empty();
        assert_eq!(
            e.labels.contains(&format!(r#"sender="{name}""#)),
            want,
            "{} (the resolver calls 127.0.0.1 {name:?})",
            e.labels
        );
        if !named {
            assert!(!e.labels.contains("sender="), "{}", e.labels);
        }
    }
    drop((tcp, other));
    assert_eq!(ft.stop().code(), Some(0));
}
