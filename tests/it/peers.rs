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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::{config, make_pki};
use crate::util::{logger, Daemon, DEADLINE};

/// Where `scripts/peers.sh` unpacked the senders (its `env` file).
struct Peers {
    vars: HashMap<String, String>,
}

impl Peers {
    /// The senders, or `None` (after saying why) when the test must skip.
    fn find() -> Option<Peers> {
        let Some(dir) = std::env::var_os("LOGWELL_PEERS_DIR") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "LOGWELL_PEERS_DIR is unset under CI=true: run the tests with scripts/test.sh, \
                     which fetches rsyslog and syslog-ng with scripts/peers.sh"
                );
            }
            eprintln!(
                "skipped: run scripts/test.sh (it fetches rsyslog and syslog-ng with \
                 scripts/peers.sh and sets LOGWELL_PEERS_DIR)"
            );
            return None;
        };
        let env = Path::new(&dir).join("env");
        let text = std::fs::read_to_string(&env).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/peers.sh {}",
                env.display(),
                Path::new(&dir).display()
            )
        });
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Peers { vars })
    }

    fn get(&self, key: &str) -> PathBuf {
        let v = self.vars.get(key).unwrap_or_else(|| {
            panic!("no {key} in $LOGWELL_PEERS_DIR/env: rerun scripts/peers.sh")
        });
        let p = PathBuf::from(v);
        assert!(
            p.exists(),
            "{} is missing: rerun scripts/peers.sh",
            p.display()
        );
        p
    }
}

/// A sender this test started; stopped (SIGTERM, then SIGKILL) by its PID when dropped.
struct Sender {
    name: &'static str,
    child: Child,
    output: PathBuf,
}

impl Sender {
    fn start(name: &'static str, mut cmd: Command, dir: &Path) -> Sender {
        let output = dir.join(format!("{name}.out"));
        let out = std::fs::File::create(&output).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Sender {
            name,
            child,
            output,
        }
    }

    /// What the sender printed.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits until the sender has created `socket` (it is then ready to receive).
    fn wait_socket(&mut self, socket: &Path) {
        let deadline = Instant::now() + DEADLINE;
        while !socket.exists() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status}:\n{}", self.name, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not create {}:\n{}",
                self.name,
                socket.display(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) on the PID of the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
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
fn send_and_check(d: &Daemon, sender: &Sender, socket: &Path) {
    for m in MESSAGES {
        logger(&["-u", socket.to_str().unwrap(), "-t", "peertest", m]);
    }
    let deadline = Instant::now() + DEADLINE;
    let ours = loop {
        let text = std::fs::read_to_string(d.path("all.json")).unwrap_or_default();
        let ours: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["appname"] == "peertest")
            .collect();
        if ours.len() >= MESSAGES.len() {
            break ours;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} messages from {} arrived:\n{text}\n--- {}:\n{}\n--- logwelld:\n{}",
            ours.len(),
            MESSAGES.len(),
            sender.name,
            sender.name,
            sender.output(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let msgs: Vec<&str> = ours.iter().map(|v| v["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, MESSAGES, "from {}", sender.name);
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
    let Some(peers) = Peers::find() else { return };
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
    let mut cmd = Command::new(peers.get("RSYSLOGD"));
    cmd.arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-M")
        .arg(peers.get("RSYSLOG_MODDIR"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"));
    let name = if driver == "ossl" {
        "rsyslog-ossl"
    } else {
        "rsyslog-gtls"
    };
    let mut sender = Sender::start(name, cmd, dir);
    sender.wait_socket(&socket);
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
    let Some(peers) = Peers::find() else { return };
    let d = start_logwelld();
    let dir = d.dir.path();
    let socket = dir.join("syslog-ng.sock");
    let conf = dir.join("syslog-ng.conf");
    let moddir = peers.get("SYSLOG_NG_MODDIR");
    // The module directory is named after the version (`3.38`), which the config must state.
    let version = moddir.file_name().unwrap().to_str().unwrap().to_string();
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
    let mut cmd = Command::new(peers.get("SYSLOG_NG"));
    cmd.env("LD_LIBRARY_PATH", peers.get("SYSLOG_NG_LIBDIR"))
        .arg("-F")
        .arg("--no-caps")
        .arg("-f")
        .arg(&conf)
        .arg("--module-path")
        .arg(&moddir)
        .arg("-p")
        .arg(dir.join("syslog-ng.pid"))
        .arg("-c")
        .arg(dir.join("syslog-ng.ctl"))
        .arg("-R")
        .arg(dir.join("syslog-ng.persist"));
    let mut sender = Sender::start("syslog-ng", cmd, dir);
    sender.wait_socket(&socket);
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
fn forward_and_check(host: &Daemon, receiver: &Sender, file: &Path) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    for m in FORWARDED {
        use std::io::Write;
        writeln!(s, "{m}").unwrap();
    }
    drop(s);
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains("order 1 paid") && text.contains("checkpoint done") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{} wrote:\n{text}\n--- {}:\n{}\n--- logwelld:\n{}",
            receiver.name,
            receiver.name,
            receiver.output(),
            host.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
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
        receiver.name
    );
    let db = line("checkpoint done");
    assert!(
        db.starts_with("db01 postgres[977]"),
        "{}: {db}",
        receiver.name
    );
    // Confirmed once settled.
    host.wait_stat("outputs", "fwd", "delivered", 2);
}

/// rsyslogd receiving with imtcp (plain, or TLS with the `ossl` driver requiring a client
/// certificate from the test CA), writing `HOSTNAME syslogtag msg` (rsyslog's file format
/// without the time).
fn rsyslog_receives(protocol: &str) {
    let Some(peers) = Peers::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let port = crate::util::free_port();
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
    let mut cmd = Command::new(peers.get("RSYSLOGD"));
    cmd.arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-M")
        .arg(peers.get("RSYSLOG_MODDIR"))
        .arg("-i")
        .arg(d.join("rsyslog.pid"));
    let receiver = Sender::start("rsyslogd", cmd, d);
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
    let Some(peers) = Peers::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let port = crate::util::free_port();
    let moddir = peers.get("SYSLOG_NG_MODDIR");
    let version = moddir.file_name().unwrap().to_str().unwrap().to_string();
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
    let mut cmd = Command::new(peers.get("SYSLOG_NG"));
    cmd.env("LD_LIBRARY_PATH", peers.get("SYSLOG_NG_LIBDIR"))
        .arg("-F")
        .arg("--no-caps")
        .arg("-f")
        .arg(&conf)
        .arg("--module-path")
        .arg(&moddir)
        .arg("-p")
        .arg(d.join("syslog-ng.pid"))
        .arg("-c")
        .arg(d.join("syslog-ng.ctl"))
        .arg("-R")
        .arg(d.join("syslog-ng.persist"));
    let receiver = Sender::start("syslog-ng", cmd, d);
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
