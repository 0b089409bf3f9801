//! What the queued actions (`forward`, `kafka`, and the sinks to come) share around their
//! disk-assisted queue ([`crate::queue`]): opening it at start, with what recovery found
//! counted and logged (or falling back to a memory-only queue when its directory cannot be
//! used); the [`Handoff`] between intake and delivery; the one [`Intake`], which takes chunks
//! from the input tasks and pushes their records; and closing the queue at stop, keeping
//! what was not delivered on disk for the next start. Each action brings only its delivery.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use super::{Chunk, WriterCommand};
use crate::queue::{record, DiskEvent, Pushed, Queue, QueueSettings, DISK_RETRY};
use crate::stats::OutputStats;

/// What a queued action's intake and delivery share.
pub(crate) struct Handoff {
    queue: Mutex<Queue>,
    /// Records were pushed or intake ended (forward also wakes delivery with it when a
    /// connection changes state).
    pub(crate) wake: Arc<Notify>,
    /// Records were acknowledged: room in the queue.
    pub(crate) room: Notify,
    /// Intake ended (the daemon stops or the action was removed).
    pub(crate) stopping: AtomicBool,
}

impl Handoff {
    /// Shares `queue`.
    pub(crate) fn new(queue: Queue) -> Handoff {
        Handoff {
            queue: Mutex::new(queue),
            wake: Arc::new(Notify::new()),
            room: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The queue, locked (a panic elsewhere does not poison it for good).
    pub(crate) fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The queue back, once intake and delivery are done.
    pub(crate) fn into_queue(self) -> Queue {
        self.queue.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Splits a chunk's bytes into the records its action queues, calling the second argument
/// with each.
pub(crate) type Split = fn(&[u8], &mut dyn FnMut(&[u8]));

/// Runs a queued action: opens its queue, runs [`Intake`] (records split by `split`) beside
/// the delivery `deliver` makes from the shared [`Handoff`], and once both are done closes
/// the queue, keeping what was not delivered on disk for the next start.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<D, F>(
    kind: &'static str,
    name: &str,
    settings: &QueueSettings,
    stats: &OutputStats,
    rx: mpsc::Receiver<Chunk>,
    ctl: mpsc::UnboundedReceiver<WriterCommand>,
    split: Split,
    deliver: D,
) where
    D: FnOnce(Arc<Handoff>) -> F,
    F: std::future::Future<Output = ()>,
{
    let queue = open(kind, name, settings, stats);
    let shared = Arc::new(Handoff::new(queue));
    let intake = Intake {
        kind,
        name,
        shared: &shared,
        stats,
        rx,
        ctl,
        split,
    };
    let delivery = deliver(shared.clone());
    tokio::join!(intake.run(), delivery);
    let queue = match Arc::try_unwrap(shared) {
        Ok(s) => s.into_queue(),
        Err(_) => unreachable!("both halves are done"),
    };
    close(kind, name, queue, stats);
}

/// Takes chunks from the bounded channel the input tasks send to and pushes each record into
/// the queue. While the queue is full (`max_disk_bytes`), it waits, which holds stream inputs
/// back; when the daemon stops, what does not fit is dropped and counted. A record longer
/// than the queue takes is dropped and counted.
pub(crate) struct Intake<'a> {
    /// `forward`, `kafka`: for the log.
    pub(crate) kind: &'static str,
    /// The action's name.
    pub(crate) name: &'a str,
    /// Shared with delivery.
    pub(crate) shared: &'a Handoff,
    /// The action's counters.
    pub(crate) stats: &'a OutputStats,
    /// Chunks from the input tasks.
    pub(crate) rx: mpsc::Receiver<Chunk>,
    /// Commands from the daemon.
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
    /// How a chunk splits into records.
    pub(crate) split: Split,
}

impl Intake<'_> {
    /// Runs until every input task has let go of the channel; then tells delivery.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut encoded = Vec::new();
        let mut closing = false;
        let mut drops = DropReport::new(self.stats);
        loop {
            tokio::select! {
                chunk = self.rx.recv() => match chunk {
                    Some(chunk) => self.take(&chunk, &mut encoded, &mut closing, &mut drops).await,
                    None => break,
                },
                Some(cmd) = self.ctl.recv() => self.command(cmd, &mut closing),
                _ = tick.tick() => {
                    if let Err(e) = self.shared.queue().sync_if_due() {
                        self.stats.errors.fetch_add(1, Relaxed);
                        tracing::error!(output = %self.name, "{}: {e}", self.kind);
                    }
                    drops.check(self.kind, self.name, self.stats);
                }
            }
        }
        self.shared.stopping.store(true, Relaxed);
        self.shared.wake.notify_one();
    }

    fn command(&self, cmd: WriterCommand, closing: &mut bool) {
        match cmd {
            WriterCommand::Closing => *closing = true,
            WriterCommand::Ping(reply) => {
                let _ = reply.send(());
            }
            WriterCommand::Rotate(reply) => {
                let _ = reply.send(Err(format!(
                    "`{}` is a {} output: nothing to rotate",
                    self.name, self.kind
                )));
            }
            WriterCommand::Reconfigure { .. } => {}
        }
    }

    /// Pushes a chunk's records, waiting while the queue is full.
    async fn take(
        &mut self,
        chunk: &Chunk,
        encoded: &mut Vec<u8>,
        closing: &mut bool,
        drops: &mut DropReport,
    ) {
        encoded.clear();
        let mut records = 0;
        let mut too_long = 0;
        (self.split)(&chunk.data, &mut |rec| {
            if record::fits(rec) {
                record::encode(rec, encoded);
                records += 1;
            } else {
                too_long += 1;
            }
        });
        self.stats.dropped.fetch_add(too_long, Relaxed);
        loop {
            let pushed = {
                let mut q = self.shared.queue();
                let r = q.push(encoded, records);
                disk_events(self.kind, self.name, &mut q, self.stats);
                self.stats.queued.store(q.len(), Relaxed);
                self.stats.on_disk.store(q.disk_records(), Relaxed);
                r
            };
            match pushed {
                Pushed::Memory | Pushed::Disk => {
                    room(self.stats);
                    break;
                }
                Pushed::Dropped => {
                    room(self.stats);
                    self.stats.dropped.fetch_add(records, Relaxed);
                    drops.disk_dropped(records);
                    drops.check(self.kind, self.name, self.stats);
                    break;
                }
                Pushed::Full if *closing => {
                    self.stats.dropped.fetch_add(records, Relaxed);
                    break;
                }
                Pushed::Full => hold_back(self.kind, self.name, self.stats),
            }
            self.shared.wake.notify_one();
            drops.check(self.kind, self.name, self.stats);
            tokio::select! {
                _ = self.shared.room.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                Some(cmd) = self.ctl.recv() => self.command(cmd, closing),
            }
        }
        self.shared.wake.notify_one();
    }
}

/// Opens the queue of action `name` (`kind` is `forward` or `kafka`, for the log).
pub(crate) fn open(kind: &str, name: &str, settings: &QueueSettings, stats: &OutputStats) -> Queue {
    match Queue::open(settings.clone()) {
        Ok((q, recovery)) => {
            for d in &recovery.damage {
                stats.corrupt.fetch_add(1, Relaxed);
                tracing::error!(output = %name, "{kind} queue: {d}");
            }
            if recovery.records > 0 {
                tracing::info!(output = %name, messages = recovery.records, segments = recovery.segments, "{kind}: queue recovered from disk");
            }
            stats.queued.store(q.len(), Relaxed);
            stats.on_disk.store(q.disk_records(), Relaxed);
            q
        }
        Err(e) => {
            stats.errors.fetch_add(1, Relaxed);
            tracing::error!(output = %name, "{kind}: {e}; queueing in memory only");
            let memory_only = QueueSettings {
                dir: None,
                memory_bytes: settings.memory_bytes.max(1024 * 1024),
                ..settings.clone()
            };
            Queue::open(memory_only)
                .expect("a memory queue needs no file")
                .0
        }
    }
}

/// Closes the queue at stop: what is in memory goes to disk, in order, for the next start;
/// if that fails, those messages are counted as dropped.
pub(crate) fn close(kind: &str, name: &str, queue: Queue, stats: &OutputStats) {
    let memory = queue.len() - queue.disk_records();
    match queue.close() {
        Ok(kept) => {
            stats.on_disk.store(kept, Relaxed);
            if kept > 0 {
                tracing::info!(output = %name, kept, from_memory = memory, "{kind}: undelivered messages kept on disk for the next start");
            }
        }
        Err(e) => {
            stats.dropped.fetch_add(memory, Relaxed);
            tracing::error!(output = %name, lost = memory, "{kind}: cannot keep the queue: {e}");
        }
    }
}

/// The queue refused a push (`max_disk_bytes` reached): marks the action full, so datagram
/// inputs drop instead of waiting, and counts and logs the start of the hold-back once.
pub(crate) fn hold_back(kind: &str, name: &str, stats: &OutputStats) {
    if !stats.full.swap(true, Relaxed) {
        stats.held_back.fetch_add(1, Relaxed);
        tracing::warn!(output = %name, "{kind}: the queue is full (max_disk_bytes): holding senders back; datagrams that do not fit are dropped (counted)");
    }
}

/// Counts and logs what the queue's disk did during the last push or read ([`DiskEvent`]): a
/// failed write (the records then go to memory, and past `memory_bytes` are dropped, counted,
/// for this action only: a failing disk never holds the inputs back), its recovery, and a
/// segment found damaged while read (counted in `corrupt`, as damage found at start).
pub(crate) fn disk_events(kind: &str, name: &str, queue: &mut Queue, stats: &OutputStats) {
    for event in queue.take_events() {
        match event {
            DiskEvent::Failed(e) => {
                stats.errors.fetch_add(1, Relaxed);
                tracing::error!(output = %name, retry_ms = DISK_RETRY.as_millis() as u64, "{kind}: {e}; queueing in memory up to memory_bytes, then dropping this action's messages (counted in `dropped`) until the disk takes writes again");
            }
            DiskEvent::Recovered => {
                tracing::info!(output = %name, "{kind}: the queue's disk takes writes again");
            }
            DiskEvent::Damaged(d) => {
                stats.corrupt.fetch_add(1, Relaxed);
                tracing::error!(output = %name, "{kind} queue: {d}");
            }
        }
    }
}

/// A push was taken again: the action is no longer full.
pub(crate) fn room(stats: &OutputStats) {
    stats.full.store(false, Relaxed);
}

/// Logs the datagrams dropped at the full queue since the last report
/// ([`OutputStats::full_drops`]), at most once per [`DROP_REPORT`]: never silent, and no line
/// per datagram.
#[derive(Debug)]
pub(crate) struct DropReport {
    reported: u64,
    /// Messages dropped because the queue's disk failed and memory was full, not yet
    /// reported.
    disk: u64,
    at: Option<std::time::Instant>,
}

/// How often at most [`DropReport`] logs.
const DROP_REPORT: std::time::Duration = std::time::Duration::from_secs(1);

impl DropReport {
    /// Starts from what `stats` counts now (drops before were reported by an earlier
    /// instance of the action).
    pub(crate) fn new(stats: &OutputStats) -> DropReport {
        DropReport {
            reported: stats.full_drops.load(Relaxed),
            disk: 0,
            at: None,
        }
    }

    /// Notes `n` messages dropped because the queue's disk failed and memory was full (they
    /// are already counted in `dropped`).
    pub(crate) fn disk_dropped(&mut self, n: u64) {
        self.disk += n;
    }

    /// Logs the drops since the last report, if the last one is [`DROP_REPORT`] old.
    pub(crate) fn check(&mut self, kind: &str, name: &str, stats: &OutputStats) {
        let now = stats.full_drops.load(Relaxed);
        if (now == self.reported && self.disk == 0)
            || self.at.is_some_and(|t| t.elapsed() < DROP_REPORT)
        {
            return;
        }
        if now != self.reported {
            tracing::warn!(output = %name, dropped = now - self.reported, total = now, "{kind}: datagrams dropped: the queue is full (max_disk_bytes); they are counted in `dropped`");
        }
        if self.disk > 0 {
            tracing::warn!(output = %name, dropped = self.disk, "{kind}: messages dropped: the queue's disk fails and memory_bytes is full; they are counted in `dropped`");
        }
        self.reported = now;
        self.disk = 0;
        self.at = Some(std::time::Instant::now());
    }
}
