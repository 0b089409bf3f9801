//! The follow request parser on any text, as an HTTP query string or as the raw TCP request
//! line (read as the TCP service reads it: at most `MAX_REQUEST` bytes, up to the first
//! newline, nothing when not UTF-8). No panic, errors say something, and a request that
//! parses keeps its limits: a priority range within 0..=7 and in order, no empty file name,
//! cursors that print back to a string which parses to the same position, and the same
//! answer for the same text.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use logwell::follow::request::{Request, StartAt};
use logwell::follow::tcp::MAX_REQUEST;
use logwell::store::history::Position;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
    let text = if mode & 1 == 0 {
        // A query string: the URI's query is text.
        let Ok(q) = std::str::from_utf8(rest) else {
            return;
        };
        q.to_string()
    } else {
        // The TCP line, as `BufReader::take(MAX_REQUEST).read_line` leaves it.
        let rest = &rest[..rest.len().min(MAX_REQUEST as usize)];
        let line = match memchr_nl(rest) {
            Some(i) => &rest[..=i],
            None => rest,
        };
        std::str::from_utf8(line)
            .map(str::to_string)
            .unwrap_or_default()
    };
    match Request::parse(&text, now) {
        Err(e) => assert!(!e.0.is_empty()),
        Ok(r) => {
            if let Some((a, b)) = r.filter.priority {
                assert!(a <= b && b <= 7, "priority {a}..{b}");
            }
            assert!(r.file.as_deref() != Some(""));
            match r.start {
                StartAt::After(p) | StartAt::At(p) => {
                    assert_eq!(p.to_string().parse::<Position>().unwrap(), p)
                }
                StartAt::Since(t) => assert!(t.timestamp() != i64::MIN),
                StartAt::Last(_) | StartAt::Beginning => {}
            }
            let again = Request::parse(&text, now).expect("same text, same answer");
            assert_eq!(again.start, r.start);
            assert_eq!(again.format, r.format);
            assert_eq!(again.filter.priority, r.filter.priority);
            assert_eq!(again.filter.until, r.filter.until);
        }
    }
});

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
