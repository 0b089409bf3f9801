//! Loading: reading the main file and the drop-in directory, parsing each text into the
//! [`raw`] structs, and assembling [`Settings`] from them: [`Settings::from_files`]
//! runs each section's builder (`inputs`, `outputs`, `rules`, the section files) in the order
//! their references need, then the checks across sections, and returns every error at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::{Check, Declared};
use super::dropins;
use super::error::{ConfigError, ConfigErrors, SourceFile};
use super::follow;
use super::host::{check_worker_can_list, default_hostname, resolve_user};
use super::inputs::{body_parsers, check_unique_endpoints, header_from, input_kind, socket_paths};
use super::outputs::{
    check_templates_apart, check_templates_spare_other_files, check_unique_paths, named_template,
    output_kind, output_template,
};
use super::raw::{self, RawConfig, RawDaemon};
use super::rotation::{self, PartialRotation, RetentionSettings};
use super::rules::build_rule;
use super::settings::{
    DaemonSettings, FileSettings, InputSettings, OutputKind, OutputSettings, Settings, DEFAULT_USER,
};

/// Where the configuration lives.
#[derive(Clone, Debug)]
pub struct ConfigPaths {
    /// The main file.
    pub main: PathBuf,
    /// The drop-in directory; `*.toml` files in it are read in name order. A missing
    /// directory is fine.
    pub drop_in_dir: Option<PathBuf>,
}

impl ConfigPaths {
    /// The main file and the `conf.d` directory beside it.
    pub fn beside(main: impl Into<PathBuf>) -> ConfigPaths {
        let main = main.into();
        let drop_in_dir = main.parent().map(|p| p.join("conf.d"));
        ConfigPaths { main, drop_in_dir }
    }
}

/// Reads and validates the configuration.
pub fn load(paths: &ConfigPaths) -> Result<Settings, ConfigErrors> {
    let mut files = vec![paths.main.clone()];
    if let Some(dir) = &paths.drop_in_dir {
        files.extend(drop_ins(dir));
    }
    load_files(&files)
}

/// The `*.toml` files of a drop-in directory, in name order.
fn drop_ins(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    out.sort();
    out
}

/// Reads and validates the given files, in order.
pub fn load_files(paths: &[PathBuf]) -> Result<Settings, ConfigErrors> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(t) => texts.push((path.clone(), t)),
            Err(e) => {
                errors.push(ConfigError {
                    file: path.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the configuration: {e}"),
                    hint: Some(match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            "create it, or pass another file with --config".to_string()
                        }
                        _ => "check the file's permissions".to_string(),
                    }),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    load_texts(texts)
}

/// Validates configuration texts (path, content), in order, as if read from those files.
/// What `load_files` does after reading; also the config fuzzer's entry point.
pub fn load_texts(texts: Vec<(PathBuf, String)>) -> Result<Settings, ConfigErrors> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (path, text) in texts {
        let path = &path;
        match toml::from_str::<raw::RawConfig>(&text) {
            Ok(raw) => parsed.push(ParsedFile {
                path: path.clone(),
                text,
                raw,
                rules_first: false,
            }),
            Err(e) => {
                let src = SourceFile { path, text: &text };
                let message = e.message().trim_end().to_string();
                let hint = hint_for(&message);
                errors.push(src.error(e.span(), message, hint));
            }
        }
    }
    let drop_ins = dropins::read(&parsed, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut warnings = drop_ins.warnings;
    let mut files = parsed;
    files.extend(drop_ins.files);
    loop {
        match Settings::from_files(&files) {
            Ok(mut s) => {
                s.rsyslog_files = files
                    .iter()
                    .filter(|f| f.rules_first)
                    .map(|f| {
                        PathBuf::from(
                            f.path
                                .to_string_lossy()
                                .trim_end_matches(dropins::TRANSLATED),
                        )
                    })
                    .collect();
                s.warnings = warnings;
                return Ok(s);
            }
            Err(errors) => {
                // A drop-in's translation that logwell refuses leaves that drop-in out; only
                // a mistake in logwell's own files stops the start.
                let refused: Vec<&ConfigError> = errors
                    .iter()
                    .filter(|e| e.file.to_string_lossy().ends_with(dropins::TRANSLATED))
                    .collect();
                if refused.is_empty() {
                    return Err(ConfigErrors(errors));
                }
                for e in &refused {
                    warnings.push(format!(
                        "{}: left out, as logwell refuses its translation: {}",
                        e.file
                            .to_string_lossy()
                            .trim_end_matches(dropins::TRANSLATED),
                        e.message
                    ));
                }
                let bad: Vec<PathBuf> = refused.iter().map(|e| e.file.clone()).collect();
                files.retain(|f| !bad.contains(&f.path));
            }
        }
    }
}

/// A hint for serde's and toml's own messages.
fn hint_for(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("check the spelling; the keys this section accepts are listed above".into())
    } else if message.contains("missing field `type`") {
        Some("every [input.NAME] and [output.NAME] needs type = \"...\"".into())
    } else if message.contains("invalid type") {
        Some("check the value's type: numbers unquoted, names and modes in quotes".into())
    } else {
        Some("see logwell.toml(5) for the syntax".into())
    }
}

/// One parsed file with its text, as `load` hands them over.
pub(crate) struct ParsedFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) raw: RawConfig,
    /// Its rules go before those of every other file (translated rsyslog drop-ins).
    pub(crate) rules_first: bool,
}

impl Settings {
    /// Validates parsed files (main file first, then drop-ins) into settings, or every error.
    pub(crate) fn from_files(files: &[ParsedFile]) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut daemon = DaemonSettings {
            hostname: default_hostname(),
            control_socket: PathBuf::from("/run/logwell/control.sock"),
            state_dir: PathBuf::from("/var/lib/logwell"),
            log_level: "info".to_string(),
            privsep: true,
            user: DEFAULT_USER.to_string(),
            user_ids: None,
        };
        let mut inputs: BTreeMap<String, InputSettings> = BTreeMap::new();
        let mut outputs: BTreeMap<String, OutputSettings> = BTreeMap::new();
        let mut declared: BTreeMap<(&'static str, String), Declared> = BTreeMap::new();
        // [rotation] and [retention] first: outputs in any file lay their own over them.
        let mut default_rotation = PartialRotation::default();
        let mut retention = RetentionSettings::default();
        // Named templates too, for outputs in any file to name.
        let mut templates = BTreeMap::new();
        for file in files {
            let mut check = Check::new(file);
            for (name, raw) in &file.raw.template {
                if check.declare(&mut declared, "template", name, &file.path) {
                    if let Some(t) = named_template(&mut check, raw.get_ref()) {
                        templates.insert(name.get_ref().clone(), t);
                    }
                }
            }
            if let Some(r) = &file.raw.rotation {
                default_rotation = default_rotation.overlay(&rotation::from_raw(&mut check, r));
            }
            if let Some(r) = &file.raw.retention {
                let r = rotation::retention_from_raw(&mut check, r);
                retention.max_disk_usage = r.max_disk_usage.or(retention.max_disk_usage);
                retention.min_free_space = r.min_free_space.or(retention.min_free_space);
            }
            errors.append(&mut check.errors);
        }
        for file in files {
            let mut check = Check::new(file);
            if let Some(d) = &file.raw.daemon {
                apply_daemon(&mut check, d, &mut daemon);
            }
            for (name, raw) in &file.raw.input {
                if check.declare(&mut declared, "input", name, &file.path) {
                    if let Some(kind) = input_kind(&mut check, raw.get_ref()) {
                        let name = name.get_ref().clone();
                        let parse = body_parsers(&mut check, raw.get_ref());
                        let header_from = header_from(&mut check, raw.get_ref(), &parse);
                        inputs.insert(
                            name.clone(),
                            InputSettings {
                                name,
                                kind,
                                parse,
                                header_from,
                            },
                        );
                    }
                }
            }
            for (name, raw) in &file.raw.output {
                if check.declare(&mut declared, "output", name, &file.path) {
                    if let Some(kind) = output_kind(&mut check, raw.get_ref(), &default_rotation) {
                        let name = name.get_ref().clone();
                        let template = output_template(&mut check, raw.get_ref(), &templates);
                        outputs.insert(
                            name.clone(),
                            OutputSettings {
                                name,
                                kind,
                                template,
                            },
                        );
                    }
                }
            }
            errors.append(&mut check.errors);
        }

        if let Some(e) = resolve_user(&mut daemon, files) {
            errors.push(e);
        }
        let mut outputs: Vec<OutputSettings> = outputs.into_values().collect();
        // A forward action's queue lives in the state directory, known once every file is read.
        for o in &mut outputs {
            if let OutputKind::Forward(f) = &mut o.kind {
                f.queue.dir = Some(daemon.state_dir.join("queue").join(&o.name));
            }
            if let OutputKind::Kafka(k) = &mut o.kind {
                k.queue.dir = Some(daemon.state_dir.join("queue").join(&o.name));
            }
            if let OutputKind::Http(h) = &mut o.kind {
                h.queue.dir = Some(daemon.state_dir.join("queue").join(&o.name));
                if h.dead_letter.is_none() {
                    let file = format!("{}.jsonl", o.name.replace('/', "_"));
                    h.dead_letter = Some(daemon.state_dir.join("dead-letter").join(file));
                }
            }
            // So is the record of the files a templated output created.
            if let OutputKind::File(FileSettings {
                dynamic: Some(d), ..
            }) = &mut o.kind
            {
                // One file name whatever the output's name holds (`/`, a leading `.`).
                let mut name = o.name.replace('/', "_");
                if name.starts_with('.') || name.is_empty() {
                    name.insert(0, '_');
                }
                d.created = Some(daemon.state_dir.join("created").join(name));
            }
        }
        check_unique_paths(files, &outputs, &mut errors);
        check_templates_spare_other_files(files, &outputs, &mut errors);
        check_templates_apart(files, &outputs, &mut errors);
        check_worker_can_list(files, &daemon, &inputs, &outputs, &mut errors);
        check_unique_endpoints(files, &inputs, &daemon, &outputs, &mut errors);
        // Rules refer to outputs by name, so they are built once every file is read.
        let mut rules = Vec::new();
        let (first, rest): (Vec<&ParsedFile>, Vec<&ParsedFile>) =
            files.iter().partition(|f| f.rules_first);
        for file in first.into_iter().chain(rest) {
            let mut check = Check::new(file);
            for rule in &file.raw.rule {
                if let Some(rule) = build_rule(&mut check, rule, &outputs, &inputs, &templates) {
                    rules.push(rule);
                }
            }
            errors.append(&mut check.errors);
        }
        let mut follow = None;
        for file in files {
            let mut check = Check::new(file);
            if let Some(f) = &file.raw.follow {
                if follow.is_some() {
                    check.err(
                        f.span(),
                        "`[follow]` is declared in more than one file",
                        "keep one [follow] section",
                    );
                } else {
                    follow = Some(follow::from_raw(
                        &mut check,
                        f,
                        &outputs,
                        &socket_paths(&daemon, &inputs),
                    ));
                }
            }
            errors.append(&mut check.errors);
        }
        if inputs.is_empty() && errors.is_empty() {
            let path = files.first().map(|f| f.path.clone()).unwrap_or_default();
            errors.push(ConfigError { file: path, line: 0, column: 0, message: "no input is declared, so nothing would be received".into(), hint: Some("add one, such as [input.udp] with type = \"udp\" and listen = \"127.0.0.1:5514\"".into()) });
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(errors);
        }
        Ok(Settings {
            daemon,
            inputs: inputs.into_values().collect(),
            outputs,
            rules,
            retention,
            follow,
            templates,
            warnings: Vec::new(),
            rsyslog_files: Vec::new(),
        })
    }
}

fn apply_daemon(check: &mut Check<'_>, d: &RawDaemon, daemon: &mut DaemonSettings) {
    if let Some(h) = &d.hostname {
        if h.get_ref().is_empty() || h.get_ref().contains(char::is_whitespace) {
            check.err(
                h.span(),
                "`hostname` must be one word",
                "remove it to use the system host name",
            );
        } else {
            daemon.hostname = h.get_ref().clone();
        }
    }
    if let Some(p) = &d.state_dir {
        daemon.state_dir = PathBuf::from(p.get_ref());
    }
    if let Some(p) = &d.control_socket {
        daemon.control_socket = PathBuf::from(p.get_ref());
    }
    if let Some(p) = &d.privsep {
        daemon.privsep = *p.get_ref();
    }
    if let Some(u) = &d.user {
        if u.get_ref().is_empty() || u.get_ref() == "root" {
            check.err(
                u.span(),
                format!("`user = \"{}\"` cannot run the worker", u.get_ref()),
                "name an unprivileged system user such as _logwell, or set `privsep = false`",
            );
        } else {
            daemon.user = u.get_ref().clone();
        }
    }
    if let Some(l) = &d.log_level {
        if tracing_subscriber::EnvFilter::try_new(l.get_ref()).is_err() {
            check.err(
                l.span(),
                format!("`log_level = \"{}\"` is not a log filter", l.get_ref()),
                "use error, warn, info, debug or trace",
            );
        } else {
            daemon.log_level = l.get_ref().clone();
        }
    }
}
