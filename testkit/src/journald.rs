//! A private `systemd-journald`: `systemd-journald NAMESPACE` as root, on a namespace of its
//! own, logging to its own files, kept from exiting after 30 s idle by an open stdout stream,
//! stopped by its PID and its journal files and sockets removed when dropped. It is written
//! to with journald's native protocol, its stdout streams, or a real client (`systemd-cat`,
//! `logger --journald`) in a mount namespace where its sockets are the system journal's, and
//! read back with `journalctl --namespace`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::child::Proc;

const JOURNALD: &str = "/lib/systemd/systemd-journald";
/// Longest journald may take to open its sockets, and to stop.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A `systemd-journald` serving one namespace, started by this process.
pub struct Journald {
    /// The namespace (`journalctl --namespace NS`, `namespace = "NS"` in logwelld's config).
    pub ns: String,
    child: Proc,
    machine_id: String,
    /// An open stdout stream: a namespace's journald exits when no client has been connected
    /// for 30 s, which a slow run could reach.
    _keepalive: UnixStream,
    _dir: tempfile::TempDir,
}

impl Journald {
    /// Starts an instance on a fresh namespace named `PREFIX<pid>x<n>`, or says why it
    /// cannot (not root, journald missing, it did not open its sockets).
    pub fn start(prefix: &str) -> Result<Journald, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
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
            "{prefix}{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("logwell-journald-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let mut cmd = Command::new(JOURNALD);
        cmd.arg(&ns).env("SYSTEMD_LOG_TARGET", "console");
        let child = Proc::spawn("systemd-journald", cmd, &dir.path().join("journald.log"))?
            .grace(START_DEADLINE);
        let (keepalive, _) = UnixStream::pair().map_err(|e| e.to_string())?;
        let mut j = Journald {
            ns,
            child,
            machine_id,
            _keepalive: keepalive,
            _dir: dir,
        };
        // The first stream that connects is the one kept open.
        let dir = j.socket_dir();
        let mut keepalive = None;
        j.child.wait_ready(START_DEADLINE, "open its sockets", || {
            keepalive = connect_stdout(&dir, "lw-keepalive", 6).ok();
            keepalive.is_some()
        })?;
        j._keepalive = keepalive.expect("connected");
        Ok(j)
    }

    /// journald's process id.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// What journald printed.
    pub fn output(&self) -> String {
        self.child.output()
    }

    /// `/run/systemd/journal.NS`: its sockets.
    pub fn socket_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}", self.ns))
    }

    /// `/run/systemd/journal.NS/socket`: the native protocol.
    pub fn native_socket(&self) -> PathBuf {
        self.socket_dir().join("socket")
    }

    /// A stdout stream, as `systemd-cat` opens one: each line written becomes an entry with
    /// `identifier` and `priority`.
    pub fn connect_stdout(&self, identifier: &str, priority: u8) -> std::io::Result<UnixStream> {
        connect_stdout(&self.socket_dir(), identifier, priority)
    }

    /// Sends one entry in journald's native protocol from `sock`. A value with a newline or
    /// a NUL is sent in the binary form.
    pub fn send(&self, sock: &UnixDatagram, fields: &[(&str, &[u8])]) -> std::io::Result<()> {
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
        sock.send_to(&d, self.native_socket()).map(drop)
    }

    /// Runs the real `systemd-cat` against this namespace (this systemd's `systemd-cat` has
    /// no `--namespace`): see [`Journald::run_with_journal`].
    pub fn systemd_cat(&self, scratch: &Path, args: &[&str], input: &str) -> Result<(), String> {
        self.run_with_journal(scratch, "systemd-cat", args, input)
    }

    /// Runs `program ARGS` with `input` on its standard input in a mount namespace of its
    /// own, where this namespace's socket directory is mounted on `/run/systemd/journal`
    /// (through `scratch`, an empty directory path it creates).
    pub fn run_with_journal(
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
        std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
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
            .expect("piped")
            .write_all(input.as_bytes())
            .map_err(|e| format!("{program}'s input: {e}"))?;
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{program}: {e}"))?;
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

/// A stdout stream to the journald whose sockets are in `dir`.
fn connect_stdout(dir: &Path, identifier: &str, priority: u8) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(dir.join("stdout"))?;
    // identifier, unit, priority, level prefix, forward to syslog, kmsg, console.
    write!(s, "{identifier}\n\n{priority}\n0\n0\n0\n0\n")?;
    Ok(s)
}

impl Drop for Journald {
    fn drop(&mut self) {
        self.child.stop();
        for dir in [
            format!("/var/log/journal/{}.{}", self.machine_id, self.ns),
            format!("/run/log/journal/{}.{}", self.machine_id, self.ns),
            format!("/run/systemd/journal.{}", self.ns),
        ] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
