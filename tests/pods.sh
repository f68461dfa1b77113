# SPDX-License-Identifier: MIT
# Helpers for the pod runtime tests, on top of lib.sh: a test image built by
# scripts/mkimage.sh (busybox-static, no registry, no Docker), pod manifests,
# and readers of pod status.
#
# A pod's network namespace is $T/netns/svcd-<uid> (svcd_start passes
# --netns-dir $T/netns); its files are $T/state/pods/<uid>/.

[ -x /bin/busybox ] || skip "busybox-static is not installed (scripts/install-deps.sh)"

# make_image FILE NAME:TAG [mkimage options] -- CMD...: a docker-save archive.
make_image() {
	"$SVCT_REPO/scripts/mkimage.sh" "$@" >"$T/.mkimage_out" 2>&1 ||
		fail "scripts/mkimage.sh $* failed: $(cat "$T/.mkimage_out")"
}

# import_image NAME:TAG FILE
import_image() {
	svcctl image import "$1" "$2" >/dev/null || fail "svcctl image import $1 $2 failed"
}

# pod_yaml NAME IMAGE APP [extra spec lines...]: a pod serving its own name
# over HTTP on 8080 (busybox httpd), labelled app=APP.
pod_yaml() {
	local name=$1 image=$2 app=$3
	shift 3
	cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels:
    app: $app
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: $image
    command: ["sh", "-c", "echo started \$(hostname); mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 8080 -h /www"]
    ports:
    - name: http
      containerPort: 8080
YAML
	local line
	for line; do
		printf '%s\n' "$line"
	done
	echo ---
}

# service_yaml NAME APP: port 80 -> named port http of pods app=APP.
pod_service_yaml() {
	cat <<YAML
apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  selector:
    app: $2
  ports:
  - port: 80
    targetPort: http
---
YAML
}

pod_json() {
	svcctl get pod "$1" -o json
}

# pod_get NAME KEY...: a scalar of the pod's JSON (json_field).
pod_get() {
	local j
	j=$(pod_json "$1") || return 1
	shift
	json_field "$j" "$@"
}

pod_uid() {
	pod_get "$1" metadata uid
}

pod_phase_is() {
	[ "$(pod_get "$1" status phase)" = "$2" ]
}

pod_ready() {
	[ "$(pod_get "$1" containerStatuses ready)" = true ]
}

# wait_running NAME: Running and ready within 30 s.
wait_running() {
	wait_for 30 pod_ready "$1"
}

pod_netns() {
	echo "$T/netns/svcd-$(pod_uid "$1")"
}

# in_pod NAME CMD...: run CMD (a host binary) in the pod's network namespace.
in_pod() {
	local ns
	ns=$(pod_netns "$1") || return 1
	shift
	nsenter --net="$ns" "$@"
}

# http_get URL: the body, from the node (curl, 2 s timeout).
http_get() {
	nsx "$NODE" curl -sf -m 2 "$1"
}

# pod_http POD URL: the same from inside the pod's network namespace.
pod_http() {
	in_pod "$1" curl -sf -m 2 "$2"
}

# The host pid of the container's init (pid 1 inside), from the launcher's state.
ctr_init_pid() {
	local uid
	uid=$(pod_uid "$1") || return 1
	sed -n 's/^pid=//p' "$T/state/pods/$uid/containers/${2:-web}/state"
}

# ctr_app_pid NAME: the command the init started (its only child).
ctr_app_pid() {
	local init
	init=$(ctr_init_pid "$1") || return 1
	[ -n "$init" ] || return 1
	cat "/proc/$init/task/$init/children" 2>/dev/null | awk '{ print $1 }'
}

# Nothing of a pod with this uid is left on the node.
pod_gone_everywhere() {
	local uid=$1 d
	[ ! -e "$T/netns/svcd-$uid" ] || { echo "netns file left"; return 1; }
	[ ! -e "$T/state/pods/$uid" ] || { echo "pod dir left"; return 1; }
	! grep -rqs "svcd-$uid" "$T/state/ipam" || { echo "address left"; return 1; }
	! nsx "$NODE" ip -o link show | grep -q "svcd:svcd-$uid" || { echo "veth left"; return 1; }
	! grep -qs "$uid" /proc/self/mountinfo || { echo "mount left"; return 1; }
	for d in $(_cgroup_dirs "svct-$RUN_ID"); do
		[ ! -e "$d/$uid" ] || { echo "cgroup $d/$uid left"; return 1; }
	done
	! pgrep -f -- "pods/$uid/" >/dev/null || { echo "process left"; return 1; }
}

# node_uplink: give the node (a namespace) what a real node has, an uplink
# with a default route, here to a namespace $EXT standing for the world
# outside the cluster (192.0.2.254; the node is 192.0.2.1).  The node's own
# connections to a ClusterIP are then routed, and reach the nftables hooks.
node_uplink() {
	[ -n "${NODE:-}" ] || ns_new NODE
	ns_new EXT
	ip link add up0 netns "$NODE" type veth peer name ext0 netns "$EXT" ||
		fail "cannot add the node's uplink"
	nsx "$NODE" ip addr add 192.0.2.1/24 dev up0
	nsx "$NODE" ip link set up0 up
	nsx "$NODE" ip route add default via 192.0.2.254
	nsx "$EXT" ip addr add 192.0.2.254/24 dev ext0
	nsx "$EXT" ip link set ext0 up
}

# ext_whoami_server: an HTTP server in $EXT on port 9000 whose
# /cgi-bin/ip answers the client's address as the server sees it.
ext_whoami_server() {
	mkdir -p "$T/ext/cgi-bin"
	printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n' \
		>"$T/ext/cgi-bin/ip"
	chmod +x "$T/ext/cgi-bin/ip"
	nsx_bg "$EXT" busybox httpd -f -p 192.0.2.254:9000 -h "$T/ext"
}
