//! Other packages' rsyslog drop-ins (`[rsyslog] drop_ins`), as haproxy and ufw ship them:
//! translated at start and at a reload, their rules before logwell's own, what cannot be
//! translated shown by `--check-config` and `logwell stats`; and the privileged parent
//! binding a drop-in's socket that a reload adds in a directory only root may write.

use std::path::Path;

use crate::util::{check_config, logger, wait_until, Daemon};

/// haproxy's /etc/rsyslog.d/49-haproxy.conf (Debian 12), its socket moved into `{dir}`.
const HAPROXY: &str = r#"# Create an additional socket in haproxy's chroot in order to allow logging via
# /dev/log to chroot'ed HAProxy processes
$AddUnixListenSocket {dir}/haproxy/dev/log

# Send HAProxy messages to a dedicated logfile
:programname, startswith, "haproxy" {
  {dir}/haproxy.log
  stop
}
"#;

/// ufw's /etc/rsyslog.d/20-ufw.conf (Debian 12), its file moved into `{dir}`, plus a line
/// logwell does not translate.
const UFW: &str = r#"# Log kernel generated UFW log messages to file
:msg,contains,"[UFW " {dir}/ufw.log

# Uncomment the following to stop logging anything that matches the last rule.
#& stop
$SystemLogRateLimitInterval 0
"#;

const CONFIG: &str = r#"
[rsyslog]
drop_ins = "all"
dir = "{dir}/rsyslog.d"

[input.local]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.syslog]
type = "file"
path = "{dir}/syslog"
flush_interval_ms = 20

[[rule]]
output = "syslog"
"#;

fn drop_ins(dir: &Path, files: &[(&str, &str)]) {
    let d = dir.join("rsyslog.d");
    std::fs::create_dir_all(&d).unwrap();
    for (name, text) in files {
        let text = text.replace("{dir}", dir.to_str().unwrap());
        std::fs::write(d.join(name), text).unwrap();
    }
    std::fs::create_dir_all(dir.join("haproxy/dev")).unwrap();
}

#[test]
fn haproxy_and_ufw_drop_ins_route_as_under_rsyslog() {
    let d = Daemon::start_with(CONFIG, |dir| {
        drop_ins(dir, &[("49-haproxy.conf", HAPROXY), ("20-ufw.conf", UFW)])
    });
    let haproxy_sock = d.path("haproxy/dev/log");
    let local = d.path("log.sock");
    let out = logger(&[
        "-u",
        haproxy_sock.to_str().unwrap(),
        "-t",
        "haproxy",
        "haproxy-probe 1",
    ]);
    assert!(out.status.success(), "{out:?}");
    logger(&[
        "-u",
        local.to_str().unwrap(),
        "-t",
        "kernel",
        "[UFW BLOCK] IN=eth0 SRC=192.0.2.7",
    ]);
    logger(&["-u", local.to_str().unwrap(), "-t", "cron", "plain line"]);
    // haproxy's line reaches its file, and its `stop` keeps it out of the syslog file,
    // which gets the other two (ufw's rule has no stop).
    let haproxy = d.wait_lines(&d.path("haproxy.log"), 1);
    assert!(haproxy.contains("haproxy: haproxy-probe 1"), "{haproxy}");
    let ufw = d.wait_lines(&d.path("ufw.log"), 1);
    assert!(ufw.contains("kernel: [UFW BLOCK] IN=eth0"), "{ufw}");
    let syslog = d.wait_lines(&d.path("syslog"), 2);
    assert!(
        syslog.contains("[UFW BLOCK]") && syslog.contains("plain line"),
        "{syslog}"
    );
    assert!(!syslog.contains("haproxy-probe"), "{syslog}");
    // The line not translated is in the log and in `logwell stats`.
    let warning = "20-ufw.conf:6: not translated: `$SystemLogRateLimitInterval`";
    d.wait_log(warning);
    let stats = d.stats_json().unwrap();
    let warnings = stats["config_warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(warning)),
        "{stats}"
    );
}

#[test]
fn check_config_names_the_drop_ins_and_what_is_not_translated() {
    let dir = tempfile::tempdir().unwrap();
    drop_ins(
        dir.path(),
        &[("49-haproxy.conf", HAPROXY), ("20-ufw.conf", UFW)],
    );
    let text = format!(
        "[daemon]\nprivsep = false\nstate_dir = \"{0}/state\"\n{1}",
        dir.path().display(),
        CONFIG.replace("{dir}", dir.path().to_str().unwrap())
    );
    let (code, err) = check_config(&text);
    assert_eq!(code, Some(0), "{err}");
    let d = dir.path().display();
    assert!(
        err.contains(&format!("rsyslog drop-in read: {d}/rsyslog.d/20-ufw.conf")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "rsyslog drop-in read: {d}/rsyslog.d/49-haproxy.conf"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("warning: {d}/rsyslog.d/20-ufw.conf:6: not translated: `$SystemLogRateLimitInterval` has no logwell equivalent")),
        "{err}"
    );
    // `none` reads none of them.
    let (code, err) = check_config(&text.replace("drop_ins = \"all\"", "drop_ins = \"none\""));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("rsyslog drop-in read"), "{err}");
    // A drop-in whose translation logwell refuses (a port that is not one) is left out with
    // a warning; logwell's own configuration, and the other drop-ins, still start.
    std::fs::write(
        dir.path().join("rsyslog.d/30-bad.conf"),
        "*.* @@central.example:99999\n",
    )
    .unwrap();
    let (code, err) = check_config(&text);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("30-bad.conf: left out, as logwell refuses its translation"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "rsyslog drop-in read: {d}/rsyslog.d/49-haproxy.conf"
        )),
        "{err}"
    );
    assert!(
        !err.contains(&format!("read: {d}/rsyslog.d/30-bad.conf")),
        "{err}"
    );
}

/// Adds haproxy's drop-in, reloads, sends `text` to its socket once bound, and returns
/// haproxy.log once it holds the line.
fn add_haproxy_and_reload(d: &Daemon, text: &str) -> String {
    drop_ins(d.dir.path(), &[("49-haproxy.conf", HAPROXY)]);
    d.signal(libc::SIGHUP);
    let sock = d.path("haproxy/dev/log");
    wait_until(
        "the reload to bind haproxy's socket",
        || sock.exists(),
        || d.log(),
    );
    logger(&["-u", sock.to_str().unwrap(), "-t", "haproxy", text]);
    d.wait_lines(&d.path("haproxy.log"), 1)
}

#[test]
fn a_drop_in_added_later_is_taken_by_a_reload() {
    let d = Daemon::start_with(CONFIG, |dir| drop_ins(dir, &[]));
    let pid = d.pid();
    let haproxy = add_haproxy_and_reload(&d, "after the reload");
    assert!(haproxy.contains("haproxy: after the reload"), "{haproxy}");
    assert_eq!(d.pid(), pid);
}

#[test]
fn under_privilege_separation_the_parent_binds_a_socket_a_reload_adds() {
    if !crate::privsep::can_run(
        "under_privilege_separation_the_parent_binds_a_socket_a_reload_adds",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start_privsep(CONFIG, |dir| {
        drop_ins(dir, &[]);
        // Root's directories, as /var/lib/haproxy/dev is: the worker cannot bind there.
        for sub in ["haproxy", "haproxy/dev"] {
            std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
    });
    let haproxy = add_haproxy_and_reload(&d, "bound by the parent");
    assert!(
        haproxy.contains("haproxy: bound by the parent"),
        "{haproxy}"
    );
    d.wait_log("bind the input socket");
}

#[test]
fn import_rsyslog_translates_and_checks_a_whole_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    drop_ins(d, &[("49-haproxy.conf", HAPROXY), ("20-ufw.conf", UFW)]);
    let conf = d.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "module(load=\"imuxsock\")\n$FileOwner root\n$FileGroup adm\n$FileCreateMode 0640\n\
             $IncludeConfig {}/rsyslog.d/*.conf\n\
             *.*;auth,authpriv.none\t\t-/var/log/syslog\nauth,authpriv.*\t\t\t/var/log/auth.log\n\
             *.emerg\t\t\t\t:omusrmsg:*\n",
            d.display()
        ),
    )
    .unwrap();
    let logwell = env!("CARGO_BIN_EXE_logwell");
    let out = std::process::Command::new(logwell)
        .args(["import-rsyslog"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let toml = String::from_utf8(out.stdout).unwrap();
    let report = String::from_utf8(out.stderr).unwrap();
    // The drop-ins' rules come where rsyslog includes them: before the default rules.
    let haproxy = toml
        .find("field_match = { \"programname\" = \"^haproxy\" }")
        .expect(&toml);
    let syslog = toml
        .find("selector = \"*.*;auth,authpriv.none\"")
        .expect(&toml);
    assert!(haproxy < syslog, "{toml}");
    assert!(
        toml.contains("output = [\"haproxy\"]\nfinal = true"),
        "{toml}"
    );
    assert!(report.contains("20-ufw.conf:6: not translated"), "{report}");
    assert!(
        report.contains(
            "5 rules, 5 outputs, 4 inputs translated; 1 lines not translated, 0 that differ"
        ),
        "{report}"
    );
    // The translation routes generated messages as rsyslog's rules do.
    let out = std::process::Command::new(logwell)
        .args(["import-rsyslog", "--check", "generated"])
        .arg(&conf)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        report.contains(" differ") && report.contains(", 0 differ"),
        "{report}"
    );
}

/// haproxy's /etc/logrotate.d/haproxy (Debian 12), its file moved into `{dir}`: the
/// postrotate script is rsyslog's, gone once rsyslog is removed.
const HAPROXY_LOGROTATE: &str = r#"{dir}/haproxy.log {
    daily
    rotate 7
    missingok
    notifempty
    compress
    delaycompress
    postrotate
        [ ! -x /usr/lib/rsyslog/rsyslog-rotate ] || /usr/lib/rsyslog/rsyslog-rotate
    endscript
}
"#;

#[test]
fn a_drop_in_file_that_logrotate_rotates_is_left_to_logrotate() {
    let logrotate = "/usr/sbin/logrotate";
    let missing = (!Path::new(logrotate).exists())
        .then_some("Debian's logrotate is not installed (scripts/deps.sh test installs it)");
    if !crate::util::precondition(
        "a_drop_in_file_that_logrotate_rotates_is_left_to_logrotate",
        missing,
    ) {
        return;
    }
    let config = CONFIG.replace(
        "dir = \"{dir}/rsyslog.d\"",
        "dir = \"{dir}/rsyslog.d\"\nlogrotate_dir = \"{dir}/logrotate.d\"",
    );
    let d = Daemon::start_with(&config, |dir| {
        drop_ins(dir, &[("49-haproxy.conf", HAPROXY)]);
        std::fs::create_dir(dir.join("logrotate.d")).unwrap();
        std::fs::write(
            dir.join("logrotate.d/haproxy"),
            HAPROXY_LOGROTATE.replace("{dir}", dir.to_str().unwrap()),
        )
        .unwrap();
    });
    let sock = d.path("haproxy/dev/log");
    let sock = sock.to_str().unwrap();
    logger(&["-u", sock, "-t", "haproxy", "before logrotate"]);
    d.wait_lines(&d.path("haproxy.log"), 1);
    // logwell leaves it to logrotate: `logwell rotate` of every output skips it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
        .args(["rotate", "--config"])
        .arg(&d.config)
        .output()
        .unwrap();
    let rotated = String::from_utf8_lossy(&out.stdout);
    assert!(!rotated.contains("haproxy.log ->"), "{rotated}");
    // logrotate renames it; logwell writes on in a new haproxy.log.
    let out = std::process::Command::new(logrotate)
        .arg("-f")
        .arg("-s")
        .arg(d.path("logrotate.state"))
        .arg(d.path("logrotate.d/haproxy"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No postrotate signal reaches logwell (rsyslog's script is gone): it notices the rename
    // itself, within a second, and opens a new haproxy.log.
    let live = d.path("haproxy.log");
    wait_until(
        "logwell to open a new haproxy.log",
        || live.exists(),
        || d.log(),
    );
    logger(&["-u", sock, "-t", "haproxy", "after logrotate"]);
    let new = d.wait_lines(&d.path("haproxy.log"), 1);
    assert!(
        new.contains("after logrotate") && !new.contains("before"),
        "{new}"
    );
    let old = std::fs::read_to_string(d.path("haproxy.log.1")).unwrap();
    assert!(
        old.contains("before logrotate") && !old.contains("after"),
        "{old}"
    );
}
