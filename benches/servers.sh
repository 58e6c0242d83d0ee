# Sourced by benches/compare.sh and benches/idle_memory.sh: start one of the echo servers.
#
#   start_server NAME LOG [LAUNCHER...]     sets $pid and $addr
#
# NAME is wsbridge, tungstenite, tokio-tungstenite or raw-tcp, or (with $TLS_DIR holding
# cert.pem and key.pem) wsbridge-tls or tokio-tungstenite-tls; LAUNCHER is put before the
# program (e.g. `taskset -c 0`). The server binds port 0 (the kernel picks a free one, so a port
# left busy by an earlier run cannot stop this one) and the address it prints is read back.
start_server() {
  local name=$1 log=$2
  shift 2
  # Emptied here, not by the background job's redirection, which may run after the wait below
  # has already read the previous run's "listening on".
  : >"$log"
  case $name in
    wsbridge) "$@" target/release/wsbridge serve --listen 127.0.0.1:0 --no-auth --db :memory: >"$log" 2>&1 & ;;
    tungstenite) "$@" target/release/examples/tungstenite_echo 127.0.0.1:0 >"$log" 2>&1 & ;;
    tokio-tungstenite) "$@" target/release/examples/tokio_tungstenite_echo 127.0.0.1:0 >"$log" 2>&1 & ;;
    wsbridge-tls) "$@" target/release/wsbridge serve --listen 127.0.0.1:0 --no-auth --db :memory: \
      --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem" >"$log" 2>&1 & ;;
    tokio-tungstenite-tls) "$@" target/release/examples/tokio_tungstenite_tls_echo 127.0.0.1:0 \
      "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" >"$log" 2>&1 & ;;
    raw-tcp) "$@" target/release/examples/raw_tcp_echo 127.0.0.1:0 >"$log" 2>&1 & ;;
    *) echo "unknown server $name" >&2; return 1 ;;
  esac
  pid=$!
  for _ in $(seq 200); do
    addr=$(grep -o "listening on [0-9.:]*" "$log" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
    [ -n "$addr" ] && return 0
    sleep 0.02
  done
  echo "$name did not start" >&2
  cat "$log" >&2
  return 1
}
