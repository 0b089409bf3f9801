//! `logwell import-rsyslog`: an rsyslog configuration (and the files it includes) translated
//! into logwell's TOML on stdout, with the report on stderr: what was not translated and
//! why, and what differs in meaning. `--check` then sends sample messages through both rule
//! sets, rsyslog's as [`crate::config::rsyslog::eval`] reads them and the translation as
//! logwell routes it, and shows each message whose destinations differ.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::rsyslog::{self, Options};

/// Arguments of `logwell import-rsyslog`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The rsyslog configuration; the files its `$IncludeConfig` lines name are read too.
    #[arg(default_value = "/etc/rsyslog.conf", value_name = "FILE")]
    pub file: PathBuf,
    /// Instead of the TOML, send sample messages through rsyslog's rules and the
    /// translation, and show where each goes when they differ: the messages of this file (one
    /// syslog line each, `<PRI>` included; `-` for stdin), or, with `generated`, messages
    /// made from every facility and severity and the values the filters compare.
    #[arg(long, value_name = "MESSAGES")]
    pub check: Option<String>,
    /// With `--check`: print every message's destinations, not only the differences.
    #[arg(long, requires = "check")]
    pub verbose: bool,
}

/// Translates, or checks; `Err` when the file cannot be read or `--check` found differences.
pub fn run(args: &ImportArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let files = vec![(args.file.clone(), text)];
    let t = rsyslog::translate(&files, &Options::default(), &mut read_include);
    let Some(check) = &args.check else {
        println!(
            "# Translated from {} by `logwell import-rsyslog`.\n# Review it, then install it as /etc/logwell/logwell.toml or a file in /etc/logwell/conf.d/.\n",
            args.file.display()
        );
        print!("{}", t.toml);
        for n in &t.notes {
            eprintln!("{n}");
        }
        eprintln!(
            "{}: {} rules, {} outputs, {} inputs translated; {} lines not translated, {} that differ",
            args.file.display(),
            t.rules,
            t.outputs,
            t.inputs,
            t.notes
                .iter()
                .filter(|n| n.kind == rsyslog::NoteKind::NotTranslated)
                .count(),
            t.notes
                .iter()
                .filter(|n| n.kind == rsyslog::NoteKind::Differs)
                .count(),
        );
        return Ok(());
    };
    let messages = if check == "generated" {
        rsyslog::eval::sample_messages(&files, &mut read_include)
    } else if check == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read the messages: {e}"))?
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        std::fs::read_to_string(check)
            .map_err(|e| format!("cannot read {check}: {e}"))?
            .lines()
            .map(str::to_string)
            .collect()
    };
    let differences = rsyslog::eval::compare(&files, &t.toml, &messages, &mut read_include)?;
    let mut count = 0;
    for d in &differences {
        if d.rsyslog != d.logwell {
            count += 1;
        } else if !args.verbose {
            continue;
        }
        println!("{}", d.message);
        println!("  rsyslog: {}", join(&d.rsyslog));
        println!("  logwell: {}", join(&d.logwell));
    }
    eprintln!(
        "{} messages checked: {} go to the same places, {count} differ",
        differences.len(),
        differences.len() - count
    );
    if count > 0 {
        return Err(format!("{count} messages are routed differently"));
    }
    Ok(())
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "(nowhere)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The files an `$IncludeConfig` pattern names, in name order.
fn read_include(pattern: &str) -> Vec<(PathBuf, String)> {
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    if Path::new(pattern).is_dir() {
        paths = std::fs::read_dir(pattern)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}
