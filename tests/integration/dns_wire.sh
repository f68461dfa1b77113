#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The DNS wire rules, with dig and raw packets: the query's case kept in the
# answer, EDNS0 (OPT echoed, BADVERS for version 1), a 100-address headless
# answer truncated over UDP without EDNS and complete over TCP, CHAOS and
# AXFR refused, other opcodes NOTIMP, a malformed packet answered FORMERR
# (or, when not even the header parses, not at all) with the daemon still
# answering afterwards, and no upstream at all giving SERVFAIL.
#
#   +-- node: $NODE --------------------------------+
#   |  svcd --dns-listen 127.0.0.1:5353 (no upstream) |
#   +-------------------------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../dns.sh
. "$(dirname "$0")/../dns.sh"

ns_new NODE
svcd_start --mode none --no-pods --dns-listen "127.0.0.1:$DNS_PORT" --upstream-dns 127.0.0.1:9

{
	cat <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec:
  clusterIP: None
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: big}
subsets:
- ports: [{port: 80}]
  addresses:
YAML
	for i in $(seq 1 100); do
		echo "  - {ip: 10.244.1.$i}"
	done
} >"$T/app.yaml"
svcctl apply -f "$T/app.yaml" >/dev/null || fail "apply"
vip=$(svc_ip web)

for tcp in +notcp +tcp; do
	# The answer keeps the query's case.
	out=$(q $tcp WeB.DeFault.svc.cluster.local A)
	assert_match "$(answers "$out")" "^WeB\\.DeFault\\.svc\\.cluster\\.local\\. 5 IN A ${vip//./\\.}\$" "case ($tcp)"
	assert_match "$out" 'QUESTION SECTION:' "question ($tcp)"
	assert_match "$out" '^;WeB\.DeFault\.svc\.cluster\.local\.' "question case ($tcp)"

	# EDNS0: our OPT comes back; version 1 is BADVERS.
	out=$(q $tcp +edns=0 +bufsize=4096 web.default.svc.cluster.local A)
	assert_match "$out" '^; EDNS: version: 0, flags:; udp: 1232$' "OPT echoed ($tcp)"
	out=$(q $tcp +edns=1 +noednsnegotiation web.default.svc.cluster.local A)
	assert_eq "$(status "$out")" BADVERS "EDNS version 1 ($tcp)"
	out=$(q $tcp +noedns web.default.svc.cluster.local A)
	assert_not_contains "$out" "OPT PSEUDOSECTION" "no EDNS, no OPT ($tcp)"

	out=$(q $tcp CH TXT version.bind)
	assert_eq "$(status "$out")" REFUSED "CHAOS ($tcp)"
	out=$(q $tcp +opcode=status web.default.svc.cluster.local A)
	assert_eq "$(status "$out")" NOTIMP "opcode STATUS ($tcp)"
done
out=$(q AXFR cluster.local || true)
assert_contains "$out" "Transfer failed" "AXFR refused"

# 100 addresses: over UDP without EDNS (512 bytes) truncated, with TC;
# complete over TCP.
out=$(q +noedns +ignore big.default.svc.cluster.local A)
assert_match "$(flags "$out")" '^qr aa tc rd ra$' "TC over UDP"
[ "$(answers "$out" | wc -l)" -lt 100 ] || fail "UDP answer not truncated"
out=$(q +noedns +tcp big.default.svc.cluster.local A)
assert_eq "$(answers "$out" | wc -l)" 100 "complete over TCP"
assert_not_contains "$(flags "$out")" tc "no TC over TCP"
# dig falls back to TCP by itself on TC.
assert_eq "$(q +noedns +short big.default.svc.cluster.local A | wc -l)" 100 "dig's retry over TCP"
# With EDNS 4096 the client's size is capped at ours (1232): still TC.
out=$(q +bufsize=4096 +ignore big.default.svc.cluster.local A)
assert_match "$(flags "$out")" ' tc ' "TC above 1232 bytes"

# Raw packets.  Header fine, question cut short: FORMERR (flags 0x8181:
# QR, RD, RA, FORMERR) with our ID.
raw() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	nsx "$NODE" bash -c 'exec 3<>/dev/udp/127.0.0.1/'"$DNS_PORT"'
printf "$1" >&3
timeout 1 head -c 4 <&3 | od -An -tx1 | tr -d " \n"' _ "$1" || true
}
assert_eq "$(raw '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ab')" 12348181 "FORMERR"
# Question followed by junk: FORMERR too.
assert_eq "$(raw '\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01junk')" abcd8181 "trailing bytes"
# Not even a header: silence.  A response (QR set): silence.
assert_eq "$(raw '\x01\x02\x03')" "" "garbage gets no answer"
assert_eq "$(raw '\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01')" "" "responses are not answered"
# A compression loop in the question name.
assert_eq "$(raw '\x55\x66\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01')" 55668181 "pointer loop"
# IXFR over UDP: REFUSED (0x8185).
assert_eq "$(raw '\x77\x77\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07cluster\x05local\x00\x00\xfb\x00\x01')" 77778185 "IXFR refused"
out=$(q web.default.svc.cluster.local A +short)
assert_eq "$out" "$vip" "still answering after malformed packets"

# No upstream that answers (port 9 refuses): SERVFAIL, quickly.
t0=${EPOCHREALTIME/./}
out=$(q +time=5 example.org A)
t1=${EPOCHREALTIME/./}
assert_eq "$(status "$out")" SERVFAIL "no upstream"
[ $(((t1 - t0) / 1000)) -le 2500 ] || fail "SERVFAIL took $(((t1 - t0) / 1000)) ms"

st=$(svcctl status -o json)
[ "$(json_field "$st" dns responsesByRcode FORMERR)" -ge 3 ] || fail "FORMERR count: $st"
[ "$(json_field "$st" dns responsesByRcode REFUSED)" -ge 2 ] || fail "REFUSED count: $st"
[ "$(json_field "$st" dns dropped)" -ge 2 ] || fail "dropped count: $st"
svcd_stop
