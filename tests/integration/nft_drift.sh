#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: the periodic full resync (--resync-period 1) repairs
# what someone else changed in table ip svcd: the whole table deleted, a
# chain flushed, one rule deleted, one element deleted from the endpoints
# map, a foreign element added, an element rewritten.  Each time, within
# 5 s, the table is back to what it was and traffic to the service works
# again.  A table of another owner (ip other) is never touched.
#
#       +-- client C --------------------------+
#       |  192.168.77.2  load -> ClusterIP:80  |
#       +-----------------+--------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --resync-period 1 --node-name node1 ...          |
#   |  table ip svcd (svcd's)        table ip other (someone else's)         |
#   |  `nft delete table / flush chain / delete rule / delete element`       |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------------+-------------------------------------+-----------------+
#                    |                                     |
#   +----------------+-----------------+  +----------------+-----------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11            |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353             |
#   +----------------------------------+  +----------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

# restored WHAT: within 5 s the table is as it was and the service answers
# 20 connections out of 20, from both endpoints.
restored() {
	local t0=${EPOCHREALTIME//[!0-9]/}
	_poll 5 table_is "$before" ||
		nft_fail "$1: table ip svcd not restored within 5 s (--resync-period 1):
--- diff expected now ---
$(diff <(echo "$before") <(nft_table 2>&1))"
	both_answer "$1: after the repair" "$ip" 80
	echo "$1: restored in $(ms_since "$t0") ms"
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

# Another owner's table (with a set; chains of other tables are
# nft_foreign.sh's business).
nsx "$NODE" nft add table ip other
nsx "$NODE" nft add set ip other keep '{ type ipv4_addr; }'
nsx "$NODE" nft add element ip other keep '{ 192.0.2.1, 192.0.2.2 }'
other_before=$(other_table)

svcd_start "${SVCD_ARGS[@]}" --resync-period 1
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11
	service_yaml np http:80:8080/TCP 'type: NodePort'
} | apply_wait
ip=$(svc_ip web)
before=$(nft_table) || nft_fail "cannot list table ip svcd"
topo_load_ok "$C" -n 20 -c 5 -w 3000 "$ip" 80 >/dev/null

# The whole table.
nsx "$NODE" nft delete table ip svcd
restored "table deleted"

# One element of the endpoints map (slot 0 of the service: half the
# connections would find no endpoint and be refused).
nsx "$NODE" nft delete element ip svcd endpoints "{ $ip . tcp . 80 . 0x00000000 }"
restored "element $ip . tcp . 80 . 0 deleted from map endpoints"

# An element nobody asked for: a ClusterIP svcd does not have, and an
# endpoint slot pointing elsewhere.
nsx "$NODE" nft add element ip svcd cluster-ips "{ 10.96.200.200 }"
nsx "$NODE" nft add element ip svcd endpoints "{ $ip . tcp . 80 . 0x00000007 : 192.0.2.99 . 80 }"
restored "foreign elements added to cluster-ips and endpoints"

# An element changed in place: slot 1 now points to a wrong port.
nsx "$NODE" nft delete element ip svcd endpoints "{ $ip . tcp . 80 . 0x00000001 }"
nsx "$NODE" nft add element ip svcd endpoints "{ $ip . tcp . 80 . 0x00000001 : 10.244.0.11 . 9999 }"
restored "endpoint slot 1 rewritten to port 9999"

# A chain flushed: no service is load-balanced any more.
nsx "$NODE" nft flush chain ip svcd services
restored "chain services flushed"

# One rule of a chain (the last rule of reject-check), by its handle.
handle=$(nsx "$NODE" nft -a list chain ip svcd reject-check |
	awk '/reject/ && /# handle/ { h = $NF } END { print h }')
[[ $handle =~ ^[0-9]+$ ]] || nft_fail "no rule handle found in chain reject-check"
nsx "$NODE" nft delete rule ip svcd reject-check handle "$handle"
restored "one rule of chain reject-check deleted"

# A chain's hook rule: nat-prerouting without its jump.
nsx "$NODE" nft flush chain ip svcd nat-prerouting
restored "chain nat-prerouting flushed"

# A load-balancing chain (the one the service's vmap element jumps to).
# The service's key sits in the set of its shape, svc-<chain>; that chain
# balances it.
set=""
for s in $(nsx "$NODE" nft list sets ip | awk '$1 == "set" && $2 ~ /^svc-/ { print $2 }'); do
	nft_elems_of "$s" | grep -qx "$ip . tcp . 80" && set=$s
done
lb=${set#svc-}
[ -n "$set" ] || nft_fail "no svc-* set holds $ip . tcp . 80"
nsx "$NODE" nft flush chain ip svcd "$lb"
restored "chain $lb flushed"

# The other table is as it was, also once svcd has stopped; and so is svcd's.
assert_eq "$(other_table)" "$other_before" "table ip other after the repairs"
svcd_stop
assert_eq "$(other_table)" "$other_before" "table ip other after svcd stopped"
table_is "$before" || nft_fail "table ip svcd changed when svcd stopped"
