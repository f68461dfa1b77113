#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The topology of the data-plane tests.  A test sources it after lib.sh:
#     . "$(dirname "$0")/../lib.sh"
#     . "$(dirname "$0")/../topo.sh"
#
#                      +-- client: topo_client C --------+
#                      |  eth0 192.168.77.2/24           |
#                      |  default via 192.168.77.1       |
#                      |  load ...  (topo_load $C ...)   |
#                      +----------------+----------------+
#                                       | veth
#   +-- node: $NODE (topo_node) --------+----------------------------------------+
#   |                      svcc<k> 192.168.77.1/24                               |
#   |  ip_forward=1: routes client <-> pods; svcd and its nftables rules here    |
#   |                      svcb0 (bridge) 10.244.0.1/24                          |
#   |          svcp<i> (hairpin on)          svcp<j> (hairpin on)    ...         |
#   +----------------+---------------------------------------+-------------------+
#                    | veth                                  | veth
#   +----------------+------------------+   +----------------+-------------------+
#   |  pod: topo_pod A a 10.244.0.10    |   |  pod: topo_pod B b 10.244.0.11     |
#   |  eth0 10.244.0.10/24              |   |  eth0 10.244.0.11/24               |
#   |  default via 10.244.0.1           |   |  default via 10.244.0.1            |
#   |  echo a 8080 9090 5353 (tcp+udp)  |   |  echo b 8080 9090 5353 (tcp+udp)   |
#   +-----------------------------------+   +------------------------------------+
#
# Pods share 10.244.0.0/24 on the bridge (the cluster CIDR is 10.244.0.0/16);
# the client is outside it.  Client k (1, 2, ...) gets its own link,
# 192.168.(76+k).2/24 with the node at 192.168.(76+k).1; the first is
# 192.168.77.0/24.  Node-side interfaces are svcp<n> (pods) and svcc<n>
# (clients), n a per-test counter; inside pods and clients it is eth0.
#
# Every interface and sysctl lives in a namespace made with lib.sh's ns_new:
# the host's networking is never touched, and lib.sh's cleanup (EXIT, INT,
# TERM) kills what runs in those namespaces (the echo servers with it) and
# deletes them, which deletes the veth pairs and the bridge.
#
# In the node and the pods, net.ipv4.icmp_ratemask=0 (ICMP errors, such as
# port unreachable, are not rate-limited, so each refused datagram or
# rejected connection is seen at once); in pods and clients,
# net.ipv4.tcp_tw_reuse=1 (a run of thousands of connections does not run
# out of ports to TIME_WAIT).
#
# The tools are $TOPO_TOOLS/echo and $TOPO_TOOLS/load, by default
# build/tests/tools of the build svcd comes from (tests/run.sh BUILD -> BUILD).

TOPO_BRIDGE=svcb0
TOPO_GW=10.244.0.1
TOPO_POD_NET=10.244.0.0/24
TOPO_PORTS="8080 9090 5353" # every pod's echo, TCP and UDP
TOPO_IF_COUNT=0
TOPO_CLIENT_COUNT=0
TOPO_NODE_READY=
declare -gA TOPO_IP=() TOPO_NAME=() TOPO_PID=() TOPO_IF=() TOPO_LOG=() TOPO_NODE_IP=()

_topo_tools_dir() {
	local d=${SVCD_BIN:-}
	d=${d%/svcd}
	d=${d%/san}
	if [ -n "$d" ] && [ -x "$d/tests/tools/echo" ]; then
		echo "$d/tests/tools"
	else
		echo "${SVCT_REPO:-.}/build/tests/tools"
	fi
}
TOPO_TOOLS=${TOPO_TOOLS:-$(_topo_tools_dir)}

# _topo_tool NAME: the path of tool NAME; fails when it is not built.
_topo_tool() {
	[ -x "$TOPO_TOOLS/$1" ] ||
		fail "$TOPO_TOOLS/$1 not found; build it first (make build/tests/tools/$1) or set TOPO_TOOLS"
	echo "$TOPO_TOOLS/$1"
}

# topo_sysctl NS KEY=VALUE...: set sysctls inside namespace NS only
# (/proc/sys/net is per network namespace).
topo_sysctl() {
	local ns=$1 kv key
	shift
	for kv; do
		key=${kv%%=*}
		# shellcheck disable=SC2016 # expanded by the inner sh
		nsx "$ns" sh -c 'echo "$2" >"/proc/sys/$1"' sh "${key//.//}" "${kv#*=}" ||
			fail "cannot set $kv in namespace $ns"
	done
}

# topo_node: namespace $NODE (made if unset) with forwarding on and the pod
# bridge svcb0 10.244.0.1/24 up.  Called by topo_pod and topo_client if needed.
topo_node() {
	[ -z "$TOPO_NODE_READY" ] || return 0
	[ -n "${NODE:-}" ] || ns_new NODE
	topo_sysctl "$NODE" net.ipv4.ip_forward=1 net.ipv4.icmp_ratemask=0
	ip -n "$NODE" link add "$TOPO_BRIDGE" type bridge stp_state 0 ||
		fail "cannot create bridge $TOPO_BRIDGE in $NODE"
	{
		ip -n "$NODE" addr add "$TOPO_GW/24" dev "$TOPO_BRIDGE" &&
			ip -n "$NODE" link set "$TOPO_BRIDGE" up
	} || fail "cannot set up bridge $TOPO_BRIDGE in $NODE"
	TOPO_NODE_READY=1
}

# _topo_veth NS HOSTIF: a veth pair, HOSTIF on the node and eth0 in NS.
_topo_veth() {
	ip -n "$NODE" link add "$2" type veth peer name eth0 netns "$1" ||
		fail "cannot create veth $2 (node) - eth0 ($1)"
}

# topo_pod VAR NAME IP: a pod namespace with eth0 IP/24 on the bridge,
# running `echo NAME 8080 9090 5353`; returns once all of them listen.  The
# namespace's name goes into VAR.  IP is in 10.244.0.0/24, not .0, .1 or .255.
topo_pod() {
	local var=$1 name=$2 ip=$3 ns host last=${3##*.}
	[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || fail "topo_pod: bad name '$name'"
	if ! ip_in_cidr "$ip" "$TOPO_POD_NET" || [[ $last =~ ^(0|1|255)$ ]]; then
		fail "topo_pod: $ip is not a pod address in $TOPO_POD_NET (.1 is the gateway)"
	fi
	topo_node
	ns_new ns
	TOPO_IF_COUNT=$((TOPO_IF_COUNT + 1))
	host=svcp$TOPO_IF_COUNT
	_topo_veth "$ns" "$host"
	{
		ip -n "$NODE" link set "$host" master "$TOPO_BRIDGE" &&
			bridge -n "$NODE" link set dev "$host" hairpin on &&
			ip -n "$NODE" link set "$host" up &&
			ip -n "$ns" addr add "$ip/24" dev eth0 &&
			ip -n "$ns" link set eth0 up &&
			ip -n "$ns" route add default via "$TOPO_GW"
	} || fail "cannot set up pod $name ($ns, $ip)"
	topo_sysctl "$ns" net.ipv4.icmp_ratemask=0 net.ipv4.tcp_tw_reuse=1
	TOPO_NAME[$ns]=$name
	TOPO_IP[$ns]=$ip
	TOPO_IF[$ns]=$host
	TOPO_LOG[$ns]=$T/echo-$TOPO_IF_COUNT-$name.log
	topo_echo_start "$ns"
	printf -v "$var" '%s' "$ns"
}

# topo_echo_start POD: (re)start the pod's echo server; returns once it
# listens on every port, TCP and UDP (10 s at most).  Its pid: topo_pod_pid.
topo_echo_start() {
	local ns=$1 bin
	bin=$(_topo_tool echo) || exit 1
	[ -n "${TOPO_NAME[$ns]:-}" ] || fail "topo_echo_start: $ns is not a pod"
	[ -z "${TOPO_PID[$ns]:-}" ] || fail "topo_echo_start: echo already runs in $ns"
	# shellcheck disable=SC2086 # one port a word
	nsx_bg "$ns" "$bin" "${TOPO_NAME[$ns]}" $TOPO_PORTS >>"${TOPO_LOG[$ns]}" 2>&1 </dev/null
	TOPO_PID[$ns]=$!
	wait_for 10 _topo_echo_ready "$ns"
}

# _topo_echo_ready POD: ss lists every port as a TCP listener and a UDP socket.
_topo_echo_ready() {
	local ns=$1 out port
	if _dead "${TOPO_PID[$ns]}"; then
		fail "echo in pod ${TOPO_NAME[$ns]} ($ns) exited:
$(cat "${TOPO_LOG[$ns]}")"
	fi
	out=$(nsx "$ns" ss -Hlntu) || return 1
	for port in $TOPO_PORTS; do
		awk -v p=":$port" '
			substr($5, length($5) - length(p) + 1) == p { seen[$1] = 1 }
			END { exit !(seen["tcp"] && seen["udp"]) }' <<<"$out" || return 1
	done
}

# topo_echo_stop POD: SIGTERM the pod's echo and wait until it has exited
# (cleanly: status 0); then connections to the pod are refused.
topo_echo_stop() {
	local ns=$1 pid=${TOPO_PID[$1]:-} rc=0
	[ -n "$pid" ] || fail "topo_echo_stop: no echo runs in $ns"
	kill -TERM "$pid" 2>/dev/null || true
	_poll 10 _dead "$pid" || fail "echo in pod ${TOPO_NAME[$ns]} did not exit on SIGTERM"
	wait "$pid" || rc=$?
	TOPO_PID[$ns]=
	[ "$rc" -eq 0 ] || fail "echo in pod ${TOPO_NAME[$ns]} exited $rc after SIGTERM:
$(cat "${TOPO_LOG[$ns]}")"
}

# topo_client VAR: a client namespace outside the cluster, linked to the node
# (the first: 192.168.77.2/24, node 192.168.77.1, its default route).
topo_client() {
	local var=$1 ns host net
	topo_node
	ns_new ns
	TOPO_CLIENT_COUNT=$((TOPO_CLIENT_COUNT + 1))
	TOPO_IF_COUNT=$((TOPO_IF_COUNT + 1))
	net=192.168.$((76 + TOPO_CLIENT_COUNT))
	host=svcc$TOPO_IF_COUNT
	_topo_veth "$ns" "$host"
	{
		ip -n "$NODE" addr add "$net.1/24" dev "$host" &&
			ip -n "$NODE" link set "$host" up &&
			ip -n "$ns" addr add "$net.2/24" dev eth0 &&
			ip -n "$ns" link set eth0 up &&
			ip -n "$ns" route add default via "$net.1"
	} || fail "cannot set up client $ns ($net.2)"
	topo_sysctl "$ns" net.ipv4.tcp_tw_reuse=1
	TOPO_IP[$ns]=$net.2
	TOPO_NODE_IP[$ns]=$net.1
	TOPO_IF[$ns]=$host
	printf -v "$var" '%s' "$ns"
}

# topo_ip NS: the address of pod or client NS (eth0).
topo_ip() {
	[ -n "${TOPO_IP[$1]:-}" ] || fail "topo_ip: $1 is not a pod or client"
	echo "${TOPO_IP[$1]}"
}

# topo_pod_ip POD: the pod's address.  topo_pod_name POD: its echo NAME.
# topo_pod_pid POD: its echo's pid (empty once stopped).
topo_pod_ip() {
	topo_ip "$1"
}

topo_pod_name() {
	[ -n "${TOPO_NAME[$1]:-}" ] || fail "topo_pod_name: $1 is not a pod"
	echo "${TOPO_NAME[$1]}"
}

topo_pod_pid() {
	echo "${TOPO_PID[$1]:-}"
}

# topo_node_ip CLIENT: the node's address on CLIENT's link (for NodePorts).
topo_node_ip() {
	[ -n "${TOPO_NODE_IP[$1]:-}" ] || fail "topo_node_ip: $1 is not a client"
	echo "${TOPO_NODE_IP[$1]}"
}

# topo_host_if NS: the node-side interface of pod or client NS.
topo_host_if() {
	[ -n "${TOPO_IF[$1]:-}" ] || fail "topo_host_if: $1 is not a pod or client"
	echo "${TOPO_IF[$1]}"
}

# topo_load NS ARGS...: run `load ARGS` in NS; its output and status.  A hang
# ends after $TOPO_LOAD_TIMEOUT (120) seconds.
topo_load() {
	local ns=$1 load
	shift
	load=$(_topo_tool load) || exit 1
	nsx "$ns" timeout -k 5 "${TOPO_LOAD_TIMEOUT:-120}" "$load" "$@"
}

# topo_load_ok NS ARGS...: topo_load, which must exit 0; prints its stdout.
# Otherwise fails the test with load's output and first errors.
topo_load_ok() {
	local ns=$1 out rc=0 err
	shift
	err=$(mktemp "$T/.load_err.XXXXXX")
	out=$(topo_load "$ns" "$@" 2>"$err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "load $* in $ns exited $rc:
$out
$(head -n 20 "$err")"
	fi
	rm -f "$err"
	echo "$out"
}

# topo_count OUTPUT KEY: from load's OUTPUT, the count of backend KEY (0 when
# absent), or with KEY ok, failed or rate, that figure.
topo_count() {
	awk -v k="$2" '
		$1 == "ok" && $3 == "failed" && NF == 4 { s["ok"] = $2; s["failed"] = $4; next }
		$1 == "rate" && NF == 2 { sub("/s$", "", $2); s["rate"] = $2; next }
		NF == 2 { n[$1] = $2 }
		END { print (k == "ok" || k == "failed" || k == "rate") ? s[k] + 0 : n[k] + 0 }' <<<"$1"
}
