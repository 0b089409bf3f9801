//! The daemon under test, seen from outside: starting `logwelld` on a config file and
//! waiting until its control socket answers, and reading its counters with the real client
//! (`logwell stats --json`). The binaries' paths come from the caller (Cargo gives them to
//! tests and benchmarks of the logwell package as `CARGO_BIN_EXE_*`, not to this crate).

use std::path::Path;
use std::process::Command;

use crate::child::Proc;
use crate::wait::DEADLINE;

/// The two binaries: the daemon and the client.
#[derive(Clone, Copy)]
pub struct Binaries<'a> {
    /// `logwelld`.
    pub logwelld: &'a str,
    /// `logwell`.
    pub logwell: &'a str,
}

/// Starts `logwelld --config CONFIG`, its output in `log`, and waits until it answers on
/// `socket` (its `control_socket`).
pub fn start(bins: Binaries, config: &Path, socket: &Path, log: &Path) -> Result<Proc, String> {
    let mut cmd = Command::new(bins.logwelld);
    cmd.arg("--config").arg(config);
    let mut p = Proc::spawn("logwelld", cmd, log)?;
    p.wait_ready(DEADLINE, "answer on its control socket", || {
        stats(bins.logwell, socket).is_some()
    })?;
    Ok(p)
}

/// `logwell stats --json --socket SOCKET`, parsed; `None` while the daemon does not answer.
pub fn stats(logwell: &str, socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(logwell)
        .args(["stats", "--json", "--socket"])
        .arg(socket)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}
