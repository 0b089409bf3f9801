//! The history position codec (`HEX:OFFSET`, the follow service's cursors and event ids) on
//! any text: no panic; a text that parses prints back in its canonical form (16 lower-case
//! hex digits, the offset without leading zeros), which parses to the same position, through
//! `Display`, `push_to` and serde alike; a text that does not parse is refused by serde too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwell::store::history::Position;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let json = serde_json::to_string(s).unwrap();
    match s.parse::<Position>() {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(serde_json::from_str::<Position>(&json).is_err());
        }
        Ok(p) => {
            let printed = p.to_string();
            let (hex, offset) = s.split_once(':').unwrap();
            let offset = offset.trim_start_matches('0');
            let canonical = format!(
                "{:0>16}:{}",
                hex.to_ascii_lowercase().trim_start_matches('0'),
                if offset.is_empty() { "0" } else { offset }
            );
            // A hex part of 16 zeros trims to nothing, padded back to 16 zeros.
            assert_eq!(printed, canonical);
            let mut pushed = Vec::new();
            p.push_to(&mut pushed);
            assert_eq!(pushed, printed.as_bytes());
            assert_eq!(printed.parse::<Position>().unwrap(), p);
            assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), p);
            let out = serde_json::to_string(&p).unwrap();
            assert_eq!(out, format!("\"{printed}\""));
            assert_eq!(serde_json::from_str::<Position>(&out).unwrap(), p);
        }
    }
});
