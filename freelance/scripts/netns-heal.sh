#!/bin/bash
# Needs root (creates netns bsf-a and veth bsfa0/bsfa1, removed on exit). PART=15 freelance/scripts/netns-heal.sh [flclient3 flags]
# Prints the time from the heal (server-side link set up again) to the first reply from that server.
# Freelance heal measurement on a real (namespace) network: server A in netns bsf-a, reached via veth;
# partition = the server-side veth set down (packets silently dropped, no FIN/RST, TCP backs off).
set -u
T=${T:-target/debug}   # run from the workspace root after cargo build -p freelance
cleanup() { [ -n "${C:-}" ] && kill $C 2>/dev/null; [ -n "${A:-}" ] && kill $A 2>/dev/null; [ -n "${B:-}" ] && kill $B 2>/dev/null; ip netns del bsf-a 2>/dev/null; ip link del bsfa0 2>/dev/null; }
trap cleanup EXIT
ip netns add bsf-a
ip link add bsfa0 type veth peer name bsfa1
ip link set bsfa1 netns bsf-a
ip addr add 10.231.1.1/24 dev bsfa0; ip link set bsfa0 up
ip netns exec bsf-a ip addr add 10.231.1.2/24 dev bsfa1
ip netns exec bsf-a ip link set bsfa1 up
ip netns exec bsf-a ip link set lo up
ip netns exec bsf-a $T/flserver3 --bind tcp://10.231.1.2:7101 --endpoint tcp://10.231.1.2:7101 >${TMPDIR:-/tmp}/bsf-a.log 2>&1 & A=$!
$T/flserver3 --bind tcp://127.0.0.1:7102 --endpoint tcp://127.0.0.1:7102 >${TMPDIR:-/tmp}/bsf-b.log 2>&1 & B=$!
sleep 1
$T/flclient3 tcp://10.231.1.2:7101 tcp://127.0.0.1:7102 --requests 1000000 --interval-ms 100 --keep-going "$@" >${TMPDIR:-/tmp}/bsf-c.log 2>&1 & C=$!
sleep 3
cut=$(date +%s.%N)
ip netns exec bsf-a ip link set bsfa1 down
ip link show bsfa0 | head -1
sleep ${PART:-15}
heal=$(date +%s.%N)
ip netns exec bsf-a ip link set bsfa1 up
true
# wait until a reply from A appears after heal
n0=$(grep -c "from tcp://10.231.1.2:7101:" ${TMPDIR:-/tmp}/bsf-c.log)
for i in $(seq 1 600); do
  n=$(grep -c "from tcp://10.231.1.2:7101:" ${TMPDIR:-/tmp}/bsf-c.log)
  if [ "$n" -gt "$n0" ]; then back=$(date +%s.%N); break; fi
  sleep 0.05
done
echo "heal -> in use again: $(echo "${back:-0} - $heal" | bc) s"
kill -INT $C; wait $C; C=
grep -E "dead|alive|relink|failover|summary|connected" ${TMPDIR:-/tmp}/bsf-c.log | tail -12
