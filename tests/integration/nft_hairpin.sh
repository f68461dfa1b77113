#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nftables data plane: pods as clients of services.  A pod reaches itself
# through a ClusterIP whose only endpoint is that pod (hairpin: the node
# must masquerade, or the pod would answer itself directly and the client
# socket would drop the reply), over TCP and UDP; and pod A reaches a
# service whose endpoint is pod B.
#
#   +-- node: $NODE ---------------------------------------------------------+
#   |  svcd --mode nftables --node-name node1 --cluster-cidr 10.244.0.0/16   |
#   |  self:  80/TCP->8080, 53/UDP->5353, endpoint a                         |
#   |  other: 80/TCP->8080, 53/UDP->5353, endpoint b                         |
#   |  self2: 80/TCP->8080, endpoint a (then deleted)                        |
#   |                  svcb0 10.244.0.1/24 (hairpin on every pod port)       |
#   +----------------+-------------------------------------+-----------------+
#                    | svcp1                               | svcp2
#   +----------------+-----------------+  +----------------+-----------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11            |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353             |
#   |  load -> self  (back to A)       |  |  load -> other (back to B)       |
#   |  load -> other (to B)            |  |  load -> self  (to A)            |
#   +----------------------------------+  +----------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"

# synced: the data plane caught up with every change.
synced() {
	local st
	st=$(svcctl status -o json) || return 1
	[ "$(json_field "$st" synced)" = true ] &&
		(($(json_field "$st" appliedGeneration) >= $(json_field "$st" desiredGeneration)))
}

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11

svcd_start "${SVCD_ARGS[@]}"

{
	service_yaml self http:80:8080/TCP,dns:53:5353/UDP
	endpoints_yaml self http:8080/TCP,dns:5353/UDP 10.244.0.10
	service_yaml other http:80:8080/TCP,dns:53:5353/UDP
	endpoints_yaml other http:8080/TCP,dns:5353/UDP 10.244.0.11
} | apply_wait
self=$(svc_ip self)
other=$(svc_ip other)

# Pod A to itself through the service.
run_load "$A" -n 20 -c 5 -w 3000 "$self" 80
expect_all "pod a -> $self:80/tcp (hairpin to itself)" a 20
run_load "$A" -u -n 20 -c 5 -w 3000 "$self" 53
expect_all "pod a -> $self:53/udp (hairpin to itself)" a 20
# A transfer both ways over the hairpinned connection.
run_load "$A" -n 4 -c 2 -b 1000000 -w 3000 "$self" 80
expect_all "pod a -> $self:80/tcp, 1 MB echoed back" a 4

# A second service with the same endpoint shares the hairpin element: when
# it goes, pod A still reaches itself through the first.
{
	service_yaml self2 http:80:8080/TCP
	endpoints_yaml self2 http:8080/TCP 10.244.0.10
} | apply_wait
run_load "$A" -n 20 -c 5 -w 3000 "$(svc_ip self2)" 80
expect_all "pod a -> self2 (hairpin to itself)" a 20
svcctl delete svc self2 >/dev/null
svcctl delete ep self2 >/dev/null
wait_for 5 synced
run_load "$A" -n 20 -c 5 -w 3000 "$self" 80
expect_all "pod a -> $self:80/tcp (hairpin to itself) after self2, with the same endpoint, was deleted" a 20

# Pod A to a service served by pod B, and pod B to itself and to A's service.
run_load "$A" -n 20 -c 5 -w 3000 "$other" 80
expect_all "pod a -> $other:80/tcp (endpoint pod b)" b 20
run_load "$A" -u -n 20 -c 5 -w 3000 "$other" 53
expect_all "pod a -> $other:53/udp (endpoint pod b)" b 20
run_load "$B" -n 20 -c 5 -w 3000 "$other" 80
expect_all "pod b -> $other:80/tcp (hairpin to itself)" b 20
run_load "$B" -n 20 -c 5 -w 3000 "$self" 80
expect_all "pod b -> $self:80/tcp (endpoint pod a)" a 20

svcd_stop
