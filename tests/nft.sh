# Helpers of the nftables data-plane tests (tests/integration/nft_*.sh).  A
# test sources it after lib.sh and topo.sh:
#     . "$(dirname "$0")/../lib.sh"
#     . "$(dirname "$0")/../topo.sh"
#     . "$(dirname "$0")/../nft.sh"
# and is skipped when the nft CLI is missing.  It gets SVCD_ARGS (svcd's
# options), failure messages that show the rules (nft_fail), a normalized
# listing of table ip svcd (nft_table), Service and Endpoints writers, and
# load runs with checks of who answered (run_load, expect_ok, expect_all,
# assert_spread, both_answer).  Every pod and client is made with topo.sh;
# the node is $NODE, the client of both_answer $C.
# SPDX-License-Identifier: MIT
# shellcheck shell=bash

command -v nft >/dev/null || skip "nft (the nftables CLI) is not installed"

# The node's name, as svcd is told and as Endpoints addresses name it.
NFT_NODE_NAME=node1

# The options svcd runs with: nftables on node1 of the cluster 10.244.0.0/16.
# A test adds its own, e.g. SVCD_ARGS+=(--resync-period 1).
# shellcheck disable=SC2034 # for the tests
SVCD_ARGS=(--mode nftables --node-name "$NFT_NODE_NAME" --cluster-cidr 10.244.0.0/16)

# ---- failure messages -----------------------------------------------------

# nft_state: the node's table ip svcd (the whole ruleset with
# NFT_STATE_RULESET=1) and, while svcd runs, its status: what a failure shows.
nft_state() {
	local listing=(table ip svcd)
	[ "${NFT_STATE_RULESET:-0}" != 1 ] || listing=(ruleset)
	echo "--- nft list ${listing[*]} (in $NODE) ---"
	nsx "$NODE" nft list "${listing[@]}" 2>&1
	if [ -n "$SVCD_PID" ]; then
		echo "--- svcctl status -o json ---"
		svcctl status -o json 2>&1
	fi
}

# nft_fail MSG: fail with MSG and the nft_state.
nft_fail() {
	fail "$*
$(nft_state)"
}

# ---- the rules ------------------------------------------------------------

# nft_table: table ip svcd with the elements of each set taken out of
# their blocks and sorted, so that two listings compare modulo element order.
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

# nft_elems_of SET: the elements of set or map SET of table ip svcd, one a
# line, sorted.
nft_elems_of() {
	nft_table | awk -v p="E $1: " 'index($0, p) == 1 { print substr($0, length(p) + 1) }'
}

# table_is WANT: the nft_table equals WANT (an earlier nft_table).
table_is() {
	[ "$(nft_table)" = "$1" ]
}

# has_svcd_table: the node has a table ip svcd.
has_svcd_table() {
	nsx "$NODE" nft list tables | grep -qx 'table ip svcd'
}

# other_table: table ip other (someone else's), its counters' figures left
# out, to check that svcd never touches it.
other_table() {
	nsx "$NODE" nft list table ip other | sed 's/counter packets [0-9]* bytes [0-9]*/counter/'
}

# svcd_cleanup: `svcd --cleanup` in the node; must exit 0, with no
# sanitizer report.
svcd_cleanup() {
	local rc=0
	# shellcheck disable=SC2153 # SVCD_BIN is lib.sh's
	nsx "$NODE" "$SVCD_BIN" --cleanup >"$T/cleanup.out" 2>&1 </dev/null 9>&- || rc=$?
	_check_sanitizer "$T/cleanup.out"
	[ "$rc" -eq 0 ] || nft_fail "svcd --cleanup exited $rc:
$(cat "$T/cleanup.out")"
}

# ---- manifests ------------------------------------------------------------

# service_yaml NAME PORTS [SPEC...]: a Service document (after a --- line).
# PORTS is NAME:PORT:TARGETPORT/PROTOCOL[,...], e.g. http:80:8080/TCP; each
# SPEC is one more line of its spec, e.g. 'type: NodePort'.
service_yaml() {
	local name=$1 ports p line port target proto
	IFS=, read -ra ports <<<"$2"
	shift 2
	printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n' "$name"
	for line; do
		printf '  %s\n' "$line"
	done
	printf '  ports:\n'
	for p in "${ports[@]}"; do
		IFS=:/ read -r name port target proto <<<"$p"
		printf '  - {name: %s, port: %s, targetPort: %s, protocol: %s}\n' \
			"$name" "$port" "$target" "$proto"
	done
}

# endpoints_yaml NAME PORTS ADDR...: an Endpoints document (after a --- line),
# one subset.  PORTS is NAME:PORT/PROTOCOL[,...], e.g. http:8080/TCP; ADDR is
# IP (nodeName node1, this node), IP@NODE (nodeName NODE) or IP@ (none).
endpoints_yaml() {
	local name=$1 ports p addr port proto
	IFS=, read -ra ports <<<"$2"
	shift 2
	printf -- '---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: %s}\nsubsets:\n- addresses:\n' "$name"
	for addr; do
		[[ $addr == *@* ]] || addr=$addr@$NFT_NODE_NAME
		if [ -n "${addr#*@}" ]; then
			printf '  - {ip: %s, nodeName: %s}\n' "${addr%@*}" "${addr#*@}"
		else
			printf '  - {ip: %s}\n' "${addr%@*}"
		fi
	done
	printf '  ports:\n'
	for p in "${ports[@]}"; do
		IFS=:/ read -r name port proto <<<"$p"
		printf '  - {name: %s, port: %s, protocol: %s}\n' "$name" "$port" "$proto"
	done
}

# apply_wait: apply the manifests on stdin, waiting until the data plane has
# them (svcctl apply --wait); its output is dropped.
apply_wait() {
	svcctl apply --wait -f - >/dev/null
}

# node_port SERVICE: the nodePort svcd allocated to SERVICE's first port.
node_port() {
	local json np
	json=$(svcctl get svc "$1" -o json) || fail "svcctl get svc $1 failed"
	np=$(json_field "$json" nodePort) || fail "service $1 has no nodePort: $json"
	echo "$np"
}

# ---- traffic --------------------------------------------------------------

# ms_since T0: milliseconds since T0, a time in microseconds taken as
# ${EPOCHREALTIME//[!0-9]/}.
ms_since() {
	echo $(((${EPOCHREALTIME//[!0-9]/} - $1) / 1000))
}

# run_load NS ARGS...: topo_load; sets OUT (its stdout), ERR (the first 20
# lines of its stderr), RC (its status) and MS (how long it took); never fails.
run_load() {
	local ns=$1 t0
	shift
	RC=0
	t0=${EPOCHREALTIME//[!0-9]/}
	topo_load "$ns" "$@" >"$T/.load_out" 2>"$T/.load_err" || RC=$?
	# shellcheck disable=SC2034 # for the tests
	MS=$(((${EPOCHREALTIME//[!0-9]/} - t0) / 1000))
	OUT=$(cat "$T/.load_out")
	ERR=$(head -n 20 "$T/.load_err")
}

# expect_ok WHAT N: the last run_load succeeded N times, with no failure.
expect_ok() {
	{ [ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" ok)" -eq "$2" ]; } ||
		nft_fail "$1: expected $2 successes and no failure, load exited $RC:
$OUT
$ERR"
}

# expect_all WHAT NAME N: the last run_load made N connections, all to NAME.
expect_all() {
	{ [ "$RC" -eq 0 ] && [ "$OUT" = "$2 $3"$'\n'"ok $3 failed 0" ]; } ||
		nft_fail "$1: expected all $3 answered by $2, load exited $RC:
$OUT
$ERR"
}

# assert_spread WHAT TOTAL NAME...: the last run_load succeeded TOTAL times
# with no failure, each NAME getting 20%-47% of them, nobody else any.
assert_spread() {
	local what=$1 total=$2 name n sum=0 lo hi
	shift 2
	lo=$((total * 20 / 100))
	hi=$((total * 47 / 100))
	expect_ok "$what" "$total"
	for name; do
		n=$(topo_count "$OUT" "$name")
		((n >= lo && n <= hi)) ||
			nft_fail "$what: backend $name got $n of $total, expected $lo-$hi:
$OUT"
		sum=$((sum + n))
	done
	assert_eq "$sum" "$total" "$what: answers from the expected backends only ($OUT)"
}

# both_answer WHAT ADDR PORT: 20 connections from client $C to ADDR:PORT, all
# fine, answered by both pod a and pod b.
both_answer() {
	run_load "$C" -n 20 -c 5 -w 3000 "$2" "$3"
	{ [ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" a)" -gt 0 ] && [ "$(topo_count "$OUT" b)" -gt 0 ]; } ||
		nft_fail "$1: expected 20 connections to $2:$3 answered by both a and b, load exited $RC:
$OUT
$ERR"
}

# sticky_to WHAT N: the last run_load made N connections, no failure, all to
# one backend; prints its name.
sticky_to() {
	local what=$1 n=$2 names
	expect_ok "$what" "$n"
	names=$(awk 'NF == 2 && $1 != "rate" && $1 != "ok" { print $1 }' <<<"$OUT")
	[ "$(wc -l <<<"$names")" -eq 1 ] ||
		nft_fail "$what: connections went to more than one endpoint despite sessionAffinity ClientIP:
$OUT"
	echo "$names"
}

# affinity SERVICE ADDR1 ADDR2 PORT EP_PORTS: client 1 ($C1) at ADDR1:PORT
# and client 2 ($C2) at ADDR2:PORT each stick to one endpoint of SERVICE,
# whose pods a b c are at ${pod_ip[a|b|c]}; client 1's leaves the
# Endpoints (ports EP_PORTS, as endpoints_yaml takes them), and client 1
# sticks to one of those that remain.  (nft_affinity, lb_affinity)
affinity() {
	local svc=$1 addr1=$2 addr2=$3 port=$4 eports=$5 first second again moved keep=() name
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
	endpoints_yaml "$svc" "$eports" "${keep[@]}" | apply_wait
	run_load "$C1" -n 20 -c 1 -w 3000 "$addr1" "$port"
	moved=$(sticky_to "$svc: client 1 after its endpoint $first left" 20)
	[ "$moved" != "$first" ] ||
		nft_fail "$svc: client 1 still sent to $first (${pod_ip[$first]}) after it left the Endpoints"
	run_load "$C1" -n 20 -c 5 -w 3000 "$addr1" "$port"
	again=$(sticky_to "$svc: client 1, 20 more connections" 20)
	assert_eq "$again" "$moved" "$svc: client 1's new endpoint"
}
