// SPDX-License-Identifier: MIT
/* The shape of svcd's table.  Few chains, many map elements: a service is
 * a handful of elements, never a chain of its own, so a change costs the
 * same whether 10 or 30,000 services are loaded.  Load-balancing chains
 * are shared by every service with the same endpoint count (and affinity
 * timeout) and pick an endpoint with `numgen random mod N`. */
#include "nftrules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <libnftnl/common.h>

/* nft's datatype numbers, so that `nft list table` shows typed keys. */
enum { T_VERDICT = 1, T_IPADDR = 7, T_PROTO = 12, T_SERVICE = 13, T_MARK = 19 };
#define C2(a, b)       (((a) << 6) | (b))
#define C3(a, b, c)    ((C2(a, b) << 6) | (c))
#define C4(a, b, c, d) ((C3(a, b, c) << 6) | (d))
#define MASQ_MARK      0x4000u

const struct nft_set_def nft_sets[SET_COUNT] = {
    [SET_CLUSTER_IPS] = {"cluster-ips", 4, 0, T_IPADDR, 0, false, false},
    [SET_ENDPOINTS] = {"endpoints", 16, 8, C4(T_IPADDR, T_PROTO, T_SERVICE, T_MARK),
		       C2(T_IPADDR, T_SERVICE), false, false},
    [SET_NP_ENDPOINTS] = {"nodeport-endpoints", 12, 8, C3(T_PROTO, T_SERVICE, T_MARK),
			  C2(T_IPADDR, T_SERVICE), false, false},
    [SET_NO_ENDPOINTS] = {"no-endpoint-services", 12, 0, C3(T_IPADDR, T_PROTO, T_SERVICE), 0, false,
			  false},
    [SET_NO_EP_NODEPORTS] = {"no-endpoint-nodeports", 8, 0, C2(T_PROTO, T_SERVICE), 0, false,
			     false},
    [SET_DROP_LOCAL] = {"no-local-endpoint-services", 12, 0, C3(T_IPADDR, T_PROTO, T_SERVICE), 0,
			false, false},
    [SET_NP_DROP_LOCAL] = {"no-local-endpoint-nodeports", 8, 0, C2(T_PROTO, T_SERVICE), 0, false,
			   false},
    [SET_HAIRPIN] = {"hairpin", 8, 0, C2(T_IPADDR, T_IPADDR), 0, false, false},
    [SET_EXT_MASQ] = {"external-masquerade", 12, 0, C3(T_IPADDR, T_PROTO, T_SERVICE), 0, false,
		      false},
    [SET_NODEPORT_MASQ] = {"nodeport-masquerade", 8, 0, C2(T_PROTO, T_SERVICE), 0, false, false},
    [SET_AFFINITY] = {"affinity", 16, 8, C4(T_IPADDR, T_IPADDR, T_PROTO, T_SERVICE),
		      C2(T_IPADDR, T_SERVICE), false, true},
};

/* Filter chains run after dstnat: whatever still goes to a service address
 * was not load-balanced, and is refused at once rather than blackholed. */
const struct nft_fixed_chain nft_fixed_chains[] = {
    {"nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100},
    {"nat-output", "nat", NF_INET_LOCAL_OUT, -100},
    {"nat-postrouting", "nat", NF_INET_POST_ROUTING, 100},
    {"filter-prerouting", "filter", NF_INET_PRE_ROUTING, -90},
    {"filter-output", "filter", NF_INET_LOCAL_OUT, -90},
    {"services", NULL, 0, 0},
    {"reject-check", NULL, 0, 0},
    {"dispatch", NULL, 0, 0},
    {"affinity-record", NULL, 0, 0},
};
const unsigned nft_nfixed = sizeof(nft_fixed_chains) / sizeof(nft_fixed_chains[0]);

bool lb_is_record(const struct lb_shape *s)
{
	return s->kind == LB_RECORD || s->kind == LB_NP_RECORD;
}

bool lb_by_nodeport(const struct lb_shape *s)
{
	return s->kind == LB_NODEPORT || s->kind == LB_NP_RECORD;
}

void lb_chain_name(const struct lb_shape *s, char out[static 32])
{
	snprintf(out, 32, "%s%slb-%u", s->kind == LB_NODEPORT ? "np-" : "",
		 s->affinity ? "affinity-" : "", s->n);
}

void lb_set_name(const struct lb_shape *s, char out[static 32])
{
	char chain[32];

	if (lb_is_record(s)) {
		snprintf(out, 32, "%srec-%u", s->kind == LB_NP_RECORD ? "np-" : "", s->timeout);
		return;
	}
	lb_chain_name(s, chain);
	snprintf(out, 32, "svc-%s", chain);
}

bool lb_chain_parse(const char *name, struct lb_shape *s)
{
	const char *orig = name;
	char tail;

	memset(s, 0, sizeof(*s));
	if (!strncmp(name, "np-", 3)) {
		s->kind = LB_NODEPORT;
		name += 3;
	}
	if (!strncmp(name, "affinity-", 9)) {
		s->affinity = true;
		name += 9;
	}
	if (sscanf(name, "lb-%u%c", &s->n, &tail) != 1 || !s->n)
		return false;
	/* Exactly the name svcd would give it: "lb-02" is someone else's. */
	char again[32];
	lb_chain_name(s, again);
	return !strcmp(again, orig);
}

bool lb_set_parse(const char *name, struct lb_shape *s)
{
	const char *orig = name;
	char tail;

	memset(s, 0, sizeof(*s));
	if (!strncmp(name, "svc-", 4))
		return lb_chain_parse(name + 4, s);
	s->kind = strncmp(name, "np-", 3) ? LB_RECORD : LB_NP_RECORD;
	if (s->kind == LB_NP_RECORD)
		name += 3;
	if (sscanf(name, "rec-%u%c", &s->timeout, &tail) != 1 || !s->timeout)
		return false;
	char again[32];
	lb_set_name(s, again);
	return !strcmp(again, orig);
}

/* --- messages ---------------------------------------------------------------- */

void nft_put_table(struct nft_txn *t, const char *table, bool create)
{
	struct nftnl_table *tb = nftnl_table_alloc();
	struct nlmsghdr *nlh =
	    nft_txn_msg(t, create ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE, NFPROTO_IPV4, 0,
			create ? "creating table" : "deleting table");

	if (!tb || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_table_free(tb);
		return;
	}
	nftnl_table_set_str(tb, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(nlh, tb);
	nftnl_table_free(tb);
	nft_txn_done(t);
}

void nft_put_shape_set(struct nft_txn *t, const char *table, const struct lb_shape *sh, bool create)
{
	struct nftnl_set *s = nftnl_set_alloc();
	bool np = lb_by_nodeport(sh);
	char name[32], what[64];
	struct nlmsghdr *nlh;

	lb_set_name(sh, name);
	snprintf(what, sizeof(what), "%s set %s", create ? "creating" : "deleting", name);
	nlh = nft_txn_msg(t, create ? NFT_MSG_NEWSET : NFT_MSG_DELSET, NFPROTO_IPV4,
			  create ? NLM_F_CREATE : 0, what);
	if (!s || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_set_free(s);
		return;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	if (create) {
		/* The kernel wants a transaction-unique id for a new set. */
		nftnl_set_set_u32(s, NFTNL_SET_ID, ++t->set_ids + SET_COUNT);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, np ? 8 : 12);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  np ? C2(T_PROTO, T_SERVICE) : C3(T_IPADDR, T_PROTO, T_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	}
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	nft_txn_done(t);
}

void nft_put_set(struct nft_txn *t, const char *table, enum nft_set_id i)
{
	const struct nft_set_def *d = &nft_sets[i];
	struct nftnl_set *s = nftnl_set_alloc();
	char what[64];
	struct nlmsghdr *nlh;
	uint32_t flags = 0;

	snprintf(what, sizeof(what), "creating set %s", d->name);
	nlh = nft_txn_msg(t, NFT_MSG_NEWSET, NFPROTO_IPV4, NLM_F_CREATE, what);
	if (!s || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_set_free(s);
		return;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->klen);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->ktype);
	nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)i + 1);
	if (d->vmap || d->dlen) {
		flags |= NFT_SET_MAP;
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->vmap ? NFT_DATA_VERDICT : d->dtype);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->vmap ? 0 : d->dlen);
	}
	if (d->dynamic) {
		flags |= NFT_SET_TIMEOUT | NFT_SET_EVAL;
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 1u << 20);
	}
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	nft_txn_done(t);
}

static void chain_msg(struct nft_txn *t, uint16_t type, uint16_t flags, const char *table,
		      const char *name, const struct nft_fixed_chain *fixed, const char *verb)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	char what[64];
	struct nlmsghdr *nlh;

	snprintf(what, sizeof(what), "%s chain %s", verb, name);
	nlh = nft_txn_msg(t, type, NFPROTO_IPV4, flags, what);
	if (!c || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_chain_free(c);
		return;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (fixed && fixed->type) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, fixed->type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, fixed->hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, fixed->prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	nft_txn_done(t);
}

void nft_put_chain(struct nft_txn *t, const char *table, const char *name,
		   const struct nft_fixed_chain *fixed)
{
	chain_msg(t, NFT_MSG_NEWCHAIN, NLM_F_CREATE, table, name, fixed, "creating");
}

void nft_put_chain_del(struct nft_txn *t, const char *table, const char *name)
{
	chain_msg(t, NFT_MSG_DELCHAIN, 0, table, name, NULL, "deleting");
}

void nft_put_flush(struct nft_txn *t, const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char what[64];
	struct nlmsghdr *nlh;

	/* DELRULE naming only the chain removes all of its rules. */
	snprintf(what, sizeof(what), "flushing chain %s", chain);
	nlh = nft_txn_msg(t, NFT_MSG_DELRULE, NFPROTO_IPV4, 0, what);
	if (!r || !nlh) {
		t->err = t->err ? t->err : -ENOMEM;
		nftnl_rule_free(r);
		return;
	}
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	nft_txn_done(t);
}

/* --- rules ------------------------------------------------------------------- */

typedef void (*rule_sink)(void *ctx, struct nftnl_rule *r);

struct rule_build {
	const struct nft_rule_ctx *c;
	const char *chain;
	rule_sink sink;
	void *ctx;
};

static struct nftnl_rule *rule_new(const struct rule_build *b)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r) {
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, b->c->table);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, b->chain);
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	}
	return r;
}

static void rule_done(const struct rule_build *b, struct nftnl_rule *r)
{
	if (r)
		b->sink(b->ctx, r);
}

/* Loads: ip daddr / saddr, meta l4proto, th dport, into 32-bit registers. */
static void ld_daddr(struct nftnl_rule *r, uint32_t reg)
{
	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, reg);
}

static void ld_saddr(struct nftnl_rule *r, uint32_t reg)
{
	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, reg);
}

static void ld_proto_port(struct nftnl_rule *r, uint32_t reg)
{
	ex_meta(r, NFT_META_L4PROTO, reg);
	ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg + 1);
}

static void set_masq_mark(struct nftnl_rule *r)
{
	uint32_t mask = ~MASQ_MARK, xor = MASQ_MARK;

	ex_meta(r, NFT_META_MARK, R(15));
	ex_bitwise(r, R(15), &mask, &xor, 4);
	ex_meta_set(r, NFT_META_MARK, R(15));
}

/* fib daddr type local, and not 127.0.0.0/8: where nodePorts are served. */
static void match_node_address(struct nftnl_rule *r)
{
	uint32_t local = RTN_LOCAL, mask = htonl(0xff000000), zero = 0, lo = htonl(0x7f000000);

	ex_fib_daddr_type(r, R(0));
	ex_cmp(r, R(0), NFT_CMP_EQ, &local, 4);
	ld_daddr(r, R(1));
	ex_bitwise(r, R(1), &mask, &zero, 4);
	ex_cmp(r, R(1), NFT_CMP_NEQ, &lo, 4);
}

static void rules_jump(const struct rule_build *b, const char *to)
{
	struct nftnl_rule *r = rule_new(b);

	if (r)
		ex_verdict(r, NFT_JUMP, to);
	rule_done(b, r);
}

static void rules_services(const struct rule_build *b)
{
	struct nftnl_rule *r;

	if (b->c->cluster_mask && (r = rule_new(b))) {
		/* Off-cluster clients of a ClusterIP are masqueraded. */
		uint32_t zero = 0;
		ld_daddr(r, R(0));
		ex_lookup(r, nft_sets[SET_CLUSTER_IPS].name, R(0), -1, false);
		ld_saddr(r, R(1));
		ex_bitwise(r, R(1), &b->c->cluster_mask, &zero, 4);
		ex_cmp(r, R(1), NFT_CMP_NEQ, &b->c->cluster_net, 4);
		set_masq_mark(r);
		rule_done(b, r);
	}
	if ((r = rule_new(b))) {
		ld_daddr(r, R(0));
		ld_proto_port(r, R(1));
		ex_lookup(r, nft_sets[SET_EXT_MASQ].name, R(0), -1, false);
		set_masq_mark(r);
		rule_done(b, r);
	}
	if ((r = rule_new(b))) {
		match_node_address(r);
		ld_proto_port(r, R(2));
		ex_lookup(r, nft_sets[SET_NODEPORT_MASQ].name, R(2), -1, false);
		set_masq_mark(r);
		rule_done(b, r);
	}
	rules_jump(b, "dispatch");
}

/* Policy Local with no local endpoint drops, as Kubernetes does; the
 * shape rules nft.c appends follow these. */
static void rules_dispatch(const struct rule_build *b)
{
	struct nftnl_rule *r;

	if ((r = rule_new(b))) {
		ld_daddr(r, R(0));
		ld_proto_port(r, R(1));
		ex_lookup(r, nft_sets[SET_DROP_LOCAL].name, R(0), -1, false);
		ex_verdict(r, NF_DROP, NULL);
		rule_done(b, r);
	}
	if ((r = rule_new(b))) {
		match_node_address(r);
		ld_proto_port(r, R(2));
		ex_lookup(r, nft_sets[SET_NP_DROP_LOCAL].name, R(2), -1, false);
		ex_verdict(r, NF_DROP, NULL);
		rule_done(b, r);
	}
}

/* Two rules per lookup: TCP gets a reset, everything else port unreachable. */
static void reject_pair(const struct rule_build *b, int what)
{
	for (int tcp = 1; tcp >= 0; tcp--) {
		struct nftnl_rule *r = rule_new(b);
		uint8_t proto = IPPROTO_TCP;
		if (!r)
			return;
		if (what == 0) {
			ld_daddr(r, R(0));
			ex_lookup(r, nft_sets[SET_CLUSTER_IPS].name, R(0), -1, false);
		} else if (what == 1) {
			ld_daddr(r, R(0));
			ld_proto_port(r, R(1));
			ex_lookup(r, nft_sets[SET_NO_ENDPOINTS].name, R(0), -1, false);
		} else {
			match_node_address(r);
			ld_proto_port(r, R(2));
			ex_lookup(r, nft_sets[SET_NO_EP_NODEPORTS].name, R(2), -1, false);
		}
		if (tcp) {
			ex_meta(r, NFT_META_L4PROTO, R(4));
			ex_cmp(r, R(4), NFT_CMP_EQ, &proto, 1);
			ex_reject(r, NFT_REJECT_TCP_RST, 0);
		} else {
			ex_reject(r, NFT_REJECT_ICMP_UNREACH, 3 /* port unreachable */);
		}
		rule_done(b, r);
	}
}

static void rules_postrouting(const struct rule_build *b)
{
	uint32_t bit = MASQ_MARK, zero = 0, dnat = IPS_DST_NAT, clear = ~MASQ_MARK;
	struct nftnl_rule *r;

	if ((r = rule_new(b))) {
		ex_meta(r, NFT_META_MARK, R(0));
		ex_bitwise(r, R(0), &bit, &zero, 4);
		ex_cmp(r, R(0), NFT_CMP_NEQ, &zero, 4);
		ex_meta(r, NFT_META_MARK, R(0));
		ex_bitwise(r, R(0), &clear, &zero, 4);
		ex_meta_set(r, NFT_META_MARK, R(0));
		ex_masq(r);
		rule_done(b, r);
	}
	if ((r = rule_new(b))) {
		/* A pod that reached itself through a service: without
		 * masquerade its reply would bypass the translation. */
		ex_ct(r, NFT_CT_STATUS, R(0));
		ex_bitwise(r, R(0), &dnat, &zero, 4);
		ex_cmp(r, R(0), NFT_CMP_NEQ, &zero, 4);
		ld_saddr(r, R(0));
		ld_daddr(r, R(1));
		ex_lookup(r, nft_sets[SET_HAIRPIN].name, R(0), -1, false);
		ex_masq(r);
		rule_done(b, r);
	}
}

/* numgen picks a slot; the endpoints map turns key . slot into addr . port
 * (in R4, R5). */
static void lb_pick(struct nftnl_rule *r, const struct lb_shape *s)
{
	if (s->kind == LB_NODEPORT) {
		ld_proto_port(r, R(0));
		ex_numgen(r, s->n, R(2));
		ex_lookup(r, nft_sets[SET_NP_ENDPOINTS].name, R(0), R(4), false);
		return;
	}
	ld_daddr(r, R(0));
	ld_proto_port(r, R(1));
	ex_numgen(r, s->n, R(3));
	ex_lookup(r, nft_sets[SET_ENDPOINTS].name, R(0), R(4), false);
}

/* ct original ip daddr / proto-dst: the service address after DNAT. */
static void ld_ct_original(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	ex_ct_dir(r, key, 0 /* IP_CT_DIR_ORIGINAL */, dreg);
}

static void rules_lb(const struct rule_build *b, const struct lb_shape *s)
{
	struct nftnl_rule *r;

	if (s->affinity && (r = rule_new(b))) {
		/* A client the recorder has seen goes where it went before. */
		ld_saddr(r, R(0));
		ld_daddr(r, R(1));
		ld_proto_port(r, R(2));
		ex_lookup(r, nft_sets[SET_AFFINITY].name, R(0), R(4), false);
		ex_dnat(r, R(4), R(5));
		rule_done(b, r);
	}
	if ((r = rule_new(b))) {
		lb_pick(r, s);
		ex_dnat(r, R(4), R(5));
		rule_done(b, r);
	}
}

static void match_new_dnat(struct nftnl_rule *r)
{
	uint32_t newbit = NF_CT_STATE_BIT(IP_CT_NEW), dnat = IPS_DST_NAT, zero = 0;

	ex_ct(r, NFT_CT_STATE, R(0));
	ex_bitwise(r, R(0), &newbit, &zero, 4);
	ex_cmp(r, R(0), NFT_CMP_NEQ, &zero, 4);
	ex_ct(r, NFT_CT_STATUS, R(0));
	ex_bitwise(r, R(0), &dnat, &zero, 4);
	ex_cmp(r, R(0), NFT_CMP_NEQ, &zero, 4);
}

/* After DNAT the packet holds the endpoint and conntrack the service: the
 * recorder remembers (client, service) -> endpoint, or refreshes it. */
static void rule_record(struct nftnl_rule *r, const struct lb_shape *s)
{
	char set[32];

	lb_set_name(s, set);
	match_new_dnat(r);
	if (s->kind == LB_NP_RECORD) {
		ex_meta(r, NFT_META_L4PROTO, R(2));
		ld_ct_original(r, NFT_CT_PROTO_DST, R(3));
		ex_lookup(r, set, R(2), -1, false);
	} else {
		ld_ct_original(r, NFT_CT_DST_IP, R(1));
		ex_meta(r, NFT_META_L4PROTO, R(2));
		ld_ct_original(r, NFT_CT_PROTO_DST, R(3));
		ex_lookup(r, set, R(1), -1, false);
	}
	ld_saddr(r, R(0));
	ld_ct_original(r, NFT_CT_DST_IP, R(1));
	ex_meta(r, NFT_META_L4PROTO, R(2));
	ld_ct_original(r, NFT_CT_PROTO_DST, R(3));
	ld_daddr(r, R(4));
	ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R(5));
	ex_dynset(r, nft_sets[SET_AFFINITY].name, NFT_DYNSET_OP_UPDATE, R(0), R(4),
		  (uint64_t)s->timeout * 1000);
}

/* The keys in a shape's set go to its chain. */
static void rule_dispatch(struct nftnl_rule *r, const struct lb_shape *s)
{
	char set[32], chain[32];

	lb_set_name(s, set);
	lb_chain_name(s, chain);
	if (s->kind == LB_NODEPORT) {
		match_node_address(r);
		ld_proto_port(r, R(2));
		ex_lookup(r, set, R(2), -1, false);
	} else {
		ld_daddr(r, R(0));
		ld_proto_port(r, R(1));
		ex_lookup(r, set, R(0), -1, false);
	}
	ex_verdict(r, NFT_GOTO, chain);
}

static void build_rules(const struct rule_build *b)
{
	struct lb_shape s;

	if (!strcmp(b->chain, "nat-prerouting") || !strcmp(b->chain, "nat-output"))
		rules_jump(b, "services");
	else if (!strcmp(b->chain, "filter-prerouting") || !strcmp(b->chain, "filter-output")) {
		rules_jump(b, "reject-check");
		rules_jump(b, "affinity-record");
	} else if (!strcmp(b->chain, "dispatch"))
		rules_dispatch(b);
	else if (!strcmp(b->chain, "nat-postrouting"))
		rules_postrouting(b);
	else if (!strcmp(b->chain, "services"))
		rules_services(b);
	else if (!strcmp(b->chain, "reject-check"))
		for (int what = 0; what < 3; what++)
			reject_pair(b, what);
	else if (lb_chain_parse(b->chain, &s))
		rules_lb(b, &s);
}

static void sink_send(void *ctx, struct nftnl_rule *r)
{
	struct nft_txn *t = ctx;
	char what[80];
	struct nlmsghdr *nlh;

	snprintf(what, sizeof(what), "adding a rule to chain %s",
		 nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	nlh = nft_txn_msg(t, NFT_MSG_NEWRULE, NFPROTO_IPV4, NLM_F_APPEND | NLM_F_CREATE, what);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nft_txn_done(t);
	}
	nftnl_rule_free(r);
}

static void sink_count(void *ctx, struct nftnl_rule *r)
{
	(*(unsigned *)ctx)++;
	nftnl_rule_free(r);
}

void nft_put_rules(struct nft_txn *t, const struct nft_rule_ctx *c, const char *chain)
{
	struct rule_build b = {.c = c, .chain = chain, .sink = sink_send, .ctx = t};

	build_rules(&b);
}

void nft_put_shape_rule(struct nft_txn *t, const struct nft_rule_ctx *c, const struct lb_shape *s)
{
	struct rule_build b = {.c = c,
			       .chain = lb_is_record(s) ? "affinity-record" : "dispatch",
			       .sink = sink_send,
			       .ctx = t};
	struct nftnl_rule *r = rule_new(&b);

	if (!r) {
		t->err = t->err ? t->err : -ENOMEM;
		return;
	}
	if (lb_is_record(s))
		rule_record(r, s);
	else
		rule_dispatch(r, s);
	rule_done(&b, r);
}

unsigned nft_rule_count(const struct nft_rule_ctx *c, const char *chain)
{
	unsigned n = 0;
	struct rule_build b = {.c = c, .chain = chain, .sink = sink_count, .ctx = &n};

	build_rules(&b);
	return n;
}
