#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer out of file descriptors: svcd runs with an open-files
# limit of 64 (it holds about 20 itself, and each relayed connection takes
# two), then 200 clients connect at once and keep their connections.  svcd stays alive and answers `svcctl status`, does not spin
# on what it cannot accept (less than half a CPU while the clients wait, and
# once they are gone), and when the storm is over new connections succeed.
#
#       +-- client C ---------------------------------------------+
#       |  192.168.77.2  load -s -c 200 -> ClusterIP:80 (storm),   |
#       |                load -n 30 -> ClusterIP:80 (after)        |
#       +-----------------+---------------------------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode userspace ... (soft open-files limit 64)                   |
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

CLIENTS=200
LIMIT=64

# alive: svcd has not exited.
alive() {
	_dead "$SVCD_PID" && fail "svcd exited during the storm
$(_log_tail)"
	return 0
}

# storm_pressing: svcd is short of descriptors with clients waiting: the
# listener has connections it has not accepted, or the clients have seen
# some of theirs dropped.
storm_pressing() {
	local q
	q=$(listen_queue "$web:80")
	[ -n "$q" ] && [ "$q" -gt 0 ] && return 0
	[ -s "$T/storm.err" ]
}

# storm_over: the balancer has no connection left, none waits to be accepted.
storm_over() {
	local q
	q=$(listen_queue "$web:80")
	[ "${q:-0}" -eq 0 ] && lb_idle web
}

lb_nofile 4096 # the client's 200 connections

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C

# svcd inherits the soft limit; the test's own shell gets its own back.
old_limit=$(ulimit -Sn)
ulimit -Sn "$LIMIT"
svcd_start "${SVCD_ARGS[@]}"
ulimit -Sn "$old_limit"
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
} | apply_wait
web=$(svc_ip web)
run_load "$C" -n 30 -c 5 -w 3000 "$web" 80
expect_ok "tcp $web:80 before the storm" 30

limit=$(awk '/^Max open files/ { print $4 }' /proc/"$SVCD_PID"/limits)
assert_eq "$limit" "$LIMIT" "svcd's open-files limit"

# The storm: 200 clients at once, each keeping its connection, quiet (a
# round trip every 30 s; a dropped client also waits 30 s to come back), and
# waiting up to 60 s for the backend's name.  -t 120 is only a bound.
bg_load storm "$C" -s -c "$CLIENTS" -t 120 -i 30000 -r 1000000 -w 60000 "$web" 80
pid=$BG_PID
wait_for 20 storm_pressing
alive
fds=$(find /proc/"$SVCD_PID"/fd -mindepth 1 -maxdepth 1 | wc -l)
echo "storm: svcd holds $fds descriptors, listener queue $(listen_queue "$web:80")" >&2

# Still the control plane: status answers while the clients wait (polled,
# as a descriptor may have to come free first; each try gives up after 5 s).
# The balancer's connections must leave svcd a few descriptors of its own.
SVCCTL_TIMEOUT=5 _poll 20 svcctl status ||
	fail "svcctl status got no answer in 20 s while $CLIENTS clients wait (svcd holds \
$(find /proc/"$SVCD_PID"/fd -mindepth 1 -maxdepth 1 | wc -l) descriptors, limit $LIMIT): the \
balancer's connections leave none for the control socket
$(tail -n 5 "$T/.poll_out")"
assert_not_spinning "the storm waiting ($CLIENTS clients, limit $LIMIT)" 3
alive

# The storm ends: the clients go away at once.
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
wait_for 30 storm_over
assert_not_spinning "idle after the storm" 3
alive
svcctl status >/dev/null || nft_fail "svcctl status failed after the storm"

# New connections succeed, at once.
run_load "$C" -n 30 -c 5 -w 3000 "$web" 80
expect_ok "tcp $web:80 after the storm" 30

svcd_stop
