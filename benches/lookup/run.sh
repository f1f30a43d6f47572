#!/usr/bin/env bash
# Lookup benchmark of Tongban (the lookup issue), one run on one machine:
#
#   1. builds the release `tongban` binary and the `lookup-rate` generator;
#   2. starts `tongban demo` on a fresh data dir on 127.0.0.1:$PORT and waits
#      until a lookup answers 200;
#   3. extracts $NKEYS real citizen IDs (and the rows, for PostgreSQL and
#      Redis) from the hub's own Parquet file (prepare.py, pyarrow);
#   4. wrk, fixed concurrency, single-key lookups cycling through the keys;
#   5. p99 at a fixed $RATE requests/s (lookup-rate, open loop);
#   6. streaming: $STREAM_KEYS keys in one NDJSON request, keys/s; and the
#      same keys through Arrow Flight DoExchange with pyarrow (flight.py);
#   7. the pinned run (PINNED=1, the default on 2 or more cores): the hub on
#      CPU 0, the load generator on CPU 1 (taskset), wrk and the fixed rate
#      again; every server's CPU per request is CPU 0's busy time over the
#      requests (/proc/stat), the same measure for every server;
#   8. redis-benchmark GET at the same concurrency, on the same rows' values,
#      shared and pinned (redis-server moved to CPU 0 and back);
#   9. pgbench selects on the same rows in PostgreSQL (database `test`),
#      shared and pinned (every postgres process moved to CPU 0 and back);
#  10. prints a summary with the ratios and PASS / FALL SHORT per target.
#
# Usage: benches/lookup/run.sh            (from anywhere; settings below by
#        environment, e.g. SCALE=0.1 DURATION=10 benches/lookup/run.sh)
#
# Everything targets 127.0.0.1 only; every step is bounded in time; the hub,
# the temporary files, the Redis keys and the PostgreSQL tables it made are
# removed at the end (KEEP=1 keeps the work directory).
set -euo pipefail

SCALE=${SCALE:-1}                 # demo scale: 1 = 1,000,000 citizens
PORT=${PORT:-18180}
THREADS=${THREADS:-2}             # wrk threads
CONNECTIONS=${CONNECTIONS:-64}    # wrk connections = redis-benchmark -c = pgbench -c
DURATION=${DURATION:-20}          # seconds of each throughput run
RATE=${RATE:-20000}               # fixed-rate run: requests/s
RATE_DURATION=${RATE_DURATION:-10}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-$CONNECTIONS}
NKEYS=${NKEYS:-100000}            # keys extracted from the Parquet file
PINNED=${PINNED:-$( (( $(nproc) >= 2 )) && echo 1 || echo 0)} # also the pinned run
STREAM_KEYS=${STREAM_KEYS:-1000000}
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
REDIS_DB=${REDIS_DB:-15}          # redis-benchmark --dbnum: keeps off db 0
VENV=${VENV:-/var/tmp/bench-venv} # Python venv with pyarrow (made if missing)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
KEEP=${KEEP:-0}
WORK_PARENT=${WORK_PARENT:-/var/tmp} # the hub's data dir (and its audit log) goes here
# HUB_ARGS: more arguments for `tongban demo`, e.g. "--http-runtime per-core"
HUB_ARGS=${HUB_ARGS:-}
# TB_COMMIT: the commit to print, when the tree is not a git checkout
# TONGBAN_BIN: benchmark this tongban binary instead of building the tree's

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
RES=101/000001

# CPU seconds (user + system) a process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# Busy (non-idle) seconds of CPU $1 so far, from /proc/stat
cpu_busy_s() { awk -v c="cpu$1" -v hz="$(getconf CLK_TCK)" '$1==c { print ($2+$3+$4+$7+$8) / hz }' /proc/stat; }
# Moves every thread of the processes $2.. to CPUs $1 (taskset -a)
pin() { local cpus=$1; shift; for p in "$@"; do taskset -apc "$cpus" "$p" >/dev/null 2>&1 || true; done; }
ALL_CPUS=0-$(( $(nproc) - 1 ))
per_req_us() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{ if (n>0) printf "%.1f", (b-a)*1e6/n; else print "n/a" }'; }
log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v pgbench >/dev/null || need_apt+=(postgresql-client)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    [[ $(id -u) == 0 ]] || die "missing ${need_apt[*]}; install them (apt-get install -y ${need_apt[*]})"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! "$VENV/bin/python" -c 'import pyarrow' 2>/dev/null; then
    log "making $VENV with pyarrow"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pyarrow
fi
redis-cli -h $HOST ping >/dev/null || die "no Redis on $HOST:6379"
psql "$PG_URL" -Atqc 'select 1' >/dev/null || die "no PostgreSQL at $PG_URL"

# ---------------------------------------------------------------- build
log "building (release) in $CARGO_TARGET_DIR"
if [[ -n ${TONGBAN_BIN:-} ]]; then
    # An earlier build (e.g. the commit before a change), for a before/after
    # in one session; set TB_COMMIT to say which commit it is.
    [[ -x $TONGBAN_BIN ]] || die "TONGBAN_BIN=$TONGBAN_BIN is not an executable"
    (cd "$ROOT" && cargo build --release -q -p tongban-benches --features lookup-rate --bin lookup-rate)
    TONGBAN=$TONGBAN_BIN
else
    (cd "$ROOT" && cargo build --release -q -p tongban-hub \
        && cargo build --release -q -p tongban-benches --features lookup-rate --bin lookup-rate)
    TONGBAN=$CARGO_TARGET_DIR/release/tongban
fi
RATEGEN=$CARGO_TARGET_DIR/release/lookup-rate

# ---------------------------------------------------------------- work dir, cleanup
WORK=$(mktemp -d "$WORK_PARENT/tongban-lookup-bench.XXXXXX")
HUB_PID=
cleanup() {
    set +e
    # The pinned runs move Redis and PostgreSQL to CPU 0: back to every CPU.
    pin "$ALL_CPUS" $(pgrep -x redis-server) $(pgrep -x postgres)
    if [[ -n $HUB_PID ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null
    fi
    psql "$PG_URL" -Atqc 'DROP TABLE IF EXISTS tongban_bench_people, tongban_bench_keys' >/dev/null 2>&1
    redis-cli -h $HOST -n "$REDIS_DB" --scan --pattern 'key:*' 2>/dev/null \
        | xargs -r -n 1000 redis-cli -h $HOST -n "$REDIS_DB" unlink >/dev/null 2>&1
    if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>/dev/tcp/$HOST/$PORT) 2>/dev/null; then
    die "something already listens on $HOST:$PORT"
fi

# ---------------------------------------------------------------- hub
log "starting tongban demo (scale $SCALE) on $HOST:$PORT, data in $WORK/data"
# shellcheck disable=SC2086 # HUB_ARGS is a list of words
"$TONGBAN" demo --data-dir "$WORK/data" --listen "$HOST:$PORT" --scale "$SCALE" $HUB_ARGS \
    >"$WORK/hub.out" 2>"$WORK/hub.log" &
HUB_PID=$!
t0=$(date +%s)
until curl -fs -o /dev/null "$BASE/health"; do
    kill -0 "$HUB_PID" 2>/dev/null || { cat "$WORK/hub.log" >&2; die "the hub exited"; }
    (( $(date +%s) - t0 < 600 )) || die "no /health after 600 s"
    sleep 0.5
done
echo "hub up after $(( $(date +%s) - t0 )) s" >&2
TOKEN=$("$VENV/bin/python" -c '
import json, sys
print(next(t["token"] for t in json.load(open(sys.argv[1]))["tokens"] if t["label"] == "acceptance"))
' "$WORK/data/demo-credentials.json")
PARQUET=$(ls "$WORK"/data/datasets/101-000001/v*/part-*.parquet | head -n 1)

log "extracting $NKEYS keys and the rows from $PARQUET"
"$VENV/bin/python" "$HERE/prepare.py" "$PARQUET" "$WORK" --keys "$NKEYS" | tee "$WORK/prepare.out" >&2
ROWS=$(awk '$1=="rows"{print $2}' "$WORK/prepare.out")
KEYS=$(awk '$1=="keys"{print $2}' "$WORK/prepare.out")

lookup_once() {
    curl -s -o "$WORK/one.json" -w '%{http_code}' -X POST "$BASE/v1/lookup/$RES" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"keys\":[\"$1\"],\"items\":[\"name\",\"gender\",\"residence_address\"],\"matter\":\"310000-JZZ-001\",\"case\":\"BENCH-1\"}"
}
FIRST_KEY=$(head -n 1 "$WORK/keys.txt")
t0=$(date +%s)
until [[ $(lookup_once "$FIRST_KEY") == 200 ]]; do
    (( $(date +%s) - t0 < 300 )) || { cat "$WORK/one.json" >&2; die "lookups not 200 after 300 s"; }
    sleep 0.5
done
echo "lookups answer 200 after $(( $(date +%s) - t0 )) s; one answer ($(wc -c <"$WORK/one.json") bytes):" >&2
cat "$WORK/one.json" >&2; echo >&2
grep -q '"found":true' "$WORK/one.json" || die "the first key was not found"

# ---------------------------------------------------------------- wrk
log "wrk: -t$THREADS -c$CONNECTIONS, 3 s warm-up, then ${DURATION} s"
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$HERE/lookup.lua" "$BASE" -- "$WORK/keys.txt" "$TOKEN" >/dev/null
HUB_CPU0=$(cpu_s "$HUB_PID")
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency \
    -s "$HERE/lookup.lua" "$BASE" -- "$WORK/keys.txt" "$TOKEN" | tee "$WORK/wrk.out" >&2
HUB_CPU1=$(cpu_s "$HUB_PID")
TB_RPS=$(awk '/^Requests\/sec:/{print $2}' "$WORK/wrk.out")
TB_REQS=$(awk '$1=="requests"{print $2}' "$WORK/wrk.out")
TB_NON200=$(awk '$1=="non200"{print $2}' "$WORK/wrk.out")
TB_SOCKERR=$(awk '$1=="socket_errors"{print $2, $3, $4, $5}' "$WORK/wrk.out")
wrk_p() { awk -v p="$1" '$1=="latency_us" && $2==p {printf "%.2f", $3/1000}' "$WORK/wrk.out"; }
TB_P50=$(wrk_p p50); TB_P90=$(wrk_p p90); TB_P99=$(wrk_p p99); TB_P999=$(wrk_p p99.9)
TB_CPU_US=$(per_req_us "$HUB_CPU0" "$HUB_CPU1" "$TB_REQS")
TB_CPU_PCT=$(awk -v a="$HUB_CPU0" -v b="$HUB_CPU1" -v d="$DURATION" 'BEGIN{printf "%.0f", (b-a)*100/d}')
echo "hub CPU: $TB_CPU_US us per request, $TB_CPU_PCT % of one core" >&2

# ---------------------------------------------------------------- fixed rate
log "floor: lookup-rate GET /health at $RATE requests/s for $RATE_DURATION s"
sleep 2
timeout $((RATE_DURATION + 60)) "$RATEGEN" --method GET --url "$BASE/health" --token - \
    --keys "$WORK/keys.txt" --rate "$RATE" --duration "$RATE_DURATION" --warmup 2 \
    --connections "$RATE_CONNECTIONS" | tee "$WORK/floor.out" >&2
F_P50=$(awk '$1=="p50_us"{printf "%.3f", $2/1000}' "$WORK/floor.out")
F_P99=$(awk '$1=="p99_us"{printf "%.3f", $2/1000}' "$WORK/floor.out")
F_NON200=$(awk '$1=="non200"{print $2}' "$WORK/floor.out")

log "lookup-rate: $RATE requests/s for $RATE_DURATION s (2 s warm-up), $RATE_CONNECTIONS connections"
sleep 2
timeout $((RATE_DURATION + 60)) "$RATEGEN" --url "$BASE/v1/lookup/$RES" --token "$TOKEN" \
    --keys "$WORK/keys.txt" --rate "$RATE" --duration "$RATE_DURATION" --warmup 2 \
    --connections "$RATE_CONNECTIONS" --timeline | tee "$WORK/rate.out" >&2
rate_v() { awk -v k="$1" '$1==k{print $2}' "$WORK/rate.out"; }
R_ACH=$(rate_v achieved_rate); R_NON200=$(rate_v non200); R_ERR=$(rate_v errors)
R_P50=$(awk '$1=="p50_us"{printf "%.3f", $2/1000}' "$WORK/rate.out")
R_P99=$(awk '$1=="p99_us"{printf "%.3f", $2/1000}' "$WORK/rate.out")
R_P999=$(awk '$1=="p999_us"{printf "%.3f", $2/1000}' "$WORK/rate.out")
R_MAX=$(awk '$1=="max_us"{printf "%.3f", $2/1000}' "$WORK/rate.out")

# ---------------------------------------------------------------- streaming
log "streaming: $STREAM_KEYS keys in one request"
sleep 2
"$VENV/bin/python" - "$WORK/keys.txt" "$WORK/stream.ndjson" "$STREAM_KEYS" <<'EOF'
import sys
keys = open(sys.argv[1]).read().split()
n = int(sys.argv[3])
with open(sys.argv[2], "w") as f:
    for i in range(n):
        f.write(keys[i % len(keys)] + "\n")
EOF
STREAM_URL="$BASE/v1/lookup/$RES/stream?matter=310000-JZZ-001&case=BENCH-STREAM&items=name,gender"
# warm-up: the keys file once, answer discarded
curl -s --max-time 120 -X POST "$STREAM_URL" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/keys.txt" -o /dev/null
S_TIME=$(curl -s --max-time 300 -X POST "$STREAM_URL" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/stream.ndjson" \
    -o "$WORK/stream.out" -w '%{time_total}')
S_LINES=$(wc -l <"$WORK/stream.out")
S_FOUND=$(grep -c '"found":true' "$WORK/stream.out" || true)
S_ERRORS=$(grep -c '"error"' "$WORK/stream.out" || true)
S_BYTES=$(wc -c <"$WORK/stream.out")
S_KPS=$(awk -v n="$S_LINES" -v t="$S_TIME" 'BEGIN{printf "%.0f", n/t}')
echo "stream: $S_LINES lines ($S_FOUND found, $S_ERRORS errors, $S_BYTES bytes) in $S_TIME s = $S_KPS keys/s" >&2
[[ $S_LINES == "$STREAM_KEYS" ]] || echo "WARNING: $S_LINES answer lines for $STREAM_KEYS keys" >&2
rm -f "$WORK/stream.ndjson" "$WORK/stream.out"

log "Flight DoExchange: $STREAM_KEYS keys in batches of 65536 (pyarrow)"
sleep 2
FLIGHT_URL="grpc://$HOST:$((PORT + 1))"
timeout 300 "$VENV/bin/python" "$HERE/flight.py" "$FLIGHT_URL" "$TOKEN" "$WORK/keys.txt" "$STREAM_KEYS" \
    | tee "$WORK/flight.out" >&2 || die "the Flight exchange failed"
FL_KPS=$(awk '$1=="keys_per_s"{print $2}' "$WORK/flight.out")
FL_FOUND=$(awk '$1=="found"{print $2}' "$WORK/flight.out")
FL_ERR=$(awk '$1=="errors"{print $2}' "$WORK/flight.out")
FL_S=$(awk '$1=="seconds"{print $2}' "$WORK/flight.out")

# ---------------------------------------------------------------- pinned
# The hub on CPU 0, the generator on CPU 1: the ratio then measures the
# servers, not how the scheduler shares two cores between server and load.
P_RPS=n/a; P_CPU_US=n/a; P_CPU0_US=n/a; P_P99=n/a; PR_ACH=n/a; PR_P99=n/a; PR_OK=n/a
if [[ $PINNED == 1 ]]; then
    log "pinned: the hub's threads on CPU 0, wrk -t1 -c$CONNECTIONS on CPU 1, ${DURATION} s"
    pin 0 "$HUB_PID"
    sleep 2
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d3s -s "$HERE/lookup.lua" "$BASE" -- "$WORK/keys.txt" "$TOKEN" >/dev/null
    HUB_CPU0=$(cpu_s "$HUB_PID"); C0=$(cpu_busy_s 0)
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency \
        -s "$HERE/lookup.lua" "$BASE" -- "$WORK/keys.txt" "$TOKEN" | tee "$WORK/wrk-pinned.out" >&2
    HUB_CPU1=$(cpu_s "$HUB_PID"); C1=$(cpu_busy_s 0)
    P_RPS=$(awk '/^Requests\/sec:/{print $2}' "$WORK/wrk-pinned.out")
    P_REQS=$(awk '$1=="requests"{print $2}' "$WORK/wrk-pinned.out")
    P_NON200=$(awk '$1=="non200"{print $2}' "$WORK/wrk-pinned.out")
    P_P99=$(awk '$1=="latency_us" && $2=="p99" {printf "%.2f", $3/1000}' "$WORK/wrk-pinned.out")
    P_CPU_US=$(per_req_us "$HUB_CPU0" "$HUB_CPU1" "$P_REQS")
    P_CPU0_US=$(per_req_us "$C0" "$C1" "$P_REQS")
    echo "pinned hub: $P_CPU_US us of hub CPU, $P_CPU0_US us of CPU 0 per request" >&2
    log "pinned: lookup-rate on CPU 1, $RATE requests/s for $RATE_DURATION s"
    sleep 2
    timeout $((RATE_DURATION + 60)) taskset -c 1 "$RATEGEN" --url "$BASE/v1/lookup/$RES" --token "$TOKEN" \
        --keys "$WORK/keys.txt" --rate "$RATE" --duration "$RATE_DURATION" --warmup 2 \
        --connections "$RATE_CONNECTIONS" | tee "$WORK/rate-pinned.out" >&2
    PR_ACH=$(awk '$1=="achieved_rate"{print $2}' "$WORK/rate-pinned.out")
    PR_P99=$(awk '$1=="p99_us"{printf "%.3f", $2/1000}' "$WORK/rate-pinned.out")
    PR_OK=$(awk -v a="$PR_ACH" -v r="$RATE" -v e="$(awk '$1=="errors"{print $2}' "$WORK/rate-pinned.out")" \
        -v n="$(awk '$1=="non200"{print $2}' "$WORK/rate-pinned.out")" \
        'BEGIN{print (a>=0.98*r && e==0 && n==0) ? "held" : "NOT held"}')
    [[ ${P_NON200:-0} == 0 ]] || echo "WARNING: $P_NON200 non-200 answers in the pinned run" >&2
fi

log "stopping the hub"
kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true
HUB_PID=

# ---------------------------------------------------------------- Redis
log "Redis: $KEYS keys key:%012d in db $REDIS_DB hold the same rows' JSON values"
sleep 2
redis-cli -h $HOST -n "$REDIS_DB" --pipe <"$WORK/redis.proto" >&2
cal=$(redis-benchmark -h $HOST --dbnum "$REDIS_DB" -t get -r "$KEYS" -c "$CONNECTIONS" -n 100000 -q \
    | tr '\r' '\n' | awk '/^GET:/{print $2}' | tail -n 1)
REDIS_N=$(awk -v r="$cal" -v d="$DURATION" 'BEGIN{printf "%d", r*d}')
echo "calibration: $cal GET/s, so -n $REDIS_N for ~${DURATION} s" >&2
REDIS_PID=$(redis-cli -h $HOST info server | tr -d '\r' | awk -F: '$1=="process_id"{print $2}')
REDIS_CPU0=$(cpu_s "$REDIS_PID" 2>/dev/null || echo 0)
timeout $((DURATION * 4 + 60)) redis-benchmark -h $HOST --dbnum "$REDIS_DB" -t get -r "$KEYS" \
    -c "$CONNECTIONS" -n "$REDIS_N" -q | tr '\r' '\n' | grep '^GET:' | tail -n 1 | tee "$WORK/redis.out" >&2
REDIS_RPS=$(awk '/^GET:/{print $2}' "$WORK/redis.out")
REDIS_P50=$(sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p' "$WORK/redis.out")
REDIS_CPU1=$(cpu_s "$REDIS_PID" 2>/dev/null || echo 0)
REDIS_CPU_US=$(per_req_us "$REDIS_CPU0" "$REDIS_CPU1" "$REDIS_N")
echo "redis-server CPU: $REDIS_CPU_US us per GET" >&2
PR_REDIS_RPS=n/a; PR_REDIS_CPU0_US=n/a
if [[ $PINNED == 1 ]]; then
    log "pinned: redis-server on CPU 0, redis-benchmark on CPU 1"
    pin 0 "$REDIS_PID"
    sleep 1
    C0=$(cpu_busy_s 0)
    timeout $((DURATION * 4 + 60)) taskset -c 1 redis-benchmark -h $HOST --dbnum "$REDIS_DB" -t get -r "$KEYS" \
        -c "$CONNECTIONS" -n "$REDIS_N" -q | tr '\r' '\n' | grep '^GET:' | tail -n 1 | tee "$WORK/redis-pinned.out" >&2
    C1=$(cpu_busy_s 0)
    pin "$ALL_CPUS" "$REDIS_PID"
    PR_REDIS_RPS=$(awk '/^GET:/{print $2}' "$WORK/redis-pinned.out")
    PR_REDIS_CPU0_US=$(per_req_us "$C0" "$C1" "$REDIS_N")
    echo "pinned redis-server: $PR_REDIS_CPU0_US us of CPU 0 per GET" >&2
fi

# ---------------------------------------------------------------- PostgreSQL
log "PostgreSQL: loading $ROWS rows into tongban_bench_people"
sleep 2
cols=$(sed '/^$/d' "$WORK/columns.txt" | awk '{ printf ", %s text%s", $1, ($1=="citizen_id" ? " PRIMARY KEY" : " NOT NULL") }')
psql "$PG_URL" -v ON_ERROR_STOP=1 -Atq >&2 <<EOF
DROP TABLE IF EXISTS tongban_bench_people, tongban_bench_keys;
CREATE TABLE tongban_bench_people (n bigint NOT NULL $cols);
\copy tongban_bench_people FROM '$WORK/people.csv' WITH (FORMAT csv, HEADER true)
CREATE UNIQUE INDEX tongban_bench_people_n ON tongban_bench_people (n);
CREATE TABLE tongban_bench_keys (n int PRIMARY KEY, citizen_id text NOT NULL);
\copy tongban_bench_keys FROM '$WORK/keys.csv' WITH (FORMAT csv)
VACUUM ANALYZE tongban_bench_people;
VACUUM ANALYZE tongban_bench_keys;
CHECKPOINT; -- the load's WAL is flushed now, not during pgbench
SELECT 'loaded ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('tongban_bench_people')) FROM tongban_bench_people;
EOF
pgb() { # pgbench SCRIPT OUT: 3 s warm-up, then DURATION s; prints TPS
    pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T 3 -D rows="$ROWS" -D keys="$KEYS" \
        -f "$HERE/$1" "$PG_URL" >/dev/null 2>&1
    pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" -D rows="$ROWS" -D keys="$KEYS" \
        -f "$HERE/$1" "$PG_URL" >"$WORK/$2" 2>&1 || { cat "$WORK/$2" >&2; die "pgbench failed"; }
    grep -E 'latency average|tps =|failed' "$WORK/$2" >&2
    awk '/^tps =/{print $3}' "$WORK/$2"
}
log "pgbench -M prepared -c $CONNECTIONS -j $THREADS -T $DURATION, by integer n (one probe)"
PG_N_TPS=$(pgb pg_select_n.sql pg_n.out)
log "pgbench -M prepared -c $CONNECTIONS -j $THREADS -T $DURATION, by citizen_id (keys table + primary key)"
PG_ID_TPS=$(pgb pg_select_id.sql pg_id.out)
# the ratio is taken against the faster variant: the one harder to beat
PG_BEST=$(awk -v a="$PG_N_TPS" -v b="$PG_ID_TPS" 'BEGIN{print (a>b)?a:b}')
PR_PG_N_TPS=n/a; PR_PG_ID_TPS=n/a; PR_PG_BEST=n/a; PR_PG_CPU0_US=n/a
if [[ $PINNED == 1 ]]; then
    log "pinned: every postgres process on CPU 0, pgbench on CPU 1 (by n, then by citizen_id)"
    # Backends fork from the postmaster, so they start on CPU 0 too.
    pin 0 $(pgrep -x postgres)
    pgbp() { # pgbench, pinned; prints TPS and CPU 0's busy us per transaction
        taskset -c 1 pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T 3 -D rows="$ROWS" -D keys="$KEYS" \
            -f "$HERE/$1" "$PG_URL" >/dev/null 2>&1
        local c0 c1 tps n
        c0=$(cpu_busy_s 0)
        taskset -c 1 pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" -D rows="$ROWS" -D keys="$KEYS" \
            -f "$HERE/$1" "$PG_URL" >"$WORK/$2" 2>&1 || { cat "$WORK/$2" >&2; die "pgbench failed"; }
        c1=$(cpu_busy_s 0)
        grep -E 'latency average|tps =' "$WORK/$2" >&2
        tps=$(awk '/^tps =/{print $3}' "$WORK/$2")
        n=$(awk '/number of transactions actually processed/{print $NF}' "$WORK/$2")
        echo "$tps $(per_req_us "$c0" "$c1" "$n")"
    }
    read -r PR_PG_N_TPS PG_N_CPU0 < <(pgbp pg_select_n.sql pg_n_pinned.out)
    read -r PR_PG_ID_TPS PG_ID_CPU0 < <(pgbp pg_select_id.sql pg_id_pinned.out)
    pin "$ALL_CPUS" $(pgrep -x postgres)
    if awk -v a="$PR_PG_N_TPS" -v b="$PR_PG_ID_TPS" 'BEGIN{exit !(a>b)}'; then
        PR_PG_BEST=$PR_PG_N_TPS; PR_PG_CPU0_US=$PG_N_CPU0
    else
        PR_PG_BEST=$PR_PG_ID_TPS; PR_PG_CPU0_US=$PG_ID_CPU0
    fi
fi

# ---------------------------------------------------------------- summary
if [[ -n ${TB_COMMIT:-} ]]; then COMMIT=$TB_COMMIT
elif COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
else COMMIT="unknown (not a git checkout; set TB_COMMIT)"; fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{ if (v !~ /^[0-9.]+$/) { print "n/a"; exit } ok = (op==">=") ? (v>=t) : (v<t); print ok ? "PASS" : "FALL SHORT" }'; }
R_REDIS=$(ratio "$TB_RPS" "$REDIS_RPS")
R_PG=$(ratio "$TB_RPS" "$PG_BEST")
R_PG_N=$(ratio "$TB_RPS" "$PG_N_TPS")
R_PG_ID=$(ratio "$TB_RPS" "$PG_ID_TPS")
RATE_OK=$(awk -v a="$R_ACH" -v r="$RATE" -v e="$R_ERR" -v n="$R_NON200" 'BEGIN{print (a>=0.98*r && e==0 && n==0) ? "held" : "NOT held"}')
P99_VERDICT=$(verdict "$R_P99" "<" 1)
R_CPU=$(ratio "$TB_CPU_US" "$REDIS_CPU_US")
PR_R_REDIS=$(ratio "$P_RPS" "$PR_REDIS_RPS")
PR_R_PG=$(ratio "$P_RPS" "$PR_PG_BEST")
PR_R_CPU=$(ratio "$P_CPU0_US" "$PR_REDIS_CPU0_US")
[[ $RATE_OK == held ]] || P99_VERDICT="FALL SHORT"

cat <<EOF

================ Tongban lookup benchmark ================
machine     $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr)
date        $(date -u +%Y-%m-%dT%H:%MZ)
commit      $COMMIT${HUB_ARGS:+ (demo $HUB_ARGS)}
data        scale $SCALE: $ROWS citizens; $KEYS sampled keys; hub data in $WORK_PARENT
note        shared: server and load generators share the same $(nproc) cores; pinned: see below

Tongban lookups (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, 1 key, 3 items, policy+mask+audit)
  requests/s            $TB_RPS   ($TB_REQS requests, non-200: $TB_NON200; socket errors: $TB_SOCKERR)
  latency ms            p50 $TB_P50  p90 $TB_P90  p99 $TB_P99  p99.9 $TB_P999
  hub CPU               $TB_CPU_US us per request ($TB_CPU_PCT % of one core)
Redis GET (redis-benchmark -c $CONNECTIONS -n $REDIS_N -r $KEYS)
  requests/s            $REDIS_RPS   (p50 $REDIS_P50 ms; redis-server CPU $REDIS_CPU_US us per GET)
PostgreSQL (pgbench -M prepared -c $CONNECTIONS -j $THREADS -T $DURATION)
  by integer n          $(printf '%.0f' "$PG_N_TPS") tps
  by citizen_id         $(printf '%.0f' "$PG_ID_TPS") tps
Fixed rate (lookup-rate, open loop, $RATE_CONNECTIONS connections, ${RATE_DURATION} s)
  achieved              $R_ACH req/s of $RATE ($RATE_OK; non-200 $R_NON200, errors $R_ERR)
  latency ms            p50 $R_P50  p99 $R_P99  p99.9 $R_P999  max $R_MAX
  floor (GET /health)   p50 $F_P50  p99 $F_P99  (same generator and rate; non-200 $F_NON200)
Streaming (one request, $STREAM_KEYS keys, items name,gender)
  NDJSON keys/s         $S_KPS   ($S_LINES lines, $S_FOUND found, $S_ERRORS errors, ${S_TIME} s)
  Flight keys/s         $FL_KPS   (DoExchange from pyarrow, batches of 65536; $FL_FOUND found, $FL_ERR errors, ${FL_S} s)
Pinned (hub, redis-server, postgres on CPU 0; wrk, redis-benchmark, pgbench, lookup-rate on CPU 1)
  Tongban lookups/s     $P_RPS   (p99 $P_P99 ms; hub CPU $P_CPU_US us, CPU 0 $P_CPU0_US us per request)
  Redis GET/s           $PR_REDIS_RPS   (CPU 0 $PR_REDIS_CPU0_US us per GET)
  pgbench best tps      $PR_PG_BEST   (by n $PR_PG_N_TPS, by citizen_id $PR_PG_ID_TPS; CPU 0 $PR_PG_CPU0_US us per select)
  fixed $RATE/s         achieved $PR_ACH ($PR_OK), p99 $PR_P99 ms

target                                   measured                 verdict
hub CPU / Redis CPU (shared) <= 1.0x     $(printf '%-24s' "${R_CPU}x ($TB_CPU_US / $REDIS_CPU_US us)") $(verdict "$R_CPU" "<" 1.0001)
CPU 0 per request (pinned) <= 1.0x       $(printf '%-24s' "${PR_R_CPU}x ($P_CPU0_US / $PR_REDIS_CPU0_US us)") $(verdict "$PR_R_CPU" "<" 1.0001)
Tongban / Redis GET        >= 1.0x       $(printf '%-24s' "${R_REDIS}x") $(verdict "$R_REDIS" ">=" 1.0)
  pinned                   >= 1.0x       $(printf '%-24s' "${PR_R_REDIS}x") $(verdict "$PR_R_REDIS" ">=" 1.0)
Tongban / pgbench (best)   >= 10x        $(printf '%-24s' "${R_PG}x (n ${R_PG_N}x, id ${R_PG_ID}x)") $(verdict "$R_PG" ">=" 10)
  pinned                   >= 10x        $(printf '%-24s' "${PR_R_PG}x") $(verdict "$PR_R_PG" ">=" 10)
p99 at $RATE req/s        < 1 ms        $(printf '%-24s' "$R_P99 ms ($RATE_OK)") $P99_VERDICT
  pinned                   < 1 ms        $(printf '%-24s' "$PR_P99 ms ($PR_OK)") $( [[ $PR_OK == held ]] && verdict "$PR_P99" "<" 1 || echo "FALL SHORT")
NDJSON streaming           >= 1M keys/s  $(printf '%-24s' "$S_KPS") $(verdict "$S_KPS" ">=" 1000000)
Flight DoExchange          >= 2M keys/s  $(printf '%-24s' "$FL_KPS") $(verdict "$FL_KPS" ">=" 2000000)
EOF
