// SPDX-License-Identifier: MIT
/* ctnetlink through libmnl.  Each family is dumped whole (restricted to UDP
 * by the kernel when it can), the entries to forget are collected, and only
 * once every dump is over are they deleted, a page of requests at a time. */
#include "conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

/* CTA_FILTER_ORIG_FLAGS bit for "match the L4 protocol number": kernel ABI
 * since 5.8, but only defined in net/netfilter/nf_internals.h. */
#define CT_FILTER_PROTO_NUM (1U << 3)
#define CT_DUMP_TRIES	    8	/* dumps flagged NLM_F_DUMP_INTR before giving up */
#define CT_MSG_MAX	    256 /* one request; a delete needs about 120 bytes */
/* A dump skb is at most 32 KiB; a smaller buffer would truncate replies. */
#define CT_RECV_SIZE ((size_t)MNL_SOCKET_BUFFER_SIZE * 16)
/* Deletes sent in one write: their ACKs fit easily in the receive buffer. */
#define CT_PAGE_SIZE ((size_t)MNL_SOCKET_BUFFER_SIZE)
#define CT_NLMSG(t)  ((NFNL_SUBSYS_CTNETLINK << 8) | (t))

/* A tuple as read from a validated reply; ports and zone in host order. */
struct ct_tuple {
	struct svc_addr src, dst;
	uint8_t proto;
	uint16_t sport, dport;
	bool has_zone; /* CTA_TUPLE_ZONE: a directional zone */
	uint16_t zone;
};

/* What the kernel needs to find an entry again.  CTA_ID makes the delete
 * miss (ENOENT) an entry that replaced ours under the same tuple. */
struct ct_victim {
	struct ct_tuple orig;
	bool has_zone, has_id;
	uint16_t zone;
	uint32_t id_be; /* echoed back as received */
};

struct ct_victims {
	struct ct_victim *v;
	size_t n, cap;
};

/* Open addressing over the matches, keyed by what every match pins down:
 * endpoint address and service port.  slot[i] is a match index + 1. */
struct ct_index {
	const struct ct_match *m;
	size_t *slot, mask;
};

struct ct_sock {
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq; /* a per-socket counter */
	char *buf;
};

struct ct_dump {
	const struct ct_index *idx;
	struct ct_victims *out;
	bool intr; /* the kernel flagged this dump as inconsistent (set by ct_frames) */
	int err;   /* a local failure (ENOMEM) rather than a netlink one */
};

struct ct_acks {
	uint32_t first; /* sequence number of the page's first request */
	size_t count, pending, deleted;
	int err; /* first failure other than ENOENT, negative */
};

/* Validation policy: one rule per attribute type we read.  Types without a
 * rule, or beyond max (a newer kernel), are skipped and never stored. */
struct ct_rule {
	enum mnl_attr_data_type type;
	uint16_t len; /* exact payload length; 0 for nests */
};

struct ct_policy {
	uint16_t max;
	const struct ct_rule *rule;
};

struct ct_parse {
	const struct ct_policy *pol;
	const struct nlattr **tb;
};

static const struct ct_rule top_rules[CTA_MAX + 1] = {
    [CTA_TUPLE_ORIG] = {MNL_TYPE_NESTED, 0},
    [CTA_TUPLE_REPLY] = {MNL_TYPE_NESTED, 0},
    [CTA_ID] = {MNL_TYPE_U32, 4},
    [CTA_ZONE] = {MNL_TYPE_U16, 2},
};
static const struct ct_rule tuple_rules[CTA_TUPLE_MAX + 1] = {
    [CTA_TUPLE_IP] = {MNL_TYPE_NESTED, 0},
    [CTA_TUPLE_PROTO] = {MNL_TYPE_NESTED, 0},
    [CTA_TUPLE_ZONE] = {MNL_TYPE_U16, 2},
};
static const struct ct_rule ip_rules[CTA_IP_MAX + 1] = {
    [CTA_IP_V4_SRC] = {MNL_TYPE_U32, 4},
    [CTA_IP_V4_DST] = {MNL_TYPE_U32, 4},
    [CTA_IP_V6_SRC] = {MNL_TYPE_BINARY, 16},
    [CTA_IP_V6_DST] = {MNL_TYPE_BINARY, 16},
};
static const struct ct_rule proto_rules[CTA_PROTO_MAX + 1] = {
    [CTA_PROTO_NUM] = {MNL_TYPE_U8, 1},
    [CTA_PROTO_SRC_PORT] = {MNL_TYPE_U16, 2},
    [CTA_PROTO_DST_PORT] = {MNL_TYPE_U16, 2},
};
static const struct ct_policy top_policy = {CTA_MAX, top_rules};
static const struct ct_policy tuple_policy = {CTA_TUPLE_MAX, tuple_rules};
static const struct ct_policy ip_policy = {CTA_IP_MAX, ip_rules};
static const struct ct_policy proto_policy = {CTA_PROTO_MAX, proto_rules};

/* Returned by the parsers for an entry that is not ours (not UDP) or that
 * lacks a field we need: skipped, since we could not delete it precisely. */
#define CT_SKIP 1

static int ct_attr_cb(const struct nlattr *attr, void *data)
{
	const struct ct_parse *p = data;
	const struct ct_rule *r;

	if (mnl_attr_type_valid(attr, p->pol->max) < 0)
		return MNL_CB_OK;
	r = &p->pol->rule[mnl_attr_get_type(attr)];
	if (r->type == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	if (mnl_attr_validate2(attr, r->type, r->len) < 0)
		return MNL_CB_ERROR;
	p->tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int ct_parse_nest(const struct nlattr *nest, const struct ct_policy *pol,
			 const struct nlattr **tb)
{
	struct ct_parse p = {pol, tb};

	memset(tb, 0, (pol->max + 1) * sizeof(*tb));
	return mnl_attr_parse_nested(nest, ct_attr_cb, &p) == MNL_CB_ERROR ? -EBADMSG : 0;
}

static int ct_parse_ip(const struct nlattr *nest, uint8_t family, struct ct_tuple *t)
{
	const struct nlattr *tb[CTA_IP_MAX + 1];
	bool v4 = family == AF_INET;
	int src = v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, dst = v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST;
	size_t len = v4 ? 4 : 16;

	if (ct_parse_nest(nest, &ip_policy, tb) < 0)
		return -EBADMSG;
	if (!tb[src] || !tb[dst])
		return CT_SKIP;
	t->src.family = t->dst.family = family;
	memcpy(t->src.a, mnl_attr_get_payload(tb[src]), len);
	memcpy(t->dst.a, mnl_attr_get_payload(tb[dst]), len);
	return 0;
}

static int ct_parse_proto(const struct nlattr *nest, struct ct_tuple *t)
{
	const struct nlattr *tb[CTA_PROTO_MAX + 1];

	if (ct_parse_nest(nest, &proto_policy, tb) < 0)
		return -EBADMSG;
	if (!tb[CTA_PROTO_NUM] || mnl_attr_get_u8(tb[CTA_PROTO_NUM]) != IPPROTO_UDP)
		return CT_SKIP;
	if (!tb[CTA_PROTO_SRC_PORT] || !tb[CTA_PROTO_DST_PORT])
		return CT_SKIP;
	t->proto = IPPROTO_UDP;
	t->sport = ntohs(mnl_attr_get_u16(tb[CTA_PROTO_SRC_PORT]));
	t->dport = ntohs(mnl_attr_get_u16(tb[CTA_PROTO_DST_PORT]));
	return 0;
}

static int ct_parse_tuple(const struct nlattr *nest, uint8_t family, struct ct_tuple *t)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1];
	int r;

	if (ct_parse_nest(nest, &tuple_policy, tb) < 0)
		return -EBADMSG;
	if (!tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO])
		return CT_SKIP;
	r = ct_parse_proto(tb[CTA_TUPLE_PROTO], t);
	if (r == 0)
		r = ct_parse_ip(tb[CTA_TUPLE_IP], family, t);
	if (r == 0 && tb[CTA_TUPLE_ZONE]) {
		t->has_zone = true;
		t->zone = ntohs(mnl_attr_get_u16(tb[CTA_TUPLE_ZONE]));
	}
	return r;
}

/* 0 with *v and *reply filled, CT_SKIP, or -EBADMSG. */
static int ct_parse_entry(const struct nlmsghdr *nlh, struct ct_victim *v, struct ct_tuple *reply)
{
	const struct nlattr *tb[CTA_MAX + 1] = {0};
	struct ct_parse p = {&top_policy, tb};
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	int r;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*nfg))
		return -EBADMSG;
	if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6)
		return CT_SKIP;
	if (mnl_attr_parse(nlh, sizeof(*nfg), ct_attr_cb, &p) == MNL_CB_ERROR)
		return -EBADMSG;
	if (!tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY])
		return CT_SKIP;
	r = ct_parse_tuple(tb[CTA_TUPLE_ORIG], nfg->nfgen_family, &v->orig);
	if (r == 0)
		r = ct_parse_tuple(tb[CTA_TUPLE_REPLY], nfg->nfgen_family, reply);
	if (r != 0)
		return r;
	if (tb[CTA_ZONE]) {
		v->has_zone = true;
		v->zone = ntohs(mnl_attr_get_u16(tb[CTA_ZONE]));
	}
	if (tb[CTA_ID]) {
		v->has_id = true;
		v->id_be = mnl_attr_get_u32(tb[CTA_ID]);
	}
	return 0;
}

static size_t ct_hash(const struct svc_addr *ep, uint16_t dport)
{
	uint8_t key[19] = {ep->family, (uint8_t)(dport >> 8), (uint8_t)dport};
	uint32_t h = 2166136261u; /* FNV-1a */

	memcpy(key + 3, ep->a, ep->family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < sizeof(key); i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static int ct_index_build(struct ct_index *idx, const struct ct_match *m, size_t n)
{
	size_t cap = 16;

	if (n > SIZE_MAX / 4 / sizeof(*idx->slot))
		return -ENOMEM;
	while (cap < 2 * n) /* at most half full: probes stay short */
		cap *= 2;
	idx->slot = calloc(cap, sizeof(*idx->slot));
	if (!idx->slot)
		return -ENOMEM;
	idx->m = m;
	idx->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t h = ct_hash(&m[i].endpoint, m[i].orig_dport) & idx->mask;
		while (idx->slot[h])
			h = (h + 1) & idx->mask;
		idx->slot[h] = i + 1;
	}
	return 0;
}

static bool ct_matches(const struct ct_match *m, const struct ct_tuple *o, const struct ct_tuple *r)
{
	if (m->orig_dport != o->dport || !addr_eq(&m->endpoint, &r->src))
		return false;
	if (m->endpoint_port && m->endpoint_port != r->sport)
		return false;
	return !m->orig_dst.family || addr_eq(&m->orig_dst, &o->dst);
}

static bool ct_index_find(const struct ct_index *idx, const struct ct_tuple *o,
			  const struct ct_tuple *r)
{
	size_t h = ct_hash(&r->src, o->dport) & idx->mask;

	for (; idx->slot[h]; h = (h + 1) & idx->mask)
		if (ct_matches(&idx->m[idx->slot[h] - 1], o, r))
			return true;
	return false;
}

static int ct_victims_add(struct ct_victims *vs, const struct ct_victim *v)
{
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 64;
		struct ct_victim *p = reallocarray(vs->v, cap, sizeof(*p));
		if (!p)
			return -ENOMEM;
		vs->v = p;
		vs->cap = cap;
	}
	vs->v[vs->n++] = *v;
	return 0;
}

static int ct_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct_dump *d = data;
	struct ct_victim v = {0};
	struct ct_tuple reply = {0};
	int r;

	/* A torn dump is read to its end and thrown away. */
	if (d->intr || nlh->nlmsg_type != CT_NLMSG(IPCTNL_MSG_CT_NEW))
		return MNL_CB_OK;
	r = ct_parse_entry(nlh, &v, &reply);
	if (r == 0 && ct_index_find(d->idx, &v.orig, &reply))
		r = ct_victims_add(d->out, &v);
	if (r < 0) {
		d->err = r;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* Netlink carries errors as -errno (some subsystems as +errno); a value out
 * of either range is garbage, and negating INT_MIN would overflow. */
static int ct_errno(int wire)
{
	if (wire >= -4095 && wire <= 4095)
		return wire < 0 ? -wire : wire;
	return EPROTO;
}

static int ct_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (err->error == 0)
		return MNL_CB_STOP;
	errno = ct_errno(err->error);
	return MNL_CB_ERROR;
}

/* A dump that fails midway reports its errno in NLMSG_DONE's payload. */
static int ct_done_cb(const struct nlmsghdr *nlh, void *data)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return MNL_CB_STOP;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err >= 0)
		return MNL_CB_STOP;
	errno = ct_errno(err);
	return MNL_CB_ERROR;
}

/* Size-checked puts: the first failure sticks, checked once at the end. */
struct ct_msg {
	struct nlmsghdr *nlh;
	size_t size;
	bool err;
};

static void ct_put(struct ct_msg *w, uint16_t type, size_t len, const void *p)
{
	if (!w->err && !mnl_attr_put_check(w->nlh, w->size, type, len, p))
		w->err = true;
}

static struct nlattr *ct_nest(struct ct_msg *w, uint16_t type)
{
	struct nlattr *a = w->err ? NULL : mnl_attr_nest_start_check(w->nlh, w->size, type);

	if (!a)
		w->err = true;
	return a;
}

static void ct_nest_end(struct ct_msg *w, struct nlattr *a)
{
	if (a)
		mnl_attr_nest_end(w->nlh, a);
}

/* buf must hold CT_MSG_MAX bytes.  It is zeroed first: libmnl leaves the
 * alignment padding of attributes as it finds it, and no stack or heap
 * garbage should reach the kernel. */
static struct ct_msg ct_request(void *buf, uint16_t type, uint16_t flags, uint8_t family,
				uint32_t seq)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	memset(buf, 0, CT_MSG_MAX);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = CT_NLMSG(type);
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	return (struct ct_msg){nlh, CT_MSG_MAX, false};
}

/* Checks the framing of a received buffer before libmnl walks it:
 * mnl_nlmsg_ok() compares nlmsg_len as a signed int, so a length above
 * INT_MAX would walk backwards out of the buffer.  For a dump, it also moves
 * NLM_F_DUMP_INTR into *intr: libmnl >= 1.0.4 fails the rest of the buffer
 * with EINTR at a flagged message, which would leave the dump half read on
 * the socket.  The dump is read to its end instead, then run again. */
static int ct_frames(char *buf, size_t len, bool *intr)
{
	for (size_t left = len; left >= sizeof(struct nlmsghdr);) {
		struct nlmsghdr *nlh = (void *)buf;
		if (nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > left)
			return -EBADMSG;
		if (intr && (nlh->nlmsg_flags & NLM_F_DUMP_INTR)) {
			*intr = true;
			nlh->nlmsg_flags &= ~NLM_F_DUMP_INTR;
		}
		if (NLMSG_ALIGN(nlh->nlmsg_len) >= left)
			break;
		left -= NLMSG_ALIGN(nlh->nlmsg_len);
		buf += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return 0;
}

static int ct_dump_request(struct ct_sock *s, uint8_t family, bool filter, uint32_t seq)
{
	char buf[CT_MSG_MAX];
	struct ct_msg w = ct_request(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, seq);
	uint32_t flags = CT_FILTER_PROTO_NUM; /* host order, unlike most of ctnetlink */
	uint8_t udp = IPPROTO_UDP;
	struct nlattr *t, *p;

	if (filter) {
		t = ct_nest(&w, CTA_TUPLE_ORIG);
		p = ct_nest(&w, CTA_TUPLE_PROTO);
		ct_put(&w, CTA_PROTO_NUM, sizeof(udp), &udp);
		ct_nest_end(&w, p);
		ct_nest_end(&w, t);
		t = ct_nest(&w, CTA_FILTER);
		ct_put(&w, CTA_FILTER_ORIG_FLAGS, sizeof(flags), &flags);
		ct_nest_end(&w, t);
	}
	if (w.err)
		return -EMSGSIZE;
	return mnl_socket_sendto(s->nl, w.nlh, w.nlh->nlmsg_len) < 0 ? -errno : 0;
}

static mnl_cb_t dump_ctl[NLMSG_DONE + 1] = {
    [NLMSG_ERROR] = ct_error_cb,
    [NLMSG_DONE] = ct_done_cb,
};

static int ct_dump_once(struct ct_sock *s, uint8_t family, bool filter, struct ct_dump *d)
{
	uint32_t seq = ++s->seq;
	int r = ct_dump_request(s, family, filter, seq);

	if (r < 0)
		return r;
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(s->nl, s->buf, CT_RECV_SIZE);
		if (len < 0)
			return -errno;
		r = ct_frames(s->buf, len, &d->intr);
		if (r < 0)
			return r;
		r = mnl_cb_run2(s->buf, len, seq, s->portid, ct_dump_cb, d, dump_ctl,
				MNL_ARRAY_SIZE(dump_ctl));
		if (r == MNL_CB_ERROR)
			return d->err ? d->err : -errno;
		if (r == MNL_CB_STOP) /* NLMSG_DONE */
			return 0;
	}
}

/* Entries seen in a dump the kernel flagged as interrupted may be stale or
 * missing, so such a dump is discarded and run again. */
static int ct_dump_family(struct ct_sock *s, uint8_t family, struct ct_dump *d, struct svc_err *e)
{
	size_t keep = d->out->n; /* what the other family's dump found */
	bool filter = true;

	for (int i = 0; i < CT_DUMP_TRIES; i++) {
		d->intr = false;
		d->err = 0;
		d->out->n = keep;
		int r = ct_dump_once(s, family, filter, d);
		/* Kernels before 5.8 ignore CTA_FILTER; one that refuses it
		 * gets a plain dump, filtered here instead. */
		if (filter && (r == -EINVAL || r == -EOPNOTSUPP)) {
			filter = false;
			continue;
		}
		if (r < 0)
			return svc_errf(e, -r, "conntrack: dump: %s", strerror(-r));
		if (!d->intr)
			return 0;
	}
	return svc_errf(e, EAGAIN, "conntrack: dump: interrupted %d times in a row", CT_DUMP_TRIES);
}

static void ct_put_tuple(struct ct_msg *w, const struct ct_tuple *t)
{
	bool v4 = t->src.family == AF_INET;
	size_t alen = v4 ? 4 : 16;
	uint16_t sport = htons(t->sport), dport = htons(t->dport), zone = htons(t->zone);
	struct nlattr *n;

	n = ct_nest(w, CTA_TUPLE_IP);
	ct_put(w, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, alen, t->src.a);
	ct_put(w, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, alen, t->dst.a);
	ct_nest_end(w, n);
	n = ct_nest(w, CTA_TUPLE_PROTO);
	ct_put(w, CTA_PROTO_NUM, sizeof(t->proto), &t->proto);
	ct_put(w, CTA_PROTO_SRC_PORT, sizeof(sport), &sport);
	ct_put(w, CTA_PROTO_DST_PORT, sizeof(dport), &dport);
	ct_nest_end(w, n);
	if (t->has_zone)
		ct_put(w, CTA_TUPLE_ZONE, sizeof(zone), &zone);
}

/* Writes one delete request at buf; returns its length, 0 if it did not fit. */
static size_t ct_put_delete(void *buf, const struct ct_victim *v, uint32_t seq)
{
	struct ct_msg w = ct_request(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, v->orig.src.family, seq);
	uint16_t zone = htons(v->zone);
	struct nlattr *t;

	t = ct_nest(&w, CTA_TUPLE_ORIG);
	ct_put_tuple(&w, &v->orig);
	ct_nest_end(&w, t);
	if (v->has_zone)
		ct_put(&w, CTA_ZONE, sizeof(zone), &zone);
	if (v->has_id)
		ct_put(&w, CTA_ID, sizeof(v->id_be), &v->id_be);
	return w.err ? 0 : w.nlh->nlmsg_len;
}

static int ct_ack_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct ct_acks *a = data;
	int code;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	/* Unsigned arithmetic: also right when the counter wraps. */
	if (nlh->nlmsg_seq - a->first >= a->count || !a->pending)
		return MNL_CB_OK;
	a->pending--;
	code = ct_errno(err->error);
	if (code == 0)
		a->deleted++;
	else if (code != ENOENT && !a->err) /* ENOENT: it expired meanwhile */
		a->err = -code;
	return a->pending ? MNL_CB_OK : MNL_CB_STOP;
}

/* Only ACKs are expected; other control messages are ignored. */
static mnl_cb_t ack_ctl[NLMSG_MIN_TYPE] = {
    [NLMSG_ERROR] = ct_ack_cb,
};

static int ct_await_acks(struct ct_sock *s, struct ct_acks *a)
{
	while (a->pending) {
		ssize_t len = mnl_socket_recvfrom(s->nl, s->buf, CT_RECV_SIZE);
		if (len < 0)
			return -errno;
		if (ct_frames(s->buf, len, NULL) < 0)
			return -EBADMSG;
		if (mnl_cb_run2(s->buf, len, 0, s->portid, NULL, a, ack_ctl,
				MNL_ARRAY_SIZE(ack_ctl)) == MNL_CB_ERROR)
			return -errno;
	}
	return a->err;
}

/* Sends as many deletes as fit in one page from v[*next], then waits for
 * every ACK: each request gets its own answer, in order. */
static int ct_delete_page(struct ct_sock *s, const struct ct_victims *vs, size_t *next,
			  size_t *deleted)
{
	struct ct_acks a = {.first = s->seq + 1};
	size_t pos = 0;
	int r;

	while (*next < vs->n && pos + CT_MSG_MAX <= CT_PAGE_SIZE) {
		size_t len = ct_put_delete(s->buf + pos, &vs->v[*next], ++s->seq);
		if (!len)
			return -EMSGSIZE;
		pos += len;
		a.count++;
		(*next)++;
	}
	if (mnl_socket_sendto(s->nl, s->buf, pos) < 0)
		return -errno;
	a.pending = a.count;
	r = ct_await_acks(s, &a);
	*deleted += a.deleted;
	return r;
}

static int ct_delete_all(struct ct_sock *s, const struct ct_victims *vs, size_t *deleted,
			 struct svc_err *e)
{
	size_t next = 0;

	while (next < vs->n) {
		int r = ct_delete_page(s, vs, &next, deleted);
		if (r < 0)
			return svc_errf(e, -r, "conntrack: delete: %s", strerror(-r));
	}
	return 0;
}

static int ct_open(struct ct_sock *s, struct svc_err *e)
{
	s->buf = malloc(CT_RECV_SIZE);
	if (!s->buf)
		return svc_errf(e, ENOMEM, "conntrack: %s", strerror(ENOMEM));
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->nl || mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return svc_errf(e, errno, "conntrack: socket: %s", strerror(errno));
	s->portid = mnl_socket_get_portid(s->nl);
	return 0;
}

static void ct_close(struct ct_sock *s)
{
	if (s->nl)
		mnl_socket_close(s->nl);
	free(s->buf);
}

int ct_delete_udp(const struct ct_match *m, size_t n, size_t *deleted, struct svc_err *e)
{
	struct ct_index idx = {0};
	struct ct_victims vs = {0};
	struct ct_dump d = {&idx, &vs, false, 0};
	struct ct_sock s = {0};
	size_t count = 0;
	int r = 0;

	if (n == 0)
		goto cleanup;
	r = ct_index_build(&idx, m, n);
	if (r < 0) {
		r = svc_errf(e, -r, "conntrack: %s", strerror(-r));
		goto cleanup;
	}
	r = ct_open(&s, e);
	if (r == 0)
		r = ct_dump_family(&s, AF_INET, &d, e);
	if (r == 0)
		r = ct_dump_family(&s, AF_INET6, &d, e);
	if (r == 0)
		r = ct_delete_all(&s, &vs, &count, e);
cleanup:
	if (deleted)
		*deleted = count;
	ct_close(&s);
	free(vs.v);
	free(idx.slot);
	return r;
}
