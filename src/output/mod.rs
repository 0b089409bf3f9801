//! Outputs: where routed messages go. Owns the file writer ([`file`](mod@file), which rotates
//! through [`crate::store`]), the writer of templated paths ([`dynfile`], which also
//! reduces repeated messages), the terminals of logged-in users ([`users`]), remote syslog
//! servers ([`forward`], through its own [`Queue`](crate::queue::Queue)), Kafka (`kafka`,
//! feature `kafka`; through its own queue too), and HTTP endpoints such as ClickHouse (`http`,
//! through its own queue). What they render with is in
//! [`crate::render`]; every file-system change goes through [`crate::host::fsops`].
//!
//! Input tasks format lines into per-output [`Chunk`]s themselves (no copy, no allocation
//! per message) and send whole chunks to the output's writer thread over a bounded channel.
//! A chunk always holds whole lines (or whole records, see [`Layout`]), so nothing
//! downstream ever sees half a message.

pub mod dynfile;
pub mod file;
pub mod forward;
pub(crate) mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub(crate) mod queued;
pub(crate) mod records;
pub mod users;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::config::{FileSettings, Format, OutputKind, OutputSettings};
use crate::render::template::PathTemplate;
use crate::stats::{OutputStats, Stats};

/// Whole lines for one output, and how many messages they hold.
#[derive(Debug, Default)]
pub struct Chunk {
    /// One or more complete lines.
    pub data: Vec<u8>,
    /// Lines in `data`.
    pub messages: u64,
    /// The writer wrote the start of `data` (now cut off) before an error: the rest must be
    /// written, never dropped, or the file would end mid-line.
    pub partly_written: bool,
    /// Held until the output has taken the lines (see [`Receipt`]); `None` for most inputs.
    pub receipt: Option<Arc<Receipt>>,
}

/// Tells an input that its lines were taken by every output they went to: each chunk of a
/// batch holds a clone, and when the last one is dropped the receiver fires. Writers drop a
/// chunk only once they are done with it: a file writer after `write(2)` put its lines in
/// the file (the kernel's page cache: a crash of logwelld cannot lose them, a power cut can
/// unless `sync = true`), a templated-file writer after it wrote the burst, a queued action
/// (forward, Kafka) once the lines are in its queue. The RELP input answers `200 OK` only
/// then ([`crate::input`]'s `relp`).
#[derive(Debug)]
pub struct Receipt(Option<tokio::sync::oneshot::Sender<()>>);

impl Receipt {
    /// A receipt, and what fires once every clone of it is dropped.
    pub fn new() -> (Arc<Receipt>, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Arc::new(Receipt(Some(tx))), rx)
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Chunks an output's channel holds before senders wait: 4 MiB of 64 KiB chunks; about 6 MiB
/// at most with busy stream connections' 256 KiB chunks, which are started only while few
/// chunks wait (`pipeline::LARGE_CHUNKS_QUEUED`).
const CHANNEL_CHUNKS: usize = 64;

/// Chunk buffers a writer hands back for reuse (see [`Buffers`]): at most this many wait.
const SPARE_BUFFERS: usize = 4;

/// Written chunks' buffers, handed back by a file writer to the input tasks that feed it, so
/// that a busy input fills memory that is already mapped instead of a fresh allocation (which
/// the allocator returns to the kernel once the writer frees it, and the kernel must zero
/// again). Taken and given once per chunk, never per message.
#[derive(Debug, Default)]
pub struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    /// An empty buffer of at least `capacity` bytes: a spare one, or a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let spare = self.0.lock().map(|mut v| v.pop()).unwrap_or(None);
        match spare {
            Some(mut b) => {
                b.reserve(capacity);
                b
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buffer` for a later [`Buffers::take`], unless enough are kept already.
    pub fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 {
            return;
        }
        buffer.clear();
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(buffer);
            }
        }
    }
}

/// A running output, shared by every input task through the routing table.
#[derive(Debug)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its settings, to tell on reload whether it changed.
    pub settings: OutputSettings,
    /// Line format.
    pub format: Format,
    /// How input tasks lay out lines for it and hand them over.
    pub layout: Layout,
    /// Where chunks go.
    pub tx: mpsc::Sender<Chunk>,
    /// Commands for the writer.
    pub ctl: mpsc::UnboundedSender<WriterCommand>,
    /// Its counters.
    pub stats: Arc<OutputStats>,
    /// Chunk buffers its writer handed back.
    pub buffers: Arc<Buffers>,
}

/// How an input task lays out and hands over an output's lines.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Plain lines; the task waits while the writer's channel is full (back-pressure).
    Lines,
    /// Records (`dynfile`): the rendered path (none for a plain path) and, with
    /// `repeat_keys`, a key for repeat reduction, before each line.
    Records {
        /// The templated path, rendered per message.
        template: Option<Arc<PathTemplate>>,
        /// Compute [`dynfile::repeat_key`] for each message.
        repeat_keys: bool,
    },
    /// Kafka records (`kafka`): `[topic][key][payload]`, each a `u32` little-endian length
    /// and bytes, the templates rendered in the input task.
    Kafka {
        /// The topic template.
        topic: Arc<crate::render::kafka_template::KafkaTemplate>,
        /// The partition key template.
        key: Arc<crate::render::kafka_template::KafkaTemplate>,
        /// The payload's format.
        payload: crate::config::Payload,
    },
    /// Plain lines handed over without waiting: dropped and counted when the queue is full
    /// (the `users` output, which must never stall the pipeline).
    Lossy,
}

/// For tests: the outputs of a configuration `text` with the routing table its rules make,
/// each output's chunks coming out of the returned channel instead of going to a writer.
#[cfg(test)]
pub(crate) fn detached(text: &str) -> (Arc<crate::pipeline::Routing>, Vec<mpsc::Receiver<Chunk>>) {
    let settings = crate::config::load_texts(vec![("test.toml".into(), text.to_string())])
        .expect("a valid configuration");
    let stats = Stats::new();
    let mut outputs = Vec::new();
    let mut receivers = Vec::new();
    for o in &settings.outputs {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let (ctl, _) = mpsc::unbounded_channel();
        let format = match &o.kind {
            OutputKind::File(f) => f.format,
            _ => Format::Rfc3339,
        };
        outputs.push(Arc::new(Output {
            name: o.name.clone(),
            settings: o.clone(),
            format,
            layout: Layout::of(o),
            tx,
            ctl,
            stats: stats.output(&o.name),
            buffers: Arc::default(),
        }));
        receivers.push(rx);
    }
    let router = crate::route::Router::new(settings.rules.clone(), outputs.len());
    (
        Arc::new(crate::pipeline::Routing { router, outputs }),
        receivers,
    )
}

/// For tests: the chunk `rx` holds once the runtime has run the other tasks and polled its
/// sockets `yields` times at most, without waiting for any timer; `None` if none came.
#[cfg(test)]
pub(crate) async fn recv_within_yields(
    rx: &mut mpsc::Receiver<Chunk>,
    yields: usize,
) -> Option<Chunk> {
    for _ in 0..yields {
        if let Ok(c) = rx.try_recv() {
            return Some(c);
        }
        tokio::task::yield_now().await;
    }
    rx.try_recv().ok()
}

impl Layout {
    fn of(settings: &OutputSettings) -> Layout {
        match &settings.kind {
            OutputKind::File(f) if f.records() => Layout::Records {
                template: f.dynamic.as_ref().map(|d| Arc::new(d.template.clone())),
                repeat_keys: f.reduce_repeats,
            },
            OutputKind::File(_) => Layout::Lines,
            OutputKind::Users(_) => Layout::Lossy,
            OutputKind::Forward(_) | OutputKind::Http(_) => Layout::Lines,
            OutputKind::Kafka(k) => Layout::Kafka {
                topic: Arc::new(k.topic.clone()),
                key: Arc::new(k.partition_key.clone()),
                payload: k.payload,
            },
        }
    }
}

/// What the daemon can ask of a running writer.
// Sent a few times per reload or `logwell rotate`, never per message: size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WriterCommand {
    /// A reload changed this output's settings but not its path: the same writer goes on
    /// with new settings, so lines written before and after the reload stay in order.
    Reconfigure {
        /// The output's (possibly new) name.
        name: String,
        /// The new settings.
        settings: FileSettings,
        /// The counters under that name.
        stats: Arc<OutputStats>,
    },
    /// The daemon is stopping: if the file still cannot be written, stop holding senders
    /// back and drop the oldest waiting lines (counted) instead, so the inputs can finish.
    Closing,
    /// Answer to show the writer is not wedged (for the systemd watchdog).
    Ping(tokio::sync::oneshot::Sender<()>),
    /// Rotate now (`logwell rotate`); replies with the rotated generation's path.
    Rotate(tokio::sync::oneshot::Sender<Result<std::path::PathBuf, String>>),
}

impl Output {
    /// This output's file settings; `None` for an output that writes no file.
    pub fn file(&self) -> Option<&FileSettings> {
        match &self.settings.kind {
            OutputKind::File(f) => Some(f),
            OutputKind::Users(_)
            | OutputKind::Forward(_)
            | OutputKind::Kafka(_)
            | OutputKind::Http(_) => None,
        }
    }

    /// Whether [`Output::reconfigure`] can carry this output to `settings`: a file output
    /// on the same path whose lines keep their layout.
    pub fn can_reconfigure(&self, settings: &OutputSettings) -> bool {
        match (self.file(), &settings.kind) {
            (Some(old), OutputKind::File(new)) => {
                old.path == new.path && old.records() == new.records()
            }
            _ => false,
        }
    }

    /// The same writer under new settings (same path, see [`Output::can_reconfigure`]):
    /// tells the writer, and returns the output the next routing table refers to.
    pub fn reconfigure(&self, settings: &OutputSettings, stats: &Stats) -> Arc<Output> {
        let OutputKind::File(file) = &settings.kind else {
            unreachable!("can_reconfigure checked that it is a file output");
        };
        let out_stats = stats.output(&settings.name);
        let _ = self.ctl.send(WriterCommand::Reconfigure {
            name: settings.name.clone(),
            settings: file.clone(),
            stats: out_stats.clone(),
        });
        Arc::new(Output {
            name: settings.name.clone(),
            settings: settings.clone(),
            format: file.format,
            layout: Layout::of(settings),
            tx: self.tx.clone(),
            ctl: self.ctl.clone(),
            stats: out_stats,
            buffers: self.buffers.clone(),
        })
    }
}

/// Starts the writer for `settings` on its own thread. The thread ends once every clone of
/// the returned output's sender is dropped and everything pending is written and synced.
pub fn spawn(
    settings: &OutputSettings,
    stats: &Stats,
    reopen: watch::Receiver<u64>,
    retention: Arc<crate::store::rotate::Retention>,
    runtime: Handle,
) -> std::io::Result<(Arc<Output>, JoinHandle<()>)> {
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let out_stats = stats.output(&settings.name);
    let name = settings.name.clone();
    let buffers = Arc::new(Buffers::default());
    let (tx, format, thread) = match &settings.kind {
        OutputKind::File(file_settings) if file_settings.records() => {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let writer = dynfile::DynWriter::new(
                name.clone(),
                file_settings.clone(),
                out_stats.clone(),
                rx,
                ctl_rx,
                reopen,
                retention,
            );
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(writer.run()))?;
            (tx, file_settings.format, thread)
        }
        OutputKind::File(file_settings) => {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let writer = file::FileWriter {
                name: name.clone(),
                settings: file_settings.clone(),
                stats: out_stats.clone(),
                rx,
                ctl: ctl_rx,
                reopen,
                retention,
                buffers: buffers.clone(),
                file: None,
                pending: Vec::new(),
                pending_bytes: 0,
                size: 0,
                closing: false,
                woke_at: tokio::time::Instant::now(),
                wake_due: false,
            };
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(writer.run()))?;
            (tx, file_settings.format, thread)
        }
        OutputKind::Users(users_settings) => {
            let (tx, rx) = mpsc::channel(users::QUEUE_CHUNKS);
            let writer = users::UsersWriter {
                name: name.clone(),
                settings: users_settings.clone(),
                stats: out_stats.clone(),
                rx,
                ctl: ctl_rx,
            };
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(writer.run()))?;
            (tx, Format::Traditional, thread)
        }
        OutputKind::Forward(forward_settings) => {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let forwarder = forward::Forwarder {
                name: name.clone(),
                settings: forward_settings.clone(),
                stats: out_stats.clone(),
                rx,
                ctl: ctl_rx,
            };
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(forwarder.run()))?;
            (tx, forward_settings.format, thread)
        }
        OutputKind::Http(http_settings) => {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let action = http::HttpAction {
                name: name.clone(),
                settings: http_settings.clone(),
                stats: out_stats.clone(),
                rx,
                ctl: ctl_rx,
            };
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(action.run()))?;
            (tx, Format::Json, thread)
        }
        #[cfg(feature = "kafka")]
        OutputKind::Kafka(kafka_settings) => {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let action = kafka::KafkaAction {
                name: name.clone(),
                settings: kafka_settings.clone(),
                stats: out_stats.clone(),
                rx,
                ctl: ctl_rx,
            };
            let thread = std::thread::Builder::new()
                .name(format!("out-{name}"))
                .spawn(move || runtime.block_on(action.run()))?;
            (tx, kafka_settings.payload.format(), thread)
        }
        #[cfg(not(feature = "kafka"))]
        OutputKind::Kafka(_) => {
            unreachable!("config validation refuses kafka outputs without the kafka feature")
        }
    };
    let output = Output {
        name,
        settings: settings.clone(),
        format,
        layout: Layout::of(settings),
        tx,
        ctl,
        stats: out_stats,
        buffers,
    };
    Ok((Arc::new(output), thread))
}
