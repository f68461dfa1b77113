#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer: sessionAffinity ClientIP, through a ClusterIP (TCP and
# UDP) and through a nodePort.  Each client (its address as the balancer
# sees it) sticks to one endpoint for all its new connections, while a
# service without affinity spreads the same client's connections; when the
# client's endpoint leaves the Endpoints, its connections all succeed and
# stick to one of those that remain.
#
#   +-- client C1 -------------------+      +-- client C2 -------------------+
#   |  192.168.77.2   load           |      |  192.168.78.2   load           |
#   +---------------------+----------+      +---------------+----------------+
#                         | veth                            | veth
#   +-- node: $NODE ------+---------------------------------+----------------+
#   |  svcd --mode userspace --node-name node1 ...                           |
#   |  sticky: 80/TCP->8080, 53/UDP->5353, sessionAffinity ClientIP, a b c   |
#   |  sticky-np: NodePort 80/TCP->8080, the same (each client: its link's   |
#   |             node IP)             plain: 80/TCP->8080 a b c, no affinity|
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

# endpoints SERVICE PORTS POD_IP...: apply (--wait) the Endpoints of SERVICE.
endpoints() {
	endpoints_yaml "$1" "$2" "${@:3}" | apply_wait
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C1
topo_client C2
declare -A pod_ip=([a]=10.244.0.10 [b]=10.244.0.11 [c]=10.244.0.12)
declare -A PORTS=([sticky]='http:8080/TCP,dns:5353/UDP' [sticky-np]='http:8080/TCP' [plain]='http:8080/TCP')

svcd_start "${SVCD_ARGS[@]}"
{
	service_yaml sticky http:80:8080/TCP,dns:53:5353/UDP 'sessionAffinity: ClientIP' \
		'sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}'
	service_yaml sticky-np http:80:8080/TCP 'type: NodePort' 'sessionAffinity: ClientIP'
	service_yaml plain http:80:8080/TCP
} | apply_wait
for svc in sticky sticky-np plain; do
	endpoints "$svc" "${PORTS[$svc]}" 10.244.0.10 10.244.0.11 10.244.0.12
done
ip=$(svc_ip sticky)

# Without affinity, the same client is spread (so that sticking below is
# the affinity's doing).
run_load "$C1" -n 30 -c 1 -w 3000 "$(svc_ip plain)" 80
assert_even "plain (no affinity): client 1, 30 connections" 30 a b c

# UDP: client 1's datagrams, each from a new socket and source port, all go
# to one endpoint.
run_load "$C1" -u -n 30 -c 1 -w 3000 -P 40000 "$ip" 53
udp_first=$(sticky_to "sticky: client 1, 30 datagrams to $ip:53 from 30 source ports" 30)
echo "passed: udp affinity (client 1 -> $udp_first)" >&2

# Through the ClusterIP.
affinity sticky "$ip" "$ip" 80 "${PORTS[sticky]}"
echo "passed: tcp affinity through the ClusterIP" >&2

# Through the nodePort, at the node's address on each client's link.
np=$(node_port sticky-np)
affinity sticky-np "$(topo_node_ip "$C1")" "$(topo_node_ip "$C2")" "$np" "${PORTS[sticky-np]}"
echo "passed: tcp affinity through the nodePort" >&2

svcd_stop
