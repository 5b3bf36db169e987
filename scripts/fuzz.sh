#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a short while (default 10 s each; the first
# argument changes it). Needs the nightly toolchain and cargo-fuzz; without them it says so
# and exits 0 (CI machines without nightly skip fuzzing, they do not fail on it).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); skipping the fuzz targets" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing (cargo install cargo-fuzz); skipping the fuzz targets" >&2
  exit 0
fi
cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
  echo "fuzz.sh: $target for ${seconds}s" >&2
  cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=1024 -print_final_stats=0 2>&1 \
    | grep -E '^(Done|==[0-9]+==|SUMMARY|thread .* panicked|artifact_prefix|Test unit)' || true
  # cargo-fuzz exits non-zero on a crash; `set -o pipefail` would hide it behind grep.
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz.sh: $target found a crash: $(ls "artifacts/$target")" >&2
    exit 1
  fi
done
