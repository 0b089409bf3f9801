//! The load generator of the end-to-end benchmarks (`e2e`, `compare`): pre-rendered 200-byte
//! syslog messages sent over TCP (newline or octet-counted framing, big `write`s), UDP and
//! Unix datagram sockets (`sendmmsg` in batches of [`BATCH`]), RELP sessions that
//! pipeline as librelp does ([`relp`]), and lines appended to files ([`file_append`]).
//!
//! It must stay cheap, because it shares the machine with the daemon it measures: messages are
//! rendered once into a large buffer and only their sequence numbers are rewritten before each
//! repeat. Every message carries a unique sequence number (`seq=NNNNNNNNNN`), so the benchmark
//! can check the output file for loss and duplicates afterwards. It never retries a message:
//! the count sent is exact, and every loop ends by count or by the deadline.

use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The syslog header of every message (RFC 3164, PRI 13 = user.notice).
pub const HEADER: &[u8] = b"<13>Nov 21 09:41:03 benchhost bench[1234]: ";
/// The header of the `forwarded` case: as journald forwards to `/run/systemd/journal/syslog`
/// (PRI 30 = daemon.info, no host name).
pub const FORWARDED_HEADER: &[u8] = b"<30>Nov 21 09:41:03 bench[1234]: ";
/// Every message is exactly this long, without its framing newline.
pub const MESSAGE_BYTES: usize = 200;
/// Marks the sequence number inside the message text.
pub const SEQ_TAG: &[u8] = b"seq=";
/// Digits of the sequence number.
pub const SEQ_DIGITS: usize = 10;
/// Messages per TCP buffer: 8192 × 201 bytes ≈ 1.6 MiB per `write`.
const STREAM_BUFFER_MESSAGES: u64 = 8192;
/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 64;
/// How long one blocked write may take before the sender checks its deadline again.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// What one sender did.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    /// Messages handed to the kernel.
    pub messages: u64,
    /// When the last one was handed over.
    pub finished: Option<Instant>,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// One sender's share: `count` messages numbered from `first_seq`, until `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    /// Sequence number of the first message.
    pub first_seq: u64,
    /// Exact number of messages to send.
    pub count: u64,
    /// Give up (and report it) after this instant.
    pub deadline: Instant,
}

/// Writes one message with sequence number `seq` into `out` (exactly [`MESSAGE_BYTES`]),
/// after [`HEADER`].
fn render(out: &mut [u8], seq: u64) {
    render_with(out, HEADER, seq)
}

/// [`render`] for callers outside this module: one message with sequence number `seq`.
#[allow(dead_code)] // only the `compare` benchmark renders single messages
pub fn render_one(out: &mut [u8], seq: u64) {
    render(out, seq)
}

/// [`render`] with another syslog header.
fn render_with(out: &mut [u8], header: &[u8], seq: u64) {
    debug_assert_eq!(out.len(), MESSAGE_BYTES);
    let at = header.len() + SEQ_TAG.len();
    out[..header.len()].copy_from_slice(header);
    out[header.len()..at].copy_from_slice(SEQ_TAG);
    set_seq_at(out, at, seq);
    out[at + SEQ_DIGITS] = b' ';
    const FILL: &[u8] = b"the quick brown fox jumps over the lazy dog 0123456789 ";
    for (i, b) in out[at + SEQ_DIGITS + 1..].iter_mut().enumerate() {
        *b = FILL[i % FILL.len()];
    }
}

/// Rewrites the sequence number of an already rendered message (after [`HEADER`]).
fn set_seq(msg: &mut [u8], seq: u64) {
    set_seq_at(msg, HEADER.len() + SEQ_TAG.len(), seq)
}

/// What follows [`HEADER`] in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `seq=NNNNNNNNNN the quick brown fox …`.
    Text,
    /// One JSON object of 8 members (strings, numbers, a bool, one nested object); its first
    /// member is `"msg":"seq=NNNNNNNNNN …"`, so the sequence number reads back as from
    /// [`Body::Text`], and a `path` string pads it to [`MESSAGE_BYTES`].
    #[allow(dead_code)] // only the `compare` benchmark sends JSON
    Json,
}

/// The JSON body up to the sequence number, and after the padding of `path`.
const JSON_HEAD: &[u8] = br#"{"msg":""#;
const JSON_MID: &[u8] = br#" GET","level":"info","status":200,"took_ms":12.5,"ok":true,"user":{"id":42,"name":"bob"},"path":"/api/"#;
const JSON_TAIL: &[u8] = br#"","n":123}"#;

impl Body {
    /// Where the first digit of the sequence number is.
    fn seq_at(self) -> usize {
        match self {
            Body::Text => HEADER.len() + SEQ_TAG.len(),
            Body::Json => HEADER.len() + JSON_HEAD.len() + SEQ_TAG.len(),
        }
    }

    /// Writes one message with sequence number `seq` into `out` ([`MESSAGE_BYTES`]).
    fn render(self, out: &mut [u8], seq: u64) {
        match self {
            Body::Text => render(out, seq),
            Body::Json => {
                debug_assert_eq!(out.len(), MESSAGE_BYTES);
                let fixed = HEADER.len()
                    + JSON_HEAD.len()
                    + SEQ_TAG.len()
                    + SEQ_DIGITS
                    + JSON_MID.len()
                    + JSON_TAIL.len();
                let pad = MESSAGE_BYTES
                    .checked_sub(fixed)
                    .expect("JSON body too long");
                let mut at = 0;
                for part in [HEADER, JSON_HEAD, SEQ_TAG] {
                    out[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                at += SEQ_DIGITS;
                out[at..at + JSON_MID.len()].copy_from_slice(JSON_MID);
                at += JSON_MID.len();
                for (i, b) in out[at..at + pad].iter_mut().enumerate() {
                    *b = b"0123456789abcdef"[i % 16];
                }
                out[at + pad..].copy_from_slice(JSON_TAIL);
                set_seq_at(out, self.seq_at(), seq);
            }
        }
    }

    /// Rewrites the sequence number of an already rendered message.
    fn set_seq(self, msg: &mut [u8], seq: u64) {
        set_seq_at(msg, self.seq_at(), seq)
    }
}

/// Rewrites the sequence number whose first digit is at offset `at`.
fn set_seq_at(msg: &mut [u8], at: usize, mut seq: u64) {
    for b in msg[at..at + SEQ_DIGITS].iter_mut().rev() {
        *b = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
}

/// Reads the sequence number back from a line of the output file.
pub fn parse_seq(line: &[u8]) -> Option<u64> {
    let at = line.windows(SEQ_TAG.len()).position(|w| w == SEQ_TAG)? + SEQ_TAG.len();
    let digits = line.get(at..at + SEQ_DIGITS)?;
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Where the host name `benchhost` is in [`HEADER`], and its length.
const HOST_AT: usize = 20;
const HOST_LEN: usize = 9;

/// Replaces the host name of a rendered message by `h` and 8 digits of `seq % hosts`.
fn set_host(msg: &mut [u8], seq: u64, hosts: u64) {
    debug_assert_eq!(&HEADER[HOST_AT..HOST_AT + HOST_LEN], b"benchhost");
    msg[HOST_AT] = b'h';
    set_seq_at_width(msg, HOST_AT + 1, HOST_LEN - 1, seq % hosts);
}

fn set_seq_at_width(msg: &mut [u8], at: usize, width: usize, mut n: u64) {
    for b in msg[at..at + width].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// How messages are framed on a stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Non-transparent framing: each message followed by LF.
    Newline,
    /// Octet counting: `200 ` before each message, nothing after.
    #[allow(dead_code)] // only the `compare` benchmark sends it
    OctetCounted,
}

impl Framing {
    /// The bytes before and after each message.
    fn around(self) -> (&'static [u8], &'static [u8]) {
        const _: () = assert!(MESSAGE_BYTES == 200, "the octet count below is 200");
        match self {
            Framing::Newline => (b"", b"\n"),
            Framing::OctetCounted => (b"200 ", b""),
        }
    }

    /// Bytes of one framed message on the wire.
    pub fn frame_bytes(self) -> usize {
        let (before, after) = self.around();
        before.len() + MESSAGE_BYTES + after.len()
    }
}

/// Sends `share` over one TCP connection to 127.0.0.1:`port`, newline-framed. Connects first,
/// then waits on `start` so that connection setup is not timed. With `hosts` > 0, message
/// `seq` carries host name `h` + 8 digits of `seq % hosts` instead of `benchhost`.
pub fn tcp(port: u16, share: Share, hosts: u64, start: &Barrier) -> Sent {
    tcp_framed(port, share, hosts, Framing::Newline, start)
}

/// [`tcp`] with the given framing.
pub fn tcp_framed(port: u16, share: Share, hosts: u64, framing: Framing, start: &Barrier) -> Sent {
    tcp_body(port, share, hosts, framing, Body::Text, start)
}

/// [`tcp_framed`] with the given message body.
pub fn tcp_body(
    port: u16,
    share: Share,
    hosts: u64,
    framing: Framing,
    body_kind: Body,
    start: &Barrier,
) -> Sent {
    let (before, after) = framing.around();
    let frame = framing.frame_bytes();
    let body = before.len()..before.len() + MESSAGE_BYTES;
    let per_buffer = share.count.clamp(1, STREAM_BUFFER_MESSAGES) as usize;
    let mut buf = vec![0u8; per_buffer * frame];
    for (i, m) in buf.chunks_exact_mut(frame).enumerate() {
        m[..before.len()].copy_from_slice(before);
        m[body.end..].copy_from_slice(after);
        body_kind.render(&mut m[body.clone()], share.first_seq + i as u64);
        if hosts > 0 {
            set_host(&mut m[body.clone()], share.first_seq + i as u64, hosts);
        }
    }
    let conn = TcpStream::connect(("127.0.0.1", port))
        .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s));
    start.wait();
    let mut sock = match conn {
        Ok(s) => s,
        Err(e) => return failed(0, format!("connect: {e}")),
    };
    let mut sent = 0u64;
    while sent < share.count {
        let n = (share.count - sent).min(per_buffer as u64) as usize;
        if sent > 0 {
            for (i, m) in buf.chunks_exact_mut(frame).take(n).enumerate() {
                body_kind.set_seq(&mut m[body.clone()], share.first_seq + sent + i as u64);
                if hosts > 0 {
                    set_host(
                        &mut m[body.clone()],
                        share.first_seq + sent + i as u64,
                        hosts,
                    );
                }
            }
        }
        // `write_all` gives up on a timeout; keep the partial progress and retry the rest.
        let mut rest = &buf[..n * frame];
        while !rest.is_empty() {
            match sock.write(rest) {
                Ok(0) => return failed(sent, "connection closed by the daemon".into()),
                Ok(k) => rest = &rest[k..],
                Err(e) if retryable(&e) => {
                    if Instant::now() > share.deadline {
                        // Count only whole messages that went out.
                        let done = (n * frame - rest.len()) / frame;
                        return failed(sent + done as u64, "deadline passed".into());
                    }
                }
                Err(e) => {
                    let done = (n * frame - rest.len()) / frame;
                    return failed(sent + done as u64, format!("write: {e}"));
                }
            }
        }
        sent += n as u64;
    }
    let _ = sock.flush();
    Sent {
        messages: sent,
        finished: Some(Instant::now()),
        error: None,
    }
}

/// The start of every line [`file_append`] writes: an application's own log line, no syslog
/// header (the daemons read each line as a message body).
pub const FILE_HEADER: &[u8] = b"2026-11-21 09:41:03.123 INFO bench: ";

/// Lines [`file_append`] writes to one file with one `write(2)` in a run: 64 lines, about
/// 13 KiB, as a logger flushing a full buffer.
#[allow(dead_code)] // only the `compare` benchmark appends to files
pub const FILE_BATCH: u64 = 64;

/// Appends `share.count` lines (numbered from `share.first_seq`) to the files `paths` as fast
/// as one writer can: `batch` lines (such as [`FILE_BATCH`]) with one `write(2)` to each file
/// in turn, every file held open with `O_APPEND`. Each line is a [`MESSAGE_BYTES`] message
/// that starts with [`FILE_HEADER`], and its LF. Returns what it wrote and the CPU seconds
/// this thread used from the start barrier on.
#[allow(dead_code)] // only the `compare` benchmark appends to files
pub fn file_append(
    paths: &[std::path::PathBuf],
    share: Share,
    batch: u64,
    start: &Barrier,
) -> (Sent, f64) {
    let line = MESSAGE_BYTES + 1;
    let batch = batch.max(1);
    let mut buf = vec![b'\n'; batch as usize * line];
    for (i, m) in buf.chunks_exact_mut(line).enumerate() {
        render_with(
            &mut m[..MESSAGE_BYTES],
            FILE_HEADER,
            share.first_seq + i as u64,
        );
    }
    let files: io::Result<Vec<std::fs::File>> = paths
        .iter()
        .map(|p| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
        })
        .collect();
    start.wait();
    let cpu0 = thread_cpu_secs();
    let cpu = || thread_cpu_secs() - cpu0;
    let mut files = match files {
        Ok(f) => f,
        Err(e) => return (failed(0, format!("open: {e}")), 0.0),
    };
    let at = FILE_HEADER.len() + SEQ_TAG.len();
    let mut sent = 0u64;
    let mut next = 0;
    while sent < share.count {
        let n = (share.count - sent).min(batch) as usize;
        for (i, m) in buf.chunks_exact_mut(line).take(n).enumerate() {
            set_seq_at(m, at, share.first_seq + sent + i as u64);
        }
        if let Err(e) = files[next].write_all(&buf[..n * line]) {
            return (failed(sent, format!("write: {e}")), cpu());
        }
        sent += n as u64;
        next = (next + 1) % files.len();
        if Instant::now() > share.deadline {
            return (failed(sent, "deadline passed".into()), cpu());
        }
    }
    let sent = Sent {
        messages: sent,
        finished: Some(Instant::now()),
        error: None,
    };
    (sent, cpu())
}

/// The CPU seconds (user and system) the calling thread used so far.
#[allow(dead_code)] // only for `file_append`
fn thread_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD on the calling thread, into a valid rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Transactions a RELP sender keeps unanswered, as librelp does (its default window).
pub const RELP_WINDOW: u64 = 128;
/// Longest the RELP handshake, an answer or the `close` may take.
const RELP_TIMEOUT: Duration = Duration::from_secs(10);

/// One RELP answer (`TXNR rsp DATALEN [SP DATA] LF`, or `serverclose`) at the start of
/// `buf`: its transaction number, command, data and length, or `Ok(None)` when it is not
/// all there yet.
#[allow(clippy::type_complexity)]
fn relp_frame(buf: &[u8]) -> Result<Option<(u64, &[u8], &[u8], usize)>, String> {
    let bad = || {
        format!(
            "not a RELP frame: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(64)])
        )
    };
    let number = |from: usize| -> Result<Option<(u64, usize)>, String> {
        let mut n = 0u64;
        let mut i = from;
        while i < buf.len() && buf[i].is_ascii_digit() {
            n = n * 10 + u64::from(buf[i] - b'0');
            i += 1;
            if i - from > 9 {
                return Err(bad());
            }
        }
        match buf.get(i) {
            None => Ok(None),
            Some(_) if i == from => Err(bad()),
            Some(_) => Ok(Some((n, i))),
        }
    };
    let Some((txnr, at)) = number(0)? else {
        return Ok(None);
    };
    if buf[at] != b' ' {
        return Err(bad());
    }
    let Some(cmd_len) = buf[at + 1..].iter().position(|&b| b == b' ') else {
        return if buf.len() - at > 40 {
            Err(bad())
        } else {
            Ok(None)
        };
    };
    let command = &buf[at + 1..at + 1 + cmd_len];
    let Some((len, at)) = number(at + 2 + cmd_len)? else {
        return Ok(None);
    };
    let len = len as usize;
    // DATALEN 0: LF (librelp also sends a SP before it); else SP DATA LF.
    let (data_at, end) = match buf[at] {
        b'\n' if len == 0 => return Ok(Some((txnr, command, &[], at + 1))),
        b' ' => (at + 1, at + 1 + len),
        _ => return Err(bad()),
    };
    match buf.get(end) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((txnr, command, &buf[data_at..end], end + 1))),
        Some(_) => Err(bad()),
    }
}

/// Reads from `sock` into `rbuf` (after its `filled` bytes) until at least one whole RELP
/// frame is there; returns the new fill.
fn relp_read(
    sock: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    filled: usize,
    deadline: Instant,
) -> Result<usize, String> {
    if rbuf.len() - filled < 4096 {
        rbuf.resize(filled + 65536, 0);
    }
    loop {
        match sock.read(&mut rbuf[filled..]) {
            Ok(0) => return Err("connection closed by the daemon".into()),
            Ok(k) => return Ok(filled + k),
            Err(e) if retryable(&e) => {
                if Instant::now() > deadline {
                    return Err("no answer before the deadline".into());
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Writes all of `bytes`, retrying timed-out writes until `deadline`.
fn write_until(sock: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> Result<(), String> {
    while !bytes.is_empty() {
        match sock.write(bytes) {
            Ok(0) => return Err("connection closed by the daemon".into()),
            Ok(k) => bytes = &bytes[k..],
            Err(e) if retryable(&e) => {
                if Instant::now() > deadline {
                    return Err("deadline passed".into());
                }
            }
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}

/// Sends `share` over one RELP session to 127.0.0.1:`port`, as librelp's client does: `open`
/// (and its answer) before `start`, then `syslog` frames numbered 2, 3, … with at most
/// [`RELP_WINDOW`] unanswered, each answer checked (`200 OK`, in order), and `close` once
/// every message is answered: `messages` counts the acknowledged ones, `finished` is when the
/// last was. Frames are built in one buffer per refill and sent with one `write`; answers are
/// read in large reads and scanned in place.
#[allow(dead_code)] // only the `compare` benchmark speaks RELP
pub fn relp(port: u16, share: Share, start: &Barrier) -> Sent {
    let conn = TcpStream::connect(("127.0.0.1", port)).and_then(|s| {
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
        s.set_read_timeout(Some(WRITE_TIMEOUT))?;
        Ok(s)
    });
    let mut rbuf = vec![0u8; 65536];
    let opened = conn.map_err(|e| format!("connect: {e}")).and_then(|mut s| {
        const OFFER: &[u8] = b"relp_version=0\nrelp_software=loadgen\ncommands=syslog";
        let mut open = format!("1 open {} ", OFFER.len()).into_bytes();
        open.extend_from_slice(OFFER);
        open.push(b'\n');
        let deadline = Instant::now() + RELP_TIMEOUT;
        write_until(&mut s, &open, deadline)?;
        let mut filled = 0;
        loop {
            filled = relp_read(&mut s, &mut rbuf, filled, deadline)?;
            if let Some((txnr, cmd, data, used)) = relp_frame(&rbuf[..filled])? {
                if txnr != 1 || cmd != b"rsp" || !data.starts_with(b"200") {
                    return Err(format!(
                        "open answered {:?}",
                        String::from_utf8_lossy(&rbuf[..used])
                    ));
                }
                if used != filled {
                    return Err("more than the answer to open".into());
                }
                return Ok(s);
            }
        }
    });
    start.wait();
    let mut sock = match opened {
        Ok(s) => s,
        Err(e) => return failed(0, format!("RELP open: {e}")),
    };
    // Transaction i (0-based message) is number i + 2.
    let mut msg = [0u8; MESSAGE_BYTES];
    render(&mut msg, share.first_seq);
    let mut wbuf: Vec<u8> = Vec::with_capacity(RELP_WINDOW as usize * (MESSAGE_BYTES + 24));
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut filled = 0usize;
    let mut last_answer = Instant::now();
    while acked < share.count {
        let open = sent - acked;
        // As librelp: a frame goes out as soon as the window has room for it; all that fit after
        // one read's answers go in one `write`. (Waiting for a quarter of the window to be
        // free stalled rsyslog: its answers, small writes under Nagle, then wait for a
        // delayed ACK, 40 ms, which no frame of ours carried back.)
        if sent < share.count && open < RELP_WINDOW {
            wbuf.clear();
            let upto = share.count.min(acked + RELP_WINDOW);
            while sent < upto {
                set_seq(&mut msg, share.first_seq + sent);
                let _ = write!(wbuf, "{} syslog {} ", sent + 2, MESSAGE_BYTES);
                wbuf.extend_from_slice(&msg);
                wbuf.push(b'\n');
                sent += 1;
            }
            if let Err(e) = write_until(&mut sock, &wbuf, share.deadline) {
                return failed(acked, e);
            }
            continue;
        }
        // Answers, in order; one read may hold many (or part of one).
        let deadline = share.deadline.min(last_answer + RELP_TIMEOUT);
        filled = match relp_read(&mut sock, &mut rbuf, filled, deadline) {
            Ok(f) => f,
            Err(e) => return failed(acked, e),
        };
        let mut at = 0;
        loop {
            match relp_frame(&rbuf[at..filled]) {
                Ok(Some((txnr, cmd, data, used))) => {
                    if cmd != b"rsp" || txnr != acked + 2 || !data.starts_with(b"200") {
                        return failed(
                            acked,
                            format!(
                                "transaction {} answered {:?}",
                                acked + 2,
                                String::from_utf8_lossy(&rbuf[at..at + used])
                            ),
                        );
                    }
                    acked += 1;
                    at += used;
                }
                Ok(None) => break,
                Err(e) => return failed(acked, e),
            }
        }
        rbuf.copy_within(at..filled, 0);
        filled -= at;
        last_answer = Instant::now();
    }
    let finished = Instant::now();
    // `close`, answered by an empty `rsp` (then `serverclose`, which is not waited for).
    let close_txnr = share.count + 2;
    let close = format!("{close_txnr} close 0\n");
    let deadline = Instant::now() + RELP_TIMEOUT;
    let closed = write_until(&mut sock, close.as_bytes(), deadline).and_then(|()| loop {
        if let Some((txnr, cmd, data, _)) = relp_frame(&rbuf[..filled])? {
            if txnr == close_txnr && cmd == b"rsp" && data.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "close answered {:?}",
                String::from_utf8_lossy(&rbuf[..filled])
            ));
        }
        filled = relp_read(&mut sock, &mut rbuf, filled, deadline)?;
    });
    Sent {
        messages: acked,
        finished: Some(finished),
        error: closed.err().map(|e| format!("RELP close: {e}")),
    }
}

/// Sends `share` as UDP datagrams to 127.0.0.1:`port`; at most `rate` messages per second when
/// given, else as fast as `sendmmsg` goes.
pub fn udp(port: u16, share: Share, rate: Option<u64>, start: &Barrier) -> Sent {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.connect(("127.0.0.1", port)).map(|()| s))
        .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s));
    start.wait();
    match sock {
        Ok(s) if udp_gso() => gso_loop(s.as_raw_fd(), share, rate),
        Ok(s) => sendmmsg_loop(s.as_raw_fd(), HEADER, share, rate),
        Err(e) => failed(0, format!("udp socket: {e}")),
    }
}

/// Whether UDP is sent with segmentation offload (`LOGWELL_BENCH_UDP_GSO=1`).
pub fn udp_gso() -> bool {
    std::env::var("LOGWELL_BENCH_UDP_GSO").is_ok_and(|v| v == "1")
}

/// Sends `share` as UDP datagrams of [`MESSAGE_BYTES`] with segmentation offload
/// (`UDP_SEGMENT`): each `send` hands the kernel [`BATCH`] messages as one buffer, and the
/// loopback delivery cuts it into that many datagrams before they reach the receiver's socket
/// (which sees ordinary datagrams: receivers do not enable `UDP_GRO`; 128 a send were no
/// cheaper). The sender's cost per datagram falls several-fold, so it can outrun receivers on
/// the same CPUs.
fn gso_loop(fd: i32, share: Share, rate: Option<u64>) -> Sent {
    const UDP_SEGMENT: libc::c_int = 103;
    let size = MESSAGE_BYTES as libc::c_int;
    // SAFETY: setsockopt reads one int.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return failed(0, format!("UDP_SEGMENT: {}", io::Error::last_os_error()));
    }
    batch_loop(HEADER, share, rate, |buf, done, n| {
        let bytes = &buf[done * MESSAGE_BYTES..n * MESSAGE_BYTES];
        // SAFETY: sends `bytes`, which lives for the call; the socket is connected.
        let r = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), 0) };
        match r {
            r if r < 0 => Err(io::Error::last_os_error()),
            _ => Ok(n - done),
        }
    })
}

/// A Unix datagram socket connected to `path`, its sends bounded by [`WRITE_TIMEOUT`].
fn connect_unix_dgram(path: &Path) -> std::io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(sock)
}

/// Sends `share` as datagrams to the Unix datagram socket at `path` (blocking: the kernel
/// makes the sender wait while the daemon's queue is full, so nothing is lost), each message
/// after `header` ([`HEADER`], or [`FORWARDED_HEADER`] as journald forwards).
pub fn unix_dgram(path: &Path, header: &'static [u8], share: Share, start: &Barrier) -> Sent {
    let sock = connect_unix_dgram(path);
    start.wait();
    match sock {
        Ok(s) => sendmmsg_loop(s.as_raw_fd(), header, share, None),
        Err(e) => failed(0, format!("unix socket {}: {e}", path.display())),
    }
}

/// Sends `share` to the Unix datagram socket at `path` one `send` per message, at most `rate`
/// a second, sleeping (never spinning) until each is due: many programs each logging now and
/// then, the load where a receiver's cost per wake-up shows.
#[allow(dead_code)] // only the `e2e` benchmark trickles
pub fn unix_dgram_trickle(path: &Path, share: Share, rate: u64, start: &Barrier) -> Sent {
    let sock = connect_unix_dgram(path);
    start.wait();
    let sock = match sock {
        Ok(s) => s,
        Err(e) => return failed(0, format!("unix socket {}: {e}", path.display())),
    };
    let mut m = [0u8; MESSAGE_BYTES];
    render(&mut m, share.first_seq);
    let begun = Instant::now();
    for sent in 0..share.count {
        set_seq(&mut m, share.first_seq + sent);
        if let Err(e) = sock.send(&m) {
            return failed(sent, format!("send: {e}"));
        }
        let due = begun + Duration::from_secs_f64((sent + 1) as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now > share.deadline {
            return failed(sent + 1, "deadline passed".into());
        }
    }
    Sent {
        messages: share.count,
        finished: Some(Instant::now()),
        error: None,
    }
}

/// Sends on a connected datagram socket in `sendmmsg` batches of [`BATCH`].
fn sendmmsg_loop(fd: i32, header: &[u8], share: Share, rate: Option<u64>) -> Sent {
    batch_loop(header, share, rate, |buf, done, n| {
        // The headers point into `buf`, which does not move while they live.
        let mut iov: Vec<libc::iovec> = buf
            .chunks_exact_mut(MESSAGE_BYTES)
            .take(n)
            .skip(done)
            .map(|m| libc::iovec {
                iov_base: m.as_mut_ptr().cast(),
                iov_len: m.len(),
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: mmsghdr is plain data; all-zero is a valid (empty) value.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: `hdrs` are valid headers whose single iovec points into `buf`; the socket is
        // connected, so no address is needed.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, 0) };
        match r {
            r if r < 0 => Err(io::Error::last_os_error()),
            r => Ok(r as usize),
        }
    })
}

/// The loop both datagram senders share: [`BATCH`] messages rendered once after `header`,
/// their sequence numbers rewritten per batch; `send(buf, done, n)` sends messages
/// `done..n` of `buf` and says how many went. Transient errors (a full buffer, no receiver
/// yet) are retried until `share`'s deadline; at most `rate` messages a second when given.
fn batch_loop(
    header: &[u8],
    share: Share,
    rate: Option<u64>,
    mut send: impl FnMut(&mut [u8], usize, usize) -> io::Result<usize>,
) -> Sent {
    let mut buf = vec![0u8; BATCH * MESSAGE_BYTES];
    for (i, m) in buf.chunks_exact_mut(MESSAGE_BYTES).enumerate() {
        render_with(m, header, share.first_seq + i as u64);
    }
    let at = header.len() + SEQ_TAG.len();
    let begun = Instant::now();
    let mut sent = 0u64;
    while sent < share.count {
        let n = (share.count - sent).min(BATCH as u64) as usize;
        if sent > 0 {
            for (i, m) in buf.chunks_exact_mut(MESSAGE_BYTES).take(n).enumerate() {
                set_seq_at(m, at, share.first_seq + sent + i as u64);
            }
        }
        let mut done = 0usize;
        while done < n {
            let e = match send(&mut buf, done, n) {
                Ok(k) => {
                    done += k;
                    continue;
                }
                Err(e) => e,
            };
            let transient = retryable(&e)
                || matches!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS) | Some(libc::ECONNREFUSED)
                );
            if !transient {
                return failed(sent + done as u64, format!("send: {e}"));
            }
            if Instant::now() > share.deadline {
                return failed(sent + done as u64, "deadline passed".into());
            }
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                std::thread::yield_now();
            }
        }
        sent += n as u64;
        if let Some(rate) = rate {
            pace(begun, sent, rate);
        }
        if sent % (BATCH as u64 * 256) == 0 && Instant::now() > share.deadline {
            return failed(sent, "deadline passed".into());
        }
    }
    Sent {
        messages: sent,
        finished: Some(Instant::now()),
        error: None,
    }
}

/// Sends `share` to journald's native socket `socket` (`/run/systemd/journal.NS/socket`), one
/// datagram per entry: `MESSAGE` is the text of a benchmark message (from `seq=` on),
/// `SYSLOG_IDENTIFIER=bench`, `PRIORITY=6`. Blocking: journald makes the sender wait while
/// its queue is full, so nothing is lost on the way.
pub fn journal_native(socket: &Path, share: Share) -> Sent {
    let sock = match UnixDatagram::unbound()
        .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s))
    {
        Ok(s) => s,
        Err(e) => return failed(0, format!("unix socket: {e}")),
    };
    let mut msg = [0u8; MESSAGE_BYTES];
    render(&mut msg, share.first_seq);
    let text = HEADER.len();
    let mut d = Vec::with_capacity(256);
    d.extend_from_slice(b"PRIORITY=6\nSYSLOG_IDENTIFIER=bench\nMESSAGE=");
    let at = d.len();
    d.extend_from_slice(&msg[text..]);
    d.push(b'\n');
    let mut sent = 0u64;
    while sent < share.count {
        set_seq_at(&mut d, at + SEQ_TAG.len(), share.first_seq + sent);
        match sock.send_to(&d, socket) {
            Ok(_) => sent += 1,
            Err(e) if retryable(&e) || e.raw_os_error() == Some(libc::ENOBUFS) => {
                if Instant::now() > share.deadline {
                    return failed(sent, "deadline passed".into());
                }
            }
            Err(e) => return failed(sent, format!("send to {}: {e}", socket.display())),
        }
    }
    Sent {
        messages: sent,
        finished: Some(Instant::now()),
        error: None,
    }
}

/// A rustls client configuration that trusts the CA in `ca_pem` only, without session
/// resumption (every handshake is a full one).
pub fn tls_client_config(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem)
        .map_err(|e| format!("{}: {e}", ca_pem.display()))?
    {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// The name the server certificate of the TLS cases is for.
pub const TLS_SERVER_NAME: &str = "localhost";

/// A TLS connection to 127.0.0.1:`port`, handshake done.
fn tls_connect(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = rustls_pki_types::ServerName::try_from(TLS_SERVER_NAME)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mut sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(TLS_CLOSE_TIMEOUT))?;
    sock.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let started = Instant::now();
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok(_) => {}
            Err(e) if retryable(&e) && started.elapsed() < TLS_CLOSE_TIMEOUT => {}
            Err(e) => return Err(e),
        }
    }
    if let (Some(version), Some(suite)) = (conn.protocol_version(), conn.negotiated_cipher_suite())
    {
        let _ = NEGOTIATED.set(format!("{version:?}, {:?}", suite.suite()));
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// The protocol version and cipher suite of the first TLS handshake.
static NEGOTIATED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// What the TLS connections negotiated (the first one's), once one has.
pub fn tls_negotiated() -> Option<&'static str> {
    NEGOTIATED.get().map(String::as_str)
}

/// Longest a TLS handshake, or the wait for the daemon's close, may take.
const TLS_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Ends a TLS connection cleanly: `close_notify`, our write side shut, then everything the
/// daemon still sends (session tickets) read until it closes. Closing with unread data would
/// reset the connection and could discard what the daemon has not read yet.
fn tls_close(mut tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> io::Result<()> {
    tls.conn.send_close_notify();
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.sock)?;
    }
    tls.sock.shutdown(std::net::Shutdown::Write)?;
    let mut sink = [0u8; 4096];
    loop {
        match tls.sock.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Sends `share` over one TLS connection to 127.0.0.1:`port`, newline-framed, in the same
/// 1.6 MiB buffers as [`tcp`]. Connects and completes the handshake first, then waits on
/// `start`.
pub fn tls(port: u16, config: &Arc<rustls::ClientConfig>, share: Share, start: &Barrier) -> Sent {
    let frame = MESSAGE_BYTES + 1;
    let per_buffer = share.count.clamp(1, STREAM_BUFFER_MESSAGES) as usize;
    let mut buf = vec![b'\n'; per_buffer * frame];
    for (i, m) in buf.chunks_exact_mut(frame).enumerate() {
        render(&mut m[..MESSAGE_BYTES], share.first_seq + i as u64);
    }
    let conn = tls_connect(port, config);
    start.wait();
    let mut tls = match conn {
        Ok(s) => s,
        Err(e) => return failed(0, format!("TLS connect: {e}")),
    };
    let mut sent = 0u64;
    while sent < share.count {
        let n = (share.count - sent).min(per_buffer as u64) as usize;
        if sent > 0 {
            for (i, m) in buf.chunks_exact_mut(frame).take(n).enumerate() {
                set_seq(m, share.first_seq + sent + i as u64);
            }
        }
        // `StreamOwned::write` fails only before it takes any of `rest` (finishing earlier
        // records), so a timed-out write is retried as is.
        let mut rest = &buf[..n * frame];
        while !rest.is_empty() {
            match tls.write(rest) {
                Ok(0) => return failed(sent, "connection closed by logwelld".into()),
                Ok(k) => rest = &rest[k..],
                Err(e) if retryable(&e) => {
                    if Instant::now() > share.deadline {
                        let done = (n * frame - rest.len()) / frame;
                        return failed(sent + done as u64, "deadline passed".into());
                    }
                }
                Err(e) => {
                    let done = (n * frame - rest.len()) / frame;
                    return failed(sent + done as u64, format!("TLS write: {e}"));
                }
            }
        }
        sent += n as u64;
    }
    // Flush what rustls still holds before the clock stops for this sender.
    while tls.conn.wants_write() {
        match tls.conn.write_tls(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if retryable(&e) && Instant::now() < share.deadline => {}
            Err(e) => return failed(sent, format!("TLS write: {e}")),
        }
    }
    let finished = Instant::now();
    let error = tls_close(tls).err().map(|e| format!("TLS close: {e}"));
    Sent {
        messages: sent,
        finished: Some(finished),
        error,
    }
}

/// `share.count` TLS connections to 127.0.0.1:`port`, one after another: connect, full
/// handshake, one newline-framed message (so that the daemon's `written` counts completed
/// connections and the file shows each one), `close_notify`, and the wait for the daemon to
/// close.
pub fn tls_handshakes(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
    share: Share,
    start: &Barrier,
) -> Sent {
    let mut msg = vec![b'\n'; MESSAGE_BYTES + 1];
    render(&mut msg[..MESSAGE_BYTES], share.first_seq);
    start.wait();
    let mut done = 0u64;
    while done < share.count {
        if Instant::now() > share.deadline {
            return failed(done, "deadline passed".into());
        }
        set_seq(&mut msg, share.first_seq + done);
        let one = tls_connect(port, config).and_then(|mut tls| {
            tls.write_all(&msg)?;
            tls_close(tls)
        });
        if let Err(e) = one {
            return failed(done, format!("connection {}: {e}", done + 1));
        }
        done += 1;
    }
    Sent {
        messages: done,
        finished: Some(Instant::now()),
        error: None,
    }
}

/// Waits until `sent` messages are due at `rate` per second since `begun`.
fn pace(begun: Instant, sent: u64, rate: u64) {
    let due = begun + Duration::from_secs_f64(sent as f64 / rate as f64);
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn failed(messages: u64, error: String) -> Sent {
    Sent {
        messages,
        finished: Some(Instant::now()),
        error: Some(error),
    }
}

/// Checks the message layout once at startup (a `harness = false` bench runs no `#[test]`).
pub fn self_check() {
    let mut m = [0u8; MESSAGE_BYTES];
    render(&mut m, 42);
    assert!(m.starts_with(HEADER));
    assert_eq!(parse_seq(&m), Some(42));
    set_seq(&mut m, 9_876_543_210);
    assert_eq!(parse_seq(&m), Some(9_876_543_210));
    assert!(!m.contains(&b'\n'));
    render_with(&mut m, FORWARDED_HEADER, 7);
    assert!(m.starts_with(FORWARDED_HEADER));
    set_seq_at(&mut m, FORWARDED_HEADER.len() + SEQ_TAG.len(), 1_234);
    assert_eq!(parse_seq(&m), Some(1_234));
    Body::Json.render(&mut m, 77);
    assert!(m.starts_with(HEADER) && m.ends_with(b"}"));
    assert_eq!(parse_seq(&m), Some(77));
    Body::Json.set_seq(&mut m, 9_876_543_210);
    assert_eq!(parse_seq(&m), Some(9_876_543_210));
    assert!(!m.contains(&b'\n'));
}
