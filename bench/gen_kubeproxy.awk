# SPDX-License-Identifier: MIT
# The nftables input kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go,
# the version with the cluster-ips set and partial syncs) would send to
# `nft -f -` for N ClusterIP services with E endpoints each: the peer side of
# the data-plane benchmark (bench/kubeproxy_shape.sh).
#
#   awk -v services=N -v endpoints=E -f bench/gen_kubeproxy.awk
#       the first, full sync: table, base chains, sets, maps, every service
#   awk -v endpoints=E -v add_one=K -f bench/gen_kubeproxy.awk
#       the partial sync after service index K (0-based) is added to a ruleset
#       holding services 0..K-1: its chains, rules and map/set elements only
#
# Optional: -v node_ip=A for the nodeport-ips set (default 192.0.2.10, a
# documentation address: the ruleset only names it); -v comments=0 drops the
# table, chain, set and map comments, as knftables does where nft lacks them
# (rule and element comments stay).
#
# Service i is bench/svc-i, port "http" 80/TCP, ClusterIP 10.96.0.0 + i + 1;
# its endpoints are 10.244.0.0 + i*E + j + 1 (j < E), port 8080.  Cluster
# CIDR 10.244.0.0/16, service CIDR 10.96.0.0/16, masquerade bit 14.
#
# Output is what knftables writes: one command a line, in the order the
# proxier adds them.  Chain names carry kube-proxy's hash: the first 8 base32
# characters of the SHA-256 of the name.  awk has no SHA-256, so every name
# goes to its own file under a temporary directory ($TMPDIR or /tmp) and one
# sha256sum run hashes them all.

BEGIN {
	TABLE = "ip kube-proxy"
	MASQ_MARK = "0x004000"          # Go's "%#08x" of 1 << 14
	CLUSTER_CIDR = "10.244.0.0/16"
	SERVICE_CIDR = "10.96.0.0/16"
	NS = "bench"
	PORT_NAME = "http"
	PORT = 80
	TARGET_PORT = 8080
	B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	if (node_ip == "")
		node_ip = "192.0.2.10"
	obj_comments = (comments == "" || comments + 0 != 0)

	if (endpoints !~ /^[0-9]+$/)
		die("endpoints=E (a count >= 0) is required")
	E = endpoints + 0
	if (add_one != "") {
		if (add_one !~ /^[0-9]+$/)
			die("add_one=K takes a service index >= 0")
		first = last = add_one + 0
	} else {
		if (services !~ /^[0-9]+$/)
			die("services=N (a count >= 0) is required")
		first = 0
		last = services - 1
	}
	if (last + 1 > 65534)
		die("at most 65534 services fit 10.96.0.0/16")
	if ((last + 1) * E > 65534)
		die("at most 65534 endpoints in all fit 10.244.0.0/16")

	for (i = first; i <= last; i++) {
		want(svc_base(i))
		for (j = 0; j < E; j++)
			want(ep_base(i, j))
	}
	hash_all()

	if (add_one == "")
		setup()
	for (i = first; i <= last; i++)
		service(i)
	exit 0
}

function die(msg) {
	print "gen_kubeproxy.awk: " msg > "/dev/stderr"
	exit 2
}

# A rule or element comment.
function cmt(text) {
	return " comment \"" text "\""
}

# A comment inside an object's { ... ; } definition.
function objcmt(text) {
	return obj_comments ? " comment \"" text "\" ;" : ""
}

function ip4(prefix, n) {
	return prefix "." int(n / 256) % 256 "." n % 256
}

function cluster_ip(i) {
	return ip4("10.96", i + 1)
}

function ep_ip(i, j) {
	return ip4("10.244", i * E + j + 1)
}

# servicePortChainNameBase / servicePortEndpointChainNameBase, before the hash.
function svc_base(i) {
	return NS "/svc-" i "/tcp/" PORT_NAME
}

function ep_base(i, j) {
	return svc_base(i) "__" ep_ip(i, j) "/" TARGET_PORT
}

function add_chain(name) {
	print "add chain " TABLE " " name
	print "flush chain " TABLE " " name
}

function base_chain(name, type, hook, prio) {
	print "add chain " TABLE " " name " { type " type " hook " hook " priority " prio " ; }"
	print "flush chain " TABLE " " name
}

function rule(chain, body) {
	print "add rule " TABLE " " chain " " body
}

# setupNFTables() on the first sync of a fresh kube-proxy: nodePortAddresses
# "primary" (the nftables mode's default), local traffic told by cluster CIDR,
# the service CIDR known.
function setup(   n, names, k) {
	if (obj_comments)
		print "add table " TABLE " { comment \"rules for kube-proxy\" ; }"
	else
		print "add table " TABLE
	n = split("filter-prerouting filter-input filter-forward filter-output " \
		"filter-output-post-dnat nat-prerouting nat-output nat-postrouting", names, " ")
	# The first sync deletes the base chains once, so that a changed
	# property (a priority) cannot fail the transaction.
	for (k = 1; k <= n; k++) {
		print "add chain " TABLE " " names[k]
		print "delete chain " TABLE " " names[k]
	}
	# knftables writes the priorities as numbers: dstnat -100, srcnat 100.
	base_chain("filter-prerouting", "filter", "prerouting", -110)
	base_chain("filter-input", "filter", "input", -110)
	base_chain("filter-forward", "filter", "forward", -110)
	base_chain("filter-output", "filter", "output", -110)
	base_chain("filter-output-post-dnat", "filter", "output", -90)
	base_chain("nat-prerouting", "nat", "prerouting", -100)
	base_chain("nat-output", "nat", "output", -100)
	base_chain("nat-postrouting", "nat", "postrouting", 100)

	add_chain("nodeport-endpoints-check")
	rule("filter-input", "ct state new jump nodeport-endpoints-check")
	add_chain("service-endpoints-check")
	rule("filter-input", "ct state new jump service-endpoints-check")
	rule("filter-forward", "ct state new jump service-endpoints-check")
	rule("filter-output", "ct state new jump service-endpoints-check")
	add_chain("firewall-check")
	rule("filter-prerouting", "ct state new jump firewall-check")
	rule("filter-output", "ct state new jump firewall-check")
	add_chain("services")
	rule("nat-output", "jump services")
	rule("nat-prerouting", "jump services")
	add_chain("masquerading")
	rule("nat-postrouting", "jump masquerading")
	add_chain("cluster-ips-check")
	rule("filter-forward", "ct state new jump cluster-ips-check")
	rule("filter-output-post-dnat", "ct state new jump cluster-ips-check")
	add_chain("mark-for-masquerade")

	rule("mark-for-masquerade", "mark set mark or " MASQ_MARK)
	rule("masquerading", "mark and " MASQ_MARK " == 0 return")
	rule("masquerading", "mark set mark xor " MASQ_MARK)
	rule("masquerading", "masquerade fully-random")

	print "add set " TABLE " cluster-ips { type ipv4_addr ;" objcmt("Active ClusterIPs") " }"
	rule("cluster-ips-check", "ip daddr @cluster-ips reject" \
		cmt("Reject traffic to invalid ports of ClusterIPs"))
	rule("cluster-ips-check", "ip daddr { " SERVICE_CIDR " } drop" \
		cmt("Drop traffic to unallocated ClusterIPs"))

	print "add set " TABLE " nodeport-ips { type ipv4_addr ;" \
		objcmt("IPs that accept NodePort traffic") " }"
	print "flush set " TABLE " nodeport-ips"
	print "add element " TABLE " nodeport-ips { " node_ip " }"

	print "add map " TABLE " no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ;" \
		objcmt("vmap to drop or reject packets to services with no endpoints") " }"
	print "add map " TABLE " no-endpoint-nodeports { type inet_proto . inet_service : verdict ;" \
		objcmt("vmap to drop or reject packets to service nodeports with no endpoints") " }"
	if (obj_comments)
		print "add chain " TABLE " reject-chain {" \
			objcmt("helper for @no-endpoint-services / @no-endpoint-nodeports") " }"
	else
		print "add chain " TABLE " reject-chain"
	print "flush chain " TABLE " reject-chain"
	rule("reject-chain", "reject")
	rule("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
	rule("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")

	print "add map " TABLE " firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ;" \
		objcmt("destinations that are subject to LoadBalancerSourceRanges") " }"
	rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips")

	print "add map " TABLE " service-ips { type ipv4_addr . inet_proto . inet_service : verdict ;" \
		objcmt("ClusterIP, ExternalIP and LoadBalancer IP traffic") " }"
	print "add map " TABLE " service-nodeports { type inet_proto . inet_service : verdict ;" \
		objcmt("NodePort traffic") " }"
	rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips")
	rule("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")

	# The element stores are reset: every element is added again below.
	print "flush set " TABLE " cluster-ips"
	print "flush map " TABLE " service-ips"
	print "flush map " TABLE " firewall-ips"
	print "flush map " TABLE " no-endpoint-services"
	print "flush map " TABLE " no-endpoint-nodeports"
	print "flush map " TABLE " service-nodeports"
}

# One service port, in the order syncProxyRules adds its objects.  A service
# without endpoints gets no chains, only a reject verdict.
function service(i,   cip, svc_chain, j, epip, ep_chain, vmap) {
	cip = cluster_ip(i)
	svc_chain = "service-" KH[svc_base(i)] "-" svc_base(i)
	for (j = 0; j < E; j++) {
		epip[j] = ep_ip(i, j)
		ep_chain[j] = "endpoint-" KH[ep_base(i, j)] "-" ep_base(i, j)
		add_chain(ep_chain[j])
	}
	if (E > 0)
		add_chain(svc_chain)
	print "add element " TABLE " cluster-ips { " cip " }"
	if (E == 0) {
		print "add element " TABLE " no-endpoint-services { " cip " . tcp . " PORT \
			cmt(NS "/svc-" i ":" PORT_NAME) " : goto reject-chain }"
		return
	}
	print "add element " TABLE " service-ips { " cip " . tcp . " PORT " : goto " svc_chain " }"
	rule(svc_chain, "ip daddr " cip " tcp dport " PORT " ip saddr != " CLUSTER_CIDR \
		" jump mark-for-masquerade")
	vmap = ""
	for (j = 0; j < E; j++)
		vmap = vmap (j ? " , " : "") j " : goto " ep_chain[j]
	rule(svc_chain, "numgen random mod " E " vmap { " vmap " }")
	for (j = 0; j < E; j++) {
		rule(ep_chain[j], "ip saddr " epip[j] " jump mark-for-masquerade")
		rule(ep_chain[j], "meta l4proto tcp dnat to " epip[j] ":" TARGET_PORT)
	}
}

function want(name) {
	NAMES[++NNAMES] = name
}

# Fills KH[name] with kube-proxy's hashAndTruncate prefix for every wanted
# name: base32 of the first 40 bits of its SHA-256, 8 characters.  (Names
# here stay far below the length kube-proxy truncates at.)
function hash_all(   dir, cmd, k, f, line, id, got) {
	if (NNAMES == 0)
		return
	cmd = "mktemp -d \"${TMPDIR:-/tmp}/gen_kubeproxy.XXXXXX\""
	if ((cmd | getline dir) <= 0 || dir == "")
		die("mktemp failed")
	close(cmd)
	for (k = 1; k <= NNAMES; k++) {
		f = dir "/" k
		printf "%s", NAMES[k] > f
		close(f)
	}
	# Lines are "<64 hex digits>  ./<k>".
	cmd = "cd '" dir "' && find . -type f -print0 | xargs -0 sha256sum"
	got = 0
	while ((cmd | getline line) > 0) {
		id = substr(line, 69)
		if (!(id in NAMES) || KH[NAMES[id]] != "")
			continue
		KH[NAMES[id]] = b32_40(substr(line, 1, 10))
		got++
	}
	close(cmd)
	system("rm -rf '" dir "'")
	if (got != NNAMES)
		die("sha256sum hashed " got " of " NNAMES " names")
}

# 10 hex digits (40 bits, exact in a double) to 8 base32 characters.
function b32_40(h,   v, k, out) {
	v = 0
	for (k = 1; k <= 10; k++)
		v = v * 16 + index("0123456789abcdef", substr(h, k, 1)) - 1
	out = ""
	for (k = 0; k < 8; k++) {
		out = substr(B32, v % 32 + 1, 1) out
		v = int(v / 32)
	}
	return out
}
