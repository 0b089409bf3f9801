//! The error collector every builder in `config` writes to: [`Check`] holds one file's text
//! and the errors found in it, each with file, line, column and a hint, and the checks of
//! single values (numbers, sizes, modes, choices, addresses) that many sections share.
//! It owns no section: what a section means is built in `inputs`, `outputs`, `rules` and
//! the section files; what the host says is asked in `host`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::error::{ConfigError, SourceFile};
use super::load::ParsedFile;
use super::raw::{OneOrMany, Size};
use super::rotation::parse_size;

/// Collects errors for one file while building settings.
pub(crate) struct Check<'a> {
    src: SourceFile<'a>,
    pub(super) errors: Vec<ConfigError>,
}

impl<'a> Check<'a> {
    pub(super) fn new(file: &'a ParsedFile) -> Check<'a> {
        Check {
            src: SourceFile {
                path: &file.path,
                text: &file.text,
            },
            errors: Vec::new(),
        }
    }
}

impl Check<'_> {
    pub(crate) fn err(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let e = self.diagnostic(span, message, hint);
        self.errors.push(e);
    }

    /// A located message with a hint that is not an error (a warning).
    pub(crate) fn diagnostic(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.src.error(Some(span), message, Some(hint.into()))
    }

    pub(super) fn positive(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
    ) -> usize {
        self.bounded(v, key, default, i64::MAX as usize)
    }

    /// A positive number no larger than `max`.
    pub(crate) fn bounded(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: usize,
    ) -> usize {
        match v {
            None => default,
            Some(v) if *v.get_ref() > 0 && *v.get_ref() as u64 <= max as u64 => {
                *v.get_ref() as usize
            }
            Some(v) => {
                self.err(
                    v.span(),
                    format!("`{key}` must be a number from 1 to {max}"),
                    "remove the key to use the default",
                );
                default
            }
        }
    }

    pub(super) fn mode(&mut self, v: &Option<Spanned<String>>, default: u32) -> u32 {
        let Some(v) = v else { return default };
        match u32::from_str_radix(v.get_ref().trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o7777 => m,
            _ => {
                self.err(
                    v.span(),
                    format!("`mode = \"{}\"` is not an octal mode", v.get_ref()),
                    "write it as a string of octal digits, such as \"0640\"",
                );
                default
            }
        }
    }

    /// Records the first declaration of `kind` `name`; reports a second one with the place of
    /// the first. Returns whether this is the first.
    pub(super) fn declare(
        &mut self,
        declared: &mut BTreeMap<(&'static str, String), Declared>,
        kind: &'static str,
        name: &Spanned<String>,
        file: &std::path::Path,
    ) -> bool {
        let key = (kind, name.get_ref().clone());
        if let Some(first) = declared.get(&key) {
            let hint = format!(
                "the first is at {}:{}; rename one of them",
                first.file.display(),
                first.line
            );
            self.err(
                name.span(),
                format!("{kind} `{}` is declared twice", name.get_ref()),
                hint,
            );
            return false;
        }
        let line = self.src.error(Some(name.span()), "", None).line;
        declared.insert(
            key,
            Declared {
                file: file.to_path_buf(),
                line,
            },
        );
        true
    }

    pub(crate) fn not_for(
        &mut self,
        present: Option<Range<usize>>,
        key: &str,
        kind: &str,
        hint: &str,
    ) {
        if let Some(span) = present {
            self.err(
                span,
                format!("`{key}` does not apply to {kind} inputs"),
                hint.to_string(),
            );
        }
    }

    /// [`Check::not_for`] for each of `keys`: one kind's own keys, refused on another kind.
    pub(crate) fn not_for_each(
        &mut self,
        keys: &[(&str, Option<Range<usize>>)],
        kind: &str,
        hint: &str,
    ) {
        for (key, span) in keys {
            self.not_for(span.clone(), key, kind, hint);
        }
    }

    pub(crate) fn size(&mut self, v: &Option<Spanned<Size>>, key: &str) -> Option<u64> {
        let v = v.as_ref()?;
        let parsed = match v.get_ref() {
            Size::Bytes(n) if *n > 0 => Some(*n as u64),
            Size::Bytes(_) => None,
            Size::Text(t) => parse_size(t),
        };
        if parsed.is_none() {
            self.err(
                v.span(),
                format!("`{key}` is not a size"),
                "write a number of bytes or a string with a unit: \"100M\", \"1.5G\", \"512K\"",
            );
        }
        parsed
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let v = v.as_ref()?;
        let found = choices
            .iter()
            .find(|(name, _)| *name == v.get_ref())
            .map(|(_, t)| *t);
        if found.is_none() {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            self.err(
                v.span(),
                format!("`{key} = \"{}\"` is not one of the choices", v.get_ref()),
                format!("use {}", names.join(", ")),
            );
        }
        found
    }

    pub(super) fn range(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let v = v.as_ref()?;
        let n = *v.get_ref();
        if n < min || n > max {
            self.err(
                v.span(),
                format!("`{key}` must be from {min} to {max}"),
                "remove the key to use the default",
            );
            return None;
        }
        Some(n)
    }

    /// without a port takes it; without, the port is required.
    pub(crate) fn addresses(
        &mut self,
        list: &Spanned<OneOrMany>,
        example: &str,
        default_port: Option<u16>,
    ) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for a in list.get_ref().clone_vec() {
            match parse_address(&a, default_port) {
                Some(addr) => out.push(addr),
                None => self.err(
                    list.span(),
                    match default_port {
                        Some(_) => format!("`{a}` is not an IP address, with or without a port"),
                        None => format!("`{a}` is not an address with a port"),
                    },
                    format!("write it as {example}"),
                ),
            }
        }
        out
    }

    pub(super) fn bounded_ms(&mut self, v: &Option<Spanned<i64>>, key: &str, default: u64) -> u64 {
        match v {
            None => default,
            Some(v) if (1..=86_400_000).contains(v.get_ref()) => *v.get_ref() as u64,
            Some(v) => {
                self.err(
                    v.span(),
                    format!("`{key}` must be a number of milliseconds from 1 to 86400000"),
                    "remove the key to use the default",
                );
                default
            }
        }
    }

    pub(super) fn pick<T: Copy>(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> T {
        let Some(v) = v else { return default };
        match choices.iter().find(|(n, _)| *n == v.get_ref()) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.err(
                    v.span(),
                    format!("`{key} = \"{}\"` is not one of the choices", v.get_ref()),
                    format!("use {}", names.join(" or ")),
                );
                default
            }
        }
    }
}

/// Where a name was first declared, to report duplicates across files.
pub(super) struct Declared {
    file: PathBuf,
    line: usize,
}

/// `text` as a socket address; with `default_port`, an address alone (`0.0.0.0`, `::1`,
/// `[::1]`) takes that port.
fn parse_address(text: &str, default_port: Option<u16>) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let port = default_port?;
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip = bare.parse::<std::net::IpAddr>().ok()?;
    // A bracket is for IPv6 only, as in an address with a port.
    if bare.len() != text.len() && ip.is_ipv4() {
        return None;
    }
    Some(SocketAddr::new(ip, port))
}
