#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer: an endpoint that is dead but still listed as ready
# costs the clients nothing while another works.  The balancer's connect to
# it fails (refused at once, or no answer within --lb-connect-timeout) and it
# moves on to the next endpoint: every client connection succeeds, none is
# answered by the dead one, and connect_failures counts the attempts.
#   1. pod c's echo is stopped (the pod still runs): connects are refused;
#   2. c's echo is back, pod b's link is down: connects to b time out after
#      1 s.  (Whether c gets connections again at once is the balancer's
#      choice: it may keep away from an endpoint that failed for a while.)
#
#       +-- client C -----------------------+
#       |  192.168.77.2  load -> ClusterIP  |
#       +-----------------+-----------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode userspace ... --lb-connect-timeout 1                      |
#   |  web: 80/TCP -> 8080, Endpoints a b c (all ready throughout)           |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------+------------------------+------------------------+-----------+
#              |                        | (2. link down)         |
#   +----------+-----------+ +----------+-----------+ +----------+-----------+
#   | pod A  a 10.244.0.10 | | pod B  b 10.244.0.11 | | pod D  c 10.244.0.12 |
#   | echo 8080 9090 5353  | | echo 8080 9090 5353  | | (1. echo stopped)    |
#   +----------------------+ +----------------------+ +----------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

# failures ENDPOINT: connect_failures of web's ENDPOINT (IP:8080).
failures() {
	lb_ep_counter web "$1" connect_failures
}

# only_from WHAT DEAD ALIVE...: the last run_load succeeded $N times with no
# failure, nothing answered by DEAD, something by each of ALIVE.
only_from() {
	local what=$1 dead=$2 name
	shift 2
	expect_ok "$what" "$N"
	[ "$(topo_count "$OUT" "$dead")" -eq 0 ] ||
		nft_fail "$what: answered by $dead, which is down:
$OUT"
	for name; do
		[ "$(topo_count "$OUT" "$name")" -gt 0 ] ||
			nft_fail "$what: no connection went to $name, which works:
$OUT"
	done
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C

svcd_start "${SVCD_ARGS[@]}" --lb-connect-timeout 1
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
} | apply_wait
web=$(svc_ip web)

# All three work: no connect failure.
run_load "$C" -n 30 -c 5 -w 3000 "$web" 80
assert_even "tcp $web:80, all endpoints up" 30 a b c
assert_eq "$(lb_counter web .lb.connect_failures)" 0 "lb.connect_failures with every endpoint up"

# 1. c refuses (its pod answers with a RST); it stays in the Endpoints.
topo_echo_stop "$D"
N=60
run_load "$C" -n "$N" -c 6 -w 5000 "$web" 80
only_from "tcp $web:80 with c refusing" c a b
refused=$(failures 10.244.0.12:8080)
((refused > 0)) || nft_fail "c refused connections, but its connect_failures is $refused"
assert_eq "$(failures 10.244.0.10:8080)" 0 "connect_failures of a (up)"
assert_eq "$(failures 10.244.0.11:8080)" 0 "connect_failures of b (up)"
total=$(lb_counter web .lb.connect_failures)
((total >= refused)) || nft_fail "lb.connect_failures $total < c's $refused"
echo "passed 1. refused: $refused connect failures, no client failure" >&2

# 2. c is back; b's link goes down, so that nothing answers its address
# (its pod is still in the Endpoints): a connect to b times out after
# --lb-connect-timeout 1 (or fails at once, once the node has given up
# resolving b's address), and the connection moves on.  The client waits
# 5 s for its answer, more than one timeout.
topo_echo_start "$D"
ip -n "$B" link set eth0 down
N=30
run_load "$C" -n "$N" -c 10 -w 5000 "$web" 80
only_from "tcp $web:80 with b unreachable" b a
timeouts=$(failures 10.244.0.11:8080)
((timeouts > 0)) || nft_fail "b was unreachable, but its connect_failures is $timeouts"
assert_eq "$(failures 10.244.0.12:8080)" "$refused" "connect_failures of c (up again)"
assert_eq "$(failures 10.244.0.10:8080)" 0 "connect_failures of a (up)"
echo "passed 2. timed out: $timeouts connect failures, no client failure" >&2

svcd_stop
