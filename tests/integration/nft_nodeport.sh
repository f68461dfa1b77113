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

command -v nft >/dev/null || skip "nft (the nftables CLI) is not installed"

nft_state() {
	echo "--- nft list table ip svcd (in $NODE) ---"
	nsx "$NODE" nft list table ip svcd 2>&1
	echo "--- svcctl status -o json ---"
	svcctl status -o json 2>&1
}

nft_fail() {
	fail "$*
$(nft_state)"
}

run_load() {
	local ns=$1
	shift
	RC=0
	topo_load "$ns" "$@" >"$T/.load_out" 2>"$T/.load_err" || RC=$?
	OUT=$(cat "$T/.load_out")
	ERR=$(head -n 20 "$T/.load_err")
}

# assert_spread WHAT TOTAL NAME...: see nft_spread.sh.
assert_spread() {
	local what=$1 total=$2 name n sum=0 lo hi
	shift 2
	lo=$((total * 20 / 100))
	hi=$((total * 47 / 100))
	[ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" ok)" -eq "$total" ] ||
		nft_fail "$what: expected $total successes and no failure, load exited $RC:
$OUT
$ERR"
	for name; do
		n=$(topo_count "$OUT" "$name")
		((n >= lo && n <= hi)) ||
			nft_fail "$what: backend $name got $n of $total, expected $lo-$hi:
$OUT"
		sum=$((sum + n))
	done
	assert_eq "$sum" "$total" "$what: answers from the expected backends only ($OUT)"
}

# node_port SERVICE: the nodePort svcd allocated to SERVICE's first port.
node_port() {
	local json np
	json=$(svcctl get svc "$1" -o json) || fail "svcctl get svc $1 failed"
	np=$(json_field "$json" nodePort) || fail "service $1 has no nodePort: $json"
	[[ $np =~ ^[0-9]+$ ]] && ((np >= 30000 && np <= 32767)) ||
		fail "service $1: nodePort '$np' is not in 30000-32767"
	echo "$np"
}

# local_endpoints NODE_OF_A: the Endpoints of service local, pod a on node
# NODE_OF_A, pod b on node2.
local_endpoints() {
	svcctl apply --wait -f - >/dev/null <<EOF
apiVersion: v1
kind: Endpoints
metadata: {name: local}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: $1}
  - {ip: 10.244.0.11, nodeName: node2}
  ports:
  - {name: http, port: 8080, protocol: TCP}
EOF
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C
node=$(topo_node_ip "$C")

svcd_start --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16

svcctl apply --wait -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: np}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: node1}
  - {ip: 10.244.0.11, nodeName: node1}
  - {ip: 10.244.0.12, nodeName: node1}
  ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  externalIPs: [192.0.2.10]
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext}
subsets:
- addresses:
  - {ip: 10.244.0.10}
  - {ip: 10.244.0.11}
  - {ip: 10.244.0.12}
  ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
EOF
local_endpoints node2

# NodePort at the node's address on the client's link.
np=$(node_port np)
run_load "$C" -n 300 -c 10 -w 3000 "$node" "$np"
assert_spread "tcp $node:$np (NodePort)" 300 a b c

# externalIP: the client's default route takes 192.0.2.10 to the node.
run_load "$C" -n 300 -c 10 -w 3000 192.0.2.10 80
assert_spread "tcp 192.0.2.10:80 (externalIP)" 300 a b c

# externalTrafficPolicy Local, no endpoint on node1: dropped, so the client
# times out (a reset or ICMP error would fail it at once).
lp=$(node_port local)
run_load "$C" -n 3 -c 3 -w 1000 "$node" "$lp"
[ "$RC" -eq 1 ] && [ "$OUT" = "ok 0 failed 3" ] ||
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
[ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" ok)" -eq 40 ] ||
	nft_fail "pod a -> $lip:80 (ClusterIP of the Local service): load exited $RC:
$OUT
$ERR"

# Pod a moves to node1: the nodePort works, and only a answers.
local_endpoints node1
run_load "$C" -n 40 -c 5 -w 3000 "$node" "$lp"
[ "$RC" -eq 0 ] && [ "$OUT" = $'a 40\nok 40 failed 0' ] ||
	nft_fail "tcp $node:$lp (policy Local, local endpoint a): expected all 40 from a, load exited $RC:
$OUT
$ERR"

svcd_stop
