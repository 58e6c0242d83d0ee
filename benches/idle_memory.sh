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
port=7400
for server in wsbridge tungstenite tokio-tungstenite; do
  port=$((port + 1))
  log=$(mktemp)
  case $server in
    wsbridge) target/release/wsbridge serve --listen "127.0.0.1:$port" --no-auth --db :memory: >"$log" 2>&1 & ;;
    tungstenite) target/release/examples/tungstenite_echo "127.0.0.1:$port" >"$log" 2>&1 & ;;
    tokio-tungstenite) target/release/examples/tokio_tungstenite_echo "127.0.0.1:$port" >"$log" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$log" && break; sleep 0.02; done
  printf '%-18s ' "$server"
  target/release/examples/idle_memory "ws://127.0.0.1:$port/echo" "$pid" "$n"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
done
