//! Routing: which outputs get a message. Owns rsyslog-style selectors
//! (`"*.*;auth,authpriv.none"`) and the rule list; knows nothing of formats or files.
//!
//! Selector semantics are rsyslog's (and sysklogd's before it), evaluated left to right over a
//! facility × severity table:
//! - `fac.sev` adds `sev` and everything more severe (`mail.err` = err, crit, alert, emerg);
//! - `fac.=sev` adds exactly `sev`; `fac.!=sev` removes exactly `sev`;
//! - `fac.!sev` removes `sev` and everything more severe (`mail.*;mail.!err` = debug..warning);
//! - `fac.none` removes the facility entirely; `*` means every facility or every severity;
//! - several facilities share a severity with `,` (`auth,authpriv.*`); parts join with `;`.
//!
//! One decision of ours where rsyslog is unhelpful: a selector that *starts* with a negation
//! (`*.!=debug`, `mail.!err`) starts from "everything" for those facilities, so it means what
//! it reads as ("all but debug", "mail below err") instead of matching nothing.

use std::fmt;

use regex::bytes::Regex;

use crate::message::{Event, Facility, Severity};

/// A parsed selector: for each facility, the set of severities that match, as a bit mask.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Selector {
    masks: [u8; 24],
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:02x?})", self.masks)
    }
}

/// Why a selector could not be parsed; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl Selector {
    /// A selector that matches every message (`*.*`).
    pub const ALL: Selector = Selector { masks: [0xff; 24] };

    /// Parses an rsyslog selector such as `"*.*;auth,authpriv.none"` or `"kern.warning"`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut masks = [0u8; 24];
        let parts: Vec<&str> = text.split(';').map(str::trim).collect();
        for (index, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(SelectorError(format!(
                    "empty part in selector `{text}`: remove the extra `;`"
                )));
            }
            let Some((facs, sev)) = part.rsplit_once('.') else {
                return Err(SelectorError(format!(
                    "`{part}` has no `.`: a selector part is FACILITY.SEVERITY, such as `mail.err` or `*.*`"
                )));
            };
            let facilities = parse_facilities(facs)?;
            let op = SeverityOp::parse(sev)?;
            for fac in facilities {
                let mask = &mut masks[fac as usize];
                if index == 0 && op.negated() {
                    *mask = 0xff;
                }
                op.apply(mask);
            }
        }
        Ok(Selector { masks })
    }

    /// Whether a message with this facility and severity matches.
    #[inline]
    pub fn matches(&self, facility: Facility, severity: Severity) -> bool {
        self.masks[facility.code() as usize] & (1 << severity.code()) != 0
    }
}

fn parse_facilities(text: &str) -> Result<Vec<u8>, SelectorError> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name == "*" {
            out.extend(0..24u8);
        } else if let Some(f) = Facility::from_name(name) {
            out.push(f.code());
        } else {
            return Err(SelectorError(format!(
                "unknown facility `{name}`: use one of {} or `*`",
                crate::message::FACILITY_NAMES.join(", ")
            )));
        }
    }
    Ok(out)
}

/// The severity half of a selector part.
#[derive(Clone, Copy, Debug)]
enum SeverityOp {
    /// `sev` or `*`: add this severity and all more severe.
    AtLeast(u8),
    /// `=sev`.
    Exactly(u8),
    /// `!sev`: remove this and all more severe.
    NotAtLeast(u8),
    /// `!=sev`.
    NotExactly(u8),
    /// `none` (or `!*`).
    None,
}

impl SeverityOp {
    fn parse(text: &str) -> Result<SeverityOp, SelectorError> {
        let (negated, rest) = match text.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (exact, name) = match rest.strip_prefix('=') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if name == "none" && !negated && !exact {
            return Ok(SeverityOp::None);
        }
        let code = if name == "*" {
            if exact {
                return Err(SelectorError("`=*` is not a severity: write `*`".into()));
            }
            Severity::DEBUG.code()
        } else {
            Severity::from_name(name)
                .ok_or_else(|| {
                    SelectorError(format!(
                        "unknown severity `{name}`: use one of {}, `*` or `none`",
                        crate::message::SEVERITY_NAMES.join(", ")
                    ))
                })?
                .code()
        };
        Ok(match (negated, exact) {
            (false, false) => SeverityOp::AtLeast(code),
            (false, true) => SeverityOp::Exactly(code),
            (true, false) if name == "*" => SeverityOp::None,
            (true, false) => SeverityOp::NotAtLeast(code),
            (true, true) => SeverityOp::NotExactly(code),
        })
    }

    fn negated(self) -> bool {
        matches!(self, SeverityOp::NotAtLeast(_) | SeverityOp::NotExactly(_))
    }

    fn apply(self, mask: &mut u8) {
        // Bit n is severity n; more severe means a smaller number.
        let at_least = |code: u8| -> u8 { ((1u16 << (code + 1)) - 1) as u8 };
        match self {
            SeverityOp::AtLeast(c) => *mask |= at_least(c),
            SeverityOp::Exactly(c) => *mask |= 1 << c,
            SeverityOp::NotAtLeast(c) => *mask &= !at_least(c),
            SeverityOp::NotExactly(c) => *mask &= !(1 << c),
            SeverityOp::None => *mask = 0,
        }
    }
}

/// A validated rule: every condition must hold for its outputs to get the message.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Facility/severity selector; `*.*` when the rule has none.
    pub selector: Selector,
    /// Program (tag) names; empty means any.
    pub programs: Vec<String>,
    /// Host names; empty means any.
    pub hostnames: Vec<String>,
    /// Verified TLS client names ([`Source::tls_peer`](crate::message::Source::tls_peer)),
    /// matched as host names are (case-insensitive); empty means any. A message without a
    /// TLS peer (any input but a `tls` one, or a client that sent no certificate) never
    /// matches a rule that lists some.
    pub tls_peers: Vec<String>,
    /// Input names; empty means any.
    pub inputs: Vec<String>,
    /// systemd units (`_SYSTEMD_UNIT`, journal entries only); empty means any.
    pub units: Vec<String>,
    /// A regex the message text must match.
    pub pattern: Option<Regex>,
    /// Conditions on fields (`field`, `field_match`, `exists`, `where`); all must hold.
    pub fields: Vec<FieldTest>,
    /// Indexes into the routing table's outputs.
    pub outputs: Vec<usize>,
    /// Stop routing after this rule when it matches.
    pub is_final: bool,
    /// Steps that change the message for the rules after this one (`set`, `remove`,
    /// `drop_fields`, `mask`).
    pub rewrite: Option<std::sync::Arc<crate::rewrite::Rewrite>>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.selector == other.selector
            && self.programs == other.programs
            && self.hostnames == other.hostnames
            && self.tls_peers == other.tls_peers
            && self.inputs == other.inputs
            && self.units == other.units
            && self.pattern.as_ref().map(Regex::as_str) == other.pattern.as_ref().map(Regex::as_str)
            && self.fields == other.fields
            && self.outputs == other.outputs
            && self.is_final == other.is_final
            && self.rewrite == other.rewrite
    }
}

impl Rule {
    fn matches(&self, ev: &Event<'_>) -> bool {
        self.selector.matches(ev.msg.facility, ev.msg.severity)
            && (self.programs.is_empty()
                || ev
                    .msg
                    .appname
                    .is_some_and(|a| self.programs.iter().any(|p| p.as_bytes() == a)))
            && (self.hostnames.is_empty() || any_name_is(&self.hostnames, ev.host()))
            && (self.tls_peers.is_empty()
                || ev
                    .source
                    .tls_peer
                    .as_deref()
                    .is_some_and(|p| any_name_is(&self.tls_peers, p.as_bytes())))
            && (self.inputs.is_empty() || self.inputs.iter().any(|i| **i == *ev.source.input))
            && (self.units.is_empty()
                || ev
                    .msg
                    .field(b"_SYSTEMD_UNIT")
                    .is_some_and(|u| self.units.iter().any(|w| w.as_bytes() == u)))
            && self
                .pattern
                .as_ref()
                .is_none_or(|re| re.is_match(ev.msg.msg))
            && self.fields.iter().all(|t| t.holds(ev))
    }
}

/// One condition on a field: a header value, or a path under `fields.`
/// ([`Message::lookup`](crate::message::Message::lookup)).
#[derive(Clone, Debug)]
pub struct FieldTest {
    /// Which value.
    pub field: FieldRef,
    /// What its value must be.
    pub test: FieldCheck,
}

/// The value a [`FieldTest`] looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldRef {
    /// A header value (`host`, `tag`, `msg`, …), as line templates name them.
    Header(Header),
    /// The path under `fields.` (`status`, `req.path`).
    Path(String),
}

/// The header values rules can test, named as in line templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// `host`: the sender's host name, or this host's for local messages.
    Host,
    /// `tag`: the program name (RFC 5424 APP-NAME).
    Tag,
    /// `procid`.
    Procid,
    /// `msgid`.
    Msgid,
    /// `msg`: the message text.
    Msg,
    /// `peer`: the sending IP address of a network message.
    Peer,
    /// `syslogtag`: rsyslog's `syslogtag`, `tag[procid]:` (or `tag:`); for a message
    /// without a tag, the first word of its text, as rsyslog reads a tag (`[CLOUDINIT]`).
    Syslogtag,
    /// `programname`: rsyslog's, the tag up to its first `/` (`postfix` of `postfix/smtpd`).
    Programname,
    /// `fromhost_ip`: rsyslog's `fromhost-ip`, the sender's address, `127.0.0.1` for a local
    /// message.
    FromhostIp,
    /// `rsyslog_msg`: the text as rsyslog's `$msg` has it, after the space that follows the
    /// tag (` text`).
    RsyslogMsg,
}

impl Header {
    /// The header names, as rules and templates write them.
    pub const NAMES: [(&'static str, Header); 10] = [
        ("host", Header::Host),
        ("tag", Header::Tag),
        ("procid", Header::Procid),
        ("msgid", Header::Msgid),
        ("msg", Header::Msg),
        ("peer", Header::Peer),
        ("syslogtag", Header::Syslogtag),
        ("programname", Header::Programname),
        ("fromhost_ip", Header::FromhostIp),
        ("rsyslog_msg", Header::RsyslogMsg),
    ];

    /// The header value called `name`.
    pub fn from_name(name: &str) -> Option<Header> {
        Header::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| *h)
    }
}

/// What a field's value must be.
#[derive(Clone, Debug)]
pub enum FieldCheck {
    /// One of these texts, ignoring ASCII case, as host names are (`field."fields.level" =
    /// ["warn", "error"]`); a number is compared as JSON writes it (`500`).
    OneOf(Vec<String>),
    /// Text that this regex matches (`field_match`).
    Matches(Regex),
    /// Absent, or text that this regex does not match (`field_not_match`).
    NotMatches(Regex),
    /// Present, whatever its value (`exists`).
    Exists,
    /// A number (or text that is one) that compares so (`where = "fields.took_ms > 1000"`).
    Compare(Cmp, f64),
}

/// A numeric comparison of `where`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    /// The operators, longest first (so `>=` is found before `>`).
    pub const ALL: [(&'static str, Cmp); 6] = [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ];

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }
}

impl PartialEq for FieldTest {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field
            && match (&self.test, &other.test) {
                (FieldCheck::OneOf(a), FieldCheck::OneOf(b)) => a == b,
                (FieldCheck::Matches(a), FieldCheck::Matches(b))
                | (FieldCheck::NotMatches(a), FieldCheck::NotMatches(b)) => {
                    a.as_str() == b.as_str()
                }
                (FieldCheck::Exists, FieldCheck::Exists) => true,
                (FieldCheck::Compare(a, x), FieldCheck::Compare(b, y)) => a == b && x == y,
                _ => false,
            }
    }
}

impl FieldTest {
    /// Whether the message's field passes. An absent field passes no test but
    /// `NotMatches`, `!=` included: `where = "fields.x != 1"` needs `x` present.
    fn holds(&self, ev: &Event<'_>) -> bool {
        let path = match &self.field {
            FieldRef::Path(path) => path,
            FieldRef::Header(h) => return self.header_holds(*h, ev),
        };
        let Some(v) = ev.msg.lookup(path) else {
            return matches!(self.test, FieldCheck::NotMatches(_));
        };
        match &self.test {
            FieldCheck::Exists => true,
            FieldCheck::NotMatches(re) => !v.text().is_some_and(|t| re.is_match(&t)),
            FieldCheck::OneOf(values) => v
                .text()
                .is_some_and(|t| values.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(&t))),
            FieldCheck::Matches(re) => v.text().is_some_and(|t| re.is_match(&t)),
            FieldCheck::Compare(op, n) => v.number().is_some_and(|x| op.holds(x, *n)),
        }
    }

    /// The test on a header value; `peer` and `syslogtag` are written into a buffer on the
    /// stack, so testing them allocates nothing.
    fn header_holds(&self, h: Header, ev: &Event<'_>) -> bool {
        use std::io::Write;
        let m = &ev.msg;
        let mut buf = [0u8; 320];
        let long;
        let value: Option<&[u8]> = match h {
            Header::Host => Some(ev.host()),
            Header::Tag => m.appname,
            Header::Procid => m.procid,
            Header::Msgid => m.msgid,
            Header::Msg => Some(m.msg),
            Header::Peer => ev.source.peer.and_then(|p| {
                let mut w = &mut buf[..];
                write!(w, "{}", p.ip()).ok()?;
                let left = w.len();
                Some(&buf[..buf.len() - left])
            }),
            Header::FromhostIp => match ev.source.peer {
                Some(p) => {
                    let mut w = &mut buf[..];
                    write!(w, "{}", p.ip()).ok();
                    let left = w.len();
                    Some(&buf[..buf.len() - left])
                }
                None => Some(b"127.0.0.1".as_slice()),
            },
            Header::RsyslogMsg if m.msg.len() < buf.len() => {
                buf[0] = b' ';
                buf[1..=m.msg.len()].copy_from_slice(m.msg);
                Some(&buf[..=m.msg.len()])
            }
            Header::RsyslogMsg => {
                long = [b" ".as_slice(), m.msg].concat();
                Some(long.as_slice())
            }
            Header::Programname => m
                .appname
                .map(|t| t.split(|b| *b == b'/').next().unwrap_or(t)),
            Header::Syslogtag if m.appname.is_none() => {
                let word = m.msg.split(|b| *b == b' ').next().unwrap_or_default();
                Some(&word[..word.len().min(32)])
            }
            Header::Syslogtag => m.appname.and_then(|tag| {
                let mut w = &mut buf[..];
                match m.procid {
                    Some(pid) => {
                        w.write_all(tag).ok()?;
                        w.write_all(b"[").ok()?;
                        w.write_all(pid).ok()?;
                        w.write_all(b"]:").ok()?;
                    }
                    None => {
                        w.write_all(tag).ok()?;
                        w.write_all(b":").ok()?;
                    }
                }
                let left = w.len();
                Some(&buf[..buf.len() - left])
            }),
        };
        match (&self.test, value) {
            (FieldCheck::NotMatches(re), v) => !v.is_some_and(|t| re.is_match(t)),
            (_, None) => false,
            (FieldCheck::Exists, Some(_)) => true,
            (FieldCheck::OneOf(values), Some(t)) => {
                values.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(t))
            }
            (FieldCheck::Matches(re), Some(t)) => re.is_match(t),
            (FieldCheck::Compare(op, n), Some(t)) => std::str::from_utf8(t)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .is_some_and(|x| op.holds(x, *n)),
        }
    }
}

/// Whether `value` is one of `names`, ignoring ASCII case: how host names (and TLS peer
/// names, which are DNS names too) are compared.
fn any_name_is(names: &[String], value: &[u8]) -> bool {
    names
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(value))
}

/// The ordered rule list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Router {
    rules: Vec<Rule>,
    outputs: usize,
    /// Some rule has rewrite steps.
    rewrites: bool,
}

impl Router {
    /// A router over `outputs` outputs (rule output indexes must be below it).
    pub fn new(rules: Vec<Rule>, outputs: usize) -> Router {
        debug_assert!(rules.iter().all(|r| r.outputs.iter().all(|&o| o < outputs)));
        let rewrites = rules.iter().any(|r| r.rewrite.is_some());
        Router {
            rules,
            outputs,
            rewrites,
        }
    }

    /// Fills `matched` (cleared first) with the indexes of the outputs that get this
    /// message, each once, in rule order. Allocates nothing once `matched` has grown.
    pub fn route(&self, ev: &Event<'_>, matched: &mut Vec<usize>) {
        matched.clear();
        for rule in &self.rules {
            if rule.matches(ev) {
                for &o in &rule.outputs {
                    if !matched.contains(&o) {
                        matched.push(o);
                    }
                }
                if rule.is_final {
                    break;
                }
            }
        }
    }

    /// How many outputs the rule indexes refer to.
    pub fn output_count(&self) -> usize {
        self.outputs
    }

    /// Whether a rule has steps that change messages: then [`Router::route_each`] routes.
    pub fn rewrites(&self) -> bool {
        self.rewrites
    }

    /// Routes as [`Router::route`] does, applying the rewrite steps of each matching rule to
    /// what the rules after it see: `emit` gets each output (once, at its first match) with
    /// the message as it is at that rule. `seen` is cleared first. `time` serves `set`'s
    /// templates.
    pub fn route_each(
        &self,
        ev: &Event<'_>,
        time: &mut crate::render::format::TimeCache,
        seen: &mut Vec<usize>,
        mut emit: impl FnMut(usize, &Event<'_>),
    ) {
        seen.clear();
        let mut owned: Option<crate::rewrite::Owned> = None;
        for rule in &self.rules {
            let rewritten;
            let cur: &Event<'_> = match &owned {
                Some(o) => {
                    rewritten = Event {
                        msg: o.message(&ev.msg),
                        recv_time: ev.recv_time,
                        source: ev.source,
                        creds: ev.creds,
                    };
                    &rewritten
                }
                None => ev,
            };
            if !rule.matches(cur) {
                continue;
            }
            for &o in &rule.outputs {
                if !seen.contains(&o) {
                    seen.push(o);
                    emit(o, cur);
                }
            }
            if rule.is_final {
                break;
            }
            if let Some(r) = &rule.rewrite {
                let next = r.apply(cur, time);
                owned = Some(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }
    fn f(name: &str) -> Facility {
        Facility::from_name(name).unwrap()
    }
    fn s(name: &str) -> Severity {
        Severity::from_name(name).unwrap()
    }

    #[test]
    fn debian_syslog_selector_excludes_auth() {
        let x = sel("*.*;auth,authpriv.none");
        assert!(x.matches(f("daemon"), s("debug")));
        assert!(x.matches(f("kern"), s("emerg")));
        assert!(!x.matches(f("auth"), s("info")));
        assert!(!x.matches(f("authpriv"), s("emerg")));
    }

    #[test]
    fn severity_means_that_and_above() {
        let x = sel("mail.err");
        assert!(x.matches(f("mail"), s("err")));
        assert!(x.matches(f("mail"), s("emerg")));
        assert!(!x.matches(f("mail"), s("warning")));
        assert!(!x.matches(f("user"), s("err")));
    }

    #[test]
    fn exact_and_negations() {
        let x = sel("*.=info");
        assert!(x.matches(f("user"), s("info")));
        assert!(!x.matches(f("user"), s("notice")));
        let x = sel("mail.*;mail.!err");
        assert!(x.matches(f("mail"), s("warning")));
        assert!(!x.matches(f("mail"), s("err")));
        let x = sel("*.*;*.!=debug");
        assert!(!x.matches(f("user"), s("debug")));
        assert!(x.matches(f("user"), s("info")));
    }

    #[test]
    fn leading_negation_starts_from_everything() {
        let x = sel("*.!=debug");
        assert!(!x.matches(f("daemon"), s("debug")));
        assert!(x.matches(f("daemon"), s("info")));
        let x = sel("*.!debug");
        assert!(
            !x.matches(f("daemon"), s("emerg")),
            "!debug removes debug and above: all"
        );
        let x = sel("mail.!err");
        assert!(x.matches(f("mail"), s("warning")));
        assert!(!x.matches(f("mail"), s("crit")));
        assert!(!x.matches(f("user"), s("warning")));
    }

    #[test]
    fn aliases_and_numbers() {
        assert_eq!(sel("kern.warn"), sel("kern.warning"));
        assert_eq!(sel("kern.error"), sel("kern.3"));
        assert_eq!(sel("security.*"), sel("auth.*"));
        assert_eq!(sel(" kern.* ; mail.none "), sel("kern.*"));
    }

    #[test]
    fn unit_rules_match_the_journal_field() {
        use crate::message::{Flags, Message, Source};
        let rule = Rule {
            selector: Selector::ALL,
            programs: vec![],
            hostnames: vec![],
            tls_peers: vec![],
            inputs: vec![],
            units: vec!["ssh.service".into()],
            pattern: None,
            fields: Vec::new(),
            outputs: vec![0],
            is_final: false,
            rewrite: None,
        };
        let router = Router::new(vec![rule], 1);
        let source = Source {
            input: "journal".into(),
            peer: None,
            creds: None,
            default_host: "h".into(),
            use_sender_timestamp: true,
            tls_peer: None,
        };
        let fields: &[(&[u8], &[u8])] = &[(b"_COMM", b"sshd"), (b"_SYSTEMD_UNIT", b"ssh.service")];
        let mut msg = Message {
            facility: Facility::AUTH,
            severity: Severity::INFO,
            version: None,
            timestamp: None,
            hostname: None,
            appname: Some(b"sshd"),
            procid: None,
            msgid: None,
            structured_data: None,
            msg: b"Accepted publickey",
            flags: Flags::empty(),
            fields,
            parsed: None,
        };
        let mut matched = Vec::new();
        let ev = Event {
            msg: msg.clone(),
            recv_time: chrono::Utc::now(),
            source: &source,
            creds: None,
        };
        router.route(&ev, &mut matched);
        assert_eq!(matched, [0]);
        msg.fields = &[(b"_SYSTEMD_UNIT", b"cron.service")];
        let ev = Event {
            msg: msg.clone(),
            recv_time: chrono::Utc::now(),
            source: &source,
            creds: None,
        };
        router.route(&ev, &mut matched);
        assert!(matched.is_empty());
        msg.fields = &[];
        let ev = Event {
            msg,
            recv_time: chrono::Utc::now(),
            source: &source,
            creds: None,
        };
        router.route(&ev, &mut matched);
        assert!(
            matched.is_empty(),
            "a message without a unit does not match a unit rule"
        );
    }

    #[test]
    fn tls_peer_rules_match_the_verified_name_as_hosts_match() {
        use crate::message::{Flags, Message, Source};
        let rule = Rule {
            selector: Selector::ALL,
            programs: vec![],
            hostnames: vec![],
            tls_peers: vec!["web1.example.com".into(), "db.example.com".into()],
            inputs: vec![],
            units: vec![],
            pattern: None,
            fields: Vec::new(),
            outputs: vec![0],
            is_final: false,
            rewrite: None,
        };
        let router = Router::new(vec![rule], 1);
        let msg = Message {
            facility: Facility::USER,
            severity: Severity::INFO,
            version: None,
            timestamp: None,
            hostname: Some(b"web1.example.com"),
            appname: Some(b"app"),
            procid: None,
            msgid: None,
            structured_data: None,
            msg: b"hello",
            flags: Flags::empty(),
            fields: &[],
            parsed: None,
        };
        let routed = |tls_peer: Option<&str>| {
            let source = Source {
                input: "tls".into(),
                peer: None,
                creds: None,
                default_host: "h".into(),
                use_sender_timestamp: true,
                tls_peer: tls_peer.map(Arc::from),
            };
            let ev = Event {
                msg: msg.clone(),
                recv_time: chrono::Utc::now(),
                source: &source,
                creds: None,
            };
            let mut matched = Vec::new();
            router.route(&ev, &mut matched);
            matched
        };
        assert_eq!(routed(Some("web1.example.com")), [0]);
        assert_eq!(
            routed(Some("DB.Example.COM")),
            [0],
            "case-insensitive, as hostname"
        );
        assert!(routed(Some("web2.example.com")).is_empty());
        assert!(
            routed(Some("web1.example.com.evil")).is_empty(),
            "whole names only"
        );
        assert!(
            routed(None).is_empty(),
            "no TLS peer (its host name is listed) does not match"
        );
    }

    #[test]
    fn errors_say_what_to_write() {
        assert!(Selector::parse("kern")
            .unwrap_err()
            .to_string()
            .contains("FACILITY.SEVERITY"));
        assert!(Selector::parse("kernel.*")
            .unwrap_err()
            .to_string()
            .contains("unknown facility"));
        assert!(Selector::parse("kern.loud")
            .unwrap_err()
            .to_string()
            .contains("unknown severity"));
        assert!(Selector::parse("kern.*;")
            .unwrap_err()
            .to_string()
            .contains("extra `;`"));
    }
}
