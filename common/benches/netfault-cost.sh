#!/usr/bin/env bash
# What netfault costs in `pass`: Majordomo echo requests/s with the client connected to mdbroker
# directly and through a `netfault` process, sync (mdclient) and pipelined (mdclient2), in
# interleaved rounds of one run; plus the CPU time netfault and mdbroker spend per request, which
# outside load on a shared machine disturbs far less than the rates.
#
#   cargo build --release -p majordomo -p common --bins
#   common/benches/netfault-cost.sh [BIN_DIR=target/release] [SYNC_N=5000] [ASYNC_N=50000] [ROUNDS=5]
#
# Prints figures, never a verdict.
set -euo pipefail
BIN=${1:-target/release}; SYNC_N=${2:-5000}; ASYNC_N=${3:-50000}; ROUNDS=${4:-5}
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BROKER=tcp://127.0.0.1:$(port)
PROXY=tcp://127.0.0.1:$(port)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$BIN/mdbroker" --bind "$BROKER" >/dev/null 2>&1 & MB=$!; pids+=("$MB")
"$BIN/mdworker" --broker "$BROKER" --work-ms 0 >/dev/null 2>&1 & pids+=($!)
"$BIN/netfault" --listen "$PROXY" --to "$BROKER" </dev/null >/dev/null 2>&1 & NF=$!; pids+=("$NF")
# Wait until one request goes through the proxy (broker, worker and proxy all up).
for _ in $(seq 100); do
  "$BIN/mdclient" --broker "$PROXY" --requests 1 --timeout-ms 500 --retries 1 >/dev/null 2>&1 && break
  sleep 0.1
done

HZ=$(getconf CLK_TCK)
# User + system CPU time of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
calc() { python3 -c "print(f'{$1:$2}')"; }

# phase N ENDPOINT CLIENT: runs the client for N requests; sets RATE, NF_US and MB_US.
phase() {
  local n=$1 endpoint=$2 client=$3 t0 t1 nf0 mb0
  nf0=$(ticks "$NF"); mb0=$(ticks "$MB"); t0=$(date +%s.%N)
  "$BIN/$client" --broker "$endpoint" --requests "$n" >/dev/null 2>&1 || { echo "$client via $endpoint failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  RATE=$(calc "$n / ($t1 - $t0)" .0f)
  NF_US=$(calc "($(ticks "$NF") - $nf0) * 1e6 / $HZ / $n" .1f)
  MB_US=$(calc "($(ticks "$MB") - $mb0) * 1e6 / $HZ / $n" .1f)
}

echo "netfault cost: $ROUNDS rounds, $SYNC_N sync (mdclient) and $ASYNC_N pipelined (mdclient2) requests per phase"
printf '%-5s | %-34s | %-34s\n' "" "sync req/s: direct  proxied  ratio" "async req/s: direct  proxied  ratio"
all_sd=(); all_sp=(); all_ad=(); all_ap=(); all_sn=(); all_an=()
for round in $(seq "$ROUNDS"); do
  phase "$SYNC_N" "$BROKER" mdclient;  sd=$RATE; sb=$MB_US
  phase "$SYNC_N" "$PROXY" mdclient;   sp=$RATE; sn=$NF_US
  phase "$ASYNC_N" "$BROKER" mdclient2; ad=$RATE; ab=$MB_US
  phase "$ASYNC_N" "$PROXY" mdclient2;  ap=$RATE; an=$NF_US
  printf '%-5s | %19s %8s %5s | %20s %8s %5s | CPU µs/req: netfault sync %s async %s, mdbroker sync %s async %s\n' \
    "$round" "$sd" "$sp" "$(calc "$sp / $sd" .2f)" "$ad" "$ap" "$(calc "$ap / $ad" .2f)" "$sn" "$an" "$sb" "$ab"
  all_sd+=("$sd"); all_sp+=("$sp"); all_ad+=("$ad"); all_ap+=("$ap"); all_sn+=("$sn"); all_an+=("$an")
done
# Medians over the rounds: one burst of outside load moves a single round, not the median.
median() { python3 -c "import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
msd=$(median "${all_sd[@]}"); msp=$(median "${all_sp[@]}"); mad=$(median "${all_ad[@]}"); map=$(median "${all_ap[@]}")
printf 'median| %19.0f %8.0f %5.2f | %20.0f %8.0f %5.2f | CPU µs/req: netfault sync %s async %s\n' \
  "$msd" "$msp" "$(calc "$msp / $msd" .2f)" "$mad" "$map" "$(calc "$map / $mad" .2f)" \
  "$(median "${all_sn[@]}")" "$(median "${all_an[@]}")"
