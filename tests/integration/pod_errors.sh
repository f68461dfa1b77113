#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What goes wrong gets a clear message: a bad image archive is refused at
# import and leaves nothing; a pod whose image is missing waits, Pending
# with reason ImageNotFound and the import command, and starts once the
# image is imported; an unknown user and a command that does not exist
# reach the pod's status naming the step; restartPolicy Never and
# OnFailure end in Failed and Succeeded.
#
#   +-- node: $NODE (svcd --mode none) ---------------------------+
#   |  pods: late, nouser, nocmd, never (exit 3), once (exit 0)   |
#   +-------------------------------------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pods.sh
. "$(dirname "$0")/../pods.sh"

svcd_start --mode none --restart-backoff 1,2

# A bad archive: refused with a reason, nothing left in the image store.
# (Not random bytes: their checksum field may or may not read as a number,
# and the two give different messages.)
head -c 3000 /dev/zero | tr '\0' x >"$T/garbage.tar"
expect_fail svcctl image import junk:1 "$T/garbage.tar"
assert_match "$LAST_ERR" 'garbage\.tar: offset 0: bad number in the checksum field' \
	"bad archive error"
make_image "$T/busybox.tar" busybox:test -- sh
head -c 20000 "$T/busybox.tar" >"$T/truncated.tar"
expect_fail svcctl image import cut:1 "$T/truncated.tar"
assert_match "$LAST_ERR" 'truncated\.tar: offset [0-9]+: .*unexpected end' "truncated archive error"
assert_eq "$(svcctl image list | tail -n +2)" "" "no image after failed imports"
left=$(find "$T/state/images" -mindepth 1 ! -path "$T/state/images/refs" 2>/dev/null)
[ -z "$left" ] || fail "a failed import left files: $left"

# A missing image: Pending, ImageNotFound, and how to import it.
pod_yaml late busybox:test late >"$T/late.yaml"
svcctl apply -f "$T/late.yaml" >/dev/null || fail "apply late"
wait_for 10 eval '[ "$(pod_get late status reason)" = ImageNotFound ]'
assert_eq "$(pod_get late status phase)" Pending "phase without the image"
assert_contains "$(pod_json late)" "import it with: svcctl image import busybox:test FILE" "hint"
assert_match "$(svcctl get pods)" '^late +0/1 +ImageNotFound ' "get pods shows the reason"
# Importing it starts the pod.
import_image busybox:test "$T/busybox.tar"
wait_running late

# An OCI image-layout archive with gzip layers works as well.
make_image "$T/oci.tar" busybox:oci --format oci --gzip -- sh
import_image busybox:oci "$T/oci.tar"
assert_match "$(svcctl image list)" '^busybox +oci +[0-9a-f]{12} ' "OCI image listed"

# An image whose user does not exist; a command that does not exist.
make_image "$T/nouser.tar" nouser:test --user nobody2 -- sh -c 'sleep 100'
import_image nouser:test "$T/nouser.tar"
cat >"$T/bad.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: nouser
spec:
  containers:
  - name: c
    image: nouser:test
---
apiVersion: v1
kind: Pod
metadata:
  name: nocmd
spec:
  containers:
  - name: c
    image: busybox:test
    command: ["/bin/no-such-command"]
---
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:test
    command: ["sh", "-c", "echo bye; exit 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: busybox:oci
    command: ["true"]
YAML
svcctl apply -f "$T/bad.yaml" >/dev/null || fail "apply bad.yaml"

msg_has() {
	svcctl get pod "$1" -o json | tr -d '\n ' | grep -q -- "$2"
}
wait_for 15 msg_has nouser 'user:\\"nobody2\\"notfound'
wait_for 15 msg_has nocmd 'exec:/bin/no-such-command:Nosuchfileordirectory'
wait_for 15 msg_has nocmd '"reason":"StartError"'
out=$(svcctl describe pod nouser)
assert_contains "$out" 'nobody2' "describe shows the user error"
# They keep being retried with back-off, never ready (the phase is
# Running, as the kubelet reports a crash-looping pod).
wait_for 15 eval '[ "$(pod_get nocmd restartCount)" -ge 1 ]'
pod_ready nocmd && fail "a pod whose command does not exist is ready"
assert_match "$(svcctl get pods)" '^nocmd +0/1 +(StartError|CrashLoopBackOff) ' "get pods: nocmd"

wait_for 15 pod_phase_is never Failed
assert_eq "$(pod_get never state terminated exitCode)" 3 "never: exit code"
assert_eq "$(pod_get never restartCount)" 0 "never: no restart"
assert_eq "$(svcctl logs never)" bye "logs of an ended container"
wait_for 15 pod_phase_is once Succeeded
assert_match "$(svcctl get pods)" '^once +0/1 +Completed ' "get pods: Completed"

uids=()
for p in late nouser nocmd never once; do
	uids+=("$(pod_uid "$p")")
done
svcctl delete -f "$T/bad.yaml" >/dev/null || fail "delete bad.yaml"
svcctl delete -f "$T/late.yaml" >/dev/null || fail "delete late.yaml"
for u in "${uids[@]}"; do
	wait_for 15 pod_gone_everywhere "$u"
done
# The image store: rm refuses nothing now, and the image goes.
svcctl image rm nouser:test >/dev/null || fail "image rm"
assert_not_contains "$(svcctl image list)" nouser "image list after rm"
svcd_stop
