//! Unix socket inputs, for `/dev/log`-style local logging: a datagram socket (glibc
//! `syslog()`, `logger -u`) with `SO_PASSCRED` so each message records its sender's
//! pid/uid/gid, and a stream socket (`logger --socket-type stream`) with the peer's
//! credentials from `SO_PEERCRED`. The socket file is created with the configured mode;
//! a stale socket at the path is replaced, anything else there is an error.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::sync::Arc;

use nix::sys::socket::{self, sockopt};
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

fn set_mode(u: &UnixPath) -> std::io::Result<()> {
    std::fs::set_permissions(&u.path, std::fs::Permissions::from_mode(u.mode))
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

/// Binds the datagram socket, with `SO_PASSCRED` and the receive buffer size.
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
        let sock = UnixDatagram::bind(&s.unix.path)?;
        set_mode(&s.unix)?;
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
        let l = UnixListener::bind(&u.path)?;
        set_mode(u)?;
        Ok(l)
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
        slots: Arc::new(Semaphore::new(s.max_connections)),
        limits: StreamLimits::of(s),
        use_sender_timestamp: s.use_sender_timestamp,
        upgrade: stream::Plain,
    });
    tokio::spawn(stream::accept_loop(listener, serving, ctx));
    Ok(())
}
