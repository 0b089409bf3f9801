//! The journal input against a real `systemd-journald`: each test starts its own instance in a
//! namespace of its own (`systemd-journald NAMESPACE`, as root), writes to it with the real
//! `systemd-cat`, util-linux `logger --journald` and journald's native protocol, and reads
//! what logwelld wrote. The
//! namespace's journald is stopped (by its PID) and its files removed at the end.
//!
//! Without root or without `/lib/systemd/systemd-journald`, a test prints
//! `journal test skipped: <why>` and passes.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use testkit::journald::Journald;

use crate::util::{hostname, wait_lines, Daemon};

/// Starts journald, or prints why the test is skipped and returns `None`.
fn journald_or_skip() -> Option<Journald> {
    match Journald::start("logwelltest") {
        Ok(j) => Some(j),
        Err(why) => {
            eprintln!("journal test skipped: {why}");
            None
        }
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn journal_entries_arrive_with_their_fields_and_filters_apply() {
    let Some(j) = journald_or_skip() else { return };
    let scratch = tempfile::tempdir().unwrap();
    if let Err(why) = j.systemd_cat(
        &scratch.path().join("mnt"),
        &["-t", "lw-cat", "-p", "err"],
        "first line\nsecond line\n",
    ) {
        eprintln!("journal test skipped: {why}");
        return;
    }
    let sock = UnixDatagram::unbound().unwrap();
    j.send(
        &sock,
        &[
            ("MESSAGE", b"native entry"),
            ("PRIORITY", b"4"),
            ("SYSLOG_FACILITY", b"10"),
            ("SYSLOG_IDENTIFIER", b"lw-native"),
            ("CODE_FILE", b"src/main.c"),
            ("CODE_LINE", b"42"),
            ("BLOB", b"bin\0ary"),
        ],
    )
    .expect("send to journald");
    // util-linux `logger --journald`: fields read from standard input.
    j.run_with_journal(
        &scratch.path().join("mnt2"),
        "logger",
        &["--journald"],
        "MESSAGE=from logger\nSYSLOG_IDENTIFIER=lw-logger\nPRIORITY=3\n",
    )
    .expect("logger --journald");
    let config = format!(
        r#"

[input.all]
type = "journal"
namespace = "{ns}"
from = "head"
identifiers = ["lw-cat", "lw-native", "lw-logger", "lw-late"]

[input.warn]
type = "journal"
namespace = "{ns}"
identifiers = ["lw-late"]
min_priority = "warning"

[output.all]
type = "file"
path = "{{dir}}/all.json"
format = "json"
flush_interval_ms = 20

[output.warn]
type = "file"
path = "{{dir}}/warn.json"
format = "json"
flush_interval_ms = 20

[output.text]
type = "file"
path = "{{dir}}/all.log"
flush_interval_ms = 20

[[rule]]
input = "all"
output = ["all", "text"]

[[rule]]
input = "warn"
output = "warn"
"#,
        ns = j.ns
    );
    let d = Daemon::start(&config);
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 4));
    assert_eq!(lines.len(), 4, "{lines:?}");
    // journald stores a stream's lines when it reads them, which may be after
    // the native entries sent later: compare each source's entries in order.
    let from = |app: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["appname"] == app).collect()
    };
    let (cat, native, logged) = (from("lw-cat"), from("lw-native"), from("lw-logger"));
    assert_eq!(
        (cat.len(), native.len(), logged.len()),
        (2, 1, 1),
        "{lines:?}"
    );
    assert_eq!(logged[0]["msg"], "from logger", "{}", logged[0]);
    assert_eq!(logged[0]["severity"], "err", "{}", logged[0]);
    for (line, msg) in cat.iter().zip(["first line", "second line"]) {
        assert_eq!(line["msg"], msg, "{line}");
        assert_eq!(line["facility"], "user", "{line}");
        assert_eq!(line["severity"], "err", "{line}");
        assert_eq!(line["appname"], "lw-cat", "{line}");
        assert_eq!(line["input"], "all", "{line}");
        assert!(line["procid"].as_str().is_some(), "{line}");
        assert!(
            line["host"].as_str().unwrap().starts_with(&hostname()),
            "{line}"
        );
        let f = &line["fields"];
        assert_eq!(f["_TRANSPORT"], "stdout", "{line}");
        assert_eq!(f["SYSLOG_IDENTIFIER"], "lw-cat", "{line}");
        assert_eq!(f["_NAMESPACE"], j.ns.as_str(), "{line}");
        assert_eq!(f["_UID"], "0", "{line}");
        assert!(
            f["_BOOT_ID"].as_str().is_some_and(|b| b.len() == 32),
            "{line}"
        );
        assert!(
            f.get("MESSAGE").is_none() && f.get("PRIORITY").is_none(),
            "{line}"
        );
        // The entry's own time, with microseconds and an offset.
        crate::util::assert_line(line["time"].as_str().unwrap(), crate::util::RFC3339_MICROS);
    }
    let native = native[0];
    assert_eq!(native["msg"], "native entry", "{native}");
    assert_eq!(native["facility"], "authpriv", "{native}");
    assert_eq!(native["severity"], "warning", "{native}");
    assert_eq!(native["appname"], "lw-native", "{native}");
    let f = &native["fields"];
    assert_eq!(f["_TRANSPORT"], "journal", "{native}");
    assert_eq!(f["CODE_FILE"], "src/main.c", "{native}");
    assert_eq!(f["CODE_LINE"], "42", "{native}");
    assert!(
        f["_COMM"].as_str().is_some() && f["_EXE"].as_str().is_some(),
        "{native}"
    );
    assert!(
        f.get("BLOB").is_none(),
        "binary fields are left out: {native}"
    );
    let text = std::fs::read_to_string(d.path("all.log")).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains(" lw-cat[")).count(),
        2,
        "{text}"
    );

    // `warn` started at the tail and passes only warning and more severe entries.
    for (msg, prio) in [
        ("late info", "6"),
        ("late err", "3"),
        ("late notice", "5"),
        ("late crit", "2"),
    ] {
        j.send(
            &sock,
            &[
                ("MESSAGE", msg.as_bytes()),
                ("PRIORITY", prio.as_bytes()),
                ("SYSLOG_IDENTIFIER", b"lw-late"),
            ],
        )
        .expect("send to journald");
    }
    let warn = json_lines(&d.wait_lines(&d.path("warn.json"), 2));
    let msgs: Vec<_> = warn.iter().map(|l| l["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["late err", "late crit"]);
    let all = json_lines(&d.wait_lines(&d.path("all.json"), 8));
    assert_eq!(all.len(), 8);
    assert!(d.path("state/journal-all.cursor").exists());
    assert!(d.path("state/journal-warn.cursor").exists());
}

#[test]
fn journal_restart_and_rotation_mid_stream_write_every_entry_exactly_once() {
    const N: usize = 10_000;
    let Some(j) = journald_or_skip() else { return };
    let config = format!(
        r#"

[input.j]
type = "journal"
namespace = "{ns}"
from = "head"
identifiers = ["lw-seq"]

[output.out]
type = "file"
path = "{{dir}}/out.log"
format = "json"
flush_interval_ms = 20

[[rule]]
output = "out"
"#,
        ns = j.ns
    );
    let mut d = Daemon::start(&config);
    let out = d.path("out.log");
    let written = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let sock = UnixDatagram::unbound().unwrap();
            for i in 0..N {
                j.send(
                    &sock,
                    &[
                        ("MESSAGE", format!("seq {i}").as_bytes()),
                        ("SYSLOG_IDENTIFIER", b"lw-seq"),
                    ],
                )
                .expect("send to journald");
                // About 3 s in all, so that the stop lands in the middle.
                if i % 30 == 29 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        d.wait_lines(&out, 1000);
        assert!(d.stop().success(), "{}", d.log());
        let at_stop = std::fs::read_to_string(&out).unwrap().lines().count();
        std::thread::sleep(Duration::from_millis(300));
        d.restart();
        // Rotate the journal files under the reader while the stream goes on: its `wait`
        // says Invalidate, and it reopens and seeks back to its last entry.
        d.wait_lines(&out, at_stop + 500);
        let rotated = Command::new("journalctl")
            .args(["--namespace", &j.ns, "--rotate"])
            .output()
            .expect("journalctl");
        assert!(
            rotated.status.success(),
            "{}",
            String::from_utf8_lossy(&rotated.stderr)
        );
        writer.join().unwrap();
        at_stop
    });
    assert!(
        written < N,
        "the stop came after the stream ended ({written} lines)"
    );
    let sock = UnixDatagram::unbound().unwrap();
    j.send(
        &sock,
        &[("MESSAGE", b"the end"), ("SYSLOG_IDENTIFIER", b"lw-seq")],
    )
    .expect("send to journald");
    let text = d.wait_for("the end", || {
        let text = wait_lines(&out, N + 1, || d.log());
        text.contains("\"msg\":\"the end\"").then_some(text)
    });
    let mut seen = vec![0u32; N];
    for l in json_lines(&text) {
        let msg = l["msg"].as_str().unwrap();
        if let Some(i) = msg.strip_prefix("seq ") {
            seen[i.parse::<usize>().unwrap()] += 1;
        }
    }
    let missing: Vec<_> = (0..N).filter(|&i| seen[i] == 0).collect();
    let repeated: Vec<_> = (0..N).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty() && repeated.is_empty(),
        "stopped at {written} lines; missing {} (first {:?}), repeated {} (first {:?})",
        missing.len(),
        missing.first(),
        repeated.len(),
        repeated.first()
    );
    assert_eq!(text.lines().count(), N + 1);
    assert!(d.log().contains("resumed=true"), "{}", d.log());
    assert!(
        d.log().contains("reopened at the last entry read"),
        "{}",
        d.log()
    );
}

/// Under privilege separation the worker opens the journal itself (an `sd_journal` cannot
/// be used in a process other than the one that opened it, so it cannot be opened before
/// the fork); group `systemd-journal` is what lets it read the files.
#[test]
fn journal_is_read_by_the_privsep_worker_through_group_systemd_journal() {
    if nix::unistd::User::from_name("_logwell")
        .ok()
        .flatten()
        .is_none()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs the _logwell user (scripts/deps.sh test), and CI=true"
        );
        eprintln!("journal test skipped: no _logwell user");
        return;
    }
    let Some(j) = journald_or_skip() else { return };
    let config = format!(
        r#"
[input.j]
type = "journal"
namespace = "{ns}"
from = "head"
identifiers = ["lw-privsep"]

[output.out]
type = "file"
path = "{{dir}}/log/out.log"
flush_interval_ms = 20

[[rule]]
output = "out"
"#,
        ns = j.ns
    );
    let sock = UnixDatagram::unbound().unwrap();
    j.send(
        &sock,
        &[
            ("MESSAGE", b"read without root"),
            ("SYSLOG_IDENTIFIER", b"lw-privsep"),
        ],
    )
    .expect("send to journald");
    let mut d = Daemon::start_privsep(&config, |dir| std::fs::create_dir(dir.join("log")).unwrap());
    let text = d.wait_lines(&d.path("log/out.log"), 1);
    assert!(text.contains("]: read without root"), "{text}");
    let journal_gid = nix::unistd::Group::from_name("systemd-journal")
        .unwrap()
        .expect("group systemd-journal")
        .gid;
    let log = d.log();
    let dropped = log
        .lines()
        .find(|l| l.contains("privileges dropped"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        dropped.contains(&format!(" {journal_gid}]"))
            || dropped.contains(&format!("{journal_gid},")),
        "{dropped}"
    );
    assert!(d.stop().success(), "{}", d.log());
}

/// Issue 27: a program that logs JSON to the journal (here util-linux `logger --journald`):
/// the journal input's `parse = ["json"]` reads the body into fields, `severity_from` takes
/// the level from them, and rules route on a field.
#[test]
fn journal_json_bodies_are_parsed_into_fields() {
    let Some(j) = journald_or_skip() else { return };
    let scratch = tempfile::tempdir().unwrap();
    j.run_with_journal(
        &scratch.path().join("mnt"),
        "logger",
        &["--journald"],
        "MESSAGE={\"level\":\"warning\",\"order\":42,\"user\":{\"id\":\"ann\"}}\nSYSLOG_IDENTIFIER=lw-json\nPRIORITY=6\n",
    )
    .expect("logger --journald");
    j.run_with_journal(
        &scratch.path().join("mnt2"),
        "logger",
        &["--journald"],
        "MESSAGE=plain text, no JSON\nSYSLOG_IDENTIFIER=lw-json\nPRIORITY=6\n",
    )
    .expect("logger --journald");
    let d = Daemon::start(&format!(
        r#"
[input.j]
type = "journal"
namespace = "{ns}"
from = "head"
identifiers = ["lw-json"]
parse = ["json"]
severity_from = "fields.level"

[output.all]
type = "file"
path = "{{dir}}/all.json"
format = "json"

[output.orders]
type = "file"
path = "{{dir}}/orders.log"

[[rule]]
output = "all"

[[rule]]
exists = "fields.order"
output = "orders"
"#,
        ns = j.ns
    ));
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 2));
    let json = lines.iter().find(|l| l["fields"]["order"] == 42).unwrap();
    assert_eq!(json["severity"], "warning", "from the body's level: {json}");
    assert_eq!(json["fields"]["user"]["id"], "ann", "{json}");
    assert_eq!(
        json["fields"]["SYSLOG_IDENTIFIER"], "lw-json",
        "the journal's own fields stay: {json}"
    );
    let plain = lines
        .iter()
        .find(|l| l["msg"] == "plain text, no JSON")
        .unwrap();
    assert_eq!(plain["severity"], "info", "{plain}");
    let orders = d.wait_lines(&d.path("orders.log"), 1);
    assert_eq!(orders.lines().count(), 1, "{orders}");
    d.wait_stat("inputs", "j", "parse_failed", 1);
}
