//! `logwell cat` on a real file set in a temporary directory: rotated generations (plain,
//! gzip, zstd) and the live file read as one stream, `-n`, `--since`, errors and exit codes.
//! No daemon is needed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

fn line(t: DateTime<Utc>, i: usize) -> String {
    format!(
        "{} host app[1]: line {i}\n",
        t.to_rfc3339_opts(SecondsFormat::Micros, false)
    )
}

/// Lines `range`, line `i` stamped `i` minutes after `t0`.
fn lines(t0: DateTime<Utc>, range: std::ops::Range<usize>) -> String {
    range
        .map(|i| line(t0 + chrono::Duration::minutes(i as i64), i))
        .collect()
}

fn put(dir: &Path, name: &str, data: &[u8], modified: DateTime<Utc>) {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    let at = SystemTime::from(modified) + Duration::from_secs(1);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// `syslog.3.zst` (lines 0–2), `syslog.2.gz` (3–5), `syslog.1` (6–8), `syslog` (9–11), line
/// `i` stamped `i` minutes after `t0`.
fn file_set(t0: DateTime<Utc>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let at = |m: i64| t0 + chrono::Duration::minutes(m);
    let zst = zstd::stream::encode_all(lines(t0, 0..3).as_bytes(), 3).unwrap();
    put(d, "syslog.3.zst", &zst, at(2));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines(t0, 3..6).as_bytes()).unwrap();
    put(d, "syslog.2.gz", &gz.finish().unwrap(), at(5));
    put(d, "syslog.1", lines(t0, 6..9).as_bytes(), at(8));
    put(d, "syslog", lines(t0, 9..12).as_bytes(), at(11));
    let live = d.join("syslog").to_str().unwrap().to_string();
    (dir, live)
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn cat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwell"))
        .arg("cat")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn cat_prints_every_generation_oldest_first() {
    let (_dir, live) = file_set(t0());
    assert_eq!(stdout(&cat(&[&live])), lines(t0(), 0..12));
}

#[test]
fn cat_last_lines_cross_generations() {
    let (_dir, live) = file_set(t0());
    assert_eq!(stdout(&cat(&[&live, "-n", "2"])), lines(t0(), 10..12));
    assert_eq!(stdout(&cat(&[&live, "-n", "7"])), lines(t0(), 5..12));
    assert_eq!(stdout(&cat(&["-n", "100", &live])), lines(t0(), 0..12));
    assert_eq!(stdout(&cat(&[&live, "--lines", "0"])), "");
}

#[test]
fn cat_since_a_time() {
    let (_dir, live) = file_set(t0());
    assert_eq!(
        stdout(&cat(&[&live, "--since", "2026-11-21T09:04:00Z"])),
        lines(t0(), 4..12)
    );
    assert_eq!(
        stdout(&cat(&[&live, "--since", "2026-11-21T10:07:00+01:00"])),
        lines(t0(), 7..12)
    );
    assert_eq!(
        stdout(&cat(&[&live, "--since", "2026-11-21T09:04:00Z", "-n", "3"])),
        lines(t0(), 9..12)
    );
    assert_eq!(
        stdout(&cat(&[&live, "--since", "2026-11-22T00:00:00Z"])),
        ""
    );
}

#[test]
fn cat_since_relative_time() {
    // Line i is 12 - i hours old.
    let t0 = Utc::now() - chrono::Duration::hours(12);
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..12)
        .map(|i| line(t0 + chrono::Duration::hours(i as i64), i))
        .collect();
    let (old, new) = text.split_at(text.match_indices('\n').nth(5).unwrap().0 + 1);
    put(
        dir.path(),
        "syslog.1",
        old.as_bytes(),
        t0 + chrono::Duration::hours(5),
    );
    put(dir.path(), "syslog", new.as_bytes(), Utc::now());
    let live = dir.path().join("syslog");
    let out = stdout(&cat(&[live.to_str().unwrap(), "--since", "-150m"]));
    assert_eq!(
        out,
        text.lines()
            .skip(10)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let out = stdout(&cat(&[live.to_str().unwrap(), "--since", "-450m"]));
    assert_eq!(out.lines().count(), 7); // lines 5 to 11; line 4 is 8 hours old
}

#[test]
fn cat_bad_since_is_an_error() {
    let (_dir, live) = file_set(t0());
    let out = cat(&[&live, "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("logwell: bad --since `last tuesday`"),
        "{err}"
    );
}

#[test]
fn cat_missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.log");
    let out = cat(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("logwell: {}: no such file", missing.display())),
        "{err}"
    );
    // Only rotated generations left: they are read.
    put(dir.path(), "nope.log.1", b"a\nb\n", t0());
    assert_eq!(stdout(&cat(&[missing.to_str().unwrap()])), "a\nb\n");
}

#[test]
fn cat_reports_a_damaged_generation_and_prints_the_rest() {
    let (dir, live) = file_set(t0());
    put(dir.path(), "syslog.2.gz", b"\x1f\x8bnot gzip", t0());
    let out = cat(&[&live]);
    assert_eq!(out.status.code(), Some(1));
    let mut expect = lines(t0(), 0..3);
    expect.push_str(&lines(t0(), 6..12));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("logwell: ") && err.contains("syslog.2.gz is damaged"),
        "{err}"
    );
}

#[test]
fn cat_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "syslog",
        lines(t0(), 0..100_000).as_bytes(),
        t0(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_logwell"))
        .arg("cat")
        .arg(dir.path().join("syslog"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // `| head -c 100`
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}
