//! Line formats: turning an [`Event`] into exactly one line of bytes in a file's buffer.
//!
//! Every line ends with one `\n` and contains no other control character: text formats escape
//! them as rsyslog does (`#012` for LF, `#011` for TAB: `#` and three octal digits), and `json`
//! escapes them as JSON. Invalid UTF-8 is kept as bytes in text formats and replaced by U+FFFD
//! in `json`, which must be valid UTF-8.
//!
//! Formatting appends to a caller's buffer and allocates nothing; the [`TimeCache`] renders
//! each second's date once.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

use crate::config::Format;
use crate::message::{Event, Flags, TimestampKind};
use crate::parse::sd;

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
        }
    }
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
        let mut v = Vec::with_capacity(19);
        push_date_time(&mut v, &local);
        self.recv_rfc3339.copy_from_slice(&v);
        v.clear();
        push_traditional(&mut v, &local);
        self.recv_traditional.copy_from_slice(&v);
        v.clear();
        push_offset(&mut v, self.recv_offset);
        self.recv_offset_text.copy_from_slice(&v);
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
}

/// The time a line shows: the sender's or the reception time, as wall clock plus offset.
enum Shown<'c> {
    /// The reception time, rendered by the cache, with microseconds.
    Recv { cache: &'c TimeCache, micros: u32 },
    /// The sender's timestamp.
    Sender {
        local: NaiveDateTime,
        offset: FixedOffset,
        frac_digits: u8,
    },
}

fn shown<'c>(ev: &Event<'_>, cache: &'c mut TimeCache) -> Shown<'c> {
    cache.refresh(ev.recv_time);
    if ev.source.use_sender_timestamp {
        if let Some(ts) = ev.msg.timestamp {
            let offset = match (ts.kind, ts.offset) {
                (TimestampKind::Rfc3339, Some(o)) => o,
                _ => cache.zone_offset(&ts.local),
            };
            return Shown::Sender {
                local: ts.local,
                offset,
                frac_digits: ts.frac_digits,
            };
        }
    }
    Shown::Recv {
        cache,
        micros: ev.recv_time.timestamp_subsec_micros(),
    }
}

impl Shown<'_> {
    fn push_rfc3339(&self, out: &mut Vec<u8>) {
        match self {
            Shown::Recv { cache, micros } => {
                out.extend_from_slice(&cache.recv_rfc3339);
                out.push(b'.');
                push_digits(out, *micros, 6);
                out.extend_from_slice(&cache.recv_offset_text);
            }
            Shown::Sender {
                local,
                offset,
                frac_digits,
            } => {
                push_date_time(out, local);
                if *frac_digits > 0 {
                    out.push(b'.');
                    let micros = local.and_utc().timestamp_subsec_micros();
                    let d = (*frac_digits).min(6);
                    push_digits(out, micros / 10u32.pow(6 - d as u32), d as usize);
                }
                push_offset(out, *offset);
            }
        }
    }

    fn push_traditional(&self, out: &mut Vec<u8>) {
        match self {
            Shown::Recv { cache, .. } => out.extend_from_slice(&cache.recv_traditional),
            Shown::Sender { local, .. } => push_traditional(out, local),
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
            for (j, (k, v)) in el.params.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                push_json_str(out, k);
                out.push(b':');
                push_json_str(out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"msg\":");
    push_json_str(out, m.msg);
    if !m.fields.is_empty() {
        out.extend_from_slice(b",\"fields\":{");
        for (i, (k, v)) in m.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, k);
            out.push(b':');
            push_json_str(out, v);
        }
        out.push(b'}');
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

/// The index of the first control character in `s`. Scans 32-byte blocks without branches
/// (the compiler vectorises that), since almost every message has none.
#[inline]
fn first_control(s: &[u8]) -> Option<usize> {
    let mut blocks = s.chunks_exact(32);
    let mut at = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | is_control(b)) {
            return block.iter().position(|&b| is_control(b)).map(|k| at + k);
        }
        at += 32;
    }
    blocks
        .remainder()
        .iter()
        .position(|&b| is_control(b))
        .map(|k| at + k)
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
        for len in [0, 1, 31, 32, 33, 64, 100] {
            for at in 0..len {
                let mut s = vec![b'a'; len];
                s[at] = b'\n';
                assert_eq!(first_control(&s), Some(at), "len {len} at {at}");
                s[at] = 0x7f;
                assert_eq!(first_control(&s), Some(at));
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
