//! The `users` output: messages written to the terminals of logged-in users, as rsyslog's
//! `*.emerg :omusrmsg:*` does in Debian's default routing.
//!
//! - Who is logged in where comes from utmp ([`logged_in`], a pure reader over the file's
//!   bytes: `USER_PROCESS` records, their user and `ut_line`).
//! - One thread per output. Input tasks hand it lines without waiting
//!   ([`super::Layout::Lossy`]): when its small queue is full the lines are dropped and
//!   counted (`dropped`), so a stuck terminal can never stall the pipeline.
//! - Each terminal is opened non-blocking and without becoming our controlling terminal;
//!   a write that cannot finish within `write_timeout_ms` is abandoned.
//! - Only character devices below `/dev` are written, and a `ut_line` with `..` is ignored.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Chunk, WriterCommand};
use crate::config::UsersSettings;
use crate::stats::OutputStats;

/// Chunks the queue holds before input tasks drop lines for this output.
pub const QUEUE_CHUNKS: usize = 16;

/// A logged-in session: its user and terminal (`pts/3`, `tty1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The login name.
    pub user: String,
    /// The terminal below `/dev`.
    pub line: String,
}

/// `USER_PROCESS` sessions in utmp's bytes.
pub fn logged_in(utmp: &[u8]) -> Vec<Session> {
    let size = std::mem::size_of::<libc::utmpx>();
    utmp.chunks_exact(size)
        .filter_map(|rec| {
            // SAFETY: `rec` holds exactly size_of::<utmpx>() bytes, and utmpx is plain
            // integers and byte arrays: every bit pattern is valid.
            let u: libc::utmpx = unsafe { std::ptr::read_unaligned(rec.as_ptr().cast()) };
            if u.ut_type != libc::USER_PROCESS {
                return None;
            }
            let text = |field: &[libc::c_char]| -> String {
                let bytes: Vec<u8> = field
                    .iter()
                    .map(|&c| c as u8)
                    .take_while(|&b| b != 0)
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let line = text(&u.ut_line);
            let user = text(&u.ut_user);
            let safe = !line.is_empty()
                && !line.starts_with('/')
                && !line
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..");
            safe.then_some(Session { user, line })
        })
        .collect()
}

/// The broadcast text for `lines` (each ending in `\n`), with CR LF line ends.
pub fn banner(hostname: &str, lines: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "\r\n\x07Broadcast message from logwelld@{hostname} ({}):\r\n\r\n",
        chrono::Local::now().format("%a %b %e %H:%M:%S %Y")
    )
    .into_bytes();
    for line in lines.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The state of one users output's thread.
pub(crate) struct UsersWriter {
    pub(crate) name: String,
    pub(crate) settings: UsersSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
}

impl UsersWriter {
    /// Runs until every sender is dropped, on its own thread inside `Handle::block_on`.
    pub(crate) async fn run(mut self) {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        loop {
            tokio::select! {
                Some(command) = self.ctl.recv() => match command {
                    WriterCommand::Ping(reply) => {
                        let _ = reply.send(());
                    }
                    WriterCommand::Rotate(reply) => {
                        let _ = reply.send(Err(format!("output `{}` writes to terminals: nothing to rotate", self.name)));
                    }
                    WriterCommand::Reconfigure { .. } | WriterCommand::Closing => {}
                },
                chunk = self.rx.recv() => match chunk {
                    Some(chunk) => self.broadcast(&hostname, &chunk),
                    None => break,
                },
            }
        }
    }

    fn broadcast(&self, hostname: &str, chunk: &Chunk) {
        let utmp = match std::fs::read(&self.settings.utmp) {
            Ok(b) => b,
            Err(e) => {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::warn!(output = %self.name, utmp = %self.settings.utmp.display(), error = %e, "cannot read who is logged in");
                return;
            }
        };
        let text = banner(hostname, &chunk.data);
        let mut reached = 0;
        for s in logged_in(&utmp) {
            if !self.settings.users.is_empty() && !self.settings.users.contains(&s.user) {
                continue;
            }
            let tty = Path::new("/dev").join(&s.line);
            match write_tty(&tty, &text, self.settings.write_timeout) {
                Ok(()) => reached += 1,
                Err(e) => {
                    self.stats.errors.fetch_add(1, Relaxed);
                    tracing::debug!(output = %self.name, tty = %tty.display(), user = %s.user, error = %e, "cannot write to a terminal");
                }
            }
        }
        self.stats.written.fetch_add(chunk.messages, Relaxed);
        self.stats
            .bytes
            .fetch_add((text.len() * reached) as u64, Relaxed);
    }
}

/// Writes `text` to the terminal `tty` without blocking for longer than `timeout`.
pub fn write_tty(tty: &PathBuf, text: &[u8], timeout: Duration) -> io::Result<()> {
    let meta = std::fs::metadata(tty)?;
    if !meta.file_type().is_char_device() {
        return Err(io::Error::other("not a terminal"));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(tty)?;
    let deadline = Instant::now() + timeout;
    let mut done = 0;
    while done < text.len() {
        match f.write(&text[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "terminal is stuck"));
                }
                let mut fd = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
                // SAFETY: one valid pollfd for an open descriptor we own.
                unsafe { libc::poll(&mut fd, 1, ms) };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: libc::c_short, user: &str, line: &str) -> Vec<u8> {
        // SAFETY: utmpx is plain data; all zeroes is a valid (empty) record.
        let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
        u.ut_type = kind;
        for (d, s) in u.ut_user.iter_mut().zip(user.bytes()) {
            *d = s as libc::c_char;
        }
        for (d, s) in u.ut_line.iter_mut().zip(line.bytes()) {
            *d = s as libc::c_char;
        }
        let size = std::mem::size_of::<libc::utmpx>();
        // SAFETY: reading the bytes of a plain-data struct.
        unsafe { std::slice::from_raw_parts((&u as *const libc::utmpx).cast::<u8>(), size) }
            .to_vec()
    }

    #[test]
    fn utmp_lists_user_sessions_only() {
        let mut utmp = record(libc::USER_PROCESS, "alice", "pts/3");
        utmp.extend(record(libc::LOGIN_PROCESS, "LOGIN", "tty1"));
        utmp.extend(record(libc::USER_PROCESS, "mallory", "../etc/passwd"));
        utmp.extend(record(libc::USER_PROCESS, "bob", "tty2"));
        assert_eq!(
            logged_in(&utmp),
            vec![
                Session {
                    user: "alice".into(),
                    line: "pts/3".into()
                },
                Session {
                    user: "bob".into(),
                    line: "tty2".into()
                }
            ]
        );
    }

    #[test]
    fn banner_uses_crlf() {
        let b = banner("h", b"one\ntwo\n");
        let text = String::from_utf8(b).unwrap();
        assert!(text.contains("Broadcast message from logwelld@h"));
        assert!(text.ends_with("one\r\ntwo\r\n"), "{text:?}");
    }
}
