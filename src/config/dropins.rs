//! Other packages' rsyslog drop-ins (`[rsyslog]`): which files of `/etc/rsyslog.d` are
//! taken, their translation ([`super::rsyslog`]) into parsed configuration files whose rules
//! go before every other (as rsyslog includes `/etc/rsyslog.d` before Debian's default
//! rules), and the translation's report as warnings. One translated file per drop-in, so a
//! drop-in whose translation logwell refuses is left out alone, with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::Check;
use super::error::ConfigError;
use super::load::ParsedFile;
use super::raw::OneOrMany;
use super::rsyslog::{translate, Options};

/// What the drop-ins add.
#[derive(Default)]
pub(super) struct DropIns {
    /// One translated file per drop-in, in name order.
    pub(super) files: Vec<ParsedFile>,
    /// Lines not translated or that differ, and drop-ins left out.
    pub(super) warnings: Vec<String>,
}

/// The directory read when `[rsyslog]` names none.
const DEFAULT_DIR: &str = "/etc/rsyslog.d";

/// The suffix of a translated file's name, which errors in it carry.
pub(super) const TRANSLATED: &str = " (translated from rsyslog)";

/// Which drop-ins are taken.
enum Take {
    /// Those of installed packages other than rsyslog (dpkg knows).
    Packages,
    /// Every `*.conf`.
    All,
    /// None.
    None,
    /// These files.
    Files(Vec<PathBuf>),
}

/// Reads `[rsyslog]` from the parsed files and translates the drop-ins it takes.
pub(super) fn read(parsed: &[ParsedFile], errors: &mut Vec<ConfigError>) -> DropIns {
    let mut section = None;
    for file in parsed {
        let mut check = Check::new(file);
        if let Some(r) = &file.raw.rsyslog {
            if section.is_some() {
                check.err(
                    r.span(),
                    "`[rsyslog]` is declared in more than one file",
                    "keep one [rsyslog] section",
                );
            } else {
                section = Some(settings(&mut check, r.get_ref()));
            }
        }
        errors.append(&mut check.errors);
    }
    let Some(Some((take, dir, logrotate_dir))) = section else {
        return DropIns::default();
    };
    let mut out = DropIns::default();
    let candidates = match &take {
        Take::None => return out,
        Take::Files(files) => files.clone(),
        Take::Packages | Take::All => conf_files(&dir),
    };
    let chosen: Vec<PathBuf> = match take {
        Take::Packages => {
            let owners = super::host::package_owners(&candidates);
            candidates
                .into_iter()
                .filter(|p| {
                    owners
                        .get(p)
                        .is_some_and(|pkgs| pkgs.iter().any(|o| o != "rsyslog"))
                })
                .collect()
        }
        _ => candidates,
    };
    let (mut existing_files, mut existing_sockets) = declared(parsed);
    let logrotated = logrotate_paths(&logrotate_dir);
    for path in chosen {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.warnings.push(format!(
                    "{}: cannot be read, so it is left out: {e}",
                    path.display()
                ));
                continue;
            }
        };
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let opts = Options {
            prefix: format!("rsyslog-{stem}-"),
            drop_in: true,
            existing_files: existing_files.clone(),
            existing_sockets: existing_sockets.clone(),
            logrotated: logrotated.clone(),
        };
        let t = translate(&[(path.clone(), text)], &opts, &mut |_| Vec::new());
        out.warnings.extend(t.notes.iter().map(ToString::to_string));
        let translated = PathBuf::from(format!("{}{TRANSLATED}", path.display()));
        match toml::from_str(&t.toml) {
            Ok(raw) => {
                existing_files.extend(t.files);
                existing_sockets.extend(t.sockets);
                out.files.push(ParsedFile {
                    path: translated,
                    text: t.toml,
                    raw,
                    rules_first: true,
                });
            }
            Err(e) => out.warnings.push(format!(
                "{}: its translation is not valid logwell configuration, so it is left out ({}); please report this",
                path.display(),
                e.message().trim_end()
            )),
        }
    }
    out
}

fn settings(check: &mut Check<'_>, r: &super::raw::RawRsyslog) -> Option<(Take, PathBuf, PathBuf)> {
    let logrotate_dir = r.logrotate_dir.as_ref().map_or_else(
        || PathBuf::from("/etc/logrotate.d"),
        |d| PathBuf::from(d.get_ref()),
    );
    let dir = r.dir.as_ref().map_or_else(
        || PathBuf::from(DEFAULT_DIR),
        |d| PathBuf::from(d.get_ref()),
    );
    let take = match r.drop_ins.as_ref() {
        None => Take::Packages,
        Some(d) => match d.get_ref() {
            OneOrMany::One(w) if w == "packages" => Take::Packages,
            OneOrMany::One(w) if w == "all" => Take::All,
            OneOrMany::One(w) if w == "none" => Take::None,
            other => {
                let files = other.clone_vec();
                if let Some(bad) = files.iter().find(|f| !f.starts_with('/')) {
                    check.err(
                        d.span(),
                        format!("`drop_ins`: `{bad}` is not an absolute path"),
                        "write \"packages\" (the drop-ins of other installed packages), \"all\", \"none\", or a list of files such as [\"/etc/rsyslog.d/49-haproxy.conf\"]",
                    );
                    return None;
                }
                Take::Files(files.into_iter().map(PathBuf::from).collect())
            }
        },
    };
    Some((take, dir, logrotate_dir))
}

/// The paths (or glob patterns) logrotate's stanzas in `dir` name: the words starting with
/// `/` before each `{`.
fn logrotate_paths(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let mut depth = 0usize;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            if depth == 0 {
                let head = line.split('{').next().unwrap_or("");
                out.extend(
                    head.split_whitespace()
                        .map(|w| w.trim_matches('"'))
                        .filter(|w| w.starts_with('/'))
                        .map(str::to_string),
                );
            }
            depth += line.matches('{').count();
            depth = depth.saturating_sub(line.matches('}').count());
        }
    }
    out
}

/// The `*.conf` files of `dir`, in name order (as rsyslog's `$IncludeConfig` reads them).
fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    out.sort();
    out
}

/// The plain file outputs (by path) and Unix socket inputs already declared.
fn declared(parsed: &[ParsedFile]) -> (BTreeMap<PathBuf, String>, Vec<PathBuf>) {
    let mut files = BTreeMap::new();
    let mut sockets = Vec::new();
    for f in parsed {
        for (name, o) in &f.raw.output {
            let o = o.get_ref();
            if o.kind.get_ref() == "file" {
                if let Some(p) = &o.path {
                    files.insert(PathBuf::from(p.get_ref()), name.get_ref().clone());
                }
            }
        }
        for i in f.raw.input.values() {
            let i = i.get_ref();
            if i.kind.get_ref().starts_with("unix") {
                if let Some(p) = &i.path {
                    sockets.push(PathBuf::from(p.get_ref()));
                }
            }
        }
    }
    (files, sockets)
}
