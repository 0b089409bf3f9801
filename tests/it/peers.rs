//! Real peers. As TLS senders: Debian's `rsyslogd` (with its `ossl` and its `gtls` network stream
//! driver) and `syslog-ng` forward over TLS, with a client certificate, to a `logwelld` this
//! test starts; the exact messages must land in the output file with the client's verified
//! name (`tls_peer`).
//!
//! Each sender runs in the foreground on its own config, pid file, work directory and Unix
//! socket in the test's directory (never `/dev/log`, never the system's config), and is sent
//! to with the real `logger -u SOCKET`: logger → sender → TLS → logwelld. Only the processes
//! this test started are stopped, by their PIDs.
//!
//! As receivers of logwelld's forward action: rsyslogd (`imtcp`, plain and TLS with `ossl`)
//! and syslog-ng (`syslog()` source, plain and TLS), each requiring the client certificate
//! over TLS, must write the original host name and tag of forwarded messages.
//!
//! The senders are not installed (rsyslog and syslog-ng-core conflict as packages):
//! `scripts/peers.sh` unpacks them and `scripts/test.sh` points `LOGWELL_PEERS_DIR` at them.
//! Without it these tests print why they skip, except under `CI=true`, where they fail.

use std::path::Path;
use std::process::Command;

use testkit::child::Proc;
use testkit::peers::Peers;
use testkit::{wait, OrPanic};

use crate::tls::{config, make_pki};
use crate::util::{free_port, logger, precondition, Daemon, DEADLINE};

/// The senders `scripts/peers.sh` unpacked, or `None` (after saying why) when the test must
/// skip.
fn find_peers(test: &str) -> Option<Peers> {
    let peers = Peers::from_env().or_panic();
    let why = "run scripts/test.sh (it fetches rsyslog and syslog-ng with scripts/peers.sh \
               and sets LOGWELL_PEERS_DIR)";
    if precondition(test, peers.is_none().then_some(why)) {
        peers
    } else {
        None
    }
}

/// Starts a peer (named `name`) with its output in `dir/NAME.out`; stopped (SIGTERM, then
/// SIGKILL) by its PID when dropped.
fn start_peer(name: &str, cmd: Command, dir: &Path) -> Proc {
    Proc::spawn(name, cmd, &dir.join(format!("{name}.out"))).or_panic()
}

/// The logwelld side: a TLS input requiring a client certificate from the test CA, and only
/// `client.example.com`; JSON output.
fn start_logwelld() -> Daemon {
    Daemon::start_with(
        &config(
            "client_auth = \"required\"\nca = \"{dir}/ca.pem\"\npermitted_peers = [\"client.example.com\"]",
        ),
        make_pki,
    )
}

/// The messages each sender forwards (through `logger -t peertest`).
const MESSAGES: [&str; 3] = [
    "first over TLS",
    "second: with \"quotes\" and ünïcode",
    "third and last",
];

/// Sends [`MESSAGES`] to `socket` with logger, then waits until logwelld wrote them and checks
/// them: exact text, in order, from the TLS input, with the client's verified name. Other
/// lines (the sender's own notices) may be there too.
fn send_and_check(d: &Daemon, sender: &Proc, socket: &Path) {
    for m in MESSAGES {
        logger(&["-u", socket.to_str().unwrap(), "-t", "peertest", m]);
    }
    let text = || std::fs::read_to_string(d.path("all.json")).unwrap_or_default();
    let ours = wait::try_until(
        DEADLINE,
        &format!("{} messages from {}", MESSAGES.len(), sender.name()),
        || {
            format!(
                "logwelld wrote:\n{}\n--- {}:\n{}\n--- logwelld:\n{}",
                text(),
                sender.name(),
                sender.output(),
                d.log()
            )
        },
        || {
            let ours: Vec<serde_json::Value> = text()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["appname"] == "peertest")
                .collect();
            Ok((ours.len() >= MESSAGES.len()).then_some(ours))
        },
    )
    .or_panic();
    let msgs: Vec<&str> = ours.iter().map(|v| v["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, MESSAGES, "from {}", sender.name());
    for v in &ours {
        assert_eq!(v["input"], "tls", "{v}");
        assert_eq!(v["tls_peer"], "client.example.com", "{v}");
        assert_eq!(v["facility"], "user", "{v}");
        assert_eq!(v["severity"], "notice", "{v}");
    }
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 0);
}

/// Starts rsyslogd with `driver` (`ossl` or `gtls`) forwarding everything it receives on its
/// own socket to logwelld over TLS, checking the server's name (`x509/name`).
fn rsyslog_forwards_with(driver: &str) {
    let Some(peers) = find_peers(&format!("rsyslog_forwards_with({driver})")) else {
        return;
    };
    let d = start_logwelld();
    let dir = d.dir.path();
    let socket = dir.join("rsyslog.sock");
    std::fs::create_dir_all(dir.join("rsyslog-work")).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(
  workDirectory="{dir}/rsyslog-work"
  net.enableDNS="off"
  defaultNetstreamDriverCAFile="{dir}/ca.pem"
  defaultNetstreamDriverCertFile="{dir}/client.pem"
  defaultNetstreamDriverKeyFile="{dir}/client.key"
)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       StreamDriver="{driver}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted"
       template="RSYSLOG_TraditionalForwardFormat")
"#,
            dir = dir.display(),
            socket = socket.display(),
            port = d.port,
        ),
    )
    .unwrap();
    let cmd = peers.rsyslogd(&conf, dir).or_panic();
    let name = if driver == "ossl" {
        "rsyslog-ossl"
    } else {
        "rsyslog-gtls"
    };
    let mut sender = start_peer(name, cmd, dir);
    sender.wait_path(&socket, DEADLINE).or_panic();
    send_and_check(&d, &sender, &socket);
}

#[test]
fn rsyslog_with_the_ossl_driver_sends_over_tls_with_a_client_certificate() {
    rsyslog_forwards_with("ossl");
}

#[test]
fn rsyslog_with_the_gtls_driver_sends_over_tls_with_a_client_certificate() {
    rsyslog_forwards_with("gtls");
}

#[test]
fn syslog_ng_sends_over_tls_with_a_client_certificate() {
    let Some(peers) = find_peers("syslog_ng_sends_over_tls_with_a_client_certificate") else {
        return;
    };
    let d = start_logwelld();
    let dir = d.dir.path();
    let socket = dir.join("syslog-ng.sock");
    let conf = dir.join("syslog-ng.conf");
    // The config must state the version (`3.38`).
    let version = peers.syslog_ng_version().or_panic();
    // The `syslog()` destination speaks RFC 5424 with octet counting (RFC 5425); the server's
    // certificate is checked against the CA and the address (127.0.0.1 is in its names).
    std::fs::write(
        &conf,
        format!(
            r#"@version: {version}
options {{ chain-hostnames(no); stats-freq(0); }};
source s_test {{ unix-dgram("{socket}"); }};
destination d_logwell {{
  syslog("127.0.0.1" port({port}) transport("tls")
    tls(ca-file("{dir}/ca.pem") cert-file("{dir}/client.pem") key-file("{dir}/client.key")
        peer-verify(required-trusted)));
}};
log {{ source(s_test); destination(d_logwell); }};
"#,
            dir = dir.display(),
            socket = socket.display(),
            port = d.port,
        ),
    )
    .unwrap();
    let cmd = peers.syslog_ng(&conf, dir).or_panic();
    let mut sender = start_peer("syslog-ng", cmd, dir);
    sender.wait_path(&socket, DEADLINE).or_panic();
    send_and_check(&d, &sender, &socket);
}

// --- rsyslog and syslog-ng as *receivers* of logwelld's forward action ---------------------

/// A logwelld host forwarding (`protocol` tcp or tls) to `port`, with the test PKI in its
/// directory (made by `setup`, so the receiver can share it).
fn forwarding_host(dir_of_pki: &Path, port: u16, protocol: &str) -> Daemon {
    let tls = if protocol == "tls" {
        format!(
            "ca = \"{d}/ca.pem\"\ncert = \"{d}/client.pem\"\nkey = \"{d}/client.key\"\nserver_name = \"localhost\"\n",
            d = dir_of_pki.display()
        )
    } else {
        String::new()
    };
    Daemon::start(&format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.fwd]
type = "forward"
targets = ["127.0.0.1:{port}"]
protocol = "{protocol}"
reconnect_min_ms = 50
reconnect_max_ms = 500
{tls}
[[rule]]
output = "fwd"
"#
    ))
}

/// Messages from two hosts and tags, none of them this machine, as a relay receives them.
const FORWARDED: [&str; 2] = [
    "<13>Nov 21 09:41:03 web01 shop[4242]: order 1 paid",
    "<86>1 2026-11-21T09:41:04.250+01:00 db01 postgres 977 - [meta x=\"1\"] checkpoint done",
];

/// Sends [`FORWARDED`] into `host`, then waits until the receiver's file has both, and checks
/// each line names the original host and tag.
fn forward_and_check(host: &Daemon, receiver: &Proc, file: &Path) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    for m in FORWARDED {
        use std::io::Write;
        writeln!(s, "{m}").unwrap();
    }
    drop(s);
    let read = || std::fs::read_to_string(file).unwrap_or_default();
    let text = wait::try_until(
        DEADLINE,
        &format!("both forwarded messages in {}'s file", receiver.name()),
        || {
            format!(
                "{} wrote:\n{}\n--- {}:\n{}\n--- logwelld:\n{}",
                receiver.name(),
                read(),
                receiver.name(),
                receiver.output(),
                host.log()
            )
        },
        || {
            let text = read();
            Ok((text.contains("order 1 paid") && text.contains("checkpoint done")).then_some(text))
        },
    )
    .or_panic();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap()
            .to_string()
    };
    // rsyslog writes RFC 5424 tags without the colon: compare host, tag and pid.
    let web = line("order 1 paid");
    assert!(
        web.starts_with("web01 shop[4242]"),
        "{}: {web}",
        receiver.name()
    );
    let db = line("checkpoint done");
    assert!(
        db.starts_with("db01 postgres[977]"),
        "{}: {db}",
        receiver.name()
    );
    // Confirmed once settled.
    host.wait_stat("outputs", "fwd", "delivered", 2);
}

/// rsyslogd receiving with imtcp (plain, or TLS with the `ossl` driver requiring a client
/// certificate from the test CA), writing `HOSTNAME syslogtag msg` (rsyslog's file format
/// without the time).
fn rsyslog_receives(protocol: &str) {
    let Some(peers) = find_peers(&format!("rsyslog_receives({protocol})")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let port = free_port();
    std::fs::create_dir_all(d.join("rsyslog-work")).unwrap();
    let tls = if protocol == "tls" {
        format!(
            r#"  defaultNetstreamDriver="ossl"
  defaultNetstreamDriverCAFile="{d}/ca.pem"
  defaultNetstreamDriverCertFile="{d}/server.pem"
  defaultNetstreamDriverKeyFile="{d}/server.key""#,
            d = d.display()
        )
    } else {
        String::new()
    };
    let mode = if protocol == "tls" {
        r#" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid""#
    } else {
        ""
    };
    let conf = d.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(
  workDirectory="{d}/rsyslog-work"
  net.enableDNS="off"
{tls}
)
module(load="imtcp"{mode})
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="hosttag" type="string" string="%HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg%\n")
action(type="omfile" file="{d}/received.log" template="hosttag")
"#,
            d = d.display()
        ),
    )
    .unwrap();
    let cmd = peers.rsyslogd(&conf, d).or_panic();
    let receiver = start_peer("rsyslogd", cmd, d);
    // The host retries until rsyslogd listens (its back-off is at most 500 ms).
    let host = forwarding_host(d, port, protocol);
    forward_and_check(&host, &receiver, &d.join("received.log"));
}

#[test]
fn rsyslog_receives_forwarded_messages_over_tcp_with_their_host_and_tag() {
    rsyslog_receives("tcp");
}

#[test]
fn rsyslog_receives_forwarded_messages_over_tls_with_their_host_and_tag() {
    rsyslog_receives("tls");
}

/// syslog-ng receiving with `syslog()` (RFC 5424 framing; plain or TLS requiring a client
/// certificate), writing `$HOST $PROGRAM[$PID]: $MSG`.
fn syslog_ng_receives(protocol: &str) {
    let Some(peers) = find_peers(&format!("syslog_ng_receives({protocol})")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let port = free_port();
    let version = peers.syslog_ng_version().or_panic();
    let transport = if protocol == "tls" {
        format!(
            r#"transport("tls") tls(ca-file("{d}/ca.pem") cert-file("{d}/server.pem") key-file("{d}/server.key") peer-verify(required-trusted))"#,
            d = d.display()
        )
    } else {
        r#"transport("tcp")"#.to_string()
    };
    let conf = d.join("syslog-ng.conf");
    std::fs::write(
        &conf,
        format!(
            r#"@version: {version}
options {{ chain-hostnames(no); keep-hostname(yes); stats-freq(0); }};
source s_net {{ syslog(ip("127.0.0.1") port({port}) {transport}); }};
destination d_file {{ file("{d}/received.log" template("$HOST $PROGRAM[$PID]: $MSG\n")); }};
log {{ source(s_net); destination(d_file); }};
"#,
            d = d.display()
        ),
    )
    .unwrap();
    let cmd = peers.syslog_ng(&conf, d).or_panic();
    let receiver = start_peer("syslog-ng", cmd, d);
    let host = forwarding_host(d, port, protocol);
    forward_and_check(&host, &receiver, &d.join("received.log"));
}

#[test]
fn syslog_ng_receives_forwarded_messages_over_tcp_with_their_host_and_tag() {
    syslog_ng_receives("tcp");
}

#[test]
fn syslog_ng_receives_forwarded_messages_over_tls_with_their_host_and_tag() {
    syslog_ng_receives("tls");
}
