//! The Kafka action's templates: a topic (`logs.{facility}`) and a partition key (`{host}`),
//! parsed at config validation and rendered per message in the input task, with the fields
//! of templated paths ([`template::FIELD_NAMES`]). Pure: no I/O. Compiled with or without
//! the `kafka` feature, so `--check-config` checks them either way.
//!
//! A rendered topic keeps only what Kafka allows in a topic name (`A-Z a-z 0-9 . _ -`,
//! anything else becomes `_`, at most 249 bytes, never empty); a rendered key keeps the
//! field's bytes as the path templates sanitise them.

use chrono::FixedOffset;

use super::template::{self, Field};
use crate::message::Event;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_BYTES: usize = 249;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Field(Field),
}

/// A parsed topic or key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaTemplate {
    parts: Vec<Part>,
    /// The paths of its `{fields.NAME}` fields.
    fields: Vec<String>,
}

/// Why a template is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KafkaTemplateError {
    /// `{nope}`.
    #[error("unknown field `{{{0}}}`")]
    UnknownField(String),
    /// A `{` without `}`.
    #[error("a `{{` is not closed")]
    Unclosed,
    /// Nothing at all.
    #[error("the template is empty")]
    Empty,
}

impl KafkaTemplate {
    /// Parses `logs.{facility}`.
    pub fn parse(text: &str) -> Result<KafkaTemplate, KafkaTemplateError> {
        if text.is_empty() {
            return Err(KafkaTemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut fields = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest.as_bytes()[..open].to_vec()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(KafkaTemplateError::Unclosed)?;
            let name = &after[..close];
            let field = match template::parsed_field(name, &mut fields) {
                Some(f) => f,
                None => template::FIELD_NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| KafkaTemplateError::UnknownField(name.to_string()))?,
            };
            parts.push(Part::Field(field));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.as_bytes().to_vec()));
        }
        Ok(KafkaTemplate { parts, fields })
    }

    /// Whether it has no field (the same for every message).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Appends the rendered value for `ev`.
    pub fn render(&self, ev: &Event<'_>, local_offset: FixedOffset, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Field(f) => template::render_field(*f, &self.fields, ev, local_offset, out),
            }
        }
    }

    /// Appends the rendered value for `ev` as a legal topic name.
    pub fn render_topic(&self, ev: &Event<'_>, local_offset: FixedOffset, out: &mut Vec<u8>) {
        let start = out.len();
        self.render(ev, local_offset, out);
        topic_name(out, start);
    }
}

/// Makes `out[start..]` a legal topic name, in place.
pub fn topic_name(out: &mut Vec<u8>, start: usize) {
    for b in &mut out[start..] {
        if !(b.is_ascii_alphanumeric() || matches!(*b, b'.' | b'_' | b'-')) {
            *b = b'_';
        }
    }
    out.truncate(start + MAX_TOPIC_BYTES.min(out.len() - start));
    match &out[start..] {
        b"" | b"." | b".." => {
            out.truncate(start);
            out.extend_from_slice(template::PLACEHOLDER);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_literals() {
        let t = KafkaTemplate::parse("logs.{facility}").unwrap();
        assert!(!t.is_constant());
        assert!(KafkaTemplate::parse("logs").unwrap().is_constant());
        assert_eq!(
            KafkaTemplate::parse("logs.{nope}"),
            Err(KafkaTemplateError::UnknownField("nope".into()))
        );
        assert_eq!(
            KafkaTemplate::parse("logs.{host"),
            Err(KafkaTemplateError::Unclosed)
        );
        assert_eq!(KafkaTemplate::parse(""), Err(KafkaTemplateError::Empty));
    }

    #[test]
    fn a_topic_takes_a_parsed_field() {
        use std::sync::Arc;
        let t = KafkaTemplate::parse("logs.{fields.team}.{fields.team}").unwrap();
        assert_eq!(t.fields, ["team"]);
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"team":"pay ments"}"#).unwrap();
        let ctx =
            crate::parse::ParseContext::new(chrono::Utc::now(), FixedOffset::east_opt(0).unwrap());
        let mut msg = crate::parse::parse(b"<13>hello", &ctx);
        msg.parsed = Some(&parsed);
        let source = crate::message::Source {
            input: Arc::from("t"),
            peer: None,
            creds: None,
            default_host: Arc::from("h"),
            use_sender_timestamp: true,
            tls_peer: None,
        };
        let ev = Event {
            msg,
            recv_time: chrono::Utc::now(),
            source: &source,
            creds: None,
        };
        let mut out = Vec::new();
        t.render_topic(&ev, FixedOffset::east_opt(0).unwrap(), &mut out);
        assert_eq!(out, b"logs.pay_ments.pay_ments");
    }

    #[test]
    fn topic_names_keep_only_legal_bytes() {
        let mut v = b"x/logs.a b\xc3\xa9-_".to_vec();
        topic_name(&mut v, 2);
        assert_eq!(v, b"x/logs.a_b__-_");
        let mut v = b"..".to_vec();
        topic_name(&mut v, 0);
        assert_eq!(v, b"_empty");
        let mut v = vec![b'a'; 300];
        topic_name(&mut v, 0);
        assert_eq!(v.len(), MAX_TOPIC_BYTES);
    }
}
