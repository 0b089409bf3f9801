//! Privilege separation, as root: the worker runs as `_logwell` with no capabilities, the
//! root parent opens, rotates and removes files only in the output directories, and each
//! process ends when the other does. Without root these tests print why they are skipped,
//! except under `CI=true`, where the CI machine is root and skipping would hide a failure.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::OrPanic;

use crate::util::{logger, tcp_send, udp_send, wait_until, Daemon, DEADLINE};

const CONFIG: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.all]
type = "file"
path = "{dir}/log/all.log"
flush_interval_ms = 20

[output.all.rotation]
compress = "zstd"
keep = 3

[[rule]]
output = "all"
"#;

/// Whether the test can run: root, and the `_logwell` user exists (`scripts/deps.sh test`
/// creates it). Under `CI=true` a missing precondition fails the test instead.
pub(crate) fn can_run(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("needs root")
    } else if nix::unistd::User::from_name("_logwell")
        .ok()
        .flatten()
        .is_none()
    {
        Some("needs the _logwell user (scripts/deps.sh test creates it)")
    } else {
        None
    };
    crate::util::precondition(test, why)
}

/// A root-owned 0755 output directory, as `/var/log` is.
fn root_log_dir(dir: &Path) {
    let log = dir.join("log");
    std::fs::create_dir(&log).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The one child of `parent` (the worker), waiting for it to appear.
fn worker_of(parent: i32) -> i32 {
    let children = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| status_field(*pid, "PPid").as_deref() == Some(&parent.to_string()))
            .collect()
    };
    crate::util::wait_for(
        &format!("a single worker under {parent}"),
        || match children()[..] {
            [one] => Some(one),
            _ => None,
        },
        || format!("children: {:?}", children()),
    )
}

/// One line of `/proc/PID/status`, its value trimmed; `None` when the process is gone.
fn status_field(pid: i32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    match status_field(pid, "State") {
        None => true,
        Some(s) => s.starts_with('Z') || s.starts_with('X'),
    }
}

fn gid_of(group: &str) -> u32 {
    nix::unistd::Group::from_name(group)
        .unwrap()
        .unwrap()
        .gid
        .as_raw()
}

fn logwell(d: &Daemon, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .arg(args[0])
        .arg("--socket")
        .arg(d.path("control.sock"))
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logwell {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn privsep_worker_runs_unprivileged_and_the_parent_stays_root_and_single_threaded() {
    if !can_run("privsep_worker_runs_unprivileged") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, root_log_dir);
    let parent = d.pid();
    let worker = worker_of(parent);
    let field = |key: &str| status_field(worker, key).unwrap_or_else(|| panic!("no {key}"));
    let logwell_uid = nix::unistd::User::from_name("_logwell")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    for key in ["Uid", "Gid"] {
        let ids: Vec<u32> = field(key)
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 4, "{key}: {ids:?}");
        assert!(ids.iter().all(|id| *id != 0), "worker {key}: {ids:?}");
    }
    assert!(field("Uid")
        .split_whitespace()
        .all(|u| u == logwell_uid.to_string()));
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(key), "0000000000000000", "worker {key}");
    }
    assert_eq!(field("NoNewPrivs"), "1");
    // The UDP socket was bound before the drop, so its default buffer could be forced past
    // net.core.rmem_max (the worker alone would get at most that).
    assert_eq!(
        d.stat("inputs", "udp", "receive_buffer_bytes"),
        2 * (8 << 20),
        "{}",
        d.log()
    );
    let groups: Vec<u32> = field("Groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    assert!(groups.contains(&gid_of("adm")), "groups {groups:?}");
    assert!(!groups.contains(&0), "groups {groups:?}");
    // The parent: root, one thread, no network socket.
    assert_eq!(
        status_field(parent, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("0")
    );
    assert_eq!(status_field(parent, "Threads").as_deref(), Some("1"));
    let inodes = socket_inodes(parent);
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap()
        + &std::fs::read_to_string("/proc/net/udp").unwrap();
    assert!(
        !tcp.lines().skip(1).any(|l| l
            .split_whitespace()
            .nth(9)
            .is_some_and(|i| inodes.contains(&i.to_string()))),
        "the parent holds no TCP or UDP socket"
    );
    assert!(d.stop().success(), "{}", d.log());
    assert!(ended(worker));
}

/// The inode numbers of `pid`'s sockets.
fn socket_inodes(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_str()?.to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect()
}

#[test]
fn privsep_messages_land_and_files_rotate_compress_and_reopen_as_root_adm_0640() {
    if !can_run("privsep_messages_land") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, root_log_dir);
    let live = d.path("log/all.log");
    let sock = d.path("log.sock");
    let port = d.port.to_string();
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "--udp",
        "-t",
        "t",
        "over udp",
    ]);
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "--tcp",
        "-t",
        "t",
        "over tcp",
    ]);
    logger(&["-u", sock.to_str().unwrap(), "-t", "t", "over unix"]);
    let text = d.wait_lines(&live, 3);
    for m in ["over udp", "over tcp", "over unix"] {
        assert!(text.contains(m), "{m} missing from {text}");
    }
    let owned = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    let dir = std::fs::metadata(d.path("log")).unwrap();
    assert_eq!(
        (dir.uid(), dir.mode() & 0o7777),
        (0, 0o755),
        "the output directory stays root's"
    );
    assert_eq!(owned(&live), (0, gid_of("adm"), 0o640));
    // Rotation on request: the parent renames, the worker reopens a new file through it,
    // and the compressor reads the old one and writes the .zst through it.
    let said = logwell(&d, &["rotate", live.to_str().unwrap()]);
    assert!(said.contains("all.log.1"), "{said}");
    wait_until(
        "all.log.1 is compressed",
        || d.path("log/all.log.1.zst").exists() && !d.path("log/all.log.1").exists(),
        || d.log(),
    );
    assert_eq!(
        owned(&d.path("log/all.log.1.zst")),
        (0, gid_of("adm"), 0o640)
    );
    let old = String::from_utf8(
        zstd::decode_all(&std::fs::read(d.path("log/all.log.1.zst")).unwrap()[..]).unwrap(),
    )
    .unwrap();
    assert_eq!(old, text);
    tcp_send(d.port, b"<13>Nov 21 09:41:03 host t: after rotation\n");
    udp_send(d.port, b"<13>Nov 21 09:41:04 host t: after rotation too\n");
    let text = d.wait_lines(&live, 2);
    assert!(
        text.contains("after rotation\n") && text.contains("after rotation too"),
        "{text}"
    );
    assert_eq!(owned(&live), (0, gid_of("adm"), 0o640));
    // SIGHUP through the parent: files reopened, nothing refused.
    d.signal(libc::SIGHUP);
    wait_until(
        "the reload is done",
        || d.log().contains("configuration reloaded"),
        || d.log(),
    );
    logger(&["-u", sock.to_str().unwrap(), "-t", "t", "after reload"]);
    d.wait_lines(&live, 3);
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert!(d.stop().success(), "{}", d.log());
    assert!(
        !d.path("log.sock").exists() && !d.path("control.sock").exists(),
        "the parent removed the socket files"
    );
}

#[test]
fn privsep_a_path_outside_the_output_directories_is_refused() {
    if !can_run("privsep_a_path_outside") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, |dir| {
        root_log_dir(dir);
        std::fs::create_dir(dir.join("other")).unwrap();
    });
    let parent = d.pid();
    let worker = worker_of(parent);
    // A new output in another directory, read by the worker alone: a SIGHUP sent straight
    // to the worker bypasses the parent, which therefore never learned of the directory.
    let config = std::fs::read_to_string(&d.config).unwrap();
    let other = d.path("other/x.log");
    std::fs::write(
        &d.config,
        config.replace(
            "[[rule]]\noutput = \"all\"",
            &format!(
                "[output.x]\ntype = \"file\"\npath = \"{}\"\n\n[[rule]]\noutput = [\"all\", \"x\"]",
                other.display()
            ),
        ),
    )
    .unwrap();
    // SAFETY: kill(2) on the worker of the daemon this test started.
    assert_eq!(unsafe { libc::kill(worker, libc::SIGHUP) }, 0);
    wait_until(
        "the parent refuses the worker's request",
        || {
            d.log().contains("privileged parent: refused")
                && d.log().contains("x.log is not in an output directory")
        },
        || d.log(),
    );
    tcp_send(d.port, b"<13>Nov 21 09:41:03 host t: one\n");
    d.wait_lines(&d.path("log/all.log"), 1);
    assert!(
        !other.exists(),
        "the worker could not create a file the parent did not allow"
    );
    // Through the parent, the same reload is allowed: it reads the config itself.
    d.signal(libc::SIGHUP);
    wait_until("x.log exists", || other.exists(), || d.log());
    tcp_send(d.port, b"<13>Nov 21 09:41:03 host t: two\n");
    // The line the refused writer held back comes first: nothing was lost meanwhile.
    let text = d.wait_lines(&other, 2);
    assert!(
        text.contains("t: one\n") && text.ends_with("t: two\n"),
        "{text}"
    );
    assert!(d.stop().success(), "{}", d.log());
}

/// Issue 24, item 8: the parent creates files with the mode, owner and group of its own
/// copy of the configuration, whatever the worker asks, and opens no hard-linked file.
#[test]
fn privsep_the_parent_keeps_the_configured_mode_and_refuses_a_hard_link() {
    if !can_run("privsep_the_parent_keeps_the_configured_mode") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, root_log_dir);
    let live = d.path("log/all.log");
    let worker = worker_of(d.pid());
    tcp_send(d.port, b"<13>Nov 21 09:41:03 host t: one\n");
    d.wait_lines(&live, 1);
    assert_eq!(owned(&live), (0, gid_of("adm"), 0o640));
    // The worker alone reloads a config that asks for 0666 (a SIGHUP
    // straight to the worker: the parent keeps its own configuration).
    let config = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        config.replace(
            "flush_interval_ms = 20",
            "flush_interval_ms = 20\nmode = \"0666\"",
        ),
    )
    .unwrap();
    // SAFETY: kill(2) on the worker of the daemon this test started.
    assert_eq!(unsafe { libc::kill(worker, libc::SIGHUP) }, 0);
    wait_until(
        "the worker reloaded",
        || d.log().contains("configuration reloaded"),
        || d.log(),
    );
    let said = logwell(&d, &["rotate", live.to_str().unwrap()]);
    assert!(said.contains("all.log.1"), "{said}");
    tcp_send(d.port, b"<13>Nov 21 09:41:04 host t: two\n");
    d.wait_lines(&live, 1);
    assert_eq!(
        owned(&live),
        (0, gid_of("adm"), 0o640),
        "the parent's configuration, not the worker's"
    );
    // A hard link planted as the live file (it could name any file of the file system):
    // the parent refuses to open it, and the file it names is untouched.
    let secret = d.path("secret");
    std::fs::write(&secret, "secret\n").unwrap();
    let said = logwell(&d, &["rotate", live.to_str().unwrap()]);
    assert!(said.contains("all.log.1"), "{said}");
    let _ = std::fs::remove_file(&live);
    std::fs::hard_link(&secret, &live).unwrap();
    d.signal(libc::SIGHUP);
    wait_until(
        "the parent refuses the hard link",
        || d.log().contains("hard links"),
        || d.log(),
    );
    tcp_send(d.port, b"<13>Nov 21 09:41:05 host t: three\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
    let _ = d.stop();
}

#[test]
fn privsep_killing_the_parent_stops_the_worker_cleanly() {
    if !can_run("privsep_killing_the_parent") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, root_log_dir);
    let worker = worker_of(d.pid());
    tcp_send(d.port, b"<13>Nov 21 09:41:03 host t: before\n");
    d.wait_lines(&d.path("log/all.log"), 1);
    d.signal(libc::SIGKILL);
    let status = d.wait_exit();
    assert_eq!(status.code(), None, "killed");
    wait_until("the worker ends", || ended(worker), || d.log());
    wait_until(
        "the worker says it finished",
        || d.log().contains("all messages written; exiting"),
        || d.log(),
    );
}

#[test]
fn privsep_killing_the_worker_stops_the_parent() {
    if !can_run("privsep_killing_the_worker") {
        return;
    }
    let mut d = Daemon::start_privsep(CONFIG, root_log_dir);
    let worker = worker_of(d.pid());
    // SAFETY: kill(2) on the worker of the daemon this test started.
    assert_eq!(unsafe { libc::kill(worker, libc::SIGKILL) }, 0);
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", d.log());
    assert!(
        d.log().contains("the worker was killed by SIGKILL"),
        "{}",
        d.log()
    );
    assert!(
        !d.path("control.sock").exists(),
        "the parent removed the control socket"
    );
}

#[test]
fn privsep_off_runs_everything_as_root_in_one_process() {
    if !can_run("privsep_off") {
        return;
    }
    let mut d = Daemon::start_with(CONFIG, root_log_dir);
    assert_eq!(
        status_field(d.pid(), "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("0")
    );
    let children = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| status_field(*pid, "PPid").as_deref() == Some(&d.pid().to_string()))
        .count();
    assert_eq!(children, 0, "no worker without privilege separation");
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &d.port.to_string(),
        "--tcp",
        "-t",
        "t",
        "as root",
    ]);
    let text = d.wait_lines(&d.path("log/all.log"), 1);
    assert!(text.contains("as root"));
    assert!(
        d.log().contains("privilege separation is off"),
        "{}",
        d.log()
    );
    assert!(d.stop().success());
}

#[test]
fn privsep_kmsg_opened_before_the_drop_and_its_state_written_by_the_worker() {
    if !can_run("privsep_kmsg") {
        return;
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kmsg")
    {
        eprintln!("privsep_kmsg: skipped: /dev/kmsg is not readable and writable here ({e})");
        return;
    }
    let config = r#"
[input.kern]
type = "kmsg"
even_with_journald = true

[output.kern]
type = "file"
path = "{dir}/log/kern.log"
flush_interval_ms = 20

[[rule]]
output = "kern"
"#;
    let mut d = Daemon::start_privsep(config, root_log_dir);
    let marker = format!("privsep marker {}", std::process::id());
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap()
        .write_all(format!("<5>logwell-test: {marker}\n").as_bytes())
        .unwrap();
    let live = d.path("log/kern.log");
    wait_until(
        "the kernel record arrives",
        || {
            std::fs::read_to_string(&live)
                .unwrap_or_default()
                .contains(&marker)
        },
        || d.log(),
    );
    assert!(d.stop().success(), "{}", d.log());
    // The parent gave the state directory to the worker, which saved its position there.
    let uid = nix::unistd::User::from_name("_logwell")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(std::fs::metadata(d.path("state")).unwrap().uid(), uid);
    let seq = d.path("state/kmsg-kern.seq");
    assert_eq!(std::fs::metadata(&seq).unwrap().uid(), uid, "{}", d.log());
}

/// One notification and the PID of the process that sent it (`SCM_CREDENTIALS`).
fn recv_with_pid(sock: &std::os::unix::net::UnixDatagram) -> Option<(String, i32)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .ok()?;
    let pid = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
        _ => None,
    })?;
    let n = msg.bytes;
    Some((String::from_utf8_lossy(&buf[..n]).into_owned(), pid))
}

#[test]
fn privsep_sd_notify_is_relayed_by_the_parent_as_the_main_pid() {
    if !can_run("privsep_sd_notify") {
        return;
    }
    let notify_dir = tempfile::tempdir().unwrap();
    let path = notify_dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let notify = path.to_str().unwrap().to_string();
    let launcher: crate::util::Launcher = Box::new(move |config| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logwelld"));
        c.arg("--config").arg(config);
        c.env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", "400000");
        c
    });
    let mut d = Daemon::start_privsep_launched(CONFIG, root_log_dir, launcher);
    let parent = d.pid();
    let mut seen: Vec<(String, i32)> = Vec::new();
    let wait_for = |wanted: &str, seen: &mut Vec<(String, i32)>| {
        let deadline = Instant::now() + DEADLINE;
        while !seen.iter().any(|(m, _)| m.contains(wanted)) {
            assert!(Instant::now() < deadline, "no {wanted:?} among {seen:?}");
            if let Some(m) = recv_with_pid(&sock) {
                seen.push(m);
            }
        }
    };
    wait_for("READY=1", &mut seen);
    wait_for("WATCHDOG=1", &mut seen);
    d.signal(libc::SIGHUP);
    wait_for("RELOADING=1", &mut seen);
    assert!(d.stop().success(), "{}", d.log());
    wait_for("STOPPING=1", &mut seen);
    // systemd accepts only its main PID's messages (NotifyAccess=main): the parent's.
    assert!(
        seen.iter().all(|(_, pid)| *pid == parent),
        "{seen:?} not all from {parent}"
    );
    assert!(
        seen.iter().any(|(m, _)| m.contains("STATUS=3 inputs")),
        "{seen:?}"
    );
}

/// A templated output below the root-owned `log` directory; its base directory
/// (`log/remote`) is created by the parent at the first message.
const TEMPLATED: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.remote]
type = "file"
path = "{dir}/log/remote/{host}/{tag}.log"
flush_interval_ms = 20

[output.remote.rotation]
max_size = 4096
compress = "zstd"
keep = 3

[[rule]]
output = "remote"
"#;

/// An RFC 5424 frame (LF-terminated) from `host`, raw bytes so a host name can be anything.
fn frame(host: &[u8], tag: &str, text: &str) -> Vec<u8> {
    let mut f = b"<14>1 2026-11-21T10:00:00.000000Z ".to_vec();
    f.extend_from_slice(host);
    f.extend_from_slice(format!(" {tag} - - - {text}\n").as_bytes());
    f
}

/// Owner, group and permission bits.
fn owned(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether the `_logwell` user with the worker's groups (its own and `adm`) can list
/// `dir`: `ls` run as that user, as the worker's rotation and history read it.
fn worker_can_list(dir: &Path) -> bool {
    let user = nix::unistd::User::from_name("_logwell").unwrap().unwrap();
    Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg(format!("--groups={},{}", user.gid, gid_of("adm")))
        .args(["--inh-caps=-all", "ls"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("setpriv (util-linux) is installed")
        .success()
}

#[test]
fn privsep_templated_paths_land_per_host_as_root_adm_and_hostile_names_stay_inside() {
    if !can_run("privsep_templated_paths_land_per_host") {
        return;
    }
    // A second output whose names can be too long for a file name: the fallback file (in
    // its base directory, by default), created through the parent's plain-file rule.
    let config = TEMPLATED.replace(
        "[[rule]]\noutput = \"remote\"",
        "[output.pairs]\ntype = \"file\"\npath = \"{dir}/log/pairs/{host}-{host}.log\"\n\n[[rule]]\noutput = [\"remote\", \"pairs\"]",
    );
    let mut d = Daemon::start_privsep(&config, root_log_dir);
    let mut batch = Vec::new();
    for host in ["web01", "web02", "db01"] {
        batch.extend(frame(host.as_bytes(), "app", &format!("hello from {host}")));
    }
    batch.extend(frame(b"../../etc", "passwd", "hostile"));
    batch.extend(frame(b"..", "app", "dots"));
    // Longer than RFC 5424 allows: as BSD syslog, whose host names have no limit.
    batch.extend_from_slice(
        format!("<14>Nov 21 10:00:00 {} app: long\n", "x".repeat(300)).as_bytes(),
    );
    tcp_send(d.port, &batch);
    d.wait_stat("outputs", "remote", "written", 6);
    d.wait_stat("outputs", "pairs", "written", 6);
    let base = d.path("log/remote");
    let adm = gid_of("adm");
    for host in ["web01", "web02", "db01"] {
        let live = base.join(format!("{host}/app.log"));
        let text = d.wait_lines(&live, 1);
        assert!(
            text.ends_with(&format!(" {host} app: hello from {host}\n")),
            "{text}"
        );
        assert_eq!(owned(&live), (0, adm, 0o640), "{}", live.display());
        assert_eq!(owned(live.parent().unwrap()), (0, adm, 0o750));
    }
    // The base directories too were made by the parent, as the directories below them.
    assert_eq!(owned(&base), (0, adm, 0o750));
    assert_eq!(owned(&d.path("log/pairs")), (0, adm, 0o750));
    assert_eq!(owned(&d.path("log")), (0, 0, 0o755), "log stays as it was");
    // Hostile names became plain components inside the base directory.
    let capped = "x".repeat(128);
    let mut expected = vec!["_.", "_._.._etc", "db01", "web01", "web02", &capped];
    expected.sort();
    assert_eq!(names_in(&base), expected, "{}", d.log());
    let hostile = d.wait_lines(&base.join("_._.._etc/passwd.log"), 1);
    assert!(hostile.ends_with("passwd: hostile\n"), "{hostile}");
    assert_eq!(names_in(&d.path("log")), ["pairs", "remote"]);
    assert!(!d.path("etc").exists());
    // 128 + 1 + 128 + 4 bytes is too long a file name: the fallback file, root:adm 0640.
    let fallback = d.path("log/pairs/.fallback.log");
    let text = d.wait_lines(&fallback, 1);
    assert!(text.ends_with("app: long\n"), "{text}");
    assert_eq!(owned(&fallback), (0, adm, 0o640));
    assert_eq!(d.stat("outputs", "pairs", "fallback"), 1);
    // The worker reads these trees itself (rotation lists a file's generations).
    for dir in [&base, &base.join("web01"), &d.path("log/pairs")] {
        assert!(worker_can_list(dir), "{}", dir.display());
    }
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert!(d.stop().success(), "{}", d.log());
}

#[test]
fn privsep_a_generated_file_rotates_by_size_and_is_compressed_through_the_parent() {
    if !can_run("privsep_a_generated_file_rotates") {
        return;
    }
    let mut d = Daemon::start_privsep(TEMPLATED, root_log_dir);
    // About 6 KiB to one host in one connection: over max_size (4 KiB) after one write.
    let mut bytes = Vec::new();
    for i in 0..60 {
        bytes.extend(frame(b"big", "t", &format!("line {i} {}", "y".repeat(60))));
    }
    tcp_send(d.port, &bytes);
    d.wait_stat("outputs", "remote", "written", 60);
    let dir = d.path("log/remote/big");
    wait_until(
        "t.log.1 is compressed",
        || dir.join("t.log.1.zst").exists() && !dir.join("t.log.1").exists(),
        || d.log(),
    );
    let adm = gid_of("adm");
    assert_eq!(owned(&dir.join("t.log.1.zst")), (0, adm, 0o640));
    let old = String::from_utf8(
        zstd::decode_all(&std::fs::read(dir.join("t.log.1.zst")).unwrap()[..]).unwrap(),
    )
    .unwrap();
    let lines: Vec<&str> = old.lines().collect();
    assert_eq!(lines.len(), 60, "{old}");
    assert!(lines[0].contains("t: line 0 ") && lines[59].contains("t: line 59 "));
    // The writer opens a new live file through the parent.
    tcp_send(d.port, &frame(b"big", "t", "after rotation"));
    let text = d.wait_lines(&dir.join("t.log"), 1);
    assert!(text.ends_with("t: after rotation\n"), "{text}");
    assert_eq!(owned(&dir.join("t.log")), (0, adm, 0o640));
    assert_eq!(names_in(&dir), ["t.log", "t.log.1.zst"]);
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert!(d.stop().success(), "{}", d.log());
}

#[test]
fn privsep_old_per_day_files_and_their_empty_directories_are_removed_through_the_parent() {
    if !can_run("privsep_old_per_day_files") {
        return;
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    let config = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.daily]
type = "file"
path = "{dir}/log/remote/{host}/{year}-{month}-{day}.log"

[output.daily.rotation]
max_age_days = 1

[[rule]]
output = "daily"
"#;
    let mut d = Daemon::start_privsep(config, root_log_dir);
    // The sweep deletes only files logwell created: have it write them, then age them.
    let mut batch = Vec::new();
    for (day, host) in [
        ("2026-11-01", "gone"),
        ("2026-11-01", "web01"),
        ("2026-11-20", "web01"),
    ] {
        batch.extend(format!("<14>1 {day}T12:00:00.000000Z {host} t - - - x\n").into_bytes());
    }
    tcp_send(d.port, &batch);
    d.wait_stat("outputs", "daily", "written", 3);
    assert!(d.stop().success(), "{}", d.log());
    for p in [
        "log/remote/gone/2026-11-01.log",
        "log/remote/web01/2026-11-01.log",
    ] {
        std::fs::File::options()
            .append(true)
            .open(d.path(p))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    d.restart();
    wait_until(
        "the old files and the empty directory are gone",
        || {
            // The parent logs each request after doing it: wait for that line too.
            !d.path("log/remote/gone").exists()
                && !d.path("log/remote/web01/2026-11-01.log").exists()
                && d.log().contains("remove directory")
        },
        || d.log(),
    );
    assert!(d.path("log/remote/web01/2026-11-20.log").exists());
    assert!(d.path("log/remote").exists(), "the base directory is kept");
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert!(d.stop().success(), "{}", d.log());
}

#[test]
fn privsep_a_symlink_planted_in_a_templated_tree_is_refused_not_followed() {
    if !can_run("privsep_a_symlink_planted_in_a_templated_tree") {
        return;
    }
    let mut d = Daemon::start_privsep(TEMPLATED, |dir| {
        root_log_dir(dir);
        let outside = dir.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir(dir.join("log/remote")).unwrap();
        // As if someone able to write in the tree planted it: host `evil` leads outside.
        std::os::unix::fs::symlink(&outside, dir.join("log/remote/evil")).unwrap();
    });
    let mut batch = frame(b"evil", "app", "redirected?");
    batch.extend(frame(b"web01", "app", "fine"));
    tcp_send(d.port, &batch);
    d.wait_lines(&d.path("log/remote/web01/app.log"), 1);
    wait_until(
        "the parent refuses the path through the link",
        || d.log().contains("privileged parent: refused") && d.log().contains("symbolic link"),
        || d.log(),
    );
    assert!(
        names_in(&d.path("outside")).is_empty(),
        "nothing was written through the link"
    );
    assert!(d.path("log/remote/evil").is_symlink());
    assert!(d.stop().success(), "{}", d.log());
}

/// TLS keys are usually kept `root:root 0600`. The worker cannot open such a key, so it asks
/// the privileged parent, which opens exactly the TLS files the configuration names: at start
/// and at a SIGHUP that re-reads a renewed certificate and key.
#[test]
fn privsep_a_tls_key_only_root_may_read_is_used_at_start_and_after_a_reload() {
    if !can_run("privsep_a_tls_key_only_root_may_read_is_used_at_start_and_after_a_reload") {
        return;
    }
    use crate::tls::{fingerprint, make_pki, presented, reload, send};
    let root_only = |dir: &Path| {
        for f in ["server.pem", "server.key"] {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
            let meta = std::fs::metadata(dir.join(f)).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
        }
    };
    let d = Daemon::start_privsep(&crate::tls::config(""), |dir| {
        make_pki(dir);
        root_only(dir);
    });
    let dir = d.dir.path();
    send(&d, None, b"<13>1 - h app - - - before the reload\n");
    d.wait_lines(&d.path("all.json"), 1);

    testkit::pki::make_cert(dir, "renewed", "localhost", "serverAuth", "ca").or_panic();
    std::fs::copy(dir.join("renewed.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(dir.join("renewed.key"), dir.join("server.key")).unwrap();
    root_only(dir);
    reload(&d, 1);
    let renewed = fingerprint(&std::fs::read(dir.join("renewed.pem")).unwrap());
    assert_eq!(presented(&d), renewed);
    send(&d, None, b"<13>1 - h app - - - after the reload\n");
    let text = d.wait_lines(&d.path("all.json"), 2);
    assert!(text.contains("after the reload"), "{text}");
    let log = d.log();
    assert!(!log.contains("privileged parent: refused"), "{log}");
}

#[test]
fn privsep_a_file_input_reads_a_root_only_file_through_the_parent_and_nothing_else() {
    if !can_run("privsep_a_file_input_reads_a_root_only_file") {
        return;
    }
    let d = Daemon::start_privsep(
        r#"
[input.app]
type = "file"
paths = ["{dir}/apps/*.log"]
from = "head"

[output.all]
type = "file"
path = "{dir}/log/all.log"

[[rule]]
output = "all"
"#,
        |dir| {
            root_log_dir(dir);
            let apps = dir.join("apps");
            std::fs::create_dir(&apps).unwrap();
            std::fs::set_permissions(&apps, std::fs::Permissions::from_mode(0o755)).unwrap();
            // Only root may read it, as some services write their logs.
            let log = apps.join("secret.log");
            std::fs::write(&log, "root only line\n").unwrap();
            std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
            // A link to a file outside the patterns: the parent must not follow it.
            std::fs::write(dir.join("outside.txt"), "outside\n").unwrap();
            std::fs::set_permissions(
                dir.join("outside.txt"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            std::os::unix::fs::symlink(dir.join("outside.txt"), apps.join("link.log")).unwrap();
        },
    );
    let text = d.wait_lines(&d.path("log/all.log"), 1);
    assert!(text.contains("root only line"), "{text}");
    // The parent refused the link, and said so.
    d.wait_log("symbolic link");
    let text = std::fs::read_to_string(d.path("log/all.log")).unwrap();
    assert!(!text.contains("outside"), "{text}");
}
