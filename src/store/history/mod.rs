//! Reading history: iterate over a file set in order, oldest to newest (every rotated
//! generation, compressed or not, then the live file), from a position.
//!
//! Owns the reading side of a file set: which generation comes after which, where a line
//! starts, and where to start (the beginning, a saved [`Position`], the last N lines, or a
//! time). It never writes, renames or deletes a file; naming and listing belong to
//! [`crate::store::fileset`], rotation and compression to the daemon.
//!
//! # Identity and positions
//!
//! Rotation renames generations (`syslog.1` becomes `syslog.2`) and compression replaces them
//! with a new file (a new inode), so neither the name nor the inode says which generation a
//! reader was in. A generation's *identity* is the 64-bit FNV-1a hash of its first line
//! (without the `\n`): every logwell line starts with a timestamp, usually with microseconds,
//! so first lines are unique in practice, and a generation keeps its first line through every
//! rename and compression. An empty generation, or a live file whose first line is not
//! complete yet, has no identity and is skipped until it has one.
//!
//! A [`Position`] is an identity plus a byte offset in the generation's *uncompressed*
//! content, so it stays valid across later rotations and compressions: a reader resumes
//! exactly where it stopped. It prints as `HEX:OFFSET` (`00c0ffee12345678:1024`), the form
//! used as an event id, and serialises as that string too (a JSON number cannot hold 64 bits
//! exactly in a browser).
//!
//! # Reading
//!
//! A [`Reader`] yields [`Line`]s, split on `\n` (not included). A line longer than
//! [`MAX_LINE_BYTES`] is cut there and ends with ` [truncated]`; its [`Line::next`] is still
//! just after its end, and the rest of it is read through without being kept. A last line without `\n` in the
//! live file is being written: it is not returned until it is complete. In a rotated
//! generation it is returned as it is. At the end of the live file the iterator returns
//! `None`; calling `next` again later returns the lines written since (the live-follow code
//! builds on that), including across a rotation that happened meanwhile.
//!
//! Generations are opened with `O_NOFOLLOW` and must be regular files: a symbolic link (or a
//! FIFO) under a generation's name is never read through.
//!
//! Failures never stop a reader: a generation that vanishes while being opened (compressed
//! and renamed meanwhile) is found again by its identity; one deleted by retention before the
//! reader got to it is skipped, and [`Reader::lost`] says lines may be missing; one deleted
//! while the reader holds it open is let go of at the next [`Reader::revalidate`] (so its
//! space is freed), and what was left of it counts as lost the same way; a damaged
//! compressed generation yields one error item naming it, then reading goes on with the next
//! generation.
//!
//! Start points ([`Start`]): the beginning; just after a line previously returned
//! ([`Start::After`]); at that line itself ([`Start::At`]: the line ending at the position,
//! found by scanning back to the `\n` before it, or forwards through a compressed
//! generation); the last N lines ([`Start::LastLines`]: plain generations are scanned
//! backwards from their end in blocks, compressed ones decompressed once keeping the offsets
//! of the last N lines, or, for a large N, twice, counting their lines and then finding the
//! N-th from the end; only as many generations as needed are opened); or the first line
//! whose timestamp is at or after a time ([`Start::Since`]). `Since` is a start point, like
//! journalctl's: every line after that one is returned, even one with an older timestamp (a
//! sender's clock). Generations whose modification time is before the time are skipped
//! without opening them: a line is written after the time it carries, so a file's mtime is an
//! upper bound of its lines' times. Timestamps are read in every line format logwell writes:
//! RFC 3339, traditional (`Nov 21 09:41:03`, its year taken from the file's mtime: the latest
//! year that does not put the line after the file was last written), RFC 5424 and JSON.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::store::fileset::{self, Compression};

mod generations;
mod position;
mod seek;
mod time;

use generations::*;
pub use generations::{FileSet, GenerationInfo};
use position::*;
pub use position::{ParsePositionError, Position};
use seek::*;
pub(crate) use time::line_time;

/// Read buffer size, and the block size of the backwards scan.
const BLOCK: usize = 64 * 1024;

/// The longest line a [`Reader`] returns, in bytes: a longer one is cut here and ends with
/// [`TRUNCATED`], so one line (a sparse file, `lastlog`) cannot take the reader's memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// What ends a line cut at [`MAX_LINE_BYTES`] (as logwell marks messages it truncates).
pub const TRUNCATED: &[u8] = b" [truncated]";

/// Why reading a file set failed. No variant stops a [`Reader`]: it reports the generation
/// and goes on with the next one.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The directory of the file set could not be listed.
    #[error("cannot list the files of {}: {source} (check that the directory exists and that you may read it)", dir.display())]
    List {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A generation could not be opened or read.
    #[error("cannot read {}: {source}{}", path.display(), read_hint(source))]
    Read {
        /// The generation.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A compressed generation could not be decompressed; it was skipped from that point.
    #[error("{} is damaged and was skipped from there: {source} (check it with `{}`; the other generations were read)", path.display(), check_command(*compression, path))]
    Damaged {
        /// The generation.
        path: PathBuf,
        /// Its compression.
        compression: Compression,
        /// What the decompressor said.
        source: io::Error,
    },
}

fn read_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (log files are usually readable by root and the group adm: run as root or join adm)"
        }
        _ => "",
    }
}

fn check_command(compression: Compression, path: &Path) -> String {
    let tool = match compression {
        Compression::Zstd => "zstd -t",
        _ => "gzip -t",
    };
    format!("{tool} {}", path.display())
}

impl HistoryError {
    fn reading(path: &Path, compression: Compression, source: io::Error) -> HistoryError {
        let path = path.to_path_buf();
        match (compression, source.kind()) {
            (Compression::None, _)
            | (_, io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound) => {
                HistoryError::Read { path, source }
            }
            _ => HistoryError::Damaged {
                path,
                compression,
                source,
            },
        }
    }
}

/// One line of history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes, without the `\n`.
    pub bytes: Vec<u8>,
    /// Where the line starts.
    pub position: Position,
    /// Just after the line: resume here ([`Start::After`]) to read the lines that follow it.
    pub next: Position,
}

/// Where a [`Reader`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The first line of the oldest generation.
    Beginning,
    /// At a position, normally the [`Line::next`] of a line returned earlier. If its
    /// generation no longer exists (retention deleted it), reading starts at the oldest
    /// generation left and [`Reader::lost`] is true.
    After(Position),
    /// At the line that ends at a position: the line whose [`Line::next`] it is, so that
    /// line is returned again (journalctl's `--cursor`). A position at a generation's start
    /// starts there. A missing generation is handled as by [`Start::After`].
    At(Position),
    /// The last N complete lines across the whole set.
    LastLines(u64),
    /// The first line whose timestamp is at or after the time; every line after it follows.
    /// With no such line, the end (only lines written later are returned).
    Since(DateTime<Utc>),
}

/// An open generation.
struct Open {
    identity: u64,
    path: PathBuf,
    compression: Compression,
    reader: Box<dyn BufRead + Send>,
    /// The descriptor `reader` reads from, for [`Reader::revalidate`]'s `fstat`.
    fd: std::os::fd::RawFd,
    /// The inode, when it was the live file as it was opened: at its end, one `stat` of the
    /// live path tells whether it still is (no directory listing).
    live_inode: Option<u64>,
}

/// Iterates over the lines of a [`FileSet`], oldest first, from a [`Start`]. Yields
/// `Err` for a generation it could not read, then goes on. Returns `None` at the end of the
/// live file; a later `next` returns what was written since.
pub struct Reader {
    set: FileSet,
    ids: Identities,
    /// Where the next line starts; `None`: at the oldest generation's start.
    position: Option<Position>,
    open: Option<Open>,
    /// A last line without `\n` read from the live file, beyond `position` (at most
    /// [`MAX_LINE_BYTES`] of it).
    pending: Vec<u8>,
    /// Bytes of the line being read beyond [`MAX_LINE_BYTES`]: read, not kept.
    dropped: u64,
    errors: VecDeque<HistoryError>,
    /// Identities of the generations opened so far.
    seen: HashSet<u64>,
    /// Identities of the generations read to their end (or given up).
    done: HashSet<u64>,
    /// Generations without an identity (damaged) already reported, by inode.
    reported: HashSet<u64>,
    /// How many times lines were skipped because their generation was deleted.
    losses: u64,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("set", &self.set)
            .field("position", &self.position)
            .field("losses", &self.losses)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader of `set` from `start`. Fails only when the set's directory cannot be listed;
    /// generations it could not read while finding the start are reported by the first
    /// items.
    pub fn new(set: FileSet, start: Start) -> Result<Reader, HistoryError> {
        let mut r = Reader {
            set,
            ids: Identities::default(),
            position: None,
            open: None,
            pending: Vec::new(),
            dropped: 0,
            errors: VecDeque::new(),
            seen: HashSet::new(),
            done: HashSet::new(),
            reported: HashSet::new(),
            losses: 0,
        };
        let list = r.list()?;
        r.position = match start {
            Start::Beginning => None,
            Start::After(p) => match r.find(&list, p.generation) {
                Some(_) => Some(p),
                None => {
                    r.losses += 1;
                    None
                }
            },
            Start::At(p) => match r.find(&list, p.generation) {
                Some(i) => match line_start_before(&list[i], p.offset) {
                    Ok(offset) => Some(Position { offset, ..p }),
                    Err(err) => {
                        // Not readable now: reading will report it; start after the line.
                        if err.kind() != io::ErrorKind::NotFound {
                            r.errors.push_back(HistoryError::reading(
                                &list[i].path,
                                list[i].compression,
                                err,
                            ));
                        }
                        Some(p)
                    }
                },
                None => {
                    r.losses += 1;
                    None
                }
            },
            Start::LastLines(n) => r.last_lines(&list, n),
            Start::Since(t) => r.since(&list, t),
        };
        Ok(r)
    }

    /// True once the reader's position pointed into a generation that no longer existed
    /// (deleted by retention, usually): the lines between it and where reading went on, at
    /// the oldest generation left, were skipped. Known right after [`Start::After`].
    pub fn lost(&self) -> bool {
        self.losses > 0
    }

    /// How many times lines were skipped (see [`Reader::lost`]): once at the start, and
    /// once more each time [`Reader::revalidate`] found the generation being read deleted.
    pub fn losses(&self) -> u64 {
        self.losses
    }

    /// Lets go of the open generation if it was deleted meanwhile (its link count is 0),
    /// so that its space is freed. Reading then goes on where it was: in the compressed copy
    /// when compression replaced it (found by its identity), or, when retention deleted it,
    /// at the next generation left, counting a loss. A reader that is called rarely (a slow
    /// subscriber) calls this before each read; it costs one `fstat`.
    pub fn revalidate(&mut self) {
        let Some(open) = &self.open else { return };
        // SAFETY: `open.fd` is owned by `open.reader`, which is alive while `open` is; the
        // borrow ends before `open` can be dropped.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(open.fd) };
        if nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_nlink == 0) {
            self.open = None;
            self.pending.clear(); // beyond `position`: read again from the copy, if any
        }
    }

    /// Where the next line will start: the position to resume from with [`Start::After`].
    /// `None` before anything was read from a set that had no line to start at.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// Lists the set, and forgets the cached identities of files no longer in it (the live
    /// file's key changes as it grows).
    fn list(&mut self) -> Result<Vec<Listed>, HistoryError> {
        let list = entries(&self.set.live)?;
        self.ids
            .0
            .retain(|key, _| list.iter().any(|e| (e.inode, e.size, e.modified) == *key));
        Ok(list)
    }

    /// The index of the generation with identity `id`, searching from the newest (positions
    /// are usually recent).
    fn find(&mut self, list: &[Listed], id: u64) -> Option<usize> {
        (0..list.len())
            .rev()
            .find(|&i| matches!(self.ids.get(&list[i]), Ok(Some(x)) if x == id))
    }

    /// The first generation with an identity at or after index `from`; damaged ones on the
    /// way are reported (once).
    fn first_from(&mut self, list: &[Listed], from: usize) -> Option<(usize, u64)> {
        for (i, e) in list.iter().enumerate().skip(from) {
            match self.ids.get(e) {
                Ok(Some(id)) => return Some((i, id)),
                Ok(None) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    if self.reported.insert(e.inode) {
                        self.errors
                            .push_back(HistoryError::reading(&e.path, e.compression, err));
                    }
                }
            }
        }
        None
    }

    /// The generation after everything this reader has seen, when the one it was in is gone.
    /// Retention deletes the oldest first, so what is left after it is newer.
    fn successor(&mut self, list: &[Listed]) -> Option<(usize, u64)> {
        let mut after = 0;
        for (i, e) in list.iter().enumerate() {
            if matches!(self.ids.get(e), Ok(Some(id)) if self.seen.contains(&id)) {
                after = i + 1;
            }
        }
        self.first_from(list, after)
    }

    /// The generation to read next and where in it.
    fn locate(&mut self, list: &[Listed]) -> Option<(usize, Position)> {
        let start = |(i, id)| {
            (
                i,
                Position {
                    generation: id,
                    offset: 0,
                },
            )
        };
        let Some(p) = self.position else {
            // Normally the oldest; after the generations already given up on, if any.
            return self.successor(list).map(start);
        };
        match self.find(list, p.generation) {
            Some(i) if !self.done.contains(&p.generation) => Some((i, p)),
            Some(i) => self.first_from(list, i + 1).map(start),
            None => {
                if !self.done.contains(&p.generation) {
                    self.losses += 1;
                }
                self.successor(list).map(start)
            }
        }
    }

    /// Opens the generation to read next. `Ok(false)`: nothing to read yet.
    fn open_next(&mut self) -> Result<bool, HistoryError> {
        for _ in 0..OPEN_ATTEMPTS {
            let list = self.list()?;
            let Some((i, pos)) = self.locate(&list) else {
                return Ok(false);
            };
            let e = &list[i];
            self.position = Some(pos);
            match open_at_fd(&e.path, e.compression, pos.offset) {
                Ok((reader, fd)) => {
                    self.seen.insert(pos.generation);
                    self.pending.clear();
                    self.dropped = 0;
                    self.open = Some(Open {
                        identity: pos.generation,
                        path: e.path.clone(),
                        compression: e.compression,
                        reader,
                        fd,
                        live_inode: e.live.then_some(e.inode),
                    });
                    return Ok(true);
                }
                // Renamed or compressed between listing and opening: list again.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    self.seen.insert(pos.generation);
                    self.done.insert(pos.generation);
                    return Err(HistoryError::reading(&e.path, e.compression, err));
                }
            }
        }
        Ok(false)
    }

    /// Gives a line's buffer back to be read into again, so that a caller that is done with
    /// each line before the next costs no allocation per line.
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.pending.capacity() == 0 {
            bytes.clear();
            self.pending = bytes;
        }
    }

    /// Emits the pending bytes as a line and advances the position past them.
    fn emit(&mut self, newline: bool) -> Line {
        let mut bytes = std::mem::take(&mut self.pending);
        let dropped = std::mem::take(&mut self.dropped);
        let position = self.position.expect("a line is read only with a position");
        let len = bytes.len() as u64 + dropped + u64::from(newline);
        if dropped > 0 {
            bytes.extend_from_slice(TRUNCATED);
        }
        let next = Position {
            offset: position.offset + len,
            ..position
        };
        self.position = Some(next);
        Line {
            bytes,
            position,
            next,
        }
    }

    /// Where a reader positioned after `n` lines ago starts: `None` when the set has fewer
    /// (from its beginning).
    fn last_lines(&mut self, list: &[Listed], n: u64) -> Option<Position> {
        let mut need = n;
        let mut newer = None;
        for (index, e) in list.iter().enumerate().rev() {
            let tail = match tail(e, need) {
                Ok(t) => t,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    // Its lines cannot be counted: start just after it, and make sure that
                    // it and everything older count as read.
                    self.reported.insert(e.inode);
                    self.errors
                        .push_back(HistoryError::reading(&e.path, e.compression, err));
                    for older in &list[..=index] {
                        if let Ok(Some(id)) = self.ids.get(older) {
                            self.seen.insert(id);
                            self.done.insert(id);
                        }
                    }
                    return newer;
                }
            };
            if tail.end == 0 {
                continue; // no complete line
            }
            let id = match self.ids.get(e) {
                Ok(Some(id)) => id,
                _ => continue,
            };
            if tail.lines == need {
                return Some(Position {
                    generation: id,
                    offset: tail.start,
                });
            }
            need -= tail.lines;
            newer = Some(Position {
                generation: id,
                offset: 0,
            });
        }
        None
    }

    /// The first line at or after `since`, or the end of the newest generation.
    fn since(&mut self, list: &[Listed], since: DateTime<Utc>) -> Option<Position> {
        let bound = SystemTime::from(since);
        for e in list {
            if e.modified < bound {
                continue; // every line in it was written before `since`
            }
            match scan_since(e, since) {
                Ok(Some(offset)) => {
                    if let Ok(Some(id)) = self.ids.get(e) {
                        return Some(Position {
                            generation: id,
                            offset,
                        });
                    }
                }
                Ok(None) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    self.reported.insert(e.inode);
                    self.errors
                        .push_back(HistoryError::reading(&e.path, e.compression, err));
                }
            }
        }
        self.last_lines(list, 0)
    }
}

impl Iterator for Reader {
    type Item = Result<Line, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Some(Err(e));
            }
            let Some(open) = self.open.as_mut() else {
                match self.open_next() {
                    Ok(true) => continue,
                    Ok(false) => return self.errors.pop_front().map(Err),
                    Err(e) => return Some(Err(e)),
                }
            };
            match read_capped(
                &mut open.reader,
                &mut self.pending,
                &mut self.dropped,
                MAX_LINE_BYTES,
            ) {
                Ok((_, true)) => return Some(Ok(self.emit(true))),
                Ok((_, false)) => {
                    // The end of what is written. Still the live file: wait for more.
                    let read_to = self.position.map_or(0, |p| p.offset)
                        + self.pending.len() as u64
                        + self.dropped;
                    if still_live(&self.set.live, open.live_inode, read_to) {
                        return None;
                    }
                    let id = open.identity;
                    let list = match self.list() {
                        Ok(l) => l,
                        Err(e) => return Some(Err(e)),
                    };
                    if self.find(&list, id).is_some_and(|i| list[i].live) {
                        return None;
                    }
                    // Closed: rotated meanwhile, or a rotated generation all along.
                    if !self.pending.is_empty() || self.dropped > 0 {
                        return Some(Ok(self.emit(false)));
                    }
                    self.done.insert(id);
                    self.open = None;
                }
                Err(err) => {
                    let (path, compression, id) =
                        (open.path.clone(), open.compression, open.identity);
                    self.done.insert(id);
                    self.open = None;
                    self.pending.clear();
                    self.dropped = 0;
                    return Some(Err(HistoryError::reading(&path, compression, err)));
                }
            }
        }
    }
}

/// Reads on to the end of a line: appends its bytes to `line` while `line` holds fewer than
/// `max`, and counts the rest in `dropped` (read through, not kept). Returns how many bytes
/// were consumed, and whether a `\n` ended the line (consumed, not appended); `false` at
/// the end of the input, where a later call goes on with the same line.
fn read_capped(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    dropped: &mut u64,
    max: usize,
) -> io::Result<(u64, bool)> {
    let mut consumed = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((consumed, false));
        }
        let (content, ended) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        let keep = content.min(max.saturating_sub(line.len()));
        line.extend_from_slice(&buf[..keep]);
        *dropped += (content - keep) as u64;
        let used = content + usize::from(ended);
        reader.consume(used);
        consumed += used as u64;
        if ended {
            return Ok((consumed, true));
        }
    }
}

/// Whether the live path still names the file with this inode (not rotated away) and it
/// was not truncated below what was read; `false` for `None` (a rotated generation) or
/// when unsure, so the caller lists the set and finds out.
fn still_live(live: &Path, inode: Option<u64>, read_to: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(inode) = inode else { return false };
    std::fs::metadata(live).is_ok_and(|m| m.ino() == inode && m.len() >= read_to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zst(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    /// Found by the `history` fuzz target (2026-12-07): 30 damaged gzip bytes whose deflate
    /// stream inflates to 154 bytes, mostly newlines, before the trailer check fails. The
    /// reader returns those lines (as `gzip -dc` prints them), then one error naming the file,
    /// then goes on with the live file, and ends. (The target had bounded the items by twice
    /// the input's size, which expansion legitimately exceeds; it now bounds progress.)
    #[test]
    fn a_damaged_gzip_that_inflates_to_newlines_ends_with_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let damaged = [
            31, 139, 8, 0, 0, 0, 0, 0, 4, 255, 99, 104, 224, 96, 99, 0, 91, 141, 189, 12, 12, 0,
            242, 82, 110, 112, 13, 0, 0, 0,
        ];
        std::fs::write(dir.path().join("x.log.1.gz"), damaged).unwrap();
        std::fs::write(
            dir.path().join("x.log"),
            "2026-12-07T10:00:00.000000+00:00 here live: end\n",
        )
        .unwrap();
        let set = FileSet::new(dir.path().join("x.log"));
        let items: Vec<_> = set.reader(Start::Beginning).unwrap().take(10_000).collect();
        assert!(items.len() < 10_000, "the reader ends");
        let errors: Vec<String> = items
            .iter()
            .filter_map(|i| i.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("x.log.1.gz"), "{}", errors[0]);
        let last = items.last().unwrap().as_ref().unwrap();
        assert_eq!(
            last.bytes,
            b"2026-12-07T10:00:00.000000+00:00 here live: end"
        );
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Line `i`, stamped `i` minutes after `t0` in `format`.
    fn line(format: &str, i: usize) -> String {
        let t = (t0() + chrono::Duration::minutes(i as i64)).with_timezone(&Local);
        let rfc3339 = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        match format {
            "rfc3339" => format!("{rfc3339} host app[1]: line {i}"),
            "traditional" => format!("{} host app[1]: line {i}", t.format("%b %e %H:%M:%S")),
            "rfc5424" => format!("<13>1 {rfc3339} host app 1 - - line {i}"),
            "json" => format!("{{\"time\":\"{rfc3339}\",\"host\":\"host\",\"msg\":\"line {i}\"}}"),
            _ => unreachable!(),
        }
    }

    fn text(format: &str, lines: std::ops::Range<usize>) -> Vec<u8> {
        lines
            .map(|i| line(format, i) + "\n")
            .collect::<String>()
            .into_bytes()
    }

    /// Writes `name` with `data`, last modified `minute` minutes after `t0` (plus a second).
    fn put(dir: &Path, name: &str, data: &[u8], minute: usize) {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        let at = SystemTime::from(t0()) + Duration::from_secs(minute as u64 * 60 + 1);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    /// `syslog.3.zst` (lines 0–2), `syslog.2.gz` (3–5), `syslog.1` (6–8), `syslog` (9–11).
    fn standard(format: &str) -> (tempfile::TempDir, FileSet) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        put(d, "syslog.3.zst", &zst(&text(format, 0..3)), 2);
        put(d, "syslog.2.gz", &gz(&text(format, 3..6)), 5);
        put(d, "syslog.1", &text(format, 6..9), 8);
        put(d, "syslog", &text(format, 9..12), 11);
        let set = FileSet::new(d.join("syslog"));
        (dir, set)
    }

    /// The numbers of the lines read (`line N` at their end), and the errors as text.
    fn read(reader: &mut Reader) -> (Vec<usize>, Vec<String>) {
        let (mut lines, mut errors) = (Vec::new(), Vec::new());
        for item in reader {
            match item {
                Ok(l) => {
                    let s = String::from_utf8(l.bytes).unwrap();
                    let s = s.trim_end_matches("\"}");
                    lines.push(s.rsplit(' ').next().unwrap().parse().unwrap());
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (lines, errors)
    }

    fn numbers(set: &FileSet, start: Start) -> Vec<usize> {
        let (lines, errors) = read(&mut set.reader(start).unwrap());
        assert_eq!(errors, Vec::<String>::new());
        lines
    }

    /// Numbered rotation as logwelld does it: every generation up by one, the live file to
    /// `.1`, a new live file with `new`.
    fn rotate(dir: &Path, new: &[u8]) {
        let live = dir.join("syslog");
        for g in fileset::list(&live).unwrap().into_iter().rev() {
            let fileset::Slot::Numbered(n) = g.slot else {
                unreachable!()
            };
            let to = fileset::name("syslog", &fileset::Slot::Numbered(n + 1), g.compression);
            std::fs::rename(&g.path, dir.join(to)).unwrap();
        }
        std::fs::rename(&live, dir.join("syslog.1")).unwrap();
        std::fs::write(&live, new).unwrap();
    }

    /// Compresses `name` with zstd beside it and removes it, as the compressor does.
    fn compress(dir: &Path, name: &str) {
        let data = std::fs::read(dir.join(name)).unwrap();
        std::fs::write(dir.join(format!("{name}.zst")), zst(&data)).unwrap();
        std::fs::remove_file(dir.join(name)).unwrap();
    }

    #[test]
    fn positions_print_parse_and_serialise() {
        let p = Position {
            generation: 0x00c0_ffee_1234_5678,
            offset: 1024,
        };
        assert_eq!(p.to_string(), "00c0ffee12345678:1024");
        for (generation, offset) in [(0, 0), (u64::MAX, u64::MAX), (1, 9), (0xf, 10)] {
            let q = Position { generation, offset };
            assert_eq!(q.to_string(), format!("{generation:016x}:{offset}"));
            assert_eq!(q.to_string().parse(), Ok(q));
        }
        assert_eq!("00c0ffee12345678:1024".parse(), Ok(p));
        assert_eq!("C0FFEE:7".parse::<Position>().unwrap().generation, 0xc0ffee);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            "\"00c0ffee12345678:1024\""
        );
        assert_eq!(
            serde_json::from_str::<Position>("\"00c0ffee12345678:1024\"").unwrap(),
            p
        );
        for bad in [
            "",
            ":",
            "abc",
            "xyz:1",
            "1:",
            ":1",
            "1:-1",
            "1:+1",
            "12345678901234567:1",
            "1:1:1",
            " 1:1",
        ] {
            let e = bad.parse::<Position>().unwrap_err();
            assert!(e.to_string().contains("HEX:OFFSET"), "{bad}");
        }
        assert!(serde_json::from_str::<Position>("\"nope\"").is_err());
        // FNV-1a's published test vectors: stable across Rust versions.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn reads_every_generation_oldest_first() {
        let (_dir, set) = standard("rfc3339");
        let gens = set.generations().unwrap();
        let names: Vec<_> = gens
            .iter()
            .map(|g| g.path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["syslog.3.zst", "syslog.2.gz", "syslog.1", "syslog"]);
        assert_eq!(
            gens.iter().map(|g| g.compression).collect::<Vec<_>>(),
            [
                Compression::Zstd,
                Compression::Gzip,
                Compression::None,
                Compression::None
            ]
        );
        assert_eq!(
            gens.iter().map(|g| g.live).collect::<Vec<_>>(),
            [false, false, false, true]
        );
        assert_eq!(gens[0].identity, Some(fnv1a(line("rfc3339", 0).as_bytes())));
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 12);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l.bytes, line("rfc3339", i).as_bytes());
            assert_eq!(l.position.generation, gens[i / 3].identity.unwrap());
            assert_eq!(l.next.offset, l.position.offset + l.bytes.len() as u64 + 1);
            if i % 3 != 0 {
                assert_eq!(l.position, lines[i - 1].next);
            } else {
                assert_eq!(l.position.offset, 0);
            }
        }
    }

    #[test]
    fn last_lines_across_generations() {
        let (_dir, set) = standard("rfc3339");
        assert_eq!(numbers(&set, Start::LastLines(0)), Vec::<usize>::new());
        for n in [1, 2, 3, 4, 6, 7, 9, 10, 11, 12, 13, 1000] {
            let expect: Vec<usize> = (12usize.saturating_sub(n as usize)..12).collect();
            assert_eq!(numbers(&set, Start::LastLines(n)), expect, "last {n}");
        }
    }

    /// Issue 24 item 2: a link planted under a generation's name (the live file, or a
    /// generation the listing saw as a file and that was swapped for a link) was followed.
    #[test]
    fn links_and_fifos_are_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("secret"), "SECRET\n").unwrap();
        std::os::unix::fs::symlink(d.join("secret"), d.join("x.log")).unwrap();
        let set = FileSet::new(d.join("x.log"));
        assert_eq!(set.generations().unwrap(), []);
        let items: Vec<_> = set.reader(Start::Beginning).unwrap().collect();
        assert!(items.is_empty(), "{items:?}");
        // Opening itself refuses a link and a FIFO, whatever listed them.
        let e = open_regular(&d.join("x.log")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = open_regular(&d.join("fifo")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = open_at(&d.join("x.log"), Compression::None, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    /// Issue 24 item 3: a line was read whole, so one huge line (a sparse file) took as
    /// much memory. It is cut at `MAX_LINE_BYTES` and marked; positions stay exact.
    #[test]
    fn a_line_over_the_cap_is_cut_and_marked_and_positions_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let huge = MAX_LINE_BYTES + 100_000;
        let mut rotated = b"first 0\n".to_vec();
        rotated.extend(std::iter::repeat_n(b'y', huge));
        rotated.extend_from_slice(b"\nafter 2\n");
        // A rotated generation's last line without `\n`, too long as well.
        rotated.extend(std::iter::repeat_n(b'z', huge));
        put(d, "app.log.1", &rotated, 1);
        put(d, "app.log", b"live 4\n", 2);
        let set = FileSet::new(d.join("app.log"));
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let texts: Vec<&[u8]> = lines.iter().map(|l| &l.bytes[..]).collect();
        assert_eq!(texts.len(), 5);
        assert_eq!(texts[0], b"first 0");
        for (cut, byte) in [(texts[1], b'y'), (texts[3], b'z')] {
            assert_eq!(cut.len(), MAX_LINE_BYTES + TRUNCATED.len());
            assert!(cut[..MAX_LINE_BYTES].iter().all(|b| *b == byte));
            assert!(cut.ends_with(b" [truncated]"));
        }
        assert_eq!(texts[2], b"after 2");
        assert_eq!(texts[4], b"live 4");
        // Positions count every byte read, kept or not: resuming after the cut line
        // starts at the next one.
        assert_eq!(lines[1].next.offset, 8 + huge as u64 + 1);
        let mut r = set.reader(Start::After(lines[1].next)).unwrap();
        assert_eq!(r.next().unwrap().unwrap().bytes, b"after 2");
        // The live file's huge line, written in pieces: held (at most the cap) until its
        // `\n` comes, then cut.
        let mut r = set.reader(Start::After(lines[4].next)).unwrap();
        assert!(r.next().is_none());
        let mut live = File::options()
            .append(true)
            .open(d.join("app.log"))
            .unwrap();
        for _ in 0..3 {
            live.write_all(&vec![b'w'; huge / 2]).unwrap();
            assert!(r.next().is_none(), "an incomplete line is not returned");
            assert!(r.pending.len() <= MAX_LINE_BYTES);
        }
        live.write_all(b"\nlast 6\n").unwrap();
        let cut = r.next().unwrap().unwrap();
        assert_eq!(cut.bytes.len(), MAX_LINE_BYTES + TRUNCATED.len());
        assert_eq!(
            cut.next.offset - cut.position.offset,
            3 * (huge / 2) as u64 + 1
        );
        assert_eq!(r.next().unwrap().unwrap().bytes, b"last 6");
    }

    /// Issue 24 item 3: the tail of a compressed generation kept one offset per line up to
    /// N, so `n=999999999999` on millions of lines took gigabytes. Past `TAIL_OFFSETS_MAX`
    /// it counts instead, with the same result.
    #[test]
    fn the_tail_of_a_compressed_generation_is_exact_for_any_n() {
        let lines = TAIL_OFFSETS_MAX as usize * 2 + 7;
        let data: Vec<u8> = (0..lines)
            .map(|i| format!("l{i}\n"))
            .collect::<String>()
            .into_bytes();
        let packed = zst(&data);
        let open = || -> io::Result<Box<dyn BufRead + Send>> {
            Ok(Box::new(BufReader::new(zstd::stream::read::Decoder::new(
                io::Cursor::new(packed.clone()),
            )?)))
        };
        let starts: Vec<u64> = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', &data).map(|i| i as u64 + 1))
            .take(lines)
            .collect();
        let end = data.len() as u64;
        for n in [
            1,
            TAIL_OFFSETS_MAX,
            TAIL_OFFSETS_MAX + 1,
            lines as u64 - 1,
            lines as u64,
            lines as u64 + 1,
            999_999_999_999,
        ] {
            let t = tail_stream(open, n).unwrap();
            let want = n.min(lines as u64);
            assert_eq!(
                t,
                Tail {
                    lines: want,
                    start: starts[lines - want as usize],
                    end
                },
                "n = {n}"
            );
        }
        assert_eq!(
            tail_stream(open, 0).unwrap(),
            Tail {
                lines: 0,
                start: end,
                end
            }
        );
    }

    #[test]
    fn last_lines_in_compressed_and_block_crossing_generations() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Lines long enough that the backwards scan crosses several blocks.
        let long = |r: std::ops::Range<usize>| -> Vec<u8> {
            r.map(|i| {
                format!(
                    "2026-11-21T09:00:00.{i:06}+00:00 {} line {i}\n",
                    "x".repeat(20_000)
                )
            })
            .collect::<String>()
            .into_bytes()
        };
        put(d, "syslog.3.gz", &gz(&long(0..10)), 1);
        put(d, "syslog.2.zst", &zst(&long(10..20)), 2);
        put(d, "syslog.1", &long(20..30), 3);
        let set = FileSet::new(d.join("syslog")); // no live file at all
        let all: Vec<usize> = numbers(&set, Start::Beginning);
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        assert_eq!(numbers(&set, Start::LastLines(5)), all[25..]);
        assert_eq!(numbers(&set, Start::LastLines(15)), all[15..]);
        assert_eq!(numbers(&set, Start::LastLines(25)), all[5..]);
        assert_eq!(numbers(&set, Start::LastLines(0)), Vec::<usize>::new());
    }

    #[test]
    fn since_in_every_format() {
        for format in ["rfc3339", "traditional", "rfc5424", "json"] {
            let (_dir, set) = standard(format);
            let at = |m: i64| Start::Since(t0() + chrono::Duration::minutes(m));
            assert_eq!(
                numbers(&set, at(-60)),
                (0..12).collect::<Vec<_>>(),
                "{format}"
            );
            assert_eq!(
                numbers(&set, at(0)),
                (0..12).collect::<Vec<_>>(),
                "{format}"
            );
            assert_eq!(
                numbers(&set, at(4)),
                (4..12).collect::<Vec<_>>(),
                "{format}"
            );
            assert_eq!(
                numbers(&set, at(7)),
                (7..12).collect::<Vec<_>>(),
                "{format}"
            );
            let half = Start::Since(t0() + chrono::Duration::seconds(6 * 60 + 30));
            assert_eq!(numbers(&set, half), (7..12).collect::<Vec<_>>(), "{format}");
            assert_eq!(numbers(&set, at(11)), [11], "{format}");
            assert_eq!(numbers(&set, at(12)), Vec::<usize>::new(), "{format}");
        }
    }

    #[test]
    fn since_skips_generations_written_before_it_without_opening_them() {
        let (dir, set) = standard("rfc3339");
        // Damaged, but last written at minute 2: never opened for a later time.
        put(dir.path(), "syslog.3.zst", b"not zstd at all", 2);
        let start = Start::Since(t0() + chrono::Duration::minutes(4));
        assert_eq!(numbers(&set, start), (4..12).collect::<Vec<_>>());
        let (lines, errors) = read(&mut set.reader(Start::Since(t0())).unwrap());
        assert_eq!(lines, (3..12).collect::<Vec<_>>());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("syslog.3.zst is damaged") && errors[0].contains("zstd -t"),
            "{errors:?}"
        );
    }

    #[test]
    fn line_times() {
        let written =
            NaiveDateTime::parse_from_str("2027-01-02 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let local = |s: &str| {
            Local
                .from_local_datetime(
                    &NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap(),
                )
                .unwrap()
                .with_timezone(&Utc)
        };
        for (l, expect) in [
            (
                "2026-11-21T09:41:03.123456+01:00 h a: m",
                Some(utc("2026-11-21T08:41:03.123456Z")),
            ),
            (
                "2026-11-21T09:41:03Z h a: m",
                Some(utc("2026-11-21T09:41:03Z")),
            ),
            (
                "<13>1 2026-11-21T09:41:03.5+00:00 h a - - - m",
                Some(utc("2026-11-21T09:41:03.5Z")),
            ),
            (
                "<191>1 2026-11-21T09:41:03+00:00 h",
                Some(utc("2026-11-21T09:41:03Z")),
            ),
            (
                "{\"time\":\"2026-11-21T09:41:03.000001-02:00\",\"msg\":\"m\"}",
                Some(utc("2026-11-21T11:41:03.000001Z")),
            ),
            // Traditional: the latest year that is not after the file was written.
            ("Jan  2 09:00:00 h a: m", Some(local("2027-01-02 09:00:00"))),
            ("Dec 31 23:59:59 h a: m", Some(local("2026-12-31 23:59:59"))),
            ("Nov 21 09:41:03 h a: m", Some(local("2026-11-21 09:41:03"))),
            ("Jan 03 09:00:00 h a: m", Some(local("2027-01-03 09:00:00"))), // within a day: clock skew
            ("Feb 29 12:00:00 h a: m", Some(local("2024-02-29 12:00:00"))),
            ("<13>1 - h a - - - m", None),
            ("hello", None),
            ("", None),
            ("Foo 21 09:41:03 h", None),
            ("2026-11-21 09:41:03 h", None),
        ] {
            assert_eq!(line_time(l.as_bytes(), written), expect, "{l}");
        }
    }

    #[test]
    fn at_a_cursor_starts_with_the_line_it_follows() {
        let (dir, set) = standard("json");
        // A line longer than a block in the plain generation and in the live file.
        let long = format!(
            "{{\"time\":\"x\",\"msg\":\"{} line 99\"}}\n",
            "y".repeat(BLOCK * 2)
        );
        let mut plain = text("json", 6..9);
        plain.extend_from_slice(long.as_bytes());
        plain.extend_from_slice(&text("json", 9..10));
        put(dir.path(), "syslog.1", &plain, 8);
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let all = read(&mut set.reader(Start::Beginning).unwrap()).0;
        assert_eq!(all.len(), 14, "{all:?}");
        // zstd, gzip, plain (with a long line) and live generations: every line.
        for (i, l) in lines.iter().enumerate() {
            let (got, errors) = read(&mut set.reader(Start::At(l.next)).unwrap());
            assert_eq!(got, all[i..], "at {}", l.next);
            assert!(errors.is_empty(), "{errors:?}");
        }
        // A generation's start is its first line.
        let first = Position {
            offset: 0,
            ..lines[3].position
        };
        assert_eq!(read(&mut set.reader(Start::At(first)).unwrap()).0, all[3..]);
    }

    #[test]
    fn resumes_after_rotation_shifted_and_compressed_its_generation() {
        let (dir, set) = standard("rfc3339");
        let d = dir.path();
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let in_plain = lines[7].next; // in syslog.1, before line 8
        let in_live = lines[10].next; // in syslog, before line 11
        let at_end = lines[11].next;
        rotate(d, &text("rfc3339", 12..14));
        compress(d, "syslog.2"); // the former syslog.1, now syslog.2.zst
        let names: Vec<_> = set
            .generations()
            .unwrap()
            .iter()
            .map(|g| g.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "syslog.4.zst",
                "syslog.3.gz",
                "syslog.2.zst",
                "syslog.1",
                "syslog"
            ]
        );
        for (from, expect) in [(in_plain, 8..14), (in_live, 11..14), (at_end, 12..14)] {
            let mut r = set.reader(Start::After(from)).unwrap();
            assert_eq!(read(&mut r), (expect.collect(), vec![]), "from {from}");
            assert!(!r.lost());
        }
    }

    #[test]
    fn follows_a_rotation_that_happens_while_reading() {
        let (dir, set) = standard("rfc3339");
        let mut r = set.reader(Start::LastLines(2)).unwrap();
        assert_eq!(
            r.next().unwrap().unwrap().bytes,
            line("rfc3339", 10).as_bytes()
        );
        rotate(dir.path(), &text("rfc3339", 12..13));
        compress(dir.path(), "syslog.2");
        assert_eq!(read(&mut r).0, [11, 12]);
        // At the end of the live file: `None`, then what is written later.
        assert!(r.next().is_none());
        let mut f = File::options()
            .append(true)
            .open(dir.path().join("syslog"))
            .unwrap();
        f.write_all(&text("rfc3339", 13..14)).unwrap();
        assert_eq!(read(&mut r).0, [13]);
        let resume = r.position().unwrap();
        f.write_all(&text("rfc3339", 14..15)).unwrap();
        assert_eq!(numbers(&set, Start::After(resume)), [14]);
    }

    #[test]
    fn a_generation_compressed_between_start_and_read_is_found_again() {
        let (dir, set) = standard("rfc3339");
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut r = set.reader(Start::After(lines[6].next)).unwrap();
        compress(dir.path(), "syslog.1");
        assert_eq!(read(&mut r), ((7..12).collect(), vec![]));
    }

    #[test]
    fn a_deleted_generation_is_reported_as_lost() {
        let (dir, set) = standard("rfc3339");
        let lines: Vec<Line> = set
            .reader(Start::Beginning)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        std::fs::remove_file(dir.path().join("syslog.3.zst")).unwrap();
        let mut r = set.reader(Start::After(lines[1].next)).unwrap();
        assert!(r.lost());
        assert_eq!(read(&mut r), ((3..12).collect(), vec![]));
        // Deleted by retention while the reader is still in an older one.
        let mut r = set.reader(Start::Beginning).unwrap();
        assert_eq!(
            r.next().unwrap().unwrap().bytes,
            line("rfc3339", 3).as_bytes()
        );
        std::fs::remove_file(dir.path().join("syslog.2.gz")).unwrap();
        assert_eq!(r.losses(), 0);
        let gone = dir.path().join("syslog.2.gz");
        let held = || {
            std::fs::read_dir("/proc/self/fd").unwrap().any(|fd| {
                std::fs::read_link(fd.unwrap().path())
                    .is_ok_and(|t| t.to_string_lossy() == format!("{} (deleted)", gone.display()))
            })
        };
        assert!(held());
        r.revalidate(); // it was open: let go of (its space is freed), the rest of it is lost
        assert!(!held());
        assert_eq!(read(&mut r), ((6..12).collect(), vec![]));
        assert_eq!(r.losses(), 1);
        let mut r = set.reader(Start::After(lines[4].next)).unwrap();
        assert!(r.lost());
        assert_eq!(read(&mut r).0, (6..12).collect::<Vec<_>>());
        // Replaced by a compressed copy while open (compression): read on in the copy.
        let (dir, set) = standard("rfc3339");
        let mut r = set.reader(Start::Beginning).unwrap();
        for _ in 0..7 {
            r.next().unwrap().unwrap(); // lines 0..=6: in syslog.1
        }
        compress(dir.path(), "syslog.1");
        r.revalidate();
        assert_eq!(read(&mut r), ((7..12).collect(), vec![]));
        assert_eq!(r.losses(), 0);
    }

    #[test]
    fn empty_generations_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        put(d, "syslog.4.gz", &gz(b""), 0);
        put(d, "syslog.3", b"", 0);
        put(d, "syslog.2.zst", &zst(&text("rfc3339", 0..2)), 1);
        put(d, "syslog.1", b"", 1);
        put(d, "syslog", b"", 1);
        let set = FileSet::new(d.join("syslog"));
        assert_eq!(set.generations().unwrap().len(), 1);
        assert_eq!(numbers(&set, Start::Beginning), [0, 1]);
        assert_eq!(numbers(&set, Start::LastLines(1)), [1]);
        assert_eq!(numbers(&set, Start::LastLines(5)), [0, 1]);
        assert_eq!(numbers(&set, Start::Since(t0())), [0, 1]);
        // Nothing at all yet, then a first line.
        let empty = tempfile::tempdir().unwrap();
        let set = FileSet::new(empty.path().join("syslog"));
        let mut r = set.reader(Start::LastLines(10)).unwrap();
        assert!(r.next().is_none());
        std::fs::write(empty.path().join("syslog"), text("rfc3339", 0..1)).unwrap();
        assert_eq!(read(&mut r).0, [0]);
    }

    #[test]
    fn a_partial_last_line_is_returned_only_once_complete_or_rotated() {
        let (dir, set) = standard("rfc3339");
        let live = dir.path().join("syslog");
        let mut f = File::options().append(true).open(&live).unwrap();
        f.write_all(b"2026-11-21T09:12:00+00:00 host app: line 1")
            .unwrap();
        let mut r = set.reader(Start::LastLines(2)).unwrap();
        assert_eq!(read(&mut r).0, [10, 11]);
        assert_eq!(numbers(&set, Start::LastLines(1)), [11]);
        f.write_all(b"2\n").unwrap();
        assert_eq!(read(&mut r).0, [12]);
        // A rotated generation's last line without `\n` is complete as it is.
        f.write_all(b"2026-11-21T09:13:00+00:00 host app: line 13")
            .unwrap();
        assert_eq!(read(&mut r).0, Vec::<usize>::new());
        rotate(dir.path(), b"");
        assert_eq!(read(&mut r).0, [13]);
        assert_eq!(numbers(&set, Start::LastLines(2)), [12, 13]);
        // A live file with only a partial first line has no identity yet.
        std::fs::write(&live, b"2026-11-21T09:14:00+00:00 partial").unwrap();
        assert_eq!(
            set.generations().unwrap().last().unwrap().path,
            dir.path().join("syslog.1")
        );
        assert_eq!(read(&mut r).0, Vec::<usize>::new());
    }

    #[test]
    fn damaged_compressed_generations_are_reported_and_skipped() {
        let (dir, set) = standard("rfc3339");
        let d = dir.path();
        // Unreadable from the start.
        put(d, "syslog.2.gz", b"\x1f\x8b garbage", 5);
        // Readable first line, then cut short.
        let whole = zst(&text("rfc3339", 0..3).repeat(2000));
        put(d, "syslog.3.zst", &whole[..whole.len() / 2], 2);
        let (lines, errors) = read(&mut set.reader(Start::Beginning).unwrap());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("syslog.3.zst is damaged"), "{errors:?}");
        assert!(
            errors[1].contains("syslog.2.gz is damaged") && errors[1].contains("gzip -t"),
            "{errors:?}"
        );
        assert_eq!(lines[lines.len() - 6..], [6, 7, 8, 9, 10, 11]);
        assert!(lines.len() > 6);
        // The last lines do not need them.
        assert_eq!(
            numbers(&set, Start::LastLines(6)),
            (6..12).collect::<Vec<_>>()
        );
        let (lines, errors) = read(&mut set.reader(Start::LastLines(8)).unwrap());
        assert_eq!(lines, (6..12).collect::<Vec<_>>());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("syslog.2.gz"), "{errors:?}");
        let gens = set.generations().unwrap();
        assert_eq!(gens[1].identity, None);
    }
}
