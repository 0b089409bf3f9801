//! The forward action (`type = "forward"`): sends the lines input tasks formatted for it
//! (RFC 5424 or RFC 3164, the original host, tag, timestamp and structured data) to remote
//! syslog servers over UDP, TCP or TLS ([`crate::config::client_config`]), framed by octet
//! counting or newline, or over RELP ([`crate::parse::relp`], plain or TLS).
//!
//! Each action runs on its own thread with its own [`Queue`](crate::queue::Queue), so a dead
//! target holds back nothing but this action: two futures share the thread.
//! - **intake** takes chunks from the bounded channel the input tasks send to and pushes
//!   their lines into the queue (memory, then disk). It stops taking chunks only when the
//!   queue's disk bound is reached: only then does back-pressure reach the inputs (stream
//!   inputs wait; datagram inputs drop what the channel cannot hold, counted in `dropped` and
//!   logged by intake, see [`crate::output::queued::hold_back`]).
//! - **delivery** reads batches from the queue and writes them to the chosen target
//!   (failover: the first target that works; round-robin: each batch to the next), and
//!   acknowledges a batch, which removes it from the queue, only once it is *settled*: the
//!   target's TCP stack acknowledged every byte of it (`tcpi_bytes_acked`) and the connection
//!   stayed healthy for [`SETTLE`] after the batch was written. When a connection breaks, every
//!   batch not settled is handed out again ([`Queue::rewind`](crate::queue::Queue::rewind)).
//!   A clean close by the server (FIN) proves it read everything its TCP stack acknowledged,
//!   so those batches are acknowledged instead of resent. Connections are made on spawned
//!   tasks; a target that fails waits `reconnect_min_ms`, doubled at each failure up to
//!   `reconnect_max_ms`, with ±25% jitter.
//!
//! RELP settles differently: the link opens a session (`open`, answered `200 OK` offering
//! `syslog`), numbers each record as a `syslog` transaction, and a reader task counts the
//! server's answers in order ([`watch_answers`]). A batch settles once its last record is
//! answered, with no [`SETTLE`] wait; when the link breaks, answered batches are
//! acknowledged and only the rest is resent. An error answer settles its record too: it is
//! counted in `dropped` and logged, since sending it again would be refused again.
//!
//! Where duplicates come from (at least once): a batch written on a connection that is then
//! reset, or on another connection in round-robin, before it settled is sent again, although
//! the server may have read it; after a crash, the records acknowledged since the last
//! checkpoint write (none: it is written after every acknowledgement) or, with a damaged
//! checkpoint, the oldest segment; on a RELP link, the records the server took but whose
//! answers the broken connection lost. UDP has no delivery check: a datagram is
//! acknowledged once sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::queued::Handoff;
use super::{Chunk, WriterCommand};
use crate::config::{Balance, ForwardSettings, Framing, Protocol, Target};
use crate::parse::relp;
use crate::queue::Batch;
use crate::render::format::push_decimal;
use crate::stats::OutputStats;

/// How long a batch's bytes must have been acknowledged by the server's TCP stack, on a
/// connection that stays healthy, before the batch leaves the queue. Bounds the duplicates
/// after a reset: at most what was written in this time before it.
pub const SETTLE: Duration = Duration::from_millis(100);

/// Records per batch read from the queue.
const BATCH_RECORDS: usize = 2000;
/// Payload bytes per batch (past the first record).
const BATCH_BYTES: usize = 256 * 1024;
/// Records written and not yet settled, at most: more waits for acknowledgements.
const MAX_IN_FLIGHT_RECORDS: u64 = 200_000;
/// The same on a RELP link: messages sent and not yet answered, at most (librelp's own
/// window is 128 transactions; a larger one keeps a batch of [`BATCH_RECORDS`] moving while
/// the one before it is answered). After a broken connection these are sent again.
const RELP_MAX_IN_FLIGHT_RECORDS: u64 = 3 * BATCH_RECORDS as u64;
/// The largest UDP payload (IPv4: 65,535 − 8 − 20); longer messages cannot be sent as one
/// datagram and are dropped (counted).
const MAX_DATAGRAM_BYTES: usize = 65_507;

/// A running forward action.
pub(crate) struct Forwarder {
    pub(crate) name: String,
    pub(crate) settings: ForwardSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
}

impl Forwarder {
    /// Runs until every input task let go of the action's channel; then what was not
    /// delivered is kept in the queue's files for the next start.
    pub(crate) async fn run(self) {
        let Forwarder {
            name,
            settings,
            stats,
            rx,
            ctl,
        } = self;
        let (name, settings, stats) = (&name, &settings, &stats);
        let deliver = |shared: Arc<Handoff>| async move {
            Delivery::new(name, settings, &shared, stats).run().await
        };
        super::queued::run(
            "forward",
            name,
            &settings.queue,
            stats,
            rx,
            ctl,
            split_lines,
            deliver,
        )
        .await;
    }
}

/// A forward output's records are the lines of its chunks.
pub(crate) fn split_lines(data: &[u8], each: &mut dyn FnMut(&[u8])) {
    for line in data.split(|b| *b == b'\n') {
        if !line.is_empty() {
            each(line);
        }
    }
}

/// What a connection's reader task saw.
struct LinkState {
    /// Woken when the connection ends.
    wake: Arc<Notify>,
    /// The connection is gone (end of file, error, or a write failed).
    dead: AtomicBool,
    /// It ended with a clean end of file (the server closed it after reading everything).
    clean_eof: AtomicBool,
    /// RELP: `syslog` transactions the server answered, in order.
    answered: AtomicU64,
    /// RELP: of those, the ones answered with an error (the server will never take them).
    refused: AtomicU64,
}

impl LinkState {
    fn new(wake: Arc<Notify>) -> LinkState {
        LinkState {
            wake,
            dead: AtomicBool::new(false),
            clean_eof: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

/// A RELP link's numbering.
#[derive(Debug)]
struct RelpLink {
    /// The transaction number of the next `syslog` frame.
    next_txnr: u64,
    /// `syslog` frames sent on the link.
    sent: u64,
}

/// Counts the bytes written to the socket (TLS records included), to compare with what the
/// server's TCP stack acknowledged.
struct Counting<S> {
    inner: S,
    written: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.written.fetch_add(n as u64, Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

enum Conn {
    Stream {
        writer: Writer,
        fd: RawFd,
        written: Arc<AtomicU64>,
        state: Arc<LinkState>,
        reader: tokio::task::JoinHandle<()>,
        /// Bytes the server acknowledged when last looked at.
        acked: u64,
        /// RELP: the numbering; the server's answers settle batches, not its TCP stack.
        relp: Option<RelpLink>,
    },
    Udp(UdpSocket),
}

/// A connection to one target.
struct Link {
    id: u64,
    conn: Conn,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Conn::Stream { reader, .. } = &self.conn {
            reader.abort();
        }
    }
}

/// Bytes of the connection's stream the peer's TCP stack acknowledged.
fn bytes_acked(fd: RawFd) -> Option<u64> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(info.tcpi_bytes_acked)
}

/// A batch written and not yet acknowledged (its payloads already freed).
struct InFlight {
    batch: Batch,
    /// Payload bytes it held.
    bytes: u64,
    link: u64,
    /// The link's byte count once the batch was written; on a RELP link, its count of
    /// `syslog` frames sent.
    end: u64,
    at: Instant,
}

/// Whether `f`, written on `link`, is delivered: on a RELP link, the server answered its
/// last message; otherwise the server's TCP stack acknowledged its last byte and the
/// connection stayed healthy for [`SETTLE`] after it was written.
fn settled(link: &Link, f: &InFlight, now: Instant) -> bool {
    match &link.conn {
        Conn::Stream {
            acked, state, relp, ..
        } => {
            if state.dead.load(Relaxed) {
                return false;
            }
            match relp {
                Some(_) => state.answered.load(Relaxed) >= f.end,
                None => *acked >= f.end && now >= f.at + SETTLE,
            }
        }
        Conn::Udp(_) => true,
    }
}

/// Per target: failures in a row and when to try again.
#[derive(Clone, Copy, Default)]
struct Backoff {
    failures: u32,
    next_try: Option<Instant>,
    connecting: bool,
}

type Connected = (usize, Result<Link, String>);

struct Delivery<'a> {
    name: &'a str,
    settings: &'a ForwardSettings,
    shared: &'a Handoff,
    stats: &'a OutputStats,
    links: HashMap<usize, Link>,
    backoff: Vec<Backoff>,
    in_flight: VecDeque<InFlight>,
    in_flight_records: u64,
    next_link_id: u64,
    /// Round-robin: the target that got the last batch.
    turn: usize,
    connected_tx: mpsc::UnboundedSender<Connected>,
    connected_rx: mpsc::UnboundedReceiver<Connected>,
    tls: Option<Arc<rustls::ClientConfig>>,
    frame: Vec<u8>,
}

impl<'a> Delivery<'a> {
    fn new(
        name: &'a str,
        settings: &'a ForwardSettings,
        shared: &'a Handoff,
        stats: &'a OutputStats,
    ) -> Delivery<'a> {
        let (connected_tx, connected_rx) = mpsc::unbounded_channel();
        let tls = settings
            .tls
            .as_ref()
            .and_then(|t| match crate::config::client_config(t) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(output = %name, "forward: {e}");
                    None
                }
            });
        Delivery {
            name,
            settings,
            shared,
            stats,
            links: HashMap::new(),
            backoff: vec![Backoff::default(); settings.targets.len()],
            in_flight: VecDeque::new(),
            in_flight_records: 0,
            next_link_id: 0,
            turn: 0,
            connected_tx,
            connected_rx,
            tls,
            frame: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
        }
    }

    async fn run(mut self) {
        let mut stop_deadline = None;
        loop {
            let stopping = self.shared.stopping.load(Relaxed);
            if stopping {
                // Let what is in flight settle, briefly; the rest stays queued.
                let due = *stop_deadline.get_or_insert_with(|| Instant::now() + SETTLE * 5);
                if self.in_flight.is_empty() || Instant::now() >= due {
                    break;
                }
            }
            self.check_links();
            self.settle();
            self.connect_wanted();
            if !stopping && self.send_one().await {
                continue;
            }
            self.wait().await;
        }
        // Unsettled batches stay in the queue (close() rewinds).
        let n = self.shared.queue().rewind();
        if n > 0 {
            tracing::debug!(output = %self.name, n, "forward: unsettled messages kept queued at stop");
        }
    }

    /// Sleeps until something may have changed.
    async fn wait(&mut self) {
        let now = Instant::now();
        let mut until = now + Duration::from_secs(1);
        if !self.in_flight.is_empty() {
            until = until.min(now + Duration::from_millis(10));
        }
        // Back-offs still running (an expired one is either being connected or not wanted).
        for b in &self.backoff {
            if let Some(t) = b.next_try.filter(|t| *t > now) {
                until = until.min(t);
            }
        }
        tokio::select! {
            _ = self.shared.wake.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
            Some((target, result)) = self.connected_rx.recv() => self.connected(target, result),
        }
    }

    /// Whether a link should exist to `target` now.
    fn wanted(&self, target: usize) -> bool {
        match self.settings.balance {
            Balance::RoundRobin => true,
            // Connected: every better target too (to come back to it once it works again).
            // Not connected: the first target not waiting out a back-off.
            Balance::Failover => match self.links.keys().copied().min() {
                Some(current) => target <= current,
                None => {
                    let now = Instant::now();
                    self.backoff[..target]
                        .iter()
                        .all(|b| !b.connecting && b.next_try.is_some_and(|t| t > now))
                }
            },
        }
    }

    /// Starts connections that are wanted, not open, and not waiting out a back-off.
    fn connect_wanted(&mut self) {
        let now = Instant::now();
        for target in 0..self.settings.targets.len() {
            let b = self.backoff[target];
            if self.links.contains_key(&target)
                || b.connecting
                || b.next_try.is_some_and(|t| t > now)
                || !self.wanted(target)
            {
                continue;
            }
            self.backoff[target].connecting = true;
            let id = self.next_link_id;
            self.next_link_id += 1;
            let settings = self.settings.clone();
            let tls = self.tls.clone();
            let tx = self.connected_tx.clone();
            let wake_on_death = Arc::new(LinkState::new(self.shared.wake.clone()));
            tokio::spawn(async move {
                let t = &settings.targets[target];
                let r = tokio::time::timeout(
                    settings.connect_timeout,
                    connect(&settings, t, tls, id, wake_on_death),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no connection within {:?}",
                        settings.connect_timeout
                    ))
                });
                let _ = tx.send((target, r));
            });
        }
    }

    fn connected(&mut self, target: usize, result: Result<Link, String>) {
        self.backoff[target].connecting = false;
        let t = &self.settings.targets[target];
        match result {
            Ok(link) => {
                tracing::info!(output = %self.name, target = %t, "forward: connected");
                // `failures` stays until a write succeeds, so a server that accepts and
                // closes at once is retried ever more slowly.
                self.backoff[target].next_try = None;
                self.links.insert(target, link);
            }
            Err(e) => self.failed(target, &e),
        }
    }

    fn failed(&mut self, target: usize, why: &str) {
        let b = &mut self.backoff[target];
        b.failures = b.failures.saturating_add(1);
        let wait = backoff(
            self.settings.reconnect_min,
            self.settings.reconnect_max,
            b.failures,
            fastrand_unit(),
        );
        b.next_try = Some(Instant::now() + wait);
        self.stats.failed.fetch_add(1, Relaxed);
        let t = &self.settings.targets[target];
        if b.failures == 1 || b.failures.is_power_of_two() {
            tracing::warn!(output = %self.name, target = %t, failures = b.failures, retry_in_ms = wait.as_millis() as u64, "forward: {why}");
        }
    }

    /// Acknowledges, in order, the batches that settled.
    fn settle(&mut self) {
        let now = Instant::now();
        for link in self.links.values_mut() {
            if let Conn::Stream { fd, acked, .. } = &mut link.conn {
                if let Some(a) = bytes_acked(*fd) {
                    *acked = a;
                }
            }
        }
        for link in self.links.values() {
            if let Conn::Stream { state, .. } = &link.conn {
                let refused = state.refused.swap(0, Relaxed);
                if refused > 0 {
                    // Answered, so settled, but never taken: counted, not resent for ever.
                    self.stats.dropped.fetch_add(refused, Relaxed);
                }
            }
        }
        while let Some(front) = self.in_flight.front() {
            let done = match self.links.values().find(|l| l.id == front.link) {
                Some(link) => {
                    let done = settled(link, front, now);
                    if let Conn::Stream { state, .. } = &link.conn {
                        if !done && now > front.at + self.settings.write_timeout {
                            // Written long ago and still not acknowledged (or answered):
                            // give the connection up (check_links resends), as
                            // TCP_USER_TIMEOUT would.
                            state.dead.store(true, Relaxed);
                        }
                    }
                    done
                }
                None => false,
            };
            if !done {
                break;
            }
            self.ack_front();
        }
    }

    fn ack_front(&mut self) {
        let f = self.in_flight.pop_front().expect("front");
        let n = f.batch.len() as u64;
        self.in_flight_records -= n;
        let bytes = f.bytes;
        {
            let mut q = self.shared.queue();
            if let Err(e) = q.ack(&f.batch) {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::error!(output = %self.name, "forward: {e}");
            }
            self.stats.queued.store(q.len(), Relaxed);
            self.stats.on_disk.store(q.disk_records(), Relaxed);
        }
        self.stats.delivered.fetch_add(n, Relaxed);
        self.stats.written.fetch_add(n, Relaxed);
        self.stats.bytes.fetch_add(bytes, Relaxed);
        self.shared.room.notify_one();
    }

    /// Drops links whose reader saw them end; hands their unsettled batches out again.
    fn check_links(&mut self) {
        let dead: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| match &l.conn {
                Conn::Stream { state, .. } => state.dead.load(Relaxed),
                Conn::Udp(_) => false,
            })
            .map(|(t, _)| *t)
            .collect();
        for target in dead {
            self.lose(target, "the server closed the connection");
        }
    }

    /// `target`'s link is gone: settle what it proves delivered, rewind the rest.
    fn lose(&mut self, target: usize, why: &str) {
        let Some(mut link) = self.links.remove(&target) else {
            return;
        };
        let clean = match &mut link.conn {
            Conn::Stream {
                fd, acked, state, ..
            } => {
                if let Some(a) = bytes_acked(*fd) {
                    *acked = a;
                }
                state.clean_eof.load(Relaxed)
            }
            Conn::Udp(_) => false,
        };
        let final_acked = match &link.conn {
            Conn::Stream { acked, .. } => *acked,
            Conn::Udp(_) => 0,
        };
        let now = Instant::now();
        // In order: batches on other links that settled, and this link's batches that the
        // server provably read (a clean close) or that had settled before the failure.
        let answered = match &link.conn {
            Conn::Stream {
                relp: Some(_),
                state,
                ..
            } => Some(state.answered.load(Relaxed)),
            _ => None,
        };
        while let Some(front) = self.in_flight.front() {
            let ok = if front.link == link.id {
                match answered {
                    // RELP: what the server answered is delivered, whatever the end.
                    Some(n) => front.end <= n,
                    None => front.end <= final_acked && (clean || now >= front.at + SETTLE * 2),
                }
            } else {
                match self.links.values().find(|l| l.id == front.link) {
                    Some(l) => settled(l, front, now),
                    None => false,
                }
            };
            if !ok {
                break;
            }
            self.ack_front();
        }
        let resent = self.shared.queue().rewind();
        self.in_flight.clear();
        self.in_flight_records = 0;
        self.stats.retried.fetch_add(resent, Relaxed);
        drop(link);
        let why = if clean {
            why.to_string()
        } else {
            format!("{why} (reset)")
        };
        self.failed(
            target,
            &format!("{why}; {resent} messages not yet confirmed will be sent again"),
        );
    }

    /// The link the next batch goes to.
    fn choose(&mut self) -> Option<usize> {
        match self.settings.balance {
            Balance::Failover => self.links.keys().copied().min(),
            Balance::RoundRobin => {
                let n = self.settings.targets.len();
                for i in 1..=n {
                    let t = (self.turn + i) % n;
                    if self.links.contains_key(&t) {
                        self.turn = t;
                        return Some(t);
                    }
                }
                None
            }
        }
    }

    /// Sends one batch, if there is a link, room in flight, and something to send. Returns
    /// whether it sent.
    async fn send_one(&mut self) -> bool {
        let max_in_flight = match self.settings.protocol {
            Protocol::Relp => RELP_MAX_IN_FLIGHT_RECORDS,
            _ => MAX_IN_FLIGHT_RECORDS,
        };
        if self.in_flight_records >= max_in_flight {
            return false;
        }
        if !self.shared.queue().has_unread() {
            return false;
        }
        if self.settings.balance == Balance::Failover {
            // Back on a better target: leave the others once their batches settled.
            let best = self.links.keys().copied().min();
            let idle: Vec<usize> = self
                .links
                .iter()
                .filter(|(t, l)| {
                    Some(**t) != best && !self.in_flight.iter().any(|f| f.link == l.id)
                })
                .map(|(t, _)| *t)
                .collect();
            for t in idle {
                self.links.remove(&t);
            }
        }
        let Some(target) = self.choose() else {
            return false;
        };
        let mut batch = Batch::default();
        let read = {
            let mut q = self.shared.queue();
            let r = q.read(&mut batch, BATCH_RECORDS, BATCH_BYTES);
            crate::output::queued::disk_events("forward", self.name, &mut q, self.stats);
            r
        };
        match read {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::error!(output = %self.name, "forward: {e}");
                return false;
            }
        }
        self.frame.clear();
        let framing = self.settings.framing;
        let link = self.links.get_mut(&target).expect("chosen");
        let mut relp_link = match &mut link.conn {
            Conn::Stream { relp, .. } => relp.as_mut(),
            Conn::Udp(_) => None,
        };
        for r in batch.records() {
            if let Some(relp) = relp_link.as_deref_mut() {
                relp::write_frame(&mut self.frame, relp.next_txnr, "syslog", r);
                relp.next_txnr = relp::next_txnr(relp.next_txnr);
                relp.sent += 1;
                continue;
            }
            match framing {
                Framing::OctetCounting => {
                    push_decimal(&mut self.frame, r.len() as u64);
                    self.frame.push(b' ');
                    self.frame.extend_from_slice(r);
                }
                Framing::Newline => {
                    self.frame.extend_from_slice(r);
                    self.frame.push(b'\n');
                }
            }
        }
        let write_timeout = self.settings.write_timeout;
        let link_id = link.id;
        let result: Result<u64, String> = match &mut link.conn {
            Conn::Stream {
                writer,
                written,
                relp,
                ..
            } => {
                let w = async {
                    writer.write_all(&self.frame).await?;
                    writer.flush().await
                };
                match tokio::time::timeout(write_timeout, w).await {
                    Ok(Ok(())) => Ok(match relp {
                        Some(r) => r.sent,
                        None => written.load(Relaxed),
                    }),
                    Ok(Err(e)) => Err(format!("write failed: {e}")),
                    Err(_) => Err(format!("nothing written for {write_timeout:?}")),
                }
            }
            Conn::Udp(sock) => {
                let mut r = Ok(0);
                for rec in batch.records() {
                    if rec.len() > MAX_DATAGRAM_BYTES {
                        // Would fail with EMSGSIZE at every attempt: given up, counted.
                        self.stats.dropped.fetch_add(1, Relaxed);
                        continue;
                    }
                    if let Err(e) = sock.send(rec).await {
                        r = Err(format!("send failed: {e}"));
                        break;
                    }
                }
                r
            }
        };
        let n = batch.len() as u64;
        let bytes = batch.data.len() as u64;
        batch.forget_payloads();
        self.in_flight_records += n;
        self.in_flight.push_back(InFlight {
            batch,
            bytes,
            link: link_id,
            end: result.as_ref().copied().unwrap_or(u64::MAX),
            at: Instant::now(),
        });
        match result {
            Ok(_) => {
                if self.backoff[target].failures > 0 {
                    self.backoff[target] = Backoff::default();
                }
            }
            Err(e) => {
                if let Some(Link {
                    conn: Conn::Stream { state, .. },
                    ..
                }) = self.links.get(&target)
                {
                    state.dead.store(true, Relaxed);
                }
                self.lose(target, &e);
            }
        }
        true
    }
}

/// The wait before the next attempt after `failures` failures in a row: `min` doubled at
/// each failure after the first, at most `max`, times a jitter factor in [0.75, 1.25)
/// (`unit` in [0, 1)), at least 1 ms.
pub(crate) fn backoff(min: Duration, max: Duration, failures: u32, unit: f64) -> Duration {
    let base = min.as_millis() as f64 * 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let capped = base.min(max.as_millis() as f64);
    Duration::from_millis((capped * (0.75 + 0.5 * unit)).max(1.0) as u64)
}

/// A number in [0, 1) for jitter, without a random crate: the clock's nanoseconds hashed.
pub(crate) fn fastrand_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{target} has no address"));
    }
    Ok(addrs)
}

/// Opens a link to `target`: a connected UDP socket, or a TCP (and TLS) connection with a
/// reader task that watches for its end.
async fn connect(
    settings: &ForwardSettings,
    target: &Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    id: u64,
    state: Arc<LinkState>,
) -> Result<Link, String> {
    let addrs = resolve(target).await?;
    if settings.protocol == Protocol::Udp {
        let addr = addrs[0];
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        sock.connect(addr)
            .await
            .map_err(|e| format!("cannot reach {target}: {e}"))?;
        return Ok(Link {
            id,
            conn: Conn::Udp(sock),
        });
    }
    let mut last = String::new();
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {target} ({addr}): {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    // A server that vanishes without a reset (a cut network) leaves written data
    // unacknowledged: the kernel gives the connection up after `write_timeout` of that, and
    // the reader task sees the error.
    let user_timeout = settings.write_timeout.as_millis().min(u32::MAX as u128) as libc::c_uint;
    // SAFETY: setsockopt on the socket we own, with a c_uint of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            &user_timeout as *const libc::c_uint as *const libc::c_void,
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        );
    }
    let written = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: stream,
        written: written.clone(),
    };
    let tls_wanted = match settings.protocol {
        Protocol::Tls => true,
        Protocol::Relp => settings.tls.is_some(),
        _ => false,
    };
    let (mut reader, mut writer): (Box<dyn AsyncRead + Send + Unpin>, Writer) = match tls_wanted {
        true => {
            let config =
                tls.ok_or("the TLS settings could not be loaded (see the error at start)")?;
            let host = settings
                .tls
                .as_ref()
                .and_then(|t| t.server_name.clone())
                .unwrap_or_else(|| target.host.clone());
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("`{host}` is not a server name: {e}"))?;
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, counting)
                .await
                .map_err(|e| format!("TLS handshake with {target} failed: {e}"))?;
            let (r, w) = tokio::io::split(tls_stream);
            (Box::new(r), Box::new(w))
        }
        _ => {
            let (r, w) = tokio::io::split(counting);
            (Box::new(r), Box::new(w))
        }
    };
    let reader_state = state.clone();
    let (reader, relp) = if settings.protocol == Protocol::Relp {
        let rest = relp_open(&mut reader, &mut writer, target).await?;
        let reader = tokio::spawn(watch_answers(reader, rest, reader_state));
        let numbering = RelpLink {
            next_txnr: 2,
            sent: 0,
        };
        (reader, Some(numbering))
    } else {
        (tokio::spawn(watch_reads(reader, reader_state)), None)
    };
    Ok(Link {
        id,
        conn: Conn::Stream {
            writer,
            fd,
            written,
            state,
            reader,
            acked: 0,
            relp,
        },
    })
}

/// The longest answer a RELP server sends that is read (its `open` answer, an error text).
const RELP_MAX_ANSWER: usize = 64 * 1024;

/// Opens a RELP session: `open` with our offers, and the server's `200 OK` offering
/// `syslog`. Returns bytes the server sent after its answer.
async fn relp_open(
    reader: &mut Box<dyn AsyncRead + Send + Unpin>,
    writer: &mut Writer,
    target: &Target,
) -> Result<Vec<u8>, String> {
    let offers = format!(
        "relp_version=0\nrelp_software=logwell,{},https://github.com/logwell/logwell\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    );
    let mut open = Vec::new();
    relp::write_frame(&mut open, 1, "open", offers.as_bytes());
    let io = |e: std::io::Error| format!("RELP open with {target} failed: {e}");
    writer.write_all(&open).await.map_err(io)?;
    writer.flush().await.map_err(io)?;
    let mut decoder = relp::Decoder::new(RELP_MAX_ANSWER);
    let mut buf = vec![0u8; decoder.buffer_size()];
    let mut end = 0;
    loop {
        let n = reader.read(&mut buf[end..]).await.map_err(io)?;
        if n == 0 {
            return Err(format!(
                "{target} closed the connection instead of answering RELP open"
            ));
        }
        end += n;
        let (used, decoded) = decoder.decode(&buf[..end]);
        match decoded {
            relp::Decoded::NeedMore => continue,
            relp::Decoded::Frame(f) if f.command == b"rsp" && f.txnr == 1 => {
                match relp::read_rsp(f.data) {
                    Some((200, _, offers)) => {
                        let commands = relp::offer(offers, "commands").unwrap_or_default();
                        if !commands.split(|b| *b == b',').any(|c| c == b"syslog") {
                            return Err(format!("{target} does not offer the RELP syslog command"));
                        }
                        return Ok(buf[used..end].to_vec());
                    }
                    Some((code, text, _)) => {
                        return Err(format!(
                            "{target} refused the RELP session: {code} {}",
                            String::from_utf8_lossy(text)
                        ))
                    }
                    None => return Err(format!("{target} answered RELP open with no status")),
                }
            }
            _ => return Err(format!("{target} does not speak RELP (no answer to open)")),
        }
    }
}

/// Reads a RELP server's answers until the connection ends: each `rsp`, in the order the
/// messages were sent, counts in `answered` (and an error answer in `refused` too, logged
/// with the server's text); `serverclose` or anything out of order ends the link, and what
/// was not answered is sent again on the next.
async fn watch_answers(
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    rest: Vec<u8>,
    state: Arc<LinkState>,
) {
    let mut decoder = relp::Decoder::new(RELP_MAX_ANSWER);
    let mut buf = vec![0u8; decoder.buffer_size()];
    buf[..rest.len()].copy_from_slice(&rest);
    let (mut start, mut end) = (0, rest.len());
    let mut expected = 2;
    'read: loop {
        loop {
            let (used, decoded) = decoder.decode(&buf[start..end]);
            start += used;
            match decoded {
                relp::Decoded::NeedMore => break,
                relp::Decoded::Skipped => continue,
                relp::Decoded::Frame(f) if f.command == b"rsp" && f.txnr == expected => {
                    expected = relp::next_txnr(expected);
                    match relp::read_rsp(f.data) {
                        Some((200, _, _)) => {}
                        answer => {
                            let text = answer.map_or_else(String::new, |(code, text, _)| {
                                format!("{code} {}", String::from_utf8_lossy(text))
                            });
                            tracing::warn!(txnr = f.txnr, answer = %text, "forward: the RELP server refused a message; it is dropped (counted in dropped)");
                            state.refused.fetch_add(1, Relaxed);
                        }
                    }
                    state.answered.fetch_add(1, Relaxed);
                }
                relp::Decoded::Frame(f) if f.command == b"serverclose" => {
                    tracing::info!("forward: the RELP server closed the session");
                    break 'read;
                }
                relp::Decoded::Frame(f) => {
                    tracing::warn!(txnr = f.txnr, expected, command = %String::from_utf8_lossy(f.command), "forward: unexpected RELP frame from the server; reconnecting");
                    break 'read;
                }
                relp::Decoded::Error(e) => {
                    tracing::warn!(error = %e, "forward: the RELP server sent no RELP frame; reconnecting");
                    break 'read;
                }
            }
        }
        state.wake.notify_one();
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        match reader.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => end += n,
        }
    }
    state.dead.store(true, Relaxed);
    state.wake.notify_one();
}

/// Reads (and discards) what the server sends, until the connection ends; records how.
async fn watch_reads(mut reader: Box<dyn AsyncRead + Send + Unpin>, state: Arc<LinkState>) {
    let mut buf = vec![0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => {
                state.clean_eof.store(true, Relaxed);
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    state.dead.store(true, Relaxed);
    state.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_jitter() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(60));
        let ms = |f, u| backoff(min, max, f, u).as_millis();
        assert_eq!(ms(1, 0.5), 500);
        assert_eq!(ms(2, 0.5), 1000);
        assert_eq!(ms(3, 0.5), 2000);
        assert_eq!(ms(1, 0.0), 375);
        assert_eq!(ms(1, 0.999_999), 624);
        assert_eq!(ms(8, 0.5), 60_000);
        assert_eq!(ms(1000, 0.5), 60_000);
        assert_eq!(ms(1000, 0.0), 45_000);
    }

    #[test]
    fn jitter_stays_in_its_range() {
        for _ in 0..1000 {
            let j = fastrand_unit();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
