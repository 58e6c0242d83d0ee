#!/usr/bin/env bash
# Resident memory per idle upgraded connection: 10,000 connections (or $1) to wsbridge's echo
# route and to the peer servers, each measured from its own /proc/PID/status.
#
#   benches/idle_memory.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release --quiet --bin wsbridge --example idle_memory --example tungstenite_echo \
  --example tokio_tungstenite_echo
ulimit -n "$(ulimit -Hn)"
for server in wsbridge tungstenite tokio-tungstenite; do
  port=0 # the kernel picks a free port; the server prints the one it got
  log=$(mktemp)
  case $server in
    wsbridge) target/release/wsbridge serve --listen "127.0.0.1:$port" --no-auth --db :memory: >"$log" 2>&1 & ;;
    tungstenite) target/release/examples/tungstenite_echo "127.0.0.1:$port" >"$log" 2>&1 & ;;
    tokio-tungstenite) target/release/examples/tokio_tungstenite_echo "127.0.0.1:$port" >"$log" 2>&1 & ;;
  esac
  pid=$!
  addr=
  for _ in $(seq 200); do
    addr=$(grep -o "listening on [0-9.:]*" "$log" | head -1 | cut -d' ' -f3 || true)
    [ -n "$addr" ] && break
    sleep 0.02
  done
  printf '%-18s ' "$server"
  target/release/examples/idle_memory "ws://$addr/echo" "$pid" "$n"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
done
