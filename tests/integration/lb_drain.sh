#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer: an endpoint removed from the Endpoints drains.  Its
# established connections keep going for --lb-drain-grace (3 s here) while
# new connections go elsewhere; then they are closed with a RST.  The
# backend sees the node's address as the source of the relayed connection.
#   1. a steady connection (a round trip every 50 ms) to a, the only endpoint;
#   2. b joins: nothing changes for it;
#   3. a leaves (the Endpoints: b only): round trips go on after the removal;
#      new connections all go to b;
#   4. the connection is reset, not before 3 s after the removal (and within
#      15 s); the client's next connection goes to b.
#
#       +-- client C ------------------------------------------------+
#       |  192.168.77.2  load -s -c 1 -> ClusterIP:80 (round trips)   |
#       |                load -n 20 -> ClusterIP:80 (new connections) |
#       +-----------------+------------------------------------------+
#                         | veth
#   +-- node: $NODE ------+------------------------------------------+
#   |  svcd --mode userspace ... --lb-drain-grace 3                  |
#   |  web: 80/TCP -> 8080: a, then a b, then b                      |
#   |                  svcb0 10.244.0.1/24                           |
#   +----------------+-------------------------------+---------------+
#                    |                               |
#   +----------------+-----------------+  +----------+----------------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11           |
#   |  echo 8080 9090 5353 (drained)   |  |  echo 8080 9090 5353            |
#   +----------------------------------+  +---------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

GRACE=3

# endpoints POD_IP...: apply (--wait) the Endpoints of web.
endpoints() {
	endpoints_yaml web http:8080/TCP "$@" | apply_wait
}

# steady_sport: the client's source port of its one connection to web.
steady_sport() {
	local out
	out=$(nsx "$C" ss -Htn state established dst "$web:80") || return 1
	[ "$(wc -l <<<"$out")" -eq 1 ] && [ -n "$out" ] || return 1
	awk '{ n = split($3, p, ":"); print p[n] }' <<<"$out"
}

# received: how many bytes the client's steady connection (source port
# $sport) has received; fails once that connection is gone.
received() {
	local out
	out=$(nsx "$C" ss -Htni state established dst "$web:80" sport = ":$sport") || return 1
	grep -o 'bytes_received:[0-9]*' <<<"$out" | cut -d: -f2 | grep .
}

# received_more N: the steady connection has received more than N bytes.
received_more() {
	local n
	n=$(received) && [ "$n" -gt "$1" ]
}

# reset_seen: the steady client reported its connection reset.
reset_seen() {
	grep -q 'Connection reset by peer' "$T/steady.err"
}

# from_node POD: how many connections POD's echo has from the node
# (10.244.0.1).  from_node_is POD N: that many.
from_node() {
	established "$1" sport = :8080 dst 10.244.0.1
}

from_node_is() {
	[ "$(from_node "$1")" -eq "$2" ]
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

svcd_start "${SVCD_ARGS[@]}" --lb-drain-grace "$GRACE"
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10
} | apply_wait
web=$(svc_ip web)

# 1. One connection doing a round trip every 50 ms (failing, and saying so
# at once, if one takes 3 s); -t 60 is only a bound, SIGUSR1 ends it.
bg_load steady "$C" -s -c 1 -t 60 -i 50 -r 1000000 -w 3000 "$web" 80
pid=$BG_PID
wait_for 10 steady_sport
sport=$(steady_sport)
wait_for 10 received_more 2
# The backend's side of it comes from the node.
from_node_is "$A" 1 ||
	nft_fail "pod a has no connection from the node's 10.244.0.1: $(nsx "$A" ss -Htn state established)"

# 2. b joins; the connection is not disturbed.
endpoints 10.244.0.10 10.244.0.11
n=$(received) || nft_fail "the steady connection ended when b joined: $(cat "$T/steady.err")"
wait_for 5 received_more "$n"

# 3. a leaves.  The connection goes on: a round trip completes after the
# removal.
t0=${EPOCHREALTIME//[!0-9]/}
endpoints 10.244.0.11
n=$(received) ||
	nft_fail "the steady connection to a ended at once when a left the Endpoints ($(ms_since "$t0") ms): $(cat "$T/steady.err")"
_poll "$GRACE" received_more "$n" ||
	nft_fail "no round trip on the connection to a after a left the Endpoints ($(ms_since "$t0") ms; drain grace ${GRACE}s): $(cat "$T/steady.err")"
# New connections only go to b.
run_load "$C" -n 20 -c 5 -w 3000 "$web" 80
expect_all "new connections while a drains" b 20
echo "passed 3. draining: the old connection goes on, new ones go to b ($(ms_since "$t0") ms)" >&2

# 4. After the grace, the connection is reset.
wait_for 15 reset_seen
ms=$(ms_since "$t0")
((ms >= GRACE * 1000 - 500)) ||
	nft_fail "the drained connection was reset $ms ms after a left the Endpoints, before the ${GRACE}s grace:
$(cat "$T/steady.err")"
wait_for 5 from_node_is "$A" 0
echo "passed 4. reset after the grace (seen after $ms ms)" >&2

# The client's next connection goes to b, and ends cleanly: one failure
# (the reset), one connection answered by b.
wait_for 5 from_node_is "$B" 1
bg_load_end steady "$pid"
{ [ "$RC" -eq 1 ] && [ "$(grep -v '^rate ' <<<"$OUT")" = $'b 1\nok 1 failed 1' ]; } ||
	nft_fail "the steady client: expected one reset, then one connection to b, load exited $RC:
$OUT
$ERR"
[ "$(grep -c 'Connection reset by peer' <<<"$ERR")" -eq 1 ] ||
	nft_fail "the steady client's failure was not a reset: $ERR"

svcd_stop
