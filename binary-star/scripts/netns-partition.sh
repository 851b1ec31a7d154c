#!/bin/bash
# Binary Star on a real (namespace) link: the primary in netns bsb-p behind a veth, the backup and
# bstarcli in the root namespace. Partition = the primary's veth set down (packets silently
# dropped, no FIN/RST, TCP backs off); heal = set up again. Prints heal -> the primary's
# "state PASSIVE" (a single active server again) and both servers' state lines.
# Needs root (creates netns bsb-p and veth bsbp0/bsbp1, removed on exit).
# Usage, from the workspace root after cargo build --release -p binary-star:
#   PART=10 binary-star/scripts/netns-partition.sh [extra bstarsrv flags]
set -u
T=${T:-target/release}
L=${TMPDIR:-/tmp}
cleanup() {
  for p in ${C:-} ${P:-} ${B:-}; do kill $p 2>/dev/null; done
  ip netns del bsb-p 2>/dev/null; ip link del bsbp0 2>/dev/null
}
trap cleanup EXIT
ip netns add bsb-p
ip link add bsbp0 type veth peer name bsbp1
ip link set bsbp1 netns bsb-p
ip addr add 10.231.2.1/24 dev bsbp0; ip link set bsbp0 up
ip netns exec bsb-p ip addr add 10.231.2.2/24 dev bsbp1
ip netns exec bsb-p ip link set bsbp1 up
ip netns exec bsb-p ip link set lo up
ip netns exec bsb-p $T/bstarsrv -p --frontend tcp://10.231.2.2:7201 --state-pub tcp://10.231.2.2:7203 \
  --state-sub tcp://10.231.2.1:7204 "$@" >$L/bsb-p.log 2>&1 & P=$!
$T/bstarsrv -b --frontend tcp://127.0.0.1:7202 --state-pub tcp://10.231.2.1:7204 \
  --state-sub tcp://10.231.2.2:7203 "$@" >$L/bsb-b.log 2>&1 & B=$!
sleep 2
$T/bstarcli --primary tcp://10.231.2.2:7201 --backup tcp://127.0.0.1:7202 --requests 1000000 \
  --interval-ms 200 >$L/bsb-c.log 2>&1 & C=$!
sleep 3
ip netns exec bsb-p ip link set bsbp1 down
sleep ${PART:-10}
heal=$(date +%s.%N)
ip netns exec bsb-p ip link set bsbp1 up
n0=$(grep -c "I: state PASSIVE" $L/bsb-p.log)
for i in $(seq 1 1200); do
  if [ "$(grep -c "I: state PASSIVE" $L/bsb-p.log)" -gt "$n0" ]; then settled=$(date +%s.%N); break; fi
  sleep 0.05
done
if [ -n "${settled:-}" ]; then
  echo "heal -> single active: $(echo "$settled - $heal" | bc) s"
else
  echo "heal -> single active: the primary never logged state PASSIVE"
fi
sleep 3
kill -INT $C; wait $C; C=
echo "primary:"; grep -E "state|fatal|replacing|stale|senior" $L/bsb-p.log
echo "backup:"; grep -E "state|fatal|replacing|stale|senior" $L/bsb-b.log
echo "alive: primary $(kill -0 $P 2>/dev/null && echo yes || echo no), backup $(kill -0 $B 2>/dev/null && echo yes || echo no)"
grep summary $L/bsb-c.log
