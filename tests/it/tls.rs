//! The TLS input (RFC 5425) with the real `openssl s_client`: messages from a client with a
//! certificate from the configured CA land with the client's name; a client without a
//! certificate, with one from another CA, not in `permitted_peers`, or that never completes
//! its handshake is refused, logged and counted (`tls_refused`); an expired server
//! certificate is refused by `logwelld --check-config`. Every limit of network inputs
//! (`permit`, per-peer connections, per-peer rate, frame timeout, idle timeout, bounded
//! buffer) holds over TLS as over TCP. The certificates are made by the `openssl` command
//! line in the test's directory; the real rsyslog and syslog-ng senders are in `peers.rs`.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{pki, wait, OrPanic};

use crate::util::{wait_child, wait_until, Daemon, DEADLINE};

/// `expired.pem` / `expired.key`, signed by `ca`, valid through 2019 only: `openssl x509`
/// (3.0) cannot set past dates, `openssl ca` can.
fn make_expired(dir: &Path, ca: &str) {
    pki::make_request(dir, "expired", "localhost", "serverAuth").or_panic();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = anything\n[anything]\ncommonName = supplied\n\
         [server]\nsubjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n",
    )
    .unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    pki::openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &ca_pem,
            "-keyfile",
            &ca_key,
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-notext",
            "-extensions",
            "server",
            "-startdate",
            "20190101000000Z",
            "-enddate",
            "20200101000000Z",
        ],
    )
    .or_panic();
}

/// The test PKI ([`pki::make_pki`]): `ca` signs `server` (localhost) and `client`
/// (client.example.com); `other` signs `stranger` (client.example.com too).
pub(crate) fn make_pki(dir: &Path) {
    pki::make_pki(dir).or_panic()
}

/// Starts `openssl s_client` trusting `ca`, presenting `client` (names in the test
/// directory) when given; write to its stdin to send.
pub(crate) fn connect(d: &Daemon, client: Option<&str>, ca: &str) -> Child {
    connect_with(d, client, ca, &[])
}

/// [`connect`] with more `openssl s_client` options (`-tls1_2`).
fn connect_with(d: &Daemon, client: Option<&str>, ca: &str, options: &[&str]) -> Child {
    let dir = d.dir.path();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-no_ign_eof",
        "-verify_return_error",
        "-connect",
    ])
    .arg(format!("127.0.0.1:{}", d.port))
    .args(["-servername", "localhost", "-CAfile"])
    .arg(dir.join(format!("{ca}.pem")))
    .args(options);
    if let Some(c) = client {
        cmd.arg("-cert")
            .arg(dir.join(format!("{c}.pem")))
            .arg("-key")
            .arg(dir.join(format!("{c}.key")));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client")
}

/// Closes the client's stdin and waits for it to exit.
pub(crate) fn finish(mut child: Child) {
    drop(child.stdin.take());
    wait_child(&mut child, "openssl s_client to exit", String::new);
}

/// Sends `bytes` with `openssl s_client` (see [`connect`]); returns once it has exited.
pub(crate) fn send(d: &Daemon, client: Option<&str>, bytes: &[u8]) {
    let mut child = connect(d, client, "ca");
    let _ = child.stdin.as_mut().unwrap().write_all(bytes);
    finish(child);
}

pub(crate) fn config(extra: &str) -> String {
    format!(
        r#"
[input.tls]
type = "tls"
listen = "127.0.0.1:{{port}}"
cert = "{{dir}}/server.pem"
key = "{{dir}}/server.key"
{extra}

[output.json]
type = "file"
path = "{{dir}}/all.json"
format = "json"
flush_interval_ms = 20

[[rule]]
output = "json"
"#
    )
}

#[test]
fn messages_from_a_permitted_client_land_with_its_name() {
    let d = Daemon::start_with(
        &config(
            "client_auth = \"required\"\nca = \"{dir}/ca.pem\"\npermitted_peers = [\"*.example.com\"]",
        ),
        make_pki,
    );
    let one = "<13>1 2026-01-02T03:04:05Z web1 app - - - first over tls\n";
    let two = "<13>1 2026-01-02T03:04:06Z web1 app - - - second, octet-counted";
    let three = "<13>1 2026-01-02T03:04:07Z web1 app - - - third\n";
    send(
        &d,
        Some("client"),
        format!("{one}{} {two}{three}", two.len()).as_bytes(),
    );
    let text = d.wait_lines(&d.path("all.json"), 3);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["msg"], "first over tls");
    assert_eq!(lines[1]["msg"], "second, octet-counted");
    assert_eq!(lines[2]["msg"], "third");
    for l in &lines {
        assert_eq!(l["tls_peer"], "client.example.com", "{l}");
        assert_eq!(l["input"], "tls", "{l}");
    }
}

#[test]
fn clients_without_a_certificate_from_the_ca_are_refused() {
    let d = Daemon::start_with(
        &config("client_auth = \"required\"\nca = \"{dir}/ca.pem\""),
        make_pki,
    );
    send(&d, None, b"<13>1 - h app - - - no certificate\n");
    send(&d, Some("stranger"), b"<13>1 - h app - - - another CA\n");
    send(&d, Some("client"), b"<13>1 - h app - - - the right one\n");
    let text = d.wait_lines(&d.path("all.json"), 1);
    assert!(text.contains("the right one"), "{text}");
    assert!(!text.contains("no certificate"), "{text}");
    assert!(!text.contains("another CA"), "{text}");
    let log = d.log();
    assert!(
        log.matches("TLS handshake failed").count() >= 2,
        "both refusals are logged:\n{log}"
    );
    // Both are counted as refused TLS clients, the served one is not; `permit` and the
    // connection caps refused nobody.
    d.wait_stat("inputs", "tls", "tls_refused", 2);
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 2);
    assert_eq!(d.stat("inputs", "tls", "refused"), 0);
    assert_eq!(d.stat("inputs", "tls", "connections"), 3);
}

#[test]
fn a_client_not_in_permitted_peers_is_refused_and_named() {
    let d = Daemon::start_with(
        &config(
            "client_auth = \"required\"\nca = \"{dir}/ca.pem\"\npermitted_peers = [\"other.example\"]",
        ),
        make_pki,
    );
    send(&d, Some("client"), b"<13>1 - h app - - - not permitted\n");
    let log = d.wait_log("not in permitted_peers");
    assert!(log.contains("client.example.com"), "{log}");
    d.wait_stat("inputs", "tls", "tls_refused", 1);
    assert_eq!(d.stat("inputs", "tls", "received"), 0);
    let text = std::fs::read_to_string(d.path("all.json")).unwrap_or_default();
    assert!(!text.contains("not permitted"), "{text}");
}

#[test]
fn check_config_refuses_an_expired_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    pki::make_ca(dir.path(), "ca").or_panic();
    make_expired(dir.path(), "ca");
    let p = dir.path().join("logwell.toml");
    let text = crate::util::render(
        "[input.tls]\ntype = \"tls\"\nlisten = \"127.0.0.1:6514\"\ncert = \"{dir}/expired.pem\"\nkey = \"{dir}/expired.key\"\n",
        dir.path(),
        0,
    );
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:4:", p.display())), "{err}");
    assert!(err.contains("expired.pem"), "{err}");
    assert!(err.contains("expired on 2020-01-01"), "{err}");
    assert!(err.contains("renew it"), "{err}");
}

#[test]
fn a_renewed_certificate_is_used_for_new_connections_and_old_ones_stay() {
    let d = Daemon::start_with(&config(""), make_pki);
    let dir = d.dir.path();
    let mut old = connect(&d, None, "ca");
    let stdin = old.stdin.as_mut().unwrap();
    stdin
        .write_all(b"<13>1 - h app - - - before the renewal\n")
        .unwrap();
    stdin.flush().unwrap();
    d.wait_lines(&d.path("all.json"), 1);
    // The new certificate comes from the other CA: only a client trusting that one accepts it.
    pki::make_cert(dir, "renewed", "localhost", "serverAuth", "other").or_panic();
    std::fs::rename(dir.join("renewed.key"), dir.join("server.key")).unwrap();
    std::fs::rename(dir.join("renewed.pem"), dir.join("server.pem")).unwrap();
    let mut new = connect(&d, None, "other");
    let _ = new
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"<13>1 - h app - - - with the renewed certificate\n");
    finish(new);
    d.wait_lines(&d.path("all.json"), 2);
    d.wait_log("TLS certificate and key reloaded");
    let stdin = old.stdin.as_mut().unwrap();
    stdin
        .write_all(b"<13>1 - h app - - - still connected\n")
        .unwrap();
    finish(old);
    let text = d.wait_lines(&d.path("all.json"), 3);
    assert!(text.contains("with the renewed certificate"), "{text}");
    assert!(text.contains("still connected"), "{text}");
}

/// Waits until `child` exits by itself (the daemon closed its connection), its stdin still
/// open.
fn wait_gone(child: &mut Child, d: &Daemon) {
    wait_child(child, "the daemon to close the connection", || d.log());
}

/// The lines of the JSON output, parsed.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn clients_that_fail_or_never_finish_the_handshake_are_refused_and_counted() {
    let d = Daemon::start_with(&config(""), make_pki);
    // Not TLS at all: the handshake fails at once.
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    garbage
        .write_all(b"<13>1 - h app - - - plain text to a TLS port\n")
        .unwrap();
    d.wait_stat("inputs", "tls", "tls_refused", 1);
    d.wait_log("TLS handshake failed");
    // Silent: refused when the handshake timeout (10 s) passes.
    let silent = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let started = Instant::now();
    d.wait_stat("inputs", "tls", "tls_refused", 2);
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "refused after {:?}",
        started.elapsed()
    );
    d.wait_log("TLS handshake timed out");
    assert_eq!(d.stat("inputs", "tls", "received"), 0);
    assert_eq!(d.stat("inputs", "tls", "active_connections"), 0);
    // `logwell stats` shows the count in its table too.
    let out = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["stats", "--socket"])
        .arg(d.path("control.sock"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let header: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("input") && l.contains(" tls "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    // The header has no word for the first column ("input").
    let column = header.iter().position(|h| *h == "TLS_REFUSED").unwrap() + 1;
    assert_eq!(row[column], "2", "{table}");
    drop((garbage, silent));
}

#[test]
fn a_tls_peer_not_in_permit_is_refused_before_the_handshake() {
    let d = Daemon::start_with(&config("permit = [\"10.0.0.0/8\", \"::1\"]"), make_pki);
    send(&d, None, b"<13>1 - h app - - - from outside permit\n");
    d.wait_stat("inputs", "tls", "refused", 1);
    d.wait_log("the peer is not in `permit`");
    // Closed before any TLS work: not a refused TLS client, not a connection.
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 0);
    assert_eq!(d.stat("inputs", "tls", "connections"), 0);
    assert_eq!(d.stat("inputs", "tls", "received"), 0);
    let text = std::fs::read_to_string(d.path("all.json")).unwrap_or_default();
    assert!(!text.contains("outside permit"), "{text}");
}

#[test]
fn a_tls_peer_in_permit_is_served() {
    let d = Daemon::start_with(&config("permit = [\"127.0.0.0/8\"]"), make_pki);
    send(&d, None, b"<13>1 - h app - - - from inside permit\n");
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 1));
    assert_eq!(lines[0]["msg"], "from inside permit");
    assert_eq!(d.stat("inputs", "tls", "refused"), 0);
}

#[test]
fn tls_connections_over_the_per_peer_cap_are_closed_at_once() {
    let d = Daemon::start_with(&config("max_connections_per_peer = 1"), make_pki);
    let mut first = connect(&d, None, "ca");
    let stdin = first.stdin.as_mut().unwrap();
    stdin.write_all(b"<13>1 - h app - - - first\n").unwrap();
    stdin.flush().unwrap();
    d.wait_lines(&d.path("all.json"), 1);
    // A second connection from the same address is closed before its handshake.
    send(&d, None, b"<13>1 - h app - - - second, over the cap\n");
    d.wait_stat("inputs", "tls", "refused", 1);
    d.wait_log("max_connections_per_peer");
    assert_eq!(d.stat("inputs", "tls", "connections"), 1);
    // The first one is still served; once it is gone, the peer may connect again.
    let stdin = first.stdin.as_mut().unwrap();
    stdin
        .write_all(b"<13>1 - h app - - - first again\n")
        .unwrap();
    stdin.flush().unwrap();
    d.wait_lines(&d.path("all.json"), 2);
    finish(first);
    wait_until(
        "no active TLS connections",
        || d.stat("inputs", "tls", "active_connections") == 0,
        || d.log(),
    );
    send(
        &d,
        None,
        b"<13>1 - h app - - - third, after the first closed\n",
    );
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 3));
    let msgs: Vec<&str> = lines.iter().map(|l| l["msg"].as_str().unwrap()).collect();
    assert_eq!(
        msgs,
        ["first", "first again", "third, after the first closed"]
    );
    assert_eq!(d.stat("inputs", "tls", "refused"), 1);
}

#[test]
fn tls_messages_over_the_rate_are_suppressed_counted_and_summed_up() {
    let d = Daemon::start_with(
        &config("rate_limit_per_sec = 1\nrate_limit_burst = 5"),
        make_pki,
    );
    let mut client = connect(&d, None, "ca");
    let stdin = client.stdin.as_mut().unwrap();
    let flood: String = (0..50)
        .map(|n| format!("<13>1 - h app - - - flood {n}\n"))
        .collect();
    let start = Instant::now();
    stdin.write_all(flood.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Every message is either written or suppressed.
    let (received, suppressed) = wait::try_until(
        DEADLINE,
        "50 messages received or suppressed",
        || format!("{}\n{}", d.stats_json().unwrap(), d.log()),
        || {
            let s = d.stats_json().unwrap();
            let i = &s["inputs"]["tls"];
            let counts = (
                i["received"].as_u64().unwrap(),
                i["suppressed"].as_u64().unwrap(),
            );
            Ok((counts.0 + counts.1 == 50).then_some(counts))
        },
    )
    .or_panic();
    let elapsed = start.elapsed().as_secs_f64();
    // The burst passes, then at most the rate.
    assert!(received >= 5, "{received}");
    assert!(
        received as f64 <= 5.0 + elapsed + 1.0,
        "{received} passed in {elapsed:.2}s"
    );
    assert!(suppressed >= 50 - received, "{suppressed}");
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), received as usize));
    assert_eq!(lines.len() as u64, received);
    for (n, l) in lines.iter().take(5).enumerate() {
        assert_eq!(l["msg"], format!("flood {n}"), "the burst, in order");
    }
    // The peer resumes under the rate: the log sums up what was suppressed.
    let deadline = Instant::now() + DEADLINE;
    while !d.log().contains("messages from 127.0.0.1 suppressed") {
        assert!(Instant::now() < deadline, "{}", d.log());
        stdin.write_all(b"<13>1 - h app - - - later\n").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    finish(client);
}

#[test]
fn a_tls_peer_that_stops_mid_frame_is_closed_after_the_frame_timeout() {
    let d = Daemon::start_with(&config("frame_timeout_secs = 1"), make_pki);
    let mut good = connect(&d, None, "ca");
    let mut slow = connect(&d, None, "ca");
    let stdin = slow.stdin.as_mut().unwrap();
    // The daemon reads the half message after this instant: it cannot close the connection
    // sooner than a second after it.
    let started = Instant::now();
    stdin
        .write_all(b"<13>1 - h app - - - whole\n<13>1 - h app - - - half a mess")
        .unwrap();
    stdin.flush().unwrap();
    wait_gone(&mut slow, &d);
    d.wait_stat("inputs", "tls", "frame_timeouts", 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 2));
    assert_eq!(lines[0]["msg"], "whole");
    assert_eq!(lines[1]["msg"], "half a mess");
    assert_eq!(lines[1]["truncated"], true, "{}", lines[1]);
    // A quiet connection between whole frames is not affected.
    let stdin = good.stdin.as_mut().unwrap();
    stdin
        .write_all(b"<13>1 - h app - - - still here\n")
        .unwrap();
    stdin.flush().unwrap();
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 3));
    assert_eq!(lines[2]["msg"], "still here");
    assert_eq!(d.stat("inputs", "tls", "frame_timeouts"), 1);
    finish(good);
}

#[test]
fn an_idle_tls_connection_is_closed_after_the_idle_timeout() {
    let d = Daemon::start_with(&config("idle_timeout_secs = 1"), make_pki);
    let mut client = connect(&d, None, "ca");
    let stdin = client.stdin.as_mut().unwrap();
    // The daemon reads the line after this instant: it cannot idle out sooner than a second
    // after it.
    let started = Instant::now();
    stdin
        .write_all(b"<13>1 - h app - - - then quiet\n")
        .unwrap();
    stdin.flush().unwrap();
    d.wait_lines(&d.path("all.json"), 1);
    wait_gone(&mut client, &d);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    wait_until(
        "no active TLS connections",
        || d.stat("inputs", "tls", "active_connections") == 0,
        || d.log(),
    );
    assert_eq!(d.stat("inputs", "tls", "frame_timeouts"), 0);
}

#[test]
fn an_endless_line_over_tls_costs_one_bounded_buffer() {
    let d = Daemon::start_with(&config("max_message_size_bytes = 1000"), make_pki);
    send(&d, None, b"<13>1 - h app - - - warm up\n");
    d.wait_lines(&d.path("all.json"), 1);
    let before = crate::util::rss_kib(d.pid());
    // 32 MiB without a newline: the first 1000 bytes are kept, the rest is skipped.
    let mut client = connect(&d, None, "ca");
    let stdin = client.stdin.as_mut().unwrap();
    stdin.write_all(b"<13>1 - h app - - - ").unwrap();
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..32 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.write_all(b"\n<13>1 - h app - - - after\n").unwrap();
    finish(client);
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 3));
    let after = crate::util::rss_kib(d.pid());
    let cut = lines[1]["msg"].as_str().unwrap();
    assert!(cut.starts_with("zzzz") && cut.len() < 1000, "{}", cut.len());
    assert_eq!(lines[1]["truncated"], true);
    assert_eq!(lines[2]["msg"], "after");
    assert_eq!(d.stat("inputs", "tls", "truncated"), 1);
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// A TLS input on `{port}` that requires a client certificate from the test CA.
pub const CLIENT_AUTH_INPUT: &str = r#"
[input.tls]
type = "tls"
listen = "127.0.0.1:{port}"
cert = "{dir}/server.pem"
key = "{dir}/server.key"
client_auth = "required"
ca = "{dir}/ca.pem"
"#;

#[test]
fn a_tls_peer_rule_sends_one_client_to_its_own_file() {
    let d = Daemon::start_with(
        &[
            CLIENT_AUTH_INPUT,
            "\n",
            r#"[output.web2]
type = "file"
path = "{dir}/web2.json"
format = "json"
flush_interval_ms = 20

[output.rest]
type = "file"
path = "{dir}/rest.json"
format = "json"
flush_interval_ms = 20

[[rule]]
tls_peer = "WEB2.example.com"
output = "web2"
final = true

[[rule]]
output = "rest"
"#,
        ]
        .concat(),
        |dir| {
            make_pki(dir);
            pki::make_cert(dir, "web2", "web2.example.com", "clientAuth", "ca").or_panic();
        },
    );
    // Both claim the same host name in the message: only the certificate tells them apart.
    send(
        &d,
        Some("client"),
        b"<13>1 - web2.example.com app - - - from client.example.com\n",
    );
    send(
        &d,
        Some("web2"),
        b"<13>1 - web2.example.com app - - - from web2\n",
    );
    let web2 = json_lines(&d.wait_lines(&d.path("web2.json"), 1));
    let rest = json_lines(&d.wait_lines(&d.path("rest.json"), 1));
    assert_eq!(web2.len(), 1, "{web2:?}");
    assert_eq!(web2[0]["msg"], "from web2");
    assert_eq!(web2[0]["tls_peer"], "web2.example.com");
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["msg"], "from client.example.com");
    assert_eq!(rest[0]["tls_peer"], "client.example.com");
}

/// The SHA-256 fingerprint `openssl x509` prints for the first certificate in `pem`.
pub(crate) fn fingerprint(pem: &[u8]) -> String {
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin.take().unwrap().write_all(pem).unwrap();
    let out = x509.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The fingerprint of the certificate the daemon presents to a new connection (not
/// verified: the test compares it with the one it expects).
pub(crate) fn presented(d: &Daemon) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", d.port))
        .args(["-servername", "localhost"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-----BEGIN CERTIFICATE-----"),
        "no certificate presented:\n{text}"
    );
    fingerprint(&out.stdout)
}

/// Sends SIGHUP and waits until the daemon has logged its `n`th reload.
pub(crate) fn reload(d: &Daemon, n: usize) {
    d.signal(libc::SIGHUP);
    wait_until(
        &format!("reload {n} in the log"),
        || d.log().matches("SIGHUP: configuration reloaded").count() >= n,
        || d.log(),
    );
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_established_connections() {
    let d = Daemon::start_with(&config(""), make_pki);
    let dir = d.dir.path();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(presented(&d), fingerprint(&read("server.pem")));
    let mut old = connect(&d, None, "ca");
    let mut line = |text: &str| {
        let stdin = old.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("<13>1 - h app - - - {text}\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
    };
    line("before the reloads");
    d.wait_lines(&d.path("all.json"), 1);

    // Same paths, new contents, the old modification times: only SIGHUP can notice.
    let touch = |from: &str, to: &str| {
        let done = Command::new("touch")
            .arg("-r")
            .arg(dir.join(from))
            .arg(dir.join(to))
            .status()
            .unwrap();
        assert!(done.success());
    };
    touch("server.pem", "pem.stamp");
    touch("server.key", "key.stamp");
    pki::make_cert(dir, "renewed", "localhost", "serverAuth", "other").or_panic();
    std::fs::copy(dir.join("renewed.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(dir.join("renewed.key"), dir.join("server.key")).unwrap();
    touch("pem.stamp", "server.pem");
    touch("key.stamp", "server.key");
    reload(&d, 1);
    assert_eq!(presented(&d), fingerprint(&read("renewed.pem")));
    line("after the first reload");
    d.wait_lines(&d.path("all.json"), 2);

    // New paths in the configuration, the rest of the input the same: swapped in place.
    pki::make_cert(dir, "third", "localhost", "serverAuth", "ca").or_panic();
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("/server.pem", "/third.pem")
            .replace("/server.key", "/third.key"),
    )
    .unwrap();
    reload(&d, 2);
    assert_eq!(presented(&d), fingerprint(&read("third.pem")));
    line("after the second reload");
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 3));
    assert_eq!(lines[2]["msg"], "after the second reload");
    assert!(
        old.try_wait().unwrap().is_none(),
        "the first connection is still open"
    );
    let log = d.log();
    assert!(!log.contains("input stopped"), "{log}");
    assert_eq!(d.stat("inputs", "tls", "active_connections"), 1);
    finish(old);
}

/// `logwelld --check-config` on `text` (with `{dir}` filled in) written to `logwell.toml`
/// in `dir`: its exit code and stderr, and the config's path.
fn check_config(dir: &Path, text: &str) -> (Option<i32>, String, std::path::PathBuf) {
    let p = dir.join("logwell.toml");
    std::fs::write(&p, crate::util::render(text, dir, 0)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap(), p)
}

#[test]
fn a_tls_listen_address_without_a_port_takes_6514() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    // Nothing is bound by --check-config: the port shows in the clash with a tcp input.
    let (code, err, _) = check_config(
        dir.path(),
        "[daemon]\nprivsep = false\n\n[input.tls]\ntype = \"tls\"\nlisten = \"127.0.0.1\"\n\
         cert = \"{dir}/server.pem\"\nkey = \"{dir}/server.key\"\n\n\
         [input.plain]\ntype = \"tcp\"\nlisten = \"127.0.0.1:6514\"\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("both use tcp 127.0.0.1:6514"), "{err}");
}

#[test]
fn optional_client_auth_names_a_verified_client_serves_an_anonymous_one_and_refuses_another_ca() {
    let d = Daemon::start_with(
        &config("client_auth = \"optional\"\nca = \"{dir}/ca.pem\""),
        make_pki,
    );
    send(
        &d,
        Some("client"),
        b"<13>1 - h app - - - with a certificate\n",
    );
    d.wait_lines(&d.path("all.json"), 1);
    send(&d, None, b"<13>1 - h app - - - without one\n");
    d.wait_lines(&d.path("all.json"), 2);
    send(
        &d,
        Some("stranger"),
        b"<13>1 - h app - - - from another CA\n",
    );
    d.wait_stat("inputs", "tls", "tls_refused", 1);
    d.wait_log("TLS handshake failed");
    // One more served client after the refusal: had the stranger been served, its line
    // would be in the file before this one.
    send(&d, None, b"<13>1 - h app - - - last\n");
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 3));
    let msgs: Vec<&str> = lines.iter().map(|l| l["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["with a certificate", "without one", "last"]);
    assert_eq!(lines[0]["tls_peer"], "client.example.com", "{}", lines[0]);
    assert!(lines[1].get("tls_peer").is_none(), "{}", lines[1]);
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 1);
}

#[test]
fn a_sha256_fingerprint_in_permitted_peers_admits_that_certificate_only() {
    // The certificates are made first, for the configuration to name one's digest.
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    // Same CA, same name: only the fingerprint tells them apart.
    testkit::pki::make_cert(pki.path(), "twin", "client.example.com", "clientAuth", "ca")
        .or_panic();
    let digest = fingerprint(&std::fs::read(pki.path().join("client.pem")).unwrap());
    let hex = digest.split_once('=').unwrap().1;
    let d = Daemon::start_with(
        &config(&format!(
            "ca = \"{{dir}}/ca.pem\"\npermitted_peers = [\"sha256:{hex}\"]"
        )),
        |dir| {
            for f in std::fs::read_dir(pki.path()).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
            }
        },
    );
    send(&d, Some("twin"), b"<13>1 - h app - - - the twin\n");
    let log = d.wait_log("not in permitted_peers");
    assert!(log.contains("client.example.com"), "{log}");
    send(&d, Some("client"), b"<13>1 - h app - - - the pinned one\n");
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 1));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["msg"], "the pinned one");
    assert_eq!(lines[0]["tls_peer"], "client.example.com");
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 1);
}

#[test]
fn a_client_certificate_with_a_common_name_and_no_san_is_matched_by_name() {
    let d = Daemon::start_with(
        &config(
            "client_auth = \"required\"\nca = \"{dir}/ca.pem\"\npermitted_peers = [\"legacy.example.net\"]",
        ),
        |dir| {
            make_pki(dir);
            pki::make_request(dir, "legacy", "legacy.example.net", "clientAuth").or_panic();
            std::fs::write(
                dir.join("legacy.ext"),
                "basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n",
            )
            .unwrap();
            pki::sign(dir, "legacy", "ca").or_panic();
        },
    );
    // The certificate really has no subjectAltName.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(d.path("legacy.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CN = legacy.example.net"), "{text}");
    assert!(!text.contains("Subject Alternative Name"), "{text}");
    send(
        &d,
        Some("legacy"),
        b"<13>1 - h app - - - common name only\n",
    );
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 1));
    assert_eq!(lines[0]["msg"], "common name only");
    assert_eq!(lines[0]["tls_peer"], "legacy.example.net");
    assert_eq!(d.stat("inputs", "tls", "tls_refused"), 0);
}

#[test]
fn check_config_names_a_key_that_is_not_the_certificates_and_a_missing_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let input = |key: &str, ca: &str| {
        format!(
            "[daemon]\nprivsep = false\n\n[input.tls]\ntype = \"tls\"\nlisten = \"127.0.0.1:6514\"\n\
             cert = \"{{dir}}/server.pem\"\nkey = \"{{dir}}/{key}\"\nclient_auth = \"required\"\n\
             ca = \"{{dir}}/{ca}\"\n"
        )
    };
    let (code, err, p) = check_config(dir.path(), &input("client.key", "ca.pem"));
    assert_eq!(code, Some(1), "{err}");
    let key = dir.path().join("client.key");
    let cert = dir.path().join("server.pem");
    assert!(err.contains(&format!("{}:8:", p.display())), "{err}");
    assert!(
        err.contains(&format!(
            "the key {} does not match the certificate {}",
            key.display(),
            cert.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: point `key` at the key the certificate was issued for"),
        "{err}"
    );

    let (code, err, p) = check_config(dir.path(), &input("server.key", "missing-ca.pem"));
    assert_eq!(code, Some(1), "{err}");
    let ca = dir.path().join("missing-ca.pem");
    assert!(err.contains(&format!("{}:10:", p.display())), "{err}");
    assert!(
        err.contains(&format!("cannot read {}", ca.display())),
        "{err}"
    );
    assert!(err.contains("hint: check the path"), "{err}");
}

#[test]
fn a_tls_1_2_client_is_served_and_a_tls_1_1_client_is_refused() {
    let d = Daemon::start_with(&config(""), make_pki);
    let mut tls12 = connect_with(&d, None, "ca", &["-tls1_2"]);
    let _ = tls12
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"<13>1 - h app - - - over TLS 1.2\n");
    finish(tls12);
    let lines = json_lines(&d.wait_lines(&d.path("all.json"), 1));
    assert_eq!(lines[0]["msg"], "over TLS 1.2");

    // OpenSSL 3 still speaks TLS 1.1 at security level 0, unless built without it.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-connect",
        ])
        .arg(format!("127.0.0.1:{}", d.port))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("no protocols available") || stderr.contains("unknown option") {
        println!("note: this openssl cannot offer TLS 1.1; that half is skipped:\n{stderr}");
        return;
    }
    assert!(!out.status.success(), "a TLS 1.1 handshake succeeded");
    d.wait_stat("inputs", "tls", "tls_refused", 1);
    // rustls' reason: a TLS 1.1 hello lacks what 1.2 and 1.3 require.
    d.wait_log("TLS handshake failed; connection closed input=tls peer=127.0.0.1");
    d.wait_log("peer is incompatible");
    assert_eq!(d.stat("inputs", "tls", "received"), 1);
}
