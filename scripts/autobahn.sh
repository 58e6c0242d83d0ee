#!/usr/bin/env bash
# Run the Autobahn TestSuite's own cases (through the PyPI package `kosoku`) against the release
# server's echo route, and judge groups 1-10 from index.json.
#
#   scripts/autobahn.sh [OUTDIR]          default OUTDIR: target/autobahn/server
#
# Environment: KOSOKU_ARGS adds arguments (e.g. "-i 6.*" to run one group); WSBRIDGE_BIN names
# an already built release binary (CI passes the one `cargo test --release` built, which a plain
# `cargo build` would compile again with the features resolved without dev-dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/autobahn/server}
scripts/venv.sh >/dev/null
if [ -z "${WSBRIDGE_BIN:-}" ]; then
  cargo build --release --quiet --bin wsbridge
  WSBRIDGE_BIN=target/release/wsbridge
fi
rm -rf "$out" && mkdir -p "$out"
log=$out/server.log
"$WSBRIDGE_BIN" serve --listen 127.0.0.1:0 --no-auth --db :memory: >"$out/server.out" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's/.* listening on \(.*\)$/\1/p' "$out/server.out")
  [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || { echo "server did not start"; cat "$log"; exit 1; }
# kosoku exits 1 whenever a case is not OK, UNIMPLEMENTED included: judge from index.json.
# shellcheck disable=SC2086
.venv-autobahn/bin/kosoku -m fuzzingclient "$addr" -p 4 -o "$out" ${KOSOKU_ARGS:-} >"$out/kosoku.log" 2>&1 || true
[ -f "$out/index.json" ] || { echo "kosoku wrote no index.json"; tail -20 "$out/kosoku.log"; exit 1; }
kill -TERM $server
wait $server || { echo "server exited with status $?"; exit 1; }
trap - EXIT
python3 scripts/autobahn-summary.py "$out/index.json" autobahn
