/* SPDX-License-Identifier: MIT */
/* Pod networking, as the CNI bridge plugin does it, through libnl-route-3:
 * a node bridge holding the gateway address of the pod CIDR, and per pod a
 * network namespace wired to it by a veth pair.  Kernel details stay here.
 *
 * A pod's network namespace is a file `<netns_dir>/<id>` (a bind mount of
 * the namespace, as `ip netns add` makes them; with the default netns_dir
 * /run/netns, `ip netns exec <id>` enters it).  Its host-side veth is named
 * "veth" + 8 hex digits derived from the id and carries the alias
 * "svcd:<id>", so that a leaked veth can be traced to its pod after a crash.
 * Every function leaves the calling thread in the network namespace it was
 * called in.
 *
 * Ids: the daemon names namespaces PODNET_ID_PREFIX + something unique
 * ("svcd-<pod uid>"); podnet_list takes every file of netns_dir whose name
 * starts with that prefix to be svcd's, and no other (`ip netns add`'s own
 * namespaces in /run/netns are never listed). */
#ifndef SVCD_PODNET_H
#define SVCD_PODNET_H
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct svc_err;

#define PODNET_ID_PREFIX "svcd-"

/* NULL strings take the defaults shown. */
struct podnet_config {
	const char *bridge;	    /* "svcd0" */
	struct in_addr pod_net;	    /* network of the node's pod CIDR, 10.244.0.0 */
	int pod_prefix;		    /* 24 */
	struct in_addr cluster_net; /* 10.244.0.0 */
	int cluster_prefix;	    /* 16 */
	const char *netns_dir;	    /* "/run/netns" */
	const char *masq_table;	    /* nft table (ip family) for masquerading, "svcd-pods" */
	int mtu;		    /* 0: from the uplink (the default route's device), else 1500 */
};

struct podnet;

/* Set the node up (idempotent): the bridge (created if missing, up, MTU),
 * the gateway address (first host of the pod CIDR) on it, IPv4 forwarding,
 * bridge-nf-call-iptables so that service traffic between pods on the bridge
 * is un-NATed, and the masquerade table: pod traffic from the cluster CIDR
 * to outside it is masqueraded, except when it leaves through the bridge. */
int podnet_open(const struct podnet_config *cfg, struct podnet **out, struct svc_err *e);
void podnet_close(struct podnet *pn);
/* The gateway, first address of the pod CIDR. */
struct in_addr podnet_gateway(const struct podnet *pn);

/* Wire pod `id` (1-63 characters of [a-zA-Z0-9_.-], not . or ..; the daemon's
 * "svcd-<uid>" takes 41): create the namespace
 * file, a veth pair whose host end joins the bridge with hairpin on and whose
 * pod end is eth0 with `ip`/pod_prefix, lo up, default route via the
 * gateway.  Idempotent: an existing, complete set-up for the same id and ip
 * is kept; a partial one is torn down and redone.  On failure nothing of it
 * is left. */
int podnet_add(struct podnet *pn, const char *id, struct in_addr ip, struct svc_err *e);
/* Take pod `id` off the network and remove its namespace; what is already
 * gone is not an error.  The host veth is set down (nothing passes once this
 * returns) and the namespace file unmounted and removed; the kernel deletes
 * the veth pair when the namespace dies, shortly after, since deleting a
 * link in line costs 20-40 ms of RCU waits.  A veth whose namespace file is
 * gone already is deleted in line. */
int podnet_del(struct podnet *pn, const char *id, struct svc_err *e);
/* Path of the namespace file of `id` (for setns and for svcrun --netns). */
int podnet_netns_path(const struct podnet *pn, const char *id, char *buf, size_t n);
/* Name of the host-side veth of `id`: "veth" + 8 hex digits of a hash of id.
 * Two ids may share one (1 in 2^32); the second pod's add then fails. */
void podnet_veth_name(const char *id, char out[static IFNAMSIZ]);

/* What exists: each svcd namespace file in netns_dir (name starting with
 * PODNET_ID_PREFIX; has_netns when it is a live namespace, not a file left
 * unmounted) and each veth on the node whose alias starts with "svcd:", for
 * the start-up reconciliation: one entry per id.  The callback returns 0 to go on; anything else
 * stops the walk and is returned. */
struct podnet_entry {
	char id[64];
	bool has_netns;
	bool has_veth;
};
typedef int (*podnet_entry_fn)(const struct podnet_entry *ent, void *ctx);
int podnet_list(struct podnet *pn, podnet_entry_fn fn, void *ctx, struct svc_err *e);

/* `svcd --cleanup`: remove the masquerade table and the bridge (when no
 * port is left on it but veths of deleted pods, which go first).  Needs no
 * podnet_open. */
int podnet_cleanup(const struct podnet_config *cfg, struct svc_err *e);
#endif
