#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# apply validates before it stores, all or nothing: a bad document refuses the
# whole file with an error naming the document, the field and the value;
# YAML syntax errors name the line; unknown fields only warn; ClusterIPs
# outside the service CIDR, already taken, or none left are refused.
#
#   +---------------- node: netns svct-<id>-1 (lo up) ----------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock                 |
#   |  then, on a fresh state dir: ... --service-cidr 10.96.0.0/29     |
#   +------------------------------------------------------------------+
#   svcctl (host side, unix socket only)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# svc_yaml NAME [CLUSTER-IP] [PORT]: a one-document Service manifest.
svc_yaml() {
	cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
${2:+  clusterIP: $2
}  ports:
    - port: ${3:-80}
EOF
}

# expect_refused FILE WHAT: apply FILE fails with exit 1 and an `error: ` line,
# and neither the services nor the files in the store change.
expect_refused() {
	local rows files rows_after files_after
	rows=$(svcctl list)
	files=$(ls -A "$T/state/objects" 2>/dev/null || true)
	expect_fail svcctl apply -f "$1"
	assert_eq "$LAST_RC" 1 "$2: exit status"
	assert_match "$LAST_ERR" '^error: ' "$2"
	rows_after=$(svcctl list)
	files_after=$(ls -A "$T/state/objects" 2>/dev/null || true)
	assert_eq "$rows_after" "$rows" "$2: services after the refused apply"
	assert_eq "$files_after" "$files" "$2: files in the store after the refused apply"
}

ns_new NODE
svcd_start

# A valid document, then an invalid one: nothing from the file is stored.
{
	svc_yaml good
	echo ---
	svc_yaml bad "" 70000
} >"$T/mixed.yaml"
expect_refused "$T/mixed.yaml" "port 70000 in document 2"
assert_contains "$LAST_ERR" "mixed.yaml" "port 70000"
assert_contains "$LAST_ERR" "document 2" "port 70000"
assert_contains "$LAST_ERR" "spec.ports[0].port" "port 70000"
assert_contains "$LAST_ERR" "70000" "port 70000"
svc_gone good || fail "the valid document of a refused file was stored"
svc_gone bad || fail "the invalid document was stored"

# YAML syntax error on line 12 (in document 2): the line is named.
{
	svc_yaml first
	echo ---
	svc_yaml second | sed 's/^  name: second$/  name: second: oops/'
} >"$T/syntax.yaml"
assert_eq "$(sed -n 12p "$T/syntax.yaml")" "  name: second: oops" "syntax.yaml line 12"
expect_refused "$T/syntax.yaml" "YAML syntax error"
assert_contains "$LAST_ERR" "line 12" "YAML syntax error"
svc_gone first || fail "a document of a file with a syntax error was stored"

# Unknown field: a warning naming it, and the object is applied.
svc_yaml extra | sed 's/^spec:$/spec:\n  frobnicate: true/' >"$T/extra.yaml"
out=$(svcctl apply -f "$T/extra.yaml" 2>"$T/extra.err")
err=$(cat "$T/extra.err")
assert_eq "$out" "service/extra created" "unknown field"
assert_contains "$err" "Warning:" "unknown field"
assert_contains "$err" "frobnicate" "unknown field"
svc_row extra >/dev/null || fail "a service with an unknown field was not applied"

# ClusterIP outside the service CIDR.
svc_yaml outside 192.168.1.10 >"$T/outside.yaml"
expect_refused "$T/outside.yaml" "ClusterIP outside 10.96.0.0/16"
assert_contains "$LAST_ERR" "spec.clusterIP" "ClusterIP outside 10.96.0.0/16"
assert_contains "$LAST_ERR" "192.168.1.10" "ClusterIP outside 10.96.0.0/16"

# ClusterIP already taken; re-applying its owner is fine.
svc_yaml owner 10.96.0.50 >"$T/owner.yaml"
assert_eq "$(svcctl apply -f "$T/owner.yaml")" "service/owner created" "owner of 10.96.0.50"
assert_eq "$(svcctl apply -f "$T/owner.yaml")" "service/owner unchanged" "owner re-applied"
svc_yaml thief 10.96.0.50 >"$T/thief.yaml"
expect_refused "$T/thief.yaml" "ClusterIP already allocated"
assert_contains "$LAST_ERR" "10.96.0.50" "ClusterIP already allocated"
assert_eq "$(svc_ip owner)" 10.96.0.50 "owner keeps its ClusterIP"

# A tiny service CIDR runs out, with an error naming it; a delete frees an address.
svcd_stop
rm -rf "$T/state"
svcd_start --service-cidr 10.96.0.0/29
n=0
while [ "$n" -lt 9 ]; do
	svc_yaml "tiny-$n" >"$T/tiny.yaml"
	svcctl apply -f "$T/tiny.yaml" >/dev/null 2>&1 || break
	ip_in_cidr "$(svc_ip "tiny-$n")" 10.96.0.0/29 || fail "tiny-$n got $(svc_ip "tiny-$n"), outside 10.96.0.0/29"
	n=$((n + 1))
done
((n >= 1 && n <= 8)) || fail "10.96.0.0/29 held $n services; expected 1 to 8 before exhaustion"
expect_refused "$T/tiny.yaml" "exhausted 10.96.0.0/29"
assert_contains "$LAST_ERR" "10.96.0.0/29" "exhausted 10.96.0.0/29"
svcctl delete svc tiny-0 >/dev/null
assert_eq "$(svcctl apply -f "$T/tiny.yaml")" "service/tiny-$n created" "apply after a delete freed an address"

svcd_stop
