# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by the benchmarks that start daemons in namespaces of their own
# (bench/nft.sh, bench/dns.sh).  The caller keeps what it made in two
# arrays, NSES (namespaces) and PIDS (processes), and calls bench_stop_all
# from its EXIT trap.

NSES=() # namespaces this run made
PIDS=() # daemons and servers this run started

# alive PID: running and not a zombie.
# shellcheck disable=SC2317 # called from bench_stop_all
alive() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# bench_stop_all: SIGTERM to PIDS (2 s to exit), then SIGKILL to anything
# still in NSES, delete NSES, and reap PIDS.
# shellcheck disable=SC2317 # run by the caller's EXIT trap
bench_stop_all() {
	local pid ns pids
	set +e
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for _ in $(seq 40); do
		pids=
		for pid in "${PIDS[@]}"; do
			alive "$pid" && pids=1
		done
		[ -n "$pids" ] || break
		sleep 0.05
	done
	for ns in "${NSES[@]}"; do
		for _ in 1 2 3 4 5; do
			pids=$(ip netns pids "$ns" 2>/dev/null)
			[ -n "$pids" ] || break
			# shellcheck disable=SC2086 # one pid a word
			kill -KILL $pids 2>/dev/null
			sleep 0.1
		done
		ip netns delete "$ns" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

# ns_del NS: kill what runs in NS, delete it, forget it.
ns_del() {
	local ns=$1 pids keep=() n
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	# shellcheck disable=SC2086 # one pid a word
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
	for n in "${NSES[@]}"; do
		[ "$n" = "$ns" ] || keep+=("$n")
	done
	NSES=("${keep[@]}")
}

# bench_summary: print SUMMARY (lines "PASS  ..." / "FAIL  ...") and exit 0
# when every line passed, 1 otherwise.
bench_summary() {
	local s fail=0
	echo "Summary"
	for s in "${SUMMARY[@]}"; do
		echo "  $s"
		[ "${s%% *}" = PASS ] || fail=1
	done
	exit "$fail"
}
