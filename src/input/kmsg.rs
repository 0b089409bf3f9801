//! The kernel log input: reads `/dev/kmsg` records (`pri,seq,usec,flags;text` with
//! dictionary lines, split by [`crate::parse::kmsg`]) and feeds them to the pipeline as kern
//! messages (or with the facility a userspace writer gave).
//!
//! This module owns the device loop and the input's position in the kernel's ring buffer: the
//! last sequence number handed to the pipeline, kept in `STATE_DIR/kmsg-NAME.seq` (with this
//! boot's id) so a restart neither repeats nor skips a record. It does not parse bytes.
//!
//! # Where reading starts
//! - Saved position from this boot: from the start of the buffer, skipping records up to the
//!   saved sequence number. Records overwritten while logwell was down are counted as dropped.
//! - Saved position from an earlier boot: everything in the buffer (this boot's messages,
//!   as rsyslog's imklog does at every boot).
//! - No saved position (the first start ever): at the end, so a first start does not copy the
//!   whole ring buffer into the files; `dmesg` still shows it.
//!
//! The position is saved (temporary file, then rename) after a batch's lines have been
//! handed to the writers, at most once per [`SAVE_INTERVAL`], and always on stop. A crash can
//! so repeat at most that much; it never skips.
//!
//! # Reading
//! The device is non-blocking under tokio's [`AsyncFd`]: every `read(2)` returns exactly one
//! record. `EPIPE` means records were overwritten before we read them; the gap is counted in
//! the input's `dropped` from the sequence numbers and reading goes on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use super::{InputContext, InputError};
use crate::config::KmsgSettings;
use crate::parse::kmsg::{malformed_message, parse_record};

/// Read buffer size: the kernel's records are at most 8 KiB (`CONSOLE_EXT_LOG_MAX`); a read
/// with a smaller buffer fails with `EINVAL`.
const READ_BYTES: usize = 16 * 1024;

/// Records read per wake-up before the loop looks at its other duties.
const BATCH: usize = 64;

/// Dictionary pairs attached to one message; more are dropped (the kernel writes two or
/// three: `SUBSYSTEM`, `DEVICE`).
const MAX_FIELDS: usize = 16;

/// How often, at most, the position is saved while running.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a stopping input keeps reading what the kernel holds.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// journald's socket: where it exists, journald reads the kernel log already.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// This boot's id.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Why a kmsg input is idle where journald runs (`logwell stats` shows it).
pub const IDLE: &str = "journald reads the kernel log on this host (even_with_journald = true reads it anyway, and logs every kernel line twice)";

/// Opens the device (as root, before privileges are dropped), or nothing where journald
/// runs and the input is not told to read it anyway: then the device is not touched at all,
/// so a container without it (or whose device policy forbids it) is no fault.
pub fn open(name: &str, s: &KmsgSettings) -> Result<Option<File>, InputError> {
    if !s.even_with_journald && Path::new(JOURNAL_SOCKET).exists() {
        return Ok(None);
    }
    File::open(&s.path)
        .map(Some)
        .map_err(|source| InputError::Open {
            input: name.to_string(),
            what: s.path.display().to_string(),
            source,
        })
}

/// Spawns the reader on the device [`open`] returned. Must run inside the tokio runtime.
pub fn spawn(device: File, s: &KmsgSettings, ctx: InputContext) -> io::Result<()> {
    // `open` left the device alone where journald runs, unless told to read it anyway.
    if Path::new(JOURNAL_SOCKET).exists() {
        tracing::warn!(input = %ctx.name, "journald runs on this host and reads the kernel log already: every kernel message will be logged twice (by this input and through the journal); remove this input or stop forwarding kern from the journal");
    }
    let saved = SeqFile::new(&ctx.state_dir, &ctx.name);
    let position = saved.start(&ctx.name, &device);
    set_nonblocking(&device)?;
    // SAFETY: a `File` owns its descriptor and returns the same one from `as_raw_fd` until it
    // is dropped, which happens only with the `AsyncFd`.
    let device = unsafe { AsyncFd::register_with_interest(device, Interest::READABLE) }
        .map_err(io::Error::from)?;
    tracing::debug!(input = %ctx.name, path = %s.path.display(), "reading the kernel log");
    tokio::spawn(serve(device, saved, position, ctx));
    Ok(())
}

fn set_nonblocking(f: &File) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The wall-clock time of boot in microseconds since the epoch, as the kernel's record
/// times count it: `CLOCK_REALTIME − CLOCK_MONOTONIC`. The kernel stamps records with its
/// local clock, which like `CLOCK_MONOTONIC` stops during suspend, so this is right for
/// records made since the last resume (`CLOCK_BOOTTIME` would put them late by the time
/// suspended). Taken again at every batch, so a clock step or a resume is followed.
fn boot_time_us() -> i64 {
    fn now(clock: libc::clockid_t) -> i64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into `t`.
        unsafe { libc::clock_gettime(clock, &mut t) };
        t.tv_sec * 1_000_000 + t.tv_nsec / 1000
    }
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}

/// Where the input stands in the ring buffer.
#[derive(Debug)]
struct Position {
    /// The sequence number expected next; `None` until the first record after a start at
    /// the end.
    next: Option<u64>,
    /// Records below this were handed on by an earlier run.
    skip_below: u64,
    /// The last sequence number saved.
    saved: Option<u64>,
    /// This boot's id, saved with the sequence number.
    boot_id: String,
}

impl Position {
    /// Whether to hand on the record `seq`; counts records the kernel overwrote before we
    /// read them.
    fn accept(&mut self, seq: u64, ctx: &InputContext) -> bool {
        if seq < self.skip_below {
            return false;
        }
        if let Some(next) = self.next {
            if seq > next {
                let lost = seq - next;
                ctx.stats.dropped.fetch_add(lost, Relaxed);
                tracing::warn!(input = %ctx.name, dropped = lost, first = next, "kernel messages were overwritten in the ring buffer before they could be read");
            }
        }
        self.next = Some(seq.saturating_add(1));
        true
    }

    /// The last sequence number handed on, if it is not saved yet.
    fn unsaved(&self) -> Option<u64> {
        let last = self.next?.checked_sub(1)?;
        (self.saved != Some(last) && last >= self.skip_below).then_some(last)
    }
}

/// The state file: `BOOT_ID SEQ\n`.
#[derive(Clone, Debug)]
struct SeqFile {
    path: PathBuf,
}

impl SeqFile {
    fn new(state_dir: &Path, name: &str) -> SeqFile {
        let safe: String = name
            .chars()
            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
            .collect();
        SeqFile {
            path: state_dir.join(format!("kmsg-{safe}.seq")),
        }
    }

    /// Decides where reading starts (see the module doc) and moves the device there.
    fn start(&self, name: &str, device: &File) -> Position {
        let boot_id = std::fs::read_to_string(BOOT_ID)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let saved = std::fs::read_to_string(&self.path).ok().and_then(|s| {
            let mut words = s.split_whitespace();
            let boot = words.next()?.to_string();
            let seq = words.next()?.parse::<u64>().ok()?;
            Some((boot, seq))
        });
        match saved {
            Some((boot, seq)) if boot == boot_id => {
                tracing::info!(input = %name, after = seq, "kernel log: resuming after the saved sequence number");
                Position {
                    next: Some(seq.saturating_add(1)),
                    skip_below: seq.saturating_add(1),
                    saved: Some(seq),
                    boot_id,
                }
            }
            Some(_) => {
                tracing::info!(input = %name, "kernel log: new boot; reading the whole kernel buffer");
                Position {
                    next: Some(0),
                    skip_below: 0,
                    saved: None,
                    boot_id,
                }
            }
            None => {
                // SAFETY: lseek on a descriptor we own.
                let r = unsafe { libc::lseek(device.as_raw_fd(), 0, libc::SEEK_END) };
                if r < 0 {
                    tracing::warn!(input = %name, error = %io::Error::last_os_error(), "kernel log: cannot seek to the end; reading the whole buffer");
                } else {
                    tracing::info!(input = %name, state = %self.path.display(), "kernel log: no saved position; reading new messages only (earlier ones: dmesg)");
                }
                Position {
                    next: None,
                    skip_below: 0,
                    saved: None,
                    boot_id,
                }
            }
        }
    }

    /// Writes `BOOT_ID SEQ` to a temporary file and renames it over the state file.
    fn save(&self, boot_id: &str, seq: u64) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp)?;
        writeln!(f, "{boot_id} {seq}")?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)
    }
}

/// The read loop's state besides the device.
struct Reader {
    ctx: InputContext,
    pipeline: crate::pipeline::Pipeline,
    file: SeqFile,
    position: Position,
    last_save: Option<Instant>,
    save_failed: bool,
}

impl Reader {
    /// Sends what is formatted, then saves the position if it moved and is due (or `force`).
    async fn flush(&mut self, force: bool) {
        self.pipeline.flush().await;
        let Some(seq) = self.position.unsaved() else {
            return;
        };
        if !force && self.last_save.is_some_and(|t| t.elapsed() < SAVE_INTERVAL) {
            return;
        }
        self.last_save = Some(Instant::now());
        let file = self.file.clone();
        let boot = self.position.boot_id.clone();
        let r = tokio::task::spawn_blocking(move || file.save(&boot, seq))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        match r {
            Ok(()) => {
                self.position.saved = Some(seq);
                if self.save_failed {
                    self.save_failed = false;
                    tracing::info!(input = %self.ctx.name, "kernel log position saved again");
                }
            }
            Err(e) if !self.save_failed => {
                self.save_failed = true;
                tracing::warn!(input = %self.ctx.name, path = %self.file.path.display(), error = %e, "cannot save the kernel log position: a restart may repeat messages (is state_dir writable?)");
            }
            Err(_) => {}
        }
    }

    /// Handles one record as read.
    fn record(&mut self, bytes: &[u8], boot_us: i64, source: &crate::message::Source) {
        match parse_record(bytes) {
            Ok(rec) => {
                if !self.position.accept(rec.seq, &self.ctx) {
                    return;
                }
                let mut store = [(&b""[..], &b""[..]); MAX_FIELDS];
                let n = rec.fill_dictionary(&mut store);
                let msg = rec.message(boot_us, &store[..n]);
                self.pipeline.push_message(msg, bytes.len(), source, None);
            }
            Err(e) => {
                tracing::debug!(input = %self.ctx.name, error = %e, "unreadable kernel log record");
                self.pipeline
                    .push_message(malformed_message(bytes), bytes.len(), source, None);
            }
        }
    }
}

/// One non-blocking read: one record.
fn read_record(device: &File, buf: &mut [u8]) -> io::Result<usize> {
    (&*device).read(buf)
}

/// Reads records until the input is stopped, then reads what the kernel still holds, saves
/// the position and returns.
async fn serve(device: AsyncFd<File>, file: SeqFile, position: Position, ctx: InputContext) {
    let _trackers = ctx.trackers.clone();
    let mut stop = ctx.stop.clone();
    let source = ctx.local_source(true);
    let mut r = Reader {
        pipeline: ctx.pipeline(),
        ctx: ctx.clone(),
        file,
        position,
        last_save: None,
        save_failed: false,
    };
    let mut buf = vec![0u8; READ_BYTES];
    // Once stopping: read what is there, but not past this deadline (a flood never ends).
    let mut drain_until: Option<Instant> = None;
    'outer: loop {
        if let Some(until) = drain_until {
            if Instant::now() >= until {
                tracing::warn!(input = %ctx.name, "stopped before the kernel log was read to its end: the kernel kept logging");
                break;
            }
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                ready = device.readable() => match ready {
                    // Readiness is cleared by `try_io` below when a read would block.
                    Ok(guard) => drop(guard),
                    Err(e) => {
                        tracing::error!(input = %ctx.name, error = %e, "kernel log device failed; input stops");
                        break;
                    }
                },
                _ = super::stopped(&mut stop) => drain_until = Some(Instant::now() + DRAIN_LIMIT),
                chore = r.pipeline.chore() => {
                    r.pipeline.run_chore(chore).await;
                    continue;
                }
            }
        }
        r.pipeline.begin();
        let boot_us = boot_time_us();
        for _ in 0..BATCH {
            // While draining, read directly: readiness may lag behind the last records.
            let read = match drain_until {
                Some(_) => read_record(device.get_ref(), &mut buf),
                None => device.try_io(Interest::READABLE, |f| read_record(f, &mut buf)),
            };
            match read {
                Ok(n) => {
                    r.record(&buf[..n.min(buf.len())], boot_us, &source);
                    if r.pipeline.needs_flush() {
                        r.flush(false).await;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if drain_until.is_some() {
                        break 'outer;
                    }
                    // Read to the end: the records go to the writers before the wait (a
                    // flush also saves the sequence number).
                    r.flush(false).await;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    // The next read returns the oldest record left; `accept` counts the gap.
                    tracing::debug!(input = %ctx.name, "kernel log records were overwritten before they were read");
                }
                Err(e) => {
                    tracing::warn!(input = %ctx.name, error = %e, "kernel log read failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
    r.flush(true).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_is_in_the_past() {
        let now = chrono::Utc::now().timestamp_micros();
        let boot = boot_time_us();
        assert!(boot <= now && boot > 0, "{boot} {now}");
    }

    #[test]
    fn seq_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = SeqFile::new(&dir.path().join("state"), "k/1");
        assert_eq!(f.path.file_name().unwrap(), "kmsg-k_1.seq");
        f.save("boot-a", 42).unwrap();
        assert_eq!(std::fs::read_to_string(&f.path).unwrap(), "boot-a 42\n");
        f.save("boot-a", 43).unwrap();
        assert_eq!(std::fs::read_to_string(&f.path).unwrap(), "boot-a 43\n");
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );
    }
}
