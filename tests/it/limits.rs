//! Limits on network inputs, against the real daemon on loopback: the `permit` allow-list,
//! the per-peer connection cap, the per-peer rate limit over UDP, the frame timeout against a
//! slow peer, the bounded buffer against an endless line, and the config errors.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{wait_until, Daemon, DEADLINE};

const OUTPUT: &str = r#"
[output.all]
type = "file"
path = "{dir}/all.log"
format = "traditional"
flush_interval_ms = 20

[[rule]]
output = "all"
"#;

fn config(inputs: &str) -> String {
    format!("{inputs}\n{OUTPUT}")
}

/// Waits until the daemon closes `s` (EOF or reset); panics at the deadline.
fn wait_closed(s: &mut TcpStream, d: &Daemon) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        assert!(
            Instant::now() < deadline,
            "the daemon kept the connection open:\n{}",
            d.log()
        );
    }
}

#[test]
fn a_peer_not_in_permit_is_refused_and_counted() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
permit = ["10.0.0.0/8", "::1"]

[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
permit = "10.0.0.0/8"
"#,
    ));
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let _ = s.write_all(b"<13>Nov 21 09:41:03 host tag: refused tcp\n");
    wait_closed(&mut s, &d);
    d.wait_stat("inputs", "tcp", "refused", 1);
    assert_eq!(d.stat("inputs", "tcp", "connections"), 0);
    crate::util::udp_send(d.port, b"<13>Nov 21 09:41:03 host tag: refused udp");
    d.wait_stat("inputs", "udp", "refused", 1);
    assert_eq!(d.stat("inputs", "udp", "received"), 0);
    assert!(
        !d.path("all.log").exists()
            || std::fs::read_to_string(d.path("all.log"))
                .unwrap()
                .is_empty()
    );
    d.wait_log("not in `permit`");
}

#[test]
fn a_peer_in_permit_is_served() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
permit = ["127.0.0.0/8"]

[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
permit = ["192.0.2.0/24", "127.0.0.1"]
"#,
    ));
    crate::util::tcp_send(d.port, b"<13>Nov 21 09:41:03 host tag: over tcp\n");
    crate::util::udp_send(d.port, b"<13>Nov 21 09:41:03 host tag: over udp");
    let text = d.wait_lines(&d.path("all.log"), 2);
    assert!(
        text.contains("over tcp") && text.contains("over udp"),
        "{text}"
    );
    assert_eq!(d.stat("inputs", "tcp", "refused"), 0);
    assert_eq!(d.stat("inputs", "udp", "refused"), 0);
}

#[test]
fn an_ipv6_peer_matches_ipv6_entries_only() {
    if TcpStream::connect("[::1]:9").is_err() && std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback here
    }
    let d = Daemon::start(&config(
        r#"
[input.ok]
type = "tcp"
listen = "[::1]:{port}"
permit = ["::1/128"]
"#,
    ));
    let mut s = TcpStream::connect(("::1", d.port)).unwrap();
    s.write_all(b"<13>Nov 21 09:41:03 host tag: over ipv6\n")
        .unwrap();
    drop(s);
    d.wait_lines(&d.path("all.log"), 1);
    assert_eq!(d.stat("inputs", "ok", "refused"), 0);
}

/// Issue 24 item 4: four idle sockets with `max_connections = 4` kept a real message out of
/// the file until they closed. When every slot is taken, the connection idle longest is
/// closed (and counted) so that the new sender gets in.
#[test]
fn idle_connections_filling_max_connections_do_not_keep_a_new_sender_out() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
max_connections = 4
"#,
    ));
    let log = d.path("all.log");
    // The oldest connection never sends; three later ones send once, then stay idle.
    let mut oldest = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    d.wait_stat("inputs", "tcp", "active_connections", 1);
    let mut others: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", d.port)).unwrap())
        .collect();
    d.wait_stat("inputs", "tcp", "active_connections", 4);
    for (n, s) in others.iter_mut().enumerate() {
        writeln!(s, "<13>Nov 21 09:41:03 host tag: idle {n}").unwrap();
    }
    d.wait_lines(&log, 3);
    // Every slot is taken by an idle connection: a new sender still gets its message in.
    let mut new = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    new.write_all(b"<13>Nov 21 09:41:03 host tag: the new sender\n")
        .unwrap();
    let text = d.wait_lines(&log, 4);
    assert!(text.ends_with("host tag: the new sender\n"), "{text}");
    // The connection idle longest made room, and it is counted.
    wait_closed(&mut oldest, &d);
    assert_eq!(d.stat("inputs", "tcp", "evicted"), 1);
    assert_eq!(d.stat("inputs", "tcp", "active_connections"), 4);
    for s in &others {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1];
        let r = (&*s).read(&mut buf);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the others stay open: {r:?}"
        );
    }
}

#[test]
fn connections_over_the_per_peer_cap_are_closed_at_once() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
max_connections_per_peer = 2
"#,
    ));
    let log = d.path("all.log");
    let mut a = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    a.write_all(b"<13>Nov 21 09:41:03 host tag: from a\n")
        .unwrap();
    b.write_all(b"<13>Nov 21 09:41:03 host tag: from b\n")
        .unwrap();
    d.wait_lines(&log, 2);
    d.wait_stat("inputs", "tcp", "active_connections", 2);
    // A flood of extra connections: each is closed at once, counted, and the log says so
    // in a few lines, not one per connection.
    for _ in 0..20 {
        let mut c = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        wait_closed(&mut c, &d);
    }
    d.wait_stat("inputs", "tcp", "refused", 20);
    assert_eq!(d.stat("inputs", "tcp", "connections"), 2);
    let logged = d.wait_log("max_connections_per_peer");
    assert!(
        logged.matches("refused").count() < 10,
        "rate-limited logging:\n{logged}"
    );
    // When one closes, the peer may connect again.
    drop(a);
    wait_until(
        "one active connection",
        || d.stat("inputs", "tcp", "active_connections") == 1,
        || d.log(),
    );
    let mut c = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    c.write_all(b"<13>Nov 21 09:41:03 host tag: from c\n")
        .unwrap();
    let text = d.wait_lines(&log, 3);
    assert!(text.contains("from c"), "{text}");
    drop(b);
}

#[test]
fn udp_messages_over_the_rate_are_suppressed_counted_and_summed_up() {
    let d = Daemon::start(&config(
        r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
receive_buffer_bytes = 8388608
rate_limit_per_sec = 100
rate_limit_burst = 100
"#,
    ));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let mut sent = 0u64;
    for n in 0..1000 {
        let msg = format!("<13>Nov 21 09:41:03 host tag: flood {n}");
        sock.send_to(msg.as_bytes(), ("127.0.0.1", d.port)).unwrap();
        sent += 1;
    }
    // Then one message every 50 ms, under the rate: the peer "resumes", so the log sums up
    // what was suppressed; and the daemon asks the socket for the kernel's drop count while
    // datagrams come, so drops during the flood, if any, are counted too. Until everything sent is accounted
    // for as written, suppressed or dropped, and the summary is in the log.
    let deadline = Instant::now() + DEADLINE;
    let (received, suppressed, dropped) = loop {
        let s = d.stats_json().unwrap();
        let i = &s["inputs"]["udp"];
        let counts = (
            i["received"].as_u64().unwrap(),
            i["suppressed"].as_u64().unwrap(),
            i["dropped"].as_u64().unwrap(),
        );
        if counts.0 + counts.1 + counts.2 == sent
            && d.log().contains("messages from 127.0.0.1 suppressed")
        {
            break counts;
        }
        assert!(Instant::now() < deadline, "sent {sent}: {s}\n{}", d.log());
        sock.send_to(
            b"<13>Nov 21 09:41:03 host tag: later",
            ("127.0.0.1", d.port),
        )
        .unwrap();
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed().as_secs_f64();
    assert!(suppressed > 0, "{suppressed}");
    let text = d.wait_lines(&d.path("all.log"), received as usize);
    assert_eq!(text.lines().count() as u64, received);
    // Of the flood, the burst passes, then about the rate.
    let flood = text.lines().filter(|l| l.contains("tag: flood ")).count() as f64;
    assert!(
        flood <= 100.0 + 100.0 * elapsed + 1.0,
        "{flood} flood messages written in {elapsed:.2}s"
    );
    if dropped == 0 {
        assert!(flood >= 100.0, "the burst passes: {flood}");
    }
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("messages from 127.0.0.1 suppressed"))
        .unwrap();
    assert!(line.contains("suppressed="), "{line}");
}

#[test]
fn a_peer_that_stops_mid_frame_is_closed_after_the_frame_timeout() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
frame_timeout_secs = 1
"#,
    ));
    let mut good = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    slow.write_all(
        b"<13>Nov 21 09:41:03 host tag: whole\n<13>Nov 21 09:41:03 host tag: half a mess",
    )
    .unwrap();
    let started = Instant::now();
    wait_closed(&mut slow, &d);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    d.wait_stat("inputs", "tcp", "frame_timeouts", 1);
    let text = d.wait_lines(&d.path("all.log"), 2);
    assert!(text.lines().any(|l| l.ends_with("tag: whole")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("half a mess") && l.ends_with("[truncated]")),
        "{text}"
    );
    // A quiet connection between whole frames is not affected (that is `idle_timeout_secs`).
    good.write_all(b"<13>Nov 21 09:41:03 host tag: still here\n")
        .unwrap();
    d.wait_lines(&d.path("all.log"), 3);
    assert_eq!(d.stat("inputs", "tcp", "frame_timeouts"), 1);
}

#[test]
fn an_endless_line_costs_one_bounded_buffer() {
    let d = Daemon::start(&config(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
max_message_size_bytes = 1000
"#,
    ));
    crate::util::tcp_send(d.port, b"<13>Nov 21 09:41:03 host tag: warm up\n");
    d.wait_lines(&d.path("all.log"), 1);
    let before = crate::util::rss_kib(d.pid());
    // 64 MiB without a newline: the first 1000 bytes are kept, the rest is skipped.
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"<13>Nov 21 09:41:03 host tag: ").unwrap();
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..64 {
        s.write_all(&chunk).unwrap();
    }
    s.write_all(b"\n<13>Nov 21 09:41:03 host tag: after\n")
        .unwrap();
    let text = d.wait_lines(&d.path("all.log"), 3);
    let after = crate::util::rss_kib(d.pid());
    assert!(
        text.lines()
            .any(|l| l.contains("zzzz") && l.ends_with("[truncated]") && l.len() < 1200),
        "{text}"
    );
    assert!(text.lines().any(|l| l.ends_with("tag: after")), "{text}");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn limit_keys_are_checked_with_place_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logwell.toml");
    std::fs::write(
        &p,
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:5514"
permit = ["10.0.0.0/33"]
rate_limit_per_sec = 0

[input.udp]
type = "udp"
listen = "127.0.0.1:5514"
frame_timeout_secs = 1

[input.local]
type = "unix_stream"
path = "/tmp/never.sock"
max_connections_per_peer = 3

[output.all]
type = "file"
path = "/tmp/never-written"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let path = p.to_str().unwrap();
    for want in [
        format!("{path}:5:10: `permit`: `10.0.0.0/33` is not an address"),
        "write an address or ADDRESS/BITS".to_string(),
        format!("{path}:6:22: `rate_limit_per_sec` must be a number"),
        format!("{path}:11:22: `frame_timeout_secs` does not apply to udp inputs"),
        format!("{path}:16:28: `max_connections_per_peer` does not apply to unix_stream inputs"),
    ] {
        assert!(err.contains(&want), "no `{want}` in:\n{err}");
    }
}
