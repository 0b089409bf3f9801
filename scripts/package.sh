#!/usr/bin/env bash
# Builds the .deb (cargo deb, from [package.metadata.deb] in Cargo.toml) and checks it with
# lintian. Prints the path of the .deb on its last line.
# Usage: scripts/package.sh            (a release build: a few minutes from scratch)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh package

target=${CARGO_TARGET_DIR:-target}
echo "logwell: building the release binaries" >&2
# The Kafka output is in the package: `--features kafka` (librdkafka, built from its bundled
# sources; see docs/kafka.md).
cargo build --locked --release --features kafka --bin logwelld --bin logwell

# Shell completions, generated from the clap definitions by the binaries themselves (the
# hidden --generate flag), where Cargo.toml's assets expect them (always ./target, which
# cargo-deb does not remap as it does target/release).
completions=target/deb-assets/completions
mkdir -p "$completions"
for bin in logwell logwelld; do
  "$target/release/$bin" --generate complete-bash >"$completions/$bin.bash"
  "$target/release/$bin" --generate complete-zsh >"$completions/_$bin"
  "$target/release/$bin" --generate complete-fish >"$completions/$bin.fish"
done

echo "logwell: packaging with cargo deb" >&2
# --strip: the release profile keeps line tables for profiling (debug = 1); the package
# does not (lintian: unstripped-binary-or-object).
deb=$(cargo deb --locked --no-build --strip | tail -n 1)
[ -f "$deb" ] || { echo "logwell: cargo deb did not report a .deb (got: $deb)" >&2; exit 1; }

# No errors and no warnings (the overrides are explained in packaging/debian/README.md).
echo "logwell: lintian $deb" >&2
lintian --fail-on error,warning --info "$deb" >&2
echo "$deb"
