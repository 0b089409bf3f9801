//! The kernel log input on the real `/dev/kmsg`: a record written there reaches the file
//! with its facility, severity, tag and a kernel timestamp, and a restart neither repeats
//! nor loses a record (the sequence number is kept in `state_dir`). Needs root (to write to
//! `/dev/kmsg`); elsewhere the test says it is skipped.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::util::Daemon;

const CONFIG: &str = r#"
[input.kern]
type = "kmsg"
even_with_journald = true

[output.json]
type = "file"
path = "{dir}/kern.json"
format = "json"
flush_interval_ms = 20

[[rule]]
output = ["json"]
"#;

/// Writes one record to `/dev/kmsg`, as `echo '<5>tag: text' > /dev/kmsg` does.
fn kmsg_write(line: &str) {
    let mut f = OpenOptions::new().write(true).open("/dev/kmsg").unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

/// Why this host cannot run the test, if it cannot.
fn unusable() -> Option<String> {
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kmsg")
        .err()?;
    Some(format!(
        "/dev/kmsg is not readable and writable here ({rw})"
    ))
}

/// The JSON lines of `path` whose `msg` is `needle`, once there is at least one.
fn wait_for(d: &Daemon, path: &Path, needle: &str) -> Vec<serde_json::Value> {
    crate::util::wait_for(
        &format!("`{needle}` in {}", path.display()),
        || Some(matching(path, needle)).filter(|found| !found.is_empty()),
        || {
            format!(
                "{}\n--- daemon:\n{}",
                std::fs::read_to_string(path).unwrap_or_default(),
                d.log()
            )
        },
    )
}

fn matching(path: &Path, needle: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["msg"] == needle)
        .collect()
}

#[test]
fn kmsg_records_arrive_once_across_a_restart() {
    if let Some(why) = unusable() {
        println!("kmsg test skipped: {why}");
        return;
    }
    let tag = format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let first = format!("first marker {tag}");
    let second = format!("second marker {tag}");
    let mut d = Daemon::start(CONFIG);
    let out = d.path("kern.json");

    // A facility-less write is stored by the kernel as user (pri 13).
    kmsg_write(&format!("<5>logwell-test: {first}\n"));
    let lines = wait_for(&d, &out, &first);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["facility"], "user", "{l}");
    assert_eq!(l["severity"], "notice", "{l}");
    assert_eq!(l["appname"], "logwell-test", "{l}");
    assert_eq!(l["input"], "kern", "{l}");
    // The kernel's time of the record, in UTC with microseconds, close to the reception.
    let time = l["time"].as_str().unwrap();
    let shown = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    let received = chrono::DateTime::parse_from_rfc3339(l["received"].as_str().unwrap()).unwrap();
    assert_eq!(shown.offset().local_minus_utc(), 0, "{time}");
    assert_eq!(
        time.split(['.', 'Z', '+']).nth(1).map(str::len),
        Some(6),
        "{time}"
    );
    assert!(
        (received - shown).num_seconds().abs() < 5,
        "{time} vs {received}"
    );
    assert!(d.stat("inputs", "kern", "received") >= 1);

    // Stopped: the position is saved; a record written meanwhile comes at the next start,
    // and the first one does not come again.
    assert!(d.stop().success(), "{}", d.log());
    let state = std::fs::read_to_string(d.path("state/kmsg-kern.seq")).unwrap();
    assert_eq!(state.split_whitespace().count(), 2, "{state:?}");
    kmsg_write(&format!("<5>logwell-test: {second}\n"));
    d.restart();
    assert_eq!(wait_for(&d, &out, &second).len(), 1);
    // Records come in order: had the first been repeated, it would be there by now.
    assert_eq!(matching(&out, &first).len(), 1, "first marker repeated");
    assert!(d.stop().success(), "{}", d.log());
    assert_eq!(matching(&out, &second).len(), 1, "second marker repeated");
}
