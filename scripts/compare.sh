#!/usr/bin/env bash
# The side-by-side benchmark (issue 8): logwell, rsyslog, syslog-ng (stock and tuned) and a
# floor program on the same machine, the same load from the same generator, interleaved,
# repeated, medians in one table. See bench/compare.rs for what is measured and how.
#
# Usage: scripts/compare.sh [CASE...] [--rounds N] [--quick] [--daemons logwell,rsyslog,...]
#        scripts/compare.sh --list
#
# rsyslog (with its ossl/gtls TLS drivers) and syslog-ng-core conflict as Debian packages and
# either would replace the machine's own syslog, so neither is installed: scripts/peers.sh
# downloads both with `apt-get download` and unpacks them with `dpkg -x` into target/peers
# (only their shared libraries are installed with apt; idempotent). Each daemon then runs in the
# foreground on a private config, pid file and sockets in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
eval "$(scripts/peers.sh "$target/peers")"
export LOGWELL_PEERS_DIR
exec cargo bench --bench compare -- "$@"
