//! systemd integration without systemd: the sd_notify messages are captured on a test socket
//! (path and abstract), and a socket is passed with `LISTEN_FDS`/`LISTEN_PID`, the way
//! `syslog.socket` passes `/run/systemd/journal/syslog`.

use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{Daemon, Launcher, DEADLINE};

const CONFIG: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[output.all]
type = "file"
path = "{dir}/all.log"
flush_interval_ms = 20

[[rule]]
output = "all"
"#;

/// Receives notifications until one contains `wanted`; returns everything received.
pub(crate) fn wait_for(sock: &UnixDatagram, seen: &mut Vec<String>, wanted: &str) {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.contains(wanted)) {
        assert!(Instant::now() < deadline, "no {wanted:?} among {seen:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

pub(crate) fn with_env(vars: Vec<(String, String)>) -> Launcher {
    Box::new(move |config| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logwelld"));
        c.arg("--config").arg(config);
        for (k, v) in &vars {
            c.env(k, v);
        }
        c
    })
}

#[test]
fn sd_notify_says_ready_reloading_watchdog_and_stopping_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let launcher = with_env(vec![
        ("NOTIFY_SOCKET".into(), path.to_str().unwrap().into()),
        ("WATCHDOG_USEC".into(), "400000".into()),
    ]);
    let mut d = Daemon::start_launched(CONFIG, |_| {}, launcher);
    let mut seen = Vec::new();
    wait_for(&sock, &mut seen, "READY=1");
    assert!(seen[0].contains("STATUS=1 inputs, 1 outputs"), "{seen:?}");
    wait_for(&sock, &mut seen, "WATCHDOG=1");
    d.signal(libc::SIGHUP);
    wait_for(&sock, &mut seen, "RELOADING=1");
    let reloading = seen.iter().position(|m| m.contains("RELOADING=1")).unwrap();
    assert!(seen[reloading].contains("MONOTONIC_USEC="), "{seen:?}");
    // READY=1 again once the reload is done.
    let deadline = Instant::now() + DEADLINE;
    while !seen[reloading..].iter().any(|m| m.contains("READY=1")) {
        assert!(
            Instant::now() < deadline,
            "no READY=1 after RELOADING=1: {seen:?}"
        );
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(d.stop().success());
    wait_for(&sock, &mut seen, "STOPPING=1");
}

#[test]
fn sd_notify_reaches_an_abstract_socket() {
    let name = format!("logwell-test-{}", std::process::id());
    let sock =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _d = Daemon::start_launched(
        CONFIG,
        |_| {},
        with_env(vec![("NOTIFY_SOCKET".into(), format!("@{name}"))]),
    );
    wait_for(&sock, &mut Vec::new(), "READY=1");
}

#[test]
fn a_socket_passed_by_systemd_is_used_and_left_in_place() {
    // The "systemd" side: bind the socket, pass it as fd 3 with LISTEN_FDS and LISTEN_PID
    // (the shell sets LISTEN_PID to its own PID, which logwelld keeps when the shell execs it).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syslog");
    let passed = UnixDatagram::bind(&path).unwrap();
    let fd = passed.as_raw_fd();
    let launcher: Launcher = Box::new(move |config| {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=syslog exec "$0" --config "$1""#)
            .arg(env!("CARGO_BIN_EXE_logwelld"))
            .arg(config);
        // SAFETY: dup2 is async-signal-safe; fd stays open in the parent until after spawn.
        unsafe {
            c.pre_exec(move || {
                // dup2 clears close-on-exec on the copy; when the socket is fd 3 already
                // there is no copy, so clear it by hand.
                let r = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    });
    let template = format!(
        r#"
[input.forwarded]
type = "unix_datagram"
path = "{}"

[output.all]
type = "file"
path = "{{dir}}/all.log"
format = "json"
flush_interval_ms = 20

[[rule]]
output = "all"
"#,
        path.display()
    );
    let mut d = Daemon::start_launched(&template, |_| {}, launcher);
    // journald's forwarding format: no host name, the tag and pid in the header.
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .send_to(
            b"<30>Nov 21 09:40:47 myapp[31181]: forwarded by journald",
            &path,
        )
        .unwrap();
    let text = d.wait_lines(&d.path("all.log"), 1);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["appname"], "myapp");
    assert_eq!(line["procid"], "31181");
    assert_eq!(line["facility"], "daemon");
    assert_eq!(line["input"], "forwarded");
    assert_eq!(
        line["uid"],
        unsafe { libc::getuid() },
        "credentials from SCM_CREDENTIALS"
    );
    assert!(
        d.log().contains("using the socket systemd passed"),
        "{}",
        d.log()
    );
    assert!(d.stop().success());
    assert!(
        path.exists(),
        "a passed socket's file belongs to systemd: left in place"
    );
    drop(passed);
}
