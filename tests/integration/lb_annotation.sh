#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Per-service choice of the userspace balancer: in --mode nftables, a
# service annotated svcd.io/proxy-mode: userspace is served by svcd's
# balancer (its ClusterIP on lo, svcd listening on each of its ports, TCP
# and UDP, "listen" and "lb" in `svcctl list -o json`, the balancer's
# counters counting its traffic), while a service without the annotation
# stays with nftables alone (no address on lo, no socket, no "listen"; its
# ClusterIP in table ip svcd).  Without its annotation, the first service
# goes back to nftables.
#
#       +-- client C ---------------------------------+
#       |  192.168.77.2  load -> both ClusterIPs      |
#       +-----------------+---------------------------+
#                         | veth
#   +-- node: $NODE ------+------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16 |
#   |  user: 80/TCP->8080, 53/UDP->5353, svcd.io/proxy-mode: userspace     |
#   |        (then the annotation is removed)                              |
#   |  plain: 80/TCP->8080 (nftables)         lo: user's ClusterIP/32      |
#   |                  svcb0 10.244.0.1/24                                 |
#   +----------------+-------------------------------+---------------------+
#                    |                               |
#   +----------------+-----------------+  +----------+----------------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11           |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353            |
#   +----------------------------------+  +---------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

# ep_total PORT: the balancer's total over user's endpoints a and b on PORT.
ep_total() {
	local a b
	a=$(lb_ep_counter user "10.244.0.10:$1" total)
	b=$(lb_ep_counter user "10.244.0.11:$1" total)
	echo $((a + b))
}

# both WHAT N: the last run_load succeeded N times, answered by a and b
# (and nobody else).
both() {
	local what=$1 n=$2
	expect_ok "$what" "$n"
	{ [ "$(topo_count "$OUT" a)" -gt 0 ] && [ "$(topo_count "$OUT" b)" -gt 0 ] &&
		[ $(($(topo_count "$OUT" a) + $(topo_count "$OUT" b))) -eq "$n" ]; } ||
		nft_fail "$what: expected answers from both a and b, and nobody else:
$OUT"
}

# userspace_gone: service user is no longer served by the balancer.
userspace_gone() {
	! vip_on_lo "$user" && ! svcd_listens tcp "$user:80" && ! svcd_listens udp "$user:53" &&
		lb_json && ! lb_has user listen
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

svcd_start --mode nftables --node-name "$NFT_NODE_NAME" --cluster-cidr 10.244.0.0/16
st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" nftables "status mode"

{
	service_yaml user http:80:8080/TCP,dns:53:5353/UDP | userspace_yaml
	endpoints_yaml user http:8080/TCP,dns:5353/UDP 10.244.0.10 10.244.0.11
	service_yaml plain http:80:8080/TCP
	endpoints_yaml plain http:8080/TCP 10.244.0.10 10.244.0.11
} | apply_wait
user=$(svc_ip user)
plain=$(svc_ip plain)
json=$(svcctl get svc user -o json)
assert_contains "$json" '"svcd.io/proxy-mode": "userspace"' "service user's annotation"

# user: the balancer's.
vip_on_lo "$user" || nft_fail "user's ClusterIP $user/32 is not on the node's lo"
svcd_listens tcp "$user:80" || nft_fail "svcd does not listen on tcp $user:80"
svcd_listens udp "$user:53" || nft_fail "svcd does not listen on udp $user:53"
lb_json || fail "svcctl list -o json failed"
listen=$(lb_listen user) || nft_fail "service user has no \"listen\""
assert_match "$listen" "^${user//./\\.}:80/TCP\$" "user's \"listen\""
assert_match "$listen" "^${user//./\\.}:53/UDP\$" "user's \"listen\""

# plain: nftables' alone.
vip_on_lo "$plain" && nft_fail "plain's ClusterIP $plain is on lo"
svcd_listens tcp "$plain:80" && nft_fail "svcd listens on plain's $plain:80"
lb_has plain listen && nft_fail "service plain (not annotated) has a \"listen\""
lb_has plain lb && nft_fail "service plain (not annotated) has an \"lb\""
[[ $(nft_table) == *" $plain "* ]] || nft_fail "plain's ClusterIP $plain is not in table ip svcd"

# Traffic: user's is the balancer's, counted by it.
run_load "$C" -n 40 -c 5 -w 3000 "$user" 80
assert_even "tcp $user:80 (user, userspace)" 40 a b
wait_for 10 lb_idle user
assert_eq "$(ep_total 8080)" 40 "the balancer's total for user's tcp endpoints"
run_load "$C" -u -n 40 -c 5 -w 3000 -P 40000 "$user" 53
assert_even "udp $user:53 (user, userspace)" 40 a b
assert_eq "$(ep_total 5353)" 40 "the balancer's total for user's udp endpoints"
run_load "$C" -n 40 -c 5 -w 3000 "$plain" 80
both "tcp $plain:80 (plain, nftables)" 40
echo "passed: user by the balancer, plain by nftables" >&2

# Without the annotation, user goes back to nftables: its address leaves lo,
# its sockets close, and it still works.
{
	service_yaml user http:80:8080/TCP,dns:53:5353/UDP
} | apply_wait
wait_for 5 userspace_gone
run_load "$C" -n 40 -c 5 -w 3000 "$user" 80
both "tcp $user:80 (user, back to nftables)" 40
# (Source ports other than those the balancer saw: a stale conntrack entry
# of theirs, not NATed, is not what this test is about.)
run_load "$C" -u -n 40 -c 5 -w 3000 -P 42000 "$user" 53
both "udp $user:53 (user, back to nftables)" 40
echo "passed: user back to nftables" >&2

svcd_stop
