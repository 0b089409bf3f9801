//! The file writer: one dedicated thread per file output, fed whole-line chunks by the input
//! tasks over a bounded channel.
//!
//! - When a chunk comes, the writer takes every other chunk already queued (`try_recv`, up to
//!   `buffer_bytes`, or `flush_interval` after the first), then writes them with one `writev`.
//!   Batching follows from the load, with no timer: a quiet file's line is written as soon as
//!   it arrives, and a busy file's chunks pile up in the channel while the writer writes, so
//!   its next `writev` takes them all. With `sync`, an `fdatasync` follows each write (and so
//!   each batch grows while it runs). None of this runs on an input task, so a slow disk
//!   never stalls parsing; a full channel does push back on stream inputs, which is what
//!   keeps TCP lossless.
//! - Missing directories are created; a file logwell creates gets the configured owner,
//!   group and mode.
//! - A write or open that fails (permissions, disk full, a vanished directory) is counted
//!   and retried every second. Meanwhile up to `backlog_bytes` (16 MiB) wait; past that the
//!   writer takes no more chunks: the channel fills and the inputs that feed this file wait,
//!   which slows TCP and Unix stream senders (nothing they sent is lost) and lets the kernel
//!   drop, and count, UDP datagrams. When the space comes back, writing resumes by itself.
//!   Only when the daemon stops while the file is still unwritable are the waiting lines
//!   dropped, counted and logged.
//! - A reopen request (SIGHUP, as logrotate sends) writes what is pending, then reopens the
//!   path. When every sender is gone, the writer writes the rest, `fsync`s and exits.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::{Chunk, WriterCommand};
use crate::config::FileSettings;
use crate::host::fsops;
use crate::stats::OutputStats;
use crate::store::rotate::{self, Retention};

const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The state of one file writer thread.
pub(crate) struct FileWriter {
    pub(crate) name: String,
    pub(crate) settings: FileSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
    pub(crate) reopen: watch::Receiver<u64>,
    pub(crate) retention: Arc<Retention>,
    /// Where written chunks' buffers go back to the inputs.
    pub(crate) buffers: Arc<super::Buffers>,
    pub(crate) file: Option<File>,
    pub(crate) pending: Vec<Chunk>,
    pub(crate) pending_bytes: usize,
    /// Bytes in the live file, as far as this writer knows.
    pub(crate) size: u64,
    /// The daemon is stopping (see [`WriterCommand::Closing`]).
    pub(crate) closing: bool,
    /// Live followers woken last (see [`WAKE_EVERY`]), and whether a write since wants them
    /// woken again.
    pub(crate) woke_at: Instant,
    pub(crate) wake_due: bool,
}

/// Live followers (`OutputStats::wake`) are woken at most this often while more chunks wait
/// in the writer's channel (under load): each wake costs the writer a notification per
/// waiting follower. A write that empties the channel wakes them at once, so a line that
/// arrives alone reaches followers as soon as it is written.
const WAKE_EVERY: Duration = Duration::from_millis(2);

/// How often the live path is checked for an external rename, delete or truncation.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl FileWriter {
    /// Runs until every sender is dropped. Call on a dedicated thread inside
    /// `Handle::block_on`: the writes block, the waiting does not.
    pub(crate) async fn run(mut self) {
        // Every file counts under the global [retention] limits, rotated by us or not.
        self.retention.register(&self.settings.path);
        self.start_rotation();
        self.reopen_file();
        let mut next_rotation = self.next_rotation();
        // When to retry a write that failed.
        let mut retry_at: Option<Instant> = None;
        let mut next_check = Instant::now() + CHECK_INTERVAL;
        let mut reopen_open = true;
        loop {
            // Lines wait between two turns of this loop only for a write that failed.
            let deadline = retry_at.filter(|_| !self.pending.is_empty());
            tokio::select! {
                // Reopen and the timers come first: a channel that is never empty under load
                // must not starve them.
                biased;
                changed = self.reopen.changed(), if reopen_open => {
                    reopen_open = changed.is_ok();
                    if changed.is_ok() {
                        self.write_pending();
                        self.reopen_file();
                        tracing::debug!(output = %self.name, path = %self.settings.path.display(), "reopened");
                    }
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    retry_at = self.write_pending();
                }
                _ = sleep_until(next_rotation.unwrap_or_else(Instant::now)), if next_rotation.is_some() => {
                    retry_at = self.write_pending();
                    if retry_at.is_none() && self.size > 0 {
                        let period = chrono::Local::now() - chrono::Duration::seconds(1);
                        let _ = self.rotate(rotate::Reason::Time(period));
                    }
                    next_rotation = self.next_rotation();
                }
                _ = sleep_until(next_check) => {
                    self.check_path();
                    next_check = Instant::now() + CHECK_INTERVAL;
                }
                _ = sleep_until(self.woke_at + WAKE_EVERY), if self.wake_due => self.wake_followers(),
                Some(command) = self.ctl.recv() => match command {
                    WriterCommand::Reconfigure { name, settings, stats } => {
                        self.write_pending();
                        tracing::debug!(output = %name, "reconfigured");
                        self.name = name;
                        self.settings = settings;
                        self.stats = stats;
                        self.start_rotation();
                        next_rotation = self.next_rotation();
                    }
                    WriterCommand::Ping(reply) => {
                        let _ = reply.send(());
                    }
                    WriterCommand::Closing => {
                        self.closing = true;
                        if retry_at.is_some() {
                            self.enforce_backlog();
                        }
                    }
                    WriterCommand::Rotate(reply) => {
                        retry_at = self.write_pending();
                        let result = match retry_at {
                            Some(_) => Err(format!("{}: cannot write the pending lines first", self.settings.path.display())),
                            None => self.rotate(rotate::Reason::Size).map_err(|e| format!("{}: {e}", self.settings.path.display())),
                        };
                        let _ = reply.send(result);
                    }
                },
                // While the file cannot be written and the backlog is full, take no more:
                // the senders wait instead of losing lines.
                chunk = self.rx.recv(), if retry_at.is_none() || self.closing || self.pending_bytes < self.settings.backlog_bytes => match chunk {
                    Some(chunk) => {
                        self.pending_bytes += chunk.data.len();
                        self.pending.push(chunk);
                        if retry_at.is_some() {
                            if self.closing {
                                self.enforce_backlog();
                            }
                        } else {
                            self.take_queued();
                            retry_at = self.write_pending();
                        }
                    }
                    None => break,
                },
            }
        }
        // Every sender is gone: write the rest (retrying a little), then make it durable.
        for _ in 0..3 {
            if self.write_pending().is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !self.pending.is_empty() {
            let lost: u64 = self.pending.iter().map(|c| c.messages).sum();
            self.stats.dropped.fetch_add(lost, Relaxed);
            tracing::error!(output = %self.name, path = %self.settings.path.display(), lost, "could not write messages before exiting");
        }
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_all() {
                tracing::warn!(output = %self.name, error = %e, "fsync at exit failed");
            }
        }
    }

    /// Takes the chunks already queued behind the one just received, so that one `writev`
    /// writes them all: until the channel is empty, `buffer_bytes` are pending, or
    /// `flush_interval` has passed (a channel that never empties still gets written).
    fn take_queued(&mut self) {
        let until = Instant::now() + self.settings.flush_interval;
        while self.pending_bytes < self.settings.buffer_bytes {
            let Ok(chunk) = self.rx.try_recv() else {
                break;
            };
            self.pending_bytes += chunk.data.len();
            self.pending.push(chunk);
            if Instant::now() >= until {
                break;
            }
        }
    }

    /// Recovers the set and, for time rotation, rotates a live file last written before the
    /// latest boundary (the daemon was down when it passed).
    fn start_rotation(&mut self) {
        let Some(r) = self.settings.rotation.clone() else {
            return;
        };
        if let Err(e) = rotate::recover(&self.settings.path, &r, &self.retention) {
            tracing::warn!(output = %self.name, error = %e, "cannot recover the rotated files");
        }
        if let (Some(every), Ok(meta)) = (r.every, std::fs::metadata(&self.settings.path)) {
            let boundary = rotate::last_boundary(chrono::Local::now(), every, r.at_hour);
            let written: chrono::DateTime<chrono::Local> = meta
                .modified()
                .map(Into::into)
                .unwrap_or_else(|_| chrono::Local::now());
            if meta.len() > 0 && written < boundary && self.file.is_none() {
                if let Err(e) = rotate::rotate(
                    &self.settings.path,
                    &r,
                    &self.retention,
                    rotate::Reason::Time(written),
                ) {
                    tracing::warn!(output = %self.name, error = %e, "cannot rotate at start");
                }
            }
        }
    }

    fn next_rotation(&self) -> Option<Instant> {
        let r = self.settings.rotation.as_ref()?;
        let next = rotate::next_boundary(chrono::Local::now(), r.every?, r.at_hour);
        Some(Instant::now() + rotate::until(next))
    }

    /// Rotates now: everything pending has been written.
    fn rotate(&mut self, reason: rotate::Reason) -> io::Result<std::path::PathBuf> {
        let policy = self
            .settings
            .rotation
            .clone()
            .unwrap_or_else(rotate::on_request_only);
        let rotated = rotate::rotate(&self.settings.path, &policy, &self.retention, reason);
        // Whether or not the rename worked, write to whatever is at the path now.
        self.reopen_file();
        rotated
    }

    /// Closes the file and opens the path again (creating it).
    fn reopen_file(&mut self) {
        drop(self.file.take());
        match self.open() {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Relaxed);
                tracing::warn!(output = %self.name, path = %self.settings.path.display(), error = %e, "cannot open; retrying at the next write");
            }
        }
    }

    /// Notices a rename or delete (reopens the path) and a truncation (`copytruncate`: goes on
    /// at the new end) done behind our back.
    fn check_path(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let Some(f) = &self.file else { return };
        let Ok(ours) = f.metadata() else { return };
        match std::fs::metadata(&self.settings.path) {
            Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {
                if ours.len() < self.size {
                    tracing::info!(output = %self.name, path = %self.settings.path.display(), "the file was truncated (copytruncate?); writing on at its new end");
                }
                self.size = ours.len();
            }
            _ => {
                tracing::info!(output = %self.name, path = %self.settings.path.display(), "the file was renamed or deleted; reopening it");
                self.write_pending();
                self.reopen_file();
            }
        }
    }

    /// Wakes live followers, or, while more chunks wait to be written and they were woken
    /// less than [`WAKE_EVERY`] ago, marks it due (the run loop's timer or the write that
    /// empties the channel does it then).
    fn wake_followers(&mut self) {
        let now = Instant::now();
        if self.rx.is_empty() || now >= self.woke_at + WAKE_EVERY {
            self.stats.wake.send_modify(|n| *n += 1);
            self.woke_at = now;
            self.wake_due = false;
        } else {
            self.wake_due = true;
        }
    }

    /// Opens the file for appending, creating it and its directories as configured.
    fn open(&self) -> io::Result<File> {
        let s = &self.settings;
        fsops::open_append(
            &s.path,
            &fsops::Create {
                mode: s.mode,
                owner: s.owner,
                group: s.group,
            },
        )
    }

    /// Writes every pending chunk, then rotates if the file reached `max_size`. Returns the
    /// retry time when the write failed, `None` when all was written.
    fn write_pending(&mut self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        if self.file.is_none() {
            match self.open() {
                Ok(f) => {
                    self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(f);
                }
                Err(error) => {
                    return self.write_failed(WriteFailure {
                        error,
                        whole_chunks: 0,
                        partial_bytes: 0,
                    })
                }
            }
        }
        let f = self.file.as_ref().expect("opened above");
        match write_all_chunks(f, &mut self.pending, self.settings.sync) {
            Ok(()) => {
                let messages: u64 = self.pending.iter().map(|c| c.messages).sum();
                self.stats.written.fetch_add(messages, Relaxed);
                self.stats
                    .bytes
                    .fetch_add(self.pending_bytes as u64, Relaxed);
                self.size += self.pending_bytes as u64;
                for chunk in self.pending.drain(..) {
                    self.buffers.give(chunk.data);
                }
                self.pending_bytes = 0;
                let full = self
                    .settings
                    .rotation
                    .as_ref()
                    .and_then(|r| r.max_size)
                    .is_some_and(|max| self.size >= max);
                if full {
                    if let Err(e) = self.rotate(rotate::Reason::Size) {
                        tracing::warn!(output = %self.name, error = %e, "cannot rotate");
                    }
                }
                // Live followers read the file now, not at their next poll.
                self.wake_followers();
                None
            }
            Err(failure) => self.write_failed(failure),
        }
    }

    fn write_failed(
        &mut self,
        WriteFailure {
            error,
            whole_chunks,
            partial_bytes,
        }: WriteFailure,
    ) -> Option<Instant> {
        let done: Vec<Chunk> = self.pending.drain(..whole_chunks).collect();
        let messages: u64 = done.iter().map(|c| c.messages).sum();
        let bytes = done.iter().map(|c| c.data.len()).sum::<usize>() + partial_bytes;
        self.stats.written.fetch_add(messages, Relaxed);
        self.stats.bytes.fetch_add(bytes as u64, Relaxed);
        self.pending_bytes -= bytes;
        self.size += bytes as u64;
        self.stats.errors.fetch_add(1, Relaxed);
        tracing::warn!(output = %self.name, path = %self.settings.path.display(), error = %error, pending_bytes = self.pending_bytes, "cannot write; retrying every second");
        self.file = None;
        if self.closing {
            self.enforce_backlog();
        }
        Some(Instant::now() + RETRY_INTERVAL)
    }

    /// Drops the oldest chunks (never a partly written one) while more than `backlog_bytes`
    /// wait for a file that cannot be written; only when the daemon is stopping.
    fn enforce_backlog(&mut self) {
        let mut dropped = 0;
        while self.pending_bytes > self.settings.backlog_bytes {
            let victim = usize::from(self.pending.first().is_some_and(|c| c.partly_written));
            if victim >= self.pending.len() {
                break;
            }
            let c = self.pending.remove(victim);
            self.pending_bytes -= c.data.len();
            dropped += c.messages;
        }
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Relaxed);
            tracing::error!(output = %self.name, path = %self.settings.path.display(), dropped, "stopping while the file is still unwritable: oldest waiting messages dropped");
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
            ..Chunk::default()
        }
    }

    /// Issue 34: the writer writes what it has as soon as nothing more is queued, not after
    /// a burst-end or `flush_interval` timer. No clock is read: the test only yields to the
    /// runtime, far fewer times than a timer of even a millisecond would take to fire.
    #[tokio::test]
    async fn issue_34_a_chunk_is_written_once_nothing_more_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        let text = format!(
            "[input.t]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5514\"\n[output.f]\ntype = \"file\"\npath = \"{}\"\nflush_interval_ms = 600000\nbuffer_bytes = 67108864\n[[rule]]\noutput = \"f\"\n",
            path.display()
        );
        let settings = crate::config::load_texts(vec![("t.toml".into(), text)]).unwrap();
        let crate::config::OutputKind::File(settings) = settings.outputs[0].kind.clone() else {
            unreachable!("a file output")
        };
        let (tx, rx) = mpsc::channel(8);
        let (_ctl_tx, ctl) = mpsc::unbounded_channel();
        let (_reopen_tx, reopen) = watch::channel(0);
        let writer = FileWriter {
            name: "f".into(),
            settings,
            stats: crate::stats::Stats::new().output("f"),
            rx,
            ctl,
            reopen,
            retention: rotate::Retention::new(Default::default()),
            buffers: Arc::default(),
            file: None,
            pending: Vec::new(),
            pending_bytes: 0,
            size: 0,
            closing: false,
            woke_at: Instant::now(),
            wake_due: false,
        };
        tokio::spawn(writer.run());
        let written = |want: &'static str| {
            let path = path.clone();
            async move {
                for _ in 0..100 {
                    if std::fs::read_to_string(&path).unwrap_or_default() == want {
                        return true;
                    }
                    tokio::task::yield_now().await;
                }
                false
            }
        };
        // Two chunks queued before the writer runs: written together.
        tx.send(chunk("a\n", 1)).await.unwrap();
        tx.send(chunk("b\n", 1)).await.unwrap();
        assert!(written("a\nb\n").await, "the lines waited");
        // A later one, alone, the same.
        tx.send(chunk("c\n", 1)).await.unwrap();
        assert!(written("a\nb\nc\n").await, "the line waited");
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
