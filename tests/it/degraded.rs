//! A fault in one input's environment never stops logging: a port in use or a kmsg device
//! that is missing degrades that input alone. The daemon starts, serves its other inputs,
//! says so once in its log with a hint that names the real cause, shows the input as
//! `degraded` in `logwell stats`, `/metrics` and `STATUS=`, and binds it again at a reload.
//! `--check-config` warns about such faults and still succeeds.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use crate::systemd::{wait_for, with_env};
use crate::util::{logger, udp_send, wait_until, Daemon};

/// What must keep working beside the input whose environment fails: a local socket and the
/// file it writes to.
const LOCAL: &str = r#"
[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.all]
type = "file"
path = "{dir}/all.log"
flush_interval_ms = 20

[[rule]]
output = "all"
"#;

/// A UDP input on a port the test holds.
const PORT_TAKEN: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
"#;

/// A kmsg input told to read a device that does not exist here, as in a container.
const NO_DEVICE: &str = r#"
[input.kernel]
type = "kmsg"
path = "{dir}/no-such-kmsg"
even_with_journald = true
"#;

/// Waits until input `name`'s state in `logwell stats --json` is `state`.
fn wait_state(d: &Daemon, name: &str, state: &str) -> serde_json::Value {
    d.wait_for(&format!("input {name} to become {state}"), || {
        let s = d.stats_json().expect("daemon answers");
        (s["inputs"][name]["state"] == state).then(|| s["inputs"][name].clone())
    })
}

#[test]
fn a_port_in_use_degrades_only_its_input_and_a_reload_binds_it() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut d = Daemon::start_launched(
        &format!("{PORT_TAKEN}{LOCAL}"),
        |_| {},
        with_env(vec![(
            "NOTIFY_SOCKET".into(),
            notify_path.to_str().unwrap().into(),
        )]),
    );
    // The test kit picks the port as it starts the daemon: stop it, take the port, start
    // the daemon again on it.
    assert!(d.stop().success());
    let taken = std::net::UdpSocket::bind(("127.0.0.1", d.port)).unwrap();
    d.restart();
    let log = d.log();
    let port = d.port;
    assert!(
        log.contains(&format!("input `udp`: cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains("hint: another program"), "{log}");
    assert!(log.contains("the others run on"), "{log}");
    let udp = wait_state(&d, "udp", "degraded");
    assert!(
        udp["reason"].as_str().unwrap().contains("cannot listen on"),
        "{udp}"
    );
    assert_eq!(udp["faults"], 1, "{udp}");
    assert_eq!(wait_state(&d, "local", "running")["faults"], 0);
    // STATUS= names the degraded input.
    let mut seen = Vec::new();
    wait_for(&notify, &mut seen, "1 degraded: udp");
    // The local socket works meanwhile.
    let sock = d.path("log.sock");
    let out = logger(&["-u", sock.to_str().unwrap(), "local while udp is degraded"]);
    assert!(out.status.success());
    d.wait_lines(&d.path("all.log"), 1);
    // `logwell stats` says it in words.
    let text = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["stats", "--socket"])
        .arg(d.path("control.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("degraded: input `udp`: cannot listen"),
        "{text}"
    );
    // The port is free again: a reload binds it.
    drop(taken);
    d.signal(libc::SIGHUP);
    wait_state(&d, "udp", "running");
    udp_send(port, b"<13>Dec  7 10:00:00 host app: after the reload");
    let all = d.wait_lines(&d.path("all.log"), 2);
    assert!(all.contains("after the reload"), "{all}");
}

#[test]
fn a_missing_kmsg_device_degrades_only_its_input_with_a_hint_about_devices() {
    let mut d = Daemon::start(&format!("{NO_DEVICE}{LOCAL}"));
    let log = d.log();
    assert!(
        log.contains("input `kernel`: cannot open") && log.contains("No such file or directory"),
        "{log}"
    );
    assert!(
        log.contains("hint: this system has no such device"),
        "{log}"
    );
    assert!(!log.contains("directory is not writable"), "{log}");
    let kernel = wait_state(&d, "kernel", "degraded");
    assert_eq!(kernel["faults"], 1, "{kernel}");
    let sock = d.path("log.sock");
    assert!(
        logger(&["-u", sock.to_str().unwrap(), "local without kmsg"])
            .status
            .success()
    );
    let all = d.wait_lines(&d.path("all.log"), 1);
    assert!(all.contains("local without kmsg"), "{all}");
    // A reload tries again (and counts the fault again: the device is still missing).
    d.signal(libc::SIGHUP);
    wait_until(
        "a second try",
        || d.stats_json().unwrap()["inputs"]["kernel"]["faults"] == 2,
        || d.log(),
    );
    // --check-config warns and succeeds.
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .arg("--check-config")
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: input `kernel`: cannot open") && err.contains("no such device"),
        "{err}"
    );
    assert!(d.stop().success());
}
