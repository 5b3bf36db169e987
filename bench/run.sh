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
#   TIMING_SAMPLES=300    samples of each kind for the equal-timing figures
#   RESULTS=bench/RESULTS.md  where the report goes (the raw figures go to raw/ beside it)
#
# Needs wrk (installed from Debian if missing), Node/npm (for sleepless-sessions), psql and
# mariadb clients, and the machine's PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
# (127.0.0.1:3306, root). Every database it creates has a unique name and is dropped at
# the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
ROOT=$PWD
COMMAND="bench/run.sh"
for v in DURATION ROUNDS SCALE SCALE_USERS SCALE_SESSIONS SCALE_BACKENDS BACKENDS SLEEPLESS TIMING_SAMPLES \
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
  local addr
  addr=$(wait_addr "$log" "$SRV_PID")
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
  say "$name: get-session vs bare axum, 64 connections each, $ROUNDS alternating slices of ${SLICE_S}s"
  local a=() b=() c=() d=()
  : >"$work/${name}_get.cpu"; : >"$work/${name}_bare.cpu"; : >"$work/${name}_login.cpu"
  local t0
  for r in $(seq 1 "$ROUNDS"); do
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
  say "$name: login (16 connections) vs raw Argon2id, $ROUNDS alternating slices of ${SLICE_S}s"
  login_lua "$work/login.lua" "$user"
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

# ---- sleepless-sessions side by side, on MariaDB -----------------------------------------
# Before the scale part, so MariaDB is not busy with the large database's background work.
if [ "$SLEEPLESS" != 0 ]; then
  db=bench_sleepless_$RUN_ID; MY_DBS+=("$db")
  say "sleepless-sessions on MariaDB ($db) vs hallpass on MariaDB, 64 concurrent calls, $ROUNDS alternating slices of ${SLICE_S}s"
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
  # hallpass on its own MariaDB database (the small one of the HTTP figures), served again
  # and measured in slices alternating with sleepless-sessions'.
  h_ok=0
  if [ -f "$work/mysql.url" ]; then
    start_server mysql_again "$(cat "$work/mysql.url")"
    SRV_KEY=$(cat "$work/mysql.key"); h_ok=1
    login_lua "$work/h_login.lua" "$(cat "$work/mysql.user")"
    # The checked session belongs to a user of its own: the login slices log in as the
    # first user again and again, and its per-user cap (100) ends its oldest sessions.
    register "slget$RUN_ID"
    login_token "slget$RUN_ID" >"$work/mysql.token"
  fi
  na=(); ha=(); hl=()
  for r in $(seq 1 "$ROUNDS"); do
    node bench/sleepless/bench.js "$db" "$SLICE_S" 64 1000 10000 get >"$work/sl_get.$r.jsonl"
    na+=("$work/sl_get.$r.jsonl")
    if [ $h_ok = 1 ]; then
      wrk -t2 -c64 -d"${SLICE_S}s" -H "Authorization: Bearer $SRV_KEY" -H "X-Session-Token: $(cat "$work/mysql.token")" \
        --latency "$SRV_BASE/v1/session" >"$work/h_get.$r.txt"
      ha+=("$work/h_get.$r.txt")
    fi
    node bench/sleepless/bench.js "$db" "$SLICE_S" 64 1000 10000 auth >"$work/sl_auth.$r.jsonl"
    na+=("$work/sl_auth.$r.jsonl")
    if [ $h_ok = 1 ]; then
      wrk -t2 -c16 -d"${SLICE_S}s" -s "$work/h_login.lua" --latency "$SRV_BASE/v1/sessions" >"$work/h_login.$r.txt"
      hl+=("$work/h_login.$r.txt")
    fi
  done
  python3 "$ROOT/bench/report.py" nodemany "${na[@]}" >"$RES/sleepless.jsonl"
  if [ $h_ok = 1 ]; then
    python3 "$ROOT/bench/report.py" wrkmany "${ha[@]}" >"$RES/sleepless_hallpass_get.json"
    python3 "$ROOT/bench/report.py" wrkmany "${hl[@]}" >"$RES/sleepless_hallpass_login.json"
    stop_server
  fi
  cat "$RES/sleepless.jsonl" >&2
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
      SRV_KEY=$S_KEY login_lua "$work/small_login.lua" "$(cat "$work/$b.user")"
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
python3 -c 'import json; print(json.dumps({"load_after": open("/proc/loadavg").read().split()[:3]}))' >"$RES/meta_after.json"
mkdir -p "$(dirname "$RESULTS")"
python3 "$ROOT/bench/report.py" write "$RES" "$RESULTS"
RAW=$(dirname "$RESULTS")/raw
rm -rf "$RAW" && mkdir -p "$RAW" && cp "$RES"/* "$RAW"/
say "wrote $RESULTS"
