//! UDP input (RFC 5426): IPv4 and IPv6 sockets read in batches with `recvmmsg`. A configurable
//! `SO_RCVBUF` absorbs bursts; what the kernel still drops is read from the socket
//! (`SO_MEMINFO`, see [`dgram`]) and counted as `dropped`, never silent.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::{activation::Activated, dgram, InputContext, InputError};
use crate::config::UdpSettings;

/// Binds one socket per address.
pub fn bind(
    name: &str,
    s: &UdpSettings,
    activated: &mut Activated,
) -> Result<Vec<std::net::UdpSocket>, InputError> {
    s.listen
        .iter()
        .map(|addr| {
            if let Some(fd) = activated.take_inet(name, *addr, false) {
                return Ok(std::net::UdpSocket::from(fd));
            }
            bind_one(addr, s.receive_buffer_bytes).map_err(|source| InputError::Bind {
                input: name.to_string(),
                addr: *addr,
                source,
            })
        })
        .collect()
}

fn bind_one(addr: &SocketAddr, rcvbuf: Option<usize>) -> std::io::Result<std::net::UdpSocket> {
    let fd = new_socket(addr, SockType::Datagram)?;
    if let Some(bytes) = rcvbuf {
        set_receive_buffer(&fd, bytes);
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(*addr),
    )?;
    Ok(std::net::UdpSocket::from(fd))
}

/// A non-blocking, close-on-exec IP socket with `SO_REUSEADDR`, IPv6-only for IPv6 addresses
/// so that `0.0.0.0:514` and `[::]:514` can both be bound.
pub(crate) fn new_socket(addr: &SocketAddr, kind: SockType) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        kind,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    Ok(fd)
}

/// Sets `SO_RCVBUF`, beyond `net.core.rmem_max` when running as root (`SO_RCVBUFFORCE`).
pub(crate) fn set_receive_buffer<F: AsFd>(fd: &F, bytes: usize) {
    if socket::setsockopt(fd, sockopt::RcvBufForce, &bytes).is_err() {
        if let Err(e) = socket::setsockopt(fd, sockopt::RcvBuf, &bytes) {
            tracing::warn!(error = %e, bytes, "cannot set the receive buffer size");
        }
    }
}

/// Spawns one task per socket.
pub fn spawn(
    sockets: Vec<std::net::UdpSocket>,
    s: &UdpSettings,
    ctx: InputContext,
) -> std::io::Result<()> {
    let mut ctx = ctx;
    ctx.limiter = super::limits::Limiter::new(&s.limits, ctx.name.clone(), ctx.stats.clone());
    for sock in sockets {
        sock.set_nonblocking(true)?;
        let sock = tokio::net::UdpSocket::from_std(sock)?;
        let base = ctx.local_source(s.use_sender_timestamp);
        tokio::spawn(dgram::serve(
            sock,
            base,
            s.max_message_size_bytes,
            ctx.clone(),
        ));
    }
    Ok(())
}
