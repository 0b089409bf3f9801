//! The sd_notify protocol: tells systemd when the daemon is ready, reloading, stopping, what
//! it is doing (`STATUS=`) and that it is alive (`WATCHDOG=1`).
//!
//! Written here rather than taken from the `sd-notify` crate because that crate does not
//! handle an abstract `NOTIFY_SOCKET` (`@name`), which systemd may hand out; libsystemd
//! does, and so does this. The protocol is one datagram of `KEY=value` lines.
//!
//! Without `NOTIFY_SOCKET` every call does nothing, so the daemon runs the same outside
//! systemd.
//!
//! Under privilege separation the worker is not systemd's main PID, and with the default
//! `NotifyAccess=main` systemd ignores its messages. So the worker relays them through the
//! privileged parent (the main PID), which passes on only state, status and watchdog lines;
//! the unit needs no `NotifyAccess=all`. The watchdog is then meant for the parent's PID.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
enum Target {
    /// systemd's socket.
    Socket(UnixDatagram, SocketAddr),
    /// The privileged parent, which sends it on (this process is the worker).
    Parent,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` from the environment.
    pub fn from_env() -> Notifier {
        let worker = crate::host::fsops::privileged_parent();
        let main_pid = if worker {
            nix::unistd::getppid().as_raw() as u32
        } else {
            std::process::id()
        };
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            if worker {
                return Some(Target::Parent);
            }
            let path = path.to_str()?.to_string();
            let addr = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            let sock = UnixDatagram::unbound().ok()?;
            Some(Target::Socket(sock, addr))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == main_pid);
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// Sends one notification (several `KEY=value` lines). Failures are logged, not fatal:
    /// systemd may simply not be listening.
    pub fn send(&self, state: &str) {
        let sent = match &self.target {
            Some(Target::Socket(sock, addr)) => sock.send_to_addr(state.as_bytes(), addr).map(drop),
            Some(Target::Parent) => {
                crate::host::client::call(&crate::host::proto::Request::Notify {
                    state: state.to_string(),
                })
                .map(drop)
            }
            None => Ok(()),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as systemd advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` systemd 253+ expects.
    pub fn reloading(&self) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=Reloading the configuration"
        ));
    }
}
