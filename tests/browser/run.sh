#!/usr/bin/env bash
# The browser test: Debian's Chromium, driven by playwright-core (no browser download), against a
# real wsbridge binary. Uses $WSBRIDGE_BIN, else target/release/wsbridge, else target/debug/wsbridge.
# Leaves screenshots in target/tty-browser.png (plain http), target/tty-browser-tls.png (https/wss)
# and target/sql-console.png (the SQL console beside the terminal).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tests/browser: /usr/bin/chromium is missing (Debian: apt-get install chromium)" >&2
    exit 1
  fi
fi
npm ci --no-audit --no-fund --loglevel=error
# One file at a time: each starts its own server and Chromium.
node --test --test-concurrency=1 terminal.test.mjs tls.test.mjs sql-console.test.mjs
