//! The message parser on any bytes, then every line format: no panic, and every line is
//! exactly one line with no control character but its final newline.
#![no_main]

use chrono::{FixedOffset, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use logwell::config::Format;
use logwell::message::{Event, Source};
use logwell::render::format::{format_line, TimeCache};
use logwell::parse::{parse, ParseContext};

fuzz_target!(|data: &[u8]| {
    let recv_time = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 30).unwrap();
    let ctx = ParseContext::new(recv_time, FixedOffset::east_opt(3600).unwrap());
    let msg = parse(data, &ctx);
    let source = Source {
        input: "fuzz".into(),
        peer: None,
        creds: None,
        default_host: "here".into(),
        use_sender_timestamp: true,
        tls_peer: None,
    };
    let ev = Event { msg, recv_time, source: &source, creds: None };
    let mut cache = TimeCache::default();
    for format in [Format::Traditional, Format::Rfc3339, Format::Rfc5424, Format::Json] {
        let mut out = Vec::new();
        format_line(format, &ev, &mut cache, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let body = &out[..out.len() - 1];
        assert!(!body.iter().any(|&b| b < 0x20 || b == 0x7f), "control byte in {format:?}: {body:?}");
        if format == Format::Json {
            assert!(std::str::from_utf8(&out).is_ok(), "json is UTF-8");
        }
    }
});
