//! Privilege separation, as OpenBSD's syslogd does it: a tiny root parent and an
//! unprivileged worker.
//!
//! ```text
//!  logwelld (root) ── config::load ── bind inputs, control socket, open /dev/kmsg
//!        │ fork (one thread: before any runtime)
//!        ├── parent (root, single thread)          worker (_logwell, groups adm
//!        │   poll: socketpair + signalfd            [+ systemd-journal], no capabilities,
//!        │   · file requests in output dirs ◀────── no_new_privs, PDEATHSIG)
//!        │     and templated outputs' trees
//!        │     → SCM_RIGHTS descriptor ───────────▶ runtime, inputs, parsing, routing,
//!        │   · sd_notify relay          ◀────────── writers, rotation, compression
//!        │   · SIGHUP: re-read config → new dirs,
//!        │     then forward; other signals forwarded
//!        └── exits when the worker exits; the worker exits (SIGTERM, end of file on the
//!            lifeline) when the parent dies
//! ```
//!
//! This module owns the decision (`plan`), the fork (`fork`) and the pieces: the wire
//! format (`proto`), what the parent agrees to do (`policy`), the parent's loop
//! (`parent`) and the worker's drop and client (`worker`). The outputs reach the parent
//! only through [`crate::host::fsops`].
//!
//! What the worker cannot do after the drop: bind a port below 1024 or a socket in a
//! directory only root may write to on reload, read files only root may read (the
//! configuration, TLS keys) on reload, or remove the socket files it was given (the parent
//! removes them when it exits).

pub(crate) mod parent;
pub(crate) mod policy;
pub(crate) mod worker;

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::ForkResult;

use crate::config::{ConfigPaths, InputKind, Settings};
pub use worker::DropError;
use worker::Identity;

/// Why privilege separation could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PrivsepError {
    /// A start-up step of the split failed.
    #[error("privilege separation: {what}: {source}\n  hint: set `privsep = false` in [daemon] to run everything as root (not recommended)")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Threads were running before the fork: their ids would not be dropped.
    #[error("privilege separation: {0} threads run before the fork; the drop must happen in a single-threaded process (a bug in logwelld)")]
    Threads(usize),
    /// The worker could not drop its privileges.
    #[error(transparent)]
    Drop(#[from] DropError),
    /// The worker ended with a failure.
    #[error("the worker {0}")]
    Worker(String),
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> PrivsepError {
    move |source| PrivsepError::Setup { what, source }
}

/// Who the worker will be, when privilege separation happens: on in the config, and
/// started as root. Logs why when it does not.
pub(crate) fn plan(settings: &Settings) -> Result<Option<Identity>, PrivsepError> {
    let d = &settings.daemon;
    if !d.privsep {
        tracing::info!(
            "privilege separation is off (`privsep = false`): everything runs as this user"
        );
        return Ok(None);
    }
    if !nix::unistd::geteuid().is_root() {
        tracing::info!("not started as root: privilege separation is off, and files are written with this user's rights");
        return Ok(None);
    }
    // Validation looked the user up (as root, with privsep on); never fall back to root.
    let Some((uid, gid)) = d.user_ids else {
        return Err(setup("the worker's user was not looked up")(
            std::io::Error::other(format!("user `{}`", d.user)),
        ));
    };
    let journal = settings
        .inputs
        .iter()
        .any(|i| matches!(i.kind, InputKind::Journal(_)));
    let identity = Identity {
        user: d.user.clone(),
        uid,
        gid,
        groups: crate::host::worker_groups(gid, journal),
    };
    if let Some(why) = worker::unmapped(
        &identity,
        read_proc("uid_map"),
        read_proc("gid_map"),
        read_proc("setgroups"),
    ) {
        tracing::warn!("privilege separation skipped: {why}; everything runs as root. Map the worker's ids into the container, or set `privsep = false` in [daemon] to say so");
        return Ok(None);
    }
    Ok(Some(identity))
}

/// `/proc/self/NAME`, or nothing where it cannot be read (then nothing is checked).
fn read_proc(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc/self").join(name)).ok()
}

/// Directories never handed over to the worker, even when configured as the state
/// directory.
const SHARED_DIRS: [&str; 12] = [
    "/", "/run", "/var", "/var/lib", "/var/run", "/var/log", "/tmp", "/var/tmp", "/etc", "/usr",
    "/home", "/dev",
];

/// Creates the state directory and gives it to the worker's user, so the worker writes the
/// journal cursor and kmsg sequence there itself.
pub(crate) fn prepare_state_dir(dir: &Path, id: &Identity) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let real = std::fs::canonicalize(dir)?;
    if SHARED_DIRS.iter().any(|s| real == Path::new(s)) {
        tracing::warn!(dir = %real.display(), "state_dir is a shared system directory; not giving it to the worker (choose a directory of its own, such as /var/lib/logwell)");
        return Ok(());
    }
    let meta = std::fs::metadata(&real)?;
    if meta.uid() != id.uid {
        std::os::unix::fs::chown(&real, Some(id.uid), Some(id.gid))?;
    }
    Ok(())
}

/// Which side of the fork this process is on.
pub(crate) enum Role {
    /// The privileged parent: drop every socket and descriptor meant for the worker, then
    /// [`parent::Parent::run`].
    Parent(Box<parent::Parent>),
    /// The worker, already unprivileged, with the end of the lifeline that reads end of
    /// file when the parent dies.
    Worker(OwnedFd),
}

/// The signals the parent takes through its signalfd and forwards.
fn parent_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    set
}

/// What the fork needs besides the settings.
pub(crate) struct Split<'a> {
    /// Where the configuration is, for the parent's own reload.
    pub(crate) paths: &'a ConfigPaths,
    /// The settings the daemon starts with.
    pub(crate) settings: &'a Settings,
    /// Who the worker becomes.
    pub(crate) identity: Identity,
    /// Socket files the parent removes when the worker has gone.
    pub(crate) cleanup: Vec<PathBuf>,
}

/// Forks. Must run while the process has a single thread. The worker returns as
/// [`Role::Worker`] with its privileges dropped and [`crate::host::fsops`] routed to the
/// parent.
pub(crate) fn fork(split: Split<'_>) -> Result<Role, PrivsepError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads != 1 {
        return Err(PrivsepError::Threads(threads));
    }
    prepare_state_dir(&split.settings.daemon.state_dir, &split.identity)
        .map_err(setup("cannot prepare the state directory"))?;
    let cwd = std::env::current_dir().map_err(setup("cannot read the working directory"))?;
    let policy = policy::Policy::from_settings(split.settings, &cwd);
    let (parent_sock, worker_sock) =
        crate::host::proto::pair().map_err(setup("cannot create the socketpair"))?;
    let (lifeline_parent, lifeline_worker) =
        std::os::unix::net::UnixStream::pair().map_err(setup("cannot create the socketpair"))?;
    // Blocked before the fork so no signal is lost in between; the worker unblocks them.
    let signals = parent_signals();
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), Some(&mut old))
        .map_err(|e| setup("cannot block signals")(e.into()))?;
    let parent_pid = nix::unistd::getpid();
    // SAFETY: the process has one thread (checked above), so the child may run any code.
    match unsafe { nix::unistd::fork() }.map_err(|e| setup("cannot fork")(e.into()))? {
        ForkResult::Child => {
            drop(parent_sock);
            drop(lifeline_parent);
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
                .map_err(|e| setup("cannot unblock signals")(e.into()))?;
            worker::drop_privileges(&split.identity, parent_pid.as_raw())?;
            crate::host::client::install(worker_sock);
            tracing::info!(user = %split.identity.user, uid = split.identity.uid, groups = ?split.identity.groups, "worker: privileges dropped");
            Ok(Role::Worker(OwnedFd::from(lifeline_worker)))
        }
        ForkResult::Parent { child } => {
            drop(worker_sock);
            drop(lifeline_worker);
            let signals =
                SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                    .map_err(|e| setup("cannot create the signalfd")(e.into()))?;
            Ok(Role::Parent(Box::new(parent::Parent {
                worker: child,
                sock: parent_sock,
                _lifeline: OwnedFd::from(lifeline_parent),
                signals,
                policy,
                paths: split.paths.clone(),
                identity: split.identity,
                cwd,
                cleanup: split.cleanup,
            })))
        }
    }
}

impl parent::Parent {
    /// Runs the parent to the end: `Ok` when the worker exited with 0.
    pub(crate) fn finish(self) -> Result<(), PrivsepError> {
        match self.run() {
            parent::Ended::Exited(0) => Ok(()),
            parent::Ended::Exited(code) => {
                Err(PrivsepError::Worker(format!("exited with status {code}")))
            }
            parent::Ended::Killed(sig) => Err(PrivsepError::Worker(format!("was killed by {sig}"))),
        }
    }
}

/// Completes when the parent is gone (end of file on the lifeline); never without one.
pub(crate) async fn parent_gone(lifeline: Option<OwnedFd>) {
    use tokio::io::AsyncReadExt;
    let Some(fd) = lifeline else {
        return std::future::pending().await;
    };
    let std = std::os::unix::net::UnixStream::from(fd);
    if std.set_nonblocking(true).is_err() {
        return std::future::pending().await;
    }
    let Ok(mut stream) = tokio::net::UnixStream::from_std(std) else {
        return std::future::pending().await;
    };
    let mut buf = [0u8; 16];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}
