#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: a long-lived UDP flow (one socket, one source port)
# follows endpoint changes.  UDP has no connection to end, so the conntrack
# entry that pins the flow to an endpoint would live as long as the client
# keeps sending; svcd must delete the flows of an endpoint that leaves.
#   1. a service without endpoints refuses the socket's datagrams; once
#      endpoints are applied the same socket is answered (no stale entry);
#   2. the socket is pinned to one endpoint; that endpoint leaves the
#      Endpoints (its pod keeps running and answering): within 2 s the same
#      socket's datagrams are answered by the other endpoint;
#   3. the service is deleted: within 2 s nothing answers the socket;
#   4. as 2., through a nodePort at the node's address.
#
#       +-- client C -------------------------------------------+
#       |  192.168.77.2  bash: exec 3<>/dev/udp/<ClusterIP>/53  |
#       |  (later /dev/udp/192.168.77.1/<nodePort>):            |
#       |  one connected socket, a fixed source port            |
#       +-----------------+-------------------------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  dns: 53/UDP -> 5353: no endpoints, then a b, then one of them         |
#   |  dns-np: NodePort 53/UDP -> 5353: a b, then one of them                |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------------+-------------------------------------+-----------------+
#                    |                                     |
#   +----------------+-----------------+  +----------------+-----------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11            |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353             |
#   +----------------------------------+  +----------------------------------+
#
# `load -u` (also with -s) sends every datagram from a fresh socket, so a
# small bash loop in the client keeps one socket instead: /dev/udp opens a
# connected socket, `read -N 1` takes the first byte of each reply (the pod
# names are one letter), an ICMP error makes the read fail at once.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

# nft_fail MSG: nft.sh's, with the replies the socket got so far.
nft_fail() {
	fail "$*
$(nft_state)
--- replies so far (oldest first) ---
$(tr '\n' ' ' <"$T/replies")"
}

# failover SERVICE WHAT: the socket, just answered by one of SERVICE's two
# endpoints (a, b), is pinned to it; that endpoint leaves (its pod still
# runs: a stale flow would still be answered by it); within 2 s the same
# socket is answered by the other one, and stays with it.
failover() {
	local svc=$1 what=$2 pinned=$REPLY other=a t0
	asks 20 "$pinned"
	[ "$pinned" = b ] || other=b
	endpoints "$svc" "${pod_ip[$other]}"
	t0=${EPOCHREALTIME//[!0-9]/}
	_poll 2 ask_is "$other" ||
		nft_fail "$what: the socket pinned to $pinned (${pod_ip[$pinned]}) was not answered by $other within 2 s of $pinned leaving the Endpoints ($(ms_since "$t0") ms): last reply '$REPLY'"
	asks 20 "$other"
}

# udp_open ADDR PORT: start the client's one-socket sender.  For each line
# it reads it sends one datagram and prints the reply's first byte, or -
# (refused, or no reply within 1 s), or ! (the send failed).
udp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	coproc UDPC {
		exec ip netns exec "$C" bash -c '
			exec 3<>"/dev/udp/$1/$2" || exit 1
			while read -r _; do
				printf "ping\n" >&3 2>/dev/null || { echo "!"; continue; }
				if IFS= read -r -N 1 -t 1 -u 3 c 2>/dev/null; then echo "$c"; else echo "-"; fi
			done' udpc "$1" "$2" 9>&-
	}
	UDPC_IN=${UDPC[1]}
	UDPC_OUT=${UDPC[0]}
	: >"$T/replies"
}

# client_socket ADDR:PORT: the client has a UDP socket connected to it.
client_socket() {
	nsx "$C" ss -Hun | grep -qF " $1"
}

# udp_close: end the sender (it exits when its input ends).
udp_close() {
	local pid=$UDPC_PID
	exec {UDPC_IN}>&-
	_poll 5 _dead "$pid" || fail "the UDP client (pid $pid) did not exit when its input ended"
	wait "$pid" 2>/dev/null || true
}

# ask: one datagram from the socket; the reply's first byte goes to REPLY
# (and to $T/replies).
ask() {
	echo >&"$UDPC_IN" || fail "the UDP client has exited"
	read -r -t 5 REPLY <&"$UDPC_OUT" || fail "the UDP client did not answer"
	echo "$REPLY" >>"$T/replies"
}

# ask_is NAME: one datagram, answered by NAME (- for nothing).
ask_is() {
	ask
	[ "$REPLY" = "$1" ]
}

ask_is_pod() {
	ask
	[ "$REPLY" = a ] || [ "$REPLY" = b ]
}

# asks N NAME: N datagrams in a row, all answered by NAME.
asks() {
	local i
	for ((i = 0; i < $1; i++)); do
		ask
		[ "$REPLY" = "$2" ] || nft_fail "datagram $((i + 1)) of $1: expected an answer from '$2', got '$REPLY'"
	done
}

# endpoints SERVICE IP...: apply (--wait) the Endpoints of SERVICE.
endpoints() {
	endpoints_yaml "$1" dns:5353/UDP "${@:2}" | apply_wait
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C
declare -A pod_ip=([a]=10.244.0.10 [b]=10.244.0.11)

svcd_start "${SVCD_ARGS[@]}"

service_yaml dns dns:53:5353/UDP | apply_wait
ip=$(svc_ip dns)
udp_open "$ip" 53
wait_for 5 client_socket "$ip:53"

# 1. No endpoints: refused.  Then endpoints: the same socket is answered.
asks 3 -
endpoints dns 10.244.0.10 10.244.0.11
t0=${EPOCHREALTIME//[!0-9]/}
_poll 2 ask_is_pod ||
	nft_fail "the socket refused for the service without endpoints is still not answered $(ms_since "$t0") ms after endpoints were applied"
echo "passed 1. no endpoints, then endpoints" >&2

# 2. Pinned: the flow's conntrack entry keeps it on one endpoint.
failover dns "$ip:53"
echo "passed 2. failover through the ClusterIP" >&2

# 3. The service goes: nothing answers the socket any more.
svcctl delete svc dns >/dev/null
t0=${EPOCHREALTIME//[!0-9]/}
_poll 2 ask_is - ||
	nft_fail "the socket was still answered (by '$REPLY') $(ms_since "$t0") ms after its service was deleted"
# (Unanswered: nothing routes the old ClusterIP, and a UDP socket is not
# told of a network unreachable, so each of these waits out its 1 s.)
asks 1 -
echo "passed 3. service deleted" >&2

# 4. The same through a nodePort, at the node's address.
udp_close
service_yaml dns-np dns:53:5353/UDP 'type: NodePort' | apply_wait
endpoints dns-np 10.244.0.10 10.244.0.11
np=$(node_port dns-np)
node=$(topo_node_ip "$C")
udp_open "$node" "$np"
wait_for 5 client_socket "$node:$np"
ask_is_pod || nft_fail "udp $node:$np (nodePort): no answer from a or b: '$REPLY'"
failover dns-np "udp $node:$np (nodePort)"
echo "passed 4. failover through a nodePort" >&2

udp_close
svcd_stop
