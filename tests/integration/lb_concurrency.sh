#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer: 1,000 client connections open at once, each doing a
# round trip a second, all relayed (1,000 client sockets and 1,000 backend
# connections in svcd) until the client ends them: none fails, the counters
# see 1,000 active then 1,000 in total.
#
#       +-- client C ------------------------------------------+
#       |  192.168.77.2  load -s -c 1000 -> ClusterIP:80        |
#       |  (steady: each connection stays open, until SIGUSR1)  |
#       +-----------------+------------------------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode userspace ... (open files: 8192)                           |
#   |  web: 80/TCP -> 8080, endpoints a b c                                  |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------+------------------------+------------------------+-----------+
#              |                        |                        |
#   +----------+-----------+ +----------+-----------+ +----------+-----------+
#   | pod A  a 10.244.0.10 | | pod B  b 10.244.0.11 | | pod D  c 10.244.0.12 |
#   | echo 8080 9090 5353  | | echo 8080 9090 5353  | | echo 8080 9090 5353  |
#   +----------------------+ +----------------------+ +----------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

CONNS=1000

# all_open: the client has $CONNS connections to the ClusterIP, the pods
# $CONNS from the node, and the balancer counts $CONNS active.
all_open() {
	local c=0 pod
	[ "$(established "$C" dst "$web:80")" -eq "$CONNS" ] || return 1
	for pod in "$A" "$B" "$D"; do
		c=$((c + $(established "$pod" sport = :8080)))
	done
	[ "$c" -eq "$CONNS" ] && lb_is web .lb.active "$CONNS"
}

# Open files for every process started from here: svcd needs two per
# connection, load one.
lb_nofile 8192

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C

svcd_start "${SVCD_ARGS[@]}"
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
} | apply_wait
web=$(svc_ip web)

# Each of the 1,000 slots opens one connection and keeps it (more rounds
# than the run can do), a round trip a second; -t 120 is only a bound: the
# run ends with SIGUSR1 once all are seen open.
bg_load conc "$C" -s -t 120 -c "$CONNS" -i 1000 -r 1000000 -w 10000 "$web" 80
pid=$BG_PID
_poll 60 all_open ||
	nft_fail "$CONNS connections never were open at once: client $(established "$C" dst "$web:80"), \
pods $(established "$A" sport = :8080)+$(established "$B" sport = :8080)+$(established "$D" sport = :8080), \
lb.active $(lb_counter web .lb.active)
load so far: $(head -n 20 "$T/conc.err")"
svcd_listens tcp "$web:80" || nft_fail "svcd no longer listens on $web:80"
echo "passed: $CONNS connections open at once" >&2

bg_load_end conc "$pid"
assert_even "$CONNS steady connections" "$CONNS" a b c
wait_for 20 lb_idle web
assert_lb_counts "$CONNS steady connections" web "$CONNS" 8080

svcd_stop
