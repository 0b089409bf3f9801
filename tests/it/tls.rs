//! The TLS input (RFC 5425) with the real `openssl s_client`: messages from a client with a
//! certificate from the configured CA land with the client's name; a client without a
//! certificate, with one from another CA, or not in `permitted_peers` is refused and logged;
//! an expired server certificate is refused by `logwelld --check-config`. The certificates are
//! made by the `openssl` command line in the test's directory.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Daemon, DEADLINE};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `NAME.pem` / `NAME.key`.
fn make_ca(dir: &Path, name: &str) {
    let (pem, key, subj) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN=logwell test {name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subj,
        ],
    );
}

/// A key and signing request `NAME.key` / `NAME.csr` for `cn`, and the extensions file
/// `NAME.ext` (DNS name `cn`, for a server or a client).
fn make_request(dir: &Path, name: &str, cn: &str, usage: &str) {
    let (key, csr, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName = DNS:{cn}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = {usage}\n"
        ),
    )
    .unwrap();
}

/// `NAME.pem`, signed by `ca`, valid for a day.
fn make_cert(dir: &Path, name: &str, cn: &str, usage: &str, ca: &str) {
    make_request(dir, name, cn, usage);
    let (csr, pem, ext, ca_pem, ca_key) = (
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext,
        ],
    );
}

/// `expired.pem` / `expired.key`, signed by `ca`, valid through 2019 only: `openssl x509`
/// (3.0) cannot set past dates, `openssl ca` can.
fn make_expired(dir: &Path, ca: &str) {
    make_request(dir, "expired", "localhost", "serverAuth");
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
    openssl(
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
    );
}

/// The test PKI: `ca` signs `server` (localhost) and `client` (client.example.com);
/// `other` signs `stranger` (client.example.com too).
fn make_pki(dir: &Path) {
    make_ca(dir, "ca");
    make_ca(dir, "other");
    make_cert(dir, "server", "localhost", "serverAuth", "ca");
    make_cert(dir, "client", "client.example.com", "clientAuth", "ca");
    make_cert(dir, "stranger", "client.example.com", "clientAuth", "other");
}

/// Starts `openssl s_client` trusting `ca`, presenting `client` (names in the test
/// directory) when given; write to its stdin to send.
fn connect(d: &Daemon, client: Option<&str>, ca: &str) -> Child {
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
    .arg(dir.join(format!("{ca}.pem")));
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
fn finish(mut child: Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "openssl s_client did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `bytes` with `openssl s_client` (see [`connect`]); returns once it has exited.
fn send(d: &Daemon, client: Option<&str>, bytes: &[u8]) {
    let mut child = connect(d, client, "ca");
    let _ = child.stdin.as_mut().unwrap().write_all(bytes);
    finish(child);
}

/// Waits until the daemon's log says `what`.
fn wait_log(d: &Daemon, what: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = d.log();
        if log.contains(what) {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{what}` in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(extra: &str) -> String {
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
    let log = wait_log(&d, "not in permitted_peers");
    assert!(log.contains("client.example.com"), "{log}");
    let text = std::fs::read_to_string(d.path("all.json")).unwrap_or_default();
    assert!(!text.contains("not permitted"), "{text}");
}

#[test]
fn check_config_refuses_an_expired_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
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
    make_cert(dir, "renewed", "localhost", "serverAuth", "other");
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
    wait_log(&d, "TLS certificate and key reloaded");
    let stdin = old.stdin.as_mut().unwrap();
    stdin
        .write_all(b"<13>1 - h app - - - still connected\n")
        .unwrap();
    finish(old);
    let text = d.wait_lines(&d.path("all.json"), 3);
    assert!(text.contains("with the renewed certificate"), "{text}");
    assert!(text.contains("still connected"), "{text}");
}
