//! A stored line read back: its fields, parsed in the format the file is written in, the
//! filter test, and the rendering in the format a subscriber asked for. Pure.
//!
//! `json` and `rfc5424` lines carry every field. `traditional` and `rfc3339` lines carry
//! time, host, tag, pid and text but no facility or severity, so a priority or facility
//! filter on such a file is refused up front ([`supports`]) rather than silently matching
//! nothing. `raw` files (other programs' logs) are lines of text with no fields at all.

use std::borrow::Cow;

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use serde::Deserialize;

use super::request::{Filter, OutputFormat};
use crate::config::Format;
use crate::message::{Facility, Severity};
use crate::store::history::{line_time, Position};

/// The fields of one stored line that filters and renderings use.
#[derive(Debug, Default, PartialEq)]
pub struct Fields<'a> {
    /// The line's timestamp.
    pub time: Option<DateTime<Utc>>,
    /// Host name.
    pub host: Option<Cow<'a, str>>,
    /// Program name.
    pub tag: Option<Cow<'a, str>>,
    /// Process id.
    pub pid: Option<Cow<'a, str>>,
    /// Facility, when the format stores it.
    pub facility: Option<Facility>,
    /// Severity, when the format stores it.
    pub severity: Option<Severity>,
    /// The message text.
    pub msg: Cow<'a, str>,
}

/// Whether a file in `format` (`None`: raw) can serve `filter`; the error says why not.
pub fn supports(format: Option<Format>, filter: &Filter, file: &str) -> Result<(), String> {
    let has_priority = matches!(format, Some(Format::Json | Format::Rfc5424));
    if filter.needs_priority() && !has_priority {
        let written = match format {
            None => "raw text",
            Some(Format::Traditional) => "the traditional format",
            Some(_) => "the rfc3339 format",
        };
        return Err(format!(
            "`{file}` is written in {written}, which stores no priority or facility, so `p` and `facility` cannot filter it; follow a file written with format = \"json\" or \"rfc5424\", or filter by tag, host or text"
        ));
    }
    if format.is_none() && (!filter.tags.is_empty() || !filter.hosts.is_empty()) {
        return Err(format!(
            "`{file}` is raw text with no tag or host fields; filter it with `g` (a pattern) instead"
        ));
    }
    Ok(())
}

/// Parses `line` as written in `format` (`None`: raw text). `written` is when the file was
/// last written, for the year of traditional timestamps.
pub fn parse(line: &[u8], format: Option<Format>, written: NaiveDateTime) -> Fields<'_> {
    match format {
        None => Fields {
            msg: text(line),
            ..Fields::default()
        },
        Some(Format::Json) => parse_json(line).unwrap_or_else(|| Fields {
            msg: text(line),
            ..Fields::default()
        }),
        Some(Format::Rfc5424) => parse_5424(line),
        Some(Format::Traditional | Format::Rfc3339 | Format::Rfc3164) => parse_text(line, written),
    }
}

#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    appname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    procid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    facility: Option<Cow<'a, str>>,
    #[serde(borrow)]
    severity: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msg: Cow<'a, str>,
}

fn parse_json(line: &[u8]) -> Option<Fields<'_>> {
    let j: JsonLine<'_> = serde_json::from_slice(line).ok()?;
    Some(Fields {
        time: j
            .time
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        host: j.host,
        tag: j.appname,
        pid: j.procid,
        facility: j.facility.and_then(|f| Facility::from_name(&f)),
        severity: j.severity.and_then(|s| Severity::from_name(&s)),
        msg: j.msg,
    })
}

/// `<PRI>1 TIME HOST APP PROCID MSGID SD MSG`, as the rfc5424 format writes it.
fn parse_5424(line: &[u8]) -> Fields<'_> {
    let raw = || Fields {
        msg: text(line),
        ..Fields::default()
    };
    let Some(close) = line.get(..5).and_then(|l| memchr::memchr(b'>', l)) else {
        return raw();
    };
    let Some(pri) = std::str::from_utf8(&line[1..close])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return raw();
    };
    let Some(rest) = line[close + 1..].strip_prefix(b"1 ") else {
        return raw();
    };
    let mut parts = rest.splitn(6, |&b| b == b' ');
    let mut next = || parts.next().filter(|p| *p != b"-");
    let time = next().and_then(|t| {
        DateTime::parse_from_rfc3339(std::str::from_utf8(t).ok()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    });
    let (host, tag, pid) = (lossy(next()), lossy(next()), lossy(next()));
    let _msgid = next();
    let sd_and_msg = parts.next().unwrap_or_default();
    Fields {
        time,
        host,
        tag,
        pid,
        facility: Facility::from_code((pri / 8) as u8),
        severity: Severity::from_code((pri % 8) as u8),
        msg: text(skip_sd(sd_and_msg)),
    }
}

fn lossy(b: Option<&[u8]>) -> Option<Cow<'_, str>> {
    b.map(text)
}

/// `bytes` as text, borrowed when it is valid UTF-8 (as stored lines nearly always are):
/// `from_utf8` checks that faster than `from_utf8_lossy`, which is kept for the rest.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The text after the STRUCTURED-DATA (`-` or `[id k="v"]…`) and one space.
fn skip_sd(s: &[u8]) -> &[u8] {
    if let Some(rest) = s.strip_prefix(b"-") {
        return rest.strip_prefix(b" ").unwrap_or(rest);
    }
    let mut i = 0;
    let mut in_quotes = false;
    while i < s.len() {
        match s[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b']' if !in_quotes && s.get(i + 1) != Some(&b'[') => {
                let rest = &s[i + 1..];
                return rest.strip_prefix(b" ").unwrap_or(rest);
            }
            _ => {}
        }
        i += 1;
    }
    b""
}

/// `TIME HOST TAG[PID]: MSG`, with the time traditional (`Nov 21 09:41:03`) or RFC 3339.
fn parse_text(line: &[u8], written: NaiveDateTime) -> Fields<'_> {
    let time = line_time(line, written);
    let after_time = match line.first() {
        Some(b'0'..=b'9') => memchr::memchr(b' ', line).map(|i| i + 1),
        _ if line.len() > 16 && line[15] == b' ' && time.is_some() => Some(16),
        _ => None,
    };
    let Some(start) = after_time else {
        return Fields {
            time,
            msg: text(line),
            ..Fields::default()
        };
    };
    let rest = &line[start..];
    let (host, rest) = match memchr::memchr(b' ', rest) {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (Some(rest), &b""[..]),
    };
    // A tag is one word ending in `: ` (or `]: ` after a pid): the first space follows a
    // colon.
    let (tag, pid, msg) = match memchr::memchr(b' ', rest) {
        Some(space) if space > 1 && rest[space - 1] == b':' => {
            let (word, i) = (&rest[..space - 1], space - 1);
            match (memchr::memchr(b'[', word), word.last()) {
                (Some(open), Some(b']')) => (
                    Some(&word[..open]),
                    Some(&word[open + 1..word.len() - 1]),
                    &rest[i + 2..],
                ),
                _ => (Some(word), None, &rest[i + 2..]),
            }
        }
        _ => (None, None, rest),
    };
    Fields {
        time,
        host: lossy(host),
        tag: lossy(tag),
        pid: lossy(pid),
        facility: None,
        severity: None,
        msg: text(msg),
    }
}

impl Fields<'_> {
    /// Whether the line passes `filter`.
    pub fn passes(&self, filter: &Filter) -> bool {
        if let Some((most, least)) = filter.priority {
            match self.severity {
                Some(s) if (most..=least).contains(&s.code()) => {}
                _ => return false,
            }
        }
        if !filter.facilities.is_empty()
            && !self
                .facility
                .is_some_and(|f| filter.facilities.contains(&f))
        {
            return false;
        }
        let listed = |list: &[String], v: &Option<Cow<'_, str>>| {
            list.is_empty() || v.as_deref().is_some_and(|v| list.iter().any(|x| x == v))
        };
        if !listed(&filter.tags, &self.tag) || !listed(&filter.hosts, &self.host) {
            return false;
        }
        if let Some(g) = &filter.grep {
            if !g.is_match(&self.msg) {
                return false;
            }
        }
        true
    }

    /// Appends the line in `format` (no newline). `stored` is the line as stored,
    /// `cursor` its event id, `file` the followed file's name.
    pub fn render(
        &self,
        format: OutputFormat,
        stored: &[u8],
        cursor: Position,
        file: &str,
        out: &mut Vec<u8>,
    ) {
        match format {
            OutputFormat::Raw => out.extend_from_slice(stored),
            OutputFormat::Cat => out.extend_from_slice(self.msg.as_bytes()),
            OutputFormat::Short | OutputFormat::ShortIso => {
                let Some(time) = self.time else {
                    out.extend_from_slice(stored);
                    return;
                };
                push_stamp(time, format == OutputFormat::Short, out);
                out.push(b' ');
                out.extend_from_slice(self.host.as_deref().unwrap_or("-").as_bytes());
                if let Some(tag) = &self.tag {
                    out.push(b' ');
                    out.extend_from_slice(tag.as_bytes());
                    if let Some(pid) = &self.pid {
                        out.push(b'[');
                        out.extend_from_slice(pid.as_bytes());
                        out.push(b']');
                    }
                    out.push(b':');
                }
                out.push(b' ');
                out.extend_from_slice(self.msg.as_bytes());
            }
            OutputFormat::Json => {
                let v = serde_json::json!({
                    "cursor": cursor.to_string(),
                    "file": file,
                    "time": self.time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)),
                    "host": self.host,
                    "tag": self.tag,
                    "pid": self.pid,
                    "facility": self.facility.map(|f| f.name()),
                    "severity": self.severity.map(|s| s.name()),
                    "priority": self.severity.map(|s| s.code()),
                    "msg": self.msg,
                    "line": String::from_utf8_lossy(stored),
                });
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
    }
}

thread_local! {
    /// The local-time stamp of the last second rendered on this thread, per style: lines
    /// come in runs from the same second, and formatting a time is most of a line's cost.
    static STAMPS: std::cell::RefCell<[(i64, String); 2]> =
        const { std::cell::RefCell::new([(i64::MIN, String::new()), (i64::MIN, String::new())]) };
}

/// Appends `time` in local time: `Nov 21 09:41:03` (`short`) or `2026-11-21T09:41:03+0100`.
fn push_stamp(time: DateTime<Utc>, short: bool, out: &mut Vec<u8>) {
    let second = time.timestamp();
    STAMPS.with(|cell| {
        let mut stamps = cell.borrow_mut();
        let (cached, text) = &mut stamps[usize::from(short)];
        if *cached != second {
            use std::fmt::Write;
            let local = time.with_timezone(&Local);
            text.clear();
            let pattern = if short {
                "%b %d %H:%M:%S"
            } else {
                "%Y-%m-%dT%H:%M:%S%z"
            };
            let _ = write!(text, "{}", local.format(pattern));
            *cached = second;
        }
        out.extend_from_slice(text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::request::Request;

    fn written() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2026-11-21 12:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn filter(q: &str) -> Filter {
        Request::parse(q, Utc::now()).unwrap().filter
    }

    #[test]
    fn every_format_yields_its_fields() {
        let json = br#"{"time":"2026-11-21T09:41:03.000001+00:00","received":"x","host":"web1","facility":"auth","severity":"err","appname":"sshd","procid":"42","msg":"Failed password"}"#;
        let f = parse(json, Some(Format::Json), written());
        assert_eq!(f.host.as_deref(), Some("web1"));
        assert_eq!(f.tag.as_deref(), Some("sshd"));
        assert_eq!(f.severity, Severity::from_name("err"));
        assert_eq!(f.msg, "Failed password");

        let l =
            b"<38>1 2026-11-21T09:41:03.000001+00:00 web1 sshd 42 - [a b=\"]x\"] Failed password";
        let f = parse(l, Some(Format::Rfc5424), written());
        assert_eq!(f.host.as_deref(), Some("web1"));
        assert_eq!(f.pid.as_deref(), Some("42"));
        assert_eq!(f.facility, Facility::from_name("auth"));
        assert_eq!(f.severity, Severity::from_name("info"));
        assert_eq!(f.msg, "Failed password");

        let f = parse(
            b"Nov 21 09:41:03 web1 sshd[42]: Failed password",
            Some(Format::Traditional),
            written(),
        );
        assert_eq!(
            (
                f.host.as_deref(),
                f.tag.as_deref(),
                f.pid.as_deref(),
                &*f.msg
            ),
            (Some("web1"), Some("sshd"), Some("42"), "Failed password")
        );
        assert!(f.time.is_some());
        assert_eq!(f.severity, None);

        let f = parse(
            b"2026-11-21T09:41:03+00:00 web1 kernel: a: b",
            Some(Format::Rfc3339),
            written(),
        );
        assert_eq!((f.tag.as_deref(), &*f.msg), (Some("kernel"), "a: b"));
        let f = parse(
            b"2026-11-21T09:41:03+00:00 web1 no tag here: x",
            Some(Format::Rfc3339),
            written(),
        );
        assert_eq!((f.tag.as_deref(), &*f.msg), (None, "no tag here: x"));
    }

    #[test]
    fn filters_select_exactly() {
        let l = b"<35>1 2026-11-21T09:41:03+00:00 web1 sshd 42 - - Failed password for root";
        let f = parse(l, Some(Format::Rfc5424), written());
        for (q, pass) in [
            ("p=err", true),
            ("p=crit", false),
            ("p=debug..err", true),
            ("facility=auth", true),
            ("facility=mail,daemon", false),
            ("t=sshd", true),
            ("t=cron", false),
            ("t=cron&t=sshd", true),
            ("host=web1", true),
            ("host=web2", false),
            ("g=password\\s%2Bfor", true),
            ("g=^root", false),
        ] {
            assert_eq!(f.passes(&filter(q)), pass, "{q}");
        }
    }

    #[test]
    fn priority_filters_are_refused_where_no_priority_is_stored() {
        let e = supports(Some(Format::Traditional), &filter("p=err"), "syslog").unwrap_err();
        assert!(e.contains("stores no priority"), "{e}");
        assert!(supports(Some(Format::Json), &filter("p=err"), "all").is_ok());
        assert!(supports(Some(Format::Traditional), &filter("t=sshd&g=x"), "syslog").is_ok());
        assert!(supports(None, &filter("t=sshd"), "nginx").is_err());
    }

    #[test]
    fn renders_as_journalctl() {
        let l = b"<35>1 2026-11-21T09:41:03+00:00 web1 sshd 42 - - Failed";
        let f = parse(l, Some(Format::Rfc5424), written());
        let cursor = Position {
            generation: 1,
            offset: 2,
        };
        let mut out = Vec::new();
        f.render(OutputFormat::Cat, l, cursor, "all", &mut out);
        assert_eq!(out, b"Failed");
        out.clear();
        f.render(OutputFormat::Raw, l, cursor, "all", &mut out);
        assert_eq!(out, l);
        out.clear();
        f.render(OutputFormat::Short, l, cursor, "all", &mut out);
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(s.ends_with(" web1 sshd[42]: Failed"), "{s}");
        out.clear();
        // short-iso: the local time with its offset, as `journalctl -o short-iso`.
        f.render(OutputFormat::ShortIso, l, cursor, "all", &mut out);
        let local = DateTime::parse_from_rfc3339("2026-11-21T09:41:03Z")
            .unwrap()
            .with_timezone(&Local);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            format!(
                "{} web1 sshd[42]: Failed",
                local.format("%Y-%m-%dT%H:%M:%S%z")
            )
        );
        out.clear();
        // Without a time (a line that did not parse), the stored line.
        let plain = parse(b"no time here", Some(Format::Rfc5424), written());
        plain.render(
            OutputFormat::ShortIso,
            b"no time here",
            cursor,
            "all",
            &mut out,
        );
        assert_eq!(out, b"no time here");
        out.clear();
        f.render(OutputFormat::Json, l, cursor, "all", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["cursor"], "0000000000000001:2");
        assert_eq!(v["severity"], "err");
        assert_eq!(v["priority"], 3);
        assert_eq!(v["line"], String::from_utf8_lossy(l).as_ref());
    }
}
