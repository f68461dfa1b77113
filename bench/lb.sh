#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The userspace balancer benchmark (issue 6): svcd's TCP balancer side by
# side with HAProxy (Debian's, mode tcp, balance roundrobin, nbthread 1) and
# nginx's stream module (Debian's nginx + libnginx-mod-stream,
# worker_processes 1, round robin), in the same run, each balancing over the
# same 3 nginx HTTP backends.
#
#   client ns                  node ns (the balancers, on CPU 1)
#   eth0 192.168.77.2 --veth-- lbc0 192.168.77.1   HAProxy :80, :5201
#   default via .77.1               192.168.77.3   nginx :80, :5201
#                              lo 10.96.0.50/32, 10.96.0.51/32 (svcd adds them)
#   wrk, iperf3 -c, curl       lbbr0 bridge 10.244.0.1/24, ip_forward=1
#   (CPU 0)                      |-- veth -- b1 ns: eth0 10.244.0.11, nginx :80,
#                                |                  iperf3 -s :5201
#                                |-- veth -- b2 ns: eth0 10.244.0.12, nginx :80
#                                '-- veth -- b3 ns: eth0 10.244.0.13, nginx :80
#
# The backends: one nginx each (worker_processes 1, access_log off,
# keepalive_requests 1000000, `return 200 "bN\n"`), unpinned.  Two services:
# web (port 80 over b1, b2, b3) and perf (port 5201 to b1's iperf3 alone).
# HAProxy and nginx listen on the node's 192.168.77.1 and .3; svcd runs
# `--mode userspace` and gets a selector-less Service and an Endpoints object
# for each (ClusterIPs 10.96.0.50 and 10.96.0.51, through svcctl apply); it
# puts the ClusterIPs on the node's lo and listens on them itself.  Every
# balancer terminates the connections in the node namespace and opens its
# own to the backends.  They run with their defaults but for one worker and
# the limits (HAProxy's timeouts and maxconn, nginx's worker_connections):
# no splice, 16 kB buffers for both peers.
#
# The balancers run side by side in the node namespace, each on its own
# addresses, all pinned with taskset to CPU 1 (all their threads; one is
# loaded at a time, the others idle); wrk and iperf3 -c in the client
# namespace pinned to CPU 0; the backends unpinned.  Three tests:
#   1. new connections/s: wrk -t1 -c CONNS -d SECONDS -H 'Connection: close'
#      (one request a connection: requests/s = connections/s)
#   2. keep-alive requests/s: the same without the header
#   3. throughput: iperf3 -c -t IPERF_SECONDS -O 1 through the perf service
#      (one stream, client to b1), Gbit/s received
# and the same straight to b1 (no balancer, through the node's routing: the
# pod-direct ceiling, printed for reference).  Before the first round, 30
# new connections through each balancer show how it spreads them (curl; wrk
# does not count connections that hang, a backend left out shows here).  wrk's
# socket errors and non-2xx answers are counted: above 1% of the requests, a
# figure is not valid (for svcd, that target fails).  The client and node
# namespaces reuse TIME_WAIT ports (tcp_tw_reuse=1, ports 10000-65000):
# connection churn at these rates would run out of ports otherwise.
#
# Each round takes each test through every balancer back to back, the
# order rotating, over ROUNDS rounds: this 2-CPU machine's rates move from
# minute to minute, so a figure is compared only with the same test's in
# the same round, seconds apart, and the targets use the median over the
# rounds of each round's svcd/HAProxy.  A figure may also depend on its
# place in the round (in two runs a balancer's keep-alive figure moved by
# up to 14% between places), so the default is one round per place: each
# balancer runs each test once in every place.  The CPU column is the balancer's own CPU time
# (utime + stime of all its processes and threads) over the test's wall time:
# 100% means its one CPU was the limit.  Targets:
#   svcd >= 1.2x HAProxy new connections/s
#   svcd >= 1.1x HAProxy keep-alive requests/s
#   svcd >= 1.0x HAProxy throughput
#
# The peers (haproxy, nginx, libnginx-mod-stream, wrk, iperf3, curl) are
# installed with apt-get when missing; their packaged services are kept from
# starting (a policy-rc.d answering 101 while apt runs, when the machine has
# none) and disabled when this run installed them.  Everything runs in
# namespaces made here (svclb-<random>-*); an EXIT trap stops every process,
# removes the namespaces and the temp dir, also on failure or interruption.
#
# usage: bench/lb.sh [BUILD_DIR]        (default build; needs root)
# Takes about 7 minutes (ROUNDS x (balancers + direct) x (2 SECONDS +
# IPERF_SECONDS + 1)), the installs aside.
# Environment:
#   LB_BENCH_ROUNDS         rounds (the balancers, with direct: 4)
#   LB_BENCH_SECONDS        wrk -d, each of the two wrk figures (8)
#   LB_BENCH_CONNS          wrk -c (50)
#   LB_BENCH_IPERF_SECONDS  iperf3 -t, after a 1 s -O warm-up (5)
#   LB_BENCH_BALANCERS      which to run (haproxy nginx svcd)
#   LB_BENCH_DIRECT         0 skips the pod-direct figures (1)
#   TMPDIR                  where the temp dir goes (/tmp)
#   LB_KEEP                 1 keeps the temp dir (configurations, logs, the
#                           raw wrk and iperf3 outputs in results/)
# Exit status: 0 when every target passes, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD=${1:-build}
SECS=${LB_BENCH_SECONDS:-8}
CONNS=${LB_BENCH_CONNS:-50}
ISECS=${LB_BENCH_IPERF_SECONDS:-5}
BALANCERS=${LB_BENCH_BALANCERS:-haproxy nginx svcd}
DIRECT=${LB_BENCH_DIRECT:-1}
LB_CPU=1
LOAD_CPU=0
MAX_ERR_PCT=1 # wrk errors above this share of the requests: the figure is not valid

# addresses
NODE_IP=192.168.77.1   # the node on the client's link: HAProxy listens here
NGINX_IP=192.168.77.3  # and nginx here
CLIENT_IP=192.168.77.2
GW_IP=10.244.0.1       # the node on the backends' bridge
B_IPS=(10.244.0.11 10.244.0.12 10.244.0.13)
WEB_VIP=10.96.0.50     # svcd's ClusterIPs
PERF_VIP=10.96.0.51
WEB_PORT=80
PERF_PORT=5201

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, apt-get)"
for cmd in ip awk ss taskset timeout; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (balancer on CPU $LB_CPU, wrk on CPU $LOAD_CPU)"
RUNNING=()
for b in $BALANCERS; do
	case $b in
	haproxy | nginx | svcd) RUNNING+=("$b") ;;
	*) die "unknown balancer $b in LB_BENCH_BALANCERS (haproxy nginx svcd)" ;;
	esac
done
[ "$DIRECT" = 0 ] || RUNNING+=(direct)
[ ${#RUNNING[@]} -gt 0 ] || die "nothing to run"
ROUNDS=${LB_BENCH_ROUNDS:-${#RUNNING[@]}}
if [[ " $BALANCERS " == *" svcd "* ]]; then
	BUILD=$(cd "$BUILD" && pwd) || die "no build dir $BUILD; run make"
	SVCD=$BUILD/svcd
	CTL=$BUILD/svcctl
	for f in "$SVCD" "$CTL"; do
		[ -x "$f" ] || die "$f not found; run make"
	done
fi

BENCH_KEEP=${LB_KEEP:-}
bench_begin svclb

# ---- the peers ------------------------------------------------------------------

# Install what is missing (bench_install: no service starts meanwhile, the
# units this run installed are disabled afterwards).
install_peers() {
	local pkgs=() units=()
	command -v haproxy >/dev/null || { pkgs+=(haproxy); units+=(haproxy); }
	command -v nginx >/dev/null || { pkgs+=(nginx); units+=(nginx); }
	[ -n "$(stream_module)" ] || pkgs+=(libnginx-mod-stream)
	command -v wrk >/dev/null || pkgs+=(wrk)
	command -v iperf3 >/dev/null || { pkgs+=(iperf3); units+=(iperf3); }
	command -v curl >/dev/null || pkgs+=(curl)
	bench_install bench/lb.sh "${pkgs[*]}" "${units[*]}" "haproxy nginx iperf3"
}

# stream_module: the path of nginx's dynamic stream module (Debian's
# libnginx-mod-stream), empty when there is none.  Its directory is nginx's
# --modules-path (Debian: /usr/lib/nginx/modules).
stream_module() {
	local dir=/usr/lib/nginx/modules
	if command -v nginx >/dev/null; then
		dir=$(nginx -V 2>&1 | tr ' ' '\n' | awk -F= '$1 == "--modules-path" { print $2 }')
		dir=${dir:-/usr/lib/nginx/modules}
	fi
	[ ! -f "$dir/ngx_stream_module.so" ] || echo "$dir/ngx_stream_module.so"
}

install_peers
for cmd in haproxy nginx wrk iperf3 curl; do
	command -v "$cmd" >/dev/null || die "$cmd not found after the install"
done
STREAM_SO=$(stream_module)
[ -n "$STREAM_SO" ] || nginx -V 2>&1 | grep -q -- '--with-stream\( \|$\)' ||
	die "nginx has no stream module (libnginx-mod-stream)"

# ---- helpers -----------------------------------------------------------------------

sysctl_ns() { # NS KEY VALUE
	# shellcheck disable=SC2016 # expanded by the inner sh
	ip netns exec "$1" sh -c 'echo "$2" >"/proc/sys/$1"' sh "${2//.//}" "$3"
}

# bg NS LOG CMD...: CMD in NS in the background; BG_PID is its pid (ip netns
# exec and taskset exec, no fork).
bg() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# get ADDR: one HTTP request from the client, a new connection; the body.
get() {
	ip netns exec "$CLIENT" curl -s --noproxy '*' --max-time 1 -H 'Connection: close' "http://$1:$WEB_PORT/" 2>/dev/null
}

# listening NS WHERE: something in NS listens on TCP WHERE (ADDR:PORT, or
# :PORT for any address).
listening() {
	ip netns exec "$1" ss -Hltn 2>/dev/null | awk -v p="$2" '{ if (substr($4, length($4) - length(p) + 1) == p) f = 1 } END { exit !f }'
}

# ready NAME PID LOG WEB PERF: poll until an HTTP request to WEB from the
# client gets a backend's answer and something in the node listens on
# PERF's perf port, 20 s at most.
ready() {
	local name=$1 pid=$2 log=$3 web=$4 perf=$5 i
	for ((i = 0; i < 200; i++)); do
		alive "$pid" || { tail -n 20 "$log" >&2; die "$name exited at start"; }
		if [[ $(get "$web") == b[123] ]] && listening "$NODE" "$perf:$PERF_PORT"; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	die "$name did not answer on $web:$WEB_PORT (or listen on $perf:$PERF_PORT) within 20 s"
}

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# shellcheck disable=SC2317 # called through check
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

SUMMARY=()
verdict() { # OK(0/1) TEXT
	if [ "$1" = 0 ]; then SUMMARY+=("PASS  $2"); else SUMMARY+=("FAIL  $2"); fi
}

# ---- the topology -------------------------------------------------------------------

ns_new CLIENT client
ns_new NODE node
BNS=()
ip -n "$NODE" link add lbbr0 type bridge stp_state 0
ip -n "$NODE" addr add "$GW_IP/24" dev lbbr0
ip -n "$NODE" link set lbbr0 up
for i in 1 2 3; do
	ns_new ns "b$i"
	BNS+=("$ns")
	ip -n "$NODE" link add "lbb$i" type veth peer name eth0 netns "$ns"
	ip -n "$NODE" link set "lbb$i" master lbbr0 up
	ip -n "$ns" addr add "${B_IPS[i - 1]}/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$GW_IP"
done
ip -n "$NODE" link add lbc0 type veth peer name eth0 netns "$CLIENT"
ip -n "$NODE" addr add "$NODE_IP/24" dev lbc0
ip -n "$NODE" addr add "$NGINX_IP/24" dev lbc0
ip -n "$NODE" link set lbc0 up
ip -n "$CLIENT" addr add "$CLIENT_IP/24" dev eth0
ip -n "$CLIENT" link set eth0 up
ip -n "$CLIENT" route add default via "$NODE_IP"
sysctl_ns "$NODE" net.ipv4.ip_forward 1 # the pod-direct figures only
for ns in "$CLIENT" "$NODE"; do
	sysctl_ns "$ns" net.ipv4.tcp_tw_reuse 1
	sysctl_ns "$ns" net.ipv4.ip_local_port_range "10000 65000"
done

# nginx_main DIR CONNS: the start of an nginx configuration, one worker of
# CONNS connections, its files in DIR (the backends and the stream balancer).
nginx_main() {
	cat <<-EOC
		worker_processes 1;
		daemon off;
		pid $1/nginx.pid;
		error_log $1/error.log warn;
		worker_rlimit_nofile 16384;
		events {
		    worker_connections $2;
		}
	EOC
}

# The backends.
for i in 1 2 3; do
	d=$T/b$i
	mkdir -p "$d"
	{
		nginx_main "$d" 8192
		cat <<-EOC
			http {
			    access_log off;
			    keepalive_requests 1000000;
			    client_body_temp_path $d/body;
			    proxy_temp_path $d/proxy;
			    fastcgi_temp_path $d/fastcgi;
			    uwsgi_temp_path $d/uwsgi;
			    scgi_temp_path $d/scgi;
			    server {
			        listen $WEB_PORT backlog=4096;
			        location / {
			            return 200 "b$i\n";
			        }
			    }
			}
		EOC
	} >"$d/nginx.conf"
	bg "${BNS[i - 1]}" "$d/log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
done
bg "${BNS[0]}" "$T/b1/iperf3.log" iperf3 -s -p "$PERF_PORT"
for i in 1 2 3; do
	for ((j = 0; j < 200; j++)); do
		listening "${BNS[i - 1]}" ":$WEB_PORT" && { [ "$i" != 1 ] || listening "${BNS[0]}" ":$PERF_PORT"; } && break
		sleep 0.1
	done
	[[ $(get "${B_IPS[i - 1]}") == "b$i" ]] || { cat "$T/b$i/error.log" "$T/b$i/log" >&2 || true; die "backend b$i does not answer"; }
done

# ---- the balancers --------------------------------------------------------------------

# The configurations.
mkdir -p "$T/haproxy" "$T/nginx" "$T/svcd"
{
	cat <<-EOC
		global
		    nbthread 1
		    maxconn 8000
		defaults
		    mode tcp
		    balance roundrobin
		    timeout connect 5s
		    timeout client 60s
		    timeout server 60s
		frontend web
		    bind $NODE_IP:$WEB_PORT
		    default_backend web
		backend web
	EOC
	for i in 1 2 3; do
		echo "    server b$i ${B_IPS[i - 1]}:$WEB_PORT"
	done
	cat <<-EOC
		frontend perf
		    bind $NODE_IP:$PERF_PORT
		    default_backend perf
		backend perf
		    server b1 ${B_IPS[0]}:$PERF_PORT
	EOC
} >"$T/haproxy/haproxy.cfg"
haproxy -c -q -f "$T/haproxy/haproxy.cfg" || die "haproxy rejects $T/haproxy/haproxy.cfg"

{
	[ -z "$STREAM_SO" ] || echo "load_module $STREAM_SO;"
	d=$T/nginx
	nginx_main "$d" 8000
	cat <<-EOC
		stream {
		    upstream web {
	EOC
	for i in 1 2 3; do
		echo "        server ${B_IPS[i - 1]}:$WEB_PORT;"
	done
	cat <<-EOC
		    }
		    upstream perf {
		        server ${B_IPS[0]}:$PERF_PORT;
		    }
		    server {
		        listen $NGINX_IP:$WEB_PORT backlog=4096;
		        proxy_pass web;
		    }
		    server {
		        listen $NGINX_IP:$PERF_PORT;
		        proxy_pass perf;
		    }
		}
	EOC
} >"$T/nginx/nginx.conf"
# (nginx -t binds the listeners: in the node namespace)
ip netns exec "$NODE" nginx -t -q -e "$T/nginx/error.log" -p "$T/nginx" -c "$T/nginx/nginx.conf" ||
	die "nginx rejects $T/nginx/nginx.conf"

# svcd's services: selector-less, their Endpoints given.
{
	for s in "web $WEB_VIP $WEB_PORT 3" "perf $PERF_VIP $PERF_PORT 1"; do
		read -r name vip port n <<<"$s"
		printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n' "$name"
		printf 'spec:\n  clusterIP: %s\n  ports:\n  - {port: %s, targetPort: %s, protocol: TCP}\n' "$vip" "$port" "$port"
		printf -- '---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: %s, namespace: default}\n' "$name"
		printf 'subsets:\n- addresses:\n'
		for ((i = 0; i < n; i++)); do
			printf '  - {ip: %s}\n' "${B_IPS[i]}"
		done
		printf '  ports:\n  - {port: %s, protocol: TCP}\n' "$port"
	done
} >"$T/svcd/services.yaml"

# svcd_start DIR: svcd --mode userspace in the node namespace, pinned; BG_PID;
# returns once svcctl answers.
svcd_start() {
	local d=$1 i
	bg "$NODE" "$d/svcd.log" taskset -c "$LB_CPU" "$SVCD" --mode userspace --no-dns --no-pods \
		--resync-period 0 --cluster-cidr 10.244.0.0/16 --state-dir "$d/state" --socket "$d/sock"
	for ((i = 0; i < 1200; i++)); do
		alive "$BG_PID" || { tail -n 20 "$d/svcd.log" >&2; die "svcd --mode userspace exited at start"; }
		"$CTL" --socket "$d/sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	tail -n 20 "$d/svcd.log" >&2
	die "svcd did not answer within 60 s"
}

# start NAME: NAME in the node namespace, pinned to CPU 1 (all its threads),
# answering; its pid, log and addresses in LB_PID, LB_LOG, LB_WEB and
# LB_PERF [NAME].  direct: b1 itself, nothing started.
declare -A LB_PID LB_LOG LB_WEB LB_PERF
start() {
	local d=$T/$1 web perf log
	case $1 in
	direct)
		LB_PID[direct]='' LB_WEB[direct]=${B_IPS[0]} LB_PERF[direct]=${B_IPS[0]}
		return 0
		;;
	haproxy)
		bg "$NODE" "$d/log" taskset -c "$LB_CPU" haproxy -db -f "$d/haproxy.cfg"
		web=$NODE_IP perf=$NODE_IP log=$d/log
		;;
	nginx)
		bg "$NODE" "$d/log" taskset -c "$LB_CPU" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
		web=$NGINX_IP perf=$NGINX_IP log=$d/error.log
		;;
	svcd)
		svcd_start "$d"
		"$CTL" --socket "$d/sock" apply -f "$d/services.yaml" >>"$d/apply.log" 2>&1 ||
			{ cat "$d/apply.log" >&2; die "svcctl apply failed"; }
		web=$WEB_VIP perf=$PERF_VIP log=$d/svcd.log
		;;
	esac
	LB_PID[$1]=$BG_PID LB_LOG[$1]=$log LB_WEB[$1]=$web LB_PERF[$1]=$perf
	ready "$1" "$BG_PID" "$log" "$web" "$perf"
	repin "$NODE" "$LB_CPU"
}

# ---- the figures -----------------------------------------------------------------------

RES=$T/results
mkdir -p "$RES"
declare -A SPREAD

# spread ADDR: how 30 new connections to ADDR land on the backends.
spread() {
	ip netns exec "$CLIENT" curl -s --noproxy '*' --max-time 2 -H 'Connection: close' "http://$1:$WEB_PORT/?[1-30]" 2>/dev/null |
		awk '{ n[$1]++ } END { printf "b1 %d, b2 %d, b3 %d", n["b1"], n["b2"], n["b3"] }'
}

# measure TEST OUT ADDR PID: one test from the client on CPU 0 (cps, ka: wrk;
# thr: iperf3), its output in OUT; OUT.cpu the balancer's (PID; none for
# direct) CPU share over the test's wall time, in %.
measure() {
	local test=$1 out=$2 addr=$3 pid=$4 c0=0 c1=0 t0 t1
	[ -z "$pid" ] || c0=$(cpu_ticks "$pid")
	t0=$(now_us)
	case $test in
	cps)
		ip netns exec "$CLIENT" taskset -c "$LOAD_CPU" timeout $((SECS + 30)) \
			wrk -t1 -c "$CONNS" -d "${SECS}s" -H 'Connection: close' "http://$addr:$WEB_PORT/" >"$out" 2>&1 || true
		;;
	ka)
		ip netns exec "$CLIENT" taskset -c "$LOAD_CPU" timeout $((SECS + 30)) \
			wrk -t1 -c "$CONNS" -d "${SECS}s" "http://$addr:$WEB_PORT/" >"$out" 2>&1 || true
		;;
	thr)
		ip netns exec "$CLIENT" taskset -c "$LOAD_CPU" timeout $((ISECS + 30)) \
			iperf3 -c "$addr" -p "$PERF_PORT" -t "$ISECS" -O 1 -J >"$out" 2>&1 || true
		;;
	esac
	t1=$(now_us)
	[ -z "$pid" ] || c1=$(cpu_ticks "$pid")
	awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v us=$((t1 - t0)) \
		'BEGIN { printf "%.0f\n", t / hz * 1e8 / us }' >"$out.cpu"
}

# field FILE WHAT: one figure from a test's output (0 when it failed).
field() {
	case $2 in
	rate) awk '/^Requests\/sec:/ { v = $2 } END { printf "%.0f", v }' "$1" ;;
	reqs) awk '/ requests in / { v = $1 } END { print v + 0 }' "$1" ;;
	errs) awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' "$1" ;;
	gbps) awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { v = $2; gsub(/,/, "", v); exit }
		END { printf "%.2f", v / 1e9 }' "$1" ;;
	cpu) cat "$1.cpu" ;;
	esac
}

# test_one NAME TEST ROUND: one test through NAME (started), its output in
# RES/NAME.ROUND.TEST.
test_one() {
	local name=$1 t=$2 addr=${LB_WEB[$1]}
	[ "$t" != thr ] || addr=${LB_PERF[$1]}
	measure "$t" "$RES/$name.$3.$t" "$addr" "${LB_PID[$name]}"
	if [ -n "${LB_PID[$name]}" ] && ! alive "${LB_PID[$name]}"; then
		tail -n 20 "${LB_LOG[$name]}" >&2
		die "$name exited during the run"
	fi
}

# median FMT: the median of the numbers on stdin, printed with FMT.
median() { sort -g | awk -v f="$1\n" '{ a[NR] = $1 } END { printf f, NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# per_round NAME TEST WHAT: the figure of each round, one a line.
per_round() {
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		printf '%s\n' "$(field "$RES/$1.$r.$2" "$3")"
	done
}

# what TEST: the figure a test gives.
what() { if [ "$1" = thr ]; then echo gbps; else echo rate; fi; }

# round_ratio TEST A B [FMT]: the median over the rounds of A's figure /
# B's (printed with FMT, %.2f).
round_ratio() {
	local r w
	w=$(what "$1")
	for ((r = 1; r <= ROUNDS; r++)); do
		awk -v a="$(field "$RES/$2.$r.$1" "$w")" -v b="$(field "$RES/$3.$r.$1" "$w")" 'BEGIN { printf "%.4f\n", b ? a / b : 0 }'
	done | median "${4:-%.2f}"
}

# cpu_ratio TEST A B: the median over the rounds of A's figure per second of
# its own CPU / B's: what one fully busy balancer thread would sustain, the
# rest of the machine (wrk, the backends) taken out.
cpu_ratio() {
	local r w
	w=$(what "$1")
	for ((r = 1; r <= ROUNDS; r++)); do
		awk -v a="$(field "$RES/$2.$r.$1" "$w")" -v ca="$(field "$RES/$2.$r.$1" cpu)" \
			-v b="$(field "$RES/$3.$r.$1" "$w")" -v cb="$(field "$RES/$3.$r.$1" cpu)" \
			'BEGIN { printf "%.3f\n", (b && ca) ? (a / ca) / (b / cb) : 0 }'
	done | median %.2f
}

# rounds_text TEST A B: each round's A/B.
rounds_text() {
	local r w
	w=$(what "$1")
	for ((r = 1; r <= ROUNDS; r++)); do
		printf ' %s' "$(ratio "$(field "$RES/$2.$r.$1" "$w")" "$(field "$RES/$3.$r.$1" "$w")")"
	done
}

# err_pct NAME TEST: wrk's errors over all rounds, in % of its requests.
err_pct() {
	local e=0 q=0 r
	for ((r = 1; r <= ROUNDS; r++)); do
		e=$((e + $(field "$RES/$1.$r.$2" errs)))
		q=$((q + $(field "$RES/$1.$r.$2" reqs)))
	done
	awk -v e="$e" -v q="$q" 'BEGIN { if (q == 0) print 100; else printf "%.2f", e * 100 / q }'
}

# ---- the run ----------------------------------------------------------------------------

echo "svcd userspace balancer benchmark ($(nproc) CPUs, kernel $(uname -r), run $RUN)"
echo "  3 nginx backends ($(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes 1); web: port $WEB_PORT over b1-b3, perf: port $PERF_PORT to b1's iperf3"
echo "  the balancers side by side on CPU $LB_CPU (one loaded at a time), one worker each: $(haproxy -v | awk 'NR == 1 { print "HAProxy " $3 }') (mode tcp, roundrobin, nbthread 1), nginx stream (worker_processes 1), svcd --mode userspace"
echo "  on CPU $LOAD_CPU: $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }') -t1 -c $CONNS -d ${SECS}s (new connections: + 'Connection: close'; keep-alive), iperf3 $(iperf3 -v | awk 'NR == 1 { print $2 }') -t $ISECS -O 1"
echo "  $ROUNDS rounds, each test through every balancer back to back, the order rotating; figures are medians over the rounds, ratios the medians of each round's ratios"
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg); this machine's rates move from minute to minute: compare the ratios."
for s in "${RUNNING[@]}"; do
	start "$s"
	[ "$s" = direct ] || SPREAD[$s]=$(spread "${LB_WEB[$s]}")
done
for ((r = 1; r <= ROUNDS; r++)); do
	order=()
	for ((i = 0; i < ${#RUNNING[@]}; i++)); do
		order+=("${RUNNING[(i + r - 1) % ${#RUNNING[@]}]}")
	done
	for t in cps ka thr; do
		for s in "${order[@]}"; do
			test_one "$s" "$t" "$r"
		done
	done
	line="  round $r:"
	for s in "${order[@]}"; do
		line+=" $s $(field "$RES/$s.$r.cps" rate)/$(field "$RES/$s.$r.ka" rate)/$(field "$RES/$s.$r.thr" gbps)"
	done
	echo "$line   (conn/s / req/s / Gbit/s)"
done
echo

declare -A FIG ERR
for s in "${RUNNING[@]}"; do
	for t in cps ka thr; do
		w=$(what "$t")
		FIG[$s.$t]=$(per_round "$s" "$t" "$w" | median "$([ "$t" = thr ] && echo %.2f || echo %.0f)")
		FIG[$s.$t.range]="$(per_round "$s" "$t" "$w" | sort -g | head -n 1)-$(per_round "$s" "$t" "$w" | sort -g | tail -n 1)"
		FIG[$s.$t.cpu]=$(per_round "$s" "$t" cpu | median %.0f)
	done
	ERR[$s.cps]=$(err_pct "$s" cps)
	ERR[$s.ka]=$(err_pct "$s" ka)
done

cpu_of() { if [ "$1" = direct ]; then echo -; else echo "${FIG[$1.$2.cpu]}%"; fi; }
printf '  %-8s %10s %15s %4s   %10s %15s %4s   %7s %11s %4s   %-6s %-6s  %s\n' balancer "new conn/s" "(min-max)" CPU \
	"k-a req/s" "(min-max)" CPU "Gbit/s" "(min-max)" CPU "err c" "err ka" "30 new connections"
for s in haproxy nginx svcd direct; do
	[ -n "${FIG[$s.cps]:-}" ] || continue
	printf '  %-8s %10s %15s %4s   %10s %15s %4s   %7s %11s %4s   %-6s %-6s  %s\n' "$s" \
		"${FIG[$s.cps]}" "(${FIG[$s.cps.range]})" "$(cpu_of "$s" cps)" \
		"${FIG[$s.ka]}" "(${FIG[$s.ka.range]})" "$(cpu_of "$s" ka)" \
		"${FIG[$s.thr]}" "(${FIG[$s.thr.range]})" "$(cpu_of "$s" thr)" \
		"${ERR[$s.cps]}%" "${ERR[$s.ka]}%" "${SPREAD[$s]:-(pod b1 directly, no balancer)}"
done
echo "  CPU: the balancer's own CPU time over the test's wall time (100%: its CPU was the limit), medians"
echo "  err: wrk's socket errors and non-2xx answers, % of its requests over the rounds (> $MAX_ERR_PCT%: not valid)"
for s in "${RUNNING[@]}"; do
	[[ ${SPREAD[$s]:-b1 1, b2 1, b3 1} != *" 0"* ]] ||
		echo "  note: $s sent none of 30 new connections to some backend (${SPREAD[$s]})"
	for t in cps ka; do
		if ! ge "$MAX_ERR_PCT" "${ERR[$s.$t]}"; then
			echo "  note: $s $t: wrk errors ${ERR[$s.$t]}% of requests; round 1: $(grep -E 'Socket errors|Non-2xx|unable' "$RES/$s.1.$t" | tr -s ' \n' ' ')"
		fi
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		for t in cps ka; do
			[ "$(field "$RES/$s.$r.$t" rate)" != 0 ] ||
				echo "  note: $s $t: wrk failed in round $r: $(tail -n 2 "$RES/$s.$r.$t" | tr -s ' \n' ' ')"
		done
		if [ "$(field "$RES/$s.$r.thr" gbps)" = 0.00 ]; then
			echo "  note: $s: iperf3 failed in round $r: $(grep -m1 '"error"' "$RES/$s.$r.thr" || tail -n 1 "$RES/$s.$r.thr")"
		fi
	done
done
echo

declare -A TNAME=([cps]="new connections/s" [ka]="keep-alive requests/s" [thr]="throughput")
declare -A TARGET=([cps]=1.2 [ka]=1.1 [thr]=1.0)
declare -A UNIT=([cps]="conn/s" [ka]="req/s" [thr]="Gbit/s")
if [ -n "${FIG[svcd.cps]:-}" ]; then
	for p in haproxy nginx direct; do
		[ -n "${FIG[$p.cps]:-}" ] || continue
		for t in cps ka thr; do
			printf '  %-40s %s\n' "svcd/$p ${TNAME[$t]}" "$(round_ratio "$t" svcd "$p")x   (rounds:$(rounds_text "$t" svcd "$p"))"
			[ "$p" = direct ] ||
				printf '  %-40s %s\n' "  per balancer CPU-second" "$(cpu_ratio "$t" svcd "$p")x"
		done
	done
	for t in cps ka thr; do
		text="svcd ${TNAME[$t]} ${FIG[svcd.$t]} ${UNIT[$t]}"
		if [ -z "${FIG[haproxy.$t]:-}" ]; then
			verdict 1 "$text >= ${TARGET[$t]}x HAProxy: HAProxy not run (LB_BENCH_BALANCERS)"
			continue
		fi
		rr=$(round_ratio "$t" svcd haproxy %.4f) # the target is judged unrounded
		text+=" = $(round_ratio "$t" svcd haproxy)x HAProxy's ${FIG[haproxy.$t]} >= ${TARGET[$t]}x"
		if [ "$t" != thr ] && ! ge "$MAX_ERR_PCT" "${ERR[svcd.$t]}"; then
			verdict 1 "$text: not valid, wrk errors ${ERR[svcd.$t]}% of requests"
		elif [ "$t" != thr ] && ! ge "$MAX_ERR_PCT" "${ERR[haproxy.$t]}"; then
			verdict 1 "$text: HAProxy's figure not valid, wrk errors ${ERR[haproxy.$t]}% of requests"
		elif ge "$rr" "${TARGET[$t]}" && ! ge 0 "${FIG[haproxy.$t]}"; then
			verdict 0 "$text"
		else
			verdict 1 "$text"
		fi
	done
else
	for p in haproxy nginx; do
		[ -z "${FIG[$p.cps]:-}" ] || printf '  %-40s %s\n' "svcd/$p" "-   (svcd not measured)"
	done
	for t in cps ka thr; do
		verdict 1 "svcd ${TNAME[$t]} >= ${TARGET[$t]}x HAProxy: svcd not run (LB_BENCH_BALANCERS)"
	done
fi
echo

bench_summary
