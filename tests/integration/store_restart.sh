#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The store survives restarts: ClusterIPs and nodePorts are the same after a
# clean stop (SIGTERM) and after a crash (SIGKILL), and the allocator still
# knows which addresses are taken.
#
#   +---------------- node: netns svct-<id>-1 (lo up) ----------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock                 |
#   |       --node-port-range 30000-30099                              |
#   |       (stopped, started, killed, started again: same state dir)  |
#   +------------------------------------------------------------------+
#   svcctl (host side, unix socket only)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

flags=(--node-port-range 30000-30099)

cat >"$T/services.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: alpha
spec:
  selector:
    app: alpha
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: beta
  namespace: shop
spec:
  selector:
    app: beta
  ports:
    - name: http
      port: 80
    - name: https
      port: 443
---
apiVersion: v1
kind: Service
metadata:
  name: fixed
spec:
  clusterIP: 10.96.7.7
  ports:
    - port: 53
      protocol: UDP
---
apiVersion: v1
kind: Service
metadata:
  name: gamma
spec:
  type: NodePort
  selector:
    app: gamma
  ports:
    - port: 80
      targetPort: 8080
EOF

# NAMESPACE NAME TYPE CLUSTER-IP PORT(S) of every service, and gamma's nodePort.
# (without the kube-dns row svcd adds for its DNS server: not a stored object)
table() { svcctl list | awk 'NR > 1 && $2 != "kube-dns" { print $1, $2, $3, $4, $5 }'; }
node_port() { json_field "$(svcctl get svc gamma -o json)" nodePort; }
# No line of the log since the last start reports an error.
assert_clean_start() {
	local bad
	bad=$(svcd_log | grep -v '^+ \[' | grep -iE 'error|skipping|corrupt' || true)
	[ -z "$bad" ] || fail "$1: svcd reported problems while loading the store:
$bad"
}

ns_new NODE
svcd_start "${flags[@]}"
svcctl apply -f "$T/services.yaml" >/dev/null

want=$(table)
assert_eq "$(wc -l <<<"$want")" 4 "services listed"
assert_match "$want" '^default fixed ClusterIP 10\.96\.7\.7 53/UDP$' "explicit ClusterIP"
np=$(node_port)
if ! [[ $np =~ ^[0-9]+$ ]] || ((np < 30000 || np > 30099)); then
	fail "nodePort '$np' is not in --node-port-range 30000-30099"
fi
assert_match "$want" "^default gamma NodePort [0-9.]+ 80:$np/TCP\$" "NodePort row"
files=$(objects_count)
[ "$files" -ge 4 ] || fail "expected at least 4 object files in $T/state/objects, found $files"

# Clean stop and start.
svcd_stop
svcd_start "${flags[@]}"
assert_eq "$(table)" "$want" "services after SIGTERM and restart"
assert_eq "$(node_port)" "$np" "nodePort after SIGTERM and restart"
assert_eq "$(objects_count)" "$files" "object files after SIGTERM and restart"
assert_clean_start "after SIGTERM"

# Crash and start: the stale socket is refused, then replaced.
svcd_kill
expect_fail svcctl status
assert_contains "$LAST_ERR" "cannot reach svcd" "svcctl after SIGKILL"
svcd_start "${flags[@]}"
assert_eq "$(table)" "$want" "services after SIGKILL and restart"
assert_eq "$(node_port)" "$np" "nodePort after SIGKILL and restart"
assert_eq "$(objects_count)" "$files" "object files after SIGKILL and restart"
assert_clean_start "after SIGKILL"
status=$(svcctl status -o json)
assert_eq "$(json_field "$status" counts services)" 4 "status counts.services"

# The reloaded allocator hands out neither a taken ClusterIP nor a taken nodePort.
cat >"$T/delta.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: delta
spec:
  type: NodePort
  ports:
    - port: 80
EOF
svcctl apply -f "$T/delta.yaml" >/dev/null
ip=$(svc_ip delta)
ip_in_cidr "$ip" 10.96.0.0/16 || fail "delta's ClusterIP $ip is not in 10.96.0.0/16"
assert_not_contains "$want" " $ip " "delta's ClusterIP is new"
dnp=$(json_field "$(svcctl get svc delta -o json)" nodePort)
[ "$dnp" != "$np" ] || fail "delta got gamma's nodePort $np"

svcd_stop
