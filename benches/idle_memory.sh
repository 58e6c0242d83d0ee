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
# shellcheck source=benches/servers.sh
source benches/servers.sh
for server in wsbridge tungstenite tokio-tungstenite; do
  log=$(mktemp)
  start_server "$server" "$log"
  printf '%-18s ' "$server"
  target/release/examples/idle_memory "ws://$addr/echo" "$pid" "$n"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
done
