//! The Kafka action (`type = "kafka"`, cargo feature `kafka`): publishes the records input
//! tasks rendered for it (`[topic][key][payload]`, see [`Layout::Kafka`](super::Layout)) to
//! Kafka through librdkafka (`rdkafka`'s `FutureProducer`), through its own
//! [`Queue`] (the forward action's disk-assisted queue).
//!
//! Each action runs on its own thread; two futures share it, as in the forward action:
//! - **intake** takes chunks from the bounded channel and pushes each record into the queue
//!   (memory, then disk). It stops taking chunks only when the queue's disk bound is reached:
//!   a broker that is down or slow holds back nothing but this action.
//! - **delivery** reads batches from the queue and hands each record to the producer, keeping
//!   at most [`MAX_IN_FLIGHT`] records in the producer (the rest wait in the queue, on disk
//!   past its memory bound). A batch is acknowledged to the queue (removed) only once the
//!   broker acknowledged every record of it (the delivery report), and batches in the order
//!   they were read. When any record of a batch fails (`delivery_timeout_ms` passed, a
//!   fatal producer error), delivery waits for the batches in flight, rewinds the queue
//!   ([`Queue::rewind`]) and sends everything not acknowledged again after a back-off.
//!   A record refused for something about itself ([`is_permanent`]: larger than
//!   `message.max.bytes`, an invalid topic name) cannot succeed later: it counts as failed
//!   and dropped, and its batch leaves the queue, so that one poison message never stalls it.
//!
//! Where duplicates come from (at least once): the records of the batches acknowledged by
//! the broker after an earlier batch failed are sent again by the rewind; after a crash or
//! `kill -9`, records the broker acknowledged whose batch was not yet acknowledged to the
//! queue (at most [`MAX_IN_FLIGHT`]). The idempotent producer (on by default) removes the
//! duplicates of librdkafka's own retries within one producer session only.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;

use super::queued::Handoff;
use super::{Chunk, WriterCommand};
use crate::config::KafkaSettings;
use crate::queue::Batch;
use crate::stats::OutputStats;

/// Records handed to the producer and not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: u64 = 100_000;
/// Records per batch read from the queue.
const BATCH_RECORDS: usize = 5_000;
/// Payload bytes per batch (past the first record).
const BATCH_BYTES: usize = 1024 * 1024;
/// Wait after a failed batch before sending again.
const RETRY_WAIT: Duration = Duration::from_secs(1);
/// At a stop, how long delivery waits for the broker to acknowledge what is in flight.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running Kafka action.
pub(crate) struct KafkaAction {
    pub(crate) name: String,
    pub(crate) settings: KafkaSettings,
    pub(crate) stats: Arc<OutputStats>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
    pub(crate) ctl: mpsc::UnboundedReceiver<WriterCommand>,
}

/// The librdkafka configuration of an action.
pub fn client_config(s: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", s.brokers.join(","))
        .set("client.id", &s.client_id)
        .set("compression.type", s.compression.name())
        .set("acks", s.acks.to_string())
        .set("enable.idempotence", s.idempotence.to_string())
        .set("linger.ms", s.linger.as_millis().to_string())
        .set("batch.size", s.batch_bytes.to_string())
        .set(
            "message.timeout.ms",
            s.delivery_timeout.as_millis().to_string(),
        )
        .set(
            "queue.buffering.max.messages",
            (2 * MAX_IN_FLIGHT).to_string(),
        )
        .set("queue.buffering.max.kbytes", "1048576")
        // Reconnect quickly once the broker is back.
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000");
    let security = match (&s.tls, &s.sasl) {
        (None, None) => "plaintext",
        (Some(_), None) => "ssl",
        (None, Some(_)) => "sasl_plaintext",
        (Some(_), Some(_)) => "sasl_ssl",
    };
    c.set("security.protocol", security);
    if let Some(t) = &s.tls {
        if let Some(pem) = &t.ca {
            c.set("ssl.ca.pem", pem);
        }
        if let Some(pem) = &t.cert {
            c.set("ssl.certificate.pem", pem);
        }
        if let Some(pem) = &t.key {
            c.set("ssl.key.pem", pem);
        }
    }
    if let Some(sasl) = &s.sasl {
        c.set("sasl.mechanism", sasl.mechanism.name())
            .set("sasl.username", &sasl.username)
            .set("sasl.password", &sasl.password);
    }
    c
}

impl KafkaAction {
    /// Runs until every input task let go of the action's channel; then what was not
    /// delivered is kept in the queue's files for the next start.
    pub(crate) async fn run(self) {
        let KafkaAction {
            name,
            settings,
            stats,
            rx,
            ctl,
        } = self;
        let (name, settings, stats) = (&name, &settings, &stats);
        let delivery = |shared: std::sync::Arc<Handoff>| async move {
            match client_config(settings).create::<FutureProducer>() {
                Ok(p) => deliver(name, &shared, stats, settings, p).await,
                Err(e) => {
                    stats.errors.fetch_add(1, Relaxed);
                    tracing::error!(output = %name, "kafka: cannot create the producer: {e}; messages stay queued");
                    while !shared.stopping.load(Relaxed) {
                        shared.wake.notified().await;
                    }
                }
            }
        };
        let queue = &settings.queue;
        super::queued::run("kafka", name, queue, stats, rx, ctl, split_kafka, delivery).await;
    }
}

pub use super::records::kafka_fields as fields;
use super::records::kafka_records as split_records;

/// A Kafka output's records are its chunks' `[topic][key][payload]` records, as they are.
fn split_kafka(data: &[u8], each: &mut dyn FnMut(&[u8])) {
    for rec in split_records(data) {
        each(rec);
    }
}

/// What became of one record handed to the producer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The broker acknowledged it.
    Delivered,
    /// Not delivered, for a reason that may pass (the broker down, slow, a leader change):
    /// sent again.
    Transient(String),
    /// Refused for good, for something about the message itself (larger than
    /// `message.max.bytes`, an invalid topic name): counted as failed and dropped, never
    /// sent again, so that one poison message cannot stall the queue.
    Permanent(String),
}

impl Outcome {
    fn of_error(e: &KafkaError) -> Outcome {
        if is_permanent(e) {
            Outcome::Permanent(e.to_string())
        } else {
            Outcome::Transient(e.to_string())
        }
    }
}

/// Whether a produce or delivery error is about the message itself, so that sending it again
/// cannot succeed. librdkafka gives delivery reports only an error code (its
/// `rd_kafka_error_is_retriable` needs an error object the report does not carry), so this is
/// a list: the codes that name the message's size, format or topic. Every other error
/// (timeouts, a broker gone, authorization, a topic that does not exist yet, a fatal
/// idempotence error) is retried: it may pass, and giving up would lose messages.
fn is_permanent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            MessageSizeTooLarge
                | InvalidMessageSize
                | MessageBatchTooLarge
                | InvalidTopic
                | InvalidRecord
                | BadMessage
                | InvalidArgument
        )
    )
}

/// Each record's outcome, in the batch's order.
type Reports = Pin<Box<dyn Future<Output = Vec<Outcome>> + Send>>;

/// Logs the messages given up for good at most once a second, with the reason of the first
/// and how many since the last line.
struct PoisonReport {
    pending: u64,
    why: String,
    at: Option<Instant>,
}

impl PoisonReport {
    fn add(&mut self, name: &str, n: u64, why: &str) {
        if self.pending == 0 {
            self.why = why.to_string();
        }
        self.pending += n;
        self.flush(name);
    }

    fn flush(&mut self, name: &str) {
        if self.pending == 0
            || self
                .at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        tracing::error!(output = %name, dropped = self.pending, "kafka: messages refused for good ({}): counted as failed and dropped, not sent again", self.why);
        self.pending = 0;
        self.at = Some(Instant::now());
    }
}

/// A batch handed to the producer, waiting for its delivery reports.
struct InFlight {
    batch: Batch,
    sent: Instant,
    reports: Reports,
}

async fn deliver(
    name: &str,
    shared: &Handoff,
    stats: &OutputStats,
    settings: &KafkaSettings,
    first: FutureProducer,
) {
    let mut producer = first;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut in_flight_records: u64 = 0;
    let mut failed_batch = false;
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    let mut poison = PoisonReport {
        pending: 0,
        why: String::new(),
        at: None,
    };
    loop {
        poison.flush(name);
        let stopping = shared.stopping.load(Relaxed);
        if stopping && stop_deadline.is_none() {
            stop_deadline = Some(tokio::time::Instant::now() + STOP_WAIT);
        }
        // Hand more records to the producer while there is room (not while a failure waits
        // for the batches in flight before its rewind).
        while !failed_batch && in_flight_records < MAX_IN_FLIGHT {
            let mut batch = Batch::default();
            let read = {
                let mut q = shared.queue();
                let r = q.read(&mut batch, BATCH_RECORDS, BATCH_BYTES);
                crate::output::queued::disk_events("kafka", name, &mut q, stats);
                r
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    stats.errors.fetch_add(1, Relaxed);
                    tracing::error!(output = %name, "kafka: reading the queue: {e}");
                    0
                }
            };
            if n == 0 {
                break;
            }
            let reports = send_batch(name, &producer, &batch).await;
            batch.forget_payloads();
            in_flight_records += batch.len() as u64;
            in_flight.push_back(InFlight {
                batch,
                sent: Instant::now(),
                reports,
            });
        }
        if in_flight.is_empty() {
            if failed_batch {
                failed_batch = false;
                // A new producer, a new session: an idempotent producer whose messages timed
                // out in flight must bump its epoch, which brokers may refuse (Tansu answers
                // ProducerFenced to every later batch); a fresh one starts clean.
                match client_config(settings).create() {
                    Ok(p) => producer = p,
                    Err(e) => {
                        stats.errors.fetch_add(1, Relaxed);
                        tracing::error!(output = %name, "kafka: cannot create the producer: {e}");
                    }
                }
                let n = shared.queue().rewind();
                stats.retried.fetch_add(n, Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_WAIT) => {}
                    _ = wait_stopping(shared) => {}
                }
                continue;
            }
            if stopping {
                break;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                // A fallback: records pushed between the read and the wait are seen.
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        let front = in_flight.front_mut().expect("not empty");
        let until = stop_deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        let results = tokio::select! {
            r = &mut front.reports => r,
            _ = shared.wake.notified(), if !failed_batch && in_flight_records < MAX_IN_FLIGHT => continue,
            _ = tokio::time::sleep_until(until) => {
                tracing::warn!(output = %name, unacknowledged = in_flight_records, "kafka: stopping with messages the broker has not acknowledged; they stay queued");
                break;
            }
        };
        let done = in_flight.pop_front().expect("not empty");
        in_flight_records -= done.batch.len() as u64;
        let transient = results
            .iter()
            .filter(|r| matches!(r, Outcome::Transient(_)))
            .count() as u64;
        let permanent = results
            .iter()
            .filter(|r| matches!(r, Outcome::Permanent(_)))
            .count() as u64;
        if transient == 0 && !failed_batch {
            // Delivered, or refused for good: either way the batch leaves the queue.
            let mut q = shared.queue();
            if let Err(e) = q.ack(&done.batch) {
                stats.errors.fetch_add(1, Relaxed);
                tracing::error!(output = %name, "kafka: acknowledging to the queue: {e}");
            }
            stats.queued.store(q.len(), Relaxed);
            stats.on_disk.store(q.disk_records(), Relaxed);
            drop(q);
            let n = done.batch.len() as u64 - permanent;
            stats.delivered.fetch_add(n, Relaxed);
            stats.written.fetch_add(n, Relaxed);
            stats
                .latency_us
                .fetch_add(n * done.sent.elapsed().as_micros() as u64, Relaxed);
            if permanent > 0 {
                stats.failed.fetch_add(permanent, Relaxed);
                stats.dropped.fetch_add(permanent, Relaxed);
                let why = results.iter().find_map(|r| match r {
                    Outcome::Permanent(why) => Some(why.as_str()),
                    _ => None,
                });
                poison.add(name, permanent, why.unwrap_or_default());
            }
            shared.room.notify_one();
        } else if transient + permanent > 0 {
            // Sent again after the rewind, those refused for good too (they are given up
            // then, in a batch without transient failures).
            stats.failed.fetch_add(transient + permanent, Relaxed);
            if !failed_batch {
                let why = results
                    .iter()
                    .find_map(|r| match r {
                        Outcome::Transient(why) => Some(why.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                tracing::warn!(output = %name, failures = transient, "kafka: messages not acknowledged by the broker ({why}); sending them again");
            }
            failed_batch = failed_batch || transient > 0;
        }
    }
    poison.at = None;
    poison.flush(name);
    // What is still in flight stays in the queue (not acknowledged): sent again at the next
    // start.
    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
}

async fn wait_stopping(shared: &Handoff) {
    while !shared.stopping.load(Relaxed) {
        shared.wake.notified().await;
    }
}

/// Hands a batch's records to the producer; resolves to each record's outcome.
async fn send_batch(name: &str, producer: &FutureProducer, batch: &Batch) -> Reports {
    let mut futures = Vec::with_capacity(batch.len());
    for rec in batch.records() {
        let Some((topic, key, payload)) = fields(rec) else {
            futures.push(Err(Outcome::Permanent(
                "not a Kafka record (topic, key, payload)".to_string(),
            )));
            continue;
        };
        let topic = String::from_utf8_lossy(topic);
        let mut waits = 0u32;
        loop {
            let r = FutureRecord::to(&topic).key(key).payload(payload);
            match producer.send_result(r) {
                Ok(f) => {
                    futures.push(Ok(f));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if waits < 6000 =>
                {
                    // The producer's own queue is full: wait for it to drain (at most 60 s,
                    // then the record counts as failed and is sent again).
                    waits += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => {
                    let outcome = Outcome::of_error(&e);
                    if let Outcome::Transient(_) = outcome {
                        tracing::warn!(output = %name, topic = %topic, "kafka: cannot produce: {e}");
                    }
                    futures.push(Err(outcome));
                    break;
                }
            }
        }
    }
    Box::pin(async move {
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            out.push(match f {
                Ok(f) => match f.await {
                    Ok(Ok(_)) => Outcome::Delivered,
                    Ok(Err((e, _))) => Outcome::of_error(&e),
                    Err(_) => Outcome::Transient("the producer went away".to_string()),
                },
                Err(outcome) => outcome,
            });
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueSettings;

    #[test]
    fn only_errors_about_the_message_itself_are_permanent() {
        use RDKafkaErrorCode::*;
        for (code, permanent) in [
            (MessageSizeTooLarge, true),
            (InvalidTopic, true),
            (InvalidRecord, true),
            (MessageTimedOut, false),
            (QueueFull, false),
            (UnknownTopicOrPartition, false),
            (TopicAuthorizationFailed, false),
            (Fatal, false),
        ] {
            let e = KafkaError::MessageProduction(code);
            assert_eq!(is_permanent(&e), permanent, "{code:?}");
            assert_eq!(
                matches!(Outcome::of_error(&e), Outcome::Permanent(_)),
                permanent
            );
        }
    }

    #[test]
    fn records_split_and_fields_read() {
        let mut data = Vec::new();
        for (t, k, p) in [(&b"logs"[..], &b"h1"[..], &b"{}"[..]), (b"t2", b"", b"x")] {
            for f in [t, k, p] {
                data.extend_from_slice(&(f.len() as u32).to_le_bytes());
                data.extend_from_slice(f);
            }
        }
        let recs: Vec<&[u8]> = split_records(&data).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            fields(recs[0]),
            Some((&b"logs"[..], &b"h1"[..], &b"{}"[..]))
        );
        assert_eq!(fields(recs[1]), Some((&b"t2"[..], &b""[..], &b"x"[..])));
    }

    #[test]
    fn tls_and_sasl_are_passed_to_librdkafka() {
        use crate::config::{Compression, KafkaTls, Payload, Sasl, SaslMechanism};
        use crate::render::kafka_template::KafkaTemplate;
        let settings = KafkaSettings {
            brokers: vec!["k1:9093".into(), "k2:9093".into()],
            topic: KafkaTemplate::parse("logs").unwrap(),
            partition_key: KafkaTemplate::parse("{host}").unwrap(),
            payload: Payload::Json,
            compression: Compression::Zstd,
            acks: -1,
            idempotence: true,
            linger: Duration::from_millis(20),
            batch_bytes: 65536,
            client_id: "edge1".into(),
            delivery_timeout: Duration::from_secs(30),
            tls: Some(KafkaTls {
                ca: Some("CA PEM".into()),
                cert: Some("CERT PEM".into()),
                key: Some("KEY PEM".into()),
                files: vec![],
            }),
            sasl: Some(Sasl {
                mechanism: SaslMechanism::ScramSha512,
                username: "u".into(),
                password: "p".into(),
            }),
            queue: QueueSettings {
                dir: None,
                memory_bytes: 1 << 20,
                max_disk_bytes: 1 << 30,
                segment_bytes: 1 << 24,
                fsync: crate::queue::Fsync::None,
            },
        };
        let c = client_config(&settings);
        for (k, v) in [
            ("bootstrap.servers", "k1:9093,k2:9093"),
            ("client.id", "edge1"),
            ("compression.type", "zstd"),
            ("acks", "-1"),
            ("enable.idempotence", "true"),
            ("linger.ms", "20"),
            ("batch.size", "65536"),
            ("message.timeout.ms", "30000"),
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.pem", "CA PEM"),
            ("ssl.certificate.pem", "CERT PEM"),
            ("ssl.key.pem", "KEY PEM"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ] {
            assert_eq!(c.get(k), Some(v), "{k}");
        }
        // librdkafka accepts the whole configuration (no connection is made yet); it parses
        // the PEM text at once, so here without it (the system's CAs).
        let settings = KafkaSettings {
            tls: Some(KafkaTls::default()),
            ..settings
        };
        let p: Result<FutureProducer, _> = client_config(&settings).create();
        assert!(p.is_ok(), "{:?}", p.err());
    }
}
