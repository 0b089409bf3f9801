//! The file writer: one dedicated thread per file output, fed whole-line chunks by the input
//! tasks over a bounded channel.
//!
//! - Chunks wait in memory until `buffer_bytes` are pending, the burst they came in has ended
//!   ([`BURST_END`] without a new chunk), or `flush_interval` has passed since the oldest,
//!   then go to the kernel in one `writev`. So a busy file is written in large batches, a
//!   quiet one promptly, and no line waits longer than `flush_interval`. With `sync`, an
//!   `fdatasync` follows each write. None of this runs on an input task, so a slow disk never stalls
//!   parsing; a full channel does push back on stream inputs, which is what keeps TCP
//!   lossless.
//! - Missing directories are created; a file logwell creates gets the configured owner,
//!   group and mode.
//! - A write or open that fails (permissions, disk full, a vanished directory) is counted
//!   and retried every second. Meanwhile up to [`MAX_BACKLOG_BYTES`] wait; past that the
//!   oldest chunks are dropped and counted, so one broken file never blocks the others.
//! - A reopen request (SIGHUP, as logrotate sends) writes what is pending, then reopens the
//!   path. When every sender is gone, the writer writes the rest, `fsync`s and exits.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::{Chunk, WriterCommand};
use crate::config::FileSettings;
use crate::stats::OutputStats;

/// Most bytes kept in memory for a file that cannot be written.
pub const MAX_BACKLOG_BYTES: usize = 16 * 1024 * 1024;

const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// A burst of lines has ended when no chunk came for this long; its lines are written then,
/// without waiting for `flush_interval`.
const BURST_END: Duration = Duration::from_millis(10);

/// The state of one file writer thread.
pub(crate) struct FileWriter {
    pub(crate) name: String,
    pub(crate) settings: FileSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
    pub(crate) reopen: watch::Receiver<u64>,
}

impl FileWriter {
    /// Runs until every sender is dropped. Call on a dedicated thread inside
    /// `Handle::block_on`: the writes block, the waiting does not.
    pub(crate) async fn run(mut self) {
        let mut file = self.open().ok();
        let mut pending: Vec<Chunk> = Vec::new();
        let mut pending_bytes = 0usize;
        // When the oldest pending chunk and the latest one arrived, and when to retry a write
        // that failed.
        let mut first_at = Instant::now();
        let mut last_at = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut reopen_open = true;
        loop {
            let deadline = match (pending.is_empty(), retry_at) {
                (true, _) => None,
                (false, Some(retry)) => Some(retry),
                (false, None) => {
                    Some((first_at + self.settings.flush_interval).min(last_at + BURST_END))
                }
            };
            tokio::select! {
                // Reopen and the timer come first: a channel that is never empty under load
                // must not starve them.
                biased;
                changed = self.reopen.changed(), if reopen_open => {
                    reopen_open = changed.is_ok();
                    if changed.is_ok() {
                        self.write_pending(&mut file, &mut pending, &mut pending_bytes);
                        drop(file.take());
                        file = self.open().ok();
                        tracing::debug!(output = %self.name, path = %self.settings.path.display(), "reopened");
                    }
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    retry_at = self.write_pending(&mut file, &mut pending, &mut pending_bytes);
                }
                Some(command) = self.ctl.recv() => match command {
                    WriterCommand::Reconfigure { name, settings, stats } => {
                        self.write_pending(&mut file, &mut pending, &mut pending_bytes);
                        tracing::debug!(output = %name, "reconfigured");
                        self.name = name;
                        self.settings = settings;
                        self.stats = stats;
                    }
                },
                chunk = self.rx.recv() => match chunk {
                    Some(chunk) => {
                        last_at = Instant::now();
                        if pending.is_empty() {
                            first_at = last_at;
                        }
                        pending_bytes += chunk.data.len();
                        pending.push(chunk);
                        if retry_at.is_some() {
                            self.enforce_backlog(&mut pending, &mut pending_bytes);
                        } else if pending_bytes >= self.settings.buffer_bytes {
                            retry_at = self.write_pending(&mut file, &mut pending, &mut pending_bytes);
                        }
                    }
                    None => break,
                },
            }
        }
        // Every sender is gone: write the rest (retrying a little), then make it durable.
        for _ in 0..3 {
            if self
                .write_pending(&mut file, &mut pending, &mut pending_bytes)
                .is_none()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !pending.is_empty() {
            let lost: u64 = pending.iter().map(|c| c.messages).sum();
            self.stats.dropped.fetch_add(lost, Relaxed);
            tracing::error!(output = %self.name, path = %self.settings.path.display(), lost, "could not write messages before exiting");
        }
        if let Some(f) = &file {
            if let Err(e) = f.sync_all() {
                tracing::warn!(output = %self.name, error = %e, "fsync at exit failed");
            }
        }
    }

    /// Opens the file for appending, creating it and its directories as configured.
    fn open(&self) -> io::Result<File> {
        let s = &self.settings;
        if let Some(dir) = s.path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let result = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(s.mode)
            .open(&s.path);
        let file = match result {
            Ok(f) => {
                // New file: the umask may have narrowed the mode; set it exactly, and the owner.
                f.set_permissions(std::fs::Permissions::from_mode(s.mode))?;
                if s.owner.is_some() || s.group.is_some() {
                    std::os::unix::fs::fchown(&f, s.owner, s.group)?;
                }
                f
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                OpenOptions::new().append(true).open(&s.path)?
            }
            Err(e) => return Err(e),
        };
        Ok(file)
    }

    /// Writes every pending chunk. Returns the next deadline: `None` when all was written, a
    /// retry time when not.
    fn write_pending(
        &self,
        file: &mut Option<File>,
        pending: &mut Vec<Chunk>,
        pending_bytes: &mut usize,
    ) -> Option<Instant> {
        if pending.is_empty() {
            return None;
        }
        let result = match file {
            Some(f) => write_all_chunks(f, pending, self.settings.sync),
            None => match self.open() {
                Ok(f) => {
                    let r = write_all_chunks(&f, pending, self.settings.sync);
                    *file = Some(f);
                    r
                }
                Err(error) => Err(WriteFailure {
                    error,
                    whole_chunks: 0,
                    partial_bytes: 0,
                }),
            },
        };
        match result {
            Ok(()) => {
                let messages: u64 = pending.iter().map(|c| c.messages).sum();
                self.stats.written.fetch_add(messages, Relaxed);
                self.stats.bytes.fetch_add(*pending_bytes as u64, Relaxed);
                pending.clear();
                *pending_bytes = 0;
                None
            }
            Err(WriteFailure {
                error,
                whole_chunks,
                partial_bytes,
            }) => {
                let done: Vec<Chunk> = pending.drain(..whole_chunks).collect();
                let messages: u64 = done.iter().map(|c| c.messages).sum();
                let bytes = done.iter().map(|c| c.data.len()).sum::<usize>() + partial_bytes;
                self.stats.written.fetch_add(messages, Relaxed);
                self.stats.bytes.fetch_add(bytes as u64, Relaxed);
                *pending_bytes -= bytes;
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::warn!(output = %self.name, path = %self.settings.path.display(), error = %error, pending_bytes = *pending_bytes, "cannot write; retrying every second");
                *file = None;
                self.enforce_backlog(pending, pending_bytes);
                Some(Instant::now() + RETRY_INTERVAL)
            }
        }
    }

    /// Drops the oldest chunks (never a partly written one) while more than
    /// [`MAX_BACKLOG_BYTES`] wait for a file that cannot be written.
    fn enforce_backlog(&self, pending: &mut Vec<Chunk>, pending_bytes: &mut usize) {
        let mut dropped = 0;
        while *pending_bytes > MAX_BACKLOG_BYTES {
            let victim = usize::from(pending.first().is_some_and(|c| c.partly_written));
            if victim >= pending.len() {
                break;
            }
            let c = pending.remove(victim);
            *pending_bytes -= c.data.len();
            dropped += c.messages;
        }
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Relaxed);
            tracing::error!(output = %self.name, path = %self.settings.path.display(), dropped, "file still unwritable with 16 MiB waiting: oldest messages dropped");
        }
    }
}

/// How far a failed `write_all_chunks` got.
#[derive(Debug)]
struct WriteFailure {
    error: io::Error,
    /// Chunks written entirely, from the front.
    whole_chunks: usize,
    /// Bytes written of the next chunk, which was cut to its unwritten rest.
    partial_bytes: usize,
}

/// Writes every chunk with as few `writev` calls as possible. On error, reports how far it
/// got and cuts the partly written chunk to its unwritten rest, marking it, so a retry
/// continues where the kernel stopped: a line is never written twice.
fn write_all_chunks(mut f: &File, chunks: &mut [Chunk], sync: bool) -> Result<(), WriteFailure> {
    let mut first = 0;
    let mut offset = 0; // bytes of chunks[first] already written
    while first < chunks.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity((chunks.len() - first).min(1024));
        slices.push(IoSlice::new(&chunks[first].data[offset..]));
        for c in chunks[first + 1..].iter().take(1023) {
            slices.push(IoSlice::new(&c.data));
        }
        let error = match f.write_vectored(&slices) {
            Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
            Ok(mut n) => {
                while n > 0 && first < chunks.len() {
                    let left = chunks[first].data.len() - offset;
                    if n >= left {
                        n -= left;
                        first += 1;
                        offset = 0;
                    } else {
                        offset += n;
                        n = 0;
                    }
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => e,
        };
        if offset > 0 {
            chunks[first].data.drain(..offset);
            chunks[first].partly_written = true;
        }
        return Err(WriteFailure {
            error,
            whole_chunks: first,
            partial_bytes: offset,
        });
    }
    if sync {
        // The data is in the page cache; a failed sync is reported, not rewritten.
        if let Err(e) = f.sync_data() {
            tracing::warn!(error = %e, "fdatasync failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(s: &str, messages: u64) -> Chunk {
        Chunk {
            data: s.as_bytes().to_vec(),
            messages,
            partly_written: false,
        }
    }

    #[test]
    fn chunks_are_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = File::create(&p).unwrap();
        let mut chunks = vec![
            chunk("a\n", 1),
            chunk("b\nc\n", 2),
            chunk("", 0),
            chunk("d\n", 1),
        ];
        write_all_chunks(&f, &mut chunks, true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\nb\nc\nd\n");
    }

    #[test]
    fn a_failed_write_reports_whole_chunks_only() {
        let f = File::open("/dev/null").unwrap(); // opened read-only: every write fails
        let mut chunks = vec![chunk("a\n", 1)];
        let failure = write_all_chunks(&f, &mut chunks, false).unwrap_err();
        assert_eq!((failure.whole_chunks, failure.partial_bytes), (0, 0));
        assert_eq!(chunks[0].data, b"a\n");
    }
}
