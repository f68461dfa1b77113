#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cluster DNS records, asked with dig over UDP and TCP: A of a ClusterIP
# service (with and without endpoints), headless services (an A per ready
# address, hostnames, NXDOMAIN without ready ones), SRV with glue, PTR,
# ExternalName (CNAME plus the target's answer from the upstream),
# dns-version, NODATA and NXDOMAIN with the SOA, names outside the zone
# forwarded, and an upstream that does not answer giving SERVFAIL.
#
#   +-- node: $NODE -----------------------------------------------+
#   |  svcd   --dns-listen 127.0.0.1:5353  --upstream-dns :5354     |
#   |    zone cluster.local  ----forwards---->  svcd (upstream)     |
#   |                                           127.0.0.1:5354      |
#   |                                           zone cluster2.local |
#   +---------------------------------------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../dns.sh
. "$(dirname "$0")/../dns.sh"

ns_new NODE
upstream_start
cat >"$T/up.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: far, namespace: away}
spec:
  clusterIP: 10.96.7.7
  ports: [{port: 80}]
YAML
up_svcctl apply -f "$T/up.yaml" >/dev/null || fail "apply to the upstream"

svcd_start --mode none --no-pods --dns-listen "127.0.0.1:$DNS_PORT" \
	--upstream-dns "127.0.0.1:$UP_PORT" --dns-ttl 7
cat >"$T/app.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.1.1
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses:
  - {ip: 10.244.0.5, hostname: db-0}
  - {ip: 10.244.0.6}
  notReadyAddresses:
  - {ip: 10.244.0.7}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: None
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: empty}
subsets:
- notReadyAddresses: [{ip: 10.244.0.9}]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: far.away.svc.cluster2.local
YAML
svcctl apply -f "$T/app.yaml" >/dev/null || fail "apply"

for tcp in +notcp +tcp; do
	# A of a ClusterIP service without endpoints; TTL from --dns-ttl; AA, RA.
	out=$(q $tcp web.default.svc.cluster.local A)
	assert_eq "$(status "$out")" NOERROR "A web ($tcp)"
	assert_match "$(answers "$out")" '^web\.default\.svc\.cluster\.local\. 7 IN A 10\.96\.1\.1$' "A web ($tcp)"
	assert_eq "$(flags "$out")" "qr aa rd ra" "flags ($tcp)"

	# Headless: one A per ready address, none for the not-ready one.
	out=$(q $tcp db.default.svc.cluster.local A +short | sort | tr '\n' ' ')
	assert_eq "$out" "10.244.0.5 10.244.0.6 " "headless A ($tcp)"
	out=$(q $tcp db-0.db.default.svc.cluster.local A +short)
	assert_eq "$out" 10.244.0.5 "endpoint hostname ($tcp)"
	out=$(q $tcp 10-244-0-6.db.default.svc.cluster.local A +short)
	assert_eq "$out" 10.244.0.6 "dashed endpoint name ($tcp)"
	out=$(q $tcp empty.default.svc.cluster.local A)
	assert_eq "$(status "$out")" NXDOMAIN "headless without ready endpoints ($tcp)"

	# SRV of a named port, targets in the additional section.
	out=$(q $tcp _pg._tcp.db.default.svc.cluster.local SRV)
	assert_eq "$(answers "$out" | wc -l)" 2 "SRV records ($tcp)"
	assert_match "$(answers "$out")" 'SRV 0 50 5432 db-0\.db\.default\.svc\.cluster\.local\.$' "SRV ($tcp)"
	assert_match "$(section "$out" ADDITIONAL)" '^db-0\.db\.default\.svc\.cluster\.local\..*A 10\.244\.0\.5$' "SRV glue ($tcp)"
	out=$(q $tcp _http._tcp.web.default.svc.cluster.local SRV)
	assert_match "$(answers "$out")" 'SRV 0 100 80 web\.default\.svc\.cluster\.local\.$' "SRV ClusterIP ($tcp)"

	# PTR of a ClusterIP and of an endpoint.
	out=$(q $tcp -x 10.96.1.1 +short)
	assert_eq "$out" web.default.svc.cluster.local. "PTR ClusterIP ($tcp)"
	out=$(q $tcp -x 10.244.0.5 +short)
	assert_eq "$out" db-0.db.default.svc.cluster.local. "PTR endpoint ($tcp)"

	# ExternalName: the CNAME, then the target's A from the upstream.
	out=$(q $tcp ext.default.svc.cluster.local A)
	assert_eq "$(status "$out")" NOERROR "ExternalName ($tcp)"
	assert_match "$(answers "$out" | head -1)" 'CNAME far\.away\.svc\.cluster2\.local\.$' "CNAME ($tcp)"
	assert_match "$(answers "$out" | tail -1)" '^far\.away\.svc\.cluster2\.local\..* A 10\.96\.7\.7$' "CNAME target ($tcp)"

	out=$(q $tcp dns-version.cluster.local TXT +short)
	assert_eq "$out" '"1.1.0"' "dns-version ($tcp)"

	# Negative answers: the SOA in authority, AA set.
	out=$(q $tcp web.default.svc.cluster.local TXT)
	assert_eq "$(status "$out")" NOERROR "NODATA ($tcp)"
	assert_eq "$(answers "$out")" "" "NODATA has no answer ($tcp)"
	assert_match "$(section "$out" AUTHORITY)" '^cluster\.local\..* SOA ' "NODATA SOA ($tcp)"
	assert_match "$(flags "$out")" ' aa ' "NODATA aa ($tcp)"
	out=$(q $tcp default.svc.cluster.local A)
	assert_eq "$(status "$out")" NOERROR "namespace name is NODATA ($tcp)"
	out=$(q $tcp nope.default.svc.cluster.local A)
	assert_eq "$(status "$out")" NXDOMAIN "NXDOMAIN ($tcp)"
	assert_match "$(section "$out" AUTHORITY)" '^cluster\.local\..* SOA ' "NXDOMAIN SOA ($tcp)"
	assert_match "$(flags "$out")" ' aa ' "NXDOMAIN aa ($tcp)"

	# Outside the zone: forwarded, the upstream's answer relayed in the
	# client's case.
	out=$(q $tcp Far.Away.svc.Cluster2.local A)
	assert_eq "$(status "$out")" NOERROR "forwarded ($tcp)"
	assert_match "$(answers "$out")" '^Far\.Away\.svc\.Cluster2\.local\..* A 10\.96\.7\.7$' "forwarded A ($tcp)"
	out=$(q $tcp nope.away.svc.cluster2.local A)
	assert_eq "$(status "$out")" NXDOMAIN "forwarded NXDOMAIN ($tcp)"
	assert_match "$(section "$out" AUTHORITY)" '^cluster2\.local\..* SOA ' "forwarded SOA ($tcp)"
done

# A change is answered at once.
svcctl delete service web >/dev/null
out=$(q web.default.svc.cluster.local A)
assert_eq "$(status "$out")" NXDOMAIN "a deleted service"

# The counters.
st=$(svcctl status -o json)
[ "$(json_field "$st" dns queries)" -ge 30 ] || fail "dns.queries: $st"
[ "$(json_field "$st" dns queriesByType SRV)" -ge 4 ] || fail "dns.queriesByType.SRV: $st"
[ "$(json_field "$st" dns responsesByRcode NXDOMAIN)" -ge 5 ] || fail "NXDOMAIN count: $st"
[ "$(json_field "$st" dns forwarded)" -ge 6 ] || fail "dns.forwarded: $st"

# kube-dns is listed, not stored.
assert_match "$(svcctl list -n kube-system)" '^kube-system +kube-dns +ClusterIP +10\.96\.0\.10 +53/UDP,53/TCP' "svcctl list"
expect_fail svcctl get service kube-dns -n kube-system

# An upstream that does not answer (stopped): SERVFAIL within 2 s.
kill -STOP "$UP_PID"
t0=${EPOCHREALTIME/./}
out=$(q +time=5 other.away.svc.cluster2.local A)
t1=${EPOCHREALTIME/./}
kill -CONT "$UP_PID"
assert_eq "$(status "$out")" SERVFAIL "silent upstream"
[ $(((t1 - t0) / 1000)) -le 2500 ] || fail "SERVFAIL took $(((t1 - t0) / 1000)) ms"

svcd_stop
upstream_stop
