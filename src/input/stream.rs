//! The accept loop and the connection loop shared by every stream input (TCP, Unix stream
//! and TLS): accept, apply the input's limits, run the input's [`Upgrade`] step (nothing for
//! TCP and Unix; the handshake and peer check for TLS), then read into one fixed buffer, split
//! frames with the RFC 6587 [`Framer`], push them through the pipeline, flush once per read.
//!
//! One task runs per connection; a bad or slow peer affects only its own task. The buffer is
//! allocated once per connection and sized so the framer never stalls (at least
//! `max_message_size + 64`): [`READ_BUFFER_BYTES`] while the input has few connections (fewer
//! read calls), less when it has many, so that one input's buffers stay near
//! [`READ_BUDGET_BYTES`] in all ([`read_buffer_size`]). On stop the loop keeps reading
//! until the socket has nothing more (or the peer closed), so bytes the kernel already
//! accepted are written, then it returns.
//!
//! The loop reads through [`Connection`]: a raw socket ([`StreamSocket`]) waits for readiness
//! and reads with `recv`, exactly as before TLS shared the loop; a TLS stream reads through
//! rustls. This module owns no TLS code.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::InputContext;
use crate::config::StreamProtocol;
use crate::message::{Creds, Source};
use crate::parse::framing::{Decoded, Framer};

/// Read buffer of a connection while its input has few.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Smallest read buffer of a connection (when its input has many).
pub const MIN_READ_BUFFER_BYTES: usize = 32 * 1024;

/// What the read buffers of one input's connections aim to hold in all: 16 connections get
/// [`READ_BUFFER_BYTES`] each; with 100, each gets 40 KiB (or `max_message_size + 64`).
pub const READ_BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// The read buffer of a new connection when its input has `active` connections (itself
/// included): the input's share of [`READ_BUDGET_BYTES`], within
/// [`MIN_READ_BUFFER_BYTES`]..=[`READ_BUFFER_BYTES`], and never below what one whole message
/// needs.
pub fn read_buffer_size(active: u64, max_message_size: usize) -> usize {
    let share = READ_BUDGET_BYTES / active.max(1) as usize;
    share
        .clamp(MIN_READ_BUFFER_BYTES, READ_BUFFER_BYTES)
        .max(max_message_size + 64)
}

/// A connected stream socket: tokio's `TcpStream` and `UnixStream`.
pub trait StreamSocket:
    Send + Sync + std::os::fd::AsRawFd + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin
{
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Reads without blocking.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Writes without blocking.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Reads without blocking and without consulting tokio's readiness, which may lag behind
    /// bytes that arrived just before a stop.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Bytes the kernel holds for us now (`FIONREAD`).
    fn queued_bytes(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let r = unsafe { libc::ioctl(self.as_raw_fd(), libc::FIONREAD, &mut n) };
        if r == 0 {
            n.max(0) as usize
        } else {
            0
        }
    }
}

/// How long a stopping connection keeps reading what was queued when it was told to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

impl StreamSocket for tokio::net::TcpStream {
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::readable(self)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_read(self, buf)
    }
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::writable(self)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write(self, buf)
    }
}

impl StreamSocket for tokio::net::UnixStream {
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::UnixStream::readable(self)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_read(self, buf)
    }
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::UnixStream::writable(self)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_write(self, buf)
    }
}

/// What a stopping connection may still read: the bytes the kernel held at the stop, until
/// a deadline.
#[derive(Clone, Copy, Debug)]
pub struct Drain {
    /// Bytes the kernel held at the stop and not read since.
    pub left: usize,
    /// When to give up.
    pub until: tokio::time::Instant,
}

/// A connection the serve loop reads: a raw socket, or a TLS stream over one.
pub trait Connection: Send + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {
    /// Waits until bytes are there and reads them (`Ok(0)`: the peer closed). Cancel-safe:
    /// dropped before it returns, it has read nothing.
    fn read_some(
        &mut self,
        buf: &mut [u8],
    ) -> impl std::future::Future<Output = io::Result<usize>> + Send;
    /// Reads, while stopping, what had arrived by the stop and no more (`WouldBlock`: done).
    fn read_queued(
        &mut self,
        buf: &mut [u8],
        drain: &mut Drain,
    ) -> impl std::future::Future<Output = io::Result<usize>> + Send;
    /// Bytes the kernel holds for this connection now.
    fn kernel_queued(&self) -> usize;
    /// Writes all of `bytes` (a RELP input's responses).
    fn write_all(
        &mut self,
        bytes: &[u8],
    ) -> impl std::future::Future<Output = io::Result<()>> + Send;
}

impl<S: StreamSocket> Connection for S {
    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    async fn read_queued(&mut self, buf: &mut [u8], drain: &mut Drain) -> io::Result<usize> {
        if drain.left == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let room = buf.len().min(drain.left);
        let n = self.read_now(&mut buf[..room])?;
        drain.left -= n;
        Ok(n)
    }

    fn kernel_queued(&self) -> usize {
        self.queued_bytes()
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.writable().await?;
            match self.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What is known of a connection's peer once its [`Upgrade`] succeeded.
#[derive(Debug, Default)]
pub struct Identity {
    /// The verified name of a TLS client ([`Source::tls_peer`]).
    pub tls_peer: Option<Arc<str>>,
}

/// The step between accepting a socket and serving it: nothing for TCP and Unix ([`Plain`]),
/// the handshake and the peer check for TLS. It runs on the connection's own task.
pub trait Upgrade<S>: Send + Sync + 'static {
    /// What the serve loop reads.
    type Conn: Connection + 'static;
    /// Makes the connection, or refuses the peer (logged and counted by the implementation).
    fn upgrade(
        &self,
        sock: S,
        peer: &Peer,
        ctx: &InputContext,
    ) -> impl std::future::Future<Output = Option<(Self::Conn, Identity)>> + Send;
}

/// No upgrade: the socket is served as it was accepted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl<S: StreamSocket + 'static> Upgrade<S> for Plain {
    type Conn = S;
    async fn upgrade(&self, sock: S, _: &Peer, _: &InputContext) -> Option<(S, Identity)> {
        Some((sock, Identity::default()))
    }
}

/// How a stream input serves its connections, shared by its accept loops.
#[derive(Debug)]
pub struct Serving<U> {
    /// At most this many connections at once (`max_connections`).
    pub slots: Arc<Semaphore>,
    /// Per-connection limits.
    pub limits: StreamLimits,
    /// Whether to write the sender's timestamp.
    pub use_sender_timestamp: bool,
    /// The step before serving.
    pub upgrade: U,
    /// The open connections, so that a full input closes its oldest idle one.
    pub open: Registry,
    /// What the connections speak: syslog ([`serve`]), RELP ([`super::relp`]) or HTTP
    /// ([`super::http`]).
    pub protocol: crate::config::StreamProtocol,
}

/// A connection quiet this long counts as idle: when every slot is taken, the one idle
/// longest is closed so that a new sender gets in.
pub const EVICT_IDLE_AFTER: Duration = Duration::from_secs(1);

/// How often a full input looks again for an idle connection to close.
const EVICT_RETRY: Duration = Duration::from_millis(250);

/// One open connection as the [`Registry`] sees it.
#[derive(Debug)]
pub struct Tracked {
    /// When it last read bytes, in milliseconds since the registry's epoch.
    last_read_ms: AtomicU64,
    /// Set once it was chosen to be closed.
    evicting: AtomicBool,
    /// Tells its task to read what is queued and close.
    pub(super) evict: Notify,
    epoch: tokio::time::Instant,
}

impl Tracked {
    /// Notes that bytes were read now.
    pub(super) fn touch(&self) {
        self.last_read_ms.store(ms_since(self.epoch), Relaxed);
    }
}

fn ms_since(epoch: tokio::time::Instant) -> u64 {
    tokio::time::Instant::now()
        .duration_since(epoch)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// The open connections of one stream input, for closing the oldest idle one when every slot
/// is taken. A connection touches its entry once per read (one atomic store); the map is
/// locked only when a connection opens or closes and when the input is full.
#[derive(Debug)]
pub struct Registry {
    map: Mutex<HashMap<u64, Arc<Tracked>>>,
    next: AtomicU64,
    epoch: tokio::time::Instant,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            map: Mutex::default(),
            next: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
        }
    }
}

/// A connection's place in the [`Registry`]; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct Registered<'a> {
    registry: &'a Registry,
    id: u64,
    pub(crate) tracked: Arc<Tracked>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Registry {
    pub(crate) fn register(&self) -> Registered<'_> {
        let id = self.next.fetch_add(1, Relaxed);
        let tracked = Arc::new(Tracked {
            last_read_ms: AtomicU64::new(ms_since(self.epoch)),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tracked.clone());
        Registered {
            registry: self,
            id,
            tracked,
        }
    }

    /// Makes room for a new connection: tells the connection that has read nothing for the
    /// longest time, at least `idle_after`, to close. Returns whether one was chosen now;
    /// while a chosen one is still closing, none other is.
    pub fn evict_oldest_idle(&self, idle_after: Duration) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.values().any(|t| t.evicting.load(Relaxed)) {
            return false;
        }
        let now = ms_since(self.epoch);
        let idle_ms = idle_after.as_millis().try_into().unwrap_or(u64::MAX);
        // Idle longest first; among equals, the one opened first.
        let oldest = map
            .iter()
            .map(|(id, t)| (t.last_read_ms.load(Relaxed), *id, t))
            .filter(|(last, _, _)| now.saturating_sub(*last) >= idle_ms)
            .min_by_key(|(last, id, _)| (*last, *id));
        match oldest {
            Some((_, _, t)) => {
                t.evicting.store(true, Relaxed);
                t.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A listening stream socket: tokio's `TcpListener` and `UnixListener`.
pub trait StreamListener: Send + Sync + 'static {
    /// The connection type.
    type Conn: StreamSocket + 'static;
    /// Accepts one connection, with the peer's address or credentials.
    fn accept_peer(
        &self,
    ) -> impl std::future::Future<Output = io::Result<(Self::Conn, Peer)>> + Send;
}

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    /// A network peer.
    Inet(SocketAddr),
    /// A local peer, with its credentials when the kernel gave them.
    Local(Option<Creds>),
}

impl StreamListener for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;
    async fn accept_peer(&self) -> io::Result<(Self::Conn, Peer)> {
        let (sock, addr) = self.accept().await?;
        let _ = sock.set_nodelay(true);
        Ok((sock, Peer::Inet(addr)))
    }
}

impl StreamListener for tokio::net::UnixListener {
    type Conn = tokio::net::UnixStream;
    async fn accept_peer(&self) -> io::Result<(Self::Conn, Peer)> {
        let (sock, _) = self.accept().await?;
        let creds = sock.peer_cred().ok().map(|c| Creds {
            pid: c.pid().unwrap_or(0),
            uid: c.uid(),
            gid: c.gid(),
        });
        Ok((sock, Peer::Local(creds)))
    }
}

/// Accepts connections until the input stops, one task each, at most as many at once as
/// `slots` has permits. When every slot is taken, the accepted connection waits for one while
/// the connection idle longest (at least [`EVICT_IDLE_AFTER`]) is closed, counted as
/// `evicted` (the rest wait in the kernel's backlog): idle sockets cannot keep a sender out.
/// A failed accept (EMFILE, …) is logged and retried with back-off; it never stops the
/// listener. On stop, connections the kernel completed but were not yet accepted are
/// accepted and drained too, whatever the limit: their senders consider that data delivered.
pub async fn accept_loop<L, U>(listener: L, serving: Arc<Serving<U>>, ctx: InputContext)
where
    L: StreamListener,
    U: Upgrade<L::Conn>,
{
    let _trackers = ctx.trackers.clone();
    let mut stop = ctx.stop.clone();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            r = listener.accept_peer() => r,
            _ = super::stopped(&mut stop) => break,
        };
        match accepted {
            Ok((sock, peer)) => {
                backoff = Duration::from_millis(10);
                let permit = match serving.slots.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => wait_for_slot(&serving, &ctx, &mut stop).await,
                };
                let stopping = permit.is_none();
                start_connection(sock, peer, permit, &serving, &ctx);
                if stopping {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(input = %ctx.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    while let Ok(Ok((sock, peer))) =
        tokio::time::timeout(Duration::ZERO, listener.accept_peer()).await
    {
        start_connection(sock, peer, None, &serving, &ctx);
    }
}

/// Every slot is taken: closes the connection idle longest, and waits for a slot (`None`: the
/// input stopped first).
async fn wait_for_slot<U>(
    serving: &Arc<Serving<U>>,
    ctx: &InputContext,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if serving.open.evict_oldest_idle(EVICT_IDLE_AFTER) {
            ctx.stats.evicted.fetch_add(1, Relaxed);
            tracing::debug!(input = %ctx.name, "every connection slot is taken; closing the connection idle longest");
        }
        tokio::select! {
            p = serving.slots.clone().acquire_owned() => return p.ok(),
            _ = tokio::time::sleep(EVICT_RETRY) => {}
            _ = super::stopped(stop) => return None,
        }
    }
}

fn start_connection<S, U>(
    sock: S,
    peer: Peer,
    permit: Option<OwnedSemaphorePermit>,
    serving: &Arc<Serving<U>>,
    ctx: &InputContext,
) where
    S: Send + 'static,
    U: Upgrade<S>,
{
    // Limits: a peer not permitted, or over its connection count, is closed at once.
    let admitted = match (&ctx.limiter, peer) {
        (Some(l), Peer::Inet(addr)) => match l.admit(addr.ip()) {
            Ok(a) => Some(a),
            Err(_) => return,
        },
        _ => None,
    };
    let (peer_addr, creds, default_host) = match peer {
        Peer::Inet(addr) => (Some(addr), None, super::dgram::peer_host(&addr).into()),
        Peer::Local(creds) => (None, creds, ctx.hostname.clone()),
    };
    let mut source = Source {
        input: ctx.name.clone(),
        peer: peer_addr,
        creds,
        default_host,
        use_sender_timestamp: serving.use_sender_timestamp,
        tls_peer: None,
    };
    let ctx = ctx.clone();
    let serving = serving.clone();
    ctx.stats.connections.fetch_add(1, Relaxed);
    ctx.stats.active_connections.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _trackers = ctx.trackers.clone();
        let _admitted = admitted;
        if let Some((conn, identity)) = serving.upgrade.upgrade(sock, &peer, &ctx).await {
            source.tls_peer = identity.tls_peer;
            let registered = serving.open.register();
            let tracked = &registered.tracked;
            let ended = match &serving.protocol {
                StreamProtocol::Relp(relp) => {
                    super::relp::serve(conn, source, serving.limits, *relp, tracked, &ctx).await
                }
                StreamProtocol::Http(http) => {
                    super::http::serve(conn, source, http, tracked, &ctx).await
                }
                StreamProtocol::Syslog => serve(conn, source, serving.limits, tracked, &ctx).await,
            };
            tracing::debug!(input = %ctx.name, peer = ?peer, ?ended, "connection closed");
        }
        ctx.stats.active_connections.fetch_sub(1, Relaxed);
        drop(permit);
    });
}

/// Limits of one stream input.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Frames longer than this are cut and marked.
    pub max_message_size: usize,
    /// Close after this long without data.
    pub idle_timeout: Option<Duration>,
}

impl StreamLimits {
    /// The limits of a stream input's settings.
    pub fn of(s: &crate::config::StreamSettings) -> StreamLimits {
        StreamLimits {
            max_message_size: s.max_message_size_bytes,
            idle_timeout: s.idle_timeout,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed it.
    Eof,
    /// The input was stopped and everything queued was read.
    Stopped,
    /// No data for `idle_timeout`.
    Idle,
    /// A frame stayed incomplete longer than `frame_timeout_secs`.
    FrameTimeout,
    /// Closed, idle, to make room for a new connection when every slot was taken.
    Evicted,
    /// A socket error.
    Error,
}

/// Serves one connection until the peer closes it, it idles out, it is evicted (`tracked`)
/// or the input stops.
pub async fn serve<C: Connection>(
    mut sock: C,
    source: Source,
    limits: StreamLimits,
    tracked: &Tracked,
    ctx: &InputContext,
) -> Ended {
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    let mut framer = Framer::new(limits.max_message_size);
    let active = ctx.stats.active_connections.load(Relaxed);
    let mut buf = vec![0u8; read_buffer_size(active, limits.max_message_size)];
    pipeline.chunk_bytes(buf.len());
    let (mut start, mut end) = (0usize, 0usize);
    // Limits: the peer's rate bucket, and since when a frame has been incomplete.
    let limiter = ctx.limiter.clone();
    let rate_ip = limiter.as_ref().and(source.peer).map(|p| p.ip());
    let frame_timeout = limiter.as_ref().and_then(|l| l.frame_timeout);
    let mut partial_since: Option<tokio::time::Instant> = None;
    // Once stopping: the bytes the kernel held at the stop are read (a sender that keeps
    // sending cannot hold the shutdown), within DRAIN_LIMIT.
    let drain_from = |sock: &C| Drain {
        left: sock.kernel_queued(),
        until: tokio::time::Instant::now() + DRAIN_LIMIT,
    };
    let mut drain: Option<Drain> = None;
    // Why the drain ends the connection: the input stops, or the connection was evicted.
    let mut draining_for = Ended::Stopped;
    if *stop.borrow() {
        drain = Some(drain_from(&sock));
    }
    let ended = loop {
        let read = if let Some(d) = &mut drain {
            if tokio::time::Instant::now() >= d.until {
                tracing::warn!(input = %ctx.name, peer = ?source.peer, "stopped before the queue was read");
                break draining_for;
            }
            sock.read_queued(&mut buf[end..], d).await
        } else {
            let idle = async {
                match limits.idle_timeout {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            // With lines pending, read on at once if bytes are there (a stop or an eviction
            // first: a flood keeps lines pending). If the read would block, the connection
            // has nothing more for now: its lines go to the writers before it waits (unless
            // it is flooded: `Pipeline::drained`). `read_some` is cancel-safe: polled once
            // and dropped, it read nothing.
            let now = match pipeline.is_pending() {
                true => tokio::select! {
                    biased;
                    _ = super::stopped(&mut stop) => {
                        drain = Some(drain_from(&sock));
                        continue;
                    }
                    _ = tracked.evict.notified() => {
                        draining_for = Ended::Evicted;
                        drain = Some(drain_from(&sock));
                        continue;
                    }
                    r = sock.read_some(&mut buf[end..]) => Some(r),
                    () = std::future::ready(()) => None,
                },
                false => None,
            };
            if let Some(r) = now {
                r
            } else if pipeline.drained() {
                pipeline.flush().await;
                continue;
            } else {
                tokio::select! {
                    r = sock.read_some(&mut buf[end..]) => r,
                    _ = super::stopped(&mut stop) => {
                        drain = Some(drain_from(&sock));
                        continue;
                    }
                    _ = idle => break Ended::Idle,
                    _ = tracked.evict.notified() => {
                        // Read what the peer already sent, then close.
                        draining_for = Ended::Evicted;
                        drain = Some(drain_from(&sock));
                        continue;
                    }
                    _ = super::limits::frame_deadline(frame_timeout, partial_since) => {
                        ctx.stats.frame_timeouts.fetch_add(1, Relaxed);
                        tracing::debug!(input = %ctx.name, peer = ?source.peer, "a frame stayed incomplete past frame_timeout_secs; closing");
                        break Ended::FrameTimeout;
                    }
                    chore = pipeline.chore() => {
                        pipeline.run_chore(chore).await;
                        continue;
                    }
                }
            }
        };
        let n = match read {
            Ok(0) => break Ended::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if drain.is_some() {
                    break draining_for;
                }
                continue;
            }
            // A TLS peer that closes without close_notify: what it sent was read.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ended::Eof,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "read failed");
                break Ended::Error;
            }
        };
        end += n;
        tracked.touch();
        pipeline.begin();
        let mut completed = false;
        let mut frames = 0usize;
        loop {
            let (used, decoded) = framer.decode(&buf[start..end]);
            start += used;
            completed |= matches!(decoded, Decoded::Frame { .. } | Decoded::Error(_));
            frames += usize::from(matches!(decoded, Decoded::Frame { .. }));
            match decoded {
                Decoded::Frame { .. } if !super::limits::message_allowed(&limiter, rate_ip) => {}
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
        pipeline.read(frames);
        if frame_timeout.is_some() {
            partial_since = super::limits::partial_since(partial_since, completed, start < end);
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        if pipeline.overdue() {
            pipeline.flush().await;
        }
    };
    // A last frame without its trailer still counts: the peer sent it. When we stopped
    // reading mid-stream, it is the start of a message whose rest we will never read: it is
    // written, marked as truncated, rather than lost.
    if start < end {
        pipeline.begin();
        let cut = matches!(ended, Ended::Stopped | Ended::FrameTimeout | Ended::Evicted);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 34: a line goes to its writer as soon as the connection has nothing more to
    /// read, not after a linger timer. No clock is read: the test only yields to the
    /// runtime (each `yield_now` lets it poll the sockets once), far fewer times than a
    /// timer of even a millisecond would take to fire.
    #[tokio::test]
    async fn issue_34_a_line_goes_on_once_the_connection_has_nothing_more_to_read() {
        use tokio::io::AsyncWriteExt;
        let (routing, mut rx) = crate::output::detached(
            "[input.t]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5514\"\n[output.f]\ntype = \"file\"\npath = \"/nonexistent/f.log\"\n[[rule]]\noutput = \"f\"\n",
        );
        let (_routing_tx, routing_rx) = tokio::sync::watch::channel(routing);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let ctx = InputContext::for_test(routing_rx, stop);
        let (mut peer, ours) = tokio::net::UnixStream::pair().unwrap();
        let source = ctx.local_source(true);
        tokio::spawn(async move {
            let registry = Registry::default();
            let registered = registry.register();
            let limits = StreamLimits {
                max_message_size: 8192,
                idle_timeout: None,
            };
            serve(ours, source, limits, &registered.tracked, &ctx).await
        });
        for (i, line) in [&b"<13>t: one\n"[..], b"<13>t: two\n<13>t: three\n"]
            .into_iter()
            .enumerate()
        {
            AsyncWriteExt::write_all(&mut peer, line).await.unwrap();
            let chunk = crate::output::recv_within_yields(&mut rx[0], 100).await;
            assert_eq!(chunk.map(|c| c.messages), Some(i as u64 + 1));
        }
    }

    #[test]
    fn a_full_input_evicts_the_connection_idle_longest_one_at_a_time() {
        let r = Registry::default();
        let (a, b, c) = (r.register(), r.register(), r.register());
        // Nobody idle for an hour yet: nothing to evict.
        assert!(!r.evict_oldest_idle(Duration::from_secs(3600)));
        // a and b read last at the start, c later.
        let now = ms_since(r.epoch) + 10_000;
        a.tracked.last_read_ms.store(0, Relaxed);
        b.tracked.last_read_ms.store(0, Relaxed);
        c.tracked.last_read_ms.store(now, Relaxed);
        assert!(r.evict_oldest_idle(Duration::ZERO));
        assert!(
            a.tracked.evicting.load(Relaxed),
            "equal times: the one opened first"
        );
        assert!(!b.tracked.evicting.load(Relaxed));
        // While a closes, no other connection is chosen.
        assert!(!r.evict_oldest_idle(Duration::ZERO));
        drop(a);
        assert!(r.evict_oldest_idle(Duration::ZERO));
        assert!(b.tracked.evicting.load(Relaxed));
        assert!(!c.tracked.evicting.load(Relaxed));
    }

    #[test]
    fn read_buffers_share_a_budget_but_always_hold_a_whole_message() {
        assert_eq!(read_buffer_size(1, 65_536), READ_BUFFER_BYTES);
        assert_eq!(read_buffer_size(16, 8_192), READ_BUFFER_BYTES);
        assert_eq!(read_buffer_size(100, 8_192), READ_BUDGET_BYTES / 100);
        assert_eq!(read_buffer_size(1_000, 8_192), MIN_READ_BUFFER_BYTES);
        // The framer must fit one whole message, whatever the share.
        assert_eq!(read_buffer_size(1_000, 65_536), 65_536 + 64);
        assert_eq!(read_buffer_size(1, 1 << 20), (1 << 20) + 64);
    }
}
