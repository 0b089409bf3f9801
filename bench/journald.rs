//! A namespaced `systemd-journald` for the `journal` case, as `tests/it/journal.rs` starts
//! one: `systemd-journald NAMESPACE` as root, logging to its own files in a temporary
//! directory, kept from exiting after 30 s idle by an open stdout stream, stopped by its PID
//! and its journal files removed when dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JOURNALD: &str = "/lib/systemd/systemd-journald";
/// Longest journald may take to open its sockets, and to stop.
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct Journald {
    pub ns: String,
    child: Child,
    machine_id: String,
    /// An open stdout stream: a namespace's journald exits after 30 s without a client.
    _keepalive: UnixStream,
    dir: tempfile::TempDir,
}

impl Journald {
    /// Starts an instance on a fresh namespace, or says why it cannot.
    pub fn start() -> Result<Journald, String> {
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
        let ns = format!("logwellbench{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("logwell-e2e-journald-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let file = |name: &str| {
            std::fs::File::create(dir.path().join(name)).map_err(|e| format!("{name}: {e}"))
        };
        let child = Command::new(JOURNALD)
            .arg(&ns)
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(file("journald.log")?)
            .stderr(file("journald.err")?)
            .spawn()
            .map_err(|e| format!("cannot start {JOURNALD}: {e}"))?;
        let (keepalive, _) = UnixStream::pair().map_err(|e| e.to_string())?;
        let mut j = Journald {
            ns,
            child,
            machine_id,
            _keepalive: keepalive,
            dir,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = j.child.try_wait() {
                return Err(format!(
                    "systemd-journald exited with {status}: {}",
                    j.output()
                ));
            }
            if let Ok(s) = j.connect_stdout("lw-keepalive") {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What journald printed.
    pub fn output(&self) -> String {
        let mut s =
            std::fs::read_to_string(self.dir.path().join("journald.log")).unwrap_or_default();
        s += &std::fs::read_to_string(self.dir.path().join("journald.err")).unwrap_or_default();
        s
    }

    /// `/run/systemd/journal.NS/socket`: the native protocol.
    pub fn native_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.ns))
    }

    /// A stdout stream, as `systemd-cat` opens one.
    fn connect_stdout(&self, identifier: &str) -> std::io::Result<UnixStream> {
        let mut s = UnixStream::connect(format!("/run/systemd/journal.{}/stdout", self.ns))?;
        // identifier, unit, priority, level prefix, forward to syslog, kmsg, console.
        write!(s, "{identifier}\n\n6\n0\n0\n0\n0\n")?;
        Ok(s)
    }

    /// `journalctl --namespace NS -t IDENTIFIER -o cat ARGS…`: the messages, one a line.
    pub fn messages(&self, identifier: &str, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut child = Command::new("journalctl")
            .args([
                "--namespace",
                &self.ns,
                "-q",
                "--no-pager",
                "-o",
                "cat",
                "-t",
            ])
            .arg(identifier)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run journalctl: {e}"))?;
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_end(&mut out)
            .map_err(|e| format!("journalctl: {e}"))?;
        let status = child.wait().map_err(|e| format!("journalctl: {e}"))?;
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("journalctl exited with {status}: {err}"));
        }
        Ok(out)
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of the journald this benchmark started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + START_DEADLINE;
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
