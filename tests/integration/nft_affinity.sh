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

# sticky_to WHAT N: the last run_load made N connections, no failure, all to
# one backend; prints its name.
sticky_to() {
	local what=$1 n=$2 names
	[ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" ok)" -eq "$n" ] ||
		nft_fail "$what: expected $n successes, load exited $RC:
$OUT
$ERR"
	names=$(awk 'NF == 2 && $1 != "rate" { print $1 }' <<<"$OUT")
	[ "$(wc -l <<<"$names")" -eq 1 ] ||
		nft_fail "$what: connections went to more than one endpoint despite sessionAffinity ClientIP:
$OUT"
	echo "$names"
}

# endpoints_yaml SERVICE POD_IP...: the Endpoints object of SERVICE.
endpoints_yaml() {
	local ip
	printf 'apiVersion: v1\nkind: Endpoints\nmetadata: {name: %s}\nsubsets:\n- addresses:\n' "$1"
	shift
	for ip; do
		printf '  - {ip: %s, nodeName: node1}\n' "$ip"
	done
	printf '  ports:\n  - {name: http, port: 8080, protocol: TCP}\n'
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
	endpoints_yaml "$svc" "${keep[@]}" | svcctl apply --wait -f - >/dev/null
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

svcd_start --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16

svcctl apply --wait -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: sticky-np}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
EOF
for svc in sticky sticky-np; do
	endpoints_yaml "$svc" 10.244.0.10 10.244.0.11 10.244.0.12 | svcctl apply --wait -f - >/dev/null
done

# Through the ClusterIP.
ip=$(svc_ip sticky)
affinity sticky "$ip" "$ip" 80

# Through the nodePort, at the node's address on each client's link.
json=$(svcctl get svc sticky-np -o json)
np=$(json_field "$json" nodePort) || fail "no nodePort in: $json"
affinity sticky-np "$(topo_node_ip "$C1")" "$(topo_node_ip "$C2")" "$np"

svcd_stop
