//! A bad configuration is refused at start and by `--check-config`, with file, line, column
//! and a hint for every problem; the shipped configurations pass.

use std::process::Command;

fn logwelld(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .args(args)
        .output()
        .unwrap()
}

const BAD: &str = r#"
[input.udp]
type = "udp"
listen = "127.0.0.1:70000"

[output.syslog]
type = "file"
path = "/tmp/never-written"
fromat = "json"

[[rule]]
selector = "*.*;auth,authpriv.nonne"
output = "syslog"
"#;

#[test]
fn a_bad_config_is_refused_at_start_and_by_check_config_with_place_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logwell.toml");
    std::fs::write(&p, BAD).unwrap();
    let path = p.to_str().unwrap();
    for args in [
        vec!["--check-config", "--config", path],
        vec!["--config", path],
    ] {
        let out = logwelld(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("{path}:9:1: unknown field `fromat`")),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
    // With the typo fixed, the next problems are all reported at once.
    std::fs::write(&p, BAD.replace("fromat", "format")).unwrap();
    let out = logwelld(&["--check-config", "--config", path]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&format!("{path}:4:10: `127.0.0.1:70000` is not")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:12:12: bad selector")),
        "{err}"
    );
    assert!(err.contains("unknown severity `nonne`"), "{err}");
    assert!(err.contains("2 errors"), "{err}");
}

#[test]
fn the_shipped_configs_pass_check_config() {
    for f in ["etc/logwell.toml", "etc/dev.toml", "etc/container.toml"] {
        let p = format!("{}/{f}", env!("CARGO_MANIFEST_DIR"));
        let out = logwelld(&["--check-config", "--config", &p]);
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    }
}

/// Issue 24 item 11: `listen = []` was accepted, and the input listened nowhere, silently.
#[test]
fn an_empty_listen_list_is_refused_with_place_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logwell.toml");
    for kind in ["udp", "tcp"] {
        std::fs::write(
            &p,
            format!(
                "[input.net]\ntype = \"{kind}\"\nlisten = []\n\n[output.f]\ntype = \"file\"\npath = \"/tmp/never-written\"\n\n[[rule]]\noutput = \"f\"\n"
            ),
        )
        .unwrap();
        let path = p.to_str().unwrap();
        let out = logwelld(&["--check-config", "--config", path]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{kind}: {err}");
        assert!(
            err.contains(&format!("{path}:3:10: `listen` of a {kind} input is empty")),
            "{err}"
        );
        assert!(err.contains("hint: list at least one address"), "{err}");
    }
}
