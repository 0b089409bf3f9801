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
# haproxy_probe SOCKET: a line from "haproxy" on haproxy's socket (49-haproxy.conf's
# $AddUnixListenSocket) reaches /var/log/haproxy.log, and not /var/log/syslog (the drop-in's
# stop; its rules come before logwell.toml's). Once it is in haproxy.log, a line through
# /dev/log that reaches syslog shows that syslog's writes are in too.
haproxy_probe() {
  local sock=$1 text="haproxy-probe-$RANDOM$RANDOM"
  [ -S "$sock" ] || { echo "  no socket $sock"; return 1; }
  logger -u "$sock" -t haproxy "$text" || return 1
  wait_for 10 grep -qF "$text" /var/log/haproxy.log || { echo "  not in /var/log/haproxy.log"; return 1; }
  logged user.info /var/log/syslog || return 1
  ! grep -qF "$text" /var/log/syslog || { echo "  in /var/log/syslog too"; return 1; }
}
# apt_offline: the container has no network, and every .deb it installs is in /harness. Its
# apt still has the mirror's package lists from debootstrap, and for a .deb whose version is
# also there (iptables, liblua5.3-0, libestr0, ...) it tries the mirror first, and waits
# about 7 s for the name lookups to fail before it takes the local file. Without sources, it
# takes the local files at once.
apt_offline() {
  printf '%s\n' '// scripts/boot/lib.sh: no network here; the .debs come from /harness.' \
    'Dir::Etc::SourceList "/dev/null";' 'Dir::Etc::SourceParts "/dev/null";' \
    >/etc/apt/apt.conf.d/00boot-test-offline
}
