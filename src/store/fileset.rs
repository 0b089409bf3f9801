//! A file set: one output's live file and its rotated generations, named as logrotate names
//! them, so tools and habits keep working. Owns the naming and the listing; knows nothing of
//! when to rotate (`rotate`) or how to compress (`compress`).
//!
//! - Numbered (logrotate's default): `syslog`, `syslog.1`, `syslog.2.zst`, … The highest
//!   number is the oldest; each rotation renames every generation up by one.
//! - Dated (logrotate's `dateext`): `syslog-20261121`, `syslog-20261121.zst`; a second rotation
//!   in the same period (by size) adds a sequence: `syslog-20261121-2`. Sorted by name, oldest
//!   first; nothing is renamed at rotation.
//! - Compressed generations end in `.zst` or `.gz`. A compression in progress writes a hidden
//!   temporary (`.syslog.2.zst.tmp`) beside it, which `list` ignores and recovery removes.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How rotated generations are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `syslog.1`, `syslog.2.zst`, …
    Numbered,
    /// `syslog-20261121`, `syslog-20261121-2.zst`, …
    Dated,
}

/// How a generation is (or is to be) compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// zstd (`.zst`).
    Zstd,
}

impl Compression {
    /// The file name extension, with its dot (`""` for none).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    fn from_name(name: &str) -> (&str, Compression) {
        if let Some(stem) = name.strip_suffix(".zst") {
            (stem, Compression::Zstd)
        } else if let Some(stem) = name.strip_suffix(".gz") {
            (stem, Compression::Gzip)
        } else {
            (name, Compression::None)
        }
    }
}

/// Where a generation sits in its set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    /// `syslog.N`: larger is older.
    Numbered(u32),
    /// `syslog-DATE[-SEQ]`: the date text (`20261121` or `2026112109`) and the sequence
    /// (1 when absent).
    Dated(String, u32),
}

/// One rotated generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// Its path now.
    pub path: PathBuf,
    /// Its place in the set.
    pub slot: Slot,
    /// Whether and how it is compressed.
    pub compression: Compression,
    /// Size on disk, in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// Inode number: a generation keeps it across renames (not across compression).
    pub inode: u64,
}

/// The live file's directory and name.
pub fn split(live: &Path) -> (PathBuf, String) {
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = live
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_default()
        .to_string();
    (dir, name)
}

/// Where a rotated generation's suffix can start in `name`: the byte offsets `k` such that
/// `name` is a generation of `&name[..k]` (`.N`, `-DATE`, `-DATE-N`, before an optional `.gz`
/// or `.zst`). Such a suffix holds at most two `.` or `-`, so only the last two such places
/// of the name less its compression extension are tried: linear in the name, whatever it
/// holds (the privileged parent matches names a sender chose).
pub fn generation_splits(name: &str) -> impl Iterator<Item = usize> + '_ {
    let (stem, _) = Compression::from_name(name);
    stem.bytes()
        .enumerate()
        .rev()
        .filter(|&(_, b)| b == b'.' || b == b'-')
        .take(2)
        .map(|(k, _)| k)
        .filter(move |&k| k > 0 && parse_name(&name[..k], name).is_some())
}

/// Reads the slot of a file name in the set of `base`, if it is one of its generations.
pub fn parse_name(base: &str, name: &str) -> Option<(Slot, Compression)> {
    let (stem, compression) = Compression::from_name(name);
    if let Some(n) = stem.strip_prefix(base).and_then(|r| r.strip_prefix('.')) {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') {
            return n.parse().ok().map(|n| (Slot::Numbered(n), compression));
        }
    }
    let rest = stem.strip_prefix(base)?.strip_prefix('-')?;
    let (date, seq) = match rest.split_once('-') {
        Some((d, s)) => (d, s.parse::<u32>().ok().filter(|s| *s >= 2)?),
        None => (rest, 1),
    };
    let date_ok = matches!(date.len(), 8 | 10) && date.bytes().all(|b| b.is_ascii_digit());
    date_ok.then(|| (Slot::Dated(date.to_string(), seq), compression))
}

/// The file name of a generation.
pub fn name(base: &str, slot: &Slot, compression: Compression) -> String {
    let ext = compression.extension();
    match slot {
        Slot::Numbered(n) => format!("{base}.{n}{ext}"),
        Slot::Dated(date, 1) => format!("{base}-{date}{ext}"),
        Slot::Dated(date, seq) => format!("{base}-{date}-{seq}{ext}"),
    }
}

/// The hidden temporary a compression writes before renaming it to `final_name`.
pub fn temp_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

/// Every rotated generation of `live`, oldest first. The live file itself is not included.
pub fn list(live: &Path) -> io::Result<Vec<Generation>> {
    use std::os::unix::fs::MetadataExt;
    let (dir, base) = split(live);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some((slot, compression)) = parse_name(&base, &file_name) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        out.push(Generation {
            path: dir.join(&file_name),
            slot,
            compression,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            inode: meta.ino(),
        });
    }
    out.sort_by(|a, b| match (&a.slot, &b.slot) {
        (Slot::Numbered(x), Slot::Numbered(y)) => y.cmp(x),
        // Mixed namings (the setting changed): by age.
        (Slot::Numbered(_), Slot::Dated(..)) | (Slot::Dated(..), Slot::Numbered(_)) => {
            a.modified.cmp(&b.modified)
        }
        (x, y) => x.cmp(y),
    });
    Ok(out)
}

/// Stale compression temporaries of `live`'s set (left by a crash).
pub fn temporaries(live: &Path) -> Vec<PathBuf> {
    let (dir, base) = split(live);
    let prefix = format!(".{base}");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            let inner = n.strip_prefix('.')?.strip_suffix(".tmp")?;
            (n.starts_with(&prefix) && parse_name(&base, inner).is_some()).then(|| dir.join(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (slot, c, expect) in [
            (Slot::Numbered(1), Compression::None, "syslog.1"),
            (Slot::Numbered(12), Compression::Zstd, "syslog.12.zst"),
            (
                Slot::Dated("20261121".into(), 1),
                Compression::Gzip,
                "syslog-20261121.gz",
            ),
            (
                Slot::Dated("2026112109".into(), 3),
                Compression::None,
                "syslog-2026112109-3",
            ),
        ] {
            assert_eq!(name("syslog", &slot, c), expect);
            assert_eq!(parse_name("syslog", expect), Some((slot, c)));
        }
    }

    #[test]
    fn other_files_are_not_generations() {
        for other in [
            "syslog",
            "syslog.0",
            "syslog.01",
            "syslog.x",
            "syslog.log",
            "syslog-2026",
            "syslog-20261121-1",
            "syslog-20261121-x",
            "auth.log.1",
            "syslog.1.bz2",
            ".syslog.1.zst.tmp",
        ] {
            assert_eq!(parse_name("syslog", other), None, "{other}");
        }
        // A name that merely starts like another set's is not ours.
        assert_eq!(
            parse_name("auth.log", "auth.log.1"),
            Some((Slot::Numbered(1), Compression::None))
        );
    }

    #[test]
    fn listing_is_oldest_first_and_skips_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "syslog",
            "syslog.1",
            "syslog.2.zst",
            "syslog.10.gz",
            ".syslog.3.zst.tmp",
            "other.1",
        ] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let live = dir.path().join("syslog");
        let names: Vec<String> = list(&live)
            .unwrap()
            .iter()
            .map(|g| g.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["syslog.10.gz", "syslog.2.zst", "syslog.1"]);
        assert_eq!(temporaries(&live), [dir.path().join(".syslog.3.zst.tmp")]);
        let dated = dir.path().join("d");
        for f in ["d-20261121-2.zst", "d-20261120", "d-20261121"] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let names: Vec<String> = list(&dated)
            .unwrap()
            .iter()
            .map(|g| g.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["d-20261120", "d-20261121", "d-20261121-2.zst"]);
    }
}
