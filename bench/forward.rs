//! Forwarding benchmark: two real `logwelld`s (release build), a *host* that forwards
//! everything it receives to a *central* one, fed by the end-to-end benchmark's load generator
//! (`loadgen.rs`: 200-byte messages, newline-framed, one TCP connection).
//!
//! `cargo bench --bench forward` runs every case; name cases to run some (`-- relay_tcp`);
//! `--quick` sends a tenth of the relay messages (the drain case keeps its 1,000,000). Cases:
//! - `relay_tcp`, `relay_tls`: host (TCP input → forward output, octet counting, default
//!   queue) → central (TCP or TLS input → one rfc3339 file). The clock runs from the first
//!   message sent until the central's `written` counter reached them all: end-to-end relay
//!   throughput. TLS: a self-signed server certificate made by `openssl`, pinned by its
//!   SHA-256 fingerprint on the host (same handshake and record cost as CA verification).
//! - `drain_1m`: the host forwards to a port where nothing listens, with `memory_bytes = 0`
//!   (every message goes to segment files) until all 1,000,000 are on disk; it is stopped
//!   (SIGTERM), the central started, and the host started again: the clock runs from the
//!   host's start until the central wrote the last message: the rate at which a disk backlog
//!   drains.
//!
//! Per case: msg/s, the CPU seconds per million messages of each daemon (`/proc/PID/stat`),
//! the host's peak RSS, and the central's file read back: every sequence number counted, so
//! loss and duplicates come from the file itself. Every wait is bounded by [`CASE_DEADLINE`];
//! daemons are children of this process, stopped by their PID.

mod cases;
#[allow(dead_code)]
mod loadgen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cases::Selection;
use loadgen::Share;
use testkit::child::Proc;
use testkit::logwelld::{self, Binaries};
use testkit::ports::free_port;
use testkit::{pki, wait, OrPanic};

const BINARIES: Binaries = Binaries {
    logwelld: env!("CARGO_BIN_EXE_logwelld"),
    logwell: env!("CARGO_BIN_EXE_logwell"),
};
/// The longest any case may take.
const CASE_DEADLINE: Duration = Duration::from_secs(600);

struct Daemon {
    child: Proc,
    dir: PathBuf,
    name: &'static str,
}

impl Daemon {
    fn start(dir: &Path, name: &'static str, body: &str) -> Daemon {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[daemon]\ncontrol_socket = \"{d}/{name}.sock\"\nstate_dir = \"{d}/{name}-state\"\nprivsep = false\nlog_level = \"warn\"\n{body}",
                d = dir.display()
            ),
        )
        .unwrap();
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let child = logwelld::start(BINARIES, &config, &socket, &log).or_panic();
        Daemon {
            child,
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn stats(&self) -> Option<serde_json::Value> {
        let socket = self.dir.join(format!("{}.sock", self.name));
        logwelld::stats(BINARIES.logwell, &socket)
    }

    fn output(&self, output: &str, counter: &str) -> u64 {
        self.stats()
            .map_or(0, |s| s["outputs"][output][counter].as_u64().unwrap_or(0))
    }

    fn wait(&self, output: &str, counter: &str, n: u64, start: Instant) {
        let left = CASE_DEADLINE.saturating_sub(start.elapsed());
        let what = format!("{} {output}.{counter} to reach {n}", self.name);
        wait::until(left, &what, || {
            (self.output(output, counter) >= n).then_some(())
        })
        .or_panic();
    }

    /// utime + stime in seconds.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.pid())).unwrap();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    /// SIGTERM, SIGKILL after a minute.
    fn stop(self) {
        self.child.grace(Duration::from_secs(60)).stop();
    }
}

fn central_config(port: u16, dir: &Path, tls: bool) -> String {
    let input = if tls {
        format!(
            "type = \"tls\"\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"",
            d = dir.display()
        )
    } else {
        "type = \"tcp\"".to_string()
    };
    format!(
        "[input.in]\n{input}\nlisten = \"127.0.0.1:{port}\"\n\n[output.all]\ntype = \"file\"\npath = \"{d}/central.out\"\n\n[[rule]]\noutput = \"all\"\n",
        d = dir.display()
    )
}

fn host_config(port: u16, central: u16, extra: &str, queue: &str) -> String {
    format!(
        "[input.in]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n\n[output.fwd]\ntype = \"forward\"\ntargets = [\"127.0.0.1:{central}\"]\nreconnect_min_ms = 50\nreconnect_max_ms = 200\n{extra}\n[output.fwd.queue]\n{queue}\n\n[[rule]]\noutput = \"fwd\"\n"
    )
}

/// A self-signed certificate for localhost (`server.pem`, `server.key`); its SHA-256
/// fingerprint, which the host pins.
fn make_cert(dir: &Path) -> String {
    pki::openssl(
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
            "server.key",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    )
    .or_panic();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            "server.pem",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.trim().rsplit('=').next().unwrap())
}

fn send(port: u16, count: u64) -> loadgen::Sent {
    let start = Barrier::new(1);
    loadgen::tcp(
        port,
        Share {
            first_seq: 0,
            count,
            deadline: Instant::now() + CASE_DEADLINE,
        },
        0,
        &start,
    )
}

/// Reads the central's file back: (distinct sequence numbers, duplicates).
fn read_back(path: &Path, n: u64) -> (u64, u64) {
    let text = std::fs::read(path).unwrap();
    let mut seen = vec![0u8; n as usize];
    let (mut distinct, mut dups) = (0, 0);
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(s) = loadgen::parse_seq(line) {
            if let Some(c) = seen.get_mut(s as usize) {
                if *c == 0 {
                    distinct += 1;
                } else {
                    dups += 1;
                }
                *c = c.saturating_add(1);
            }
        }
    }
    (distinct, dups)
}

struct Row {
    case: &'static str,
    messages: u64,
    secs: f64,
    host_cpu: f64,
    central_cpu: f64,
    host_rss: f64,
    lost: u64,
    dups: u64,
}

fn relay(case: &'static str, tls: bool, n: u64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cport, hport) = (free_port().or_panic(), free_port().or_panic());
    let extra = if tls {
        let pin = make_cert(d);
        format!("protocol = \"tls\"\nfingerprints = [\"{pin}\"]\nserver_name = \"localhost\"\n")
    } else {
        String::new()
    };
    let central = Daemon::start(d, "central", &central_config(cport, d, tls));
    let host = Daemon::start(d, "host", &host_config(hport, cport, &extra, ""));
    let (h0, c0) = (host.cpu(), central.cpu());
    let t0 = Instant::now();
    let sent = send(hport, n);
    assert_eq!(sent.messages, n, "{:?}", sent.error);
    central.wait("all", "written", n, t0);
    let secs = t0.elapsed().as_secs_f64();
    let (host_cpu, central_cpu, host_rss) =
        (host.cpu() - h0, central.cpu() - c0, host.peak_rss_mib());
    host.wait("fwd", "delivered", n, t0);
    host.stop();
    central.stop();
    let (distinct, dups) = read_back(&d.join("central.out"), n);
    Row {
        case,
        messages: n,
        secs,
        host_cpu,
        central_cpu,
        host_rss,
        lost: n - distinct,
        dups,
    }
}

fn drain(n: u64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cport, hport) = (free_port().or_panic(), free_port().or_panic());
    let config = host_config(
        hport,
        cport,
        "",
        "memory_bytes = 0\nmax_disk_bytes = \"4G\"\nfsync = \"interval\"",
    );
    let host = Daemon::start(d, "host", &config);
    let t = Instant::now();
    let sent = send(hport, n);
    assert_eq!(sent.messages, n, "{:?}", sent.error);
    host.wait("fwd", "on_disk", n, t);
    let filled = t.elapsed().as_secs_f64();
    host.stop();
    let disk: u64 = std::fs::read_dir(d.join("host-state/queue/fwd"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!(
        "drain_1m: {n} messages queued to disk in {filled:.2} s ({:.0} msg/s into the queue), {:.1} MiB of segments",
        n as f64 / filled,
        disk as f64 / (1 << 20) as f64
    );
    let central = Daemon::start(d, "central", &central_config(cport, d, false));
    let c0 = central.cpu();
    let t0 = Instant::now();
    let host = Daemon::start(d, "host", &config);
    central.wait("all", "written", n, t0);
    let secs = t0.elapsed().as_secs_f64();
    let (host_cpu, central_cpu, host_rss) = (host.cpu(), central.cpu() - c0, host.peak_rss_mib());
    host.wait("fwd", "delivered", n, t0);
    host.stop();
    central.stop();
    let (distinct, dups) = read_back(&d.join("central.out"), n);
    Row {
        case: "drain_1m",
        messages: n,
        secs,
        host_cpu,
        central_cpu,
        host_rss,
        lost: n - distinct,
        dups,
    }
}

fn main() {
    let selection = Selection::from_args();
    let want = |c: &str| selection.wants(c);
    let relay_n = selection.messages(1_000_000, 100_000);
    let mut rows = Vec::new();
    if want("relay_tcp") {
        rows.push(relay("relay_tcp", false, relay_n));
    }
    if want("relay_tls") {
        rows.push(relay("relay_tls", true, relay_n));
    }
    if want("drain_1m") {
        rows.push(drain(1_000_000));
    }
    println!("| case | messages | msg/s end to end | lost | duplicates | host CPU s/M | central CPU s/M | host peak RSS |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let per_m = |cpu: f64| cpu / (r.messages as f64 / 1e6);
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.1} MiB |",
            r.case,
            r.messages,
            r.messages as f64 / r.secs,
            r.lost,
            r.dups,
            per_m(r.host_cpu),
            per_m(r.central_cpu),
            r.host_rss
        );
    }
}
