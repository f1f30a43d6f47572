#!/usr/bin/env bash
# Sync benchmark of Tongban (the sync issue), one run on one machine:
#
#   1. builds the release `tongban` binary;
#   2. makes the table $TABLE in PostgreSQL with $ROWS rows (text, integer,
#      date, timestamp, numeric columns; one INSERT … SELECT FROM
#      generate_series, then the primary key, VACUUM ANALYZE, CHECKPOINT);
#   3. warms the table with one untimed binary COPY (and counts its bytes);
#   4. $ROUNDS rounds, each: the raw peer — psql `COPY $TABLE TO STDOUT
#      (FORMAT binary)` to /dev/null — then `tongban sync run` of a full job
#      from the same table into a new Parquet dataset version, each timed
#      (wall, the process's CPU and peak RSS by /usr/bin/time, the whole
#      machine's CPU from /proc/stat) and each started only once the machine
#      is idle (another build would share the cores; up to $IDLE_WAIT s, then
#      a warning); every sync run must have written $ROWS rows and
#      quarantined none;
#   5. optionally (PROFILE=1) one more sync run under a system-wide
#      `perf record`, to say where the time goes;
#   6. prints a summary: best COPY, best sync, the ratio sync / COPY against
#      the target (≤ $TARGET×), PASS / FALL SHORT, rows/s and MiB/s.
#
# Usage: benches/sync/run.sh              (from anywhere; settings below by
#        environment, e.g. ROWS=100000 benches/sync/run.sh)
#        TRANSFORM='SELECT … FROM source' adds a SQL transform to the job;
#        TONGBAN_BIN=PATH benchmarks a given binary instead of building.
#
# Everything targets the PostgreSQL at $PG_URL only; every step is bounded
# in time; the table and the hub's data dir are removed at the end (KEEP=1
# keeps both; REUSE_TABLE=1 uses an existing $TABLE of $ROWS rows as is).
#
# With its primary key (the default), the table vouches that record_id is
# unique, and the sync's quality gate (from commit 6e442f8) skips its per-row
# duplicate-key check; KEY_INDEX=0 makes the table without it, so the gate
# does that check.
set -euo pipefail

ROWS=${ROWS:-10000000}
ROUNDS=${ROUNDS:-2}               # timed COPY + sync pairs; the best of each counts
TARGET=${TARGET:-1.2}             # sync / COPY wall time must be at most this
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
TABLE=${TABLE:-tongban_bench_sync}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
WORK_PARENT=${WORK_PARENT:-/var/tmp} # the hub's data dir (the Parquet versions) goes here
STEP_TIMEOUT=${STEP_TIMEOUT:-3600}   # seconds, any one load, COPY or sync run
PROFILE=${PROFILE:-0}             # 1: one more sync run under `perf record -a -g`
IDLE_WAIT=${IDLE_WAIT:-900}       # seconds to wait, before each timed step, for the machine to be idle
IDLE_MAX=${IDLE_MAX:-0.15}        # idle: under this many cores busy over 3 s
KEEP=${KEEP:-0}
REUSE_TABLE=${REUSE_TABLE:-0}
KEY_INDEX=${KEY_INDEX:-1}         # 0: no primary key on record_id, so the gate checks every key for duplicates
# TB_COMMIT: the commit to print, when the tree is not a git checkout

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
JOB=bench-sync
RES=301/000900

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
pg() { timeout "$STEP_TIMEOUT" psql "$PG_URL" -v ON_ERROR_STOP=1 -Atq "$@"; }
# whole-machine CPU seconds so far: busy (user nice system irq softirq), iowait,
# steal (a VM's CPU time taken by its host)
machine_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu /{ printf "%.2f %.2f %.2f\n", ($2+$3+$4+$7+$8)/hz, $6/hz, $9/hz }' /proc/stat
}
# timed NAME OUT CMD...: runs CMD with stdout to OUT; sets T_WALL T_USER T_SYS
# T_RSS_KIB (of CMD and its children, by /usr/bin/time) and T_MACHINE (busy
# CPU seconds of the whole machine: CMD, the PostgreSQL backend, the kernel)
timed() {
    local name=$1 out=$2 t0 t1 b0 b1 w0 w1 s0 s1; shift 2
    read -r b0 w0 s0 < <(machine_cpu)
    t0=$(date +%s.%N)
    if ! timeout "$STEP_TIMEOUT" /usr/bin/time -f '%U %S %M' -o "$WORK/$name.rusage" "$@" \
        >"$out" 2>"$WORK/$name.err"; then
        cat "$WORK/$name.err" "$WORK/$name.rusage" >&2 2>/dev/null
        die "$name failed (or ran past $STEP_TIMEOUT s)"
    fi
    t1=$(date +%s.%N)
    read -r b1 w1 s1 < <(machine_cpu)
    T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    read -r T_USER T_SYS T_RSS_KIB < <(tail -n 1 "$WORK/$name.rusage")
    T_MACHINE=$(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", b-a}')
    T_IOWAIT=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.2f", b-a}')
    T_STEAL=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.2f", b-a}')
    printf '%s: %s s wall; process CPU user %s s + sys %s s; peak RSS %s MiB; machine busy %s CPU-s (iowait %s, steal %s)\n' \
        "$name" "$T_WALL" "$T_USER" "$T_SYS" "$((T_RSS_KIB / 1024))" "$T_MACHINE" "$T_IOWAIT" "$T_STEAL" >&2
}
# wait_idle: until the whole machine is idle (under $IDLE_MAX cores busy over
# 3 s), at most $IDLE_WAIT s; another build or test run would share the cores
NOT_IDLE=0
wait_idle() {
    local t0 b0 b1 busy
    t0=$(date +%s)
    while :; do
        read -r b0 _ _ < <(machine_cpu); sleep 3; read -r b1 _ _ < <(machine_cpu)
        busy=$(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", (b-a)/3}')
        if awk -v x="$busy" -v m="$IDLE_MAX" 'BEGIN{exit !(x < m)}'; then
            echo "machine idle ($busy cores busy)" >&2; return
        fi
        if (( $(date +%s) - t0 >= IDLE_WAIT )); then
            echo "WARNING: machine still busy ($busy cores) after $IDLE_WAIT s; measuring anyway" >&2
            NOT_IDLE=1; return
        fi
        echo "machine busy ($busy cores); waiting" >&2
        sleep 17
    done
}
# the index of the smallest of its arguments
argmin() { printf '%s\n' "$@" | awk 'NR==1 || $1<m {m=$1; i=NR-1} END{print i}'; }

# ---------------------------------------------------------------- tools
command -v psql >/dev/null || die "psql is missing (apt-get install -y postgresql-client)"
command -v python3 >/dev/null || die "python3 is missing"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install -y time)"
if [[ $PROFILE == 1 ]]; then command -v perf >/dev/null || die "PROFILE=1 needs perf"; fi
pg -c 'select 1' >/dev/null || die "no PostgreSQL at $PG_URL"
[[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer"
[[ $TABLE =~ ^[a-z_][a-z0-9_]*$ ]] || die "TABLE must be a plain lower-case name"

# ---------------------------------------------------------------- build
if [[ -n ${TONGBAN_BIN:-} ]]; then
    # A given build (e.g. before a change), for a before/after in one session.
    [[ -x $TONGBAN_BIN ]] || die "TONGBAN_BIN=$TONGBAN_BIN is not an executable"
    TONGBAN=$TONGBAN_BIN
else
    log "building (release) in $CARGO_TARGET_DIR"
    t0=$(date +%s)
    (cd "$ROOT" && cargo build --release --locked -q -p tongban-hub)
    echo "build: $(( $(date +%s) - t0 )) s" >&2
    TONGBAN=$CARGO_TARGET_DIR/release/tongban
fi

# ---------------------------------------------------------------- work dir, cleanup
WORK=$(mktemp -d "$WORK_PARENT/tongban-sync-bench.XXXXXX")
DATA=$WORK/data
cleanup() {
    set +e
    if [[ $KEEP == 1 ]]; then
        echo "kept $WORK and the table $TABLE" >&2
    else
        psql "$PG_URL" -Atqc "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- table
if [[ $REUSE_TABLE == 1 ]] && [[ $(pg -c "select count(*) from $TABLE" 2>/dev/null) == "$ROWS" ]]; then
    log "reusing $TABLE ($ROWS rows)"
else
    log "PostgreSQL: making $TABLE with $ROWS rows"
    ADD_KEY=; [[ $KEY_INDEX == 1 ]] && ADD_KEY="ALTER TABLE $TABLE ADD PRIMARY KEY (record_id);"
    t0=$(date +%s)
    # one INSERT … SELECT; the key afterwards (one sorted index build);
    # amount is NULL on every 50th row, so the nullable paths are exercised
    pg >&2 <<EOF
DROP TABLE IF EXISTS $TABLE;
CREATE TABLE $TABLE (
    record_id     text NOT NULL,
    name          text NOT NULL,
    district_code int4 NOT NULL,
    born          date NOT NULL,
    registered_at timestamp NOT NULL,
    amount        numeric(12, 2),
    visits        int8 NOT NULL
);
INSERT INTO $TABLE
SELECT 'R' || lpad(i::text, 10, '0'),
       (array['王','李','张','刘','陈','杨','赵','黄','周','吴'])[1 + (i % 10)::int]
         || (array['伟','芳','娜','敏','静','丽','强','磊','军','洋','勇','艳'])[1 + ((i / 10) % 12)::int]
         || CASE WHEN i % 3 = 0 THEN ''
                 ELSE (array['华','明','红','平','刚','英','杰'])[1 + ((i / 120) % 7)::int] END,
       310101 + (i % 16)::int,
       date '1940-01-01' + ((i * 7919) % 29000)::int,
       timestamp '2020-01-01' + ((i * 104729) % 157680000) * interval '1 second',
       CASE WHEN i % 50 = 0 THEN NULL ELSE ((i * 7907) % 100000000) / 100.0 END,
       (i * 31) % 1000
FROM generate_series(1::bigint, $ROWS::bigint) AS i;
$ADD_KEY
VACUUM ANALYZE $TABLE;
CHECKPOINT;
EOF
    echo "table made in $(( $(date +%s) - t0 )) s" >&2
fi
read -r TABLE_BYTES HEAP_BYTES TABLE_PRETTY HEAP_PRETTY < <(pg -F ' ' -c "
    select pg_total_relation_size('$TABLE'), pg_relation_size('$TABLE'),
           replace(pg_size_pretty(pg_total_relation_size('$TABLE')), ' ', ''),
           replace(pg_size_pretty(pg_relation_size('$TABLE')), ' ', '')")
PK=$(pg -c "select count(*) from pg_index where indrelid = '$TABLE'::regclass and indisprimary")
if [[ $PK == 1 ]]; then PK_NOTE="primary key on record_id (the source vouches keys are unique)"
else PK_NOTE="no primary key (the gate must check keys for duplicates)"; fi
echo "size: $TABLE_PRETTY in all ($HEAP_PRETTY heap); $PK_NOTE" >&2
pg -c "select * from $TABLE order by record_id limit 3" >&2

COPY_SQL="COPY $TABLE TO STDOUT (FORMAT binary)"
log "warm-up: one untimed $COPY_SQL"
STREAM_BYTES=$(timeout "$STEP_TIMEOUT" psql "$PG_URL" -Atq -c "$COPY_SQL" | wc -c)
STREAM_MIB=$(awk -v b="$STREAM_BYTES" 'BEGIN{printf "%.1f", b/1048576}')
echo "binary COPY stream: $STREAM_BYTES bytes ($STREAM_MIB MiB)" >&2

# ---------------------------------------------------------------- hub data dir, job
log "Tongban: data dir $DATA, resource $RES, job $JOB"
cat >"$WORK/directory.json" <<'EOF'
{"departments": [
  {"code": "sh-bench", "name": "同步基准测试部门", "level": "city", "division_code": "310000"}
 ],
 "resources": [
  {"code": "301/000900", "name": "同步基准表", "provider": "sh-bench",
   "summary": "PostgreSQL → Parquet 同步基准测试用表", "category": "department",
   "format": "database", "update_cycle": "daily", "key_items": ["record_id"],
   "status": "published",
   "items": [
    {"name": "record_id", "label": "记录编号", "data_type": "Utf8",
     "sensitivity": "internal", "share_type": "unconditional"},
    {"name": "name", "label": "姓名", "data_type": "Utf8",
     "sensitivity": "internal", "share_type": "unconditional"},
    {"name": "district_code", "label": "区划代码", "data_type": "Int32",
     "sensitivity": "public", "share_type": "unconditional"},
    {"name": "born", "label": "出生日期", "data_type": "Date32",
     "sensitivity": "internal", "share_type": "unconditional"},
    {"name": "registered_at", "label": "登记时间", "data_type": "Timestamp(Microsecond, None)",
     "sensitivity": "internal", "share_type": "unconditional"},
    {"name": "amount", "label": "金额", "data_type": "Decimal128(12, 2)",
     "sensitivity": "internal", "share_type": "unconditional"},
    {"name": "visits", "label": "办件次数", "data_type": "Int64",
     "sensitivity": "public", "share_type": "unconditional"}
   ]}
 ]}
EOF
"$TONGBAN" catalog import "$WORK/directory.json" --data-dir "$DATA" >&2
SOURCE="{\"type\":\"postgres\",\"url\":\"$PG_URL\",\"table\":\"$TABLE\"}"
if [[ -n ${TRANSFORM:-} ]]; then
    # A DataFusion SQL transform between the source and the gate; it must
    # keep every row (each run is checked for $ROWS rows).
    "$TONGBAN" sync add "$JOB" --data-dir "$DATA" --resource "$RES" --source "$SOURCE" \
        --transform "$TRANSFORM" >&2
else
    "$TONGBAN" sync add "$JOB" --data-dir "$DATA" --resource "$RES" --source "$SOURCE" >&2
fi

# ---------------------------------------------------------------- rounds
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)   # the machine before the timed rounds
# per round i: C_* for the COPY, S_* for the sync run
C_WALL=(); C_USER=(); C_SYS=(); C_MACHINE=()
S_WALL=(); S_USER=(); S_SYS=(); S_RSS=(); S_MACHINE=()
for round in $(seq 1 "$ROUNDS"); do
    log "round $round: raw COPY, then tongban sync run"
    wait_idle
    timed "copy$round" /dev/null psql "$PG_URL" -Atq -c "$COPY_SQL"
    C_WALL+=("$T_WALL"); C_USER+=("$T_USER"); C_SYS+=("$T_SYS"); C_MACHINE+=("$T_MACHINE")
    wait_idle
    timed "sync$round" "$WORK/sync$round.out" "$TONGBAN" sync run "$JOB" --data-dir "$DATA"
    cat "$WORK/sync$round.out" >&2
    S_WALL+=("$T_WALL"); S_USER+=("$T_USER"); S_SYS+=("$T_SYS"); S_RSS+=("$T_RSS_KIB")
    S_MACHINE+=("$T_MACHINE")
done

# ---------------------------------------------------------------- check the runs
"$TONGBAN" sync history "$JOB" --data-dir "$DATA" --json >"$WORK/history.json"
python3 - "$WORK/history.json" "$ROWS" "$ROUNDS" >"$WORK/check.out" <<'EOF' || { cat "$WORK/check.out" >&2; die "a sync run is wrong"; }
import json, sys
runs = sorted(json.load(open(sys.argv[1])), key=lambda r: r["id"])
rows, rounds = int(sys.argv[2]), int(sys.argv[3])
ok = len(runs) == rounds
for r in runs:
    good = (r["outcome"] == "succeeded" and r["rows_read"] == rows
            and r["rows_written"] == rows and r["rows_quarantined"] == 0)
    ok = ok and good
    print("run", r["id"], r["outcome"], "version", r["version"], "read", r["rows_read"],
          "written", r["rows_written"], "quarantined", r["rows_quarantined"],
          "bytes", r["bytes"], "error", r["error"], "" if good else "<- WRONG")
print("bytes", max(r["bytes"] for r in runs) if runs else 0)
sys.exit(0 if ok else 1)
EOF
grep '^run' "$WORK/check.out" >&2
PARQUET_BYTES=$(awk '$1=="bytes"{print $2}' "$WORK/check.out")
PARQUET_MIB=$(awk -v b="$PARQUET_BYTES" 'BEGIN{printf "%.1f", b/1048576}')
echo "Parquet on disk (v1): $(du -sb "$DATA/datasets/${RES/\//-}/v1" | awk '{print $1}') bytes" >&2

# ---------------------------------------------------------------- profile (optional)
if [[ $PROFILE == 1 ]]; then
    log "profile: one more sync run under perf record -a -g (not timed)"
    wait_idle
    timeout "$STEP_TIMEOUT" perf record -q -a -g -F 499 -o "$WORK/perf.data" -- \
        "$TONGBAN" sync run "$JOB" --data-dir "$DATA" >/dev/null 2>"$WORK/perf.err" \
        || { cat "$WORK/perf.err" >&2; die "the profiled run failed"; }
    # reports to files first: `| head` under pipefail would end the script
    report() { perf report -i "$WORK/perf.data" --no-children -g none --stdio "$@" 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' >"$WORK/perf.txt" || true; }
    report --sort comm
    echo "-- samples by thread name, all CPUs (idle is swapper):" >&2
    head -n 12 "$WORK/perf.txt" >&2
    HUB_COMMS=$(awk '{print $2}' "$WORK/perf.txt" | grep -E "^(tokio|tongban)" | paste -sd, - || true)
    report --comm "$HUB_COMMS" --sort dso,symbol --percent-limit 1
    echo "-- the hub's threads ($HUB_COMMS), symbols over 1 % of all samples:" >&2
    head -n 40 "$WORK/perf.txt" >&2
    report --comm postgres --sort dso,symbol --percent-limit 1
    echo "-- PostgreSQL, symbols over 1 % of all samples:" >&2
    head -n 20 "$WORK/perf.txt" >&2
fi

# ---------------------------------------------------------------- summary
if [[ -n ${TB_COMMIT:-} ]]; then COMMIT=$TB_COMMIT
elif COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
else COMMIT="unknown (not a git checkout; set TB_COMMIT)"; fi
CI=$(argmin "${C_WALL[@]}"); SI=$(argmin "${S_WALL[@]}")
COPY_BEST=${C_WALL[$CI]}; SYNC_BEST=${S_WALL[$SI]}
S_RSS_MIB=$(( ${S_RSS[$SI]} / 1024 ))
f() { awk "BEGIN{ $1 }"; }
RATIO=$(f "printf \"%.2f\", $SYNC_BEST / $COPY_BEST")
VERDICT=$(f "print ($RATIO <= $TARGET) ? \"PASS\" : \"FALL SHORT\"")
S_CPU=$(f "printf \"%.2f\", ${S_USER[$SI]} + ${S_SYS[$SI]}")
S_CORES=$(f "printf \"%.2f\", $S_CPU / $SYNC_BEST")
S_OTHER=$(f "v = ${S_MACHINE[$SI]} - $S_CPU; printf \"%.2f\", (v > 0) ? v : 0")
C_OTHER=$(f "v = ${C_MACHINE[$CI]} - ${C_USER[$CI]} - ${C_SYS[$CI]}; printf \"%.2f\", (v > 0) ? v : 0")
ROWS_S_COPY=$(f "printf \"%.0f\", $ROWS / $COPY_BEST")
ROWS_S_SYNC=$(f "printf \"%.0f\", $ROWS / $SYNC_BEST")
MIBS_COPY=$(f "printf \"%.1f\", $STREAM_BYTES / 1048576 / $COPY_BEST")
MIBS_SYNC_IN=$(f "printf \"%.1f\", $STREAM_BYTES / 1048576 / $SYNC_BEST")
MIBS_SYNC_OUT=$(f "printf \"%.1f\", $PARQUET_BYTES / 1048576 / $SYNC_BEST")
TABLE_MIB=$(f "printf \"%.1f\", $TABLE_BYTES / 1048576")
HEAP_MIB=$(f "printf \"%.1f\", $HEAP_BYTES / 1048576")

cat <<EOF

================ Tongban sync benchmark ================
machine     $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr)
postgres    $(pg -c 'show server_version'), shared_buffers $(pg -c 'show shared_buffers'), ssl $(pg -c 'show ssl') (psql: $(pg -c 'select coalesce((select version from pg_stat_ssl where pid = pg_backend_pid() and ssl), $$no TLS$$)'))
date        $(date -u +%Y-%m-%dT%H:%MZ) (load average before the rounds: $LOAD0)
commit      $COMMIT
data        $ROWS rows in $TABLE: $TABLE_MIB MiB in all ($HEAP_MIB MiB heap); $PK_NOTE;
            binary COPY stream $STREAM_MIB MiB; Parquet (snappy) $PARQUET_MIB MiB
note        psql, the hub and the PostgreSQL backend share the same $(nproc) cores;
            $( ((NOT_IDLE)) && echo "WARNING: some steps ran on a busy machine (see the log)" || echo "each timed step started on an idle machine (< $IDLE_MAX cores busy)");
            best of $ROUNDS interleaved rounds, the table warm in memory

raw COPY (psql -c "$COPY_SQL" > /dev/null)
  wall s                $(printf '%s  ' "${C_WALL[@]}")-> best $COPY_BEST
  rows/s, MiB/s         $ROWS_S_COPY rows/s, $MIBS_COPY MiB/s of COPY stream
  CPU (best run)        psql ${C_USER[$CI]} user + ${C_SYS[$CI]} sys s; rest of the machine (backend, kernel) $C_OTHER s
tongban sync run (full job, postgres source -> gate -> Parquet version)
  wall s                $(printf '%s  ' "${S_WALL[@]}")-> best $SYNC_BEST
  rows/s, MiB/s         $ROWS_S_SYNC rows/s; $MIBS_SYNC_IN MiB/s of COPY stream in, $MIBS_SYNC_OUT MiB/s of Parquet out
  hub CPU (best run)    ${S_USER[$SI]} user + ${S_SYS[$SI]} sys = $S_CPU s = $S_CORES cores over the wall time
  rest of the machine   $S_OTHER CPU-s (the PostgreSQL backend running the COPY, the kernel)
  hub peak RSS          $S_RSS_MIB MiB

target                       measured       verdict
sync / COPY <= ${TARGET}x          $(printf '%-14s' "${RATIO}x") $VERDICT
EOF
