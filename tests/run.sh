#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# usage: tests/run.sh BUILD_DIR [FILTER...]
# Runs the unit tests (BUILD_DIR/tests/test_*, then the sanitizer builds in
# BUILD_DIR/san/tests/test_*), then each tests/integration/*.sh in its own bash
# with the sanitizer builds of svcd and svcctl.  A FILTER keeps only the tests
# whose name (unit/test_x, unit-san/test_x, unit-valgrind/test_x, integration/x) contains it.
# One line per test, the output of failed tests, then the totals; exit 1 if
# anything failed.  An integration test that leaves a network namespace, an
# svcd process or a temp dir behind fails, and what it left is removed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

[ $# -ge 1 ] || {
	echo "usage: $0 BUILD_DIR [FILTER...]" >&2
	exit 2
}
BUILD=$(realpath -m "$1")
shift
filters=("$@")

# shellcheck source-path=SCRIPTDIR source=lib.sh
SVCT_LIB_ONLY=1 . tests/lib.sh

# LeakSanitizer works here (gcc 12's libasan on Debian 12, checked on this
# machine kind: a leak is reported and turns the exit status to 66, also in a
# process started by `ip netns exec`), so leaks fail the tests.  exitcode=66
# tells a sanitizer abort apart from an ordinary error exit (expect_fail in
# lib.sh relies on it).  Options already in the environment come last and win.
export ASAN_OPTIONS="detect_leaks=1:exitcode=66${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=66${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export SVCD_BIN="$BUILD/san/svcd" SVCCTL_BIN="$BUILD/san/svcctl" SVCRUN_BIN="$BUILD/san/svcrun"

TEST_TIMEOUT=${TEST_TIMEOUT:-300} # seconds per test
out=$(mktemp "${TMPDIR:-/tmp}/svcd-test-out.XXXXXX") || exit 1
npass=0 nfail=0 nskip=0 nrun=0
child='' run_id=''

on_signal() {
	[ -z "$child" ] || kill -TERM "$child" 2>/dev/null
	[ -z "$child" ] || wait "$child" 2>/dev/null
	[ -z "$run_id" ] || svct_sweep "$run_id"
	rm -f "$out"
	echo "interrupted" >&2
	exit 130
}
trap on_signal INT TERM
trap 'rm -f "$out"' EXIT

selected() {
	local f
	[ ${#filters[@]} -gt 0 ] || return 0
	for f in "${filters[@]}"; do
		[[ $1 == *"$f"* ]] && return 0
	done
	return 1
}

# run_one NAME CMD...: run CMD with the time limit, output to $out; sets rc, secs.
run_one() {
	local t0=${EPOCHREALTIME//[!0-9]/} t1
	shift
	# In the background so that a signal to this script is handled at once.
	timeout -k 10 "$TEST_TIMEOUT" "$@" </dev/null >"$out" 2>&1 &
	child=$!
	rc=0
	wait "$child" || rc=$?
	child=
	t1=${EPOCHREALTIME//[!0-9]/}
	secs=$(((t1 - t0) / 100000))
	secs="$((secs / 10)).$((secs % 10))"
	nrun=$((nrun + 1))
}

# Namespaces and svcd processes, sorted.  What lib.sh made is named svct-<id>-
# and found by svct_leftovers; this catches what a test made without it.
snapshot() {
	local pid
	{
		ip netns list 2>/dev/null | awk '{ print "network namespace " $1 }'
		for pid in $(pgrep -x svcd); do
			echo "svcd process $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)"
		done
	} | sort
}

indent() { sed 's/^/    /'; }

show_output() {
	local n
	n=$(wc -l <"$out")
	[ "$n" -le 200 ] || echo "    ... (last 200 of $n lines)"
	tail -n 200 "$out" | indent
}

report() {
	local name=$1 leaks=${2:-} reason
	if [ -n "$leaks" ]; then
		echo "FAIL $name (${secs}s): left behind:"
		indent <<<"$leaks"
		[ "$rc" -eq 0 ] || show_output
		nfail=$((nfail + 1))
	elif [ "$rc" -eq 0 ]; then
		echo "PASS $name (${secs}s)"
		npass=$((npass + 1))
	elif [ "$rc" -eq "$SVCT_SKIP" ]; then
		reason=$(grep -m1 '^SKIP:' "$out" | sed 's/^SKIP: *//')
		echo "SKIP $name${reason:+ ($reason)}"
		nskip=$((nskip + 1))
	else
		if [ "$rc" -eq 124 ]; then
			echo "FAIL $name (timed out after ${TEST_TIMEOUT}s)"
		else
			echo "FAIL $name (exit $rc, ${secs}s)"
		fi
		show_output
		nfail=$((nfail + 1))
	fi
}

for dir in "$BUILD/tests:unit" "$BUILD/san/tests:unit-san"; do
	for bin in "${dir%:*}"/test_*; do
		[[ -f $bin && -x $bin ]] || continue
		name="${dir##*:}/${bin##*/}"
		selected "$name" || continue
		run_one "$name" "$bin"
		report "$name"
	done
done

# Every fuzz harness over its committed corpus, under the sanitizers.
for bin in "$BUILD"/san/fuzz/replay_*; do
	[[ -f $bin && -x $bin ]] || continue
	n=${bin##*/replay_}
	name="fuzz-replay/$n"
	selected "$name" || continue
	run_one "$name" "$bin" tests/fuzz/corpus/"$n"/*
	report "$name"
done

# The plain unit binaries once more under valgrind: it sees what the
# sanitizer build cannot (uninitialised reads, the real allocator).
if command -v valgrind >/dev/null; then
	for bin in "$BUILD"/tests/test_*; do
		[[ -f $bin && -x $bin ]] || continue
		name="unit-valgrind/${bin##*/}"
		selected "$name" || continue
		run_one "$name" valgrind -q --error-exitcode=1 --leak-check=full \
			--errors-for-leak-kinds=definite,indirect "$bin"
		report "$name"
	done
fi

for script in tests/integration/*.sh; do
	[ -f "$script" ] || continue
	name="integration/$(basename "$script" .sh)"
	selected "$name" || continue
	run_id=$(printf '%08x' "$SRANDOM")
	before=$(snapshot)
	SVCT_RUN_ID=$run_id run_one "$name" bash "$script"
	leaks=$(
		svct_leftovers "$run_id"
		comm -13 <(echo "$before") <(snapshot) | grep -v 'svct-'
	)
	report "$name" "$leaks"
	[ -z "$leaks" ] || svct_sweep "$run_id"
	run_id=
done

if [ ${#filters[@]} -gt 0 ] && [ "$nrun" -eq 0 ]; then
	echo "no test matches: ${filters[*]}" >&2
	nfail=1
fi
echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
