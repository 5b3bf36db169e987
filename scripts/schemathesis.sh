#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI document) against a live
# `hallpass serve` on a fresh SQLite database, and fails on any 5xx answer or any answer
# that does not match the document (body schema, status code, content type).
#
#   scripts/schemathesis.sh                      # the bounded run CI does (about 2 minutes)
#   SCHEMATHESIS_MAX_EXAMPLES=200 scripts/schemathesis.sh --seed 42   # longer; extra flags
#                                                                    # go to `schemathesis run`
#
# schemathesis itself lives in .venv-tools/ (scripts/setup.sh installs the pinned version).
# The report (JUnit and a pytest file reproducing any failure) goes to
# target/schemathesis/; the server's log to target/schemathesis/server.log.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --quiet --bin hallpass

out=target/schemathesis
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the bound address is read from the JSON log. Cheap Argon2: this run is about
# the shape of answers, not hashing cost.
env HALLPASS_DATABASE_URL="sqlite://$work/hallpass.db" \
  HALLPASS_LISTEN=127.0.0.1:0 \
  HALLPASS_LOG_FORMAT=json \
  HALLPASS_ARGON2_MEMORY_KIB=256 \
  HALLPASS_ARGON2_ITERATIONS=1 \
  RUST_LOG="${RUST_LOG:-info}" \
  "${CARGO_TARGET_DIR:-target}/debug/hallpass" serve >"$work/stdout" 2>"$out/server.log" &
server_pid=$!

addr=
for _ in $(seq 1 300); do
  addr=$(python3 - "$out/server.log" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("message") == "hallpass listening" or v.get("fields", {}).get("message") == "hallpass listening":
        print(v.get("addr") or v.get("fields", {}).get("addr", ""))
        break
PY
)
  [ -n "$addr" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "schemathesis.sh: hallpass exited before listening; its log:" >&2
    cat "$out/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "schemathesis.sh: hallpass did not log its address within 30 s" >&2
  exit 1
fi
# The first start prints "First API key ..." and the key alone on the next line.
key=$(grep -A1 '^First API key' "$work/stdout" | tail -n 1)
case "$key" in
  hpk_*) ;;
  *) echo "schemathesis.sh: no API key on stdout: $(cat "$work/stdout")" >&2; exit 1 ;;
esac
echo "schemathesis.sh: hallpass at http://$addr" >&2

# Seed data, so generated calls reach real users, sessions and links and not only 404 and
# 401: a user with a provider link and three sessions. schemathesis draws `{ref}`,
# `{provider}`, `{session_id}` and `X-Session-Token` from these values most of the time
# (dictionaries with a probability), and generates its own the rest of the time.
python3 - "http://$addr" "$key" "$work/schemathesis.toml" <<'PY'
import json, sys, urllib.request

base, key, config = sys.argv[1:4]

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Bearer " + key)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or b"null")

password = "quilted marsupial drumbeat 42"
user = call("POST", "/v1/users", {"username": "alice", "email": "alice@example.com", "password": password})
call("PUT", "/v1/users/alice/providers/github", {"client_id": "gh-42", "access_token": "t", "expires_in": 3600})
logins = [call("POST", "/v1/sessions", {"login": "alice", "password": password}) for _ in range(3)]
q = lambda s: json.dumps(s)
refs = [user["id"], "alice", "alice@example.com", "ALICE"]
with open(config, "w") as f:
    f.write(f"""
[dictionaries.refs]
values = [{", ".join(map(q, refs))}]
[dictionaries.providers]
values = ["github"]
[dictionaries.session_ids]
values = [{", ".join(q(l["session"]["id"]) for l in logins)}]
[dictionaries.tokens]
values = [{", ".join(q(l["token"]) for l in logins)}]

[parameters]
"path.ref" = {{ dictionary = "refs", probability = 0.7 }}
"path.provider" = {{ dictionary = "providers", probability = 0.7 }}
"path.session_id" = {{ dictionary = "session_ids", probability = 0.5 }}
"header.X-Session-Token" = {{ dictionary = "tokens", probability = 0.8 }}
""")
PY

# Every call carries the key (the OIDC callback and the public routes ignore it).
# `GET /v1/changes` is left out: it is an event stream that never ends by itself, so every
# call would run into the request timeout (tests/changes.rs covers it).
# Examples per operation and a time budget keep the run bounded on a small machine.
status=0
.venv-tools/bin/schemathesis --no-color --config-file "$work/schemathesis.toml" run "http://$addr/openapi.json" \
  --header "Authorization: Bearer $key" \
  --exclude-path /v1/changes \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
  --workers 2 \
  --request-timeout 10 \
  --suppress-health-check too_slow,filter_too_much \
  --report junit,pytest \
  --report-dir "$out" \
  --generation-database none \
  "$@" || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis.sh: hallpass died during the run; see $out/server.log" >&2
  exit 1
fi
# No secret the run handled may reach the log: keys, session tokens, codes, the password.
if grep -q -E 'hpk_|hps_|hpc_|quilted marsupial' "$out/server.log"; then
  echo "schemathesis.sh: a secret reached the server log (see $out/server.log)" >&2
  status=1
fi
if grep -q '"level":"ERROR"' "$out/server.log"; then
  echo "schemathesis.sh: the server logged errors (see $out/server.log):" >&2
  grep '"level":"ERROR"' "$out/server.log" | head -n 20 >&2
  status=1
fi
exit "$status"
