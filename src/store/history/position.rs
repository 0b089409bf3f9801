//! A [`Position`] in a file set: a generation's identity (the FNV-1a hash of its first line)
//! and an offset in its uncompressed content, and its `HEX:OFFSET` text form. Pure; fuzzed
//! (`fuzz/fuzz_targets/position.rs`).

use super::*;

/// A place in a file set that survives rotation and compression: the identity of a
/// generation (the FNV-1a hash of its first line) and a byte offset in its uncompressed
/// content. Printed and serialised as `HEX:OFFSET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Position {
    /// The generation's identity: the hash of its first line.
    pub generation: u64,
    /// Byte offset in the generation's uncompressed content.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(40);
        self.push_to(&mut out);
        f.write_str(std::str::from_utf8(&out).expect("hex digits, a colon and digits"))
    }
}

impl Position {
    /// Appends `HEX:OFFSET` (as `Display` prints it) without the formatting machinery: the
    /// follow service writes one per line it sends.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in (0..16).rev() {
            out.push(HEX[((self.generation >> (shift * 4)) & 0xf) as usize]);
        }
        out.push(b':');
        crate::render::format::push_decimal(out, self.offset);
    }
}

/// A position that is not `HEX:OFFSET`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad position `{0}`: expected HEX:OFFSET as printed by a previous read, such as `00c0ffee12345678:1024`")]
pub struct ParsePositionError(String);

impl FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Position, ParsePositionError> {
        let bad = || ParsePositionError(s.to_string());
        let (hex, offset) = s.split_once(':').ok_or_else(bad)?;
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Position {
            generation: u64::from_str_radix(hex, 16).map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        })
    }
}

impl From<Position> for String {
    fn from(p: Position) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Position {
    type Error = ParsePositionError;

    fn try_from(s: String) -> Result<Position, ParsePositionError> {
        s.parse()
    }
}

/// FNV-1a, 64 bits: stable across Rust versions and machines, unlike `DefaultHasher`.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
