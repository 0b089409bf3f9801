//! Building a `type = "file"` input's settings from its [`RawInput`]: the paths and glob
//! patterns it follows, what it excludes, where it starts, and what its messages say (tag,
//! facility, severity, the longest line). Every mistake is collected with its place and a
//! hint; the socket and journal keys a file input does not take are refused, and its own
//! keys are refused on every other kind ([`refuse_file_keys`]). Pure: no file is looked at.

use toml::Spanned;

use super::check::Check;
use super::raw::{span_of, OneOrMany, RawInput};
use super::settings::{FileInputSettings, InputKind, MultilineSettings, DEFAULT_MAX_LINE_BYTES};
use crate::message::{Facility, Severity};

/// The largest `max_line_bytes` accepted: a line is held whole until its end comes.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The file input's own keys, refused on every other kind.
pub(super) fn refuse_file_keys(check: &mut Check<'_>, raw: &RawInput, kind: &str) {
    let keys = [
        ("paths", span_of(&raw.paths)),
        ("exclude", span_of(&raw.exclude)),
        ("tag", span_of(&raw.tag)),
        ("facility", span_of(&raw.facility)),
        ("severity", span_of(&raw.severity)),
        ("max_line_bytes", span_of(&raw.max_line_bytes)),
        ("multiline", span_of(&raw.multiline)),
        ("max_open_files", span_of(&raw.max_open_files)),
        ("close_inactive_secs", span_of(&raw.close_inactive_secs)),
        ("ignore_older_secs", span_of(&raw.ignore_older_secs)),
        (
            "partial_line_timeout_ms",
            span_of(&raw.partial_line_timeout_ms),
        ),
    ];
    check.not_for_each(&keys, kind, "it applies to file inputs; remove it");
}

/// A `type = "file"` input.
pub(super) fn file_input_kind(check: &mut Check<'_>, raw: &RawInput) -> Option<InputKind> {
    let kind = "file";
    check.not_for(
        span_of(&raw.path),
        "path",
        kind,
        "a file input takes `paths`, a list of files and patterns",
    );
    check.not_for(
        span_of(&raw.max_message_size_bytes),
        "max_message_size_bytes",
        kind,
        "a file input cuts lines at `max_line_bytes`",
    );
    let socket_keys = [
        ("listen", span_of(&raw.listen)),
        ("mode", span_of(&raw.mode)),
        ("receive_buffer_bytes", span_of(&raw.receive_buffer_bytes)),
        ("max_connections", span_of(&raw.max_connections)),
        ("idle_timeout_secs", span_of(&raw.idle_timeout_secs)),
        ("use_sender_timestamp", span_of(&raw.use_sender_timestamp)),
    ];
    check.not_for_each(&socket_keys, kind, "it applies to socket inputs; remove it");
    let journal_keys = [
        ("units", span_of(&raw.units)),
        ("identifiers", span_of(&raw.identifiers)),
        ("min_priority", span_of(&raw.min_priority)),
        ("directory", span_of(&raw.directory)),
        ("namespace", span_of(&raw.namespace)),
    ];
    check.not_for_each(
        &journal_keys,
        kind,
        "it applies to journal inputs; remove it",
    );
    let paths = match &raw.paths {
        None => {
            check.err(
                raw.kind.span(),
                "a file input needs `paths`",
                "add paths = [\"/var/log/nginx/*.log\"] (files or glob patterns, absolute)",
            );
            Vec::new()
        }
        Some(p) if p.get_ref().clone_vec().is_empty() => {
            check.err(
                p.span(),
                "`paths` of a file input is empty, so it would read nothing",
                "list at least one file or pattern, such as \"/var/log/nginx/*.log\"",
            );
            Vec::new()
        }
        Some(p) => patterns(check, p, "paths"),
    };
    let exclude = raw
        .exclude
        .as_ref()
        .map(|e| patterns(check, e, "exclude"))
        .unwrap_or_default();
    let from_head = check.pick(&raw.from, "from", false, &[("tail", false), ("head", true)]);
    let tag = raw.tag.as_ref().and_then(|t| {
        let ok = !t.get_ref().is_empty()
            && t.get_ref().len() <= 48
            && t.get_ref()
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b'[');
        if !ok {
            check.err(
                t.span(),
                format!("`tag = \"{}\"` is not a usable tag", t.get_ref()),
                "use 1 to 48 printable characters without spaces, `:` or `[`, such as \"nginx\"",
            );
        }
        ok.then(|| t.get_ref().clone())
    });
    let facility = match &raw.facility {
        None => Facility::USER,
        Some(f) => Facility::from_name(f.get_ref()).unwrap_or_else(|| {
            check.err(
                f.span(),
                format!("unknown facility `{}`", f.get_ref()),
                "use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7",
            );
            Facility::USER
        }),
    };
    let severity = match &raw.severity {
        None => Severity::NOTICE,
        Some(s) => Severity::from_name(s.get_ref()).unwrap_or_else(|| {
            check.err(
                s.span(),
                format!("unknown severity `{}`", s.get_ref()),
                "use emerg, alert, crit, err, warning, notice, info or debug",
            );
            Severity::NOTICE
        }),
    };
    let max_line_bytes = check.bounded(
        &raw.max_line_bytes,
        "max_line_bytes",
        DEFAULT_MAX_LINE_BYTES,
        MAX_LINE_BYTES,
    );
    let multiline = raw
        .multiline
        .as_ref()
        .map(|m| multiline(check, m, max_line_bytes));
    let max_open_files = check.bounded(&raw.max_open_files, "max_open_files", 1024, 1 << 20);
    let close_inactive = std::time::Duration::from_secs(check.bounded(
        &raw.close_inactive_secs,
        "close_inactive_secs",
        300,
        86_400 * 365,
    ) as u64);
    let ignore_older = raw.ignore_older_secs.as_ref().map(|_| {
        std::time::Duration::from_secs(check.bounded(
            &raw.ignore_older_secs,
            "ignore_older_secs",
            1,
            86_400 * 3650,
        ) as u64)
    });
    let partial_line_timeout = raw.partial_line_timeout_ms.as_ref().map(|_| {
        std::time::Duration::from_millis(check.bounded(
            &raw.partial_line_timeout_ms,
            "partial_line_timeout_ms",
            1,
            86_400_000,
        ) as u64)
    });
    let syslog_lines = check.pick(
        &raw.format,
        "format",
        false,
        &[("plain", false), ("syslog", true)],
    );
    Some(InputKind::File(FileInputSettings {
        paths,
        exclude,
        from_head,
        tag,
        facility,
        severity,
        max_line_bytes,
        multiline,
        max_open_files,
        close_inactive,
        ignore_older,
        partial_line_timeout,
        syslog_lines,
    }))
}

/// `[input.NAME.multiline]`: one of `start` and `continue` (valid regexes), the bounds.
fn multiline(
    check: &mut Check<'_>,
    m: &Spanned<super::raw::RawMultiline>,
    max_line_bytes: usize,
) -> MultilineSettings {
    let raw = m.get_ref();
    let mut regex = |v: &Option<Spanned<String>>, key: &str| {
        let v = v.as_ref()?;
        match regex::bytes::Regex::new(v.get_ref()) {
            Ok(_) => Some(v.get_ref().clone()),
            Err(e) => {
                check.err(
                    v.span(),
                    format!("`multiline.{key}` is not a valid regex: {e}"),
                    "write a Rust regex, such as \"^\\d{4}-\\d{2}-\\d{2} \" for lines that start with a date",
                );
                None
            }
        }
    };
    let start = regex(&raw.start, "start");
    let continues = regex(&raw.continues, "continue");
    let (start, continues) = match (start, continues, &raw.start, &raw.continues) {
        (_, _, Some(_), Some(c)) => {
            check.err(
                c.span(),
                "`multiline` takes `start` or `continue`, not both",
                "keep `start` (a record's first line) or `continue` (the lines that join it)",
            );
            (None, None)
        }
        // Neither: indented lines join the one before (stack traces, tracebacks' frames).
        (None, None, None, None) => (None, Some(r"^[ \t]".to_string())),
        (s, c, _, _) => (s, c),
    };
    let timeout_ms = match &raw.timeout_ms {
        None => 1000,
        Some(v) if (1..=600_000).contains(v.get_ref()) => *v.get_ref() as u64,
        Some(v) => {
            check.err(
                v.span(),
                "`multiline.timeout_ms` must be from 1 to 600000",
                "remove it to use the default (1000)",
            );
            1000
        }
    };
    MultilineSettings {
        start,
        continues,
        timeout: std::time::Duration::from_millis(timeout_ms),
        max_lines: check.bounded(&raw.max_lines, "multiline.max_lines", 500, 1_000_000),
        max_bytes: check.bounded(
            &raw.max_bytes,
            "multiline.max_bytes",
            max_line_bytes.clamp(1 << 20, MAX_LINE_BYTES),
            MAX_LINE_BYTES,
        ),
    }
}

/// The patterns of `paths` or `exclude`: absolute, valid globs (`**` for any depth).
fn patterns(check: &mut Check<'_>, list: &Spanned<OneOrMany>, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in list.get_ref().clone_vec() {
        if !p.starts_with('/') {
            check.err(
                list.span(),
                format!("`{key}`: `{p}` is not an absolute path"),
                "write the whole path, starting with /, such as \"/var/log/nginx/*.log\"",
            );
        } else if let Err(e) = glob::Pattern::new(&p) {
            check.err(
                list.span(),
                format!("`{key}`: `{p}` is not a valid pattern: {}", e.msg),
                "use `*`, `?` and `[abc]` within one path component, `**` alone between slashes for any depth (\"/srv/**/*.log\"); escape a literal `[` as `[[]`",
            );
        } else if p.ends_with('/') {
            check.err(
                list.span(),
                format!("`{key}`: `{p}` names a directory"),
                format!("name the files in it, such as \"{p}*.log\""),
            );
        } else {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{load_texts, InputKind};

    fn errors(text: &str) -> String {
        match load_texts(vec![("t.toml".into(), text.to_string())]) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let s = load_texts(vec![(
            "t.toml".into(),
            "[input.web]\ntype = \"file\"\npaths = [\"/var/log/nginx/*.log\"]\n".to_string(),
        )])
        .unwrap();
        let InputKind::File(f) = &s.inputs[0].kind else {
            panic!("{:?}", s.inputs[0].kind)
        };
        assert_eq!(f.paths, ["/var/log/nginx/*.log"]);
        assert!(!f.from_head);
        assert_eq!(f.tag, None);
        assert_eq!(f.facility.name(), "user");
        assert_eq!(f.severity.name(), "notice");
        assert_eq!(f.max_line_bytes, 64 * 1024);
    }

    #[test]
    fn every_mistake_is_reported_with_a_hint() {
        let e = errors(
            "[input.web]\ntype = \"file\"\npaths = [\"var/log/x.log\", \"/a/x**/b.log\", \"/a/[b\"]\n\
             from = \"middle\"\nfacility = \"nope\"\nseverity = \"loud\"\ntag = \"a b\"\n\
             max_line_bytes = 0\nlisten = \"127.0.0.1:5\"\n",
        );
        for needle in [
            "not an absolute path",
            "`/a/x**/b.log` is not a valid pattern",
            "not a valid pattern",
            "`from = \"middle\"`",
            "unknown facility `nope`",
            "unknown severity `loud`",
            "not a usable tag",
            "`max_line_bytes` must be",
            "`listen` does not apply to file inputs",
            "hint:",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        assert!(e.contains("t.toml:3"), "{e}");
    }

    #[test]
    fn paths_are_required_and_file_keys_refused_elsewhere() {
        let e = errors("[input.web]\ntype = \"file\"\n");
        assert!(e.contains("needs `paths`"), "{e}");
        let e =
            errors("[input.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\npaths = [\"/x\"]\n");
        assert!(e.contains("`paths` does not apply to udp inputs"), "{e}");
    }
}
