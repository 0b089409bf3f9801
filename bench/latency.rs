//! The `latency` case of the side-by-side benchmark (issue 34): how long one message takes
//! from its `send` until its line is out of the daemon, at low rates, where nothing else makes
//! a batch.
//!
//! Per daemon, one fresh process runs every scenario in turn, each at [`SLOW_RATE`]
//! ([`SLOW_COUNT`] messages) and at [`FAST_RATE`] ([`FAST_COUNT`]):
//!
//! - **into the file**: TCP (one connection, opened before and kept open, `TCP_NODELAY`), UDP,
//!   a Unix datagram socket, and the journal (journald's native protocol to a private
//!   `systemd-journald` namespace, read by logwell's journal input; root only). A reader
//!   thread watches the file with inotify (`IN_MODIFY`) and reads what was appended.
//! - **forward**: TCP in, and each daemon's TCP forward action (logwell `forward`, rsyslog
//!   `omfwd`, syslog-ng `network()`) to a listener of this benchmark: from receipt to the
//!   send, plus the two loopback hops.
//! - **follow**: TCP in, and logwell's follow service (`/v1/follow`, SSE) streaming the
//!   file to a subscriber of this benchmark. The other daemons have no such service.
//! - **HTTP**: TCP in, and logwell's `http` output (NDJSON) to a minimal HTTP server of this
//!   benchmark, twice: with `linger_ms = 0` (a request as soon as the queue has records and
//!   none is in flight) and with the default `linger_ms` (200 ms). Debian's rsyslog has no
//!   `omhttp`, and the side-by-side syslog-ng config has no `http()` destination.
//!
//! Messages are sent one at a time on a fixed schedule (`t0 + i / rate`, not after the
//! previous one arrived), each carrying a unique token. Latency = the time the token was read
//! − the time just before its `send`. Waking the reader costs it some tens of microseconds,
//! the same for every daemon. Messages not found within [`GRACE`] after the last send count
//! as lost.
//!
//! The figures are p50, p99 and max over every round's samples.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read, Seek, SeekFrom, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::journald::Journald;
use testkit::ports::free_port;

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
    /// journald's native protocol, to a private namespace that logwell's journal input reads.
    Journal,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
            Transport::Unix => "Unix datagram",
            Transport::Journal => "journal",
        }
    }
}

/// Where the line is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sink {
    /// The output file.
    File,
    /// A TCP listener the daemon forwards to.
    Forward,
    /// logwell's follow service, as SSE events.
    Follow,
    /// logwell's `http` output with `linger_ms = 0`.
    Http,
    /// logwell's `http` output with its default `linger_ms`.
    HttpLinger,
}

impl Sink {
    fn name(self) -> &'static str {
        match self {
            Sink::File => "file",
            Sink::Forward => "forward (TCP)",
            Sink::Follow => "follow (SSE)",
            Sink::Http => "HTTP (linger_ms = 0)",
            Sink::HttpLinger => "HTTP (default linger_ms)",
        }
    }
}

/// One scenario: a transport into a sink at a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scenario {
    pub transport: Transport,
    pub sink: Sink,
    pub rate: u32,
    pub count: usize,
}

impl Scenario {
    /// Whether `kind` takes part. The follow service is logwell's own, and only logwell's
    /// journal input is set up on the private journald namespace.
    fn applies(self, kind: Kind) -> bool {
        match (self.transport, self.sink) {
            (_, Sink::Follow | Sink::Http | Sink::HttpLinger) | (Transport::Journal, _) => {
                kind == Kind::Logwell
            }
            _ => true,
        }
    }

    fn name(self) -> String {
        format!("{} → {}", self.transport.name(), self.sink.name())
    }
}

/// Every scenario, in the order they run.
pub fn scenarios() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (transport, sink) in [
        (Transport::Tcp, Sink::File),
        (Transport::Udp, Sink::File),
        (Transport::Unix, Sink::File),
        (Transport::Journal, Sink::File),
        (Transport::Tcp, Sink::Forward),
        (Transport::Tcp, Sink::Follow),
        (Transport::Tcp, Sink::Http),
        (Transport::Tcp, Sink::HttpLinger),
    ] {
        for (rate, count) in [(SLOW_RATE, SLOW_COUNT), (FAST_RATE, FAST_COUNT)] {
            v.push(Scenario {
                transport,
                sink,
                rate,
                count,
            });
        }
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

/// Arrival times by sequence number, shared with a reader thread.
type Arrivals = Arc<Mutex<HashMap<usize, Instant>>>;

/// Bytes as a reader thread read them, with the time it read them.
type Feed = mpsc::Receiver<(Vec<u8>, Instant)>;

/// What the scenarios past the file need beside the daemon: the forward listener's feed,
/// the follow subscription's feed, and the private journald.
struct Extras {
    forward_port: u16,
    forward: Arc<Mutex<Feed>>,
    /// The HTTP servers' ports and request bodies: `linger_ms = 0`, then the default.
    http: [(u16, Arc<Mutex<Feed>>); 2],
    follow_port: u16,
    follow: Option<Arc<Mutex<Feed>>>,
    journald: Result<Journald, String>,
    /// Tells the reader threads to end.
    stop: Arc<AtomicBool>,
}

impl Extras {
    /// Binds the forward listener and starts its reader threads; starts journald for logwell.
    fn start(kind: Kind) -> Result<Extras, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listener: {e}"))?;
        let forward_port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop2 = Arc::clone(&stop);
        std::thread::spawn(move || {
            // Each connection the daemon opens (a reconnect opens another) is read to its end.
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        read_into(conn, tx.clone(), Arc::clone(&stop2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        let http = [
            http_server(Arc::clone(&stop))?,
            http_server(Arc::clone(&stop))?,
        ];
        let journald = match kind {
            Kind::Logwell => Journald::start("lwlat"),
            _ => Err("only logwell's journal input is set up".into()),
        };
        Ok(Extras {
            forward_port,
            forward: Arc::new(Mutex::new(rx)),
            http,
            follow_port: free_port()?,
            follow: None,
            journald,
            stop,
        })
    }

    /// `config` with the forward action, and for logwell the follow service and the journal
    /// input, added.
    fn edit(&self, kind: Kind, config: String) -> String {
        let fwd = self.forward_port;
        match kind {
            Kind::Logwell => {
                let mut c = config;
                c.push_str(&format!(
                    "\n[output.fwd]\ntype = \"forward\"\ntargets = [\"127.0.0.1:{fwd}\"]\n\n\
                     [[rule]]\noutput = \"fwd\"\n\n\
                     [follow]\nlisten = \"127.0.0.1:{}\"\nallow_unauthenticated = true\n\n\
                     [output.http0]\ntype = \"http\"\nurl = \"http://127.0.0.1:{}/\"\nlinger_ms = 0\n\n\
                     [[rule]]\noutput = \"http0\"\n\n\
                     [output.http]\ntype = \"http\"\nurl = \"http://127.0.0.1:{}/\"\n\n\
                     [[rule]]\noutput = \"http\"\n",
                    self.follow_port, self.http[0].0, self.http[1].0
                ));
                if let Ok(j) = &self.journald {
                    c.push_str(&format!(
                        "\n[input.journal]\ntype = \"journal\"\nnamespace = \"{}\"\n",
                        j.ns
                    ));
                }
                c
            }
            Kind::Rsyslog => config.replace(
                "ioBufferSize=\"64k\")\n",
                &format!(
                    "ioBufferSize=\"64k\")\n  action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{fwd}\" protocol=\"tcp\")\n"
                ),
            ),
            _ => {
                let mut c = config;
                c.push_str(&format!(
                    "destination d_fwd {{ network(\"127.0.0.1\" port({fwd}) transport(\"tcp\")); }};\n\
                     log {{ source(s_bench); destination(d_fwd); }};\n"
                ));
                c
            }
        }
    }

    /// Subscribes to logwell's follow service (from the file's end, as `cat` lines).
    fn subscribe(&mut self) -> Result<(), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.follow_port))
            .map_err(|e| format!("follow: {e}"))?;
        write!(
            s,
            "GET /v1/follow?file=out&n=0&o=cat HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.follow_port
        )
        .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        // The start point is fixed once the stream says `: logwell`.
        let mut r = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return Err("follow: the stream ended before it began".into()),
                Ok(_) if line.starts_with(": logwell") => break,
                Ok(_) => {}
            }
        }
        let (tx, rx) = mpsc::channel();
        let buffered = r.buffer().to_vec();
        if !buffered.is_empty() {
            let _ = tx.send((buffered, Instant::now()));
        }
        read_into(r.into_inner(), tx, Arc::clone(&self.stop));
        self.follow = Some(Arc::new(Mutex::new(rx)));
        Ok(())
    }
}

impl Drop for Extras {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A minimal HTTP/1.1 server on a free loopback port: every request's body goes to the feed
/// with the time it was read in full, and gets `200 OK`.
fn http_server(stop: Arc<AtomicBool>) -> Result<(u16, Arc<Mutex<Feed>>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listener: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let (tx, stop) = (tx.clone(), Arc::clone(&stop));
            std::thread::spawn(move || serve_http(conn, &tx, &stop));
        }
    });
    Ok((port, Arc::new(Mutex::new(rx))))
}

/// Answers one connection's requests (keep-alive) until it closes or `stop`.
fn serve_http(conn: TcpStream, tx: &mpsc::Sender<(Vec<u8>, Instant)>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        // The head: the request line and headers, up to an empty line.
        let mut length = 0usize;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if timed_out(&e) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        let mut got = 0;
        while got < length {
            match r.read(&mut body[got..]) {
                Ok(0) => return,
                Ok(n) => got += n,
                Err(e) if timed_out(&e) => {}
                Err(_) => return,
            }
        }
        if tx.send((body, Instant::now())).is_err()
            || out
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .is_err()
        {
            return;
        }
    }
}

/// A read that ended at its timeout (the socket's `set_read_timeout`), not in an error.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A thread that reads `conn` until its end (or `stop`), sending what it reads with the time.
fn read_into(conn: TcpStream, tx: mpsc::Sender<(Vec<u8>, Instant)>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut conn = conn;
        let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = vec![0u8; 1 << 16];
        while !stop.load(Ordering::Relaxed) {
            match conn.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.send((buf[..n].to_vec(), Instant::now())).is_err() {
                        return;
                    }
                }
                Err(e) if timed_out(&e) => {}
                Err(_) => return,
            }
        }
    });
}

/// Runs every scenario against one fresh `kind` process, adding to `results`.
pub fn run(kind: Kind, case: &Case, peers: &Peers, results: &mut Results) {
    let started = Extras::start(kind).and_then(|mut x| {
        let r = Receiver::start_with(kind, case, peers, |c| x.edit(kind, c))?;
        if kind == Kind::Logwell {
            x.subscribe()?;
        }
        Ok((r, x))
    });
    let (r, x) = match started {
        Ok(v) => v,
        Err(e) => {
            for s in scenarios().into_iter().filter(|s| s.applies(kind)) {
                results.entry((s, kind)).or_default().errors.push(e.clone());
            }
            return;
        }
    };
    for (i, s) in scenarios().into_iter().enumerate() {
        if !s.applies(kind) {
            continue;
        }
        let out = results.entry((s, kind)).or_default();
        let cpu = r.cpu_secs();
        match scenario(&r, &x, s, i) {
            Ok((micros, sent)) => {
                out.sent += sent;
                let found = micros.len();
                out.micros.extend(micros);
                // The daemon's CPU while the scenario ran (sending, then the grace period).
                let cpu_ms = (r.cpu_secs() - cpu) * 1000.0;
                println!(
                    "  latency    {:<16} {:<30} {:>5}/s  p50 {:>8}  p99 {:>8}  max {:>8}  lost {}  CPU {cpu_ms:.0} ms",
                    kind.name(),
                    s.name(),
                    s.rate,
                    ms(percentile(&out.micros, 0.50)),
                    ms(percentile(&out.micros, 0.99)),
                    ms(percentile(&out.micros, 1.0)),
                    sent - found
                );
            }
            Err(e) => {
                println!("  latency    {:<16} {}: {e}", kind.name(), s.name());
                out.errors.push(e);
            }
        }
    }
    let mut r = r;
    r.stop();
}

/// Sends one scenario's messages and times them; returns the latencies found and how many
/// were sent. `index` makes the tokens unique within the process's run.
fn scenario(
    r: &Receiver,
    x: &Extras,
    s: Scenario,
    index: usize,
) -> Result<(Vec<f64>, usize), String> {
    let mut send = sender(r, x, s.transport)?;
    let arrivals: Arrivals = Arc::default();
    let prefix = format!("LATENCY{index}x");
    let watcher = match s.sink {
        Sink::File => Watcher::file(&r.output, prefix, s.count, Arc::clone(&arrivals))?,
        Sink::Forward => Watcher::feed(&x.forward, prefix, s.count, Arc::clone(&arrivals)),
        Sink::Follow => {
            let feed = x.follow.as_ref().ok_or("no follow subscription")?;
            Watcher::feed(feed, prefix, s.count, Arc::clone(&arrivals))
        }
        Sink::Http => Watcher::feed(&x.http[0].1, prefix, s.count, Arc::clone(&arrivals)),
        Sink::HttpLinger => Watcher::feed(&x.http[1].1, prefix, s.count, Arc::clone(&arrivals)),
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(s.rate));
    let mut sent_at = Vec::with_capacity(s.count);
    let t0 = Instant::now() + Duration::from_millis(50);
    for seq in 0..s.count {
        let due = t0 + interval * seq as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let text = format!("LATENCY{index}x{seq}y");
        let at = Instant::now();
        send(&text).map_err(|e| format!("{} send: {e}", s.transport.name()))?;
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

/// Sends one message's text.
type Send<'a> = Box<dyn FnMut(&str) -> std::io::Result<()> + 'a>;

/// An RFC 3164 line around `text`.
fn line(text: &str) -> String {
    format!("<13>Dec  7 12:00:00 benchhost latency: {text}")
}

fn sender<'a>(r: &Receiver, x: &'a Extras, t: Transport) -> Result<Send<'a>, String> {
    match t {
        Transport::Tcp => {
            let mut c = TcpStream::connect(("127.0.0.1", r.port))
                .map_err(|e| format!("TCP connect: {e}"))?;
            c.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(Box::new(move |text| {
                c.write_all(format!("{}\n", line(text)).as_bytes())
            }))
        }
        Transport::Udp => {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.connect(("127.0.0.1", r.port))
                .map_err(|e| format!("UDP connect: {e}"))?;
            // A datagram is one message: no trailing newline.
            Ok(Box::new(move |text| {
                s.send(line(text).as_bytes()).map(drop)
            }))
        }
        Transport::Unix => {
            let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            s.connect(&r.unix)
                .map_err(|e| format!("{}: {e}", r.unix.display()))?;
            Ok(Box::new(move |text| {
                s.send(line(text).as_bytes()).map(drop)
            }))
        }
        Transport::Journal => {
            let j = x.journald.as_ref().map_err(|e| format!("journald: {e}"))?;
            let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            Ok(Box::new(move |text| {
                j.send(
                    &s,
                    &[
                        ("MESSAGE", text.as_bytes()),
                        ("SYSLOG_IDENTIFIER", b"latency"),
                        ("PRIORITY", b"5"),
                    ],
                )
            }))
        }
    }
}

/// Finds one scenario's tokens (`PREFIX<seq>y`) in bytes read in pieces, noting when each
/// was first read.
struct Scanner {
    prefix: Vec<u8>,
    /// What was read and not yet scanned to its end: a token may be cut between two reads.
    rest: Vec<u8>,
    found: usize,
}

impl Scanner {
    fn new(prefix: String) -> Scanner {
        Scanner {
            prefix: prefix.into_bytes(),
            rest: Vec::new(),
            found: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8], now: Instant, arrivals: &Arrivals) {
        self.rest.extend_from_slice(bytes);
        let mut a = arrivals.lock().expect("not poisoned");
        let mut at = 0;
        let mut cut = None;
        while let Some(i) = find(&self.rest[at..], &self.prefix) {
            let digits = at + i + self.prefix.len();
            match self.rest[digits..].iter().position(|b| !b.is_ascii_digit()) {
                Some(n) => {
                    if self.rest[digits + n] == b'y' {
                        let seq = std::str::from_utf8(&self.rest[digits..digits + n])
                            .ok()
                            .and_then(|d| d.parse().ok());
                        if let Some(seq) = seq {
                            if let std::collections::hash_map::Entry::Vacant(e) = a.entry(seq) {
                                e.insert(now);
                                self.found += 1;
                            }
                        }
                    }
                    at = digits + n;
                }
                None => {
                    cut = Some(at + i);
                    break;
                }
            }
        }
        // Keep a token cut short, or what could be the start of the prefix.
        let keep = cut.unwrap_or_else(|| {
            self.rest
                .len()
                .saturating_sub(self.prefix.len() - 1)
                .max(at)
        });
        self.rest.drain(..keep);
    }
}

/// A thread that notes when each of one scenario's tokens was read.
struct Watcher {
    thread: std::thread::JoinHandle<Result<(), String>>,
    /// Until when the thread keeps looking (set once the sends are done).
    until: Arc<Mutex<Option<Instant>>>,
}

impl Watcher {
    /// Reads what is appended to the file at `path`, woken by inotify.
    fn file(
        path: &Path,
        prefix: String,
        count: usize,
        arrivals: Arrivals,
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
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: a valid descriptor and a NUL-terminated path. A directory's watch reports
        // its files' changes too.
        let watch = unsafe {
            libc::inotify_add_watch(
                ino.as_raw_fd(),
                c.as_ptr(),
                libc::IN_MODIFY | libc::IN_CREATE,
            )
        };
        if watch < 0 {
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
        let thread = std::thread::spawn(move || {
            let mut scan = Scanner::new(prefix);
            let mut file: Option<std::fs::File> = None;
            let mut pos = start;
            let mut buf = vec![0u8; 1 << 16];
            let mut events = [0u8; 4096];
            while scan.found < count && !passed(&until2) {
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
                    scan.feed(&buf[..got], now, &arrivals);
                }
            }
            Ok(())
        });
        Ok(Watcher { thread, until })
    }

    /// Reads what a reader thread sends on `feed` (the forward listener, the follow stream).
    fn feed(feed: &Arc<Mutex<Feed>>, prefix: String, count: usize, arrivals: Arrivals) -> Watcher {
        let until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let until2 = Arc::clone(&until);
        let feed = Arc::clone(feed);
        let thread = std::thread::spawn(move || {
            let feed = feed.lock().expect("not poisoned");
            let mut scan = Scanner::new(prefix);
            while scan.found < count && !passed(&until2) {
                match feed.recv_timeout(Duration::from_millis(100)) {
                    Ok((bytes, at)) => scan.feed(&bytes, at, &arrivals),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err("the connection ended".into())
                    }
                }
            }
            Ok(())
        });
        Watcher { thread, until }
    }

    /// Lets the thread look until `until`, then waits for it.
    fn finish(self, until: Instant) -> Result<(), String> {
        *self.until.lock().expect("not poisoned") = Some(until);
        self.thread
            .join()
            .map_err(|_| "the watcher panicked".to_string())?
    }
}

/// Whether the deadline in `until` (once set) has passed.
fn passed(until: &Mutex<Option<Instant>>) -> bool {
    until
        .lock()
        .expect("not poisoned")
        .is_some_and(|u| Instant::now() > u)
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
    let mut out = String::from("Latency, send → line out of the daemon (all rounds pooled)\n");
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
            s.name(),
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
