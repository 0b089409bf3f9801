//! Side-by-side benchmark (issue 8): logwell, rsyslog, syslog-ng (stock and tuned) and a floor
//! program, fed the same load by the same generator (`bench/loadgen.rs`) on the same machine,
//! interleaved, the whole run repeated, medians printed in one table.
//!
//! Run it with `scripts/compare.sh` (or `cargo bench --bench compare`); arguments after `--`:
//! case names to run a subset (`--list` shows them), `--rounds N` (default 3), `--quick` (a
//! tenth of the messages, 1 round), `--daemons logwell,rsyslog,...`. Environment:
//! - `LOGWELL_PEERS_DIR`: where `scripts/peers.sh` unpacked rsyslog and syslog-ng (its `env`
//!   file); when unset, this benchmark runs `scripts/peers.sh target/peers` itself;
//! - `LOGWELL_COMPARE_MESSAGES=N`: messages per stream case (default 1,000,000; datagram
//!   cases 500,000);
//! - `LOGWELL_COMPARE_UDP_RATE=N`: the fixed rate of `udp_fixed` (default 250,000/s);
//! - `LOGWELL_COMPARE_UDP_STEPS=N`: probes of the `udp_max` search (default 6);
//! - `LOGWELL_COMPARE_UDP_SENDERS=N`: sender threads of each `udp_max` probe (default 1,
//!   up to 16), each at its share of the probe's rate;
//! - `LOGWELL_COMPARE_UDP_HIGH=N`: the `udp_max` search's ceiling (default 1,000,000/s);
//! - `LOGWELL_COMPARE_LOGWELLD=PATH`: the logwelld to run instead of the one Cargo built (an
//!   older commit's build, for a before/after on the same harness);
//! - `LOGWELL_BENCH_UDP_GSO=1`: UDP is sent with segmentation offload (`UDP_SEGMENT`, 64
//!   messages a `send`, see `loadgen::udp`): a sender several times cheaper, whose datagrams
//!   reach the receiver in bursts of 64.
//!
//! The daemons are not installed: rsyslog and syslog-ng-core conflict as Debian packages, and
//! installing either would replace the machine's own syslog. `scripts/peers.sh` downloads both
//! with `apt-get download` and unpacks them with `dpkg -x` (only their shared libraries are
//! installed with apt). Each runs in the foreground (`rsyslogd -n`, `syslog-ng -F`) on a
//! private config, pid file, work directory and sockets in a temporary directory: never
//! `/dev/log`, never the system's config. Every process is a child of this one and is stopped
//! by its PID (SIGTERM, then SIGKILL).
//!
//! The configs are equivalent: the same loopback port, one output file with RFC 3339 time
//! stamps (logwell `format = "rfc3339"`, rsyslog `RSYSLOG_FileFormat`, syslog-ng
//! `ts-format(iso)`), buffered writes (logwell 64 KiB, rsyslog `ioBufferSize="64k"`,
//! syslog-ng's default), no fsync, no DNS, the host name from the message, a 4 MiB
//! `SO_RCVBUF` for UDP (`net.core.rmem_max` here; every daemon gets the same kernel buffer) and
//! no rate limit on the Unix socket (rsyslog's imuxsock has one by default). syslog-ng's
//! `max-connections` is raised to the case's connection count where it exceeds its default
//! of 10 (else it refuses them). "syslog-ng tuned" adds `log-fetch-limit(1000)`, a larger
//! `log-iw-size`, `log-fifo-size` and `flush-lines`, and `flags(flow-control)`.
//!
//! Measures, per daemon and case (a fresh process each time, so peak RSS is the case's own):
//! - msg/s: messages found in the file ÷ time from the first send until the output file last
//!   grew (polled every 10 ms: done when it holds every message, or when it did not grow for
//!   [`QUIET`] after the senders finished);
//! - loss: sent − distinct sequence numbers found in the file (read back after the stop);
//! - CPU s/M: the process's utime + stime over the case, per million messages sent;
//! - peak RSS: `VmHWM`.
//!
//! `idle1000` opens 1,000 TCP connections one after another, each sending one message, and
//! holds them open until every message is in the file: its figure is the peak RSS (its msg/s
//! is the rate of sequential connection setup, not a throughput).
//!
//! `relp1` and `relp10` (issue 29) send RELP (logwell `type = "relp"`, rsyslog `imrelp`, on
//! the stream port instead of the TCP input; syslog-ng OSE and the floor have no RELP and
//! sit these out) from `loadgen::relp`, a sender that pipelines as librelp does: `open`, then
//! numbered `syslog` frames with up to 128 transactions unanswered, each answer checked, and
//! `close` once all are answered; so a message counts as sent once it is acknowledged. The
//! msg/s is still until the file last grew (rsyslog acknowledges once a message is in its
//! queue, logwell once it is written).
//!
//! `file1` and `file100` (issue 26) read files other programs write: logwell `type =
//! "file"`, rsyslog `imfile` in inotify mode, syslog-ng `wildcard-file()` with `flags(no-parse)`
//! (each line is a message, as for the other two), all on `in/*.log`, from the files' start.
//! One writer thread (`loadgen::file_append`) appends to one file, or to 100 in turn, as fast
//! as it can: 64 lines with one `write(2)`, every file held open. Before the timing starts,
//! each file gets one line numbered past the run's, and the run waits until all of them are in
//! the output, so every daemon follows every file by then. The floor of these cases is the
//! writer alone (no daemon): its rate, and its own CPU per million lines.
//!
//! `latency` is not a throughput: one message at a time, timed from its send until its line
//! is in the file (`bench/latency.rs`), p50/p99/max per daemon in a table per scenario.
//!
//! `udp_defaults` and `udp_defaults_max` (issue 33) are `udp_fixed` at 200,000/s for 5 s and
//! `udp_max` with no daemon's receive buffer set: each runs on what it asks for by itself
//! (logwell its 8 MiB default, the others the kernel's `net.core.rmem_default`), as most
//! users run them. The sender is the same paced one: `sendmmsg` bursts of 64 datagrams of
//! 200 bytes, each burst when it is due.
//!
//! `udp_max` is a bounded search: [`UDP_SEARCH_LOW`]–[`UDP_SEARCH_HIGH`] msg/s, geometric
//! bisection, each probe a fresh daemon fed [`UDP_PROBE_MESSAGES`] messages at the probe's
//! rate; the result is the highest achieved send rate with under 0.1% loss, marked `≥` when
//! the receiver's limit was not found (the sender fell short of a probe's rate, or no probe
//! failed up to the ceiling).

#[allow(dead_code)]
mod floor;
mod latency;
#[allow(dead_code)]
mod loadgen;
#[allow(dead_code)]
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use loadgen::{Body, Framing, Sent, Share};
use testkit::child::Proc;
use testkit::peers::{first_line, Peers};
use testkit::pki;
use testkit::ports::free_port;

/// logwelld, built by Cargo with the bench (release-based) profile, unless
/// `LOGWELL_COMPARE_LOGWELLD` names another build (an older commit's, for a before/after).
fn logwelld() -> PathBuf {
    std::env::var_os("LOGWELL_COMPARE_LOGWELLD").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_logwelld")),
        PathBuf::from,
    )
}
/// Longest a run may take, from the first message sent.
const RUN_DEADLINE: Duration = Duration::from_secs(90);
/// Longest a daemon may take to listen after it was started.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// Longest a daemon may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// How often the output file's size is read.
const POLL: Duration = Duration::from_millis(10);
/// After the senders finished, a run ends once the file did not grow for this long.
const QUIET: Duration = Duration::from_millis(2000);
/// `SO_RCVBUF` of every UDP input.
const UDP_RCVBUF: usize = 4 << 20;
/// The `udp_max` search range, msg/s.
const UDP_SEARCH_LOW: f64 = 25_000.0;
const UDP_SEARCH_HIGH: f64 = 1_000_000.0;
/// Messages per `udp_max` probe.
const UDP_PROBE_MESSAGES: u64 = 200_000;
/// Loss allowed by `udp_max`.
const UDP_MAX_LOSS: f64 = 0.001;

/// The receivers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Logwell,
    Rsyslog,
    SyslogNg,
    SyslogNgTuned,
    Floor,
}

const KINDS: [Kind; 5] = [
    Kind::Logwell,
    Kind::Rsyslog,
    Kind::SyslogNg,
    Kind::SyslogNgTuned,
    Kind::Floor,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Logwell => "logwell",
            Kind::Rsyslog => "rsyslog",
            Kind::SyslogNg => "syslog-ng",
            Kind::SyslogNgTuned => "syslog-ng-tuned",
            Kind::Floor => "floor",
        }
    }
}

/// What a case sends.
#[derive(Clone, Copy, Debug)]
enum Load {
    Tcp {
        connections: usize,
        framing: Framing,
        /// [`Body::Json`] (issue 27): the daemons parse each body (logwell `parse = ["json"]`
        /// and the `{fields}` template, rsyslog `mmjsonparse` and `%$!all-json%`).
        body: Body,
    },
    /// UDP at a fixed rate (`None`: the `udp_max` search sets it).
    Udp,
    UdpMax,
    Unix,
    Tls {
        connections: usize,
    },
    /// RELP (issue 29): this many sessions, each pipelining as librelp does
    /// (`loadgen::relp`); a message counts as sent once it is acknowledged.
    Relp {
        connections: usize,
    },
    /// This many TCP connections, one message each, held open while the RSS is read.
    Idle {
        connections: usize,
    },
    /// One message at a time over TCP, UDP and Unix, timed to the file (`latency.rs`).
    Latency,
    /// Lines appended to this many files by one writer, read by the daemons' file inputs
    /// (issue 26).
    File {
        files: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    load: Load,
    about: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "tcp1",
        load: Load::Tcp {
            connections: 1,
            framing: Framing::Newline,
            body: Body::Text,
        },
        about: "one TCP connection, newline-framed",
    },
    Case {
        name: "tcp10",
        load: Load::Tcp {
            connections: 10,
            framing: Framing::Newline,
            body: Body::Text,
        },
        about: "ten TCP connections, newline-framed",
    },
    Case {
        name: "tcp100",
        load: Load::Tcp {
            connections: 100,
            framing: Framing::Newline,
            body: Body::Text,
        },
        about: "100 TCP connections, newline-framed",
    },
    Case {
        name: "tcp1_oc",
        load: Load::Tcp {
            connections: 1,
            framing: Framing::OctetCounted,
            body: Body::Text,
        },
        about: "one TCP connection, octet-counted (RFC 6587)",
    },
    Case {
        name: "tcp10_oc",
        load: Load::Tcp {
            connections: 10,
            framing: Framing::OctetCounted,
            body: Body::Text,
        },
        about: "ten TCP connections, octet-counted",
    },
    Case {
        name: "tcp100_oc",
        load: Load::Tcp {
            connections: 100,
            framing: Framing::OctetCounted,
            body: Body::Text,
        },
        about: "100 TCP connections, octet-counted",
    },
    Case {
        name: "json10",
        load: Load::Tcp {
            connections: 10,
            framing: Framing::Newline,
            body: Body::Json,
        },
        about:
            "ten TCP connections, JSON bodies parsed (logwell parse = json, rsyslog mmjsonparse)",
    },
    Case {
        name: "udp_fixed",
        load: Load::Udp,
        about: "UDP paced at LOGWELL_COMPARE_UDP_RATE (default 250,000/s)",
    },
    Case {
        name: "udp_max",
        load: Load::UdpMax,
        about: "highest UDP rate with under 0.1% loss (bounded search)",
    },
    Case {
        name: "udp_defaults",
        load: Load::Udp,
        about: "UDP at 200,000/s for 5 s, kernel defaults: no daemon sets a receive buffer",
    },
    Case {
        name: "udp_defaults_max",
        load: Load::UdpMax,
        about: "udp_max on the kernel defaults: no daemon sets a receive buffer",
    },
    Case {
        name: "unix",
        load: Load::Unix,
        about: "Unix datagram socket, sendmmsg x64 (blocking sender)",
    },
    Case {
        name: "tls10",
        load: Load::Tls { connections: 10 },
        about: "ten TLS connections (rustls client; rsyslog ossl driver, syslog-ng tls())",
    },
    Case {
        name: "relp1",
        load: Load::Relp { connections: 1 },
        about: "one RELP session, 128 transactions in flight (logwell relp, rsyslog imrelp)",
    },
    Case {
        name: "relp10",
        load: Load::Relp { connections: 10 },
        about: "ten RELP sessions, 128 transactions in flight each",
    },
    Case {
        name: "file1",
        load: Load::File { files: 1 },
        about: "one file appended as fast as a writer can (imfile inotify, wildcard-file())",
    },
    Case {
        name: "file100",
        load: Load::File { files: 100 },
        about: "100 files appended in turn as fast as a writer can",
    },
    Case {
        name: "idle1000",
        load: Load::Idle { connections: 1000 },
        about: "1,000 TCP connections, one message each, held open: peak RSS",
    },
    Case {
        name: "latency",
        load: Load::Latency,
        about: "send → line in the file, one at a time at 20/s and 1,000/s: TCP, UDP, Unix, \
                the journal; and TCP → forward, TCP → follow (SSE)",
    },
];

struct Options {
    cases: Vec<Case>,
    kinds: Vec<Kind>,
    rounds: usize,
    stream_messages: u64,
    dgram_messages: u64,
    udp_rate: u64,
    udp_steps: usize,
    /// `--quick` divides the messages by this.
    div: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--floor") {
        std::process::exit(floor_main(&args[1..]));
    }
    loadgen::self_check();
    let opts = match options(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    let peers = match Peers::from_env_or_fetch(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", machine());
    println!("{}", versions(&peers));
    let mut results: Vec<Outcome> = Vec::new();
    let mut latencies = latency::Results::new();
    for round in 1..=opts.rounds {
        println!("\nround {round} of {}", opts.rounds);
        for case in &opts.cases {
            for &kind in &opts.kinds {
                if !supported(kind, case) {
                    continue;
                }
                if matches!(case.load, Load::Latency) {
                    latency::run(kind, case, &peers, &mut latencies);
                    continue;
                }
                let o = match case.load {
                    Load::UdpMax => udp_search(kind, case, &peers, &opts),
                    Load::File { files } => {
                        run_file(kind, case, files, messages(case, &opts), &peers)
                    }
                    Load::Idle { connections } => run_idle(kind, case, connections, &peers),
                    _ => {
                        let n = messages(case, &opts);
                        run(kind, case, n, rate(case, &opts), &peers)
                    }
                };
                println!("  {}", o.line());
                results.push(o);
            }
        }
    }
    if !results.is_empty() {
        println!("\n{}", table(&results, &opts));
        println!("{}", verdict(&results, &opts));
    }
    if !latencies.is_empty() {
        println!("\n{}", latency::tables(&latencies));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average {} at the end",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(tls) = loadgen::tls_negotiated() {
        println!("TLS: the first connection negotiated {tls}");
    }
}

/// The floor has no TLS receiver, and serves one datagram kind at a time (not `latency`);
/// it always sets its buffer, so it has no kernel-defaults case. Neither the floor nor
/// syslog-ng OSE speaks RELP: the RELP cases run logwell and rsyslog only. The file cases'
/// floor is the writer alone.
fn supported(kind: Kind, case: &Case) -> bool {
    if matches!(case.load, Load::File { .. }) {
        return true;
    }
    if json(case) {
        return matches!(kind, Kind::Logwell | Kind::Rsyslog);
    }
    if matches!(case.load, Load::Relp { .. }) {
        return matches!(kind, Kind::Logwell | Kind::Rsyslog);
    }
    !(kind == Kind::Floor
        && (matches!(case.load, Load::Tls { .. } | Load::Latency) || kernel_defaults(case)))
}

/// Whether `case` sends JSON bodies for the daemons to parse (issue 27). syslog-ng's
/// json-parser and the floor (which parses nothing) sit it out.
fn json(case: &Case) -> bool {
    matches!(
        case.load,
        Load::Tcp {
            body: Body::Json,
            ..
        }
    )
}

/// The rate of `udp_defaults` (issue 33): 200,000 datagrams/s, for [`UDP_DEFAULTS_SECS`].
const UDP_DEFAULTS_RATE: u64 = 200_000;
const UDP_DEFAULTS_SECS: u64 = 5;

/// The `udp_defaults*` cases run every daemon as most users do: no receive buffer set, so
/// each gets what it asks for by itself (logwell its default, the others the kernel's
/// `net.core.rmem_default`). The others: every daemon gets [`UDP_RCVBUF`].
fn kernel_defaults(case: &Case) -> bool {
    case.name.starts_with("udp_defaults")
}

/// `config` without its receive buffer setting when `case` runs on the kernel defaults:
/// logwell's `receive_buffer_bytes`, rsyslog's `rcvbufSize`, syslog-ng's `so-rcvbuf()`.
fn untuned(case: &Case, config: String) -> String {
    if !kernel_defaults(case) {
        return config;
    }
    config
        .replace(&format!("receive_buffer_bytes = {UDP_RCVBUF}\n"), "")
        .replace(&format!(" rcvbufSize=\"{UDP_RCVBUF}\""), "")
        .replace(&format!(" so-rcvbuf({UDP_RCVBUF})"), "")
}

fn messages(case: &Case, opts: &Options) -> u64 {
    match case.load {
        Load::Tcp { .. } | Load::Tls { .. } | Load::Relp { .. } | Load::File { .. } => {
            opts.stream_messages
        }
        Load::Udp if kernel_defaults(case) => UDP_DEFAULTS_RATE * UDP_DEFAULTS_SECS / opts.div,
        Load::Udp | Load::Unix => opts.dgram_messages,
        Load::UdpMax => UDP_PROBE_MESSAGES,
        Load::Idle { connections } => connections as u64,
        Load::Latency => 0,
    }
}

fn rate(case: &Case, opts: &Options) -> Option<u64> {
    match case.load {
        Load::Udp if kernel_defaults(case) => Some(UDP_DEFAULTS_RATE),
        Load::Udp => Some(opts.udp_rate),
        _ => None,
    }
}

fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .map_err(|e| format!("{name}={v}: {e}")),
        Err(_) => Ok(default),
    }
}

fn options(args: &[String]) -> Result<Option<Options>, String> {
    let mut names = Vec::new();
    let mut rounds = 3;
    let mut quick = false;
    let mut kinds = KINDS.to_vec();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--list" => {
                for c in CASES {
                    println!("{:<16} {}", c.name, c.about);
                }
                return Ok(None);
            }
            "--quick" => quick = true,
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--rounds needs a number above 0")?
            }
            "--daemons" => {
                let v = it.next().ok_or("--daemons needs a list")?;
                kinds = v
                    .split(',')
                    .map(|n| {
                        KINDS
                            .iter()
                            .copied()
                            .find(|k| k.name() == n)
                            .ok_or_else(|| format!("unknown daemon {n}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            name => names.push(name.to_string()),
        }
    }
    let cases = if names.is_empty() {
        CASES.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                CASES
                    .iter()
                    .copied()
                    .find(|c| c.name == n)
                    .ok_or_else(|| format!("unknown case {n} (--list shows them)"))
            })
            .collect::<Result<_, _>>()?
    };
    let div = if quick { 10 } else { 1 };
    if quick && !args.iter().any(|a| a == "--rounds") {
        rounds = 1;
    }
    Ok(Some(Options {
        cases,
        kinds,
        rounds,
        stream_messages: env_u64("LOGWELL_COMPARE_MESSAGES", 1_000_000)? / div,
        dgram_messages: env_u64("LOGWELL_COMPARE_MESSAGES", 500_000)? / div,
        udp_rate: env_u64("LOGWELL_COMPARE_UDP_RATE", 250_000)?,
        udp_steps: env_u64("LOGWELL_COMPARE_UDP_STEPS", 6)? as usize,
        div,
    }))
}

/// `compare --floor PORT OUT [udp RCVBUF | unix PATH]`.
fn floor_main(args: &[String]) -> i32 {
    let usage = "usage: --floor PORT OUT [udp RCVBUF | unix PATH]";
    let (Some(port), Some(out)) = (args.first().and_then(|p| p.parse().ok()), args.get(1)) else {
        eprintln!("{usage}");
        return 2;
    };
    let path;
    let extra = match (args.get(2).map(String::as_str), args.get(3)) {
        (None, _) => floor::Extra::None,
        (Some("udp"), Some(b)) => floor::Extra::Udp {
            rcvbuf: b.parse().unwrap_or(UDP_RCVBUF),
        },
        (Some("unix"), Some(p)) => {
            path = PathBuf::from(p);
            floor::Extra::Unix { path: &path }
        }
        _ => {
            eprintln!("{usage}");
            return 2;
        }
    };
    match floor::run(port, extra, Path::new(out)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("floor: {e}");
            1
        }
    }
}

/// The versions of logwelld and of the peers, for the report.
fn versions(peers: &Peers) -> String {
    let mut lw = Command::new(logwelld());
    lw.arg("--version");
    let (rs, ng) = peers.versions();
    format!("{}; {rs}; {ng}", first_line(lw))
}

/// A receiver this benchmark started, in its own temporary directory.
struct Receiver {
    child: Option<Proc>,
    dir: tempfile::TempDir,
    port: u16,
    unix: PathBuf,
    output: PathBuf,
}

impl Receiver {
    fn start(kind: Kind, case: &Case, peers: &Peers) -> Result<Receiver, String> {
        Receiver::start_with(kind, case, peers, |config| config)
    }

    /// [`Receiver::start`] with the daemon's configuration text passed through `edit`
    /// first (the latency case adds a forward action, a follow service and a journal input).
    fn start_with(
        kind: Kind,
        case: &Case,
        peers: &Peers,
        edit: impl FnOnce(String) -> String,
    ) -> Result<Receiver, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("logwell-compare-{}-", kind.name()))
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let d = dir.path().to_path_buf();
        let port = free_port()?;
        let unix = d.join("log.sock");
        let output = d.join("messages.log");
        let tls = matches!(case.load, Load::Tls { .. });
        let relp = matches!(case.load, Load::Relp { .. });
        let json = json(case);
        if tls {
            pki::make_server(&d, loadgen::TLS_SERVER_NAME)?;
        }
        let connections = match case.load {
            Load::Tcp { connections, .. }
            | Load::Tls { connections }
            | Load::Relp { connections }
            | Load::Idle { connections } => connections,
            _ => 1,
        };
        let octet = matches!(
            case.load,
            Load::Tcp {
                framing: Framing::OctetCounted,
                ..
            }
        );
        // The files a file case's writer appends to exist, empty, before the daemon starts.
        let file_sources = match case.load {
            Load::File { files } => {
                std::fs::create_dir_all(d.join("in")).map_err(|e| e.to_string())?;
                for p in input_files(&d, files) {
                    write(&p, "")?;
                }
                file_sources(kind, &d)
            }
            _ => String::new(),
        };
        let mut cmd = match kind {
            Kind::Logwell => {
                let conf = d.join("logwell.toml");
                let text = untuned(case, logwell_config(&d, port, tls, relp, json));
                write(&conf, &edit(text + &file_sources))?;
                let mut c = Command::new(logwelld());
                c.arg("--config").arg(&conf);
                c
            }
            Kind::Rsyslog => {
                let conf = d.join("rsyslog.conf");
                std::fs::create_dir_all(d.join("work")).map_err(|e| e.to_string())?;
                let text = untuned(case, rsyslog_config(&d, port, tls, relp, json, connections));
                write(&conf, &edit(text + &file_sources))?;
                peers.rsyslogd(&conf, &d)?
            }
            Kind::SyslogNg | Kind::SyslogNgTuned => {
                let conf = d.join("syslog-ng.conf");
                let version = peers.syslog_ng_version()?;
                let text = untuned(
                    case,
                    syslog_ng_config(&SyslogNgConf {
                        dir: &d,
                        version: &version,
                        port,
                        tls,
                        octet,
                        connections,
                        tuned: kind == Kind::SyslogNgTuned,
                    }),
                );
                write(&conf, &edit(text + &file_sources))?;
                peers.syslog_ng(&conf, &d)?
            }
            Kind::Floor => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut c = Command::new(exe);
                c.arg("--floor").arg(port.to_string()).arg(&output);
                match case.load {
                    Load::Udp | Load::UdpMax => {
                        c.arg("udp").arg(UDP_RCVBUF.to_string());
                    }
                    Load::Unix => {
                        c.arg("unix").arg(&unix);
                    }
                    _ => {}
                }
                c
            }
        };
        cmd.current_dir(&d);
        let child = Proc::spawn(kind.name(), cmd, &d.join("stderr.log"))?.grace(STOP_DEADLINE);
        let mut r = Receiver {
            child: Some(child),
            dir,
            port,
            unix,
            output,
        };
        r.wait_ready(matches!(case.load, Load::Unix | Load::Latency))?;
        Ok(r)
    }

    /// Waits until the TCP (or TLS) port accepts, and the Unix socket exists when asked.
    fn wait_ready(&mut self, unix: bool) -> Result<(), String> {
        let (port, socket) = (self.port, self.unix.clone());
        let what = if unix {
            format!("listen on 127.0.0.1:{port} and create {}", socket.display())
        } else {
            format!("listen on 127.0.0.1:{port}")
        };
        self.child
            .as_mut()
            .expect("running")
            .wait_ready(START_DEADLINE, &what, || {
                TcpStream::connect(("127.0.0.1", port)).is_ok() && (!unix || socket.exists())
            })?;
        // Inputs other than the probed one may start a moment later.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").pid()
    }

    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0.0;
        };
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|x| x.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 / hz
    }

    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// SIGTERM to our child, SIGKILL after [`STOP_DEADLINE`].
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill();
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn logwell_config(d: &Path, port: u16, tls: bool, relp: bool, json: bool) -> String {
    let stream = if relp {
        format!("[input.relp]\ntype = \"relp\"\nlisten = \"127.0.0.1:{port}\"\n")
    } else if tls {
        format!(
            "[input.tls]\ntype = \"tls\"\nlisten = \"127.0.0.1:{port}\"\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"\n",
            d = d.display()
        )
    } else if json {
        format!("[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\nparse = [\"json\"]\n")
    } else {
        format!("[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n")
    };
    // JSON bodies: the parsed fields as one JSON object, as rsyslog's `%$!all-json%`.
    let format = if json {
        "template = \"{fields}\""
    } else {
        "format = \"rfc3339\""
    };
    format!(
        r#"[daemon]
control_socket = "{d}/control.sock"
log_level = "warn"
state_dir = "{d}"
# One process, so its CPU and RSS are the daemon's.
privsep = false

{stream}
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
receive_buffer_bytes = {UDP_RCVBUF}

[input.unix]
type = "unix_datagram"
path = "{d}/log.sock"

[output.out]
type = "file"
path = "{d}/messages.log"
{format}

[[rule]]
output = "out"
"#,
        d = d.display()
    )
}

/// The files of a file case, in the receiver's directory `d`.
fn input_files(d: &Path, files: usize) -> Vec<PathBuf> {
    (0..files)
        .map(|i| d.join("in").join(format!("f{i:03}.log")))
        .collect()
}

/// What a file case adds to `kind`'s config: an input on `d/in/*.log`, read from the files'
/// start, into the one output file (the floor has none: it is the writer alone).
fn file_sources(kind: Kind, d: &Path) -> String {
    let d = d.display();
    match kind {
        Kind::Logwell => format!(
            "\n[input.files]\ntype = \"file\"\npaths = [\"{d}/in/*.log\"]\nfrom = \"head\"\n"
        ),
        // freshStartTail is off by default: files without a state are read from their start.
        Kind::Rsyslog => format!(
            "module(load=\"imfile\" mode=\"inotify\")\ninput(type=\"imfile\" File=\"{d}/in/*.log\" Tag=\"bench:\" ruleset=\"bench\")\n"
        ),
        Kind::SyslogNg | Kind::SyslogNgTuned => {
            let (opts, flags) = if kind == Kind::SyslogNgTuned {
                (
                    " log-fetch-limit(1000) log-iw-size(100000)",
                    " flags(flow-control);",
                )
            } else {
                ("", "")
            };
            format!(
                "source s_files {{ wildcard-file(base-dir(\"{d}/in\") filename-pattern(\"*.log\") recursive(no) flags(no-parse){opts}); }};\nlog {{ source(s_files); destination(d_file);{flags} }};\n"
            )
        }
        Kind::Floor => String::new(),
    }
}

fn rsyslog_config(
    d: &Path,
    port: u16,
    tls: bool,
    relp: bool,
    json: bool,
    connections: usize,
) -> String {
    let d = d.display();
    let (tls_global, mut tls_module) = if tls {
        (
            format!(
                "\n  defaultNetstreamDriverCAFile=\"{d}/ca.pem\"\n  defaultNetstreamDriverCertFile=\"{d}/server.pem\"\n  defaultNetstreamDriverKeyFile=\"{d}/server.key\""
            ),
            " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\""
                .to_string(),
        )
    } else {
        (String::new(), String::new())
    };
    // imtcp takes 200 sessions by default.
    if connections > 200 {
        let _ = write!(tls_module, " MaxSessions=\"{}\"", connections + 10);
    }
    // RELP: imrelp on the stream port instead of imtcp (librelp's defaults otherwise).
    let (stream_module, stream_input) = if relp {
        (
            "module(load=\"imrelp\")".to_string(),
            format!(
                "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"bench\")"
            ),
        )
    } else {
        (
            format!("module(load=\"imtcp\"{tls_module})"),
            format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"bench\")"
            ),
        )
    };
    // JSON bodies (issue 27): mmjsonparse reads the plain body (no @cee: cookie) into $!,
    // and the file gets the parsed tree.
    let (json_module, json_action, template) = if json {
        (
            "module(load=\"mmjsonparse\")\ntemplate(name=\"j\" type=\"string\" string=\"%$!all-json%\\n\")\n",
            "  action(type=\"mmjsonparse\" cookie=\"\")\n",
            "j",
        )
    } else {
        ("", "", "RSYSLOG_FileFormat")
    };
    format!(
        r#"global(workDirectory="{d}/work" net.enableDNS="off"{tls_global})
{stream_module}
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
{json_module}# The inputs' own ruleset: rsyslog's internal messages do not go to the file.
ruleset(name="bench") {{
{json_action}  action(type="omfile" file="{d}/messages.log" template="{template}" ioBufferSize="64k")
}}
{stream_input}
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="bench" rcvbufSize="{UDP_RCVBUF}")
input(type="imuxsock" Socket="{d}/log.sock" ruleset="bench" RateLimit.Interval="0")
"#
    )
}

struct SyslogNgConf<'a> {
    dir: &'a Path,
    version: &'a str,
    port: u16,
    tls: bool,
    octet: bool,
    connections: usize,
    tuned: bool,
}

fn syslog_ng_config(c: &SyslogNgConf<'_>) -> String {
    let d = c.dir.display();
    let port = c.port;
    let mut stream_opts = String::new();
    if c.connections > 10 {
        let _ = write!(stream_opts, " max-connections({})", c.connections + 10);
    }
    let mut dgram_opts = String::new();
    let mut options = String::new();
    let mut flags = "";
    if c.tuned {
        let _ = write!(
            stream_opts,
            " log-fetch-limit(1000) log-iw-size({})",
            (c.connections * 1000).max(10_000)
        );
        dgram_opts.push_str(" log-fetch-limit(1000) log-iw-size(10000)");
        options.push_str(" log-fifo-size(1000000); flush-lines(1000);");
        flags = " flags(flow-control);";
    }
    let stream = if c.tls {
        format!(
            "network(ip(\"127.0.0.1\") port({port}) transport(\"tls\") tls(key-file(\"{d}/server.key\") cert-file(\"{d}/server.pem\") peer-verify(optional-untrusted)){stream_opts})"
        )
    } else if c.octet {
        format!("syslog(ip(\"127.0.0.1\") port({port}) transport(\"tcp\"){stream_opts})")
    } else {
        format!("network(ip(\"127.0.0.1\") port({port}) transport(\"tcp\"){stream_opts})")
    };
    format!(
        r#"@version: {version}
options {{ chain-hostnames(no); keep-hostname(yes); use-dns(no); ts-format(iso); stats-freq(0);{options} }};
source s_bench {{
  {stream};
  network(ip("127.0.0.1") port({port}) transport("udp") so-rcvbuf({UDP_RCVBUF}){dgram_opts});
  unix-dgram("{d}/log.sock"{dgram_opts});
}};
destination d_file {{ file("{d}/messages.log"); }};
log {{ source(s_bench); destination(d_file);{flags} }};
"#,
        version = c.version
    )
}

/// One run of one receiver in one case.
#[derive(Clone, Debug)]
struct Outcome {
    kind: Kind,
    case: &'static str,
    sent: u64,
    found: u64,
    duplicates: u64,
    secs: f64,
    send_secs: f64,
    cpu_secs: f64,
    rss_mib: f64,
    /// `udp_max`: the highest achieved rate under 0.1% loss (None: none was).
    best_rate: Option<f64>,
    /// `udp_max`: the receiver's limit was not found: the sender could not reach the next
    /// probe's rate, or no probe failed up to the search's ceiling (the result is the
    /// generator's or the search's limit, not the daemon's).
    sender_bound: bool,
    errors: Vec<String>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        if let Some(r) = self.best_rate {
            return r;
        }
        if self.secs > 0.0 {
            self.found as f64 / self.secs
        } else {
            0.0
        }
    }

    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.found)
    }

    fn cpu_per_million(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.cpu_secs / self.sent as f64 * 1e6
    }

    fn line(&self) -> String {
        let mut s = format!(
            "{:<10} {:<16} {:>10} msg/s  sent {:>9}  lost {:>7}  dup {}  {:.2} CPU s/M  {:.1} MiB",
            self.case,
            self.kind.name(),
            group(self.rate()),
            group(self.sent as f64),
            self.lost(),
            self.duplicates,
            self.cpu_per_million(),
            self.rss_mib
        );
        if self.case.starts_with("udp_") && self.case.ends_with("_max") {
            s.push_str(if self.sender_bound {
                "  (best probe; the sender's limit)"
            } else {
                "  (best probe)"
            });
        }
        for e in &self.errors {
            let _ = write!(
                s,
                "\n    error: {}",
                e.lines().take(6).collect::<Vec<_>>().join("\n           ")
            );
        }
        s
    }
}

fn failed(kind: Kind, case: &Case, n: u64, error: String) -> Outcome {
    Outcome {
        kind,
        case: case.name,
        sent: n,
        found: 0,
        duplicates: 0,
        secs: 0.0,
        send_secs: 0.0,
        cpu_secs: 0.0,
        rss_mib: 0.0,
        best_rate: None,
        sender_bound: false,
        errors: vec![error],
    }
}

/// Starts `kind` for `case`, sends `n` messages (at `rate` for UDP), measures, stops it and
/// reads the file back.
fn run(kind: Kind, case: &Case, n: u64, rate: Option<u64>, peers: &Peers) -> Outcome {
    let mut r = match Receiver::start(kind, case, peers) {
        Ok(r) => r,
        Err(e) => return failed(kind, case, n, e),
    };
    let mut errors = Vec::new();
    let tls_config = if matches!(case.load, Load::Tls { .. }) {
        match loadgen::tls_client_config(&r.dir.path().join("ca.pem")) {
            Ok(c) => Some(c),
            Err(e) => return failed(kind, case, n, e),
        }
    } else {
        None
    };
    let senders = match case.load {
        Load::Tcp { connections, .. } | Load::Tls { connections } | Load::Relp { connections } => {
            connections
        }
        Load::UdpMax => udp_max_senders(),
        _ => 1,
    };
    // Each sender paces its share of the rate.
    let rate = rate.map(|r| r / senders as u64);
    let start = Arc::new(Barrier::new(senders + 1));
    let cpu0 = r.cpu_secs();
    let deadline = Instant::now() + RUN_DEADLINE;
    let mut handles = Vec::new();
    for (first_seq, count) in split(n, senders) {
        let share = Share {
            first_seq,
            count,
            deadline,
        };
        let start = Arc::clone(&start);
        let port = r.port;
        let unix = r.unix.clone();
        let load = case.load;
        let tls = tls_config.clone();
        handles.push(std::thread::spawn(move || match load {
            Load::Tcp { framing, body, .. } => {
                loadgen::tcp_body(port, share, 0, framing, body, &start)
            }
            Load::Tls { .. } => {
                loadgen::tls(port, tls.as_ref().expect("TLS config"), share, &start)
            }
            Load::Relp { .. } => loadgen::relp(port, share, &start),
            Load::Udp | Load::UdpMax => loadgen::udp(port, share, rate, &start),
            Load::Unix => loadgen::unix_dgram(&unix, loadgen::HEADER, share, &start),
            Load::Idle { .. } => unreachable!("run_idle"),
            Load::Latency => unreachable!("latency::run"),
            Load::File { .. } => unreachable!("run_file"),
        }));
    }
    start.wait();
    let began = Instant::now();
    let mut line_bytes: Option<u64> = None;
    let mut size = 0u64;
    let mut last_growth = began;
    let mut sent_all: Option<Vec<Sent>> = None;
    loop {
        std::thread::sleep(POLL);
        let now_size = std::fs::metadata(&r.output).map_or(0, |m| m.len());
        if now_size > size {
            size = now_size;
            last_growth = Instant::now();
        }
        if line_bytes.is_none() && size > 0 {
            line_bytes = first_line_bytes(&r.output);
        }
        if sent_all.is_none() && handles.iter().all(|h| h.is_finished()) {
            sent_all = Some(
                handles
                    .drain(..)
                    .map(|h| {
                        h.join().unwrap_or_else(|_| Sent {
                            error: Some("sender panicked".into()),
                            ..Sent::default()
                        })
                    })
                    .collect(),
            );
        }
        if let Some(sent) = &sent_all {
            let total: u64 = sent.iter().map(|s| s.messages).sum();
            if line_bytes.is_some_and(|l| size >= total * l) {
                break;
            }
            if last_growth.elapsed() > QUIET && Instant::now().duration_since(began) > QUIET {
                break;
            }
        }
        if Instant::now() > deadline + QUIET {
            errors.push(format!("not done within {RUN_DEADLINE:?}"));
            break;
        }
    }
    let cpu = r.cpu_secs() - cpu0;
    let rss = r.peak_rss_mib();
    let sent = sent_all.unwrap_or_default();
    let sent_count: u64 = sent.iter().map(|s| s.messages).sum();
    let send_end = sent
        .iter()
        .filter_map(|s| s.finished)
        .max()
        .unwrap_or(began);
    errors.extend(sent.iter().filter_map(|s| s.error.clone()));
    r.stop();
    let (found, duplicates) = match count_seqs(&r.output, n) {
        Ok(x) => x,
        Err(e) => {
            errors.push(format!("reading {}: {e}", r.output.display()));
            (0, 0)
        }
    };
    if found == 0 && errors.is_empty() {
        errors.push(format!("nothing written; {}: {}", kind.name(), r.log()));
    }
    Outcome {
        kind,
        case: case.name,
        sent: sent_count,
        found,
        duplicates,
        secs: last_growth.duration_since(began).as_secs_f64(),
        send_secs: send_end.duration_since(began).as_secs_f64(),
        cpu_secs: cpu,
        rss_mib: rss,
        best_rate: None,
        sender_bound: false,
        errors,
    }
}

/// `idle1000`: opens `connections` TCP connections one after another, each sending one
/// newline-framed message, and keeps them open until every message is in the file; then reads
/// the peak RSS. The rate is connections (messages) per second.
fn run_idle(kind: Kind, case: &Case, connections: usize, peers: &Peers) -> Outcome {
    use std::io::Write;
    let n = connections as u64;
    let mut r = match Receiver::start(kind, case, peers) {
        Ok(r) => r,
        Err(e) => return failed(kind, case, n, e),
    };
    let mut errors = Vec::new();
    let cpu0 = r.cpu_secs();
    let began = Instant::now();
    let deadline = began + RUN_DEADLINE;
    let mut held = Vec::with_capacity(connections);
    let mut msg = vec![b'\n'; loadgen::MESSAGE_BYTES + 1];
    for seq in 0..n {
        loadgen::render_one(&mut msg[..loadgen::MESSAGE_BYTES], seq);
        let conn = TcpStream::connect(("127.0.0.1", r.port)).and_then(|mut s| {
            s.set_write_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(&msg)?;
            Ok(s)
        });
        match conn {
            Ok(s) => held.push(s),
            Err(e) => {
                errors.push(format!("connection {}: {e}", seq + 1));
                break;
            }
        }
        if Instant::now() > deadline {
            errors.push("deadline passed while connecting".into());
            break;
        }
    }
    let sent = held.len() as u64;
    let mut line_bytes = None;
    let (mut size, mut last_growth) = (0u64, began);
    loop {
        std::thread::sleep(POLL);
        let now_size = std::fs::metadata(&r.output).map_or(0, |m| m.len());
        if now_size > size {
            size = now_size;
            last_growth = Instant::now();
        }
        if line_bytes.is_none() && size > 0 {
            line_bytes = first_line_bytes(&r.output);
        }
        if line_bytes.is_some_and(|l| size >= sent * l) || last_growth.elapsed() > QUIET {
            break;
        }
        if Instant::now() > deadline {
            errors.push(format!("not done within {RUN_DEADLINE:?}"));
            break;
        }
    }
    let cpu = r.cpu_secs() - cpu0;
    let rss = r.peak_rss_mib();
    drop(held);
    r.stop();
    let (found, duplicates) = count_seqs(&r.output, n).unwrap_or_else(|e| {
        errors.push(format!("reading {}: {e}", r.output.display()));
        (0, 0)
    });
    Outcome {
        kind,
        case: case.name,
        sent,
        found,
        duplicates,
        secs: last_growth.duration_since(began).as_secs_f64(),
        send_secs: 0.0,
        cpu_secs: cpu,
        rss_mib: rss,
        best_rate: None,
        sender_bound: false,
        errors,
    }
}

/// A file case (`file1`, `file100`): starts `kind` on empty files, appends one line numbered
/// past the run's to each and waits until all are in the output (so it follows every file),
/// then times `n` lines appended by one writer from the first write until the output last
/// grew. The floor is the writer alone ([`run_writer_only`]).
fn run_file(kind: Kind, case: &Case, files: usize, n: u64, peers: &Peers) -> Outcome {
    if kind == Kind::Floor {
        return run_writer_only(case, files, n);
    }
    let mut r = match Receiver::start(kind, case, peers) {
        Ok(r) => r,
        Err(e) => return failed(kind, case, n, e),
    };
    let paths = input_files(r.dir.path(), files);
    let warm = Share {
        first_seq: n,
        count: files as u64,
        deadline: Instant::now() + START_DEADLINE,
    };
    let (s, _) = loadgen::file_append(&paths, warm, 1, &Barrier::new(1));
    if let Some(e) = s.error {
        return failed(kind, case, n, format!("warm-up: {e}"));
    }
    let lines = |p: &Path| std::fs::read(p).map_or(0, |t| memchr::memchr_iter(b'\n', &t).count());
    let warmed = testkit::wait::until(
        START_DEADLINE,
        &format!("{} to read one line of each of {files} files", kind.name()),
        || (lines(&r.output) >= files).then_some(()),
    );
    if let Err(e) = warmed {
        return failed(kind, case, n, format!("{e}; {}", r.log()));
    }
    let line_bytes = first_line_bytes(&r.output);
    let mut errors = Vec::new();
    let cpu0 = r.cpu_secs();
    let start = Arc::new(Barrier::new(2));
    let deadline = Instant::now() + RUN_DEADLINE;
    let writer = {
        let start = Arc::clone(&start);
        let share = Share {
            first_seq: 0,
            count: n,
            deadline,
        };
        let paths = paths.clone();
        std::thread::spawn(move || loadgen::file_append(&paths, share, loadgen::FILE_BATCH, &start))
    };
    start.wait();
    let began = Instant::now();
    let (mut size, mut last_growth) = (0u64, began);
    let mut writer = Some(writer);
    let mut sent: Option<Sent> = None;
    loop {
        std::thread::sleep(POLL);
        let now_size = std::fs::metadata(&r.output).map_or(0, |m| m.len());
        if now_size > size {
            size = now_size;
            last_growth = Instant::now();
        }
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            let w = writer.take().expect("checked");
            sent = Some(w.join().map_or_else(
                |_| Sent {
                    error: Some("writer panicked".into()),
                    ..Sent::default()
                },
                |(s, _)| s,
            ));
        }
        if let Some(s) = &sent {
            if line_bytes.is_some_and(|l| size >= (s.messages + files as u64) * l) {
                break;
            }
            if last_growth.elapsed() > QUIET {
                break;
            }
        }
        if Instant::now() > deadline + QUIET {
            errors.push(format!("not done within {RUN_DEADLINE:?}"));
            break;
        }
    }
    let cpu = r.cpu_secs() - cpu0;
    let rss = r.peak_rss_mib();
    let sent = sent.unwrap_or_default();
    errors.extend(sent.error.clone());
    r.stop();
    let (found, duplicates) = count_seqs(&r.output, n).unwrap_or_else(|e| {
        errors.push(format!("reading {}: {e}", r.output.display()));
        (0, 0)
    });
    if found == 0 && errors.is_empty() {
        errors.push(format!("nothing written; {}: {}", kind.name(), r.log()));
    }
    Outcome {
        kind,
        case: case.name,
        sent: sent.messages,
        found,
        duplicates,
        secs: last_growth.duration_since(began).as_secs_f64(),
        send_secs: sent
            .finished
            .map_or(0.0, |f| f.duration_since(began).as_secs_f64()),
        cpu_secs: cpu,
        rss_mib: rss,
        best_rate: None,
        sender_bound: false,
        errors,
    }
}

/// The floor of a file case: the writer alone, no daemon. Its rate is lines written ÷ the
/// writer's time, its CPU the writer thread's own; the lines are counted back from the files.
fn run_writer_only(case: &Case, files: usize, n: u64) -> Outcome {
    let kind = Kind::Floor;
    let dir = match tempfile::Builder::new()
        .prefix("logwell-compare-writer-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return failed(kind, case, n, format!("temporary directory: {e}")),
    };
    if let Err(e) = std::fs::create_dir_all(dir.path().join("in")) {
        return failed(kind, case, n, e.to_string());
    }
    let paths = input_files(dir.path(), files);
    let share = Share {
        first_seq: 0,
        count: n,
        deadline: Instant::now() + RUN_DEADLINE,
    };
    let began = Instant::now();
    let (sent, cpu) = loadgen::file_append(&paths, share, loadgen::FILE_BATCH, &Barrier::new(1));
    let secs = sent
        .finished
        .map_or(0.0, |f| f.duration_since(began).as_secs_f64());
    let mut errors: Vec<String> = sent.error.clone().into_iter().collect();
    let (mut found, mut duplicates) = (0, 0);
    for p in &paths {
        match count_seqs(p, n) {
            Ok((f, d)) => {
                found += f;
                duplicates += d;
            }
            Err(e) => errors.push(format!("reading {}: {e}", p.display())),
        }
    }
    Outcome {
        kind,
        case: case.name,
        sent: sent.messages,
        found,
        duplicates,
        secs,
        send_secs: secs,
        cpu_secs: cpu,
        rss_mib: 0.0,
        best_rate: None,
        sender_bound: false,
        errors,
    }
}

/// Sender threads of a `udp_max` probe (`LOGWELL_COMPARE_UDP_SENDERS`, default 1), each on
/// its own socket at its share of the rate. One sender alone may top out below what the
/// faster receivers take without loss (its `sendmmsg` also runs the loopback delivery into
/// the receiver's socket); more reach higher rates, but on 2 CPUs they then starve every
/// receiver alike and its loss becomes a matter of scheduling (BENCHMARKS.md), so one is
/// the default.
fn udp_max_senders() -> usize {
    std::env::var("LOGWELL_COMPARE_UDP_SENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| (1..=16).contains(&n))
        .unwrap_or(1)
}

/// `udp_max`: geometric bisection between [`UDP_SEARCH_LOW`] and [`UDP_SEARCH_HIGH`] over
/// `opts.udp_steps` probes; the outcome is the best passing probe's, with its achieved send
/// rate as the rate.
fn udp_search(kind: Kind, case: &Case, peers: &Peers, opts: &Options) -> Outcome {
    let n = messages(case, opts);
    let high = std::env::var("LOGWELL_COMPARE_UDP_HIGH")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|&h| h > UDP_SEARCH_LOW)
        .unwrap_or(UDP_SEARCH_HIGH);
    let (mut low, mut high) = (UDP_SEARCH_LOW, high);
    let mut best: Option<Outcome> = None;
    let mut last: Option<Outcome> = None;
    for _ in 0..opts.udp_steps {
        let target = (low * high).sqrt();
        let mut o = run(kind, case, n, Some(target as u64), peers);
        let achieved = if o.send_secs > 0.0 {
            o.sent as f64 / o.send_secs
        } else {
            0.0
        };
        let ok = o.errors.is_empty() && (o.lost() as f64) < UDP_MAX_LOSS * o.sent as f64;
        println!(
            "    probe {:>9}/s: sent at {:>9}/s, lost {} ({:.3}%) {}",
            group(target),
            group(achieved),
            o.lost(),
            o.lost() as f64 * 100.0 / o.sent.max(1) as f64,
            if ok { "ok" } else { "over" }
        );
        if ok {
            o.best_rate = Some(achieved);
            if best.as_ref().is_none_or(|b| b.best_rate < o.best_rate) {
                best = Some(o);
            }
            // The sender could not go faster: no point probing higher.
            if achieved < 0.9 * target {
                if let Some(b) = best.as_mut() {
                    b.sender_bound = true;
                }
                break;
            }
            low = target;
        } else {
            high = target;
            last = Some(o);
        }
    }
    match best {
        // Every probe passed: the search's ceiling, not the receiver, ended it.
        Some(mut b) if last.is_none() => {
            b.sender_bound = true;
            b
        }
        Some(b) => b,
        None => {
            let mut o = last.unwrap_or_else(|| failed(kind, case, n, "no probe".into()));
            o.best_rate = Some(0.0);
            o.errors
                .push(format!("lost 0.1% or more even at {}/s", group(low)));
            o
        }
    }
}

/// Bytes of the first line of `path` (with its LF), once there is one.
fn first_line_bytes(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 4096];
    let n = f.read(&mut buf).ok()?;
    memchr::memchr(b'\n', &buf[..n]).map(|i| i as u64 + 1)
}

/// Distinct sequence numbers below `n` in the file, and how many were there more than once.
/// The first `seq=` of each line counts, whatever the line format around it (logwell's
/// `json` format writes a parsed JSON body's `seq=` twice: in `msg` and under `fields`).
fn count_seqs(path: &Path, n: u64) -> std::io::Result<(u64, u64)> {
    let data = std::fs::read(path).or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    })?;
    let mut seen = vec![false; n as usize];
    let (mut found, mut dups) = (0u64, 0u64);
    // Where the line of the last counted `seq=` ends.
    let mut line_end = 0;
    for at in memchr::memmem::find_iter(&data, loadgen::SEQ_TAG) {
        if at < line_end {
            continue;
        }
        let Some(seq) = loadgen::parse_seq(&data[at..]) else {
            continue;
        };
        line_end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i);
        if let Some(s) = seen.get_mut(seq as usize) {
            if *s {
                dups += 1;
            } else {
                *s = true;
                found += 1;
            }
        }
    }
    Ok((found, dups))
}

fn split(n: u64, parts: usize) -> Vec<(u64, u64)> {
    let parts = parts as u64;
    (0..parts)
        .map(|i| {
            let first = n * i / parts;
            (first, n * (i + 1) / parts - first)
        })
        .collect()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cpus} CPUs ({model}), {mem} RAM, Linux {}; load average {} at the start",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
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

/// Medians per case and receiver.
struct Med {
    runs: usize,
    rate: f64,
    lost: f64,
    sent: f64,
    cpu: f64,
    rss: f64,
    errors: usize,
    /// Most runs' `udp_max` were bound by the sender: the median is a lower bound.
    sender_bound: bool,
}

fn medians(results: &[Outcome]) -> BTreeMap<(&'static str, Kind), Med> {
    let mut by: BTreeMap<(&'static str, Kind), Vec<&Outcome>> = BTreeMap::new();
    for o in results {
        by.entry((o.case, o.kind)).or_default().push(o);
    }
    by.into_iter()
        .map(|(k, os)| {
            let m = |f: &dyn Fn(&Outcome) -> f64| median(os.iter().map(|o| f(o)).collect());
            (
                k,
                Med {
                    runs: os.len(),
                    rate: m(&|o| o.rate()),
                    lost: m(&|o| o.lost() as f64),
                    sent: m(&|o| o.sent as f64),
                    cpu: m(&|o| o.cpu_per_million()),
                    rss: m(&|o| o.rss_mib),
                    errors: os.iter().filter(|o| !o.errors.is_empty()).count(),
                    sender_bound: os.iter().filter(|o| o.sender_bound).count() * 2 > os.len(),
                },
            )
        })
        .collect()
}

fn table(results: &[Outcome], opts: &Options) -> String {
    let meds = medians(results);
    let mut out = format!(
        "Medians of {} interleaved round(s); msg/s = messages in the file / (first send .. file last grew);\n\
         udp_max = highest achieved send rate with < 0.1% loss (≥: no probe failed, the sender or the search's ceiling was the limit); loss = sent - distinct messages in the file.\n",
        opts.rounds
    );
    let header = [
        "case",
        "daemon",
        "runs",
        "msg/s",
        "loss",
        "loss %",
        "CPU s/M",
        "RSS MiB",
        "logwell ×",
        "CPU ÷ logwell",
        "errors",
    ];
    let mut rows = Vec::new();
    for case in &opts.cases {
        let lw = meds.get(&(case.name, Kind::Logwell));
        for &kind in &opts.kinds {
            let Some(m) = meds.get(&(case.name, kind)) else {
                continue;
            };
            let (ratio, cpu_ratio) = match (lw, kind) {
                (Some(l), k) if k != Kind::Logwell && m.rate > 0.0 && l.cpu > 0.0 => (
                    if k == Kind::Floor {
                        format!("{:.0}% of", l.rate / m.rate * 100.0)
                    } else {
                        format!("{:.2}", l.rate / m.rate)
                    },
                    format!("{:.2}", m.cpu / l.cpu),
                ),
                _ => ("-".into(), "-".into()),
            };
            rows.push(vec![
                case.name.to_string(),
                kind.name().to_string(),
                m.runs.to_string(),
                rate_cell(m),
                group(m.lost),
                format!("{:.3}", m.lost * 100.0 / m.sent.max(1.0)),
                format!("{:.2}", m.cpu),
                format!("{:.1}", m.rss),
                ratio,
                cpu_ratio,
                m.errors.to_string(),
            ]);
        }
    }
    out.push_str(&columns(&header, &rows));
    out.push_str(
        "logwell × = logwell's msg/s ÷ this daemon's (for the floor: logwell's share of it);\n\
         CPU ÷ logwell = this daemon's CPU s per million ÷ logwell's.\n",
    );
    // The wide summary: one line per case.
    let names: Vec<&str> = opts.kinds.iter().map(|k| k.name()).collect();
    let mut header2: Vec<String> = vec!["case".into()];
    header2.extend(names.iter().map(|n| format!("{n} msg/s")));
    let h2: Vec<&str> = header2.iter().map(String::as_str).collect();
    let mut rows2 = Vec::new();
    for case in &opts.cases {
        let mut row = vec![case.name.to_string()];
        for &kind in &opts.kinds {
            row.push(meds.get(&(case.name, kind)).map_or("-".into(), rate_cell));
        }
        rows2.push(row);
    }
    out.push('\n');
    out.push_str(&columns(&h2, &rows2));
    out
}

/// The issue's targets, from the medians of this run.
fn verdict(results: &[Outcome], opts: &Options) -> String {
    let meds = medians(results);
    let get = |case: &str, kind: Kind| {
        opts.cases
            .iter()
            .find(|c| c.name == case)
            .and_then(|c| meds.get(&(c.name, kind)))
    };
    let mark = |ok: bool| if ok { "ok" } else { "MISS" }.to_string();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |case: &str, what: String, target: &str, verdict: String| {
        rows.push(vec![case.to_string(), what, target.to_string(), verdict]);
    };
    for case in ["tcp1", "tcp10"] {
        if let (Some(l), Some(r)) = (get(case, Kind::Logwell), get(case, Kind::Rsyslog)) {
            let x = l.rate / r.rate.max(1.0);
            row(
                case,
                format!("logwell {x:.2}× rsyslog"),
                "≥ 1.5×",
                mark(x >= 1.5),
            );
            row(
                case,
                format!("logwell lost {}", group(l.lost)),
                "0",
                mark(l.lost == 0.0),
            );
        }
        if let (Some(l), Some(f)) = (get(case, Kind::Logwell), get(case, Kind::Floor)) {
            let x = l.rate / f.rate.max(1.0);
            row(
                case,
                format!("logwell {:.0}% of the floor", x * 100.0),
                "≥ 75%",
                mark(x >= 0.75),
            );
        }
    }
    if let Some(l) = get("udp_defaults", Kind::Logwell) {
        row(
            "udp_defaults",
            format!("logwell lost {}", group(l.lost)),
            "0",
            mark(l.lost == 0.0),
        );
    }
    for case in ["udp_max", "udp_defaults_max", "unix"] {
        if let (Some(l), Some(r)) = (get(case, Kind::Logwell), get(case, Kind::Rsyslog)) {
            let x = l.rate / r.rate.max(1.0);
            // logwell's figure is a lower bound when the sender was its limit: that can
            // only prove the target, not miss it.
            let verdict = if x >= 2.0 {
                mark(true)
            } else if l.sender_bound {
                "undecided: logwell lost nothing at any probe".to_string()
            } else {
                mark(false)
            };
            row(case, format!("logwell {x:.2}× rsyslog"), "≥ 2×", verdict);
        }
    }
    // Issue 29: RELP messages/s at least twice rsyslog's imrelp.
    for case in opts
        .cases
        .iter()
        .filter(|c| matches!(c.load, Load::Relp { .. }))
    {
        if let (Some(l), Some(r)) = (get(case.name, Kind::Logwell), get(case.name, Kind::Rsyslog)) {
            let x = l.rate / r.rate.max(1.0);
            row(
                case.name,
                format!("logwell {x:.2}× rsyslog imrelp"),
                "≥ 2×",
                mark(x >= 2.0),
            );
            row(
                case.name,
                format!("logwell lost {}", group(l.lost)),
                "0",
                mark(l.lost == 0.0),
            );
        }
    }
    // Issue 27: JSON bodies parsed at three times rsyslog's mmjsonparse (and at half its CPU
    // per message: the CPU rows below).
    for case in opts.cases.iter().filter(|c| json(c)) {
        if let (Some(l), Some(r)) = (get(case.name, Kind::Logwell), get(case.name, Kind::Rsyslog)) {
            let x = l.rate / r.rate.max(1.0);
            row(
                case.name,
                format!("logwell {x:.2}× rsyslog mmjsonparse"),
                "≥ 3×",
                mark(x >= 3.0),
            );
            row(
                case.name,
                format!("logwell lost {}", group(l.lost)),
                "0",
                mark(l.lost == 0.0),
            );
        }
    }
    // Issue 26: files read at three times the faster of rsyslog imfile and syslog-ng
    // wildcard-file(), at no more than half its CPU per line.
    for case in opts
        .cases
        .iter()
        .filter(|c| matches!(c.load, Load::File { .. }))
    {
        let faster = [Kind::Rsyslog, Kind::SyslogNg, Kind::SyslogNgTuned]
            .into_iter()
            .filter_map(|k| get(case.name, k).map(|m| (k, m)))
            .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate));
        if let (Some(l), Some((k, p))) = (get(case.name, Kind::Logwell), faster) {
            let x = l.rate / p.rate.max(1.0);
            row(
                case.name,
                format!("logwell {x:.2}× {} (the faster peer)", k.name()),
                "≥ 3×",
                mark(x >= 3.0),
            );
            let c = l.cpu / p.cpu.max(1e-9);
            row(
                case.name,
                format!("CPU s/M {:.2}, {} {:.2}: {c:.2}×", l.cpu, k.name(), p.cpu),
                "≤ 0.5×",
                mark(c <= 0.5),
            );
        }
        if let Some(l) = get(case.name, Kind::Logwell) {
            row(
                case.name,
                format!("logwell lost {}", group(l.lost)),
                "0",
                mark(l.lost == 0.0),
            );
        }
    }
    for case in &opts.cases {
        if matches!(case.load, Load::Idle { .. } | Load::File { .. }) {
            continue;
        }
        if let (Some(l), Some(r)) = (get(case.name, Kind::Logwell), get(case.name, Kind::Rsyslog)) {
            let x = l.cpu / r.cpu.max(1e-9);
            row(
                case.name,
                format!("CPU s/M {:.2}, rsyslog {:.2}: {x:.2}×", l.cpu, r.cpu),
                "≤ 0.5×",
                mark(x <= 0.5),
            );
        }
    }
    for case in &opts.cases {
        if let Some(l) = get(case.name, Kind::Logwell) {
            let (limit, target) = if matches!(case.load, Load::Idle { .. }) {
                (64.0, "< 64 MiB")
            } else {
                (32.0, "< 32 MiB")
            };
            row(
                case.name,
                format!("peak RSS {:.1} MiB", l.rss),
                target,
                mark(l.rss < limit),
            );
        }
    }
    format!(
        "Targets (issue 8; RELP: issue 29; JSON: issue 27; files: issue 26), from the medians above:\n{}",
        columns(&["case", "logwell", "target", "verdict"], &rows)
    )
}

/// A median rate; `≥` when the receiver's limit was not found (`udp_max`).
fn rate_cell(m: &Med) -> String {
    if m.sender_bound {
        format!("≥{}", group(m.rate))
    } else {
        group(m.rate)
    }
}

fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            if i < 2 {
                let _ = write!(out, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{c}", " ".repeat(pad));
            }
            out.push_str(if i + 1 < cells.len() { "  " } else { "\n" });
        }
    };
    line(
        &mut out,
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    line(
        &mut out,
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    );
    for r in rows {
        line(&mut out, r);
    }
    out
}

fn group(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
