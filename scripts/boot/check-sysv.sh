#!/bin/bash
# Runs inside the booted Debian 12 with sysvinit as PID 1 (sysvinit-core, no systemd, no
# journald), started once by /etc/inittab in runlevel 2; scripts/boot-test.sh boots it
# ("sysv"). Installs the .deb as a user would, then checks that logwelld provides /dev/log,
# that `service logwell ...` works, that dpkg's trigger reloads it when haproxy brings its
# rsyslog drop-in, and that remove and purge clean up. Writes one line per
# check and a closing count to stdout (/out/result.txt).
set -u
. /harness/lib.sh
pid() { cat /run/logwelld.pid 2>/dev/null; }
running() { [ -n "$(pid)" ] && kill -0 "$(pid)" 2>/dev/null; }

echo "booted: init $(cat /proc/1/comm), runlevel $(runlevel), kernel log device: $(ls -l /dev/kmsg 2>&1)"
echo "/dev/log before logwell: $(ls -l /dev/log 2>&1)"
check "no systemd runs" test ! -d /run/systemd/system

apt_offline
apt-get install -y /harness/logwell.deb >/tmp/apt.log 2>&1 || echo "  $(tail -5 /tmp/apt.log)"
check "logwell installed" installed logwell
check "/etc/init.d/logwell is linked into runlevel 2 (update-rc.d)" sh -c 'ls /etc/rc2.d/S*logwell'
check "and out of runlevel 0" sh -c 'ls /etc/rc0.d/K*logwell'
check "the postinst started it: service logwell status" service logwell status
check "/dev/log is logwelld's socket" test -S /dev/log
check "/run/systemd was not created" test ! -e /run/systemd
check "the /dev/log input runs" test "$(input_state devlog)" = running
check "the journald input is idle (no journald)" test "$(input_state journald)" = idle
check "logger -p auth.info reaches /var/log/auth.log through /dev/log" logged auth.info /var/log/auth.log
check "logger -p user.info reaches /var/log/syslog" logged user.info /var/log/syslog
check "auth.log is root:adm 0640" test "$(stat -c %U:%G:%a /var/log/auth.log)" = root:adm:640
worker=$(cat /proc/"$(pid)"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m 1 .)
check "the worker runs as _logwell" test "$(awk '$1 == "Uid:" { print $2 }' /proc/"$worker"/status)" = "$(id -u _logwell)"

# Reload while messages flow: nothing lost, the same process.
before=$(pid)
( for i in $(seq 1 300); do logger -p user.info -t reload "reload-$i"; done ) &
sender=$!
sleep 0.2
service logwell reload >/tmp/reload.txt 2>&1
check "service logwell reload succeeds" sh -c "grep -q 'Reloading' /tmp/reload.txt"
wait "$sender"
check "reload: the same process" test "$(pid)" = "$before"
check "reload: 300 of 300 messages sent meanwhile are written" wait_for 20 sh -c '[ "$(grep -c " reload: reload-" /var/log/syslog)" = 300 ]'

# A package with an rsyslog drop-in, installed after logwell (issue 31): dpkg's trigger on
# /etc/rsyslog.d runs the postinst's sysvinit branch, `invoke-rc.d logwell reload`, and the
# same process takes haproxy's socket and rule.
reloads() { grep -c 'configuration reloaded' /var/log/logwelld.log; }
reloads_before=$(reloads)
apt-get install -y --no-install-recommends /harness/debs-haproxy/*.deb >/tmp/apt-haproxy.log 2>&1 || echo "  $(tail -5 /tmp/apt-haproxy.log)"
check "haproxy installed after logwell, with its /etc/rsyslog.d/49-haproxy.conf" eval 'installed haproxy && [ -e /etc/rsyslog.d/49-haproxy.conf ]'
check "dpkg ran logwell's trigger" grep -q '^Processing triggers for logwell' /tmp/apt-haproxy.log
check "which reloaded logwelld (invoke-rc.d logwell reload)" wait_for 10 eval '[ "$(reloads)" -gt "$reloads_before" ]'
check "the same process" test "$(pid)" = "$before"
check "haproxy's drop-in: logger -u /var/lib/haproxy/dev/log -t haproxy reaches /var/log/haproxy.log, not /var/log/syslog" haproxy_probe /var/lib/haproxy/dev/log

service logwell restart >/dev/null 2>&1
check "service logwell restart: running" running
check "as a new process" test "$(pid)" != "$before"
check "and it logs" logged user.info /var/log/syslog

# The kernel log: read where /dev/kmsg can be read; otherwise that input alone is degraded.
if python3 -c 'open("/dev/kmsg", "rb")' 2>/dev/null; then
  check "the kernel input runs" test "$(input_state kernel)" = running
  text="logwell-boot-test: kmsg-$RANDOM$RANDOM"
  echo "<6>$text" >/dev/kmsg
  # (The kernel files a line written to /dev/kmsg without a facility under user.)
  check "a line of the kernel log reaches /var/log/syslog" wait_for 20 grep -qF "$text" /var/log/syslog
else
  echo "  /dev/kmsg cannot be read here: $(python3 -c 'open("/dev/kmsg", "rb")' 2>&1 | tail -n 1)"
  check "the kernel input is degraded (it cannot read /dev/kmsg)" test "$(input_state kernel)" = degraded
  check "and the others log" logged user.info /var/log/syslog
fi

service logwell stop >/dev/null 2>&1
check "service logwell stop: it has exited" test -z "$(pidof logwelld)"
check "and removed its /dev/log" test ! -e /dev/log
service logwell start >/dev/null 2>&1
check "service logwell start: running again" running
check "and logs" logged user.info /var/log/syslog

apt-get remove -y logwell >/dev/null 2>&1
check "apt remove stops it" test -z "$(pidof logwelld)"
check "and leaves the init script, not executable" sh -c '[ -f /etc/init.d/logwell ] && [ ! -x /etc/init.d/logwell ]'
apt-get purge -y logwell >/dev/null 2>&1
check "apt purge removes the init script and its links" sh -c '[ ! -e /etc/init.d/logwell ] && ! ls /etc/rc?.d/*logwell 2>/dev/null'
check "and _logwell" sh -c '! getent passwd _logwell'

echo "boot-test (sysv): $passed passed, $failed failed"
