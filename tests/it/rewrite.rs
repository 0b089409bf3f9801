//! Rewrite and redaction steps in rules (`set`, `remove`, `drop_fields`, `[[rule.mask]]`):
//! a message from the real `logger` with secrets in its JSON body reaches an output before
//! the redaction rule as it was sent, and the outputs after it (a plain file, a `json` file
//! and a templated line) without any of the secrets.

use crate::util::{logger, refused, Daemon};

const CONFIG: &str = r#"
[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"
parse = "json"

[output.raw]
type = "file"
path = "{dir}/raw.log"

[output.clean]
type = "file"
path = "{dir}/clean.log"

[output.json]
type = "file"
path = "{dir}/clean.json"
format = "json"

[output.siem]
type = "file"
path = "{dir}/siem.log"
template = "{host} user={fields.user} ip={fields.ip} card={fields.card} env={fields.env} {msg}"

[[rule]]
output = "raw"

# The redaction: what every rule after this one sees.
[[rule]]
set = { "msg" = "{fields.msg}", "host" = "{fields.host}", "fields.env" = "prod" }
remove = ["fields.session", "fields.msg"]   # the text moved into msg
drop_fields = ["pass*"]

[[rule.mask]]
field = "msg"
ipv4 = 24

[[rule.mask]]
field = "msg"
regex = 'token=\w+'
with = "token=***"

[[rule.mask]]
field = "fields.ip"
ipv4 = 16

[[rule.mask]]
field = "fields.card"
card = true

[[rule]]
output = ["clean", "json", "siem"]
"#;

const SECRETS: [&str; 5] = [
    "192.0.2.77",
    "hunter2",
    "4111 1111 1111 1111",
    "abc123",
    "s-98765",
];

#[test]
fn redaction_applies_to_every_output_after_its_rule() {
    let d = Daemon::start(CONFIG);
    let body = r#"{"user":"bob","host":"web7","ip":"192.0.2.77","password":"hunter2","session":"s-98765","card":"4111 1111 1111 1111","msg":"login from 192.0.2.77 token=abc123"}"#;
    let sock = d.path("log.sock");
    let out = logger(&["-u", sock.to_str().unwrap(), "-t", "api", body]);
    assert!(out.status.success(), "{out:?}");
    // Before the redaction rule: as sent.
    let raw = d.wait_lines(&d.path("raw.log"), 1);
    for s in SECRETS {
        assert!(raw.contains(s), "{s} missing from raw.log: {raw}");
    }
    let clean = d.wait_lines(&d.path("clean.log"), 1);
    let json = d.wait_lines(&d.path("clean.json"), 1);
    let siem = d.wait_lines(&d.path("siem.log"), 1);
    for (name, text) in [
        ("clean.log", &clean),
        ("clean.json", &json),
        ("siem.log", &siem),
    ] {
        for s in SECRETS {
            assert!(!text.contains(s), "{s} is in {name}: {text}");
        }
    }
    assert!(
        clean.contains(" web7 api: login from 192.0.2.0 token=***"),
        "{clean}"
    );
    assert_eq!(
        siem.trim_end(),
        "web7 user=bob ip=192.0.0.0 card=**** **** **** 1111 env=prod login from 192.0.2.0 token=***"
    );
    let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    let fields = &v["fields"];
    assert_eq!(fields["env"], "prod", "{v}");
    assert_eq!(fields["ip"], "192.0.0.0", "{v}");
    assert!(
        fields.get("password").is_none() && fields.get("session").is_none(),
        "{v}"
    );
    assert_eq!(v["host"], "web7", "{v}");
}

#[test]
fn check_config_refuses_steps_it_cannot_apply() {
    let base = "[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\n[output.o]\ntype = \"file\"\npath = \"/tmp/x.log\"\n";
    refused(
        &format!("{base}[[rule]]\noutput = \"o\"\n[[rule.mask]]\nfield = \"msg\"\nipv4 = 24\ncard = true\n"),
        &["a [[rule.mask]] masks one way", "give exactly one of ipv4"],
    );
    refused(
        &format!("{base}[[rule]]\nset = {{ \"pid\" = \"1\" }}\n"),
        &["`set.\"pid\"`: not a value a rule can set", "fields.NAME"],
    );
    refused(
        &format!("{base}[[rule]]\nremove = [\"severity\"]\n"),
        &["`remove`: `severity` is not a value a rule can remove"],
    );
    refused(
        &format!("{base}[[rule]]\ndiscard = true\ndrop_fields = [\"x\"]\n"),
        &["its rewrite steps have no effect"],
    );
}

#[test]
fn a_rule_parses_the_bodies_it_matches_for_the_rules_after_it() {
    let d = Daemon::start(
        r#"
[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.errors]
type = "file"
path = "{dir}/errors.log"

[output.failures]
type = "file"
path = "{dir}/failures.log"
template = "{fields.user} from {fields.ip}"

[output.all]
type = "file"
path = "{dir}/all.json"
format = "json"

[[rule]]
program = "nginx"
parse = "json"

[[rule]]
program = "sshd"
parse = "regex"
parse_regex = 'Failed password for (?P<user>\S+) from (?P<ip>\S+)'

[[rule]]
where = "fields.status >= 500"
output = "errors"

[[rule]]
exists = ["fields.ip"]
output = "failures"

[[rule]]
output = "all"
"#,
    );
    let sock = d.path("log.sock");
    let sock = sock.to_str().unwrap();
    logger(&["-u", sock, "-t", "nginx", r#"{"status":502,"path":"/api"}"#]);
    logger(&["-u", sock, "-t", "nginx", r#"{"status":200,"path":"/"}"#]);
    logger(&[
        "-u",
        sock,
        "-t",
        "sshd",
        "Failed password for root from 192.0.2.4 port 22",
    ]);
    // Not parsed: its rule wants another program.
    logger(&["-u", sock, "-t", "other", r#"{"status":503}"#]);
    let all = d.wait_lines(&d.path("all.json"), 4);
    let errors = d.wait_lines(&d.path("errors.log"), 1);
    assert!(
        errors.contains("/api") && !errors.contains("503"),
        "{errors}"
    );
    let failures = d.wait_lines(&d.path("failures.log"), 1);
    assert_eq!(failures, "root from 192.0.2.4\n");
    let lines: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["fields"]["status"], 502, "{all}");
    assert!(lines[3].get("fields").is_none(), "{all}");
}
