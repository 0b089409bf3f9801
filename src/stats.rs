//! Counters per input and per output, shared by the control socket (`logwell stats`),
//! `/metrics` and systemd's `STATUS=`. Hot paths add to them once per batch, not once per
//! message. Each input also has a state ([`InputState`]): running, idle on purpose, or
//! degraded by a fault in its environment (a device missing, an address in use), so that a
//! fault that takes one input out shows wherever the counters do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Counters of one input. Survive reloads as long as the input keeps its name.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Messages received.
    pub received: AtomicU64,
    /// Bytes received (frame payloads).
    pub bytes: AtomicU64,
    /// Messages without a recognisable syslog header, stored raw.
    pub malformed: AtomicU64,
    /// Messages cut at `max_message_size_bytes`.
    pub truncated: AtomicU64,
    /// Bodies none of the input's parsers (`parse`) could read: kept as they are.
    pub parse_failed: AtomicU64,
    /// Bodies a parser read in part before a syntax error: the fields read are kept, and the
    /// body too.
    pub parse_partial: AtomicU64,
    /// Datagrams the kernel dropped because the receive buffer was full.
    pub dropped: AtomicU64,
    /// Connections accepted (stream inputs).
    pub connections: AtomicU64,
    /// Connections open now (stream inputs).
    pub active_connections: AtomicU64,
    /// Messages dropped by the per-peer rate limit (`rate_limit_per_sec`).
    pub suppressed: AtomicU64,
    /// Connections closed at once and datagrams dropped: the peer is not in `permit`, or
    /// holds `max_connections_per_peer` connections.
    pub refused: AtomicU64,
    /// Connections closed because a frame stayed incomplete past `frame_timeout_secs`.
    pub frame_timeouts: AtomicU64,
    /// Idle connections closed to make room for a new one when every slot was taken
    /// (`max_connections`).
    pub evicted: AtomicU64,
    /// TLS clients turned away after the connection was accepted: the handshake failed or
    /// timed out (no client certificate when one is required, a certificate from another CA,
    /// …), or the client is not in `permitted_peers`.
    pub tls_refused: AtomicU64,
    /// Faults of the environment met while setting the input up (at start or at a reload):
    /// each one left the input degraded until the next reload.
    pub faults: AtomicU64,
    /// Datagram inputs: the receive buffer the kernel granted (`getsockopt(SO_RCVBUF)`, the
    /// smallest of the input's sockets; the kernel's own figure, twice what was asked, since
    /// it counts its bookkeeping too). 0 for other inputs.
    pub receive_buffer_bytes: AtomicU64,
    /// File inputs: the files followed now (a rotated file still being read counts too).
    pub files: AtomicU64,
    /// File inputs: files found renamed, deleted or replaced (a new inode at the path).
    pub rotations: AtomicU64,
    /// File inputs: files found shorter than the position read (copytruncate): read again
    /// from their start.
    pub truncations: AtomicU64,
    /// File inputs with `multiline`: records of more than one line handed on.
    pub multiline: AtomicU64,
    /// File inputs: bytes the open files hold past what the writers have (their size less
    /// the checkpoint's offsets), measured once a second.
    pub lag_bytes: AtomicU64,
    /// File inputs: paths the patterns match that are no regular file (a FIFO, a directory,
    /// a socket), counted once each and never read.
    pub bad_files: AtomicU64,
    /// File inputs: each open file and its lag, measured with `lag_bytes` (files closed
    /// while idle are left out: they have nothing to read).
    pub watched: Mutex<Vec<WatchedFile>>,
    /// Whether the input runs, and why not (the error and its hint; empty while running).
    pub state: Mutex<(InputState, String)>,
}

/// Files behind their writers that `logwell stats` lists per input; `--json` has them all.
const LAGGING_SHOWN: usize = 10;

/// One file a file input has open, and how far behind its writer the input is: what
/// `logwell stats --json`, `/v1/status` and `/v1/files` (so `logwell follow --list` and the
/// web page) show per file.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WatchedFile {
    /// The path it was found under (where it was before a rotation).
    pub path: String,
    /// Its size when measured, bytes.
    pub size: u64,
    /// The offset after the last line the outputs took: the checkpoint's.
    pub offset: u64,
    /// `size` less `offset`: bytes written to it and not yet handed on.
    pub lag_bytes: u64,
    /// Renamed or deleted (rotated): still read to its end by its descriptor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotated: bool,
}

/// Whether an input runs. Set by the daemon when it sets the input up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputState {
    /// Reading.
    #[default]
    Running,
    /// Configured, but idle on purpose: the reason says why (a kmsg input where journald
    /// reads the kernel log).
    Idle,
    /// A fault in the environment keeps it from reading (the reason says which); the other
    /// inputs run, and the next reload tries again.
    Degraded,
}

impl InputState {
    /// The word `logwell stats` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            InputState::Running => "running",
            InputState::Idle => "idle",
            InputState::Degraded => "degraded",
        }
    }
}

impl InputStats {
    /// Records the input's state and why (empty for running).
    pub fn set_state(&self, state: InputState, reason: &str) {
        if state == InputState::Degraded {
            self.faults.fetch_add(1, Relaxed);
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (state, reason.to_string());
    }
}

/// Counters of one output.
#[derive(Debug)]
pub struct OutputStats {
    /// Messages written to the file.
    pub written: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    /// Failed writes or opens (each retried).
    pub errors: AtomicU64,
    /// Messages given up after the file stayed unwritable and the backlog was full; for a
    /// `users` output, messages dropped because its queue was full.
    pub dropped: AtomicU64,
    /// Templated path: messages whose rendered path would have left the base directory,
    /// written to the fallback file instead.
    pub fallback: AtomicU64,
    /// Templated path: files open now.
    pub open_files: AtomicU64,
    /// `reduce_repeats`: identical consecutive messages counted instead of written.
    pub repeats: AtomicU64,
    /// Forward and Kafka: messages in the action's queue now (memory and disk), delivered
    /// or not.
    pub queued: AtomicU64,
    /// Forward and Kafka: messages of the queue in segment files now.
    pub on_disk: AtomicU64,
    /// Forward and Kafka: messages confirmed delivered (and removed from the queue).
    pub delivered: AtomicU64,
    /// Forward: failed connections, handshakes and writes (each retried after a back-off).
    /// Kafka: failed deliveries of messages: transient errors are retried, permanent ones
    /// (a message over `message.max.bytes`, …) are given up and also counted in `dropped`.
    pub failed: AtomicU64,
    /// Forward: messages sent again after their connection broke before they were
    /// confirmed (the source of duplicates). Kafka: messages sent again after a transient
    /// error.
    pub retried: AtomicU64,
    /// Forward and Kafka: damaged queue segments found at start (torn tails, corruption) or
    /// while reading them.
    pub corrupt: AtomicU64,
    /// Forward and Kafka: how many times the queue reached `max_disk_bytes` and began
    /// holding its senders back.
    pub held_back: AtomicU64,
    /// Forward and Kafka: the queue refuses pushes now (`max_disk_bytes` reached); datagram
    /// inputs drop (and count in `dropped`) what the action's channel cannot hold instead of
    /// waiting.
    pub full: std::sync::atomic::AtomicBool,
    /// Forward and Kafka: the part of `dropped` that datagram inputs dropped at a full queue
    /// (for the action's log line; not shown on its own).
    pub full_drops: AtomicU64,
    /// Kafka: delivery latency summed over delivered messages, in microseconds (from the
    /// hand-over to the producer to the broker's acknowledgement). HTTP: from the batch's
    /// read off the queue to the answer that took the message.
    pub latency_us: AtomicU64,
    /// HTTP: records the endpoint refused (a 4xx, or a row ClickHouse cannot take), written
    /// to the output's dead-letter file instead of blocking the rest.
    pub dead_lettered: AtomicU64,
    /// Bumped by the writer after each write: live followers wait on it instead of polling.
    pub wake: tokio::sync::watch::Sender<u64>,
}

impl Default for OutputStats {
    fn default() -> OutputStats {
        OutputStats {
            written: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            fallback: AtomicU64::new(0),
            open_files: AtomicU64::new(0),
            repeats: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            on_disk: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
            full: std::sync::atomic::AtomicBool::new(false),
            full_drops: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            wake: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// Every counter, by name. Cheap to clone: it is shared.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    inner: Arc<Mutex<Registry>>,
    started: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
struct Registry {
    inputs: BTreeMap<String, Arc<InputStats>>,
    outputs: BTreeMap<String, Arc<OutputStats>>,
    warnings: Vec<String>,
}

/// A snapshot for display.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Snapshot {
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Input counters by input name.
    pub inputs: BTreeMap<String, InputSnapshot>,
    /// Output counters by output name.
    pub outputs: BTreeMap<String, OutputSnapshot>,
    /// What the configuration takes that it cannot fully honour (lines of rsyslog drop-ins
    /// not translated, or that differ in meaning), as `--check-config` shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_warnings: Vec<String>,
}

/// One input's counters at one moment.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct InputSnapshot {
    pub received: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub dropped: u64,
    pub connections: u64,
    pub active_connections: u64,
    #[serde(default)]
    pub parse_failed: u64,
    #[serde(default)]
    pub parse_partial: u64,
    #[serde(default)]
    pub suppressed: u64,
    #[serde(default)]
    pub refused: u64,
    #[serde(default)]
    pub frame_timeouts: u64,
    #[serde(default)]
    pub evicted: u64,
    #[serde(default)]
    pub tls_refused: u64,
    #[serde(default)]
    pub faults: u64,
    /// Datagram inputs: the kernel's receive buffer (0: not a datagram input).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub receive_buffer_bytes: u64,
    /// File inputs: files followed now.
    #[serde(default)]
    pub files: u64,
    /// File inputs: rotations seen (renamed, deleted or replaced files).
    #[serde(default)]
    pub rotations: u64,
    /// File inputs: truncations seen (copytruncate).
    #[serde(default)]
    pub truncations: u64,
    /// File inputs: records of several lines (`multiline`).
    #[serde(default)]
    pub multiline: u64,
    /// File inputs: bytes not yet handed on (size less offset), over the open files.
    #[serde(default)]
    pub lag_bytes: u64,
    /// File inputs: matched paths that are no regular file.
    #[serde(default)]
    pub bad_files: u64,
    /// File inputs: the open files and their lag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watched: Vec<WatchedFile>,
    #[serde(default)]
    pub state: InputState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// One output's counters at one moment.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct OutputSnapshot {
    pub written: u64,
    pub bytes: u64,
    pub errors: u64,
    pub dropped: u64,
    #[serde(default)]
    pub fallback: u64,
    #[serde(default)]
    pub open_files: u64,
    #[serde(default)]
    pub repeats: u64,
    #[serde(default)]
    pub queued: u64,
    #[serde(default)]
    pub on_disk: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub retried: u64,
    #[serde(default)]
    pub corrupt: u64,
    #[serde(default)]
    pub held_back: u64,
    #[serde(default)]
    pub latency_us: u64,
    #[serde(default)]
    pub dead_lettered: u64,
}

impl Stats {
    /// A fresh registry whose uptime starts now.
    pub fn new() -> Stats {
        Stats {
            inner: Arc::default(),
            started: Some(std::time::Instant::now()),
        }
    }

    /// The counters of input `name`, created on first use.
    pub fn input(&self, name: &str) -> Arc<InputStats> {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        reg.inputs.entry(name.to_string()).or_default().clone()
    }

    /// The counters of output `name`, created on first use.
    pub fn output(&self, name: &str) -> Arc<OutputStats> {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        reg.outputs.entry(name.to_string()).or_default().clone()
    }

    /// Forgets inputs and outputs no longer configured (after a reload).
    pub fn retain(&self, inputs: &[&str], outputs: &[&str]) {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        reg.inputs.retain(|k, _| inputs.contains(&k.as_str()));
        reg.outputs.retain(|k, _| outputs.contains(&k.as_str()));
    }

    /// Replaces the configuration's warnings (at start and at each reload).
    pub fn set_config_warnings(&self, warnings: Vec<String>) {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        reg.warnings = warnings;
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            uptime_secs: self.started.map_or(0, |s| s.elapsed().as_secs()),
            inputs: reg
                .inputs
                .iter()
                .map(|(k, s)| {
                    let state = s.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    (
                        k.clone(),
                        InputSnapshot {
                            received: s.received.load(Relaxed),
                            bytes: s.bytes.load(Relaxed),
                            malformed: s.malformed.load(Relaxed),
                            truncated: s.truncated.load(Relaxed),
                            parse_failed: s.parse_failed.load(Relaxed),
                            parse_partial: s.parse_partial.load(Relaxed),
                            dropped: s.dropped.load(Relaxed),
                            connections: s.connections.load(Relaxed),
                            active_connections: s.active_connections.load(Relaxed),
                            suppressed: s.suppressed.load(Relaxed),
                            refused: s.refused.load(Relaxed),
                            frame_timeouts: s.frame_timeouts.load(Relaxed),
                            evicted: s.evicted.load(Relaxed),
                            tls_refused: s.tls_refused.load(Relaxed),
                            faults: s.faults.load(Relaxed),
                            receive_buffer_bytes: s.receive_buffer_bytes.load(Relaxed),
                            files: s.files.load(Relaxed),
                            rotations: s.rotations.load(Relaxed),
                            truncations: s.truncations.load(Relaxed),
                            multiline: s.multiline.load(Relaxed),
                            lag_bytes: s.lag_bytes.load(Relaxed),
                            bad_files: s.bad_files.load(Relaxed),
                            watched: s.watched.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                            state: state.0,
                            reason: state.1,
                        },
                    )
                })
                .collect(),
            outputs: reg
                .outputs
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        OutputSnapshot {
                            written: s.written.load(Relaxed),
                            bytes: s.bytes.load(Relaxed),
                            errors: s.errors.load(Relaxed),
                            dropped: s.dropped.load(Relaxed),
                            fallback: s.fallback.load(Relaxed),
                            open_files: s.open_files.load(Relaxed),
                            repeats: s.repeats.load(Relaxed),
                            queued: s.queued.load(Relaxed),
                            on_disk: s.on_disk.load(Relaxed),
                            delivered: s.delivered.load(Relaxed),
                            failed: s.failed.load(Relaxed),
                            retried: s.retried.load(Relaxed),
                            corrupt: s.corrupt.load(Relaxed),
                            held_back: s.held_back.load(Relaxed),
                            latency_us: s.latency_us.load(Relaxed),
                            dead_lettered: s.dead_lettered.load(Relaxed),
                        },
                    )
                })
                .collect(),
            config_warnings: reg.warnings.clone(),
        }
    }
}

impl Snapshot {
    /// The names of the inputs degraded now (for `STATUS=`).
    pub fn degraded_inputs(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .filter(|(_, i)| i.state == InputState::Degraded)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Every counter in the Prometheus text exposition format (`/metrics`).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP logwell_uptime_seconds Seconds since logwelld started."
        );
        let _ = writeln!(s, "# TYPE logwell_uptime_seconds gauge");
        let _ = writeln!(s, "logwell_uptime_seconds {}", self.uptime_secs);
        type Get<T> = fn(&T) -> u64;
        let inputs: [(&str, &str, &str, Get<InputSnapshot>); 23] = [
            (
                "degraded",
                "gauge",
                "1 while a fault in the environment (a missing device, an address in use) keeps the input from reading.",
                |i| u64::from(i.state == InputState::Degraded),
            ),
            (
                "faults_total",
                "counter",
                "Faults of the environment that left the input degraded (at start or a reload).",
                |i| i.faults,
            ),
            ("received_total", "counter", "Messages received.", |i| {
                i.received
            }),
            ("bytes_total", "counter", "Bytes received.", |i| i.bytes),
            (
                "malformed_total",
                "counter",
                "Messages stored raw, without a syslog header.",
                |i| i.malformed,
            ),
            (
                "truncated_total",
                "counter",
                "Messages cut at max_message_size_bytes.",
                |i| i.truncated,
            ),
            (
                "parse_failed_total",
                "counter",
                "Bodies none of the input's parsers could read, kept as they are.",
                |i| i.parse_failed,
            ),
            (
                "parse_partial_total",
                "counter",
                "Bodies a parser read in part before a syntax error.",
                |i| i.parse_partial,
            ),
            (
                "dropped_total",
                "counter",
                "Datagrams the kernel dropped (receive buffer full).",
                |i| i.dropped,
            ),
            (
                "connections_total",
                "counter",
                "Connections accepted.",
                |i| i.connections,
            ),
            (
                "active_connections",
                "gauge",
                "Connections open now.",
                |i| i.active_connections,
            ),
            (
                "suppressed_total",
                "counter",
                "Messages dropped by the per-peer rate limit.",
                |i| i.suppressed,
            ),
            (
                "refused_total",
                "counter",
                "Connections and datagrams refused by permit or per-peer limits.",
                |i| i.refused,
            ),
            (
                "tls_refused_total",
                "counter",
                "TLS clients refused: failed or timed-out handshake, bad certificate, not permitted.",
                |i| i.tls_refused,
            ),
            (
                "frame_timeouts_total",
                "counter",
                "Connections closed with a frame incomplete too long.",
                |i| i.frame_timeouts,
            ),
            (
                "evicted_total",
                "counter",
                "Idle connections closed to make room when every slot was taken.",
                |i| i.evicted,
            ),
            (
                "receive_buffer_bytes",
                "gauge",
                "Datagram inputs: the receive buffer the kernel granted (getsockopt SO_RCVBUF).",
                |i| i.receive_buffer_bytes,
            ),
            (
                "files",
                "gauge",
                "File inputs: files followed now.",
                |i| i.files,
            ),
            (
                "rotations_total",
                "counter",
                "File inputs: files found renamed, deleted or replaced.",
                |i| i.rotations,
            ),
            (
                "truncations_total",
                "counter",
                "File inputs: files found truncated (copytruncate), read again from their start.",
                |i| i.truncations,
            ),
            (
                "multiline_records_total",
                "counter",
                "File inputs with multiline: records of several lines handed on.",
                |i| i.multiline,
            ),
            (
                "lag_bytes",
                "gauge",
                "File inputs: bytes the open files hold past what was handed on.",
                |i| i.lag_bytes,
            ),
            (
                "bad_files_total",
                "counter",
                "File inputs: matched paths that are no regular file (FIFO, directory, socket), not read.",
                |i| i.bad_files,
            ),
        ];
        for (name, kind, help, get) in inputs {
            let _ = writeln!(s, "# HELP logwell_input_{name} {help}");
            let _ = writeln!(s, "# TYPE logwell_input_{name} {kind}");
            for (input, v) in &self.inputs {
                let _ = writeln!(
                    s,
                    "logwell_input_{name}{{input=\"{}\"}} {}",
                    label(input),
                    get(v)
                );
            }
        }
        let outputs: [(&str, &str, &str, Get<OutputSnapshot>); 16] = [
            ("written_total", "counter", "Messages written.", |o| {
                o.written
            }),
            ("bytes_total", "counter", "Bytes written.", |o| o.bytes),
            (
                "errors_total",
                "counter",
                "Failed writes or opens (each retried).",
                |o| o.errors,
            ),
            (
                "dropped_total",
                "counter",
                "Messages given up after the file stayed unwritable.",
                |o| o.dropped,
            ),
            (
                "fallback_total",
                "counter",
                "Templated path: messages written to the fallback file.",
                |o| o.fallback,
            ),
            (
                "open_files",
                "gauge",
                "Templated path: files open now.",
                |o| o.open_files,
            ),
            (
                "repeats_total",
                "counter",
                "reduce_repeats: repeated messages counted, not written.",
                |o| o.repeats,
            ),
            (
                "queued",
                "gauge",
                "Forward and Kafka: messages in the action's queue (memory and disk).",
                |o| o.queued,
            ),
            (
                "on_disk",
                "gauge",
                "Forward and Kafka: queued messages in segment files.",
                |o| o.on_disk,
            ),
            (
                "delivered_total",
                "counter",
                "Forward and Kafka: messages confirmed delivered (Kafka: acknowledged by the broker).",
                |o| o.delivered,
            ),
            (
                "failed_total",
                "counter",
                "Forward: failed connections and writes (retried); Kafka: failed deliveries (transient ones retried, permanent ones given up and dropped).",
                |o| o.failed,
            ),
            (
                "retried_total",
                "counter",
                "Forward and Kafka: messages sent again (forward: after a broken connection; Kafka: after a transient error).",
                |o| o.retried,
            ),
            (
                "corrupt_total",
                "counter",
                "Forward and Kafka: damaged queue segments found at start or while reading them.",
                |o| o.corrupt,
            ),
            (
                "held_back_total",
                "counter",
                "Forward and Kafka: times the queue reached max_disk_bytes and held its senders back.",
                |o| o.held_back,
            ),
            (
                "delivery_latency_microseconds_total",
                "counter",
                "Kafka and HTTP: delivery latency summed over delivered messages (divide by delivered_total).",
                |o| o.latency_us,
            ),
            (
                "dead_lettered_total",
                "counter",
                "HTTP: records the endpoint refused, written to the output's dead-letter file.",
                |o| o.dead_lettered,
            ),
        ];
        for (name, kind, help, get) in outputs {
            let _ = writeln!(s, "# HELP logwell_output_{name} {help}");
            let _ = writeln!(s, "# TYPE logwell_output_{name} {kind}");
            for (output, v) in &self.outputs {
                let _ = writeln!(
                    s,
                    "logwell_output_{name}{{output=\"{}\"}} {}",
                    label(output),
                    get(v)
                );
            }
        }
        s
    }

    /// The text `logwell stats` prints: one line per input and output.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "uptime {}s", self.uptime_secs);
        let _ = writeln!(
            s,
            "{:<8} {:<20} {:>12} {:>14} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8} {:>12}",
            "",
            "NAME",
            "MESSAGES",
            "BYTES",
            "MALFORMED",
            "TRUNCATED",
            "DROPPED",
            "CONNS",
            "SUPPRESSED",
            "REFUSED",
            "TLS_REFUSED"
        );
        for (name, i) in &self.inputs {
            let _ = writeln!(
                s,
                "{:<8} {:<20} {:>12} {:>14} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8} {:>12}",
                "input",
                name,
                i.received,
                i.bytes,
                i.malformed,
                i.truncated,
                i.dropped,
                i.active_connections,
                i.suppressed,
                i.refused,
                i.tls_refused
            );
            if i.state != InputState::Running {
                let _ = writeln!(s, "{:<8} {:<20} {}: {}", "", "", i.state.as_str(), i.reason);
            }
            if i.receive_buffer_bytes > 0 {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} receive_buffer={}",
                    "", "", i.receive_buffer_bytes
                );
            }
            if i.files + i.rotations + i.truncations > 0 {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} files={} rotations={} truncations={} multiline={} lag_bytes={} bad_files={}",
                    "", "", i.files, i.rotations, i.truncations, i.multiline, i.lag_bytes, i.bad_files
                );
            }
            // The files behind their writers, most behind first.
            let mut lagging: Vec<&WatchedFile> =
                i.watched.iter().filter(|w| w.lag_bytes > 0).collect();
            lagging.sort_by_key(|w| std::cmp::Reverse(w.lag_bytes));
            for w in lagging.iter().take(LAGGING_SHOWN) {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} lag_bytes={} size={} {}{}",
                    "",
                    "",
                    w.lag_bytes,
                    w.size,
                    w.path,
                    if w.rotated { " (rotated)" } else { "" }
                );
            }
            if lagging.len() > LAGGING_SHOWN {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} and {} more files lagging (logwell stats --json lists them)",
                    "",
                    "",
                    lagging.len() - LAGGING_SHOWN
                );
            }
            if i.parse_failed + i.parse_partial > 0 {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} parse_failed={} parse_partial={}",
                    "", "", i.parse_failed, i.parse_partial
                );
            }
        }
        for (name, o) in &self.outputs {
            let _ = writeln!(
                s,
                "{:<8} {:<20} {:>12} {:>14} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8} {:>12}",
                "output",
                name,
                o.written,
                o.bytes,
                "-",
                format!("errors={}", o.errors),
                o.dropped,
                "-",
                "-",
                "-",
                "-"
            );
            if o.queued + o.delivered + o.failed + o.retried + o.corrupt + o.held_back > 0 {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} queued={} on_disk={} delivered={} failed={} retried={} corrupt={} held_back={}",
                    "",
                    "",
                    o.queued,
                    o.on_disk,
                    o.delivered,
                    o.failed,
                    o.retried,
                    o.corrupt,
                    o.held_back
                );
            }
            if o.dead_lettered > 0 {
                let _ = writeln!(s, "{:<8} {:<20} dead_lettered={}", "", "", o.dead_lettered);
            }
        }
        if !self.config_warnings.is_empty() {
            let _ = writeln!(s, "configuration warnings:");
            for w in &self.config_warnings {
                let _ = writeln!(s, "  {w}");
            }
        }
        s
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degraded_input_shows_in_metrics_and_text() {
        let stats = Stats::new();
        stats.input("local");
        stats
            .input("kernel")
            .set_state(InputState::Degraded, "cannot open /dev/kmsg");
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.degraded_inputs(), ["kernel"]);
        let m = snapshot.to_prometheus();
        assert!(
            m.contains("logwell_input_degraded{input=\"kernel\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("logwell_input_degraded{input=\"local\"} 0"),
            "{m}"
        );
        assert!(
            m.contains("logwell_input_faults_total{input=\"kernel\"} 1"),
            "{m}"
        );
        let text = snapshot.to_text();
        assert!(text.contains("degraded: cannot open /dev/kmsg"), "{text}");
        stats.input("kernel").set_state(InputState::Running, "");
        assert!(stats.snapshot().degraded_inputs().is_empty());
    }
}
