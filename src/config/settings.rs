//! Validated settings: what the daemon runs on. Built from the raw files by
//! [`Settings::from_files`], which checks meaning (addresses, selectors, names, users) and
//! collects every error with its place and a hint. `PartialEq` lets a reload keep what did not
//! change.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::bytes::Regex;
use toml::Spanned;

use super::error::{ConfigError, SourceFile};
use super::keys::OutputType;
use super::raw::{span_of, OneOrMany, RawConfig, RawDaemon, RawInput, RawOutput, RawRule};
use super::rotation::{PartialRotation, RetentionSettings, RotationSettings};
use crate::input::limits::Limits;
use crate::route::{Rule, Selector};

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
    pub template: crate::output::template::PathTemplate,
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

/// Line formats for files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Nov 21 09:41:03 host tag[pid]: msg`.
    Traditional,
    /// `2026-11-21T09:41:03.123456+01:00 host tag[pid]: msg`, Debian 12's default.
    Rfc3339,
    /// `<13>1 2026-11-21T09:41:03.123456+01:00 host tag pid msgid [sd] msg`.
    Rfc5424,
    /// One JSON object per line with every field.
    Json,
    /// `<13>Nov 21 09:41:03 host tag[pid]: msg`: RFC 3164 as sent on the wire (forward
    /// outputs only).
    Rfc3164,
}

impl Format {
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "traditional" => Format::Traditional,
            "rfc3339" => Format::Rfc3339,
            "rfc5424" => Format::Rfc5424,
            "json" => Format::Json,
            _ => return None,
        })
    }
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

/// Collects errors for one file while building settings.
pub(crate) struct Check<'a> {
    src: SourceFile<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Check<'a> {
    fn new(file: &'a ParsedFile) -> Check<'a> {
        Check {
            src: SourceFile {
                path: &file.path,
                text: &file.text,
            },
            errors: Vec::new(),
        }
    }
}

impl Check<'_> {
    pub(crate) fn err(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let e = self.diagnostic(span, message, hint);
        self.errors.push(e);
    }

    /// A located message with a hint that is not an error (a warning).
    pub(crate) fn diagnostic(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.src.error(Some(span), message, Some(hint.into()))
    }

    fn positive(&mut self, v: &Option<Spanned<i64>>, key: &str, default: usize) -> usize {
        self.bounded(v, key, default, i64::MAX as usize)
    }

    /// A positive number no larger than `max`.
    pub(crate) fn bounded(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: usize,
    ) -> usize {
        match v {
            None => default,
            Some(v) if *v.get_ref() > 0 && *v.get_ref() as u64 <= max as u64 => {
                *v.get_ref() as usize
            }
            Some(v) => {
                self.err(
                    v.span(),
                    format!("`{key}` must be a number from 1 to {max}"),
                    "remove the key to use the default",
                );
                default
            }
        }
    }

    fn mode(&mut self, v: &Option<Spanned<String>>, default: u32) -> u32 {
        let Some(v) = v else { return default };
        match u32::from_str_radix(v.get_ref().trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o7777 => m,
            _ => {
                self.err(
                    v.span(),
                    format!("`mode = \"{}\"` is not an octal mode", v.get_ref()),
                    "write it as a string of octal digits, such as \"0640\"",
                );
                default
            }
        }
    }

    /// Records the first declaration of `kind` `name`; reports a second one with the place of
    /// the first. Returns whether this is the first.
    fn declare(
        &mut self,
        declared: &mut BTreeMap<(&'static str, String), Declared>,
        kind: &'static str,
        name: &Spanned<String>,
        file: &std::path::Path,
    ) -> bool {
        let key = (kind, name.get_ref().clone());
        if let Some(first) = declared.get(&key) {
            let hint = format!(
                "the first is at {}:{}; rename one of them",
                first.file.display(),
                first.line
            );
            self.err(
                name.span(),
                format!("{kind} `{}` is declared twice", name.get_ref()),
                hint,
            );
            return false;
        }
        let line = self.src.error(Some(name.span()), "", None).line;
        declared.insert(
            key,
            Declared {
                file: file.to_path_buf(),
                line,
            },
        );
        true
    }

    pub(crate) fn not_for(
        &mut self,
        present: Option<Range<usize>>,
        key: &str,
        kind: &str,
        hint: &str,
    ) {
        if let Some(span) = present {
            self.err(
                span,
                format!("`{key}` does not apply to {kind} inputs"),
                hint.to_string(),
            );
        }
    }
}

/// One parsed file with its text, as `load` hands them over.
pub(crate) struct ParsedFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) raw: RawConfig,
}

/// Where a name was first declared, to report duplicates across files.
struct Declared {
    file: PathBuf,
    line: usize,
}

impl Settings {
    /// Validates parsed files (main file first, then drop-ins) into settings, or every error.
    pub(crate) fn from_files(files: Vec<ParsedFile>) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut daemon = DaemonSettings {
            hostname: default_hostname(),
            control_socket: PathBuf::from("/run/logwell/control.sock"),
            state_dir: PathBuf::from("/var/lib/logwell"),
            log_level: "info".to_string(),
            privsep: true,
            user: DEFAULT_USER.to_string(),
            user_ids: None,
        };
        let mut inputs: BTreeMap<String, InputSettings> = BTreeMap::new();
        let mut outputs: BTreeMap<String, OutputSettings> = BTreeMap::new();
        let mut declared: BTreeMap<(&'static str, String), Declared> = BTreeMap::new();
        // [rotation] and [retention] first: outputs in any file lay their own over them.
        let mut default_rotation = PartialRotation::default();
        let mut retention = RetentionSettings::default();
        for file in &files {
            let mut check = Check::new(file);
            if let Some(r) = &file.raw.rotation {
                default_rotation = default_rotation.overlay(&check.rotation(r));
            }
            if let Some(r) = &file.raw.retention {
                let r = check.retention(r);
                retention.max_disk_usage = r.max_disk_usage.or(retention.max_disk_usage);
                retention.min_free_space = r.min_free_space.or(retention.min_free_space);
            }
            errors.append(&mut check.errors);
        }
        for file in &files {
            let mut check = Check::new(file);
            if let Some(d) = &file.raw.daemon {
                apply_daemon(&mut check, d, &mut daemon);
            }
            for (name, raw) in &file.raw.input {
                if check.declare(&mut declared, "input", name, &file.path) {
                    if let Some(kind) = input_kind(&mut check, raw.get_ref()) {
                        let name = name.get_ref().clone();
                        inputs.insert(name.clone(), InputSettings { name, kind });
                    }
                }
            }
            for (name, raw) in &file.raw.output {
                if check.declare(&mut declared, "output", name, &file.path) {
                    if let Some(kind) = output_kind(&mut check, raw.get_ref(), &default_rotation) {
                        let name = name.get_ref().clone();
                        outputs.insert(name.clone(), OutputSettings { name, kind });
                    }
                }
            }
            errors.append(&mut check.errors);
        }

        if let Some(e) = resolve_user(&mut daemon, &files) {
            errors.push(e);
        }
        let mut outputs: Vec<OutputSettings> = outputs.into_values().collect();
        // A forward action's queue lives in the state directory, known once every file is read.
        for o in &mut outputs {
            if let OutputKind::Forward(f) = &mut o.kind {
                f.queue.dir = Some(daemon.state_dir.join("queue").join(&o.name));
            }
            if let OutputKind::Kafka(k) = &mut o.kind {
                k.queue.dir = Some(daemon.state_dir.join("queue").join(&o.name));
            }
            // So is the record of the files a templated output created.
            if let OutputKind::File(FileSettings {
                dynamic: Some(d), ..
            }) = &mut o.kind
            {
                // One file name whatever the output's name holds (`/`, a leading `.`).
                let mut name = o.name.replace('/', "_");
                if name.starts_with('.') || name.is_empty() {
                    name.insert(0, '_');
                }
                d.created = Some(daemon.state_dir.join("created").join(name));
            }
        }
        check_unique_paths(&files, &outputs, &mut errors);
        check_templates_spare_other_files(&files, &outputs, &mut errors);
        check_worker_can_list(&files, &daemon, &inputs, &outputs, &mut errors);
        check_unique_endpoints(&files, &inputs, &daemon, &outputs, &mut errors);
        // Rules refer to outputs by name, so they are built once every file is read.
        let mut rules = Vec::new();
        for file in &files {
            let mut check = Check::new(file);
            for rule in &file.raw.rule {
                if let Some(rule) = build_rule(&mut check, rule, &outputs, &inputs) {
                    rules.push(rule);
                }
            }
            errors.append(&mut check.errors);
        }
        let mut follow = None;
        for file in &files {
            let mut check = Check::new(file);
            if let Some(f) = &file.raw.follow {
                if follow.is_some() {
                    check.err(
                        f.span(),
                        "`[follow]` is declared in more than one file",
                        "keep one [follow] section",
                    );
                } else {
                    follow = Some(check.follow(f, &outputs, &socket_paths(&daemon, &inputs)));
                }
            }
            errors.append(&mut check.errors);
        }
        if inputs.is_empty() && errors.is_empty() {
            let path = files.first().map(|f| f.path.clone()).unwrap_or_default();
            errors.push(ConfigError { file: path, line: 0, column: 0, message: "no input is declared, so nothing would be received".into(), hint: Some("add one, such as [input.udp] with type = \"udp\" and listen = \"127.0.0.1:5514\"".into()) });
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(errors);
        }
        Ok(Settings {
            daemon,
            inputs: inputs.into_values().collect(),
            outputs,
            rules,
            retention,
            follow,
        })
    }
}

fn apply_daemon(check: &mut Check<'_>, d: &RawDaemon, daemon: &mut DaemonSettings) {
    if let Some(h) = &d.hostname {
        if h.get_ref().is_empty() || h.get_ref().contains(char::is_whitespace) {
            check.err(
                h.span(),
                "`hostname` must be one word",
                "remove it to use the system host name",
            );
        } else {
            daemon.hostname = h.get_ref().clone();
        }
    }
    if let Some(p) = &d.state_dir {
        daemon.state_dir = PathBuf::from(p.get_ref());
    }
    if let Some(p) = &d.control_socket {
        daemon.control_socket = PathBuf::from(p.get_ref());
    }
    if let Some(p) = &d.privsep {
        daemon.privsep = *p.get_ref();
    }
    if let Some(u) = &d.user {
        if u.get_ref().is_empty() || u.get_ref() == "root" {
            check.err(
                u.span(),
                format!("`user = \"{}\"` cannot run the worker", u.get_ref()),
                "name an unprivileged system user such as _logwell, or set `privsep = false`",
            );
        } else {
            daemon.user = u.get_ref().clone();
        }
    }
    if let Some(l) = &d.log_level {
        if tracing_subscriber::EnvFilter::try_new(l.get_ref()).is_err() {
            check.err(
                l.span(),
                format!("`log_level = \"{}\"` is not a log filter", l.get_ref()),
                "use error, warn, info, debug or trace",
            );
        } else {
            daemon.log_level = l.get_ref().clone();
        }
    }
}

/// Looks the worker's user up when privilege separation will happen (on, and running as
/// root). A missing user is an error that says how to create it.
fn resolve_user(daemon: &mut DaemonSettings, files: &[ParsedFile]) -> Option<ConfigError> {
    if !daemon.privsep || !crate::output::fsops::privileged() {
        return None;
    }
    // Point at the `user` (or `privsep`) key when one was written, else at the main file.
    let place = files.iter().rev().find_map(|f| {
        let d = f.raw.daemon.as_ref()?;
        let span = d
            .user
            .as_ref()
            .map(|u| u.span())
            .or(d.privsep.as_ref().map(|p| p.span()))?;
        Some((f, span))
    });
    let problem = match nix::unistd::User::from_name(&daemon.user) {
        Ok(Some(u)) if u.uid.is_root() => format!("user `{}` is root", daemon.user),
        Ok(Some(u)) => {
            daemon.user_ids = Some((u.uid.as_raw(), u.gid.as_raw()));
            return None;
        }
        _ => format!(
            "no user `{}` for the privilege-separated worker",
            daemon.user
        ),
    };
    let hint = format!(
        "create it with `adduser --system --no-create-home --ingroup adm --home /nonexistent {}` (the package does), name another with `user = \"…\"` in [daemon], or set `privsep = false`",
        daemon.user
    );
    Some(match place {
        Some((f, span)) => SourceFile {
            path: &f.path,
            text: &f.text,
        }
        .error(Some(span), problem, Some(hint)),
        None => ConfigError {
            file: files.first().map(|f| f.path.clone()).unwrap_or_default(),
            line: 0,
            column: 0,
            message: problem,
            hint: Some(hint),
        },
    })
}

fn default_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.split('.').next().unwrap_or_default().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The port a network input listens on when `listen` names only an address: 514 for udp
/// and tcp (rsyslog's and RFC 5426's), 6514 for tls (RFC 5425).
pub(crate) fn default_port(kind: &str) -> u16 {
    if kind == "tls" {
        6514
    } else {
        514
    }
}

fn listen_addrs(check: &mut Check<'_>, raw: &RawInput, kind: &str) -> Vec<SocketAddr> {
    let port = default_port(kind);
    let Some(listen) = &raw.listen else {
        check.err(
            raw.kind.span(),
            format!("a {kind} input needs `listen`"),
            format!("add listen = \"0.0.0.0\" (port {port}), \"127.0.0.1:{port}\" or a list of addresses to this input"),
        );
        return Vec::new();
    };
    if listen.get_ref().clone_vec().is_empty() {
        // An input that listens nowhere would receive nothing, silently.
        check.err(
            listen.span(),
            format!("`listen` of a {kind} input is empty, so it would receive nothing"),
            format!(
                "list at least one address, such as \"127.0.0.1:{port}\", or remove this input"
            ),
        );
        return Vec::new();
    }
    check.addresses(
        listen,
        &format!("\"0.0.0.0:{port}\", \"[::]:{port}\", or an address alone for port {port}"),
        Some(port),
    )
}

/// `text` as a socket address; with `default_port`, an address alone (`0.0.0.0`, `::1`,
/// `[::1]`) takes that port.
fn parse_address(text: &str, default_port: Option<u16>) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let port = default_port?;
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip = bare.parse::<std::net::IpAddr>().ok()?;
    // A bracket is for IPv6 only, as in an address with a port.
    if bare.len() != text.len() && ip.is_ipv4() {
        return None;
    }
    Some(SocketAddr::new(ip, port))
}

impl Check<'_> {
    /// Socket addresses; `example` shows how to write one. With `default_port`, an address
    /// without a port takes it; without, the port is required.
    pub(crate) fn addresses(
        &mut self,
        list: &Spanned<OneOrMany>,
        example: &str,
        default_port: Option<u16>,
    ) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for a in list.get_ref().clone_vec() {
            match parse_address(&a, default_port) {
                Some(addr) => out.push(addr),
                None => self.err(
                    list.span(),
                    match default_port {
                        Some(_) => format!("`{a}` is not an IP address, with or without a port"),
                        None => format!("`{a}` is not an address with a port"),
                    },
                    format!("write it as {example}"),
                ),
            }
        }
        out
    }
}

fn unix_path(check: &mut Check<'_>, raw: &RawInput) -> Option<UnixPath> {
    let mode = check.mode(&raw.mode, 0o666);
    match &raw.path {
        Some(p) if !p.get_ref().is_empty() => Some(UnixPath {
            path: PathBuf::from(p.get_ref()),
            mode,
        }),
        _ => {
            check.err(
                raw.kind.span(),
                "a unix input needs `path`",
                "add path = \"/run/logwell/log.sock\" (or \"/dev/log\" on a host without journald)",
            );
            None
        }
    }
}

fn input_kind(check: &mut Check<'_>, raw: &RawInput) -> Option<InputKind> {
    let max = check.bounded(
        &raw.max_message_size_bytes,
        "max_message_size_bytes",
        DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        MAX_MESSAGE_SIZE_BYTES,
    );
    let rcvbuf = raw.receive_buffer_bytes.as_ref().map(|_| {
        check.bounded(
            &raw.receive_buffer_bytes,
            "receive_buffer_bytes",
            0,
            1 << 30,
        )
    });
    let max_connections = check.bounded(&raw.max_connections, "max_connections", 1024, 1_000_000);
    let kind = raw.kind.get_ref().as_str();
    let idle = match &raw.idle_timeout_secs {
        Some(_) => {
            Some(Duration::from_secs(
                check.positive(&raw.idle_timeout_secs, "idle_timeout_secs", 0) as u64,
            ))
        }
        None if matches!(kind, "tcp" | "tls") => Some(crate::input::limits::DEFAULT_IDLE_TIMEOUT),
        None => None,
    };
    let limits = crate::input::limits::from_raw(check, raw, max_connections);
    super::tls::refuse_tls_keys(check, raw, kind);
    if kind != "kmsg" {
        check.not_for(
            span_of(&raw.even_with_journald),
            "even_with_journald",
            kind,
            "it applies to kmsg inputs; remove it",
        );
    }
    if matches!(kind, "kmsg" | "journal") {
        return structured_input_kind(check, raw, kind);
    }
    refuse_journal_keys(check, raw, kind);
    if !matches!(
        kind,
        "udp" | "tcp" | "tls" | "unix_datagram" | "unix_stream"
    ) {
        check.err(
            raw.kind.span(),
            format!("unknown input type `{kind}`"),
            "use \"udp\", \"tcp\", \"tls\", \"unix_datagram\" or \"unix_stream\"",
        );
        return None;
    }
    match kind {
        "udp" | "unix_datagram" => {
            check.not_for(
                span_of(&raw.max_connections),
                "max_connections",
                kind,
                "datagram inputs have no connections; remove it",
            );
            check.not_for(
                span_of(&raw.idle_timeout_secs),
                "idle_timeout_secs",
                kind,
                "datagram inputs have no connections; remove it",
            );
        }
        _ => {
            check.not_for(
                span_of(&raw.receive_buffer_bytes),
                "receive_buffer_bytes",
                kind,
                "it applies to udp and unix_datagram inputs; remove it",
            );
        }
    }
    match kind {
        "udp" | "tcp" | "tls" => {
            check.not_for(span_of(&raw.path), "path", kind, "network inputs take `listen`; use a unix_datagram or unix_stream input for a socket path");
            check.not_for(
                span_of(&raw.mode),
                "mode",
                kind,
                "only unix inputs have a file mode",
            );
        }
        _ => {
            if let Some(l) = &raw.listen {
                check.err(
                    l.span(),
                    format!("`listen` does not apply to {kind} inputs"),
                    "unix inputs take `path`",
                );
            }
        }
    }
    let sender_ts = raw.use_sender_timestamp.as_ref().map(|b| *b.get_ref());
    match kind {
        "udp" => Some(InputKind::Udp(UdpSettings {
            listen: listen_addrs(check, raw, kind),
            receive_buffer_bytes: rcvbuf,
            max_message_size_bytes: max,
            use_sender_timestamp: sender_ts.unwrap_or(true),
            limits: limits.clone(),
        })),
        "tcp" => Some(InputKind::Tcp(StreamSettings {
            listen: listen_addrs(check, raw, kind),
            unix: None,
            max_connections,
            idle_timeout: idle,
            max_message_size_bytes: max,
            use_sender_timestamp: sender_ts.unwrap_or(true),
            limits: limits.clone(),
        })),
        "tls" => {
            let listen = listen_addrs(check, raw, kind);
            let stream = StreamSettings {
                listen,
                unix: None,
                max_connections,
                idle_timeout: idle,
                max_message_size_bytes: max,
                use_sender_timestamp: sender_ts.unwrap_or(true),
                limits: limits.clone(),
            };
            super::tls::tls_settings(check, raw, stream).map(InputKind::Tls)
        }
        "unix_datagram" => Some(InputKind::UnixDatagram(UnixDatagramSettings {
            unix: unix_path(check, raw)?,
            receive_buffer_bytes: rcvbuf,
            max_message_size_bytes: max,
            use_sender_timestamp: sender_ts.unwrap_or(false),
        })),
        "unix_stream" => Some(InputKind::UnixStream(StreamSettings {
            listen: Vec::new(),
            unix: Some(unix_path(check, raw)?),
            max_connections,
            idle_timeout: idle,
            max_message_size_bytes: max,
            use_sender_timestamp: sender_ts.unwrap_or(false),
            limits: Limits::default(),
        })),
        _ => unreachable!("checked above"),
    }
}

fn output_kind(
    check: &mut Check<'_>,
    raw: &RawOutput,
    default_rotation: &PartialRotation,
) -> Option<OutputKind> {
    let Some(ty) = OutputType::named(raw.kind.get_ref()) else {
        check.err(
            raw.kind.span(),
            format!("unknown output type `{}`", raw.kind.get_ref()),
            "use \"file\", \"users\", \"forward\" or \"kafka\"",
        );
        return None;
    };
    refuse_other_types_keys(check, raw, ty);
    match ty.name {
        "file" => file_output(check, raw, default_rotation),
        "users" => users_output(check, raw),
        "forward" => check.forward(raw).map(OutputKind::Forward),
        "kafka" => check.kafka(raw).map(OutputKind::Kafka),
        other => unreachable!("output type `{other}` has no settings"),
    }
}

/// Refuses the keys set on an output that only outputs of other types take, each with the
/// hint [`OutputType::refusal_hint`] gives.
fn refuse_other_types_keys(check: &mut Check<'_>, raw: &RawOutput, ty: &OutputType) {
    for (key, span) in raw.key_spans() {
        if let (Some(span), Some(hint)) = (span, ty.refusal_hint(key)) {
            check.err(
                span,
                format!("`{key}` does not apply to {} outputs", ty.name),
                hint,
            );
        }
    }
}

fn users_output(check: &mut Check<'_>, raw: &RawOutput) -> Option<OutputKind> {
    let users = raw
        .users
        .as_ref()
        .map(|u| u.get_ref().clone_vec())
        .unwrap_or_else(|| vec!["*".to_string()]);
    let users = if users.iter().any(|u| u == "*") {
        Vec::new()
    } else {
        users
    };
    Some(OutputKind::Users(UsersSettings {
        users,
        utmp: raw.utmp.as_ref().map_or_else(
            || PathBuf::from("/var/run/utmp"),
            |p| PathBuf::from(p.get_ref()),
        ),
        write_timeout: Duration::from_millis(check.bounded(
            &raw.write_timeout_ms,
            "write_timeout_ms",
            1000,
            60_000,
        ) as u64),
    }))
}

fn file_output(
    check: &mut Check<'_>,
    raw: &RawOutput,
    default_rotation: &PartialRotation,
) -> Option<OutputKind> {
    let format = match &raw.format {
        None => Format::Rfc3339,
        Some(f) => match Format::from_name(f.get_ref()) {
            Some(f) => f,
            None => {
                check.err(
                    f.span(),
                    format!("unknown format `{}`", f.get_ref()),
                    "use \"traditional\", \"rfc3339\", \"rfc5424\" or \"json\"",
                );
                Format::Rfc3339
            }
        },
    };
    // Root, or the privilege-separated worker whose files the root parent creates.
    let root = crate::output::fsops::privileged();
    let owner = match &raw.owner {
        Some(o) => match nix::unistd::User::from_name(o.get_ref()) {
            Ok(Some(u)) => Some(u.uid.as_raw()),
            _ => {
                check.err(
                    o.span(),
                    format!("no user `{}` on this system", o.get_ref()),
                    "create the user or name an existing one",
                );
                None
            }
        },
        None => root.then_some(0),
    };
    let group = match &raw.group {
        Some(g) => match nix::unistd::Group::from_name(g.get_ref()) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                check.err(
                    g.span(),
                    format!("no group `{}` on this system", g.get_ref()),
                    "create the group or name an existing one",
                );
                None
            }
        },
        None if root => Some(
            nix::unistd::Group::from_name("adm")
                .ok()
                .flatten()
                .map_or(0, |g| g.gid.as_raw()),
        ),
        None => None,
    };
    if !root {
        if let Some(o) = &raw.owner {
            if owner.is_some_and(|u| u != nix::unistd::geteuid().as_raw()) {
                check.err(
                    o.span(),
                    "`owner` can only be set when logwelld runs as root",
                    "remove it, or run logwelld as root",
                );
            }
        }
    }
    let path = match &raw.path {
        Some(p) if !p.get_ref().is_empty() => PathBuf::from(p.get_ref()),
        _ => {
            check.err(
                raw.kind.span(),
                "a file output needs `path`",
                "add path = \"/var/log/syslog\"",
            );
            return None;
        }
    };
    let dynamic = dynamic_settings(check, raw);
    Some(OutputKind::File(FileSettings {
        path,
        format,
        sync: raw.sync.as_ref().is_some_and(|s| *s.get_ref()),
        owner,
        group,
        mode: check.mode(&raw.mode, 0o640),
        flush_interval: Duration::from_millis(check.positive(
            &raw.flush_interval_ms,
            "flush_interval_ms",
            1000,
        ) as u64),
        buffer_bytes: check.positive(&raw.buffer_bytes, "buffer_bytes", 64 * 1024),
        backlog_bytes: check.positive(&raw.backlog_bytes, "backlog_bytes", 16 * 1024 * 1024),
        rotation: {
            let own = raw
                .rotation
                .as_ref()
                .map(|r| check.rotation(r.get_ref()))
                .unwrap_or_default();
            default_rotation.overlay(&own).settle()
        },
        dynamic,
        reduce_repeats: raw.reduce_repeats.as_ref().is_some_and(|r| *r.get_ref()),
    }))
}

/// The template and its keys when the path has fields; the keys refused when it has none.
fn dynamic_settings(check: &mut Check<'_>, raw: &RawOutput) -> Option<DynamicSettings> {
    let path = raw.path.as_ref()?;
    let template = match crate::output::template::PathTemplate::parse(path.get_ref()) {
        Ok(t) => t,
        Err(e) => {
            check.err(
                path.span(),
                e.to_string(),
                format!(
                    "fields are {}",
                    crate::output::template::FIELD_NAMES
                        .iter()
                        .map(|(n, _)| format!("{{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            return None;
        }
    };
    let Some(template) = template else {
        for (key, span) in [
            ("max_open_files", span_of(&raw.max_open_files)),
            ("idle_close_secs", span_of(&raw.idle_close_secs)),
            ("fallback", span_of(&raw.fallback)),
            ("dir_mode", span_of(&raw.dir_mode)),
        ] {
            if let Some(span) = span {
                check.err(
                    span,
                    format!("`{key}` applies only to a path with fields"),
                    "remove it, or put fields such as {host} in `path`",
                );
            }
        }
        return None;
    };
    let fallback = match &raw.fallback {
        Some(f) if f.get_ref().starts_with('/') && !f.get_ref().contains('{') => {
            PathBuf::from(f.get_ref())
        }
        Some(f) => {
            check.err(
                f.span(),
                "`fallback` must be an absolute path without fields",
                "such as fallback = \"/var/log/remote/fallback.log\"",
            );
            template.base().join(".fallback.log")
        }
        None => template.base().join(".fallback.log"),
    };
    Some(DynamicSettings {
        max_open_files: check.bounded(&raw.max_open_files, "max_open_files", 256, 65_536),
        idle_close: Duration::from_secs(check.bounded(
            &raw.idle_close_secs,
            "idle_close_secs",
            60,
            86_400 * 7,
        ) as u64),
        fallback,
        dir_mode: check.mode(&raw.dir_mode, 0o750),
        created: None,
        template,
    })
}

/// Two outputs writing one file would interleave and fight over rotation.
fn check_unique_paths(
    files: &[ParsedFile],
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: BTreeMap<&PathBuf, &str> = BTreeMap::new();
    for o in outputs {
        let OutputKind::File(f) = &o.kind else {
            continue;
        };
        if let Some(first) = seen.insert(&f.path, &o.name) {
            let (file, line, column) = output_place(files, &o.name);
            errors.push(ConfigError {
                file,
                line,
                column,
                message: format!(
                    "outputs `{first}` and `{}` both write {}",
                    o.name,
                    f.path.display()
                ),
                hint: Some("send both rules to one output instead".into()),
            });
        }
    }
}

/// A templated path that could render another output's file (`/var/log/{host}.log` beside
/// `/var/log/auth.log`) would let a sender named `auth` write into it past the selectors,
/// and its age sweep could delete it: refuse it, naming both outputs.
fn check_templates_spare_other_files(
    files: &[ParsedFile],
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    // Every file an output writes by name: plain paths, and templated outputs' fallbacks.
    let named: Vec<(&str, &Path)> = outputs
        .iter()
        .filter_map(|o| match &o.kind {
            OutputKind::File(f) => Some((
                o.name.as_str(),
                f.dynamic.as_ref().map_or(f.path.as_path(), |d| &d.fallback),
            )),
            _ => None,
        })
        .collect();
    for o in outputs {
        let OutputKind::File(FileSettings {
            dynamic: Some(d), ..
        }) = &o.kind
        else {
            continue;
        };
        for (other, path) in &named {
            if *other == o.name || !d.template.could_render(path) {
                continue;
            }
            let (file, line, column) = output_place(files, &o.name);
            errors.push(ConfigError {
                file,
                line,
                column,
                message: format!(
                    "output `{}`: its templated path could render {}, the file of output `{other}`, so a sender could write into it past the rules (and max_age_days could delete it)",
                    o.name,
                    path.display()
                ),
                hint: Some(format!(
                    "give the templated files a directory of their own, such as {}/remote/{{host}}.log",
                    d.template.base().display()
                )),
            });
        }
    }
}

/// The file, line and column of `[output.NAME]`'s key (for errors about a whole output).
fn output_place(files: &[ParsedFile], name: &str) -> (PathBuf, usize, usize) {
    files
        .iter()
        .find_map(|pf| {
            pf.raw
                .output
                .keys()
                .find(|k| k.get_ref() == name)
                .map(|k| (pf, k.span()))
        })
        .map(|(pf, span)| {
            let e = SourceFile {
                path: &pf.path,
                text: &pf.text,
            }
            .error(Some(span), "", None);
            (e.file, e.line, e.column)
        })
        .unwrap_or_default()
}

/// Under privilege separation the worker lists a templated output's directories itself
/// (rotation finds a file's generations, history and follow read them) while the parent
/// creates them with `dir_mode`, the files' owner and their group (`adm` by default as
/// root). A combination the worker cannot list would leave files that never rotate: refuse
/// it with what to change.
fn check_worker_can_list(
    files: &[ParsedFile],
    daemon: &DaemonSettings,
    inputs: &BTreeMap<String, InputSettings>,
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let Some((uid, gid)) = daemon.user_ids else {
        return; // no privilege separation: this process lists what it creates
    };
    let journal = inputs
        .values()
        .any(|i| matches!(i.kind, InputKind::Journal(_)));
    let groups = crate::daemon::privsep::worker_groups(gid, journal);
    for o in outputs {
        let OutputKind::File(f) = &o.kind else {
            continue;
        };
        let Some(d) = &f.dynamic else { continue };
        if dir_listable(d.dir_mode, f.owner, f.group, uid, &groups) {
            continue;
        }
        let (file, line, column) = output_place(files, &o.name);
        let group = f
            .group
            .and_then(|g| nix::unistd::Group::from_gid(g.into()).ok().flatten())
            .map_or_else(|| format!("{:?}", f.group), |g| g.name);
        errors.push(ConfigError {
            file,
            line,
            column,
            message: format!(
                "output `{}`: its directories (dir_mode = \"0{:o}\", group `{group}`) could not be listed by the worker `{}`, so its files could not rotate",
                o.name, d.dir_mode, daemon.user
            ),
            hint: Some(format!(
                "use a group the worker has (group = \"adm\", the default), or give others read and search (dir_mode = \"0{:o}\")",
                d.dir_mode | 0o055
            )),
        });
    }
}

/// Whether a directory of `mode`, `owner` and `group` can be listed (read and searched) by
/// `uid` with `groups`, by the permission bits that apply to it.
pub(crate) fn dir_listable(
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
    uid: u32,
    groups: &[u32],
) -> bool {
    let bits = if owner == Some(uid) {
        mode >> 6
    } else if group.is_some_and(|g| groups.contains(&g)) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o5 == 0o5
}

fn build_rule(
    check: &mut Check<'_>,
    rule: &Spanned<RawRule>,
    outputs: &[OutputSettings],
    inputs: &BTreeMap<String, InputSettings>,
) -> Option<Rule> {
    let raw = rule.get_ref();
    let errors_before = check.errors.len();
    let selector = match &raw.selector {
        None => Selector::ALL,
        Some(s) => Selector::parse(s.get_ref()).unwrap_or_else(|e| {
            check.err(s.span(), format!("bad selector `{}`: {e}", s.get_ref()), "selectors are written as in rsyslog: \"*.*;auth,authpriv.none\", \"kern.*\", \"mail.err\", \"*.=info\"");
            Selector::ALL
        }),
    };
    let pattern = raw
        .pattern
        .as_ref()
        .and_then(|p| match Regex::new(p.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                check.err(
                    p.span(),
                    format!("`match` is not a valid regex: {e}"),
                    "see https://docs.rs/regex for the syntax; escape special characters with \\\\",
                );
                None
            }
        });
    let discard = raw.discard.as_ref().is_some_and(|d| *d.get_ref());
    let names = match (&raw.output, discard) {
        (Some(out), true) => {
            check.err(
                out.span(),
                "a rule with `discard = true` writes nowhere, so `output` has no meaning",
                "remove `output`, or put the outputs in a rule before this one",
            );
            return None;
        }
        (None, true) => Vec::new(),
        (Some(out), false) => out.get_ref().clone_vec(),
        (None, false) => {
            check.err(
                rule.span(),
                "this rule has no `output`",
                "add output = \"NAME\" naming an [output.NAME] section, or discard = true to drop what it matches",
            );
            return None;
        }
    };
    let out_span = raw.output.as_ref().map(|o| o.span()).unwrap_or_default();
    let mut indexes = Vec::new();
    for name in names {
        match outputs.iter().position(|o| o.name == name) {
            Some(i) => indexes.push(i),
            None => {
                let known: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                let hint = if known.is_empty() {
                    format!("declare it: [output.{name}] with type = \"file\" and a path")
                } else {
                    format!(
                        "declare [output.{name}], or use one of: {}",
                        known.join(", ")
                    )
                };
                check.err(
                    out_span.clone(),
                    format!("no output is named `{name}`"),
                    hint,
                );
            }
        }
    }
    let input_names = raw
        .input
        .as_ref()
        .map(|i| i.get_ref().clone_vec())
        .unwrap_or_default();
    for name in &input_names {
        if !inputs.contains_key(name) {
            let span = raw.input.as_ref().map(|i| i.span()).unwrap_or_default();
            check.err(
                span,
                format!("no input is named `{name}`"),
                "name an [input.NAME] section",
            );
        }
    }
    if check.errors.len() > errors_before {
        return None;
    }
    Some(Rule {
        selector,
        programs: raw
            .program
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        hostnames: raw
            .hostname
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        tls_peers: raw
            .tls_peer
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        inputs: input_names,
        units: raw
            .unit
            .as_ref()
            .map(|u| u.get_ref().clone_vec())
            .unwrap_or_default(),
        pattern,
        outputs: indexes,
        // A discard rule is a final rule with no outputs: nothing after it sees the message.
        is_final: discard || raw.is_final.as_ref().is_some_and(|f| *f.get_ref()),
    })
}

/// The socket paths the daemon binds besides the follow socket, and whose they are.
fn socket_paths(
    daemon: &DaemonSettings,
    inputs: &BTreeMap<String, InputSettings>,
) -> Vec<(PathBuf, String)> {
    let mut taken = vec![(
        daemon.control_socket.clone(),
        "the control socket".to_string(),
    )];
    for (name, input) in inputs {
        match &input.kind {
            InputKind::UnixDatagram(u) => {
                taken.push((u.unix.path.clone(), format!("input `{name}`")))
            }
            InputKind::UnixStream(s) => taken.extend(
                s.unix
                    .iter()
                    .map(|u| (u.path.clone(), format!("input `{name}`"))),
            ),
            _ => {}
        }
    }
    taken
}

/// Two inputs on one address or socket path would silently split or steal each other's
/// messages (UDP with `SO_REUSEADDR`, a Unix path unlinked by the second bind).
fn check_unique_endpoints(
    files: &[ParsedFile],
    inputs: &BTreeMap<String, InputSettings>,
    daemon: &DaemonSettings,
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    seen.insert(
        format!("unix {}", daemon.control_socket.display()),
        "the control socket",
    );
    // A socket where a log file is (or the reverse) would be replaced by the other.
    let file_names: Vec<String> = outputs
        .iter()
        .map(|o| format!("output `{}`", o.name))
        .collect();
    for (o, label) in outputs.iter().zip(&file_names) {
        let OutputKind::File(f) = &o.kind else {
            continue;
        };
        seen.insert(format!("unix {}", f.path.display()), label);
    }
    for (name, input) in inputs {
        let endpoints: Vec<String> = match &input.kind {
            InputKind::Udp(u) => u.listen.iter().map(|a| format!("udp {a}")).collect(),
            InputKind::Tcp(t) => t.listen.iter().map(|a| format!("tcp {a}")).collect(),
            InputKind::Tls(t) => t.stream.listen.iter().map(|a| format!("tcp {a}")).collect(),
            InputKind::UnixDatagram(u) => vec![format!("unix {}", u.unix.path.display())],
            InputKind::UnixStream(s) => s
                .unix
                .iter()
                .map(|u| format!("unix {}", u.path.display()))
                .collect(),
            InputKind::Kmsg(k) => vec![format!("kmsg {}", k.path.display())],
            InputKind::Journal(_) => Vec::new(),
        };
        for endpoint in endpoints {
            if let Some(first) = seen.insert(endpoint.clone(), name) {
                let place = files.iter().find_map(|pf| {
                    pf.raw.input.keys().find(|k| k.get_ref() == name).map(|k| {
                        SourceFile {
                            path: &pf.path,
                            text: &pf.text,
                        }
                        .error(Some(k.span()), "", None)
                    })
                });
                let (file, line, column) = place
                    .map(|e| (e.file, e.line, e.column))
                    .unwrap_or_default();
                errors.push(ConfigError {
                    file,
                    line,
                    column,
                    message: format!(
                        "input `{name}` and {} both use {endpoint}",
                        if first == "the control socket" || first.starts_with("output `") {
                            first.to_string()
                        } else {
                            format!("input `{first}`")
                        }
                    ),
                    hint: Some("give each input its own address or path".into()),
                });
            }
        }
    }
}

/// `kmsg` and `journal` inputs: no sockets, so none of the socket keys apply.
fn structured_input_kind(check: &mut Check<'_>, raw: &RawInput, kind: &str) -> Option<InputKind> {
    for (key, span) in [
        ("listen", span_of(&raw.listen)),
        ("mode", span_of(&raw.mode)),
        ("receive_buffer_bytes", span_of(&raw.receive_buffer_bytes)),
        (
            "max_message_size_bytes",
            span_of(&raw.max_message_size_bytes),
        ),
        ("max_connections", span_of(&raw.max_connections)),
        ("idle_timeout_secs", span_of(&raw.idle_timeout_secs)),
        ("use_sender_timestamp", span_of(&raw.use_sender_timestamp)),
    ] {
        check.not_for(span, key, kind, "it applies to socket inputs; remove it");
    }
    if kind == "kmsg" {
        refuse_journal_keys(check, raw, kind);
        let path = raw.path.as_ref().map_or_else(
            || PathBuf::from("/dev/kmsg"),
            |p| PathBuf::from(p.get_ref()),
        );
        let even_with_journald = raw
            .even_with_journald
            .as_ref()
            .is_some_and(|b| *b.get_ref());
        return Some(InputKind::Kmsg(KmsgSettings {
            path,
            even_with_journald,
        }));
    }
    check.not_for(
        span_of(&raw.path),
        "path",
        kind,
        "a journal input takes `directory` or `namespace`",
    );
    let from_head = match raw.from.as_ref().map(|f| f.get_ref().as_str()) {
        None | Some("tail") => false,
        Some("head") => true,
        Some(other) => {
            let span = raw.from.as_ref().map(Spanned::span).unwrap_or_default();
            check.err(span, format!("`from = \"{other}\"` is neither \"tail\" nor \"head\""), "use \"tail\" (new entries only, the default) or \"head\" (everything the journal holds)");
            false
        }
    };
    let min_priority = raw.min_priority.as_ref().and_then(|p| {
        let s = crate::message::Severity::from_name(p.get_ref());
        if s.is_none() {
            check.err(
                p.span(),
                format!("unknown priority `{}`", p.get_ref()),
                "use emerg, alert, crit, err, warning, notice, info or debug",
            );
        }
        s
    });
    if raw.directory.is_some() && raw.namespace.is_some() {
        let span = raw
            .namespace
            .as_ref()
            .map(Spanned::span)
            .unwrap_or_default();
        check.err(
            span,
            "`directory` and `namespace` both name a journal",
            "keep one of them",
        );
    }
    Some(InputKind::Journal(JournalSettings {
        from_head,
        units: raw
            .units
            .as_ref()
            .map(|u| u.get_ref().clone_vec())
            .unwrap_or_default(),
        identifiers: raw
            .identifiers
            .as_ref()
            .map(|u| u.get_ref().clone_vec())
            .unwrap_or_default(),
        min_priority,
        directory: raw.directory.as_ref().map(|d| PathBuf::from(d.get_ref())),
        namespace: raw.namespace.as_ref().map(|n| n.get_ref().clone()),
    }))
}

/// The journal input's own keys, refused on every other kind.
fn refuse_journal_keys(check: &mut Check<'_>, raw: &RawInput, kind: &str) {
    for (key, span) in [
        ("from", span_of(&raw.from)),
        ("units", span_of(&raw.units)),
        ("identifiers", span_of(&raw.identifiers)),
        ("min_priority", span_of(&raw.min_priority)),
        ("directory", span_of(&raw.directory)),
        ("namespace", span_of(&raw.namespace)),
    ] {
        check.not_for(span, key, kind, "it applies to journal inputs; remove it");
    }
}
