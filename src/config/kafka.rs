//! The Kafka action's settings (`type = "kafka"` outputs): brokers, the topic and partition
//! key templates, the payload format, the producer's settings (compression, acks,
//! idempotence, batching, client id), TLS and SASL passed through to librdkafka, and the
//! action's queue (`[output.NAME.queue]`, the forward action's). Validation only: it opens
//! no socket and reads no file, so a build without the `kafka` feature checks the same
//! keys and then refuses the output with a message saying so.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::raw::RawOutput;
use crate::render::kafka_template::KafkaTemplate;

/// What a Kafka message's value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// One JSON object with every field (structured data and source included): the file
    /// output's `json` line without its newline.
    Json,
    /// The RFC 5424 line (`<13>1 2026-… host tag pid msgid [sd] msg`).
    Rfc5424,
    /// The message as received (the syslog frame; the text for journal and kernel entries).
    Raw,
}

impl Payload {
    /// The line format input tasks render (`raw` copies the frame instead; its format is
    /// only what the output reports).
    pub fn format(self) -> super::Format {
        match self {
            Payload::Json => super::Format::Json,
            Payload::Rfc5424 | Payload::Raw => super::Format::Rfc5424,
        }
    }
}

/// Producer compression (`compression.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `none`.
    None,
    /// `zstd`.
    Zstd,
    /// `lz4`.
    Lz4,
    /// `gzip`.
    Gzip,
    /// `snappy`.
    Snappy,
}

impl Compression {
    /// The librdkafka name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
        }
    }
}

/// SASL mechanisms passed to librdkafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password`.
    pub password: String,
}

/// A Kafka action.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaSettings {
    /// The bootstrap list (`host:port`).
    pub brokers: Vec<String>,
    /// The topic, rendered per message.
    pub topic: KafkaTemplate,
    /// The partition key, rendered per message (default `{host}`: one host's messages stay
    /// in one partition, in order).
    pub partition_key: KafkaTemplate,
    /// The value's format.
    pub payload: Payload,
    /// Compression of produced batches.
    pub compression: Compression,
    /// `acks`: `-1` (all in-sync replicas), `1` (the leader) or `0` (none; then a message
    /// is acknowledged to the queue once sent).
    pub acks: i32,
    /// `enable.idempotence`: no duplicates from the producer's own retries.
    pub idempotence: bool,
    /// `linger.ms`: how long the producer waits to fill a batch.
    pub linger: Duration,
    /// `batch.size`: bytes per produced batch at most.
    pub batch_bytes: usize,
    /// `client.id`.
    pub client_id: String,
    /// `message.timeout.ms`: a message the broker has not acknowledged by then fails and
    /// is sent again from the queue.
    pub delivery_timeout: Duration,
    /// TLS (`protocol = "tls"`): CA bundle, client certificate and key files, passed through.
    pub tls: Option<KafkaTls>,
    /// SASL, passed through.
    pub sasl: Option<Sasl>,
    /// The queue (its `dir` is set from `[daemon] state_dir` once every file is read).
    pub queue: crate::queue::QueueSettings,
}

/// TLS for librdkafka: the files are read at validation (as root before privileges are
/// dropped; at a reload, through the privileged parent, which allows exactly `files`) and
/// passed as PEM text (`ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KafkaTls {
    /// CA bundle (PEM); `None`: the system's.
    pub ca: Option<String>,
    /// Client certificate chain (PEM).
    pub cert: Option<String>,
    /// Client private key (PEM).
    pub key: Option<String>,
    /// The paths they were read from.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Debug for KafkaTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key in a log line.
        f.debug_struct("KafkaTls")
            .field("ca", &self.ca.is_some())
            .field("cert", &self.cert.is_some())
            .field("key", &self.key.is_some())
            .finish()
    }
}

/// Builds a Kafka action's settings.
pub(crate) fn from_raw(check: &mut Check<'_>, raw: &RawOutput) -> Option<KafkaSettings> {
    let mut brokers = Vec::new();
    match &raw.brokers {
        None => check.err(
            raw.kind.span(),
            "a kafka output needs `brokers`",
            "add brokers = [\"kafka1.example.com:9092\"]",
        ),
        Some(b) => {
            for s in b.get_ref().clone_vec() {
                let ok = s
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if ok {
                    brokers.push(s);
                } else {
                    check.err(
                        b.span(),
                        format!("`{s}` is not a broker address"),
                        "write \"host:port\", e.g. \"kafka1.example.com:9092\"",
                    );
                }
            }
            if brokers.is_empty() && !b.get_ref().clone_vec().is_empty() {
                // Already reported per entry.
            } else if brokers.is_empty() {
                check.err(
                    b.span(),
                    "`brokers` is empty",
                    "name at least one \"host:port\"",
                );
            }
        }
    }
    let topic = match &raw.topic {
        None => {
            check.err(
                raw.kind.span(),
                "a kafka output needs `topic`",
                "add topic = \"logs\" (or templated: \"logs.{facility}\")",
            );
            None
        }
        Some(t) => kafka_template(check, t, "topic"),
    };
    let partition_key = match &raw.partition_key {
        None => KafkaTemplate::parse("{host}").ok(),
        Some(t) => kafka_template(check, t, "partition_key"),
    };
    let payload = check.pick(
        &raw.format,
        "format",
        Payload::Json,
        &[
            ("json", Payload::Json),
            ("rfc5424", Payload::Rfc5424),
            ("raw", Payload::Raw),
        ],
    );
    let compression = check.pick(
        &raw.compression,
        "compression",
        Compression::None,
        &[
            ("none", Compression::None),
            ("zstd", Compression::Zstd),
            ("lz4", Compression::Lz4),
            ("gzip", Compression::Gzip),
            ("snappy", Compression::Snappy),
        ],
    );
    let acks = check.pick(&raw.acks, "acks", -1, &[("all", -1), ("1", 1), ("0", 0)]);
    let idempotence = raw.idempotence.as_ref().is_none_or(|v| *v.get_ref());
    if idempotence && acks != -1 {
        if let Some(a) = &raw.acks {
            check.err(
                a.span(),
                "the idempotent producer needs `acks = \"all\"`",
                "remove `acks`, or set idempotence = false",
            );
        }
    }
    let linger = match &raw.linger_ms {
        None => Duration::from_millis(5),
        Some(v) if (0..=900_000).contains(v.get_ref()) => {
            Duration::from_millis(*v.get_ref() as u64)
        }
        Some(v) => {
            check.err(
                v.span(),
                "`linger_ms` must be a number of milliseconds from 0 to 900000",
                "remove the key to use the default (5)",
            );
            Duration::from_millis(5)
        }
    };
    let batch_bytes = match &raw.batch_bytes {
        None => 1_000_000,
        Some(v) if (1..=2_147_483_647).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            check.err(
                v.span(),
                "`batch_bytes` must be from 1 to 2147483647",
                "remove the key to use the default (1000000)",
            );
            1_000_000
        }
    };
    let client_id = raw
        .client_id
        .as_ref()
        .map_or_else(|| "logwell".to_string(), |c| c.get_ref().clone());
    let delivery_timeout = Duration::from_millis(check.bounded_ms(
        &raw.delivery_timeout_ms,
        "delivery_timeout_ms",
        60_000,
    ));
    let tls_on = match raw.protocol.as_ref().map(|p| p.get_ref().as_str()) {
        None | Some("tcp") => false,
        Some("tls") => true,
        Some(other) => {
            let span = raw.protocol.as_ref().map(Spanned::span).unwrap_or_default();
            check.err(
                span,
                format!("`protocol = \"{other}\"` is not one of the choices"),
                "use \"tcp\" or \"tls\"",
            );
            false
        }
    };
    let tls = if tls_on {
        let path = |v: &Option<Spanned<String>>| v.as_ref().map(|p| PathBuf::from(p.get_ref()));
        let (ca, cert, key) = (path(&raw.ca), path(&raw.cert), path(&raw.key));
        let files: Vec<PathBuf> = [&ca, &cert, &key].into_iter().flatten().cloned().collect();
        // Read and checked by the one reader of TLS clients' files that forward uses too;
        // librdkafka gets their PEM text.
        match super::tls::client::read_client_files(ca.as_deref(), cert.as_deref(), key.as_deref())
        {
            Ok(read) => {
                let [ca, cert, key] = read.pem;
                Some(KafkaTls {
                    ca,
                    cert,
                    key,
                    files,
                })
            }
            Err(e) => {
                super::tls::client::refuse(check, raw, &e);
                Some(KafkaTls {
                    files,
                    ..KafkaTls::default()
                })
            }
        }
    } else {
        for (key, v) in [("ca", &raw.ca), ("cert", &raw.cert), ("key", &raw.key)] {
            if let Some(v) = v {
                check.err(
                    v.span(),
                    format!("`{key}` needs protocol = \"tls\""),
                    "add protocol = \"tls\", or remove it",
                );
            }
        }
        None
    };
    if tls_on && raw.cert.is_some() != raw.key.is_some() {
        check.err(
            raw.kind.span(),
            "a client certificate needs both `cert` and `key`",
            "set both, or neither",
        );
    }
    let sasl = match &raw.sasl_mechanism {
        None => {
            for (key, v) in [
                ("sasl_username", &raw.sasl_username),
                ("sasl_password", &raw.sasl_password),
            ] {
                if let Some(v) = v {
                    check.err(
                        v.span(),
                        format!("`{key}` needs `sasl_mechanism`"),
                        "add sasl_mechanism = \"SCRAM-SHA-512\" (or \"PLAIN\", \"SCRAM-SHA-256\")",
                    );
                }
            }
            None
        }
        Some(_) => {
            let mechanism = check.pick(
                &raw.sasl_mechanism,
                "sasl_mechanism",
                SaslMechanism::Plain,
                &[
                    ("PLAIN", SaslMechanism::Plain),
                    ("SCRAM-SHA-256", SaslMechanism::ScramSha256),
                    ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
                ],
            );
            let get = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
            match (get(&raw.sasl_username), get(&raw.sasl_password)) {
                (Some(username), Some(password)) => Some(Sasl {
                    mechanism,
                    username,
                    password,
                }),
                _ => {
                    check.err(
                        raw.kind.span(),
                        "SASL needs `sasl_username` and `sasl_password`",
                        "set both (keep the file readable by root only)",
                    );
                    None
                }
            }
        }
    };
    let queue = super::forward::queue(check, raw.queue.as_ref().map(Spanned::get_ref));
    if !cfg!(feature = "kafka") {
        check.err(
            raw.kind.span(),
            "this logwelld was built without Kafka support; type = \"kafka\" cannot be used",
            "install the Debian package (built with Kafka), or build with `cargo build --release --features kafka`",
        );
        return None;
    }
    Some(KafkaSettings {
        brokers,
        topic: topic?,
        partition_key: partition_key?,
        payload,
        compression,
        acks,
        idempotence,
        linger,
        batch_bytes,
        client_id,
        delivery_timeout,
        tls,
        sasl,
        queue,
    })
}

fn kafka_template(check: &mut Check<'_>, t: &Spanned<String>, key: &str) -> Option<KafkaTemplate> {
    match KafkaTemplate::parse(t.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            check.err(
                t.span(),
                format!("`{key}`: {e}"),
                "fields are written {host}, {facility}, {severity}, {tag}, {input}, …",
            );
            None
        }
    }
}
