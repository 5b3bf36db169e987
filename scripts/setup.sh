#!/usr/bin/env bash
# Installs what building and testing hallpass needs beyond the Rust toolchain. Idempotent;
# quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_cmd() { command -v "$1" >/dev/null 2>&1; }

if ! need_cmd cargo; then
  echo "setup: cargo is missing; install Rust (rustup) first" >&2
  exit 1
fi
# Nothing beyond Rust is needed yet: SQLite is compiled in (rusqlite, bundled).
