# What the checks in the booted containers share (check.sh under systemd, check-sysv.sh
# under sysvinit): counting checks, bounded waits, and logging through /dev/log.
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# check WHAT CMD...: one assertion.
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# wait_for SECONDS CMD...: until CMD succeeds, bounded.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
# logged FACILITY.SEVERITY FILE: logger through /dev/log, found in FILE.
logged() {
  local text="boot-$1-$RANDOM$RANDOM"
  logger -p "$1" -t bootcheck "$text"
  wait_for 20 grep -qF "$text" "$2"
}
# input_state NAME: the state of logwelld's input NAME (running, idle, degraded).
input_state() {
  logwell stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inputs"][sys.argv[1]]["state"])' "$1"
}
