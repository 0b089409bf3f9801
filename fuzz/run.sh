#!/usr/bin/env bash
# Runs one fuzz target, seeded from the project's fixtures, for a number of executions or
# seconds, whichever comes first. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a
# nightly toolchain (libFuzzer's instrumentation flags).
#   fuzz/run.sh framing|parse|config|request|position|sse|queue|history|body|rsyslog|relp [RUNS] [SECONDS]
# Seeds (never committed: fuzz/corpus/ is ignored): the shipped configs for `config`; for
# `parse` and `framing`, the shared conformance corpus when LOGWELL_CONFORMANCE_DIR (or
# ../shared/conformance) is there, plus a few messages written here; for the others, a few
# small inputs written here (see each target's header for what its first bytes choose).
# `queue` and `history` run with a 256 MB malloc limit: no damaged file may make them
# allocate more than that at once.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh framing|parse|config|request|position|sse|queue|history|body|rsyslog|relp [RUNS] [SECONDS]}
runs=${2:-10000000}
secs=${3:-1800}
corpus=corpus/$target
mkdir -p "$corpus"
conformance=${LOGWELL_CONFORMANCE_DIR:-../../shared/conformance}
extra=()
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
  rsyslog)
    # The translation corpus (tests/data/rsyslog/*.conf).
    cp ../tests/data/rsyslog/*.conf "$corpus"/ ;;
  relp)
    # Two bytes choose the data limit and the read size; then a session as librelp sends it.
    printf '\x40\x071 open 15 commands=syslog\n2 syslog 11 <13>t: hi\n3 rsp 6 200 OK\n4 close 0\n' > "$corpus/session" ;;
  body)
    # First byte: the kv separators (bits 0-1 the pair's, 2-3 the key's, 7 single quotes);
    # the rest a body: the shared corpus's structured bodies, and a few written here.
    printf ' {"a":1,"b":{"c":[true,null,"x"]}}' > "$corpus/json"
    printf ' @cee: {"msg":"hi"}' > "$corpus/cee"
    printf ' at=info msg="a \\"b\\"" bare k=' > "$corpus/logfmt"
    printf '\x05a:1;b:"x;y"; stray;c:' > "$corpus/kv"
    if [ -f "$conformance/structured.jsonl" ]; then
      python3 - "$conformance" "$corpus" <<'PY'
import base64, json, sys, os
src, out = sys.argv[1:]
for i, line in enumerate(open(os.path.join(src, "structured.jsonl"))):
    e = json.loads(line)
    data = base64.b64decode(e["body_b64"]) if "body_b64" in e else e["body"].encode("utf-8", "surrogatepass")
    open(os.path.join(out, f"structured-{i}"), "wb").write(b" " + data)
PY
    fi ;;
  request)
    # First byte: even, a query string; odd, the raw TCP request line.
    printf '\x00file=syslog&n=20&p=err&facility=auth,authpriv&o=json' > "$corpus/query"
    printf '\x00cursor=00c0ffee12345678:1024&since=-1h&until=2026-11-21T09:00:00Z&g=fail(ed)?' > "$corpus/cursor"
    printf '\x01file=auth n=50 p=warning..emerg t=sshd host=a heartbeat=json follow=false\n' > "$corpus/tcp"
    printf '\x01after=C0FFEE:7 since=2026-11-21%%2009:00 token=x%%20y\nignored' > "$corpus/tcp-after" ;;
  position)
    printf '00c0ffee12345678:1024' > "$corpus/full"
    printf 'C0FFEE:007' > "$corpus/short"
    printf '0:0' > "$corpus/zero" ;;
  sse)
    # First byte: the length of the Last-Event-ID value; the rest is a stored line.
    printf '\x1500c0ffee12345678:1024Nov 21 09:41:03 host tag[42]: hi' > "$corpus/resume"
    printf '\x00a line\rwith\nbreaks' > "$corpus/no-header" ;;
  queue)
    # First byte: bit 0 writes the segment magic first, bit 1 takes 20 bytes as `ack`.
    python3 - "$corpus" <<'PY'
import os, struct, sys, zlib
out = sys.argv[1]
def rec(p):
    n = struct.pack("<I", len(p))
    return n + struct.pack("<I", zlib.crc32(n + p)) + p
recs = b"".join(rec(b"message %d" % i) for i in range(3))
open(os.path.join(out, "whole"), "wb").write(b"\x01" + recs)
open(os.path.join(out, "torn"), "wb").write(b"\x01" + recs[:-4])
open(os.path.join(out, "flipped"), "wb").write(b"\x01" + recs[:20] + b"X" + recs[21:])
ack = struct.pack("<QQ", 1 << 40, 8 + len(rec(b"message 0")))
open(os.path.join(out, "acked"), "wb").write(b"\x03" + (ack + struct.pack("<I", zlib.crc32(ack)))[:20] + recs)
PY
    extra=(-malloc_limit_mb=256) ;;
  history)
    # First byte: how each file is made (0 as is, 1 compressed, 2 cut, 3 a byte flipped),
    # bits 0-1 for the .gz, 2-3 for the .zst; second: where the input splits and cuts.
    lines='2026-12-07T09:00:00.000001+00:00 host tag[1]: one\n2026-12-07T09:00:01.000002+00:00 host tag[1]: two\n'
    printf "\\x05\\x80$lines$lines" > "$corpus/valid"
    printf "\\x0a\\x80$lines$lines" > "$corpus/cut"
    printf "\\x0f\\x40$lines$lines" > "$corpus/flipped"
    printf '\x00\x80\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage(\xb5/\xfd\x00\x58garbage' > "$corpus/raw"
    extra=(-malloc_limit_mb=256) ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
exec cargo +nightly fuzz run "$target" "$corpus" -- -runs="$runs" -max_total_time="$secs" -max_len="${FUZZ_MAX_LEN:-4096}" -print_final_stats=1 "${extra[@]}"
