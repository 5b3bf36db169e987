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
