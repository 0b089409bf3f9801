#!/usr/bin/env bash
# The install test of the .deb, on a throwaway Debian 12 machine (CI), as root:
#   build the .deb; install rsyslog from Debian; install logwell over it and check rsyslog is
#   gone; start /usr/sbin/logwelld as the unit would (there is no systemd as PID 1 here);
#   `logger -p auth.info` reaches /var/log/auth.log and `logwell follow -n 1` shows it; stop
#   the daemon; `apt-get purge logwell` removes the package, its state and the _logwell user;
#   and the other way round, installing rsyslog removes logwell.
# It changes the machine (rsyslog stays removed), so it refuses to run unless root and
# CI=true or LOGWELL_PACKAGE_TEST=1. Rerunnable. LOGWELL_DEB=path skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ] || { [ "${CI:-}" != true ] && [ "${LOGWELL_PACKAGE_TEST:-}" != 1 ]; }; then
  echo "package-test: refusing to run: it installs rsyslog, replaces it with logwell and purges" >&2
  echo "package-test: logwell again. Run it as root with CI=true or LOGWELL_PACKAGE_TEST=1." >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
steps=9
n=0
step() { n=$((n + 1)); echo; echo "==> package-test [$n/$steps] $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }
ok() { echo "    ok: $*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

daemon_pid=
dev_log_link=
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    echo "package-test: stopping logwelld (pid $daemon_pid)" >&2
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [ -n "$dev_log_link" ]; then rm -f /dev/log; fi
}
trap cleanup EXIT

step "build the .deb"
if [ -n "${LOGWELL_DEB:-}" ]; then
  deb=$LOGWELL_DEB
else
  deb=$(scripts/package.sh | tail -n 1)
fi
[ -f "$deb" ] || fail "no .deb at $deb"
deb=$(realpath "$deb")
ok "$deb"

step "install rsyslog from Debian"
apt-get update -qq
# A logwell left by an earlier run is replaced here, as the Conflicts say.
apt-get install -y -qq rsyslog >/dev/null
installed rsyslog || fail "rsyslog did not install"
ok "rsyslog $(dpkg-query -W -f='${Version}' rsyslog) installed"

step "install logwell over it"
# The postinst must create _logwell itself (scripts/deps.sh made one for the privsep tests).
if getent passwd _logwell >/dev/null; then userdel _logwell; fi
apt_log=$(mktemp)
apt-get install -y "$deb" 2>&1 | tee "$apt_log"
installed logwell || fail "logwell is not installed"
installed rsyslog && fail "rsyslog is still installed: the Conflicts did not remove it"
ok "rsyslog removed ($(dpkg-query -W -f='${Status}' rsyslog 2>/dev/null || echo purged))"
id _logwell >/dev/null || fail "no _logwell user"
[ "$(id -gn _logwell)" = adm ] || fail "_logwell's group is $(id -gn _logwell), not adm"
[ "$(getent passwd _logwell | cut -d: -f6,7)" = /nonexistent:/usr/sbin/nologin ] || fail "_logwell: $(getent passwd _logwell)"
ok "user: $(id _logwell)"
[ -d /var/lib/logwell ] && [ -d /etc/logwell/conf.d ] || fail "/var/lib/logwell or /etc/logwell/conf.d missing"
dpkg-query -W -f='${Conffiles}\n' logwell | grep -q '/etc/logwell/logwell.toml' || fail "logwell.toml is not a conffile"
[ -L /etc/systemd/system/multi-user.target.wants/logwell.service ] || fail "the unit is not enabled"
case "$(readlink /etc/systemd/system/syslog.service)" in
  */lib/systemd/system/logwell.service) ;;
  *) fail "syslog.service is not logwell: $(ls -l /etc/systemd/system/syslog.service 2>&1)" ;;
esac
ok "unit enabled, syslog.service -> logwell.service, conffile, state and drop-in directories"
# rsyslog's logrotate stanza must not rotate logwell's files behind its back (Debian 12's
# rsyslog renames it to rsyslog.disabled on remove; logwell's postinst warns otherwise).
if ! command -v logrotate >/dev/null; then
  ok "no logrotate on this machine"
elif logrotate --debug /etc/logrotate.conf 2>&1 | grep -q '/var/log/syslog'; then
  grep -q 'apt-get purge rsyslog' "$apt_log" || fail "logrotate still rotates /var/log/syslog and the postinst did not say so"
  ok "logrotate still has a stanza for /var/log/syslog; the postinst said to purge rsyslog"
else
  ok "logrotate has no stanza for /var/log/syslog any more ($(ls /etc/logrotate.d | grep rsyslog || echo none))"
fi
for p in /usr/sbin/logwelld /usr/bin/logwell /usr/share/man/man8/logwelld.8.gz /usr/share/man/man1/logwell.1.gz \
         /usr/share/man/man5/logwell.toml.5.gz \
         /usr/share/bash-completion/completions/logwell /usr/share/bash-completion/completions/logwelld \
         /usr/share/zsh/vendor-completions/_logwell /usr/share/zsh/vendor-completions/_logwelld \
         /usr/share/fish/vendor_completions.d/logwell.fish /usr/share/fish/vendor_completions.d/logwelld.fish; do
  [ -e "$p" ] || fail "$p is not installed"
done
ok "binaries, man pages, completions"

step "start /usr/sbin/logwelld as the unit would"
# The unit's RuntimeDirectory= and StateDirectory= (systemd would create them), its
# ExecStartPre, then ExecStart in the foreground, as root, on /etc/logwell/logwell.toml,
# confined as the unit confines it where setpriv can: its CapabilityBoundingSet= and
# NoNewPrivileges=yes. Without syslog.socket, logwelld binds /run/systemd/journal/syslog itself.
unit=/lib/systemd/system/logwell.service
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || fail "no CapabilityBoundingSet= in $unit"
bounding=-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)
grep -qx 'NoNewPrivileges=yes' "$unit" || fail "the unit no longer sets NoNewPrivileges=yes"
install -d -m 0755 /run/logwell
/usr/sbin/logwelld --check-config || fail "logwelld --check-config refused the shipped configuration"
daemon_log=$(mktemp)
setpriv --no-new-privs --bounding-set "$bounding" /usr/sbin/logwelld >"$daemon_log" 2>&1 &
daemon_pid=$!
wait_for 30 /usr/bin/logwell stats || { cat "$daemon_log" >&2; fail "logwelld did not answer on its control socket within 30 s"; }
[ -S /run/systemd/journal/syslog ] || fail "no socket at /run/systemd/journal/syslog"
ok "logwelld (pid $daemon_pid) is ready under setpriv --no-new-privs --bounding-set $bounding"
# The worker, the parent's one child: _logwell, no capability left, no new privileges.
worker=$(cat /proc/"$daemon_pid"/task/*/children | tr ' ' '\n' | grep -m 1 .) || fail "logwelld has no worker process"
status_of() { awk -v k="$1:" '$1 == k { print $2 }' /proc/"$worker"/status; }
[ "$(status_of Uid)" = "$(id -u _logwell)" ] || fail "the worker runs as uid $(status_of Uid)"
for set in CapInh CapPrm CapEff CapBnd CapAmb; do
  [ "$(status_of $set)" = 0000000000000000 ] || fail "the worker's $set is $(status_of $set)"
done
[ "$(status_of NoNewPrivs)" = 1 ] || fail "the worker's NoNewPrivs is $(status_of NoNewPrivs)"
ok "worker (pid $worker) runs as _logwell with every capability set empty and NoNewPrivs"

step "logger -p auth.info lands in /var/log/auth.log"
text="logwell-package-test-$$-$RANDOM"
# The socket journald forwards to (syslog.socket's).
logger -u /run/systemd/journal/syslog -p auth.info "$text via the syslog socket"
# And /dev/log, glibc's syslog(): on a host without journald, nothing provides it; link it to
# the shipped config's local socket for this test (journald's link is left alone).
if [ ! -e /dev/log ]; then
  ln -s /run/logwell/log.sock /dev/log
  dev_log_link=1
fi
logger -p auth.info "$text via /dev/log"
wait_for 30 grep -qF "$text via the syslog socket" /var/log/auth.log || fail "the syslog socket's message is not in /var/log/auth.log"
wait_for 30 grep -qF "$text via /dev/log" /var/log/auth.log || fail "the /dev/log message is not in /var/log/auth.log"
grep -F "$text" /var/log/syslog && fail "an auth message reached /var/log/syslog (auth,authpriv.none)"
ok "$(grep -F "$text" /var/log/auth.log | head -n 1)"
[ "$(stat -c %U:%G:%a /var/log/auth.log)" = root:adm:640 ] || fail "/var/log/auth.log is $(stat -c %U:%G:%a /var/log/auth.log)"
ok "/var/log/auth.log is root:adm 0640"

step "logwell follow -n 1 shows it"
# The real follow, through the daemon's follow service found in /etc/logwell/logwell.toml:
# run it in the background, wait (bounded) for the line, then end it by its PID.
follow_out=$(mktemp)
/usr/bin/logwell follow -n 1 auth >"$follow_out" 2>&1 &
follow_pid=$!
for _ in $(seq 1 100); do
  grep -qF "$text" "$follow_out" && break
  sleep 0.1
done
kill "$follow_pid" 2>/dev/null || true
wait "$follow_pid" 2>/dev/null || true
grep -F "$text" "$follow_out" || fail "logwell follow -n 1 auth did not show the message: $(cat "$follow_out")"
rm -f "$follow_out"
ok "logwell follow -n 1 auth"
/usr/bin/logwell cat -n 2 /var/log/auth.log | grep -qF "$text" || fail "logwell cat does not show the message"
ok "logwell cat -n 2 /var/log/auth.log"

step "stop logwelld by its PID"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
[ $status -eq 0 ] || { cat "$daemon_log" >&2; fail "logwelld exited with $status"; }
ok "exited 0"

step "apt-get purge logwell"
apt-get purge -y logwell
installed logwell && fail "logwell is still installed"
dpkg-query -W logwell >/dev/null 2>&1 && fail "logwell is not purged: $(dpkg-query -W -f='${Status}' logwell)"
[ -e /var/lib/logwell ] && fail "/var/lib/logwell is still there"
getent passwd _logwell >/dev/null && fail "the _logwell user is still there"
[ -e /etc/logwell ] && fail "/etc/logwell is still there"
[ -e /etc/systemd/system/syslog.service ] && fail "syslog.service still points somewhere"
ok "package, /var/lib/logwell, /etc/logwell, _logwell and the unit's links are gone"

step "and the other way round: installing rsyslog removes logwell"
apt-get install -y -qq "$deb" >/dev/null
installed logwell || fail "logwell did not install again"
apt-get install -y -qq rsyslog >/dev/null
installed rsyslog || fail "rsyslog did not install"
installed logwell && fail "logwell is still installed beside rsyslog: the Conflicts did not remove it"
ok "rsyslog $(dpkg-query -W -f='${Version}' rsyslog) replaced logwell ($(dpkg-query -W -f='${Status}' logwell 2>/dev/null))"
apt-get purge -y -qq logwell >/dev/null
echo
echo "package-test: PASSED (rsyslog is back)"
