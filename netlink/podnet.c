// SPDX-License-Identifier: MIT
/* Pod networking over rtnetlink (libnl-3 and libnl-route-3), and the
 * masquerade table over nf_tables (nftmsg.h).
 *
 * Speed: one socket in the node's namespace is kept for the life of struct
 * podnet, and a pod costs a fixed handful of requests, never a dump.  The
 * new namespace's own socket is opened while the thread is still inside it
 * after unshare(), so entering it costs no second setns(); the veth's pod
 * end is created in the pod's namespace directly (IFLA_NET_NS_FD on the
 * peer), already named eth0 and up. */
#include "podnet.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "err.h"
#include "fsutil.h"
#include "nft.h"
#include "nftmsg.h"
#include "nftrules.h"
#include "util.h"

#define POD_IF	       "eth0"
#define ALIAS_PREFIX   "svcd:"
#define ID_MAX	       63
#define LOOPBACK_INDEX 1 /* lo is always index 1 of its namespace */
#define MASQ_CHAIN     "postrouting"
#define SELF_NS	       "/proc/thread-self/ns/net"

/* A route netlink socket and the errno of the last error the kernel sent on
 * it: libnl folds errnos into its own codes, and messages want the kernel's
 * word ("File exists"). */
struct nlk {
	struct nl_sock *sk;
	int err;
};

struct podnet {
	char *bridge, *netns_dir, *table;
	struct in_addr pod_net, cluster_net, gw;
	int pod_prefix, cluster_prefix, mtu, br_index;
	struct nlk node; /* bound in the node's namespace */
};

/* --- sockets and errors --------------------------------------------------- */

static int nle_errno(int nle)
{
	static const int map[][2] = {
	    {NLE_NOMEM, ENOMEM},	{NLE_EXIST, EEXIST},
	    {NLE_OBJ_NOTFOUND, ENOENT}, {NLE_NODEV, ENODEV},
	    {NLE_PERM, EPERM},		{NLE_BUSY, EBUSY},
	    {NLE_INVAL, EINVAL},	{NLE_RANGE, ERANGE},
	    {NLE_AGAIN, EAGAIN},	{NLE_OPNOTSUPP, EOPNOTSUPP},
	    {NLE_NOACCESS, EACCES},	{NLE_MSGSIZE, EMSGSIZE},
	    {NLE_DUMP_INTR, EINTR},	{NLE_AF_NOSUPPORT, EAFNOSUPPORT},
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i][0] == nle)
			return map[i][1];
	return EIO;
}

static int on_nlerr(struct sockaddr_nl *who, struct nlmsgerr *err, void *arg)
{
	((struct nlk *)arg)->err = -err->error;
	return NL_STOP;
}

/* 0, or the -errno of a failed libnl call r on k. */
static int kerr(struct nlk *k, int r)
{
	int err = k->err;

	k->err = 0;
	if (r >= 0)
		return 0;
	return -(err > 0 ? err : nle_errno(-r));
}

/* A socket in the calling thread's current network namespace. */
static int nlk_open(struct nlk *k)
{
	int r;

	k->err = 0;
	if (!(k->sk = nl_socket_alloc()))
		return -ENOMEM;
	if ((r = nl_connect(k->sk, NETLINK_ROUTE)) < 0) {
		nl_socket_free(k->sk);
		k->sk = NULL;
		return -nle_errno(-r);
	}
	nl_socket_modify_err_cb(k->sk, NL_CB_CUSTOM, on_nlerr, k);
	/* A fixed buffer spares libnl a peek before each read. */
	nl_socket_set_msg_buf_size(k->sk, 32768);
	return 0;
}

static void nlk_close(struct nlk *k)
{
	nl_socket_free(k->sk);
	k->sk = NULL;
}

/* Send m (consumed) and wait for the kernel's answer. */
static int nlk_talk(struct nlk *k, struct nl_msg *m)
{
	if (!m)
		return -ENOMEM;
	return kerr(k, nl_send_sync(k->sk, m));
}

/* A socket inside the namespace pinned at path. */
static int nlk_open_in(struct nlk *k, const char *path)
{
	int self = open(SELF_NS, O_RDONLY | O_CLOEXEC), fd = -1, r = 0;

	k->sk = NULL;
	if (self < 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || setns(fd, CLONE_NEWNET))
		r = -errno;
	else {
		r = nlk_open(k);
		if (setns(self, CLONE_NEWNET))
			r = -errno; /* not reached: setns to a namespace we were in */
	}
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	if (r && k->sk)
		nlk_close(k);
	return r;
}

/* --- messages --------------------------------------------------------------- */

/* RTM_NEWLINK on an existing link, by index or (index 0) by name. */
static struct nl_msg *link_msg(int ifindex, const char *name, bool up, int mtu)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);

	if (up) {
		ifi.ifi_flags = IFF_UP;
		ifi.ifi_change = IFF_UP;
	}
	if (!m || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    (name && nla_put_string(m, IFLA_IFNAME, name) < 0) ||
	    (mtu && nla_put_u32(m, IFLA_MTU, (uint32_t)mtu) < 0)) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

static int link_del(struct nlk *k, int ifindex)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
	struct nl_msg *m = nlmsg_alloc_simple(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);

	if (m && nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlk_talk(k, m);
}

static int addr_add(struct nlk *k, int ifindex, struct in_addr a, int prefix, bool replace)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_INET,
				.ifa_prefixlen = (uint8_t)prefix,
				.ifa_scope = RT_SCOPE_UNIVERSE,
				.ifa_index = (uint32_t)ifindex};
	int flags =
	    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL);
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWADDR, flags);

	if (m && (nlmsg_append(m, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0 ||
		  nla_put(m, IFA_LOCAL, 4, &a) < 0 || nla_put(m, IFA_ADDRESS, 4, &a) < 0)) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlk_talk(k, m);
}

static int route_add_default(struct nlk *k, int ifindex, struct in_addr gw)
{
	struct rtmsg rtm = {.rtm_family = AF_INET,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = RT_SCOPE_UNIVERSE,
			    .rtm_type = RTN_UNICAST};
	int flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWROUTE, flags);

	if (m && (nlmsg_append(m, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
		  nla_put(m, RTA_GATEWAY, 4, &gw) < 0 ||
		  nla_put_u32(m, RTA_OIF, (uint32_t)ifindex) < 0)) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlk_talk(k, m);
}

/* --- names ------------------------------------------------------------------ */

static bool id_valid(const char *id)
{
	size_t n = strnlen(id, ID_MAX + 1);

	if (n == 0 || n > ID_MAX || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(id[i] >= 'a' && id[i] <= 'z') && !(id[i] >= 'A' && id[i] <= 'Z') &&
		    !(id[i] >= '0' && id[i] <= '9') && !strchr("_.-", id[i]))
			return false;
	return true;
}

void podnet_veth_name(const char *id, char out[static IFNAMSIZ])
{
	uint64_t h = hash_str(id);

	snprintf(out, IFNAMSIZ, "veth%08x", (uint32_t)(h ^ h >> 32));
}

static const char *ip_str(struct in_addr a, char buf[static INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

int podnet_netns_path(const struct podnet *pn, const char *id, char *buf, size_t n)
{
	if (!id_valid(id))
		return -EINVAL;
	if ((size_t)snprintf(buf, n, "%s/%s", pn->netns_dir, id) >= n)
		return -ENAMETOOLONG;
	return 0;
}

/* --- the node ----------------------------------------------------------------- */

static int sysctl_on(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if ((read(fd, &c, 1) != 1 || c != '1') && pwrite(fd, "1\n", 2, 0) != 2)
		r = -errno;
	close(fd);
	return r;
}

static void default_oif(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct nl_addr *dst = rtnl_route_get_dst(rt);
	struct rtnl_nexthop *nh;

	if (*(int *)arg || rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
	    (dst && nl_addr_get_prefixlen(dst)) || !(nh = rtnl_route_nexthop_n(rt, 0)))
		return;
	*(int *)arg = rtnl_route_nh_get_ifindex(nh);
}

/* The MTU of the default route's device, 0 when there is none. */
static int uplink_mtu(struct nlk *k)
{
	struct nl_cache *c = NULL;
	struct rtnl_link *l = NULL;
	int oif = 0, mtu = 0;

	if (kerr(k, rtnl_route_alloc_cache(k->sk, AF_INET, 0, &c)))
		return 0;
	nl_cache_foreach(c, default_oif, &oif);
	nl_cache_free(c);
	if (oif > 0 && !kerr(k, rtnl_link_get_kernel(k->sk, oif, NULL, &l))) {
		mtu = (int)rtnl_link_get_mtu(l);
		rtnl_link_put(l);
	}
	return mtu;
}

/* A bridge's MAC otherwise follows its lowest port's, so the pods' gateway
 * would change MAC as pods come and go: give it a fixed one. */
static struct nl_addr *bridge_mac(const char *name)
{
	uint64_t h = hash_str(name);
	uint8_t mac[6];

	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
	return nl_addr_build(AF_LLC, mac, sizeof(mac));
}

static int bridge_create(struct podnet *pn)
{
	struct rtnl_link *l = rtnl_link_bridge_alloc();
	struct nl_addr *mac = bridge_mac(pn->bridge);
	int r = -ENOMEM;

	if (l && mac) {
		rtnl_link_set_name(l, pn->bridge);
		rtnl_link_set_mtu(l, (unsigned)pn->mtu);
		rtnl_link_set_addr(l, mac);
		rtnl_link_set_flags(l, IFF_UP);
		r = kerr(&pn->node, rtnl_link_add(pn->node.sk, l, NLM_F_CREATE | NLM_F_EXCL));
	}
	nl_addr_put(mac);
	rtnl_link_put(l);
	return r;
}

/* Look the bridge up: its index, and whether it needs bringing up or an MTU. */
static int bridge_get(struct podnet *pn, bool *stale, struct svc_err *e)
{
	struct rtnl_link *l = NULL;
	const char *kind;
	int r = kerr(&pn->node, rtnl_link_get_kernel(pn->node.sk, 0, pn->bridge, &l));

	if (r)
		return r == -ENODEV
			   ? r
			   : svc_errf(e, -r, "looking up bridge %s: %s", pn->bridge, strerror(-r));
	kind = rtnl_link_get_type(l);
	if (!kind || strcmp(kind, "bridge")) {
		rtnl_link_put(l);
		return svc_errf(e, EEXIST, "%s exists and is not a bridge", pn->bridge);
	}
	pn->br_index = rtnl_link_get_ifindex(l);
	*stale = !(rtnl_link_get_flags(l) & IFF_UP) || (int)rtnl_link_get_mtu(l) != pn->mtu;
	rtnl_link_put(l);
	return 0;
}

static int bridge_ensure(struct podnet *pn, struct svc_err *e)
{
	bool stale = false;
	int r = bridge_get(pn, &stale, e);

	if (r == -ENODEV) {
		r = bridge_create(pn);
		if (r && r != -EEXIST) /* EEXIST: made meanwhile by someone else */
			return svc_errf(e, -r, "creating bridge %s: %s", pn->bridge, strerror(-r));
		if ((r = bridge_get(pn, &stale, e)) == -ENODEV)
			return svc_errf(e, ENODEV, "bridge %s vanished after creation", pn->bridge);
	}
	if (r)
		return r;
	if (stale && (r = nlk_talk(&pn->node, link_msg(pn->br_index, NULL, true, pn->mtu))))
		return svc_errf(e, -r, "setting bridge %s up with MTU %d: %s", pn->bridge, pn->mtu,
				strerror(-r));
	if ((r = addr_add(&pn->node, pn->br_index, pn->gw, pn->pod_prefix, true))) {
		char a[INET_ADDRSTRLEN];
		return svc_errf(e, -r, "adding %s/%d to bridge %s: %s", ip_str(pn->gw, a),
				pn->pod_prefix, pn->bridge, strerror(-r));
	}
	return 0;
}

static int forwarding_on(struct svc_err *e)
{
	static const char fwd[] = "/proc/sys/net/ipv4/ip_forward",
			  brnf[] = "/proc/sys/net/bridge/bridge-nf-call-iptables";
	int r;

	if ((r = sysctl_on(fwd)))
		return svc_errf(e, -r, "setting %s: %s", fwd, strerror(-r));
	/* Absent without br_netfilter: nothing to do then. */
	if ((r = sysctl_on(brnf)) && r != -ENOENT)
		return svc_errf(e, -r, "setting %s: %s", brnf, strerror(-r));
	return 0;
}

/* --- the masquerade table ------------------------------------------------------ */

static void ex_masq_plain(struct nftnl_rule *r)
{
	struct nftnl_expr *x = nftnl_expr_alloc("masq");

	if (x)
		nftnl_rule_add_expr(r, x);
}

/* ip saddr <cluster> ip daddr != <cluster> oifname != "<bridge>" masquerade */
static void masq_rule(struct nftnl_rule *r, const struct podnet *pn)
{
	uint32_t mask = htonl(pn->cluster_prefix ? ~0u << (32 - pn->cluster_prefix) : 0);
	uint32_t net = pn->cluster_net.s_addr, zero = 0;
	char ifname[IFNAMSIZ] = {0};

	snprintf(ifname, sizeof(ifname), "%s", pn->bridge);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, pn->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, MASQ_CHAIN);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
	ex_bitwise(r, NFT_REG_1, &mask, &zero, 4);
	ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &net, 4);
	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1);
	ex_bitwise(r, NFT_REG_1, &mask, &zero, 4);
	ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &net, 4);
	ex_meta(r, NFT_META_OIFNAME, NFT_REG_1);
	ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, ifname, sizeof(ifname));
	ex_masq_plain(r);
}

static void put_masq_rule(struct nft_txn *t, const struct podnet *pn)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh =
	    nft_txn_msg(t, NFT_MSG_NEWRULE, NFPROTO_IPV4, NLM_F_APPEND | NLM_F_CREATE,
			"adding the masquerade rule");

	if (!r || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_rule_free(r);
		return;
	}
	masq_rule(r, pn);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	nft_txn_done(t);
}

/* One transaction: whatever the table held is replaced by the one rule. */
static int masq_table(const struct podnet *pn, struct svc_err *e)
{
	static const struct nft_fixed_chain post = {
	    .name = MASQ_CHAIN, .type = "nat", .hook = NF_INET_POST_ROUTING, .prio = 100};
	struct nft_sock s;
	struct nft_txn t;
	int r;

	if ((r = nft_sock_open(&s, e)))
		return r;
	if ((r = nft_txn_begin(&t, &s)) == 0) {
		nft_put_table(&t, pn->table, true);
		nft_put_table(&t, pn->table, false);
		nft_put_table(&t, pn->table, true);
		nft_put_chain(&t, pn->table, MASQ_CHAIN, &post);
		put_masq_rule(&t, pn);
		if ((r = nft_txn_commit(&t, e)))
			svc_err_ctx(e, "masquerade table %s", pn->table);
		nft_txn_free(&t);
	} else {
		svc_errf(e, -r, "nftables: %s", strerror(-r));
	}
	nft_sock_close(&s);
	return r;
}

/* --- open and close ------------------------------------------------------------- */

static bool prefix_ok(struct in_addr net, int prefix, int lo, int hi)
{
	uint32_t host = prefix >= 32 ? 0 : ~0u >> prefix;

	return prefix >= lo && prefix <= hi && !(ntohl(net.s_addr) & host);
}

static int config_check(const struct podnet_config *c, struct svc_err *e)
{
	if (c->bridge && (!c->bridge[0] || strlen(c->bridge) >= IFNAMSIZ))
		return svc_errf(e, EINVAL, "pod network: bridge name \"%s\": 1-15 characters",
				c->bridge);
	if (!prefix_ok(c->pod_net, c->pod_prefix, 8, 30))
		return svc_errf(e, EINVAL, "pod network: pod CIDR /%d: need a network of /8-/30",
				c->pod_prefix);
	if (!prefix_ok(c->cluster_net, c->cluster_prefix, 1, c->pod_prefix))
		return svc_errf(e, EINVAL,
				"pod network: cluster CIDR /%d: need a network of /1-/%d",
				c->cluster_prefix, c->pod_prefix);
	if (c->netns_dir && c->netns_dir[0] != '/')
		return svc_errf(e, EINVAL, "pod network: netns dir %s: not absolute", c->netns_dir);
	if (c->mtu < 0 || c->mtu > 65535)
		return svc_errf(e, EINVAL, "pod network: MTU %d", c->mtu);
	return 0;
}

static struct podnet *podnet_new(const struct podnet_config *c)
{
	struct podnet *pn = calloc(1, sizeof(*pn));

	if (!pn)
		return NULL;
	pn->bridge = strdup(c->bridge ? c->bridge : "svcd0");
	pn->netns_dir = strdup(c->netns_dir ? c->netns_dir : "/run/netns");
	pn->table = strdup(c->masq_table && c->masq_table[0] ? c->masq_table : "svcd-pods");
	if (!pn->bridge || !pn->netns_dir || !pn->table) {
		podnet_close(pn);
		return NULL;
	}
	pn->pod_net = c->pod_net;
	pn->pod_prefix = c->pod_prefix;
	pn->cluster_net = c->cluster_net;
	pn->cluster_prefix = c->cluster_prefix;
	pn->gw.s_addr = htonl(ntohl(c->pod_net.s_addr) + 1);
	pn->mtu = c->mtu;
	return pn;
}

int podnet_open(const struct podnet_config *cfg, struct podnet **out, struct svc_err *e)
{
	struct podnet *pn;
	int r;

	if ((r = config_check(cfg, e)))
		return r;
	if (!(pn = podnet_new(cfg)))
		return svc_errf(e, ENOMEM, "pod network: out of memory");
	if ((r = mkdir_p(pn->netns_dir, 0755))) {
		svc_errf(e, -r, "creating %s: %s", pn->netns_dir, strerror(-r));
		goto fail;
	}
	if ((r = nlk_open(&pn->node))) {
		svc_errf(e, -r, "route netlink socket: %s", strerror(-r));
		goto fail;
	}
	if (!pn->mtu && !(pn->mtu = uplink_mtu(&pn->node)))
		pn->mtu = 1500;
	if ((r = bridge_ensure(pn, e)) || (r = forwarding_on(e)) || (r = masq_table(pn, e)))
		goto fail;
	*out = pn;
	return 0;
fail:
	podnet_close(pn);
	return svc_err_ctx(e, "pod network");
}

void podnet_close(struct podnet *pn)
{
	if (!pn)
		return;
	if (pn->node.sk)
		nlk_close(&pn->node);
	free(pn->bridge);
	free(pn->netns_dir);
	free(pn->table);
	free(pn);
}

struct in_addr podnet_gateway(const struct podnet *pn)
{
	return pn->gw;
}

/* --- one pod: tearing down ----------------------------------------------------- */

static bool ns_mounted(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == NSFS_MAGIC;
}

/* A veth is pod id's when it carries its alias, or when it carries none but
 * sits on our bridge: an add that stopped before the alias was set. */
static bool veth_is_mine(const struct podnet *pn, struct rtnl_link *l, const char *id)
{
	const char *alias = rtnl_link_get_ifalias(l);

	if (!alias || !alias[0])
		return rtnl_link_get_master(l) == pn->br_index;
	return !strncmp(alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) &&
	       !strcmp(alias + strlen(ALIAS_PREFIX), id);
}

/* Set a link down: a bridge port that is down forwards nothing. */
static int link_down(struct nlk *k, int ifindex)
{
	struct ifinfomsg ifi = {
	    .ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_change = IFF_UP};
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);

	if (m && nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlk_talk(k, m);
}

/* The host veth of id: deleted (`now`, the pod's end goes with it), else
 * only set down, for the kernel to delete with the pod's namespace.  A veth
 * of that name with another pod's alias is left alone: *theirs says so. */
static int veth_retire(struct podnet *pn, const char *id, const char *host, bool now, bool *theirs)
{
	struct rtnl_link *l = NULL;
	int r = kerr(&pn->node, rtnl_link_get_kernel(pn->node.sk, 0, host, &l)), idx;
	bool mine;

	*theirs = false;
	if (r)
		return r == -ENODEV ? 0 : r;
	mine = veth_is_mine(pn, l, id);
	idx = rtnl_link_get_ifindex(l);
	rtnl_link_put(l);
	if (!mine) {
		*theirs = true;
		return 0;
	}
	r = now ? link_del(&pn->node, idx) : link_down(&pn->node, idx);
	return r == -ENODEV ? 0 : r; /* ENODEV: its namespace took it meanwhile */
}

static int netns_remove(const char *path)
{
	int i = 0;

	/* Every mount stacked there, should an add have raced another. */
	while (!umount2(path, MNT_DETACH))
		if (++i == 16)
			return -EBUSY;
	if (errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Deleting a link waits for RCU grace periods in the kernel (20-40 ms here),
 * most of a pod's teardown if done in line.  A pod with a live namespace
 * has its host veth set down instead, which cuts it off the bridge at once,
 * and the kernel deletes the pair when the unmounted namespace dies, on its
 * own time and in batches.  A veth whose namespace is gone already (left by
 * a crash, or the namespace still held by some process) is deleted here. */
static int teardown(struct podnet *pn, const char *id, const char *host, const char *path,
		    struct svc_err *e)
{
	bool theirs, live = ns_mounted(path);
	int r;

	if ((r = veth_retire(pn, id, host, !live, &theirs)))
		return svc_errf(e, -r, "%s veth %s of %s: %s", live ? "setting down" : "deleting",
				host, id, strerror(-r));
	if ((r = netns_remove(path)))
		return svc_errf(e, -r, "removing network namespace %s: %s", path, strerror(-r));
	return 0;
}

int podnet_del(struct podnet *pn, const char *id, struct svc_err *e)
{
	char path[PATH_MAX], host[IFNAMSIZ];
	int r;

	if ((r = podnet_netns_path(pn, id, path, sizeof(path))))
		return svc_errf(e, -r, "pod network: invalid pod id \"%.64s\"", id);
	podnet_veth_name(id, host);
	return teardown(pn, id, host, path, e);
}

/* --- one pod: checking what exists -------------------------------------------- */

struct addr_find {
	int ifindex;
	struct in_addr ip;
	int prefix;
};

static void first_v4(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct addr_find *f = arg;
	struct nl_addr *local = rtnl_addr_get_local(a);

	if (f->ip.s_addr || rtnl_addr_get_family(a) != AF_INET ||
	    rtnl_addr_get_ifindex(a) != f->ifindex || !local || nl_addr_get_len(local) != 4)
		return;
	memcpy(&f->ip, nl_addr_get_binary_addr(local), 4);
	f->prefix = rtnl_addr_get_prefixlen(a);
}

/* The first IPv4 address of ifindex, 0 when none. */
static int pod_addr(struct nlk *k, int ifindex, struct addr_find *f)
{
	struct nl_cache *c = NULL;
	int r = kerr(k, rtnl_addr_alloc_cache(k->sk, &c));

	*f = (struct addr_find){.ifindex = ifindex};
	if (!r) {
		nl_cache_foreach(c, first_v4, f);
		nl_cache_free(c);
	}
	return r;
}

struct gw_find {
	struct in_addr gw;
	bool found;
};

static void default_via(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct nl_addr *dst = rtnl_route_get_dst(rt), *via;
	struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, 0);
	struct gw_find *f = arg;

	if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || (dst && nl_addr_get_prefixlen(dst)) ||
	    !nh || !(via = rtnl_route_nh_get_gateway(nh)) || nl_addr_get_len(via) != 4)
		return;
	f->found |= !memcmp(nl_addr_get_binary_addr(via), &f->gw, 4);
}

/* The index of a link, or -errno; *up tells whether it is up. */
static int link_index(struct nlk *k, int ifindex, const char *name, bool *up)
{
	struct rtnl_link *l = NULL;
	int r = kerr(k, rtnl_link_get_kernel(k->sk, ifindex, name, &l));

	if (r)
		return r;
	*up = rtnl_link_get_flags(l) & IFF_UP;
	r = rtnl_link_get_ifindex(l);
	rtnl_link_put(l);
	return r;
}

/* Inside the pod: lo and eth0 up, eth0 with ip, the default route. */
static bool pod_inside_ok(struct podnet *pn, struct nlk *k, struct in_addr ip)
{
	struct gw_find g = {.gw = pn->gw};
	struct addr_find a;
	struct nl_cache *c = NULL;
	bool up = false, lo_up = false;
	int idx = link_index(k, 0, POD_IF, &up);

	if (idx <= 0 || !up || link_index(k, LOOPBACK_INDEX, NULL, &lo_up) <= 0 || !lo_up ||
	    pod_addr(k, idx, &a) || a.ip.s_addr != ip.s_addr || a.prefix != pn->pod_prefix)
		return false;
	if (kerr(k, rtnl_route_alloc_cache(k->sk, AF_INET, 0, &c)))
		return false;
	nl_cache_foreach(c, default_via, &g);
	nl_cache_free(c);
	return g.found;
}

/* Whether pod id is wired as podnet_add would wire it.  The alias is set in
 * the same request as hairpin mode, so it stands for both. */
static bool pod_complete(struct podnet *pn, const char *id, const char *host, const char *path,
			 struct in_addr ip)
{
	struct rtnl_link *l = NULL;
	struct nlk k;
	bool ok;

	if (!ns_mounted(path) || kerr(&pn->node, rtnl_link_get_kernel(pn->node.sk, 0, host, &l)))
		return false;
	ok = rtnl_link_get_ifalias(l) && veth_is_mine(pn, l, id) &&
	     rtnl_link_get_master(l) == pn->br_index && (rtnl_link_get_flags(l) & IFF_UP);
	rtnl_link_put(l);
	if (!ok || nlk_open_in(&k, path))
		return false;
	ok = pod_inside_ok(pn, &k, ip);
	nlk_close(&k);
	return ok;
}

/* --- one pod: wiring ------------------------------------------------------------ */

/* The namespace of a pod, pinned by a bind mount on path, and a socket k
 * inside it, opened while the thread is still there.  The thread is back in
 * its own namespace on return, error or not. */
static int netns_pin(const char *path, int *nsfd, struct nlk *k, const char **step)
{
	*step = "bind-mounting it";
	if (mount(SELF_NS, path, "none", MS_BIND, NULL))
		return errno;
	*step = "opening it";
	if ((*nsfd = open(SELF_NS, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	*step = "opening a netlink socket in it";
	return -nlk_open(k);
}

static int netns_create(const char *path, int *nsfd, struct nlk *k, struct svc_err *e)
{
	const char *step = "opening the current namespace";
	int self = open(SELF_NS, O_RDONLY | O_CLOEXEC), fd, r;

	if (self < 0) {
		r = errno;
	} else if ((fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444)) < 0) {
		r = errno;
		step = "creating the file";
	} else {
		close(fd);
		step = "unshare";
		r = unshare(CLONE_NEWNET) ? errno : netns_pin(path, nsfd, k, &step);
		if (setns(self, CLONE_NEWNET)) {
			r = errno;
			step = "returning to the node's namespace";
		}
	}
	if (self >= 0)
		close(self);
	return r ? svc_errf(e, r, "creating network namespace %s: %s: %s", path, step, strerror(r))
		 : 0;
}

/* The veth pair: the host end on the bridge and up, the pod end created in
 * the pod's namespace as eth0.  Not up: the kernel refuses (ENOTCONN) to
 * bring a veth's peer up in the request that creates it. */
static int veth_create(struct podnet *pn, const char *host, int nsfd)
{
	struct rtnl_link *l = rtnl_link_veth_alloc(), *peer;
	int r;

	if (!l)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, host);
	rtnl_link_set_master(l, pn->br_index);
	rtnl_link_set_mtu(l, (unsigned)pn->mtu);
	rtnl_link_set_flags(l, IFF_UP);
	rtnl_link_set_name(peer, POD_IF);
	rtnl_link_set_mtu(peer, (unsigned)pn->mtu);
	rtnl_link_set_ns_fd(peer, nsfd);
	rtnl_link_put(peer);
	r = kerr(&pn->node, rtnl_link_add(pn->node.sk, l, NLM_F_CREATE | NLM_F_EXCL));
	rtnl_link_put(l);
	return r;
}

/* The kernel takes neither an alias nor bridge-port options when it creates
 * a link, so both follow in one request: alias "svcd:<id>", hairpin on. */
static int port_setup(struct podnet *pn, const char *host, const char *id)
{
	struct nl_msg *m = link_msg(0, host, false, 0);
	struct nlattr *info, *data;
	char alias[sizeof(ALIAS_PREFIX) + ID_MAX];

	snprintf(alias, sizeof(alias), ALIAS_PREFIX "%s", id);
	if (m && (nla_put_string(m, IFLA_IFALIAS, alias) < 0 ||
		  !(info = nla_nest_start(m, IFLA_LINKINFO)) ||
		  nla_put_string(m, IFLA_INFO_SLAVE_KIND, "bridge") < 0 ||
		  !(data = nla_nest_start(m, IFLA_INFO_SLAVE_DATA)) ||
		  nla_put_u8(m, IFLA_BRPORT_MODE, 1) < 0 || nla_nest_end(m, data) < 0 ||
		  nla_nest_end(m, info) < 0)) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlk_talk(&pn->node, m);
}

static int veth_setup(struct podnet *pn, const char *id, const char *host, int nsfd,
		      struct svc_err *e)
{
	bool theirs;
	int r = veth_create(pn, host, nsfd);

	/* A veth of that name left by an add or a daemon that died, or by a
	 * namespace not dead yet: delete it and try again. */
	if (r == -EEXIST && !veth_retire(pn, id, host, true, &theirs) && !theirs)
		r = veth_create(pn, host, nsfd);
	if (r == -EEXIST && theirs)
		return svc_errf(e, EEXIST, "creating veth %s for %s: the name is another pod's",
				host, id);
	if (r)
		return svc_errf(e, -r, "creating veth %s for %s: %s", host, id, strerror(-r));
	if ((r = port_setup(pn, host, id)))
		return svc_errf(e, -r, "setting alias and hairpin mode on %s for %s: %s", host, id,
				strerror(-r));
	return 0;
}

/* Inside the pod, through its own socket: lo and eth0 up, eth0's address,
 * the default route via the bridge. */
static int pod_setup(struct podnet *pn, struct nlk *k, const char *id, struct in_addr ip,
		     struct svc_err *e)
{
	char a[INET_ADDRSTRLEN];
	bool up;
	int idx = link_index(k, 0, POD_IF, &up), r;

	if (idx < 0)
		return svc_errf(e, -idx, "finding eth0 of %s: %s", id, strerror(-idx));
	if ((r = nlk_talk(k, link_msg(LOOPBACK_INDEX, NULL, true, 0))))
		return svc_errf(e, -r, "setting lo of %s up: %s", id, strerror(-r));
	if ((r = nlk_talk(k, link_msg(idx, NULL, true, 0))))
		return svc_errf(e, -r, "setting eth0 of %s up: %s", id, strerror(-r));
	if ((r = addr_add(k, idx, ip, pn->pod_prefix, false)))
		return svc_errf(e, -r, "adding %s/%d to eth0 of %s: %s", ip_str(ip, a),
				pn->pod_prefix, id, strerror(-r));
	if ((r = route_add_default(k, idx, pn->gw)))
		return svc_errf(e, -r, "adding the default route via %s in %s: %s",
				ip_str(pn->gw, a), id, strerror(-r));
	return 0;
}

static int wire(struct podnet *pn, const char *id, const char *host, const char *path,
		struct in_addr ip, struct svc_err *e)
{
	struct nlk k = {0};
	int nsfd = -1, r;

	if ((r = netns_create(path, &nsfd, &k, e)) == 0 &&
	    (r = veth_setup(pn, id, host, nsfd, e)) == 0)
		r = pod_setup(pn, &k, id, ip, e);
	if (nsfd >= 0)
		close(nsfd);
	if (k.sk)
		nlk_close(&k);
	return r;
}

int podnet_add(struct podnet *pn, const char *id, struct in_addr ip, struct svc_err *e)
{
	char path[PATH_MAX], host[IFNAMSIZ];
	struct svc_err e2;
	int r;

	if ((r = podnet_netns_path(pn, id, path, sizeof(path))))
		return svc_errf(e, -r, "pod network: invalid pod id \"%.64s\"", id);
	podnet_veth_name(id, host);
	if (!access(path, F_OK)) {
		if (pod_complete(pn, id, host, path, ip))
			return 0;
		if ((r = teardown(pn, id, host, path, e)))
			return svc_err_ctx(e, "redoing pod %s", id);
	}
	if ((r = wire(pn, id, host, path, ip, e)) && teardown(pn, id, host, path, &e2)) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, " (and left parts behind: %s)", e2.msg);
	}
	return r;
}

/* --- what exists ---------------------------------------------------------------- */

struct plist {
	struct podnet_entry *v;
	size_t n, cap;
};

static struct podnet_entry *plist_get(struct plist *pl, const char *id)
{
	for (size_t i = 0; i < pl->n; i++)
		if (!strcmp(pl->v[i].id, id))
			return &pl->v[i];
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 32;
		struct podnet_entry *v = realloc(pl->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		pl->v = v;
		pl->cap = cap;
	}
	pl->v[pl->n] = (struct podnet_entry){0};
	snprintf(pl->v[pl->n].id, sizeof(pl->v[pl->n].id), "%s", id);
	return &pl->v[pl->n++];
}

static int list_netns(struct podnet *pn, struct plist *pl, struct svc_err *e)
{
	DIR *d = opendir(pn->netns_dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return errno == ENOENT
			   ? 0
			   : svc_errf(e, errno, "reading %s: %s", pn->netns_dir, strerror(errno));
	while ((de = readdir(d))) {
		struct podnet_entry *ent;
		if (strncmp(de->d_name, PODNET_ID_PREFIX, strlen(PODNET_ID_PREFIX)) ||
		    podnet_netns_path(pn, de->d_name, path, sizeof(path)))
			continue;
		if (!(ent = plist_get(pl, de->d_name))) {
			closedir(d);
			return svc_errf(e, ENOMEM, "out of memory");
		}
		ent->has_netns = ns_mounted(path);
	}
	closedir(d);
	return 0;
}

struct veth_walk {
	struct plist *pl;
	int err;
};

static void veth_seen(struct nl_object *obj, void *arg)
{
	const char *alias = rtnl_link_get_ifalias((struct rtnl_link *)obj);
	struct veth_walk *w = arg;
	struct podnet_entry *ent;

	if (!alias || strncmp(alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) ||
	    !id_valid(alias + strlen(ALIAS_PREFIX)))
		return;
	if (!(ent = plist_get(w->pl, alias + strlen(ALIAS_PREFIX))))
		w->err = ENOMEM;
	else
		ent->has_veth = true;
}

static int list_veths(struct podnet *pn, struct plist *pl, struct svc_err *e)
{
	struct veth_walk w = {.pl = pl};
	struct nl_cache *c = NULL;
	int r;

	/* A dump changed under way is retried; it happens when links come and go. */
	for (int i = 0; (r = kerr(&pn->node, rtnl_link_alloc_cache(pn->node.sk, AF_UNSPEC, &c))) &&
			r == -EINTR && i < 5;
	     i++)
		;
	if (r)
		return svc_errf(e, -r, "listing links: %s", strerror(-r));
	nl_cache_foreach(c, veth_seen, &w);
	nl_cache_free(c);
	return w.err ? svc_errf(e, w.err, "out of memory") : 0;
}

int podnet_list(struct podnet *pn, podnet_entry_fn fn, void *ctx, struct svc_err *e)
{
	struct plist pl = {0};
	int r;

	if ((r = list_netns(pn, &pl, e)) == 0 && (r = list_veths(pn, &pl, e)) == 0)
		for (size_t i = 0; i < pl.n && !r; i++)
			r = fn(&pl.v[i], ctx);
	free(pl.v);
	return r;
}

/* --- clean-up ------------------------------------------------------------------- */

struct ports {
	int master, live;
	int *retired; /* svcd veths set down by podnet_del, their namespace not dead yet */
	size_t nretired, cap;
};

static void count_port(struct nl_object *obj, void *arg)
{
	struct rtnl_link *l = (struct rtnl_link *)obj;
	const char *alias = rtnl_link_get_ifalias(l);
	struct ports *p = arg;

	if (rtnl_link_get_master(l) != p->master)
		return;
	if ((rtnl_link_get_flags(l) & IFF_UP) || !alias ||
	    strncmp(alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX))) {
		p->live++;
		return;
	}
	if (p->nretired == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		int *v = realloc(p->retired, cap * sizeof(*v));
		if (!v) {
			p->live++; /* not deleted, so the bridge stays: safe */
			return;
		}
		p->retired = v;
		p->cap = cap;
	}
	p->retired[p->nretired++] = rtnl_link_get_ifindex(l);
}

/* The bridge's ports: retired svcd veths are deleted, the others counted. */
static int bridge_ports(struct nlk *k, int master, const char *name, struct svc_err *e)
{
	struct ports p = {.master = master};
	struct nl_cache *c = NULL;
	int r = kerr(k, rtnl_link_alloc_cache(k->sk, AF_UNSPEC, &c));

	if (r)
		return svc_errf(e, -r, "listing the ports of %s: %s", name, strerror(-r));
	nl_cache_foreach(c, count_port, &p);
	nl_cache_free(c);
	for (size_t i = 0; i < p.nretired && !r; i++)
		if ((r = link_del(k, p.retired[i])) == -ENODEV)
			r = 0;
	free(p.retired);
	if (r)
		return svc_errf(e, -r, "deleting a retired port of %s: %s", name, strerror(-r));
	return p.live;
}

/* Delete the bridge when it is ours to delete: a bridge with no port. */
static int bridge_remove(struct nlk *k, const char *name, struct svc_err *e)
{
	struct rtnl_link *l = NULL;
	const char *kind;
	int r = kerr(k, rtnl_link_get_kernel(k->sk, 0, name, &l)), idx;

	if (r)
		return r == -ENODEV
			   ? 0
			   : svc_errf(e, -r, "looking up bridge %s: %s", name, strerror(-r));
	kind = rtnl_link_get_type(l);
	idx = kind && !strcmp(kind, "bridge") ? rtnl_link_get_ifindex(l) : 0;
	rtnl_link_put(l);
	if (!idx || (r = bridge_ports(k, idx, name, e)))
		return r < 0 ? r : 0;
	if ((r = link_del(k, idx)) && r != -ENODEV)
		return svc_errf(e, -r, "deleting bridge %s: %s", name, strerror(-r));
	return 0;
}

int podnet_cleanup(const struct podnet_config *cfg, struct svc_err *e)
{
	const char *table = cfg->masq_table && cfg->masq_table[0] ? cfg->masq_table : "svcd-pods";
	struct nlk k;
	int r;

	if ((r = nft_cleanup(table, e)))
		return svc_err_ctx(e, "removing table %s", table);
	if ((r = nlk_open(&k)))
		return svc_errf(e, -r, "route netlink socket: %s", strerror(-r));
	r = bridge_remove(&k, cfg->bridge ? cfg->bridge : "svcd0", e);
	nlk_close(&k);
	return r;
}
