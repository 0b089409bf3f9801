//! Structured bodies: the fields inside a message's text. Pure parsers, each taking the body
//! (the MSG part, after the syslog header) and giving named fields, as rsyslog's
//! `mmjsonparse`, syslog-ng's `json-parser()` and `kv-parser()`, and Vector's `parse_json`,
//! `parse_logfmt` and `parse_key_value` do.
//!
//! - [`json`](mod@json): the body is one JSON object (RFC 8259), or one after rsyslog's `@cee:` cookie
//!   ([`cee`](fn@cee) requires the cookie);
//! - [`logfmt`](mod@logfmt): the kr/logfmt grammar (go-logfmt's): `k=v`, `k="quoted \" value"`, `k=`,
//!   bare `k` (`true`);
//! - [`kv`](mod@kv): `key=value` pairs with a configurable pair separator, key separator and quotes,
//!   as syslog-ng's `kv-parser()` reads them;
//! - [`regex`](mod@regex): the named groups of a regular expression.
//!
//! Field values are JSON values ([`serde_json::Value`]): a JSON body keeps its numbers,
//! booleans, objects and arrays; logfmt and kv values are strings (a bare logfmt key is
//! `true`), and typing them is a separate, explicit step. A key repeated in one body keeps its
//! last value.
//!
//! # Outcomes
//! A parser never fails the message. It gives an [`Outcome`]: the fields it read, and the
//! error that stopped it, if any. [`Outcome::kind`] says which of three it is:
//! - [`Kind::Parsed`]: the whole body was read (no fields is a valid result: `{}`);
//! - [`Kind::Partial`]: leading pairs were read, then a syntax error (logfmt only, as
//!   go-logfmt reports them): the fields are kept, the body too, and the error counted;
//! - [`Kind::Failed`]: nothing usable; the body stays as it is and `parse_failed` is counted.
//!
//! [`header`] then takes header values from the fields (`severity_from`, `time_from`,
//! `host_from`, `tag_from`).
//!
//! An input runs a list of them ([`BodyParser`], [`first_that_reads`]): the first that reads
//! fields wins.
//!
//! # Limits
//! A body gives at most [`Limits::max_fields`] top-level fields, each string value at most
//! [`Limits::max_value_bytes`] (cut at a character boundary); what is over is dropped or cut
//! and counted in [`Outcome::cut`]. JSON nesting deeper than 127 levels fails the body
//! (serde_json's recursion limit; json-c's is 31).
//!
//! Checked against the conformance corpus's `structured.jsonl` (154 bodies from the test
//! suites of rsyslog, syslog-ng, Vector, go-logfmt and Fluent Bit; `tests/it/conformance.rs`).

pub mod header;
pub mod json;
pub mod kv;
pub mod logfmt;
pub mod regex;

pub use header::HeaderFrom;
pub use json::{cee, json};
pub use kv::{kv, KvOptions};
pub use logfmt::logfmt;

use serde_json::{Map, Value};

/// The fields a parser read, by name.
pub type Fields = Map<String, Value>;

/// What a parser made of a body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The fields read, in full or up to the error.
    pub fields: Fields,
    /// Why the parser stopped before the end of the body, if it did.
    pub error: Option<String>,
    /// Fields dropped, and values cut, by [`Limits`].
    pub cut: usize,
}

/// The three outcomes a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The whole body was read.
    Parsed,
    /// Some fields, then an error: keep the fields and the body, count the error.
    Partial,
    /// No fields: keep the body as it is, count `parse_failed`.
    Failed,
}

impl Outcome {
    /// Parsed, Partial or Failed.
    pub fn kind(&self) -> Kind {
        match (&self.error, self.fields.is_empty()) {
            (None, _) => Kind::Parsed,
            (Some(_), false) => Kind::Partial,
            (Some(_), true) => Kind::Failed,
        }
    }

    fn failed(error: impl Into<String>) -> Outcome {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }
}

/// A body parser an input runs (`parse = ["json", "logfmt"]`).
#[derive(Clone, Debug)]
pub enum BodyParser {
    /// A JSON object, with or without the `@cee:` cookie.
    Json,
    /// `@cee:` and a JSON object.
    Cee,
    /// logfmt.
    Logfmt,
    /// `key=value` pairs.
    Kv(KvOptions),
    /// The named groups of the input's `regex`.
    Regex(::regex::bytes::Regex),
}

impl PartialEq for BodyParser {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BodyParser::Regex(a), BodyParser::Regex(b)) => a.as_str() == b.as_str(),
            (BodyParser::Kv(a), BodyParser::Kv(b)) => a == b,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl BodyParser {
    /// The names a configuration uses.
    pub const NAMES: [&'static str; 5] = ["json", "cee", "logfmt", "kv", "regex"];

    /// The parser a configuration names (`kv` with its default separators); `regex` is made
    /// with its pattern ([`BodyParser::Regex`]), not by name.
    pub fn from_name(name: &str) -> Option<BodyParser> {
        Some(match name {
            "json" => BodyParser::Json,
            "cee" => BodyParser::Cee,
            "logfmt" => BodyParser::Logfmt,
            "kv" => BodyParser::Kv(KvOptions::default()),
            _ => return None,
        })
    }

    /// Runs the parser on a body.
    pub fn run(&self, body: &[u8], limits: &Limits) -> Outcome {
        match self {
            BodyParser::Json => json(body, limits),
            BodyParser::Cee => cee(body, limits),
            BodyParser::Logfmt => logfmt(body, limits),
            BodyParser::Kv(options) => kv(body, options, limits),
            BodyParser::Regex(re) => regex::regex(body, re, limits),
        }
    }
}

/// Runs `parsers` in order on a body and keeps the first outcome that read fields (parsed or
/// partial): `parse = ["json", "logfmt"]` reads a JSON body as JSON and any other as logfmt.
/// When none did, the outcome is [`Kind::Failed`]. `None` when there are no parsers.
pub fn first_that_reads(parsers: &[BodyParser], body: &[u8], limits: &Limits) -> Option<Outcome> {
    let mut last = None;
    for p in parsers {
        let out = p.run(body, limits);
        if out.kind() != Kind::Failed {
            return Some(out);
        }
        last = Some(out);
    }
    last
}

/// Bounds on what one body may add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Top-level fields kept; later ones are dropped and counted.
    pub max_fields: usize,
    /// Bytes of one string value; a longer one is cut at a character boundary and counted.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    /// 256 fields of at most 32 KiB: far above what programs log, and a bounded cost for a
    /// body built to exhaust memory (its size is already bounded by the input's
    /// `max_message_size_bytes`).
    fn default() -> Limits {
        Limits {
            max_fields: 256,
            max_value_bytes: 32 * 1024,
        }
    }
}

/// Adds one field under [`Limits`]: the last value of a repeated key wins; a new key past
/// `max_fields` is dropped, and a long string value cut, each counted in `cut`.
fn insert(out: &mut Outcome, limits: &Limits, key: String, value: Value) {
    if !out.fields.contains_key(&key) && out.fields.len() >= limits.max_fields {
        out.cut += 1;
        return;
    }
    let value = match value {
        Value::String(s) if s.len() > limits.max_value_bytes => {
            out.cut += 1;
            Value::String(cut_at(s, limits.max_value_bytes))
        }
        v => v,
    };
    out.fields.insert(key, value);
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut_at(mut s: String, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Text of a key or value read from the body's bytes: UTF-8 kept, anything else replaced
/// (U+FFFD), as the JSON the fields become requires.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_drop_extra_fields_and_cut_long_values_counting_both() {
        let limits = Limits {
            max_fields: 2,
            max_value_bytes: 4,
        };
        let mut out = Outcome::default();
        insert(&mut out, &limits, "a".into(), Value::String("héllo".into()));
        insert(&mut out, &limits, "b".into(), Value::from(1));
        insert(&mut out, &limits, "c".into(), Value::from(2));
        insert(&mut out, &limits, "b".into(), Value::from(3));
        assert_eq!(out.fields["a"], "hél", "cut at a character boundary");
        assert_eq!(
            out.fields["b"], 3,
            "a repeated key still takes its last value"
        );
        assert!(!out.fields.contains_key("c"));
        assert_eq!(out.cut, 2);
        assert_eq!(out.kind(), Kind::Parsed);
    }
}
