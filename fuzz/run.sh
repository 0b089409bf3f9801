#!/usr/bin/env bash
# Runs one fuzz target, seeded from the project's fixtures, for a number of executions or
# seconds, whichever comes first. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a
# nightly toolchain (libFuzzer's instrumentation flags).
#   fuzz/run.sh framing|parse|config [RUNS] [SECONDS]
# Seeds (never committed: fuzz/corpus/ is ignored): the shipped configs for `config`; for
# `parse` and `framing`, the shared conformance corpus when LOGWELL_CONFORMANCE_DIR (or
# ../shared/conformance) is there, plus a few messages written here.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh framing|parse|config [RUNS] [SECONDS]}
runs=${2:-10000000}
secs=${3:-1800}
corpus=corpus/$target
mkdir -p "$corpus"
conformance=${LOGWELL_CONFORMANCE_DIR:-../../shared/conformance}
case "$target" in
  config)
    cp ../etc/*.toml "$corpus"/ ;;
  parse|framing)
    printf '<13>Nov 21 09:41:03 host tag[42]: hi' > "$corpus/bsd"
    printf '<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 k="v"] text' > "$corpus/5424"
    printf '\x40\x10107 <34>1 2003-10-11T22:14:15.003Z h su - ID47 - m\n<13>x\n' > "$corpus/mixed"
    if [ -f "$conformance/messages.jsonl" ]; then
      python3 - "$conformance" "$corpus" "$target" <<'PY'
import base64, json, sys, os
src, out, target = sys.argv[1:]
for name in ("messages.jsonl", "framing.jsonl"):
    for i, line in enumerate(open(os.path.join(src, name))):
        e = json.loads(line)
        if "wire_b64" in e:
            data = base64.b64decode(e["wire_b64"])
        elif "raw_b64" in e:
            data = base64.b64decode(e["raw_b64"])
        else:
            data = e["raw"].encode("utf-8", "surrogatepass")
        if target == "framing":
            data = bytes([64, 16]) + data  # max frame 257, pieces of 17 bytes
        open(os.path.join(out, f"{name}-{i}"), "wb").write(data)
PY
    fi ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
exec cargo +nightly fuzz run "$target" "$corpus" -- -runs="$runs" -max_total_time="$secs" -max_len="${FUZZ_MAX_LEN:-4096}" -print_final_stats=1
