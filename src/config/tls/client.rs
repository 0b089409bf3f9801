//! The TLS client of forward outputs (RFC 5425): rustls on `ring`, TLS 1.3 and 1.2, the server
//! verified against a CA bundle and its name (`server_name`, else the target's host), or
//! pinned by the SHA-256 fingerprint of its certificate; a client certificate when one is
//! configured. Validation builds it too, so a bad file is a config error; the forward
//! output builds it again at start and reload.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ForwardTls, TlsFileError, TlsKey};

/// Builds the client configuration from the files `tls` names.
pub fn client_config(tls: &ForwardTls) -> Result<Arc<ClientConfig>, TlsFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (roots, identity) = crate::config::read_client_identity(tls)?;
    let ca_path = tls.ca.clone().unwrap_or_default();
    let webpki = match roots {
        Some(certs) => {
            let mut store = RootCertStore::empty();
            for c in certs {
                store.add(c).map_err(|source| TlsFileError::Rustls {
                    which: TlsKey::Ca,
                    path: ca_path.clone(),
                    source,
                })?;
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| TlsFileError::BadCertificate {
                        which: TlsKey::Ca,
                        path: ca_path.clone(),
                        problem: e.to_string(),
                        hint: "use a PEM bundle of CA certificates".into(),
                    })?,
            )
        }
        None => None,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsFileError::Rustls {
            which: TlsKey::Ca,
            path: ca_path.clone(),
            source,
        })?;
    let builder = if tls.fingerprints.is_empty() {
        let webpki = webpki.expect("validation requires ca or fingerprints");
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprints: tls.fingerprints.clone(),
                webpki,
                provider,
            }))
    };
    let config = match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|source| match source {
                rustls::Error::InconsistentKeys(_) => TlsFileError::KeyMismatch {
                    key: tls.key.clone().unwrap_or_default(),
                    cert: tls.cert.clone().unwrap_or_default(),
                },
                source => TlsFileError::Rustls {
                    which: TlsKey::Key,
                    path: tls.key.clone().unwrap_or_default(),
                    source,
                },
            })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Accepts a server whose certificate's SHA-256 digest is one of `fingerprints` (and, with a
/// CA too, that also chains to it and carries the name). Signatures are always checked.
#[derive(Debug)]
struct Pinned {
    fingerprints: Vec<[u8; 32]>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if !self
            .fingerprints
            .iter()
            .any(|f| f.as_slice() == digest.as_ref())
        {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        match &self.webpki {
            Some(w) => {
                w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
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
