#!/usr/bin/env bash
# Scaling figures of docs/scaling.md (the production issue), one run on one
# machine, on the topology a city runs: one PostgreSQL catalog, one
# S3-compatible object store (s3s-fs), two `tongban serve` replicas, nginx
# in front.
#
#   1. builds the release `tongban` (or takes TONGBAN_BIN), installs s3s-fs
#      into the tools dir if it is missing (as .ci/run does), nginx and wrk
#      from Debian if they are missing;
#   2. starts s3s-fs over a fresh folder; makes a fresh PostgreSQL database
#      as the catalog; `tongban datagen --scale $SCALE` publishes the base
#      libraries into both; issues a token for the acceptance office;
#   3. starts replicas A and B on that catalog and store; waits for /ready;
#   4. publish -> serve: $ROUNDS times `tongban datagen --seed N` publishes a
#      new version of every library; for each version, the time from its
#      catalog record to A's and to B's index serving it (their /metrics,
#      polled every 10 ms);
#   5. catalog load: transactions per second on the catalog database
#      (pg_stat_database), with both replicas idle and under lookups;
#   6. lookups: wrk straight at A, through nginx over A alone, through nginx
#      over A and B; throughput, latency, CPU per request of every process;
#   7. object-store traffic: the bytes of the versions written and of the
#      audit segments the replicas shipped.
#
# Usage: benches/scaling/run.sh     (SCALE=1 ROUNDS=3 DURATION=15
#        CONNECTIONS=64 KEEP=0; TONGBAN_BIN=<binary> to skip the build)
#
# Everything listens on 127.0.0.1; every process, folder and the database it
# made are removed at the end (KEEP=1 keeps the work directory).
set -euo pipefail

SCALE=${SCALE:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
NKEYS=${NKEYS:-100000}
IDLE=${IDLE:-30}                   # seconds of the idle catalog-load window
PG_ADMIN=${PG_ADMIN:-postgresql://postgres@127.0.0.1:5432/postgres}
DB=${DB:-tongban_scaling}
VENV=${VENV:-/var/tmp/bench-venv}
TOOLS=${TONGBAN_TOOLS:-/var/tmp/tongban-tools}
WORK_PARENT=${WORK_PARENT:-/var/tmp}
KEEP=${KEEP:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/tongban-target}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=127.0.0.1
RES=101/000001
PG_URL="postgresql://postgres@127.0.0.1:5432/$DB"

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'scaling/run.sh: %s\n' "$*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v nginx >/dev/null || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v psql >/dev/null || need_apt+=(postgresql-client)
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
if ! [[ -x $TOOLS/bin/s3s-fs ]]; then
    log "installing s3s-fs (crates.io) into $TOOLS"
    cargo install -q s3s-fs --version 0.14.1 --features binary --locked --root "$TOOLS"
fi
psql "$PG_ADMIN" -Atqc 'select 1' >/dev/null || die "no PostgreSQL at $PG_ADMIN"

if [[ -n ${TONGBAN_BIN:-} ]]; then
    TONGBAN=$TONGBAN_BIN
else
    log "building (release) in $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release -q -p tongban-hub)
    TONGBAN=$CARGO_TARGET_DIR/release/tongban
fi
[[ -x $TONGBAN ]] || die "no tongban binary at $TONGBAN"

# ---------------------------------------------------------------- work, cleanup
WORK=$(mktemp -d "$WORK_PARENT/tongban-scaling.XXXXXX")
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- S3, catalog, data
S3_PORT=$(free_port)
mkdir -p "$WORK/s3/tongban"
export AWS_ACCESS_KEY_ID=tongban-bench AWS_SECRET_ACCESS_KEY=tongban-bench-secret
"$TOOLS/bin/s3s-fs" --host $HOST --port "$S3_PORT" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$WORK/s3" >"$WORK/s3s.log" 2>&1 &
S3_PID=$!; PIDS+=("$S3_PID")
psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql "$PG_ADMIN" -Atqc "CREATE DATABASE $DB" >/dev/null

# config NAME PORT METRICS_PORT: a replica's configuration file
config() {
    cat >"$WORK/$1.toml" <<EOF
listen = '$HOST:$2'
data_dir = '$WORK/$1'
store_url = '$PG_URL'
replica_id = '$1'
mask_hash_key = 'scaling-bench-shared-key'
[metrics]
listen = '$HOST:$3'
[object_store]
url = 's3://tongban/city'
endpoint = 'http://$HOST:$S3_PORT'
path_style = true
allow_http = true
EOF
}
A_PORT=$(free_port); A_METRICS=$(free_port)
B_PORT=$(free_port); B_METRICS=$(free_port)
config hub-a "$A_PORT" "$A_METRICS"
config hub-b "$B_PORT" "$B_METRICS"

log "tongban datagen --scale $SCALE into PostgreSQL ($DB) and S3 (s3s-fs on $S3_PORT)"
t0=$(now_ms)
"$TONGBAN" datagen --config "$WORK/hub-a.toml" --scale "$SCALE" --seed 1 >&2
echo "datagen took $(( $(now_ms) - t0 )) ms" >&2
TOKEN=$("$TONGBAN" token add --config "$WORK/hub-a.toml" --department sh-zwfw --label "scaling bench" 2>/dev/null)
[[ $TOKEN == tb_* || -n $TOKEN ]] || die "no token issued"
PARQUET=$(ls "$WORK"/s3/tongban/city/datasets/101-000001/v1*/part-00000.parquet | head -n 1)
"$VENV/bin/python" "$ROOT/benches/lookup/prepare.py" "$PARQUET" "$WORK" --keys "$NKEYS" >"$WORK/prepare.out"
POP_ROWS=$(awk '$1=="rows"{print $2}' "$WORK/prepare.out")

# ---------------------------------------------------------------- replicas
start_replica() { # NAME → pid
    RUST_LOG=tongban=warn "$TONGBAN" serve --config "$WORK/$1.toml" >"$WORK/$1.out" 2>"$WORK/$1.log" &
    echo $!
}
wait_ready() { # NAME PORT PID
    local t0; t0=$(date +%s)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$2/ready") == 200 ]]; do
        kill -0 "$3" 2>/dev/null || { cat "$WORK/$1.log" >&2; die "$1 exited"; }
        (( $(date +%s) - t0 < 600 )) || die "$1 not ready after 600 s"
        sleep 0.2
    done
}
log "starting replicas A (:$A_PORT) and B (:$B_PORT)"
t0=$(now_ms)
A_PID=$(start_replica hub-a); PIDS+=("$A_PID")
B_PID=$(start_replica hub-b); PIDS+=("$B_PID")
wait_ready hub-a "$A_PORT" "$A_PID"; A_READY=$(( $(now_ms) - t0 ))
wait_ready hub-b "$B_PORT" "$B_PID"; B_READY=$(( $(now_ms) - t0 ))
echo "ready after $A_READY ms (A) and $B_READY ms (B), both started at once" >&2

# ---------------------------------------------------------------- publish -> serve
versions() { # resource, version, created at (epoch ms), rows, bytes of each newest version
    psql "$PG_URL" -AtF $'\t' -c "SELECT resource_code, version,
        (extract(epoch FROM created_at::timestamptz) * 1000)::bigint, row_count, byte_size
        FROM dataset_versions d WHERE version = (SELECT max(version) FROM dataset_versions
        WHERE resource_code = d.resource_code) ORDER BY resource_code"
}
: >"$WORK/publish.tsv"
for round in $(seq 1 "$ROUNDS"); do
    seed=$((round + 1))
    log "publish round $round: tongban datagen --seed $seed (a new version of every library)"
    # The versions this round publishes are the next numbers; the poller
    # watches for them from before the first one is written.
    expected=$(versions | awk -F'\t' '{printf "%s=%d ", $1, $2 + 1}')
    # shellcheck disable=SC2086
    python3 "$HERE/served.py" 300 "A=http://$HOST:$A_METRICS/metrics" \
        "B=http://$HOST:$B_METRICS/metrics" -- $expected >"$WORK/served-$round.txt" &
    poller=$!
    "$TONGBAN" datagen --config "$WORK/hub-a.toml" --scale "$SCALE" --seed "$seed" >"$WORK/datagen-$round.out"
    wait "$poller"
    versions >"$WORK/versions.tsv"
    while IFS=$'\t' read -r res ver created rows bytes; do
        a=$(awk -v r="$res" '$1=="A" && $2==r {print $4}' "$WORK/served-$round.txt")
        b=$(awk -v r="$res" '$1=="B" && $2==r {print $4}' "$WORK/served-$round.txt")
        [[ $a != never && $b != never ]] || die "round $round: $res v$ver not served (A $a, B $b)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$res" "$ver" "$rows" "$bytes" \
            "$(( a - created ))" "$(( b - created ))" >>"$WORK/publish.tsv"
    done <"$WORK/versions.tsv"
done

# ---------------------------------------------------------------- catalog load, idle
xacts() { psql "$PG_ADMIN" -Atqc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }
log "catalog load: $IDLE s with both replicas idle"
x0=$(xacts); sleep "$IDLE"; x1=$(xacts)
IDLE_TPS=$(awk -v a="$x0" -v b="$x1" -v d="$IDLE" 'BEGIN{printf "%.1f", (b-a)/d}')
echo "idle: $IDLE_TPS transactions/s on the catalog for two replicas" >&2

# ---------------------------------------------------------------- nginx
NGINX_PORT=$(free_port)
nginx_conf() { # UPSTREAM-SERVERS...
    {
        echo "daemon off; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.err warn;"
        echo "events { worker_connections 4096; }"
        echo "http { access_log off;"
        echo "  upstream tongban { least_conn;"
        for s in "$@"; do echo "    server $s;"; done
        echo "    keepalive 128; }"
        echo "  server { listen $HOST:$NGINX_PORT;"
        echo "    location / { proxy_pass http://tongban; proxy_http_version 1.1;"
        echo "      proxy_set_header Connection \"\"; proxy_set_header Host \$host; } } }"
    } >"$WORK/nginx.conf"
}

# run_wrk LABEL URL PIDS...: wrk for $DURATION s after a 3 s warm-up; prints
# one summary line and keeps wrk's output in $WORK/wrk-LABEL.out
: >"$WORK/lookups.tsv"
run_wrk() {
    local label=$1 url=$2; shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$ROOT/benches/lookup/lookup.lua" "$url" -- \
        "$WORK/keys.txt" "$TOKEN" >/dev/null
    local cpu0=() cpu1=() p x0 x1
    for p in "$@"; do cpu0+=("$(cpu_s "$p")"); done
    x0=$(xacts)
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency \
        -s "$ROOT/benches/lookup/lookup.lua" "$url" -- "$WORK/keys.txt" "$TOKEN" >"$WORK/wrk-$label.out"
    x1=$(xacts)
    for p in "$@"; do cpu1+=("$(cpu_s "$p")"); done
    local reqs rps non200 p50 p99 cpus="" i
    reqs=$(awk '$1=="requests"{print $2}' "$WORK/wrk-$label.out")
    rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$WORK/wrk-$label.out")
    non200=$(awk '$1=="non200"{print $2}' "$WORK/wrk-$label.out")
    p50=$(awk '$1=="latency_us" && $2=="p50" {printf "%.2f", $3/1000}' "$WORK/wrk-$label.out")
    p99=$(awk '$1=="latency_us" && $2=="p99" {printf "%.2f", $3/1000}' "$WORK/wrk-$label.out")
    for i in "${!cpu0[@]}"; do
        cpus+=$(awk -v a="${cpu0[$i]}" -v b="${cpu1[$i]}" -v n="$reqs" 'BEGIN{printf "%.1f ", (b-a)*1e6/n}')
    done
    local tps; tps=$(awk -v a="$x0" -v b="$x1" -v d="$DURATION" 'BEGIN{printf "%.1f", (b-a)/d}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "${non200:-0}" "$cpus" "$tps" \
        | tee -a "$WORK/lookups.tsv" >&2
}

log "lookups: wrk -t$THREADS -c$CONNECTIONS ${DURATION} s each (label rps p50_ms p99_ms non200 cpu_us/req... catalog_tps)"
run_wrk direct-a "http://$HOST:$A_PORT" "$A_PID"
nginx_conf "$HOST:$A_PORT"
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
sleep 1
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1)
run_wrk nginx-a "http://$HOST:$NGINX_PORT" "$A_PID" "$NGINX_WORKER"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
nginx_conf "$HOST:$A_PORT" "$HOST:$B_PORT"
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
sleep 1
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1)
run_wrk nginx-ab "http://$HOST:$NGINX_PORT" "$A_PID" "$B_PID" "$NGINX_WORKER"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true

# ---------------------------------------------------------------- memory, object store
rss_mib() { awk '$1=="VmRSS:"{printf "%.0f", $2/1024}' "/proc/$1/status"; }
# The index's own account of its memory, per resource (A's /metrics).
curl -s "http://$HOST:$A_METRICS/metrics" >"$WORK/metrics-a.txt"
awk -F'[{}" ]+' '
    /^tongban_index_rows\{/ { rows[$3] = $NF }
    /^tongban_index_bytes\{/ { bytes[$3] = $NF }
    END { for (r in rows) printf "%s\t%d\t%d\t%.0f\n", r, rows[r], bytes[r], (rows[r] > 0 ? bytes[r] / rows[r] : 0) }
' "$WORK/metrics-a.txt" | sort >"$WORK/index.tsv"
A_RSS=$(rss_mib "$A_PID"); B_RSS=$(rss_mib "$B_PID")
sleep 3 # one more shipping interval would be 60 s; the shipper seals on stop
kill "$A_PID" "$B_PID"; wait "$A_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true
VERSIONS_BYTES=$(du -sb "$WORK/s3/tongban/city/datasets" | awk '{print $1}')
AUDIT_BYTES=$(du -sb "$WORK/s3/tongban/city/audit" 2>/dev/null | awk '{print $1}')
AUDIT_RECORDS=$(cat "$WORK"/s3/tongban/city/audit/*/*.jsonl 2>/dev/null | wc -l)

# ---------------------------------------------------------------- summary
{
echo
echo "== scaling run: $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2; exit}')), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "scale $SCALE: population $POP_ROWS rows; replicas ready after $A_READY / $B_READY ms (started together)"
echo
echo "publish -> serve (ms from the catalog record to the replica's index; round resource version rows bytes A B)"
column -t "$WORK/publish.tsv"
echo
echo "lookups (label rps p50_ms p99_ms non200 cpu_us_per_req[per process] catalog_tps)"
column -t -s $'\t' "$WORK/lookups.tsv"
echo
echo "index memory on A (resource rows bytes bytes_per_row, the index's own account)"
column -t "$WORK/index.tsv"
echo
echo "catalog: $IDLE_TPS transactions/s idle (two replicas)"
echo "resident memory after the runs: A $A_RSS MiB, B $B_RSS MiB"
echo "object store: versions $VERSIONS_BYTES bytes in all; audit segments shipped $AUDIT_BYTES bytes ($AUDIT_RECORDS records)"
} | tee "$WORK/summary.txt"
