//! rsyslogd and syslog-ng, the real peers the tests and the comparison benchmark run against.
//! They are not installed (rsyslog and syslog-ng-core conflict as packages): `scripts/peers.sh
//! DIR` unpacks them and writes `DIR/env` (`RSYSLOGD=…`, `SYSLOG_NG=…`, their module and
//! library directories). This module finds them and builds the command that runs each in the
//! foreground on a config, pid file and control files in a directory of the caller's; the
//! configs themselves belong to each test or case.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The peers `scripts/peers.sh` unpacked.
pub struct Peers {
    vars: HashMap<String, String>,
}

impl Peers {
    /// The peers under `LOGWELL_PEERS_DIR`, `None` when it is unset.
    pub fn from_env() -> Result<Option<Peers>, String> {
        match std::env::var_os("LOGWELL_PEERS_DIR") {
            Some(dir) => Peers::load(Path::new(&dir)).map(Some),
            None => Ok(None),
        }
    }

    /// The peers under `LOGWELL_PEERS_DIR`, or else fetched into `target/peers` of the
    /// repository at `root` (the target directory is `CARGO_TARGET_DIR` when set) by running
    /// its `scripts/peers.sh`.
    pub fn from_env_or_fetch(root: &Path) -> Result<Peers, String> {
        if let Some(p) = Peers::from_env()? {
            return Ok(p);
        }
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let dir = target.join("peers");
        eprintln!("fetching rsyslog and syslog-ng with scripts/peers.sh");
        let status = Command::new(root.join("scripts/peers.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("scripts/peers.sh: {e}"))?;
        if !status.success() {
            return Err(format!(
                "scripts/peers.sh {} failed: {status}",
                dir.display()
            ));
        }
        Peers::load(&dir)
    }

    /// The peers in `dir` (its `env` file).
    pub fn load(dir: &Path) -> Result<Peers, String> {
        let env = dir.join("env");
        let text = std::fs::read_to_string(&env).map_err(|e| {
            format!(
                "{}: {e}; run scripts/peers.sh {}",
                env.display(),
                dir.display()
            )
        })?;
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Peers { vars })
    }

    /// The path `env` gives for `key` (`RSYSLOGD`, `SYSLOG_NG_MODDIR`…), which must exist.
    pub fn get(&self, key: &str) -> Result<PathBuf, String> {
        let v = self
            .vars
            .get(key)
            .ok_or_else(|| format!("no {key} in the peers' env file: rerun scripts/peers.sh"))?;
        let p = PathBuf::from(v);
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "{} is missing: rerun scripts/peers.sh",
                p.display()
            ))
        }
    }

    /// `rsyslogd -n -f CONF -M MODDIR -i DIR/rsyslog.pid`: in the foreground, on `conf`.
    pub fn rsyslogd(&self, conf: &Path, dir: &Path) -> Result<Command, String> {
        let mut c = Command::new(self.get("RSYSLOGD")?);
        c.arg("-n")
            .arg("-f")
            .arg(conf)
            .arg("-M")
            .arg(self.get("RSYSLOG_MODDIR")?)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"));
        Ok(c)
    }

    /// `syslog-ng -F --no-caps -f CONF` with its modules and libraries, and its pid, control
    /// and persist files in `dir`.
    pub fn syslog_ng(&self, conf: &Path, dir: &Path) -> Result<Command, String> {
        let mut c = Command::new(self.get("SYSLOG_NG")?);
        c.env("LD_LIBRARY_PATH", self.get("SYSLOG_NG_LIBDIR")?)
            .arg("-F")
            .arg("--no-caps")
            .arg("-f")
            .arg(conf)
            .arg("--module-path")
            .arg(self.get("SYSLOG_NG_MODDIR")?)
            .arg("-p")
            .arg(dir.join("syslog-ng.pid"))
            .arg("-c")
            .arg(dir.join("syslog-ng.ctl"))
            .arg("-R")
            .arg(dir.join("syslog-ng.persist"));
        Ok(c)
    }

    /// The syslog-ng version a config must state (`@version: 3.38`): the name of its module
    /// directory.
    pub fn syslog_ng_version(&self) -> Result<String, String> {
        let moddir = self.get("SYSLOG_NG_MODDIR")?;
        moddir
            .file_name()
            .and_then(|v| v.to_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no version in the name", moddir.display()))
    }

    /// The first line of `rsyslogd -v` and of `syslog-ng --version`, for a report.
    pub fn versions(&self) -> (String, String) {
        let rs = self.get("RSYSLOGD").map(|p| {
            let mut c = Command::new(p);
            c.arg("-v");
            c
        });
        let ng = self.get("SYSLOG_NG").map(|p| {
            let mut c = Command::new(p);
            c.env(
                "LD_LIBRARY_PATH",
                self.get("SYSLOG_NG_LIBDIR").unwrap_or_default(),
            )
            .arg("--module-path")
            .arg(self.get("SYSLOG_NG_MODDIR").unwrap_or_default())
            .arg("--version");
            c
        });
        (
            rs.map(first_line).unwrap_or_default(),
            ng.map(first_line).unwrap_or_default(),
        )
    }
}

/// The first line a command prints, without the `compiled with:` rsyslog appends.
pub fn first_line(mut c: Command) -> String {
    c.output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches("compiled with:")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}
