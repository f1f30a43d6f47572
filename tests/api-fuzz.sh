#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis: every
# response must be documented, match its schema, and never be a 500.
# Not part of CI (it installs from PyPI); run it after changing the API:
#   bash tests/api-fuzz.sh [max-examples]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tongban-target}"
venv="${TONGBAN_FUZZ_VENV:-/var/tmp/tongban-fuzz-venv}"
[ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis; }
cargo build -q -p tongban-hub
data=$(mktemp -d)
port=18099
"$CARGO_TARGET_DIR/debug/tongban" demo --data-dir "$data" --listen "127.0.0.1:$port" --scale 0.01 >"$data/demo.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
token=$(python3 -c "import json,sys; print([t['token'] for t in json.load(open(sys.argv[1]))['tokens'] if t['role']=='data_office'][0])" "$data/demo-credentials.json")
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/openapi.json" >"$data/openapi.json"
# Cross-field directory rules (a code that must match its category, a path
# code that must match the body) cannot be expressed in the schema; they are
# answered 422 and reported by schemathesis as "schema-valid request rejected".
"$venv/bin/schemathesis" run "$data/openapi.json" --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" --max-examples "${1:-100}"
