//! TCP input (RFC 6587): one listener per address, one task per connection, at most
//! `max_connections` at once (the rest wait in the kernel's backlog until a slot frees, as in
//! mini-redis). A failed accept is logged and retried with back-off; it never stops the
//! listener. Accepting, limits, framing and reading live in [`super::stream`];
//! [`spawn_upgraded`] is what the [`tls`](super::tls) input reuses with its handshake.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{self, Backlog, SockType, SockaddrStorage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::stream::{self, Serving, StreamLimits, Upgrade};
use super::{activation::Activated, InputContext, InputError};
use crate::config::StreamSettings;

/// Binds one listener per address.
pub fn bind(
    name: &str,
    s: &StreamSettings,
    activated: &mut Activated,
) -> Result<Vec<std::net::TcpListener>, InputError> {
    s.listen
        .iter()
        .map(|addr| {
            if let Some(fd) = activated.take_inet(name, *addr, true) {
                return Ok(std::net::TcpListener::from(fd));
            }
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
    spawn_upgraded(listeners, s, stream::Plain, ctx)
}

/// Spawns one accept loop per listener, each connection going through `upgrade` before it is
/// served (the TLS input's handshake), with the input's limits applied first.
pub fn spawn_upgraded<U: Upgrade<TcpStream>>(
    listeners: Vec<std::net::TcpListener>,
    s: &StreamSettings,
    upgrade: U,
    ctx: InputContext,
) -> std::io::Result<()> {
    let serving = Arc::new(Serving {
        slots: Arc::new(Semaphore::new(super::nofile::connection_cap(
            &ctx.name,
            s.max_connections,
        ))),
        limits: StreamLimits::of(s),
        use_sender_timestamp: s.use_sender_timestamp,
        upgrade,
        open: stream::Registry::default(),
        protocol: s.protocol.clone(),
    });
    let mut ctx = ctx;
    ctx.limiter = super::limits::Limiter::new(&s.limits, ctx.name.clone(), ctx.stats.clone());
    for l in listeners {
        l.set_nonblocking(true)?;
        let listener = TcpListener::from_std(l)?;
        tokio::spawn(stream::accept_loop(listener, serving.clone(), ctx.clone()));
    }
    Ok(())
}
