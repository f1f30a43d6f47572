#!/usr/bin/env bash
# Interface-call benchmark of Tongban (issue 14), one run on one machine:
# the same backend (the demo's 人社局 social-insurance system, a separate
# `tongban demo-providers` process) called
#
#   direct   GET  http://127.0.0.1:$BACKEND_PORT/api/v1/insurance/contributions/{id}
#   nginx    the same GET through Debian's nginx as a plain reverse proxy
#            (upstream keepalive 64, HTTP/1.1 to the upstream, access_log off)
#   hub      POST /v1/call/302/000101/contribution-status through `tongban serve`
#            with policy and audit on (token check, need/matter decision,
#            request hash, the backend call, JSON parse, projection and masks,
#            durable audit record)
#
# at the same wrk concurrency, the three targets alternating in $ROUNDS rounds;
# per target the median of the rounds' requests/s, p50 and p99; the hub/nginx
# throughput ratio, the p50/p99 each proxy adds to the direct call, and CPU
# seconds per request of the hub, nginx and the backend (/proc/PID/stat).
#
#   1. builds the release `tongban` binary (or takes $TONGBAN_BIN);
#   2. `tongban demo` once on a fresh data dir (demo data, tokens, the
#      acceptance office's approved `call` need), stopped once its banner prints;
#   3. $NKEYS real citizen IDs from the population Parquet file (pyarrow);
#   4. re-registers 302/000101 to the separate backend, benchmark-fair: no
#      answer cache (the hub calls the backend every time), limits 1,000,000/s
#      and 1000 in flight, no retries (`tongban service add`);
#   5. starts the backend (`tongban demo-providers`), nginx and `tongban serve`;
#      one curl per target must answer 200 before anything is timed;
#   6. warm-up, then the rounds; prints a summary with PASS / FALL SHORT.
#
# Usage: benches/services/run.sh   (from anywhere; settings by environment,
#        e.g. ROUNDS=5 DURATION=20 NGINX_WORKERS=1 benches/services/run.sh)
#
# Everything listens on 127.0.0.1 only; every step is bounded in time; the
# processes and the work directory are removed at the end (KEEP=1 keeps it).
set -euo pipefail

SCALE=${SCALE:-0.01}              # demo scale: 0.01 = 10,000 citizens
THREADS=${THREADS:-2}             # wrk threads, the same for all targets
CONNECTIONS=${CONNECTIONS:-32}    # wrk connections, the same for all targets
DURATION=${DURATION:-10}          # seconds of each timed wrk run
WARMUP=${WARMUP:-3}               # seconds of each target's warm-up
ROUNDS=${ROUNDS:-3}               # rounds of direct, nginx, hub
NKEYS=${NKEYS:-500}               # citizen IDs the requests rotate through
NGINX_WORKERS=${NGINX_WORKERS:-auto} # nginx worker_processes (auto = one per core)
DEMO_PORT=${DEMO_PORT:-18280}     # the set-up `tongban demo` (and +1, Flight; 7301-7303, its providers)
HUB_PORT=${HUB_PORT:-18290}       # `tongban serve`
NGINX_PORT=${NGINX_PORT:-18291}
BACKEND_PORTS=${BACKEND_PORTS:-7401,7402,7403} # `tongban demo-providers`; the first is social insurance
VENV=${VENV:-/var/tmp/bench-venv} # Python venv with pyarrow (made if missing)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
IDLE_WAIT=${IDLE_WAIT:-600}       # seconds to wait, before each timed run, for the machine to be idle
IDLE_MAX=${IDLE_MAX:-0.15}        # idle: under this many cores busy over 3 s
KEEP=${KEEP:-0}
WORK_PARENT=${WORK_PARENT:-/var/tmp} # the hub's data dir (and its audit log) goes here
# TB_COMMIT: the commit to print, when the tree is not a git checkout
# TONGBAN_BIN: benchmark this tongban binary instead of building the tree's

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=127.0.0.1
BACKEND_PORT=${BACKEND_PORTS%%,*}
RES=302/000101
ENDPOINT=contribution-status
MATTER=310000-JZZJF-001
TARGETS=(direct nginx hub)

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
cpu_sum() { local t=0 p; for p in "$@"; do t=$(awk -v a="$t" -v b="$(cpu_s "$p")" 'BEGIN{print a+b}'); done; echo "$t"; }
log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
wait_http() { # URL PID WHAT SECONDS: until URL answers 2xx, while PID lives
    local t0; t0=$(date +%s)
    until curl -fs -o /dev/null "$1"; do
        kill -0 "$2" 2>/dev/null || die "$3 exited (see $WORK)"
        (( $(date +%s) - t0 < $4 )) || die "$3: no answer from $1 after $4 s"
        sleep 0.3
    done
}
# busy CPU seconds of the whole machine (user, nice, system, irq, softirq)
machine_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{ printf "%.2f\n", ($2+$3+$4+$7+$8)/hz }' /proc/stat; }
# wait_idle: until the whole machine is idle (under $IDLE_MAX cores busy over
# 3 s), at most $IDLE_WAIT s: another build or test run would share the cores
NOT_IDLE=0
wait_idle() {
    local t0 b0 b1 busy
    t0=$(date +%s)
    while :; do
        b0=$(machine_cpu); sleep 3; b1=$(machine_cpu)
        busy=$(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", (b-a)/3}')
        awk -v x="$busy" -v m="$IDLE_MAX" 'BEGIN{exit !(x < m)}' && return
        if (( $(date +%s) - t0 >= IDLE_WAIT )); then
            echo "WARNING: machine still busy ($busy cores) after $IDLE_WAIT s; measuring anyway" >&2
            NOT_IDLE=1; return
        fi
        echo "machine busy ($busy cores); waiting" >&2
        sleep 7
    done
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2 }'; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || need_apt+=(nginx)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    [[ $(id -u) == 0 ]] || die "missing ${need_apt[*]}; install them (apt-get install -y ${need_apt[*]})"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! "$VENV/bin/python" -c 'import pyarrow' 2>/dev/null; then
    log "making $VENV with pyarrow"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pyarrow
fi

# ---------------------------------------------------------------- build
if [[ -n ${TONGBAN_BIN:-} ]]; then
    [[ -x $TONGBAN_BIN ]] || die "TONGBAN_BIN=$TONGBAN_BIN is not an executable"
    TONGBAN=$TONGBAN_BIN
else
    log "building (release) in $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release -q -p tongban-hub)
    TONGBAN=$CARGO_TARGET_DIR/release/tongban
fi

# ---------------------------------------------------------------- work dir, cleanup
for p in "$DEMO_PORT" $((DEMO_PORT + 1)) 7301 7302 7303 "$HUB_PORT" "$NGINX_PORT" ${BACKEND_PORTS//,/ }; do
    port_free "$p" || die "something already listens on $HOST:$p"
done
WORK=$(mktemp -d "$WORK_PARENT/tongban-services-bench.XXXXXX")
DATA=$WORK/data
# nginx's prefix: its own directory, readable by its workers (which run as
# nobody when the script runs as root); the data dir with the tokens stays 0700
NGX=$(mktemp -d "$WORK_PARENT/tongban-services-nginx.XXXXXX")
chmod 755 "$NGX"
PIDS=()
cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [[ $KEEP == 1 ]]; then echo "kept $WORK and $NGX" >&2; else rm -rf "$WORK" "$NGX"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- demo data
log "tongban demo (scale $SCALE) once, for the data dir $DATA"
"$TONGBAN" demo --data-dir "$DATA" --listen "$HOST:$DEMO_PORT" --scale "$SCALE" \
    >"$WORK/demo.out" 2>"$WORK/demo.log" &
DEMO_PID=$!; PIDS+=("$DEMO_PID")
t0=$(date +%s)
until grep -q 'Press Ctrl-C to stop' "$WORK/demo.out"; do
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$WORK/demo.log" >&2; die "tongban demo exited"; }
    (( $(date +%s) - t0 < 900 )) || die "no demo banner after 900 s"
    sleep 0.5
done
echo "demo banner after $(( $(date +%s) - t0 )) s; stopping it" >&2
stop "$DEMO_PID"

TOKEN=$("$VENV/bin/python" -c '
import json, sys
print(next(t["token"] for t in json.load(open(sys.argv[1]))["tokens"] if t["label"] == "acceptance"))
' "$DATA/demo-credentials.json")
PARQUET=$(ls "$DATA"/datasets/101-000001/v*/part-*.parquet | head -n 1)
"$VENV/bin/python" - "$PARQUET" "$NKEYS" >"$WORK/keys.txt" <<'EOF'
import random, sys
import pyarrow.parquet as pq
ids = pq.read_table(sys.argv[1], columns=["citizen_id"]).column("citizen_id").to_pylist()
ids = [i for i in ids if i]
for i in random.Random(7).sample(ids, min(int(sys.argv[2]), len(ids))):
    print(i)
EOF
KEYS=$(wc -l <"$WORK/keys.txt")
FIRST_KEY=$(head -n 1 "$WORK/keys.txt")
echo "$KEYS citizen IDs from $PARQUET" >&2

# ---------------------------------------------------------------- registration
log "re-registering $RES to the separate backend on $HOST:$BACKEND_PORT (no cache, no retries)"
"$TONGBAN" service list --data-dir "$DATA" --json >"$WORK/services.json"
"$TONGBAN" catalog show --data-dir "$DATA" "$RES" --json >"$WORK/resource.json"
"$VENV/bin/python" - "$WORK/services.json" "$WORK/resource.json" "$RES" "http://$HOST:$BACKEND_PORT" \
    >"$WORK/registration.json" <<'EOF'
import json, sys
services, resource, code, base = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
service = next(s["service"] for s in services if s["resource"] == code)
for k in ("version", "created_at", "updated_at", "latest_version"):  # the record's, not the spec's
    resource.pop(k, None)
service["base_url"] = base
for e in service["endpoints"]:
    e.pop("cache_ttl_ms", None)               # the hub calls the backend every time
service["limits"].update(rate_per_sec=1000000, max_concurrent=1000)
service["retry"]["max_attempts"] = 1          # nginx does not retry either (one upstream)
json.dump({"resource": resource, "service": service}, sys.stdout, ensure_ascii=False, indent=1)
EOF
"$TONGBAN" service add --data-dir "$DATA" "$WORK/registration.json" >&2
"$TONGBAN" service list --data-dir "$DATA" | grep -A 1 "^$RES" >&2

# ---------------------------------------------------------------- backend
log "backend: tongban demo-providers on $BACKEND_PORTS"
"$TONGBAN" demo-providers --data-dir "$DATA" --ports "$BACKEND_PORTS" \
    >"$WORK/backend.out" 2>"$WORK/backend.log" &
BACKEND_PID=$!; PIDS+=("$BACKEND_PID")
wait_http "http://$HOST:$BACKEND_PORT/health" "$BACKEND_PID" "the backend" 300

# ---------------------------------------------------------------- nginx
log "nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //'), worker_processes $NGINX_WORKERS) on $HOST:$NGINX_PORT"
mkdir -p "$NGX/logs" "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    keepalive_requests 1000000;
    upstream backend {
        server $HOST:$BACKEND_PORT;
        keepalive 64;
    }
    server {
        listen $HOST:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX" -t -p "$NGX" -c nginx.conf 2>&1 | grep -v '^$' >&2
"$NGINX" -p "$NGX" -c nginx.conf -g 'daemon off;' 2>"$NGX/stderr" &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
t0=$(date +%s)
until ! port_free "$NGINX_PORT"; do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$NGX/stderr" >&2; die "nginx exited"; }
    (( $(date +%s) - t0 < 30 )) || die "nginx not listening after 30 s"
    sleep 0.2
done
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); }

# ---------------------------------------------------------------- hub
log "hub: tongban serve on $HOST:$HUB_PORT"
cat >"$WORK/tongban.toml" <<EOF
listen = "$HOST:$HUB_PORT"
data_dir = "$DATA"
EOF
"$TONGBAN" config check "$WORK/tongban.toml" >&2
"$TONGBAN" serve --config "$WORK/tongban.toml" >"$WORK/hub.out" 2>"$WORK/hub.log" &
HUB_PID=$!; PIDS+=("$HUB_PID")
wait_http "http://$HOST:$HUB_PORT/health" "$HUB_PID" "the hub" 300

# ---------------------------------------------------------------- one call per target
declare -A URL
URL[direct]="http://$HOST:$BACKEND_PORT"
URL[nginx]="http://$HOST:$NGINX_PORT"
URL[hub]="http://$HOST:$HUB_PORT"
once() { # TARGET: one request, the answer in $WORK/one-TARGET.json; prints the status
    if [[ $1 == hub ]]; then
        curl -s --max-time 10 -o "$WORK/one-$1.json" -w '%{http_code}' -X POST \
            "${URL[hub]}/v1/call/$RES/$ENDPOINT" \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d "{\"matter\":\"$MATTER\",\"case\":\"BENCH-1\",\"params\":{\"citizen_id\":\"$FIRST_KEY\"}}"
    else
        curl -s --max-time 10 -o "$WORK/one-$1.json" -w '%{http_code}' \
            "${URL[$1]}/api/v1/insurance/contributions/$FIRST_KEY"
    fi
}
log "one request per target (must be 200)"
for t in "${TARGETS[@]}"; do
    code=$(once "$t") || code="curl failed"
    echo "$t: $code, $(wc -c <"$WORK/one-$t.json") bytes: $(head -c 600 "$WORK/one-$t.json")" >&2
    [[ $code == 200 ]] || die "$t answered $code, not 200"
done
grep -q "\"$FIRST_KEY\"" "$WORK/one-direct.json" || die "the backend's answer is not about $FIRST_KEY"
cmp -s "$WORK/one-direct.json" "$WORK/one-nginx.json" || die "nginx's answer differs from the backend's"

# ---------------------------------------------------------------- wrk
wrk_run() { # TARGET SECONDS OUT
    local args=(get "$WORK/keys.txt")
    [[ $1 == hub ]] && args=(call "$WORK/keys.txt" "$TOKEN")
    local TIMEFORMAT='%U %S' # bash's `time`: user and system CPU seconds of wrk
    { time timeout $(( $2 + 60 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2s" --timeout 5s --latency \
        -s "$HERE/calls.lua" "${URL[$1]}" -- "${args[@]}" >"$3" 2>&1 \
        || { cat "$3" >&2; die "wrk against $1 failed"; }; } 2>"$3.cpu"
}
log "warm-up: ${WARMUP} s per target"
for t in "${TARGETS[@]}"; do wrk_run "$t" "$WARMUP" "$WORK/warmup-$t.out"; done

audit_bytes() { du -sb "$DATA" | awk '{print $1}'; }
declare -A RPS P50 P99 P999 NON200 SOCKERR HUBCPU NGXCPU BECPU REQS OTHER
BUSY=()
AUDIT0=$(audit_bytes); HUB_CALLS=0
for r in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        wait_idle
        log "round $r/$ROUNDS: $t (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)"
        BUSY+=("$(( $(pgrep -c -x rustc || true) + $(pgrep -c -x clippy-driver || true) ))")
        out=$WORK/wrk-$r-$t.out
        m0=$(machine_cpu); w0=$(date +%s.%N)
        h0=$(cpu_s "$HUB_PID"); n0=$(cpu_sum $(nginx_pids)); b0=$(cpu_s "$BACKEND_PID")
        wrk_run "$t" "$DURATION" "$out"
        h1=$(cpu_s "$HUB_PID"); n1=$(cpu_sum $(nginx_pids)); b1=$(cpu_s "$BACKEND_PID")
        m1=$(machine_cpu); w1=$(date +%s.%N)
        # cores busy with anything but the backend, nginx, the hub and wrk
        OTHER[$t,$r]=$(awk -v m="$(awk -v a="$m0" -v b="$m1" 'BEGIN{print b-a}')" \
            -v ours="$(awk -v h0="$h0" -v h1="$h1" -v n0="$n0" -v n1="$n1" -v b0="$b0" -v b1="$b1" \
                'BEGIN{print (h1-h0)+(n1-n0)+(b1-b0)}')" -v w="$(awk '{print $1+$2}' "$out.cpu")" \
            -v d="$(awk -v a="$w0" -v b="$w1" 'BEGIN{print b-a}')" 'BEGIN{printf "%.2f", (m-ours-w)/d}')
        reqs=$(awk '$1=="requests"{print $2}' "$out")
        k="$t,$r"
        REQS[$k]=$reqs
        RPS[$k]=$(awk '/^Requests\/sec:/{print $2}' "$out")
        P50[$k]=$(awk '$1=="latency_us" && $2=="p50"{printf "%.3f", $3/1000}' "$out")
        P99[$k]=$(awk '$1=="latency_us" && $2=="p99"{printf "%.3f", $3/1000}' "$out")
        P999[$k]=$(awk '$1=="latency_us" && $2=="p99.9"{printf "%.3f", $3/1000}' "$out")
        NON200[$k]=$(awk '$1=="non200"{print $2}' "$out")
        SOCKERR[$k]=$(awk '$1=="socket_errors"{print $2, $3, $4, $5}' "$out")
        HUBCPU[$k]=$(awk -v a="$h0" -v b="$h1" -v n="$reqs" 'BEGIN{printf "%.1f", (b-a)*1e6/n}')
        NGXCPU[$k]=$(awk -v a="$n0" -v b="$n1" -v n="$reqs" 'BEGIN{printf "%.1f", (b-a)*1e6/n}')
        BECPU[$k]=$(awk -v a="$b0" -v b="$b1" -v n="$reqs" 'BEGIN{printf "%.1f", (b-a)*1e6/n}')
        [[ $t == hub ]] && HUB_CALLS=$(( HUB_CALLS + reqs ))
        printf '%s: %s req/s  p50 %s ms  p99 %s ms  p99.9 %s ms  non-200 %s  (%s)\n' \
            "$t" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${P999[$k]}" "${NON200[$k]}" "${SOCKERR[$k]}" >&2
        printf '   CPU us/request: hub %s  nginx %s  backend %s; wrk %s s; other processes %s cores\n' \
            "${HUBCPU[$k]}" "${NGXCPU[$k]}" "${BECPU[$k]}" "$(cat "$out.cpu")" "${OTHER[$k]}" >&2
    done
done
AUDIT1=$(audit_bytes)
# the hub must still answer after the load
code=$(once hub) || code="curl failed"
[[ $code == 200 ]] || { cat "$WORK/one-hub.json" >&2; die "after the rounds the hub answered $code"; }
kill -0 "$HUB_PID" 2>/dev/null || die "the hub died"

# ---------------------------------------------------------------- summary
col() { # ARRAY TARGET: the rounds' values
    local -n a=$1; local r v=()
    for r in $(seq 1 "$ROUNDS"); do v+=("${a[$2,$r]}"); done
    echo "${v[@]}"
}
declare -A M_RPS M_P50 M_P99 M_P999 M_HUBCPU M_NGXCPU M_BECPU
BAD=0
for t in "${TARGETS[@]}"; do
    M_RPS[$t]=$(median $(col RPS "$t"))
    M_P50[$t]=$(median $(col P50 "$t"))
    M_P99[$t]=$(median $(col P99 "$t"))
    M_P999[$t]=$(median $(col P999 "$t"))
    M_HUBCPU[$t]=$(median $(col HUBCPU "$t"))
    M_NGXCPU[$t]=$(median $(col NGXCPU "$t"))
    M_BECPU[$t]=$(median $(col BECPU "$t"))
    for r in $(seq 1 "$ROUNDS"); do
        [[ ${NON200[$t,$r]} == 0 ]] || BAD=1
        [[ ${SOCKERR[$t,$r]} == "connect=0 read=0 write=0 timeout=0" ]] || BAD=1
    done
done
if [[ -n ${TB_COMMIT:-} ]]; then COMMIT=$TB_COMMIT
elif COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
else COMMIT="unknown (not a git checkout; set TB_COMMIT)"; fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%+.3f", a-b }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{ ok = (op==">=") ? (v>=t) : (v<=t); print ok ? "PASS" : "FALL SHORT" }'; }
R_TPUT=$(ratio "${M_RPS[hub]}" "${M_RPS[nginx]}")
R_NGX=$(ratio "${M_RPS[nginx]}" "${M_RPS[direct]}")
R_HUB=$(ratio "${M_RPS[hub]}" "${M_RPS[direct]}")
A50_NGX=$(minus "${M_P50[nginx]}" "${M_P50[direct]}"); A99_NGX=$(minus "${M_P99[nginx]}" "${M_P99[direct]}")
A50_HUB=$(minus "${M_P50[hub]}" "${M_P50[direct]}"); A99_HUB=$(minus "${M_P99[hub]}" "${M_P99[direct]}")
AUDIT_PER_CALL=$(awk -v a="$AUDIT0" -v b="$AUDIT1" -v n="$HUB_CALLS" 'BEGIN{ if (n>0) printf "%.0f", (b-a)/n; else print "n/a" }')

{
cat <<EOF

================ Tongban interface-call benchmark ================
machine     $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr)
date        $(date -u +%Y-%m-%dT%H:%MZ)
commit      $COMMIT
backend     tongban demo-providers (人社局 contribution status), $KEYS rotating citizen IDs of $SCALE-scale demo data
nginx       $("$NGINX" -v 2>&1 | sed 's/.*: //'), worker_processes $NGINX_WORKERS ($(( $(echo $(nginx_pids) | wc -w) - 1 )) workers), upstream keepalive 64
hub         tongban serve, $RES/$ENDPOINT, policy + audit on, no cache, no retries
load        wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, $ROUNDS rounds of direct, nginx, hub (${WARMUP} s warm-up each)
note        backend, nginx, hub and wrk share the same $(nproc) cores; rustc or clippy-driver processes at each run's start: ${BUSY[*]}
            cores busy with other processes (and the kernel's own work) during each run: $(for t in "${TARGETS[@]}"; do echo -n "$t $(col OTHER "$t"); "; done)
            $( ((NOT_IDLE)) && echo "WARNING: some runs started on a busy machine (see the log)" || echo "each run started on an idle machine (< $IDLE_MAX cores busy over 3 s)")

per round   req/s / p50 ms / p99 ms
EOF
for t in "${TARGETS[@]}"; do
    printf '  %-7s' "$t"
    for r in $(seq 1 "$ROUNDS"); do printf '  %9s / %6s / %6s' "${RPS[$t,$r]}" "${P50[$t,$r]}" "${P99[$t,$r]}"; done
    echo
done
cat <<EOF

median of $ROUNDS rounds
  target     req/s      p50 ms   p99 ms   p99.9 ms   CPU us/req: hub  nginx  backend
EOF
for t in "${TARGETS[@]}"; do
    printf '  %-7s %10s %8s %8s %9s              %6s %6s %8s\n' "$t" "${M_RPS[$t]}" "${M_P50[$t]}" \
        "${M_P99[$t]}" "${M_P999[$t]}" "${M_HUBCPU[$t]}" "${M_NGXCPU[$t]}" "${M_BECPU[$t]}"
done
cat <<EOF

  throughput vs direct   nginx ${R_NGX}x   hub ${R_HUB}x
  added latency          nginx p50 $A50_NGX ms, p99 $A99_NGX ms;  hub p50 $A50_HUB ms, p99 $A99_HUB ms
  audit                  $AUDIT_PER_CALL bytes of data dir per hub call ($HUB_CALLS timed calls)
  errors                 $( ((BAD)) && echo "SOME non-200 answers or socket errors, see the rounds above" || echo "none (every answer 200, no socket errors)")

target                                   measured                 verdict
hub / nginx throughput     >= 1.0x       $(printf '%-24s' "${R_TPUT}x") $(verdict "$R_TPUT" ">=" 1.0)
hub added p99 (vs direct)  <= 1 ms       $(printf '%-24s' "$A99_HUB ms") $(verdict "$A99_HUB" "<=" 1)
EOF
} | tee "$WORK/summary.txt"
((BAD == 0)) || die "non-200 answers or socket errors during the rounds"
