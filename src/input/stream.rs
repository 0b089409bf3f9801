//! The connection loop shared by every stream input (TCP, Unix stream, and later TLS): read
//! into one fixed buffer, split frames with the RFC 6587 [`Framer`], push them through the
//! pipeline, flush once per read.
//!
//! One task runs per connection; a bad or slow peer affects only its own task. The buffer is
//! allocated once per connection and sized so the framer never stalls
//! (`max_message_size + 64`, at least [`READ_BUFFER_BYTES`]). On stop the loop keeps reading
//! until the socket has nothing more (or the peer closed), so bytes the kernel already
//! accepted are written, then it returns.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::InputContext;
use crate::message::{Creds, Source};
use crate::parse::framing::{Decoded, Framer};

/// Smallest read buffer per connection.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// A connected stream socket: tokio's `TcpStream` and `UnixStream`.
pub trait StreamSocket: Send + Sync + std::os::fd::AsRawFd {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Reads without blocking.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;

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
}

impl StreamSocket for tokio::net::UnixStream {
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        tokio::net::UnixStream::readable(self)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_read(self, buf)
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
/// `slots` has permits (the rest wait in the kernel's backlog, as in mini-redis). A failed
/// accept (EMFILE, …) is logged and retried with back-off; it never stops the listener. On
/// stop, connections the kernel completed but were not yet accepted are accepted and drained
/// too, whatever the limit: their senders consider that data delivered.
pub async fn accept_loop<L: StreamListener>(
    listener: L,
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
            r = listener.accept_peer() => r,
            _ = super::stopped(&mut stop) => break,
        };
        match accepted {
            Ok((sock, peer)) => {
                backoff = Duration::from_millis(10);
                start_connection(sock, peer, Some(permit), limits, sender_ts, &ctx);
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
        start_connection(sock, peer, None, limits, sender_ts, &ctx);
    }
}

fn start_connection<S: StreamSocket + 'static>(
    sock: S,
    peer: Peer,
    permit: Option<OwnedSemaphorePermit>,
    limits: StreamLimits,
    sender_ts: bool,
    ctx: &InputContext,
) {
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
    let source = Source {
        input: ctx.name.clone(),
        peer: peer_addr,
        creds,
        default_host,
        use_sender_timestamp: sender_ts,
        tls_peer: None,
    };
    let ctx = ctx.clone();
    ctx.stats.connections.fetch_add(1, Relaxed);
    ctx.stats.active_connections.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _trackers = ctx.trackers.clone();
        let _admitted = admitted;
        let ended = serve(sock, source, limits, &ctx).await;
        tracing::debug!(input = %ctx.name, peer = ?peer, ?ended, "connection closed");
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

/// Why a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed it.
    Eof,
    /// The input was stopped and everything queued was read.
    Stopped,
    /// No data for `idle_timeout`.
    Idle,
    /// A frame stayed incomplete longer than `frame_timeout_secs`.
    FrameTimeout,
    /// A socket error.
    Error,
}

/// Serves one connection until the peer closes it, it idles out, or the input stops.
pub async fn serve<S: StreamSocket>(
    sock: S,
    source: Source,
    limits: StreamLimits,
    ctx: &InputContext,
) -> Ended {
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    let mut framer = Framer::new(limits.max_message_size);
    let mut buf = vec![0u8; (limits.max_message_size + 64).max(READ_BUFFER_BYTES)];
    let (mut start, mut end) = (0usize, 0usize);
    // Limits: the peer's rate bucket, and since when a frame has been incomplete.
    let limiter = ctx.limiter.clone();
    let rate_ip = limiter.as_ref().and(source.peer).map(|p| p.ip());
    let frame_timeout = limiter.as_ref().and_then(|l| l.frame_timeout);
    let mut partial_since: Option<tokio::time::Instant> = None;
    // Once stopping: the bytes the kernel held at the stop are read (a sender that keeps
    // sending cannot hold the shutdown), within DRAIN_LIMIT.
    let mut drain: Option<(usize, tokio::time::Instant)> = None;
    if *stop.borrow() {
        drain = Some((
            sock.queued_bytes(),
            tokio::time::Instant::now() + DRAIN_LIMIT,
        ));
    }
    let ended = loop {
        if let Some((left, until)) = drain {
            if left == 0 {
                break Ended::Stopped;
            }
            if tokio::time::Instant::now() >= until {
                tracing::warn!(input = %ctx.name, peer = ?source.peer, "stopped before the queue was read");
                break Ended::Stopped;
            }
        } else {
            let idle = async {
                match limits.idle_timeout {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = sock.readable() => if r.is_err() { break Ended::Error },
                _ = super::stopped(&mut stop) => {
                    drain = Some((sock.queued_bytes(), tokio::time::Instant::now() + DRAIN_LIMIT));
                    continue;
                }
                _ = idle => break Ended::Idle,
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
        let read = match drain {
            Some((left, _)) => {
                let room = (buf.len() - end).min(left);
                sock.read_now(&mut buf[end..end + room])
            }
            None => sock.try_read(&mut buf[end..]),
        };
        let n = match read {
            Ok(0) => break Ended::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if drain.is_some() {
                    break Ended::Stopped;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "read failed");
                break Ended::Error;
            }
        };
        if let Some((left, _)) = &mut drain {
            *left -= n;
        }
        end += n;
        pipeline.begin();
        let mut completed = false;
        loop {
            let (used, decoded) = framer.decode(&buf[start..end]);
            start += used;
            completed |= matches!(decoded, Decoded::Frame { .. } | Decoded::Error(_));
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
        if frame_timeout.is_some() {
            partial_since = super::limits::partial_since(partial_since, completed, start < end);
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
    // A last frame without its trailer still counts: the peer sent it. When we stopped
    // reading mid-stream, it is the start of a message whose rest we will never read: it is
    // written, marked as truncated, rather than lost.
    if start < end {
        pipeline.begin();
        let cut = matches!(ended, Ended::Stopped | Ended::FrameTimeout);
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
