//! The journal input: reads the systemd journal directly (`sd_journal`, through the `systemd`
//! crate) on a dedicated thread and feeds its entries to the pipeline in batches, resuming
//! after a restart exactly where it stopped.
//!
//! # Shape
//!
//! A `Journal` is `!Send`, so it lives on one std thread per input (`journal-NAME`). That
//! thread opens the journal (the system journal, a `directory` or a `namespace`), adds the
//! input's matches, positions itself, and then loops: `next()` until it has caught up, copying
//! each entry into a [`JournalBatch`] (one byte arena plus index ranges, so no allocation per field),
//! then `wait()` for more (or, for [`ACTIVE_FOR`] after an entry, looks again every
//! [`ACTIVE_POLL`]: journald's notifications lag its entries by up to 250 ms). A batch goes to
//! the tokio side when it is full or when the reader has caught up, over a bounded channel,
//! which is where back-pressure from slow outputs reaches the reader. The thread waits at most
//! [`WAIT`] at a time, so it sees the input's stop signal promptly and never spins: an idle
//! input costs two wake-ups a second.
//!
//! The tokio task builds borrowed [`Message`]s straight from a batch's arena and pushes them
//! through its [`crate::pipeline::Pipeline`], mirroring the datagram loop: once no batch
//! waits in the channel (the reader has caught up), the lines go to the writers; a reload's
//! new routing table is taken between batches. It ends when the thread ends (on stop) and
//! has closed the channel; it then flushes and saves the cursor.
//!
//! # Cursor
//!
//! Each batch carries the cursor of its last entry. Once a batch's lines have been handed to
//! the writers (`flush` returned), that cursor is saved to `STATE_DIR/journal-NAME.cursor`
//! atomically (temporary file, `fsync`, rename, `fsync` of the directory); at most once per
//! [`SAVE_EVERY`] while entries stream in, and always when the input stops. On start the reader
//! resumes right after the saved cursor (`seek_cursor`, `next`, and `test_cursor` says whether
//! that entry is the one already handled), so a clean restart neither loses nor repeats an
//! entry; a crash repeats at most the last second's entries. Without a saved cursor it starts
//! at the tail (`from = "tail"`, the default: what is logged from now on) or at the oldest
//! entry (`from = "head"`), and saves the tail position at once so that a restart before the
//! first new entry still loses nothing. When the journal files change under the reader
//! (rotation, vacuuming: `wait` says `Invalidate`) it reopens the journal and seeks back to the
//! last entry it read.
//!
//! # Field mapping
//!
//! `MESSAGE` → text; `PRIORITY` → severity (default `info`); `SYSLOG_FACILITY` → facility
//! (default `user`, or `kern` for `_TRANSPORT=kernel`); `SYSLOG_IDENTIFIER`, else `_COMM` →
//! app name; `_PID`, else `SYSLOG_PID` → proc id; `_HOSTNAME` → host; the entry's realtime
//! timestamp → the message's timestamp (RFC 3339, microseconds, in the local zone's offset),
//! which lines show. Every other field of the entry (`_SYSTEMD_UNIT`, `_COMM`, `_EXE`, `_UID`,
//! `_GID`, `_BOOT_ID`, `_TRANSPORT`, `SYSLOG_IDENTIFIER`, `CODE_FILE`, `CODE_LINE`, …) goes to
//! [`Message::fields`] in journal order, except: `MESSAGE`, `PRIORITY` and `SYSLOG_FACILITY`
//! (already in the header), binary values (not printable UTF-8; tab and newline allowed) and
//! values over [`FIELD_MAX_BYTES`], and fields past the [`MAX_FIELDS`]th.
//!
//! # Caveats
//!
//! - An unprivileged process reads **zero entries, silently**, from the system journal unless
//!   it is in group `systemd-journal` or `adm`; the input warns at start when that is the case.
//! - journald also forwards every entry to `/run/systemd/journal/syslog` (Debian's default
//!   `ForwardToSyslog=yes`). A config with both a journal input and a Unix datagram input on
//!   that socket gets every message twice; use one or the other.

use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, TimeZone};
use systemd::journal::{Journal, JournalWaitResult, OpenDirectoryOptions, OpenOptions};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::InputContext;
use crate::config::JournalSettings;
use crate::message::{Facility, Flags, Message, Severity, Source, Timestamp, TimestampKind};
use crate::pipeline::Pipeline;

/// Entries per batch, at most.
const BATCH_ENTRIES: usize = 512;

/// A batch is sent once its arena holds this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// Batches queued between the reader thread and the pipeline task.
const QUEUE_BATCHES: usize = 4;

/// Longest the reader waits for new entries before it looks at the stop signal again.
pub const WAIT: Duration = Duration::from_millis(500);

/// journald tells readers of new entries (inotify, through `sd_journal_wait`) at most every
/// 250 ms (`POST_CHANGE_TIMER_INTERVAL_USEC`), while the entries themselves are in the mapped
/// files at once. So for [`ACTIVE_FOR`] after it read an entry the reader also looks every
/// [`ACTIVE_POLL`]: a message that follows another reaches the outputs within milliseconds,
/// not up to a quarter of a second later (`journalctl -f`'s delay). An idle journal costs
/// nothing more: the reader then waits for journald's notification alone.
///
/// Tuning (`compare latency`, journal → file at 20 messages/s): with only the notification,
/// p50 151 ms and 80 ms of CPU for the scenario; looking every 2 ms, p50 1.7 ms and 290 ms of
/// CPU (about 1.6% of a CPU while entries come); with `sd_journal_wait(2 ms)` instead of a
/// sleep and `next`, the same latency for 400 ms of CPU.
pub const ACTIVE_POLL: Duration = Duration::from_millis(2);

/// How long after the last entry read the reader keeps looking every [`ACTIVE_POLL`]: past
/// journald's notification delay, so a burst's notification is never waited for.
pub const ACTIVE_FOR: Duration = Duration::from_millis(300);

/// Fields (other than `MESSAGE`) with longer values are left out of [`Message::fields`].
pub const FIELD_MAX_BYTES: usize = 4096;

/// At most this many fields of an entry go to [`Message::fields`].
pub const MAX_FIELDS: usize = 64;

/// The longest `MESSAGE` read; longer ones are cut here (libsystemd's data threshold).
const MESSAGE_MAX_BYTES: usize = 64 * 1024;

/// The cursor is saved at most this often while entries stream in (and always at stop).
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// After a read error, the reader waits this long before it reopens the journal.
const RETRY: Duration = Duration::from_secs(1);

/// Why the journal input failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Opening the journal or positioning in it failed.
    #[error(
        "journal input `{input}`: cannot open {what}: {source}{}",
        open_hint(source)
    )]
    Open {
        /// Input name.
        input: String,
        /// What was being opened.
        what: String,
        /// The error from libsystemd.
        source: io::Error,
    },
    /// Saving the cursor failed.
    #[error("journal input `{input}`: cannot save the cursor to {}: {source}\n  hint: `[daemon] state_dir` must be writable by logwelld; until it is, a restart repeats entries", path.display())]
    SaveCursor {
        /// Input name.
        input: String,
        /// The cursor file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The reader thread could not be started or ended before it opened the journal.
    #[error("journal input `{input}`: the reader thread failed: {source}")]
    Thread {
        /// Input name.
        input: String,
        /// The OS error.
        source: io::Error,
    },
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            "\n  hint: journal files are readable by root and the groups systemd-journal and adm; run logwelld as one of them"
        }
        io::ErrorKind::NotFound => "\n  hint: check `directory`; it must hold *.journal files",
        _ => "",
    }
}

/// The warning for a process that will read zero entries without any error.
const GROUP_HINT: &str = "logwelld is neither root nor in group systemd-journal or adm: the system journal will show it zero entries, without any error; add it to group systemd-journal";

/// Spawns the reader thread and the pipeline task. Opens the journal before it returns, so
/// that a journal that cannot be opened fails the start (or the reload) with its reason.
pub fn spawn(s: &JournalSettings, ctx: InputContext) -> io::Result<()> {
    let mut cursor_file = CursorFile::new(&ctx.state_dir, &ctx.name);
    let saved = match cursor_file.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(input = %ctx.name, path = %cursor_file.path.display(), error = %e, "cannot read the saved cursor; starting afresh");
            None
        }
    };
    cursor_file.saved.clone_from(&saved);
    let spec = Spec::new(s, &ctx.name);
    let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let stop = ctx.stop.clone();
    let thread_err = |source| {
        io::Error::other(JournalError::Thread {
            input: ctx.name.to_string(),
            source,
        })
    };
    std::thread::Builder::new()
        .name(format!("journal-{}", ctx.name))
        .spawn(move || match Reader::open(spec, saved, tx, stop) {
            Ok((mut reader, first)) => {
                let _ = ready_tx.send(Ok(()));
                reader.run(first);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(thread_err)?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(io::Error::other(e)),
        Err(_) => {
            return Err(thread_err(io::Error::other(
                "it ended before it opened the journal",
            )))
        }
    }
    tokio::spawn(serve(rx, cursor_file, ctx));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Batches: what the thread hands to the pipeline task.

/// A byte range in a batch's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u32, u32);

/// One entry of a batch: the header fields, mapped, and where the rest is.
#[derive(Clone, Debug)]
struct JournalEntry {
    realtime_usec: u64,
    facility: Facility,
    severity: Severity,
    msg: Span,
    appname: Option<Span>,
    procid: Option<Span>,
    hostname: Option<Span>,
    /// The entry's `(name, value)` pairs in [`JournalBatch::fields`].
    fields: Range<u32>,
    /// Every field's `NAME=value` length, counted as received bytes.
    bytes: usize,
}

/// Entries read in one go, owned, to cross from the reader thread to the pipeline task.
#[derive(Debug, Default)]
pub struct JournalBatch {
    arena: Vec<u8>,
    entries: Vec<JournalEntry>,
    fields: Vec<(Span, Span)>,
    /// The cursor of the last entry; a batch with no entries may carry one (the position the
    /// reader started at).
    cursor: Option<String>,
}

/// The entry being copied into a batch.
#[derive(Default)]
struct Building {
    facility: Option<Facility>,
    severity: Option<Severity>,
    kernel: bool,
    msg: Option<Span>,
    identifier: Option<Span>,
    comm: Option<Span>,
    pid: Option<Span>,
    syslog_pid: Option<Span>,
    hostname: Option<Span>,
    fields_start: u32,
    bytes: usize,
}

impl JournalBatch {
    fn is_full(&self) -> bool {
        self.entries.len() >= BATCH_ENTRIES || self.arena.len() >= BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slice(&self, s: Span) -> &[u8] {
        &self.arena[s.0 as usize..s.1 as usize]
    }

    fn put(&mut self, bytes: &[u8]) -> Span {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Span(start, self.arena.len() as u32)
    }

    fn begin_entry(&self) -> Building {
        Building {
            fields_start: self.fields.len() as u32,
            ..Building::default()
        }
    }

    /// Adds one `NAME=value` data item of the entry being built.
    fn add_field(&mut self, b: &mut Building, data: &[u8]) {
        b.bytes += data.len();
        let Some(eq) = memchr::memchr(b'=', data) else {
            return;
        };
        let (name, value) = (&data[..eq], &data[eq + 1..]);
        match name {
            b"MESSAGE" => {
                if b.msg.is_none() {
                    b.msg = Some(self.put(value));
                }
                return;
            }
            b"PRIORITY" => {
                b.severity = b
                    .severity
                    .or(parse_code(value).and_then(Severity::from_code));
                return;
            }
            b"SYSLOG_FACILITY" => {
                b.facility = b
                    .facility
                    .or(parse_code(value).and_then(Facility::from_code));
                return;
            }
            _ => {}
        }
        if name.starts_with(b"__")
            || value.len() > FIELD_MAX_BYTES
            || !printable(value)
            || self.fields.len() - b.fields_start as usize >= MAX_FIELDS
        {
            return;
        }
        let n = self.put(name);
        let v = self.put(value);
        self.fields.push((n, v));
        let slot = match name {
            b"SYSLOG_IDENTIFIER" => &mut b.identifier,
            b"_COMM" => &mut b.comm,
            b"_PID" => &mut b.pid,
            b"SYSLOG_PID" => &mut b.syslog_pid,
            b"_HOSTNAME" => &mut b.hostname,
            b"_TRANSPORT" => {
                b.kernel |= value == b"kernel";
                return;
            }
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }

    /// Finishes the entry being built.
    fn end_entry(&mut self, b: Building, realtime_usec: u64) {
        let default_facility = if b.kernel {
            Facility::KERN
        } else {
            Facility::USER
        };
        let msg = b.msg.unwrap_or(Span(0, 0));
        self.entries.push(JournalEntry {
            realtime_usec,
            facility: b.facility.unwrap_or(default_facility),
            severity: b.severity.unwrap_or(Severity::INFO),
            msg,
            appname: b.identifier.or(b.comm),
            procid: b.pid.or(b.syslog_pid),
            hostname: b.hostname,
            fields: b.fields_start..self.fields.len() as u32,
            bytes: b.bytes,
        });
    }
}

/// A small decimal number (`PRIORITY`, `SYSLOG_FACILITY`).
fn parse_code(v: &[u8]) -> Option<u8> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Whether a value is text, as journalctl decides it: valid UTF-8 without control characters
/// other than tab and newline.
fn printable(v: &[u8]) -> bool {
    std::str::from_utf8(v)
        .is_ok_and(|s| !s.chars().any(|c| c.is_control() && c != '\t' && c != '\n'))
}

/// The local zone's offset, looked up once per hour of entry time.
#[derive(Default)]
struct ZoneCache {
    hour: Option<i64>,
    offset: Option<FixedOffset>,
}

impl ZoneCache {
    /// The message timestamp of a realtime timestamp in microseconds since the epoch.
    fn timestamp(&mut self, usec: u64) -> Option<Timestamp> {
        let utc = DateTime::from_timestamp_micros(i64::try_from(usec).ok()?)?;
        let hour = utc.timestamp().div_euclid(3600);
        let offset = match (self.hour, self.offset) {
            (Some(h), Some(o)) if h == hour => o,
            _ => {
                let o = chrono::Local
                    .offset_from_utc_datetime(&utc.naive_utc())
                    .fix();
                self.hour = Some(hour);
                self.offset = Some(o);
                o
            }
        };
        Some(Timestamp {
            local: utc.naive_utc() + offset,
            offset: Some(offset),
            kind: TimestampKind::Rfc3339,
            frac_digits: 6,
        })
    }
}

/// Routes and formats every entry of a batch. Returns whether it flushed on the way (a
/// chunk filled up).
async fn push_batch(
    pipeline: &mut Pipeline,
    batch: &JournalBatch,
    source: &Source,
    zone: &mut ZoneCache,
) -> bool {
    let mut flushed = false;
    pipeline.begin();
    let pairs: Vec<(&[u8], &[u8])> = batch
        .fields
        .iter()
        .map(|&(n, v)| (batch.slice(n), batch.slice(v)))
        .collect();
    for e in &batch.entries {
        let msg = Message {
            facility: e.facility,
            severity: e.severity,
            version: None,
            timestamp: zone.timestamp(e.realtime_usec),
            hostname: e.hostname.map(|s| batch.slice(s)),
            appname: e.appname.map(|s| batch.slice(s)),
            procid: e.procid.map(|s| batch.slice(s)),
            msgid: None,
            structured_data: None,
            msg: batch.slice(e.msg),
            flags: Flags::empty(),
            fields: &pairs[e.fields.start as usize..e.fields.end as usize],
            parsed: None,
        };
        pipeline.push_message(msg, e.bytes, source, None);
        if pipeline.needs_flush() {
            pipeline.flush().await;
            flushed = true;
        }
    }
    flushed
}

// ---------------------------------------------------------------------------------------------
// The pipeline task.

/// Where the cursor stands on the tokio side.
#[derive(Default)]
struct Progress {
    /// The cursor of the last batch pushed whole into the pipeline.
    pushed: Option<String>,
    /// The cursor of the last batch whose lines were handed to the writers.
    handed: Option<String>,
}

async fn serve(
    mut rx: mpsc::Receiver<JournalBatch>,
    mut cursor_file: CursorFile,
    ctx: InputContext,
) {
    let _trackers = ctx.trackers.clone();
    let mut pipeline = ctx.pipeline();
    let source = ctx.local_source(true);
    let mut zone = ZoneCache::default();
    let mut progress = Progress::default();
    let mut last_save = Instant::now() - SAVE_EVERY;
    // The reader thread watches the stop signal itself and closes the channel when it ends;
    // this loop drains what it sent until then.
    loop {
        let save_at = (progress.handed.is_some() && progress.handed != cursor_file.saved)
            .then_some(last_save + SAVE_EVERY);
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                if push_batch(&mut pipeline, &batch, &source, &mut zone).await {
                    // A flush inside the batch handed over everything before it.
                    progress.handed.clone_from(&progress.pushed);
                }
                if batch.cursor.is_some() {
                    progress.pushed = batch.cursor;
                }
                if !pipeline.is_pending() {
                    // Nothing pending (an empty batch, or one that ended on a flush).
                    progress.handed.clone_from(&progress.pushed);
                } else if rx.is_empty() {
                    // The reader has sent all it read: the lines go to the writers now.
                    pipeline.flush().await;
                    progress.handed.clone_from(&progress.pushed);
                }
            }
            chore = pipeline.chore() => pipeline.run_chore(chore).await,
            _ = tokio::time::sleep_until(save_at.unwrap_or_else(Instant::now)), if save_at.is_some() => {
                cursor_file.save_logged(progress.handed.as_deref(), &ctx.name);
                last_save = Instant::now();
            }
        }
    }
    pipeline.flush().await;
    progress.handed = progress.pushed;
    if progress.handed.is_some() && progress.handed != cursor_file.saved {
        cursor_file.save_logged(progress.handed.as_deref(), &ctx.name);
    }
}

// ---------------------------------------------------------------------------------------------
// The cursor file.

/// `STATE_DIR/journal-NAME.cursor`: the cursor of the last entry handed to the writers.
struct CursorFile {
    path: PathBuf,
    /// What the file holds (as far as this process knows).
    saved: Option<String>,
    /// The last save failed (so the next failure is not logged again).
    failing: bool,
}

impl CursorFile {
    fn new(state_dir: &Path, input: &str) -> CursorFile {
        CursorFile {
            path: state_dir.join(format!("journal-{input}.cursor")),
            saved: None,
            failing: false,
        }
    }

    /// The saved cursor; `None` when there is none.
    fn load(&self) -> io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the file atomically: a temporary file beside it, written and synced, renamed
    /// over it, then the directory synced.
    fn save(&mut self, cursor: &str) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(cursor.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        std::fs::File::open(dir)?.sync_all()?;
        self.saved = Some(cursor.to_string());
        Ok(())
    }

    /// Saves, and logs a failure once until a save succeeds again.
    fn save_logged(&mut self, cursor: Option<&str>, input: &str) {
        let Some(cursor) = cursor else { return };
        match self.save(cursor) {
            Ok(()) => self.failing = false,
            Err(source) => {
                if !self.failing {
                    let e = JournalError::SaveCursor {
                        input: input.to_string(),
                        path: self.path.clone(),
                        source,
                    };
                    tracing::error!(input, "{e}");
                }
                self.failing = true;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reader thread.

/// Which journal to open and which entries to read: the input's settings, ready for the
/// thread.
#[derive(Clone, Debug)]
struct Spec {
    input: Arc<str>,
    directory: Option<PathBuf>,
    namespace: Option<String>,
    from_head: bool,
    /// `FIELD=value` matches: libsystemd ORs those of one field and ANDs the fields.
    matches: Vec<(&'static str, String)>,
}

impl Spec {
    fn new(s: &JournalSettings, input: &Arc<str>) -> Spec {
        let mut matches = Vec::new();
        for u in &s.units {
            matches.push(("_SYSTEMD_UNIT", unit_name(u)));
        }
        for i in &s.identifiers {
            matches.push(("SYSLOG_IDENTIFIER", i.clone()));
        }
        if let Some(min) = s.min_priority {
            for p in 0..=min.code() {
                matches.push(("PRIORITY", p.to_string()));
            }
        }
        Spec {
            input: input.clone(),
            directory: s.directory.clone(),
            namespace: s.namespace.clone(),
            from_head: s.from_head,
            matches,
        }
    }

    /// What is opened, for messages.
    fn what(&self) -> String {
        match (&self.directory, &self.namespace) {
            (Some(d), _) => format!("the journal in {}", d.display()),
            (_, Some(ns)) => format!("the journal of namespace `{ns}`"),
            _ => "the system journal".to_string(),
        }
    }

    fn open(&self) -> Result<Journal, JournalError> {
        let err = |e: systemd::Error| JournalError::Open {
            input: self.input.to_string(),
            what: self.what(),
            source: e.into(),
        };
        let mut j = match (&self.directory, &self.namespace) {
            (Some(d), _) => {
                let path = std::ffi::CString::new(d.as_os_str().as_bytes()).map_err(|e| {
                    JournalError::Open {
                        input: self.input.to_string(),
                        what: self.what(),
                        source: io::Error::new(io::ErrorKind::InvalidInput, e),
                    }
                })?;
                OpenDirectoryOptions::default()
                    .open_directory(path)
                    .map_err(err)?
            }
            (_, Some(ns)) => OpenOptions::default()
                .open_namespace(ns.as_str())
                .map_err(err)?,
            _ => OpenOptions::default()
                .local_only(true)
                .open()
                .map_err(err)?,
        };
        j.set_data_threshold(MESSAGE_MAX_BYTES).map_err(err)?;
        self.add_matches(&mut j).map_err(err)?;
        // The first `wait` after opening sets up the file watches and returns at once, saying
        // `Invalidate` (files were added: by the open itself). Take that answer now, so that
        // the reader's `wait`s report only changes made after the open.
        if let Err(e) = j.wait(Some(Duration::ZERO)) {
            tracing::debug!(input = %self.input, error = %e, "cannot watch the journal files yet");
        }
        Ok(j)
    }

    fn add_matches(&self, j: &mut Journal) -> systemd::Result<()> {
        for (field, value) in &self.matches {
            j.match_add(field, value.as_bytes())?;
        }
        Ok(())
    }

    /// Puts the read pointer right after `cursor`, or at the start when there is none: the
    /// oldest entry with `from_head`, else the newest. Returns where it stands and, for a
    /// start at the tail, the cursor of the newest entry.
    fn seek(
        &self,
        j: &mut Journal,
        cursor: Option<&str>,
    ) -> systemd::Result<(Seeked, Option<String>)> {
        match cursor {
            Some(c) => Ok((seek_after(j, c)?, None)),
            None if self.from_head => {
                j.seek_head()?;
                Ok((Seeked::Before, None))
            }
            None => {
                // Start after the newest entry of the whole journal, matching or not. With
                // the matches on, `previous()` after `seek_tail` finds the newest *matching*
                // entry, however old, or none, and then the first `next()` jumps to the last
                // of the entries that arrived meanwhile, skipping the others.
                j.match_flush()?;
                j.seek_tail()?;
                let newest = if j.previous()? > 0 {
                    Some(j.cursor()?)
                } else {
                    None
                };
                self.add_matches(j)?;
                match newest {
                    Some(c) => Ok((seek_after(j, &c)?, Some(c))),
                    None => {
                        // An empty journal: everything in it will be new.
                        j.seek_head()?;
                        Ok((Seeked::Before, None))
                    }
                }
            }
        }
    }
}

/// A unit name as journalctl reads `-u`: without a suffix, a service.
fn unit_name(u: &str) -> String {
    if u.contains('.') {
        u.to_string()
    } else {
        format!("{u}.service")
    }
}

/// Where a seek left the read pointer.
#[derive(Debug, PartialEq, Eq)]
enum Seeked {
    /// Before the next unread entry: call `next()`.
    Before,
    /// On an unread entry: read it before calling `next()`.
    OnUnread,
}

/// Puts the read pointer right after the entry at `cursor`, whether or not that entry
/// matches the filters.
fn seek_after(j: &mut Journal, cursor: &str) -> systemd::Result<Seeked> {
    j.seek_cursor(cursor)?;
    if j.next()? == 0 {
        // Nothing at or after the cursor yet: the next `next()` finds what comes.
        return Ok(Seeked::Before);
    }
    if j.test_cursor(cursor)? {
        Ok(Seeked::Before)
    } else {
        // The cursor's entry is gone (vacuumed) or filtered out: this is the first one after it.
        Ok(Seeked::OnUnread)
    }
}

/// The reader thread's state.
struct Reader {
    spec: Spec,
    journal: Journal,
    /// The cursor of the last entry read (sent, or in `batch`'s last entry once sent).
    last: Option<String>,
    tx: mpsc::Sender<JournalBatch>,
    stop: watch::Receiver<bool>,
}

impl Reader {
    /// Opens the journal and positions it after `saved` (or at the start). Returns the
    /// reader and where it stands.
    fn open(
        spec: Spec,
        saved: Option<String>,
        tx: mpsc::Sender<JournalBatch>,
        stop: watch::Receiver<bool>,
    ) -> Result<(Reader, Seeked), JournalError> {
        let mut journal = spec.open()?;
        if spec.directory.is_none() && !may_read_system_journal() {
            tracing::warn!(input = %spec.input, "{GROUP_HINT}");
        }
        let (seeked, tail) = match spec.seek(&mut journal, saved.as_deref()) {
            Ok(s) => s,
            Err(e) if saved.is_some() => {
                tracing::warn!(input = %spec.input, error = %e, "cannot resume at the saved cursor; starting afresh");
                spec.seek(&mut journal, None)
                    .map_err(|e| JournalError::Open {
                        input: spec.input.to_string(),
                        what: spec.what(),
                        source: e.into(),
                    })?
            }
            Err(e) => {
                return Err(JournalError::Open {
                    input: spec.input.to_string(),
                    what: spec.what(),
                    source: e.into(),
                })
            }
        };
        tracing::info!(input = %spec.input, journal = %spec.what(), resumed = saved.is_some(), from_head = spec.from_head, "reading the journal");
        let last = saved.or(tail.clone());
        if let Some(c) = tail {
            // Save the starting point, so that a restart before the first new entry still
            // reads everything logged since this start.
            let _ = tx.blocking_send(JournalBatch {
                cursor: Some(c),
                ..JournalBatch::default()
            });
        }
        Ok((
            Reader {
                spec,
                journal,
                last,
                tx,
                stop,
            },
            seeked,
        ))
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    /// Reads until the input is stopped (or the pipeline task is gone).
    fn run(&mut self, first: Seeked) {
        let mut on_unread = first == Seeked::OnUnread;
        let mut batch = JournalBatch::default();
        // When an entry was last read (see ACTIVE_POLL).
        let mut active_at: Option<std::time::Instant> = None;
        while !self.stopping() {
            let have = if on_unread {
                on_unread = false;
                true
            } else {
                match self.journal.next() {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(input = %self.spec.input, error = %e, "reading the journal failed; reopening it");
                        if !self.send(&mut batch) {
                            return;
                        }
                        on_unread = self.reopen_after(RETRY);
                        continue;
                    }
                }
            };
            if have {
                active_at = Some(std::time::Instant::now());
                if let Err(e) = self.read_entry(&mut batch) {
                    tracing::warn!(input = %self.spec.input, error = %e, "cannot read a journal entry; skipping it");
                }
                if batch.is_full() && !self.send(&mut batch) {
                    return;
                }
                continue;
            }
            // Caught up: hand over what was read, then wait for more.
            if !self.send(&mut batch) {
                return;
            }
            if active_at.is_some_and(|t| t.elapsed() < ACTIVE_FOR) {
                // The entries are in the mapped files before journald says so: look again
                // soon, without asking for its notification (`sd_journal_wait` costs ten
                // times as much as `sd_journal_next`).
                std::thread::sleep(ACTIVE_POLL);
                continue;
            }
            match self.journal.wait(Some(WAIT)) {
                Ok(JournalWaitResult::Invalidate) => {
                    on_unread = self.reopen_after(Duration::ZERO);
                    tracing::info!(input = %self.spec.input, "journal files changed (rotation or vacuum): reopened at the last entry read");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(input = %self.spec.input, error = %e, "waiting for the journal failed; reopening it");
                    on_unread = self.reopen_after(RETRY);
                }
            }
        }
        self.send(&mut batch);
    }

    /// Copies the current entry into `batch`.
    fn read_entry(&mut self, batch: &mut JournalBatch) -> systemd::Result<()> {
        let usec = self.journal.timestamp_usec()?;
        let mut b = batch.begin_entry();
        let mark = (batch.arena.len(), batch.fields.len());
        self.journal.restart_data();
        loop {
            match self.journal.enumerate_data() {
                Ok(Some(field)) => batch.add_field(&mut b, field.data()),
                Ok(None) => break,
                Err(e) => {
                    batch.arena.truncate(mark.0);
                    batch.fields.truncate(mark.1);
                    return Err(e);
                }
            }
        }
        batch.end_entry(b, usec);
        Ok(())
    }

    /// Sends the batch (if it has entries) with the current entry's cursor. `false` when the
    /// pipeline task is gone.
    fn send(&mut self, batch: &mut JournalBatch) -> bool {
        if batch.is_empty() {
            return true;
        }
        match self.journal.cursor() {
            Ok(c) => {
                self.last = Some(c.clone());
                batch.cursor = Some(c);
            }
            Err(e) => {
                tracing::warn!(input = %self.spec.input, error = %e, "cannot get the journal cursor; a restart may repeat entries");
            }
        }
        self.tx.blocking_send(std::mem::take(batch)).is_ok()
    }

    /// Reopens the journal and seeks back to the last entry read, retrying until it works
    /// or the input stops. Returns whether the pointer stands on an unread entry.
    fn reopen_after(&mut self, mut delay: Duration) -> bool {
        loop {
            let step = Duration::from_millis(100);
            while delay > Duration::ZERO {
                if self.stopping() {
                    return false;
                }
                std::thread::sleep(step.min(delay));
                delay = delay.saturating_sub(step);
            }
            let reopened = self.spec.open().and_then(|mut j| {
                self.spec
                    .seek(&mut j, self.last.as_deref())
                    .map(|(s, tail)| (j, s, tail))
                    .map_err(|e| JournalError::Open {
                        input: self.spec.input.to_string(),
                        what: self.spec.what(),
                        source: e.into(),
                    })
            });
            match reopened {
                Ok((j, seeked, tail)) => {
                    self.journal = j;
                    if self.last.is_none() {
                        self.last = tail;
                    }
                    return seeked == Seeked::OnUnread;
                }
                Err(e) => {
                    tracing::warn!(input = %self.spec.input, "{e}; retrying in {RETRY:?}");
                    delay = RETRY;
                }
            }
        }
    }
}

/// Whether this process may read the system journal: root, or in group `systemd-journal`,
/// `adm` or `wheel`.
fn may_read_system_journal() -> bool {
    use nix::unistd::{getegid, geteuid, getgroups, Group};
    if geteuid().is_root() {
        return true;
    }
    let mut gids = getgroups().unwrap_or_default();
    gids.push(getegid());
    ["systemd-journal", "adm", "wheel"]
        .iter()
        .filter_map(|name| Group::from_name(name).ok().flatten())
        .any(|g| gids.contains(&g.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(fields: &[&[u8]]) -> JournalBatch {
        let mut batch = JournalBatch::default();
        let mut b = batch.begin_entry();
        for f in fields {
            batch.add_field(&mut b, f);
        }
        batch.end_entry(b, 1_700_000_000_123_456);
        batch
    }

    fn field<'a>(batch: &'a JournalBatch, name: &[u8]) -> Option<&'a [u8]> {
        batch
            .fields
            .iter()
            .find(|(n, _)| batch.slice(*n) == name)
            .map(|(_, v)| batch.slice(*v))
    }

    #[test]
    fn header_fields_are_mapped_and_the_rest_kept() {
        let batch = build(&[
            b"_TRANSPORT=syslog",
            b"PRIORITY=3",
            b"SYSLOG_FACILITY=10",
            b"SYSLOG_IDENTIFIER=sshd",
            b"_COMM=sshd-session",
            b"_PID=4242",
            b"_HOSTNAME=web1",
            b"_SYSTEMD_UNIT=ssh.service",
            b"MESSAGE=Accepted publickey",
        ]);
        let e = &batch.entries[0];
        assert_eq!(e.facility, Facility::AUTHPRIV);
        assert_eq!(e.severity.name(), "err");
        assert_eq!(batch.slice(e.msg), b"Accepted publickey");
        assert_eq!(batch.slice(e.appname.unwrap()), b"sshd");
        assert_eq!(batch.slice(e.procid.unwrap()), b"4242");
        assert_eq!(batch.slice(e.hostname.unwrap()), b"web1");
        assert_eq!(field(&batch, b"_SYSTEMD_UNIT"), Some(&b"ssh.service"[..]));
        assert_eq!(field(&batch, b"_COMM"), Some(&b"sshd-session"[..]));
        assert_eq!(field(&batch, b"MESSAGE"), None);
        assert_eq!(field(&batch, b"PRIORITY"), None);
    }

    #[test]
    fn defaults_kernel_transport_and_comm_fallback() {
        let batch = build(&[b"_TRANSPORT=kernel", b"MESSAGE=usb 1-1: new device"]);
        assert_eq!(batch.entries[0].facility, Facility::KERN);
        assert_eq!(batch.entries[0].severity, Severity::INFO);
        let batch = build(&[b"_COMM=cron", b"SYSLOG_PID=7", b"MESSAGE=x"]);
        let e = &batch.entries[0];
        assert_eq!(e.facility, Facility::USER);
        assert_eq!(batch.slice(e.appname.unwrap()), b"cron");
        assert_eq!(batch.slice(e.procid.unwrap()), b"7");
    }

    #[test]
    fn binary_and_long_fields_are_left_out() {
        let long = [b"BIG=".as_slice(), &[b'x'; FIELD_MAX_BYTES + 1]].concat();
        let batch = build(&[
            b"BLOB=a\x00b",
            &long,
            b"CODE_LINE=12",
            b"MESSAGE=bin\x01ary",
        ]);
        assert_eq!(field(&batch, b"BLOB"), None);
        assert_eq!(field(&batch, b"BIG"), None);
        assert_eq!(field(&batch, b"CODE_LINE"), Some(&b"12"[..]));
        // The text is kept as it is; formatters escape it.
        assert_eq!(batch.slice(batch.entries[0].msg), b"bin\x01ary");
    }

    #[test]
    fn timestamp_is_rfc3339_with_microseconds() {
        let ts = ZoneCache::default()
            .timestamp(1_700_000_000_123_456)
            .unwrap();
        assert_eq!(ts.kind, TimestampKind::Rfc3339);
        assert_eq!(ts.frac_digits, 6);
        let utc = ts.local - ts.offset.unwrap();
        assert_eq!(utc.and_utc().timestamp_micros(), 1_700_000_000_123_456);
    }

    #[test]
    fn cursor_file_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CursorFile::new(&dir.path().join("state"), "j");
        assert_eq!(f.load().unwrap(), None);
        f.save("s=1;i=2").unwrap();
        f.save("s=1;i=3").unwrap();
        assert_eq!(f.load().unwrap().as_deref(), Some("s=1;i=3"));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["journal-j.cursor"]);
    }

    #[test]
    fn unit_names_get_the_service_suffix() {
        assert_eq!(unit_name("ssh"), "ssh.service");
        assert_eq!(unit_name("cron.service"), "cron.service");
        assert_eq!(unit_name("user@1000.service"), "user@1000.service");
    }
}
