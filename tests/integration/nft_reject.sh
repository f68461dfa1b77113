#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: what a service cannot serve is refused at once, not
# blackholed.  A ClusterIP without endpoints answers a TCP SYN with a reset
# and a UDP datagram with ICMP port unreachable; so do a ClusterIP port the
# service does not have, and an external IP and a nodePort without
# endpoints.  Once an Endpoints object is applied (--wait), the same
# addresses work; once it is deleted, they are refused again.
#
#       +-- client C -----------------------------------------------------+
#       |  192.168.77.2  load -w 3000 -> ClusterIP, externalIP, nodePort  |
#       +-----------------+-----------------------------------------------+
#                         | veth (node 192.168.77.1)
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  lonely: 80/TCP->8080, 53/UDP->5353, externalIPs 192.0.2.20,           |
#   |          no endpoints, then pod A, then none again                     |
#   |  lonely-np: NodePort 80/TCP, no endpoints                              |
#   |                  svcb0 10.244.0.1/24                                   |
#   +--------------------------+---------------------------------------------+
#                              |
#                  +-----------+------------+
#                  |  pod A  a 10.244.0.10  |
#                  |  echo 8080 9090 5353   |
#                  +------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

# expect_refused WHAT LOAD_ARGS...: every attempt fails as refused (reset or
# ICMP port unreachable), well before load's 3 s timeout.
expect_refused() {
	local what=$1 n=5
	shift
	run_load "$C" -n "$n" -c 1 -w 3000 "$@"
	{ [ "$RC" -eq 1 ] && [ "$OUT" = "ok 0 failed $n" ]; } ||
		nft_fail "$what: expected $n refusals, load exited $RC:
$OUT
$ERR"
	[ "$(grep -c 'Connection refused' <<<"$ERR")" -eq "$n" ] ||
		nft_fail "$what: expected 'Connection refused' for each of $n attempts (not a timeout):
$ERR"
	((MS < 1000)) || nft_fail "$what: $n refusals took $MS ms (should be at once)"
}

topo_pod A a 10.244.0.10
topo_client C

svcd_start "${SVCD_ARGS[@]}"

{
	service_yaml lonely http:80:8080/TCP,dns:53:5353/UDP 'externalIPs: [192.0.2.20]'
	service_yaml lonely-np http:80:8080/TCP 'type: NodePort'
} >"$T/svc.yaml"
svcctl apply --wait -f "$T/svc.yaml" >/dev/null
ip=$(svc_ip lonely)
np=$(node_port lonely-np)
node=$(topo_node_ip "$C")

# No endpoints at all.
expect_refused "tcp $ip:80 without endpoints" "$ip" 80
expect_refused "udp $ip:53 without endpoints" -u "$ip" 53
# Ports the service does not have (nor any other service).
expect_refused "tcp $ip:81, a port lonely does not serve" "$ip" 81
expect_refused "udp $ip:54, a port lonely does not serve" -u "$ip" 54
expect_refused "tcp $ip:53 (lonely serves 53 over UDP only)" "$ip" 53
# A nodePort without endpoints, at the node's address; an external IP.
expect_refused "tcp $node:$np (nodePort without endpoints)" "$node" "$np"
expect_refused "tcp 192.0.2.20:80 (externalIP without endpoints)" 192.0.2.20 80
expect_refused "udp 192.0.2.20:53 (externalIP without endpoints)" -u 192.0.2.20 53

# Endpoints arrive: the same addresses work, the ports it lacks still refuse.
endpoints_yaml lonely http:8080/TCP,dns:5353/UDP 10.244.0.10 | apply_wait
run_load "$C" -n 20 -c 5 -w 3000 "$ip" 80
expect_all "tcp $ip:80 after Endpoints were applied" a 20
run_load "$C" -u -n 20 -c 5 -w 3000 "$ip" 53
expect_all "udp $ip:53 after Endpoints were applied" a 20
run_load "$C" -n 20 -c 5 -w 3000 192.0.2.20 80
expect_all "tcp 192.0.2.20:80 (externalIP) after Endpoints were applied" a 20
expect_refused "tcp $ip:81 with endpoints (a port lonely does not serve)" "$ip" 81
expect_refused "udp $ip:54 with endpoints (a port lonely does not serve)" -u "$ip" 54
expect_refused "tcp $node:$np (the NodePort service still has no endpoints)" "$node" "$np"

# And when they go again, refused again.
svcctl delete endpoints lonely >/dev/null
synced() { [ "$(json_field "$(svcctl status -o json)" synced)" = true ]; }
wait_for 5 synced
expect_refused "tcp $ip:80 after the Endpoints were deleted" "$ip" 80
expect_refused "udp $ip:53 after the Endpoints were deleted" -u "$ip" 53

svcd_stop
