#!/usr/bin/env bash
# The hallpass benchmark suite (issue #6): one command that builds in release mode and
# measures, on 127.0.0.1 only, every figure of bench/README.md, then writes
# bench/RESULTS.md (machine, date, commit, command, every figure beside its target and
# ratio).
#
#   bench/run.sh
#
# Environment:
#   DURATION=10s          length of each wrk / Node run
#   SCALE=1               0 skips the large-database part
#   SCALE_USERS=1000000   users seeded for it
#   SCALE_SESSIONS=10000000  sessions seeded for it
#   SCALE_BACKENDS=sqlite backends of the large-database part (sqlite postgres mysql)
#   BACKENDS="sqlite postgres mysql"  backends of the small-database HTTP figures
#   SLEEPLESS=1           0 skips the sleepless-sessions comparison
#   TIMING_SAMPLES=300    samples of each kind for the equal-timing figures
#   RESULTS=bench/RESULTS.md  where the report goes
#
# Needs wrk (installed from Debian if missing), Node/npm (for sleepless-sessions), psql and
# mariadb clients, and the machine's PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
# (127.0.0.1:3306, root). Every database it creates has a unique name and is dropped at
# the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMAND="bench/run.sh"
for v in DURATION SCALE SCALE_USERS SCALE_SESSIONS SCALE_BACKENDS BACKENDS SLEEPLESS TIMING_SAMPLES; do
  [ -n "${!v:-}" ] && COMMAND="$v=${!v} $COMMAND"
done
DURATION=${DURATION:-10s}
DUR_S=${DURATION%s}
SCALE=${SCALE:-1}
SCALE_USERS=${SCALE_USERS:-1000000}
SCALE_SESSIONS=${SCALE_SESSIONS:-10000000}
SCALE_BACKENDS=${SCALE_BACKENDS:-sqlite}
BACKENDS=${BACKENDS:-sqlite postgres mysql}
SLEEPLESS=${SLEEPLESS:-1}
TIMING_SAMPLES=${TIMING_SAMPLES:-300}
RESULTS=${RESULTS:-bench/RESULTS.md}
RUN_ID=$$_$RANDOM
PASSWORD='Tr0ub4dor&3-horse-staple'

say() { printf '\n== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)" >&2; }

# ---- tools -------------------------------------------------------------------------------
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ "$SLEEPLESS" != 0 ]; then
  (cd bench/sleepless && npm ci --no-audit --no-fund --silent >/dev/null 2>&1)
fi
say "cargo build --release -p hallpass-server -p hallpass-bench"
cargo build --release --quiet -p hallpass-server -p hallpass-bench
T=${CARGO_TARGET_DIR:-target}/release
BIN=$T/hallpass

work=$(mktemp -d /tmp/hallpass-bench.XXXXXX)
RES=$work/res
mkdir -p "$RES"
PIDS=()
PG_DBS=()
MY_DBS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${PG_DBS[@]}"; do psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  for d in "${MY_DBS[@]}"; do mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wrk2json() { python3 "$ROOT/bench/report.py" wrk "$1"; }

# ---- servers -----------------------------------------------------------------------------
# start_server NAME URL: starts hallpass on URL, sets SRV_PID, SRV_BASE, SRV_KEY.
start_server() {
  local name=$1 url=$2
  local log=$work/$name.log
  env ${SRV_ENV:-} HALLPASS_THROTTLE_KEY_RATE=0 HALLPASS_DATABASE_URL=$url HALLPASS_LISTEN=127.0.0.1:0 \
    HALLPASS_LOG_FORMAT=json RUST_LOG=warn,hallpass_server::serve=info \
    "$BIN" serve >"$work/$name.out" 2>"$log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  local addr=""
  for _ in $(seq 1 600); do
    addr=$(grep -o '"addr":"[^"]*"' "$log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "$name: server did not start" >&2; cat "$log" >&2; exit 1; }
  SRV_BASE="http://$addr"
  SRV_KEY=$(tail -n 1 "$work/$name.out")
  if [[ $SRV_KEY != hpk_* ]]; then
    SRV_KEY=$(HALLPASS_DATABASE_URL=$url "$BIN" keys create --scope default 2>/dev/null | tail -n 1)
  fi
}
stop_server() {
  kill "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
}
# mem PID FILE: VmHWM and VmRSS of PID, in kB, as JSON.
mem() {
  python3 - "$1" >"$2" <<'PY'
import json, sys
d = {}
for line in open(f"/proc/{sys.argv[1]}/status"):
    k, _, v = line.partition(":")
    if k in ("VmHWM", "VmRSS"):
        d[k + "_kb"] = int(v.split()[0])
print(json.dumps(d))
PY
}
api() { # api METHOD PATH [BODY] -> body on stdout
  curl -s -X "$1" "$SRV_BASE$2" -H "Authorization: Bearer $SRV_KEY" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
register() { api POST /v1/users "{\"username\":\"$1\",\"password\":\"$PASSWORD\"}" >/dev/null; }
login_token() {
  api POST /v1/sessions "{\"login\":\"$1\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
login_lua() { # login_lua FILE USER...: a wrk script logging in as the users in turn
  local f=$1; shift
  {
    echo 'local users = {'
    for u in "$@"; do echo "  \"$u\","; done
    echo '}'
    cat <<LUA
local i = 0
request = function()
  i = i + 1
  local body = '{"login":"' .. users[(i % #users) + 1] .. '","password":"$PASSWORD"}'
  return wrk.format("POST", "/v1/sessions", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $SRV_KEY"}, body)
end
LUA
  } >"$f"
}
tokens_lua() { # tokens_lua FILE TOKENS_FILE: a wrk script presenting the tokens in turn
  {
    echo 'local tokens = {'
    sed 's/.*/  "&",/' "$2"
    echo '}'
    cat <<LUA
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/session", {["Authorization"] = "Bearer $SRV_KEY", ["X-Session-Token"] = tokens[(i % #tokens) + 1]})
end
LUA
  } >"$1"
}
get_session_wrk() { # get_session_wrk OUT TOKEN CONNECTIONS
  wrk -t2 -c"$3" -d"$DURATION" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $2" --latency \
    "$SRV_BASE/v1/session" >"$work/$1.txt"
  wrk2json "$work/$1.txt" >"$RES/$1.json"
}
login_wrk() { # login_wrk OUT LUA CONNECTIONS
  wrk -t2 -c"$3" -d"$DURATION" -s "$2" --latency "$SRV_BASE/v1/sessions" >"$work/$1.txt"
  wrk2json "$work/$1.txt" >"$RES/$1.json"
}

# ---- machine -----------------------------------------------------------------------------
python3 - "$COMMAND" "$DURATION" >"$RES/meta.json" <<'PY'
import json, os, platform, subprocess, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
print(json.dumps({
    "command": sys.argv[1], "duration": sys.argv[2], "nproc": os.cpu_count(), "cpu": cpu,
    "ram_gib": round(mem / 1024 / 1024, 1), "kernel": platform.release(),
    "date": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip(),
    "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain")),
    "wrk": next(iter((lambda r: (r.stdout + r.stderr).splitlines())(subprocess.run(["wrk", "-v"], capture_output=True, text=True))), "?"),
    "load_before": open("/proc/loadavg").read().split()[:3],
}))
PY

# ---- in-process get-session --------------------------------------------------------------
say "inproc (200000 get_session calls)"
"$T/inproc" 200000 >"$RES/inproc.jsonl"

# ---- HTTP figures on each backend --------------------------------------------------------
# The bare axum server, answering the body of a real get-session (captured first).
start_bare() {
  "$T/bare-axum" "$work/body.json" 2>"$work/bare.log" &
  BARE=$!
  PIDS+=("$BARE")
  BARE_ADDR=""
  for _ in $(seq 1 100); do
    BARE_ADDR=$(grep -o '"addr":"[^"]*"' "$work/bare.log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$BARE_ADDR" ] && break
    sleep 0.1
  done
  [ -n "$BARE_ADDR" ] || { echo "bare-axum did not start" >&2; cat "$work/bare.log" >&2; exit 1; }
}

http_backend() { # http_backend NAME URL
  local name=$1 url=$2
  say "$name: server"
  start_server "$name" "$url"
  local user="bench$RANDOM$RANDOM"
  register "$user"
  local token
  token=$(login_token "$user")
  # The body a real get-session answers, for the bare axum server (first backend only).
  [ -f "$work/body.json" ] || curl -s "$SRV_BASE/v1/session" -H "Authorization: Bearer $SRV_KEY" \
    -H "X-Session-Token: $token" >"$work/body.json"
  [ -n "${BARE_ADDR:-}" ] || start_bare
  say "$name: get-session, 64 connections, $DURATION"
  get_session_wrk "${name}_get" "$token" 64
  say "$name: bare axum right after, loaded the same way, 64 connections, $DURATION"
  wrk -t2 -c64 -d"$DURATION" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $token" --latency \
    "http://$BARE_ADDR/v1/session" >"$work/${name}_bare.txt"
  wrk2json "$work/${name}_bare.txt" >"$RES/${name}_bare.json"
  say "$name: login, 16 connections, $DURATION"
  login_lua "$work/login.lua" "$user"
  login_wrk "${name}_login" "$work/login.lua" 16
  say "$name: raw Argon2id rate right after ($DUR_S s)"
  "$T/argon2-rate" "$DUR_S" >"$RES/${name}_argon2.json"
  if [ "$name" = sqlite ]; then
    say "$name: get-session (4 connections) while logins (32 connections) saturate the pool"
    wrk -t1 -c32 -d"$((DUR_S + 3))s" -s "$work/login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/sat_login.txt" &
    local lp=$!
    sleep 2
    get_session_wrk saturated_get "$token" 4
    wait "$lp" || true
    wrk2json "$work/sat_login.txt" >"$RES/saturated_login.json"
    say "$name: equal timing, $TIMING_SAMPLES samples of each kind"
    : >"$work/known.txt"
    for i in $(seq 1 64); do register "timing$i"; echo "timing$i" >>"$work/known.txt"; done
    python3 "$ROOT/bench/timing.py" "$SRV_BASE" "$SRV_KEY" "$work/known.txt" "$TIMING_SAMPLES" >"$RES/timing.jsonl"
  fi
  mem "$SRV_PID" "$RES/${name}_mem.json"
  stop_server
  if [ "$name" = sqlite ]; then
    say "$name: the same saturation with HALLPASS_HASH_THREADS=1 (informative: one core left to get-session)"
    SRV_ENV=HALLPASS_HASH_THREADS=1 start_server "${name}_ht1" "$url"
    token=$(login_token "$user")
    login_lua "$work/login.lua" "$user"
    wrk -t1 -c32 -d"$((DUR_S + 3))s" -s "$work/login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/sat1_login.txt" &
    lp=$!
    sleep 2
    get_session_wrk saturated1_get "$token" 4
    wait "$lp" || true
    wrk2json "$work/sat1_login.txt" >"$RES/saturated1_login.json"
    stop_server
  fi
}

for b in $BACKENDS; do
  case $b in
    sqlite) http_backend sqlite "sqlite://$work/small.db" ;;
    postgres)
      db=hp_bench_$RUN_ID; PG_DBS+=("$db")
      psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
      http_backend postgres "postgres://postgres@127.0.0.1:5432/$db" ;;
    mysql)
      db=hp_bench_$RUN_ID; MY_DBS+=("$db")
      mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $db"
      http_backend mysql "mysql://root@127.0.0.1:3306/$db" ;;
  esac
done

python3 -c 'import json,sys; print(json.dumps({"body_bytes": len(open(sys.argv[1],"rb").read())}))' "$work/body.json" >"$RES/body.json"
[ -n "${BARE:-}" ] && { kill "$BARE"; wait "$BARE" 2>/dev/null || true; }

# ---- scale -------------------------------------------------------------------------------
if [ "$SCALE" != 0 ]; then
  for b in $SCALE_BACKENDS; do
    case $b in
      sqlite) url="sqlite://$work/scale.db" ;;
      postgres)
        db=hp_scale_$RUN_ID; PG_DBS+=("$db")
        psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
        url="postgres://postgres@127.0.0.1:5432/$db" ;;
      mysql)
        db=hp_scale_$RUN_ID; MY_DBS+=("$db")
        mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $db"
        url="mysql://root@127.0.0.1:3306/$db" ;;
    esac
    say "scale $b: migrate, seed $SCALE_USERS users and $SCALE_SESSIONS sessions"
    HALLPASS_DATABASE_URL=$url "$BIN" migrate >/dev/null
    "$T/seed" "$url" "$SCALE_USERS" "$SCALE_SESSIONS" default >"$RES/scale_${b}_seed.json"
    cat "$RES/scale_${b}_seed.json" >&2
    case $b in
      postgres)
        psql -At -h 127.0.0.1 -U postgres -d "$db" -c \
          "SELECT json_build_object('session_table_bytes', pg_total_relation_size('sessions'), 'rows', (SELECT count(*) FROM sessions))" \
          >"$RES/scale_${b}_bytes.json" ;;
      mysql)
        mariadb -N -h 127.0.0.1 -u root -e "ANALYZE TABLE $db.sessions" >/dev/null
        mariadb -N -h 127.0.0.1 -u root -e \
          "SELECT JSON_OBJECT('session_table_bytes', DATA_LENGTH + INDEX_LENGTH, 'rows', (SELECT COUNT(*) FROM $db.sessions)) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db' AND TABLE_NAME = 'sessions'" \
          >"$RES/scale_${b}_bytes.json" ;;
    esac
    start_server "scale_$b" "$url"
    "$T/seed" tokens 10000 "$SCALE_SESSIONS" >"$work/tokens.txt"
    tokens_lua "$work/tokens.lua" "$work/tokens.txt"
    say "scale $b: get-session over 10000 seeded sessions, 64 connections, $DURATION"
    wrk -t2 -c64 -d"$DURATION" -s "$work/tokens.lua" --latency "$SRV_BASE/v1/session" >"$work/scale_get.txt"
    wrk2json "$work/scale_get.txt" >"$RES/scale_${b}_get.json"
    say "scale $b: get-session, one token, 64 connections, $DURATION"
    get_session_wrk "scale_${b}_get1" "$(head -1 "$work/tokens.txt")" 64
    mem "$SRV_PID" "$RES/scale_${b}_mem_get.json"
    say "scale $b: login over 1000 seeded users, 16 connections, $DURATION"
    users=()
    for i in $(seq 0 999); do users+=("bench$(( (i * 7919 + 13) % SCALE_USERS ))"); done
    login_lua "$work/scale_login.lua" "${users[@]}"
    login_wrk "scale_${b}_login" "$work/scale_login.lua" 16
    mem "$SRV_PID" "$RES/scale_${b}_mem.json"
    stop_server
    [ "$b" = sqlite ] && rm -f "$work"/scale.db*
  done
fi

# ---- sleepless-sessions side by side, on MariaDB -----------------------------------------
if [ "$SLEEPLESS" != 0 ]; then
  db=bench_sleepless_$RUN_ID; MY_DBS+=("$db")
  say "sleepless-sessions on MariaDB ($db), 64 concurrent calls, $DURATION each"
  mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $db"
  mariadb -h 127.0.0.1 -u root "$db" <bench/sleepless/schema.sql
  mariadb -h 127.0.0.1 -u root "$db" -e "
    INSERT INTO users (user_id, email, locked, pw_hash, pw_salt)
      SELECT CONCAT('u', seq), CONCAT('u', seq, '@bench.invalid'), 0,
             SHA1(CONCAT('$PASSWORD', SHA1(CONCAT('salt', seq)))), SHA1(CONCAT('salt', seq))
      FROM seq_0_to_999;
    INSERT INTO sessions (user_id, sid, agent, remote_ip, expires)
      SELECT CONCAT('u', seq % 1000), SHA1(CONCAT('sid', seq)), '', '', NOW() + INTERVAL 1 DAY
      FROM seq_0_to_9999;"
  node bench/sleepless/bench.js "$db" "$DUR_S" 64 1000 10000 >"$RES/sleepless.jsonl"
  cat "$RES/sleepless.jsonl" >&2
fi

# ---- report ------------------------------------------------------------------------------
python3 -c 'import json; print(json.dumps({"load_after": open("/proc/loadavg").read().split()[:3]}))' >"$RES/meta_after.json"
mkdir -p "$(dirname "$RESULTS")"
python3 "$ROOT/bench/report.py" write "$RES" "$RESULTS"
rm -rf bench/raw && mkdir -p bench/raw && cp "$RES"/* bench/raw/
say "wrote $RESULTS"
