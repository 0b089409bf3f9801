//! Header values from parsed fields (`severity_from`, `time_from`, `host_from`, `tag_from`):
//! a program that logs `{"level":"error","ts":1763718063123,"host":"db7"}` over a plain
//! `logger` gets the severity, time and host it meant, as Vector's remaps and rsyslog's
//! `set $syslogseverity` do. Pure: it only rewrites the borrowed [`Message`].
//!
//! - severity: a level name as programs write them, any case: rsyslog's names and numbers,
//!   `warn`, `error`, `fatal`, `critical`, `panic`, `trace`, `information`;
//! - time: RFC 3339 text, or a number (or numeric text) of Unix seconds, milliseconds,
//!   microseconds or nanoseconds, told apart by size;
//! - host and tag: a string.
//!
//! A value that does not fit leaves the header as it was.

use chrono::{DateTime, FixedOffset, Utc};

use crate::message::{FieldValue, Message, Severity, Timestamp, TimestampKind};

/// Which field (its path under `fields.`) gives each header value; `None` leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFrom {
    /// `severity_from`.
    pub severity: Option<String>,
    /// `time_from`.
    pub time: Option<String>,
    /// `host_from`.
    pub host: Option<String>,
    /// `tag_from`.
    pub tag: Option<String>,
}

impl HeaderFrom {
    /// Whether any header value is taken from a field.
    pub fn is_empty(&self) -> bool {
        self == &HeaderFrom::default()
    }

    /// Sets the header values the message's fields give.
    pub fn apply<'a>(&self, m: &mut Message<'a>) {
        if let Some(v) = self.severity.as_deref().and_then(|p| m.lookup(p)) {
            if let Some(s) = v.text().and_then(|t| severity(&t)) {
                m.severity = s;
            }
        }
        if let Some(v) = self.time.as_deref().and_then(|p| m.lookup(p)) {
            if let Some(t) = time(&v) {
                m.timestamp = Some(t);
            }
        }
        if let Some(host) = self.host.as_deref().and_then(|p| text(m.lookup(p))) {
            m.hostname = Some(host);
        }
        if let Some(tag) = self.tag.as_deref().and_then(|p| text(m.lookup(p))) {
            m.appname = Some(tag);
        }
    }
}

/// A non-empty string value, borrowed for as long as the message's fields.
fn text(v: Option<FieldValue<'_>>) -> Option<&[u8]> {
    match v? {
        FieldValue::Json(serde_json::Value::String(s)) if !s.is_empty() => Some(s.as_bytes()),
        FieldValue::Text(t) if !t.is_empty() => Some(t),
        _ => None,
    }
}

/// A level as programs write it.
fn severity(text: &[u8]) -> Option<Severity> {
    let name = std::str::from_utf8(text).ok()?.trim();
    Severity::from_name(name).or_else(|| {
        let alias = match name.to_ascii_lowercase().as_str() {
            "fatal" | "critical" => "crit",
            "emergency" => "emerg",
            "information" | "informational" => "info",
            "trace" => "debug",
            "warnings" => "warning",
            "errors" => "err",
            _ => return None,
        };
        Severity::from_name(alias)
    })
}

/// A time from RFC 3339 text or Unix seconds, milliseconds, microseconds or nanoseconds.
fn time(v: &FieldValue<'_>) -> Option<Timestamp> {
    if let Some(t) = v.text() {
        if let Some(parsed) = std::str::from_utf8(&t)
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        {
            let digits = std::str::from_utf8(&t)
                .ok()
                .and_then(|s| s.split_once('.'))
                .map_or(0, |(_, rest)| {
                    rest.bytes().take_while(u8::is_ascii_digit).count().min(6)
                });
            return Some(stamp(parsed, digits as u8));
        }
    }
    let n = v.number()?;
    let (micros, digits) = match n.abs() {
        x if x >= 1e17 => (n / 1e3, 6),
        x if x >= 1e14 => (n, 6),
        x if x >= 1e11 => (n * 1e3, 3),
        _ => (n * 1e6, if n.fract() == 0.0 { 0 } else { 6 }),
    };
    let t = DateTime::<Utc>::from_timestamp_micros(micros as i64)?;
    Some(stamp(t.fixed_offset(), digits))
}

fn stamp(t: DateTime<FixedOffset>, frac_digits: u8) -> Timestamp {
    Timestamp {
        local: t.naive_local(),
        offset: Some(*t.offset()),
        kind: TimestampKind::Rfc3339,
        frac_digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Facility, Flags};

    fn message<'a>(fields: &'a serde_json::Map<String, serde_json::Value>) -> Message<'a> {
        Message {
            facility: Facility::USER,
            severity: Severity::from_name("notice").unwrap(),
            version: None,
            timestamp: None,
            hostname: Some(b"sender"),
            appname: Some(b"logger"),
            procid: None,
            msgid: None,
            structured_data: None,
            msg: b"{}",
            flags: Flags::empty(),
            fields: &[],
            parsed: Some(fields),
        }
    }

    fn from(severity: &str, time: &str, host: &str, tag: &str) -> HeaderFrom {
        HeaderFrom {
            severity: Some(severity.into()),
            time: Some(time.into()),
            host: Some(host.into()),
            tag: Some(tag.into()),
        }
    }

    #[test]
    fn fields_set_severity_time_host_and_tag() {
        let fields = serde_json::json!({"level": "FATAL", "ts": 1795254063123u64, "h": "db7", "app": {"name": "billing"}});
        let fields = fields.as_object().unwrap();
        let mut m = message(fields);
        from("level", "ts", "h", "app.name").apply(&mut m);
        assert_eq!(m.severity, Severity::from_name("crit").unwrap());
        let ts = m.timestamp.unwrap();
        assert_eq!(ts.local.to_string(), "2026-11-21 09:41:03.123");
        assert_eq!(ts.frac_digits, 3);
        assert_eq!(m.hostname, Some(&b"db7"[..]));
        assert_eq!(m.appname, Some(&b"billing"[..]));
    }

    #[test]
    fn rfc3339_text_seconds_and_what_does_not_fit() {
        let fields = serde_json::json!({"a": "2026-11-21T10:41:03.5+01:00", "b": "1795254063", "c": "soon", "l": "verbose", "h": ""});
        let fields = fields.as_object().unwrap();
        let mut m = message(fields);
        from("l", "a", "h", "missing").apply(&mut m);
        let ts = m.timestamp.unwrap();
        assert_eq!(ts.local.to_string(), "2026-11-21 10:41:03.500");
        assert_eq!(ts.offset, FixedOffset::east_opt(3600));
        assert_eq!(ts.frac_digits, 1);
        assert_eq!(m.severity, Severity::from_name("notice").unwrap(), "kept");
        assert_eq!(
            m.hostname,
            Some(&b"sender"[..]),
            "an empty host is kept out"
        );
        assert_eq!(m.appname, Some(&b"logger"[..]));
        let mut m = message(fields);
        from("l", "b", "h", "c").apply(&mut m);
        assert_eq!(
            m.timestamp.unwrap().local.to_string(),
            "2026-11-21 09:41:03"
        );
        let mut m = message(fields);
        from("l", "c", "h", "c").apply(&mut m);
        assert_eq!(m.timestamp, None, "text that is no time leaves it");
    }
}
