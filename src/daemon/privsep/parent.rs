//! The privileged parent's loop. It holds root's rights and does nothing else than:
//! answering the worker's file requests within the [`super::policy::Policy`],
//! relaying the worker's sd_notify messages (it is systemd's main PID), forwarding signals,
//! re-reading the configuration on SIGHUP to learn the new output directories, and exiting
//! when the worker exits.
//!
//! It never reads network data, never runs a thread, and never trusts the worker for what is
//! allowed: the directory list comes from a configuration file it read itself.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::policy::{self, Outcome, Policy};
use super::worker::Identity;
use crate::config::{self, ConfigPaths};
use crate::daemon::notify::Notifier;
use crate::host::proto::{self, Reply, Request};

/// The parent after the fork: what it needs to serve the worker.
pub(crate) struct Parent {
    pub(crate) worker: Pid,
    pub(crate) sock: OwnedFd,
    /// Held open so the worker sees end-of-file when the parent dies.
    pub(crate) _lifeline: OwnedFd,
    pub(crate) signals: SignalFd,
    pub(crate) policy: Policy,
    pub(crate) paths: ConfigPaths,
    pub(crate) identity: Identity,
    pub(crate) cwd: PathBuf,
    /// Socket files bound before the fork, removed when the worker is gone (it may not).
    pub(crate) cleanup: Vec<PathBuf>,
}

/// How the worker ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Exit code.
    Exited(i32),
    /// Killed by a signal.
    Killed(Signal),
}

impl Parent {
    /// Serves until the worker exits; returns how it ended.
    pub(crate) fn run(mut self) -> Ended {
        tracing::info!(worker = self.worker.as_raw(), user = %self.identity.user, dirs = ?self.policy.dirs(), trees = ?self.policy.trees(), "privileged parent: serving the worker's file requests in these output directories and below these base directories of templated outputs");
        let notifier = Notifier::from_env();
        let ended = loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.signals.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on two valid pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "privileged parent: poll failed; stopping the worker");
                let _ = kill(self.worker, Signal::SIGTERM);
                break self.wait_worker();
            }
            if fds[1].revents != 0 {
                if let Some(ended) = self.on_signals() {
                    break ended;
                }
            }
            if fds[0].revents != 0 && !self.on_request(&notifier) {
                // End of file: the worker closed its side, so it is exiting.
                break self.wait_worker();
            }
        };
        for p in &self.cleanup {
            let _ = std::fs::remove_file(p);
        }
        if let Some(p) = self.policy.follow_socket() {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(p);
            }
        }
        ended
    }

    /// Handles pending signals; `Some` once the worker has exited.
    fn on_signals(&mut self) -> Option<Ended> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => {
                    if let Some(ended) = self.reap(WaitPidFlag::WNOHANG) {
                        return Some(ended);
                    }
                }
                Signal::SIGHUP => {
                    self.reload();
                    let _ = kill(self.worker, sig);
                }
                _ => {
                    tracing::debug!(signal = %sig, "privileged parent: forwarding the signal to the worker");
                    let _ = kill(self.worker, sig);
                }
            }
        }
        None
    }

    /// Re-reads the configuration itself: the worker is never asked which directories it may
    /// write to. A configuration that does not validate leaves the directories as they were
    /// (the worker refuses it too).
    fn reload(&mut self) {
        match config::load(&self.paths) {
            Ok(s) => {
                let policy = Policy::from_settings(&s, &self.cwd);
                if policy != self.policy {
                    tracing::info!(dirs = ?policy.dirs(), trees = ?policy.trees(), "privileged parent: SIGHUP: output directories updated");
                }
                self.policy = policy;
                if let Err(e) = super::prepare_state_dir(&s.daemon.state_dir, &self.identity) {
                    tracing::warn!(error = %e, dir = %s.daemon.state_dir.display(), "privileged parent: cannot prepare the state directory");
                }
                if !s.daemon.privsep || s.daemon.user != self.identity.user {
                    tracing::warn!("privileged parent: `privsep` and `user` in [daemon] change only when logwelld restarts");
                }
            }
            Err(_) => tracing::warn!(
                "privileged parent: SIGHUP: the configuration does not validate; the output directories stay as they were"
            ),
        }
    }

    /// Answers one request; `false` at end of file.
    fn on_request(&mut self, notifier: &Notifier) -> bool {
        answer(self.sock.as_raw_fd(), &self.policy, notifier)
    }

    /// Reaps children: the worker, and any orphan the kernel hands to a PID 1 (logwelld as a
    /// container's entry point), which would otherwise stay a zombie. `Some` once the worker
    /// has ended.
    fn reap(&self, flags: WaitPidFlag) -> Option<Ended> {
        loop {
            match waitpid(None, Some(flags)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.worker => {
                    return Some(Ended::Exited(code))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.worker => {
                    return Some(Ended::Killed(sig))
                }
                Ok(WaitStatus::StillAlive) => return None,
                // An orphan reaped, or a stop: go on.
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                // No child at all: the worker is gone.
                Err(_) => return Some(Ended::Exited(1)),
            }
        }
    }

    fn wait_worker(&self) -> Ended {
        self.reap(WaitPidFlag::empty()).unwrap_or(Ended::Exited(1))
    }
}

/// Reads one request from `sock` and answers it within `policy` (relaying a notification
/// instead); `false` at end of file, when the worker has closed its side.
pub(crate) fn answer(sock: RawFd, policy: &Policy, notifier: &Notifier) -> bool {
    let request = match proto::recv::<Request>(sock) {
        Ok(None) => return false,
        Ok(Some((request, fds))) => {
            drop(fds); // the worker has no business sending descriptors
            request
        }
        Err(e) => {
            if e.kind() == std::io::ErrorKind::ConnectionReset {
                return false;
            }
            tracing::warn!(error = %e, "privileged parent: refused a request it cannot decode");
            let reply = Reply::Err {
                errno: libc::EACCES,
                message: format!("refused by logwelld's privileged parent: {e}"),
            };
            let _ = proto::send(sock, &reply, None);
            return true;
        }
    };
    if let Request::Notify { state } = &request {
        let relayed = relay_filter(state);
        if !relayed.is_empty() {
            notifier.send(&relayed);
        }
        return true;
    }
    let outcome = policy.execute(&request);
    match &outcome {
        Outcome::Refused(why) => {
            tracing::warn!(request = %policy::describe(&request), "privileged parent: refused: {why}")
        }
        Outcome::Failed(e) => {
            tracing::debug!(request = %policy::describe(&request), error = %e, "privileged parent: failed")
        }
        Outcome::Done(_) => {
            tracing::debug!(request = %policy::describe(&request), "privileged parent: done")
        }
    }
    let (reply, fd) = outcome.reply();
    if let Err(e) = proto::send(sock, &reply, fd.as_ref().map(|f| f.as_raw_fd())) {
        tracing::warn!(error = %e, "privileged parent: cannot answer the worker");
    }
    true
}

/// The lines of an sd_notify message the parent passes on: state changes, status and
/// watchdog pings. Anything else (`MAINPID=`, `FDSTORE=`, …) is dropped.
pub(crate) fn relay_filter(state: &str) -> String {
    const ALLOWED: [&str; 7] = [
        "READY=1",
        "RELOADING=1",
        "STOPPING=1",
        "WATCHDOG=1",
        "STATUS=",
        "MONOTONIC_USEC=",
        "ERRNO=",
    ];
    state
        .lines()
        .filter(|l| ALLOWED.iter().any(|a| l.starts_with(a)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::proto::{WireCreate, WirePath};
    use std::io::Write;

    /// The parent's side of the protocol, driven over a real socketpair as the worker would.
    #[test]
    fn the_parent_answers_over_the_socketpair_and_refuses_outside_paths() {
        let t = tempfile::tempdir().unwrap();
        let live = t.path().join("syslog");
        let configured = policy::Ownership {
            mode: 0o640,
            owner: None,
            group: None,
        };
        let policy = Policy::new(vec![(live.clone(), configured)]);
        let (worker, parent) = proto::pair().unwrap();
        let server = std::thread::spawn(move || {
            let notifier = Notifier::from_env();
            let mut answered = 0;
            while answer(parent.as_raw_fd(), &policy, &notifier) {
                answered += 1;
            }
            answered
        });
        let ask = |r: &Request| -> (Reply, Vec<OwnedFd>) {
            proto::send(worker.as_raw_fd(), r, None).unwrap();
            proto::recv(worker.as_raw_fd()).unwrap().expect("an answer")
        };
        let create = WireCreate {
            mode: 0o640,
            owner: None,
            group: None,
        };
        let (reply, fds) = ask(&Request::OpenAppend {
            path: WirePath::from_path(&live),
            create,
        });
        assert_eq!(reply, Reply::Ok);
        std::fs::File::from(fds.into_iter().next().expect("a descriptor"))
            .write_all(b"through the parent\n")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&live).unwrap(),
            "through the parent\n"
        );
        for outside in ["/etc/passwd", "/etc/cron.d/evil"] {
            let (reply, fds) = ask(&Request::OpenAppend {
                path: WirePath(outside.into()),
                create,
            });
            let Reply::Err { errno, message } = reply else {
                panic!("{outside} allowed")
            };
            assert_eq!(errno, libc::EACCES);
            assert!(message.contains("not in an output directory"), "{message}");
            assert!(fds.is_empty());
        }
        // Something that is no request at all is refused, and the channel keeps working.
        nix::sys::socket::send(
            worker.as_raw_fd(),
            b"{\"op\":\"chmod\",\"path\":[47]}",
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let (reply, _): (Reply, _) = proto::recv(worker.as_raw_fd()).unwrap().unwrap();
        assert!(
            matches!(
                reply,
                Reply::Err {
                    errno: libc::EACCES,
                    ..
                }
            ),
            "{reply:?}"
        );
        let (reply, _) = ask(&Request::Unlink {
            path: WirePath::from_path(&live),
        });
        assert_eq!(reply, Reply::Ok);
        assert!(!live.exists());
        drop(worker);
        assert_eq!(server.join().unwrap(), 5, "the parent stops at end of file");
    }

    #[test]
    fn only_state_status_and_watchdog_are_relayed() {
        assert_eq!(
            relay_filter("READY=1\nMAINPID=1\nSTATUS=ok\nFDSTORE=1\nWATCHDOG=1"),
            "READY=1\nSTATUS=ok\nWATCHDOG=1"
        );
        assert_eq!(relay_filter("MAINPID=1"), "");
    }
}
