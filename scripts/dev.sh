#!/usr/bin/env bash
# Builds logwelld and runs it in the foreground on the development config (etc/dev.toml):
# no root needed, logs under ./dev-run/log/, UDP and TCP on 127.0.0.1:5514, Unix sockets
# under ./dev-run/. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh dev
cargo build --release --bin logwelld --bin logwell
mkdir -p dev-run/log
echo "logwell: logs in dev-run/log/; try: logger -n 127.0.0.1 -P 5514 --udp hello" >&2
exec target/release/logwelld --config etc/dev.toml "$@"
