#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A pod whose spec changes gets new containers (same pod, same address):
# live, and when svcd is SIGKILLed while the old container is still in its
# grace period, in which case the restarted svcd finishes the change
# instead of adopting the old container for good.
#
#   +-- node: $NODE (svcd --mode none) ------------------+
#   |  pod p: env X=1 -> X=2 -> (svcd killed) X=3        |
#   +----------------------------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pods.sh
. "$(dirname "$0")/../pods.sh"

make_image "$T/busybox.tar" busybox:test -- sh
svcd_start --mode none
import_image busybox:test "$T/busybox.tar"

# spec X GRACE: the container ignores SIGTERM, so it stops at the grace's end.
spec() {
	cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  terminationGracePeriodSeconds: $2
  containers:
  - name: web
    image: busybox:test
    command: ["sh", "-c", "trap '' TERM; echo run X=\$X; while true; do sleep 1; done"]
    env:
    - name: X
      value: "$1"
YAML
}
app_x() {
	local pid
	pid=$(ctr_app_pid p) && tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^X=//p'
}
x_is() { [ "$(app_x)" = "$1" ]; }
killing() { svcctl describe pod p | grep -q 'Killing'; }

spec 1 1 | svcctl apply -f - >/dev/null || fail "apply X=1"
wait_running p
wait_for 10 x_is 1
ip=$(pod_get p status podIP)

spec 2 1 | svcctl apply -f - >/dev/null || fail "apply X=2"
wait_for 30 x_is 2
wait_running p
assert_eq "$(pod_get p status podIP)" "$ip" "the pod keeps its address"

spec 3 3 | svcctl apply -f - >/dev/null || fail "apply X=3"
wait_for 10 killing
svcd_kill
svcd_start --mode none
wait_for 30 x_is 3
wait_running p

uid=$(pod_uid p)
svcctl delete pod p >/dev/null || fail "delete"
wait_for 15 pod_gone_everywhere "$uid"
svcd_stop
