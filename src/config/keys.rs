//! Every configuration key, read from the serde definitions in `raw.rs` (the names serde
//! matches, renames applied), so that documentation can be checked against the real set: the
//! man-page test fails naming any key `logwell.toml(5)` does not describe. Also which
//! `[output.NAME]` keys each output type takes, and the hint for one set on a type that does
//! not (`OUTPUT_TYPES`); `settings` refuses those. Nothing here reads a configuration.

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::raw;

/// The keys of one TOML table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Where the keys are written: `""` for the top level, `"daemon"`, `"input.NAME"`,
    /// `"output.NAME"`, `"rotation"` (also `output.NAME.rotation`), `"retention"`, `"[rule]"`.
    pub table: &'static str,
    /// The serde struct they come from (`RawDaemon`), for messages.
    pub type_name: &'static str,
    /// The keys, as written in a file.
    pub keys: &'static [&'static str],
}

/// Every table of the configuration and its keys. A new `Raw*` struct in `raw.rs` must be
/// listed here (a unit test checks it).
pub fn tables() -> Vec<Table> {
    vec![
        table::<raw::RawConfig>("", "RawConfig"),
        table::<raw::RawDaemon>("daemon", "RawDaemon"),
        table::<raw::RawInput>("input.NAME", "RawInput"),
        table::<raw::RawOutput>("output.NAME", "RawOutput"),
        table::<raw::RawQueue>("output.NAME.queue", "RawQueue"),
        table::<raw::RawRotation>("rotation", "RawRotation"),
        table::<raw::RawRetention>("retention", "RawRetention"),
        table::<raw::RawRule>("[rule]", "RawRule"),
        table::<raw::RawFollow>("follow", "RawFollow"),
        table::<raw::RawFollowFile>("[follow.files]", "RawFollowFile"),
        table::<raw::RawTemplate>("template.NAME", "RawTemplate"),
        table::<raw::RawRsyslog>("rsyslog", "RawRsyslog"),
        table::<raw::RawMask>("[rule.mask]", "RawMask"),
        table::<raw::RawMultiline>("input.NAME.multiline", "RawMultiline"),
    ]
}

fn table<'de, T: Deserialize<'de>>(table: &'static str, type_name: &'static str) -> Table {
    let keys = Cell::new(None);
    let _ = T::deserialize(FieldCatcher(&keys));
    Table {
        table,
        type_name,
        keys: keys
            .get()
            .unwrap_or_else(|| panic!("{type_name} is not a struct with named fields")),
    }
}

/// An output type (`type = "…"` in `[output.NAME]`) and the keys it takes.
#[derive(Debug)]
pub(crate) struct OutputType {
    /// The `type` value.
    pub(crate) name: &'static str,
    /// The keys it takes besides `type`; some belong to several types (`format`, `queue`).
    pub(crate) keys: &'static [&'static str],
    /// The hint for one of `keys` set on an output of a type that does not take it, when
    /// this is the first type in [`OUTPUT_TYPES`] to take the key.
    pub(crate) hint: &'static str,
    /// Keys of other types for which this type gives its own hint.
    pub(crate) other_hints: &'static [(&'static str, &'static str)],
    /// When set, the only keys of other types this type refuses: the rest pass unread.
    pub(crate) refuses_only: Option<&'static [&'static str]>,
}

/// The hint for `users` and `utmp` on forward and kafka outputs; on the others, the users
/// type's `hint` (which also names the type) is given.
const USERS_HINT: &str = "it applies to users outputs; remove it";

/// Every output type with its keys. The order matters for a key several types take: the
/// first one's hint is given.
pub(crate) const OUTPUT_TYPES: [OutputType; 5] = [
    OutputType {
        name: "file",
        keys: &[
            "path",
            "format",
            "sync",
            "owner",
            "group",
            "mode",
            "flush_interval_ms",
            "buffer_bytes",
            "backlog_bytes",
            "rotation",
            "max_open_files",
            "idle_close_secs",
            "fallback",
            "dir_mode",
            "reduce_repeats",
            "template",
            "json_fields",
        ],
        hint: "it applies to file outputs; remove it",
        other_hints: &[],
        refuses_only: None,
    },
    OutputType {
        name: "users",
        keys: &[
            "users",
            "utmp",
            "write_timeout_ms",
            "template",
            "json_fields",
        ],
        hint: "it applies to users outputs (type = \"users\"); remove it",
        other_hints: &[],
        refuses_only: None,
    },
    OutputType {
        name: "forward",
        keys: &[
            "targets",
            "protocol",
            "framing",
            "format",
            "balance",
            "reconnect_min_ms",
            "reconnect_max_ms",
            "connect_timeout_ms",
            "write_timeout_ms",
            "ca",
            "cert",
            "key",
            "server_name",
            "fingerprints",
            "queue",
            "template",
            "json_fields",
        ],
        hint: "it applies to forward outputs (type = \"forward\"); remove it",
        other_hints: &[("users", USERS_HINT), ("utmp", USERS_HINT)],
        refuses_only: None,
    },
    OutputType {
        name: "kafka",
        keys: &[
            "brokers",
            "topic",
            "partition_key",
            "format",
            "compression",
            "acks",
            "idempotence",
            "linger_ms",
            "batch_bytes",
            "client_id",
            "delivery_timeout_ms",
            "protocol",
            "ca",
            "cert",
            "key",
            "sasl_mechanism",
            "sasl_username",
            "sasl_password",
            "queue",
            "template",
            "json_fields",
        ],
        hint: "it applies to kafka outputs (type = \"kafka\"); remove it",
        other_hints: &[
            ("targets", "name the bootstrap servers in `brokers`"),
            ("users", USERS_HINT),
        ],
        // The other types' keys it has refused since it came; the rest have always passed
        // unread, and refusing them now would fail configurations that load today.
        refuses_only: Some(&[
            "path",
            "rotation",
            "users",
            "targets",
            "framing",
            "balance",
            "server_name",
            "fingerprints",
            "url",
            "preset",
            "table",
            "index",
            "labels",
            "encoding",
            "batch_records",
            "headers",
            "user",
            "password_file",
            "token_file",
            "dead_letter",
            "request_timeout_ms",
            "index",
            "labels",
        ]),
    },
    OutputType {
        name: "http",
        keys: &[
            "url",
            "preset",
            "table",
            "index",
            "labels",
            "encoding",
            "compression",
            "batch_records",
            "batch_bytes",
            "linger_ms",
            "headers",
            "user",
            "password_file",
            "token_file",
            "ca",
            "cert",
            "key",
            "connect_timeout_ms",
            "request_timeout_ms",
            "reconnect_min_ms",
            "reconnect_max_ms",
            "dead_letter",
            "queue",
            "template",
            "json_fields",
        ],
        hint: "it applies to http outputs (type = \"http\"); remove it",
        other_hints: &[("users", USERS_HINT), ("utmp", USERS_HINT)],
        refuses_only: None,
    },
];

impl OutputType {
    /// The type named `name`, if there is one.
    pub(crate) fn named(name: &str) -> Option<&'static OutputType> {
        OUTPUT_TYPES.iter().find(|t| t.name == name)
    }

    /// The hint for `key` set on an output of this type, when this type refuses it: it
    /// belongs only to other types.
    pub(crate) fn refusal_hint(&self, key: &str) -> Option<&'static str> {
        if self.keys.contains(&key) || self.refuses_only.is_some_and(|r| !r.contains(&key)) {
            return None;
        }
        if let Some((_, hint)) = self.other_hints.iter().find(|(k, _)| *k == key) {
            return Some(hint);
        }
        OUTPUT_TYPES
            .iter()
            .find(|t| t.keys.contains(&key))
            .map(|t| t.hint)
    }
}

/// A deserializer that only records the field list serde's derive passes to
/// `deserialize_struct`, then stops.
struct FieldCatcher<'a>(&'a Cell<Option<&'static [&'static str]>>);

impl<'de> Deserializer<'de> for FieldCatcher<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(Some(fields));
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_serdes_names() {
        let t = tables();
        let input = t.iter().find(|t| t.table == "input.NAME").unwrap();
        assert!(
            input.keys.contains(&"type"),
            "renamed field: {:?}",
            input.keys
        );
        assert!(input.keys.contains(&"max_message_size_bytes"));
        let rule = t.iter().find(|t| t.table == "[rule]").unwrap();
        assert!(rule.keys.contains(&"match") && rule.keys.contains(&"final"));
        let top = t.iter().find(|t| t.table.is_empty()).unwrap();
        assert_eq!(
            top.keys,
            [
                "daemon",
                "input",
                "output",
                "rule",
                "rotation",
                "retention",
                "follow",
                "template",
                "rsyslog"
            ]
        );
    }

    fn output_keys() -> Vec<&'static str> {
        let t = tables();
        let output = t.iter().find(|t| t.table == "output.NAME").unwrap();
        output
            .keys
            .iter()
            .copied()
            .filter(|k| *k != "type")
            .collect()
    }

    /// The types' key lists, the keys `settings` looks at and serde's keys are one set.
    #[test]
    fn output_types_cover_every_output_key() {
        let serde_keys = output_keys();
        for t in &OUTPUT_TYPES {
            for k in t.keys.iter().chain(t.refuses_only.unwrap_or_default()) {
                assert!(serde_keys.contains(k), "{}: `{k}` is no output key", t.name);
            }
        }
        for k in &serde_keys {
            assert!(
                OUTPUT_TYPES.iter().any(|t| t.keys.contains(k)),
                "no output type takes `{k}`: add it to keys::OUTPUT_TYPES"
            );
        }
        let raw: raw::RawOutput = toml::from_str("type = \"file\"").unwrap();
        let spans: Vec<&str> = raw.key_spans().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            spans, serde_keys,
            "RawOutput::key_spans lists every key once"
        );
    }

    #[test]
    fn a_key_is_refused_with_its_types_hint() {
        let hint = |ty: &str, key: &str| OutputType::named(ty).unwrap().refusal_hint(key);
        assert_eq!(hint("file", "path"), None);
        assert_eq!(hint("users", "format"), Some(OUTPUT_TYPES[0].hint));
        // Taken by users and forward: the users hint.
        assert_eq!(hint("file", "write_timeout_ms"), Some(OUTPUT_TYPES[1].hint));
        assert_eq!(hint("forward", "utmp"), Some(USERS_HINT));
        // Taken by forward and kafka: the forward hint.
        assert_eq!(hint("users", "queue"), Some(OUTPUT_TYPES[2].hint));
        assert_eq!(hint("forward", "topic"), Some(OUTPUT_TYPES[3].hint));
        assert_eq!(
            hint("kafka", "targets"),
            Some("name the bootstrap servers in `brokers`")
        );
        assert_eq!(hint("kafka", "sync"), None);
        assert_eq!(hint("kafka", "rotation"), Some(OUTPUT_TYPES[0].hint));
    }

    /// Every `struct Raw…` in raw.rs is listed in `tables()`, so a new table's keys cannot
    /// escape the documentation check.
    #[test]
    fn every_raw_struct_is_listed() {
        let listed: Vec<&str> = tables().iter().map(|t| t.type_name).collect();
        let source = include_str!("raw.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub(crate) struct "))
            .map(|rest| rest.split(|c: char| !c.is_alphanumeric()).next().unwrap())
            .collect();
        assert!(declared.len() >= 7, "found {declared:?}");
        for name in declared {
            assert!(
                listed.contains(&name),
                "raw.rs declares `{name}`: add it to config::keys::tables()"
            );
        }
    }
}
