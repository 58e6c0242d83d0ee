#!/usr/bin/env bash
# Runs the Node tests: the real @libsql/client (pinned in package-lock.json) against the
# wsbridge binary. Usage: tests/node/run.sh  (from anywhere; needs cargo, node >= 18, npm).
# WSBRIDGE_BIN=path/to/wsbridge uses that binary instead of building a debug one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -n "${WSBRIDGE_BIN:-}" ]; then
    bin="$(cd "$(dirname "$WSBRIDGE_BIN")" && pwd)/$(basename "$WSBRIDGE_BIN")"
else
    cargo build --quiet --manifest-path "$root/Cargo.toml" --bin wsbridge
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/wsbridge"
fi
cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
WSBRIDGE_BIN="$bin" node --test --test-reporter=spec
