//! The record of the files a templated output created, kept in the state directory so that
//! it outlives restarts: the age sweep (`max_age_days`) deletes only these and their rotated
//! generations, never a file that merely has a name the template could render (`dpkg.log`
//! beside `/var/log/{host}.log`: `dpkg` is a valid host name).
//!
//! The record is one rendered path per line, appended when logwell creates the file while
//! `max_age_days` is set (a file that was there before is written to, never recorded). Rendered paths hold no newline (the
//! sanitiser turns control characters into `_`); a path with one is not recorded, so it is
//! never swept. The record is rewritten, without the paths whose files are all gone, after a
//! sweep. It is the worker's own file: it decides what the worker asks to delete, and the
//! privileged parent's rules on what may be deleted stay as they are.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::store::fileset::generation_splits;

/// The files one templated output created.
pub(crate) struct Created {
    /// Where the record is kept; `None`: kept in memory only.
    file: Option<PathBuf>,
    paths: HashSet<Box<[u8]>>,
    /// Whether a failure to save has been logged (once until a save works).
    warned: bool,
}

impl Created {
    /// Reads the record at `file` (none yet: empty).
    pub(crate) fn load(file: Option<PathBuf>) -> Created {
        let mut paths = HashSet::new();
        if let Some(f) = &file {
            match std::fs::read(f) {
                Ok(text) => paths.extend(
                    text.split(|&b| b == b'\n')
                        .filter(|l| l.starts_with(b"/"))
                        .map(Box::from),
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "cannot read the record of created files: files made before are not swept by age")
                }
            }
        }
        Created {
            file,
            paths,
            warned: false,
        }
    }

    /// Where the record is kept.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Records that logwell created the file at `path`.
    pub(crate) fn record(&mut self, path: &[u8]) {
        if path.contains(&b'\n') || self.paths.contains(path) {
            return;
        }
        self.paths.insert(path.into());
        let Some(file) = &self.file else { return };
        let result = (|| {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)?;
            let mut line = Vec::with_capacity(path.len() + 1);
            line.extend_from_slice(path);
            line.push(b'\n');
            f.write_all(&line)
        })();
        self.saved(result);
    }

    fn saved(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.warned = false,
            Err(e) if !self.warned => {
                self.warned = true;
                let file = self.file.as_deref().unwrap_or(Path::new(""));
                tracing::warn!(file = %file.display(), error = %e, "cannot save the record of created files: after a restart, max_age_days leaves them alone (is state_dir writable?)");
            }
            Err(_) => {}
        }
    }

    /// The recorded live path that `name` in `dir` is, or is a rotated generation of.
    pub(crate) fn owner(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        let known = |live: &str| {
            let p = dir.join(live);
            self.paths.contains(p.as_os_str().as_bytes()).then_some(p)
        };
        if let Some(p) = known(name) {
            return Some(p);
        }
        // Or a rotated generation of a recorded name.
        generation_splits(name).find_map(|k| known(&name[..k]))
    }

    /// Forgets every path not in `keep` (files all gone) and saves the record again.
    pub(crate) fn retain(&mut self, keep: &HashSet<PathBuf>) {
        let before = self.paths.len();
        self.paths
            .retain(|p| keep.contains(Path::new(OsStr::from_bytes(p))));
        if self.paths.len() == before {
            return;
        }
        let Some(file) = &self.file else { return };
        let mut text = Vec::new();
        for p in &self.paths {
            text.extend_from_slice(p);
            text.push(b'\n');
        }
        // Records' names never start with `.` (see `config::load`): no clash.
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file.file_name().unwrap_or_default());
        tmp_name.push(".tmp");
        let tmp = file.with_file_name(tmp_name);
        let result = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, file));
        self.saved(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_restart_and_knows_generations() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/created");
        let mut c = Created::load(Some(file.clone()));
        c.record(b"/D/web01.log");
        c.record(b"/D/web01.log");
        c.record(b"/D/bad\nname.log");
        let c = Created::load(Some(file.clone()));
        assert_eq!(std::fs::read(&file).unwrap(), b"/D/web01.log\n");
        let d = Path::new("/D");
        for name in [
            "web01.log",
            "web01.log.1",
            "web01.log.2.zst",
            "web01.log-20261121.gz",
        ] {
            assert_eq!(c.owner(d, name), Some(d.join("web01.log")), "{name}");
        }
        for name in ["dpkg.log", "web01.log.x", "web01.logs", ".web01.log"] {
            assert_eq!(c.owner(d, name), None, "{name}");
        }
        assert_eq!(c.owner(Path::new("/E"), "web01.log"), None);
    }

    #[test]
    fn retain_forgets_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("created");
        let mut c = Created::load(Some(file.clone()));
        c.record(b"/D/a.log");
        c.record(b"/D/b.log");
        c.retain(&[PathBuf::from("/D/b.log")].into_iter().collect());
        assert_eq!(std::fs::read(&file).unwrap(), b"/D/b.log\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        assert_eq!(
            Created::load(Some(file)).owner(Path::new("/D"), "a.log"),
            None
        );
    }
}
