//! Unix socket inputs, for `/dev/log`-style local logging: a datagram socket (glibc
//! `syslog()`, `logger -u`) with `SO_PASSCRED` so each message records its sender's
//! pid/uid/gid, and a stream socket (`logger --socket-type stream`) with the peer's
//! credentials from `SO_PEERCRED`. The socket file is created with the configured mode;
//! a stale socket or a link to nothing at the path is replaced, anything else there is an
//! error.
//!
//! `/dev/log` is special, as in rsyslog's imuxsock: logwelld binds it only where nothing else
//! provides it (sysvinit, a container without systemd, a chroot). Where journald runs it owns
//! `/dev/log`, and where the path is a socket mounted from elsewhere (a container sharing its
//! host's), that is where programs' messages go: the input then stays idle and never touches
//! the path.
//!
//! The mode is never set through a path that could follow a link: it is set on the socket
//! before `bind` (so the file is created with it, less the umask), then made exact with
//! `fchmodat(AT_SYMLINK_NOFOLLOW)`, which refuses a link planted at the path meanwhile.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::sync::Arc;

use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{FchmodatFlags, Mode};
use tokio::sync::Semaphore;

use super::stream::{self, StreamLimits};
use super::{activation::Activated, dgram, Bound, InputContext, InputError};
use crate::config::{StreamSettings, UnixDatagramSettings, UnixPath};

/// Why a `/dev/log` input is idle where journald runs (`logwell stats` shows it).
pub const DEV_LOG_JOURNALD: &str =
    "journald provides /dev/log on this host and forwards what it receives to syslog.socket";

/// Why a `/dev/log` input is idle where the socket is mounted from elsewhere.
pub const DEV_LOG_MOUNTED: &str = "/dev/log is a socket mounted from elsewhere (a container sharing its host's); what programs log there goes to that logger";

/// Why an input on journald's forwarding socket is idle where journald does not run.
pub const NO_JOURNALD: &str = "journald does not run on this host, so nothing forwards to this socket; local programs log through /dev/log";

/// Why a system socket must be left alone, for the file system under `root` (`/`, or a test's
/// directory). Two paths are another program's to provide:
/// - `/dev/log`, where journald runs (its `run/systemd/journal/dev-log` exists), or where a
///   socket from another file system is mounted over it (a bind mount shows the device of
///   the file system it came from);
/// - journald's forwarding socket `/run/systemd/journal/syslog` (syslog.socket's), where
///   journald does not run: binding it would only create `/run/systemd` on a host without
///   systemd, which some programs take for a sign that systemd runs.
///
/// A socket systemd passes is taken before this is asked.
fn provided_elsewhere(path: &Path, root: &Path) -> Option<&'static str> {
    let journal = root.join("run/systemd/journal");
    if path == root.join("dev/log") {
        if std::fs::symlink_metadata(journal.join("dev-log")).is_ok() {
            return Some(DEV_LOG_JOURNALD);
        }
        let m = std::fs::symlink_metadata(path).ok()?;
        let dir = std::fs::metadata(path.parent()?).ok()?;
        return (m.file_type().is_socket() && m.dev() != dir.dev()).then_some(DEV_LOG_MOUNTED);
    }
    if path == journal.join("syslog") && std::fs::symlink_metadata(journal.join("socket")).is_err()
    {
        return Some(NO_JOURNALD);
    }
    None
}

/// Whether logwelld, as this user, could bind `path` at start (for `--check-config`): it is
/// left alone where another program provides it; otherwise its nearest existing directory
/// (the rest is created) must be a directory this user may write to.
pub fn can_bind(path: &Path) -> std::io::Result<()> {
    if provided_elsewhere(path, Path::new("/")).is_some() {
        return Ok(());
    }
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => {
                return nix::unistd::access(d, nix::unistd::AccessFlags::W_OK)
                    .map_err(std::io::Error::from)
            }
            Ok(_) => return Err(std::io::Error::from(std::io::ErrorKind::NotADirectory)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir = d.parent(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn prepare_path(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        // A link to nothing (journald's `/dev/log` where journald does not run).
        Ok(m) if m.file_type().is_symlink() && std::fs::metadata(path).is_err() => {
            std::fs::remove_file(path)
        }
        // An empty file: the mount point systemd leaves for a unit's `BindReadOnlyPaths=`
        // (haproxy's /var/lib/haproxy/dev/log), which rsyslog replaces with its socket too.
        // A file with anything in it is never removed.
        Ok(m) if m.file_type().is_file() && m.len() == 0 => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists)),
        Err(_) => Ok(()),
    }
}

/// A Unix socket of `kind` bound at `u.path` with exactly `u.mode`, set without following a
/// link at the path (see the module doc).
fn bind_with_mode(u: &UnixPath, kind: SockType) -> std::io::Result<OwnedFd> {
    let mode = Mode::from_bits_truncate(u.mode);
    let fd = socket::socket(AddressFamily::Unix, kind, SockFlag::SOCK_CLOEXEC, None)?;
    // Linux creates the socket file with the socket inode's mode, less the umask.
    nix::sys::stat::fchmod(&fd, mode)?;
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(&u.path)?)?;
    // The umask may have narrowed it.
    set_mode(u)?;
    Ok(fd)
}

/// Sets the mode of the file at `u.path` exactly, on the file itself, never a link's target
/// (a link there fails with `EOPNOTSUPP`).
fn set_mode(u: &UnixPath) -> std::io::Result<()> {
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &u.path,
        Mode::from_bits_truncate(u.mode),
        FchmodatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

fn path_error<'a>(
    name: &'a str,
    u: &'a UnixPath,
) -> impl FnOnce(std::io::Error) -> InputError + 'a {
    move |source| InputError::BindPath {
        input: name.to_string(),
        path: u.path.clone(),
        source,
    }
}

/// Binds the datagram socket, with `SO_PASSCRED` and the receive buffer size; or takes the
/// one systemd passed for this path (`syslog.socket`), leaving its mode and buffer as systemd
/// set them; or nothing (idle) for a system socket another program provides (see
/// [`provided_elsewhere`]).
pub fn bind_datagram(
    name: &str,
    s: &UnixDatagramSettings,
    activated: &mut Activated,
) -> Result<Bound, InputError> {
    if let Some(fd) = activated.take_unix(name, &s.unix.path, false) {
        let sock = UnixDatagram::from(fd);
        let _ = socket::setsockopt(&sock, sockopt::PassCred, &true);
        return Ok(Bound::UnixDatagram(sock, true));
    }
    if let Some(why) = provided_elsewhere(&s.unix.path, Path::new("/")) {
        return Ok(Bound::Idle(why));
    }
    let bind = || -> std::io::Result<UnixDatagram> {
        if crate::host::fsops::privileged_parent() {
            // A reload in the worker: the parent binds it, as root, from its own reading of
            // the configuration (a directory such as /var/lib/haproxy/dev is root's).
            use crate::host::{client, proto};
            let request = proto::Request::BindUnixDatagram {
                path: proto::WirePath::from_path(&client::absolute(&s.unix.path)?),
            };
            let file = client::call(&request)?
                .ok_or_else(|| std::io::Error::other("the privileged parent sent no socket"))?;
            return Ok(UnixDatagram::from(OwnedFd::from(file)));
        }
        bind_datagram_here(&s.unix.path, s.unix.mode, s.receive_buffer_bytes)
            .map(UnixDatagram::from)
    };
    bind()
        .map(|s| Bound::UnixDatagram(s, false))
        .map_err(path_error(name, &s.unix))
}

/// Binds a datagram socket at `path` with `mode`, `SO_PASSCRED` and the receive buffer, in
/// this process (the privileged parent runs it for the worker at a reload).
pub(crate) fn bind_datagram_here(
    path: &Path,
    mode: u32,
    buffer: Option<usize>,
) -> std::io::Result<OwnedFd> {
    let u = UnixPath {
        path: path.to_path_buf(),
        mode,
    };
    prepare_path(&u.path)?;
    let fd = bind_with_mode(&u, SockType::Datagram)?;
    socket::setsockopt(&fd, sockopt::PassCred, &true)?;
    if let Some(bytes) = buffer {
        let _ = super::udp::set_receive_buffer(&fd, bytes);
    }
    Ok(fd)
}

/// Binds the stream listener.
pub fn bind_stream(
    name: &str,
    s: &StreamSettings,
    activated: &mut Activated,
) -> Result<(UnixListener, bool), InputError> {
    let u = s.unix.as_ref().expect("a unix_stream input has a path");
    if let Some(fd) = activated.take_unix(name, &u.path, true) {
        return Ok((UnixListener::from(fd), true));
    }
    let bind = || -> std::io::Result<UnixListener> {
        prepare_path(&u.path)?;
        let fd = bind_with_mode(u, SockType::Stream)?;
        socket::listen(&fd, Backlog::MAXCONN)?;
        Ok(UnixListener::from(fd))
    };
    bind().map(|l| (l, false)).map_err(path_error(name, u))
}

/// Spawns the datagram reader.
pub fn spawn_datagram(
    sock: UnixDatagram,
    s: &UnixDatagramSettings,
    ctx: InputContext,
) -> std::io::Result<()> {
    sock.set_nonblocking(true)?;
    if let Ok(granted) = socket::getsockopt(&sock, sockopt::RcvBuf) {
        ctx.stats
            .receive_buffer_bytes
            .store(granted as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let sock = tokio::net::UnixDatagram::from_std(sock)?;
    let base = ctx.local_source(s.use_sender_timestamp);
    tokio::spawn(dgram::serve(sock, base, s.max_message_size_bytes, ctx));
    Ok(())
}

/// Spawns the accept loop of the stream socket.
pub fn spawn_stream(l: UnixListener, s: &StreamSettings, ctx: InputContext) -> std::io::Result<()> {
    l.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(l)?;
    let serving = Arc::new(stream::Serving {
        slots: Arc::new(Semaphore::new(super::nofile::connection_cap(
            &ctx.name,
            s.max_connections,
        ))),
        limits: StreamLimits::of(s),
        use_sender_timestamp: s.use_sender_timestamp,
        upgrade: stream::Plain,
        open: stream::Registry::default(),
        protocol: crate::config::StreamProtocol::Syslog,
    });
    tokio::spawn(stream::accept_loop(listener, serving, ctx));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn unix_path(path: &Path, mode: u32) -> UnixPath {
        UnixPath {
            path: path.to_path_buf(),
            mode,
        }
    }

    #[test]
    fn the_socket_gets_exactly_its_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind, mode) in [
            ("dgram", SockType::Datagram, 0o666),
            ("stream", SockType::Stream, 0o660),
            ("private", SockType::Datagram, 0o600),
        ] {
            let path = dir.path().join(name);
            let _fd = bind_with_mode(&unix_path(&path, mode), kind).unwrap();
            let m = std::fs::symlink_metadata(&path).unwrap();
            assert!(m.file_type().is_socket(), "{name}");
            assert_eq!(m.permissions().mode() & 0o7777, mode, "{name}");
        }
    }

    /// Issue 35: `/dev/log` is left alone where journald provides it, whatever is there, and
    /// journald's forwarding socket where journald does not run; any other path, and
    /// `/dev/log` where journald does not run, are logwelld's to bind.
    #[test]
    fn system_sockets_are_left_to_journald() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let journal = root.join("run/systemd/journal");
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        let dev_log = root.join("dev/log");
        let forwarding = journal.join("syslog");
        assert_eq!(provided_elsewhere(&dev_log, root), None);
        assert_eq!(provided_elsewhere(&forwarding, root), Some(NO_JOURNALD));
        // journald starts: its sockets appear, and /dev/log links to one.
        let _socket = UnixDatagram::bind(journal.join("socket")).unwrap();
        let _dev_log = UnixDatagram::bind(journal.join("dev-log")).unwrap();
        std::os::unix::fs::symlink(journal.join("dev-log"), &dev_log).unwrap();
        assert_eq!(provided_elsewhere(&dev_log, root), Some(DEV_LOG_JOURNALD));
        assert_eq!(provided_elsewhere(&forwarding, root), None);
        assert_eq!(provided_elsewhere(&root.join("other.sock"), root), None);
    }

    /// `--check-config` says what the start would meet: missing directories are created, so
    /// they are no fault; a file on the way is.
    #[test]
    fn check_config_knows_missing_directories_are_created() {
        let dir = tempfile::tempdir().unwrap();
        assert!(can_bind(&dir.path().join("a/b/log.sock")).is_ok());
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert_eq!(
            can_bind(&dir.path().join("file/log.sock"))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotADirectory
        );
    }

    /// Issue 35: journald's `/dev/log` link where journald does not run (a container's
    /// `/dev`) points to nothing; it is replaced, as a stale socket is. A link to a file that
    /// exists is never replaced.
    #[test]
    fn a_link_to_nothing_is_replaced_a_link_to_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let dangling = dir.path().join("log");
        std::os::unix::fs::symlink(dir.path().join("gone/dev-log"), &dangling).unwrap();
        let _fd = {
            prepare_path(&dangling).unwrap();
            bind_with_mode(&unix_path(&dangling, 0o666), SockType::Datagram).unwrap()
        };
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_socket());
        let target = dir.path().join("file");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            prepare_path(&link).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    /// Issue 24 item 11: the mode was set with a path `chmod`, which follows a link planted
    /// at the socket's path between `bind` and `chmod`. Setting it never follows a link.
    #[test]
    fn setting_the_mode_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("log.sock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // What the bind left at the path, swapped for the link: the step that sets the
        // mode exactly refuses it.
        assert!(
            set_mode(&unix_path(&link, 0o666)).is_err(),
            "a link was followed"
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // And binding over a link fails (bind never replaces one), leaving the target alone.
        assert!(bind_with_mode(&unix_path(&link, 0o666), SockType::Datagram).is_err());
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
