#!/usr/bin/env bash
# Runs every test of hallpass: unit, conformance, HTTP and binary tests (cargo-nextest when
# present, else cargo test), then the doc tests, the library example, and schemathesis
# against a live server (scripts/schemathesis.sh), the Node client's tests
# (scripts/node-client-test.sh), and the browser test of the admin page
# (scripts/browser-test.sh), and the Debian package installed here and served from
# (scripts/package-test.sh).
# Installs what the tests need first (scripts/setup.sh), so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi
cargo test --workspace --doc
cargo run --quiet -p hallpass --example embedded >/dev/null
# The live server against its own OpenAPI document: no 5xx, no answer off the schema.
scripts/schemathesis.sh
# The Node client: its generated types match docs/openapi.json, then its tests against the
# debug binary.
scripts/node-client-test.sh
# The admin web page in Debian's Chromium (screenshots in target/screenshots/).
scripts/browser-test.sh
# The Debian package: built from the debug binary, installed, served from as the
# hallpass user, purged (needs root; under CI=true anything missing is a failure).
scripts/package-test.sh
