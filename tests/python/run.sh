#!/usr/bin/env bash
# Runs the Python tests: the real PyPI libsql-client (pinned in requirements.txt, installed into
# tests/python/.venv) over http:// against the wsbridge binary, and (test_tls.py) websockets and
# libsql-client over wss:// and https:// with throwaway certificates (needs the openssl CLI).
# Usage: tests/python/run.sh [pytest args]   (from anywhere; needs python3 >= 3.8 with venv, cargo)
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
venv="$here/.venv"
# (Re)install when the venv is missing or requirements.txt changed since the last install.
if [ ! -x "$venv/bin/python" ] || [ requirements.txt -nt "$venv/.installed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    touch "$venv/.installed"
fi
WSBRIDGE_BIN="$bin" exec "$venv/bin/python" -m pytest -p no:cacheprovider -v "$@"
