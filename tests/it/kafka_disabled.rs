//! A logwelld built without the `kafka` feature refuses `type = "kafka"` at
//! `--check-config`, saying why; the Kafka tests themselves (`kafka.rs`) need the feature.

use std::process::Command;

#[test]
fn kafka_output_without_the_feature_fails_check_config_clearly() {
    eprintln!(
        "skipped: the Kafka tests need `cargo test --features kafka` (scripts/test.sh runs them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logwell.toml");
    std::fs::write(
        &config,
        "[output.k]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopic = \"logs\"\n\n[[rule]]\noutput = \"k\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logwelld"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("built without Kafka support"), "{err}");
    assert!(err.contains("--features kafka"), "{err}");
}
