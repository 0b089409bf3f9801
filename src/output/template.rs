//! Templated file paths (`/var/log/remote/{host}/{tag}.log`): parsing a template, rendering
//! it for one message, and sanitising the untrusted values that become path components.
//!
//! Everything here is pure: no I/O, and rendering appends to a caller's buffer, so the input
//! task renders a path per message without allocating. The writer ([`super::dynfile`])
//! checks every rendered path with [`PathTemplate::contains`] before opening it.
//!
//! Rules a rendered field value follows ([`sanitize`]), so that no sender can leave the
//! template's base directory (the directory part before the first field) or hide a file:
//! - `/`, NUL, every other control character and every byte of invalid UTF-8 become `_`;
//! - a leading `.` becomes `_` (so neither `.` nor `..` nor a hidden name can result);
//! - an empty value becomes [`PLACEHOLDER`];
//! - a value is cut (at a character boundary) to [`MAX_FIELD_BYTES`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike, FixedOffset, NaiveDateTime, Timelike};

use crate::message::Event;

/// What an empty field value becomes.
pub const PLACEHOLDER: &[u8] = b"_empty";

/// Longest rendered value of one field, in bytes.
pub const MAX_FIELD_BYTES: usize = 128;

/// Longest file name component the kernel accepts (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Longest path the kernel accepts (`PATH_MAX` less the NUL).
const PATH_MAX: usize = 4095;

/// A field of a templated path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `{host}`: the message's host name (the peer address when it has none).
    Host,
    /// `{tag}`: the program name (APP-NAME or the BSD tag).
    Tag,
    /// `{facility}`: `kern`, `mail`, `local0`, …
    Facility,
    /// `{severity}`: `emerg` … `debug`.
    Severity,
    /// `{input}`: the input's name.
    Input,
    /// `{peer}`: the sender's IP address.
    Peer,
    /// `{tls_peer}`: the verified TLS client name.
    TlsPeer,
    /// `{year}` … `{hour}`: from the message's timestamp (the reception time if it has none).
    Year,
    /// `{month}`, two digits.
    Month,
    /// `{day}`, two digits.
    Day,
    /// `{hour}`, two digits.
    Hour,
    /// `{recv.year}` … `{recv.hour}`: from the reception time, in the local zone.
    RecvYear,
    /// `{recv.month}`.
    RecvMonth,
    /// `{recv.day}`.
    RecvDay,
    /// `{recv.hour}`.
    RecvHour,
}

/// Every field name, as written in a template.
pub const FIELD_NAMES: [(&str, Field); 15] = [
    ("host", Field::Host),
    ("tag", Field::Tag),
    ("facility", Field::Facility),
    ("severity", Field::Severity),
    ("input", Field::Input),
    ("peer", Field::Peer),
    ("tls_peer", Field::TlsPeer),
    ("year", Field::Year),
    ("month", Field::Month),
    ("day", Field::Day),
    ("hour", Field::Hour),
    ("recv.year", Field::RecvYear),
    ("recv.month", Field::RecvMonth),
    ("recv.day", Field::RecvDay),
    ("recv.hour", Field::RecvHour),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Field(Field),
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
    /// The directory before the first field; every rendered path stays below it.
    base: PathBuf,
    /// The path below the base, one pattern per component (for the age sweep).
    levels: Vec<Vec<Part>>,
}

/// Why a template was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` names no field.
    #[error("unknown field `{{{0}}}` in the path: use one of {list}", list = field_list())]
    UnknownField(String),
    /// A `{` without its `}`.
    #[error("a `{{` without a closing `}}` in the path: write fields as {{host}}")]
    Unclosed,
    /// A `}` without its `{`.
    #[error("a `}}` without an opening `{{` in the path: write fields as {{host}}")]
    Unopened,
    /// The base directory is not a real directory below `/`.
    #[error("the path must start with an absolute directory before its first field, such as /var/log/remote/{{host}}.log")]
    NoBase,
    /// The literal text would leave the base directory by itself.
    #[error("the path contains a `.` or `..` component: write the path without them")]
    DotComponent,
}

fn field_list() -> String {
    FIELD_NAMES
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PathTemplate {
    /// Parses `text`. `Ok(None)` when it holds no field: a plain path.
    pub fn parse(text: &str) -> Result<Option<PathTemplate>, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut base: Option<PathBuf> = None;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']);
            let Some(i) = next else {
                literal.push_str(rest);
                break;
            };
            literal.push_str(&rest[..i]);
            if rest.as_bytes()[i] == b'}' {
                return Err(TemplateError::Unopened);
            }
            let after = &rest[i + 1..];
            let end = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..end];
            let field = FIELD_NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| TemplateError::UnknownField(name.to_string()))?;
            if base.is_none() {
                // The directory part of everything before the first field.
                let before = format!("{}{}", text_before(&parts), literal);
                let dir = match before.rfind('/') {
                    Some(slash) => &before[..slash],
                    None => "",
                };
                if !dir.starts_with('/') || dir.trim_matches('/').is_empty() {
                    return Err(TemplateError::NoBase);
                }
                base = Some(PathBuf::from(dir));
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal).into_bytes()));
            }
            parts.push(Part::Field(field));
            rest = &after[end + 1..];
        }
        if text.split('/').any(|c| c == "." || c == "..") {
            return Err(TemplateError::DotComponent);
        }
        let Some(base) = base else { return Ok(None) };
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into_bytes()));
        }
        let levels = levels(&parts, base.as_os_str().len() + 1);
        Ok(Some(PathTemplate {
            parts,
            base,
            levels,
        }))
    }

    /// Whether `name`, found `level` components below the base (0: directly in it), could
    /// be part of a rendered path: a directory of that level, or, at the last level, a
    /// rendered file or one of its rotated generations (`NAME.1`, `NAME.2.zst`,
    /// `NAME-20261121.gz`). Fields match any non-empty text, never a leading `.` where the
    /// field starts the name (sanitised values never start with one).
    pub fn could_be(&self, level: usize, name: &str) -> bool {
        let Some(pattern) = self.levels.get(level) else {
            return false;
        };
        let name = name.as_bytes();
        if glob(pattern, name, true) {
            return true;
        }
        level + 1 == self.levels.len()
            && (1..name.len()).any(|k| {
                glob(pattern, &name[..k], true)
                    && std::str::from_utf8(&name[..k]).is_ok_and(|live| {
                        super::fileset::parse_name(live, std::str::from_utf8(name).unwrap_or(""))
                            .is_some()
                    })
            })
    }

    /// The directory every rendered path stays in.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The number of path components below the base directory (`{host}/{day}.log`: 2).
    pub fn depth(&self) -> usize {
        let mut text = Vec::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => text.extend_from_slice(l),
                Part::Field(_) => text.push(b'x'),
            }
        }
        let base = self.base.as_os_str().len();
        text[base..]
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .count()
    }

    /// Whether any field is a date.
    pub fn has_dates(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Field(
                    Field::Year
                        | Field::Month
                        | Field::Day
                        | Field::Hour
                        | Field::RecvYear
                        | Field::RecvMonth
                        | Field::RecvDay
                        | Field::RecvHour
                )
            )
        })
    }

    /// Appends the path for `ev` to `out`. `local_offset` is the local zone's offset at the
    /// reception time (for `recv.` fields, and for messages without a timestamp).
    pub fn render(&self, ev: &Event<'_>, local_offset: FixedOffset, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Field(f) => render_field(*f, ev, local_offset, out),
            }
        }
    }

    /// Whether a rendered `path` names a file strictly inside the base directory: it starts
    /// with the base, no component is empty, `.` or `..`, none is longer than the kernel
    /// allows, and the whole fits `PATH_MAX`. A path that fails goes to the fallback file.
    pub fn contains(&self, path: &[u8]) -> bool {
        let base = self.base.as_os_str().as_encoded_bytes();
        let Some(rest) = path.strip_prefix(base) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix(b"/") else {
            return false;
        };
        path.len() <= PATH_MAX
            && !path.contains(&0)
            && rest
                .split(|&b| b == b'/')
                .all(|c| !c.is_empty() && c != b"." && c != b".." && c.len() <= NAME_MAX)
    }
}

/// Splits `parts`, less its first `skip` bytes (the base directory and its `/`), into one
/// pattern per path component.
fn levels(parts: &[Part], skip: usize) -> Vec<Vec<Part>> {
    let mut levels = vec![Vec::new()];
    let mut skip = skip;
    for p in parts {
        match p {
            Part::Field(f) => levels.last_mut().expect("one").push(Part::Field(*f)),
            Part::Literal(l) => {
                let cut = skip.min(l.len());
                skip -= cut;
                let mut first = true;
                for piece in l[cut..].split(|&b| b == b'/') {
                    if !first {
                        levels.push(Vec::new());
                    }
                    first = false;
                    if !piece.is_empty() {
                        levels
                            .last_mut()
                            .expect("one")
                            .push(Part::Literal(piece.to_vec()));
                    }
                }
            }
        }
    }
    levels.retain(|l| !l.is_empty());
    levels
}

/// Whether `name` matches `pattern` (fields: any non-empty text, not starting with `.` at
/// the start of the name).
fn glob(pattern: &[Part], name: &[u8], at_start: bool) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((Part::Literal(l), rest)) => {
            name.starts_with(l) && glob(rest, &name[l.len()..], false)
        }
        Some((Part::Field(_), rest)) => {
            if name.is_empty() || (at_start && name[0] == b'.') {
                return false;
            }
            (1..=name.len()).any(|k| glob(rest, &name[k..], false))
        }
    }
}

fn text_before(parts: &[Part]) -> String {
    let mut s = String::new();
    for p in parts {
        match p {
            Part::Literal(l) => s.push_str(&String::from_utf8_lossy(l)),
            Part::Field(_) => s.push('x'),
        }
    }
    s
}

pub(crate) fn render_field(f: Field, ev: &Event<'_>, offset: FixedOffset, out: &mut Vec<u8>) {
    let recv = || ev.recv_time.naive_utc() + offset;
    let msg_time = || -> NaiveDateTime { ev.msg.timestamp.map_or_else(recv, |t| t.local) };
    match f {
        Field::Host => sanitize(ev.host(), out),
        Field::Tag => sanitize(ev.msg.appname.unwrap_or_default(), out),
        Field::Facility => out.extend_from_slice(ev.msg.facility.name().as_bytes()),
        Field::Severity => out.extend_from_slice(ev.msg.severity.name().as_bytes()),
        Field::Input => sanitize(ev.source.input.as_bytes(), out),
        Field::Peer => match ev.source.peer {
            Some(addr) => push_display(out, addr.ip()),
            None => out.extend_from_slice(b"local"),
        },
        Field::TlsPeer => sanitize(
            ev.source.tls_peer.as_deref().unwrap_or_default().as_bytes(),
            out,
        ),
        Field::Year => push_digits(out, msg_time().year().max(0) as u32, 4),
        Field::Month => push_digits(out, msg_time().month(), 2),
        Field::Day => push_digits(out, msg_time().day(), 2),
        Field::Hour => push_digits(out, msg_time().hour(), 2),
        Field::RecvYear => push_digits(out, recv().year().max(0) as u32, 4),
        Field::RecvMonth => push_digits(out, recv().month(), 2),
        Field::RecvDay => push_digits(out, recv().day(), 2),
        Field::RecvHour => push_digits(out, recv().hour(), 2),
    }
}

/// Appends `n` with at least `width` digits.
fn push_digits(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 && buf.len() - i >= width {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends an address's text (no allocation: written straight into `out`).
fn push_display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let _ = write!(W(out), "{v}");
}

/// Appends `value` made safe as (part of) one path component: see the module doc.
pub fn sanitize(value: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut room = MAX_FIELD_BYTES;
    'outer: for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            let len = c.len_utf8();
            if len > room {
                break 'outer;
            }
            room -= len;
            let first = out.len() == start;
            if c == '/' || c.is_control() || (first && c == '.') {
                out.push(b'_');
            } else {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
        for _ in chunk.invalid() {
            if room == 0 {
                break 'outer;
            }
            room -= 1;
            out.push(b'_');
        }
    }
    if out.len() == start {
        out.extend_from_slice(PLACEHOLDER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Facility, Flags, Message, Severity, Source};
    use proptest::prelude::*;

    fn s(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        sanitize(v, &mut out);
        out
    }

    #[test]
    fn sanitize_makes_traversal_impossible() {
        assert_eq!(s(b"../../etc"), b"_._.._etc");
        assert_eq!(s(b".."), b"_.");
        assert_eq!(s(b"."), b"_");
        assert_eq!(s(b"a/b"), b"a_b");
        assert_eq!(s(b".hidden"), b"_hidden");
        assert_eq!(s(b""), PLACEHOLDER);
        assert_eq!(s(b"a\0b\nc\x7f"), b"a_b_c_");
        assert_eq!(s(b"web01"), b"web01");
        assert_eq!(s("héllo".as_bytes()), "héllo".as_bytes());
        assert_eq!(s(b"a\xff\xfeb"), b"a__b");
        assert_eq!(s(&[b'x'; 300]).len(), MAX_FIELD_BYTES);
        // Cut at a character boundary, never inside one.
        let long = "é".repeat(100);
        let out = s(long.as_bytes());
        assert!(std::str::from_utf8(&out).is_ok());
        assert!(out.len() <= MAX_FIELD_BYTES);
    }

    #[test]
    fn parse_finds_the_base_and_refuses_bad_templates() {
        let t = PathTemplate::parse("/var/log/remote/{host}/{tag}.log")
            .unwrap()
            .unwrap();
        assert_eq!(t.base(), Path::new("/var/log/remote"));
        assert_eq!(t.depth(), 2);
        let t = PathTemplate::parse("/var/log/host-{host}.log")
            .unwrap()
            .unwrap();
        assert_eq!(t.base(), Path::new("/var/log"));
        assert_eq!(PathTemplate::parse("/var/log/syslog").unwrap(), None);
        let e = PathTemplate::parse("/var/log/{hostname}.log").unwrap_err();
        assert!(e.to_string().contains("{host}, {tag}"), "{e}");
        assert_eq!(
            PathTemplate::parse("/var/log/{host").unwrap_err(),
            TemplateError::Unclosed
        );
        assert_eq!(
            PathTemplate::parse("/{host}.log").unwrap_err(),
            TemplateError::NoBase
        );
        assert_eq!(
            PathTemplate::parse("logs/{host}.log").unwrap_err(),
            TemplateError::NoBase
        );
        assert_eq!(
            PathTemplate::parse("/var/log/../{host}").unwrap_err(),
            TemplateError::DotComponent
        );
    }

    fn source() -> Source {
        Source {
            input: "tcp".into(),
            peer: Some("192.0.2.7:5514".parse().unwrap()),
            creds: None,
            default_host: "192.0.2.7".into(),
            use_sender_timestamp: true,
            tls_peer: None,
        }
    }

    fn message(host: &[u8], tag: &[u8]) -> Message<'static> {
        let host: &'static [u8] = Box::leak(host.to_vec().into_boxed_slice());
        let tag: &'static [u8] = Box::leak(tag.to_vec().into_boxed_slice());
        Message {
            facility: Facility::AUTH,
            severity: Severity::INFO,
            version: None,
            timestamp: None,
            hostname: Some(host),
            appname: Some(tag),
            procid: None,
            msgid: None,
            structured_data: None,
            msg: b"hi",
            flags: Flags::empty(),
            fields: &[],
        }
    }

    fn render(t: &str, host: &[u8], tag: &[u8]) -> Vec<u8> {
        let t = PathTemplate::parse(t).unwrap().unwrap();
        let src = source();
        let ev = Event {
            msg: message(host, tag),
            recv_time: "2026-11-21T23:30:00Z".parse().unwrap(),
            source: &src,
            creds: None,
        };
        let mut out = Vec::new();
        t.render(&ev, FixedOffset::east_opt(3600).unwrap(), &mut out);
        out
    }

    #[test]
    fn render_fills_every_field() {
        assert_eq!(
            render("/l/{host}/{tag}.log", b"web01", b"sshd"),
            b"/l/web01/sshd.log"
        );
        assert_eq!(
            render(
                "/l/{facility}.{severity}/{input}-{peer}-{tls_peer}",
                b"h",
                b"t"
            ),
            b"/l/auth.info/tcp-192.0.2.7-_empty"
        );
        // No timestamp: the reception time, in the local zone (here UTC+1, the next day).
        assert_eq!(
            render(
                "/l/{year}-{month}-{day}T{hour}/{recv.year}{recv.month}{recv.day}{recv.hour}",
                b"h",
                b"t"
            ),
            b"/l/2026-11-22T00/2026112200"
        );
    }

    #[test]
    fn could_be_knows_rendered_names_and_their_generations() {
        let t = PathTemplate::parse("/l/host-{host}/{year}-{month}.log")
            .unwrap()
            .unwrap();
        assert_eq!(t.depth(), 2);
        assert!(t.could_be(0, "host-web01"));
        assert!(!t.could_be(0, "web01"), "the literal prefix is required");
        assert!(!t.could_be(0, "host-"), "a field is never empty");
        assert!(t.could_be(1, "2026-11.log"));
        assert!(t.could_be(1, "2026-11.log.1"));
        assert!(t.could_be(1, "2026-11.log.2.zst"));
        assert!(t.could_be(1, "2026-11.log-20261121.gz"));
        assert!(!t.could_be(1, "2026-11.txt"));
        assert!(!t.could_be(1, "notes"));
        assert!(!t.could_be(2, "2026-11.log"), "deeper than the template");
        let t = PathTemplate::parse("/var/log/{host}.log").unwrap().unwrap();
        assert!(
            !t.could_be(0, ".fallback.log"),
            "no field value starts with a dot"
        );
        assert!(!t.could_be(0, "syslog"));
        assert!(
            t.could_be(0, "dpkg.log"),
            "a shared base directory is at risk: documented"
        );
    }

    #[test]
    fn contains_refuses_escapes() {
        let t = PathTemplate::parse("/l/{host}/x").unwrap().unwrap();
        assert!(t.contains(b"/l/a/x"));
        assert!(!t.contains(b"/l/../x"));
        assert!(!t.contains(b"/l//x"));
        assert!(!t.contains(b"/lx/a"));
        assert!(!t.contains(b"/l"));
        assert!(!t.contains(&[b"/l/".as_slice(), &[b'a'; 256]].concat()));
    }

    proptest! {
        #[test]
        fn no_value_ever_leaves_the_base(host in proptest::collection::vec(any::<u8>(), 0..400),
                                         tag in proptest::collection::vec(any::<u8>(), 0..64)) {
            for template in ["/l/{host}/{tag}.log", "/l/{host}{tag}", "/l/x{host}/{tag}"] {
                let t = PathTemplate::parse(template).unwrap().unwrap();
                let path = render(template, &host, &tag);
                prop_assert!(t.contains(&path), "{:?} escapes", String::from_utf8_lossy(&path));
                prop_assert_eq!(
                    path.iter().filter(|&&b| b == b'/').count(),
                    template.matches('/').count()
                );
            }
        }
    }
}
