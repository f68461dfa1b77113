# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by the benchmarks that start daemons in namespaces of their own
# (bench/nft.sh, dns.sh, lb.sh, launch.sh).  The caller keeps what it made
# in two arrays, NSES (namespaces) and PIDS (processes), and calls
# bench_stop_all from its EXIT trap.

NSES=() # namespaces this run made
PIDS=() # daemons and servers this run started

# die MESSAGE...: MESSAGE on stderr after the script's name, and exit 1.
die() {
	echo "$0: $*" >&2
	exit 1
}

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

POLICY_RC= # a policy-rc.d bench_install put in place; the caller's EXIT trap removes it

# bench_install WHO "PKGS" "UNITS" "DAEMONS": apt-get install the Debian
# packages PKGS (space-separated; nothing when empty) without letting their
# services start meanwhile (a policy-rc.d answering 101, unless the machine
# has one: invoke-rc.d asks it, so postinst scripts start nothing), then
# disable the systemd UNITS they brought (and stop them where
# systemd runs), and say so when one of DAEMONS already runs outside the
# benchmark's namespaces.  The apt log goes to $T/apt.log; die() on failure.
bench_install() {
	local who=$1 u pid
	local -a pkgs units daemons
	read -r -a pkgs <<<"$2"
	read -r -a units <<<"$3"
	read -r -a daemons <<<"$4"
	[ ${#pkgs[@]} -gt 0 ] || return 0
	echo "installing ${pkgs[*]} (Debian's) ..."
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		POLICY_RC=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# %s: start no service while it installs\nexit 101\n' "$who" >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$T/apt.log" 2>&1; then
		# a stale package list: update once, then again
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$T/apt.log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >>"$T/apt.log" 2>&1 ||
			{ tail -n 20 "$T/apt.log" >&2; die "cannot install ${pkgs[*]}"; }
	fi
	if [ -n "$POLICY_RC" ]; then
		rm -f "$POLICY_RC"
		POLICY_RC=
	fi
	for u in "${units[@]}"; do
		command -v systemctl >/dev/null || break
		if [ -d /run/systemd/system ]; then
			systemctl disable --now "$u" >/dev/null 2>&1 || true
		else
			systemctl disable "$u" >/dev/null 2>&1 || true
		fi
	done
	# no init ran them, but make sure: a packaged daemon outside our namespaces
	for u in "${daemons[@]}"; do
		pid=$(pgrep -x -o "$u") || continue
		if [ "$(readlink /proc/"$pid"/ns/net)" = "$(readlink /proc/self/ns/net)" ]; then
			echo "  note: a $u runs on this host outside the benchmark (left alone)" >&2
		fi
	done
}

# ns_new VAR TAG: a fresh namespace $RUN-TAG with lo up, its name in VAR.
ns_new() {
	local name=$RUN-$2
	ip netns add "$name"
	NSES+=("$name")
	ip -n "$name" link set lo up
	printf -v "$1" '%s' "$name"
}

# repin NS CPU: every thread of every process in NS onto CPU (a daemon
# may pin its own workers over taskset's mask: knotd pins UDP worker N to
# CPU N).
repin() {
	local pid
	for pid in $(ip netns pids "$1"); do
		taskset -a -p -c "$2" "$pid" >/dev/null
	done
}

# stop PID: SIGTERM, 5 s, then SIGKILL; reaped.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# descendants PID: PID and every process below it.
descendants() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do
		descendants "$c"
	done
}

# cpu_ticks PID: the CPU time the process and all below it (NSD and nginx
# work in a child) used so far, all their threads, utime + stime in ticks.
cpu_ticks() {
	local pid stat sum=0
	for pid in $(descendants "$1"); do
		{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
		stat=${stat##*) }
		sum=$((sum + $(awk '{ print $12 + $13 }' <<<"$stat")))
	done
	echo "$sum"
}

# bench_begin NAME: a temp dir $T and a run name $RUN (NAME-<random>, the
# prefix of the namespaces), and traps that on exit, also on failure or
# interruption, stop what the run started (bench_stop_all), remove a
# policy-rc.d it left and $T (kept when BENCH_KEEP is set).
bench_begin() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")
	RUN=$1-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

# shellcheck disable=SC2317 # run by the EXIT trap
bench_cleanup() {
	bench_stop_all
	[ -z "$POLICY_RC" ] || rm -f "$POLICY_RC"
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
