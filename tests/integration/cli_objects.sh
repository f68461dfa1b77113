#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The rest of the kubectl surface: delete -f, Endpoints objects feeding a
# selector-less service, the Endpoints svcd keeps for a selector service,
# get -o yaml, and a watch stream seeing changes as they happen.
#
#   +------------ node: netns svct-<id>-1 (lo up) ------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock         |
#   +----------------------------------------------------------+
#   svcctl (unix socket only); a background `svcctl get svc -w`
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

ns_new NODE
svcd_start

# A watcher started before the changes sees them, in order.
svcctl get svc -A -w -o json >"$T/watch.out" 2>"$T/watch.err" &
watcher=$!
# The watch opens before get -w lists, so once a marker shows up (as a
# listed object or as an event) every later change is an event.
svcctl apply -f - >/dev/null <<'EOF2'
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "marker"},
 "spec": {"ports": [{"port": 1}]}}
EOF2
wait_for 5 grep -q '"name": "marker"' "$T/watch.out"

cat >"$T/manual.yaml" <<'EOF2'
apiVersion: v1
kind: Service
metadata:
  name: manual
  namespace: shop
spec:
  ports:
  - name: https
    port: 443
    targetPort: 8443
---
apiVersion: v1
kind: Endpoints
metadata:
  name: manual
  namespace: shop
subsets:
- addresses:
  - ip: 192.0.2.10
  - ip: 192.0.2.11
  notReadyAddresses:
  - ip: 192.0.2.12
  ports:
  - name: https
    port: 8443
EOF2
out=$(svcctl apply -f "$T/manual.yaml")
assert_match "$out" '^service/manual created$' "apply manual"
assert_match "$out" '^endpoints/manual created$' "apply manual"

# The ready addresses reach the service's row; the not-ready one does not.
row=$(svc_row manual shop)
assert_match "$row" '^shop +manual +ClusterIP +10\.96\.[0-9.]+ +443/TCP +192\.0\.2\.10:8443,192\.0\.2\.11:8443$' \
	"list row of a service fed by an Endpoints object"
out=$(svcctl get ep -n shop)
assert_match "$out" '^manual +192\.0\.2\.10:8443,192\.0\.2\.11:8443 ' "get endpoints"

# A service with a selector gets an Endpoints object from svcd itself.
svcctl get ep -n default -w -o json >"$T/ep-watch.out" 2>/dev/null &
ep_watcher=$!
# A marker first: once it shows up the watch is open (get -w opens it before
# listing), so my-app-service can only arrive as an event.
svcctl apply -f - >/dev/null <<'EOF2'
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ep-marker"},
 "spec": {"selector": {"app": "none"}, "ports": [{"port": 1}]}}
EOF2
wait_for 5 grep -q '"name": "ep-marker"' "$T/ep-watch.out"
svcctl apply -f "$EXAMPLES/my-app.yaml" >/dev/null
# Watchers of Endpoints see the one svcd keeps for the selector service.
wait_for 5 grep -q '"name": "my-app-service"' "$T/ep-watch.out"
kill "$ep_watcher"
wait "$ep_watcher" 2>/dev/null || true
json=$(svcctl get endpoints my-app-service -o json)
assert_eq "$(json_field "$json" kind)" Endpoints "synthesized endpoints: kind"
assert_eq "$(json_field "$json" metadata name)" my-app-service "synthesized endpoints: name"

# -o yaml is YAML that apply takes back unchanged.
svcctl get svc manual -n shop -o yaml >"$T/manual-out.yaml"
assert_match "$(cat "$T/manual-out.yaml")" '^kind: Service$' "get -o yaml"
out=$(svcctl apply -f "$T/manual-out.yaml")
assert_eq "$out" "service/manual unchanged" "re-apply of get -o yaml"

# The watcher saw the service added; now it sees it deleted by delete -f.
wait_for 5 grep -q '"name": "manual"' "$T/watch.out"
out=$(svcctl delete -f "$T/manual.yaml")
assert_match "$out" '^service "manual" deleted$' "delete -f"
assert_match "$out" '^endpoints "manual" deleted$' "delete -f"
svc_gone manual shop || fail "manual still listed after delete -f"
expect_fail svcctl delete -f "$T/manual.yaml"
assert_contains "$LAST_ERR" 'not found' "delete -f of objects already gone"
out=$(svcctl delete -f "$T/manual.yaml" --ignore-not-found)
assert_eq "$out" "" "delete -f --ignore-not-found"
# kubectl-style -w -o json prints the object of each event: added, then deleted.
wait_for 5 test "$(grep -c '"name": "manual"' "$T/watch.out")" -ge 2
kill "$watcher"
wait "$watcher" 2>/dev/null || true

svcd_stop
