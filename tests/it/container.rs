//! logwelld as a container's logger (issue 35): PID 1 of a PID namespace of its own, in a mount
//! namespace whose `/dev` and `/run` are private and empty, as in a container without
//! systemd. It binds `/dev/log` itself, `logger` reaches it there, orphans are reaped, and
//! SIGTERM stops it with every accepted message written. The shipped `etc/container.toml` is
//! the config, with `/var/log` moved into the test's directory.
//!
//! Needs root (namespaces, mounts, `nsenter`); under `CI=true` a missing precondition fails.

use std::path::Path;
use std::process::Command;

use crate::util::{wait_for, wait_until, Daemon, Launcher};

/// Makes `/dev` (with its pseudo devices bound in) and `/run` private and empty, then runs
/// logwelld as the namespace's PID 1.
const CONTAINER: &str = r#"set -e
host=$(mktemp -d)
mount --rbind /dev "$host"
mount -t tmpfs -o mode=0755 tmpfs /dev
for n in null zero full random urandom; do touch /dev/$n; mount --bind "$host/$n" /dev/$n; done
umount -l "$host"; rmdir "$host"
mount -t tmpfs -o mode=0755 tmpfs /run
exec "$@"
"#;

fn can_run(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("needs root")
    } else if Command::new("unshare").arg("--version").output().is_err() {
        Some("needs util-linux's unshare")
    } else {
        None
    };
    crate::util::precondition(test, why)
}

fn in_container() -> Launcher {
    Box::new(|config: &Path| {
        let mut c = Command::new("unshare");
        c.args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--mount",
            "--kill-child",
            "--",
            "sh",
            "-c",
            CONTAINER,
            "sh",
            env!("CARGO_BIN_EXE_logwelld"),
            "--config",
        ])
        .arg(config);
        c
    })
}

/// etc/container.toml, its files in the test's directory; `/dev/log` stays `/dev/log`.
fn config() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/container.toml"))
        .unwrap()
        .replace(
            "[daemon]\ncontrol_socket = \"/run/logwell/control.sock\"\n",
            "",
        )
        .replace("/var/log/", "{dir}/")
}

/// The host PID of the namespace's PID 1 (unshare's only child).
fn init_pid(d: &Daemon) -> i32 {
    let p = d.pid();
    let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

/// The children of `pid`, as (host PID, command name, state).
fn children(pid: i32) -> Vec<(i32, String, char)> {
    let list =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace()
        .filter_map(|c| {
            let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).ok()?;
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            Some((c.parse().ok()?, name.to_string(), rest.chars().next()?))
        })
        .collect()
}

/// Runs a shell command inside logwelld's namespaces.
fn nsenter(init: i32, script: &str) -> std::process::Output {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &init.to_string(),
            "-m",
            "-p",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    out
}

fn logwelld_as_pid_1(d: &mut Daemon) {
    let init = init_pid(d);
    let inside = nsenter(init, "cat /proc/1/comm; stat -c %F /dev/log");
    let inside = String::from_utf8_lossy(&inside.stdout);
    assert_eq!(inside, "logwelld\nsocket\n", "{}", d.log());
    let s = d.stats_json().unwrap();
    assert_eq!(s["inputs"]["devlog"]["state"], "running", "{s}");

    // glibc's syslog() path: logger through /dev/log, one message per line of its input.
    nsenter(
        init,
        "logger -p auth.info -t sshd 'Accepted publickey for root'",
    );
    nsenter(init, "seq 1 500 | logger -p user.info -t app");
    d.wait_lines(&d.path("auth.log"), 1);

    // An orphan is adopted by PID 1, and reaped when it ends: no zombie is left. It lives
    // until this test ends it, so a slow machine cannot miss the adoption.
    nsenter(init, "sleep 600 </dev/null >/dev/null 2>&1 & exit 0");
    let orphan = || {
        children(init)
            .into_iter()
            .find(|(_, name, _)| name == "sleep")
    };
    let pid = wait_for(
        "the orphan to be adopted",
        || orphan().map(|(pid, _, _)| pid),
        String::new,
    );
    // SAFETY: kill(2) on the orphan this test started in its own namespace.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    wait_until(
        "the orphan to be reaped",
        || orphan().is_none(),
        || format!("it stayed a zombie: {:?}", orphan()),
    );

    // SIGTERM to PID 1 (`docker stop`): every message it accepted is written.
    // SAFETY: kill(2) on the PID 1 of the namespace this test created.
    assert_eq!(unsafe { libc::kill(init, libc::SIGTERM) }, 0);
    let status = d.wait_exit();
    assert!(status.success(), "{status}:\n{}", d.log());
    let auth = std::fs::read_to_string(d.path("auth.log")).unwrap();
    assert!(auth.contains("sshd: Accepted publickey for root"), "{auth}");
    let syslog = std::fs::read_to_string(d.path("syslog")).unwrap();
    let numbers: Vec<&str> = syslog
        .lines()
        .filter(|l| l.contains(" app: "))
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    let want: Vec<String> = (1..=500).map(|i| i.to_string()).collect();
    assert_eq!(numbers, want, "{}", d.log());
}

/// What the host's `/dev/log` is (nothing, journald's link, a socket): the same after.
fn host_dev_log() -> Option<(u64, bool)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata("/dev/log")
        .ok()
        .map(|m| (m.ino(), m.file_type().is_symlink()))
}

#[test]
fn container_logwelld_as_pid_1_binds_dev_log_reaps_orphans_and_stops_on_sigterm() {
    if !can_run("container_logwelld_as_pid_1") {
        return;
    }
    let host = host_dev_log();
    let mut d = Daemon::start_launched(&config(), |_| {}, in_container());
    logwelld_as_pid_1(&mut d);
    assert_eq!(host_dev_log(), host, "the host's /dev/log was touched");
}

#[test]
fn container_logwelld_as_pid_1_with_privilege_separation() {
    if !can_run("container_logwelld_as_pid_1_with_privilege_separation")
        || !crate::privsep::can_run("container_logwelld_as_pid_1_with_privilege_separation")
    {
        return;
    }
    let host = host_dev_log();
    let mut d = Daemon::start_privsep_launched(&config(), |_| {}, in_container());
    logwelld_as_pid_1(&mut d);
    assert_eq!(host_dev_log(), host, "the host's /dev/log was touched");
    assert!(
        d.log().contains("worker: privileges dropped"),
        "{}",
        d.log()
    );
}
