#!/usr/bin/env bash
# Fetches the real syslog daemons logwell is tested and benchmarked against (rsyslog with its
# TLS network stream drivers, syslog-ng) WITHOUT installing them: rsyslog and syslog-ng-core
# conflict as Debian packages, and the system's own syslog must stay untouched. Each is
# downloaded with `apt-get download` and unpacked with `dpkg -x` into a cache directory; only
# their shared-library dependencies are installed (as root; otherwise the apt line is printed).
#
# Usage: scripts/peers.sh [DIR]      (DIR defaults to target/peers; idempotent: a peer already
#                                     unpacked there is skipped)
# Prints `export LOGWELL_PEERS_DIR=DIR` on stdout, so `eval "$(scripts/peers.sh)"` works.
#
# What DIR holds afterwards (what the tests and benchmarks use; see testkit/src/peers.rs):
#   DIR/rsyslog/usr/sbin/rsyslogd             run with `-M DIR/rsyslog/usr/lib/x86_64-linux-gnu/rsyslog`
#   DIR/rsyslog/usr/lib/*/rsyslog/            modules: imuxsock, omfwd, lmnsd_ossl.so, lmnsd_gtls.so,
#                                             imrelp.so, omrelp.so (librelp0 installed) …
#   DIR/syslog-ng/usr/sbin/syslog-ng          run with `--module-path DIR/syslog-ng/usr/lib/syslog-ng/3.38`
#   DIR/syslog-ng/usr/lib/syslog-ng/3.*/      modules (afsocket, …); libsyslog-ng-*.so is in
#   DIR/syslog-ng/usr/lib/syslog-ng/          (put it on LD_LIBRARY_PATH)
#   DIR/rsyslog/etc/rsyslog.conf              Debian's own rsyslog configuration
#   DIR/dropins/etc/rsyslog.d/                the rsyslog drop-ins other packages ship (haproxy,
#                                             ufw): only unpacked, never run, their
#                                             dependencies ignored (tests/it/rsyslog.rs)
#   DIR/env                                   the paths above as shell variables (RSYSLOGD,
#                                             RSYSLOG_MODDIR, RSYSLOG_CONF, RSYSLOG_DROPINS,
#                                             SYSLOG_NG, SYSLOG_NG_MODDIR, SYSLOG_NG_LIBDIR)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-${LOGWELL_PEERS_DIR:-target/peers}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Peer name → the Debian packages unpacked into DIR/NAME.
declare -A peers=(
  [rsyslog]="rsyslog rsyslog-openssl rsyslog-gnutls rsyslog-relp"
  [syslog-ng]="syslog-ng-core"
)

# Packages whose rsyslog drop-ins (/etc/rsyslog.d/*.conf) the import tests translate: unpacked
# into DIR/dropins, nothing else of them used.
dropins="haproxy ufw"

# apt-get download writes into the current directory; as root, let it write where _apt can.
fetch() { # DEST.debs PACKAGE…
  local debs=$1
  shift
  mkdir -p "$debs"
  chmod 0777 "$debs" 2>/dev/null || true
  if ! (cd "$debs" && apt-get download -q "$@" >&2); then
    # A fresh machine (CI) may have no package lists yet.
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq >&2
      (cd "$debs" && apt-get download -q "$@" >&2)
    else
      echo "logwell: apt-get download failed; run  sudo apt-get update  and retry" >&2
      exit 1
    fi
  fi
}

dest="$dir/dropins"
if [ -f "$dest/.complete" ]; then
  echo "logwell: rsyslog drop-ins already unpacked in $dest" >&2
else
  echo "logwell: fetching the rsyslog drop-ins of $dropins into $dest" >&2
  rm -rf "$dest" "$dest.debs"
  # shellcheck disable=SC2086
  fetch "$dest.debs" $dropins
  mkdir -p "$dest"
  for deb in "$dest.debs"/*.deb; do
    dpkg -x "$deb" "$dest"
  done
  rm -rf "$dest.debs"
  touch "$dest/.complete"
fi

libs=()
for peer in "${!peers[@]}"; do
  dest="$dir/$peer"
  # `.complete` names the packages unpacked: a changed list fetches the peer again.
  if [ "$(cat "$dest/.complete" 2>/dev/null)" = "${peers[$peer]}" ]; then
    echo "logwell: $peer already unpacked in $dest" >&2
  else
    echo "logwell: fetching $peer (${peers[$peer]}) into $dest" >&2
    rm -rf "$dest" "$dest.debs"
    # shellcheck disable=SC2086
    fetch "$dest.debs" ${peers[$peer]}
    mkdir -p "$dest"
    for deb in "$dest.debs"/*.deb; do
      dpkg -x "$deb" "$dest"
      dpkg-deb -f "$deb" Depends >>"$dest/.depends"
      echo >>"$dest/.depends"
    done
    rm -rf "$dest.debs"
    echo "${peers[$peer]}" >"$dest/.complete"
  fi
  # Shared-library dependencies only (lib*, zlib1g): no daemon, no init script, no conflicts.
  while read -r lib; do
    libs+=("$lib")
  done < <(tr ',|' '\n\n' <"$dest/.depends" | sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' |
    grep -E '^(lib|zlib1g)' | sort -u)
done

missing=()
for p in $(printf '%s\n' "${libs[@]}" | sort -u); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "logwell: installing the peers' shared libraries: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "logwell: the peers need these shared libraries: ${missing[*]}" >&2
    echo "logwell: install them with:  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
rsyslog_moddir=$(dirname "$(first "$dir"/rsyslog/usr/lib/*/rsyslog/lmnsd_ptcp.so)")
syslog_ng_moddir=$(first "$dir"/syslog-ng/usr/lib/syslog-ng/3.*)
cat >"$dir/env" <<EOF
RSYSLOGD=$dir/rsyslog/usr/sbin/rsyslogd
RSYSLOG_MODDIR=$rsyslog_moddir
RSYSLOG_CONF=$dir/rsyslog/etc/rsyslog.conf
RSYSLOG_DROPINS=$dir/dropins/etc/rsyslog.d
SYSLOG_NG=$dir/syslog-ng/usr/sbin/syslog-ng
SYSLOG_NG_MODDIR=$syslog_ng_moddir
SYSLOG_NG_LIBDIR=$dir/syslog-ng/usr/lib/syslog-ng
EOF
# A check that both start: each prints its version (a missing library fails here).
v=$("$dir/rsyslog/usr/sbin/rsyslogd" -v) || { echo "logwell: rsyslogd does not start" >&2; exit 1; }
echo "logwell: ${v%%$'\n'*}" >&2
v=$(LD_LIBRARY_PATH="$dir/syslog-ng/usr/lib/syslog-ng" "$dir/syslog-ng/usr/sbin/syslog-ng" \
  --module-path "$syslog_ng_moddir" --version) || { echo "logwell: syslog-ng does not start" >&2; exit 1; }
echo "logwell: ${v%%$'\n'*}" >&2
echo "export LOGWELL_PEERS_DIR=$dir"
