//! TCP input (RFC 6587): one listener per address, one task per connection, at most
//! `max_connections` at once (the rest wait in the kernel's backlog until a slot frees, as in
//! mini-redis). A failed accept is logged and retried with back-off; it never stops the
//! listener. Framing and reading live in [`stream`](super::stream).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{self, Backlog, SockType, SockaddrStorage};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::stream::{self, StreamLimits};
use super::{dgram::peer_host, InputContext, InputError};
use crate::config::StreamSettings;
use crate::message::Source;

/// Binds one listener per address.
pub fn bind(name: &str, s: &StreamSettings) -> Result<Vec<std::net::TcpListener>, InputError> {
    s.listen
        .iter()
        .map(|addr| {
            bind_one(addr).map_err(|source| InputError::Bind {
                input: name.to_string(),
                addr: *addr,
                source,
            })
        })
        .collect()
}

fn bind_one(addr: &SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let fd = super::udp::new_socket(addr, SockType::Stream)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr))?;
    socket::listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    Ok(std::net::TcpListener::from(fd))
}

/// Spawns one accept loop per listener.
pub fn spawn(
    listeners: Vec<std::net::TcpListener>,
    s: &StreamSettings,
    ctx: InputContext,
) -> std::io::Result<()> {
    let limits = StreamLimits {
        max_message_size: s.max_message_size_bytes,
        idle_timeout: s.idle_timeout,
    };
    let slots = Arc::new(Semaphore::new(s.max_connections));
    for l in listeners {
        l.set_nonblocking(true)?;
        let listener = TcpListener::from_std(l)?;
        tokio::spawn(accept_loop(
            listener,
            slots.clone(),
            limits,
            s.use_sender_timestamp,
            ctx.clone(),
        ));
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    limits: StreamLimits,
    sender_ts: bool,
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
            Ok((sock, peer)) => {
                backoff = Duration::from_millis(10);
                start_connection(sock, peer, Some(permit), limits, sender_ts, &ctx);
            }
            Err(e) => {
                // EMFILE and friends: wait and retry, as mini-redis does.
                tracing::warn!(input = %ctx.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    // Stopping: connections the kernel completed but we had not accepted yet still carry data
    // their senders consider delivered. Accept and drain them, regardless of the limit.
    while let Ok(Ok((sock, peer))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        start_connection(sock, peer, None, limits, sender_ts, &ctx);
    }
}

fn start_connection(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    limits: StreamLimits,
    sender_ts: bool,
    ctx: &InputContext,
) {
    let _ = sock.set_nodelay(true);
    let source = Source {
        input: ctx.name.clone(),
        peer: Some(peer),
        creds: None,
        default_host: peer_host(&peer).into(),
        use_sender_timestamp: sender_ts,
    };
    let ctx = ctx.clone();
    ctx.stats.connections.fetch_add(1, Relaxed);
    ctx.stats.active_connections.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _trackers = ctx.trackers.clone();
        let ended = stream::serve(sock, source, limits, &ctx).await;
        tracing::debug!(input = %ctx.name, %peer, ?ended, "connection closed");
        ctx.stats.active_connections.fetch_sub(1, Relaxed);
        drop(permit);
    });
}
