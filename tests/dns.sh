# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers of the cluster DNS tests (tests/integration/dns_*.sh), sourced
# after lib.sh: dig against the node's svcd, readers of dig's output, and an
# upstream resolver that is a second svcd serving the zone cluster2.local.

command -v dig >/dev/null || skip "dig is not installed (dnsutils; scripts/install-deps.sh)"

DNS_PORT=5353		# the node's svcd: --dns-listen 127.0.0.1:$DNS_PORT
UP_PORT=5354		# the upstream svcd
UP_SOCK=		# its control socket, once started
UP_PID=

# q ARGS...: dig at the node's svcd (one try, 2 s), full output.
q() {
	nsx "$NODE" dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 +nocookie "$@"
}

# status OUT: the rcode of a dig output ("NOERROR").
status() {
	sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$1"
}

# flags OUT: the header flags ("qr aa rd ra").
flags() {
	sed -n 's/.*flags: \([a-z ]*\);.*/\1/p' <<<"$1" | head -1
}

# section OUT NAME: a section (ANSWER, AUTHORITY, ADDITIONAL), one record a
# line, "name ttl class type data" with single spaces.
section() {
	awk -v s=";; $2 SECTION:" '$0 == s { on = 1; next } /^$/ { on = 0 } on { $1 = $1; print }' <<<"$1"
}

answers() {
	section "$1" ANSWER
}

# upstream_start: the upstream svcd in the node's namespace, zone
# cluster2.local, DNS on 127.0.0.1:$UP_PORT, no data plane.
upstream_start() {
	local dir=$T/up
	mkdir -p "$dir"
	UP_SOCK=$dir/svcd.sock
	(exec nsenter --net="/run/netns/$NODE" "$SVCD_BIN" --state-dir "$dir/state" \
		--socket "$UP_SOCK" --mode none --no-pods --cluster-domain cluster2.local \
		--dns-service-ip 10.96.0.11 --dns-listen "127.0.0.1:$UP_PORT" \
		--upstream-dns 127.0.0.1:9 >>"$dir/svcd.log" 2>&1 </dev/null 9>&-) &
	UP_PID=$!
	SVCT_SVCD_PIDS+=("$UP_PID")
	wait_for 10 "$SVCCTL_BIN" --socket "$UP_SOCK" status
}

up_svcctl() {
	"$SVCCTL_BIN" --socket "$UP_SOCK" "$@"
}

# upstream_stop: SIGTERM, a clean exit, no sanitizer report.
upstream_stop() {
	kill -TERM "$UP_PID"
	wait_for 10 _dead "$UP_PID"
	wait "$UP_PID" || fail "the upstream svcd exited with $?: $(tail "$T/up/svcd.log")"
	_svcd_forget "$UP_PID"
	_check_sanitizer "$T/up/svcd.log"
}
