// SPDX-License-Identifier: MIT
/* The forwarder.  One lookup in flight per (name, type, DO) is shared by
 * every request asking the same; it owns a random ID, a per-try timer, an
 * overall deadline and, after a truncated UDP answer, a TCP connection.
 * Requests wait on their lookup or, on a cache hit, on the ready list that
 * a zero timer drains, so no callback ever runs inside dns_fwd_query.
 *
 * Re-entrancy: every loop callback holds the forwarder (depth) while it
 * runs user callbacks; dns_fwd_free inside one only marks it dying, and the
 * outermost callback frees it on the way out.  A lookup is unlinked from
 * the tables before its requests are called, so a callback cannot join or
 * free it. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "forward.h"
#include "msg.h"
#include "util.h"

#define FWD_BUCKETS	      256 /* lookups in flight, by ID and by key */
#define FWD_RX_BURST	      64  /* datagrams read per wake-up, so TCP is not starved */
#define FWD_NS_MAX	      3	  /* as the libc resolver */
#define FWD_QUERY_MAX	      (DNS_HDR_SIZE + DNS_NAME_MAX + 4 + DNS_OPT_RR_SIZE)
#define FWD_DEF_TIMEOUT	      2.0
#define FWD_CACHE_BUCKETS_MAX (1u << 20)

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* A circular doubly linked list: unlinking needs no head, so a request can
 * leave whichever list it is on. */
struct link {
	struct link *prev, *next;
};

static void link_init(struct link *h)
{
	h->prev = h->next = h;
}

static bool link_empty(const struct link *h)
{
	return h->next == h;
}

static void link_add_tail(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void link_del(struct link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	link_init(n);
}

/* Moves every element of from to the (empty) list to. */
static void link_splice(struct link *from, struct link *to)
{
	link_init(to);
	if (link_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	link_init(from);
}

/* What the cache and the coalescing compare: the name lower-cased (length
 * octets are at most 63, below 'A', so lower-casing the whole wire form is
 * safe), the type and the DO bit. */
struct fwd_key {
	uint8_t name[DNS_NAME_MAX];
	uint8_t len;
	bool do_bit;
	uint16_t type;
};

struct cache_ent {
	struct fwd_key key;
	uint64_t hash;
	struct cache_ent *chain;
	struct link lru; /* least recently used first */
	uint8_t *msg;
	size_t len;
	double stored, expires;
};

struct fwd_tcp {
	int fd;
	ev_io io;
	uint8_t out[2 + FWD_QUERY_MAX];
	size_t out_len, out_pos;
	uint8_t hdr[2]; /* the length prefix of the answer */
	size_t got;	/* bytes of hdr, then of in */
	uint8_t *in;
	size_t in_len;
	size_t up;
};

struct flight {
	struct dns_fwd *f;
	struct fwd_key key;
	uint64_t hash;
	struct dns_name qname; /* as the first request gave it */
	struct flight *id_next, *key_next;
	uint16_t id;
	uint8_t query[FWD_QUERY_MAX];
	size_t qlen;
	size_t cur, tries; /* upstream being tried; attempts so far */
	int err;	   /* the last send error */
	bool give_up;	   /* every send failed: fail with err */
	ev_timer try_timer, deadline;
	struct fwd_tcp *tcp;
	struct link reqs;
};

enum req_state { REQ_WAIT, REQ_READY, REQ_RUNNING };

struct dns_fwd_req {
	struct link link; /* on its flight's reqs, or on the ready list */
	enum req_state state;
	struct dns_name qname;
	int err;      /* for a READY request */
	uint8_t *msg; /* a READY request's own copy of the answer */
	size_t len;
	dns_fwd_cb cb;
	void *ctx;
};

struct dns_fwd {
	struct ev_loop *loop;
	struct dns_fwd_config cfg;
	struct sockaddr_storage *up;
	double per_try;
	int fd[2]; /* UDP, IPv4 and IPv6 */
	ev_io io[2];
	struct flight *by_id[FWD_BUCKETS], *by_key[FWD_BUCKETS];
	struct cache_ent **cache;
	size_t nbuckets, ncache;
	struct link lru;
	struct link ready;
	ev_timer ready_timer;
	uint16_t ids[64]; /* random IDs drawn in bulk */
	size_t nids;
	struct dns_fwd_stats st;
	unsigned depth;
	bool dying;
	uint8_t rx[DNS_TCP_MAX + 1];
};

/* What a response says, read through the bounds-checked reader. */
struct resp_info {
	uint16_t id, flags, qtype, qclass;
	uint16_t count[4]; /* question, answer, authority, additional */
	struct dns_name qname;
	uint32_t ans_ttl, neg_ttl; /* UINT32_MAX when there is none */
};

static void fwd_destroy(struct dns_fwd *f);
static void flight_next(struct flight *fl);

static double fwd_now(const struct dns_fwd *f)
{
	return f->cfg.now ? f->cfg.now() : now_mono();
}

static void fwd_hold(struct dns_fwd *f)
{
	f->depth++;
}

/* The forwarder may be gone afterwards. */
static void fwd_release(struct dns_fwd *f)
{
	if (--f->depth == 0 && f->dying)
		fwd_destroy(f);
}

static void timer_arm(struct ev_loop *loop, ev_timer *t, double after)
{
	ev_timer_stop(loop, t);
	ev_timer_set(t, after, 0.);
	ev_timer_start(loop, t);
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

static int fam_idx(int family)
{
	return family == AF_INET6;
}

/* ---- resolv.conf ---- */

static int ns_parse6(char *s, struct sockaddr_in6 *in6)
{
	char *scope = strchr(s, '%');

	if (scope)
		*scope++ = '\0';
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) != 1)
		return -EINVAL;
	if (scope) {
		char *end;
		unsigned long idx = strtoul(scope, &end, 10);

		in6->sin6_scope_id = *end || !*scope ? if_nametoindex(scope) : (uint32_t)idx;
		if (!in6->sin6_scope_id)
			return -EINVAL;
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(53);
	return 0;
}

static int ns_parse(char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(53);
		return 0;
	}
	return ns_parse6(s, (struct sockaddr_in6 *)ss);
}

/* One line; adds its nameserver to out.  Unparsable addresses are skipped,
 * as the libc resolver does. */
static void resolv_line(char *line, struct sockaddr_storage *out, size_t *n)
{
	char *save, *kw, *addr;

	line[strcspn(line, "#;")] = '\0';
	kw = strtok_r(line, " \t\r\n", &save);
	if (!kw || strcmp(kw, "nameserver") || *n >= FWD_NS_MAX)
		return;
	addr = strtok_r(NULL, " \t\r\n", &save);
	if (addr && !ns_parse(addr, &out[*n]))
		(*n)++;
}

int dns_fwd_resolv_conf(const char *path, struct sockaddr_storage **out, size_t *n,
			struct svc_err *e)
{
	cleanup_free char *line = NULL;
	cleanup_free struct sockaddr_storage *ns = NULL;
	size_t cap = 0, got = 0;
	FILE *fp = fopen(path, "re");

	if (!fp)
		return svc_errf(e, errno, "opening %s: %s", path, strerror(errno));
	ns = calloc(FWD_NS_MAX, sizeof(*ns));
	while (ns && getline(&line, &cap, fp) > 0)
		resolv_line(line, ns, &got);
	fclose(fp);
	if (!ns)
		return svc_errf(e, ENOMEM, "reading %s: out of memory", path);
	if (!got)
		return svc_errf(e, ENOENT, "%s names no nameserver", path);
	*out = ns;
	ns = NULL;
	*n = got;
	return 0;
}

/* ---- keys and the response reader ---- */

static void key_make(struct fwd_key *k, const struct dns_name *n, uint16_t type, bool do_bit)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < n->len; i++) {
		uint8_t c = n->wire[i];
		k->name[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
	}
	k->len = n->len;
	k->type = type;
	k->do_bit = do_bit;
}

static bool key_eq(const struct fwd_key *a, const struct fwd_key *b)
{
	return a->len == b->len && a->type == b->type && a->do_bit == b->do_bit &&
	       !memcmp(a->name, b->name, a->len);
}

/* FNV-1a. */
static uint64_t key_hash(const struct fwd_key *k)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < k->len; i++)
		h = (h ^ k->name[i]) * 0x100000001b3ull;
	h = (h ^ k->type) * 0x100000001b3ull;
	return (h ^ k->do_bit) * 0x100000001b3ull;
}

static void rd_header(struct dns_rd *r, struct resp_info *ri)
{
	ri->id = dns_rd_u16(r);
	ri->flags = dns_rd_u16(r);
	for (size_t i = 0; i < ARRAY_SIZE(ri->count); i++)
		ri->count[i] = dns_rd_u16(r);
	if (!r->err && ri->count[0] != 1)
		dns_rd_fail(r, DNS_HDR_QDCOUNT, "QDCOUNT %u", ri->count[0]);
}

/* The SOA's MINIMUM field; the cursor stays after the record. */
static uint32_t soa_minimum(struct dns_rd *r, const struct dns_rr *rr)
{
	size_t end = r->pos;
	uint32_t min;

	dns_rd_seek(r, rr->rdata);
	dns_rd_name(r, NULL);
	dns_rd_name(r, NULL);
	dns_rd_skip(r, 16); /* serial, refresh, retry, expire */
	min = dns_rd_u32(r);
	if (!r->err && r->pos > rr->rdata + rr->rdlen)
		dns_rd_fail(r, rr->rdata, "SOA overruns its RDLENGTH");
	dns_rd_seek(r, end);
	return min;
}

static void rd_records(struct dns_rd *r, struct resp_info *ri)
{
	size_t an = ri->count[1], ns = ri->count[2];
	size_t total = an + ns + ri->count[3];
	struct dns_rr rr;

	for (size_t i = 0; i < total && !dns_rr_read(r, &rr); i++) {
		if (i < an && rr.ttl < ri->ans_ttl)
			ri->ans_ttl = rr.ttl;
		if (i >= an && i < an + ns && rr.type == DNS_TYPE_SOA) {
			uint32_t min = soa_minimum(r, &rr);
			ri->neg_ttl = min < rr.ttl ? min : rr.ttl;
		}
	}
}

/* Reads the whole message; 0 or -EBADMSG. */
static int resp_parse(const uint8_t *msg, size_t len, struct resp_info *ri)
{
	struct dns_rd r;

	memset(ri, 0, sizeof(*ri));
	ri->ans_ttl = ri->neg_ttl = UINT32_MAX;
	dns_rd_init(&r, msg, len);
	rd_header(&r, ri);
	dns_rd_name(&r, &ri->qname);
	ri->qtype = dns_rd_u16(&r);
	ri->qclass = dns_rd_u16(&r);
	rd_records(&r, ri);
	return r.err;
}

static bool resp_matches(const struct flight *fl, const struct resp_info *ri)
{
	return ri->id == fl->id && (ri->flags & DNS_FLAG_QR) &&
	       dns_flags_opcode(ri->flags) == DNS_OPCODE_QUERY && ri->qtype == fl->key.type &&
	       ri->qclass == DNS_CLASS_IN && dns_name_eq(&ri->qname, &fl->qname);
}

/* How long an answer may be cached: 0 = not at all.  Negative answers
 * (NXDOMAIN, or NOERROR without answer records) live for their SOA's
 * TTL or MINIMUM, whichever is lower (RFC 2308 section 5). */
static uint32_t resp_cache_ttl(const struct dns_fwd *f, const struct resp_info *ri)
{
	unsigned rcode = ri->flags & DNS_FLAG_RCODE_MASK;
	uint32_t ttl;

	if (ri->flags & DNS_FLAG_TC)
		return 0;
	if (rcode == DNS_RCODE_NOERROR && ri->count[1]) {
		ttl = ri->ans_ttl;
		return ttl < f->cfg.ttl_max ? ttl : f->cfg.ttl_max;
	}
	if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN)
		return 0;
	ttl = ri->neg_ttl == UINT32_MAX ? 0 : ri->neg_ttl;
	return ttl < f->cfg.neg_ttl_max ? ttl : f->cfg.neg_ttl_max;
}

/* Writes the question name in the requester's case: the question sits at
 * offset 12 uncompressed and matched case-insensitively, so the lengths
 * agree and compression pointers into it stay valid. */
static void msg_set_qname(uint8_t *msg, size_t len, const struct dns_name *n)
{
	struct dns_wr w;

	if (!msg || len < DNS_HDR_SIZE)
		return;
	dns_wr_init(&w, msg + DNS_HDR_SIZE, len - DNS_HDR_SIZE);
	dns_wr_bytes(&w, n->wire, n->len);
}

static void ttl_write(uint8_t *at, uint32_t ttl)
{
	struct dns_wr w;

	dns_wr_init(&w, at, 4);
	dns_wr_u32(&w, ttl);
}

/* Counts elapsed seconds off every record's TTL (OPT's TTL is flags). */
static void msg_age(uint8_t *msg, size_t len, uint32_t elapsed)
{
	struct resp_info ri;
	struct dns_rd r;
	struct dns_rr rr;
	size_t total;

	dns_rd_init(&r, msg, len);
	rd_header(&r, &ri);
	dns_rd_name(&r, NULL);
	dns_rd_skip(&r, 4);
	total = (size_t)ri.count[1] + ri.count[2] + ri.count[3];
	for (size_t i = 0; i < total && !dns_rr_read(&r, &rr); i++)
		if (rr.type != DNS_TYPE_OPT)
			ttl_write(msg + rr.rdata - 6, rr.ttl > elapsed ? rr.ttl - elapsed : 0);
}

/* ---- cache ---- */

static struct cache_ent **cache_slot(struct dns_fwd *f, const struct fwd_key *k, uint64_t h)
{
	struct cache_ent **p = &f->cache[h & (f->nbuckets - 1)];

	while (*p && ((*p)->hash != h || !key_eq(&(*p)->key, k)))
		p = &(*p)->chain;
	return p;
}

static void cache_drop(struct dns_fwd *f, struct cache_ent *ent)
{
	struct cache_ent **p = cache_slot(f, &ent->key, ent->hash);

	*p = ent->chain;
	link_del(&ent->lru);
	f->ncache--;
	free(ent->msg);
	free(ent);
}

/* A live entry, made most recently used; expired ones are dropped. */
static struct cache_ent *cache_get(struct dns_fwd *f, const struct fwd_key *k, double now)
{
	struct cache_ent *ent;

	if (!f->cache)
		return NULL;
	ent = *cache_slot(f, k, key_hash(k));
	if (ent && ent->expires <= now) {
		cache_drop(f, ent);
		return NULL;
	}
	if (ent) {
		link_del(&ent->lru);
		link_add_tail(&f->lru, &ent->lru); /* the tail is the newest */
	}
	return ent;
}

static void cache_put(struct dns_fwd *f, const struct fwd_key *k, const uint8_t *msg, size_t len,
		      uint32_t ttl)
{
	uint64_t h = key_hash(k);
	struct cache_ent *ent, **p;

	if (!f->cache || !ttl)
		return;
	if (*(p = cache_slot(f, k, h)))
		cache_drop(f, *p);
	while (f->ncache >= f->cfg.cache_max)
		cache_drop(f, container_of(f->lru.next, struct cache_ent, lru));
	ent = calloc(1, sizeof(*ent));
	if (!ent || !(ent->msg = malloc(len))) {
		free(ent);
		return;
	}
	memcpy(ent->msg, msg, len);
	ent->len = len;
	ent->key = *k;
	ent->hash = h;
	ent->stored = fwd_now(f);
	ent->expires = ent->stored + ttl;
	p = cache_slot(f, k, h);
	*p = ent;
	link_add_tail(&f->lru, &ent->lru);
	f->ncache++;
}

/* ---- requests ---- */

static void req_free(struct dns_fwd_req *q)
{
	link_del(&q->link);
	free(q->msg);
	free(q);
}

/* Runs the callback once; the request is freed afterwards, so a cancel
 * from inside the callback must not free it (state RUNNING). */
static void req_deliver(struct dns_fwd_req *q, int err, uint8_t *msg, size_t len)
{
	link_del(&q->link);
	q->state = REQ_RUNNING;
	msg_set_qname(msg, len, &q->qname);
	q->cb(q->ctx, err, msg, len);
	req_free(q);
}

static void req_ready(struct dns_fwd *f, struct dns_fwd_req *q)
{
	q->state = REQ_READY;
	link_add_tail(&f->ready, &q->link);
	if (!ev_is_active(&f->ready_timer))
		timer_arm(f->loop, &f->ready_timer, 0.);
}

static void on_ready(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_fwd *f = container_of(w, struct dns_fwd, ready_timer);
	struct link batch;

	/* Requests made by these callbacks wait for the next round. */
	link_splice(&f->ready, &batch);
	fwd_hold(f);
	while (!link_empty(&batch) && !f->dying) {
		struct dns_fwd_req *q = container_of(batch.next, struct dns_fwd_req, link);
		req_deliver(q, q->err, q->msg, q->len);
	}
	while (!link_empty(&batch))
		req_free(container_of(batch.next, struct dns_fwd_req, link));
	fwd_release(f);
}

/* A hit becomes a READY request with its own aged copy of the answer. */
static bool cache_answer(struct dns_fwd *f, const struct fwd_key *k, struct dns_fwd_req *q)
{
	double now = fwd_now(f);
	struct cache_ent *ent = cache_get(f, k, now);

	if (!ent || !(q->msg = malloc(ent->len)))
		return false;
	memcpy(q->msg, ent->msg, ent->len);
	q->len = ent->len;
	msg_age(q->msg, q->len, now > ent->stored ? (uint32_t)(now - ent->stored) : 0);
	msg_set_qname(q->msg, q->len, &q->qname);
	f->st.cache_hits++;
	req_ready(f, q);
	return true;
}

/* ---- lookups ---- */

static struct flight **flight_id_slot(struct dns_fwd *f, uint16_t id)
{
	struct flight **p = &f->by_id[id % FWD_BUCKETS];

	while (*p && (*p)->id != id)
		p = &(*p)->id_next;
	return p;
}

static struct flight **flight_key_slot(struct dns_fwd *f, const struct fwd_key *k, uint64_t h)
{
	struct flight **p = &f->by_key[h % FWD_BUCKETS];

	while (*p && ((*p)->hash != h || !key_eq(&(*p)->key, k)))
		p = &(*p)->key_next;
	return p;
}

/* An ID no lookup in flight uses; IDs come from getrandom in batches. */
static int flight_pick_id(struct dns_fwd *f, uint16_t *id)
{
	for (int tries = 0; tries < 1000; tries++) {
		if (!f->nids) {
			if (getrandom(f->ids, sizeof(f->ids), 0) != (ssize_t)sizeof(f->ids))
				return -errno ? -errno : -EIO;
			f->nids = ARRAY_SIZE(f->ids);
		}
		*id = f->ids[--f->nids];
		if (!*flight_id_slot(f, *id))
			return 0;
	}
	return -EAGAIN;
}

static int query_build(struct flight *fl)
{
	struct dns_wr w;

	dns_wr_init(&w, fl->query, sizeof(fl->query));
	dns_wr_u16(&w, fl->id);
	dns_wr_u16(&w, DNS_FLAG_RD);
	dns_wr_u16(&w, 1); /* QDCOUNT */
	dns_wr_u16(&w, 0);
	dns_wr_u16(&w, 0);
	dns_wr_u16(&w, 1); /* ARCOUNT: our OPT */
	dns_wr_name(&w, &fl->qname, false);
	dns_wr_u16(&w, fl->key.type);
	dns_wr_u16(&w, DNS_CLASS_IN);
	dns_wr_u8(&w, 0); /* OPT: root owner, payload size, DO */
	dns_wr_u16(&w, DNS_TYPE_OPT);
	dns_wr_u16(&w, DNS_EDNS_UDP_DEF);
	dns_wr_u32(&w, fl->key.do_bit ? DNS_EDNS_DO : 0);
	dns_wr_u16(&w, 0);
	fl->qlen = w.pos;
	return w.err;
}

static void tcp_close(struct flight *fl)
{
	struct fwd_tcp *t = fl->tcp;

	if (!t)
		return;
	ev_io_stop(fl->f->loop, &t->io);
	close(t->fd);
	free(t->in);
	free(t);
	fl->tcp = NULL;
}

/* Unlinks from the tables: no request joins it and its ID is free. */
static void flight_detach(struct flight *fl)
{
	struct dns_fwd *f = fl->f;
	struct flight **p = flight_id_slot(f, fl->id);

	if (*p == fl)
		*p = fl->id_next;
	p = flight_key_slot(f, &fl->key, fl->hash);
	if (*p == fl)
		*p = fl->key_next;
}

static void flight_free(struct flight *fl)
{
	ev_timer_stop(fl->f->loop, &fl->try_timer);
	ev_timer_stop(fl->f->loop, &fl->deadline);
	tcp_close(fl);
	while (!link_empty(&fl->reqs))
		req_free(container_of(fl->reqs.next, struct dns_fwd_req, link));
	free(fl);
}

/* Ends the lookup: every waiting request gets err or the answer.  msg may
 * live in fl->tcp, so the lookup is freed only after the callbacks. */
static void flight_finish(struct flight *fl, int err, uint8_t *msg, size_t len)
{
	struct dns_fwd *f = fl->f;

	flight_detach(fl);
	ev_timer_stop(f->loop, &fl->try_timer);
	ev_timer_stop(f->loop, &fl->deadline);
	if (fl->tcp)
		ev_io_stop(f->loop, &fl->tcp->io);
	while (!link_empty(&fl->reqs) && !f->dying)
		req_deliver(container_of(fl->reqs.next, struct dns_fwd_req, link), err, msg, len);
	flight_free(fl);
}

static int udp_send(struct dns_fwd *f, const struct flight *fl, const struct sockaddr_storage *to)
{
	int fd = f->fd[fam_idx(to->ss_family)];
	ssize_t n =
	    sendto(fd, fl->query, fl->qlen, MSG_NOSIGNAL, (const struct sockaddr *)to, sa_len(to));

	if (n < 0)
		return -errno;
	return n == (ssize_t)fl->qlen ? 0 : -EMSGSIZE;
}

/* Sends to the current upstream, moving on past those that fail at once;
 * when all do, fails from the loop (never from dns_fwd_query). */
static void flight_send(struct flight *fl)
{
	struct dns_fwd *f = fl->f;

	for (size_t i = 0; i < f->cfg.n; i++) {
		int rc = udp_send(f, fl, &f->up[fl->cur]);

		fl->tries++;
		if (!rc) {
			timer_arm(f->loop, &fl->try_timer, f->per_try);
			return;
		}
		fl->err = rc;
		fl->cur = (fl->cur + 1) % f->cfg.n;
	}
	fl->give_up = true;
	timer_arm(f->loop, &fl->try_timer, 0.);
}

static void on_try(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flight *fl = container_of(w, struct flight, try_timer);
	struct dns_fwd *f = fl->f;

	fwd_hold(f);
	if (fl->give_up)
		flight_finish(fl, fl->err, NULL, 0);
	else
		flight_next(fl);
	fwd_release(f);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flight *fl = container_of(w, struct flight, deadline);
	struct dns_fwd *f = fl->f;

	fwd_hold(f);
	f->st.timeouts++;
	flight_finish(fl, -ETIMEDOUT, NULL, 0);
	fwd_release(f);
}

static void flight_next(struct flight *fl)
{
	tcp_close(fl);
	fl->cur = (fl->cur + 1) % fl->f->cfg.n;
	flight_send(fl);
}

static int flight_start(struct dns_fwd *f, const struct fwd_key *k, struct dns_fwd_req *q)
{
	struct flight *fl = calloc(1, sizeof(*fl));
	int rc;

	if (!fl)
		return -ENOMEM;
	fl->f = f;
	fl->key = *k;
	fl->hash = key_hash(k);
	fl->qname = q->qname;
	link_init(&fl->reqs);
	if ((rc = flight_pick_id(f, &fl->id)) || (rc = query_build(fl))) {
		free(fl);
		return rc;
	}
	fl->id_next = f->by_id[fl->id % FWD_BUCKETS];
	f->by_id[fl->id % FWD_BUCKETS] = fl;
	fl->key_next = f->by_key[fl->hash % FWD_BUCKETS];
	f->by_key[fl->hash % FWD_BUCKETS] = fl;
	ev_timer_init(&fl->try_timer, on_try, 0., 0.);
	ev_timer_init(&fl->deadline, on_deadline, f->cfg.timeout, 0.);
	ev_timer_start(f->loop, &fl->deadline);
	q->state = REQ_WAIT;
	link_add_tail(&fl->reqs, &q->link);
	f->st.forwarded++;
	flight_send(fl);
	return 0;
}

/* ---- answers ---- */

/* The upstream failed rather than answered: worth asking another. */
static bool rcode_retry(unsigned rcode)
{
	return rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED ||
	       rcode == DNS_RCODE_NOTIMP || rcode == DNS_RCODE_FORMERR;
}

static void tcp_start(struct flight *fl, size_t up);

static void flight_answer(struct flight *fl, uint8_t *msg, size_t len, const struct resp_info *ri,
			  size_t up, bool tcp)
{
	struct dns_fwd *f = fl->f;

	if ((ri->flags & DNS_FLAG_TC) && !tcp) {
		if (!fl->tcp) /* else a late truncated answer: the retry is under way */
			tcp_start(fl, up);
		return;
	}
	if (rcode_retry(ri->flags & DNS_FLAG_RCODE_MASK) && fl->tries < f->cfg.n) {
		flight_next(fl);
		return;
	}
	cache_put(f, &fl->key, msg, len, resp_cache_ttl(f, ri));
	flight_finish(fl, 0, msg, len);
}

static long upstream_index(const struct dns_fwd *f, const struct sockaddr_storage *from)
{
	for (size_t i = 0; i < f->cfg.n; i++)
		if (sa_equal(&f->up[i], from))
			return (long)i;
	return -1;
}

/* Anything not from an upstream, unreadable, or not matching a lookup in
 * flight by ID and question is dropped: late, spoofed or garbage. */
static void udp_reply(struct dns_fwd *f, size_t len, const struct sockaddr_storage *from)
{
	long up = upstream_index(f, from);
	struct resp_info ri;
	struct flight *fl;

	if (up < 0 || resp_parse(f->rx, len, &ri))
		return;
	fl = *flight_id_slot(f, ri.id);
	if (fl && resp_matches(fl, &ri))
		flight_answer(fl, f->rx, len, &ri, (size_t)up, false);
}

static void on_udp(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_fwd *f = w->data;

	fwd_hold(f);
	for (int i = 0; i < FWD_RX_BURST && !f->dying; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n =
		    recvfrom(w->fd, f->rx, sizeof(f->rx), 0, (struct sockaddr *)&from, &flen);

		if (n < 0)
			break; /* EAGAIN, or an error no lookup can act on */
		udp_reply(f, (size_t)n, &from);
	}
	fwd_release(f);
}

/* ---- TCP retry ---- */

static void tcp_fail(struct flight *fl, int err)
{
	fl->err = err;
	flight_next(fl);
}

static void tcp_done(struct flight *fl)
{
	struct fwd_tcp *t = fl->tcp;
	struct resp_info ri;

	ev_io_stop(fl->f->loop, &t->io);
	if (resp_parse(t->in, t->in_len, &ri) || !resp_matches(fl, &ri))
		tcp_fail(fl, -EBADMSG);
	else
		flight_answer(fl, t->in, t->in_len, &ri, t->up, true);
}

static void tcp_write(struct flight *fl)
{
	struct fwd_tcp *t = fl->tcp;
	ssize_t n = send(t->fd, t->out + t->out_pos, t->out_len - t->out_pos, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			tcp_fail(fl, -errno); /* a failed connect shows up here too */
		return;
	}
	t->out_pos += (size_t)n;
	if (t->out_pos < t->out_len)
		return;
	ev_io_stop(fl->f->loop, &t->io);
	ev_io_set(&t->io, t->fd, EV_READ);
	ev_io_start(fl->f->loop, &t->io);
}

/* After the 2-byte prefix: room for the message it announces. */
static int tcp_got_len(struct fwd_tcp *t)
{
	struct dns_rd r;

	dns_rd_init(&r, t->hdr, sizeof(t->hdr));
	t->in_len = dns_rd_u16(&r);
	t->got = 0;
	if (t->in_len < DNS_HDR_SIZE)
		return -EBADMSG;
	t->in = malloc(t->in_len);
	return t->in ? 0 : -ENOMEM;
}

/* Reads what is there; returns 1 when the message is complete. */
static int tcp_read_some(struct fwd_tcp *t)
{
	for (;;) {
		uint8_t *dst = t->in ? t->in + t->got : t->hdr + t->got;
		size_t want = (t->in ? t->in_len : sizeof(t->hdr)) - t->got;
		ssize_t n = read(t->fd, dst, want);
		int rc;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET;
		t->got += (size_t)n;
		if (t->in && t->got == t->in_len)
			return 1;
		if (!t->in && t->got == sizeof(t->hdr) && (rc = tcp_got_len(t)))
			return rc;
	}
}

static void on_tcp(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fwd_tcp *t = container_of(w, struct fwd_tcp, io);
	struct flight *fl = w->data;
	struct dns_fwd *f = fl->f;
	int rc;

	fwd_hold(f);
	if (revents & EV_WRITE)
		tcp_write(fl);
	else if ((rc = tcp_read_some(t)) == 1)
		tcp_done(fl);
	else if (rc < 0)
		tcp_fail(fl, rc);
	fwd_release(f);
}

static int tcp_connect(const struct sockaddr_storage *to)
{
	int fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)to, sa_len(to)) && errno != EINPROGRESS) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void tcp_start(struct flight *fl, size_t up)
{
	struct dns_fwd *f = fl->f;
	struct fwd_tcp *t = calloc(1, sizeof(*t));
	struct dns_wr w;
	int fd;

	f->st.tcp_retries++;
	fd = t ? tcp_connect(&f->up[up]) : -ENOMEM;
	if (fd < 0) {
		free(t);
		tcp_fail(fl, fd);
		return;
	}
	t->fd = fd;
	t->up = up;
	dns_wr_init(&w, t->out, sizeof(t->out));
	dns_wr_u16(&w, (uint16_t)fl->qlen);
	dns_wr_bytes(&w, fl->query, fl->qlen);
	t->out_len = w.pos;
	ev_io_init(&t->io, on_tcp, fd, EV_WRITE);
	t->io.data = fl;
	ev_io_start(f->loop, &t->io);
	fl->tcp = t;
	fl->cur = up;
	timer_arm(f->loop, &fl->try_timer, f->per_try);
}

/* ---- the public face ---- */

static int fwd_config(struct dns_fwd *f, const struct dns_fwd_config *cfg, struct svc_err *e)
{
	if (!cfg->n)
		return svc_errf(e, EINVAL, "no upstream nameserver");
	f->cfg = *cfg;
	if (!(f->cfg.timeout > 0))
		f->cfg.timeout = FWD_DEF_TIMEOUT;
	f->per_try = f->cfg.timeout / (double)cfg->n;
	f->up = calloc(cfg->n, sizeof(*f->up));
	if (!f->up)
		return svc_errf(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->n; i++) {
		struct sockaddr_in *in = (void *)&f->up[i];

		f->up[i] = cfg->upstreams[i];
		if (f->up[i].ss_family != AF_INET && f->up[i].ss_family != AF_INET6)
			return svc_errf(e, EAFNOSUPPORT, "upstream %zu: not IPv4 or IPv6", i);
		/* sin_port and sin6_port share their offset */
		if (!in->sin_port)
			in->sin_port = htons(53);
	}
	f->cfg.upstreams = f->up;
	return 0;
}

static int fwd_open_udp(struct dns_fwd *f, int family, struct svc_err *e)
{
	int i = fam_idx(family);

	if (f->fd[i] >= 0)
		return 0;
	f->fd[i] = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd[i] < 0)
		return svc_errf(e, errno, "UDP socket for the upstreams: %s", strerror(errno));
	ev_io_init(&f->io[i], on_udp, f->fd[i], EV_READ);
	f->io[i].data = f;
	ev_io_start(f->loop, &f->io[i]);
	return 0;
}

/* A family the host lacks (IPv6 disabled) is no failure while another
 * works: its upstreams then fail to send and are skipped. */
static int fwd_open_all(struct dns_fwd *f, struct svc_err *e)
{
	int rc = 0;

	for (size_t i = 0; i < f->cfg.n; i++)
		if (fwd_open_udp(f, f->up[i].ss_family, e))
			rc = -e->code;
	if (f->fd[0] >= 0 || f->fd[1] >= 0)
		svc_err_clear(e);
	return f->fd[0] >= 0 || f->fd[1] >= 0 ? 0 : rc;
}

static int fwd_cache_init(struct dns_fwd *f, struct svc_err *e)
{
	size_t nb = 16;

	link_init(&f->lru);
	if (!f->cfg.cache_max)
		return 0;
	while (nb < f->cfg.cache_max && nb < FWD_CACHE_BUCKETS_MAX)
		nb <<= 1;
	f->cache = calloc(nb, sizeof(*f->cache));
	if (!f->cache)
		return svc_errf(e, ENOMEM, "out of memory");
	f->nbuckets = nb;
	return 0;
}

int dns_fwd_new(struct ev_loop *loop, const struct dns_fwd_config *cfg, struct dns_fwd **out,
		struct svc_err *e)
{
	struct dns_fwd *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return svc_errf(e, ENOMEM, "out of memory");
	f->loop = loop;
	f->fd[0] = f->fd[1] = -1;
	link_init(&f->ready);
	ev_timer_init(&f->ready_timer, on_ready, 0., 0.);
	rc = fwd_config(f, cfg, e);
	if (!rc)
		rc = fwd_cache_init(f, e);
	if (!rc)
		rc = fwd_open_all(f, e);
	if (rc) {
		fwd_destroy(f);
		return rc;
	}
	*out = f;
	return 0;
}

static void fwd_destroy(struct dns_fwd *f)
{
	ev_timer_stop(f->loop, &f->ready_timer);
	while (!link_empty(&f->ready))
		req_free(container_of(f->ready.next, struct dns_fwd_req, link));
	for (size_t b = 0; b < FWD_BUCKETS; b++)
		while (f->by_key[b]) {
			struct flight *fl = f->by_key[b];
			f->by_key[b] = fl->key_next;
			flight_free(fl);
		}
	while (f->cache && !link_empty(&f->lru))
		cache_drop(f, container_of(f->lru.next, struct cache_ent, lru));
	for (int i = 0; i < 2; i++)
		if (f->fd[i] >= 0) {
			ev_io_stop(f->loop, &f->io[i]);
			close(f->fd[i]);
		}
	free(f->cache);
	free(f->up);
	free(f);
}

void dns_fwd_free(struct dns_fwd *f)
{
	if (!f)
		return;
	if (f->depth)
		f->dying = true; /* a callback is running: its caller frees */
	else
		fwd_destroy(f);
}

struct dns_fwd_req *dns_fwd_query(struct dns_fwd *f, const char *name, uint16_t type,
				  bool dnssec_ok, dns_fwd_cb cb, void *ctx)
{
	struct dns_fwd_req *q = calloc(1, sizeof(*q));
	struct svc_err e;
	struct fwd_key k;
	struct flight *fl;

	if (!q)
		return NULL;
	link_init(&q->link);
	q->cb = cb;
	q->ctx = ctx;
	if (dns_name_from_str(&q->qname, name, &e)) {
		q->err = -EINVAL;
		req_ready(f, q);
		return q;
	}
	key_make(&k, &q->qname, type, dnssec_ok);
	if (cache_answer(f, &k, q))
		return q;
	f->st.cache_misses++;
	if ((fl = *flight_key_slot(f, &k, key_hash(&k)))) {
		f->st.coalesced++;
		q->state = REQ_WAIT;
		link_add_tail(&fl->reqs, &q->link);
		return q;
	}
	if (flight_start(f, &k, q)) {
		free(q);
		return NULL;
	}
	return q;
}

void dns_fwd_cancel(struct dns_fwd *f, struct dns_fwd_req *req)
{
	if (req && req->state != REQ_RUNNING)
		req_free(req);
}

void dns_fwd_stats(const struct dns_fwd *f, struct dns_fwd_stats *out)
{
	*out = f->st;
}
