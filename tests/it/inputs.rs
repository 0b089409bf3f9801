//! Bad input gets a clear outcome: malformed messages are stored raw and counted, oversized
//! ones are truncated, marked and counted without leaking into the next frame, control
//! characters are escaped, UDP loss is counted, and an unwritable file is retried while the
//! other files keep working.

use std::io::Write;

use crate::util::{tcp_send, udp_send, Daemon};

const CONFIG: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
max_message_size_bytes = 100

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
max_message_size_bytes = 100

[output.all]
type = "file"
path = "{dir}/all.log"
format = "traditional"
flush_interval_ms = 20

[output.json]
type = "file"
path = "{dir}/all.json"
format = "json"
flush_interval_ms = 20

[[rule]]
output = ["all", "json"]
"#;

fn json_lines(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    d.wait_lines(&d.path("all.json"), n)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn malformed_messages_are_stored_raw_and_counted() {
    let d = Daemon::start(CONFIG);
    udp_send(d.port, b"no header at all");
    udp_send(d.port, b"<999>bad pri");
    udp_send(d.port, b"<34>1 not-a-timestamp host app - - - text");
    let lines = json_lines(&d, 3);
    assert_eq!(lines[0]["msg"], "no header at all");
    assert_eq!(lines[0]["facility"], "user");
    assert_eq!(lines[0]["severity"], "notice");
    assert_eq!(lines[0]["malformed"], true);
    assert!(
        lines[1]["msg"].as_str().unwrap().contains("<999>bad pri"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[1]["bad_pri"], true);
    assert!(
        lines[2]["msg"]
            .as_str()
            .unwrap()
            .contains("not-a-timestamp host app"),
        "{}",
        lines[2]
    );
    assert_eq!(d.stat("inputs", "udp", "malformed"), 3);
    assert_eq!(d.stat("inputs", "udp", "received"), 3);
}

#[test]
fn oversized_messages_are_truncated_marked_and_never_leak_into_the_next() {
    let d = Daemon::start(CONFIG);
    let long = format!("<13>Nov 21 09:41:03 host tag: {}", "x".repeat(300));
    // TCP, newline framing: the rest of the long line must not become a message.
    tcp_send(
        d.port,
        format!("{long}\n<13>Nov 21 09:41:03 host tag: after-lf\n").as_bytes(),
    );
    // TCP, octet counting: the counted rest is skipped exactly.
    let next = "<13>Nov 21 09:41:03 host tag: after-octet-counted-frame";
    tcp_send(
        d.port,
        format!("{} {long}{} {next}", long.len(), next.len()).as_bytes(),
    );
    // UDP.
    udp_send(d.port, long.as_bytes());
    let text = d.wait_lines(&d.path("all.log"), 5);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let truncated: Vec<&&str> = lines
        .iter()
        .filter(|l| l.ends_with(" [truncated]"))
        .collect();
    assert_eq!(truncated.len(), 3, "{text}");
    for l in &truncated {
        let msg = l.split_once("tag: ").unwrap().1;
        assert!(msg.starts_with("xxxx") && msg.len() < 100, "{l}");
    }
    assert!(text.contains("host tag: after-lf\n"), "{text}");
    assert!(
        text.contains("host tag: after-octet-counted-frame\n"),
        "{text}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(": xxx") && !l.ends_with("[truncated]")),
        "{text}"
    );
    assert_eq!(d.stat("inputs", "tcp", "truncated"), 2);
    assert_eq!(d.stat("inputs", "udp", "truncated"), 1);
    let json = json_lines(&d, 5);
    assert_eq!(json.iter().filter(|j| j["truncated"] == true).count(), 3);
}

#[test]
fn control_characters_never_reach_the_file_unescaped() {
    let d = Daemon::start(CONFIG);
    udp_send(
        d.port,
        b"<13>Nov 21 09:41:03 host tag: bell\x07 esc\x1b[31mred tab\there nl\nthere del\x7f",
    );
    let text = d.wait_lines(&d.path("all.log"), 1);
    assert_eq!(
        text,
        "Nov 21 09:41:03 host tag: bell#007 esc#033[31mred tab#011here nl#012there del#177\n"
    );
    let json = json_lines(&d, 1);
    assert_eq!(
        json[0]["msg"],
        "bell\u{7} esc\u{1b}[31mred tab\there nl\nthere del\u{7f}"
    );
    let raw = std::fs::read(d.path("all.json")).unwrap();
    assert!(
        !raw.iter().any(|&b| b < 0x20 && b != b'\n'),
        "raw control bytes in the JSON file"
    );
}

#[test]
fn udp_loss_is_counted_not_silent() {
    let d = Daemon::start(&CONFIG.replace(
        "max_message_size_bytes = 100\n\n[input.tcp]",
        "max_message_size_bytes = 100\nreceive_buffer_bytes = 4096\n\n[input.tcp]",
    ));
    // Freeze the daemon (our own child), overflow its small receive buffer, thaw it.
    d.signal(libc::SIGSTOP);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 2_000u64;
    for n in 0..sent {
        sock.send_to(
            format!("<13>Nov 21 09:41:03 host tag: n={n}").as_bytes(),
            ("127.0.0.1", d.port),
        )
        .unwrap();
    }
    d.signal(libc::SIGCONT);
    // A datagram sent after the thaw carries the kernel's final drop count (SO_RXQ_OVFL).
    sock.send_to(
        b"<13>Nov 21 09:41:03 host tag: marker",
        ("127.0.0.1", d.port),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + crate::util::DEADLINE;
    let text = loop {
        let text = std::fs::read_to_string(d.path("all.log")).unwrap_or_default();
        if text.contains("marker") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let written = text.lines().count() as u64 - 1;
    let dropped = d.stat("inputs", "udp", "dropped");
    assert!(written < sent, "the buffer was meant to overflow");
    assert_eq!(
        written + dropped,
        sent,
        "written {written} + dropped {dropped} must be all {sent} sent"
    );
    assert_eq!(d.stat("inputs", "udp", "received"), written + 1);
}

#[test]
fn an_unwritable_file_is_retried_and_the_others_keep_working() {
    // A regular file where the directory should be: the broken output cannot open its file.
    let setup = |dir: &std::path::Path| {
        std::fs::File::create(dir.join("blocker"))
            .unwrap()
            .write_all(b"in the way")
            .unwrap();
    };
    let d = Daemon::start_with(
        r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[output.broken]
type = "file"
path = "{dir}/blocker/broken.log"
flush_interval_ms = 20

[output.fine]
type = "file"
path = "{dir}/fine.log"
flush_interval_ms = 20

[[rule]]
output = ["broken", "fine"]
"#,
        setup,
    );
    udp_send(d.port, b"<13>Nov 21 09:41:03 host tag: one");
    d.wait_lines(&d.path("fine.log"), 1);
    d.wait_stat("outputs", "broken", "errors", 1);
    udp_send(d.port, b"<13>Nov 21 09:41:03 host tag: two");
    d.wait_lines(&d.path("fine.log"), 2);
    // Fixed: the retry writes both messages, in order.
    std::fs::remove_file(d.path("blocker")).unwrap();
    let text = d.wait_lines(&d.path("blocker/broken.log"), 2);
    assert!(
        text.contains("tag: one\n") && text.find("tag: one") < text.find("tag: two"),
        "{text}"
    );
    assert_eq!(d.stat("outputs", "broken", "written"), 2);
    assert_eq!(d.stat("outputs", "broken", "dropped"), 0);
}

#[test]
fn stats_are_shown_as_a_table_too() {
    let d = Daemon::start(CONFIG);
    udp_send(d.port, b"<13>Nov 21 09:41:03 host tag: counted");
    d.wait_lines(&d.path("all.log"), 1);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["stats", "--socket"])
        .arg(d.path("control.sock"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let udp = text
        .lines()
        .find(|l| l.starts_with("input") && l.contains(" udp "))
        .unwrap_or_else(|| panic!("{text}"));
    let fields: Vec<&str> = udp.split_whitespace().collect();
    assert_eq!(fields[2], "1", "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("output") && l.contains(" all ")),
        "{text}"
    );
}
