//! The load generator of the end-to-end benchmark: pre-rendered 200-byte syslog messages sent
//! over TCP (newline framing, big `write`s), UDP and Unix datagram sockets (`sendmmsg` in
//! batches of [`BATCH`]).
//!
//! It must stay cheap, because it shares the machine with the daemon it measures: messages are
//! rendered once into a large buffer and only their sequence numbers are rewritten before each
//! repeat. Every message carries a unique sequence number (`seq=NNNNNNNNNN`), so the benchmark
//! can check the output file for loss and duplicates afterwards. It never retries a message:
//! the count sent is exact, and every loop ends by count or by the deadline.

use std::io::{self, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The syslog header of every message (RFC 3164, PRI 13 = user.notice).
pub const HEADER: &[u8] = b"<13>Nov 21 09:41:03 benchhost bench[1234]: ";
/// Every message is exactly this long, without its framing newline.
pub const MESSAGE_BYTES: usize = 200;
/// Marks the sequence number inside the message text.
pub const SEQ_TAG: &[u8] = b"seq=";
/// Digits of the sequence number.
pub const SEQ_DIGITS: usize = 10;
/// Offset of the first sequence digit inside a message.
const SEQ_AT: usize = HEADER.len() + SEQ_TAG.len();
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

/// Writes one message with sequence number `seq` into `out` (exactly [`MESSAGE_BYTES`]).
fn render(out: &mut [u8], seq: u64) {
    debug_assert_eq!(out.len(), MESSAGE_BYTES);
    out[..HEADER.len()].copy_from_slice(HEADER);
    out[HEADER.len()..SEQ_AT].copy_from_slice(SEQ_TAG);
    set_seq(out, seq);
    out[SEQ_AT + SEQ_DIGITS] = b' ';
    const FILL: &[u8] = b"the quick brown fox jumps over the lazy dog 0123456789 ";
    for (i, b) in out[SEQ_AT + SEQ_DIGITS + 1..].iter_mut().enumerate() {
        *b = FILL[i % FILL.len()];
    }
}

/// Rewrites the sequence number of an already rendered message.
fn set_seq(msg: &mut [u8], mut seq: u64) {
    for b in msg[SEQ_AT..SEQ_AT + SEQ_DIGITS].iter_mut().rev() {
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

/// Sends `share` over one TCP connection to 127.0.0.1:`port`, newline-framed. Connects first,
/// then waits on `start` so that connection setup is not timed.
pub fn tcp(port: u16, share: Share, start: &Barrier) -> Sent {
    let frame = MESSAGE_BYTES + 1;
    let per_buffer = share.count.clamp(1, STREAM_BUFFER_MESSAGES) as usize;
    let mut buf = vec![b'\n'; per_buffer * frame];
    for (i, m) in buf.chunks_exact_mut(frame).enumerate() {
        render(&mut m[..MESSAGE_BYTES], share.first_seq + i as u64);
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
                set_seq(m, share.first_seq + sent + i as u64);
            }
        }
        // `write_all` gives up on a timeout; keep the partial progress and retry the rest.
        let mut rest = &buf[..n * frame];
        while !rest.is_empty() {
            match sock.write(rest) {
                Ok(0) => return failed(sent, "connection closed by logwelld".into()),
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

/// Sends `share` as UDP datagrams to 127.0.0.1:`port`; at most `rate` messages per second when
/// given, else as fast as `sendmmsg` goes.
pub fn udp(port: u16, share: Share, rate: Option<u64>, start: &Barrier) -> Sent {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.connect(("127.0.0.1", port)).map(|()| s))
        .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s));
    start.wait();
    match sock {
        Ok(s) => sendmmsg_loop(s.as_raw_fd(), share, rate),
        Err(e) => failed(0, format!("udp socket: {e}")),
    }
}

/// Sends `share` as datagrams to the Unix datagram socket at `path` (blocking: the kernel
/// makes the sender wait while the daemon's queue is full, so nothing is lost).
pub fn unix_dgram(path: &Path, share: Share, start: &Barrier) -> Sent {
    let sock = UnixDatagram::unbound()
        .and_then(|s| s.connect(path).map(|()| s))
        .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s));
    start.wait();
    match sock {
        Ok(s) => sendmmsg_loop(s.as_raw_fd(), share, None),
        Err(e) => failed(0, format!("unix socket {}: {e}", path.display())),
    }
}

/// Sends on a connected datagram socket in `sendmmsg` batches of [`BATCH`].
fn sendmmsg_loop(fd: i32, share: Share, rate: Option<u64>) -> Sent {
    let mut buf = vec![0u8; BATCH * MESSAGE_BYTES];
    for (i, m) in buf.chunks_exact_mut(MESSAGE_BYTES).enumerate() {
        render(m, share.first_seq + i as u64);
    }
    let begun = Instant::now();
    let mut sent = 0u64;
    while sent < share.count {
        let n = (share.count - sent).min(BATCH as u64) as usize;
        if sent > 0 {
            for (i, m) in buf.chunks_exact_mut(MESSAGE_BYTES).take(n).enumerate() {
                set_seq(m, share.first_seq + sent + i as u64);
            }
        }
        // The headers point into `buf`, which does not move while they live.
        let mut iov: Vec<libc::iovec> = buf
            .chunks_exact_mut(MESSAGE_BYTES)
            .take(n)
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
        let mut done = 0usize;
        while done < n {
            // SAFETY: `hdrs[done..n]` are valid headers whose single iovec points into `buf`;
            // the socket is connected, so no address is needed.
            let r =
                unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr().add(done), (n - done) as u32, 0) };
            if r >= 0 {
                done += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            let transient = retryable(&e)
                || matches!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS) | Some(libc::ECONNREFUSED)
                );
            if !transient {
                return failed(sent + done as u64, format!("sendmmsg: {e}"));
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
}
