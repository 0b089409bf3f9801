//! The daemon's lifecycle: start, reload, shutdown. Owns the running inputs and outputs and
//! the routing table they share; everything else is done by the modules it wires together.
//!
//! - **Start**: load the config (a mistake in it refuses the start, every problem reported at
//!   once), bind every input and the control socket; as root, fork into a privileged parent
//!   and an unprivileged worker ([`privsep`]); then, in the worker, start the runtime, spawn
//!   the output writers and the inputs, serve the control socket.
//! - **A fault in an input's environment** (a device missing or forbidden, an address in use,
//!   a socket directory missing, no journal) never stops the daemon: that input alone is
//!   *degraded*, logged once as a warning with its hint, shown by `logwell stats`, `/metrics`
//!   and `STATUS=`, and tried again at every reload. A system logger's first duty is to keep
//!   the local sockets working.
//! - **SIGHUP**: every file is reopened (what logrotate expects), and the config is reloaded.
//!   A config that does not validate is refused and the running one stays. Outputs and inputs
//!   whose settings did not change keep running untouched: their sockets, connections and
//!   files stay open. A TLS input re-reads its certificate, key and CA, and takes new paths
//!   for them the same way, its listener and connections kept. Changed or removed inputs are stopped the way shutdown stops them, so
//!   nothing they accepted is lost.
//! - **As PID 1** (a container's entry point), logwelld also reaps the orphans the kernel
//!   hands it: the privileged parent does under privilege separation, the daemon's loop
//!   otherwise. Signals work as anywhere else: every one it stops on has a handler.
//! - **SIGTERM / SIGINT**: stop every input (each reads what the kernel already holds for
//!   it), wait for every input task, then close the outputs: each writer writes what is
//!   pending, `fsync`s, and exits. Exit code 0.

pub mod control;
pub mod notify;
pub mod privsep;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::{self, ConfigErrors, ConfigPaths, InputKind, InputSettings, Settings};
use crate::input::activation::Activated;
use crate::input::{self, Bound, InputContext, InputError, Tracker, TrackerWait};
use crate::output::{self, Output};
use crate::pipeline::Routing;
use crate::route::Router;
use crate::stats::InputState;
use crate::stats::Stats;
use crate::store::rotate::Retention;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Privilege separation failed, or the worker ended with a failure.
    #[error(transparent)]
    Privsep(#[from] privsep::PrivsepError),
    /// Another start-up step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    move |source| DaemonError::Io {
        what: what.into(),
        source,
    }
}

/// Loads the config, binds, splits into the privileged parent and the worker (as root,
/// unless `privsep = false`), and runs until SIGTERM or SIGINT.
pub fn run(paths: ConfigPaths) -> Result<(), DaemonError> {
    let settings = config::load(&paths)?;
    init_logging(&settings.daemon.log_level);
    crate::input::nofile::raise_at_start();
    // Everything that needs root happens here, on one thread, before the fork.
    let bound = bind_all(&settings.inputs);
    let control_path = settings.daemon.control_socket.clone();
    let control = control::bind(&control_path).map_err(io_err(format!(
        "cannot open the control socket {}",
        control_path.display()
    )))?;
    let mut lifeline = None;
    if let Some(identity) = privsep::plan(&settings)? {
        let mut cleanup = owned_socket_files(&settings.inputs, &bound);
        cleanup.push(control_path);
        let split = privsep::Split {
            paths: &paths,
            settings: &settings,
            identity,
            cleanup,
        };
        match privsep::fork(split)? {
            privsep::Role::Parent(parent) => {
                // The parent keeps no socket of the worker's: it never touches network data.
                drop(bound);
                drop(control);
                return Ok(parent.finish()?);
            }
            privsep::Role::Worker(l) => lifeline = Some(l),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("logwell-rt")
        .enable_all()
        .build()
        .map_err(io_err("cannot start the runtime"))?;
    runtime.block_on(async move {
        let mut daemon = Daemon::start(paths, settings, bound)?;
        daemon.serve(control, lifeline).await
    })
}

/// The socket files this process created for `inputs` (not those systemd passed).
fn owned_socket_files(
    inputs: &[InputSettings],
    bound: &[Result<Bound, InputError>],
) -> Vec<std::path::PathBuf> {
    inputs
        .iter()
        .zip(bound)
        .filter(|(_, b)| b.as_ref().is_ok_and(Bound::owns_path))
        .filter_map(|(i, _)| input::socket_path(i).map(std::path::Path::to_path_buf))
        .collect()
}

/// Reaps every child that has ended. Only as PID 1 without privilege separation: logwelld
/// starts no process of its own, so its children are orphans the kernel handed it.
fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Diagnostics go to stderr (the journal, under systemd). `RUST_LOG` overrides the config.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Binds every input. A failure is a fault of that input's environment (the configuration
/// was validated): it degrades that input only, when the daemon starts it.
fn bind_all(inputs: &[InputSettings]) -> Vec<Result<Bound, InputError>> {
    let mut activated = Activated::from_env();
    let bound = inputs
        .iter()
        .map(|i| input::bind(i, &mut activated))
        .collect();
    activated.close_unused();
    bound
}

struct RunningInput {
    settings: InputSettings,
    /// A Unix socket file we created (not one systemd passed), removed when the input stops.
    owns_path: bool,
    stop: watch::Sender<bool>,
    tracker: Tracker,
    wait: TrackerWait,
    /// A TLS input's handle to swap its certificates on SIGHUP.
    tls: Option<input::tls::Reloader>,
}

struct Daemon {
    paths: ConfigPaths,
    settings: Settings,
    stats: Stats,
    routing_tx: watch::Sender<Arc<Routing>>,
    outputs: BTreeMap<String, Arc<Output>>,
    writers: Vec<JoinHandle<()>>,
    inputs: BTreeMap<String, RunningInput>,
    reopen_tx: watch::Sender<u64>,
    all: Option<(Tracker, TrackerWait)>,
    hostname: Arc<str>,
    retention: Arc<Retention>,
    /// The live-follow service, when `[follow]` is configured.
    follow: Option<crate::follow::Handle>,
}

impl Daemon {
    fn start(
        paths: ConfigPaths,
        settings: Settings,
        bound: Vec<Result<Bound, InputError>>,
    ) -> Result<Daemon, DaemonError> {
        let (reopen_tx, _) = watch::channel(0u64);
        let (routing_tx, _) = watch::channel(Arc::new(Routing::default()));
        let mut daemon = Daemon {
            paths,
            hostname: Arc::from(settings.daemon.hostname.as_str()),
            settings: settings.clone(),
            stats: Stats::new(),
            routing_tx,
            outputs: BTreeMap::new(),
            writers: Vec::new(),
            inputs: BTreeMap::new(),
            reopen_tx,
            all: Some(Tracker::new()),
            retention: Retention::new(settings.retention.clone()),
            follow: None,
        };
        daemon
            .apply_outputs(&settings)
            .map_err(io_err("cannot start an output writer"))?;
        for (i, b) in settings.inputs.iter().zip(bound) {
            daemon.set_up_input(i, b);
        }
        warn_duplicates(&settings.inputs);
        log_config_warnings(&settings);
        daemon.stats.set_config_warnings(settings.warnings.clone());
        tracing::info!(
            inputs = settings.inputs.len(),
            outputs = settings.outputs.len(),
            rules = settings.rules.len(),
            "logwelld {} ready",
            env!("CARGO_PKG_VERSION")
        );
        Ok(daemon)
    }

    /// Spawns outputs that are new or changed, reuses the others, and publishes the new
    /// routing table.
    fn apply_outputs(&mut self, settings: &Settings) -> std::io::Result<()> {
        self.writers.retain(|w| !w.is_finished());
        self.retention.set_limits(settings.retention.clone());
        let mut outputs = BTreeMap::new();
        let mut table = Vec::new();
        for o in &settings.outputs {
            let same_path = self.outputs.values().find(|e| e.can_reconfigure(o));
            let output = match (self.outputs.get(&o.name), same_path) {
                (Some(existing), _) if existing.settings == *o => existing.clone(),
                // Same file, new settings: keep its writer, so lines stay in order.
                (_, Some(existing)) => existing.reconfigure(o, &self.stats),
                _ => {
                    let (output, thread) = output::spawn(
                        o,
                        &self.stats,
                        self.reopen_tx.subscribe(),
                        self.retention.clone(),
                        tokio::runtime::Handle::current(),
                    )?;
                    self.writers.push(thread);
                    output
                }
            };
            outputs.insert(o.name.clone(), output.clone());
            table.push(output);
        }
        let router = Router::new(settings.rules.clone(), table.len());
        self.routing_tx.send_replace(Arc::new(Routing {
            router,
            outputs: table,
        }));
        self.outputs = outputs;
        Ok(())
    }

    /// Starts an input that was bound, or records why it could not be: a fault of its
    /// environment degrades this input alone (logged once, counted, shown in `STATUS=`),
    /// and the next reload tries again.
    fn set_up_input(&mut self, settings: &InputSettings, bound: Result<Bound, InputError>) {
        let stats = self.stats.input(&settings.name);
        let idle = match &bound {
            Ok(Bound::Idle(reason)) => Some(*reason),
            _ => None,
        };
        let started = bound
            .map_err(|e| e.to_string())
            .and_then(|b| self.start_input(settings, b).map_err(|e| e.to_string()));
        match (started, idle) {
            (Ok(()), None) => stats.set_state(InputState::Running, ""),
            (Ok(()), Some(reason)) => {
                tracing::info!(input = %settings.name, "input stays idle: {reason}");
                stats.set_state(InputState::Idle, reason);
            }
            (Err(e), _) => {
                tracing::warn!(input = %settings.name, "input degraded, the others run on (a reload tries it again): {e}");
                stats.set_state(InputState::Degraded, &e);
            }
        }
    }

    fn start_input(&mut self, settings: &InputSettings, bound: Bound) -> std::io::Result<()> {
        let (stop, stop_rx) = watch::channel(false);
        let (tracker, wait) = Tracker::new();
        let all = self.all.as_ref().expect("not shut down").0.clone();
        let ctx = InputContext {
            name: Arc::from(settings.name.as_str()),
            hostname: self.hostname.clone(),
            stats: self.stats.input(&settings.name),
            routing: self.routing_tx.subscribe(),
            stop: stop_rx,
            trackers: (tracker.clone(), all),
            state_dir: Arc::from(self.settings.daemon.state_dir.as_path()),
            limiter: None,
            parsers: settings.parse.clone().into(),
            header_from: Arc::new(settings.header_from.clone()),
        };
        let owns_path = bound.owns_path();
        let tls = input::spawn(bound, settings, ctx)?;
        self.inputs.insert(
            settings.name.clone(),
            RunningInput {
                settings: settings.clone(),
                owns_path,
                stop,
                tracker,
                wait,
                tls,
            },
        );
        Ok(())
    }

    /// Stops an input and waits until its tasks have written everything they read.
    async fn stop_input(running: RunningInput) {
        let _ = running.stop.send(true);
        drop(running.tracker);
        running.wait.wait().await;
        if running.owns_path {
            remove_socket_file(&running.settings);
        }
    }

    async fn serve(
        &mut self,
        control: std::os::unix::net::UnixListener,
        lifeline: Option<std::os::fd::OwnedFd>,
    ) -> Result<(), DaemonError> {
        let mut hup = signal(SignalKind::hangup()).map_err(io_err("cannot handle SIGHUP"))?;
        let mut term = signal(SignalKind::terminate()).map_err(io_err("cannot handle SIGTERM"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(io_err("cannot handle SIGINT"))?;
        let init = std::process::id() == 1;
        let mut child = signal(SignalKind::child()).map_err(io_err("cannot handle SIGCHLD"))?;
        self.follow = crate::follow::start(&self.settings, self.stats.clone())
            .await
            .map_err(io_err("cannot start the follow service"))?;
        let (control_stop, control_stop_rx) = watch::channel(false);
        let (requests_tx, mut requests) = tokio::sync::mpsc::channel(16);
        let control = control::spawn(
            control,
            &self.settings.daemon.control_socket,
            self.stats.clone(),
            requests_tx,
            control_stop_rx,
        )
        .map_err(io_err(format!(
            "cannot open the control socket {}",
            self.settings.daemon.control_socket.display()
        )))?;
        let notifier = notify::Notifier::from_env();
        notifier.send(&format!("READY=1\nSTATUS={}", self.status()));
        let mut status_tick = tokio::time::interval(std::time::Duration::from_secs(10));
        // The privileged parent's death ends the worker too (it also gets SIGTERM).
        let parent_gone = privsep::parent_gone(lifeline);
        tokio::pin!(parent_gone);
        let mut watchdog_tick = tokio::time::interval(
            notifier
                .watchdog_interval()
                .unwrap_or(std::time::Duration::from_secs(3600)),
        );
        loop {
            tokio::select! {
                _ = status_tick.tick() => notifier.send(&format!("STATUS={}", self.status())),
                _ = watchdog_tick.tick(), if notifier.watchdog_interval().is_some() => {
                    // Only while every writer answers: a wedged pipeline is restarted.
                    if self.healthy(notifier.watchdog_interval().unwrap_or_default()).await {
                        notifier.send("WATCHDOG=1");
                    } else {
                        tracing::error!("a writer does not answer; withholding the watchdog ping");
                    }
                }
                _ = hup.recv() => {
                    notifier.reloading();
                    self.reload().await;
                    notifier.send(&format!("READY=1\nSTATUS={}", self.status()));
                }
                Some(request) = requests.recv() => self.handle(request).await,
                _ = child.recv(), if init => reap_orphans(),
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break }
                _ = &mut parent_gone => { tracing::warn!("the privileged parent is gone: shutting down"); break }
            }
        }
        notifier.send("STOPPING=1\nSTATUS=Writing what was received and stopping");
        self.shutdown().await;
        let _ = control_stop.send(true);
        let _ = control.await;
        Ok(())
    }

    /// One line for systemd's `STATUS=`.
    fn status(&self) -> String {
        let s = self.stats.snapshot();
        let degraded = s.degraded_inputs();
        let received: u64 = s.inputs.values().map(|i| i.received).sum();
        let dropped: u64 = s.inputs.values().map(|i| i.dropped).sum::<u64>()
            + s.outputs.values().map(|o| o.dropped).sum::<u64>();
        let written: u64 = s.outputs.values().map(|o| o.written).sum();
        let errors: u64 = s.outputs.values().map(|o| o.errors).sum();
        let inputs = if degraded.is_empty() {
            format!("{} inputs", s.inputs.len())
        } else {
            format!(
                "{} inputs ({} degraded: {})",
                s.inputs.len(),
                degraded.len(),
                degraded.join(", ")
            )
        };
        format!(
            "{inputs}, {} outputs; received {received}, written {written}, dropped {dropped}, write errors {errors}",
            s.outputs.len()
        )
    }

    /// Whether every writer answers within `within`.
    async fn healthy(&self, within: std::time::Duration) -> bool {
        let mut answers = Vec::new();
        for o in self.outputs.values() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if o.ctl.send(output::WriterCommand::Ping(tx)).is_err() {
                return false;
            }
            answers.push(rx);
        }
        tokio::time::timeout(within, async {
            for a in answers {
                if a.await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    async fn handle(&mut self, request: control::Request) {
        match request {
            control::Request::Rotate { targets, reply } => {
                let _ = reply.send(self.rotate(&targets).await);
            }
        }
    }

    /// Rotates the named outputs (by name or file path; every one when `targets` is empty).
    async fn rotate(&self, targets: &[String]) -> serde_json::Value {
        let mut rotated = Vec::new();
        let mut errors = Vec::new();
        let chosen: Vec<&Arc<Output>> = if targets.is_empty() {
            // What another program rotates (`rotated_by = "logrotate"`) is left to it.
            self.outputs
                .values()
                .filter(|o| o.file().is_some_and(|f| !f.rotated_elsewhere))
                .collect()
        } else {
            let mut chosen = Vec::new();
            for t in targets {
                let found = self.outputs.values().find(|o| {
                    o.name == *t
                        || o.file().is_some_and(|f| {
                            f.path == std::path::Path::new(t)
                                || std::fs::canonicalize(t).ok().is_some_and(|c| {
                                    std::fs::canonicalize(&f.path).ok() == Some(c.clone())
                                })
                        })
                });
                match found {
                    Some(o) if o.file().is_some_and(|f| f.rotated_elsewhere) => {
                        errors.push(format!(
                            "{}: logrotate rotates it (rotated_by = \"logrotate\"), not logwell",
                            o.name
                        ))
                    }
                    Some(o) => chosen.push(o),
                    None => errors.push(format!("no file output is named or writes `{t}`")),
                }
            }
            chosen
        };
        for o in chosen {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if o.ctl.send(output::WriterCommand::Rotate(tx)).is_err() {
                errors.push(format!("{}: the writer is gone", o.name));
                continue;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(60), rx).await {
                Ok(Ok(Ok(to))) => rotated
                    .push(serde_json::json!({ "output": o.name, "file": o.file().map(|f| &f.path), "to": to })),
                Ok(Ok(Err(e))) => errors.push(e),
                _ => errors.push(format!("{}: no answer from the writer", o.name)),
            }
        }
        serde_json::json!({ "rotated": rotated, "errors": errors })
    }

    async fn reload(&mut self) {
        self.reopen_tx.send_modify(|g| *g += 1);
        let new = match config::load(&self.paths) {
            Ok(s) => {
                log_config_warnings(&s);
                self.stats.set_config_warnings(s.warnings.clone());
                s
            }
            Err(e) => {
                tracing::error!("SIGHUP: files reopened, but the new configuration is refused; the running one stays:\n{e}");
                return;
            }
        };
        if let Err(e) = self.apply_outputs(&new) {
            tracing::error!(error = %e, "SIGHUP: cannot start an output writer; the running configuration stays");
            return;
        }
        let hostname_changed = new.daemon.hostname != self.settings.daemon.hostname;
        // Inputs started below read it.
        self.settings.daemon.state_dir = new.daemon.state_dir.clone();
        self.hostname = Arc::from(new.daemon.hostname.as_str());
        // Stop what changed or went away, before binding its replacement on the same address.
        let names: Vec<String> = self.inputs.keys().cloned().collect();
        for name in names {
            let running = self.inputs.get_mut(&name).expect("listed");
            let keep = !hostname_changed
                && new
                    .inputs
                    .iter()
                    .find(|i| i.name == name)
                    .is_some_and(|i| keep_input(&name, running, i));
            if !keep {
                let running = self.inputs.remove(&name).expect("listed");
                Daemon::stop_input(running).await;
                tracing::info!(input = %name, "input stopped");
            }
        }
        // New and changed inputs, and those a fault left degraded: bind them again.
        for i in &new.inputs {
            if self.inputs.contains_key(&i.name) {
                continue;
            }
            let bound = input::bind(i, &mut Activated::default());
            self.set_up_input(i, bound);
        }
        let inputs: Vec<&str> = new.inputs.iter().map(|i| i.name.as_str()).collect();
        let outputs: Vec<&str> = new.outputs.iter().map(|o| o.name.as_str()).collect();
        self.stats.retain(&inputs, &outputs);
        self.reload_follow(&new).await;
        self.settings = new;
        tracing::info!(
            inputs = self.inputs.len(),
            outputs = self.outputs.len(),
            "SIGHUP: configuration reloaded, files reopened"
        );
    }

    /// Gives the follow service the new files; restarts it when its own settings changed
    /// (its subscribers reconnect and resume by cursor).
    async fn reload_follow(&mut self, new: &Settings) {
        let same = self.follow.as_ref().map(|f| f.settings()) == new.follow.as_ref();
        if same {
            if let Some(f) = &self.follow {
                f.service.update(new);
            }
            return;
        }
        if let Some(old) = self.follow.take() {
            old.stop().await;
        }
        match crate::follow::start(new, self.stats.clone()).await {
            Ok(f) => self.follow = f,
            Err(e) => tracing::error!("SIGHUP: the follow service cannot start: {e}"),
        }
    }

    async fn shutdown(&mut self) {
        // Subscribers first: they only read files, and end at once.
        if let Some(f) = self.follow.take() {
            f.stop().await;
        }
        for running in self.inputs.values() {
            let _ = running.stop.send(true);
        }
        // A writer holding senders back on an unwritable file lets go, so inputs can finish.
        for o in self.outputs.values() {
            let _ = o.ctl.send(output::WriterCommand::Closing);
        }
        let inputs = std::mem::take(&mut self.inputs);
        let (all, all_wait) = self.all.take().expect("shut down once");
        drop(all);
        for (_, running) in inputs {
            drop(running.tracker);
            if running.owns_path {
                remove_socket_file(&running.settings);
            }
        }
        all_wait.wait().await;
        // Every input task is gone: closing the routing table closes the writers' channels.
        self.routing_tx.send_replace(Arc::new(Routing::default()));
        self.outputs.clear();
        let writers = std::mem::take(&mut self.writers);
        let _ = tokio::task::spawn_blocking(move || {
            for w in writers {
                let _ = w.join();
            }
        })
        .await;
        tracing::info!("all messages written; exiting");
    }
}

/// Reading the journal directly and taking journald's forwarded copies writes every
/// message twice; say so at start (it may be intended, so it is not an error).
/// Whether a running input can go on with `new` (its name's settings in the reloaded
/// configuration): the same settings, or a TLS input whose certificate paths alone changed.
/// A TLS input kept re-reads its certificate, key and CA, so SIGHUP renews them even when
/// their times did not change; its listener and connections stay.
fn keep_input(name: &str, running: &mut RunningInput, new: &InputSettings) -> bool {
    let (InputKind::Tls(old_tls), InputKind::Tls(new_tls), Some(reloader)) =
        (&running.settings.kind, &new.kind, &running.tls)
    else {
        return running.settings == *new;
    };
    if !input::tls::Reloader::can_swap(old_tls, new_tls) {
        return false;
    }
    match reloader.reload(new_tls) {
        Ok(()) => {
            tracing::info!(input = %name, cert = %new_tls.cert.display(), "SIGHUP: TLS certificate, key and CA reloaded");
            running.settings = new.clone();
        }
        // The configuration was checked, so a file changed since: the running files stay,
        // and the next SIGHUP tries again (the settings kept differ from the new ones).
        Err(e) => tracing::error!(
            input = %name, error = %e, hint = %e.hint(),
            "SIGHUP: TLS files cannot be loaded; keeping the previous ones"
        ),
    }
    true
}

/// The configuration's warnings and the rsyslog drop-ins read, in the daemon's log.
fn log_config_warnings(settings: &Settings) {
    for f in &settings.rsyslog_files {
        tracing::info!(file = %f.display(), "rsyslog drop-in translated and read");
    }
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
}

fn warn_duplicates(inputs: &[InputSettings]) {
    let journal = inputs
        .iter()
        .find(|i| matches!(i.kind, InputKind::Journal(_)));
    let forwarded = inputs.iter().find(|i| match &i.kind {
        InputKind::UnixDatagram(u) => {
            u.unix.path == std::path::Path::new("/run/systemd/journal/syslog")
        }
        _ => false,
    });
    if let (Some(j), Some(f)) = (journal, forwarded) {
        tracing::warn!(journal = %j.name, forwarded = %f.name, "both the journal and journald's forwarding socket are read: every message will be written twice; drop one of the two inputs");
    }
}

fn remove_socket_file(settings: &InputSettings) {
    if let Some(p) = input::socket_path(settings) {
        let _ = std::fs::remove_file(p);
    }
}
