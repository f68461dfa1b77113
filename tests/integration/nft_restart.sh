#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: restarting svcd breaks no traffic.  The rules stay in
# the kernel while the daemon is down (SIGTERM or SIGKILL) and the new
# daemon adopts them without flushing: steady connections running through
# both restarts (and new connections opened all along) see no failure, and
# afterwards the table is what it was before (modulo element order) and the
# daemon reports itself synced.
#
#       +-- client C -----------------------------------------------+
#       |  192.168.77.2                                             |
#       |  load -s -t 6 -c 10 -r 1000  (10 connections, all along)  |
#       |  load -s -t 6 -c 5 -r 5      (a new one every 50 ms)      |
#       +-----------------+-----------------------------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables ...: stop (TERM), start, kill (KILL), start      |
#   |  web: 80/TCP -> 8080 over a b   web-np: NodePort -> a                  |
#   |  empty: 53/UDP, no endpoints (given pod B at the end)                  |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------------+-------------------------------------+-----------------+
#                    |                                     |
#   +----------------+-----------------+  +----------------+-----------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11            |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353             |
#   +----------------------------------+  +----------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

# synced: status -o json says the data plane caught up, with no sync error.
synced() {
	local st desired applied
	st=$(svcctl status -o json) || return 1
	desired=$(json_field "$st" desiredGeneration) && applied=$(json_field "$st" appliedGeneration) ||
		return 1
	[ "$(json_field "$st" synced)" = true ] && ((applied >= desired)) &&
		[ "$(json_field "$st" mode)" = nftables ] && [ "$(json_field "$st" lastSync error)" = null ]
}

# adopted HOW: svcd, started again after it was stopped HOW, gets synced and
# leaves the table as it was before.
adopted() {
	wait_for 5 synced
	table_is "$before" || nft_fail "table ip svcd differs after svcd restarted (after $1):
--- before ---
$before
--- now ---
$(nft_table)"
}

# established N: the client has N connections established to the service.
established() {
	[ "$(nsx "$C" ss -Htn state established dst "$ip" | wc -l)" -ge "$1" ]
}

# load_done PID NAME WHAT: the background topo_load PID, its output in
# $T/NAME.out and $T/NAME.err, exited 0 with no failed connection; its
# output goes to OUT.
load_done() {
	local rc=0
	wait "$1" || rc=$?
	OUT=$(cat "$T/$2.out")
	{ [ "$rc" -eq 0 ] && [ "$(topo_count "$OUT" failed)" -eq 0 ]; } ||
		nft_fail "$3: load exited $rc:
$OUT
$(head -n 20 "$T/$2.err")"
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

svcd_start "${SVCD_ARGS[@]}"
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11
	service_yaml web-np http:80:8080/TCP 'type: NodePort'
	endpoints_yaml web-np http:8080/TCP 10.244.0.10
	service_yaml empty dns:53:5353/UDP
} | apply_wait
ip=$(svc_ip web)
wait_for 5 synced
before=$(nft_table) || nft_fail "cannot list table ip svcd"

# The loads run in the background for 6 s; the restarts happen meanwhile.
topo_load "$C" -s -t 6 -c 10 -r 1000 -w 3000 "$ip" 80 >"$T/long.out" 2>"$T/long.err" &
long=$!
topo_load "$C" -s -t 6 -c 5 -r 5 -w 3000 "$ip" 80 >"$T/short.out" 2>"$T/short.err" &
short=$!
t0=${EPOCHREALTIME//[!0-9]/}
wait_for 5 established 10

svcd_stop
# The rules outlive the daemon.
table_is "$before" || nft_fail "table ip svcd changed when svcd stopped (SIGTERM)"
svcd_start "${SVCD_ARGS[@]}"
adopted SIGTERM

svcd_kill
table_is "$before" || nft_fail "table ip svcd changed when svcd was killed (SIGKILL)"
svcd_start "${SVCD_ARGS[@]}"
adopted SIGKILL
restarted_ms=$(ms_since "$t0")
((restarted_ms < 5500)) ||
	fail "the restarts took ${restarted_ms} ms, too long for the 6 s loads to cover them"

load_done "$long" long "long connections through the restarts"
(($(topo_count "$OUT" a) + $(topo_count "$OUT" b) >= 10)) ||
	fail "long connections: fewer than 10 connections completed: $OUT"
load_done "$short" short "new connections during the restarts"
(($(topo_count "$OUT" a) > 0 && $(topo_count "$OUT" b) > 0)) ||
	nft_fail "new connections during the restarts did not reach both endpoints: $OUT"

# And the daemon still programs changes after all this.
endpoints_yaml empty dns:5353/UDP 10.244.0.11 | apply_wait
out=$(topo_load_ok "$C" -u -n 10 -c 2 -w 3000 "$(svc_ip empty)" 53)
assert_eq "$out" $'b 10\nok 10 failed 0' "udp service given endpoints after the restarts"
synced || nft_fail "svcd not synced at the end"

svcd_stop
