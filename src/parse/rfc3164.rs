//! BSD-style messages (RFC 3164 and what real senders send under that name):
//! `<PRI>TIMESTAMP SP [HOSTNAME SP] TAG[PID]: MSG`, read byte by byte into a borrowed
//! [`Message`] with no allocation.
//!
//! The rules, in the order they apply (they follow rsyslog, checked against the conformance
//! corpus):
//! - The timestamp is BSD (`Mmm dd hh:mm:ss` and variants, see `timestamp::parse_bsd`) or
//!   RFC 3339; spaces and one `.` may come before it. Without a usable timestamp the message
//!   has no header (RFC 3164 §4.3.2): everything after the PRI is MSG, flag `MALFORMED`,
//!   except for a bare `tag[pid]: text`, which is read as a tag.
//! - The first word after the timestamp is the TAG, not a HOSTNAME, when it ends in `:` (and
//!   is no IPv6 address) or holds a character no host name has (`[`, `%`, …): local senders
//!   (glibc `syslog()`, `logger`, journald forwarding) send no hostname.
//! - After a hostname, the next word is the TAG, with or without a colon, as rsyslog reads it.
//! - MSG starts after the `:` and one space; a leading UTF-8 BOM is removed.
//!
//! This replaces `syslog_loose`'s RFC 3164 path, which takes the first word as hostname,
//! keeps the BOM, assumes the current year, takes `&str` only and allocates.

use chrono::NaiveDateTime;

use crate::message::{Flags, Message};

use super::pri::Pri;
use super::{strip_bom, timestamp};

/// Characters a host name (or an IP address) may have; anything else makes the word a tag.
/// Non-ASCII bytes are allowed: some senders use local-language host names.
#[inline]
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/' | b'@') || b >= 0x80
}

/// Whether a TAG may start with this byte (no bracket, quote or control character).
#[inline]
fn is_tag_start(b: u8) -> bool {
    b > b' ' && b != 0x7f && !matches!(b, b'[' | b'{' | b'(' | b'"' | b'\'' | b'<')
}

/// Index of the first byte at or after `i` that is not a space.
#[inline]
fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    i
}

/// A TAG read from the text: the name before `[` or `:`, the PID inside `[...]`, and where
/// MSG starts.
struct Tag<'a> {
    name: Option<&'a [u8]>,
    pid: Option<&'a [u8]>,
    msg_at: usize,
    /// The tag had the strict `name[pid]:` form.
    strict: bool,
}

/// Reads a TAG at `s[i..]`: `name`, `name:`, `name[pid]` or `name[pid]:`, then skips one SP.
fn tag(s: &[u8], i: usize) -> Tag<'_> {
    let mut j = i;
    while j < s.len() && !matches!(s[j], b' ' | b':' | b'[') {
        j += 1;
    }
    let mut name_end = j;
    let mut pid = None;
    if s.get(j) == Some(&b'[') {
        let mut k = j + 1;
        while k < s.len() && !matches!(s[k], b']' | b' ') {
            k += 1;
        }
        if s.get(k) == Some(&b']') {
            pid = (k > j + 1).then(|| &s[j + 1..k]);
            j = k + 1;
        } else {
            // No closing bracket in this word: the bracket is part of the name.
            while j < s.len() && !matches!(s[j], b' ' | b':') {
                j += 1;
            }
            name_end = j;
        }
    }
    let colon = s.get(j) == Some(&b':');
    if colon {
        j += 1;
    }
    if s.get(j) == Some(&b' ') {
        j += 1;
    }
    Tag {
        name: (name_end > i).then(|| &s[i..name_end]),
        pid,
        msg_at: j,
        strict: colon && pid.is_some(),
    }
}

/// Parses `s`, the text after a valid PRI, as a BSD-style message. Never fails: without a
/// usable header the result is RFC 3164 §4.3.2's (MSG is all of `s`, flag `MALFORMED`).
pub(crate) fn parse<'a>(s: &'a [u8], pri: Pri, recv_local: NaiveDateTime) -> Message<'a> {
    let mut m = super::bare(Some(pri), s, Flags::empty());
    let mut i = skip_spaces(s, 0);
    let ts_at = if s.get(i) == Some(&b'.') { i + 1 } else { i };
    let parsed = match s.get(ts_at) {
        Some(b) if b.is_ascii_digit() => timestamp::parse_rfc3339(&s[ts_at..], true)
            .filter(|(_, n)| matches!(s.get(ts_at + n), None | Some(b' '))),
        Some(_) => timestamp::parse_bsd(&s[ts_at..], recv_local),
        None => None,
    };
    let Some((ts, n)) = parsed else {
        // No timestamp. A lone `tag[pid]: text` is still clearly a tag (syslog-ng reads it so).
        let t = tag(s, i);
        if i < s.len() && is_tag_start(s[i]) && t.strict {
            (m.appname, m.procid, m.msg) = (t.name, t.pid, strip_bom(&s[t.msg_at..]));
        } else {
            m.flags = Flags::MALFORMED;
        }
        return m;
    };
    m.timestamp = Some(ts);
    i = skip_spaces(s, ts_at + n);

    // AIX relays: `Message forwarded from HOST: tag[pid]: text`.
    const AIX: &[u8] = b"Message forwarded from ";
    if s[i..].starts_with(AIX) {
        let h = i + AIX.len();
        let mut e = h;
        while e < s.len() && s[e] != b' ' && s[e] != b':' {
            e += 1;
        }
        if e > h && s.get(e) == Some(&b':') && s.get(e + 1) == Some(&b' ') {
            m.hostname = Some(&s[h..e]);
            i = e + 2;
        }
    }

    if m.hostname.is_none() {
        let mut end = i;
        while end < s.len() && s[end] != b' ' {
            end += 1;
        }
        let word = &s[i..end];
        let is_tag = match word.split_last() {
            None => false,
            Some((b':', head)) => !head.contains(&b':') || !word.iter().all(|&b| is_host_byte(b)),
            Some(_) => !word.iter().all(|&b| is_host_byte(b)),
        };
        if !word.is_empty() && !is_tag {
            m.hostname = Some(word);
            i = if end < s.len() { end + 1 } else { end };
        }
    }

    let j = skip_spaces(s, i);
    if j < s.len() && is_tag_start(s[j]) {
        let t = tag(s, j);
        // An empty name (`host : text`) leaves the appname unset.
        (m.appname, m.procid, i) = (t.name, t.pid, t.msg_at);
    }
    m.msg = strip_bom(&s[i.min(s.len())..]);
    m
}
