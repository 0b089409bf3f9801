//! What the privileged parent agrees to do, and doing it: the only code that changes the file
//! system as root on the worker's behalf.
//!
//! A [`Policy`] is the set of output directories (the parent directory of every file
//! output's `path`), built by the parent from a configuration it read and validated itself —
//! never from a list the worker sends. A request is carried out only when every path it names
//! is absolute, has no `..` component, names a file (not a directory) and sits directly in
//! one of those directories once the directory's symlinks are resolved. The file itself is
//! reached with `*at` calls on the directory's descriptor and `O_NOFOLLOW`, so a symlink
//! planted in place of a log file is not followed, and only regular files are opened.
//! Created files never get set-id, sticky or execute bits.
//!
//! Everything else is refused with `EACCES` and logged by the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::proto::{Reply, Request, WireCreate};
use crate::config::{OutputKind, Settings};

/// The files the worker may have opened, created, renamed and removed: those of each file
/// output's set, in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Output directory → the base names of the outputs in it (`syslog`, `auth.log`).
    dirs: BTreeMap<PathBuf, BTreeSet<String>>,
}

/// Why a request was not carried out: refused by the policy, or failed.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done; `Some` for the requests that open a file.
    Done(Option<OwnedFd>),
    /// Outside the policy: answered with `EACCES`, logged as a warning.
    Refused(String),
    /// Allowed, but the system call failed.
    Failed(io::Error),
}

impl Outcome {
    /// The reply and the descriptor to send back.
    pub(crate) fn reply(self) -> (Reply, Option<OwnedFd>) {
        match self {
            Outcome::Done(fd) => (Reply::Ok, fd),
            Outcome::Refused(why) => (
                Reply::Err {
                    errno: libc::EACCES,
                    message: format!("refused by logwelld's privileged parent: {why}"),
                },
                None,
            ),
            Outcome::Failed(e) => (Reply::from_io(&e), None),
        }
    }
}

impl Policy {
    /// The file outputs of `settings` (relative paths are taken from `cwd`).
    pub(crate) fn from_settings(settings: &Settings, cwd: &Path) -> Policy {
        let files = settings
            .outputs
            .iter()
            .filter_map(|o| match &o.kind {
                OutputKind::File(f) if f.dynamic.is_none() => Some(cwd.join(&f.path)),
                _ => None,
            })
            .collect();
        Policy::new(files)
    }

    /// The policy of these live files (absolute paths).
    pub(crate) fn new(files: Vec<PathBuf>) -> Policy {
        let mut dirs: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        for f in files {
            let Ok(f) = normalize(&f) else { continue };
            if let (Some(dir), Some(base)) = (f.parent(), f.file_name().and_then(|n| n.to_str())) {
                dirs.entry(dir.to_path_buf())
                    .or_default()
                    .insert(base.to_string());
            }
        }
        Policy { dirs }
    }

    /// The output directories, for the log.
    pub(crate) fn dirs(&self) -> Vec<&Path> {
        self.dirs.keys().map(PathBuf::as_path).collect()
    }

    /// Checks and carries out one request. `Notify` is not handled here.
    pub(crate) fn execute(&self, request: &Request) -> Outcome {
        let r = match request {
            Request::OpenAppend { path, create } => self.open_append(&path.to_path(), create),
            Request::CreateNew { path, create } => self.create_new(&path.to_path(), create),
            Request::OpenRead { path } => self.open_read(&path.to_path()),
            Request::Rename { from, to } => self.rename(&from.to_path(), &to.to_path()),
            Request::Unlink { path } => self.unlink(&path.to_path()),
            Request::Mkdir { path } => self.mkdir(&path.to_path()),
            Request::SetModified { path, secs, nanos } => {
                self.set_modified(&path.to_path(), *secs, *nanos)
            }
            Request::Notify { .. } => Err(Outcome::Refused("not a file request".into())),
        };
        match r {
            Ok(fd) => Outcome::Done(fd),
            Err(o) => o,
        }
    }

    /// The allowed directory `path` sits directly in (opened), and its file name.
    fn place(&self, path: &Path) -> Result<(OwnedFd, PathBuf), Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Outcome::Refused(format!(
                "{} names no file",
                path.display()
            )));
        };
        let Some(bases) = self.dirs.get(dir) else {
            return Err(Outcome::Refused(format!(
                "{} is not in an output directory",
                path.display()
            )));
        };
        let name_str = name.to_str().unwrap_or_default();
        if !bases.iter().any(|b| of_set(b, name_str)) {
            return Err(Outcome::Refused(format!(
                "{} is not a file of an output's set (the live file, its generations or a compression's temporary file)",
                path.display()
            )));
        }
        // The directory as configured may lead elsewhere through symlinks (that is the
        // administrator's choice); it must still be the place a configured one resolves to.
        let real = std::fs::canonicalize(dir).map_err(Outcome::Failed)?;
        let dir_fd = open_dir(&real).map_err(Outcome::Failed)?;
        Ok((dir_fd, PathBuf::from(name)))
    }

    fn open_append(&self, path: &Path, create: &WireCreate) -> Result<Option<OwnedFd>, Outcome> {
        if let Some(dir) = normalize(path).ok().as_deref().and_then(Path::parent) {
            if self.dirs.contains_key(dir) && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(Outcome::Failed)?;
            }
        }
        let (dir, name) = self.place(path)?;
        match create_at(&dir, &name, create, true) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                open_regular(&dir, &name, OFlag::O_WRONLY | OFlag::O_APPEND).map(Some)
            }
            Err(e) => Err(Outcome::Failed(e)),
        }
    }

    fn create_new(&self, path: &Path, create: &WireCreate) -> Result<Option<OwnedFd>, Outcome> {
        let (dir, name) = self.place(path)?;
        create_at(&dir, &name, create, false)
            .map(Some)
            .map_err(Outcome::Failed)
    }

    fn open_read(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let (dir, name) = self.place(path)?;
        open_regular(&dir, &name, OFlag::O_RDONLY).map(Some)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let (from_dir, from_name) = self.place(from)?;
        let (to_dir, to_name) = self.place(to)?;
        regular_or_missing(&to_dir, &to_name)?;
        match kind_at(&from_dir, &from_name) {
            Ok(Some(SFlag::S_IFREG)) => {}
            Ok(_) => {
                return Err(Outcome::Refused(format!(
                    "{} is not a file",
                    from.display()
                )))
            }
            Err(e) => return Err(Outcome::Failed(e)),
        }
        renameat(&from_dir, &from_name, &to_dir, &to_name)
            .map(|()| None)
            .map_err(|e| Outcome::Failed(e.into()))
    }

    fn unlink(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let (dir, name) = self.place(path)?;
        // NoRemoveDir: a directory is never removed.
        unlinkat(&dir, &name, UnlinkatFlags::NoRemoveDir)
            .map(|()| None)
            .map_err(|e| Outcome::Failed(e.into()))
    }

    fn set_modified(&self, path: &Path, secs: i64, nanos: u32) -> Result<Option<OwnedFd>, Outcome> {
        let (dir, name) = self.place(path)?;
        regular_or_missing(&dir, &name)?;
        let mtime = nix::sys::time::TimeSpec::new(
            secs as libc::time_t,
            nanos.min(999_999_999) as libc::c_long,
        );
        let atime = nix::sys::time::TimeSpec::UTIME_OMIT;
        nix::sys::stat::utimensat(
            &dir,
            &name,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map(|()| None)
        .map_err(|e| Outcome::Failed(e.into()))
    }

    fn mkdir(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        if !self.dirs.contains_key(&path) {
            return Err(Outcome::Refused(format!(
                "{} is not an output directory",
                path.display()
            )));
        }
        std::fs::create_dir_all(&path)
            .map(|()| None)
            .map_err(Outcome::Failed)
    }
}

/// Whether `name` belongs to the file set of the live file `base`: `base`, its generations
/// (`base.1`, `base.2.zst`, `base-20261121`) and compression's temporaries
/// (`.base.2.zst.tmp`), as [`crate::output::fileset`] names them.
fn of_set(base: &str, name: &str) -> bool {
    let generation = |rest: &str| rest.starts_with('.') || rest.starts_with('-');
    if let Some(rest) = name.strip_prefix(base) {
        return rest.is_empty() || generation(rest);
    }
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(base))
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(generation)
}

/// `path`, absolute, with `.` removed; `..` and relative paths are refused.
fn normalize(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("{} has a `..` component", path.display()))
            }
        }
    }
    Ok(out)
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// The file type at `dir/name` without following a symlink; `None` when nothing is there.
fn kind_at(dir: &OwnedFd, name: &Path) -> io::Result<Option<SFlag>> {
    match fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn regular_or_missing(dir: &OwnedFd, name: &Path) -> Result<(), Outcome> {
    match kind_at(dir, name) {
        Ok(None | Some(SFlag::S_IFREG)) => Ok(()),
        Ok(Some(_)) => Err(Outcome::Refused(format!(
            "{} exists and is not a regular file",
            name.display()
        ))),
        Err(e) => Err(Outcome::Failed(e)),
    }
}

/// Opens an existing regular file: never through a symlink, never a FIFO or device.
fn open_regular(dir: &OwnedFd, name: &Path, flags: OFlag) -> Result<OwnedFd, Outcome> {
    let fd = openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => {
            Outcome::Refused(format!("{} is a symbolic link", name.display()))
        }
        e => Outcome::Failed(e.into()),
    })?;
    let f = File::from(fd);
    let meta = f.metadata().map_err(Outcome::Failed)?;
    if !meta.file_type().is_file() {
        return Err(Outcome::Refused(format!(
            "{} is not a regular file",
            name.display()
        )));
    }
    clear_nonblock(&f).map_err(Outcome::Failed)?;
    Ok(OwnedFd::from(f))
}

fn clear_nonblock(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Creates `dir/name` (which must not exist) with exactly `create`'s mode, minus the set-id,
/// sticky and execute bits, and its owner.
fn create_at(dir: &OwnedFd, name: &Path, create: &WireCreate, append: bool) -> io::Result<OwnedFd> {
    let mode = create.mode & 0o666;
    let mut flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if append {
        flags |= OFlag::O_APPEND;
    }
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(mode))?;
    let f = File::from(fd);
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if create.owner.is_some() || create.group.is_some() {
        std::os::unix::fs::fchown(&f, create.owner, create.group)?;
    }
    Ok(OwnedFd::from(f))
}

/// A name used in the log for a request's kind.
pub(crate) fn describe(request: &Request) -> String {
    let p = |w: &super::proto::WirePath| w.to_path().display().to_string();
    match request {
        Request::OpenAppend { path, .. } => format!("open for append {}", p(path)),
        Request::OpenRead { path } => format!("open for reading {}", p(path)),
        Request::CreateNew { path, .. } => format!("create {}", p(path)),
        Request::Rename { from, to } => format!("rename {} to {}", p(from), p(to)),
        Request::Unlink { path } => format!("remove {}", p(path)),
        Request::Mkdir { path } => format!("create directory {}", p(path)),
        Request::SetModified { path, .. } => format!("set the time of {}", p(path)),
        Request::Notify { .. } => "notify".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::privsep::proto::WirePath;
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;

    fn wp(p: &Path) -> WirePath {
        WirePath::from_path(p)
    }

    const CREATE: WireCreate = WireCreate {
        mode: 0o640,
        owner: None,
        group: None,
    };

    fn setup() -> (tempfile::TempDir, Policy) {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        std::fs::create_dir(&log).unwrap();
        (t, Policy::new(vec![log.join("syslog")]))
    }

    fn refused(o: Outcome) -> String {
        match o {
            Outcome::Refused(why) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn files_in_an_output_directory_are_opened_renamed_and_removed() {
        let (t, policy) = setup();
        let live = t.path().join("log/syslog");
        let Outcome::Done(Some(fd)) = policy.execute(&Request::OpenAppend {
            path: wp(&live),
            create: WireCreate {
                mode: 0o6755,
                ..CREATE
            },
        }) else {
            panic!("open_append refused")
        };
        File::from(fd).write_all(b"line\n").unwrap();
        let meta = std::fs::metadata(&live).unwrap();
        assert_eq!(
            meta.mode() & 0o7777,
            0o644,
            "set-id and execute bits dropped"
        );
        let rotated = t.path().join("log/syslog.1");
        assert!(matches!(
            policy.execute(&Request::Rename {
                from: wp(&live),
                to: wp(&rotated)
            }),
            Outcome::Done(None)
        ));
        let Outcome::Done(Some(fd)) = policy.execute(&Request::OpenRead { path: wp(&rotated) })
        else {
            panic!("open_read refused")
        };
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "line\n");
        let tmp = t.path().join("log/.syslog.1.zst.tmp");
        assert!(matches!(
            policy.execute(&Request::CreateNew {
                path: wp(&tmp),
                create: CREATE
            }),
            Outcome::Done(Some(_))
        ));
        assert!(matches!(
            policy.execute(&Request::CreateNew { path: wp(&tmp), create: CREATE }),
            Outcome::Failed(e) if e.kind() == io::ErrorKind::AlreadyExists
        ));
        assert!(matches!(
            policy.execute(&Request::SetModified {
                path: wp(&tmp),
                secs: 1000,
                nanos: 500
            }),
            Outcome::Done(None)
        ));
        assert_eq!(std::fs::metadata(&tmp).unwrap().mtime(), 1000);
        assert!(matches!(
            policy.execute(&Request::Unlink { path: wp(&tmp) }),
            Outcome::Done(None)
        ));
        assert!(!tmp.exists());
    }

    #[test]
    fn paths_outside_the_output_directories_are_refused() {
        let (t, policy) = setup();
        let outside = [
            PathBuf::from("/etc/shadow"),
            t.path().join("elsewhere"),
            t.path().join("log/sub/file"),
            t.path().join("log/../escape"),
            t.path().join("log"),
            t.path().join("log/dpkg.log"),
            t.path().join("log/syslogx"),
            t.path().join("log/.syslog"),
            PathBuf::from("log/syslog"),
        ];
        for p in &outside {
            refused(policy.execute(&Request::OpenAppend {
                path: wp(p),
                create: CREATE,
            }));
            refused(policy.execute(&Request::OpenRead { path: wp(p) }));
            refused(policy.execute(&Request::Unlink { path: wp(p) }));
            if p.parent() != Some(t.path()) || p.file_name() != Some("log".as_ref()) {
                refused(policy.execute(&Request::Mkdir { path: wp(p) }));
            }
        }
        let inside = t.path().join("log/syslog");
        std::fs::write(&inside, "x").unwrap();
        refused(policy.execute(&Request::Rename {
            from: wp(&inside),
            to: wp(&t.path().join("x")),
        }));
        refused(policy.execute(&Request::Rename {
            from: wp(&PathBuf::from("/etc/passwd")),
            to: wp(&inside),
        }));
        assert!(std::fs::metadata(&inside).is_ok());
        assert!(!t.path().join("escape").exists());
    }

    #[test]
    fn symlinks_are_not_followed() {
        let (t, policy) = setup();
        let target = t.path().join("secret");
        std::fs::write(&target, "secret").unwrap();
        let link = t.path().join("log/syslog");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        refused(policy.execute(&Request::OpenAppend {
            path: wp(&link),
            create: CREATE,
        }));
        refused(policy.execute(&Request::OpenRead { path: wp(&link) }));
        refused(policy.execute(&Request::Rename {
            from: wp(&link),
            to: wp(&t.path().join("log/s.1")),
        }));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
    }

    #[test]
    fn only_the_names_of_an_output_set_are_allowed() {
        for name in [
            "syslog",
            "syslog.1",
            "syslog.2.zst",
            "syslog-20261121",
            "syslog-20261121-2.gz",
            ".syslog.2.zst.tmp",
        ] {
            assert!(of_set("syslog", name), "{name}");
        }
        for name in [
            "syslogd",
            "dpkg.log",
            ".syslog",
            ".syslog.2.zst",
            "wtmp",
            "xsyslog",
        ] {
            assert!(!of_set("syslog", name), "{name}");
        }
    }

    #[test]
    fn a_missing_output_directory_is_created_on_open() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        let policy = Policy::new(vec![dir.join("f")]);
        assert!(matches!(
            policy.execute(&Request::OpenAppend {
                path: wp(&dir.join("f")),
                create: CREATE
            }),
            Outcome::Done(Some(_))
        ));
        assert!(matches!(
            policy.execute(&Request::Mkdir { path: wp(&dir) }),
            Outcome::Done(None)
        ));
    }

    #[test]
    fn the_policy_is_the_parent_directories_of_the_file_outputs() {
        let s = crate::config::load_texts(vec![(
            PathBuf::from("t.toml"),
            "[daemon]\nprivsep = false\n[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n[output.a]\ntype = \"file\"\npath = \"/var/log/syslog\"\n[output.b]\ntype = \"file\"\npath = \"/var/log/auth.log\"\n[output.c]\ntype = \"file\"\npath = \"rel/c.log\"\n".into(),
        )])
        .unwrap();
        let p = Policy::from_settings(&s, Path::new("/srv"));
        assert_eq!(
            p.dirs(),
            [PathBuf::from("/srv/rel"), PathBuf::from("/var/log")]
        );
    }
}
