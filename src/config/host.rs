//! Checks that ask the host, kept apart from the pure checks of the other builders: the
//! system host name, the worker's user ([`resolve_user`]), the owner and group of a file
//! output, whether the privilege-separated worker could list a templated output's
//! directories, and `[follow] token_file`'s token. Each one calls `nix`'s user and group
//! lookups, [`crate::host`] or the file system (the listing check's permission arithmetic,
//! [`dir_listable`], is pure and tested on its own); nothing here parses a section. The
//! configuration files are read in `load`, TLS files in `tls`.

use std::collections::BTreeMap;

use toml::Spanned;

use super::check::Check;
use super::error::{ConfigError, SourceFile};
use super::load::ParsedFile;
use super::outputs::output_place;
use super::raw::RawOutput;
use super::settings::{DaemonSettings, InputKind, InputSettings, OutputKind, OutputSettings};

/// Looks the worker's user up when privilege separation will happen (on, and running as
/// root). A missing user is an error that says how to create it.
pub(super) fn resolve_user(
    daemon: &mut DaemonSettings,
    files: &[ParsedFile],
) -> Option<ConfigError> {
    if !daemon.privsep || !crate::host::fsops::privileged() {
        return None;
    }
    // Point at the `user` (or `privsep`) key when one was written, else at the main file.
    let place = files.iter().rev().find_map(|f| {
        let d = f.raw.daemon.as_ref()?;
        let span = d
            .user
            .as_ref()
            .map(|u| u.span())
            .or(d.privsep.as_ref().map(|p| p.span()))?;
        Some((f, span))
    });
    let problem = match nix::unistd::User::from_name(&daemon.user) {
        Ok(Some(u)) if u.uid.is_root() => format!("user `{}` is root", daemon.user),
        Ok(Some(u)) => {
            daemon.user_ids = Some((u.uid.as_raw(), u.gid.as_raw()));
            return None;
        }
        _ => format!(
            "no user `{}` for the privilege-separated worker",
            daemon.user
        ),
    };
    let hint = format!(
        "create it with `adduser --system --no-create-home --ingroup adm --home /nonexistent {}` (the package does), name another with `user = \"…\"` in [daemon], or set `privsep = false`",
        daemon.user
    );
    Some(match place {
        Some((f, span)) => SourceFile {
            path: &f.path,
            text: &f.text,
        }
        .error(Some(span), problem, Some(hint)),
        None => ConfigError {
            file: files.first().map(|f| f.path.clone()).unwrap_or_default(),
            line: 0,
            column: 0,
            message: problem,
            hint: Some(hint),
        },
    })
}

pub(super) fn default_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.split('.').next().unwrap_or_default().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Under privilege separation the worker lists a templated output's directories itself
/// (rotation finds a file's generations, history and follow read them) while the parent
/// creates them with `dir_mode`, the files' owner and their group (`adm` by default as
/// root). A combination the worker cannot list would leave files that never rotate: refuse
/// it with what to change.
pub(super) fn check_worker_can_list(
    files: &[ParsedFile],
    daemon: &DaemonSettings,
    inputs: &BTreeMap<String, InputSettings>,
    outputs: &[OutputSettings],
    errors: &mut Vec<ConfigError>,
) {
    let Some((uid, gid)) = daemon.user_ids else {
        return; // no privilege separation: this process lists what it creates
    };
    let journal = inputs
        .values()
        .any(|i| matches!(i.kind, InputKind::Journal(_)));
    let groups = crate::host::worker_groups(gid, journal);
    for o in outputs {
        let OutputKind::File(f) = &o.kind else {
            continue;
        };
        let Some(d) = &f.dynamic else { continue };
        if dir_listable(d.dir_mode, f.owner, f.group, uid, &groups) {
            continue;
        }
        let (file, line, column) = output_place(files, &o.name);
        let group = f
            .group
            .and_then(|g| nix::unistd::Group::from_gid(g.into()).ok().flatten())
            .map_or_else(|| format!("{:?}", f.group), |g| g.name);
        errors.push(ConfigError {
            file,
            line,
            column,
            message: format!(
                "output `{}`: its directories (dir_mode = \"0{:o}\", group `{group}`) could not be listed by the worker `{}`, so its files could not rotate",
                o.name, d.dir_mode, daemon.user
            ),
            hint: Some(format!(
                "use a group the worker has (group = \"adm\", the default), or give others read and search (dir_mode = \"0{:o}\")",
                d.dir_mode | 0o055
            )),
        });
    }
}

/// Whether a directory of `mode`, `owner` and `group` can be listed (read and searched) by
/// `uid` with `groups`, by the permission bits that apply to it.
pub(crate) fn dir_listable(
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
    uid: u32,
    groups: &[u32],
) -> bool {
    let bits = if owner == Some(uid) {
        mode >> 6
    } else if group.is_some_and(|g| groups.contains(&g)) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o5 == 0o5
}

/// A file output's `owner` and `group` as ids, looked up on this system; as root (or the
/// privilege-separated worker) root and `adm` when unset. An unknown name, or an `owner`
/// set when not running as root, is an error.
pub(super) fn owner_and_group(
    check: &mut Check<'_>,
    raw: &RawOutput,
) -> (Option<u32>, Option<u32>) {
    // Root, or the privilege-separated worker whose files the root parent creates.
    let root = crate::host::fsops::privileged();
    let owner = match &raw.owner {
        Some(o) => match nix::unistd::User::from_name(o.get_ref()) {
            Ok(Some(u)) => Some(u.uid.as_raw()),
            _ => {
                check.err(
                    o.span(),
                    format!("no user `{}` on this system", o.get_ref()),
                    "create the user or name an existing one",
                );
                None
            }
        },
        None => root.then_some(0),
    };
    let group = match &raw.group {
        Some(g) => match nix::unistd::Group::from_name(g.get_ref()) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                check.err(
                    g.span(),
                    format!("no group `{}` on this system", g.get_ref()),
                    "create the group or name an existing one",
                );
                None
            }
        },
        None if root => Some(
            nix::unistd::Group::from_name("adm")
                .ok()
                .flatten()
                .map_or(0, |g| g.gid.as_raw()),
        ),
        None => None,
    };
    if !root {
        if let Some(o) = &raw.owner {
            if owner.is_some_and(|u| u != nix::unistd::geteuid().as_raw()) {
                check.err(
                    o.span(),
                    "`owner` can only be set when logwelld runs as root",
                    "remove it, or run logwelld as root",
                );
            }
        }
    }
    (owner, group)
}

/// `[follow] token_file`'s token, read from the file; too short or unreadable is an error.
pub(super) fn read_token_file(check: &mut Check<'_>, p: &Spanned<String>) -> Option<String> {
    match std::fs::read_to_string(p.get_ref()) {
        Ok(t) if t.trim().len() >= 16 => Some(t.trim().to_string()),
        Ok(_) => {
            check.err(
                p.span(),
                format!("the token in {} is shorter than 16 characters", p.get_ref()),
                "use a long random one: `openssl rand -hex 32 > FILE`",
            );
            None
        }
        Err(e) => {
            check.err(
                p.span(),
                format!("cannot read {}: {e}", p.get_ref()),
                "create it (`openssl rand -hex 32 > FILE`, mode 0600) or fix the path",
            );
            None
        }
    }
}

/// The packages that own each of `paths`, as dpkg knows them: the `.list` files of
/// `/var/lib/dpkg/info` (what `dpkg-query -S` reads). A path no package owns, or every path
/// where dpkg is missing, is absent.
pub(super) fn package_owners(
    paths: &[std::path::PathBuf],
) -> BTreeMap<std::path::PathBuf, Vec<String>> {
    package_owners_in(std::path::Path::new("/var/lib/dpkg/info"), paths)
}

fn package_owners_in(
    info: &std::path::Path,
    paths: &[std::path::PathBuf],
) -> BTreeMap<std::path::PathBuf, Vec<String>> {
    let mut out: BTreeMap<std::path::PathBuf, Vec<String>> = BTreeMap::new();
    if paths.is_empty() {
        return out;
    }
    let Ok(entries) = std::fs::read_dir(info) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "list") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        // `haproxy.list`, or `libc6:amd64.list` for a multi-arch package.
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let package = stem
            .as_deref()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        for line in text.lines() {
            if let Some(path) = paths.iter().find(|q| q.as_os_str() == line) {
                out.entry(path.clone())
                    .or_default()
                    .push(package.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod package_tests {
    #[test]
    fn owners_are_read_from_dpkgs_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("haproxy.list"),
            "/.\n/etc\n/etc/rsyslog.d/49-haproxy.conf\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rsyslog.list"), "/etc/rsyslog.conf\n").unwrap();
        std::fs::write(
            dir.path().join("ufw:all.list"),
            "/etc/rsyslog.d/20-ufw.conf\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("haproxy.md5sums"),
            "/etc/rsyslog.d/x.conf\n",
        )
        .unwrap();
        let paths: Vec<std::path::PathBuf> = [
            "/etc/rsyslog.d/49-haproxy.conf",
            "/etc/rsyslog.d/20-ufw.conf",
            "/etc/rsyslog.d/mine.conf",
            "/etc/rsyslog.d/x.conf",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .collect();
        let owners = super::package_owners_in(dir.path(), &paths);
        assert_eq!(owners.len(), 2, "{owners:?}");
        assert_eq!(owners[&paths[0]], ["haproxy"]);
        assert_eq!(owners[&paths[1]], ["ufw"]);
    }
}
