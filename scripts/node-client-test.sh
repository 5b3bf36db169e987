#!/usr/bin/env bash
# The Node client @hallpass/client (clients/node): checks that its generated types
# (src/schema.ts) are what docs/openapi.json generates with the pinned openapi-typescript,
# compiles it, and runs its tests (node --test) against the debug `hallpass` binary, which
# they start themselves (fresh SQLite databases, port 0).
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
npm test --silent
