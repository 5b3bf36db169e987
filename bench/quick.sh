#!/usr/bin/env bash
# A first load figure: get-session and login rates of the release binary over HTTP on
# 127.0.0.1, measured with wrk, on SQLite, PostgreSQL and MariaDB. Not the full benchmark
# suite (issue #6): one short run per figure, bounded in time, loopback only.
#
#   bench/quick.sh                 # all three backends
#   bench/quick.sh sqlite          # one
#
# Needs wrk (installed from Debian if missing) and the databases of the machine. The
# server runs with the settings a user gets (only the database, the address and the JSON
# log format, whose `hallpass listening` line carries the address, are set).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --bin hallpass
BIN="${CARGO_TARGET_DIR:-target}/release/hallpass"
DURATION=${DURATION:-10s}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run_backend() {
  local name=$1 url=$2
  local log="$work/$name.log"
  HALLPASS_DATABASE_URL=$url HALLPASS_LISTEN=127.0.0.1:0 HALLPASS_LOG_FORMAT=json \
    "$BIN" serve >"$work/$name.out" 2>"$log" &
  local pid=$!
  local addr
  addr=$(wait_addr "$log" "$pid")
  [ -n "$addr" ] || { echo "$name: server did not start"; cat "$log"; return 1; }
  local key
  key=$(tail -n 1 "$work/$name.out")
  if [[ $key != hpk_* ]]; then
    key=$(HALLPASS_DATABASE_URL=$url "$BIN" keys create --scope bench 2>/dev/null | tail -n 1)
  fi
  local base="http://$addr"
  local user="bench$RANDOM$RANDOM"
  curl -s -o /dev/null -X POST "$base/v1/users" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"Tr0ub4dor&3-horse-staple\"}"
  local token
  token=$(curl -s -X POST "$base/v1/sessions" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"login\":\"$user\",\"password\":\"Tr0ub4dor&3-horse-staple\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  echo "== $name: get-session, 64 connections, $DURATION"
  wrk -t2 -c64 -d"$DURATION" -H "Authorization: Bearer $key" -H "X-Session-Token: $token" --latency "$base/v1/session" \
    | grep -E "Requests/sec|Latency|50%|99%|Non-2xx"
  cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"login":"$user","password":"Tr0ub4dor&3-horse-staple"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
  echo "== $name: login, 8 connections, $DURATION"
  wrk -t2 -c8 -d"$DURATION" -s "$work/login.lua" --latency "$base/v1/sessions" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

want=${1:-all}
if [[ $want == all || $want == sqlite ]]; then
  run_backend sqlite "sqlite://$work/bench.db"
fi
if [[ $want == all || $want == postgres ]]; then
  db=hp_bench_$$
  psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
  run_backend postgres "postgres://postgres@127.0.0.1:5432/$db"
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
if [[ $want == all || $want == mysql ]]; then
  db=hp_bench_$$
  mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $db"
  run_backend mariadb "mysql://root@127.0.0.1:3306/$db"
  mariadb -h 127.0.0.1 -u root -e "DROP DATABASE $db"
fi
