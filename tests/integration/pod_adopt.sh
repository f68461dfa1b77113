#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Crash recovery of the pod runtime.  svcd is SIGKILLed with a pod running:
# the pod keeps running and serving, and the restarted svcd adopts it (same
# container process, same address) instead of starting it again.  What a
# crash can leave that belongs to no pod (a namespace file, a veth, an
# address, a pod directory) is removed at start-up; a pod deleted while
# svcd was down is torn down when it comes back.
#
#   +-- node: $NODE ------------------------------------------+
#   |  svcd (killed, restarted)   svcd0   leaked: svcd-<fake>  |
#   +-----------+---------------------------------------------+
#               | veth
#   +-----------+-------------+   +--------------------------+
#   | pod web (httpd :8080)   |   | pod doomed (deleted while |
#   +-------------------------+   | svcd is down)             |
#                                 +--------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pods.sh
. "$(dirname "$0")/../pods.sh"

make_image "$T/busybox.tar" busybox:test -- sh
node_uplink
svcd_start --mode nftables
import_image busybox:test "$T/busybox.tar"
{
	pod_yaml web busybox:test web
	pod_service_yaml web web
	pod_yaml doomed busybox:test doomed
} >"$T/app.yaml"
svcctl apply -f "$T/app.yaml" >/dev/null || fail "apply failed"
wait_running web
wait_running doomed
vip=$(svc_ip web)
ip=$(pod_get web status podIP)
uid=$(pod_uid web)
duid=$(pod_uid doomed)
init=$(ctr_init_pid web)
wait_for 10 eval '[ "$(http_get "http://$vip/")" = web ]'

svcd_kill

# While svcd is down the pod goes on serving.
assert_eq "$(http_get "http://$ip:8080/")" web "the pod outlives svcd"
kill -0 "$init" || fail "the container died with svcd"

# A pod deleted by hand while svcd is down (its object file removed)...
rm -f "$T/state/objects/"*doomed*
[ -z "$(compgen -G "$T/state/objects/*doomed*")" ] || fail "could not remove the doomed pod's file"
# ... and what a crash halfway through wiring a pod would leave.
fake=00000000-0000-4000-8000-00000000dead
touch "$T/netns/svcd-$fake"
unshare --net="$T/netns/svcd-$fake" true || fail "cannot make the leaked namespace"
nsx "$NODE" ip link add vethdead0 type veth peer name vethdead1 ||
	fail "cannot make the leaked veth"
nsx "$NODE" ip link set vethdead1 netns "$T/netns/svcd-$fake" || fail "cannot move its peer"
nsx "$NODE" ip link set vethdead0 alias "svcd:svcd-$fake"
echo "svcd-$fake" >"$T/state/ipam/10.244.0.200"
mkdir -p "$T/state/pods/$fake"

svcd_start --mode nftables
wait_running web
assert_eq "$(ctr_init_pid web)" "$init" "adopted: the same container process"
assert_eq "$(pod_get web status podIP)" "$ip" "adopted: the same address"
assert_eq "$(pod_get web restartCount)" 0 "adopted: not restarted"
assert_eq "$(http_get "http://$vip/")" web "the service still reaches the pod"
assert_contains "$(svcd_log)" "adopted container web" "the log says it adopted"

# The leftovers are gone, and so is the pod deleted while svcd was down.
wait_for 15 pod_gone_everywhere "$fake"
wait_for 15 pod_gone_everywhere "$duid"

# The adopted pod is still managed: kill its process, it restarts.
kill -KILL "$(ctr_app_pid web)"
wait_for 15 eval '[ "$(pod_get web restartCount)" = 1 ]'
wait_running web

svcctl delete -f "$T/app.yaml" --ignore-not-found >/dev/null || fail "delete -f"
wait_for 15 pod_gone_everywhere "$uid"
svcd_stop
