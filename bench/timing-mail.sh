#!/usr/bin/env bash
# Equal timing of reset by mail (issue 16 point 4): POST /v1/password-resets
# {login, send_email: true} for unknown vs known logins, on a server with mail on
# (SQLite, the aiosmtpd sink of the mail tests taking the mails, the worker running).
#
#   bench/timing-mail.sh [BINARY] [SAMPLES]     (defaults: target/release/hallpass, 300)
#
# Registers SAMPLES + 10 users with emails (each known sample uses one once, as
# timing.py's reset pair does), then runs timing.py's reset_by_mail pair; prints its
# JSON line and how many mails the sink received. Needs scripts/setup.sh's .venv-tools.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/hallpass}
N=${2:-300}
W=$(mktemp -d /tmp/hallpass-timing-mail.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP_PORT=$(port); HTTP_PORT=$(port)
mkdir -p "$W/sink"; mkfifo "$W/fifo"
sleep 1000000 >"$W/fifo" & HOLD=$!
"$ROOT/.venv-tools/bin/python" "$ROOT/crates/hallpass-server/tests/smtp/sink.py" --port "$SMTP_PORT" --dir "$W/sink" <"$W/fifo" >"$W/sink.log" 2>&1 & SINK=$!
cleanup() { kill "${SRV:-}" "$SINK" "$HOLD" 2>/dev/null || true; }
trap cleanup EXIT
export HALLPASS_DATABASE_URL="sqlite://$W/db.sqlite" HALLPASS_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
  HALLPASS_LISTEN="127.0.0.1:$HTTP_PORT" HALLPASS_THROTTLE_KEY_RATE=0
"$BIN" migrate >/dev/null 2>&1
KEY=$("$BIN" keys create --scope default 2>/dev/null | tail -1)
"$BIN" serve >"$W/serve.log" 2>&1 & SRV=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.2; done
python3 - "$KEY" "$HTTP_PORT" $((N + 10)) "$W/mail.txt" <<'PY'
import http.client, json, sys
key, port, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
names = []
for i in range(n):
    c.request("POST", "/v1/users", json.dumps({"username": "mt%d" % i, "email": "mt%d@example.com" % i}), h)
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
    names.append("mt%d" % i)
open(out, "w").write("\n".join(names) + "\n")
PY
TIMING_ONLY=reset_by_mail python3 "$ROOT/bench/timing.py" "http://127.0.0.1:$HTTP_PORT" "$KEY" "$W/mail.txt" "$N" "$W/mail.txt"
sleep 2
echo "mails delivered: $(ls "$W/sink" | grep -c '\.eml$')"
