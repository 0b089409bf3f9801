//! The per-task pipeline: parse → route → format, run by every input task on the frames it
//! has just read, with no allocation per message.
//!
//! Each input task (a UDP socket, a TCP connection, …) owns one [`Pipeline`]. For every
//! frame it parses a borrowed [`crate::message::Message`], asks the router which
//! outputs want it, and formats one line into each of those outputs' chunk buffers.
//! [`Pipeline::flush`] sends the chunks to the writers; that `await` is where back-pressure
//! reaches a stream input.
//!
//! An input flushes when a chunk is full ([`Pipeline::needs_flush`]) and when its source has
//! nothing more to read right now: its read would block, or its queue is empty
//! ([`Pipeline::drained`]). So batching follows the load: a message that arrives alone is
//! sent on as soon as it is formatted, with no timer to wait out. Only a flooded input (its
//! reads kept finding several messages queued, [`FLOOD`] in a row without a read that found
//! one) goes on gathering past an empty read, up to a full chunk or [`HOLD`]: a Unix
//! datagram queue holds 10, so a flood empties it at nearly every read, and a chunk per read
//! cost that case a fifth of its throughput and a third more CPU per message (BENCHMARKS.md).
//! A busy input also checks [`HOLD`] after each read ([`Pipeline::overdue`]), so no line
//! waits longer than that under load.
//!
//! The routing table (router plus outputs) is shared through a `watch` channel. A reload
//! publishes a new table; a task switches only when it holds nothing formatted under the old
//! one (right after a flush), so a reload neither loses nor reorders a message.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::message::{Creds, Event, Flags, Message, Source};
use crate::output::dynfile::repeat_key;
use crate::output::records::{begin_field, end_field};
use crate::output::{Chunk, Layout, Output, Receipt};
use crate::parse::body::{BodyParser, HeaderFrom, Kind as BodyKind};
use crate::parse::{self, ParseContext};
use crate::render::format::{format_line, TimeCache};
use crate::route::Router;
use crate::stats::InputStats;

/// A chunk is sent to its writer once it holds this many bytes (by default; see
/// [`Pipeline::chunk_bytes`]).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The largest chunk size a busy stream connection asks for ([`Pipeline::chunk_bytes`]).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// Large chunks are started only while fewer than this many chunks wait in the output's
/// channel: a writer that falls behind gets 64 KiB chunks, so its channel (64 chunks)
/// holds about 6 MiB at most instead of 16.
const LARGE_CHUNKS_QUEUED: usize = 8;

/// How many messages an input reads, in reads that each found more than one queued, before
/// it counts as flooded ([`Pipeline::drained`]); a read that finds one ends the flood.
pub const FLOOD: usize = 32;

/// Longest a flooded input gathers lines past a read that found its queue empty (a paced UDP
/// reader: past a drain, `udp.rs`). A line that arrives alone never waits for it.
///
/// Tuning: a Unix datagram queue holds 10, so a flood empties it at nearly every read; sending
/// a chunk per empty read there cost the `unix` side-by-side case 20% of its msg/s, and 5 ms
/// keeps the p99 of a lone line far below it (BENCHMARKS.md, "Latency").
pub const HOLD: Duration = Duration::from_millis(5);

/// How often a datagram input waiting for an output's channel checks whether the output's
/// queue became full (then it drops the chunk instead of waiting on).
const FULL_RECHECK: Duration = Duration::from_millis(20);

/// Work the pipeline has of its own, between reads (see [`Pipeline::chore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chore {
    /// A flooded input's pending lines have waited [`HOLD`]: send them.
    Flush,
    /// A reload published a new routing table while nothing was pending: take it now, so
    /// the old outputs are let go of even by a quiet input.
    Reroute,
}

/// The routing table every input task shares: rules, and the outputs they name by index.
#[derive(Debug, Default)]
pub struct Routing {
    /// The rules.
    pub router: Router,
    /// The outputs, indexed as the rules refer to them.
    pub outputs: Vec<Arc<Output>>,
}

/// Counters accumulated during a batch, added to the shared ones at flush.
#[derive(Default)]
struct BatchCounts {
    received: u64,
    bytes: u64,
    malformed: u64,
    truncated: u64,
    parse_failed: u64,
    parse_partial: u64,
}

/// One input task's pipeline.
pub struct Pipeline {
    routing_rx: watch::Receiver<Arc<Routing>>,
    /// A second receiver, only to wait for a new table (`changed` marks it seen).
    routing_wake: watch::Receiver<Arc<Routing>>,
    routing_open: bool,
    routing: Arc<Routing>,
    chunks: Vec<Chunk>,
    /// The size at which each of `chunks` is sent, chosen when it was started.
    limits: Vec<usize>,
    matched: Vec<usize>,
    time: TimeCache,
    /// The templates of rules' `set` steps render with this one.
    rewrite_time: TimeCache,
    stats: Arc<InputStats>,
    counts: BatchCounts,
    full: bool,
    /// A chunk is sent once it holds this many bytes.
    chunk_bytes: usize,
    recv_time: DateTime<Utc>,
    /// The parser's view of `recv_time`.
    parse_ctx: ParseContext,
    /// When the oldest line (or count) not yet sent was made.
    pending_since: Option<Instant>,
    /// A datagram input: never wait for a queued action whose queue is full
    /// ([`Pipeline::drop_when_full`]).
    drop_when_full: bool,
    /// Messages read since a read found at most one ([`Pipeline::read`]).
    streak: usize,
    /// Fires at the end of a flooded input's [`HOLD`] ([`Pipeline::chore`]).
    hold: Alarm,
    /// The input's body parsers (`parse`); empty for most inputs, which then pay nothing.
    parsers: Arc<[BodyParser]>,
    /// Header values from the fields they read.
    header_from: Arc<HeaderFrom>,
    /// Given to every chunk sent while it is set ([`Pipeline::track`]).
    receipt: Option<Arc<Receipt>>,
}

/// A timer an input loop keeps across its `select!`s: one timer-wheel entry, moved only when
/// its deadline changes. A fresh `sleep_until` in every `select!` registered and removed an
/// entry at every wake-up, 2–3% of a paced UDP input's CPU (BENCHMARKS.md).
#[derive(Default)]
pub struct Alarm {
    /// Made at the first wait, so that a pipeline can be built outside the runtime.
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    armed: Option<Instant>,
}

impl Alarm {
    /// Waits until `due`, or forever when there is none. Only waits, so it is safe to drop in
    /// a `select!`; the entry stays armed for the next call with the same deadline.
    pub async fn wait(&mut self, due: Option<Instant>) {
        let Some(due) = due else {
            return std::future::pending().await;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if self.armed != Some(due) {
            sleep.as_mut().reset(due);
            self.armed = Some(due);
        }
        sleep.as_mut().await
    }
}

impl Pipeline {
    /// A pipeline on the current routing table, counting into `stats`.
    pub fn new(mut routing_rx: watch::Receiver<Arc<Routing>>, stats: Arc<InputStats>) -> Pipeline {
        let routing = routing_rx.borrow_and_update().clone();
        let mut routing_wake = routing_rx.clone();
        routing_wake.mark_unchanged();
        let chunks: Vec<Chunk> = routing.outputs.iter().map(|_| Chunk::default()).collect();
        let recv_time = Utc::now();
        let mut time = TimeCache::default();
        let parse_ctx = ParseContext::new(recv_time, time.local_offset(recv_time));
        Pipeline {
            routing_rx,
            routing_wake,
            routing_open: true,
            routing,
            limits: vec![CHUNK_BYTES; chunks.len()],
            chunks,
            matched: Vec::new(),
            time,
            rewrite_time: TimeCache::default(),
            stats,
            counts: BatchCounts::default(),
            full: false,
            chunk_bytes: CHUNK_BYTES,
            recv_time,
            parse_ctx,
            pending_since: None,
            drop_when_full: false,
            streak: 0,
            hold: Alarm::default(),
            parsers: Arc::default(),
            header_from: Arc::default(),
            receipt: None,
        }
    }

    /// Starts tracking what is pushed from now on: every chunk sent until
    /// [`Pipeline::untrack`] holds the receipt, and the receiver returned fires once every
    /// output has taken them ([`Receipt`]), at once if no rule wanted any of the messages.
    /// Flush what was pushed before first: it would ride along.
    pub fn track(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (receipt, rx) = Receipt::new();
        self.receipt = Some(receipt);
        rx
    }

    /// Stops tracking: call after the [`Pipeline::flush`] that sent the tracked lines.
    pub fn untrack(&mut self) {
        self.receipt = None;
    }

    /// Runs these body parsers on every message ([`crate::parse::body::first_that_reads`]);
    /// the fields read ride in [`Message::parsed`] to the outputs.
    pub fn parse_bodies(&mut self, parsers: Arc<[BodyParser]>, header_from: Arc<HeaderFrom>) {
        self.parsers = parsers;
        self.header_from = header_from;
    }

    /// For datagram inputs: a chunk for a queued action (forward, Kafka) whose queue is full
    /// (`max_disk_bytes` reached) is handed over only if the action's channel has room, and
    /// otherwise dropped and counted in the output's `dropped` (the action logs it). A datagram
    /// sender cannot be held back: waiting would only move the loss into the kernel's receive
    /// buffer and hold back the input's other outputs (local files) too.
    pub fn drop_when_full(&mut self) {
        self.drop_when_full = true;
    }

    /// Sends plain files chunks of about `bytes` (within [`CHUNK_BYTES`]..=[`MAX_CHUNK_BYTES`])
    /// instead of [`CHUNK_BYTES`]. A stream connection asks for its read buffer's size: one that
    /// reads 256 KiB at a time then hands its writers a quarter as many chunks, and so wakes
    /// them a quarter as often, while many connections (smaller read buffers) keep small
    /// chunks and the memory they hold stays within the read buffers' budget.
    pub fn chunk_bytes(&mut self, bytes: usize) {
        self.chunk_bytes = bytes.clamp(CHUNK_BYTES, MAX_CHUNK_BYTES);
    }

    /// Starts a read batch: takes the reception time for its messages, and switches to a
    /// newer routing table if one was published and nothing is pending.
    pub fn begin(&mut self) {
        self.recv_time = Utc::now();
        self.parse_ctx = ParseContext::new(self.recv_time, self.time.local_offset(self.recv_time));
        if self.pending_since.is_none() {
            self.switch_routing();
        }
    }

    fn switch_routing(&mut self) {
        if self.routing_rx.has_changed().unwrap_or(false) {
            debug_assert!(self.chunks.iter().all(|c| c.data.is_empty()));
            self.routing = self.routing_rx.borrow_and_update().clone();
            self.chunks.clear();
            self.chunks
                .resize_with(self.routing.outputs.len(), Chunk::default);
            self.limits.clear();
            self.limits.resize(self.routing.outputs.len(), CHUNK_BYTES);
        }
    }

    /// Whether lines (or counts) wait to be sent: an input calls [`Pipeline::flush`] once
    /// its read would block.
    pub fn is_pending(&self) -> bool {
        self.pending_since.is_some()
    }

    /// When the oldest line (or count) not yet sent was made; `None` when nothing is pending.
    pub fn pending_since(&self) -> Option<Instant> {
        self.pending_since
    }

    /// Tells how many messages (frames, datagrams) the read just done held: one or none
    /// means the source is not flooded, several that they queued while the input was busy.
    pub fn read(&mut self, messages: usize) {
        self.streak = match messages {
            0 | 1 => 0,
            n => self.streak.saturating_add(n),
        };
    }

    /// The input's read would block (its queue is empty): whether to flush now. Yes when
    /// lines are pending, unless the input is flooded ([`FLOOD`]) and they have waited less
    /// than [`HOLD`]: then it waits for its source and for [`Pipeline::chore`].
    pub fn drained(&self) -> bool {
        match self.pending_since {
            None => false,
            Some(_) if self.streak < FLOOD => true,
            Some(t) => t.elapsed() >= HOLD,
        }
    }

    /// Whether pending lines have waited [`HOLD`]: an input that keeps finding more to read
    /// checks it after each read, so a line waits no longer than that under load either.
    pub fn overdue(&self) -> bool {
        self.pending_since.is_some_and(|t| t.elapsed() >= HOLD)
    }

    /// Waits until the pipeline has a chore: a flooded input's pending lines have waited
    /// [`HOLD`], or a reload published a new routing table while nothing is pending. Only
    /// waits, so it is safe to drop in a `select!` beside a socket; do the chore with
    /// [`Pipeline::run_chore`] in the branch's handler. An input that is not flooded flushes
    /// before it waits ([`Pipeline::drained`]), so no timer runs for its lines.
    pub async fn chore(&mut self) -> Chore {
        match self.pending_since {
            Some(t) if self.streak >= FLOOD => {
                self.hold.wait(Some(t + HOLD)).await;
                Chore::Flush
            }
            Some(_) => std::future::pending().await,
            None if self.routing_open => {
                self.routing_open = self.routing_wake.changed().await.is_ok();
                Chore::Reroute
            }
            None => std::future::pending().await,
        }
    }

    /// Does a chore [`Pipeline::chore`] found.
    pub async fn run_chore(&mut self, chore: Chore) {
        match chore {
            Chore::Flush => self.flush().await,
            Chore::Reroute => self.begin(),
        }
    }

    /// Parses one frame and formats it for every output that wants it. `truncated` says the
    /// framing or the socket cut it at the size limit.
    pub fn push(&mut self, frame: &[u8], truncated: bool, source: &Source, creds: Option<Creds>) {
        let mut msg = parse::parse(frame, &self.parse_ctx);
        if truncated {
            msg.flags.insert(Flags::TRUNCATED);
        }
        self.route(msg, frame.len(), source, creds, Some(frame));
    }

    /// Parses one frame as [`Pipeline::push`] does, with structured `fields` beside it (a
    /// file input's `path`).
    pub fn push_with_fields(
        &mut self,
        frame: &[u8],
        truncated: bool,
        source: &Source,
        fields: &[(&[u8], &[u8])],
    ) {
        let mut msg = parse::parse(frame, &self.parse_ctx);
        if truncated {
            msg.flags.insert(Flags::TRUNCATED);
        }
        msg.fields = fields;
        self.route(msg, frame.len(), source, None, Some(frame));
    }

    /// Routes and formats a message that did not come as a syslog frame (the journal, the
    /// kernel log). `bytes` is what it counts as received.
    pub fn push_message(
        &mut self,
        msg: Message<'_>,
        bytes: usize,
        source: &Source,
        creds: Option<Creds>,
    ) {
        self.route(msg, bytes, source, creds, None);
    }

    /// Routes and formats one message; `frame` is the syslog frame it was parsed from (the
    /// `raw` payload of Kafka outputs), if any.
    fn route(
        &mut self,
        msg: Message<'_>,
        bytes: usize,
        source: &Source,
        creds: Option<Creds>,
        frame: Option<&[u8]>,
    ) {
        let parsed;
        let mut msg = msg;
        if !self.parsers.is_empty() {
            let limits = crate::parse::body::Limits::default();
            parsed = crate::parse::body::first_that_reads(&self.parsers, msg.msg, &limits);
            match parsed.as_ref().map(|o| o.kind()) {
                Some(BodyKind::Failed) => self.counts.parse_failed += 1,
                Some(BodyKind::Partial) => self.counts.parse_partial += 1,
                _ => {}
            }
            msg.parsed = parsed.as_ref().map(|o| &o.fields).filter(|f| !f.is_empty());
            if msg.parsed.is_some() && !self.header_from.is_empty() {
                self.header_from.apply(&mut msg);
            }
        }
        if msg.flags.contains(Flags::TRUNCATED) {
            self.counts.truncated += 1;
        }
        if msg.flags.contains(Flags::MALFORMED) {
            self.counts.malformed += 1;
        }
        self.counts.received += 1;
        self.counts.bytes += bytes as u64;
        let ev = Event {
            msg,
            recv_time: self.recv_time,
            source,
            creds,
        };
        // Counts are pending too: a message no rule wants is counted at the next flush.
        self.pending_since.get_or_insert_with(Instant::now);
        if self.routing.router.rewrites() {
            // Rules with rewrite steps: each output gets the message as it is at its rule.
            let routing = self.routing.clone();
            let mut seen = std::mem::take(&mut self.matched);
            let mut rewrite_time = std::mem::take(&mut self.rewrite_time);
            routing
                .router
                .route_each(&ev, &mut rewrite_time, &mut seen, |o, ev| {
                    self.write_to(o, ev, frame)
                });
            self.matched = seen;
            self.rewrite_time = rewrite_time;
            return;
        }
        self.routing.router.route(&ev, &mut self.matched);
        for i in 0..self.matched.len() {
            let o = self.matched[i];
            self.write_to(o, &ev, frame);
        }
    }

    /// Appends `ev` to output `o`'s chunk in the output's layout.
    fn write_to(&mut self, o: usize, ev: &Event<'_>, frame: Option<&[u8]>) {
        let chunk = &mut self.chunks[o];
        let output = &self.routing.outputs[o];
        if chunk.data.capacity() == 0 {
            // Large chunks for plain files only (a queued action's segments, a
            // terminal's queue and templated files' bursts are sized in 64 KiB chunks),
            // and only while the writer keeps up.
            let large = matches!(output.layout, Layout::Lines)
                && output.file().is_some()
                && output.tx.max_capacity() - output.tx.capacity() < LARGE_CHUNKS_QUEUED;
            self.limits[o] = if large { self.chunk_bytes } else { CHUNK_BYTES };
            chunk.data = output.buffers.take(self.limits[o] + 1024);
        }
        match &output.layout {
            Layout::Lines | Layout::Lossy => {
                write_line(output, ev, &mut self.time, &mut chunk.data)
            }
            Layout::Records {
                template,
                repeat_keys,
            } => {
                // [key][path][line], the path rendered in place: no allocation.
                let key = if *repeat_keys { repeat_key(ev) } else { 0 };
                chunk.data.extend_from_slice(&key.to_le_bytes());
                let at = begin_field(&mut chunk.data);
                if let Some(t) = template {
                    let offset = self.time.local_offset(self.recv_time);
                    t.render(ev, offset, &mut chunk.data);
                }
                end_field(&mut chunk.data, at);
                let at = begin_field(&mut chunk.data);
                write_line(output, ev, &mut self.time, &mut chunk.data);
                end_field(&mut chunk.data, at);
            }
            Layout::Kafka {
                topic,
                key,
                payload,
            } => {
                // [topic][key][payload], rendered in place: no allocation.
                let offset = self.time.local_offset(self.recv_time);
                let at = begin_field(&mut chunk.data);
                topic.render_topic(ev, offset, &mut chunk.data);
                end_field(&mut chunk.data, at);
                let at = begin_field(&mut chunk.data);
                key.render(ev, offset, &mut chunk.data);
                end_field(&mut chunk.data, at);
                let at = begin_field(&mut chunk.data);
                match (payload, frame) {
                    (crate::config::Payload::Raw, Some(f)) => chunk.data.extend_from_slice(f),
                    (crate::config::Payload::Raw, None) => chunk.data.extend_from_slice(ev.msg.msg),
                    _ => {
                        write_line(output, ev, &mut self.time, &mut chunk.data);
                        if chunk.data.last() == Some(&b'\n') {
                            chunk.data.pop();
                        }
                    }
                }
                end_field(&mut chunk.data, at);
            }
        }
        chunk.messages += 1;
        if chunk.data.len() >= self.limits[o] {
            self.full = true;
        }
    }

    /// Counts bytes the framing had to skip (a bad octet count, a desynchronised stream) as a
    /// malformed message.
    pub fn frame_error(&mut self) {
        self.counts.malformed += 1;
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Whether a chunk is full and `flush` should be called before the next `push`.
    pub fn needs_flush(&self) -> bool {
        self.full
    }

    /// Sends every non-empty chunk to its writer, waiting while a writer's channel is full,
    /// adds the counts to the input's stats, and switches to a newer routing table if one was
    /// published.
    pub async fn flush(&mut self) {
        self.full = false;
        self.pending_since = None;
        for (o, chunk) in self.chunks.iter_mut().enumerate() {
            if chunk.messages == 0 {
                continue;
            }
            let mut chunk = std::mem::take(chunk);
            chunk.receipt.clone_from(&self.receipt);
            let output = &self.routing.outputs[o];
            let lossy = matches!(output.layout, Layout::Lossy)
                || (self.drop_when_full && output.stats.full.load(Relaxed));
            if lossy {
                // Never wait for this one (a stuck terminal, a full queue under a datagram
                // input): drop and count instead.
                match output.tx.try_send(chunk) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(c)) => {
                        output.stats.dropped.fetch_add(c.messages, Relaxed);
                        if !matches!(output.layout, Layout::Lossy) {
                            output.stats.full_drops.fetch_add(c.messages, Relaxed);
                        }
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        output.stats.errors.fetch_add(1, Relaxed);
                    }
                }
            } else if self.drop_when_full {
                // Room now (the usual case): no timer. Else wait for room, but stop waiting
                // once the action says its queue is full.
                let chunk = match output.tx.try_send(chunk) {
                    Ok(()) => continue,
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        output.stats.errors.fetch_add(1, Relaxed);
                        continue;
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Full(c)) => c,
                };
                let mut recheck = tokio::time::interval(FULL_RECHECK);
                loop {
                    tokio::select! {
                        permit = output.tx.reserve() => {
                            match permit {
                                Ok(p) => p.send(chunk),
                                Err(_) => {
                                    output.stats.errors.fetch_add(1, Relaxed);
                                }
                            }
                            break;
                        }
                        _ = recheck.tick() => if output.stats.full.load(Relaxed) {
                            output.stats.dropped.fetch_add(chunk.messages, Relaxed);
                            output.stats.full_drops.fetch_add(chunk.messages, Relaxed);
                            break;
                        },
                    }
                }
            } else if output.tx.send(chunk).await.is_err() {
                // Only when the writer thread died; its own error was logged there.
                output.stats.errors.fetch_add(1, Relaxed);
            }
        }
        let c = std::mem::take(&mut self.counts);
        // A batch may hold only a framing error: it still counts as malformed.
        if c.received > 0 || c.malformed > 0 {
            self.stats.received.fetch_add(c.received, Relaxed);
            self.stats.bytes.fetch_add(c.bytes, Relaxed);
            self.stats.malformed.fetch_add(c.malformed, Relaxed);
            self.stats.truncated.fetch_add(c.truncated, Relaxed);
            if c.parse_failed + c.parse_partial > 0 {
                self.stats.parse_failed.fetch_add(c.parse_failed, Relaxed);
                self.stats.parse_partial.fetch_add(c.parse_partial, Relaxed);
            }
        }
        self.switch_routing();
    }
}

/// One line for `ev` in `output`'s template, or else its format.
fn write_line(output: &Output, ev: &Event<'_>, time: &mut TimeCache, out: &mut Vec<u8>) {
    match &output.settings.template {
        Some(t) => t.render(ev, time, out),
        None => format_line(output.format, ev, time, out),
    }
}
