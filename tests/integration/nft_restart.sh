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

command -v nft >/dev/null || skip "nft (the nftables CLI) is not installed"

SVCD_ARGS=(--mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16)

nft_state() {
	echo "--- nft list table ip svcd (in $NODE) ---"
	nsx "$NODE" nft list table ip svcd 2>&1
	if [ -n "$SVCD_PID" ]; then
		echo "--- svcctl status -o json ---"
		svcctl status -o json 2>&1
	fi
}

nft_fail() {
	fail "$*
$(nft_state)"
}

# nft_table: table ip svcd with the elements of each set taken out of
# their blocks and sorted, so that two listings compare modulo element order.
nft_table() {
	local raw
	raw=$(nsx "$NODE" nft list table ip svcd) || return 1
	awk '
		$1 == "set" || $1 == "map" { cur = $2 }
		/elements = \{/ { inel = 1; print "\t\telements = <below>"; sub(/.*elements = \{/, "") }
		inel {
			line = $0
			end = sub(/\}.*/, "", line)
			n = split(line, part, ",")
			for (i = 1; i <= n; i++) {
				e = part[i]
				gsub(/^[ \t]+|[ \t]+$/, "", e)
				if (e != "") print "E " cur ": " e | "sort"
			}
			if (end) inel = 0
			next
		}
		{ print }' <<<"$raw"
}

# synced: status -o json says the data plane caught up, with no sync error.
synced() {
	local st desired applied
	st=$(svcctl status -o json) || return 1
	desired=$(json_field "$st" desiredGeneration) && applied=$(json_field "$st" appliedGeneration) ||
		return 1
	[ "$(json_field "$st" synced)" = true ] && ((applied >= desired)) &&
		[ "$(json_field "$st" mode)" = nftables ] && [ "$(json_field "$st" lastSync error)" = null ]
}

# table_is WANT: the normalized table equals WANT.
table_is() {
	[ "$(nft_table)" = "$1" ]
}

# established N: the client has N connections established to the service.
established() {
	[ "$(nsx "$C" ss -Htn state established dst "$ip" | wc -l)" -ge "$1" ]
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

svcd_start "${SVCD_ARGS[@]}"
svcctl apply --wait -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: node1}
  - {ip: 10.244.0.11, nodeName: node1}
  ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web-np}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: node1}
  ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  ports:
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
EOF
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
wait_for 5 synced
table_is "$before" || nft_fail "table ip svcd differs after svcd restarted (after SIGTERM):
--- before ---
$before
--- now ---
$(nft_table)"

svcd_kill
table_is "$before" || nft_fail "table ip svcd changed when svcd was killed (SIGKILL)"
svcd_start "${SVCD_ARGS[@]}"
wait_for 5 synced
table_is "$before" || nft_fail "table ip svcd differs after svcd restarted (after SIGKILL):
--- before ---
$before
--- now ---
$(nft_table)"
restarted_ms=$(((${EPOCHREALTIME//[!0-9]/} - t0) / 1000))
((restarted_ms < 5500)) ||
	fail "the restarts took ${restarted_ms} ms, too long for the 6 s loads to cover them"

rc=0
wait "$long" || rc=$?
out=$(cat "$T/long.out")
[ "$rc" -eq 0 ] && [ "$(topo_count "$out" failed)" -eq 0 ] ||
	nft_fail "long connections through the restarts: load exited $rc:
$out
$(head -n 20 "$T/long.err")"
(($(topo_count "$out" a) + $(topo_count "$out" b) >= 10)) ||
	fail "long connections: fewer than 10 connections completed: $out"
rc=0
wait "$short" || rc=$?
out=$(cat "$T/short.out")
[ "$rc" -eq 0 ] && [ "$(topo_count "$out" failed)" -eq 0 ] ||
	nft_fail "new connections during the restarts: load exited $rc:
$out
$(head -n 20 "$T/short.err")"
(($(topo_count "$out" a) > 0 && $(topo_count "$out" b) > 0)) ||
	nft_fail "new connections during the restarts did not reach both endpoints: $out"

# And the daemon still programs changes after all this.
svcctl apply --wait -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Endpoints
metadata: {name: empty}
subsets:
- addresses:
  - {ip: 10.244.0.11, nodeName: node1}
  ports:
  - {name: dns, port: 5353, protocol: UDP}
EOF
out=$(topo_load_ok "$C" -u -n 10 -c 2 -w 3000 "$(svc_ip empty)" 53)
assert_eq "$out" $'b 10\nok 10 failed 0' "udp service given endpoints after the restarts"
synced || nft_fail "svcd not synced at the end"

svcd_stop
