#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The nftables data-plane benchmark, side by side with the ruleset kube-proxy's
# nftables mode would load through `nft -f` (bench/kubeproxy_shape.sh), in the
# same run:
#
#   1. full sync: 10,000 services x 2 endpoints (vs kube-proxy's full load),
#      and 30,000 x 5
#   2. one service added to a loaded ruleset (vs kube-proxy's partial sync),
#      with 100, 1,000, 10,000 and 30,000 services loaded
#   3. event to rules: `svcctl apply --wait` wall time, 200 single services
#   4. data path: connections/s through the first and the last of 10,000
#      VIPs vs to the pod directly
#   5. svcd's RSS with 30,000 services x 5 endpoints
#
# Everything runs in throwaway network namespaces made here (svcnft-<random>-*)
# with temp state dirs and sockets; the host's own networking and ruleset are
# never touched, and an EXIT trap removes all of it, also on failure.
#
#   node ns (svcd --mode nftables, ip_forward=1)
#     svcb0 bridge 10.244.0.1/24 --veth-- pod ns: eth0 10.244.0.10 (+ .11),
#                                          `echo bench 8080`
#     svcc1 192.168.77.1/24      --veth-- client ns: eth0 192.168.77.2, `load`
#
# usage: bench/nft.sh [BUILD_DIR]        (default build; needs root, nft, ip)
# Takes about 70 s.  Exit status: 0 when every target passes, 1 otherwise.
# Environment:
#   NFT_BENCH_KP30K=1  also load kube-proxy's shape for 30,000 x 2 (about
#                      6 minutes more; x 5 does not fit the generator's pod CIDR)
#   NFT_BENCH_ADDS     single-service adds per size (20)
#   NFT_BENCH_E2R      applies for the event-to-rules figure (200)
#   TMPDIR             where the state dirs go (/tmp; /dev/shm puts them on
#                      tmpfs, without the disk's fsyncs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
REPO=$(pwd)
BUILD=$(cd "${1:-build}" && pwd)
SVCD=$BUILD/svcd
CTL=$BUILD/svcctl
LOAD=$BUILD/tests/tools/load
ECHO=$BUILD/tests/tools/echo
ADDS=${NFT_BENCH_ADDS:-20}
E2R=${NFT_BENCH_E2R:-200}

for f in "$SVCD" "$CTL" "$LOAD" "$ECHO"; do
	[ -x "$f" ] || { echo "$0: $f not found; run make (and make build/tests/tools/{echo,load})" >&2; exit 1; }
done
for cmd in nft ip awk sort timeout; do
	command -v "$cmd" >/dev/null || { echo "$0: $cmd not found" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/svcnft-XXXXXX")
RUN=svcnft-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	bench_stop_all
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- helpers ----------------------------------------------------------------

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# ns_new VAR TAG: a fresh namespace, its name in VAR.
ns_new() {
	local name=$RUN-$2
	ip netns add "$name"
	NSES+=("$name")
	printf -v "$1" '%s' "$name"
}

sysctl_ns() { # NS KEY VALUE
	# shellcheck disable=SC2016 # expanded by the inner sh
	ip netns exec "$1" sh -c 'echo "$2" >"/proc/sys/$1"' sh "${2//.//}" "$3"
}

ctl() { # SOCK ARGS...
	local sock=$1
	shift
	"$CTL" --socket "$sock" "$@"
}

# svcd_start NS DIR MODE: svcd in NS with state DIR/state, socket DIR/sock,
# log DIR/svcd.log; sets SVCD_PID; returns once it answers.  The data plane
# alone: cluster DNS (its answers for 30,000 services take about 16 MB,
# bench/dns.sh) and the pod runtime have benchmarks of their own.
svcd_start() {
	local ns=$1 dir=$2 mode=$3 i
	mkdir -p "$dir"
	ip netns exec "$ns" "$SVCD" --mode "$mode" --resync-period 0 --no-dns --no-pods \
		--state-dir "$dir/state" --socket "$dir/sock" >>"$dir/svcd.log" 2>&1 </dev/null &
	SVCD_PID=$!
	PIDS+=("$SVCD_PID")
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$SVCD_PID" 2>/dev/null || { cat "$dir/svcd.log" >&2; die "svcd ($mode) exited at start"; }
		ctl "$dir/sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$dir/svcd.log" >&2
	die "svcd ($mode) did not answer within 60 s"
}

svcd_stop() {
	kill -TERM "$SVCD_PID" 2>/dev/null || true
	wait "$SVCD_PID" 2>/dev/null || true
	SVCD_PID=
}

# status_read SOCK: S_SYNCED S_DESIRED S_APPLIED S_SYNCS S_FULL S_DUR (seconds)
# S_NSVC (services of the last sync) S_ERR (null or set) S_ELEMS S_CHAINS
# S_HEAP (svcd's heapBytes, in MB).
status_read() {
	local out
	out=$(ctl "$1" status -o json) || return 1
	read -r S_SYNCED S_DESIRED S_APPLIED S_SYNCS S_FULL S_DUR S_NSVC S_ERR S_ELEMS S_CHAINS S_HEAP < <(awk '
		function val(   s) { s = $0; sub(/^[^:]*: */, "", s); sub(/,$/, "", s); return s }
		/"lastSync": *\{/ { ls = 1; next }
		ls && /^ *\}/ { ls = 0; next }
		/^    "synced":/ { v["synced"] = val() }
		/^    "desiredGeneration":/ { v["desired"] = val() }
		/^    "appliedGeneration":/ { v["applied"] = val() }
		/^    "syncs":/ { v["syncs"] = val() }
		/^    "programmedElements":/ { v["elems"] = val() }
		/^    "programmedChains":/ { v["chains"] = val() }
		/^    "heapBytes":/ { v["heap"] = val() }
		ls && /"durationSeconds":/ { v["dur"] = val() + 0 }
		ls && /"full":/ { v["full"] = val() }
		ls && /"services":/ { v["nsvc"] = val() }
		ls && /"error":/ { v["err"] = (val() == "null") ? "null" : "set" }
		END { printf "%s %s %s %s %s %.9f %s %s %s %s %.1f\n", v["synced"], v["desired"], v["applied"],
			v["syncs"], v["full"], v["dur"], v["nsvc"], v["err"], v["elems"] + 0, v["chains"] + 0,
			v["heap"] / 1048576 }' <<<"$out")
}

# wait_full_sync SOCK: poll until the first full sync is done (60 s at most).
wait_full_sync() {
	local i
	for ((i = 0; i < 1200; i++)); do
		if status_read "$1" && [ "$S_SYNCED" = true ] && [ "$S_FULL" = true ] &&
			[ "${S_SYNCS:-0}" -ge 1 ] && [ "$S_APPLIED" = "$S_DESIRED" ]; then
			[ "$S_ERR" = null ] || die "full sync failed: $(ctl "$1" status)"
			return 0
		fi
		sleep 0.05
	done
	die "no full sync within 60 s: $(ctl "$1" status 2>&1)"
}

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Nearest-rank percentile P (0-100) of the numbers in FILE.
pct() { sort -g "$1" | awk -v p="$2" '{ a[NR] = $1 } END { k = int(NR * p / 100); if (k < NR * p / 100) k++; if (k < 1) k = 1; printf "%.6f", a[k] }'; }
maxof() { sort -g "$1" | tail -n 1; }
ms() { awk -v s="$1" 'BEGIN { printf "%.3f", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "inf"; else printf "%.1f", a / b }'; }
ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "0"; else printf "%.3f", a / b }'; }
# shellcheck disable=SC2317 # called through check
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
# shellcheck disable=SC2317
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
# shellcheck disable=SC2317
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

SUMMARY=()
verdict() { # OK(0/1) TEXT
	if [ "$1" = 0 ]; then SUMMARY+=("PASS  $2"); else SUMMARY+=("FAIL  $2"); fi
}
check() { # TEXT CMD...: PASS when CMD succeeds
	local text=$1
	shift
	if "$@"; then verdict 0 "$text"; else verdict 1 "$text"; fi
}
fig() { printf '  %-58s %s\n' "$1" "$2"; }

# gen N E PREFIX: services PREFIX.svc.json and endpoints PREFIX.ep.json,
# bench/svc-0..N-1, port http 80 -> 8080, E addresses each (10.100.0.1 up,
# never .0 or .255); with REAL=1 svc-0 and svc-(N-1) point at the pod
# (10.244.0.10 and 10.244.0.11, both on the pod's eth0).
gen() {
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"bench\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080}]}}\n", i }' >"$3.svc.json"
	awk -v n="$1" -v e="$2" -v real="${REAL:-0}" 'BEGIN { for (i = 0; i < n; i++) {
		a = ""
		for (j = 0; j < e; j++) {
			if (real && (i == 0 || i == n - 1))
				ip = "10.244.0." (10 + j % 2)
			else {
				k = i * e + j
				b = int(k / 250)
				ip = sprintf("10.%d.%d.%d", 100 + int(b / 250), b % 250, k % 250 + 1)
			}
			a = a (j ? "," : "") "{\"ip\":\"" ip "\"}"
		}
		printf "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"bench\"},\"subsets\":[{\"addresses\":[%s],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}]}\n", i, a
	} }' >"$3.ep.json"
}

# one_svc FILE NAME E: one Service and its Endpoints (E addresses in 10.200/16).
one_svc() {
	awk -v name="$2" -v e="$3" -v seed="$RANDOM" 'BEGIN {
		printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"bench\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080}]}}\n", name
		a = ""
		for (j = 0; j < e; j++)
			a = a (j ? "," : "") sprintf("{\"ip\":\"10.200.%d.%d\"}", seed % 250, j + 1)
		printf "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"bench\"},\"subsets\":[{\"addresses\":[%s],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}]}\n", name, a
	}' >"$1"
}

# populate DIR N E: with svcd --mode none (in a scratch namespace), store
# N services x E endpoints in DIR/state, then stop it.  With MODEL_RSS set,
# restart it (still --mode none) for MODEL_RSS_MB and MODEL_HEAP_MB: what the
# objects alone cost.
populate() {
	local dir=$1 n=$2 e=$3 ns t0 t1
	ns_new ns "pop$n"
	gen "$n" "$e" "$T/gen-$n"
	svcd_start "$ns" "$dir" none
	t0=$(now_us)
	ctl "$dir/sock" apply -f "$T/gen-$n.svc.json" >/dev/null
	ctl "$dir/sock" apply -f "$T/gen-$n.ep.json" >/dev/null
	t1=$(now_us)
	echo "  (stored $n services x $e endpoints with --mode none in $(ratio $((t1 - t0)) 1000000) s)"
	svcd_stop
	if [ -n "${MODEL_RSS:-}" ]; then
		# the objects alone, as a restarted daemon holds them (no data plane)
		svcd_start "$ns" "$dir" none
		status_read "$dir/sock"
		MODEL_RSS_MB=$(rss_mb "$SVCD_PID")
		MODEL_HEAP_MB=$S_HEAP
		svcd_stop
	fi
	ns_del "$ns"
	rm -f "$T/gen-$n.svc.json" "$T/gen-$n.ep.json"
}

# adds SOCK TAG E COUNT OUT: COUNT single-service applies (Service +
# Endpoints, --wait); OUT gets svcd's lastSync.durationSeconds of each, OUT.wall
# the client-side wall time of each apply, in seconds.  Counts syncs that
# were not a partial sync of one service in ODD.
adds() {
	local sock=$1 tag=$2 e=$3 count=$4 out=$5 i t0 t1 f=$T/one.json
	: >"$out"
	: >"$out.wall"
	ODD=0
	for ((i = 0; i < count; i++)); do
		one_svc "$f" "add-$tag-$i" "$e"
		t0=$(now_us)
		ctl "$sock" apply -f "$f" --wait >/dev/null
		t1=$(now_us)
		status_read "$sock"
		if [ "$S_FULL" != false ] || [ "$S_NSVC" != 1 ] || [ "$S_ERR" != null ] || [ "$S_SYNCED" != true ]; then
			ODD=$((ODD + 1))
			[ "$ODD" -gt 3 ] || echo "    note: apply $i ($tag) was followed by lastSync full=$S_FULL services=$S_NSVC error=$S_ERR synced=$S_SYNCED" >&2
		fi
		echo "$S_DUR" >>"$out"
		awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f\n", d / 1e6 }' >>"$out.wall"
	done
}

# ---- the run ----------------------------------------------------------------

echo "svcd nftables benchmark ($(nproc) CPUs, kernel $(uname -r), state dirs on $(findmnt -n -o FSTYPE -T "$T" 2>/dev/null | tail -n 1), run $RUN)"
echo "  Caveat: wall-clock figures on a shared, small machine; other work on it"
echo "  (load average now: $(cut -d' ' -f1-3 /proc/loadavg)) moves them from run to run."
echo "  Compare the ratios, measured in this same run, more than the absolute times."
echo

# -- kube-proxy's shape, first, on a quiet machine -----------------------------
echo "kube-proxy nftables shape through nft -f (bench/kubeproxy_shape.sh 10000 2) ..."
kp=$("$REPO/bench/kubeproxy_shape.sh" 10000 2)
KP_FULL=$(awk '$1 == "kubeproxy_full_load_seconds" { print $2 }' <<<"$kp")
KP_ADD=$(awk '$1 == "kubeproxy_add_one_seconds" { print $2 }' <<<"$kp")
if [ -z "$KP_FULL" ] || [ -z "$KP_ADD" ]; then die "kubeproxy_shape.sh printed: $kp"; fi
fig "kube-proxy shape: full load, 10,000 x 2" "$KP_FULL s"
fig "kube-proxy shape: add one service to 10,000" "$(ms "$KP_ADD") ms (one sample)"
if [ "${NFT_BENCH_KP30K:-0}" = 1 ]; then
	# x 2, not x 5: the generator's endpoints must fit 10.244.0.0/16 (65,534)
	kp30=$("$REPO/bench/kubeproxy_shape.sh" 30000 2)
	KP30_FULL=$(awk '$1 == "kubeproxy_full_load_seconds" { print $2 }' <<<"$kp30")
	KP30_ADD=$(awk '$1 == "kubeproxy_add_one_seconds" { print $2 }' <<<"$kp30")
	fig "kube-proxy shape: full load, 30,000 x 2" "$KP30_FULL s"
	fig "kube-proxy shape: add one service to 30,000 x 2" "$(ms "$KP30_ADD") ms (one sample)"
fi
echo

# -- 10,000 x 2: node, pod and client namespaces --------------------------------
echo "10,000 services x 2 endpoints (node namespace with a pod and a client) ..."
ns_new NODE node
ns_new POD pod
ns_new CLIENT client
sysctl_ns "$NODE" net.ipv4.ip_forward 1
ip -n "$NODE" link set lo up
ip -n "$NODE" link add svcb0 type bridge stp_state 0
ip -n "$NODE" addr add 10.244.0.1/24 dev svcb0
ip -n "$NODE" link set svcb0 up
ip -n "$NODE" link add svcp1 type veth peer name eth0 netns "$POD"
ip -n "$NODE" link set svcp1 master svcb0
ip -n "$NODE" link set svcp1 up
ip -n "$POD" link set lo up
ip -n "$POD" addr add 10.244.0.10/24 dev eth0
ip -n "$POD" addr add 10.244.0.11/24 dev eth0
ip -n "$POD" link set eth0 up
ip -n "$POD" route add default via 10.244.0.1
sysctl_ns "$POD" net.ipv4.tcp_tw_reuse 1
ip -n "$NODE" link add svcc1 type veth peer name eth0 netns "$CLIENT"
ip -n "$NODE" addr add 192.168.77.1/24 dev svcc1
ip -n "$NODE" link set svcc1 up
ip -n "$CLIENT" link set lo up
ip -n "$CLIENT" addr add 192.168.77.2/24 dev eth0
ip -n "$CLIENT" link set eth0 up
ip -n "$CLIENT" route add default via 192.168.77.1
sysctl_ns "$CLIENT" net.ipv4.tcp_tw_reuse 1
ip netns exec "$POD" "$ECHO" bench 8080 >"$T/echo.log" 2>&1 </dev/null &
PIDS+=("$!")
ECHO_PID=$!

D10=$T/n10k
REAL=1 populate "$D10" 10000 2
svcd_start "$NODE" "$D10" nftables
wait_full_sync "$D10/sock"
FULL10=$S_DUR
fig "full sync, 10,000 x 2 (svcd lastSync, $S_ELEMS elements, $S_CHAINS chains)" "$(ms "$FULL10") ms   (target <= 1000 ms)"
fig "  vs kube-proxy's full load ($KP_FULL s)" "$(ratio "$KP_FULL" "$FULL10")x faster   (target >= 95x)"
check "full sync 10,000 x 2: $(ms "$FULL10") ms <= 1000 ms" le "$FULL10" 1
check "full sync 10,000 x 2: $(ratio "$KP_FULL" "$FULL10")x faster than kube-proxy's nft -f ($KP_FULL s) >= 95x" ge "$(ratio "$KP_FULL" "$FULL10")" 95
[ "$(ctl "$D10/sock" status | awk '/^Services:/ { print $2 }')" = 10000 ] || die "svcd does not hold 10,000 services"
fig "  svcd RSS after the sync" "$(rss_mb "$SVCD_PID") MB (peak $(hwm_mb "$SVCD_PID") MB, heap $S_HEAP MB)"

# -- data path: first and last VIP vs the pod ------------------------------------
vip() {
	ctl "$D10/sock" get svc "$1" -n bench -o json | awk -F'"' '/"clusterIP":/ { print $4; exit }'
}
VIP_FIRST=$(vip svc-0)
VIP_LAST=$(vip svc-9999)
# one probe each: the path works before it is measured
for a in "10.244.0.10 8080" "$VIP_FIRST 80" "$VIP_LAST 80"; do
	# shellcheck disable=SC2086 # address and port
	ip netns exec "$CLIENT" timeout 20 "$LOAD" -n 20 -c 2 -w 3000 $a >"$T/probe.out" 2>&1 ||
		die "no connection to $a from the client: $(cat "$T/probe.out")"
done
# load ADDR PORT: the rate of one 3-second run (failures noted)
load_rate() {
	local out rc=0 f
	out=$(ip netns exec "$CLIENT" timeout -k 5 60 "$LOAD" -t 3 -c 8 "$1" "$2" 2>"$T/load.err") || rc=$?
	f=$(awk '$1 == "ok" && $3 == "failed" { print $4 }' <<<"$out")
	[ "$rc" -eq 0 ] || echo "    note: load $1:$2 exited $rc, ${f:-?} failed: $(head -n 3 "$T/load.err")" >&2
	awk '$1 == "rate" { sub("/s$", "", $2); print $2 + 0 }' <<<"$out"
}
DIRECT=() FIRST=() LAST=()
for _ in 1 2; do
	DIRECT+=("$(load_rate 10.244.0.10 8080)")
	FIRST+=("$(load_rate "$VIP_FIRST" 80)")
	LAST+=("$(load_rate "$VIP_LAST" 80)")
done
mean2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a + b) / 2 }'; }
D_M=$(mean2 "${DIRECT[@]}")
F_M=$(mean2 "${FIRST[@]}")
L_M=$(mean2 "${LAST[@]}")
R_F=$(ratio2 "$F_M" "$D_M")
R_L=$(ratio2 "$L_M" "$D_M")
fig "data path: pod direct 10.244.0.10:8080 (load -t 3 -c 8)" "${DIRECT[0]} ${DIRECT[1]} conn/s, mean $D_M"
fig "data path: first VIP $VIP_FIRST:80 (svc-0)" "${FIRST[0]} ${FIRST[1]} conn/s, mean $F_M, VIP/direct $R_F   (target >= 0.9)"
fig "data path: last VIP $VIP_LAST:80 (svc-9999)" "${LAST[0]} ${LAST[1]} conn/s, mean $L_M, VIP/direct $R_L   (target >= 0.9)"
check "data path, first of 10,000 VIPs: VIP/direct $R_F >= 0.9" ge "$R_F" 0.9
check "data path, last of 10,000 VIPs: VIP/direct $R_L >= 0.9" ge "$R_L" 0.9
ct=$(cat "/proc/sys/net/netfilter/nf_conntrack_count" 2>/dev/null || true)
ct_ns=$(ip netns exec "$NODE" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo '?')
echo "  (conntrack entries in the node namespace after the runs: $ct_ns)"
: "$ct"
kill "$ECHO_PID" 2>/dev/null || true

# -- one service added, 10,000 loaded -------------------------------------------
adds "$D10/sock" 10k 2 "$ADDS" "$T/add10k"
ADD10_MED=$(pct "$T/add10k" 50)
ADD10_MAX=$(maxof "$T/add10k")
fig "add one service to 10,000: median of $ADDS (svcd lastSync)" "$(ms "$ADD10_MED") ms, max $(ms "$ADD10_MAX") ms   (target <= 2 ms)"
fig "  vs kube-proxy's add-one ($(ms "$KP_ADD") ms)" "$(ratio "$KP_ADD" "$ADD10_MED")x faster   (target >= 100x)"
[ "$ODD" -eq 0 ] || echo "  note: $ODD of $ADDS applies were not followed by a 1-service partial sync"
check "add one to 10,000: median $(ms "$ADD10_MED") ms <= 2 ms" le "$ADD10_MED" 0.002
check "add one to 10,000: $(ratio "$KP_ADD" "$ADD10_MED")x faster than kube-proxy's nft -f ($(ms "$KP_ADD") ms) >= 100x" ge "$(ratio "$KP_ADD" "$ADD10_MED")" 100

# -- event to rules ----------------------------------------------------------------
adds "$D10/sock" e2r 2 "$E2R" "$T/e2r"
E2R_P50=$(pct "$T/e2r.wall" 50)
E2R_P99=$(pct "$T/e2r.wall" 99)
E2R_MAX=$(maxof "$T/e2r.wall")
E2R_SVCD_P50=$(pct "$T/e2r" 50)
E2R_SVCD_P99=$(pct "$T/e2r" 99)
fig "event to rules: svcctl apply --wait wall time, $E2R applies" "p50 $(ms "$E2R_P50") ms, p99 $(ms "$E2R_P99") ms, max $(ms "$E2R_MAX") ms   (target p99 < 10 ms)"
fig "  svcd's own sync (lastSync) over those applies" "p50 $(ms "$E2R_SVCD_P50") ms, p99 $(ms "$E2R_SVCD_P99") ms"
[ "$ODD" -eq 0 ] || echo "  note: $ODD of $E2R applies were not followed by a 1-service partial sync"
# the bare cost of starting svcctl (a status round trip), for scale
: >"$T/bare"
for ((i = 0; i < 50; i++)); do
	t0=$(now_us)
	ctl "$D10/sock" status -o json >/dev/null
	t1=$(now_us)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f\n", d / 1e6 }' >>"$T/bare"
done
fig "  (for scale: svcctl status round trip, p50 of 50)" "$(ms "$(pct "$T/bare" 50)") ms"
check "event to rules: apply --wait p99 $(ms "$E2R_P99") ms < 10 ms" lt "$E2R_P99" 0.010
svcd_stop
ns_del "$CLIENT"
ns_del "$POD"
ns_del "$NODE"
# The same applies to a daemon with no data plane: svcctl + the store (its fsyncs).
ns_new ns store
svcd_start "$ns" "$T/store" none
adds "$T/store/sock" store 2 "$E2R" "$T/store-only"
fig "  (for scale: the same $E2R applies with --mode none)" "p50 $(ms "$(pct "$T/store-only.wall" 50)") ms, p99 $(ms "$(pct "$T/store-only.wall" 99)") ms, max $(ms "$(maxof "$T/store-only.wall")") ms"
svcd_stop
ns_del "$ns"
echo

# -- flatness: 100 and 1,000 loaded ------------------------------------------------
echo "add one service with 100 and 1,000 loaded (2 endpoints each) ..."
declare -A ADD_MED=([10000]=$ADD10_MED)
for n in 100 1000; do
	ns_new ns "n$n"
	d=$T/n$n
	svcd_start "$ns" "$d" nftables
	gen "$n" 2 "$T/gen-$n"
	ctl "$d/sock" apply -f "$T/gen-$n.svc.json" -f "$T/gen-$n.ep.json" --wait >/dev/null
	adds "$d/sock" "$n" 2 "$ADDS" "$T/add$n"
	ADD_MED[$n]=$(pct "$T/add$n" 50)
	fig "add one service to $n: median of $ADDS" "$(ms "${ADD_MED[$n]}") ms, max $(ms "$(maxof "$T/add$n")") ms"
	[ "$ODD" -eq 0 ] || echo "  note: $ODD of $ADDS applies were not followed by a 1-service partial sync"
	svcd_stop
	ns_del "$ns"
done
echo

# -- 30,000 x 5 ----------------------------------------------------------------------
echo "30,000 services x 5 endpoints ..."
ns_new NODE30 node30
D30=$T/n30k
MODEL_RSS=1 populate "$D30" 30000 5
svcd_start "$NODE30" "$D30" nftables
wait_full_sync "$D30/sock"
FULL30=$S_DUR
RSS30=$(rss_mb "$SVCD_PID")
HEAP30=$S_HEAP
fig "full sync, 30,000 x 5 (svcd lastSync, $S_ELEMS elements, $S_CHAINS chains)" "$(ms "$FULL30") ms   (target < 5000 ms)"
if [ -n "${KP30_FULL:-}" ]; then
	fig "  vs kube-proxy's full load of 30,000 x 2 ($KP30_FULL s)" "$(ratio "$KP30_FULL" "$FULL30")x faster (svcd with 5 endpoints each)"
fi
fig "svcd RSS, 30,000 x 5 after its sync" "$RSS30 MB (peak $(hwm_mb "$SVCD_PID") MB, heap $HEAP30 MB)   (target < 100 MB)"
fig "  of which the objects alone (--mode none, restarted)" "$MODEL_RSS_MB MB (heap $MODEL_HEAP_MB MB)"
check "full sync 30,000 x 5: $(ms "$FULL30") ms < 5000 ms" lt "$FULL30" 5
check "svcd RSS with 30,000 x 5: $RSS30 MB < 100 MB" lt "$RSS30" 100
adds "$D30/sock" 30k 5 "$ADDS" "$T/add30k"
ADD_MED[30000]=$(pct "$T/add30k" 50)
fig "add one service to 30,000 (x 5): median of $ADDS" "$(ms "${ADD_MED[30000]}") ms, max $(ms "$(maxof "$T/add30k")") ms"
[ "$ODD" -eq 0 ] || echo "  note: $ODD of $ADDS applies were not followed by a 1-service partial sync"
if [ -n "${KP30_ADD:-}" ]; then
	fig "  vs kube-proxy's add-one at 30,000 x 2 ($(ms "$KP30_ADD") ms)" "$(ratio "$KP30_ADD" "${ADD_MED[30000]}")x faster (svcd with 5 endpoints each)"
fi
fig "svcd RSS after the adds" "$(rss_mb "$SVCD_PID") MB"
svcd_stop
ns_del "$NODE30"

flat="100: $(ms "${ADD_MED[100]}"), 1,000: $(ms "${ADD_MED[1000]}"), 10,000: $(ms "${ADD_MED[10000]}"), 30,000: $(ms "${ADD_MED[30000]}") ms"
fig "add one, median by services loaded" "$flat"
fig "  30,000 / 100" "$(ratio2 "${ADD_MED[30000]}" "${ADD_MED[100]}")x"
flat_ok=1
for n in 100 1000 10000 30000; do
	le "${ADD_MED[$n]}" 0.002 || flat_ok=0
done
if [ "$flat_ok" = 1 ]; then verdict 0 "add one is flat: every median <= 2 ms ($flat)"; else verdict 1 "add one is flat: every median <= 2 ms ($flat)"; fi
echo

bench_summary
