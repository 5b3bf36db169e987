#!/usr/bin/env bash
# The browser test of the admin web page: a real `hallpass serve` on a temporary SQLite
# file (port 0), whose admin, API key, users and logins are made through the CLI and the
# HTTP API, then tests/browser/admin.mjs walks the admin page in Debian's Chromium
# (playwright-core) and saves a screenshot of every page under target/screenshots/.
#
# Needs /usr/bin/chromium and tests/browser/node_modules: scripts/setup.sh installs both.
# Without them the test fails (it never skips quietly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-test: /usr/bin/chromium is missing; run scripts/setup.sh" >&2
  exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "browser-test: playwright-core is missing; run scripts/setup.sh (npm ci in tests/browser)" >&2
  exit 1
fi

cargo build --quiet -p hallpass-server --bin hallpass
BIN=$TARGET/debug/hallpass

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export HALLPASS_DATABASE_URL="sqlite://$WORK/hallpass.db"
export HALLPASS_LISTEN=127.0.0.1:0
export HALLPASS_LOG_FORMAT=json
unset HALLPASS_CONFIG HALLPASS_PUBLIC_URL HALLPASS_ADMIN_SECURE_COOKIES

ADMIN_USER=root
ADMIN_PASSWORD="Quartz-Lantern-Meadow-42"
ALICE_PASSWORD="Velvet-Trombone-Harbor-77"

# The admin through the CLI, the password on stdin; an API key of scope `shop`.
printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" admin create --username "$ADMIN_USER"
API_KEY=$("$BIN" keys create --scope shop --name "browser test" | tail -n 1)
# A scope with a key and no login: its dashboard chart must say that it is empty.
"$BIN" keys create --scope quiet --name "no logins" >/dev/null

"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 100); do
  ADDR=$(grep -o '"addr":"[^"]*"' "$WORK/serve.log" 2>/dev/null | head -n 1 | cut -d'"' -f4 || true)
  [ -n "$ADDR" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/serve.log" >&2; echo "browser-test: server exited" >&2; exit 1; fi
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/serve.log" >&2; echo "browser-test: server did not start" >&2; exit 1; }
BASE="http://$ADDR"
echo "browser-test: hallpass on $BASE" >&2

api() { curl -sS --fail-with-body -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' "$@"; }
# Users through the API, one with a group and extra data; a few logins and failures.
api -X POST "$BASE/v1/users" -d "{\"username\":\"alice\",\"email\":\"alice@example.com\",\"password\":\"$ALICE_PASSWORD\",\"group\":\"staff\",\"extra\":{\"plan\":\"pro\"}}" >/dev/null
for name in bob carol dave erin; do
  api -X POST "$BASE/v1/users" -d "{\"username\":\"$name\",\"email\":\"$name@example.org\",\"password\":\"$ALICE_PASSWORD-$name\"}" >/dev/null
done
api -X POST "$BASE/v1/sessions" -d "{\"login\":\"bob\",\"password\":\"$ALICE_PASSWORD-bob\"}" >/dev/null
curl -sS -o /dev/null -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -X POST "$BASE/v1/sessions" -d '{"login":"alice","password":"not-her-password"}'
# The API login the browser test must find on alice's page (ip and user agent as reported).
ALICE_TOKEN=$(api -X POST "$BASE/v1/sessions" \
  -d "{\"login\":\"alice\",\"password\":\"$ALICE_PASSWORD\",\"client\":{\"ip\":\"203.0.113.7\",\"user_agent\":\"BrowserTest-UA/1.0\"}}" \
  | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$ALICE_TOKEN" ] || { echo "browser-test: the API login failed" >&2; exit 1; }

mkdir -p "$TARGET/screenshots"
BASE="$BASE" API_KEY="$API_KEY" ALICE_TOKEN="$ALICE_TOKEN" ADMIN_USER="$ADMIN_USER" ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  SCREENSHOTS="$TARGET/screenshots" node tests/browser/admin.mjs
echo "browser-test: passed; screenshots in $TARGET/screenshots" >&2
