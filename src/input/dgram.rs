//! Batched datagram reading for UDP and Unix datagram sockets: one `recvmmsg` call fills up to
//! [`BATCH`] datagrams, with each one's sender address, truncation flag, credentials
//! (`SCM_CREDENTIALS`) and the kernel's drop counter (`SO_RXQ_OVFL`), and the shared loop
//! that feeds them to a pipeline.
//!
//! The `libc` call is wrapped here, in one place, because `nix`'s `MultiHeaders` holds raw
//! pointers across calls and so cannot live in a spawned task.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::Interest;

use super::InputContext;
use crate::message::{Creds, Source};

/// Datagrams read per `recvmmsg` call.
pub const BATCH: usize = 32;

/// Room for one `SCM_CREDENTIALS` and one `SO_RXQ_OVFL` control message.
const CMSG_BYTES: usize = 128;

/// One datagram of a batch.
pub struct Datagram<'a> {
    /// The bytes, cut at the slot size.
    pub data: &'a [u8],
    /// The datagram was longer than the slot and was cut.
    pub truncated: bool,
    /// Sender address, for IP sockets.
    pub peer: Option<SocketAddr>,
    /// Sender credentials, when `SO_PASSCRED` is on.
    pub creds: Option<Creds>,
    /// The socket's cumulative drop count, when `SO_RXQ_OVFL` is on.
    pub drops: Option<u32>,
}

/// Buffers for one `recvmmsg` call. Pointers between them are set up at each call, so the
/// struct may move freely between calls.
pub struct DatagramBatch {
    slot: usize,
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<u64>, // u64 for alignment of cmsghdr
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point only into the batch's own buffers and are
// rewritten before every use; nothing else sees them.
unsafe impl Send for DatagramBatch {}

impl DatagramBatch {
    /// Buffers for [`BATCH`] datagrams of up to `slot` bytes.
    pub fn new(slot: usize) -> DatagramBatch {
        DatagramBatch {
            slot,
            data: vec![0; slot * BATCH],
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            addrs: vec![unsafe { zeroed() }; BATCH],
            cmsgs: vec![0; BATCH * CMSG_BYTES / 8],
            iovs: vec![unsafe { zeroed() }; BATCH],
            hdrs: vec![unsafe { zeroed() }; BATCH],
        }
    }

    /// Reads up to [`BATCH`] datagrams without blocking. `Err(WouldBlock)` when none waits.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.data[i * self.slot..].as_mut_ptr().cast(),
                iov_len: self.slot,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.cmsgs[i * CMSG_BYTES / 8..].as_mut_ptr().cast();
            h.msg_controllen = CMSG_BYTES;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self` with the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last `recv` (`i` below what it returned).
    pub fn get(&self, i: usize) -> Datagram<'_> {
        let hdr = &self.hdrs[i];
        let len = (hdr.msg_len as usize).min(self.slot);
        let data = &self.data[i * self.slot..i * self.slot + len];
        let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let peer = sockaddr_to_std(&self.addrs[i], hdr.msg_hdr.msg_namelen);
        let mut creds = None;
        let mut drops = None;
        // SAFETY: the kernel filled msg_control/msg_controllen for this header; the CMSG
        // macros walk only within it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&hdr.msg_hdr);
            while !c.is_null() {
                let level = (*c).cmsg_level;
                let kind = (*c).cmsg_type;
                if level == libc::SOL_SOCKET && kind == libc::SCM_CREDENTIALS {
                    let u: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    creds = Some(Creds {
                        pid: u.pid,
                        uid: u.uid,
                        gid: u.gid,
                    });
                } else if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
                    drops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
                }
                c = libc::CMSG_NXTHDR(&hdr.msg_hdr, c);
            }
        }
        Datagram {
            data,
            truncated,
            peer,
            creds,
            drops,
        }
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage, len: u32) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The host name written for a network message without one: the peer's address, with an
/// IPv4-mapped IPv6 address shown as IPv4.
pub fn peer_host(peer: &SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}

/// A socket the datagram loop can read: tokio's `UdpSocket` and `UnixDatagram`.
pub trait DatagramSocket: AsRawFd + Send + Sync {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Runs a non-blocking read, clearing readiness on `WouldBlock`.
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

impl DatagramSocket for tokio::net::UdpSocket {
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::UdpSocket::readable(self)
    }
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::UdpSocket::try_io(self, Interest::READABLE, f)
    }
}

impl DatagramSocket for tokio::net::UnixDatagram {
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::UnixDatagram::readable(self)
    }
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::UnixDatagram::try_io(self, Interest::READABLE, f)
    }
}

/// Reads datagrams until the input is stopped, then reads what is still queued and returns.
/// `base` is the source every datagram shares; for IP sockets each sender's address and host
/// are filled in per datagram.
pub async fn serve<S: DatagramSocket>(
    sock: S,
    base: Source,
    max_message_size: usize,
    ctx: InputContext,
) {
    let _trackers = ctx.trackers.clone();
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    let mut batch = DatagramBatch::new(max_message_size);
    let mut source = base.clone();
    let mut last_drops: Option<u32> = None;
    let mut stopping = false;
    loop {
        if !stopping {
            let deadline = pipeline.deadline();
            tokio::select! {
                r = sock.readable() => if let Err(e) = r {
                    tracing::error!(input = %ctx.name, error = %e, "socket failed; input stops");
                    break;
                },
                _ = super::stopped(&mut stop) => stopping = true,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    pipeline.flush().await;
                    continue;
                }
            }
        }
        let n = match sock.try_io(|| batch.recv(sock.as_raw_fd())) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stopping {
                    break;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(input = %ctx.name, error = %e, "receive failed");
                continue;
            }
        };
        pipeline.begin();
        let mut dropped = 0u64;
        for i in 0..n {
            let d = batch.get(i);
            if let Some(count) = d.drops {
                dropped += u64::from(count.wrapping_sub(last_drops.unwrap_or(0)));
                last_drops = Some(count);
            }
            if d.peer.is_some() && d.peer != source.peer {
                let peer = d.peer.expect("checked");
                source.peer = Some(peer);
                source.default_host = peer_host(&peer).into();
            }
            pipeline.push(d.data, d.truncated, &source, d.creds);
            if pipeline.needs_flush() {
                pipeline.flush().await;
            }
        }
        if dropped > 0 {
            ctx.stats.dropped.fetch_add(dropped, Relaxed);
            tracing::warn!(input = %ctx.name, dropped, "the kernel dropped datagrams: the receive buffer was full (raise receive_buffer_bytes)");
        }
        if pipeline.due() {
            pipeline.flush().await;
        }
    }
    pipeline.flush().await;
}
