//! The configuration loader on any text: no panic, and every error has a place and a hint.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = logwell::config::load_texts(vec![("fuzz.toml".into(), text.to_string())]) {
        for e in errors.0 {
            assert!(!e.message.is_empty());
        }
    }
});
