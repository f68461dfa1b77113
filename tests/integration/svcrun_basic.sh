#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2016 # the $VARs in single quotes are the container shell's
# svcrun, the container launcher, alone (no svcd): exit statuses, the
# namespaces and mounts a container sees, user, environment, capabilities,
# logs with rotation, the state file, --detach with --sync-fd, signals,
# cgroup limits and the overlay.  The image is a directory made here from
# Debian's busybox-static.
#
#   host (the test)                          container (pid, mount, uts, ipc ns)
#   svcrun run --rootfs $T/rootfs ...  --->  pid 1: svcrun init
#     (the shim: logs, state, cgroup)          pid 2: the command (busybox)
#                                              net: a new netns with only lo,
#                                                   or --netns of svct-<id>-1
#   cgroups: svct-<id>/... in each hierarchy (removed by svcrun; the sweep
#   of lib.sh removes what a failed run leaves)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

[ -x /bin/busybox ] || skip "no /bin/busybox (Debian's busybox-static)"
[ -x "$SVCRUN_BIN" ] || fail "svcrun binary $SVCRUN_BIN not found; build it first (make)"

# ---- the image ------------------------------------------------------------------

ROOTFS=$T/rootfs
mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
cat >"$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$ROOTFS/etc/group" <<'EOF'
root:x:0:
staff:x:50:nobody
nogroup:x:65534:
EOF
echo "from the host" >"$T/hosts"
mknod "$ROOTFS/imgnull" c 1 3 # a device node the image holds
find "$ROOTFS" | sort >"$T/rootfs.before"

# sr ARGS...: svcrun run --rootfs $ROOTFS ARGS; sets RC, OUT (stdout), ERR
# (stderr).  Sanitizer output fails the test.
sr() {
	RC=0
	[ "${VERBOSE:-0}" != 1 ] || echo "+ svcrun run $*" >&2
	"$SVCRUN_BIN" run --rootfs "$ROOTFS" "$@" >"$T/.sr_out" 2>"$T/.sr_err" 9>&- || RC=$?
	OUT=$(cat "$T/.sr_out")
	ERR=$(cat "$T/.sr_err")
	_check_sanitizer "$T/.sr_err"
}

# sr_ok ARGS...: sr, which must exit 0.
sr_ok() {
	sr "$@"
	[ "$RC" -eq 0 ] || fail "svcrun run $* exited $RC:
$ERR"
}

# state_is FILE STATE: FILE says state=STATE.
state_is() {
	grep -qx "state=$2" "$1" 2>/dev/null
}

state_field() {
	sed -n "s/^$2=//p" "$1"
}

# ---- exit statuses -------------------------------------------------------------------

sr_ok -- /bin/true
sr -- sh -c 'exit 3'
assert_eq "$RC" 3 "exit 3"
sr -- sh -c 'kill -USR1 $$'
assert_eq "$RC" $((128 + 10)) "killed by SIGUSR1"

# ---- what the container sees ---------------------------------------------------------

sr_ok --hostname web -- sh -c 'hostname; echo "$HOSTNAME"'
assert_eq "$OUT" $'web\nweb' "hostname and HOSTNAME"

# pid 1 is the init, the command is pid 2
sr_ok -- sh -c 'echo $$; tr -d "\0" </proc/1/cmdline; echo; ps -o pid,args'
assert_eq "$(sed -n 1p <<<"$OUT")" 2 "the command's pid"
assert_eq "$(sed -n 2p <<<"$OUT")" "svcrun init" "/proc/1/cmdline"
assert_match "$OUT" '^ +1 +svcrun init *$' "ps shows the init as pid 1"

# the init works on another CPU than the shim; the command gets them all
sr_ok -- grep Cpus_allowed_list /proc/self/status
assert_eq "$OUT" "$(grep Cpus_allowed_list /proc/self/status)" "the command's CPUs"

sr_ok --scratch "$T/s-env" -e FOO=bar -e FOO=baz -e EMPTY= --cwd /work/here -- \
	sh -c 'echo "$FOO|$EMPTY|$HOME|$PATH"; pwd'
assert_eq "$(sed -n 1p <<<"$OUT")" "baz||/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
	"environment (later -e wins, HOME, PATH)"
assert_eq "$(sed -n 2p <<<"$OUT")" /work/here "--cwd, made when missing"
sr_ok -e HOME=/elsewhere -- sh -c 'echo "$HOME"; pwd'
assert_eq "$OUT" $'/elsewhere\n/' "HOME from -e, cwd /"

# ---- user ----------------------------------------------------------------------------

sr_ok --user nobody -- sh -c 'id -u; id -g; id -G; echo "$HOME"'
assert_eq "$OUT" $'65534\n65534\n65534 50\n/nonexistent' "--user nobody: uid, gid, groups, HOME"
sr_ok --user 1234:staff -- sh -c 'id -u; id -g'
assert_eq "$OUT" $'1234\n50' "--user 1234:staff (a uid without passwd entry)"
sr --user nobody2 --sync-fd 3 -- /bin/true 3>"$T/sync-user"
assert_eq "$RC" 125 "unknown user: exit status"
assert_contains "$ERR" 'svcrun: user: "nobody2" not found in /etc/passwd' "unknown user"
assert_eq "$(cat "$T/sync-user")" 'error user: "nobody2" not found in /etc/passwd' "unknown user: sync line"
sr --user nobody:nogroup2 -- /bin/true
assert_eq "$RC" 125 "unknown group: exit status"
assert_contains "$ERR" 'user: group "nogroup2" not found in /etc/group' "unknown group"

# ---- the command not found or not executable -------------------------------------------

sr --sync-fd 3 -- /bin/nope 3>"$T/sync-nope"
assert_eq "$RC" 127 "missing command: exit status"
assert_contains "$ERR" "svcrun: exec: /bin/nope: No such file or directory" "missing command"
assert_eq "$(cat "$T/sync-nope")" "error exec: /bin/nope: No such file or directory" "missing command: sync line"
sr -- nope-in-path
assert_eq "$RC" 127 "command not in PATH: exit status"
assert_contains "$ERR" "exec: nope-in-path: No such file or directory" "command not in PATH"
sr -- /etc/passwd
assert_eq "$RC" 126 "not executable: exit status"
assert_contains "$ERR" "exec: /etc/passwd: Permission denied" "not executable"
sr --netns "$T/no-such-netns" --sync-fd 3 -- /bin/true 3>"$T/sync-netns"
assert_eq "$RC" 125 "bad --netns: exit status"
assert_eq "$(cat "$T/sync-netns")" "error netns: $T/no-such-netns: No such file or directory" "bad --netns: sync line"

# ---- /dev, /sys, /proc ---------------------------------------------------------------------

sr_ok -- sh -c 'for d in null zero full random urandom tty; do test -c /dev/$d || echo "no /dev/$d"; done
	test -c /dev/pts/ptmx || echo "no /dev/pts/ptmx"
	test -L /dev/ptmx || echo "no /dev/ptmx link"
	test -d /dev/shm || echo "no /dev/shm"
	echo x >/dev/null || echo "cannot write /dev/null"
	[ "$(head -c 4 /dev/zero | od -An -tx1 | tr -d " ")" = 00000000 ] || echo "/dev/zero"
	grep -q "^shm /dev/shm tmpfs" /proc/mounts || echo "/dev/shm is no tmpfs"
	grep -q "^devpts /dev/pts devpts" /proc/mounts || echo "/dev/pts is no devpts"'
assert_eq "$OUT" "" "/dev"
# No device cgroup: a node of the image, or one the container makes (CAP_MKNOD
# is in the default set), must not open, on the root (overlay or not) nor in /dev.
for scratch in "" "--scratch $T/s-dev"; do
	# shellcheck disable=SC2086 # $scratch is empty or two words
	sr_ok $scratch -- sh -c 'mknod /made c 1 3 && mknod /dev/made c 1 3 || echo "mknod failed"
		for n in /imgnull /made /dev/made; do echo x 2>/dev/null >$n && echo "$n opens"; done
		rm /made /dev/made'
	assert_eq "$OUT" "" "device nodes unusable (${scratch:-no scratch})"
done
sr_ok -- sh -c 'touch /sys/x 2>/dev/null && echo "/sys is writable"
	grep -q "^sysfs /sys sysfs ro," /proc/mounts || echo "/sys not mounted read-only"
	echo x 2>/dev/null >/proc/sys/kernel/core_pattern && echo "/proc/sys is writable"
	ls /sys/class/net'
assert_eq "$OUT" "lo" "/sys read-only, /proc/sys read-only, only lo"

# ---- --bind -----------------------------------------------------------------------------------

sr_ok --scratch "$T/s-bind" --bind "$T/hosts:/etc/hosts:ro" --bind "$T/hosts:/new/dir/file" -- \
	sh -c 'cat /etc/hosts /new/dir/file; if echo x 2>/dev/null >/etc/hosts; then echo "ro bind is writable"; fi'
assert_eq "$OUT" $'from the host\nfrom the host' "--bind files visible, :ro read-only"

# ---- capabilities and no_new_privs -------------------------------------------------------------

sr_ok -- sh -c 'grep -E "^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):" /proc/self/status'
assert_match "$OUT" '^CapEff:[[:space:]]+00000000a80425fb$' "CapEff is Docker's default set"
assert_match "$OUT" '^CapBnd:[[:space:]]+00000000a80425fb$' "bounding set"
assert_match "$OUT" '^CapInh:[[:space:]]+0000000000000000$' "inheritable set empty"
assert_match "$OUT" '^CapAmb:[[:space:]]+0000000000000000$' "ambient set empty"
assert_match "$OUT" '^NoNewPrivs:[[:space:]]+1$' "no_new_privs"
sr_ok --user nobody -- sh -c 'grep "^CapEff:" /proc/self/status'
assert_match "$OUT" '^CapEff:[[:space:]]+0000000000000000$' "no capabilities for nobody"
sr_ok --caps CHOWN,cap_kill -- sh -c 'grep "^CapEff:" /proc/self/status'
assert_match "$OUT" '^CapEff:[[:space:]]+0000000000000021$' "--caps CHOWN,cap_kill"

# ---- network namespaces ---------------------------------------------------------------------------

sr_ok -- sh -c 'ip link show lo | head -n 1'
assert_match "$OUT" '^1: lo: <LOOPBACK,UP' "new netns: lo up"
ns_new NS
ip -n "$NS" link add svct0 type veth peer name svct1
want=$(ip netns exec "$NS" ls /sys/class/net | sort | tr '\n' ' ')
sr_ok --netns "/run/netns/$NS" -- sh -c 'ls /sys/class/net | sort | tr "\n" " "'
assert_eq "$OUT" "$want" "--netns: the namespace's interfaces (sysfs mounted after joining it)"
assert_contains "$OUT" svct0 "--netns"

# ---- logs and rotation ---------------------------------------------------------------------------

# 10000 bytes to stdout with --log-max 4096: FILE.1 holds exactly 4096, FILE the rest
sr_ok --log "$T/c.log" --log-max 4096 -- sh -c 'head -c 10000 /dev/zero | tr "\0" x'
assert_eq "$OUT" "" "stdout goes to --log"
assert_eq "$(stat -c %s "$T/c.log.1")" 4096 "rotated FILE.1 size"
assert_eq "$(stat -c %s "$T/c.log")" $((10000 - 2 * 4096)) "FILE size after two rotations"
assert_eq "$(tr -d x <"$T/c.log" | wc -c)" 0 "log content"
sr_ok --log "$T/c.log" --log-max 4096 -- sh -c 'echo out; echo err >&2'
assert_eq "$(tail -c 8 "$T/c.log")" $'out\nerr' "stdout and stderr appended to --log"

# ---- state file, sync line, SIGTERM to the shim ------------------------------------------------------

"$SVCRUN_BIN" run --rootfs "$ROOTFS" --state "$T/st1" --sync-fd 3 -- sh -c 'sleep 1000' \
	3>"$T/sync1" 2>"$T/st1.err" 9>&- &
shim=$!
wait_for 10 state_is "$T/st1" running
assert_eq "$(state_field "$T/st1" shim_pid)" "$shim" "state: shim_pid"
init=$(state_field "$T/st1" pid)
assert_eq "$(cat "$T/sync1")" "ok $init" "sync line: ok and the init's host pid"
assert_eq "$(awk '{ print $22 }' "/proc/$shim/stat")" "$(state_field "$T/st1" shim_start)" "state: shim_start"
assert_contains "$(tr '\0' ' ' <"/proc/$init/cmdline")" "svcrun init" "pid= is the init"
assert_match "$(state_field "$T/st1" started)" '^[0-9]+\.[0-9]{6}$' "state: started"
kill -TERM "$shim"
rc=0
wait "$shim" || rc=$?
_check_sanitizer "$T/st1.err"
assert_eq "$rc" 143 "SIGTERM to the shim stops sh -c 'sleep 1000' (exit status)"
state_is "$T/st1" exited || fail "state after exit: $(cat "$T/st1")"
assert_eq "$(state_field "$T/st1" exit_code)" 143 "state: exit_code"
assert_eq "$(state_field "$T/st1" signal)" 15 "state: signal"
assert_match "$(state_field "$T/st1" finished)" '^[0-9]+\.[0-9]{6}$' "state: finished"
_dead "$init" || fail "the init $init survived its container"

sr --state "$T/st2" -- sh -c 'exit 7'
assert_eq "$RC" 7 "exit 7"
assert_eq "$(state_field "$T/st2" state)/$(state_field "$T/st2" exit_code)" exited/7 "state after exit 7"
[ -z "$(state_field "$T/st2" signal)" ] || fail "state: signal= for a plain exit"
sr --state "$T/st3" -- /bin/nope
assert_eq "$(state_field "$T/st3" state)" error "state after a failed start"
assert_eq "$(state_field "$T/st3" error)" "exec: /bin/nope: No such file or directory" "state: error"

# ---- --detach with --sync-fd ------------------------------------------------------------------------

sr --detach --state "$T/st4" --sync-fd 3 --log "$T/d.log" -- sh -c 'echo started; sleep 1000' 3>"$T/sync4"
assert_eq "$RC" 0 "--detach returns at once"
state_is "$T/st4" running || fail "state after --detach: $(cat "$T/st4")"
shim=$(state_field "$T/st4" shim_pid)
assert_eq "$(cat "$T/sync4")" "ok $(state_field "$T/st4" pid)" "--detach: sync line"
_dead "$shim" && fail "the detached shim $shim is not running"
assert_eq "$(awk '{ print $6 }' "/proc/$shim/stat")" "$shim" "the detached shim leads its own session"
wait_for 10 grep -qx started "$T/d.log"
kill -TERM "$shim"
wait_for 10 state_is "$T/st4" exited
assert_eq "$(state_field "$T/st4" signal)" 15 "--detach: state after SIGTERM"
wait_for 10 _dead "$shim"

# ---- cgroups --------------------------------------------------------------------------------------------

CG=svct-$RUN_ID/c1
"$SVCRUN_BIN" run --rootfs "$ROOTFS" --state "$T/st5" --cgroup "$CG" --memory 33554432 --pids 64 \
	--cpu 250 -- sleep 1000 2>"$T/st5.err" 9>&- &
shim=$!
wait_for 10 state_is "$T/st5" running
init=$(state_field "$T/st5" pid)
if [ -e "/sys/fs/cgroup/memory/$CG/memory.limit_in_bytes" ]; then
	assert_eq "$(cat "/sys/fs/cgroup/memory/$CG/memory.limit_in_bytes")" 33554432 "v1 memory limit"
	assert_eq "$(cat "/sys/fs/cgroup/pids/$CG/pids.max")" 64 "v1 pids limit"
	assert_eq "$(cat "/sys/fs/cgroup/cpu/$CG/cpu.cfs_quota_us")" 25000 "v1 cpu quota"
	assert_eq "$(cat "/sys/fs/cgroup/cpu/$CG/cpu.cfs_period_us")" 100000 "v1 cpu period"
	dirs=("/sys/fs/cgroup/memory/$CG" "/sys/fs/cgroup/pids/$CG" "/sys/fs/cgroup/cpu/$CG")
elif [ -e "/sys/fs/cgroup/$CG/memory.max" ]; then
	assert_eq "$(cat "/sys/fs/cgroup/$CG/memory.max")" 33554432 "v2 memory limit"
	assert_eq "$(cat "/sys/fs/cgroup/$CG/pids.max")" 64 "v2 pids limit"
	assert_eq "$(cat "/sys/fs/cgroup/$CG/cpu.max")" "25000 100000" "v2 cpu limit"
	dirs=("/sys/fs/cgroup/$CG")
else
	fail "no cgroup $CG with limits found"
fi
for d in "${dirs[@]}"; do
	grep -qx "$init" "$d/cgroup.procs" || fail "the init is not in $d"
done
kill -TERM "$shim"
wait "$shim" || true
_check_sanitizer "$T/st5.err"
for d in "${dirs[@]}"; do
	[ ! -e "$d" ] || fail "$d left behind"
done

# Pure v2 (cgroup2 alone on /sys/fs/cgroup), in a mount namespace of its own:
# no limits, so v2 is used wherever it is mounted.
if command -v unshare >/dev/null; then
	out=$(unshare -m sh -c 'umount -R /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		exec "$0" run --rootfs "$1" --cgroup "$2" -- grep "^0::" /proc/self/cgroup' \
		"$SVCRUN_BIN" "$ROOTFS" "svct-$RUN_ID/v2" 2>"$T/v2.err") || fail "pure v2: $(cat "$T/v2.err")"
	assert_eq "$out" "0::/svct-$RUN_ID/v2" "pure v2 layout: the container's cgroup"
	_check_sanitizer "$T/v2.err"
fi
# svcrun removes the leaves; the parents are the caller's (svcd's)
for d in /sys/fs/cgroup/*/"svct-$RUN_ID"; do
	[ ! -d "$d" ] || rmdir "$d"
done

# ---- overlay ----------------------------------------------------------------------------------------------

sr_ok --scratch "$T/s-ovl" -- sh -c 'echo data >/newfile; rm /etc/group; cat /newfile'
assert_eq "$OUT" data "overlay: file written"
assert_eq "$(cat "$T/s-ovl/upper/newfile")" data "overlay: the file is in --scratch/upper"
[ ! -e "$ROOTFS/newfile" ] || fail "overlay: the file reached the rootfs"
[ -e "$ROOTFS/etc/group" ] || fail "overlay: a file removed in the container is gone from the rootfs"
sr_ok --scratch "$T/s-ovl" -- sh -c 'cat /newfile; test -e /etc/group || echo gone'
assert_eq "$OUT" $'data\ngone' "overlay: the writable layer is kept for the next start"
[ ! -e "$T/s-ovl/work.old" ] || fail "overlay: the previous workdir was not removed"
# neither the scratch runs nor the plain ones (the image has every mount point) wrote it
find "$ROOTFS" | sort >"$T/rootfs.after"
assert_eq "$(comm -3 "$T/rootfs.before" "$T/rootfs.after")" "" "rootfs changed"

echo "PASS"
