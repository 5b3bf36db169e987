#!/usr/bin/env bash
# Instructions per get-session request of the release server, counted by valgrind's
# callgrind: deterministic (unlike wall-clock or CPU time on a shared machine), so a
# change to the hot path shows as a number that does not move with the machine's load.
#
#   bench/profile.sh [NAME]     # writes target/profile/NAME/ (callgrind.out.1 + summary)
#
# Starts `hallpass serve` under callgrind on a fresh SQLite file (instrumentation off),
# registers and logs in one user, warms up with wrk for 2 s, then counts only while wrk
# (1 thread, 4 connections) calls GET /v1/session for 8 s. Prints the instructions per
# request and the 25 most costly functions (inclusive). Loopback only; user-space
# instructions only (the kernel's network work is the same for any server). Under
# valgrind the CPU has no SHA extensions, so SHA-256 shows far costlier than it is.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
name=${1:-get-session}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --bin hallpass
BIN="${CARGO_TARGET_DIR:-target}/release/hallpass"
D="${CARGO_TARGET_DIR:-target}/profile/$name"
rm -rf "$D"; mkdir -p "$D"
# The defaults, as a user runs it: only the database, the address and the log format set.
HALLPASS_DATABASE_URL="sqlite://$D/db.sqlite" HALLPASS_LISTEN=127.0.0.1:0 HALLPASS_LOG_FORMAT=json \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$D/callgrind.out" "$BIN" serve \
  >"$D/out" 2>"$D/log" &
vpid=$!
trap 'kill $vpid 2>/dev/null || true' EXIT
addr=$(wait_addr "$D/log" "$vpid")
[ -n "$addr" ] || { echo "the server did not start"; cat "$D/log"; exit 1; }
key=$(tail -n 1 "$D/out")
curl -s -o /dev/null -X POST "http://$addr/v1/users" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"username":"profiled","password":"Tr0ub4dor&3-horse-staple"}'
token=$(curl -s -X POST "http://$addr/v1/sessions" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"login":"profiled","password":"Tr0ub4dor&3-horse-staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
wrk -t1 -c4 -d2s -H "Authorization: Bearer $key" -H "X-Session-Token: $token" "http://$addr/v1/session" >/dev/null
callgrind_control -i on "$vpid" >/dev/null
out=$(wrk -t1 -c4 -d8s -H "Authorization: Bearer $key" -H "X-Session-Token: $token" "http://$addr/v1/session")
callgrind_control -i off "$vpid" >/dev/null
callgrind_control -d "$vpid" >/dev/null
sleep 1
kill "$vpid" 2>/dev/null || true; wait "$vpid" 2>/dev/null || true
reqs=$(echo "$out" | awk '/requests in/ {print $1}')
total=$(callgrind_annotate "$D/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}')
{
  echo "requests: $reqs; $(echo "$out" | grep -i non-2xx || echo "all 2xx")"
  echo "instructions per get-session request: $((total / reqs))"
  echo
  callgrind_annotate --inclusive=yes "$D/callgrind.out.1" 2>/dev/null | sed -n '/file:function/,$p' \
    | sed 's|/root/.cargo/registry/src/[^/]*/||; s|/rustc/[0-9a-f]*/||' | grep -v "tokio::runtime\|'2" | head -60 | cut -c1-200
} | tee "$D/summary.txt"
