//! Configuration: reading `/etc/logwell/logwell.toml` and its drop-ins
//! (`/etc/logwell/conf.d/*.toml`, in name order), and turning them into validated
//! [`Settings`].
//!
//! Three stages, as in zincati: [`raw`] serde structs that refuse unknown keys, then
//! validation that checks meaning, then the [`settings`] types the daemon runs on. Every
//! error carries file, line, column and a hint, and all of them are reported at once. The
//! daemon at start, on SIGHUP, and `logwelld --check-config` all call [`load()`].
//!
//! One file per job: `load` reads the files and assembles `Settings`; `check` is the error
//! collector every builder writes to; `inputs`, `outputs` and `rules` build those sections,
//! `follow`, `forward`, `kafka`, `rotation` and [`limits`] theirs; `host` holds the checks
//! that ask the system (users, groups, what the worker may list); [`tls`] reads every TLS
//! file. [`keys`] lists every key, from the serde definitions, for the man-page test, and
//! which output type takes which `[output.NAME]` key.

mod check;
mod dropins;
mod error;
mod file_input;
mod follow;
mod forward;
mod host;
mod http;
mod inputs;
mod kafka;
pub mod keys;
pub mod limits;
mod load;
mod outputs;
pub(crate) mod raw;
mod rotation;
pub(crate) mod rsyslog;
mod rules;
pub(crate) mod settings;
pub(crate) mod tls;

pub use crate::render::Format;
pub use error::{ConfigError, ConfigErrors};
pub use follow::{
    ExternalFile, FollowSettings, FollowTls, DEFAULT_FOLLOW_LISTEN, DEFAULT_FOLLOW_SOCKET,
};
pub use forward::{
    Balance, ForwardSettings, ForwardTls, Framing, Protocol, Target, DEFAULT_QUEUE_MAX_DISK_BYTES,
    DEFAULT_QUEUE_MEMORY_BYTES, DEFAULT_QUEUE_SEGMENT_BYTES,
};
pub use http::{BodyCompression, Encoding, HttpSettings, Preset, MAX_LABEL_VALUES};
pub use kafka::{Compression, KafkaSettings, KafkaTls, Payload, Sasl, SaslMechanism};
pub use load::{load, load_files, load_texts, ConfigPaths};

/// Translates one rsyslog configuration text (the files it includes are not read) as
/// `logwell import-rsyslog` does: logwell TOML, and the report's lines (what was not
/// translated, or differs). The rsyslog fuzzer's entry point.
pub fn translate_rsyslog(text: &str) -> (String, Vec<String>) {
    let t = rsyslog::translate(
        &[(std::path::PathBuf::from("rsyslog.conf"), text.to_string())],
        &rsyslog::Options::default(),
        &mut |_| Vec::new(),
    );
    (t.toml, t.notes.iter().map(ToString::to_string).collect())
}
pub use rotation::{Every, RetentionSettings, RotationSettings};
pub use settings::{
    DaemonSettings, DynamicSettings, FileInputSettings, FileSettings, HttpInputSettings, InputKind,
    InputSettings, JournalSettings, KmsgSettings, MultilineSettings, OutputKind, OutputSettings,
    Oversize, RelpSettings, Settings, StreamProtocol, StreamSettings, UdpSettings,
    UnixDatagramSettings, UnixPath, UsersSettings, DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_MESSAGE_SIZE_BYTES,
};
pub use tls::client::client_config;
pub use tls::{server_config, ClientAuth, PermittedPeer, TlsFileError, TlsKey, TlsSettings};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn load_str(text: &str) -> Result<Settings, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logwell.toml");
        std::fs::write(&p, text).unwrap();
        load_files(&[p])
    }

    const OK: &str = r#"
[input.udp]
type = "udp"
listen = ["127.0.0.1:5514", "[::1]:5514"]

[output.syslog]
type = "file"
path = "/tmp/x/syslog"

[[rule]]
selector = "*.*;auth,authpriv.none"
output = "syslog"
"#;

    /// Issue 24 item 4: a tcp input had no idle timeout, no frame timeout and no per-peer
    /// cap by default, so idle sockets held every slot. Stream inputs over the network now
    /// get all three; a local unix_stream input none of the network limits.
    #[test]
    fn network_stream_inputs_have_safe_limits_by_default() {
        use crate::config::limits::{DEFAULT_FRAME_TIMEOUT, DEFAULT_IDLE_TIMEOUT};
        let tcp = OK.replace(
            "type = \"udp\"\nlisten = [\"127.0.0.1:5514\", \"[::1]:5514\"]",
            "type = \"tcp\"\nlisten = \"127.0.0.1:5514\"",
        );
        let s = load_str(&tcp).unwrap();
        let InputKind::Tcp(t) = &s.inputs[0].kind else {
            panic!("{:?}", s.inputs[0].kind)
        };
        assert_eq!(t.max_connections, 1024);
        assert_eq!(t.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(DEFAULT_IDLE_TIMEOUT.as_secs(), 600);
        assert_eq!(t.limits.frame_timeout, Some(DEFAULT_FRAME_TIMEOUT));
        assert_eq!(DEFAULT_FRAME_TIMEOUT.as_secs(), 60);
        assert_eq!(t.limits.max_connections_per_peer, Some(256));
        // The per-peer default follows max_connections; set keys win.
        let s = load_str(&tcp.replace(
            "listen = \"127.0.0.1:5514\"",
            "listen = \"127.0.0.1:5514\"\nmax_connections = 200\nidle_timeout_secs = 5\nframe_timeout_secs = 7",
        ))
        .unwrap();
        let InputKind::Tcp(t) = &s.inputs[0].kind else {
            panic!()
        };
        assert_eq!(t.limits.max_connections_per_peer, Some(50));
        assert_eq!(t.idle_timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(
            t.limits.frame_timeout,
            Some(std::time::Duration::from_secs(7))
        );
        // udp has no connections: no connection limits.
        let s = load_str(OK).unwrap();
        let InputKind::Udp(u) = &s.inputs[0].kind else {
            panic!()
        };
        assert_eq!(u.limits, crate::config::limits::Limits::default());
    }

    #[test]
    fn privsep_keys_are_validated_and_an_unknown_user_says_how_to_create_it() {
        let s = load_str(OK).unwrap();
        assert!(s.daemon.privsep, "on by default");
        assert_eq!(s.daemon.user, "_logwell");
        let off = load_str(&format!(
            "[daemon]\nprivsep = false\nuser = \"nobody\"\n{OK}"
        ))
        .unwrap();
        assert!(!off.daemon.privsep);
        assert_eq!(off.daemon.user_ids, None, "not looked up when off");
        let e = load_str(&format!("[daemon]\nuser = \"root\"\n{OK}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot run the worker") && e.contains("privsep = false"),
            "{e}"
        );
        let missing = load_str(&format!("[daemon]\nuser = \"no_such_user_lw\"\n{OK}"));
        if nix::unistd::geteuid().is_root() {
            // Privilege separation will happen: the user must exist.
            let e = missing.unwrap_err().to_string();
            assert!(
                e.contains(":2:") && e.contains("no user `no_such_user_lw`"),
                "{e}"
            );
            assert!(
                e.contains("adduser --system --no-create-home --ingroup adm"),
                "{e}"
            );
        } else {
            // Not root: privilege separation is off, so the user is not needed.
            assert!(missing.is_ok());
        }
        let nobody = load_str(&format!("[daemon]\nuser = \"nobody\"\n{OK}")).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert!(nobody.daemon.user_ids.is_some_and(|(uid, _)| uid != 0));
        }
    }

    #[test]
    fn templated_directories_the_worker_cannot_list_are_refused_under_privsep() {
        use host::dir_listable;
        // Owner bits for the owner, group bits for a member, others' bits for the rest.
        assert!(dir_listable(0o750, Some(0), Some(4), 103, &[4]));
        assert!(!dir_listable(0o750, Some(0), Some(33), 103, &[4]));
        assert!(dir_listable(0o755, Some(0), Some(33), 103, &[4]));
        assert!(
            !dir_listable(0o075, Some(103), Some(4), 103, &[4]),
            "owner bits apply"
        );
        assert!(
            !dir_listable(0o740, Some(0), Some(4), 103, &[4]),
            "no search"
        );
        let output = |extra: &str| {
            format!("[daemon]\nuser = \"nobody\"\n{OK}\n[output.remote]\ntype = \"file\"\npath = \"/tmp/x/remote/{{host}}.log\"\n{extra}")
        };
        assert!(load_str(&output("")).is_ok(), "group adm by default");
        assert!(load_str(&output("dir_mode = \"755\"\ngroup = \"root\"\n")).is_ok());
        let root_only = load_str(&output("group = \"root\"\n"));
        if nix::unistd::geteuid().is_root() {
            // Privilege separation will happen: `nobody` (groups adm, nogroup) cannot list
            // root:root 0750 directories.
            let e = root_only.unwrap_err().to_string();
            assert!(
                e.contains("could not be listed by the worker `nobody`")
                    && e.contains("dir_mode = \"0755\""),
                "{e}"
            );
        } else {
            assert!(root_only.is_ok(), "no privilege separation without root");
        }
    }

    /// Issue 24 item 6: two templated outputs that could render one file (a host and a tag
    /// both named `cron`) are refused, with both names, a file both could write, the place
    /// and a hint, among the config's other errors; templates apart are accepted.
    #[test]
    fn two_templated_outputs_that_could_write_one_file_are_refused() {
        let two = |a: &str, b: &str| {
            format!("{OK}\n[output.by_host]\ntype = \"file\"\npath = \"{a}\"\n\n[output.by_tag]\ntype = \"file\"\npath = \"{b}\"\n")
        };
        for (a, b, file) in [
            (
                "/tmp/x/hosts/{host}.log",
                "/tmp/x/hosts/{tag}.log",
                "/tmp/x/hosts/a.log",
            ),
            (
                "/tmp/x/hosts/{host}-a.log",
                "/tmp/x/hosts/{tag}.log",
                "/tmp/x/hosts/a-a.log",
            ),
        ] {
            // With another error in the same file: both are reported.
            let text = two(a, b).replace("*.*;auth", "*.nosuch;auth");
            let e = load_str(&text).unwrap_err().to_string();
            assert!(
                e.contains("outputs `by_host`") && e.contains("and `by_tag`"),
                "{e}"
            );
            assert!(e.contains(&format!("such as {file}")), "{e}");
            assert!(e.contains("logwell.toml:18:9: outputs"), "{e}");
            assert!(
                e.contains("hint: give each templated output its own directory"),
                "{e}"
            );
            assert!(e.contains("nosuch"), "collected with the others: {e}");
        }
        for (a, b) in [
            ("/tmp/x/hosts/{host}.log", "/tmp/x/hosts/{tag}.txt"),
            ("/tmp/x/hosts/{host}.log", "/tmp/x/tags/{tag}.log"),
            ("/tmp/x/hosts/{host}/{tag}.log", "/tmp/x/hosts/{host}.log"),
        ] {
            assert!(load_str(&two(a, b)).is_ok(), "{a} and {b}");
        }
    }

    #[test]
    fn a_small_config_validates() {
        let s = load_str(OK).unwrap();
        assert_eq!(s.inputs.len(), 1);
        let InputKind::Udp(u) = &s.inputs[0].kind else {
            panic!()
        };
        assert_eq!(u.listen.len(), 2);
        assert_eq!(u.max_message_size_bytes, 64 * 1024);
        assert_eq!(s.rules.len(), 1);
        assert_eq!(s.rules[0].outputs, vec![0]);
    }

    #[test]
    fn unknown_key_is_refused_with_its_place() {
        let e = load_str(&OK.replace("listen =", "listne ="))
            .unwrap_err()
            .to_string();
        assert!(e.contains("logwell.toml:4:1"), "{e}");
        assert!(e.contains("unknown field `listne`"), "{e}");
        assert!(e.contains("hint:"), "{e}");
    }

    #[test]
    fn a_listen_address_without_a_port_takes_the_default_port_of_its_type() {
        // Without privilege separation: whether its user exists is another test's matter.
        let no_privsep = format!("[daemon]\nprivsep = false\n{OK}");
        let s = load_str(&no_privsep.replace(
            r#"["127.0.0.1:5514", "[::1]:5514"]"#,
            r#"["127.0.0.1", "[::1]", "::2", "127.0.0.3:5514"]"#,
        ))
        .unwrap();
        let InputKind::Udp(u) = &s.inputs[0].kind else {
            panic!()
        };
        let listen: Vec<String> = u.listen.iter().map(ToString::to_string).collect();
        assert_eq!(
            listen,
            ["127.0.0.1:514", "[::1]:514", "[::2]:514", "127.0.0.3:5514"]
        );
        let tcp = load_str(&no_privsep.replace(
            "type = \"udp\"\nlisten = [\"127.0.0.1:5514\", \"[::1]:5514\"]",
            "type = \"tcp\"\nlisten = \"0.0.0.0\"",
        ))
        .unwrap();
        let InputKind::Tcp(t) = &tcp.inputs[0].kind else {
            panic!()
        };
        assert_eq!(t.listen[0].to_string(), "0.0.0.0:514");
        // tls inputs take 6514 (their files make a unit test heavy: tests/it/tls.rs
        // checks it through --check-config).
        assert_eq!(inputs::default_port("tls"), 6514);
        // Brackets are for IPv6; a name is not resolved.
        for bad in ["[127.0.0.1]", "localhost", "::1:514x", ""] {
            let e = load_str(&no_privsep.replace("\"127.0.0.1:5514\"", &format!("\"{bad}\"")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "`{bad}` is not an IP address, with or without a port"
                )),
                "{bad}: {e}"
            );
            assert!(e.contains("or an address alone for port 514"), "{e}");
        }
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let bad = OK
            .replace("\"127.0.0.1:5514\"", "\"127.0.0.1:70000\"")
            .replace("*.*;auth", "*.*;oops")
            .replace("output = \"syslog\"", "output = \"sylog\"");
        let e = load_str(&bad).unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(":4:10: `127.0.0.1:70000` is not an IP address, with or without a port"),
            "{text}"
        );
        assert!(text.contains("unknown facility `oops`"), "{text}");
        assert!(text.contains("no output is named `sylog`"), "{text}");
        assert!(text.contains("3 errors"), "{text}");
    }

    #[test]
    fn a_templated_path_gets_its_base_fallback_and_defaults() {
        let s = load_str(&OK.replace("/tmp/x/syslog", "/tmp/x/{host}/{tag}.log")).unwrap();
        let OutputKind::File(f) = &s.outputs[0].kind else {
            panic!()
        };
        let d = f.dynamic.as_ref().expect("templated");
        assert_eq!(d.template.base(), std::path::Path::new("/tmp/x"));
        assert_eq!(d.fallback, std::path::Path::new("/tmp/x/.fallback.log"));
        assert_eq!((d.max_open_files, d.dir_mode), (256, 0o750));
        assert!(f.records() && !f.reduce_repeats);
        // On a plain path, the template keys are refused.
        let e = load_str(&OK.replace(
            "path = \"/tmp/x/syslog\"",
            "path = \"/tmp/x/syslog\"\nmax_open_files = 8",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`max_open_files` applies only to a path with fields"),
            "{e}"
        );
    }

    #[test]
    fn users_outputs_and_discard_rules_validate() {
        let text = format!(
            "{OK}\n[output.everyone]\ntype = \"users\"\n\n[[rule]]\nselector = \"*.emerg\"\noutput = \"everyone\"\n\n[[rule]]\nprogram = \"noisy\"\ndiscard = true\n"
        );
        let s = load_str(&text).unwrap();
        let users = s
            .outputs
            .iter()
            .find_map(|o| match &o.kind {
                OutputKind::Users(u) => Some(u),
                _ => None,
            })
            .expect("a users output");
        assert!(users.users.is_empty(), "\"*\" is everyone");
        assert_eq!(users.utmp, std::path::Path::new("/var/run/utmp"));
        let discard = s.rules.last().unwrap();
        assert!(discard.outputs.is_empty() && discard.is_final);
        let bad = text
            .replace("type = \"users\"", "type = \"users\"\npath = \"/x\"")
            .replace("discard = true", "discard = true\noutput = \"syslog\"");
        let e = load_str(&bad).unwrap_err().to_string();
        assert!(e.contains("`path` does not apply to users outputs"), "{e}");
        assert!(e.contains("`discard = true` writes nowhere"), "{e}");
    }

    #[test]
    fn keys_of_another_input_kind_are_refused() {
        let e = load_str(&OK.replace("type = \"udp\"", "type = \"udp\"\nmax_connections = 5"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`max_connections` does not apply to udp inputs"),
            "{e}"
        );
    }

    #[test]
    fn drop_ins_add_inputs_and_rules_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("logwell.toml");
        std::fs::write(&main, OK).unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/20-b.toml"),
            "[[rule]]\nselector = \"mail.*\"\noutput = \"syslog\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf.d/10-a.toml"),
            "[input.tcp]\ntype = \"tcp\"\nlisten = \"127.0.0.1:5515\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("conf.d/ignored.conf"), "garbage").unwrap();
        let s = load(&ConfigPaths::beside(&main)).unwrap();
        assert_eq!(s.inputs.len(), 2);
        assert_eq!(s.rules.len(), 2);
    }

    #[test]
    fn duplicate_names_across_files_name_both_places() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("logwell.toml");
        std::fs::write(&main, OK).unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/a.toml"),
            "[input.udp]\ntype = \"udp\"\nlisten = \"127.0.0.1:5516\"\n",
        )
        .unwrap();
        let e = load(&ConfigPaths::beside(&main)).unwrap_err().to_string();
        assert!(
            e.contains("a.toml:1:8: input `udp` is declared twice"),
            "{e}"
        );
        assert!(e.contains("logwell.toml:2"), "{e}");
    }

    #[test]
    fn inputs_may_not_share_an_address_or_path_and_sizes_are_bounded() {
        let text = format!(
            "{OK}\n[input.again]\ntype = \"udp\"\nlisten = \"127.0.0.1:5514\"\nmax_message_size_bytes = 999999999999\n\n[input.a]\ntype = \"unix_datagram\"\npath = \"/run/logwell/control.sock\"\n"
        );
        let e = load_str(&text).unwrap_err().to_string();
        assert!(
            e.contains("input `udp` and input `again` both use udp 127.0.0.1:5514")
                || e.contains("input `again` and input `udp` both use udp 127.0.0.1:5514"),
            "{e}"
        );
        assert!(
            e.contains("input `a` and the control socket both use unix /run/logwell/control.sock"),
            "{e}"
        );
        assert!(
            e.contains("`max_message_size_bytes` must be a number from 1 to 16777216"),
            "{e}"
        );
    }

    #[test]
    fn a_socket_may_not_sit_where_a_log_file_is() {
        let text =
            format!("{OK}\n[input.local]\ntype = \"unix_datagram\"\npath = \"/tmp/x/syslog\"\n");
        let e = load_str(&text).unwrap_err().to_string();
        assert!(
            e.contains("input `local` and output `syslog` both use unix /tmp/x/syslog"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_says_how_to_fix() {
        let e = load_files(&[PathBuf::from("/nonexistent/logwell.toml")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/logwell.toml: cannot read"), "{e}");
        assert!(e.contains("--config"), "{e}");
    }

    #[test]
    fn shipped_configs_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in ["etc/logwell.toml", "etc/dev.toml", "etc/container.toml"] {
            let s = load_files(&[root.join(f)]);
            assert!(s.is_ok(), "{f}: {}", s.unwrap_err());
        }
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_kafka_output_gets_its_defaults_and_a_queue_in_the_state_dir() {
        let s = load_str(&format!(
            "[daemon]\nprivsep = false\nstate_dir = \"/tmp/lw-state\"\n{OK}\n\
             [output.k]\ntype = \"kafka\"\nbrokers = \"k1:9092\"\ntopic = \"logs.{{facility}}\"\n"
        ))
        .unwrap();
        let o = s.outputs.iter().find(|o| o.name == "k").unwrap();
        let OutputKind::Kafka(k) = &o.kind else {
            panic!("{o:?}")
        };
        assert_eq!(k.brokers, ["k1:9092"]);
        assert_eq!(
            k.partition_key,
            crate::render::kafka_template::KafkaTemplate::parse("{host}").unwrap()
        );
        assert_eq!(k.payload, Payload::Json);
        assert_eq!(k.compression, Compression::None);
        assert_eq!(k.acks, -1);
        assert!(k.idempotence);
        assert!(k.tls.is_none() && k.sasl.is_none());
        assert_eq!(
            k.queue.dir.as_deref(),
            Some(std::path::Path::new("/tmp/lw-state/queue/k"))
        );
    }

    #[test]
    fn kafka_output_errors_are_all_reported_with_hints() {
        let e = load_str(&format!(
            "{OK}\n[output.k]\ntype = \"kafka\"\nbrokers = \"nope\"\ntopic = \"logs.{{nope}}\"\n\
             acks = \"1\"\ncompression = \"brotli\"\nca = \"/ca.pem\"\nsasl_username = \"u\"\n\
             [output.f]\ntype = \"file\"\npath = \"/tmp/x.log\"\ntopic = \"t\"\n"
        ))
        .unwrap_err()
        .to_string();
        for want in [
            "`nope` is not a broker address",
            "unknown field `{nope}`",
            "the idempotent producer needs `acks = \"all\"`",
            "`compression = \"brotli\"` is not one of the choices",
            "`ca` needs protocol = \"tls\"",
            "`sasl_username` needs `sasl_mechanism`",
            "`topic` does not apply to file outputs",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    /// Kafka's TLS files go through the same reader as forward's: a CA file without a
    /// certificate is refused on the `ca` line, with the forward output's hint.
    #[test]
    fn kafka_tls_files_are_checked_as_forward_checks_them() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let output = |kind: &str, extra: &str| {
            format!(
                "{OK}\n[output.o]\ntype = \"{kind}\"\n{extra}protocol = \"tls\"\nca = \"{}\"\n",
                ca.display()
            )
        };
        let text = output("kafka", "brokers = \"k1:9092\"\ntopic = \"logs\"\n");
        let ca_line = text.lines().position(|l| l.starts_with("ca = ")).unwrap() + 1;
        let kafka = load_str(&text).unwrap_err().to_string();
        let forward = load_str(&output("forward", "targets = \"central:6514\"\n"))
            .unwrap_err()
            .to_string();
        // `FILE:LINE:COL: what`: the line, and what is wrong.
        let complaint = |e: &str| {
            e.lines()
                .filter_map(|l| l.split_once(".toml:"))
                .find(|(_, r)| r.contains("ca.pem"))
                .map(|(_, r)| {
                    let mut at = r.splitn(3, ':');
                    let line: usize = at.next().unwrap().parse().unwrap();
                    (line, at.nth(1).unwrap().trim().to_string())
                })
        };
        let (line, what) = complaint(&kafka).unwrap_or_else(|| panic!("{kafka}"));
        assert_eq!(line, ca_line, "the error points at the `ca` line:\n{kafka}");
        assert!(what.contains("holds no PEM certificate"), "{kafka}");
        assert_eq!(Some(what), complaint(&forward).map(|(_, w)| w), "{forward}");
    }

    #[test]
    fn a_forward_output_gets_its_defaults_and_a_queue_in_the_state_dir() {
        let s = load_str(&format!(
            "[daemon]\nprivsep = false\nstate_dir = \"/tmp/lw-state\"\n{OK}\n\
             [output.central]\ntype = \"forward\"\ntargets = \"log.example.com:514\"\n\
             [output.central.queue]\nmemory_bytes = 0\nfsync = \"batch\"\n"
        ))
        .unwrap();
        let o = s.outputs.iter().find(|o| o.name == "central").unwrap();
        let OutputKind::Forward(f) = &o.kind else {
            panic!("{o:?}")
        };
        assert_eq!(
            f.targets,
            [Target {
                host: "log.example.com".into(),
                port: 514
            }]
        );
        assert_eq!(f.protocol, Protocol::Tcp);
        assert_eq!(f.framing, Framing::OctetCounting);
        assert_eq!(f.format, Format::Rfc5424);
        assert_eq!(f.balance, Balance::Failover);
        assert_eq!(f.reconnect_min, std::time::Duration::from_millis(500));
        assert_eq!(f.reconnect_max, std::time::Duration::from_secs(60));
        assert!(f.tls.is_none());
        assert_eq!(
            f.queue.dir.as_deref(),
            Some(std::path::Path::new("/tmp/lw-state/queue/central"))
        );
        assert_eq!(f.queue.memory_bytes, 0);
        assert_eq!(f.queue.max_disk_bytes, DEFAULT_QUEUE_MAX_DISK_BYTES);
        assert_eq!(f.queue.fsync, crate::queue::Fsync::Batch);
    }
}
