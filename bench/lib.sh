# Shared by the bench scripts (sourced, not run).

# wait_addr LOG [PID]: prints the address a server logged as `{"addr":"HOST:PORT"}` (the
# real server in JSON mode and bare-axum both do), waiting up to 60 s; empty if it never
# came, or if PID (when given) exited first.
wait_addr() {
  local log=$1 pid=${2:-} addr=""
  for _ in $(seq 1 600); do
    addr=$(grep -o '"addr":"[^"]*"' "$log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    if [ -n "$pid" ]; then kill -0 "$pid" 2>/dev/null || break; fi
    sleep 0.1
  done
  echo "$addr"
}

# serve_bg DIR NAME URL: starts `$BIN serve` with the defaults on URL (port 0, JSON logs)
# in the background, logs in DIR/NAME.{out,log}, its pid in DIR/NAME.pid; prints the
# address. Called inside `$(...)`, the server is no job of the caller's shell: stop it with
# stop_servers DIR.
serve_bg() {
  local dir=$1 name=$2 url=$3
  HALLPASS_DATABASE_URL=$url HALLPASS_LISTEN=127.0.0.1:0 HALLPASS_LOG_FORMAT=json \
    "$BIN" serve >"$dir/$name.out" 2>"$dir/$name.log" &
  echo "$!" >"$dir/$name.pid"
  wait_addr "$dir/$name.log" "$!"
}

# stop_servers DIR: kills every server serve_bg started in DIR.
stop_servers() {
  local f
  for f in "$1"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
