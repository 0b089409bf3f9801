//! Templated file paths (`/var/log/remote/{host}/{tag}.log`): parsing a template, rendering
//! it for one message, and sanitising the untrusted values that become path components.
//!
//! Everything here is pure: no I/O, and rendering appends to a caller's buffer, so the input
//! task renders a path per message without allocating. The writer ([`crate::output::dynfile`])
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
    /// `{fields.NAME}`: a field the input's parsers read (or a journal field), by its index
    /// in the template's list of field paths; sanitised as `{host}` is.
    Parsed(u8),
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
    /// The paths of its `{fields.NAME}` fields ([`Field::Parsed`] indexes them).
    fields: Vec<String>,
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
    let mut names: Vec<String> = FIELD_NAMES
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect();
    names.push("{fields.NAME}".into());
    names.join(", ")
}

impl PathTemplate {
    /// Parses `text`. `Ok(None)` when it holds no field: a plain path.
    pub fn parse(text: &str) -> Result<Option<PathTemplate>, TemplateError> {
        let mut parts = Vec::new();
        let mut fields = Vec::new();
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
            let field = match parsed_field(name, &mut fields) {
                Some(f) => f,
                None => FIELD_NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| TemplateError::UnknownField(name.to_string()))?,
            };
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
            fields,
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
        let bytes = name.as_bytes();
        let matches = prefix_matches(pattern, bytes, &mut 0);
        if matches[bytes.len()] {
            return true;
        }
        if level + 1 != self.levels.len() {
            return false;
        }
        // Or a rotated generation of a name the template renders (linear, see there).
        crate::store::fileset::generation_splits(name).any(|k| matches[k])
    }

    /// Whether `path`, a file another output writes, is a path this template could render
    /// or one of its rotated generations: below the base, as deep as the template, and each
    /// component a name [`could_be`](Self::could_be) accepts. Such a file could be written
    /// past the selectors by a sender naming itself after it, and swept by age.
    pub fn could_render(&self, path: &Path) -> bool {
        let Ok(rest) = path.strip_prefix(&self.base) else {
            return false;
        };
        let names: Vec<_> = rest.components().collect();
        names.len() == self.levels.len()
            && names.iter().enumerate().all(|(level, c)| match c {
                std::path::Component::Normal(n) => {
                    n.to_str().is_some_and(|n| self.could_be(level, n))
                }
                _ => false,
            })
    }

    /// A path that this template and `other` could both write, if there is one: a file
    /// both render, or a file one renders that is a rotated generation of the other's (so
    /// rotation would rename over it). Two such outputs would write one file past their
    /// rules, and rotate and sweep each other's files.
    ///
    /// Decided on the languages, not on sample values: each template is an automaton over
    /// the bytes of a path (a field: a non-empty value without `/` or a control character,
    /// not starting with `.`; a date field: its digits; a facility or severity: one of its
    /// names), followed by an optional generation suffix, and the two are run together (a
    /// product automaton, searched breadth first): O(the two patterns' lengths multiplied),
    /// whatever they hold. A field's length bound is not modelled, so the answer may name
    /// a value longer than [`MAX_FIELD_BYTES`]; it never misses a real collision.
    pub fn collision(&self, other: &PathTemplate) -> Option<Vec<u8>> {
        Nfa::of(self).intersection(&Nfa::of(other))
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
                Part::Field(f) => render_field(*f, &self.fields, ev, local_offset, out),
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

/// For each `k` in `0..=name.len()`, whether `name[..k]` matches `pattern` (fields: any
/// non-empty text, not starting with `.` at the start of the name).
///
/// The pattern is simulated as an NFA, never by backtracking: one pass over `name`, each
/// byte advancing the set of pattern positions reached so far, O(`name.len()` × the
/// pattern's length) whatever the name. (A backtracking matcher took seconds for
/// `{host}-{tag}-{facility}-{severity}.log` and a host of dashes.) `steps` counts the
/// positions visited, so a test can bound the work.
fn prefix_matches(pattern: &[Part], name: &[u8], steps: &mut u64) -> Vec<bool> {
    // The pattern as tokens: a literal byte, or a field's first byte (any byte); after a
    // field's token, its position loops on any byte (the field's further bytes).
    let mut tokens: Vec<Option<u8>> = Vec::new();
    let mut loops = vec![false];
    for part in pattern {
        match part {
            Part::Literal(l) => {
                for &b in l {
                    tokens.push(Some(b));
                    loops.push(false);
                }
            }
            Part::Field(_) => {
                tokens.push(None);
                loops.push(true);
            }
        }
    }
    let end = tokens.len();
    let mut out = Vec::with_capacity(name.len() + 1);
    let mut cur = vec![false; end + 1];
    cur[0] = true;
    out.push(cur[end]);
    let mut next = vec![false; end + 1];
    for (i, &c) in name.iter().enumerate() {
        next.iter_mut().for_each(|n| *n = false);
        let mut any = false;
        for j in 0..=end {
            *steps += 1;
            if !cur[j] {
                continue;
            }
            if loops[j] {
                next[j] = true;
                any = true;
            }
            let advances = match tokens.get(j) {
                Some(Some(b)) => *b == c,
                // A field's value never starts with `.` at the start of the name.
                Some(None) => !(i == 0 && c == b'.'),
                None => false,
            };
            if advances {
                next[j + 1] = true;
                any = true;
            }
        }
        std::mem::swap(&mut cur, &mut next);
        out.push(cur[end]);
        if !any {
            // Nothing is reached any more: no longer prefix matches.
            out.resize(name.len() + 1, false);
            break;
        }
    }
    out
}

/// What one byte of a rendered path may be, on an edge of an [`Nfa`].
#[derive(Clone, Copy, Debug)]
enum Class {
    /// Exactly this byte (template text).
    Byte(u8),
    /// The first byte of a sanitised value: not `/`, `.` or a control character.
    FieldFirst,
    /// A further byte of a sanitised value: not `/` or a control character.
    FieldRest,
    /// A digit (dates, generation numbers).
    Digit,
    /// A digit but `0` (the first of a generation's number).
    NonZero,
}

impl Class {
    fn accepts(self, b: u8) -> bool {
        let value = b != b'/' && b >= 0x20 && b != 0x7f;
        match self {
            Class::Byte(c) => b == c,
            Class::FieldFirst => value && b != b'.',
            Class::FieldRest => value,
            Class::Digit => b.is_ascii_digit(),
            Class::NonZero => (b'1'..=b'9').contains(&b),
        }
    }

    /// A byte both accept, a readable one where there is a choice.
    fn meet(self, other: Class) -> Option<u8> {
        if let Class::Byte(b) = self {
            return other.accepts(b).then_some(b);
        }
        if let Class::Byte(b) = other {
            return self.accepts(b).then_some(b);
        }
        (b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain(0..=255)
            .find(|&b| self.accepts(b) && other.accepts(b))
    }
}

/// An automaton without empty moves over the bytes of the paths a template could write:
/// the rendered paths and their rotated generations ([`crate::store::fileset::parse_name`]'s
/// `.N`, `-DATE`, `-DATE-N`, then an optional `.gz` or `.zst`). State 0 is the start.
struct Nfa {
    edges: Vec<Vec<(Class, usize)>>,
    accept: Vec<bool>,
}

impl Nfa {
    fn of(t: &PathTemplate) -> Nfa {
        use crate::message::{FACILITY_NAMES, SEVERITY_NAMES};
        let mut n = Nfa {
            edges: vec![Vec::new()],
            accept: vec![false],
        };
        let mut at = 0;
        for part in &t.parts {
            at = match part {
                Part::Literal(l) => n.word(at, l),
                Part::Field(Field::Facility) => n.one_of(at, &FACILITY_NAMES),
                Part::Field(Field::Severity) => n.one_of(at, &SEVERITY_NAMES),
                Part::Field(Field::Year | Field::RecvYear) => {
                    let end = n.digits(at, 4);
                    n.edge(end, Class::Digit, end);
                    end
                }
                Part::Field(
                    Field::Month
                    | Field::Day
                    | Field::Hour
                    | Field::RecvMonth
                    | Field::RecvDay
                    | Field::RecvHour,
                ) => n.digits(at, 2),
                Part::Field(_) => {
                    let end = n.state();
                    n.edge(at, Class::FieldFirst, end);
                    n.edge(end, Class::FieldRest, end);
                    end
                }
            };
        }
        n.accept[at] = true;
        // The generations: `.N`; `-DATE` (8 or 10 digits), then maybe `-N`.
        let dot = n.word(at, b".");
        let numbered = n.state();
        n.edge(dot, Class::NonZero, numbered);
        n.edge(numbered, Class::Digit, numbered);
        let dash = n.word(at, b"-");
        let day = n.digits(dash, 8);
        let hour = n.digits(day, 2);
        let seq_dash = n.state();
        n.edge(day, Class::Byte(b'-'), seq_dash);
        n.edge(hour, Class::Byte(b'-'), seq_dash);
        let seq = n.state();
        n.edge(seq_dash, Class::NonZero, seq);
        n.edge(seq, Class::Digit, seq);
        let compressed = n.state();
        n.accept[compressed] = true;
        let ext = n.state();
        for generation in [numbered, day, hour, seq] {
            n.accept[generation] = true;
            n.edge(generation, Class::Byte(b'.'), ext);
        }
        n.word_to(ext, b"gz", compressed);
        n.word_to(ext, b"zst", compressed);
        n
    }

    fn state(&mut self) -> usize {
        self.edges.push(Vec::new());
        self.accept.push(false);
        self.edges.len() - 1
    }

    fn edge(&mut self, from: usize, class: Class, to: usize) {
        self.edges[from].push((class, to));
    }

    /// `word` from `from`; returns the state after it.
    fn word(&mut self, from: usize, word: &[u8]) -> usize {
        word.iter().fold(from, |at, &b| {
            let next = self.state();
            self.edge(at, Class::Byte(b), next);
            next
        })
    }

    /// `word` (not empty) from `from` to `to`.
    fn word_to(&mut self, from: usize, word: &[u8], to: usize) {
        let (last, init) = word.split_last().expect("a word");
        let at = self.word(from, init);
        self.edge(at, Class::Byte(*last), to);
    }

    /// Any one of `words` from `from`; returns the state after it.
    fn one_of(&mut self, from: usize, words: &[&str]) -> usize {
        let end = self.state();
        for w in words {
            self.word_to(from, w.as_bytes(), end);
        }
        end
    }

    /// `count` digits from `from`; returns the state after them.
    fn digits(&mut self, from: usize, count: usize) -> usize {
        (0..count).fold(from, |at, _| {
            let next = self.state();
            self.edge(at, Class::Digit, next);
            next
        })
    }

    /// A string both accept, if any: a breadth-first search of the product automaton, so
    /// the shortest one, each state pair visited once.
    fn intersection(&self, other: &Nfa) -> Option<Vec<u8>> {
        let width = other.edges.len();
        // For each pair reached: the pair it was reached from and the byte.
        let mut from: Vec<Option<(usize, u8)>> = vec![None; self.edges.len() * width];
        let mut queue = std::collections::VecDeque::from([0usize]);
        from[0] = Some((0, 0));
        while let Some(pair) = queue.pop_front() {
            let (a, b) = (pair / width, pair % width);
            if self.accept[a] && other.accept[b] {
                let mut path = Vec::new();
                let mut at = pair;
                while at != 0 {
                    let (prev, byte) = from[at].expect("reached");
                    path.push(byte);
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            for &(ca, na) in &self.edges[a] {
                for &(cb, nb) in &other.edges[b] {
                    let next = na * width + nb;
                    if from[next].is_some() {
                        continue;
                    }
                    if let Some(byte) = ca.meet(cb) {
                        from[next] = Some((pair, byte));
                        queue.push_back(next);
                    }
                }
            }
        }
        None
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

/// `{fields.NAME}`: the field's index in `fields` (added when new), or `None` for another
/// name. A path must name a field (`fields.` and empty parts are not).
pub(crate) fn parsed_field(name: &str, fields: &mut Vec<String>) -> Option<Field> {
    let path = name.strip_prefix("fields.")?;
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return None;
    }
    let at = match fields.iter().position(|f| f == path) {
        Some(i) => i,
        None => {
            fields.push(path.to_string());
            fields.len() - 1
        }
    };
    u8::try_from(at).ok().map(Field::Parsed)
}

/// Appends field `f` of `ev`; `fields` are the template's `{fields.NAME}` paths.
pub(crate) fn render_field(
    f: Field,
    fields: &[String],
    ev: &Event<'_>,
    offset: FixedOffset,
    out: &mut Vec<u8>,
) {
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
        Field::Parsed(i) => {
            let value = fields
                .get(usize::from(i))
                .and_then(|path| ev.msg.lookup(path))
                .and_then(|v| v.text().map(std::borrow::Cow::into_owned));
            sanitize(value.as_deref().unwrap_or_default(), out)
        }
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
            parsed: None,
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
    fn could_be_knows_dated_generations_with_a_sequence() {
        let t = PathTemplate::parse("/l/{host}-{tag}.log").unwrap().unwrap();
        for name in [
            "a-b.log-20261121-2.zst",
            "a-b.log-2026112100-3",
            "a--b.log.12.gz",
            "a-b.log-20261121",
        ] {
            assert!(t.could_be(0, name), "{name}");
        }
        for name in ["a-b.log-2026112-2", "a-b.log.01", "a-b.log.1.1", ".a-b.log"] {
            assert!(!t.could_be(0, name), "{name}");
        }
    }

    /// Issue 24, item 7: this name took the backtracking matcher seconds (every way of
    /// cutting the dashes among four fields was tried, once per prefix). The NFA visits
    /// each pattern position once per byte: the work is bounded by the sizes alone.
    #[test]
    fn matching_a_name_of_dashes_is_linear_in_the_name() {
        let t = PathTemplate::parse("/var/log/remote/{host}-{tag}-{facility}-{severity}.log")
            .unwrap()
            .unwrap();
        for (host, tag) in [(128, 48), (4000, 4000)] {
            let name = format!(
                "{}-{}-kern-info.log.1.zst",
                "-".repeat(host),
                "-".repeat(tag)
            );
            let worst = format!("{}-{}-kern-info.lox", "-".repeat(host), "-".repeat(tag));
            // Through the public entry: a few passes, finished at once.
            assert!(t.could_be(0, &name));
            assert!(!t.could_be(0, &worst));
            let pattern = &t.levels[0];
            // 4 fields and 3 + 4 literal bytes: 11 tokens, 12 positions.
            let positions = 12;
            for n in [&name, &worst] {
                let mut steps = 0;
                prefix_matches(pattern, n.as_bytes(), &mut steps);
                assert!(
                    steps <= (n.len() as u64) * positions,
                    "{steps} steps for {} bytes",
                    n.len()
                );
            }
        }
    }

    /// The matcher as it was (backtracking), kept as the reference for what matches.
    fn reference_glob(pattern: &[Part], name: &[u8], at_start: bool) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((Part::Literal(l), rest)) => {
                name.starts_with(l) && reference_glob(rest, &name[l.len()..], false)
            }
            Some((Part::Field(_), rest)) => {
                if name.is_empty() || (at_start && name[0] == b'.') {
                    return false;
                }
                (1..=name.len()).any(|k| reference_glob(rest, &name[k..], false))
            }
        }
    }

    fn reference_could_be(t: &PathTemplate, level: usize, name: &str) -> bool {
        let Some(pattern) = t.levels.get(level) else {
            return false;
        };
        let bytes = name.as_bytes();
        reference_glob(pattern, bytes, true)
            || (level + 1 == t.levels.len()
                && (1..bytes.len()).any(|k| {
                    reference_glob(pattern, &bytes[..k], true)
                        && std::str::from_utf8(&bytes[..k]).is_ok_and(|live| {
                            crate::store::fileset::parse_name(live, name).is_some()
                        })
                }))
    }

    proptest! {
        #[test]
        fn could_be_agrees_with_the_backtracking_reference(
            name in "[.a-]{0,6}(\\.log)?([.-][0-9]{1,10}){0,2}(\\.gz|\\.zst)?",
        ) {
            for template in [
                "/l/{host}-{tag}.log",
                "/l/{host}",
                "/l/x.{host}{tag}",
                "/l/{host}/{tag}-{facility}",
                "/l/a-{host}.log",
            ] {
                let t = PathTemplate::parse(template).unwrap().unwrap();
                for level in 0..3 {
                    prop_assert_eq!(
                        t.could_be(level, &name),
                        reference_could_be(&t, level, &name),
                        "{} at level {}: {:?}", template, level, name
                    );
                }
            }
        }
    }

    #[test]
    fn could_render_knows_other_outputs_files_it_could_write() {
        let t = PathTemplate::parse("/D/{host}.log").unwrap().unwrap();
        assert!(t.could_render(Path::new("/D/auth.log")));
        assert!(t.could_render(Path::new("/D/auth.log.1")), "a generation");
        assert!(!t.could_render(Path::new("/D/syslog")));
        assert!(!t.could_render(Path::new("/D/sub/auth.log")), "deeper");
        assert!(!t.could_render(Path::new("/E/auth.log")), "elsewhere");
        assert!(!t.could_render(Path::new("/D/.fallback.log")));
        let t = PathTemplate::parse("/D/{host}/{tag}.log").unwrap().unwrap();
        assert!(t.could_render(Path::new("/D/web01/cron.log")));
        assert!(!t.could_render(Path::new("/D/cron.log")), "shallower");
    }

    fn collision(a: &str, b: &str) -> Option<String> {
        let a = PathTemplate::parse(a).unwrap().unwrap();
        let b = PathTemplate::parse(b).unwrap().unwrap();
        let found = a.collision(&b);
        assert_eq!(found, b.collision(&a), "symmetric");
        found.map(|p| String::from_utf8(p).unwrap())
    }

    /// Issue 24 item 6: `{host}.log` and `{tag}.log` in one directory both write `cron.log`
    /// for a host and a tag named `cron`. Whether two templates can write one file is
    /// decided on their patterns, with the file both could write as the proof.
    #[test]
    fn collision_finds_a_file_two_templates_could_both_write() {
        let hit = |a, b| collision(a, b).unwrap_or_else(|| panic!("{a} and {b} collide"));
        assert_eq!(hit("/D/{host}.log", "/D/{tag}.log"), "/D/a.log");
        // `{host}` = `x-a` renders what `{tag}` = `x` renders beside it.
        assert_eq!(hit("/D/{host}-a.log", "/D/{tag}.log"), "/D/a-a.log");
        assert_eq!(
            hit("/D/{host}/{tag}.log", "/D/{tag}/{host}.log"),
            "/D/a/a.log"
        );
        assert_eq!(hit("/D/x{host}.log", "/D/{tag}y.log"), "/D/xy.log");
        // A date is digits, which a host name can be.
        assert_eq!(hit("/D/{year}.log", "/D/{host}.log"), "/D/0000.log");
        // A facility is one of its names (the shortest here); so can a tag be.
        assert_eq!(hit("/D/{facility}.log", "/D/{tag}.log"), "/D/lpr.log");
        // A file one renders that is a generation of the other's: rotation renames over it.
        assert_eq!(hit("/D/{host}.log", "/D/{tag}.log.{host}"), "/D/a.log.1");
        assert_eq!(hit("/D/{host}.gz", "/D/{tag}.log"), "/D/a.log.1.gz");
    }

    #[test]
    fn collision_knows_templates_that_never_meet() {
        for (a, b) in [
            // The suffixes differ, and no generation of one ends like the other.
            ("/D/{host}.log", "/D/{tag}.txt"),
            // Other directories: the literal prefixes differ.
            ("/D/a/{host}.log", "/D/b/{tag}.log"),
            ("/D/{host}.log", "/E/{host}.log"),
            // Depths differ: a value never holds `/`.
            ("/D/{host}/{tag}.log", "/D/{tag}.log"),
            // Distinct literal prefixes in one directory.
            ("/D/host-{host}.log", "/D/tag-{tag}.log"),
            // A value never starts with `.`.
            ("/D/.{host}", "/D/{tag}"),
            // Digits are never a letter, facilities and severities never each other.
            ("/D/{year}/{host}.log", "/D/archive/{host}.log"),
            ("/D/{facility}.log", "/D/{severity}.log"),
            ("/D/{month}.log", "/D/{year}.log"),
        ] {
            assert_eq!(collision(a, b), None, "{a} and {b}");
        }
    }

    /// Many fields and long literals cost the product of the two patterns' lengths, not
    /// more (a search over value splits would explode here).
    #[test]
    fn collision_is_polynomial() {
        let a = format!("/D/{}x.log", "{host}-".repeat(60));
        let b = format!("/D/{}y.log", "-{tag}".repeat(60));
        let started = std::time::Instant::now();
        assert_eq!(collision(&a, &b), None);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    proptest! {
        /// Never a miss: two templates that render one path for some values are found.
        #[test]
        fn collision_never_misses_a_rendered_path(
            a in 0usize..8, b in 0usize..8,
            va in proptest::collection::vec(prop::sample::select(b"ab.-1".to_vec()), 0..5),
            vb in proptest::collection::vec(prop::sample::select(b"ab.-1".to_vec()), 0..5),
            ta in proptest::collection::vec(prop::sample::select(b"ab.-1".to_vec()), 0..5),
            tb in proptest::collection::vec(prop::sample::select(b"ab.-1".to_vec()), 0..5),
        ) {
            const T: [&str; 8] = [
                "/l/{host}.log", "/l/{tag}.log", "/l/{host}-{tag}", "/l/{tag}.{host}",
                "/l/{host}/{tag}", "/l/a{host}", "/l/{tag}-a.log", "/l/{host}.log.1",
            ];
            if render(T[a], &va, &ta) == render(T[b], &vb, &tb) {
                prop_assert!(collision(T[a], T[b]).is_some(), "{} {}", T[a], T[b]);
            }
        }
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
