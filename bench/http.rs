//! ClickHouse through the HTTP output (issue 28): `cargo bench --bench http`. The release
//! `logwelld`, fed by the end-to-end benchmark's load generator (`loadgen.rs`: 200-byte
//! messages over one TCP connection, 1,000 host names), delivering to Debian's
//! clickhouse-server (18.16, `testkit::clickhouse`: a private server on loopback ports, one for
//! the whole run), against a floor in the same run.
//!
//! Cases (name some to run them only; `--quick` sends 100,000 instead of 500,000, or
//! `LOGWELL_BENCH_MESSAGES=N`; `LOGWELL_BENCH_ROUNDS=N` rounds, default 3, `--quick` 1):
//! - `clickhouse_none`, `clickhouse_gzip`: TCP → an HTTP output with `preset = "clickhouse"`
//!   (`json_fields` naming the table's five columns, the output's defaults otherwise:
//!   `batch_records` 10,000, `linger_ms` 200), without or with gzip; the clock runs from the
//!   first message sent until the output's `delivered` counter (ClickHouse's 200 answers)
//!   reached every message, then the table's `count()` and `uniqExact(msg)` are checked.
//!   `LOGWELL_BENCH_HTTP_EXTRA` adds lines to the output's table (`batch_records = 50000`), to
//!   try settings through the configuration.
//! - `floor`: the same rows (written once, before the rounds, by logwelld itself: a file
//!   output with the same `json_fields`, so the NDJSON is byte for byte what the HTTP output
//!   posts) inserted by `clickhouse-client --query 'INSERT INTO logs FORMAT JSONEachRow' <
//!   file` over the native port, timed from the client's start to its exit.
//!
//! - `tcp_input`, `http_input`: the HTTP input against the TCP input, into a file output (no
//!   ClickHouse). `tcp_input` sends the messages over one TCP connection (`loadgen.rs`);
//!   `http_input` posts the same messages' text as NDJSON records (`{"msg": …, "host": …,
//!   "app": "bench"}`), [`HTTP_BATCH`] a request, one request at a time over one keep-alive
//!   connection, as a `curl`-like client does; each request's answer (200, every record
//!   accepted) comes once the file writer took its records. The clock runs from the first
//!   send until the file output's `written` counter reached every message.
//!
//! Each run gets a fresh table (`DROP TABLE` and `CREATE`: `TRUNCATE` is not durable in 18.16):
//! `logs (time DateTime, host String, appname String, severity String, msg String) ENGINE =
//! MergeTree ORDER BY time`. The rounds interleave the cases; the table has the medians, the
//! ratio to the floor's msg/s and whether the issue's target (at least 70% of it) is met, and
//! where the CPU went: logwelld's (per thread name), clickhouse-server's and the client's over
//! each run, and the server's `InsertQuery` count (the mean rows per insert).
//!
//! Every wait is bounded by [`CASE_DEADLINE`]; the daemon and the server are children of this
//! process, stopped by their PID.

mod cases;
#[allow(dead_code)]
mod loadgen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cases::Selection;
use loadgen::Share;
use testkit::child::Proc;
use testkit::clickhouse::ClickHouse;
use testkit::logwelld::{self, Binaries};
use testkit::ports::free_port;
use testkit::{wait, OrPanic};

const BINARIES: Binaries = Binaries {
    logwelld: env!("CARGO_BIN_EXE_logwelld"),
    logwell: env!("CARGO_BIN_EXE_logwell"),
};
/// The longest any case may take.
const CASE_DEADLINE: Duration = Duration::from_secs(300);
/// The client Debian installs.
const CLIENT: &str = "/usr/bin/clickhouse-client";
/// The table every run inserts into, created afresh.
const TABLE: &str = "CREATE TABLE logs (time DateTime, host String, appname String, severity String, msg String) ENGINE = MergeTree ORDER BY time";
/// The table's columns, as the HTTP output and the floor's file write them.
const FIELDS: &str = r#"json_fields = ["time", "host", "appname=tag", "severity", "msg"]"#;
/// The issue's target: at least this share of the floor's msg/s.
const TARGET: f64 = 0.70;
/// Records per request of the `http_input` case.
const HTTP_BATCH: u64 = 1000;

fn daemon(dir: &Path, body: &str) -> Proc {
    let config = dir.join("logwell.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ncontrol_socket = \"{d}/c.sock\"\nstate_dir = \"{d}/state\"\nprivsep = false\nlog_level = \"warn\"\n{body}",
            d = dir.display()
        ),
    )
    .unwrap();
    let (socket, log) = (dir.join("c.sock"), dir.join("logwelld.log"));
    logwelld::start(BINARIES, &config, &socket, &log)
        .or_panic()
        .grace(Duration::from_secs(30))
}

/// An output's counter; `None` while the daemon does not answer.
fn stat(dir: &Path, output: &str, counter: &str) -> Option<u64> {
    let v = logwelld::stats(BINARIES.logwell, &dir.join("c.sock"))?;
    Some(v["outputs"][output][counter].as_u64().unwrap_or(0))
}

fn wait_stat(dir: &Path, output: &str, counter: &str, n: u64, t0: Instant) {
    let left = CASE_DEADLINE.saturating_sub(t0.elapsed());
    wait::until(left, &format!("{output}.{counter} to reach {n}"), || {
        (stat(dir, output, counter).unwrap_or(0) >= n).then_some(())
    })
    .or_panic();
}

fn send(port: u16, count: u64) {
    let start = Barrier::new(1);
    let share = Share {
        first_seq: 0,
        count,
        deadline: Instant::now() + CASE_DEADLINE,
    };
    let sent = loadgen::tcp(port, share, 1000, &start);
    assert_eq!(sent.messages, count, "{:?}", sent.error);
}

fn number(ch: &ClickHouse, sql: &str) -> u64 {
    let answer = ch.query(sql).or_panic();
    answer
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {answer:?}: {e}"))
}

fn fresh_table(ch: &ClickHouse) {
    ch.query("DROP TABLE IF EXISTS logs").or_panic();
    ch.query(TABLE).or_panic();
}

/// The server's count of INSERT queries so far.
fn inserts(ch: &ClickHouse) -> u64 {
    let v = ch
        .query("SELECT value FROM system.events WHERE event = 'InsertQuery'")
        .or_panic();
    v.trim().parse().unwrap_or(0)
}

/// utime + stime of `pid`'s thread or process stat file, in seconds.
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((name, ticks as f64 / hz))
}

fn cpu(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu(&s))
        .map_or(0.0, |(_, c)| c)
}

/// CPU seconds of `pid`'s threads, summed by thread name.
fn threads(pid: i32) -> BTreeMap<String, f64> {
    let mut by = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by;
    };
    for t in dir.flatten() {
        if let Some((name, c)) = std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| stat_cpu(&s))
        {
            *by.entry(name).or_insert(0.0) += c;
        }
    }
    by
}

/// The CPU seconds of children reaped so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// The CPU seconds each thread used between two [`threads`] readings, busiest first (those
/// under 10 ms left out).
fn threads_used(
    before: &BTreeMap<String, f64>,
    after: BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    let mut used: Vec<(String, f64)> = after
        .into_iter()
        .map(|(name, c)| {
            let b = before.get(&name).copied().unwrap_or(0.0);
            (name, c - b)
        })
        .filter(|(_, c)| *c >= 0.01)
        .collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    used
}

/// One run of one case.
struct Run {
    case: &'static str,
    secs: f64,
    rows: u64,
    distinct: u64,
    inserts: u64,
    daemon_cpu: Option<f64>,
    server_cpu: f64,
    client_cpu: Option<f64>,
    /// logwelld's threads that used the most CPU over the run.
    threads: Vec<(String, f64)>,
}

fn http_case(ch: &ClickHouse, n: u64, compression: &str, case: &'static str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().or_panic();
    fresh_table(ch);
    let extra = std::env::var("LOGWELL_BENCH_HTTP_EXTRA").unwrap_or_default();
    let body = format!(
        "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n\n[output.ch]\ntype = \"http\"\nurl = \"http://127.0.0.1:{}/\"\npreset = \"clickhouse\"\ntable = \"logs\"\ncompression = \"{compression}\"\n{FIELDS}\n{extra}\n\n[[rule]]\noutput = \"ch\"\n",
        ch.http_port
    );
    let d = daemon(dir.path(), &body);
    let (cpu0, server0, threads0, inserts0) = (
        cpu(d.pid()),
        cpu(ch.proc.pid()),
        threads(d.pid()),
        inserts(ch),
    );
    let t0 = Instant::now();
    send(port, n);
    wait_stat(dir.path(), "ch", "delivered", n, t0);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, server1, threads1, inserts1) = (
        cpu(d.pid()),
        cpu(ch.proc.pid()),
        threads(d.pid()),
        inserts(ch),
    );
    let dead = stat(dir.path(), "ch", "dead_lettered").unwrap_or(0);
    assert_eq!(dead, 0, "{case}: {dead} rows dead-lettered");
    drop(d);
    let used = threads_used(&threads0, threads1);
    Run {
        case,
        secs,
        rows: number(ch, "SELECT count() FROM logs"),
        distinct: number(ch, "SELECT uniqExact(msg) FROM logs"),
        inserts: inserts1 - inserts0,
        daemon_cpu: Some(cpu1 - cpu0),
        server_cpu: server1 - server0,
        client_cpu: None,
        threads: used,
    }
}

/// Writes the rows the HTTP output would post for `n` messages, as NDJSON: logwelld with a
/// file output with the same `json_fields`, fed by the same generator.
fn floor_rows(dir: &Path, n: u64) -> PathBuf {
    let port = free_port().or_panic();
    let path = dir.join("rows.ndjson");
    let body = format!(
        "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n\n[output.x]\ntype = \"file\"\npath = \"{}\"\nformat = \"json\"\n{FIELDS}\n\n[[rule]]\noutput = \"x\"\n",
        path.display()
    );
    let d = daemon(dir, &body);
    let t0 = Instant::now();
    send(port, n);
    wait_stat(dir, "x", "written", n, t0);
    drop(d);
    path
}

fn floor_case(ch: &ClickHouse, rows: &Path) -> Run {
    fresh_table(ch);
    let input = std::fs::File::open(rows).expect("the floor's rows");
    let errors = rows.with_extension("client.err");
    let (server0, client0, inserts0) = (cpu(ch.proc.pid()), children_cpu(), inserts(ch));
    let t0 = Instant::now();
    let mut cmd = Command::new(CLIENT);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &ch.tcp_port.to_string(),
        "--date_time_input_format=best_effort",
        "--input_format_skip_unknown_fields=1",
        "--query",
        "INSERT INTO logs FORMAT JSONEachRow",
    ])
    .stdin(input)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&errors).expect("the client's error file"));
    let mut child = Proc::spawn_as_set("clickhouse-client", cmd)
        .or_panic()
        .grace(Duration::from_secs(5));
    // Polled every millisecond (not `wait_exit`'s 20 ms): the insert takes about a second.
    let status = loop {
        if let Some(status) = child.child_mut().try_wait().expect("clickhouse-client") {
            break status;
        }
        assert!(
            t0.elapsed() < CASE_DEADLINE,
            "clickhouse-client did not exit within {CASE_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "clickhouse-client: {status}: {}",
        std::fs::read_to_string(&errors).unwrap_or_default()
    );
    let (server1, client1, inserts1) = (cpu(ch.proc.pid()), children_cpu(), inserts(ch));
    Run {
        case: "floor",
        secs,
        rows: number(ch, "SELECT count() FROM logs"),
        distinct: number(ch, "SELECT uniqExact(msg) FROM logs"),
        inserts: inserts1 - inserts0,
        daemon_cpu: None,
        server_cpu: server1 - server0,
        client_cpu: Some(client1 - client0),
        threads: Vec::new(),
    }
}

/// `tcp_input` or `http_input`: `n` messages into a file output, through the TCP input or
/// the HTTP input (NDJSON).
fn input_case(n: u64, http: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().or_panic();
    let input = if http {
        format!("[input.http]\ntype = \"http\"\nlisten = \"127.0.0.1:{port}\"\n")
    } else {
        format!("[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n")
    };
    let body = format!(
        "{input}\n[output.out]\ntype = \"file\"\npath = \"{}/out.log\"\n\n[[rule]]\noutput = \"out\"\n",
        dir.path().display()
    );
    let d = daemon(dir.path(), &body);
    // The requests are made before the clock starts: the client's work is not timed.
    let requests = if http {
        ndjson_requests(port, n)
    } else {
        Vec::new()
    };
    let (cpu0, threads0) = (cpu(d.pid()), threads(d.pid()));
    let t0 = Instant::now();
    if http {
        post_all(port, &requests);
    } else {
        send(port, n);
    }
    wait_stat(dir.path(), "out", "written", n, t0);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, threads1) = (cpu(d.pid()), threads(d.pid()));
    let written = stat(dir.path(), "out", "written").unwrap_or(0);
    drop(d);
    let used = threads_used(&threads0, threads1);
    Run {
        case: if http { "http_input" } else { "tcp_input" },
        secs,
        rows: written,
        distinct: written,
        inserts: 0,
        daemon_cpu: Some(cpu1 - cpu0),
        server_cpu: 0.0,
        client_cpu: None,
        threads: used,
    }
}

/// `n` messages' text (as `loadgen` renders them, after the syslog header) as NDJSON
/// records, in complete `POST /v1/logs` requests of [`HTTP_BATCH`] records.
fn ndjson_requests(port: u16, n: u64) -> Vec<Vec<u8>> {
    let mut msg = vec![0u8; loadgen::MESSAGE_BYTES];
    let mut requests = Vec::new();
    let mut seq = 0;
    while seq < n {
        let mut body = Vec::with_capacity(256 * HTTP_BATCH as usize);
        for s in seq..(seq + HTTP_BATCH).min(n) {
            loadgen::render_one(&mut msg, s);
            let text = std::str::from_utf8(&msg[loadgen::HEADER.len()..]).unwrap();
            let host = format!("host{}", s % 1000);
            body.extend_from_slice(
                serde_json::json!({"msg": text, "host": host, "app": "bench"})
                    .to_string()
                    .as_bytes(),
            );
            body.push(b'\n');
        }
        seq = (seq + HTTP_BATCH).min(n);
        let mut r = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        requests.push(r);
    }
    requests
}

/// Posts `requests` one at a time over one keep-alive connection; each answer must be 200.
fn post_all(port: u16, requests: &[Vec<u8>]) {
    use std::io::{BufRead, BufReader, Read, Write};
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(CASE_DEADLINE)).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    for req in requests {
        w.write_all(req).unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "answer: {line:?}");
        let mut length = 0usize;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).unwrap();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() {
    loadgen::self_check();
    let selection = Selection::from_args();
    let n = selection.messages(500_000, 100_000);
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds: usize = std::env::var("LOGWELL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(if quick { 1 } else { 3 });
    let scratch = tempfile::tempdir().unwrap();
    let clickhouse = ["floor", "clickhouse_none", "clickhouse_gzip"]
        .iter()
        .any(|c| selection.wants(c));
    let ch = clickhouse.then(|| {
        if let Err(e) = ClickHouse::available() {
            eprintln!("http: {e}");
            std::process::exit(1);
        }
        let ch = ClickHouse::start(&scratch.path().join("clickhouse")).or_panic();
        println!(
            "clickhouse-server {} on 127.0.0.1:{} (HTTP) and :{} (native)",
            ch.query("SELECT version()").or_panic().trim(),
            ch.http_port,
            ch.tcp_port
        );
        ch
    });
    println!("{n} messages, {rounds} round(s)");
    let floor_file = (ch.is_some() && selection.wants("floor")).then(|| {
        let dir = scratch.path().join("floor");
        std::fs::create_dir_all(&dir).unwrap();
        floor_rows(&dir, n)
    });
    let mut runs: Vec<Run> = Vec::new();
    for round in 1..=rounds {
        println!("round {round} of {rounds}");
        let mut one = |r: Run| {
            println!(
                "  {:<16} {:>9.0} msg/s  {:.2} s  rows {} distinct {}  inserts {}  logwelld CPU {}  server CPU {:.2} s  client CPU {}{}",
                r.case,
                n as f64 / r.secs,
                r.secs,
                r.rows,
                r.distinct,
                r.inserts,
                r.daemon_cpu.map_or("-".into(), |c| format!("{c:.2} s")),
                r.server_cpu,
                r.client_cpu.map_or("-".into(), |c| format!("{c:.2} s")),
                if r.threads.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n    logwelld threads: {}",
                        r.threads
                            .iter()
                            .take(6)
                            .map(|(t, c)| format!("{t} {c:.2} s"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
            runs.push(r);
        };
        if let (Some(ch), Some(f)) = (&ch, &floor_file) {
            one(floor_case(ch, f));
        }
        for (case, c) in [("clickhouse_none", "none"), ("clickhouse_gzip", "gzip")] {
            if let Some(ch) = ch.as_ref().filter(|_| selection.wants(case)) {
                one(http_case(ch, n, c, case));
            }
        }
        for (case, http) in [("tcp_input", false), ("http_input", true)] {
            if selection.wants(case) {
                one(input_case(n, http));
            }
        }
    }
    let floor = median(
        runs.iter()
            .filter(|r| r.case == "floor")
            .map(|r| n as f64 / r.secs)
            .collect(),
    );
    if ch.is_some() {
        println!(
        "\n| case | runs | msg/s (median) | of the floor | ≥ 70% | rows per insert | logwelld CPU s | server CPU s | client CPU s | lost | duplicates |"
    );
        println!("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    for case in ["floor", "clickhouse_none", "clickhouse_gzip"] {
        if ch.is_none() {
            break;
        }
        let rs: Vec<&Run> = runs.iter().filter(|r| r.case == case).collect();
        if rs.is_empty() {
            continue;
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let rate = m(&|r| n as f64 / r.secs);
        let (share, verdict) = if case == "floor" || floor == 0.0 {
            ("-".to_string(), "-".to_string())
        } else {
            let s = rate / floor;
            (
                format!("{:.0}%", s * 100.0),
                if s >= TARGET { "yes" } else { "no" }.to_string(),
            )
        };
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |c| format!("{c:.2}"));
        let cpu_med = |f: &dyn Fn(&Run) -> Option<f64>| {
            let v: Vec<f64> = rs.iter().filter_map(|r| f(r)).collect();
            (!v.is_empty()).then(|| median(v))
        };
        println!(
            "| {case} | {} | {:.0} | {share} | {verdict} | {:.0} | {} | {:.2} | {} | {} | {} |",
            rs.len(),
            rate,
            m(&|r| r.rows as f64 / r.inserts.max(1) as f64),
            opt(cpu_med(&|r| r.daemon_cpu)),
            m(&|r| r.server_cpu),
            opt(cpu_med(&|r| r.client_cpu)),
            rs.iter()
                .map(|r| n.saturating_sub(r.distinct))
                .max()
                .unwrap_or(0),
            rs.iter()
                .map(|r| r.rows - r.distinct.min(r.rows))
                .max()
                .unwrap_or(0),
        );
    }
    let tcp = median(
        runs.iter()
            .filter(|r| r.case == "tcp_input")
            .map(|r| n as f64 / r.secs)
            .collect(),
    );
    for case in ["tcp_input", "http_input"] {
        let rs: Vec<&Run> = runs.iter().filter(|r| r.case == case).collect();
        if rs.is_empty() {
            continue;
        }
        if case == "tcp_input" || tcp == 0.0 {
            println!("\n| input case | runs | msg/s (median) | of tcp_input | logwelld CPU s per million |");
            println!("| --- | ---: | ---: | ---: | ---: |");
        }
        let rate = median(rs.iter().map(|r| n as f64 / r.secs).collect());
        let cpu = median(
            rs.iter()
                .filter_map(|r| r.daemon_cpu)
                .map(|c| c * 1e6 / n as f64)
                .collect(),
        );
        let share = if tcp > 0.0 {
            format!("{:.0}%", rate / tcp * 100.0)
        } else {
            "-".into()
        };
        println!("| {case} | {} | {rate:.0} | {share} | {cpu:.2} |", rs.len());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average {} at the end",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(ch);
}
