#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The data-plane topology (tests/topo.sh) and tools (tests/tools/echo.c,
# load.c) work on their own, without svcd: client -> pod routed by the node,
# pod -> pod across the bridge, TCP and UDP; a refused connection fails at
# once; the host's networking is untouched; and all of it is removed, also
# when a test using it fails half-way or is killed.
#
#        client C 192.168.77.2 --- 192.168.77.1 node (svcb0 10.244.0.1/24)
#                                                  |                |
#                                     pod A 10.244.0.10   pod B 10.244.0.11
#                                     echo alpha          echo beta
#   (full drawing at the top of tests/topo.sh)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"

host_links() {
	ip -o link show | awk -F': ' '{ print $2 }' | sort
}

# ms_since T0: milliseconds since T0 (an $EPOCHREALTIME without the dot).
ms_since() {
	echo $(((${EPOCHREALTIME//[!0-9]/} - $1) / 1000))
}

links_before=$(host_links)
host_forward=$(cat /proc/sys/net/ipv4/ip_forward)

topo_node
topo_pod A alpha 10.244.0.10
topo_pod B beta 10.244.0.11
topo_client C

assert_eq "$(host_links)" "$links_before" "the host's interfaces after building the topology"
assert_eq "$(cat /proc/sys/net/ipv4/ip_forward)" "$host_forward" "the host's ip_forward"
assert_eq "$(nsx "$NODE" cat /proc/sys/net/ipv4/ip_forward)" 1 "the node's ip_forward"
assert_eq "$(topo_ip "$C")" 192.168.77.2 "client address"
assert_eq "$(topo_node_ip "$C")" 192.168.77.1 "node address on the client link"
assert_eq "$(topo_pod_ip "$A") $(topo_pod_name "$B")" "10.244.0.10 beta" "pod helpers"
assert_match "$(bridge -n "$NODE" -d link show dev "$(topo_host_if "$A")")" 'hairpin on' \
	"hairpin on pod A's bridge port"

# Client -> pods, through the node's routing: every port, TCP and UDP.
for port in $TOPO_PORTS; do
	out=$(topo_load_ok "$C" -n 20 -c 5 10.244.0.10 "$port")
	assert_eq "$out" $'alpha 20\nok 20 failed 0' "client -> pod A, tcp $port"
	out=$(topo_load_ok "$C" -u -n 20 -c 5 10.244.0.11 "$port")
	assert_eq "$out" $'beta 20\nok 20 failed 0' "client -> pod B, udp $port"
done

# Many at once, and long transfers echoed back.
out=$(topo_load_ok "$C" -n 2000 -c 200 -w 5000 10.244.0.11 8080)
assert_eq "$out" $'beta 2000\nok 2000 failed 0' "2000 connections, 200 at a time"
out=$(topo_load_ok "$C" -u -n 1000 -c 100 -w 5000 10.244.0.10 5353)
assert_eq "$out" $'alpha 1000\nok 1000 failed 0' "1000 datagrams, 100 at a time"
out=$(topo_load_ok "$C" -n 8 -c 4 -b 4000000 -w 5000 10.244.0.10 9090)
assert_eq "$out" $'alpha 8\nok 8 failed 0' "4 MB echoed back, 8 times"

# Pod -> pod across the bridge, both ways; a pod to itself over IPv6
# loopback (echo's IPv6 wildcard sockets).
out=$(topo_load_ok "$A" -n 100 -c 10 10.244.0.11 9090)
assert_eq "$out" $'beta 100\nok 100 failed 0' "pod A -> pod B, tcp"
out=$(topo_load_ok "$B" -u -n 100 -c 10 10.244.0.10 5353)
assert_eq "$out" $'alpha 100\nok 100 failed 0' "pod B -> pod A, udp"
out=$(topo_load_ok "$A" -n 5 ::1 8080)
assert_eq "$out" $'alpha 5\nok 5 failed 0' "pod A -> ::1, tcp"
out=$(topo_load_ok "$A" -u -n 5 ::1 5353)
assert_eq "$out" $'alpha 5\nok 5 failed 0' "pod A -> ::1, udp"

# The client's traffic really is routed by the node: without forwarding it
# fails (at once: host unreachable), pod -> pod on the bridge does not care.
topo_sysctl "$NODE" net.ipv4.ip_forward=0
expect_fail topo_load "$C" -n 3 -w 500 10.244.0.10 8080
assert_eq "$LAST_OUT" "ok 0 failed 3" "client -> pod A without forwarding"
out=$(topo_load_ok "$B" -n 3 10.244.0.10 8080)
assert_eq "$out" $'alpha 3\nok 3 failed 0' "pod B -> pod A without forwarding"
topo_sysctl "$NODE" net.ipv4.ip_forward=1
out=$(topo_load_ok "$C" -n 3 10.244.0.10 8080)
assert_eq "$out" $'alpha 3\nok 3 failed 0' "client -> pod A with forwarding again"

# For a time: a rate, and steady connections (round trips every 10 ms, 20 per
# connection), TCP and UDP.
out=$(topo_load_ok "$C" -t 0.5 -c 20 10.244.0.10 8080)
assert_match "$out" '^rate [1-9][0-9]*/s$' "rate line"
assert_eq "$(topo_count "$out" failed)" 0 "timed run: failures"
assert_eq "$(topo_count "$out" alpha)" "$(topo_count "$out" ok)" "timed run: all from alpha"
out=$(topo_load_ok "$C" -s -t 1 -c 10 -r 20 10.244.0.11 9090)
(($(topo_count "$out" beta) >= 10)) || fail "steady tcp: fewer than 10 connections: $out"
out=$(topo_load_ok "$C" -s -u -t 0.5 -c 5 10.244.0.11 5353)
(($(topo_count "$out" beta) >= 10)) || fail "steady udp: fewer than 10 datagrams: $out"

# Nothing listening: refused at once (TCP RST, ICMP port unreachable for
# UDP, none of them rate-limited), not after the 5 s timeout.
topo_echo_stop "$B"
t0=${EPOCHREALTIME//[!0-9]/}
expect_fail topo_load "$C" -n 50 -c 5 -w 5000 10.244.0.11 8080
assert_eq "$LAST_OUT" "ok 0 failed 50" "tcp to a stopped backend"
assert_contains "$LAST_ERR" "connect: Connection refused" "tcp to a stopped backend"
expect_fail topo_load "$C" -u -n 50 -c 5 -w 5000 10.244.0.11 5353
assert_eq "$LAST_OUT" "ok 0 failed 50" "udp to a stopped backend"
assert_contains "$LAST_ERR" "no reply: Connection refused" "udp to a stopped backend"
((elapsed = $(ms_since "$t0"), elapsed < 3000)) || fail "refusals took ${elapsed} ms"
topo_echo_start "$B"
out=$(topo_load_ok "$C" -n 10 10.244.0.11 8080)
assert_eq "$out" $'beta 10\nok 10 failed 0' "pod B after its echo restarted"

# Clean-up: a test that builds the topology and then fails, and one killed
# by SIGTERM while polling, leave nothing.  Their run ids extend ours, so a
# leftover would also be swept (and reported) by our own clean-up.
cat >"$T/nested.sh" <<EOF
. "$SVCT_REPO/tests/lib.sh"
. "$SVCT_REPO/tests/topo.sh"
topo_pod P gamma 10.244.0.20
topo_client C
echo "\$NODE \$P \$C \$(topo_pod_pid "\$P")" >"\$1.tmp" && mv "\$1.tmp" "\$1"
case \$2 in
fail) fail "deliberate failure" ;;
term) wait_for 60 false ;;
esac
EOF
for mode in fail term; do
	id=$RUN_ID-$mode
	info=$T/nested-$mode.info
	SVCT_RUN_ID=$id bash "$T/nested.sh" "$info" "$mode" >"$T/nested-$mode.out" 2>&1 &
	pid=$!
	wait_for 30 test -s "$info"
	[ "$mode" != term ] || kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	out=$(cat "$T/nested-$mode.out")
	if [ "$mode" = fail ]; then
		assert_eq "$rc" 1 "nested test that fails: exit status ($out)"
		assert_contains "$out" "deliberate failure" "nested test that fails"
	else
		assert_eq "$rc" 143 "nested test killed by SIGTERM: exit status ($out)"
	fi
	read -r nnode npod nclient npid <"$info"
	[ -n "$npid" ] || fail "nested test ($mode) wrote no echo pid: $(cat "$info")"
	assert_eq "$(svct_leftovers "$id")" "" "what the nested test ($mode) left"
	_dead "$npid" || fail "nested test ($mode): echo $npid still runs"
	for ns in "$nnode" "$npod" "$nclient"; do
		ip netns list | awk -v n="$ns" '$1 == n { exit 1 }' ||
			fail "nested test ($mode): namespace $ns still exists"
	done
done
assert_eq "$(host_links)" "$links_before" "the host's interfaces at the end"
