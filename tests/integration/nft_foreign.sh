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

command -v nft >/dev/null || skip "nft (the nftables CLI) is not installed"

SVCD_ARGS=(--mode nftables --resync-period 1 --node-name node1 --cluster-cidr 10.244.0.0/16)

nft_state() {
	echo "--- nft list ruleset (in $NODE) ---"
	nsx "$NODE" nft list ruleset 2>&1
	if [ -n "$SVCD_PID" ]; then
		echo "--- svcctl status -o json ---"
		svcctl status -o json 2>&1
	fi
}

nft_fail() {
	fail "$*
$(nft_state)"
}

# nft_table: see nft_restart.sh (elements sorted, below the structure).
nft_table() {
	local raw
	raw=$(nsx "$NODE" nft list table ip svcd) || return 1
	awk '
		$1 == "set" || $1 == "map" { cur = $2 }
		/elements = \{/ { inel = 1; print "\t\telements = <below>"; sub(/.*elements = \{/, "") }
		inel {
			line = $0
			end = sub(/\}.*/, "", line)
			n = split(line, part, ",")
			for (i = 1; i <= n; i++) {
				e = part[i]
				gsub(/^[ \t]+|[ \t]+$/, "", e)
				if (e != "") print "E " cur ": " e | "sort"
			}
			if (end) inel = 0
			next
		}
		{ print }' <<<"$raw"
}

# other_table: table ip other, its counter's figures left out.
other_table() {
	nsx "$NODE" nft list table ip other | sed 's/counter packets [0-9]* bytes [0-9]*/counter/'
}

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
	_poll 5 synced_since "$n" && n=$(json_field "$(svcctl status -o json)" syncs) &&
		_poll 5 synced_since "$n" ||
		nft_fail "$1: svcd's resyncs fail or stopped:
$(tail -n 3 "$T/.poll_out")"
}

# both_answer WHAT: 20 connections to the service, answered by a and b.
both_answer() {
	local out rc=0
	out=$(topo_load "$C" -n 20 -c 5 -w 3000 "$ip" 80 2>&1) || rc=$?
	[ "$rc" -eq 0 ] && [ "$(topo_count "$out" a)" -gt 0 ] && [ "$(topo_count "$out" b)" -gt 0 ] ||
		nft_fail "$1: 20 connections to $ip:80 not all answered by a and b (load exited $rc):
$out"
}

table_back() {
	[ "$(nft_table)" = "$before" ]
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
if ! out=$(svcctl apply --wait -f - 2>&1 <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: node1}
  - {ip: 10.244.0.11, nodeName: node1}
  ports:
  - {name: http, port: 8080, protocol: TCP}
EOF
); then
	nft_fail "apply --wait failed with table ip other (which has chains) present:
$out"
fi
ip=$(svc_ip web)
both_answer "service with table ip other present"
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
_poll 5 table_back || nft_fail "element $ip . tcp . 80 . 0 not restored within 5 s"
both_answer "after the repair"
assert_eq "$(other_table)" "$other_before" "table ip other after svcd's repair"

# A restart adopts svcd's table and leaves the other one alone.
svcd_stop
svcd_start "${SVCD_ARGS[@]}"
full_syncs_ok "after a restart"
table_back || nft_fail "table ip svcd differs after the restart"
both_answer "after the restart"
assert_eq "$(other_table)" "$other_before" "table ip other after a restart"

# --cleanup takes only svcd's table.
svcd_stop
nsx "$NODE" "$SVCD_BIN" --cleanup >"$T/cleanup.out" 2>&1 9>&- ||
	nft_fail "svcd --cleanup failed: $(cat "$T/cleanup.out")"
_check_sanitizer "$T/cleanup.out"
nsx "$NODE" nft list tables | grep -qx 'table ip svcd' &&
	nft_fail "table ip svcd still there after svcd --cleanup"
assert_eq "$(other_table)" "$other_before" "table ip other after svcd --cleanup"
