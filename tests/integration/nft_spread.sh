#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: a ClusterIP spreads new connections (TCP) and
# datagrams (UDP) over its endpoints, each pod getting a fair share, with
# the service port translated to the endpoint port; a named targetPort
# takes the port of the same-named Endpoints port.
#
#       +-- client C -----------------------+
#       |  192.168.77.2  load -> ClusterIP  |
#       +-----------------+-----------------+
#                         | veth
#   +-- node: $NODE ------+--------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  web: 80/TCP -> 8080       dns: 53/UDP -> 5353                         |
#   |  named: 80/TCP -> targetPort http (Endpoints port http: 9090)          |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------+------------------------+------------------------+-----------+
#              |                        |                        |
#   +----------+-----------+ +----------+-----------+ +----------+-----------+
#   | pod A  a 10.244.0.10 | | pod B  b 10.244.0.11 | | pod D  c 10.244.0.12 |
#   | echo 8080 9090 5353  | | echo 8080 9090 5353  | | echo 8080 9090 5353  |
#   +----------------------+ +----------------------+ +----------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"

command -v nft >/dev/null || skip "nft (the nftables CLI) is not installed"

# nft_state: the node's table and svcd's status, for failure messages.
nft_state() {
	echo "--- nft list table ip svcd (in $NODE) ---"
	nsx "$NODE" nft list table ip svcd 2>&1
	echo "--- svcctl status -o json ---"
	svcctl status -o json 2>&1
}

nft_fail() {
	fail "$*
$(nft_state)"
}

# nft_elems SET: the elements of set or map SET of table ip svcd, one a line.
nft_elems() {
	nsx "$NODE" nft list table ip svcd | awk -v want="$1" '
		$1 == "set" || $1 == "map" { cur = $2 }
		/elements = \{/ { inel = cur == want; sub(/.*elements = \{/, "") }
		inel {
			line = $0
			end = sub(/\}.*/, "", line)
			n = split(line, part, ",")
			for (i = 1; i <= n; i++) {
				e = part[i]
				gsub(/^[ \t]+|[ \t]+$/, "", e)
				if (e != "") print e
			}
			if (end) inel = 0
		}'
}

# run_load NS ARGS...: topo_load; sets OUT, ERR and RC, never fails.
run_load() {
	local ns=$1
	shift
	RC=0
	topo_load "$ns" "$@" >"$T/.load_out" 2>"$T/.load_err" || RC=$?
	OUT=$(cat "$T/.load_out")
	ERR=$(head -n 20 "$T/.load_err")
}

# assert_spread WHAT TOTAL NAME...: the last run_load succeeded TOTAL times
# with no failure, each NAME getting 20%-47% of them, nobody else any.
assert_spread() {
	local what=$1 total=$2 name n sum=0 lo hi
	shift 2
	lo=$((total * 20 / 100))
	hi=$((total * 47 / 100))
	[ "$RC" -eq 0 ] && [ "$(topo_count "$OUT" ok)" -eq "$total" ] ||
		nft_fail "$what: expected $total successes and no failure, load exited $RC:
$OUT
$ERR"
	for name; do
		n=$(topo_count "$OUT" "$name")
		((n >= lo && n <= hi)) ||
			nft_fail "$what: backend $name got $n of $total, expected $lo-$hi:
$OUT"
		sum=$((sum + n))
	done
	assert_eq "$sum" "$total" "$what: answers from the expected backends only ($OUT)"
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C

svcd_start --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16
st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" nftables "status mode"

svcctl apply --wait -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses:
  - {ip: 10.244.0.10, nodeName: node1}
  - {ip: 10.244.0.11, nodeName: node1}
  - {ip: 10.244.0.12, nodeName: node1}
  ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  ports:
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: dns}
subsets:
- addresses:
  - {ip: 10.244.0.10}
  - {ip: 10.244.0.11}
  - {ip: 10.244.0.12}
  ports:
  - {name: dns, port: 5353, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: named}
spec:
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: named}
subsets:
- addresses:
  - {ip: 10.244.0.10}
  - {ip: 10.244.0.11}
  - {ip: 10.244.0.12}
  ports:
  - {name: http, port: 9090, protocol: TCP}
EOF
web=$(svc_ip web)
dns=$(svc_ip dns)
named=$(svc_ip named)

# TCP: 300 connections, 10 at a time.
run_load "$C" -n 300 -c 10 -w 3000 "$web" 80
assert_spread "tcp $web:80" 300 a b c

# UDP: 300 datagrams, each from a fresh socket (a new flow).
run_load "$C" -u -n 300 -c 10 -w 3000 "$dns" 53
assert_spread "udp $dns:53" 300 a b c

# The ClusterIP does not answer on the endpoint port itself.
run_load "$C" -n 3 -w 3000 "$web" 8080
[ "$RC" -ne 0 ] && [ "$(topo_count "$OUT" ok)" -eq 0 ] ||
	nft_fail "tcp $web:8080 (not a service port) reached a backend: $OUT"

# Named targetPort: the Endpoints port named http is 9090.
run_load "$C" -n 300 -c 10 -w 3000 "$named" 80
assert_spread "tcp $named:80 (targetPort http)" 300 a b c
eps=$(nft_elems endpoints | grep -F "$named . tcp . 80 . " | sed 's/.* : //' | sort)
assert_eq "$eps" $'10.244.0.10 . 9090\n10.244.0.11 . 9090\n10.244.0.12 . 9090' \
	"endpoints map entries of $named . tcp . 80 (targetPort http)"

svcd_stop
