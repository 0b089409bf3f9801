//! What the queued actions (`forward`, `kafka`) share around their disk-assisted queue
//! ([`crate::queue`]): opening it at start, with what recovery found counted and logged (or
//! falling back to a memory-only queue when its directory cannot be used), and closing it at
//! stop, keeping what was not delivered on disk for the next start.

use std::sync::atomic::Ordering::Relaxed;

use crate::queue::{Queue, QueueSettings};
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
