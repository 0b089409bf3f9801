//! Batched datagram reading for UDP and Unix datagram sockets: one `recvmmsg` call fills up to
//! [`BATCH`] datagrams, with each one's sender address, truncation flag and credentials
//! (`SCM_CREDENTIALS`); what every datagram reader shares: pushing a batch into a pipeline
//! ([`push_datagrams`]) and counting what the kernel dropped (`SO_MEMINFO`, asked at most every
//! [`DROP_CHECK`] while datagrams come); and the Unix datagram socket's loop ([`serve`], a tokio
//! task). UDP sockets are read by a thread of their own, see [`super::udp`].
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
use crate::pipeline::Alarm;

/// Datagrams read per `recvmmsg` call.
pub const BATCH: usize = 32;

/// Room for one `SCM_CREDENTIALS` control message (and descriptors a sender attached).
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
}

/// A control message we act on.
enum Control {
    Creds(Creds),
    /// A descriptor a sender attached; closed on receipt.
    Fd(RawFd),
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
    /// File descriptors a sender attached (`SCM_RIGHTS`) are closed at once: a log socket
    /// takes none, and keeping them would let any local user exhaust ours.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let data = self.data.as_mut_ptr();
        let addrs = self.addrs.as_mut_ptr();
        let cmsgs = self.cmsgs.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        let hdrs = self.hdrs.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: every offset stays inside its Vec, which has BATCH (or BATCH × size)
            // elements; one base pointer per Vec, so no reference invalidates another.
            unsafe {
                *iovs.add(i) = libc::iovec {
                    iov_base: data.add(i * self.slot).cast(),
                    iov_len: self.slot,
                };
                let m = &mut *hdrs.add(i);
                m.msg_hdr.msg_name = addrs.add(i).cast();
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
                m.msg_hdr.msg_iov = iovs.add(i);
                m.msg_hdr.msg_iovlen = 1;
                m.msg_hdr.msg_control = cmsgs.add(i * CMSG_BYTES / 8).cast();
                m.msg_hdr.msg_controllen = CMSG_BYTES;
                m.msg_hdr.msg_flags = 0;
                m.msg_len = 0;
            }
        }
        // SAFETY: every header points into buffers owned by `self` with the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs,
                BATCH as u32,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for i in 0..n as usize {
            self.each_control(i, |c| {
                if let Control::Fd(fd) = c {
                    // SAFETY: the kernel just installed this descriptor in our table for us;
                    // nothing else refers to it.
                    unsafe { libc::close(fd) };
                }
            });
        }
        Ok(n as usize)
    }

    /// Calls `f` with each control message of datagram `i`, each checked against its length.
    fn each_control(&self, i: usize, mut f: impl FnMut(Control)) {
        let hdr = &self.hdrs[i].msg_hdr;
        if hdr.msg_controllen == 0 {
            return;
        }
        // SAFETY: the kernel filled msg_control/msg_controllen for this header; the CMSG
        // macros walk only within it, and each payload is read only if cmsg_len covers it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(hdr);
            while !c.is_null() {
                let len = (*c).cmsg_len as usize;
                let payload = len.saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                        if payload >= size_of::<libc::ucred>() =>
                    {
                        let u: libc::ucred = std::ptr::read_unaligned(data.cast());
                        f(Control::Creds(Creds {
                            pid: u.pid,
                            uid: u.uid,
                            gid: u.gid,
                        }));
                    }
                    (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                        for k in 0..payload / size_of::<RawFd>() {
                            f(Control::Fd(std::ptr::read_unaligned(
                                data.cast::<RawFd>().add(k),
                            )));
                        }
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(hdr, c);
            }
        }
    }

    /// Datagram `i` of the last `recv` (`i` below what it returned).
    pub fn get(&self, i: usize) -> Datagram<'_> {
        let hdr = &self.hdrs[i];
        let len = (hdr.msg_len as usize).min(self.slot);
        let data = &self.data[i * self.slot..i * self.slot + len];
        let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let peer = sockaddr_to_std(&self.addrs[i], hdr.msg_hdr.msg_namelen);
        let mut creds = None;
        self.each_control(i, |c| match c {
            Control::Creds(c) => creds = Some(c),
            Control::Fd(_) => {}
        });
        Datagram {
            data,
            truncated,
            peer,
            creds,
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

/// Reads a Unix datagram socket until the input is stopped, then reads what is still queued
/// and returns. `base` is the source every datagram shares. (UDP sockets have their own
/// reader, `udp::Reader`: a UDP sender never waits for the reader, a local one does.)
pub async fn serve(
    sock: tokio::net::UnixDatagram,
    base: Source,
    max_message_size: usize,
    ctx: InputContext,
) {
    let _trackers = ctx.trackers.clone();
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    pipeline.drop_when_full();
    let mut batch = DatagramBatch::new(max_message_size.min(MAX_DATAGRAM));
    let mut source = base.clone();
    let mut last_drops: u32 = 0;
    // When to ask the socket for its drop count: armed by reading, so drops are counted
    // within DROP_CHECK of the traffic that caused them, and the idle socket costs nothing.
    let mut drops_due: Option<tokio::time::Instant> = None;
    let mut drops_alarm = Alarm::default();
    // Once stopping: read what is queued, but not past this deadline (a flood never ends).
    let mut drain_until: Option<tokio::time::Instant> = None;
    // Datagrams read since the queue was last found empty: a flood when above SPIN_AFTER.
    let mut run = 0usize;
    loop {
        if let Some(until) = drain_until {
            if tokio::time::Instant::now() >= until {
                tracing::warn!(input = %ctx.name, "stopped before the queue was empty: a sender kept sending");
                break;
            }
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                r = sock.readable() => if let Err(e) = r {
                    tracing::error!(input = %ctx.name, error = %e, "socket failed; input stops");
                    break;
                },
                _ = super::stopped(&mut stop) => drain_until = Some(tokio::time::Instant::now() + DRAIN_LIMIT),
                chore = pipeline.chore() => {
                    pipeline.run_chore(chore).await;
                    continue;
                }
                _ = drops_alarm.wait(drops_due) => {
                    drops_due = None;
                    check_drops(&sock, &ctx, &mut last_drops);
                    continue;
                }
            }
        }
        // While draining, read directly: tokio's readiness may not have caught up yet with
        // datagrams that arrived just before the stop.
        // A short batch means `recvmmsg` found the queue empty: the closure then reports
        // WouldBlock, so tokio clears the readiness without a second read that would only find
        // it empty (one `recvmmsg` per wake-up instead of two for a trickle). Not at the end
        // of a flood: that empty read starts the poll below.
        let mut emptied = None;
        let received = match drain_until {
            Some(_) => batch.recv(sock.as_raw_fd()),
            None => sock.try_io(Interest::READABLE, || match batch.recv(sock.as_raw_fd()) {
                Ok(n) if n < BATCH && run + n < SPIN_AFTER => {
                    emptied = Some(n);
                    Err(io::ErrorKind::WouldBlock.into())
                }
                r => r,
            }),
        };
        let n = match (received, emptied) {
            (Err(_), Some(n)) => n,
            (Ok(n), _) => n,
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => {
                if drain_until.is_some() {
                    break;
                }
                let flood = std::mem::take(&mut run) >= SPIN_AFTER;
                let polled = match flood {
                    true => spin_recv(&mut batch, sock.as_raw_fd()),
                    false => None,
                };
                match polled {
                    Some(n) => n,
                    None => {
                        // The queue is empty: what was read goes to the writers now,
                        // unless the socket is flooded (see `Pipeline::drained`).
                        if pipeline.drained() {
                            pipeline.flush().await;
                        }
                        continue;
                    }
                }
            }
            (Err(e), None) if e.kind() == io::ErrorKind::Interrupted => continue,
            (Err(e), None) => {
                tracing::warn!(input = %ctx.name, error = %e, "receive failed; retrying in 100 ms");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        run = match emptied {
            Some(_) => 0,
            None => run + n,
        };
        pipeline.begin();
        pipeline.read(n);
        let mut from = 0;
        while from < n {
            from = push_datagrams(&batch, from..n, &ctx, &mut source, &mut pipeline);
            if pipeline.needs_flush() {
                pipeline.flush().await;
            }
        }
        if (emptied.is_some() && pipeline.drained()) || pipeline.overdue() {
            // `recvmmsg` found the queue empty: send the lines on before waiting. (After a
            // flood a short batch is not taken as empty; the poll above decides.)
            pipeline.flush().await;
        }
        drops_due.get_or_insert_with(|| tokio::time::Instant::now() + DROP_CHECK);
    }
    check_drops(&sock, &ctx, &mut last_drops);
    pipeline.flush().await;
}

/// Pushes datagrams `range` of the last `recv` into `pipeline`, skipping those the input's
/// limits refuse, until a chunk is full: returns the index to go on from (`range.end` when
/// all are in). `source` carries the last sender's address and host name.
pub(super) fn push_datagrams(
    batch: &DatagramBatch,
    range: std::ops::Range<usize>,
    ctx: &InputContext,
    source: &mut Source,
    pipeline: &mut crate::pipeline::Pipeline,
) -> usize {
    for i in range.clone() {
        let d = batch.get(i);
        if let (Some(l), Some(peer)) = (&ctx.limiter, d.peer) {
            if !l.datagram_permitted(peer.ip()) || !l.allow_message(peer.ip()) {
                continue;
            }
        }
        if let Some(peer) = d.peer.filter(|p| Some(*p) != source.peer) {
            source.peer = Some(peer);
            source.default_host = peer_host(&peer).into();
        }
        pipeline.push(d.data, d.truncated, source, d.creds);
        if pipeline.needs_flush() {
            return i + 1;
        }
    }
    range.end
}

/// After a flood, how long the loop polls the emptied queue before it parks in epoll.
///
/// While a Unix datagram queue is full its senders sleep; each datagram read wakes one, and it
/// refills the queue within microseconds. Parking at every empty read made every refill cost
/// two wake-ups (sender and reader), and the queue holds only 10 by the kernel's default: with
/// this poll a flood over `/dev/log` ran 25–40% faster at the same CPU per message
/// (`bench/e2e.rs unix`), see BENCHMARKS.md.
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Datagrams read since the queue was last empty that make a flood: a full batch or more. A
/// trickle (one datagram per wake-up) never polls, so it costs what it did (`unix_trickle`:
/// 7.2 CPU s/M either way, 55 when every empty read polled).
pub const SPIN_AFTER: usize = BATCH;

/// Reads without blocking until a datagram comes or [`SPIN`] has passed: `None` then. The
/// task holds its worker thread meanwhile, at most [`SPIN`] per flood's end.
fn spin_recv(batch: &mut DatagramBatch, fd: RawFd) -> Option<usize> {
    let until = std::time::Instant::now() + SPIN;
    loop {
        match batch.recv(fd) {
            Ok(n) => return Some(n),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < until =>
            {
                std::hint::spin_loop()
            }
            // Time is up, or a real error: the main loop's next read reports it.
            Err(_) => return None,
        }
    }
}

/// How often, at most, the drop count is asked for while datagrams come.
pub const DROP_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Counts what the kernel dropped since the last look. Asked every [`DROP_CHECK`] while
/// datagrams come and once at the stop, not per datagram: a per-datagram `SO_RXQ_OVFL`
/// control message cost a tenth of the receive path.
pub(super) fn check_drops<S: AsRawFd>(sock: &S, ctx: &InputContext, last: &mut u32) {
    if let Some(count) = socket_drops(sock.as_raw_fd()) {
        count_drops(ctx, last, count);
    }
}

/// How long a stopping datagram input keeps reading what is queued.
pub(super) const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest datagram: a slot never needs to be bigger.
pub(super) const MAX_DATAGRAM: usize = 65536;

fn count_drops(ctx: &InputContext, last: &mut u32, count: u32) {
    let new = count.wrapping_sub(*last);
    *last = count;
    if new > 0 {
        ctx.stats.dropped.fetch_add(u64::from(new), Relaxed);
        tracing::warn!(input = %ctx.name, dropped = new, "the kernel dropped datagrams: the receive buffer was full (raise receive_buffer_bytes)");
    }
}

/// The socket's cumulative drop count (`SO_MEMINFO`'s `SK_MEMINFO_DROPS`).
fn socket_drops(fd: RawFd) -> Option<u32> {
    socket_meminfo(fd).map(|m| m.drops)
}

/// What `SO_MEMINFO` tells of a socket's receive side.
#[derive(Debug, Clone, Copy)]
pub(super) struct MemInfo {
    /// Bytes the queued datagrams take now (`SK_MEMINFO_RMEM_ALLOC`: their true size, with
    /// the kernel's bookkeeping, several times a short datagram's payload).
    pub queued: u32,
    /// The receive buffer's limit in the same units (`SK_MEMINFO_RCVBUF`).
    pub limit: u32,
    /// Datagrams dropped so far (`SK_MEMINFO_DROPS`).
    pub drops: u32,
}

/// One `SO_MEMINFO` call.
pub(super) fn socket_meminfo(fd: RawFd) -> Option<MemInfo> {
    const SK_MEMINFO_VARS: usize = 9;
    const SK_MEMINFO_DROPS: usize = 8;
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (r == 0 && len as usize > SK_MEMINFO_DROPS * 4).then_some(MemInfo {
        queued: info[0],
        limit: info[1],
        drops: info[SK_MEMINFO_DROPS],
    })
}
