//! The validated settings: what the daemon runs on, and what a reload compares
//! (`PartialEq` lets it keep what did not change). Types only: they are built from the raw
//! files in `load` (the assembly), `inputs`, `outputs`, `rules` and the section files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::Limits;
use super::rotation::{RetentionSettings, RotationSettings};
use crate::render::Format;
use crate::route::Rule;

/// Default largest message accepted before truncation, in bytes.
pub const DEFAULT_MAX_MESSAGE_SIZE_BYTES: usize = 64 * 1024;

/// The largest `max_message_size_bytes` accepted: each stream connection holds a buffer of
/// this size.
pub const MAX_MESSAGE_SIZE_BYTES: usize = 16 * 1024 * 1024;

/// Everything the daemon needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `[daemon]`.
    pub daemon: DaemonSettings,
    /// `[input.NAME]`, ordered by name.
    pub inputs: Vec<InputSettings>,
    /// `[output.NAME]`, ordered by name; rules refer to them by index.
    pub outputs: Vec<OutputSettings>,
    /// `[[rule]]`, in file order (main file, then drop-ins in name order).
    pub rules: Vec<Rule>,
    /// `[retention]`.
    pub retention: RetentionSettings,
    /// `[follow]`; `None` when the section is absent (no follow service).
    pub follow: Option<super::follow::FollowSettings>,
    /// `[template.NAME]`: named line templates (outputs hold theirs already resolved).
    pub templates: std::collections::BTreeMap<
        String,
        std::sync::Arc<crate::render::line_template::LineTemplate>,
    >,
    /// What the configuration takes that it cannot fully honour: the lines of rsyslog
    /// drop-ins that were not translated, or differ in meaning (`file:line: …`). Shown by
    /// `--check-config`, logged at start and reload, and listed by `logwell stats`.
    pub warnings: Vec<String>,
    /// The rsyslog drop-ins that were translated and read.
    pub rsyslog_files: Vec<PathBuf>,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSettings {
    /// Name written for messages that carry none; the system host name by default.
    pub hostname: String,
    /// The control socket `logwell stats` talks to.
    pub control_socket: PathBuf,
    /// `tracing` filter for the daemon's own diagnostics (`info`, `debug`, `logwell=trace`).
    pub log_level: String,
    /// Where the daemon keeps state across restarts (journal cursor, kmsg sequence).
    pub state_dir: PathBuf,
    /// Privilege separation: a root parent that only opens, renames and removes files in the
    /// output directories, and a worker that does everything else as [`user`](Self::user)
    /// without capabilities. Only takes effect when logwelld starts as root.
    pub privsep: bool,
    /// The worker's user (`_logwell` by default).
    pub user: String,
    /// `user`'s uid and primary gid, looked up when privilege separation will happen (on,
    /// and running as root); `None` otherwise.
    pub user_ids: Option<(u32, u32)>,
}

/// The worker's user when `[daemon] user` is not set.
pub const DEFAULT_USER: &str = "_logwell";

/// One input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSettings {
    /// The input's name, from `[input.NAME]`.
    pub name: String,
    /// What it listens on.
    pub kind: InputKind,
    /// The body parsers run on each of its messages, in order (`parse`); the first that reads
    /// fields wins.
    pub parse: Vec<crate::parse::body::BodyParser>,
    /// Header values taken from those fields (`severity_from`, `time_from`, `host_from`,
    /// `tag_from`).
    pub header_from: crate::parse::body::HeaderFrom,
}

/// The kinds of input.
#[derive(Clone, Debug, PartialEq)]
pub enum InputKind {
    /// `type = "udp"`.
    Udp(UdpSettings),
    /// `type = "tcp"`.
    Tcp(StreamSettings),
    /// `type = "unix_datagram"`.
    UnixDatagram(UnixDatagramSettings),
    /// `type = "unix_stream"`.
    UnixStream(StreamSettings),
    /// `type = "kmsg"`: the kernel log.
    Kmsg(KmsgSettings),
    /// `type = "journal"`: the systemd journal, read directly.
    Journal(JournalSettings),
    /// `type = "tls"`: syslog over TLS (RFC 5425).
    Tls(super::tls::TlsSettings),
    /// `type = "file"`: lines that other programs append to their own files.
    File(FileInputSettings),
}

/// Default longest line a file input hands on whole, in bytes (`max_line_bytes`).
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// A file input: the files it follows and what its messages say.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInputSettings {
    /// Absolute paths and glob patterns (`*`, `?`, `[…]` within one path component).
    pub paths: Vec<String>,
    /// Patterns of paths never read, though `paths` matches them.
    pub exclude: Vec<String>,
    /// A file seen for the first time at the input's first start (no checkpoint yet) is
    /// read from its start (`from = "head"`) rather than its end. Files that appear later
    /// are always read from their start.
    pub from_head: bool,
    /// The tag (app name) of its messages; `None`: each file's stem (`access` for
    /// `access.log`).
    pub tag: Option<String>,
    /// The facility of its messages (`user` by default).
    pub facility: crate::message::Facility,
    /// The severity of its messages (`notice` by default).
    pub severity: crate::message::Severity,
    /// Longer lines are cut here, marked and counted in `truncated`; the rest of the line is
    /// skipped.
    pub max_line_bytes: usize,
    /// Lines joined into records (`[input.NAME.multiline]`); `None`: a line is a message.
    pub multiline: Option<MultilineSettings>,
    /// Files open at once at most; past it, those idle longest are closed until they grow.
    pub max_open_files: usize,
    /// A file that has not grown for this long is closed (kept in the checkpoint) until it
    /// grows again.
    pub close_inactive: std::time::Duration,
    /// A file first seen unmodified for this long is not read: only what it gets later.
    pub ignore_older: Option<std::time::Duration>,
    /// A last line without its newline is handed on after this long; `None`: it waits.
    pub partial_line_timeout: Option<std::time::Duration>,
    /// `format = "syslog"`: each line is parsed as a syslog message (a file another syslog
    /// daemon writes) instead of being the text of one with the input's tag.
    pub syslog_lines: bool,
}

/// How a file input joins lines into one record (a stack trace, a traceback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultilineSettings {
    /// A record starts at a line matching this regex (the others join the record)…
    pub start: Option<String>,
    /// …or a line matching this regex joins the one before it (checked valid).
    pub continues: Option<String>,
    /// A record that got no line for this long is handed on.
    pub timeout: std::time::Duration,
    /// Lines of one record at most; then it is handed on, marked, and the next line starts
    /// a new one.
    pub max_lines: usize,
    /// Bytes of one record at most, as `max_lines`.
    pub max_bytes: usize,
}

/// The kernel log input.
#[derive(Clone, Debug, PartialEq)]
pub struct KmsgSettings {
    /// The device, `/dev/kmsg` by default.
    pub path: PathBuf,
    /// Read it even where journald runs (which reads it too: every kernel line twice).
    /// Off by default: the input then stays idle on a journald host.
    pub even_with_journald: bool,
}

/// The journal input.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalSettings {
    /// Without a saved cursor, start at the oldest entry (else at the end).
    pub from_head: bool,
    /// Only these units (empty: all).
    pub units: Vec<String>,
    /// Only these syslog identifiers (empty: all).
    pub identifiers: Vec<String>,
    /// Only entries at least this severe.
    pub min_priority: Option<crate::message::Severity>,
    /// A journal directory to read instead of the system journal.
    pub directory: Option<PathBuf>,
    /// A journal namespace to read.
    pub namespace: Option<String>,
}

/// A UDP input.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpSettings {
    /// Addresses to bind.
    pub listen: Vec<SocketAddr>,
    /// `SO_RCVBUF`; the kernel default when `None`.
    pub receive_buffer_bytes: Option<usize>,
    /// Longer datagrams are truncated and marked.
    pub max_message_size_bytes: usize,
    /// Whether to write the sender's timestamp (true) or the reception time.
    pub use_sender_timestamp: bool,
    /// Allow-list and per-peer rate limit.
    pub limits: Limits,
}

/// A stream input: TCP addresses or one Unix stream socket path.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSettings {
    /// TCP addresses to bind (empty for Unix).
    pub listen: Vec<SocketAddr>,
    /// Unix socket path and mode (`None` for TCP).
    pub unix: Option<UnixPath>,
    /// Connections beyond this wait in the kernel backlog until one closes.
    pub max_connections: usize,
    /// Close a connection idle this long; never when `None`.
    pub idle_timeout: Option<Duration>,
    /// Longer frames are truncated and marked; the rest is skipped.
    pub max_message_size_bytes: usize,
    /// Whether to write the sender's timestamp (true) or the reception time.
    pub use_sender_timestamp: bool,
    /// Allow-list, per-peer connections and rate, frame timeout (tcp and tls).
    pub limits: Limits,
    /// What the connections speak.
    pub protocol: StreamProtocol,
}

/// What a stream input's connections speak.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StreamProtocol {
    /// Syslog, framed as RFC 6587 says (tcp, tls, unix_stream).
    #[default]
    Syslog,
    /// RELP (`type = "relp"`).
    Relp(RelpSettings),
    /// HTTP, `POST /v1/logs` (`type = "http"`).
    Http(HttpInputSettings),
}

/// What an HTTP input takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpInputSettings {
    /// The bearer token a request must carry; `None` only on loopback addresses.
    pub token: Option<String>,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Requests with more records are refused with 413.
    pub max_records: usize,
}

/// What a RELP input does beyond a TCP (or TLS) one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelpSettings {
    /// What a frame over `max_message_size_bytes` gets.
    pub oversize: Oversize,
}

/// What a RELP frame over `max_message_size_bytes` gets (`oversize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Oversize {
    /// Written cut at the limit, marked and counted in `truncated`, and answered `200 OK`
    /// (rsyslog imrelp's default `oversizeMode`).
    #[default]
    Truncate,
    /// Answered `500` and skipped, counted in `malformed`; the sender decides what to do.
    Refuse,
}

/// A Unix socket path and its permission bits.
#[derive(Clone, Debug, PartialEq)]
pub struct UnixPath {
    /// Socket path; an existing socket there is replaced.
    pub path: PathBuf,
    /// Permission bits, `0o666` by default so every local program can log.
    pub mode: u32,
}

/// A Unix datagram input (`/dev/log` style).
#[derive(Clone, Debug, PartialEq)]
pub struct UnixDatagramSettings {
    /// Socket path and mode.
    pub unix: UnixPath,
    /// `SO_RCVBUF`; the kernel default when `None`.
    pub receive_buffer_bytes: Option<usize>,
    /// Longer datagrams are truncated and marked.
    pub max_message_size_bytes: usize,
    /// Whether to write the sender's timestamp (true) or the reception time.
    pub use_sender_timestamp: bool,
}

/// One output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSettings {
    /// The output's name, from `[output.NAME]`.
    pub name: String,
    /// What it writes to.
    pub kind: OutputKind,
    /// The line template that replaces the format (`template`), if any.
    pub template: Option<std::sync::Arc<crate::render::line_template::LineTemplate>>,
}

/// The kinds of output, one per `type`.
// Built once per (re)load and compared, never moved in a hot loop: size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum OutputKind {
    /// `type = "file"`.
    File(FileSettings),
    /// `type = "users"`: the terminals of logged-in users (rsyslog's `:omusrmsg:`).
    Users(UsersSettings),
    /// `type = "forward"`: remote syslog servers, through a disk-assisted queue.
    Forward(super::forward::ForwardSettings),
    /// `type = "kafka"`: Kafka topics, through a disk-assisted queue.
    Kafka(super::kafka::KafkaSettings),
    /// `type = "http"`: an HTTP endpoint (ClickHouse, a generic NDJSON receiver), through a
    /// disk-assisted queue.
    Http(super::http::HttpSettings),
}

/// A `users` output: each message is written to the terminals of logged-in users.
#[derive(Clone, Debug, PartialEq)]
pub struct UsersSettings {
    /// Only these users' terminals; empty means every logged-in user (`"*"`).
    pub users: Vec<String>,
    /// The utmp file that says who is logged in on which terminal.
    pub utmp: PathBuf,
    /// Longest wait for one terminal to take a message; a stuck one is skipped.
    pub write_timeout: Duration,
}

/// How the files of a templated path (`/var/log/remote/{host}.log`) are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicSettings {
    /// The parsed path.
    pub template: crate::render::template::PathTemplate,
    /// Most files open at once; the least recently written is closed to open another.
    pub max_open_files: usize,
    /// A file unwritten this long is closed.
    pub idle_close: Duration,
    /// Where a message goes whose rendered path would leave the base directory.
    pub fallback: PathBuf,
    /// Permission bits of the directories logwell creates (owner and group are the files').
    pub dir_mode: u32,
    /// The record of the files this output created, in the state directory: the age sweep
    /// deletes only those (and their generations). `None`: kept in memory only.
    pub created: Option<PathBuf>,
}

/// A file output.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSettings {
    /// The file; missing directories are created.
    pub path: PathBuf,
    /// Line format.
    pub format: Format,
    /// `fdatasync` after each batch written (rsyslog writes without `-` prefix).
    pub sync: bool,
    /// Owner to set on a file logwell creates (when root).
    pub owner: Option<u32>,
    /// Group to set on a file logwell creates (when root).
    pub group: Option<u32>,
    /// Permission bits of a file logwell creates.
    pub mode: u32,
    /// An upper bound: a writer whose channel never runs dry still writes this often. (A
    /// writer writes as soon as its channel is empty, so no quiet line waits for this.)
    pub flush_interval: Duration,
    /// The most one write gathers while more chunks wait: write once this many bytes wait.
    pub buffer_bytes: usize,
    /// While the file cannot be written, at most this many bytes wait in memory; then the
    /// writer takes no more, and stream inputs slow their senders down.
    pub backlog_bytes: usize,
    /// Rotation, compression and retention; `None` leaves the file alone (for an external
    /// logrotate).
    pub rotation: Option<RotationSettings>,
    /// `rotated_by = "logrotate"`: another program rotates it, so `logwell rotate` does not.
    pub rotated_elsewhere: bool,
    /// Set when `path` has fields: one file per rendered path.
    pub dynamic: Option<DynamicSettings>,
    /// Write "last message repeated N times" instead of identical consecutive messages.
    pub reduce_repeats: bool,
}

impl FileSettings {
    /// Whether lines reach the writer as records (with a path and a repeat key) instead of
    /// plain lines: see `output::dynfile`.
    pub fn records(&self) -> bool {
        self.dynamic.is_some() || self.reduce_repeats
    }
}
