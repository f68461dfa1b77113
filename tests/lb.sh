# Helpers of the userspace balancer tests (tests/integration/lb_*.sh).  A
# test sources it after lib.sh, topo.sh and nft.sh (whose Service and
# Endpoints writers and load checks it uses):
#     . "$(dirname "$0")/../lib.sh"
#     . "$(dirname "$0")/../topo.sh"
#     . "$(dirname "$0")/../nft.sh"
#     . "$(dirname "$0")/../lb.sh"
# It gets SVCD_ARGS for --mode userspace, failure messages that show what the
# balancer does (nft_state, so nft.sh's checks show it too), the balancer's
# figures from `svcctl list -o json` (lb_json, lb_val, lb_ep_val, lb_listen),
# the node's side of it (vip_on_lo, svcd_listens, listen_queue), the stream
# tool (stream_serve, run_stream, stream_ok), clients in the background
# (bg_load, bg_load_end), open-file limits (lb_nofile), an even-spread check
# for round robin (assert_even) and a spin check (assert_not_spinning).  Like
# nft.sh's tests, these are skipped without the nft CLI.
#
# In userspace mode svcd puts each ClusterIP and externalIP as a /32 on the
# node's lo and listens itself on ClusterIP:port (and 0.0.0.0:nodePort); the
# backend connections go from the node (10.244.0.1 on the bridge) to the
# endpoints.  The pods are made with topo.sh, the client of the tests is $C.
# SPDX-License-Identifier: MIT
# shellcheck shell=bash

# svcd's options: the userspace balancer on node1 of the cluster 10.244.0.0/16.
# A test adds its own, e.g. SVCD_ARGS+=(--lb-drain-grace 3).
# shellcheck disable=SC2034 # for the tests
SVCD_ARGS=(--mode userspace --node-name "$NFT_NODE_NAME" --cluster-cidr 10.244.0.0/16)

# The TCP port of the stream servers (stream_serve) in the pods.
LB_STREAM_PORT=7070
declare -gA LB_STREAM_LOG=()

# ---- failure messages -----------------------------------------------------

# nft_state (replaces nft.sh's, so that nft_fail, expect_ok and the like show
# it): the node's addresses on lo, the sockets svcd has bound, the balancer's
# figures (svcctl list -o json) and status, and table ip svcd when there is one.
nft_state() {
	echo "--- addresses on lo (in $NODE) ---"
	ip -n "$NODE" -4 -o addr show dev lo 2>&1 | awk '{ print $4 }'
	echo "--- listening sockets (in $NODE) ---"
	nsx "$NODE" ss -Hltunp 2>&1
	if [[ $(nsx "$NODE" nft list tables 2>/dev/null) == *"table ip svcd"* ]]; then
		echo "--- nft list table ip svcd (in $NODE) ---"
		nsx "$NODE" nft list table ip svcd 2>&1
	fi
	if [ -n "$SVCD_PID" ]; then
		# (a daemon short of descriptors may not answer: 5 s each at most)
		echo "--- svcctl list -o json ---"
		SVCCTL_TIMEOUT=5 svcctl list -o json 2>&1
		echo "--- svcctl status -o json (mode) ---"
		SVCCTL_TIMEOUT=5 svcctl status -o json 2>&1 | grep -m1 '"mode"'
	fi
}

# ---- the balancer's figures ---------------------------------------------------

# json_flat: the JSON document on stdin, one line per scalar: PATH, a tab,
# VALUE.  PATH is like .services[0].lb.endpoints[1].total; VALUE a string
# without its quotes (escapes left as they are), a number, true, false or
# null; an empty array or object is one line with VALUE [] or {}.  No jq on
# a fresh machine: a small parser in awk (mawk, POSIX) instead.
json_flat() {
	awk '
		function comp() {
			if (typ[d] == "{") return pre[d] "." key[d]
			if (typ[d] == "[") return pre[d] "[" idx[d] "]"
			return ""
		}
		function scalar(v) { print comp() "\t" v; cnt[d]++ }
		{ text = text $0 "\n" }
		END {
			n = length(text); d = 0; typ[0] = ""; pre[0] = ""
			for (i = 1; i <= n; ) {
				c = substr(text, i, 1)
				if (index(" \t\r\n:", c)) { i++; continue }
				if (c == "{" || c == "[") {
					p = comp(); cnt[d]++
					d++; pre[d] = p; typ[d] = c; idx[d] = 0; cnt[d] = 0; wantkey[d] = (c == "{")
					i++; continue
				}
				if (c == "}" || c == "]") {
					if (!cnt[d]) print pre[d] "\t" (c == "}" ? "{}" : "[]")
					d--; i++; continue
				}
				if (c == ",") {
					if (typ[d] == "{") wantkey[d] = 1; else idx[d]++
					i++; continue
				}
				if (c == "\"") {
					for (j = i + 1; j <= n; j++) {
						cj = substr(text, j, 1)
						if (cj == "\\") { j++; continue }
						if (cj == "\"") break
					}
					s = substr(text, i + 1, j - i - 1); i = j + 1
					if (typ[d] == "{" && wantkey[d]) { key[d] = s; wantkey[d] = 0 } else scalar(s)
					continue
				}
				for (j = i; j <= n && !index(" \t\r\n,}]:", substr(text, j, 1)); j++) ;
				scalar(substr(text, i, j - i)); i = j
			}
		}'
}

# lb_json: `svcctl list -o json`, flattened (json_flat), into LB_JSON.
lb_json() {
	local out
	out=$(svcctl list -o json) || return 1
	LB_JSON=$(json_flat <<<"$out")
}

# _lb_prefix SERVICE: the path of service default/SERVICE in LB_JSON
# (.services[N]); fails when absent.
_lb_prefix() {
	awk -F '\t' -v n="$1" '
		$1 ~ /^\.services\[[0-9]+\]\.name$/ && $2 == n { p = $1; sub(/\.name$/, "", p); named[p] = 1 }
		$1 ~ /^\.services\[[0-9]+\]\.namespace$/ && $2 == "default" { p = $1; sub(/\.namespace$/, "", p); ns[p] = 1 }
		END { for (p in named) if (p in ns) { print p; f = 1; break }; exit !f }' <<<"$LB_JSON"
}

# _lb_path PATH: the value at PATH in LB_JSON; fails when absent.
_lb_path() {
	awk -F '\t' -v p="$1" '$1 == p { print $2; f = 1; exit } END { exit !f }' <<<"$LB_JSON"
}

# lb_val SERVICE PATH: from LB_JSON (read it first with lb_json), the value
# at PATH (e.g. .lb.total) in service SERVICE's object; fails when absent.
lb_val() {
	local pre
	pre=$(_lb_prefix "$1") || return 1
	_lb_path "$pre$2"
}

# lb_has SERVICE KEY: SERVICE's object in LB_JSON has KEY (e.g. listen, lb)
# at its top level.
lb_has() {
	local pre
	pre=$(_lb_prefix "$1") || return 1
	awk -F '\t' -v p="$pre.$2" 'index($1, p) == 1 && (length($1) == length(p) ||
		substr($1, length(p) + 1, 1) ~ /[.[]/) { f = 1; exit } END { exit !f }' <<<"$LB_JSON"
}

# lb_ep_val SERVICE ENDPOINT FIELD: from LB_JSON, FIELD of the entry of
# SERVICE's lb.endpoints whose "endpoint" is ENDPOINT (IP:PORT).
lb_ep_val() {
	local pre ep
	pre=$(_lb_prefix "$1") || return 1
	ep=$(awk -F '\t' -v p="$pre.lb.endpoints[" -v e="$2" '
		index($1, p) == 1 && $1 ~ /\]\.endpoint$/ && $2 == e { sub(/\.endpoint$/, "", $1); print $1; f = 1; exit }
		END { exit !f }' <<<"$LB_JSON") || return 1
	_lb_path "$ep.$3"
}

# lb_listen SERVICE: the entries of SERVICE's "listen" in LB_JSON, one a line.
lb_listen() {
	local pre
	pre=$(_lb_prefix "$1") || return 1
	awk -F '\t' -v p="$pre.listen[" 'index($1, p) == 1 && $2 != "[]" { print $2 }' <<<"$LB_JSON"
}

# lb_counter SERVICE PATH: lb_json, then lb_val; fails the test when absent.
# (Called as $(lb_counter ...), its LB_JSON stays in the subshell.)
lb_counter() {
	local v
	lb_json || fail "svcctl list -o json failed"
	v=$(lb_val "$1" "$2") || nft_fail "service $1: no $2 in svcctl list -o json"
	echo "$v"
}

# lb_ep_counter SERVICE ENDPOINT FIELD: lb_json, then lb_ep_val, 0 when
# SERVICE's lb.endpoints has no entry for ENDPOINT.
lb_ep_counter() {
	lb_json || fail "svcctl list -o json failed"
	lb_has "$1" lb || nft_fail "service $1: no \"lb\" in svcctl list -o json"
	lb_ep_val "$1" "$2" "$3" || echo 0
}

# lb_is SERVICE PATH WANT: (for polls) svcctl list answers and SERVICE's
# PATH is WANT.
lb_is() {
	local v
	lb_json && v=$(lb_val "$1" "$2") && [ "$v" = "$3" ]
}

# lb_idle SERVICE: (for polls) the balancer has no open connection of SERVICE.
lb_idle() {
	lb_is "$1" .lb.active 0
}

# assert_lb_counts WHAT SERVICE TOTAL EP_PORT: after a run_load that made
# TOTAL connections (or datagrams) to SERVICE and nothing else did, the
# balancer's lb.total is TOTAL, and each pod's endpoint IP:EP_PORT has
# the total load counted for its name (0 when load saw none).
assert_lb_counts() {
	local what=$1 svc=$2 total=$3 port=$4 ns name ip n got
	lb_json || fail "svcctl list -o json failed"
	got=$(lb_val "$svc" .lb.total) || nft_fail "service $svc: no lb.total in svcctl list -o json"
	assert_eq "$got" "$total" "$what: lb.total of $svc"
	for ns in "${!TOPO_NAME[@]}"; do
		name=${TOPO_NAME[$ns]}
		ip=${TOPO_IP[$ns]}
		n=$(topo_count "$OUT" "$name")
		got=$(lb_ep_val "$svc" "$ip:$port" total || echo 0)
		[ "$got" = "$n" ] ||
			nft_fail "$what: lb.endpoints $ip:$port of $svc counts total $got, load saw $n answers from $name:
$OUT"
	done
}

# ---- the node's side ------------------------------------------------------

# vip_on_lo IP: the node has IP/32 on lo.  (The listing is read whole
# first: grep -q in a pipe could end it with SIGPIPE, a failure under
# pipefail.)
vip_on_lo() {
	local out
	out=$(ip -n "$NODE" -4 -o addr show dev lo) || return 1
	grep -qF " inet $1/32 " <<<"$out"
}

# svcd_listens tcp|udp ADDR:PORT: svcd itself (its pid) has a listening TCP
# (an unconnected UDP) socket bound to ADDR:PORT in the node.  For a nodePort
# give 0.0.0.0:PORT; a dual-stack wildcard ([::] or *) counts too.
svcd_listens() {
	local flag=-Hltnp
	[ "$1" = tcp ] || flag=-Hlunp
	nsx "$NODE" ss "$flag" | awk -v a="$2" -v p="pid=$SVCD_PID," '
		BEGIN { if (a ~ /^0\.0\.0\.0:/) { w1 = "*:" substr(a, 9); w2 = "[::]:" substr(a, 9) } }
		($4 == a || $4 == w1 || $4 == w2) && index($0, p) { f = 1 }
		END { exit !f }'
}

# listen_queue ADDR:PORT: the accept queue length (Recv-Q) of the node's TCP
# listener on ADDR:PORT; nothing when there is none.
listen_queue() {
	nsx "$NODE" ss -Hltn | awk -v a="$1" '$4 == a { print $2; exit }'
}

# ---- clients and servers ----------------------------------------------------

# lb_nofile N: raise this shell's open-files limit (soft, and hard if need
# be) to N at least, for all it starts: svcd, the pods' servers, load.
lb_nofile() {
	[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge "$1" ] && return 0
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$1" ]; then
		ulimit -Hn "$1" || fail "cannot raise the hard open-files limit to $1"
	fi
	ulimit -Sn "$1" || fail "cannot raise the open-files limit to $1"
}

# stream_serve POD: start `stream serve NAME $LB_STREAM_PORT` in pod POD
# (NAME its echo's); returns once it listens.  Its log: $T/stream-NAME.log.
stream_serve() {
	local ns=$1 bin name
	bin=$(_topo_tool stream) || exit 1
	name=$(topo_pod_name "$ns")
	LB_STREAM_LOG[$name]=$T/stream-$name.log
	nsx_bg "$ns" "$bin" serve "$name" "$LB_STREAM_PORT" >>"${LB_STREAM_LOG[$name]}" 2>&1 </dev/null
	wait_for 10 grep -q "^stream $name: listening" "${LB_STREAM_LOG[$name]}"
}

# stream_log NAME: what pod NAME's stream server logged.
stream_log() {
	cat "${LB_STREAM_LOG[$1]}"
}

# run_stream NS ARGS...: `stream ARGS` in NS (at most $TOPO_LOAD_TIMEOUT s);
# sets OUT, ERR, RC as run_load does; never fails.
run_stream() {
	local ns=$1 bin
	shift
	bin=$(_topo_tool stream) || exit 1
	RC=0
	nsx "$ns" timeout -k 5 "${TOPO_LOAD_TIMEOUT:-120}" "$bin" "$@" \
		>"$T/.stream_out" 2>"$T/.stream_err" || RC=$?
	OUT=$(cat "$T/.stream_out")
	ERR=$(head -n 20 "$T/.stream_err")
}

# stream_ok WHAT NS ARGS...: run_stream, which must succeed; prints the
# backend that served it.
stream_ok() {
	local what=$1
	shift
	run_stream "$@"
	{ [ "$RC" -eq 0 ] && [[ $OUT =~ ^[a-z]+\ [^\ ]+\ [0-9]+\ ok$ ]]; } ||
		nft_fail "$what: stream ${*:2} exited $RC:
$OUT
$ERR"
	awk '{ print $2 }' <<<"$OUT"
}

# bg_load TAG NS ARGS...: start `load ARGS` in NS in the background, stdout
# to $T/TAG.out, stderr to $T/TAG.err; its pid (load's own, for SIGUSR1)
# goes to BG_PID.  cleanup kills it if the test ends first.
bg_load() {
	local tag=$1 ns=$2 bin
	shift 2
	bin=$(_topo_tool load) || exit 1
	nsx_bg "$ns" "$bin" "$@" >"$T/$tag.out" 2>"$T/$tag.err" </dev/null
	BG_PID=$!
}

# bg_load_end TAG PID: end the background load PID (SIGUSR1: a -t run stops
# as if its time were up) and wait for it (30 s at most); sets OUT, ERR, RC.
bg_load_end() {
	local tag=$1 pid=$2
	kill -USR1 "$pid" 2>/dev/null || true
	_poll 30 _dead "$pid" || fail "load (pid $pid) did not end within 30 s of SIGUSR1"
	RC=0
	wait "$pid" || RC=$?
	OUT=$(cat "$T/$tag.out")
	ERR=$(head -n 20 "$T/$tag.err")
}

# established NS FILTER...: how many TCP connections NS has in state
# established that match the ss FILTER (e.g. dst 10.96.0.1:80).
established() {
	local ns=$1
	shift
	nsx "$ns" ss -Htn state established "$@" | wc -l
}

# ---- checks ---------------------------------------------------------------

# assert_even WHAT TOTAL NAME...: the last run_load succeeded TOTAL times
# with no failure, spread over the NAMEs alone, each within 10% of an even
# share.  (Round robin gives each the same share; the margin leaves room
# for where the rotation starts and for one connection moved on.)
assert_even() {
	local what=$1 total=$2 name n sum=0 share lo hi
	shift 2
	share=$((total / $#))
	lo=$((share * 9 / 10))
	hi=$(((share * 11 + 9) / 10))
	expect_ok "$what" "$total"
	for name; do
		n=$(topo_count "$OUT" "$name")
		((n >= lo && n <= hi)) ||
			nft_fail "$what: backend $name got $n of $total, expected $lo-$hi (round robin):
$OUT"
		sum=$((sum + n))
	done
	assert_eq "$sum" "$total" "$what: answers from the expected backends only ($OUT)"
}

# cpu_ticks PID: the user plus system CPU time of PID, in clock ticks.
cpu_ticks() {
	local stat f
	read -r stat </proc/"$1"/stat || fail "cannot read /proc/$1/stat"
	stat=${stat##*) } # the fields after "(comm) "; utime and stime are 14 and 15
	read -ra f <<<"$stat"
	echo $((f[11] + f[12]))
}

# assert_not_spinning WHAT SECONDS: over SECONDS of wall time svcd uses less
# than half of one CPU.  Not a speed check: an event loop that spins on a
# descriptor it cannot serve burns a whole CPU, an idle one next to none.
# The sleep is the measuring window, not a wait for something to happen.
assert_not_spinning() {
	local what=$1 secs=$2 hz c0 c1 t0 t1 cpu_ms wall_ms
	hz=$(getconf CLK_TCK)
	c0=$(cpu_ticks "$SVCD_PID")
	t0=${EPOCHREALTIME//[!0-9]/}
	sleep "$secs"
	c1=$(cpu_ticks "$SVCD_PID")
	t1=${EPOCHREALTIME//[!0-9]/}
	cpu_ms=$(((c1 - c0) * 1000 / hz))
	wall_ms=$(((t1 - t0) / 1000))
	((cpu_ms * 2 < wall_ms)) ||
		nft_fail "$what: svcd used $cpu_ms ms of CPU in $wall_ms ms (spinning?)"
	echo "$what: svcd used $cpu_ms ms of CPU in $wall_ms ms" >&2
}

# userspace_yaml DOC: a Service document (service_yaml's output) with the
# annotation svcd.io/proxy-mode: userspace.
userspace_yaml() {
	sed 's|^metadata: {name: \([^}]*\)}$|metadata: {name: \1, annotations: {"svcd.io/proxy-mode": userspace}}|'
}
