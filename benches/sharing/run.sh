#!/usr/bin/env bash
# Delta Sharing benchmark of Tongban (issue 17), one run on one machine:
#
#   "The official `delta-sharing` client's `load_as_pandas` of a 1M-row
#    subscription within 1.5x the time of a local pyarrow read of the same
#    Parquet files."
#
#   1. uses the release `tongban` binary (builds it only when TONGBAN_BIN is
#      unset and $CARGO_TARGET_DIR/release/tongban is missing);
#   2. starts `tongban demo` on a fresh data dir on 127.0.0.1:$PORT and waits
#      for /health;
#   3. read.py setup: the acceptance office (a city department, so no return
#      flow) gets a `subscribe` need for every bulk-shareable item of the
#      population resource 101/000001 approved (provider, then data office),
#      subscribes (pull) and gets its Delta Sharing profile;
#   4. read.py files: queries the table once (the hub writes the shared
#      Parquet files then), downloads every file the answer points at and
#      finds each one byte for byte under the subscription's `sharing/`
#      folder in the hub's dataset store: those local files are what the
#      local read reads;
#   5. read.py rounds: $ROUNDS rounds, each (a) `delta_sharing.load_as_pandas`
#      then (b) `pyarrow.parquet.read_table(files).to_pandas()`, row counts
#      asserted, best of each counts; then diagnostics of where the client's
#      time goes (query, plain download, the client's conversion locally);
#   6. prints a summary with the ratio and PASS / FALL SHORT.
#
# Usage: benches/sharing/run.sh            (from anywhere; settings below by
#        environment, e.g. SCALE=0.05 ROUNDS=1 benches/sharing/run.sh)
#
# Everything targets 127.0.0.1 only; every step is bounded in time; the hub
# and the work directory are removed at the end (KEEP=1 keeps the directory).
set -euo pipefail

SCALE=${SCALE:-1}                 # demo scale: 1 = 1,000,000 citizens
PORT=${PORT:-18190}               # the hub's API; its Flight endpoint takes PORT+1
ROUNDS=${ROUNDS:-3}               # rounds of (a) load_as_pandas, (b) the local read; best counts
TARGET=${TARGET:-1.5}             # load_as_pandas / local read must stay within this
VENV=${VENV:-/var/tmp/bench-venv} # Python venv with pyarrow, pandas, delta-sharing (made if missing)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
KEEP=${KEEP:-0}
WORK_PARENT=${WORK_PARENT:-/var/tmp} # the hub's data dir goes here
TIMEOUT=${TIMEOUT:-1800}          # seconds for the measured rounds and diagnostics
export PROFILE=${PROFILE:-0}      # 1: a cProfile of one more load_as_pandas after the rounds (log only)
# TB_COMMIT: the commit to print, when the tree is not a git checkout
# TONGBAN_BIN: benchmark this tongban binary instead of the tree's release build

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
NAME=bench-population             # the subscription: the table's name
log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
val() { awk -v k="$1" '$1==k{ $1=""; sub(/^ /, ""); print; exit }' "$2"; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    [[ $(id -u) == 0 ]] || die "missing ${need_apt[*]}; install them (apt-get install -y ${need_apt[*]})"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! "$VENV/bin/python" -c 'import delta_sharing, pandas, pyarrow' 2>/dev/null; then
    # the versions the end-to-end client tests use
    mapfile -t pins < <(grep -E '^(delta-sharing|pyarrow|pandas)==' "$ROOT/tests/python/requirements.txt")
    ((${#pins[@]} == 3)) || die "tests/python/requirements.txt does not pin delta-sharing, pyarrow and pandas"
    log "making $VENV with ${pins[*]}"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    timeout 900 "$VENV/bin/pip" install -q "${pins[@]}"
fi
PY="$VENV/bin/python"

# ---------------------------------------------------------------- binary
if [[ -n ${TONGBAN_BIN:-} ]]; then
    [[ -x $TONGBAN_BIN ]] || die "TONGBAN_BIN=$TONGBAN_BIN is not an executable"
    TONGBAN=$TONGBAN_BIN
else
    TONGBAN=$CARGO_TARGET_DIR/release/tongban
    if [[ ! -x $TONGBAN ]]; then
        log "building (release) in $CARGO_TARGET_DIR"
        (cd "$ROOT" && cargo build --release -q -p tongban-hub)
    fi
fi

# ---------------------------------------------------------------- work dir, cleanup
WORK=$(mktemp -d "$WORK_PARENT/tongban-sharing-bench.XXXXXX")
HUB_PID=
cleanup() {
    set +e
    if [[ -n $HUB_PID ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null
    fi
    if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$PORT" $((PORT + 1)); do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        die "something already listens on $HOST:$p"
    fi
done

# ---------------------------------------------------------------- hub
log "starting tongban demo (scale $SCALE) on $HOST:$PORT, data in $WORK/data"
"$TONGBAN" demo --data-dir "$WORK/data" --listen "$HOST:$PORT" --scale "$SCALE" \
    >"$WORK/hub.out" 2>"$WORK/hub.log" &
HUB_PID=$!
t0=$(date +%s)
until curl -fs -o /dev/null "$BASE/health"; do
    kill -0 "$HUB_PID" 2>/dev/null || { cat "$WORK/hub.log" >&2; die "the hub exited"; }
    (( $(date +%s) - t0 < 900 )) || die "no /health after 900 s"
    sleep 0.5
done
echo "hub up after $(( $(date +%s) - t0 )) s" >&2

# ---------------------------------------------------------------- subscription, profile
log "a pull subscription of 101/000001 for the acceptance office (sh-zwfw), and its profile"
timeout 300 "$PY" "$HERE/read.py" setup "$BASE" "$WORK/data/demo-credentials.json" \
    "$WORK/bench.share" "$NAME" | tee "$WORK/setup.out" >&2
SUB_ID=$(val subscription "$WORK/setup.out")
TABLE=$(val table "$WORK/setup.out")
[[ -n $SUB_ID && -n $TABLE ]] || die "no subscription or table from read.py setup"

# The shared files of a subscription live in the dataset store (whose root
# is the data dir) under sharing/sub-<id>/<plan>/v<version>-snapshot/.
log "first query of $TABLE (the hub writes the shared files), and the files it serves"
timeout 900 "$PY" "$HERE/read.py" files "$WORK/bench.share" "$TABLE" "$WORK/data" "$SUB_ID" \
    "$WORK/files.txt" | tee "$WORK/files.out" >&2
ROWS=$(val rows "$WORK/files.out")
DATASET_ROWS=$(val dataset_rows "$WORK/files.out")
[[ $ROWS == "$DATASET_ROWS" ]] || die "the table has $ROWS rows, the dataset version $DATASET_ROWS"

# ---------------------------------------------------------------- rounds
log "$ROUNDS rounds: (a) load_as_pandas, (b) local read_table -> to_pandas; then diagnostics"
sleep 2
timeout "$TIMEOUT" "$PY" "$HERE/read.py" rounds "$WORK/bench.share" "$TABLE" "$WORK/files.txt" \
    "$ROUNDS" "$ROWS" "$HUB_PID" | tee "$WORK/rounds.out" >&2

log "stopping the hub"
kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true
HUB_PID=

# ---------------------------------------------------------------- summary
if [[ -n ${TB_COMMIT:-} ]]; then COMMIT=$TB_COMMIT
elif COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
else COMMIT="unknown (not a git checkout; set TB_COMMIT)"; fi
f() { val "$1" "$WORK/files.out"; }
r() { val "$1" "$WORK/rounds.out"; }
LOAD=$(r load_s); LOCAL=$(r local_s); ARROW=$(r arrow_s)
RATIO=$(awk -v a="$LOAD" -v b="$LOCAL" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }')
VERDICT=$(awk -v v="$RATIO" -v t="$TARGET" 'BEGIN{ print (v+0 > 0 && v <= t) ? "PASS" : "FALL SHORT" }')
BYTES=$(f bytes); FOLDER=$(f folder)
MIB=$(awk -v b="$BYTES" 'BEGIN{printf "%.1f", b/1048576}')
x() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }'; }
ROUND_LINES=$(awk '$1 ~ /^round[0-9]+$/ { printf "  %-8s              load_as_pandas %s s, local %s s (read_table %s s)\n", $1, $2, $3, $4 }' "$WORK/rounds.out")

cat <<EOF

================ Tongban Delta Sharing benchmark ================
machine     $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr)
date        $(date -u +%Y-%m-%dT%H:%MZ)
commit      $COMMIT
clients     $(r versions); Python $("$PY" -c 'import platform; print(platform.python_version())')
data        scale $SCALE: table $TABLE (subscription $SUB_ID of 101/000001, version $(f version))
            $ROWS rows x $(f columns) columns in $(f files) Parquet files, $BYTES bytes ($MIB MiB);
            in ${FOLDER#"$WORK/data/"} of the hub's data dir: byte for byte the files
            the client downloads ($(f same_bytes))
note        hub and client share the same $(nproc) cores; page cache warm; one warm-up of each, not counted

Best of $ROUNDS (alternating)
  load_as_pandas        $LOAD s   (client CPU $(r load_cpu_s) s, hub CPU $(r load_hub_cpu_s) s)
  local read+to_pandas  $LOCAL s   (pyarrow.parquet.read_table(files).to_pandas(); CPU $(r local_cpu_s) s)
  local read, no pandas $ARROW s   (read_table only)
$ROUND_LINES
Where load_as_pandas's time goes (best of $ROUNDS each, not alternated)
  first query           $(f first_query_s) s   (the hub wrote the shared files; once per plan and version)
  query                 $(r query_s) s   (list the files: POST .../query, signed URLs)
  plain download        $(r download_s) s   (GET every file URL in turn; hub CPU $(r download_hub_cpu_s) s)
  client conversion     $(r client_conversion_s) s   (the client's per-file path on the local files:
                                 one thread, dates as objects, concat)
  local, one thread     $(r local_one_thread_s) s   (read_table -> to_pandas with the client's options)

target                                        measured          verdict
load_as_pandas / local read   <= ${TARGET}x          $(printf '%-17s' "${RATIO}x") $VERDICT
(load_as_pandas / read_table without pandas: $(x "$LOAD" "$ARROW"))
EOF
