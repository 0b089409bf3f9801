#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests against the real logwelld with the real
# `logger`, and the conformance corpus when it is present (../shared/conformance, or
# LOGWELL_CONFORMANCE_DIR). Extra arguments go to `cargo test`. The real rsyslog and syslog-ng
# the peer tests send with are fetched (not installed) by scripts/peers.sh into target/peers.
# Then, on CI (root and CI=true, or LOGWELL_PACKAGE_TEST=1) and only for a full run, the .deb install test
# (scripts/package-test.sh), which replaces rsyslog on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
eval "$(scripts/peers.sh "${CARGO_TARGET_DIR:-target}/peers")"
if [ -z "${LOGWELL_CONFORMANCE_DIR:-}" ] && [ -d ../shared/conformance ]; then
  LOGWELL_CONFORMANCE_DIR=$(cd ../shared/conformance && pwd)
  export LOGWELL_CONFORMANCE_DIR
fi
if [ $# -eq 0 ] && [ -n "${LOGWELL_CONFORMANCE_DIR:-}" ]; then
  # The conformance corpus first, uncaptured, so its pass rates per disposition are shown.
  cargo test --locked --test it conformance -- --nocapture 2>&1 | grep -E '^conformance|^test result|panicked|FAILED' || true
fi
cargo test --locked "$@"
if [ $# -eq 0 ] && [ "$(id -u)" -eq 0 ] && { [ "${CI:-}" = true ] || [ "${LOGWELL_PACKAGE_TEST:-}" = 1 ]; }; then
  scripts/package-test.sh
fi
