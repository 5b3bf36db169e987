#!/usr/bin/env bash
# The Node client @hallpass/client (clients/node): checks that its generated types
# (src/schema.ts) are what docs/openapi.json generates with the pinned openapi-typescript,
# compiles it, and runs its tests (node --test) against the debug `hallpass` binary, which
# they start themselves (port 0): once on fresh SQLite databases, once on fresh PostgreSQL
# databases (127.0.0.1:5432, user postgres; each made and dropped by the tests).
#
# Needs clients/node/node_modules: scripts/setup.sh installs it (npm ci). Without it this
# fails (it never skips quietly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -d clients/node/node_modules/openapi-typescript ]; then
  echo "node-client-test: clients/node/node_modules is missing; run scripts/setup.sh" >&2
  exit 1
fi
cargo build --quiet -p hallpass-server --bin hallpass
export HALLPASS_BIN=$TARGET/debug/hallpass
cd clients/node
npm run --silent check-generated
echo "node-client-test: on SQLite" >&2
npm test --silent
echo "node-client-test: on PostgreSQL" >&2
HALLPASS_TEST_BACKEND=postgres node --test --test-concurrency=1 test/*.test.mjs
