//! The HTTP action (`type = "http"`): POSTs batches of the JSON lines input tasks formatted
//! for it to an endpoint (ClickHouse's HTTP interface with `preset = "clickhouse"`, or any
//! receiver of NDJSON or JSON arrays), from its own disk-assisted queue, on its own thread:
//! a dead endpoint holds back nothing but this action.
//!
//! - **intake** is the queued actions' [`Intake`](super::queued::Intake): chunks in, one record per line.
//! - **delivery** waits until `batch_records` are queued or the oldest has waited `linger`,
//!   reads a batch, and POSTs it (gzip or zstd when asked) over one kept-alive HTTP/1.1
//!   connection (TLS for `https://`, [`crate::config::client_config`]). The batch leaves the
//!   queue only once every record in it is settled: sent with a 2xx answer, or refused and
//!   written to the dead-letter file.
//!
//! # Answers
//! - 2xx: delivered.
//! - 408, 429, 5xx, a broken connection, no answer within `request_timeout_ms`: the same body
//!   again after a back-off (`reconnect_min_ms` doubled up to `reconnect_max_ms`, ±25%
//!   jitter), or after `Retry-After` seconds when the server says so (capped at the maximum).
//! - 401, 403, 404, 407: the endpoint or the credentials are wrong, not the records: retried
//!   like a 5xx, and logged, so that fixing the configuration loses nothing.
//! - Any other 4xx (400, 413, 422 …), and for ClickHouse a 500 whose `Code:` is a data error
//!   (a row the table cannot take): the batch is split in halves and each half sent on its
//!   own, down to the single records the endpoint refuses, which go to the dead-letter file
//!   (one JSON object per line: time, output, status, the server's reason, the record). One
//!   bad record never blocks the rest. ClickHouse refuses a whole request for one bad row,
//!   so halving finds it in log2(batch) requests.
//!
//! Duplicates (at least once): a request that reached the server but whose answer was lost
//! (a timeout, a reset) is sent again; so are the halves already delivered of a batch being
//! split when logwelld stops.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::queued::Handoff;
use super::{Chunk, WriterCommand};
use crate::config::{BodyCompression, Encoding, HttpSettings, Preset, MAX_LABEL_VALUES};
use crate::queue::Batch;
use crate::stats::OutputStats;

/// The longest part of an error answer kept (logged, and written with a dead letter).
const MAX_REASON: usize = 1024;

/// ClickHouse error codes that mean a row cannot be taken (its data), not a failure of the
/// server: parse errors, wrong types, unknown fields.
const CLICKHOUSE_DATA_ERRORS: &[u32] = &[6, 26, 27, 33, 38, 41, 53, 69, 70, 72, 117, 131];

/// A running HTTP action.
pub(crate) struct HttpAction {
    pub(crate) name: String,
    pub(crate) settings: HttpSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
}

impl HttpAction {
    /// Runs until every input task let go of the action's channel; then what was not
    /// delivered is kept in the queue's files for the next start.
    pub(crate) async fn run(self) {
        let HttpAction {
            name,
            settings,
            stats,
            rx,
            ctl,
        } = self;
        let (name, settings, stats) = (&name, &settings, &stats);
        let deliver = |shared: Arc<Handoff>| async move {
            Delivery {
                name,
                settings,
                shared: &shared,
                stats,
                client: Client::new(settings, name),
                failures: 0,
                label_values: std::collections::HashMap::new(),
                batch_start: Instant::now(),
            }
            .run()
            .await
        };
        let split = super::forward::split_lines;
        super::queued::run(
            "http",
            name,
            &settings.queue,
            stats,
            rx,
            ctl,
            split,
            deliver,
        )
        .await;
    }
}

/// What an endpoint's answer means for the records sent.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Taken.
    Delivered,
    /// Not now: send again after the wait (the server's `Retry-After`, if any).
    Retry(String, Option<Duration>),
    /// Not these records: split, down to the ones refused.
    Refused(Option<u16>, String),
    /// One answer per record (Elasticsearch's `_bulk`).
    Items(Vec<Item>),
}

/// One record's answer inside a `_bulk` answer.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Delivered,
    Retry(String),
    Refused(u16, String),
}

/// Reads an answer. Pure, for the tests.
fn verdict(preset: &Preset, status: u16, retry_after: Option<&str>, body: &[u8]) -> Verdict {
    let reason = || {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_REASON)]);
        format!("{status} {}", text.trim())
    };
    if (200..300).contains(&status) {
        if let Preset::Elasticsearch { .. } = preset {
            return bulk_items(body);
        }
        return Verdict::Delivered;
    }
    if let Preset::ClickHouse { .. } = preset {
        if let Some(code) = clickhouse_code(body) {
            if CLICKHOUSE_DATA_ERRORS.contains(&code) {
                return Verdict::Refused(Some(status), reason());
            }
        }
    }
    let after = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        408 | 429 | 500..=599 | 401 | 403 | 404 | 407 => Verdict::Retry(reason(), after),
        _ => Verdict::Refused(Some(status), reason()),
    }
}

/// The `Code: N` ClickHouse puts at the start of an error answer.
fn clickhouse_code(body: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(&body[..body.len().min(200)]).ok()?;
    let rest = text.trim_start().strip_prefix("Code: ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Makes the body of `records`: NDJSON or a JSON array, then compressed. Pure.
fn encode(records: &[&[u8]], encoding: Encoding, compression: BodyCompression) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.len() + 1).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(size);
    match encoding {
        Encoding::Ndjson => {
            for r in records {
                body.extend_from_slice(r);
                body.push(b'\n');
            }
        }
        Encoding::JsonArray => {
            body.push(b'[');
            for (i, r) in records.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(r);
            }
            body.push(b']');
        }
    }
    compress(body, compression)
}

/// `body` with `compression` applied.
fn compress(body: Vec<u8>, compression: BodyCompression) -> Vec<u8> {
    match compression {
        BodyCompression::None => body,
        BodyCompression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            gz.write_all(&body).expect("writing to memory");
            gz.finish().expect("writing to memory")
        }
        BodyCompression::Zstd => zstd::bulk::compress(&body, 3).expect("compressing in memory"),
    }
}

/// Renders a template of record members: `{year}`, `{month}`, `{day}` (of the record's
/// `time`, else `now`, in UTC) and `{MEMBER}` (a dotted path into the record; a string as
/// it is, another value as JSON, an absent one empty). Pure.
fn render_record(
    template: &str,
    record: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let time = || {
        record
            .get("time")
            .and_then(|t| t.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&chrono::Utc))
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        match name {
            "year" => out.push_str(&time().format("%Y").to_string()),
            "month" => out.push_str(&time().format("%m").to_string()),
            "day" => out.push_str(&time().format("%d").to_string()),
            _ => {
                let value = name.split('.').try_fold(record, |v, key| v.get(key));
                match value {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(serde_json::Value::Null) | None => {}
                    Some(v) => out.push_str(&v.to_string()),
                }
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// An Elasticsearch `_bulk` body: a `create` line naming the index, then the record. Pure.
fn bulk_body(part: &[&[u8]], index: &str, now: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let fixed = !index.contains('{');
    let mut body = Vec::with_capacity(part.iter().map(|r| r.len() + 64).sum());
    for r in part {
        let name = if fixed {
            index.to_string()
        } else {
            let record = serde_json::from_slice(r).unwrap_or(serde_json::Value::Null);
            render_record(index, &record, now)
        };
        let action = serde_json::json!({"create": {"_index": name}});
        body.extend_from_slice(action.to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(r);
        body.push(b'\n');
    }
    body
}

/// Reads a `_bulk` answer: each item's status (2xx delivered, 429 and 5xx again, other
/// 4xx refused with the error's type and reason). Pure.
fn bulk_items(answer: &[u8]) -> Verdict {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return Verdict::Retry("the _bulk answer is not JSON".into(), None);
    };
    if v.get("errors") == Some(&serde_json::Value::Bool(false)) {
        return Verdict::Delivered;
    }
    let Some(items) = v.get("items").and_then(|i| i.as_array()) else {
        return Verdict::Retry("the _bulk answer has no items".into(), None);
    };
    Verdict::Items(
        items
            .iter()
            .map(|item| {
                let result = item.as_object().and_then(|o| o.values().next());
                let status = result
                    .and_then(|r| r.get("status"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0) as u16;
                let error = result.and_then(|r| r.get("error"));
                let why = match error {
                    Some(e) => format!(
                        "{status} {}: {}",
                        e.get("type").and_then(|t| t.as_str()).unwrap_or("error"),
                        e.get("reason").and_then(|t| t.as_str()).unwrap_or("")
                    ),
                    None => status.to_string(),
                };
                match status {
                    200..=299 => Item::Delivered,
                    429 | 500..=599 | 0 => Item::Retry(why),
                    _ => Item::Refused(status, why),
                }
            })
            .collect(),
    )
}

/// A Loki push body: the records grouped into streams by their rendered labels, each entry
/// `[nanoseconds, line]` with the record's `time` (else `now`) and the record as its line.
/// A label value past [`MAX_LABEL_VALUES`] distinct ones becomes `_other`; returns how many
/// did. Pure but for `seen`, the values each label took so far.
fn loki_body(
    part: &[&[u8]],
    labels: &[(String, String)],
    seen: &mut std::collections::HashMap<String, std::collections::HashSet<String>>,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<u8>, u64) {
    use serde_json::{json, Map, Value};
    let mut streams: Vec<(Map<String, Value>, Vec<Value>)> = Vec::new();
    let mut over = 0;
    for r in part {
        let record = serde_json::from_slice(r).unwrap_or(Value::Null);
        let mut stream = Map::new();
        for (name, template) in labels {
            let mut value = render_record(template, &record, now);
            let values = seen.entry(name.clone()).or_default();
            if !values.contains(&value) {
                if values.len() >= MAX_LABEL_VALUES {
                    value = "_other".into();
                    over += 1;
                } else {
                    values.insert(value.clone());
                }
            }
            stream.insert(name.clone(), Value::String(value));
        }
        let ts = record
            .get("time")
            .and_then(|t| t.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&chrono::Utc));
        let ns = ts.timestamp_nanos_opt().unwrap_or_default().to_string();
        let entry = json!([ns, String::from_utf8_lossy(r)]);
        match streams.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, values)) => values.push(entry),
            None => streams.push((stream, vec![entry])),
        }
    }
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|(stream, values)| json!({"stream": stream, "values": values}))
        .collect();
    (json!({ "streams": streams }).to_string().into_bytes(), over)
}

/// One kept-alive HTTP/1.1 connection to the endpoint, made again when it breaks.
struct Client {
    /// `http` or `https`.
    tls: Option<tokio_rustls::TlsConnector>,
    host: String,
    port: u16,
    /// The request target (path and query, the preset's query added).
    target: String,
    /// The `Host` header.
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    content_type: &'static str,
    content_encoding: Option<&'static str>,
    extra: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Client {
    fn new(settings: &HttpSettings, name: &str) -> Client {
        let uri: hyper::Uri = settings.url.parse().expect("checked by the configuration");
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut target = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let api = match &settings.preset {
            Preset::Elasticsearch { .. } => Some("/_bulk"),
            Preset::Loki { .. } => Some("/loki/api/v1/push"),
            _ => None,
        };
        if let Some(api) = api {
            // The server's base URL, unless it already names the API.
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if !path.ends_with(api) {
                let mut t = format!("{}{api}", path.trim_end_matches('/'));
                if !query.is_empty() {
                    t.push('?');
                    t.push_str(query);
                }
                target = t;
            }
        }
        if let Preset::ClickHouse { table } = &settings.preset {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("query", &format!("INSERT INTO {table} FORMAT JSONEachRow"))
                .append_pair("date_time_input_format", "best_effort")
                .append_pair("input_format_skip_unknown_fields", "1")
                .finish();
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&query);
        }
        let tls = settings
            .tls
            .as_ref()
            .and_then(|t| match crate::config::client_config(t) {
                Ok(c) => Some(tokio_rustls::TlsConnector::from(c)),
                Err(e) => {
                    tracing::error!(output = %name, "http: {e}");
                    None
                }
            });
        let mut extra = Vec::new();
        for (n, v) in &settings.headers {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(n.as_bytes()),
                hyper::header::HeaderValue::from_str(v),
            ) {
                extra.push((n, v));
            }
        }
        if let Some(a) = &settings.authorization {
            if let Ok(mut v) = hyper::header::HeaderValue::from_str(a) {
                v.set_sensitive(true);
                extra.push((hyper::header::AUTHORIZATION, v));
            }
        }
        Client {
            tls: if https { tls } else { None },
            authority: uri
                .authority()
                .map_or_else(|| host.clone(), |a| a.as_str().to_string()),
            host,
            port,
            target,
            sender: None,
            content_type: match (&settings.preset, settings.encoding) {
                (Preset::ClickHouse { .. }, _) => "text/plain; charset=utf-8",
                (Preset::Elasticsearch { .. }, _) => "application/x-ndjson",
                (Preset::Loki { .. }, _) => "application/json",
                (_, Encoding::Ndjson) => "application/x-ndjson",
                (_, Encoding::JsonArray) => "application/json",
            },
            content_encoding: match settings.compression {
                BodyCompression::None => None,
                BodyCompression::Gzip => Some("gzip"),
                BodyCompression::Zstd => Some("zstd"),
            },
            extra,
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
        }
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, String> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                Some(connector) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| format!("`{}` is not a server name: {e}", self.host))?;
                    let stream = connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS handshake with {} failed: {e}", self.host))?;
                    handshake(TokioIo::new(stream)).await
                }
                None => handshake(TokioIo::new(tcp)).await,
            }
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .unwrap_or_else(|_| Err(format!("no connection within {:?}", self.connect_timeout)))
    }

    /// POSTs `body`: the status, the `Retry-After` header and the start of the answer.
    async fn post(&mut self, body: Vec<u8>) -> Result<(u16, Option<String>, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        let mut req = Request::post(self.target.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, self.content_type);
        if let Some(enc) = self.content_encoding {
            req = req.header(hyper::header::CONTENT_ENCODING, enc);
        }
        for (n, v) in &self.extra {
            req = req.header(n, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot make the request: {e}"))?;
        let exchange = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, String>((status, retry_after, body))
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok((status, retry_after, body))) => {
                // Keep the connection unless the server ends it.
                if status != StatusCode::REQUEST_TIMEOUT {
                    self.sender = Some(sender);
                }
                Ok((status.as_u16(), retry_after, body))
            }
            Ok(Err(e)) => Err(format!("request failed: {e}")),
            Err(_) => Err(format!("no answer within {:?}", self.request_timeout)),
        }
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

struct Delivery<'a> {
    name: &'a str,
    settings: &'a HttpSettings,
    shared: &'a Handoff,
    stats: &'a OutputStats,
    client: Client,
    /// Failed requests in a row, for the back-off.
    failures: u32,
    /// Loki: the values each label took so far (bounded by [`MAX_LABEL_VALUES`]).
    label_values: std::collections::HashMap<String, std::collections::HashSet<String>>,
    /// When the batch being delivered was read off the queue (for `latency_us`).
    batch_start: Instant,
}

impl Delivery<'_> {
    async fn run(mut self) {
        let mut oldest: Option<Instant> = None;
        loop {
            let stopping = self.shared.stopping.load(Relaxed);
            let (unread, waiting) = {
                let q = self.shared.queue();
                (q.has_unread(), q.len().saturating_sub(q.in_flight()))
            };
            if !unread {
                if stopping {
                    break;
                }
                oldest = None;
                self.sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Gather a batch: full, or its oldest record waited `linger`.
            if !stopping && (waiting as usize) < self.settings.batch_records {
                let since = *oldest.get_or_insert_with(Instant::now);
                let due = since + self.settings.linger;
                if Instant::now() < due {
                    tokio::select! {
                        _ = self.shared.wake.notified() => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                    continue;
                }
            }
            oldest = None;
            if stopping {
                // What is queued stays for the next start.
                break;
            }
            let mut batch = Batch::default();
            let read = {
                let mut q = self.shared.queue();
                let r = q.read(
                    &mut batch,
                    self.settings.batch_records,
                    self.settings.batch_bytes,
                );
                crate::output::queued::disk_events("http", self.name, &mut q, self.stats);
                r
            };
            match read {
                Ok(0) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.stats.errors.fetch_add(1, Relaxed);
                    tracing::error!(output = %self.name, "http: {e}");
                    self.sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            if self.deliver(&batch).await {
                self.ack(batch);
            } else {
                // Stopping in the middle: the batch stays queued.
                break;
            }
        }
        let n = self.shared.queue().rewind();
        if n > 0 {
            tracing::debug!(output = %self.name, n, "http: undelivered messages kept queued at stop");
        }
    }

    /// Sleeps `d`, or until records are pushed or intake ends.
    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = self.shared.wake.notified() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    fn ack(&mut self, batch: Batch) {
        let mut q = self.shared.queue();
        if let Err(e) = q.ack(&batch) {
            self.stats.errors.fetch_add(1, Relaxed);
            tracing::error!(output = %self.name, "http: {e}");
        }
        self.stats.queued.store(q.len(), Relaxed);
        self.stats.on_disk.store(q.disk_records(), Relaxed);
        drop(q);
        self.shared.room.notify_one();
    }

    /// Settles every record of `batch`: delivered or dead-lettered. Returns `false` when the
    /// daemon stops first.
    async fn deliver(&mut self, batch: &Batch) -> bool {
        let records: Vec<&[u8]> = batch.records().collect();
        self.batch_start = Instant::now();
        // Parts still to send (indices into `records`), the next one last.
        let mut todo: Vec<Vec<usize>> = vec![(0..records.len()).collect()];
        while let Some(indices) = todo.pop() {
            let part: Vec<&[u8]> = indices.iter().map(|&i| records[i]).collect();
            let body = self.body(&part);
            let bytes: u64 = part.iter().map(|r| r.len() as u64).sum();
            let verdict = match self.client.post(body).await {
                Ok((status, retry_after, answer)) => verdict(
                    &self.settings.preset,
                    status,
                    retry_after.as_deref(),
                    &answer,
                ),
                Err(e) => Verdict::Retry(e, None),
            };
            let (retry, reason, after) = match verdict {
                Verdict::Delivered => {
                    self.failures = 0;
                    self.delivered(part.len() as u64, bytes);
                    continue;
                }
                Verdict::Refused(status, reason) if part.len() == 1 => {
                    self.failures = 0;
                    self.dead_letter(part[0], status, &reason);
                    continue;
                }
                Verdict::Refused(_, reason) => {
                    tracing::debug!(output = %self.name, records = part.len(), %reason, "http: refused; sending each half on its own");
                    let (first, second) = indices.split_at(indices.len() / 2);
                    todo.push(second.to_vec());
                    todo.push(first.to_vec());
                    continue;
                }
                Verdict::Items(items) if items.len() == part.len() => {
                    // Elasticsearch: each record's own answer.
                    let mut retry = Vec::new();
                    let mut reason = String::new();
                    let mut delivered = 0;
                    let mut delivered_bytes = 0;
                    for (k, item) in items.into_iter().enumerate() {
                        match item {
                            Item::Delivered => {
                                delivered += 1;
                                delivered_bytes += part[k].len() as u64;
                            }
                            Item::Retry(why) => {
                                reason = why;
                                retry.push(indices[k]);
                            }
                            Item::Refused(status, why) => {
                                self.dead_letter(part[k], Some(status), &why)
                            }
                        }
                    }
                    self.delivered(delivered, delivered_bytes);
                    if retry.is_empty() {
                        self.failures = 0;
                        continue;
                    }
                    (retry, reason, None)
                }
                Verdict::Items(items) => (
                    indices,
                    format!(
                        "the answer has {} items for {} records",
                        items.len(),
                        part.len()
                    ),
                    None,
                ),
                Verdict::Retry(reason, after) => (indices, reason, after),
            };
            self.failures = self.failures.saturating_add(1);
            self.stats.failed.fetch_add(1, Relaxed);
            self.stats.retried.fetch_add(retry.len() as u64, Relaxed);
            let wait = after.map_or_else(
                || {
                    super::forward::backoff(
                        self.settings.retry_min,
                        self.settings.retry_max,
                        self.failures,
                        super::forward::fastrand_unit(),
                    )
                },
                |a| a.min(self.settings.retry_max),
            );
            if self.failures == 1 || self.failures.is_power_of_two() {
                tracing::warn!(output = %self.name, failures = self.failures, retry_in_ms = wait.as_millis() as u64, "http: {reason}");
            }
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if self.shared.stopping.load(Relaxed) {
                    return false;
                }
                self.sleep(until - Instant::now()).await;
            }
            todo.push(retry);
        }
        true
    }

    fn delivered(&self, n: u64, bytes: u64) {
        // From the batch's read off the queue to the answer that took it, per message.
        let us = self.batch_start.elapsed().as_micros() as u64;
        self.stats
            .latency_us
            .fetch_add(us.saturating_mul(n), Relaxed);
        self.stats.delivered.fetch_add(n, Relaxed);
        self.stats.written.fetch_add(n, Relaxed);
        self.stats.bytes.fetch_add(bytes, Relaxed);
    }

    /// The request body for `part` in the preset's shape, compressed.
    fn body(&mut self, part: &[&[u8]]) -> Vec<u8> {
        let now = chrono::Utc::now();
        let plain = match &self.settings.preset {
            Preset::Elasticsearch { index } => bulk_body(part, index, now),
            Preset::Loki { labels } => {
                let capped = &mut self.label_values;
                let (body, over) = loki_body(part, labels, capped, now);
                if over > 0 {
                    self.stats.errors.fetch_add(over, Relaxed);
                }
                body
            }
            _ => return encode(part, self.settings.encoding, self.settings.compression),
        };
        compress(plain, self.settings.compression)
    }

    /// Writes a refused record to the dead-letter file, with why.
    fn dead_letter(&self, record: &[u8], status: Option<u16>, reason: &str) {
        self.stats.dead_lettered.fetch_add(1, Relaxed);
        self.stats.dropped.fetch_add(1, Relaxed);
        tracing::warn!(output = %self.name, reason, "http: a record was refused; written to the dead-letter file");
        let Some(path) = &self.settings.dead_letter else {
            return;
        };
        let value = serde_json::from_slice::<serde_json::Value>(record)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(record).into()));
        let line = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "output": self.name,
            "status": status,
            "reason": reason,
            "record": value,
        });
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Log records: readable by root and group adm only, as the log files are.
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)?;
            writeln!(f, "{line}")
        };
        if let Err(e) = write() {
            self.stats.errors.fetch_add(1, Relaxed);
            tracing::error!(output = %self.name, path = %path.display(), error = %e, "http: cannot write the dead-letter file; the record is lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_endpoints_mean_them() {
        let generic = Preset::Generic;
        let ch = Preset::ClickHouse {
            table: "logs".into(),
        };
        assert_eq!(verdict(&generic, 204, None, b""), Verdict::Delivered);
        assert!(matches!(
            verdict(&generic, 429, Some("7"), b"slow down"),
            Verdict::Retry(_, Some(d)) if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            verdict(&generic, 503, None, b""),
            Verdict::Retry(_, None)
        ));
        assert!(matches!(
            verdict(&generic, 401, None, b""),
            Verdict::Retry(..)
        ));
        assert!(matches!(
            verdict(&generic, 400, None, b"bad json"),
            Verdict::Refused(Some(400), r) if r == "400 bad json"
        ));
        assert!(matches!(
            verdict(&generic, 413, None, b""),
            Verdict::Refused(..)
        ));
        // ClickHouse: a row it cannot take is a 500 with a data error code.
        let bad_row = b"Code: 27, e.displayText() = DB::Exception: Cannot parse input";
        assert!(matches!(
            verdict(&ch, 500, None, bad_row),
            Verdict::Refused(..)
        ));
        assert!(matches!(
            verdict(&generic, 500, None, bad_row),
            Verdict::Retry(..)
        ));
        let down = b"Code: 241, e.displayText() = DB::Exception: Memory limit exceeded";
        assert!(matches!(verdict(&ch, 500, None, down), Verdict::Retry(..)));
        // An unknown table is the configuration's fault: retried, never dead-lettered.
        let table = b"Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist";
        assert!(matches!(verdict(&ch, 404, None, table), Verdict::Retry(..)));
    }

    #[test]
    fn bodies_are_ndjson_or_an_array_and_compressed_when_asked() {
        let records: [&[u8]; 2] = [br#"{"a":1}"#, br#"{"b":2}"#];
        assert_eq!(
            encode(&records, Encoding::Ndjson, BodyCompression::None),
            b"{\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(
            encode(&records, Encoding::JsonArray, BodyCompression::None),
            b"[{\"a\":1},{\"b\":2}]"
        );
        let gz = encode(&records, Encoding::Ndjson, BodyCompression::Gzip);
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, "{\"a\":1}\n{\"b\":2}\n");
        let zst = encode(&records, Encoding::JsonArray, BodyCompression::Zstd);
        assert_eq!(
            zstd::bulk::decompress(&zst, 1 << 20).unwrap(),
            b"[{\"a\":1},{\"b\":2}]"
        );
    }
}

#[cfg(test)]
mod preset_tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn record_templates_take_members_and_the_records_date() {
        let r: serde_json::Value = serde_json::from_str(
            r#"{"host":"web1","time":"2025-01-31T23:59:59+02:00","fields":{"app":"shop","n":3}}"#,
        )
        .unwrap();
        assert_eq!(
            render_record("logs-{fields.app}-{host}-{year}.{month}.{day}", &r, now()),
            "logs-shop-web1-2025.01.31"
        );
        assert_eq!(render_record("{fields.n}{absent}", &r, now()), "3");
        let no_time = serde_json::json!({});
        assert_eq!(render_record("x-{year}", &no_time, now()), "x-2026");
    }

    #[test]
    fn bulk_answers_settle_each_item() {
        assert_eq!(
            bulk_items(br#"{"errors":false,"items":[]}"#),
            Verdict::Delivered
        );
        let v = bulk_items(
            br#"{"errors":true,"items":[{"create":{"status":201}},{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},{"create":{"status":503}}]}"#,
        );
        assert_eq!(
            v,
            Verdict::Items(vec![
                Item::Delivered,
                Item::Refused(409, "409 version_conflict_engine_exception: exists".into()),
                Item::Retry("503".into()),
            ])
        );
        assert!(matches!(bulk_items(b"<html>"), Verdict::Retry(..)));
    }

    #[test]
    fn loki_label_values_are_bounded() {
        let labels = vec![("host".to_string(), "{host}".to_string())];
        let mut seen = std::collections::HashMap::new();
        let records: Vec<Vec<u8>> = (0..MAX_LABEL_VALUES + 5)
            .map(|i| format!(r#"{{"host":"h{i}"}}"#).into_bytes())
            .collect();
        let part: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let (body, over) = loki_body(&part, &labels, &mut seen, now());
        assert_eq!(over, 5);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let streams = v["streams"].as_array().unwrap();
        assert_eq!(streams.len(), MAX_LABEL_VALUES + 1);
        let other = streams
            .iter()
            .find(|s| s["stream"]["host"] == "_other")
            .unwrap();
        assert_eq!(other["values"].as_array().unwrap().len(), 5);
        // Without a time, the entry is stamped now.
        assert_eq!(
            other["values"][0][0],
            now().timestamp_nanos_opt().unwrap().to_string()
        );
    }
}
