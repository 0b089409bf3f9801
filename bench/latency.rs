//! The `latency` case of the side-by-side benchmark (issue 34): how long one message takes
//! from its `send` until its line is in the output file, at low rates, where nothing else
//! makes a batch.
//!
//! Per daemon, one fresh process runs six scenarios in turn: TCP (one connection, opened
//! before and kept open, `TCP_NODELAY`), UDP and a Unix datagram socket, each at
//! [`SLOW_RATE`] ([`SLOW_COUNT`] messages) and at [`FAST_RATE`] ([`FAST_COUNT`]). Messages
//! are sent one at a time on a fixed schedule (`t0 + i / rate`, not after the previous one
//! arrived), each an RFC 3164 line carrying a unique token. A reader thread watches the file
//! with inotify (`IN_MODIFY`), reads what was appended and takes the time at which each
//! token's line was read: latency = that time − the time just before the `send`. Waking by
//! inotify costs the reader some tens of microseconds, the same for every daemon. Messages
//! not found within [`GRACE`] after the last send count as lost.
//!
//! The figures are p50, p99 and max over every round's samples.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Case, Kind, Peers, Receiver};

/// The slow rate, messages per second, and how many are sent at it.
pub const SLOW_RATE: u32 = 20;
pub const SLOW_COUNT: usize = 200;
/// The fast rate, and how many.
pub const FAST_RATE: u32 = 1000;
pub const FAST_COUNT: usize = 2000;
/// How long after the last send a line may still arrive.
const GRACE: Duration = Duration::from_secs(3);

/// How the messages are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
    Unix,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
            Transport::Unix => "Unix datagram",
        }
    }
}

/// One scenario: a transport at a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scenario {
    pub transport: Transport,
    pub rate: u32,
    pub count: usize,
}

/// The six scenarios, in the order they run.
pub fn scenarios() -> Vec<Scenario> {
    let mut v = Vec::new();
    for transport in [Transport::Tcp, Transport::Udp, Transport::Unix] {
        v.push(Scenario {
            transport,
            rate: SLOW_RATE,
            count: SLOW_COUNT,
        });
        v.push(Scenario {
            transport,
            rate: FAST_RATE,
            count: FAST_COUNT,
        });
    }
    v
}

/// The samples of one daemon in one scenario (every round pooled).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// Latencies of the messages found, in microseconds.
    pub micros: Vec<f64>,
    pub sent: usize,
    pub errors: Vec<String>,
}

/// Every latency result: (scenario, daemon) → samples.
pub type Results = HashMap<(Scenario, Kind), Samples>;

/// Runs every scenario against one fresh `kind` process, adding to `results`.
pub fn run(kind: Kind, case: &Case, peers: &Peers, results: &mut Results) {
    let r = match Receiver::start(kind, case, peers) {
        Ok(r) => r,
        Err(e) => {
            for s in scenarios() {
                results.entry((s, kind)).or_default().errors.push(e.clone());
            }
            return;
        }
    };
    for (i, s) in scenarios().into_iter().enumerate() {
        let out = results.entry((s, kind)).or_default();
        match scenario(&r, s, i) {
            Ok((micros, sent)) => {
                out.sent += sent;
                let found = micros.len();
                out.micros.extend(micros);
                println!(
                    "  latency    {:<16} {:<14} {:>5}/s  p50 {:>8}  p99 {:>8}  max {:>8}  lost {}",
                    kind.name(),
                    s.transport.name(),
                    s.rate,
                    ms(percentile(&out.micros, 0.50)),
                    ms(percentile(&out.micros, 0.99)),
                    ms(percentile(&out.micros, 1.0)),
                    sent - found
                );
            }
            Err(e) => out.errors.push(e),
        }
    }
    let mut r = r;
    r.stop();
}

/// Sends one scenario's messages and times them; returns the latencies found and how many
/// were sent. `index` makes the tokens unique within the process's file.
fn scenario(r: &Receiver, s: Scenario, index: usize) -> Result<(Vec<f64>, usize), String> {
    let mut send = sender(r, s.transport)?;
    let arrivals: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let watcher = Watcher::start(&r.output, index, s.count, Arc::clone(&arrivals))?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(s.rate));
    let mut sent_at = Vec::with_capacity(s.count);
    let t0 = Instant::now() + Duration::from_millis(50);
    for seq in 0..s.count {
        let due = t0 + interval * seq as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let line = format!("<13>Dec  7 12:00:00 benchhost latency: LATENCY{index}x{seq}y\n");
        let at = Instant::now();
        send(line.as_bytes()).map_err(|e| format!("{} send: {e}", s.transport.name()))?;
        sent_at.push(at);
    }
    let got = watcher.finish(Instant::now() + GRACE);
    let arrivals = arrivals.lock().expect("not poisoned");
    let micros = sent_at
        .iter()
        .enumerate()
        .filter_map(|(seq, at)| arrivals.get(&seq).map(|a| (*a - *at).as_secs_f64() * 1e6))
        .collect();
    got?;
    Ok((micros, s.count))
}

type Send = Box<dyn FnMut(&[u8]) -> std::io::Result<()>>;

fn sender(r: &Receiver, t: Transport) -> Result<Send, String> {
    match t {
        Transport::Tcp => {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", r.port))
                .map_err(|e| format!("TCP connect: {e}"))?;
            c.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(Box::new(move |b| c.write_all(b)))
        }
        Transport::Udp => {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.connect(("127.0.0.1", r.port))
                .map_err(|e| format!("UDP connect: {e}"))?;
            // A datagram is one message: no trailing newline.
            Ok(Box::new(move |b| {
                s.send(b.strip_suffix(b"\n").unwrap_or(b)).map(drop)
            }))
        }
        Transport::Unix => {
            let s = std::os::unix::net::UnixDatagram::unbound().map_err(|e| e.to_string())?;
            s.connect(&r.unix)
                .map_err(|e| format!("{}: {e}", r.unix.display()))?;
            Ok(Box::new(move |b| {
                s.send(b.strip_suffix(b"\n").unwrap_or(b)).map(drop)
            }))
        }
    }
}

/// A thread that reads what is appended to the output file, woken by inotify, and notes
/// when each of one scenario's tokens was read.
struct Watcher {
    thread: std::thread::JoinHandle<Result<(), String>>,
    /// Until when the thread keeps looking (set once the sends are done).
    until: Arc<Mutex<Option<Instant>>>,
}

impl Watcher {
    fn start(
        path: &Path,
        index: usize,
        count: usize,
        arrivals: Arc<Mutex<HashMap<usize, Instant>>>,
    ) -> Result<Watcher, String> {
        // SAFETY: inotify_init1 has no preconditions; the descriptor is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(format!("inotify: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let ino = unsafe { OwnedFd::from_raw_fd(fd) };
        // Some daemons create the file at the first message: watch the directory.
        let dir = path.parent().expect("a file in a directory");
        let add = |p: &Path| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL");
            // SAFETY: a valid descriptor and a NUL-terminated path.
            unsafe {
                libc::inotify_add_watch(
                    ino.as_raw_fd(),
                    c.as_ptr(),
                    libc::IN_MODIFY | libc::IN_CREATE,
                )
            }
        };
        // A directory's watch reports its files' changes too.
        if add(dir) < 0 {
            return Err(format!(
                "inotify {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            ));
        }
        let start = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let until2 = Arc::clone(&until);
        let path = path.to_path_buf();
        let prefix = format!("LATENCY{index}x");
        let thread = std::thread::spawn(move || {
            let mut file: Option<std::fs::File> = None;
            let mut pos = start;
            let mut rest: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut found = 0usize;
            let mut events = [0u8; 4096];
            while found < count {
                if until2
                    .lock()
                    .expect("not poisoned")
                    .is_some_and(|u| Instant::now() > u)
                {
                    return Ok(());
                }
                // Wait for a change (100 ms at most, to see `until`).
                let mut pfd = libc::pollfd {
                    fd: ino.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut pfd, 1, 100) };
                if n > 0 {
                    // SAFETY: reads into our buffer, at most its length.
                    unsafe {
                        libc::read(ino.as_raw_fd(), events.as_mut_ptr().cast(), events.len())
                    };
                }
                let now = Instant::now();
                if file.is_none() {
                    file = std::fs::File::open(&path).ok();
                }
                let Some(f) = file.as_mut() else { continue };
                f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
                loop {
                    let got = f.read(&mut buf).map_err(|e| e.to_string())?;
                    if got == 0 {
                        break;
                    }
                    pos += got as u64;
                    rest.extend_from_slice(&buf[..got]);
                }
                let whole = rest.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let mut a = arrivals.lock().expect("not poisoned");
                for line in rest[..whole].split(|&b| b == b'\n') {
                    let Some(at) = find(line, prefix.as_bytes()) else {
                        continue;
                    };
                    let digits = &line[at + prefix.len()..];
                    let end = digits.iter().position(|&b| b == b'y').unwrap_or(0);
                    if let Some(seq) = std::str::from_utf8(&digits[..end])
                        .ok()
                        .and_then(|s| s.parse().ok())
                    {
                        if a.insert(seq, now).is_none() {
                            found += 1;
                        }
                    }
                }
                rest.drain(..whole);
            }
            Ok(())
        });
        Ok(Watcher { thread, until })
    }

    /// Lets the thread look until `until`, then waits for it.
    fn finish(self, until: Instant) -> Result<(), String> {
        *self.until.lock().expect("not poisoned") = Some(until);
        self.thread
            .join()
            .map_err(|_| "the watcher panicked".to_string())?
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `q` quantile (nearest rank) of `v`, in microseconds; NaN when empty.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// Microseconds as milliseconds, two decimals.
fn ms(us: f64) -> String {
    if us.is_nan() {
        "-".into()
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// One table per scenario: a row per daemon with p50, p99, max and the messages lost.
pub fn tables(results: &Results) -> String {
    let mut out = String::from("Latency, send → line in the file (all rounds pooled)\n");
    for s in scenarios() {
        let mut kinds: Vec<Kind> = results
            .keys()
            .filter(|(sc, _)| *sc == s)
            .map(|(_, k)| *k)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        kinds.sort();
        out.push_str(&format!(
            "\n{} at {}/s ({} messages a round)\n\n| daemon | p50 | p99 | max | lost |\n|---|---|---|---|---|\n",
            s.transport.name(),
            s.rate,
            s.count
        ));
        for k in kinds {
            let x = &results[&(s, k)];
            let lost = x.sent.saturating_sub(x.micros.len());
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                k.name(),
                ms(percentile(&x.micros, 0.50)),
                ms(percentile(&x.micros, 0.99)),
                ms(percentile(&x.micros, 1.0)),
                if x.errors.is_empty() {
                    lost.to_string()
                } else {
                    format!(
                        "{lost} (error: {})",
                        x.errors[0].lines().next().unwrap_or("")
                    )
                }
            ));
        }
    }
    out
}
