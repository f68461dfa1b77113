// SPDX-License-Identifier: MIT
/* The endpoints controller: resolves each service port to the addresses and
 * target ports behind it, from running pods (services with a selector) or
 * from Endpoints and EndpointSlice objects (services without one). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "util.h"

/* The port an endpoint serves for service port sp, or 0 when it has none. */
static uint16_t resolve_port(const struct svc_port *sp, const struct svc_ep_port *ports, uint32_t n,
			     bool from_pod)
{
	if (from_pod && !sp->target_name)
		return sp->target_port;
	for (uint32_t i = 0; i < n; i++) {
		const char *want = sp->target_name && from_pod ? sp->target_name : sp->name;
		if (ports[i].proto == sp->proto && !strcmp(ports[i].name, want))
			return ports[i].port;
	}
	/* An Endpoints subset with a single unnamed port serves an unnamed service port. */
	if (!from_pod && n == 1 && !*ports[0].name && !*sp->name && ports[0].proto == sp->proto)
		return ports[0].port;
	return 0;
}

static int add_target(struct svc_port_targets *t, const struct svc_target *tg)
{
	/* Capacity is implicit: 4, then doubling at each power of two. */
	if (!t->n || (t->n >= 4 && !(t->n & (t->n - 1)))) {
		uint32_t cap = t->n ? t->n * 2 : 4;
		struct svc_target *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
	}
	t->v[t->n++] = *tg;
	return 0;
}

static void add_endpoint(struct svc_service *s, const struct svc_addr *addr, bool ready,
			 const char *host, const char *node, const struct svc_ep_port *ports,
			 uint32_t nports, bool from_pod)
{
	for (uint32_t p = 0; p < s->nports; p++) {
		struct svc_target tg = {
		    .addr = *addr, .ready = ready, .hostname = host, .node = node};
		tg.port = resolve_port(&s->ports[p], ports, nports, from_pod);
		if (tg.port)
			add_target(&s->targets[p], &tg);
	}
}

/* A named targetPort is looked up in every container, as Kubernetes does;
 * a numeric one applies to the pod as a whole. */
static void add_pod(struct svc_service *s, const struct svc_obj *o, const struct svc_pod *p)
{
	for (uint32_t sp = 0; sp < s->nports; sp++) {
		const struct svc_port *port = &s->ports[sp];
		struct svc_target tg = {
		    .addr = p->ip, .ready = p->ready, .hostname = o->name, .node = p->node_name};
		for (uint32_t c = 0; c < p->ncontainers && !tg.port; c++)
			tg.port = resolve_port(port, p->containers[c].ports,
					       p->containers[c].nports, true);
		if (tg.port)
			add_target(&s->targets[sp], &tg);
	}
}

static void from_pods(struct svc_state *st, const struct svc_obj *svc)
{
	struct svc_service *s = svc->u.svc;
	struct svc_obj *o;
	size_t cur = 0;

	while ((o = model_iter(st->model, KIND_POD, &cur))) {
		const struct svc_pod *p = o->u.pod;
		if (strcmp(o->ns, svc->ns) || !p->ip.family || p->phase != POD_RUNNING ||
		    !labels_match(&s->selector, &o->labels))
			continue;
		add_pod(s, o, p);
	}
}

static void from_epset(struct svc_service *s, const struct svc_epset *set)
{
	for (uint32_t i = 0; i < set->n; i++) {
		const struct svc_endpoint *ep = &set->v[i];
		add_endpoint(s, &ep->addr, ep->ready, ep->hostname, ep->node, ep->ports, ep->nports,
			     false);
	}
}

static void from_objects(struct svc_state *st, const struct svc_obj *svc)
{
	struct svc_obj *o = model_get(st->model, KIND_ENDPOINTS, svc->ns, svc->name);
	size_t cur = 0;

	if (o)
		from_epset(svc->u.svc, o->u.eps);
	while ((o = model_iter(st->model, KIND_ENDPOINTSLICE, &cur)))
		if (!strcmp(o->ns, svc->ns) && !strcmp(o->u.eps->service, svc->name))
			from_epset(svc->u.svc, o->u.eps);
}

static void count_ready(struct svc_service *s)
{
	s->ready_addrs = 0;
	if (!s->nports)
		return;
	/* Every port sees the same endpoint addresses; count distinct ready ones
	 * in the port with the most targets. */
	uint32_t best = 0;
	for (uint32_t p = 1; p < s->nports; p++)
		if (s->targets[p].n > s->targets[best].n)
			best = p;
	const struct svc_port_targets *t = &s->targets[best];
	for (uint32_t i = 0; i < t->n; i++) {
		bool dup = false;
		if (!t->v[i].ready)
			continue;
		for (uint32_t j = 0; j < i && !dup; j++)
			dup = t->v[j].ready && addr_eq(&t->v[j].addr, &t->v[i].addr);
		s->ready_addrs += !dup;
	}
}

void endpoints_service_changed(struct svc_state *st, struct svc_obj *svc)
{
	struct svc_service *s = svc->u.svc;

	if (s->targets)
		for (uint32_t p = 0; p < s->nports; p++)
			free(s->targets[p].v);
	free(s->targets);
	s->targets = calloc(s->nports + 1, sizeof(*s->targets));
	s->ready_addrs = 0;
	if (!s->targets || s->type == SVC_EXTERNAL_NAME)
		return;
	if (s->has_selector)
		from_pods(st, svc);
	else
		from_objects(st, svc);
	/* Services number in the tens of thousands: no slack in their lists. */
	for (uint32_t p = 0; p < s->nports; p++) {
		struct svc_port_targets *t = &s->targets[p];
		struct svc_target *v = t->n ? realloc(t->v, t->n * sizeof(*v)) : NULL;
		if (v)
			t->v = v;
	}
	count_ready(s);
}

void endpoints_source_changed(struct svc_state *st, const struct svc_obj *src,
			      void (*touched)(void *ctx, struct svc_obj *svc), void *ctx)
{
	struct svc_obj *svc;
	size_t cur = 0;

	if (src->kind != KIND_POD) {
		svc = model_get(st->model, KIND_SERVICE, src->ns, src->u.eps->service);
		if (svc && !svc->u.svc->has_selector) {
			endpoints_service_changed(st, svc);
			touched(ctx, svc);
		}
		return;
	}
	while ((svc = model_iter(st->model, KIND_SERVICE, &cur)))
		if (svc->u.svc->has_selector && !strcmp(svc->ns, src->ns) &&
		    labels_match(&svc->u.svc->selector, &src->labels)) {
			endpoints_service_changed(st, svc);
			touched(ctx, svc);
		}
}

static cJSON *target_json(const struct svc_target *t, const char *ns)
{
	cJSON *a = cJSON_CreateObject(), *ref;
	char ip[SVC_ADDR_STRLEN];

	cJSON_AddStringToObject(a, "ip", addr_fmt(&t->addr, ip));
	if (t->node)
		cJSON_AddStringToObject(a, "nodeName", t->node);
	if (t->hostname) {
		ref = cJSON_AddObjectToObject(a, "targetRef");
		cJSON_AddStringToObject(ref, "kind", "Pod");
		cJSON_AddStringToObject(ref, "namespace", ns);
		cJSON_AddStringToObject(ref, "name", t->hostname);
	}
	return a;
}

/* One subset per service port: simpler than Kubernetes' repacking, and the
 * same addresses and ports. */
cJSON *endpoints_synthesize(const struct svc_obj *svc)
{
	const struct svc_service *s = svc->u.svc;
	cJSON *j = cJSON_CreateObject(), *meta, *subsets;
	char ts[21];

	cJSON_AddStringToObject(j, "apiVersion", "v1");
	cJSON_AddStringToObject(j, "kind", "Endpoints");
	meta = cJSON_AddObjectToObject(j, "metadata");
	cJSON_AddStringToObject(meta, "name", svc->name);
	cJSON_AddStringToObject(meta, "namespace", svc->ns);
	fmt_rfc3339(svc->created, ts);
	cJSON_AddStringToObject(meta, "creationTimestamp", ts);
	subsets = cJSON_AddArrayToObject(j, "subsets");
	for (uint32_t p = 0; s->targets && p < s->nports; p++) {
		const struct svc_port_targets *t = &s->targets[p];
		cJSON *sub, *ready, *unready, *port;
		if (!t->n)
			continue;
		sub = cJSON_CreateObject();
		ready = cJSON_AddArrayToObject(sub, "addresses");
		unready = cJSON_AddArrayToObject(sub, "notReadyAddresses");
		for (uint32_t i = 0; i < t->n; i++)
			cJSON_AddItemToArray(t->v[i].ready ? ready : unready,
					     target_json(&t->v[i], svc->ns));
		port = cJSON_CreateObject();
		if (*s->ports[p].name)
			cJSON_AddStringToObject(port, "name", s->ports[p].name);
		cJSON_AddNumberToObject(port, "port", t->v[0].port);
		cJSON_AddStringToObject(port, "protocol",
					s->ports[p].proto == IPPROTO_UDP    ? "UDP"
					: s->ports[p].proto == IPPROTO_SCTP ? "SCTP"
									    : "TCP");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(sub, "ports"), port);
		cJSON_AddItemToArray(subsets, sub);
	}
	return j;
}
