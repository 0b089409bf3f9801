//! One subscriber's stream: history first, then live lines, filtered and rendered, encoded
//! for its protocol (SSE events or plain lines), in bounded batches.
//!
//! Subscribers read the files, never the receive path: a stalled subscriber only stops
//! reading, and costs its one batch in flight. Reading is blocking file I/O, so each batch is
//! read on tokio's blocking pool; between batches the task waits on the file's wake channel
//! (bumped by logwell's writer, or by the inotify watcher for other programs' files), with a
//! poll as a fallback, and sends heartbeats when idle.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, Utc};
use tokio::sync::{mpsc, watch};

use super::files::Followable;
use super::line;
use super::request::{Heartbeat, Request, StartAt};
use crate::store::history::{FileSet, Position, Reader, Start};

/// A batch holds at most this many bytes of encoded lines.
const BATCH_BYTES: usize = 8 * 1024;

/// How often a file is read again when no wake-up came (other programs' files, and a
/// safety net for our own).
const POLL: Duration = Duration::from_millis(1000);

/// How the stream is put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Server-Sent Events: `id:` and `data:` per line, named events for the rest.
    Sse,
    /// One line per log line; gaps and warnings as `-- … --` lines (JSON objects when the
    /// format is JSON).
    Lines,
}

/// The reading side of one subscription (blocking).
pub struct Subscription {
    file: Followable,
    request: Request,
    encoding: Encoding,
    reader: Option<Reader>,
    /// Losses of the reader already reported as gaps, so each is reported once.
    losses_reported: u64,
    line: Vec<u8>,
    /// When the file was last written (for the year of traditional timestamps), and when
    /// that was looked up: once a second at most, not once per batch.
    written: Option<(std::time::Instant, chrono::NaiveDateTime)>,
}

/// What one read produced.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Encoded events, ready to write.
    pub bytes: Vec<u8>,
    /// Lines in `bytes`.
    pub lines: u64,
    /// The end of the live file was reached: wait before reading again.
    pub at_end: bool,
    /// `until` was passed: the stream is over.
    pub done: bool,
}

impl Subscription {
    /// A subscription to `file`. Fails when the file's format cannot serve the filters.
    pub fn new(
        file: Followable,
        request: Request,
        encoding: Encoding,
    ) -> Result<Subscription, String> {
        line::supports(file.format, &request.filter, &file.name)?;
        Ok(Subscription {
            file,
            request,
            encoding,
            reader: None,
            losses_reported: 0,
            line: Vec::new(),
            written: None,
        })
    }

    /// The followed file.
    pub fn file(&self) -> &Followable {
        &self.file
    }

    /// The request being served.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Opens the file set at the start point (blocking). Lines written after this are
    /// part of the stream even with `n=0`.
    pub fn open(&mut self, batch: &mut ReadOutcome) {
        if self.reader.is_none() {
            let start = match self.request.start {
                StartAt::Last(n) => Start::LastLines(n),
                StartAt::Beginning => Start::Beginning,
                StartAt::Since(t) => Start::Since(t),
                StartAt::After(p) => Start::After(p),
                StartAt::At(p) => Start::At(p),
            };
            match FileSet::new(&self.file.path).reader(start) {
                Ok(r) => self.reader = Some(r),
                Err(e) => {
                    self.notice(&mut batch.bytes, "warning", &e.to_string());
                    batch.at_end = true;
                }
            }
        }
    }

    /// Reads up to one batch.
    pub fn read_batch(&mut self) -> ReadOutcome {
        let mut batch = ReadOutcome::default();
        if self.reader.is_none() {
            self.open(&mut batch);
            if self.reader.is_none() {
                return batch;
            }
        }
        let written = match self.written {
            Some((at, t)) if at.elapsed() < std::time::Duration::from_secs(1) => t,
            _ => {
                let t = modified(&self.file.path);
                self.written = Some((std::time::Instant::now(), t));
                t
            }
        };
        // A slow subscriber may hold a generation that retention deleted since its last
        // batch: let go of it (freeing its space); the lines lost are reported as a gap.
        if let Some(reader) = self.reader.as_mut() {
            reader.revalidate();
        }
        while batch.bytes.len() < BATCH_BYTES {
            let reader = self.reader.as_mut().expect("opened above");
            let item = reader.next();
            if reader.losses() > self.losses_reported {
                self.losses_reported = reader.losses();
                self.notice(
                    &mut batch.bytes,
                    "gap",
                    "lines were deleted by retention before they could be sent",
                );
            }
            match item {
                None => {
                    batch.at_end = true;
                    break;
                }
                Some(Err(e)) => self.notice(&mut batch.bytes, "warning", &e.to_string()),
                Some(Ok(l)) => {
                    let fields = line::parse(&l.bytes, self.file.format, written);
                    if let (Some(until), Some(t)) = (self.request.filter.until, fields.time) {
                        if t >= until {
                            batch.done = true;
                            break;
                        }
                    }
                    if fields.passes(&self.request.filter) {
                        self.line.clear();
                        fields.render(
                            self.request.format,
                            &l.bytes,
                            l.next,
                            &self.file.name,
                            &mut self.line,
                        );
                        encode_line(self.encoding, l.next, &self.line, &mut batch.bytes);
                        batch.lines += 1;
                    }
                    drop(fields);
                    if let Some(reader) = self.reader.as_mut() {
                        reader.recycle(l.bytes);
                    }
                }
            }
        }
        batch
    }

    /// A gap or a warning, in the stream's encoding.
    fn notice(&self, out: &mut Vec<u8>, kind: &str, text: &str) {
        let json = serde_json::json!({ "event": kind, "reason": text, "file": self.file.name });
        match self.encoding {
            Encoding::Sse => {
                out.extend_from_slice(format!("event: {kind}\ndata: {json}\n\n").as_bytes());
            }
            Encoding::Lines if self.request.format == super::request::OutputFormat::Json => {
                out.extend_from_slice(format!("{json}\n").as_bytes());
            }
            Encoding::Lines => out.extend_from_slice(format!("-- {kind}: {text} --\n").as_bytes()),
        }
    }

    /// Where the reader is: the cursor to resume from.
    pub fn position(&self) -> Option<Position> {
        self.reader.as_ref().and_then(Reader::position)
    }
}

fn modified(path: &std::path::Path) -> chrono::NaiveDateTime {
    let t = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    DateTime::<Local>::from(t).naive_local()
}

/// Appends one line event. SSE data must not hold a CR or LF: stored lines never do (they
/// are escaped), other programs' lines might, so those are escaped as `#015`.
#[doc(hidden)]
pub fn encode_line(encoding: Encoding, cursor: Position, line: &[u8], out: &mut Vec<u8>) {
    match encoding {
        Encoding::Sse => {
            out.extend_from_slice(b"id: ");
            cursor.push_to(out);
            out.extend_from_slice(b"\ndata: ");
            let mut rest = line;
            while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(if rest[i] == b'\r' { b"#015" } else { b"#012" });
                rest = &rest[i + 1..];
            }
            out.extend_from_slice(rest);
            out.extend_from_slice(b"\n\n");
        }
        Encoding::Lines => {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
}

/// What the driver needs from the service around it.
pub struct Driver {
    /// Wake-ups for the followed file.
    pub wake: watch::Receiver<u64>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Builds a heartbeat's JSON (counters), for `heartbeat=json`.
    pub heartbeat_json: Box<dyn Fn() -> serde_json::Value + Send>,
    /// Stops the stream (daemon shutdown).
    pub stop: watch::Receiver<bool>,
    /// Told how many lines each sent batch held.
    pub on_sent: Box<dyn Fn(u64) + Send>,
}

/// Runs a subscription until the client goes away, `until` is passed, history ends (without
/// `follow`), or the daemon stops. Batches go to `tx`; when the client reads slowly, `tx` is
/// full and reading simply waits.
pub async fn drive(mut sub: Subscription, mut driver: Driver, tx: mpsc::Sender<Vec<u8>>) {
    let encoding = sub.encoding;
    let follow = sub.request.follow;
    let json_lines = sub.request.format == super::request::OutputFormat::Json;
    let heartbeat_kind = sub.request.heartbeat;
    let mut last_sent = tokio::time::Instant::now();
    loop {
        // Mark the current wake value as seen before reading, so a write during the read
        // wakes the next wait.
        driver.wake.borrow_and_update();
        let joined = tokio::task::spawn_blocking(move || {
            let batch = sub.read_batch();
            (sub, batch)
        })
        .await;
        let Ok((back, batch)) = joined else { return };
        sub = back;
        if !batch.bytes.is_empty() {
            if tx.send(batch.bytes).await.is_err() {
                return;
            }
            (driver.on_sent)(batch.lines);
            last_sent = tokio::time::Instant::now();
        }
        if batch.done || (batch.at_end && !follow) {
            let end = match encoding {
                Encoding::Sse => b"event: end\ndata: {}\n\n".to_vec(),
                Encoding::Lines => Vec::new(),
            };
            if !end.is_empty() {
                let _ = tx.send(end).await;
            }
            return;
        }
        if !batch.at_end {
            continue;
        }
        // At the end: wait for a write, a poll, a heartbeat, or the end.
        let next_heartbeat = last_sent + driver.heartbeat;
        tokio::select! {
            changed = driver.wake.changed() => {
                if changed.is_err() {
                    // The writer went away (reload renamed the output): poll from now on.
                    tokio::time::sleep(POLL).await;
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(next_heartbeat) => {
                let beat = match (encoding, heartbeat_kind) {
                    (Encoding::Sse, Heartbeat::Comment) => b": heartbeat\n\n".to_vec(),
                    (Encoding::Sse, Heartbeat::Json) => {
                        format!("event: heartbeat\ndata: {}\n\n", (driver.heartbeat_json)()).into_bytes()
                    }
                    (Encoding::Lines, _) if json_lines => {
                        let mut v = (driver.heartbeat_json)();
                        v["event"] = "heartbeat".into();
                        format!("{v}\n").into_bytes()
                    }
                    (Encoding::Lines, _) => Vec::new(),
                };
                if !beat.is_empty() && tx.send(beat).await.is_err() {
                    return;
                }
                last_sent = tokio::time::Instant::now();
            }
            _ = tx.closed() => return,
            _ = super::stopped(&mut driver.stop) => return,
        }
    }
}

/// The time now, for parsing requests.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
