//! Line formats: turning an [`Event`] into exactly one line of bytes in a file's buffer.
//!
//! Every line ends with one `\n` and contains no other control character: text formats escape
//! them as rsyslog does (`#012` for LF, `#011` for TAB: `#` and three octal digits), and `json`
//! escapes them as JSON. Invalid UTF-8 is kept as bytes in text formats and replaced by U+FFFD
//! in `json`, which must be valid UTF-8.
//!
//! Formatting appends to a caller's buffer and allocates nothing; the [`TimeCache`] renders
//! each second's date once.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};

use crate::message::{Event, Flags, TimestampKind};
use crate::parse::sd;

/// Line formats for files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Nov 21 09:41:03 host tag[pid]: msg`.
    Traditional,
    /// `2026-11-21T09:41:03.123456+01:00 host tag[pid]: msg`, Debian 12's default.
    Rfc3339,
    /// `<13>1 2026-11-21T09:41:03.123456+01:00 host tag pid msgid [sd] msg`.
    Rfc5424,
    /// One JSON object per line with every field.
    Json,
    /// `<13>Nov 21 09:41:03 host tag[pid]: msg`: RFC 3164 as sent on the wire (forward
    /// outputs only).
    Rfc3164,
}

impl Format {
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "traditional" => Format::Traditional,
            "rfc3339" => Format::Rfc3339,
            "rfc5424" => Format::Rfc5424,
            "json" => Format::Json,
            _ => return None,
        })
    }
}

/// What every text line ends with when the message was cut at the size limit.
pub const TRUNCATED_MARK: &[u8] = b" [truncated]";

/// Local-zone lookups and rendered timestamps, cached per second. One per input task.
pub struct TimeCache {
    /// Unix second of `recv_*`.
    recv_sec: i64,
    recv_offset: FixedOffset,
    /// `YYYY-MM-DDTHH:MM:SS` of the reception second in the local zone.
    recv_rfc3339: [u8; 19],
    /// `Mmm dd HH:MM:SS` of the reception second in the local zone.
    recv_traditional: [u8; 15],
    /// `+HH:MM` of `recv_offset`.
    recv_offset_text: [u8; 6],
    /// Last local wall-clock hour looked up for a sender's zone-less timestamp.
    zone_hour: Option<(NaiveDateTime, FixedOffset)>,
    /// The last sender timestamp's second, rendered: a burst of messages mostly shares one.
    sender: SenderSecond,
}

/// A sender's timestamp, to the second, with its offset and its renderings.
pub(super) struct SenderSecond {
    /// The key: the wall-clock date and second of the day, and the offset the sender gave
    /// (`None`: the local zone's, looked up).
    date: NaiveDate,
    secs: u32,
    given: Option<FixedOffset>,
    /// The offset shown.
    offset: FixedOffset,
    rfc3339: [u8; 19],
    traditional: [u8; 15],
    offset_text: [u8; 6],
}

impl Default for TimeCache {
    fn default() -> Self {
        TimeCache {
            recv_sec: i64::MIN,
            recv_offset: Utc.fix(),
            recv_rfc3339: [0; 19],
            recv_traditional: [0; 15],
            recv_offset_text: [0; 6],
            zone_hour: None,
            sender: SenderSecond {
                // No timestamp has this key: year 262143 is beyond every parser's reach.
                date: NaiveDate::MAX,
                secs: u32::MAX,
                given: None,
                offset: Utc.fix(),
                rfc3339: [0; 19],
                traditional: [0; 15],
                offset_text: [0; 6],
            },
        }
    }
}

/// Renders `local` and `offset` into fixed-size texts.
fn render_second(
    local: &NaiveDateTime,
    offset: FixedOffset,
    rfc3339: &mut [u8; 19],
    traditional: &mut [u8; 15],
    offset_text: &mut [u8; 6],
) {
    let mut v = Vec::with_capacity(19);
    push_date_time(&mut v, local);
    rfc3339.copy_from_slice(&v);
    v.clear();
    push_traditional(&mut v, local);
    traditional.copy_from_slice(&v);
    v.clear();
    push_offset(&mut v, offset);
    offset_text.copy_from_slice(&v);
}

impl TimeCache {
    fn refresh(&mut self, t: DateTime<Utc>) {
        let sec = t.timestamp();
        if sec == self.recv_sec {
            return;
        }
        self.recv_sec = sec;
        self.recv_offset = chrono::Local.offset_from_utc_datetime(&t.naive_utc()).fix();
        let local = t.naive_utc() + self.recv_offset;
        render_second(
            &local,
            self.recv_offset,
            &mut self.recv_rfc3339,
            &mut self.recv_traditional,
            &mut self.recv_offset_text,
        );
    }

    /// The local UTC offset at reception time (for the parser's year inference).
    pub fn local_offset(&mut self, t: DateTime<Utc>) -> FixedOffset {
        self.refresh(t);
        self.recv_offset
    }

    /// The local zone's offset for a wall-clock time, cached per hour.
    fn zone_offset(&mut self, local: &NaiveDateTime) -> FixedOffset {
        let hour = local
            .date()
            .and_hms_opt(local.hour(), 0, 0)
            .unwrap_or(*local);
        if let Some((h, off)) = self.zone_hour {
            if h == hour {
                return off;
            }
        }
        let off = chrono::Local
            .offset_from_local_datetime(local)
            .earliest()
            .map(|o| o.fix())
            .unwrap_or(self.recv_offset);
        self.zone_hour = Some((hour, off));
        off
    }

    /// The sender's timestamp's second, rendered: looked up and rendered only when it differs
    /// from the last one's.
    fn sender_second(
        &mut self,
        local: &NaiveDateTime,
        given: Option<FixedOffset>,
    ) -> &SenderSecond {
        let (date, secs) = (local.date(), local.num_seconds_from_midnight());
        let s = &self.sender;
        if s.date != date || s.secs != secs || s.given != given {
            let offset = given.unwrap_or_else(|| self.zone_offset(local));
            let s = &mut self.sender;
            (s.date, s.secs, s.given, s.offset) = (date, secs, given, offset);
            render_second(
                local,
                offset,
                &mut s.rfc3339,
                &mut s.traditional,
                &mut s.offset_text,
            );
        }
        &self.sender
    }
}

/// The time a line shows: the sender's or the reception time, rendered by the cache.
pub(super) enum Shown<'c> {
    /// The reception time, with microseconds.
    Recv { cache: &'c TimeCache, micros: u32 },
    /// The sender's timestamp, with the fraction digits it had.
    Sender {
        second: &'c SenderSecond,
        micros: u32,
        frac_digits: u8,
    },
}

pub(super) fn shown<'c>(ev: &Event<'_>, cache: &'c mut TimeCache) -> Shown<'c> {
    cache.refresh(ev.recv_time);
    if ev.source.use_sender_timestamp {
        if let Some(ts) = ev.msg.timestamp {
            let given = match (ts.kind, ts.offset) {
                (TimestampKind::Rfc3339, Some(o)) => Some(o),
                _ => None,
            };
            return Shown::Sender {
                second: cache.sender_second(&ts.local, given),
                micros: ts.local.and_utc().timestamp_subsec_micros(),
                frac_digits: ts.frac_digits,
            };
        }
    }
    Shown::Recv {
        cache,
        micros: ev.recv_time.timestamp_subsec_micros(),
    }
}

impl<'c> Shown<'c> {
    /// The reception time, whatever the source's `use_sender_timestamp`.
    pub(super) fn recv(ev: &Event<'_>, cache: &'c mut TimeCache) -> Shown<'c> {
        cache.refresh(ev.recv_time);
        Shown::Recv {
            cache,
            micros: ev.recv_time.timestamp_subsec_micros(),
        }
    }

    /// The time shown, as a date and time with its offset (for strftime patterns and Unix
    /// seconds). `recv`: it is the reception time.
    pub(super) fn date_time(&self, ev: &Event<'_>, recv: bool) -> DateTime<FixedOffset> {
        match self {
            Shown::Recv { cache, .. } => ev.recv_time.with_timezone(&cache.recv_offset),
            Shown::Sender { second, .. } => match ev.msg.timestamp.filter(|_| !recv) {
                Some(ts) => ts
                    .local
                    .and_local_timezone(second.offset)
                    .single()
                    .unwrap_or_else(|| ev.recv_time.with_timezone(&second.offset)),
                None => ev.recv_time.with_timezone(&second.offset),
            },
        }
    }

    pub(super) fn push_rfc3339(&self, out: &mut Vec<u8>) {
        match self {
            Shown::Recv { cache, micros } => {
                out.extend_from_slice(&cache.recv_rfc3339);
                out.push(b'.');
                push_digits(out, *micros, 6);
                out.extend_from_slice(&cache.recv_offset_text);
            }
            Shown::Sender {
                second,
                micros,
                frac_digits,
            } => {
                out.extend_from_slice(&second.rfc3339);
                if *frac_digits > 0 {
                    out.push(b'.');
                    let d = (*frac_digits).min(6);
                    push_digits(out, micros / 10u32.pow(6 - d as u32), d as usize);
                }
                out.extend_from_slice(&second.offset_text);
            }
        }
    }

    pub(super) fn push_traditional(&self, out: &mut Vec<u8>) {
        match self {
            Shown::Recv { cache, .. } => out.extend_from_slice(&cache.recv_traditional),
            Shown::Sender { second, .. } => out.extend_from_slice(&second.traditional),
        }
    }
}

/// Appends one line for `ev` in `format` to `out`. `host` is the host name to write.
pub fn format_line(format: Format, ev: &Event<'_>, cache: &mut TimeCache, out: &mut Vec<u8>) {
    let time = shown(ev, cache);
    match format {
        Format::Traditional | Format::Rfc3339 | Format::Rfc3164 => {
            if format == Format::Rfc3164 {
                out.push(b'<');
                push_number(
                    out,
                    (ev.msg.facility.code() as u32) * 8 + ev.msg.severity.code() as u32,
                );
                out.push(b'>');
            }
            if format != Format::Rfc3339 {
                time.push_traditional(out);
            } else {
                time.push_rfc3339(out);
            }
            out.push(b' ');
            push_escaped(out, ev.host());
            out.push(b' ');
            if let Some(tag) = ev.msg.appname {
                push_escaped(out, tag);
                if let Some(pid) = ev.msg.procid {
                    out.push(b'[');
                    push_escaped(out, pid);
                    out.push(b']');
                }
                out.extend_from_slice(b": ");
            }
            push_escaped(out, ev.msg.msg);
            if ev.msg.flags.contains(Flags::TRUNCATED) {
                out.extend_from_slice(TRUNCATED_MARK);
            }
        }
        Format::Rfc5424 => {
            out.push(b'<');
            push_number(
                out,
                (ev.msg.facility.code() as u32) * 8 + ev.msg.severity.code() as u32,
            );
            out.extend_from_slice(b">1 ");
            time.push_rfc3339(out);
            for field in [Some(ev.host()), ev.msg.appname, ev.msg.procid, ev.msg.msgid] {
                out.push(b' ');
                match field {
                    Some(f) if !f.is_empty() => push_escaped_no_space(out, f),
                    _ => out.push(b'-'),
                }
            }
            out.push(b' ');
            match ev.msg.structured_data {
                Some(sd) => push_escaped(out, sd),
                None => out.push(b'-'),
            }
            if !ev.msg.msg.is_empty() {
                out.push(b' ');
                push_escaped(out, ev.msg.msg);
            }
            if ev.msg.flags.contains(Flags::TRUNCATED) {
                out.extend_from_slice(TRUNCATED_MARK);
            }
        }
        Format::Json => push_json(out, ev, &time),
    }
    out.push(b'\n');
}

fn push_json(out: &mut Vec<u8>, ev: &Event<'_>, time: &Shown<'_>) {
    let m = &ev.msg;
    out.extend_from_slice(b"{\"time\":\"");
    time.push_rfc3339(out);
    out.extend_from_slice(b"\",\"received\":\"");
    let utc = ev.recv_time.naive_utc();
    push_date_time(out, &utc);
    out.push(b'.');
    push_digits(out, ev.recv_time.timestamp_subsec_micros(), 6);
    out.extend_from_slice(b"Z\",\"host\":");
    push_json_str(out, ev.host());
    out.extend_from_slice(b",\"facility\":\"");
    out.extend_from_slice(m.facility.name().as_bytes());
    out.extend_from_slice(b"\",\"severity\":\"");
    out.extend_from_slice(m.severity.name().as_bytes());
    out.push(b'"');
    for (key, value) in [
        ("appname", m.appname),
        ("procid", m.procid),
        ("msgid", m.msgid),
    ] {
        if let Some(v) = value {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            push_json_str(out, v);
        }
    }
    if let Some(raw) = m.structured_data {
        out.extend_from_slice(b",\"structured_data\":{");
        for (i, el) in sd::elements(raw).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, el.id);
            out.extend_from_slice(b":{");
            push_string_members(out, el.params.iter().map(|(k, v)| (&k[..], &v[..])));
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"msg\":");
    push_json_str(out, m.msg);
    if !m.fields.is_empty() || m.parsed.is_some() {
        out.extend_from_slice(b",\"fields\":");
        push_fields_object(out, m);
    }
    out.extend_from_slice(b",\"input\":");
    push_json_str(out, ev.source.input.as_bytes());
    if let Some(peer) = ev.source.peer {
        use std::io::Write;
        let _ = write!(out, ",\"peer\":\"{peer}\"");
    }
    if let Some(name) = &ev.source.tls_peer {
        out.extend_from_slice(b",\"tls_peer\":");
        push_json_str(out, name.as_bytes());
    }
    if let Some(c) = ev.creds.or(ev.source.creds) {
        use std::io::Write;
        let _ = write!(
            out,
            ",\"pid\":{},\"uid\":{},\"gid\":{}",
            c.pid, c.uid, c.gid
        );
    }
    for (flag, key) in [
        (Flags::MALFORMED, ",\"malformed\":true"),
        (Flags::TRUNCATED, ",\"truncated\":true"),
        (Flags::BAD_PRI, ",\"bad_pri\":true"),
    ] {
        if m.flags.contains(flag) {
            out.extend_from_slice(key.as_bytes());
        }
    }
    out.push(b'}');
}

#[inline]
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == 0xc2
}

/// How many bytes at the start of `s` form a control character: C0 and DEL (one byte), or a
/// C1 control (U+0080..U+009F, `C2 80`..`C2 9F` in UTF-8: CSI, NEL and friends act on
/// terminals too). 0 when `s` does not start with one.
#[inline]
fn control_len(s: &[u8]) -> usize {
    match s {
        [b, ..] if *b < 0x20 || *b == 0x7f => 1,
        [0xc2, 0x80..=0x9f, ..] => 2,
        _ => 0,
    }
}

/// Whether the `N` bytes at the start of `s` hold a control character. Written without
/// branches so that the compiler vectorises it; `s` must have at least `N` bytes.
#[inline(always)]
fn any_control<const N: usize>(s: &[u8]) -> bool {
    s.first_chunk::<N>()
        .is_some_and(|block| block.iter().fold(false, |any, &b| any | is_control(b)))
}

/// The index of the first control character in `s`. Almost every message has none, so the
/// text is checked in 32-byte blocks and its tail in one more block (16 or 8 bytes for short
/// fields) that overlaps bytes already checked; only a block that holds one is searched byte
/// by byte.
#[inline]
fn first_control(s: &[u8]) -> Option<usize> {
    let scalar = |from: usize| {
        s[from..]
            .iter()
            .position(|&b| is_control(b))
            .map(|k| from + k)
    };
    let len = s.len();
    let mut at = 0;
    while len - at >= 32 {
        if any_control::<32>(&s[at..]) {
            return scalar(at);
        }
        at += 32;
    }
    // The rest, `len - at` bytes: blocks ending at `len`, overlapping clean bytes before `at`.
    let hit = match len {
        _ if at == len => false,
        32.. => any_control::<32>(&s[len - 32..]),
        16.. => any_control::<16>(s) || any_control::<16>(&s[len - 16..]),
        8.. => any_control::<8>(s) || any_control::<8>(&s[len - 8..]),
        _ => true,
    };
    if hit {
        scalar(at)
    } else {
        None
    }
}

/// Appends `s` with control characters as `#ooo` (rsyslog's escaping).
pub fn push_escaped(out: &mut Vec<u8>, mut s: &[u8]) {
    while let Some(i) = first_control(s) {
        out.extend_from_slice(&s[..i]);
        let n = control_len(&s[i..]);
        for &b in &s[i..i + n.max(1)] {
            if n == 0 {
                out.push(b); // a 0xC2 that starts a printable character
            } else {
                push_octal(out, b);
            }
        }
        s = &s[i + n.max(1)..];
    }
    out.extend_from_slice(s);
}

/// Like [`push_escaped`], and also escapes spaces, for RFC 5424 header fields.
fn push_escaped_no_space(out: &mut Vec<u8>, s: &[u8]) {
    let mut i = 0;
    while i < s.len() {
        let n = control_len(&s[i..]);
        if n > 0 || s[i] == b' ' {
            for &b in &s[i..i + n.max(1)] {
                push_octal(out, b);
            }
        } else {
            out.push(s[i]);
        }
        i += n.max(1);
    }
}

fn push_octal(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
}

/// Appends a message's fields as one JSON object: the input's own (a journal entry's, a
/// file's `path`) as strings, then those a body parser read with their JSON types
/// (serde_json escapes control characters in them as JSON requires). `{}` when it has none.
pub fn push_fields_object(out: &mut Vec<u8>, m: &crate::message::Message<'_>) {
    out.push(b'{');
    push_string_members(out, m.fields.iter().map(|(k, v)| (*k, *v)));
    for (i, (k, v)) in m.parsed.into_iter().flatten().enumerate() {
        if i > 0 || !m.fields.is_empty() {
            out.push(b',');
        }
        push_json_str(out, k.as_bytes());
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.push(b'}');
}

/// Appends `"key":"value"` members, comma-separated, both sides escaped as JSON strings.
fn push_string_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, k);
        out.push(b':');
        push_json_str(out, v);
    }
}

/// Appends `s` as a JSON string: quoted, escaped, invalid UTF-8 replaced by U+FFFD.
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        let mut rest = chunk.valid().as_bytes();
        while let Some(i) = rest
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f || b == 0xc2)
        {
            out.extend_from_slice(&rest[..i]);
            let c = rest[i];
            let mut used = 1;
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                // U+0080..U+009F (C1 controls) as \u escapes; other characters starting with
                // C2 (U+00A0..U+00BF) as they are.
                0xc2 => match rest.get(i + 1) {
                    Some(&c1 @ 0x80..=0x9f) => {
                        out.extend_from_slice(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[(c1 >> 4) as usize],
                            HEX[(c1 & 15) as usize],
                        ]);
                        used = 2;
                    }
                    _ => out.push(c),
                },
                c => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 15) as usize],
                ]),
            }
            rest = &rest[i + used..];
        }
        out.extend_from_slice(rest);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

fn push_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (0..width).rev() {
        out[start + i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `n` in decimal without allocating (octet counts, cursors).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_number(out: &mut Vec<u8>, n: u32) {
    let width = if n >= 100 {
        3
    } else if n >= 10 {
        2
    } else {
        1
    };
    push_digits(out, n, width);
}

/// `YYYY-MM-DDTHH:MM:SS`.
fn push_date_time(out: &mut Vec<u8>, t: &NaiveDateTime) {
    push_digits(out, t.year().clamp(0, 9999) as u32, 4);
    out.push(b'-');
    push_digits(out, t.month(), 2);
    out.push(b'-');
    push_digits(out, t.day(), 2);
    out.push(b'T');
    push_digits(out, t.hour(), 2);
    out.push(b':');
    push_digits(out, t.minute(), 2);
    out.push(b':');
    push_digits(out, t.second().min(59), 2);
}

/// `Mmm dd HH:MM:SS`, the day padded with a space (RFC 3164 §4.1.2).
fn push_traditional(out: &mut Vec<u8>, t: &NaiveDateTime) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    out.extend_from_slice(MONTHS[t.month0() as usize]);
    out.push(b' ');
    if t.day() < 10 {
        out.push(b' ');
    }
    push_number(out, t.day());
    out.push(b' ');
    push_digits(out, t.hour(), 2);
    out.push(b':');
    push_digits(out, t.minute(), 2);
    out.push(b':');
    push_digits(out, t.second().min(59), 2);
}

/// `+HH:MM` (or `-HH:MM`).
fn push_offset(out: &mut Vec<u8>, o: FixedOffset) {
    let secs = o.local_minus_utc();
    out.push(if secs < 0 { b'-' } else { b'+' });
    let m = secs.unsigned_abs() / 60;
    push_digits(out, m / 60, 2);
    out.push(b':');
    push_digits(out, m % 60, 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_without_fmt() {
        for n in [0, 7, 10, 99, 100, 65_535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
    use crate::message::{Facility, Message, Severity, Source, Timestamp};
    use chrono::NaiveDate;
    use std::sync::Arc;

    fn source(sender_ts: bool) -> Source {
        Source {
            input: Arc::from("udp"),
            peer: None,
            creds: None,
            default_host: Arc::from("here"),
            use_sender_timestamp: sender_ts,
            tls_peer: None,
        }
    }

    fn msg(text: &[u8]) -> Message<'_> {
        Message {
            facility: Facility::USER,
            severity: Severity::NOTICE,
            version: None,
            timestamp: Some(Timestamp {
                local: NaiveDate::from_ymd_opt(2026, 11, 1)
                    .unwrap()
                    .and_hms_micro_opt(9, 41, 3, 120_000)
                    .unwrap(),
                offset: Some(FixedOffset::east_opt(3600).unwrap()),
                kind: TimestampKind::Rfc3339,
                frac_digits: 3,
            }),
            hostname: Some(b"web01"),
            appname: Some(b"myapp"),
            procid: Some(b"42"),
            msgid: None,
            structured_data: None,
            msg: text,
            flags: Flags::empty(),
            fields: &[],
            parsed: None,
        }
    }

    fn line(format: Format, m: Message<'_>, src: &Source) -> String {
        let ev = Event {
            msg: m,
            recv_time: Utc::now(),
            source: src,
            creds: None,
        };
        let mut out = Vec::new();
        format_line(format, &ev, &mut TimeCache::default(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn traditional_and_rfc3339_lines() {
        let src = source(true);
        assert_eq!(
            line(Format::Traditional, msg(b"hi"), &src),
            "Nov  1 09:41:03 web01 myapp[42]: hi\n"
        );
        assert_eq!(
            line(Format::Rfc3339, msg(b"hi"), &src),
            "2026-11-01T09:41:03.120+01:00 web01 myapp[42]: hi\n"
        );
        assert_eq!(
            line(Format::Rfc5424, msg(b"hi"), &src),
            "<13>1 2026-11-01T09:41:03.120+01:00 web01 myapp 42 - - hi\n"
        );
        // What forward outputs send with format = "rfc3164".
        assert_eq!(
            line(Format::Rfc3164, msg(b"hi"), &src),
            "<13>Nov  1 09:41:03 web01 myapp[42]: hi\n"
        );
    }

    #[test]
    fn control_characters_are_escaped_as_rsyslog_does() {
        let src = source(true);
        assert_eq!(
            line(Format::Traditional, msg(b"a\nb\tc\x1b[31md\x7f"), &src),
            "Nov  1 09:41:03 web01 myapp[42]: a#012b#011c#033[31md#177\n"
        );
    }

    #[test]
    fn json_is_one_valid_object_per_line() {
        let src = source(true);
        let mut m = msg(b"quote \" backslash \\ nl \n bad \xff end");
        m.flags.insert(Flags::TRUNCATED);
        let l = line(Format::Json, m, &src);
        assert_eq!(l.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["msg"], "quote \" backslash \\ nl \n bad \u{fffd} end");
        assert_eq!(v["appname"], "myapp");
        assert_eq!(v["facility"], "user");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["time"], "2026-11-01T09:41:03.120+01:00");
    }

    #[test]
    fn local_sources_show_reception_time_and_this_host() {
        let src = source(false);
        let mut m = msg(b"hi");
        m.hostname = None;
        let l = line(Format::Rfc3339, m, &src);
        // 2026-...T..:..:...ffffff+hh:mm here myapp[42]: hi
        let (ts, rest) = l.split_once(' ').unwrap();
        assert_eq!(ts.len(), "2026-11-21T09:41:03.123456+00:00".len(), "{l}");
        assert_eq!(rest, "here myapp[42]: hi\n");
    }

    #[test]
    fn control_characters_are_found_in_every_position() {
        // Every length up to 100: full blocks, and each tail (32, 16, 8 bytes, shorter).
        for len in 0..=100 {
            for at in 0..len {
                let mut s = vec![b'a'; len];
                s[at] = b'\n';
                assert_eq!(first_control(&s), Some(at), "len {len} at {at}");
                s[at] = 0x7f;
                assert_eq!(first_control(&s), Some(at));
                s[len - 1] = 0x1b;
                assert_eq!(first_control(&s), Some(at), "the first of two");
            }
            assert_eq!(first_control(&vec![b' '; len]), None);
            assert_eq!(
                first_control(&vec![0x80; len]),
                None,
                "UTF-8 bytes are not control characters"
            );
        }
    }

    #[test]
    fn c1_controls_are_escaped_and_other_characters_kept() {
        let src = source(true);
        // CSI (U+009B) and NEL (U+0085) act on terminals; é (C3 A9) and ¢ (C2 A2) are text.
        let l = line(
            Format::Traditional,
            msg("a\u{9b}31m b\u{85}c é ¢".as_bytes()),
            &src,
        );
        assert_eq!(
            l,
            "Nov  1 09:41:03 web01 myapp[42]: a#302#23331m b#302#205c é ¢\n"
        );
        let l = line(Format::Json, msg("a\u{9b}b ¢".as_bytes()), &src);
        assert!(l.contains(r#""msg":"a\u009bb ¢""#), "{l}");
    }

    #[test]
    fn truncated_messages_are_marked() {
        let src = source(true);
        let mut m = msg(b"abc");
        m.flags.insert(Flags::TRUNCATED);
        assert!(line(Format::Rfc3339, m, &src).ends_with("abc [truncated]\n"));
    }
}
