//! The daemon's own resources stay bounded: reloads do not leave writers or files behind,
//! a flooding sender cannot hold a shutdown, and descriptors a local sender attaches to a
//! datagram are closed.

use std::io::Write;
use std::time::Instant;

use crate::util::{wait_until, Daemon, DEADLINE};

const CONFIG: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
receive_buffer_bytes = 1048576

[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.all]
type = "file"
path = "{dir}/all.log"
flush_interval_ms = 20

[output.extra]
type = "file"
path = "{dir}/extra.log"

[[rule]]
output = ["all", "extra"]
"#;

/// Names of the daemon's writer threads (`out-NAME`).
fn writer_threads(pid: i32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| c.starts_with("out-"))
        .collect();
    names.sort();
    names
}

/// `config` without the `extra` output (its rules must not name it any more).
fn without_extra(config: &str, d: &Daemon) -> String {
    let extra = format!(
        "[output.extra]\ntype = \"file\"\npath = \"{}/extra.log\"\n",
        d.dir.path().display()
    );
    assert!(config.contains(&extra), "{config}");
    config.replace(&extra, "")
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn reloads_keep_one_writer_per_file_even_with_idle_connections() {
    let d = Daemon::start(CONFIG);
    // An idle connection: it sent one line and then nothing.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    idle.write_all(b"<13>Nov 21 09:41:03 host tag: before\n")
        .unwrap();
    d.wait_lines(&d.path("all.log"), 1);
    assert_eq!(writer_threads(d.pid()), ["out-all", "out-extra"]);
    // Change all's settings (same path) and remove extra.
    let config = std::fs::read_to_string(&d.config).unwrap();
    let config = config
        .replace(
            "flush_interval_ms = 20\n",
            "flush_interval_ms = 30\nbuffer_bytes = 4096\n",
        )
        .replace("output = [\"all\", \"extra\"]", "output = \"all\"");
    std::fs::write(&d.config, without_extra(&config, &d)).unwrap();
    d.signal(libc::SIGHUP);
    wait_until(
        "the removed output's writer has ended",
        || writer_threads(d.pid()) == ["out-all"],
        String::new,
    );
    // The same connection goes on, through the one writer, in order.
    idle.write_all(b"<13>Nov 21 09:41:03 host tag: after\n")
        .unwrap();
    let text = d.wait_lines(&d.path("all.log"), 2);
    assert!(
        text.ends_with("tag: before\nhost tag: after\n")
            || text.contains("tag: before\n") && text.ends_with("tag: after\n"),
        "{text}"
    );
    let all_fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .filter(|f| {
            std::fs::read_link(f.as_ref().unwrap().path()).is_ok_and(|t| t.ends_with("all.log"))
        })
        .count();
    assert_eq!(all_fds, 1, "one open descriptor on all.log");
}

#[test]
fn a_flooding_sender_cannot_hold_the_shutdown() {
    let mut d = Daemon::start(CONFIG);
    let port = d.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let line = b"<13>Nov 21 09:41:03 host tag: flood\n".repeat(1000);
            let started = Instant::now();
            // Bounded: until the daemon closes the connection, or 60 s.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < DEADLINE {
                if s.write_all(&line).is_err() {
                    break;
                }
            }
        })
    };
    d.wait_lines(&d.path("all.log"), 1000);
    let asked = Instant::now();
    let status = d.stop();
    let took = asked.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(status.success(), "{status}\n{}", d.log());
    // Not a timing goal: only that the stop did not wait for the sender (which runs 60 s).
    assert!(
        took < DEADLINE / 2,
        "shutdown took {took:?} while a sender kept sending"
    );
    // Every line is whole, but the last may be the start of a message the daemon stopped
    // reading in the middle: it is marked.
    let text = std::fs::read_to_string(d.path("all.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (last, rest) = lines.split_last().unwrap();
    let broken: Vec<&&str> = rest
        .iter()
        .filter(|l| !l.ends_with("host tag: flood"))
        .collect();
    assert!(broken.is_empty(), "every line whole: {broken:?}");
    assert!(
        last.ends_with("host tag: flood") || last.ends_with(" [truncated]"),
        "{last}"
    );
}

#[test]
fn descriptors_attached_to_datagrams_are_closed() {
    use std::os::fd::AsRawFd;
    let d = Daemon::start(CONFIG);
    let before = open_fds(d.pid());
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let passed = std::fs::File::open("/dev/null").unwrap();
    let path = d.path("log.sock");
    let addr = nix::sys::socket::UnixAddr::new(&path).unwrap();
    for n in 0..100 {
        let fds = [passed.as_raw_fd(); 8];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        let text = format!("<13>Nov 21 09:41:03 host tag: with fds {n}");
        let iov = [std::io::IoSlice::new(text.as_bytes())];
        nix::sys::socket::sendmsg(
            sock.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            Some(&addr),
        )
        .unwrap();
    }
    d.wait_lines(&d.path("all.log"), 100);
    let after = open_fds(d.pid());
    assert!(
        after <= before + 2,
        "descriptors leaked: {before} before, {after} after 800 passed"
    );
}

/// A UDP socket is read on a thread of its own, outside tokio, that sleeps between drains
/// while datagrams come fast (`input/udp.rs`). Idle, it waits in `poll`: a reload must still
/// reach it at once (or the removed output's writer would live on), and a stop must still
/// read what the kernel holds.
#[test]
fn an_idle_udp_reader_takes_a_reload_at_once_and_a_stop_reads_what_is_queued() {
    let mut d = Daemon::start(CONFIG);
    let port = d.port.to_string();
    crate::util::logger(&["-d", "-n", "127.0.0.1", "-P", &port, "-t", "tag", "before"]);
    d.wait_lines(&d.path("all.log"), 1);
    assert_eq!(writer_threads(d.pid()), ["out-all", "out-extra"]);
    let config = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace("output = [\"all\", \"extra\"]", "output = \"all\"");
    std::fs::write(&d.config, without_extra(&config, &d)).unwrap();
    d.signal(libc::SIGHUP);
    wait_until(
        "the idle UDP reader let go of the removed output",
        || writer_threads(d.pid()) == ["out-all"],
        String::new,
    );
    // A burst (the reader starts pausing between drains), then the stop at once: the
    // burst is in the kernel's buffer (1 MiB, room for all of it) before SIGTERM is sent.
    let burst: String = (0..200).map(|i| format!("burst {i}\n")).collect();
    let file = d.path("burst.txt");
    std::fs::write(&file, burst).unwrap();
    crate::util::logger(&[
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        "tag",
        "-f",
        file.to_str().unwrap(),
    ]);
    let status = d.stop();
    assert!(status.success(), "{status}\n{}", d.log());
    let text = std::fs::read_to_string(d.path("all.log")).unwrap();
    let seen: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once("tag: burst ").map(|(_, n)| n))
        .collect();
    assert_eq!(
        seen.len(),
        200,
        "every queued datagram read at the stop:\n{text}"
    );
    assert!(text.contains("tag: before\n"), "{text}");
    assert!(!d.log().contains("dropped"), "{}", d.log());
}
