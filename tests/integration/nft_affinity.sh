#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: sessionAffinity ClientIP, through a ClusterIP and
# through a nodePort.  Each client sticks to one endpoint for all its new
# connections; when that endpoint leaves the Endpoints object, the client's
# connections all succeed and stick to one of the endpoints that remain.
#
#   +-- client C1 -------------------+      +-- client C2 -------------------+
#   |  192.168.77.2   load           |      |  192.168.78.2   load           |
#   +---------------------+----------+      +---------------+----------------+
#                         | veth                            | veth
#   +-- node: $NODE ------+---------------------------------+----------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  sticky: 80/TCP->8080, sessionAffinity ClientIP, endpoints a b c       |
#   |  sticky-np: the same as a NodePort (each client: its link's node IP)   |
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

# sticky_to WHAT N: the last run_load made N connections, no failure, all to
# one backend; prints its name.
sticky_to() {
	local what=$1 n=$2 names
	expect_ok "$what" "$n"
	names=$(awk 'NF == 2 && $1 != "rate" { print $1 }' <<<"$OUT")
	[ "$(wc -l <<<"$names")" -eq 1 ] ||
		nft_fail "$what: connections went to more than one endpoint despite sessionAffinity ClientIP:
$OUT"
	echo "$names"
}

# endpoints SERVICE POD_IP...: apply (--wait) the Endpoints of SERVICE.
endpoints() {
	endpoints_yaml "$1" http:8080/TCP "${@:2}" | apply_wait
}

# affinity SERVICE ADDR1 ADDR2 PORT: client 1 at ADDR1:PORT and client 2 at
# ADDR2:PORT each stick to one endpoint of SERVICE; client 1's leaves the
# Endpoints, and client 1 sticks to one of those that remain.
affinity() {
	local svc=$1 addr1=$2 addr2=$3 port=$4 first second again moved keep=() name
	run_load "$C1" -n 50 -c 1 -w 3000 "$addr1" "$port"
	first=$(sticky_to "$svc: client 1, 50 connections to $addr1:$port" 50)
	run_load "$C2" -n 50 -c 1 -w 3000 "$addr2" "$port"
	second=$(sticky_to "$svc: client 2, 50 connections to $addr2:$port" 50)
	# Still where they were, several at a time now.
	run_load "$C1" -n 30 -c 5 -w 3000 "$addr1" "$port"
	again=$(sticky_to "$svc: client 1, 30 more connections" 30)
	assert_eq "$again" "$first" "$svc: client 1's endpoint"
	run_load "$C2" -n 30 -c 5 -w 3000 "$addr2" "$port"
	again=$(sticky_to "$svc: client 2, 30 more connections" 30)
	assert_eq "$again" "$second" "$svc: client 2's endpoint"

	# Client 1's endpoint leaves (its pod still runs and answers: a stale
	# affinity entry would show as answers from it).
	for name in a b c; do
		[ "$name" = "$first" ] || keep+=("${pod_ip[$name]}")
	done
	endpoints "$svc" "${keep[@]}"
	run_load "$C1" -n 20 -c 1 -w 3000 "$addr1" "$port"
	moved=$(sticky_to "$svc: client 1 after its endpoint $first left" 20)
	[ "$moved" != "$first" ] ||
		nft_fail "$svc: client 1 still sent to $first (${pod_ip[$first]}) after it left the Endpoints"
	run_load "$C1" -n 20 -c 5 -w 3000 "$addr1" "$port"
	again=$(sticky_to "$svc: client 1, 20 more connections" 20)
	assert_eq "$again" "$moved" "$svc: client 1's new endpoint"
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C1
topo_client C2
declare -A pod_ip=([a]=10.244.0.10 [b]=10.244.0.11 [c]=10.244.0.12)

svcd_start "${SVCD_ARGS[@]}"

{
	service_yaml sticky http:80:8080/TCP 'sessionAffinity: ClientIP' \
		'sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}'
	service_yaml sticky-np http:80:8080/TCP 'type: NodePort' 'sessionAffinity: ClientIP'
} | apply_wait
for svc in sticky sticky-np; do
	endpoints "$svc" 10.244.0.10 10.244.0.11 10.244.0.12
done

# Through the ClusterIP.
ip=$(svc_ip sticky)
affinity sticky "$ip" "$ip" 80

# Through the nodePort, at the node's address on each client's link.
np=$(node_port sticky-np)
affinity sticky-np "$(topo_node_ip "$C1")" "$(topo_node_ip "$C2")" "$np"

svcd_stop
