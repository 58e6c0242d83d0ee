#!/usr/bin/env bash
# The wss:// table: wsbridge's TLS (rustls 0.23 driven sans-IO on its loop) against
# tokio-tungstenite over tokio-rustls 0.26 (the same rustls, ring, on a current_thread runtime),
# with plain ws:// wsbridge beside them for what TLS costs. Same certificate (P-256 ECDSA, made
# here by openssl), TLS 1.3, the four sizes of benches/compare.sh.
#
#   benches/compare_tls.sh [RUNS] [SECONDS]        defaults: 5 runs of 5 s per point
#
# Servers run pinned to core 0, `wsbridge bench wss://` drives them from core 1, one message in
# flight per connection, every echo checked; runs are interleaved. The table gives medians, the
# ratio to wsbridge over TLS, and the server's CPU seconds per million messages.
# Raw results: target/compare-tls/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
seconds=${2:-5}
scenarios=("100 20" "10 1024" "10 16384" "1 65536")
servers=(wsbridge-tls tokio-tungstenite-tls wsbridge)

cargo build --release --quiet --bin wsbridge --example tokio_tungstenite_tls_echo
out=target/compare-tls
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"
TLS_DIR=$out
# A leaf certificate (CA:FALSE: webpki refuses a CA as the end entity), trusted by the generator.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>"$out/openssl.log"
export WSBRIDGE_CA_FILE=$TLS_DIR/cert.pem

# shellcheck source=benches/servers.sh
source benches/servers.sh

for scenario in "${scenarios[@]}"; do
  read -r conns size <<<"$scenario"
  for run in $(seq "$runs"); do
    for server in "${servers[@]}"; do
      start_server "$server" "$out/$server.log" taskset -c 0
      scheme=wss
      [ "$server" = wsbridge ] && scheme=ws
      line=$(taskset -c 1 target/release/wsbridge bench "$scheme://localhost:${addr##*:}/" \
        --connections "$conns" --size "$size" --duration "$seconds" --warmup 1 \
        --server-pid "$pid" --json)
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "{\"server\":\"$server\",\"run\":$run,\"bench\":$line}" >>"$results"
      printf '%-22s %5s x %-6s run %s: %s\n' "$server" "$conns" "$size" "$run" \
        "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f msg/s, server CPU %.2f s per million" % (d["msgs_per_s"], d["server_cpu_s_per_million"]))' "$line")"
    done
  done
done
python3 benches/compare_table.py "$results"
