//! Kafka benchmark (`cargo bench --features kafka --bench kafka`): the release `logwelld`,
//! fed by the end-to-end benchmark's load generator (`loadgen.rs`: 200-byte messages, one
//! TCP connection), publishing to a real Tansu broker (`LOGWELL_TANSU`, installed by
//! `scripts/kafka-broker.sh`; memory storage, a fresh broker per case), against a file
//! output in the same run.
//!
//! Cases (name some to run them only; `--quick` sends 100,000 instead of 500,000, or
//! `LOGWELL_BENCH_MESSAGES=N`):
//! - `file`: TCP → one rfc3339 file; the clock stops when the file's `written` counter
//!   reached every message.
//! - `kafka_p1_none`, `kafka_p1_zstd`, `kafka_p4_none`, `kafka_p4_zstd`: TCP → a Kafka output
//!   (json payload, key `{host}` over 1,000 hosts, default queue, linger 5 ms) into a topic
//!   of 1 or 4 partitions, without or with zstd; the clock stops when `delivered` (the
//!   broker's acknowledgements) reached every message. The topic is then consumed back
//!   (partitions assigned directly) to count loss and duplicates.
//!
//! Every wait is bounded by [`CASE_DEADLINE`]; the daemon and the broker are children of this
//! process, stopped by their PID.

mod cases;
#[allow(dead_code)]
mod loadgen;

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cases::Selection;
use loadgen::Share;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use testkit::broker::{tansu, Broker};
use testkit::child::Proc;
use testkit::logwelld::{self, Binaries};
use testkit::ports::free_port;
use testkit::{wait, OrPanic};

const BINARIES: Binaries = Binaries {
    logwelld: env!("CARGO_BIN_EXE_logwelld"),
    logwell: env!("CARGO_BIN_EXE_logwell"),
};
/// The longest any case may take.
const CASE_DEADLINE: Duration = Duration::from_secs(600);

/// A Tansu broker on a free port, listening.
fn broker() -> Broker {
    let bin = tansu().expect("LOGWELL_TANSU: run eval \"$(scripts/kafka-broker.sh)\" first");
    let mut b = Broker::new(bin).or_panic();
    b.start().or_panic();
    b
}

fn create_topic(brokers: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new("bench", partitions, TopicReplication::Fixed(1));
    for r in rt
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

/// (distinct sequence numbers, duplicates) consumed from the topic.
fn consume(brokers: &str, partitions: i32, n: u64) -> (u64, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "logwell-bench")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("bench", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = vec![0u8; n as usize];
    let (mut distinct, mut dups) = (0, 0);
    let deadline = Instant::now() + CASE_DEADLINE;
    let mut last = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last = Instant::now();
                // The JSON payload's "msg" holds the generator's line, sequence number included.
                if let Some(s) = loadgen::parse_seq(m.payload().unwrap_or_default()) {
                    if let Some(c) = seen.get_mut(s as usize) {
                        if *c == 0 {
                            distinct += 1;
                        } else {
                            dups += 1;
                        }
                        *c = 1;
                    }
                }
            }
            Some(Err(_)) => {}
            None if distinct >= n || last.elapsed() > Duration::from_secs(5) => break,
            None => {}
        }
    }
    (distinct, dups)
}

fn daemon(dir: &Path, body: &str) -> Proc {
    let config = dir.join("logwell.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ncontrol_socket = \"{d}/c.sock\"\nstate_dir = \"{d}/state\"\nprivsep = false\nlog_level = \"warn\"\n{body}",
            d = dir.display()
        ),
    )
    .unwrap();
    let (socket, log) = (dir.join("c.sock"), dir.join("logwelld.log"));
    logwelld::start(BINARIES, &config, &socket, &log)
        .or_panic()
        .grace(Duration::from_secs(30))
}

/// An output's counter; `None` while the daemon does not answer.
fn stat(dir: &Path, output: &str, counter: &str) -> Option<u64> {
    let v = logwelld::stats(BINARIES.logwell, &dir.join("c.sock"))?;
    Some(v["outputs"][output][counter].as_u64().unwrap_or(0))
}

fn wait(dir: &Path, output: &str, counter: &str, n: u64, t0: Instant) {
    let left = CASE_DEADLINE.saturating_sub(t0.elapsed());
    wait::until(left, &format!("{output}.{counter} to reach {n}"), || {
        (stat(dir, output, counter).unwrap_or(0) >= n).then_some(())
    })
    .or_panic();
}

fn send(port: u16, count: u64) {
    let start = Barrier::new(1);
    let share = Share {
        first_seq: 0,
        count,
        deadline: Instant::now() + CASE_DEADLINE,
    };
    let sent = loadgen::tcp(port, share, 1000, &start);
    assert_eq!(sent.messages, count, "{:?}", sent.error);
}

struct Row {
    case: String,
    messages: u64,
    secs: f64,
    lost: Option<u64>,
    dups: Option<u64>,
    latency_ms: Option<f64>,
}

fn file_case(n: u64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().or_panic();
    let body = format!(
        "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n\n[output.x]\ntype = \"file\"\npath = \"{}/out.log\"\nformat = \"rfc3339\"\n\n[[rule]]\noutput = \"x\"\n",
        dir.path().display()
    );
    let _d = daemon(dir.path(), &body);
    let t0 = Instant::now();
    send(port, n);
    wait(dir.path(), "x", "written", n, t0);
    Row {
        case: "file".into(),
        messages: n,
        secs: t0.elapsed().as_secs_f64(),
        lost: None,
        dups: None,
        latency_ms: None,
    }
}

fn kafka_case(n: u64, partitions: i32, compression: &str) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().or_panic();
    let broker = broker();
    let brokers = broker.brokers();
    create_topic(&brokers, partitions);
    let body = format!(
        "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\n\n[output.x]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"bench\"\ncompression = \"{compression}\"\n\n[[rule]]\noutput = \"x\"\n"
    );
    let _d = daemon(dir.path(), &body);
    let t0 = Instant::now();
    send(port, n);
    wait(dir.path(), "x", "delivered", n, t0);
    let secs = t0.elapsed().as_secs_f64();
    let latency_us = stat(dir.path(), "x", "latency_us").unwrap_or(0);
    let (distinct, dups) = consume(&brokers, partitions, n);
    Row {
        case: format!("kafka_p{partitions}_{compression}"),
        messages: n,
        secs,
        lost: Some(n - distinct),
        dups: Some(dups),
        latency_ms: Some(latency_us as f64 / n as f64 / 1000.0),
    }
}

fn main() {
    let selection = Selection::from_args();
    let want = |c: &str| selection.wants(c);
    let n = selection.messages(500_000, 100_000);
    let mut rows = Vec::new();
    if want("file") {
        rows.push(file_case(n));
    }
    for (p, c) in [(1, "none"), (1, "zstd"), (4, "none"), (4, "zstd")] {
        if want(&format!("kafka_p{p}_{c}")) {
            rows.push(kafka_case(n, p, c));
        }
    }
    println!("| case | messages | msg/s end to end | lost | duplicates | mean delivery latency |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} |",
            r.case,
            r.messages,
            r.messages as f64 / r.secs,
            opt(r.lost),
            opt(r.dups),
            r.latency_ms
                .map_or("-".to_string(), |l| format!("{l:.1} ms")),
        );
    }
}
