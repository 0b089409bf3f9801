//! What the queued actions (`forward`, `kafka`) share around their disk-assisted queue
//! ([`crate::queue`]): opening it at start, with what recovery found counted and logged (or
//! falling back to a memory-only queue when its directory cannot be used), and closing it at
//! stop, keeping what was not delivered on disk for the next start.

use std::sync::atomic::Ordering::Relaxed;

use crate::queue::{DiskEvent, Queue, QueueSettings, DISK_RETRY};
use crate::stats::OutputStats;

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
