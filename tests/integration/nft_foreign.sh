#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane next to other owners' tables in the same family (as
# iptables-nft, firewalld or docker would have): svcd programs, resyncs,
# repairs, restarts and cleans up its own table ip svcd, and never touches
# table ip other nor mistakes its chains (even those named like svcd's own:
# services, lb-2) for its own.
#
#       +-- client C --------------------------+
#       |  192.168.77.2  load -> ClusterIP:80  |
#       +-----------------+--------------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --resync-period 1 --node-name node1 ...          |
#   |  table ip svcd (svcd's)                                                |
#   |  table ip other: set keep; chains input (hooked), services, lb-2,      |
#   |                  later (added while svcd runs)                         |
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

SVCD_ARGS+=(--resync-period 1)
NFT_STATE_RULESET=1 # failures show table ip other too

# synced_since SYNCS: more syncs than SYNCS, and the last one without error.
synced_since() {
	local st
	st=$(svcctl status -o json) || return 1
	(($(json_field "$st" syncs) > $1)) && [ "$(json_field "$st" lastSync error)" = null ] &&
		[ "$(json_field "$st" synced)" = true ]
}

# full_syncs_ok: two more syncs (full ones: --resync-period 1), no error.
full_syncs_ok() {
	local n
	n=$(json_field "$(svcctl status -o json)" syncs) || fail "no syncs in svcctl status -o json"
	{ _poll 5 synced_since "$n" && n=$(json_field "$(svcctl status -o json)" syncs) &&
		_poll 5 synced_since "$n"; } ||
		nft_fail "$1: svcd's resyncs fail or stopped:
$(tail -n 3 "$T/.poll_out")"
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_client C

nsx "$NODE" nft -f - <<'EOF'
table ip other {
	set keep { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2 } }
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @keep counter accept
	}
	chain services { ip daddr 192.0.2.1 counter; }
	chain lb-2 { }
}
EOF
other_before=$(other_table)

svcd_start "${SVCD_ARGS[@]}"
if ! out=$({
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11
} | svcctl apply --wait -f - 2>&1); then
	nft_fail "apply --wait failed with table ip other (which has chains) present:
$out"
fi
ip=$(svc_ip web)
both_answer "service with table ip other present" "$ip" 80
full_syncs_ok "table ip other present"
assert_eq "$(other_table)" "$other_before" "table ip other after svcd programmed its table"

# Someone changes the other table while svcd runs.
nsx "$NODE" nft add chain ip other later
nsx "$NODE" nft add rule ip other later counter
other_before=$(other_table)
full_syncs_ok "a chain added to table ip other"
before=$(nft_table)

# A repair (one endpoint element deleted) with the other table around.
nsx "$NODE" nft delete element ip svcd endpoints "{ $ip . tcp . 80 . 0x00000000 }"
_poll 5 table_is "$before" || nft_fail "element $ip . tcp . 80 . 0 not restored within 5 s"
both_answer "after the repair" "$ip" 80
assert_eq "$(other_table)" "$other_before" "table ip other after svcd's repair"

# A restart adopts svcd's table and leaves the other one alone.
svcd_stop
svcd_start "${SVCD_ARGS[@]}"
full_syncs_ok "after a restart"
table_is "$before" || nft_fail "table ip svcd differs after the restart"
both_answer "after the restart" "$ip" 80
assert_eq "$(other_table)" "$other_before" "table ip other after a restart"

# --cleanup takes only svcd's table.
svcd_stop
svcd_cleanup
has_svcd_table && nft_fail "table ip svcd still there after svcd --cleanup"
assert_eq "$(other_table)" "$other_before" "table ip other after svcd --cleanup"
