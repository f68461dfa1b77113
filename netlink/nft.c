// SPDX-License-Identifier: MIT
/* The nftables backend.  Every element svcd programs is kept in one table
 * (set, key) -> data with a reference count, and each service remembers the
 * elements it wants.  A partial sync recomputes only the changed services'
 * elements, diffs them against what they had, and sends the difference as
 * one transaction.  A full sync (start-up, periodic resync, after any
 * failure) dumps what the kernel holds and repairs the difference, without
 * flushing: svcd adopts rules left by a previous run, and restores what
 * someone deleted. */
#include "nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conntrack.h"
#include "nftmsg.h"
#include "nftrules.h"
#include "smap.h"
#include "util.h"

#define ELEMS_PER_MSG 512

/* One per programmed element (hundreds of thousands at scale): kept small,
 * and carved from chunks rather than malloc'd one by one. */
struct elem {
	uint16_t set; /* enum nft_set_id, or SET_COUNT + index of a shape */
	uint8_t klen, dlen;
	bool mark; /* diff scratch: wanted by the old list, not yet by the new */
	uint8_t key[16];
	uint8_t data[8];
	uint32_t refs;	/* services wanting it */
	uint32_t stamp; /* diff scratch: last pass that wanted it */
};

#define POOL_CHUNK 4096

struct elem_pool {
	struct elem *free; /* linked through the first bytes of key */
	struct elem **chunks;
	size_t nchunks, left; /* unused elements at the end of the last chunk */
};

/* Open addressing over (set, key). */
struct elem_table {
	struct elem **slot;
	size_t cap, n, tomb;
};
#define TOMB ((struct elem *)1)

struct svc_prog {
	char *key; /* "ns/name" */
	struct elem **v;
	uint32_t n;
};

/* A shape in use or seen in the kernel: its set (and, for load balancing,
 * its chain), and how many elements of its set services want. */
struct shape {
	struct lb_shape sh;
	char set[32];
	bool set_present, chain_present; /* in the kernel */
	uint32_t refs;
};

struct nft {

	char *table, *node;
	struct nft_rule_ctx rc;
	struct nft_sock sock;
	struct elem_table elems;
	struct elem_pool pool;
	struct smap progs; /* "ns/name" -> struct svc_prog */
	struct shape *shapes;
	size_t nshapes, capshapes;
	bool need_full; /* the cache may not match the kernel */
};

/* --- the element table --------------------------------------------------- */

static uint64_t elem_hash(uint16_t set, const uint8_t *key, uint8_t klen)
{
	uint64_t h = 1469598103934665603ULL ^ set;

	for (uint8_t i = 0; i < klen; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t et_find(const struct elem_table *t, uint16_t set, const uint8_t *key, uint8_t klen,
		      bool *found)
{
	size_t mask = t->cap - 1, i = elem_hash(set, key, klen) & mask, tomb = SIZE_MAX;

	for (;; i = (i + 1) & mask) {
		struct elem *x = t->slot[i];
		if (!x) {
			*found = false;
			return tomb != SIZE_MAX ? tomb : i;
		}
		if (x == TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
		} else if (x->set == set && x->klen == klen && !memcmp(x->key, key, klen)) {
			*found = true;
			return i;
		}
	}
}

static int et_grow(struct elem_table *t)
{
	struct elem_table nt = {.cap = t->cap ? t->cap * 2 : 1024};
	bool found;

	if (t->cap && (t->n + 1) * 2 < t->cap)
		nt.cap = t->cap;
	if (!(nt.slot = calloc(nt.cap, sizeof(*nt.slot))))
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i] > TOMB) {
			struct elem *x = t->slot[i];
			nt.slot[et_find(&nt, x->set, x->key, x->klen, &found)] = x;
			nt.n++;
		}
	free(t->slot);
	*t = nt;
	return 0;
}

static struct elem *et_get(const struct elem_table *t, const struct elem *want)
{
	bool found;
	size_t i;

	if (!t->cap)
		return NULL;
	i = et_find(t, want->set, want->key, want->klen, &found);
	return found ? t->slot[i] : NULL;
}

static int et_put(struct elem_table *t, struct elem *x)
{
	bool found;
	size_t i;

	if ((t->n + t->tomb + 1) * 4 >= t->cap * 3 && et_grow(t))
		return -ENOMEM;
	i = et_find(t, x->set, x->key, x->klen, &found);
	if (!found && t->slot[i] == TOMB)
		t->tomb--;
	if (!found)
		t->n++;
	t->slot[i] = x;
	return 0;
}

static void et_del(struct elem_table *t, const struct elem *x)
{
	bool found;
	size_t i = et_find(t, x->set, x->key, x->klen, &found);

	if (found) {
		t->slot[i] = TOMB;
		t->n--;
		t->tomb++;
	}
}

static void et_free(struct elem_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i] > TOMB)
			free(t->slot[i]);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static struct elem *pool_get(struct elem_pool *p)
{
	struct elem *x = p->free;

	if (x) {
		memcpy(&p->free, x->key, sizeof(p->free));
		return x;
	}
	if (!p->left) {
		struct elem **c = realloc(p->chunks, (p->nchunks + 1) * sizeof(*c));
		if (!c)
			return NULL;
		p->chunks = c;
		if (!(c[p->nchunks] = malloc(POOL_CHUNK * sizeof(struct elem))))
			return NULL;
		p->nchunks++;
		p->left = POOL_CHUNK;
	}
	return &p->chunks[p->nchunks - 1][POOL_CHUNK - p->left--];
}

static void pool_put(struct elem_pool *p, struct elem *x)
{
	memcpy(x->key, &p->free, sizeof(p->free));
	p->free = x;
}

static void pool_reset(struct elem_pool *p)
{
	for (size_t i = 0; i < p->nchunks; i++)
		free(p->chunks[i]);
	free(p->chunks);
	memset(p, 0, sizeof(*p));
}

static bool same_data(const struct elem *a, const struct elem *b)
{
	return a->dlen == b->dlen && !memcmp(a->data, b->data, a->dlen);
}

static struct shape *shape_get(struct nft *nf, const struct lb_shape *sh, bool create);

/* --- what a service wants ------------------------------------------------ */

struct want {
	struct elem *v;
	uint32_t n, cap;
	int err;
};

static struct elem *want_add_set(struct want *w, uint16_t set, uint8_t klen, uint8_t dlen)
{
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 16;
		struct elem *v = realloc(w->v, cap * sizeof(*v));
		if (!v) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->v = v;
		w->cap = cap;
	}
	struct elem *x = &w->v[w->n++];
	memset(x, 0, sizeof(*x));
	x->set = set;
	x->klen = klen;
	x->dlen = dlen;
	return x;
}

static struct elem *want_add(struct want *w, enum nft_set_id set)
{
	return want_add_set(w, (uint16_t)set, nft_sets[set].klen, nft_sets[set].dlen);
}

/* An element of a shape's set: the service key (addr . proto . port, or
 * proto . port for nodePorts). */
static struct elem *want_shape(struct nft *nf, struct want *w, const struct lb_shape *sh)
{
	struct shape *s = shape_get(nf, sh, true);

	if (!s) {
		w->err = -ENOMEM;
		return NULL;
	}
	return want_add_set(w, (uint16_t)(SET_COUNT + (s - nf->shapes)),
			    lb_by_nodeport(sh) ? 8 : 12, 0);
}

/* Keys are laid out as nf_tables registers hold them: each field padded
 * to 4 bytes, addresses and ports in network order. */
static void put_addr(uint8_t *p, const struct svc_addr *a)
{
	memcpy(p, a ? a->a : (const uint8_t[4]){0}, 4);
}

static void put_proto_port(uint8_t *p, uint8_t proto, uint16_t port)
{
	uint16_t n = htons(port);

	memset(p, 0, 8);
	p[0] = proto;
	memcpy(p + 4, &n, 2);
}

struct keyspec {
	const struct svc_addr *addr; /* NULL: nodePort */
	uint8_t proto;
	uint16_t port;
};

static void key_service(uint8_t *p, const struct keyspec *k)
{
	put_addr(p, k->addr);
	put_proto_port(p + 4, k->proto, k->port);
}

/* Ready targets of port p, restricted to this node when `local`. */
static uint32_t pick_targets(const struct nft *nf, const struct svc_port_targets *t, bool local,
			     const struct svc_target **out)
{
	uint32_t n = 0;

	/* This table is IPv4: IPv6 endpoints belong to an ip6 table. */
	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i].ready && t->v[i].addr.family == AF_INET &&
		    (!local || (t->v[i].node && !strcmp(t->v[i].node, nf->node))))
			out[n++] = &t->v[i];
	return n;
}

/* Everything one service address . port needs. */
static void put_service_key(struct elem *x, const struct keyspec *k)
{
	if (!k->addr)
		put_proto_port(x->key, k->proto, k->port);
	else
		key_service(x->key, k);
}

static void want_key(struct nft *nf, struct want *w, const struct keyspec *k, uint32_t nready,
		     const struct svc_target **tg, uint32_t n, bool masq, uint32_t aff_timeout)
{
	bool np = !k->addr;
	struct elem *x;

	if (!nready)
		return; /* refused: through cluster-ips or the no-endpoint sets */
	if (!n) {
		/* Policy Local and no local endpoint: dropped, as Kubernetes does. */
		if ((x = want_add(w, np ? SET_NP_DROP_LOCAL : SET_DROP_LOCAL)))
			put_service_key(x, k);
		return;
	}
	struct lb_shape lb = {np ? LB_NODEPORT : LB_ADDR, n, aff_timeout > 0, 0};
	if ((x = want_shape(nf, w, &lb)))
		put_service_key(x, k);
	struct lb_shape rec = {np ? LB_NP_RECORD : LB_RECORD, 0, true, aff_timeout};
	if (aff_timeout && (x = want_shape(nf, w, &rec)))
		put_service_key(x, k);
	if (masq && (x = want_add(w, np ? SET_NODEPORT_MASQ : SET_EXT_MASQ)))
		put_service_key(x, k);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = i;
		uint16_t port = htons(tg[i]->port);
		if (!(x = want_add(w, np ? SET_NP_ENDPOINTS : SET_ENDPOINTS)))
			continue;
		put_service_key(x, k);
		memcpy(x->key + (np ? 8 : 12), &slot, 4);
		put_addr(x->data, &tg[i]->addr);
		memcpy(x->data + 4, &port, 2);
	}
}

static void want_no_endpoints(struct want *w, const struct keyspec *k)
{
	struct elem *x = want_add(w, k->addr ? SET_NO_ENDPOINTS : SET_NO_EP_NODEPORTS);

	if (!x)
		return;
	if (k->addr)
		key_service(x->key, k);
	else
		put_proto_port(x->key, k->proto, k->port);
}

static void want_port(struct nft *nf, struct want *w, const struct svc_service *s, uint32_t p)
{
	const struct svc_port *sp = &s->ports[p];
	const struct svc_port_targets *t = &s->targets[p];
	const struct svc_target *all[t->n + 1], *in[t->n + 1], *ext[t->n + 1];
	uint32_t nall = pick_targets(nf, t, false, all);
	uint32_t nin = s->internal_local ? pick_targets(nf, t, true, in) : nall;
	uint32_t next = s->external_local ? pick_targets(nf, t, true, ext) : nall;
	uint32_t aff = s->affinity ? s->affinity_timeout : 0;
	struct keyspec k = {&s->cluster_ip, sp->proto, sp->port};

	want_key(nf, w, &k, nall, s->internal_local ? in : all, nin, false, aff);
	for (uint32_t i = 0; i < s->n_external_ips + s->n_lb_ips; i++) {
		k.addr =
		    i < s->n_external_ips ? &s->external_ips[i] : &s->lb_ips[i - s->n_external_ips];
		if (k.addr->family != AF_INET)
			continue;
		if (!nall)
			want_no_endpoints(w, &k);
		want_key(nf, w, &k, nall, s->external_local ? ext : all, next, !s->external_local,
			 aff);
	}
	if (sp->node_port) {
		k = (struct keyspec){NULL, sp->proto, sp->node_port};
		if (!nall)
			want_no_endpoints(w, &k);
		want_key(nf, w, &k, nall, s->external_local ? ext : all, next, !s->external_local,
			 aff);
	}
	for (uint32_t i = 0; i < nall; i++) {
		struct elem *x = want_add(w, SET_HAIRPIN);
		if (x) {
			put_addr(x->key, &all[i]->addr);
			put_addr(x->key + 4, &all[i]->addr);
		}
	}
}

/* The elements a service wants; none when it is gone or has no ClusterIP. */
static int want_service(struct nft *nf, const struct svc_obj *o, struct want *w)
{
	const struct svc_service *s = o ? o->u.svc : NULL;
	struct elem *x;

	/* A service the userspace balancer carries gets no rule here: its
	 * address is local to the node, and the balancer listens on it. */
	if (!s || s->type == SVC_EXTERNAL_NAME || s->headless || s->cluster_ip.family != AF_INET ||
	    !s->targets || s->userspace)
		return 0;
	if ((x = want_add(w, SET_CLUSTER_IPS)))
		put_addr(x->key, &s->cluster_ip);
	for (uint32_t p = 0; p < s->nports; p++)
		want_port(nf, w, s, p);
	return w->err;
}

/* --- chains ------------------------------------------------------------------ */

static struct shape *shape_get(struct nft *nf, const struct lb_shape *sh, bool create)
{
	char set[32];

	lb_set_name(sh, set);
	for (size_t i = 0; i < nf->nshapes; i++)
		if (!strcmp(nf->shapes[i].set, set))
			return &nf->shapes[i];
	if (!create || nf->nshapes >= UINT16_MAX - SET_COUNT)
		return NULL;
	if (nf->nshapes == nf->capshapes) {
		size_t cap = nf->capshapes ? nf->capshapes * 2 : 16;
		struct shape *v = realloc(nf->shapes, cap * sizeof(*v));
		if (!v)
			return NULL;
		nf->shapes = v;
		nf->capshapes = cap;
	}
	struct shape *s = &nf->shapes[nf->nshapes++];
	memset(s, 0, sizeof(*s));
	s->sh = *sh;
	memcpy(s->set, set, sizeof(s->set));
	return s;
}

static struct shape *shape_of(struct nft *nf, uint16_t set)
{
	return set >= SET_COUNT ? &nf->shapes[set - SET_COUNT] : NULL;
}

static const char *set_name(const struct nft *nf, uint16_t set)
{
	return set < SET_COUNT ? nft_sets[set].name : nf->shapes[set - SET_COUNT].set;
}

static void chain_ref(struct nft *nf, const struct elem *x, int delta)
{
	struct shape *s = shape_of(nf, x->set);

	if (s)
		s->refs = (uint32_t)((int)s->refs + delta);
}

/* --- diff ------------------------------------------------------------------- */

struct pending {
	struct elem **add, **del;
	size_t nadd, ndel, capadd, capdel;
	struct ct_match *ct;
	size_t nct, capct;
	int err;
};

static void push(struct elem ***v, size_t *n, size_t *cap, struct elem *x, int *err)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct elem **nv = realloc(*v, c * sizeof(*nv));
		if (!nv) {
			*err = -ENOMEM;
			return;
		}
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
}

static void pend_add(struct pending *p, struct elem *x)
{
	push(&p->add, &p->nadd, &p->capadd, x, &p->err);
}

static void pend_del(struct pending *p, struct elem *x)
{
	push(&p->del, &p->ndel, &p->capdel, x, &p->err);
}

static void pending_free(struct nft *nf, struct pending *p)
{
	for (size_t i = 0; i < p->ndel; i++)
		pool_put(&nf->pool, p->del[i]);
	free(p->add);
	free(p->del);
	free(p->ct);
	memset(p, 0, sizeof(*p));
}

/* Service address . proto . port of an endpoints element (nodePorts with
 * address 0.0.0.0), so both maps can be compared. */
static void endpoint_key(const struct elem *x, uint8_t out[12])
{
	if (x->set == SET_NP_ENDPOINTS) {
		memset(out, 0, 4);
		memcpy(out + 4, x->key, 8);
	} else {
		memcpy(out, x->key, 12);
	}
}

/* An endpoint left this service address: its UDP flows must be forgotten
 * and clients remembered for it by affinity sent elsewhere.  `gone` is
 * not in `w` only when no slot of the same address still points to it. */
static void ct_note(struct pending *p, const struct elem *gone, const struct want *w)
{
	static const uint8_t zero[4];
	uint8_t gk[12], wk[12];
	struct ct_match *m;

	if (!w || (gone->set != SET_ENDPOINTS && gone->set != SET_NP_ENDPOINTS))
		return;
	endpoint_key(gone, gk);
	for (uint32_t i = 0; i < w->n; i++) {
		if (w->v[i].set != gone->set || memcmp(w->v[i].data, gone->data, 8))
			continue;
		endpoint_key(&w->v[i], wk);
		if (!memcmp(wk, gk, 12))
			return;
	}
	if (p->nct == p->capct) {
		size_t c = p->capct ? p->capct * 2 : 16;
		struct ct_match *v = realloc(p->ct, c * sizeof(*v));
		if (!v)
			return; /* best effort: the entries time out on their own */
		p->ct = v;
		p->capct = c;
	}
	m = &p->ct[p->nct++];
	memset(m, 0, sizeof(*m));
	if (memcmp(gk, zero, 4)) {
		m->orig_dst.family = AF_INET;
		memcpy(m->orig_dst.a, gk, 4);
	}
	m->proto = gk[4];
	m->orig_dport = (uint16_t)(gk[8] << 8 | gk[9]);
	m->endpoint.family = AF_INET;
	memcpy(m->endpoint.a, gone->data, 4);
	m->endpoint_port = (uint16_t)(gone->data[4] << 8 | gone->data[5]);
}

static void elem_unref(struct nft *nf, struct elem *x, struct pending *p, const struct want *w)
{
	if (--x->refs)
		return;
	et_del(&nf->elems, x);
	chain_ref(nf, x, -1);
	ct_note(p, x, w);
	pend_del(p, x);
}

static struct elem *elem_insert(struct nft *nf, const struct elem *want, uint32_t pass,
				struct pending *p)
{
	struct elem *x = pool_get(&nf->pool);

	if (x) {
		*x = *want;
		x->refs = 1;
		x->stamp = pass;
	}
	if (!x || et_put(&nf->elems, x)) {
		if (x)
			pool_put(&nf->pool, x);
		p->err = -ENOMEM;
		return NULL;
	}
	chain_ref(nf, x, 1);
	pend_add(p, x);
	return x;
}

/* Take one wanted element into the table; returns the entry the service keeps. */
static struct elem *elem_want(struct nft *nf, const struct elem *want, uint32_t pass,
			      struct pending *p, const struct want *w)
{
	struct elem *x = et_get(&nf->elems, want);

	if (x && x->stamp == pass)
		return NULL; /* wanted twice by this service (hairpin of two ports) */
	if (x && x->mark) {
		x->mark = false; /* kept from the old list */
		x->stamp = pass;
		if (same_data(x, want))
			return x;
		/* Same key, new data: delete and add in the same transaction. */
		et_del(&nf->elems, x);
		chain_ref(nf, x, -1);
		ct_note(p, x, w);
		pend_del(p, x);
		return elem_insert(nf, want, pass, p);
	}
	if (x) {
		/* Another service has it.  Only elements without data are
		 * shared (hairpin entries); an element with data has exactly
		 * one owner, so replacing it in place above is safe.  Two
		 * services claiming one external IP and port: the first keeps
		 * the endpoint slots. */
		if (x->dlen || !same_data(x, want))
			return NULL;
		x->refs++;
		x->stamp = pass;
		return x;
	}
	return elem_insert(nf, want, pass, p);
}

static struct svc_prog *prog_get(struct nft *nf, const char *key, bool create)
{
	struct svc_prog *pr = smap_get(&nf->progs, key);

	if (pr || !create)
		return pr;
	if (!(pr = calloc(1, sizeof(*pr))) || !(pr->key = strdup(key)) ||
	    smap_put(&nf->progs, pr->key, pr)) {
		if (pr)
			free(pr->key);
		free(pr);
		return NULL;
	}
	return pr;
}

static void prog_drop(struct nft *nf, struct svc_prog *pr)
{
	smap_del(&nf->progs, pr->key);
	free(pr->key);
	free(pr->v);
	free(pr);
}

/* Bring one service's elements from what it had to what it wants. */
static int diff_service(struct nft *nf, const char *key, const struct want *w, uint32_t pass,
			struct pending *p)
{
	struct svc_prog *pr = prog_get(nf, key, w->n > 0);
	struct elem **nv = NULL;
	uint32_t n = 0;

	if (!pr)
		return w->n ? -ENOMEM : 0;
	for (uint32_t i = 0; i < pr->n; i++)
		pr->v[i]->mark = true;
	if (w->n && !(nv = malloc(w->n * sizeof(*nv))))
		return -ENOMEM;
	for (uint32_t i = 0; i < w->n; i++) {
		struct elem *x = elem_want(nf, &w->v[i], pass, p, w);
		if (x)
			nv[n++] = x;
	}
	for (uint32_t i = 0; i < pr->n; i++)
		if (pr->v[i]->mark) {
			pr->v[i]->mark = false;
			elem_unref(nf, pr->v[i], p, w);
		}
	free(pr->v);
	pr->v = nv;
	pr->n = n;
	if (!n)
		prog_drop(nf, pr);
	return p->err;
}

/* --- messages ------------------------------------------------------------------ */

static void put_elems(struct nft *nf, struct nft_txn *t, struct elem **v, size_t n, bool add)
{
	size_t i = 0;

	while (i < n) {
		uint16_t set = v[i]->set;
		struct nftnl_set *s = nftnl_set_alloc();
		struct nlmsghdr *nlh;
		char what[96];
		size_t k = 0;

		snprintf(what, sizeof(what), "%s elements of %s", add ? "adding" : "deleting",
			 set_name(nf, set));
		nlh = nft_txn_msg(t, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, NFPROTO_IPV4,
				  add ? NLM_F_CREATE : 0, what);
		if (!s || !nlh) {
			nftnl_set_free(s);
			t->err = t->err ? t->err : -ENOMEM;
			return;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, nf->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, set_name(nf, set));
		for (; i < n && v[i]->set == set && k < ELEMS_PER_MSG; i++, k++) {
			struct nftnl_set_elem *el = nftnl_set_elem_alloc();
			if (!el)
				break;
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, v[i]->key, v[i]->klen);
			if (add && v[i]->dlen)
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, v[i]->data, v[i]->dlen);

			nftnl_set_elem_add(s, el);
		}
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		nft_txn_done(t);
	}
}

static int cmp_elem_set(const void *a, const void *b)
{
	const struct elem *x = *(struct elem *const *)a, *y = *(struct elem *const *)b;
	return (int)x->set - (int)y->set;
}

/* Grouped by set, so each message carries elements of one set. */
static void sort_elems(struct elem **v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_elem_set);
}

/* A shape's set, chain and the rule sending its keys there must exist
 * before its elements do.  Created here when first used; removed only by a
 * full sync, which rebuilds the dispatching rules. */
static void put_missing_shapes(struct nft *nf, struct nft_txn *t)
{
	char chain[32];

	for (size_t i = 0; i < nf->nshapes; i++) {
		struct shape *s = &nf->shapes[i];
		if (!s->refs || s->set_present)
			continue;
		nft_put_shape_set(t, nf->table, &s->sh, true);
		if (!lb_is_record(&s->sh) && !s->chain_present) {
			lb_chain_name(&s->sh, chain);
			nft_put_chain(t, nf->table, chain, NULL);
			nft_put_rules(t, &nf->rc, chain);
		}
		nft_put_shape_rule(t, &nf->rc, &s->sh);
	}
}

static void put_pending(struct nft *nf, struct nft_txn *t, struct pending *p)
{
	sort_elems(p->del, p->ndel);
	sort_elems(p->add, p->nadd);
	put_missing_shapes(nf, t);
	put_elems(nf, t, p->del, p->ndel, false);
	put_elems(nf, t, p->add, p->nadd, true);
}

static void shapes_committed(struct nft *nf)
{
	for (size_t i = 0; i < nf->nshapes; i++)
		if (nf->shapes[i].refs)
			nf->shapes[i].set_present = nf->shapes[i].chain_present = true;
}

/* After a full sync the kernel holds exactly the shapes in use. */
static void shapes_synced(struct nft *nf)
{
	for (size_t i = 0; i < nf->nshapes; i++)
		nf->shapes[i].set_present = nf->shapes[i].chain_present = nf->shapes[i].refs > 0;
}

struct sweep {
	const struct pending *p;
	struct elem **del;
	size_t n, cap;
	int err;
};

/* An affinity entry whose endpoint left its service goes, so that the
 * client is balanced again instead of sent to an address that is gone. */
static int cb_sweep(const struct nlmsghdr *nlh, void *data)
{
	struct sweep *sw = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *el;

	if (s && nftnl_set_elems_nlmsg_parse(nlh, s) == 0 && (it = nftnl_set_elems_iter_create(s)))
		while ((el = nftnl_set_elems_iter_next(it))) {
			uint32_t kl = 0, dl = 0;
			const uint8_t *k = nftnl_set_elem_get(el, NFTNL_SET_ELEM_KEY, &kl);
			const uint8_t *d = nftnl_set_elem_get(el, NFTNL_SET_ELEM_DATA, &dl);
			if (!k || !d || kl != 16 || dl != 8)
				continue;
			for (size_t i = 0; i < sw->p->nct; i++) {
				const struct ct_match *m = &sw->p->ct[i];
				uint16_t port = htons(m->orig_dport),
					 eport = htons(m->endpoint_port);
				if ((m->orig_dst.family && memcmp(k + 4, m->orig_dst.a, 4)) ||
				    k[8] != m->proto || memcmp(k + 12, &port, 2) ||
				    memcmp(d, m->endpoint.a, 4) || memcmp(d + 4, &eport, 2))
					continue;
				struct elem *x = calloc(1, sizeof(*x));
				if (!x)
					break;
				x->set = SET_AFFINITY;
				x->klen = 16;
				memcpy(x->key, k, 16);
				push(&sw->del, &sw->n, &sw->cap, x, &sw->err);
				break;
			}
		}
	if (it)
		nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* One pass: dump, then delete what points to a removed endpoint.  The
 * batch fails as a whole if an entry expired in between (ENOENT). */
static int sweep_once(struct nft *nf, const struct pending *p)
{
	struct sweep sw = {.p = p};
	struct svc_err e = {0};
	struct nft_txn t;
	int r = nft_dump(&nf->sock, NFT_MSG_GETSETELEM, NFPROTO_IPV4, nf->table,
			 nft_sets[SET_AFFINITY].name, cb_sweep, &sw, &e);

	if (!r && sw.n && !(r = nft_txn_begin(&t, &nf->sock))) {
		put_elems(nf, &t, sw.del, sw.n, false);
		r = nft_txn_commit(&t, &e);
		nft_txn_free(&t);
	}
	for (size_t i = 0; i < sw.n; i++)
		free(sw.del[i]);
	free(sw.del);
	if (r)
		svc_log(SVC_LOG_DEBUG, "nftables: affinity sweep: %s", e.msg);
	return r;
}

static void sweep_affinity(struct nft *nf, const struct pending *p)
{
	/* A second pass sees the expired entries gone. */
	for (int i = 0; i < 3 && sweep_once(nf, p) == -ENOENT; i++)
		;
}

/* Without ClientIP services (in use, or just gone) the affinity map has
 * nothing to sweep: no dump needed. */
static bool affinity_in_use(const struct nft *nf)
{
	for (size_t i = 0; i < nf->nshapes; i++)
		if (nf->shapes[i].sh.affinity && (nf->shapes[i].refs || nf->shapes[i].set_present))
			return true;
	return false;
}

static void forget_flows(struct nft *nf, struct pending *p)
{
	struct svc_err e = {0};
	size_t n = 0, udp = 0;

	if (!p->nct)
		return;
	if (affinity_in_use(nf))
		sweep_affinity(nf, p);
	for (size_t i = 0; i < p->nct; i++)
		if (p->ct[i].proto == IPPROTO_UDP)
			p->ct[udp++] = p->ct[i];
	if (udp && ct_delete_udp(p->ct, udp, &n, &e))
		svc_log(SVC_LOG_WARN, "nftables: %s", e.msg);
	else if (n)
		svc_log(SVC_LOG_DEBUG, "nftables: forgot %zu UDP flows to removed endpoints", n);
}

/* --- partial sync ---------------------------------------------------------------- */

static int split_key(const char *key, char *ns, size_t nn, const char **name)
{
	const char *slash = strchr(key, '/');

	if (!slash || (size_t)(slash - key) >= nn)
		return -EINVAL;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	*name = slash + 1;
	return 0;
}

static uint32_t next_pass(void)
{
	static uint32_t pass;
	return ++pass ? pass : ++pass;
}

static int sync_partial(struct nft *nf, const struct svc_model *m, const char *const *keys,
			size_t n, struct svc_err *e)
{
	struct pending p = {0};
	struct nft_txn t;
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		struct want w = {0};
		const char *name;
		char ns[64];
		if (split_key(keys[i], ns, sizeof(ns), &name))
			continue;
		r = want_service(nf, model_get(m, KIND_SERVICE, ns, name), &w);
		if (!r)
			r = diff_service(nf, keys[i], &w, next_pass(), &p);
		free(w.v);
	}
	if (r || (r = nft_txn_begin(&t, &nf->sock))) {
		pending_free(nf, &p);
		nf->need_full = true;
		return svc_errf(e, -r, "nftables: %s", strerror(-r));
	}
	put_pending(nf, &t, &p);
	r = nft_txn_commit(&t, e);
	nft_txn_free(&t);
	if (r)
		nf->need_full = true; /* the cache is ahead of the kernel now */
	else
		shapes_committed(nf);
	if (!r)
		forget_flows(nf, &p);
	pending_free(nf, &p);
	return r;
}

/* --- full sync -------------------------------------------------------------------- */

struct kernel_view {
	struct nft *nf;
	bool table;
	bool sets[SET_COUNT];
	struct smap chains; /* name -> rule count + 1 (owned keys) */
	struct elem_table elems;
	uint16_t cur; /* set being dumped */
	int err;
};

/* Some dumps cover every table of the family: keep ours only. */
static bool ours(const struct kernel_view *kv, const char *table)
{
	return table && !strcmp(table, kv->nf->table);
}

static int cb_set(const struct nlmsghdr *nlh, void *data)
{
	struct kernel_view *kv = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (s && nftnl_set_nlmsg_parse(nlh, s) == 0 &&
	    ours(kv, nftnl_set_get_str(s, NFTNL_SET_TABLE))) {
		const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		struct lb_shape sh;
		struct shape *shp;
		for (int i = 0; name && i < SET_COUNT; i++)
			if (!strcmp(name, nft_sets[i].name))
				kv->sets[i] = true;
		if (name && lb_set_parse(name, &sh) && (shp = shape_get(kv->nf, &sh, true)))
			shp->set_present = true;
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static void chain_count(struct kernel_view *kv, const char *name, int delta)
{
	void **slot = smap_ref(&kv->chains, name);
	char *key;

	if (slot) {
		*slot = (void *)((uintptr_t)*slot + (uintptr_t)delta);
		return;
	}
	if (!(key = strdup(name)) || smap_put(&kv->chains, key, (void *)(uintptr_t)(1 + delta))) {
		free(key);
		kv->err = -ENOMEM;
	}
}

static int cb_chain(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c && nftnl_chain_nlmsg_parse(nlh, c) == 0 && nftnl_chain_get_str(c, NFTNL_CHAIN_NAME) &&
	    ours(data, nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE)))
		chain_count(data, nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), 0);
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int cb_rule(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r && nftnl_rule_nlmsg_parse(nlh, r) == 0 && nftnl_rule_get_str(r, NFTNL_RULE_CHAIN) &&
	    ours(data, nftnl_rule_get_str(r, NFTNL_RULE_TABLE)))
		chain_count(data, nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), 1);
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

/* Kernel replies are checked field by field before they become elements. */
static int kernel_elem(struct kernel_view *kv, struct nftnl_set_elem *el)
{
	struct shape *shp = shape_of(kv->nf, kv->cur);
	struct nft_set_def dyn = {.klen = shp && lb_by_nodeport(&shp->sh) ? 8 : 12};
	const struct nft_set_def *d = shp ? &dyn : &nft_sets[kv->cur];
	struct elem *x = calloc(1, sizeof(*x));
	const void *p;
	uint32_t len = 0;

	if (!x)
		return -ENOMEM;
	x->set = kv->cur;
	x->klen = d->klen;
	x->dlen = d->dlen;
	p = nftnl_set_elem_get(el, NFTNL_SET_ELEM_KEY, &len);
	if (!p || len != d->klen)
		goto skip;
	memcpy(x->key, p, len);
	if (d->dlen) {
		p = nftnl_set_elem_get(el, NFTNL_SET_ELEM_DATA, &len);
		if (!p || len != d->dlen)
			goto skip;
		memcpy(x->data, p, len);
	}
	if (!et_get(&kv->elems, x) && et_put(&kv->elems, x) == 0)
		return 0;
skip:
	/* Malformed or foreign: leave it out, so the diff deletes it. */
	free(x);
	return 0;
}

static int cb_elems(const struct nlmsghdr *nlh, void *data)
{
	struct kernel_view *kv = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *el;

	if (s && nftnl_set_elems_nlmsg_parse(nlh, s) == 0 && (it = nftnl_set_elems_iter_create(s)))
		while ((el = nftnl_set_elems_iter_next(it)))
			if (kernel_elem(kv, el))
				kv->err = -ENOMEM;
	if (it)
		nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static void kernel_view_free(struct kernel_view *kv)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&kv->chains, &cur)))
		free((char *)ent->key);
	smap_free(&kv->chains);
	et_free(&kv->elems);
}

static int read_kernel(struct nft *nf, struct kernel_view *kv, struct svc_err *e)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	kv->nf = nf;
	for (size_t i = 0; i < nf->nshapes; i++)
		nf->shapes[i].set_present = nf->shapes[i].chain_present = false;
	r = nft_dump(&nf->sock, NFT_MSG_GETSET, NFPROTO_IPV4, nf->table, NULL, cb_set, kv, e);
	if (r == -ENOENT)
		return 0; /* no table: everything is missing */
	if (r ||
	    (r = nft_dump(&nf->sock, NFT_MSG_GETCHAIN, NFPROTO_IPV4, nf->table, NULL, cb_chain, kv,
			  e)) ||
	    (r = nft_dump(&nf->sock, NFT_MSG_GETRULE, NFPROTO_IPV4, nf->table, NULL, cb_rule, kv,
			  e)))
		return r == -ENOENT ? 0 : r;
	kv->table = true;
	for (size_t i = 0; i < SET_MANAGED + nf->nshapes && !r; i++) {
		uint16_t id = (uint16_t)(i < SET_MANAGED ? i : SET_COUNT + (i - SET_MANAGED));
		if (i < SET_MANAGED ? !kv->sets[i] : !shape_of(nf, id)->set_present)
			continue;
		kv->cur = id;
		r = nft_dump(&nf->sock, NFT_MSG_GETSETELEM, NFPROTO_IPV4, nf->table,
			     set_name(nf, id), cb_elems, kv, e);
	}
	if (!r && kv->err)
		r = svc_errf(e, -kv->err, "nftables: reading the ruleset: %s", strerror(-kv->err));
	return r;
}

static void cache_clear(struct nft *nf)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&nf->progs, &cur))) {
		struct svc_prog *pr = ent->val;
		free(pr->key);
		free(pr->v);
		free(pr);
	}
	smap_free(&nf->progs);
	free(nf->elems.slot); /* the elements live in the pool */
	memset(&nf->elems, 0, sizeof(nf->elems));
	pool_reset(&nf->pool);
	for (size_t i = 0; i < nf->nshapes; i++)
		nf->shapes[i].refs = 0;
}

/* Recompute every service into an empty cache. */
static int rebuild_cache(struct nft *nf, const struct svc_model *m, struct svc_err *e)
{
	struct pending p = {0};
	struct svc_obj *o;
	size_t cur = 0;
	char key[600];
	int r = 0;

	cache_clear(nf);
	while (!r && (o = model_iter(m, KIND_SERVICE, &cur))) {
		struct want w = {0};
		snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
		if (!(r = want_service(nf, o, &w)))
			r = diff_service(nf, key, &w, next_pass(), &p);
		free(w.v);
		p.nadd = 0; /* the kernel diff decides what to send */
	}
	pending_free(nf, &p);
	return r ? svc_errf(e, -r, "nftables: %s", strerror(-r)) : 0;
}

static bool is_fixed(const char *name)
{
	for (unsigned i = 0; i < nft_nfixed; i++)
		if (!strcmp(nft_fixed_chains[i].name, name))
			return true;
	return false;
}

/* Sets and chains of the shapes in use, fixed chains: create what is
 * missing (everything before any rule, since rules refer to sets and jump
 * between chains), refill what someone changed (its rule count differs).
 * dispatch and affinity-record are always rebuilt: their rules follow the
 * shapes in use. */
static void put_chain_repairs(struct nft *nf, struct nft_txn *t, const struct kernel_view *kv)
{
	size_t nfix = nft_nfixed, total = nfix + nf->nshapes;
	bool refill[total + 1];
	char chain[32];

	for (size_t i = 0; i < nf->nshapes; i++)
		if (nf->shapes[i].refs && !nf->shapes[i].set_present)
			nft_put_shape_set(t, nf->table, &nf->shapes[i].sh, true);
	for (size_t i = 0; i < total; i++) {
		const struct shape *shp = i < nfix ? NULL : &nf->shapes[i - nfix];
		const char *name = chain;
		refill[i] = false;
		if (shp && (!shp->refs || lb_is_record(&shp->sh)))
			continue;
		if (shp)
			lb_chain_name(&shp->sh, chain);
		else
			name = nft_fixed_chains[i].name;
		uintptr_t have = (uintptr_t)smap_get(&kv->chains, name);
		refill[i] = !have || have - 1 != nft_rule_count(&nf->rc, name) ||
			    !strcmp(name, "dispatch") || !strcmp(name, "affinity-record");
		if (!refill[i])
			continue;
		if (have)
			nft_put_flush(t, nf->table, name);
		else
			nft_put_chain(t, nf->table, name, shp ? NULL : &nft_fixed_chains[i]);
	}
	for (size_t i = 0; i < total; i++) {
		if (!refill[i])
			continue;
		if (i >= nfix)
			lb_chain_name(&nf->shapes[i - nfix].sh, chain);
		nft_put_rules(t, &nf->rc, i < nfix ? nft_fixed_chains[i].name : chain);
	}
	for (size_t i = 0; i < nf->nshapes; i++)
		if (nf->shapes[i].refs)
			nft_put_shape_rule(t, &nf->rc, &nf->shapes[i].sh);
}

/* Chains and sets nothing uses any more go, after the elements and rules
 * that used them. */
static void put_chain_deletes(struct nft *nf, struct nft_txn *t, const struct kernel_view *kv)
{
	struct smap_ent *ent;
	struct lb_shape sh;
	size_t cur = 0;

	while ((ent = smap_next(&kv->chains, &cur))) {
		const struct shape *shp =
		    lb_chain_parse(ent->key, &sh) ? shape_get(nf, &sh, false) : NULL;
		if (!is_fixed(ent->key) && (!shp || !shp->refs))
			nft_put_chain_del(t, nf->table, ent->key);
	}
	for (size_t i = 0; i < nf->nshapes; i++)
		if (!nf->shapes[i].refs && nf->shapes[i].set_present)
			nft_put_shape_set(t, nf->table, &nf->shapes[i].sh, false);
}

static void diff_kernel(struct nft *nf, const struct kernel_view *kv, struct pending *p,
			struct elem ***kdel, size_t *nkdel, size_t *capk)
{
	for (size_t i = 0; i < kv->elems.cap; i++) {
		struct elem *k = kv->elems.slot[i], *x;
		if (k <= TOMB)
			continue;
		x = et_get(&nf->elems, k);
		if (!x || !same_data(x, k))
			push(kdel, nkdel, capk, k, &p->err);
	}
	for (size_t i = 0; i < nf->elems.cap; i++) {
		struct elem *x = nf->elems.slot[i], *k;
		if (x <= TOMB)
			continue;
		k = et_get(&kv->elems, x);
		if (!k || !same_data(x, k))
			pend_add(p, x);
	}
}

static int sync_full(struct nft *nf, const struct svc_model *m, struct svc_err *e)
{
	struct kernel_view kv;
	struct pending p = {0};
	struct elem **kdel = NULL;
	size_t nkdel = 0, capk = 0;
	struct nft_txn t;
	int r;

	nf->need_full = true;
	if ((r = read_kernel(nf, &kv, e)) || (r = rebuild_cache(nf, m, e)))
		goto out;
	diff_kernel(nf, &kv, &p, &kdel, &nkdel, &capk);
	if (p.err || (r = nft_txn_begin(&t, &nf->sock))) {
		r = svc_errf(e, ENOMEM, "nftables: out of memory");
		goto out;
	}
	nft_put_table(&t, nf->table, true);
	for (int i = 0; i < SET_COUNT; i++)
		if (!kv.sets[i])
			nft_put_set(&t, nf->table, (enum nft_set_id)i);
	put_chain_repairs(nf, &t, &kv);
	sort_elems(kdel, nkdel);
	sort_elems(p.add, p.nadd);
	put_elems(nf, &t, kdel, nkdel, false);
	put_elems(nf, &t, p.add, p.nadd, true);
	put_chain_deletes(nf, &t, &kv);
	r = nft_txn_commit(&t, e);
	nft_txn_free(&t);
	if (!r) {
		shapes_synced(nf);
		nf->need_full = false;
	}
out:
	free(kdel);
	free(p.add);
	free(p.ct);
	kernel_view_free(&kv);
	return r;
}

/* --- the backend ---------------------------------------------------------------- */

static int nft_sync(void *priv, const struct svc_model *m, const char *const *changed, size_t n,
		    bool full, struct svc_err *e)
{
	struct nft *nf = priv;

	if (full || nf->need_full)
		return sync_full(nf, m, e);
	return sync_partial(nf, m, changed, n, e);
}

static void nft_destroy(void *priv)
{
	struct nft *nf = priv;

	/* The rules stay in the kernel: only `svcd --cleanup` removes them. */
	cache_clear(nf);
	free(nf->shapes);
	nft_sock_close(&nf->sock);
	free(nf->table);
	free(nf->node);
	free(nf);
}

static int parse_cluster_cidr(struct nft *nf, const char *cidr, struct svc_err *e)
{
	struct svc_cidr c;

	if (!cidr || !*cidr)
		return 0;
	if (cidr_parse(cidr, &c) || c.base.family != AF_INET)
		return svc_errf(e, EINVAL, "--cluster-cidr: \"%s\" is not an IPv4 CIDR", cidr);
	memcpy(&nf->rc.cluster_net, c.base.a, 4);
	nf->rc.cluster_mask = c.len ? htonl(~0u << (32 - c.len)) : 0;
	if (!nf->rc.cluster_mask)
		nf->rc.cluster_mask = 0; /* /0: everything is in the cluster */
	return 0;
}

static void nft_stats(void *priv, size_t *elements, size_t *chains)
{
	struct nft *nf = priv;

	/* After a failed sync the cache is not what the kernel holds. */
	*elements = nf->need_full ? 0 : nf->elems.n;
	*chains = nf->need_full ? 0 : nft_nfixed;
	for (size_t i = 0; i < nf->nshapes && !nf->need_full; i++)
		*chains += nf->shapes[i].chain_present && !lb_is_record(&nf->shapes[i].sh);
}

int nft_backend_new(const struct nft_config *cfg, struct svc_backend *out, struct svc_err *e)
{
	struct nft *nf = calloc(1, sizeof(*nf));
	struct nft_txn t;
	int r;

	if (!nf || !(nf->table = strdup(cfg->table)) ||
	    !(nf->node = strdup(cfg->node_name ? cfg->node_name : ""))) {
		if (nf)
			free(nf->table);
		free(nf);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	nf->rc.table = nf->table;
	nf->need_full = true;
	if ((r = parse_cluster_cidr(nf, cfg->cluster_cidr, e)) || (r = nft_sock_open(&nf->sock, e)))
		goto fail;
	/* A probe that changes nothing already there: the table is created
	 * if missing, which also proves nf_tables works and we may use it. */
	if ((r = nft_txn_begin(&t, &nf->sock))) {
		r = svc_errf(e, ENOMEM, "out of memory");
		goto fail;
	}
	nft_put_table(&t, nf->table, true);
	r = nft_txn_commit(&t, e);
	nft_txn_free(&t);
	if (r)
		goto fail;
	*out = (struct svc_backend){.name = "nftables",
				    .sync = nft_sync,
				    .destroy = nft_destroy,
				    .stats = nft_stats,
				    .priv = nf};
	return 0;
fail:
	nft_destroy(nf);
	return r;
}

int nft_cleanup(const char *table, struct svc_err *e)
{
	struct nft_sock s;
	struct nft_txn t;
	int r;

	if ((r = nft_sock_open(&s, e)))
		return r;
	if ((r = nft_txn_begin(&t, &s)) == 0) {
		nft_put_table(&t, table, false);
		r = nft_txn_commit(&t, e);
		nft_txn_free(&t);
		if (r == -ENOENT) {
			svc_err_clear(e);
			r = 0;
		}
	}
	nft_sock_close(&s);
	return r;
}
