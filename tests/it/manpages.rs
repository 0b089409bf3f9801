//! The man pages under `man/` against the real definitions: every flag of `logwelld` and
//! `logwell` (read from their clap `Command`s) and every configuration key (read from the serde
//! structs through `logwell::config::keys`) must be documented, and `mandoc -T lint` and
//! `groff -ww` must find nothing to warn about. A key or flag added without its documentation
//! fails here, with its name.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

fn page(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// The page as a reader sees it: no font escapes, `\-` as `-`.
fn plain(roff: &str) -> String {
    roff.replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
        .replace("\\-", "-")
}

/// Whether `flag` (`--since`, `-n`) appears as a word of its own in `text`.
fn mentions_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + flag.len()..].chars().next();
        !matches!(before, Some(c) if c == '-' || c.is_alphanumeric())
            && !matches!(after, Some(c) if c == '-' || c == '_' || c.is_alphanumeric())
    })
}

/// Every visible subcommand and flag of `cmd` (help and version included) that `page` does
/// not mention, as `logwell cat --since`.
fn undocumented_flags(cmd: &mut clap::Command, page: &str) -> Vec<String> {
    fn walk(cmd: &clap::Command, path: &str, page: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let mut names = Vec::new();
            if let Some(l) = arg.get_long() {
                names.push(format!("--{l}"));
            }
            if let Some(s) = arg.get_short() {
                names.push(format!("-{s}"));
            }
            for n in names {
                if !mentions_flag(page, &n) {
                    missing.push(format!("{path} {n}"));
                }
            }
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && !page.contains(&sub_path) {
                missing.push(sub_path.clone());
            }
            if sub.get_name() != "help" {
                walk(sub, &sub_path, page, missing);
            }
        }
    }
    cmd.build();
    let mut missing = Vec::new();
    walk(cmd, cmd.get_name(), page, &mut missing);
    missing
}

#[test]
fn every_logwelld_flag_is_in_logwelld_8() {
    let (_, roff) = page("logwelld.8");
    let missing = undocumented_flags(&mut logwell::cli::logwelld::Args::command(), &plain(&roff));
    assert!(
        missing.is_empty(),
        "man/logwelld.8 does not document: {missing:?}"
    );
}

#[test]
fn every_logwell_subcommand_and_flag_is_in_logwell_1() {
    let (_, roff) = page("logwell.1");
    let missing = undocumented_flags(&mut logwell::cli::Args::command(), &plain(&roff));
    assert!(
        missing.is_empty(),
        "man/logwell.1 does not document: {missing:?}"
    );
}

/// The check itself finds what is missing (so the tests above can fail).
#[test]
fn the_flag_check_names_what_is_missing() {
    let missing = undocumented_flags(
        &mut logwell::cli::Args::command(),
        "logwell stats --json --socket --config -c --help -h",
    );
    assert!(missing.contains(&"logwell cat".to_string()), "{missing:?}");
    assert!(
        missing.contains(&"logwell cat --since".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"logwell --version".to_string()),
        "{missing:?}"
    );
    assert!(!missing.iter().any(|m| m.contains("stats")), "{missing:?}");
    assert!(
        !missing.iter().any(|m| m.contains("generate")),
        "hidden: {missing:?}"
    );
    assert!(!mentions_flag("--lines", "-n") && mentions_flag("(-n N)", "-n"));
}

/// The `.SH` section of the roff `page` whose title starts with `[table`, up to the next `.SH`.
fn section<'a>(page: &'a str, title: &str) -> Option<&'a str> {
    let start = page.find(&format!("\n.SH {title}"))? + 1;
    let rest = &page[start..];
    let end = rest[4..].find("\n.SH ").map_or(rest.len(), |i| i + 4);
    Some(&rest[..end])
}

/// Every key of every table in `raw.rs` that `page` does not describe in its table's section,
/// as `output.NAME.sync`. A key is described by a `.TP` entry whose tag (the next line)
/// names it in bold: `\fBkey\fR = ...` or `\fBowner\fR, \fBgroup\fR = ...`.
fn undocumented_keys(page: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for t in logwell::config::keys::tables() {
        if t.table.is_empty() {
            // The top-level keys are the tables: each has a section.
            for k in t.keys {
                let title = if *k == "rule" {
                    "[[rule]]".to_string()
                } else {
                    format!("[{k}")
                };
                if section(page, &title).is_none() {
                    missing.push(format!("[{k}] (a section `.SH {title}...`)"));
                }
            }
            continue;
        }
        // `[rule]` and `[follow.files]` are arrays of tables: `[[rule]]`.
        let title = format!("[{}]", t.table);
        let Some(text) = section(page, &title) else {
            missing.push(format!("{} (no section `.SH {title}`)", t.table));
            continue;
        };
        for k in t.keys {
            let bold = format!("\\fB{k}\\fR");
            let lines: Vec<&str> = text.lines().collect();
            let described = lines
                .windows(2)
                .any(|w| w[0] == ".TP" && w[1].contains(&bold));
            if !described {
                missing.push(format!("{}.{k}", t.table));
            }
        }
    }
    missing
}

#[test]
fn every_config_key_is_in_logwell_toml_5() {
    let (_, roff) = page("logwell.toml.5");
    let missing = undocumented_keys(&roff);
    assert!(
        missing.is_empty(),
        "man/logwell.toml.5 does not document: {missing:?}"
    );
}

#[test]
fn the_key_check_names_what_is_missing() {
    let page = ".TH X 5\n.SH [daemon]\n.TP\n\\fBhostname\\fR = \\fIstring\\fR\nThe name.\n.SH [retention]\n";
    let missing = undocumented_keys(page);
    assert!(
        missing.contains(&"daemon.state_dir".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"input.NAME (no section `.SH [input.NAME]`)".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"retention.max_disk_usage".to_string()),
        "{missing:?}"
    );
    assert!(
        !missing.contains(&"daemon.hostname".to_string()),
        "{missing:?}"
    );
}

fn run_linter(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it with scripts/deps.sh test")
        });
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn man_pages_lint_clean() {
    for name in ["logwelld.8", "logwell.1", "logwell.toml.5"] {
        let (path, _) = page(name);
        // mandoc's STYLE notes (lines over 80 bytes) are not warnings.
        let mandoc = run_linter("mandoc", &["-T", "lint", "-W", "warning"], &path);
        assert!(mandoc.trim().is_empty(), "mandoc -T lint {name}:\n{mandoc}");
        let groff = run_linter("groff", &["-ww", "-man", "-z"], &path);
        assert!(groff.trim().is_empty(), "groff -ww {name}:\n{groff}");
    }
}

#[test]
fn completions_come_from_the_clap_definitions() {
    let gen = |bin: &str, kind: &str| {
        let out = Command::new(bin)
            .args(["--generate", kind])
            .output()
            .unwrap();
        assert!(out.status.success(), "{bin} --generate {kind}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = gen(env!("CARGO_BIN_EXE_logwell"), "complete-bash");
    assert!(
        bash.contains("complete -F _logwell") && bash.contains("--since"),
        "{bash}"
    );
    let zsh = gen(env!("CARGO_BIN_EXE_logwelld"), "complete-zsh");
    assert!(
        zsh.starts_with("#compdef logwelld") && zsh.contains("--check-config"),
        "{zsh}"
    );
    let fish = gen(env!("CARGO_BIN_EXE_logwell"), "complete-fish");
    assert!(
        fish.contains("complete -c logwell") && fish.contains("rotate"),
        "{fish}"
    );
}
