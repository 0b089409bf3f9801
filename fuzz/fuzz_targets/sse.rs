//! SSE resumption on any bytes: the first part is a `Last-Event-ID` header value (as the
//! HTTP layer hands it over), the rest a stored line. No panic; a header that gives a cursor
//! gives one that prints back the same (when it was canonical) and parses again; and the SSE
//! event written for that cursor and line is `id: CURSOR\ndata: …\n\n` with no CR or LF in
//! the data, and its id reads back (as a browser's next `Last-Event-ID`) to the same cursor.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use logwell::follow::http::last_event_id;
use logwell::follow::subscription::{encode_line, Encoding};
use logwell::store::history::Position;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (header, line) = rest.split_at(split);
    let value = HeaderValue::from_bytes(header).ok();
    let cursor = match last_event_id(value.as_ref()) {
        Ok(Some(p)) => {
            let s = std::str::from_utf8(header).unwrap();
            assert_eq!(s.parse::<Position>().unwrap(), p);
            p
        }
        Ok(None) => Position {
            generation: 0x00c0_ffee_1234_5678,
            offset: 1024,
        },
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut out = Vec::new();
    encode_line(Encoding::Sse, cursor, line, &mut out);
    let text = out
        .strip_suffix(b"\n\n")
        .expect("an event ends with a blank line");
    let (id, data) = text
        .strip_prefix(b"id: ")
        .and_then(|t| {
            let i = t.iter().position(|&b| b == b'\n')?;
            Some((&t[..i], t[i + 1..].strip_prefix(b"data: ")?))
        })
        .expect("id and data fields");
    assert!(
        !data.iter().any(|&b| b == b'\r' || b == b'\n'),
        "CR or LF in the data"
    );
    let echoed = HeaderValue::from_bytes(id).unwrap();
    assert_eq!(last_event_id(Some(&echoed)).unwrap(), Some(cursor));
    let mut lines = Vec::new();
    encode_line(Encoding::Lines, cursor, line, &mut lines);
    assert_eq!(lines.len(), line.len() + 1);
});
