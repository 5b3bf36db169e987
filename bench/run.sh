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
#   SCALE_USERS_<backend>, SCALE_SESSIONS_<backend>  per-backend sizes (e.g. SCALE_SESSIONS_mysql)
#   ROUNDS=3              alternating slices per figure/reference pair
#   BACKENDS="sqlite postgres mysql"  backends of the small-database HTTP figures
#   SLEEPLESS=1           0 skips the sleepless-sessions comparison
#   BETTER_AUTH=1         0 skips the Better Auth comparison
#   BA_CACHE_MAX_AGE=     session.cookieCache.maxAge (s) of the Better Auth staleness figure;
#                         unset: Better Auth's default (300 s), which the figure then waits out
#   TIMING_SAMPLES=300    samples of each kind for the equal-timing figures
#   RESULTS=bench/RESULTS.md  where the report goes (the raw figures go to raw/ beside it)
#
# Needs wrk (installed from Debian if missing), Node/npm (for sleepless-sessions and Better
# Auth: `npm ci` in bench/sleepless and bench/better-auth), psql and
# mariadb clients, and the machine's PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
# (127.0.0.1:3306, root). Every database it creates has a unique name and is dropped at
# the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
ROOT=$PWD
COMMAND="bench/run.sh"
for v in DURATION ROUNDS SCALE SCALE_USERS SCALE_SESSIONS SCALE_BACKENDS BACKENDS SLEEPLESS BETTER_AUTH BA_CACHE_MAX_AGE TIMING_SAMPLES \
  SCALE_USERS_sqlite SCALE_SESSIONS_sqlite SCALE_USERS_postgres SCALE_SESSIONS_postgres SCALE_USERS_mysql SCALE_SESSIONS_mysql; do
  if [ -n "${!v:-}" ]; then
    case ${!v} in *" "*) COMMAND="$v='${!v}' $COMMAND" ;; *) COMMAND="$v=${!v} $COMMAND" ;; esac
  fi
done
DURATION=${DURATION:-10s}
DUR_S=${DURATION%s}
# A figure and its reference (bare axum, raw Argon2id, the small database, sleepless) are
# measured in ROUNDS alternating slices of DURATION/ROUNDS each, so that load from other
# processes on the machine falls on both alike.
ROUNDS=${ROUNDS:-3}
SLICE_S=$(( DUR_S / ROUNDS > 2 ? DUR_S / ROUNDS : 2 ))
SCALE=${SCALE:-1}
SCALE_USERS=${SCALE_USERS:-1000000}
SCALE_SESSIONS=${SCALE_SESSIONS:-10000000}
SCALE_BACKENDS=${SCALE_BACKENDS:-sqlite}
BACKENDS=${BACKENDS:-sqlite postgres mysql}
SLEEPLESS=${SLEEPLESS:-1}
BETTER_AUTH=${BETTER_AUTH:-1}
BA_CACHE_MAX_AGE=${BA_CACHE_MAX_AGE:-}
TIMING_SAMPLES=${TIMING_SAMPLES:-300}
RESULTS=${RESULTS:-bench/RESULTS.md}
RUN_ID=$$_$RANDOM
PASSWORD='Tr0ub4dor&3-horse-staple'

say() { printf '\n== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)" >&2; }

# ---- tools -------------------------------------------------------------------------------
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
# npm_ci DIR MODULE: `npm ci` in DIR, unless node_modules was installed from this very
# lock file and MODULE loads (better-sqlite3 compiles from source when its prebuilt binary
# cannot be downloaded, which takes minutes). Node's own headers (Debian's nodejs ships
# them in /usr/include/node) spare node-gyp a download.
npm_ci() {
  local dir=$1 module=$2 stamp
  stamp=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.hallpass-bench-lock" 2>/dev/null)" = "$stamp" ] &&
    (cd "$dir" && node -e "require('$module')" 2>/dev/null); then
    return
  fi
  say "npm ci in $dir"
  local nodedir=()
  [ -f /usr/include/node/node_version.h ] && nodedir=(env npm_config_nodedir=/usr)
  (cd "$dir" && "${nodedir[@]}" npm ci --no-audit --no-fund >"/tmp/hallpass-bench-npm.$$.log" 2>&1) ||
    { cat "/tmp/hallpass-bench-npm.$$.log" >&2; exit 1; }
  rm -f "/tmp/hallpass-bench-npm.$$.log"
  echo "$stamp" >"$dir/node_modules/.hallpass-bench-lock"
}
[ "$SLEEPLESS" != 0 ] && npm_ci bench/sleepless sleepless-sessions
[ "$BETTER_AUTH" != 0 ] && npm_ci bench/better-auth better-sqlite3
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
  # The settings a user gets: only the database, the address and the log format (JSON, whose
  # `hallpass listening` line carries the address) are set. SRV_ENV adds a labelled
  # variant's setting (HALLPASS_HASH_THREADS=1, RUST_LOG=off).
  local listen=127.0.0.1:0 quiet=0
  # With RUST_LOG=off the server logs no address: it gets a free port chosen here.
  case " ${SRV_ENV:-} " in *" RUST_LOG=off "*) quiet=1; listen=127.0.0.1:$(free_port) ;; esac
  env ${SRV_ENV:-} HALLPASS_DATABASE_URL=$url HALLPASS_LISTEN=$listen HALLPASS_LOG_FORMAT=json \
    "$BIN" serve >"$work/$name.out" 2>"$log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  local addr
  if [ $quiet = 1 ]; then addr=$(wait_port "$listen" "$SRV_PID"); else addr=$(wait_addr "$log" "$SRV_PID"); fi
  [ -n "$addr" ] || { echo "$name: server did not start" >&2; cat "$log" >&2; exit 1; }
  SRV_BASE="http://$addr"
  SRV_KEY=$(tail -n 1 "$work/$name.out")
  if [[ $SRV_KEY != hpk_* ]]; then
    SRV_KEY=$(HALLPASS_DATABASE_URL=$url "$BIN" keys create --scope default 2>/dev/null | tail -n 1)
  fi
}
# free_port: a port nobody listens on now (bound to 0 and released).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_port HOST:PORT PID: prints HOST:PORT once it accepts connections (60 s at most).
wait_port() {
  for _ in $(seq 1 600); do
    if python3 -c 'import socket, sys; h, p = sys.argv[1].split(":"); socket.create_connection((h, int(p)), 1).close()' "$1" 2>/dev/null; then
      echo "$1"; return
    fi
    kill -0 "$2" 2>/dev/null || return
    sleep 0.1
  done
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
# cpu_ticks PID: user + system CPU of PID so far, in clock ticks (1/100 s).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_since PID T0 FILE: appends the CPU seconds PID used since T0 ticks to FILE.
cpu_since() { echo "$(( $(cpu_ticks "$1") - $2 ))" >>"$3"; }
# db_pids URL: the PostgreSQL backends serving the database of URL (none for other
# backends: MariaDB is one shared process, SQLite runs inside the server).
db_pids() {
  case $1 in
    postgres://*) psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '${1##*/}'" || true ;;
  esac
}
# pids_ticks PID...: user + system CPU of the PIDs still alive, summed, in clock ticks.
pids_ticks() { local s=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && s=$(( s + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done; echo "$s"; }
api() { # api METHOD PATH [BODY] -> body on stdout
  curl -s -X "$1" "$SRV_BASE$2" -H "Authorization: Bearer $SRV_KEY" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
register() { api POST /v1/users "{\"username\":\"$1\",\"password\":\"$PASSWORD\"}" >/dev/null; }
login_token() {
  api POST /v1/sessions "{\"login\":\"$1\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
# register_logins PREFIX: registers LOGIN_USERS users PREFIX0.. and prints their names. The
# login loads log in as them in turn: the default account throttle reserves a place per
# attempt in flight (10 free), so more than 10 concurrent logins of ONE account are refused
# (429) by design; real logins come from many accounts.
LOGIN_USERS=32
register_logins() {
  local i
  for i in $(seq 0 $((LOGIN_USERS - 1))); do register "$1$i"; echo "$1$i"; done
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
  BARE_ADDR=$(wait_addr "$work/bare.log" "$BARE")
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
  echo "$url" >"$work/$name.url"; echo "$SRV_KEY" >"$work/$name.key"
  echo "$user" >"$work/$name.user"; echo "$token" >"$work/$name.token"
  register_logins "${user}l" >"$work/$name.users"
  # SQLite: the same server with its log off (RUST_LOG=off), on the same database, a third
  # party to the alternation: the cost of the default request log.
  local q_pid="" q_base=""
  if [ "$name" = sqlite ]; then
    local d_pid=$SRV_PID d_base=$SRV_BASE d_key=$SRV_KEY
    SRV_ENV=RUST_LOG=off start_server "${name}_logoff" "$url"
    q_pid=$SRV_PID q_base=$SRV_BASE
    SRV_PID=$d_pid SRV_BASE=$d_base SRV_KEY=$d_key
    : >"$work/${name}_logoff_get.cpu"
  fi
  say "$name: get-session vs bare axum${q_pid:+ and vs logging off}, 64 connections each, $ROUNDS alternating slices of ${SLICE_S}s"
  local a=() b=() c=() d=() e=()
  : >"$work/${name}_get.cpu"; : >"$work/${name}_bare.cpu"; : >"$work/${name}_login.cpu"
  local t0
  for r in $(seq 1 "$ROUNDS"); do
    if [ -n "$q_pid" ]; then
      t0=$(cpu_ticks "$q_pid")
      wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $token" --latency \
        "$q_base/v1/session" >"$work/${name}_logoff_get.$r.txt"
      cpu_since "$q_pid" "$t0" "$work/${name}_logoff_get.cpu"
      e+=("$work/${name}_logoff_get.$r.txt")
    fi
    t0=$(cpu_ticks "$SRV_PID")
    wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $token" --latency \
      "$SRV_BASE/v1/session" >"$work/${name}_get.$r.txt"
    cpu_since "$SRV_PID" "$t0" "$work/${name}_get.cpu"
    a+=("$work/${name}_get.$r.txt")
    t0=$(cpu_ticks "$BARE")
    wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $token" --latency \
      "http://$BARE_ADDR/v1/session" >"$work/${name}_bare.$r.txt"
    cpu_since "$BARE" "$t0" "$work/${name}_bare.cpu"
    b+=("$work/${name}_bare.$r.txt")
  done
  python3 "$ROOT/bench/report.py" wrkmany "${a[@]}" --cpu "$work/${name}_get.cpu" >"$RES/${name}_get.json"
  python3 "$ROOT/bench/report.py" wrkmany "${b[@]}" --cpu "$work/${name}_bare.cpu" >"$RES/${name}_bare.json"
  if [ -n "$q_pid" ]; then
    python3 "$ROOT/bench/report.py" wrkmany "${e[@]}" --cpu "$work/${name}_logoff_get.cpu" >"$RES/${name}_logoff_get.json"
    kill "$q_pid" 2>/dev/null || true; wait "$q_pid" 2>/dev/null || true
  fi
  say "$name: login (16 connections) vs raw Argon2id, $ROUNDS alternating slices of ${SLICE_S}s"
  login_lua "$work/login.lua" $(cat "$work/$name.users")
  local dbcpu=() pids d0
  for r in $(seq 1 "$ROUNDS"); do
    # The database's own CPU per login (PostgreSQL: the backends of this database,
    # read after a first slice has opened the pool's connections).
    pids=$(db_pids "$url" | tr '\n' ' ')
    d0=$(pids_ticks $pids)
    t0=$(cpu_ticks "$SRV_PID")
    wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/${name}_login.$r.txt"
    cpu_since "$SRV_PID" "$t0" "$work/${name}_login.cpu"
    [ -n "$pids" ] && echo "$(( $(pids_ticks $pids) - d0 ))" >>"$work/${name}_login.dbcpu"
    c+=("$work/${name}_login.$r.txt")
    "$T/argon2-rate" "$SLICE_S" >"$work/${name}_argon2.$r.json"
    d+=("$work/${name}_argon2.$r.json")
  done
  [ -s "$work/${name}_login.dbcpu" ] && dbcpu=(--dbcpu "$work/${name}_login.dbcpu")
  python3 "$ROOT/bench/report.py" wrkmany "${c[@]}" --cpu "$work/${name}_login.cpu" "${dbcpu[@]}" >"$RES/${name}_login.json"
  python3 "$ROOT/bench/report.py" argon2many "${d[@]}" >"$RES/${name}_argon2.json"
  if [ "$name" = sqlite ]; then
    say "$name: get-session (4 connections) while logins (32 connections) saturate the pool"
    # The checked session belongs to another user than the flood's: the flood's own
    # sessions pass the per-user cap (100) within a second and end its oldest.
    register satget
    token=$(login_token satget)
    wrk -t1 -c32 -d"$((DUR_S + 3))s" -s "$work/login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/sat_login.txt" &
    local lp=$!
    sleep 2
    get_session_wrk saturated_get "$token" 4
    wait "$lp" || true
    wrk2json "$work/sat_login.txt" >"$RES/saturated_login.json"
    say "$name: equal timing, $TIMING_SAMPLES samples of each kind"
    : >"$work/known.txt"
    # One user per reset sample (timing.py uses each once, as it does each unknown name).
    for i in $(seq 1 $((TIMING_SAMPLES + 10))); do register "timing$i"; echo "timing$i" >>"$work/known.txt"; done
    python3 "$ROOT/bench/timing.py" "$SRV_BASE" "$SRV_KEY" "$work/known.txt" "$TIMING_SAMPLES" >"$RES/timing.jsonl"
  fi
  mem "$SRV_PID" "$RES/${name}_mem.json"
  stop_server
  if [ "$name" = sqlite ]; then
    say "$name: the same saturation with HALLPASS_HASH_THREADS=1 (informative: one core left to get-session)"
    SRV_ENV=HALLPASS_HASH_THREADS=1 start_server "${name}_ht1" "$url"
    token=$(login_token satget)
    login_lua "$work/login.lua" $(cat "$work/$name.users")
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

# ---- sleepless-sessions side by side, on MariaDB -----------------------------------------
# Before the scale part, so MariaDB is not busy with the large database's background work.
# sleepless-sessions is a library: bench/sleepless/server.js serves its get_session and
# authenticate over node:http as a backend would, and wrk loads it exactly like hallpass.
if [ "$SLEEPLESS" != 0 ]; then
  db=bench_sleepless_$RUN_ID; MY_DBS+=("$db")
  say "sleepless-sessions over HTTP on MariaDB ($db) vs hallpass on MariaDB, $ROUNDS alternating slices of ${SLICE_S}s"
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
  node bench/sleepless/server.js "$db" 2>"$work/sleepless.log" &
  SL_PID=$!
  PIDS+=("$SL_PID")
  SL_ADDR=$(wait_addr "$work/sleepless.log" "$SL_PID")
  [ -n "$SL_ADDR" ] || { echo "sleepless server did not start" >&2; cat "$work/sleepless.log" >&2; exit 1; }
  # One session id, as hallpass is checked with one token; users u0..u999 in turn for logins.
  SL_SID=$(python3 -c 'import hashlib; print(hashlib.sha1(b"sid0").hexdigest())')
  curl -sf "http://$SL_ADDR/session" -H "X-Session-Id: $SL_SID" | grep -q '"session"' ||
    { echo "sleepless server: get_session did not find its session" >&2; exit 1; }
  {
    echo 'local i = 0'
    echo 'request = function()'
    echo '  i = i + 1'
    echo "  return wrk.format(\"POST\", \"/sessions\", {[\"Content-Type\"] = \"application/json\"}, '{\"login\":\"u' .. (i % 1000) .. '\",\"password\":\"$PASSWORD\"}')"
    echo 'end'
  } >"$work/sl_login.lua"
  # hallpass on its own MariaDB database (the small one of the HTTP figures), served again
  # and measured in slices alternating with sleepless-sessions'.
  h_ok=0
  if [ -f "$work/mysql.url" ]; then
    start_server mysql_again "$(cat "$work/mysql.url")"
    SRV_KEY=$(cat "$work/mysql.key"); h_ok=1
    login_lua "$work/h_login.lua" $(cat "$work/mysql.users")
    # The checked session belongs to a user of its own: the login slices log in as the
    # first user again and again, and its per-user cap (100) ends its oldest sessions.
    register "slget$RUN_ID"
    login_token "slget$RUN_ID" >"$work/mysql.token"
  fi
  sg=(); sa=(); ha=(); hl=()
  : >"$work/sl_get.cpu"; : >"$work/sl_login.cpu"
  for r in $(seq 1 "$ROUNDS"); do
    t0=$(cpu_ticks "$SL_PID")
    wrk -t2 -c64 -d"${SLICE_S}s" -H "X-Session-Id: $SL_SID" --latency "http://$SL_ADDR/session" >"$work/sl_get.$r.txt"
    cpu_since "$SL_PID" "$t0" "$work/sl_get.cpu"
    sg+=("$work/sl_get.$r.txt")
    if [ $h_ok = 1 ]; then
      wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $(cat "$work/mysql.token")" \
        --latency "$SRV_BASE/v1/session" >"$work/h_get.$r.txt"
      ha+=("$work/h_get.$r.txt")
    fi
    t0=$(cpu_ticks "$SL_PID")
    wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/sl_login.lua" --latency "http://$SL_ADDR/sessions" >"$work/sl_login.$r.txt"
    cpu_since "$SL_PID" "$t0" "$work/sl_login.cpu"
    sa+=("$work/sl_login.$r.txt")
    if [ $h_ok = 1 ]; then
      wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/h_login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/h_login.$r.txt"
      hl+=("$work/h_login.$r.txt")
    fi
  done
  python3 "$ROOT/bench/report.py" wrkmany "${sg[@]}" --cpu "$work/sl_get.cpu" >"$RES/sleepless_get.json"
  python3 "$ROOT/bench/report.py" wrkmany "${sa[@]}" --cpu "$work/sl_login.cpu" >"$RES/sleepless_login.json"
  mem "$SL_PID" "$RES/sleepless_mem.json"
  kill "$SL_PID" 2>/dev/null || true; wait "$SL_PID" 2>/dev/null || true
  if [ $h_ok = 1 ]; then
    python3 "$ROOT/bench/report.py" wrkmany "${ha[@]}" >"$RES/sleepless_hallpass_get.json"
    python3 "$ROOT/bench/report.py" wrkmany "${hl[@]}" >"$RES/sleepless_hallpass_login.json"
    stop_server
  fi
  cat "$RES/sleepless_get.json" "$RES/sleepless_login.json" >&2
fi

# ---- Better Auth side by side, on SQLite -------------------------------------------------
# Better Auth (bench/better-auth: pinned in its package-lock.json) on plain node:http with
# its own Node handler, SQLite through better-sqlite3, NODE_ENV=production, email and
# password on. Its default rate limiter keys clients by a forwarded-address header, which
# plain node:http has not, so every client shares one bucket per path: its defaults are
# measured in a row of their own, and the rate figures turn the limiter off (labelled).
BA_STALE_PID=""
if [ "$BETTER_AUTH" != 0 ]; then
  say "Better Auth $(node -p 'require("./bench/better-auth/node_modules/better-auth/package.json").version') on SQLite vs hallpass on SQLite, $ROUNDS alternating slices of ${SLICE_S}s"
  node -e 'const v = (p) => require(`./bench/better-auth/node_modules/${p}/package.json`).version;
    console.log(JSON.stringify({ node: process.version, "better-auth": v("better-auth"), "better-sqlite3": v("better-sqlite3") }))' >"$RES/ba_meta.json"
  BA_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  BA_EMAIL="bench$RUN_ID@bench.invalid"
  # start_ba NAME OPTIONS...: a Better Auth server on a database file of its own; sets BA_PID, BA_BASE.
  start_ba() {
    local name=$1; shift
    (cd bench/better-auth && NODE_ENV=production BETTER_AUTH_SECRET=$BA_SECRET \
      exec node server.mjs "$work/$name.db" "$@") 2>"$work/$name.log" &
    BA_PID=$!
    PIDS+=("$BA_PID")
    local addr
    addr=$(wait_addr "$work/$name.log" "$BA_PID")
    [ -n "$addr" ] || { echo "$name: Better Auth did not start" >&2; cat "$work/$name.log" >&2; exit 1; }
    BA_BASE="http://$addr"
  }
  # ba_check BASE COOKIE: fails unless get-session answers a session for COOKIE
  # (Better Auth answers 200 `null` for no session, which wrk alone would count as success).
  ba_check() {
    curl -s "$1/api/auth/get-session" -H "Cookie: $2" | grep -q '"session":{' ||
      { echo "Better Auth at $1: get-session does not answer the signed-in session" >&2; exit 1; }
  }
  ba_lua() { # ba_lua FILE EMAIL...: a wrk script signing in as the users in turn
    local f=$1; shift
    {
      echo 'local users = {'
      for u in "$@"; do echo "  \"$u\","; done
      echo '}'
      cat <<LUA
local i = 0
request = function()
  i = i + 1
  local body = '{"email":"' .. users[(i % #users) + 1] .. '","password":"$PASSWORD"}'
  return wrk.format("POST", "/api/auth/sign-in/email", {["Content-Type"] = "application/json"}, body)
end
LUA
    } >"$f"
  }
  # hallpass with its defaults, on the small SQLite database (a fresh one when SQLite was
  # not among BACKENDS), served again and measured in the same alternation.
  start_server sqlite_ba "sqlite://$work/small.db"
  H_PID=$SRV_PID
  register "bacmp$RUN_ID"
  H_TOKEN=$(login_token "bacmp$RUN_ID")
  login_lua "$work/h_ba_login.lua" $(register_logins "balogin${RUN_ID}_")
  # Better Auth: rate limiter off; the same with the cookie cache on.
  start_ba ba_nolimit --rate-limit off
  BA1_PID=$BA_PID BA1_BASE=$BA_BASE
  BA1_COOKIE=$(python3 bench/peers.py ba-cookie "$BA1_BASE" "$BA_EMAIL" "$PASSWORD" --signup)
  # Without the cookie cache only the session token is sent (its sign-in set no other).
  ba_check "$BA1_BASE" "$BA1_COOKIE"
  # Sign-ins as LOGIN_USERS users in turn, like hallpass's logins.
  ba_lua "$work/ba_login.lua" $(python3 bench/peers.py ba-signup-many "$BA1_BASE" "basign${RUN_ID}_" "$LOGIN_USERS" "$PASSWORD")
  start_ba ba_cache --rate-limit off --cookie-cache on
  BA2_PID=$BA_PID BA2_BASE=$BA_BASE
  python3 bench/peers.py ba-cookie "$BA2_BASE" "$BA_EMAIL" "$PASSWORD" --signup >/dev/null
  # The staleness figure, on a server of its own (cookie cache on, maxAge BA_CACHE_MAX_AGE
  # or Better Auth's default), polled in the background while the rest of the run goes on:
  # it takes up to maxAge. 100 ms polls of one idle process load the machine little.
  start_ba ba_stale --rate-limit off --cookie-cache on ${BA_CACHE_MAX_AGE:+--cache-max-age "$BA_CACHE_MAX_AGE"}
  BA3_PID=$BA_PID BA3_BASE=$BA_BASE
  python3 bench/peers.py ba-cookie "$BA3_BASE" "$BA_EMAIL" "$PASSWORD" --signup >/dev/null
  BA_STALE_MAX=$(( ${BA_CACHE_MAX_AGE:-300} + 15 ))
  python3 bench/peers.py stale-ba "$BA3_BASE" "$BA_EMAIL" "$PASSWORD" "$BA_STALE_MAX" >"$RES/ba_stale.json" 2>"$work/ba_stale.err" &
  BA_STALE_PID=$!
  PIDS+=("$BA_STALE_PID")
  python3 bench/peers.py stale-hallpass "$SRV_BASE" "$SRV_KEY" "bacmp$RUN_ID" "$PASSWORD" 10 >"$RES/hallpass_stale.json"
  H_TOKEN=$(login_token "bacmp$RUN_ID")

  # wrk's timeout at 10 s (not 2 s) on both sides: Better Auth's p99 passes 1 s on a busy machine.
  say "Better Auth: get-session (no cache; cookie cache) vs hallpass get-session, 64 connections"
  g1=(); g2=(); gh=()
  : >"$work/ba1_get.cpu"; : >"$work/ba2_get.cpu"; : >"$work/hba_get.cpu"
  for r in $(seq 1 "$ROUNDS"); do
    t0=$(cpu_ticks "$BA1_PID")
    wrk -t2 -c64 -d"${SLICE_S}s" --timeout 10s -H "Cookie: $BA1_COOKIE" --latency "$BA1_BASE/api/auth/get-session" >"$work/ba1_get.$r.txt"
    cpu_since "$BA1_PID" "$t0" "$work/ba1_get.cpu"
    g1+=("$work/ba1_get.$r.txt")
    # A fresh sign-in per slice: the cached session data in the cookie lasts maxAge.
    BA2_COOKIE=$(python3 bench/peers.py ba-cookie "$BA2_BASE" "$BA_EMAIL" "$PASSWORD")
    case $BA2_COOKIE in *better-auth.session_data=*) ;; *) echo "Better Auth: no cookie-cache cookie" >&2; exit 1 ;; esac
    ba_check "$BA2_BASE" "$BA2_COOKIE"
    t0=$(cpu_ticks "$BA2_PID")
    wrk -t2 -c64 -d"${SLICE_S}s" --timeout 10s -H "Cookie: $BA2_COOKIE" --latency "$BA2_BASE/api/auth/get-session" >"$work/ba2_get.$r.txt"
    cpu_since "$BA2_PID" "$t0" "$work/ba2_get.cpu"
    g2+=("$work/ba2_get.$r.txt")
    t0=$(cpu_ticks "$H_PID")
    wrk -t2 -c64 -d"${SLICE_S}s" --timeout 10s -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $H_TOKEN" --latency \
      "$SRV_BASE/v1/session" >"$work/hba_get.$r.txt"
    cpu_since "$H_PID" "$t0" "$work/hba_get.cpu"
    gh+=("$work/hba_get.$r.txt")
  done
  ba_check "$BA1_BASE" "$BA1_COOKIE"
  python3 "$ROOT/bench/report.py" wrkmany "${g1[@]}" --cpu "$work/ba1_get.cpu" >"$RES/ba_get.json"
  python3 "$ROOT/bench/report.py" wrkmany "${g2[@]}" --cpu "$work/ba2_get.cpu" >"$RES/ba_cache_get.json"
  python3 "$ROOT/bench/report.py" wrkmany "${gh[@]}" --cpu "$work/hba_get.cpu" >"$RES/ba_hallpass_get.json"

  # Slices of at least 10 s, and wrk's timeout at 10 s instead of 2 s: under 16 connections
  # a Better Auth sign-in takes most of a second (more on a busy machine), and wrk counts
  # only the requests that finished within its slice and its timeout.
  LS=$(( SLICE_S > 10 ? SLICE_S : 10 ))
  say "Better Auth: sign-in (16 connections) vs raw scrypt; hallpass login vs raw Argon2id, $ROUNDS alternating slices of ${LS}s"
  l1=(); sc=(); lh=(); ar=()
  : >"$work/ba1_login.cpu"; : >"$work/hba_login.cpu"
  for r in $(seq 1 "$ROUNDS"); do
    t0=$(cpu_ticks "$BA1_PID")
    wrk -t2 -c16 -d"${LS}s" --timeout 10s -s "$work/ba_login.lua" --latency "$BA1_BASE/api/auth/sign-in/email" >"$work/ba1_login.$r.txt"
    cpu_since "$BA1_PID" "$t0" "$work/ba1_login.cpu"
    l1+=("$work/ba1_login.$r.txt")
    (cd bench/better-auth && node scrypt-rate.mjs "$LS" 16) >"$work/scrypt.$r.json"
    sc+=("$work/scrypt.$r.json")
    t0=$(cpu_ticks "$H_PID")
    wrk -t2 -c16 -d"${LS}s" --timeout 10s -s "$work/h_ba_login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/hba_login.$r.txt"
    cpu_since "$H_PID" "$t0" "$work/hba_login.cpu"
    lh+=("$work/hba_login.$r.txt")
    "$T/argon2-rate" "$LS" >"$work/hba_argon2.$r.json"
    ar+=("$work/hba_argon2.$r.json")
  done
  python3 "$ROOT/bench/report.py" wrkmany "${l1[@]}" --cpu "$work/ba1_login.cpu" >"$RES/ba_login.json"
  python3 "$ROOT/bench/report.py" argon2many "${sc[@]}" >"$RES/ba_scrypt.json"
  python3 "$ROOT/bench/report.py" wrkmany "${lh[@]}" --cpu "$work/hba_login.cpu" >"$RES/ba_hallpass_login.json"
  python3 "$ROOT/bench/report.py" argon2many "${ar[@]}" >"$RES/ba_hallpass_argon2.json"
  mem "$BA1_PID" "$RES/ba_mem.json"
  mem "$BA2_PID" "$RES/ba_cache_mem.json"
  mem "$H_PID" "$RES/ba_hallpass_mem.json"
  kill "$BA1_PID" "$BA2_PID" 2>/dev/null || true; wait "$BA1_PID" "$BA2_PID" 2>/dev/null || true
  stop_server

  say "Better Auth with its defaults (rate limiter on): what 64 get-session and 16 sign-in connections get, ${LS}s each"
  start_ba ba_default
  BA0_COOKIE=$(python3 bench/peers.py ba-cookie "$BA_BASE" "$BA_EMAIL" "$PASSWORD" --signup)
  # Slices of at least 10 s: its default window is 10 s.
  wrk -t2 -c64 -d"${LS}s" -H "Cookie: $BA0_COOKIE" --latency "$BA_BASE/api/auth/get-session" >"$work/ba0_get.txt"
  ba_lua "$work/ba0_login.lua" "$BA_EMAIL"
  wrk -t2 -c16 -d"${LS}s" -s "$work/ba0_login.lua" --latency "$BA_BASE/api/auth/sign-in/email" >"$work/ba0_login.txt"
  for f in get login; do
    python3 - "$work/ba0_$f.txt" "$LS" "$work/ba_default.log" >"$RES/ba_default_$f.json" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from report import parse_wrk
w = parse_wrk(sys.argv[1])
w["ok"] = w["requests"] - w["non2xx"]
w["seconds"] = float(sys.argv[2])
w["shared_bucket_warning"] = "single shared per-path bucket" in open(sys.argv[3]).read()
print(json.dumps(w))
PY
  done
  kill "$BA_PID" 2>/dev/null || true; wait "$BA_PID" 2>/dev/null || true
fi

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
    su_var=SCALE_USERS_$b; ss_var=SCALE_SESSIONS_$b
    n_users=${!su_var:-$SCALE_USERS}; n_sessions=${!ss_var:-$SCALE_SESSIONS}
    say "scale $b: migrate, seed $n_users users and $n_sessions sessions"
    HALLPASS_DATABASE_URL=$url "$BIN" migrate >/dev/null
    "$T/seed" "$url" "$n_users" "$n_sessions" default >"$RES/scale_${b}_seed.json"
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
    # The small database of the same backend, served again beside the large one, so that
    # the two are measured in alternating slices.
    small_ok=0
    if [ -f "$work/$b.url" ]; then
      start_server "small_again_$b" "$(cat "$work/$b.url")"
      S_BASE=$SRV_BASE; S_PID=$SRV_PID; S_KEY=$(cat "$work/$b.key"); small_ok=1
      SRV_KEY=$S_KEY login_lua "$work/small_login.lua" $(cat "$work/$b.users")
    fi
    start_server "scale_$b" "$url"
    "$T/seed" tokens 10000 "$n_sessions" >"$work/tokens.txt"
    tokens_lua "$work/tokens.lua" "$work/tokens.txt"
    say "scale $b: get-session (10000 seeded tokens in turn; one token) vs the small database, 64 connections, $ROUNDS alternating slices of ${SLICE_S}s"
    ga=(); g1=(); gs=(); la=(); ls_=()
    for r in $(seq 1 "$ROUNDS"); do
      wrk -t2 -c64 -d"${SLICE_S}s" -s "$work/tokens.lua" --latency "$SRV_BASE/v1/session" >"$work/scale_get.$r.txt"
      ga+=("$work/scale_get.$r.txt")
      wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $(head -1 "$work/tokens.txt")" \
        --latency "$SRV_BASE/v1/session" >"$work/scale_get1.$r.txt"
      g1+=("$work/scale_get1.$r.txt")
      if [ $small_ok = 1 ]; then
        wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $S_KEY" -H "X-Session-Token: $(cat "$work/$b.token")" \
          --latency "$S_BASE/v1/session" >"$work/small_get.$r.txt"
        gs+=("$work/small_get.$r.txt")
      fi
    done
    python3 "$ROOT/bench/report.py" wrkmany "${ga[@]}" >"$RES/scale_${b}_get.json"
    python3 "$ROOT/bench/report.py" wrkmany "${g1[@]}" >"$RES/scale_${b}_get1.json"
    [ $small_ok = 1 ] && python3 "$ROOT/bench/report.py" wrkmany "${gs[@]}" >"$RES/scale_${b}_small_get.json"
    mem "$SRV_PID" "$RES/scale_${b}_mem_get.json"
    say "scale $b: login (1000 seeded users in turn) vs the small database, 16 connections, $ROUNDS alternating slices of ${SLICE_S}s"
    users=()
    for i in $(seq 0 999); do users+=("bench$(( (i * 7919 + 13) % n_users ))"); done
    login_lua "$work/scale_login.lua" "${users[@]}"
    for r in $(seq 1 "$ROUNDS"); do
      wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/scale_login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/scale_login.$r.txt"
      la+=("$work/scale_login.$r.txt")
      if [ $small_ok = 1 ]; then
        wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/small_login.lua" --latency "$S_BASE/v1/sessions" >"$work/small_login.$r.txt"
        ls_+=("$work/small_login.$r.txt")
      fi
    done
    python3 "$ROOT/bench/report.py" wrkmany "${la[@]}" >"$RES/scale_${b}_login.json"
    [ $small_ok = 1 ] && python3 "$ROOT/bench/report.py" wrkmany "${ls_[@]}" >"$RES/scale_${b}_small_login.json"
    mem "$SRV_PID" "$RES/scale_${b}_mem.json"
    stop_server
    if [ $small_ok = 1 ]; then kill "$S_PID" 2>/dev/null || true; wait "$S_PID" 2>/dev/null || true; fi
    # Free the database server before the next figure.
    case $b in
      sqlite) rm -f "$work"/scale.db* ;;
      postgres) psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null ;;
      mysql) mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $db" ;;
    esac
  done
fi

# ---- report ------------------------------------------------------------------------------
if [ -n "$BA_STALE_PID" ]; then
  say "Better Auth staleness: waiting for the poll (up to ${BA_STALE_MAX}s after its sign-out)"
  wait "$BA_STALE_PID" || { cat "$work/ba_stale.err" >&2; exit 1; }
  kill "$BA3_PID" 2>/dev/null || true; wait "$BA3_PID" 2>/dev/null || true
  python3 -c 'import json, sys; print(json.dumps({"max_age_s": int(sys.argv[1]), "explicit": sys.argv[2] != ""}))' \
    "${BA_CACHE_MAX_AGE:-300}" "$BA_CACHE_MAX_AGE" >"$RES/ba_stale_setting.json"
fi
python3 -c 'import json; print(json.dumps({"load_after": open("/proc/loadavg").read().split()[:3]}))' >"$RES/meta_after.json"
mkdir -p "$(dirname "$RESULTS")"
python3 "$ROOT/bench/report.py" write "$RES" "$RESULTS"
RAW=$(dirname "$RESULTS")/raw
rm -rf "$RAW" && mkdir -p "$RAW" && cp "$RES"/* "$RAW"/
say "wrote $RESULTS"
