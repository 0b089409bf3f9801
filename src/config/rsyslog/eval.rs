//! rsyslog's rules applied to messages as rsyslog applies them, straight from the parsed
//! statements and not from the translation, and the same messages routed by logwell on the
//! translation: `logwell import-rsyslog --check` shows where the two disagree. Also the
//! sample messages it makes from a configuration's own filters.
//!
//! A destination is named the same way on both sides: `file PATH` (a dynamic file by its
//! translated path template), `forward PROTOCOL HOST:PORT`, `users LIST`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::parse::{self, param, Action, Cond, Kind, Op, Stmt};
use super::translate::{bre_to_ere, convert_template, host_port};
use crate::message::{Event, Facility, Message, Severity, Source};
use crate::parse::{parse as parse_line, ParseContext};
use crate::route::{Router, Selector};

/// One message and where each side sends it.
#[derive(Debug)]
pub struct Routed {
    /// The message as given.
    pub message: String,
    /// rsyslog's destinations.
    pub rsyslog: BTreeSet<String>,
    /// logwell's destinations, under the translation.
    pub logwell: BTreeSet<String>,
}

/// The statements of `files` with their includes in place, and the templates they define
/// (name in lower case, text).
fn statements(
    files: &[(PathBuf, String)],
    include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
) -> (Vec<Stmt>, Vec<(String, String)>) {
    fn walk(
        text: &str,
        depth: usize,
        include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
        out: &mut Vec<Stmt>,
        templates: &mut Vec<(String, String)>,
    ) {
        for stmt in parse::parse(text) {
            let included = match &stmt.kind {
                Kind::Directive { name, value } if name.eq_ignore_ascii_case("includeconfig") => {
                    Some(value.split_whitespace().next().unwrap_or("").to_string())
                }
                Kind::Object { name, params } if name == "include" => {
                    param(params, "file").map(str::to_string)
                }
                _ => None,
            };
            if let Some(pattern) = included {
                if depth < 8 {
                    for (_, t) in include(&pattern) {
                        walk(&t, depth + 1, include, out, templates);
                    }
                }
                continue;
            }
            match &stmt.kind {
                Kind::Directive { name, value } if name.eq_ignore_ascii_case("template") => {
                    if let Some((n, rest)) = value.split_once(',') {
                        let rest = rest.trim();
                        if let Some(t) = rest
                            .strip_prefix('"')
                            .and_then(|r| r.rfind('"').map(|e| r[..e].to_string()))
                        {
                            templates.push((n.trim().to_ascii_lowercase(), t));
                        }
                    }
                }
                Kind::Object { name, params } if name == "template" => {
                    if let (Some(n), Some(s)) = (param(params, "name"), param(params, "string")) {
                        templates.push((n.to_ascii_lowercase(), s.to_string()));
                    }
                }
                _ => {}
            }
            out.push(stmt);
        }
    }
    let mut out = Vec::new();
    let mut templates = Vec::new();
    for (_, text) in files {
        walk(text, 0, include, &mut out, &mut templates);
    }
    (out, templates)
}

/// What rsyslog's filters read of a message.
struct Props<'a> {
    facility: Facility,
    severity: Severity,
    /// As rsyslog's `$msg`: after the space that follows the tag.
    msg: String,
    programname: &'a str,
    hostname: &'a str,
    syslogtag: String,
}

impl Props<'_> {
    fn get(&self, prop: &str) -> Option<&str> {
        Some(match prop {
            "msg" | "rawmsg" => &self.msg,
            "programname" => self.programname.split('/').next().unwrap_or(""),
            "app-name" => self.programname,
            "hostname" | "source" => self.hostname,
            "syslogtag" => &self.syslogtag,
            "fromhost-ip" => "127.0.0.1",
            _ => return None,
        })
    }
}

fn holds(c: &Cond, p: &Props<'_>) -> bool {
    match c {
        Cond::Selector(s) => Selector::parse(s).is_ok_and(|s| s.matches(p.facility, p.severity)),
        Cond::And(a, b) => holds(a, p) && holds(b, p),
        Cond::Or(a, b) => holds(a, p) || holds(b, p),
        Cond::Not(a) => !holds(a, p),
        Cond::Unsupported(_) => false,
        Cond::Cmp {
            prop,
            op,
            value,
            negate,
        } => {
            let numeric = |x: u8| -> bool {
                let code = value.parse::<u8>().ok().or_else(|| {
                    if prop.starts_with("syslogfacility") {
                        Facility::from_name(value).map(Facility::code)
                    } else {
                        Severity::from_name(value).map(Severity::code)
                    }
                });
                code.is_some_and(|c| match op {
                    Op::IsEqual => x == c,
                    Op::Lt => x < c,
                    Op::Le => x <= c,
                    Op::Gt => x > c,
                    Op::Ge => x >= c,
                    _ => false,
                })
            };
            let result = if prop.starts_with("syslogfacility") {
                numeric(p.facility.code())
            } else if prop.starts_with("syslogseverity") || prop.starts_with("syslogpriority") {
                numeric(p.severity.code())
            } else {
                let Some(v) = p.get(prop) else {
                    return false;
                };
                match op {
                    Op::Contains => v.contains(value.as_str()),
                    Op::ContainsI => v.to_lowercase().contains(&value.to_lowercase()),
                    Op::IsEqual => v == value,
                    Op::StartsWith => v.starts_with(value.as_str()),
                    Op::StartsWithI => v.to_lowercase().starts_with(&value.to_lowercase()),
                    Op::EndsWith => v.ends_with(value.as_str()),
                    Op::Regex => regex::Regex::new(&bre_to_ere(value)).is_ok_and(|r| r.is_match(v)),
                    Op::EreRegex => regex::Regex::new(value).is_ok_and(|r| r.is_match(v)),
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => false,
                }
            };
            result != *negate
        }
    }
}

/// Runs `stmts` on a message; `false` once a `stop` ran.
fn run(
    stmts: &[Stmt],
    p: &Props<'_>,
    templates: &[(String, String)],
    out: &mut BTreeSet<String>,
) -> bool {
    for s in stmts {
        match &s.kind {
            Kind::Rule { filter, body } if holds(filter, p) && !run(body, p, templates, out) => {
                return false;
            }
            Kind::Action(a) => {
                if let Some(d) = destination(a, templates) {
                    out.insert(d);
                }
            }
            Kind::Stop => return false,
            _ => {}
        }
    }
    true
}

/// How an action's destination is named (see the module doc).
fn destination(a: &Action, templates: &[(String, String)]) -> Option<String> {
    let dynamic = |name: &str| {
        let name = name.to_ascii_lowercase();
        templates
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| convert_template(t, true).ok())
            .map(|p| format!("file {p}"))
    };
    let forward = |proto: &str, host: &str, port: &str| {
        if host.contains(':') {
            format!("forward {proto} [{host}]:{port}")
        } else {
            format!("forward {proto} {host}:{port}")
        }
    };
    match a {
        Action::Legacy(text) => {
            let target = text.split(';').next().unwrap_or("").trim();
            let target = target.strip_prefix(":omfile:").unwrap_or(target);
            let target = target.strip_prefix('-').unwrap_or(target);
            if target.starts_with('/') {
                return Some(format!("file {target}"));
            }
            if let Some(t) = target.strip_prefix('?') {
                return dynamic(t);
            }
            if let Some(users) = target.strip_prefix(":omusrmsg:") {
                return Some(format!("users {users}"));
            }
            if target == "*" {
                return Some("users *".into());
            }
            let (proto, rest) = if let Some(r) = target.strip_prefix("@@") {
                ("tcp", r)
            } else if let Some(r) = target.strip_prefix('@') {
                ("udp", r)
            } else if target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.,".contains(c))
            {
                return Some(format!("users {target}"));
            } else {
                return None;
            };
            let rest = match rest.strip_prefix('(') {
                Some(r) => r.split_once(')').map_or(r, |(_, r)| r),
                None => rest,
            };
            let (host, port) = host_port(rest);
            Some(forward(proto, host, port))
        }
        Action::Object(params) => match param(params, "type")?.to_ascii_lowercase().as_str() {
            "omfile" => match param(params, "dynafile") {
                Some(t) => dynamic(t),
                None => param(params, "file").map(|f| format!("file {f}")),
            },
            "omfwd" => Some(forward(
                &param(params, "protocol")
                    .unwrap_or("udp")
                    .to_ascii_lowercase(),
                param(params, "target")?,
                param(params, "port").unwrap_or("514"),
            )),
            "omusrmsg" => Some(format!("users {}", param(params, "users").unwrap_or("*"))),
            _ => None,
        },
    }
}

/// Each message of `messages` routed by rsyslog's rules of `files` and by logwell on
/// `toml`, their translation.
pub fn compare(
    files: &[(PathBuf, String)],
    toml: &str,
    messages: &[String],
    include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
) -> Result<Vec<Routed>, String> {
    let (stmts, templates) = statements(files, include);
    // The translation, runnable on its own: one process, and an input if it has none.
    let mut text = format!("[daemon]\nprivsep = false\n\n{toml}");
    if !toml.contains("[input.") {
        text.push_str(
            "[input.check]\ntype = \"unix_datagram\"\npath = \"/nonexistent/check.sock\"\n",
        );
    }
    let settings = crate::config::load_texts(vec![(PathBuf::from("(translation)"), text.clone())])
        .map_err(|e| format!("the translation is refused:\n{e}"))?;
    let names = output_names(&text)?;
    let router = Router::new(settings.rules.clone(), settings.outputs.len());
    let now = chrono::Utc::now();
    let ctx = ParseContext::new(now, chrono::FixedOffset::east_opt(0).expect("UTC"));
    let source = Source {
        input: Arc::from("check"),
        peer: None,
        creds: None,
        default_host: Arc::from(settings.daemon.hostname.as_str()),
        use_sender_timestamp: true,
        tls_peer: None,
    };
    let mut matched = Vec::new();
    let mut out = Vec::new();
    for line in messages {
        let msg: Message<'_> = parse_line(line.as_bytes(), &ctx);
        let ev = Event {
            msg,
            recv_time: now,
            source: &source,
            creds: None,
        };
        router.route(&ev, &mut matched);
        let logwell: BTreeSet<String> = matched
            .iter()
            .filter_map(|&i| settings.outputs.get(i))
            .filter_map(|o| {
                names
                    .iter()
                    .find(|(n, _)| *n == o.name)
                    .map(|(_, d)| d.clone())
            })
            .collect();
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let programname = text(ev.msg.appname);
        let (msg_text, hostname) = (text(Some(ev.msg.msg)), text(Some(ev.host())));
        let syslogtag = match (ev.msg.appname, ev.msg.procid) {
            (None, _) => msg_text.split(' ').next().unwrap_or("").to_string(),
            (Some(_), Some(pid)) => format!("{programname}[{}]:", String::from_utf8_lossy(pid)),
            (Some(_), None) => format!("{programname}:"),
        };
        let props = Props {
            facility: ev.msg.facility,
            severity: ev.msg.severity,
            msg: format!(" {msg_text}"),
            programname: &programname,
            hostname: &hostname,
            syslogtag,
        };
        let mut rsyslog = BTreeSet::new();
        run(&stmts, &props, &templates, &mut rsyslog);
        out.push(Routed {
            message: line.clone(),
            rsyslog,
            logwell,
        });
    }
    Ok(out)
}

/// Each output of a translation and how its destination is named.
fn output_names(toml: &str) -> Result<Vec<(String, String)>, String> {
    let value: toml::Table = toml::from_str(toml).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let Some(outputs) = value.get("output").and_then(|o| o.as_table()) else {
        return Ok(out);
    };
    let text = |v: Option<&toml::Value>| match v {
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    for (name, o) in outputs {
        let d = match text(o.get("type")).as_str() {
            "file" => format!("file {}", text(o.get("path"))),
            "forward" => format!(
                "forward {} {}",
                text(o.get("protocol")),
                text(o.get("targets"))
            ),
            "users" => format!("users {}", text(o.get("users"))),
            other => format!("{other} {name}"),
        };
        out.push((name.clone(), d));
    }
    Ok(out)
}

/// Messages made from a configuration: every facility at every severity, and for each
/// value its filters compare (program names, host names, texts), messages that carry it and
/// messages that nearly do.
pub fn sample_messages(
    files: &[(PathBuf, String)],
    include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
) -> Vec<String> {
    let (stmts, _) = statements(files, include);
    let mut values: BTreeSet<(String, String)> = BTreeSet::new();
    fn collect(c: &Cond, out: &mut BTreeSet<(String, String)>) {
        match c {
            Cond::Cmp { prop, value, .. } => {
                out.insert((prop.clone(), value.clone()));
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                collect(a, out);
                collect(b, out);
            }
            Cond::Not(a) => collect(a, out),
            _ => {}
        }
    }
    fn walk(stmts: &[Stmt], out: &mut BTreeSet<(String, String)>) {
        for s in stmts {
            if let Kind::Rule { filter, body } = &s.kind {
                collect(filter, out);
                walk(body, out);
            }
        }
    }
    walk(&stmts, &mut values);
    let mut out = Vec::new();
    // Every facility at every severity, eight times, with the program names, host names and
    // texts the filters compare (and plain ones) in turn.
    let word = |v: &str| -> String {
        let w: String = v.chars().filter(|c| c.is_ascii_graphic()).collect();
        w.trim_end_matches(':').to_string()
    };
    let pick = |prop: &[&str], plain: &str| -> Vec<String> {
        let mut v: Vec<String> = values
            .iter()
            .filter(|(p, _)| prop.contains(&p.as_str()))
            .map(|(_, v)| word(v))
            .filter(|w| !w.is_empty())
            .collect();
        v.push(plain.to_string());
        v
    };
    let programs = pick(&["programname", "app-name", "syslogtag"], "prog");
    let hosts = pick(&["hostname", "source"], "host1");
    let texts: Vec<String> = values
        .iter()
        .filter(|(p, _)| p == "msg" || p == "rawmsg")
        .map(|(_, v)| v.chars().filter(|c| !c.is_control()).collect())
        .chain(std::iter::once("sample message".to_string()))
        .collect();
    for fac in 0..24usize {
        for sev in 0..8usize {
            for i in 0..8usize {
                let n = fac * 64 + sev * 8 + i;
                out.push(format!(
                    "<{}>Dec  7 10:00:00 {} {}[42]: {} {fac}.{sev}",
                    fac * 8 + sev,
                    hosts[n % hosts.len()],
                    programs[n % programs.len()],
                    texts[n % texts.len()],
                ));
            }
        }
    }
    let pris = [13u16, 11, 30, 86, 4, 163];
    for (prop, value) in &values {
        // Texts that are plain (regexes are used as they are: they often match themselves).
        let clean: String = value.chars().filter(|c| !c.is_control()).collect();
        let word = clean.split_whitespace().next().unwrap_or("x").to_string();
        for pri in pris {
            let (host, prog, msg) = match prop.as_str() {
                "programname" | "app-name" => ("host1", word.clone(), "hello".to_string()),
                "syslogtag" => (
                    "host1",
                    word.trim_end_matches(':').to_string(),
                    "hello".into(),
                ),
                "hostname" | "source" => (word.as_str(), "app".into(), "hello".into()),
                _ => ("host1", "app".into(), format!("before {clean} after")),
            };
            let host = if host.is_empty() { "host1" } else { host };
            let prog = if prog.is_empty() {
                "app".to_string()
            } else {
                prog
            };
            out.push(format!("<{pri}>Dec  7 10:00:00 {host} {prog}[7]: {msg}"));
            out.push(format!("<{pri}>Dec  7 10:00:00 {host} {prog}x: {msg}"));
            out.push(format!("<{pri}>Dec  7 10:00:00 host2 other: {clean}"));
        }
    }
    out
}
