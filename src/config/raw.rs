//! The configuration exactly as written: serde structs with every field optional and unknown
//! keys refused. Spans are kept so that validation can point at the offending value. Nothing
//! here checks meaning; `settings` does.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// One configuration file (the main one or a drop-in).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) daemon: Option<RawDaemon>,
    #[serde(default)]
    pub(crate) input: BTreeMap<Spanned<String>, Spanned<RawInput>>,
    #[serde(default)]
    pub(crate) output: BTreeMap<Spanned<String>, Spanned<RawOutput>>,
    #[serde(default)]
    pub(crate) rule: Vec<Spanned<RawRule>>,
    /// The default rotation policy of every file output.
    pub(crate) rotation: Option<RawRotation>,
    /// Limits over all file outputs together.
    pub(crate) retention: Option<RawRetention>,
    /// The live-follow service.
    pub(crate) follow: Option<Spanned<RawFollow>>,
    /// Named line templates (`[template.NAME]`), for outputs' `template`.
    #[serde(default)]
    pub(crate) template: BTreeMap<Spanned<String>, Spanned<RawTemplate>>,
    /// Other packages' rsyslog drop-ins, translated.
    pub(crate) rsyslog: Option<Spanned<RawRsyslog>>,
}

/// `[rsyslog]`: which `/etc/rsyslog.d` drop-ins are translated and read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRsyslog {
    /// `"packages"` (those other packages installed), `"all"`, `"none"`, or a list of files.
    pub(crate) drop_ins: Option<Spanned<OneOrMany>>,
    /// The drop-in directory (`/etc/rsyslog.d`).
    pub(crate) dir: Option<Spanned<String>>,
    /// Where logrotate's stanzas are (`/etc/logrotate.d`): a drop-in's file that one of them
    /// rotates is left to logrotate.
    pub(crate) logrotate_dir: Option<Spanned<String>>,
}

/// `[template.NAME]`: a line template outputs name in `template = "NAME"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    /// The template text.
    pub(crate) text: Spanned<String>,
}

/// `[follow]`: the live-follow service (HTTP with SSE, and raw TCP).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFollow {
    /// HTTP addresses (SSE, status, metrics, the web page).
    pub(crate) listen: Option<Spanned<OneOrMany>>,
    /// Raw TCP addresses (`nc host port`).
    pub(crate) tcp_listen: Option<Spanned<OneOrMany>>,
    /// The local Unix socket (HTTP), authorised by the peer's credentials.
    pub(crate) socket: Option<Spanned<String>>,
    /// Serve TCP listeners on loopback without a token or client certificates.
    pub(crate) allow_unauthenticated: Option<Spanned<bool>>,
    /// Names the HTTP listeners answer to in the `Host` header, besides their address.
    pub(crate) host_names: Option<Spanned<OneOrMany>>,
    /// The file followed when a request names none (an output name).
    pub(crate) default_file: Option<Spanned<String>>,
    /// Bearer token required from clients.
    pub(crate) token: Option<Spanned<String>>,
    /// A file holding the bearer token.
    pub(crate) token_file: Option<Spanned<String>>,
    /// TLS certificate chain (PEM) for both listeners.
    pub(crate) cert: Option<Spanned<String>>,
    /// TLS private key (PEM).
    pub(crate) key: Option<Spanned<String>>,
    /// CA bundle (PEM) client certificates must chain to; makes them required.
    pub(crate) client_ca: Option<Spanned<String>>,
    /// Origins allowed by CORS (`"*"` for any).
    pub(crate) cors_origins: Option<Spanned<OneOrMany>>,
    /// Seconds between heartbeats on an idle stream.
    pub(crate) heartbeat_secs: Option<Spanned<i64>>,
    /// Subscribers at once, over all listeners.
    pub(crate) max_subscribers: Option<Spanned<i64>>,
    /// Subscribers at once from one IP address.
    pub(crate) max_subscribers_per_peer: Option<Spanned<i64>>,
    /// Files other programs write, followable too.
    #[serde(default)]
    pub(crate) files: Vec<Spanned<RawFollowFile>>,
}

/// `[[follow.files]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFollowFile {
    pub(crate) name: Spanned<String>,
    /// A file, a directory, or a glob pattern.
    pub(crate) path: Spanned<String>,
    /// How its lines are written, for filtering: traditional, rfc3339, rfc5424, json, raw.
    pub(crate) format: Option<Spanned<String>>,
}

/// `[rotation]` and `[output.NAME.rotation]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    pub(crate) max_size: Option<Spanned<Size>>,
    pub(crate) every: Option<Spanned<String>>,
    pub(crate) at_hour: Option<Spanned<i64>>,
    pub(crate) compress: Option<Spanned<String>>,
    pub(crate) compress_level: Option<Spanned<i64>>,
    pub(crate) delay_compress: Option<Spanned<bool>>,
    pub(crate) naming: Option<Spanned<String>>,
    pub(crate) keep: Option<Spanned<i64>>,
    pub(crate) max_age_days: Option<Spanned<i64>>,
    pub(crate) max_total_size: Option<Spanned<Size>>,
    /// `"logwell"` (default), or `"logrotate"`: another program rotates the file, and logwell
    /// neither rotates it nor removes its generations (it reopens the file once renamed).
    pub(crate) rotated_by: Option<Spanned<String>>,
}

/// `[retention]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    pub(crate) max_disk_usage: Option<Spanned<Size>>,
    pub(crate) min_free_space: Option<Spanned<Size>>,
}

/// A size: a number of bytes, or a string with a unit (`"100M"`, `"1.5G"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Size {
    Bytes(i64),
    Text(String),
}

/// `[daemon]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    pub(crate) hostname: Option<Spanned<String>>,
    pub(crate) control_socket: Option<Spanned<String>>,
    pub(crate) log_level: Option<Spanned<String>>,
    pub(crate) state_dir: Option<Spanned<String>>,
    /// Privilege separation (on by default when started as root).
    pub(crate) privsep: Option<Spanned<bool>>,
    /// The user the unprivileged worker runs as.
    pub(crate) user: Option<Spanned<String>>,
}

/// `[input.NAME]`: one flat struct for every kind, so that a key that does not apply to the
/// declared `type` gets a precise error instead of serde's generic one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    #[serde(rename = "type")]
    pub(crate) kind: Spanned<String>,
    pub(crate) listen: Option<Spanned<OneOrMany>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) receive_buffer_bytes: Option<Spanned<i64>>,
    pub(crate) max_message_size_bytes: Option<Spanned<i64>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) idle_timeout_secs: Option<Spanned<i64>>,
    pub(crate) use_sender_timestamp: Option<Spanned<bool>>,
    /// Body parsers: `json`, `cee`, `logfmt`, `kv`.
    pub(crate) parse: Option<Spanned<OneOrMany>>,
    /// The pattern of the `regex` body parser.
    pub(crate) regex: Option<Spanned<String>>,
    /// The `kv` parser's separators and quotes.
    pub(crate) kv_pair_separator: Option<Spanned<String>>,
    pub(crate) kv_separator: Option<Spanned<String>>,
    pub(crate) kv_quotes: Option<Spanned<String>>,
    /// Header values from the fields the parsers read (`fields.NAME`).
    pub(crate) severity_from: Option<Spanned<String>>,
    pub(crate) time_from: Option<Spanned<String>>,
    pub(crate) host_from: Option<Spanned<String>>,
    pub(crate) tag_from: Option<Spanned<String>>,
    /// udp, tcp: peers allowed to send (addresses or CIDR blocks).
    pub(crate) permit: Option<Spanned<OneOrMany>>,
    /// tcp: connections one peer IP may hold at once.
    pub(crate) max_connections_per_peer: Option<Spanned<i64>>,
    /// udp, tcp: messages per second per peer IP.
    pub(crate) rate_limit_per_sec: Option<Spanned<i64>>,
    /// udp, tcp: token bucket size per peer IP.
    pub(crate) rate_limit_burst: Option<Spanned<i64>>,
    /// udp, tcp: most peers whose buckets are remembered.
    pub(crate) rate_limit_peers: Option<Spanned<i64>>,
    /// tcp: seconds a connection may hold an incomplete frame.
    pub(crate) frame_timeout_secs: Option<Spanned<i64>>,
    /// udp, tcp: the prefix length by which IPv6 peers are one peer for the limits.
    pub(crate) ipv6_peer_prefix_bits: Option<Spanned<i64>>,
    /// journal: where to start without a saved cursor (`"tail"` or `"head"`).
    pub(crate) from: Option<Spanned<String>>,
    /// journal: only these systemd units.
    pub(crate) units: Option<Spanned<OneOrMany>>,
    /// journal: only these syslog identifiers.
    pub(crate) identifiers: Option<Spanned<OneOrMany>>,
    /// journal: only entries at least this severe.
    pub(crate) min_priority: Option<Spanned<String>>,
    /// journal: read this journal directory instead of the system journal.
    pub(crate) directory: Option<Spanned<String>>,
    /// kmsg: read the kernel log even where journald runs (and reads it too).
    pub(crate) even_with_journald: Option<Spanned<bool>>,
    /// journal: read this journal namespace (`systemd-journald NAMESPACE`).
    pub(crate) namespace: Option<Spanned<String>>,
    /// tls: the server's certificate chain (PEM).
    pub(crate) cert: Option<Spanned<String>>,
    /// tls: the server's private key (PEM).
    pub(crate) key: Option<Spanned<String>>,
    /// tls: `"none"`, `"optional"` or `"required"`.
    pub(crate) client_auth: Option<Spanned<String>>,
    /// tls: the CA bundle client certificates must chain to (PEM).
    pub(crate) ca: Option<Spanned<String>>,
    /// tls: the client names (`*.example.com`) or `sha256:` fingerprints allowed in.
    pub(crate) permitted_peers: Option<Spanned<OneOrMany>>,
    /// file: the files and glob patterns to follow.
    pub(crate) paths: Option<Spanned<OneOrMany>>,
    /// file: patterns of paths never read.
    pub(crate) exclude: Option<Spanned<OneOrMany>>,
    /// file: the tag of its messages (default: the file's stem).
    pub(crate) tag: Option<Spanned<String>>,
    /// file: the facility of its messages (default `user`).
    pub(crate) facility: Option<Spanned<String>>,
    /// file: the severity of its messages (default `notice`).
    pub(crate) severity: Option<Spanned<String>>,
    /// file: longer lines are cut (default 64 KiB).
    pub(crate) max_line_bytes: Option<Spanned<i64>>,
    /// relp: what a frame over `max_message_size_bytes` gets (`"truncate"` or `"refuse"`).
    pub(crate) oversize: Option<Spanned<String>>,
    /// http: the file holding the bearer token clients must send.
    pub(crate) token_file: Option<Spanned<String>>,
    /// http: larger request bodies are refused (413).
    pub(crate) max_body_bytes: Option<Spanned<i64>>,
    /// http: requests with more records are refused (413).
    pub(crate) max_records: Option<Spanned<i64>>,
    /// file: lines joined into one record (`[input.NAME.multiline]`).
    pub(crate) multiline: Option<Spanned<RawMultiline>>,
    /// file: files open at once at most.
    pub(crate) max_open_files: Option<Spanned<i64>>,
    /// file: a file that has not grown for this long is closed until it grows.
    pub(crate) close_inactive_secs: Option<Spanned<i64>>,
    /// file: a file first seen unmodified for this long is not read (only what it gets later).
    pub(crate) ignore_older_secs: Option<Spanned<i64>>,
    /// file: a last line without its newline is handed on after this long.
    pub(crate) partial_line_timeout_ms: Option<Spanned<i64>>,
    /// file: `"plain"` (a line is a message's text) or `"syslog"` (a line is a syslog message).
    pub(crate) format: Option<Spanned<String>>,
}

/// `[input.NAME.multiline]`: a file input's multi-line records.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMultiline {
    /// A regex that a record's first line matches.
    pub(crate) start: Option<Spanned<String>>,
    /// A regex that lines joining the one before match.
    #[serde(rename = "continue")]
    pub(crate) continues: Option<Spanned<String>>,
    /// A record waiting this long for more lines is handed on.
    pub(crate) timeout_ms: Option<Spanned<i64>>,
    /// Lines of one record at most.
    pub(crate) max_lines: Option<Spanned<i64>>,
    /// Bytes of one record at most.
    pub(crate) max_bytes: Option<Spanned<i64>>,
}

/// `[output.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    #[serde(rename = "type")]
    pub(crate) kind: Spanned<String>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    /// A line template: its text (with `{fields}`), or the name of a `[template.NAME]`.
    pub(crate) template: Option<Spanned<String>>,
    /// The JSON object each line is: `"SOURCE"` or `"NAME=SOURCE"` per member.
    pub(crate) json_fields: Option<Spanned<Vec<String>>>,
    pub(crate) sync: Option<Spanned<bool>>,
    pub(crate) owner: Option<Spanned<String>>,
    pub(crate) group: Option<Spanned<String>>,
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) flush_interval_ms: Option<Spanned<i64>>,
    pub(crate) buffer_bytes: Option<Spanned<i64>>,
    pub(crate) backlog_bytes: Option<Spanned<i64>>,
    pub(crate) rotation: Option<Spanned<RawRotation>>,
    /// file, templated path: most files open at once.
    pub(crate) max_open_files: Option<Spanned<i64>>,
    /// file, templated path: close a file unwritten this long.
    pub(crate) idle_close_secs: Option<Spanned<i64>>,
    /// file, templated path: where a message goes whose path would leave the base directory.
    pub(crate) fallback: Option<Spanned<String>>,
    /// file, templated path: permission bits of directories logwell creates.
    pub(crate) dir_mode: Option<Spanned<String>>,
    /// file: "last message repeated N times" instead of identical consecutive lines.
    pub(crate) reduce_repeats: Option<Spanned<bool>>,
    /// users: the users whose terminals get the messages (`"*"`: everyone logged in).
    pub(crate) users: Option<Spanned<OneOrMany>>,
    /// users: the utmp file listing who is logged in where.
    pub(crate) utmp: Option<Spanned<String>>,
    /// users: longest wait for one terminal; forward: for one write.
    pub(crate) write_timeout_ms: Option<Spanned<i64>>,
    /// forward: `"host:port"` targets, in order.
    pub(crate) targets: Option<Spanned<OneOrMany>>,
    /// forward: `"udp"`, `"tcp"` or `"tls"`.
    pub(crate) protocol: Option<Spanned<String>>,
    /// forward: `"octet-counting"` or `"newline"`.
    pub(crate) framing: Option<Spanned<String>>,
    /// forward: `"failover"` or `"round-robin"`.
    pub(crate) balance: Option<Spanned<String>>,
    /// forward: first wait before reconnecting.
    pub(crate) reconnect_min_ms: Option<Spanned<i64>>,
    /// forward: longest wait before reconnecting.
    pub(crate) reconnect_max_ms: Option<Spanned<i64>>,
    /// forward: longest wait for a connection and handshake.
    pub(crate) connect_timeout_ms: Option<Spanned<i64>>,
    /// forward, tls: CA bundle the server must chain to.
    pub(crate) ca: Option<Spanned<String>>,
    /// forward, tls: client certificate chain.
    pub(crate) cert: Option<Spanned<String>>,
    /// forward, tls: client private key.
    pub(crate) key: Option<Spanned<String>>,
    /// forward, tls: the name the server's certificate must carry.
    pub(crate) server_name: Option<Spanned<String>>,
    /// forward, tls: pinned `sha256:` fingerprints of the server's certificate.
    pub(crate) fingerprints: Option<Spanned<OneOrMany>>,
    /// forward, kafka: the action's queue.
    pub(crate) queue: Option<Spanned<RawQueue>>,
    /// kafka: the bootstrap brokers, `"host:port"`.
    pub(crate) brokers: Option<Spanned<OneOrMany>>,
    /// kafka: the topic, templated (`"logs.{facility}"`).
    pub(crate) topic: Option<Spanned<String>>,
    /// kafka: the partition key, templated (default `"{host}"`).
    pub(crate) partition_key: Option<Spanned<String>>,
    /// kafka: `"none"`, `"zstd"`, `"lz4"`, `"gzip"` or `"snappy"`.
    pub(crate) compression: Option<Spanned<String>>,
    /// kafka: `"all"`, `"1"` or `"0"`.
    pub(crate) acks: Option<Spanned<String>>,
    /// kafka: the idempotent producer (default true).
    pub(crate) idempotence: Option<Spanned<bool>>,
    /// kafka: milliseconds the producer waits to fill a batch.
    pub(crate) linger_ms: Option<Spanned<i64>>,
    /// kafka: bytes of one produced batch at most.
    pub(crate) batch_bytes: Option<Spanned<i64>>,
    /// kafka: `client.id`.
    pub(crate) client_id: Option<Spanned<String>>,
    /// kafka: milliseconds before an unacknowledged message fails (and is sent again).
    pub(crate) delivery_timeout_ms: Option<Spanned<i64>>,
    /// kafka: `"PLAIN"`, `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    pub(crate) sasl_mechanism: Option<Spanned<String>>,
    /// kafka: the SASL user name.
    pub(crate) sasl_username: Option<Spanned<String>>,
    /// kafka: the SASL password.
    pub(crate) sasl_password: Option<Spanned<String>>,
    /// http: the endpoint.
    pub(crate) url: Option<Spanned<String>>,
    /// http: `"generic"` or `"clickhouse"`.
    pub(crate) preset: Option<Spanned<String>>,
    /// http, clickhouse: the table rows go to.
    pub(crate) table: Option<Spanned<String>>,
    /// http: `"ndjson"` or `"json_array"`.
    pub(crate) encoding: Option<Spanned<String>>,
    /// http: records per request at most.
    pub(crate) batch_records: Option<Spanned<i64>>,
    /// http: extra request headers.
    pub(crate) headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// http: the basic-auth user.
    pub(crate) user: Option<Spanned<String>>,
    /// http: the file holding the basic-auth password.
    pub(crate) password_file: Option<Spanned<String>>,
    /// http: the file holding a bearer token.
    pub(crate) token_file: Option<Spanned<String>>,
    /// http: where refused records go.
    pub(crate) dead_letter: Option<Spanned<String>>,
    /// http: longest wait for an answer.
    pub(crate) request_timeout_ms: Option<Spanned<i64>>,
    /// http, elasticsearch: the index, templated from the record.
    pub(crate) index: Option<Spanned<String>>,
    /// http, loki: the stream labels, templated from the record.
    pub(crate) labels: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

impl RawOutput {
    /// Every key but `type`, as written in a file, with the place of its value when it is
    /// set: what `settings` checks against the keys of the output's type.
    pub(crate) fn key_spans(&self) -> [(&'static str, Option<Range<usize>>); 59] {
        [
            ("path", span_of(&self.path)),
            ("format", span_of(&self.format)),
            ("template", span_of(&self.template)),
            ("json_fields", span_of(&self.json_fields)),
            ("sync", span_of(&self.sync)),
            ("owner", span_of(&self.owner)),
            ("group", span_of(&self.group)),
            ("mode", span_of(&self.mode)),
            ("flush_interval_ms", span_of(&self.flush_interval_ms)),
            ("buffer_bytes", span_of(&self.buffer_bytes)),
            ("backlog_bytes", span_of(&self.backlog_bytes)),
            ("rotation", span_of(&self.rotation)),
            ("max_open_files", span_of(&self.max_open_files)),
            ("idle_close_secs", span_of(&self.idle_close_secs)),
            ("fallback", span_of(&self.fallback)),
            ("dir_mode", span_of(&self.dir_mode)),
            ("reduce_repeats", span_of(&self.reduce_repeats)),
            ("users", span_of(&self.users)),
            ("utmp", span_of(&self.utmp)),
            ("write_timeout_ms", span_of(&self.write_timeout_ms)),
            ("targets", span_of(&self.targets)),
            ("protocol", span_of(&self.protocol)),
            ("framing", span_of(&self.framing)),
            ("balance", span_of(&self.balance)),
            ("reconnect_min_ms", span_of(&self.reconnect_min_ms)),
            ("reconnect_max_ms", span_of(&self.reconnect_max_ms)),
            ("connect_timeout_ms", span_of(&self.connect_timeout_ms)),
            ("ca", span_of(&self.ca)),
            ("cert", span_of(&self.cert)),
            ("key", span_of(&self.key)),
            ("server_name", span_of(&self.server_name)),
            ("fingerprints", span_of(&self.fingerprints)),
            ("queue", span_of(&self.queue)),
            ("brokers", span_of(&self.brokers)),
            ("topic", span_of(&self.topic)),
            ("partition_key", span_of(&self.partition_key)),
            ("compression", span_of(&self.compression)),
            ("acks", span_of(&self.acks)),
            ("idempotence", span_of(&self.idempotence)),
            ("linger_ms", span_of(&self.linger_ms)),
            ("batch_bytes", span_of(&self.batch_bytes)),
            ("client_id", span_of(&self.client_id)),
            ("delivery_timeout_ms", span_of(&self.delivery_timeout_ms)),
            ("sasl_mechanism", span_of(&self.sasl_mechanism)),
            ("sasl_username", span_of(&self.sasl_username)),
            ("sasl_password", span_of(&self.sasl_password)),
            ("url", span_of(&self.url)),
            ("preset", span_of(&self.preset)),
            ("table", span_of(&self.table)),
            ("encoding", span_of(&self.encoding)),
            ("batch_records", span_of(&self.batch_records)),
            ("headers", span_of(&self.headers)),
            ("user", span_of(&self.user)),
            ("password_file", span_of(&self.password_file)),
            ("token_file", span_of(&self.token_file)),
            ("dead_letter", span_of(&self.dead_letter)),
            ("request_timeout_ms", span_of(&self.request_timeout_ms)),
            ("index", span_of(&self.index)),
            ("labels", span_of(&self.labels)),
        ]
    }
}

/// `[output.NAME.queue]`: a forward action's disk-assisted queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    /// Bytes held in memory before spilling to disk (0: everything to disk).
    pub(crate) memory_bytes: Option<Spanned<Size>>,
    /// Bytes on disk at most; then senders are held back.
    pub(crate) max_disk_bytes: Option<Spanned<Size>>,
    /// Size of one segment file.
    pub(crate) segment_bytes: Option<Spanned<Size>>,
    /// `"none"`, `"interval"` or `"batch"`.
    pub(crate) fsync: Option<Spanned<String>>,
    /// With `fsync = "interval"`: milliseconds between syncs.
    pub(crate) fsync_interval_ms: Option<Spanned<i64>>,
}

/// `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) selector: Option<Spanned<String>>,
    pub(crate) program: Option<Spanned<OneOrMany>>,
    pub(crate) hostname: Option<Spanned<OneOrMany>>,
    /// The verified TLS client name (`Source::tls_peer`) is one of these.
    pub(crate) tls_peer: Option<Spanned<OneOrMany>>,
    pub(crate) input: Option<Spanned<OneOrMany>>,
    pub(crate) unit: Option<Spanned<OneOrMany>>,
    #[serde(rename = "match")]
    pub(crate) pattern: Option<Spanned<String>>,
    /// `field."fields.NAME" = "value"` or a list: the field is one of them.
    pub(crate) field: Option<Spanned<std::collections::BTreeMap<String, OneOrMany>>>,
    /// `field_match."fields.NAME" = "regex"` (or a list: every one matches).
    pub(crate) field_match: Option<Spanned<std::collections::BTreeMap<String, OneOrMany>>>,
    /// `field_not_match."msg" = "regex"`: absent, or no regex of the list matches.
    pub(crate) field_not_match: Option<Spanned<std::collections::BTreeMap<String, OneOrMany>>>,
    /// Fields that must be present.
    pub(crate) exists: Option<Spanned<OneOrMany>>,
    /// Numeric comparisons: `"fields.NAME > 1000"`.
    #[serde(rename = "where")]
    pub(crate) compare: Option<Spanned<OneOrMany>>,
    pub(crate) output: Option<Spanned<OneOrMany>>,
    #[serde(rename = "final")]
    pub(crate) is_final: Option<Spanned<bool>>,
    /// Drop matching messages: no later rule sees them (rsyslog's `stop`).
    pub(crate) discard: Option<Spanned<bool>>,
    /// Rewrite steps for the rules after this one: body parsers (`json`, `cee`, `logfmt`,
    /// `kv`, `regex`) whose fields the later rules see.
    pub(crate) parse: Option<Spanned<OneOrMany>>,
    /// The pattern of the `regex` parser of `parse`.
    pub(crate) parse_regex: Option<Spanned<String>>,
    /// Values set from templates.
    pub(crate) set: Option<Spanned<BTreeMap<String, String>>>,
    /// Values removed.
    pub(crate) remove: Option<Spanned<OneOrMany>>,
    /// Parsed fields dropped, by name pattern.
    pub(crate) drop_fields: Option<Spanned<OneOrMany>>,
    /// Values masked (`[[rule.mask]]`).
    pub(crate) mask: Option<Vec<Spanned<RawMask>>>,
}

/// `[[rule.mask]]`: one value masked one way.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMask {
    /// `msg`, `host`, … or `fields.NAME`.
    pub(crate) field: Spanned<String>,
    /// Keep this many leading bits of IPv4 addresses.
    pub(crate) ipv4: Option<Spanned<i64>>,
    /// Keep this many leading bits of IPv6 addresses.
    pub(crate) ipv6: Option<Spanned<i64>>,
    /// Card numbers: all but the last four digits.
    pub(crate) card: Option<Spanned<bool>>,
    /// Replace each match of this regex …
    pub(crate) regex: Option<Spanned<String>>,
    /// … with this (`$1`, `$name`; default `***`).
    pub(crate) with: Option<Spanned<String>>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn clone_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Where a value is written, when it is.
pub(crate) fn span_of<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}
