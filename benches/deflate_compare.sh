#!/usr/bin/env bash
# permessage-deflate echo, wsbridge against uWebSockets (../shared/peers/uws, optional), in one
# interleaved run. Two paths, as uWS's own tools allow:
#   inflate: uWS's load_test with DEFLATE=1 sends a pre-compressed message and expects the echo
#            uncompressed: `bench_echo PORT inflate` against `wsbridge serve --deflate inflate-only`;
#   both ways: `wsbridge bench --deflate` (compresses every message, inflates every echo) against
#            `bench_echo PORT deflate` (shared compressor, no context takeover) and wsbridge
#            (per-connection compressor, context takeover).
#
#   benches/deflate_compare.sh [RUNS] [SECONDS]      defaults: 5 runs of 5 s per point
#
# Servers on core 0, generators on core 1; medians and server CPU seconds per million messages
# (from /proc/PID/stat over the measured window). Raw lines: target/deflate-compare/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
seconds=${2:-5}
uws=${UWS_DIR:-../shared/peers/uws}
[ -x "$uws/bench_echo" ] || { echo "no $uws/bench_echo: nothing to compare with"; exit 0; }
cargo build --release --quiet --bin wsbridge
out=target/deflate-compare
mkdir -p "$out"
results=$out/results.txt
: >"$results"
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start() { # name port -> $pid
  case $1 in
    uws-inflate) taskset -c 0 "$uws/bench_echo" "$2" inflate >/dev/null 2>&1 & ;;
    uws-deflate) taskset -c 0 "$uws/bench_echo" "$2" deflate >/dev/null 2>&1 & ;;
    wsbridge-inflate) taskset -c 0 target/release/wsbridge serve --listen "127.0.0.1:$2" --no-auth \
      --db :memory: --allow-host server.example.com --deflate inflate-only >/dev/null 2>&1 & ;;
    wsbridge) taskset -c 0 target/release/wsbridge serve --listen "127.0.0.1:$2" --no-auth \
      --db :memory: --deflate on >/dev/null 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return 0; sleep 0.05; done
  echo "$1 did not start" >&2; return 1
}

port=7900
for run in $(seq "$runs"); do
  # The inflate path, uWS's generator: 10 connections x 1 KiB.
  for server in uws-inflate wsbridge-inflate; do
    port=$((port + 1)); start "$server" "$port"
    c0=$(cpu_ticks "$pid")
    # load_test prints a rate every 4 s: the second one covers a full window after warming up.
    line=$(timeout 10 stdbuf -oL taskset -c 1 "$uws/load_test" 10 127.0.0.1 "$port" 0 1 1024 2>/dev/null \
      | grep "Msg/sec" | sed -n 2p || true)
    c1=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rate=$(echo "$line" | grep -o '[0-9.]*' | head -1)
    echo "inflate 10x1KiB load_test $server run $run: ${rate:-0} msg/s, server CPU $(( (c1 - c0) * 10 / tick ))% of one core over the 10 s" | tee -a "$results"
  done
  # Both ways, wsbridge's generator: text messages of 1 KiB and 16 KiB.
  for size in 1024 16384; do
    for server in uws-deflate wsbridge; do
      port=$((port + 1)); start "$server" "$port"
      json=$(taskset -c 1 target/release/wsbridge bench "ws://127.0.0.1:$port/" --connections 10 \
        --size "$size" --text --deflate --duration "$seconds" --warmup 1 --server-pid "$pid" --json)
      kill "$pid"; wait "$pid" 2>/dev/null || true
      python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("both-ways 10x%s bench %s run %s: %.0f msg/s, cpu %.2f s per million" % (sys.argv[2], sys.argv[3], sys.argv[4], d["msgs_per_s"], d["server_cpu_s_per_million"]))' \
        "$json" "$size" "$server" "$run" | tee -a "$results"
    done
  done
done
python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+ \S+) \S+ (\S+) run \d+: ([0-9.]+) msg/s", line)
    if m:
        rows.setdefault((m.group(1), m.group(2)), []).append(float(m.group(3)))
print("\n| scenario | server | median msg/s | runs |\n|---|---|---|---|")
for (scenario, server), rates in sorted(rows.items()):
    print(f"| {scenario} | {server} | {statistics.median(rates):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |")
PY
