//! Structured bodies (issue 27): an input's `parse` parsers read fields from what the real
//! `logger` sends, `json` outputs carry them with their JSON types, and bodies no parser
//! reads are kept as sent and counted.

use crate::util::{logger_tcp, logger_tcp_lines, Daemon};

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
    logger_tcp_lines(
        d.port,
        "app",
        &[
            r#"@cee: {"level":"warn","status":503,"took":0.25,"ok":false,"req":{"path":"/a\tb"}}"#,
            r#"user=alice action=login src="10.0.0.1 via vpn""#,
            "plain words, no pairs at all",
        ],
    );
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
    let err = crate::util::refused(
        "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nparse = [\"json\", \"yaml\"]\n",
        &[
            "`yaml` is not a body parser",
            "use one of json, cee, logfmt, kv",
        ],
    );
    assert!(err.contains(":4:"), "the `parse` line: {err}");
}

const ROUTED: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = ["json", "kv"]

[output.warnings]
type = "file"
path = "{dir}/warnings.log"

[output.errors]
type = "file"
path = "{dir}/errors.log"

[output.traced]
type = "file"
path = "{dir}/traced.log"

[output.api]
type = "file"
path = "{dir}/api.log"

[[rule]]
field."fields.level" = ["warn", "warning"]
output = "warnings"

[[rule]]
where = ["fields.status >= 500", "fields.status < 600"]
output = "errors"

[[rule]]
exists = "fields.trace.id"
output = "traced"

[[rule]]
field_match."fields.path" = "^/api/"
output = "api"
"#;

#[test]
fn bodies_rules_route_on_fields_values_numbers_presence_and_patterns() {
    let d = Daemon::start(ROUTED);
    // The last line goes everywhere, so once each file has it, every earlier line is in.
    logger_tcp_lines(
        d.port,
        "app",
        &[
            r#"{"level":"WARN","status":503,"n":1}"#,
            "level=info status=502 path=/api/v1 n=2",
            r#"{"level":"info","status":200,"trace":{"id":"abc"},"n":3}"#,
            "level=warning status=404 path=/static n=4",
            "no fields here n5",
            r#"{"status":"oops","path":"/api/x","n":6}"#,
            r#"{"level":"warn","status":500,"trace":{"id":"z"},"path":"/api/z","n":7}"#,
        ],
    );
    let numbers = |file: &str, count: usize| -> Vec<String> {
        d.wait_lines(&d.path(file), count)
            .lines()
            .map(|l| {
                l.rsplit_once("n")
                    .map(|(_, n)| n.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        numbers("warnings.log", 3),
        ["1", "4", "7"],
        "case-insensitive values"
    );
    assert_eq!(
        numbers("errors.log", 3),
        ["1", "2", "7"],
        "numbers, and text that is one"
    );
    assert_eq!(numbers("traced.log", 2), ["3", "7"], "a nested field");
    assert_eq!(numbers("api.log", 3), ["2", "6", "7"]);
}

#[test]
fn bodies_rules_on_fields_are_checked_with_hints() {
    crate::util::refused(
        "[output.f]\ntype = \"file\"\npath = \"/tmp/f.log\"\n\n[[rule]]\nfield.level = \"warn\"\nwhere = \"fields.took_ms >> 3\"\nfield_match.\"fields.p\" = \"(\"\noutput = \"f\"\n",
        &[
            "`level` is not a field name",
            "hint: name a field as fields.NAME",
            "`fields.took_ms >> 3` is not a comparison",
            "is not a valid regex",
        ],
    );
}

const TEMPLATED: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = "json"

[template.siem]
text = "{time:%Y-%m-%d %H:%M:%S} {host} {tag} user={fields.user:-nobody} status={fields.status:json} msg={msg:csv}\n"

[output.siem]
type = "file"
path = "{dir}/siem.log"
template = "siem"

[output.inline]
type = "file"
path = "{dir}/inline.jsonl"
template = '{{"u":{fields.user:json},"took":{fields.took:json:-0},"sev":"{severity}"}}'

[[rule]]
output = ["siem", "inline"]
"#;

#[test]
fn bodies_templates_shape_each_line_from_header_and_fields() {
    let d = Daemon::start(TEMPLATED);
    logger_tcp_lines(
        d.port,
        "shop",
        &[
            r#"{"user":"ann","status":201,"took":1.5}"#,
            "plain \"quoted\" text",
        ],
    );
    let siem = d.wait_lines(&d.path("siem.log"), 2);
    let lines: Vec<&str> = siem.lines().collect();
    let host = crate::util::hostname();
    let stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d";
    crate::util::assert_line(
        lines[0],
        &format!(
            r#"{stamp} {host} shop user=ann status=201 msg="\{{""user"":""ann"",""status"":201,""took"":1.5\}}""#
        ),
    );
    crate::util::assert_line(
        lines[1],
        &format!(r#"{stamp} {host} shop user=nobody status=null msg="plain ""quoted"" text""#),
    );
    let inline = d.wait_lines(&d.path("inline.jsonl"), 2);
    let rows: Vec<serde_json::Value> = inline
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        rows[0],
        serde_json::json!({"u": "ann", "took": 1.5, "sev": "notice"})
    );
    assert_eq!(
        rows[1],
        serde_json::json!({"u": null, "took": 0, "sev": "notice"})
    );

    // What a user checks before pointing a SIEM at it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--config"])
        .arg(d.path("logwell.toml"))
        .args([
            "--render-template",
            "siem",
            r#"<13>Nov 21 09:41:03 web1 api: {"user":"bob","status":500}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    crate::util::assert_line(
        line.trim_end(),
        &format!(
            r#"{stamp} web1 api user=bob status=500 msg="\{{""user"":""bob"",""status"":500\}}""#
        ),
    );
}

#[test]
fn bodies_templates_are_checked_with_hints() {
    crate::util::refused(
        "[output.a]\ntype = \"file\"\npath = \"/tmp/a.log\"\ntemplate = \"{time} {nope}\"\n\n[output.b]\ntype = \"file\"\npath = \"/tmp/b.log\"\ntemplate = \"missing\"\n\n[[rule]]\noutput = [\"a\", \"b\"]\n",
        &[
            "`{nope}` is not a field",
            "no template is named `missing`",
            "declare [template.missing]",
        ],
    );
}

const HEADER_FROM: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = "json"
severity_from = "fields.level"
time_from = "fields.ts"
host_from = "fields.host"
tag_from = "fields.app"

[output.lines]
type = "file"
path = "{dir}/lines.log"

[output.errors]
type = "file"
path = "{dir}/errors.log"
format = "json"

[[rule]]
output = "lines"

[[rule]]
selector = "*.err"
output = "errors"
"#;

#[test]
fn bodies_header_values_come_from_fields() {
    let d = Daemon::start(HEADER_FROM);
    logger_tcp_lines(
        d.port,
        "logger",
        &[
            r#"{"level":"ERROR","ts":1795254063123,"host":"db7","app":"billing","msg":"charge failed"}"#,
            r#"{"level":"debug","host":"db8"}"#,
        ],
    );
    let lines = d.wait_lines(&d.path("lines.log"), 2);
    let first = lines.lines().next().unwrap();
    assert!(
        first.starts_with("2026-11-21T09:41:03.123+00:00 db7 billing: "),
        "time, host and tag from the fields: {first}"
    );
    let errors = d.wait_lines(&d.path("errors.log"), 1);
    assert_eq!(errors.lines().count(), 1, "only the error is err: {errors}");
    let e: serde_json::Value = serde_json::from_str(errors.trim()).unwrap();
    assert_eq!(e["severity"], "err");
    assert_eq!(e["host"], "db7");

    crate::util::refused(
        "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nseverity_from = \"fields.level\"\n",
        &[
            "add parse = [\"json\"]",
        ],
    );
}

#[test]
fn bodies_a_regex_reads_named_groups_and_is_checked() {
    let d = Daemon::start(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = ["json", "regex"]
regex = '^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})'

[output.json]
type = "file"
path = "{dir}/out.json"
format = "json"

[[rule]]
field."fields.status" = "404"
output = "json"
"#,
    );
    logger_tcp_lines(
        d.port,
        "web",
        &[
            "GET /missing 404 3ms",
            r#"{"status":"404","via":"json"}"#,
            "GET /ok 200 1ms",
        ],
    );
    let text = d.wait_lines(&d.path("out.json"), 2);
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["fields"]["method"], "GET");
    assert_eq!(rows[0]["fields"]["path"], "/missing");
    assert_eq!(
        rows[1]["fields"]["via"], "json",
        "JSON first, then the regex"
    );

    crate::util::refused(
        "[input.a]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nparse = \"regex\"\n\n[input.b]\ntype = \"udp\"\nlisten = \"127.0.0.1:5515\"\nparse = \"regex\"\nregex = \"(\"\n\n[input.c]\ntype = \"udp\"\nlisten = \"127.0.0.1:5516\"\nregex = \"(?P<x>.)\"\n\n[input.d]\ntype = \"udp\"\nlisten = \"127.0.0.1:5517\"\nparse = \"regex\"\nregex = \"a.c\"\n",
        &[
            "needs the input's `regex` pattern",
            "is not a valid regex",
            "read only when `parse` names it",
            "has no named group",
        ],
    );
}

#[test]
fn bodies_kv_separators_are_configured_and_checked() {
    let d = Daemon::start(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = "kv"
kv_pair_separator = ";"
kv_separator = ":"
kv_quotes = "'"

[output.json]
type = "file"
path = "{dir}/out.json"
format = "json"

[[rule]]
output = "json"
"#,
    );
    logger_tcp(
        d.port,
        "fw",
        "src:10.0.0.1; dst:10.0.0.2;note:'a;b'; stray words;port:443",
    );
    let text = d.wait_lines(&d.path("out.json"), 1);
    let row: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        row["fields"],
        serde_json::json!({"src": "10.0.0.1", "dst": "10.0.0.2", "note": "a;b", "port": "443"})
    );

    crate::util::refused(
        "[input.a]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nkv_separator = \":\"\n\n[input.b]\ntype = \"udp\"\nlisten = \"127.0.0.1:5515\"\nparse = \"kv\"\nkv_separator = \" \"\n",
        &[
            "read only when `parse` names kv",
            "are the same",
        ],
    );
}

#[test]
fn json_fields_pick_rename_and_order_what_a_json_line_holds() {
    let d = Daemon::start(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = "json"

[output.picked]
type = "file"
path = "{dir}/picked.json"
json_fields = ["host", "app=tag", "severity", "message=fields.msg", "fields.user", "ip=fields.req.ip", "fields.absent"]

[[rule]]
output = "picked"
"#,
    );
    logger_tcp(
        d.port,
        "api",
        r#"{"msg":"said \"hi\"","user":"bob","req":{"ip":"192.0.2.1"},"secret":"x"}"#,
    );
    let line = d.wait_lines(&d.path("picked.json"), 1);
    let host = crate::util::hostname();
    assert_eq!(
        line.trim_end(),
        format!(
            r#"{{"host":"{host}","app":"api","severity":"notice","message":"said \"hi\"","user":"bob","ip":"192.0.2.1","absent":null}}"#
        )
    );
    crate::util::refused(
        "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n[output.o]\ntype = \"file\"\npath = \"/tmp/o.json\"\nformat = \"rfc3339\"\njson_fields = [\"msg\"]\n[[rule]]\noutput = \"o\"\n",
        &["`json_fields` writes JSON, but `format = \"rfc3339\"`"],
    );
    crate::util::refused(
        "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n[output.o]\ntype = \"file\"\npath = \"/tmp/o.json\"\njson_fields = [\"fields.a.id\", \"fields.b.id\"]\n[[rule]]\noutput = \"o\"\n",
        &["`json_fields` names `id` twice", "NAME=SOURCE"],
    );
}

#[test]
fn a_templated_path_takes_a_parsed_field_sanitised() {
    let d = Daemon::start(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"
parse = "json"

[output.tenants]
type = "file"
path = "{dir}/tenants/{fields.tenant}/{fields.app.name}.log"

[[rule]]
output = "tenants"
"#,
    );
    logger_tcp(
        d.port,
        "api",
        r#"{"tenant":"acme","app":{"name":"billing"},"msg":"one"}"#,
    );
    logger_tcp(
        d.port,
        "api",
        r#"{"tenant":"../../etc","app":{"name":"x"},"msg":"two"}"#,
    );
    logger_tcp(d.port, "api", r#"{"msg":"three, no tenant"}"#);
    let one = d.wait_lines(&d.path("tenants/acme/billing.log"), 1);
    assert!(one.contains(r#""msg":"one""#), "{one}");
    // `/` and a leading `.` are replaced: the path stays inside the base directory.
    let two = d.wait_lines(&d.path("tenants/_._.._etc/x.log"), 1);
    assert!(two.contains("two"), "{two}");
    let three = d.wait_lines(&d.path("tenants/_empty/_empty.log"), 1);
    assert!(three.contains("three"), "{three}");
}
