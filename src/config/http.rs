//! The HTTP action's settings (`type = "http"` outputs): the endpoint and its preset
//! (`generic`, `clickhouse`, `elasticsearch` or `loki`), the body's encoding and compression, batching, headers and
//! credentials, TLS for `https://`, where refused records go (`dead_letter`), and the action's
//! queue (`[output.NAME.queue]`, the forward action's). Reads the credential files and the
//! TLS files, as the forward action's validation does; opens no socket.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::forward::ForwardTls;
use super::raw::RawOutput;

/// What the endpoint is, and so how a request is made and its answer read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preset {
    /// POST the body to `url`; 2xx is success.
    Generic,
    /// ClickHouse's HTTP interface: `INSERT INTO table FORMAT JSONEachRow`; a row the table
    /// refuses fails the whole request, with its error in the body.
    ClickHouse {
        /// The table (`db.table` allowed).
        table: String,
    },
    /// Elasticsearch or OpenSearch: `POST /_bulk`, one `create` per record, each item's
    /// status read from the answer.
    Elasticsearch {
        /// The index, with `{year}`, `{month}`, `{day}` and `{MEMBER}` of the record.
        index: String,
    },
    /// Grafana Loki: `POST /loki/api/v1/push`, records grouped into streams by their labels.
    Loki {
        /// Label names and their values, with `{MEMBER}` of the record.
        labels: Vec<(String, String)>,
    },
}

/// Most distinct values a Loki label takes; past it, a new value becomes `_other` (and is
/// counted), so a label fed from a field cannot explode Loki's index.
pub const MAX_LABEL_VALUES: usize = 1000;

/// How a batch's records make a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// One record per line (`application/x-ndjson`).
    Ndjson,
    /// A JSON array of the records (`application/json`).
    JsonArray,
}

/// `Content-Encoding` of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCompression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// An HTTP action.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    /// The endpoint (`http://` or `https://`, with its path and query).
    pub url: String,
    /// What the endpoint is.
    pub preset: Preset,
    /// How records make a body.
    pub encoding: Encoding,
    /// How the body is compressed.
    pub compression: BodyCompression,
    /// Records per request at most.
    pub batch_records: usize,
    /// Bytes of records per request at most (one record larger than this goes alone).
    pub batch_bytes: usize,
    /// How long a batch waits to fill before it is sent.
    pub linger: Duration,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The `Authorization` header's value (`Basic …` or `Bearer …`), read from its files.
    pub authorization: Option<String>,
    /// TLS client settings for `https://`.
    pub tls: Option<ForwardTls>,
    /// Longest wait for a connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest wait for an answer.
    pub request_timeout: Duration,
    /// First wait before a retry; doubled at each failure (with jitter).
    pub retry_min: Duration,
    /// Longest wait before a retry.
    pub retry_max: Duration,
    /// Where refused records go, one JSON object per line; set from `[daemon] state_dir`
    /// when not given.
    pub dead_letter: Option<PathBuf>,
    /// The queue (its `dir` is set from `[daemon] state_dir` once every file is read).
    pub queue: crate::queue::QueueSettings,
}

/// The system's CA bundle, the default `ca` of an `https://` endpoint.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(crate) fn from_raw(check: &mut Check<'_>, raw: &RawOutput) -> Option<HttpSettings> {
    let url = match &raw.url {
        Some(u) => {
            let text = u.get_ref().clone();
            let ok = text
                .parse::<hyper::Uri>()
                .ok()
                .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
                .filter(|uri| uri.host().is_some_and(|h| !h.is_empty()));
            if ok.is_none() {
                check.err(
                    u.span(),
                    format!("`{text}` is not an http:// or https:// URL"),
                    "write the endpoint, such as \"http://127.0.0.1:8123/\" or \"https://logs.example.com/ingest\"",
                );
            }
            text
        }
        None => {
            check.err(
                raw.kind.span(),
                "an http output needs `url`",
                "add url = \"http://127.0.0.1:8123/\" (ClickHouse) or the endpoint that takes the records",
            );
            String::new()
        }
    };
    let preset_name = check.pick(
        &raw.preset,
        "preset",
        "generic",
        &[
            ("generic", "generic"),
            ("clickhouse", "clickhouse"),
            ("elasticsearch", "elasticsearch"),
            ("opensearch", "elasticsearch"),
            ("loki", "loki"),
        ],
    );
    for (key, value, wants) in [
        (
            "index",
            raw.index.as_ref().map(Spanned::span),
            "elasticsearch",
        ),
        ("labels", raw.labels.as_ref().map(Spanned::span), "loki"),
    ] {
        if let Some(span) = value.filter(|_| preset_name != wants) {
            check.err(
                span,
                format!("`{key}` applies only to preset = \"{wants}\""),
                format!("set preset = \"{wants}\", or remove it"),
            );
        }
    }
    let preset = match (preset_name, &raw.table) {
        ("elasticsearch", _) => {
            let index = raw.index.as_ref().map_or_else(
                || "logwell-{year}.{month}.{day}".to_string(),
                |i| i.get_ref().clone(),
            );
            if let Some(i) = &raw.index {
                if let Err(why) = record_template_ok(&index) {
                    check.err(
                        i.span(),
                        format!("`index`: {why}"),
                        "write a name such as \"logs-{host}-{year}.{month}.{day}\"",
                    );
                } else if index
                    .chars()
                    .any(|c| c.is_ascii_uppercase() || " \"*\\<|,>/?".contains(c))
                {
                    check.err(
                        i.span(),
                        format!("`{index}` is not an index name"),
                        "index names are lower case, without spaces or \" * \\ < | , > / ?",
                    );
                }
            }
            Preset::Elasticsearch { index }
        }
        ("loki", _) => {
            let mut labels = Vec::new();
            match &raw.labels {
                None => labels.push(("job".to_string(), "logwell".to_string())),
                Some(l) => {
                    for (name, value) in l.get_ref() {
                        let name_ok = name
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                        if !name_ok {
                            check.err(
                                l.span(),
                                format!("`{name}` is not a Loki label name"),
                                "write letters, digits and `_`, not starting with a digit",
                            );
                        } else if let Err(why) = record_template_ok(value) {
                            check.err(
                                l.span(),
                                format!("label `{name}`: {why}"),
                                "write a value such as \"{host}\" or \"web\"",
                            );
                        } else {
                            labels.push((name.clone(), value.clone()));
                        }
                    }
                    if l.get_ref().is_empty() {
                        check.err(
                            l.span(),
                            "`labels` is empty",
                            "Loki needs at least one label, such as job = \"logwell\"",
                        );
                    }
                }
            }
            Preset::Loki { labels }
        }
        ("clickhouse", Some(t)) => {
            let table = t.get_ref().clone();
            let valid = !table.is_empty()
                && table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                check.err(
                    t.span(),
                    format!("`{table}` is not a table name"),
                    "write letters, digits, `_`, and `.` between a database and its table",
                );
            }
            Preset::ClickHouse { table }
        }
        ("clickhouse", None) => {
            check.err(
                raw.kind.span(),
                "preset = \"clickhouse\" needs `table`",
                "add table = \"logs\" (the table the rows go to)",
            );
            Preset::Generic
        }
        (_, Some(t)) => {
            check.err(
                t.span(),
                "`table` applies only to preset = \"clickhouse\"",
                "set preset = \"clickhouse\", or remove it",
            );
            Preset::Generic
        }
        _ => Preset::Generic,
    };
    let encoding = check.pick(
        &raw.encoding,
        "encoding",
        Encoding::Ndjson,
        &[
            ("ndjson", Encoding::Ndjson),
            ("json_array", Encoding::JsonArray),
        ],
    );
    let clickhouse = preset_name == "clickhouse";
    if clickhouse && encoding != Encoding::Ndjson {
        if let Some(e) = &raw.encoding {
            check.err(
                e.span(),
                "ClickHouse takes one JSON object per line (JSONEachRow)",
                "remove `encoding`",
            );
        }
    }
    let compression = check.pick(
        &raw.compression,
        "compression",
        BodyCompression::None,
        &[
            ("none", BodyCompression::None),
            ("gzip", BodyCompression::Gzip),
            ("zstd", BodyCompression::Zstd),
        ],
    );
    if clickhouse && compression == BodyCompression::Zstd {
        if let Some(c) = &raw.compression {
            check.err(
                c.span(),
                "ClickHouse's HTTP interface refuses zstd bodies (Code 89)",
                "use compression = \"gzip\"",
            );
        }
    }
    let batch_records = check.bounded(&raw.batch_records, "batch_records", 10_000, 1_000_000);
    let batch_bytes = check.bounded(&raw.batch_bytes, "batch_bytes", 4 << 20, 256 << 20);
    let linger = match &raw.linger_ms {
        None => Duration::from_millis(200),
        Some(v) if (0..=60_000).contains(v.get_ref()) => Duration::from_millis(*v.get_ref() as u64),
        Some(v) => {
            check.err(
                v.span(),
                "`linger_ms` must be a number of milliseconds from 0 to 60000",
                "remove the key to use the default (200)",
            );
            Duration::from_millis(200)
        }
    };
    let mut headers = Vec::new();
    if let Some(h) = &raw.headers {
        for (name, value) in h.get_ref() {
            let valid = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && hyper::header::HeaderValue::from_str(value).is_ok();
            let reserved = [
                "content-length",
                "content-encoding",
                "host",
                "transfer-encoding",
            ]
            .contains(&name.to_ascii_lowercase().as_str());
            if !valid {
                check.err(
                    h.span(),
                    format!("`{name}: {value}` is not a valid header"),
                    "write header names as tokens (X-Scope-OrgID) and values as visible text",
                );
            } else if reserved {
                check.err(
                    h.span(),
                    format!("logwell sets `{name}` itself"),
                    "remove it from `headers`",
                );
            } else {
                headers.push((name.clone(), value.clone()));
            }
        }
    }
    let authorization = authorization(check, raw);
    let tls = if url.starts_with("https://") {
        let default_ca = std::path::Path::new(SYSTEM_CA)
            .exists()
            .then(|| PathBuf::from(SYSTEM_CA));
        Some(super::forward::client_tls(check, raw, default_ca))
    } else {
        for (key, v) in [("ca", &raw.ca), ("cert", &raw.cert), ("key", &raw.key)] {
            if let Some(v) = v {
                check.err(
                    v.span(),
                    format!("`{key}` applies only to an https:// url"),
                    "use https://, or remove it",
                );
            }
        }
        None
    };
    let ms = |check: &mut Check<'_>, v: &Option<Spanned<i64>>, key: &str, d: u64| {
        Duration::from_millis(check.bounded_ms(v, key, d))
    };
    let connect_timeout = ms(check, &raw.connect_timeout_ms, "connect_timeout_ms", 10_000);
    let request_timeout = ms(check, &raw.request_timeout_ms, "request_timeout_ms", 30_000);
    let retry_min = ms(check, &raw.reconnect_min_ms, "reconnect_min_ms", 500);
    let retry_max = ms(check, &raw.reconnect_max_ms, "reconnect_max_ms", 60_000);
    let dead_letter = raw.dead_letter.as_ref().map(|p| PathBuf::from(p.get_ref()));
    if let (Some(p), Some(d)) = (&dead_letter, &raw.dead_letter) {
        if !p.is_absolute() {
            check.err(
                d.span(),
                "`dead_letter` must be an absolute path",
                "write /var/log/logwell/NAME.dead.jsonl, or remove it to keep it in the state directory",
            );
        }
    }
    let queue = super::forward::queue(check, raw.queue.as_ref().map(Spanned::get_ref));
    Some(HttpSettings {
        url,
        preset,
        encoding,
        compression,
        batch_records,
        batch_bytes,
        linger,
        headers,
        authorization,
        tls,
        connect_timeout,
        request_timeout,
        retry_min,
        retry_max,
        dead_letter,
        queue,
    })
}

/// Whether a template of record members (`{host}`, `{fields.app}`, `{year}`) is well formed.
fn record_template_ok(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!("a `}}` without its `{{` in `{text}`"));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("a `{{` without its `}}` in `{text}`"));
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(format!("`{{{name}}}` is not a member name"));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// `Authorization` from `user` and `password_file` (basic) or `token_file` (bearer).
fn authorization(check: &mut Check<'_>, raw: &RawOutput) -> Option<String> {
    let mut read = |v: &Spanned<String>, key: &str| -> Option<String> {
        match std::fs::read_to_string(v.get_ref()) {
            Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                check.err(
                    v.span(),
                    format!("cannot read `{key}` {}: {e}", v.get_ref()),
                    "write the secret alone in a file root can read (mode 0600)",
                );
                None
            }
        }
    };
    match (&raw.user, &raw.password_file, &raw.token_file) {
        (_, _, Some(t)) if raw.user.is_some() || raw.password_file.is_some() => {
            check.err(
                t.span(),
                "`token_file` and `user`/`password_file` are two kinds of credentials",
                "keep one of them",
            );
            None
        }
        (None, None, Some(t)) => read(t, "token_file").map(|token| format!("Bearer {token}")),
        (Some(u), p, None) => {
            let password = match p {
                Some(p) => read(p, "password_file")?,
                None => String::new(),
            };
            let pair = format!("{}:{password}", u.get_ref());
            Some(format!("Basic {}", base64(pair.as_bytes())))
        }
        (None, Some(p), None) => {
            check.err(
                p.span(),
                "`password_file` needs `user`",
                "add user = \"logwell\"",
            );
            None
        }
        _ => None,
    }
}

/// Standard base64 with padding (RFC 4648), for one basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_as_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("default:", "ZGVmYXVsdDo="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
