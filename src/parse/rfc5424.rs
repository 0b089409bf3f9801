//! RFC 5424 messages (§6): `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
//! MSGID SP STRUCTURED-DATA [SP MSG]`, read byte by byte into a borrowed
//! [`Message`] with no allocation.
//!
//! Strict where a loose reading would guess wrong (one SP between fields, printable US-ASCII
//! header fields within their RFC lengths, a valid date), lenient where senders commonly
//! differ and the meaning is clear: VERSION other than 1, a timestamp without offset
//! (kind `Local`), more than six fraction digits (truncated). Structured data that does not
//! validate keeps the header: it is left at the start of MSG, not dropped.
//!
//! This replaces `syslog_loose`'s RFC 5424 path, which trims the message, allocates a `Vec`
//! for structured data, loses the PRI on a timestamp without offset and takes `&str` only.

use crate::message::{Flags, Message, Timestamp};

use super::pri::Pri;
use super::{sd, timestamp};

/// Whether the text after the PRI starts like RFC 5424: a VERSION (1–3 digits, no leading
/// zero) and a space. Anything else is read as RFC 3164.
pub(crate) fn looks_like(s: &[u8]) -> bool {
    let digits = s.iter().take(4).take_while(|b| b.is_ascii_digit()).count();
    (1..=3).contains(&digits) && s[0] != b'0' && s.get(digits) == Some(&b' ')
}

/// A cursor over the header fields.
struct Fields<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Fields<'a> {
    /// The next header field (1 to `max` printable US-ASCII characters) and the SP after it;
    /// `Some(None)` for the NILVALUE `-`.
    fn field(&mut self, max: usize) -> Option<Option<&'a [u8]>> {
        let start = self.i;
        let mut j = start;
        while j < self.s.len() && (33..=126).contains(&self.s[j]) {
            j += 1;
        }
        if j == start || j - start > max || self.s.get(j) != Some(&b' ') {
            return None;
        }
        self.i = j + 1;
        let f = &self.s[start..j];
        Some((f != b"-").then_some(f))
    }
}

/// Parses `s`, the text after the PRI, as RFC 5424. `None` when the header is not valid; the
/// caller then applies RFC 3164 §4.3.2 (everything after the PRI is MSG).
pub(crate) fn parse<'a>(s: &'a [u8], pri: Pri) -> Option<Message<'a>> {
    let mut f = Fields { s, i: 0 };
    let mut version = 0u16;
    while f.i < s.len() && s[f.i].is_ascii_digit() && f.i < 3 {
        version = version * 10 + u16::from(s[f.i] - b'0');
        f.i += 1;
    }
    if f.i == 0 || s[0] == b'0' || s.get(f.i) != Some(&b' ') {
        return None;
    }
    f.i += 1;
    let timestamp: Option<Timestamp> = if s.get(f.i..f.i + 2) == Some(b"- ") {
        f.i += 2;
        None
    } else {
        let (t, n) = timestamp::parse_rfc3339(&s[f.i..], false)?;
        f.i += n;
        if s.get(f.i) != Some(&b' ') {
            return None;
        }
        f.i += 1;
        Some(t)
    };
    let hostname = f.field(255)?;
    let appname = f.field(48)?;
    let procid = f.field(128)?;
    let msgid = f.field(32)?;
    let rest = &s[f.i..];
    let (structured_data, msg) = match rest.first() {
        Some(b'-') if matches!(rest.get(1), None | Some(b' ')) => (None, after_sp(&rest[1..])),
        Some(b'[') => match sd::validate(rest) {
            Some(n) if matches!(rest.get(n), None | Some(b' ')) => {
                (Some(&rest[..n]), after_sp(&rest[n..]))
            }
            // Not valid structured data: keep the header, and keep the text in MSG.
            _ => (None, rest),
        },
        // Missing STRUCTURED-DATA (`<1>1 - - - -` and end), or garbage in its place.
        None => return None,
        Some(_) => (None, rest),
    };
    Some(Message {
        version: Some(version),
        timestamp,
        hostname,
        appname,
        procid,
        msgid,
        structured_data,
        ..super::bare(Some(pri), super::strip_bom(msg), Flags::empty())
    })
}

/// MSG after STRUCTURED-DATA: the text after the one SP that separates them.
#[inline]
fn after_sp(s: &[u8]) -> &[u8] {
    s.strip_prefix(b" ").unwrap_or(s)
}
