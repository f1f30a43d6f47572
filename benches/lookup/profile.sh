#!/usr/bin/env bash
# Where a lookup's cost goes, per stage (issue 17, item 1). Three views of
# the same single-key lookup that benches/lookup/run.sh measures:
#
#   1. instructions per lookup by stage, from callgrind (instruction counts
#      are repeatable on a noisy machine: same binary, same requests, same
#      count, whatever else runs). The hub runs under valgrind with
#      instrumentation off; after a warm-up it is switched on for a wrk run,
#      and the total is divided by the records the audit log gained (one per
#      lookup). Stages are inclusive costs of the functions that make them;
#      user space only (the kernel's side is in 2 and 3);
#   2. system calls per lookup, by `strace -c -f` of the hub (natively)
#      during a wrk run;
#   3. context switches per lookup, voluntary and involuntary, summed over
#      the hub's threads from /proc, during a native wrk run;
#   4. instructions per key of one NDJSON stream of STREAM_KEYS keys (the
#      keys cycled; 0 skips it), by stage, from callgrind: instrumentation
#      on for the one request, the total divided by the keys.
#
# Usage: TONGBAN_BIN=/path/to/tongban benches/lookup/profile.sh
#        (default: $CARGO_TARGET_DIR/release/tongban, built if missing)
#        SCALE (default 0.01: 10,000 citizens; the index probe is O(1)),
#        PROFILE_SECONDS (callgrind load, default 20), NATIVE_SECONDS
#        (strace and context switches, default 10), CONNECTIONS (16).
# Prints one table; KEEP=1 keeps the work dir with callgrind.out and the
# annotated listing.
set -euo pipefail

SCALE=${SCALE:-0.01}
PORT=${PORT:-18190}
CONNECTIONS=${CONNECTIONS:-16}
PROFILE_SECONDS=${PROFILE_SECONDS:-20}
NATIVE_SECONDS=${NATIVE_SECONDS:-10}
STREAM_KEYS=${STREAM_KEYS:-100000} # keys of the profiled NDJSON stream; 0: no stream profile
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
KEEP=${KEEP:-0}
HUB_ARGS=${HUB_ARGS:-}            # more arguments for `tongban demo`
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
RES=101/000001

die() { printf 'profile.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '\n== %s\n' "$*" >&2; }
for tool in valgrind callgrind_annotate callgrind_control strace wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install valgrind strace wrk curl)"
done
TONGBAN=${TONGBAN_BIN:-$CARGO_TARGET_DIR/release/tongban}
if [[ -z ${TONGBAN_BIN:-} && ! -x $TONGBAN ]]; then
    (cd "$ROOT" && cargo build --release -q -p tongban-hub)
fi
[[ -x $TONGBAN ]] || die "no tongban binary at $TONGBAN"

WORK=$(mktemp -d /var/tmp/tongban-profile.XXXXXX)
HUB_PID=
cleanup() {
    set +e
    if [[ -n $HUB_PID ]] && kill -0 "$HUB_PID" 2>/dev/null; then kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null; fi
    if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The audit log's record count: lines up to the preallocated zeros.
records() { cat "$WORK"/data/audit/audit-*.jsonl 2>/dev/null | tr -d '\0' | wc -l; }

start_hub() { # start_hub [wrapper...]: starts the demo on the data dir, waits for a 200 lookup
    # shellcheck disable=SC2086 # HUB_ARGS is a list of words
    "$@" "$TONGBAN" demo --data-dir "$WORK/data" --listen "$HOST:$PORT" --scale "$SCALE" $HUB_ARGS \
        >>"$WORK/hub.out" 2>>"$WORK/hub.log" &
    HUB_PID=$!
    local t0
    t0=$(date +%s)
    until [[ -f $WORK/keys.txt ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/lookup/$RES" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"keys\":[\"$(head -n 1 "$WORK/keys.txt")\"],\"items\":[\"name\"],\"matter\":\"310000-JZZ-001\",\"case\":\"P-0\"}") == 200 ]]; do
        kill -0 "$HUB_PID" 2>/dev/null || { tail -n 20 "$WORK/hub.log" >&2; die "the hub exited"; }
        (( $(date +%s) - t0 < 900 )) || die "no lookup answered after 900 s"
        sleep 1
    done
}
stop_hub() { kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=; }
load() { # load SECONDS: wrk, one key per request, the keys cycled
    wrk -t1 -c"$CONNECTIONS" -d"$1s" --timeout 30s -s "$HERE/lookup.lua" "$BASE" -- "$WORK/keys.txt" "$TOKEN" >"$WORK/wrk.out"
}

log "making the demo data (scale $SCALE)"
TOKEN=unknown
"$TONGBAN" demo --data-dir "$WORK/data" --listen "$HOST:$PORT" --scale "$SCALE" >"$WORK/hub.out" 2>"$WORK/hub.log" &
HUB_PID=$!
until [[ -f $WORK/data/demo-credentials.json ]] && curl -fs -o /dev/null "$BASE/health"; do
    kill -0 "$HUB_PID" 2>/dev/null || { cat "$WORK/hub.log" >&2; die "the hub exited"; }
    sleep 0.5
done
TOKEN=$(python3 -c '
import json, sys
print(next(t["token"] for t in json.load(open(sys.argv[1]))["tokens"] if t["label"] == "acceptance"))
' "$WORK/data/demo-credentials.json")
# Keys: the citizen IDs the hub answers for, from the audit-free stream
# endpoint's sample: the demo banner prints one; prepare.py reads them all.
VENV=${VENV:-/var/tmp/bench-venv}
"$VENV/bin/python" -c 'import pyarrow' 2>/dev/null || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q pyarrow; }
PARQUET=$(ls "$WORK"/data/datasets/101-000001/v*/part-*.parquet | head -n 1)
"$VENV/bin/python" "$HERE/prepare.py" "$PARQUET" "$WORK" --keys 5000 >/dev/null
stop_hub

log "callgrind: the hub under valgrind, ${PROFILE_SECONDS} s of wrk -c$CONNECTIONS with instrumentation on"
start_hub valgrind --tool=callgrind --instr-atstart=no --dump-instr=no \
    --callgrind-out-file="$WORK/callgrind.out"
load 3
callgrind_control -i on "$HUB_PID" >/dev/null
r0=$(records)
load "$PROFILE_SECONDS"
r1=$(records)
callgrind_control -i off "$HUB_PID" >/dev/null
N=$((r1 - r0))
stop_hub
(( N > 0 )) || die "no lookups recorded under callgrind"
OUT=$(ls "$WORK"/callgrind.out | head -n 1)
callgrind_annotate --threshold=100 --inclusive=yes "$OUT" >"$WORK/inclusive.txt" 2>/dev/null
callgrind_annotate --threshold=100 "$OUT" >"$WORK/exclusive.txt" 2>/dev/null
TOTAL=$(awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1; exit}' "$WORK/inclusive.txt")

if (( STREAM_KEYS > 0 )); then
    log "callgrind: one NDJSON stream of $STREAM_KEYS keys with instrumentation on"
    python3 - "$WORK/keys.txt" "$WORK/stream.ndjson" "$STREAM_KEYS" <<'PY'
import sys
keys = open(sys.argv[1]).read().split()
with open(sys.argv[2], "w") as f:
    f.writelines(keys[i % len(keys)] + "\n" for i in range(int(sys.argv[3])))
PY
    STREAM_URL="$BASE/v1/lookup/$RES/stream?matter=310000-JZZ-001&case=P-STREAM&items=name,gender"
    start_hub valgrind --tool=callgrind --instr-atstart=no --dump-instr=no \
        --callgrind-out-file="$WORK/callgrind-stream.out"
    stream() { curl -s --max-time 1800 -X POST "$STREAM_URL" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/x-ndjson' --data-binary @"$1" -o "$WORK/stream.out"; }
    stream "$WORK/keys.txt" # warm-up, uninstrumented
    callgrind_control -i on "$HUB_PID" >/dev/null
    stream "$WORK/stream.ndjson"
    callgrind_control -i off "$HUB_PID" >/dev/null
    S_LINES=$(grep -c '"found":true' "$WORK/stream.out" || true)
    stop_hub
    (( S_LINES == STREAM_KEYS )) || die "the stream found $S_LINES of $STREAM_KEYS keys"
    callgrind_annotate --threshold=100 --inclusive=yes "$WORK/callgrind-stream.out" >"$WORK/stream-inclusive.txt" 2>/dev/null
    callgrind_annotate --threshold=100 "$WORK/callgrind-stream.out" >"$WORK/stream-exclusive.txt" 2>/dev/null
fi

log "native: strace -c -f and context switches over ${NATIVE_SECONDS} s"
start_hub
load 3
ctx() { # voluntary and involuntary switches, summed over the hub's threads
    cat /proc/"$HUB_PID"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/{v+=$2} /^nonvoluntary_ctxt_switches/{n+=$2} END{print v, n}'
}
read -r v0 n0 < <(ctx); r0=$(records)
load "$NATIVE_SECONDS"
read -r v1 n1 < <(ctx); r1=$(records)
NATIVE_N=$((r1 - r0))
timeout $((NATIVE_SECONDS + 30)) strace -c -f -q -o "$WORK/strace.txt" -p "$HUB_PID" &
STRACE_PID=$!
sleep 1
r2=$(records)
load "$NATIVE_SECONDS"
r3=$(records)
kill -INT "$STRACE_PID" 2>/dev/null || true
wait "$STRACE_PID" 2>/dev/null || true
STRACE_N=$((r3 - r2))
stop_hub

python3 - "$WORK" "$N" "$TOTAL" "$NATIVE_N" "$((v1 - v0))" "$((n1 - n0))" "$STRACE_N" "$STREAM_KEYS" <<'EOF'
import os, re, sys
work, n, total, native_n, vol, invol, strace_n, stream_keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
def annotated(prefix):
    incl, excl, total = {}, 0, 0
    for line in open(f"{work}/{prefix}inclusive.txt", errors="replace"):
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        # "'2" marks a recursion level: its cost counts the level below again.
        if not m or "=>" in line or re.search(r"'\d", m.group(2)):
            continue
        name = m.group(2)
        incl[name] = max(incl.get(name, 0), int(m.group(1).replace(",", "")))
    for line in open(f"{work}/{prefix}exclusive.txt", errors="replace"):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if m and re.search(r":_?mi_\w+|__rust_(alloc|dealloc|realloc)", m.group(2)):
            excl += int(m.group(1).replace(",", ""))
    return incl, excl, total
incl, excl, _ = annotated("")
def cost(*patterns, incl=incl):
    return sum(max([v for fn, v in incl.items() if p in fn] or [0]) for p in patterns)
stages = [
    ("a connection's requests (axum serve, hyper)", ["axum::serve::handle_connection::{{closure}}::{{closure}}"]),
    ("  HTTP request head parse (hyper)", ["<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"]),
    ("  identity (token check)", ["tongban_core::auth::Identities::identify"]),
    ("  JSON request parse", ["<&mut serde_json::de::Deserializer<R> as serde_core::de::Deserializer>::deserialize_struct"]),
    ("  key check digits", ["tongban_lookup::keys::normalise"]),
    ("  decision (one snapshot of the lists)", ["tongban_core::access::Access::decide"]),
    ("  index probe", ["tongban_lookup::index::Index::row"]),
    ("  answer rows (projection, masks)", ["tongban_server::lookup::release"]),
    ("  disputed marks", ["tongban_server::lookup::mark"]),
    ("  audit record, all of it (encode, hash, seal)", ["tongban_core::access::Access::release::{{closure}}"]),
    ("    encode the record (JSON)", ["<impl serde_core::ser::Serialize for tongban_audit::EventRef>::serialize"]),
    ("    key hash (HMAC)", ["tongban_audit::Keyed::hash"]),
    ("    chain hash (SHA-256 of the line)", ["tongban_audit::seal_into"]),
    ("  metrics (access counters)", ["tongban_core::metrics::access"]),
    ("  JSON answer encode", ["<axum::json::Json<T> as axum_core::response::into_response::IntoResponse>::into_response"]),
    ("audit writer thread (write, fdatasync, tree)", ["tongban_audit::write_loop"]),
    ("  Merkle tree push", ["tongban_audit::merkle::Frontier::push"]),
    ("SHA-256 compressions, everywhere (*)", ["sha2::sha256::compress256"]),
]
print("\n================ Tongban lookup profile ================")
print(f"lookups under callgrind  {n} (audit records gained); instructions {total:,} = {total/n:,.0f} per lookup")
print(f"{'stage (inclusive instructions)':52s} {'per lookup':>11s} {'share':>6s}")
for name, pats in stages:
    v = cost(*pats)
    print(f"{name:52s} {v/n:11,.0f} {100*v/total:5.1f}%")
print(f"{'allocator (mimalloc, exclusive)':52s} {excl/n:11,.0f} {100*excl/total:5.1f}%")
print("(*) valgrind hides the CPU's SHA extensions: natively SHA-256 runs in hardware, several times cheaper")
if stream_keys > 0 and os.path.exists(f"{work}/stream-inclusive.txt"):
    s_incl, s_excl, s_total = annotated("stream-")
    print(f"\nNDJSON stream under callgrind: {stream_keys} keys; instructions {s_total:,} = {s_total/stream_keys:,.0f} per key")
    print(f"{'stage (inclusive instructions)':52s} {'per key':>11s} {'share':>6s}")
    for name, pats in [
        ("reading the body, parsing lines, check digits", ["tongban_server::lookup::parse_line"]),
        # The answer task is spawned from dispatch and inlined into its
        # async block, so callgrind counts it under dispatch's name.
        ("a chunk: recheck, quota and its answer task", ["tongban_server::lookup::StreamJob::dispatch"]),
        ("  answer lines in one pass (write_lines)", ["tongban_server::lookup::StreamJob::write_lines"]),
        ("  answer rows, general path (release)", ["tongban_server::lookup::release"]),
        ("  row objects (Rows::write_object / object)", ["tongban_lookup::answer::Rows::write_object", "tongban_lookup::answer::Rows::object"]),
        ("  key probes (Index::row)", ["tongban_lookup::index::Index::row"]),
        ("  the chunk's audit record (Access::release)", ["tongban_core::access::Access::release::{{closure}}"]),
        ("audit writer thread (write, fdatasync, tree)", ["tongban_audit::write_loop"]),
        ("subject indexer thread", ["tongban_audit::index_loop"]),
        ("SHA-256 compressions, everywhere (*)", ["sha2::sha256::compress256"]),
    ]:
        v = cost(*pats, incl=s_incl)
        print(f"{name:52s} {v/stream_keys:11,.0f} {100*v/s_total:5.1f}%")
    print(f"{'allocator (mimalloc, exclusive)':52s} {s_excl/stream_keys:11,.0f} {100*s_excl/s_total:5.1f}%")
print(f"\nnative: {native_n} lookups in the context-switch window; per lookup: "
      f"{vol/max(native_n,1):.2f} voluntary, {invol/max(native_n,1):.2f} involuntary context switches")
rows = []
for line in open(f"{work}/strace.txt"):
    parts = line.split()
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
        calls = int(parts[3]); name = parts[-1]
        rows.append((calls, name))
rows.sort(reverse=True)
allcalls = sum(c for c, _ in rows)
print(f"strace: {strace_n} lookups; {allcalls/max(strace_n,1):.2f} system calls per lookup:")
for c, name in rows[:10]:
    print(f"  {name:18s} {c/max(strace_n,1):6.2f} per lookup")
EOF
