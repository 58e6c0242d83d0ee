#!/usr/bin/env bash
# Runs the libsql remote-mode tests: the real `libsql` crate (pinned in this directory's
# Cargo.lock) over http:// against the wsbridge binary.
# Usage: tests/libsql_remote/run.sh [cargo test args]   (from anywhere; needs cargo)
# WSBRIDGE_BIN=path/to/wsbridge uses that binary instead of building a debug one.
# CARGO_TARGET_DIR defaults to tests/libsql_remote/target (not the main crate's target).
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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
WSBRIDGE_BIN="$bin" exec cargo test --release --locked "$@"
