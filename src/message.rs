//! The one message model every stage shares: [`Message`] (what the sender said, as parsed),
//! [`Source`] (where and how it arrived) and [`Event`] (the two together plus the reception
//! time), with [`Facility`] and [`Severity`].
//!
//! A `Message` borrows every field from the frame it was parsed from, so parsing, routing and
//! formatting run with no per-message allocation: an input reads a batch into its buffer,
//! parses each frame into a borrowed `Message`, routes it and formats it into output buffers
//! before the read buffer is reused. Text fields are bytes, not `str`, because senders send
//! invalid UTF-8 and it must be kept, not lost or panicked on; formatters escape it.
//!
//! This module owns no I/O and no policy: parsing lives in `parse`, formatting in `output`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

/// A tiny stand-in for the `bitflags` crate, which would be a dependency for one type.
macro_rules! bitflags_lite {
    (
        $(#[$outer:meta])*
        pub struct $name:ident: $t:ty {
            $( $(#[$inner:meta])* const $flag:ident = $value:expr; )*
        }
    ) => {
        $(#[$outer])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name($t);
        impl $name {
            $( $(#[$inner])* pub const $flag: $name = $name($value); )*
            /// No flag set.
            pub const fn empty() -> Self { $name(0) }
            /// Whether every flag in `other` is set.
            pub const fn contains(self, other: Self) -> bool { self.0 & other.0 == other.0 }
            /// Sets the flags in `other`.
            pub fn insert(&mut self, other: Self) { self.0 |= other.0 }
            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool { self.0 == 0 }
        }
        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self { $name(self.0 | rhs.0) }
        }
    };
}

/// Syslog facility, RFC 5424 §6.2.1 (`PRI >> 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(u8);

/// Names of the 24 facilities, indexed by code, as rsyslog spells them.
pub const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

impl Facility {
    /// `kern`, facility 0.
    pub const KERN: Facility = Facility(0);
    /// `user`, facility 1: the default when a message carries no usable PRI (RFC 3164 §4.3.3).
    pub const USER: Facility = Facility(1);
    /// `auth`, facility 4.
    pub const AUTH: Facility = Facility(4);
    /// `authpriv`, facility 10.
    pub const AUTHPRIV: Facility = Facility(10);

    /// The facility with this code, if it is one of the 24 defined (0..=23).
    pub fn from_code(code: u8) -> Option<Facility> {
        (code < 24).then_some(Facility(code))
    }

    /// The numeric code, 0..=23.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The rsyslog name (`kern`, `authpriv`, `local7`, …).
    pub fn name(self) -> &'static str {
        FACILITY_NAMES[self.0 as usize]
    }

    /// Looks a facility up by its rsyslog name; `auth` and `security` both name facility 4
    /// (as in rsyslog, where `security` is the deprecated alias of `auth`), and `mark` is
    /// accepted as facility 24 would be in BSD syslog, which has no messages, so it is refused.
    pub fn from_name(name: &str) -> Option<Facility> {
        if name.eq_ignore_ascii_case("security") {
            return Some(Facility::AUTH);
        }
        FACILITY_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| Facility(i as u8))
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Syslog severity, RFC 5424 §6.2.1 (`PRI & 7`). 0 (`emerg`) is the most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

/// Names of the 8 severities, indexed by code, as rsyslog spells them.
pub const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl Severity {
    /// `emerg`, 0.
    pub const EMERG: Severity = Severity(0);
    /// `notice`, 5: the default when a message carries no usable PRI.
    pub const NOTICE: Severity = Severity(5);
    /// `info`, 6.
    pub const INFO: Severity = Severity(6);
    /// `debug`, 7.
    pub const DEBUG: Severity = Severity(7);

    /// The severity with this code, if it is 0..=7.
    pub fn from_code(code: u8) -> Option<Severity> {
        (code < 8).then_some(Severity(code))
    }

    /// The numeric code, 0..=7.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The rsyslog name (`emerg` … `debug`).
    pub fn name(self) -> &'static str {
        SEVERITY_NAMES[self.0 as usize]
    }

    /// Looks a severity up by name, accepting the aliases rsyslog and journalctl accept
    /// (`panic`, `error`, `warn`) and the numbers `0`..`7`.
    pub fn from_name(name: &str) -> Option<Severity> {
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "panic" => "emerg",
            "error" => "err",
            "warn" => "warning",
            other => other,
        };
        if let Ok(n) = alias.parse::<u8>() {
            return Severity::from_code(n);
        }
        SEVERITY_NAMES
            .iter()
            .position(|n| *n == alias)
            .map(|i| Severity(i as u8))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much of a date a sender's timestamp carried; the formatters and the year inference
/// need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampKind {
    /// RFC 3339 with an offset (`2003-10-11T22:14:15.003Z`): an exact instant.
    Rfc3339,
    /// BSD `Mmm dd hh:mm:ss`: no year and no zone. The parser inferred the year from the
    /// reception time; the zone is the receiver's local zone.
    Yearless,
    /// A year but no offset (`2009-10-16T11:51:56`, `Mar 7 2008 19:06:53`): wall-clock time
    /// in an unknown zone, taken as the receiver's local zone.
    Local,
}

/// A sender's timestamp as parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Wall-clock date and time as the sender wrote it (year inferred for `Yearless`),
    /// with the fraction truncated to microseconds.
    pub local: NaiveDateTime,
    /// The sender's UTC offset, for `Rfc3339` only.
    pub offset: Option<FixedOffset>,
    /// What the sender's timestamp carried.
    pub kind: TimestampKind,
    /// How many fraction digits the sender wrote (0..=6), so a formatter can write the same
    /// precision back.
    pub frac_digits: u8,
}

bitflags_lite! {
    /// What happened to a message on its way in. Counted per input, shown in `json`.
    pub struct Flags: u8 {
        /// No syslog header could be recognised; the text is the whole packet (or everything
        /// after the PRI), per RFC 3164 §4.3.
        const MALFORMED = 1;
        /// The frame was longer than the input's `max_message_size_bytes` and was cut there.
        const TRUNCATED = 2;
        /// The PRI was missing or unusable (`<999>`, `<>`, `<-1>`); facility and severity are the
        /// RFC 3164 default user.notice and the original text is kept in the message text.
        const BAD_PRI = 4;
    }
}

/// A message as the sender sent it, every field borrowed from the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Facility; `user` when the PRI was missing or unusable.
    pub facility: Facility,
    /// Severity; `notice` when the PRI was missing or unusable.
    pub severity: Severity,
    /// `Some(1)` for RFC 5424 (the VERSION field); `None` for BSD-style messages.
    pub version: Option<u16>,
    /// The sender's timestamp, when it sent a usable one.
    pub timestamp: Option<Timestamp>,
    /// HOSTNAME; `None` when absent or NILVALUE. Local senders send none.
    pub hostname: Option<&'a [u8]>,
    /// APP-NAME, or the BSD TAG (without `[pid]` and `:`).
    pub appname: Option<&'a [u8]>,
    /// PROCID, or the text inside the BSD TAG's `[...]`.
    pub procid: Option<&'a [u8]>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<&'a [u8]>,
    /// STRUCTURED-DATA exactly as on the wire (`[id k="v"][id2]`), already validated by the
    /// parser; `None` for NILVALUE or BSD messages. Decode it with `parse::sd::elements`.
    pub structured_data: Option<&'a [u8]>,
    /// MSG, with a leading UTF-8 BOM removed. May be empty, may be invalid UTF-8, may
    /// contain control characters: formatters escape them.
    pub msg: &'a [u8],
    /// What happened on the way in.
    pub flags: Flags,
    /// Further fields of a structured source (the journal's `_SYSTEMD_UNIT`, `_COMM`, …) as
    /// `(NAME, value)` pairs; empty for syslog messages. Shown by `json`; `unit` rules match
    /// `_SYSTEMD_UNIT`.
    pub fields: &'a [(&'a [u8], &'a [u8])],
    /// The fields an input's body parsers read from `msg` (`parse = ["json"]`), if any: JSON
    /// values, shown by `json` under `fields`. Made only for inputs with parsers.
    pub parsed: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> Message<'a> {
    /// The value of a structured field, such as `_SYSTEMD_UNIT`.
    pub fn field(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// A field by its path under `fields.` (`status`, `req.path`: nested by dots): what a body
    /// parser read, then a structured source's field (`_SYSTEMD_UNIT`). `None` when absent.
    pub fn lookup(&self, path: &str) -> Option<FieldValue<'a>> {
        if let Some(parsed) = self.parsed {
            let mut parts = path.split('.');
            let mut at = parsed.get(parts.next()?);
            for part in parts {
                at = at.and_then(|v| v.get(part));
            }
            if let Some(v) = at {
                return Some(FieldValue::Json(v));
            }
        }
        self.field(path.as_bytes()).map(FieldValue::Text)
    }
}

/// A field's value: a parsed JSON value, or a structured source's text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// From a body parser: a string, number, boolean, null, object or array.
    Json(&'a serde_json::Value),
    /// From a structured source (the journal, the kernel log): bytes.
    Text(&'a [u8]),
}

impl FieldValue<'_> {
    /// The value as text, for comparisons: a string as it is, a number, boolean or null as
    /// JSON writes it; `None` for an object or an array.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        use serde_json::Value;
        match self {
            FieldValue::Text(t) => Some(std::borrow::Cow::Borrowed(t)),
            FieldValue::Json(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_bytes())),
            FieldValue::Json(Value::Object(_) | Value::Array(_)) => None,
            FieldValue::Json(v) => Some(std::borrow::Cow::Owned(v.to_string().into_bytes())),
        }
    }

    /// The value as a number: a JSON number, or a string (or text) that is one, as logfmt and
    /// kv values are (`status=500`).
    pub fn number(&self) -> Option<f64> {
        use serde_json::Value;
        let text = match self {
            FieldValue::Json(Value::Number(n)) => return n.as_f64(),
            FieldValue::Json(Value::String(s)) => s.as_str(),
            FieldValue::Text(t) => std::str::from_utf8(t).ok()?,
            FieldValue::Json(_) => return None,
        };
        text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
    }
}

/// Credentials of a local sender, from `SCM_CREDENTIALS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Sender's process id.
    pub pid: i32,
    /// Sender's user id.
    pub uid: u32,
    /// Sender's group id.
    pub gid: u32,
}

/// Where a message came from. One per connection (TCP, Unix stream) or per datagram batch.
#[derive(Clone, Debug)]
pub struct Source {
    /// The name of the input, from the config; shows up in stats and routing rules.
    pub input: Arc<str>,
    /// The peer's address for network inputs.
    pub peer: Option<SocketAddr>,
    /// Credentials of a local sender, when the socket passes them.
    pub creds: Option<Creds>,
    /// The host name written when a message carries none: this host for local sockets, the
    /// peer's address for network inputs (as rsyslog does without DNS lookups).
    pub default_host: Arc<str>,
    /// Whether lines show the sender's timestamp (network inputs) or the reception time
    /// (local sockets, as rsyslog's imuxsock does: local senders' clocks are ours, and their
    /// year-less, second-precision stamps add nothing).
    pub use_sender_timestamp: bool,
    /// The verified identity of a TLS peer (its first DNS name, else its common name), when
    /// the input is TLS and the client sent a certificate.
    pub tls_peer: Option<Arc<str>>,
}

/// A message, where it came from and when it arrived: what routing and formatting see.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    /// The parsed message.
    pub msg: Message<'a>,
    /// Reception time.
    pub recv_time: DateTime<Utc>,
    /// The message's source; credentials may differ per datagram, so they live here and not
    /// only in `Source`.
    pub source: &'a Source,
    /// Credentials of this datagram's sender, when the socket passed them.
    pub creds: Option<Creds>,
}

impl Event<'_> {
    /// The host name to write: the message's own, or the source's default.
    pub fn host(&self) -> &[u8] {
        self.msg
            .hostname
            .unwrap_or(self.source.default_host.as_bytes())
    }
}
