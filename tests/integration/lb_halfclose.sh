#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Userspace balancer: what it relays arrives intact, and a connection ends
# through it as it ended at either side.
#   1. 100 MB each way at once (stream echo: a pseudo-random stream, checked
#      byte for byte, its length, then the EOF), the client half-closing
#      after its last byte while the echo is still coming;
#   2. 100 MB client -> backend, then the client's half-close; the backend
#      answers with the length and checksum of what it got only once it has
#      the EOF, so the answer needs the FIN passed on and the other way open;
#   3. the client half-closes at once, then gets 100 MB;
#   4. the balancer's byte counters are exactly what crossed each way;
#   5. several transfers at once through the echo servers (load -b);
#   6. a RST from the backend reaches the client as a RST (ECONNRESET);
#   7. a RST from the client reaches the backend as a RST.
#
#       +-- client C ---------------------------------------+
#       |  192.168.77.2  stream -> ClusterIP:7070            |
#       |                load -b -> ClusterIP:80             |
#       +-----------------+---------------------------------+
#                         | veth
#   +-- node: $NODE ------+------------------------------------------+
#   |  svcd --mode userspace --node-name node1 ...                   |
#   |  xfer: 7070/TCP -> 7070 a b     web: 80/TCP -> 8080 a b        |
#   |                  svcb0 10.244.0.1/24                           |
#   +----------------+-------------------------------+---------------+
#                    |                               |
#   +----------------+-----------------+  +----------+----------------------+
#   |  pod A  a 10.244.0.10            |  |  pod B  b 10.244.0.11           |
#   |  echo 8080 9090 5353             |  |  echo 8080 9090 5353            |
#   |  stream serve a 7070             |  |  stream serve b 7070            |
#   +----------------------------------+  +---------------------------------+
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../topo.sh
. "$(dirname "$0")/../topo.sh"
# shellcheck source-path=SCRIPTDIR source=../nft.sh
. "$(dirname "$0")/../nft.sh"
# shellcheck source-path=SCRIPTDIR source=../lb.sh
. "$(dirname "$0")/../lb.sh"

MB100=100000000
P=$LB_STREAM_PORT

topo_pod A a 10.244.0.10
topo_pod B b 10.244.0.11
stream_serve "$A"
stream_serve "$B"
topo_client C

svcd_start "${SVCD_ARGS[@]}"
{
	service_yaml xfer "stream:$P:$P/TCP"
	endpoints_yaml xfer "stream:$P/TCP" 10.244.0.10 10.244.0.11
	service_yaml web http:80:8080/TCP
	endpoints_yaml web http:8080/TCP 10.244.0.10 10.244.0.11
} | apply_wait
ip=$(svc_ip xfer)
web=$(svc_ip web)

# 1-3.  Each connection starts with the backend's "x\n" (2 bytes) and the
# client's request line.
stream_ok "1. echo of $MB100 bytes" "$C" -w 10000 echo "$ip" "$P" "$MB100" 1 >/dev/null
echo "passed 1. $MB100 bytes each way" >&2
stream_ok "2. $MB100 bytes up, then the half-close" "$C" -w 10000 up "$ip" "$P" "$MB100" 2 >/dev/null
echo "passed 2. $MB100 bytes up, the answer after the half-close" >&2
stream_ok "3. half-close, then $MB100 bytes down" "$C" -w 10000 down "$ip" "$P" "$MB100" 3 >/dev/null
echo "passed 3. half-close first, then $MB100 bytes down" >&2

# 4. client -> backend: "echo\n" and the stream, "sink\n" and the stream,
# "source 3 $MB100\n"; backend -> client: three names, the echo, the
# digest line ("$MB100 " and 16 hex digits and "\n"), the stream.
req="source 3 $MB100"$'\n'
digest="$MB100 0123456789abcdef"$'\n'
wait_for 10 lb_idle xfer
assert_eq "$(lb_counter xfer .lb.total)" 3 "xfer: lb.total"
assert_eq "$(lb_counter xfer .lb.bytes_in)" $((5 + MB100 + 5 + MB100 + ${#req})) \
	"xfer: lb.bytes_in (client -> backend)"
assert_eq "$(lb_counter xfer .lb.bytes_out)" $((3 * 2 + MB100 + ${#digest} + MB100)) \
	"xfer: lb.bytes_out (backend -> client)"
echo "passed 4. byte counters" >&2

# 5. 8 transfers of 20 MB, 4 at a time, to the echo servers.
run_load "$C" -n 8 -c 4 -b 20000000 -w 10000 "$web" 80
expect_ok "load -b 20000000, 4 at a time" 8
echo "passed 5. concurrent transfers" >&2

# 6. The backend resets the connection (SO_LINGER 0).
stream_ok "6. reset by the backend" "$C" reset "$ip" "$P" >/dev/null
echo "passed 6. RST from the backend" >&2

# 7. The client resets the connection once the backend holds it; the
# backend's server logs what it saw.
name=$(stream_ok "7. reset by the client" "$C" abort "$ip" "$P")
wait_for 10 grep -q "^$name hold: " "${LB_STREAM_LOG[$name]}"
seen=$(grep "^$name hold: " "${LB_STREAM_LOG[$name]}")
assert_eq "$seen" "$name hold: reset" "what backend $name saw when the client reset its connection"
echo "passed 7. RST from the client" >&2

svcd_stop
