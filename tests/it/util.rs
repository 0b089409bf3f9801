//! Helpers of the integration tests alone: start the real `logwelld` on a temporary config
//! with loopback ports and temporary sockets, send with the real `logger` or raw sockets, and
//! wait (with a deadline, never a blind sleep) for lines to reach the files. What the
//! benchmarks share (ports, waits, processes, peers, journald, the broker, the PKI) is the
//! test kit, `testkit/`; the panicking wrappers here keep the tests short.

#![allow(dead_code)]

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use testkit::child::Proc;
use testkit::{wait, OrPanic};

/// How long any wait in a test may take before it fails.
pub use testkit::wait::DEADLINE;

/// Bytes waiting in one of `s`'s socket queues: `libc::FIONREAD` (received, not yet read) or
/// `libc::TIOCOUTQ` (sent, not yet acknowledged by a TCP peer).
pub fn socket_queued(s: &impl std::os::fd::AsRawFd, request: libc::Ioctl) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD / TIOCOUTQ on a socket the caller owns, into a valid c_int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), request, &mut n) };
    assert_eq!(r, 0, "ioctl: {}", std::io::Error::last_os_error());
    n as usize
}

/// A free TCP-and-UDP port on 127.0.0.1, never one handed out before in this process
/// ([`testkit::ports::free_port`]).
pub fn free_port() -> u16 {
    testkit::ports::free_port().or_panic()
}

/// A running `logwelld` started by a test; killed (by its PID) if the test drops it.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    child: Option<Proc>,
    stderr: PathBuf,
    launcher: Launcher,
}

/// Builds the command that starts logwelld on a config (to add environment variables or
/// pass sockets, as systemd would).
pub type Launcher = Box<dyn Fn(&Path) -> Command>;

/// Starts `logwelld --config CONFIG` as it is.
pub fn plain_launcher() -> Launcher {
    Box::new(|config| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logwelld"));
        c.arg("--config").arg(config);
        c
    })
}

/// Replaces `{dir}` and `{port}` in a config template.
pub fn render(template: &str, dir: &Path, port: u16) -> String {
    template
        .replace("{dir}", dir.to_str().unwrap())
        .replace("{port}", &port.to_string())
}

impl Daemon {
    /// Starts `logwelld` on `template` (with `{dir}` and `{port}` filled in; the control
    /// socket is added) and waits until it answers on its control socket.
    pub fn start(template: &str) -> Daemon {
        Daemon::start_with(template, |_| {})
    }

    /// Like [`Daemon::start`], running `setup` in the test's directory first.
    pub fn start_with(template: &str, setup: impl FnOnce(&Path)) -> Daemon {
        Daemon::start_launched(template, setup, plain_launcher())
    }

    /// Like [`Daemon::start_with`], starting logwelld with `launcher`.
    ///
    /// Privilege separation is off (`privsep = false`): the tests of everything else run
    /// in one process whose threads they can inspect, in a temporary directory only root
    /// may enter. `tests/it/privsep.rs` starts it with [`Daemon::start_privsep`].
    pub fn start_launched(template: &str, setup: impl FnOnce(&Path), launcher: Launcher) -> Daemon {
        Daemon::start_full(template, setup, launcher, "privsep = false\n")
    }

    /// Starts `logwelld` with privilege separation on (`user = "_logwell"`, `log_level =
    /// "debug"`, so the parent's answers are logged). The test's directory is made
    /// enterable (0755) so the worker can reach the sockets and the state directory in it.
    pub fn start_privsep(template: &str, setup: impl FnOnce(&Path)) -> Daemon {
        Daemon::start_privsep_launched(template, setup, plain_launcher())
    }

    /// Like [`Daemon::start_privsep`], starting logwelld with `launcher`.
    pub fn start_privsep_launched(
        template: &str,
        setup: impl FnOnce(&Path),
        launcher: Launcher,
    ) -> Daemon {
        Daemon::start_full(
            template,
            |dir| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
                setup(dir)
            },
            launcher,
            "privsep = true\nuser = \"_logwell\"\nlog_level = \"info,logwell::daemon::privsep=debug\"\n",
        )
    }

    fn start_full(
        template: &str,
        setup: impl FnOnce(&Path),
        launcher: Launcher,
        daemon_keys: &str,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let port = free_port();
        let config = dir.path().join("logwell.toml");
        let log_level = if daemon_keys.contains("log_level") {
            ""
        } else {
            "log_level = \"info\"\n"
        };
        let text = format!(
            "[daemon]\ncontrol_socket = \"{}/control.sock\"\nstate_dir = \"{}/state\"\n{log_level}{daemon_keys}{}",
            dir.path().display(),
            dir.path().display(),
            render(template, dir.path(), port)
        );
        std::fs::write(&config, text).unwrap();
        let mut d = Daemon {
            launcher,
            stderr: dir.path().join("stderr.log"),
            dir,
            config,
            port,
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let cmd = (self.launcher)(&self.config);
        let mut child = Proc::spawn("logwelld", cmd, &self.stderr).or_panic();
        let socket = self.path("control.sock");
        child
            .wait_ready(DEADLINE, "answer on its control socket", || {
                stats_json(&socket).is_some()
            })
            .or_panic();
        self.child = Some(child);
    }

    /// Starts the daemon again on the same directory and config (after it exited).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// A path inside the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The daemon's own diagnostics so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().pid()
    }

    /// Sends a signal to the daemon (only ever to the process this test started).
    pub fn signal(&self, sig: i32) {
        self.child.as_ref().unwrap().signal(sig).or_panic();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Waits for the daemon to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.child.as_mut().unwrap().wait_exit(DEADLINE).or_panic()
    }

    /// `logwell stats --json` through the real client, parsed; `None` while not answering.
    pub fn stats_json(&self) -> Option<serde_json::Value> {
        stats_json(&self.path("control.sock"))
    }

    /// One counter: `stat("inputs", "udp", "received")`.
    pub fn stat(&self, kind: &str, name: &str, counter: &str) -> u64 {
        let s = self.stats_json().expect("daemon answers");
        s[kind][name][counter]
            .as_u64()
            .unwrap_or_else(|| panic!("no {kind}.{name}.{counter} in {s}"))
    }

    /// Waits until `path` holds at least `n` lines; returns its content.
    pub fn wait_lines(&self, path: &Path, n: usize) -> String {
        wait_lines(path, n, || self.log())
    }

    /// Waits until `ready` returns a value; on failure says `what` was awaited and shows the
    /// daemon's log.
    pub fn wait_for<T>(&self, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
        wait::try_until(DEADLINE, what, || self.log(), || Ok(ready())).or_panic()
    }

    /// Waits until the daemon's diagnostics hold `needle`; returns them.
    pub fn wait_log(&self, needle: &str) -> String {
        wait::try_until(
            DEADLINE,
            &format!("`{needle}` in the log"),
            || self.log(),
            || {
                let log = self.log();
                Ok(log.contains(needle).then_some(log))
            },
        )
        .or_panic()
    }

    /// Waits until a counter reaches `n`.
    pub fn wait_stat(&self, kind: &str, name: &str, counter: &str, n: u64) {
        wait::try_until(
            DEADLINE,
            &format!("{kind}.{name}.{counter} to reach {n}"),
            || format!("it is {}:\n{}", self.stat(kind, name, counter), self.log()),
            || Ok((self.stat(kind, name, counter) >= n).then_some(())),
        )
        .or_panic();
    }
}

impl Drop for Daemon {
    /// SIGKILL: a test that drops its daemon is done with it, whatever it was doing.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill();
        }
    }
}

/// `logwell stats --json --socket SOCKET` through the real client, parsed; `None` while the
/// daemon does not answer.
fn stats_json(socket: &Path) -> Option<serde_json::Value> {
    testkit::logwelld::stats(env!("CARGO_BIN_EXE_logwell"), socket)
}

/// Waits until `done` holds; on failure says `what` was awaited and shows `log()` (a
/// daemon's diagnostics, or `String::new`).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    wait::try_until(DEADLINE, what, log, || Ok(done().then_some(()))).or_panic()
}

/// Waits until `ready` returns a value; on failure says `what` was awaited and shows
/// `log()`.
pub fn wait_for<T>(
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
    log: impl Fn() -> String,
) -> T {
    wait::try_until(DEADLINE, what, log, || Ok(ready())).or_panic()
}

/// Waits for a client process this test started (`openssl s_client`, `curl`) to exit; on
/// failure says `what` was awaited and shows `log()`.
pub fn wait_child(child: &mut Child, what: &str, log: impl Fn() -> String) -> ExitStatus {
    wait::try_until(DEADLINE, what, log, || {
        child.try_wait().map_err(|e| e.to_string())
    })
    .or_panic()
}

/// Waits until `path` holds at least `n` lines; returns its content. `log` is shown on
/// failure.
pub fn wait_lines(path: &Path, n: usize, log: impl Fn() -> String) -> String {
    wait::lines(path, n, DEADLINE, log).or_panic()
}

/// Runs the real util-linux `logger` and asserts it succeeded.
pub fn logger(args: &[&str]) -> Output {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("logger (util-linux) is installed");
    assert!(
        out.status.success(),
        "logger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The real `logger` sending `text` with `tag` over TCP to 127.0.0.1:`port`.
pub fn logger_tcp(port: u16, tag: &str, text: &str) -> Output {
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-t",
        tag,
        "--",
        text,
    ])
}

/// The real `logger` sending each of `lines` with `tag`, in order, over one TCP
/// connection to 127.0.0.1:`port` (it reads them from standard input). Separate
/// connections are separate input tasks, so only this keeps their order.
pub fn logger_tcp_lines(port: u16, tag: &str, lines: &[&str]) -> Output {
    let mut child = Command::new("logger")
        .args([
            "--tcp",
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-t",
            tag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logger (util-linux) is installed");
    let mut input = child.stdin.take().unwrap();
    for line in lines {
        assert!(!line.contains('\n'), "one message per line: {line:?}");
        writeln!(input, "{line}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "logger {lines:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sends raw bytes in one TCP connection, then closes it.
pub fn tcp_send(port: u16, bytes: &[u8]) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
}

/// Sends one UDP datagram to 127.0.0.1.
pub fn udp_send(port: u16, bytes: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(bytes, ("127.0.0.1", port)).unwrap();
}

/// This host's short name, as logwelld writes it for local messages.
pub fn hostname() -> String {
    let h = nix_hostname();
    h.split('.').next().unwrap().to_string()
}

fn nix_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(r, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The regex of an RFC 3339 timestamp with microseconds, as logwelld writes reception times.
pub const RFC3339_MICROS: &str = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d";

/// Asserts that `line` matches the regex `pattern` entirely.
pub fn assert_line(line: &str, pattern: &str) {
    let re = regex::Regex::new(&format!("^{pattern}$")).unwrap();
    assert!(
        re.is_match(line),
        "line\n  {line:?}\ndoes not match\n  {pattern:?}"
    );
}

/// A client process started by a test (`curl -N`, `nc`, `logwell follow`) whose standard
/// output is collected line by line on a thread; killed (by its PID) when dropped.
pub struct Streamed {
    child: Proc,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Streamed {
    /// Starts `cmd` with its output collected.
    pub fn spawn(mut cmd: Command) -> Streamed {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = Proc::spawn_as_set("the client", cmd).or_panic();
        let out = child.child_mut().stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                sink.lock().unwrap().push(l);
            }
        });
        Streamed { child, lines }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until the lines so far satisfy `done`; returns them.
    pub fn wait_until(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        wait::try_until(
            DEADLINE,
            what,
            || format!("got {:#?}", self.lines()),
            || {
                let lines = self.lines();
                Ok(done(&lines).then_some(lines))
            },
        )
        .or_panic()
    }

    /// Waits until a line contains `text`; returns every line so far.
    pub fn wait_for(&self, text: &str) -> Vec<String> {
        self.wait_until(&format!("a line with `{text}`"), |l| {
            l.iter().any(|l| l.contains(text))
        })
    }

    /// The client's process id.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Sends the client a signal (it is ours: we started it).
    pub fn signal(&self, sig: i32) {
        self.child.signal(sig).or_panic();
    }

    /// Writes to the client's standard input.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.child_mut().stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the client to exit by itself; returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let lines = self.lines.clone();
        let child = self.child.child_mut();
        wait::try_until(
            DEADLINE,
            "the client to exit",
            || format!("got {:#?}", lines.lock().unwrap()),
            || child.try_wait().map_err(|e| e.to_string()),
        )
        .or_panic()
    }
}

impl Drop for Streamed {
    /// SIGKILL: a test that drops its client is done with it.
    fn drop(&mut self) {
        self.child.kill();
    }
}

/// The resident set size of process `pid` (one this test started), in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The peak resident set size of process `pid` since it started (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: i32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Whether a test whose precondition is missing (`why`, `None` when met) may run: it is
/// skipped, saying why, except under `CI=true`, where a missing precondition fails it.
pub fn precondition(test: &str, why: Option<&str>) -> bool {
    let Some(why) = why else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}, and CI=true"
    );
    eprintln!("{test}: skipped: {why}");
    false
}

/// `logwelld --check-config` refuses `text` (exit 1), saying each of `wants`; its stderr.
pub fn refused(text: &str, wants: &[&str]) -> String {
    let (code, err) = check_config(text);
    assert_eq!(code, Some(1), "{err}");
    for want in wants {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    err
}

/// `logwelld --check-config` on a config file holding `text`: its exit code and stderr.
pub fn check_config(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logwell.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
