//! HTTP input (`type = "http"`): the connections of a TCP or TLS input (the accept loop,
//! limits, handshake and peer check of [`super::stream`]) that speak HTTP/1.1, for senders
//! that post their records: `POST /v1/logs`.
//!
//! # A request
//! - `Authorization: Bearer TOKEN` when the input has a `token_file` (required off
//!   loopback); else 401.
//! - The body: `application/x-ndjson` (one JSON object per line), `application/json` (an
//!   object or an array of objects), or `text/plain` (one syslog message per line, parsed
//!   as the tcp input parses a frame). Over `max_body_bytes`: 413. Over `max_records`: 413.
//! - A JSON record becomes a message whose fields are the record's members: `msg` (or
//!   `message`) is its text, `severity`, `time`, `host` and `app` its header values (or the
//!   members `severity_from`, `time_from`, `host_from`, `tag_from` name), every member is a
//!   field for rules, templates and `json` (`fields.status`).
//! - A record that is not an object, or over the per-client rate, is refused on its own;
//!   the answer lists it with its index and why, and the others are kept:
//!   `{"accepted": N, "refused": [{"index": 3, "reason": "…"}]}`, 200 (400 when none was
//!   accepted).
//! - The answer is sent only once every output took the accepted records
//!   ([`crate::output::Receipt`], as the RELP input): a client that retries on an error or
//!   a lost answer loses nothing.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::stream::{Connection, Ended, Tracked};
use super::InputContext;
use crate::config::HttpInputSettings;
use crate::message::{Facility, Flags, Message, Severity, Source};

/// The path records are posted to.
pub const PATH: &str = "/v1/logs";

/// Serves one HTTP connection until it closes or the input stops.
pub async fn serve<C: Connection + 'static>(
    sock: C,
    source: Source,
    settings: &HttpInputSettings,
    tracked: &Tracked,
    ctx: &InputContext,
) -> Ended {
    let shared = Arc::new((source, settings.clone(), ctx.clone()));
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move {
            let (source, settings, ctx) = &*shared;
            Ok::<_, Infallible>(handle(req, source, settings, ctx).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(sock), service);
    tokio::pin!(conn);
    let mut stop = ctx.stop.clone();
    tokio::select! {
        r = conn.as_mut() => return if r.is_ok() { Ended::Eof } else { Ended::Error },
        _ = super::stopped(&mut stop) => {}
        _ = tracked.evict.notified() => {}
    }
    // Let the request in progress finish and be answered, then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
    Ended::Stopped
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    let mut r = json(status, serde_json::json!({ "error": why }));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(
    req: Request<Incoming>,
    source: &Source,
    settings: &HttpInputSettings,
    ctx: &InputContext,
) -> Response<Full<Bytes>> {
    if req.uri().path() != PATH {
        return error(StatusCode::NOT_FOUND, "records are posted to /v1/logs");
    }
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    if let Some(token) = &settings.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| same(g, token.as_bytes())) {
            return error(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer TOKEN (the input's token_file)",
            );
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes as u64) {
        return too_large(settings);
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let body = match Limited::new(req.into_body(), settings.max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(settings),
        Err(_) => return error(StatusCode::BAD_REQUEST, "the body could not be read"),
    };
    let records = match decode(&kind, &body) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    if records.len() > settings.max_records {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "{} records, over max_records ({})",
                records.len(),
                settings.max_records
            ),
        );
    }
    let rate_ip = ctx.limiter.as_ref().and(source.peer).map(|p| p.ip());
    let mut pipeline = ctx.pipeline();
    pipeline.begin();
    let receipt = pipeline.track();
    let mut refused = Vec::new();
    let mut accepted = 0u64;
    for (index, record) in records.iter().enumerate() {
        if !super::limits::message_allowed(&ctx.limiter, rate_ip) {
            refused.push(serde_json::json!({"index": index, "reason": "over the rate limit (rate_limit_per_sec)"}));
            continue;
        }
        match record {
            Record::Line(line) => pipeline.push(line, false, source, None),
            Record::Json(serde_json::Value::Object(map), raw) => {
                push_object(&mut pipeline, map, raw, source, ctx);
            }
            Record::Json(_, _) => {
                ctx.stats.malformed.fetch_add(1, Relaxed);
                refused.push(serde_json::json!({"index": index, "reason": "not a JSON object"}));
                continue;
            }
            Record::Invalid(why) => {
                ctx.stats.malformed.fetch_add(1, Relaxed);
                refused.push(serde_json::json!({"index": index, "reason": why}));
                continue;
            }
        }
        accepted += 1;
        if pipeline.needs_flush() {
            pipeline.flush().await;
        }
    }
    pipeline.flush().await;
    pipeline.untrack();
    // Answered once every output took the records.
    let _ = receipt.await;
    let status = if accepted == 0 && !refused.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json(
        status,
        serde_json::json!({ "accepted": accepted, "refused": refused }),
    )
}

fn too_large(settings: &HttpInputSettings) -> Response<Full<Bytes>> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is over max_body_bytes ({})",
            settings.max_body_bytes
        ),
    )
}

/// One record of a body.
enum Record<'a> {
    /// A syslog line (`text/plain`).
    Line(&'a [u8]),
    /// A JSON value and its text.
    Json(serde_json::Value, &'a [u8]),
    /// A line that is no JSON, and why.
    Invalid(String),
}

/// Splits a body into records by its content type. Pure.
fn decode<'a>(kind: &str, body: &'a [u8]) -> Result<Vec<Record<'a>>, String> {
    let lines = || {
        body.split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
    };
    match kind {
        "application/x-ndjson" | "application/jsonlines" | "application/x-jsonlines" => {
            Ok(lines()
                .map(|l| match serde_json::from_slice(l) {
                    Ok(v) => Record::Json(v, l),
                    Err(e) => Record::Invalid(format!("not JSON: {e}")),
                })
                .collect())
        }
        "application/json" => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Array(items)) => Ok(items
                .into_iter()
                .map(|v| Record::Json(v, &[][..]))
                .collect()),
            Ok(v) => Ok(vec![Record::Json(v, body)]),
            Err(e) => Err(format!("the body is not JSON: {e}")),
        },
        "text/plain" | "" => Ok(lines().map(Record::Line).collect()),
        other => Err(format!(
            "Content-Type {other} is not taken: send application/x-ndjson, application/json or text/plain"
        )),
    }
}

/// Pushes a JSON object as a message: its members are its fields, `msg` (or `message`) its
/// text, and the header values come from the members the input names.
fn push_object(
    pipeline: &mut crate::pipeline::Pipeline,
    map: &serde_json::Map<String, serde_json::Value>,
    raw: &[u8],
    source: &Source,
    ctx: &InputContext,
) {
    let text_owned;
    let text: &[u8] = match map.get("msg").or_else(|| map.get("message")) {
        Some(serde_json::Value::String(s)) => s.as_bytes(),
        _ if !raw.is_empty() => raw,
        _ => {
            text_owned = serde_json::Value::Object(map.clone()).to_string();
            text_owned.as_bytes()
        }
    };
    let mut msg = Message {
        facility: Facility::USER,
        severity: Severity::NOTICE,
        version: None,
        timestamp: None,
        hostname: None,
        appname: None,
        procid: None,
        msgid: None,
        structured_data: None,
        msg: text,
        flags: Flags::empty(),
        fields: &[],
        parsed: Some(map),
    };
    ctx.header_from.apply(&mut msg);
    let bytes = if raw.is_empty() {
        text.len()
    } else {
        raw.len()
    };
    pipeline.push_message(msg, bytes, source, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_records_by_their_type() {
        let nd = decode("application/x-ndjson", b"{\"a\":1}\n\nnot json\r\n[1]\n").unwrap();
        assert_eq!(nd.len(), 3);
        assert!(matches!(&nd[0], Record::Json(v, _) if v["a"] == 1));
        assert!(matches!(&nd[1], Record::Invalid(_)));
        assert!(matches!(
            &nd[2],
            Record::Json(serde_json::Value::Array(_), _)
        ));
        let arr = decode("application/json", b"[{\"a\":1},{\"b\":2}]").unwrap();
        assert_eq!(arr.len(), 2);
        let one = decode("application/json", b"{\"a\":1}").unwrap();
        assert_eq!(one.len(), 1);
        assert!(decode("application/json", b"{").is_err());
        let text = decode("text/plain", b"<13>a: one\n<13>b: two\n").unwrap();
        assert!(matches!(&text[1], Record::Line(l) if *l == b"<13>b: two"));
        assert!(decode("application/xml", b"<x/>").is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
