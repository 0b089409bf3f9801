//! `logwell cat FILE [-n N] [--since TIME]`: a file's whole history, rotated and compressed
//! generations first, then the live file, printed as one stream, oldest first. Owns the
//! arguments, the time syntax of `--since` and the writing to standard output; reading and
//! positioning belong to [`crate::store::history`]. It does not need the daemon.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};

use crate::store::fileset;
use crate::store::history::{FileSet, Start};

/// Arguments of `logwell cat`.
#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// The live file (`/var/log/syslog`); its rotated generations beside it (`syslog.1`,
    /// `syslog.2.zst`, `syslog-20261121.gz`, …) are read before it.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print only the last N lines of the whole history (with --since: of the lines since).
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<u64>,
    /// Start at the first line at or after TIME: `2026-11-21T09:00:00+01:00`,
    /// `2026-11-21 09:00:00` (local time), `2026-11-21`, `today`, `yesterday`, or relative
    /// `-1h`, `-30m`, `-2d`.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
}

/// Prints the history. Damaged generations are reported on stderr and skipped; they make
/// the exit code 1 once everything else is printed.
pub fn run(args: &CatArgs) -> Result<(), String> {
    let since = match &args.since {
        Some(text) => Some(parse_since(text, Local::now())?),
        None => None,
    };
    let file = &args.file;
    if file.is_dir() {
        return Err(format!(
            "{} is a directory: give a log file, such as /var/log/syslog",
            file.display()
        ));
    }
    if !file.exists() && fileset::list(file).map_or(true, |g| g.is_empty()) {
        return Err(format!(
            "{}: no such file, and no rotated generations of it (give the live file's path, such as /var/log/syslog)",
            file.display()
        ));
    }
    let start = match (since, args.lines) {
        (Some(t), _) => Start::Since(t),
        (None, Some(n)) => Start::LastLines(n),
        (None, None) => Start::Beginning,
    };
    let reader = FileSet::new(file)
        .reader(start)
        .map_err(|e| e.to_string())?;
    // With both --since and -n: the last N of the lines since.
    let keep = since.and(args.lines);
    let mut ring: VecDeque<Vec<u8>> = VecDeque::new();
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut failed = 0;
    let written = (|| -> io::Result<()> {
        for item in reader {
            match item {
                Ok(line) => match keep {
                    Some(0) => {}
                    Some(n) => {
                        if ring.len() as u64 == n {
                            ring.pop_front();
                        }
                        ring.push_back(line.bytes);
                    }
                    None => {
                        out.write_all(&line.bytes)?;
                        out.write_all(b"\n")?;
                    }
                },
                Err(e) => {
                    out.flush()?;
                    eprintln!("logwell: {e}");
                    failed += 1;
                }
            }
        }
        for bytes in &ring {
            out.write_all(bytes)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    match written {
        // `logwell cat FILE | head`: the reader went away, which is no error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
        Ok(()) if failed > 0 => Err(format!(
            "{failed} generation(s) could not be read completely (see above); everything else was printed"
        )),
        Ok(()) => Ok(()),
    }
}

/// Reads `--since`: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` or `YYYY-MM-DDTHH:MM:SS` in local
/// time, `now`, `today`, `yesterday`, or `-N` followed by `s`, `m`, `h`, `d` or `w` (before
/// `now`).
pub fn parse_since(text: &str, now: DateTime<Local>) -> Result<DateTime<Utc>, String> {
    crate::follow::request::parse_time(text, now.with_timezone(&Utc)).map_err(|_| {
        format!(
            "bad --since `{text}`: use a time such as `2026-11-21T09:00:00+01:00`, `2026-11-21 09:00:00` (local), `today`, `yesterday`, or `-1h`, `-30m`, `-2d`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};

    fn now() -> DateTime<Local> {
        Local
            .from_local_datetime(
                &NaiveDateTime::parse_from_str("2026-11-21 12:30:00", "%Y-%m-%d %H:%M:%S").unwrap(),
            )
            .unwrap()
    }

    fn local(s: &str) -> DateTime<Utc> {
        Local
            .from_local_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn since_forms() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        for (text, expect) in [
            ("2026-11-21T09:00:00+01:00", utc("2026-11-21T08:00:00Z")),
            ("2026-11-21T09:00:00Z", utc("2026-11-21T09:00:00Z")),
            ("2026-11-21 09:00:00", local("2026-11-21 09:00:00")),
            ("2026-11-21T09:00:00", local("2026-11-21 09:00:00")),
            ("2026-11-21 09:00", local("2026-11-21 09:00:00")),
            ("2026-11-21", local("2026-11-21 00:00:00")),
            ("today", local("2026-11-21 00:00:00")),
            ("yesterday", local("2026-11-20 00:00:00")),
            ("now", local("2026-11-21 12:30:00")),
            ("-1h", local("2026-11-21 11:30:00")),
            ("-30m", local("2026-11-21 12:00:00")),
            ("-2d", local("2026-11-19 12:30:00")),
            ("-10s", local("2026-11-21 12:29:50")),
        ] {
            assert_eq!(parse_since(text, now()), Ok(expect), "{text}");
        }
    }

    #[test]
    fn since_rejects() {
        for text in [
            "",
            "-",
            "-h",
            "-1y",
            "-1.5h",
            "2026-13-01",
            "21/11/2026",
            "-99999999999999999d",
        ] {
            let e = parse_since(text, now()).unwrap_err();
            assert!(
                e.contains("bad --since") && e.contains("-1h"),
                "{text}: {e}"
            );
        }
    }
}
