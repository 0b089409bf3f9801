//! Parsing: bytes in, [`Message`] out. Pure functions with no I/O and no clock (the reception
//! time comes in [`ParseContext`]), so they are easy to test, fuzz and benchmark.
//!
//! - [`framing`] splits a TCP or Unix stream into frames (RFC 6587).
//! - [`parse`] turns one frame or datagram into a [`Message`]: RFC 5424 or RFC 3164, detected
//!   per message, with the fix-ups real senders need.
//! - [`relp`] reads and writes RELP frames, responses and offers.
//! - [`body`] reads the fields of structured bodies: JSON (and `@cee:`), logfmt, key=value.
//! - [`sd`] validates RFC 5424 structured data and decodes it for the formats that show it.
//! - Private helpers: `pri` (the `<PRI>`), `timestamp` (RFC 3339 and BSD timestamps, year
//!   inference), `rfc5424` and `rfc3164` (the two header formats).
//!
//! # Why not `syslog_loose` alone
//! The crate is the reference these parsers were checked against, but its results need
//! fixing for a daemon: it reads `<13>Nov 21 09:41:03 myapp: hi` as hostname `myapp`, keeps
//! the UTF-8 BOM, trims trailing spaces, assumes the current year (no New Year roll-over),
//! loses even the PRI on `<999>` or a 5424 timestamp without offset, takes `&str` only (so
//! invalid UTF-8 would have to be cut off) and allocates for structured data. The header
//! formats are small, so they are read here byte by byte instead: no allocation, no regex,
//! invalid UTF-8 kept as it is, and no panic on any input.
//!
//! # Cost
//! Measured on this 2-core machine (optimised build of these files in a scratch crate, 2M
//! iterations, Nov 2025): `<13>Nov 21 09:41:03 host tag[42]: text…` 90 ns; a typical RFC 5424
//! message 52 ns, 86 ns with structured data; framing 25 ns per frame. `syslog_loose` 0.23 took
//! 175–400 ns for the same messages, before any fix-up. `parse_cost` in the tests prints the
//! figure for the build at hand (`cargo test --lib parse_cost -- --ignored --nocapture`).
//!
//! # Outcomes
//! [`parse`] never fails. A missing or unusable PRI gives user.notice with the whole packet
//! as MSG and flags `MALFORMED | BAD_PRI` (RFC 3164 §4.3.3); a valid PRI with no usable header
//! gives everything after the PRI as MSG and flag `MALFORMED` (§4.3.2). Nothing is dropped.

pub mod body;
pub mod framing;
pub mod kmsg;
mod pri;
pub mod relp;
mod rfc3164;
mod rfc5424;
pub mod sd;
mod timestamp;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};

use crate::message::{Facility, Flags, Message, Severity};

/// What the parser needs to know about the moment and place of reception. Passing it in keeps
/// the parser pure. Made once per read batch ([`ParseContext::new`]), not per message.
#[derive(Clone, Copy, Debug)]
pub struct ParseContext {
    local_offset: FixedOffset,
    /// The reception time on the receiver's wall clock: year-less timestamps take their year
    /// from it.
    recv_local: NaiveDateTime,
}

impl ParseContext {
    /// The context of messages received at `recv_time`, on a host whose local UTC offset is
    /// then `local_offset` (for year inference at New Year).
    pub fn new(recv_time: DateTime<Utc>, local_offset: FixedOffset) -> ParseContext {
        ParseContext {
            local_offset,
            recv_local: recv_time.naive_utc()
                + Duration::seconds(i64::from(local_offset.local_minus_utc())),
        }
    }

    /// The receiver's local UTC offset at the reception time.
    pub fn local_offset(&self) -> FixedOffset {
        self.local_offset
    }
}

/// The UTF-8 byte order mark, which RFC 5424 §6.4 puts before a UTF-8 MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// MSG without its leading UTF-8 BOM.
#[inline]
pub(crate) fn strip_bom(msg: &[u8]) -> &[u8] {
    msg.strip_prefix(BOM).unwrap_or(msg)
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Removes a line ending a sender left on a datagram: trailing white space, but only when it
/// holds a CR or LF (`text\n`, `text\r\n`, `text\n   `). Plain trailing spaces are kept.
#[inline]
fn trim_line_end(frame: &[u8]) -> &[u8] {
    let mut end = frame.len();
    let mut newline = false;
    while end > 0 && is_space(frame[end - 1]) {
        newline |= matches!(frame[end - 1], b'\r' | b'\n');
        end -= 1;
    }
    if newline {
        &frame[..end]
    } else {
        frame
    }
}

/// Parses one syslog message. Never fails: a message with no recognisable header comes back
/// with the whole text as `msg` and [`Flags::MALFORMED`] set.
///
/// RFC 5424 is detected by a VERSION after the PRI; anything else is read as BSD syslog.
/// White space (a line ending) around the message is ignored. Every field borrows from
/// `frame`, and nothing is allocated.
pub fn parse<'a>(frame: &'a [u8], ctx: &ParseContext) -> Message<'a> {
    let frame = trim_line_end(frame);
    let start = frame
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(frame.len());
    let Some(pri) = pri::parse(&frame[start..]) else {
        return bare(None, frame, Flags::MALFORMED | Flags::BAD_PRI);
    };
    let rest = &frame[start + pri.len..];
    if rfc5424::looks_like(rest) {
        return rfc5424::parse(rest, pri)
            .unwrap_or_else(|| bare(Some(pri), rest, Flags::MALFORMED));
    }
    rfc3164::parse(rest, pri, ctx.recv_local)
}

/// A message with no header fields: the PRI's facility and severity (user.notice without
/// one), `msg` as the text.
pub(crate) fn bare(pri: Option<pri::Pri>, msg: &[u8], flags: Flags) -> Message<'_> {
    let (facility, severity) = match pri {
        Some(p) => (
            Facility::from_code(p.facility).unwrap_or(Facility::USER),
            Severity::from_code(p.severity).unwrap_or(Severity::NOTICE),
        ),
        None => (Facility::USER, Severity::NOTICE),
    };
    Message {
        facility,
        severity,
        version: None,
        timestamp: None,
        hostname: None,
        appname: None,
        procid: None,
        msgid: None,
        structured_data: None,
        msg,
        flags,
        fields: &[],
        parsed: None,
    }
}

#[cfg(test)]
mod tests;
