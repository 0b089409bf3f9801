//! End-to-end load benchmark: the real `logwelld` (release build), fed by a load generator
//! in this process, measured from the first message sent until the last one is in the file.
//!
//! Run it with `cargo bench --bench e2e` (every case), or name cases:
//! `cargo bench --bench e2e -- tcp1 udp`. `--quick` sends a tenth of the messages, `--list`
//! shows the cases, `--rounds N` runs the named cases N times interleaved (a, b, a, b, …) and
//! adds a table of medians. Environment:
//! - `LOGWELL_BENCH_MESSAGES=N`: messages per case (default 1,000,000 for TCP, 500,000 for
//!   datagrams);
//! - `LOGWELL_BENCH_UDP_RATE=N`: messages per second of the `udp_paced` case (default 100,000);
//! - `LOGWELL_BENCH_TRICKLE_RATE=N`: messages per second of the `unix_trickle` case (default
//!   10,000; one `send` each, the sender sleeps between them);
//! - `LOGWELL_BENCH_UDP_GSO=1`: the UDP cases send with segmentation offload (`UDP_SEGMENT`,
//!   64 messages a `send`, arriving in bursts of 64);
//! - `LOGWELL_BENCH_LOGWELLD=PATH`: run this `logwelld` instead of the one Cargo built (an
//!   earlier build copied aside, to measure before and after a change in turn);
//! - `LOGWELL_BENCH_AGAINST=PATH`: also run every case with this `logwelld` (an earlier
//!   build copied aside), right after the build under test in each round; its rows are
//!   marked with the file's name (`tcp1 [logwelld-base]`), and with `--rounds` the medians
//!   of the two stand side by side. This is the before-and-after measure: both builds meet
//!   the same spells of the machine;
//! - `LOGWELL_BENCH_PERF=DIR`: record each case's daemon with `perf record -g` (at
//!   `LOGWELL_BENCH_PERF_FREQ` samples per second, default 1999) into
//!   `DIR/perf-CASE.data` (the figures of such a run include perf's own cost).
//!
//! Each case starts a fresh daemon (so its peak RSS is the case's own) on a temporary config:
//! a TCP and a UDP input on one free 127.0.0.1 port, a Unix datagram socket and one rfc3339
//! file output in a temporary directory, default flush settings. Messages are 200 bytes
//! (`<13>Nov 21 09:41:03 benchhost bench[1234]: seq=NNNNNNNNNN ...`), newline-framed on
//! TCP. Per case it prints:
//! - msg/s end to end: messages in the file ÷ time from the first send until the daemon's
//!   `outputs.out.written` counter (lines handed to `write(2)`) reached them all; "99%" is the
//!   same rate up to 99% of them, which leaves out the last partial buffer's wait for the
//!   flush interval (1 s by default);
//! - loss: sent − written, and the daemon's own `dropped` counter (kernel drops it read from the
//!   socket, `SO_MEMINFO`); after the daemon stopped, the file is read back and every sequence
//!   number checked, so loss and duplicates are counted from the file itself;
//! - CPU seconds per million messages: the daemon's utime + stime (`/proc/PID/stat`) over the
//!   case; also the generator's own CPU, since both share the machine;
//! - peak RSS: `VmHWM` from `/proc/PID/status`.
//!
//! Rotation cases (`tcp1_rot`: zstd, `tcp1_rot_gzip`: gzip, `tcp1_rot_none`: no compression)
//! are `tcp1` with `[output.out.rotation] max_size = "10M"`: same messages, same measure (end
//! to end = the last message written, as counted by `written`; compression may still run then).
//! They also report:
//! - when every rotated generation was compressed (no `FILE.N` left uncompressed, no
//!   `.FILE.INODE.zst.tmp` temporary, and the live file below `max_size`), polled after the
//!   last message was written; the daemon is stopped only then;
//! - the CPU seconds of the daemon's `compress` thread until then (`/proc/PID/task/*/stat` for
//!   the name, `schedstat` for nanoseconds);
//! - per compression: input bytes (the generations decompressed), output bytes (on disk),
//!   ratio, CPU seconds per GB; the ratios are optimistic: the messages differ only in their
//!   sequence number;
//! - the rate against `tcp1` of the same run (medians with `--rounds`); the target is less
//!   than [`TARGET_ROTATION_COST`] lower.
//!
//! The read-back reads every generation, oldest first (`FILE.N.zst` with `zstd`, `FILE.N.gz`
//! with `flate2`'s `MultiGzDecoder`, `FILE.N` as is), then the live file, checks each sequence
//! number once, and for rotation cases that they come in order across the generations.
//!
//! Cases of other inputs (same output, same measure and read-back):
//! - `forwarded`: `unix` with messages as journald forwards them to
//!   `/run/systemd/journal/syslog`: `<30>Nov 21 09:41:03 bench[1234]: …`, no host name;
//! - `journal` (root only; prints `journal case skipped: …` otherwise): a `systemd-journald
//!   NAMESPACE` of its own (as `tests/it/journal.rs`), pre-filled with the messages as native
//!   datagrams (`MESSAGE=seq=NNNNNNNNNN …`, `SYSLOG_IDENTIFIER=bench`, `PRIORITY=6`); once
//!   `journalctl` shows them all, `logwelld` starts with `[input.journal]` (`namespace`,
//!   `from = "head"`, `identifiers = ["bench"]`, `state_dir` in the temporary directory), and
//!   the clock runs from the daemon's start until `written` reaches the count (entries/s).
//!   journald is stopped by its PID and its files removed afterwards;
//! - `tls1`, `tls10`: a TLS input (`client_auth` none) with a CA and server certificate made by
//!   `openssl` in the temporary directory; a rustls client (ring, no resumption) per
//!   connection in this process, handshake done before the clock starts, the `tcp1` buffers
//!   newline-framed;
//! - `tls_handshakes`: N connections (default 2,000) from [`TLS_HANDSHAKE_THREADS`] threads,
//!   each a full handshake, one message, `close_notify` and the wait for the daemon's close:
//!   handshakes per second (at the clients, and until the daemon wrote the last message) and
//!   the daemon's CPU seconds per 1,000 handshakes.
//!
//! Templated paths (issue: per-host files):
//! - `tcp1_hosts`: `tcp1`, but the messages rotate over 1,000 host names (`h00000000` …, in
//!   turn, so consecutive messages go to different files: the worst case for gathering) and
//!   the output's path is `out/{host}.log` with `max_open_files = 1024`, so every file stays
//!   open; `tcp1_hosts_lru`: the same with the default `max_open_files = 256`, so nearly
//!   every message closes one file and opens another. The read-back reads every file of
//!   `out/`; order is checked per file. The summary compares their rates with `tcp1` of the
//!   same run.
//!
//! Every wait is bounded: a case gives up after [`CASE_DEADLINE`]. The daemons are children of
//! this process and are stopped by their PID (SIGTERM, then SIGKILL after [`STOP_DEADLINE`]).

mod loadgen;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen::{Sent, Share};
use testkit::child::Proc;
use testkit::journald::Journald;
use testkit::pki;
use testkit::ports::free_port;

/// The daemon under test: the one Cargo built with the bench (release-based) profile, or
/// `LOGWELL_BENCH_LOGWELLD=PATH` (an earlier build kept aside, to compare before and after).
fn logwelld() -> String {
    std::env::var("LOGWELL_BENCH_LOGWELLD")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_logwelld").to_string())
}

/// A `logwelld` build the cases run with: the one under test, or the one it is compared
/// against (`LOGWELL_BENCH_AGAINST`).
#[derive(Clone, Debug)]
struct Build {
    path: String,
    /// The compared build's file name, which marks its rows (`tcp1 [logwelld-base]`); `None`
    /// for the build under test, whose rows keep the case's name so that the targets read
    /// them.
    against: Option<String>,
}

impl Build {
    /// The name of `case`'s rows for this build.
    fn case_name(&self, case: &str) -> String {
        match &self.against {
            None => case.to_string(),
            Some(name) => format!("{case} [{name}]"),
        }
    }

    /// The `perf` data file of `case` for this build (`perf-tcp1-logwelld-base.data`).
    fn perf_name(&self, case: &str) -> String {
        match &self.against {
            None => case.to_string(),
            Some(name) => format!("{case}-{name}"),
        }
    }
}

/// The builds to run: the one under test, then `LOGWELL_BENCH_AGAINST=PATH` if set. Every
/// case of every round runs with each in turn, so that the two meet the same spells of the
/// machine and their medians can be compared (a before-and-after measure: on these shared
/// CPUs, separate runs minutes apart differ by more than most changes do).
fn builds() -> Vec<Build> {
    let mut builds = vec![Build {
        path: logwelld(),
        against: None,
    }];
    if let Some(path) = std::env::var_os("LOGWELL_BENCH_AGAINST") {
        let path = path.to_string_lossy().into_owned();
        let name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone());
        builds.push(Build {
            path,
            against: Some(name),
        });
    }
    builds
}

/// Longest a case may run, from the first message sent.
const CASE_DEADLINE: Duration = Duration::from_secs(120);
/// Longest the daemon may take to answer on its control socket after starting.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Longest the daemon may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// How often the counters are read while a case runs.
const POLL: Duration = Duration::from_millis(10);
/// After the senders finish, a case ends once the counters stayed still this long (longer
/// than the default flush interval of 1 s).
const QUIET: Duration = Duration::from_millis(2500);

/// The first targets (ROADMAP): one TCP connection, no loss.
const TARGET_MSGS_PER_SEC: f64 = 500_000.0;
const TARGET_CPU_SECS_PER_MILLION: f64 = 2.0;
const TARGET_RSS_MIB: f64 = 32.0;

/// How a case sends.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// Newline-framed over this many TCP connections, one thread each.
    Tcp { connections: usize },
    /// Newline-framed over one TCP connection, host names taken in turn from `hosts`, into
    /// a templated path `out/{host}.log` with this `max_open_files`.
    TcpHosts { hosts: u64, max_open_files: usize },
    /// UDP datagrams, paced to the rate when given.
    Udp { paced: bool },
    /// Datagrams on the Unix datagram socket.
    UnixDgram,
    /// Datagrams on the Unix datagram socket one at a time, paced by sleeping.
    UnixTrickle,
    /// Datagrams on the Unix datagram socket as journald forwards them: no host name.
    Forwarded,
    /// A journal input reading a namespace's journal from the head, pre-filled with the
    /// messages before the daemon starts (timed from the daemon's start).
    Journal,
    /// Newline-framed over this many TLS connections (rustls), one thread each.
    Tls { connections: usize },
    /// One connection per message (full handshake, one message, close), from this many
    /// threads: handshakes per second.
    TlsHandshakes { threads: usize },
}

impl Load {
    /// The input the case sends to.
    fn input(self) -> &'static str {
        match self {
            Load::Tcp { .. } | Load::TcpHosts { .. } => "tcp",
            Load::Udp { .. } => "udp",
            Load::UnixDgram | Load::UnixTrickle | Load::Forwarded => "unix",
            Load::Journal => "journal",
            Load::Tls { .. } | Load::TlsHandshakes { .. } => "tls",
        }
    }
}

/// Size rotation of the output file: `[output.out.rotation]` with `max_size =`
/// [`ROTATE_MAX_SIZE`], `compress =` this, `compress_level =` the level when given (else the
/// daemon's default: zstd 3, gzip 6).
#[derive(Clone, Copy, Debug)]
struct Rotation {
    compress: Packing,
    level: Option<i32>,
    delay_compress: bool,
}

/// How a rotated generation is compressed (by its file name: `.zst`, `.gz`, or neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Packing {
    None,
    Zstd,
    Gzip,
}

impl Packing {
    /// The value of `compress =` in the config.
    fn name(self) -> &'static str {
        match self {
            Packing::None => "none",
            Packing::Zstd => "zstd",
            Packing::Gzip => "gzip",
        }
    }
}

impl Rotation {
    /// The level the daemon uses.
    fn level(&self) -> Option<i32> {
        match self.compress {
            Packing::None => None,
            Packing::Zstd => Some(self.level.unwrap_or(3)),
            Packing::Gzip => Some(self.level.unwrap_or(6)),
        }
    }
}

/// The `max_size` of the rotation cases, as written in the config, and in bytes.
const ROTATE_MAX_SIZE: &str = "10M";
const ROTATE_MAX_BYTES: u64 = 10 << 20;
/// The rotation cost the issue allows: rotating every 10 MiB under TCP load may lower the
/// end-to-end rate by less than this, compared with `tcp1` in the same run.
const TARGET_ROTATION_COST: f64 = 0.05;
/// Longest to wait, after the last message was written, for every rotated generation to be
/// compressed.
const COMPRESS_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    load: Load,
    default_messages: u64,
    about: &'static str,
    /// Size rotation of the output, if any.
    rotation: Option<Rotation>,
}

const CASES: &[Case] = &[
    Case {
        name: "tcp1",
        load: Load::Tcp { connections: 1 },
        default_messages: 1_000_000,
        about: "one TCP connection, 1.6 MiB writes",
        rotation: None,
    },
    Case {
        name: "tcp1_rot",
        load: Load::Tcp { connections: 1 },
        default_messages: 1_000_000,
        about: "tcp1, rotating every 10 MiB, compress = \"zstd\" (level 3)",
        rotation: Some(Rotation {
            compress: Packing::Zstd,
            level: None,
            delay_compress: false,
        }),
    },
    Case {
        name: "tcp1_rot_none",
        load: Load::Tcp { connections: 1 },
        default_messages: 1_000_000,
        about: "tcp1, rotating every 10 MiB, compress = \"none\"",
        rotation: Some(Rotation {
            compress: Packing::None,
            level: None,
            delay_compress: false,
        }),
    },
    Case {
        name: "tcp1_rot_gzip",
        load: Load::Tcp { connections: 1 },
        default_messages: 1_000_000,
        about: "tcp1, rotating every 10 MiB, compress = \"gzip\" (level 6)",
        rotation: Some(Rotation {
            compress: Packing::Gzip,
            level: None,
            delay_compress: false,
        }),
    },
    Case {
        name: "tcp1_hosts",
        load: Load::TcpHosts {
            hosts: 1000,
            max_open_files: 1024,
        },
        default_messages: 1_000_000,
        about: "tcp1, 1,000 host names in turn into out/{host}.log, max_open_files = 1024",
        rotation: None,
    },
    Case {
        name: "tcp1_hosts_lru",
        load: Load::TcpHosts {
            hosts: 1000,
            max_open_files: 256,
        },
        default_messages: 1_000_000,
        about: "tcp1_hosts with max_open_files = 256: a file closed and opened per message",
        rotation: None,
    },
    Case {
        name: "tcp10",
        load: Load::Tcp { connections: 10 },
        default_messages: 1_000_000,
        about: "ten TCP connections, one sender thread each",
        rotation: None,
    },
    Case {
        name: "udp",
        load: Load::Udp { paced: false },
        default_messages: 500_000,
        about: "UDP, sendmmsg ×64 unpaced, receive_buffer_bytes = 8 MiB",
        rotation: None,
    },
    Case {
        name: "udp_paced",
        load: Load::Udp { paced: true },
        default_messages: 500_000,
        about: "UDP paced at LOGWELL_BENCH_UDP_RATE (default 100,000/s)",
        rotation: None,
    },
    Case {
        name: "unix",
        load: Load::UnixDgram,
        default_messages: 500_000,
        about: "Unix datagram socket, sendmmsg ×64 (blocking: no loss expected)",
        rotation: None,
    },
    Case {
        name: "unix_trickle",
        load: Load::UnixTrickle,
        default_messages: 50_000,
        about: "unix, one datagram per send at LOGWELL_BENCH_TRICKLE_RATE (default 10,000/s), sleeping between",
        rotation: None,
    },
    Case {
        name: "forwarded",
        load: Load::Forwarded,
        default_messages: 500_000,
        about: "unix, as journald forwards: `<30>Nov 21 09:41:03 bench[1234]: …`, no host name",
        rotation: None,
    },
    Case {
        name: "journal",
        load: Load::Journal,
        default_messages: 200_000,
        about: "journal input, namespace pre-filled by native datagrams, from = \"head\" (root)",
        rotation: None,
    },
    Case {
        name: "tls1",
        load: Load::Tls { connections: 1 },
        default_messages: 1_000_000,
        about: "one TLS connection (rustls client, TLS 1.3), 1.6 MiB writes",
        rotation: None,
    },
    Case {
        name: "tls10",
        load: Load::Tls { connections: 10 },
        default_messages: 1_000_000,
        about: "ten TLS connections, one sender thread each",
        rotation: None,
    },
    Case {
        name: "tls_handshakes",
        load: Load::TlsHandshakes {
            threads: TLS_HANDSHAKE_THREADS,
        },
        default_messages: 2_000,
        about: "connections of one message each: full TLS 1.3 handshake, 4 threads, no resumption",
        rotation: None,
    },
];

/// Client threads of the `tls_handshakes` case.
const TLS_HANDSHAKE_THREADS: usize = 4;
/// In the `journal` case: longest journald may take to store the pre-filled entries.
const JOURNAL_FILL_DEADLINE: Duration = Duration::from_secs(180);
/// In the `journal` case, nothing is sent while the clock runs: the case ends when `written`
/// reached the count, or nothing moved for this long.
const JOURNAL_QUIET: Duration = Duration::from_secs(10);

/// What the command line and environment asked for.
struct Options {
    cases: Vec<Case>,
    messages: Option<u64>,
    quick: bool,
    udp_rate: u64,
    /// Messages per second of the `unix_trickle` case.
    trickle_rate: u64,
    perf_dir: Option<PathBuf>,
    /// How many times the list of cases runs, interleaved (`--rounds N`).
    rounds: usize,
    /// The builds each case runs with, in turn ([`builds`]).
    builds: Vec<Build>,
}

fn main() {
    let opts = match options() {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            eprintln!("e2e: {e}");
            std::process::exit(2);
        }
    };
    loadgen::self_check();
    print!("{}", machine(&opts.builds));
    if cfg!(debug_assertions) {
        println!("WARNING: this is a debug build; run `cargo bench --bench e2e` for real figures");
    }
    let mut outcomes = Vec::new();
    // Rounds interleave the cases (a, b, a, b, …) so that a slow spell of the machine does not
    // fall on one case only.
    for round in 1..=opts.rounds {
        for case in &opts.cases {
            let n = opts.messages.unwrap_or(if opts.quick {
                case.default_messages / 10
            } else {
                case.default_messages
            });
            let of = if opts.rounds > 1 {
                format!(", round {round} of {}", opts.rounds)
            } else {
                String::new()
            };
            for build in &opts.builds {
                println!(
                    "\n== {} ({}): {} messages{of}",
                    build.case_name(case.name),
                    case.about,
                    group(n)
                );
                let mut o = run_case(case, n, &opts, build);
                if let Some(why) = &o.skipped {
                    println!("{} case skipped: {why}", case.name);
                    continue;
                }
                o.round = round;
                print!("{}", o.describe());
                outcomes.push(o);
            }
        }
    }
    println!("\n{}", table(&outcomes, opts.rounds > 1));
    if opts.rounds > 1 {
        println!("{}", median_table(&outcomes, opts.rounds));
    }
    if let Some(t) = compression_table(&outcomes, opts.rounds > 1) {
        println!("{t}");
    }
    print!("{}", verdict(&outcomes));
    print!("{}", hosts_verdict(&outcomes));
    if outcomes.iter().any(|o| !o.errors.is_empty()) {
        std::process::exit(1);
    }
}

fn options() -> Result<Option<Options>, String> {
    let mut cases = Vec::new();
    let mut quick = false;
    let mut rounds = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let rounds_arg = if arg == "--rounds" {
            Some(args.next().unwrap_or_default())
        } else {
            arg.strip_prefix("--rounds=").map(str::to_string)
        };
        if let Some(r) = rounds_arg {
            rounds = r
                .parse()
                .ok()
                .filter(|r| (1..=100).contains(r))
                .ok_or_else(|| format!("--rounds {r}: give a number from 1 to 100"))?;
            continue;
        }
        match arg.as_str() {
            // `cargo bench` passes `--bench`; other libtest flags mean nothing here.
            "--bench" => {}
            "--quick" => quick = true,
            "--list" => {
                for c in CASES {
                    println!(
                        "{:<14} {:>9}  {}",
                        c.name,
                        group(c.default_messages),
                        c.about
                    );
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!(
                    "usage: cargo bench --bench e2e -- [--quick] [--list] [--rounds N] [all | CASE...]\n\
                     env: LOGWELL_BENCH_MESSAGES, LOGWELL_BENCH_UDP_RATE, LOGWELL_BENCH_TRICKLE_RATE, LOGWELL_BENCH_PERF=DIR, LOGWELL_BENCH_LOGWELLD=PATH, LOGWELL_BENCH_AGAINST=PATH"
                );
                return Ok(None);
            }
            "all" => cases.extend_from_slice(CASES),
            a if a.starts_with('-') => eprintln!("e2e: ignoring option {a}"),
            name => match CASES.iter().find(|c| c.name == name) {
                Some(c) => cases.push(*c),
                None => {
                    let names: Vec<_> = CASES.iter().map(|c| c.name).collect();
                    return Err(format!(
                        "no case `{name}`; the cases are {}",
                        names.join(", ")
                    ));
                }
            },
        }
    }
    if cases.is_empty() {
        cases.extend_from_slice(CASES);
    }
    let number = |var: &str| -> Result<Option<u64>, String> {
        match std::env::var(var) {
            Err(_) => Ok(None),
            Ok(v) => v
                .replace(['_', ','], "")
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{var}={v} is not a positive number")),
        }
    };
    Ok(Some(Options {
        cases,
        messages: number("LOGWELL_BENCH_MESSAGES")?,
        quick,
        udp_rate: number("LOGWELL_BENCH_UDP_RATE")?.unwrap_or(100_000),
        trickle_rate: number("LOGWELL_BENCH_TRICKLE_RATE")?.unwrap_or(10_000),
        perf_dir: std::env::var_os("LOGWELL_BENCH_PERF").map(PathBuf::from),
        rounds,
        builds: builds(),
    }))
}

/// The result of one case.
#[derive(Default)]
struct Outcome {
    case: String,
    messages: u64,
    sent: u64,
    /// `outputs.out.written` when the case ended.
    written: u64,
    received: u64,
    /// The input's `dropped` counter.
    dropped: u64,
    /// From reading the file back after the daemon stopped.
    file: Option<FileCheck>,
    send_secs: f64,
    e2e_secs: f64,
    p99_secs: f64,
    cpu_secs: f64,
    generator_cpu_secs: f64,
    /// The daemon's CPU seconds by thread name.
    threads: Vec<(String, f64)>,
    peak_rss_kib: u64,
    timed_out: bool,
    errors: Vec<String>,
    /// 1-based, with `--rounds`.
    round: usize,
    /// What rotation and compression did, for the rotation cases.
    rotation: Option<RotationOutcome>,
    /// Why the case did not run (the journal case without root).
    skipped: Option<String>,
    /// Lines of the case's own (printed under the figures).
    notes: Vec<String>,
    /// One connection per message (`tls_handshakes`) or one wake-up per message
    /// (`unix_trickle`): the per-message CPU target means nothing there.
    no_cpu_target: bool,
}

/// The rotation side of a case.
struct RotationOutcome {
    settings: Rotation,
    /// Seconds from the first send until no rotated generation was left uncompressed (none
    /// for `compress = "none"`, or when the wait gave up).
    compressed_secs: Option<f64>,
    /// The `compress` thread's CPU seconds, from the start of the case until every generation
    /// was compressed (it keeps working after the last message is written).
    compress_cpu_secs: f64,
    /// The daemon's CPU seconds over the same span (all threads).
    cpu_until_compressed_secs: f64,
}

impl RotationOutcome {
    /// Seconds from the last message written until every generation was compressed.
    fn after_e2e(&self, e2e_secs: f64) -> Option<f64> {
        self.compressed_secs.map(|c| (c - e2e_secs).max(0.0))
    }
}

impl Outcome {
    fn lost(&self) -> i64 {
        self.sent as i64 - self.written as i64
    }
    fn rate(&self) -> f64 {
        per_sec(self.written, self.e2e_secs)
    }
    fn rate_99(&self) -> f64 {
        per_sec((self.written as f64 * 0.99).ceil() as u64, self.p99_secs)
    }
    fn cpu_per_million(&self) -> f64 {
        if self.written == 0 {
            return f64::NAN;
        }
        self.cpu_secs * 1e6 / self.written as f64
    }
    fn rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
    fn cpu_rss_ok(&self) -> bool {
        self.cpu_per_million() < TARGET_CPU_SECS_PER_MILLION && self.rss_mib() < TARGET_RSS_MIB
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "   sent {} in {:.3} s; {} written after {:.3} s: {} msg/s end to end ({} msg/s to 99%)",
            group(self.sent),
            self.send_secs,
            group(self.written),
            self.e2e_secs,
            group(self.rate() as u64),
            group(self.rate_99() as u64),
        );
        let _ = writeln!(
            s,
            "   received {}, lost {} (daemon dropped {}); daemon CPU {:.2} s ({:.2} s per million), \
             generator CPU {:.2} s; peak RSS {:.1} MiB",
            group(self.received),
            self.lost(),
            group(self.dropped),
            self.cpu_secs,
            self.cpu_per_million(),
            self.generator_cpu_secs,
            self.rss_mib(),
        );
        if !self.threads.is_empty() {
            let split: Vec<String> = self
                .threads
                .iter()
                .map(|(name, secs)| format!("{name} {secs:.2} s"))
                .collect();
            let _ = writeln!(s, "   daemon CPU by thread: {}", split.join(", "));
        }
        if let Some(r) = &self.rotation {
            match (r.settings.compress, r.compressed_secs) {
                (Packing::None, _) => {}
                (_, Some(c)) => {
                    let _ = writeln!(
                        s,
                        "   compression: every rotated generation compressed after {c:.3} s \
                         ({:.3} s after the last message was written); compress thread CPU \
                         {:.2} s; daemon CPU until then {:.2} s",
                        r.after_e2e(self.e2e_secs).unwrap_or(0.0),
                        r.compress_cpu_secs,
                        r.cpu_until_compressed_secs,
                    );
                }
                (_, None) => {
                    let _ = writeln!(
                        s,
                        "   compression: NOT finished {} s after the last message was written",
                        COMPRESS_DEADLINE.as_secs()
                    );
                }
            }
        }
        if let Some(f) = &self.file {
            let _ = writeln!(
                s,
                "   file: {} lines, {} distinct sequence numbers, {} missing, {} duplicated, {} unreadable",
                group(f.lines),
                group(f.distinct),
                group(self.sent.saturating_sub(f.distinct)),
                group(f.duplicates),
                group(f.unreadable),
            );
            if self.rotation.is_some() {
                let kinds: Vec<String> = f
                    .rotated
                    .iter()
                    .map(|(p, g)| {
                        format!(
                            "{} {} ({:.1} MB read back from {:.1} MB on disk)",
                            g.files,
                            match p {
                                Packing::None => "uncompressed",
                                Packing::Zstd => ".zst",
                                Packing::Gzip => ".gz",
                            },
                            g.raw_bytes as f64 / 1e6,
                            g.disk_bytes as f64 / 1e6,
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "   read back: the live file ({:.1} MB) and {} rotated generations: {}; \
                     {} lines out of order (oldest generation first); {} compression temporaries left",
                    f.live_bytes as f64 / 1e6,
                    f.rotated.values().map(|g| g.files).sum::<usize>(),
                    if kinds.is_empty() {
                        "none".to_string()
                    } else {
                        kinds.join(", ")
                    },
                    group(f.out_of_order),
                    f.temporaries,
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "   {n}");
        }
        if self.timed_out {
            let _ = writeln!(s, "   TIMED OUT after {} s", CASE_DEADLINE.as_secs());
        }
        for e in &self.errors {
            let _ = writeln!(s, "   ERROR: {e}");
        }
        s
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Runs one case on a fresh daemon; never panics on the daemon's failures, records them.
fn run_case(case: &Case, n: u64, opts: &Options, build: &Build) -> Outcome {
    let mut out = Outcome {
        case: build.case_name(case.name),
        messages: n,
        ..Outcome::default()
    };
    let input = case.load.input();
    let tls = matches!(case.load, Load::Tls { .. } | Load::TlsHandshakes { .. });
    // The journal case: a journald of its own, filled before the daemon starts; the clock
    // starts with the daemon.
    let journald = if matches!(case.load, Load::Journal) {
        let j = match Journald::start("logwellbench") {
            Ok(j) => j,
            Err(why) => {
                out.skipped = Some(why);
                return out;
            }
        };
        if let Err(e) = fill_journal(&j, n, &mut out) {
            out.errors.push(e);
            out.errors.push(format!("journald said: {}", j.output()));
            return out;
        }
        Some(j)
    } else {
        None
    };
    let daemon_started = Instant::now();
    let gen_at_daemon_start = own_cpu_secs();
    let templated = match case.load {
        Load::TcpHosts { max_open_files, .. } => Some(max_open_files),
        _ => None,
    };
    let mut daemon = match Daemon::start(
        &build.path,
        case.rotation.as_ref(),
        journald.as_ref().map(|j| j.ns.as_str()),
        tls,
        templated,
    ) {
        Ok(d) => d,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let tls_config = if tls {
        match loadgen::tls_client_config(&daemon._dir.path().join("ca.pem")) {
            Ok(c) => Some(c),
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        }
    } else {
        None
    };
    let perf = opts.perf_dir.as_ref().and_then(|dir| {
        start_perf(
            dir,
            &build.perf_name(case.name),
            daemon.pid(),
            &mut out.errors,
        )
    });

    // The senders connect, then wait on `start` with this thread, which starts the clock.
    let shares = split(
        n,
        match case.load {
            Load::Tcp { connections } | Load::Tls { connections } => connections,
            Load::TcpHosts { .. } => 1,
            Load::TlsHandshakes { threads } => threads,
            // Nothing is sent while the clock runs.
            Load::Journal => 0,
            _ => 1,
        },
    );
    let start = Arc::new(Barrier::new(shares.len() + 1));
    let deadline = Instant::now() + CASE_DEADLINE;
    let senders: Vec<JoinHandle<Sent>> = shares
        .into_iter()
        .map(|(first_seq, count)| {
            let share = Share {
                first_seq,
                count,
                deadline,
            };
            let start = Arc::clone(&start);
            let port = daemon.port;
            let tls_port = daemon.tls_port;
            let tls_config = tls_config.clone();
            let path = daemon.unix_socket.clone();
            let load = case.load;
            let rate = opts.udp_rate;
            let trickle = opts.trickle_rate;
            std::thread::spawn(move || match load {
                Load::Tcp { .. } => loadgen::tcp(port, share, 0, &start),
                Load::TcpHosts { hosts, .. } => loadgen::tcp(port, share, hosts, &start),
                Load::Udp { paced } => loadgen::udp(port, share, paced.then_some(rate), &start),
                Load::UnixDgram => loadgen::unix_dgram(&path, loadgen::HEADER, share, &start),
                Load::UnixTrickle => loadgen::unix_dgram_trickle(&path, share, trickle, &start),
                Load::Forwarded => {
                    loadgen::unix_dgram(&path, loadgen::FORWARDED_HEADER, share, &start)
                }
                Load::Tls { .. } => {
                    loadgen::tls(tls_port, tls_config.as_ref().expect("TLS"), share, &start)
                }
                Load::TlsHandshakes { .. } => loadgen::tls_handshakes(
                    tls_port,
                    tls_config.as_ref().expect("TLS"),
                    share,
                    &start,
                ),
                Load::Journal => unreachable!("the journal case has no senders"),
            })
        })
        .collect();
    let (cpu_before, threads_before, gen_before, t0) = if journald.is_some() {
        // Timed from the daemon's start: all its CPU is the case's.
        (0.0, BTreeMap::new(), gen_at_daemon_start, daemon_started)
    } else {
        let cpu_before = daemon.cpu_secs();
        let threads_before = daemon.thread_cpu();
        let gen_before = own_cpu_secs();
        start.wait();
        (cpu_before, threads_before, gen_before, Instant::now())
    };
    let quiet = if journald.is_some() {
        JOURNAL_QUIET
    } else {
        QUIET
    };

    // Poll the counters until everything is written, or nothing moves after the senders are
    // done, or the deadline.
    let mut last = Counters::default();
    let mut last_change = t0;
    let mut written_at = t0;
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let end = loop {
        std::thread::sleep(POLL);
        let now = Instant::now();
        let c = match daemon.counters(input) {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(e);
                break written_at;
            }
        };
        if c.written != last.written {
            written_at = now;
            samples.push((now, c.written));
        }
        if c != last {
            last_change = now;
        }
        last = c;
        if c.written >= n {
            break now;
        }
        let senders_done = senders.iter().all(|s| s.is_finished());
        if senders_done && now - last_change > quiet {
            break written_at;
        }
        if now - t0 > CASE_DEADLINE {
            out.timed_out = true;
            break now;
        }
    };
    out.cpu_secs = daemon.cpu_secs() - cpu_before;
    out.threads = daemon
        .thread_cpu()
        .into_iter()
        .map(|(name, secs)| {
            let before = threads_before.get(&name).copied().unwrap_or(0.0);
            (name, secs - before)
        })
        .filter(|(_, secs)| *secs > 0.0)
        .collect();
    out.generator_cpu_secs = own_cpu_secs() - gen_before;
    out.peak_rss_kib = daemon.peak_rss_kib();
    if journald.is_some() {
        // sd_journal maps the journal files: much of the RSS is file pages.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.notes.push(format!(
            "journal: RSS when `written` reached the count: {:.1} MiB anonymous, {:.1} MiB file \
             pages (the mapped journal files)",
            kib("RssAnon:") as f64 / 1024.0,
            kib("RssFile:") as f64 / 1024.0,
        ));
    }
    out.written = last.written;
    out.received = last.received;
    out.dropped = last.dropped;
    out.e2e_secs = (end - t0).as_secs_f64();
    let p99 = (last.written as f64 * 0.99).ceil() as u64;
    out.p99_secs = samples
        .iter()
        .find(|(_, w)| *w >= p99)
        .map_or(out.e2e_secs, |(t, _)| (*t - t0).as_secs_f64());

    if let Some(settings) = case.rotation {
        out.rotation = Some(wait_for_compression(
            &daemon,
            &settings,
            t0,
            end,
            cpu_before,
            &mut out.errors,
        ));
    }

    let mut finished = t0;
    for s in senders {
        match s.join() {
            Ok(sent) => {
                out.sent += sent.messages;
                finished = finished.max(sent.finished.unwrap_or(t0));
                if let Some(e) = sent.error {
                    out.errors.push(format!("sender: {e}"));
                }
            }
            Err(_) => out.errors.push("a sender thread panicked".into()),
        }
    }
    out.send_secs = (finished - t0).as_secs_f64();
    if tls {
        if let Some(n) = loadgen::tls_negotiated() {
            out.notes.push(format!("TLS: {n}"));
        }
    }
    match case.load {
        Load::UnixTrickle => out.no_cpu_target = true,
        Load::TlsHandshakes { threads } => {
            out.no_cpu_target = true;
            out.notes.push(format!(
                "handshakes: {} connections from {threads} threads in {:.3} s: {} handshakes/s at \
             the clients, {} handshakes/s until the daemon wrote the last message; daemon CPU \
             {:.3} s per 1,000 handshakes",
                group(out.sent),
                out.send_secs,
                group(per_sec(out.sent, out.send_secs) as u64),
                group(out.rate() as u64),
                out.cpu_secs * 1000.0 / out.written.max(1) as f64,
            ))
        }
        Load::Journal => out.notes.push(format!(
            "journal: {} entries/s from the daemon's start (incl. its startup) until `written` \
             reached {}",
            group(out.rate() as u64),
            group(out.written),
        )),
        _ => {}
    }
    if let Some(p) = perf {
        stop_perf(p, &mut out.errors);
    }
    match daemon.stop() {
        Ok(status) if status.success() => {}
        Ok(status) => out
            .errors
            .push(format!("logwelld exited with {status}: {}", daemon.log())),
        Err(e) => out.errors.push(e),
    }
    let checked = if templated.is_some() {
        check_dir(daemon.output.parent().unwrap_or(Path::new(".")), out.sent)
    } else {
        check_files(&daemon.output, out.sent)
    };
    match checked {
        Ok(f) => {
            if f.temporaries > 0 {
                out.errors.push(format!(
                    "{} compression temporaries left in {}",
                    f.temporaries,
                    daemon.output.parent().unwrap_or(Path::new(".")).display()
                ));
            }
            if (case.rotation.is_some() || templated.is_some()) && f.out_of_order > 0 {
                out.errors.push(format!(
                    "{} lines out of order across the generations (one connection sends in order)",
                    f.out_of_order
                ));
            }
            if f.lines != out.written {
                out.errors.push(format!(
                    "the file has {} lines after shutdown but `written` said {} when the case ended",
                    f.lines, out.written
                ));
            }
            out.file = Some(f);
        }
        Err(e) => out
            .errors
            .push(format!("reading {}: {e}", daemon.output.display())),
    }
    out
}

/// Pre-fills the journal of `j` with `n` entries (sequence numbers `0..n`), waits until
/// journald has stored the last one and checks `journalctl` counts them all.
fn fill_journal(j: &Journald, n: u64, out: &mut Outcome) -> Result<(), String> {
    let t = Instant::now();
    let deadline = t + JOURNAL_FILL_DEADLINE;
    let share = Share {
        first_seq: 0,
        count: n,
        deadline,
    };
    let sent = loadgen::journal_native(&j.native_socket(), share);
    if let Some(e) = sent.error {
        return Err(format!(
            "pre-filling the journal: {e} after {} entries",
            sent.messages
        ));
    }
    let sent_secs = t.elapsed().as_secs_f64();
    // journald takes one socket's datagrams in order: once the last is readable, all are.
    let last = n.saturating_sub(1);
    loop {
        let tail = j.messages("bench", &["-n", "1"])?;
        if loadgen::parse_seq(&tail) == Some(last) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "journald did not store entry {last} within {} s",
                JOURNAL_FILL_DEADLINE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored_secs = t.elapsed().as_secs_f64();
    let all = j.messages("bench", &[])?;
    let count = all.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    out.notes.push(format!(
        "journal: namespace {} (journald pid {}): {} entries sent in {:.2} s, stored after {:.2} s \
         ({} entries/s into journald); journalctl counts {}",
        j.ns,
        j.pid(),
        group(n),
        sent_secs,
        stored_secs,
        group(per_sec(n, stored_secs) as u64),
        group(count),
    ));
    if count != n {
        return Err(format!(
            "journalctl counts {count} entries of `bench`, {n} were sent"
        ));
    }
    out.sent = n;
    Ok(())
}

/// Waits until rotation is done with what the case wrote: the live file is below `max_size`
/// (no rotation pending) and, when compressing, no rotated generation is left uncompressed
/// (except the newest with `delay_compress`) and no compression temporary exists. Bounded by
/// [`COMPRESS_DEADLINE`] after `end` (the last message written).
fn wait_for_compression(
    daemon: &Daemon,
    settings: &Rotation,
    t0: Instant,
    end: Instant,
    cpu_before: f64,
    errors: &mut Vec<String>,
) -> RotationOutcome {
    let deadline = end.max(Instant::now()) + COMPRESS_DEADLINE;
    let done = loop {
        let now = Instant::now();
        match rotation_pending(&daemon.output, settings) {
            Ok(false) => break Some(now),
            Ok(true) => {}
            Err(e) => {
                errors.push(format!("listing the rotated files: {e}"));
                break None;
            }
        }
        if now > deadline {
            errors.push(format!(
                "rotated generations still uncompressed {} s after the last message was written",
                COMPRESS_DEADLINE.as_secs()
            ));
            break None;
        }
        std::thread::sleep(POLL);
    };
    // The thread starts at the first rotation that compresses: it has no CPU from before.
    let compress_cpu_secs = daemon.thread_cpu_precise("compress");
    RotationOutcome {
        settings: *settings,
        compressed_secs: match settings.compress {
            Packing::None => None,
            _ => done.map(|t| (t - t0).as_secs_f64()),
        },
        compress_cpu_secs,
        cpu_until_compressed_secs: daemon.cpu_secs() - cpu_before,
    }
}

/// Whether a rotation or a compression is still to come for the file set of `live`.
fn rotation_pending(live: &Path, settings: &Rotation) -> std::io::Result<bool> {
    let live_size = match std::fs::metadata(live) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if live_size >= ROTATE_MAX_BYTES {
        return Ok(true);
    }
    if settings.compress == Packing::None {
        return Ok(false);
    }
    let set = file_set(live)?;
    let uncompressed = set
        .generations
        .iter()
        .any(|g| g.packing == Packing::None && !(settings.delay_compress && g.number == 1));
    Ok(uncompressed || set.temporaries > 0)
}

/// Splits `n` messages into `parts` contiguous `(first_seq, count)` shares.
fn split(n: u64, parts: usize) -> Vec<(u64, u64)> {
    let parts = parts as u64;
    let mut first = 0;
    (0..parts)
        .map(|i| {
            let count = n / parts + u64::from(i < n % parts);
            let share = (first, count);
            first += count;
            share
        })
        .collect()
}

/// The counters the benchmark watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    received: u64,
    dropped: u64,
    written: u64,
}

/// A `logwelld` this benchmark started, in its own temporary directory.
struct Daemon {
    child: Option<Proc>,
    /// Holds the config, sockets and output; removed when the daemon is dropped.
    _dir: tempfile::TempDir,
    port: u16,
    /// The TLS input's port (0 without one).
    tls_port: u16,
    control: PathBuf,
    unix_socket: PathBuf,
    output: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    /// Writes the config, starts `logwelld` and waits until its control socket answers.
    /// With `journal_ns`, a journal input `journal` reads that namespace from the head
    /// (entries of `SYSLOG_IDENTIFIER=bench` only); with `tls`, a TLS input `tls` on another
    /// port, with certificates made by `openssl` in the daemon's directory.
    fn start(
        logwelld: &str,
        rotation: Option<&Rotation>,
        journal_ns: Option<&str>,
        tls: bool,
        templated: Option<usize>,
    ) -> Result<Daemon, String> {
        let dir = tempfile::Builder::new()
            .prefix("logwell-e2e-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let port = free_port()?;
        let d = dir.path();
        let control = d.join("control.sock");
        let unix_socket = d.join("log.sock");
        let output = d.join("out").join(if templated.is_some() {
            "{host}.log"
        } else {
            "messages.log"
        });
        let config = d.join("logwell.toml");
        let state_dir = d.join("state");
        std::fs::create_dir_all(&state_dir).map_err(|e| format!("state directory: {e}"))?;
        let mut extra_inputs = String::new();
        let mut tls_port = 0;
        if tls {
            pki::make_server(d, loadgen::TLS_SERVER_NAME)?;
            tls_port = free_port()?;
            let _ = write!(
                extra_inputs,
                "\n[input.tls]\ntype = \"tls\"\nlisten = \"127.0.0.1:{tls_port}\"\n\
                 cert = \"{}\"\nkey = \"{}\"\n",
                d.join("server.pem").display(),
                d.join("server.key").display()
            );
        }
        if let Some(ns) = journal_ns {
            let _ = write!(
                extra_inputs,
                "\n[input.journal]\ntype = \"journal\"\nnamespace = \"{ns}\"\n\
                 from = \"head\"\nidentifiers = [\"bench\"]\n"
            );
        }
        let mut rotation_table = String::new();
        if let Some(max) = templated {
            let _ = writeln!(rotation_table, "max_open_files = {max}");
        }
        if let Some(r) = rotation {
            let _ = write!(
                rotation_table,
                "\n[output.out.rotation]\nmax_size = \"{ROTATE_MAX_SIZE}\"\ncompress = \"{}\"\n",
                r.compress.name()
            );
            if let Some(level) = r.level {
                let _ = writeln!(rotation_table, "compress_level = {level}");
            }
            if r.delay_compress {
                rotation_table.push_str("delay_compress = true\n");
            }
        }
        let text = format!(
            r#"[daemon]
control_socket = "{control}"
log_level = "warn"
state_dir = "{state_dir}"
# One process, so its CPU and RSS are the daemon's (privilege separation costs only opens).
privsep = false

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"
receive_buffer_bytes = 8388608

[input.unix]
type = "unix_datagram"
path = "{unix}"
{extra_inputs}
[output.out]
type = "file"
path = "{output}"
format = "rfc3339"
{rotation_table}
[[rule]]
output = "out"
"#,
            control = control.display(),
            unix = unix_socket.display(),
            output = output.display(),
            state_dir = state_dir.display(),
        );
        std::fs::write(&config, text).map_err(|e| format!("writing the config: {e}"))?;
        let stderr = d.join("stderr.log");
        let mut cmd = Command::new(logwelld);
        cmd.arg("--config").arg(&config);
        let mut child = Proc::spawn("logwelld", cmd, &stderr)?;
        child.wait_ready(START_DEADLINE, "answer on its control socket", || {
            counters(&control, "tcp").is_ok()
        })?;
        let daemon = Daemon {
            child: Some(child),
            _dir: dir,
            port,
            tls_port,
            control,
            unix_socket,
            output,
            stderr,
        };
        Ok(daemon)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("daemon is running").pid()
    }

    /// The daemon's diagnostics (its stderr).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The counters of input `input` and of the output, over the control socket (the same
    /// request `logwell stats --json` makes: one line `stats`, one JSON line back).
    fn counters(&self, input: &str) -> Result<Counters, String> {
        counters(&self.control, input)
    }

    /// utime + stime of every thread so far, in seconds.
    fn cpu_secs(&self) -> f64 {
        proc_cpu(&format!("/proc/{}/stat", self.pid())).map_or(0.0, |(_, secs)| secs)
    }

    /// CPU seconds so far of each live thread, summed by thread name.
    fn thread_cpu(&self) -> BTreeMap<String, f64> {
        let mut by_name = BTreeMap::new();
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()));
        for task in tasks.into_iter().flatten().flatten() {
            if let Some((name, secs)) = proc_cpu(&format!("{}/stat", task.path().display())) {
                *by_name.entry(name).or_insert(0.0) += secs;
            }
        }
        by_name
    }

    /// CPU seconds so far of the live threads named `name`, from `schedstat` (nanoseconds)
    /// where the kernel has it, else from `stat` (clock ticks, 10 ms).
    fn thread_cpu_precise(&self, name: &str) -> f64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()));
        let mut total = 0.0;
        for task in tasks.into_iter().flatten().flatten() {
            let dir = task.path();
            let Some((comm, ticks_secs)) = proc_cpu(&format!("{}/stat", dir.display())) else {
                continue;
            };
            if comm != name {
                continue;
            }
            let ns = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
            total += ns.map_or(ticks_secs, |ns| ns as f64 / 1e9);
        }
        total
    }

    /// `VmHWM`: the peak resident set size, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM to our child, then waits for it; SIGKILL after [`STOP_DEADLINE`].
    fn stop(&mut self) -> Result<ExitStatus, String> {
        let mut child = self.child.take().expect("daemon is running");
        child.signal(libc::SIGTERM)?;
        child.wait_exit(STOP_DEADLINE).map_err(|_| {
            child.kill();
            format!(
                "logwelld (pid {}) ignored SIGTERM for {STOP_DEADLINE:?}; killed",
                child.pid()
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill();
        }
    }
}

/// The counters of input `input` and of the output `out`, over the control socket at
/// `control` (the same request `logwell stats --json` makes: one line `stats`, one JSON line
/// back).
fn counters(control: &Path, input: &str) -> Result<Counters, String> {
    let ask = || -> std::io::Result<String> {
        let mut sock = UnixStream::connect(control)?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        sock.set_write_timeout(Some(Duration::from_secs(5)))?;
        sock.write_all(b"stats\n")?;
        let mut reply = String::new();
        sock.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply = ask().map_err(|e| format!("control socket: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(reply.trim())
        .map_err(|e| format!("stats reply is not JSON ({e}): {reply}"))?;
    let get = |kind: &str, name: &str, counter: &str| {
        v[kind][name][counter]
            .as_u64()
            .ok_or_else(|| format!("no {kind}.{name}.{counter} in {reply}"))
    };
    Ok(Counters {
        received: get("inputs", input, "received")?,
        dropped: get("inputs", input, "dropped")?,
        written: get("outputs", "out", "written")?,
    })
}

/// The command name and utime + stime (seconds) from a `/proc/.../stat` file.
fn proc_cpu(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    // Fields after the command name start at field 3 (state); utime and stime are fields 14
    // and 15, in clock ticks.
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

/// This process's user + system CPU so far (the generator and the polling), in seconds.
fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// What the output files hold: the live file and every rotated generation, read back.
#[derive(Default)]
struct FileCheck {
    lines: u64,
    distinct: u64,
    duplicates: u64,
    unreadable: u64,
    /// Lines whose sequence number is below the one before, reading the oldest generation
    /// first and the live file last (one TCP connection sends in order, so 0 is expected).
    out_of_order: u64,
    /// Bytes of the live file.
    live_bytes: u64,
    /// The rotated generations by compression.
    rotated: BTreeMap<Packing, Packed>,
    /// Hidden compression temporaries (`.FILE.INODE.zst.tmp`) found.
    temporaries: usize,
}

/// Rotated generations of one kind.
#[derive(Default)]
struct Packed {
    files: usize,
    /// Bytes after decompression.
    raw_bytes: u64,
    /// Bytes on disk.
    disk_bytes: u64,
}

/// One rotated generation: `FILE.N`, `FILE.N.zst` or `FILE.N.gz`.
struct Generation {
    path: PathBuf,
    number: u32,
    packing: Packing,
    disk_bytes: u64,
}

/// The rotated generations of a live file, oldest (highest number) first, and the number of
/// compression temporaries beside them. Parsed here, not with the daemon's code, so that the
/// check does not share its bugs.
struct FileSet {
    generations: Vec<Generation>,
    temporaries: usize,
}

fn file_set(live: &Path) -> std::io::Result<FileSet> {
    let dir = live.parent().unwrap_or(Path::new("."));
    let base = live
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut set = FileSet {
        generations: Vec::new(),
        temporaries: 0,
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with(&format!(".{base}.")) && name.ends_with(".tmp") {
            set.temporaries += 1;
            continue;
        }
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let (number, packing) = if let Some(n) = rest.strip_suffix(".zst") {
            (n, Packing::Zstd)
        } else if let Some(n) = rest.strip_suffix(".gz") {
            (n, Packing::Gzip)
        } else {
            (rest, Packing::None)
        };
        if number.is_empty() || number.starts_with('0') {
            continue;
        }
        let Ok(number) = number.parse::<u32>() else {
            continue;
        };
        // A generation may be renamed or replaced by its compressed copy while listing.
        let Ok(meta) = entry.metadata() else { continue };
        set.generations.push(Generation {
            path: entry.path(),
            number,
            packing,
            disk_bytes: meta.len(),
        });
    }
    set.generations.sort_by_key(|g| std::cmp::Reverse(g.number));
    Ok(set)
}

/// Reads back the live file `live` and every rotated generation beside it (decompressing
/// `.zst` and `.gz`), oldest first, and checks every sequence number in `0..sent` arrived
/// exactly once.
fn check_files(live: &Path, sent: u64) -> std::io::Result<FileCheck> {
    let mut seen = vec![0u64; sent.div_ceil(64) as usize];
    let mut check = FileCheck::default();
    let mut previous: Option<u64> = None;
    let set = file_set(live)?;
    check.temporaries = set.temporaries;
    let named = |p: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    for g in &set.generations {
        let file = std::fs::File::open(&g.path).map_err(|e| named(&g.path, e))?;
        let reader: Box<dyn Read> = match g.packing {
            Packing::None => Box::new(file),
            Packing::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| named(&g.path, e))?)
            }
            Packing::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        };
        let raw = read_lines(reader, sent, &mut seen, &mut check, &mut previous)
            .map_err(|e| named(&g.path, e))?;
        let packed = check.rotated.entry(g.packing).or_default();
        packed.files += 1;
        packed.raw_bytes += raw;
        packed.disk_bytes += g.disk_bytes;
    }
    // With rotation, the live file is created at the first write after a rotation: it may
    // not exist. Without rotation, a missing file is an error.
    match std::fs::File::open(live) {
        Ok(f) => {
            check.live_bytes = read_lines(f, sent, &mut seen, &mut check, &mut previous)
                .map_err(|e| named(live, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !set.generations.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(check)
}

/// Reads back every file in `dir` (a templated path's files), checking every sequence
/// number in `0..sent` arrived exactly once, and in order within each file.
fn check_dir(dir: &Path, sent: u64) -> std::io::Result<FileCheck> {
    let mut seen = vec![0u64; sent.div_ceil(64) as usize];
    let mut check = FileCheck::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let mut previous = None;
        let f = std::fs::File::open(&path)?;
        check.live_bytes += read_lines(f, sent, &mut seen, &mut check, &mut previous)?;
    }
    Ok(check)
}

/// Reads newline-terminated lines from `reader` into `check`; returns the bytes read.
fn read_lines(
    reader: impl Read,
    sent: u64,
    seen: &mut [u64],
    check: &mut FileCheck,
    previous: &mut Option<u64>,
) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::with_capacity(512);
    let mut bytes = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        check.lines += 1;
        match loadgen::parse_seq(&line).filter(|s| *s < sent) {
            Some(s) => {
                if previous.is_some_and(|p| s < p) {
                    check.out_of_order += 1;
                }
                *previous = Some(s);
                let (word, bit) = ((s / 64) as usize, 1u64 << (s % 64));
                if seen[word] & bit != 0 {
                    check.duplicates += 1;
                } else {
                    seen[word] |= bit;
                    check.distinct += 1;
                }
            }
            None => check.unreadable += 1,
        }
    }
    Ok(bytes)
}

/// A `perf record` attached to the daemon.
struct Perf {
    child: Proc,
    data: PathBuf,
}

fn start_perf(dir: &Path, case: &str, pid: i32, errors: &mut Vec<String>) -> Option<Perf> {
    let _ = std::fs::create_dir_all(dir);
    let data = dir.join(format!("perf-{case}.data"));
    let freq = std::env::var("LOGWELL_BENCH_PERF_FREQ").unwrap_or_else(|_| "1999".into());
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", &freq, "-g", "-o"])
        .arg(&data)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match Proc::spawn_as_set("perf", cmd) {
        Ok(child) => {
            // Give perf time to attach before the clock starts.
            std::thread::sleep(Duration::from_millis(500));
            Some(Perf { child, data })
        }
        Err(e) => {
            errors.push(format!("perf: {e}"));
            None
        }
    }
}

fn stop_perf(mut p: Perf, errors: &mut Vec<String>) {
    // SIGINT makes perf write its data.
    let stopped = p
        .child
        .signal(libc::SIGINT)
        .and_then(|()| p.child.wait_exit(STOP_DEADLINE));
    if stopped.is_err() {
        p.child.kill();
        errors.push("perf did not stop; killed".into());
    }
    println!(
        "   perf data: {} (perf report -i {} --no-children)",
        p.data.display(),
        p.data.display()
    );
}

/// CPU, cores, kernel, and what was measured.
fn machine(builds: &[Build]) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "logwell end-to-end benchmark, {}",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S %z")
    );
    let _ = writeln!(
        s,
        "machine: {nproc} CPUs ({model}), {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1048576.0,
        kernel.trim()
    );
    for b in builds {
        match &b.against {
            None => {
                let _ = writeln!(s, "daemon:  {} (git {git})", b.path);
            }
            Some(name) => {
                let _ = writeln!(
                    s,
                    "against: {} (rows marked [{name}]; each case runs with both in turn)",
                    b.path
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "load average before the run: {} (other work on these CPUs skews the rates)",
        load.join(" ")
    );
    let _ = writeln!(
        s,
        "load:    {}-byte messages, generator in this process on the same CPUs; temp dir {}",
        loadgen::MESSAGE_BYTES,
        std::env::temp_dir().display()
    );
    s
}

/// The summary table, one row per run (`case #round` with `rounds`).
fn table(outcomes: &[Outcome], rounds: bool) -> String {
    let header = [
        "case",
        "messages",
        "sent",
        "written",
        "lost",
        "dropped",
        "send s",
        "e2e s",
        "msg/s e2e",
        "msg/s 99%",
        "CPU s/M",
        "gen CPU s",
        "RSS MiB",
        "CPU,RSS",
    ];
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                run_name(o, rounds),
                group(o.messages),
                group(o.sent),
                group(o.written),
                o.lost().to_string(),
                group(o.dropped),
                format!("{:.3}", o.send_secs),
                format!("{:.3}", o.e2e_secs),
                group(o.rate() as u64),
                group(o.rate_99() as u64),
                format!("{:.2}", o.cpu_per_million()),
                format!("{:.2}", o.generator_cpu_secs),
                format!("{:.1}", o.rss_mib()),
                if !o.errors.is_empty() || o.timed_out {
                    "ERROR".into()
                } else if o.no_cpu_target {
                    "-".into()
                } else if o.cpu_rss_ok() {
                    "ok".into()
                } else {
                    "MISS".into()
                },
            ]
        })
        .collect();
    let mut s = columns(&header, &rows);
    s.push_str(
        "lost = sent - written; dropped = the daemon's count of kernel drops; CPU s/M = daemon CPU \
         seconds per million messages written;\n99% = rate until 99% were written (leaves out the \
         tail of the run); gen = this process.\n",
    );
    s
}

/// `header` and `rows` laid out in columns: the first left-aligned, the others right-aligned.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| -> usize {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut s = String::new();
    let line = |s: &mut String, cells: &[&str]| {
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "{c:<w$}", w = widths[i]);
            } else {
                let _ = write!(s, "  {c:>w$}", w = widths[i]);
            }
        }
        s.push('\n');
    };
    line(&mut s, header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut s, &rule.iter().map(String::as_str).collect::<Vec<_>>());
    for r in rows {
        line(&mut s, &r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    s
}

/// A run's name in the tables: the case, and its round when there are several.
fn run_name(o: &Outcome, rounds: bool) -> String {
    if rounds {
        format!("{} #{}", o.case, o.round)
    } else {
        o.case.clone()
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN if empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The case names of `outcomes`, in the order they first ran.
fn case_names(outcomes: &[Outcome]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        if !names.contains(&o.case.as_str()) {
            names.push(&o.case);
        }
    }
    names
}

/// The runs of one case.
fn runs_of<'a>(outcomes: &'a [Outcome], case: &str) -> Vec<&'a Outcome> {
    outcomes.iter().filter(|o| o.case == case).collect()
}

/// The median end-to-end rate of a case over its runs.
fn median_rate(outcomes: &[Outcome], case: &str) -> Option<f64> {
    let runs = runs_of(outcomes, case);
    (!runs.is_empty()).then(|| median(runs.iter().map(|o| o.rate()).collect()))
}

/// With several rounds: per case, the median of each figure over its runs.
fn median_table(outcomes: &[Outcome], rounds: usize) -> String {
    let header = [
        "case",
        "runs",
        "msg/s e2e",
        "min",
        "max",
        "msg/s 99%",
        "CPU s/M",
        "compressed +s",
        "compress CPU s",
        "errors",
    ];
    let opt = |v: f64, digits: usize| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.digits$}")
        }
    };
    let rows: Vec<Vec<String>> = case_names(outcomes)
        .into_iter()
        .map(|case| {
            let runs = runs_of(outcomes, case);
            let rates: Vec<f64> = runs.iter().map(|o| o.rate()).collect();
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rates.iter().copied().fold(0.0, f64::max);
            let compressing: Vec<&RotationOutcome> = runs
                .iter()
                .filter_map(|o| o.rotation.as_ref())
                .filter(|r| r.settings.compress != Packing::None)
                .collect();
            vec![
                case.to_string(),
                runs.len().to_string(),
                group(median(rates.clone()) as u64),
                group(min as u64),
                group(max as u64),
                group(median(runs.iter().map(|o| o.rate_99()).collect()) as u64),
                format!(
                    "{:.2}",
                    median(runs.iter().map(|o| o.cpu_per_million()).collect())
                ),
                opt(
                    median(
                        runs.iter()
                            .filter_map(|o| {
                                o.rotation.as_ref().and_then(|r| r.after_e2e(o.e2e_secs))
                            })
                            .collect(),
                    ),
                    3,
                ),
                opt(
                    median(compressing.iter().map(|r| r.compress_cpu_secs).collect()),
                    2,
                ),
                runs.iter()
                    .filter(|o| !o.errors.is_empty() || o.timed_out)
                    .count()
                    .to_string(),
            ]
        })
        .collect();
    let mut s = format!("Medians over {rounds} interleaved rounds:\n");
    s.push_str(&columns(&header, &rows));
    s.push_str(
        "compressed +s = from the last message written until every rotated generation was \
         compressed; compress CPU s = the daemon's `compress` thread until then.\n",
    );
    s
}

/// CPU time and ratio of the compression of rotated generations, one row per run that
/// compressed. `None` when no run did.
fn compression_table(outcomes: &[Outcome], rounds: bool) -> Option<String> {
    let header = [
        "case",
        "compress",
        "level",
        "files",
        "input MB",
        "output MB",
        "ratio",
        "CPU s",
        "CPU s/GB",
        "MB/s per CPU s",
        "done +s",
    ];
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .filter_map(|o| {
            let r = o.rotation.as_ref()?;
            let packed = o.file.as_ref()?.rotated.get(&r.settings.compress)?;
            if r.settings.compress == Packing::None {
                return None;
            }
            let input_mb = packed.raw_bytes as f64 / 1e6;
            let cpu = r.compress_cpu_secs;
            Some(vec![
                run_name(o, rounds),
                r.settings.compress.name().to_string(),
                r.settings.level().map_or("-".into(), |l| l.to_string()),
                packed.files.to_string(),
                format!("{input_mb:.1}"),
                format!("{:.2}", packed.disk_bytes as f64 / 1e6),
                format!(
                    "{:.1}",
                    packed.raw_bytes as f64 / packed.disk_bytes.max(1) as f64
                ),
                format!("{cpu:.2}"),
                format!("{:.2}", cpu / (input_mb / 1e3)),
                if cpu > 0.0 {
                    format!("{:.0}", input_mb / cpu)
                } else {
                    "-".into()
                },
                r.after_e2e(o.e2e_secs)
                    .map_or("NOT DONE".into(), |t| format!("{t:.3}")),
            ])
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut s = String::from("Compression of the rotated generations:\n");
    s.push_str(&columns(&header, &rows));
    s.push_str(
        "input = bytes of the compressed generations after decompression (read back); CPU s = the \
         daemon's `compress` thread; ratio = input / output;\ndone +s = from the last message \
         written until no generation was left uncompressed.\nThe ratios are optimistic: the \
         benchmark's messages repeat one text and differ only in a sequence number; real logs \
         compress far less.\n",
    );
    Some(s)
}

/// The first targets next to the results.
fn verdict(outcomes: &[Outcome]) -> String {
    let mut s = format!(
        "\nFirst targets: tcp1 >= {} msg/s end to end with no loss; < {:.1} CPU s per million \
         messages; < {} MiB peak RSS\n",
        group(TARGET_MSGS_PER_SEC as u64),
        TARGET_CPU_SECS_PER_MILLION,
        TARGET_RSS_MIB
    );
    let mark = |ok: bool| if ok { "ok" } else { "MISS" };
    // With several rounds, the run of median rate stands for the case.
    let mut tcp1 = runs_of(outcomes, "tcp1");
    tcp1.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    if tcp1.len() > 1 {
        let _ = writeln!(
            s,
            "  (tcp1 below: of its {} runs, the one of median rate, round {})",
            tcp1.len(),
            tcp1[(tcp1.len() - 1) / 2].round
        );
    }
    match tcp1.get(tcp1.len().saturating_sub(1) / 2).copied() {
        Some(o) => {
            let _ = writeln!(
                s,
                "  tcp1 rate   {:>10} msg/s   target >= {:>9}   {}",
                group(o.rate() as u64),
                group(TARGET_MSGS_PER_SEC as u64),
                mark(o.rate() >= TARGET_MSGS_PER_SEC)
            );
            let _ = writeln!(
                s,
                "  tcp1 loss   {:>10}         target    {:>9}   {}",
                o.lost(),
                0,
                mark(o.lost() == 0 && o.sent == o.messages && o.errors.is_empty())
            );
            let _ = writeln!(
                s,
                "  tcp1 CPU    {:>10.2} s/M     target  < {:>9.2}   {}",
                o.cpu_per_million(),
                TARGET_CPU_SECS_PER_MILLION,
                mark(o.cpu_per_million() < TARGET_CPU_SECS_PER_MILLION)
            );
            let _ = writeln!(
                s,
                "  tcp1 RSS    {:>10.1} MiB     target  < {:>9.1}   {}",
                o.rss_mib(),
                TARGET_RSS_MIB,
                mark(o.rss_mib() < TARGET_RSS_MIB)
            );
        }
        None => s.push_str("  (tcp1 was not run)\n"),
    }
    s.push_str(&rotation_verdict(outcomes));
    s
}

/// The rotation cases against `tcp1` of the same run (medians with several rounds).
fn rotation_verdict(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let rotating: Vec<&Case> = CASES
        .iter()
        .filter(|c| c.rotation.is_some() && outcomes.iter().any(|o| o.case == c.name))
        .collect();
    if rotating.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nRotation (issue: rotation): every {} under TCP load, end-to-end rate \
         under {:.0}% lower than tcp1 in the same run",
        ROTATE_MAX_SIZE.replace('M', " MiB"),
        TARGET_ROTATION_COST * 100.0
    );
    let Some(without) = median_rate(outcomes, "tcp1") else {
        s.push_str("  (tcp1 was not run: nothing to compare with)\n");
        return s;
    };
    for case in rotating {
        let r = case.rotation.expect("filtered");
        let with = median_rate(outcomes, case.name).unwrap_or(f64::NAN);
        let runs = runs_of(outcomes, case.name).len();
        let change = with / without - 1.0;
        let sign = if change < 0.0 { '−' } else { '+' };
        let compress = match r.level() {
            Some(level) => format!("{} {level}", r.compress.name()),
            None => "no compression".into(),
        };
        let _ = writeln!(
            s,
            "  rotation every 10 MiB: {} msg/s vs {} msg/s without ({sign}{:.1}%)  target < {:.0}%  {}   [{}: {compress}; {}]",
            group(with as u64),
            group(without as u64),
            change.abs() * 100.0,
            TARGET_ROTATION_COST * 100.0,
            if -change < TARGET_ROTATION_COST { "ok" } else { "MISS" },
            case.name,
            if runs > 1 {
                format!("medians of {runs} runs")
            } else {
                "single runs: noisy".into()
            },
        );
    }
    s
}

/// Templated paths against one file (`tcp1`) in the same run.
fn hosts_verdict(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            matches!(c.load, Load::TcpHosts { .. }) && outcomes.iter().any(|o| o.case == c.name)
        })
        .collect();
    if cases.is_empty() {
        return s;
    }
    s.push_str(
        "
Templated paths (issue: per-host files), against one file in the same run
",
    );
    let Some(single) = median_rate(outcomes, "tcp1") else {
        s.push_str(
            "  (tcp1 was not run: nothing to compare with)
",
        );
        return s;
    };
    for case in cases {
        let rate = median_rate(outcomes, case.name).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "  {}: {} msg/s vs {} msg/s into one file ({:.0}%)",
            case.name,
            group(rate as u64),
            group(single as u64),
            rate / single * 100.0
        );
    }
    s
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
