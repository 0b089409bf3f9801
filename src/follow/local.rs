//! The follow service's local Unix socket (`[follow] socket`, `/run/logwell/follow.sock` in
//! the shipped configuration): HTTP, as on the TCP listeners, for `logwell follow` and
//! `logwell show` on this host, with no token. Each client is authorised by its credentials
//! (`SO_PEERCRED`, and its groups from `SO_PEERGROUPS`): root, the daemon's own user, and
//! the members of group `adm` (Debian's group for reading `/var/log`, which journalctl also
//! lets read the journal) are served; everyone else is refused with a reason. The socket
//! itself is `0666`, so that a refusal is an answer and not a bare `EACCES`.
//!
//! Binding goes through the privileged parent under privilege separation (the worker may
//! not create files in `/run/logwell`), and is done without following links: the socket is
//! bound in a fresh private directory beside its path, given its mode there, then renamed
//! into place (replacing a stale socket, never another kind of file).
//!
//! This module decides who is served ([`Readers::allows`], pure); it does not serve.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// The group whose members may read the logs (Debian's `adm`).
pub const READERS_GROUP: &str = "adm";

/// Who a local client is: `SO_PEERCRED`'s user and group, and its supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The client's effective user id when it connected.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
    /// Its supplementary groups (`SO_PEERGROUPS`; from the group database on kernels older
    /// than 4.13).
    pub groups: Vec<u32>,
}

/// Who is served on the local socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readers {
    /// The gid of [`READERS_GROUP`], when the group exists.
    pub group: Option<u32>,
    /// The daemon's own user (a daemon run by a user serves that user its own files).
    pub own_uid: u32,
}

impl Readers {
    /// The readers on this system: root, this process's user, and group `adm`.
    pub fn system() -> Readers {
        Readers {
            group: nix::unistd::Group::from_name(READERS_GROUP)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
            own_uid: nix::unistd::geteuid().as_raw(),
        }
    }

    /// Whether a client with these credentials is served.
    pub fn allows(&self, c: &Credentials) -> bool {
        c.uid == 0
            || c.uid == self.own_uid
            || self
                .group
                .is_some_and(|g| c.gid == g || c.groups.contains(&g))
    }

    /// The answer to a client that is not served: who it is, who is, and what to do.
    pub fn refusal(&self, c: &Credentials) -> String {
        let who = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(c.uid))
            .ok()
            .flatten()
            .map(|u| format!("user `{}` (uid {})", u.name, c.uid))
            .unwrap_or_else(|| format!("uid {}", c.uid));
        format!(
            "{who} may not read the logs: the follow socket serves root and the members of group `{READERS_GROUP}`, as journalctl does; ask an administrator to add you (`usermod -aG {READERS_GROUP} USER`, then log in again)"
        )
    }
}

/// The credentials of the client connected on `sock`.
pub fn credentials(sock: &impl AsRawFd) -> io::Result<Credentials> {
    let fd = sock.as_raw_fd();
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_PEERCRED) into a ucred of the size given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let groups = match peer_groups(fd) {
        Ok(g) => g,
        // Before Linux 4.13: the groups the database gives the user.
        Err(_) => database_groups(cred.uid, cred.gid),
    };
    Ok(Credentials {
        uid: cred.uid,
        gid: cred.gid,
        groups,
    })
}

/// `SO_PEERGROUPS`: the supplementary groups the client had when it connected.
fn peer_groups(fd: i32) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: getsockopt(SO_PEERGROUPS) into a buffer of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if r == 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        // ERANGE: `len` now says how much is needed.
        if e.raw_os_error() == Some(libc::ERANGE) && n > groups.len() && n <= 65536 {
            groups.resize(n, 0);
            continue;
        }
        return Err(e);
    }
}

fn database_groups(uid: u32, gid: u32) -> Vec<u32> {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default()
}

/// Binds the follow socket at `path`: through the privileged parent in a
/// privilege-separated worker, here otherwise.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    use crate::host::{client, proto};
    if crate::host::fsops::privileged_parent() {
        let request = proto::Request::BindFollowSocket {
            path: proto::WirePath::from_path(&client::absolute(path)?),
        };
        let file = client::call(&request)?
            .ok_or_else(|| io::Error::other("the privileged parent sent no socket"))?;
        let listener = UnixListener::from(OwnedFd::from(file));
        listener.set_nonblocking(true)?;
        return Ok(listener);
    }
    let listener = bind_here(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The mode of the follow socket: anyone may connect, and is then answered (served or
/// refused) by the service.
const SOCKET_MODE: u32 = 0o666;

/// Binds a Unix stream socket at `path` with mode [`SOCKET_MODE`], following no link: bound
/// in a new private directory beside `path` (mode 0700, so no one else can swap the socket
/// for a link before its `chmod`), then renamed over `path`. Refuses to replace anything
/// but a socket. The privileged parent runs this for the worker.
pub(crate) fn bind_here(path: &Path) -> io::Result<UnixListener> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; remove it or choose another `socket` path",
                    path.display()
                ),
            ))
        }
        _ => {}
    }
    let private = nix::unistd::mkdtemp(&dir.join(".follow-XXXXXX")).map_err(io::Error::from)?;
    let inner = private.join("s");
    let bound = (|| {
        let listener = UnixListener::bind(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        std::fs::rename(&inner, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&private);
    bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const ADM: u32 = 4;

    fn readers() -> Readers {
        Readers {
            group: Some(ADM),
            own_uid: 100,
        }
    }

    fn who(uid: u32, gid: u32, groups: &[u32]) -> Credentials {
        Credentials {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_adm_and_the_daemons_user_are_served_and_no_one_else() {
        let r = readers();
        assert!(r.allows(&who(0, 0, &[])), "root");
        assert!(r.allows(&who(1000, 1000, &[24, ADM])), "a member of adm");
        assert!(r.allows(&who(1000, ADM, &[])), "adm as primary group");
        assert!(r.allows(&who(100, 100, &[])), "the daemon's own user");
        assert!(!r.allows(&who(65534, 65534, &[])), "nobody");
        assert!(!r.allows(&who(1000, 1000, &[24, 27])), "other groups");
        let none = Readers {
            group: None,
            own_uid: 100,
        };
        assert!(!none.allows(&who(1000, 1000, &[ADM])), "no adm group");
        assert!(r
            .refusal(&who(65534, 65534, &[]))
            .contains("usermod -aG adm"));
    }

    #[test]
    fn the_socket_is_world_connectable_and_replaces_only_a_socket() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("run/follow.sock");
        let first = bind_here(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o666);
        // A second bind (a reload, a restart) replaces the stale socket; the new one answers.
        drop(first);
        let second = bind_here(&path).unwrap();
        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (server, _) = second.accept().unwrap();
        let me = credentials(&server).unwrap();
        assert_eq!(me.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(me.gid, nix::unistd::getegid().as_raw());
        drop(client);
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(t.path().join("run"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("follow.sock")]);
        // A regular file (or a link) at the path is never replaced.
        let file = t.path().join("run/file");
        std::fs::write(&file, "keep").unwrap();
        assert!(bind_here(&file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        let link = t.path().join("run/link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(bind_here(&link).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }
}
