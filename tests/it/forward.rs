//! Forwarding: a host `logwelld` forwards to central `logwelld`s (and to real rsyslog and
//! syslog-ng receivers, in `peers.rs`) over loopback, through its disk-assisted queue. Every
//! message carries a sequence number, and the tests count them at the receiver: none lost,
//! duplicates at most what docs/forwarding.md documents.
//!
//! Waits are on conditions with deadlines; the 10 s outage of the receiver is the scenario
//! itself, not a wait.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::OrPanic;

use crate::util::{wait_for, wait_until, Daemon, DEADLINE};

/// A central receiver: TCP in, one file out, the sender's timestamp kept.
const CENTRAL: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.all]
type = "file"
path = "{dir}/all.log"
format = "FORMAT"
flush_interval_ms = 20

[[rule]]
output = "all"
"#;

fn central(format: &str) -> Daemon {
    Daemon::start(&CENTRAL.replace("FORMAT", format))
}

/// A host: TCP in, forwarded to `targets` with the extra forward keys `extra` (and
/// `[output.fwd.queue]` keys `queue`), and a local file in `format`.
fn host_config(targets: &[u16], extra: &str, queue: &str) -> String {
    let list: Vec<String> = targets
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.local]
type = "file"
path = "{{dir}}/local.log"
format = "rfc3339"
flush_interval_ms = 20

[output.fwd]
type = "forward"
targets = [{}]
reconnect_min_ms = 50
reconnect_max_ms = 500
{extra}

[output.fwd.queue]
{queue}

[[rule]]
output = ["local", "fwd"]
"#,
        list.join(", ")
    )
}

fn message(seq: usize) -> String {
    format!("<13>Nov 21 09:41:03 web01 shop[4242]: order seq={seq:07} padding-to-look-like-a-real-message")
}

/// Sends messages `from..to` over one TCP connection, at most `per_sec` a second (0: as
/// fast as possible).
fn send(port: u16, from: usize, to: usize, per_sec: usize) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = BufWriter::new(s);
    let start = Instant::now();
    for seq in from..to {
        writeln!(w, "{}", message(seq)).unwrap();
        if per_sec > 0 && seq % 100 == 99 {
            w.flush().unwrap();
            let due = start + Duration::from_secs_f64((seq + 1 - from) as f64 / per_sec as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    w.flush().unwrap();
}

/// How many times each sequence number appears in `path`.
fn seqs(path: &Path) -> BTreeMap<usize, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if let Some(at) = line.find("seq=") {
            let n: usize = line[at + 4..at + 11].parse().unwrap();
            *m.entry(n).or_insert(0) += 1;
        }
    }
    m
}

/// Waits until `path` holds every sequence number of `0..n`.
fn wait_all(path: &Path, n: usize, log: impl Fn() -> String) -> BTreeMap<usize, usize> {
    testkit::wait::try_until(
        DEADLINE * 2,
        &format!("{n} messages in {}", path.display()),
        || {
            let m = seqs(path);
            format!(
                "it has {}; first missing: {:?}\n{}",
                m.len(),
                (0..n).find(|i| !m.contains_key(i)),
                log()
            )
        },
        || Ok(Some(seqs(path)).filter(|m| m.len() >= n)),
    )
    .or_panic()
}

/// Starts the host daemon with the central ports filled in.
fn host(targets: &[u16], extra: &str, queue: &str) -> Daemon {
    Daemon::start(&host_config(targets, extra, queue))
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    v.sort();
    v
}

/// The payloads of a segment file's records (the test's own decoder of the format).
fn segment_records(path: &Path) -> Vec<(u64, String)> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"LWQSEG1\n");
    let mut at = 8;
    let mut out = Vec::new();
    while at + 8 <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if at + 8 + len > b.len() {
            break;
        }
        let end = (at + 8 + len) as u64;
        out.push((
            end,
            String::from_utf8_lossy(&b[at + 8..at + 8 + len]).into_owned(),
        ));
        at += 8 + len;
    }
    out
}

fn seq_of(line: &str) -> usize {
    let at = line.find("seq=").unwrap();
    line[at + 4..at + 11].parse().unwrap()
}

/// What the central writes is, byte for byte, what the host writes in the same format:
/// host name, tag, pid, timestamp, structured data and text survive the hop, in RFC 5424
/// and in RFC 3164.
#[test]
fn a_central_logwelld_writes_exactly_what_the_host_writes() {
    for (wire, local_format) in [
        ("rfc5424", "rfc5424"),
        ("rfc5424", "rfc3339"),
        ("rfc3164", "traditional"),
    ] {
        let central = central(local_format);
        let config = host_config(&[central.port], &format!("format = \"{wire}\""), "").replace(
            "format = \"rfc3339\"",
            &format!("format = \"{local_format}\""),
        );
        let host = Daemon::start(&config);
        let msgs = [
            "<34>1 2026-11-21T09:41:03.123456+01:00 db01 postgres 977 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] BOMless text with \"quotes\" and a tab\there".to_string(),
            "<13>Nov 21 09:41:03 web01 nginx[12]: GET /index.html 200".to_string(),
            "<165>1 2026-11-21T08:00:00Z mail01 - - - - no app, no sd".to_string(),
            "<13>Nov 21 09:41:04 web01 cron: no pid here".to_string(),
        ];
        // RFC 3164 cannot say "no tag": the receiver would take the first word of the text
        // for one (docs/forwarding.md says so); send it messages with tags.
        let msgs: Vec<&String> = msgs
            .iter()
            .filter(|m| wire == "rfc5424" || !m.contains(" - - - - "))
            .collect();
        let s = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
        let mut w = BufWriter::new(s);
        for m in &msgs {
            writeln!(w, "{m}").unwrap();
        }
        drop(w);
        let local = host.wait_lines(&host.path("local.log"), msgs.len());
        let remote = central.wait_lines(&central.path("all.log"), msgs.len());
        if wire == "rfc3164" {
            // RFC 3164 carries no structured data, msgid or sub-second time: compare what it
            // carries.
            for (l, r) in local.lines().zip(remote.lines()) {
                assert_eq!(
                    l.split(' ').take(5).collect::<Vec<_>>(),
                    r.split(' ').take(5).collect::<Vec<_>>(),
                    "{wire}/{local_format}"
                );
            }
            assert!(remote.contains(" db01 postgres[977]: "), "{remote}");
            assert!(
                remote.contains(" web01 nginx[12]: GET /index.html 200"),
                "{remote}"
            );
        } else {
            assert_eq!(
                local, remote,
                "{wire} on the wire, {local_format} in the files"
            );
        }
    }
}

/// The receiver stops for 10 s in the middle of a 100,000-message stream, then starts again:
/// every message arrives; duplicates stay within what docs/forwarding.md documents.
#[test]
fn a_receiver_outage_of_10_s_loses_nothing() {
    let mut central = central("rfc3339");
    let host = host(&[central.port], "", "");
    const N: usize = 100_000;
    let port = host.port;
    // 100,000 messages over about 25 s: the outage falls in the middle.
    let sender = std::thread::spawn(move || send(port, 0, N, 4000));
    let all = central.path("all.log");
    wait_until(
        "a third has arrived",
        || seqs(&all).len() >= N / 3,
        || central.log(),
    );
    assert!(central.stop().success());
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    central.restart();
    let outage = outage.elapsed();
    sender.join().unwrap();
    let got = wait_all(&all, N, || host.log());
    wait_until(
        "the host's queue is empty",
        || host.stat("outputs", "fwd", "queued") == 0,
        || host.log(),
    );
    assert!(central.stop().success());
    let got_final = seqs(&all);
    assert_eq!(got_final.len(), N, "no message lost");
    assert!(got.len() == N);
    let duplicated: usize = got_final.values().map(|c| c - 1).sum();
    let retried = host.stat("outputs", "fwd", "retried");
    eprintln!("outage {outage:?}: {duplicated} duplicates, {retried} messages resent");
    // docs/forwarding.md: at most what was written in SETTLE (100 ms) before a reset, plus
    // one batch: at 4,000 messages a second, 400 + 2,000.
    assert!(duplicated <= 2400, "{duplicated} duplicates");
    assert!(host.stat("outputs", "fwd", "delivered") >= N as u64);
    assert!(host.stat("outputs", "fwd", "failed") >= 1);
}

/// `kill -9` with 50,000 messages queued on disk (the receiver down), a restart, and every
/// message arrives once.
#[test]
fn kill_9_with_50000_on_disk_then_all_delivered() {
    let dead = crate::util::free_port();
    // Everything to disk (memory_bytes = 0); kill -9 keeps what the page cache holds.
    let mut host = host(
        &[dead],
        "",
        "memory_bytes = 0\nfsync = \"none\"\nsegment_bytes = \"1M\"",
    );
    const N: usize = 50_000;
    send(host.port, 0, N, 0);
    wait_until(
        "50,000 are on disk",
        || host.stat("outputs", "fwd", "on_disk") == N as u64,
        || host.log(),
    );
    let queue_dir = host.path("state/queue/fwd");
    assert!(segments(&queue_dir).len() > 1, "several segments");
    host.signal(libc::SIGKILL);
    host.wait_exit();
    // The receiver comes up on the port the host was forwarding to.
    let central_cfg = CENTRAL
        .replace("FORMAT", "rfc3339")
        .replace("{port}", &dead.to_string());
    let central = Daemon::start(&central_cfg);
    host.restart();
    let got = wait_all(&central.path("all.log"), N, || host.log());
    assert!(
        got.values().all(|c| *c == 1),
        "each once: {:?}",
        got.iter().find(|(_, c)| **c != 1)
    );
    assert!(
        host.log().contains("queue recovered from disk"),
        "{}",
        host.log()
    );
    wait_until(
        "the queue is empty",
        || host.stat("outputs", "fwd", "queued") == 0,
        || host.log(),
    );
    wait_until(
        "delivered segments are removed",
        || segments(&queue_dir).len() <= 1,
        || host.log(),
    );
}

/// `kill -9` of the forwarding daemon during live delivery (the central up, batches written
/// and not yet confirmed, every message through the disk): after a restart every message the
/// queue had taken arrives, and the duplicates are at most what docs/forwarding.md documents for a
/// crash: the batches written and not yet confirmed (as after a reset: what was written in
/// the last 100 ms, plus one batch).
#[test]
fn kill_9_during_live_delivery_loses_nothing_queued() {
    let central = central("rfc3339");
    let mut host = host(&[central.port], "", "memory_bytes = 0");
    const N: usize = 40_000;
    const RATE: usize = 5_000;
    let port = host.port;
    // Paced, so that delivery keeps up and batches are always in flight; the sender stops at
    // the first write the killed daemon refuses.
    let sender = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| send(port, 0, N, RATE));
    });
    let all = central.path("all.log");
    wait_until(
        "a quarter has arrived",
        || seqs(&all).len() >= N / 4,
        || central.log(),
    );
    host.signal(libc::SIGKILL);
    host.wait_exit();
    // What the queue had taken: delivered (at the central) or in its segments. Input and
    // queue keep order, so that is every message below the highest of them.
    let mut taken = seqs(&all);
    for seg in segments(&host.path("state/queue/fwd")) {
        for (_, line) in segment_records(&seg) {
            *taken.entry(seq_of(&line)).or_insert(0) += 1;
        }
    }
    let k = taken.keys().max().unwrap() + 1;
    assert!(k < N, "the kill came before the end of the stream");
    host.restart();
    wait_all(&all, k, || host.log());
    wait_until(
        "the queue is empty",
        || host.stat("outputs", "fwd", "queued") == 0,
        || host.log(),
    );
    wait_until("the sender stopped", || sender.is_finished(), || host.log());
    let got = seqs(&all);
    assert!(
        (0..k).all(|s| got.contains_key(&s)),
        "first missing: {:?}",
        (0..k).find(|s| !got.contains_key(s))
    );
    assert_eq!(got.len(), k, "nothing the queue had not taken");
    let duplicated: usize = got.values().map(|c| c - 1).sum();
    eprintln!("killed at {k} of {N} taken: {duplicated} duplicates");
    // docs/forwarding.md: at most what was written in SETTLE (100 ms) before the kill, plus
    // one batch: at 5,000 messages a second, 500 + 2,000.
    assert!(duplicated <= 2500, "{duplicated} duplicates");
}

/// A segment cut mid-record and one with garbage appended are reported at start, cut at their
/// last whole record, and every other record is delivered.
#[test]
fn corrupted_segments_are_reported_and_the_rest_delivered() {
    let dead = crate::util::free_port();
    let mut host = host(&[dead], "", "memory_bytes = 0\nsegment_bytes = \"64K\"");
    const N: usize = 5_000;
    send(host.port, 0, N, 0);
    wait_until(
        "all on disk",
        || host.stat("outputs", "fwd", "on_disk") == N as u64,
        || host.log(),
    );
    assert!(host.stop().success());
    let dir = host.path("state/queue/fwd");
    let segs = segments(&dir);
    assert!(segs.len() >= 4, "{segs:?}");
    // Truncated in the middle of a record.
    let torn = &segs[1];
    let records = segment_records(torn);
    let cut = records[records.len() / 2].0 - 10;
    let lost: Vec<usize> = records
        .iter()
        .filter(|(end, _)| *end > cut)
        .map(|(_, l)| seq_of(l))
        .collect();
    std::fs::OpenOptions::new()
        .write(true)
        .open(torn)
        .unwrap()
        .set_len(cut)
        .unwrap();
    // Garbage appended.
    let garbage = &segs[2];
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(garbage)
        .unwrap();
    f.write_all(&[0x5a; 777]).unwrap();
    drop(f);

    let central_cfg = CENTRAL
        .replace("FORMAT", "rfc3339")
        .replace("{port}", &dead.to_string());
    let central = Daemon::start(&central_cfg);
    host.restart();
    let expected = N - lost.len();
    let got = wait_all(&central.path("all.log"), expected, || host.log());
    for seq in 0..N {
        assert_eq!(
            got.contains_key(&seq),
            !lost.contains(&seq),
            "message {seq}"
        );
    }
    let log = host.log();
    assert!(
        log.contains(&format!("{}: torn write at the end", torn.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: corrupted", garbage.display())),
        "{log}"
    );
    assert_eq!(host.stat("outputs", "fwd", "corrupt"), 2);
}

/// Failover: everything to the first target while it works, to the second while it does
/// not, and back to the first once it works again.
#[test]
fn failover_uses_the_first_healthy_target() {
    let mut a = central("rfc3339");
    let b = central("rfc3339");
    let host = host(&[a.port, b.port], "balance = \"failover\"", "");
    send(host.port, 0, 1000, 0);
    wait_all(&a.path("all.log"), 1000, || host.log());
    assert!(seqs(&b.path("all.log")).is_empty());
    assert!(a.stop().success());
    send(host.port, 1000, 2000, 0);
    let in_b = wait_until_count(&b.path("all.log"), 1000, &host);
    assert!(in_b.keys().all(|s| (1000..2000).contains(s)));
    a.restart();
    // Back to the first once its back-off (at most reconnect_max_ms) is over.
    wait_until(
        "the first target is used again",
        || {
            send(host.port, 2000, 2001, 0);
            seqs(&a.path("all.log")).contains_key(&2000)
        },
        || host.log(),
    );
    // Both down, then only the first back: once connected to it, the second's back-off
    // expires while it is not wanted: the action must stay idle (it once woke every
    // millisecond there; this catches a busy loop).
    let mut b = b;
    let failed = host.stat("outputs", "fwd", "failed");
    assert!(b.stop().success());
    assert!(a.stop().success());
    send(host.port, 3000, 3001, 0);
    wait_until(
        "both failed",
        || host.stat("outputs", "fwd", "failed") >= failed + 2,
        || host.log(),
    );
    a.restart();
    wait_all_from(&a.path("all.log"), 3000, &host);
    // A 1 s window of the daemon's CPU time.
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", host.pid())).unwrap();
        let f: Vec<u64> = stat[stat.rfind(')').unwrap() + 2..]
            .split(' ')
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(1));
    let ticks = cpu() - before;
    assert!(ticks < 30, "{ticks} CPU ticks in 1 s while idle");
}

fn wait_all_from(path: &Path, seq: usize, host: &Daemon) {
    wait_until(
        "the message arrived",
        || seqs(path).contains_key(&seq),
        || host.log(),
    );
}

fn wait_until_count(path: &Path, n: usize, host: &Daemon) -> BTreeMap<usize, usize> {
    host.wait_for(&format!("{n} messages in {}", path.display()), || {
        Some(seqs(path)).filter(|m| m.len() >= n)
    })
}

/// Round-robin: batches go to both targets in turn; together they hold every message once.
#[test]
fn round_robin_spreads_batches_over_the_targets() {
    let a = central("rfc3339");
    let b = central("rfc3339");
    let host = host(&[a.port, b.port], "balance = \"round-robin\"", "");
    // Wait until both connections are up, so the batches alternate.
    wait_until(
        "both targets are connected",
        || host.log().matches("forward: connected").count() >= 2,
        || host.log(),
    );
    const N: usize = 20_000;
    send(host.port, 0, N, 20_000);
    let both = || (seqs(&a.path("all.log")), seqs(&b.path("all.log")));
    let (in_a, in_b) = wait_for(
        &format!("{N} messages in the two targets"),
        || Some(both()).filter(|(x, y)| x.len() + y.len() >= N),
        || {
            let (x, y) = both();
            format!("{} + {}", x.len(), y.len())
        },
    );
    assert!(
        !in_a.is_empty() && !in_b.is_empty(),
        "{} / {}",
        in_a.len(),
        in_b.len()
    );
    for seq in 0..N {
        assert_eq!(
            in_a.get(&seq).unwrap_or(&0) + in_b.get(&seq).unwrap_or(&0),
            1,
            "message {seq}"
        );
    }
}

/// UDP forwarding: one datagram per message, RFC 5424.
#[test]
fn udp_forwarding_sends_one_datagram_per_message() {
    let central = Daemon::start(
        &CENTRAL
            .replace("FORMAT", "rfc3339")
            .replace("type = \"tcp\"", "type = \"udp\""),
    );
    let host = host(&[central.port], "protocol = \"udp\"", "");
    send(host.port, 0, 200, 2000);
    wait_all(&central.path("all.log"), 200, || host.log());
}

fn check_config(text: &str) -> String {
    let (code, err) = crate::util::check_config(text);
    assert_eq!(code, Some(1), "refused");
    err
}

/// Every mistake in a forward output is reported, with its line and a hint.
#[test]
fn forward_config_errors_are_reported_with_place_and_hint() {
    let err = check_config(
        r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:5514"

[output.fwd]
type = "forward"
protocol = "sctp"
framing = "xml"
path = "/var/log/x"
balance = "random"

[output.tls]
type = "forward"
targets = ["central:6514", "no-port"]
protocol = "tls"

[output.file]
type = "file"
path = "/tmp/x.log"
targets = "a:1"

[output.fwd.queue]
fsync = "sometimes"
max_disk_bytes = "lots"
"#,
    );
    for (line, what) in [
        (7, "a forward output needs `targets`"),
        (8, "`protocol = \"sctp\"` is not one of the choices"),
        (9, "`framing = \"xml\"` is not one of the choices"),
        (10, "`path` does not apply to forward outputs"),
        (11, "`balance = \"random\"` is not one of the choices"),
        (14, "it needs `ca` or `fingerprints`"),
        (15, "`no-port` is not a target"),
        (21, "`targets` does not apply to file outputs"),
        (24, "`fsync = \"sometimes\"` is not one of the choices"),
        (25, "`max_disk_bytes` is not a size"),
    ] {
        assert!(
            err.contains(&format!(":{line}:")) && err.contains(what),
            "line {line}: {what}\n{err}"
        );
    }
    assert!(err.matches("hint:").count() >= 10, "{err}");
}

/// A central logwelld with a TLS input that requires a client certificate from the test CA.
fn tls_central() -> Daemon {
    Daemon::start_with(
        &[
            crate::tls::CLIENT_AUTH_INPUT,
            r#"
[output.all]
type = "file"
path = "{dir}/all.log"
format = "rfc5424"
flush_interval_ms = 20

[[rule]]
output = "all"
"#,
        ]
        .concat(),
        crate::tls::make_pki,
    )
}

fn sha256_fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.trim().rsplit('=').next().unwrap())
}

/// TLS with a client certificate: the server verified by the CA and its name, or pinned by
/// its fingerprint; a wrong pin or a wrong name delivers nothing and counts failures.
#[test]
fn tls_forwarding_verifies_the_server_by_ca_name_or_fingerprint() {
    let central = tls_central();
    let pki = central.dir.path();
    let client = format!(
        "protocol = \"tls\"\ncert = \"{d}/client.pem\"\nkey = \"{d}/client.key\"\n",
        d = pki.display()
    );
    let good_pin = sha256_fingerprint(&pki.join("server.pem"));
    let bad_pin = format!("sha256:{}", "00".repeat(32));
    let cases = [
        (
            format!(
                "ca = \"{}/ca.pem\"\nserver_name = \"localhost\"",
                pki.display()
            ),
            true,
        ),
        (format!("fingerprints = [\"{good_pin}\"]"), true),
        (format!("fingerprints = [\"{bad_pin}\"]"), false),
        (
            format!(
                "ca = \"{}/ca.pem\"\nserver_name = \"central.example.com\"",
                pki.display()
            ),
            false,
        ),
        (
            format!(
                "ca = \"{}/other.pem\"\nserver_name = \"localhost\"",
                pki.display()
            ),
            false,
        ),
    ];
    let mut from = 0;
    for (verify, accepted) in cases {
        let host = host(&[central.port], &format!("{client}{verify}"), "");
        send(host.port, from, from + 100, 0);
        if accepted {
            wait_until_count_range(&central.path("all.log"), from..from + 100, &host);
            host.wait_stat("outputs", "fwd", "delivered", 100);
        } else {
            host.wait_stat("outputs", "fwd", "failed", 2);
            assert_eq!(host.stat("outputs", "fwd", "delivered"), 0, "{verify}");
            assert_eq!(host.stat("outputs", "fwd", "queued"), 100, "{verify}");
            assert!(
                host.log().contains("TLS handshake with 127.0.0.1:"),
                "{}",
                host.log()
            );
        }
        from += 100;
    }
    let text = std::fs::read_to_string(central.path("all.log")).unwrap();
    assert!(
        text.lines()
            .all(|l| l.contains(" web01 shop 4242 - - order seq=")),
        "{text}"
    );
}

fn wait_until_count_range(path: &Path, range: std::ops::Range<usize>, host: &Daemon) {
    host.wait_for(&format!("{range:?} in {}", path.display()), || {
        let m = seqs(path);
        range.clone().all(|s| m.contains_key(&s)).then_some(())
    })
}

/// A clean stop writes what the queue holds in memory to disk; the next start delivers it.
/// A reload that changes the action's targets hands its queue to the new instance.
#[test]
fn a_clean_stop_and_a_reload_keep_the_queue() {
    let dead = crate::util::free_port();
    let mut host = host(&[dead], "", "");
    send(host.port, 0, 1000, 0);
    wait_until(
        "1000 queued",
        || host.stat("outputs", "fwd", "queued") == 1000,
        || host.log(),
    );
    assert_eq!(host.stat("outputs", "fwd", "on_disk"), 0, "held in memory");
    assert!(host.stop().success());
    assert!(
        host.log().contains("undelivered messages kept on disk"),
        "{}",
        host.log()
    );
    host.restart();
    assert_eq!(host.stat("outputs", "fwd", "queued"), 1000);
    send(host.port, 1000, 2000, 0);
    wait_until(
        "2000 queued",
        || host.stat("outputs", "fwd", "queued") == 2000,
        || host.log(),
    );
    // Point the action at a live central and reload.
    let central = central("rfc3339");
    let text = std::fs::read_to_string(&host.config).unwrap();
    std::fs::write(
        &host.config,
        text.replace(
            &format!("127.0.0.1:{dead}"),
            &format!("127.0.0.1:{}", central.port),
        ),
    )
    .unwrap();
    host.signal(libc::SIGHUP);
    let got = wait_all(&central.path("all.log"), 2000, || host.log());
    assert!(got.values().all(|c| *c == 1), "each once");
    // In order: the older (spilled at the stop) first.
    let text = std::fs::read_to_string(central.path("all.log")).unwrap();
    let order: Vec<usize> = text.lines().map(seq_of).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order");
}

/// Sends messages `from..to` over one TCP connection in 64 KiB writes, adding to `sent` the
/// bytes of each write once the kernel took it.
fn send_counted(port: u16, from: usize, to: usize, sent: &std::sync::atomic::AtomicUsize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = Vec::with_capacity(70 * 1024);
    for seq in from..to {
        writeln!(buf, "{}", message(seq)).unwrap();
        if buf.len() >= 64 * 1024 || seq + 1 == to {
            s.write_all(&buf).unwrap();
            sent.fetch_add(buf.len(), std::sync::atomic::Ordering::SeqCst);
            buf.clear();
        }
    }
}

/// With the receiver down, a full disk queue (`max_disk_bytes`) holds the TCP sender back
/// instead of dropping: 300,000 messages (28 MB, more than the queue, the action's channel
/// and the socket buffers together can hold) all arrive once the receiver is up.
#[test]
fn a_full_disk_queue_holds_tcp_senders_back_and_loses_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let dead = crate::util::free_port();
    let host = host(
        &[dead],
        "",
        "memory_bytes = 0\nmax_disk_bytes = \"256K\"\nsegment_bytes = \"64K\"",
    );
    const N: usize = 300_000;
    let total: usize = (0..N).map(|i| message(i).len() + 1).sum();
    let port = host.port;
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || send_counted(port, 0, N, &sent))
    };
    let dir = host.path("state/queue/fwd");
    let disk = || {
        segments(&dir)
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    // The queue counts the moment a push finds no room.
    host.wait_stat("outputs", "fwd", "held_back", 1);
    assert!(
        host.log().contains("the queue is full (max_disk_bytes)"),
        "{}",
        host.log()
    );
    // A push is refused when it would pass the bound, so the segments never do, but for the
    // 8-byte header of the segment a push may start; the refused push was one chunk (64 KiB
    // of lines and their record headers), so the segments hold more than the bound less
    // that (half the bound, loosely).
    let on_disk = disk();
    assert!(on_disk <= 256 * 1024 + 8, "{on_disk} bytes on disk");
    assert!(on_disk >= 128 * 1024, "{on_disk} bytes on disk");
    // Held back: once the channel and the socket buffers are full, neither what the sender
    // wrote nor what the host's input received moves, both short of everything.
    let sample = || (sent.load(SeqCst), host.stat("inputs", "tcp", "received"));
    let mut last = sample();
    wait_until(
        "the sender and the input stand still for 500 ms",
        || {
            std::thread::sleep(Duration::from_millis(500));
            let now = sample();
            std::mem::replace(&mut last, now) == now
        },
        || host.log(),
    );
    let (wrote, received) = last;
    eprintln!("held back at {on_disk} bytes on disk; sender stopped at {wrote} of {total} bytes, input at {received} of {N}");
    assert!(wrote < total, "the sender wrote all {total} bytes");
    assert!(received < N as u64, "the input received all {N}");
    assert!(!sender.is_finished(), "the sender is held back");
    assert!(disk() <= 256 * 1024 + 8, "{} bytes on disk", disk());
    let central_cfg = CENTRAL
        .replace("FORMAT", "rfc3339")
        .replace("{port}", &dead.to_string());
    let central = Daemon::start(&central_cfg);
    wait_until("the sender is done", || sender.is_finished(), || host.log());
    sender.join().unwrap();
    assert_eq!(sent.load(SeqCst), total);
    let got = wait_all(&central.path("all.log"), N, || host.log());
    assert!(got.values().all(|c| *c == 1), "each once");
    assert_eq!(host.stat("outputs", "fwd", "dropped"), 0);
}

/// Each action has its own queue: with one forward target dead (its queue far from full), the
/// local file and a second forward output to a live central get every message, while the dead
/// target's queue holds them all; once that target comes up, it gets every message too.
#[test]
fn a_dead_target_holds_back_neither_files_nor_other_targets() {
    let live = central("rfc3339");
    let dead = crate::util::free_port();
    let config = host_config(&[dead], "", "").replace(
        "[[rule]]\noutput = [\"local\", \"fwd\"]",
        &format!(
            "[output.fwd2]\ntype = \"forward\"\ntargets = [\"127.0.0.1:{}\"]\n\n\
             [[rule]]\noutput = [\"local\", \"fwd\", \"fwd2\"]",
            live.port
        ),
    );
    assert!(config.contains("\"fwd2\"]"), "{config}");
    let host = Daemon::start(&config);
    const N: usize = 20_000;
    send(host.port, 0, N, 0);
    let local = wait_all(&host.path("local.log"), N, || host.log());
    assert!(local.values().all(|c| *c == 1), "local: each once");
    let got = wait_all(&live.path("all.log"), N, || host.log());
    assert!(got.values().all(|c| *c == 1), "live central: each once");
    host.wait_stat("outputs", "fwd2", "delivered", N as u64);
    wait_until(
        "the dead target's queue holds all",
        || host.stat("outputs", "fwd", "queued") == N as u64,
        || host.log(),
    );
    assert_eq!(host.stat("outputs", "fwd", "delivered"), 0);
    assert_eq!(host.stat("outputs", "fwd", "held_back"), 0, "not full");
    assert_eq!(host.stat("outputs", "fwd", "dropped"), 0);
    let late = Daemon::start(
        &CENTRAL
            .replace("FORMAT", "rfc3339")
            .replace("{port}", &dead.to_string()),
    );
    let got = wait_all(&late.path("all.log"), N, || host.log());
    assert!(got.values().all(|c| *c == 1), "late central: each once");
    wait_until(
        "the queue is empty",
        || host.stat("outputs", "fwd", "queued") == 0,
        || host.log(),
    );
}

/// Newline framing (`framing = "newline"`): every message lands once at the central
/// logwelld, byte for byte as the host's own file has it.
#[test]
fn newline_framing_delivers_every_message_as_the_host_wrote_it() {
    let central = central("rfc5424");
    let config = host_config(&[central.port], "framing = \"newline\"", "")
        .replace("format = \"rfc3339\"", "format = \"rfc5424\"");
    let host = Daemon::start(&config);
    const N: usize = 5_000;
    let s = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    let mut w = BufWriter::new(s);
    writeln!(w, "<34>1 2026-11-21T09:41:03.123456+01:00 db01 postgres 977 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] text with \"quotes\" and a tab\there seq=9999998").unwrap();
    for seq in 0..N {
        writeln!(w, "{}", message(seq)).unwrap();
    }
    writeln!(
        w,
        "<165>1 2026-11-21T08:00:00Z mail01 - - - - no app, no sd seq=9999999"
    )
    .unwrap();
    drop(w);
    let local = host.wait_lines(&host.path("local.log"), N + 2);
    let got = wait_all(&central.path("all.log"), N + 2, || host.log());
    assert!(got.values().all(|c| *c == 1), "each once");
    assert!(got.contains_key(&9_999_998) && got.contains_key(&9_999_999));
    let remote = central.wait_lines(&central.path("all.log"), N + 2);
    assert_eq!(local, remote, "the central writes what the host wrote");
    assert!(
        remote.contains(
            " db01 postgres 977 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] text with"
        ),
        "{remote}"
    );
}

/// A UDP input feeding a forward action whose disk queue is full (the target dead, a tiny
/// `max_disk_bytes`): a datagram sender cannot be held back, so what the action can take
/// neither into its queue nor into its channel is dropped, counted in the action's `dropped`
/// and logged, while the local file gets every datagram received. Once the target is up,
/// exactly the messages not dropped arrive.
#[test]
fn udp_input_into_a_full_forward_queue_drops_and_counts() {
    let dead = crate::util::free_port();
    let config = host_config(
        &[dead],
        "",
        "memory_bytes = 0\nmax_disk_bytes = \"64K\"\nsegment_bytes = \"64K\"",
    )
    .replace("[input.tcp]\ntype = \"tcp\"", "[input.udp]\ntype = \"udp\"");
    assert!(config.contains("[input.udp]"), "{config}");
    let host = Daemon::start(&config);
    // 30,000 datagrams at about 15,000 a second: far more than the queue (about 600) and the
    // action's channel (64 chunks of what arrives in 5 ms) hold.
    const N: usize = 30_000;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for seq in 0..N {
        sock.send_to(message(seq).as_bytes(), ("127.0.0.1", host.port))
            .unwrap();
        if seq % 100 == 99 {
            let due = start + Duration::from_secs_f64((seq + 1) as f64 / 15_000.0);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    // Every datagram is accounted for at the input: received, or dropped by the kernel.
    let input = |c| host.stat("inputs", "udp", c);
    wait_until(
        "every datagram is received or counted as dropped by the kernel",
        || input("received") + input("dropped") == N as u64,
        || host.log(),
    );
    let received = input("received") as usize;
    assert!(host.stat("outputs", "fwd", "held_back") >= 1);
    // The local file is not held back by the full queue.
    let local = wait_all(&host.path("local.log"), received, || host.log());
    assert!(local.values().all(|c| *c == 1));
    let dropped = host.stat("outputs", "fwd", "dropped") as usize;
    assert!(dropped > 0, "nothing dropped\n{}", host.log());
    wait_until(
        "the log says how many were dropped",
        || {
            host.log()
                .contains("forward: datagrams dropped: the queue is full")
        },
        || host.log(),
    );
    // What was not dropped waits in the queue and the channel: it all arrives.
    let central = Daemon::start(
        &CENTRAL
            .replace("FORMAT", "rfc3339")
            .replace("{port}", &dead.to_string()),
    );
    let got = wait_all(&central.path("all.log"), received - dropped, || host.log());
    wait_until(
        "the queue is empty",
        || host.stat("outputs", "fwd", "queued") == 0,
        || host.log(),
    );
    assert_eq!(host.stat("outputs", "fwd", "dropped") as usize, dropped);
    assert_eq!(
        host.stat("outputs", "fwd", "delivered") as usize,
        received - dropped
    );
    let got_final = seqs(&central.path("all.log"));
    assert_eq!(
        got_final.len(),
        received - dropped,
        "received − dropped arrive"
    );
    assert!(got.values().chain(got_final.values()).all(|c| *c == 1));
    eprintln!("{N} sent, {received} received, {dropped} dropped for the full queue");
}

/// Under privilege separation the worker (`_logwell`) keeps the queue in the state directory
/// it owns, with no request to the privileged parent, and delivers it after a restart.
#[test]
fn under_privilege_separation_the_worker_owns_its_queue() {
    if !crate::privsep::can_run("under_privilege_separation_the_worker_owns_its_queue") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let dead = crate::util::free_port();
    let mut host = Daemon::start_privsep(&host_config(&[dead], "", "memory_bytes = 0"), |_| {});
    send(host.port, 0, 500, 0);
    wait_until(
        "500 on disk",
        || host.stat("outputs", "fwd", "on_disk") == 500,
        || host.log(),
    );
    let uid = nix::unistd::User::from_name("_logwell")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let dir = host.path("state/queue/fwd");
    let segs = segments(&dir);
    assert!(!segs.is_empty());
    for p in segs.iter().chain([&dir.join("ack")]) {
        assert_eq!(std::fs::metadata(p).unwrap().uid(), uid, "{}", p.display());
    }
    assert!(host.stop().success());
    let central = Daemon::start(
        &CENTRAL
            .replace("FORMAT", "rfc3339")
            .replace("{port}", &dead.to_string()),
    );
    host.restart();
    let got = wait_all(&central.path("all.log"), 500, || host.log());
    assert!(got.values().all(|c| *c == 1));
}

/// A server that accepts and then reads nothing (hung, or its network cut) stops
/// acknowledging: after `write_timeout_ms` the host gives it up and fails over to the next
/// target. (What the hung server's kernel acknowledged before is lost with it: TCP has no
/// application-level acknowledgement; docs/forwarding.md says so.)
#[test]
fn a_server_that_stops_reading_is_given_up_after_the_write_timeout() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let (keep_tx, keep_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Accept and hold every connection, never reading; end when the test does.
        hole.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + DEADLINE;
        let mut held = Vec::new();
        while Instant::now() < deadline && keep_rx.try_recv().is_err() {
            if let Ok((s, _)) = hole.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let central = central("rfc3339");
    let host = host(&[hole_port, central.port], "write_timeout_ms = 1000", "");
    wait_until(
        "connected to the first target",
        || {
            host.log()
                .contains(&format!("target=127.0.0.1:{hole_port}"))
        },
        || host.log(),
    );
    const N: usize = 200_000;
    send(host.port, 0, N, 0);
    wait_all_from(&central.path("all.log"), N - 1, &host);
    assert!(host.stat("outputs", "fwd", "failed") >= 1);
    let _ = keep_tx.send(());
}

/// A tmpfs mounted on `path` (created), detached when dropped; `None`, with a note, where
/// mounting is not allowed (not root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root) to fill the state directory");
            return None;
        }
        Some(Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 24 item 5: the state directory on a small tmpfs that is full, long before
/// `max_disk_bytes`, and the forward target dead. The forward action keeps what fits in
/// `memory_bytes` and drops the rest (counted, logged) instead of holding the inputs back:
/// the local file, on another file system, gets every UDP and TCP line. Once the disk has
/// room, the queue takes it again.
#[test]
fn a_full_state_disk_drops_for_the_forward_action_only() {
    let dead = crate::util::free_port();
    let udp_port = crate::util::free_port();
    let config = host_config(
        &[dead],
        "",
        "memory_bytes = \"8K\"\nsegment_bytes = \"64K\"\nmax_disk_bytes = \"64M\"",
    )
    .replace(
        "[output.local]",
        &format!(
            "[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:{udp_port}\"\n\n[output.local]"
        ),
    );
    let mut mounted = None;
    let host = Daemon::start_with(&config, |dir| {
        mounted = Tmpfs::mount(&dir.join("state"), "512k")
    });
    // Declared after `host`: unmounted before the daemon's directory is removed.
    let Some(_tmpfs) = mounted else {
        return;
    };
    let queue_dir = host.path("state/queue/fwd");
    assert!(queue_dir.join("lock").exists(), "the queue is on the tmpfs");
    fill(&host.path("state/filler"));

    // 2,000 datagrams, paced (about 1,000 a second) so that the kernel's buffer never
    // overflows while the input keeps reading: far more than `memory_bytes` and the action's
    // channel hold. Then one TCP line.
    const N: usize = 2_000;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..N {
        sock.send_to(message(seq).as_bytes(), ("127.0.0.1", udp_port))
            .unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    send(host.port, N, N + 1, 0);
    let local = wait_all(&host.path("local.log"), N + 1, || host.log());
    assert!(local.values().all(|c| *c == 1), "local: each once");
    assert_eq!(host.stat("inputs", "udp", "dropped"), 0);

    // The forward action kept what fits in memory and dropped the rest, counted and logged.
    let fwd = |c| host.stat("outputs", "fwd", c);
    wait_until(
        "the forward action took or dropped every line",
        || fwd("queued") + fwd("dropped") == N as u64 + 1,
        || host.log(),
    );
    assert!(fwd("dropped") > 0, "nothing dropped\n{}", host.log());
    assert!(fwd("queued") > 0, "nothing kept in memory\n{}", host.log());
    assert_eq!(fwd("on_disk"), 0);
    assert_eq!(fwd("held_back"), 0, "never held back");
    assert!(fwd("errors") >= 1);
    wait_until(
        "the log says why and how many were dropped",
        || {
            let log = host.log();
            log.contains("No space left on device")
                && log.contains("forward: messages dropped: the queue's disk fails")
        },
        || host.log(),
    );

    // Room again: the queue takes the disk again (tried every second).
    std::fs::remove_file(host.path("state/filler")).unwrap();
    let mut seq = N + 1;
    wait_until(
        "the queue writes to disk again",
        || {
            send(host.port, seq, seq + 50, 0);
            seq += 50;
            std::thread::sleep(Duration::from_millis(100));
            fwd("on_disk") > 0
        },
        || host.log(),
    );
    wait_until(
        "the log says the disk takes writes again",
        || host.log().contains("the queue's disk takes writes again"),
        || host.log(),
    );
    wait_all(&host.path("local.log"), seq, || host.log());
}

/// Writes `path` until its file system is full (ENOSPC).
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}
