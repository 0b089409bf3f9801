//! Structured bodies (issue 27): an input's `parse` parsers read fields from what the real
//! `logger` sends, `json` outputs carry them with their JSON types, and bodies no parser
//! reads are kept as sent and counted.

use crate::util::{logger, Daemon};

const CONFIG: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = ["json", "kv"]

[output.json]
type = "file"
path = "{dir}/out.json"
format = "json"

[[rule]]
output = "json"
"#;

#[test]
fn bodies_json_and_kv_fields_reach_json_outputs_and_the_rest_is_counted() {
    let d = Daemon::start(CONFIG);
    let port = d.port.to_string();
    let send = |text: &str| {
        logger(&[
            "--tcp",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-t",
            "app",
            "--",
            text,
        ]);
    };
    send(r#"@cee: {"level":"warn","status":503,"took":0.25,"ok":false,"req":{"path":"/a\tb"}}"#);
    send(r#"user=alice action=login src="10.0.0.1 via vpn""#);
    send("plain words, no pairs at all");
    let text = d.wait_lines(&d.path("out.json"), 3);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();

    let json = &lines[0]["fields"];
    assert_eq!(json["level"], "warn");
    assert_eq!(json["status"], 503, "numbers stay numbers: {json}");
    assert_eq!(json["took"], 0.25);
    assert_eq!(json["ok"], false);
    assert_eq!(json["req"]["path"], "/a\tb");
    assert!(
        text.lines().next().unwrap().contains(r#""/a\tb""#),
        "the tab is escaped in the file: {text}"
    );
    assert!(
        lines[0]["msg"].as_str().unwrap().starts_with("@cee: {"),
        "the body is kept"
    );

    let kv = &lines[1]["fields"];
    assert_eq!(kv["user"], "alice");
    assert_eq!(kv["action"], "login");
    assert_eq!(kv["src"], "10.0.0.1 via vpn");

    assert!(lines[2].get("fields").is_none(), "{}", lines[2]);
    assert_eq!(lines[2]["msg"], "plain words, no pairs at all");
    d.wait_stat("inputs", "tcp", "parse_failed", 1);
    assert_eq!(d.stat("inputs", "tcp", "parse_partial"), 0);
}

#[test]
fn bodies_an_unknown_parser_is_refused_with_the_choices() {
    let (code, err) = crate::util::check_config(
        "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nparse = [\"json\", \"yaml\"]\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`yaml` is not a body parser"), "{err}");
    assert!(err.contains("use one of json, cee, logfmt, kv"), "{err}");
    assert!(err.contains(":4:"), "the `parse` line: {err}");
}
