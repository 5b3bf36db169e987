#!/usr/bin/env bash
# Change-stream latency (issue 20): two `hallpass serve` processes with the defaults on one
# PostgreSQL and then one MariaDB database; a client of A reads `GET /v1/changes` while
# sessions are ended through B (bench/changes.py). Loopback only, bounded by SAMPLES.
#
#   bench/changes.sh                 # 200 samples on each backend
#   SAMPLES=50 bench/changes.sh postgres
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
cargo build --release --quiet --bin hallpass
BIN="${CARGO_TARGET_DIR:-target}/release/hallpass"
SAMPLES=${SAMPLES:-200}
work=$(mktemp -d)
trap 'stop_servers "$work"; rm -rf "$work"' EXIT


run() { # BACKEND URL
  local a b key
  a=$(serve_bg "$work" "$1-a" "$2"); b=$(serve_bg "$work" "$1-b" "$2")
  key=$(tail -n 1 "$work/$1-a.out")
  [[ $key == hpk_* ]] || key=$(tail -n 1 "$work/$1-b.out")
  printf '%s: ' "$1"
  python3 bench/changes.py "http://$a" "http://$b" "$key" "$SAMPLES"
  stop_servers "$work"
}

want=${1:-all}
db=hp_changes_$$
if [[ $want == all || $want == postgres ]]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
  run postgres "postgres://postgres@127.0.0.1:5432/$db"
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
if [[ $want == all || $want == mysql ]]; then
  mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $db"
  run mariadb "mysql://root@127.0.0.1:3306/$db"
  mariadb -h 127.0.0.1 -u root -e "DROP DATABASE $db"
fi
