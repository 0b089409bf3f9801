//! UDP input (RFC 5426): where a UDP datagram enters. IPv4 and IPv6 sockets, each read by a
//! thread of its own ([`Reader`], `udp-NAME`) in `recvmmsg` batches ([`dgram`]) and fed to its
//! pipeline there. While datagrams come fast the thread sleeps a fraction of a millisecond
//! between drains instead of waking for each one ([`Pace`]); idle, it waits in `poll`, woken
//! by a datagram, a deadline of its pipeline, or a stop or reload ([`wake_on_change`]). The
//! receive buffer absorbs bursts and the reader's scheduling delays: [`DEFAULT_RECEIVE_BUFFER`]
//! unless `receive_buffer_bytes` says otherwise, its granted size in the input's stats; what
//! the kernel still drops is read from the socket (`SO_MEMINFO`, see [`dgram`]) and counted as
//! `dropped`, never silent.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use tokio::time::Instant;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::dgram::{self, DatagramBatch};
use super::{activation::Activated, InputContext, InputError};
use crate::config::UdpSettings;
use crate::pipeline::Pipeline;

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
            bind_one(name, addr, s.receive_buffer_bytes).map_err(|source| InputError::Bind {
                input: name.to_string(),
                addr: *addr,
                source,
            })
        })
        .collect()
}

/// The receive buffer a UDP socket asks for when `receive_buffer_bytes` is not set: 8 MiB,
/// as systemd's `syslog.socket` gives journald's forwarding socket. The kernel doubles it
/// for its bookkeeping (16 MiB of accounted memory), and charges a 200-byte datagram about
/// 1 KiB of it: some 16,000 datagrams, 80 ms of a 200,000/s flood, where the kernel's
/// 208 KiB `net.core.rmem_default` held 2 ms, less than one busy scheduler slice. With that
/// default logwell lost 0.27% at 200,000/s on 2 CPUs (issue 33; BENCHMARKS.md, "UDP on
/// the kernel defaults"). The memory is taken only while datagrams wait, and is bounded
/// by this per socket. Granted beyond `net.core.rmem_max` only with `CAP_NET_ADMIN`
/// (`SO_RCVBUFFORCE`: sockets are bound before the worker drops its privileges); without
/// it, capped there.
pub const DEFAULT_RECEIVE_BUFFER: usize = 8 << 20;

fn bind_one(
    name: &str,
    addr: &SocketAddr,
    rcvbuf: Option<usize>,
) -> std::io::Result<std::net::UdpSocket> {
    let fd = new_socket(addr, SockType::Datagram)?;
    let requested = rcvbuf.unwrap_or(DEFAULT_RECEIVE_BUFFER);
    let granted = set_receive_buffer(&fd, requested);
    // The kernel reports twice what it granted.
    let granted = granted.map_or(0, |g| g / 2);
    if granted < requested {
        tracing::info!(input = name, %addr, requested, granted, "receive buffer capped by net.core.rmem_max (no CAP_NET_ADMIN): raise the sysctl for the full size");
    } else {
        tracing::debug!(input = name, %addr, granted, "receive buffer");
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

/// Sets `SO_RCVBUF`, beyond `net.core.rmem_max` when permitted (`SO_RCVBUFFORCE`, which
/// needs `CAP_NET_ADMIN`), else up to it; returns what the kernel granted (its own figure,
/// twice the bytes asked for).
pub(crate) fn set_receive_buffer<F: AsFd>(fd: &F, bytes: usize) -> Option<usize> {
    if socket::setsockopt(fd, sockopt::RcvBufForce, &bytes).is_err() {
        if let Err(e) = socket::setsockopt(fd, sockopt::RcvBuf, &bytes) {
            tracing::warn!(error = %e, bytes, "cannot set the receive buffer size");
        }
    }
    socket::getsockopt(fd, sockopt::RcvBuf).ok()
}

/// Starts one reader thread per socket (`udp-NAME`), and one small task that wakes them for a
/// stop or a reload.
pub fn spawn(
    sockets: Vec<std::net::UdpSocket>,
    s: &UdpSettings,
    ctx: InputContext,
) -> std::io::Result<()> {
    let mut ctx = ctx;
    ctx.limiter = super::limits::Limiter::new(&s.limits, ctx.name.clone(), ctx.stats.clone());
    let handle = tokio::runtime::Handle::current();
    // The smallest of the sockets' buffers (a socket passed by systemd keeps its own size).
    let granted = sockets
        .iter()
        .filter_map(|s| socket::getsockopt(s, sockopt::RcvBuf).ok())
        .min()
        .unwrap_or(0);
    ctx.stats
        .receive_buffer_bytes
        .store(granted as u64, std::sync::atomic::Ordering::Relaxed);
    for sock in sockets {
        sock.set_nonblocking(true)?;
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let base = ctx.local_source(s.use_sender_timestamp);
        let reader = Reader {
            batch: DatagramBatch::new(s.max_message_size_bytes.min(dgram::MAX_DATAGRAM)),
            pace: Pace {
                pause: Duration::ZERO,
            },
            sock,
            wake: wake_rx,
            source: base,
            pipeline: ctx.pipeline(),
            ctx: ctx.clone(),
            handle: handle.clone(),
            last_drops: 0,
            drops_due: None,
        };
        std::thread::Builder::new()
            .name(format!("udp-{}", ctx.name))
            .spawn(move || reader.run())?;
        tokio::spawn(wake_on_change(ctx.clone(), wake_tx));
    }
    Ok(())
}

/// Wakes a reader thread (one byte on its wake socket) when the input must stop or a reload
/// published a new routing table, so that an idle reader lets go of the old outputs at once.
async fn wake_on_change(ctx: InputContext, wake: UnixStream) {
    let mut stop = ctx.stop.clone();
    let mut routing = ctx.routing.clone();
    routing.mark_unchanged();
    let poke = || {
        // Full means a wake-up is already pending: nothing is lost.
        let _ = (&wake).write(&[1]);
    };
    loop {
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            r = routing.changed() => match r {
                Ok(()) => poke(),
                Err(_) => break,
            },
        }
    }
    poke();
}

/// How a reader waits for datagrams while they come fast: it sleeps [`Pace::pause`] between
/// drains instead of waking for each one.
///
/// A UDP sender never waits for the reader, so at a high rate a reader that parks whenever the
/// queue is empty is woken for nearly every datagram: a wake-up and a `recvmmsg` per datagram,
/// most of the CPU of a paced flood. Sleeping a fraction of a millisecond lets tens of
/// datagrams queue, read with one call. The pause starts once a drain finds two or more
/// datagrams (they queued while the reader woke), ends once a drain after a pause finds at
/// most one (fewer than one per pause: waking for each costs less than sleeping), and is
/// halved whenever what queued during a pause took more than a quarter of the receive
/// buffer (`SO_MEMINFO`, in the kernel's own accounting, which charges a short datagram
/// several times its length), so a pause never risks filling it; it doubles back up to
/// [`MAX_PAUSE`] while less than a sixteenth queued.
#[derive(Debug)]
struct Pace {
    /// Zero: park in `poll` until a datagram comes.
    pause: Duration,
}

/// The longest pause between drains: well under a millisecond of added delay.
pub const MAX_PAUSE: Duration = Duration::from_micros(200);

/// Below this a pause is not worth its own wake-up.
const MIN_PAUSE: Duration = Duration::from_micros(20);

impl Pace {
    /// Adjusts the pause after a drain that read `got` datagrams; `fill` is the receive
    /// buffer's use (queued, limit) seen at the end of the pause before it, if there was one.
    fn after_drain(&mut self, got: usize, fill: Option<(u32, u32)>) {
        if self.pause.is_zero() {
            if got >= 2 {
                self.pause = MAX_PAUSE;
            }
            return;
        }
        if got <= 1 {
            self.pause = Duration::ZERO;
            return;
        }
        let Some((queued, limit)) = fill else { return };
        if queued > limit / 4 {
            self.pause = (self.pause / 2).max(MIN_PAUSE);
        } else if queued < limit / 16 {
            self.pause = (self.pause * 2).min(MAX_PAUSE);
        }
    }
}

/// One UDP socket's reader, on a thread of its own: the socket is never registered with
/// tokio, so datagrams that arrive during a pause wake nobody.
struct Reader {
    sock: std::net::UdpSocket,
    /// Readable when [`wake_on_change`] poked it.
    wake: UnixStream,
    batch: DatagramBatch,
    pace: Pace,
    /// The last sender's address and host name.
    source: crate::message::Source,
    pipeline: Pipeline,
    ctx: InputContext,
    /// The runtime the pipeline's channel sends run on.
    handle: tokio::runtime::Handle,
    last_drops: u32,
    /// When to ask the socket for its drop count: armed by reading (see [`dgram`]).
    drops_due: Option<Instant>,
}

/// What woke a reader from `poll`.
struct Woken {
    socket: bool,
    poked: bool,
}

impl Reader {
    fn run(mut self) {
        // The pipeline's timers and channels belong to the daemon's runtime.
        let runtime = self.handle.clone();
        let _entered = runtime.enter();
        let trackers = self.ctx.trackers.clone();
        self.pipeline.drop_when_full();
        loop {
            if *self.ctx.stop.borrow() {
                self.drain_on_stop();
                break;
            }
            if self.pace.pause.is_zero() {
                let woken = self.wait();
                if woken.poked {
                    let mut sink = [0u8; 64];
                    while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
                    // A new routing table is taken now if nothing is pending (else at the
                    // next flush).
                    self.pipeline.begin();
                }
                if woken.socket {
                    let got = self.drain();
                    self.pace.after_drain(got, None);
                }
            } else {
                std::thread::sleep(self.pace.pause);
                let fill =
                    dgram::socket_meminfo(self.sock.as_raw_fd()).map(|m| (m.queued, m.limit));
                let got = self.drain();
                self.pace.after_drain(got, fill);
            }
            // The queue is empty. A reader that parks next (the datagrams are sparse) sends
            // its lines on now; one that pauses (they come fast) gathers the next drains into
            // the same chunk, up to `pipeline::HOLD` (a chunk a pause would wake the writer
            // thousands of times a second).
            if self
                .pipeline
                .pending_since()
                .is_some_and(|t| self.pace.pause.is_zero() || t.elapsed() >= crate::pipeline::HOLD)
            {
                self.flush();
            }
            self.chores();
        }
        dgram::check_drops(&self.sock, &self.ctx, &mut self.last_drops);
        self.flush();
        // The socket is closed before the input counts as ended.
        drop(self);
        drop(trackers);
    }

    /// Waits in `poll` for a datagram, a poke, or the next chore's deadline.
    fn wait(&self) -> Woken {
        let now = Instant::now();
        // Nothing is pending here (flushed before parking): only the drop count is due.
        let due = self.drops_due;
        // Rounded up to whole milliseconds, so a deadline is never polled too early in a loop.
        let timeout = due.map_or(-1, |d| {
            d.saturating_duration_since(now)
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as i32
        });
        let readable = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [
            readable(self.sock.as_raw_fd()),
            readable(self.wake.as_raw_fd()),
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if r <= 0 {
            // Timed out, or interrupted: the chores run, then the loop waits again.
            return Woken {
                socket: false,
                poked: false,
            };
        }
        Woken {
            socket: fds[0].revents != 0,
            poked: fds[1].revents != 0,
        }
    }

    /// Reads until the queue is empty (a short batch), pushing every datagram; returns the
    /// datagrams read.
    fn drain(&mut self) -> usize {
        let mut got = 0;
        loop {
            match self.batch.recv(self.sock.as_raw_fd()) {
                Ok(n) => {
                    got += n;
                    self.push(n);
                    if n < dgram::BATCH {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(input = %self.ctx.name, error = %e, "receive failed; retrying in 100 ms");
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
        if got > 0 {
            self.drops_due
                .get_or_insert_with(|| Instant::now() + dgram::DROP_CHECK);
        }
        got
    }

    /// Pushes the `n` datagrams of the last read, flushing whenever a chunk fills.
    fn push(&mut self, n: usize) {
        self.pipeline.begin();
        let mut from = 0;
        while from < n {
            from = dgram::push_datagrams(
                &self.batch,
                from..n,
                &self.ctx,
                &mut self.source,
                &mut self.pipeline,
            );
            if self.pipeline.needs_flush() {
                self.flush();
            }
        }
    }

    /// Counts the kernel's drops if that is due.
    fn chores(&mut self) {
        if self.drops_due.is_some_and(|d| d <= Instant::now()) {
            self.drops_due = None;
            dgram::check_drops(&self.sock, &self.ctx, &mut self.last_drops);
        }
    }

    /// Hands the pending chunks to their writers, waiting for room as an async input would.
    fn flush(&mut self) {
        self.handle.block_on(self.pipeline.flush());
    }

    /// Once stopping: reads what is queued, but not past [`dgram::DRAIN_LIMIT`] (a flood
    /// never ends).
    fn drain_on_stop(&mut self) {
        let until = Instant::now() + dgram::DRAIN_LIMIT;
        loop {
            if Instant::now() >= until {
                tracing::warn!(input = %self.ctx.name, "stopped before the queue was empty: a sender kept sending");
                break;
            }
            if self.drain() == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace() -> Pace {
        Pace {
            pause: Duration::ZERO,
        }
    }

    /// Receive buffer use after a pause: `queued` of a 425,984-byte limit (the kernel's
    /// doubled 208 KiB default).
    fn fill(queued: u32) -> Option<(u32, u32)> {
        Some((queued, 425_984))
    }

    #[test]
    fn one_datagram_per_wake_up_never_pauses() {
        let mut p = pace();
        for _ in 0..100 {
            p.after_drain(1, None);
        }
        assert_eq!(p.pause, Duration::ZERO);
    }

    #[test]
    fn datagrams_that_queued_start_the_pause_and_a_sparse_drain_ends_it() {
        let mut p = pace();
        p.after_drain(2, None);
        assert_eq!(p.pause, MAX_PAUSE);
        p.after_drain(40, fill(40_000));
        assert_eq!(p.pause, MAX_PAUSE);
        p.after_drain(1, fill(1_000));
        assert_eq!(p.pause, Duration::ZERO);
    }

    #[test]
    fn a_quarter_full_buffer_halves_the_pause_down_to_the_least_then_it_grows_back() {
        let mut p = pace();
        p.after_drain(2, None);
        p.after_drain(200, fill(120_000));
        assert_eq!(p.pause, MAX_PAUSE / 2);
        for _ in 0..10 {
            p.after_drain(200, fill(120_000));
        }
        assert_eq!(p.pause, MIN_PAUSE);
        // Between a sixteenth and a quarter: kept.
        p.after_drain(100, fill(50_000));
        assert_eq!(p.pause, MIN_PAUSE);
        for _ in 0..10 {
            p.after_drain(10, fill(10_000));
        }
        assert_eq!(p.pause, MAX_PAUSE);
    }
}
