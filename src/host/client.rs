//! The worker's end of privilege separation: the channel to the privileged parent that
//! [`super::fsops`] and the sd_notify relay send their requests through, once the daemon has
//! installed it after the fork (`crate::daemon::privsep`). Without it, nothing is routed and
//! callers do their system calls themselves.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::proto::{self, Reply, Request};

/// The channel to the parent; one request at a time (requests are rare: opens, rotations).
static CLIENT: OnceLock<Mutex<OwnedFd>> = OnceLock::new();

/// Routes every [`super::fsops`] call of this process to the parent from now on.
pub(crate) fn install(sock: OwnedFd) {
    let _ = CLIENT.set(Mutex::new(sock));
}

/// Whether this process is a privilege-separated worker.
pub(crate) fn active() -> bool {
    CLIENT.get().is_some()
}

/// Sends `request` to the parent and returns its answer: the descriptor of an open request,
/// or the error (refusals are `PermissionDenied`, with the parent's reason).
pub(crate) fn call(request: &Request) -> io::Result<Option<File>> {
    let Some(client) = CLIENT.get() else {
        return Err(io::Error::other("privilege separation is not active"));
    };
    let sock = client.lock().unwrap_or_else(|e| e.into_inner());
    proto::send(sock.as_raw_fd(), request, None)?;
    if !request.expects_reply() {
        return Ok(None);
    }
    match proto::recv::<Reply>(sock.as_raw_fd())? {
        None => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "logwelld's privileged parent is gone; files cannot be opened or rotated",
        )),
        Some((Reply::Ok, mut fds)) => Ok(fds.pop().map(File::from)),
        Some((Reply::Err { errno, message }, _)) => Err(io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            message,
        )),
    }
}

/// `path` made absolute against the current directory (which the parent shares).
pub(crate) fn absolute(path: &Path) -> io::Result<std::path::PathBuf> {
    std::path::absolute(path)
}
