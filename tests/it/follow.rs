//! Live follow, tried as users try it: the real `logwelld` with a `[follow]` section, lines
//! sent with the real `logger`, received with real `curl -N`, real `nc` (netcat-openbsd) and
//! the real `logwell follow`/`logwell show`. Resumption by `Last-Event-ID` across a forced
//! rotation, exact filter results, the gap event, other programs' files, stalled
//! subscribers, and the token rule.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    free_port, logger, logger_tcp, wait_child, wait_until, Daemon, Streamed, DEADLINE,
};

const CONFIG: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.syslog]
type = "file"
path = "{dir}/log/syslog"

[output.all]
type = "file"
path = "{dir}/log/all.json"
format = "json"

[[rule]]
selector = "*.*"
output = ["syslog", "all"]
"#;

/// A daemon with the follow service on two free ports: HTTP and raw TCP.
struct Follow {
    d: Daemon,
    http: u16,
    tcp: u16,
}

impl Follow {
    fn start(extra: &str) -> Follow {
        Follow::start_with(CONFIG, extra, |_| {})
    }

    fn start_with(base: &str, extra: &str, setup: impl FnOnce(&std::path::Path)) -> Follow {
        let (http, tcp) = (free_port(), free_port());
        // Loopback listeners need a token, or to be opened to every local user explicitly.
        let auth = if extra.contains("token") {
            ""
        } else {
            "allow_unauthenticated = true\n"
        };
        let text = format!(
            "{base}\n[follow]\nlisten = \"127.0.0.1:{http}\"\ntcp_listen = \"127.0.0.1:{tcp}\"\ndefault_file = \"syslog\"\n{auth}{extra}"
        );
        let d = Daemon::start_with(&text, setup);
        Follow { d, http, tcp }
    }

    fn url(&self, query: &str) -> String {
        format!("http://127.0.0.1:{}/v1/follow?{query}", self.http)
    }

    /// `logger --tcp` to the daemon, with a tag; returns once the line is in the file.
    /// Each logger run is a connection of its own, so waiting keeps the lines in order.
    fn log(&self, tag: &str, priority: &str, text: &str) {
        let port = self.d.port.to_string();
        let out = logger(&[
            "--tcp",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-t",
            tag,
            "-p",
            priority,
            text,
        ]);
        assert!(out.status.success(), "logger failed: {out:?}");
        let file = self.d.path("log/all.json");
        let needle = format!("\"msg\":\"{text}\"");
        wait_until(
            &format!("`{text}` to be written"),
            || {
                std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .contains(&needle)
            },
            || self.d.log(),
        );
    }

    /// `logwell rotate OUTPUT` through the daemon's control socket.
    fn rotate(&self, output: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
            .args(["rotate", output, "--socket"])
            .arg(self.d.path("control.sock"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// Waits until the syslog file holds `n` lines.
    fn wait_written(&self, n: usize) {
        self.d.wait_lines(&self.d.path("log/syslog"), n);
        self.d.wait_lines(&self.d.path("log/all.json"), n);
    }

    /// `curl -sN URL` with its output collected.
    fn curl(&self, query: &str, headers: &[&str]) -> Streamed {
        let mut c = Command::new("curl");
        c.args(["-sN", "--no-buffer"]);
        for h in headers {
            c.args(["-H", h]);
        }
        c.arg(self.url(query));
        Streamed::spawn(c)
    }

    /// A whole (non-following) answer from `curl -s`.
    fn fetch(&self, query: &str, headers: &[&str]) -> String {
        let mut c = Command::new("curl");
        c.args(["-s", "--max-time", "30"]);
        for h in headers {
            c.args(["-H", h]);
        }
        let out = c.arg(self.url(query)).output().expect("run curl");
        String::from_utf8(out.stdout).unwrap()
    }

    fn logwell(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_logwell"))
            .args(args)
            .args(["--url", &format!("http://127.0.0.1:{}", self.http)])
            .output()
            .expect("run logwell")
    }
}

/// The `data:` lines of an SSE answer.
fn data(sse: &[String]) -> Vec<String> {
    sse.iter()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// `(id, data)` of each line event of an SSE answer.
fn events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|e| {
            let id = e.lines().find_map(|l| l.strip_prefix("id: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id.to_string(), data.to_string()))
        })
        .collect()
}

#[test]
fn curl_receives_history_then_lines_live() {
    let f = Follow::start("");
    f.log("app", "user.info", "before one");
    f.log("app", "user.info", "before two");
    f.wait_written(2);
    let curl = f.curl("n=1", &[]);
    // History first: the last line only.
    let got = curl.wait_for("before two");
    assert!(!got.iter().any(|l| l.contains("before one")), "{got:?}");
    f.log("app", "user.info", "live three");
    let got = curl.wait_for("live three");
    let lines = data(&got);
    assert_eq!(lines.len(), 2, "{got:?}");
    assert!(lines[1].ends_with(" app: live three"), "{lines:?}");
    // Every line event carries a cursor id.
    assert_eq!(got.iter().filter(|l| l.starts_with("id: ")).count(), 2);
}

#[test]
fn nc_receives_lines_live_with_and_without_a_request() {
    let f = Follow::start("");
    f.log("app", "user.info", "history line");
    f.wait_written(1);
    let port = f.tcp.to_string();
    // No request: the default file, last lines, then live (short format).
    let mut plain = Command::new("nc");
    plain.args(["127.0.0.1", &port]);
    let plain = Streamed::spawn(plain);
    plain.wait_for("history line");
    // A request line: the JSON file, JSON output, only new lines.
    let mut asked = Command::new("nc");
    asked.args(["127.0.0.1", &port]);
    let mut asked = Streamed::spawn(asked);
    asked.send(b"file=all n=1 o=cat\n");
    asked.wait_for("history line");
    f.log("app", "user.info", "live over nc");
    let got = plain.wait_for("live over nc");
    assert!(
        got.last().unwrap().ends_with("app: live over nc"),
        "{got:?}"
    );
    let got = asked.wait_for("live over nc");
    assert_eq!(got, ["history line", "live over nc"]);
}

#[test]
fn last_event_id_resumes_exactly_across_a_forced_rotation() {
    let f = Follow::start("");
    for i in 1..=5 {
        f.log("app", "user.info", &format!("line {i}"));
    }
    f.wait_written(5);
    let first = events(&f.fetch("n=all&follow=false&o=cat", &[]));
    assert_eq!(first.len(), 5, "{first:?}");
    let (after_three, text) = &first[2];
    assert_eq!(text, "line 3");
    for i in 6..=8 {
        f.log("app", "user.info", &format!("line {i}"));
    }
    f.wait_written(8);
    let rotated = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["rotate", "--socket"])
        .arg(f.d.path("control.sock"))
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    assert!(f.d.path("log/syslog.1").exists());
    for i in 9..=10 {
        f.log("app", "user.info", &format!("line {i}"));
    }
    f.d.wait_lines(&f.d.path("log/syslog"), 2);
    // What a reconnecting EventSource sends.
    let header = format!("Last-Event-ID: {after_three}");
    let resumed = events(&f.fetch("follow=false&o=cat", &[&header]));
    let texts: Vec<&str> = resumed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10"]
    );
    // The same through the client's cursor file: a second run prints only what is new.
    let cursor = f.d.path("cursor");
    let cursor_arg = cursor.to_str().unwrap();
    let out = f.logwell(&["show", "-o", "cat", "--cursor-file", cursor_arg]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
    f.log("app", "user.info", "line 11");
    f.d.wait_lines(&f.d.path("log/syslog"), 3);
    let out = f.logwell(&["show", "-o", "cat", "--cursor-file", cursor_arg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 11\n");
}

#[test]
fn filters_select_exactly_the_right_lines() {
    let f = Follow::start("");
    // Crafted RFC 5424 messages: facility, severity, host and tag vary.
    let messages = [
        (
            "<11>1 2026-11-21T09:00:01Z web1 sshd 1 - - Failed password for root",
            "a",
        ),
        (
            "<14>1 2026-11-21T09:00:02Z web1 cron 2 - - session opened",
            "b",
        ),
        (
            "<36>1 2026-11-21T09:00:03Z db1 sshd 3 - - Accepted publickey",
            "c",
        ),
        (
            "<35>1 2026-11-21T09:00:04Z db1 sshd 4 - - Failed password for admin",
            "d",
        ),
        (
            "<164>1 2026-11-21T09:00:05Z web2 nginx 5 - - upstream timed out",
            "e",
        ),
        ("<15>1 2026-11-21T09:00:06Z web2 app 6 - - debug noise", "f"),
    ];
    let mut payload = Vec::new();
    for (m, _) in &messages {
        payload.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    crate::util::tcp_send(f.d.port, &payload);
    f.wait_written(messages.len());
    let which = |query: &str| -> String {
        let got = events(&f.fetch(&format!("file=all&n=all&follow=false&o=cat&{query}"), &[]));
        got.iter()
            .map(|(_, text)| {
                messages
                    .iter()
                    .find(|(m, _)| m.ends_with(text.as_str()))
                    .unwrap_or_else(|| panic!("unknown line {text}"))
                    .1
            })
            .collect()
    };
    assert_eq!(which(""), "abcdef");
    assert_eq!(which("p=err"), "ad");
    assert_eq!(which("p=warning..emerg"), "acde");
    assert_eq!(which("p=debug"), "abcdef");
    assert_eq!(which("p=debug..debug"), "f");
    assert_eq!(which("facility=auth"), "cd");
    assert_eq!(which("facility=auth,local4"), "cde");
    assert_eq!(which("t=sshd"), "acd");
    assert_eq!(which("t=sshd&t=nginx"), "acde");
    assert_eq!(which("host=web1"), "ab");
    assert_eq!(which("g=Failed%20password"), "ad");
    assert_eq!(which("g=%5E(session|debug)"), "bf");
    assert_eq!(which("t=sshd&p=err&host=db1"), "d");
    assert_eq!(which("since=2026-11-21T09:00:03Z"), "cdef");
    assert_eq!(which("until=2026-11-21T09:00:03Z"), "ab");
    // The same through the client.
    // (`--no-pager`, a journalctl habit, is accepted and changes nothing.)
    let out = f.logwell(&[
        "show",
        "all",
        "-p",
        "err",
        "-t",
        "sshd",
        "-o",
        "cat",
        "--no-pager",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Failed password for root\nFailed password for admin\n"
    );
    // Every filter flag of the client, in history mode: exact lines.
    let client = |args: &[&str]| -> String {
        let out = f.logwell(&[&["show", "all", "-o", "cat"], args].concat());
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        client(&["-S", "2026-11-21T09:00:04Z"]),
        "Failed password for admin\nupstream timed out\ndebug noise\n"
    );
    assert_eq!(
        client(&["--until", "2026-11-21T09:00:02Z"]),
        "Failed password for root\n"
    );
    assert_eq!(
        client(&[
            "--since",
            "2026-11-21T09:00:02Z",
            "-U",
            "2026-11-21T09:00:04Z"
        ]),
        "session opened\nAccepted publickey\n"
    );
    assert_eq!(
        client(&["--facility", "auth,local4"]),
        "Accepted publickey\nFailed password for admin\nupstream timed out\n"
    );
    assert_eq!(
        client(&["--hostname", "web2", "--hostname", "db1", "-p", "err"]),
        "Failed password for admin\n"
    );
    // -o short-iso: the client's local time with its offset, host, tag[pid]: text.
    let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args([
            "show",
            "all",
            "-o",
            "short-iso",
            "--hostname",
            "db1",
            "-p",
            "err",
        ])
        .args(["--url", &format!("http://127.0.0.1:{}", f.http)])
        .env("TZ", "Asia/Kolkata")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-11-21T14:30:04+0530 db1 sshd[4]: Failed password for admin\n"
    );
    // A file that stores no priority refuses a priority filter, with the reason.
    let refused = f.fetch("file=syslog&p=err", &[]);
    assert!(refused.contains("stores no priority"), "{refused}");
    let out = f.logwell(&["show", "syslog", "-p", "err"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("400 Bad Request"),
        "{out:?}"
    );
}

#[test]
fn logwell_follow_prints_history_then_live_in_every_format() {
    let f = Follow::start("");
    f.log("first", "user.warning", "one");
    f.log("second", "user.err", "two");
    f.wait_written(2);
    let mut c = Command::new(env!("CARGO_BIN_EXE_logwell"));
    c.args(["follow", "all", "-n", "1", "-o", "json", "--url"])
        .arg(format!("http://127.0.0.1:{}", f.http));
    let follow = Streamed::spawn(c);
    follow.wait_for("\"msg\":\"two\"");
    f.log("third", "user.info", "three");
    let got = follow.wait_for("\"msg\":\"three\"");
    assert_eq!(got.len(), 2, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(v["tag"], "third");
    assert_eq!(v["severity"], "info");
    assert!(v["cursor"].as_str().unwrap().contains(':'));
    // short is journalctl's: no colour when piped.
    let out = f.logwell(&["show", "all", "-n", "2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with(" second: two") && lines[1].ends_with(" third: three"),
        "{lines:?}"
    );
    // --color always: err in bold red.
    let out = f.logwell(&["show", "all", "-t", "second", "--color", "always"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("\x1b[1;31m"));
    // On a terminal (a pty, from util-linux's `script`) colour is on by itself; NO_COLOR
    // turns it off there too.
    let on_tty = |no_color: bool| {
        let command = format!(
            "{} show all -t second --url http://127.0.0.1:{}",
            env!("CARGO_BIN_EXE_logwell"),
            f.http
        );
        let mut c = Command::new("script");
        c.args(["-qfec", &command, "/dev/null"])
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let text = on_tty(false);
    assert!(
        text.contains("\x1b[1;31m") && text.contains(" second: two\x1b[0m"),
        "{text:?}"
    );
    let text = on_tty(true);
    assert!(
        text.contains(" second: two") && !text.contains('\x1b'),
        "{text:?}"
    );
    // -r: newest first; --show-cursor.
    let out = f.logwell(&["show", "all", "-r", "-o", "cat", "--show-cursor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["three", "two", "one"]);
    assert!(lines[3].starts_with("-- cursor: "), "{lines:?}");
}

impl Follow {
    /// `logwell follow ARGS --url …` with its output collected.
    fn follow(&self, args: &[&str]) -> Streamed {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logwell"));
        c.arg("follow")
            .args(args)
            .args(["--url", &format!("http://127.0.0.1:{}", self.http)]);
        Streamed::spawn(c)
    }
}

#[test]
fn the_cursor_file_is_saved_when_follow_is_stopped_by_a_signal() {
    let f = Follow::start("");
    f.log("app", "user.info", "one");
    f.log("app", "user.info", "two");
    f.wait_written(2);
    let file = f.d.path("cursor");
    let file_arg = file.to_str().unwrap();
    // SIGTERM: the first run has no cursor yet, so the last lines, then live ones.
    let mut follow = f.follow(&["-o", "cat", "--cursor-file", file_arg]);
    follow.wait_for("two");
    f.log("app", "user.info", "three");
    assert_eq!(follow.wait_for("three"), ["one", "two", "three"]);
    follow.signal(libc::SIGTERM);
    let status = follow.wait_exit();
    assert!(status.success(), "SIGTERM: {status:?}");
    assert!(std::fs::read_to_string(&file).unwrap().contains(':'));
    // Written while nobody followed: the next run prints exactly these, then live ones.
    f.log("app", "user.info", "four");
    f.log("app", "user.info", "five");
    let mut follow = f.follow(&["-o", "cat", "--cursor-file", file_arg]);
    follow.wait_for("five");
    f.log("app", "user.info", "six");
    assert_eq!(follow.wait_for("six"), ["four", "five", "six"]);
    // SIGINT (Ctrl-C), then `show` from the same file.
    follow.signal(libc::SIGINT);
    let status = follow.wait_exit();
    assert!(status.success(), "SIGINT: {status:?}");
    f.log("app", "user.info", "seven");
    let out = f.logwell(&["show", "-o", "cat", "--cursor-file", file_arg]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seven\n");
    // Standard output closed (`| head`): noticed at the next line, which was not printed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["follow", "-o", "cat", "--cursor-file", file_arg])
        .args(["--url", &format!("http://127.0.0.1:{}", f.http)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    f.log("app", "user.info", "eight");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "eight\n");
    drop(out);
    f.log("app", "user.info", "nine");
    let status = wait_child(&mut child, "follow to stop on EPIPE", String::new);
    assert!(status.success(), "{status:?}");
    let out = f.logwell(&["show", "-o", "cat", "--cursor-file", file_arg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nine\n");
}

#[test]
fn cursor_starts_at_its_line_and_after_cursor_after_it() {
    let f = Follow::start("");
    for text in ["one", "two", "three"] {
        f.log("app", "user.info", text);
    }
    f.wait_written(3);
    let out = f.logwell(&["show", "-o", "cat", "-n", "2", "--show-cursor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["two", "three"], "{text}");
    let last = lines[2].strip_prefix("-- cursor: ").unwrap();
    // The cursor of `one` is the first line's, from -o json.
    let out = f.logwell(&["show", "-o", "json", "-n", "3"]);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let first = first["cursor"].as_str().unwrap().to_string();
    let show = |args: &[&str]| {
        let out = f.logwell(&[&["show", "-o", "cat"], args].concat());
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(show(&["--cursor", &first]), "one\ntwo\nthree\n");
    assert_eq!(show(&["--after-cursor", &first]), "two\nthree\n");
    assert_eq!(show(&["--cursor", last]), "three\n");
    assert_eq!(show(&["--after-cursor", last]), "");
    // Following from --cursor: its line once, then live lines after it.
    let follow = f.follow(&["-o", "cat", "--cursor", last]);
    follow.wait_for("three");
    f.log("app", "user.info", "four");
    assert_eq!(follow.wait_for("four"), ["three", "four"]);
}

/// The follow service over `all`, whose rotation keeps one generation.
fn keeping_one_generation() -> Follow {
    Follow::start_with(
        &CONFIG.replace(
            "format = \"json\"",
            "format = \"json\"\n[output.all.rotation]\nkeep = 1",
        ),
        "",
        |_| {},
    )
}

#[test]
fn a_subscriber_behind_retention_gets_a_gap_event() {
    let f = keeping_one_generation();
    f.log("app", "user.info", "old line");
    f.wait_written(1);
    let old = events(&f.fetch("file=all&n=all&follow=false&o=cat", &[]));
    let cursor = old[0].0.clone();
    f.rotate("all");
    f.log("app", "user.info", "middle line");
    f.d.wait_lines(&f.d.path("log/all.json"), 1);
    f.rotate("all");
    f.log("app", "user.info", "new line");
    f.d.wait_lines(&f.d.path("log/all.json"), 1);
    // keep = 1: the generation holding "old line" is gone.
    let header = format!("Last-Event-ID: {cursor}");
    let text = f.fetch("file=all&follow=false&o=cat", &[&header]);
    assert!(text.contains("event: gap\n"), "{text}");
    let got: Vec<String> = events(&text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, ["middle line", "new line"]);
}

#[test]
fn a_slow_subscriber_lets_go_of_a_generation_retention_deleted_and_gets_a_gap() {
    let f = keeping_one_generation();
    // 20,000 lines of about 220 bytes: far more than a stalled stream's buffers hold.
    let n = 20_000;
    let mut payload = Vec::new();
    for i in 0..n {
        let m = format!(
            "<14>1 2026-11-21T09:00:00Z host app - - - {i:06} {}",
            "x".repeat(150)
        );
        payload.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    crate::util::tcp_send(f.d.port, &payload);
    f.d.wait_stat("outputs", "all", "written", n);
    // A raw TCP subscriber from the oldest line, with a small receive buffer, not reading.
    let mut slow = stalled_socket(f.tcp);
    slow.write_all(b"file=all n=all o=cat\n").unwrap();
    wait_until(
        "the subscriber",
        || f.fetch_status()["subscribers"] == 1,
        String::new,
    );
    // Only once it is stalled (its lines stopped coming) does it hold the generation without
    // reading on; a subscriber still reading would let go of it at its next batch.
    wait_stalled(&slow);
    f.rotate("all");
    f.log("app", "user.info", "middle line");
    f.rotate("all");
    f.log("app", "user.info", "new line");
    // The generation it is reading is deleted (keep = 1), and it holds it open meanwhile.
    let log_dir = f.d.path("log");
    let deleted_held = || {
        std::fs::read_dir(format!("/proc/{}/fd", f.d.pid()))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .any(|t| t.starts_with(&log_dir) && t.to_string_lossy().ends_with(" (deleted)"))
    };
    wait_until("a deleted generation held", &deleted_held, String::new);
    // Now it reads: what was in flight, then a gap for the rest of the deleted generation,
    // then the lines that are left.
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    let mut buf = vec![0u8; 64 * 1024];
    while !String::from_utf8_lossy(&got).contains("new line\n") {
        assert!(
            Instant::now() < deadline,
            "never got the new line; {} bytes",
            got.len()
        );
        if let Ok(k) = slow.read(&mut buf) {
            got.extend_from_slice(&buf[..k]);
        }
    }
    let text = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let gap = lines
        .iter()
        .position(|l| l.starts_with("-- gap: "))
        .unwrap_or_else(|| panic!("no gap among {} lines", lines.len()));
    assert!(gap < n as usize, "it read the whole deleted generation");
    for (i, l) in lines[..gap].iter().enumerate() {
        assert!(l.starts_with(&format!("{i:06} x")), "line {i}: {l}");
    }
    assert_eq!(lines[gap + 1..], ["middle line", "new line"]);
    // And it let go of the deleted file, so its space is free.
    wait_until(
        "the deleted generation to be let go",
        || !deleted_held(),
        String::new,
    );
}

#[test]
fn other_programs_files_are_followed_across_their_rotation() {
    let f = Follow::start_with(
        CONFIG,
        "[[follow.files]]\nname = \"app\"\npath = \"{dir}/ext/*.log\"\nformat = \"raw\"\n",
        |dir| {
            std::fs::create_dir(dir.join("ext")).unwrap();
            std::fs::write(dir.join("ext/app.log"), "written before\n").unwrap();
        },
    );
    let listed = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/v1/files", f.http)])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"name\":\"app/app.log\""));
    let curl = f.curl("file=app/app.log&n=1&o=raw", &[]);
    curl.wait_for("written before");
    let live = f.d.path("ext/app.log");
    let append = |text: &str| {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&live)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    append("appended live\n");
    curl.wait_for("appended live");
    // logrotate's default: rename, then a new file.
    append("last before rotation\n");
    std::fs::rename(&live, f.d.path("ext/app.log.1")).unwrap();
    append("first after rotation\n");
    let got = curl.wait_for("first after rotation");
    assert_eq!(
        data(&got),
        [
            "written before",
            "appended live",
            "last before rotation",
            "first after rotation"
        ]
    );
    // copytruncate: the same file emptied, then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&live)
        .unwrap();
    append("after truncation\n");
    let got = curl.wait_for("after truncation");
    assert_eq!(data(&got).last().unwrap(), "after truncation");
}

#[test]
fn subscriber_limits_and_cors_are_enforced() {
    let f = Follow::start(
        "max_subscribers_per_peer = 1\ncors_origins = [\"https://ops.example.com\"]\n",
    );
    let first = f.curl("n=0", &[]);
    first.wait_for(": logwell");
    let head = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--max-time", "10"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let second = head(&[&f.url("n=0")]);
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    // Once the first goes away, its slot is free again.
    drop(first);
    wait_until(
        "the slot to be freed",
        || f.fetch_status()["subscribers"] == 0,
        String::new,
    );
    let files = format!("http://127.0.0.1:{}/v1/files", f.http);
    let allowed = head(&["-H", "Origin: https://ops.example.com", &files]);
    assert!(
        allowed
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: https://ops.example.com"),
        "{allowed}"
    );
    let other = head(&["-H", "Origin: https://evil.example.net", &files]);
    assert!(
        !other
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{other}"
    );
}

#[test]
fn the_global_subscriber_limit_refuses_with_429_and_frees_slots() {
    let f = Follow::start("max_subscribers = 2\n");
    f.log("app", "user.info", "a line");
    f.wait_written(1);
    // One SSE subscriber and one raw TCP subscriber: the limit is reached.
    let sse = f.curl("n=0", &[]);
    sse.wait_for(": logwell");
    let mut nc = Command::new("nc");
    nc.args(["127.0.0.1", &f.tcp.to_string()]);
    let mut tcp = Streamed::spawn(nc);
    tcp.send(b"n=1 o=cat\n");
    tcp.wait_for("a line");
    let wait_subscribers = |n: u64| {
        wait_until(
            &format!("{n} subscribers"),
            || f.fetch_status()["subscribers"] == n,
            String::new,
        );
    };
    wait_subscribers(2);
    // Over it, by HTTP: 429 with the reason, which the client prints.
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "10"])
        .arg(f.url("n=0"))
        .output()
        .unwrap();
    let answer = String::from_utf8(out.stdout).unwrap();
    assert!(answer.ends_with("\n429"), "{answer}");
    assert!(
        answer.contains("2 subscribers, its limit (`max_subscribers`)"),
        "{answer}"
    );
    let out = f.logwell(&["show", "-o", "cat"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("429 Too Many Requests") && err.contains("max_subscribers"),
        "{err}"
    );
    // Over it, by raw TCP: one error line, then the connection closes.
    let mut refused = TcpStream::connect(("127.0.0.1", f.tcp)).unwrap();
    refused.write_all(b"n=1 o=cat\n").unwrap();
    let mut text = String::new();
    refused.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("-- error: ") && text.contains("(`max_subscribers`)"),
        "{text}"
    );
    assert!(!text.contains("a line"), "{text}");
    // One leaves: its slot is free again, and the next subscriber gets the stream.
    drop(sse);
    wait_subscribers(1);
    let out = f.logwell(&["show", "-o", "cat"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("a line\n"));
    // A raw TCP client's end of input may be only a half-close (`nc -N`), so one that went
    // away is noticed when a line is sent to it (the first write draws the reset).
    drop(tcp);
    let deadline = Instant::now() + DEADLINE;
    for i in 0.. {
        if f.fetch_status()["subscribers"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the TCP slot was never freed");
        f.log("app", "user.info", &format!("wake {i}"));
    }
}

#[test]
fn stalled_subscribers_do_not_hold_back_ingestion_and_memory_stays_bounded() {
    let f = Follow::start("");
    // 200 subscribers that ask for everything and never read, with small receive buffers.
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let s = stalled_subscriber(f.http);
        stalled.push(s);
    }
    wait_until(
        "200 subscribers",
        || f.fetch_status()["subscribers"].as_u64() == Some(200),
        || f.fetch_status().to_string(),
    );
    // 50,000 lines of 200 bytes over one TCP connection: every one is written.
    let n = 50_000;
    let body = "x".repeat(150);
    let mut payload = Vec::with_capacity(n * 220);
    for i in 0..n {
        let m = format!("<14>1 2026-11-21T09:00:00Z host app - - - {i:06} {body}");
        payload.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    crate::util::tcp_send(f.d.port, &payload);
    f.d.wait_stat("outputs", "all", "written", n as u64);
    f.d.wait_stat("outputs", "syslog", "written", n as u64);
    for file in ["log/all.json", "log/syslog"] {
        let text = f.d.wait_lines(&f.d.path(file), n);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n, "{file}");
        for (i, l) in lines.iter().enumerate() {
            assert!(l.contains(&format!("{i:06} xxx")), "{file} line {i}: {l}");
        }
    }
    // Memory: the stalled subscribers hold at most their batches in flight. The peak since
    // the daemon started (VmHWM), not the RSS now: the benchmark measured 45–49 MiB with the
    // 200 (release build), so 128 MiB leaves a clear margin and still catches a subscriber
    // that buffers what it cannot send (50,000 lines are 10 MiB per subscriber).
    let peak_kib = crate::util::peak_rss_kib(f.d.pid());
    eprintln!("peak RSS {peak_kib} KiB with 200 stalled subscribers");
    assert!(
        peak_kib < 128 * 1024,
        "peak RSS {peak_kib} KiB with 200 stalled subscribers"
    );
    // A live subscriber still gets new lines at once.
    let curl = f.curl("n=0&o=cat", &[]);
    // The stream opens once its start point is fixed.
    curl.wait_for(": logwell");
    f.log("app", "user.info", "still live");
    curl.wait_for("still live");
    drop(stalled);
}

impl Follow {
    fn fetch_status(&self) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/v1/status", self.http)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}

/// A TCP connection that sends a follow request for everything and never reads.
fn stalled_subscriber(port: u16) -> TcpStream {
    let s = stalled_socket(port);
    let mut w = &s;
    w.write_all(
        format!("GET /v1/follow?file=all&n=all HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    s
}

/// A TCP connection with a small receive buffer.
/// Waits until bytes wait in `s`'s receive queue and their count stopped changing: the
/// sender filled what the connection holds and waits for the reader.
fn wait_stalled(s: &TcpStream) {
    let queued = || crate::util::socket_queued(s, libc::FIONREAD);
    let deadline = Instant::now() + DEADLINE;
    let mut last = queued();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = queued();
        if now > 0 && now == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the subscriber never stalled ({now} bytes queued)"
        );
        last = now;
    }
}

fn stalled_socket(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a valid pointer and length.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    s
}

#[test]
fn beyond_loopback_a_token_is_required() {
    // Refused at config check without one.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logwell.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "{}\n[follow]\nlisten = \"0.0.0.0:{port}\"\n",
            crate::util::render(CONFIG, dir.path(), free_port())
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("beyond loopback, with no authentication") && err.contains("token_file"),
        "{err}"
    );

    // With a token: 401 without it, the stream with it (header or parameter), and the raw
    // TCP listener wants it in the request line.
    let token = "0123456789abcdef0123456789abcdef";
    let f = Follow::start_with(CONFIG, "token_file = \"{dir}/token\"\n", |dir| {
        std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    });
    f.log("app", "user.info", "secret line");
    f.wait_written(1);
    let code = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let url = f.url("follow=false");
    assert_eq!(code(&[&url]), "401");
    assert_eq!(
        code(&["-H", "Authorization: Bearer wrong-token-wrong-token", &url]),
        "401"
    );
    assert_eq!(
        code(&["-H", &format!("Authorization: Bearer {token}"), &url]),
        "200"
    );
    assert_eq!(code(&[&format!("{url}&token={token}")]), "200");
    assert_eq!(
        code(&[&format!("http://127.0.0.1:{}/metrics", f.http)]),
        "401"
    );
    // The page holds no data: served without a token.
    assert_eq!(code(&[&format!("http://127.0.0.1:{}/", f.http)]), "200");
    let mut nc = Command::new("nc");
    nc.args(["127.0.0.1", &f.tcp.to_string()]);
    let mut nc = Streamed::spawn(nc);
    nc.send(b"n=1\n");
    nc.wait_for("-- error: a bearer token is required");
    let mut nc2 = Command::new("nc");
    nc2.args(["127.0.0.1", &f.tcp.to_string()]);
    let mut nc2 = Streamed::spawn(nc2);
    nc2.send(format!("n=1 token={token}\n").as_bytes());
    nc2.wait_for("secret line");
}

#[test]
fn status_and_metrics_show_the_counters() {
    let f = Follow::start("");
    f.log("app", "user.info", "counted");
    f.wait_written(1);
    let status = f.fetch_status();
    assert_eq!(status["inputs"]["tcp"]["received"], 1);
    assert_eq!(status["outputs"]["all"]["written"], 1);
    assert!(status["uptime_secs"].is_u64());
    assert_eq!(status["subscribers"], 0);
    let mut metrics = String::new();
    let mut s = TcpStream::connect(("127.0.0.1", f.http)).unwrap();
    s.write_all(
        format!(
            "GET /metrics HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            f.http
        )
        .as_bytes(),
    )
    .unwrap();
    s.read_to_string(&mut metrics).unwrap();
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(
        metrics.contains("logwell_input_received_total{input=\"tcp\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logwell_output_written_total{output=\"all\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE logwell_follow_subscribers gauge"),
        "{metrics}"
    );
}

#[test]
fn heartbeats_keep_an_idle_stream_alive() {
    let f = Follow::start("heartbeat_secs = 1\n");
    let curl = f.curl("n=0&heartbeat=json", &[]);
    let got = curl.wait_for("event: heartbeat");
    let beat = got
        .iter()
        .skip_while(|l| *l != "event: heartbeat")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(beat).unwrap();
    assert_eq!(v["subscribers"], 1);
    assert!(v["stats"]["inputs"]["tcp"].is_object(), "{v}");
    let comment = f.curl("n=0", &[]);
    comment.wait_for(": heartbeat");
}

#[test]
fn beyond_loopback_client_certificates_are_enough_and_required() {
    // Listening on every address with TLS and client certificates: no token needed.
    let http = free_port();
    let extra = format!(
        "[follow]\nlisten = \"0.0.0.0:{http}\"\ncert = \"{{dir}}/server.pem\"\nkey = \"{{dir}}/server.key\"\nclient_ca = \"{{dir}}/ca.pem\"\n"
    );
    let d = Daemon::start_with(&format!("{CONFIG}\n{extra}"), crate::tls::make_pki);
    let out = logger_tcp(d.port, "app", "over https");
    assert!(out.status.success());
    d.wait_lines(&d.path("log/all.json"), 1);
    let dir = d.dir.path().to_str().unwrap().to_string();
    let url = format!("https://localhost:{http}/v1/follow?file=all&follow=false&o=cat");
    let curl = |client: Option<&str>| {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "--max-time",
            "20",
            "--cacert",
            &format!("{dir}/ca.pem"),
        ]);
        c.args(["--resolve", &format!("localhost:{http}:127.0.0.1")]);
        if let Some(name) = client {
            c.args([
                "--cert",
                &format!("{dir}/{name}.pem"),
                "--key",
                &format!("{dir}/{name}.key"),
            ]);
        }
        c.arg(&url).output().unwrap()
    };
    // With a client certificate from the CA: the history.
    let ok = curl(Some("client"));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("data: over https"),
        "{ok:?}"
    );
    // Without one, or with one from another CA: refused in the handshake.
    for client in [None, Some("stranger")] {
        let refused = curl(client);
        assert!(!refused.status.success(), "{client:?}: {refused:?}");
        assert!(!String::from_utf8_lossy(&refused.stdout).contains("over https"));
    }
    // The client with its certificate.
    let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args([
            "show",
            "all",
            "-o",
            "cat",
            "--url",
            &format!("https://localhost:{http}"),
        ])
        .args(["--cacert", &format!("{dir}/ca.pem")])
        .args([
            "--cert",
            &format!("{dir}/client.pem"),
            "--key",
            &format!("{dir}/client.key"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over https\n");
    // Without the client certificate, the client says the handshake failed.
    let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["show", "all", "--url", &format!("https://localhost:{http}")])
        .args(["--cacert", &format!("{dir}/ca.pem")])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_privilege_separated_worker_serves_root_owned_logs() {
    let (http, tcp) = (free_port(), free_port());
    let text = format!(
        "{CONFIG}\n[follow]\nlisten = \"127.0.0.1:{http}\"\ntcp_listen = \"127.0.0.1:{tcp}\"\nallow_unauthenticated = true\n"
    );
    if !crate::privsep::can_run("follow::the_privilege_separated_worker_serves_root_owned_logs") {
        return;
    }
    let d = Daemon::start_privsep(&text, |_| {});
    let f = Follow { d, http, tcp };
    f.log("app", "user.err", "from root-owned files");
    let got = events(&f.fetch("file=all&follow=false&o=json", &[]));
    assert_eq!(got.len(), 1, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["msg"], "from root-owned files");
    assert_eq!(v["severity"], "err");
}

// The local trust boundary (issue 24, item 1): the follow service never gives a user more
// than the file system would.

/// `curl -s --unix-socket SOCK http://localhost/v1/follow?follow=false&o=cat` run as `user`
/// (`setpriv` arguments; none for root): the status and the body.
fn curl_unix(sock: &std::path::Path, user: &[&str]) -> (String, String) {
    let mut c = if user.is_empty() {
        Command::new("curl")
    } else {
        let mut c = Command::new("setpriv");
        c.args(user).arg("curl");
        c
    };
    let out = c
        .args([
            "-s",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
        ])
        .arg(sock)
        .arg("http://localhost/v1/follow?file=syslog&follow=false&o=cat")
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

const NOBODY: &[&str] = &["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
const NOBODY_IN_ADM: &[&str] = &["--reuid=nobody", "--regid=nogroup", "--groups=adm"];

/// Checks who the socket serves: root and adm read the line, `nobody` is refused with a
/// reason, over curl and `logwell show`.
fn check_socket_serves_root_and_adm_only(sock: &std::path::Path, line: &str) {
    let (code, body) = curl_unix(sock, &[]);
    assert_eq!(code, "200", "root: {body}");
    assert!(body.contains(line), "root reads the line: {body}");
    let (code, body) = curl_unix(sock, NOBODY);
    assert_eq!(code, "403", "nobody: {body}");
    assert!(
        body.contains("may not read the logs") && body.contains("usermod -aG adm"),
        "the refusal says why and what to do: {body}"
    );
    assert!(!body.contains(line), "{body}");
    let (code, body) = curl_unix(sock, NOBODY_IN_ADM);
    assert_eq!(code, "200", "nobody in adm: {body}");
    assert!(body.contains(line), "{body}");

    let show = |user: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(user)
            .arg(env!("CARGO_BIN_EXE_logwell"))
            .args(["show", "syslog", "-o", "cat", "--socket"])
            .arg(sock);
        c.output().expect("run logwell show")
    };
    let refused = show(NOBODY);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("403") && err.contains("group `adm`") && err.contains("usermod -aG adm"),
        "logwell show says why: {err}"
    );
    let served = show(NOBODY_IN_ADM);
    assert!(served.status.success(), "{served:?}");
    assert!(String::from_utf8_lossy(&served.stdout).contains(line));
}

#[test]
fn the_local_socket_serves_root_and_adm_and_refuses_other_users() {
    let template = format!("{CONFIG}\n[follow]\nsocket = \"{{dir}}/follow.sock\"\n");
    // `nobody` must reach the socket inside the test's directory.
    let d = Daemon::start_with(&template, |dir| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    let f = Follow { d, http: 0, tcp: 0 };
    f.log("app", "user.info", "for adm only");
    f.wait_written(1);
    let sock = f.d.path("follow.sock");
    check_socket_serves_root_and_adm_only(&sock, "for adm only");

    // A reload that restarts the follow service (its settings changed) keeps the socket.
    let config = std::fs::read_to_string(&f.d.config).unwrap();
    std::fs::write(&f.d.config, format!("{config}heartbeat_secs = 20\n")).unwrap();
    f.d.signal(libc::SIGHUP);
    f.d.wait_log("configuration reloaded");
    let (code, body) = curl_unix(&sock, NOBODY_IN_ADM);
    assert_eq!(code, "200", "after the reload: {body}");
    assert!(body.contains("for adm only"));
}

#[test]
fn the_privilege_separated_worker_serves_the_local_socket_bound_by_the_parent() {
    if !crate::privsep::can_run(
        "follow::the_privilege_separated_worker_serves_the_local_socket_bound_by_the_parent",
    ) {
        return;
    }
    let template = format!("{CONFIG}\n[follow]\nsocket = \"{{dir}}/run/follow.sock\"\n");
    // The socket's directory is root's, as /run/logwell is: the worker cannot create in it.
    let d = Daemon::start_privsep(&template, |dir| {
        std::fs::create_dir(dir.join("run")).unwrap();
    });
    let f = Follow { d, http: 0, tcp: 0 };
    f.log("app", "user.info", "through the parent's socket");
    f.wait_written(1);
    let sock = f.d.path("run/follow.sock");
    f.d.wait_log("bind the follow socket");
    check_socket_serves_root_and_adm_only(&sock, "through the parent's socket");
    let config = std::fs::read_to_string(&f.d.config).unwrap();
    std::fs::write(&f.d.config, format!("{config}heartbeat_secs = 20\n")).unwrap();
    f.d.signal(libc::SIGHUP);
    f.d.wait_log("configuration reloaded");
    let (code, body) = curl_unix(&sock, &[]);
    assert_eq!(code, "200", "after the reload: {body}\n{}", f.d.log());
    // The parent removes the socket when the daemon stops.
    let mut d = f.d;
    assert!(d.stop().success());
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn a_tcp_listener_needs_a_token_even_on_loopback_unless_allow_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logwell.toml");
    let check = |follow: &str| {
        std::fs::write(
            &config,
            format!(
                "{}\n[follow]\n{follow}",
                crate::util::render(CONFIG, dir.path(), free_port())
            ),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_logwelld"))
            .arg("--check-config")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    // Refused, with where and what to do.
    let line = CONFIG.lines().count() + 2;
    for listener in [
        "listen = \"127.0.0.1:8514\"\n",
        "tcp_listen = \"[::1]:8515\"\n",
    ] {
        let out = check(listener);
        assert!(!out.status.success(), "{listener}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}:{line}:1: the follow service would listen on",
                config.display()
            )) && err.contains("with no authentication")
                && err.contains("hint: use `socket`"),
            "{err}"
        );
    }
    // Allowed on purpose: accepted, with a warning.
    let out = check("listen = \"127.0.0.1:8514\"\nallow_unauthenticated = true\n");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("warning: ") && err.contains("every local user can read"),
        "{err}"
    );

    // With a token, on loopback: 401 without it, on both listeners.
    let token = "0123456789abcdef0123456789abcdef";
    let f = Follow::start(&format!("token = \"{token}\"\n"));
    f.log("app", "user.info", "loopback secret");
    let code = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let url = f.url("follow=false");
    assert_eq!(code(&[&url]), "401");
    assert_eq!(
        code(&["-H", &format!("Authorization: Bearer {token}"), &url]),
        "200"
    );
    let mut nc = Streamed::spawn({
        let mut c = Command::new("nc");
        c.args(["-N", "127.0.0.1", &f.tcp.to_string()]);
        c
    });
    nc.send(b"n=1\n");
    nc.wait_for("-- error: a bearer token is required");
}

#[test]
fn a_host_header_that_is_not_the_listener_gets_421() {
    let f = Follow::start("host_names = [\"logs.example.com\"]\n");
    f.log("app", "user.info", "not for rebinding");
    let code = |host: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Host: {host}"))
            .arg(f.url("follow=false"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let port = f.http;
    // DNS rebinding: a page at the attacker's name, resolved to 127.0.0.1.
    assert_eq!(code(&format!("evil.example:{port}")), "421");
    assert_eq!(code("evil.example"), "421");
    assert_eq!(code(&format!("127.0.0.2:{port}")), "421");
    // The listener's address, localhost on loopback, and a configured name.
    assert_eq!(code(&format!("127.0.0.1:{port}")), "200");
    assert_eq!(code(&format!("localhost:{port}")), "200");
    assert_eq!(code("logs.example.com"), "200");
    // The answer says what to do; the page is refused too.
    let out = Command::new("curl")
        .args(["-s", "-H", "Host: evil.example"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("host_names"), "{body}");
    assert!(!body.contains("<html"), "{body}");
}

#[test]
fn logwell_show_escapes_control_characters_on_a_terminal_unless_all() {
    let f = Follow::start("");
    // OSC 0 (set the window title), then CSI 2J (clear the screen).
    let hostile = "title\x1b]0;owned\x07 clear\x1b[2J end";
    let port = f.d.port.to_string();
    let out = logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        "app",
        "-p",
        "user.info",
        hostile,
    ]);
    assert!(out.status.success(), "{out:?}");
    f.wait_written(1);
    let url = format!("http://127.0.0.1:{}", f.http);
    // Piped: the bytes as they are (the json file keeps them as \u001b, and gives them back).
    let piped = f.logwell(&["show", "all", "-o", "cat"]);
    assert!(piped.status.success(), "{piped:?}");
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout).trim_end(),
        hostile,
        "piped output is not altered"
    );
    // On a terminal (script(1) gives it a pty): escaped as the files escape them.
    let on_terminal = |extra: &str| {
        let cmd = format!(
            "{} show all -o cat --color never --url {url} {extra}",
            env!("CARGO_BIN_EXE_logwell")
        );
        let out = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run script");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal("");
    assert!(
        shown.contains("title#033]0;owned#007 clear#033[2J end"),
        "{shown:?}"
    );
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let raw = on_terminal("--all");
    assert!(raw.contains(hostile), "--all: {raw:?}");
}

/// Issue 24 item 3: one follow request could take the daemon's memory (and logging with it):
/// a line was read whole however long (a 300 MB sparse file took 300 MB), and `n=` on a
/// compressed generation kept one offset per line. Both requests now cost a bounded amount:
/// the peak RSS grows by far less than either would have taken.
#[test]
fn a_huge_line_or_a_huge_n_does_not_take_the_daemons_memory() {
    const GIANT: u64 = 64 * 1024 * 1024;
    const LINES: usize = 8_000_000;
    let f = Follow::start_with(
        CONFIG,
        "[[follow.files]]\nname = \"ext\"\npath = \"{dir}/ext\"\nformat = \"raw\"\n",
        |dir| {
            let ext = dir.join("ext");
            std::fs::create_dir(&ext).unwrap();
            // One 64 MiB line of zeros, sparse: it costs no disk.
            let big = ext.join("big.log");
            std::fs::write(&big, "before\n").unwrap();
            let file = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
            file.set_len(7 + GIANT).unwrap();
            (&file).write_all(b"\nafter\n").unwrap();
            // A compressed generation of 8 million short lines (16 MB, a few KB packed).
            let mut data = b"old first\n".to_vec();
            data.extend("x\n".repeat(LINES).as_bytes());
            let packed = zstd::stream::encode_all(&data[..], 3).unwrap();
            std::fs::write(ext.join("app.log.1.zst"), packed).unwrap();
            std::fs::write(ext.join("app.log"), "live line\n").unwrap();
        },
    );
    let pid = f.d.pid();
    let before = crate::util::peak_rss_kib(pid);
    let giant = f.curl("file=ext/big.log&n=all&o=raw&follow=false", &[]);
    let got = giant.wait_for("after");
    let cut = got
        .iter()
        .find(|l| l.ends_with(" [truncated]"))
        .unwrap_or_else(|| panic!("no truncated line in {} lines", got.len()));
    assert!(cut.len() < 2 * 1024 * 1024, "a line of {} bytes", cut.len());
    drop(giant);
    // The whole set from its start: the stream begins once the tail is found.
    let many = f.curl("file=ext/app.log&n=999999999999&o=raw", &[]);
    many.wait_for("old first");
    drop(many);
    let grown_kib = crate::util::peak_rss_kib(pid).saturating_sub(before);
    eprintln!("peak RSS grew by {grown_kib} KiB");
    // Before the fix: 64 MiB and more for the line, 64 MiB of offsets for the tail.
    assert!(
        grown_kib < 40 * 1024,
        "peak RSS grew by {grown_kib} KiB under the two requests"
    );
}

/// Issue 24 item 2: whoever could write in a followed directory planted `x.log -> a secret
/// file` and read it as `file=NAME/x.log`. Links are neither listed nor served, whether
/// planted as a live file or as a rotated generation beside one.
#[test]
fn a_symlink_planted_in_a_followed_directory_is_refused_not_served() {
    let f = Follow::start_with(
        CONFIG,
        "[[follow.files]]\nname = \"ext\"\npath = \"{dir}/ext\"\nformat = \"raw\"\n",
        |dir| {
            std::fs::create_dir(dir.join("ext")).unwrap();
            std::fs::write(dir.join("secret"), "TOP SECRET line\n").unwrap();
            std::fs::write(dir.join("ext/app.log"), "app live line\n").unwrap();
            std::os::unix::fs::symlink(dir.join("secret"), dir.join("ext/x.log")).unwrap();
            std::os::unix::fs::symlink(dir.join("secret"), dir.join("ext/app.log.1")).unwrap();
        },
    );
    let listed = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/v1/files", f.http)])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("\"name\":\"ext/app.log\""), "{listed}");
    assert!(!listed.contains("x.log"), "{listed}");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "30"])
        .arg(f.url("file=ext/x.log&n=all&o=raw&follow=false"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.contains("TOP SECRET"), "{out}");
    assert!(out.ends_with("\n404"), "{out}");
    // The link beside the live file, named as its rotated generation, is not read either.
    let got = f.fetch("file=ext/app.log&n=all&o=raw&follow=false", &[]);
    assert!(got.contains("app live line"), "{got}");
    assert!(!got.contains("TOP SECRET"), "{got}");
}

/// Issue 26: the lag of each file a file input reads (its size less the input's offset),
/// in `/v1/files` (which the web page reads) and `logwell follow --list`. A last line
/// without its newline is held back, so its bytes are the file's lag until the newline comes.
#[test]
fn the_lag_of_each_watched_file_shows_in_files_and_follow_list() {
    let base = format!(
        "{CONFIG}\n[input.ext]\ntype = \"file\"\npaths = [\"{{dir}}/ext/*.log\"]\nfrom = \"head\"\n"
    );
    let f = Follow::start_with(
        &base,
        "[[follow.files]]\nname = \"app\"\npath = \"{dir}/ext/*.log\"\nformat = \"raw\"\n",
        |dir| {
            std::fs::create_dir(dir.join("ext")).unwrap();
            std::fs::write(dir.join("ext/app.log"), "read\nheld back").unwrap();
            std::fs::write(dir.join("ext/done.log"), "all read\n").unwrap();
        },
    );
    let files = || -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/v1/files", f.http)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let lag = |v: &serde_json::Value, name: &str| {
        v["watched"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .map(|w| {
                (
                    w["lag_bytes"].as_u64(),
                    w["offset"].as_u64(),
                    w["input"].clone(),
                )
            })
    };
    // Measured once a second by the input.
    let v = f.d.wait_for("both files' lag in /v1/files", || {
        let v = files();
        (lag(&v, "/ext/app.log").is_some_and(|l| l.0 == Some(9))
            && lag(&v, "/ext/done.log").is_some_and(|l| l.0 == Some(0)))
        .then_some(v)
    });
    assert_eq!(
        lag(&v, "/ext/app.log"),
        Some((Some(9), Some(5), "ext".into())),
        "{v}"
    );
    // The followable file that a file input reads too carries its lag.
    let app = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "app/app.log")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(app["lag_bytes"], 9, "{v}");
    let out = f.logwell(&["follow", "--list"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.ends_with("/ext/app.log") && l.starts_with("ext "))
        .unwrap_or_else(|| panic!("no row of the watched app.log:\n{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["ext", "9", "5", "14"],
        "INPUT LAG OFFSET SIZE:\n{text}"
    );
    // The newline comes: the line is handed on, and the lag goes to 0.
    std::fs::OpenOptions::new()
        .append(true)
        .open(f.d.path("ext/app.log"))
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    f.d.wait_for("app.log's lag to reach 0", || {
        lag(&files(), "/ext/app.log")
            .is_some_and(|l| l.0 == Some(0))
            .then_some(())
    });
    let status = f.fetch_status();
    let watched = status["inputs"]["ext"]["watched"].as_array().unwrap();
    assert_eq!(watched.len(), 2, "{status}");
}
