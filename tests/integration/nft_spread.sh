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
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12
topo_client C

svcd_start "${SVCD_ARGS[@]}"
st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" nftables "status mode"

{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
	service_yaml dns dns:53:5353/UDP
	endpoints_yaml dns dns:5353/UDP 10.244.0.10@ 10.244.0.11@ 10.244.0.12@
	service_yaml named http:80:http/TCP
	endpoints_yaml named http:9090/TCP 10.244.0.10@ 10.244.0.11@ 10.244.0.12@
} | apply_wait
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
{ [ "$RC" -ne 0 ] && [ "$(topo_count "$OUT" ok)" -eq 0 ]; } ||
	nft_fail "tcp $web:8080 (not a service port) reached a backend: $OUT"

# Named targetPort: the Endpoints port named http is 9090.
run_load "$C" -n 300 -c 10 -w 3000 "$named" 80
assert_spread "tcp $named:80 (targetPort http)" 300 a b c
eps=$(nft_elems_of endpoints | grep -F "$named . tcp . 80 . " | sed 's/.* : //' | sort)
assert_eq "$eps" $'10.244.0.10 . 9090\n10.244.0.11 . 9090\n10.244.0.12 . 9090' \
	"endpoints map entries of $named . tcp . 80 (targetPort http)"

svcd_stop
