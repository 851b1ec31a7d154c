#!/usr/bin/env bash
# What one request costs mdbroker, guarded (the default) and --no-guard: CPU time (user and
# system), context switches (voluntary: it waited; involuntary: it was preempted, e.g. by the peer
# its send woke) and, with STRACE=1, system calls, each per request. One mdworker (echo), the
# Guide's mdclient (one request at a time, "sync") or mdclient2 (1,000 in flight, "async"), all
# without request ids. Guarded and --no-guard alternate, ROUNDS times; one line per run, then
# the medians.
#
#   cargo build --release -p majordomo --bins
#   majordomo/benches/broker-cost.sh [BIN_DIR=target/release] [ROUNDS=5] [SYNC_N=10000] [ASYNC_N=50000]
#   STRACE=1 majordomo/benches/broker-cost.sh target/release 1 3000 3000   # + syscalls (slow)
#
# CPU and switches come from /proc (clock ticks of 10 ms: use enough requests). Under strace
# the times and switches are strace's, not the broker's: read only its call counts then.
# Prints figures, never a verdict.
set -euo pipefail
BIN=${1:-target/release}; ROUNDS=${2:-5}; SYNC_N=${3:-10000}; ASYNC_N=${4:-50000}
TICK=$(getconf CLK_TCK)
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# user and system ticks, voluntary and involuntary switches (summed over the threads)
counters() {
  local u s
  read -r u s < <(awk '{ print $14, $15 }' "/proc/$1/stat")
  cat /proc/"$1"/task/*/status | awk -v u="$u" -v s="$s" '
    $1 == "voluntary_ctxt_switches:" { v += $2 } $1 == "nonvoluntary_ctxt_switches:" { n += $2 }
    END { print u, s, v, n }'
}
pids=()
results=$(mktemp)
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'cleanup; rm -f "$results"' EXIT
run() { # guard|no-guard sync|async
  local mode=$1 load=$2 n flag=() EP MB WK c0 c1 t0 t1 trace=""
  [ "$mode" = no-guard ] && flag=(--no-guard)
  n=$SYNC_N; [ "$load" = async ] && n=$ASYNC_N
  EP=tcp://127.0.0.1:$(port)
  if [ "${STRACE:-0}" = 1 ]; then
    trace=$(mktemp)
    strace -f -c -o "$trace" "$BIN/mdbroker" --bind "$EP" "${flag[@]}" >/dev/null 2>&1 &
    pids+=($!); sleep 0.5
    MB=$(pgrep -n -x mdbroker -P "${pids[-1]}")
  else
    "$BIN/mdbroker" --bind "$EP" "${flag[@]}" >/dev/null 2>&1 & MB=$!; pids+=("$MB")
  fi
  sleep 0.5
  "$BIN/mdworker" --broker "$EP" --no-request-ids >/dev/null 2>&1 & WK=$!; pids+=("$WK")
  sleep 0.5
  c0=$(counters "$MB"); t0=$(date +%s.%N)
  if [ "$load" = sync ]; then
    "$BIN/mdclient" --broker "$EP" --requests "$n" --no-request-ids >/dev/null 2>&1
  else
    "$BIN/mdclient2" --broker "$EP" --requests "$n" --no-request-ids >/dev/null 2>&1
  fi
  t1=$(date +%s.%N); c1=$(counters "$MB")
  kill -INT "$MB"; kill "$WK"; wait 2>/dev/null || true; pids=()
  calls=""
  if [ -n "$trace" ]; then
    calls=$(awk '$NF ~ /^(sendto|recvfrom|epoll_wait|read|write|writev)$/ { printf "%s=%s ", $NF, $4 }' "$trace")
    rm -f "$trace"
  fi
  echo "$mode $load $n $t0 $t1 $c0 $c1 $calls" >>"$results"
  report "$results" last
}
report() { # FILE last|medians
  python3 - "$TICK" "$2" "$1" <<'PY'
import statistics, sys
tick, what = int(sys.argv[1]), sys.argv[2]
runs = []
for line in open(sys.argv[3]):
    f = line.split()
    mode, load, n, t0, t1 = f[0], f[1], int(f[2]), float(f[3]), float(f[4])
    d = [b - a for a, b in zip(map(int, f[5:9]), map(int, f[9:13]))]
    runs.append({"mode": mode, "load": load, "rate": n / (t1 - t0),
                 "user": d[0] * 1e6 / tick / n, "sys": d[1] * 1e6 / tick / n,
                 "vol": d[2] / n, "invol": d[3] / n,
                 "calls": {k: int(v) / n for k, v in (c.split("=") for c in f[13:])}})
def show(r):
    line = (f"{r['mode']:8} {r['load']:5} req/s {r['rate']:7.0f}  CPU µs/req user {r['user']:5.1f}"
            f" sys {r['sys']:5.1f} total {r['user'] + r['sys']:5.1f}"
            f"  switches/req voluntary {r['vol']:4.2f} involuntary {r['invol']:4.2f}")
    if r["calls"]:
        line += "  syscalls/req " + " ".join(f"{k} {v:.2f}" for k, v in sorted(r["calls"].items()))
    return line
if what == "last":
    print(show(runs[-1]))
    sys.exit()
keys = list(dict.fromkeys((r["mode"], r["load"]) for r in runs))
for mode, load in keys:
    mine = [r for r in runs if (r["mode"], r["load"]) == (mode, load)]
    med = {k: statistics.median(r[k] for r in mine) for k in ("rate", "user", "sys", "vol", "invol")}
    med["calls"] = {k: statistics.median(r["calls"].get(k, 0) for r in mine) for k in mine[0]["calls"]}
    print(show({"mode": mode, "load": load, **med}))
PY
}
for _ in $(seq 1 "$ROUNDS"); do
  for load in sync async; do
    for mode in guard no-guard; do run "$mode" "$load"; done
  done
done
echo "medians over $ROUNDS rounds:"
report "$results" medians
