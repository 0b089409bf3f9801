//! Routing as an rsyslog user expects it: the shipped config reproduces Debian 12's default
//! files, and rules match on program, host, input and text, with `final`.

use crate::util::{logger, udp_send, Daemon};

#[test]
fn the_shipped_config_routes_like_debian_12() {
    // etc/logwell.toml, with /var/log and /run/logwell moved into the test's directory.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/logwell.toml")).unwrap();
    let template = shipped
        .replace(
            "[daemon]\ncontrol_socket = \"/run/logwell/control.sock\"\n",
            "",
        )
        .replace("/var/log/", "{dir}/")
        .replace("/run/systemd/journal/syslog", "{dir}/journald.sock")
        .replace("\"/dev/log\"", "\"{dir}/dev-log\"")
        .replace("/run/logwell/", "{dir}/")
        // The kernel's own lines would mix with the test's in kern.log.
        .replace("[input.kernel]\ntype = \"kmsg\"\n", "")
        // Broadcast to nobody: an empty utmp, never the machine's.
        .replace(
            "type = \"users\"\n",
            "type = \"users\"\nutmp = \"{dir}/utmp\"\n",
        );
    let d = Daemon::start(&template.replace(
        "type = \"file\"\n",
        "type = \"file\"\nflush_interval_ms = 20\n",
    ));
    let sock = d.path("log.sock");
    let send = |prio: &str, text: &str| {
        logger(&["-u", sock.to_str().unwrap(), "-t", "t", "-p", prio, text])
    };
    send("auth.info", "auth message");
    send("authpriv.notice", "authpriv message");
    send("cron.info", "cron message");
    // logger turns facility kern into user, as glibc does; the kernel's own lines arrive raw.
    let kmsg = std::os::unix::net::UnixDatagram::unbound().unwrap();
    kmsg.send_to(b"<4>Nov 21 09:41:03 kernel: kern message", &sock)
        .unwrap();
    d.wait_stat("inputs", "local", "received", 4);
    send("mail.err", "mail message");
    send("user.notice", "user message");
    send("daemon.debug", "daemon message");
    send("local7.emerg", "local7 message");
    let syslog = d.wait_lines(&d.path("syslog"), 6);
    let has = |file: &str, n: usize| {
        let text = d.wait_lines(&d.path(file), n);
        text.lines()
            .map(|l| l.split_once(": ").unwrap().1.to_string())
            .collect::<Vec<_>>()
    };
    assert!(syslog.contains(" kernel: kern message\n"), "{syslog}");
    assert_eq!(has("auth.log", 2), ["auth message", "authpriv message"]);
    assert_eq!(has("cron.log", 1), ["cron message"]);
    assert_eq!(has("kern.log", 1), ["kern message"]);
    assert_eq!(has("mail.log", 1), ["mail message"]);
    assert_eq!(has("user.log", 1), ["user message"]);
    assert_eq!(
        has("syslog", 6),
        [
            "cron message",
            "kern message",
            "mail message",
            "user message",
            "daemon message",
            "local7 message"
        ],
        "{syslog}"
    );
    // Nothing more arrives: every file has exactly what it should.
    d.wait_stat("outputs", "syslog", "written", 6);
    assert_eq!(d.stat("outputs", "auth", "written"), 2);
    assert_eq!(d.stat("outputs", "user", "written"), 1);
}

#[test]
fn rules_match_program_host_input_and_text_and_final_stops() {
    let d = Daemon::start(
        r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.sshd]
type = "file"
path = "{dir}/sshd.log"
flush_interval_ms = 20

[output.web]
type = "file"
path = "{dir}/web.log"
flush_interval_ms = 20

[output.tcp]
type = "file"
path = "{dir}/tcp.log"
flush_interval_ms = 20

[output.firewall]
type = "file"
path = "{dir}/firewall.log"
flush_interval_ms = 20

[output.rest]
type = "file"
path = "{dir}/rest.log"
flush_interval_ms = 20

[[rule]]
program = ["sshd", "sudo"]
output = "sshd"

[[rule]]
hostname = "WEB01"
selector = "*.warning"
output = "web"

[[rule]]
input = "tcp"
output = "tcp"

[[rule]]
match = "^\\[UFW (BLOCK|ALLOW)\\]"
output = "firewall"
final = true

[[rule]]
output = "rest"
"#,
    );
    udp_send(d.port, b"<38>Nov 21 09:41:03 gw sshd[1]: Accepted key");
    udp_send(d.port, b"<12>Nov 21 09:41:03 web01 nginx: upstream slow");
    udp_send(d.port, b"<14>Nov 21 09:41:03 web01 nginx: GET / 200");
    udp_send(d.port, b"<4>Nov 21 09:41:03 gw kernel: [UFW BLOCK] IN=eth0");
    // Order holds within an input, not across inputs: send over TCP once the UDP lines are in.
    d.wait_lines(&d.path("rest.log"), 3);
    crate::util::tcp_send(d.port, b"<13>Nov 21 09:41:03 gw app: over tcp\n");
    let lines = |f: &str, n: usize| -> Vec<String> {
        d.wait_lines(&d.path(f), n)
            .lines()
            .map(|l| l.split_once(": ").unwrap().1.to_string())
            .collect()
    };
    assert_eq!(lines("sshd.log", 1), ["Accepted key"]);
    assert_eq!(
        lines("web.log", 1),
        ["upstream slow"],
        "info is below warning"
    );
    assert_eq!(lines("tcp.log", 1), ["over tcp"]);
    assert_eq!(lines("firewall.log", 1), ["[UFW BLOCK] IN=eth0"]);
    // `final` kept the firewall line out of rest.log; everything else reached it.
    assert_eq!(
        lines("rest.log", 4),
        ["Accepted key", "upstream slow", "GET / 200", "over tcp"]
    );
    d.wait_stat("inputs", "tcp", "received", 1);
    d.wait_stat("outputs", "rest", "written", 4);
    assert_eq!(d.stat("outputs", "firewall", "written"), 1);
}
