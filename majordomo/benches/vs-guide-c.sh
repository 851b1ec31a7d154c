#!/usr/bin/env bash
# The Guide's C Majordomo broker against ours, with the Guide's own C worker and C clients in
# every run: only the broker differs (the C mdbroker; our mdbroker guarded, as it runs by
# default; our mdbroker --no-guard). Optional, outside `cargo test` (it needs the C programs).
#
# What it needs:
#   * our release binaries:  cargo build --release -p majordomo --bins
#   * the Guide's C sources: the directory examples/C of a zguide checkout (the programs written
#     against CZMQ 3.0.x: zctx/zsocket/zmsg), given with --zguide DIR, or any directory holding
#     the same files with --c-src DIR, or fetched with --fetch (git clone of
#     https://github.com/booksbyus/zguide into the work directory);
#   * CZMQ 3.0.x and libzmq installed under --prefix DIR (include/ and lib/; a libzmq found by
#     the compiler elsewhere, e.g. the system's, is fine; add CFLAGS/LDFLAGS for others):
#       git clone -b v3.0.2 https://github.com/zeromq/czmq && cd czmq && ./autogen.sh \
#         && ./configure --prefix=$PREFIX && make -j2 install
#   * strace, for the system calls per request (skipped if missing or with --strace 0).
#
# The C programs are built into the work directory from unchanged Guide sources, except for
# two substitutions the Guide hard-codes (checked; the build stops if a source differs):
#   * the endpoint: tcp://localhost:5555 (clients, worker) and tcp://*:5555 (broker) become
#     port --port (default: a free one) so that a run cannot meet someone else's 5555;
#   * the request count: mdclient and mdclient2 loop `count < 100000`; they are built once per
#     count this script uses (mdclient-N: N one-at-a-time requests, mdclient2-N: N sent at once,
#     then N replies received). Each prints its count at the end ("N requests/replies processed",
#     "N replies received"), which is checked: a shortfall means a lost request (the C clients
#     stop at the first failure) and is reported, not timed.
# The C clients print no time, so each is timed from outside (wall clock around the process:
# it includes the process start and connect, a few ms against seconds of requests).
#
# Each round runs, for each broker in turn (the order rotates from round to round, so no broker
# always goes first):
#   1. a fresh broker, one C mdworker, one readiness round trip (our mdclient, plain 7/MDP: no
#      request id), then the C mdclient (sync) and the C mdclient2 (pipelined), each timed, with
#      the broker's CPU time (utime+stime of all its threads, /proc/PID/stat) and context
#      switches (voluntary + nonvoluntary over /proc/PID/task/*/status) over the run;
#   2. with --latency (default), a second fresh broker measured by our `mdbench --broker
#      --only-broker` (our client and our mdworker --no-request-ids, plain 7/MDP), for the p50 and
#      p99 round trip of one-at-a-time requests, which the C client does not measure.
# Then, once per broker, `strace -c -f -p PID` attached to a fresh broker during --strace N
# one-at-a-time requests of the C mdclient: system calls per request.
#
# It prints every round's figures, then the medians and the ratios to the C broker. This is a
# shared machine: read the medians and ratios, not one round; CPU per request moves less than
# rates. It prints figures, never a verdict.
#
#   majordomo/benches/vs-guide-c.sh --zguide ~/zguide --prefix /usr/local [--rounds 3]
#   majordomo/benches/vs-guide-c.sh --c-src /work/cbuild/md --prefix /work/cbuild/prefix
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; cat <<'EOF'
Options:
  --zguide DIR     zguide checkout (uses DIR/examples/C)
  --c-src DIR      directory with mdbroker.c, mdworker.c, mdclient.c, mdclient2.c, mdp.h,
                   mdcliapi.[ch], mdcliapi2.[ch], mdwrkapi.[ch]
  --fetch          git clone --depth 1 https://github.com/booksbyus/zguide into the work dir
  --prefix DIR     CZMQ 3.0.x (+ libzmq) install prefix [/usr/local]
  --work DIR       where the C programs are built and logs kept [a new temp dir]
  --bin-dir DIR    our release binaries [target/release]
  --rounds N       rounds [3]
  --sync N         one-at-a-time requests per run (C mdclient) [20000]
  --piped N        pipelined requests per run (C mdclient2) [50000]
  --strace N       requests under strace per broker, 0 to skip [5000]
  --no-latency     skip the mdbench latency runs
  --port P         the port every broker binds [a free one]
  --before-bin DIR also run the guarded mdbroker of an earlier build in DIR (before/after a
                   change, alternated with the others in every round; its column is "before")
EOF
}

ZGUIDE= C_SRC= FETCH=0 PREFIX=/usr/local WORK= BIN=target/release
ROUNDS=3 SYNC=20000 PIPED=50000 STRACE_N=5000 LATENCY=1 PORT= BEFORE=
while [ $# -gt 0 ]; do
  case $1 in
    --zguide) ZGUIDE=$2; shift ;;
    --c-src) C_SRC=$2; shift ;;
    --fetch) FETCH=1 ;;
    --prefix) PREFIX=$2; shift ;;
    --work) WORK=$2; shift ;;
    --bin-dir) BIN=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --before-bin) BEFORE=$2; shift ;;
    --sync) SYNC=$2; shift ;;
    --piped) PIPED=$2; shift ;;
    --strace) STRACE_N=$2; shift ;;
    --no-latency) LATENCY=0 ;;
    --port) PORT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
for n in "$ROUNDS" "$SYNC" "$PIPED" "$STRACE_N"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "not a count: $n" >&2; exit 2; }
done
[ "$ROUNDS" -ge 1 ] && [ "$SYNC" -ge 1 ] && [ "$PIPED" -ge 1 ] || { echo "counts must be at least 1" >&2; exit 2; }
for b in mdbroker mdclient mdbench mdworker; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b: cargo build --release -p majordomo --bins" >&2; exit 2; }
done
WORK=${WORK:-$(mktemp -d /tmp/vs-guide-c.XXXXXX)}
mkdir -p "$WORK"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${PORT:-$(free_port)}
EP=tcp://127.0.0.1:$PORT
HZ=$(getconf CLK_TCK)

# ---- build the Guide's C programs ---------------------------------------------------------
if [ "$FETCH" = 1 ]; then
  [ -d "$WORK/zguide" ] || git clone --depth 1 https://github.com/booksbyus/zguide "$WORK/zguide"
  ZGUIDE=$WORK/zguide
fi
if [ -z "$C_SRC" ]; then
  [ -n "$ZGUIDE" ] || { echo "give --zguide DIR, --c-src DIR or --fetch (--help)" >&2; exit 2; }
  C_SRC=$ZGUIDE/examples/C
fi
CB=$WORK/c
mkdir -p "$CB"
for f in mdbroker.c mdworker.c mdclient.c mdclient2.c mdp.h mdcliapi.c mdcliapi.h mdcliapi2.c \
         mdcliapi2.h mdwrkapi.c mdwrkapi.h; do
  [ -f "$C_SRC/$f" ] || { echo "no $C_SRC/$f" >&2; exit 2; }
  cp "$C_SRC/$f" "$CB/$f"
done
# One substitution, which must change exactly `want` lines of the file.
subst() { # file from to want
  local n; n=$(grep -cF -- "$2" "$CB/$1" || true)
  [ "$n" = "$4" ] || { echo "$1: expected $4 line(s) with '$2', found $n: not the Guide's program" >&2; exit 2; }
  local from=${2//\*/\\*}; sed -i "s|$from|$3|g" "$CB/$1"
}
subst mdbroker.c 'tcp://*:5555' "tcp://127.0.0.1:$PORT" 1
for f in mdworker.c mdclient.c mdclient2.c; do subst "$f" 'tcp://localhost:5555' "tcp://localhost:$PORT" 1; done
cc_md() { # output source
  # shellcheck disable=SC2086
  ${CC:-cc} -O2 -I"$CB" -I"$PREFIX/include" ${CFLAGS:-} -o "$CB/$1" "$CB/$2" \
    -L"$PREFIX/lib" -Wl,-rpath,"$PREFIX/lib" ${LDFLAGS:-} -lczmq -lzmq 2>>"$CB/build.log" \
    || { cat "$CB/build.log" >&2; echo "building $1 failed (log: $CB/build.log)" >&2; exit 1; }
}
cc_md mdbroker mdbroker.c
cc_md mdworker mdworker.c
for n in "$SYNC" "$STRACE_N"; do
  [ "$n" -ge 1 ] || continue
  sed "s/count < 100000/count < $n/" "$CB/mdclient.c" > "$CB/mdclient-$n.c"
  grep -q "count < $n;" "$CB/mdclient-$n.c" || { echo "mdclient.c: no 'count < 100000' loop" >&2; exit 2; }
  cc_md "mdclient-$n" "mdclient-$n.c"
done
sed "s/count < 100000/count < $PIPED/g" "$CB/mdclient2.c" > "$CB/mdclient2-$PIPED.c"
[ "$(grep -c "count < $PIPED;" "$CB/mdclient2-$PIPED.c")" = 2 ] || { echo "mdclient2.c: not two 'count < 100000' loops" >&2; exit 2; }
cc_md "mdclient2-$PIPED" "mdclient2-$PIPED.c"
echo "C programs built in $CB (endpoint $EP); our binaries from $BIN"

# ---- processes ----------------------------------------------------------------------------
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do { kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'; }
now_ns() { date +%s%N; }
# Whether the broker started last ($BROKER) is the one listening on the port (not someone else).
listening() { ss -ltnpH "sport = :$PORT" | grep -q "pid=$BROKER,"; }

BROKERS=(c guarded noguard)
if [ -n "$BEFORE" ]; then
  [ -x "$BEFORE/mdbroker" ] || { echo "no $BEFORE/mdbroker" >&2; exit 2; }
  BROKERS+=(before)
fi
label() { case $1 in c) echo "Guide C broker" ;; guarded) echo "ours, guarded (default)" ;; noguard) echo "ours, --no-guard" ;; before) echo "before: guarded, $BEFORE" ;; esac; }
start_broker() { # kind; sets BROKER
  local log=$WORK/broker-$1.log
  case $1 in
    c) "$CB/mdbroker" >"$log" 2>&1 & ;;
    guarded) "$BIN/mdbroker" --bind "$EP" >"$log" 2>&1 & ;;
    noguard) "$BIN/mdbroker" --bind "$EP" --no-guard >"$log" 2>&1 & ;;
    before) "$BEFORE/mdbroker" --bind "$EP" >"$log" 2>&1 & ;;
  esac
  BROKER=$!; pids+=("$BROKER")
  local i
  for i in $(seq 1 200); do
    listening && return 0
    kill -0 "$BROKER" 2>/dev/null || break
    sleep 0.05
  done
  echo "the $(label "$1") did not listen on $EP (log: $log)" >&2; exit 1
}
# One echo request through the broker (our mdclient, no request id): the C worker is registered.
ready() { "$BIN/mdclient" --broker "$EP" --no-request-ids --requests 1 >/dev/null 2>&1 || { echo "no round trip through $EP" >&2; exit 1; }; }
# Runs a C client; prints "<seconds> <cpu ticks> <context switches>" of the broker over it.
timed() { # broker-pid expected-count program
  local c0 x0 t0 t1 out
  c0=$(cpu_ticks "$1"); x0=$(ctx_switches "$1"); t0=$(now_ns)
  out=$("$3" 2>&1 | tail -1)
  t1=$(now_ns)
  local got=${out%% *}
  if [ "$got" != "$2" ]; then echo "W: $3 ended with '$out' (expected $2)" >&2; echo "nan nan nan"; return; fi
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }') $(( $(cpu_ticks "$1") - c0 )) $(( $(ctx_switches "$1") - x0 ))"
}

# results[kind,metric] = space-separated values, one per round
declare -A R
add() { R[$1,$2]="${R[$1,$2]:-} $3"; }
for round in $(seq 1 "$ROUNDS"); do
  n=${#BROKERS[@]}
  order=("${BROKERS[@]:$(( (round - 1) % n ))}" "${BROKERS[@]:0:$(( (round - 1) % n ))}")
  for kind in "${order[@]}"; do
    start_broker "$kind"
    "$CB/mdworker" >/dev/null 2>&1 & pids+=($!)
    ready
    read -r s t x < <(timed "$BROKER" "$SYNC" "$CB/mdclient-$SYNC")
    read -r ps pt px < <(timed "$BROKER" "$PIPED" "$CB/mdclient2-$PIPED")
    cleanup
    add "$kind" sync "$(awk -v s="$s" -v n="$SYNC" 'BEGIN { print (s == "nan") ? "nan" : n / s }')"
    add "$kind" piped "$(awk -v s="$ps" -v n="$PIPED" 'BEGIN { print (s == "nan") ? "nan" : n / s }')"
    add "$kind" cpu_sync "$(awk -v t="$t" -v n="$SYNC" -v hz="$HZ" 'BEGIN { print (t == "nan") ? "nan" : t * 1e6 / hz / n }')"
    add "$kind" cpu_piped "$(awk -v t="$pt" -v n="$PIPED" -v hz="$HZ" 'BEGIN { print (t == "nan") ? "nan" : t * 1e6 / hz / n }')"
    add "$kind" cs_sync "$(awk -v x="$x" -v n="$SYNC" 'BEGIN { print (x == "nan") ? "nan" : x / n }')"
    add "$kind" cs_piped "$(awk -v x="$px" -v n="$PIPED" 'BEGIN { print (x == "nan") ? "nan" : x / n }')"
    line="round $round, $(label "$kind"): sync $(awk -v s="$s" -v n="$SYNC" 'BEGIN { printf "%.0f", n / s }') req/s, pipelined $(awk -v s="$ps" -v n="$PIPED" 'BEGIN { printf "%.0f", n / s }') req/s"
    if [ "$LATENCY" = 1 ]; then
      start_broker "$kind"
      out=$("$BIN/mdbench" --broker "$EP" --broker-pid "$BROKER" --only-broker --rounds 1 \
              --sync-requests "$SYNC" --requests 10000 2>&1) || { echo "$out" >&2; exit 1; }
      cleanup
      row=$(printf '%s\n' "$out" | sed -n 's/^other sync, 1 worker *//p')
      add "$kind" p50 "$(echo "$row" | awk '{ print $3 }')"
      add "$kind" p99 "$(echo "$row" | awk '{ print $4 }')"
      add "$kind" md_sync "$(echo "$row" | awk '{ print $1 }')"
      line="$line; mdbench sync $(echo "$row" | awk '{ print $1 " req/s, p50 " $3 " ms, p99 " $4 " ms" }')"
    fi
    echo "$line"
  done
done

# ---- system calls per request under strace ------------------------------------------------
if [ "$STRACE_N" -ge 1 ] && command -v strace >/dev/null; then
  for kind in "${BROKERS[@]}"; do
    start_broker "$kind"
    "$CB/mdworker" >/dev/null 2>&1 & pids+=($!)
    ready
    out=$WORK/strace-$kind.txt; err=$WORK/strace-$kind.err
    : >"$err"
    strace -c -f -p "$BROKER" -o "$out" 2>"$err" & tracer=$!
    for i in $(seq 1 200); do grep -q attached "$err" && break; sleep 0.05; done
    grep -q attached "$err" || { echo "strace did not attach: $(cat "$err")" >&2; exit 1; }
    got=$("$CB/mdclient-$STRACE_N" 2>&1 | tail -1)
    kill -INT "$tracer"; wait "$tracer" || true
    cleanup
    [ "${got%% *}" = "$STRACE_N" ] || echo "W: strace run of the $(label "$kind"): '$got'" >&2
    calls=$(awk '$NF == "total" { print $4 }' "$out")
    add "$kind" syscalls "$(awk -v c="$calls" -v n="$STRACE_N" 'BEGIN { print c / n }')"
    top=$(awk 'f && $NF != "total" && $1 ~ /^[0-9.]+$/ { printf "%s %.2f, ", $NF, $4 / n } /^------/ { f = !f }' n="$STRACE_N" "$out" \
            | sed 's/, $//')
    echo "strace, $(label "$kind"): $calls system calls in $STRACE_N sync requests; per request: $top"
  done
fi

# ---- table --------------------------------------------------------------------------------
med() { tr ' ' '\n' | grep -v '^$' | grep -v nan | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cell() { # kind metric format
  local m; m=$(echo "${R[$1,$2]:-}" | med)
  [ "$m" = nan ] && { echo "-"; return; }
  # shellcheck disable=SC2059
  printf "$3" "$m"
}
ratio() { # kind metric
  local a b; a=$(echo "${R[$1,$2]:-}" | med); b=$(echo "${R[c,$2]:-}" | med)
  awk -v a="$a" -v b="$b" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "-"; else printf "%.2fx", a / b }'
}
echo
echo "Medians of $ROUNDS alternating rounds (shared machine: noisy); C mdworker and C clients in every run,"
echo "sync = C mdclient, $SYNC requests one at a time; pipelined = C mdclient2, $PIPED sent, then received."
echo
if [ -n "$BEFORE" ]; then
  echo "| | $(label c) | $(label guarded) | $(label noguard) | before (guarded) |"
  echo "|---|---|---|---|---|"
else
  echo "| | $(label c) | $(label guarded) | $(label noguard) |"
  echo "|---|---|---|---|"
fi
row() { # title metric format
  local extra=
  [ -n "$BEFORE" ] && extra=" $(cell before "$2" "$3") ($(ratio before "$2")) |"
  echo "| $1 | $(cell c "$2" "$3") | $(cell guarded "$2" "$3") ($(ratio guarded "$2")) | $(cell noguard "$2" "$3") ($(ratio noguard "$2")) |$extra"
}
row "sync, req/s" sync "%.0f"
row "pipelined, req/s" piped "%.0f"
row "broker CPU per request, sync" cpu_sync "%.1f µs"
row "broker CPU per request, pipelined" cpu_piped "%.1f µs"
row "broker context switches per request, sync" cs_sync "%.2f"
row "broker context switches per request, pipelined" cs_piped "%.2f"
if [ "$STRACE_N" -ge 1 ] && [ -n "${R[c,syscalls]:-}" ]; then
  row "broker system calls per request, sync (strace, $STRACE_N)" syscalls "%.2f"
fi
if [ "$LATENCY" = 1 ]; then
  row "sync via mdbench (our client + mdworker), req/s" md_sync "%.0f"
  row "sync p50 round trip (mdbench)" p50 "%.3f ms"
  row "sync p99 round trip (mdbench)" p99 "%.3f ms"
fi
echo
echo "(x): ratio to the Guide's C broker (for CPU, context switches and system calls: lower is less work)."
echo "Broker CPU: utime+stime of all its threads (libzmq's I/O thread included) over the run / requests,"
echo "  in clock ticks: one tick is $(awk -v hz="$HZ" -v n="$SYNC" 'BEGIN { printf "%.2f", 1e6 / hz / n }') µs per request sync, $(awk -v hz="$HZ" -v n="$PIPED" 'BEGIN { printf "%.2f", 1e6 / hz / n }') pipelined;"
echo "context switches: voluntary + nonvoluntary over /proc/PID/task/*/status; logs and builds in $WORK"
