//! The chunk record codec: what input tasks write into a chunk for an output whose
//! [`Layout`](super::Layout) is not plain lines, and what its writer reads back. One place
//! encodes and decodes both layouts, and a round-trip test holds them together:
//! - templated files ([`super::dynfile`]): `[key: u64 LE][path][line]` per message;
//! - Kafka (`output::kafka`, and its queue records as they are): `[topic][key][payload]`.
//!
//! A field is a `u32` little-endian length and its bytes, written in place by
//! [`begin_field`] and [`end_field`] around a renderer, so no message allocates. Decoders stop
//! at the first record that does not fit in what is left (a chunk only ever holds whole
//! records).

/// Starts a length-prefixed field in `data`; returns where its length goes.
#[inline]
pub(crate) fn begin_field(data: &mut Vec<u8>) -> usize {
    let at = data.len();
    data.extend_from_slice(&[0; 4]);
    at
}

/// Ends the field begun at `at`: writes its length.
#[inline]
pub(crate) fn end_field(data: &mut [u8], at: usize) {
    let n = (data.len() - at - 4) as u32;
    data[at..at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Takes one field from the front of `data`.
fn take_field<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let field = data.get(4..4 + n)?;
    *data = &data[4 + n..];
    Some(field)
}

/// The records of a templated file's chunk: `(key, path, line)`.
pub(crate) fn file_records(mut data: &[u8]) -> impl Iterator<Item = (u64, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        let key = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        let mut rest = &data[8..];
        let path = take_field(&mut rest)?;
        let line = take_field(&mut rest)?;
        data = rest;
        Some((key, path, line))
    })
}

/// The records of a Kafka chunk, each `[topic][key][payload]` as its bytes (one queue record
/// each).
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) fn kafka_records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let start = data;
        let mut rest = data;
        for _ in 0..3 {
            take_field(&mut rest)?;
        }
        let len = start.len() - rest.len();
        data = rest;
        Some(&start[..len])
    })
}

/// Topic, key and payload of a Kafka record.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub fn kafka_fields(rec: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut rest = rec;
    Some((
        take_field(&mut rest)?,
        take_field(&mut rest)?,
        take_field(&mut rest)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(data: &mut Vec<u8>, bytes: &[u8]) {
        let at = begin_field(data);
        data.extend_from_slice(bytes);
        end_field(data, at);
    }

    /// What the pipeline encodes, each decoder reads back, record by record, whatever the
    /// bytes (empty fields, newlines, lengths that look like headers).
    #[test]
    fn every_record_round_trips_through_its_decoder() {
        let cases: Vec<(u64, Vec<u8>, Vec<u8>)> = vec![
            (7, b"/var/log/a.log".to_vec(), b"line one\n".to_vec()),
            (0, Vec::new(), b"no path\n".to_vec()),
            (u64::MAX, b"p".to_vec(), Vec::new()),
            (1, vec![0xff; 300], vec![4, 0, 0, 0, b'x']),
        ];
        let mut data = Vec::new();
        for (key, path, line) in &cases {
            data.extend_from_slice(&key.to_le_bytes());
            field(&mut data, path);
            field(&mut data, line);
        }
        let got: Vec<(u64, Vec<u8>, Vec<u8>)> = file_records(&data)
            .map(|(k, p, l)| (k, p.to_vec(), l.to_vec()))
            .collect();
        assert_eq!(got, cases);

        let mut data = Vec::new();
        let kafka: Vec<[&[u8]; 3]> = vec![
            [b"logs.auth", b"host1", b"payload"],
            [b"", b"", b""],
            [b"t", &[0, 0, 0, 0], b"line\nwith newline"],
        ];
        for rec in &kafka {
            for f in rec {
                field(&mut data, f);
            }
        }
        let records: Vec<&[u8]> = kafka_records(&data).collect();
        assert_eq!(records.len(), kafka.len());
        assert_eq!(
            records.concat(),
            data,
            "records are the chunk's bytes, in order"
        );
        for (rec, want) in records.iter().zip(&kafka) {
            let (t, k, p) = kafka_fields(rec).unwrap();
            assert_eq!([t, k, p], *want);
        }
    }

    /// A cut chunk yields its whole records and stops; nothing is read past the end.
    #[test]
    fn a_truncated_chunk_stops_at_its_last_whole_record() {
        let mut data = Vec::new();
        for n in 0..3u64 {
            data.extend_from_slice(&n.to_le_bytes());
            field(&mut data, b"path");
            field(&mut data, b"line");
        }
        for cut in 0..data.len() {
            let whole = file_records(&data[..cut]).count();
            assert!(whole <= 3);
            assert_eq!(whole, cut / (data.len() / 3), "cut at {cut}");
        }
        assert_eq!(kafka_fields(&[3, 0, 0, 0, b'a']), None);
    }
}
