//! The structured-body parsers on any bytes (issue 27): no panic; an outcome is parsed,
//! partial or failed as its fields and error say; no key or string value is over the limits;
//! and the fields, written as JSON, read back as the same fields. The first byte picks the kv
//! separators, so odd ones (`;`, `:`, `,`) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwell::parse::body::{json, kv, logfmt, Kind, KvOptions, Limits, Outcome};

fn check(out: &Outcome, limits: &Limits) {
    match out.kind() {
        Kind::Parsed => assert!(out.error.is_none()),
        Kind::Partial => assert!(out.error.is_some() && !out.fields.is_empty()),
        Kind::Failed => assert!(out.error.is_some() && out.fields.is_empty()),
    }
    assert!(out.fields.len() <= limits.max_fields);
    for v in out.fields.values() {
        if let serde_json::Value::String(s) = v {
            assert!(s.len() <= limits.max_value_bytes);
        }
    }
    let text = serde_json::to_string(&out.fields).unwrap();
    let back: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(back.len(), out.fields.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_fields: 16,
        max_value_bytes: 64,
    };
    check(&json(body, &limits), &limits);
    check(&logfmt(body, &limits), &limits);
    let seps = [" ", ";", ",", ":", "=", "=>"];
    let options = KvOptions {
        pair_sep: seps[usize::from(pick) % 3].into(),
        kv_sep: seps[3 + usize::from(pick >> 2) % 3].into(),
        quotes: if pick & 0x80 != 0 { "\"'" } else { "\"" }.into(),
    };
    check(&kv(body, &options, &limits), &limits);
});
