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
