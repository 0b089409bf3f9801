//! The generations of a file set as the reader sees them: listing them in order, opening
//! them (`O_NOFOLLOW`, regular files only, relative to their directory), and their
//! identities, cached by inode, size and modification time.

use super::*;

/// A first line longer than this is identified by its first `FIRST_LINE_MAX` bytes.
pub(super) const FIRST_LINE_MAX: u64 = 1024 * 1024;

/// How often a reader re-lists and retries when a generation vanishes between listing and
/// opening (renamed by a rotation or a compression at that moment).
pub(super) const OPEN_ATTEMPTS: usize = 5;

/// A file set to read: a live file and its rotated generations beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSet {
    pub(super) live: PathBuf,
}

/// One generation of a [`FileSet`], as listed by [`FileSet::generations`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationInfo {
    /// Its path now.
    pub path: PathBuf,
    /// Whether and how it is compressed.
    pub compression: Compression,
    /// Whether it is the live file (the newest, being written).
    pub live: bool,
    /// Size on disk, in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// Its identity (the hash of its first line); `None` when its first line cannot be read
    /// (a damaged compressed file).
    pub identity: Option<u64>,
}

impl FileSet {
    /// The set whose live file is `live` (`/var/log/syslog`).
    pub fn new(live: impl Into<PathBuf>) -> FileSet {
        FileSet { live: live.into() }
    }

    /// The live file's path.
    pub fn live(&self) -> &Path {
        &self.live
    }

    /// Every generation with content, oldest first: the rotated ones, then the live file.
    /// Empty generations, and a live file whose first line is not complete, are left out.
    pub fn generations(&self) -> Result<Vec<GenerationInfo>, HistoryError> {
        let mut ids = Identities::default();
        let mut out = Vec::new();
        for e in entries(&self.live)? {
            let identity = match ids.get(&e) {
                Ok(None) => continue,
                Ok(Some(id)) => Some(id),
                Err(_) => None,
            };
            out.push(GenerationInfo {
                path: e.path,
                compression: e.compression,
                live: e.live,
                size: e.size,
                modified: e.modified,
                identity,
            });
        }
        Ok(out)
    }

    /// A reader of this set from `start`.
    pub fn reader(&self, start: Start) -> Result<Reader, HistoryError> {
        Reader::new(self.clone(), start)
    }
}

/// A generation as listed, before its identity is known.
#[derive(Clone, Debug)]
pub(super) struct Listed {
    pub(super) path: PathBuf,
    pub(super) compression: Compression,
    pub(super) live: bool,
    pub(super) size: u64,
    pub(super) modified: SystemTime,
    pub(super) inode: u64,
}

/// The rotated generations (oldest first), then the live file if it exists.
pub(super) fn entries(live: &Path) -> Result<Vec<Listed>, HistoryError> {
    use std::os::unix::fs::MetadataExt;
    let list_error = |source| HistoryError::List {
        dir: fileset::split(live).0,
        source,
    };
    let mut out: Vec<Listed> = fileset::list(live)
        .map_err(list_error)?
        .into_iter()
        .map(|g| Listed {
            path: g.path,
            compression: g.compression,
            live: false,
            size: g.size,
            modified: g.modified,
            inode: g.inode,
        })
        .collect();
    // A link at the live file's name is no live file (it is never followed).
    match std::fs::symlink_metadata(live) {
        Ok(m) if m.is_file() => out.push(Listed {
            path: live.to_path_buf(),
            compression: Compression::None,
            live: true,
            size: m.len(),
            modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            inode: m.ino(),
        }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(HistoryError::Read {
                path: live.to_path_buf(),
                source: e,
            })
        }
    }
    Ok(out)
}

/// Opens a generation for reading: never through a symbolic link (`O_NOFOLLOW`), and only a
/// regular file (a FIFO or a device planted under a generation's name is refused, and
/// `O_NONBLOCK` keeps a FIFO from blocking the open).
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link, which is never followed",
                )
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    Ok(file)
}

/// Opens a generation's uncompressed content at `offset`.
pub(super) fn open_at(
    path: &Path,
    compression: Compression,
    offset: u64,
) -> io::Result<Box<dyn BufRead + Send>> {
    open_at_fd(path, compression, offset).map(|(reader, _)| reader)
}

/// [`open_at`], and the descriptor of the file the reader owns (valid as long as it lives).
pub(super) fn open_at_fd(
    path: &Path,
    compression: Compression,
    offset: u64,
) -> io::Result<(Box<dyn BufRead + Send>, std::os::fd::RawFd)> {
    use std::os::fd::AsRawFd;
    let mut file = open_regular(path)?;
    let fd = file.as_raw_fd();
    let mut reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => {
            file.seek(SeekFrom::Start(offset))?;
            return Ok((Box::new(BufReader::with_capacity(BLOCK, file)), fd));
        }
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BLOCK,
            flate2::read::MultiGzDecoder::new(file),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BLOCK,
            zstd::stream::read::Decoder::new(file)?,
        )),
    };
    io::copy(&mut reader.by_ref().take(offset), &mut io::sink())?;
    Ok((reader, fd))
}

/// Identities of listed generations, cached by inode, size and mtime: a rotated generation
/// keeps all three through renames, and a compressed copy is a new inode.
#[derive(Default)]
pub(super) struct Identities(pub(super) HashMap<(u64, u64, SystemTime), CachedIdentity>);

/// An identity, or why the first line could not be read (kept as text: `io::Error` is not
/// `Clone`).
pub(super) type CachedIdentity = Result<Option<u64>, (io::ErrorKind, String)>;

impl Identities {
    /// `Ok(None)` for a generation without a complete first line (the live file) or without
    /// content.
    pub(super) fn get(&mut self, e: &Listed) -> io::Result<Option<u64>> {
        let key = (e.inode, e.size, e.modified);
        if let Some(r) = self.0.get(&key) {
            return r.clone().map_err(|(k, m)| io::Error::new(k, m));
        }
        let r = first_line_hash(e);
        if matches!(&r, Err(err) if err.kind() == io::ErrorKind::NotFound) {
            return r; // renamed meanwhile: not a property of the file, do not cache
        }
        self.0.insert(
            key,
            r.as_ref()
                .map(|v| *v)
                .map_err(|err| (err.kind(), err.to_string())),
        );
        r
    }
}

pub(super) fn first_line_hash(e: &Listed) -> io::Result<Option<u64>> {
    if e.size == 0 {
        return Ok(None);
    }
    let reader = open_at(&e.path, e.compression, 0)?;
    let mut line = Vec::new();
    reader.take(FIRST_LINE_MAX).read_until(b'\n', &mut line)?;
    let complete = line.last() == Some(&b'\n');
    if complete {
        line.pop();
    } else if line.is_empty() || (e.live && line.len() < FIRST_LINE_MAX as usize) {
        return Ok(None);
    }
    Ok(Some(fnv1a(&line)))
}
