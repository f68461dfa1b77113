#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# svcctl basics: apply, apply again, list, get -o json, delete, and errors
# (no daemon, unknown kind).
#
#   +---------------- node: netns svct-<id>-1 (lo up) ----------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock                 |
#   +------------------------------------------------------------------+
#              ^ unix socket $T/svcd.sock (a file: reachable from the host)
#   svcctl (host side; it only talks to the socket)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# No daemon behind the socket: a fast, clear error.
t0=${EPOCHREALTIME//[!0-9]/}
SVCD_SOCK=$T/nobody.sock expect_fail svcctl list
t1=${EPOCHREALTIME//[!0-9]/}
assert_eq "$LAST_RC" 1 "svcctl with no daemon: exit status"
assert_contains "$LAST_ERR" "svcctl: cannot reach svcd at $T/nobody.sock: " "svcctl with no daemon"
[ $((t1 - t0)) -lt 2000000 ] || fail "svcctl with no daemon took $(((t1 - t0) / 1000)) ms, should fail fast"

ns_new NODE
svcd_start

# apply: one line per object, kubectl-style.
out=$(svcctl apply -f "$EXAMPLES/my-app.yaml")
assert_match "$out" '^pod/my-app created$' "first apply"
assert_match "$out" '^service/my-app-service created$' "first apply"
assert_match "$out" '^deployment(\.apps)?/my-app-deployment created$' "first apply"

out=$(svcctl apply -f "$EXAMPLES/my-app.yaml")
assert_match "$out" '^pod/my-app unchanged$' "second apply"
assert_match "$out" '^service/my-app-service unchanged$' "second apply"
assert_match "$out" '^deployment(\.apps)?/my-app-deployment unchanged$' "second apply"
assert_not_contains "$out" "created" "second apply"
assert_not_contains "$out" "configured" "second apply"

# list: header and the service's row, its ClusterIP taken from 10.96.0.0/16.
out=$(svcctl list)
assert_match "$out" '^NAMESPACE +NAME +TYPE +CLUSTER-IP +PORT\(S\) +ENDPOINTS *$' "list header"
assert_match "$out" '^default +my-app-service +ClusterIP +10\.96\.[0-9]{1,3}\.[0-9]{1,3} +80/TCP( |$)' \
	"list row"
ip=$(svc_ip my-app-service)
ip_in_cidr "$ip" 10.96.0.0/16 || fail "ClusterIP $ip is not in 10.96.0.0/16"

# get -o json: the same ClusterIP, in Kubernetes' shape.
json=$(svcctl get svc my-app-service -o json)
assert_eq "$(json_field "$json" kind)" Service "get svc -o json: kind"
assert_eq "$(json_field "$json" spec clusterIP)" "$ip" "get svc -o json: spec.clusterIP"
json=$(svcctl get pod my-app -o json)
assert_contains "$json" "my-docker-repo/my-app:1.0.0" "get pod -o json"

# A changed spec is "configured" and keeps its ClusterIP.
sed 's/port: 80$/port: 81/' "$EXAMPLES/my-app.yaml" >"$T/my-app-81.yaml"
out=$(svcctl apply -f "$T/my-app-81.yaml")
assert_match "$out" '^service/my-app-service configured$' "apply with port 81"
assert_match "$(svc_row my-app-service)" " 81/TCP( |$)" "list after port change"
assert_eq "$(svc_ip my-app-service)" "$ip" "ClusterIP after an update"

# delete, then get and delete again fail with NotFound.
out=$(svcctl delete svc my-app-service)
assert_eq "$out" 'service "my-app-service" deleted' "delete"
svc_gone my-app-service || fail "my-app-service still listed after delete"
expect_fail svcctl get svc my-app-service -o json
assert_eq "$LAST_RC" 1 "get after delete: exit status"
assert_match "$LAST_ERR" '^Error from server \(NotFound\): ' "get after delete"
assert_contains "$LAST_ERR" 'services "my-app-service" not found' "get after delete"
expect_fail svcctl delete svc my-app-service
assert_eq "$LAST_RC" 1 "second delete: exit status"
assert_contains "$LAST_ERR" 'not found' "second delete"

# Unknown kinds: on the command line and in a manifest.
expect_fail svcctl get frobnicators
assert_eq "$LAST_RC" 1 "get unknown kind: exit status"
assert_match "$LAST_ERR" '^error: ' "get unknown kind"
assert_contains "$LAST_ERR" "frobnicators" "get unknown kind"

cat >"$T/unknown-kind.yaml" <<'EOF'
apiVersion: v1
kind: Frobnicator
metadata:
  name: frob
EOF
expect_fail svcctl apply -f "$T/unknown-kind.yaml"
assert_eq "$LAST_RC" 1 "apply unknown kind: exit status"
assert_match "$LAST_ERR" '^error: ' "apply unknown kind"
assert_contains "$LAST_ERR" "Frobnicator" "apply unknown kind"

svcd_stop
