//! The floor of the side-by-side benchmark (`compare`): a trivial receiver that only reads the
//! socket and appends the bytes to a file, with no syslog parsing. It shows how close a daemon
//! gets to what the machine allows with this sender on the same CPUs.
//!
//! It runs as its own process (the `compare` binary started again with `--floor`), so that its
//! CPU time and peak RSS are measured exactly as a daemon's. What it does:
//! - always listens on TCP 127.0.0.1:`port` (also the readiness check of every case): one
//!   thread per connection reads 256 KiB at a time and appends what it read up to the last
//!   complete frame with one `write(2)` on a shared `O_APPEND` file. Cutting at a frame edge
//!   (the last LF, or walking the octet counts) is the least it must do so that concurrent
//!   connections do not interleave inside a message; nothing else is looked at;
//! - with `udp`, also a UDP socket on the same port (`SO_RCVBUF` as given); with `unix`, a Unix
//!   datagram socket at the given path: `recvmmsg` in batches of 64, each datagram plus an LF
//!   gathered into a 64 KiB buffer, written when full or when the socket is idle for 10 ms.
//!
//! It stops on SIGTERM (the default action) or SIGKILL: no state is kept, the file holds what
//! was written.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Bytes read from a stream at a time.
const STREAM_READ: usize = 256 * 1024;
/// Datagrams per `recvmmsg`.
const DGRAM_BATCH: usize = 64;
/// Room for one datagram.
const DGRAM_MAX: usize = 8192;
/// Bytes gathered before a `write`.
const DGRAM_WRITE: usize = 64 * 1024;

/// What the floor receives besides TCP.
pub enum Extra<'a> {
    None,
    Udp { rcvbuf: usize },
    Unix { path: &'a Path },
}

/// Runs the floor until it is killed. `out` is created (or appended to).
pub fn run(port: u16, extra: Extra<'_>, out: &Path) -> Result<(), String> {
    let file = Arc::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .map_err(|e| format!("{}: {e}", out.display()))?,
    );
    match extra {
        Extra::None => {}
        Extra::Udp { rcvbuf } => {
            let sock =
                UdpSocket::bind(("127.0.0.1", port)).map_err(|e| format!("udp bind: {e}"))?;
            let bytes = rcvbuf as libc::c_int;
            // SAFETY: setsockopt with a pointer to a c_int of the right size.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&bytes as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            let file = Arc::clone(&file);
            std::thread::spawn(move || dgram_loop(sock.as_raw_fd(), &file, &sock));
        }
        Extra::Unix { path } => {
            let sock = UnixDatagram::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file = Arc::clone(&file);
            std::thread::spawn(move || dgram_loop(sock.as_raw_fd(), &file, &sock));
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("tcp bind: {e}"))?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let file = Arc::clone(&file);
        std::thread::spawn(move || stream_loop(conn, &file));
    }
    Ok(())
}

/// Reads one connection and appends its complete frames.
fn stream_loop(mut conn: TcpStream, mut file: &File) {
    let mut buf = vec![0u8; STREAM_READ];
    let mut have = 0;
    loop {
        let n = match conn.read(&mut buf[have..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        have += n;
        let cut = complete(&buf[..have]);
        if cut > 0 {
            if file.write_all(&buf[..cut]).is_err() {
                return;
            }
            buf.copy_within(cut..have, 0);
            have -= cut;
        }
        if have == buf.len() {
            // A frame longer than the buffer: write it as it is.
            let _ = file.write_all(&buf[..have]);
            have = 0;
        }
    }
    let _ = file.write_all(&buf[..have]);
}

/// The end of the last complete frame in `b`: octet counting when `b` starts with a digit,
/// else the byte after the last LF.
fn complete(b: &[u8]) -> usize {
    if b.first().is_some_and(u8::is_ascii_digit) {
        let mut at = 0;
        loop {
            let (mut len, mut i) = (0usize, at);
            while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit() && i - at < 9) {
                len = len * 10 + usize::from(d - b'0');
                i += 1;
            }
            if b.get(i) != Some(&b' ') || b.len() < i + 1 + len {
                return at;
            }
            at = i + 1 + len;
        }
    }
    memchr::memrchr(b'\n', b).map_or(0, |i| i + 1)
}

/// Receives datagrams on `fd` (kept open by `_owner`) and appends each with an LF.
fn dgram_loop<T>(fd: i32, mut file: &File, _owner: &T) {
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 10_000,
    };
    // SAFETY: setsockopt with a pointer to a timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut bufs = vec![0u8; DGRAM_BATCH * DGRAM_MAX];
    let mut out = Vec::with_capacity(DGRAM_WRITE + DGRAM_BATCH * (DGRAM_MAX + 1));
    loop {
        let mut iov: Vec<libc::iovec> = bufs
            .chunks_exact_mut(DGRAM_MAX)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
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
        // SAFETY: every header points at its own DGRAM_MAX bytes of `bufs`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                DGRAM_BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n > 0 {
            for (h, b) in hdrs
                .iter()
                .zip(bufs.chunks_exact(DGRAM_MAX))
                .take(n as usize)
            {
                out.extend_from_slice(&b[..h.msg_len as usize]);
                out.push(b'\n');
            }
            if out.len() < DGRAM_WRITE {
                continue;
            }
        } else {
            let e = std::io::Error::last_os_error();
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !out.is_empty() {
            if file.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}
