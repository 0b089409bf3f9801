//! The journal input against a real `systemd-journald`: each test starts its own instance in a
//! namespace of its own (`systemd-journald NAMESPACE`, as root), writes to it with the real
//! `systemd-cat`, util-linux `logger --journald` and journald's native protocol, and reads
//! what logwelld wrote. The
//! namespace's journald is stopped (by its PID) and its files removed at the end.
//!
//! Without root or without `/lib/systemd/systemd-journald`, a test prints
//! `journal test skipped: <why>` and passes.

use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::{hostname, wait_lines, Daemon, DEADLINE};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A `systemd-journald` serving one namespace, started by the test.
struct Journald {
    ns: String,
    child: Child,
    machine_id: String,
    log: PathBuf,
    /// An open stdout stream: a namespace's journald exits when no client has been
    /// connected for 30 s, which a slow test run could reach.
    _keepalive: UnixStream,
    _dir: tempfile::TempDir,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Journald {
    /// Starts an instance on a fresh namespace, or says why it cannot.
    fn start() -> Result<Journald, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root (systemd-journald NAMESPACE needs root)".into());
        }
        if !Path::new(JOURNALD).exists() {
            return Err(format!("{JOURNALD} is missing (package systemd)"));
        }
        let machine_id = std::fs::read_to_string("/etc/machine-id")
            .map_err(|e| format!("cannot read /etc/machine-id: {e}"))?
            .trim()
            .to_string();
        let ns = format!(
            "logwelltest{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("journald.log");
        let child = Command::new(JOURNALD)
            .arg(&ns)
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("journald.err")).unwrap())
            .spawn()
            .map_err(|e| format!("cannot start {JOURNALD}: {e}"))?;
        let mut j = Journald {
            ns,
            child,
            machine_id,
            log,
            _keepalive: UnixStream::pair().unwrap().0,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = j.child.try_wait() {
                return Err(format!(
                    "systemd-journald exited with {status}: {}",
                    j.output()
                ));
            }
            if let Ok(s) = j.connect_stdout("lw-keepalive", 6) {
                j._keepalive = s;
                return Ok(j);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "systemd-journald did not open its sockets: {}",
                    j.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        let mut s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s += &std::fs::read_to_string(self._dir.path().join("journald.err")).unwrap_or_default();
        s
    }

    /// `/run/systemd/journal.NS`.
    fn socket_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}", self.ns))
    }

    /// A stdout stream, as `systemd-cat` opens one: each line written becomes an entry.
    fn connect_stdout(&self, identifier: &str, priority: u8) -> std::io::Result<UnixStream> {
        let mut s = UnixStream::connect(self.socket_dir().join("stdout"))?;
        // identifier, unit, priority, level prefix, forward to syslog, kmsg, console.
        write!(s, "{identifier}\n\n{priority}\n0\n0\n0\n0\n")?;
        Ok(s)
    }

    /// Sends one entry in journald's native protocol. A value with a newline or a NUL is
    /// sent in the binary form.
    fn send(&self, sock: &UnixDatagram, fields: &[(&str, &[u8])]) {
        let mut d = Vec::new();
        for (name, value) in fields {
            d.extend_from_slice(name.as_bytes());
            if value.contains(&b'\n') || value.contains(&0) {
                d.push(b'\n');
                d.extend_from_slice(&(value.len() as u64).to_le_bytes());
            } else {
                d.push(b'=');
            }
            d.extend_from_slice(value);
            d.push(b'\n');
        }
        sock.send_to(&d, self.socket_dir().join("socket"))
            .expect("send to journald");
    }

    /// Runs the real `systemd-cat` against this namespace: in a mount namespace of its own
    /// where the namespace's socket directory is mounted on `/run/systemd/journal` (this
    /// systemd's `systemd-cat` has no `--namespace`).
    fn systemd_cat(&self, scratch: &Path, args: &[&str], input: &str) -> Result<(), String> {
        self.run_with_journal(scratch, "systemd-cat", args, input)
    }

    /// Runs `program` with this namespace's sockets where the system journal's would be.
    fn run_with_journal(
        &self,
        scratch: &Path,
        program: &str,
        args: &[&str],
        input: &str,
    ) -> Result<(), String> {
        let script = format!(
            "set -e; mount --bind {src} {scratch}; mount -t tmpfs tmpfs /run/systemd; \
             mkdir /run/systemd/journal; mount --move {scratch} /run/systemd/journal; \
             exec {program} \"$@\"",
            src = self.socket_dir().display(),
            scratch = scratch.display(),
        );
        std::fs::create_dir_all(scratch).unwrap();
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "unshare + {program} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of the journald this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for dir in [
            format!("/var/log/journal/{}.{}", self.machine_id, self.ns),
            format!("/run/log/journal/{}.{}", self.machine_id, self.ns),
            format!("/run/systemd/journal.{}", self.ns),
        ] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts journald, or prints why the test is skipped and returns `None`.
fn journald_or_skip() -> Option<Journald> {
    match Journald::start() {
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
    );
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
    assert_eq!(lines[3]["msg"], "from logger", "{}", lines[3]);
    assert_eq!(lines[3]["appname"], "lw-logger", "{}", lines[3]);
    assert_eq!(lines[3]["severity"], "err", "{}", lines[3]);
    for (line, msg) in lines[..2].iter().zip(["first line", "second line"]) {
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
    let native = &lines[2];
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
    assert!(text.lines().next().unwrap().contains(" lw-cat["), "{text}");

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
        );
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
                );
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
    );
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        let text = wait_lines(&out, N + 1, || d.log());
        if text.contains("\"msg\":\"the end\"") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the end never came:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
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
    );
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
