//! Sender timestamps: RFC 3339 (RFC 5424 §6.2.3, also sent by BSD-style senders), BSD
//! `Mmm dd hh:mm:ss` with its real-world variants, and the year inference for year-less
//! BSD timestamps. Pure byte parsing into [`Timestamp`]; it never looks at the clock itself,
//! the reception time comes from the caller.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use crate::message::{Timestamp, TimestampKind};

/// Reads exactly `n` ASCII digits at `s[at..]`.
#[inline]
fn num(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Reads a fraction's digits starting at `s[at]` (just after the `.`): returns the value in
/// microseconds (extra digits truncated), the number of digits kept (0..=6) and the index
/// after the last digit.
#[inline]
fn fraction(s: &[u8], at: usize) -> (u32, u8, usize) {
    let mut i = at;
    let mut micro = 0u32;
    let mut kept = 0u8;
    while i < s.len() && s[i].is_ascii_digit() {
        if kept < 6 {
            micro = micro * 10 + u32::from(s[i] - b'0');
            kept += 1;
        }
        i += 1;
    }
    let mut scaled = micro;
    for _ in kept..6 {
        scaled *= 10;
    }
    (scaled, kept, i)
}

/// Parses an RFC 3339 timestamp at the start of `s`:
/// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]`. Without an offset the kind is
/// [`TimestampKind::Local`]. More than six fraction digits are truncated to microseconds.
/// `space_sep` also accepts a space instead of the `T`, as some BSD-style senders write.
/// Returns the timestamp and how many bytes it took; the caller checks what follows.
pub(crate) fn parse_rfc3339(s: &[u8], space_sep: bool) -> Option<(Timestamp, usize)> {
    if s.len() < 19 {
        return None;
    }
    let year = num(s, 0, 4)?;
    let month = num(s, 5, 2)?;
    let day = num(s, 8, 2)?;
    let sep_ok = s[10] == b'T' || (space_sep && s[10] == b' ');
    if s[4] != b'-' || s[7] != b'-' || !sep_ok || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let hour = num(s, 11, 2)?;
    let minute = num(s, 14, 2)?;
    let second = num(s, 17, 2)?;
    let mut i = 19;
    let (mut micro, mut frac_digits) = (0, 0);
    if s.get(i) == Some(&b'.') {
        let (m, kept, end) = fraction(s, i + 1);
        if end == i + 1 {
            return None; // RFC 3339 needs at least one digit after the dot
        }
        (micro, frac_digits, i) = (m, kept, end);
    }
    let offset = match s.get(i) {
        Some(b'Z') => {
            i += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(s, i + 1, 2)?;
            let om = num(s, i + 4, 2)?;
            if s[i + 3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            let secs = (oh * 3600 + om * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };
    if second > 59 {
        return None; // and_hms_micro_opt would take 60 as a leap second
    }
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_micro_opt(hour, minute, second, micro)?;
    let (offset, kind) = match offset {
        Some(secs) => (
            Some(chrono::FixedOffset::east_opt(secs)?),
            TimestampKind::Rfc3339,
        ),
        None => (None, TimestampKind::Local),
    };
    Some((
        Timestamp {
            local,
            offset,
            kind,
            frac_digits,
        },
        i,
    ))
}

/// The month for a three-letter English abbreviation, any case.
#[inline]
fn month(s: &[u8]) -> Option<u32> {
    let m = [s.first()? | 0x20, s.get(1)? | 0x20, s.get(2)? | 0x20];
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Days in `month`, counting February as 29 (the year is not known yet).
fn max_day(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Index of the first byte at or after `i` that is not a space.
#[inline]
fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    i
}

/// Parses a BSD timestamp at the start of `s`, with the variants real senders use:
/// `Mmm dd hh:mm:ss`, any case for the month, day padded with a space or a zero or not at
/// all, an optional fraction (`.123`, or a bare `.`), an optional `:` after the time, and a
/// year either before the time (`Mmm dd yyyy hh:mm:ss`, Cisco) or right after it
/// (`Mmm dd hh:mm:ss yyyy`). With a year the kind is [`TimestampKind::Local`]; without one it
/// is [`TimestampKind::Yearless`] and the year is inferred from `recv_local`, the reception
/// time on the receiver's wall clock. It must be followed by a space or the end of `s`.
pub(crate) fn parse_bsd(s: &[u8], recv_local: NaiveDateTime) -> Option<(Timestamp, usize)> {
    let month = month(s)?;
    let mut i = 3;
    if s.get(i) != Some(&b' ') {
        return None;
    }
    i = skip_spaces(s, i);
    let day = match (num(s, i, 2), num(s, i, 1)) {
        (Some(d), _) => {
            i += 2;
            d
        }
        (None, Some(d)) => {
            i += 1;
            d
        }
        _ => return None,
    };
    if s.get(i) != Some(&b' ') {
        return None;
    }
    i = skip_spaces(s, i);
    let mut year = None;
    if s.get(i + 4) == Some(&b' ') {
        year = Some(num(s, i, 4)?);
        i = skip_spaces(s, i + 4);
    }
    let hour = num(s, i, 2)?;
    let minute = num(s, i + 3, 2)?;
    let second = num(s, i + 6, 2)?;
    if s[i + 2] != b':' || s[i + 5] != b':' {
        return None;
    }
    i += 8;
    let (mut micro, mut frac_digits) = (0, 0);
    if s.get(i) == Some(&b'.') {
        let (m, kept, end) = fraction(s, i + 1);
        (micro, frac_digits, i) = (m, kept, end);
    }
    if s.get(i) == Some(&b':') {
        i += 1;
    }
    match s.get(i) {
        None | Some(b' ') => {}
        _ => return None,
    }
    // `Mmm dd hh:mm:ss yyyy host`: a four-digit word right after the time is the year.
    if year.is_none() && s.get(i) == Some(&b' ') {
        let j = i + 1;
        if matches!(s.get(j + 4), None | Some(b' ')) {
            if let Some(y) = num(s, j, 4) {
                year = Some(y);
                i = j + 4;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 || day == 0 || day > max_day(month) {
        return None;
    }
    let (local, kind) = match year {
        Some(y) => (
            NaiveDate::from_ymd_opt(y as i32, month, day)?
                .and_hms_micro_opt(hour, minute, second, micro)?,
            TimestampKind::Local,
        ),
        None => (
            infer_year(month, day, hour, minute, second, micro, recv_local)?,
            TimestampKind::Yearless,
        ),
    };
    Some((
        Timestamp {
            local,
            offset: None,
            kind,
            frac_digits,
        },
        i,
    ))
}

/// Gives a year-less date the year that puts it nearest to the reception time (as rsyslog
/// and journald do): a Dec 31 message received on Jan 1 is from last year, a Jan 1 message
/// received on Dec 31 (a sender's clock running ahead) is from next year. Feb 29 takes the
/// nearest leap year among the previous, current and next year, or else the latest leap
/// year before them.
pub(crate) fn infer_year(
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
    recv_local: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|d| d.and_hms_micro_opt(hour, minute, second, micro))
    };
    let y = recv_local.year();
    // Within five months of reception in the same year, that year is always the nearest.
    if (month as i32 - recv_local.month() as i32).abs() <= 5 {
        if let Some(t) = at(y) {
            return Some(t);
        }
    }
    let mut best: Option<(Duration, NaiveDateTime)> = None;
    for candidate in [y, y - 1, y + 1] {
        if let Some(t) = at(candidate) {
            let distance = (t - recv_local).abs();
            if best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, t));
            }
        }
    }
    if let Some((_, t)) = best {
        return Some(t);
    }
    // Only Feb 29 gets here, in a stretch of three non-leap years (around 2100).
    (2..=8).find_map(|back| at(y - back))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn bsd(s: &str, recv: &str) -> Option<(Timestamp, usize)> {
        parse_bsd(s.as_bytes(), at(recv))
    }

    #[test]
    fn bsd_forms() {
        let recv = "2025-03-01 00:00:00";
        let (t, n) = bsd("Nov 21 09:41:03 host", recv).unwrap();
        assert_eq!(
            (t.local, n, t.kind),
            (at("2024-11-21 09:41:03"), 15, TimestampKind::Yearless)
        );
        assert_eq!(
            bsd("Mar  7 19:06:53", recv).unwrap().0.local,
            at("2025-03-07 19:06:53")
        );
        assert_eq!(
            bsd("MAR 07 19:06:53", recv).unwrap().0.local,
            at("2025-03-07 19:06:53")
        );
        assert_eq!(bsd("Mar 7 19:06:53: x", recv).unwrap().1, 15);
        let (t, _) = bsd("Mar 7 2008 19:06:53 x", recv).unwrap();
        assert_eq!(
            (t.local, t.kind),
            (at("2008-03-07 19:06:53"), TimestampKind::Local)
        );
        let (t, n) = bsd("Mar 7 19:06:53 2008 x", recv).unwrap();
        assert_eq!(
            (t.local, t.kind, n),
            (at("2008-03-07 19:06:53"), TimestampKind::Local, 19)
        );
        let (t, _) = bsd("Mar 7 19:06:53.1234567 x", recv).unwrap();
        assert_eq!(
            (t.frac_digits, t.local.and_utc().timestamp_subsec_micros()),
            (6, 123456)
        );
        let (t, _) = bsd("Mar 7 19:06:53. x", recv).unwrap();
        assert_eq!(t.frac_digits, 0);
    }

    #[test]
    fn bsd_rejects() {
        let recv = "2025-06-01 00:00:00";
        for bad in [
            "Xyz  1 00:00:00",
            "Jan 32 00:00:00",
            "Feb 30 00:00:00",
            "Jan  1 24:00:00",
            "Jan  1 00:60:00",
            "Jan  1 00:00:60",
            "Jan  1 00:",
            "Jan  1 00:00:00x",
            "Jan",
            "",
        ] {
            assert!(bsd(bad, recv).is_none(), "{bad}");
        }
    }

    #[test]
    fn year_at_new_year() {
        // Sent on Dec 31, received on Jan 1: last year.
        assert_eq!(
            bsd("Dec 31 23:59:59", "2026-01-01 00:00:05")
                .unwrap()
                .0
                .local,
            at("2025-12-31 23:59:59")
        );
        // Sent "Jan 1" by a clock running ahead, received on Dec 31: next year.
        assert_eq!(
            bsd("Jan  1 00:00:01", "2025-12-31 23:59:50")
                .unwrap()
                .0
                .local,
            at("2026-01-01 00:00:01")
        );
        // Ordinary case: same year.
        assert_eq!(
            bsd("Jul  4 12:00:00", "2025-07-04 12:00:01")
                .unwrap()
                .0
                .local,
            at("2025-07-04 12:00:00")
        );
    }

    #[test]
    fn year_feb_29() {
        // Received in a leap year: that year.
        assert_eq!(
            bsd("Feb 29 10:00:00", "2024-02-29 10:00:01")
                .unwrap()
                .0
                .local,
            at("2024-02-29 10:00:00")
        );
        // Received early in the year after a leap year: the leap year before.
        assert_eq!(
            bsd("Feb 29 10:00:00", "2025-01-10 00:00:00")
                .unwrap()
                .0
                .local,
            at("2024-02-29 10:00:00")
        );
        // Received late in the year before a leap year: the coming leap year is nearest.
        assert_eq!(
            bsd("Feb 29 10:00:00", "2027-12-30 00:00:00")
                .unwrap()
                .0
                .local,
            at("2028-02-29 10:00:00")
        );
        // No leap year among 2099..=2101: the latest before.
        assert_eq!(
            bsd("Feb 29 10:00:00", "2100-06-01 00:00:00")
                .unwrap()
                .0
                .local,
            at("2096-02-29 10:00:00")
        );
    }

    #[test]
    fn rfc3339_forms() {
        let (t, n) = parse_rfc3339(b"2003-08-24T05:14:15.000003-07:00 x", false).unwrap();
        assert_eq!(n, 32);
        assert_eq!(t.offset, chrono::FixedOffset::west_opt(7 * 3600));
        assert_eq!((t.frac_digits, t.kind), (6, TimestampKind::Rfc3339));
        let (t, _) = parse_rfc3339(b"2009-10-16T11:51:56", false).unwrap();
        assert_eq!((t.kind, t.offset), (TimestampKind::Local, None));
        let (t, _) = parse_rfc3339(b"2006-11-10T10:43:21.15600000000000+01:00", false).unwrap();
        assert_eq!(
            (t.frac_digits, t.local.and_utc().timestamp_subsec_micros()),
            (6, 156000)
        );
        assert!(parse_rfc3339(b"2006-10-29 02:00:00Z", true).is_some());
        assert!(parse_rfc3339(b"2006-10-29 02:00:00Z", false).is_none());
        for bad in [
            &b"2003-09-29T22:09:01.Z"[..],
            b"2003-08-24T05:14:15-24:00",
            b"2018-02-29T22:14:16Z",
            b"2003-09-31T22:14:15Z",
            b"1990-12-31T23:59:60Z",
            b"201-11-22T00:00:00Z",
            b"2003-10-11",
        ] {
            assert!(
                parse_rfc3339(bad, false).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
