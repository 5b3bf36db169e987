#!/usr/bin/env bash
# The client libraries (issue 20): the cached session check through hallpass-client (Rust)
# and @hallpass/client (Node), and revocation latency: DELETE /v1/session sent to server B,
# refused from memory by a hallpass-client cache connected to server A (two processes on
# one database). Servers run with the defaults (only the database URL, the listen address
# and JSON logs set), on SQLite (the default) and PostgreSQL. Prints one JSON line per figure.
#
#   bench/clients.sh                       # SQLite and PostgreSQL, 200 revocations each
#   SAMPLES=500 bench/clients.sh sqlite
#   BIN=target/debug/hallpass bench/clients.sh     # another server build (default: release,
#                                                  # as installed)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p hallpass-server --bin hallpass
  BIN=$TARGET/release/hallpass
fi
cargo build --release --quiet -p hallpass-client-bench
(cd clients/node && npm run --silent build)
SAMPLES=${SAMPLES:-200}
work=$(mktemp -d)
trap 'stop_servers "$work"; rm -rf "$work"' EXIT


run() { # BACKEND URL
  local a b key
  key=$(HALLPASS_DATABASE_URL=$2 "$BIN" keys create --scope bench 2>/dev/null | tail -n 1)
  a=$(serve_bg "$work" "$1-a" "$2")
  if [[ $1 == sqlite ]]; then
    echo "{\"backend\":\"$1\",\"server\":\"$BIN\"}"
    "$TARGET/release/client-cache" "http://$a" "$key" 200000
    node bench/client-node.mjs "http://$a" "$key" 200000
  fi
  b=$(serve_bg "$work" "$1-b" "$2")
  printf '{"backend":"%s"} ' "$1"
  "$TARGET/release/client-revocation" "http://$a" "http://$b" "$key" "$SAMPLES"
  stop_servers "$work"
}

want=${1:-all}
if [[ $want == all || $want == sqlite ]]; then
  run sqlite "sqlite://$work/hallpass.db"
fi
if [[ $want == all || $want == postgres ]]; then
  db=hp_clients_$$
  psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
  run postgres "postgres://postgres@127.0.0.1:5432/$db"
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
