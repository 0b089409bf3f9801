//! The per-action disk-assisted queue: records (opaque bytes, one message each) in memory up to
//! a bound, then in segment files under the action's directory (`STATE_DIR/queue/ACTION/`),
//! up to a disk bound; [`Queue::push`] answers [`Pushed::Full`] past it and the caller holds
//! its senders back. A disk that fails before that bound (`ENOSPC`, `EIO`) is not a reason to
//! hold senders back: the records go to memory, up to the memory bound, then are refused
//! ([`Pushed::Dropped`]) for the caller to drop and count; the disk is tried again every
//! [`DISK_RETRY`] and taken again once a write succeeds ([`DiskEvent`]). It knows nothing of the transport: the forward action
//! (`output::forward`) uses it, and any other action that needs at-least-once delivery can.
//!
//! Delivery is at least once. [`Queue::read`] hands out the next records without removing
//! them; [`Queue::ack`] removes them once the transport says they were delivered, and
//! [`Queue::rewind`] hands the unacknowledged ones out again (after a broken connection).
//!
//! On disk (see [`record`] for the record codec):
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: a segment, named by its sequence number (20 digits, so names
//!   sort in order). An 8-byte magic, then records. Appended to; removed once every record
//!   in it is acknowledged.
//! - `ack`: where the acknowledged records of the oldest segment end: segment number and
//!   offset, with a CRC. Written after each acknowledgement (a `pwrite` of 20 bytes);
//!   without it (or if it is damaged) the oldest segment is delivered from its start again.
//! - `lock`: held (`flock`) while a queue is open, so that two daemons, or an action
//!   restarted by a reload before the old one is done, never share the files.
//!
//! Opening scans every segment: a record cut short at the end of a file (a torn write from a
//! crash) is cut off at the last whole record. Bytes that are not records (a wrong length, a
//! checksum mismatch) are reported as corruption, copied to `NNN.seg.corrupt` beside the
//! segment (at most [`MAX_ASIDE_BYTES`]) and taken out: the records after them are found
//! again at the next position where a header and its checksum hold, and the segment is
//! rewritten without the damage (a temporary `NNN.seg.tmp` renamed over it; the checkpoint's
//! offset is moved with its record). Where no valid record follows, the rest is cut off. A
//! file without the magic is renamed `*.corrupt` and skipped. None of these stops the other
//! segments. Damage met later, while [`Queue::read`] reads a segment (the file changed on
//! disk after it was opened), is taken out the same way, at the read position: copied
//! aside, the segment rewritten with the records after it, reading resumed at the next
//! valid record; the records lost come off the counts and [`DiskEvent::Damaged`] reports it.
//!
//! Order: records go to memory while no segment holds records and the memory bound allows;
//! otherwise to the last segment, or, while the disk fails, to memory after it. Each memory
//! part reserves, when it starts, the segment number that comes next, and
//! [`Queue::close`] writes each run of memory parts to its number: a clean stop keeps
//! everything, in order. Numbers only grow, across runs too: a run numbers its segments past
//! the checkpoint it found (and syncs its own first), so a crash inside a clean stop (memory
//! runs written, the new checkpoint not yet) never reads one of them as acknowledged.

pub mod record;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use record::{Decoded, Tail};

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"LWQSEG1\n";

/// The number of the first segment of an empty directory: high, leaving room below (earlier
/// versions numbered a clean stop's memory part below the oldest segment).
const FIRST_SEGMENT: u64 = 1 << 40;

/// Largest memory part: a new one is started beyond it, so acknowledged memory is freed in
/// pieces of this size.
const MEMORY_PART_BYTES: usize = 1024 * 1024;

/// How long after a failed disk write the queue keeps to memory before it tries the disk
/// again.
pub const DISK_RETRY: Duration = Duration::from_secs(1);

/// When segment data is flushed to stable storage (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Never by the queue, except at a clean close. Records survive a crash of the daemon
    /// (`kill -9`: they are in the kernel's page cache) but not of the machine.
    None,
    /// Every interval, and at close: a crash of the machine loses at most the records written
    /// to disk during the last interval.
    Interval(Duration),
    /// After every push to disk, before the push returns: nothing pushed to disk is lost by a
    /// crash of the machine.
    Batch,
}

/// How big the queue may grow and how it syncs.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSettings {
    /// The directory of the segments (`STATE_DIR/queue/ACTION`); `None`: memory only.
    pub dir: Option<PathBuf>,
    /// Encoded bytes held in memory before records go to disk; 0 sends every record to
    /// disk.
    pub memory_bytes: usize,
    /// Encoded bytes on disk at most; past it, pushes are refused ([`Pushed::Full`]).
    pub max_disk_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// When to `fdatasync`.
    pub fsync: Fsync,
}

/// Why the queue cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A file of the queue cannot be created, read, written or synced.
    #[error("queue {}: {what}: {source}; check that the state directory is writable by the daemon's user and the disk is not full", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process (or a previous instance of the action) holds the queue.
    #[error("queue {} is in use by another process; run one logwelld per state_dir", dir.display())]
    Locked {
        /// The queue directory.
        dir: PathBuf,
    },
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> QueueError + 'a {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Something found wrong while opening: what was cut off or set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Where its last whole record ends (bytes kept).
    pub valid_bytes: u64,
    /// Bytes cut off after it, or, when the records after the damage were kept, the
    /// damaged bytes taken out.
    pub cut_bytes: u64,
    /// What the cut-off bytes were.
    pub kind: DamageKind,
    /// Records found (by their checksums) after the damaged bytes and kept.
    pub resumed_records: u64,
    /// Where a copy of the damaged bytes was kept (`NAME.seg.corrupt`, at most
    /// [`MAX_ASIDE_BYTES`]).
    pub aside: Option<PathBuf>,
}

/// The most bytes of damage kept aside per segment (`NAME.seg.corrupt`): enough to study
/// what went wrong, not a copy of a disk's worth of garbage.
pub const MAX_ASIDE_BYTES: u64 = 1024 * 1024;

/// The most payload bytes checksummed while looking for the next valid record after damage
/// (garbage whose length fields look plausible costs a checksum each): past it, the rest of
/// the segment is cut off as before.
const RESYNC_BUDGET_BYTES: u64 = 1 << 30;

/// What kind of damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ended inside a record: the expected remains of a crash mid-write.
    TornTail,
    /// Bytes that are not records (the rest of the file was cut off).
    Corrupt(String),
    /// No segment magic: the whole file was renamed `*.corrupt`.
    NotASegment,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            DamageKind::TornTail => write!(
                f,
                "{}: torn write at the end: {} bytes of an incomplete record cut off after byte {}",
                self.path.display(),
                self.cut_bytes,
                self.valid_bytes
            ),
            DamageKind::Corrupt(why) if self.resumed_records > 0 => write!(
                f,
                "{}: corrupted: {why} at byte {}; {} damaged bytes taken out, and the {} records after them (found by their checksums) are delivered with those before",
                self.path.display(),
                self.valid_bytes,
                self.cut_bytes,
                self.resumed_records
            ),
            DamageKind::Corrupt(why) => write!(
                f,
                "{}: corrupted: {why} at byte {}; the {} bytes from there were cut off (no valid record follows; the records before it are delivered)",
                self.path.display(),
                self.valid_bytes,
                self.cut_bytes
            ),
            DamageKind::NotASegment => write!(
                f,
                "{}: not a queue segment (no magic); set aside as .corrupt",
                self.path.display()
            ),
        }?;
        match (&self.kind, &self.aside) {
            (DamageKind::Corrupt(_), Some(aside)) => {
                write!(f, "; the damaged bytes are kept in {}", aside.display())
            }
            _ => Ok(()),
        }
    }
}

/// What opening found on disk.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    /// Segments with records.
    pub segments: usize,
    /// Records not yet acknowledged.
    pub records: u64,
    /// What was cut off.
    pub damage: Vec<Damage>,
}

/// The outcome of [`Queue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Held in memory.
    Memory,
    /// Written to a segment.
    Disk,
    /// The disk bound is reached (or there is no disk and memory is full): nothing was
    /// taken; try again after acknowledgements freed room.
    Full,
    /// The disk failed below its bound (see [`DiskEvent::Failed`]) and memory is full:
    /// nothing was taken, and the caller drops the records (counted) rather than hold its
    /// senders back for a disk that may not recover.
    Dropped,
}

/// A change in the health of the queue's disk, or damage found while reading, for the
/// caller to count and log ([`Queue::take_events`]).
#[derive(Debug)]
pub enum DiskEvent {
    /// A write to a segment failed: records go to memory (up to `memory_bytes`) and are
    /// refused past it, until a write succeeds again; tried every [`DISK_RETRY`].
    Failed(QueueError),
    /// A write to a segment succeeded again after [`DiskEvent::Failed`].
    Recovered,
    /// A segment was found damaged while it was read (it changed on disk after it was
    /// opened): the damage was taken out as at open (see [`Damage`]).
    Damaged(Damage),
}

/// Records read and not yet acknowledged: give it back to [`Queue::ack`] once delivered.
#[derive(Debug, Default)]
pub struct Batch {
    /// The payloads, back to back.
    pub data: Vec<u8>,
    /// Where each payload ends in `data`.
    pub ends: Vec<usize>,
    /// How many of the records came from disk.
    pub disk_records: u64,
    /// Records read into it (kept by [`Batch::forget_payloads`]).
    count: usize,
    /// The read position after the last record.
    end: Pos,
}

impl Batch {
    /// The payloads.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&e| {
            let r = &self.data[start..e];
            start = e;
            r
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frees the payloads (once sent) and keeps what [`Queue::ack`] needs: a batch waiting
    /// for its acknowledgement then costs a few bytes, not a copy of its messages.
    pub fn forget_payloads(&mut self) {
        self.data = Vec::new();
        self.ends = Vec::new();
    }

    fn push(&mut self, payload: &[u8], disk: bool) {
        self.data.extend_from_slice(payload);
        self.ends.push(self.data.len());
        self.disk_records += disk as u64;
        self.count += 1;
    }
}

/// A position: a part (by id) and a byte offset in it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pos {
    part: u64,
    offset: u64,
}

#[derive(Debug)]
enum Store {
    /// Encoded records in memory.
    Memory(Vec<u8>),
    /// A segment file (magic, then records).
    Disk {
        num: u64,
        path: PathBuf,
        file: File,
        /// Written since the last sync.
        dirty: bool,
    },
}

#[derive(Debug)]
struct Part {
    id: u64,
    store: Store,
    /// Bytes of valid content (records end here).
    len: u64,
    /// Records not yet acknowledged.
    records: u64,
    /// A memory part of a disk queue: the segment number it takes at a clean close,
    /// reserved when it was started, so that the files keep the order of the parts.
    slot: Option<u64>,
}

impl Part {
    fn start(&self) -> u64 {
        match self.store {
            Store::Memory(_) => 0,
            Store::Disk { .. } => SEGMENT_MAGIC.len() as u64,
        }
    }

    fn is_disk(&self) -> bool {
        matches!(self.store, Store::Disk { .. })
    }
}

/// The queue of one action. Not shared: its owner serialises access (a mutex).
#[derive(Debug)]
pub struct Queue {
    settings: QueueSettings,
    parts: VecDeque<Part>,
    next_id: u64,
    next_segment: u64,
    /// Acknowledged up to here in `parts[0]`.
    ack_offset: u64,
    /// The next record to read: index in `parts` and offset.
    read_index: usize,
    read_offset: u64,
    memory_bytes: usize,
    disk_bytes: u64,
    disk_records: u64,
    records: u64,
    /// Records read and not acknowledged or rewound.
    in_flight: u64,
    ack_file: Option<File>,
    _lock: Option<File>,
    last_sync: Instant,
    read_buf: Vec<u8>,
    /// When a write to the disk last failed, while it has not succeeded since.
    disk_failed: Option<Instant>,
    /// Not yet taken by [`Queue::take_events`].
    events: Vec<DiskEvent>,
}

fn segment_name(num: u64) -> String {
    format!("{num:020}.seg")
}

impl Queue {
    /// Opens (creating it if needed) the queue in `settings.dir`, recovering what a previous
    /// run left there; memory only without a directory.
    pub fn open(settings: QueueSettings) -> Result<(Queue, Recovery), QueueError> {
        let mut q = Queue {
            settings,
            parts: VecDeque::new(),
            next_id: 0,
            next_segment: FIRST_SEGMENT,
            ack_offset: 0,
            read_index: 0,
            read_offset: 0,
            memory_bytes: 0,
            disk_bytes: 0,
            disk_records: 0,
            records: 0,
            in_flight: 0,
            ack_file: None,
            _lock: None,
            last_sync: Instant::now(),
            read_buf: Vec::new(),
            disk_failed: None,
            events: Vec::new(),
        };
        let mut recovery = Recovery::default();
        let Some(dir) = q.settings.dir.clone() else {
            return Ok((q, recovery));
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir, "cannot create the directory"))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path, "cannot open"))?;
        // Waits for a previous instance of the action (a reload) to close; refuses another
        // daemon after a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&lock),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            };
            if r == 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(QueueError::Locked { dir });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        q._lock = Some(lock);

        let mut nums = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir, "cannot list"))? {
            let entry = entry.map_err(io(&dir, "cannot list"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".seg.tmp") {
                // A rewrite of a damaged segment that a crash interrupted: the segment
                // itself is still whole.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                nums.push(n);
            }
        }
        nums.sort_unstable();
        let ack_path = dir.join("ack");
        let checkpoint = read_checkpoint(&ack_path);
        if let Some((ack_num, _)) = checkpoint {
            // Every segment this run creates (a clean stop's memory runs included) is numbered
            // past the checkpoint found here, so that a crash before this run's first
            // checkpoint reaches the disk never reads one of them as acknowledged, nor applies
            // the old offset to it.
            q.next_segment = q.next_segment.max(ack_num.saturating_add(1));
        }
        for num in nums {
            let path = dir.join(segment_name(num));
            q.next_segment = q.next_segment.max(num + 1);
            if let Some((ack_num, _)) = checkpoint {
                if num < ack_num {
                    // Fully acknowledged before the stop; only its removal was missed.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
            }
            let skip_to = match checkpoint {
                Some((n, off)) if n == num => off,
                _ => 0,
            };
            match recover_segment(&path, skip_to)? {
                Recovered::Empty => {
                    let _ = std::fs::remove_file(&path);
                }
                Recovered::NotASegment => {
                    let aside = path.with_extension("seg.corrupt");
                    let _ = std::fs::rename(&path, &aside);
                    recovery.damage.push(Damage {
                        path,
                        valid_bytes: 0,
                        cut_bytes: 0,
                        kind: DamageKind::NotASegment,
                        resumed_records: 0,
                        aside: Some(aside),
                    });
                }
                Recovered::Segment {
                    file,
                    len,
                    records,
                    start,
                    damage,
                } => {
                    recovery.damage.extend(damage);
                    if records == 0 {
                        drop(file);
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if q.parts.is_empty() {
                        q.ack_offset = start;
                        q.read_offset = start;
                    }
                    let id = q.next_id;
                    q.next_id += 1;
                    q.disk_bytes += len;
                    q.disk_records += records;
                    q.records += records;
                    recovery.segments += 1;
                    q.parts.push_back(Part {
                        id,
                        store: Store::Disk {
                            num,
                            path,
                            file,
                            dirty: false,
                        },
                        len,
                        records,
                        slot: None,
                    });
                }
            }
        }
        recovery.records = q.records;
        let ack_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&ack_path)
            .map_err(io(&ack_path, "cannot open"))?;
        q.ack_file = Some(ack_file);
        q.write_checkpoint()?;
        // Durable before any segment numbered from it is written.
        if let Some(f) = &q.ack_file {
            f.sync_data().map_err(io(&ack_path, "cannot sync"))?;
        }
        Ok((q, recovery))
    }

    /// Records not yet acknowledged (memory and disk).
    pub fn len(&self) -> u64 {
        self.records
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records not yet acknowledged that are in segment files.
    pub fn disk_records(&self) -> u64 {
        self.disk_records
    }

    /// Bytes of the segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Records read and neither acknowledged nor rewound.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Whether [`Queue::read`] would return something.
    pub fn has_unread(&self) -> bool {
        self.records > self.in_flight
    }

    /// Appends `records` records already encoded with [`record::encode`] (`encoded`), in
    /// memory if they fit and nothing is on disk, else to the last segment; nothing when
    /// [`Pushed::Full`] or [`Pushed::Dropped`]. A failed disk write is not an error here: the
    /// records go to memory if they fit ([`Pushed::Memory`]), else are refused
    /// ([`Pushed::Dropped`]), and the failure is reported once by [`Queue::take_events`].
    pub fn push(&mut self, encoded: &[u8], records: u64) -> Pushed {
        if records == 0 {
            return Pushed::Memory;
        }
        let fits = self.memory_bytes + encoded.len() <= self.settings.memory_bytes;
        let on_disk = self.parts.iter().any(Part::is_disk);
        if !on_disk && fits {
            self.push_memory(encoded, records);
            return Pushed::Memory;
        }
        if self.settings.dir.is_none() {
            return Pushed::Full;
        }
        if self.disk_bytes + encoded.len() as u64 > self.settings.max_disk_bytes
            && self.disk_bytes > 0
        {
            return Pushed::Full;
        }
        let retry = self.disk_failed.is_none_or(|at| at.elapsed() >= DISK_RETRY);
        if retry {
            match self.push_disk(encoded, records) {
                Ok(()) => {
                    if self.disk_failed.take().is_some() {
                        self.events.push(DiskEvent::Recovered);
                    }
                    return Pushed::Disk;
                }
                Err(e) => {
                    if self.disk_failed.replace(Instant::now()).is_none() {
                        self.events.push(DiskEvent::Failed(e));
                    }
                }
            }
        }
        if fits {
            self.push_memory(encoded, records);
            Pushed::Memory
        } else {
            Pushed::Dropped
        }
    }

    /// The changes in the disk's health since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<DiskEvent> {
        std::mem::take(&mut self.events)
    }

    /// Whether the last write to the disk failed (records go to memory, then are refused).
    pub fn disk_failing(&self) -> bool {
        self.disk_failed.is_some()
    }

    fn push_memory(&mut self, encoded: &[u8], records: u64) {
        match self.parts.back_mut() {
            Some(Part {
                store: Store::Memory(data),
                len,
                records: r,
                ..
            }) if data.len() + encoded.len() <= MEMORY_PART_BYTES => {
                data.extend_from_slice(encoded);
                *len += encoded.len() as u64;
                *r += records;
            }
            _ => {
                let id = self.next_id;
                self.next_id += 1;
                let slot = self.settings.dir.is_some().then(|| {
                    self.next_segment += 1;
                    self.next_segment - 1
                });
                let mut data = Vec::with_capacity(encoded.len().max(64 * 1024));
                data.extend_from_slice(encoded);
                self.parts.push_back(Part {
                    id,
                    store: Store::Memory(data),
                    len: encoded.len() as u64,
                    records,
                    slot,
                });
            }
        }
        self.memory_bytes += encoded.len();
        self.records += records;
    }

    fn new_segment(&mut self, num: u64) -> Result<Part, QueueError> {
        let dir = self.settings.dir.as_ref().expect("disk queue");
        let path = dir.join(segment_name(num));
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path, "cannot create a segment"))?;
        if let Err(e) = file.write_all(SEGMENT_MAGIC) {
            // A full disk: leave no empty file behind for every retry.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(io(&path, "cannot write")(e));
        }
        if self.settings.fsync != Fsync::None {
            // The new name must survive a machine crash as well as its contents.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.disk_bytes += SEGMENT_MAGIC.len() as u64;
        Ok(Part {
            id,
            store: Store::Disk {
                num,
                path,
                file,
                dirty: true,
            },
            len: SEGMENT_MAGIC.len() as u64,
            records: 0,
            slot: None,
        })
    }

    fn push_disk(&mut self, encoded: &[u8], records: u64) -> Result<(), QueueError> {
        let roll = match self.parts.back() {
            Some(
                p @ Part {
                    store: Store::Disk { .. },
                    ..
                },
            ) => {
                p.len > SEGMENT_MAGIC.len() as u64
                    && p.len + encoded.len() as u64 > self.settings.segment_bytes
            }
            _ => true,
        };
        if roll {
            if let Some(Part {
                store: Store::Disk {
                    file, dirty, path, ..
                },
                ..
            }) = self.parts.back_mut()
            {
                if self.settings.fsync != Fsync::None && *dirty {
                    file.sync_data().map_err(io(path, "cannot sync"))?;
                    *dirty = false;
                }
            }
            let num = self.next_segment;
            self.next_segment += 1;
            let part = self.new_segment(num)?;
            self.parts.push_back(part);
        }
        let part = self.parts.back_mut().expect("a segment");
        let Store::Disk {
            file, path, dirty, ..
        } = &mut part.store
        else {
            unreachable!("the last part is a segment")
        };
        if let Err(e) = file.write_all(encoded) {
            // Cut back to the last whole record, so a later push does not follow garbage.
            let _ = file.set_len(part.len);
            return Err(QueueError::Io {
                path: path.clone(),
                what: "cannot write",
                source: e,
            });
        }
        *dirty = true;
        if self.settings.fsync == Fsync::Batch {
            if let Err(e) = file.sync_data() {
                // Not taken: cut it back, as for a failed write.
                let _ = file.set_len(part.len);
                return Err(io(path, "cannot sync")(e));
            }
            *dirty = false;
        }
        part.len += encoded.len() as u64;
        part.records += records;
        self.disk_bytes += encoded.len() as u64;
        self.disk_records += records;
        self.records += records;
        Ok(())
    }

    /// Appends to `batch` the next unread records, at most `max_records` and (past the
    /// first) `max_bytes` of payload. Returns how many were added.
    pub fn read(
        &mut self,
        batch: &mut Batch,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<usize, QueueError> {
        let mut added = 0;
        while added < max_records && (added == 0 || batch.data.len() < max_bytes) {
            let Some(part) = self.parts.get(self.read_index) else {
                break;
            };
            // A segment started while the queue was empty: its records follow the magic.
            self.read_offset = self.read_offset.max(part.start());
            if self.read_offset >= part.len {
                if self.read_index + 1 < self.parts.len() {
                    self.read_index += 1;
                    self.read_offset = self.parts[self.read_index].start();
                    continue;
                }
                break;
            }
            let is_disk = part.is_disk();
            let want = (part.len - self.read_offset) as usize;
            let bytes: &[u8] = match &part.store {
                Store::Memory(data) => &data[self.read_offset as usize..],
                Store::Disk { file, path, .. } => {
                    // Enough for the record at the read position, however long.
                    let need = match peek_header(file, path, self.read_offset)? {
                        Some(h) => match record::decode(&h) {
                            Decoded::Incomplete { need } => need,
                            _ => 0,
                        },
                        None => 0,
                    };
                    let n = want.min((256 * 1024).max(need));
                    self.read_buf.resize(n, 0);
                    file.read_exact_at(&mut self.read_buf, self.read_offset)
                        .map_err(io(path, "cannot read"))?;
                    &self.read_buf
                }
            };
            // Whether `bytes` reach the end of the part's records (always a record boundary).
            let to_end = self.read_offset + bytes.len() as u64 == part.len;
            let mut at = 0;
            let mut corrupt = None;
            while at < bytes.len()
                && added < max_records
                && (added == 0 || batch.data.len() < max_bytes)
            {
                match record::decode(&bytes[at..]) {
                    Decoded::Record { payload, len } => {
                        batch.push(payload, is_disk);
                        at += len;
                        added += 1;
                    }
                    Decoded::Incomplete { .. } if to_end => {
                        // A length that runs past the last record: a damaged length field.
                        let mut claimed = [0u8; 4];
                        let have = (bytes.len() - at).min(4);
                        claimed[..have].copy_from_slice(&bytes[at..at + have]);
                        corrupt = Some(record::Corruption::Length(u32::from_le_bytes(claimed)));
                        break;
                    }
                    Decoded::Incomplete { .. } => break,
                    Decoded::Corrupt(c) => {
                        corrupt = Some(c);
                        break;
                    }
                }
            }
            self.read_offset += at as u64;
            if let Some(c) = corrupt {
                // Checked when opened: only a disk changing under us gets here.
                self.take_out_damage(c, added as u64);
            } else if at == 0 {
                // Nothing whole at the read position: only a record still being appended
                // (never: pushes are whole) or a short read; stop here.
                break;
            }
        }
        self.in_flight += added as u64;
        batch.end = Pos {
            part: self
                .parts
                .get(self.read_index)
                .map_or(self.next_id, |p| p.id),
            offset: self.read_offset,
        };
        Ok(added)
    }

    /// Damage `why` at the read position, met while reading a segment after it was opened
    /// (a disk changing under the queue): as at open ([`repair`]), the damaged bytes are
    /// copied aside and the records after them kept, found by their checksums, so only the
    /// damaged bytes are lost; reading resumes at the next valid record. The records lost
    /// are taken off the counts, and the damage is reported as [`DiskEvent::Damaged`].
    /// `reading`: records added to the batch being read, not yet counted in flight.
    fn take_out_damage(&mut self, why: record::Corruption, reading: u64) {
        let index = self.read_index;
        let at = self.read_offset;
        // Records not read yet are all at or after the read position: those of this part
        // are what the later parts do not hold.
        let later: u64 = self.parts.iter().skip(index + 1).map(|p| p.records).sum();
        let unread_here = self
            .records
            .saturating_sub(self.in_flight + reading)
            .saturating_sub(later);
        let part = &mut self.parts[index];
        let Store::Disk {
            path, file, dirty, ..
        } = &mut part.store
        else {
            // Memory is never damaged; should it be, nothing there can be trusted.
            tracing::error!(
                part = part.id,
                offset = at,
                "queue: {why}; skipping the rest of the part"
            );
            self.read_offset = part.len;
            return;
        };
        let repaired = match repair(file, path, at, part.len, 0, why) {
            Ok(r) => r,
            Err(e) => {
                // The segment cannot even be cut: skip the rest of it, as before.
                tracing::error!(
                    part = part.id,
                    offset = at,
                    "queue: {why}; {e}; skipping the rest of the segment"
                );
                self.read_offset = part.len;
                return;
            }
        };
        if let Some(f) = repaired.file {
            *file = f;
            *dirty = false;
        }
        let lost = unread_here.saturating_sub(repaired.salvaged.records);
        self.disk_bytes = self.disk_bytes - part.len + repaired.len;
        part.len = repaired.len;
        part.records = part.records.saturating_sub(lost);
        self.records = self.records.saturating_sub(lost);
        self.disk_records = self.disk_records.saturating_sub(lost);
        self.events.push(DiskEvent::Damaged(repaired.damage));
    }

    /// Removes the records of `batch` (and of every batch read before it): they were
    /// delivered. Batches must be acknowledged in the order they were read.
    pub fn ack(&mut self, batch: &Batch) -> Result<(), QueueError> {
        let n = batch.len() as u64;
        self.in_flight -= n.min(self.in_flight);
        self.records -= n.min(self.records);
        self.disk_records -= batch.disk_records.min(self.disk_records);
        // Parts before the batch's end part are wholly acknowledged (part ids grow along
        // the queue), and the end part too if the batch ends at its end.
        while let Some(front) = self.parts.front() {
            let done = front.id < batch.end.part
                || (front.id == batch.end.part && batch.end.offset >= front.len);
            if !done {
                break;
            }
            let part = self.parts.pop_front().expect("front");
            self.drop_part(part);
            self.ack_offset = self.parts.front().map_or(0, Part::start);
            if self.read_index == 0 {
                // The read position was at the end of the removed part: the next part's
                // first record.
                self.read_offset = self.ack_offset;
            } else {
                self.read_index -= 1;
            }
        }
        if let Some(front) = self.parts.front_mut() {
            if front.id == batch.end.part {
                self.ack_offset = batch.end.offset;
                // Records of the front part: recount from what the batch took.
            }
        }
        // Per-part record counts only matter for the front part's removal and for close;
        // keep them consistent with the totals.
        self.recount_front();
        self.write_checkpoint()
    }

    fn recount_front(&mut self) {
        let others: u64 = self.parts.iter().skip(1).map(|p| p.records).sum();
        if let Some(front) = self.parts.front_mut() {
            front.records = self.records.saturating_sub(others);
        }
    }

    fn drop_part(&mut self, part: Part) {
        match part.store {
            Store::Memory(data) => self.memory_bytes -= data.len(),
            Store::Disk { path, file, .. } => {
                drop(file);
                self.disk_bytes -= part.len;
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), "queue: cannot remove a delivered segment: {e}");
                }
            }
        }
    }

    /// Hands out again every record read and not acknowledged (the connection they were sent
    /// on broke). Returns how many.
    pub fn rewind(&mut self) -> u64 {
        let n = self.in_flight;
        self.in_flight = 0;
        self.read_index = 0;
        self.read_offset = if self.parts.is_empty() {
            0
        } else {
            self.ack_offset.max(self.parts[0].start())
        };
        n
    }

    fn write_checkpoint(&mut self) -> Result<(), QueueError> {
        let Some(file) = &self.ack_file else {
            return Ok(());
        };
        let (num, off) = match self.parts.front() {
            Some(Part {
                store: Store::Disk { num, .. },
                ..
            }) => (*num, self.ack_offset),
            // Memory first: no segment is partly acknowledged; the segments before the one
            // it takes at close are.
            Some(Part {
                slot: Some(slot), ..
            }) => (*slot, 0),
            _ => match self.parts.iter().find(|p| p.is_disk()) {
                Some(Part {
                    store: Store::Disk { num, .. },
                    ..
                }) => (*num, 0),
                _ => (self.next_segment, 0),
            },
        };
        let mut buf = [0u8; 20];
        buf[..8].copy_from_slice(&num.to_le_bytes());
        buf[8..16].copy_from_slice(&off.to_le_bytes());
        let crc = crc32fast::hash(&buf[..16]);
        buf[16..].copy_from_slice(&crc.to_le_bytes());
        let path = self.settings.dir.as_ref().expect("disk queue").join("ack");
        file.write_all_at(&buf, 0)
            .map_err(io(&path, "cannot write"))
    }

    /// Syncs what is due under [`Fsync::Interval`]; call it at least every interval.
    pub fn sync_if_due(&mut self) -> Result<(), QueueError> {
        if let Fsync::Interval(every) = self.settings.fsync {
            if self.last_sync.elapsed() >= every {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Flushes every segment written since the last sync, and the checkpoint.
    pub fn sync(&mut self) -> Result<(), QueueError> {
        self.last_sync = Instant::now();
        for part in &mut self.parts {
            if let Store::Disk {
                file, dirty, path, ..
            } = &mut part.store
            {
                if *dirty {
                    file.sync_data().map_err(io(path, "cannot sync"))?;
                    *dirty = false;
                }
            }
        }
        if let (Some(f), Some(dir)) = (&self.ack_file, &self.settings.dir) {
            f.sync_data().map_err(io(&dir.join("ack"), "cannot sync"))?;
        }
        Ok(())
    }

    /// A clean stop: writes the records still in memory to a segment numbered before every
    /// other (they are the oldest), and syncs. Returns how many records the files hold.
    pub fn close(mut self) -> Result<u64, QueueError> {
        self.rewind();
        if self.settings.dir.is_none() {
            return Ok(0);
        }
        self.write_memory_runs()?;
        self.write_checkpoint()?;
        self.sync()?;
        if let Some(dir) = &self.settings.dir {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(self.disk_records)
    }

    /// A crash in the middle of [`Queue::close`]: the memory runs are in their segments
    /// (synced), the new checkpoint is not written.
    #[cfg(test)]
    fn close_then_crash_before_checkpoint(mut self) {
        self.rewind();
        self.write_memory_runs().expect("memory runs written");
    }

    /// Writes each run of memory parts to the segment its first part reserved (synced), and
    /// puts those segments in the place of the memory parts.
    fn write_memory_runs(&mut self) -> Result<(), QueueError> {
        // Each run of memory parts goes to the segment number its first part reserved,
        // which sits between the segments around it.
        let mut runs: Vec<(u64, Vec<u8>, u64)> = Vec::new();
        let mut in_run = false;
        for (i, part) in self.parts.iter().enumerate() {
            let Store::Memory(data) = &part.store else {
                in_run = false;
                continue;
            };
            let from = if i == 0 { self.ack_offset as usize } else { 0 };
            match runs.last_mut() {
                Some((_, encoded, records)) if in_run => {
                    encoded.extend_from_slice(&data[from..]);
                    *records += part.records;
                }
                _ => {
                    let num = part.slot.unwrap_or_else(|| {
                        self.next_segment += 1;
                        self.next_segment - 1
                    });
                    runs.push((num, data[from..].to_vec(), part.records));
                }
            }
            in_run = true;
        }
        let mut written = Vec::new();
        for (num, encoded, records) in runs {
            if records == 0 {
                continue;
            }
            let mut part = self.new_segment(num)?;
            if let Store::Disk { file, path, .. } = &mut part.store {
                file.write_all(&encoded).map_err(io(path, "cannot write"))?;
                file.sync_data().map_err(io(path, "cannot sync"))?;
            }
            part.len += encoded.len() as u64;
            part.records = records;
            written.push(part);
        }
        if !written.is_empty() {
            let front_was_memory = self.parts.front().is_some_and(|p| !p.is_disk());
            for part in &written {
                self.disk_records += part.records;
            }
            self.parts.retain(|p| p.is_disk());
            self.parts.extend(written);
            self.parts.make_contiguous().sort_by_key(|p| match p.store {
                Store::Disk { num, .. } => num,
                Store::Memory(_) => u64::MAX,
            });
            self.memory_bytes = 0;
            if front_was_memory {
                self.ack_offset = SEGMENT_MAGIC.len() as u64;
            }
        }
        Ok(())
    }
}

/// The header of the record at `offset`, to size a read; `None` past the end.
fn peek_header(file: &File, path: &Path, offset: u64) -> Result<Option<Vec<u8>>, QueueError> {
    let mut h = vec![0u8; record::HEADER_BYTES];
    match file.read_exact_at(&mut h, offset) {
        Ok(()) => Ok(Some(h)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(io(path, "cannot read")(e)),
    }
}

fn read_checkpoint(path: &Path) -> Option<(u64, u64)> {
    let buf = std::fs::read(path).ok()?;
    let buf = buf.get(..20)?;
    let crc = u32::from_le_bytes(buf[16..20].try_into().ok()?);
    if crc != crc32fast::hash(&buf[..16]) {
        tracing::warn!(path = %path.display(), "queue: the acknowledgement checkpoint is damaged; the oldest segment is delivered from its start (duplicates)");
        return None;
    }
    Some((
        u64::from_le_bytes(buf[..8].try_into().ok()?),
        u64::from_le_bytes(buf[8..16].try_into().ok()?),
    ))
}

enum Recovered {
    Empty,
    NotASegment,
    Segment {
        file: File,
        len: u64,
        records: u64,
        /// Where unacknowledged records start.
        start: u64,
        damage: Option<Damage>,
    },
}

/// Scans one segment file, cutting a torn or corrupt tail off; counts the records after
/// `skip_to` (the checkpoint), or all if `skip_to` is not a record boundary.
fn recover_segment(path: &Path, mut skip_to: u64) -> Result<Recovered, QueueError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(path, "cannot open"))?;
    let size = file.metadata().map_err(io(path, "cannot stat"))?.len();
    if size < SEGMENT_MAGIC.len() as u64 {
        return Ok(if size == 0 {
            Recovered::Empty
        } else {
            Recovered::NotASegment
        });
    }
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0)
        .map_err(io(path, "cannot read"))?;
    if &magic != SEGMENT_MAGIC {
        return Ok(Recovered::NotASegment);
    }
    // Stream through the file in 1 MiB reads, decoding records.
    let mut at = SEGMENT_MAGIC.len() as u64;
    let mut records = 0;
    let mut records_before_skip = 0;
    let mut skip_ok = skip_to == at || skip_to == 0;
    let mut buf = vec![0u8; 1024 * 1024];
    let tail = loop {
        if at >= size {
            break Tail::Clean;
        }
        let n = ((size - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)
            .map_err(io(path, "cannot read"))?;
        let (count, valid, tail) = record::scan(&buf[..n]);
        // Count records ending at or before the checkpoint.
        if !skip_ok && skip_to > at {
            let mut p = 0usize;
            while p < valid {
                if at + p as u64 == skip_to {
                    break;
                }
                if let Decoded::Record { len, .. } = record::decode(&buf[p..valid]) {
                    p += len;
                    records_before_skip += 1;
                } else {
                    break;
                }
            }
            if at + p as u64 == skip_to {
                skip_ok = true;
            }
        }
        records += count;
        at += valid as u64;
        match tail {
            Tail::Clean => continue,
            Tail::Torn if valid > 0 && (at < size) && n == buf.len() => {
                // The read ended inside a record; a bigger one may need a bigger buffer.
                continue;
            }
            Tail::Torn if valid == 0 && n == buf.len() => {
                if let Decoded::Incomplete { need } = record::decode(&buf[..n]) {
                    if (need as u64) <= size - at {
                        buf.resize(need, 0);
                        continue;
                    }
                }
                break Tail::Torn;
            }
            t => break t,
        }
    };
    let mut file = file;
    let mut len = at;
    let damage = match tail {
        Tail::Clean => None,
        Tail::Torn => {
            cut(&file, path, at)?;
            Some(Damage {
                path: path.to_path_buf(),
                valid_bytes: at,
                cut_bytes: size - at,
                kind: DamageKind::TornTail,
                resumed_records: 0,
                aside: None,
            })
        }
        Tail::Corrupt(c) => {
            let r = repair(&file, path, at, size, skip_to, c)?;
            if let Some(f) = r.file {
                file = f;
                len = r.len;
                records += r.salvaged.records;
                records_before_skip += r.salvaged.records_before_skip;
                if let Some(new_skip) = r.salvaged.skip_to {
                    skip_ok = true;
                    skip_to = new_skip;
                }
            }
            Some(r.damage)
        }
    };
    let (start, records) = if skip_ok && skip_to >= SEGMENT_MAGIC.len() as u64 && skip_to <= len {
        (skip_to, records - records_before_skip)
    } else {
        (SEGMENT_MAGIC.len() as u64, records)
    };
    Ok(Recovered::Segment {
        file,
        len,
        records,
        start,
        damage,
    })
}

/// Cuts a segment at `at` (its last whole record) and syncs it.
fn cut(file: &File, path: &Path, at: u64) -> Result<(), QueueError> {
    file.set_len(at)
        .map_err(io(path, "cannot cut the damaged tail"))?;
    file.sync_all().map_err(io(path, "cannot sync"))
}

/// A segment with its damage taken out ([`repair`]).
struct Repaired {
    /// The rewritten segment, open for appending; `None` when it was cut at the damage
    /// instead (no valid record follows, or the rewrite failed).
    file: Option<File>,
    /// Where its records end now.
    len: u64,
    /// What was found after the damage (kept only with `file`).
    salvaged: Salvaged,
    /// What to report (and count).
    damage: Damage,
}

/// Takes the damage that starts at `at` out of the segment at `path` (`size` bytes of
/// records and damage; `skip_to`: the checkpoint's offset in it, see [`salvage`]): copies
/// the damaged bytes aside (`NAME.seg.corrupt`, [`keep_aside`]), and rewrites the segment
/// with the valid records found after them, so only the damaged bytes are lost; where none
/// follows (or the rewrite fails), cuts it at `at`. Opening ([`recover_segment`]) and a
/// read that meets damage ([`Queue::read`]) both come here.
fn repair(
    file: &File,
    path: &Path,
    at: u64,
    size: u64,
    skip_to: u64,
    why: record::Corruption,
) -> Result<Repaired, QueueError> {
    let mut s = salvage(file, path, at, size, skip_to)?;
    let aside = keep_aside(path, &s.damaged);
    let mut new = None;
    if s.records > 0 {
        match rewrite(path, &s.kept, at) {
            Ok(f) => new = Some(f),
            Err(e) => {
                tracing::warn!(path = %path.display(), "queue: {e}; the records after the damage are cut off instead");
            }
        }
    }
    if new.is_none() {
        cut(file, path, at)?;
        s.records = 0;
        s.records_before_skip = 0;
        s.skip_to = None;
    }
    let len = at
        + if new.is_some() {
            s.kept.len() as u64
        } else {
            0
        };
    let damage = Damage {
        path: path.to_path_buf(),
        valid_bytes: at,
        cut_bytes: if new.is_some() {
            s.damaged_bytes
        } else {
            size - at
        },
        kind: DamageKind::Corrupt(why.to_string()),
        resumed_records: s.records,
        aside,
    };
    Ok(Repaired {
        file: new,
        len,
        salvaged: s,
        damage,
    })
}

/// What follows the first damaged byte of a segment, sorted out.
struct Salvaged {
    /// The valid records found after the damage, back to back (encoded).
    kept: Vec<u8>,
    /// How many.
    records: u64,
    /// How many of them start before the checkpoint's offset.
    records_before_skip: u64,
    /// The checkpoint's offset in the segment without the damage, if it was a record
    /// boundary after the damage.
    skip_to: Option<u64>,
    /// The damaged bytes, back to back, at most [`MAX_ASIDE_BYTES`].
    damaged: Vec<u8>,
    /// All the damaged bytes.
    damaged_bytes: u64,
}

/// Reads the segment from `at` (the first byte that is not a record) to its end, and finds
/// the valid records there: after bytes that are not a record, the next position where a
/// header and its checksum hold. A torn record at the very end counts as damage too.
fn salvage(
    file: &File,
    path: &Path,
    at: u64,
    size: u64,
    skip_to: u64,
) -> Result<Salvaged, QueueError> {
    let mut rest = vec![0u8; (size - at) as usize];
    file.read_exact_at(&mut rest, at)
        .map_err(io(path, "cannot read"))?;
    let mut s = Salvaged {
        kept: Vec::new(),
        records: 0,
        records_before_skip: 0,
        skip_to: None,
        damaged: Vec::new(),
        damaged_bytes: 0,
    };
    let mut budget = RESYNC_BUDGET_BYTES;
    let mut p = 0usize;
    while p < rest.len() {
        if let Decoded::Record { len, .. } = record::decode(&rest[p..]) {
            let old = at + p as u64;
            if old == skip_to {
                s.skip_to = Some(at + s.kept.len() as u64);
            } else if old < skip_to {
                s.records_before_skip += 1;
            }
            s.kept.extend_from_slice(&rest[p..p + len]);
            s.records += 1;
            p += len;
            continue;
        }
        // Damage from `p`: the next record is the first position where one decodes.
        let mut q = p + 1;
        while q < rest.len() {
            if let Some(h) = rest.get(q..q + record::HEADER_BYTES) {
                let claimed = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
                if claimed <= (rest.len() - q - record::HEADER_BYTES) as u64 {
                    if budget < claimed {
                        q = rest.len();
                        break;
                    }
                    budget -= claimed;
                    if matches!(record::decode(&rest[q..]), Decoded::Record { .. }) {
                        break;
                    }
                }
            }
            q += 1;
        }
        let room = (MAX_ASIDE_BYTES as usize).saturating_sub(s.damaged.len());
        s.damaged
            .extend_from_slice(&rest[p..q.min(p.saturating_add(room))]);
        s.damaged_bytes += (q - p) as u64;
        p = q;
    }
    if skip_to == size {
        s.skip_to = Some(at + s.kept.len() as u64);
    }
    Ok(s)
}

/// Appends `damaged` to `NAME.seg.corrupt` beside the segment, keeping that file within
/// [`MAX_ASIDE_BYTES`]. Where it could not be kept, says so in the log and returns `None`.
fn keep_aside(path: &Path, damaged: &[u8]) -> Option<PathBuf> {
    let aside = path.with_extension("seg.corrupt");
    let result = (|| {
        let mut f = OpenOptions::new().create(true).append(true).open(&aside)?;
        let room = MAX_ASIDE_BYTES.saturating_sub(f.metadata()?.len()) as usize;
        f.write_all(&damaged[..damaged.len().min(room)])?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Some(aside),
        Err(e) => {
            tracing::warn!(path = %aside.display(), "queue: cannot keep a copy of a segment's damaged bytes: {e}");
            None
        }
    }
}

/// Replaces the segment at `path` with its first `at` bytes followed by `kept`, through a
/// temporary file renamed over it (a crash leaves either the old or the new segment), and
/// opens the new one for appending.
fn rewrite(path: &Path, kept: &[u8], at: u64) -> Result<File, QueueError> {
    let tmp = path.with_extension("seg.tmp");
    let result = (|| {
        let old = File::open(path).map_err(io(path, "cannot open"))?;
        let mut new = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io(&tmp, "cannot create"))?;
        let copied = std::io::copy(&mut std::io::Read::take(&old, at), &mut new)
            .map_err(io(&tmp, "cannot write"))?;
        if copied != at {
            return Err(io(path, "cannot read")(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        new.write_all(kept).map_err(io(&tmp, "cannot write"))?;
        new.sync_all().map_err(io(&tmp, "cannot sync"))?;
        std::fs::rename(&tmp, path).map_err(io(path, "cannot replace the damaged segment"))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io(path, "cannot open"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
