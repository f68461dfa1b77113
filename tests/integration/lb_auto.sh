#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --mode auto where nftables cannot be programmed: svcd started without
# CAP_NET_ADMIN (setpriv drops it from every set) falls back to the
# userspace balancer and says so in its log and in status.  Unable to add
# addresses either, it listens for each service port on 127.0.0.1 at a port
# the kernel picks, which `svcctl list -o json` names ("listen"): a client
# on the node reaches the pods through it, round-robin.
#
#   +-- node: $NODE ---------------------------------------------------------+
#   |  setpriv (no CAP_NET_ADMIN) svcd --mode auto                           |
#   |  web: 80/TCP -> 8080, endpoints a b c; load -> 127.0.0.1:<listen>      |
#   |                  svcb0 10.244.0.1/24                                   |
#   +----------+------------------------+------------------------+-----------+
#              |                        |                        |
#   +----------+-----------+ +----------+-----------+ +----------+-----------+
#   | pod A  a 10.244.0.10 | | pod B  b 10.244.0.11 | | pod D  c 10.244.0.12 |
#   +----------------------+ +----------------------+ +----------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
topo_pod D c 10.244.0.12

# svcd through setpriv, which execs it (the pid stays svcd's).
real=$SVCD_BIN
SVCD_BIN=$T/svcd-no-net-admin
cat >"$SVCD_BIN" <<EOS
#!/bin/sh
exec setpriv --inh-caps=-net_admin --ambient-caps=-net_admin --bounding-set=-net_admin "$real" "\$@"
EOS
chmod +x "$SVCD_BIN"
svcd_start --mode auto --no-pods --no-dns --node-name "$NFT_NODE_NAME" --cluster-cidr 10.244.0.0/16
grep -q "CapEff:.*" /proc/"$SVCD_PID"/status || fail "no /proc/$SVCD_PID/status"
caps=$(awk '/^CapEff:/ { print $2 }' /proc/"$SVCD_PID"/status)
(((0x$caps >> 12) & 1)) && fail "svcd still has CAP_NET_ADMIN (CapEff $caps)"

st=$(svcctl status -o json)
assert_eq "$(json_field "$st" mode)" userspace "status mode"
assert_contains "$st" '"loopbackOnly": true' "status userspace.loopbackOnly"
# io_uring needs no capability: where the kernel allows it to everyone,
# the balancer batches its sends.
if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null)" = 0 ]; then
	assert_contains "$st" '"batchedSends": true' "status userspace.batchedSends"
fi
assert_contains "$(cat "$SVCD_LOG")" "nftables cannot be used" "the log says why"
assert_contains "$(cat "$SVCD_LOG")" "using the userspace balancer" "the log says what instead"

{
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11 10.244.0.12
} | apply_wait
web=$(svc_ip web)
vip_on_lo "$web" && nft_fail "$web/32 is on lo, yet svcd has no CAP_NET_ADMIN"
lb_json || fail "svcctl list -o json failed"
listen=$(lb_listen web)
assert_match "$listen" '^127\.0\.0\.1:[0-9]+/TCP$' "web's \"listen\""
port=${listen#127.0.0.1:}
port=${port%/TCP}
[ "$port" -ne 80 ] || nft_fail "web listens on 127.0.0.1:80: expected a port the kernel picks"

run_load "$NODE" -n 150 -c 5 -w 3000 127.0.0.1 "$port"
assert_even "tcp 127.0.0.1:$port (web, loopback only)" 150 a b c
svcd_stop
