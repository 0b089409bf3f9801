//! Unit tests for [`parse`](super::parse) on messages written for these tests: local-socket
//! forms, BOM, bad PRIs, invalid UTF-8, RFC 5424 edge cases, and a no-panic sweep.

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};

use super::*;
use crate::message::{Timestamp, TimestampKind};

fn ctx() -> ParseContext {
    ParseContext::new(
        Utc.with_ymd_and_hms(2025, 11, 21, 8, 41, 5).unwrap(),
        FixedOffset::east_opt(3600).unwrap(),
    )
}

fn p(s: &[u8]) -> Message<'_> {
    parse(s, &ctx())
}

fn b(s: &str) -> Option<&[u8]> {
    Some(s.as_bytes())
}

fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, kind: TimestampKind) -> Timestamp {
    Timestamp {
        local: NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap(),
        offset: None,
        kind,
        frac_digits: 0,
    }
}

#[test]
fn local_socket_forms_have_no_hostname() {
    let m = p(b"<13>Nov 21 09:41:03 myapp[42]: hi");
    assert_eq!(
        (m.hostname, m.appname, m.procid, m.msg),
        (None, b("myapp"), b("42"), b"hi".as_slice())
    );
    assert_eq!(
        m.timestamp,
        Some(ts(2025, 11, 21, 9, 41, 3, TimestampKind::Yearless))
    );
    assert_eq!(
        (m.facility.code(), m.severity.code(), m.flags),
        (1, 5, Flags::empty())
    );

    let m = p(b"<13>Nov 21 09:41:03 myapp: hi");
    assert_eq!(
        (m.hostname, m.appname, m.procid, m.msg),
        (None, b("myapp"), None, b"hi".as_slice())
    );

    // journald forwarding, pid 1.
    let m = p(b"<30>Nov 21 09:40:47 systemd[1]: Started thing.");
    assert_eq!(
        (m.hostname, m.appname, m.procid),
        (None, b("systemd"), b("1"))
    );
}

#[test]
fn network_forms_have_a_hostname() {
    let m = p(b"<13>Nov 21 09:41:03 host tag[42]: text");
    assert_eq!(
        (m.hostname, m.appname, m.procid, m.msg),
        (b("host"), b("tag"), b("42"), b"text".as_slice())
    );
    // A tag without colon, as rsyslog reads it.
    let m = p(b"<13>Nov 21 09:41:03 host tag text here");
    assert_eq!(
        (m.hostname, m.appname, m.msg),
        (b("host"), b("tag"), b"text here".as_slice())
    );
    // IPv6 host ending in colons is a host, not a tag.
    let m = p(b"<13>Nov 21 09:41:03 fd00:: prog: x");
    assert_eq!(
        (m.hostname, m.appname, m.msg),
        (b("fd00::"), b("prog"), b"x".as_slice())
    );
    // Only a timestamp.
    let m = p(b"<13>Nov 21 09:41:03");
    assert_eq!(
        (m.hostname, m.appname, m.msg, m.flags),
        (None, None, b"".as_slice(), Flags::empty())
    );
    // Year written after the time.
    let m = p(b"<13>Nov 21 09:41:03 2019 host app: x");
    assert_eq!(
        m.timestamp,
        Some(ts(2019, 11, 21, 9, 41, 3, TimestampKind::Local))
    );
    assert_eq!(m.hostname, b("host"));
    // RFC 3339 in a BSD message.
    let m = p(b"<13>2025-11-21T09:41:03.5+01:00 host app: x");
    let t = m.timestamp.unwrap();
    assert_eq!(
        (t.kind, t.frac_digits, t.offset),
        (TimestampKind::Rfc3339, 1, FixedOffset::east_opt(3600))
    );
    assert_eq!(m.hostname, b("host"));
}

#[test]
fn bom_is_stripped() {
    let m = p(b"<13>1 - - - - - - \xEF\xBB\xBFhello");
    assert_eq!(m.msg, b"hello");
    let m = p(b"<13>Nov 21 09:41:03 host app: \xEF\xBB\xBFhello");
    assert_eq!(m.msg, b"hello");
    // Only a leading BOM is removed.
    let m = p(b"<13>1 - - - - - - a\xEF\xBB\xBF");
    assert_eq!(m.msg, b"a\xEF\xBB\xBF");
}

#[test]
fn bad_pri_keeps_the_whole_packet() {
    for raw in [
        &b"<999>Nov 21 09:41:03 host app: x"[..],
        b"<192>x",
        b"<-1>x",
        b"<013>x",
        b"<>",
        b"<",
        b"no pri at all",
        b"",
    ] {
        let m = p(raw);
        assert_eq!(m.msg, raw);
        assert_eq!((m.facility, m.severity), (Facility::USER, Severity::NOTICE));
        assert_eq!(m.flags, Flags::MALFORMED | Flags::BAD_PRI);
    }
}

#[test]
fn valid_pri_without_header_keeps_the_rest() {
    let m = p(b"<34>Jan 32 00:00:00 h m: x");
    assert_eq!(
        (m.msg, m.flags, m.facility.code(), m.severity.code()),
        (b"Jan 32 00:00:00 h m: x".as_slice(), Flags::MALFORMED, 4, 2)
    );
    let m = p(b"<34>just text");
    assert_eq!(
        (m.msg, m.flags),
        (b"just text".as_slice(), Flags::MALFORMED)
    );
    // A broken RFC 5424 header: RFC 3164 §4.3.2 again.
    let m = p(b"<34>1 2025-13-01T00:00:00Z h a - - - x");
    assert_eq!(
        (m.msg, m.flags, m.version),
        (
            b"1 2025-13-01T00:00:00Z h a - - - x".as_slice(),
            Flags::MALFORMED,
            None
        )
    );
    // A bare `tag[pid]: text` is still read as a tag.
    let m = p(b"<34>prog[7]: text");
    assert_eq!(
        (m.appname, m.procid, m.msg, m.flags),
        (b("prog"), b("7"), b"text".as_slice(), Flags::empty())
    );
}

#[test]
fn invalid_utf8_is_kept() {
    let m = p(b"<13>Nov 21 09:41:03 h\xffst t\xfeg: bad \xc3( bytes \xff");
    assert_eq!(
        (m.hostname, m.appname),
        (Some(&b"h\xffst"[..]), Some(&b"t\xfeg"[..]))
    );
    assert_eq!(m.msg, b"bad \xc3( bytes \xff");
    let m = p(b"<13>1 - h a - - - \xEF\xBB\xBF\xc0\xaf");
    assert_eq!(m.msg, b"\xc0\xaf");
    let m = p(b"\xff\xfe");
    assert_eq!(m.msg, b"\xff\xfe");
}

#[test]
fn rfc5424_fields() {
    let m =
        p(br#"<165>1 2025-11-21T09:41:03.123456789+01:00 host app 42 ID7 [a@1 k="v\]"][b] text "#);
    assert_eq!(m.version, Some(1));
    let t = m.timestamp.unwrap();
    assert_eq!((t.kind, t.frac_digits), (TimestampKind::Rfc3339, 6));
    assert_eq!(t.local.and_utc().timestamp_subsec_micros(), 123456);
    assert_eq!(
        (m.hostname, m.appname, m.procid, m.msgid),
        (b("host"), b("app"), b("42"), b("ID7"))
    );
    assert_eq!(m.structured_data, Some(&br#"[a@1 k="v\]"][b]"#[..]));
    // Trailing spaces are the sender's: kept.
    assert_eq!(m.msg, b"text ");
    // No offset: local time, not a failure.
    let m = p(b"<13>1 2025-11-21T09:41:03 host app - - - x");
    assert_eq!(m.timestamp.unwrap().kind, TimestampKind::Local);
    assert_eq!(m.msg, b"x");
    // Nil everything.
    let m = p(b"<13>1 - - - - - -");
    assert_eq!(
        (m.timestamp, m.hostname, m.structured_data, m.msg),
        (None, None, None, b"".as_slice())
    );
    // Spaces after the SD's separator belong to MSG.
    let m = p(b"<13>1 - - - - - -  x");
    assert_eq!(m.msg, b" x");
    // Invalid SD keeps the header and the text.
    let m = p(b"<13>1 - h a - - [bad x] y");
    assert_eq!(
        (m.hostname, m.structured_data, m.msg),
        (b("h"), None, b"[bad x] y".as_slice())
    );
}

#[test]
fn line_endings_and_surrounding_space() {
    assert_eq!(p(b"<13>Nov 21 09:41:03 h a: x\n").msg, b"x");
    assert_eq!(p(b"<13>Nov 21 09:41:03 h a: x\r\n").msg, b"x");
    assert_eq!(p(b"<13>Nov 21 09:41:03 h a: x  ").msg, b"x  ");
    assert_eq!(p(b"\n  <13>1 - h a - - - x\n  ").hostname, b("h"));
}

#[test]
fn no_panic_on_any_prefix_or_byte_soup() {
    let samples: [&[u8]; 6] = [
        br#"<165>1 2025-11-21T09:41:03.123+01:00 host app 42 ID7 [a@1 k="v\]" j="\\"][b] text"#,
        b"<13>Nov 21 09:41:03 host tag[42]: text",
        b"<13>Nov 21 2025 09:41:03.123: myapp[1]: x",
        b"<13>2025-11-21 09:41:03+01:00 h Message forwarded from x: y",
        b"<13>Feb 29 09:41:03 \xEF\xBB\xBF",
        b"<13>1 - - - - - [a k=v]",
    ];
    for s in samples {
        for end in 0..=s.len() {
            let _ = p(&s[..end]);
            let _ = p(&s[end..]);
            let _ = sd::elements(&s[end..]);
        }
    }
    // A tiny deterministic generator over bytes that matter to the grammar.
    let alphabet = b"<>0123456789 -:.[]\"\\=TZ+abcNovFeb\xEF\xBB\xBF\xff\n\r";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        buf.clear();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        for k in 0..len {
            let r = x.rotate_left(k as u32 * 5) as usize;
            buf.push(alphabet[r % alphabet.len()]);
        }
        let m = p(&buf);
        let _ = m.structured_data.map(sd::elements);
    }
}

#[test]
#[ignore = "timing, meaningful only in an optimised build"]
fn parse_cost() {
    let msgs: [&[u8]; 2] = [
        b"<13>Nov 21 09:41:03 host tag[42]: text of a typical message from some daemon",
        br#"<165>1 2025-11-21T09:41:03.123456+01:00 host app 4242 ID47 [ex@1 a="3"] text"#,
    ];
    let ctx = ctx();
    for m in msgs {
        let n = 1_000_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(parse(std::hint::black_box(m), &ctx));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{ns:.1} ns/message: {}", String::from_utf8_lossy(&m[..30]));
    }
}

fn st(o: Option<&str>) -> Option<&[u8]> {
    o.filter(|v| *v != "-").map(str::as_bytes)
}

/// `syslog_loose` is the reference for well-formed messages, where it is right: on these, our
/// parser must agree with it field for field. (Where it is wrong, see the module docs.)
#[test]
fn agrees_with_syslog_loose_on_well_formed_messages() {
    use syslog_loose::{parse_message_with_year, Variant};
    let mut samples = Vec::new();
    for (pri, host, app, pid, msgid, sd, text) in [
        (
            34,
            "mymachine.example.com",
            "su",
            "-",
            "ID47",
            "-",
            "'su root' failed",
        ),
        (
            165,
            "192.0.2.1",
            "myproc",
            "8710",
            "-",
            "-",
            "%% It's time to make the do-nuts.",
        ),
        (
            13,
            "web01",
            "nginx",
            "123",
            "access",
            r#"[meta seq="1" x="a\"b"]"#,
            "GET / 200",
        ),
        (191, "h", "a", "p", "m", r#"[a@1 k="v"][b@2]"#, "multi sd"),
        (0, "kernelhost", "kernel", "-", "-", "-", "panic"),
    ] {
        samples.push(format!(
            "<{pri}>1 2026-11-21T09:41:03.123456+01:00 {host} {app} {pid} {msgid} {sd} {text}"
        ));
        samples.push(format!(
            "<{pri}>1 2026-11-21T09:41:03Z {host} {app} {pid} {msgid} {sd} {text}"
        ));
    }
    for (pri, host, tag, text) in [
        (13, "web01", "cron[42]:", "job done"),
        (86, "gateway", "sshd[1234]:", "Accepted publickey for admin"),
        (30, "db-7.example.org", "postgres:", "checkpoint complete"),
    ] {
        samples.push(format!("<{pri}>Nov 21 09:41:03 {host} {tag} {text}"));
    }
    for s in &samples {
        let ours = p(s.as_bytes());
        let theirs = parse_message_with_year(s, |_| 2025, Variant::Either);
        assert_eq!(
            ours.facility.code() as i32,
            theirs.facility.unwrap() as i32,
            "{s}"
        );
        assert_eq!(
            ours.severity.code() as i32,
            theirs.severity.unwrap() as i32,
            "{s}"
        );
        assert_eq!(ours.hostname, st(theirs.hostname), "{s}");
        assert_eq!(ours.appname, st(theirs.appname), "{s}");
        assert_eq!(
            ours.procid.map(|p| String::from_utf8_lossy(p).into_owned()),
            theirs.procid.map(|p| p.to_string()),
            "{s}"
        );
        assert_eq!(ours.msgid, st(theirs.msgid), "{s}");
        assert_eq!(ours.msg, theirs.msg.as_bytes(), "{s}");
        let ts = ours.timestamp.unwrap();
        let offset = ts.offset.unwrap_or(ctx().local_offset());
        let instant = ts.local.and_local_timezone(offset).unwrap();
        if ts.kind == TimestampKind::Rfc3339 {
            assert_eq!(Some(instant), theirs.timestamp, "{s}");
        }
        let our_sd: Vec<(String, Vec<(String, String)>)> = ours
            .structured_data
            .map(|raw| {
                super::sd::elements(raw)
                    .into_iter()
                    .map(|e| {
                        let params = e
                            .params
                            .iter()
                            .map(|(k, v)| {
                                (
                                    String::from_utf8_lossy(k).into(),
                                    String::from_utf8_lossy(v).into(),
                                )
                            })
                            .collect();
                        (String::from_utf8_lossy(e.id).into_owned(), params)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let their_sd: Vec<(String, Vec<(String, String)>)> = theirs
            .structured_data
            .iter()
            .map(|e| {
                (
                    e.id.to_string(),
                    e.params()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(our_sd, their_sd, "{s}");
    }
}
