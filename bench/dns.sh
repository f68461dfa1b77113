#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The cluster DNS benchmark (issue 5): svcd's responder side by side with
# knot, NSD and dnsmasq (Debian's), all serving the same 1,000-service zone,
# loaded by dnsperf (Debian's), in the same run.
#
# The zone: services svc-0 .. svc-999 in namespace default, ClusterIP
# 10.96.(1 + i/250).(1 + i%250), one named port http/TCP 80:
#   svc-N.default.svc.cluster.local.             A    10.96.x.y      TTL 5
#   _http._tcp.svc-N.default.svc.cluster.local.  SRV  0 100 80 svc-N.default.svc.cluster.local.
#   cluster.local.  SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
#   cluster.local.  NS  ns.dns.cluster.local.     (knot and NSD want one)
# svcd gets the services through `svcctl apply`; knot and NSD read a zone file;
# dnsmasq gets host-record and srv-host lines and local=/cluster.local/ (it has
# no zone: no SOA, and the SRV target's A as it adds it, not as glue from a
# zone; its answers are what it is, the spot checks below show the difference).
#
# The queries (DNS_BENCH_QUERIES lines, default 5,000, shuffled with a fixed
# seed): 60% A for service names, 25% SRV _http._tcp.<svc>, 15% A for names in
# the zone that do not exist (NXDOMAIN).
#
# Each server runs alone in a network namespace made for it (svcdns-<random>-*),
# on that namespace's loopback, port 53, pinned with taskset to CPU 1 with
# one worker thread (knot: udp-workers 1, and its threads re-pinned once it
# answers, as knotd pins UDP worker N to CPU N itself; NSD: server-count 1,
# RRL off; dnsmasq and svcd: one CPU); dnsperf runs in the same namespace
# pinned to CPU 0:
#   dnsperf -l SECONDS -c CLIENTS -q OUTSTANDING -T 1 -t 2
# (-c 4 -q 40: from -q 20 on, knot's CPU is busy and its rate flat here; the
# latency is then about OUTSTANDING / rate).  The servers take turns, one
# block each per round, the order rotating, over ROUNDS rounds: this
# machine's rates move by 2x from minute to minute, so the targets use the
# median over the rounds of each round's svcd/knot.  On this 2-CPU machine
# dnsperf's own CPU is the limit (99% busy) for knot, NSD and svcd alike, so
# their queries/s is dnsperf's ceiling, not theirs: the svcd >= knot target
# is judged on queries per second of the server process's own CPU time
# (utime + stime from /proc: the rate one fully busy server thread would
# sustain), and the throughput ratio is printed beside it.  Before its first block,
# a few dig spot checks per server (A, AA, TTL, case, SRV and its glue,
# NXDOMAIN with SOA): printed; for svcd they are a target.
#
# Then svcd's memory for 30,000 services: stored once, then svcd restarted on
# that state with --no-dns and with --dns-listen; the VmRSS difference is what
# the answers cost (target < 30 MB).
#
# The peers (knot, nsd, dnsmasq-base: dnsmasq without its service, dnsperf,
# and bind9-dnsutils for dig) are installed with apt-get when missing; their
# packaged services are kept from starting (a policy-rc.d answering 101 while
# apt runs, when the machine has none) and disabled when this run installed
# them.  An EXIT trap stops every server, removes the namespaces and the temp
# dir, also on failure or interruption.
#
# usage: bench/dns.sh [BUILD_DIR]        (default build; needs root)
# Takes about 2.5 minutes (ROUNDS x 4 servers x SECONDS, and the 30,000
# services), the installs aside.
# Environment:
#   DNS_BENCH_ROUNDS       rounds (3)
#   DNS_BENCH_SECONDS      dnsperf -l (10)
#   DNS_BENCH_CLIENTS      dnsperf -c (4)
#   DNS_BENCH_OUTSTANDING  dnsperf -q (40)
#   DNS_BENCH_QUERIES      lines in the query file (5000)
#   DNS_BENCH_SERVERS      which to run (knot nsd dnsmasq svcd)
#   DNS_BENCH_RSS          0 skips the 30,000-service RSS part (1)
#   TMPDIR                 where the temp dir goes (/tmp)
# Exit status: 0 when every target passes, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD=$(cd "${1:-build}" && pwd)
SVCD=$BUILD/svcd
CTL=$BUILD/svcctl
SECS=${DNS_BENCH_SECONDS:-10}
CLIENTS=${DNS_BENCH_CLIENTS:-4}
OUTSTANDING=${DNS_BENCH_OUTSTANDING:-40}
NQ=${DNS_BENCH_QUERIES:-5000}
SERVERS=${DNS_BENCH_SERVERS:-knot nsd dnsmasq svcd}
N=1000
N30=30000
ZONE=cluster.local
COREDNS_PER_VCPU=17000
SRV_CPU=1
PERF_CPU=0

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, apt-get)"
for f in "$SVCD" "$CTL"; do
	[ -x "$f" ] || die "$f not found; run make"
done
for cmd in ip awk taskset timeout; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU $SRV_CPU, dnsperf on CPU $PERF_CPU)"

bench_begin svcdns

# ---- the peers ------------------------------------------------------------------

# Install what is missing (bench_install: no service starts meanwhile, the
# units this run installed are disabled afterwards).
install_peers() {
	local pkgs=() units=()
	command -v knotd >/dev/null || { pkgs+=(knot); units+=(knot); }
	command -v nsd >/dev/null || { pkgs+=(nsd); units+=(nsd); }
	command -v dnsmasq >/dev/null || pkgs+=(dnsmasq-base) # the binary, no service
	command -v dnsperf >/dev/null || pkgs+=(dnsperf)
	command -v dig >/dev/null || pkgs+=(bind9-dnsutils)
	bench_install bench/dns.sh "${pkgs[*]}" "${units[*]}" "knotd nsd dnsmasq"
}

install_peers
for cmd in knotd nsd dnsmasq dnsperf dig; do
	command -v "$cmd" >/dev/null || die "$cmd not found after the install"
done

# ---- helpers -----------------------------------------------------------------------

# bg NS LOG CMD...: CMD in NS pinned to the server CPU, in the background;
# BG_PID is its pid (ip netns exec and taskset exec, no fork).
bg() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" taskset -c "$SRV_CPU" "$@" >>"$log" 2>&1 </dev/null &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

q() { # NS NAME TYPE: dig's answer, no recursion, short timeout
	ip netns exec "$1" dig +norec +tries=1 +time=1 -p 53 @127.0.0.1 "$2" "$3" 2>&1
}

# ready NS PID LOG NAME TYPE: poll until NS answers NAME (NOERROR), 20 s at
# most.
ready() {
	local ns=$1 pid=$2 log=$3 name=$4 type=$5 i
	for ((i = 0; i < 200; i++)); do
		alive "$pid" || { tail -n 20 "$log" >&2; return 1; }
		q "$ns" "$name" "$type" | grep -q 'status: NOERROR' && return 0
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	return 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# shellcheck disable=SC2317 # called through check
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
# shellcheck disable=SC2317 # called through check
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
# cpu_busy N: "busy/total" jiffies of CPU N from /proc/stat.
cpu_busy() {
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 "/" t }' /proc/stat
}

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

SUMMARY=()
verdict() { # OK(0/1) TEXT
	if [ "$1" = 0 ]; then SUMMARY+=("PASS  $2"); else SUMMARY+=("FAIL  $2"); fi
}
check() { # TEXT CMD...
	local text=$1
	shift
	if "$@"; then verdict 0 "$text"; else verdict 1 "$text"; fi
}

# ---- the data --------------------------------------------------------------------

ipof() { echo "10.96.$((1 + $1 / 250)).$((1 + $1 % 250))"; }

# manifest N FILE: the services, one JSON object a line, for svcctl apply.
manifest() {
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.%d.%d\",\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":80}]}}\n", i, 1 + int(i / 250), 1 + i % 250 }' >"$2"
}

# The zone file (knot, NSD).
awk -v n=$N -v z=$ZONE 'BEGIN {
	printf "$ORIGIN %s.\n$TTL 5\n", z
	printf "@ IN SOA ns.dns.%s. hostmaster.%s. 1 7200 1800 86400 5\n", z, z
	printf "@ IN NS ns.dns.%s.\nns.dns IN A 10.96.0.10\n", z
	for (i = 0; i < n; i++) {
		printf "svc-%d.default.svc IN A 10.96.%d.%d\n", i, 1 + int(i / 250), 1 + i % 250
		printf "_http._tcp.svc-%d.default.svc IN SRV 0 100 80 svc-%d.default.svc.%s.\n", i, i, z
	} }' >"$T/zone"

# dnsmasq: the same names as host-record and srv-host lines.
awk -v n=$N -v z=$ZONE 'BEGIN {
	for (i = 0; i < n; i++) {
		printf "host-record=svc-%d.default.svc.%s,10.96.%d.%d\n", i, z, 1 + int(i / 250), 1 + i % 250
		printf "srv-host=_http._tcp.svc-%d.default.svc.%s,svc-%d.default.svc.%s,80,0,100\n", i, z, i, z
	} }' >"$T/dnsmasq.records"

# The queries: 60% A, 25% SRV, 15% names that do not exist (half an unknown
# service in default, half a service name in a namespace that does not
# exist), shuffled with a fixed seed.
awk -v n=$N -v nq="$NQ" -v z=$ZONE 'BEGIN {
	srand(5)
	na = int(nq * 0.60); ns = int(nq * 0.25); nx = nq - na - ns
	for (i = 0; i < na; i++) l[k++] = sprintf("svc-%d.default.svc.%s A", int(rand() * n), z)
	for (i = 0; i < ns; i++) l[k++] = sprintf("_http._tcp.svc-%d.default.svc.%s SRV", int(rand() * n), z)
	for (i = 0; i < nx; i++)
		if (i % 2) l[k++] = sprintf("svc-%d.default.svc.%s A", n + int(rand() * 100000), z)
		else l[k++] = sprintf("svc-%d.nosuch%d.svc.%s A", int(rand() * n), i % 7, z)
	for (i = k - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = l[i]; l[i] = l[j]; l[j] = t }
	for (i = 0; i < k; i++) print l[i] }' >"$T/queries"
NX_PCT=$(awk -v nq="$NQ" 'BEGIN { printf "%.2f", (nq - int(nq * 0.60) - int(nq * 0.25)) * 100 / nq }')

# ---- one server ----------------------------------------------------------------------

# spot NS: dig checks; sets SPOT (a short text) and SPOT_OK (0 all right, 1 not).
spot() {
	local ns=$1 a srv nx i=$((N - 1)) bad=()
	a=$(q "$ns" "SvC-7.DeFault.svc.$ZONE" A)
	srv=$(q "$ns" "_http._tcp.svc-$i.default.svc.$ZONE" SRV)
	nx=$(q "$ns" "svc-$N.default.svc.$ZONE" A)
	printf '%s\n==== SRV\n%s\n==== NX\n%s\n' "$a" "$srv" "$nx" >>"$T/spot.log"
	grep -Eq "^SvC-7\.DeFault\.svc\.$ZONE\.[[:space:]]+5[[:space:]]+IN[[:space:]]+A[[:space:]]+$(ipof 7)\$" <<<"$a" || bad+=("A")
	grep -q 'flags:[^;]* aa' <<<"$a" || bad+=("AA")
	grep -Eq "SRV[[:space:]]+0 100 80 svc-$i\.default\.svc\.$ZONE\.\$" <<<"$srv" || bad+=("SRV")
	grep -Eq "^svc-$i\.default\.svc\.$ZONE\.[[:space:]]+5[[:space:]]+IN[[:space:]]+A[[:space:]]+$(ipof "$i")\$" <<<"$srv" || bad+=("SRV glue")
	grep -q 'status: NXDOMAIN' <<<"$nx" || bad+=("NXDOMAIN")
	grep -Eq "^$ZONE\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]" <<<"$nx" || bad+=("SOA with NXDOMAIN")
	if [ ${#bad[@]} -eq 0 ]; then
		SPOT="A, AA, TTL 5, case, SRV + glue, NXDOMAIN + SOA: as specified"
		SPOT_OK=0
	else
		local IFS=,
		SPOT="differs: ${bad[*]}"
		SPOT_OK=1
	fi
}

# perf NAME NS OUT PID: dnsperf against NS's 127.0.0.1:53, its output in
# OUT; writes to OUT.busy the busy shares (%) of the server CPU and of
# dnsperf's, and to OUT.cpu the server process's CPU seconds meanwhile.
perf() {
	local name=$1 ns=$2 out=$3 pid=$4 s0 s1 p0 p1 c0 c1
	c0=$(cpu_ticks "$pid")
	s0=$(cpu_busy "$SRV_CPU") p0=$(cpu_busy "$PERF_CPU")
	ip netns exec "$ns" taskset -c "$PERF_CPU" dnsperf -s 127.0.0.1 -p 53 -d "$T/queries" \
		-l "$SECS" -c "$CLIENTS" -q "$OUTSTANDING" -T 1 -t 2 >"$out" 2>&1 ||
		{ cat "$out" >&2; die "dnsperf against $name failed"; }
	s1=$(cpu_busy "$SRV_CPU") p1=$(cpu_busy "$PERF_CPU")
	c1=$(cpu_ticks "$pid")
	awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f\n", t / hz }' >"$out.cpu"
	awk -v s0="$s0" -v s1="$s1" -v p0="$p0" -v p1="$p1" 'function pct(x, y,   a, b, t) {
		split(x, a, "/"); split(y, b, "/"); t = b[2] - a[2]; return t ? (b[1] - a[1]) * 100 / t : 0 }
		BEGIN { printf "%.0f %.0f\n", pct(s0, s1), pct(p0, p1) }' >"$out.busy"
}

# The results: RES/NAME.ROUND (dnsperf's output) and RES/NAME.ROUND.busy.
RES=$T/results
mkdir -p "$RES"
declare -A SPOTS SPOT_OKS

# start_peer NAME NS DIR: the peer's configuration in DIR, then the peer in
# NS; BG_PID.
start_peer() {
	local name=$1 ns=$2 d=$3
	mkdir -p "$d"
	case $name in
	knot)
		cp "$T/zone" "$d/$ZONE.zone"
		cat >"$d/knot.conf" <<-EOC
			server:
			    rundir: "$d"
			    listen: 127.0.0.1@53
			    udp-workers: 1
			    tcp-workers: 1
			    background-workers: 1
			database:
			    storage: "$d"
			log:
			  - target: stderr
			    any: warning
			zone:
			  - domain: $ZONE
			    file: "$d/$ZONE.zone"
			    journal-content: none
			    zonefile-sync: -1
		EOC
		bg "$ns" "$d/log" knotd -c "$d/knot.conf"
		;;
	nsd)
		# Debian's NSD limits responses to 200/s per /24 (RRL) by default
		cp "$T/zone" "$d/$ZONE.zone"
		cat >"$d/nsd.conf" <<-EOC
			server:
			    ip-address: 127.0.0.1@53
			    server-count: 1
			    reuseport: no
			    username: ""
			    chroot: ""
			    zonesdir: "$d"
			    database: ""
			    zonelistfile: "$d/zone.list"
			    xfrdfile: "$d/xfrd.state"
			    xfrdir: "$d"
			    pidfile: "$d/nsd.pid"
			    logfile: "$d/nsd.log"
			    verbosity: 0
			    rrl-ratelimit: 0
			    rrl-whitelist-ratelimit: 0
			remote-control:
			    control-enable: no
			zone:
			    name: $ZONE
			    zonefile: "$d/$ZONE.zone"
		EOC
		bg "$ns" "$d/log" nsd -d -c "$d/nsd.conf"
		;;
	dnsmasq)
		{
			echo "port=53"
			echo "listen-address=127.0.0.1"
			echo "bind-interfaces"
			echo "no-resolv"
			echo "no-hosts"
			echo "local=/$ZONE/"
			echo "local-ttl=5"
			echo "cache-size=10000"
			echo "pid-file=$d/dnsmasq.pid"
			cat "$T/dnsmasq.records"
		} >"$d/dnsmasq.conf"
		bg "$ns" "$d/log" dnsmasq -k --conf-file="$d/dnsmasq.conf"
		;;
	esac
}


# svcd_start NS DIR ARGS...: svcd --mode none in NS, state DIR/state, socket
# DIR/sock, pinned to the server CPU; SVCD_PID; returns once svcctl answers.
svcd_start() {
	local ns=$1 dir=$2 i
	shift 2
	mkdir -p "$dir"
	bg "$ns" "$dir/svcd.log" "$SVCD" --mode none --no-pods --resync-period 0 \
		--cluster-domain "$ZONE" --state-dir "$dir/state" --socket "$dir/sock" "$@"
	SVCD_PID=$BG_PID
	for ((i = 0; i < 1200; i++)); do
		alive "$SVCD_PID" || { tail -n 20 "$dir/svcd.log" >&2; die "svcd exited at start ($*)"; }
		"$CTL" --socket "$dir/sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	tail -n 20 "$dir/svcd.log" >&2
	die "svcd did not answer within 60 s"
}

# block NAME ROUND: NAME alone in a fresh namespace: start, wait until it
# answers, pin, spot checks (first round), dnsperf, stop, namespace gone.
# svcd gets its services through svcctl apply in the first round and finds
# them in its state dir after that.
block() {
	local name=$1 r=$2 ns d=$T/$1 pid log
	ns_new ns "$name$r"
	if [ "$name" = svcd ]; then
		svcd_start "$ns" "$d" --dns-listen 127.0.0.1:53
		pid=$SVCD_PID log=$d/svcd.log
		[ "$r" != 1 ] || "$CTL" --socket "$d/sock" apply -f "$T/svc1k.json" >/dev/null
		ready "$ns" "$pid" "$log" "svc-$((N - 1)).default.svc.$ZONE" A ||
			die "svcd does not answer svc-$((N - 1)).default.svc.$ZONE within 20 s"
	else
		start_peer "$name" "$ns" "$d"
		pid=$BG_PID log=$d/log
		ready "$ns" "$pid" "$log" "svc-$((N - 1)).default.svc.$ZONE" A || die "$name did not answer within 20 s"
	fi
	repin "$ns" "$SRV_CPU"
	if [ "$r" = 1 ]; then
		spot "$ns"
		SPOTS[$name]=$SPOT SPOT_OKS[$name]=$SPOT_OK
	fi
	perf "$name" "$ns" "$RES/$name.$r" "$pid"
	alive "$pid" || die "$name exited during the run: $(tail -n 5 "$log")"
	stop "$pid"
	ns_del "$ns"
}

# field FILE WHAT: one figure from dnsperf's output.
field() {
	case $2 in
	qps) awk '/Queries per second:/ { printf "%.0f", $4 }' "$1" ;;
	lat) awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$1" ;;
	lost) awk '/Queries lost:/ { print $3 }' "$1" ;;
	nx) awk '/Response codes:/ { v = 0; for (i = 1; i <= NF; i++) if ($i == "NXDOMAIN") { v = $(i + 2); gsub(/[(%),]/, "", v) } print v }' "$1" ;;
	resp) awk '/Average packet size:/ { print $NF }' "$1" ;;
	# queries answered per second of the server's own CPU time: the rate
	# one fully busy server thread sustains
	cap) awk -v cpu="$(cat "$1.cpu")" '/Queries completed:/ { if (cpu > 0) printf "%.0f", $3 / cpu }' "$1" ;;
	esac
}

# median FMT: the median of the numbers on stdin, printed with FMT.
median() { sort -g | awk -v f="$1\n" '{ a[NR] = $1 } END { printf f, NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# per_round NAME WHAT: the figure of each round, one a line.
per_round() {
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		printf '%s\n' "$(field "$RES/$1.$r" "$2")"
	done
}

# ---- the run ------------------------------------------------------------------------

ROUNDS=${DNS_BENCH_ROUNDS:-3}
RUNNING=()
for s in $SERVERS; do
	case $s in
	knot | nsd | dnsmasq) RUNNING+=("$s") ;;
	svcd) RUNNING+=(svcd) ;;
	*) die "unknown server $s in DNS_BENCH_SERVERS" ;;
	esac
done
[ ${#RUNNING[@]} -gt 0 ] || die "no server to run"
manifest $N "$T/svc1k.json"

echo "svcd DNS benchmark ($(nproc) CPUs, kernel $(uname -r), run $RUN)"
echo "  $N services (A + SRV each), $NQ queries: 60% A, 25% SRV, $NX_PCT% NXDOMAIN, shuffled"
echo "  each server alone in its namespace on CPU $SRV_CPU, one thread; dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }') on CPU $PERF_CPU:" \
	"-l $SECS -c $CLIENTS -q $OUTSTANDING -T 1 -t 2"
echo "  $ROUNDS rounds, the servers' order rotating; figures are medians over the rounds, ratios the medians of each round's ratios"
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg); this machine's rates move from minute to minute: compare the ratios."
for ((r = 1; r <= ROUNDS; r++)); do
	order=()
	for ((i = 0; i < ${#RUNNING[@]}; i++)); do
		order+=("${RUNNING[(i + r - 1) % ${#RUNNING[@]}]}")
	done
	line="  round $r:"
	for s in "${order[@]}"; do
		block "$s" "$r"
		line+=" $s $(field "$RES/$s.$r" qps)"
	done
	echo "$line"
done
echo

declare -A QPS LAT LOST NXP RESP BUSY CAP
for s in "${RUNNING[@]}"; do
	QPS[$s]=$(per_round "$s" qps | median %.0f)
	LAT[$s]=$(per_round "$s" lat | median %.3f)
	LOST[$s]=$(per_round "$s" lost | awk '{ s += $1 } END { print s + 0 }')
	NXP[$s]=$(per_round "$s" nx | median %.2f)
	RESP[$s]=$(field "$RES/$s.1" resp)
	CAP[$s]=$(per_round "$s" cap | median %.0f)
	BUSY[$s]="$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f1 "$RES/$s.$r.busy"; done | median %.0f)/$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f2 "$RES/$s.$r.busy"; done | median %.0f)"
done

printf '  %-8s %10s %18s %12s %6s %9s %8s %9s   %s\n' server "queries/s" "(min-max)" "avg latency" lost NXDOMAIN "resp. B" "CPU1/CPU0" "answers (dig spot checks)"
for s in knot nsd dnsmasq svcd; do
	if [ -n "${QPS[$s]:-}" ]; then
		printf '  %-8s %10s %18s %9s ms %6s %8s%% %8s %8s%%   %s\n' "$s" "${QPS[$s]}" \
			"($(per_round "$s" qps | sort -g | head -n 1)-$(per_round "$s" qps | sort -g | tail -n 1))" \
			"${LAT[$s]}" "${LOST[$s]}" "${NXP[$s]}" "${RESP[$s]}" "${BUSY[$s]}" "${SPOTS[$s]}"
	fi
done
[ -z "${QPS[dnsmasq]:-}" ] ||
	echo "  (dnsmasq has no zone: no SOA with NXDOMAIN; its records are host-record and srv-host lines, the SRV target's A added by dnsmasq)"
[ -z "${QPS[nsd]:-}" ] || echo "  (NSD also puts the apex NS in authority and its A in additional: larger answers)"
echo "  CPU1/CPU0: busy share of the server's CPU and of dnsperf's (/proc/stat), medians"
echo "  CoreDNS (published): about $COREDNS_PER_VCPU queries/s per vCPU"
echo

# round_ratio A B: the median over the rounds of A's rate / B's rate.
# round_ratio_of FIELD A B: the median over the rounds of A's FIELD / B's.
round_ratio_of() {
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		awk -v a="$(field "$RES/$2.$r" "$1")" -v b="$(field "$RES/$3.$r" "$1")" 'BEGIN { printf "%.3f\n", b ? a / b : 0 }'
	done | median %.2f
}
round_ratio() { round_ratio_of qps "$1" "$2"; }

if [ -n "${QPS[svcd]:-}" ]; then
	for p in knot nsd dnsmasq; do
		[ -z "${QPS[$p]:-}" ] || printf '  %-40s %s\n' "svcd/$p" "$(round_ratio svcd "$p")x   (rounds:$(for ((r = 1; r <= ROUNDS; r++)); do printf ' %s' "$(ratio "$(field "$RES/svcd.$r" qps)" "$(field "$RES/$p.$r" qps)")"; done))"
	done
	printf '  %-40s %s\n' "svcd vs CoreDNS's $COREDNS_PER_VCPU/vCPU" "$(ratio "${QPS[svcd]}" $COREDNS_PER_VCPU)x   (target >= 5x)"
	for p in knot nsd dnsmasq; do
		[ -z "${CAP[$p]:-}" ] || printf '  %-40s %s\n' "svcd/$p, per server CPU-second" "$(round_ratio_of cap svcd "$p")x   (svcd ${CAP[svcd]}, $p ${CAP[$p]} queries per CPU-second)"
	done
	if [ -n "${QPS[knot]:-}" ]; then
		rk=$(round_ratio_of cap svcd knot)
		check "svcd >= knot in the same run, per server CPU-second (one busy thread): svcd/knot ${rk}x >= 1 (svcd ${CAP[svcd]}, knot ${CAP[knot]}; by throughput $(round_ratio svcd knot)x, dnsperf's CPU ${BUSY[svcd]#*/}% busy)" ge "$rk" 1
	else
		verdict 1 "svcd >= knot in the same run: knot not run (DNS_BENCH_SERVERS)"
	fi
	check "svcd ${QPS[svcd]} queries/s = $(ratio "${QPS[svcd]}" $COREDNS_PER_VCPU)x CoreDNS's published $COREDNS_PER_VCPU/vCPU >= 5x" ge "${QPS[svcd]}" $((5 * COREDNS_PER_VCPU))
	check "svcd average latency ${LAT[svcd]} ms < 1 ms" lt "${LAT[svcd]}" 1
	check "svcd lost no queries (${LOST[svcd]} lost over $ROUNDS rounds)" [ "${LOST[svcd]}" = 0 ]
	check "svcd answers: ${SPOTS[svcd]}; NXDOMAIN ${NXP[svcd]}% (${NX_PCT}% asked)" \
		awk -v a="${NXP[svcd]}" -v b="$NX_PCT" -v s="${SPOT_OKS[svcd]}" 'BEGIN { d = a - b; exit !(s == 0 && d < 0.5 && d > -0.5) }'
else
	for p in knot nsd dnsmasq; do
		[ -z "${QPS[$p]:-}" ] || printf '  %-40s %s\n' "svcd/$p" "-   (svcd not measured)"
	done
	verdict 1 "svcd >= knot in the same run: svcd not run (DNS_BENCH_SERVERS)"
	verdict 1 "svcd >= 5x CoreDNS's published $COREDNS_PER_VCPU/vCPU: svcd not measured"
	verdict 1 "svcd average latency < 1 ms: svcd not measured"
	verdict 1 "svcd lost no queries: svcd not measured"
fi
for p in knot nsd dnsmasq; do
	[ -z "${QPS[$p]:-}" ] || [ "${LOST[$p]}" = 0 ] ||
		echo "  note: $p lost ${LOST[$p]} queries (dnsperf -q $OUTSTANDING)"
done
echo

# ---- svcd's memory for 30,000 services -------------------------------------------------

# mem DIR PID: svcd's RSS in MEM_RSS (MB), and in MEM with its heap
# (svcctl status heapBytes) when it reports one.
mem() {
	local heap
	MEM_RSS=$(rss_mb "$2")
	heap=$("$CTL" --socket "$1/sock" status -o json 2>/dev/null |
		awk '/"heapBytes":/ { v = $0; sub(/^[^:]*: */, "", v); sub(/,$/, "", v); printf "%.1f", v / 1048576; exit }')
	MEM="$MEM_RSS MB"
	[ -z "$heap" ] || MEM+=" (heap $heap MB)"
}

rss_part() {
	local ns d=$T/rss30k a b e fa fb t0 t1 last=svc-$((N30 - 1)).default.svc.$ZONE
	echo "svcd RSS, $N30 services (stored with svcctl apply, then svcd restarted on them) ..."
	ns_new ns rss
	manifest $N30 "$T/svc30k.json"
	svcd_start "$ns" "$d"
	t0=$(date +%s.%N)
	"$CTL" --socket "$d/sock" apply -f "$T/svc30k.json" >/dev/null
	t1=$(date +%s.%N)
	stop "$SVCD_PID"
	rm -f "$T/svc30k.json"
	echo "  (stored $N30 services in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
	svcd_start "$ns" "$d" --no-dns
	mem "$d" "$SVCD_PID"
	fa=$MEM a=$MEM_RSS
	stop "$SVCD_PID"
	svcd_start "$ns" "$d" --dns-listen 127.0.0.1:53
	ready "$ns" "$SVCD_PID" "$d/svcd.log" "$last" A || die "svcd does not answer $last"
	mem "$d" "$SVCD_PID"
	fb=$MEM b=$MEM_RSS
	stop "$SVCD_PID"
	e=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", b - a }')
	printf '  %-52s %s\n' "svcd, $N30 services, --no-dns" "$fa"
	printf '  %-52s %s\n' "svcd, $N30 services, --dns-listen (the last answers)" "$fb"
	printf '  %-52s %s\n' "  the answers: the difference in RSS" "$e MB   (target < 30 MB)"
	check "answers for $N30 services: $e MB of RSS < 30 MB" lt "$e" 30
	ns_del "$ns"
	echo
}

if [ "${DNS_BENCH_RSS:-1}" = 0 ]; then
	echo "svcd RSS for $N30 services: skipped (DNS_BENCH_RSS=0)"
	echo
else
	rss_part
fi

bench_summary
