//! A throw-away PKI for TLS tests, made with rcgen (one CA and leaf certificates it signs), and
//! an HTTPS client to test servers with.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA that signs leaf certificates.
pub struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key, in PEM and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivateKeyDer<'static>,
}

impl Pki {
    /// A new CA named `ferrotail test CA`.
    pub fn new() -> Pki {
        let key = KeyPair::generate().expect("test PKI");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("test PKI");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ferrotail test CA");
        let cert = params.self_signed(&key).expect("test PKI");
        Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `name` (a DNS name or an IP address) with one extended key usage.
    pub fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("test PKI");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("test PKI");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("test PKI");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A certificate for a server at `name`.
    pub fn server(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A certificate for a client.
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Root store holding this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("test PKI");
        roots
    }
}

/// rustls' ring provider, as ferrotail uses it.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `pki`, offering `versions`, presenting `cert` if given.
pub fn client(
    pki: &Pki,
    cert: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.roots());
    let config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert_der.clone()], leaf.key_der.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// What a TLS GET brought back: the response, and the server certificate seen.
pub struct Fetched {
    pub response: String,
    pub server_cert: CertificateDer<'static>,
    pub version: Option<rustls::ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
}

/// GET `path` over TLS from the server at `addr` that must prove to be `server_name`; `Err`
/// when the handshake or the request fails. Bounded by 20 s.
pub async fn https_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
    path: &str,
) -> Result<Fetched, String> {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (_, conn) = tls.get_ref();
        let server_cert = conn.peer_certificates().unwrap()[0].clone();
        let (version, alpn) = (
            conn.protocol_version(),
            conn.alpn_protocol().map(<[u8]>::to_vec),
        );
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if out.is_empty() {
            return Err("connection closed without an answer".to_owned());
        }
        Ok(Fetched {
            response: String::from_utf8_lossy(&out).into_owned(),
            server_cert,
            version,
            alpn,
        })
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .expect("TLS GET did not finish")
}
