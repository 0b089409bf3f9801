//! rsyslog's configuration language on any text (issue 31): the reader and the translation
//! never panic, and what they write is always TOML (a drop-in's translation that is not would
//! be left out at every start), with a report line for each note.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, report) = logwell::config::translate_rsyslog(text);
    if let Err(e) = toml.parse::<toml::Table>() {
        panic!("the translation is not TOML: {e}\n{toml}");
    }
    assert!(report.iter().all(|l| !l.is_empty()));
});
