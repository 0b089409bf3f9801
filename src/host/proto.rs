//! The wire protocol between the worker and the privileged parent: one request per
//! `SOCK_SEQPACKET` message (JSON, paths as raw bytes), one reply per request, and the
//! opened descriptor, when there is one, attached to the reply with `SCM_RIGHTS`.
//!
//! This module only encodes and moves messages; what a request may do is decided by
//! `crate::daemon::privsep::policy`. It never interprets network data: the worker sends only paths and
//! modes its own configuration produced.

use std::ffi::OsString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// The largest message either side sends; a longer one is refused.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// A path on the wire: its bytes, so that any Unix path goes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePath(pub(crate) Vec<u8>);

impl WirePath {
    pub(crate) fn from_path(p: &Path) -> WirePath {
        WirePath(p.as_os_str().as_bytes().to_vec())
    }

    pub(crate) fn to_path(&self) -> PathBuf {
        PathBuf::from(OsString::from_vec(self.0.clone()))
    }
}

/// How a file is created: mode bits, owner and group (as [`crate::host::fsops::Create`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireCreate {
    pub(crate) mode: u32,
    pub(crate) owner: Option<u32>,
    pub(crate) group: Option<u32>,
}

/// What the worker may ask. Anything the parent cannot decode is refused and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Open for appending, creating the file (and the output directory) when missing.
    OpenAppend { path: WirePath, create: WireCreate },
    /// Open an existing file for reading (the compressor's source).
    OpenRead { path: WirePath },
    /// Create a file that must not exist, for writing (the compressor's temporary file).
    CreateNew { path: WirePath, create: WireCreate },
    /// Rename within or between output directories.
    Rename { from: WirePath, to: WirePath },
    /// Remove a file.
    Unlink { path: WirePath },
    /// Create an output directory (and its missing parents).
    Mkdir { path: WirePath },
    /// Create a directory of a templated output's tree and its missing parents below the
    /// base directory (the base too, when missing), each new one with `create`'s mode and
    /// owner; existing ones are left as they are.
    MakeDirs { path: WirePath, create: WireCreate },
    /// Remove an empty directory of a templated output's tree (never its base directory).
    RemoveDir { path: WirePath },
    /// Set a file's modification time (a compressed generation keeps its original's):
    /// seconds since the epoch and nanoseconds.
    SetModified {
        path: WirePath,
        secs: i64,
        nanos: u32,
    },
    /// Bind the follow service's Unix socket (`[follow] socket`) and send back the
    /// listening socket.
    BindFollowSocket { path: WirePath },
    /// Bind a `unix_datagram` input's socket of the configuration, which a reload added in a
    /// directory the worker cannot write (`/var/lib/haproxy/dev/log`), and send it back.
    BindUnixDatagram { path: WirePath },
    /// Relay an sd_notify message to systemd (no reply: the parent is systemd's main PID).
    Notify { state: String },
}

impl Request {
    /// Whether the parent answers this request.
    pub(crate) fn expects_reply(&self) -> bool {
        !matches!(self, Request::Notify { .. })
    }
}

/// The parent's answer: success (with a descriptor for the `open` requests), or the OS error
/// and a sentence for the worker's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// Done; a descriptor is attached when the request opens a file.
    Ok,
    /// Failed or refused.
    Err { errno: i32, message: String },
}

impl Reply {
    pub(crate) fn from_io(e: &io::Error) -> Reply {
        Reply::Err {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: e.to_string(),
        }
    }
}

/// Sends one message with an optional descriptor.
pub(crate) fn send<T: Serialize>(sock: RawFd, msg: &T, fd: Option<RawFd>) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::other("privsep message too long"));
    }
    let iov = [IoSlice::new(&bytes)];
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message and the descriptors attached to it. `Ok(None)` at end of file (the
/// other side is gone).
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    sock: RawFd,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (n, fds, truncated) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fds = Vec::new();
                for c in m.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = c {
                        // SAFETY: the kernel just installed these descriptors for us.
                        fds.extend(
                            received
                                .into_iter()
                                .map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
                        );
                    }
                }
                let truncated = m
                    .flags
                    .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                break (m.bytes, fds, truncated);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    if truncated {
        return Err(io::Error::other("privsep message truncated"));
    }
    let msg = serde_json::from_slice(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}

/// A connected `SOCK_SEQPACKET` pair, close-on-exec.
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn raw(fd: &OwnedFd) -> RawFd {
        fd.as_raw_fd()
    }

    #[test]
    fn a_request_and_a_descriptor_cross_the_pair() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        let req = Request::OpenRead {
            path: WirePath(b"/var/log/\xffodd".to_vec()),
        };
        send(raw(&a), &req, Some(f.as_raw_fd())).unwrap();
        let (got, fds): (Request, _) = recv(raw(&b)).unwrap().unwrap();
        assert_eq!(got, req);
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(
            recv::<Request>(raw(&b)).unwrap().is_none(),
            "EOF once the peer is gone"
        );
    }

    #[test]
    fn directory_requests_cross_the_pair() {
        let (a, b) = pair().unwrap();
        for req in [
            Request::MakeDirs {
                path: WirePath(b"/var/log/remote/web01".to_vec()),
                create: WireCreate {
                    mode: 0o750,
                    owner: Some(0),
                    group: Some(4),
                },
            },
            Request::RemoveDir {
                path: WirePath(b"/var/log/remote/\xffodd".to_vec()),
            },
        ] {
            send(raw(&a), &req, None).unwrap();
            let (got, fds): (Request, _) = recv(raw(&b)).unwrap().unwrap();
            assert_eq!(got, req);
            assert!(fds.is_empty());
            assert!(req.expects_reply());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_request() {
        let (a, b) = pair().unwrap();
        nix::sys::socket::send(raw(&a), b"{\"op\":\"chmod\"}", MsgFlags::empty()).unwrap();
        assert!(recv::<Request>(raw(&b)).is_err());
    }
}
