#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests against the real logwelld with the real
# `logger`, and the conformance corpus when it is present (../shared/conformance, or
# LOGWELL_CONFORMANCE_DIR). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
if [ -z "${LOGWELL_CONFORMANCE_DIR:-}" ] && [ -d ../shared/conformance ]; then
  LOGWELL_CONFORMANCE_DIR=$(cd ../shared/conformance && pwd)
  export LOGWELL_CONFORMANCE_DIR
fi
exec cargo test --locked "$@"
