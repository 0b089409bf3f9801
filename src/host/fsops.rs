//! Every change the outputs make to the file system: open a log for appending (creating it
//! with its mode and owner), create a new file, open one for reading, set a file's
//! modification time, rename, unlink, make directories (with their mode and owner, for a
//! templated output's tree) and remove empty ones.
//!
//! They live in one place so that privilege separation can carry them to the privileged
//! parent: the worker that parses network input may not write to `/var/log` itself. Each
//! function dispatches the same way: in a privilege-separated worker
//! ([`privileged_parent`]), it sends a request to the parent
//! (`crate::daemon::privsep`), which checks it against the output directories and the
//! templated outputs' base directories and does it
//! (passing back the descriptor of an opened file); otherwise it does the system call here.
//! To add an operation: a variant of `proto::Request`, its check and execution in
//! `privsep::policy`, and a function here in the same two-armed shape.
//!
//! Reading that needs no privilege beyond group `adm` (history, `stat`, directory listings)
//! stays with the callers.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::client;
use super::proto::{Request, WireCreate, WirePath};

/// How a file is created when it does not exist yet.
#[derive(Debug, Clone, Copy)]
pub struct Create {
    /// Permission bits, set exactly (the umask does not narrow them).
    pub mode: u32,
    /// Owner uid, or `None` to keep the process's.
    pub owner: Option<u32>,
    /// Group gid, or `None` to keep the process's.
    pub group: Option<u32>,
}

impl Create {
    fn wire(&self) -> WireCreate {
        WireCreate {
            mode: self.mode,
            owner: self.owner,
            group: self.group,
        }
    }
}

/// Whether file-system changes go through the privileged parent (this process is a
/// privilege-separated worker).
pub fn privileged_parent() -> bool {
    client::active()
}

/// Whether files are created with root's rights (run as root, or by the root parent), so
/// that owners and groups can be set.
pub fn privileged() -> bool {
    privileged_parent() || nix::unistd::geteuid().is_root()
}

/// A path for a request: absolute (the parent shares the working directory).
fn wire(path: &Path) -> io::Result<WirePath> {
    Ok(WirePath::from_path(&client::absolute(path)?))
}

/// The parent's answer to a request that opens a file.
fn opened(request: Request) -> io::Result<File> {
    client::call(&request)?
        .ok_or_else(|| io::Error::other("the privileged parent sent no descriptor"))
}

/// Opens `path` for appending, creating it (and its missing directories) as `create` says.
pub fn open_append(path: &Path, create: &Create) -> io::Result<File> {
    if privileged_parent() {
        return opened(Request::OpenAppend {
            path: wire(path)?,
            create: create.wire(),
        });
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            create_dir_all(dir)?;
        }
    }
    match create_with(path, create, true) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path`, which must not exist, for writing, with exactly `create`'s mode and owner.
pub fn create_new(path: &Path, create: &Create) -> io::Result<File> {
    if privileged_parent() {
        return opened(Request::CreateNew {
            path: wire(path)?,
            create: create.wire(),
        });
    }
    create_with(path, create, false)
}

/// Opens an existing log for reading (the compressor's source), even one only root may read.
pub fn open_read(path: &Path) -> io::Result<File> {
    if privileged_parent() {
        return opened(Request::OpenRead { path: wire(path)? });
    }
    File::open(path)
}

/// Opens another program's log for a file input: as this process when it may (a worker
/// reads what group `adm` may), else, under privilege separation, through the privileged
/// parent, which opens only what the file inputs' patterns match (read-only, no symbolic
/// link).
pub fn open_input(path: &Path) -> io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && privileged_parent() => {
            opened(Request::OpenRead { path: wire(path)? })
        }
        r => r,
    }
}

fn create_with(path: &Path, create: &Create, append: bool) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .append(append)
        .create_new(true)
        .mode(create.mode & 0o7777)
        .open(path)?;
    // The umask may have narrowed the mode: set it exactly, then the owner.
    f.set_permissions(std::fs::Permissions::from_mode(create.mode & 0o7777))?;
    if create.owner.is_some() || create.group.is_some() {
        std::os::unix::fs::fchown(&f, create.owner, create.group)?;
    }
    Ok(f)
}

/// Renames `from` to `to`, replacing `to`.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    if privileged_parent() {
        let request = Request::Rename {
            from: wire(from.as_ref())?,
            to: wire(to.as_ref())?,
        };
        return client::call(&request).map(drop);
    }
    std::fs::rename(from, to)
}

/// Removes the file at `path`.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    if privileged_parent() {
        let request = Request::Unlink {
            path: wire(path.as_ref())?,
        };
        return client::call(&request).map(drop);
    }
    std::fs::remove_file(path)
}

/// Sets the modification time of `file`, open at `path`, as the file's owner may (a file
/// the root parent created is not the worker's, so the parent sets it).
pub fn set_modified(file: &File, path: &Path, time: std::time::SystemTime) -> io::Result<()> {
    if privileged_parent() {
        // Before 1970 (never for a log) is clamped to the epoch.
        let since = time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let request = Request::SetModified {
            path: wire(path)?,
            secs: since.as_secs() as i64,
            nanos: since.subsec_nanos(),
        };
        return client::call(&request).map(drop);
    }
    file.set_modified(time)
}

/// Creates `path` and its missing parents.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    if privileged_parent() {
        let request = Request::Mkdir {
            path: wire(path.as_ref())?,
        };
        return client::call(&request).map(drop);
    }
    std::fs::create_dir_all(path)
}

/// Creates `path` and its missing parents, each new directory with `create`'s mode (set
/// exactly) and owner; directories that exist are left as they are. For the directories of
/// a templated output (the parent allows only those below its base directory).
pub fn create_dirs(path: &Path, create: &Create) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if privileged_parent() {
        let request = Request::MakeDirs {
            path: wire(path)?,
            create: create.wire(),
        };
        return client::call(&request).map(drop);
    }
    let mut missing = Vec::new();
    let mut dir = path;
    while !dir.as_os_str().is_empty() && !dir.exists() {
        missing.push(dir);
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new()
            .mode(create.mode & 0o7777)
            .create(d)
        {
            Ok(()) => {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(create.mode & 0o7777))?;
                if create.owner.is_some() || create.group.is_some() {
                    std::os::unix::fs::chown(d, create.owner, create.group)?;
                }
            }
            // Another writer made it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the directory at `path`, which must be empty (a templated output's age sweep).
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    if privileged_parent() {
        let request = Request::RemoveDir {
            path: wire(path.as_ref())?,
        };
        return client::call(&request).map(drop);
    }
    std::fs::remove_dir(path)
}
