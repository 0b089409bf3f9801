//! Inputs: where messages enter. One file per kind ([`udp`], [`tcp`], [`tls`], [`relp`], [`http`], [`unix`],
//! [`journal`], [`kmsg`], and [`file`](mod@file) for other programs' log files) plus the
//! shared machinery: batched datagram reading ([`dgram`]), the one accept loop and connection
//! loop of every stream input (TCP, Unix stream, TLS) with RFC 6587 framing ([`stream`]), and
//! the limits of network inputs ([`limits`]) and of the process's descriptors ([`nofile`]).
//!
//! Each input is bound first ([`bind`], synchronous, so the daemon can do it as root before it
//! drops privileges, and report every failure with a hint), then spawned ([`spawn`]) as tokio
//! tasks (a UDP socket and the journal: a thread each) that feed their own
//! [`crate::pipeline::Pipeline`]s. Every loop watches the
//! input's stop signal; on stop, an input reads what the kernel already holds for it (queued
//! datagrams, unaccepted connections, unread bytes) before it ends, so a clean shutdown or a
//! reload loses nothing that reached the host.

pub mod activation;
pub mod dgram;
pub mod file;
pub mod http;
pub mod journal;
pub mod kmsg;
pub mod limits;
pub mod nofile;
pub mod relp;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::{InputKind, InputSettings};
use crate::pipeline::{Pipeline, Routing};
use crate::stats::InputStats;

/// Why an input could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Binding a network address failed.
    #[error("input `{input}`: cannot listen on {addr}: {source}{}", bind_hint(source, addr.port()))]
    Bind {
        /// Input name.
        input: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Opening a device or journal failed.
    #[error("input `{input}`: cannot open {what}: {source}{}", device_hint(source))]
    Open {
        /// Input name.
        input: String,
        /// What was being opened.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Binding a Unix socket path failed.
    #[error("input `{input}`: cannot bind {}: {source}{}", path.display(), path_hint(source))]
    BindPath {
        /// Input name.
        input: String,
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn bind_hint(e: &std::io::Error, port: u16) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if port < 1024 => {
            "\n  hint: ports below 1024 need root; start logwelld as root or use a port such as 5514"
        }
        std::io::ErrorKind::AddrInUse => {
            "\n  hint: another program (rsyslog? another logwelld?) listens there; stop it or change `listen`"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "\n  hint: this host has no such address; use 0.0.0.0, [::] or one of its own addresses"
        }
        _ => "",
    }
}

fn device_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "\n  hint: this system has no such device (a container, or an old kernel); remove the input if it is not meant to run here"
        }
        std::io::ErrorKind::PermissionDenied => {
            "\n  hint: the device may not be opened here: a container's device policy (LXC, Proxmox, nspawn, DevicePolicy=), or no CAP_SYSLOG while kernel.dmesg_restrict=1; remove the input if it is not meant to run here"
        }
        _ => "",
    }
}

fn path_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "\n  hint: the socket's directory does not exist; create it (a unit's RuntimeDirectory=) or choose another `path`"
        }
        std::io::ErrorKind::PermissionDenied => {
            "\n  hint: the directory is not writable by logwelld; run it as root or choose another `path`"
        }
        std::io::ErrorKind::AlreadyExists => {
            "\n  hint: a file that is not a socket is in the way; remove it or choose another `path`"
        }
        std::io::ErrorKind::NotADirectory => {
            "\n  hint: a file that is not a directory is on the socket's path; remove it or choose another `path`"
        }
        _ => "",
    }
}

/// A bound input, before it is spawned.
#[derive(Debug)]
pub enum Bound {
    /// UDP sockets, one per address.
    Udp(Vec<std::net::UdpSocket>),
    /// TCP listeners, one per address.
    Tcp(Vec<std::net::TcpListener>),
    /// A Unix datagram socket, and whether systemd passed it (then its path is systemd's).
    UnixDatagram(std::os::unix::net::UnixDatagram, bool),
    /// A Unix stream listener, and whether systemd passed it.
    UnixStream(std::os::unix::net::UnixListener, bool),
    /// `/dev/kmsg`, opened (as root) for reading.
    Kmsg(std::fs::File),
    /// Configured, but nothing to read on purpose here; the reason says why.
    Idle(&'static str),
    /// The journal is opened on the input's own thread when it is spawned.
    Journal,
    /// Files are found and opened on the input's own thread, which follows them.
    Files,
}

impl Bound {
    /// Whether the socket file is ours to remove when the input stops (a Unix socket we
    /// bound, not one systemd passed).
    pub fn owns_path(&self) -> bool {
        matches!(
            self,
            Bound::UnixDatagram(_, false) | Bound::UnixStream(_, false)
        )
    }
}

/// Binds the sockets of one input, taking a socket systemd passed when one matches.
pub fn bind(
    settings: &InputSettings,
    activated: &mut activation::Activated,
) -> Result<Bound, InputError> {
    match &settings.kind {
        InputKind::Udp(u) => udp::bind(&settings.name, u, activated).map(Bound::Udp),
        InputKind::Tcp(t) => tcp::bind(&settings.name, t, activated).map(Bound::Tcp),
        InputKind::Tls(t) => tcp::bind(&settings.name, &t.stream, activated).map(Bound::Tcp),
        InputKind::UnixDatagram(u) => unix::bind_datagram(&settings.name, u, activated),
        InputKind::UnixStream(s) => {
            unix::bind_stream(&settings.name, s, activated).map(|(l, a)| Bound::UnixStream(l, a))
        }
        InputKind::Kmsg(k) => {
            kmsg::open(&settings.name, k).map(|f| f.map_or(Bound::Idle(kmsg::IDLE), Bound::Kmsg))
        }
        InputKind::Journal(_) => Ok(Bound::Journal),
        InputKind::File(_) => Ok(Bound::Files),
    }
}

/// What `logwelld --check-config` can tell of an input's environment without taking anything
/// from a running daemon: whether a kmsg device opens, a Unix socket's directory exists, a
/// network address can be bound (a running logwelld holds its own, so `in use` is then
/// expected). Faults found here are warnings: at start they degrade only that input.
pub fn probe(settings: &InputSettings) -> Vec<InputError> {
    let name = &settings.name;
    let mut faults = Vec::new();
    let mut addrs = |listen: &[SocketAddr], tcp: bool| {
        for &addr in listen {
            let r = if tcp {
                std::net::TcpListener::bind(addr).map(drop)
            } else {
                std::net::UdpSocket::bind(addr).map(drop)
            };
            if let Err(source) = r {
                faults.push(InputError::Bind {
                    input: name.clone(),
                    addr,
                    source,
                });
            }
        }
    };
    match &settings.kind {
        InputKind::Udp(u) => addrs(&u.listen, false),
        InputKind::Tcp(t) => addrs(&t.listen, true),
        InputKind::Tls(t) => addrs(&t.stream.listen, true),
        InputKind::Kmsg(k) => {
            if let Err(e) = kmsg::open(name, k) {
                faults.push(e);
            }
        }
        InputKind::UnixDatagram(_) | InputKind::UnixStream(_) => {
            if let Some(path) = socket_path(settings) {
                if let Err(source) = unix::can_bind(path) {
                    faults.push(InputError::BindPath {
                        input: name.clone(),
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        InputKind::Journal(_) | InputKind::File(_) => {}
    }
    faults
}

/// The socket file of a Unix socket input.
pub fn socket_path(settings: &InputSettings) -> Option<&Path> {
    match &settings.kind {
        InputKind::UnixDatagram(u) => Some(&u.unix.path),
        InputKind::UnixStream(s) => s.unix.as_ref().map(|u| u.path.as_path()),
        _ => None,
    }
}

/// Counts running tasks; the daemon waits until every clone is dropped.
#[derive(Clone, Debug)]
pub struct Tracker(#[allow(dead_code)] mpsc::Sender<()>);

/// Waits for every [`Tracker`] clone to be dropped.
#[derive(Debug)]
pub struct TrackerWait(mpsc::Receiver<()>);

impl Tracker {
    /// A tracker and its waiter.
    pub fn new() -> (Tracker, TrackerWait) {
        let (tx, rx) = mpsc::channel(1);
        (Tracker(tx), TrackerWait(rx))
    }
}

impl TrackerWait {
    /// Returns once every tracker is gone (drop your own first).
    pub async fn wait(mut self) {
        while self.0.recv().await.is_some() {}
    }
}

/// What every task of one input shares.
#[derive(Clone, Debug)]
pub struct InputContext {
    /// The input's name.
    pub name: Arc<str>,
    /// This host's name, written for local messages without one.
    pub hostname: Arc<str>,
    /// The input's counters.
    pub stats: Arc<InputStats>,
    /// The routing table.
    pub routing: watch::Receiver<Arc<Routing>>,
    /// Becomes `true` when the input must stop (shutdown, or a reload that changed it).
    pub stop: watch::Receiver<bool>,
    /// Held by every task of the input (per-input and daemon-wide).
    pub trackers: (Tracker, Tracker),
    /// Where state that outlives the process is kept (`[daemon] state_dir`): the journal
    /// cursor, the kmsg sequence number.
    pub state_dir: Arc<Path>,
    /// The input's limits (`permit`, per-peer connections and rate, frame timeout); `None`
    /// when it has none, so its loops pay nothing. Set by the network inputs' `spawn`.
    pub limiter: Option<Arc<limits::Limiter>>,
    /// The body parsers the input runs on each message (`parse`), in order.
    pub parsers: Arc<[crate::parse::body::BodyParser]>,
    /// Header values taken from the fields they read (`severity_from`, …).
    pub header_from: Arc<crate::parse::body::HeaderFrom>,
}

impl InputContext {
    /// The source of messages from a local peer (or of a socket whose datagrams fill in
    /// their own peer): no address, this host's name.
    pub fn local_source(&self, use_sender_timestamp: bool) -> crate::message::Source {
        crate::message::Source {
            input: self.name.clone(),
            peer: None,
            creds: None,
            default_host: self.hostname.clone(),
            use_sender_timestamp,
            tls_peer: None,
        }
    }

    /// A fresh pipeline for a new task.
    pub fn pipeline(&self) -> Pipeline {
        let mut pipeline = Pipeline::new(self.routing.clone(), self.stats.clone());
        pipeline.parse_bodies(self.parsers.clone(), self.header_from.clone());
        pipeline
    }
}

#[cfg(test)]
impl InputContext {
    /// A context for unit tests: input `test` on host `host`, reading `routing`, stopped by
    /// `stop`, with no limits, parsers or state directory.
    pub(crate) fn for_test(
        routing: watch::Receiver<Arc<Routing>>,
        stop: watch::Receiver<bool>,
    ) -> InputContext {
        InputContext {
            name: "test".into(),
            hostname: "host".into(),
            stats: Arc::default(),
            routing,
            stop,
            trackers: (Tracker::new().0, Tracker::new().0),
            state_dir: Path::new("/nonexistent").into(),
            limiter: None,
            parsers: Arc::default(),
            header_from: Arc::default(),
        }
    }
}

/// Waits until `stop` becomes true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Spawns the tasks of a bound input. Must run inside the tokio runtime.
pub fn spawn(
    bound: Bound,
    settings: &InputSettings,
    ctx: InputContext,
) -> std::io::Result<Option<tls::Reloader>> {
    match (bound, &settings.kind) {
        (Bound::Udp(sockets), InputKind::Udp(u)) => udp::spawn(sockets, u, ctx),
        (Bound::Tcp(listeners), InputKind::Tcp(t)) => tcp::spawn(listeners, t, ctx),
        (Bound::Tcp(listeners), InputKind::Tls(t)) => {
            return tls::spawn(listeners, t, ctx).map(Some)
        }
        (Bound::UnixDatagram(s, _), InputKind::UnixDatagram(u)) => unix::spawn_datagram(s, u, ctx),
        (Bound::UnixStream(l, _), InputKind::UnixStream(s)) => unix::spawn_stream(l, s, ctx),
        (Bound::Kmsg(f), InputKind::Kmsg(k)) => kmsg::spawn(f, k, ctx),
        (Bound::Journal, InputKind::Journal(j)) => journal::spawn(j, ctx),
        (Bound::Files, InputKind::File(f)) => file::spawn(f, ctx),
        (Bound::Idle(_), _) => Ok(()),
        _ => unreachable!("bound with the settings it is spawned with"),
    }
    .map(|()| None)
}
