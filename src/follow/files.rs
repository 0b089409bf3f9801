//! What can be followed: every file output of the running configuration (woken by its
//! writer), and the files other programs write that `[[follow.files]]` names (a file, a
//! directory, or a glob pattern), woken by an inotify watcher with a poll as a fallback.
//!
//! Other programs' files are matched when a subscriber asks (so files created later are
//! found); rotated generations beside them (`app.log.1`, `app.log.2.gz`) are not listed as
//! files of their own: the history reader reads them as part of their live file's set.
//!
//! Whoever may write in a followed directory must not make the daemon read other files
//! through it: a match is followable only if it is a regular file (not a symbolic link) and
//! its directory, resolved, is the one the entry names (no linked directory on the way out),
//! and the history reader opens every file with `O_NOFOLLOW`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::{ExternalFile, Format, OutputKind, Settings};
use crate::stats::Stats;

/// One followable file.
#[derive(Clone, Debug)]
pub struct Followable {
    /// Its name in requests: the output's name, or `ENTRY/FILE` for other programs' files.
    pub name: String,
    /// The live file.
    pub path: PathBuf,
    /// How its lines are written; `None` for raw text.
    pub format: Option<Format>,
    /// Whether logwell writes it.
    pub own: bool,
}

/// How `/v1/files` lists a file.
#[derive(Debug, Serialize)]
pub struct FileInfo {
    /// Name to ask for.
    pub name: String,
    /// Path of the live file.
    pub path: PathBuf,
    /// Line format (`raw` for other programs' text).
    pub format: &'static str,
    /// Whether it is the default file.
    pub default: bool,
    /// Whether logwell writes it.
    pub own: bool,
    /// Size of the live file, bytes.
    pub size: Option<u64>,
    /// Bytes a file input has yet to read from it, when one follows it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

/// A file a file input has open, as `/v1/files` lists it under `watched`: its size, the
/// input's offset, and the lag between them.
#[derive(Debug, Serialize)]
pub struct WatchedInfo {
    /// The file input that reads it.
    pub input: String,
    /// The file, its size, offset and lag.
    #[serde(flatten)]
    pub file: crate::stats::WatchedFile,
}

/// The followable files of the running configuration; replaced on reload.
pub struct Registry {
    inner: RwLock<Inner>,
    stats: Stats,
    /// Wake-up channels of other programs' files, by directory.
    dir_wakes: Mutex<HashMap<PathBuf, watch::Sender<u64>>>,
    watcher: Mutex<Option<inotify::Watches>>,
}

struct Inner {
    own: Vec<Followable>,
    external: Vec<ExternalFile>,
    default: Option<String>,
}

fn format_name(f: Option<Format>) -> &'static str {
    match f {
        None => "raw",
        Some(Format::Traditional) => "traditional",
        Some(Format::Rfc3339) => "rfc3339",
        Some(Format::Rfc5424) => "rfc5424",
        Some(Format::Json) => "json",
        Some(Format::Rfc3164) => "rfc3164",
    }
}

impl Registry {
    /// The registry for `settings`.
    pub fn new(settings: &Settings, stats: Stats) -> Arc<Registry> {
        let r = Arc::new(Registry {
            inner: RwLock::new(Inner {
                own: Vec::new(),
                external: Vec::new(),
                default: None,
            }),
            stats,
            dir_wakes: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
        });
        r.update(settings);
        r
    }

    /// Takes the outputs and `[[follow.files]]` of a (reloaded) configuration.
    pub fn update(&self, settings: &Settings) {
        let own = settings
            .outputs
            .iter()
            .filter_map(|o| match &o.kind {
                // A templated path is many files: follow them as other programs' files
                // (`[[follow.files]]` with a pattern).
                OutputKind::File(f) if f.dynamic.is_none() => Some(Followable {
                    name: o.name.clone(),
                    path: f.path.clone(),
                    // A line template's lines are read back as raw text: no fields.
                    format: o.template.is_none().then_some(f.format),
                    own: true,
                }),
                _ => None,
            })
            .collect();
        let follow = settings.follow.as_ref();
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.own = own;
        inner.external = follow.map(|f| f.files.clone()).unwrap_or_default();
        inner.default = follow.and_then(|f| f.default_file.clone());
    }

    /// Every followable file now.
    pub fn list(&self) -> Vec<Followable> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = inner.own.clone();
        for e in &inner.external {
            out.extend(expand(e));
        }
        out
    }

    /// `/v1/files`: the followable files (with the lag of those a file input reads too).
    pub fn infos(&self) -> Vec<FileInfo> {
        let default = self.default_name();
        let watched = self.watched();
        // A followable path is canonical (`expand`); a file input's is as its pattern matched.
        let lag_of = |path: &Path| {
            watched
                .iter()
                .filter(|w| !w.file.rotated)
                .find(|w| {
                    let p = Path::new(&w.file.path);
                    p == path || std::fs::canonicalize(p).is_ok_and(|c| c == path)
                })
                .map(|w| w.file.lag_bytes)
        };
        self.list()
            .into_iter()
            .map(|f| FileInfo {
                default: Some(&f.name) == default.as_ref(),
                size: std::fs::metadata(&f.path).ok().map(|m| m.len()),
                lag_bytes: lag_of(&f.path),
                format: format_name(f.format),
                own: f.own,
                path: f.path,
                name: f.name,
            })
            .collect()
    }

    /// `/v1/files`' `watched`: every file the file inputs have open, by input, with its lag
    /// (measured by the input once a second).
    pub fn watched(&self) -> Vec<WatchedInfo> {
        self.stats
            .snapshot()
            .inputs
            .into_iter()
            .flat_map(|(input, i)| {
                i.watched.into_iter().map(move |file| WatchedInfo {
                    input: input.clone(),
                    file,
                })
            })
            .collect()
    }

    /// The name of the file a request without `file=` gets.
    pub fn default_name(&self) -> Option<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .default
            .clone()
            .or_else(|| inner.own.first().map(|f| f.name.clone()))
    }

    /// The file called `name` (the default file for `None`).
    pub fn find(&self, name: Option<&str>) -> Option<Followable> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.default_name()?,
        };
        let list = self.list();
        // A `[[follow.files]]` entry that is one file is also found by its own name.
        list.iter()
            .find(|f| f.name == name)
            .or_else(|| {
                let mut matches = list
                    .iter()
                    .filter(|f| !f.own && f.name.split('/').next() == Some(&name));
                match (matches.next(), matches.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .cloned()
    }

    /// Wake-ups for `file`: its writer's, or the watcher's for its directory.
    pub fn wake(&self, file: &Followable) -> watch::Receiver<u64> {
        if file.own {
            return self.stats.output(&file.name).wake.subscribe();
        }
        let dir = file.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut wakes = self.dir_wakes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = wakes.get(&dir) {
            return tx.subscribe();
        }
        let tx = watch::Sender::new(0);
        let rx = tx.subscribe();
        if let Some(w) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let mask = inotify::WatchMask::MODIFY
                | inotify::WatchMask::CREATE
                | inotify::WatchMask::MOVED_TO
                | inotify::WatchMask::CLOSE_WRITE;
            if let Err(e) = w.add(&dir, mask) {
                tracing::info!(dir = %dir.display(), error = %e, "cannot watch with inotify; polling every second");
            }
        }
        wakes.insert(dir, tx);
        rx
    }

    /// Starts the inotify watcher thread for other programs' files. Without inotify (or
    /// when watches run out), followers poll once a second.
    pub fn start_watcher(self: &Arc<Self>) {
        let mut inotify = match inotify::Inotify::init() {
            Ok(i) => i,
            Err(e) => {
                tracing::info!(error = %e, "no inotify; other programs' files are polled every second");
                return;
            }
        };
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(inotify.watches());
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("follow-inotify".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    if inotify.read_events_blocking(&mut buf).is_err() {
                        return;
                    }
                    let Some(reg) = weak.upgrade() else { return };
                    // Wake every watched directory's followers: cheap, and exact enough
                    // (a wake-up only makes a follower read).
                    let wakes = reg.dir_wakes.lock().unwrap_or_else(|e| e.into_inner());
                    for tx in wakes.values() {
                        tx.send_modify(|n| *n += 1);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the inotify thread; polling");
        }
    }
}

/// The files an entry names now: a file, every file in a directory, or a pattern's matches,
/// leaving out rotated generations and compressed files.
fn expand(e: &ExternalFile) -> Vec<Followable> {
    let path = Path::new(&e.path);
    let single = |p: &Path| Followable {
        name: e.name.clone(),
        path: p.to_path_buf(),
        format: e.format,
        own: false,
    };
    let has_glob = e.path.contains(['*', '?', '[']);
    if !has_glob && !path.is_dir() {
        return vec![single(path)];
    }
    let pattern = if has_glob {
        e.path.clone()
    } else {
        format!("{}/*", e.path.trim_end_matches('/'))
    };
    let Ok(paths) = glob::glob(&pattern) else {
        return Vec::new();
    };
    let base = literal_base(&pattern);
    let Ok(real_base) = std::fs::canonicalize(&base) else {
        return Vec::new();
    };
    paths
        .filter_map(Result::ok)
        .filter(|p| !is_rotated(p))
        .filter_map(|p| confined(&p, &base, &real_base))
        .map(|p| Followable {
            name: format!(
                "{}/{}",
                e.name,
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
            path: p,
            format: e.format,
            own: false,
        })
        .collect()
}

/// The directory of a pattern above its first component with a wildcard (`/var/log` for
/// `/var/log/app-*/*.log`).
fn literal_base(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    for c in Path::new(pattern).components() {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        base.push(c);
    }
    base
}

/// `path` (a match below `base`) as the path to follow, if it may be followed: a regular file
/// itself (a symbolic link is refused, never followed) whose directory resolves to where its
/// path says, below `real_base` (the canonical `base`): no linked directory leads elsewhere.
fn confined(path: &Path, base: &Path, real_base: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        if meta.file_type().is_symlink() {
            tracing::warn!(path = %path.display(), "a symbolic link in a followed directory is not followed");
        }
        return None;
    }
    let rel = path.strip_prefix(base).ok()?;
    let expected = real_base.join(rel);
    let real_dir = std::fs::canonicalize(path.parent()?).ok()?;
    if Some(real_dir.as_path()) != expected.parent() {
        tracing::warn!(path = %path.display(), "a followed file whose directory is reached through a symbolic link is not followed");
        return None;
    }
    Some(expected)
}

/// `app.log.1`, `app.log.2.gz`, `app.log-20261121`, `x.zst`: rotated generations.
fn is_rotated(p: &Path) -> bool {
    if p.extension()
        .is_some_and(|x| ["gz", "zst", "xz", "bz2"].iter().any(|c| x == *c))
    {
        return true;
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let numbered = |sep: char| {
        name.rsplit_once(sep).is_some_and(|(head, t)| {
            !head.is_empty() && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
        })
    };
    numbered('.') || numbered('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_generations_are_not_files_of_their_own() {
        for (name, rotated) in [
            ("app.log", false),
            ("app.log.1", true),
            ("app.log.2.gz", true),
            ("syslog.3.zst", true),
            ("app.log-20261121", true),
            ("my-app.log", false),
            ("v1.2.log", false),
        ] {
            assert_eq!(is_rotated(Path::new(name)), rotated, "{name}");
        }
    }

    #[test]
    fn a_directory_or_pattern_expands_to_its_live_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.log", "a.log.1", "b.log", "b.log.2.gz", "notes.txt"] {
            std::fs::write(dir.path().join(f), "x\n").unwrap();
        }
        let entry = |path: String| ExternalFile {
            name: "app".into(),
            path,
            format: None,
        };
        let names = |e: &ExternalFile| {
            let mut v: Vec<String> = expand(e).into_iter().map(|f| f.name).collect();
            v.sort();
            v
        };
        let d = dir.path().display();
        assert_eq!(
            names(&entry(format!("{d}/*.log"))),
            ["app/a.log", "app/b.log"]
        );
        assert_eq!(
            names(&entry(format!("{d}"))),
            ["app/a.log", "app/b.log", "app/notes.txt"]
        );
        assert_eq!(names(&entry(format!("{d}/a.log"))), ["app"]);
    }

    /// Issue 24 item 2: `x.log -> /etc/shadow` planted in a followed directory was served as
    /// `NAME/x.log`; so was a file behind a linked directory matched by a pattern.
    #[test]
    fn links_in_a_followed_directory_are_not_followable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("secret")).unwrap();
        std::fs::write(d.join("secret/shadow"), "root:x\n").unwrap();
        std::fs::write(d.join("secret/app.log"), "private\n").unwrap();
        std::fs::create_dir_all(d.join("logs/a")).unwrap();
        std::fs::write(d.join("logs/a/app.log"), "ok\n").unwrap();
        std::fs::write(d.join("logs/real.log"), "ok\n").unwrap();
        std::os::unix::fs::symlink(d.join("secret/shadow"), d.join("logs/x.log")).unwrap();
        std::os::unix::fs::symlink(d.join("secret"), d.join("logs/b")).unwrap();
        let list = |path: String| {
            let mut v: Vec<(String, PathBuf)> = expand(&ExternalFile {
                name: "app".into(),
                path,
                format: None,
            })
            .into_iter()
            .map(|f| (f.name, f.path))
            .collect();
            v.sort();
            v
        };
        let real = std::fs::canonicalize(d).unwrap();
        let ld = d.display();
        assert_eq!(
            list(format!("{ld}/logs")),
            [("app/real.log".to_string(), real.join("logs/real.log"))]
        );
        assert_eq!(
            list(format!("{ld}/logs/*.log")),
            [("app/real.log".to_string(), real.join("logs/real.log"))]
        );
        // `logs/b -> secret` matches `logs/*/app.log`, and is left out.
        assert_eq!(
            list(format!("{ld}/logs/*/app.log")),
            [("app/app.log".to_string(), real.join("logs/a/app.log"))]
        );
    }
}
