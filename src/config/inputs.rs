//! Building `[input.NAME]` sections: each kind's settings from a [`RawInput`]
//! (addresses, socket paths, the journal's and the kernel log's keys, the keys a kind does
//! not take refused), and the check that no two inputs share an address or a socket path.
//! The network limits are built in `limits`, a tls input's files in `tls`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::error::{ConfigError, SourceFile};
use super::limits::Limits;
use super::load::ParsedFile;
use super::raw::{span_of, RawInput};
use super::settings::{
    DaemonSettings, HttpInputSettings, InputKind, InputSettings, JournalSettings, KmsgSettings,
    OutputKind, OutputSettings, Oversize, RelpSettings, StreamProtocol, StreamSettings,
    UdpSettings, UnixDatagramSettings, UnixPath, DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    MAX_MESSAGE_SIZE_BYTES,
};
use crate::parse::body::{BodyParser, HeaderFrom, KvOptions};

/// The port a network input listens on when `listen` names only an address: 514 for udp
/// and tcp (rsyslog's and RFC 5426's), 6514 for tls (RFC 5425).
pub(crate) fn default_port(kind: &str) -> u16 {
    match kind {
        "tls" => 6514,
        "http" => 8080,
        // RELP has no assigned port; rsyslog's documentation and most fleets use 2514.
        "relp" => 2514,
        _ => 514,
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

/// A RELP input's own settings (`oversize`); `None` for the other kinds, which refuse them.
fn relp_settings(check: &mut Check<'_>, raw: &RawInput, kind: &str) -> Option<RelpSettings> {
    if kind != "relp" {
        check.not_for(
            span_of(&raw.oversize),
            "oversize",
            kind,
            "it applies to relp inputs; remove it (other stream inputs truncate)",
        );
        return None;
    }
    let oversize = match raw
        .oversize
        .as_ref()
        .map(|o| (o.get_ref().as_str(), o.span()))
    {
        None | Some(("truncate", _)) => Oversize::Truncate,
        Some(("refuse", _)) => Oversize::Refuse,
        Some((other, span)) => {
            check.err(
                span,
                format!("`{other}` is not an oversize choice"),
                "use \"truncate\" (write it cut and marked) or \"refuse\" (answer 500)",
            );
            Oversize::Truncate
        }
    };
    Some(RelpSettings { oversize })
}

/// An HTTP input's own settings (`token_file`, `max_body_bytes`, `max_records`); `None` for
/// the other kinds, which refuse them.
fn http_input(check: &mut Check<'_>, raw: &RawInput, kind: &str) -> Option<HttpInputSettings> {
    if kind != "http" {
        for (key, span) in [
            ("token_file", span_of(&raw.token_file)),
            ("max_body_bytes", span_of(&raw.max_body_bytes)),
            ("max_records", span_of(&raw.max_records)),
        ] {
            check.not_for(span, key, kind, "it applies to http inputs; remove it");
        }
        return None;
    }
    if let Some(p) = &raw.parse {
        check.err(
            p.span(),
            "an http input's records are JSON objects whose members are the fields already",
            "remove `parse`; take header values with severity_from, time_from, host_from, tag_from",
        );
    }
    let token = match &raw.token_file {
        Some(f) => match std::fs::read_to_string(f.get_ref()) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                check.err(
                    f.span(),
                    format!("{} is empty", f.get_ref()),
                    "write the token (a long random string) in it",
                );
                None
            }
            Err(e) => {
                check.err(
                    f.span(),
                    format!("cannot read token_file {}: {e}", f.get_ref()),
                    "write the token in a file root can read (mode 0600)",
                );
                None
            }
        },
        None => {
            let off_loopback = raw.listen.as_ref().is_some_and(|l| {
                l.get_ref().clone_vec().iter().any(|a| {
                    let ip = a
                        .parse::<SocketAddr>()
                        .map(|s| s.ip())
                        .or_else(|_| a.trim_matches(['[', ']']).parse::<std::net::IpAddr>());
                    ip.is_ok_and(|ip| !ip.is_loopback())
                })
            });
            // A client certificate is a credential too.
            let certificates = raw.permitted_peers.is_some()
                || raw
                    .client_auth
                    .as_ref()
                    .is_some_and(|c| c.get_ref() == "required");
            if off_loopback && !certificates {
                check.err(
                    raw.kind.span(),
                    "an http input on a non-loopback address needs `token_file`",
                    "add token_file = \"/etc/logwell/http.token\" (clients send Authorization: Bearer TOKEN), require client certificates (cert, key, ca, client_auth = \"required\"), or listen on 127.0.0.1",
                );
            }
            None
        }
    };
    Some(HttpInputSettings {
        token,
        max_body_bytes: check.bounded(&raw.max_body_bytes, "max_body_bytes", 4 << 20, 1 << 30),
        max_records: check.bounded(&raw.max_records, "max_records", 10_000, 1_000_000),
    })
}

pub(super) fn input_kind(check: &mut Check<'_>, raw: &RawInput) -> Option<InputKind> {
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
        None if matches!(kind, "tcp" | "tls" | "relp" | "http") => {
            Some(crate::config::limits::DEFAULT_IDLE_TIMEOUT)
        }
        None => None,
    };
    let limits = crate::config::limits::from_raw(check, raw, max_connections);
    super::tls::refuse_tls_keys(check, raw, kind);
    if kind != "kmsg" {
        check.not_for(
            span_of(&raw.even_with_journald),
            "even_with_journald",
            kind,
            "it applies to kmsg inputs; remove it",
        );
    }
    if kind == "file" {
        return super::file_input::file_input_kind(check, raw);
    }
    super::file_input::refuse_file_keys(check, raw, kind);
    if matches!(kind, "kmsg" | "journal") {
        return structured_input_kind(check, raw, kind);
    }
    refuse_journal_keys(check, raw, kind);
    if !matches!(
        kind,
        "udp" | "tcp" | "tls" | "relp" | "http" | "unix_datagram" | "unix_stream"
    ) {
        check.err(
            raw.kind.span(),
            format!("unknown input type `{kind}`"),
            "use \"udp\", \"tcp\", \"tls\", \"relp\", \"http\", \"unix_datagram\", \"unix_stream\", \"kmsg\", \"journal\" or \"file\"",
        );
        return None;
    }
    let protocol = match (
        relp_settings(check, raw, kind),
        http_input(check, raw, kind),
    ) {
        (Some(r), _) => StreamProtocol::Relp(r),
        (_, Some(h)) => StreamProtocol::Http(h),
        _ => StreamProtocol::Syslog,
    };
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
        "udp" | "tcp" | "tls" | "relp" | "http" => {
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
            protocol: StreamProtocol::Syslog,
        })),
        "tls" | "relp" | "http" => {
            let listen = listen_addrs(check, raw, kind);
            let stream = StreamSettings {
                listen,
                unix: None,
                max_connections,
                idle_timeout: idle,
                max_message_size_bytes: max,
                use_sender_timestamp: sender_ts.unwrap_or(true),
                limits: limits.clone(),
                protocol,
            };
            if kind != "tls" && !super::tls::has_tls_keys(raw) {
                return Some(InputKind::Tcp(stream));
            }
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
            protocol: StreamProtocol::Syslog,
        })),
        _ => unreachable!("checked above"),
    }
}

/// The socket paths the daemon binds besides the follow socket, and whose they are.
pub(super) fn socket_paths(
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
pub(super) fn check_unique_endpoints(
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
            InputKind::Journal(_) | InputKind::File(_) => Vec::new(),
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
    let keys = [
        ("from", span_of(&raw.from)),
        ("units", span_of(&raw.units)),
        ("identifiers", span_of(&raw.identifiers)),
        ("min_priority", span_of(&raw.min_priority)),
        ("directory", span_of(&raw.directory)),
        ("namespace", span_of(&raw.namespace)),
    ];
    check.not_for_each(&keys, kind, "it applies to journal inputs; remove it");
}

/// The body parsers an input names (`parse = ["json", "logfmt"]`), every unknown name refused.
pub(super) fn body_parsers(check: &mut Check<'_>, raw: &RawInput) -> Vec<BodyParser> {
    let names = raw
        .parse
        .as_ref()
        .map(|n| n.get_ref().clone_vec())
        .unwrap_or_default();
    if let Some(r) = &raw.regex {
        if !names.iter().any(|n| n == "regex") {
            check.err(
                r.span(),
                "`regex` is read only when `parse` names it",
                "add \"regex\" to parse, where it should be tried",
            );
        }
    }
    if !names.iter().any(|n| n == "kv") {
        for (key, v) in [
            ("kv_pair_separator", &raw.kv_pair_separator),
            ("kv_separator", &raw.kv_separator),
            ("kv_quotes", &raw.kv_quotes),
        ] {
            if let Some(v) = v {
                check.err(
                    v.span(),
                    format!("`{key}` is read only when `parse` names kv"),
                    "add \"kv\" to parse, or remove it",
                );
            }
        }
    }
    let Some(listed) = &raw.parse else {
        return Vec::new();
    };
    let mut parsers = Vec::new();
    for name in names {
        let parser = match name.as_str() {
            "regex" => match &raw.regex {
                None => {
                    check.err(
                        listed.span(),
                        "`regex` in parse needs the input's `regex` pattern",
                        "add regex = \"(?P<method>[A-Z]+) (?P<path>\\\\S+)\": each named group becomes a field",
                    );
                    continue;
                }
                Some(r) => match regex::bytes::Regex::new(r.get_ref()) {
                    Ok(re) if re.capture_names().flatten().next().is_some() => {
                        BodyParser::Regex(re)
                    }
                    Ok(_) => {
                        check.err(
                            r.span(),
                            "the regex has no named group, so it would read no field",
                            "name the groups: (?P<user>\\\\w+)",
                        );
                        continue;
                    }
                    Err(e) => {
                        check.err(
                            r.span(),
                            format!("`regex` is not a valid regex: {e}"),
                            "see https://docs.rs/regex for the syntax",
                        );
                        continue;
                    }
                },
            },
            "kv" => BodyParser::Kv(kv_options(check, raw)),
            other => match BodyParser::from_name(other) {
                Some(p) => p,
                None => {
                    check.err(
                        listed.span(),
                        format!("`{name}` is not a body parser"),
                        format!("use one of {}", BodyParser::NAMES.join(", ")),
                    );
                    continue;
                }
            },
        };
        if parsers.contains(&parser) {
            check.err(
                listed.span(),
                format!("`{name}` is named twice in `parse`"),
                "name each parser once",
            );
        } else {
            parsers.push(parser);
        }
    }
    parsers
}

/// `severity_from`, `time_from`, `host_from` and `tag_from`: fields a parser read, so the
/// input needs `parse`.
pub(super) fn header_from(
    check: &mut Check<'_>,
    raw: &RawInput,
    parsers: &[BodyParser],
) -> HeaderFrom {
    let mut from = HeaderFrom::default();
    for (key, value, slot) in [
        ("severity_from", &raw.severity_from, &mut from.severity),
        ("time_from", &raw.time_from, &mut from.time),
        ("host_from", &raw.host_from, &mut from.host),
        ("tag_from", &raw.tag_from, &mut from.tag),
    ] {
        let Some(v) = value else { continue };
        if parsers.is_empty() && raw.kind.get_ref() != "http" {
            check.err(
                v.span(),
                format!("`{key}` takes a value from the fields a body parser reads, and this input has none"),
                "add parse = [\"json\"] (or logfmt, kv) to the input",
            );
            continue;
        }
        *slot = super::rules::field_path(check, v.get_ref(), v.span());
    }
    if raw.kind.get_ref() == "http" {
        // A record's usual members, unless the input names others.
        let default = |slot: &mut Option<String>, member: &str| {
            slot.get_or_insert_with(|| member.to_string());
        };
        default(&mut from.severity, "severity");
        default(&mut from.time, "time");
        default(&mut from.host, "host");
        default(&mut from.tag, "app");
    }
    from
}

/// The `kv` parser's options: `kv_pair_separator` (default a space), `kv_separator` (`=`)
/// and `kv_quotes` (`"`), each checked to be usable.
fn kv_options(check: &mut Check<'_>, raw: &RawInput) -> KvOptions {
    let mut options = KvOptions::default();
    for (key, value, slot, may_be_empty) in [
        (
            "kv_pair_separator",
            &raw.kv_pair_separator,
            &mut options.pair_sep,
            false,
        ),
        (
            "kv_separator",
            &raw.kv_separator,
            &mut options.kv_sep,
            false,
        ),
        ("kv_quotes", &raw.kv_quotes, &mut options.quotes, true),
    ] {
        let Some(v) = value else { continue };
        let text = v.get_ref();
        if (text.is_empty() && !may_be_empty) || text.chars().any(char::is_control) {
            check.err(
                v.span(),
                format!("`{key}` must be visible text, such as \";\" or \":\""),
                "write one or more characters, not empty and without control characters",
            );
            continue;
        }
        *slot = text.clone();
    }
    if options.pair_sep == options.kv_sep {
        let span = raw
            .kv_separator
            .as_ref()
            .or(raw.kv_pair_separator.as_ref())
            .map(|v| v.span())
            .unwrap_or_default();
        check.err(
            span,
            "`kv_separator` and `kv_pair_separator` are the same",
            "use different ones, such as kv_pair_separator = \";\" and kv_separator = \"=\"",
        );
    }
    options
}
