//! TLS clients' files and configuration. One reader of a client's CA bundle, certificate
//! chain and key ([`read_client_files`]) serves both clients: the forward output's rustls
//! client (RFC 5425: rustls on `ring`, TLS 1.3 and 1.2, the server verified against a CA
//! bundle and its name (`server_name`, else the target's host), or pinned by the SHA-256
//! fingerprint of its certificate; a client certificate when one is configured), and Kafka's
//! librdkafka, which takes the same files' PEM text. Validation reads them, so a bad file is
//! a config error with the key's line ([`refuse`]); the outputs read them again at start and
//! reload.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use super::{load_certs, read};
use crate::config::check::Check;
use crate::config::raw::{span_of, RawOutput};
use crate::config::{ForwardTls, TlsFileError, TlsKey};

/// Certificates read from a PEM file.
pub(crate) type Certs = Vec<CertificateDer<'static>>;

/// A client certificate chain and its key.
pub(crate) type Identity = (Certs, PrivateKeyDer<'static>);

/// A TLS client's files, read and parsed: the CA roots, the client certificate chain and key
/// (both or neither), and each file's PEM text for a client that takes text (librdkafka).
pub(crate) struct ClientFiles {
    /// The CA bundle's certificates; `None`: none configured.
    pub roots: Option<Certs>,
    /// The client certificate chain and its key.
    pub identity: Option<Identity>,
    /// The PEM text of the CA bundle, the certificate chain and the key, as read.
    pub pem: [Option<String>; 3],
}

/// Reads a TLS client's CA bundle, certificate chain and key: every file must hold what its
/// key says (at least one certificate, a private key), in PEM text. A certificate without a
/// key, or a key without a certificate, is left out here; validation refuses it with a hint.
pub(crate) fn read_client_files(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<ClientFiles, TlsFileError> {
    let text = |which: TlsKey, path: &Path, pem: Vec<u8>| {
        String::from_utf8(pem).map_err(|_| match which {
            TlsKey::Key => TlsFileError::NoKey {
                path: path.to_path_buf(),
            },
            _ => TlsFileError::NoCertificate {
                which,
                path: path.to_path_buf(),
            },
        })
    };
    let mut pem = [None, None, None];
    let roots = match ca {
        Some(ca) => {
            let certs = load_certs(TlsKey::Ca, ca)?;
            pem[0] = Some(text(TlsKey::Ca, ca, read(TlsKey::Ca, ca)?)?);
            Some(certs)
        }
        None => None,
    };
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => {
            let certs = load_certs(TlsKey::Cert, cert)?;
            pem[1] = Some(text(TlsKey::Cert, cert, read(TlsKey::Cert, cert)?)?);
            let bytes = read(TlsKey::Key, key)?;
            let parsed =
                PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsFileError::NoKey {
                    path: key.to_path_buf(),
                })?;
            pem[2] = Some(text(TlsKey::Key, key, bytes)?);
            Some((certs, parsed))
        }
        _ => None,
    };
    Ok(ClientFiles {
        roots,
        identity,
        pem,
    })
}

/// Records a TLS file error on the output's key that names the file (`ca`, `cert` or `key`).
pub(crate) fn refuse(check: &mut Check<'_>, raw: &RawOutput, e: &TlsFileError) {
    let span = match e.which() {
        TlsKey::Cert => span_of(&raw.cert),
        TlsKey::Key => span_of(&raw.key),
        TlsKey::Ca => span_of(&raw.ca),
    };
    check.err(
        span.unwrap_or_else(|| raw.kind.span()),
        e.to_string(),
        e.hint(),
    );
}

/// Builds the client configuration from the files `tls` names.
pub fn client_config(tls: &ForwardTls) -> Result<Arc<ClientConfig>, TlsFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ClientFiles {
        roots, identity, ..
    } = read_client_files(tls.ca.as_deref(), tls.cert.as_deref(), tls.key.as_deref())?;
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
