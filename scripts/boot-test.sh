#!/usr/bin/env bash
# The .deb on a booted Debian 12, as users install it: systemd as PID 1 in a throwaway
# container (systemd-nspawn, as on LXC, Proxmox and nspawn hosts), Debian's rsyslog running,
# then `apt install ./logwell.deb`. scripts/boot/check.sh runs inside at boot and checks the
# install, journald -> syslog.socket -> logwelld -> Debian's files, the worker's identity,
# the rsyslog drop-ins of Debian's ufw (installed before logwell) and haproxy (installed
# after it: dpkg's trigger reloads logwelld), reload, restart and upgrade under load, SIGKILL
# and SIGSTOP of the worker, a kmsg input that cannot run, purge, and rsyslog coming back.
# Run twice: without /dev/kmsg in the container (the default there) and with it bound in
# (opening it is still denied by the device policy); the drop-ins are checked in the first
# run only, as they do not depend on /dev/kmsg. Then a third time on a Debian 12 booted with
# sysvinit (sysvinit-core, no systemd, no journald), where scripts/boot/check-sysv.sh checks
# /dev/log, `service logwell ...`, the trigger's reload when haproxy is installed, the kernel
# log, remove and purge.
#
# Needs root; changes nothing on the host but one line in the kernel log (the sysv run's check
# of the kmsg input), target/boot (the Debian roots, built once with debootstrap, about a
# minute each, and the .debs fetched for them, once) and the empty cgroups nspawn leaves,
# which it removes. It runs on CI (root and CI=true) from scripts/test.sh, or by hand with
# LOGWELL_BOOT_TEST=1. LOGWELL_DEB=path skips building the .deb. Prints each check; exits
# non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ] || { [ "${CI:-}" != true ] && [ "${LOGWELL_BOOT_TEST:-}" != 1 ]; }; then
  echo "boot-test: needs root, and CI=true or LOGWELL_BOOT_TEST=1 (it boots a container)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: libnss-mymachines would come too and edit the host's nsswitch.conf.
for p in systemd-container debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends systemd-container debootstrap >/dev/null
    break
  }
done

target=${CARGO_TARGET_DIR:-target}
boot=$(realpath -m "$target/boot")
root=$boot/root
mkdir -p "$boot"
# The Debian mirror the host's apt uses (the entry ending in /debian).
mirror=$({ grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } | head -n 1 | tr -d ' ')
mirror=${mirror:-http://deb.debian.org/debian}
if [ ! -e "$root/.logwell-boot-root" ]; then
  echo "boot-test: building a Debian 12 root in $root from $mirror (once, about a minute)" >&2
  rm -rf "$root.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,bsdutils,procps,adduser,python3 \
    bookworm "$root.tmp" "$mirror" >"$boot/debootstrap.log" 2>&1 || { tail -n 20 "$boot/debootstrap.log" >&2; exit 1; }
  mv "$root.tmp" "$root"
  touch "$root/.logwell-boot-root"
fi
# The same with sysvinit as init, for the "sysv" run; its checks start from /etc/inittab once
# runlevel 2 is reached, and `init 0` powers the container off.
sysv_root=$boot/root-sysv
if [ ! -e "$sysv_root/.logwell-boot-root" ]; then
  echo "boot-test: building a Debian 12 root with sysvinit in $sysv_root (once, about a minute)" >&2
  rm -rf "$sysv_root.tmp"
  debootstrap --variant=minbase --include=sysvinit-core,initscripts,insserv,sysv-rc,bsdutils,procps,adduser,python3 \
    --exclude=systemd-sysv bookworm "$sysv_root.tmp" "$mirror" >"$boot/debootstrap-sysv.log" 2>&1 || { tail -n 20 "$boot/debootstrap-sysv.log" >&2; exit 1; }
  # No terminals in the container: no getty.
  sed -i -E '/^[0-9]+:[0-9]+:respawn:\/sbin\/getty/d' "$sysv_root.tmp/etc/inittab"
  echo 'lw:2:once:/bin/sh -c "/bin/bash /harness/check-sysv.sh >/out/result.txt 2>&1; sync; /sbin/init 0"' >>"$sysv_root.tmp/etc/inittab"
  mv "$sysv_root.tmp" "$sysv_root"
  touch "$sysv_root/.logwell-boot-root"
fi
# The checks start at boot; the root keeps the unit (--volatile=overlay throws away what the
# container writes, not what is written here).
install -m 0644 scripts/boot/boot-check.service "$root/etc/systemd/system/boot-check.service"
ln -sf /etc/systemd/system/boot-check.service "$root/etc/systemd/system/multi-user.target.wants/boot-check.service"

harness=$boot/harness
rm -rf "$harness"
mkdir -p "$harness/debs"
# Debian's rsyslog (and logrotate, whose rsyslog stanza the postinst must mention), fetched,
# not installed on the host: the container has no network.
debs=$boot/debs
if [ ! -e "$debs/.complete" ]; then
  rm -rf "$debs"; mkdir -p "$debs"
  apt-get update -qq; apt_updated=1
  (cd "$debs" && apt-get download -qq rsyslog libestr0 libfastjson4 liblognorm5 logrotate libpopt0 >/dev/null)
  touch "$debs/.complete"
fi
cp "$debs"/*.deb "$harness/debs/"
# Two packages that ship rsyslog drop-ins (issue 31), with their dependencies: ufw
# (/etc/rsyslog.d/20-ufw.conf; check.sh installs it before logwell) and haproxy
# (49-haproxy.conf, a socket in its chroot; installed after logwell, so dpkg's trigger reloads
# it; the sysvinit run installs haproxy too). `apt-get install --download-only` resolves the dependencies against the container
# root's dpkg status, not the host's (which may have them already), and downloads into a
# folder of its own: nothing is installed on the host and its apt cache is left alone.
for set in ufw haproxy; do
  dir=$boot/debs-$set
  if [ ! -e "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir/partial"
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    apt-get install -y -qq --download-only --no-install-recommends \
      -o Dir::State::status="$root/var/lib/dpkg/status" -o Dir::Cache::archives="$dir" \
      -o Debug::NoLocking=true -o APT::Sandbox::User=root "$set" >/dev/null
    rm -rf "$dir/partial" "$dir/lock"
    touch "$dir/.complete"
  fi
  mkdir -p "$harness/debs-$set"
  cp "$dir"/*.deb "$harness/debs-$set/"
done
cp scripts/boot/lib.sh scripts/boot/check.sh scripts/boot/check-sysv.sh scripts/boot/gap.py "$harness/"

deb=${LOGWELL_DEB:-}
[ -n "$deb" ] || deb=$(scripts/package.sh | tail -n 1)
deb=$(realpath "$deb")
cp "$deb" "$harness/logwell.deb"
# The same package with a higher version, for the upgrade.
unpacked=$(mktemp -d)
dpkg-deb -R "$deb" "$unpacked/p"
sed -i -E 's/^(Version: .*)$/\1+boot1/' "$unpacked/p/DEBIAN/control"
dpkg-deb --root-owner-group -b "$unpacked/p" "$harness/logwell-upgrade.deb" >/dev/null
rm -rf "$unpacked"

clean_cgroups() {
  for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    rmdir "$d/payload/init.scope" "$d/payload" "$d/supervisor" 2>/dev/null || true
  done
}

status=0
for mode in ${LOGWELL_BOOT_MODES:-plain kmsg sysv}; do
  out=$boot/out-$mode
  rm -rf "$out"; mkdir -p "$out"
  echo "$mode" >"$out/mode"
  extra=()
  [ "$mode" != plain ] && [ -e /dev/kmsg ] && extra=(--bind=/dev/kmsg)
  # Under sysvinit the kernel log is read for real: nspawn's CAP_SYSLOG lets a container open
  # it where kernel.dmesg_restrict=1 (check-sysv.sh writes one line to it).
  [ "$mode" = sysv ] && [ -e /dev/kmsg ] && extra+=(--capability=CAP_SYSLOG)
  dir=$root
  [ "$mode" = sysv ] && dir=$sysv_root
  echo "==> boot-test: booting Debian 12 ($mode)" >&2
  started=$SECONDS
  timeout -k 10 600 systemd-nspawn -q -D "$dir" -b --register=no --keep-unit --console=pipe \
    --volatile=overlay --private-network --bind-ro="$harness:/harness" --bind="$out:/out" \
    "${extra[@]}" >"$out/console.log" 2>&1 || true
  clean_cgroups
  if [ ! -s "$out/result.txt" ]; then
    echo "boot-test ($mode): no result; the container's console:" >&2
    tail -n 40 "$out/console.log" >&2
    status=1
    continue
  fi
  cat "$out/result.txt"
  echo "    (boot, checks and power-off took $((SECONDS - started)) s)"
  grep -qE "^boot-test \($mode\): [0-9]+ passed, 0 failed$" "$out/result.txt" || status=1
done
exit $status
