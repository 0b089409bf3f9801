//! Rotation inside the daemon: by size under load with nothing lost, duplicated or split,
//! compression that survives a kill, retention, rotation on request, and rotation done by
//! others (rename, delete, copytruncate) noticed without a HUP.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{tcp_send, wait_until, Daemon};

/// The rotated generations of `live` (file names), oldest first, then the live file.
fn generations(live: &Path) -> Vec<PathBuf> {
    let dir = live.parent().unwrap();
    let base = live.file_name().unwrap().to_str().unwrap();
    let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let rest = name.strip_prefix(base)?.strip_prefix('.')?;
            let n = rest.split('.').next()?.parse().ok()?;
            Some((n, dir.join(&name)))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut out: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    if live.exists() {
        out.push(live.to_path_buf());
    }
    out
}

/// A generation's content, decompressed.
fn content(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let name = path.to_str().unwrap();
    if name.ends_with(".zst") {
        String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
    } else if name.ends_with(".gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

fn uncompressed_rotated(live: &Path) -> usize {
    let g = generations(live);
    g[..g.len().saturating_sub(1)]
        .iter()
        .filter(|p| !p.to_str().unwrap().ends_with(".zst") && !p.to_str().unwrap().ends_with(".gz"))
        .count()
}

#[test]
fn a_million_messages_rotated_every_few_hundred_kib_are_all_there_once_in_order() {
    let mut d = Daemon::start(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.all]
type = "file"
path = "{dir}/all.log"
flush_interval_ms = 50

[output.all.rotation]
max_size = "300K"
compress = "zstd"

[[rule]]
output = "all"
"#,
    );
    let (conns, per_conn) = (4usize, 250_000usize);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let port = d.port;
            std::thread::spawn(move || {
                let mut w = BufWriter::with_capacity(
                    256 * 1024,
                    TcpStream::connect(("127.0.0.1", port)).unwrap(),
                );
                for n in 0..per_conn {
                    writeln!(w, "<13>Nov 21 09:41:03 host load: c={c} n={n}").unwrap();
                }
                w.flush().unwrap();
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    d.wait_stat("outputs", "all", "written", (conns * per_conn) as u64);
    let live = d.path("all.log");
    wait_until(
        "every rotated generation is compressed",
        || uncompressed_rotated(&live) == 0,
        String::new,
    );
    assert!(d.stop().success());
    let gens = generations(&live);
    assert!(gens.len() > 100, "rotated only {} times", gens.len());
    let mut next: BTreeMap<usize, usize> = BTreeMap::new();
    let mut lines = 0;
    for g in &gens {
        let text = content(g);
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends mid-line",
            g.display()
        );
        if let Ok(m) = std::fs::metadata(g) {
            if !g.ends_with("all.log") {
                assert!(m.len() < 400 * 1024, "{} is {} bytes", g.display(), m.len());
            }
        }
        for line in text.lines() {
            let (_, rest) = line
                .split_once(" c=")
                .unwrap_or_else(|| panic!("{line:?} in {}", g.display()));
            let (c, n) = rest.split_once(" n=").unwrap();
            let (c, n): (usize, usize) = (c.parse().unwrap(), n.parse().unwrap());
            let expected = next.entry(c).or_insert(0);
            assert_eq!(
                n,
                *expected,
                "connection {c}: message {n} where {expected} was due ({})",
                g.display()
            );
            *expected += 1;
            lines += 1;
        }
    }
    assert_eq!(lines, conns * per_conn);
    assert!(next.values().all(|n| *n == per_conn));
}

#[test]
fn a_compression_killed_midway_is_redone_at_the_next_start() {
    let template = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.big]
type = "file"
path = "{dir}/big.log"

[output.big.rotation]
compress = "zstd"
compress_level = 19
keep = 10

[[rule]]
output = "big"
"#;
    // A large generation, so that compressing it at level 19 takes a while.
    let setup = |dir: &Path| {
        let mut f = BufWriter::new(std::fs::File::create(dir.join("big.log.1")).unwrap());
        let mut x: u64 = 12345;
        for n in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            writeln!(
                f,
                "2026-11-21T09:41:03.{:06}+00:00 host app[{}]: line {n} value {x:x}",
                n % 1_000_000,
                n % 999
            )
            .unwrap();
        }
    };
    let mut d = Daemon::start_with(template, setup);
    let original_len = std::fs::metadata(d.path("big.log.1"))
        .map(|m| m.len())
        .unwrap_or(0);
    let temp_exists = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_str().unwrap().ends_with(".tmp"))
    };
    wait_until(
        "compression has started",
        || temp_exists(d.dir.path()) || d.path("big.log.1.zst").exists(),
        String::new,
    );
    assert!(
        temp_exists(d.dir.path()),
        "level 19 on this much text takes seconds: the kill lands mid-way"
    );
    d.signal(libc::SIGKILL);
    d.wait_exit();
    // Never half-written under the final name: either the original is still there, or the
    // compressed copy is complete.
    assert!(d.path("big.log.1").exists() || d.path("big.log.1.zst").exists());
    if d.path("big.log.1.zst").exists() && !d.path("big.log.1").exists() {
        assert_eq!(content(&d.path("big.log.1.zst")).len() as u64, original_len);
    }
    // The next start finishes the work.
    let expected = content(&d.path("big.log.1"));
    // The redo only has to happen: at level 1 it takes a fraction of a second, even on a
    // loaded machine, where level 19 on 15 MB can take most of a minute.
    let config = d.path("logwell.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("compress_level = 19", "compress_level = 1"),
    )
    .unwrap();
    d.restart();
    wait_until(
        "the compression is redone",
        || d.path("big.log.1.zst").exists() && !d.path("big.log.1").exists(),
        String::new,
    );
    assert!(!temp_exists(d.dir.path()), "the temporary is gone");
    assert_eq!(content(&d.path("big.log.1.zst")), expected);
}

const SMALL: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.app]
type = "file"
path = "{dir}/app.log"
flush_interval_ms = 20

[[rule]]
output = "app"
"#;

fn send(d: &Daemon, text: &str) {
    tcp_send(
        d.port,
        format!("<13>Nov 21 09:41:03 host app: {text}\n").as_bytes(),
    );
}

#[test]
fn rotation_by_others_is_noticed_without_a_hup() {
    let d = Daemon::start(SMALL);
    let live = d.path("app.log");
    send(&d, "one");
    d.wait_lines(&live, 1);
    // Renamed away, no HUP: the daemon notices and writes a new file.
    std::fs::rename(&live, d.path("app.log.old")).unwrap();
    wait_until(
        "the file is reopened after a rename",
        || live.exists(),
        String::new,
    );
    send(&d, "two");
    assert!(d.wait_lines(&live, 1).ends_with("app: two\n"));
    // Deleted: the same.
    std::fs::remove_file(&live).unwrap();
    wait_until(
        "the file is reopened after a delete",
        || live.exists(),
        String::new,
    );
    send(&d, "three");
    assert!(d.wait_lines(&live, 1).ends_with("app: three\n"));
    // copytruncate: the file shrinks under us; writing goes on at its new end, no hole.
    send(&d, "four");
    d.wait_lines(&live, 2);
    std::fs::copy(&live, d.path("app.log.copy")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(0)
        .unwrap();
    send(&d, "five");
    let text = d.wait_lines(&live, 1);
    assert!(text.ends_with("app: five\n"), "{text:?}");
    assert!(!text.contains('\0'), "no hole of NULs after a truncation");
    assert!(d.log().contains("truncated") || text.lines().count() == 1);
}

#[test]
fn logwell_rotate_rotates_now_and_numbers_like_logrotate() {
    let d = Daemon::start(&SMALL.replace(
        "[[rule]]",
        "[output.app.rotation]\ncompress = \"gzip\"\ndelay_compress = true\nkeep = 2\n\n[[rule]]",
    ));
    let live = d.path("app.log");
    let rotate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
            .args(["rotate", "--socket"])
            .arg(d.path("control.sock"))
            .arg(&live)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for n in 1..=4 {
        send(&d, &format!("generation {n}"));
        d.wait_lines(&live, 1);
        let said = rotate();
        assert!(
            said.contains("app.log -> ") && said.trim_end().ends_with("app.log.1"),
            "{said}"
        );
    }
    // keep = 2: .1 (delay_compress: plain) and .2.gz; the live file is new and empty.
    wait_until(
        "the second generation is compressed",
        || d.path("app.log.2.gz").exists(),
        String::new,
    );
    wait_until(
        "only two generations are kept",
        || generations(&live).len() == 3,
        String::new,
    );
    assert_eq!(
        content(&d.path("app.log.1")).trim_end(),
        content(&d.path("app.log.1")).lines().next().unwrap()
    );
    assert!(content(&d.path("app.log.1")).ends_with("app: generation 4\n"));
    assert!(content(&d.path("app.log.2.gz")).ends_with("app: generation 3\n"));
    assert_eq!(std::fs::metadata(&live).unwrap().len(), 0);
    // Compressed generations keep the live file's mode (0640 by default), never wider.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.path("app.log.2.gz"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // An unknown target is an error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["rotate", "--socket"])
        .arg(d.path("control.sock"))
        .arg("nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no file output is named or writes `nope`")
    );
}

#[test]
fn dated_names_time_rotation_at_start_and_age_retention() {
    let template = SMALL.replace(
        "[[rule]]",
        "[output.app.rotation]\nevery = \"daily\"\nnaming = \"dated\"\ncompress = \"none\"\nmax_age_days = 7\n\n[[rule]]",
    );
    let d = Daemon::start_with(&template, |dir| {
        // Written two days ago: the daemon was down at midnight, so it rotates at start.
        let live = dir.join("app.log");
        std::fs::write(&live, "old line\n").unwrap();
        let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&live)
            .unwrap()
            .set_modified(two_days)
            .unwrap();
        // A generation older than max_age_days is deleted.
        let ancient = dir.join("app.log-20200101");
        std::fs::write(&ancient, "ancient\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&ancient)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(30 * 86_400))
            .unwrap();
    });
    // Named after the day its lines are from.
    let day = (chrono::Local::now() - chrono::Duration::days(2))
        .format("%Y%m%d")
        .to_string();
    // The writer rotates and sweeps as it starts, on its own thread: wait for both.
    let generations = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("app.log-"))
            .collect();
        v.sort();
        v
    };
    let expected = [format!("app.log-{day}")];
    d.wait_for("the rotation at start and the age sweep", || {
        (generations() == expected).then_some(())
    });
    let rotated = generations();
    assert_eq!(
        std::fs::read_to_string(d.dir.path().join(&rotated[0])).unwrap(),
        "old line\n"
    );
    send(&d, "new");
    assert!(d.wait_lines(&d.path("app.log"), 1).ends_with("app: new\n"));
}

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`, or `None` (with the reason) when this test cannot
    /// mount (not root, no CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "disk-full test skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_full_disk_slows_tcp_senders_loses_nothing_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    // Room for every message, but filled up but for 64 KiB at first.
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "64m") else {
        return;
    };
    let filler = fs.0.join("filler");
    let free = nix::sys::statvfs::statvfs(&fs.0).unwrap();
    let free = free.blocks_available() as u64 * free.fragment_size() as u64;
    std::fs::write(&filler, vec![0u8; (free - 64 * 1024) as usize]).unwrap();
    let template = format!(
        r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{{port}}"

[output.app]
type = "file"
path = "{}/app.log"
flush_interval_ms = 20
backlog_bytes = 131072

[[rule]]
output = "app"
"#,
        fs.0.display()
    );
    let d = Daemon::start(&template);
    // About 28 MB: far more than the disk, the backlog, the writer's channel (4 MiB) and the
    // socket buffers together.
    let total = 400_000usize;
    let port = d.port;
    let sender = std::thread::spawn(move || {
        let mut w = BufWriter::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
        for n in 0..total {
            writeln!(
                w,
                "<13>Nov 21 09:41:03 host app: message {n:06} of a disk-full test"
            )
            .unwrap();
        }
        w.flush().unwrap();
    });
    d.wait_stat("outputs", "app", "errors", 1);
    // Stalled, not spinning: the sender is held back and the daemon is idle.
    let before = cpu_ticks(d.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(d.pid()) - before;
    assert!(
        !sender.is_finished(),
        "the TCP sender is held back while the disk is full"
    );
    assert!(
        used < 100,
        "the daemon used {used} ticks in 2 s while stalled: it spins"
    );
    assert!(
        d.log().contains("cannot write"),
        "the failure is in the daemon's log"
    );
    // Space comes back: everything is written, in order, nothing dropped.
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        "the sender has sent everything",
        || sender.is_finished(),
        String::new,
    );
    sender.join().unwrap();
    d.wait_stat("outputs", "app", "written", total as u64);
    let text = std::fs::read_to_string(fs.0.join("app.log")).unwrap();
    let numbers: Vec<usize> = text
        .lines()
        .map(|l| l.split("message ").nth(1).unwrap()[..6].parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..total).collect::<Vec<_>>());
    assert_eq!(d.stat("outputs", "app", "dropped"), 0);
    drop(d);
}

#[test]
fn size_retention_per_set_and_across_sets_deletes_the_oldest_never_the_live_file() {
    let d = Daemon::start(
        r#"
[retention]
max_disk_usage = "20K"

[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[output.a]
type = "file"
path = "{dir}/a.log"
flush_interval_ms = 20

[output.a.rotation]
compress = "none"
max_total_size = "12K"

[output.b]
type = "file"
path = "{dir}/b.log"
flush_interval_ms = 20

[output.b.rotation]
compress = "none"

[[rule]]
program = "a"
output = "a"

[[rule]]
program = "b"
output = "b"
"#,
    );
    let rotate = |target: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
            .args(["rotate", "--socket"])
            .arg(d.path("control.sock"))
            .arg(target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let kib = "x".repeat(1000);
    // Five generations of about 4 KiB in set a: its own cap (12K) keeps the newest ones.
    for g in 0..5 {
        tcp_send(
            d.port,
            format!("<13>Nov 21 09:41:03 host a: gen {g} {kib}\n")
                .repeat(4)
                .as_bytes(),
        );
        d.wait_stat("outputs", "a", "written", 4 * (g + 1));
        rotate("a");
        std::thread::sleep(Duration::from_millis(20)); // distinct modification times
    }
    let a = generations(&d.path("a.log"));
    let rotated_a: u64 = a[..a.len() - 1]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        rotated_a <= 12 * 1024,
        "set a keeps {rotated_a} bytes of rotated files"
    );
    assert!(
        content(&a[a.len() - 2]).contains("gen 4"),
        "the newest generation stays"
    );
    // Set b grows the whole past 20K: the oldest rotated files go, across both sets.
    for g in 0..3 {
        tcp_send(
            d.port,
            format!("<13>Nov 21 09:41:03 host b: gen {g} {kib}\n")
                .repeat(4)
                .as_bytes(),
        );
        d.wait_stat("outputs", "b", "written", 4 * (g + 1));
        rotate("b");
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = |live: &str| -> u64 {
        generations(&d.path(live))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    wait_until(
        "the global limit to hold",
        || total("a.log") + total("b.log") <= 20 * 1024,
        || {
            format!(
                "a {:?} b {:?}\n{}",
                generations(&d.path("a.log")),
                generations(&d.path("b.log")),
                d.log()
            )
        },
    );
    assert!(
        d.path("a.log").exists() && d.path("b.log").exists(),
        "live files are never deleted"
    );
    let b = generations(&d.path("b.log"));
    assert!(
        content(&b[b.len() - 2]).contains("gen 2"),
        "b's newest generation stays"
    );
    assert!(d.log().contains("max_disk_usage"), "{}", d.log());
}
