#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer (--mode userspace): svcd makes each ClusterIP and
# externalIP local (a /32 on the node's lo), listens itself on ClusterIP:port
# (TCP or UDP, as the port says) and on 0.0.0.0:nodePort, and relays new
# connections (UDP: new client sessions) to the ready endpoints round robin,
# so each gets an even share.  `svcctl status` says mode userspace; `svcctl
# list -o json` shows where a service is listened on ("listen") and the
# balancer's counters ("lb"), which add up to what the client did.  UDP
# sessions end once quiet for --lb-udp-timeout.  Once a service is deleted,
# its address leaves lo and nothing listens there; an address the node had
# on lo before a service used it stays.
#
#       +-- client C -----------------------------------------------+
#       |  192.168.77.2  load -> ClusterIPs, 192.168.77.1:nodePorts, |
#       |                         192.0.2.10:80 (externalIP)         |
#       +-----------------+-----------------------------------------+
#                         | veth (node 192.168.77.1)
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode userspace --node-name node1 ... --lb-udp-timeout 2        |
#   |  lo: 127.0.0.1, every ClusterIP/32, 192.0.2.10/32                      |
#   |  web: 80/TCP->8080   dns: 53/UDP->5353   ext: 192.0.2.10:80->8080      |
#   |  np: NodePort 80/TCP->8080   np-udp: NodePort 53/UDP->5353             |
#   |  each relayed from the node:  svcb0 10.244.0.1/24                      |
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

# served SERVICE PROTO ADDR:PORT [LISTEN_RE]: right after `apply --wait`
# (no polling: the balancer is part of the data plane that --wait waits
# for), svcd listens on ADDR:PORT and SERVICE's "listen" names it (an entry
# matching the regex LISTEN_RE, by default exactly ADDR:PORT/PROTO).
served() {
	local svc=$1 proto=$2 addr=$3 re=${4:-} listen
	[ -n "$re" ] || re="^${3//./\\.}/${proto^^}\$"
	svcd_listens "$proto" "$addr" ||
		nft_fail "service $svc: svcd does not listen on $proto $addr"
	lb_json || fail "svcctl list -o json failed"
	listen=$(lb_listen "$svc") || nft_fail "service $svc has no \"listen\" in svcctl list -o json"
	assert_match "$listen" "$re" "service $svc: \"listen\""
}

# web_gone: web's ClusterIP is off lo and svcd no longer listens on it.
web_gone() {
	! vip_on_lo "$web" && ! svcd_listens tcp "$web:80"
}

# own_gone: svcd no longer listens on service own's external IP.
own_gone() { ! svcd_listens tcp 192.0.2.20:80; }

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C
node=$(topo_node_ip "$C")

svcd_start "${SVCD_ARGS[@]}" --lb-udp-timeout 2
st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" userspace "status mode"

{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
	service_yaml dns dns:53:5353/UDP
	endpoints_yaml dns dns:5353/UDP 10.244.0.10@ 10.244.0.11@ 10.244.0.12@
	service_yaml np http:80:8080/TCP 'type: NodePort'
	endpoints_yaml np http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
	service_yaml np-udp dns:53:5353/UDP 'type: NodePort'
	endpoints_yaml np-udp dns:5353/UDP 10.244.0.10 10.244.0.11 10.244.0.12
	service_yaml ext http:80:8080/TCP 'externalIPs: [192.0.2.10]'
	endpoints_yaml ext http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
} | apply_wait
web=$(svc_ip web)
dns=$(svc_ip dns)
np=$(node_port np)
np_udp=$(node_port np-udp)

for ip in "$web" "$dns" "$(svc_ip np)" "$(svc_ip ext)" 192.0.2.10; do
	vip_on_lo "$ip" || nft_fail "$ip/32 is not on the node's lo"
done
served web tcp "$web:80"
served dns udp "$dns:53"
served np tcp "0.0.0.0:$np" ":$np/TCP\$"
served np-udp udp "0.0.0.0:$np_udp" ":$np_udp/UDP\$"
served ext tcp "192.0.2.10:80"

# TCP through the ClusterIP: 300 connections, 10 at a time.  Each gets the
# backend's "x\n" (2 bytes) and sends nothing.
run_load "$C" -n 300 -c 10 -w 3000 "$web" 80
assert_even "tcp $web:80" 300 a b c
wait_for 10 lb_idle web
assert_lb_counts "tcp $web:80" web 300 8080
assert_eq "$(lb_counter web .lb.bytes_out)" 600 "web: lb.bytes_out (backend -> client)"
assert_eq "$(lb_counter web .lb.bytes_in)" 0 "web: lb.bytes_in (client -> backend)"
assert_eq "$(lb_counter web .lb.connect_failures)" 0 "web: lb.connect_failures"
# The same in the wide table: where, connections active/total, failures.
wide=$(svcctl list -o wide | awk '$2 == "web" { print $(NF - 2), $(NF - 1), $NF }')
assert_eq "$wide" "$web:80/TCP 0/300 0" "svcctl list -o wide: web's LISTEN CONNECTIONS FAILED"
echo "passed: tcp through the ClusterIP" >&2

# UDP through the ClusterIP: 300 datagrams, each from a socket of its own
# source port (-P), so each is a new session.
run_load "$C" -u -n 300 -c 10 -w 3000 -P 40000 "$dns" 53
assert_even "udp $dns:53" 300 a b c
assert_lb_counts "udp $dns:53" dns 300 5353
# The 300 sessions, quiet now, end after 2 s (checked at most every second).
wait_for 15 lb_idle dns
echo "passed: udp through the ClusterIP" >&2

# Through the nodePorts, at the node's address on the client's link.
run_load "$C" -n 300 -c 10 -w 3000 "$node" "$np"
assert_even "tcp $node:$np (nodePort)" 300 a b c
wait_for 10 lb_idle np
assert_lb_counts "tcp $node:$np (nodePort)" np 300 8080
run_load "$C" -u -n 150 -c 10 -w 3000 -P 41000 "$node" "$np_udp"
assert_even "udp $node:$np_udp (nodePort)" 150 a b c
assert_lb_counts "udp $node:$np_udp (nodePort)" np-udp 150 5353
echo "passed: nodePorts" >&2

# The externalIP, which the client routes to the node.
run_load "$C" -n 60 -c 10 -w 3000 192.0.2.10 80
assert_even "tcp 192.0.2.10:80 (externalIP)" 60 a b c
echo "passed: externalIP" >&2

# The ClusterIP does not answer on the endpoint port itself.
run_load "$C" -n 3 -w 3000 "$web" 8080
{ [ "$RC" -ne 0 ] && [ "$(topo_count "$OUT" ok)" -eq 0 ]; } ||
	nft_fail "tcp $web:8080 (not a service port) reached a backend: $OUT"

# A deleted service: its address leaves lo, its listener closes.
svcctl delete svc web >/dev/null
wait_for 5 web_gone
run_load "$C" -n 3 -w 1000 "$web" 80
[ "$(topo_count "$OUT" ok)" -eq 0 ] || nft_fail "tcp $web:80 still answered after service web was deleted: $OUT"
vip_on_lo "$dns" || nft_fail "$dns/32 (service dns) left lo with service web"

# An address the node had on lo before a service used it stays when the
# service goes: svcd removes only what it added.
ip -n "$NODE" addr add 192.0.2.20/32 dev lo
{
	service_yaml own http:80:8080/TCP 'externalIPs: [192.0.2.20]'
	endpoints_yaml own http:8080/TCP 10.244.0.10
} | apply_wait
served own tcp "192.0.2.20:80"
svcctl delete svc own >/dev/null
wait_for 5 own_gone
vip_on_lo 192.0.2.20 || nft_fail "192.0.2.20/32, on lo before service own used it, left lo with own"

svcd_stop
