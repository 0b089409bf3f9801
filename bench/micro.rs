//! Criterion micro-benchmarks of the hot pure functions (issue 8, "where the time goes"): the
//! RFC 6587 framing decoder, the syslog parser (RFC 3164 and RFC 5424) and the line formats,
//! over the same 200-byte messages the end-to-end benchmarks send, and the templated-path
//! name matcher the privileged parent runs on every request (issue 24 item 7), and the
//! structured-body parsers (JSON, logfmt, kv; issue 27). They catch regressions that
//! the end-to-end figures, ±25% on a shared machine, would hide.
//!
//! `cargo bench --bench micro` (criterion's options after `--`, e.g. `-- parse`); throughput is
//! reported per message.

use std::sync::Arc;

use chrono::{FixedOffset, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use logwell::config::Format;
use logwell::message::{Event, Source};
use logwell::parse::framing::{Decoded, Framer};
use logwell::parse::{parse, ParseContext};
use logwell::render::format::{format_line, TimeCache};

/// A message as the load generator renders it (RFC 3164, 200 bytes).
const RFC3164: &[u8] = b"<13>Nov 21 09:41:03 benchhost bench[1234]: seq=0000000042 the quick brown fox jumps over the lazy dog 0123456789 the quick brown fox jumps over the lazy dog 0123456789 the quick brown fox jumps over t";
/// The same text as RFC 5424 with structured data.
const RFC5424: &[u8] = b"<165>1 2026-11-21T09:41:03.123456+01:00 benchhost bench 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] seq=0000000042 the quick brown fox jumps over the lazy dog 0123456789";

/// When the benchmark's messages were received.
fn recv_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 41, 4).unwrap()
}

fn ctx() -> ParseContext {
    ParseContext::new(recv_time(), FixedOffset::east_opt(0).unwrap())
}

/// 1,000 frames of `msg` in one buffer, newline-framed or octet-counted.
fn stream(msg: &[u8], octet: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    for _ in 0..1000 {
        if octet {
            buf.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            buf.extend_from_slice(msg);
        } else {
            buf.extend_from_slice(msg);
            buf.push(b'\n');
        }
    }
    buf
}

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1000));
    for (name, octet) in [("newline", false), ("octet_counted", true)] {
        let buf = stream(RFC3164, octet);
        g.bench_with_input(BenchmarkId::from_parameter(name), &buf, |b, buf| {
            b.iter(|| {
                let mut framer = Framer::new(64 * 1024);
                let (mut at, mut frames) = (0, 0usize);
                loop {
                    let (used, d) = framer.decode(&buf[at..]);
                    at += used;
                    match d {
                        Decoded::Frame { payload, .. } => frames += payload.len(),
                        Decoded::NeedMore => break,
                        _ => {}
                    }
                }
                frames
            })
        });
    }
    g.finish();
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let ctx = ctx();
    for (name, msg) in [("rfc3164", RFC3164), ("rfc5424", RFC5424)] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &msg, |b, msg| {
            b.iter(|| parse(std::hint::black_box(msg), &ctx).msg.len())
        });
    }
    g.finish();
}

/// The source every message of these benchmarks comes from.
fn tcp_source() -> Source {
    Source {
        input: Arc::from("tcp"),
        peer: None,
        creds: None,
        default_host: Arc::from("here"),
        use_sender_timestamp: true,
        tls_peer: None,
    }
}

fn formats(c: &mut Criterion) {
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(1));
    let ctx = ctx();
    let source = tcp_source();
    for (fname, format) in [
        ("traditional", Format::Traditional),
        ("rfc3339", Format::Rfc3339),
        ("rfc5424", Format::Rfc5424),
        ("json", Format::Json),
    ] {
        for (mname, msg) in [("rfc3164", RFC3164), ("rfc5424", RFC5424)] {
            let ev = Event {
                msg: parse(msg, &ctx),
                recv_time: recv_time(),
                source: &source,
                creds: None,
            };
            let mut cache = TimeCache::default();
            let mut out = Vec::with_capacity(64 * 1024);
            g.bench_function(BenchmarkId::new(fname, mname), |b| {
                b.iter(|| {
                    out.clear();
                    format_line(format, &ev, &mut cache, &mut out);
                    out.len()
                })
            });
        }
    }
    g.finish();
}

/// `PathTemplate::could_be` on the name issue 24 (item 7) found: four fields separated by
/// `-` and a host and tag made of dashes, which a backtracking matcher took seconds over.
fn path_match(c: &mut Criterion) {
    use logwell::render::template::PathTemplate;
    let mut g = c.benchmark_group("could_be");
    g.throughput(Throughput::Elements(1));
    let Ok(Some(t)) = PathTemplate::parse("/var/log/remote/{host}-{tag}-{facility}-{severity}.log")
    else {
        panic!("the template parses");
    };
    for (label, host, tag) in [
        ("web01", "web01".to_string(), "sshd".to_string()),
        ("dashes-128-48", "-".repeat(128), "-".repeat(48)),
    ] {
        let name = format!("{host}-{tag}-auth-info.log.1.zst");
        g.bench_function(BenchmarkId::new("generation", label), |b| {
            b.iter(|| t.could_be(0, &name))
        });
    }
    g.finish();
}

/// A JSON body of 10 fields and about 300 bytes, as issue 27's benchmark sends.
const JSON_BODY: &[u8] = br#"{"ts":"2026-11-21T09:41:03.123Z","level":"info","service":"checkout","host":"web-17","method":"POST","path":"/api/v1/cart/items","status":201,"duration_ms":12.5,"user_id":48213,"msg":"item added to the cart of a returning customer after a promotion"}"#;
/// The same fields as logfmt.
const LOGFMT_BODY: &[u8] = br#"ts=2026-11-21T09:41:03.123Z level=info service=checkout host=web-17 method=POST path=/api/v1/cart/items status=201 duration_ms=12.5 user_id=48213 msg="item added to the cart of a returning customer after a promotion""#;

fn bodies(c: &mut Criterion) {
    use logwell::parse::body::{json, kv, logfmt, KvOptions, Limits};
    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Elements(1));
    let limits = Limits::default();
    g.bench_function("json", |b| b.iter(|| json(JSON_BODY, &limits)));
    g.bench_function("logfmt", |b| b.iter(|| logfmt(LOGFMT_BODY, &limits)));
    let options = KvOptions::default();
    g.bench_function("kv", |b| b.iter(|| kv(LOGFMT_BODY, &options, &limits)));
    let re = regex::bytes::Regex::new(r"user=(?P<user>\S+) .*status=(?P<status>\d+)").unwrap();
    let regex_parser = [logwell::parse::body::BodyParser::Regex(re)];
    g.bench_function("regex", |b| {
        b.iter(|| logwell::parse::body::first_that_reads(&regex_parser, LOGFMT_BODY, &limits))
    });
    g.finish();
}

/// A line template and the redaction masks, on a parsed JSON body.
fn templates(c: &mut Criterion) {
    use logwell::render::line_template::LineTemplate;
    let mut g = c.benchmark_group("template");
    g.throughput(Throughput::Elements(1));
    let ctx = ctx();
    let source = tcp_source();
    let limits = logwell::parse::body::Limits::default();
    let parsed = logwell::parse::body::json(JSON_BODY, &limits).fields;
    let mut msg = parse(RFC3164, &ctx);
    msg.parsed = Some(&parsed);
    let ev = Event {
        msg,
        recv_time: recv_time(),
        source: &source,
        creds: None,
    };
    let t = LineTemplate::parse(
        "{time:%Y-%m-%d %H:%M:%S} {host} {tag} user={fields.user:-nobody} msg={msg:csv}",
    )
    .unwrap();
    let mut cache = TimeCache::default();
    let mut out = Vec::with_capacity(64 * 1024);
    g.bench_function("line", |b| {
        b.iter(|| {
            out.clear();
            t.render(&ev, &mut cache, &mut out);
            out.len()
        })
    });
    let text = b"Accepted publickey for alice from 192.0.2.77 port 52311 ssh2, via 2001:db8::17 card 4111 1111 1111 1111";
    g.bench_function("mask_ipv4", |b| {
        b.iter(|| logwell::rewrite::mask_ipv4(text, 24))
    });
    g.bench_function("mask_ipv6", |b| {
        b.iter(|| logwell::rewrite::mask_ipv6(text, 64))
    });
    g.bench_function("mask_cards", |b| {
        b.iter(|| logwell::rewrite::mask_cards(text))
    });
    g.finish();
}

criterion_group!(benches, framing, parser, formats, path_match, bodies, templates);
criterion_main!(benches);
