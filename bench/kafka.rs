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

#[allow(dead_code)]
mod loadgen;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use loadgen::Share;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const LOGWELLD: &str = env!("CARGO_BIN_EXE_logwelld");
const LOGWELL: &str = env!("CARGO_BIN_EXE_logwell");
/// The longest any case may take.
const CASE_DEADLINE: Duration = Duration::from_secs(600);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a child (by its PID) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn broker(port: u16) -> Proc {
    let tansu = std::env::var("LOGWELL_TANSU")
        .expect("LOGWELL_TANSU: run eval \"$(scripts/kafka-broker.sh)\" first");
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    p
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
    let log = std::fs::File::create(dir.join("logwelld.log")).unwrap();
    let child = Command::new(LOGWELLD)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start logwelld");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stat(dir, "x", "written").is_none() {
        assert!(Instant::now() < deadline, "logwelld did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// An output's counter; `None` while the daemon does not answer.
fn stat(dir: &Path, output: &str, counter: &str) -> Option<u64> {
    let out = Command::new(LOGWELL)
        .args(["stats", "--json", "--socket"])
        .arg(dir.join("c.sock"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["outputs"][output][counter].as_u64().unwrap_or(0))
}

fn wait(dir: &Path, output: &str, counter: &str, n: u64, t0: Instant) {
    while stat(dir, output, counter).unwrap_or(0) < n {
        assert!(
            t0.elapsed() < CASE_DEADLINE,
            "{output}.{counter} stayed below {n}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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
    let port = free_port();
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
    let (port, bport) = (free_port(), free_port());
    let _broker = broker(bport);
    let brokers = format!("127.0.0.1:{bport}");
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let named: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let want = |c: &str| named.is_empty() || named.contains(&c);
    let n: u64 = std::env::var("LOGWELL_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 500_000 });
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
