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
# SQLite is compiled in (rusqlite, bundled); PostgreSQL and MariaDB run on the machine.

# schemathesis (scripts/schemathesis.sh) in a project-local virtualenv, pinned.
SCHEMATHESIS_VERSION=4.32.5
VENV=.venv-tools
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  if ! need_cmd python3; then
    echo "setup: python3 is missing; it is needed for schemathesis" >&2
    exit 1
  fi
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# aiosmtpd: the real SMTP server the mail tests start on 127.0.0.1
# (crates/hallpass-server/tests/smtp/sink.py), in the same virtualenv, pinned. The tests
# skip without it, except under CI=true, where a missing sink fails them.
AIOSMTPD_VERSION=1.4.6
if ! "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
  echo "setup: installing aiosmtpd $AIOSMTPD_VERSION into $VENV" >&2
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi

# cryptography: the sink makes a throw-away CA and server certificate at test time for the
# STARTTLS and smtps:// tests (tests/smtp/sink.py --tls), in the same virtualenv, pinned.
CRYPTOGRAPHY_VERSION=48.0.0
if ! "$VENV/bin/python" -c "import cryptography, sys; sys.exit(cryptography.__version__ != '$CRYPTOGRAPHY_VERSION')" 2>/dev/null; then
  echo "setup: installing cryptography $CRYPTOGRAPHY_VERSION into $VENV" >&2
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cryptography==$CRYPTOGRAPHY_VERSION"
fi

# cargo-fuzz (scripts/fuzz.sh), only where the nightly toolchain it needs is installed.
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz" >&2
  cargo install --quiet --locked cargo-fuzz
fi

# The Debian package (scripts/package.sh, tested by scripts/package-test.sh): cargo-deb
# builds it, dpkg-deb is what cargo-deb and the test call, adduser is what the package's
# postinst runs. Pinned, like schemathesis: scripts/package.sh --debug relies on its
# accepting the dev profile, which it warns may end.
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  echo "setup: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
if ! need_cmd dpkg-deb || ! need_cmd adduser; then
  echo "setup: installing dpkg and adduser (for the Debian package test)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dpkg adduser >/dev/null; }; then
    echo "setup: installing dpkg and adduser failed" >&2
    exit 1
  fi
fi

# The browser test (scripts/browser-test.sh): Debian's Chromium driven by playwright-core
# from npm (Playwright's own browser download does not work here). Under CI=true a missing
# browser or a failed install is an error, never a skip.
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian chromium (for the browser test)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "setup: installing chromium failed" >&2
    exit 1
  fi
fi
if ! need_cmd npm; then
  echo "setup: npm is missing; it is needed for the browser test (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
# npm ci when node_modules is missing or older than the lock file.
BROWSER_DIR=tests/browser
if [ ! -d "$BROWSER_DIR/node_modules" ] || [ "$BROWSER_DIR/package-lock.json" -nt "$BROWSER_DIR/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in $BROWSER_DIR" >&2
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --silent)
fi

# The OIDC sign-in tests (crates/hallpass-server/tests/oidc.rs): a real OpenID provider,
# `oidc-provider` pinned by tests/oidc/package-lock.json, run by node. Under CI=true the
# tests fail without it; here a failed install is an error too.
OIDC_DIR=tests/oidc
if [ ! -d "$OIDC_DIR/node_modules" ] || [ "$OIDC_DIR/package-lock.json" -nt "$OIDC_DIR/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in $OIDC_DIR" >&2
  (cd "$OIDC_DIR" && npm ci --no-audit --no-fund --silent)
fi

# The Node client (clients/node, scripts/node-client-test.sh): TypeScript, openapi-typescript
# (which generates its types from docs/openapi.json) and the `sleepless` package the
# sleepless-sessions test file uses, pinned by clients/node/package-lock.json.
NODE_CLIENT_DIR=clients/node
if [ ! -d "$NODE_CLIENT_DIR/node_modules" ] || [ "$NODE_CLIENT_DIR/package-lock.json" -nt "$NODE_CLIENT_DIR/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in $NODE_CLIENT_DIR" >&2
  (cd "$NODE_CLIENT_DIR" && npm ci --no-audit --no-fund --silent)
fi
