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

# endpoints SERVICE POD_IP...: apply (--wait) the Endpoints of SERVICE.
endpoints() {
	endpoints_yaml "$1" http:8080/TCP "${@:2}" | apply_wait
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
affinity sticky "$ip" "$ip" 80 http:8080/TCP

# Through the nodePort, at the node's address on each client's link.
np=$(node_port sticky-np)
affinity sticky-np "$(topo_node_ip "$C1")" "$(topo_node_ip "$C2")" "$np" http:8080/TCP

svcd_stop
