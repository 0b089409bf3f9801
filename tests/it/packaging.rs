//! The systemd unit (`packaging/systemd/logwell.service`) as systemd reads it: `systemd-analyze
//! verify` in a temporary root holding the unit, the real `logwelld` at `/usr/sbin/logwelld`,
//! `/bin/kill` and the host's system units (verify checks that every command exists and that
//! every dependency loads; no systemd as PID 1 is needed), and `systemd-analyze security
//! --offline` for the exposure score docs/systemd.md reports. The .deb itself is tested by
//! `scripts/boot-test.sh` on a booted Debian 12 (as root, on CI).

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/logwell.service")
}

fn systemd_analyze() -> Command {
    let mut c = Command::new("systemd-analyze");
    // Warnings (an unknown directive, a bad value) are printed but do not fail verify: the
    // test fails on any output at this level.
    c.env("SYSTEMD_LOG_LEVEL", "warning");
    c
}

/// A root with what `verify` looks at: the unit in /etc/systemd/system, the binaries its
/// commands name, and the host's units (syslog.socket, the targets) in /usr/lib/systemd.
fn temp_root(unit_text: &str, with_daemon: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in [
        "usr/sbin",
        "usr/bin",
        "usr/lib/systemd",
        "etc/systemd/system",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        std::os::unix::fs::symlink(target, r.join(link)).unwrap();
    }
    let host_units = Path::new("/usr/lib/systemd/system");
    assert!(
        host_units.join("syslog.socket").exists(),
        "no /usr/lib/systemd/system/syslog.socket: install systemd (scripts/deps.sh test)"
    );
    let status = Command::new("cp")
        .arg("-r")
        .arg(host_units)
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy("/usr/bin/kill", r.join("usr/bin/kill")).unwrap();
    if with_daemon {
        std::fs::copy(env!("CARGO_BIN_EXE_logwelld"), r.join("usr/sbin/logwelld")).unwrap();
    }
    std::fs::write(r.join("etc/systemd/system/logwell.service"), unit_text).unwrap();
    root
}

fn verify(root: &Path) -> (bool, String) {
    let out = systemd_analyze()
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("logwell.service")
        .output()
        .expect("systemd-analyze (package systemd; scripts/deps.sh test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let root = temp_root(&unit, true);
    let (ok, text) = verify(root.path());
    assert!(ok, "systemd-analyze verify logwell.service:\n{text}");
}

/// The same check rejects what it should, so the test above can fail.
#[test]
fn verify_rejects_a_missing_daemon_and_a_bad_directive() {
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let root = temp_root(&unit, false);
    let (ok, text) = verify(root.path());
    assert!(!ok && text.contains("/usr/sbin/logwelld"), "{text}");

    let typo = unit.replace("ProtectSystem=strict", "ProtectSystem=strickt");
    assert_ne!(typo, unit);
    let root = temp_root(&typo, true);
    let (ok, text) = verify(root.path());
    assert!(!ok && text.contains("strickt"), "{text}");
}

#[test]
fn the_unit_has_what_the_issue_asks() {
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "LimitNOFILE=65536",
        "ExecStart=/usr/sbin/logwelld",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "Requires=syslog.socket",
        "Alias=syslog.service",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/log /var/lib/logwell",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallFilter=@system-service",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectControlGroups=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(lines.contains(&want), "the unit lacks `{want}`");
    }
    // The privileged parent relays the worker's sd_notify lines, so systemd's default
    // NotifyAccess=main holds: no other process of the service may notify.
    assert!(
        !lines.iter().any(|l| l.starts_with("NotifyAccess=")),
        "NotifyAccess is widened, though the parent relays the worker's notifications"
    );
    assert!(lines.iter().any(|l| l.starts_with("WatchdogSec=")));
    // The daemon checks its configuration as it starts: a second process would only
    // lengthen the gap of a restart (issue 23).
    assert!(
        !lines.iter().any(|l| l.starts_with("ExecStartPre=")),
        "an ExecStartPre lengthens every restart"
    );
    let caps = lines
        .iter()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet=");
    // Each capability the parent keeps is justified in a comment above the line.
    for cap in caps.split_whitespace() {
        assert!(
            lines.iter().any(|l| l.starts_with('#') && l.contains(cap)),
            "{cap} is kept without a comment saying why"
        );
    }
}

/// `systemd-analyze security --offline=true` (systemd 252, no PID 1 needed): the score the
/// systemd guide (docs/systemd.md, "Hardening") states is the one the unit gets.
#[test]
fn the_readme_states_the_units_security_score() {
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_path())
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let score = text
        .lines()
        .find_map(|l| l.strip_prefix("→ Overall exposure level for logwell.service: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "no score in:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/systemd.md"))
            .unwrap();
    let stated = format!("exposure level **{score}**");
    assert!(
        guide.contains(&stated),
        "docs/systemd.md should say `{stated}` (systemd-analyze security --offline=true packaging/systemd/logwell.service)"
    );
}

/// Issue 35: the SysV init script parses as POSIX sh (dash, Debian's /bin/sh), declares what
/// insserv and update-rc.d read, and logwell provides `$syslog`. scripts/boot-test.sh runs it
/// on a Debian booted with sysvinit.
#[test]
fn the_init_script_is_posix_sh_with_lsb_headers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sysvinit");
    let script = root.join("logwell");
    let out = Command::new("dash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&script).unwrap();
    for header in [
        "# Provides:          logwell",
        "# Required-Start:    $remote_fs $time",
        "# Default-Start:     2 3 4 5",
        "# Default-Stop:      0 1 6",
        ". /lib/lsb/init-functions",
    ] {
        assert!(
            text.contains(header),
            "no `{header}` in {}",
            script.display()
        );
    }
    for action in [
        "start)",
        "stop)",
        "reload|force-reload)",
        "restart)",
        "status)",
    ] {
        assert!(text.contains(action), "no `{action}`");
    }
    let insserv = std::fs::read_to_string(root.join("insserv.conf")).unwrap();
    assert!(
        insserv.lines().any(|l| l == "$syslog +logwell"),
        "{insserv}"
    );
}
