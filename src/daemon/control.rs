//! The control socket: a Unix stream socket where `logwell stats` asks for the counters.
//!
//! Protocol: the client sends one line, the command; the daemon answers one JSON line and
//! closes.
//! - `stats`: a [`Snapshot`](crate::stats::Snapshot).
//! - `rotate [TARGET…]` (TARGET is an output name or its file's path, every file output when
//!   none): `{"rotated": [{"output", "file", "to"}], "errors": ["…"]}`.
//!
//! Anything else gets `{"error": "..."}`. The socket is mode 0660 (root:adm when run as root,
//! like the log files), so whoever may read the logs may read the counters.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::stats::Stats;

/// Binds the control socket (synchronously, before the fork, so the root parent can create
/// it where the worker could not).
pub fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(adm)) = nix::unistd::Group::from_name("adm") {
            let _ = std::os::unix::fs::chown(path, None, Some(adm.gid.as_raw()));
        }
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the bound control socket until `stop` becomes true; then removes it (the
/// privileged parent does when the worker may not). Must run inside the tokio runtime.
pub fn spawn(
    listener: std::os::unix::net::UnixListener,
    path: &Path,
    stats: Stats,
    requests: mpsc::Sender<Request>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = UnixListener::from_std(listener)?;
    let path: PathBuf = path.to_path_buf();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, _)) => { tokio::spawn(answer(sock, stats.clone(), requests.clone())); }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                _ = crate::input::stopped(&mut stop) => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// What the control socket asks of the daemon's main loop.
#[derive(Debug)]
pub enum Request {
    /// Rotate these outputs (names or paths; all when empty) and answer with the result.
    Rotate {
        /// Output names or file paths.
        targets: Vec<String>,
        /// The JSON answer.
        reply: oneshot::Sender<serde_json::Value>,
    },
}

async fn answer(sock: UnixStream, stats: Stats, requests: mpsc::Sender<Request>) {
    let (r, mut w) = sock.into_split();
    let mut line = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        BufReader::new(r.take(4096)).read_line(&mut line),
    )
    .await;
    let reply = match (read, line.trim()) {
        (Ok(Ok(_)), "stats") => serde_json::to_string(&stats.snapshot()).unwrap_or_default(),
        (Ok(Ok(_)), command) if command == "rotate" || command.starts_with("rotate ") => {
            let targets = command.split_whitespace().skip(1).map(str::to_string).collect();
            let (reply, answer) = oneshot::channel();
            if requests.send(Request::Rotate { targets, reply }).await.is_err() {
                return;
            }
            match answer.await {
                Ok(json) => json.to_string(),
                Err(_) => return,
            }
        }
        (Ok(Ok(_)), other) => {
            serde_json::json!({ "error": format!("unknown command `{other}`; try `stats` or `rotate`") })
                .to_string()
        }
        _ => return,
    };
    let _ = w.write_all(reply.as_bytes()).await;
    let _ = w.write_all(b"\n").await;
    let _ = w.shutdown().await;
}

/// Asks a running daemon for its counters (the client side of `stats`).
pub fn request(path: &Path, command: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(path)?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    sock.write_all(command.as_bytes())?;
    sock.write_all(b"\n")?;
    let mut reply = String::new();
    sock.read_to_string(&mut reply)?;
    Ok(reply)
}
