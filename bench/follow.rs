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
//! - **stalled**: ingest throughput over one TCP connection with no subscribers and with 200
//!   stalled subscribers (connected, asking for everything, never reading), interleaved,
//!   medians of `--rounds N` (default 5), in two parts: the first 3,000,000 messages, while
//!   the stalled streams fill up (each is read for until its socket buffers are full, a
//!   bounded one-time cost), then 3,000,000 more with the streams full. Also the follow
//!   threads' CPU seconds and the daemon's RSS. `FOLLOW_BENCH_RUNS=1` prints every run (the
//!   runs vary by ±15% on a 2-core machine, hence the medians).
//!
//! Every load is bounded in count and time; only processes this program started are ended.
//! `LOGWELL_BENCH_LOGWELLD=PATH` runs another `logwelld` build (for a before/after).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::child::Proc;
use testkit::ports::free_port;
use testkit::OrPanic;

/// The release `logwelld` Cargo built, unless `LOGWELL_BENCH_LOGWELLD` names another build
/// (an older commit's, for a before/after).
fn logwelld() -> PathBuf {
    std::env::var_os("LOGWELL_BENCH_LOGWELLD").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_logwelld")),
        PathBuf::from,
    )
}
const DEADLINE: Duration = Duration::from_secs(120);

/// Messages sent in each run of the stalled-subscribers case while the subscribers' streams
/// fill up, and after.
const FILL_MESSAGES: u64 = 3_000_000;
const STALLED_MESSAGES: u64 = 3_000_000;

struct Daemon {
    child: Proc,
    dir: tempfile::TempDir,
    port: u16,
    http: u16,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("logwell-follow-")
            .tempdir()
            .unwrap();
        let (port, http) = (free_port().or_panic(), free_port().or_panic());
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
allow_unauthenticated = true
max_subscribers = 2000
max_subscribers_per_peer = 2000
"#
        );
        let path = dir.path().join("logwell.toml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(logwelld());
        cmd.arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = Proc::spawn_as_set("logwelld", cmd).or_panic();
        child.wait_port(http, DEADLINE).or_panic();
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.pid()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU seconds (user + system) of the follow service's threads, from
    /// `/proc/PID/task/*/stat` (USER_HZ ticks).
    fn follow_cpu(&self) -> f64 {
        let tasks = format!("/proc/{}/task", self.child.pid());
        let mut ticks = 0.0;
        for t in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if !stat[open + 1..close].starts_with("logwell-follow") {
                continue;
            }
            let f: Vec<&str> = stat[close + 2..].split(' ').collect();
            ticks += f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        }
        ticks / 100.0
    }

    /// Opens an SSE stream; returns once its start point is fixed (the `: logwell` line).
    fn subscribe(&self, query: &str) -> BufReader<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        write!(
            s,
            "GET /v1/follow?{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.http
        )
        .unwrap();
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

/// Counts the output's lines as they are written, reading only what was added since the
/// last look (re-counting the whole file each time would take a good part of the measured
/// time).
#[derive(Default)]
struct Written {
    file: Option<std::fs::File>,
    lines: u64,
}

impl Written {
    /// Waits until the output holds `n` lines.
    fn wait(&mut self, d: &Daemon, n: u64) {
        let deadline = Instant::now() + DEADLINE;
        let mut buf = vec![0u8; 1 << 20];
        while self.lines < n {
            assert!(Instant::now() < deadline, "not all written");
            if self.file.is_none() {
                self.file = std::fs::File::open(d.output()).ok();
            }
            let got = match self.file.as_mut() {
                Some(f) => f.read(&mut buf).unwrap(),
                None => 0,
            };
            self.lines += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
            if got == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
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

/// One run of the stalled case: `stalled` subscribers connect, then `FILL_MESSAGES` go in
/// (the subscribers' streams fill up meanwhile), then `n` more (the streams stay full).
struct Ingest {
    /// Messages/s of the first part, which includes the one-time fill.
    fill: f64,
    /// Messages/s of the second part.
    full: f64,
    /// CPU seconds of the follow service's threads in each part.
    follow_cpu: (f64, f64),
    /// Daemon RSS at the end, KiB.
    rss: u64,
}

/// Runs [`Ingest`] with `stalled` subscribers holding their streams unread.
fn ingest(n: u64, stalled: usize) -> Ingest {
    let d = Daemon::start();
    let mut held = Vec::new();
    for _ in 0..stalled {
        let s = TcpStream::connect(("127.0.0.1", d.http)).unwrap();
        let mut w = &s;
        write!(
            w,
            "GET /v1/follow?n=all HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            d.http
        )
        .unwrap();
        held.push(s);
    }
    let mut written = Written::default();
    let start = Instant::now();
    send(d.port, FILL_MESSAGES, "fill");
    written.wait(&d, FILL_MESSAGES);
    let fill = FILL_MESSAGES as f64 / start.elapsed().as_secs_f64();
    let cpu_fill = d.follow_cpu();
    let start = Instant::now();
    send(d.port, n, "ingest");
    written.wait(&d, FILL_MESSAGES + n);
    let full = n as f64 / start.elapsed().as_secs_f64();
    let follow_cpu = (cpu_fill, d.follow_cpu() - cpu_fill);
    let rss = d.rss_kib();
    drop(held);
    if std::env::var_os("FOLLOW_BENCH_RUNS").is_some() {
        eprintln!(
            "{stalled} stalled: {fill:.0} then {full:.0} msg/s; follow CPU {:.2} then {:.2} s",
            follow_cpu.0, follow_cpu.1
        );
    }
    Ingest {
        fill,
        full,
        follow_cpu,
        rss,
    }
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
        .unwrap_or(5usize);
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
        for _ in 0..rounds {
            none.push(ingest(STALLED_MESSAGES, 0));
            with.push(ingest(STALLED_MESSAGES, 200));
        }
        let median = |runs: &[Ingest], f: fn(&Ingest) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let rss = with.iter().map(|r| r.rss).max().unwrap_or(0);
        let (fill0, fill) = (median(&none, |r| r.fill), median(&with, |r| r.fill));
        let (full0, full) = (median(&none, |r| r.full), median(&with, |r| r.full));
        println!(
            "ingest over one TCP connection, medians of {rounds}, no subscribers vs 200 stalled:\n  \
             first {FILL_MESSAGES} messages (the streams fill up): {fill0:.0} vs {fill:.0} msg/s ({:+.1}%)\n  \
             next {STALLED_MESSAGES} (the streams full): {full0:.0} vs {full:.0} msg/s ({:+.1}%)\n  \
             follow threads' CPU {:.2} s while the streams fill, {:.2} s after; RSS with the 200: {} MiB",
            (fill / fill0 - 1.0) * 100.0,
            (full / full0 - 1.0) * 100.0,
            median(&with, |r| r.follow_cpu.0),
            median(&with, |r| r.follow_cpu.1),
            rss / 1024
        );
    }
}
