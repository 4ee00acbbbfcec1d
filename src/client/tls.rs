//! The rustls configuration for a client with `tls_config` options: CA certificates, a client
//! certificate, a `server_name` override and `insecure_skip_verify`.
//!
//! Files are read once, when the client starts; any problem is an error naming the client and
//! the file. `server_name` changes the name the server certificate is verified against; the SNI
//! sent is still the URL's host (reqwest does not let it be changed), which matters only for
//! servers that pick their certificate by SNI.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ClientError;
use super::settings::{PemSource, Secret, TlsSettings};
use crate::redact;

/// Builds the rustls client configuration for client `client`.
pub(crate) fn client_config(
    client: &str,
    tls: &TlsSettings,
) -> Result<rustls::ClientConfig, ClientError> {
    let err = |problem: String| ClientError::Tls {
        client: client.to_owned(),
        problem,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?;

    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(Arc::clone(&provider)))
    } else {
        let roots = match &tls.ca {
            Some(ca) => {
                let (pem, origin) = read_pem(client, "ca", ca)?;
                let mut roots = RootCertStore::empty();
                let mut found = 0;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| err(format!("{origin}: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| err(format!("{origin}: unusable CA certificate: {e}")))?;
                    found += 1;
                }
                if found == 0 {
                    return Err(err(format!("{origin}: no PEM certificate found")));
                }
                roots
            }
            None => system_roots(),
        };
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| err(format!("cannot build the certificate verifier: {e}")))?;
        match &tls.server_name {
            Some(name) if !name.is_empty() => {
                let name = ServerName::try_from(name.clone()).map_err(|_| {
                    err(format!(
                        "server_name {name:?} is not a valid DNS name or IP address"
                    ))
                })?;
                Arc::new(VerifyAs { inner, name })
            }
            _ => inner,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let (pem, origin) = read_pem(client, "cert", cert)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("{origin}: {e}")))?;
            if chain.is_empty() {
                return Err(err(format!("{origin}: no PEM certificate found")));
            }
            let (key_pem, key_origin) = read_key(client, key)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| err(format!("{key_origin}: {}", redact::pem_key_problem(&e))))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                err(format!(
                    "client certificate {origin} and key {key_origin}: {e}"
                ))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(err(
                "a client certificate needs a key (key or key_file)".into()
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "a client key needs a certificate (cert or cert_file)".into()
            ));
        }
    };
    // Promtail speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_pem(client: &str, what: &str, src: &PemSource) -> Result<(Vec<u8>, String), ClientError> {
    match src {
        PemSource::Inline(text) => Ok((text.as_bytes().to_vec(), format!("tls_config.{what}"))),
        PemSource::File(path) => match std::fs::read(path) {
            Ok(bytes) => Ok((bytes, format!("tls_config.{what}_file {}", path.display()))),
            Err(source) => Err(ClientError::ReadFile {
                client: client.to_owned(),
                what: format!("tls_config.{what}_file"),
                path: path.clone(),
                source,
            }),
        },
    }
}

fn read_key(client: &str, key: &Secret) -> Result<(Vec<u8>, String), ClientError> {
    match key {
        Secret::Inline(text) => Ok((text.as_bytes().to_vec(), "tls_config.key".to_owned())),
        Secret::File(path) => match std::fs::read(path) {
            Ok(bytes) => Ok((bytes, format!("tls_config.key_file {}", path.display()))),
            Err(source) => Err(ClientError::ReadFile {
                client: client.to_owned(),
                what: "tls_config.key_file".to_owned(),
                path: path.clone(),
                source,
            }),
        },
    }
}

/// The system's roots plus Mozilla's (what reqwest uses when no TLS option is set).
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "Could not load a system CA certificate.");
    }
    roots.add_parsable_certificates(native.certs);
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// Verifies the server certificate against a configured name instead of the URL's host.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake signatures are still
/// checked (so the session is at least bound to the presented key).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: ClientError) -> String {
        e.to_string()
    }

    #[test]
    fn missing_ca_file_names_client_and_file() {
        let tls = TlsSettings {
            ca: Some(PemSource::File("/nonexistent/ca.pem".into())),
            ..TlsSettings::default()
        };
        let msg = names(client_config("prod", &tls).unwrap_err());
        assert!(
            msg.contains("prod") && msg.contains("/nonexistent/ca.pem"),
            "{msg}"
        );
    }

    #[test]
    fn ca_without_certificates_is_refused() {
        let tls = TlsSettings {
            ca: Some(PemSource::Inline("not pem at all".into())),
            ..TlsSettings::default()
        };
        let msg = names(client_config("c", &tls).unwrap_err());
        assert!(msg.contains("no PEM certificate"), "{msg}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let tls = TlsSettings {
            cert: Some(PemSource::Inline(String::new())),
            ..TlsSettings::default()
        };
        let msg = names(client_config("c", &tls).unwrap_err());
        assert!(msg.contains("needs a key"), "{msg}");
    }

    #[test]
    fn a_malformed_key_is_refused_without_quoting_it() {
        for key in [
            "-----BEGIN PRIVATE KEY hunter2\n",
            "-----BEGIN PRIVATE KEY-----\nhunter2\n",
            "hunter2",
        ] {
            let tls = TlsSettings {
                cert: Some(PemSource::Inline(
                    "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n".into(),
                )),
                key: Some(Secret::Inline(key.into())),
                ..TlsSettings::default()
            };
            let msg = names(client_config("c", &tls).unwrap_err());
            assert!(msg.contains("tls_config.key"), "{msg}");
            // The PEM parser quotes lines as lists of byte values.
            let as_bytes = format!("{:?}", b"hunter2".to_vec());
            let as_bytes = &as_bytes[1..as_bytes.len() - 1];
            assert!(!msg.contains("hunter2") && !msg.contains(as_bytes), "{msg}");
        }
    }

    #[test]
    fn bad_server_name_is_refused() {
        let tls = TlsSettings {
            server_name: Some("bad name!".into()),
            ..TlsSettings::default()
        };
        let msg = names(client_config("c", &tls).unwrap_err());
        assert!(msg.contains("server_name"), "{msg}");
    }

    #[test]
    fn insecure_and_default_roots_build() {
        let tls = TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::default()
        };
        assert!(client_config("c", &tls).is_ok());
        let tls = TlsSettings {
            server_name: Some("loki.example".into()),
            ..TlsSettings::default()
        };
        assert!(client_config("c", &tls).is_ok());
    }
}
