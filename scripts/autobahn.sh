#!/usr/bin/env bash
# Run the Autobahn TestSuite's own cases (through the PyPI package `kosoku`) against wsbridge,
# both ways, and judge all 517 cases (groups 1-13, permessage-deflate included) from each index.json:
#   server: kosoku -m fuzzingclient drives the release server's echo route;
#   client: kosoku -m fuzzingserver is driven by wsbridge's client (examples/autobahn_client.rs);
#   tls: as server, over TLS: kosoku has no TLS, so socat (Debian's) bridges each of its
#        connections to wsbridge's TLS port, verifying a certificate made for the run;
#   client-tls: as client, over TLS: wsbridge's client speaks wss:// to socat, which serves a
#        certificate made for the run (trusted through WSBRIDGE_CA_FILE) in front of kosoku.
#
#   scripts/autobahn.sh [server|client|both|tls|client-tls]   default: both; reports in target/autobahn/
#
# Environment: KOSOKU_ARGS adds arguments in server mode (e.g. "-i 6.*" to run one group);
# WSBRIDGE_BIN and AUTOBAHN_CLIENT_BIN name already built release binaries (CI passes those
# `cargo test --release` built, which a plain `cargo build` would compile again with the features
# resolved without dev-dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-both}
scripts/venv.sh >/dev/null
kosoku=.venv-autobahn/bin/kosoku
status=0

wait_for() { # file pattern
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# A certificate for localhost and 127.0.0.1 for one run, in DIR/cert.pem and DIR/key.pem. Not
# a CA (webpki refuses a CA certificate as a server's own), so each side trusts it as itself.
make_certificate() { # dir
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>"$1/openssl.log"
}

if [ "$mode" = server ] || [ "$mode" = both ]; then
  if [ -z "${WSBRIDGE_BIN:-}" ]; then
    cargo build --release --quiet --bin wsbridge
    WSBRIDGE_BIN=target/release/wsbridge
  fi
  out=target/autobahn/server
  rm -rf "$out" && mkdir -p "$out"
  # --deflate-compress-all: kosoku 0.1.0 hands a message sent uncompressed on a compressed
  # connection (RFC 7692 §6 allows it; wsbridge does it for small or incompressible messages)
  # to the case as text, and 12.x/13.x cases then fail on it ("Strings must be encoded before
  # hashing"); uWebSockets' echo with its replies uncompressed fails the same way.
  "$WSBRIDGE_BIN" serve --listen 127.0.0.1:0 --no-auth --db :memory: --deflate-compress-all \
    >"$out/server.out" 2>"$out/server.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  wait_for "$out/server.out" "listening on" || { echo "server did not start"; cat "$out/server.log"; exit 1; }
  addr=$(sed -n 's/.* listening on \(.*\)$/\1/p' "$out/server.out")
  # kosoku exits 1 whenever a case is not OK, UNIMPLEMENTED included: judge from index.json.
  # shellcheck disable=SC2086
  $kosoku -m fuzzingclient "$addr" -p 4 -o "$out" ${KOSOKU_ARGS:-} >"$out/kosoku.log" 2>&1 || true
  [ -f "$out/index.json" ] || { echo "kosoku wrote no index.json"; tail -20 "$out/kosoku.log"; exit 1; }
  kill -TERM $server
  wait $server || { echo "server exited with status $?"; exit 1; }
  trap - EXIT
  python3 scripts/autobahn-summary.py "$out/index.json" autobahn || status=1
fi

if [ "$mode" = tls ]; then
  if [ -z "${WSBRIDGE_BIN:-}" ]; then
    cargo build --release --quiet --bin wsbridge
    WSBRIDGE_BIN=target/release/wsbridge
  fi
  command -v socat >/dev/null || { echo "socat is needed (apt-get install socat)"; exit 1; }
  out=target/autobahn/tls
  rm -rf "$out" && mkdir -p "$out"
  make_certificate "$out"
  "$WSBRIDGE_BIN" serve --listen 127.0.0.1:0 --no-auth --db :memory: --deflate-compress-all \
    --tls-cert "$out/cert.pem" --tls-key "$out/key.pem" >"$out/server.out" 2>"$out/server.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  wait_for "$out/server.out" "listening on" || { echo "server did not start"; cat "$out/server.log"; exit 1; }
  tls_addr=$(sed -n 's/.* listening on \(.*\)$/\1/p' "$out/server.out")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # One TLS connection per kosoku connection; the certificate is verified against the one
  # made above (socat checks the peer's name against the address it connects to). nodelay on
  # both sides: without it Nagle's algorithm in socat held each small message back for a
  # delayed ACK, and the 12.x/13.x cases (thousands of small messages) took 11 times longer.
  socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,nodelay" \
    "OPENSSL:$tls_addr,cafile=$out/cert.pem,commonname=localhost,nodelay" 2>"$out/socat.log" &
  bridge=$!
  trap 'kill $server $bridge 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
  done
  # shellcheck disable=SC2086
  $kosoku -m fuzzingclient "127.0.0.1:$port" -p 4 -o "$out" ${KOSOKU_ARGS:-} >"$out/kosoku.log" 2>&1 || true
  [ -f "$out/index.json" ] || { echo "kosoku wrote no index.json"; tail -20 "$out/kosoku.log"; exit 1; }
  kill $bridge 2>/dev/null || true
  kill -TERM $server
  wait $server || { echo "server exited with status $?"; exit 1; }
  trap - EXIT
  python3 scripts/autobahn-summary.py "$out/index.json" autobahn-tls || status=1
fi

if [ "$mode" = client-tls ]; then
  if [ -z "${AUTOBAHN_CLIENT_BIN:-}" ]; then
    cargo build --release --quiet --example autobahn_client
    AUTOBAHN_CLIENT_BIN=target/release/examples/autobahn_client
  fi
  command -v socat >/dev/null || { echo "socat is needed (apt-get install socat)"; exit 1; }
  out=target/autobahn/client-tls
  rm -rf "$out" && mkdir -p "$out"
  make_certificate "$out"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $kosoku -m fuzzingserver "127.0.0.1:$port" -o "$out" >"$out/kosoku.log" 2>&1 &
  fuzzer=$!
  socat "OPENSSL-LISTEN:$tls_port,bind=127.0.0.1,fork,reuseaddr,nodelay,cert=$out/cert.pem,key=$out/key.pem,verify=0" \
    "TCP:127.0.0.1:$port,nodelay" 2>"$out/socat.log" &
  bridge=$!
  trap 'kill $fuzzer $bridge 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && (echo >/dev/tcp/127.0.0.1/"$tls_port") 2>/dev/null && break
    sleep 0.05
  done
  WSBRIDGE_CA_FILE="$out/cert.pem" "$AUTOBAHN_CLIENT_BIN" "wss://localhost:$tls_port" wsbridge 2>"$out/client.log" \
    || { echo "client runner failed"; tail "$out/client.log"; exit 1; }
  wait $fuzzer || true
  kill $bridge 2>/dev/null || true
  trap - EXIT
  [ -f "$out/index.json" ] || { echo "kosoku wrote no index.json"; tail -20 "$out/kosoku.log"; exit 1; }
  python3 scripts/autobahn-summary.py "$out/index.json" autobahn-client-tls || status=1
fi

if [ "$mode" = client ] || [ "$mode" = both ]; then
  if [ -z "${AUTOBAHN_CLIENT_BIN:-}" ]; then
    cargo build --release --quiet --example autobahn_client
    AUTOBAHN_CLIENT_BIN=target/release/examples/autobahn_client
  fi
  out=target/autobahn/client
  rm -rf "$out" && mkdir -p "$out"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $kosoku -m fuzzingserver "127.0.0.1:$port" -o "$out" >"$out/kosoku.log" 2>&1 &
  fuzzer=$!
  trap 'kill $fuzzer 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
  done
  "$AUTOBAHN_CLIENT_BIN" "ws://127.0.0.1:$port" wsbridge 2>"$out/client.log" || { echo "client runner failed"; tail "$out/client.log"; exit 1; }
  wait $fuzzer || true
  trap - EXIT
  [ -f "$out/index.json" ] || { echo "kosoku wrote no index.json"; tail -20 "$out/kosoku.log"; exit 1; }
  python3 scripts/autobahn-summary.py "$out/index.json" autobahn-client || status=1
fi
exit $status
