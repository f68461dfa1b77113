#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Pods end to end: import a generated image, run two pods and a service
# selecting one of them; the pods get addresses from the pod CIDR; the
# service VIP reaches its pod from the node, from the other pod and from
# the pod itself (hairpin); killing the container restarts it; logs show
# its output; deleting a pod leaves nothing behind.
#
#   +-- ext: $EXT 192.0.2.254 (whoami :9000) --+
#   +------------------+-----------------------+
#                      | up0 192.0.2.1 (default route)
#   +-- node: $NODE (svcd, nftables) ----------------------------------+
#   |   svcd0 10.244.0.1/24   service web: VIP:80 -> app=web :http      |
#   +--------+---------------------------------+------------------------+
#            | veth (hairpin)                  | veth
#   +--------+----------------+   +------------+----------------+
#   | pod web  (app=web)      |   | pod other (app=other)       |
#   | httpd :8080 "web"       |   | httpd :8080 "other"         |
#   +-------------------------+   +-----------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pods.sh
. "$(dirname "$0")/../pods.sh"

make_image "$T/busybox.tar" busybox:test -- sh
node_uplink
svcd_start --mode nftables

import_image busybox:test "$T/busybox.tar"
out=$(svcctl image list)
assert_match "$out" '^busybox +test +[0-9a-f]{12} ' "image list"

{
	pod_yaml web busybox:test web
	pod_yaml other busybox:test other
	pod_service_yaml web web
} >"$T/app.yaml"
svcctl apply -f "$T/app.yaml" >/dev/null || fail "apply failed"
wait_running web
wait_running other

# Addresses from the pod CIDR, shown by get pods.
ip_web=$(pod_get web status podIP)
ip_other=$(pod_get other status podIP)
ip_in_cidr "$ip_web" 10.244.0.0/24 || fail "pod IP $ip_web is not in 10.244.0.0/24"
ip_in_cidr "$ip_other" 10.244.0.0/24 || fail "pod IP $ip_other is not in 10.244.0.0/24"
[ "$ip_web" != "$ip_other" ] || fail "two pods share $ip_web"
[ "$ip_web" != 10.244.0.1 ] || fail "a pod got the gateway address"
out=$(svcctl get pods)
assert_match "$out" '^NAME +READY +STATUS +RESTARTS +AGE +IP$' "get pods header"
assert_match "$out" "^web +1/1 +Running +0 +[0-9]+s +$ip_web\$" "get pods row"

# The container's view: hostname, resolv.conf for cluster DNS, eth0.
uid=$(pod_uid web)
# Ready means started; the server may need a moment to listen.
wait_for 10 pod_http web "http://$ip_web:8080/"
assert_eq "$(pod_http web "http://$ip_web:8080/")" web "pod web serves its hostname"
init=$(ctr_init_pid web)
assert_eq "$(cat "/proc/$init/root/etc/resolv.conf" | head -1)" \
	"search default.svc.cluster.local svc.cluster.local cluster.local" "resolv.conf search"
assert_contains "$(cat "/proc/$init/root/etc/resolv.conf")" "nameserver 10.96.0.10" "resolv.conf"
assert_contains "$(cat "/proc/$init/root/etc/resolv.conf")" "options ndots:5" "resolv.conf"
assert_contains "$(cat "/proc/$init/root/etc/hosts")" "$ip_web	web" "/etc/hosts"

# The service, from the node, from the other pod, and from its own pod.
vip=$(svc_ip web)
wait_for 10 http_get "http://$vip/"
assert_eq "$(http_get "http://$vip/")" web "node -> VIP"
assert_eq "$(pod_http other "http://$vip/")" web "pod -> VIP -> other pod"
assert_eq "$(pod_http other "http://$ip_web:8080/")" web "pod -> pod"
assert_eq "$(pod_http web "http://$vip/")" web "hairpin: pod -> VIP -> itself"

# Egress: leaving the cluster CIDR, a pod's traffic carries the node's
# address (the world outside has no route to the pods).
ext_whoami_server
wait_for 10 pod_http other "http://192.0.2.254:9000/cgi-bin/ip"
assert_eq "$(pod_http other "http://192.0.2.254:9000/cgi-bin/ip")" 192.0.2.1 \
	"egress is masqueraded"

# Logs.
wait_for 5 eval 'svcctl logs web | grep -q "^started web$"'

# Kill the container's process: it restarts at once, the count grows, the
# service works again, and --previous shows the first run's output.
app=$(ctr_app_pid web)
[ -n "$app" ] || fail "no container process under init $init"
kill -KILL "$app"
wait_for 15 eval '[ "$(pod_get web restartCount)" = 1 ]'
wait_running web
assert_eq "$(pod_get web status podIP)" "$ip_web" "the address survives a restart"
[ "$(ctr_init_pid web)" != "$init" ] || fail "the container was not restarted"
wait_for 10 eval '[ "$(http_get "http://$vip/")" = web ]'
assert_eq "$(pod_get web lastState terminated exitCode)" 137 "lastState after SIGKILL"
assert_eq "$(pod_get web lastState terminated reason)" Error "lastState reason"
assert_contains "$(svcctl logs web --previous)" "started web" "logs --previous"
out=$(svcctl describe pod web)
assert_match "$out" '^Status: +Running' "describe status"
assert_match "$out" 'Restart Count: +1' "describe restart count"
assert_match "$out" 'Started +[0-9]+s.* +svcd +Started container web' "describe events"

# Delete: the pod goes, and with it everything it had on the node.
svcctl delete pod web >/dev/null || fail "delete pod web"
wait_for 15 pod_gone_everywhere "$uid"
expect_fail svcctl get pod web
wait_for 10 eval '! http_get "http://$vip/"'
assert_eq "$(pod_http other "http://$ip_other:8080/")" other "the other pod is untouched"

ouid=$(pod_uid other)
svcctl delete -f "$T/app.yaml" --ignore-not-found >/dev/null || fail "delete -f"
wait_for 15 pod_gone_everywhere "$ouid"
svcd_stop
