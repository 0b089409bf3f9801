//! TLS input (RFC 5425): TCP listeners bound as for [`tcp`](super::tcp), a rustls handshake per
//! connection, then the same RFC 6587 framing and pipeline as [`stream`](super::stream).
//!
//! A TLS stream is not a raw socket (its bytes must go through rustls), so `serve_tls` is a
//! small copy of [`stream::serve`](super::stream::serve) that reads with
//! `AsyncReadExt::read` instead of `recv`.
//!
//! Each connection: a handshake bounded by [`HANDSHAKE_TIMEOUT`] (and by 5 s more once the
//! input stops); then, when `permitted_peers` is set, the client certificate's DNS names,
//! common name and SHA-256 digest are checked, and a refused client is logged with its
//! identity and closed. The identity (first DNS name, else common name) goes into
//! [`Source::tls_peer`].
//!
//! Certificates are renewed in place: before each accept, the modification times of `cert`,
//! `key` and `ca` are compared with those last loaded; when one changed, the configuration is
//! rebuilt for the connections that follow (established ones keep theirs). A file that fails
//! to load is logged and the previous configuration kept.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::stream::{Ended, StreamLimits, StreamSocket, READ_BUFFER_BYTES};
use super::InputContext;
use crate::config::{server_config, PermittedPeer, TlsSettings};
use crate::message::Source;
use crate::parse::framing::{Decoded, Framer};

/// How long a client has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping connection keeps reading what was queued when it was told to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The configuration in use and the file times it was built from.
struct Current {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
}

/// What the accept loops of one input share.
struct Shared {
    settings: TlsSettings,
    current: Mutex<Current>,
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [Some(&s.cert), Some(&s.key), s.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl Shared {
    /// The configuration for the next connection, rebuilt first if a file changed.
    fn config(&self, ctx: &InputContext) -> Arc<ServerConfig> {
        let now = stamps(&self.settings);
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != cur.stamps {
            cur.stamps = now;
            match server_config(&self.settings) {
                Ok(c) => {
                    cur.config = c;
                    tracing::info!(input = %ctx.name, "TLS certificate and key reloaded");
                }
                Err(e) => tracing::error!(
                    input = %ctx.name, error = %e, hint = %e.hint(),
                    "TLS files changed but cannot be loaded; keeping the previous ones"
                ),
            }
        }
        cur.config.clone()
    }
}

/// Spawns one accept loop per listener (bound by [`tcp::bind`](super::tcp::bind)).
pub fn spawn(
    listeners: Vec<std::net::TcpListener>,
    s: &TlsSettings,
    ctx: InputContext,
) -> io::Result<()> {
    let config =
        server_config(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let shared = Arc::new(Shared {
        settings: s.clone(),
        current: Mutex::new(Current {
            config,
            stamps: stamps(s),
        }),
    });
    let limits = StreamLimits {
        max_message_size: s.stream.max_message_size_bytes,
        idle_timeout: s.stream.idle_timeout,
    };
    let slots = Arc::new(Semaphore::new(s.stream.max_connections));
    for l in listeners {
        l.set_nonblocking(true)?;
        let listener = TcpListener::from_std(l)?;
        tokio::spawn(accept_loop(
            listener,
            slots.clone(),
            limits,
            shared.clone(),
            ctx.clone(),
        ));
    }
    Ok(())
}

/// Accepts connections until the input stops, as [`stream::accept_loop`](super::stream::accept_loop)
/// does; connections already queued at the stop are served too.
async fn accept_loop(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    limits: StreamLimits,
    shared: Arc<Shared>,
    ctx: InputContext,
) {
    let _trackers = ctx.trackers.clone();
    let mut stop = ctx.stop.clone();
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = super::stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = super::stopped(&mut stop) => break,
        };
        match accepted {
            Ok((sock, addr)) => {
                backoff = Duration::from_millis(10);
                let config = shared.config(&ctx);
                start_connection(sock, addr, config, Some(permit), limits, &shared, &ctx);
            }
            Err(e) => {
                tracing::warn!(input = %ctx.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    while let Ok(Ok((sock, addr))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        let config = shared.config(&ctx);
        start_connection(sock, addr, config, None, limits, &shared, &ctx);
    }
}

fn start_connection(
    sock: TcpStream,
    addr: SocketAddr,
    config: Arc<ServerConfig>,
    permit: Option<OwnedSemaphorePermit>,
    limits: StreamLimits,
    shared: &Arc<Shared>,
    ctx: &InputContext,
) {
    let _ = sock.set_nodelay(true);
    let ctx = ctx.clone();
    let shared = shared.clone();
    ctx.stats.connections.fetch_add(1, Relaxed);
    ctx.stats.active_connections.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _trackers = ctx.trackers.clone();
        let accept = TlsAcceptor::from(config).accept(sock);
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
        match handshake {
            Err(_) => {
                tracing::warn!(input = %ctx.name, peer = %addr, "TLS handshake timed out; connection closed")
            }
            Ok(Err(e)) => {
                tracing::warn!(input = %ctx.name, peer = %addr, error = %e, "TLS handshake failed; connection closed")
            }
            Ok(Ok(tls)) => {
                if let Some(tls_peer) = admit(&tls, addr, &shared.settings.permitted_peers, &ctx) {
                    let source = Source {
                        input: ctx.name.clone(),
                        peer: Some(addr),
                        creds: None,
                        default_host: super::dgram::peer_host(&addr).into(),
                        use_sender_timestamp: shared.settings.stream.use_sender_timestamp,
                        tls_peer,
                    };
                    let ended = serve_tls(tls, source, limits, &ctx).await;
                    tracing::debug!(input = %ctx.name, peer = %addr, ?ended, "connection closed");
                }
            }
        }
        ctx.stats.active_connections.fetch_sub(1, Relaxed);
        drop(permit);
    });
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

/// Serves one TLS connection until the peer closes it, it idles out, or the input stops: the
/// loop of [`stream::serve`](super::stream::serve), reading through rustls.
async fn serve_tls(
    mut tls: TlsStream<TcpStream>,
    source: Source,
    limits: StreamLimits,
    ctx: &InputContext,
) -> Ended {
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    let mut framer = Framer::new(limits.max_message_size);
    let mut buf = vec![0u8; (limits.max_message_size + 64).max(READ_BUFFER_BYTES)];
    let (mut start, mut end) = (0usize, 0usize);
    // Once stopping: read what the kernel and rustls already hold, within DRAIN_LIMIT.
    let mut drain: Option<tokio::time::Instant> =
        (*stop.borrow()).then(|| tokio::time::Instant::now() + DRAIN_LIMIT);
    let ended = loop {
        let read = if let Some(until) = drain {
            if tokio::time::Instant::now() >= until {
                tracing::warn!(input = %ctx.name, peer = ?source.peer, "stopped before the queue was read");
                break Ended::Stopped;
            }
            // Bytes in the kernel: wait for them (tokio's readiness may lag). None: take
            // only what rustls holds decrypted already.
            let wait = if tls.get_ref().0.queued_bytes() > 0 {
                until - tokio::time::Instant::now()
            } else {
                Duration::ZERO
            };
            match tokio::time::timeout(wait, tls.read(&mut buf[end..])).await {
                Ok(r) => r,
                Err(_) => break Ended::Stopped,
            }
        } else {
            let idle = async {
                match limits.idle_timeout {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = tls.read(&mut buf[end..]) => r,
                _ = super::stopped(&mut stop) => {
                    drain = Some(tokio::time::Instant::now() + DRAIN_LIMIT);
                    continue;
                }
                _ = idle => break Ended::Idle,
                chore = pipeline.chore() => {
                    pipeline.run_chore(chore).await;
                    continue;
                }
            }
        };
        let n = match read {
            Ok(0) => break Ended::Eof,
            Ok(n) => n,
            // A peer that closes without close_notify: what it sent was read.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ended::Eof,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "read failed");
                break Ended::Error;
            }
        };
        end += n;
        pipeline.begin();
        loop {
            let (used, decoded) = framer.decode(&buf[start..end]);
            start += used;
            match decoded {
                Decoded::Frame { payload, truncated } => {
                    pipeline.push(payload, truncated, &source, None)
                }
                Decoded::Skipped => {}
                Decoded::NeedMore => break,
                Decoded::Error(e) => {
                    pipeline.frame_error();
                    tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "bad frame skipped");
                }
            }
            if pipeline.needs_flush() {
                pipeline.flush().await;
            }
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        if pipeline.due() {
            pipeline.flush().await;
        }
    };
    // As in `stream::serve`: a last frame without its trailer still counts.
    if start < end {
        pipeline.begin();
        let cut = ended == Ended::Stopped;
        match framer.finish(&buf[start..end]) {
            Some(Decoded::Frame { payload, truncated }) => {
                pipeline.push(payload, truncated || cut, &source, None)
            }
            Some(Decoded::Error(e)) => {
                pipeline.frame_error();
                tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "incomplete last frame");
            }
            _ => {}
        }
    }
    pipeline.flush().await;
    ended
}
