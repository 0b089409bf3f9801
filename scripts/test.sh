#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests against the real logwelld with the real
# `logger`, the test kit's own tests, and the conformance corpus when it is present (../shared/conformance, or
# LOGWELL_CONFORMANCE_DIR). Extra arguments go to `cargo test`. The real rsyslog and syslog-ng
# the peer tests send with are fetched (not installed) by scripts/peers.sh into target/peers.
# Then, on CI (root and CI=true, or LOGWELL_BOOT_TEST=1) and only for a full run, the .deb on a
# booted Debian 12 (scripts/boot-test.sh: systemd-nspawn, nothing on the host is changed).
# The Kafka tests need the `kafka` cargo feature (librdkafka, ~75 s more to build once) and the
# Tansu broker, installed pinned by scripts/kafka-broker.sh: a full run runs them as a second
# step (`cargo test --features kafka --lib --test it kafka`); LOGWELL_KAFKA_TESTS=0 leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
eval "$(scripts/peers.sh "${CARGO_TARGET_DIR:-target}/peers")"
if [ "${LOGWELL_KAFKA_TESTS:-1}" != 0 ]; then
  eval "$(scripts/kafka-broker.sh)"
fi
if [ -z "${LOGWELL_CONFORMANCE_DIR:-}" ] && [ -d ../shared/conformance ]; then
  LOGWELL_CONFORMANCE_DIR=$(cd ../shared/conformance && pwd)
  export LOGWELL_CONFORMANCE_DIR
fi
if [ $# -eq 0 ] && [ -n "${LOGWELL_CONFORMANCE_DIR:-}" ]; then
  # The conformance corpus first, uncaptured, so its pass rates per disposition are shown.
  cargo test --locked --test it conformance -- --nocapture 2>&1 | grep -E '^conformance|^test result|panicked|FAILED' || true
fi
cargo test --locked "$@"
if [ $# -eq 0 ]; then
  # The test kit's own tests (testkit/, a workspace member `cargo test` leaves out).
  cargo test --locked -p logwell-testkit
fi
if [ $# -eq 0 ] && [ "${LOGWELL_KAFKA_TESTS:-1}" != 0 ]; then
  # The unit tests of the Kafka action and its config, then the tests against the broker.
  cargo test --locked --features kafka --lib --test it kafka
fi
if [ $# -eq 0 ] && [ "$(id -u)" -eq 0 ] && { [ "${CI:-}" = true ] || [ "${LOGWELL_BOOT_TEST:-}" = 1 ]; }; then
  scripts/boot-test.sh
fi
