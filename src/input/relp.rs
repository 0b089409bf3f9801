//! RELP input (`type = "relp"`, as rsyslog's `imrelp`): the connections of a TCP or TLS
//! input (the same accept loop, limits, handshake and peer check of [`super::stream`]) that
//! speak RELP ([`crate::parse::relp`]) instead of RFC 6587 framing.
//!
//! # When `200 OK` is sent
//! A `syslog` frame is answered only once its message was taken by every output it was
//! routed to ([`crate::output::Receipt`]): written to its file with `write(2)`, or pushed into
//! a queued action's queue. So a sender that got `200 OK` can forget the message even if
//! logwelld is killed the next moment; rsyslog's imrelp answers once the message is in its
//! memory queue, and loses what the queue held. A message no rule wants is answered at once.
//!
//! Each read is one batch: its frames are pushed, the pipeline flushed, and the batch's
//! answers wait, in order, behind its receipt. Senders keep many transactions open (librelp
//! allows 128), so batches overlap: up to [`MAX_BATCHES`] wait for their receipts before the
//! connection stops reading.
//!
//! # The session
//! - `open` first: its answer offers `relp_version=0` and `commands=syslog`. A client that
//!   does not offer `syslog` is answered `500` and closed.
//! - Transaction numbers must follow each other (1, 2, … 999,999,999, 1). One that does not
//!   is answered `500`, then the session ends with `serverclose`, as librelp does: the
//!   sender reconnects and resends what was not answered.
//! - A command other than `open`, `syslog` and `close` is answered `500` and the session goes
//!   on; so is a frame before `open`, except that then the session ends.
//! - `close` is answered (an empty `rsp`, then `serverclose`, as librelp does) once every
//!   earlier message is answered; the connection then ends.
//! - Bytes that are no RELP frame end the session (`serverclose`), counted in `malformed`.
//! - A frame over `max_message_size_bytes` is written cut and marked (`oversize =
//!   "truncate"`), or answered `500` (`"refuse"`), counted in `truncated` or `malformed`.
//! - When logwelld stops, what the sender already sent is read and answered, then it gets
//!   `serverclose`.
//!
//! Duplicates: a message whose `200 OK` was lost with the connection is sent again by the
//! sender; nothing else is.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::oneshot;

use super::stream::{Connection, Drain, Ended, StreamLimits, Tracked};
use super::InputContext;
use crate::config::{Oversize, RelpSettings};
use crate::message::Source;
use crate::parse::relp::{self, Decoded, Decoder};

/// Read batches waiting for their receipts before the connection stops reading.
pub const MAX_BATCHES: usize = 64;

/// How long a stopping connection waits for its last receipts.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// How long a stopping connection keeps reading what was queued when it was told to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What the answer to `open` offers.
fn offers() -> String {
    format!(
        "relp_version=0\nrelp_software=logwell,{},https://github.com/logwell/logwell\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    )
}

/// One read's answers, sent once its receipt fires.
struct Answers {
    receipt: oneshot::Receiver<()>,
    bytes: Vec<u8>,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    /// Waiting for `open`.
    New,
    /// Open: the next transaction number expected.
    Open(u64),
    /// Ending: answer what is pending, then send `serverclose` (unless the peer is gone)
    /// and close.
    Ending { serverclose: bool },
}

/// Serves one RELP connection until it closes, idles out, is evicted or the input stops.
pub async fn serve<C: Connection>(
    mut sock: C,
    source: Source,
    limits: StreamLimits,
    relp_settings: RelpSettings,
    tracked: &Tracked,
    ctx: &InputContext,
) -> Ended {
    let mut stop = ctx.stop.clone();
    let mut pipeline = ctx.pipeline();
    let mut decoder = Decoder::new(limits.max_message_size);
    let mut buf = vec![0u8; decoder.buffer_size().max(64 * 1024)];
    pipeline.chunk_bytes(buf.len());
    let (mut start, mut end) = (0usize, 0usize);
    let limiter = ctx.limiter.clone();
    let rate_ip = limiter.as_ref().and(source.peer).map(|p| p.ip());
    let frame_timeout = limiter.as_ref().and_then(|l| l.frame_timeout);
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut session = Session::New;
    let mut waiting: VecDeque<Answers> = VecDeque::new();
    let mut drain: Option<Drain> = None;
    let mut draining_for = Ended::Stopped;
    let mut ended = None;
    if *stop.borrow() {
        drain = Some(Drain {
            left: sock.kernel_queued(),
            until: tokio::time::Instant::now() + DRAIN_LIMIT,
        });
    }
    while ended.is_none() && !matches!(session, Session::Ending { .. }) {
        // Answers whose receipts fired, in order, in one write.
        if send_ready(&mut sock, &mut waiting).await.is_err() {
            ended = Some(Ended::Error);
            break;
        }
        let read = if let Some(d) = &mut drain {
            if tokio::time::Instant::now() >= d.until {
                break;
            }
            match sock.read_queued(&mut buf[end..], d).await {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                r => r,
            }
        } else {
            let answered = waiting.is_empty();
            let idle = async {
                match limits.idle_timeout {
                    Some(d) if answered => tokio::time::sleep(d).await,
                    _ => std::future::pending().await,
                }
            };
            let full = waiting.len() >= MAX_BATCHES;
            tokio::select! {
                biased;
                _ = front(&mut waiting) => continue,
                r = sock.read_some(&mut buf[end..]), if !full => r,
                _ = super::stopped(&mut stop) => {
                    drain = Some(Drain { left: sock.kernel_queued(), until: tokio::time::Instant::now() + DRAIN_LIMIT });
                    continue;
                }
                _ = tracked.evict.notified() => {
                    draining_for = Ended::Evicted;
                    drain = Some(Drain { left: sock.kernel_queued(), until: tokio::time::Instant::now() + DRAIN_LIMIT });
                    continue;
                }
                _ = idle => { ended = Some(Ended::Idle); break; }
                _ = super::limits::frame_deadline(frame_timeout, partial_since) => {
                    ctx.stats.frame_timeouts.fetch_add(1, Relaxed);
                    ended = Some(Ended::FrameTimeout);
                    break;
                }
            }
        };
        let n = match read {
            Ok(0) => {
                ended = Some(Ended::Eof);
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(input = %ctx.name, peer = ?source.peer, error = %e, "read failed");
                ended = Some(Ended::Error);
                break;
            }
        };
        end += n;
        tracked.touch();
        pipeline.begin();
        let receipt = pipeline.track();
        let mut answers = Vec::new();
        let mut completed = false;
        loop {
            let (used, decoded) = decoder.decode(&buf[start..end]);
            start += used;
            let frame = match decoded {
                Decoded::NeedMore => break,
                Decoded::Skipped => continue,
                Decoded::Error(e) => {
                    pipeline.frame_error();
                    tracing::info!(input = %ctx.name, peer = ?source.peer, error = %e, "not a RELP frame; ending the session");
                    session = Session::Ending { serverclose: true };
                    break;
                }
                Decoded::Frame(f) => f,
            };
            completed = true;
            session = answer(
                session,
                &frame,
                relp_settings,
                &mut answers,
                |data, truncated| {
                    if super::limits::message_allowed(&limiter, rate_ip) {
                        pipeline.push(data, truncated, &source, None);
                    }
                },
                ctx,
                &source,
            );
            if pipeline.needs_flush() {
                pipeline.flush().await;
            }
            if matches!(session, Session::Ending { .. }) {
                break;
            }
        }
        pipeline.flush().await;
        pipeline.untrack();
        waiting.push_back(Answers {
            receipt,
            bytes: answers,
        });
        if frame_timeout.is_some() {
            partial_since = super::limits::partial_since(partial_since, completed, start < end);
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
    }
    // Answer everything read, then say goodbye where the protocol wants it.
    let serverclose = match session {
        Session::Ending { serverclose } => serverclose,
        _ => !matches!(ended, Some(Ended::Eof | Ended::Error)),
    };
    let deadline = tokio::time::Instant::now() + ANSWER_LIMIT;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, front(&mut waiting)).await {
            Ok(()) => {
                if send_ready(&mut sock, &mut waiting).await.is_err() {
                    return ended.unwrap_or(Ended::Error);
                }
            }
            Err(_) => {
                tracing::warn!(input = %ctx.name, peer = ?source.peer, "outputs did not take the last messages in time; they stay unanswered and the sender will send them again");
                break;
            }
        }
    }
    if serverclose {
        let mut bye = Vec::new();
        relp::write_frame(&mut bye, 0, "serverclose", b"");
        let _ = sock.write_all(&bye).await;
    }
    ended.unwrap_or(match session {
        Session::Ending { .. } if drain.is_none() => Ended::Eof,
        _ => draining_for,
    })
}

/// Waits until the oldest batch's receipt fired; forever when none waits.
async fn front(waiting: &mut VecDeque<Answers>) {
    match waiting.front_mut() {
        Some(a) => {
            let _ = (&mut a.receipt).await;
        }
        None => std::future::pending().await,
    }
}

/// Writes, in one write, the answers of the batches at the front whose receipts fired.
async fn send_ready<C: Connection>(
    sock: &mut C,
    waiting: &mut VecDeque<Answers>,
) -> io::Result<()> {
    let mut out = Vec::new();
    while let Some(a) = waiting.front_mut() {
        match a.receipt.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => break,
            _ => {
                let a = waiting.pop_front().expect("front");
                if out.is_empty() {
                    out = a.bytes;
                } else {
                    out.extend_from_slice(&a.bytes);
                }
            }
        }
    }
    if out.is_empty() {
        return Ok(());
    }
    sock.write_all(&out).await
}

/// Handles one frame: pushes a message through `push`, appends the answer to `out`, and
/// returns where the session is after it.
fn answer(
    session: Session,
    frame: &relp::Frame<'_>,
    settings: RelpSettings,
    out: &mut Vec<u8>,
    mut push: impl FnMut(&[u8], bool),
    ctx: &InputContext,
    source: &Source,
) -> Session {
    let txnr = frame.txnr;
    let refuse = |out: &mut Vec<u8>, why: &str| {
        tracing::info!(input = %ctx.name, peer = ?source.peer, txnr, "RELP: {why}");
        relp::write_rsp(out, txnr, 500, why, "");
    };
    let expected = match session {
        Session::New => {
            if frame.command != b"open" {
                refuse(out, "the session must start with open");
                ctx.stats.malformed.fetch_add(1, Relaxed);
                return Session::Ending { serverclose: true };
            }
            let commands = relp::offer(frame.data, "commands").unwrap_or_default();
            if !commands.split(|b| *b == b',').any(|c| c == b"syslog") {
                refuse(out, "the client does not offer commands=syslog");
                return Session::Ending { serverclose: true };
            }
            relp::write_rsp(out, txnr, 200, "OK", &offers());
            return Session::Open(relp::next_txnr(txnr));
        }
        Session::Open(expected) => expected,
        ending => return ending,
    };
    if txnr != expected {
        refuse(
            out,
            &format!("transaction number {txnr} where {expected} was expected"),
        );
        ctx.stats.malformed.fetch_add(1, Relaxed);
        return Session::Ending { serverclose: true };
    }
    let next = Session::Open(relp::next_txnr(txnr));
    match frame.command {
        b"syslog" if frame.cut > 0 && settings.oversize == Oversize::Refuse => {
            ctx.stats.malformed.fetch_add(1, Relaxed);
            refuse(
                out,
                &format!(
                    "the message has {} bytes, over max_message_size_bytes ({})",
                    frame.data.len() + frame.cut,
                    frame.data.len()
                ),
            );
        }
        b"syslog" => {
            // librelp senders with an RFC 5424 template end the data with its own LF.
            let data = frame.data;
            let data = data.strip_suffix(b"\n").unwrap_or(data);
            let data = data.strip_suffix(b"\r").unwrap_or(data);
            push(data, frame.cut > 0);
            relp::write_rsp(out, txnr, 200, "OK", "");
        }
        b"close" => {
            // As librelp answers it: an empty `rsp`, then `serverclose`.
            relp::write_frame(out, txnr, "rsp", b"");
            return Session::Ending { serverclose: true };
        }
        other => {
            let what = String::from_utf8_lossy(other).into_owned();
            refuse(
                out,
                &format!("command {what} is not supported (only syslog)"),
            );
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::stream::Registry;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads what the server has written so far, yielding to it `yields` times first.
    async fn answers(peer: &mut tokio::net::UnixStream, yields: usize) -> String {
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::new();
        loop {
            match peer.try_read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// `200 OK` waits until the output took the message: here, until the test takes the
    /// chunk from the output's channel and drops it, as a writer does once it wrote it.
    #[tokio::test]
    async fn a_message_is_answered_only_once_its_output_took_it() {
        let (routing, mut rx) = crate::output::detached(
            "[input.t]\ntype = \"relp\"\nlisten = \"127.0.0.1:5514\"\n[output.f]\ntype = \"file\"\npath = \"/nonexistent/f.log\"\n[output.g]\ntype = \"file\"\npath = \"/nonexistent/g.log\"\n[[rule]]\noutput = [\"f\", \"g\"]\n",
        );
        let (_routing_tx, routing_rx) = tokio::sync::watch::channel(routing);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let ctx = InputContext::for_test(routing_rx, stop);
        let (mut peer, ours) = tokio::net::UnixStream::pair().unwrap();
        let source = ctx.local_source(true);
        tokio::spawn(async move {
            let registry = Registry::default();
            let registered = registry.register();
            let limits = StreamLimits {
                max_message_size: 8192,
                idle_timeout: None,
            };
            let settings = RelpSettings {
                oversize: Oversize::Truncate,
            };
            serve(ours, source, limits, settings, &registered.tracked, &ctx).await
        });
        AsyncWriteExt::write_all(&mut peer, b"1 open 15 commands=syslog\n")
            .await
            .unwrap();
        let open = answers(&mut peer, 50).await;
        assert!(
            open.starts_with("1 rsp ") && open.ends_with("commands=syslog\n"),
            "{open:?}"
        );
        AsyncWriteExt::write_all(&mut peer, b"2 syslog 10 <13>t: one\n")
            .await
            .unwrap();
        let f = crate::output::recv_within_yields(&mut rx[0], 50)
            .await
            .unwrap();
        let g = crate::output::recv_within_yields(&mut rx[1], 50)
            .await
            .unwrap();
        assert_eq!((f.messages, g.messages), (1, 1));
        drop(f);
        assert_eq!(answers(&mut peer, 50).await, "", "g still holds the line");
        drop(g);
        assert_eq!(answers(&mut peer, 50).await, "2 rsp 6 200 OK\n");
        let mut rest = Vec::new();
        drop(rx);
        AsyncWriteExt::write_all(&mut peer, b"3 close 0\n")
            .await
            .unwrap();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"3 rsp 0\n0 serverclose 0\n");
    }
}
