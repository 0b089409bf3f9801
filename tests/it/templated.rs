//! Templated paths and the other local actions, as a central log server's admin uses them:
//! per-host directories over TCP, hostile host names that must stay inside the base
//! directory, 10,000 hosts under a small open-file bound, per-day files aged out, the
//! `emerg` broadcast to a terminal, `discard` and repeated-message reduction.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{hostname, logger, logger_tcp, tcp_send, wait_until, Daemon, DEADLINE};

const TCP: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
"#;

/// Every regular file below `dir`, with its content.
fn files_below(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// An RFC 5424 frame (LF-terminated) from `host`, raw bytes so a host name can be anything.
fn frame(host: &[u8], tag: &str, text: &str) -> Vec<u8> {
    let mut f = b"<14>1 2026-11-21T10:00:00.000000Z ".to_vec();
    f.extend_from_slice(host);
    f.extend_from_slice(format!(" {tag} - - - {text}\n").as_bytes());
    f
}

#[test]
fn three_hosts_over_tcp_land_in_three_directories() {
    let d = Daemon::start(&format!(
        "{TCP}\n[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:{{port}}\"\n\n[output.remote]\ntype = \"file\"\npath = \"{{dir}}/remote/{{host}}/{{tag}}.log\"\n\n[[rule]]\noutput = \"remote\"\n"
    ));
    let mut batch = Vec::new();
    for host in ["web01", "web02", "db01"] {
        batch.extend(frame(host.as_bytes(), "app", &format!("hello from {host}")));
    }
    tcp_send(d.port, &batch);
    // The real logger, over TCP and UDP: its host name is this host's.
    let port = d.port.to_string();
    logger_tcp(d.port, "viatcp", "logger over tcp");
    logger(&[
        "--udp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        "viaudp",
        "logger over udp",
    ]);
    d.wait_stat("outputs", "remote", "written", 5);
    for host in ["web01", "web02", "db01"] {
        let text = d.wait_lines(&d.path(&format!("remote/{host}/app.log")), 1);
        assert!(
            text.ends_with(&format!(" {host} app: hello from {host}\n")),
            "{text}"
        );
    }
    let text = d.wait_lines(&d.path(&format!("remote/{}/viatcp.log", hostname())), 1);
    assert!(text.ends_with("viatcp: logger over tcp\n"), "{text}");
    let text = d.wait_lines(&d.path(&format!("remote/{}/viaudp.log", hostname())), 1);
    assert!(text.ends_with("viaudp: logger over udp\n"), "{text}");
    let dirs: Vec<_> = std::fs::read_dir(d.path("remote"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    // Directories get the default dir_mode, files the file mode.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(d.path(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("remote/web01"), 0o750);
    assert_eq!(mode("remote/web01/app.log"), 0o640);
}

#[test]
fn hostile_host_names_stay_inside_the_base_directory_or_go_to_the_fallback() {
    let d = Daemon::start(&format!(
        r#"{TCP}
[output.remote]
type = "file"
path = "{{dir}}/remote/{{host}}/syslog"
format = "json"

[output.pairs]
type = "file"
path = "{{dir}}/pairs/{{host}}-{{host}}.log"
fallback = "{{dir}}/pairs-fallback.log"
format = "json"

[[rule]]
output = ["remote", "pairs"]
"#
    ));
    let long = vec![b'x'; 300];
    let hosts: Vec<&[u8]> = vec![
        b"../../etc",
        b"a/b",
        b"..",
        b".",
        b".hidden",
        &long,
        b"bad\xff\xfeutf8",
    ];
    let mut batch = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        if host.len() > 255 || std::str::from_utf8(host).is_err() {
            // Longer than RFC 5424 allows, or not its PRINTUSASCII: sent as BSD syslog, whose
            // host names have no such limits (RFC 5424 would store it raw, under the peer).
            batch.extend_from_slice(b"<14>Nov 21 10:00:00 ");
            batch.extend_from_slice(host);
            batch.extend_from_slice(format!(" t: hostile-{i}\n").as_bytes());
        } else {
            batch.extend(frame(host, "t", &format!("hostile-{i}")));
        }
    }
    // An empty host name (two spaces in a BSD header) and none at all (RFC 5424 `-`).
    batch.extend_from_slice(b"<14>Nov 21 10:00:00  t: hostile-empty\n");
    batch.extend_from_slice(b"<14>1 2026-11-21T10:00:00Z - t - - - hostile-nil\n");
    tcp_send(d.port, &batch);
    let n = hosts.len() as u64 + 2;
    d.wait_stat("outputs", "remote", "written", n);
    d.wait_stat("outputs", "pairs", "written", n);

    // Nothing was created outside the test's own files and the two base directories.
    let all = files_below(d.dir.path());
    for path in all.keys() {
        let rel = path.strip_prefix(d.dir.path()).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        assert!(
            [
                "remote",
                "pairs",
                "pairs-fallback.log",
                "logwell.toml",
                "stderr.log",
                "state",
                "control.sock"
            ]
            .contains(&top),
            "{} was created outside the base directories",
            path.display()
        );
    }
    assert!(!d.path("etc").exists() && !d.path("../etc/syslog").exists());
    // Every message is in exactly one file of each output.
    for i in (0..hosts.len())
        .map(|i| i.to_string())
        .chain(["empty".into(), "nil".into()])
    {
        for base in ["remote", "pairs"] {
            let needle = format!("hostile-{i}\"");
            let holders: Vec<_> = all
                .iter()
                .filter(|(p, _)| {
                    p.strip_prefix(d.dir.path()).unwrap().starts_with(base)
                        || (base == "pairs" && p.ends_with("pairs-fallback.log"))
                })
                .filter(|(_, c)| String::from_utf8_lossy(c).contains(&needle))
                .collect();
            assert_eq!(holders.len(), 1, "{needle} in {base}: {:?}", all.keys());
        }
    }
    // The sanitised names, one directory each, no traversal, no hidden names.
    for dir in ["_._.._etc", "a_b", "_.", "_", "_hidden"] {
        assert!(
            d.path(&format!("remote/{dir}/syslog")).is_file(),
            "remote/{dir}: {:?}",
            all.keys()
        );
    }
    // Invalid UTF-8 bytes become `_`; an empty or absent host name is the peer's address, as
    // rsyslog's %fromhost% (docs/templated-paths.md).
    for dir in ["bad__utf8", "127.0.0.1"] {
        assert!(
            d.path(&format!("remote/{dir}/syslog")).is_file(),
            "remote/{dir}: {:?}",
            all.keys()
        );
    }
    let capped = format!("remote/{}/syslog", "x".repeat(128));
    assert!(d.path(&capped).is_file(), "{:?}", all.keys());
    // 128 + 1 + 128 + 4 bytes is longer than a file name may be: the fallback, counted.
    let fallback = std::fs::read_to_string(d.path("pairs-fallback.log")).unwrap();
    assert!(fallback.contains("hostile-5\""), "{fallback}");
    assert_eq!(d.stat("outputs", "pairs", "fallback"), 1);
    assert_eq!(d.stat("outputs", "remote", "fallback"), 0);
}

/// Descriptors the process `pid` has open.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |r| r.count())
}

#[test]
fn ten_thousand_hosts_with_64_open_files_write_every_message_within_the_fd_bound() {
    const HOSTS: usize = 10_000;
    const MAX_OPEN: usize = 64;
    let d = Daemon::start(&format!(
        "{TCP}\n[output.many]\ntype = \"file\"\npath = \"{{dir}}/many/{{host}}.log\"\nmax_open_files = {MAX_OPEN}\nidle_close_secs = 1\n\n[[rule]]\noutput = \"many\"\n"
    ));
    let pid = d.pid();
    let fixed = open_fds(pid);
    assert!(fixed > 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + DEADLINE;
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                max = max.max(open_fds(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            max
        })
    };
    // Two rounds over every host on one connection: each file is closed and opened again.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    for round in 0..2 {
        let mut batch = Vec::new();
        for h in 0..HOSTS {
            batch.extend(frame(
                format!("h{h:05}").as_bytes(),
                "t",
                &format!("round {round} host {h}"),
            ));
        }
        s.write_all(&batch).unwrap();
    }
    drop(s);
    d.wait_stat("outputs", "many", "written", 2 * HOSTS as u64);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let max = sampler.join().unwrap();
    // The fixed descriptors, the bound, and the one TCP connection.
    assert!(
        max <= fixed + MAX_OPEN + 1,
        "{max} descriptors open at most; fixed {fixed}, bound {MAX_OPEN}"
    );
    let files = files_below(&d.path("many"));
    assert_eq!(files.len(), HOSTS);
    for h in [0, 1, 4999, 9999] {
        let text = String::from_utf8(files[&d.path(&format!("many/h{h:05}.log"))].clone()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(&format!("round 0 host {h}"))
                && lines[1].ends_with(&format!("round 1 host {h}")),
            "{text}"
        );
    }
    assert_eq!(
        files
            .values()
            .map(|c| c.iter().filter(|&&b| b == b'\n').count())
            .sum::<usize>(),
        2 * HOSTS
    );
    assert!(d.stat("outputs", "many", "open_files") <= MAX_OPEN as u64);
    // Idle files are closed.
    wait_until(
        "idle files to close",
        || d.stat("outputs", "many", "open_files") == 0,
        || d.log(),
    );
    // The daemon may still hold the control connection of the last `stat` for a moment.
    wait_until(
        "the descriptors to be closed after the idle close",
        || open_fds(pid) <= fixed,
        || format!("{} of {fixed} open", open_fds(pid)),
    );
}

/// An RFC 5424 frame from `host` stamped at noon UTC on `day` (`2026-11-01`).
fn frame_on(day: &str, host: &str, text: &str) -> Vec<u8> {
    format!("<14>1 {day}T12:00:00.000000Z {host} t - - - {text}\n").into_bytes()
}

/// Sets the modification time of the file at `path`.
fn set_mtime(path: &Path, time: std::time::SystemTime) {
    std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// Waits for the daemon's log to say that an age sweep deleted something.
fn wait_swept(d: &Daemon) {
    d.wait_log("deleted files past max_age_days");
}

#[test]
fn per_day_files_past_max_age_are_deleted_with_their_empty_directories() {
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    let mut d = Daemon::start(&format!(
        "{TCP}\n[output.daily]\ntype = \"file\"\npath = \"{{dir}}/remote/{{host}}/{{year}}-{{month}}-{{day}}.log\"\n\n[output.daily.rotation]\nmax_age_days = 1\n\n[[rule]]\noutput = \"daily\"\n"
    ));
    let mut batch = frame_on("2026-11-01", "gone", "old");
    batch.extend(frame_on("2026-11-01", "web01", "old"));
    batch.extend(frame_on("2026-11-20", "web01", "recent"));
    tcp_send(d.port, &batch);
    d.wait_stat("outputs", "daily", "written", 3);
    d.stop();
    for p in ["remote/gone/2026-11-01.log", "remote/web01/2026-11-01.log"] {
        set_mtime(&d.path(p), old);
    }
    // The sweep at start knows the files logwell made before the restart.
    d.restart();
    wait_until(
        "old per-day files to be deleted",
        || !d.path("remote/gone").exists() && !d.path("remote/web01/2026-11-01.log").exists(),
        || d.log(),
    );
    assert!(d.path("remote/web01/2026-11-20.log").exists());
    tcp_send(d.port, &frame(b"web01", "t", "today"));
    d.wait_lines(&d.path("remote/web01/2026-11-21.log"), 1);
}

/// Issue 24, item 6: `max_age_days` on `{host}.log` deleted a 40-day-old `dpkg.log` in the
/// base directory (`dpkg` is a valid host name). Only files logwell created are swept.
#[test]
fn the_age_sweep_deletes_only_files_logwell_created_not_an_old_dpkg_log() {
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let mut d = Daemon::start_with(
        &format!(
            "{TCP}\n[output.remote]\ntype = \"file\"\npath = \"{{dir}}/logs/{{host}}.log\"\n\n[output.remote.rotation]\nmax_age_days = 30\n\n[[rule]]\noutput = \"remote\"\n"
        ),
        |dir| {
            std::fs::create_dir(dir.join("logs")).unwrap();
            for name in ["dpkg.log", "dpkg.log.1"] {
                let path = dir.join("logs").join(name);
                std::fs::write(&path, "Start-Date: 2026-10-28\n").unwrap();
                set_mtime(&path, old);
            }
        },
    );
    tcp_send(d.port, &frame(b"web01", "t", "hello"));
    d.wait_lines(&d.path("logs/web01.log"), 1);
    d.stop();
    set_mtime(&d.path("logs/web01.log"), old);
    d.restart();
    wait_swept(&d);
    assert!(!d.path("logs/web01.log").exists(), "{}", d.log());
    for name in ["dpkg.log", "dpkg.log.1"] {
        assert_eq!(
            std::fs::read_to_string(d.path("logs").join(name)).unwrap(),
            "Start-Date: 2026-10-28\n",
            "{name} is not logwell's: it must survive the sweep"
        );
    }
}

/// Issue 24, item 6: `/D/{host}.log` beside an output writing `/D/auth.log` let a datagram
/// from host `auth` land in `auth.log`, past the rules. Such a config is refused.
#[test]
fn a_templated_path_that_could_render_another_outputs_file_is_refused() {
    let (code, err) = crate::util::check_config("[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n\n[output.auth]\ntype = \"file\"\npath = \"/D/auth.log\"\n\n[output.remote]\ntype = \"file\"\npath = \"/D/{host}.log\"\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("logwell.toml:9:"), "{err}");
    assert!(
        err.contains("output `remote`") && err.contains("/D/auth.log") && err.contains("`auth`"),
        "{err}"
    );
    assert!(
        err.contains("hint: give the templated files a directory of their own"),
        "{err}"
    );
}

/// Issue 24, item 6: `{host}.log` and `{tag}.log` in one directory let a host and a tag both
/// named `cron` write into one file, past the rules. `--check-config` refuses such a pair,
/// naming both outputs and a file both could write.
#[test]
fn two_templated_paths_that_could_render_one_file_are_refused() {
    let config = "[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n\n[output.hosts]\ntype = \"file\"\npath = \"/var/log/hosts/{host}.log\"\n\n[output.tags]\ntype = \"file\"\npath = \"/var/log/hosts/{tag}.log\"\n";
    let (code, err) = crate::util::check_config(config);
    assert_eq!(code, Some(1));
    assert!(err.contains("logwell.toml:9:9:"), "{err}");
    assert!(
        err.contains("outputs `hosts` (/var/log/hosts/{host}.log) and `tags` (/var/log/hosts/{tag}.log) could write the same file"),
        "{err}"
    );
    assert!(
        err.contains("hint: give each templated output its own directory"),
        "{err}"
    );
    // Apart, the same two outputs are fine.
    let (code, err) = crate::util::check_config(&config.replace("hosts/{tag}", "tags/{tag}"));
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn size_rotation_applies_to_each_generated_file() {
    let d = Daemon::start(&format!(
        "{TCP}\n[output.remote]\ntype = \"file\"\npath = \"{{dir}}/remote/{{host}}.log\"\n\n[output.remote.rotation]\nmax_size = 2048\ncompress = \"none\"\n\n[[rule]]\noutput = \"remote\"\n"
    ));
    // Five batches of about 1.5 KiB to one host: rotated twice; one line to another host.
    for batch in 0..5 {
        let mut bytes = Vec::new();
        for i in 0..20 {
            bytes.extend(frame(
                b"big",
                "t",
                &format!("line {batch}-{i} {}", "y".repeat(40)),
            ));
        }
        tcp_send(d.port, &bytes);
        d.wait_stat("outputs", "remote", "written", 20 * (batch + 1));
    }
    tcp_send(d.port, &frame(b"small", "t", "one line"));
    d.wait_stat("outputs", "remote", "written", 101);
    let files = files_below(&d.path("remote"));
    let names: Vec<_> = files
        .keys()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["big.log", "big.log.1", "big.log.2", "small.log"],
        "{names:?}"
    );
    let big: Vec<String> = ["big.log.2", "big.log.1", "big.log"]
        .iter()
        .flat_map(|n| {
            String::from_utf8(files[&d.path(&format!("remote/{n}"))].clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(big.len(), 100);
    assert!(
        big[0].ends_with(&format!("line 0-0 {}", "y".repeat(40))) && big[99].contains("line 4-19 ")
    );
}

#[test]
fn an_unknown_field_is_a_config_error_with_line_and_the_valid_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logwell.toml");
    std::fs::write(
        &p,
        "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5514\"\n\n[output.r]\ntype = \"file\"\npath = \"/var/log/remote/{hostname}.log\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(":7:"), "{err}");
    assert!(err.contains("unknown field `{hostname}`"), "{err}");
    assert!(
        err.contains("{host}") && err.contains("{recv.day}"),
        "{err}"
    );
}

#[test]
fn discard_drops_what_it_matches_before_later_rules() {
    let d = Daemon::start(&format!(
        "{TCP}\n[output.all]\ntype = \"file\"\npath = \"{{dir}}/all.log\"\n\n[[rule]]\nprogram = \"noisy\"\ndiscard = true\n\n[[rule]]\noutput = \"all\"\n"
    ));
    let mut batch = frame(b"h", "noisy", "drop me");
    batch.extend(frame(b"h", "quiet", "keep me"));
    batch.extend(frame(b"h", "noisy", "drop me too"));
    batch.extend(frame(b"h", "quiet", "keep me too"));
    tcp_send(d.port, &batch);
    d.wait_stat("inputs", "tcp", "received", 4);
    let text = d.wait_lines(&d.path("all.log"), 2);
    d.wait_stat("outputs", "all", "written", 2);
    assert!(!text.contains("drop me"), "{text}");
    assert_eq!(d.stat("outputs", "all", "written"), 2);
}

#[test]
fn repeated_messages_are_reduced_to_a_count() {
    let d = Daemon::start(&format!(
        "{TCP}\n[output.all]\ntype = \"file\"\npath = \"{{dir}}/all.log\"\nformat = \"traditional\"\nreduce_repeats = true\n\n[[rule]]\noutput = \"all\"\n"
    ));
    let mut batch = Vec::new();
    for _ in 0..4 {
        batch.extend(frame(b"h", "app", "disk full"));
    }
    batch.extend(frame(b"h", "app", "disk ok"));
    batch.extend(frame(b"h", "app", "disk ok"));
    batch.extend(frame(b"h", "other", "disk ok"));
    tcp_send(d.port, &batch);
    let text = d.wait_lines(&d.path("all.log"), 5);
    let lines: Vec<&str> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    let tails: Vec<&str> = text
        .lines()
        // After the 15-character stamp ("Dec  3 14:35:51": the day is padded) and the host.
        .map(|l| l[16..].split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        tails,
        [
            "app: disk full",
            "logwelld: last message repeated 3 times",
            "app: disk ok",
            "logwelld: last message repeated 1 times",
            "other: disk ok"
        ],
        "{lines:?}"
    );
    assert_eq!(d.stat("outputs", "all", "repeats"), 4);
}

/// A pseudo-terminal opened by the test: the master (to read) and the slave's `/dev` name.
struct Pty {
    master: std::fs::File,
    line: String,
}

fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a descriptor we own; ptsname_r writes into our buffer.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        Pty {
            master: std::fs::File::from_raw_fd(fd),
            line: name.strip_prefix("/dev/").unwrap().to_string(),
        }
    }
}

/// A utmp file with one logged-in user per terminal line.
fn write_utmp(path: &Path, sessions: &[(&str, &str)]) {
    let mut bytes = Vec::new();
    for (user, line) in sessions {
        // SAFETY: utmpx is plain data; all zeroes is an empty record.
        let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
        u.ut_type = libc::USER_PROCESS;
        u.ut_pid = std::process::id() as i32;
        for (d, s) in u.ut_user.iter_mut().zip(user.bytes()) {
            *d = s as libc::c_char;
        }
        for (d, s) in u.ut_line.iter_mut().zip(line.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: the bytes of a plain-data struct.
        bytes.extend_from_slice(unsafe {
            std::slice::from_raw_parts(
                (&u as *const libc::utmpx).cast::<u8>(),
                std::mem::size_of::<libc::utmpx>(),
            )
        });
    }
    std::fs::write(path, bytes).unwrap();
}

/// Reads the pty's master until `needle` shows up; returns everything read.
fn read_until(pty: &mut Pty, needle: &str) -> String {
    use std::io::Read;
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        match pty.master.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("reading the pty: {e}"),
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never reached the terminal: {text:?}"
        );
    }
}

#[test]
fn emerg_messages_reach_a_logged_in_users_terminal() {
    let mut pty = open_pty();
    let line = pty.line.clone();
    let d = Daemon::start_with(
        &format!(
            "{TCP}\n[output.console]\ntype = \"users\"\nutmp = \"{{dir}}/utmp\"\nwrite_timeout_ms = 500\n\n[[rule]]\nselector = \"*.emerg\"\noutput = \"console\"\n"
        ),
        |dir| write_utmp(&dir.join("utmp"), &[("tester", &line)]),
    );
    let port = d.port.to_string();
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-p",
        "user.info",
        "-t",
        "t",
        "only info",
    ]);
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-p",
        "user.emerg",
        "-t",
        "t",
        "the disk is on fire",
    ]);
    let text = read_until(&mut pty, "the disk is on fire");
    assert!(
        text.contains("Broadcast message from logwelld@"),
        "{text:?}"
    );
    assert!(!text.contains("only info"), "{text:?}");
    d.wait_stat("outputs", "console", "written", 1);
}

#[test]
fn a_stuck_terminal_never_stalls_the_files() {
    // Nobody reads this terminal: once its buffer is full, every write to it would block.
    let stuck = open_pty();
    let line = stuck.line.clone();
    let d = Daemon::start_with(
        &format!(
            "{TCP}\n[output.console]\ntype = \"users\"\nutmp = \"{{dir}}/utmp\"\nwrite_timeout_ms = 200\n\n[output.all]\ntype = \"file\"\npath = \"{{dir}}/all.log\"\n\n[[rule]]\nselector = \"*.emerg\"\noutput = [\"console\", \"all\"]\n"
        ),
        |dir| write_utmp(&dir.join("utmp"), &[("tester", &line)]),
    );
    const N: u64 = 20_000;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    for i in 0..N {
        s.write_all(
            format!(
                "<8>1 2026-11-21T10:00:00Z h t - - - emergency {i} {}\n",
                "z".repeat(100)
            )
            .as_bytes(),
        )
        .unwrap();
        if i % 1000 == 999 {
            // Let input tasks flush in several chunks, so the console's queue fills.
            s.flush().unwrap();
        }
    }
    drop(s);
    d.wait_stat("outputs", "all", "written", N);
    let dropped = d.stat("outputs", "console", "dropped");
    let broadcast = d.stat("outputs", "console", "written");
    assert!(
        dropped > 0 && broadcast + dropped <= N,
        "dropped {dropped}, broadcast {broadcast}"
    );
    drop(stuck);
}

#[test]
fn a_file_last_written_before_the_time_boundary_is_rotated_when_opened_again() {
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    let d = Daemon::start_with(
        &format!(
            "{TCP}\n[output.remote]\ntype = \"file\"\npath = \"{{dir}}/remote/{{host}}.log\"\n\n[output.remote.rotation]\nevery = \"daily\"\ncompress = \"none\"\n\n[[rule]]\noutput = \"remote\"\n"
        ),
        |dir| {
            std::fs::create_dir_all(dir.join("remote")).unwrap();
            let path = dir.join("remote/web01.log");
            std::fs::write(&path, "from the day before yesterday\n").unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        },
    );
    tcp_send(d.port, &frame(b"web01", "t", "today"));
    d.wait_stat("outputs", "remote", "written", 1);
    let text = std::fs::read_to_string(d.path("remote/web01.log")).unwrap();
    assert!(
        text.ends_with("t: today\n") && text.lines().count() == 1,
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(d.path("remote/web01.log.1")).unwrap(),
        "from the day before yesterday\n"
    );
}

#[test]
fn emerg_messages_reach_only_the_named_users() {
    let mut mine = open_pty();
    let mut other = open_pty();
    let (line, other_line) = (mine.line.clone(), other.line.clone());
    let d = Daemon::start_with(
        &format!(
            "{TCP}\n[output.console]\ntype = \"users\"\nusers = [\"tester\"]\nutmp = \"{{dir}}/utmp\"\n\n[[rule]]\nselector = \"*.emerg\"\noutput = \"console\"\n"
        ),
        // The other user comes first: the broadcast goes in utmp order, so once the tester's
        // terminal has the message, the other's would have it too if it were sent there.
        |dir| write_utmp(&dir.join("utmp"), &[("someone", &other_line), ("tester", &line)]),
    );
    let port = d.port.to_string();
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-p",
        "daemon.emerg",
        "-t",
        "t",
        "for the tester",
    ]);
    read_until(&mut mine, "for the tester");
    use std::io::Read;
    let mut buf = [0u8; 256];
    match other.master.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        got => panic!("the other user's terminal got {got:?}"),
    }
}

#[test]
fn a_reload_changes_max_open_files_and_keeps_writing_in_order() {
    let template = |max: usize| {
        format!(
            "{TCP}\n[output.remote]\ntype = \"file\"\npath = \"{{dir}}/remote/{{host}}.log\"\nmax_open_files = {max}\n\n[[rule]]\noutput = \"remote\"\n"
        )
    };
    let d = Daemon::start(&template(8));
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    for h in 0..6 {
        conn.write_all(&frame(format!("h{h}").as_bytes(), "t", "before"))
            .unwrap();
    }
    d.wait_stat("outputs", "remote", "written", 6);
    assert_eq!(d.stat("outputs", "remote", "open_files"), 6);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("max_open_files = 8", "max_open_files = 2"),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    // SIGHUP closes every file; then at most 2 are open while 6 hosts keep sending.
    wait_until(
        "files to close after SIGHUP",
        || d.stat("outputs", "remote", "open_files") == 0,
        || d.log(),
    );
    // The reload is applied after the reopen: wait until the daemon says it is done.
    d.wait_log("configuration reloaded");
    for h in 0..6 {
        conn.write_all(&frame(format!("h{h}").as_bytes(), "t", "after"))
            .unwrap();
    }
    d.wait_stat("outputs", "remote", "written", 12);
    assert!(d.stat("outputs", "remote", "open_files") <= 2);
    for h in 0..6 {
        let text = std::fs::read_to_string(d.path(&format!("remote/h{h}.log"))).unwrap();
        let tails: Vec<&str> = text
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(tails, ["before", "after"], "{text}");
    }
}
