/* SPDX-License-Identifier: MIT */
/* Internal to netlink/: the sets and chains of svcd's nftables table. */
#ifndef SVCD_NFTRULES_H
#define SVCD_NFTRULES_H

#include <stdbool.h>
#include <stdint.h>

#include "nftmsg.h"

enum nft_set_id {
	SET_CLUSTER_IPS,     /* ClusterIPs: what is not DNATed is rejected */
	SET_ENDPOINTS,	     /* addr . proto . port . slot : endpoint addr . port */
	SET_NP_ENDPOINTS,    /* proto . nodePort . slot : endpoint addr . port */
	SET_NO_ENDPOINTS,    /* external addr . proto . port with no endpoint: reject */
	SET_NO_EP_NODEPORTS, /* proto . port with no endpoint: reject */
	SET_DROP_LOCAL,	     /* addr . proto . port, policy Local, no local endpoint */
	SET_NP_DROP_LOCAL,   /* proto . port, the same for nodePorts */
	SET_HAIRPIN,	     /* endpoint . endpoint: a pod reaching itself */
	SET_EXT_MASQ,	     /* external addr . proto . port, policy Cluster */
	SET_NODEPORT_MASQ,   /* proto . port, policy Cluster */
	SET_AFFINITY,	     /* dynamic: client . addr . proto . port : endpoint . port */
	SET_COUNT,
	SET_MANAGED = SET_AFFINITY, /* sets below this one are diffed by svcd */
};

struct nft_set_def {
	const char *name;
	uint8_t klen, dlen; /* bytes; dlen 0 for sets, 0 with verdict for vmaps */
	uint32_t ktype, dtype;
	bool vmap, dynamic;
};
extern const struct nft_set_def nft_sets[SET_COUNT];

/* Besides the fixed sets and chains, "shapes", shared by every service
 * port of that shape: load balancing over n endpoints (keyed by address or
 * by nodePort, with or without ClientIP affinity) has a chain and a set of
 * the service keys that use it, "svc-<chain>"; an affinity timeout has a
 * set "rec-<seconds>" (or "np-rec-<seconds>") of the keys it records.  Sets
 * rather than verdict maps: the kernel re-validates every goto element of
 * a verdict map on each commit that adds one, which made a change cost
 * grow with the number of services. */
enum lb_kind { LB_ADDR, LB_NODEPORT, LB_RECORD, LB_NP_RECORD };
struct lb_shape {
	enum lb_kind kind;
	uint32_t n;	  /* endpoints */
	bool affinity;	  /* look up the client's endpoint first */
	uint32_t timeout; /* records: affinity seconds */
};
bool lb_is_record(const struct lb_shape *s);
bool lb_by_nodeport(const struct lb_shape *s);
void lb_chain_name(const struct lb_shape *s, char out[static 32]); /* lb kinds */
void lb_set_name(const struct lb_shape *s, char out[static 32]);
bool lb_set_parse(const char *name, struct lb_shape *s);
bool lb_chain_parse(const char *name, struct lb_shape *s);

struct nft_fixed_chain {
	const char *name;
	const char *type; /* NULL for a regular chain */
	uint32_t hook;
	int prio;
};
extern const struct nft_fixed_chain nft_fixed_chains[];
extern const unsigned nft_nfixed;

struct nft_rule_ctx {
	const char *table;
	uint32_t cluster_net, cluster_mask; /* network order; mask 0: no cluster CIDR */
};

/* Add to t: a NEWSET for set i; a NEWCHAIN; the rules of a chain. */
void nft_put_table(struct nft_txn *t, const char *table, bool create);
void nft_put_set(struct nft_txn *t, const char *table, enum nft_set_id i);
void nft_put_shape_set(struct nft_txn *t, const char *table, const struct lb_shape *s, bool create);
/* The rule sending a shape's keys to it, appended to dispatch or affinity-record. */
void nft_put_shape_rule(struct nft_txn *t, const struct nft_rule_ctx *c, const struct lb_shape *s);
void nft_put_chain(struct nft_txn *t, const char *table, const char *name,
		   const struct nft_fixed_chain *fixed);
void nft_put_chain_del(struct nft_txn *t, const char *table, const char *name);
void nft_put_flush(struct nft_txn *t, const char *table, const char *chain);
/* The rules of a chain, and how many there are. */
void nft_put_rules(struct nft_txn *t, const struct nft_rule_ctx *c, const char *chain);
unsigned nft_rule_count(const struct nft_rule_ctx *c, const char *chain);

#endif
