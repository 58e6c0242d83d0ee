#!/usr/bin/env bash
# The side-by-side table: wsbridge against tungstenite (thread per connection), tokio-tungstenite
# (current_thread) and a raw TCP echo (no WebSocket: the ceiling), on this machine, in one run.
#
#   benches/compare.sh [RUNS] [SECONDS]        defaults: 5 runs of 5 s per point
#
# Each server runs pinned to core 0 and is driven from core 1 by the same generator
# (`wsbridge bench`, keeping one message in flight per connection and checking every echo).
# Servers are interleaved run by run (A B C D A B C D ...) so machine noise hits all alike; the
# table gives medians, each peer's rate as a ratio of wsbridge's, and the server's CPU seconds
# per million messages measured over the same window. Raw results: target/compare/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
seconds=${2:-5}
scenarios=("100 20" "10 1024" "10 16384" "1 65536")
servers=(wsbridge tungstenite tokio-tungstenite raw-tcp)

cargo build --release --quiet --bin wsbridge --example tungstenite_echo \
  --example tokio_tungstenite_echo --example raw_tcp_echo
out=target/compare
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

# shellcheck source=benches/servers.sh
source benches/servers.sh

for scenario in "${scenarios[@]}"; do
  read -r conns size <<<"$scenario"
  for run in $(seq "$runs"); do
    for server in "${servers[@]}"; do
      start_server "$server" "$out/$server.log" taskset -c 0
      extra=()
      [ "$server" = raw-tcp ] && extra=(--raw-tcp)
      line=$(taskset -c 1 target/release/wsbridge bench "ws://$addr/" \
        --connections "$conns" --size "$size" --duration "$seconds" --warmup 1 \
        --server-pid "$pid" --json "${extra[@]}")
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "{\"server\":\"$server\",\"run\":$run,\"bench\":$line}" >>"$results"
      printf '%-18s %5s x %-6s run %s: %s\n' "$server" "$conns" "$size" "$run" \
        "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f msg/s, server CPU %.2f s per million" % (d["msgs_per_s"], d["server_cpu_s_per_million"]))' "$line")"
    done
  done
done
python3 benches/compare_table.py "$results"
