//! The TLS input's settings (RFC 5425): the `cert`, `key`, `client_auth`, `ca` and
//! `permitted_peers` keys of a `type = "tls"` input, and [`server_config`], which reads the PEM
//! files and builds the rustls configuration.
//!
//! Validation calls [`server_config`] too, so `logwelld --check-config` refuses exactly what the
//! input would refuse at start or on reload: a missing file, a PEM without a certificate or
//! key, a key that does not match the certificate, an expired certificate. This module reads
//! files but opens no sockets.
//!
//! It is the one place TLS files are read and rustls configurations built: the input's
//! server side here, the forward outputs' client side in [`client`].

pub mod client;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use toml::Spanned;

use super::check::Check;
use super::raw::RawInput;
use super::settings::StreamSettings;

/// A TLS input: a TCP stream input plus its certificate, key and client checks.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    /// Addresses and connection limits, as for `type = "tcp"`.
    pub stream: StreamSettings,
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// The CA bundle (PEM) client certificates must chain to.
    pub ca: Option<PathBuf>,
    /// When not empty, only clients matching one of these are served.
    pub permitted_peers: Vec<PermittedPeer>,
}

/// `client_auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A client certificate is asked for and verified if sent.
    Optional,
    /// Clients without a valid certificate are refused.
    Required,
}

/// One entry of `permitted_peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermittedPeer {
    /// A DNS name (lowercase); `*.example.com` matches one label in front of `example.com`.
    Name(String),
    /// The SHA-256 digest of the client certificate's DER.
    Sha256([u8; 32]),
}

impl PermittedPeer {
    /// Whether a client with these names (DNS SANs and CN) and this certificate digest matches.
    pub fn matches(&self, names: &[String], sha256: &[u8]) -> bool {
        match self {
            PermittedPeer::Sha256(d) => d.as_slice() == sha256,
            PermittedPeer::Name(pattern) => names.iter().any(|n| {
                let n = n.to_ascii_lowercase();
                match pattern.strip_prefix("*.") {
                    Some(domain) => n
                        .split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
                    None => n == *pattern,
                }
            }),
        }
    }
}

/// Which key of the input a file problem belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsKey {
    /// `cert`.
    Cert,
    /// `key`.
    Key,
    /// `ca`.
    Ca,
}

/// Why the certificate, key or CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// Which key.
        which: TlsKey,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The PEM holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// Which key.
        which: TlsKey,
        /// The file.
        path: PathBuf,
    },
    /// The PEM holds no private key.
    #[error("{} holds no PEM private key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate is broken or its dates do not cover now.
    #[error("{}: {problem}", path.display())]
    BadCertificate {
        /// Which key.
        which: TlsKey,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// The key is not the certificate's.
    #[error("the key {} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// rustls refused the material.
    #[error("{}: {source}", path.display())]
    Rustls {
        /// Which key.
        which: TlsKey,
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl TlsFileError {
    /// The key whose file is at fault.
    pub fn which(&self) -> TlsKey {
        match self {
            TlsFileError::Read { which, .. }
            | TlsFileError::NoCertificate { which, .. }
            | TlsFileError::BadCertificate { which, .. }
            | TlsFileError::Rustls { which, .. } => *which,
            TlsFileError::NoKey { .. } | TlsFileError::KeyMismatch { .. } => TlsKey::Key,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            TlsFileError::Read { .. } => {
                "check the path, and that logwelld (root at start) may read it".into()
            }
            TlsFileError::NoCertificate { .. } => {
                "the file must hold `-----BEGIN CERTIFICATE-----` blocks".into()
            }
            TlsFileError::NoKey { .. } => {
                "the file must hold a `-----BEGIN PRIVATE KEY-----` (or RSA / EC) block".into()
            }
            TlsFileError::BadCertificate { hint, .. } => hint.clone(),
            TlsFileError::KeyMismatch { .. } => {
                "point `key` at the key the certificate was issued for".into()
            }
            TlsFileError::Rustls { .. } => "replace the file with a valid one".into(),
        }
    }
}

/// Reads a certificate, key or CA file. Under privilege separation the worker asks the
/// privileged parent to open it (the parent allows exactly the TLS files the configuration
/// names), so a key only root may read works at start and at every reload.
pub(crate) fn read(which: TlsKey, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    use std::io::Read;
    let err = |source| TlsFileError::Read {
        which,
        path: path.to_path_buf(),
        source,
    };
    let mut pem = Vec::new();
    crate::host::fsops::open_read(path)
        .and_then(|mut f| f.read_to_end(&mut pem))
        .map_err(err)?;
    Ok(pem)
}

/// The TLS files of a configuration (certificates, keys and CA bundles of the `tls` inputs,
/// the follow service and the forward outputs): what the privileged parent lets the worker
/// read.
pub(crate) fn files_of(settings: &super::Settings) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in &settings.inputs {
        if let super::InputKind::Tls(t) = &i.kind {
            files.extend([t.cert.clone(), t.key.clone()]);
            files.extend(t.ca.clone());
        }
    }
    if let Some(tls) = settings.follow.as_ref().and_then(|f| f.tls.as_ref()) {
        let (cert, key, ca) = &tls.files;
        files.extend([cert.clone(), key.clone()]);
        files.extend(ca.clone());
    }
    for o in &settings.outputs {
        match &o.kind {
            super::OutputKind::Forward(f) => {
                if let Some(t) = &f.tls {
                    files.extend(t.ca.iter().chain(&t.cert).chain(&t.key).cloned());
                }
            }
            super::OutputKind::Kafka(k) => {
                files.extend(k.tls.iter().flat_map(|t| t.files.iter().cloned()));
            }
            super::OutputKind::Http(h) => {
                if let Some(t) = &h.tls {
                    files.extend(t.ca.iter().chain(&t.cert).chain(&t.key).cloned());
                }
            }
            _ => {}
        }
    }
    files
}

/// Every certificate in a PEM file; at least one.
pub fn load_certs(
    which: TlsKey,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(which, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate {
            which,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Refuses a certificate that cannot be parsed, or whose validity does not cover now.
fn check_dates(which: TlsKey, path: &Path, der: &[u8]) -> Result<(), TlsFileError> {
    let bad = |problem: String, hint: String| TlsFileError::BadCertificate {
        which,
        path: path.to_path_buf(),
        problem,
        hint,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        bad(
            format!("the certificate cannot be parsed: {e}"),
            "replace it".into(),
        )
    })?;
    let day = |t: x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    let now = chrono::Utc::now().timestamp();
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        let when = day(validity.not_after);
        return Err(bad(
            format!("the certificate `{}` expired on {when}", cert.subject()),
            format!("the certificate expired on {when}; renew it"),
        ));
    }
    if validity.not_before.timestamp() > now {
        let when = day(validity.not_before);
        return Err(bad(
            format!(
                "the certificate `{}` is not valid before {when}",
                cert.subject()
            ),
            "check the clock, or reissue the certificate".into(),
        ));
    }
    Ok(())
}

/// Reads the certificate, key and CA files and builds the server configuration: TLS 1.3 and
/// 1.2 on `ring`, client certificates verified against `ca` when asked for.
pub fn server_config(s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsFileError> {
    let certs = load_certs(TlsKey::Cert, &s.cert)?;
    for c in &certs {
        check_dates(TlsKey::Cert, &s.cert, c)?;
    }
    let key = PrivateKeyDer::from_pem_slice(&read(TlsKey::Key, &s.key)?).map_err(|_| {
        TlsFileError::NoKey {
            path: s.key.clone(),
        }
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsFileError::Rustls {
            which: TlsKey::Cert,
            path: s.cert.clone(),
            source,
        })?;
    let builder = match (&s.ca, s.client_auth) {
        (Some(ca), ClientAuth::Optional | ClientAuth::Required) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(TlsKey::Ca, ca)? {
                roots.add(c).map_err(|source| TlsFileError::Rustls {
                    which: TlsKey::Ca,
                    path: ca.clone(),
                    source,
                })?;
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if s.client_auth == ClientAuth::Optional {
                v = v.allow_unauthenticated();
            }
            let verifier = v.build().map_err(|e| TlsFileError::BadCertificate {
                which: TlsKey::Ca,
                path: ca.clone(),
                problem: e.to_string(),
                hint: "use a PEM bundle of CA certificates".into(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| match source {
            rustls::Error::InconsistentKeys(_) => TlsFileError::KeyMismatch {
                key: s.key.clone(),
                cert: s.cert.clone(),
            },
            source => TlsFileError::Rustls {
                which: TlsKey::Key,
                path: s.key.clone(),
                source,
            },
        })?;
    // Syslog senders hold one long connection; tickets would only be written into sockets
    // whose clients may already have closed after their last message (then a reset can
    // discard the messages still unread in our receive queue).
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Refuses the TLS keys on inputs of other types.
/// Whether an input sets any TLS key: a `relp` or `http` input then speaks TLS.
pub(crate) fn has_tls_keys(raw: &RawInput) -> bool {
    raw.cert.is_some()
        || raw.key.is_some()
        || raw.client_auth.is_some()
        || raw.ca.is_some()
        || raw.permitted_peers.is_some()
}

pub(crate) fn refuse_tls_keys(check: &mut Check<'_>, raw: &RawInput, kind: &str) {
    if matches!(kind, "tls" | "relp" | "http") {
        return;
    }
    for (key, span) in [
        ("cert", raw.cert.as_ref().map(Spanned::span)),
        ("key", raw.key.as_ref().map(Spanned::span)),
        ("client_auth", raw.client_auth.as_ref().map(Spanned::span)),
        ("ca", raw.ca.as_ref().map(Spanned::span)),
        (
            "permitted_peers",
            raw.permitted_peers.as_ref().map(Spanned::span),
        ),
    ] {
        if let Some(span) = span {
            check.err(
                span,
                format!("`{key}` does not apply to {kind} inputs"),
                "it applies to tls, relp and http inputs; remove it",
            );
        }
    }
}

pub(crate) fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Builds the TLS settings of a `type = "tls"` input, reading its files.
pub(crate) fn tls_settings(
    check: &mut Check<'_>,
    raw: &RawInput,
    stream: StreamSettings,
) -> Option<TlsSettings> {
    let path =
        |check: &mut Check<'_>, v: &Option<Spanned<String>>, key: &str, example: &str| match v {
            Some(p) if !p.get_ref().is_empty() => Some(PathBuf::from(p.get_ref())),
            _ => {
                check.err(
                    raw.kind.span(),
                    format!("a tls input needs `{key}`"),
                    format!("add {key} = \"{example}\" to this input"),
                );
                None
            }
        };
    let cert = path(check, &raw.cert, "cert", "/etc/logwell/tls/server.pem");
    let key = path(check, &raw.key, "key", "/etc/logwell/tls/server.key");
    let mut permitted_peers = Vec::new();
    if let Some(p) = &raw.permitted_peers {
        for entry in p.get_ref().clone_vec() {
            if let Some(hex) = entry.strip_prefix("sha256:") {
                match parse_fingerprint(hex) {
                    Some(d) => permitted_peers.push(PermittedPeer::Sha256(d)),
                    None => check.err(
                        p.span(),
                        format!("`{entry}` is not a SHA-256 fingerprint"),
                        "write 32 hex bytes, such as the output of `openssl x509 -noout -fingerprint -sha256`",
                    ),
                }
            } else if entry.is_empty()
                || entry[entry.starts_with("*.") as usize * 2..].contains('*')
            {
                check.err(
                    p.span(),
                    format!("`{entry}` is not a peer name"),
                    "write a DNS name, a name with a leading `*.`, or `sha256:` and a fingerprint",
                );
            } else {
                permitted_peers.push(PermittedPeer::Name(entry.to_ascii_lowercase()));
            }
        }
    }
    let client_auth = match raw
        .client_auth
        .as_ref()
        .map(|c| (c.get_ref().as_str(), c.span()))
    {
        None if !permitted_peers.is_empty() => ClientAuth::Required,
        None | Some(("none", _)) => ClientAuth::None,
        Some(("optional", _)) => ClientAuth::Optional,
        Some(("required", _)) => ClientAuth::Required,
        Some((other, span)) => {
            check.err(
                span,
                format!("`client_auth = \"{other}\"` is not a client authentication mode"),
                "use \"none\", \"optional\" or \"required\"",
            );
            ClientAuth::None
        }
    };
    if !permitted_peers.is_empty() && client_auth != ClientAuth::Required {
        if let Some(c) = &raw.client_auth {
            check.err(
                c.span(),
                "`permitted_peers` needs `client_auth = \"required\"`",
                "set client_auth = \"required\" (or remove it: permitted_peers implies it)",
            );
        }
    }
    let ca = raw.ca.as_ref().map(|c| PathBuf::from(c.get_ref()));
    match (&raw.ca, client_auth) {
        (None, ClientAuth::Optional | ClientAuth::Required) => check.err(
            raw.client_auth
                .as_ref()
                .map_or_else(|| raw.kind.span(), Spanned::span),
            "client certificates are verified against `ca`, which is missing",
            "add ca = \"/etc/logwell/tls/clients-ca.pem\" to this input",
        ),
        (Some(c), ClientAuth::None) => check.err(
            c.span(),
            "`ca` has no effect with client_auth = \"none\"",
            "set client_auth = \"required\" (or \"optional\"), or remove `ca`",
        ),
        _ => {}
    }
    let settings = TlsSettings {
        stream,
        cert: cert?,
        key: key?,
        client_auth,
        ca,
        permitted_peers,
    };
    if let Err(e) = server_config(&settings) {
        let span = match e.which() {
            TlsKey::Cert => raw.cert.as_ref().map(Spanned::span),
            TlsKey::Key => raw.key.as_ref().map(Spanned::span),
            TlsKey::Ca => raw.ca.as_ref().map(Spanned::span),
        };
        check.err(
            span.unwrap_or_else(|| raw.kind.span()),
            e.to_string(),
            e.hint(),
        );
    }
    Some(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        let p = PermittedPeer::Name("*.example.com".into());
        assert!(p.matches(&["a.Example.com".into()], &[]));
        assert!(!p.matches(&["example.com".into()], &[]));
        assert!(!p.matches(&["a.b.example.com".into()], &[]));
        let exact = PermittedPeer::Name("host.example.org".into());
        assert!(exact.matches(&["x".into(), "host.example.org".into()], &[]));
    }

    #[test]
    fn fingerprints_take_colons_or_not() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abcd"), None);
    }
}
