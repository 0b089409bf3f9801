//! Reading a line's timestamp in every format logwell writes (RFC 3339, traditional with
//! its year from the file's modification time, RFC 5424, JSON). Pure.

use super::*;

/// The timestamp a line starts with, in any format logwell writes: RFC 3339
/// (`2026-11-21T09:41:03.123456+01:00 host …`), RFC 5424 (`<13>1 2026-11-21T…`), JSON
/// (`{"time":"2026-11-21T…"`) or traditional (`Nov 21 09:41:03 host …`, local time, in the
/// latest year that does not put it after `written`, the file's last write, by more than a
/// day).
pub(crate) fn line_time(line: &[u8], written: NaiveDateTime) -> Option<DateTime<Utc>> {
    let rfc3339 = |s: &[u8]| {
        let end = memchr::memchr2(b' ', b'"', s).unwrap_or(s.len());
        let text = std::str::from_utf8(&s[..end]).ok()?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    match line.first()? {
        b'0'..=b'9' => rfc3339(line),
        b'{' => rfc3339(line.strip_prefix(b"{\"time\":\"")?),
        b'<' => {
            let close = memchr::memchr(b'>', line.get(..5)?)?;
            rfc3339(line[close + 1..].strip_prefix(b"1 ")?)
        }
        _ => traditional(line, written),
    }
}

/// `Mmm dd HH:MM:SS` (day padded with a space or a zero) in the local zone.
pub(super) fn traditional(s: &[u8], written: NaiveDateTime) -> Option<DateTime<Utc>> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let s = s.get(..15)?;
    let month = MONTHS.iter().position(|m| *m == &s[..3])? as u32 + 1;
    let digits = |a: usize, b: usize| -> Option<u32> {
        std::str::from_utf8(&s[a..b])
            .ok()?
            .trim_start()
            .parse()
            .ok()
    };
    if s[3] != b' ' || s[6] != b' ' || s[9] != b':' || s[12] != b':' {
        return None;
    }
    let (day, hour, minute, second) = (
        digits(4, 6)?,
        digits(7, 9)?,
        digits(10, 12)?,
        digits(13, 15)?,
    );
    let latest = written + chrono::Duration::days(1);
    let local = (0..=8).find_map(|back| {
        let t = NaiveDate::from_ymd_opt(written.year() - back, month, day)?
            .and_hms_opt(hour, minute, second)?;
        (t <= latest).then_some(t)
    })?;
    Local
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}
