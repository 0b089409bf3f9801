//! Socket activation: sockets systemd passes to the daemon (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`; descriptors from 3 on), as `syslog.socket` passes
//! `/run/systemd/journal/syslog`.
//!
//! An input takes a passed socket when one matches it: by name (`FileDescriptorName=` equal
//! to the input's name), or by what it is bound to (the same Unix path, or the same IP
//! address and port) and its type (datagram or stream). An input with no match binds its
//! own socket, so one config serves both ways. Passed sockets no input wants are closed with
//! a warning.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{self, sockopt, SockType, SockaddrStorage};

/// The first passed descriptor, by the protocol.
const FIRST_FD: i32 = 3;

/// What a passed socket is bound to.
#[derive(Debug, PartialEq)]
enum Local {
    Unix(PathBuf),
    Inet(SocketAddr),
    Other,
}

#[derive(Debug)]
struct Passed {
    fd: OwnedFd,
    name: Option<String>,
    stream: bool,
    local: Local,
}

/// The sockets systemd passed, until inputs take them.
#[derive(Debug, Default)]
pub struct Activated {
    passed: Vec<Passed>,
}

impl Activated {
    /// Takes the passed sockets from the environment (only when `LISTEN_PID` is this
    /// process), and removes the variables so that no child inherits them.
    pub fn from_env() -> Activated {
        let pid_ok = std::env::var("LISTEN_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            == Some(std::process::id());
        let count = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
            .unwrap_or(0);
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .unwrap_or_default()
            .split(':')
            .map(str::to_string)
            .collect();
        // SAFETY: called at start, before any thread is spawned.
        unsafe {
            std::env::remove_var("LISTEN_PID");
            std::env::remove_var("LISTEN_FDS");
            std::env::remove_var("LISTEN_FDNAMES");
        }
        if !pid_ok || count <= 0 {
            return Activated::default();
        }
        let mut passed = Vec::new();
        for i in 0..count {
            let raw = FIRST_FD + i;
            // SAFETY: systemd passed descriptors FIRST_FD..FIRST_FD+count to this process and
            // nothing else in it owns them.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let _ = nix::fcntl::fcntl(
                &fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            let stream = socket::getsockopt(&fd, sockopt::SockType)
                .map(|t| t == SockType::Stream)
                .unwrap_or(false);
            let local = match socket::getsockname::<SockaddrStorage>(fd.as_raw_fd()) {
                Ok(addr) => {
                    if let Some(u) = addr.as_unix_addr() {
                        u.path()
                            .map_or(Local::Other, |p| Local::Unix(p.to_path_buf()))
                    } else if let Some(v4) = addr.as_sockaddr_in() {
                        Local::Inet(SocketAddr::V4((*v4).into()))
                    } else if let Some(v6) = addr.as_sockaddr_in6() {
                        Local::Inet(SocketAddr::V6((*v6).into()))
                    } else {
                        Local::Other
                    }
                }
                Err(_) => Local::Other,
            };
            let name = names
                .get(i as usize)
                .filter(|n| !n.is_empty() && *n != "unknown")
                .cloned();
            tracing::info!(fd = raw, ?name, ?local, stream, "socket passed by systemd");
            passed.push(Passed {
                fd,
                name,
                stream,
                local,
            });
        }
        Activated { passed }
    }

    fn take(&mut self, input: &str, stream: bool, local: &Local) -> Option<OwnedFd> {
        let at = self.passed.iter().position(|p| {
            p.stream == stream && (p.name.as_deref() == Some(input) || p.local == *local)
        })?;
        let p = self.passed.remove(at);
        tracing::info!(input, local = ?p.local, "using the socket systemd passed");
        Some(p.fd)
    }

    /// A passed Unix socket for this input and path, if any.
    pub fn take_unix(&mut self, input: &str, path: &Path, stream: bool) -> Option<OwnedFd> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.take(input, stream, &Local::Unix(path.to_path_buf()))
            .or_else(|| self.take(input, stream, &Local::Unix(absolute)))
    }

    /// A passed IP socket for this input and address, if any.
    pub fn take_inet(&mut self, input: &str, addr: SocketAddr, stream: bool) -> Option<OwnedFd> {
        self.take(input, stream, &Local::Inet(addr))
    }

    /// Closes the passed sockets no input took, with a warning for each.
    pub fn close_unused(&mut self) {
        for p in self.passed.drain(..) {
            tracing::warn!(name = ?p.name, local = ?p.local, "systemd passed a socket no input uses; closing it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_taken_without_the_variables() {
        let mut a = Activated::default();
        assert!(a
            .take_unix("x", Path::new("/run/systemd/journal/syslog"), false)
            .is_none());
    }

    #[test]
    fn matches_by_path_and_type_or_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let mut a = Activated {
            passed: vec![Passed {
                fd: OwnedFd::from(sock),
                name: Some("local".into()),
                stream: false,
                local: Local::Unix(path.clone()),
            }],
        };
        assert!(
            a.take_unix("other", &path, true).is_none(),
            "a stream input does not take a datagram socket"
        );
        assert!(a.take_unix("other", &path, false).is_some());
        assert!(a.passed.is_empty());
    }
}
