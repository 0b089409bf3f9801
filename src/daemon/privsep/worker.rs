//! The worker's side: dropping to the unprivileged user right after the fork, and the client
//! through which [`crate::host::fsops`] asks the parent for file-system changes.
//!
//! The drop happens in the single-threaded child, before the tokio runtime or any writer
//! thread exists, because capabilities and ids are per thread. Afterwards the worker has
//! no capability in any set, cannot regain one (`PR_SET_NO_NEW_PRIVS`, empty bounding set),
//! and is sent SIGTERM when the parent dies (`PR_SET_PDEATHSIG`).

use std::io;

use nix::unistd::{Gid, Uid};

/// Who the worker becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user's name, for messages.
    pub(crate) user: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Supplementary groups: `adm`, and `systemd-journal` when the journal is read.
    pub(crate) groups: Vec<u32>,
}

/// Why the drop failed (the worker then exits: it never runs with more than it should).
#[derive(Debug, thiserror::Error)]
#[error("cannot drop privileges to user `{user}` ({step}): {source}; logwelld refuses to run the worker as root — check the user exists and logwelld starts as root, or set `privsep = false` in [daemon]")]
pub struct DropError {
    user: String,
    step: &'static str,
    source: io::Error,
}

/// Why the drop to `id` cannot work in this user namespace (a container that maps only
/// root, or denies `setgroups`), from `/proc/self/uid_map`, `gid_map` and `setgroups`: then
/// the worker would fail at its first step, and privilege separation is skipped instead.
pub(crate) fn unmapped(
    id: &Identity,
    uid_map: Option<String>,
    gid_map: Option<String>,
    setgroups: Option<String>,
) -> Option<String> {
    let has = |map: &Option<String>, id: u32| {
        map.as_deref().is_none_or(|m| {
            m.lines().any(|l| {
                let mut n = l.split_whitespace().map(|f| f.parse::<u64>().ok());
                match (n.next().flatten(), n.next().flatten(), n.next().flatten()) {
                    (Some(inside), Some(_), Some(count)) => {
                        (inside..inside + count).contains(&u64::from(id))
                    }
                    _ => false,
                }
            })
        })
    };
    if !has(&uid_map, id.uid) {
        return Some(format!(
            "this container's user namespace maps no uid {} for `{}` (/proc/self/uid_map)",
            id.uid, id.user
        ));
    }
    if let Some(g) = std::iter::once(&id.gid)
        .chain(&id.groups)
        .find(|&&g| !has(&gid_map, g))
    {
        return Some(format!(
            "this container's user namespace maps no gid {g} for `{}` (/proc/self/gid_map)",
            id.user
        ));
    }
    if setgroups.as_deref().is_some_and(|s| s.trim() == "deny") {
        return Some(
            "this container's user namespace denies setgroups (/proc/self/setgroups)".into(),
        );
    }
    None
}

/// Becomes `id`: groups, gid, uid; clears every capability set; sets no-new-privs; asks for
/// SIGTERM when the parent (`parent_pid`) dies.
pub(crate) fn drop_privileges(id: &Identity, parent_pid: i32) -> Result<(), DropError> {
    let fail = |step: &'static str| {
        let user = id.user.clone();
        move |source: io::Error| DropError { user, step, source }
    };
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong)
        .map_err(fail("PR_SET_PDEATHSIG"))?;
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent_pid {
        return Err(fail("parent check")(io::Error::other(
            "the parent exited during start",
        )));
    }
    // The bounding set: dropping needs CAP_SETPCAP, so before setuid. A capability the
    // bounding set already lacks (systemd's `CapabilityBoundingSet=`) is skipped; the first
    // number the kernel does not know (EINVAL) ends the loop.
    for cap in 0..=63 {
        // SAFETY: prctl with integer arguments.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present < 0 {
            break;
        }
        // SAFETY: prctl with integer arguments.
        if present == 1
            && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0
        {
            return Err(fail("PR_CAPBSET_DROP (needs CAP_SETPCAP)")(
                io::Error::last_os_error(),
            ));
        }
    }
    // SAFETY: prctl with integer arguments.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(fail("PR_CAP_AMBIENT_CLEAR_ALL")(io::Error::last_os_error()));
    }
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| fail("setgroups")(e.into()))?;
    let gid = Gid::from_raw(id.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid")(e.into()))?;
    let uid = Uid::from_raw(id.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid")(e.into()))?;
    clear_capabilities().map_err(fail("capset"))?;
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(fail("PR_SET_NO_NEW_PRIVS"))?;
    // Changing the effective uid or gid clears the death signal (prctl(2)): set it again.
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong)
        .map_err(fail("PR_SET_PDEATHSIG"))?;
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent_pid {
        return Err(fail("parent check")(io::Error::other(
            "the parent exited during start",
        )));
    }
    // Prove it: root must be out of reach.
    // SAFETY: setuid with a constant; it must fail.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(fail("verify")(io::Error::other(
            "setuid(0) succeeded after the drop",
        )));
    }
    Ok(())
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(option, arg, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Empties the permitted, effective and inheritable sets (capset, version 3).
fn clear_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) reads one header and two data structs (version 3).
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            user: "_logwell".into(),
            uid: 100,
            gid: 4,
            groups: vec![4, 65534],
        }
    }

    fn map(s: &str) -> Option<String> {
        Some(s.into())
    }

    /// Issue 35: a container that maps only root (rootless podman's default, an LXC with one
    /// id) cannot become `_logwell`; that is said before the fork instead of failing in it.
    #[test]
    fn the_drop_is_checked_against_the_namespace_maps() {
        let full = map("         0          0 4294967295\n");
        assert_eq!(
            unmapped(&id(), full.clone(), full.clone(), map("allow\n")),
            None
        );
        assert_eq!(
            unmapped(&id(), None, None, None),
            None,
            "nothing to read: no check"
        );
        let root_only = map("0 1000 1\n");
        assert!(unmapped(&id(), root_only.clone(), full.clone(), None)
            .unwrap()
            .contains("no uid 100"));
        let no_nobody = map("0 100000 65536\n");
        assert!(unmapped(&id(), full.clone(), no_nobody.clone(), None).is_none());
        assert!(unmapped(&id(), full.clone(), map("0 100000 100\n"), None)
            .unwrap()
            .contains("no gid 65534"));
        assert!(unmapped(&id(), full.clone(), full, map("deny\n"))
            .unwrap()
            .contains("setgroups"));
    }
}
