//! Building `[output.NAME]` sections: a file output (format, buffering, rotation, a
//! templated path's keys) and a users output from a [`RawOutput`], the keys of other output
//! types refused, and the checks across outputs: no two write one file, and no templated path
//! could render another output's file. Forward and Kafka outputs are built in `forward` and
//! `kafka`; the owner and group lookups are in `host`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::check::Check;
use super::error::{ConfigError, SourceFile};
use super::host::owner_and_group;
use super::keys::OutputType;
use super::load::ParsedFile;
use super::raw::{span_of, RawOutput};
use super::rotation::{self, PartialRotation};
use super::settings::{DynamicSettings, FileSettings, OutputKind, OutputSettings, UsersSettings};
use super::{forward, http, kafka};
use crate::render::line_template::LineTemplate;
use crate::render::Format;

pub(super) fn output_kind(
    check: &mut Check<'_>,
    raw: &RawOutput,
    default_rotation: &PartialRotation,
) -> Option<OutputKind> {
    let Some(ty) = OutputType::named(raw.kind.get_ref()) else {
        check.err(
            raw.kind.span(),
            format!("unknown output type `{}`", raw.kind.get_ref()),
            "use \"file\", \"users\", \"forward\", \"kafka\" or \"http\"",
        );
        return None;
    };
    refuse_other_types_keys(check, raw, ty);
    match ty.name {
        "file" => file_output(check, raw, default_rotation),
        "users" => users_output(check, raw),
        "forward" => forward::from_raw(check, raw).map(OutputKind::Forward),
        "kafka" => kafka::from_raw(check, raw).map(OutputKind::Kafka),
        "http" => http::from_raw(check, raw).map(OutputKind::Http),
        other => unreachable!("output type `{other}` has no settings"),
    }
}

/// Refuses the keys set on an output that only outputs of other types take, each with the
/// hint [`OutputType::refusal_hint`] gives.
fn refuse_other_types_keys(check: &mut Check<'_>, raw: &RawOutput, ty: &OutputType) {
    for (key, span) in raw.key_spans() {
        if let (Some(span), Some(hint)) = (span, ty.refusal_hint(key)) {
            check.err(
                span,
                format!("`{key}` does not apply to {} outputs", ty.name),
                hint,
            );
        }
    }
}

fn users_output(check: &mut Check<'_>, raw: &RawOutput) -> Option<OutputKind> {
    let users = raw
        .users
        .as_ref()
        .map(|u| u.get_ref().clone_vec())
        .unwrap_or_else(|| vec!["*".to_string()]);
    let users = if users.iter().any(|u| u == "*") {
        Vec::new()
    } else {
        users
    };
    Some(OutputKind::Users(UsersSettings {
        users,
        utmp: raw.utmp.as_ref().map_or_else(
            || PathBuf::from("/var/run/utmp"),
            |p| PathBuf::from(p.get_ref()),
        ),
        write_timeout: Duration::from_millis(check.bounded(
            &raw.write_timeout_ms,
            "write_timeout_ms",
            1000,
            60_000,
        ) as u64),
    }))
}

fn file_output(
    check: &mut Check<'_>,
    raw: &RawOutput,
    default_rotation: &PartialRotation,
) -> Option<OutputKind> {
    let format = match &raw.format {
        None => Format::Rfc3339,
        Some(f) => match Format::from_name(f.get_ref()) {
            Some(f) => f,
            None => {
                check.err(
                    f.span(),
                    format!("unknown format `{}`", f.get_ref()),
                    "use \"traditional\", \"rfc3339\", \"rfc5424\" or \"json\"",
                );
                Format::Rfc3339
            }
        },
    };
    let (owner, group) = owner_and_group(check, raw);
    let path = match &raw.path {
        Some(p) if !p.get_ref().is_empty() => PathBuf::from(p.get_ref()),
        _ => {
            check.err(
                raw.kind.span(),
                "a file output needs `path`",
                "add path = \"/var/log/syslog\"",
            );
            return None;
        }
    };
    let dynamic = dynamic_settings(check, raw);
    let own_rotation = raw
        .rotation
        .as_ref()
        .map(|r| rotation::from_raw(check, r.get_ref()))
        .unwrap_or_default();
    Some(OutputKind::File(FileSettings {
        path,
        format,
        sync: raw.sync.as_ref().is_some_and(|s| *s.get_ref()),
        owner,
        group,
        mode: check.mode(&raw.mode, 0o640),
        flush_interval: Duration::from_millis(check.positive(
            &raw.flush_interval_ms,
            "flush_interval_ms",
            1000,
        ) as u64),
        buffer_bytes: check.positive(&raw.buffer_bytes, "buffer_bytes", 64 * 1024),
        backlog_bytes: check.positive(&raw.backlog_bytes, "backlog_bytes", 16 * 1024 * 1024),
        rotation: default_rotation.overlay(&own_rotation).settle(),
        rotated_elsewhere: own_rotation.external(),
        dynamic,
        reduce_repeats: raw.reduce_repeats.as_ref().is_some_and(|r| *r.get_ref()),
    }))
}

/// The template and its keys when the path has fields; the keys refused when it has none.
fn dynamic_settings(check: &mut Check<'_>, raw: &RawOutput) -> Option<DynamicSettings> {
    let path = raw.path.as_ref()?;
    let template = match crate::render::template::PathTemplate::parse(path.get_ref()) {
        Ok(t) => t,
        Err(e) => {
            check.err(
                path.span(),
                e.to_string(),
                format!(
                    "fields are {}",
                    crate::render::template::FIELD_NAMES
                        .iter()
                        .map(|(n, _)| format!("{{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            return None;
        }
    };
    let Some(template) = template else {
        for (key, span) in [
            ("max_open_files", span_of(&raw.max_open_files)),
            ("idle_close_secs", span_of(&raw.idle_close_secs)),
            ("fallback", span_of(&raw.fallback)),
            ("dir_mode", span_of(&raw.dir_mode)),
        ] {
            if let Some(span) = span {
                check.err(
                    span,
                    format!("`{key}` applies only to a path with fields"),
                    "remove it, or put fields such as {host} in `path`",
                );
            }
        }
        return None;
    };
    let fallback = match &raw.fallback {
        Some(f) if f.get_ref().starts_with('/') && !f.get_ref().contains('{') => {
            PathBuf::from(f.get_ref())
        }
        Some(f) => {
            check.err(
                f.span(),
                "`fallback` must be an absolute path without fields",
                "such as fallback = \"/var/log/remote/fallback.log\"",
            );
            template.base().join(".fallback.log")
        }
        None => template.base().join(".fallback.log"),
    };
    Some(DynamicSettings {
        max_open_files: check.bounded(&raw.max_open_files, "max_open_files", 256, 65_536),
        idle_close: Duration::from_secs(check.bounded(
            &raw.idle_close_secs,
            "idle_close_secs",
            60,
            86_400 * 7,
        ) as u64),
        fallback,
        dir_mode: check.mode(&raw.dir_mode, 0o750),
        created: None,
        template,
    })
}

/// Two outputs writing one file would interleave and fight over rotation.
pub(super) fn check_unique_paths(
    files: &[ParsedFile],
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: BTreeMap<&PathBuf, &str> = BTreeMap::new();
    for o in outputs {
        let OutputKind::File(f) = &o.kind else {
            continue;
        };
        if let Some(first) = seen.insert(&f.path, &o.name) {
            let (file, line, column) = output_place(files, &o.name);
            errors.push(ConfigError {
                file,
                line,
                column,
                message: format!(
                    "outputs `{first}` and `{}` both write {}",
                    o.name,
                    f.path.display()
                ),
                hint: Some("send both rules to one output instead".into()),
            });
        }
    }
}

/// A templated path that could render another output's file (`/var/log/{host}.log` beside
/// `/var/log/auth.log`) would let a sender named `auth` write into it past the selectors,
/// and its age sweep could delete it: refuse it, naming both outputs.
pub(super) fn check_templates_spare_other_files(
    files: &[ParsedFile],
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    // Every file an output writes by name: plain paths, and templated outputs' fallbacks.
    let named: Vec<(&str, &Path)> = outputs
        .iter()
        .filter_map(|o| match &o.kind {
            OutputKind::File(f) => Some((
                o.name.as_str(),
                f.dynamic.as_ref().map_or(f.path.as_path(), |d| &d.fallback),
            )),
            _ => None,
        })
        .collect();
    for o in outputs {
        let OutputKind::File(FileSettings {
            dynamic: Some(d), ..
        }) = &o.kind
        else {
            continue;
        };
        for (other, path) in &named {
            if *other == o.name || !d.template.could_render(path) {
                continue;
            }
            let (file, line, column) = output_place(files, &o.name);
            errors.push(ConfigError {
                file,
                line,
                column,
                message: format!(
                    "output `{}`: its templated path could render {}, the file of output `{other}`, so a sender could write into it past the rules (and max_age_days could delete it)",
                    o.name,
                    path.display()
                ),
                hint: Some(format!(
                    "give the templated files a directory of their own, such as {}/remote/{{host}}.log",
                    d.template.base().display()
                )),
            });
        }
    }
}

/// Two templated outputs that could render one file (`/var/log/hosts/{host}.log` and
/// `/var/log/hosts/{tag}.log`: a host and a tag both named `cron`) would write it together,
/// past each one's rules, and rotate and sweep each other's files: refuse the pair, naming
/// both outputs and a file both could write ([`PathTemplate::collision`]).
///
/// [`PathTemplate::collision`]: crate::render::template::PathTemplate::collision
pub(super) fn check_templates_apart(
    files: &[ParsedFile],
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let templated: Vec<(&str, &FileSettings, &DynamicSettings)> = outputs
        .iter()
        .filter_map(|o| match &o.kind {
            OutputKind::File(
                f @ FileSettings {
                    dynamic: Some(d), ..
                },
            ) => Some((o.name.as_str(), f, d)),
            _ => None,
        })
        .collect();
    for (i, (name, f, d)) in templated.iter().enumerate() {
        for (first, first_f, first_d) in &templated[..i] {
            if first_f.path == f.path {
                // One path twice: `check_unique_paths` says so.
                continue;
            }
            let Some(both) = d.template.collision(&first_d.template) else {
                continue;
            };
            let (file, line, column) = output_place(files, name);
            errors.push(ConfigError {
                file,
                line,
                column,
                message: format!(
                    "outputs `{first}` ({}) and `{name}` ({}) could write the same file, such as {}: a sender could write into the other output's file past the rules, and each would rotate and sweep the other's files",
                    first_f.path.display(),
                    f.path.display(),
                    String::from_utf8_lossy(&both)
                ),
                hint: Some(
                    "give each templated output its own directory, or a literal prefix or suffix the other's fields cannot render, such as /var/log/hosts/{host}.log and /var/log/tags/{tag}.log"
                        .into(),
                ),
            });
        }
    }
}

/// The file, line and column of `[output.NAME]`'s key (for errors about a whole output).
pub(super) fn output_place(files: &[ParsedFile], name: &str) -> (PathBuf, usize, usize) {
    files
        .iter()
        .find_map(|pf| {
            pf.raw
                .output
                .keys()
                .find(|k| k.get_ref() == name)
                .map(|k| (pf, k.span()))
        })
        .map(|(pf, span)| {
            let e = SourceFile {
                path: &pf.path,
                text: &pf.text,
            }
            .error(Some(span), "", None);
            (e.file, e.line, e.column)
        })
        .unwrap_or_default()
}

/// `[template.NAME]`'s template, or an error on its text.
pub(super) fn named_template(
    check: &mut Check<'_>,
    raw: &super::raw::RawTemplate,
) -> Option<Arc<LineTemplate>> {
    match LineTemplate::parse(raw.text.get_ref()) {
        Ok(t) => Some(Arc::new(t)),
        Err(e) => {
            check.err(raw.text.span(), e.to_string(), TEMPLATE_HINT);
            None
        }
    }
}

const TEMPLATE_HINT: &str = "write text with fields in braces, such as \"{time} {host} {tag}: {fields.user:-} {msg}\" (logwell.toml(5), TEMPLATES)";

/// An output's `template`: inline text (it has a `{`), or the name of a `[template.NAME]`.
/// `json_fields = ["time", "host", "message=msg", "fields.user"]`: a line template writing
/// one JSON object with these members, in this order. A member is `NAME=SOURCE`, or a source
/// alone, named after it (`fields.req.ip` is `ip`, `sd.origin.ip` is `ip`). Times are RFC
/// 3339 strings; an absent value is `null`.
fn json_fields_template(
    check: &mut Check<'_>,
    raw: &RawOutput,
    fields: &toml::Spanned<Vec<String>>,
) -> Option<Arc<LineTemplate>> {
    if let Some(t) = &raw.template {
        check.err(
            t.span(),
            "`template` and `json_fields` both say what a line is",
            "keep one: json_fields for a JSON object, template for any other line",
        );
        return None;
    }
    if let Some(f) = raw.format.as_ref().filter(|f| f.get_ref() != "json") {
        check.err(
            f.span(),
            format!(
                "`json_fields` writes JSON, but `format = \"{}\"`",
                f.get_ref()
            ),
            "remove `format`, or set it to \"json\"",
        );
        return None;
    }
    let mut text = String::from("{{");
    let mut names = Vec::new();
    for (i, entry) in fields.get_ref().iter().enumerate() {
        let (name, source) = match entry.split_once('=') {
            Some((n, s)) => (n.trim().to_string(), s.trim()),
            None => {
                let s = entry.trim();
                (s.rsplit('.').next().unwrap_or(s).to_string(), s)
            }
        };
        if name.is_empty() || source.is_empty() || source.contains(['{', '}', ':']) {
            check.err(
                fields.span(),
                format!("`{entry}` is not a member"),
                "write a source (host, msg, time, fields.user, sd.origin.ip, ...) or NAME=SOURCE (\"message=msg\")",
            );
            return None;
        }
        if names.contains(&name) {
            check.err(
                fields.span(),
                format!("`json_fields` names `{name}` twice"),
                "rename one: \"NAME=SOURCE\"",
            );
            return None;
        }
        if i > 0 {
            text.push(',');
        }
        let key = serde_json::to_string(&name).unwrap_or_default();
        text.push_str(&key.replace('{', "{{").replace('}', "}}"));
        text.push(':');
        match source {
            "time" | "recv" => text.push_str(&format!("\"{{{source}:rfc3339}}\"")),
            _ => text.push_str(&format!("{{{source}:json}}")),
        }
        names.push(name);
    }
    text.push_str("}}");
    match LineTemplate::parse(&text) {
        Ok(t) => Some(Arc::new(t)),
        Err(e) => {
            check.err(
                fields.span(),
                format!("`json_fields`: {e}"),
                "sources are those of templates: host, tag, procid, msgid, facility, severity, pri, msg, input, peer, tls_peer, time, recv, sd.ID.PARAM, fields.NAME",
            );
            None
        }
    }
}

pub(super) fn output_template(
    check: &mut Check<'_>,
    raw: &RawOutput,
    named: &BTreeMap<String, Arc<LineTemplate>>,
) -> Option<Arc<LineTemplate>> {
    if let Some(fields) = &raw.json_fields {
        return json_fields_template(check, raw, fields);
    }
    let t = raw.template.as_ref()?;
    let text = t.get_ref();
    if text.contains('{') {
        return match LineTemplate::parse(text) {
            Ok(parsed) => Some(Arc::new(parsed)),
            Err(e) => {
                check.err(t.span(), e.to_string(), TEMPLATE_HINT);
                None
            }
        };
    }
    if let Some(found) = named.get(text) {
        return Some(found.clone());
    }
    let known: Vec<&str> = named.keys().map(String::as_str).collect();
    let hint = if known.is_empty() {
        format!("declare [template.{text}] with text = \"...\", or write the template here")
    } else {
        format!(
            "declare [template.{text}], or use one of: {}",
            known.join(", ")
        )
    };
    check.err(t.span(), format!("no template is named `{text}`"), hint);
    None
}
