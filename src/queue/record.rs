//! The record codec of the queue: `[length: u32 LE][crc32: u32 LE][payload]`, where the CRC-32
//! (IEEE) covers the four length bytes and the payload, so a flipped bit in the length is caught
//! as surely as one in the payload. Pure functions over bytes: no I/O, no allocation besides the
//! caller's buffer.
//!
//! [`decode`] tells a record cut short ([`Decoded::Incomplete`]: the bytes end inside it, as a
//! torn write at the end of a file leaves it) from bytes that cannot be a record
//! ([`Decoded::Corrupt`]): only the second is corruption, the first is the normal state of
//! the tail after a crash.

/// Bytes before each payload: length and CRC.
pub const HEADER_BYTES: usize = 8;

/// The largest payload a record may hold. Longer lengths are read as corruption, so garbage
/// is never taken for the start of a huge record.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, valid record and the bytes it takes (header included).
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Header plus payload.
        len: usize,
    },
    /// The buffer ends inside a record: `need` bytes in all would complete it (the header's
    /// 8 when not even the header is there).
    Incomplete {
        /// Bytes the whole record would take, when known.
        need: usize,
    },
    /// Not a record: a length beyond [`MAX_PAYLOAD_BYTES`] or a CRC mismatch.
    Corrupt(Corruption),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The length field is beyond [`MAX_PAYLOAD_BYTES`].
    Length(u32),
    /// The CRC does not match the length and payload.
    Checksum,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::Length(n) => write!(f, "a record length of {n} bytes is impossible"),
            Corruption::Checksum => f.write_str("a record's checksum does not match"),
        }
    }
}

fn crc(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// Appends one record holding `payload` to `out`. Panics if the payload is longer than
/// [`MAX_PAYLOAD_BYTES`] (callers refuse such messages first: see [`fits`]).
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    assert!(fits(payload), "record payload too large");
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Whether `payload` can be a record.
pub fn fits(payload: &[u8]) -> bool {
    payload.len() <= MAX_PAYLOAD_BYTES
}

/// Reads the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Decoded::Incomplete { need: HEADER_BYTES };
    };
    let len_bytes: [u8; 4] = header[..4].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_bytes);
    if len as usize > MAX_PAYLOAD_BYTES {
        return Decoded::Corrupt(Corruption::Length(len));
    }
    let total = HEADER_BYTES + len as usize;
    let Some(payload) = buf.get(HEADER_BYTES..total) else {
        return Decoded::Incomplete { need: total };
    };
    let stored = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if stored != crc(&len_bytes, payload) {
        return Decoded::Corrupt(Corruption::Checksum);
    }
    Decoded::Record {
        payload,
        len: total,
    }
}

/// How the bytes of a whole file (or buffer) end, after its valid records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The last record ends exactly at the end.
    Clean,
    /// The bytes end inside a record (a torn write).
    Torn,
    /// Bytes that are not a record follow the last valid one.
    Corrupt(Corruption),
}

/// Walks the records at the start of `buf`: how many, where the last whole one ends, and how
/// the rest looks. What follows `valid` is never read as records.
pub fn scan(buf: &[u8]) -> (u64, usize, Tail) {
    let mut at = 0;
    let mut records = 0;
    loop {
        if at == buf.len() {
            return (records, at, Tail::Clean);
        }
        match decode(&buf[at..]) {
            Decoded::Record { len, .. } => {
                at += len;
                records += 1;
            }
            Decoded::Incomplete { .. } => return (records, at, Tail::Torn),
            Decoded::Corrupt(c) => return (records, at, Tail::Corrupt(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_record_round_trips() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        encode(b"", &mut buf);
        assert_eq!(buf.len(), 2 * HEADER_BYTES + 5);
        assert_eq!(
            decode(&buf),
            Decoded::Record {
                payload: b"hello",
                len: 13
            }
        );
        assert_eq!(
            decode(&buf[13..]),
            Decoded::Record {
                payload: b"",
                len: 8
            }
        );
        assert_eq!(scan(&buf), (2, buf.len(), Tail::Clean));
    }

    #[test]
    fn a_torn_tail_is_incomplete_not_corrupt() {
        let mut buf = Vec::new();
        encode(b"first", &mut buf);
        encode(b"second record", &mut buf);
        let whole = buf.len();
        for cut in 14..whole {
            assert_eq!(scan(&buf[..cut]), (1, 13, Tail::Torn), "cut at {cut}");
        }
        assert_eq!(decode(&buf[13..16]), Decoded::Incomplete { need: 8 });
        assert_eq!(decode(&buf[13..25]), Decoded::Incomplete { need: 8 + 13 });
    }

    #[test]
    fn a_flipped_bit_is_corruption() {
        let mut buf = Vec::new();
        encode(b"payload", &mut buf);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                // A changed length can only make the record look longer or shorter: never
                // valid.
                assert!(
                    !matches!(decode(&bad), Decoded::Record { .. }),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn garbage_after_records_is_reported_where_it_starts() {
        let mut buf = Vec::new();
        encode(b"one", &mut buf);
        let valid = buf.len();
        buf.extend_from_slice(&[0xff; 64]);
        assert_eq!(
            scan(&buf),
            (1, valid, Tail::Corrupt(Corruption::Length(u32::MAX)))
        );
        let mut buf2 = Vec::new();
        encode(b"one", &mut buf2);
        buf2.extend_from_slice(&[3, 0, 0, 0, 1, 2, 3, 4, b'a', b'b', b'c']);
        assert_eq!(scan(&buf2), (1, valid, Tail::Corrupt(Corruption::Checksum)));
    }

    proptest! {
        /// Any list of payloads encodes to records that decode back to it, and any cut of the
        /// encoding yields a prefix of the list and a torn (or clean) tail, never garbage.
        #[test]
        fn records_decode_back_and_cuts_are_prefixes(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            let mut ends = vec![0];
            for p in &payloads {
                encode(p, &mut buf);
                ends.push(buf.len());
            }
            let mut at = 0;
            let mut decoded = Vec::new();
            while at < buf.len() {
                match decode(&buf[at..]) {
                    Decoded::Record { payload, len } => { decoded.push(payload.to_vec()); at += len; }
                    other => panic!("{other:?} at {at}"),
                }
            }
            prop_assert_eq!(&decoded, &payloads);
            let cut = cut.index(buf.len() + 1);
            let (n, valid, tail) = scan(&buf[..cut]);
            prop_assert_eq!(valid, ends[n as usize]);
            prop_assert!(valid <= cut);
            if valid == cut { prop_assert_eq!(tail, Tail::Clean) } else { prop_assert_eq!(tail, Tail::Torn) }
        }
    }
}
