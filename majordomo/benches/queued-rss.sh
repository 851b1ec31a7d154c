#!/usr/bin/env bash
# mdbroker's resident memory with N requests waiting for a service that has no worker (the Guide's
# mdclient2 case, 100,000 requests at once), with request ids (each waiting request is also a
# running entry of the dedup store) and without.
#
#   cargo build --release -p majordomo --bins
#   majordomo/benches/queued-rss.sh [BIN_DIR=target/release] [N=100000]
#
# Prints figures, never a verdict.
set -euo pipefail
BIN=${1:-target/release}; N=${2:-100000}
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for ids in on off; do
  EP=tcp://127.0.0.1:$(port)
  "$BIN/mdbroker" --bind "$EP" >/dev/null 2>&1 & MB=$!; pids+=("$MB")
  sleep 0.5
  start=$(kib "$MB" VmRSS)
  flag=(); [ "$ids" = off ] && flag=(--no-request-ids)
  "$BIN/mdclient2" --broker "$EP" --service nobody --requests "$N" --window "$N" \
    --timeout-ms 60000 "${flag[@]}" >/dev/null 2>&1 & pids+=($!)
  waiting=0
  for _ in $(seq 1 120); do
    sleep 0.5
    waiting=$("$BIN/mdadmin" --broker "$EP" 2>/dev/null | awk '$1 == "nobody" { print $4 }')
    [ "${waiting:-0}" -ge "$N" ] && break
  done
  echo "ids $ids: $waiting waiting; mdbroker RSS $start KiB at start, $(kib "$MB" VmRSS) KiB with them queued (peak $(kib "$MB" VmHWM) KiB)"
  cleanup; pids=()
done
