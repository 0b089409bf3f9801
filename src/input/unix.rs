//! Unix socket inputs, for `/dev/log`-style local logging: a datagram socket (glibc
//! `syslog()`, `logger -u`) with `SO_PASSCRED` so each message records its sender's
//! pid/uid/gid, and a stream socket (`logger --socket-type stream`) with the peer's
//! credentials from `SO_PEERCRED`. The socket file is created with the configured mode;
//! a stale socket at the path is replaced, anything else there is an error.
//!
//! The mode is never set through a path that could follow a link: it is set on the socket
//! before `bind` (so the file is created with it, less the umask), then made exact with
//! `fchmodat(AT_SYMLINK_NOFOLLOW)`, which refuses a link planted at the path meanwhile.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::sync::Arc;

use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{FchmodatFlags, Mode};
use tokio::sync::Semaphore;

use super::stream::{self, StreamLimits};
use super::{activation::Activated, dgram, InputContext, InputError};
use crate::config::{StreamSettings, UnixDatagramSettings, UnixPath};

fn prepare_path(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
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
/// set them. Returns whether the socket was passed.
pub fn bind_datagram(
    name: &str,
    s: &UnixDatagramSettings,
    activated: &mut Activated,
) -> Result<(UnixDatagram, bool), InputError> {
    if let Some(fd) = activated.take_unix(name, &s.unix.path, false) {
        let sock = UnixDatagram::from(fd);
        let _ = socket::setsockopt(&sock, sockopt::PassCred, &true);
        return Ok((sock, true));
    }
    let bind = || -> std::io::Result<UnixDatagram> {
        prepare_path(&s.unix.path)?;
        let sock = UnixDatagram::from(bind_with_mode(&s.unix, SockType::Datagram)?);
        socket::setsockopt(&sock, sockopt::PassCred, &true)?;
        if let Some(bytes) = s.receive_buffer_bytes {
            super::udp::set_receive_buffer(&sock, bytes);
        }
        Ok(sock)
    };
    bind()
        .map(|s| (s, false))
        .map_err(path_error(name, &s.unix))
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
