#!/bin/bash
# Runs inside the booted Debian 12 (systemd as PID 1), started at boot by boot-check.service;
# scripts/boot-test.sh boots it. Writes one line per check and a closing count to stdout
# (/out/result.txt), the restart gaps to /out/gaps.txt, and powers the container off after.
# /harness holds the .debs; /out/mode says whether /dev/kmsg is bound in ("kmsg") or not.
set -u
. /harness/lib.sh
mode=$(cat /out/mode 2>/dev/null || echo plain)
# "shell": no checks; the container stays up for `nsenter -t PID -a` (by hand, debugging).
[ "$mode" = shell ] && exec sleep infinity
active() { [ "$(systemctl is-active "$1")" = active ]; }
main_pid() { systemctl show -p MainPID --value logwell; }
# gap FILE CMD...: 1000 messages through journald while CMD runs; prints gap.py's JSON.
gap() { local f=$1; shift; python3 /harness/gap.py --file "$f" --count 1000 --every-ms 2 --at-ms 500 -- "$@"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
no_failed_units() {
  local f; f=$(systemctl --failed --no-legend --plain)
  [ -z "$f" ] || { echo "  failed units: $f"; return 1; }
}
worker_pid() { cat /proc/"$(main_pid)"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m 1 .; }

# The boot is over once the state leaves "starting" (this unit is ordered after
# multi-user.target, as Type=exec).
wait_for 90 sh -c '[ "$(systemctl is-system-running)" != starting ] && [ "$(systemctl is-system-running)" != initializing ]'
echo "booted: $(systemctl is-system-running), mode $mode, kernel log device: $(ls -l /dev/kmsg 2>&1)"

apt_offline
# --- rsyslog, as Debian ships it, then its restart gap for comparison --------------------
apt-get install -y -qq /harness/debs/*.deb >/dev/null 2>&1
check "rsyslog installed" installed rsyslog
check "rsyslog active" wait_for 20 active rsyslog
check "rsyslog logs user.info to /var/log/syslog" logged user.info /var/log/syslog

# ufw before logwell (issue 31): its /etc/rsyslog.d/20-ufw.conf is there when logwell first
# starts, and is translated then. (Its unit starts and does nothing: ufw is not enabled.)
# --no-install-recommends, here and for haproxy: the container has no network, and the .debs
# in /harness are the dependencies only (iptables recommends nftables). The drop-ins do not
# depend on /dev/kmsg: the plain run checks them, the kmsg run saves the time (about 20 s).
if [ "$mode" = plain ]; then
  apt-get install -y -qq --no-install-recommends /harness/debs-ufw/*.deb >/tmp/apt-ufw.log 2>&1 || echo "  $(tail -5 /tmp/apt-ufw.log)"
  check "ufw installed, with its /etc/rsyslog.d/20-ufw.conf" eval 'installed ufw && [ -e /etc/rsyslog.d/20-ufw.conf ]'
fi

r=$(gap /var/log/syslog systemctl restart rsyslog)
echo "rsyslog restart: $r"
echo "rsyslog $r" >>/out/gaps.txt

r=$(python3 /harness/gap.py --file /var/log/syslog --count 400 --every-ms 15 --at-ms 2000 -- systemctl restart rsyslog)
echo "rsyslog restart, 15 ms apart: $r"
echo "rsyslog-slow $r" >>/out/gaps.txt
r=$(python3 /harness/gap.py --file /var/log/syslog --count 400 --every-ms 15)
echo "rsyslog-idle $r" >>/out/gaps.txt

# --- apt install ./logwell.deb replaces it ------------------------------------------------
apt-get install -y /harness/logwell.deb >/tmp/apt.log 2>&1 || { echo "  $(tail -5 /tmp/apt.log)"; }
check "logwell installed" installed logwell
check "rsyslog removed by the Conflicts" sh -c '! dpkg-query -W -f="\${Status}" rsyslog 2>/dev/null | grep -q " installed$"'
check "logwell.service active" wait_for 20 active logwell
check "syslog.service is logwell" sh -c 'readlink /etc/systemd/system/syslog.service | grep -q "/logwell.service$"'
check "triggered by syslog.socket" sh -c 'systemctl show -p TriggeredBy --value logwell | grep -qw syslog.socket'
status=$(systemctl show -p StatusText --value logwell)
echo "  STATUS=$status"
check "a STATUS= line" sh -c "echo '$status' | grep -q 'inputs'"
check "the shipped /dev/log input is idle where journald runs" test "$(input_state devlog)" = idle
check "and /dev/log is still journald's" test "$(readlink /dev/log)" = /run/systemd/journal/dev-log
check "user _logwell in adm, no home, no shell" sh -c '[ "$(id -gn _logwell)" = adm ] && [ "$(getent passwd _logwell | cut -d: -f6,7)" = /nonexistent:/usr/sbin/nologin ]'
check "conffile, state and drop-in directories" sh -c 'dpkg-query -W -f="\${Conffiles}" logwell | grep -q /etc/logwell/logwell.toml && [ -d /var/lib/logwell ] && [ -d /etc/logwell/conf.d ]'
check "binaries, man pages, completions" sh -c 'for p in /usr/sbin/logwelld /usr/bin/logwell /usr/share/man/man8/logwelld.8.gz /usr/share/man/man5/logwell.toml.5.gz /usr/share/bash-completion/completions/logwell /usr/share/zsh/vendor-completions/_logwell /usr/share/fish/vendor_completions.d/logwell.fish; do [ -e $p ] || exit 1; done'
if logrotate --debug /etc/logrotate.conf 2>&1 | grep -q '/var/log/syslog'; then
  check "rsyslog's logrotate stanza is still there and the postinst said to purge rsyslog" grep -q 'apt-get purge rsyslog' /tmp/apt.log
else
  ok "no logrotate stanza for /var/log/syslog is left"
fi
for p in auth.info:auth.log mail.info:mail.log cron.info:cron.log user.err:user.log user.info:syslog; do
  check "logger -p ${p%%:*} reaches /var/log/${p#*:} through journald" logged "${p%%:*}" /var/log/"${p#*:}"
done
check "auth.log is root:adm 0640" sh -c '[ "$(stat -c %U:%G:%a /var/log/auth.log)" = root:adm:640 ]'
check "no auth message in /var/log/syslog" sh -c '! grep -q "bootcheck.*boot-auth" /var/log/syslog'
check "no failed units" no_failed_units
worker=$(worker_pid)
st() { awk -v k="$1:" '$1 == k { print $2 }' /proc/"$worker"/status; }
check "the worker runs as _logwell" sh -c "[ '$(st Uid)' = '$(id -u _logwell)' ]"
check "the worker has no capability (CapEff, CapPrm, CapBnd all 0)" sh -c "[ '$(st CapEff)$(st CapPrm)$(st CapBnd)' = 000000000000000000000000000000000000000000000000 ]"
check "the worker has NoNewPrivs" sh -c "[ '$(st NoNewPrivs)' = 1 ]"
follow_out=$(mktemp)
text="boot-follow-$RANDOM"
logger -p auth.info "$text"
wait_for 20 grep -qF "$text" /var/log/auth.log
timeout 10 logwell follow -n 5 auth >"$follow_out" 2>&1 &
fpid=$!
check "logwell follow -n 5 auth shows the line" wait_for 10 grep -qF "$text" "$follow_out"
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
check "logwell cat shows it" sh -c "logwell cat -n 5 /var/log/auth.log | grep -qF '$text'"

# The follow service's local socket serves root and adm, and no one else.
useradd -M -s /usr/sbin/nologin outsider
useradd -M -s /usr/sbin/nologin -G adm reader
# (-n 50: every runuser adds its PAM session lines to auth.log.)
check "a user outside adm is refused by logwell show, and told why" sh -c "! runuser -u outsider -- logwell show -n 50 auth >/tmp/o.txt 2>&1 && grep -q adm /tmp/o.txt && ! grep -qF '$text' /tmp/o.txt"
check "a user in adm is served" sh -c "runuser -u reader -- logwell show -n 50 auth 2>&1 | grep -qF '$text'"

# --- the rsyslog drop-ins of other packages (issue 31) -------------------------------------
if [ "$mode" = plain ]; then
  # ufw's, there since logwell's first start: a kernel [UFW BLOCK] line reaches /var/log/ufw.log
  # (`:msg,contains,"[UFW "`). The container has no kernel log (no /dev/kmsg, or one it may not
  # open), so the line is sent as journald forwards a kernel line to the syslog daemon: one
  # datagram `<4>TIMESTAMP kernel: [UFW BLOCK] ...` (facility kern) into syslog.socket's
  # /run/systemd/journal/syslog. Not with `logger -p kern.warning`: util-linux's logger sends
  # facility kern as user (seen here: such a line lands in user.log, not kern.log, whether sent
  # to this socket or to /dev/log).
  ufw_line="[UFW BLOCK] IN=eth0 OUT= MAC= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=$RANDOM DF PROTO=TCP SPT=$RANDOM DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0"
  python3 -c '
import socket, sys, time
line = "<4>%s kernel: %s" % (time.strftime("%b %e %H:%M:%S"), sys.argv[1])
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(line.encode(), "/run/systemd/journal/syslog")
  ' "$ufw_line"
  check "ufw's drop-in: a kernel [UFW BLOCK] line reaches /var/log/ufw.log" wait_for 10 grep -qF "$ufw_line" /var/log/ufw.log
  check "and /var/log/kern.log, as facility kern" wait_for 10 grep -qF "$ufw_line" /var/log/kern.log

  # haproxy after logwell: dpkg's trigger on /etc/rsyslog.d (packaging/debian/triggers) reloads
  # logwelld, which then listens on haproxy's socket and routes its lines, with no restart.
  input_count() { logwell stats --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["inputs"]))'; }
  reloads() { journalctl -u logwell -o cat | grep -c 'configuration reloaded'; }
  pid_before=$(main_pid)
  inputs_before=$(input_count)
  reloads_before=$(reloads)
  apt-get install -y --no-install-recommends /harness/debs-haproxy/*.deb >/tmp/apt-haproxy.log 2>&1 || echo "  $(tail -5 /tmp/apt-haproxy.log)"
  check "haproxy installed after logwell, with its /etc/rsyslog.d/49-haproxy.conf" eval 'installed haproxy && [ -e /etc/rsyslog.d/49-haproxy.conf ]'
  echo "  haproxy.service: $(systemctl is-active haproxy)"
  check "dpkg ran logwell's trigger" grep -q '^Processing triggers for logwell' /tmp/apt-haproxy.log
  check "which reloaded logwelld" wait_for 10 eval '[ "$(reloads)" -gt "$reloads_before" ]'
  same_process() { [ "$(main_pid)" = "$pid_before" ] && active logwell; }
  check "with no restart (the same main PID, active)" same_process
  sock=/var/lib/haproxy/dev/log
  check "the reload made haproxy's socket $sock" wait_for 10 test -S "$sock"
  # (haproxy.service binds journald's /dev/log there in its own namespace, BindReadOnlyPaths=;
  # systemd leaves an empty file as the mount point, which rsyslog replaces with its socket.)
  echo "  $sock: $(stat -c %F "$sock" 2>&1)"
  logwell stats --json | python3 -c 'import json,sys
for k, v in json.load(sys.stdin)["inputs"].items():
    if v["state"] == "degraded": print("  degraded:", k, v.get("reason", ""))'
  echo "  inputs: $inputs_before before, $(input_count) after"
  check "logwell stats shows one input more" eval '[ "$(input_count)" -eq $((inputs_before + 1)) ]'
  check "haproxy's drop-in: logger -u $sock -t haproxy reaches /var/log/haproxy.log, not /var/log/syslog" haproxy_probe "$sock"
  check "logwell still the same process after all that" same_process
  logwelld --check-config >/tmp/check-config.txt 2>&1
  rc=$?
  sed 's/^/  check-config: /' /tmp/check-config.txt | head -n 20
  check "logwelld --check-config exits 0 with ufw's and haproxy's drop-ins" test "$rc" = 0
fi

# --- reload, restart under load ----------------------------------------------------------
systemctl reload logwell
check "systemctl reload keeps logging" logged user.info /var/log/syslog
journalctl --rotate >/dev/null 2>&1
since=$(date '+%Y-%m-%d %H:%M:%S')
r=$(gap /var/log/syslog systemctl restart logwell)
echo "logwell restart: $r"
echo "logwell $r" >>/out/gaps.txt
check "systemctl restart while 1000 messages flow through journald loses none" sh -c "[ '$(echo "$r" | json_field "['missing']")' = 0 ]"
r=$(python3 /harness/gap.py --file /var/log/syslog --count 400 --every-ms 15 --at-ms 2000 -- systemctl restart logwell)
echo "logwell restart, 15 ms apart: $r"
echo "logwell-slow $r" >>/out/gaps.txt
r=$(python3 /harness/gap.py --file /var/log/syslog --count 400 --every-ms 15)
echo "logwell-idle $r" >>/out/gaps.txt
# For comparison, the unit as it was: --check-config in an ExecStartPre.
mkdir -p /run/systemd/system/logwell.service.d
printf '[Service]\nExecStartPre=/usr/sbin/logwelld --check-config\n' >/run/systemd/system/logwell.service.d/pre.conf
systemctl daemon-reload
r=$(python3 /harness/gap.py --file /var/log/syslog --count 400 --every-ms 15 --at-ms 2000 -- systemctl restart logwell)
echo "logwell-slow-with-execstartpre $r" >>/out/gaps.txt
rm -r /run/systemd/system/logwell.service.d
systemctl daemon-reload
check "journald says nothing of missed messages" sh -c "! journalctl --since '$since' | grep -i 'missed'"
check "logwell active after the restart" active logwell

# --- faults: SIGKILL and SIGSTOP of the worker --------------------------------------------
before=$(main_pid)
kill -KILL "$(worker_pid)"
check "a killed worker is restarted by systemd" wait_for 30 sh -c "[ \"\$(systemctl show -p MainPID --value logwell)\" != '$before' ] && [ \"\$(systemctl is-active logwell)\" = active ]"
check "and logs" logged user.info /var/log/syslog
# A watchdog of 3 s instead of the unit's 30 s, so the check takes seconds.
mkdir -p /run/systemd/system/logwell.service.d
printf '[Service]\nWatchdogSec=3s\n' >/run/systemd/system/logwell.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart logwell
wait_for 20 active logwell
before=$(main_pid)
kill -STOP "$(worker_pid)"
check "a stopped worker is restarted by the watchdog" wait_for 60 sh -c "[ \"\$(systemctl show -p MainPID --value logwell)\" != '$before' ] && [ \"\$(systemctl is-active logwell)\" = active ]"
check "and logs" logged user.info /var/log/syslog
rm -r /run/systemd/system/logwell.service.d
systemctl daemon-reload
systemctl reset-failed logwell 2>/dev/null

# --- a udp input under the shipped unit gets its 8 MiB receive buffer (issue 33) ------------
# As a user would: a drop-in with a udp input, no buffer setting. The unit keeps
# CAP_NET_ADMIN for the privileged parent, so SO_RCVBUFFORCE passes net.core.rmem_max
# (the kernel reports twice the size asked for).
printf '[input.udp]\ntype = "udp"\nlisten = "127.0.0.1:5514"\n' >/etc/logwell/conf.d/udp.toml
systemctl restart logwell
wait_for 20 active logwell
rb=$(logwell stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inputs"]["udp"].get("receive_buffer_bytes", 0))')
echo "  udp receive buffer: $rb (net.core.rmem_max $(cat /proc/sys/net/core/rmem_max))"
check "a udp input gets 8 MiB under the unit, past rmem_max" sh -c "[ '$rb' -ge 16777216 ]"
text="boot-udp-$RANDOM$RANDOM"
logger --udp -n 127.0.0.1 -P 5514 -t bootcheck "$text"
check "and logger --udp reaches /var/log/syslog" wait_for 20 grep -qF "$text" /var/log/syslog
rm /etc/logwell/conf.d/udp.toml
systemctl restart logwell
wait_for 20 active logwell

# --- an input whose environment fails: the kernel log ---------------------------------------
check "the shipped kmsg input is idle where journald runs" sh -c 'logwell stats --json | python3 -c "import json,sys; i=json.load(sys.stdin)[\"inputs\"][\"kernel\"]; sys.exit(i[\"state\"] != \"idle\")"'
# As a user would: tell the shipped kmsg input to read the device anyway, and restart.
cp /etc/logwell/logwell.toml /tmp/logwell.toml.orig
sed -i '/^type = "kmsg"/a even_with_journald = true' /etc/logwell/logwell.toml
systemctl restart logwell
check "a kmsg input that cannot open /dev/kmsg does not stop the start" wait_for 20 active logwell
reason=$(logwell stats --json | python3 -c 'import json,sys; i=json.load(sys.stdin)["inputs"]["kernel"]; print(i["state"], i.get("reason",""))')
echo "  kernel: $reason"
if [ "$mode" = kmsg ]; then want="Operation not permitted"; else want="No such file"; fi
echo "$reason" >/tmp/reason.txt
check "it is degraded: $want, with a hint about devices" sh -c "grep -q '^degraded .*$want' /tmp/reason.txt && grep -q 'hint: .*device' /tmp/reason.txt"
check "STATUS= names it" sh -c 'systemctl show -p StatusText --value logwell | grep -q "1 degraded: kernel"'
check "logwelld --check-config warns and succeeds" sh -c 'logwelld --check-config 2>&1 | grep -q "warning: input .kernel."'
check "and the other inputs log" logged user.info /var/log/syslog
check "no failed units" no_failed_units
cp /tmp/logwell.toml.orig /etc/logwell/logwell.toml
systemctl restart logwell
wait_for 20 active logwell

# --- upgrade while messages flow -----------------------------------------------------------
# (Count logwelld's "logwelld VERSION ready" lines: a bare 'ready' also matches "already".)
starts=$(journalctl -u logwell -o cat | grep -cE 'logwelld [^ ]+ ready')
r=$(gap /var/log/syslog apt-get install -y /harness/logwell-upgrade.deb)
echo "upgrade: $r"
check "the upgrade installed the new version" sh -c "dpkg-query -W -f='\${Version}' logwell | grep -q '+boot'"
check "an upgrade while messages flow loses none" sh -c "[ '$(echo "$r" | json_field "['missing']")' = 0 ]"
check "and restarts the daemon once" sh -c "[ \$(journalctl -u logwell -o cat | grep -cE 'logwelld [^ ]+ ready') = $((starts + 1)) ]"
check "logwell active after the upgrade" active logwell

# --- purge, and rsyslog back ---------------------------------------------------------------
apt-get purge -y logwell >/dev/null 2>&1
check "apt purge removes the package" sh -c '! dpkg-query -W logwell >/dev/null 2>&1'
check "and its state, /var/lib/logwell" sh -c '[ ! -e /var/lib/logwell ] || { ls -la /var/lib/logwell; false; }'
check "and its config, /etc/logwell" sh -c '[ ! -e /etc/logwell ] || { ls -laR /etc/logwell; false; }'
check "and _logwell" sh -c '! getent passwd _logwell || { ps -o pid=,comm= -u _logwell; false; }'
check "and the syslog.service alias" sh -c '[ ! -e /etc/systemd/system/syslog.service ] || { ls -l /etc/systemd/system/syslog.service; false; }'
apt-get install -y -qq /harness/debs/*.deb >/dev/null 2>&1
check "rsyslog installs again and is active" wait_for 20 active rsyslog
check "rsyslog logs again" logged user.info /var/log/syslog
apt-get install -y -qq /harness/logwell.deb >/dev/null 2>&1
apt-get install -y -qq /harness/debs/rsyslog_*.deb >/dev/null 2>&1
check "and installing rsyslog over logwell removes logwell" sh -c '! dpkg-query -W -f="\${Status}" logwell 2>/dev/null | grep -q " installed$"'
check "rsyslog active and logging after that" logged user.info /var/log/syslog
# (Debian's rsyslog makes the alias its own again only on a first install or after a purge.)
check "no syslog.service alias is left pointing to logwell" sh -c '! readlink /etc/systemd/system/syslog.service | grep -q "/logwell.service$"'
apt-get install -y -qq /harness/logwell.deb >/dev/null 2>&1
check "logwell installed again after a remove: active, syslog.service is logwell" sh -c 'wait_for() { :; }; [ "$(systemctl is-active logwell)" = active ] && readlink /etc/systemd/system/syslog.service | grep -q "/logwell.service$"'
check "and logs" logged user.info /var/log/syslog
check "no failed units at the end" no_failed_units

echo "boot-test ($mode): $passed passed, $failed failed"
