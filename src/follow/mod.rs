//! Live follow: logwell's files served to any number of subscribers, history first and then
//! live, over HTTP with Server-Sent Events (`curl -N`, browsers, `logwell follow`) and over
//! raw TCP (`nc`).
//!
//! - [`request`]: what a subscriber asks for (file, start, filters, format), from a query
//!   string or a TCP request line.
//! - [`files`]: what can be followed (every file output, and other programs' files) and the
//!   wake-ups that tell followers a file grew.
//! - [`line`](mod@line): a stored line parsed back into fields, filtered, and rendered.
//! - [`subscription`]: one subscriber's stream, read from the files in bounded batches.
//! - [`http`] and [`tcp`]: the listeners, one task per connection; HTTP also on the local
//!   Unix socket, whose clients [`local`] authorises by their credentials.
//!
//! Subscribers read the files, never the receive path, so a slow or stalled subscriber
//! cannot slow ingestion: it only stops reading. Limits on subscribers (in all and per IP or
//! local user), the bearer token, the `Host` check, TLS with client certificates, and CORS
//! are enforced here.

pub mod files;
pub mod http;
pub mod line;
pub mod local;
pub mod request;
pub mod subscription;
pub mod tcp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::config::{FollowSettings, Settings};
use crate::stats::Stats;
use files::{Followable, Registry};
use request::Request;
use subscription::{Driver, Encoding, Subscription};

/// Why a subscription was refused; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request is malformed or asks for what the file cannot give.
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong token.
    #[error("a bearer token is required: send `Authorization: Bearer TOKEN` (or `token=TOKEN`)")]
    Unauthorized,
    /// A local client that may not read the logs (the reason, for it).
    #[error("{0}")]
    Forbidden(String),
    /// The `Host` header names neither this listener nor a configured name (DNS rebinding).
    #[error("{0}")]
    MisdirectedHost(String),
    /// No such file.
    #[error("no followable file `{0}`; GET /v1/files lists them")]
    NotFound(String),
    /// Too many subscribers.
    #[error("{0}")]
    TooMany(String),
}

/// Who a subscriber is, for the limit per peer: an IP address, or a local user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A TCP client.
    Ip(IpAddr),
    /// A client of the local socket, by user id.
    Local(u32),
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Ip(ip) => write!(f, "{ip}"),
            Client::Local(uid) => write!(f, "local uid {uid}"),
        }
    }
}

/// The follow service's shared state.
pub struct Service {
    settings: FollowSettings,
    registry: Arc<Registry>,
    stats: Stats,
    started: Instant,
    subscribers: AtomicUsize,
    per_peer: Mutex<HashMap<Client, usize>>,
    /// Who the local socket serves.
    readers: local::Readers,
    /// Lines sent to subscribers, in all.
    sent: AtomicU64,
    stop: watch::Receiver<bool>,
}

/// A running follow service.
pub struct Handle {
    /// The service, for reload.
    pub service: Arc<Service>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Handle {
    /// Stops the listeners and every subscription, and removes the local socket (where
    /// this process may: under privilege separation the parent does when it exits).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        if let Some(path) = &self.service.settings.socket {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The settings it runs on.
    pub fn settings(&self) -> &FollowSettings {
        &self.service.settings
    }
}

/// Binds the listeners of `settings.follow` and starts serving, on a runtime of its own
/// whose threads run at a lower priority (nice 15) than the receive path: under CPU
/// contention, ingestion wins and followers wait.
pub async fn start(settings: &Settings, stats: Stats) -> std::io::Result<Option<Handle>> {
    let Some(follow) = &settings.follow else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(MAX_READERS)
        .thread_name("logwell-follow")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()?;
    let (stop_tx, stop) = watch::channel(false);
    let registry = Registry::new(settings, stats.clone());
    registry.start_watcher();
    let service = Arc::new(Service {
        settings: follow.clone(),
        registry,
        stats,
        started: Instant::now(),
        subscribers: AtomicUsize::new(0),
        per_peer: Mutex::new(HashMap::new()),
        readers: local::Readers::system(),
        sent: AtomicU64::new(0),
        stop,
    });
    for w in &follow.warnings {
        tracing::warn!("{w}");
    }
    let mut tasks = Vec::new();
    for addr in &follow.listen {
        let listener = bind(&runtime, *addr)?;
        tracing::info!(%addr, "follow service (HTTP) listening");
        tasks.push(runtime.spawn(http::serve(listener, service.clone())));
    }
    for addr in &follow.tcp_listen {
        let listener = bind(&runtime, *addr)?;
        tracing::info!(%addr, "follow service (TCP) listening");
        tasks.push(runtime.spawn(tcp::serve(listener, service.clone())));
    }
    if let Some(path) = &follow.socket {
        let listener = local::bind(path)
            .and_then(|l| {
                let _in = runtime.enter();
                tokio::net::UnixListener::from_std(l)
            })
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen on {} for the follow service: {e} (check its directory, or change [follow] socket)", path.display()),
                )
            })?;
        tracing::info!(path = %path.display(), "follow service (HTTP, local socket) listening");
        tasks.push(runtime.spawn(http::serve_local(listener, service.clone())));
    }
    Ok(Some(Handle {
        service,
        stop: stop_tx,
        tasks,
        runtime: Some(runtime),
    }))
}

/// The kernel send buffer of a follow connection. Set explicitly (which turns off its
/// autotuning to megabytes), it bounds what a subscriber that stopped reading costs: this,
/// its two batches in flight, and no more reading.
const SEND_BUFFER: usize = 16 * 1024;

/// Bounds the kernel send buffer of a subscriber's connection (see [`SEND_BUFFER`]).
fn bound_send_buffer(stream: &tokio::net::TcpStream) {
    let _ = nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
}

/// Threads reading files for subscribers at once; more subscribers queue for them.
const MAX_READERS: usize = 8;

/// Runs on each thread of the follow runtime: nice 15 for this thread only (Linux threads
/// have their own nice value), so the receive path at nice 0 gets about 28 times its CPU
/// share when both want the CPU.
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0); no memory is passed.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 15);
    }
}

fn bind(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpListener> {
    let listen = || -> std::io::Result<tokio::net::TcpListener> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        let _in = runtime.enter();
        tokio::net::TcpListener::from_std(l)
    };
    listen().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for the follow service: {e} (pick a free port in [follow] listen / tcp_listen)"),
        )
    })
}

/// What serves one accepted connection (after TLS, when configured): HTTP or raw TCP.
pub(crate) trait Serve: Clone + Send + Sync + 'static {
    /// Serves the connection from `peer`, accepted on `local`, until it ends or the service
    /// stops.
    fn serve<S>(
        self,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
}

/// Time a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until the service stops; each gets a task of its own, which does the
/// TLS handshake (with a timeout) when the service has TLS, then runs `handler`.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    handler: impl Serve,
) {
    let mut stop = service.stop.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "follow service: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        let _ = stream.set_nodelay(true);
        bound_send_buffer(&stream);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let handler = handler.clone();
        let tls = service.settings.tls.as_ref().map(|t| t.config.clone());
        tokio::spawn(async move {
            let Some(config) = tls else {
                return handler.serve(stream, peer, local).await;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => handler.serve(tls, peer, local).await,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "follow service: TLS handshake failed")
                }
                Err(_) => tracing::info!(%peer, "follow service: TLS handshake timed out"),
            }
        });
    }
}

/// Resolves once `stop` says stop (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Holds one subscriber slot; frees it when dropped.
pub struct Slot {
    service: Arc<Service>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.service.subscribers.fetch_sub(1, Relaxed);
        let mut per = self
            .service
            .per_peer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.client);
            }
        }
    }
}

impl Service {
    /// The registry of followable files.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Takes the files of a reloaded configuration.
    pub fn update(&self, settings: &Settings) {
        self.registry.update(settings);
    }

    /// Who the local socket serves.
    pub fn readers(&self) -> &local::Readers {
        &self.readers
    }

    /// Whether `given` is the configured token (always true without one). Compared in
    /// constant time.
    pub fn authorized(&self, given: Option<&str>) -> bool {
        let Some(want) = &self.settings.token else {
            return true;
        };
        let Some(given) = given else { return false };
        given.len() == want.len()
            && given
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Takes a subscriber slot for `client`, or says which limit is reached.
    fn slot(self: &Arc<Self>, client: Client) -> Result<Slot, Refusal> {
        let mut per = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.subscribers.load(Relaxed);
        if total >= self.settings.max_subscribers {
            return Err(Refusal::TooMany(format!(
                "the follow service has {total} subscribers, its limit (`max_subscribers`)"
            )));
        }
        let mine = per.entry(client).or_insert(0);
        if *mine >= self.settings.max_subscribers_per_peer {
            return Err(Refusal::TooMany(format!(
                "{client} has {mine} subscriptions open, the limit per address (`max_subscribers_per_peer`)"
            )));
        }
        *mine += 1;
        self.subscribers.fetch_add(1, Relaxed);
        Ok(Slot {
            service: self.clone(),
            client,
        })
    }

    /// Checks a request and starts its subscription: the returned receiver yields encoded
    /// batches until the stream ends. The start point is fixed when this returns.
    pub async fn subscribe(
        self: &Arc<Self>,
        request: Request,
        peer: Client,
        encoding: Encoding,
    ) -> Result<(mpsc::Receiver<Vec<u8>>, Followable), Refusal> {
        let file = self.registry.find(request.file.as_deref()).ok_or_else(|| {
            Refusal::NotFound(request.file.clone().unwrap_or_else(|| "(default)".into()))
        })?;
        let mut sub =
            Subscription::new(file.clone(), request, encoding).map_err(Refusal::BadRequest)?;
        let slot = self.slot(peer)?;
        let (sub, first) = tokio::task::spawn_blocking(move || {
            let mut first = subscription::ReadOutcome::default();
            sub.open(&mut first);
            (sub, first)
        })
        .await
        .map_err(|e| Refusal::BadRequest(format!("cannot open the file: {e}")))?;
        let (service, counter) = (self.clone(), self.clone());
        let driver = Driver {
            wake: self.registry.wake(&file),
            heartbeat: self.settings.heartbeat,
            heartbeat_json: Box::new(move || service.heartbeat()),
            stop: self.stop.clone(),
            on_sent: Box::new(move |n| {
                counter.sent.fetch_add(n, Relaxed);
            }),
        };
        // Two batches in flight at most: a stalled subscriber holds 16 KiB of them, no more.
        let (tx, rx) = mpsc::channel(2);
        if !first.bytes.is_empty() {
            let _ = tx.try_send(first.bytes);
        }
        tokio::spawn(async move {
            let _slot = slot;
            subscription::drive(sub, driver, tx).await;
        });
        Ok((rx, file))
    }

    /// The JSON of a heartbeat: time and counters.
    fn heartbeat(&self) -> serde_json::Value {
        serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "subscribers": self.subscribers.load(Relaxed),
            "stats": self.stats.snapshot(),
        })
    }

    /// `/v1/status`.
    pub fn status(&self) -> serde_json::Value {
        let snapshot = self.stats.snapshot();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": snapshot.uptime_secs,
            "follow_uptime_secs": self.started.elapsed().as_secs(),
            "subscribers": self.subscribers.load(Relaxed),
            "lines_sent": self.sent.load(Relaxed),
            "inputs": snapshot.inputs,
            "outputs": snapshot.outputs,
            "files": self.registry.infos(),
        })
    }

    /// `/metrics`, Prometheus text format.
    pub fn metrics(&self) -> String {
        let mut out = self.stats.snapshot().to_prometheus();
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP logwell_follow_subscribers Live-follow subscribers connected now."
        );
        let _ = writeln!(out, "# TYPE logwell_follow_subscribers gauge");
        let _ = writeln!(
            out,
            "logwell_follow_subscribers {}",
            self.subscribers.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP logwell_follow_lines_sent_total Lines sent to live-follow subscribers."
        );
        let _ = writeln!(out, "# TYPE logwell_follow_lines_sent_total counter");
        let _ = writeln!(
            out,
            "logwell_follow_lines_sent_total {}",
            self.sent.load(Relaxed)
        );
        out
    }
}
