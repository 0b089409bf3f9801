//! Translating rsyslog statements ([`parse`]) into logwell TOML: inputs,
//! outputs, templates and `[[rule]]`s, each with a comment naming the file and line it came
//! from, and a [`Note`] for every line that is not translated or that differs in meaning.
//!
//! Filters become rules: a filter's expression is brought to a disjunction of conjunctions
//! (`or` is several rules with the same outputs; outputs are a set per message, so a message
//! matching two of them is written once), selectors are intersected as masks, and property
//! comparisons become `field_match` / `field_not_match` regexes on the header values. An
//! action list ending in `stop` is a `final` rule; `stop` alone is `discard`.
//!
//! Pure apart from the `include` callback, which reads the files `$IncludeConfig` names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::parse::{self, param, Action, Cond, Kind, Op, Params, Stmt};
use crate::message::{Facility, Severity};
use crate::route::Selector;

/// How to translate.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Put before every name this translation declares (`rsyslog-` for drop-ins), so that
    /// they never clash with the names of logwell's own configuration.
    pub prefix: String,
    /// Drop-in mode: the system's log sockets and the kernel log (imuxsock, imklog,
    /// imjournal) are read by logwell's own configuration already, so loading those modules
    /// adds nothing.
    pub drop_in: bool,
    /// File outputs declared already, by path: an action writing there uses that output.
    pub existing_files: BTreeMap<PathBuf, String>,
    /// Unix socket paths read already: an `$AddUnixListenSocket` of one adds nothing.
    pub existing_sockets: Vec<PathBuf>,
    /// The files (or glob patterns) that logrotate's stanzas rotate: an output writing one
    /// leaves its rotation to logrotate (`rotated_by = "logrotate"`), as under rsyslog.
    pub logrotated: Vec<String>,
}

/// The result: TOML and the report.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// logwell configuration, in TOML.
    pub toml: String,
    /// What was not translated, or differs in meaning, in file and line order.
    pub notes: Vec<Note>,
    /// Rules, outputs and inputs declared.
    pub rules: usize,
    pub outputs: usize,
    pub inputs: usize,
    /// The plain files its outputs write, by path: their output names.
    pub files: BTreeMap<PathBuf, String>,
    /// The Unix sockets its inputs read.
    pub sockets: Vec<PathBuf>,
}

/// One line that was not translated, or whose translation differs in meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub file: PathBuf,
    pub line: usize,
    pub kind: NoteKind,
    pub text: String,
}

/// What a [`Note`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// Left out: logwell has nothing that does this (yet), or the reader does not read it.
    NotTranslated,
    /// Translated, with a difference the reader should know about.
    Differs,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            NoteKind::NotTranslated => "not translated",
            NoteKind::Differs => "translated, but differs",
        };
        write!(
            f,
            "{}:{}: {what}: {}",
            self.file.display(),
            self.line,
            self.text
        )
    }
}

/// Translates rsyslog configuration files, in order, into one logwell configuration.
/// `include` returns the files an `$IncludeConfig` / `include(file=…)` pattern names (path
/// and text, in name order); return nothing to leave includes out.
pub fn translate(
    files: &[(PathBuf, String)],
    opts: &Options,
    include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
) -> Translation {
    let mut t = Translator {
        opts,
        defaults: FileDefaults::default(),
        templates: BTreeMap::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        output_keys: BTreeMap::new(),
        rules: Vec::new(),
        notes: Vec::new(),
        names: Vec::new(),
        imfile: Vec::new(),
        system_inputs: false,
        file: PathBuf::new(),
        depth: 0,
    };
    // rsyslog's umask is the process's: it applies to the files declared before it too.
    for (_, text) in files {
        for stmt in parse::parse(text) {
            if let Kind::Directive { name, value } = &stmt.kind {
                if name.eq_ignore_ascii_case("umask") {
                    let first = value.split_whitespace().next().unwrap_or("");
                    if let Ok(m) = u32::from_str_radix(first, 8) {
                        t.defaults.umask = Some(m & 0o777);
                    }
                }
            }
        }
    }
    for (path, text) in files {
        t.file_of(path, text, include);
    }
    t.finish()
}

/// `$FileOwner` and the other settings that apply to the file actions after them.
#[derive(Clone, Debug, Default)]
struct FileDefaults {
    owner: Option<String>,
    group: Option<String>,
    mode: Option<String>,
    dir_mode: Option<String>,
    reduce_repeats: bool,
    template: Option<String>,
    /// `$Umask`: rsyslog takes these bits away from the modes it creates files with.
    umask: Option<u32>,
    /// `$UDPServerAddress`: the address of every later `$UDPServerRun`.
    udp_address: Option<String>,
}

/// A translated template: a line template's text, or a path template's.
#[derive(Clone, Debug)]
struct Template {
    /// The logwell line template, or why there is none.
    line: Result<String, String>,
    /// The logwell path template (for `?Name` dynamic files), or why there is none.
    path: Result<String, String>,
    /// The name its `[template.NAME]` gets, once declared.
    declared: Option<String>,
    origin: String,
}

/// One declared section: its TOML header, the comment, and its `key = value` lines.
#[derive(Clone, Debug)]
struct Section {
    header: String,
    origin: String,
    keys: Vec<(String, String)>,
}

/// A conjunction: the selector masks, and the regex tests on fields, all of which must hold.
#[derive(Clone, Debug, PartialEq)]
struct Conj {
    masks: [u8; 24],
    tests: Vec<Test>,
}

#[derive(Clone, Debug, PartialEq)]
struct Test {
    field: String,
    regex: String,
    negate: bool,
}

impl Conj {
    fn all() -> Conj {
        Conj {
            masks: [0xff; 24],
            tests: Vec::new(),
        }
    }

    fn and(&self, other: &Conj) -> Conj {
        let mut masks = self.masks;
        for (m, o) in masks.iter_mut().zip(other.masks) {
            *m &= o;
        }
        let mut tests = self.tests.clone();
        tests.extend(other.tests.iter().cloned());
        Conj { masks, tests }
    }

    fn never(&self) -> bool {
        self.masks.iter().all(|m| *m == 0)
    }
}

/// More than this many rules for one filter is refused (an expression in disjunctive form
/// can grow exponentially).
const MAX_TERMS: usize = 16;

struct Translator<'o> {
    opts: &'o Options,
    defaults: FileDefaults,
    templates: BTreeMap<String, Template>,
    inputs: Vec<Section>,
    outputs: Vec<Section>,
    /// Outputs by what they do (`file:/var/log/x`), to write each once.
    output_keys: BTreeMap<String, String>,
    rules: Vec<Section>,
    notes: Vec<Note>,
    /// Every name declared (inputs, outputs, templates).
    names: Vec<String>,
    /// Legacy imfile settings (`$InputFileName` …) waiting for `$InputRunFileMonitor`.
    imfile: Params,
    /// The system inputs of import mode are declared.
    system_inputs: bool,
    file: PathBuf,
    depth: usize,
}

impl Translator<'_> {
    fn file_of(
        &mut self,
        path: &Path,
        text: &str,
        include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
    ) {
        if self.depth > 8 {
            self.note(
                0,
                NoteKind::NotTranslated,
                "includes nested deeper than 8".into(),
            );
            return;
        }
        let outer = std::mem::replace(&mut self.file, path.to_path_buf());
        for stmt in parse::parse(text) {
            self.top(&stmt, include);
        }
        self.file = outer;
    }

    fn note(&mut self, line: usize, kind: NoteKind, text: String) {
        self.notes.push(Note {
            file: self.file.clone(),
            line,
            kind,
            text,
        });
    }

    fn origin(&self, line: usize) -> String {
        let name = self
            .file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        format!("{name}:{line}")
    }

    fn top(&mut self, stmt: &Stmt, include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>) {
        let line = stmt.line;
        match &stmt.kind {
            Kind::Directive { name, value } => self.directive(line, name, value, include),
            Kind::Object { name, params } => self.object(line, name, params, include),
            Kind::Rule { .. } => self.rule(&[Conj::all()], stmt),
            // An action with no filter runs for every message.
            Kind::Action(_) => self.rule(
                &[Conj::all()],
                &Stmt {
                    line,
                    kind: Kind::Rule {
                        filter: Cond::Selector("*.*".into()),
                        body: vec![stmt.clone()],
                    },
                },
            ),
            Kind::Stop => self.note(
                line,
                NoteKind::NotTranslated,
                "`stop` outside a filter would drop every message".into(),
            ),
            Kind::Unsupported(why) => self.note(line, NoteKind::NotTranslated, why.clone()),
        }
    }

    fn unique(&mut self, base: &str) -> String {
        let mut clean: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        if clean.is_empty() {
            clean.push('x');
        }
        let base = format!("{}{clean}", self.opts.prefix);
        let mut name = base.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.names.push(name.clone());
        name
    }

    // ---- directives and objects -------------------------------------------------------

    fn directive(
        &mut self,
        line: usize,
        name: &str,
        value: &str,
        include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
    ) {
        let lower = name.to_ascii_lowercase();
        let first = value.split_whitespace().next().unwrap_or("");
        match lower.as_str() {
            "modload" => self.module(line, first, &Vec::new()),
            "fileowner" => self.defaults.owner = Some(first.to_string()),
            "filegroup" => self.defaults.group = Some(first.to_string()),
            "filecreatemode" => self.defaults.mode = Some(first.to_string()),
            "dircreatemode" => self.defaults.dir_mode = Some(first.to_string()),
            "umask" => match u32::from_str_radix(first, 8) {
                Ok(m) => self.defaults.umask = Some(m & 0o777),
                Err(_) => self.note(line, NoteKind::NotTranslated, format!("`$Umask {first}` is not an octal mode")),
            },
            "repeatedmsgreduction" => {
                self.defaults.reduce_repeats = first.eq_ignore_ascii_case("on")
            }
            "actionfiledefaulttemplate" => self.defaults.template = Some(first.to_string()),
            "includeconfig" => self.include(line, first, include),
            "workdirectory" => {}
            "escapecontrolcharactersonreceive" if !first.eq_ignore_ascii_case("off") => {}
            "addunixlistensocket" => self.unix_socket(line, first),
            "udpserverrun" | "inputudpserverrun" => {
                let addr = self.defaults.udp_address.clone();
                self.network_input(line, "udp", first, addr.as_deref())
            }
            "udpserveraddress" => self.defaults.udp_address = Some(first.to_string()),
            "inputtcpserverrun" => self.network_input(line, "tcp", first, None),
            "inputfilename" | "inputfiletag" | "inputfilestatefile" | "inputfileseverity"
            | "inputfilefacility" => {
                let key = lower.trim_start_matches("inputfile").to_string();
                let key = if key == "name" { "file".to_string() } else { key };
                self.imfile.push((key, first.to_string()));
            }
            "inputrunfilemonitor" => {
                let params = std::mem::take(&mut self.imfile);
                self.imfile_input(line, &params);
            }
            "template" => self.legacy_template(line, value),
            "privdroptouser" | "privdroptogroup" | "privdroptouserid" | "privdroptogroupid" => self.note(
                line,
                NoteKind::Differs,
                format!("`${name}`: logwell drops privileges its own way: a worker as user _logwell, groups adm (privilege separation, [daemon] user)"),
            ),
            "actionfileenablesync" => self.note(
                line,
                NoteKind::Differs,
                "`$ActionFileEnableSync`: set `sync = true` on the outputs that need fdatasync after every batch".into(),
            ),
            _ if lower.starts_with("actionqueue") || lower.starts_with("mainmsgqueue") => {
                self.note(
                    line,
                    NoteKind::NotTranslated,
                    format!("`${name}`: logwell's queues are set per forward output ([output.NAME.queue])"),
                )
            }
            _ => self.note(
                line,
                NoteKind::NotTranslated,
                format!("`${name}` has no logwell equivalent that this translation knows"),
            ),
        }
    }

    fn include(
        &mut self,
        line: usize,
        pattern: &str,
        include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
    ) {
        let files = include(pattern);
        if files.is_empty() && !self.opts.drop_in {
            self.note(
                line,
                NoteKind::Differs,
                format!("`{pattern}` names no file that could be read; nothing included"),
            );
        }
        self.depth += 1;
        for (path, text) in files {
            self.file_of(&path, &text, include);
        }
        self.depth -= 1;
    }

    fn object(
        &mut self,
        line: usize,
        name: &str,
        params: &Params,
        include: &mut dyn FnMut(&str) -> Vec<(PathBuf, String)>,
    ) {
        match name {
            "module" => {
                let load = param(params, "load").unwrap_or("");
                self.module(line, load, params)
            }
            "input" => self.input(line, params),
            "template" => self.object_template(line, params),
            "include" => match param(params, "file") {
                Some(p) => self.include(line, p, include),
                None => self.note(
                    line,
                    NoteKind::NotTranslated,
                    "`include()` without `file`".into(),
                ),
            },
            _ => self.note(
                line,
                NoteKind::NotTranslated,
                format!("`{name}(…)`: its settings have no logwell equivalent that this translation knows"),
            ),
        }
    }

    fn module(&mut self, line: usize, load: &str, params: &Params) {
        match load.to_ascii_lowercase().as_str() {
            "imuxsock" | "imklog" | "imjournal" if self.opts.drop_in => {}
            "imuxsock" | "imklog" | "imjournal" => self.system_inputs(line),
            "imudp" | "imtcp" | "imfile" | "omfile" | "builtin:omfile" | "builtin:omfwd"
            | "omfwd" | "ommark" | "immark" => {
                if let Some(t) = param(params, "template") {
                    self.defaults.template = Some(t.to_string());
                }
                for (key, value) in params {
                    match key.as_str() {
                        "fileowner" => self.defaults.owner = Some(value.clone()),
                        "filegroup" => self.defaults.group = Some(value.clone()),
                        "filecreatemode" => self.defaults.mode = Some(value.clone()),
                        "dircreatemode" => self.defaults.dir_mode = Some(value.clone()),
                        _ => {}
                    }
                }
            }
            "imrelp" | "omrelp" => {}
            other => self.note(
                line,
                NoteKind::NotTranslated,
                format!(
                    "the module `{other}` has no logwell equivalent that this translation knows"
                ),
            ),
        }
    }

    /// imuxsock, imklog, imjournal in import mode: the inputs logwell's shipped
    /// configuration has, once.
    fn system_inputs(&mut self, line: usize) {
        if self.system_inputs {
            return;
        }
        self.system_inputs = true;
        let origin = format!("{} (the system's log sockets and the kernel log, as logwell's shipped configuration reads them)", self.origin(line));
        for (name, keys) in [
            (
                "journald",
                vec![
                    ("type", q("unix_datagram")),
                    ("path", q("/run/systemd/journal/syslog")),
                ],
            ),
            (
                "devlog",
                vec![("type", q("unix_datagram")), ("path", q("/dev/log"))],
            ),
            ("kernel", vec![("type", q("kmsg"))]),
        ] {
            let name = self.unique(name);
            self.inputs.push(Section {
                header: format!("[input.{name}]"),
                origin: origin.clone(),
                keys: keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            });
        }
    }

    fn unix_socket(&mut self, line: usize, path: &str) {
        if path.is_empty() {
            self.note(
                line,
                NoteKind::NotTranslated,
                "a socket without a path".into(),
            );
            return;
        }
        if self
            .opts
            .existing_sockets
            .iter()
            .any(|p| p == Path::new(path))
        {
            return;
        }
        let stem = self
            .file
            .file_stem()
            .map_or_else(|| "socket".into(), |s| s.to_string_lossy().into_owned());
        let name = self.unique(&format!("{stem}-socket"));
        self.inputs.push(Section {
            header: format!("[input.{name}]"),
            origin: self.origin(line),
            keys: vec![
                ("type".into(), q("unix_datagram")),
                ("path".into(), q(path)),
            ],
        });
    }

    fn network_input(&mut self, line: usize, kind: &str, port: &str, address: Option<&str>) {
        let Ok(port) = port.parse::<u16>() else {
            self.note(
                line,
                NoteKind::NotTranslated,
                format!("`{port}` is not a port"),
            );
            return;
        };
        let listen = match address {
            Some(a) if a != "*" && !a.is_empty() => {
                if a.contains(':') {
                    format!("[{}]", q(&format!("[{a}]:{port}")))
                } else {
                    format!("[{}]", q(&format!("{a}:{port}")))
                }
            }
            _ => format!("[\"0.0.0.0:{port}\", \"[::]:{port}\"]"),
        };
        let name = self.unique(&format!("{kind}-{port}"));
        self.inputs.push(Section {
            header: format!("[input.{name}]"),
            origin: self.origin(line),
            keys: vec![("type".into(), q(kind)), ("listen".into(), listen)],
        });
    }

    fn input(&mut self, line: usize, params: &Params) {
        let kind = param(params, "type").unwrap_or("").to_ascii_lowercase();
        if param(params, "ruleset").is_some() {
            self.note(
                line,
                NoteKind::Differs,
                "`ruleset=`: logwell has one rule list, so this input's messages go through every rule".into(),
            );
        }
        match kind.as_str() {
            "imudp" | "imtcp" => {
                let port = param(params, "port").unwrap_or("514").to_string();
                let address = param(params, "address").map(str::to_string);
                for port in port.split(',') {
                    self.network_input(line, &kind[2..], port.trim(), address.as_deref());
                }
            }
            "imuxsock" => match param(params, "socket") {
                Some(path) => {
                    let path = path.to_string();
                    self.unix_socket(line, &path)
                }
                None if self.opts.drop_in => {}
                None => self.system_inputs(line),
            },
            "imfile" => self.imfile_input(line, params),
            "imklog" | "imjournal" if self.opts.drop_in => {}
            "imklog" | "imjournal" => self.system_inputs(line),
            "imrelp" => self.relp_input(line, params),
            other => self.note(
                line,
                NoteKind::NotTranslated,
                format!("an input of type `{other}`, which logwell does not have"),
            ),
        }
    }

    /// `input(type="imrelp" port=… address=…)`: a `relp` input. TLS and the size settings
    /// are left to the administrator, with a note.
    fn relp_input(&mut self, line: usize, params: &Params) {
        if param(params, "tls").is_some_and(|t| t.eq_ignore_ascii_case("on")) {
            self.note(
                line,
                NoteKind::NotTranslated,
                "RELP over TLS: declare a relp input with cert, key, ca and permitted_peers (logwell.toml(5))".into(),
            );
            return;
        }
        let Some(port) = param(params, "port").map(str::to_string) else {
            self.note(
                line,
                NoteKind::NotTranslated,
                "an imrelp input without `port`".into(),
            );
            return;
        };
        for key in ["maxdatasize", "oversizemode"] {
            if param(params, key).is_some() {
                self.note(
                    line,
                    NoteKind::Differs,
                    format!("`{key}`: set max_message_size_bytes and oversize on the relp input (logwell.toml(5))"),
                );
            }
        }
        let address = param(params, "address").map(str::to_string);
        self.network_input(line, "relp", port.trim(), address.as_deref());
    }

    fn imfile_input(&mut self, line: usize, params: &Params) {
        let Some(file) = param(params, "file") else {
            self.note(
                line,
                NoteKind::NotTranslated,
                "an imfile input without `File`".into(),
            );
            return;
        };
        let stem = Path::new(file)
            .file_stem()
            .map_or_else(|| "file".into(), |s| s.to_string_lossy().into_owned());
        let name = self.unique(&format!("file-{stem}"));
        let mut keys = vec![
            ("type".to_string(), q("file")),
            ("paths".to_string(), format!("[{}]", q(file))),
        ];
        if let Some(tag) = param(params, "tag") {
            let tag = tag.trim_end_matches(':');
            keys.push(("tag".into(), q(tag)));
        }
        for key in ["facility", "severity"] {
            if let Some(v) = param(params, key) {
                keys.push((key.into(), q(v)));
            }
        }
        if param(params, "startmsg.regex").is_some() || param(params, "readmode").is_some() {
            self.note(
                line,
                NoteKind::NotTranslated,
                "multi-line reading (`startmsg.regex`, `readMode`): logwell reads one line per message".into(),
            );
        }
        self.inputs.push(Section {
            header: format!("[input.{name}]"),
            origin: self.origin(line),
            keys,
        });
    }

    // ---- templates ----------------------------------------------------------------------

    fn legacy_template(&mut self, line: usize, value: &str) {
        let Some((name, rest)) = value.split_once(',') else {
            self.note(
                line,
                NoteKind::NotTranslated,
                "`$template` without `NAME,\"text\"`".into(),
            );
            return;
        };
        let rest = rest.trim();
        let text = rest
            .strip_prefix('"')
            .and_then(|r| r.rfind('"').map(|end| r[..end].replace("\\n", "\n")));
        let Some(text) = text else {
            self.note(
                line,
                NoteKind::NotTranslated,
                format!("the template `{}` is not a quoted string", name.trim()),
            );
            return;
        };
        self.add_template(line, name.trim(), &text);
    }

    fn object_template(&mut self, line: usize, params: &Params) {
        let name = param(params, "name").unwrap_or("");
        match (param(params, "type"), param(params, "string")) {
            (Some("string"), Some(text)) => {
                let (name, text) = (name.to_string(), text.to_string());
                self.add_template(line, &name, &text)
            }
            (kind, _) => {
                let text = format!(
                    "the template `{name}` of type `{}`: only type=\"string\" templates are translated",
                    kind.unwrap_or("?")
                );
                self.templates.insert(
                    name.to_ascii_lowercase(),
                    Template {
                        line: Err(text.clone()),
                        path: Err(text.clone()),
                        declared: None,
                        origin: self.origin(line),
                    },
                );
                self.note(line, NoteKind::NotTranslated, text);
            }
        }
    }

    fn add_template(&mut self, _line: usize, name: &str, text: &str) {
        let template = Template {
            line: convert_template(text, false),
            path: convert_template(text, true),
            declared: None,
            origin: self.origin(_line),
        };
        self.templates.insert(name.to_ascii_lowercase(), template);
    }

    /// How an action's template is written: a format key, or a declared `[template.NAME]`.
    fn template_keys(
        &mut self,
        line: usize,
        name: Option<&str>,
        forward: bool,
    ) -> Vec<(String, String)> {
        let Some(name) = name else {
            return if forward {
                vec![("format".into(), q("rfc3164"))]
            } else {
                Vec::new()
            };
        };
        let builtin = match name.to_ascii_lowercase().as_str() {
            "rsyslog_traditionalfileformat" => Some("traditional"),
            "rsyslog_fileformat" => Some("rfc3339"),
            "rsyslog_syslogprotocol23format" => Some("rfc5424"),
            "rsyslog_traditionalforwardformat" | "rsyslog_forwardformat" => Some("rfc3164"),
            _ => None,
        };
        if let Some(format) = builtin {
            // A forward output has its own names; the files' are the same as rsyslog's.
            let format = match (forward, format) {
                (true, "traditional" | "rfc3339") => "rfc3164",
                (false, "rfc3164") => "traditional",
                (_, f) => f,
            };
            return vec![("format".into(), q(format))];
        }
        let Some(t) = self.templates.get(&name.to_ascii_lowercase()).cloned() else {
            self.note(
                line,
                NoteKind::Differs,
                format!("the template `{name}` is not defined before this action (or is one of rsyslog's own that logwell does not have); the output's default format is used"),
            );
            return Vec::new();
        };
        match t.line {
            Ok(text) => {
                let declared = match t.declared {
                    Some(d) => d,
                    None => {
                        let d = self.unique(name);
                        self.outputs.push(Section {
                            header: format!("[template.{d}]"),
                            origin: t.origin.clone(),
                            keys: vec![("text".into(), q(&text))],
                        });
                        if let Some(t) = self.templates.get_mut(&name.to_ascii_lowercase()) {
                            t.declared = Some(d.clone());
                        }
                        d
                    }
                };
                vec![("template".into(), q(&declared))]
            }
            Err(why) => {
                self.note(
                    line,
                    NoteKind::Differs,
                    format!("{why}; the output's default format is used"),
                );
                Vec::new()
            }
        }
    }

    // ---- rules and actions --------------------------------------------------------------

    fn rule(&mut self, outer: &[Conj], stmt: &Stmt) {
        let Kind::Rule { filter, body } = &stmt.kind else {
            return;
        };
        if let Some(why) = never_matches_msg(filter) {
            self.note(stmt.line, NoteKind::Differs, why);
        }
        let conjs = match dnf(filter, false) {
            Ok(inner) if outer.len().saturating_mul(inner.len()) > MAX_TERMS => {
                self.note(
                    stmt.line,
                    NoteKind::NotTranslated,
                    format!("the filter, inside the filters around it, would take more than {MAX_TERMS} rules; write it as fewer conditions"),
                );
                return;
            }
            Ok(inner) => {
                let mut out = Vec::new();
                for o in outer {
                    for i in &inner {
                        let c = o.and(i);
                        if !c.never() {
                            out.push(c);
                        }
                    }
                }
                out
            }
            Err(why) => {
                self.note(
                    stmt.line,
                    NoteKind::NotTranslated,
                    format!("the filter uses {why}, which logwell's rules cannot express; its actions are left out"),
                );
                return;
            }
        };
        if conjs.len() > MAX_TERMS {
            self.note(
                stmt.line,
                NoteKind::NotTranslated,
                format!(
                    "the filter would take {} rules; write it as fewer conditions",
                    conjs.len()
                ),
            );
            return;
        }
        let mut pending: Vec<String> = Vec::new();
        let mut first_line = stmt.line;
        for item in body {
            match &item.kind {
                Kind::Action(a) => {
                    if let Some(name) = self.action(item.line, a) {
                        if !pending.contains(&name) {
                            pending.push(name);
                        }
                    }
                }
                Kind::Stop => {
                    self.emit(first_line, &conjs, &pending, true);
                    if let Some(after) = body.iter().skip_while(|s| !std::ptr::eq(*s, item)).nth(1)
                    {
                        self.note(
                            after.line,
                            NoteKind::NotTranslated,
                            "after `stop`: never reached".into(),
                        );
                    }
                    return;
                }
                Kind::Rule { .. } => {
                    self.emit(first_line, &conjs, &pending, false);
                    pending.clear();
                    self.rule(&conjs, item);
                    first_line = item.line;
                }
                Kind::Unsupported(why) => {
                    self.note(item.line, NoteKind::NotTranslated, why.clone())
                }
                Kind::Directive { .. } | Kind::Object { .. } => self.note(
                    item.line,
                    NoteKind::NotTranslated,
                    "a directive inside a filter's block".into(),
                ),
            }
        }
        self.emit(first_line, &conjs, &pending, false);
    }

    fn emit(&mut self, line: usize, conjs: &[Conj], outputs: &[String], is_final: bool) {
        if outputs.is_empty() && !is_final {
            return;
        }
        for c in conjs {
            let mut keys = Vec::new();
            if let Some(sel) = render_selector(&c.masks) {
                keys.push(("selector".to_string(), q(&sel)));
            }
            for negate in [false, true] {
                let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for t in c.tests.iter().filter(|t| t.negate == negate) {
                    by_field.entry(&t.field).or_default().push(&t.regex);
                }
                if by_field.is_empty() {
                    continue;
                }
                let inner: Vec<String> = by_field
                    .iter()
                    .map(|(f, res)| {
                        let v = if res.len() == 1 {
                            q(res[0])
                        } else {
                            format!(
                                "[{}]",
                                res.iter().map(|r| q(r)).collect::<Vec<_>>().join(", ")
                            )
                        };
                        format!("{} = {v}", q(f))
                    })
                    .collect();
                let key = if negate {
                    "field_not_match"
                } else {
                    "field_match"
                };
                keys.push((key.to_string(), format!("{{ {} }}", inner.join(", "))));
            }
            if outputs.is_empty() {
                keys.push(("discard".into(), "true".into()));
            } else {
                let list: Vec<String> = outputs.iter().map(|o| q(o)).collect();
                keys.push(("output".into(), format!("[{}]", list.join(", "))));
                if is_final {
                    keys.push(("final".into(), "true".into()));
                }
            }
            self.rules.push(Section {
                header: "[[rule]]".into(),
                origin: self.origin(line),
                keys,
            });
        }
    }

    /// The output an action writes to (declared here if new), or `None` with a note.
    fn action(&mut self, line: usize, action: &Action) -> Option<String> {
        match action {
            Action::Legacy(text) => self.legacy_action(line, text),
            Action::Object(params) => self.object_action(line, params),
        }
    }

    fn legacy_action(&mut self, line: usize, text: &str) -> Option<String> {
        let (target, template) = match text.split_once(';') {
            Some((t, tpl)) => (t.trim(), Some(tpl.trim())),
            None => (text.trim(), None),
        };
        let target = target.strip_prefix(":omfile:").unwrap_or(target);
        let target = target.strip_prefix('-').unwrap_or(target);
        if target.starts_with('/') {
            return self.file_output(line, target, None, template, &Vec::new());
        }
        if let Some(dyn_name) = target.strip_prefix('?') {
            return self.file_output(line, "", Some(dyn_name), template, &Vec::new());
        }
        if let Some(rest) = target.strip_prefix("@@") {
            return self.forward_legacy(line, "tcp", rest, template);
        }
        if let Some(rest) = target.strip_prefix('@') {
            return self.forward_legacy(line, "udp", rest, template);
        }
        if let Some(users) = target.strip_prefix(":omusrmsg:") {
            return self.users_output(line, users);
        }
        if target == "*"
            || target.split(',').all(|u| {
                !u.is_empty()
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            }) && target
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        {
            return self.users_output(line, target);
        }
        let why = if target.starts_with('|') {
            "writing to a named pipe: logwell serves followers itself (`logwell follow`)"
                .to_string()
        } else if target.starts_with('^') {
            "running a program per message (`^program`)".to_string()
        } else if target.starts_with(":om") {
            format!("the output module of `{target}`")
        } else {
            format!("the action `{target}`")
        };
        self.note(line, NoteKind::NotTranslated, why);
        None
    }

    fn object_action(&mut self, line: usize, params: &Params) -> Option<String> {
        let kind = param(params, "type").unwrap_or("").to_ascii_lowercase();
        let template = param(params, "template");
        match kind.as_str() {
            "omfile" => {
                let file = param(params, "file").unwrap_or("");
                let dynafile = param(params, "dynafile");
                if file.is_empty() && dynafile.is_none() {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        "an omfile action without `file` or `dynaFile`".into(),
                    );
                    return None;
                }
                self.file_output(line, file, dynafile, template, params)
            }
            "omfwd" => {
                let Some(target) = param(params, "target") else {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        "an omfwd action without `target`".into(),
                    );
                    return None;
                };
                let port = param(params, "port").unwrap_or("514");
                let protocol = param(params, "protocol")
                    .unwrap_or("udp")
                    .to_ascii_lowercase();
                let octet = param(params, "tcp_framing")
                    .is_some_and(|f| f.eq_ignore_ascii_case("octet-counted"));
                if param(params, "streamdriver")
                    .is_some_and(|d| d.contains("tls") || d == "gtls" || d == "ossl")
                {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        "TLS forwarding: declare a forward output with protocol = \"tls\" and the CA (logwell.toml(5))".into(),
                    );
                    return None;
                }
                self.forward(line, &protocol, target, port, octet, template)
            }
            "omusrmsg" => {
                let users = param(params, "users").unwrap_or("*").to_string();
                self.users_output(line, &users)
            }
            "omrelp" => {
                let Some(target) = param(params, "target") else {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        "an omrelp action without `target`".into(),
                    );
                    return None;
                };
                if param(params, "tls").is_some_and(|t| t.eq_ignore_ascii_case("on")) {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        "RELP forwarding over TLS: declare a forward output with protocol = \"relp\" and the CA (logwell.toml(5))".into(),
                    );
                    return None;
                }
                let port = param(params, "port").unwrap_or("514");
                self.forward(line, "relp", target, port, false, template)
            }
            other => {
                self.note(
                    line,
                    NoteKind::NotTranslated,
                    format!("an action of type `{other}`, which logwell does not have"),
                );
                None
            }
        }
    }

    fn file_output(
        &mut self,
        line: usize,
        path: &str,
        dynafile: Option<&str>,
        template: Option<&str>,
        params: &Params,
    ) -> Option<String> {
        let path = match dynafile {
            None => path.to_string(),
            Some(name) => match self
                .templates
                .get(&name.to_ascii_lowercase())
                .map(|t| t.path.clone())
            {
                Some(Ok(p)) => p,
                Some(Err(why)) => {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        format!("the dynamic file's {why}"),
                    );
                    return None;
                }
                None => {
                    self.note(
                        line,
                        NoteKind::NotTranslated,
                        format!("the dynamic file's template `{name}` is not defined before this action"),
                    );
                    return None;
                }
            },
        };
        if path.starts_with("/dev/") {
            self.note(
                line,
                NoteKind::NotTranslated,
                format!("writing to the device {path}: logwell writes files it can rotate (the console: a `users` output reaches logged-in terminals)"),
            );
            return None;
        }
        if let Some(name) = self.opts.existing_files.get(Path::new(&path)) {
            if template.is_some() {
                self.note(
                    line,
                    NoteKind::Differs,
                    format!("{path} is written by logwell's output `{name}` already, in its format; this action's template is not applied"),
                );
            }
            return Some(name.clone());
        }
        let template = template
            .map(str::to_string)
            .or_else(|| self.defaults.template.clone());
        let key = format!("file:{path}:{}", template.as_deref().unwrap_or(""));
        if let Some(name) = self.output_keys.get(&key) {
            return Some(name.clone());
        }
        let stem = Path::new(&path)
            .file_stem()
            .map_or_else(|| "file".into(), |s| s.to_string_lossy().into_owned());
        let stem = if path.contains('{') {
            "dynamic".to_string()
        } else {
            stem
        };
        let name = self.unique(&stem);
        let mut keys = vec![
            ("type".to_string(), q("file")),
            ("path".to_string(), q(&path)),
        ];
        keys.extend(self.template_keys(line, template.as_deref(), false));
        let p = |k: &str| param(params, k).map(str::to_string);
        let owner = p("fileowner").or_else(|| self.defaults.owner.clone());
        let group = p("filegroup").or_else(|| self.defaults.group.clone());
        let umask = self.defaults.umask.unwrap_or(0o022);
        let masked = |m: String| match u32::from_str_radix(&m, 8) {
            Ok(bits) => format!("{:04o}", bits & !umask),
            Err(_) => m,
        };
        let mode = p("filecreatemode")
            .or_else(|| self.defaults.mode.clone())
            .map(masked);
        // logwell's defaults are Debian's: root, adm, 0640.
        if let Some(o) = owner.filter(|o| o != "root") {
            keys.push(("owner".into(), q(&o)));
        }
        if let Some(g) = group.filter(|g| g != "adm") {
            keys.push(("group".into(), q(&g)));
        }
        if let Some(m) = mode.filter(|m| m.trim_start_matches('0') != "640") {
            keys.push(("mode".into(), q(&m)));
        }
        if path.contains('{') {
            if let Some(d) = p("dircreatemode")
                .or_else(|| self.defaults.dir_mode.clone())
                .map(masked)
            {
                keys.push(("dir_mode".into(), q(&d)));
            }
        }
        if self.defaults.reduce_repeats {
            keys.push(("reduce_repeats".into(), "true".into()));
        }
        if self
            .opts
            .logrotated
            .iter()
            .any(|p| p == &path || glob::Pattern::new(p).is_ok_and(|g| g.matches(&path)))
        {
            keys.push(("rotation".into(), "{ rotated_by = \"logrotate\" }".into()));
        }
        Some(self.declare_output(line, key, name, keys))
    }

    /// Declares `[output.NAME]` with `keys`, remembered under `key` so an action doing the
    /// same reuses it; returns the name.
    fn declare_output(
        &mut self,
        line: usize,
        key: String,
        name: String,
        keys: Vec<(String, String)>,
    ) -> String {
        self.output_keys.insert(key, name.clone());
        self.outputs.push(Section {
            header: format!("[output.{name}]"),
            origin: self.origin(line),
            keys,
        });
        name
    }

    fn forward_legacy(
        &mut self,
        line: usize,
        protocol: &str,
        rest: &str,
        template: Option<&str>,
    ) -> Option<String> {
        let mut rest = rest;
        let mut octet = false;
        if let Some(r) = rest.strip_prefix('(') {
            let Some((opts, r)) = r.split_once(')') else {
                self.note(
                    line,
                    NoteKind::NotTranslated,
                    format!("`{rest}` is not a target"),
                );
                return None;
            };
            for o in opts.split(',') {
                match o.trim() {
                    "o" => octet = true,
                    z if z.starts_with('z') => self.note(
                        line,
                        NoteKind::Differs,
                        "compression of the forwarded stream (`(z…)`) is not done".into(),
                    ),
                    other => self.note(
                        line,
                        NoteKind::Differs,
                        format!("the forwarding option `{other}` is not applied"),
                    ),
                }
            }
            rest = r;
        }
        let (host, port) = host_port(rest);
        self.forward(line, protocol, host, port, octet, template)
    }

    fn forward(
        &mut self,
        line: usize,
        protocol: &str,
        host: &str,
        port: &str,
        octet: bool,
        template: Option<&str>,
    ) -> Option<String> {
        if !matches!(protocol, "tcp" | "udp" | "relp") {
            self.note(
                line,
                NoteKind::NotTranslated,
                format!("forwarding over `{protocol}`"),
            );
            return None;
        }
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let key = format!(
            "forward:{protocol}:{target}:{octet}:{}",
            template.unwrap_or("")
        );
        if let Some(name) = self.output_keys.get(&key) {
            return Some(name.clone());
        }
        let name = self.unique(&format!("forward-{host}"));
        let mut keys = vec![
            ("type".to_string(), q("forward")),
            ("targets".to_string(), format!("[{}]", q(&target))),
            ("protocol".to_string(), q(protocol)),
        ];
        if protocol == "tcp" {
            let framing = if octet { "octet-counting" } else { "newline" };
            keys.push(("framing".into(), q(framing)));
        }
        keys.extend(self.template_keys(line, template, true));
        self.note(
            line,
            NoteKind::Differs,
            format!("forwarding to {target} goes through a queue in memory, then on disk in the state directory, where rsyslog's action had none by default"),
        );
        Some(self.declare_output(line, key, name, keys))
    }

    fn users_output(&mut self, line: usize, users: &str) -> Option<String> {
        let list: Vec<&str> = users
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let key = format!("users:{}", list.join(","));
        if let Some(name) = self.output_keys.get(&key) {
            return Some(name.clone());
        }
        let name = self.unique(if list == ["*"] { "everyone" } else { "users" });
        let value = if list == ["*"] {
            q("*")
        } else {
            format!(
                "[{}]",
                list.iter().map(|u| q(u)).collect::<Vec<_>>().join(", ")
            )
        };
        let keys = vec![("type".into(), q("users")), ("users".into(), value)];
        Some(self.declare_output(line, key, name, keys))
    }

    fn finish(mut self) -> Translation {
        let mut toml = String::new();
        let (inputs, outputs, rules) = (self.inputs.len(), self.outputs.len(), self.rules.len());
        for section in self.inputs.iter().chain(&self.outputs).chain(&self.rules) {
            let _ = writeln!(toml, "{}\n# {}", section.header, section.origin);
            for (k, v) in &section.keys {
                let _ = writeln!(toml, "{k} = {v}");
            }
            toml.push('\n');
        }
        self.notes
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        self.notes.dedup();
        let value = |s: &Section, key: &str| {
            s.keys
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| toml::from_str::<toml::Value>(&format!("v = {v}")).ok())
                .and_then(|t| t.get("v").and_then(|v| v.as_str().map(str::to_string)))
        };
        let mut files = BTreeMap::new();
        for s in &self.outputs {
            if let (Some("file"), Some(path)) = (value(s, "type").as_deref(), value(s, "path")) {
                let name = s
                    .header
                    .trim_start_matches("[output.")
                    .trim_end_matches(']');
                if !path.contains('{') {
                    files.insert(PathBuf::from(path), name.to_string());
                }
            }
        }
        let sockets = self
            .inputs
            .iter()
            .filter(|s| value(s, "type").as_deref() == Some("unix_datagram"))
            .filter_map(|s| value(s, "path").map(PathBuf::from))
            .collect();
        Translation {
            files,
            sockets,
            toml,
            notes: self.notes,
            rules,
            // Templates are declared among the outputs.
            outputs: outputs
                - self
                    .templates
                    .values()
                    .filter(|t| t.declared.is_some())
                    .count(),
            inputs,
        }
    }
}

/// Says so when a comparison of `$msg` can never match, as under rsyslog, whose `$msg`
/// starts with the space after the tag.
fn never_matches_msg(c: &Cond) -> Option<String> {
    match c {
        Cond::Cmp {
            prop, op, value, ..
        } if prop == "msg" => {
            let anchored = match op {
                Op::StartsWith | Op::StartsWithI | Op::IsEqual => !value.starts_with(' '),
                Op::Regex | Op::EreRegex => {
                    value.starts_with('^') && !value[1..].starts_with([' ', '\\', '[', '('])
                }
                _ => false,
            };
            anchored.then(|| format!("`$msg` compared from its start with `{value}` never matches, here as under rsyslog: rsyslog's msg starts with the space after the tag; write \" {}\" to match the text", value.trim_start_matches('^')))
        }
        Cond::And(a, b) | Cond::Or(a, b) => never_matches_msg(a).or_else(|| never_matches_msg(b)),
        Cond::Not(a) => never_matches_msg(a),
        _ => None,
    }
}

/// The host and port of a legacy forwarding target (`host:port`, `[v6]:port`, `host`; 514
/// when none is given).
pub(super) fn host_port(target: &str) -> (&str, &str) {
    if let Some(v6) = target.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').unwrap_or("514")),
            None => (v6, "514"),
        }
    } else {
        match target.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            _ => (target, "514"),
        }
    }
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The filter as conjunctions of which one must hold; `negated` pushes a `not` down.
fn dnf(cond: &Cond, negated: bool) -> Result<Vec<Conj>, String> {
    Ok(match cond {
        Cond::Selector(text) => {
            let masks = selector_masks(text)?;
            vec![Conj {
                masks: if negated { masks.map(|m| !m) } else { masks },
                tests: Vec::new(),
            }]
        }
        Cond::Cmp {
            prop,
            op,
            value,
            negate,
        } => vec![atom(prop, *op, value, *negate != negated)?],
        Cond::Not(inner) => dnf(inner, !negated)?,
        Cond::And(a, b) | Cond::Or(a, b) => {
            let (left, right) = (dnf(a, negated)?, dnf(b, negated)?);
            let product = matches!(cond, Cond::And(..)) != negated;
            let terms = if product {
                left.len().saturating_mul(right.len())
            } else {
                left.len() + right.len()
            };
            // Checked before it is built: a disjunctive form can grow exponentially.
            if terms > MAX_TERMS {
                return Err(format!(
                    "an expression that takes more than {MAX_TERMS} rules"
                ));
            }
            if product {
                let mut out = Vec::new();
                for l in &left {
                    for r in &right {
                        out.push(l.and(r));
                    }
                }
                out
            } else {
                left.into_iter().chain(right).collect()
            }
        }
        Cond::Unsupported(what) => return Err(what.clone()),
    })
}

fn selector_masks(text: &str) -> Result<[u8; 24], String> {
    let sel = Selector::parse(text).map_err(|e| format!("the selector `{text}` ({e})"))?;
    let mut masks = [0u8; 24];
    for (code, mask) in masks.iter_mut().enumerate() {
        let Some(f) = Facility::from_code(code as u8) else {
            continue;
        };
        for sev in 0..8u8 {
            if Severity::from_code(sev).is_some_and(|s| sel.matches(f, s)) {
                *mask |= 1 << sev;
            }
        }
    }
    Ok(masks)
}

/// A selector text for masks; `None` when every message matches. The mask most facilities
/// share is written for `*` first, then the facilities that differ (`*.*;auth,authpriv.none`).
fn render_selector(masks: &[u8; 24]) -> Option<String> {
    if masks.iter().all(|m| *m == 0xff) {
        return None;
    }
    let real: Vec<(u8, u8)> = (0..24u8)
        .filter(|c| Facility::from_code(*c).is_some())
        .map(|c| (c, masks[c as usize]))
        .collect();
    let mut counts: Vec<(usize, u8)> = Vec::new();
    for (_, m) in &real {
        match counts.iter_mut().find(|(_, x)| x == m) {
            Some((n, _)) => *n += 1,
            None => counts.push((1, *m)),
        }
    }
    let base = counts.iter().max_by_key(|(n, _)| *n).map_or(0, |(_, m)| *m);
    let mut parts = Vec::new();
    if base != 0 {
        parts.extend(severity_parts("*", base));
    }
    // The facilities that differ, grouped by mask, in code order.
    let mut groups: Vec<(u8, Vec<&str>)> = Vec::new();
    for (code, mask) in real.iter().filter(|(_, m)| *m != base) {
        let name = Facility::from_code(*code).map_or("?", |f| f.name());
        match groups.iter_mut().find(|(m, _)| m == mask) {
            Some((_, names)) => names.push(name),
            None => groups.push((*mask, vec![name])),
        }
    }
    for (mask, names) in groups {
        let facs = names.join(",");
        if base != 0 {
            parts.push(format!("{facs}.none"));
        }
        if mask != 0 {
            parts.extend(severity_parts(&facs, mask));
        }
    }
    if parts.is_empty() {
        // Nothing matches: a selector that says so.
        return Some("*.none".into());
    }
    Some(parts.join(";"))
}

/// `facs.SEV` parts adding exactly the severities of `mask`.
fn severity_parts(facs: &str, mask: u8) -> Vec<String> {
    if mask == 0xff {
        return vec![format!("{facs}.*")];
    }
    if (mask & mask.wrapping_add(1)) == 0 {
        // Bits 0..=k: severity k and everything more severe.
        let k = 7 - mask.leading_zeros() as u8;
        let sev = Severity::from_code(k).map_or("?", |s| s.name());
        return vec![format!("{facs}.{sev}")];
    }
    (0..8u8)
        .filter(|s| mask & (1 << s) != 0)
        .map(|sev| {
            let name = Severity::from_code(sev).map_or("?", |s| s.name());
            format!("{facs}.={name}")
        })
        .collect()
}

/// One comparison as a conjunction: a selector for facility and severity, a field regex for
/// the rest.
fn atom(prop: &str, op: Op, value: &str, negate: bool) -> Result<Conj, String> {
    let field = match prop {
        // rsyslog's `$msg` starts with the space after the tag: `contains` and `endswith` of
        // a text that does not start with one read logwell's `msg` the same way; the rest
        // read `rsyslog_msg`, the text after that space, so `startswith "x"` never matches,
        // as under rsyslog.
        "msg" | "rawmsg"
            if matches!(op, Op::Contains | Op::ContainsI | Op::EndsWith)
                && !value.starts_with(' ') =>
        {
            "msg".to_string()
        }
        "msg" | "rawmsg" => "rsyslog_msg".to_string(),
        "programname" => "programname".into(),
        "app-name" => "tag".into(),
        "hostname" | "source" => "host".into(),
        "syslogtag" => "syslogtag".into(),
        "fromhost-ip" => "fromhost_ip".into(),
        "procid" => "procid".into(),
        "msgid" => "msgid".into(),
        "syslogfacility"
        | "syslogfacility-text"
        | "syslogseverity"
        | "syslogseverity-text"
        | "syslogpriority"
        | "syslogpriority-text" => {
            let masks = pri_masks(prop, op, value)?;
            return Ok(Conj {
                masks: if negate { masks.map(|m| !m) } else { masks },
                tests: Vec::new(),
            });
        }
        p if p.starts_with('!') && p.len() > 1 => {
            format!("fields.{}", p[1..].replace('!', "."))
        }
        other => return Err(format!("the property `${other}`")),
    };
    let e = regex::escape(value);
    let regex = match op {
        Op::Contains => e,
        Op::ContainsI => format!("(?i){e}"),
        Op::StartsWith => format!("^{e}"),
        Op::StartsWithI => format!("(?i)^{e}"),
        Op::EndsWith => format!("{e}$"),
        Op::IsEqual => format!("^{e}$"),
        Op::EreRegex => value.to_string(),
        Op::Regex => bre_to_ere(value),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            return Err(format!("a numeric comparison of `${prop}`"))
        }
    };
    if regex::Regex::new(&regex).is_err() {
        return Err(format!("the regular expression `{value}`"));
    }
    Ok(Conj {
        masks: [0xff; 24],
        tests: vec![Test {
            field,
            regex,
            negate,
        }],
    })
}

/// Masks for a comparison of the facility or severity.
fn pri_masks(prop: &str, op: Op, value: &str) -> Result<[u8; 24], String> {
    let facility = prop.starts_with("syslogfacility");
    let code = match value.parse::<u8>() {
        Ok(n) => n,
        Err(_) if facility => Facility::from_name(value)
            .map(|f| f.code())
            .ok_or_else(|| format!("the facility `{value}`"))?,
        Err(_) => Severity::from_name(value)
            .map(|s| s.code())
            .ok_or_else(|| format!("the severity `{value}`"))?,
    };
    let holds = |x: u8| match op {
        Op::IsEqual => x == code,
        Op::Lt => x < code,
        Op::Le => x <= code,
        Op::Gt => x > code,
        Op::Ge => x >= code,
        _ => false,
    };
    if !matches!(op, Op::IsEqual | Op::Lt | Op::Le | Op::Gt | Op::Ge) {
        return Err(format!("a text comparison of `${prop}`"));
    }
    let mut masks = [0u8; 24];
    for (f, mask) in masks.iter_mut().enumerate() {
        for s in 0..8u8 {
            let x = if facility { f as u8 } else { s };
            if holds(x) {
                *mask |= 1 << s;
            }
        }
    }
    Ok(masks)
}

/// A POSIX basic regular expression in the extended syntax the `regex` crate reads: `\(`
/// `\)` `\{` `\}` `\|`, and GNU's `\+` `\?` (glibc's, which rsyslog uses), are the
/// operators, and bare `( ) { } | + ?` are literal.
pub(super) fn bre_to_ere(bre: &str) -> String {
    let mut out = String::new();
    let mut chars = bre.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if in_class {
            out.push(c);
            if c == ']' {
                in_class = false;
            }
            continue;
        }
        match c {
            '\\' => match chars.next() {
                Some(n @ ('(' | ')' | '{' | '}' | '|' | '+' | '?')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => {
                out.push('\\');
                out.push(c);
            }
            '[' => {
                in_class = true;
                out.push(c);
                // `[]…]` and `[^]…]`: a leading `]` is literal.
                let rest = chars.as_str();
                if let Some(r) = rest.strip_prefix("^]") {
                    out.push_str("^\\]");
                    chars = r.chars();
                } else if let Some(r) = rest.strip_prefix(']') {
                    out.push_str("\\]");
                    chars = r.chars();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// An rsyslog template's text as a logwell template: a line template, or (`path`) a path
/// template for dynamic files. `Err` says which property has no equivalent.
pub(super) fn convert_template(text: &str, path: bool) -> Result<String, String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        let literal = &rest[..at];
        push_literal(&mut out, literal, path)?;
        let after = &rest[at + 1..];
        let Some(end) = after.find('%') else {
            return Err("template has a `%` that is not closed".into());
        };
        let spec = &after[..end];
        rest = &after[end + 1..];
        let mut parts = spec.split(':');
        let prop = parts.next().unwrap_or("").to_ascii_lowercase();
        let (from, to) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let options = parts.next().unwrap_or("").to_ascii_lowercase();
        if !from.is_empty() || !to.is_empty() {
            return Err(format!("template takes a part of `%{prop}%` (`{spec}`)"));
        }
        let time = |field: &str| {
            if options.contains("date-rfc3339") {
                format!("{{{field}:rfc3339}}")
            } else if options.contains("date-unixtimestamp") {
                format!("{{{field}:unix}}")
            } else {
                format!("{{{field}:traditional}}")
            }
        };
        let piece = match (prop.as_str(), path) {
            // rsyslog's msg starts with the space after the tag, so `sp-if-no-1st-sp` adds
            // nothing, and the text comes with its space.
            ("msg", false) if options.contains("sp-if-no-1st-sp") => String::new(),
            ("msg" | "rawmsg", false) => " {msg}".into(),
            ("hostname" | "source", _) => "{host}".into(),
            ("programname" | "app-name", _) => "{tag}".into(),
            ("syslogtag", false) => "{syslogtag}".into(),
            ("timestamp" | "timereported", false) => time("time"),
            ("timegenerated", false) => time("recv"),
            ("pri", false) => "{pri}".into(),
            ("pri-text", false) => "{facility}.{severity}".into(),
            ("syslogfacility-text", _) => "{facility}".into(),
            ("syslogseverity-text" | "syslogpriority-text", _) => "{severity}".into(),
            ("fromhost-ip", _) => "{peer}".into(),
            ("procid", false) => "{procid}".into(),
            ("msgid", false) => "{msgid}".into(),
            ("$year", true) => "{year}".into(),
            ("$month", true) => "{month}".into(),
            ("$day", true) => "{day}".into(),
            ("$hour", true) => "{hour}".into(),
            ("$year", false) => "{time:%Y}".into(),
            ("$month", false) => "{time:%m}".into(),
            ("$day", false) => "{time:%d}".into(),
            ("$hour", false) => "{time:%H}".into(),
            ("$minute", false) => "{time:%M}".into(),
            (p, false) if p.starts_with("$!") && p.len() > 2 => {
                format!("{{fields.{}}}", p[2..].replace('!', "."))
            }
            (p, _) => {
                return Err(format!(
                    "template uses `%{p}%`, which a logwell {} template does not have",
                    if path { "path" } else { "line" }
                ))
            }
        };
        out.push_str(&piece);
    }
    push_literal(&mut out, rest, path)?;
    Ok(out)
}

fn push_literal(out: &mut String, literal: &str, path: bool) -> Result<(), String> {
    if literal.chars().any(char::is_control) {
        return Err("template writes a control character".into());
    }
    if path && literal.contains(['{', '}']) {
        return Err("path template has `{` or `}`".into());
    }
    out.push_str(&literal.replace('{', "{{").replace('}', "}}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(text: &str, drop_in: bool) -> Translation {
        let opts = Options {
            prefix: if drop_in {
                "rsyslog-".into()
            } else {
                String::new()
            },
            drop_in,
            existing_files: [(PathBuf::from("/var/log/syslog"), "syslog".to_string())]
                .into_iter()
                .collect(),
            existing_sockets: vec![PathBuf::from("/dev/log")],
            logrotated: vec!["/var/log/haproxy*.log".into()],
        };
        translate(
            &[(PathBuf::from("/etc/rsyslog.d/t.conf"), text.to_string())],
            &opts,
            &mut |_| Vec::new(),
        )
    }

    #[test]
    fn haproxy_drop_in() {
        let t = tr(
            "$AddUnixListenSocket /var/lib/haproxy/dev/log\n\
             :programname, startswith, \"haproxy\" {\n  /var/log/haproxy.log\n  stop\n}\n",
            true,
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(
            t.toml,
            "[input.rsyslog-t-socket]\n# t.conf:1\ntype = \"unix_datagram\"\npath = \"/var/lib/haproxy/dev/log\"\n\n\
             [output.rsyslog-haproxy]\n# t.conf:3\ntype = \"file\"\npath = \"/var/log/haproxy.log\"\nrotation = { rotated_by = \"logrotate\" }\n\n\
             [[rule]]\n# t.conf:2\nfield_match = { \"programname\" = \"^haproxy\" }\noutput = [\"rsyslog-haproxy\"]\nfinal = true\n\n"
        );
    }

    #[test]
    fn selectors_intersect_and_negate() {
        let t = tr(
            "if prifilt(\"mail.*\") and not ($syslogseverity > 3) then /var/log/m\n",
            false,
        );
        assert!(t.toml.contains("selector = \"mail.err\""), "{}", t.toml);
        let t = tr(
            "if not prifilt(\"*.*;auth,authpriv.none\") then /var/log/a\n",
            false,
        );
        assert!(
            t.toml.contains("selector = \"auth,authpriv.*\""),
            "{}",
            t.toml
        );
        let t = tr("*.=info;*.=notice /var/log/in\n", false);
        assert!(
            t.toml.contains("selector = \"*.=notice;*.=info\""),
            "{}",
            t.toml
        );
    }

    #[test]
    fn or_is_several_rules_and_existing_files_are_reused() {
        let t = tr(
            "if $programname == 'a' or $msg contains 'b' then -/var/log/syslog\n& ~\n",
            true,
        );
        assert_eq!(t.rules, 2, "{}", t.toml);
        assert_eq!(t.outputs, 0, "{}", t.toml);
        assert_eq!(
            t.toml
                .matches("output = [\"syslog\"]\nfinal = true")
                .count(),
            2
        );
    }

    #[test]
    fn what_is_not_translated_is_reported_with_its_line() {
        let t = tr(
            "$ModLoad imuxsock\n$SystemLogRateLimitInterval 0\n*.* |/dev/xconsole\n\
             if $inputname == 'x' then /var/log/x\n",
            true,
        );
        let lines: Vec<usize> = t.notes.iter().map(|n| n.line).collect();
        assert_eq!(lines, [2, 3, 4], "{:?}", t.notes);
        assert!(t.notes.iter().all(|n| n.kind == NoteKind::NotTranslated));
        assert_eq!(t.rules, 0);
    }

    #[test]
    fn templates_become_line_and_path_templates() {
        let t = tr(
            "$template Remote,\"/var/log/remote/%HOSTNAME%/%$YEAR%-%$MONTH%.log\"\n\
             template(name=\"line\" type=\"string\" string=\"%TIMESTAMP:::date-rfc3339% %HOSTNAME% %syslogtag%%msg%\\n\")\n\
             *.* ?Remote\n*.* /var/log/x.log;line\n",
            false,
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert!(
            t.toml
                .contains("path = \"/var/log/remote/{host}/{year}-{month}.log\""),
            "{}",
            t.toml
        );
        assert!(
            t.toml
                .contains("text = \"{time:rfc3339} {host} {syslogtag} {msg}\""),
            "{}",
            t.toml
        );
        assert!(t.toml.contains("template = \"line\""), "{}", t.toml);
    }

    #[test]
    fn a_filter_too_large_to_expand_is_reported_not_built() {
        // Found by the fuzzer: each `not (x and y)` doubles the disjunctive form.
        let clause = "not ($msg contains 'a' and $msg contains 'b')";
        let filter = vec![clause; 40].join(" and ");
        let t = tr(&format!("if {filter} then /var/log/x\n"), false);
        assert_eq!(t.rules, 0);
        assert!(
            t.notes[0].text.contains("more than 16 rules"),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn every_value_is_quoted_as_toml() {
        // Found by the fuzzer: an address with a tab in it.
        let t = tr(
            "input(type=\"imudp\" address=\"127.0.0.1\t port=:\" port=\"514\")\n",
            false,
        );
        assert!(t.toml.parse::<toml::Table>().is_ok(), "{}", t.toml);
    }

    #[test]
    fn basic_regexes_are_converted() {
        assert_eq!(bre_to_ere(r"a\(b\)\{2\}c+"), r"a(b){2}c\+");
        assert_eq!(bre_to_ere(r"a\(b\)\+c\?"), r"a(b)+c?");
        assert_eq!(bre_to_ere(r"[]x]|y"), r"[\]x]\|y");
    }

    #[test]
    fn forwarding_and_users() {
        let t = tr(
            "*.* @@(o)central.example:6514\nmail.* @[::1]\n*.emerg :omusrmsg:*\n",
            false,
        );
        assert!(t.toml.contains("targets = [\"central.example:6514\"]\nprotocol = \"tcp\"\nframing = \"octet-counting\""), "{}", t.toml);
        assert!(
            t.toml
                .contains("targets = [\"[::1]:514\"]\nprotocol = \"udp\""),
            "{}",
            t.toml
        );
        assert!(
            t.toml.contains("type = \"users\"\nusers = \"*\""),
            "{}",
            t.toml
        );
    }
}
