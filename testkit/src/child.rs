//! A process a test or benchmark started: its output captured to a file, waited on with a
//! deadline that fails early when it exits, and stopped by its PID when dropped (SIGTERM,
//! then SIGKILL after a grace period, then reaped). It never signals a process it did not
//! start.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::wait;

/// How long a process has between SIGTERM and SIGKILL, unless [`Proc::grace`] says.
pub const GRACE: Duration = Duration::from_secs(10);

/// A started process; stopped by its PID when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
    output: Option<PathBuf>,
    grace: Duration,
}

impl Proc {
    /// Starts `cmd` (named `name` in messages) with standard input closed and standard output
    /// and error both written to `output`.
    pub fn spawn(name: &str, mut cmd: Command, output: &Path) -> Result<Proc, String> {
        let file = File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
        let copy = file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(copy).stderr(file);
        let mut p = Proc::spawn_as_set(name, cmd)?;
        p.output = Some(output.to_path_buf());
        Ok(p)
    }

    /// Starts `cmd` with the standard streams it was given (by default inherited).
    pub fn spawn_as_set(name: &str, mut cmd: Command) -> Result<Proc, String> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            output: None,
            grace: GRACE,
        })
    }

    /// Sets how long [`Proc::stop`] waits after SIGTERM before SIGKILL.
    pub fn grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    /// The name given at the start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (of a process that may have exited but is not reaped yet).
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// What it printed so far (empty when its output was not captured).
    pub fn output(&self) -> String {
        self.output
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The child itself, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("not stopped")
    }

    /// Sends it a signal.
    pub fn signal(&self, sig: i32) -> Result<(), String> {
        let Some(child) = self.child.as_ref() else {
            return Err(format!("{} was already stopped", self.name));
        };
        // SAFETY: kill(2) on the PID of a child this process started and has not reaped.
        if unsafe { libc::kill(child.id() as i32, sig) } == 0 {
            Ok(())
        } else {
            Err(format!(
                "kill {sig} {}: {}",
                self.name,
                std::io::Error::last_os_error()
            ))
        }
    }

    /// Its exit status, once it has exited (reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Polls `ready` until it holds, failing early (with the output) when the process exits.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let what = format!("{} to {what}", self.name);
        let output = self.output.clone();
        let name = self.name.clone();
        let child = self.child.as_mut().expect("not stopped");
        wait::try_until(
            timeout,
            &what,
            || read(output.as_deref()),
            || {
                if ready() {
                    return Ok(Some(()));
                }
                match child.try_wait() {
                    Ok(Some(status)) => Err(format!(
                        "{name} exited with {status}:\n{}",
                        read(output.as_deref())
                    )),
                    _ => Ok(None),
                }
            },
        )
    }

    /// Waits until `path` exists (a socket it creates).
    pub fn wait_path(&mut self, path: &Path, timeout: Duration) -> Result<(), String> {
        self.wait_ready(timeout, &format!("create {}", path.display()), || {
            path.exists()
        })
    }

    /// Waits until it accepts TCP connections on 127.0.0.1:`port`.
    pub fn wait_port(&mut self, port: u16, timeout: Duration) -> Result<(), String> {
        self.wait_ready(timeout, &format!("listen on 127.0.0.1:{port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    /// Waits for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let what = format!("{} to exit", self.name);
        let output = self.output.clone();
        let child = self.child.as_mut().expect("not stopped");
        wait::try_until(
            timeout,
            &what,
            || read(output.as_deref()),
            || child.try_wait().map_err(|e| e.to_string()),
        )
    }

    /// SIGTERM (and SIGCONT, should it be stopped), SIGKILL after the grace period, then
    /// reaps it; its exit status, `None` when it was already stopped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let pid = child.id() as i32;
        // SAFETY: kill(2) on the PID of a child this process started and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::kill(pid, libc::SIGCONT);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read(path: Option<&Path>) -> String {
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exits_ends_a_wait_early_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo going away; exit 3"]);
        let mut p = Proc::spawn("sh", cmd, &dir.path().join("out")).unwrap();
        let err = p
            .wait_ready(Duration::from_secs(30), "never", || false)
            .unwrap_err();
        assert!(err.starts_with("sh exited with exit status: 3"), "{err}");
        assert!(err.contains("going away"), "{err}");
    }

    #[test]
    fn a_dropped_process_is_stopped_and_reaped() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let p = Proc::spawn_as_set("sleep", cmd).unwrap();
        let pid = p.pid();
        drop(p);
        // Reaped: the PID names no process of ours any more.
        // SAFETY: signal 0 only checks that the process exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    }
}
