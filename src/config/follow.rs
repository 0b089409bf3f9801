//! The live-follow service's settings: the `[follow]` section and its `[[follow.files]]`.
//!
//! Validation enforces the security rule: the follow service never gives a user more than
//! the file system would. Locally it is served on a Unix socket, whose clients the service
//! authorises by their credentials (root and group `adm`). A TCP listener, loopback
//! included (every local user can connect there), needs a bearer token or TLS with client
//! certificates, otherwise the configuration is refused; on loopback only,
//! `allow_unauthenticated = true` lifts that, with a warning. It also reads the TLS files
//! (so `--check-config` catches a bad certificate) and the token file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use toml::Spanned;

use super::check::Check;
use super::error::ConfigError;
use super::host::read_token_file;
use super::raw::RawFollow;
use super::settings::OutputSettings;
use super::tls::{load_certs, TlsKey};
use crate::render::Format;

/// The HTTP port a follow address is usually given (`logwell follow -H HOST`).
pub const DEFAULT_FOLLOW_LISTEN: &str = "127.0.0.1:8514";

/// The local Unix socket of the follow service, when `[follow]` names no listener at all.
pub const DEFAULT_FOLLOW_SOCKET: &str = "/run/logwell/follow.sock";

/// How to write a follow address, for error hints.
const EXAMPLE: &str = "\"127.0.0.1:8514\" or \"[::1]:8514\"";

/// `[follow]`, validated.
#[derive(Clone, Debug)]
pub struct FollowSettings {
    /// HTTP addresses (SSE, `/v1/*`, `/metrics`, the web page).
    pub listen: Vec<SocketAddr>,
    /// Raw TCP addresses.
    pub tcp_listen: Vec<SocketAddr>,
    /// The local Unix socket (HTTP), whose clients are authorised by their credentials.
    pub socket: Option<PathBuf>,
    /// Loopback TCP listeners serve without a token or client certificate.
    pub allow_unauthenticated: bool,
    /// Host names the HTTP listeners answer to (`Host:` header), besides their address.
    pub host_names: Vec<String>,
    /// The file a request without `file=` follows.
    pub default_file: Option<String>,
    /// Required bearer token, if any.
    pub token: Option<String>,
    /// TLS for both listeners, if any.
    pub tls: Option<FollowTls>,
    /// Origins CORS allows; `*` for any. Empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Time between heartbeats on a stream with nothing to send.
    pub heartbeat: Duration,
    /// Subscribers at once.
    pub max_subscribers: usize,
    /// Subscribers at once from one IP address.
    pub max_subscribers_per_peer: usize,
    /// Files other programs write.
    pub files: Vec<ExternalFile>,
    /// What `--check-config` and the daemon warn about (file, line and hint), such as
    /// `allow_unauthenticated`.
    pub warnings: Vec<ConfigError>,
}

impl FollowSettings {
    /// Whether TCP clients must present a token or a client certificate.
    pub fn tcp_needs_auth(&self) -> bool {
        self.token.is_some() || self.tls.as_ref().is_some_and(|t| t.files.2.is_some())
    }
}

impl PartialEq for FollowSettings {
    fn eq(&self, other: &Self) -> bool {
        self.listen == other.listen
            && self.tcp_listen == other.tcp_listen
            && self.socket == other.socket
            && self.allow_unauthenticated == other.allow_unauthenticated
            && self.host_names == other.host_names
            && self.default_file == other.default_file
            && self.token == other.token
            && self.tls.as_ref().map(|t| &t.files) == other.tls.as_ref().map(|t| &t.files)
            && self.cors_origins == other.cors_origins
            && self.heartbeat == other.heartbeat
            && self.max_subscribers == other.max_subscribers
            && self.max_subscribers_per_peer == other.max_subscribers_per_peer
            && self.files == other.files
    }
}

/// TLS of the follow listeners.
#[derive(Clone, Debug)]
pub struct FollowTls {
    /// `cert`, `key` and `client_ca`, to tell whether a reload changed them.
    pub files: (PathBuf, PathBuf, Option<PathBuf>),
    /// The server configuration built from them.
    pub config: Arc<ServerConfig>,
}

/// `[[follow.files]]`: files other programs write.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalFile {
    /// Name; a pattern's matches are named `NAME/FILE`.
    pub name: String,
    /// A file, a directory (every file in it), or a glob pattern.
    pub path: String,
    /// How lines are written; `None` for `raw` (no field filters).
    pub format: Option<Format>,
}

/// Validates `[follow]` against the declared outputs and the other sockets (`taken`:
/// each path and whose it is).
pub(crate) fn from_raw(
    check: &mut Check<'_>,
    raw: &Spanned<RawFollow>,
    outputs: &[OutputSettings],
    taken: &[(PathBuf, String)],
) -> FollowSettings {
    let span = raw.span();
    let raw = raw.get_ref();
    let listen = raw
        .listen
        .as_ref()
        .map(|l| check.addresses(l, EXAMPLE, None))
        .unwrap_or_default();
    let tcp_listen = raw
        .tcp_listen
        .as_ref()
        .map(|l| check.addresses(l, EXAMPLE, None))
        .unwrap_or_default();
    let socket = match &raw.socket {
        // sun_path holds 107 bytes and a NUL.
        Some(p)
            if p.get_ref().is_empty() || p.get_ref().contains('\0') || p.get_ref().len() > 107 =>
        {
            check.err(
                p.span(),
                "`socket` is not a usable Unix socket path (empty, or longer than 107 bytes)",
                format!("write a short path such as \"{DEFAULT_FOLLOW_SOCKET}\""),
            );
            None
        }
        Some(p) => {
            let path = PathBuf::from(p.get_ref());
            if let Some((_, whose)) = taken.iter().find(|(t, _)| *t == path) {
                check.err(
                    p.span(),
                    format!("the follow socket {} is also {whose}'s: one would replace the other", path.display()),
                    format!("give the follow service a path of its own, such as \"{DEFAULT_FOLLOW_SOCKET}\""),
                );
            }
            Some(path)
        }
        None if raw.listen.is_none() && raw.tcp_listen.is_none() => {
            Some(PathBuf::from(DEFAULT_FOLLOW_SOCKET))
        }
        None => None,
    };
    let host_names = raw
        .host_names
        .as_ref()
        .map(|h| {
            let names = h.get_ref().clone_vec();
            for n in &names {
                if n.is_empty() || n.contains(['/', ' ', '@']) {
                    check.err(
                        h.span(),
                        format!("`{n}` is not a host name"),
                        "write names as clients type them, such as \"logs.example.com\"",
                    );
                }
            }
            names.into_iter().map(|n| n.to_ascii_lowercase()).collect()
        })
        .unwrap_or_default();
    let default_file = match &raw.default_file {
        Some(name) => {
            if !outputs.iter().any(|o| o.name == *name.get_ref())
                && !raw
                    .files
                    .iter()
                    .any(|f| f.get_ref().name.get_ref() == name.get_ref())
            {
                check.err(
                    name.span(),
                    format!("`default_file = \"{}\"` names no output", name.get_ref()),
                    "name a file output ([output.NAME]) or a [[follow.files]] entry",
                );
            }
            Some(name.get_ref().clone())
        }
        None => outputs
            .iter()
            .find(|o| o.name == "syslog")
            .or(outputs.first())
            .map(|o| o.name.clone()),
    };
    let token = token(check, raw);
    let tls = follow_tls(check, raw);
    let client_certs = tls.as_ref().is_some_and(|t| t.files.2.is_some());
    let allow_unauthenticated = raw
        .allow_unauthenticated
        .as_ref()
        .is_some_and(|a| *a.get_ref());
    let mut warnings = Vec::new();
    let tcp: Vec<&SocketAddr> = listen.iter().chain(&tcp_listen).collect();
    if token.is_none() && !client_certs {
        if let Some(addr) = tcp.iter().find(|a| !a.ip().is_loopback()) {
            check.err(
                span.clone(),
                format!("the follow service would listen on {addr}, beyond loopback, with no authentication"),
                "set `token_file` (clients send `Authorization: Bearer TOKEN`), or `cert`, `key` and `client_ca` (clients need a certificate), or listen on 127.0.0.1",
            );
        } else if let Some(addr) = tcp.first() {
            match &raw.allow_unauthenticated {
                Some(a) if *a.get_ref() => warnings.push(check.diagnostic(
                    a.span(),
                    format!("`allow_unauthenticated = true`: every local user can read every followable file through {addr}"),
                    "set `token_file` instead, and use `socket` for local access (root and group adm)",
                )),
                _ => check.err(
                    span.clone(),
                    format!("the follow service would listen on {addr} with no authentication: every local user could read every log through it"),
                    "use `socket` for local access (root and group adm are served), or set `token_file` (clients send `Authorization: Bearer TOKEN`), or `cert`, `key` and `client_ca`; `allow_unauthenticated = true` serves loopback to anyone",
                ),
            }
        }
    }
    let cors_origins = raw
        .cors_origins
        .as_ref()
        .map(|c| c.get_ref().clone_vec())
        .unwrap_or_default();
    let heartbeat =
        Duration::from_secs(check.bounded(&raw.heartbeat_secs, "heartbeat_secs", 15, 3600) as u64);
    let max_subscribers = check.bounded(&raw.max_subscribers, "max_subscribers", 1024, 100_000);
    let max_subscribers_per_peer = check.bounded(
        &raw.max_subscribers_per_peer,
        "max_subscribers_per_peer",
        256,
        100_000,
    );
    let mut files = Vec::new();
    for f in &raw.files {
        let f = f.get_ref();
        let name = f.name.get_ref();
        if name.is_empty() || name.contains(['/', '&', '=', ' ']) {
            check.err(
                f.name.span(),
                format!("`name = \"{name}\"` cannot name a followable file"),
                "use letters, digits, `-`, `_` and `.`",
            );
            continue;
        }
        if outputs.iter().any(|o| o.name == *name)
            || files.iter().any(|e: &ExternalFile| e.name == *name)
        {
            check.err(
                f.name.span(),
                format!("the followable file `{name}` is declared twice (outputs are followable under their own name)"),
                "give this entry another name",
            );
            continue;
        }
        if !f.path.get_ref().starts_with('/') {
            check.err(
                f.path.span(),
                "`path` must be absolute",
                "write the full path, such as \"/var/log/nginx/*.log\"",
            );
            continue;
        }
        if let Err(e) = glob::Pattern::new(f.path.get_ref()) {
            check.err(
                f.path.span(),
                format!("`path` is not a valid pattern: {e}"),
                "escape `[` and `]` as `[[]` and `[]]`",
            );
            continue;
        }
        let format = match &f.format {
            None => Some(Format::Traditional),
            Some(v) if v.get_ref() == "raw" => None,
            Some(v) => match Format::from_name(v.get_ref()) {
                Some(fmt) => Some(fmt),
                None => {
                    check.err(
                        v.span(),
                        format!("unknown format `{}`", v.get_ref()),
                        "use traditional, rfc3339, rfc5424, json or raw",
                    );
                    None
                }
            },
        };
        files.push(ExternalFile {
            name: name.clone(),
            path: f.path.get_ref().clone(),
            format,
        });
    }
    FollowSettings {
        listen,
        tcp_listen,
        socket,
        allow_unauthenticated,
        host_names,
        warnings,
        default_file,
        token,
        tls,
        cors_origins,
        heartbeat,
        max_subscribers,
        max_subscribers_per_peer,
        files,
    }
}

fn token(check: &mut Check<'_>, raw: &RawFollow) -> Option<String> {
    match (&raw.token, &raw.token_file) {
        (Some(t), Some(_)) => {
            check.err(
                t.span(),
                "`token` and `token_file` are both set",
                "keep one of them",
            );
            None
        }
        (Some(t), None) => {
            if t.get_ref().trim().len() < 16 {
                check.err(
                    t.span(),
                    "the token is shorter than 16 characters",
                    "use a long random one: `openssl rand -hex 32`",
                );
                return None;
            }
            Some(t.get_ref().trim().to_string())
        }
        (None, Some(p)) => read_token_file(check, p),
        (None, None) => None,
    }
}

fn follow_tls(check: &mut Check<'_>, raw: &RawFollow) -> Option<FollowTls> {
    let (cert, key) = match (&raw.cert, &raw.key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => {
            if let Some(ca) = &raw.client_ca {
                check.err(
                    ca.span(),
                    "`client_ca` needs `cert` and `key`",
                    "add the server's certificate and key",
                );
            }
            return None;
        }
        (Some(c), None) | (None, Some(c)) => {
            check.err(
                c.span(),
                "TLS needs both `cert` and `key`",
                "add the missing one",
            );
            return None;
        }
    };
    let files = (
        PathBuf::from(cert.get_ref()),
        PathBuf::from(key.get_ref()),
        raw.client_ca.as_ref().map(|c| PathBuf::from(c.get_ref())),
    );
    match follow_server_config(&files) {
        Ok(config) => Some(FollowTls { files, config }),
        Err(message) => {
            check.err(
                cert.span(),
                message,
                "check the PEM files: `openssl x509 -in CERT -noout -text`",
            );
            None
        }
    }
}

/// The follow service's rustls configuration: TLS 1.2 and 1.3 on `ring`, HTTP/1.1, client
/// certificates required when a CA is given.
fn follow_server_config(
    (cert, key, ca): &(PathBuf, PathBuf, Option<PathBuf>),
) -> Result<Arc<ServerConfig>, String> {
    let certs = load_certs(TlsKey::Cert, cert).map_err(|e| e.to_string())?;
    let key_pem = super::tls::read(TlsKey::Key, key).map_err(|e| e.to_string())?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| format!("{} holds no private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(TlsKey::Ca, ca).map_err(|e| e.to_string())? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n\n[output.syslog]\ntype = \"file\"\npath = \"/tmp/x/syslog\"\n\n[[rule]]\noutput = \"syslog\"\n\n";

    fn load(follow: &str) -> Result<FollowSettings, String> {
        let text = format!("{BASE}[follow]\n{follow}");
        crate::config::load_texts(vec![(PathBuf::from("/etc/logwell/logwell.toml"), text)])
            .map(|s| s.follow.expect("a [follow] section"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_bare_follow_section_serves_the_local_socket_only() {
        let f = load("").unwrap();
        assert_eq!(f.socket, Some(PathBuf::from(DEFAULT_FOLLOW_SOCKET)));
        assert!(f.listen.is_empty() && f.tcp_listen.is_empty());
        assert!(f.warnings.is_empty());
        let f = load("socket = \"/run/x/f.sock\"\n").unwrap();
        assert_eq!(f.socket, Some(PathBuf::from("/run/x/f.sock")));
        // A TCP listener alone has no socket unless it is asked for.
        let f = load("listen = \"127.0.0.1:8514\"\ntoken = \"0123456789abcdef0123\"\n").unwrap();
        assert_eq!(f.socket, None);
        let e = load(&format!("socket = \"/{}\"\n", "x".repeat(120))).unwrap_err();
        assert!(e.contains("not a usable Unix socket path"), "{e}");
        let e = load("socket = \"/run/logwell/control.sock\"\n").unwrap_err();
        assert!(e.contains("is also the control socket's"), "{e}");
    }

    #[test]
    fn a_loopback_listener_without_authentication_is_refused_with_where_and_what_to_do() {
        for listener in ["listen", "tcp_listen"] {
            let e = load(&format!("{listener} = \"127.0.0.1:8514\"\n")).unwrap_err();
            assert!(
                e.starts_with("/etc/logwell/logwell.toml:12:1: the follow service would listen on 127.0.0.1:8514 with no authentication"),
                "{e}"
            );
            assert!(
                e.contains("hint: use `socket`") && e.contains("token_file"),
                "{e}"
            );
        }
        // A token or client certificates (tested with the real files in tests/it) are enough.
        let f = load("listen = \"[::1]:8514\"\ntoken = \"0123456789abcdef0123\"\n").unwrap();
        assert!(f.tcp_needs_auth() && f.warnings.is_empty());
    }

    #[test]
    fn allow_unauthenticated_opens_loopback_only_and_is_warned_about() {
        let f = load("listen = \"127.0.0.1:8514\"\nallow_unauthenticated = true\n").unwrap();
        assert!(f.allow_unauthenticated && !f.tcp_needs_auth());
        assert_eq!(f.warnings.len(), 1);
        let w = f.warnings[0].to_string();
        assert!(
            w.starts_with("/etc/logwell/logwell.toml:14:25: `allow_unauthenticated = true`"),
            "{w}"
        );
        let e = load("listen = \"0.0.0.0:8514\"\nallow_unauthenticated = true\n").unwrap_err();
        assert!(e.contains("beyond loopback, with no authentication"), "{e}");
        // Set but without effect (a token is required anyway): nothing to warn about.
        let f = load("listen = \"127.0.0.1:8514\"\nallow_unauthenticated = true\ntoken = \"0123456789abcdef0123\"\n").unwrap();
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn host_names_are_kept_in_lower_case_and_checked() {
        let f = load("host_names = [\"Logs.Example.com\"]\n").unwrap();
        assert_eq!(f.host_names, ["logs.example.com"]);
        let e = load("host_names = [\"http://logs\"]\n").unwrap_err();
        assert!(e.contains("is not a host name"), "{e}");
    }
}
