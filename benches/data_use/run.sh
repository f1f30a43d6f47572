#!/usr/bin/env bash
# The data-use record (数据使用记录) at 100M+ audit records (issue 16): the
# subject index against a scan of the log.
#
#   1. builds the `data-use` program (release; only the audit crate, no
#      DataFusion: a minute or two cold);
#   2. runs it on a fresh folder: writes RECORDS records (about 380 bytes
#      each: 100M is 38 GB, so check `df` first), indexes and merges, then
#      times QUERIES random subjects' first page and one full-log scan.
#
# Usage: benches/data_use/run.sh
#   (RECORDS=100000000 SUBJECTS=20000000 QUERIES=2000 SCAN_SEGMENTS= WORK_PARENT=/var/tmp KEEP=0)
# SCAN_SEGMENTS limits the scan to the first N segments and extrapolates.
set -euo pipefail
RECORDS=${RECORDS:-100000000}
SUBJECTS=${SUBJECTS:-20000000}
QUERIES=${QUERIES:-2000}
SCAN_SEGMENTS=${SCAN_SEGMENTS:-}
WORK_PARENT=${WORK_PARENT:-/var/tmp}
KEEP=${KEEP:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/bench-target}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

echo "== building (release) in $CARGO_TARGET_DIR" >&2
(cd "$ROOT" && cargo build --release -q -p tongban-benches --features data-use --bin data-use)
BENCH=$CARGO_TARGET_DIR/release/data-use

WORK=$(mktemp -d "$WORK_PARENT/tongban-data-use-bench.XXXXXX")
trap 'if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
echo "== $RECORDS records over $SUBJECTS subjects into $WORK ($(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB)" >&2
/usr/bin/time -f "peak_rss_kb %M" "$BENCH" "$WORK" "$RECORDS" "$SUBJECTS" "$QUERIES" $SCAN_SEGMENTS 2>&1
