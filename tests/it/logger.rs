//! The real util-linux `logger`, in every mode a user would use, against the real daemon;
//! the assertions are on the bytes in the files.

use crate::util::{assert_line, hostname, logger, Daemon, RFC3339_MICROS};

const CONFIG: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.dgram]
type = "unix_datagram"
path = "{dir}/log.sock"

[input.stream]
type = "unix_stream"
path = "{dir}/stream.sock"

[output.rfc3339]
type = "file"
path = "{dir}/rfc3339.log"
flush_interval_ms = 20

[output.traditional]
type = "file"
path = "{dir}/traditional.log"
format = "traditional"
flush_interval_ms = 20

[output.rfc5424]
type = "file"
path = "{dir}/rfc5424.log"
format = "rfc5424"
flush_interval_ms = 20

[output.json]
type = "file"
path = "{dir}/json.log"
format = "json"
flush_interval_ms = 20

[[rule]]
output = ["rfc3339", "traditional", "rfc5424", "json"]
"#;

/// The `n`th line (1-based) of each output, once it is there.
struct Lines {
    rfc3339: String,
    traditional: String,
    rfc5424: String,
    json: serde_json::Value,
}

fn lines(d: &Daemon, n: usize) -> Lines {
    let nth = |f: &str| {
        d.wait_lines(&d.path(f), n)
            .lines()
            .nth(n - 1)
            .unwrap()
            .to_string()
    };
    Lines {
        rfc3339: nth("rfc3339.log"),
        traditional: nth("traditional.log"),
        rfc5424: nth("rfc5424.log"),
        json: serde_json::from_str(&nth("json.log")).unwrap(),
    }
}

const TRAD_TIME: &str = r"[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d";
const TQ: &str = r#"\[timeQuality tzKnown="1" isSynced="[01]"( syncAccuracy="\d+")?\]"#;

#[test]
fn logger_in_every_mode_lands_in_every_format() {
    let d = Daemon::start(CONFIG);
    let port = d.port.to_string();
    let host = hostname();
    let net = [
        "-n",
        "127.0.0.1",
        "-P",
        port.as_str(),
        "-t",
        "mytag",
        "--id=4242",
        "-p",
        "local3.warning",
    ];

    // UDP, RFC 5424 (logger's default for the network).
    logger(&[&net[..], &["--udp", "hello udp"]].concat());
    let l = lines(&d, 1);
    assert_line(
        &l.rfc3339,
        &format!("{RFC3339_MICROS} {host} mytag\\[4242\\]: hello udp"),
    );
    assert_line(
        &l.traditional,
        &format!("{TRAD_TIME} {host} mytag\\[4242\\]: hello udp"),
    );
    assert_line(
        &l.rfc5424,
        &format!("<156>1 {RFC3339_MICROS} {host} mytag 4242 - {TQ} hello udp"),
    );
    assert_eq!(l.json["facility"], "local3");
    assert_eq!(l.json["severity"], "warning");
    assert_eq!(l.json["appname"], "mytag");
    assert_eq!(l.json["procid"], "4242");
    assert_eq!(l.json["msg"], "hello udp");
    assert_eq!(l.json["input"], "udp");
    assert_eq!(l.json["structured_data"]["timeQuality"]["tzKnown"], "1");

    // TCP, newline framing.
    logger(&[&net[..], &["--tcp", "hello tcp"]].concat());
    let l = lines(&d, 2);
    assert_line(
        &l.rfc3339,
        &format!("{RFC3339_MICROS} {host} mytag\\[4242\\]: hello tcp"),
    );
    assert_eq!(l.json["input"], "tcp");

    // TCP, octet counting.
    logger(&[&net[..], &["--tcp", "--octet-count", "hello octet"]].concat());
    let l = lines(&d, 3);
    assert_line(
        &l.rfc3339,
        &format!("{RFC3339_MICROS} {host} mytag\\[4242\\]: hello octet"),
    );

    // RFC 3164 over UDP: the sender's time has no year and no zone.
    logger(&[&net[..], &["--udp", "--rfc3164", "hello bsd"]].concat());
    let l = lines(&d, 4);
    assert_line(
        &l.traditional,
        &format!("{TRAD_TIME} {host} mytag\\[4242\\]: hello bsd"),
    );
    assert_line(
        &l.rfc3339,
        &format!(r"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d {host} mytag\[4242\]: hello bsd"),
    );
    assert_line(
        &l.rfc5424,
        &format!(
            r"<156>1 \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d {host} mytag 4242 - - hello bsd"
        ),
    );

    // RFC 5424 with structured data and a MSGID: kept exactly, escapes and all.
    logger(
        &[
            &net[..],
            &[
                "--tcp",
                "--rfc5424",
                "--msgid",
                "MID",
                "--sd-id",
                "zoo@123",
                "--sd-param",
                r#"tiger="hungry""#,
                "--sd-param",
                r#"zebra="run\"ning""#,
                "hello sd",
            ],
        ]
        .concat(),
    );
    let l = lines(&d, 5);
    assert_line(
        &l.rfc5424,
        &format!(
            r#"<156>1 {RFC3339_MICROS} {host} mytag 4242 MID {TQ}\[zoo@123 tiger="hungry" zebra="run\\"ning"\] hello sd"#
        ),
    );
    assert_eq!(l.json["msgid"], "MID");
    assert_eq!(l.json["structured_data"]["zoo@123"]["tiger"], "hungry");
    assert_eq!(l.json["structured_data"]["zoo@123"]["zebra"], "run\"ning");

    // Unix datagram socket, as glibc syslog() and `logger` to /dev/log send: no hostname in
    // the message, so the line shows this host; the first word is the tag.
    let dgram = d.path("log.sock");
    logger(&[
        "-u",
        dgram.to_str().unwrap(),
        "-t",
        "mytag",
        "--id=4242",
        "-p",
        "auth.info",
        "hello dgram",
    ]);
    let l = lines(&d, 6);
    assert_line(
        &l.rfc3339,
        &format!("{RFC3339_MICROS} {host} mytag\\[4242\\]: hello dgram"),
    );
    assert_eq!(l.json["facility"], "auth");
    assert_eq!(l.json["host"], host.as_str());
    assert_eq!(l.json["input"], "dgram");
    // SO_PASSCRED: the sender's credentials are recorded.
    assert_eq!(l.json["uid"], unsafe { libc::getuid() });
    assert!(l.json["pid"].as_u64().unwrap() > 0, "{}", l.json);

    // Unix stream socket.
    let stream = d.path("stream.sock");
    logger(&[
        "-u",
        stream.to_str().unwrap(),
        "--socket-errors=on",
        "-T",
        "-t",
        "mytag",
        "hello stream",
    ]);
    let l = lines(&d, 7);
    assert_line(
        &l.rfc3339,
        &format!("{RFC3339_MICROS} {host} mytag: hello stream"),
    );
    assert_eq!(l.json["input"], "stream");
    assert_eq!(l.json["uid"], unsafe { libc::getuid() });

    // Every line of every file is one line: nothing else was written.
    for f in ["rfc3339.log", "traditional.log", "rfc5424.log", "json.log"] {
        assert_eq!(
            std::fs::read_to_string(d.path(f)).unwrap().lines().count(),
            7,
            "{f}"
        );
    }
}

#[test]
fn ipv6_udp_and_tcp() {
    let d = Daemon::start(
        r#"
[input.udp6]
type = "udp"
listen = "[::1]:{port}"

[input.tcp6]
type = "tcp"
listen = "[::1]:{port}"

[output.f]
type = "file"
path = "{dir}/f.log"
format = "json"
flush_interval_ms = 20

[[rule]]
output = "f"
"#,
    );
    let port = d.port.to_string();
    logger(&["-n", "::1", "-P", &port, "--udp", "-t", "v6", "over udp6"]);
    let text = d.wait_lines(&d.path("f.log"), 1);
    logger(&["-n", "::1", "-P", &port, "--tcp", "-t", "v6", "over tcp6"]);
    let text2 = d.wait_lines(&d.path("f.log"), 2);
    let a: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(text2.lines().nth(1).unwrap()).unwrap();
    assert_eq!(a["msg"], "over udp6");
    assert!(a["peer"].as_str().unwrap().starts_with("[::1]:"), "{a}");
    assert_eq!(b["msg"], "over tcp6");
    assert_eq!(b["input"], "tcp6");
}
