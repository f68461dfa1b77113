// SPDX-License-Identifier: MIT
/* The cluster zone.  Every owner name a service publishes is a key of one
 * hash map (lower case, no trailing dot) whose value is a small node holding
 * that name's records.  The names of one service all end in
 * "<svc>.<ns>.svc.<zone>", so no two services share a node: an update drops
 * the service's old nodes and builds new ones.  Names that several objects
 * may claim (reverse names, pod names) are chains of claims instead. */
#include "zone.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "smap.h"
#include "util.h"
#include "vutil.h"

#define SOA_REFRESH 7200
#define SOA_RETRY   1800
#define SOA_EXPIRE  86400
#define DNS_SCHEMA  "1.1.0"

enum znode_kind { ZN_ADDR, ZN_SRV, ZN_CNAME };

struct znode;

struct zsrv {
	const struct znode *target;
	uint16_t port;
};

/* One owner name with its records.  The arrays and strings live in the same
 * allocation, after the struct: srv, then v6 (16 bytes each), v4 (4 each),
 * name, cname, and name's wire form (SRV and PTR answers carry it as a
 * target: kept ready rather than parsed per answer). */
struct znode {
	struct znode *next; /* the service's other names */
	uint8_t kind;
	uint8_t wlen, wlabels; /* wire: 0 when the name is not a valid one */
	uint32_t nv4, nv6, nsrv;
	struct zsrv *srv;
	uint8_t *v4, *v6, *wire;
	char *name, *cname;
};

/* A claim on a name shared by several objects; the map holds the newest
 * claim, the others follow through next. */
struct zlink {
	const char *key;
	struct zlink *next;
};

/* A PTR: the reverse address (as text) points at a node's name. */
struct zptr {
	struct zlink link;
	struct zptr *snext; /* the service's other PTRs */
	const struct znode *target;
	char key[];
};

/* Services and pods per namespace, for the empty non-terminals. */
struct zns {
	uint32_t refs;
	char name[];
};

struct zsvc {
	char *key; /* the object's key */
	struct zns *ns;
	struct znode *nodes;
	struct zptr *ptrs;
};

struct zpod {
	char *key; /* the object's key */
	struct zns *ns;
	struct zlink by_name, by_ip;
	struct svc_addr addr;
	char ip[SVC_ADDR_STRLEN];
	char name[]; /* "a-b-c-d.<ns>.pod.<zone>" */
};

struct dns_zone {
	char *domain; /* lower case, no trailing dot */
	size_t dlen;
	uint32_t ttl;
	struct dns_name apex;
	struct dns_soa soa;	      /* serial grows with every change */
	struct smap names;	      /* owner name -> struct znode */
	struct smap rev;	      /* address text -> chain of struct zptr */
	struct smap svcs;	      /* object key -> struct zsvc */
	struct smap pods;	      /* object key -> struct zpod */
	struct smap podnames, podips; /* chains of struct zpod */
	struct smap nss;	      /* namespace -> struct zns */
	char version[DNS_NAME_STR_MAX];
};

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* --- chains -------------------------------------------------------------- */

static int chain_add(struct smap *m, struct zlink *l)
{
	l->next = smap_get(m, l->key);
	return smap_put(m, l->key, l);
}

/* Safe for a link that was never added. */
static void chain_del(struct smap *m, struct zlink *l)
{
	struct zlink *head = smap_get(m, l->key), **pp;

	if (head == l) {
		/* The map's key belongs to the head: hand it to the next claim. */
		if (l->next)
			smap_put(m, l->next->key, l->next);
		else
			smap_del(m, l->key);
		return;
	}
	for (pp = head ? &head->next : NULL; pp && *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			return;
		}
}

/* --- namespaces ---------------------------------------------------------- */

static struct zns *ns_get(struct dns_zone *z, const char *name)
{
	struct zns *ns = smap_get(&z->nss, name);
	size_t len = strlen(name);

	if (ns) {
		ns->refs++;
		return ns;
	}
	if (!(ns = malloc(sizeof(*ns) + len + 1)))
		return NULL;
	ns->refs = 1;
	memcpy(ns->name, name, len + 1);
	if (smap_put(&z->nss, ns->name, ns)) {
		free(ns);
		return NULL;
	}
	return ns;
}

static void ns_put(struct dns_zone *z, struct zns *ns)
{
	if (ns && !--ns->refs) {
		smap_del(&z->nss, ns->name);
		free(ns);
	}
}

/* --- nodes --------------------------------------------------------------- */

static struct znode *node_new(enum znode_kind kind, const char *name, uint32_t nv4, uint32_t nv6,
			      uint32_t nsrv, const char *cname)
{
	size_t nlen = strlen(name) + 1, clen = cname ? strlen(cname) + 1 : 0;
	size_t srv = nsrv * sizeof(struct zsrv), v6 = (size_t)nv6 * 16, v4 = (size_t)nv4 * 4;
	struct dns_name w;
	struct svc_err e;
	bool wok = dns_name_from_str(&w, name, &e) == 0;
	size_t wlen = wok ? w.len : 0;
	struct znode *n = malloc(sizeof(*n) + srv + v6 + v4 + nlen + clen + wlen);
	char *p;

	if (!n)
		return NULL;
	/* The counts start at 0 and grow as records are added, up to the sizes given. */
	*n = (struct znode){.kind = (uint8_t)kind};
	p = (char *)(n + 1);
	n->srv = (struct zsrv *)p;
	n->v6 = (uint8_t *)(p += srv);
	n->v4 = (uint8_t *)(p += v6);
	n->name = p += v4;
	memcpy(n->name, name, nlen);
	if (cname) {
		n->cname = p + nlen;
		memcpy(n->cname, cname, clen);
	}
	n->wire = (uint8_t *)(p + nlen + clen);
	if (wok) {
		memcpy(n->wire, w.wire, wlen);
		n->wlen = (uint8_t)wlen;
		n->wlabels = w.labels;
	}
	return n;
}

/* The node's name in wire form, for a target; false if it has none. */
static bool node_wire(const struct znode *n, struct dns_name *out)
{
	if (!n->wlen)
		return false;
	memcpy(out->wire, n->wire, n->wlen);
	out->len = n->wlen;
	out->labels = n->wlabels;
	return true;
}

static void node_add_addr(struct znode *n, const struct svc_addr *a)
{
	if (a->family == AF_INET)
		memcpy(n->v4 + 4 * n->nv4++, a->a, 4);
	else if (a->family == AF_INET6)
		memcpy(n->v6 + 16 * n->nv6++, a->a, 16);
}

static void svc_link_node(struct zsvc *s, struct znode *n)
{
	n->next = s->nodes;
	s->nodes = n;
}

static int svc_link_ptr(struct zsvc *s, const struct svc_addr *a, const struct znode *target)
{
	char ip[SVC_ADDR_STRLEN];
	size_t len = strlen(addr_fmt(a, ip)) + 1;
	struct zptr *p = malloc(sizeof(*p) + len);

	if (!p)
		return -ENOMEM;
	memcpy(p->key, ip, len);
	p->link = (struct zlink){.key = p->key};
	p->target = target;
	p->snext = s->ptrs;
	s->ptrs = p;
	return 0;
}

/* --- building a service's names ------------------------------------------ */

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_SCTP:
		return "sctp";
	default:
		return "tcp";
	}
}

/* The address with its dots or colons as dashes: a label naming it. */
static const char *dashed(const struct svc_addr *a, char buf[static SVC_ADDR_STRLEN])
{
	addr_fmt(a, buf);
	for (char *c = buf; *c; c++)
		if (*c == '.' || *c == ':')
			*c = '-';
	return buf;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* "_<port>._<proto>.<base>" into buf; false when it does not fit. */
static bool srv_name(char *buf, size_t n, const struct svc_port *p, const char *base)
{
	int len = snprintf(buf, n, "_%s._%s.%s", p->name, proto_name(p->proto), base);

	lower(buf);
	return len > 0 && (size_t)len < n;
}

static int build_cluster(struct zsvc *s, const struct svc_service *svc, const char *base)
{
	bool v4 = svc->cluster_ip.family == AF_INET;
	struct znode *n = node_new(ZN_ADDR, base, v4, !v4, 0, NULL), *sn;
	char name[DNS_NAME_STR_MAX];

	if (!n)
		return -ENOMEM;
	node_add_addr(n, &svc->cluster_ip);
	svc_link_node(s, n);
	for (uint32_t i = 0; i < svc->nports; i++) {
		if (!svc->ports[i].name[0] || !srv_name(name, sizeof(name), &svc->ports[i], base))
			continue;
		if (!(sn = node_new(ZN_SRV, name, 0, 0, 1, NULL)))
			return -ENOMEM;
		sn->srv[sn->nsrv++] = (struct zsrv){.target = n, .port = svc->ports[i].port};
		svc_link_node(s, sn);
	}
	return svc_link_ptr(s, &svc->cluster_ip, n);
}

/* One ready endpoint address of a headless service. */
struct hep {
	struct svc_addr addr;
	char label[DNS_LABEL_MAX + 1];
	struct znode *node; /* its hostname's node */
};

/* The endpoint's hostname when it is a usable label, else the dashed IP. */
static void hep_label(struct hep *h, const char *hostname)
{
	char ip[SVC_ADDR_STRLEN];

	if (hostname && is_dns_label(hostname)) {
		snprintf(h->label, sizeof(h->label), "%s", hostname);
		lower(h->label);
		return;
	}
	snprintf(h->label, sizeof(h->label), "%s", dashed(&h->addr, ip));
}

/* The distinct ready addresses over all ports, in order of appearance. */
static int collect_heps(const struct svc_service *svc, struct hep **out, uint32_t *n)
{
	uint32_t cap = 0;
	struct hep *v = NULL;

	*n = 0;
	for (uint32_t p = 0; svc->targets && p < svc->nports; p++)
		cap += svc->targets[p].n;
	if (cap && !(v = calloc(cap, sizeof(*v))))
		return -ENOMEM;
	for (uint32_t p = 0; svc->targets && p < svc->nports; p++)
		for (uint32_t i = 0; i < svc->targets[p].n; i++) {
			const struct svc_target *t = &svc->targets[p].v[i];
			uint32_t j = 0;
			while (j < *n && !addr_eq(&v[j].addr, &t->addr))
				j++;
			if (!t->ready || j < *n)
				continue;
			v[*n].addr = t->addr;
			hep_label(&v[*n], t->hostname);
			(*n)++;
		}
	*out = v;
	return 0;
}

/* One node per distinct hostname, holding the addresses that carry it. */
static int build_hosts(struct zsvc *s, struct hep *v, uint32_t n, const char *base)
{
	char name[DNS_NAME_STR_MAX];

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = 0, nv4 = 0, nv6 = 0;
		while (j < i && strcmp(v[j].label, v[i].label))
			j++;
		if (j < i) {
			v[i].node = v[j].node;
			continue;
		}
		for (j = i; j < n; j++)
			if (!strcmp(v[j].label, v[i].label))
				v[j].addr.family == AF_INET ? nv4++ : nv6++;
		snprintf(name, sizeof(name), "%s.%s", v[i].label, base);
		if (!(v[i].node = node_new(ZN_ADDR, name, nv4, nv6, 0, NULL)))
			return -ENOMEM;
		for (j = i; j < n; j++)
			if (!strcmp(v[j].label, v[i].label))
				node_add_addr(v[i].node, &v[j].addr);
		svc_link_node(s, v[i].node);
		if (svc_link_ptr(s, &v[i].addr, v[i].node))
			return -ENOMEM;
	}
	return 0;
}

static const struct hep *hep_find(const struct hep *v, uint32_t n, const struct svc_addr *a)
{
	for (uint32_t i = 0; i < n; i++)
		if (addr_eq(&v[i].addr, a))
			return &v[i];
	return NULL;
}

/* SRV of a headless port: one record per ready endpoint, its own port. */
static int build_headless_srv(struct zsvc *s, const struct svc_port *p,
			      const struct svc_port_targets *t, const struct hep *v, uint32_t n,
			      const char *base)
{
	char name[DNS_NAME_STR_MAX];
	struct znode *sn;

	if (!p->name[0] || !t->n || !srv_name(name, sizeof(name), p, base))
		return 0;
	if (!(sn = node_new(ZN_SRV, name, 0, 0, t->n, NULL)))
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++) {
		const struct hep *h = t->v[i].ready ? hep_find(v, n, &t->v[i].addr) : NULL;
		uint32_t j = 0;
		if (!h)
			continue;
		while (j < sn->nsrv &&
		       (sn->srv[j].target != h->node || sn->srv[j].port != t->v[i].port))
			j++;
		if (j == sn->nsrv)
			sn->srv[sn->nsrv++] =
			    (struct zsrv){.target = h->node, .port = t->v[i].port};
	}
	if (!sn->nsrv) {
		free(sn); /* no ready endpoint on this port */
		return 0;
	}
	svc_link_node(s, sn);
	return 0;
}

static int build_headless(struct zsvc *s, const struct svc_service *svc, const char *base)
{
	struct hep *v = NULL;
	uint32_t n = 0, nv4 = 0;
	struct znode *sn;
	int r;

	if ((r = collect_heps(svc, &v, &n)) || !n)
		goto out; /* no ready endpoint: the name does not exist */
	for (uint32_t i = 0; i < n; i++)
		nv4 += v[i].addr.family == AF_INET;
	r = -ENOMEM;
	if (!(sn = node_new(ZN_ADDR, base, nv4, n - nv4, 0, NULL)))
		goto out;
	for (uint32_t i = 0; i < n; i++)
		node_add_addr(sn, &v[i].addr);
	svc_link_node(s, sn);
	if ((r = build_hosts(s, v, n, base)))
		goto out;
	for (uint32_t p = 0; p < svc->nports && !r; p++)
		r = build_headless_srv(s, &svc->ports[p], &svc->targets[p], v, n, base);
out:
	free(v);
	return r;
}

static int build_service(struct zsvc *s, const struct svc_obj *o, const char *zone)
{
	const struct svc_service *svc = o->u.svc;
	char base[DNS_NAME_STR_MAX];
	struct znode *n;

	snprintf(base, sizeof(base), "%s.%s.svc.%s", o->name, o->ns, zone);
	lower(base);
	if (svc->type == SVC_EXTERNAL_NAME) {
		if (!svc->external_name ||
		    !(n = node_new(ZN_CNAME, base, 0, 0, 0, svc->external_name)))
			return svc->external_name ? -ENOMEM : 0;
		lower(n->cname);
		svc_link_node(s, n);
		return 0;
	}
	if (svc->headless)
		return build_headless(s, svc, base);
	return svc->cluster_ip.family ? build_cluster(s, svc, base) : 0;
}

/* --- services in the maps ------------------------------------------------ */

static void svc_free(struct dns_zone *z, struct zsvc *s)
{
	for (struct znode *n = s->nodes, *next; n; n = next) {
		next = n->next;
		if (smap_get(&z->names, n->name) == n)
			smap_del(&z->names, n->name);
		free(n);
	}
	for (struct zptr *p = s->ptrs, *next; p; p = next) {
		next = p->snext;
		chain_del(&z->rev, &p->link);
		free(p);
	}
	ns_put(z, s->ns);
	free(s->key);
	free(s);
}

static void svc_remove(struct dns_zone *z, const char *key)
{
	struct zsvc *s = smap_del(&z->svcs, key);

	if (s)
		svc_free(z, s);
}

/* A name another service already holds stays with it (it cannot happen
 * with valid names; the check keeps the maps consistent regardless). */
static int svc_publish(struct dns_zone *z, struct zsvc *s)
{
	for (struct znode *n = s->nodes; n; n = n->next)
		if (!smap_get(&z->names, n->name) && smap_put(&z->names, n->name, n))
			return -ENOMEM;
	for (struct zptr *p = s->ptrs; p; p = p->snext)
		if (chain_add(&z->rev, &p->link))
			return -ENOMEM;
	return smap_put(&z->svcs, s->key, s);
}

static int svc_add(struct dns_zone *z, const struct svc_obj *o)
{
	struct zsvc *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s)
		return r;
	if ((s->key = strdup(o->key)) && (s->ns = ns_get(z, o->ns)) &&
	    !(r = build_service(s, o, z->domain)) && !(r = svc_publish(z, s)))
		return 0;
	svc_free(z, s);
	return r ? r : -ENOMEM;
}

/* --- pods ---------------------------------------------------------------- */

static void pod_free(struct dns_zone *z, struct zpod *p)
{
	chain_del(&z->podnames, &p->by_name);
	chain_del(&z->podips, &p->by_ip);
	ns_put(z, p->ns);
	free(p->key);
	free(p);
}

static void pod_remove(struct dns_zone *z, const char *key)
{
	struct zpod *p = smap_del(&z->pods, key);

	if (p)
		pod_free(z, p);
}

/* Pods that are done have given their address back. */
static bool pod_has_ip(const struct svc_pod *p)
{
	return p->ip.family && p->phase != POD_SUCCEEDED && p->phase != POD_FAILED;
}

static int pod_add(struct dns_zone *z, const struct svc_obj *o)
{
	char ip[SVC_ADDR_STRLEN], name[DNS_NAME_STR_MAX];
	int len;
	struct zpod *p;

	len = snprintf(name, sizeof(name), "%s.%s.pod.%s", dashed(&o->u.pod->ip, ip), o->ns,
		       z->domain);
	if (len < 0 || (size_t)len >= sizeof(name))
		return 0;
	addr_fmt(&o->u.pod->ip, ip);
	lower(name);
	if (!(p = calloc(1, sizeof(*p) + (size_t)len + 1)))
		return -ENOMEM;
	memcpy(p->name, name, (size_t)len + 1);
	memcpy(p->ip, ip, sizeof(ip));
	p->addr = o->u.pod->ip;
	p->by_name.key = p->name;
	p->by_ip.key = p->ip;
	if ((p->key = strdup(o->key)) && (p->ns = ns_get(z, o->ns)) &&
	    !chain_add(&z->podnames, &p->by_name) && !chain_add(&z->podips, &p->by_ip) &&
	    !smap_put(&z->pods, p->key, p))
		return 0;
	pod_free(z, p);
	return -ENOMEM;
}

/* --- the zone ------------------------------------------------------------ */

/* The apex, the SOA's names and the version name, all under domain. */
static int zone_names(struct dns_zone *z, const char *domain, struct svc_err *e)
{
	char buf[DNS_NAME_STR_MAX];

	if (dns_name_from_str(&z->apex, domain, e))
		return svc_err_ctx(e, "cluster domain \"%s\"", domain);
	if (!z->apex.labels || dns_name_str(&z->apex, buf, sizeof(buf)) < 0)
		return svc_errf(e, EINVAL, "cluster domain \"%s\": not a usable zone", domain);
	if (!(z->domain = strdup(buf)))
		return svc_errf(e, ENOMEM, "DNS zone: out of memory");
	z->dlen = strlen(z->domain);
	snprintf(z->version, sizeof(z->version), "dns-version.%s", z->domain);
	snprintf(buf, sizeof(buf), "ns.dns.%s", z->domain);
	if (dns_name_from_str(&z->soa.mname, buf, e))
		return svc_err_ctx(e, "cluster domain \"%s\"", domain);
	snprintf(buf, sizeof(buf), "hostmaster.%s", z->domain);
	if (dns_name_from_str(&z->soa.rname, buf, e))
		return svc_err_ctx(e, "cluster domain \"%s\"", domain);
	return 0;
}

int dns_zone_new(const char *domain, uint32_t ttl, struct dns_zone **out, struct svc_err *e)
{
	struct dns_zone *z = calloc(1, sizeof(*z));
	int r;

	if (!z)
		return svc_errf(e, ENOMEM, "DNS zone: out of memory");
	if ((r = zone_names(z, domain, e))) {
		dns_zone_free(z);
		return r;
	}
	z->ttl = ttl;
	/* Looked up for every query: probes compare hashes before names. */
	z->names.hashed = z->podnames.hashed = true;
	z->soa.serial = 1;
	z->soa.refresh = SOA_REFRESH;
	z->soa.retry = SOA_RETRY;
	z->soa.expire = SOA_EXPIRE;
	z->soa.minimum = ttl;
	*out = z;
	return 0;
}

void dns_zone_free(struct dns_zone *z)
{
	struct smap_ent *ent;
	size_t cur = 0;

	if (!z)
		return;
	while ((ent = smap_next(&z->svcs, &cur)))
		svc_free(z, ent->val);
	cur = 0;
	while ((ent = smap_next(&z->pods, &cur)))
		pod_free(z, ent->val);
	smap_free(&z->svcs);
	smap_free(&z->pods);
	smap_free(&z->names);
	smap_free(&z->rev);
	smap_free(&z->podnames);
	smap_free(&z->podips);
	smap_free(&z->nss);
	free(z->domain);
	free(z);
}

int dns_zone_update(struct dns_zone *z, enum svc_event ev, const struct svc_obj *obj)
{
	int r = 0;

	if (!z || !obj || !obj->key)
		return 0;
	if (obj->kind == KIND_SERVICE && obj->u.svc) {
		svc_remove(z, obj->key);
		if (ev != EV_DELETED)
			r = svc_add(z, obj);
	} else if (obj->kind == KIND_POD && obj->u.pod) {
		pod_remove(z, obj->key);
		if (ev != EV_DELETED && pod_has_ip(obj->u.pod))
			r = pod_add(z, obj);
	} else {
		return 0;
	}
	z->soa.serial++;
	return r;
}

uint32_t dns_zone_serial(const struct dns_zone *z)
{
	return z->soa.serial;
}

const char *dns_zone_pod_ns(const struct dns_zone *z, const struct svc_addr *ip)
{
	char key[SVC_ADDR_STRLEN];
	const struct zlink *l = smap_get(&z->podips, addr_fmt(ip, key));

	return l ? container_of(l, struct zpod, by_ip)->ns->name : NULL;
}

/* --- answering ----------------------------------------------------------- */

/* Wire form of a name we built (or an ExternalName); false if unusable. */
static bool wire_name(const char *s, struct dns_name *out)
{
	struct svc_err e;

	return dns_name_from_str(out, s, &e) == 0;
}

/* NXDOMAIN or NODATA: the zone's SOA in authority (RFC 2308). */
static enum dns_zone_result negative(const struct dns_zone *z, struct dns_resp *r, uint16_t rcode)
{
	dns_resp_set_rcode(r, rcode);
	dns_resp_add_soa(r, DNS_SEC_AUTHORITY, &z->apex, z->ttl, &z->soa);
	return DNS_Z_ANSWERED;
}

static bool wants(uint16_t qtype, uint16_t type)
{
	return qtype == type || qtype == DNS_TYPE_ANY;
}

/* The node's addresses for qtype under owner; how many were added. */
static int add_addrs(const struct dns_zone *z, struct dns_resp *r, enum dns_section sec,
		     const struct dns_name *owner, const struct znode *n, uint16_t qtype)
{
	int added = 0;

	for (uint32_t i = 0; wants(qtype, DNS_TYPE_A) && i < n->nv4; i++, added++)
		dns_resp_add_a(r, sec, owner, z->ttl, n->v4 + 4 * i);
	for (uint32_t i = 0; wants(qtype, DNS_TYPE_AAAA) && i < n->nv6; i++, added++)
		dns_resp_add_aaaa(r, sec, owner, z->ttl, n->v6 + 16 * i);
	return added;
}

static void add_srv(const struct dns_zone *z, const struct dns_query *q, struct dns_resp *r,
		    const struct znode *n)
{
	uint16_t weight = (uint16_t)(n->nsrv > 100 ? 1 : 100 / n->nsrv);
	struct dns_name t;

	for (uint32_t i = 0; i < n->nsrv; i++)
		if (node_wire(n->srv[i].target, &t))
			dns_resp_add_srv(r, DNS_SEC_ANSWER, &q->qname, z->ttl, 0, weight,
					 n->srv[i].port, &t);
	/* Each target's addresses once, even when it serves several ports. */
	for (uint32_t i = 0; i < n->nsrv; i++) {
		const struct znode *tn = n->srv[i].target;
		uint32_t j = 0;
		while (j < i && n->srv[j].target != tn)
			j++;
		if (j == i && node_wire(tn, &t))
			add_addrs(z, r, DNS_SEC_ADDITIONAL, &t, tn, DNS_TYPE_ANY);
	}
}

static enum dns_zone_result answer_cname(const struct dns_zone *z, const struct dns_query *q,
					 struct dns_resp *r, const struct znode *n, char *target,
					 size_t size)
{
	struct dns_name t;

	if (!wire_name(n->cname, &t)) {
		dns_resp_set_rcode(r, DNS_RCODE_SERVFAIL);
		return DNS_Z_ANSWERED;
	}
	dns_resp_add_name(r, DNS_SEC_ANSWER, &q->qname, DNS_TYPE_CNAME, z->ttl, &t);
	if (q->qtype == DNS_TYPE_CNAME || !target || strlen(n->cname) >= size)
		return DNS_Z_ANSWERED;
	memcpy(target, n->cname, strlen(n->cname) + 1);
	return DNS_Z_CNAME_EXTERNAL;
}

static enum dns_zone_result answer_node(const struct dns_zone *z, const struct dns_query *q,
					struct dns_resp *r, const struct znode *n, char *target,
					size_t size)
{
	switch (n->kind) {
	case ZN_CNAME:
		return answer_cname(z, q, r, n, target, size);
	case ZN_SRV:
		if (!wants(q->qtype, DNS_TYPE_SRV) || !n->nsrv)
			return negative(z, r, DNS_RCODE_NOERROR);
		add_srv(z, q, r, n);
		return DNS_Z_ANSWERED;
	default:
		if (!add_addrs(z, r, DNS_SEC_ANSWER, &q->qname, n, q->qtype))
			return negative(z, r, DNS_RCODE_NOERROR);
		return DNS_Z_ANSWERED;
	}
}

static enum dns_zone_result answer_pod(const struct dns_zone *z, const struct dns_query *q,
				       struct dns_resp *r, const struct zlink *l)
{
	const struct zpod *p = container_of(l, struct zpod, by_name);
	bool v4 = p->addr.family == AF_INET;

	/* Every claim on the name carries the same address: answer once. */
	if (wants(q->qtype, v4 ? DNS_TYPE_A : DNS_TYPE_AAAA)) {
		if (v4)
			dns_resp_add_a(r, DNS_SEC_ANSWER, &q->qname, z->ttl, p->addr.a);
		else
			dns_resp_add_aaaa(r, DNS_SEC_ANSWER, &q->qname, z->ttl, p->addr.a);
		return DNS_Z_ANSWERED;
	}
	return negative(z, r, DNS_RCODE_NOERROR);
}

/* Names that exist without records of their own: "svc", "pod" and
 * "<ns>.svc", "<ns>.pod" of a namespace with services or pods.  rel is the
 * part of the name before the zone. */
static bool empty_nonterminal(const struct dns_zone *z, const char *rel, size_t len)
{
	char ns[DNS_LABEL_MAX + 1];
	size_t nslen;

	if (len < 3 || (memcmp(rel + len - 3, "svc", 3) && memcmp(rel + len - 3, "pod", 3)))
		return false;
	if (len == 3)
		return true;
	nslen = len - 4;
	if (rel[nslen] != '.' || !nslen || nslen > DNS_LABEL_MAX || memchr(rel, '.', nslen))
		return false;
	memcpy(ns, rel, nslen);
	ns[nslen] = '\0';
	return smap_get(&z->nss, ns) != NULL;
}

static enum dns_zone_result answer_apex(const struct dns_zone *z, const struct dns_query *q,
					struct dns_resp *r)
{
	if (!wants(q->qtype, DNS_TYPE_SOA))
		return negative(z, r, DNS_RCODE_NOERROR);
	dns_resp_add_soa(r, DNS_SEC_ANSWER, &q->qname, z->ttl, &z->soa);
	return DNS_Z_ANSWERED;
}

static enum dns_zone_result answer_version(const struct dns_zone *z, const struct dns_query *q,
					   struct dns_resp *r)
{
	static const char *const txt[] = {DNS_SCHEMA};

	if (!wants(q->qtype, DNS_TYPE_TXT))
		return negative(z, r, DNS_RCODE_NOERROR);
	dns_resp_add_txt(r, DNS_SEC_ANSWER, &q->qname, z->ttl, txt, 1);
	return DNS_Z_ANSWERED;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && !memcmp(s + len - n, suffix, n);
}

/* Up to three decimal digits, at most 255, then a dot; NULL if not. */
static const char *octet(const char *p, uint8_t *out)
{
	unsigned v = 0;
	int n = 0;

	for (; n < 3 && *p >= '0' && *p <= '9'; n++, p++)
		v = v * 10 + (unsigned)(*p - '0');
	if (!n || v > 255 || *p != '.')
		return NULL;
	*out = (uint8_t)v;
	return p + 1;
}

/* "4.3.2.1.in-addr.arpa" or 32 nibbles and "ip6.arpa" into an address. */
static bool reverse_addr(const char *s, size_t len, struct svc_addr *a)
{
	static const char hex[] = "0123456789abcdef";
	const char *p = s;

	memset(a, 0, sizeof(*a));
	if (ends_with(s, len, ".in-addr.arpa")) {
		for (int i = 3; i >= 0 && p; i--)
			p = octet(p, &a->a[i]);
		a->family = AF_INET;
		return p == s + len - strlen("in-addr.arpa");
	}
	if (!ends_with(s, len, ".ip6.arpa") || len != 64 + strlen("ip6.arpa"))
		return false;
	/* The first label is the last byte's low nibble. */
	for (int i = 31; i >= 0; i--, p += 2) {
		const char *h = p[0] ? strchr(hex, p[0]) : NULL;
		if (!h || p[1] != '.')
			return false;
		a->a[i / 2] |= (uint8_t)((h - hex) << (i % 2 ? 0 : 4));
	}
	a->family = AF_INET6;
	return true;
}

static enum dns_zone_result answer_ptr(const struct dns_zone *z, const struct dns_query *q,
				       struct dns_resp *r, size_t len)
{
	char key[SVC_ADDR_STRLEN];
	struct svc_addr a;
	const struct zlink *l;
	struct dns_name t;

	if (!reverse_addr(q->qname_str, len, &a) || !(l = smap_get(&z->rev, addr_fmt(&a, key))))
		return DNS_Z_NOT_OURS;
	dns_resp_set_aa(r, true);
	if (!wants(q->qtype, DNS_TYPE_PTR))
		return negative(z, r, DNS_RCODE_NOERROR);
	for (; l; l = l->next)
		if (node_wire(container_of(l, struct zptr, link)->target, &t))
			dns_resp_add_name(r, DNS_SEC_ANSWER, &q->qname, DNS_TYPE_PTR, z->ttl, &t);
	return DNS_Z_ANSWERED;
}

enum dns_zone_result dns_zone_answer(const struct dns_zone *z, const struct dns_query *q,
				     struct dns_resp *r, char *target, size_t n)
{
	const char *s = q->qname_str;
	size_t len = q->qname_len, rel;
	const void *hit;

	if (ends_with(s, len, ".arpa"))
		return answer_ptr(z, q, r, len);
	if (len == z->dlen && !strcmp(s, z->domain))
		rel = 0;
	else if (len > z->dlen && s[len - z->dlen - 1] == '.' && ends_with(s, len, z->domain))
		rel = len - z->dlen - 1;
	else
		return DNS_Z_NOT_OURS;
	dns_resp_set_aa(r, true);
	if (!rel)
		return answer_apex(z, q, r);
	if ((hit = smap_get(&z->names, s)))
		return answer_node(z, q, r, hit, target, n);
	if ((hit = smap_get(&z->podnames, s)))
		return answer_pod(z, q, r, hit);
	if (!strcmp(s, z->version))
		return answer_version(z, q, r);
	if (empty_nonterminal(z, s, rel))
		return negative(z, r, DNS_RCODE_NOERROR);
	return negative(z, r, DNS_RCODE_NXDOMAIN);
}
