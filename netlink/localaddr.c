// SPDX-License-Identifier: MIT
/* Host addresses on lo over rtnetlink (libnl-route-3). */
#include "localaddr.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>

#define LOOPBACK_INDEX 1 /* lo is always index 1 of its namespace */

/* One request: add (or delete) ip/32 (/128) on lo.  Returns libnl's code. */
static int lo_addr_op(const char *ip, const char *label, bool add, struct svc_err *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = NULL;
	int r;

	if (!sk || !a) {
		r = -NLE_NOMEM;
		goto out;
	}
	if ((r = nl_addr_parse(ip, AF_UNSPEC, &local)) < 0) {
		svc_errf(e, EINVAL, "\"%s\" is not an IP address", ip);
		goto out;
	}
	nl_addr_set_prefixlen(local, nl_addr_get_family(local) == AF_INET ? 32 : 128);
	rtnl_addr_set_ifindex(a, LOOPBACK_INDEX);
	rtnl_addr_set_family(a, nl_addr_get_family(local));
	if (label && add && nl_addr_get_family(local) == AF_INET) /* IPv6 has none */
		rtnl_addr_set_label(a, label);
	if ((r = rtnl_addr_set_local(a, local)) < 0 || (r = nl_connect(sk, NETLINK_ROUTE)) < 0)
		goto out;
	r = add ? rtnl_addr_add(sk, a, 0) : rtnl_addr_delete(sk, a, 0);
out:
	nl_addr_put(local);
	rtnl_addr_put(a);
	nl_socket_free(sk);
	return r;
}

int localaddr_add_label(const char *ip, const char *label, bool *added, struct svc_err *e)
{
	int r = lo_addr_op(ip, label, true, e);

	if (added)
		*added = r >= 0;
	if (r >= 0 || r == -NLE_EXIST)
		return 0;
	if (e->code)
		return -e->code;
	return svc_errf(e, EIO, "adding %s to lo: %s", ip, nl_geterror(r));
}

int localaddr_del(const char *ip, struct svc_err *e)
{
	int r = lo_addr_op(ip, NULL, false, e);

	/* EADDRNOTAVAIL from the kernel becomes NLE_NOADDR. */
	if (r >= 0 || r == -NLE_NOADDR || r == -NLE_OBJ_NOTFOUND)
		return 0;
	if (e->code)
		return -e->code;
	return svc_errf(e, EIO, "removing %s from lo: %s", ip, nl_geterror(r));
}

int localaddr_add(const char *ip, struct svc_err *e)
{
	return localaddr_add_label(ip, NULL, NULL, e);
}

struct flush {
	struct nl_sock *sk;
	const char *label;
	int err;
};

static void flush_one(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct flush *f = arg;
	const char *l = rtnl_addr_get_label(a);
	int r;

	if (rtnl_addr_get_ifindex(a) != LOOPBACK_INDEX || !l || strcmp(l, f->label))
		return;
	if ((r = rtnl_addr_delete(f->sk, a, 0)) < 0 && r != -NLE_NOADDR && !f->err)
		f->err = r;
}

int localaddr_flush_label(const char *label, struct svc_err *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	struct flush f = {.sk = sk, .label = label};
	int r;

	if (!sk)
		return svc_errf(e, ENOMEM, "out of memory");
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0 ||
	    (r = rtnl_addr_alloc_cache(sk, &cache)) < 0) {
		nl_socket_free(sk);
		return svc_errf(e, EIO, "listing the addresses of lo: %s", nl_geterror(r));
	}
	nl_cache_foreach(cache, flush_one, &f);
	nl_cache_free(cache);
	nl_socket_free(sk);
	if (f.err)
		return svc_errf(e, EIO, "removing the addresses labelled %s from lo: %s", label,
				nl_geterror(f.err));
	return 0;
}
