#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: traffic from outside the cluster.  A NodePort (port
# allocated by svcd) at the node's address spreads over the endpoints; an
# externalIP the client routes to the node works; externalTrafficPolicy
# Local drops (no reset: the client times out) while no endpoint is on
# this node (nodeName node1), and sends only to the local ones once one is.
#
#       +-- client C -----------------------------------------+
#       |  192.168.77.2  default via 192.168.77.1 (the node)  |
#       |  load -> 192.168.77.1:<nodePort>, 192.0.2.10:80     |
#       +-----------------+-----------------------------------+
#                         | veth (node 192.168.77.1)
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  np: NodePort 80->8080 a b c   ext: externalIPs 192.0.2.10 a b c       |
#   |  local: NodePort, externalTrafficPolicy Local,                         |
#   |         a on node2 (then node1), b on node2                            |
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

# allocated_port SERVICE: the nodePort svcd allocated to SERVICE's first
# port, which must be in 30000-32767.
allocated_port() {
	local np
	np=$(node_port "$1") || exit 1
	{ [[ $np =~ ^[0-9]+$ ]] && ((np >= 30000 && np <= 32767)); } ||
		fail "service $1: nodePort '$np' is not in 30000-32767"
	echo "$np"
}

# local_endpoints NODE_OF_A: the Endpoints of service local, pod a on node
# NODE_OF_A, pod b on node2.
local_endpoints() {
	endpoints_yaml local http:8080/TCP "10.244.0.10@$1" 10.244.0.11@node2 | apply_wait
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C
node=$(topo_node_ip "$C")

svcd_start "${SVCD_ARGS[@]}"

{
	service_yaml np http:80:8080/TCP 'type: NodePort'
	endpoints_yaml np http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
	service_yaml ext http:80:8080/TCP 'externalIPs: [192.0.2.10]'
	endpoints_yaml ext http:8080/TCP 10.244.0.10@ 10.244.0.11@ 10.244.0.12@
	service_yaml local http:80:8080/TCP 'type: NodePort' 'externalTrafficPolicy: Local'
} | apply_wait
local_endpoints node2

# NodePort at the node's address on the client's link.
np=$(allocated_port np)
run_load "$C" -n 300 -c 10 -w 3000 "$node" "$np"
assert_spread "tcp $node:$np (NodePort)" 300 a b c

# externalIP: the client's default route takes 192.0.2.10 to the node.
run_load "$C" -n 300 -c 10 -w 3000 192.0.2.10 80
assert_spread "tcp 192.0.2.10:80 (externalIP)" 300 a b c

# externalTrafficPolicy Local, no endpoint on node1: dropped, so the client
# times out (a reset or ICMP error would fail it at once).
lp=$(allocated_port local)
run_load "$C" -n 3 -c 3 -w 1000 "$node" "$lp"
{ [ "$RC" -eq 1 ] && [ "$OUT" = "ok 0 failed 3" ]; } ||
	nft_fail "tcp $node:$lp (policy Local, no local endpoint): expected 3 failures, load exited $RC:
$OUT
$ERR"
[ "$(grep -c 'connect: no answer within 1000 ms' <<<"$ERR")" -eq 3 ] ||
	nft_fail "tcp $node:$lp (policy Local, no local endpoint): expected a drop (timeout), got:
$ERR"
# Inside the cluster the ClusterIP still uses every endpoint (the internal
# policy is Cluster).
lip=$(svc_ip local)
run_load "$A" -n 40 -c 5 -w 3000 "$lip" 80
expect_ok "pod a -> $lip:80 (ClusterIP of the Local service)" 40

# Pod a moves to node1: the nodePort works, and only a answers.
local_endpoints node1
run_load "$C" -n 40 -c 5 -w 3000 "$node" "$lp"
expect_all "tcp $node:$lp (policy Local, local endpoint a)" a 40

svcd_stop
