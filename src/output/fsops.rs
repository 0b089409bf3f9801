//! Every change the outputs make to the file system: open a log for appending (creating it
//! with its mode and owner), create a new file, rename, unlink, and make directories.
//!
//! They live in one place so that privilege separation can carry them to the privileged
//! parent: the worker that parses network input may not write to `/var/log` itself. Reading
//! (history, the compressor's source, `stat`, directory listings) needs no privilege beyond
//! group `adm` and stays with the callers.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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

/// Opens `path` for appending, creating it (and its missing directories) as `create` says.
pub fn open_append(path: &Path, create: &Create) -> io::Result<File> {
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
    create_with(path, create, false)
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
    std::fs::rename(from, to)
}

/// Removes the file at `path`.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// Creates `path` and its missing parents.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Creates `path` and its missing parents, each new directory with `create`'s mode (set
/// exactly) and owner; directories that exist are left as they are.
pub fn create_dirs(path: &Path, create: &Create) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
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

/// Removes the directory at `path`, which must be empty.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    std::fs::remove_dir(path)
}
