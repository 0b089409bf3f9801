//! The forward action's settings (`type = "forward"` outputs): targets, transport, framing,
//! format, balancing, reconnection, TLS client settings, and the action's queue
//! (`[output.NAME.queue]`). Validation reads the TLS files, as the TLS input's does, so
//! `logwelld --check-config` refuses what the action would refuse at start. Opens no socket.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::raw::{span_of, RawOutput, RawQueue};
use super::tls::parse_fingerprint;
use crate::queue::Fsync;
use crate::render::Format;

/// A forward action.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardSettings {
    /// Where to send, in order (`host:port`; names are resolved at each connection).
    pub targets: Vec<Target>,
    /// The transport.
    pub protocol: Protocol,
    /// How messages are delimited on a stream.
    pub framing: Framing,
    /// RFC 5424 (default) or RFC 3164 lines.
    pub format: Format,
    /// Which target gets the messages.
    pub balance: Balance,
    /// First wait after a failed connection; doubled at each failure (with jitter).
    pub reconnect_min: Duration,
    /// Longest wait between attempts.
    pub reconnect_max: Duration,
    /// Longest wait for a connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest wait for one write to a target that accepts nothing.
    pub write_timeout: Duration,
    /// TLS client settings (`protocol = "tls"`, or `"relp"` with `ca` or `fingerprints`).
    pub tls: Option<ForwardTls>,
    /// The queue (its `dir` is set from `[daemon] state_dir` once every file is read).
    pub queue: crate::queue::QueueSettings,
}

/// One target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// One datagram per message; no delivery check (at most once).
    Udp,
    /// TCP (RFC 6587).
    Tcp,
    /// TLS over TCP (RFC 5425).
    Tls,
    /// RELP (as rsyslog's `omrelp`): a message leaves the queue on the server's `200 OK`;
    /// over TLS when `ca` or `fingerprints` is set.
    Relp,
}

/// `framing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `LEN SP MSG` (RFC 6587 octet counting; RFC 5425's only framing).
    OctetCounting,
    /// `MSG LF`.
    Newline,
}

/// `balance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Everything to the first target that works; the others only while it does not.
    Failover,
    /// Batches in turn to every target that works.
    RoundRobin,
}

/// The TLS client side.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardTls {
    /// CA bundle the server's certificate must chain to (PEM); `None` with fingerprints only.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), when the server asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; the target's host by default.
    pub server_name: Option<String>,
    /// SHA-256 digests of accepted server certificates: with these, the certificate is
    /// pinned (matched exactly) instead of verified against a CA.
    pub fingerprints: Vec<[u8; 32]>,
}

/// Default `[output.NAME.queue] memory_bytes`.
pub const DEFAULT_QUEUE_MEMORY_BYTES: usize = 16 * 1024 * 1024;
/// Default `max_disk_bytes`.
pub const DEFAULT_QUEUE_MAX_DISK_BYTES: u64 = 1024 * 1024 * 1024;
/// Default `segment_bytes`.
pub const DEFAULT_QUEUE_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

fn parse_target(s: &str) -> Option<Target> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    Some(Target {
        host: host.to_string(),
        port,
    })
}

/// Builds a forward action's settings.
pub(crate) fn from_raw(check: &mut Check<'_>, raw: &RawOutput) -> Option<ForwardSettings> {
    let mut targets = Vec::new();
    match &raw.targets {
        None => check.err(
            raw.kind.span(),
            "a forward output needs `targets`",
            "add targets = [\"central.example.com:514\"]",
        ),
        Some(t) => {
            let list = t.get_ref().clone_vec();
            if list.is_empty() {
                check.err(
                    t.span(),
                    "`targets` is empty",
                    "name at least one \"host:port\"",
                );
            }
            for s in list {
                match parse_target(&s) {
                    Some(target) => targets.push(target),
                    None => check.err(
                        t.span(),
                        format!("`{s}` is not a target"),
                        "write \"host:port\", \"192.0.2.1:514\" or \"[2001:db8::1]:6514\"",
                    ),
                }
            }
        }
    }
    let protocol = check.pick(
        &raw.protocol,
        "protocol",
        Protocol::Tcp,
        &[
            ("tcp", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("tls", Protocol::Tls),
            ("relp", Protocol::Relp),
        ],
    );
    let framing = check.pick(
        &raw.framing,
        "framing",
        Framing::OctetCounting,
        &[
            ("octet-counting", Framing::OctetCounting),
            ("newline", Framing::Newline),
        ],
    );
    if protocol == Protocol::Udp {
        if let Some(f) = &raw.framing {
            check.err(
                f.span(),
                "`framing` does not apply to protocol = \"udp\"",
                "a datagram holds one message; remove it",
            );
        }
    }
    if protocol == Protocol::Relp {
        if let Some(f) = &raw.framing {
            check.err(
                f.span(),
                "`framing` does not apply to protocol = \"relp\"",
                "RELP frames every message itself; remove it",
            );
        }
    }
    let format = check.pick(
        &raw.format,
        "format",
        Format::Rfc5424,
        &[("rfc5424", Format::Rfc5424), ("rfc3164", Format::Rfc3164)],
    );
    let balance = check.pick(
        &raw.balance,
        "balance",
        Balance::Failover,
        &[
            ("failover", Balance::Failover),
            ("round-robin", Balance::RoundRobin),
        ],
    );
    let ms = |check: &mut Check<'_>, v: &Option<Spanned<i64>>, key: &str, d: u64| {
        Duration::from_millis(check.bounded_ms(v, key, d))
    };
    let reconnect_min = ms(check, &raw.reconnect_min_ms, "reconnect_min_ms", 500);
    let reconnect_max = ms(check, &raw.reconnect_max_ms, "reconnect_max_ms", 60_000);
    if reconnect_max < reconnect_min {
        if let Some(v) = raw
            .reconnect_max_ms
            .as_ref()
            .or(raw.reconnect_min_ms.as_ref())
        {
            check.err(
                v.span(),
                "`reconnect_max_ms` is smaller than `reconnect_min_ms`",
                "the wait starts at reconnect_min_ms and doubles up to reconnect_max_ms",
            );
        }
    }
    let connect_timeout = ms(check, &raw.connect_timeout_ms, "connect_timeout_ms", 10_000);
    let write_timeout = ms(check, &raw.write_timeout_ms, "write_timeout_ms", 30_000);
    let tls = forward_tls(check, raw, protocol);
    let queue = queue(check, raw.queue.as_ref().map(Spanned::get_ref));
    Some(ForwardSettings {
        targets,
        protocol,
        framing,
        format,
        balance,
        reconnect_min,
        reconnect_max,
        connect_timeout,
        write_timeout,
        tls,
        queue,
    })
}

fn forward_tls(check: &mut Check<'_>, raw: &RawOutput, protocol: Protocol) -> Option<ForwardTls> {
    let keys = [
        ("ca", span_of(&raw.ca)),
        ("cert", span_of(&raw.cert)),
        ("key", span_of(&raw.key)),
        ("server_name", span_of(&raw.server_name)),
        ("fingerprints", span_of(&raw.fingerprints)),
    ];
    // RELP speaks TLS when the server is to be verified.
    let relp_tls = protocol == Protocol::Relp && (raw.ca.is_some() || raw.fingerprints.is_some());
    if protocol != Protocol::Tls && !relp_tls {
        for (key, span) in keys {
            if let Some(span) = span {
                check.err(
                    span,
                    format!("`{key}` applies only to protocol = \"tls\" (or \"relp\" over TLS)"),
                    "set protocol = \"tls\", or remove it; RELP over TLS needs `ca` or `fingerprints`",
                );
            }
        }
        return None;
    }
    Some(client_tls(check, raw, None))
}

/// The TLS client settings of an output (`ca`, `cert`, `key`, `server_name`,
/// `fingerprints`), checked and read; `default_ca` when `ca` is not set.
pub(super) fn client_tls(
    check: &mut Check<'_>,
    raw: &RawOutput,
    default_ca: Option<PathBuf>,
) -> ForwardTls {
    let path = |v: &Option<Spanned<String>>| v.as_ref().map(|p| PathBuf::from(p.get_ref()));
    let mut fingerprints = Vec::new();
    if let Some(f) = &raw.fingerprints {
        for entry in f.get_ref().clone_vec() {
            match entry.strip_prefix("sha256:").and_then(parse_fingerprint) {
                Some(d) => fingerprints.push(d),
                None => check.err(
                    f.span(),
                    format!("`{entry}` is not a SHA-256 fingerprint"),
                    "write sha256: and 32 hex bytes, such as the output of `openssl x509 -noout -fingerprint -sha256`",
                ),
            }
        }
    }
    let tls = ForwardTls {
        ca: path(&raw.ca).or(default_ca),
        cert: path(&raw.cert),
        key: path(&raw.key),
        server_name: raw.server_name.as_ref().map(|s| s.get_ref().clone()),
        fingerprints,
    };
    if tls.ca.is_none() && tls.fingerprints.is_empty() {
        check.err(
            raw.kind.span(),
            "a tls forward output must verify the server: it needs `ca` or `fingerprints`",
            "add ca = \"/etc/logwell/tls/ca.pem\" (or fingerprints = [\"sha256:…\"] to pin the server's certificate)",
        );
    }
    match (&raw.cert, &raw.key) {
        (Some(c), None) => check.err(
            c.span(),
            "`cert` needs `key`",
            "add key = \"/etc/logwell/tls/client.key\"",
        ),
        (None, Some(k)) => check.err(
            k.span(),
            "`key` needs `cert`",
            "add cert = \"/etc/logwell/tls/client.pem\"",
        ),
        _ => {}
    }
    if tls.ca.is_none() && tls.fingerprints.is_empty() {
        return tls;
    }
    if let Err(e) = super::tls::client::client_config(&tls) {
        super::tls::client::refuse(check, raw, &e);
    }
    tls
}

pub(super) fn queue(check: &mut Check<'_>, raw: Option<&RawQueue>) -> crate::queue::QueueSettings {
    let default = RawQueue::default();
    let raw = raw.unwrap_or(&default);
    let memory_bytes = match &raw.memory_bytes {
        None => DEFAULT_QUEUE_MEMORY_BYTES,
        // 0 is allowed: every record goes to disk.
        Some(v) if matches!(v.get_ref(), super::raw::Size::Bytes(0)) => 0,
        Some(_) => check
            .size(&raw.memory_bytes, "memory_bytes")
            .map_or(DEFAULT_QUEUE_MEMORY_BYTES, |v| v as usize),
    };
    let max_disk_bytes = check
        .size(&raw.max_disk_bytes, "max_disk_bytes")
        .unwrap_or(DEFAULT_QUEUE_MAX_DISK_BYTES);
    let segment_bytes = check
        .size(&raw.segment_bytes, "segment_bytes")
        .unwrap_or(DEFAULT_QUEUE_SEGMENT_BYTES);
    let interval =
        Duration::from_millis(check.bounded_ms(&raw.fsync_interval_ms, "fsync_interval_ms", 1000));
    let fsync = check.pick(
        &raw.fsync,
        "fsync",
        Fsync::Interval(interval),
        &[
            ("none", Fsync::None),
            ("interval", Fsync::Interval(interval)),
            ("batch", Fsync::Batch),
        ],
    );
    if let (Some(i), Fsync::None | Fsync::Batch) = (&raw.fsync_interval_ms, fsync) {
        check.err(
            i.span(),
            "`fsync_interval_ms` applies only to fsync = \"interval\"",
            "remove it, or set fsync = \"interval\"",
        );
    }
    crate::queue::QueueSettings {
        dir: None,
        memory_bytes,
        max_disk_bytes,
        segment_bytes,
        fsync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("central.example.com:514"),
            Some(Target {
                host: "central.example.com".into(),
                port: 514
            })
        );
        assert_eq!(
            parse_target("[::1]:6514").map(|t| t.to_string()),
            Some("[::1]:6514".into())
        );
        assert_eq!(parse_target("host"), None);
        assert_eq!(parse_target("host:0"), None);
        assert_eq!(parse_target(":514"), None);
        assert_eq!(parse_target("host:port"), None);
    }
}
