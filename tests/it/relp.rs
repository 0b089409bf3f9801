//! RELP (issue 29). The input against the real rsyslog `omrelp` (Debian's `rsyslog-relp`,
//! unpacked by `scripts/peers.sh`, with `librelp0` installed): 100,000 numbered messages with
//! logwelld killed (`kill -9`) and started again in the middle, every one of which must arrive;
//! the same over TLS with a client certificate, and a client the input refuses. The protocol's
//! answers to a broken session are checked byte for byte with a raw socket, as librelp's own
//! answers were read from rsyslog's `imrelp`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use testkit::child::Proc;
use testkit::peers::Peers;
use testkit::{wait, OrPanic};

use crate::util::{free_port, precondition, Daemon, DEADLINE};

/// A raw RELP client: writes frames, reads answers line by line.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        Raw {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn send(&mut self, txnr: u64, command: &str, data: &[u8]) {
        let mut frame = format!("{txnr} {command} {}", data.len()).into_bytes();
        if !data.is_empty() {
            frame.push(b' ');
            frame.extend_from_slice(data);
        }
        frame.push(b'\n');
        self.writer.write_all(&frame).unwrap();
    }

    /// One answer frame, whole (its data may hold LFs: read by its length).
    fn answer(&mut self) -> String {
        let mut head = Vec::new();
        for _ in 0..3 {
            let mut field = Vec::new();
            self.reader.read_until(b' ', &mut field).unwrap();
            if field.last() == Some(&b'\n') || field.is_empty() {
                head.extend_from_slice(&field);
                return String::from_utf8(head).unwrap();
            }
            head.extend_from_slice(&field);
        }
        // "TXNR CMD LEN " read, or "TXNR CMD LEN\n" ended above.
        let len: usize = String::from_utf8_lossy(&head)
            .split(' ')
            .nth(2)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut data = vec![0; len + 1];
        self.reader.read_exact(&mut data).unwrap();
        head.extend_from_slice(&data);
        String::from_utf8(head).unwrap()
    }

    fn open(&mut self) -> String {
        self.send(
            1,
            "open",
            b"relp_version=0\nrelp_software=test\ncommands=syslog",
        );
        self.answer()
    }

    /// Reads until the server closes; what it sent.
    fn rest(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_to_string(&mut s).unwrap();
        s
    }
}

const SESSIONS: &str = r#"
[input.relp]
type = "relp"
listen = "127.0.0.1:{port}"
max_message_size_bytes = 64

[output.all]
type = "file"
path = "{dir}/all.log"

[[rule]]
output = "all"
"#;

#[test]
fn relp_sessions_get_librelps_answers_and_a_broken_one_ends_alone() {
    let d = Daemon::start(SESSIONS);
    let mut a = Raw::connect(d.port);
    let open = a.open();
    assert!(
        open.starts_with("1 rsp ") && open.contains(" 200 OK\nrelp_version=0\n"),
        "{open:?}"
    );
    assert!(open.ends_with("\ncommands=syslog\n"), "{open:?}");
    // With an RFC 5424 template, librelp senders end the data with its own LF.
    a.send(2, "syslog", b"<13>Nov 21 09:41:03 h relp: one\n");
    assert_eq!(a.answer(), "2 rsp 6 200 OK\n");
    // A command not offered: an error, and the session goes on.
    a.send(3, "starttls", b"");
    assert!(a.answer().starts_with("3 rsp "), "500 expected");
    // A frame over max_message_size_bytes: written cut and marked (the default).
    let long = format!("<13>Nov 21 09:41:03 h relp: {}", "x".repeat(100));
    a.send(4, "syslog", long.as_bytes());
    assert_eq!(a.answer(), "4 rsp 6 200 OK\n");

    // A second session breaks the numbering: 500, then serverclose, and it ends.
    let mut b = Raw::connect(d.port);
    b.open();
    b.send(2, "syslog", b"<13>Nov 21 09:41:03 h relp: two");
    assert_eq!(b.answer(), "2 rsp 6 200 OK\n");
    b.send(5, "syslog", b"<13>Nov 21 09:41:03 h relp: never");
    assert_eq!(
        b.rest(),
        "5 rsp 45 500 transaction number 5 where 3 was expected\n0 serverclose 0\n"
    );
    // The first one is still served; close is answered as librelp answers it.
    a.send(5, "syslog", b"<13>Nov 21 09:41:03 h relp: three");
    assert_eq!(a.answer(), "5 rsp 6 200 OK\n");
    a.send(6, "close", b"");
    assert_eq!(a.rest(), "6 rsp 0\n0 serverclose 0\n");

    // Bytes that are no frame end the session; a syslog frame before open too.
    let mut c = Raw::connect(d.port);
    c.writer.write_all(b"hello there\n").unwrap();
    assert_eq!(c.rest(), "0 serverclose 0\n");
    let mut c = Raw::connect(d.port);
    c.send(1, "syslog", b"<13>Nov 21 09:41:03 h relp: too early");
    assert_eq!(
        c.rest(),
        "1 rsp 36 500 the session must start with open\n0 serverclose 0\n"
    );

    let text = d.wait_lines(&d.path("all.log"), 4);
    let msgs: Vec<&str> = text
        .lines()
        .map(|l| l.split_once("relp: ").unwrap().1)
        .collect();
    assert_eq!(msgs.len(), 4, "{text}");
    assert_eq!(msgs[0], "one");
    assert!(
        msgs[1..3].contains(&"two") && msgs[1..3].iter().any(|m| m.starts_with("xxx")),
        "{text}"
    );
    assert_eq!(msgs[3], "three");
    assert!(!text.contains("never") && !text.contains("too early"));
    d.wait_stat("inputs", "relp", "truncated", 1);
    assert_eq!(d.stat("inputs", "relp", "received"), 4);
    assert_eq!(
        d.stat("inputs", "relp", "malformed"),
        3,
        "the numbering, the bytes and the early frame"
    );
}

#[test]
fn relp_oversize_refuse_answers_500_and_writes_nothing() {
    let d = Daemon::start(&SESSIONS.replace(
        "max_message_size_bytes = 64",
        "max_message_size_bytes = 64\noversize = \"refuse\"",
    ));
    let mut a = Raw::connect(d.port);
    a.open();
    let long = format!("<13>Nov 21 09:41:03 h relp: {}", "x".repeat(100));
    a.send(2, "syslog", long.as_bytes());
    assert_eq!(
        a.answer(),
        "2 rsp 63 500 the message has 128 bytes, over max_message_size_bytes (64)\n"
    );
    a.send(3, "syslog", b"<13>Nov 21 09:41:03 h relp: fits");
    assert_eq!(a.answer(), "3 rsp 6 200 OK\n");
    let text = d.wait_lines(&d.path("all.log"), 1);
    assert!(
        text.ends_with("relp: fits\n") && !text.contains("xxx"),
        "{text}"
    );
    assert_eq!(d.stat("inputs", "relp", "malformed"), 1);
    // A message sent just before logwelld stops is written and answered, then serverclose.
    a.send(4, "syslog", b"<13>Nov 21 09:41:03 h relp: last");
    let mut d = d;
    assert!(d.stop().success());
    assert_eq!(a.rest(), "4 rsp 6 200 OK\n0 serverclose 0\n");
    let text = std::fs::read_to_string(d.path("all.log")).unwrap();
    assert!(text.ends_with("relp: last\n"), "{text}");

    let (code, out) = crate::util::check_config(
        "[input.r]\ntype = \"relp\"\nlisten = \"127.0.0.1:5514\"\noversize = \"drop\"\n\n[input.t]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5515\"\noversize = \"refuse\"\n",
    );
    assert_ne!(code, Some(0), "{out}");
    for want in [
        "`drop` is not an oversize choice",
        "\"truncate\"",
        "`oversize` does not apply to tcp inputs",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// The peers `scripts/peers.sh` unpacked, or `None` (after saying why) when the test must
/// skip.
fn find_peers(test: &str) -> Option<Peers> {
    let peers = Peers::from_env().or_panic();
    let why = "run scripts/test.sh (it fetches rsyslog with rsyslog-relp with scripts/peers.sh \
               and sets LOGWELL_PEERS_DIR)";
    if precondition(test, peers.is_none().then_some(why)) {
        peers
    } else {
        None
    }
}

/// How many times each number `n=NNNNNN` appears in `text`.
fn numbers(text: &str) -> HashMap<u32, u32> {
    let mut seen = HashMap::new();
    for line in text.lines() {
        if let Some((_, n)) = line.rsplit_once("n=") {
            if let Ok(n) = n.trim().parse::<u32>() {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// rsyslog listening on `in_port` (imtcp) and sending everything over RELP (omrelp) to
/// `port`, retrying for ever from a memory queue as a reliable forwarder is configured.
fn rsyslog_omrelp(peers: &Peers, dir: &Path, in_port: u16, port: u16, tls: &str) -> Proc {
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" net.enableDNS="off")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="{in_port}")
action(type="omrelp" target="127.0.0.1" port="{port}" template="RSYSLOG_ForwardFormat" {tls}
       queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="128"
       action.resumeRetryCount="-1" action.resumeInterval="1")
"#,
            work = work.display(),
        ),
    )
    .unwrap();
    let mut p = Proc::spawn(
        "rsyslogd",
        peers.rsyslogd(&conf, dir).or_panic(),
        &dir.join("rsyslogd.out"),
    )
    .or_panic();
    p.wait_port(in_port, DEADLINE).or_panic();
    p
}

/// Sends `count` numbered lines to `port` over one TCP connection.
fn send_numbered(port: u16, count: u32) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut batch = Vec::with_capacity(1 << 20);
    for n in 0..count {
        writeln!(batch, "<13>Nov 21 09:41:03 src relptest: n={n:06}").unwrap();
        if batch.len() > 900_000 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    s.write_all(&batch).unwrap();
}

const KILLED: &str = r#"
[input.relp]
type = "relp"
listen = "127.0.0.1:{port}"

[output.all]
type = "file"
path = "{dir}/all.log"

[[rule]]
output = "all"
"#;

#[test]
fn rsyslog_omrelp_into_logwelld_loses_nothing_across_kill_9() {
    let Some(peers) = find_peers("rsyslog_omrelp_into_logwelld_loses_nothing_across_kill_9") else {
        return;
    };
    const COUNT: u32 = 100_000;
    let mut d = Daemon::start(KILLED);
    let dir = d.dir.path().to_path_buf();
    let in_port = free_port();
    let rsyslog = rsyslog_omrelp(&peers, &dir, in_port, d.port, "");
    std::thread::spawn(move || send_numbered(in_port, COUNT));
    let text = || std::fs::read_to_string(dir.join("all.log")).unwrap_or_default();
    // Killed once a third has arrived, mid-stream.
    wait::until(DEADLINE, "a third of the messages", || {
        (text().lines().count() >= COUNT as usize / 3).then_some(())
    })
    .or_panic();
    d.signal(libc::SIGKILL);
    d.wait_exit();
    let at_kill = text().lines().count();
    assert!(at_kill < COUNT as usize, "killed mid-stream: {at_kill}");
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    let seen = wait::try_until(
        DEADLINE * 4,
        "every number",
        || {
            format!(
                "{} lines; rsyslog:\n{}",
                text().lines().count(),
                rsyslog.output()
            )
        },
        || {
            let seen = numbers(&text());
            Ok((seen.len() == COUNT as usize).then_some(seen))
        },
    )
    .or_panic();
    assert!((0..COUNT).all(|n| seen.contains_key(&n)));
    let duplicates: u32 = seen.values().map(|c| c - 1).sum();
    // Only what was written and not yet answered at the kill comes again: at most the
    // sender's window (librelp's 128 transactions), and rsyslog retries its action's batch
    // (dequeueBatchSize 128) as a whole.
    assert!(duplicates <= 2 * 128, "{duplicates} duplicates");
    eprintln!("kill -9 after {at_kill} lines: {duplicates} duplicates");
}

const TLS: &str = r#"
[input.relp]
type = "relp"
listen = "127.0.0.1:{port}"
cert = "{dir}/server.pem"
key = "{dir}/server.key"
ca = "{dir}/ca.pem"
client_auth = "required"
permitted_peers = ["client.example.com"]

[output.all]
type = "file"
path = "{dir}/all.log"

[[rule]]
output = "all"
"#;

#[test]
fn rsyslog_omrelp_over_tls_with_a_client_certificate_and_a_refused_one() {
    let Some(peers) = find_peers("rsyslog_omrelp_over_tls_with_a_client_certificate") else {
        return;
    };
    let d = Daemon::start_with(TLS, crate::tls::make_pki);
    let dir = d.dir.path();
    let tls = |who: &str| {
        format!(
            r#"tls="on" tls.tlslib="openssl" tls.caCert="{dir}/ca.pem" tls.myCert="{dir}/{who}.pem" tls.myPrivKey="{dir}/{who}.key" tls.authMode="name" tls.permittedPeer=["localhost"]"#,
            dir = dir.display()
        )
    };
    let in_port = free_port();
    let good_dir = dir.join("good");
    std::fs::create_dir_all(&good_dir).unwrap();
    let _good = rsyslog_omrelp(&peers, &good_dir, in_port, d.port, &tls("client"));
    send_numbered(in_port, 1000);
    let text = d.wait_lines(&d.path("all.log"), 1000);
    assert_eq!(numbers(&text).len(), 1000);
    assert_eq!(d.stat("inputs", "relp", "tls_refused"), 0);

    // A certificate from another CA: turned away, counted, nothing written.
    let bad_port = free_port();
    let bad_dir = dir.join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let _bad = rsyslog_omrelp(&peers, &bad_dir, bad_port, d.port, &tls("stranger"));
    send_numbered(bad_port, 10);
    d.wait_stat("inputs", "relp", "tls_refused", 1);
    assert_eq!(
        std::fs::read_to_string(d.path("all.log"))
            .unwrap()
            .lines()
            .count(),
        1000
    );
}

/// rsyslog receiving RELP (imrelp) on `port` and writing every message to `dir/received.log`.
fn rsyslog_imrelp(peers: &Peers, dir: &Path, port: u16, tls: &str) -> Proc {
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog-imrelp.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" net.enableDNS="off")
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="{port}" {tls})
template(name="msgonly" type="string" string="%msg%\n")
if $msg contains "n=" then action(type="omfile" file="{out}" template="msgonly")
"#,
            work = work.display(),
            out = dir.join("received.log").display(),
        ),
    )
    .unwrap();
    let mut p = Proc::spawn(
        "rsyslogd-imrelp",
        peers.rsyslogd(&conf, dir).or_panic(),
        &dir.join("rsyslogd-imrelp.out"),
    )
    .or_panic();
    p.wait_port(port, DEADLINE).or_panic();
    p
}

const FORWARDING: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.central]
type = "forward"
targets = "127.0.0.1:{relp_port}"
protocol = "relp"
reconnect_min_ms = 100
reconnect_max_ms = 500

[[rule]]
output = "central"
"#;

#[test]
fn logwelld_forwards_over_relp_to_rsyslog_imrelp_across_its_restart() {
    let Some(peers) = find_peers("logwelld_forwards_over_relp_to_rsyslog_imrelp") else {
        return;
    };
    const COUNT: u32 = 100_000;
    let relp_port = free_port();
    let d = Daemon::start(&FORWARDING.replace("{relp_port}", &relp_port.to_string()));
    let dir = d.dir.path().to_path_buf();
    let mut rsyslog = rsyslog_imrelp(&peers, &dir, relp_port, "");
    let port = d.port;
    std::thread::spawn(move || send_numbered(port, COUNT));
    let received = || std::fs::read_to_string(dir.join("received.log")).unwrap_or_default();
    wait::until(DEADLINE, "a third of the messages at rsyslog", || {
        (received().lines().count() >= COUNT as usize / 3).then_some(())
    })
    .or_panic();
    rsyslog.stop();
    let at_stop = received().lines().count();
    assert!(at_stop < COUNT as usize, "restarted mid-stream: {at_stop}");
    let _rsyslog = rsyslog_imrelp(&peers, &dir, relp_port, "");
    let seen = wait::try_until(
        DEADLINE * 4,
        "every number at rsyslog",
        || {
            format!(
                "{} lines; logwelld:\n{}",
                received().lines().count(),
                d.log()
            )
        },
        || {
            let seen = numbers(&received());
            Ok((seen.len() == COUNT as usize).then_some(seen))
        },
    )
    .or_panic();
    let duplicates: u32 = seen.values().map(|c| c - 1).sum();
    eprintln!("rsyslog restarted after {at_stop} lines: {duplicates} duplicates");
    d.wait_stat("outputs", "central", "delivered", u64::from(COUNT));
    assert_eq!(d.stat("outputs", "central", "dropped"), 0);
}

#[test]
fn relp_forward_settings_are_checked() {
    let (code, out) = crate::util::check_config(
        "[output.a]\ntype = \"forward\"\ntargets = \"127.0.0.1:2514\"\nprotocol = \"relp\"\nframing = \"newline\"\n\n[output.b]\ntype = \"forward\"\ntargets = \"127.0.0.1:2514\"\nprotocol = \"relp\"\nserver_name = \"x\"\n",
    );
    assert_ne!(code, Some(0), "{out}");
    for want in [
        "`framing` does not apply to protocol = \"relp\"",
        "RELP over TLS needs `ca` or `fingerprints`",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

const FORWARDING_TLS: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.central]
type = "forward"
targets = "127.0.0.1:{relp_port}"
protocol = "relp"
ca = "{dir}/ca.pem"
cert = "{dir}/{who}.pem"
key = "{dir}/{who}.key"
server_name = "localhost"
reconnect_min_ms = 100
reconnect_max_ms = 500

[[rule]]
output = "central"
"#;

#[test]
fn logwelld_forwards_over_relp_with_tls_and_a_refused_certificate_delivers_nothing() {
    let Some(peers) = find_peers("logwelld_forwards_over_relp_with_tls") else {
        return;
    };
    for (who, delivered) in [("client", true), ("stranger", false)] {
        let relp_port = free_port();
        let d = Daemon::start_with(
            &FORWARDING_TLS
                .replace("{relp_port}", &relp_port.to_string())
                .replace("{who}", who),
            crate::tls::make_pki,
        );
        let dir = d.dir.path();
        let tls = format!(
            r#"tls="on" tls.tlslib="openssl" tls.caCert="{dir}/ca.pem" tls.myCert="{dir}/server.pem" tls.myPrivKey="{dir}/server.key" tls.authMode="name" tls.permittedPeer=["client.example.com"]"#,
            dir = dir.display()
        );
        let rsyslog = rsyslog_imrelp(&peers, dir, relp_port, &tls);
        send_numbered(d.port, 1000);
        if delivered {
            d.wait_stat("outputs", "central", "delivered", 1000);
            let text =
                crate::util::wait_lines(&dir.join("received.log"), 1000, || rsyslog.output());
            assert_eq!(numbers(&text).len(), 1000);
        } else {
            // The server turns the stranger away: nothing leaves the queue, every try counts.
            d.wait_stat("outputs", "central", "failed", 2);
            assert_eq!(d.stat("outputs", "central", "delivered"), 0);
            assert_eq!(d.stat("outputs", "central", "queued"), 1000);
            assert!(!dir.join("received.log").exists());
        }
    }
}
