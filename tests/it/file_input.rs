//! The file input (`type = "file"`) on real files: a writer appends numbered lines to two
//! files a glob matches while Debian's real `logrotate` rotates them (create + compress +
//! delaycompress, and copytruncate), a clean restart and a `kill -9` mid-stream, `from`,
//! an over-long line, and `--check-config`. At scale (`at_scale_*`), 1,000,000 numbered
//! lines over four files, rotated five times (create + compress + delaycompress, `dateext`
//! with and without compression, copytruncate), and the CPU one busy file costs beside 999
//! idle ones. Every count is of numbers read back from the output file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{self, Daemon};

const CONFIG: &str = r#"
[input.logs]
type = "file"
paths = ["{dir}/logs/*.log"]
"#;

/// Where every test's lines go: `out.json`.
const OUTPUT: &str = r#"
[output.json]
type = "file"
path = "{dir}/out.json"
format = "json"
flush_interval_ms = 20

[[rule]]
output = ["json"]
"#;

/// Starts logwelld on `inputs` and [`OUTPUT`], with an empty `logs/` directory and what
/// `setup` writes there.
fn start(inputs: &str, setup: impl FnOnce(&Path)) -> Daemon {
    Daemon::start_with(&format!("{inputs}{OUTPUT}"), |dir| {
        std::fs::create_dir(dir.join("logs")).unwrap();
        setup(dir)
    })
}

const LOGROTATE: &str = "/usr/sbin/logrotate";

/// Appends `text` and a newline to `path`, opening it for this line alone (as `echo >>`
/// does, so a rotation's new file gets the next line).
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{text}\n").as_bytes()).unwrap();
}

/// Appends a line to `path` once it exists: between logrotate's rename and its `create`, the
/// writer waits (bounded) for the new file.
fn append_existing(path: &Path, text: &str) {
    append_bytes_existing(path, format!("{text}\n").as_bytes());
}

/// Appends `bytes` with one `write` to `path` once it exists (see [`append_existing`]).
fn append_bytes_existing(path: &Path, bytes: &[u8]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::OpenOptions::new().append(true).open(path) {
            Ok(mut f) => {
                f.write_all(bytes).unwrap();
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} never came back",
                    path.display()
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

/// Waits until a writer thread counted at least `n` lines per file in `written`.
fn wait_written(written: &AtomicU64, n: u64) {
    util::wait_until(
        &format!("the writer to write {n} lines per file"),
        || written.load(Ordering::Relaxed) >= n,
        String::new,
    );
}

/// Creates `paths` (empty) where they do not exist, without touching those that do.
fn create_empty<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) {
    for p in paths {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
    }
}

/// A thread appending `a NNNNNN` to `a.log` and `b NNNNNN` to `b.log` in `logs/`, one line
/// each per step, until told to stop; `written` counts the steps done.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(dir: &Path, from: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(from));
        let (a, b) = (dir.join("logs/a.log"), dir.join("logs/b.log"));
        let (s, w) = (stop.clone(), written.clone());
        // The files exist before; then the writer only appends, as an application writing
        // under logrotate's `create` does: it never creates the file logrotate is about to
        // (logrotate's `create` fails when the file exists again between its rename and its
        // creation).
        create_empty([&a, &b]);
        let thread = std::thread::spawn(move || {
            let mut n = from;
            while !s.load(Ordering::Relaxed) {
                append_existing(&a, &format!("a {n:06}"));
                append_existing(&b, &format!("b {n:06}"));
                n += 1;
                w.store(n, Ordering::Relaxed);
                // A steady load (about 4,000 lines a second), not a flood.
                std::thread::sleep(Duration::from_micros(500));
            }
            n
        });
        Writer {
            stop,
            written,
            thread: Some(thread),
        }
    }

    /// Waits until at least `n` steps are written.
    fn wait_written(&self, n: u64) {
        wait_written(&self.written, n);
    }

    /// Stops the writer; how many lines each file got.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Every JSON line of `path`, parsed.
/// The `msg` of every line of a `json` output, in order.
fn messages(path: &Path) -> Vec<String> {
    json_lines(path)
        .iter()
        .map(|v| v["msg"].as_str().unwrap().to_string())
        .collect()
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `msg` of every JSON line of `path`, counted.
fn counted(path: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in json_lines(path) {
        *out.entry(v["msg"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

/// Waits until the output holds every line `a 0..n`, `b 0..n` (or `expected` lines in all);
/// returns the counts.
fn wait_all(d: &Daemon, n: u64, missing_allowed: usize) -> BTreeMap<String, usize> {
    let out = d.path("out.json");
    d.wait_for(&format!("{} lines in out.json", 2 * n), || {
        let c = counted(&out);
        let present = (0..n)
            .flat_map(|i| [format!("a {i:06}"), format!("b {i:06}")])
            .filter(|k| c.contains_key(k))
            .count();
        (present + missing_allowed >= 2 * n as usize).then_some(c)
    })
}

/// Waits for the lines of `n` steps and asserts each is in the output exactly once.
fn assert_each_once(d: &Daemon, n: u64) {
    let c = wait_all(d, n, 0);
    let (missing, repeated) = missing_and_repeated(&c, n);
    assert!(missing.is_empty(), "missing: {missing:?}\n{}", d.log());
    assert!(repeated.is_empty(), "repeated: {repeated:?}\n{}", d.log());
}

/// The lines of `n` steps missing from `c`, and those there more than once.
fn missing_and_repeated(c: &BTreeMap<String, usize>, n: u64) -> (Vec<String>, Vec<String>) {
    let expected: Vec<String> = (0..n)
        .flat_map(|i| [format!("a {i:06}"), format!("b {i:06}")])
        .collect();
    let missing = expected
        .iter()
        .filter(|k| !c.contains_key(*k))
        .cloned()
        .collect();
    let repeated = c
        .iter()
        .filter(|(_, &v)| v > 1)
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect();
    (missing, repeated)
}

fn logrotate_missing() -> Option<&'static str> {
    (!Path::new(LOGROTATE).exists())
        .then_some("Debian's logrotate is not installed (scripts/deps.sh test installs it)")
}

/// Runs `logrotate -f` on a config for every `logs/*.log` with `directives`.
fn logrotate(dir: &Path, directives: &str) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{0}/logs/*.log {{\n  rotate 5\n  missingok\n{directives}}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let out = Command::new(LOGROTATE)
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every line of every file of `logs/` (`.gz` ones decompressed).
fn on_disk(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        let p: PathBuf = e.unwrap().path();
        let mut text = String::new();
        let f = std::fs::File::open(&p).unwrap();
        if p.extension().is_some_and(|x| x == "gz") {
            flate2::read::MultiGzDecoder::new(f)
                .read_to_string(&mut text)
                .unwrap();
        } else {
            std::io::BufReader::new(f)
                .read_to_string(&mut text)
                .unwrap();
        }
        for l in text.lines() {
            *out.entry(l.to_string()).or_default() += 1;
        }
    }
    out
}

/// Two rotations by the real logrotate under write load; returns the daemon and the lines
/// each file got.
fn rotate_under_load(directives: &str) -> (Daemon, u64) {
    let d = start(CONFIG, |_| {});
    let w = Writer::start(d.dir.path(), 0);
    // New files matching the glob are found, and read from their start.
    d.wait_stat("inputs", "logs", "files", 2);
    for round in 1..=2u64 {
        w.wait_written(2000 * round);
        logrotate(d.dir.path(), directives);
    }
    w.wait_written(6000);
    let n = w.finish();
    (d, n)
}

#[test]
fn logrotate_create_compress_delaycompress_loses_and_repeats_nothing() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let (d, n) = rotate_under_load("  create\n  compress\n  delaycompress\n");
    assert_each_once(&d, n);
    // Two files, two rotations each.
    assert!(d.stat("inputs", "logs", "rotations") >= 4, "{}", d.log());
    assert_eq!(d.stat("inputs", "logs", "truncations"), 0);
    assert!(std::fs::metadata(d.path("logs/a.log.2.gz")).is_ok());
    // Each line carries the file it came from.
    let v = json_lines(&d.path("out.json")).remove(0);
    let path = v["fields"]["path"].as_str().unwrap();
    assert!(
        path.ends_with("/logs/a.log") || path.ends_with("/logs/b.log"),
        "{v}"
    );
    assert!(v["appname"] == "a" || v["appname"] == "b", "{v}");
}

#[test]
fn logrotate_copytruncate_loses_only_its_own_window() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let (d, n) = rotate_under_load("  copytruncate\n  compress\n  delaycompress\n");
    // What logrotate itself lost (appended between its copy and its truncation) is in no
    // file on disk: only that may be missing from the output.
    let disk = on_disk(d.dir.path());
    let lost_by_logrotate: Vec<String> = (0..n)
        .flat_map(|i| [format!("a {i:06}"), format!("b {i:06}")])
        .filter(|k| !disk.contains_key(k))
        .collect();
    let c = wait_all(&d, n, lost_by_logrotate.len());
    let (missing, repeated) = missing_and_repeated(&c, n);
    let beyond: Vec<&String> = missing
        .iter()
        .filter(|k| !lost_by_logrotate.contains(k))
        .collect();
    assert!(
        beyond.is_empty(),
        "lost though logrotate kept them: {beyond:?}\n{}",
        d.log()
    );
    assert!(repeated.is_empty(), "repeated: {repeated:?}\n{}", d.log());
    eprintln!(
        "copytruncate: {} of {} lines lost by logrotate's copy-then-truncate window",
        missing.len(),
        2 * n
    );
    assert!(d.stat("inputs", "logs", "truncations") >= 4, "{}", d.log());
}

#[test]
fn a_clean_restart_mid_stream_loses_and_repeats_nothing() {
    let mut d = start(CONFIG, |_| {});
    let w = Writer::start(d.dir.path(), 0);
    w.wait_written(1500);
    d.wait_stat("inputs", "logs", "received", 1000);
    d.stop();
    w.wait_written(3000);
    d.restart();
    w.wait_written(4500);
    let n = w.finish();
    assert_each_once(&d, n);
}

#[test]
fn a_rotation_while_stopped_is_read_from_the_checkpoint() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let mut d = start(CONFIG, |_| {});
    let w = Writer::start(d.dir.path(), 0);
    w.wait_written(1000);
    d.wait_stat("inputs", "logs", "received", 500);
    d.stop();
    // Written while stopped, then rotated away (a.log.1), then more into the new a.log.
    w.wait_written(2000);
    logrotate(d.dir.path(), "  create\n");
    w.wait_written(3000);
    d.restart();
    let n = w.finish();
    assert_each_once(&d, n);
    assert!(d.log().contains("rotated while stopped"), "{}", d.log());
}

#[test]
fn a_deleted_and_recreated_file_is_read_from_its_start() {
    let d = start(CONFIG, |_| {});
    let p = d.path("logs/app.log");
    let out = d.path("out.json");
    for round in 0..3 {
        // Deleted and made again at once: the new file often gets the freed inode, and
        // only its first bytes tell it from the old one.
        let _ = std::fs::remove_file(&p);
        for i in 0..3 {
            append(&p, &format!("round {round} line {i}"));
        }
        d.wait_for(&format!("round {round}"), || {
            counted(&out)
                .contains_key(&format!("round {round} line 2"))
                .then_some(())
        });
    }
    let c = counted(&out);
    assert_eq!(c.len(), 9, "{c:?}\n{}", d.log());
    assert!(c.values().all(|&n| n == 1), "{c:?}");
}

#[test]
fn kill_9_mid_stream_loses_nothing() {
    let mut d = start(CONFIG, |_| {});
    let w = Writer::start(d.dir.path(), 0);
    w.wait_written(1500);
    d.wait_stat("inputs", "logs", "received", 1000);
    d.signal(libc::SIGKILL);
    d.wait_exit();
    w.wait_written(3000);
    d.restart();
    w.wait_written(4500);
    let n = w.finish();
    let c = wait_all(&d, n, 0);
    let (missing, repeated) = missing_and_repeated(&c, n);
    assert!(missing.is_empty(), "missing: {missing:?}\n{}", d.log());
    // At most the last second's lines (the checkpoint's interval) come twice: about 4,000
    // a second per file at this writer's pace.
    assert!(repeated.len() <= 2 * 4000, "repeated: {}", repeated.len());
}

#[test]
fn from_head_reads_what_is_there_and_tail_only_what_comes() {
    let config = r#"
[input.head]
type = "file"
paths = ["{dir}/logs/head.log"]
from = "head"
tag = "h"
facility = "local3"
severity = "warning"

[input.tail]
type = "file"
paths = ["{dir}/logs/tail.log"]
"#;
    let d = start(config, |dir| {
        for f in ["head", "tail"] {
            let p = dir.join(format!("logs/{f}.log"));
            append(&p, &format!("{f} old 1"));
            // A CRLF line and invalid UTF-8, read as they are (less the CR).
            std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .unwrap()
                .write_all(&[format!("{f} old 2\r\n{f} ").as_bytes(), b"\xff\n"].concat())
                .unwrap();
        }
    });
    d.wait_stat("inputs", "tail", "files", 1);
    append(&d.path("logs/head.log"), "head new");
    append(&d.path("logs/tail.log"), "tail new");
    let out = d.path("out.json");
    d.wait_for("both new lines", || {
        let c = counted(&out);
        (c.contains_key("head new") && c.contains_key("tail new")).then_some(())
    });
    let c = counted(&out);
    assert!(
        c.contains_key("head old 1") && c.contains_key("head old 2"),
        "{c:?}"
    );
    assert!(!c.keys().any(|k| k.starts_with("tail old")), "{c:?}");
    // old 1, old 2 (its CR gone), the invalid UTF-8 line, new.
    let head_lines = c.keys().filter(|k| k.starts_with("head ")).count();
    assert_eq!(head_lines, 4, "{c:?}");
    let line = |msg: &str| {
        json_lines(&out)
            .into_iter()
            .find(|v| v["msg"] == msg)
            .unwrap()
    };
    let head = line("head new");
    assert_eq!(head["appname"], "h", "{head}");
    assert_eq!(head["facility"], "local3", "{head}");
    assert_eq!(head["severity"], "warning", "{head}");
    let tail = line("tail new");
    assert_eq!(tail["appname"], "tail", "{tail}");
    assert_eq!(tail["facility"], "user", "{tail}");
    assert_eq!(tail["severity"], "notice", "{tail}");
}

#[test]
fn an_over_long_line_is_cut_marked_and_counted() {
    let config = CONFIG.replace(
        "paths = [\"{dir}/logs/*.log\"]",
        "paths = [\"{dir}/logs/*.log\"]\nfrom = \"head\"\nmax_line_bytes = 100",
    );
    let d = start(&config, |_| {});
    let long = "x".repeat(1000);
    append(&d.path("logs/c.log"), &long);
    append(&d.path("logs/c.log"), "after");
    let out = d.path("out.json");
    d.wait_for("the line after the long one", || {
        counted(&out).contains_key("after").then_some(())
    });
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["msg"], "x".repeat(100));
    assert_eq!(lines[0]["truncated"], true, "{lines:?}");
    assert_eq!(lines[1]["msg"], "after");
    assert_eq!(d.stat("inputs", "logs", "truncated"), 1);
}

#[test]
fn check_config_refuses_a_bad_file_input_with_a_hint() {
    let (code, err) = util::check_config(
        "[input.web]\ntype = \"file\"\npaths = [\"logs/*.log\"]\nlisten = \"127.0.0.1:5514\"\n",
    );
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("not an absolute path"), "{err}");
    assert!(
        err.contains("`listen` does not apply to file inputs"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(err.contains(":3"), "{err}");
}

#[test]
fn multiline_records_from_a_real_python_traceback_and_java_stack_trace() {
    let d = start(
        r#"
[input.py]
type = "file"
paths = ["{dir}/logs/app.log"]
from = "head"

[input.py.multiline]
start = '^(DEBUG|INFO|WARNING|ERROR|CRITICAL):'

[input.java]
type = "file"
paths = ["{dir}/logs/shop.log"]
from = "head"

[input.java.multiline]
start = '^\d{4}-\d{2}-\d{2} '
"#,
        |_| {},
    );
    // Python's own logging writes the traceback.
    let app = d.path("logs/app.log");
    let script = format!(
        "import logging\nlogging.basicConfig(filename={:?}, level=logging.INFO)\n\
         logging.info('starting')\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.exception('order failed')\n\
         logging.warning('still here')\n",
        app.display().to_string()
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 is installed");
    assert!(status.success());
    // A stack trace as Java 17 printed it (tests/data/multiline/java-trace.log, captured from
    // `java Boom.java`): a log line, the trace with its cause, the next log line.
    let trace = include_str!("../data/multiline/java-trace.log");
    std::fs::write(d.path("logs/shop.log"), trace).unwrap();
    // The last record of each file is handed on after the timeout (1 s).
    let rows = |input: &str| -> Vec<String> {
        json_lines(&d.path("out.json"))
            .into_iter()
            .filter(|v| v["input"] == input)
            .map(|v| v["msg"].as_str().unwrap().to_string())
            .collect()
    };
    d.wait_for("every record", || {
        (rows("py").len() == 3 && rows("java").len() == 2).then_some(())
    });
    let py = rows("py");
    assert_eq!(py[0], "INFO:root:starting");
    assert!(
        py[1].starts_with("ERROR:root:order failed\nTraceback (most recent call last):\n")
            && py[1].ends_with("ZeroDivisionError: division by zero"),
        "{:?}",
        py[1]
    );
    assert_eq!(py[2], "WARNING:root:still here");
    let java = rows("java");
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(
        java[0],
        lines[..lines.len() - 1].join("\n"),
        "the log line and its whole trace"
    );
    assert_eq!(java[1], lines[lines.len() - 1]);
    // In the file, the record is one line: its LFs are escaped.
    let text = std::fs::read_to_string(d.path("out.json")).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(d.stat("inputs", "py", "multiline"), 1);
    assert_eq!(d.stat("inputs", "java", "multiline"), 1);
}

#[test]
fn multiline_settings_are_checked() {
    crate::util::refused(
        "[input.a]\ntype = \"file\"\npaths = [\"/var/log/a.log\"]\n[input.a.multiline]\nstart = \"(\"\n\n[input.b]\ntype = \"file\"\npaths = [\"/var/log/b.log\"]\n[input.b.multiline]\nstart = \"^x\"\ncontinue = \"^y\"\n\n[input.c]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5514\"\n[input.c.multiline]\nstart = \"^x\"\n",
        &[
            "`multiline.start` is not a valid regex",
            "`multiline` takes `start` or `continue`, not both",
            "`multiline` does not apply to tcp inputs",
        ],
    );
}

#[test]
fn a_multiline_record_held_at_a_stop_is_read_again_once() {
    let mut d = start(
        r#"
[input.app]
type = "file"
paths = ["{dir}/logs/app.log"]
from = "head"

[input.app.multiline]
start = '^S'
timeout_ms = 600000
"#,
        |_| {},
    );
    let log = d.path("logs/app.log");
    append(&log, "S0 first");
    append(&log, "S1 second");
    append(&log, "  its detail");
    // S0 is handed on once S1 begins; S1 waits for the next start.
    d.wait_lines(&d.path("out.json"), 1);
    assert!(d.stop().success());
    d.restart();
    append(&log, "S2 third");
    d.wait_lines(&d.path("out.json"), 2);
    let msgs = messages(&d.path("out.json"));
    assert_eq!(
        msgs,
        ["S0 first", "S1 second\n  its detail"],
        "nothing lost or repeated"
    );
}

#[test]
fn double_star_patterns_follow_files_at_any_depth_created_later() {
    let d = start(
        r#"
[input.tree]
type = "file"
paths = ["{dir}/logs/**/*.log"]
exclude = ["{dir}/logs/**/skip/*"]
"#,
        |_| {},
    );
    // The excluded file and the rotated generation first: the scan that finds the last
    // wanted file has seen them too, and the same round would read them.
    let files = [
        "logs/a/skip/no.log",
        "logs/a/one.log.1",
        "logs/top.log",
        "logs/a/one.log",
        "logs/a/b/c/deep.log",
    ];
    for f in files {
        let path = d.path(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        append(&path, &format!("line of {f}"));
    }
    d.wait_for("the three files' lines", || {
        (json_lines(&d.path("out.json")).len() >= 3).then_some(())
    });
    let mut got = messages(&d.path("out.json"));
    got.sort();
    assert_eq!(
        got,
        [
            "line of logs/a/b/c/deep.log",
            "line of logs/a/one.log",
            "line of logs/top.log"
        ]
    );
    assert_eq!(d.stat("inputs", "tree", "files"), 3);
}

/// Descriptors process `pid` holds now.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn ten_thousand_files_growing_slowly_every_line_arrives_within_max_open_files() {
    const FILES: usize = 10_000;
    const MAX_OPEN: usize = 200;
    let d = start(
        &format!(
            r#"
[input.many]
type = "file"
paths = ["{{dir}}/logs/*.log"]
from = "head"
max_open_files = {MAX_OPEN}
"#
        ),
        |_| {},
    );
    let base = open_fds(d.pid());
    let mut most = base;
    for round in 0..2 {
        for i in 0..FILES {
            append(
                &d.path(&format!("logs/f{i:05}.log")),
                &format!("f{i:05} line {round}"),
            );
        }
        let want = FILES * (round + 1);
        d.wait_for(&format!("{want} lines"), || {
            most = most.max(open_fds(d.pid()));
            let n = std::fs::read_to_string(d.path("out.json")).map_or(0, |t| t.lines().count());
            (n >= want).then_some(())
        });
    }
    // Every line once.
    let mut seen = std::collections::HashSet::new();
    for v in json_lines(&d.path("out.json")) {
        assert!(seen.insert(v["msg"].as_str().unwrap().to_string()), "{v}");
    }
    assert_eq!(seen.len(), 2 * FILES);
    assert!(
        most <= base + MAX_OPEN + 2,
        "at most max_open_files descriptors for files: {most} with {base} before"
    );
    let peak = crate::util::peak_rss_kib(d.pid());
    assert!(peak < 256 * 1024, "memory stays bounded: peak {peak} KiB");
}

#[test]
fn ignore_older_close_inactive_and_partial_line_timeout() {
    let d = start(
        r#"
[input.app]
type = "file"
paths = ["{dir}/logs/*.log"]
from = "head"
ignore_older_secs = 3600
close_inactive_secs = 1
partial_line_timeout_ms = 300
"#,
        |dir| {
            std::fs::create_dir_all(dir.join("logs")).unwrap();
            // Written a day ago: its lines are not read, only what it gets later.
            let old = dir.join("logs/old.log");
            std::fs::write(&old, "ancient line\n").unwrap();
            let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
            std::fs::File::options()
                .write(true)
                .open(&old)
                .unwrap()
                .set_modified(day_ago)
                .unwrap();
        },
    );
    let app = d.path("logs/app.log");
    append(&app, "first");
    d.wait_lines(&d.path("out.json"), 1);
    // Idle past close_inactive_secs: closed, yet what it gets later is read once.
    d.wait_for("app.log closed while idle", || {
        (d.stat("inputs", "app", "files") == 0).then_some(())
    });
    append(&app, "second");
    append(&d.path("logs/old.log"), "new in old");
    // A last line without its newline is handed on after partial_line_timeout_ms.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&app)
        .unwrap()
        .write_all(b"no newline yet")
        .unwrap();
    d.wait_lines(&d.path("out.json"), 4);
    let msgs = messages(&d.path("out.json"));
    let mut sorted = msgs.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["first", "new in old", "no newline yet", "second"],
        "{msgs:?}"
    );
}

#[test]
fn format_syslog_reads_what_another_syslog_daemon_wrote() {
    let d = start(
        r#"
[input.old]
type = "file"
paths = ["{dir}/logs/syslog"]
from = "head"
format = "syslog"
facility = "local3"
"#,
        |dir| {
            std::fs::create_dir_all(dir.join("logs")).unwrap();
            // rsyslog's RSYSLOG_TraditionalFileFormat and RSYSLOG_FileFormat, no PRI.
            std::fs::write(
                dir.join("logs/syslog"),
                "Dec  7 10:00:01 web1 sshd[812]: Accepted publickey for ann\n\
                 2026-12-07T10:00:02.123456+00:00 db7 postgres[99]: checkpoint complete\n\
                 <11>Dec  7 10:00:03 web2 app: with its own PRI\n",
            )
            .unwrap();
        },
    );
    let rows = {
        d.wait_lines(&d.path("out.json"), 3);
        json_lines(&d.path("out.json"))
    };
    let path = d.path("logs/syslog").display().to_string();
    let expect = [
        (
            "web1",
            "sshd",
            "Accepted publickey for ann",
            "local3",
            "notice",
        ),
        ("db7", "postgres", "checkpoint complete", "local3", "notice"),
        ("web2", "app", "with its own PRI", "user", "err"),
    ];
    for (row, (host, app, msg, facility, severity)) in rows.iter().zip(expect) {
        assert_eq!(row["host"], host, "{row}");
        assert_eq!(row["appname"], app, "{row}");
        assert_eq!(row["msg"], msg, "{row}");
        assert_eq!(row["facility"], facility, "{row}");
        assert_eq!(row["severity"], severity, "{row}");
        assert_eq!(row["fields"]["path"], path.as_str(), "{row}");
    }
    assert_eq!(rows[1]["time"], "2026-12-07T10:00:02.123456+00:00");
    assert_eq!(d.stat("inputs", "old", "malformed"), 0);
    d.wait_for("no lag once read", || {
        (d.stat("inputs", "old", "lag_bytes") == 0).then_some(())
    });
}

#[test]
fn a_generation_compressed_while_stopped_is_read_from_the_gz() {
    let mut d = start(
        r#"
[input.app]
type = "file"
paths = ["{dir}/logs/app.log"]
from = "head"
"#,
        |_| {},
    );
    let log = d.path("logs/app.log");
    for i in 0..3 {
        append(&log, &format!("line {i}"));
    }
    d.wait_lines(&d.path("out.json"), 3);
    assert!(d.stop().success());
    // While stopped: more lines, then logrotate's create + compress (no delaycompress).
    for i in 3..6 {
        append(&log, &format!("line {i}"));
    }
    let gen = d.path("logs/app.log.1");
    std::fs::rename(&log, &gen).unwrap();
    let status = std::process::Command::new("gzip")
        .arg(&gen)
        .status()
        .unwrap();
    assert!(status.success());
    append(&log, "line 6");
    d.restart();
    d.wait_lines(&d.path("out.json"), 7);
    let msgs = messages(&d.path("out.json"));
    let want: Vec<String> = (0..7).map(|i| format!("line {i}")).collect();
    assert_eq!(
        msgs, want,
        "the rest from app.log.1.gz, in order, then the new file"
    );
    assert_eq!(d.stat("inputs", "app", "rotations"), 1);
}

#[test]
fn fifos_and_directories_are_bad_input_and_links_and_tag_templates_work() {
    let d = start(
        r#"
[input.apps]
type = "file"
paths = ["{dir}/logs/*.log"]
from = "head"
tag = "app-{file.stem}"
"#,
        |dir| {
            let logs = dir.join("logs");
            std::fs::create_dir_all(logs.join("dir.log")).unwrap();
            nix::unistd::mkfifo(&logs.join("pipe.log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
            std::fs::create_dir_all(dir.join("pods")).unwrap();
            std::fs::write(dir.join("pods/real"), "from a link\n").unwrap();
            std::os::unix::fs::symlink(dir.join("pods/real"), logs.join("linked.log")).unwrap();
            std::fs::write(logs.join("web.log"), "plain file\n").unwrap();
        },
    );
    d.wait_lines(&d.path("out.json"), 2);
    d.wait_stat("inputs", "apps", "bad_files", 2);
    d.wait_log("is a FIFO");
    d.wait_log("is a directory");
    let mut rows: Vec<(String, String)> = json_lines(&d.path("out.json"))
        .iter()
        .map(|v| {
            (
                v["appname"].as_str().unwrap().to_string(),
                v["msg"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("app-linked".to_string(), "from a link".to_string()),
            ("app-web".to_string(), "plain file".to_string())
        ]
    );
}

// At scale (issue 26): a writer appends 1,000,000 numbered lines over the run to four files
// while the real logrotate rotates them several times; afterwards every number is in the
// output exactly once (copytruncate: but for what logrotate's own window lost, counted).

/// The files of a run at scale.
const SCALE_FILES: [&str; 4] = ["a", "b", "c", "d"];
/// Lines over all files in a run at scale.
const SCALE_LINES: u64 = 1_000_000;
/// Lines a file gets with one `open`, `write` and `close`, as a logger flushing its buffer.
const SCALE_BATCH: u64 = 100;
/// The writer's pace over all files, lines a second: fast enough for the run to stay short,
/// steady enough that logrotate's rotations fall in the middle of the writing.
const SCALE_RATE: u64 = 100_000;
/// Rotations by logrotate during a run, evenly spread over its writing.
const SCALE_ROTATIONS: u64 = 5;

/// The input on `logs/*.log`, and an output of each line's message alone (`a 000123`), so
/// a million lines stay a small file to count.
const SCALE_CONFIG: &str = r#"
[input.logs]
type = "file"
paths = ["{dir}/logs/*.log"]
from = "head"

[output.lines]
type = "file"
path = "{dir}/out.log"
template = "{msg}"
flush_interval_ms = 20

[[rule]]
output = ["lines"]
"#;

/// A thread appending `NAME NNNNNN` lines to each of [`SCALE_FILES`] in `logs/`, numbers
/// `0..per_file`, [`SCALE_BATCH`] at a time per file, paced at [`SCALE_RATE`].
struct Flood {
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(dir: &Path, per_file: u64) -> Flood {
        let paths: Vec<PathBuf> = SCALE_FILES
            .iter()
            .map(|f| dir.join(format!("logs/{f}.log")))
            .collect();
        // Made before, then only appended to (see [`Writer::start`]).
        create_empty(&paths);
        let written = Arc::new(AtomicU64::new(0));
        let w = written.clone();
        let thread = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            let mut buf = Vec::new();
            let mut n = 0;
            while n < per_file {
                let end = (n + SCALE_BATCH).min(per_file);
                for (name, path) in SCALE_FILES.iter().zip(&paths) {
                    buf.clear();
                    for i in n..end {
                        writeln!(buf, "{name} {i:06}").unwrap();
                    }
                    append_bytes_existing(path, &buf);
                }
                n = end;
                w.store(n, Ordering::Relaxed);
                let lines = n * SCALE_FILES.len() as u64;
                let due = began + Duration::from_secs_f64(lines as f64 / SCALE_RATE as f64);
                if let Some(ahead) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(ahead);
                }
            }
        });
        Flood {
            written,
            thread: Some(thread),
        }
    }

    /// Waits until each file got at least `n` lines.
    fn wait_written(&self, n: u64) {
        wait_written(&self.written, n);
    }

    /// Waits until the writer wrote every line.
    fn finish(mut self) {
        self.thread.take().unwrap().join().unwrap();
    }
}

/// How often each line `NAME NNNNNN` (of [`SCALE_FILES`], numbers below `per_file`) is in
/// `text`, indexed by file, then number; lines of another shape are counted apart.
struct Tally {
    per_file: u64,
    seen: Vec<u8>,
    other: usize,
}

impl Tally {
    fn of(text: &[u8], per_file: u64) -> Tally {
        let mut t = Tally {
            per_file,
            seen: vec![0; SCALE_FILES.len() * per_file as usize],
            other: 0,
        };
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let at = std::str::from_utf8(line).ok().and_then(|l| {
                let (name, n) = l.split_once(' ')?;
                let file = SCALE_FILES.iter().position(|f| *f == name)?;
                let n: u64 = n.parse().ok().filter(|&n| n < per_file)?;
                Some(file * per_file as usize + n as usize)
            });
            match at {
                Some(i) => t.seen[i] = t.seen[i].saturating_add(1),
                None => t.other += 1,
            }
        }
        t
    }

    /// The line at index `i`.
    fn name(&self, i: usize) -> String {
        let per = self.per_file as usize;
        format!("{} {:06}", SCALE_FILES[i / per], i % per)
    }

    fn present(&self) -> usize {
        self.seen.iter().filter(|&&c| c > 0).count()
    }

    fn missing(&self) -> Vec<usize> {
        (0..self.seen.len())
            .filter(|&i| self.seen[i] == 0)
            .collect()
    }

    fn repeated(&self) -> Vec<usize> {
        (0..self.seen.len()).filter(|&i| self.seen[i] > 1).collect()
    }

    /// At most ten of the lines at `indexes`, and how many there are.
    fn show(&self, indexes: &[usize]) -> String {
        let some: Vec<String> = indexes.iter().take(10).map(|&i| self.name(i)).collect();
        format!("{} lines, such as {some:?}", indexes.len())
    }
}

/// Every line of every file of `logs/` (`.gz` ones decompressed), tallied.
fn scale_on_disk(dir: &Path, per_file: u64) -> Tally {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        let p: PathBuf = e.unwrap().path();
        let f = std::fs::File::open(&p).unwrap();
        if p.extension().is_some_and(|x| x == "gz") {
            flate2::read::MultiGzDecoder::new(f)
                .read_to_end(&mut all)
                .unwrap();
        } else {
            std::io::BufReader::new(f).read_to_end(&mut all).unwrap();
        }
    }
    Tally::of(&all, per_file)
}

/// Waits until `out.log` holds every line of the run, less `missing_allowed`; its tally.
fn wait_scale(d: &Daemon, per_file: u64, missing_allowed: usize) -> Tally {
    let total = SCALE_FILES.len() * per_file as usize;
    let out = d.path("out.log");
    d.wait_for(&format!("{total} lines in out.log"), || {
        let text = std::fs::read(&out).unwrap_or_default();
        // Counting lines is cheap; the tally only once there are enough.
        if memchr::memchr_iter(b'\n', &text).count() + missing_allowed < total {
            return None;
        }
        let t = Tally::of(&text, per_file);
        (t.present() + missing_allowed >= total).then_some(t)
    })
}

/// A run at scale: logwelld follows [`SCALE_FILES`] while [`Flood`] writes
/// [`SCALE_LINES`] lines in all and the real logrotate runs with `directives`
/// [`SCALE_ROTATIONS`] times. With `distinct_seconds`, each rotation waits for a new second
/// (`dateext` names a generation by its second). Returns the daemon and the lines per file.
fn scale_run(directives: &str, distinct_seconds: bool) -> (Daemon, u64) {
    let d = Daemon::start_with(SCALE_CONFIG, |dir| {
        std::fs::create_dir(dir.join("logs")).unwrap();
    });
    let per_file = SCALE_LINES / SCALE_FILES.len() as u64;
    let w = Flood::start(d.dir.path(), per_file);
    let second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut last = 0;
    for round in 1..=SCALE_ROTATIONS {
        w.wait_written(per_file * round / (SCALE_ROTATIONS + 1));
        if distinct_seconds {
            util::wait_until(
                "a new second for dateext's name",
                || second() > last,
                String::new,
            );
        }
        logrotate(d.dir.path(), directives);
        last = second();
    }
    w.finish();
    (d, per_file)
}

/// Asserts every line of a run at scale is in `out.log` exactly once, and that logrotate
/// rotated each file each time.
fn assert_scale_each_once(d: &Daemon, per_file: u64) {
    let t = wait_scale(d, per_file, 0);
    let (missing, repeated) = (t.missing(), t.repeated());
    assert!(missing.is_empty(), "missing: {}", t.show(&missing));
    assert!(repeated.is_empty(), "repeated: {}", t.show(&repeated));
    assert_eq!(t.other, 0, "lines of no file");
    let rotations = d.stat("inputs", "logs", "rotations");
    assert!(
        rotations >= SCALE_ROTATIONS * SCALE_FILES.len() as u64,
        "{rotations} rotations\n{}",
        d.log()
    );
}

#[test]
fn at_scale_logrotate_create_compress_delaycompress_each_line_once() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let (d, per_file) = scale_run("  create\n  compress\n  delaycompress\n", false);
    assert_scale_each_once(&d, per_file);
    assert_eq!(d.stat("inputs", "logs", "truncations"), 0);
    assert!(std::fs::metadata(d.path("logs/a.log.2.gz")).is_ok());
}

#[test]
fn at_scale_logrotate_dateext_each_line_once() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let (d, per_file) = scale_run("  create\n  dateext\n  dateformat -%Y%m%d-%s\n", true);
    assert_scale_each_once(&d, per_file);
    let dated = std::fs::read_dir(d.path("logs"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("a.log-") && !name.ends_with(".gz")
        })
        .count();
    assert_eq!(
        dated as u64, SCALE_ROTATIONS,
        "one a.log-DATE-SECONDS per rotation"
    );
}

#[test]
fn at_scale_logrotate_dateext_compress_each_line_once() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    // Compressed at once (no delaycompress): the rotated file is gone from the directory
    // as soon as gzip read it; the input reads it by its descriptor.
    let (d, per_file) = scale_run(
        "  create\n  dateext\n  dateformat -%Y%m%d-%s\n  compress\n",
        true,
    );
    assert_scale_each_once(&d, per_file);
    let gz = std::fs::read_dir(d.path("logs"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("a.log-") && name.ends_with(".gz")
        })
        .count();
    assert_eq!(
        gz as u64, SCALE_ROTATIONS,
        "one a.log-DATE-SECONDS.gz per rotation"
    );
}

#[test]
fn at_scale_logrotate_copytruncate_loses_only_its_own_window() {
    if !util::precondition("file input with logrotate", logrotate_missing()) {
        return;
    }
    let (d, per_file) = scale_run("  copytruncate\n  compress\n  delaycompress\n", false);
    // What logrotate lost between its copy and its truncation is in no file on disk: only
    // that may be missing from the output.
    let disk = scale_on_disk(d.dir.path(), per_file);
    let lost_by_logrotate = disk.missing();
    let t = wait_scale(&d, per_file, lost_by_logrotate.len());
    let beyond: Vec<usize> = t
        .missing()
        .into_iter()
        .filter(|i| disk.seen[*i] > 0)
        .collect();
    assert!(
        beyond.is_empty(),
        "lost though logrotate kept them: {}\n{}",
        t.show(&beyond),
        d.log()
    );
    let repeated = t.repeated();
    assert!(repeated.is_empty(), "repeated: {}", t.show(&repeated));
    eprintln!(
        "copytruncate at scale: {} of {} lines lost by logrotate's copy-then-truncate window",
        lost_by_logrotate.len(),
        SCALE_LINES
    );
    let truncations = d.stat("inputs", "logs", "truncations");
    assert!(
        truncations >= SCALE_ROTATIONS * SCALE_FILES.len() as u64,
        "{truncations} truncations\n{}",
        d.log()
    );
}
