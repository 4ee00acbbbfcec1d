//! TLS for the HTTP server: `server.http_tls_config` with `server.tls_min_version` and
//! `server.tls_cipher_suites`, with the meaning dskit gives them (through Prometheus'
//! exporter-toolkit), on rustls.
//!
//! - Certificate and key come from `cert_file`/`key_file`, or inline `cert`/`key` (a file wins
//!   over inline text, as in exporter-toolkit). They are loaded at start, where any problem is an
//!   error naming the key and the file. Files are looked at again at every handshake and reloaded
//!   when their modification time or size changed, so a renewed certificate is served without a
//!   restart (exporter-toolkit reads them at every handshake). A renewed pair that does not load
//!   is logged and the previous pair stays in use.
//! - `client_auth_type` takes Go's names. `RequestClientCert` and `RequireAnyClientCert` ask for
//!   a certificate without verifying it against a CA (as Go does; the handshake still proves the
//!   client holds its key). `VerifyClientCertIfGiven` and `RequireAndVerifyClientCert` verify
//!   against `client_ca_file`/`client_ca`, which ferrotail requires for them (see
//!   [`crate::settings::server_tls`]).
//! - rustls speaks TLS 1.2 and 1.3 only: `tls_min_version` `VersionTLS10`/`VersionTLS11` mean 1.2
//!   (with a warning). `tls_cipher_suites` takes Go's names and, as in Go, restricts the TLS 1.2
//!   suites only (TLS 1.3 suites are always on). Names Go knows but rustls does not implement
//!   (CBC, RC4, 3DES, RSA key exchange) are ignored with a warning; other names are errors.
//!
//! Invariant: no error or log line quotes the private key (see [`redact::pem_key_problem`]).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CipherSuite, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::client::{PemSource, Secret};
use crate::redact;

/// `client_auth_type` (Go's `tls.ClientAuthType` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (also `""`): no certificate is asked for. Default.
    #[default]
    NoClientCert,
    /// `RequestClientCert`: asked for, not required, not verified.
    RequestClientCert,
    /// `RequireAnyClientCert` (or the older `RequireClientCert`): required, not verified.
    RequireAnyClientCert,
    /// `VerifyClientCertIfGiven`: not required; verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// `RequireAndVerifyClientCert`: required and verified against the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Parses exporter-toolkit's accepted names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "NoClientCert" => Ok(ClientAuth::NoClientCert),
            "RequestClientCert" => Ok(ClientAuth::RequestClientCert),
            "RequireAnyClientCert" | "RequireClientCert" => Ok(ClientAuth::RequireAnyClientCert),
            "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerifyClientCert),
            other => Err(format!(
                "invalid ClientAuth: {other:?} (NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            )),
        }
    }

    /// Whether certificates are verified against a client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// The lowest TLS version offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3. Default.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinVersion {
    /// Parses `tls_min_version` (dskit's names, `""` = default). The second value is a warning
    /// when the version asked for is lower than rustls can offer.
    pub fn parse(s: &str) -> Result<(Self, Option<String>), String> {
        match s {
            "" | "VersionTLS12" => Ok((MinVersion::Tls12, None)),
            "VersionTLS13" => Ok((MinVersion::Tls13, None)),
            "VersionTLS10" | "VersionTLS11" => Ok((
                MinVersion::Tls12,
                Some(format!(
                    "{s}: TLS 1.0 and 1.1 are not offered (insecure, and not implemented by \
                     rustls); the minimum is TLS 1.2"
                )),
            )),
            other => Err(format!(
                "TLS version {other:?} not recognized (VersionTLS10, VersionTLS11, VersionTLS12 \
                 or VersionTLS13)"
            )),
        }
    }
}

/// Go's cipher suite names (`tls.CipherSuites()` and `tls.InsecureCipherSuites()`, which dskit
/// accepts) with the rustls suite each one means; `None` for suites rustls does not implement.
/// The TLS 1.3 names are accepted and, as in Go, change nothing.
const GO_CIPHER_SUITES: &[(&str, Option<CipherSuite>)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS13_AES_256_GCM_SHA384),
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", None),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", None),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", None),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", None),
    ("TLS_RSA_WITH_RC4_128_SHA", None),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
];

/// `tls_cipher_suites`, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CipherSuites {
    /// The TLS 1.2 suites allowed; `None` (an empty setting) = every suite rustls offers.
    pub tls12: Option<Vec<CipherSuite>>,
    /// Names Go knows that rustls does not implement (ignored; worth a warning).
    pub unsupported: Vec<String>,
}

impl CipherSuites {
    /// Parses a comma-separated list of Go names, split exactly as dskit does (no trimming).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(CipherSuites::default());
        }
        let mut tls12 = Vec::new();
        let mut unsupported = Vec::new();
        for name in s.split(',') {
            match GO_CIPHER_SUITES.iter().find(|(n, _)| *n == name) {
                None => return Err(format!("cipher suite {name:?} not recognized")),
                Some((_, None)) => unsupported.push(name.to_owned()),
                Some((_, Some(suite))) => {
                    if !is_tls13(*suite) {
                        tls12.push(*suite);
                    }
                }
            }
        }
        Ok(CipherSuites {
            tls12: Some(tls12),
            unsupported,
        })
    }
}

fn is_tls13(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS13_AES_256_GCM_SHA384
            | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    )
}

/// Runtime TLS settings of the HTTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// The certificate chain (`cert_file`, or `cert`).
    pub cert: PemSource,
    /// Its private key (`key_file`, or `key`).
    pub key: Secret,
    /// Whether and how client certificates are asked for. Default: not at all.
    pub client_auth: ClientAuth,
    /// CAs client certificates are verified against (`client_ca_file`, or `client_ca`).
    pub client_ca: Option<PemSource>,
    /// The lowest version offered. Default: TLS 1.2.
    pub min_version: MinVersion,
    /// The TLS 1.2 suites allowed; `None` = all. Default: all.
    pub tls12_suites: Option<Vec<CipherSuite>>,
}

/// A TLS setting that cannot be used; the message names the YAML key and, for a file, the file.
#[derive(Debug, thiserror::Error)]
#[error("server.http_tls_config.{origin}: {problem}")]
pub struct TlsError {
    /// The key, and the file when there is one: `cert_file /etc/ferrotail/tls.crt`.
    pub origin: String,
    /// What is wrong.
    pub problem: String,
}

/// Builds the rustls server configuration (reads every file once; see the module doc).
pub fn server_config(s: &ServerTlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(allowed) = &s.tls12_suites {
        provider
            .cipher_suites
            .retain(|cs| is_tls13(cs.suite()) || allowed.contains(&cs.suite()));
    }
    let provider = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError {
            origin: "tls_cipher_suites".into(),
            problem: e.to_string(),
        })?;

    let builder = match s.client_auth {
        ClientAuth::NoClientCert => builder.with_no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                provider: Arc::clone(&provider),
                mandatory: s.client_auth == ClientAuth::RequireAnyClientCert,
            })),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let Some(ca) = &s.client_ca else {
                return Err(TlsError {
                    origin: "client_ca_file".into(),
                    problem: "client_auth_type verifies client certificates and needs a CA".into(),
                });
            };
            let roots = client_roots(ca)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if s.client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError {
                origin: origin(ca, "client_ca"),
                problem: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };

    let resolver = ReloadingCert::new(s.cert.clone(), s.key.clone(), provider)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // The server speaks HTTP/1.1 only (axum's http1 feature), like the rest of ferrotail.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `cert_file /path` or `cert`, for messages.
fn origin(src: &PemSource, key: &str) -> String {
    match src {
        PemSource::File(path) => format!("{key}_file {}", path.display()),
        PemSource::Inline(_) => key.to_owned(),
    }
}

fn read_pem(src: &PemSource, key: &str) -> Result<Vec<u8>, TlsError> {
    match src {
        PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        PemSource::File(path) => std::fs::read(path).map_err(|e| TlsError {
            origin: origin(src, key),
            problem: e.to_string(),
        }),
    }
}

fn client_roots(ca: &PemSource) -> Result<RootCertStore, TlsError> {
    let err = |problem: String| TlsError {
        origin: origin(ca, "client_ca"),
        problem,
    };
    let pem = read_pem(ca, "client_ca")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(roots)
}

/// Loads a certificate chain and its key (checked to belong together).
fn load_pair(
    cert: &PemSource,
    key: &Secret,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem = read_pem(cert, "cert")?;
    let cert_err = |problem: String| TlsError {
        origin: origin(cert, "cert"),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate found".into()));
    }
    let (key_pem, key_origin) = match key {
        Secret::Inline(text) => (text.as_bytes().to_vec(), "key".to_owned()),
        Secret::File(path) => {
            let key_origin = format!("key_file {}", path.display());
            match std::fs::read(path) {
                Ok(bytes) => (bytes, key_origin),
                Err(e) => {
                    return Err(TlsError {
                        origin: key_origin,
                        problem: e.to_string(),
                    });
                }
            }
        }
    };
    let key_err = |problem: String| TlsError {
        origin: key_origin.clone(),
        problem,
    };
    let der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| key_err(redact::pem_key_problem(&e).to_owned()))?;
    let pair = CertifiedKey::from_der(chain, der, provider)
        .map_err(|e| key_err(format!("does not match the certificate, or unusable: {e}")))?;
    Ok(Arc::new(pair))
}

/// Modification time and size of a file (`None` for inline text or a file that is gone).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: Option<&Path>) -> Stamp {
    let meta = std::fs::metadata(path?).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Serves the configured pair, reloading it when its files change (see the module doc).
#[derive(Debug)]
struct ReloadingCert {
    cert: PemSource,
    key: Secret,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    fn new(cert: PemSource, key: Secret, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = (stamp(cert.path()), stamp(key.path()));
        let pair = load_pair(&cert, &key, &provider)?;
        Ok(ReloadingCert {
            cert,
            key,
            provider,
            current: Mutex::new((stamps.0, stamps.1, pair)),
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(self.cert.path()), stamp(self.key.path()));
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if (current.0, current.1) != stamps {
            // Remember the new stamps even when loading fails: a pair caught half-written is
            // tried again when the second file changes, not at every handshake.
            (current.0, current.1) = stamps;
            match load_pair(&self.cert, &self.key, &self.provider) {
                Ok(pair) => {
                    current.2 = pair;
                    tracing::info!("Reloaded the HTTP server's TLS certificate.");
                }
                Err(e) => tracing::warn!(error = %e,
                    "Cannot reload the HTTP server's TLS certificate; serving the previous one."),
            }
        }
        Some(Arc::clone(&current.2))
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is accepted, as in Go. The
/// handshake signatures are still checked, so the client proves it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_restrict_tls12_only_and_use_go_names() {
        assert_eq!(CipherSuites::parse("").unwrap(), CipherSuites::default());
        let s = CipherSuites::parse(
            "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_RC4_128_SHA",
        )
        .unwrap();
        assert_eq!(
            s.tls12,
            Some(vec![CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384])
        );
        assert_eq!(s.unsupported, ["TLS_RSA_WITH_RC4_128_SHA"]);
        // Only TLS 1.3 names: no TLS 1.2 suite is left, as in Go.
        assert_eq!(
            CipherSuites::parse("TLS_AES_256_GCM_SHA384").unwrap().tls12,
            Some(vec![])
        );
        // rustls' own names are not Go's.
        let e = CipherSuites::parse("TLS13_AES_128_GCM_SHA256").unwrap_err();
        assert!(e.contains("not recognized"), "{e}");
        // Every suite rustls offers has its Go name.
        for suite in rustls::crypto::ring::ALL_CIPHER_SUITES {
            assert!(
                GO_CIPHER_SUITES
                    .iter()
                    .any(|(_, s)| *s == Some(suite.suite())),
                "{:?}",
                suite.suite()
            );
        }
    }

    #[test]
    fn client_auth_and_version_names() {
        assert_eq!(
            ClientAuth::parse("RequireClientCert").unwrap(),
            ClientAuth::RequireAnyClientCert
        );
        assert_eq!(ClientAuth::parse("").unwrap(), ClientAuth::NoClientCert);
        assert!(ClientAuth::parse("requireandverifyclientcert").is_err());
        assert_eq!(MinVersion::parse("").unwrap(), (MinVersion::Tls12, None));
        let (v, warning) = MinVersion::parse("VersionTLS11").unwrap();
        assert_eq!(v, MinVersion::Tls12);
        assert!(warning.is_some());
    }
}
