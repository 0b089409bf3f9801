//! `logwell import-rsyslog`, the translation of rsyslog's configuration, run as a user runs
//! it: the real binary on real configurations.
//!
//! - The corpus (`tests/data/rsyslog/NAME.conf`, configurations as administrators and
//!   packages write them) against golden files: `NAME.toml` is the expected standard output,
//!   `NAME.report` the expected standard error. `LOGWELL_BLESS=1` rewrites the golden files
//!   instead of comparing; review every change by eye against rsyslog's semantics before
//!   committing it. Every translation, made runnable in a temporary directory, must pass
//!   `logwelld --check-config`.
//! - Debian's own `/etc/rsyslog.conf` with the drop-ins haproxy and ufw ship (unpacked by
//!   `scripts/peers.sh`, never copied into the repository).
//! - Routing equivalence: the real rsyslogd and logwelld on the same configurations (8 of the
//!   corpus, and Debian's with the two drop-ins), sent the same 10,000 UDP datagrams, must
//!   write the same `TAG: MSG` lines, in the same order, to the same files. The timestamp
//!   and host name are cut (their formats differ). Known bugs of the translation are listed
//!   in `KNOWN_DIFFERENCES` (tests/data/rsyslog/README.md), and a file that several rsyslog
//!   actions write is compared without its order (`REORDERED`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::peers::Peers;
use testkit::OrPanic;

use crate::util::precondition;

/// The corpus directory.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rsyslog")
}

/// `logwell import-rsyslog FILE`, run in `cwd`.
fn import(cwd: &Path, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwell"))
        .arg("import-rsyslog")
        .arg(file)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The corpus configurations, by name, in name order.
fn corpus_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".conf").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Where the first difference between `want` and `got` is, with a few lines of each.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let at = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let show = |lines: &[&str]| {
        lines
            .iter()
            .skip(at)
            .take(4)
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "  line {}:\n  want:\n{}  got:\n{}",
        at + 1,
        show(&w),
        show(&g)
    )
}

/// A translation made runnable without root in `dir`: a `[daemon]` section with privilege
/// separation off and the state and control socket in `dir`; the files it writes (under
/// `/var/log`, `/srv`) moved into `dir`; owners and groups this system lacks (Ubuntu's
/// `syslog`) replaced by root; and, when it declares no input (a drop-in's translation, meant
/// for `conf.d/` beside a configuration that has them), a socket in `dir` as the system's
/// `/dev/log` would be.
fn runnable(toml: &str, dir: &Path) -> String {
    let d = dir.display();
    let daemon = format!(
        "privsep = false\nstate_dir = \"{d}/state\"\ncontrol_socket = \"{d}/control.sock\"\n"
    );
    let mut toml = toml
        .replace("\"/var/log/", &format!("\"{d}/var/log/"))
        .replace("\"/srv/", &format!("\"{d}/srv/"));
    let owner = regex::Regex::new(r#"(?m)^(owner|group) = "([^"]+)"$"#).unwrap();
    toml = owner
        .replace_all(&toml, |c: &regex::Captures| {
            let name = std::ffi::CString::new(&c[2]).unwrap();
            // SAFETY: look-ups by a NUL-terminated name; only whether they found one is used.
            let known = unsafe {
                if &c[1] == "owner" {
                    !libc::getpwnam(name.as_ptr()).is_null()
                } else {
                    !libc::getgrnam(name.as_ptr()).is_null()
                }
            };
            if known {
                c[0].to_string()
            } else {
                format!("{} = \"root\"", &c[1])
            }
        })
        .into_owned();
    if !toml.contains("[input.") {
        toml.push_str(&format!(
            "\n[input.devlog]\ntype = \"unix_datagram\"\npath = \"{d}/dev-log\"\n"
        ));
    }
    match toml.find("[daemon]\n") {
        Some(at) => {
            let end = at + "[daemon]\n".len();
            format!("{}{daemon}{}", &toml[..end], &toml[end..])
        }
        None => format!("[daemon]\n{daemon}\n{toml}"),
    }
}

/// `logwelld --check-config` on the runnable form of `toml`: `None` when accepted, else its
/// exit code and diagnostics.
fn check_config(toml: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logwell.toml");
    std::fs::write(&config, runnable(toml, dir.path())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (!out.status.success()).then(|| {
        format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )
    })
}

/// Translations `logwelld --check-config` refuses, and what it says: bugs of the translation
/// (tests/data/rsyslog/README.md), pinned so that a fix shows here.
const KNOWN_REFUSED: [(&str, &str); 1] = [
    // Two dynamic files in one directory (per host: by program, and daily), as rsyslog's
    // documentation writes them: logwell refuses outputs whose paths could meet.
    ("central-server", "could write the same file"),
];

#[test]
fn the_corpus_translates_as_its_golden_files_say_and_each_translation_passes_check_config() {
    let dir = corpus();
    let bless = std::env::var_os("LOGWELL_BLESS").is_some_and(|v| v == "1");
    let names = corpus_names();
    assert!(
        names.len() >= 22,
        "the corpus has {} configurations",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        let out = import(&dir, Path::new(&format!("{name}.conf")));
        let stdout = String::from_utf8(out.stdout).unwrap();
        // The report names the file as given; an absolute name is made relative.
        let stderr = String::from_utf8(out.stderr)
            .unwrap()
            .replace(&format!("{}/", dir.display()), "");
        if out.status.code() != Some(0) {
            failures.push(format!("{name}.conf: exit {}:\n{stderr}", out.status));
            continue;
        }
        for (ext, got) in [("toml", &stdout), ("report", &stderr)] {
            let golden = dir.join(format!("{name}.{ext}"));
            if bless {
                std::fs::write(&golden, got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != *got {
                failures.push(format!(
                    "{name}.{ext} differs (LOGWELL_BLESS=1 rewrites it; review the change):\n{}",
                    first_difference(&want, got)
                ));
            }
        }
        let known = KNOWN_REFUSED.iter().find(|(n, _)| n == name);
        match (check_config(&stdout), known) {
            (None, None) => {}
            (Some(why), Some((_, want))) if why.contains(want) => {}
            (Some(why), _) => failures.push(format!(
                "{name}.conf: the translation is refused by --check-config: {why}"
            )),
            (None, Some((_, want))) => failures.push(format!(
                "{name}.conf: --check-config accepts the translation now (it refused it, \
                 saying `{want}`): remove it from KNOWN_REFUSED"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} configurations:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// The peers `scripts/peers.sh` unpacked, or `None` (after saying why) when the test must
/// skip.
fn find_peers(test: &str) -> Option<Peers> {
    let peers = Peers::from_env().or_panic();
    let why = "run scripts/test.sh (it unpacks rsyslog and the drop-ins of haproxy and ufw \
               with scripts/peers.sh and sets LOGWELL_PEERS_DIR)";
    if precondition(test, peers.is_none().then_some(why)) {
        peers
    } else {
        None
    }
}

/// The `[[rule]]`s of a translation, and its outputs by name.
fn rules_and_outputs(toml: &str) -> (Vec<toml::Table>, BTreeMap<String, toml::Table>) {
    let v: toml::Table = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let rules = v
        .get("rule")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().map(|r| r.as_table().unwrap().clone()).collect())
        .unwrap_or_default();
    let outputs = v
        .get("output")
        .and_then(|o| o.as_table())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_table().unwrap().clone()))
                .collect()
        })
        .unwrap_or_default();
    (rules, outputs)
}

/// The output names a rule writes to.
fn rule_outputs(rule: &toml::Table) -> Vec<String> {
    match rule.get("output") {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn debian_rsyslog_conf_with_haproxy_and_ufw_drop_ins_translates_whole() {
    let test = "debian_rsyslog_conf_with_haproxy_and_ufw_drop_ins_translates_whole";
    let Some(peers) = find_peers(test) else {
        return;
    };
    let conf = peers.get("RSYSLOG_CONF").or_panic();
    let dropins = peers.get("RSYSLOG_DROPINS").or_panic();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("rsyslog.d")).unwrap();
    for name in ["20-ufw.conf", "49-haproxy.conf"] {
        std::fs::copy(dropins.join(name), d.join("rsyslog.d").join(name))
            .unwrap_or_else(|e| panic!("{}/{name}: {e}", dropins.display()));
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    let include = "$IncludeConfig /etc/rsyslog.d/*.conf";
    assert!(text.contains(include), "{}: no `{include}`", conf.display());
    let text = text.replace(
        include,
        &format!("$IncludeConfig {}/rsyslog.d/*.conf", d.display()),
    );
    std::fs::write(d.join("rsyslog.conf"), text).unwrap();

    let out = import(d, &d.join("rsyslog.conf"));
    let toml = String::from_utf8(out.stdout).unwrap();
    let report = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    let context = format!("--- translation:\n{toml}--- report:\n{report}");
    // Debian's configuration and the two drop-ins are all in the subset: nothing is left out.
    assert!(!report.contains(": not translated:"), "{context}");

    let (rules, outputs) = rules_and_outputs(&toml);
    let path_of = |name: &str| {
        outputs
            .get(name)
            .and_then(|o| o.get("path")?.as_str().map(str::to_string))
    };
    let writes = |rule: &toml::Table, path: &str| {
        rule_outputs(rule)
            .iter()
            .any(|o| path_of(o).as_deref() == Some(path))
    };
    let position = |path: &str| {
        rules
            .iter()
            .position(|r| writes(r, path))
            .unwrap_or_else(|| panic!("no rule writes {path}\n{context}"))
    };
    // haproxy's rule: the first final one, before Debian's own rules, which it keeps haproxy's
    // messages out of.
    let haproxy = position("/var/log/haproxy.log");
    assert_eq!(
        rules[haproxy].get("final"),
        Some(&toml::Value::Boolean(true)),
        "{context}"
    );
    assert_eq!(
        rules.iter().position(|r| r.get("final").is_some()),
        Some(haproxy),
        "{context}"
    );
    assert_eq!(
        rules[haproxy]
            .get("field_match")
            .map(ToString::to_string)
            .as_deref(),
        Some("{ programname = \"^haproxy\" }"),
        "{context}"
    );
    // ufw's: the kernel's firewall lines to /var/log/ufw.log, and not final (its `& stop` is
    // commented out), so they reach kern.log too.
    let ufw = position("/var/log/ufw.log");
    assert!(rules[ufw].get("final").is_none(), "{context}");
    assert!(
        rules[ufw]
            .get("field_match")
            .is_some_and(|m| m.to_string().contains("UFW")),
        "{context}"
    );
    // Debian's files, each after the drop-ins' rules.
    for (path, selector) in [
        ("/var/log/syslog", "*.*;auth,authpriv.none"),
        ("/var/log/auth.log", "auth,authpriv.*"),
        ("/var/log/cron.log", "cron.*"),
        ("/var/log/kern.log", "kern.*"),
        ("/var/log/mail.log", "mail.*"),
        ("/var/log/user.log", "user.*"),
    ] {
        let at = position(path);
        assert!(
            at > haproxy && at > ufw,
            "{path} before the drop-ins' rules\n{context}"
        );
        let got = rules[at]
            .get("selector")
            .and_then(|s| s.as_str())
            .unwrap_or("*.*");
        assert_eq!(
            crate_selector_masks(got),
            crate_selector_masks(selector),
            "{path}: `{got}` for `{selector}`\n{context}"
        );
    }
    // Emergencies to everyone logged in.
    assert!(
        rules.iter().any(
            |r| r.get("selector").and_then(|s| s.as_str()) == Some("*.emerg")
                && rule_outputs(r)
                    .iter()
                    .any(|o| outputs[o].get("type").and_then(|t| t.as_str()) == Some("users"))
        ),
        "{context}"
    );
    // haproxy's socket in its chroot is read.
    assert!(
        toml.contains("path = \"/var/lib/haproxy/dev/log\""),
        "{context}"
    );
    if let Some(why) = check_config(&toml) {
        panic!("the translation is refused by --check-config: {why}\n{context}");
    }
}

/// The facility × severity pairs a selector matches, as a set of (facility, severity) codes,
/// by the selector's own reading of rsyslog's rules (left to right, `.none`, `,`): enough to
/// compare two spellings of Debian's simple selectors.
fn crate_selector_masks(sel: &str) -> Vec<(u8, u8)> {
    const FAC: [&str; 24] = logwell::message::FACILITY_NAMES;
    const SEV: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    let mut m = [[false; 8]; 24];
    for part in sel.split(';') {
        let (facs, sev) = part.rsplit_once('.').unwrap();
        let facs: Vec<usize> = if facs == "*" {
            (0..24).collect()
        } else {
            facs.split(',')
                .map(|f| FAC.iter().position(|n| *n == f).unwrap())
                .collect()
        };
        for f in facs {
            for (s, slot) in m[f].iter_mut().enumerate() {
                match sev {
                    "none" => *slot = false,
                    "*" => *slot = true,
                    name => {
                        let (exact, name) = match name.strip_prefix('=') {
                            Some(n) => (true, n),
                            None => (false, name),
                        };
                        let k = SEV.iter().position(|n| *n == name).unwrap();
                        if (exact && s == k) || (!exact && s <= k) {
                            *slot = true;
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (f, sevs) in m.iter().enumerate() {
        for (s, on) in sevs.iter().enumerate() {
            if *on {
                out.push((f as u8, s as u8));
            }
        }
    }
    out
}

// --- routing equivalence with the real rsyslogd ---------------------------------------------

/// How many messages each equivalence case sends.
const MESSAGES: usize = 10_000;

/// Program names that hit and miss the corpus' filters (`postfix/anvil` is `postfix` to
/// rsyslog's `programname`, which ends at a `/`).
const PROGRAMS: [&str; 23] = [
    "docker/web",
    "haproxy",
    "sudo",
    "systemd",
    "sshd",
    "CRON",
    "cron",
    "anacron",
    "kernel",
    "nginx",
    "nginx_access",
    "postfix/smtpd",
    "postfix/anvil",
    "postfix",
    "fail2ban-server",
    "fail2ban.actions",
    "app",
    "noisy",
    "dockerd",
    "kubelet",
    "su",
    "audispd",
    "myapp",
];

/// Texts that hit and miss the corpus' filters: at the start, inside, in other case, with a
/// leading space.
const TEXTS: [&str; 24] = [
    "error while reading the index",
    "debug: cache warm",
    "Out of memory: Killed process 1234 (java)",
    "segfault at 7f00aa ip 0000 sp 0000",
    " segfault at 1f ip 0",
    "request timeout after 30s",
    "connection timed out after 5 s",
    "[UFW BLOCK] IN=eth0 OUT= MAC= SRC=10.0.0.1 DST=10.0.0.2",
    "Failed password for root from 10.0.0.2 port 22",
    "Invalid user bob from 10.0.0.3",
    "Accepted publickey for alice from 10.0.0.4",
    "session opened for user alice by (uid=0)",
    "usb 1-1: new high-speed USB device number 2",
    "audit: type=1400 apparmor=DENIED",
    "job failed: id 7",
    "DHCPDISCOVER on eth0 to 255.255.255.255",
    "health check ok",
    "WARNING: disk almost full",
    "warning: TLS library problem: handshake",
    "pam_unix(sshd:session): session closed for user alice",
    "E0312 12:00:00.1 1 kubelet.go:1] sync failed",
    "GET /index.html HTTP/1.1 502 12",
    "plain message",
    "Warning: low entropy",
];

/// Host names in the messages: hit, miss, and another case of a hit.
const HOSTS: [&str; 6] = ["router1", "db-01", "web1", "mailhost", "ROUTER1", "dbx"];

/// Message `i` of an equivalence case, as an RFC 3164 datagram: every facility × severity
/// in turn, programs, texts and hosts mixed so that each meets each. Every 50th is
/// cloud-init's (its tag is `[CLOUDINIT]`, no program name before a `[`).
fn message(i: usize) -> String {
    let (facility, severity) = (i % 24, (i / 24) % 8);
    let pri = facility * 8 + severity;
    let host = HOSTS[(i * 3 + i / 7) % HOSTS.len()];
    let text = TEXTS[(i * 11 + i / 37) % TEXTS.len()];
    // Most texts end with the message's number, which makes a difference easy to find; some
    // do not, for the filters that compare the whole text.
    let text = if i % 5 == 0 {
        text.to_string()
    } else {
        format!("{text} #{i}")
    };
    if i % 50 == 49 {
        return format!("<{pri}>Dec  7 12:00:00 {host} [CLOUDINIT] util.py[DEBUG]: {text}");
    }
    let program = PROGRAMS[(i * 7 + i / 192) % PROGRAMS.len()];
    let tag = if i % 4 == 0 {
        program.to_string()
    } else {
        format!("{program}[{}]", 1000 + i % 50)
    };
    format!("<{pri}>Dec  7 12:00:00 {host} {tag}: {text}")
}

/// A corpus configuration for one daemon of an equivalence case: its files moved into `dir`,
/// the system's log socket and kernel log not read (never /dev/log in a test), the console and
/// users' terminals replaced by files (one per list of users), forwarding to a closed port on
/// loopback instead of a name that might be looked up, and first an imudp input on 127.0.0.1:`port` and a rule
/// writing every message to `received.log` (no `stop`, so the rules after it see everything:
/// it says how many messages each daemon received).
fn equivalence_conf(text: &str, dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "module(load=\"imudp\")\n\
         input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" rcvbufSize=\"8m\")\n\
         *.* {d}/received.log\n{}",
        moved(text, dir)
    )
}

/// The lines of an rsyslog configuration (or drop-in) as [`equivalence_conf`] moves them for
/// a daemon writing into `dir`; haproxy's socket in its chroot goes beside `dir`.
fn moved(text: &str, dir: &Path) -> String {
    let d = dir.display();
    let users = regex::Regex::new(r":omusrmsg:\S+").unwrap();
    text.lines()
        .filter(|l| !(l.contains("imuxsock") || l.contains("imklog")))
        .map(|l| {
            let l = l
                .replace("/var/log/", &format!("{d}/"))
                .replace("/dev/console", &format!("{d}/console"))
                .replace("/var/lib/haproxy/dev/log", &format!("{d}-haproxy.sock"))
                .replace("/var/spool/rsyslog", &format!("{d}/work"))
                .replace("alerts.example.com", "127.0.0.1");
            let l = users.replace_all(&l, |c: &regex::Captures| {
                let who: String = c[0][":omusrmsg:".len()..]
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                format!("{d}/usrmsg-{who}.log")
            });
            format!("{l}\n")
        })
        .collect()
}

/// Whether something is bound to UDP 127.0.0.1:`port` (`/proc/net/udp`).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

/// The lines of our messages in a file a daemon wrote, as `TAG: MSG`: the timestamp (rsyslog's
/// RFC 3339 or traditional; logwell's per its format) and the host name are cut, and the
/// daemons' own messages (`rsyslogd:`, `logwelld:`) are left out.
fn our_lines(path: &Path) -> Vec<String> {
    let re = regex::Regex::new(
        r"^(?:\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ (.*)$",
    )
    .unwrap();
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| match re.captures(l) {
            Some(c) => c[1].to_string(),
            None => format!("(unparsed) {l}"),
        })
        .filter(|l| !(l.starts_with("rsyslogd") || l.starts_with("logwelld")))
        .collect()
}

/// Every file under `dir` (relative names), but the daemon's own.
fn written_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !["work", "state"].iter().any(|n| p.ends_with(n)) {
                    todo.push(p);
                }
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The total number of lines in the files under `dir`.
fn total_lines(dir: &Path) -> usize {
    written_files(dir)
        .iter()
        .map(|f| {
            std::fs::read(dir.join(f))
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

/// Files where rsyslogd and logwelld are known to differ, by configuration, and why (see
/// tests/data/rsyslog/README.md). A
/// difference in any other file fails the test, and so does one of these files when it no
/// longer differs (the bug is fixed: remove it here). Delete an entry to see its differences.
const KNOWN_DIFFERENCES: [(&str, &str, &str); 1] = [(
    "audit-and-sudo",
    "authfail.log",
    "`:msg, contains_i, …` is not valid in a legacy filter: rsyslogd reports an error and \
         writes every message there; logwell reports the line as not translated",
)];

/// Files that several rsyslog actions write (`fail2ban`: two filters, one file): each action
/// has its own buffer, flushed at the end of its part of a batch, so rsyslogd's lines come
/// grouped by action while logwelld's come in message order. These are compared as sets of
/// lines (with their counts).
const REORDERED: [(&str, &str); 1] = [("fail2ban", "fail2ban.log")];

/// The lines in sorted order.
fn sorted(lines: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = lines.iter().collect();
    v.sort();
    v
}

/// Runs corpus configuration `name` in rsyslogd and (translated) in logwelld, sends both the
/// same [`MESSAGES`], and compares what each wrote, file by file and line by line.
fn equivalent(name: &str) {
    let test = format!(
        "rsyslog_and_logwelld_route_{}_alike",
        name.replace('-', "_")
    );
    let Some(peers) = find_peers(&test) else {
        return;
    };
    let text = std::fs::read_to_string(corpus().join(format!("{name}.conf"))).unwrap();
    equivalent_with(&peers, name, &|_| text.clone());
}

/// Like [`equivalent`], on the configuration `conf` returns for a daemon writing into a
/// directory (before [`equivalence_conf`] moves it there): it may write files it includes,
/// beside that directory.
fn equivalent_with(peers: &Peers, name: &str, conf: &dyn Fn(&Path) -> String) {
    let tmp = tempfile::tempdir().unwrap();
    let (rs_dir, lw_dir, own) = (
        tmp.path().join("rsyslog"),
        tmp.path().join("logwell"),
        tmp.path().join("daemons"),
    );
    for d in [&rs_dir, &lw_dir, &own, &rs_dir.join("work")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (rs_port, lw_port) = (crate::util::free_port(), crate::util::free_port());

    // rsyslogd, on the configuration as it is (but for the moves), without DNS look-ups.
    let rs_conf = own.join("rsyslog.conf");
    std::fs::write(
        &rs_conf,
        format!(
            "global(workDirectory=\"{}\" net.enableDNS=\"off\")\n{}",
            rs_dir.join("work").display(),
            equivalence_conf(&conf(&rs_dir), &rs_dir, rs_port)
        ),
    )
    .unwrap();
    let rsyslogd = testkit::child::Proc::spawn(
        "rsyslogd",
        peers.rsyslogd(&rs_conf, &own).or_panic(),
        &own.join("rsyslogd.out"),
    )
    .or_panic();

    // logwelld, on the translation of the same configuration.
    let lw_rsyslog = own.join(format!("{name}.conf"));
    std::fs::write(
        &lw_rsyslog,
        equivalence_conf(&conf(&lw_dir), &lw_dir, lw_port),
    )
    .unwrap();
    let out = import(&own, &lw_rsyslog);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap().replace(
        "type = \"udp\"\n",
        "type = \"udp\"\nreceive_buffer_bytes = 8388608\n",
    );
    let lw_conf = own.join("logwell.toml");
    let socket = own.join("control.sock");
    std::fs::write(
        &lw_conf,
        format!(
            "[daemon]\nprivsep = false\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n\n{toml}",
            own.join("state").display(),
            socket.display()
        ),
    )
    .unwrap();
    let bins = testkit::logwelld::Binaries {
        logwelld: env!("CARGO_BIN_EXE_logwelld"),
        logwell: env!("CARGO_BIN_EXE_logwell"),
    };
    let logwelld =
        testkit::logwelld::start(bins, &lw_conf, &socket, &own.join("logwelld.out")).or_panic();
    let logs = || {
        format!(
            "--- rsyslogd:\n{}\n--- logwelld:\n{}\n--- translation:\n{toml}",
            rsyslogd.output(),
            logwelld.output()
        )
    };
    for (who, port) in [("rsyslogd", rs_port), ("logwelld", lw_port)] {
        testkit::wait::try_until(
            crate::util::DEADLINE,
            &format!("{who} on UDP 127.0.0.1:{port}"),
            logs,
            || Ok(udp_bound(port).then_some(())),
        )
        .or_panic();
    }

    // The same datagrams to both, at most WINDOW ahead of what the slower one has written
    // (so that no socket buffer overflows: a loss would read as a routing difference).
    const WINDOW: usize = 1000;
    let received = |dir: &Path| our_lines(&dir.join("received.log")).len();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..MESSAGES {
        if i % WINDOW == 0 && i >= 2 * WINDOW {
            testkit::wait::try_until(
                crate::util::DEADLINE,
                &format!("both daemons to have written {} messages", i - 2 * WINDOW),
                logs,
                || Ok((received(&rs_dir).min(received(&lw_dir)) >= i - 2 * WINDOW).then_some(())),
            )
            .or_panic();
        }
        let m = message(i);
        for port in [rs_port, lw_port] {
            sock.send_to(m.as_bytes(), ("127.0.0.1", port)).unwrap();
        }
    }
    for (who, dir) in [("rsyslogd", &rs_dir), ("logwelld", &lw_dir)] {
        testkit::wait::try_until(
            crate::util::DEADLINE,
            &format!("{who} to write all {MESSAGES} messages to received.log"),
            || format!("it has {}\n{}", received(dir), logs()),
            || Ok((received(dir) >= MESSAGES).then_some(())),
        )
        .or_panic();
    }
    // The other files are written in the same pass over each message; wait until neither
    // daemon's total changes over a few polls.
    let mut last = (usize::MAX, usize::MAX);
    let mut same = 0;
    testkit::wait::try_until(
        crate::util::DEADLINE,
        "both daemons' files to stop growing",
        logs,
        || {
            let now = (total_lines(&rs_dir), total_lines(&lw_dir));
            same = if now == last { same + 1 } else { 0 };
            last = now;
            Ok((same >= 10).then_some(()))
        },
    )
    .or_panic();

    let mut files = written_files(&rs_dir);
    files.extend(written_files(&lw_dir));
    files.sort();
    files.dedup();
    let mut differences = Vec::new();
    let mut summary = Vec::new();
    let known: Vec<&(&str, &str, &str)> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(n, _, _)| *n == name)
        .collect();
    for f in &files {
        let (rs, lw) = (our_lines(&rs_dir.join(f)), our_lines(&lw_dir.join(f)));
        summary.push(format!(
            "{}: rsyslogd {} lines, logwelld {}",
            f.display(),
            rs.len(),
            lw.len()
        ));
        let bug = known.iter().find(|(_, file, _)| Path::new(file) == f);
        let reordered = REORDERED
            .iter()
            .any(|(n, file)| *n == name && Path::new(file) == f)
            && rs != lw
            && sorted(&rs) == sorted(&lw);
        if reordered {
            eprintln!(
                "{name}: {} has the same lines in another order",
                f.display()
            );
        }
        match (rs == lw || reordered, bug) {
            (true, None) => continue,
            (false, Some((_, _, why))) => {
                eprintln!("{name}: {} differs, a known bug: {why}", f.display());
                continue;
            }
            (true, Some((_, file, why))) => {
                differences.push(format!(
                    "  {file}: the same in both now; the bug ({why}) is fixed: remove it from KNOWN_DIFFERENCES\n"
                ));
                continue;
            }
            (false, None) => {}
        }
        let at = rs
            .iter()
            .zip(&lw)
            .position(|(a, b)| a != b)
            .unwrap_or(rs.len().min(lw.len()));
        let show = |lines: &[String]| -> String {
            lines
                .iter()
                .skip(at)
                .take(3)
                .map(|l| format!("      {l}\n"))
                .collect()
        };
        differences.push(format!(
            "  {}: rsyslogd wrote {} lines, logwelld {}; first difference at line {}:\n    rsyslogd:\n{}    logwelld:\n{}",
            f.display(),
            rs.len(),
            lw.len(),
            at + 1,
            show(&rs),
            show(&lw)
        ));
    }
    eprintln!("{name}:\n  {}", summary.join("\n  "));
    assert!(
        differences.is_empty(),
        "{name}.conf: rsyslogd and logwelld wrote different messages in {} of {} files:\n{}\n--- report of the translation:\n{}--- rsyslogd:\n{}",
        differences.len(),
        files.len(),
        differences.join(""),
        String::from_utf8_lossy(&out.stderr),
        rsyslogd.output().chars().take(4000).collect::<String>()
    );
    assert!(
        files.len() >= 2,
        "{name}.conf: no file but received.log was written"
    );
}

#[test]
fn rsyslog_and_logwelld_route_property_filters_alike() {
    equivalent("property-filters");
}

#[test]
fn rsyslog_and_logwelld_route_rainerscript_if_alike() {
    equivalent("rainerscript-if");
}

#[test]
fn rsyslog_and_logwelld_route_selectors_negation_alike() {
    equivalent("selectors-negation");
}

#[test]
fn rsyslog_and_logwelld_route_postfix_alike() {
    equivalent("postfix");
}

#[test]
fn rsyslog_and_logwelld_route_fail2ban_alike() {
    equivalent("fail2ban");
}

#[test]
fn rsyslog_and_logwelld_route_blocks_nested_alike() {
    equivalent("blocks-nested");
}

#[test]
fn rsyslog_and_logwelld_route_cloudinit_alike() {
    equivalent("cloudinit");
}

#[test]
fn rsyslog_and_logwelld_route_app_routing_mixed_alike() {
    equivalent("app-routing-mixed");
}

#[test]
fn rsyslog_and_logwelld_route_debian_rsyslog_conf_with_haproxy_and_ufw_alike() {
    let test = "rsyslog_and_logwelld_route_debian_rsyslog_conf_with_haproxy_and_ufw_alike";
    let Some(peers) = find_peers(test) else {
        return;
    };
    let text = std::fs::read_to_string(peers.get("RSYSLOG_CONF").or_panic()).unwrap();
    let dropins = peers.get("RSYSLOG_DROPINS").or_panic();
    // Each daemon includes its own copy of the drop-ins, moved as the configuration is.
    equivalent_with(&peers, "debian", &|dir| {
        let included = PathBuf::from(format!("{}-rsyslog.d", dir.display()));
        std::fs::create_dir_all(&included).unwrap();
        for name in ["20-ufw.conf", "49-haproxy.conf"] {
            let drop_in = std::fs::read_to_string(dropins.join(name)).unwrap();
            std::fs::write(included.join(name), moved(&drop_in, dir)).unwrap();
        }
        text.replace(
            "$IncludeConfig /etc/rsyslog.d/*.conf",
            &format!("$IncludeConfig {}/*.conf", included.display()),
        )
    });
}

#[test]
fn rsyslog_and_logwelld_route_docker_kubelet_alike() {
    equivalent("docker-kubelet");
}

#[test]
fn rsyslog_and_logwelld_route_audit_and_sudo_alike() {
    equivalent("audit-and-sudo");
}
