//! HTTP outputs (issue 28) against the real ClickHouse server Debian 12 ships (18.16,
//! installed by `scripts/deps.sh test`), started on loopback ports with its files in the
//! test's directory: rows from the TCP input and from `logger`, the server stopped in the
//! middle, a row the table refuses, and `kill -9` of logwelld with batches queued.

use std::io::Write;
use std::net::TcpStream;

use testkit::clickhouse::ClickHouse;
use testkit::{wait, OrPanic};

use crate::util::{precondition, Daemon, DEADLINE};

/// ClickHouse, or `None` (after saying why) when it is not installed.
fn clickhouse(test: &str, dir: &std::path::Path) -> Option<ClickHouse> {
    let why = ClickHouse::available().err();
    if !precondition(test, why.as_deref()) {
        return None;
    }
    Some(ClickHouse::start(&dir.join("clickhouse")).or_panic())
}

fn count(ch: &ClickHouse, sql: &str) -> u64 {
    ch.query(sql).or_panic().trim().parse().unwrap()
}

/// Sends `n` numbered lines, `n=000000` …, over one TCP connection.
fn send_numbered(port: u16, from: u32, n: u32) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut batch = Vec::new();
    for i in from..from + n {
        writeln!(batch, "<13>Nov 21 09:41:03 src chtest: n={i:06}").unwrap();
    }
    s.write_all(&batch).unwrap();
}

const TABLE: &str = "CREATE TABLE logs (time DateTime, host String, appname String, severity String, msg String) ENGINE = Log";

fn config(extra: &str) -> String {
    format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.ch]
type = "http"
url = "http://127.0.0.1:{{ch_port}}/"
preset = "clickhouse"
table = "logs"
linger_ms = 50
reconnect_min_ms = 100
reconnect_max_ms = 400
{extra}

[[rule]]
output = "ch"
"#
    )
}

#[test]
fn clickhouse_gets_every_row_across_a_stop_of_the_server() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(ch) = clickhouse("clickhouse_gets_every_row", scratch.path()) else {
        return;
    };
    ch.query(TABLE).or_panic();
    let port = ch.http_port;
    let d = Daemon::start(
        &config("compression = \"gzip\"\nbatch_records = 5000")
            .replace("{ch_port}", &port.to_string()),
    );
    crate::util::logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &d.port.to_string(),
        "-t",
        "viaLogger",
        "from logger",
    ]);
    send_numbered(d.port, 0, 50_000);
    wait::until(DEADLINE, "the first rows", || {
        (count(&ch, "SELECT count() FROM logs") > 0).then_some(())
    })
    .or_panic();
    // The server goes away; what arrives meanwhile waits in the queue, each try counted.
    let dir = ch.stop().or_panic();
    send_numbered(d.port, 50_000, 50_000);
    let failed = d.stat("outputs", "ch", "failed");
    d.wait_stat("outputs", "ch", "failed", failed + 2);
    let ch = ClickHouse::start_on(&dir, port).or_panic();
    wait::try_until(
        DEADLINE * 2,
        "every row",
        || format!("{}\n{}", d.log(), ch.errors()),
        || Ok((count(&ch, "SELECT count(DISTINCT msg) FROM logs") == 100_001).then_some(())),
    )
    .or_panic();
    let rows = count(&ch, "SELECT count() FROM logs");
    // At least once: a request the server took as it stopped, whose answer was lost, comes
    // again (at most one batch).
    assert!(rows - 100_001 <= 5000, "{rows} rows");
    let logged = ch
        .query("SELECT appname, severity, host FROM logs WHERE msg = 'from logger' FORMAT TSV")
        .or_panic();
    assert_eq!(
        logged.trim(),
        format!("viaLogger\tnotice\t{}", crate::util::hostname())
    );
    assert_eq!(d.stat("outputs", "ch", "dead_lettered"), 0);
}

#[test]
fn a_row_clickhouse_refuses_goes_to_the_dead_letter_file_and_the_rest_arrive() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(ch) = clickhouse("a_row_clickhouse_refuses", scratch.path()) else {
        return;
    };
    ch.query("CREATE TABLE logs (msg String, status UInt16) ENGINE = Log")
        .or_panic();
    let d = Daemon::start(
        &config("json_fields = [\"msg\", \"status=fields.status\"]")
            .replace("{ch_port}", &ch.http_port.to_string())
            .replace("type = \"tcp\"\n", "type = \"tcp\"\nparse = \"json\"\n"),
    );
    let mut lines = Vec::new();
    for i in 0..20 {
        let status = if i == 13 {
            "\"oops\"".to_string()
        } else {
            (200 + i).to_string()
        };
        lines.push(format!(r#"{{"status":{status},"n":{i}}}"#));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    crate::util::logger_tcp_lines(d.port, "app", &lines);
    d.wait_stat("outputs", "ch", "dead_lettered", 1);
    d.wait_stat("outputs", "ch", "delivered", 19);
    assert_eq!(count(&ch, "SELECT count() FROM logs"), 19);
    assert_eq!(count(&ch, "SELECT count() FROM logs WHERE status = 213"), 0);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.path("state/dead-letter/ch.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        mode & 0o037,
        0,
        "group read at most, never others: {mode:o}"
    );
    let dead = std::fs::read_to_string(d.path("state/dead-letter/ch.jsonl")).unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["output"], "ch");
    assert_eq!(dead["record"]["status"], "oops", "{dead}");
    assert!(
        dead["reason"].as_str().unwrap().contains("Code: "),
        "ClickHouse's own reason: {dead}"
    );
}

#[test]
fn kill_9_with_batches_queued_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(ch) = clickhouse("kill_9_with_batches_queued", scratch.path()) else {
        return;
    };
    ch.query(TABLE).or_panic();
    let port = ch.http_port;
    let dir = ch.stop().or_panic();
    // Everything to disk (memory_bytes = 0): kill -9 keeps what the page cache holds.
    let mut d = Daemon::start(
        &config("[output.ch.queue]\nmemory_bytes = 0").replace("{ch_port}", &port.to_string()),
    );
    send_numbered(d.port, 0, 20_000);
    d.wait_stat("outputs", "ch", "queued", 20_000);
    d.signal(libc::SIGKILL);
    d.wait_exit();
    let ch = ClickHouse::start_on(&dir, port).or_panic();
    d.restart();
    wait::try_until(
        DEADLINE * 2,
        "every row after the restart",
        || d.log(),
        || Ok((count(&ch, "SELECT count(DISTINCT msg) FROM logs") == 20_000).then_some(())),
    )
    .or_panic();
}

#[test]
fn http_output_settings_are_checked_with_hints() {
    crate::util::refused(
        "[output.a]\ntype = \"http\"\n\n[output.b]\ntype = \"http\"\nurl = \"ftp://x/\"\n\n[output.c]\ntype = \"http\"\nurl = \"http://127.0.0.1:8123/\"\npreset = \"clickhouse\"\ncompression = \"zstd\"\n\n[output.d]\ntype = \"http\"\nurl = \"http://127.0.0.1:8123/\"\ntable = \"t\"\n\n[output.e]\ntype = \"http\"\nurl = \"http://127.0.0.1:8123/\"\nca = \"/x.pem\"\ntargets = \"x:1\"\n",
        &[
            "an http output needs `url`",
            "`ftp://x/` is not an http:// or https:// URL",
            "preset = \"clickhouse\" needs `table`",
            "refuses zstd bodies",
            "`table` applies only to preset = \"clickhouse\"",
            "`ca` applies only to an https:// url",
            "`targets` does not apply to http outputs",
        ],
    );
}

/// A stand-in HTTP server, for the endpoints that cannot run here (Elasticsearch, Loki): it
/// records each request and answers from a list built from the endpoint's documented API
/// (then `204`). HTTP/1.1 with keep-alive, bodies by `Content-Length`, as logwell sends them.
struct StandIn {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

/// One request the stand-in got.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl StandIn {
    fn start(answers: Vec<(u16, &'static str)>) -> StandIn {
        use std::io::{BufRead, BufReader, Read};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let answers = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
            answers,
        )));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (seen, answers) = (seen.clone(), answers.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut writer = conn;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (n, v) = h.split_once(':').unwrap();
                            headers.push((n.trim().to_string(), v.trim().to_string()));
                        }
                        let len: usize = headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                            .map_or(0, |(_, v)| v.parse().unwrap());
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        seen.lock().unwrap().push(Seen {
                            line: line.trim_end().to_string(),
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let (status, text) =
                            answers.lock().unwrap().pop_front().unwrap_or((204, ""));
                        write!(
                            writer,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                            text.len()
                        )
                        .unwrap();
                    }
                });
            }
        });
        StandIn { port, requests }
    }

    fn wait_requests(&self, n: usize) -> Vec<Seen> {
        wait::until(DEADLINE, &format!("{n} requests at the stand-in"), || {
            let r = self.requests.lock().unwrap();
            (r.len() >= n).then(|| r.clone())
        })
        .or_panic()
    }
}

/// Elasticsearch's `_bulk` answer with mixed items, as its documentation shows them.
const BULK_MIXED: &str = r#"{"took":3,"errors":true,"items":[
 {"create":{"_index":"logs","_id":"a","status":201,"result":"created"}},
 {"create":{"_index":"logs","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [status] of type [long]"}}},
 {"create":{"_index":"logs","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}}]}"#;
const BULK_OK: &str = r#"{"took":1,"errors":false,"items":[{"create":{"_index":"logs","_id":"b","status":201,"result":"created"}}]}"#;

#[test]
fn elasticsearch_stand_in_bulk_items_are_settled_one_by_one() {
    // A stand-in: Elasticsearch cannot run here. Its answers are the documented `_bulk` ones.
    let es = StandIn::start(vec![(200, BULK_MIXED), (200, BULK_OK)]);
    let d = Daemon::start(&format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.es]
type = "http"
url = "http://127.0.0.1:{}/"
preset = "elasticsearch"
index = "logs-{{appname}}-{{year}}"
batch_records = 3
linger_ms = 5000
reconnect_min_ms = 50

[[rule]]
output = "es"
"#,
        es.port
    ));
    crate::util::logger_tcp_lines(d.port, "shop", &["one", "two", "three"]);
    let seen = es.wait_requests(2);
    assert!(
        seen[0].line.starts_with("POST /_bulk HTTP/1.1"),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[0].header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<&str> = seen[0].body.lines().collect();
    assert_eq!(lines.len(), 6, "{}", seen[0].body);
    let year = chrono::Utc::now().format("%Y").to_string();
    for (i, msg) in ["one", "two", "three"].iter().enumerate() {
        let action: serde_json::Value = serde_json::from_str(lines[2 * i]).unwrap();
        assert_eq!(action["create"]["_index"], format!("logs-shop-{year}"));
        let record: serde_json::Value = serde_json::from_str(lines[2 * i + 1]).unwrap();
        assert_eq!(record["msg"], *msg);
    }
    // Only the item answered 429 is sent again; the 400 goes to the dead-letter file.
    let again: Vec<&str> = seen[1].body.lines().collect();
    assert_eq!(again.len(), 2);
    assert!(again[1].contains(r#""msg":"three""#), "{}", seen[1].body);
    d.wait_stat("outputs", "es", "delivered", 2);
    assert_eq!(d.stat("outputs", "es", "dead_lettered"), 1);
    let dead = std::fs::read_to_string(d.path("state/dead-letter/es.jsonl")).unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["record"]["msg"], "two");
    assert_eq!(dead["status"], 400);
    assert_eq!(
        dead["reason"],
        "400 mapper_parsing_exception: failed to parse field [status] of type [long]"
    );
}

#[test]
fn loki_stand_in_gets_streams_by_label_with_the_records_times() {
    // A stand-in: Loki cannot run here. A push is answered 204, as Loki's API documents.
    let loki = StandIn::start(vec![(204, "")]);
    let d = Daemon::start_with(
        &format!(
            r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.loki]
type = "http"
url = "http://127.0.0.1:{}"
preset = "loki"
labels = {{ job = "logwell", app = "{{appname}}" }}
headers = {{ "X-Scope-OrgID" = "tenant-1" }}
token_file = "{{dir}}/token"
batch_records = 3
linger_ms = 5000

[[rule]]
output = "loki"
"#,
            loki.port
        ),
        |dir| std::fs::write(dir.join("token"), "s3cret\n").unwrap(),
    );
    crate::util::logger_tcp_lines(d.port, "web", &["w1", "w2"]);
    crate::util::logger_tcp_lines(d.port, "db", &["d1"]);
    let seen = loki.wait_requests(1);
    let push = &seen[0];
    assert!(push.line.starts_with("POST /loki/api/v1/push "), "{push:?}");
    assert_eq!(push.header("content-type"), Some("application/json"));
    assert_eq!(push.header("x-scope-orgid"), Some("tenant-1"));
    assert_eq!(push.header("authorization"), Some("Bearer s3cret"));
    let body: serde_json::Value = serde_json::from_str(&push.body).unwrap();
    let streams = body["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{body}");
    let web = streams
        .iter()
        .find(|s| s["stream"]["app"] == "web")
        .unwrap();
    assert_eq!(web["stream"]["job"], "logwell");
    let values = web["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    for v in values {
        let line: serde_json::Value = serde_json::from_str(v[1].as_str().unwrap()).unwrap();
        let time = chrono::DateTime::parse_from_rfc3339(line["time"].as_str().unwrap()).unwrap();
        assert_eq!(
            v[0].as_str().unwrap(),
            time.timestamp_nanos_opt().unwrap().to_string(),
            "the entry's time is the record's"
        );
    }
    d.wait_stat("outputs", "loki", "delivered", 3);
}

const HTTP_INPUT: &str = r#"
[input.web]
type = "http"
listen = "127.0.0.1:{port}"
token_file = "{dir}/token"
max_body_bytes = 4096
max_records = 5

[output.all]
type = "file"
path = "{dir}/all.json"
format = "json"

[output.errors]
type = "file"
path = "{dir}/errors.log"

[[rule]]
output = "all"

[[rule]]
where = ["fields.status >= 500"]
output = "errors"
"#;

/// `curl` posting `body` as `content_type` to the input, with `token` if given: the status
/// and the answer.
fn curl(port: u16, token: Option<&str>, content_type: &str, body: &str) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{port}/v1/logs"))
        .args(["-H", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", body]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("curl is installed");
    let text = String::from_utf8(out.stdout).unwrap();
    let (answer, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), answer.to_string())
}

#[test]
fn http_input_takes_records_from_curl_and_answers_per_record() {
    let d = Daemon::start_with(HTTP_INPUT, |dir| {
        std::fs::write(dir.join("token"), "s3cret\n").unwrap()
    });
    let ndjson = concat!(
        r#"{"msg":"paid","severity":"info","app":"shop","status":200,"user":"ann"}"#,
        "\n",
        r#"{"msg":"broken"#,
        "\n",
        r#"{"message":"failed","host":"web9","time":"2026-01-02T03:04:05Z","status":503}"#,
        "\n"
    );
    assert_eq!(
        curl(d.port, None, "application/x-ndjson", ndjson).0,
        401,
        "no token"
    );
    assert_eq!(
        curl(d.port, Some("wrong"), "application/x-ndjson", ndjson).0,
        401
    );
    let (code, answer) = curl(d.port, Some("s3cret"), "application/x-ndjson", ndjson);
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["refused"][0]["index"], 1);
    assert!(answer["refused"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("not JSON"));
    // Answered once the outputs took the records: they are in the files already.
    let all = std::fs::read_to_string(d.path("all.json")).unwrap();
    let rows: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{all}");
    assert_eq!(rows[0]["msg"], "paid");
    assert_eq!(rows[0]["severity"], "info");
    assert_eq!(rows[0]["appname"], "shop");
    assert_eq!(rows[0]["fields"]["user"], "ann");
    assert_eq!(rows[1]["host"], "web9");
    assert!(rows[1]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-02T03:04:05"));
    let errors = std::fs::read_to_string(d.path("errors.log")).unwrap();
    assert!(
        errors.contains("failed") && !errors.contains("paid"),
        "{errors}"
    );

    // A JSON array, and syslog lines as text.
    let (code, _) = curl(
        d.port,
        Some("s3cret"),
        "application/json",
        r#"[{"msg":"a1"},{"msg":"a2"}]"#,
    );
    assert_eq!(code, 200);
    let (code, _) = curl(
        d.port,
        Some("s3cret"),
        "text/plain",
        "<11>Nov 21 09:41:03 db7 pg[42]: text line",
    );
    assert_eq!(code, 200);
    let all = d.wait_lines(&d.path("all.json"), 5);
    assert!(
        all.contains(r#""msg":"a2""#) && all.contains(r#""appname":"pg""#),
        "{all}"
    );

    // Limits: a body over max_body_bytes, too many records, a type not taken.
    let big = format!(r#"{{"msg":"{}"}}"#, "x".repeat(5000));
    assert_eq!(
        curl(d.port, Some("s3cret"), "application/x-ndjson", &big).0,
        413
    );
    let many = "{}\n".repeat(6);
    assert_eq!(
        curl(d.port, Some("s3cret"), "application/x-ndjson", &many).0,
        413
    );
    assert_eq!(
        curl(d.port, Some("s3cret"), "application/xml", "<x/>").0,
        400
    );
    assert_eq!(d.stat("inputs", "web", "received"), 5);
    assert_eq!(d.stat("inputs", "web", "malformed"), 1);

    crate::util::refused(
        "[input.h]\ntype = \"http\"\nlisten = \"0.0.0.0:8080\"\n\n[input.t]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5514\"\nmax_records = 3\n",
        &[
            "an http input on a non-loopback address needs `token_file`",
            "`max_records` does not apply to tcp inputs",
        ],
    );
}

#[test]
fn http_input_over_tls_requires_a_permitted_client_certificate() {
    let d = Daemon::start_with(
        r#"
[input.web]
type = "http"
listen = "127.0.0.1:{port}"
cert = "{dir}/server.pem"
key = "{dir}/server.key"
ca = "{dir}/ca.pem"
client_auth = "required"
permitted_peers = ["client.example.com"]

[output.all]
type = "file"
path = "{dir}/all.json"
format = "json"

[[rule]]
output = "all"
"#,
        crate::tls::make_pki,
    );
    let dir = d.dir.path();
    let post = |who: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--resolve"])
            .arg(format!("localhost:{}:127.0.0.1", d.port))
            .arg("--cacert")
            .arg(dir.join("ca.pem"))
            .arg("--cert")
            .arg(dir.join(format!("{who}.pem")))
            .arg("--key")
            .arg(dir.join(format!("{who}.key")))
            .args(["-H", "Content-Type: application/x-ndjson"])
            .args(["--data-binary", &format!("{{\"msg\":\"from {who}\"}}\n")])
            .arg(format!("https://localhost:{}/v1/logs", d.port))
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = post("client");
    assert!(ok.ends_with("\n200"), "{ok}");
    let text = std::fs::read_to_string(d.path("all.json")).unwrap();
    let row: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(row["msg"], "from client");
    assert_eq!(row["tls_peer"], "client.example.com");
    // A certificate from another CA never gets to HTTP.
    let refused = post("stranger");
    assert!(!refused.ends_with("\n200"), "{refused}");
    d.wait_stat("inputs", "web", "tls_refused", 1);
    assert_eq!(
        std::fs::read_to_string(d.path("all.json"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}
