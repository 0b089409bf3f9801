//! What the privileged parent agrees to do, and doing it: the only code that changes the file
//! system as root on the worker's behalf.
//!
//! A [`Policy`] is built by the parent from a configuration it read and validated itself —
//! never from a list the worker sends. Every path a request names must be absolute and have
//! no `..` component. It has two kinds of rules:
//!
//! - **Plain file outputs**: the output directories (the parent directory of each plain
//!   output's `path`, and of each templated output's `fallback` file). A request may name a
//!   file (not a directory) of an output's set (the live file, its generations, a
//!   compression's temporary) sitting directly in one of those directories once the
//!   directory's symlinks are resolved.
//! - **Templated outputs** ([`Tree`]): paths strictly inside the output's base directory,
//!   shaped as its template makes them: each component must be a name the template could
//!   render at that depth ([`PathTemplate::could_be`]), files (and their generations and
//!   compression temporaries) only at the last level, directories only above it. The walk
//!   from the base directory opens every component with `openat(O_NOFOLLOW | O_DIRECTORY)`:
//!   no symlink below the base is ever followed, so one planted inside the tree cannot send
//!   a write outside. Allowed there: open for append or reading, create a new file, set a
//!   file's time, unlink, rename within one directory, create directories with the
//!   requested mode (set-id and sticky bits dropped) and the output's own owner and group,
//!   and remove an empty directory (never the base). The base directory itself, like a
//!   plain output's directory, is the administrator's choice: its own symlinks are
//!   followed.
//!
//! - **TLS files**: the certificates, keys and CA bundles the configuration names
//!   ([`crate::config::tls::files_of`]), exactly those paths, may be opened for reading, so
//!   that a key only root may read serves the worker at start and at every reload. Their
//!   symlinks are followed, as the administrator wrote them (`/etc/letsencrypt/live/…`).
//!
//! Files are always reached with `*at` calls on a directory's descriptor and `O_NOFOLLOW`,
//! so a symlink planted in place of a log file is not followed, and only regular files with
//! a single link are opened (a hard link planted in an output directory could name any file
//! of the same file system). Created files get the owner and group the configuration gives
//! their output, and at most its mode (the worker may ask for less, as a compressed
//! generation keeps its original's narrower mode, never for more); directories of a tree at
//! most its `dir_mode`. Neither ever gets set-id, sticky or execute bits (directories:
//! search bits as configured).
//!
//! Everything else is refused with `EACCES` and logged by the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::config::{OutputKind, Settings};
use crate::host::proto::{Reply, Request, WireCreate};
use crate::render::template::PathTemplate;

/// The files the worker may have opened, created, renamed and removed: those of each plain
/// file output's set, in its directory, and those of each templated output's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Output directory → the base names of the outputs in it (`syslog`, `auth.log`), each
    /// with the mode, owner and group its output's configuration gives the files it creates.
    dirs: BTreeMap<PathBuf, BTreeMap<String, Ownership>>,
    /// The templated outputs.
    trees: Vec<Tree>,
    /// The TLS files of the configuration (normalised): readable, nothing else.
    tls_files: BTreeSet<PathBuf>,
    /// The follow service's Unix socket (normalised), which the parent binds.
    follow_socket: Option<PathBuf>,
    /// The `unix_datagram` inputs' sockets (normalised), which the parent binds for a
    /// reload: each with its mode and receive buffer.
    unix_datagrams: BTreeMap<PathBuf, (u32, Option<usize>)>,
    /// The file inputs' patterns (`paths`, less `exclude`): the files, and their rotated
    /// generations, the parent opens for reading when the worker may not.
    input_files: Vec<(glob::Pattern, Vec<glob::Pattern>)>,
}

/// The mode, owner and group the configuration gives an output's files. The parent takes
/// them from its own copy of the configuration: a worker's request narrows the mode at
/// most, and never chooses the owner or the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// The widest permission bits a created file gets (`mode`).
    pub(crate) mode: u32,
    /// The owner set on a created file (`owner`); `None`: root's.
    pub(crate) owner: Option<u32>,
    /// The group set on a created file (`group`); `None`: root's.
    pub(crate) group: Option<u32>,
}

impl Ownership {
    /// What a file created for `request` gets: the configured owner and group, the
    /// requested mode within the configured one, less set-id, sticky and execute bits.
    fn apply(&self, request: &WireCreate) -> WireCreate {
        WireCreate {
            mode: request.mode & self.mode & 0o666,
            owner: self.owner,
            group: self.group,
        }
    }
}

/// What a templated output may create and change: the tree below its base directory, as
/// its template shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    /// The base directory (normalised).
    base: PathBuf,
    template: PathTemplate,
    /// The mode, owner and group the configuration gives the output's files; its
    /// directories get the same owner and group (a directory the worker asks for with
    /// others is refused).
    files: Ownership,
    /// The widest permission bits of a directory the parent creates (`dir_mode`).
    dir_mode: u32,
}

impl Tree {
    /// The tree of `template`, whose files get `files` and directories at most `dir_mode`
    /// and the files' owner and group.
    pub(crate) fn new(template: PathTemplate, files: Ownership, dir_mode: u32) -> Tree {
        let base = normalize(template.base()).unwrap_or_else(|_| template.base().to_path_buf());
        Tree {
            base,
            template,
            files,
            dir_mode,
        }
    }

    /// The components of `path` (normalised) below the base, empty for the base itself;
    /// `None` when `path` is neither the base nor inside it.
    fn relative<'p>(&self, path: &'p Path) -> Option<Vec<&'p std::ffi::OsStr>> {
        let rest = path.strip_prefix(&self.base).ok()?;
        Some(rest.iter().collect())
    }

    /// Checks that `rel` (below the base) is shaped as the template makes a `level` path:
    /// a file at the last level (its generations and compression temporaries included), a
    /// directory above it (the base itself, empty `rel`, for `Dir`).
    fn shaped(&self, rel: &[&std::ffi::OsStr], level: Level) -> Result<(), String> {
        let depth = self.template.depth();
        let fits = match level {
            Level::File => rel.len() == depth,
            Level::Dir => rel.len() < depth,
        };
        if !fits {
            let what = match level {
                Level::File => "a file",
                Level::Dir => "a directory",
            };
            return Err(format!(
                "is not where the template of {} puts {what}",
                self.base.display()
            ));
        }
        for (i, c) in rel.iter().enumerate() {
            let Some(name) = c.to_str() else {
                return Err("has a component the template never renders (not UTF-8)".into());
            };
            let last = i + 1 == depth;
            let temporary = last
                && name
                    .strip_prefix('.')
                    .and_then(|n| n.strip_suffix(".tmp"))
                    .is_some_and(|inner| self.template.could_be(i, inner));
            if !temporary && !self.template.could_be(i, name) {
                return Err(format!(
                    "has a component the template of {} never renders: `{name}`",
                    self.base.display()
                ));
            }
        }
        Ok(())
    }
}

/// What a path is in a tree: a file at the template's last level, or a directory above it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    File,
    Dir,
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
        let mut files = Vec::new();
        let mut trees = Vec::new();
        for o in &settings.outputs {
            let OutputKind::File(f) = &o.kind else {
                continue;
            };
            let ownership = Ownership {
                mode: f.mode,
                owner: f.owner,
                group: f.group,
            };
            match &f.dynamic {
                None => files.push((cwd.join(&f.path), ownership)),
                Some(d) => {
                    // The fallback file is a plain file of its directory.
                    files.push((cwd.join(&d.fallback), ownership));
                    trees.push(Tree::new(d.template.clone(), ownership, d.dir_mode));
                }
            }
        }
        let tls_files = crate::config::tls::files_of(settings)
            .into_iter()
            .map(|p| cwd.join(p))
            .collect();
        let mut policy = Policy::new(files)
            .with_trees(trees)
            .with_tls_files(tls_files);
        policy.follow_socket = settings
            .follow
            .as_ref()
            .and_then(|f| f.socket.as_ref())
            .and_then(|s| normalize(&cwd.join(s)).ok());
        for i in &settings.inputs {
            if let crate::config::InputKind::File(f) = &i.kind {
                let exclude: Vec<glob::Pattern> = f
                    .exclude
                    .iter()
                    .filter_map(|p| glob::Pattern::new(p).ok())
                    .collect();
                for p in &f.paths {
                    if let Ok(p) = glob::Pattern::new(p) {
                        policy.input_files.push((p, exclude.clone()));
                    }
                }
            }
            if let crate::config::InputKind::UnixDatagram(u) = &i.kind {
                if let Ok(path) = normalize(&cwd.join(&u.unix.path)) {
                    policy
                        .unix_datagrams
                        .insert(path, (u.unix.mode, u.receive_buffer_bytes));
                }
            }
        }
        policy
    }

    /// The follow socket the parent may bind (and removes when it exits).
    pub(crate) fn follow_socket(&self) -> Option<&Path> {
        self.follow_socket.as_deref()
    }

    /// This policy, also allowing these TLS files to be read.
    pub(crate) fn with_tls_files(mut self, files: Vec<PathBuf>) -> Policy {
        self.tls_files
            .extend(files.iter().filter_map(|f| normalize(f).ok()));
        self
    }

    /// This policy, also allowing the trees of these templated outputs.
    pub(crate) fn with_trees(mut self, trees: Vec<Tree>) -> Policy {
        self.trees.extend(trees);
        self
    }

    /// The policy of these live files (absolute paths), each created with its ownership.
    pub(crate) fn new(files: Vec<(PathBuf, Ownership)>) -> Policy {
        let mut dirs: BTreeMap<PathBuf, BTreeMap<String, Ownership>> = BTreeMap::new();
        for (f, ownership) in files {
            let Ok(f) = normalize(&f) else { continue };
            if let (Some(dir), Some(base)) = (f.parent(), f.file_name().and_then(|n| n.to_str())) {
                dirs.entry(dir.to_path_buf())
                    .or_default()
                    .entry(base.to_string())
                    .or_insert(ownership);
            }
        }
        Policy {
            dirs,
            trees: Vec::new(),
            tls_files: BTreeSet::new(),
            follow_socket: None,
            unix_datagrams: BTreeMap::new(),
            input_files: Vec::new(),
        }
    }

    /// The output directories, for the log.
    pub(crate) fn dirs(&self) -> Vec<&Path> {
        self.dirs.keys().map(PathBuf::as_path).collect()
    }

    /// The base directories of the templated outputs, for the log.
    pub(crate) fn trees(&self) -> Vec<&Path> {
        self.trees.iter().map(|t| t.base.as_path()).collect()
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
            Request::MakeDirs { path, create } => self.make_dirs(&path.to_path(), create),
            Request::RemoveDir { path } => self.remove_dir(&path.to_path()),
            Request::SetModified { path, secs, nanos } => {
                self.set_modified(&path.to_path(), *secs, *nanos)
            }
            Request::BindFollowSocket { path } => self.bind_follow_socket(&path.to_path()),
            Request::BindUnixDatagram { path } => self.bind_unix_datagram(&path.to_path()),
            Request::Notify { .. } => Err(Outcome::Refused("not a file request".into())),
        };
        match r {
            Ok(fd) => Outcome::Done(fd),
            Err(o) => o,
        }
    }

    /// Whether `path` (normalised) is a file a file input's patterns match, or a rotated
    /// generation of one (`x.log.1`, `x.log.2.gz`), and no `exclude` pattern does.
    fn is_input_file(&self, path: &Path) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let (dir, name) = crate::store::fileset::split(path);
        let lives = std::iter::once(path.to_path_buf())
            .chain(crate::store::fileset::generation_splits(&name).map(|k| dir.join(&name[..k])));
        let lives: Vec<PathBuf> = lives.collect();
        self.input_files.iter().any(|(pattern, exclude)| {
            lives.iter().any(|live| {
                pattern.matches_path_with(live, opts)
                    && !exclude.iter().any(|e| e.matches_path_with(live, opts))
            })
        })
    }

    /// Whether `path` (normalised) is a file of a plain output's set, in its directory.
    fn is_plain(&self, path: &Path) -> bool {
        match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(dir), Some(name)) => self
                .dirs
                .get(dir)
                .is_some_and(|bases| bases.keys().any(|b| of_set(b, name))),
            _ => false,
        }
    }

    /// The templated output whose tree holds `path` (normalised) as a `level` path, and the
    /// components below its base. `Ok(None)` when no base directory holds `path`; a
    /// refusal when one does but the path is not shaped as its template makes them.
    fn in_tree<'p>(
        &self,
        path: &'p Path,
        level: Level,
    ) -> Result<Option<(&Tree, Vec<&'p std::ffi::OsStr>)>, Outcome> {
        let mut refusal = None;
        for tree in &self.trees {
            let Some(rel) = tree.relative(path) else {
                continue;
            };
            match tree.shaped(&rel, level) {
                Ok(()) => return Ok(Some((tree, rel))),
                Err(why) => refusal = Some(format!("{} {why}", path.display())),
            }
        }
        match refusal {
            Some(why) => Err(Outcome::Refused(why)),
            None => Ok(None),
        }
    }

    /// The allowed directory `path` sits directly in (opened), and its file name.
    fn place(&self, path: &Path) -> Result<(OwnedFd, PathBuf), Outcome> {
        self.locate(path).map(|p| (p.dir, p.name))
    }

    /// Where a file request's `path` is: in a plain output's directory, or in a tree
    /// (reached without following any symlink below the base).
    fn locate(&self, path: &Path) -> Result<Placed, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        if !self.is_plain(&path) {
            if let Some((tree, rel)) = self.in_tree(&path, Level::File)? {
                let (last, dirs) = rel.split_last().expect("a file is below the base");
                let dir = walk(tree, dirs)?;
                return Ok(Placed {
                    dir,
                    name: PathBuf::from(last),
                    tree_dir: Some(path.parent().expect("below the base").to_path_buf()),
                    ownership: tree.files,
                });
            }
        }
        self.place_plain(&path)
    }

    /// The output directory `path` (normalised) sits directly in (opened), its file name,
    /// and the ownership of the output whose set holds it.
    fn place_plain(&self, path: &Path) -> Result<Placed, Outcome> {
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
        // The most specific output whose set holds the name (`a.log` rather than `a`).
        let owner = bases
            .iter()
            .filter(|(b, _)| of_set(b, name_str))
            .max_by_key(|(b, _)| b.len())
            .map(|(_, o)| *o);
        let Some(ownership) = owner else {
            return Err(Outcome::Refused(format!(
                "{} is not a file of an output's set (the live file, its generations or a compression's temporary file)",
                path.display()
            )));
        };
        // The directory as configured may lead elsewhere through symlinks (that is the
        // administrator's choice); it must still be the place a configured one resolves to.
        let real = std::fs::canonicalize(dir).map_err(Outcome::Failed)?;
        let dir_fd = open_dir(&real).map_err(Outcome::Failed)?;
        Ok(Placed {
            dir: dir_fd,
            name: PathBuf::from(name),
            tree_dir: None,
            ownership,
        })
    }

    fn open_append(&self, path: &Path, create: &WireCreate) -> Result<Option<OwnedFd>, Outcome> {
        if let Some(dir) = normalize(path).ok().as_deref().and_then(Path::parent) {
            if self.dirs.contains_key(dir) && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(Outcome::Failed)?;
            }
        }
        let Placed {
            dir,
            name,
            ownership,
            ..
        } = self.locate(path)?;
        match create_at(&dir, &name, &ownership.apply(create), true) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                open_regular(&dir, &name, OFlag::O_WRONLY | OFlag::O_APPEND).map(Some)
            }
            Err(e) => Err(Outcome::Failed(e)),
        }
    }

    fn create_new(&self, path: &Path, create: &WireCreate) -> Result<Option<OwnedFd>, Outcome> {
        let Placed {
            dir,
            name,
            ownership,
            ..
        } = self.locate(path)?;
        create_at(&dir, &name, &ownership.apply(create), false)
            .map(Some)
            .map_err(Outcome::Failed)
    }

    fn open_read(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        if normalize(path).is_ok_and(|p| self.tls_files.contains(&p)) {
            return File::open(path)
                .map(|f| Some(OwnedFd::from(f)))
                .map_err(Outcome::Failed);
        }
        if let Ok(p) = normalize(path) {
            if self.is_input_file(&p) {
                return open_input_file(&p).map(Some);
            }
        }
        let (dir, name) = self.place(path)?;
        open_regular(&dir, &name, OFlag::O_RDONLY).map(Some)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let from_place = self.locate(from)?;
        let to_place = self.locate(to)?;
        if from_place.tree_dir.is_some() || to_place.tree_dir.is_some() {
            // Rotation and compression rename within one directory: so must the worker.
            if from_place.tree_dir != to_place.tree_dir {
                return Err(Outcome::Refused(format!(
                    "{} and {} are not in the same directory of a templated output",
                    from.display(),
                    to.display()
                )));
            }
        }
        let (from_dir, from_name) = (from_place.dir, from_place.name);
        let (to_dir, to_name) = (to_place.dir, to_place.name);
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
        // Through a hard link, the time of another file would change.
        if let Ok(st) = fstatat(dir.as_fd(), &name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            if st.st_nlink > 1 {
                return Err(Outcome::Refused(format!(
                    "{} has {} hard links; a log file has one (remove the others)",
                    path.display(),
                    st.st_nlink
                )));
            }
        }
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

impl Policy {
    /// Binds the configured follow socket (`[follow] socket`), and nothing else.
    fn bind_follow_socket(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        if self.follow_socket.as_deref() != Some(path.as_path()) {
            return Err(Outcome::Refused(format!(
                "{} is not the configured follow socket",
                path.display()
            )));
        }
        let listener = crate::follow::local::bind_here(&path).map_err(Outcome::Failed)?;
        Ok(Some(OwnedFd::from(listener)))
    }

    fn bind_unix_datagram(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        let Some(&(mode, buffer)) = self.unix_datagrams.get(&path) else {
            return Err(Outcome::Refused(format!(
                "{} is not the socket of a unix_datagram input",
                path.display()
            )));
        };
        let fd =
            crate::input::unix::bind_datagram_here(&path, mode, buffer).map_err(Outcome::Failed)?;
        Ok(Some(fd))
    }
}

impl Policy {
    /// Creates the directories of a tree down to `path`, each missing one with `create`'s
    /// mode (less set-id and sticky bits) and the output's owner and group. A missing base
    /// directory is created first, as a plain output's directory is.
    fn make_dirs(&self, path: &Path, create: &WireCreate) -> Result<Option<OwnedFd>, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        let Some((tree, rel)) = self.in_tree(&path, Level::Dir)? else {
            return Err(Outcome::Refused(format!(
                "{} is not in the base directory of a templated output",
                path.display()
            )));
        };
        let (owner, group) = (tree.files.owner, tree.files.group);
        if (create.owner, create.group) != (owner, group) {
            return Err(Outcome::Refused(format!(
                "{}: owner {:?} and group {:?} are not the output's ({owner:?}, {group:?})",
                path.display(),
                create.owner,
                create.group,
            )));
        }
        // At most the configured `dir_mode`, whatever the worker asks.
        let mode = create.mode & tree.dir_mode & 0o777;
        if !tree.base.exists() {
            create_base(&tree.base, mode, owner, group).map_err(Outcome::Failed)?;
        }
        let mut dir = open_dir(&std::fs::canonicalize(&tree.base).map_err(Outcome::Failed)?)
            .map_err(Outcome::Failed)?;
        for name in rel {
            dir = match open_subdir(&dir, name) {
                Ok(d) => d,
                Err(Outcome::Failed(e)) if e.kind() == io::ErrorKind::NotFound => {
                    match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(mode)) {
                        Ok(()) => {
                            let d = open_subdir(&dir, name)?;
                            set_owner_mode(&d, mode, owner, group).map_err(Outcome::Failed)?;
                            d
                        }
                        // Made meanwhile: use it as it is.
                        Err(nix::errno::Errno::EEXIST) => open_subdir(&dir, name)?,
                        Err(e) => return Err(Outcome::Failed(e.into())),
                    }
                }
                Err(o) => return Err(o),
            };
        }
        Ok(None)
    }

    /// Removes an empty directory of a tree (never its base directory).
    fn remove_dir(&self, path: &Path) -> Result<Option<OwnedFd>, Outcome> {
        let path = normalize(path).map_err(Outcome::Refused)?;
        let Some((tree, rel)) = self.in_tree(&path, Level::Dir)? else {
            return Err(Outcome::Refused(format!(
                "{} is not in the base directory of a templated output",
                path.display()
            )));
        };
        let Some((last, dirs)) = rel.split_last() else {
            return Err(Outcome::Refused(format!(
                "{} is the base directory of a templated output: it is never removed",
                path.display()
            )));
        };
        let dir = walk(tree, dirs)?;
        match kind_at(&dir, Path::new(last)) {
            Ok(Some(SFlag::S_IFDIR)) => {}
            Ok(None) => return Err(Outcome::Failed(io::ErrorKind::NotFound.into())),
            Ok(Some(_)) => {
                return Err(Outcome::Refused(format!(
                    "{} is not a directory",
                    path.display()
                )))
            }
            Err(e) => return Err(Outcome::Failed(e)),
        }
        // Fails with ENOTEMPTY unless it is empty.
        unlinkat(&dir, *last, UnlinkatFlags::RemoveDir)
            .map(|()| None)
            .map_err(|e| Outcome::Failed(e.into()))
    }
}

/// A file request's place: the directory (open) and the file's name in it.
struct Placed {
    dir: OwnedFd,
    name: PathBuf,
    /// For a file of a templated output, the directory's path.
    tree_dir: Option<PathBuf>,
    /// What a file created there gets, from the configuration.
    ownership: Ownership,
}

/// Opens the base directory of `tree` (its own symlinks are the administrator's choice),
/// then each of `dirs` below it without following a symlink.
fn walk(tree: &Tree, dirs: &[&std::ffi::OsStr]) -> Result<OwnedFd, Outcome> {
    let real = std::fs::canonicalize(&tree.base).map_err(Outcome::Failed)?;
    let mut dir = open_dir(&real).map_err(Outcome::Failed)?;
    for name in dirs {
        dir = open_subdir(&dir, name)?;
    }
    Ok(dir)
}

/// Opens the directory `name` in `dir`: never through a symlink.
fn open_subdir(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<OwnedFd, Outcome> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => Outcome::Refused(format!(
            "`{}` is a symbolic link or not a directory; it is never followed",
            name.to_string_lossy()
        )),
        e => Outcome::Failed(e.into()),
    })
}

/// Sets a new directory's mode exactly (the umask narrowed it) and its owner.
fn set_owner_mode(
    dir: &OwnedFd,
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
) -> io::Result<()> {
    nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(mode))?;
    if owner.is_some() || group.is_some() {
        std::os::unix::fs::fchown(dir, owner, group)?;
    }
    Ok(())
}

/// Creates a templated output's missing base directory and its missing parents (the path
/// is the configuration's), each with `mode` and the owner.
fn create_base(base: &Path, mode: u32, owner: Option<u32>, group: Option<u32>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut dir = base;
    while !dir.exists() {
        missing.push(dir);
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().create(d) {
            Ok(()) => {
                let fd = open_dir(d)?;
                set_owner_mode(&fd, mode, owner, group)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `name` belongs to the file set of the live file `base`: `base`, its generations
/// (`base.1`, `base.2.zst`, `base-20261121`) and compression's temporaries
/// (`.base.2.zst.tmp`), as [`crate::store::fileset`] names them.
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

/// Opens an existing regular file: never through a symlink, never a FIFO or device, never
/// one with another hard link (planted in an output directory, it could name any file of
/// the same file system: `/etc/shadow`, another user's mail).
/// Opens another program's log for a file input, read-only: refused when a directory on
/// its way or the file itself is a symbolic link, or when it is not a regular file with one
/// link.
fn open_input_file(path: &Path) -> Result<OwnedFd, Outcome> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    match std::fs::canonicalize(dir) {
        Ok(real) if real == dir => {}
        Ok(real) => {
            return Err(Outcome::Refused(format!(
                "{} leads elsewhere ({}) through a symbolic link",
                dir.display(),
                real.display()
            )))
        }
        Err(e) => return Err(Outcome::Failed(e)),
    }
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Outcome::Failed(e.into()))?;
    let name = path.file_name().map(Path::new).unwrap_or(Path::new(""));
    open_regular(&dir_fd, name, OFlag::O_RDONLY)
}

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
    if meta.nlink() > 1 {
        return Err(Outcome::Refused(format!(
            "{} has {} hard links; a log file has one (remove the others)",
            name.display(),
            meta.nlink()
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
/// sticky and execute bits, and its owner (the caller has applied the configuration's).
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
    let p = |w: &crate::host::proto::WirePath| w.to_path().display().to_string();
    match request {
        Request::OpenAppend { path, .. } => format!("open for append {}", p(path)),
        Request::OpenRead { path } => format!("open for reading {}", p(path)),
        Request::CreateNew { path, .. } => format!("create {}", p(path)),
        Request::Rename { from, to } => format!("rename {} to {}", p(from), p(to)),
        Request::Unlink { path } => format!("remove {}", p(path)),
        Request::Mkdir { path } => format!("create directory {}", p(path)),
        Request::MakeDirs { path, create } => format!(
            "create directories down to {} (mode {:o}, owner {:?}, group {:?})",
            p(path),
            create.mode,
            create.owner,
            create.group
        ),
        Request::RemoveDir { path } => format!("remove directory {}", p(path)),
        Request::SetModified { path, .. } => format!("set the time of {}", p(path)),
        Request::BindFollowSocket { path } => format!("bind the follow socket {}", p(path)),
        Request::BindUnixDatagram { path } => format!("bind the input socket {}", p(path)),
        Request::Notify { .. } => "notify".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::proto::WirePath;
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

    /// The ownership the tests' outputs are configured with.
    const CONFIGURED: Ownership = Ownership {
        mode: 0o644,
        owner: None,
        group: None,
    };

    /// A plain output's live file, configured as [`CONFIGURED`].
    fn plain(path: PathBuf) -> (PathBuf, Ownership) {
        (path, CONFIGURED)
    }

    fn setup() -> (tempfile::TempDir, Policy) {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        std::fs::create_dir(&log).unwrap();
        (t, Policy::new(vec![plain(log.join("syslog"))]))
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

    /// Issue 24, item 8: the mode, owner and group come from the parent's configuration;
    /// the worker may narrow the mode, never widen it or choose the owner.
    #[test]
    fn a_created_file_gets_the_configured_owner_and_at_most_the_configured_mode() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        std::fs::create_dir(&log).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let configured = Ownership {
            mode: 0o640,
            owner: Some(me),
            group: None,
        };
        let policy = Policy::new(vec![(log.join("syslog"), configured)]);
        let wider = WireCreate {
            mode: 0o666,
            owner: Some(me.wrapping_add(4242)),
            group: Some(4242),
        };
        let live = log.join("syslog");
        done(policy.execute(&Request::OpenAppend {
            path: wp(&live),
            create: wider,
        }));
        let tmp = log.join(".syslog.1.zst.tmp");
        done(policy.execute(&Request::CreateNew {
            path: wp(&tmp),
            create: wider,
        }));
        for f in [&live, &tmp] {
            let m = std::fs::metadata(f).unwrap();
            assert_eq!(
                m.mode() & 0o7777,
                0o640,
                "{}: the configured mode",
                f.display()
            );
            assert_eq!(m.uid(), me, "{}: the configured owner", f.display());
            assert_ne!(m.gid(), 4242, "{}: not the worker's group", f.display());
        }
        // Narrower than configured (a compressed copy of a 0600 generation): kept.
        let narrow = log.join(".syslog.2.zst.tmp");
        done(policy.execute(&Request::CreateNew {
            path: wp(&narrow),
            create: WireCreate {
                mode: 0o600,
                ..wider
            },
        }));
        assert_eq!(std::fs::metadata(&narrow).unwrap().mode() & 0o7777, 0o600);
    }

    /// Issue 24, item 8: a hard link planted as a log file names another file: never opened.
    #[test]
    fn a_hard_linked_file_is_refused() {
        let (t, policy) = setup();
        let secret = t.path().join("secret");
        std::fs::write(&secret, "secret").unwrap();
        let live = t.path().join("log/syslog");
        std::fs::hard_link(&secret, &live).unwrap();
        let why = refused(policy.execute(&Request::OpenAppend {
            path: wp(&live),
            create: CREATE,
        }));
        assert!(why.contains("hard links"), "{why}");
        refused(policy.execute(&Request::OpenRead { path: wp(&live) }));
        refused(policy.execute(&Request::SetModified {
            path: wp(&live),
            secs: 1000,
            nanos: 0,
        }));
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
        assert_ne!(std::fs::metadata(&secret).unwrap().mtime(), 1000);
        // Once it is the only link, it is an ordinary log file again.
        std::fs::remove_file(&secret).unwrap();
        done(policy.execute(&Request::OpenRead { path: wp(&live) })).expect("a descriptor");
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
        let policy = Policy::new(vec![plain(dir.join("f"))]);
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

    /// A policy with one templated output, `T/remote/{host}/{tag}.log` (the base is not
    /// created), its fallback file in the base.
    fn tree_setup() -> (tempfile::TempDir, Policy, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("remote");
        let template = PathTemplate::parse(&format!("{}/{{host}}/{{tag}}.log", base.display()))
            .unwrap()
            .unwrap();
        let policy = Policy::new(vec![plain(base.join(".fallback.log"))])
            .with_trees(vec![Tree::new(template, CONFIGURED, 0o750)]);
        (t, policy, base)
    }

    const DIRS: WireCreate = WireCreate {
        mode: 0o2750,
        owner: None,
        group: None,
    };

    fn done(o: Outcome) -> Option<OwnedFd> {
        match o {
            Outcome::Done(fd) => fd,
            other => panic!("expected success, got {other:?}"),
        }
    }

    #[test]
    fn a_templated_output_creates_rotates_and_removes_inside_its_base() {
        let (_t, policy, base) = tree_setup();
        let host = base.join("web01");
        done(policy.execute(&Request::MakeDirs {
            path: wp(&host),
            create: DIRS,
        }));
        for d in [&base, &host] {
            let m = std::fs::metadata(d).unwrap();
            assert!(m.is_dir());
            assert_eq!(
                m.mode() & 0o7777,
                0o750,
                "{}: set-id bits dropped",
                d.display()
            );
        }
        // Again: it exists, nothing changes.
        done(policy.execute(&Request::MakeDirs {
            path: wp(&host),
            create: DIRS,
        }));
        let live = host.join("sshd.log");
        let fd = done(policy.execute(&Request::OpenAppend {
            path: wp(&live),
            create: CREATE,
        }))
        .expect("a descriptor");
        File::from(fd).write_all(b"line\n").unwrap();
        let rotated = host.join("sshd.log.1");
        done(policy.execute(&Request::Rename {
            from: wp(&live),
            to: wp(&rotated),
        }));
        done(policy.execute(&Request::OpenRead { path: wp(&rotated) })).expect("a descriptor");
        let tmp = host.join(".sshd.log.1.zst.tmp");
        done(policy.execute(&Request::CreateNew {
            path: wp(&tmp),
            create: CREATE,
        }));
        done(policy.execute(&Request::SetModified {
            path: wp(&tmp),
            secs: 1000,
            nanos: 0,
        }));
        done(policy.execute(&Request::Rename {
            from: wp(&tmp),
            to: wp(&host.join("sshd.log.1.zst")),
        }));
        assert_eq!(
            std::fs::metadata(host.join("sshd.log.1.zst"))
                .unwrap()
                .mtime(),
            1000
        );
        // The fallback file, a plain file of the base directory.
        done(policy.execute(&Request::OpenAppend {
            path: wp(&base.join(".fallback.log")),
            create: CREATE,
        }));
        // A directory is removed only when empty.
        assert!(matches!(
            policy.execute(&Request::RemoveDir { path: wp(&host) }),
            Outcome::Failed(_)
        ));
        for f in ["sshd.log.1", "sshd.log.1.zst"] {
            done(policy.execute(&Request::Unlink {
                path: wp(&host.join(f)),
            }));
        }
        done(policy.execute(&Request::RemoveDir { path: wp(&host) }));
        assert!(!host.exists());
        assert!(base.exists());
    }

    #[test]
    fn requests_outside_a_templated_outputs_tree_or_shape_are_refused() {
        let (t, policy, base) = tree_setup();
        done(policy.execute(&Request::MakeDirs {
            path: wp(&base.join("web01")),
            create: DIRS,
        }));
        done(policy.execute(&Request::MakeDirs {
            path: wp(&base.join("web02")),
            create: DIRS,
        }));
        let files = [
            PathBuf::from("/etc/passwd"),
            t.path().join("elsewhere.log"),
            base.clone(),
            base.join("web01/../../escape.log"),
            base.join("web01"),
            base.join("top.log"),
            base.join("web01/sub/deep.log"),
            base.join("web01/sshd.txt"),
            base.join(".hidden/sshd.log"),
            base.join("web01/.sshd.log"),
            PathBuf::from("remote/web01/sshd.log"),
        ];
        for p in &files {
            refused(policy.execute(&Request::OpenAppend {
                path: wp(p),
                create: CREATE,
            }));
            refused(policy.execute(&Request::CreateNew {
                path: wp(p),
                create: CREATE,
            }));
            refused(policy.execute(&Request::OpenRead { path: wp(p) }));
            refused(policy.execute(&Request::Unlink { path: wp(p) }));
            refused(policy.execute(&Request::SetModified {
                path: wp(p),
                secs: 0,
                nanos: 0,
            }));
        }
        for p in [
            PathBuf::from("/etc/cron.d"),
            t.path().join("other"),
            base.join("web01/sshd.log"),
            base.join(".hidden"),
            base.join("web01/../.."),
        ] {
            refused(policy.execute(&Request::MakeDirs {
                path: wp(&p),
                create: DIRS,
            }));
            refused(policy.execute(&Request::RemoveDir { path: wp(&p) }));
        }
        let why = refused(policy.execute(&Request::RemoveDir { path: wp(&base) }));
        assert!(why.contains("never removed"), "{why}");
        assert!(base.exists());
        // At most the configured `dir_mode` (0750), whatever the worker asks.
        let wide = base.join("web04");
        done(policy.execute(&Request::MakeDirs {
            path: wp(&wide),
            create: WireCreate {
                mode: 0o777,
                ..DIRS
            },
        }));
        assert_eq!(std::fs::metadata(&wide).unwrap().mode() & 0o7777, 0o750);
        // Only the output's own owner and group for a directory.
        let why = refused(policy.execute(&Request::MakeDirs {
            path: wp(&base.join("web03")),
            create: WireCreate {
                owner: Some(4242),
                ..DIRS
            },
        }));
        assert!(why.contains("not the output's"), "{why}");
        // Renames stay in one directory.
        let live = base.join("web01/sshd.log");
        done(policy.execute(&Request::OpenAppend {
            path: wp(&live),
            create: CREATE,
        }));
        for to in [base.join("web02/sshd.log"), t.path().join("x.log")] {
            refused(policy.execute(&Request::Rename {
                from: wp(&live),
                to: wp(&to),
            }));
        }
        assert!(live.exists());
        assert!(!t.path().join("escape.log").exists() && !t.path().join("other").exists());
    }

    #[test]
    fn a_symlink_planted_inside_a_tree_is_never_followed() {
        let (t, policy, base) = tree_setup();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.log"), "secret").unwrap();
        done(policy.execute(&Request::MakeDirs {
            path: wp(&base.join("web01")),
            create: DIRS,
        }));
        // A directory link and a file link, as anyone able to write in the tree could plant.
        std::os::unix::fs::symlink(&outside, base.join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.log"), base.join("web01/sshd.log"))
            .unwrap();
        for p in [base.join("evil/secret.log"), base.join("evil/new.log")] {
            let why = refused(policy.execute(&Request::OpenAppend {
                path: wp(&p),
                create: CREATE,
            }));
            assert!(why.contains("symbolic link"), "{why}");
            refused(policy.execute(&Request::OpenRead { path: wp(&p) }));
            refused(policy.execute(&Request::Unlink { path: wp(&p) }));
            refused(policy.execute(&Request::CreateNew {
                path: wp(&p),
                create: CREATE,
            }));
        }
        refused(policy.execute(&Request::MakeDirs {
            path: wp(&base.join("evil")),
            create: DIRS,
        }));
        refused(policy.execute(&Request::RemoveDir {
            path: wp(&base.join("evil")),
        }));
        let link = base.join("web01/sshd.log");
        refused(policy.execute(&Request::OpenAppend {
            path: wp(&link),
            create: CREATE,
        }));
        refused(policy.execute(&Request::OpenRead { path: wp(&link) }));
        refused(policy.execute(&Request::Rename {
            from: wp(&link),
            to: wp(&base.join("web01/sshd.log.1")),
        }));
        assert_eq!(
            std::fs::read_to_string(outside.join("secret.log")).unwrap(),
            "secret"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        assert!(base.join("evil").is_symlink());
    }

    #[test]
    fn the_configured_tls_files_may_be_read_and_nothing_else_beside_them() {
        let t = tempfile::tempdir().unwrap();
        let tls = t.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        std::fs::write(tls.join("server.key"), "KEY").unwrap();
        std::fs::write(tls.join("other.key"), "OTHER").unwrap();
        // The configured path may be a symlink (as certbot's live/ directory is).
        std::os::unix::fs::symlink(tls.join("server.key"), tls.join("live.key")).unwrap();
        let (_, policy) = setup();
        let policy = policy.with_tls_files(vec![tls.join("live.key")]);
        let fd = done(policy.execute(&Request::OpenRead {
            path: wp(&tls.join("live.key")),
        }))
        .expect("a descriptor");
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "KEY");
        // Read only, that path only.
        for other in ["other.key", "server.key"] {
            refused(policy.execute(&Request::OpenRead {
                path: wp(&tls.join(other)),
            }));
        }
        refused(policy.execute(&Request::OpenAppend {
            path: wp(&tls.join("live.key")),
            create: CREATE,
        }));
        refused(policy.execute(&Request::Unlink {
            path: wp(&tls.join("live.key")),
        }));
        refused(policy.execute(&Request::OpenRead {
            path: wp(&tls.join("x/../live.key")),
        }));
    }

    #[test]
    fn a_templated_output_is_a_tree_and_its_fallback_a_plain_file() {
        let s = crate::config::load_texts(vec![(
            PathBuf::from("t.toml"),
            "[daemon]\nprivsep = false\n[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n[output.r]\ntype = \"file\"\npath = \"/var/log/remote/{host}/{tag}.log\"\nfallback = \"/var/log/remote-fallback.log\"\n".into(),
        )])
        .unwrap();
        let p = Policy::from_settings(&s, Path::new("/srv"));
        assert_eq!(p.dirs(), [PathBuf::from("/var/log")]);
        assert_eq!(p.trees(), [PathBuf::from("/var/log/remote")]);
        assert!(p.is_plain(Path::new("/var/log/remote-fallback.log")));
        assert!(!p.is_plain(Path::new("/var/log/syslog")));
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

    #[test]
    fn file_inputs_files_and_their_generations_are_read_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // The test directory may sit under a symbolic link (/tmp): the real path, as a
        // configuration names it.
        let d = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(d.join("app")).unwrap();
        let write = |name: &str, text: &str| {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            p
        };
        let live = write("app/app.log", "live\n");
        let gen = write("app/app.log.1", "old\n");
        let skipped = write("app/debug.log", "debug\n");
        let other = write("secret.txt", "secret\n");
        std::os::unix::fs::symlink(&other, d.join("app/link.log")).unwrap();
        let text = format!(
            "[daemon]\nprivsep = false\n[input.f]\ntype = \"file\"\npaths = [\"{0}/app/*.log\"]\nexclude = [\"{0}/app/debug*\"]\n",
            d.display()
        );
        let s = crate::config::load_texts(vec![(PathBuf::from("t.toml"), text)]).unwrap();
        let p = Policy::from_settings(&s, Path::new("/"));
        let read = |path: &Path| match p.execute(&Request::OpenRead { path: wp(path) }) {
            Outcome::Done(Some(fd)) => {
                let mut t = String::new();
                File::from(fd).read_to_string(&mut t).unwrap();
                Ok(t)
            }
            Outcome::Refused(why) => Err(why),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(read(&live).unwrap(), "live\n");
        assert_eq!(
            read(&gen).unwrap(),
            "old\n",
            "a rotated generation of a matched file"
        );
        assert!(read(&skipped).is_err(), "excluded");
        assert!(read(&other).is_err(), "not matched by any pattern");
        let why = read(&d.join("app/link.log")).unwrap_err();
        assert!(why.contains("symbolic link"), "{why}");
        assert!(read(Path::new("/etc/shadow")).is_err());
    }
}
