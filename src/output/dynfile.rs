//! The writer of a file output whose lines come as records: a templated path
//! (`/var/log/remote/{host}/{tag}.log`, one file per rendered path) and/or repeated-message
//! reduction (`reduce_repeats`). One thread per output, like [`super::file`]; it owns the
//! open files, never the input tasks.
//!
//! - **Records.** The input task renders the path straight into the chunk (no allocation
//!   per message) and lays out each message as `[key u64][path len u32][path][line len
//!   u32][line]` ([`super::records`], which also decodes them). `key` identifies the message
//!   for repeat reduction (0: none).
//! - **Containment.** Every rendered path is checked with
//!   [`PathTemplate::contains`](crate::render::template::PathTemplate::contains) before use; one
//!   that would leave the base directory goes to the fallback file and is counted
//!   (`fallback`). The sanitiser makes that impossible for field values; the check is the
//!   second line of defence.
//! - **Open files.** A bounded LRU (`max_open_files`): looking a path up is a hash of the
//!   rendered bytes, with no allocation on a hit; a miss closes the least recently written
//!   file (after writing what it holds) to open the new one. A file unwritten for
//!   `idle_close_secs` is closed. Every message is written: closing only ever follows a write.
//!   Lines of up to [`GATHER_ENTRIES`] files are gathered per burst (their descriptors are
//!   still bounded by `max_open_files`), so a burst spread over more senders than open files
//!   still opens each file once; memory stays bounded by the burst (64 chunks of 64 KiB) plus
//!   [`KEEP_CAPACITY`] per known file.
//! - **Writes.** Lines are gathered per file while a burst of chunks is drained, then each
//!   file gets one `write`. A failed open or write is counted and retried every second; a
//!   file holding more than [`FAILING_BUFFER`] unwritten bytes, or closed to make room while
//!   failing, drops them (counted).
//! - **Rotation** applies to each generated file as to a plain one: by size after a write,
//!   by time at the boundary (open files) or when a file last written before the latest
//!   boundary is opened again. **Retention by age** (`max_age_days`) also sweeps the base
//!   directory at start, on reload and every hour: files older than that (per-day files of
//!   a `{day}` path, old generations) are deleted, then the directories this emptied. Only
//!   files this output created, and their generations, are ever deleted: they are recorded
//!   in the state directory ([`crate::store::created`]); a name the template could render is not
//!   enough (`dpkg.log` beside `{host}.log`).
//! - **Repeats.** With `reduce_repeats`, a message identical (host, tag, pid, facility,
//!   severity, text) to the previous one in the same file is counted, not written; the count
//!   is written as "last message repeated N times" before the next different message, when
//!   the file is closed, or after [`REPEAT_FLUSH`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::records::file_records as records;
use super::{Chunk, WriterCommand};
use crate::config::FileSettings;
use crate::host::fsops;
use crate::message::{Event, Facility, Flags, Message, Severity, Source};
use crate::render::format::{format_line, TimeCache};
use crate::render::template::PathTemplate;
use crate::stats::OutputStats;
use crate::store::created::Created;
use crate::store::rotate::{self, Retention};

/// A failing file holding more unwritten bytes than this drops them.
pub const FAILING_BUFFER: usize = 1 << 20;

/// Repeats are reported at the latest this long after the first one.
pub const REPEAT_FLUSH: Duration = Duration::from_secs(30);

/// How often the base directory is swept for files past `max_age_days`.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Chunks drained from the channel before the gathered lines are written.
const BURST_CHUNKS: usize = 64;

/// Files whose lines can be gathered at once, whatever `max_open_files` is.
const GATHER_ENTRIES: usize = 4096;

/// Buffer capacity kept by a file between writes; more is given back. With
/// [`GATHER_ENTRIES`], what idle buffers may hold is bounded by 16 MiB.
const KEEP_CAPACITY: usize = 4 * 1024;

/// What makes two messages "the same" for repeat reduction; never 0.
pub(crate) fn repeat_key(ev: &Event<'_>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    ev.host().hash(&mut h);
    ev.msg.appname.hash(&mut h);
    ev.msg.procid.hash(&mut h);
    ev.msg.facility.hash(&mut h);
    ev.msg.severity.hash(&mut h);
    ev.msg.msg.hash(&mut h);
    h.finish().max(1)
}

/// One file the writer knows of.
struct KnownFile {
    /// The rendered path (the lookup key).
    path: Box<[u8]>,
    file: Option<File>,
    /// Lines gathered and not yet written, and how many messages they hold.
    buf: Vec<u8>,
    msgs: u64,
    /// Bytes in the live file, as far as this writer knows.
    size: u64,
    /// LRU order: the writer's sequence number at the last use.
    used_seq: u64,
    used_at: Instant,
    failing: bool,
    last_key: u64,
    repeats: u64,
    repeats_since: Instant,
}

/// The state of one record writer thread.
pub(crate) struct DynWriter {
    pub(crate) name: String,
    pub(crate) settings: FileSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
    pub(crate) reopen: watch::Receiver<u64>,
    pub(crate) retention: Arc<Retention>,
    entries: Vec<KnownFile>,
    index: HashMap<Box<[u8]>, usize>,
    dirty: Vec<usize>,
    seq: u64,
    /// Files open now (at most `max_open_files`).
    open: usize,
    time: TimeCache,
    source: Source,
    hostname: Vec<u8>,
    /// The files this output created: the only ones its age sweep deletes.
    created: Created,
}

impl DynWriter {
    pub(crate) fn new(
        name: String,
        settings: FileSettings,
        stats: Arc<OutputStats>,
        rx: mpsc::Receiver<Chunk>,
        ctl: mpsc::UnboundedReceiver<WriterCommand>,
        reopen: watch::Receiver<u64>,
        retention: Arc<Retention>,
    ) -> DynWriter {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.split('.').next().unwrap_or_default().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let created = Created::load(settings.dynamic.as_ref().and_then(|d| d.created.clone()));
        DynWriter {
            created,
            name,
            settings,
            stats,
            rx,
            ctl,
            reopen,
            retention,
            entries: Vec::new(),
            index: HashMap::new(),
            dirty: Vec::new(),
            seq: 0,
            open: 0,
            time: TimeCache::default(),
            source: Source {
                input: "logwelld".into(),
                peer: None,
                creds: None,
                default_host: hostname.as_str().into(),
                use_sender_timestamp: false,
                tls_peer: None,
            },
            hostname: hostname.into_bytes(),
        }
    }

    fn max_open(&self) -> usize {
        self.settings
            .dynamic
            .as_ref()
            .map_or(1, |d| d.max_open_files)
    }

    /// Most files known at once (buffers and repeat state; their descriptors are bounded by
    /// `max_open_files`), so that a burst to more hosts than files open gathers each host's
    /// lines before opening its file once.
    fn max_entries(&self) -> usize {
        self.max_open().max(GATHER_ENTRIES)
    }

    fn opened_one(&mut self) {
        self.open += 1;
        self.stats.open_files.store(self.open as u64, Relaxed);
    }

    /// Makes room for one more open file: writes and closes the least recently used one.
    fn close_lru_file(&mut self, except: usize) {
        let victim = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, e)| *i != except && e.file.is_some())
            .min_by_key(|(_, e)| e.used_seq)
            .map(|(i, _)| i);
        if let Some(v) = victim {
            self.write_entry(v);
            if self.entries[v].file.take().is_some() {
                closed_one(&mut self.open, &self.stats);
            }
        }
    }

    /// Runs until every sender is dropped. Call on a dedicated thread inside
    /// `Handle::block_on`.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_rotation = self.next_rotation();
        let mut next_sweep = Instant::now();
        let mut reopen_open = true;
        loop {
            tokio::select! {
                biased;
                changed = self.reopen.changed(), if reopen_open => {
                    reopen_open = changed.is_ok();
                    if changed.is_ok() {
                        self.close_all();
                        tracing::debug!(output = %self.name, "closed every file to reopen it");
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.flush_repeats(now);
                    self.retry_failing();
                    self.write_dirty();
                    self.close_idle(now);
                    if next_rotation.is_some_and(|t| t <= now) {
                        self.rotate_all(Some(chrono::Local::now() - chrono::Duration::seconds(1)));
                        next_rotation = self.next_rotation();
                    }
                    if next_sweep <= now {
                        self.sweep();
                        next_sweep = now + SWEEP_INTERVAL;
                    }
                }
                Some(command) = self.ctl.recv() => match command {
                    WriterCommand::Reconfigure { name, settings, stats } => {
                        self.write_dirty();
                        self.name = name;
                        let record = settings.dynamic.as_ref().and_then(|d| d.created.clone());
                        if record.as_deref() != self.created.file() {
                            self.created = Created::load(record);
                        }
                        self.settings = settings;
                        self.stats = stats;
                        next_rotation = self.next_rotation();
                        next_sweep = Instant::now();
                    }
                    WriterCommand::Ping(reply) => {
                        let _ = reply.send(());
                    }
                    WriterCommand::Closing => {}
                    WriterCommand::Rotate(reply) => {
                        let rotated = self.rotate_all(None);
                        let base = self.settings.dynamic.as_ref().map_or_else(|| self.settings.path.clone(), |d| d.template.base().to_path_buf());
                        let _ = reply.send(Ok(if rotated == 1 { base } else { base.join(format!("({rotated} files)")) }));
                    }
                },
                chunk = self.rx.recv() => match chunk {
                    Some(chunk) => {
                        self.take(&chunk);
                        // Receipts are let go of once the burst is written.
                        let mut taken = vec![chunk.receipt];
                        for _ in 1..BURST_CHUNKS {
                            match self.rx.try_recv() {
                                Ok(chunk) => {
                                    self.take(&chunk);
                                    taken.push(chunk.receipt);
                                }
                                Err(_) => break,
                            }
                        }
                        self.write_dirty();
                        drop(taken);
                    }
                    None => break,
                },
            }
        }
        // Every sender is gone: write the rest (retrying a little), then make it durable.
        for _ in 0..3 {
            self.flush_repeats_all();
            self.retry_failing();
            self.write_dirty();
            if self.entries.iter().all(|e| e.buf.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let lost: u64 = self.entries.iter().map(|e| e.msgs).sum();
        if lost > 0 {
            self.stats.dropped.fetch_add(lost, Relaxed);
            tracing::error!(output = %self.name, lost, "could not write messages before exiting");
        }
        for e in &self.entries {
            if let Some(f) = &e.file {
                if let Err(err) = f.sync_all() {
                    tracing::warn!(output = %self.name, error = %err, "fsync at exit failed");
                }
            }
        }
        self.open = 0;
        self.stats.open_files.store(0, Relaxed);
    }

    /// Sorts a chunk's records into their files' buffers.
    fn take(&mut self, chunk: &Chunk) {
        let now = Instant::now();
        for (key, path, line) in records(&chunk.data) {
            let idx = self.entry(path, now);
            let e = &mut self.entries[idx];
            if self.settings.reduce_repeats && key != 0 && key == e.last_key {
                if e.repeats == 0 {
                    e.repeats_since = now;
                }
                e.repeats += 1;
                self.stats.repeats.fetch_add(1, Relaxed);
                continue;
            }
            if e.repeats > 0 {
                let n = std::mem::take(&mut e.repeats);
                summary(
                    &mut self.time,
                    &self.source,
                    &self.hostname,
                    &self.settings,
                    n,
                    &mut e.buf,
                );
            }
            e.last_key = key;
            if e.buf.is_empty() {
                self.dirty.push(idx);
            }
            e.buf.extend_from_slice(line);
            e.msgs += 1;
        }
    }

    /// The entry for a rendered path (the output's own path when empty), made if needed.
    fn entry(&mut self, rendered: &[u8], now: Instant) -> usize {
        self.seq += 1;
        let plain;
        let path: &[u8] = match &self.settings.dynamic {
            None => {
                plain = self.settings.path.as_os_str().as_bytes();
                plain
            }
            Some(d) if d.template.contains(rendered) => rendered,
            Some(d) => {
                self.stats.fallback.fetch_add(1, Relaxed);
                tracing::debug!(output = %self.name, path = %String::from_utf8_lossy(rendered), "rendered path leaves the base directory: using the fallback file");
                plain = d.fallback.as_os_str().as_bytes();
                plain
            }
        };
        if let Some(&idx) = self.index.get(path) {
            let e = &mut self.entries[idx];
            e.used_seq = self.seq;
            e.used_at = now;
            return idx;
        }
        let path: Box<[u8]> = path.into();
        let entry = KnownFile {
            path: path.clone(),
            file: None,
            buf: Vec::new(),
            msgs: 0,
            size: 0,
            used_seq: self.seq,
            used_at: now,
            failing: false,
            last_key: 0,
            repeats: 0,
            repeats_since: now,
        };
        let idx = if self.entries.len() < self.max_entries() {
            self.entries.push(entry);
            self.entries.len() - 1
        } else {
            let victim = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used_seq)
                .map(|(i, _)| i)
                .expect("max_open_files is at least 1");
            let buf = self.retire(victim);
            self.entries[victim] = KnownFile { buf, ..entry };
            victim
        };
        self.index.insert(path, idx);
        idx
    }

    /// Writes what entry `idx` holds and closes it; returns its (empty) buffer for reuse.
    fn retire(&mut self, idx: usize) -> Vec<u8> {
        if self.entries[idx].repeats > 0 {
            self.write_repeats(idx);
        }
        self.write_entry(idx);
        let e = &mut self.entries[idx];
        if !e.buf.is_empty() {
            self.stats.dropped.fetch_add(e.msgs, Relaxed);
            tracing::error!(output = %self.name, path = %String::from_utf8_lossy(&e.path), lost = e.msgs, "closing a file that cannot be written: its waiting messages are dropped");
        }
        if e.file.take().is_some() {
            closed_one(&mut self.open, &self.stats);
        }
        self.index.remove(&e.path);
        self.dirty.retain(|&d| d != idx);
        let mut buf = std::mem::take(&mut e.buf);
        buf.clear();
        e.msgs = 0;
        buf
    }

    fn write_repeats(&mut self, idx: usize) {
        let e = &mut self.entries[idx];
        let n = std::mem::take(&mut e.repeats);
        if e.buf.is_empty() {
            self.dirty.push(idx);
        }
        summary(
            &mut self.time,
            &self.source,
            &self.hostname,
            &self.settings,
            n,
            &mut e.buf,
        );
    }

    fn flush_repeats(&mut self, now: Instant) {
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if e.repeats > 0 && now.duration_since(e.repeats_since) >= REPEAT_FLUSH {
                self.write_repeats(idx);
            }
        }
    }

    fn flush_repeats_all(&mut self) {
        for idx in 0..self.entries.len() {
            if self.entries[idx].repeats > 0 {
                self.write_repeats(idx);
            }
        }
    }

    fn retry_failing(&mut self) {
        for (idx, e) in self.entries.iter().enumerate() {
            if !e.buf.is_empty() && !self.dirty.contains(&idx) {
                self.dirty.push(idx);
            }
        }
    }

    fn write_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &idx in &dirty {
            self.write_entry(idx);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Writes entry `idx`'s buffer (opening the file if needed); rotates it when full.
    fn write_entry(&mut self, idx: usize) {
        if self.entries[idx].buf.is_empty() {
            return;
        }
        if self.entries[idx].file.is_none() {
            if let Err(error) = self.open(idx) {
                self.failed(idx, error);
                return;
            }
        }
        let e = &mut self.entries[idx];
        let f = e.file.as_mut().expect("opened above");
        let mut done = 0;
        let result = loop {
            match f.write(&e.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    done += n;
                    if done == e.buf.len() {
                        break Ok(());
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break Err(err),
            }
        };
        e.size += done as u64;
        self.stats.bytes.fetch_add(done as u64, Relaxed);
        match result {
            Ok(()) => {
                if self.settings.sync {
                    let _ = f.sync_data();
                }
                self.stats.written.fetch_add(e.msgs, Relaxed);
                e.buf.clear();
                e.buf.shrink_to(KEEP_CAPACITY);
                e.msgs = 0;
                e.failing = false;
                let full = self
                    .settings
                    .rotation
                    .as_ref()
                    .and_then(|r| r.max_size)
                    .is_some_and(|max| e.size >= max);
                if full {
                    self.rotate_entry(idx, rotate::Reason::Size);
                }
            }
            Err(error) => {
                // What was written stays written; the rest is retried.
                e.buf.drain(..done);
                self.failed(idx, error);
            }
        }
    }

    fn failed(&mut self, idx: usize, error: io::Error) {
        let e = &mut self.entries[idx];
        self.stats.errors.fetch_add(1, Relaxed);
        if !e.failing {
            tracing::warn!(output = %self.name, path = %String::from_utf8_lossy(&e.path), error = %error, "cannot write; retrying every second");
        }
        e.failing = true;
        if e.file.take().is_some() {
            closed_one(&mut self.open, &self.stats);
        }
        if e.buf.len() > FAILING_BUFFER {
            self.stats.dropped.fetch_add(e.msgs, Relaxed);
            tracing::error!(output = %self.name, path = %String::from_utf8_lossy(&e.path), lost = e.msgs, "the file stays unwritable: its waiting messages are dropped");
            e.buf.clear();
            e.msgs = 0;
        }
    }

    /// Opens entry `idx`'s file for appending, creating its directories as configured;
    /// rotates it first if it was last written before the latest time boundary.
    fn open(&mut self, idx: usize) -> io::Result<()> {
        while self.open >= self.max_open() {
            let before = self.open;
            self.close_lru_file(idx);
            if self.open == before {
                break;
            }
        }
        let path = PathBuf::from(OsStr::from_bytes(&self.entries[idx].path));
        let s = &self.settings;
        let create = fsops::Create {
            mode: s.mode,
            owner: s.owner,
            group: s.group,
        };
        if let Some(r) = &s.rotation {
            self.retention.register(&path);
            if let (Some(every), Ok(meta)) = (r.every, std::fs::metadata(&path)) {
                let boundary = rotate::last_boundary(chrono::Local::now(), every, r.at_hour);
                let written: chrono::DateTime<chrono::Local> = meta
                    .modified()
                    .map(Into::into)
                    .unwrap_or_else(|_| chrono::Local::now());
                if meta.len() > 0 && written < boundary {
                    if let Err(e) =
                        rotate::rotate(&path, r, &self.retention, rotate::Reason::Time(written))
                    {
                        tracing::warn!(output = %self.name, path = %path.display(), error = %e, "cannot rotate at open");
                    }
                }
            }
        }
        // Directories of rendered paths (and the base) are made with `dir_mode`; a fallback
        // file's elsewhere, like a plain output's, by `open_append` (the privileged parent
        // allows each only so).
        if let (Some(d), Some(dir)) = (&s.dynamic, path.parent()) {
            let with_dir_mode = path != d.fallback || dir == d.template.base();
            if with_dir_mode && !dir.exists() {
                let dirs = fsops::Create {
                    mode: d.dir_mode,
                    ..create
                };
                fsops::create_dirs(dir, &dirs)?;
            }
        }
        // Only a file logwell creates is recorded, so only those are swept by age; and only
        // with `max_age_days`, whose sweep keeps the record to the files still there.
        let record = s.dynamic.as_ref().is_some_and(|d| path != d.fallback)
            && s.rotation.as_ref().is_some_and(|r| r.max_age.is_some())
            && std::fs::symlink_metadata(&path).is_err();
        let file = fsops::open_append(&path, &create)?;
        if record {
            self.created.record(path.as_os_str().as_bytes());
        }
        let e = &mut self.entries[idx];
        e.size = file.metadata().map(|m| m.len()).unwrap_or(0);
        e.file = Some(file);
        self.opened_one();
        Ok(())
    }

    fn rotate_entry(&mut self, idx: usize, reason: rotate::Reason) -> bool {
        let policy = self
            .settings
            .rotation
            .clone()
            .unwrap_or_else(rotate::on_request_only);
        let e = &mut self.entries[idx];
        let path = PathBuf::from(OsStr::from_bytes(&e.path));
        if e.file.take().is_some() {
            closed_one(&mut self.open, &self.stats);
        }
        e.size = 0;
        match rotate::rotate(&path, &policy, &self.retention, reason) {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(output = %self.name, path = %path.display(), error = %err, "cannot rotate");
                false
            }
        }
    }

    /// Rotates every open, non-empty file: at a time boundary (`Some`) or on request.
    fn rotate_all(&mut self, period: Option<chrono::DateTime<chrono::Local>>) -> usize {
        self.flush_repeats_all();
        self.retry_failing();
        self.write_dirty();
        let mut rotated = 0;
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if e.file.is_none() || e.size == 0 || !e.buf.is_empty() {
                continue;
            }
            let reason = period.map_or(rotate::Reason::Size, rotate::Reason::Time);
            if self.rotate_entry(idx, reason) {
                rotated += 1;
            }
        }
        rotated
    }

    fn next_rotation(&self) -> Option<Instant> {
        let r = self.settings.rotation.as_ref()?;
        let next = rotate::next_boundary(chrono::Local::now(), r.every?, r.at_hour);
        Some(Instant::now() + rotate::until(next))
    }

    fn close_idle(&mut self, now: Instant) {
        let Some(d) = &self.settings.dynamic else {
            return;
        };
        let idle = d.idle_close;
        for idx in 0..self.entries.len() {
            let e = &mut self.entries[idx];
            if e.file.is_some()
                && e.buf.is_empty()
                && e.repeats == 0
                && now.duration_since(e.used_at) >= idle
            {
                e.file = None;
                closed_one(&mut self.open, &self.stats);
            }
        }
    }

    /// Writes everything and closes every file (SIGHUP: logrotate moved them).
    fn close_all(&mut self) {
        self.flush_repeats_all();
        self.retry_failing();
        self.write_dirty();
        for e in &mut self.entries {
            if e.file.take().is_some() {
                closed_one(&mut self.open, &self.stats);
            }
        }
    }

    /// Retention by age over the base directory of a templated path.
    fn sweep(&mut self) {
        let (Some(d), Some(max_age)) = (
            &self.settings.dynamic,
            self.settings.rotation.as_ref().and_then(|r| r.max_age),
        ) else {
            return;
        };
        let base = d.template.base().to_path_buf();
        let template = d.template.clone();
        let Some(cutoff) = SystemTime::now().checked_sub(max_age) else {
            return;
        };
        let open: std::collections::HashSet<&[u8]> = self
            .entries
            .iter()
            .filter(|e| e.file.is_some() || !e.buf.is_empty())
            .map(|e| &*e.path)
            .collect();
        let mut sweep = Sweep {
            template: &template,
            cutoff,
            open: &open,
            created: &self.created,
            kept: open
                .iter()
                .map(|p| PathBuf::from(OsStr::from_bytes(p)))
                .collect(),
        };
        let (files, dirs) = sweep.dir(&base, 0);
        let kept = sweep.kept;
        self.created.retain(&kept);
        if files + dirs > 0 {
            tracing::info!(output = %self.name, base = %base.display(), files, dirs, "deleted files past max_age_days and empty directories");
        }
    }
}

/// Counts a file closed.
fn closed_one(open: &mut usize, stats: &OutputStats) {
    *open -= 1;
    stats.open_files.store(*open as u64, Relaxed);
}

/// One age sweep over a templated output's base directory.
pub(crate) struct Sweep<'a> {
    pub(crate) template: &'a PathTemplate,
    /// Files last written before this are deleted.
    pub(crate) cutoff: SystemTime,
    /// Paths open now: never deleted.
    pub(crate) open: &'a std::collections::HashSet<&'a [u8]>,
    /// The files the output created: the only ones deleted (with their generations).
    pub(crate) created: &'a Created,
    /// The recorded paths that still have a file (live or a generation) after the sweep.
    pub(crate) kept: std::collections::HashSet<PathBuf>,
}

impl Sweep<'_> {
    /// Deletes the files below `dir` (at `level` of the template) that the output created
    /// (or rotated from one it created) and that were last written before the cutoff
    /// (except open ones), then the directories of rendered paths this emptied. A name the
    /// template could render is not enough: another program's file may have it. Returns
    /// (files, directories) deleted.
    pub(crate) fn dir(&mut self, dir: &Path, level: usize) -> (usize, usize) {
        let mut files = 0;
        let mut dirs = 0;
        let Ok(read) = std::fs::read_dir(dir) else {
            return (0, 0);
        };
        let last = level + 1 == self.template.depth();
        for entry in read.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !self.template.could_be(level, name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && !last {
                let (f, d) = self.dir(&path, level + 1);
                files += f;
                dirs += d;
                let empty = std::fs::read_dir(&path).is_ok_and(|mut r| r.next().is_none());
                if f + d > 0 && empty && fsops::remove_dir(&path).is_ok() {
                    dirs += 1;
                }
            } else if last && meta.is_file() {
                let Some(owner) = self.created.owner(dir, name) else {
                    continue;
                };
                let old = meta.modified().is_ok_and(|m| m < self.cutoff)
                    && !self.open.contains(path.as_os_str().as_bytes());
                if !old {
                    self.kept.insert(owner);
                    continue;
                }
                match fsops::remove_file(&path) {
                    Ok(()) => files += 1,
                    Err(e) => {
                        self.kept.insert(owner);
                        tracing::warn!(file = %path.display(), error = %e, "cannot delete");
                    }
                }
            }
        }
        (files, dirs)
    }
}

/// Appends "last message repeated N times" in the file's format.
fn summary(
    time: &mut TimeCache,
    source: &Source,
    hostname: &[u8],
    settings: &FileSettings,
    n: u64,
    out: &mut Vec<u8>,
) {
    let text = format!("last message repeated {n} times");
    let ev = Event {
        msg: Message {
            facility: Facility::from_code(5).unwrap_or(Facility::USER),
            severity: Severity::INFO,
            version: None,
            timestamp: None,
            hostname: Some(hostname),
            appname: Some(b"logwelld"),
            procid: None,
            msgid: None,
            structured_data: None,
            msg: text.as_bytes(),
            flags: Flags::empty(),
            fields: &[],
            parsed: None,
        },
        recv_time: chrono::Utc::now(),
        source,
        creds: None,
    };
    format_line(settings.format, &ev, time, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::records::{begin_field, end_field};

    #[test]
    fn records_round_trip() {
        let mut data = Vec::new();
        for (key, path, line) in [(7u64, &b"/a/b"[..], &b"x\n"[..]), (0, b"", b"yy\n")] {
            data.extend_from_slice(&key.to_le_bytes());
            let at = begin_field(&mut data);
            data.extend_from_slice(path);
            end_field(&mut data, at);
            let at = begin_field(&mut data);
            data.extend_from_slice(line);
            end_field(&mut data, at);
        }
        let got: Vec<_> = records(&data).collect();
        assert_eq!(
            got,
            vec![(7, &b"/a/b"[..], &b"x\n"[..]), (0, &b""[..], &b"yy\n"[..])]
        );
    }

    #[test]
    fn sweep_deletes_old_files_and_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3 * 86400);
        for p in [
            "h1/2020-01-01.log",
            "h2/2020-01-01.log",
            "h2/today.log",
            "h2/notes",
            ".hidden/2020-01-01.log",
        ] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let f = File::create(&path).unwrap();
            if p.contains("2020") || p.contains("notes") {
                f.set_modified(old).unwrap();
            }
        }
        let cutoff = SystemTime::now() - Duration::from_secs(86400);
        let t = PathTemplate::parse(&format!("{}/{{host}}/{{day}}.log", dir.path().display()))
            .unwrap()
            .unwrap();
        let mut created = Created::load(None);
        for p in ["h1/2020-01-01.log", "h2/2020-01-01.log", "h2/today.log"] {
            created.record(dir.path().join(p).as_os_str().as_bytes());
        }
        std::fs::write(dir.path().join("h2/2020-01-02.log"), "not logwell's").unwrap();
        File::options()
            .append(true)
            .open(dir.path().join("h2/2020-01-02.log"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let open = Default::default();
        let mut sweep = Sweep {
            template: &t,
            cutoff,
            open: &open,
            created: &created,
            kept: Default::default(),
        };
        let (files, dirs) = sweep.dir(dir.path(), 0);
        assert_eq!((files, dirs), (2, 1));
        assert_eq!(
            sweep.kept,
            [dir.path().join("h2/today.log")].into_iter().collect()
        );
        assert!(
            dir.path().join("h2/2020-01-02.log").exists(),
            "a name the template renders, but not a file logwell created"
        );
        assert!(!dir.path().join("h1").exists());
        assert!(dir.path().join("h2/today.log").exists());
        assert!(
            dir.path().join("h2/notes").exists(),
            "not a name the template makes"
        );
        assert!(dir.path().join(".hidden/2020-01-01.log").exists());
    }
}
