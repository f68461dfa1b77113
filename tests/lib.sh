#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Helpers for tests/integration/*.sh.  A test starts with
#     . "$(dirname "$0")/../lib.sh"
# and gets: a run id, a temp dir $T, a node namespace made with ns_new,
# svcd_start/svcd_stop/svcd_kill, an svcctl wrapper, wait_for and assertions.
# Everything a test creates is named after its run id (namespaces
# svct-<id>-<n>, temp dirs ${TMPDIR:-/tmp}/svct-<id>-XXXXXX) and removed by
# `cleanup` on EXIT, INT and TERM, whether the test passes or fails halfway.
# The daemon runs in a namespace that stands for the node: tests never touch
# the host's own networking.
#
# Environment: SVCD_BIN (default build/svcd), SVCCTL_BIN (default
# build/svcctl), SVCT_RUN_ID (set by tests/run.sh, random otherwise),
# VERBOSE=1 echoes commands run in namespaces.  Exit status: 0 pass, 1 fail,
# 4 skip.
#
# Sourced with SVCT_LIB_ONLY=1 (as tests/run.sh does), it only defines
# functions: no root check, no trap, no temp dir.

SVCT_SKIP=4
SVCT_SAN_RE='ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer'
SVCT_TMP=${TMPDIR:-/tmp}

# ---- run-id-wide sweep, shared with tests/run.sh --------------------------

# True when PID has exited (gone, or a zombie not yet reaped).
_dead() {
	local stat
	{ read -r stat </proc/"$1"/stat; } 2>/dev/null || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# The namespaces of run ID.
svct_namespaces() {
	ip netns list 2>/dev/null | awk -v p="svct-$1-" 'index($1, p) == 1 { print $1 }'
}

# _kill_wait PID...: SIGKILL them and wait (5 s at most) until they are gone:
# a killed process can take a while to exit (ASan unmaps much memory).
_kill_wait() {
	[ $# -gt 0 ] || return 0
	kill -KILL "$@" 2>/dev/null || true
	_poll 5 _all_dead "$@" || echo "warning: still running after SIGKILL: $*" >&2
}

_all_dead() {
	local pid
	for pid; do
		_dead "$pid" || return 1
	done
}

# Kill every process in namespace NS, including any started meanwhile.
_ns_kill_all() {
	local ns=$1 pids i
	for ((i = 0; i < 20; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086 # one pid a word
		_kill_wait $pids
	done
	echo "warning: processes still in namespace $ns: $pids" >&2
}

# Remove all that run ID left: processes in its namespaces and daemons using
# its temp dirs, the namespaces (plus those named as extra arguments), the
# temp dirs.
svct_sweep() {
	local id=${1:-} ns
	shift
	[ -n "$id" ] || return 0
	# shellcheck disable=SC2046 # one pid a word
	_kill_wait $(pgrep -f -- "/svct-$id-")
	for ns in "$@" $(svct_namespaces "$id"); do
		_ns_kill_all "$ns"
		ip netns del "$ns" 2>/dev/null || true
	done
	_umount_under "$SVCT_TMP/svct-$id-"
	_cgroups_remove "svct-$id"
	rm -rf "$SVCT_TMP/svct-$id-"*
}

# Mount points whose path starts with PREFIX (pods' network namespaces).
_mounts_under() {
	awk -v p="$1" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo
}

_umount_under() {
	local m
	for m in $(_mounts_under "$1" | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}

# cgroup directories named PREFIX* at the top of any hierarchy (the tests'
# --cgroup-parent).
_cgroup_dirs() {
	local mnt
	for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo); do
		compgen -G "$mnt/$1*" || true
	done
}

_cgroups_remove() {
	local d pids
	for d in $(_cgroup_dirs "$1"); do
		pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
		# shellcheck disable=SC2086 # one pid a word
		[ -z "${pids// /}" ] || _kill_wait $pids
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
}

# Print what run ID left behind, one line per thing; nothing when clean.
svct_leftovers() {
	local id=${1:?run id} ns pid d
	for ns in $(svct_namespaces "$id"); do
		echo "network namespace $ns (pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' '))"
	done
	for pid in $(pgrep -f -- "/svct-$id-"); do
		echo "process $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)"
	done
	for d in "$SVCT_TMP/svct-$id-"*; do
		[ -e "$d" ] && echo "temp dir $d"
	done
	for d in $(_mounts_under "$SVCT_TMP/svct-$id-"); do
		echo "mount $d"
	done
	for d in $(_cgroup_dirs "svct-$id"); do
		echo "cgroup $d"
	done
	return 0
}

# ---- assertions ----------------------------------------------------------

# The first caller outside this file, as file:line.
_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		if [ "${BASH_SOURCE[i]}" != "${BASH_SOURCE[0]}" ]; then
			echo "${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
			return
		fi
	done
}

# fail and skip print to fd 9, the test's stderr as it was at start-up, so
# that their message is seen even from inside a redirected command (_poll,
# expect_fail).
fail() {
	printf 'FAIL (%s): %s\n' "$(_where)" "$*" >&9
	exit 1
}

skip() {
	printf 'SKIP: %s\n' "$*" >&9
	exit "$SVCT_SKIP"
}

# assert_eq ACTUAL EXPECTED MSG
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-assert_eq}: expected '$2', got '$1'"
}

# assert_contains HAYSTACK NEEDLE MSG (fixed string)
assert_contains() {
	[[ $1 == *"$2"* ]] || fail "${3:-assert_contains}: '$2' not found in:
$1"
}

assert_not_contains() {
	[[ $1 != *"$2"* ]] || fail "${3:-assert_not_contains}: '$2' unexpectedly found in:
$1"
}

# assert_match HAYSTACK ERE MSG: some line of HAYSTACK matches the extended regex.
assert_match() {
	grep -qE -- "$2" <<<"$1" || fail "${3:-assert_match}: no line matches /$2/ in:
$1"
}

# expect_fail CMD...: CMD must exit non-zero (but not crash or time out).
# Sets LAST_RC, LAST_OUT (stdout) and LAST_ERR (stderr).
expect_fail() {
	LAST_RC=0
	"$@" >"$T/.last_out" 2>"$T/.last_err" || LAST_RC=$?
	LAST_OUT=$(cat "$T/.last_out")
	LAST_ERR=$(cat "$T/.last_err")
	if [ "$LAST_RC" -eq 0 ]; then
		fail "expected failure, but it succeeded: $*
stdout: $LAST_OUT
stderr: $LAST_ERR"
	fi
	case $LAST_RC in
	66 | 124 | 125 | 126 | 127 | 1[3-9][0-9] | 2[0-9][0-9])
		fail "$* exited $LAST_RC (crash, sanitizer, timeout or not found), not a clean error:
$LAST_ERR"
		;;
	esac
}

# ---- waiting ---------------------------------------------------------------

# _poll TIMEOUT CMD...: run CMD every 0.05 s until it succeeds (0) or TIMEOUT
# seconds (may be fractional) pass (1).  The last try's output is in $T/.poll_out.
_poll() {
	local timeout=$1 deadline now frac=000000 out=/dev/null
	shift
	[ ! -d "${T:-}" ] || out=$T/.poll_out
	[[ $timeout != *.* ]] || frac=${timeout#*.}000000
	now=${EPOCHREALTIME//[!0-9]/}
	deadline=$((now + ${timeout%%.*} * 1000000 + 10#${frac:0:6}))
	while true; do
		"$@" >"$out" 2>&1 && return 0
		now=${EPOCHREALTIME//[!0-9]/}
		[ "$now" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# wait_for TIMEOUT_SECONDS CMD...: poll until CMD succeeds, or fail naming CMD.
wait_for() {
	local timeout=$1
	shift
	_poll "$timeout" "$@" ||
		fail "timed out after ${timeout}s waiting for: $*
last output: $(tail -n 20 "$T/.poll_out")"
}

# ---- namespaces and temp dirs ----------------------------------------------

# ns_new VAR: create namespace svct-<id>-<n> with lo up, store its name in VAR.
ns_new() {
	local name
	SVCT_NS_COUNT=$((SVCT_NS_COUNT + 1))
	name="svct-$RUN_ID-$SVCT_NS_COUNT"
	SVCT_NAMESPACES+=("$name")
	ip netns add "$name" || fail "cannot create network namespace $name"
	ip -n "$name" link set lo up || fail "cannot bring up lo in $name"
	printf -v "$1" '%s' "$name"
}

# nsx NS CMD...: run CMD in namespace NS.
nsx() {
	local ns=$1
	shift
	[ "${VERBOSE:-0}" != 1 ] || echo "+ [$ns] $*" >&2
	ip netns exec "$ns" "$@"
}

# nsx_bg NS CMD...: start CMD in the background in NS; $! is CMD's own pid.
# (cleanup kills whatever still runs in the test's namespaces.)
nsx_bg() {
	local ns=$1
	shift
	[ "${VERBOSE:-0}" != 1 ] || echo "+ [$ns] $* &" >&2
	(exec ip netns exec "$ns" "$@" 9>&-) &
}

# tmpdir [VAR]: a new temp dir, removed on cleanup; stored in VAR or printed.
tmpdir() {
	local d
	d=$(mktemp -d "$SVCT_TMP/svct-$RUN_ID-XXXXXX") || fail "mktemp -d failed"
	if [ $# -gt 0 ]; then printf -v "$1" '%s' "$d"; else echo "$d"; fi
}

# ---- svcd and svcctl -------------------------------------------------------

# Fail if FILE holds sanitizer output.
_check_sanitizer() {
	if grep -qE "$SVCT_SAN_RE" "$1" 2>/dev/null; then
		: >"$T/.sanitizer"
		fail "sanitizer report in $1:
$(grep -E -A 30 "$SVCT_SAN_RE" "$1" | head -n 60)"
	fi
}

# _log_tail [N]: the daemon log's last N (30) lines, with a header.
_log_tail() {
	echo "--- last lines of $SVCD_LOG ---"
	tail -n "${1:-30}" "$SVCD_LOG" 2>/dev/null
}

# svcctl ARGS...: the CLI, talking to this test's daemon.  Sanitizer output on
# its stderr fails the test; a hang ends after $SVCCTL_TIMEOUT seconds.
svcctl() {
	local err rc=0
	err=$(mktemp "$T/.svcctl_err.XXXXXX")
	[ "${VERBOSE:-0}" != 1 ] || echo "+ svcctl $*" >&2
	timeout --foreground -k 5 "${SVCCTL_TIMEOUT:-60}" \
		"$SVCCTL_BIN" --socket "$SVCD_SOCK" "$@" 2>"$err" || rc=$?
	cat "$err" >&2
	if grep -qE "$SVCT_SAN_RE" "$err"; then
		: >"$T/.sanitizer"
		rm -f "$err"
		fail "sanitizer report from svcctl $*"
	fi
	rm -f "$err"
	return "$rc"
}

_svcd_ready() {
	if _dead "$SVCD_PID"; then
		local rc=0
		wait "$SVCD_PID" || rc=$?
		_svcd_forget "$SVCD_PID"
		fail "svcd exited with status $rc while starting
$(_log_tail)"
	fi
	svcctl status
}

_svcd_forget() {
	local p keep=()
	for p in "${SVCT_SVCD_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	SVCT_SVCD_PIDS=("${keep[@]}")
	[ "$SVCD_PID" != "$1" ] || SVCD_PID=
}

# svcd_start [ARGS...]: start the daemon in namespace $NODE (made if unset)
# with --state-dir $T/state --socket $SVCD_SOCK ARGS, output appended to
# $SVCD_LOG; returns once `svcctl status` answers (10 s at most).
# shellcheck disable=SC2120 # the arguments are optional
svcd_start() {
	[ -n "${NODE:-}" ] || ns_new NODE
	[ -x "$SVCD_BIN" ] || fail "svcd binary $SVCD_BIN not found; build it first (make)"
	[ -z "$SVCD_PID" ] || fail "svcd is already running (pid $SVCD_PID)"
	SVCD_LOG_OFFSET=$(stat -c %s "$SVCD_LOG" 2>/dev/null || echo 0)
	echo "+ [$NODE] $SVCD_BIN --state-dir $T/state --socket $SVCD_SOCK $*" >>"$SVCD_LOG"
	[ "${VERBOSE:-0}" != 1 ] || echo "+ [$NODE] svcd $*" >&2
	# exec: $! is then svcd itself (nsenter does not fork for a network
	# namespace).  nsenter, not `ip netns exec`, keeps the host's mount
	# namespace: the pods' namespace files svcd mounts must outlive it for
	# a restarted svcd to find them.
	(exec nsenter --net="/run/netns/$NODE" "$SVCD_BIN" --state-dir "$T/state" \
		--socket "$SVCD_SOCK" --netns-dir "$T/netns" --cgroup-parent "svct-$RUN_ID" "$@" \
		>>"$SVCD_LOG" 2>&1 </dev/null 9>&-) &
	SVCD_PID=$!
	SVCT_SVCD_PIDS+=("$SVCD_PID")
	_poll 10 _svcd_ready || fail "svcd did not answer 'svcctl status' within 10s
$(tail -n 5 "$T/.poll_out")
$(_log_tail)"
}

# svcd_stop: SIGTERM; the daemon must exit 0 within 10 s with no sanitizer report.
svcd_stop() {
	local pid=${SVCD_PID:-} rc=0
	[ -n "$pid" ] || fail "svcd_stop: svcd is not running"
	kill -TERM "$pid" 2>/dev/null || true
	if ! _poll 10 _dead "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		_svcd_forget "$pid"
		fail "svcd did not exit within 10s of SIGTERM
$(_log_tail)"
	fi
	wait "$pid" || rc=$?
	_svcd_forget "$pid"
	_check_sanitizer "$SVCD_LOG"
	[ "$rc" -eq 0 ] || fail "svcd exited with status $rc after SIGTERM
$(_log_tail)"
}

# svcd_kill: SIGKILL, as a crash or power loss would.
svcd_kill() {
	local pid=${SVCD_PID:-}
	[ -n "$pid" ] || fail "svcd_kill: svcd is not running"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	_svcd_forget "$pid"
}

# svcd_log: what the daemon printed since the last svcd_start.
svcd_log() {
	tail -c +"$((SVCD_LOG_OFFSET + 1))" "$SVCD_LOG"
}

# ---- reading svcctl output ---------------------------------------------------

# json_field JSON KEY...: the value (string without quotes, number, true,
# false or null) of the first "KEY" that follows the first of each earlier KEY:
# `json_field "$st" counts services` reads counts.services.  Fails when
# absent.  No jq on a fresh machine; enough for the scalars the tests read.
json_field() {
	local text=$1 re
	shift
	while [ $# -gt 1 ]; do
		[[ $text == *"\"$1\""* ]] || return 1
		text=${text#*"\"$1\""}
		shift
	done
	re="\"$1\"[[:space:]]*:[[:space:]]*(\"([^\"]*)\"|[-+.0-9eE]+|true|false|null)"
	[[ $text =~ $re ]] || return 1
	if [[ ${BASH_REMATCH[1]} == \"* ]]; then
		echo "${BASH_REMATCH[2]}"
	else
		echo "${BASH_REMATCH[1]}"
	fi
}

# ip_in_cidr IP CIDR: IP is a dotted quad inside CIDR.
ip_in_cidr() {
	local ip net len=${2#*/} mask
	ip=$(_ip4 "$1") && net=$(_ip4 "${2%/*}") || return 1
	mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
	[ $((ip & mask)) -eq $((net & mask)) ]
}

_ip4() {
	local re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$' i v=0
	[[ $1 =~ $re ]] || return 1
	for i in 1 2 3 4; do
		[ $((10#${BASH_REMATCH[i]})) -le 255 ] || return 1
		v=$(((v << 8) | 10#${BASH_REMATCH[i]}))
	done
	echo "$v"
}

# svc_row NAME [NAMESPACE]: NAME's row in `svcctl list`; fails when absent.
svc_row() {
	local rows
	rows=$(svcctl list) || return 1
	awk -v ns="${2:-default}" -v n="$1" '$1 == ns && $2 == n { print; f = 1 } END { exit !f }' <<<"$rows"
}

# svc_gone NAME [NAMESPACE]: `svcctl list` answers and has no row for NAME.
svc_gone() {
	local rows
	rows=$(svcctl list) || return 1
	! awk -v ns="${2:-default}" -v n="$1" '$1 == ns && $2 == n { f = 1 } END { exit !f }' <<<"$rows"
}

# svc_ip NAME [NAMESPACE]: NAME's CLUSTER-IP column.
svc_ip() {
	local row
	row=$(svc_row "$@") || fail "service ${2:-default}/$1 is not in svcctl list"
	awk '{ print $4 }' <<<"$row"
}

# objects_count: object files in the store ($T/state/objects/*.json, no dotfiles).
objects_count() {
	find "$T/state/objects" -maxdepth 1 -type f -name '*.json' ! -name '.*' 2>/dev/null | wc -l
}

# ---- cleanup ---------------------------------------------------------------

cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM
	disown -a 2>/dev/null # no "Killed" notices; bash still reaps them
	_kill_wait "${SVCT_SVCD_PIDS[@]}"
	if [ -f "$T/.sanitizer" ] || grep -qE "$SVCT_SAN_RE" "$SVCD_LOG" 2>/dev/null; then
		echo "FAIL: sanitizer report (see above or $SVCD_LOG):" >&2
		grep -E -A 30 "$SVCT_SAN_RE" "$SVCD_LOG" 2>/dev/null | head -n 60 >&2
		[ "$rc" -ne 0 ] && [ "$rc" -ne "$SVCT_SKIP" ] || rc=1
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne "$SVCT_SKIP" ] && [ -s "$SVCD_LOG" ]; then
		_log_tail 40 >&2
	fi
	svct_sweep "$RUN_ID" "${SVCT_NAMESPACES[@]}"
	exit "$rc"
}

# ERR trap of the test script: name the line that failed (with set -e, the
# test ends there).
_on_err() {
	echo "FAIL (${2##*/}:$3): exited $1: $(sed -n "$3{s/^[[:space:]]*//;p}" "$2" 2>/dev/null)" >&9
}

# ---- per-test set-up ---------------------------------------------------------

if [ "${SVCT_LIB_ONLY:-0}" != 1 ]; then
	set -euo pipefail
	exec 9>&2
	SVCT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	SVCT_REPO=$(dirname "$SVCT_LIB_DIR")
	SVCD_BIN=$(realpath -m "${SVCD_BIN:-$SVCT_REPO/build/svcd}")
	SVCCTL_BIN=$(realpath -m "${SVCCTL_BIN:-$SVCT_REPO/build/svcctl}")
	SVCRUN_BIN=$(realpath -m "${SVCRUN_BIN:-$SVCT_REPO/build/svcrun}")
	# shellcheck disable=SC2034 # for the tests
	EXAMPLES=$SVCT_REPO/examples
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"

	RUN_ID=${SVCT_RUN_ID:-$(printf '%08x' "$SRANDOM")}
	SVCT_NS_COUNT=0
	SVCT_NAMESPACES=()
	SVCT_SVCD_PIDS=()
	SVCD_PID=
	SVCD_LOG_OFFSET=0
	NODE=
	T=/nonexistent # until tmpdir below succeeds
	SVCD_LOG=$T/svcd.log

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap '_on_err $? "${BASH_SOURCE[0]}" "$LINENO"' ERR

	tmpdir T
	SVCD_LOG=$T/svcd.log
	SVCD_SOCK=$T/svcd.sock
fi
