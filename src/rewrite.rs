//! Rule steps that change a message before the outputs of the rules after them: `parse`
//! (body parsers, as an input's, whose fields join the message's), `set` (a
//! header value or a field, from a line template), `remove` (a field or a header value),
//! `drop_fields` (parsed fields by name pattern) and `mask` (IPv4 and IPv6 addresses cut to
//! a prefix, as rsyslog's `mmanon` does; card numbers that pass the Luhn check, all but their
//! last four digits; a regex replaced). Pure: a message in, an [`Owned`] rewritten message
//! out. Only a message that a rule with steps matches is copied; the others are never
//! touched.

use std::sync::Arc;

use regex::bytes::Regex;
use serde_json::{Map, Value};

use crate::message::{Event, Facility, Message, Severity};
use crate::parse::body::{first_that_reads, BodyParser, Limits};
use crate::render::format::TimeCache;
use crate::render::line_template::LineTemplate;

/// What a step changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The host name.
    Host,
    /// The tag (APP-NAME).
    Tag,
    /// PROCID.
    Procid,
    /// MSGID.
    Msgid,
    /// The message text.
    Msg,
    /// The facility (`set` only: a name).
    Facility,
    /// The severity (`set` only: a name).
    Severity,
    /// A parsed field, by its path under `fields.` (`user`, `req.ip`).
    Field(String),
}

impl Target {
    /// The target a rule names: `host`, `tag`, `procid`, `msgid`, `msg`, `facility`,
    /// `severity`, or `fields.PATH`.
    pub fn from_name(name: &str) -> Option<Target> {
        Some(match name {
            "host" => Target::Host,
            "tag" => Target::Tag,
            "procid" => Target::Procid,
            "msgid" => Target::Msgid,
            "msg" => Target::Msg,
            "facility" => Target::Facility,
            "severity" => Target::Severity,
            other => {
                let path = other.strip_prefix("fields.")?;
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return None;
                }
                Target::Field(path.to_string())
            }
        })
    }
}

/// How a `mask` step rewrites a value.
#[derive(Clone, Debug)]
pub enum MaskKind {
    /// IPv4 addresses keep this many leading bits; the rest are zero (`192.0.2.0`).
    Ipv4(u8),
    /// IPv6 addresses keep this many leading bits; the rest are zero (`2001:db8::`).
    Ipv6(u8),
    /// Runs of 13 to 19 digits (spaces and dashes allowed between them) that pass the Luhn
    /// check: every digit but the last four becomes `*`.
    Card,
    /// Each match of the regex is replaced (`$1` and `$name` refer to groups).
    Regex(Regex, String),
}

/// One `mask` step.
#[derive(Clone, Debug)]
pub struct Mask {
    /// The value masked.
    pub target: Target,
    /// How.
    pub kind: MaskKind,
}

/// The steps of one rule, applied in this order: `parse`, `set`, `remove`, `drop_fields`,
/// `mask`.
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    /// Body parsers tried on the text, the first that reads it wins; its fields join the
    /// message's (a field of the same name is replaced).
    pub parse: Vec<BodyParser>,
    /// Values set from templates.
    pub set: Vec<(Target, Arc<LineTemplate>)>,
    /// Values removed.
    pub remove: Vec<Target>,
    /// Parsed fields dropped, by top-level name pattern (`*` matches any run of characters).
    pub drop_fields: Vec<String>,
    /// Values masked.
    pub mask: Vec<Mask>,
}

impl PartialEq for Rewrite {
    fn eq(&self, other: &Rewrite) -> bool {
        // Compared for reloads: by what they were written as.
        format!("{self:?}") == format!("{other:?}")
    }
}

/// A rewritten message's values, owned; [`Owned::message`] lends them as a [`Message`].
#[derive(Clone, Debug, Default)]
pub struct Owned {
    facility: Option<Facility>,
    severity: Option<Severity>,
    host: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
    procid: Option<Vec<u8>>,
    msgid: Option<Vec<u8>>,
    msg: Vec<u8>,
    parsed: Option<Map<String, Value>>,
}

impl Owned {
    /// The rewritten message: `base` with the values this holds.
    pub fn message<'s>(&'s self, base: &Message<'s>) -> Message<'s> {
        Message {
            facility: self.facility.unwrap_or(base.facility),
            severity: self.severity.unwrap_or(base.severity),
            hostname: self.host.as_deref(),
            appname: self.tag.as_deref(),
            procid: self.procid.as_deref(),
            msgid: self.msgid.as_deref(),
            msg: &self.msg,
            parsed: self.parsed.as_ref().filter(|p| !p.is_empty()),
            ..base.clone()
        }
    }
}

impl Rewrite {
    /// `ev`'s message with the steps applied. `time` serves the templates of `set`.
    pub fn apply(&self, ev: &Event<'_>, time: &mut TimeCache) -> Owned {
        let m = &ev.msg;
        let mut o = Owned {
            facility: Some(m.facility),
            severity: Some(m.severity),
            host: m.hostname.map(<[u8]>::to_vec),
            tag: m.appname.map(<[u8]>::to_vec),
            procid: m.procid.map(<[u8]>::to_vec),
            msgid: m.msgid.map(<[u8]>::to_vec),
            msg: m.msg.to_vec(),
            parsed: m.parsed.cloned(),
        };
        if !self.parse.is_empty() {
            let read = first_that_reads(&self.parse, m.msg, &Limits::default());
            if let Some(read) = read.filter(|r| !r.fields.is_empty()) {
                let parsed = o.parsed.get_or_insert_with(Map::new);
                parsed.extend(read.fields);
            }
        }
        for (target, template) in &self.set {
            let mut value = Vec::new();
            template.render(ev, time, &mut value);
            if value.last() == Some(&b'\n') {
                value.pop();
            }
            o.set(target, value);
        }
        for target in &self.remove {
            o.remove(target);
        }
        if let Some(parsed) = &mut o.parsed {
            parsed.retain(|k, _| !self.drop_fields.iter().any(|p| wildcard(p, k)));
        }
        for mask in &self.mask {
            o.mask(mask);
        }
        o
    }
}

impl Owned {
    fn set(&mut self, target: &Target, value: Vec<u8>) {
        match target {
            Target::Host => self.host = Some(value),
            Target::Tag => self.tag = Some(value),
            Target::Procid => self.procid = Some(value),
            Target::Msgid => self.msgid = Some(value),
            Target::Msg => self.msg = value,
            Target::Facility => {
                if let Some(f) = std::str::from_utf8(&value)
                    .ok()
                    .and_then(Facility::from_name)
                {
                    self.facility = Some(f);
                }
            }
            Target::Severity => {
                if let Some(s) = std::str::from_utf8(&value)
                    .ok()
                    .and_then(Severity::from_name)
                {
                    self.severity = Some(s);
                }
            }
            Target::Field(path) => {
                let text = String::from_utf8_lossy(&value).into_owned();
                let map = self.parsed.get_or_insert_with(Map::new);
                set_path(map, path, Value::String(text));
            }
        }
    }

    fn remove(&mut self, target: &Target) {
        match target {
            Target::Host => self.host = None,
            Target::Tag => self.tag = None,
            Target::Procid => self.procid = None,
            Target::Msgid => self.msgid = None,
            Target::Msg => self.msg.clear(),
            Target::Facility | Target::Severity => {}
            Target::Field(path) => {
                if let Some(map) = &mut self.parsed {
                    remove_path(map, path);
                }
            }
        }
    }

    fn mask(&mut self, mask: &Mask) {
        let apply = |text: &[u8]| -> Option<Vec<u8>> {
            let out = match &mask.kind {
                MaskKind::Ipv4(bits) => mask_ipv4(text, *bits),
                MaskKind::Ipv6(bits) => mask_ipv6(text, *bits),
                MaskKind::Card => mask_cards(text),
                MaskKind::Regex(re, with) => re.replace_all(text, with.as_bytes()).into_owned(),
            };
            (out != text).then_some(out)
        };
        let slot = match &mask.target {
            Target::Host => self.host.as_mut(),
            Target::Tag => self.tag.as_mut(),
            Target::Procid => self.procid.as_mut(),
            Target::Msgid => self.msgid.as_mut(),
            Target::Msg => Some(&mut self.msg),
            Target::Facility | Target::Severity => None,
            Target::Field(path) => {
                if let Some(v) = self.parsed.as_mut().and_then(|m| get_path_mut(m, path)) {
                    mask_value(v, &apply);
                }
                None
            }
        };
        if let Some(slot) = slot {
            if let Some(new) = apply(slot) {
                *slot = new;
            }
        }
    }
}

/// Masks every string inside `v` (a number becomes the masked text of its JSON form).
fn mask_value(v: &mut Value, apply: &dyn Fn(&[u8]) -> Option<Vec<u8>>) {
    match v {
        Value::String(s) => {
            if let Some(new) = apply(s.as_bytes()) {
                *s = String::from_utf8_lossy(&new).into_owned();
            }
        }
        Value::Number(n) => {
            if let Some(new) = apply(n.to_string().as_bytes()) {
                *v = Value::String(String::from_utf8_lossy(&new).into_owned());
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_value(x, apply)),
        Value::Object(o) => o.values_mut().for_each(|x| mask_value(x, apply)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn set_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut at = map;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_string(), value);
            return;
        }
        let entry = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        at = entry.as_object_mut().expect("made an object");
    }
}

fn remove_path(map: &mut Map<String, Value>, path: &str) {
    match path.rsplit_once('.') {
        None => {
            map.remove(path);
        }
        Some((parent, last)) => {
            if let Some(Value::Object(o)) = get_path_mut(map, parent) {
                o.remove(last);
            }
        }
    }
}

fn get_path_mut<'m>(map: &'m mut Map<String, Value>, path: &str) -> Option<&'m mut Value> {
    let mut parts = path.split('.');
    let mut at = map.get_mut(parts.next()?)?;
    for part in parts {
        at = at.as_object_mut()?.get_mut(part)?;
    }
    Some(at)
}

/// `*` matches any run of characters; everything else itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// IPv4 addresses in `text` with only their first `bits` bits kept (`192.0.2.77` with 24
/// → `192.0.2.0`). An address is four dot-separated numbers up to 255, not inside a longer
/// run of digits and dots.
pub fn mask_ipv4(text: &[u8], bits: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let boundary = i == 0 || !(text[i - 1].is_ascii_digit() || text[i - 1] == b'.');
        if boundary && text[i].is_ascii_digit() {
            if let Some((addr, len)) = read_ipv4(&text[i..]) {
                let keep = if bits >= 32 {
                    u32::MAX
                } else {
                    !(u32::MAX >> bits)
                };
                let a = std::net::Ipv4Addr::from(u32::from(addr) & keep);
                out.extend_from_slice(a.to_string().as_bytes());
                i += len;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

fn read_ipv4(text: &[u8]) -> Option<(std::net::Ipv4Addr, usize)> {
    let end = text
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
        .unwrap_or(text.len());
    // A trailing dot ends a sentence, not the address.
    let mut candidate = &text[..end];
    if candidate.ends_with(b".") {
        candidate = &candidate[..candidate.len() - 1];
    }
    let s = std::str::from_utf8(candidate).ok()?;
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.len() > 3) {
        return None;
    }
    s.parse().ok().map(|a| (a, candidate.len()))
}

/// IPv6 addresses in `text` with only their first `bits` bits kept, written in their short
/// form (`2001:db8:1:2:3:4:5:6` with 64 → `2001:db8:1:2::`). A candidate is a run of hex
/// digits and colons (with an optional dotted IPv4 tail) holding at least two colons that
/// parses as an address.
pub fn mask_ipv6(text: &[u8], bits: u8) -> Vec<u8> {
    let is_char = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let boundary = i == 0 || !(text[i - 1].is_ascii_alphanumeric() || text[i - 1] == b':');
        if boundary && is_char(text[i]) {
            let end = text[i..]
                .iter()
                .position(|b| !is_char(*b))
                .map_or(text.len(), |p| i + p);
            let mut cand = &text[i..end];
            while cand.ends_with(b".") {
                cand = &cand[..cand.len() - 1];
            }
            let colons = cand.iter().filter(|b| **b == b':').count();
            if colons >= 2 {
                if let Some(a) = std::str::from_utf8(cand)
                    .ok()
                    .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
                {
                    let keep = if bits >= 128 {
                        u128::MAX
                    } else {
                        !(u128::MAX >> bits)
                    };
                    let masked = std::net::Ipv6Addr::from(u128::from(a) & keep);
                    out.extend_from_slice(masked.to_string().as_bytes());
                    i += cand.len();
                    continue;
                }
            }
            // Not an address: copy the run as it is.
            out.extend_from_slice(&text[i..end]);
            i = end;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Card numbers in `text` (13 to 19 digits, single spaces or dashes allowed between them,
/// passing the Luhn check) with every digit but the last four replaced by `*`.
pub fn mask_cards(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    let mut i = 0;
    while i < text.len() {
        let boundary = i == 0 || !text[i - 1].is_ascii_alphanumeric();
        if !(boundary && text[i].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // The longest run of digits with single separators.
        let mut digits = Vec::new();
        let mut j = i;
        let mut end = i;
        while j < text.len() {
            let b = text[j];
            if b.is_ascii_digit() {
                digits.push(j);
                end = j + 1;
                j += 1;
            } else if (b == b' ' || b == b'-')
                && j + 1 < text.len()
                && text[j + 1].is_ascii_digit()
                && text[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        let after_ok = end >= text.len() || !text[end].is_ascii_alphanumeric();
        if after_ok && (13..=19).contains(&digits.len()) && luhn(text, &digits) {
            for &d in &digits[..digits.len() - 4] {
                out[d] = b'*';
            }
        }
        i = end.max(i + 1);
    }
    out
}

fn luhn(text: &[u8], digits: &[usize]) -> bool {
    let mut sum = 0u32;
    for (n, &at) in digits.iter().rev().enumerate() {
        let mut d = u32::from(text[at] - b'0');
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn ipv4_addresses_keep_their_prefix() {
        assert_eq!(
            s(mask_ipv4(b"from 192.0.2.77 port 22, via 10.1.2.3.", 24)),
            "from 192.0.2.0 port 22, via 10.1.2.0."
        );
        assert_eq!(s(mask_ipv4(b"10.1.2.3", 16)), "10.1.0.0");
        // Versions and longer dotted runs are not addresses.
        assert_eq!(
            s(mask_ipv4(b"v1.2.3.4.5 and 300.1.1.1", 8)),
            "v1.2.3.4.5 and 300.1.1.1"
        );
    }

    #[test]
    fn ipv6_addresses_keep_their_prefix() {
        assert_eq!(
            s(mask_ipv6(b"src=2001:db8:1:2:3:4:5:6 dst=::1", 64)),
            "src=2001:db8:1:2:: dst=::"
        );
        assert_eq!(s(mask_ipv6(b"at 12:30:45 ok", 64)), "at 12:30:45 ok");
        assert_eq!(s(mask_ipv6(b"fe80::1ff:fe23:4567:890a.", 10)), "fe80::.");
    }

    #[test]
    fn card_numbers_keep_their_last_four_digits() {
        assert_eq!(
            s(mask_cards(b"card 4111 1111 1111 1111 ok")),
            "card **** **** **** 1111 ok"
        );
        assert_eq!(s(mask_cards(b"4012888888881881")), "************1881");
        // Fails Luhn, or too short: left alone.
        assert_eq!(s(mask_cards(b"4111111111111112")), "4111111111111112");
        assert_eq!(s(mask_cards(b"order 123456789012")), "order 123456789012");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*_token", "api_token"));
        assert!(wildcard("pass*", "password"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxbyy"));
        assert!(wildcard("user", "user") && !wildcard("user", "users"));
    }

    #[test]
    fn fields_are_set_removed_and_masked_by_path() {
        let mut map: Map<String, Value> =
            serde_json::from_str(r#"{"req":{"ip":"192.0.2.9","path":"/"},"password":"x","n":5}"#)
                .unwrap();
        set_path(&mut map, "req.user", Value::String("bob".into()));
        remove_path(&mut map, "req.path");
        let mut o = Owned {
            parsed: Some(map),
            ..Owned::default()
        };
        o.mask(&Mask {
            target: Target::Field("req".into()),
            kind: MaskKind::Ipv4(16),
        });
        let rule = Rewrite {
            drop_fields: vec!["pass*".into()],
            ..Rewrite::default()
        };
        if let Some(p) = &mut o.parsed {
            p.retain(|k, _| !rule.drop_fields.iter().any(|w| wildcard(w, k)));
        }
        assert_eq!(
            serde_json::to_string(o.parsed.as_ref().unwrap()).unwrap(),
            r#"{"n":5,"req":{"ip":"192.0.0.0","user":"bob"}}"#
        );
    }
}
