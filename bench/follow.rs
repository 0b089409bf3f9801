//! Live-follow benchmark: the real `logwelld` (release build) with its follow service.
//!
//! `cargo bench --bench follow` prints three figures:
//!
//! - **latency**: from `logger --tcp` being started to the line's arrival as an SSE event,
//!   p50 and p99 over 200 messages sent one at a time (the target is p99 under 50 ms). Also
//!   from a raw socket write, which leaves out logger's own start-up.
//! - **fan-out**: 1,000 SSE subscribers on one file while 20,000 lines are written: lines
//!   delivered per second (lines × subscribers / time until the last subscriber has the
//!   last line), and the daemon's peak RSS.
//! - **stalled**: ingest throughput over one TCP connection (3,000,000 messages until the last
//!   is written) with no subscribers and with 200 stalled subscribers (connected, asking for
//!   everything, never reading), interleaved, medians of `--rounds N` (default 3). A stalled
//!   subscriber costs a bounded amount of reading (until its socket buffers are full), so the
//!   run is long enough that this one-time cost is a fair share of it.
//!
//! Every load is bounded in count and time; only processes this program started are ended.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOGWELLD: &str = env!("CARGO_BIN_EXE_logwelld");
const DEADLINE: Duration = Duration::from_secs(120);

/// Messages sent in each run of the stalled-subscribers case.
const STALLED_MESSAGES: u64 = 3_000_000;

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    http: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("logwell-follow-")
            .tempdir()
            .unwrap();
        let (port, http) = (free_port(), free_port());
        let d = dir.path().display();
        let config = format!(
            r#"[daemon]
control_socket = "{d}/control.sock"
state_dir = "{d}/state"
log_level = "warn"
# One process, so its CPU and RSS are the daemon's (under privilege separation the PID
# started would be the small parent's).
privsep = false

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.out]
type = "file"
path = "{d}/out/messages.log"

[[rule]]
selector = "*.*"
output = "out"

[follow]
listen = "127.0.0.1:{http}"
max_subscribers = 2000
max_subscribers_per_peer = 2000
"#
        );
        let path = dir.path().join("logwell.toml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(LOGWELLD)
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start logwelld (cargo bench builds it)");
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(Instant::now() < deadline, "logwelld did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            child,
            dir,
            port,
            http,
        }
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join("out/messages.log")
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Opens an SSE stream; returns once its start point is fixed (the `: logwell` line).
    fn subscribe(&self, query: &str) -> BufReader<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        write!(s, "GET /v1/follow?{query} HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "stream closed");
            if line.starts_with(": logwell") {
                return r;
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads SSE lines until one whose data is `needle`; chunked-encoding framing lines are
/// skipped (they never match).
fn wait_data(r: &mut BufReader<TcpStream>, needle: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream closed");
        if line
            .strip_prefix("data: ")
            .and_then(|l| l.strip_suffix('\n'))
            == Some(needle)
        {
            return;
        }
    }
}

fn latency() {
    let d = Daemon::start();
    let mut sse = d.subscribe("n=0&o=cat");
    let port = d.port.to_string();
    let mut with_logger = Vec::new();
    for i in 0..200 {
        let text = format!("latency-logger-{i}");
        let t = Instant::now();
        let status = Command::new("logger")
            .args(["--tcp", "-n", "127.0.0.1", "-P", &port, &text])
            .status()
            .unwrap();
        assert!(status.success());
        wait_data(&mut sse, &text);
        with_logger.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut sock = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut raw = Vec::new();
    for i in 0..200 {
        let text = format!("latency-raw-{i}");
        let t = Instant::now();
        writeln!(sock, "<14>1 - - app - - - {text}").unwrap();
        wait_data(&mut sse, &text);
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for (what, mut v) in [("logger --tcp", with_logger), ("socket write", raw)] {
        v.sort_by(f64::total_cmp);
        println!(
            "latency to SSE receipt ({what}, {} messages): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v[v.len() - 1]
        );
    }
}

/// Sends `n` RFC 5424 messages of about 200 bytes over one connection (octet counting).
fn send(port: u16, n: u64, tag: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let pad = "x".repeat(140);
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let m = format!("<14>1 2026-11-21T09:00:00Z bench {tag} - - - {i:08} {pad}");
        buf.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
        if buf.len() > (1 << 20) - 512 {
            s.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    s.write_all(&buf).unwrap();
}

fn count_lines(path: &Path) -> u64 {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            return n;
        }
        n += memchr::memchr_iter(b'\n', &buf[..k]).count() as u64;
    }
}

fn wait_written(d: &Daemon, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    while count_lines(&d.output()) < n {
        assert!(Instant::now() < deadline, "not all written");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn fan_out(subscribers: usize, lines: u64) {
    let d = Daemon::start();
    let streams: Vec<BufReader<TcpStream>> =
        (0..subscribers).map(|_| d.subscribe("n=0&o=raw")).collect();
    let rss_before = d.rss_kib();
    let start = Instant::now();
    let readers: Vec<std::thread::JoinHandle<()>> = streams
        .into_iter()
        .map(|mut r| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut seen = 0u64;
                    let mut buf = vec![0u8; 64 * 1024];
                    let deadline = Instant::now() + DEADLINE;
                    while seen < lines && Instant::now() < deadline {
                        let k = r.read(&mut buf).unwrap();
                        if k == 0 {
                            return;
                        }
                        seen += memchr::memmem::find_iter(&buf[..k], b"\nid: ").count() as u64;
                    }
                })
                .unwrap()
        })
        .collect();
    let tcp = d.port;
    let sender = std::thread::spawn(move || send(tcp, lines, "fanout"));
    let mut peak = 0;
    while !readers.iter().all(|r| r.is_finished()) {
        peak = peak.max(d.rss_kib());
        assert!(start.elapsed() < DEADLINE, "fan-out did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    println!(
        "fan-out: {subscribers} SSE subscribers × {lines} lines in {secs:.2} s: {:.0} lines/s delivered ({:.0} lines/s per subscriber); daemon RSS {} MiB before, peak {} MiB",
        (subscribers as u64 * lines) as f64 / secs,
        lines as f64 / secs,
        rss_before / 1024,
        peak / 1024
    );
}

/// Ingest time of `n` messages with `stalled` subscribers holding their streams unread.
fn ingest(n: u64, stalled: usize) -> (f64, u64) {
    let d = Daemon::start();
    let mut held = Vec::new();
    for _ in 0..stalled {
        let s = TcpStream::connect(("127.0.0.1", d.http)).unwrap();
        let mut w = &s;
        write!(w, "GET /v1/follow?n=all HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
        held.push(s);
    }
    let start = Instant::now();
    send(d.port, n, "ingest");
    wait_written(&d, n);
    let secs = start.elapsed().as_secs_f64();
    let rss = d.rss_kib();
    drop(held);
    (n as f64 / secs, rss)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize);
    let only: Vec<&str> = args
        .iter()
        .filter(|a| ["latency", "fanout", "stalled"].contains(&a.as_str()))
        .map(String::as_str)
        .collect();
    let wants = |c: &str| only.is_empty() || only.contains(&c);
    if wants("latency") {
        latency();
    }
    if wants("fanout") {
        fan_out(1000, 20_000);
    }
    if wants("stalled") {
        let (mut none, mut with) = (Vec::new(), Vec::new());
        let mut rss = 0;
        for _ in 0..rounds {
            none.push(ingest(STALLED_MESSAGES, 0).0);
            let (rate, r) = ingest(STALLED_MESSAGES, 200);
            with.push(rate);
            rss = rss.max(r);
        }
        none.sort_by(f64::total_cmp);
        with.sort_by(f64::total_cmp);
        let (a, b) = (none[none.len() / 2], with[with.len() / 2]);
        println!(
            "ingest over one TCP connection, medians of {rounds}: {a:.0} msg/s with no subscribers, {b:.0} msg/s with 200 stalled subscribers ({:+.1}%); RSS with them {} MiB",
            (b / a - 1.0) * 100.0,
            rss / 1024
        );
    }
}
