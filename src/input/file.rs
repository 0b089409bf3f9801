//! The file input: follows files other programs append to (nginx's `access.log`, a Java
//! service's `app.log`) and hands each line to the pipeline as a message (this host's name,
//! the input's tag, facility and severity, the read time, and a `path` field).
//!
//! This module owns the following of files: finding them (glob patterns, `**` for any
//! depth, rescanned once a second and at each inotify event of their directories), reading lines, noticing
//! rotation, and the checkpoints that let a restart resume. It does not parse the lines:
//! body parsers (`parse = ["json"]`) run in the pipeline as for any input.
//!
//! # Shape
//! One std thread per input (`file-NAME`): regular files are always "ready", so there is
//! nothing for epoll to wait on; the thread reads with `pread` and sleeps in `poll(2)` on an
//! inotify descriptor watching the files' directories, at most [`WAKE`] at a time (so it sees
//! the stop signal promptly), with a full rescan of the patterns at least every
//! [`SCAN_EVERY`]. It hands the pipeline's chunks over with `Handle::block_on`, which is where
//! a slow output holds the reader back.
//!
//! A round woken only by writes (inotify's `MODIFY`) looks at and reads the files those
//! events name, and the rotated ones still read by their descriptors; every other round
//! (something created, moved or deleted, a file with more to read than a round takes, the
//! timeout, at least every [`WAKE`]) looks at every open file. So one busy file among
//! thousands of idle ones costs the syscalls of its own lines, not thousands per line.
//!
//! # Identity and rotation
//! A file is known by its device and inode plus a fingerprint: a hash of its first bytes (up
//! to [`FINGERPRINT_BYTES`]), so an inode reused by a new file is not taken for the old one.
//! Each round, every followed file's path is looked at again:
//! - **renamed or deleted** (rename-and-create, or delete-and-recreate): the old file is kept
//!   open and read by its descriptor to its end, and until it has been idle for
//!   [`ROTATED_GRACE`] (a writer that has not reopened yet still appends to it); the new file
//!   at the path is read from its start. Counted in `rotations`.
//! - **shorter than the position read, or its first bytes changed** (copytruncate): counted
//!   in `truncations`; the newest uncompressed generation whose first bytes are the old
//!   file's (logrotate's copy, `x.log.1` with `delaycompress`) is read from the old position
//!   to its end, then the live file from its start. What the writer appended between
//!   logrotate's copy and its truncation is in neither file: that window is copytruncate's
//!   own loss, and no reader can avoid it.
//!
//! Rotated generations (`x.log.1`, `x.log.2.gz`, `x.log-20261121`, as [`fileset`] names
//! them) of a file that exists are never followed as new files, even where a pattern such
//! as `*.log*` matches them.
//!
//! # Checkpoints
//! `STATE_DIR/file-input/NAME.json` holds, per file, its path, identity and the offset
//! after the last line handed to the writers (`flush` returned). It is written atomically
//! (temporary file, `fsync`, rename) at most once per [`SAVE_INTERVAL`] and at stop, so a
//! clean restart neither loses nor repeats a line and a crash repeats at most the last
//! second's lines. At start a file whose identity is in the checkpoint resumes at its
//! offset; a checkpointed file found renamed to one of its generations (rotated while
//! logwelld was stopped) is read from its offset to its end first, decompressed when the
//! generation was already compressed (found by its first bytes). Files without a
//! checkpoint entry are read from their start, except at the input's very first start (no
//! checkpoint at all) with `from = "tail"`: then from the end of their last whole line.
//!
//! # Lines
//! A line ends at LF (a CR before it is removed); bytes are kept as they are (invalid UTF-8
//! included). A last line without its LF is held until the LF comes, except in a rotated
//! file given up after its grace, whose last bytes are handed on as a line. A line longer
//! than `max_line_bytes` is cut there, marked (` [truncated]`), counted in `truncated`, and
//! the rest of it skipped.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::InputContext;
use crate::config::FileInputSettings;
use crate::message::{Flags, Message, Source};
use crate::pipeline::Pipeline;
use crate::store::fileset;

/// Bytes read with one `pread`.
const READ_BYTES: usize = 64 * 1024;

/// Bytes read from one file in one round before the others get their turn.
const ROUND_BYTES: u64 = 4 << 20;

/// Longest the thread sleeps before it looks at the stop signal and its files again.
const WAKE: Duration = Duration::from_millis(250);

/// The patterns are matched again at least this often (new files without an inotify event).
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, the checkpoint is written while lines stream in (and always at stop).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// How many first bytes of a file its fingerprint covers.
pub const FINGERPRINT_BYTES: usize = 256;

/// Distinct file names written since the last round above which the round looks at every
/// file rather than at those named.
const TOUCHED_MAX: usize = 16;

/// How long a rotated (renamed or deleted) file is still read after it stopped growing.
pub const ROTATED_GRACE: Duration = Duration::from_secs(5);

/// Splits the bytes of a file into lines: pure, no I/O. Holds the start of a line whose LF
/// has not come yet, at most `max` bytes of it.
#[derive(Debug)]
pub(crate) struct Lines {
    held: Vec<u8>,
    /// The held line reached `max`: the rest of it is skipped up to its LF.
    cut: bool,
    max: usize,
}

impl Lines {
    pub(crate) fn new(max: usize) -> Lines {
        Lines {
            held: Vec::new(),
            cut: false,
            max: max.max(1),
        }
    }

    /// Feeds the next bytes; calls `line(text, truncated, end)` for every line completed,
    /// where `end` is how many bytes of `data` the line used up (through its LF).
    pub(crate) fn feed(&mut self, data: &[u8], mut line: impl FnMut(&[u8], bool, usize)) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let piece = &data[start..nl];
            if self.held.is_empty() && !self.cut {
                let text = strip_cr(piece);
                if text.len() > self.max {
                    line(&text[..self.max], true, nl + 1);
                } else {
                    line(text, false, nl + 1);
                }
            } else {
                self.hold(piece);
                let text = if self.cut {
                    &self.held[..]
                } else {
                    strip_cr(&self.held)
                };
                line(text, self.cut, nl + 1);
                self.reset();
            }
            start = nl + 1;
        }
        if start < data.len() {
            self.hold(&data[start..]);
        }
    }

    fn hold(&mut self, piece: &[u8]) {
        let room = self.max - self.held.len().min(self.max);
        // One byte past `max` may be a CR that goes with the LF to come.
        if piece.len() > room + 1 || (piece.len() == room + 1 && piece[room] != b'\r') {
            self.held.extend_from_slice(&piece[..room]);
            // A CR held at `max + 1` was not the line's end after all.
            self.held.truncate(self.max);
            self.cut = true;
        } else if !self.cut {
            self.held.extend_from_slice(piece);
        }
    }

    /// The start of a line held: what a rotated file given up ends with.
    pub(crate) fn take_held(&mut self) -> Option<(Vec<u8>, bool)> {
        if self.held.is_empty() && !self.cut {
            return None;
        }
        let mut held = std::mem::take(&mut self.held);
        let cut = self.cut;
        self.cut = false;
        if !cut && held.last() == Some(&b'\r') {
            held.pop();
        }
        Some((held, cut))
    }

    /// Forgets the line held (the file was truncated).
    pub(crate) fn reset(&mut self) {
        self.held.clear();
        self.cut = false;
    }
}

/// A file input's multi-line rule, compiled once and shared by its files.
#[derive(Debug)]
pub(crate) struct MultilineRule {
    start: Option<regex::bytes::Regex>,
    continues: Option<regex::bytes::Regex>,
    timeout: Duration,
    max_lines: usize,
    max_bytes: usize,
}

impl MultilineRule {
    /// Compiles the settings' patterns (checked valid by the configuration).
    pub(crate) fn new(s: &crate::config::MultilineSettings) -> Option<MultilineRule> {
        let compile = |p: &Option<String>| {
            p.as_deref()
                .map(regex::bytes::Regex::new)
                .transpose()
                .ok()
                .flatten()
        };
        Some(MultilineRule {
            start: compile(&s.start),
            continues: compile(&s.continues),
            timeout: s.timeout,
            max_lines: s.max_lines.max(1),
            max_bytes: s.max_bytes.max(1),
        })
    }

    /// Whether `line` begins a record rather than joining the one before.
    fn begins(&self, line: &[u8]) -> bool {
        match (&self.start, &self.continues) {
            (Some(start), _) => start.is_match(line),
            (None, Some(cont)) => !cont.is_match(line),
            (None, None) => true,
        }
    }
}

/// Joins lines into records (a stack trace, a traceback): pure but for the clock it is
/// given. A record is handed on when the next one begins, when it reached `max_lines` or
/// `max_bytes` (marked as cut; the next line begins a new record), or when it got no line for
/// the rule's timeout ([`Multiline::due`]). Lines are joined with LF.
#[derive(Debug)]
pub(crate) struct Multiline {
    rule: std::sync::Arc<MultilineRule>,
    held: Vec<u8>,
    lines: usize,
    cut: bool,
    /// The file offset after the held record's last line.
    end: u64,
    /// When the last line joined; `None` while nothing is held.
    last: Option<Instant>,
}

impl Multiline {
    pub(crate) fn new(rule: std::sync::Arc<MultilineRule>) -> Multiline {
        Multiline {
            rule,
            held: Vec::new(),
            lines: 0,
            cut: false,
            end: 0,
            last: None,
        }
    }

    /// Takes the next line (`end`: the offset after it); `emit(record, cut, lines, end)`
    /// gets each record completed.
    pub(crate) fn line(
        &mut self,
        text: &[u8],
        cut: bool,
        end: u64,
        now: Instant,
        emit: &mut impl FnMut(&[u8], bool, usize, u64),
    ) {
        if self.last.is_some() {
            let full = self.lines >= self.rule.max_lines
                || self.held.len() + 1 + text.len() > self.rule.max_bytes;
            if self.rule.begins(text) {
                self.take(emit);
            } else if full {
                self.cut = true;
                self.take(emit);
            } else {
                self.held.push(b'\n');
                self.held.extend_from_slice(text);
                self.lines += 1;
                self.cut |= cut;
                self.end = end;
                self.last = Some(now);
                return;
            }
        }
        self.held.clear();
        let keep = text.len().min(self.rule.max_bytes);
        self.held.extend_from_slice(&text[..keep]);
        self.lines = 1;
        self.cut = cut || keep < text.len();
        self.end = end;
        self.last = Some(now);
    }

    /// Whether the held record waited its timeout for another line.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|t| now.saturating_duration_since(t) >= self.rule.timeout)
    }

    /// Hands on the held record, if any.
    pub(crate) fn take(&mut self, emit: &mut impl FnMut(&[u8], bool, usize, u64)) {
        if self.last.take().is_some() {
            emit(&self.held, self.cut, self.lines, self.end);
            self.held.clear();
        }
    }

    /// Forgets the held record (its lines will be read again).
    pub(crate) fn reset(&mut self) {
        self.held.clear();
        self.last = None;
    }
}

fn strip_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// FNV-1a, 64 bits: stable across builds, so checkpoints outlive an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What makes a file the same file: device, inode, and a hash of its first `fp_len` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    fp_len: u64,
    fp: u64,
}

/// Reads up to `len` first bytes of `file`.
fn first_bytes(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl Identity {
    fn of(file: &File) -> io::Result<Identity> {
        let meta = file.metadata()?;
        let first = first_bytes(file, FINGERPRINT_BYTES)?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: first.len() as u64,
            fp: fnv1a(&first),
        })
    }

    /// Whether `file` (whose device and inode are `meta`'s) is this file: same inode, and
    /// its first `fp_len` bytes are the ones hashed.
    fn is(&self, file: &File, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino && self.prefix_matches(file)
    }

    fn prefix_matches(&self, file: &File) -> bool {
        first_bytes(file, self.fp_len as usize)
            .is_ok_and(|b| b.len() as u64 == self.fp_len && fnv1a(&b) == self.fp)
    }
}

/// One file's entry in the checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Saved {
    path: PathBuf,
    #[serde(flatten)]
    id: Identity,
    offset: u64,
}

/// The checkpoint file's content.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    files: Vec<Saved>,
}

/// Where the checkpoint of input `name` is.
fn checkpoint_path(state_dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    state_dir.join("file-input").join(format!("{safe}.json"))
}

fn load_checkpoint(path: &Path) -> io::Result<Option<Checkpoint>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the checkpoint to a temporary file, syncs it, renames it over the old one and
/// syncs the directory.
fn save_checkpoint(path: &Path, cp: &Checkpoint) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(cp).map_err(io::Error::other)?)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// A file being followed.
struct Tracked {
    /// The path it was found under (where it was before a rotation).
    path: PathBuf,
    file: File,
    id: Identity,
    /// The next byte to read.
    read_pos: u64,
    /// After the last line handed to the pipeline.
    offset: u64,
    /// After the last line the writers have (`flush` returned): what is checkpointed.
    committed: u64,
    lines: Lines,
    /// Lines joined into records, with `multiline`.
    multi: Option<Multiline>,
    /// The tag of its lines.
    tag: Vec<u8>,
    /// Renamed or deleted: read to its end, then given up after [`ROTATED_GRACE`] idle.
    rotated: bool,
    /// When a read last found new bytes (or it was rotated).
    active: Instant,
    /// A hash of its file name, to find it among the names inotify says were written.
    name_hash: u64,
}

impl Tracked {
    fn new(
        path: PathBuf,
        file: File,
        id: Identity,
        at: u64,
        s: &FileInputSettings,
        rule: Option<&std::sync::Arc<MultilineRule>>,
    ) -> Tracked {
        let tag = tag_of(&path, s);
        let name_hash = name_hash(path.file_name().unwrap_or_default());
        Tracked {
            path,
            file,
            id,
            read_pos: at,
            offset: at,
            committed: at,
            lines: Lines::new(s.max_line_bytes),
            multi: rule.map(|r| Multiline::new(r.clone())),
            tag,
            rotated: false,
            active: Instant::now(),
            name_hash,
        }
    }

    fn saved(&self) -> Saved {
        Saved {
            path: self.path.clone(),
            id: self.id.clone(),
            offset: self.committed,
        }
    }
}

/// The hash of a file name that [`Tracked::name_hash`] and [`Reader::touched`] hold.
fn name_hash(name: &std::ffi::OsStr) -> u64 {
    fnv1a(name.as_bytes())
}

/// The tag of a file's lines: the input's `tag`, else the file's stem.
fn tag_of(path: &Path, s: &FileInputSettings) -> Vec<u8> {
    match &s.tag {
        Some(t) if t.contains('{') => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let stem = path
                .file_stem()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            t.replace("{file.stem}", &stem)
                .replace("{file}", &name)
                .into_bytes()
        }
        Some(t) => t.as_bytes().to_vec(),
        None => path
            .file_stem()
            .map(|s| s.as_bytes().to_vec())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| b"file".to_vec()),
    }
}

/// Whether `path` is a rotated generation (`x.log.1`, `x.log-20261121.gz`) of a file that
/// is there beside it.
fn is_generation(path: &Path) -> bool {
    let (dir, name) = fileset::split(path);
    let found = fileset::generation_splits(&name).any(|k| dir.join(&name[..k]).is_file());
    found
}

/// The end of the last whole line of `file` (of size `size`): where `from = "tail"` starts.
fn tail_start(file: &File, size: u64) -> u64 {
    let from = size.saturating_sub(READ_BYTES as u64);
    let mut buf = vec![0u8; (size - from) as usize];
    match file.read_exact_at(&mut buf, from) {
        Ok(()) => match memchr::memrchr(b'\n', &buf) {
            Some(i) => from + i as u64 + 1,
            None if from == 0 => 0,
            None => size,
        },
        Err(_) => size,
    }
}

/// The reader thread's state.
struct Reader {
    ctx: InputContext,
    s: FileInputSettings,
    pipeline: Pipeline,
    handle: tokio::runtime::Handle,
    source: Source,
    files: Vec<Tracked>,
    inotify: Option<inotify::Inotify>,
    watched: HashSet<PathBuf>,
    /// Paths that failed to open, warned about once.
    unreadable: HashSet<PathBuf>,
    checkpoint: PathBuf,
    saved: Option<Checkpoint>,
    last_save: Option<Instant>,
    save_failed: bool,
    buf: Vec<u8>,
    /// The `multiline` rule every file of the input shares.
    rule: Option<std::sync::Arc<MultilineRule>>,
    /// Files closed while idle (`close_inactive_secs`, `max_open_files`, `ignore_older_secs`)
    /// and their offsets: opened again once they grow, checkpointed meanwhile.
    dormant: std::collections::BTreeMap<PathBuf, Saved>,
    /// Paths the last scan found to read (new, or dormant and grown) that wait for a
    /// descriptor (`max_open_files`): opened as files are read and closed, without a rescan.
    waiting: std::collections::VecDeque<PathBuf>,
    /// The hashes of the file names inotify said were written since the last round (at
    /// most [`TOUCHED_MAX`]; more make the round full): a round that is not full looks only
    /// at the files so named (in any watched directory: a name matched in the wrong one, or
    /// a hash shared, costs one read that finds nothing).
    touched: Vec<u64>,
}

/// Longest [`spawn`] waits for the input's first scan.
const FIRST_SCAN_WAIT: Duration = Duration::from_secs(10);

/// Spawns the input's thread and returns once its first scan has fixed where each file
/// present is read from (or after [`FIRST_SCAN_WAIT`]). So a file written after the daemon
/// says it is ready is new to the input, and read from its start: on a first start without
/// `from = "head"`, a line written between "ready" and a later scan was taken for old and
/// skipped (seen in CI under load). Must run inside the tokio runtime.
pub fn spawn(s: &FileInputSettings, ctx: InputContext) -> io::Result<()> {
    let (scanned_tx, scanned) = std::sync::mpsc::channel::<()>();
    let name = ctx.name.clone();
    let handle = tokio::runtime::Handle::current();
    let checkpoint = checkpoint_path(&ctx.state_dir, &ctx.name);
    let s = s.clone();
    let s_rule = s
        .multiline
        .as_ref()
        .and_then(MultilineRule::new)
        .map(std::sync::Arc::new);
    std::thread::Builder::new()
        .name(format!("file-{}", ctx.name))
        .spawn(move || {
            let _trackers = ctx.trackers.clone();
            let inotify = match inotify::Inotify::init() {
                Ok(i) => Some(i),
                Err(e) => {
                    tracing::info!(input = %ctx.name, error = %e, "no inotify; the files are polled every second");
                    None
                }
            };
            let mut r = Reader {
                pipeline: ctx.pipeline(),
                // A syslog line carries its own time; a plain line gets the time it was read.
                source: ctx.local_source(s.syslog_lines),
                ctx,
                s,
                handle,
                files: Vec::new(),
                inotify,
                watched: HashSet::new(),
                unreadable: HashSet::new(),
                checkpoint,
                saved: None,
                last_save: None,
                save_failed: false,
                buf: vec![0u8; READ_BYTES],
                rule: s_rule,
                dormant: std::collections::BTreeMap::new(),
                waiting: std::collections::VecDeque::new(),
                touched: Vec::new(),
            };
            r.start();
            let _ = scanned_tx.send(());
            r.run();
        })?;
    if scanned.recv_timeout(FIRST_SCAN_WAIT).is_err() {
        tracing::warn!(input = %name, "the first scan of the files took over {FIRST_SCAN_WAIT:?}; going on without waiting for it");
    }
    Ok(())
}

impl Reader {
    fn stopping(&self) -> bool {
        *self.ctx.stop.borrow() || self.ctx.stop.has_changed().is_err()
    }

    /// The files the patterns match now, less the excluded ones and rotated generations.
    fn matching(&mut self) -> BTreeSet<PathBuf> {
        let mut bad = Vec::new();
        let out = self.matching_files(&mut bad);
        // A FIFO, a directory or a socket where a log file is expected is bad input: said
        // once per path, counted, never read.
        for (path, t) in bad {
            if self.unreadable.insert(path.clone()) {
                let what = if t.is_dir() {
                    "a directory (match the files in it, such as DIR/*.log)"
                } else if t.is_fifo() {
                    "a FIFO"
                } else {
                    "not a regular file"
                };
                tracing::warn!(input = %self.ctx.name, path = %path.display(), "a path that matches `paths` is {what}; it is not read");
                self.ctx.stats.bad_files.fetch_add(1, Relaxed);
            }
        }
        out
    }

    /// The regular files the patterns match, less the excluded ones and rotated generations;
    /// `bad` gets the other kinds of files they match.
    fn matching_files(&self, bad: &mut Vec<(PathBuf, std::fs::FileType)>) -> BTreeSet<PathBuf> {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let exclude: Vec<glob::Pattern> = self
            .s
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let mut out = BTreeSet::new();
        for pattern in &self.s.paths {
            let Ok(paths) = glob::glob_with(pattern, opts) else {
                continue;
            };
            for path in paths.flatten() {
                if exclude.iter().any(|e| e.matches_path_with(&path, opts)) || is_generation(&path)
                {
                    continue;
                }
                // A symbolic link to a file is read as the file, with this process's rights
                // (Kubernetes' /var/log/containers/*.log are links); the privileged parent
                // never follows one.
                match std::fs::metadata(&path).map(|m| m.file_type()) {
                    Ok(t) if t.is_file() => {
                        out.insert(path);
                    }
                    Ok(t) => bad.push((path, t)),
                    Err(_) => {}
                }
            }
        }
        out
    }

    fn open(&mut self, path: &Path) -> Option<(File, Identity)> {
        let opened =
            crate::host::fsops::open_input(path).and_then(|f| Identity::of(&f).map(|id| (f, id)));
        match opened {
            Ok(o) => {
                self.unreadable.remove(path);
                Some(o)
            }
            Err(e) => {
                if self.unreadable.insert(path.to_path_buf()) {
                    tracing::warn!(input = %self.ctx.name, path = %path.display(), error = %e, "cannot read a file that matches `paths`; trying again every second");
                }
                None
            }
        }
    }

    /// The first scan: resumes checkpointed files, finds those rotated while stopped.
    fn start(&mut self) {
        let saved = match load_checkpoint(&self.checkpoint) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(input = %self.ctx.name, path = %self.checkpoint.display(), error = %e, "cannot read the checkpoint; following the files afresh");
                None
            }
        };
        let first_start = saved.is_none();
        let mut left: Vec<Saved> = saved.map(|c| c.files).unwrap_or_default();
        for path in self.matching() {
            // A checkpointed file with nothing new stays closed until it grows.
            if let Some(i) = left.iter().position(|s| s.path == path) {
                if std::fs::metadata(&path).is_ok_and(|m| {
                    m.dev() == left[i].id.dev
                        && m.ino() == left[i].id.ino
                        && m.len() == left[i].offset
                }) {
                    let d = left.swap_remove(i);
                    self.dormant.insert(d.path.clone(), d);
                    continue;
                }
            }
            if !left.iter().any(|s| s.path == path) && self.too_old(&path) {
                continue;
            }
            if self.files.len() >= self.s.max_open_files {
                // Found by the next scans, as descriptors free up; a checkpointed one keeps
                // its offset meanwhile.
                if let Some(i) = left.iter().position(|s| s.path == path) {
                    let d = left.swap_remove(i);
                    self.dormant.insert(d.path.clone(), d);
                }
                continue;
            }
            let Some((file, id)) = self.open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let size = meta.len();
            let resumed = left.iter().position(|s| s.id.is(&file, &meta));
            let at = match resumed {
                Some(i) => {
                    let s = left.swap_remove(i);
                    if s.offset > size {
                        self.ctx.stats.truncations.fetch_add(1, Relaxed);
                        0
                    } else {
                        s.offset
                    }
                }
                None if first_start && !self.s.from_head => tail_start(&file, size),
                None => 0,
            };
            tracing::debug!(input = %self.ctx.name, path = %path.display(), offset = at, "following");
            self.files.push(Tracked::new(
                path,
                file,
                id,
                at,
                &self.s,
                self.rule.as_ref(),
            ));
        }
        // Checkpointed files no longer at their path: rotated while logwelld was stopped.
        for s in left {
            let Some(file) = self.find_generation(&s.path, &s.id, s.offset, true) else {
                self.read_compressed_rest(&s.path, &s.id, s.offset);
                continue;
            };
            {
                tracing::info!(input = %self.ctx.name, path = %s.path.display(), offset = s.offset, "reading the rest of a file rotated while stopped");
                self.ctx.stats.rotations.fetch_add(1, Relaxed);
                let mut t = Tracked::new(s.path, file, s.id, s.offset, &self.s, self.rule.as_ref());
                t.rotated = true;
                // Read before the new file at its path.
                self.files.insert(0, t);
            }
        }
        self.limit_open();
        self.watch_dirs();
        self.save(true);
    }

    /// `ignore_older_secs`: a file first seen unmodified for that long is not read; it is
    /// kept, closed, at its end, so only what it gets later is read. Whether it was.
    fn too_old(&mut self, path: &Path) -> bool {
        let Some(limit) = self.s.ignore_older else {
            return false;
        };
        let old = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= limit));
        if !old {
            return false;
        }
        if let Some((file, id)) = self.open(path) {
            let offset = file.metadata().map(|m| m.len()).unwrap_or(0);
            tracing::debug!(input = %self.ctx.name, path = %path.display(), "older than ignore_older_secs: only what it gets from now on is read");
            let d = Saved {
                path: path.to_path_buf(),
                id,
                offset,
            };
            self.dormant.insert(d.path.clone(), d);
        }
        true
    }

    /// Whether file `i` may be closed now: followed at its path, read to its end, and every
    /// line the writers have (nothing held that a reopen would not read again).
    fn closable(&self, i: usize) -> bool {
        let t = &self.files[i];
        !t.rotated
            && t.committed == t.read_pos
            && t.file.metadata().is_ok_and(|m| m.len() == t.read_pos)
    }

    /// Closes file `i`, keeping its offset among the dormant ones.
    fn make_dormant(&mut self, i: usize) {
        let t = self.files.remove(i);
        tracing::debug!(input = %self.ctx.name, path = %t.path.display(), "closed while idle; opened again when it grows");
        self.dormant.insert(t.path.clone(), t.saved());
    }

    /// `max_open_files`: closes the files idle longest while more are open.
    fn limit_open(&mut self) {
        while self.files.len() > self.s.max_open_files {
            let victim = (0..self.files.len())
                .filter(|&i| self.closable(i))
                .min_by_key(|&i| self.files[i].active);
            match victim {
                Some(i) => self.make_dormant(i),
                None => break,
            }
        }
    }

    /// `close_inactive_secs`: closes the files that have not grown for that long.
    fn close_inactive(&mut self) {
        // One clock read a round, not one per file.
        let now = Instant::now();
        let mut i = 0;
        while i < self.files.len() {
            if now.saturating_duration_since(self.files[i].active) >= self.s.close_inactive
                && self.closable(i)
            {
                self.make_dormant(i);
            } else {
                i += 1;
            }
        }
    }

    /// `partial_line_timeout_ms`: hands on a last line still without its newline.
    fn hand_on_partial_lines(&mut self) {
        let Some(limit) = self.s.partial_line_timeout else {
            return;
        };
        let now = Instant::now();
        for t in &mut self.files {
            if t.rotated || now.saturating_duration_since(t.active) < limit {
                continue;
            }
            let Some((text, cut)) = t.lines.take_held() else {
                continue;
            };
            let path = t.path.as_os_str().as_bytes().to_vec();
            let fields = [(&b"path"[..], &path[..])];
            let (pipeline, s, source, tag) = (&mut self.pipeline, &self.s, &self.source, &t.tag);
            let end = t.read_pos;
            match &mut t.multi {
                None => {
                    push_line(pipeline, s, source, tag, &fields, &text, cut);
                    t.offset = end;
                }
                Some(m) => m.line(&text, cut, end, Instant::now(), &mut |rec, cut, _, e| {
                    push_line(pipeline, s, source, tag, &fields, rec, cut);
                    t.offset = e;
                }),
            }
        }
    }

    /// The newest uncompressed generation of `path` that is the file `id` (by inode, when
    /// `same_inode`, else by its first bytes: a copy) and holds at least `offset` bytes.
    fn find_generation(
        &self,
        path: &Path,
        id: &Identity,
        offset: u64,
        same_inode: bool,
    ) -> Option<File> {
        let gens = fileset::list(path).ok()?;
        gens.iter()
            .rev()
            .filter(|g| g.compression == fileset::Compression::None && g.size >= offset)
            .filter(|g| same_inode == (g.inode == id.ino))
            .find_map(|g| {
                let f = crate::host::fsops::open_input(&g.path).ok()?;
                id.prefix_matches(&f).then_some(f)
            })
    }

    /// The rest past `offset` of the file `id` once at `path`, from a generation that was
    /// compressed before it was read to its end (a restart, or a file closed while idle):
    /// the newest `.gz` or `.zst` generation whose first bytes, decompressed, are the
    /// file's. Hands its lines on and returns whether one was found.
    fn read_compressed_rest(&mut self, path: &Path, id: &Identity, offset: u64) -> bool {
        let Ok(gens) = fileset::list(path) else {
            return false;
        };
        let open = |g: &fileset::Generation| -> Option<Box<dyn io::Read>> {
            let f = crate::host::fsops::open_input(&g.path).ok()?;
            match g.compression {
                fileset::Compression::Gzip => Some(Box::new(flate2::read::MultiGzDecoder::new(
                    io::BufReader::new(f),
                ))),
                fileset::Compression::Zstd => zstd::stream::read::Decoder::new(f)
                    .ok()
                    .map(|d| Box::new(d) as Box<dyn io::Read>),
                fileset::Compression::None => None,
            }
        };
        let same = |g: &fileset::Generation| {
            let Some(mut r) = open(g) else { return false };
            let mut first = vec![0u8; id.fp_len as usize];
            io::Read::read_exact(&mut r, &mut first).is_ok() && fnv1a(&first) == id.fp
        };
        let Some(found) = gens
            .iter()
            .rev()
            .filter(|g| g.compression != fileset::Compression::None)
            .find(|g| same(g))
        else {
            return false;
        };
        let Some(mut r) = open(found) else {
            return false;
        };
        // Skip what was read already.
        if io::copy(&mut io::Read::take(&mut r, offset), &mut io::sink())
            .map_or(true, |n| n < offset)
        {
            return false;
        }
        tracing::info!(input = %self.ctx.name, path = %found.path.display(), offset, "reading the rest of a rotated file from its compressed generation");
        self.ctx.stats.rotations.fetch_add(1, Relaxed);
        let tag = tag_of(path, &self.s);
        let path_bytes = path.as_os_str().as_bytes().to_vec();
        let fields = [(&b"path"[..], &path_bytes[..])];
        let mut lines = Lines::new(self.s.max_line_bytes);
        let mut multi = self.rule.as_ref().map(|r| Multiline::new(r.clone()));
        let mut buf = vec![0u8; READ_BYTES];
        let mut done = false;
        while !done {
            let n = match io::Read::read(&mut r, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(input = %self.ctx.name, path = %found.path.display(), error = %e, "cannot read a compressed generation to its end");
                    0
                }
            };
            done = n == 0;
            let (pipeline, s, source) = (&mut self.pipeline, &self.s, &self.source);
            let mut emit = |rec: &[u8], cut: bool, _: usize, _: u64| {
                push_line(pipeline, s, source, &tag, &fields, rec, cut)
            };
            lines.feed(&buf[..n], |text, cut, _| match &mut multi {
                None => emit(text, cut, 1, 0),
                Some(m) => m.line(text, cut, 0, Instant::now(), &mut emit),
            });
            if done {
                // The end of the file ends its last line and record.
                if let Some((text, cut)) = lines.take_held() {
                    match &mut multi {
                        None => emit(&text, cut, 1, 0),
                        Some(m) => m.line(&text, cut, 0, Instant::now(), &mut emit),
                    }
                }
                if let Some(m) = &mut multi {
                    m.take(&mut emit);
                }
            }
            if self.pipeline.needs_flush() {
                self.handle.block_on(self.pipeline.flush());
            }
        }
        self.flush();
        true
    }

    /// Watches the patterns' directories and those of the files followed.
    fn watch_dirs(&mut self) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let mut dirs: Vec<PathBuf> = self
            .s
            .paths
            .iter()
            .filter_map(|p| Path::new(p).parent())
            .filter(|d| !d.to_string_lossy().contains(['*', '?', '[']))
            .map(Path::to_path_buf)
            .collect();
        dirs.extend(
            self.files
                .iter()
                .filter_map(|t| t.path.parent().map(Path::to_path_buf)),
        );
        let mask = inotify::WatchMask::MODIFY
            | inotify::WatchMask::CREATE
            | inotify::WatchMask::MOVED_TO
            | inotify::WatchMask::MOVED_FROM
            | inotify::WatchMask::DELETE;
        for d in dirs {
            if self.watched.contains(&d) {
                continue;
            }
            match inotify.watches().add(&d, mask) {
                Ok(_) => {
                    self.watched.insert(d);
                }
                Err(e) => {
                    tracing::debug!(input = %self.ctx.name, dir = %d.display(), error = %e, "cannot watch with inotify yet; polling")
                }
            }
        }
    }

    /// Adds the files the patterns match that are not followed yet, from their start.
    fn scan(&mut self) {
        let matching = self.matching();
        let followed: HashSet<PathBuf> = self
            .files
            .iter()
            .filter(|t| !t.rotated)
            .map(|t| t.path.clone())
            .collect();
        let mut woken = Vec::new();
        self.waiting.clear();
        for path in &matching {
            if followed.contains(path) {
                continue;
            }
            if let Some(d) = self.dormant.get(path) {
                let idle = std::fs::metadata(path).is_ok_and(|m| {
                    m.dev() == d.id.dev && m.ino() == d.id.ino && m.len() == d.offset
                });
                if !idle {
                    woken.push(path.clone());
                }
                continue;
            }
            if self.too_old(path) {
                continue;
            }
            if !self.waiting.is_empty() || !self.room() {
                // Every descriptor is busy: opened once files were read ([`Reader::fill`]).
                self.waiting.push_back(path.clone());
                continue;
            }
            if let Some((file, id)) = self.open(path) {
                tracing::debug!(input = %self.ctx.name, path = %path.display(), "following a new file");
                self.files.push(Tracked::new(
                    path.clone(),
                    file,
                    id,
                    0,
                    &self.s,
                    self.rule.as_ref(),
                ));
            }
        }
        // Dormant files that grew, were replaced, or are gone from their path.
        woken.extend(
            self.dormant
                .keys()
                .filter(|p| !matching.contains(*p))
                .cloned(),
        );
        for path in woken {
            if !self.waiting.is_empty() || !self.room() {
                self.waiting.push_back(path);
                continue;
            }
            if let Some(d) = self.dormant.remove(&path) {
                self.wake(d);
            }
        }
        self.limit_open();
        self.watch_dirs();
    }

    /// Opens the paths waiting for a descriptor while there is room. Whether it opened any.
    fn fill(&mut self) -> bool {
        let mut opened = false;
        while let Some(path) = self.waiting.pop_front() {
            if self.files.iter().any(|t| !t.rotated && t.path == path) {
                continue;
            }
            if !self.room() {
                self.waiting.push_front(path);
                break;
            }
            match self.dormant.remove(&path) {
                Some(d) => self.wake(d),
                None => {
                    if let Some((file, id)) = self.open(&path) {
                        self.files.push(Tracked::new(
                            path,
                            file,
                            id,
                            0,
                            &self.s,
                            self.rule.as_ref(),
                        ));
                    }
                }
            }
            opened = true;
        }
        opened
    }

    /// Whether another file may be opened under `max_open_files`, closing the one idle
    /// longest if that makes room.
    fn room(&mut self) -> bool {
        if self.files.len() < self.s.max_open_files {
            return true;
        }
        let victim = (0..self.files.len())
            .filter(|&i| self.closable(i))
            .min_by_key(|&i| self.files[i].active);
        match victim {
            Some(i) => {
                self.make_dormant(i);
                true
            }
            None => false,
        }
    }

    /// Opens a dormant file again: at its offset when it is still the file at its path, else
    /// its rest from a rotated generation, then whatever is at the path from its start.
    fn wake(&mut self, d: Saved) {
        let at_path = self.open(&d.path);
        if let Some((file, id)) = at_path {
            if let Ok(meta) = file.metadata() {
                if d.id.is(&file, &meta) {
                    let at = if meta.len() < d.offset {
                        self.ctx.stats.truncations.fetch_add(1, Relaxed);
                        0
                    } else {
                        d.offset
                    };
                    self.files.push(Tracked::new(
                        d.path,
                        file,
                        id,
                        at,
                        &self.s,
                        self.rule.as_ref(),
                    ));
                    return;
                }
            }
            // Replaced: the old file's rest first (rotated while closed), then the new one.
            self.ctx.stats.rotations.fetch_add(1, Relaxed);
            if let Some(old) = self.find_generation(&d.path, &d.id, d.offset, true) {
                let mut t = Tracked::new(
                    d.path.clone(),
                    old,
                    d.id,
                    d.offset,
                    &self.s,
                    self.rule.as_ref(),
                );
                t.rotated = true;
                self.files.push(t);
            } else {
                self.read_compressed_rest(&d.path, &d.id, d.offset);
            }
            self.files.push(Tracked::new(
                d.path,
                file,
                id,
                0,
                &self.s,
                self.rule.as_ref(),
            ));
            return;
        }
        // Gone from its path: read what a rotation left of it, then forget it.
        if let Some(old) = self.find_generation(&d.path, &d.id, d.offset, true) {
            self.ctx.stats.rotations.fetch_add(1, Relaxed);
            let mut t = Tracked::new(d.path, old, d.id, d.offset, &self.s, self.rule.as_ref());
            t.rotated = true;
            self.files.push(t);
        } else {
            self.read_compressed_rest(&d.path, &d.id, d.offset);
        }
    }

    /// Whether file `i` is looked at and read in a round that is not `full`: rotated (read by
    /// its descriptor, whatever name it has now), or named by a write inotify reported.
    fn due(&self, i: usize, full: bool) -> bool {
        let t = &self.files[i];
        full || t.rotated || self.touched.contains(&t.name_hash)
    }

    /// Looks at each followed file's path (every one when `full`, else those written since
    /// the last round): renamed, deleted, replaced or truncated.
    fn check_rotations(&mut self, full: bool) -> bool {
        let mut replaced = false;
        let mut i = 0;
        while i < self.files.len() {
            let due = self.due(i, full);
            let t = &mut self.files[i];
            i += 1;
            if t.rotated || !due {
                continue;
            }
            let at_path = std::fs::metadata(&t.path);
            let same = at_path
                .as_ref()
                .is_ok_and(|m| m.dev() == t.id.dev && m.ino() == t.id.ino);
            if !same {
                tracing::info!(input = %self.ctx.name, path = %t.path.display(), "file rotated (renamed, deleted or replaced): reading the old one to its end");
                t.rotated = true;
                t.active = Instant::now();
                self.ctx.stats.rotations.fetch_add(1, Relaxed);
                replaced = true;
                continue;
            }
            let Ok(meta) = t.file.metadata() else {
                continue;
            };
            let shorter = meta.len() < t.read_pos;
            if shorter || (t.id.fp_len > 0 && !t.id.prefix_matches(&t.file)) {
                if self.truncated(i - 1) {
                    i += 1;
                }
            } else if (t.id.fp_len as usize) < FINGERPRINT_BYTES && meta.len() > t.id.fp_len {
                if let Ok(id) = Identity::of(&t.file) {
                    t.id = id;
                }
            }
        }
        replaced
    }

    /// The file at index `i` was truncated (copytruncate): read the copy logrotate made from
    /// where we were, then the file from its start. Returns whether the copy was inserted
    /// (at `i`, moving the file to `i + 1`).
    fn truncated(&mut self, i: usize) -> bool {
        self.ctx.stats.truncations.fetch_add(1, Relaxed);
        let t = &self.files[i];
        tracing::info!(input = %self.ctx.name, path = %t.path.display(), offset = t.offset, "file truncated (copytruncate?): reading it again from its start");
        // logrotate's copy holds the old file's first bytes; read what it holds past where
        // we were (nothing when we had read further than it before the truncation).
        let copy = (t.offset > 0)
            .then(|| self.find_generation(&t.path, &t.id, 0, false))
            .flatten();
        let t = &self.files[i];
        let inserted = match copy {
            Some(copy) if copy.metadata().is_ok_and(|m| m.len() > t.offset) => {
                match Identity::of(&copy) {
                    Ok(id) => {
                        let mut c = Tracked::new(
                            t.path.clone(),
                            copy,
                            id,
                            t.offset,
                            &self.s,
                            self.rule.as_ref(),
                        );
                        c.committed = t.committed;
                        c.rotated = true;
                        self.files.insert(i, c);
                        true
                    }
                    Err(_) => false,
                }
            }
            Some(_) => false,
            None => {
                if t.offset > 0 {
                    tracing::warn!(input = %self.ctx.name, path = %t.path.display(), "the truncated file's copy was not found (compressed at once, or not copytruncate): what was written since the last read is lost");
                }
                false
            }
        };
        // A record held: logrotate's copy reads its lines again; without a copy they are
        // handed on as they are.
        let held = (!inserted)
            .then(|| {
                let t = &mut self.files[i];
                let mut record = None;
                if let Some(m) = &mut t.multi {
                    m.take(&mut |text, cut, _, _| record = Some((text.to_vec(), cut)));
                }
                record.map(|(text, cut)| (text, cut, t.path.clone(), t.tag.clone()))
            })
            .flatten();
        if let Some((text, cut, path, tag)) = held {
            let path = path.as_os_str().as_bytes().to_vec();
            let fields = [(&b"path"[..], &path[..])];
            push_line(
                &mut self.pipeline,
                &self.s,
                &self.source,
                &tag,
                &fields,
                &text,
                cut,
            );
        }
        let t = &mut self.files[i + usize::from(inserted)];
        t.read_pos = 0;
        t.offset = 0;
        t.committed = 0;
        t.lines.reset();
        if let Some(m) = &mut t.multi {
            m.reset();
        }
        if let Ok(id) = Identity::of(&t.file) {
            t.id = id;
        }
        inserted
    }

    /// Reads every file (when `full`, else those due): new lines to the pipeline. Returns
    /// whether a file has more to read than one round takes.
    fn read_all(&mut self, full: bool) -> bool {
        let mut more = false;
        for i in 0..self.files.len() {
            if self.due(i, full) {
                more |= self.read_file(i);
            }
        }
        more
    }

    fn read_file(&mut self, i: usize) -> bool {
        let path = self.files[i].path.as_os_str().as_bytes().to_vec();
        let fields = [(&b"path"[..], &path[..])];
        let mut budget = ROUND_BYTES;
        loop {
            let t = &mut self.files[i];
            let n = match t.file.read_at(&mut self.buf, t.read_pos) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(input = %self.ctx.name, path = %t.path.display(), error = %e, "cannot read");
                    return false;
                }
            };
            if n == 0 {
                return false;
            }
            t.active = Instant::now();
            let at = t.read_pos;
            let (s, source, pipeline) = (&self.s, &self.source, &mut self.pipeline);
            // The offset moves only past lines handed on: a read that only adds to a held
            // line or multi-line record (read earlier, so before `at`) leaves it where the
            // held text starts, and a restart reads that text again.
            let mut ended = t.offset;
            let tag = &t.tag;
            let stats = &self.ctx.stats;
            let now = Instant::now();
            let (lines, multi) = (&mut t.lines, &mut t.multi);
            lines.feed(&self.buf[..n], |text, cut, end| match multi {
                None => {
                    push_line(pipeline, s, source, tag, &fields, text, cut);
                    ended = at + end as u64;
                }
                Some(m) => m.line(text, cut, at + end as u64, now, &mut |rec, cut, n, end| {
                    if n > 1 {
                        stats.multiline.fetch_add(1, Relaxed);
                    }
                    push_line(pipeline, s, source, tag, &fields, rec, cut);
                    ended = end;
                }),
            });
            t.offset = t.offset.max(ended);
            t.read_pos += n as u64;
            if self.pipeline.needs_flush() {
                self.flush();
            }
            budget = budget.saturating_sub(n as u64);
            if budget == 0 {
                return true;
            }
        }
    }

    /// Hands on the multi-line records that waited their timeout for another line.
    fn hand_on_due_records(&mut self) {
        let now = Instant::now();
        for t in &mut self.files {
            let Some(m) = &mut t.multi else { continue };
            if !m.due(now) {
                continue;
            }
            let path = t.path.as_os_str().as_bytes().to_vec();
            let fields = [(&b"path"[..], &path[..])];
            let (pipeline, s, source, tag, stats) = (
                &mut self.pipeline,
                &self.s,
                &self.source,
                &t.tag,
                &self.ctx.stats,
            );
            let mut ended = t.offset;
            m.take(&mut |rec, cut, n, end| {
                if n > 1 {
                    stats.multiline.fetch_add(1, Relaxed);
                }
                push_line(pipeline, s, source, tag, &fields, rec, cut);
                ended = end;
            });
            t.offset = t.offset.max(ended);
        }
    }

    fn flush(&mut self) {
        if self.pipeline.is_pending() {
            self.handle.block_on(self.pipeline.flush());
        }
        for t in &mut self.files {
            t.committed = t.offset;
        }
    }

    /// Gives up rotated files idle past their grace (or every one, when stopping is final
    /// and they are read to their end), handing on a last line without its LF.
    fn close_idle(&mut self) {
        let mut gone = Vec::new();
        for (i, t) in self.files.iter().enumerate() {
            if t.rotated && t.active.elapsed() >= ROTATED_GRACE {
                gone.push(i);
            }
        }
        if gone.is_empty() {
            return;
        }
        for &i in gone.iter().rev() {
            let mut t = self.files.remove(i);
            let path = t.path.as_os_str().as_bytes().to_vec();
            let fields = [(&b"path"[..], &path[..])];
            let (pipeline, s, source, tag) = (&mut self.pipeline, &self.s, &self.source, &t.tag);
            let held = t.lines.take_held();
            match &mut t.multi {
                None => {
                    if let Some((text, cut)) = held {
                        push_line(pipeline, s, source, tag, &fields, &text, cut);
                    }
                }
                Some(m) => {
                    let mut emit = |rec: &[u8], cut: bool, _: usize, _: u64| {
                        push_line(pipeline, s, source, tag, &fields, rec, cut)
                    };
                    if let Some((text, cut)) = held {
                        m.line(&text, cut, t.read_pos, Instant::now(), &mut emit);
                    }
                    m.take(&mut emit);
                }
            }
            tracing::debug!(input = %self.ctx.name, path = %t.path.display(), "rotated file read to its end");
        }
        self.flush();
    }

    /// Writes the checkpoint if it changed and is due (or `force`), and measures the lag.
    fn save(&mut self, force: bool) {
        if !force && self.last_save.is_some_and(|t| t.elapsed() < SAVE_INTERVAL) {
            return;
        }
        let watched: Vec<crate::stats::WatchedFile> = self
            .files
            .iter()
            .filter_map(|t| {
                let size = t.file.metadata().ok()?.len();
                Some(crate::stats::WatchedFile {
                    path: t.path.to_string_lossy().into_owned(),
                    size,
                    offset: t.committed,
                    lag_bytes: size.saturating_sub(t.committed),
                    rotated: t.rotated,
                })
            })
            .collect();
        let lag = watched.iter().map(|w| w.lag_bytes).sum();
        self.ctx.stats.lag_bytes.store(lag, Relaxed);
        *self
            .ctx
            .stats
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = watched;
        let cp = Checkpoint {
            files: self
                .files
                .iter()
                .map(Tracked::saved)
                .chain(self.dormant.values().cloned())
                .collect(),
        };
        // Looked at once per interval, changed or not: a quiet input with many files does
        // not measure and compare them at every round.
        self.last_save = Some(Instant::now());
        if self.saved.as_ref() == Some(&cp) {
            return;
        }
        match save_checkpoint(&self.checkpoint, &cp) {
            Ok(()) => {
                self.saved = Some(cp);
                if self.save_failed {
                    self.save_failed = false;
                    tracing::info!(input = %self.ctx.name, "file input checkpoint saved again");
                }
            }
            Err(e) if !self.save_failed => {
                self.save_failed = true;
                tracing::warn!(input = %self.ctx.name, path = %self.checkpoint.display(), error = %e, "cannot save the file input's checkpoint: a restart may repeat or skip lines (is state_dir writable?)");
            }
            Err(_) => {}
        }
    }

    /// Sleeps until inotify says something changed or [`WAKE`] passed; whether a file was
    /// created, moved or deleted (then the patterns are matched again). The names of the
    /// files written go to `touched`.
    fn wait(&mut self) -> bool {
        let Reader {
            inotify, touched, ..
        } = self;
        let Some(inotify) = inotify.as_mut() else {
            std::thread::sleep(WAKE);
            return false;
        };
        let mut pfd = libc::pollfd {
            fd: inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd that lives across the call.
        unsafe { libc::poll(&mut pfd, 1, WAKE.as_millis() as libc::c_int) };
        let mut changed = false;
        let mut buf = [0u8; 4096];
        while let Ok(events) = inotify.read_events(&mut buf) {
            let mut any = false;
            for e in events {
                any = true;
                match e.name {
                    Some(name) if e.mask.contains(inotify::EventMask::MODIFY) => {
                        // Past TOUCHED_MAX the round is full: no need to grow (or search).
                        let h = name_hash(name);
                        if touched.len() <= TOUCHED_MAX && !touched.contains(&h) {
                            touched.push(h);
                        }
                    }
                    // An event on a directory itself (its watch gone): look at everything.
                    None => changed = true,
                    Some(_) => {}
                }
                changed |= e.mask.intersects(
                    inotify::EventMask::CREATE
                        | inotify::EventMask::MOVED_TO
                        | inotify::EventMask::MOVED_FROM
                        | inotify::EventMask::DELETE
                        | inotify::EventMask::Q_OVERFLOW,
                );
            }
            if !any {
                break;
            }
        }
        changed
    }

    fn run(&mut self) {
        let mut last_scan = Instant::now();
        let mut last_full = Instant::now();
        let mut more = false;
        loop {
            let stopping = self.stopping();
            let changed = if more || stopping { false } else { self.wait() };
            self.pipeline.begin();
            // Only a round woken by writes alone looks at just the files written.
            let mut full = more
                || stopping
                || changed
                || self.inotify.is_none()
                || self.touched.len() > TOUCHED_MAX
                || last_full.elapsed() >= WAKE;
            if self.check_rotations(full)
                || changed
                || stopping
                || last_scan.elapsed() >= SCAN_EVERY
            {
                self.scan();
                last_scan = Instant::now();
                full = true;
            }
            let filled = self.fill();
            full |= filled;
            more = self.read_all(full) || filled;
            self.touched.clear();
            if full {
                last_full = Instant::now();
            }
            self.hand_on_due_records();
            self.hand_on_partial_lines();
            self.flush();
            self.close_idle();
            self.close_inactive();
            self.ctx.stats.files.store(self.files.len() as u64, Relaxed);
            self.save(stopping);
            if stopping {
                break;
            }
        }
        self.ctx.stats.files.store(0, Relaxed);
        self.ctx
            .stats
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Hands one line to the pipeline as a message.
fn push_line(
    pipeline: &mut Pipeline,
    s: &FileInputSettings,
    source: &Source,
    tag: &[u8],
    fields: &[(&[u8], &[u8])],
    text: &[u8],
    cut: bool,
) {
    if s.syslog_lines {
        if text.first() == Some(&b'<') {
            pipeline.push_with_fields(text, cut, source, fields);
            return;
        }
        // Files that syslog daemons write hold no PRI: the input's facility and severity
        // give it, so the header is read as it would be on the wire.
        thread_local! {
            static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        FRAME.with_borrow_mut(|frame| {
            frame.clear();
            let pri = u16::from(s.facility.code()) * 8 + u16::from(s.severity.code());
            let _ = write!(frame, "<{pri}>");
            frame.extend_from_slice(text);
            pipeline.push_with_fields(frame, cut, source, fields);
        });
        return;
    }
    let msg = Message {
        facility: s.facility,
        severity: s.severity,
        version: None,
        timestamp: None,
        hostname: None,
        appname: Some(tag),
        procid: None,
        msgid: None,
        structured_data: None,
        msg: text,
        flags: if cut {
            Flags::TRUNCATED
        } else {
            Flags::empty()
        },
        fields,
        parsed: None,
    };
    pipeline.push_message(msg, text.len() + 1, source, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<(String, bool, usize)>, Lines) {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        let mut base = 0;
        for c in chunks {
            lines.feed(c, |t, cut, end| {
                out.push((String::from_utf8_lossy(t).into_owned(), cut, base + end))
            });
            base += c.len();
        }
        (out, lines)
    }

    fn records(
        rule: crate::config::MultilineSettings,
        lines: &[&str],
    ) -> Vec<(String, bool, usize, u64)> {
        let rule = std::sync::Arc::new(MultilineRule::new(&rule).unwrap());
        let mut m = Multiline::new(rule);
        let mut out = Vec::new();
        let now = Instant::now();
        let mut end = 0;
        for l in lines {
            end += l.len() as u64 + 1;
            m.line(l.as_bytes(), false, end, now, &mut |r, cut, n, e| {
                out.push((String::from_utf8_lossy(r).into_owned(), cut, n, e))
            });
        }
        assert!(!m.due(now), "a record waits its timeout");
        assert!(m.due(now + Duration::from_secs(2)));
        m.take(&mut |r, cut, n, e| out.push((String::from_utf8_lossy(r).into_owned(), cut, n, e)));
        out
    }

    fn rule(start: Option<&str>, cont: Option<&str>) -> crate::config::MultilineSettings {
        crate::config::MultilineSettings {
            start: start.map(str::to_string),
            continues: cont.map(str::to_string),
            timeout: Duration::from_secs(1),
            max_lines: 500,
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn records_start_at_a_start_line_or_join_by_continue() {
        let lines = [
            "2026-12-07 ERROR boom",
            "Traceback (most recent call last):",
            "  File \"x.py\", line 1",
            "ZeroDivisionError: division by zero",
            "2026-12-07 INFO next",
        ];
        let got = records(rule(Some(r"^\d{4}-"), None), &lines);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, lines[..4].join("\n"));
        assert_eq!(
            (got[0].2, got[0].3),
            (4, 115),
            "four lines; the offset after the last"
        );
        assert_eq!(got[1].0, "2026-12-07 INFO next");
        // Indented lines join the one before.
        let got = records(
            rule(None, Some(r"^[ \t]")),
            &["a", "\tat x", "\tat y", "b", "c"],
        );
        let texts: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(texts, ["a\n\tat x\n\tat y", "b", "c"]);
        // A continuation first is a record of its own.
        let got = records(rule(Some("^S"), None), &["x", "S1", "y"]);
        let texts: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(texts, ["x", "S1\ny"]);
    }

    #[test]
    fn records_are_bounded_by_lines_and_bytes_and_marked() {
        let mut r = rule(Some("^S"), None);
        r.max_lines = 3;
        let got = records(r, &["S", "a", "b", "c", "d"]);
        assert_eq!(got[0], ("S\na\nb".to_string(), true, 3, 6));
        assert_eq!(
            got[1].0, "c\nd",
            "the next line begins a new record: nothing is lost"
        );
        let mut r = rule(Some("^S"), None);
        r.max_bytes = 8;
        let got = records(r, &["S123", "a12", "b12", "0123456789"]);
        assert_eq!(got[0].0, "S123\na12");
        assert!(got[0].1);
        assert_eq!(got[1].0, "b12");
        assert_eq!(got[2], ("01234567".to_string(), true, 1, 24));
    }

    #[test]
    fn lines_end_at_lf_and_lose_their_cr() {
        let (out, mut l) = split(100, &[b"a\r\nbb\n", b"c", b"c\r", b"\nd"]);
        assert_eq!(
            out,
            [
                ("a".into(), false, 3),
                ("bb".into(), false, 6),
                ("cc".into(), false, 10)
            ]
        );
        assert_eq!(l.take_held(), Some((b"d".to_vec(), false)));
    }

    #[test]
    fn long_lines_are_cut_and_their_rest_skipped() {
        let (out, _) = split(4, &[b"abcdefgh\nxy\n"]);
        assert_eq!(out, [("abcd".into(), true, 9), ("xy".into(), false, 12)]);
        let (out, _) = split(4, &[b"abcd\r", b"e\n"]);
        assert_eq!(out, [("abcd".into(), true, 7)]);
        let (out, _) = split(4, &[b"ab", b"cdef", b"gh", b"\nxyzw\r\n"]);
        assert_eq!(out, [("abcd".into(), true, 9), ("xyzw".into(), false, 15)]);
    }

    #[test]
    fn invalid_utf8_is_kept() {
        let mut lines = Lines::new(10);
        let mut got = Vec::new();
        lines.feed(b"\xff\xfe\n", |t, _, _| got.push(t.to_vec()));
        assert_eq!(got, [b"\xff\xfe".to_vec()]);
    }

    #[test]
    fn identity_sees_a_new_file_in_a_reused_inode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"first line\n").unwrap();
        let f = File::open(&p).unwrap();
        let id = Identity::of(&f).unwrap();
        assert!(id.is(&f, &f.metadata().unwrap()));
        std::fs::write(&p, b"other line\n").unwrap();
        assert!(!id.is(&f, &f.metadata().unwrap()));
    }

    #[test]
    fn generations_are_not_new_files() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "x.log",
            "x.log.1",
            "x.log.2.gz",
            "x.log-20261121",
            "y.log.1",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        assert!(!is_generation(&dir.path().join("x.log")));
        assert!(is_generation(&dir.path().join("x.log.1")));
        assert!(is_generation(&dir.path().join("x.log.2.gz")));
        assert!(is_generation(&dir.path().join("x.log-20261121")));
        assert!(!is_generation(&dir.path().join("y.log.1")));
    }

    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = checkpoint_path(dir.path(), "web/1");
        assert!(p.ends_with("file-input/web_1.json"));
        assert_eq!(load_checkpoint(&p).unwrap(), None);
        let cp = Checkpoint {
            files: vec![Saved {
                path: "/var/log/a.log".into(),
                id: Identity {
                    dev: 1,
                    ino: 2,
                    fp_len: 3,
                    fp: 4,
                },
                offset: 5,
            }],
        };
        save_checkpoint(&p, &cp).unwrap();
        assert_eq!(load_checkpoint(&p).unwrap(), Some(cp));
    }

    #[test]
    fn tail_starts_after_the_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"one\ntwo\nthr").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(tail_start(&f, 11), 8);
        std::fs::write(&p, b"partial").unwrap();
        assert_eq!(tail_start(&f, 7), 0);
    }
}
