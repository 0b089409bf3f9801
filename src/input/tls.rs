//! TLS input (RFC 5425): TCP listeners bound and served as for [`tcp`](super::tcp) (the same
//! accept loop, limits and connection loop of [`stream`](super::stream)), with a rustls
//! handshake per connection as the [`Upgrade`] step.
//!
//! Each connection: first the input's limits (`permit`, `max_connections_per_peer`), before
//! any TLS work; then a handshake bounded by [`HANDSHAKE_TIMEOUT`] (and by 5 s more once the
//! input stops); then, when `permitted_peers` is set, the client certificate's DNS names,
//! common name and SHA-256 digest are checked. A refused client (failed or timed-out
//! handshake, missing or untrusted certificate, not permitted) is logged with its identity,
//! counted in `tls_refused` and closed. The identity (first DNS name, else common name) goes
//! into [`Source::tls_peer`](crate::message::Source::tls_peer). The serve loop then reads
//! through rustls ([`Connection`] for [`TlsStream`]), with the same rate limit, frame timeout,
//! idle timeout and bounded buffer as TCP.
//!
//! Certificates are renewed in place, two ways, both for the connections that follow
//! (established ones keep the session they have):
//! - on SIGHUP, the daemon calls [`Reloader::reload`], which re-reads `cert`, `key` and `ca`
//!   whatever their times, from the new paths when only those changed
//!   ([`Reloader::can_swap`]): the listener and the connections stay;
//! - before each handshake, the modification times of the three files are compared with
//!   those last loaded; when one changed, the configuration is rebuilt.
//!
//! A file that fails to load is logged and the previous configuration kept.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::stream::{Connection, Drain, Identity, Peer, StreamSocket, Upgrade};
use super::InputContext;
use crate::config::{server_config, PermittedPeer, TlsFileError, TlsSettings};

/// How long a client has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping connection keeps reading what was queued when it was told to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The configuration in use, the settings and the file times it was built from.
struct Current {
    config: Arc<ServerConfig>,
    settings: TlsSettings,
    stamps: Vec<Option<SystemTime>>,
}

/// What the accept loops of one input share.
struct TlsAccept {
    name: Arc<str>,
    /// Fixed for the input's life: a change restarts it ([`Reloader::can_swap`]).
    permitted_peers: Vec<PermittedPeer>,
    current: Mutex<Current>,
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [Some(&s.cert), Some(&s.key), s.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl TlsAccept {
    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration for the next connection, rebuilt first if a file changed.
    fn config(&self) -> Arc<ServerConfig> {
        let mut cur = self.lock();
        let now = stamps(&cur.settings);
        if now != cur.stamps {
            cur.stamps = now;
            match server_config(&cur.settings) {
                Ok(c) => {
                    cur.config = c;
                    tracing::info!(input = %self.name, "TLS certificate and key reloaded");
                }
                Err(e) => tracing::error!(
                    input = %self.name, error = %e, hint = %e.hint(),
                    "TLS files changed but cannot be loaded; keeping the previous ones"
                ),
            }
        }
        cur.config.clone()
    }
}

/// A running TLS input's handle for SIGHUP: swaps the certificate, key and CA in place.
#[derive(Clone)]
pub struct Reloader(Arc<TlsAccept>);

impl Reloader {
    /// Whether a running input with settings `old` can take `new` without a restart: only
    /// the paths of `cert`, `key` and `ca` may differ. A change of `client_auth` or
    /// `permitted_peers` restarts the input, closing its connections, so that a narrower
    /// policy holds for every client at once; a change of the listener or the limits needs
    /// new sockets or new limits anyway.
    pub fn can_swap(old: &TlsSettings, new: &TlsSettings) -> bool {
        old.stream == new.stream
            && old.client_auth == new.client_auth
            && old.permitted_peers == new.permitted_peers
            && (old.ca.is_some() == new.ca.is_some())
    }

    /// Re-reads the files `new` names (whether or not their times changed) and uses them
    /// for the handshakes that follow. On an error the previous files stay in use.
    pub fn reload(&self, new: &TlsSettings) -> Result<(), TlsFileError> {
        debug_assert!(Reloader::can_swap(&self.0.lock().settings, new));
        let stamps = stamps(new);
        let config = server_config(new)?;
        let mut cur = self.0.lock();
        *cur = Current {
            config,
            settings: new.clone(),
            stamps,
        };
        Ok(())
    }
}

/// Spawns one accept loop per listener (bound by [`tcp::bind`](super::tcp::bind)); the
/// returned [`Reloader`] swaps its certificates.
pub fn spawn(
    listeners: Vec<std::net::TcpListener>,
    s: &TlsSettings,
    ctx: InputContext,
) -> io::Result<Reloader> {
    let config =
        server_config(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let shared = Arc::new(TlsAccept {
        name: ctx.name.clone(),
        permitted_peers: s.permitted_peers.clone(),
        current: Mutex::new(Current {
            config,
            settings: s.clone(),
            stamps: stamps(s),
        }),
    });
    super::tcp::spawn_upgraded(listeners, &s.stream, Handshake(shared.clone()), ctx)?;
    Ok(Reloader(shared))
}

/// The TLS [`Upgrade`]: handshake, then the `permitted_peers` check.
struct Handshake(Arc<TlsAccept>);

impl Upgrade<TcpStream> for Handshake {
    type Conn = TlsStream<TcpStream>;

    async fn upgrade(
        &self,
        sock: TcpStream,
        peer: &Peer,
        ctx: &InputContext,
    ) -> Option<(TlsStream<TcpStream>, Identity)> {
        let Peer::Inet(addr) = *peer else {
            unreachable!("TLS inputs listen on TCP")
        };
        let accept = TlsAcceptor::from(self.0.config()).accept(sock);
        // A stop gives a handshake in progress at most DRAIN_LIMIT more: its sender has
        // nothing delivered yet, and it must not hold the shutdown for HANDSHAKE_TIMEOUT.
        let mut stop = ctx.stop.clone();
        let stop_limit = async {
            super::stopped(&mut stop).await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        };
        let handshake = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept) => r,
            _ = stop_limit => Ok(Err(io::Error::new(io::ErrorKind::TimedOut, "the input stopped"))),
        };
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Err(_) => {
                ctx.stats.tls_refused.fetch_add(1, Relaxed);
                tracing::warn!(input = %ctx.name, peer = %addr, "TLS handshake timed out; connection closed");
                return None;
            }
            Ok(Err(e)) => {
                ctx.stats.tls_refused.fetch_add(1, Relaxed);
                tracing::warn!(input = %ctx.name, peer = %addr, error = %e, "TLS handshake failed; connection closed");
                return None;
            }
        };
        match admit(&tls, addr, &self.0.permitted_peers, ctx) {
            Some(tls_peer) => Some((tls, Identity { tls_peer })),
            None => {
                ctx.stats.tls_refused.fetch_add(1, Relaxed);
                None
            }
        }
    }
}

impl Connection for TlsStream<TcpStream> {
    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf).await
    }

    /// Bytes in the kernel: wait for them until the deadline (tokio's readiness may lag).
    /// None: take only what rustls holds decrypted already.
    async fn read_queued(&mut self, buf: &mut [u8], drain: &mut Drain) -> io::Result<usize> {
        let wait = if self.get_ref().0.queued_bytes() > 0 {
            drain
                .until
                .saturating_duration_since(tokio::time::Instant::now())
        } else {
            Duration::ZERO
        };
        match tokio::time::timeout(wait, self.read(buf)).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn kernel_queued(&self) -> usize {
        self.get_ref().0.queued_bytes()
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(self, bytes).await?;
        tokio::io::AsyncWriteExt::flush(self).await
    }
}

/// The names a certificate claims: DNS SANs, then the subject's common names.
fn cert_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_string());
        }
    }
    names
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks the client against `permitted_peers`. `None`: refused (logged); `Some(identity)`:
/// served, with the client's name when it sent a certificate.
fn admit(
    tls: &TlsStream<TcpStream>,
    addr: SocketAddr,
    permitted: &[PermittedPeer],
    ctx: &InputContext,
) -> Option<Option<Arc<str>>> {
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let names = leaf.map(|c| cert_names(c)).unwrap_or_default();
    let identity: Option<Arc<str>> = names.first().map(|n| Arc::from(n.as_str()));
    if permitted.is_empty() {
        return Some(identity);
    }
    let digest = leaf.map(|c| ring::digest::digest(&ring::digest::SHA256, c));
    let sha256 = digest.as_ref().map_or(&[][..], |d| d.as_ref());
    if leaf.is_some() && permitted.iter().any(|p| p.matches(&names, sha256)) {
        return Some(identity);
    }
    tracing::warn!(
        input = %ctx.name, peer = %addr, tls_peer = identity.as_deref().unwrap_or("-"),
        names = ?names, sha256 = %hex_colons(sha256),
        "TLS peer is not in permitted_peers; connection closed"
    );
    None
}
