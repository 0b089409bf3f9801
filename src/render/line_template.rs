//! Line templates (`template = "{time} {host} {tag}: {fields.user:-} {msg}"`): the text an
//! output writes for each message, when none of the fixed formats fits what a SIEM or a
//! downstream parser expects. rsyslog's `template()` and syslog-ng's `template()` do the same.
//!
//! A template is text with fields in braces (`{{` and `}}` write a brace):
//! - the header: `{host}`, `{tag}`, `{procid}`, `{msgid}`, `{facility}`, `{severity}`,
//!   `{pri}`, `{msg}`; where it came from: `{input}`, `{peer}`, `{tls_peer}`;
//! - times: `{time}` (the time the fixed formats show: the sender's or the reception time)
//!   and `{recv}` (the reception time), as `rfc3339` (the default), `traditional`, `unix`
//!   (seconds) or any strftime pattern: `{time:%Y-%m-%d %H:%M:%S}`;
//! - structured data: `{sd.ID.PARAM}` (`{sd.origin.ip}`);
//! - fields an input's parsers read, or a journal field: `{fields.NAME}`, nested by dots;
//!   `{fields}` is all of them as one JSON object (rsyslog's `%$!all-json%`), `{}` when the
//!   message has none.
//!
//! After a colon, how a value is written: `text` (the default: control characters escaped as
//! in every text format), `json` (a JSON value: strings quoted and escaped, a parsed number
//! or boolean as it is, an absent field `null`), or `csv` (a quoted CSV field). A default for
//! an absent value follows `:-`: `{fields.user:-nobody}`, `{fields.n:json:-0}`.
//!
//! Each message is one line: the template holds no control character (one trailing `\n`, as
//! rsyslog templates end, is dropped) and the line ends with `\n`. Rendering is pure and
//! appends to the caller's buffer; it allocates only for a parsed field that is not a
//! string (as text) and a structured-data value with escapes.

use std::borrow::Cow;
use std::io::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset};

use super::format::{
    push_escaped, push_fields_object, push_json_str, shown, Shown, TimeCache, TRUNCATED_MARK,
};
use crate::message::{Event, FieldValue, Flags};
use crate::parse::sd;

/// A parsed line template.
#[derive(Clone, Debug)]
pub struct LineTemplate {
    text: String,
    parts: Vec<Part>,
}

impl PartialEq for LineTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Why a template was refused; the text says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

#[derive(Clone, Debug)]
enum Part {
    Literal(Vec<u8>),
    Field {
        value: Value,
        escape: Escape,
        default: Option<Vec<u8>>,
    },
}

#[derive(Clone, Debug)]
enum Value {
    Time(TimeFormat),
    Recv(TimeFormat),
    Host,
    Tag,
    /// rsyslog's `syslogtag`: `tag[procid]:`, or `tag:`.
    Syslogtag,
    Procid,
    Msgid,
    Facility,
    Severity,
    Pri,
    Msg,
    Input,
    Peer,
    TlsPeer,
    Sd {
        id: Vec<u8>,
        param: Vec<u8>,
    },
    Field(String),
    /// Every field, as one JSON object.
    AllFields,
}

#[derive(Clone, Debug)]
enum TimeFormat {
    Rfc3339,
    Traditional,
    Unix,
    Strftime(Vec<Item<'static>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    Text,
    Json,
    Csv,
}

/// The names a template may use, for messages.
const NAMES: &str = "host, tag, procid, msgid, facility, severity, pri, msg, input, peer, tls_peer, time, recv, sd.ID.PARAM, fields.NAME, fields";

impl LineTemplate {
    /// Parses a template; every mistake is refused with what to write instead.
    pub fn parse(text: &str) -> Result<LineTemplate, TemplateError> {
        let t = LineTemplate::parse_value(text)?;
        if !t.parts.iter().any(|p| matches!(p, Part::Field { .. })) {
            return Err(TemplateError(
                "the template has no field: every line would be the same; add {msg} or another field".into(),
            ));
        }
        Ok(t)
    }

    /// Parses the template of one value (a rule's `set`): like [`LineTemplate::parse`], but
    /// a constant (`"prod"`) is fine.
    pub fn parse_value(text: &str) -> Result<LineTemplate, TemplateError> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        if let Some(c) = body.chars().find(|c| c.is_control()) {
            return Err(TemplateError(format!(
                "the template holds a control character ({c:?}): each message is written as one line, ended by logwell"
            )));
        }
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = body;
        while let Some(i) = rest.find(['{', '}']) {
            literal.extend_from_slice(&rest.as_bytes()[..i]);
            let brace = &rest[i..];
            if let Some(after) = brace.strip_prefix("{{") {
                literal.push(b'{');
                rest = after;
            } else if let Some(after) = brace.strip_prefix("}}") {
                literal.push(b'}');
                rest = after;
            } else if brace.starts_with('}') {
                return Err(TemplateError(
                    "a `}` without its `{`: write `}}` for a brace".into(),
                ));
            } else {
                let end = brace.find('}').ok_or_else(|| {
                    TemplateError(format!(
                        "`{brace}` has no closing `}}`: write {{NAME}}, or `{{{{` for a brace"
                    ))
                })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(field(&brace[1..end])?);
                rest = &brace[end + 1..];
            }
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(LineTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends the line for `ev`, with its `\n`, to `out`.
    pub fn render(&self, ev: &Event<'_>, cache: &mut TimeCache, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Field {
                    value,
                    escape,
                    default,
                } => render_field(value, *escape, default.as_deref(), ev, cache, out),
            }
        }
        out.push(b'\n');
    }
}

/// One `{...}` of a template, its braces cut.
fn field(inside: &str) -> Result<Part, TemplateError> {
    let (name, spec) = match inside.split_once(':') {
        Some((n, s)) => (n.trim(), Some(s)),
        None => (inside.trim(), None),
    };
    let time = |spec: Option<&str>| -> Result<TimeFormat, TemplateError> {
        Ok(match spec {
            None | Some("rfc3339") => TimeFormat::Rfc3339,
            Some("traditional") => TimeFormat::Traditional,
            Some("unix") => TimeFormat::Unix,
            Some(p) if p.contains('%') => TimeFormat::Strftime(
                StrftimeItems::new(p).parse_to_owned().map_err(|_| {
                    TemplateError(format!(
                        "`{p}` is not a strftime pattern chrono can write (see `man strftime`)"
                    ))
                })?,
            ),
            Some(other) => {
                return Err(TemplateError(format!(
                    "`{other}` is not a time format: use rfc3339, traditional, unix, or a strftime pattern such as %Y-%m-%d"
                )))
            }
        })
    };
    let value = match name {
        "time" => {
            return Ok(Part::Field {
                value: Value::Time(time(spec)?),
                escape: Escape::Text,
                default: None,
            })
        }
        "recv" => {
            return Ok(Part::Field {
                value: Value::Recv(time(spec)?),
                escape: Escape::Text,
                default: None,
            })
        }
        "host" => Value::Host,
        "tag" => Value::Tag,
        "syslogtag" => Value::Syslogtag,
        "procid" => Value::Procid,
        "msgid" => Value::Msgid,
        "facility" => Value::Facility,
        "severity" => Value::Severity,
        "pri" => Value::Pri,
        "msg" => Value::Msg,
        "input" => Value::Input,
        "peer" => Value::Peer,
        "tls_peer" => Value::TlsPeer,
        "fields" => Value::AllFields,
        other => {
            if let Some(path) = other.strip_prefix("fields.") {
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(TemplateError(format!(
                        "`{{{other}}}`: name a field as fields.NAME, nested by dots"
                    )));
                }
                Value::Field(path.to_string())
            } else if let Some((id, param)) = other
                .strip_prefix("sd.")
                .and_then(|r| r.split_once('.'))
                .filter(|(i, p)| !i.is_empty() && !p.is_empty())
            {
                Value::Sd {
                    id: id.as_bytes().to_vec(),
                    param: param.as_bytes().to_vec(),
                }
            } else {
                return Err(TemplateError(format!(
                    "`{{{other}}}` is not a field: use one of {NAMES}"
                )));
            }
        }
    };
    let (escape, default) = match spec {
        None => (Escape::Text, None),
        Some(s) => {
            let (mode, default) = match s.strip_prefix('-') {
                Some(d) => ("text", Some(d)),
                None => match s.split_once(":-") {
                    Some((m, d)) => (m, Some(d)),
                    None => (s, None),
                },
            };
            let escape = match mode {
                "text" => Escape::Text,
                "json" => Escape::Json,
                "csv" => Escape::Csv,
                other => {
                    return Err(TemplateError(format!(
                        "`{other}` in `{{{inside}}}` is not a way to write a value: use json, csv or text, and :-DEFAULT for an absent one"
                    )))
                }
            };
            (escape, default.map(|d| d.as_bytes().to_vec()))
        }
    };
    Ok(Part::Field {
        value,
        escape,
        default,
    })
}

/// What a field gives for one message.
enum Got<'a> {
    Bytes(Cow<'a, [u8]>),
    Json(&'a serde_json::Value),
}

fn render_field(
    value: &Value,
    escape: Escape,
    default: Option<&[u8]>,
    ev: &Event<'_>,
    cache: &mut TimeCache,
    out: &mut Vec<u8>,
) {
    let m = &ev.msg;
    // Room for a PRI or an IPv6 address, written without allocating.
    let mut scratch = [0u8; 48];
    let got: Option<Got<'_>> = match value {
        Value::Time(f) => return push_time(f, shown(ev, cache), ev, false, out),
        Value::Recv(f) => return push_time(f, Shown::recv(ev, cache), ev, true, out),
        // JSON text holds no control character: as text and as JSON it is the same.
        Value::AllFields if escape != Escape::Csv => return push_fields_object(out, m),
        Value::AllFields => {
            let mut object = Vec::new();
            push_fields_object(&mut object, m);
            Some(Got::Bytes(Cow::Owned(object)))
        }
        Value::Host => Some(Got::Bytes(Cow::Borrowed(ev.host()))),
        Value::Tag => m.appname.map(|v| Got::Bytes(Cow::Borrowed(v))),
        Value::Syslogtag => m.appname.map(|tag| {
            let len = tag.len() + m.procid.map_or(1, |p| p.len() + 3);
            if len <= scratch.len() {
                let mut w = &mut scratch[..];
                let _ = w.write_all(tag);
                if let Some(pid) = m.procid {
                    let _ = w.write_all(b"[");
                    let _ = w.write_all(pid);
                    let _ = w.write_all(b"]");
                }
                let _ = w.write_all(b":");
                Got::Bytes(Cow::Borrowed(&scratch[..len]))
            } else {
                let mut v = tag.to_vec();
                if let Some(pid) = m.procid {
                    v.push(b'[');
                    v.extend_from_slice(pid);
                    v.push(b']');
                }
                v.push(b':');
                Got::Bytes(Cow::Owned(v))
            }
        }),
        Value::Procid => m.procid.map(|v| Got::Bytes(Cow::Borrowed(v))),
        Value::Msgid => m.msgid.map(|v| Got::Bytes(Cow::Borrowed(v))),
        Value::Facility => Some(Got::Bytes(Cow::Borrowed(m.facility.name().as_bytes()))),
        Value::Severity => Some(Got::Bytes(Cow::Borrowed(m.severity.name().as_bytes()))),
        Value::Pri => {
            let pri = u16::from(m.facility.code()) * 8 + u16::from(m.severity.code());
            Some(small(&mut scratch, format_args!("{pri}")))
        }
        Value::Msg => Some(Got::Bytes(Cow::Borrowed(m.msg))),
        Value::Input => Some(Got::Bytes(Cow::Borrowed(ev.source.input.as_bytes()))),
        Value::Peer => ev
            .source
            .peer
            .map(|p| small(&mut scratch, format_args!("{}", p.ip()))),
        Value::TlsPeer => ev
            .source
            .tls_peer
            .as_deref()
            .map(|p| Got::Bytes(Cow::Borrowed(p.as_bytes()))),
        Value::Sd { id, param } => m
            .structured_data
            .and_then(|raw| sd::param(raw, id, param))
            .map(Got::Bytes),
        Value::Field(path) => m.lookup(path).map(|v| match v {
            FieldValue::Json(j) => Got::Json(j),
            FieldValue::Text(t) => Got::Bytes(Cow::Borrowed(t)),
        }),
    };
    match (got, escape) {
        (None, _) => match (default, escape) {
            (Some(d), _) => out.extend_from_slice(d),
            (None, Escape::Json) => out.extend_from_slice(b"null"),
            (None, Escape::Csv) => out.extend_from_slice(b"\"\""),
            (None, Escape::Text) => {}
        },
        (Some(Got::Bytes(b)), Escape::Text) => {
            push_escaped(out, &b);
            if matches!(value, Value::Msg) && m.flags.contains(Flags::TRUNCATED) {
                out.extend_from_slice(TRUNCATED_MARK);
            }
        }
        (Some(Got::Bytes(b)), Escape::Json) => push_json_str(out, &b),
        (Some(Got::Bytes(b)), Escape::Csv) => push_csv(out, &b),
        (Some(Got::Json(v)), Escape::Json) => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
        (Some(Got::Json(v)), escape) => {
            let text: Cow<'_, [u8]> = match v {
                serde_json::Value::String(s) => Cow::Borrowed(s.as_bytes()),
                other => Cow::Owned(other.to_string().into_bytes()),
            };
            if escape == Escape::Csv {
                push_csv(out, &text);
            } else {
                push_escaped(out, &text);
            }
        }
    }
}

/// A short value written into `scratch` (a PRI, an IP address), without allocating.
fn small<'s>(scratch: &'s mut [u8; 48], args: std::fmt::Arguments<'_>) -> Got<'s> {
    let mut w = &mut scratch[..];
    let _ = w.write_fmt(args);
    let n = 48 - w.len();
    Got::Bytes(Cow::Borrowed(&scratch[..n]))
}

/// A quoted CSV field: `"` doubled, control characters escaped so the line stays one line.
fn push_csv(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for (i, piece) in s.split(|&b| b == b'"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        push_escaped(out, piece);
    }
    out.push(b'"');
}

fn push_time(f: &TimeFormat, shown: Shown<'_>, ev: &Event<'_>, recv: bool, out: &mut Vec<u8>) {
    match f {
        TimeFormat::Rfc3339 => shown.push_rfc3339(out),
        TimeFormat::Traditional => shown.push_traditional(out),
        TimeFormat::Unix | TimeFormat::Strftime(_) => {
            let t: DateTime<FixedOffset> = shown.date_time(ev, recv);
            if let TimeFormat::Strftime(items) = f {
                let _ = write!(out, "{}", t.format_with_items(items.iter()));
            } else {
                let _ = write!(out, "{}", t.timestamp());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::message::{Message, Source};
    use crate::parse::{parse, ParseContext};

    fn render(
        template: &str,
        raw: &[u8],
        parsed: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> String {
        let t = LineTemplate::parse(template).unwrap();
        let recv = Utc.with_ymd_and_hms(2026, 11, 21, 9, 41, 4).unwrap();
        let ctx = ParseContext::new(recv, FixedOffset::east_opt(0).unwrap());
        let mut msg: Message<'_> = parse(raw, &ctx);
        msg.parsed = parsed;
        let source = Source {
            input: Arc::from("tcp"),
            peer: Some("192.0.2.7:5514".parse().unwrap()),
            creds: None,
            default_host: Arc::from("here"),
            use_sender_timestamp: true,
            tls_peer: None,
        };
        let ev = Event {
            msg,
            recv_time: recv,
            source: &source,
            creds: None,
        };
        let mut out = Vec::new();
        t.render(&ev, &mut TimeCache::default(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_fields_times_and_structured_data() {
        let raw =
            br#"<165>1 2026-11-21T09:41:03.5Z web1 app 42 ID7 [origin ip="10.0.0.1"] hi	there"#;
        assert_eq!(
            render("{time} {host} {tag}[{procid}] {facility}.{severity} <{pri}> {sd.origin.ip} {msg}\n", raw, None),
            "2026-11-21T09:41:03.5+00:00 web1 app[42] local4.notice <165> 10.0.0.1 hi#011there\n"
        );
        assert_eq!(
            render(
                "{time:%Y/%m/%d %H:%M} {time:unix} {recv:traditional} {peer} {input} {{x}}",
                raw,
                None
            ),
            "2026/11/21 09:41 1795254063 Nov 21 09:41:04 192.0.2.7 tcp {x}\n"
        );
    }

    #[test]
    fn fields_escapes_and_defaults() {
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"user":"ann \"a\"","n":5,"req":{"path":"/x"}}"#).unwrap();
        let raw = b"<13>Nov 21 09:41:03 web1 app: body";
        assert_eq!(
            render(
                r#"{fields.user} {fields.user:json} {fields.user:csv} {fields.n:json} {fields.req.path} {fields.gone:-none} {fields.gone:json} {msg:json}"#,
                raw,
                Some(&fields)
            ),
            "ann \"a\" \"ann \\\"a\\\"\" \"ann \"\"a\"\"\" 5 /x none null \"body\"\n"
        );
    }

    #[test]
    fn all_fields_are_one_json_object_as_rsyslog_all_json() {
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"user":"ann \"a\"","n":5,"req":{"path":"/x"}}"#).unwrap();
        let raw = b"<13>Nov 21 09:41:03 web1 app: body";
        let object = r#"{"n":5,"req":{"path":"/x"},"user":"ann \"a\""}"#;
        assert_eq!(
            render("{fields}", raw, Some(&fields)),
            format!("{object}\n")
        );
        assert_eq!(
            render("{fields:json} {fields:csv}", raw, Some(&fields)),
            format!("{object} \"{}\"\n", object.replace('"', "\"\""))
        );
        assert_eq!(render("{fields} {msg}", raw, None), "{} body\n");
    }

    #[test]
    fn mistakes_are_refused_with_what_to_write() {
        for (bad, says) in [
            ("{nope}", "is not a field"),
            ("{msg", "no closing"),
            ("a } b {msg}", "without its `{`"),
            ("{time:soon}", "not a time format"),
            ("{msg:yaml}", "not a way to write"),
            ("{fields.}", "fields.NAME"),
            ("{msg}\tx", "control character"),
            ("constant", "no field"),
        ] {
            let e = LineTemplate::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
