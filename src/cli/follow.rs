//! `logwell follow` and `logwell show`: read a file through the daemon's follow service, as
//! `journalctl -f` and `journalctl` do. Owns the flags, finding the daemon (`--url`,
//! `--host` or `--socket`, then `LOGWELL_URL`, then the config file's `[follow]`: its
//! `socket`, else its first `listen` with its token; then the local socket
//! `/run/logwell/follow.sock`), the SSE client with resumption, and the printing (severity
//! colours on a terminal, none when piped; control characters in the text escaped as the
//! files escape them, `#033`, on a terminal, unless `--all`).
//!
//! The server filters; the client always asks for JSON events and renders them itself, so
//! colours and `-o` work on every file. A cursor C is the event id of one line (the position
//! just after it): `--cursor C` starts at that line (the server's `cursor=`, inclusive, as
//! journalctl's), `--after-cursor C` and `--cursor-file` just after it (`after=`).
//!
//! `--cursor-file` is saved whenever the client stops: at the end of the stream, on SIGINT
//! or SIGTERM, and when standard output is closed (EPIPE, noticed at the next write). It
//! holds the cursor of the last line actually written to standard output (lines are
//! buffered, and a line counts once its buffer was written), and is replaced atomically (a
//! temporary file in the same directory, then a rename), so an interrupted save never
//! leaves half a cursor.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::follow::line::Fields;
use crate::follow::request::OutputFormat;
use crate::message::{Facility, Severity};
use crate::store::history::Position;

/// Arguments shared by `follow` and `show`.
#[derive(Debug, clap::Args)]
pub struct FollowArgs {
    /// The file to read, by name (`logwell show --list` lists them); the daemon's default
    /// file when omitted.
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
    /// List the followable files, then the files the file inputs read with their lag, and
    /// exit.
    #[arg(long)]
    pub list: bool,
    /// Keep printing new lines (the default of `follow`).
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Do not follow: print the history and exit (the default of `show`).
    #[arg(long = "no-follow", conflicts_with = "follow")]
    pub no_follow: bool,
    /// Show the last N lines first (`all` for every line); follow: 10, show: all.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<String>,
    /// Only this priority or range: `err`, `warning..emerg`, `0..3`.
    #[arg(short = 'p', long = "priority", value_name = "PRIORITY")]
    pub priority: Option<String>,
    /// Only these facilities: `auth,authpriv`.
    #[arg(long = "facility", value_name = "FACILITY")]
    pub facility: Option<String>,
    /// Only this program (repeatable).
    #[arg(short = 't', long = "identifier", value_name = "TAG")]
    pub tag: Vec<String>,
    /// Only messages from this host name (repeatable).
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostname: Vec<String>,
    /// Only messages whose text matches this regular expression.
    #[arg(short = 'g', long = "grep", value_name = "PATTERN")]
    pub grep: Option<String>,
    /// Start at the first line at or after TIME (`2026-11-21 09:00`, `today`, `-1h`).
    #[arg(short = 'S', long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Stop at the first line at or after TIME.
    #[arg(short = 'U', long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Output: short, short-iso, json, cat, raw.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "short"
    )]
    pub output: String,
    /// Newest first (history only).
    #[arg(short = 'r', long)]
    pub reverse: bool,
    /// Start at the line whose cursor this is (it is printed again).
    #[arg(long, value_name = "CURSOR", conflicts_with = "after_cursor")]
    pub cursor: Option<String>,
    /// Start just after the line whose cursor this is.
    #[arg(long, value_name = "CURSOR")]
    pub after_cursor: Option<String>,
    /// Print the cursor after the last line (`-- cursor: …`).
    #[arg(long)]
    pub show_cursor: bool,
    /// Start after the cursor saved in FILE (if it exists); save the cursor of the last line
    /// printed to it when stopping (end, Ctrl-C, SIGTERM, closed output).
    #[arg(long, value_name = "FILE")]
    pub cursor_file: Option<PathBuf>,
    /// The follow service's URL (`http://host:8514`, `https://…`).
    #[arg(long, value_name = "URL", conflicts_with_all = ["host", "socket"])]
    pub url: Option<String>,
    /// The follow service's local socket (default: the config's `[follow] socket`, else
    /// `/run/logwell/follow.sock`); it serves root and group adm.
    #[arg(long, value_name = "PATH", conflicts_with = "host")]
    pub socket: Option<PathBuf>,
    /// A remote daemon: `HOST` or `HOST:PORT` (http, port 8514).
    #[arg(short = 'H', long, value_name = "HOST")]
    pub host: Option<String>,
    /// The bearer token.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the bearer token from FILE.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA bundle (PEM) to verify an https server with (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Colour by severity: auto (on a terminal), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: String,
    /// Print control characters in messages as they are, even on a terminal (where they are
    /// shown as `#033`, as in the files, so a message cannot drive the terminal).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Accepted for journalctl's users and ignored: logwell never starts a pager.
    #[arg(long)]
    pub no_pager: bool,
    /// Find the follow service (and its token) in this config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logwell/logwell.toml"
    )]
    pub config: PathBuf,
}

/// Where the follow service is, and how to authenticate.
struct Endpoint {
    /// The local socket; `base` is then `http://localhost`.
    socket: Option<PathBuf>,
    base: hyper::Uri,
    token: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Runs `follow` (`follow = true`) or `show`.
pub fn run(args: &FollowArgs, follow_by_default: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(run_async(args, follow_by_default))
}

async fn run_async(args: &FollowArgs, follow_by_default: bool) -> Result<(), String> {
    let format = OutputFormat::from_name(&args.output).ok_or_else(|| {
        format!(
            "unknown output `{}`: use short, short-iso, json, cat or raw",
            args.output
        )
    })?;
    let endpoint = endpoint(args)?;
    if args.list {
        return list(&endpoint).await;
    }
    let follow = (follow_by_default || args.follow) && !args.no_follow;
    if args.reverse && follow {
        return Err(
            "-r/--reverse shows history newest first, so it cannot follow; use `logwell show -r`"
                .into(),
        );
    }
    let mut resume = Resume {
        cursor: args.cursor.clone().or(args.after_cursor.clone()),
        inclusive: args.cursor.is_some(),
    };
    if let Some(f) = &args.cursor_file {
        if resume.cursor.is_none() {
            resume.cursor = std::fs::read_to_string(f)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
    }
    if let Some(c) = &resume.cursor {
        c.parse::<Position>().map_err(|e| e.to_string())?;
    }
    // Installed before the first request, so that a stop at any point saves the cursor.
    let signal =
        |kind| tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("format", "json");
    query.append_pair("follow", if follow { "true" } else { "false" });
    if let Some(f) = &args.file {
        query.append_pair("file", f);
    }
    let lines = args
        .lines
        .clone()
        .unwrap_or_else(|| if follow { "10".into() } else { "all".into() });
    query.append_pair("n", &lines);
    for (key, value) in [
        ("p", &args.priority),
        ("facility", &args.facility),
        ("g", &args.grep),
        ("since", &args.since),
        ("until", &args.until),
    ] {
        if let Some(v) = value {
            query.append_pair(key, v);
        }
    }
    for t in &args.tag {
        query.append_pair("t", t);
    }
    for h in &args.hostname {
        query.append_pair("host", h);
    }
    let query = query.finish();
    let colour = match args.color.as_str() {
        "always" => true,
        "never" => false,
        "auto" => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        other => return Err(format!("--color {other}: use auto, always or never")),
    };
    let mut printer = Printer {
        format,
        colour,
        escape: escape_controls(std::io::stdout().is_terminal(), args.all),
        reverse: args.reverse.then(Vec::new),
        last: resume.cursor.clone(),
        buf: Vec::new(),
        buf_last: None,
        out: std::io::stdout().lock(),
        closed: false,
    };
    // A signal drops the stream between two events: what was printed is whole, and
    // `printer.last` is the cursor of the last line written out.
    let result = tokio::select! {
        r = stream(&endpoint, &query, &mut resume, follow, &mut printer) => r,
        _ = interrupt.recv() => Ok(()),
        _ = terminate.recv() => Ok(()),
    };
    let finished = printer.finish();
    if let (Some(f), Some(c)) = (&args.cursor_file, &printer.last) {
        save_cursor(f, c)?;
    }
    finished?;
    if args.show_cursor && !printer.closed {
        if let Some(c) = &printer.last {
            println!("-- cursor: {c}");
        }
    }
    result
}

/// Replaces `file` with `cursor` atomically: a temporary file beside it, synced, then
/// renamed over it.
fn save_cursor(file: &Path, cursor: &str) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot save the cursor to {}: {e}", file.display());
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = file.with_file_name(name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{cursor}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(())
}

/// Where the next request starts.
struct Resume {
    /// The cursor of the last line received (or the one given).
    cursor: Option<String>,
    /// Start at the cursor's line itself (`--cursor`), until a line was received.
    inclusive: bool,
}

/// Reads events; when following, reconnects after a lost connection and resumes after the
/// last line printed, as a browser's EventSource does.
async fn stream(
    endpoint: &Endpoint,
    query: &str,
    resume: &mut Resume,
    follow: bool,
    printer: &mut Printer<'_>,
) -> Result<(), String> {
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut q = query.to_string();
        if let Some(c) = resume.cursor.as_deref() {
            q.push_str(if resume.inclusive {
                "&cursor="
            } else {
                "&after="
            });
            q.push_str(c);
        }
        let outcome = one_stream(endpoint, &q, resume, printer).await;
        match outcome {
            Ok(Ended::End) => return Ok(()),
            Ok(Ended::Closed) if !follow => return Ok(()),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(e)) if !follow => return Err(e),
            Ok(Ended::Closed) | Err(Failure::Retry(_)) => {
                printer.flush();
                if let Err(Failure::Retry(e)) = &outcome {
                    eprintln!("logwell: {e}; reconnecting");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

enum Ended {
    /// The server said the history is over.
    End,
    /// The connection closed.
    Closed,
}

enum Failure {
    /// Worth retrying (the daemon restarting).
    Retry(String),
    /// Not (a bad request, no permission).
    Fatal(String),
}

async fn one_stream(
    endpoint: &Endpoint,
    query: &str,
    resume: &mut Resume,
    printer: &mut Printer<'_>,
) -> Result<Ended, Failure> {
    let mut body = get(
        endpoint,
        &format!("/v1/follow?{query}"),
        "text/event-stream",
    )
    .await?;
    let mut buf: Vec<u8> = Vec::new();
    let mut event = SseEvent::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Retry(format!("connection lost: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = memchr::memchr(b'\n', &buf) {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if !line.is_empty() {
                event.push(line);
                continue;
            }
            let done = std::mem::take(&mut event);
            match done.kind.as_deref() {
                None | Some("message") if done.data.is_some() => {
                    if let Some(id) = &done.id {
                        resume.cursor = Some(id.clone());
                        resume.inclusive = false;
                    }
                    printer.line(done.data.as_deref().unwrap_or_default(), done.id.as_deref());
                }
                Some("end") => return Ok(Ended::End),
                Some("gap") | Some("warning") => {
                    printer.flush();
                    let reason = serde_json::from_str::<serde_json::Value>(
                        done.data.as_deref().unwrap_or("{}"),
                    )
                    .ok()
                    .and_then(|v| v["reason"].as_str().map(str::to_string))
                    .unwrap_or_default();
                    eprintln!(
                        "-- {}: {reason} --",
                        done.kind.as_deref().unwrap_or_default()
                    );
                }
                _ => {}
            }
        }
        printer.flush();
        if printer.closed {
            return Ok(Ended::End); // standard output is gone: nothing more to do
        }
    }
    Ok(Ended::Closed)
}

/// One SSE event being assembled.
#[derive(Default)]
struct SseEvent {
    id: Option<String>,
    kind: Option<String>,
    data: Option<String>,
}

impl SseEvent {
    fn push(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_string()),
            "event" => self.kind = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }
}

/// Whether control characters in the text are escaped: on a terminal, unless `--all`. A
/// message holding `ESC ]…` (or CSI, or a bare CR) would otherwise set the terminal's title,
/// rewrite what is shown, or worse; piped, the bytes go through as they are.
fn escape_controls(terminal: bool, all: bool) -> bool {
    terminal && !all
}

/// `line` with its control characters (C0, DEL, C1) as `#ooo`, as the file outputs write
/// them, when `escape`; as it is otherwise (or when it holds none).
fn terminal_safe(line: &[u8], escape: bool) -> std::borrow::Cow<'_, [u8]> {
    if !escape {
        return line.into();
    }
    let mut out = Vec::with_capacity(line.len());
    crate::render::format::push_escaped(&mut out, line);
    if out == line {
        line.into()
    } else {
        out.into()
    }
}

/// Prints lines in the chosen format, coloured by severity on a terminal.
struct Printer<'a> {
    format: OutputFormat,
    colour: bool,
    /// Escape control characters in the text (on a terminal, unless `--all`).
    escape: bool,
    /// With `-r`: lines kept to print newest first at the end.
    reverse: Option<Vec<Vec<u8>>>,
    /// The cursor of the last line written out to standard output (or the one started
    /// from): what `--cursor-file` saves.
    last: Option<String>,
    /// Lines not yet written out, and the cursor of the last of them.
    buf: Vec<u8>,
    buf_last: Option<String>,
    out: std::io::StdoutLock<'a>,
    /// Standard output was closed (EPIPE): nothing more is printed.
    closed: bool,
}

/// Lines are written out at the end of each piece of the stream, or when this many bytes
/// are waiting.
const PRINT_BUFFER: usize = 64 * 1024;

impl Printer<'_> {
    fn line(&mut self, data: &str, id: Option<&str>) {
        if id.is_some() {
            self.buf_last = id.map(str::to_string);
        }
        let mut out = Vec::with_capacity(data.len());
        let severity = match serde_json::from_str::<serde_json::Value>(data) {
            Ok(v) => {
                if self.format == OutputFormat::Json {
                    out.extend_from_slice(data.as_bytes());
                } else {
                    let fields = Fields {
                        time: v["time"]
                            .as_str()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&chrono::Utc)),
                        host: v["host"].as_str().map(|s| s.to_string().into()),
                        tag: v["tag"].as_str().map(|s| s.to_string().into()),
                        pid: v["pid"].as_str().map(|s| s.to_string().into()),
                        facility: v["facility"].as_str().and_then(Facility::from_name),
                        severity: v["severity"].as_str().and_then(Severity::from_name),
                        msg: v["msg"].as_str().unwrap_or_default().to_string().into(),
                    };
                    let stored = v["line"].as_str().unwrap_or_default();
                    let cursor = id.and_then(|c| c.parse().ok()).unwrap_or(Position {
                        generation: 0,
                        offset: 0,
                    });
                    let file = v["file"].as_str().unwrap_or_default();
                    fields.render(self.format, stored.as_bytes(), cursor, file, &mut out);
                }
                v["priority"].as_u64()
            }
            Err(_) => {
                out.extend_from_slice(data.as_bytes());
                None
            }
        };
        let colour = match severity {
            _ if !self.colour => None,
            Some(0..=3) => Some("\x1b[1;31m"),
            Some(4) => Some("\x1b[1;33m"),
            Some(5) => Some("\x1b[1m"),
            Some(7) => Some("\x1b[2m"),
            _ => None,
        };
        let out = terminal_safe(&out, self.escape);
        let mut line = Vec::with_capacity(out.len() + 12);
        if let Some(c) = colour {
            line.extend_from_slice(c.as_bytes());
            line.extend_from_slice(&out);
            line.extend_from_slice(b"\x1b[0m");
        } else {
            line.extend_from_slice(&out);
        }
        line.push(b'\n');
        match &mut self.reverse {
            Some(kept) => kept.push(line),
            None => {
                self.buf.extend_from_slice(&line);
                if self.buf.len() >= PRINT_BUFFER {
                    self.flush();
                }
            }
        }
    }

    /// Writes the waiting lines out; once written, their last cursor counts as printed.
    fn flush(&mut self) {
        let _ = self.write_out();
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        if self.closed {
            self.buf.clear();
            return Ok(());
        }
        let written = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.buf.clear();
        match written {
            Ok(()) => {
                if let Some(c) = self.buf_last.take() {
                    self.last = Some(c);
                }
                Ok(())
            }
            Err(e) => {
                // Closed (EPIPE) or failing: either way nothing more gets printed.
                self.closed = true;
                self.buf_last = None;
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(kept) = self.reverse.take() {
            for l in kept.iter().rev() {
                self.buf.extend_from_slice(l);
            }
        }
        self.write_out()
            .map_err(|e| format!("cannot write to standard output: {e}"))
    }
}

async fn list(endpoint: &Endpoint) -> Result<(), String> {
    let mut body = get(endpoint, "/v1/files", "application/json")
        .await
        .map_err(|f| match f {
            Failure::Retry(e) | Failure::Fatal(e) => e,
        })?;
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame.map_err(|e| e.to_string())?.into_data() {
            all.extend_from_slice(&d);
        }
    }
    let v: serde_json::Value =
        serde_json::from_slice(&all).map_err(|e| format!("bad answer from the daemon: {e}"))?;
    println!("{:<24} {:<12} {:>12}  PATH", "NAME", "FORMAT", "SIZE");
    for f in v["files"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:<12} {:>12}  {}{}",
            f["name"].as_str().unwrap_or_default(),
            f["format"].as_str().unwrap_or_default(),
            f["size"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            f["path"].as_str().unwrap_or_default(),
            if f["default"].as_bool() == Some(true) {
                "  (default)"
            } else {
                ""
            }
        );
    }
    // The files the file inputs read, and how far behind their writers they are.
    let watched = v["watched"].as_array().map_or(&[][..], Vec::as_slice);
    if !watched.is_empty() {
        println!();
        println!(
            "{:<24} {:>12} {:>12} {:>12}  PATH (watched by file inputs)",
            "INPUT", "LAG", "OFFSET", "SIZE"
        );
        for w in watched {
            println!(
                "{:<24} {:>12} {:>12} {:>12}  {}{}",
                w["input"].as_str().unwrap_or_default(),
                w["lag_bytes"].as_u64().unwrap_or_default(),
                w["offset"].as_u64().unwrap_or_default(),
                w["size"].as_u64().unwrap_or_default(),
                w["path"].as_str().unwrap_or_default(),
                if w["rotated"].as_bool() == Some(true) {
                    "  (rotated)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// Sends a GET and returns the body of a 200 answer; any other status is an error with the
/// server's message.
async fn get(
    endpoint: &Endpoint,
    path_and_query: &str,
    accept: &str,
) -> Result<hyper::body::Incoming, Failure> {
    let mut req = hyper::Request::get(path_and_query)
        .header(hyper::header::ACCEPT, accept)
        .header(
            hyper::header::USER_AGENT,
            concat!("logwell/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = &endpoint.token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(path) = &endpoint.socket {
        let unix = tokio::net::UnixStream::connect(path).await.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    "is logwelld running, with `socket` in [follow]?"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "the follow socket serves root and the members of group adm"
                }
                _ => "is logwelld running?",
            };
            Failure::Retry(format!(
                "cannot connect to {}: {e} ({hint})",
                path.display()
            ))
        })?;
        let req = req
            .header(hyper::header::HOST, "localhost")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| Failure::Fatal(e.to_string()))?;
        let response = send(TokioIo::new(unix), req).await?;
        return answered(response).await;
    }
    let authority = endpoint
        .base
        .authority()
        .ok_or_else(|| Failure::Fatal(format!("{}: no host in the URL", endpoint.base)))?
        .clone();
    let https = endpoint.base.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| {
            Failure::Retry(format!(
                "cannot connect to {authority}: {e} (is logwelld running with a [follow] section?)"
            ))
        })?;
    let _ = tcp.set_nodelay(true);
    let req = req
        .header(hyper::header::HOST, authority.as_str())
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| Failure::Fatal(e.to_string()))?;
    let response = if https {
        let config = endpoint
            .tls
            .clone()
            .ok_or_else(|| Failure::Fatal("https needs TLS settings".into()))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Failure::Fatal(format!("{host}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Fatal(format!("TLS with {authority} failed: {e}")))?;
        send(TokioIo::new(tls), req).await?
    } else {
        send(TokioIo::new(tcp), req).await?
    };
    answered(response).await
}

/// The body of a 200 answer; any other status is an error with the server's message.
async fn answered(
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<hyper::body::Incoming, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.into_body());
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let e = format!("{status}: {message}");
    Err(if status.is_server_error() {
        Failure::Retry(e)
    } else {
        Failure::Fatal(e)
    })
}

async fn send<I>(
    io: I,
    req: hyper::Request<http_body_util::Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, Failure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::Retry(format!("HTTP handshake failed: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| Failure::Retry(format!("request failed: {e}")))
}

/// The follow service to use: `--url`/`--host`, `LOGWELL_URL`, the config file's `[follow]`,
/// or the default address.
fn endpoint(args: &FollowArgs) -> Result<Endpoint, String> {
    let mut token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the token from {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let mut tls_in_config = false;
    let mut socket = None;
    let url = if let Some(u) = &args.url {
        u.clone()
    } else if let Some(h) = &args.host {
        // `host:port` and `[v6]:port` name a port; a bare host or IPv6 address gets 8514.
        let has_port = if h.starts_with('[') {
            h.contains("]:")
        } else {
            h.matches(':').count() == 1
        };
        if has_port {
            format!("http://{h}")
        } else {
            format!("http://{h}:8514")
        }
    } else if let Some(p) = &args.socket {
        socket = Some(p.clone());
        LOCAL_URL.to_string()
    } else if let Ok(u) = std::env::var("LOGWELL_URL") {
        match u.strip_prefix("unix:") {
            Some(p) => {
                socket = Some(PathBuf::from(p));
                LOCAL_URL.to_string()
            }
            None => u,
        }
    } else {
        match from_config(&args.config) {
            Some(Found::Socket(p)) => {
                socket = Some(p);
                LOCAL_URL.to_string()
            }
            Some(Found::Tcp(url, config_token, tls)) => {
                token = token.or(config_token);
                tls_in_config = tls;
                url
            }
            // No readable config (a user not allowed to read it, or its token file), or no
            // [follow] in it: the shipped local socket.
            None => {
                socket = Some(PathBuf::from(crate::config::DEFAULT_FOLLOW_SOCKET));
                LOCAL_URL.to_string()
            }
        }
    };
    let base: hyper::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    let https = base.scheme_str() == Some("https");
    let tls = if https || tls_in_config {
        Some(client_tls(args)?)
    } else {
        None
    };
    Ok(Endpoint {
        socket,
        base,
        token,
        tls,
    })
}

/// The URL requests on the local socket are made to.
const LOCAL_URL: &str = "http://localhost";

/// What a config file says about reaching its follow service.
enum Found {
    /// Its local socket.
    Socket(PathBuf),
    /// A TCP listener's URL, its token if readable, and whether it uses TLS.
    Tcp(String, Option<String>, bool),
}

/// The follow service of a readable config: its local socket, or else its first `listen`
/// address (with its token, and whether it uses TLS).
fn from_config(path: &Path) -> Option<Found> {
    if !path.exists() {
        return None;
    }
    let settings = crate::config::load(&crate::config::ConfigPaths::beside(path)).ok()?;
    let follow = settings.follow?;
    if let Some(socket) = follow.socket {
        return Some(Found::Socket(socket));
    }
    let mut addr = *follow.listen.first()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if follow.tls.is_some() {
        "https"
    } else {
        "http"
    };
    Some(Found::Tcp(
        format!("{scheme}://{addr}"),
        follow.token,
        follow.tls.is_some(),
    ))
}

fn client_tls(args: &FollowArgs) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bundle = args
        .cacert
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let pem = std::fs::read(&bundle).map_err(|e| {
        format!(
            "cannot read the CA bundle {}: {e} (give one with --cacert)",
            bundle.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
        let _ = roots.add(c);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read {}: {e}", cert.display()))?
                .filter_map(Result::ok)
                .collect();
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("the client certificate and key do not fit: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_on_a_terminal_unless_all() {
        assert!(escape_controls(true, false));
        assert!(!escape_controls(true, true), "--all");
        assert!(!escape_controls(false, false), "piped: as it is");
        assert!(!escape_controls(false, true));
    }

    #[test]
    fn escaped_text_cannot_drive_the_terminal() {
        // OSC (set the title), CSI (clear the screen), a bare CR, BEL, and C1 CSI.
        let hostile = "a\x1b]0;owned\x07b\x1b[2Jc\rd\u{9b}31m é".as_bytes();
        let safe = terminal_safe(hostile, true);
        assert_eq!(
            std::str::from_utf8(&safe).unwrap(),
            "a#033]0;owned#007b#033[2Jc#015d#302#23331m é"
        );
        assert!(!safe.iter().any(|&b| b < 0x20 || b == 0x7f));
        assert_eq!(&*terminal_safe(hostile, false), hostile, "--all: raw");
        let plain = b"nothing to escape, caf\xc3\xa9";
        assert!(matches!(
            terminal_safe(plain, true),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
