//! Outputs: where routed messages go. Owns the line formats ([`format`]) and the file
//! writer ([`file`]); later issues add rotation, forwarding and Kafka beside them.
//!
//! Input tasks format lines into per-output [`Chunk`]s themselves (no copy, no allocation
//! per message) and send whole chunks to the output's writer thread over a bounded channel.
//! A chunk always holds whole lines, so nothing downstream ever sees half a message.

pub mod compress;
pub mod file;
pub mod fileset;
pub mod format;
pub mod fsops;
pub mod rotate;

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::config::{FileSettings, Format, OutputKind, OutputSettings};
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
}

/// Chunks an output's channel holds before senders wait: with 64 KiB chunks, 4 MiB.
const CHANNEL_CHUNKS: usize = 64;

/// A running output, shared by every input task through the routing table.
#[derive(Debug)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its settings, to tell on reload whether it changed.
    pub settings: OutputSettings,
    /// Line format.
    pub format: Format,
    /// Where chunks go.
    pub tx: mpsc::Sender<Chunk>,
    /// Commands for the writer.
    pub ctl: mpsc::UnboundedSender<WriterCommand>,
    /// Its counters.
    pub stats: Arc<OutputStats>,
}

/// What the daemon can ask of a running writer.
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
    /// This output's file settings.
    pub fn file(&self) -> &FileSettings {
        let OutputKind::File(f) = &self.settings.kind;
        f
    }

    /// The same writer under new settings (same path): tells the writer, and returns the
    /// output the next routing table refers to.
    pub fn reconfigure(&self, settings: &OutputSettings, stats: &Stats) -> Arc<Output> {
        let OutputKind::File(file) = &settings.kind;
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
            tx: self.tx.clone(),
            ctl: self.ctl.clone(),
            stats: out_stats,
        })
    }
}

/// Starts the writer for `settings` on its own thread. The thread ends once every clone of
/// the returned output's sender is dropped and everything pending is written and synced.
pub fn spawn(
    settings: &OutputSettings,
    stats: &Stats,
    reopen: watch::Receiver<u64>,
    retention: Arc<rotate::Retention>,
    runtime: Handle,
) -> std::io::Result<(Arc<Output>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let out_stats = stats.output(&settings.name);
    let OutputKind::File(file_settings) = &settings.kind;
    let writer = file::FileWriter {
        name: settings.name.clone(),
        settings: file_settings.clone(),
        stats: out_stats.clone(),
        rx,
        ctl: ctl_rx,
        reopen,
        retention,
        file: None,
        pending: Vec::new(),
        pending_bytes: 0,
        size: 0,
        closing: false,
    };
    let thread = std::thread::Builder::new()
        .name(format!("out-{}", settings.name))
        .spawn(move || runtime.block_on(writer.run()))?;
    let output = Output {
        name: settings.name.clone(),
        settings: settings.clone(),
        format: file_settings.format,
        tx,
        ctl,
        stats: out_stats,
    };
    Ok((Arc::new(output), thread))
}
