//! Many messages over many connections, with reloads, rotations by rename, and shutdowns
//! in the middle: every message accepted is written exactly once, in order per connection.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};

use crate::util::{wait_lines, Daemon};

const CONFIG: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.stream]
type = "unix_stream"
path = "{dir}/stream.sock"

[output.all]
type = "file"
path = "{dir}/all.log"
flush_interval_ms = 50

[[rule]]
output = "all"
"#;

/// How a test connection frames its messages.
#[derive(Clone, Copy)]
enum Framing {
    Newline,
    OctetCounted,
    /// Alternates per message, as RFC 6587 receivers must accept.
    Mixed,
}

/// Writes messages `from..to` of connection `conn` to `w`.
fn write_messages(w: &mut impl Write, conn: usize, from: usize, to: usize, framing: Framing) {
    for n in from..to {
        let msg = format!("<13>Nov 21 09:41:03 sender load[{conn}]: c={conn:03} n={n:07} padding-to-look-like-a-real-message");
        let octet = match framing {
            Framing::Newline => false,
            Framing::OctetCounted => true,
            Framing::Mixed => n % 2 == 1,
        };
        if octet {
            write!(w, "{} {msg}", msg.len()).unwrap();
        } else {
            writeln!(w, "{msg}").unwrap();
        }
    }
}

/// Waits until every byte written to `s` was acknowledged by the peer's kernel (our send
/// queue is empty, `SIOCOUTQ`), so it sits in the daemon's receive queue or was read.
fn wait_acknowledged(s: &TcpStream) {
    let queued = || crate::util::socket_queued(s, libc::TIOCOUTQ);
    crate::util::wait_until(
        "every byte sent to be acknowledged",
        || queued() == 0,
        || format!("{} bytes are not", queued()),
    );
}

/// Checks that `text` holds messages `0..per_conn` of each of `conns` connections exactly
/// once and in order per connection.
fn check_all_once_in_order(text: &str, conns: usize, per_conn: usize) {
    let mut next: BTreeMap<usize, usize> = BTreeMap::new();
    for line in text.lines() {
        let c_at = line
            .find(" c=")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let c: usize = line[c_at + 3..c_at + 6].parse().unwrap();
        let n: usize = line[c_at + 9..c_at + 16].parse().unwrap();
        let expected = next.entry(c).or_insert(0);
        assert_eq!(
            n, *expected,
            "connection {c}: got message {n}, expected {expected} (lost, duplicated or reordered)"
        );
        *expected += 1;
    }
    assert_eq!(
        next.len(),
        conns,
        "messages from {} of {conns} connections",
        next.len()
    );
    for (c, n) in next {
        assert_eq!(n, per_conn, "connection {c} has {n} of {per_conn} messages");
    }
}

#[test]
fn hundred_thousand_messages_over_ten_tcp_connections_each_written_once() {
    let d = Daemon::start(CONFIG);
    let (conns, per_conn) = (10, 10_000);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let port = d.port;
            std::thread::spawn(move || {
                let mut w = BufWriter::with_capacity(
                    64 * 1024,
                    TcpStream::connect(("127.0.0.1", port)).unwrap(),
                );
                write_messages(
                    &mut w,
                    c,
                    0,
                    per_conn,
                    if c % 2 == 0 {
                        Framing::Newline
                    } else {
                        Framing::OctetCounted
                    },
                );
                w.flush().unwrap();
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let text = d.wait_lines(&d.path("all.log"), conns * per_conn);
    check_all_once_in_order(&text, conns, per_conn);
    d.wait_stat("outputs", "all", "written", (conns * per_conn) as u64);
    assert_eq!(
        d.stat("inputs", "tcp", "received"),
        (conns * per_conn) as u64
    );
    assert_eq!(d.stat("inputs", "tcp", "malformed"), 0);
    assert_eq!(d.stat("inputs", "tcp", "connections"), conns as u64);
}

#[test]
fn sigterm_right_after_the_senders_finish_writes_everything() {
    let mut d = Daemon::start(CONFIG);
    let (conns, per_conn) = (8, 5_000);
    let stream_path = d.path("stream.sock");
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let port = d.port;
            let stream_path = stream_path.clone();
            std::thread::spawn(move || {
                // Half over TCP, half over the Unix stream socket; mixed framing.
                if c % 2 == 0 {
                    let mut w = BufWriter::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
                    write_messages(&mut w, c, 0, per_conn, Framing::Mixed);
                    w.flush().unwrap();
                    // What the daemon must write is what its kernel accepted (acknowledged)
                    // before the stop; bytes still in our send queue were not.
                    wait_acknowledged(w.get_ref());
                } else {
                    let mut w = BufWriter::new(UnixStream::connect(stream_path).unwrap());
                    write_messages(&mut w, c, 0, per_conn, Framing::Mixed);
                    w.flush().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    // The senders closed their connections; much of what they sent may still sit in socket
    // buffers or the accept queue. Shut down now.
    let status = d.stop();
    assert!(status.success(), "exit status {status}:\n{}", d.log());
    let text = std::fs::read_to_string(d.path("all.log")).unwrap();
    check_all_once_in_order(&text, conns, per_conn);
    assert!(
        !d.path("stream.sock").exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn sighup_with_rotation_and_config_change_during_load_loses_nothing() {
    let d = Daemon::start(CONFIG);
    let (conns, per_conn) = (10, 10_000);
    let halfway = Arc::new(Barrier::new(conns + 1));
    let resume = Arc::new(Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let port = d.port;
            let (halfway, resume) = (halfway.clone(), resume.clone());
            std::thread::spawn(move || {
                let mut w = BufWriter::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
                write_messages(&mut w, c, 0, per_conn / 2, Framing::Newline);
                w.flush().unwrap();
                halfway.wait();
                resume.wait();
                // The second half is sent while the daemon reloads again and again.
                for chunk in (per_conn / 2..per_conn).step_by(500) {
                    write_messages(&mut w, c, chunk, chunk + 500, Framing::Newline);
                    w.flush().unwrap();
                }
            })
        })
        .collect();
    halfway.wait();
    // As logrotate does: rename the live file, then SIGHUP. Also add an output to the config.
    std::fs::rename(d.path("all.log"), d.path("all.log.1")).unwrap();
    let mut config = std::fs::read_to_string(&d.config).unwrap();
    config.push_str(&format!(
        "\n[output.extra]\ntype = \"file\"\npath = \"{}\"\nflush_interval_ms = 50\n\n[[rule]]\noutput = \"extra\"\n",
        d.path("extra.log").display()
    ));
    std::fs::write(&d.config, config).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log("configuration reloaded");
    resume.wait();
    for _ in 0..5 {
        d.signal(libc::SIGHUP);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    // Everything is in all.log.1 + all.log, exactly once, in order.
    let total = conns * per_conn;
    let text = d.wait_for(&format!("{total} lines in all.log.1 + all.log"), || {
        let old = std::fs::read_to_string(d.path("all.log.1")).unwrap();
        let new = std::fs::read_to_string(d.path("all.log")).unwrap_or_default();
        (old.lines().count() + new.lines().count() >= total).then(|| old + &new)
    });
    check_all_once_in_order(&text, conns, per_conn);
    assert!(
        !std::fs::read_to_string(d.path("all.log"))
            .unwrap()
            .is_empty(),
        "the file was reopened after the rename"
    );
    // The new output got the messages sent after the reload (it may lag all.log: wait).
    let extra = wait_lines(&d.path("extra.log"), conns * per_conn / 2, || d.log());
    assert!(
        extra.lines().count() >= conns * per_conn / 2,
        "extra.log has {} lines",
        extra.lines().count()
    );
    assert!(d.log().contains("configuration reloaded"), "{}", d.log());
}
