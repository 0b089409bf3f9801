//! Every configuration key, read from the serde definitions in `raw.rs` (the names serde
//! matches, renames applied), so that documentation can be checked against the real set: the
//! man-page test fails naming any key `logwell.toml(5)` does not describe. Nothing here reads
//! a configuration.

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
                "follow"
            ]
        );
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
