//! Component tests of the HTTP server (`ferrotail::server`) with TLS (`server.http_tls_config`):
//! real TLS on 127.0.0.1 with certificates made by rcgen, client certificates for each
//! `client_auth_type`, versions and cipher suites, certificate reload, start errors, timeouts
//! and shutdown. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrotail::client::{PemSource, Secret};
use ferrotail::metrics::Metrics;
use ferrotail::server::{
    ClientAuth, MinVersion, Server, ServerSettings, ServerTlsSettings, Status,
};
use rustls::{CipherSuite, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use common::pki::{Fetched, Leaf, Pki, client, https_get};

/// Upper bound of every wait; a healthy run needs a fraction of it.
const WAIT: Duration = Duration::from_secs(20);
/// The name in the server's certificate (the client connects to 127.0.0.1 and checks this).
const SERVER_NAME: &str = "ferrotail.test";

struct Ready;
impl Status for Ready {
    fn ready(&self) -> bool {
        true
    }
    fn files(&self) -> Vec<ferrotail::tail::FileStatus> {
        Vec::new()
    }
}

fn tls_settings(pki: &Pki, leaf: &Leaf) -> ServerTlsSettings {
    ServerTlsSettings {
        cert: PemSource::Inline(leaf.cert_pem.clone()),
        key: Secret::Inline(leaf.key_pem.clone()),
        client_auth: ClientAuth::NoClientCert,
        client_ca: Some(PemSource::Inline(pki.ca_pem.clone())),
        min_version: MinVersion::Tls12,
        tls12_suites: None,
    }
}

fn settings(tls: Option<ServerTlsSettings>) -> ServerSettings {
    ServerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        path_prefix: String::new(),
        health_check_target: true,
        serve_metrics: true,
        tls,
        read_header_timeout: Some(Duration::from_secs(30)),
    }
}

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn start(settings: ServerSettings) -> Running {
    let server = Server::bind(
        &settings,
        Arc::new(Metrics::new()),
        Arc::new(Ready),
        "clients: []\n".into(),
    )
    .await
    .unwrap_or_else(|e| panic!("server did not start: {e}"));
    let addr = server.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.run(stop.clone()));
    Running { addr, stop, task }
}

fn default_client(pki: &Pki, cert: Option<&Leaf>) -> Arc<ClientConfig> {
    client(pki, cert, rustls::DEFAULT_VERSIONS)
}

async fn tls_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<Fetched, String> {
    https_get(addr, config, SERVER_NAME, path).await
}

async fn metrics_ok(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Fetched, String> {
    let f = tls_get(addr, config, "/metrics").await?;
    assert!(
        f.response.starts_with("HTTP/1.1 200") && f.response.contains("promtail_build_info"),
        "{}",
        f.response
    );
    Ok(f)
}

/// Plain TCP: sends `bytes`, returns everything until the server closes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        // A reset also ends the exchange.
        let _ = s.read_to_end(&mut out).await;
        out
    };
    tokio::time::timeout(WAIT, attempt)
        .await
        .expect("the server did not close the connection")
}

#[tokio::test]
async fn metrics_over_tls_and_plain_http_is_refused() {
    let pki = Pki::new();
    let leaf = pki.server(SERVER_NAME);
    let server = start(settings(Some(tls_settings(&pki, &leaf)))).await;
    let f = metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    assert_eq!(f.server_cert, leaf.cert_der);
    // The server speaks HTTP/1.1 only and says so.
    let mut h2_first = (*default_client(&pki, None)).clone();
    h2_first.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let f = metrics_ok(server.addr, Arc::new(h2_first)).await.unwrap();
    assert_eq!(f.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // Plain HTTP to the TLS port: Go's answer, never the page.
    let answer = raw_exchange(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request") && answer.contains("HTTPS server"),
        "{answer}"
    );
    assert!(!answer.contains("promtail_build_info"), "{answer}");

    // A client that does not trust the CA fails.
    let other = Pki::new();
    let err = tls_get(server.addr, default_client(&other, None), "/metrics")
        .await
        .err()
        .expect("an unknown CA must fail");
    assert!(err.contains("handshake"), "{err}");
    server.stop.cancel();
}

#[tokio::test]
async fn require_and_verify_client_cert() {
    let pki = Pki::new();
    let leaf = pki.server(SERVER_NAME);
    let mut tls = tls_settings(&pki, &leaf);
    tls.client_auth = ClientAuth::RequireAndVerifyClientCert;
    let server = start(settings(Some(tls))).await;

    let good = pki.client("scraper");
    metrics_ok(server.addr, default_client(&pki, Some(&good)))
        .await
        .expect("a certificate signed by the client CA is accepted");
    let none = tls_get(server.addr, default_client(&pki, None), "/metrics").await;
    assert!(none.is_err(), "no client certificate must be refused");
    let stranger = Pki::new().client("stranger");
    let bad = tls_get(
        server.addr,
        default_client(&pki, Some(&stranger)),
        "/metrics",
    )
    .await;
    assert!(
        bad.is_err(),
        "a certificate from another CA must be refused"
    );
    server.stop.cancel();
}

#[tokio::test]
async fn the_other_client_auth_types() {
    let pki = Pki::new();
    let leaf = pki.server(SERVER_NAME);
    let good = pki.client("scraper");
    let stranger = Pki::new().client("stranger");
    // (type, no certificate accepted, certificate from the CA accepted, stranger accepted)
    let cases = [
        (ClientAuth::NoClientCert, true, true, true),
        (ClientAuth::RequestClientCert, true, true, true),
        (ClientAuth::RequireAnyClientCert, false, true, true),
        (ClientAuth::VerifyClientCertIfGiven, true, true, false),
    ];
    for (auth, none_ok, good_ok, stranger_ok) in cases {
        let mut tls = tls_settings(&pki, &leaf);
        tls.client_auth = auth;
        let server = start(settings(Some(tls))).await;
        for (what, cert, ok) in [
            ("none", None, none_ok),
            ("good", Some(&good), good_ok),
            ("stranger", Some(&stranger), stranger_ok),
        ] {
            let r = tls_get(server.addr, default_client(&pki, cert), "/metrics").await;
            assert_eq!(
                r.as_ref()
                    .is_ok_and(|f| f.response.starts_with("HTTP/1.1 200")),
                ok,
                "{auth:?} with {what}: {:?}",
                r.map(|f| f.response)
            );
        }
        server.stop.cancel();
    }
}

#[tokio::test]
async fn min_version_and_cipher_suites() {
    let pki = Pki::new();
    let leaf = pki.server(SERVER_NAME); // an ECDSA key: the ECDHE_ECDSA suites apply
    let tls12_only = |suite: CipherSuite| {
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites.retain(|s| s.suite() == suite);
        let builder = ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap();
        Arc::new(
            builder
                .with_root_certificates(pki.roots())
                .with_no_client_auth(),
        )
    };

    // Default: TLS 1.3 preferred, TLS 1.2 accepted with any suite rustls has.
    let server = start(settings(Some(tls_settings(&pki, &leaf)))).await;
    let f = metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    assert_eq!(f.version, Some(rustls::ProtocolVersion::TLSv1_3));
    let f = metrics_ok(
        server.addr,
        tls12_only(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    )
    .await
    .unwrap();
    assert_eq!(f.version, Some(rustls::ProtocolVersion::TLSv1_2));
    server.stop.cancel();

    // tls_min_version: VersionTLS13.
    let mut tls = tls_settings(&pki, &leaf);
    tls.min_version = MinVersion::Tls13;
    let server = start(settings(Some(tls))).await;
    metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    let old = tls_get(
        server.addr,
        client(&pki, None, &[&rustls::version::TLS12]),
        "/metrics",
    )
    .await;
    assert!(old.is_err(), "TLS 1.2 must be refused");
    server.stop.cancel();

    // tls_cipher_suites restricts TLS 1.2 only; TLS 1.3 keeps working.
    let mut tls = tls_settings(&pki, &leaf);
    tls.tls12_suites = Some(vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
    let server = start(settings(Some(tls))).await;
    metrics_ok(
        server.addr,
        tls12_only(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    )
    .await
    .unwrap();
    let other = tls_get(
        server.addr,
        tls12_only(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        "/metrics",
    )
    .await;
    assert!(other.is_err(), "a TLS 1.2 suite not listed must be refused");
    metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    server.stop.cancel();
}

/// Writes `text` to `path` and sets its modification time, so that a change is seen even
/// within the file system's timestamp granularity.
fn write_at(path: &Path, text: &str, modified: SystemTime) {
    std::fs::write(path, text).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(modified).unwrap();
}

#[tokio::test]
async fn certificate_files_are_reloaded_when_they_change() {
    let pki = Pki::new();
    let (first, second) = (pki.server(SERVER_NAME), pki.server(SERVER_NAME));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let t0 = SystemTime::now() - Duration::from_secs(3600);
    write_at(&cert, &first.cert_pem, t0);
    write_at(&key, &first.key_pem, t0);
    let mut tls = tls_settings(&pki, &first);
    tls.cert = PemSource::File(cert.clone());
    tls.key = Secret::File(key.clone());
    let server = start(settings(Some(tls))).await;
    // A new client each time: a resumed session would not show the server certificate again.
    let f = metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    assert_eq!(f.server_cert, first.cert_der);

    // Renewed: the next handshake gets the new certificate.
    let t1 = t0 + Duration::from_secs(60);
    write_at(&cert, &second.cert_pem, t1);
    write_at(&key, &second.key_pem, t1);
    let f = metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    assert_eq!(f.server_cert, second.cert_der);

    // A broken renewal (key of another certificate): the last good pair stays in use.
    write_at(&key, &first.key_pem, t1 + Duration::from_secs(60));
    let f = metrics_ok(server.addr, default_client(&pki, None))
        .await
        .unwrap();
    assert_eq!(f.server_cert, second.cert_der);
    server.stop.cancel();
}

#[tokio::test]
async fn start_errors_name_the_key_and_the_file() {
    let pki = Pki::new();
    let (leaf, other) = (pki.server(SERVER_NAME), pki.server(SERVER_NAME));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let key_file = dir.path().join("other.key");
    std::fs::write(&key_file, &other.key_pem).unwrap();
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY hunter2\n").unwrap();
    let ca_missing = dir.path().join("missing-ca.pem");

    let mut cases: Vec<(ServerTlsSettings, String)> = Vec::new();
    let mut t = tls_settings(&pki, &leaf);
    t.cert = PemSource::File(missing.clone());
    cases.push((
        t,
        format!("server.http_tls_config.cert_file {}", missing.display()),
    ));
    let mut t = tls_settings(&pki, &leaf);
    t.key = Secret::File(key_file.clone());
    cases.push((
        t,
        format!(
            "server.http_tls_config.key_file {}: does not match",
            key_file.display()
        ),
    ));
    let mut t = tls_settings(&pki, &leaf);
    t.key = Secret::File(garbage.clone());
    cases.push((
        t,
        format!(
            "server.http_tls_config.key_file {}: not a valid PEM private key",
            garbage.display()
        ),
    ));
    let mut t = tls_settings(&pki, &leaf);
    t.client_auth = ClientAuth::RequireAndVerifyClientCert;
    t.client_ca = Some(PemSource::File(ca_missing.clone()));
    cases.push((
        t,
        format!(
            "server.http_tls_config.client_ca_file {}",
            ca_missing.display()
        ),
    ));
    for (tls, want) in cases {
        let err = Server::bind(
            &settings(Some(tls)),
            Arc::new(Metrics::new()),
            Arc::new(Ready),
            String::new(),
        )
        .await
        .err()
        .expect("must not start")
        .to_string();
        assert!(err.starts_with(&want), "want {want:?}, got {err:?}");
        assert!(
            !err.contains("hunter2") && !err.contains("104, 117, 110"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn silent_clients_are_cut_off_and_shutdown_closes_idle_connections() {
    let pki = Pki::new();
    let leaf = pki.server(SERVER_NAME);
    for tls in [None, Some(tls_settings(&pki, &leaf))] {
        let mut s = settings(tls.clone());
        s.read_header_timeout = Some(Duration::from_millis(200));
        let server = start(s).await;
        // Connects and says nothing: the server hangs up (no TLS handshake / no headers).
        let silent = raw_exchange(server.addr, b"").await;
        assert!(silent.is_empty(), "{silent:?}");
        server.stop.cancel();
    }

    // An idle keep-alive connection does not hold up shutdown: it is closed.
    let server = start(settings(None)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    server.stop.cancel();
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("run() must return after shutdown")
        .unwrap();
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("the idle connection must be closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed, not answered again");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
}
