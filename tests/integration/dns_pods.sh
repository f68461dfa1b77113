#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cluster DNS for pods: a pod reaches the DNS service IP (made local on the
# node's lo) and resolves a service by its short name through its own
# resolv.conf; its pod record exists; a search-path expansion of a name
# outside the cluster, asked from the pod, is answered at once with a CNAME
# to the name and the name's answer (from a node address it is NXDOMAIN).
#
#   +-- node: $NODE -------------------------------------------------+
#   |  lo: 10.96.0.10/32    svcd (pods, DNS)  -> upstream svcd :5354  |
#   |  svcd0 10.244.0.1/24                       zone cluster2.local  |
#   +------+-----------------------------------------------------------+
#          | veth
#   +------+--------------------+
#   | pod p (app=web), busybox   |
#   +----------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pods.sh
. "$(dirname "$0")/../pods.sh"
# shellcheck source-path=SCRIPTDIR source=../dns.sh
. "$(dirname "$0")/../dns.sh"

make_image "$T/busybox.tar" busybox:test -- sh
ns_new NODE
upstream_start
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: far, namespace: away}\nspec:\n  clusterIP: 10.96.7.7\n  ports: [{port: 80}]\n' >"$T/up.yaml"
up_svcctl apply -f "$T/up.yaml" >/dev/null || fail "apply to the upstream"

svcd_start --mode none --dns-listen "127.0.0.1:$DNS_PORT" --upstream-dns "127.0.0.1:$UP_PORT"
import_image busybox:test "$T/busybox.tar"
{
	pod_yaml p busybox:test web
	pod_service_yaml web web
} >"$T/app.yaml"
svcctl apply -f "$T/app.yaml" >/dev/null || fail "apply"
wait_running p
vip=$(svc_ip web)
pip=$(pod_get p status podIP)
assert_match "$(nsx "$NODE" ip -o addr show dev lo)" ' 10\.96\.0\.10/32 ' "the DNS service IP on lo"

# From the pod's network namespace to the DNS service IP, UDP and TCP.
pq() {
	in_pod p dig @10.96.0.10 +time=2 +tries=1 "$@"
}
assert_eq "$(pq +short web.default.svc.cluster.local)" "$vip" "pod -> 10.96.0.10 (UDP)"
assert_eq "$(pq +tcp +short web.default.svc.cluster.local)" "$vip" "pod -> 10.96.0.10 (TCP)"
assert_eq "$(pq +short "${pip//./-}.default.pod.cluster.local")" "$pip" "pod record"
out=$(pq "${pip//./-}.other.pod.cluster.local")
assert_eq "$(status "$out")" NXDOMAIN "pod record in another namespace"

# The short name through the container's own resolv.conf (search path,
# ndots:5), with the image's busybox nslookup inside the container's mount
# and network namespaces.  It asks every search-path name at once and exits
# 1 when any is missing, so only its findings are checked.
init=$(ctr_init_pid p)
out=$(nsenter -t "$init" -m -n -- /bin/busybox nslookup web 2>&1 || true)
assert_match "$out" '^Name:[[:space:]]+web\.default\.svc\.cluster\.local$' "short name, search path"
assert_match "$out" "^Address: ${vip//./\\.}\$" "short name via the pod's resolv.conf"

# Search-path completion: from the pod, "<outside name>.default.svc.<zone>"
# is a CNAME to the outside name plus its A, at once.
out=$(pq far.away.svc.cluster2.local.default.svc.cluster.local A)
assert_eq "$(status "$out")" NOERROR "search-path completion"
assert_match "$(answers "$out" | head -1)" 'CNAME far\.away\.svc\.cluster2\.local\.$' "completion CNAME"
assert_match "$(answers "$out" | tail -1)" '^far\.away\.svc\.cluster2\.local\..* A 10\.96\.7\.7$' "completion A"
out=$(pq far.away.svc.cluster2.local.svc.cluster.local A)
assert_match "$(answers "$out" | head -1)" 'CNAME far\.away\.svc\.cluster2\.local\.$' "completion of svc.<zone>"
# An outside name that does not exist either: our own NXDOMAIN.
out=$(pq nope.away.svc.cluster2.local.default.svc.cluster.local A)
assert_eq "$(status "$out")" NXDOMAIN "completion of a name that does not exist"
# Not from a pod: no completion.
out=$(q far.away.svc.cluster2.local.default.svc.cluster.local A)
assert_eq "$(status "$out")" NXDOMAIN "no completion for the node"
st=$(svcctl status -o json)
[ "$(json_field "$st" dns searchPathCompleted)" -ge 2 ] || fail "searchPathCompleted: $st"

svcctl delete -f "$T/app.yaml" >/dev/null
wait_for 20 eval '! svcctl get pod p >/dev/null 2>&1'
svcd_stop
# A normal exit keeps the service IP; --cleanup removes it.
assert_match "$(nsx "$NODE" ip -o addr show dev lo)" ' 10\.96\.0\.10/32 ' "kept after exit"
nsx "$NODE" "$SVCD_BIN" --cleanup --state-dir "$T/state" --netns-dir "$T/netns" \
	--cgroup-parent "svct-$RUN_ID" >/dev/null 2>&1 || fail "svcd --cleanup"
assert_not_contains "$(nsx "$NODE" ip -o addr show dev lo)" 10.96.0.10 "removed by --cleanup"
upstream_stop
