#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: the rules outlive the daemon on purpose (traffic keeps
# flowing while svcd is down or being upgraded), and `svcd --cleanup` is how
# they go: it removes table ip svcd and nothing else, and is idempotent.
# Started again (--mode auto picks nftables), svcd programs everything anew
# from its state directory.
#
#       +-- client C ---------------------------------------------------+
#       |  192.168.77.2  load -> ClusterIP:80, 192.168.77.1:<nodePort>  |
#       +-----------------+---------------------------------------------+
#                         | veth (node 192.168.77.1)
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables ...; stopped; `svcd --cleanup`; svcd --mode auto |
#   |  table ip svcd (svcd's)   table ip other, table inet svcd (not svcd's) |
#   |  web: ClusterIP 80->8080 a b   web-np: NodePort 80->8080 a b           |
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

NFT_STATE_RULESET=1 # failures show the other tables too

# others: the tables that are not svcd's (table ip other, table inet svcd).
others() {
	nsx "$NODE" nft list table ip other
	nsx "$NODE" nft list table inet svcd
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C
node=$(topo_node_ip "$C")

svcd_start "${SVCD_ARGS[@]}"
{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11
	service_yaml web-np http:80:8080/TCP 'type: NodePort'
	endpoints_yaml web-np http:8080/TCP 10.244.0.10 10.244.0.11
} | apply_wait
ip=$(svc_ip web)
np=$(node_port web-np)
both_answer "with svcd running (ClusterIP)" "$ip" 80
both_answer "with svcd running (NodePort)" "$node" "$np"
table_before=$(nsx "$NODE" nft list table ip svcd)

# The daemon stops; its rules stay and keep working.
svcd_stop
has_svcd_table || nft_fail "table ip svcd is gone after svcd stopped (SIGTERM)"
assert_eq "$(nsx "$NODE" nft list table ip svcd)" "$table_before" "table ip svcd after svcd stopped"
both_answer "with svcd stopped (ClusterIP)" "$ip" 80
both_answer "with svcd stopped (NodePort)" "$node" "$np"

# Someone else's tables: one in the same family, and one named svcd in
# another family.  (svcd coexisting with foreign chains in family ip is
# nft_drift.sh's business; here only --cleanup is under test.)
nsx "$NODE" nft -f - <<'EOF'
table ip other {
	set keep { type ipv4_addr; elements = { 192.0.2.1 } }
}
table inet svcd {
	chain output { type filter hook output priority 10; policy accept; }
}
EOF
others_before=$(others)

# --cleanup: table ip svcd goes, nothing else.
svcd_cleanup
ruleset=$(nsx "$NODE" nft list ruleset)
assert_not_contains "$ruleset" "table ip svcd {" "nft list ruleset after svcd --cleanup"
assert_contains "$ruleset" "table ip other {" "nft list ruleset after svcd --cleanup"
assert_eq "$(others)" "$others_before" "the other tables after svcd --cleanup"
# Without the rules the ClusterIP is nobody's address any more.
run_load "$C" -n 3 -c 3 -w 500 "$ip" 80
{ [ "$RC" -ne 0 ] && [ "$(topo_count "$OUT" ok)" -eq 0 ]; } ||
	nft_fail "the ClusterIP $ip still answers after svcd --cleanup: $OUT"
# Again: nothing to remove, still success.
svcd_cleanup
assert_eq "$(others)" "$others_before" "the other tables after a second svcd --cleanup"

# Started again (mode auto), svcd programs it all from its state directory.
svcd_start --mode auto --node-name node1 --cluster-cidr 10.244.0.0/16
st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" nftables "status mode with --mode auto"
wait_for 5 has_svcd_table
both_answer "after svcd started again (ClusterIP)" "$ip" 80
both_answer "after svcd started again (NodePort)" "$node" "$np"
svcd_stop
svcd_cleanup
has_svcd_table && nft_fail "table ip svcd is still there after the last svcd --cleanup"
assert_eq "$(others)" "$others_before" "the other tables at the end"
