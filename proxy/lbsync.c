// SPDX-License-Identifier: MIT
#include "lbsync.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lbsync {
	struct lb *lb;
	bool all;
};

static bool served(const struct lbsync *ls, const struct svc_obj *o)
{
	const struct svc_service *s = o ? o->u.svc : NULL;

	return s && (ls->all || s->userspace) && s->type != SVC_EXTERNAL_NAME && !s->headless &&
	       s->cluster_ip.family;
}

static void add_addr(struct svc_addr *v, uint32_t *n, const struct svc_addr *a)
{
	for (uint32_t i = 0; i < *n; i++)
		if (addr_eq(&v[i], a))
			return;
	v[(*n)++] = *a;
}

/* The spec of service o: its addresses, and per port the ready endpoints. */
static int sync_one(struct lbsync *ls, const char *key, const struct svc_obj *o, struct svc_err *e)
{
	const struct svc_service *s = served(ls, o) ? o->u.svc : NULL;
	struct lb_service_spec spec = {0};
	struct lb_port_spec *ports = NULL;
	struct lb_target *targets = NULL;
	struct svc_addr *addrs = NULL;
	size_t nt = 0;
	int r;

	if (!s)
		return lb_service_set(ls->lb, key, NULL, e);
	for (uint32_t i = 0; s->targets && i < s->nports; i++)
		nt += s->targets[i].n;
	addrs = calloc(1 + s->n_external_ips + s->n_lb_ips, sizeof(*addrs));
	ports = calloc(s->nports + 1, sizeof(*ports));
	targets = calloc(nt + 1, sizeof(*targets));
	if (!addrs || !ports || !targets) {
		r = svc_errf(e, ENOMEM, "out of memory");
		goto out;
	}
	/* Each address once: a load-balancer IP is often an external IP too. */
	add_addr(addrs, &spec.naddrs, &s->cluster_ip);
	for (uint32_t i = 0; i < s->n_external_ips; i++)
		add_addr(addrs, &spec.naddrs, &s->external_ips[i]);
	for (uint32_t i = 0; i < s->n_lb_ips; i++)
		add_addr(addrs, &spec.naddrs, &s->lb_ips[i]);
	nt = 0;
	for (uint32_t i = 0; i < s->nports; i++) {
		struct lb_port_spec *ps = &ports[i];
		ps->proto = s->ports[i].proto;
		ps->port = s->ports[i].port;
		ps->node_port = s->ports[i].node_port;
		ps->targets = targets + nt;
		for (uint32_t j = 0; s->targets && j < s->targets[i].n; j++) {
			const struct svc_target *t = &s->targets[i].v[j];
			if (!t->ready || !t->port)
				continue;
			targets[nt++] = (struct lb_target){.addr = t->addr, .port = t->port};
			ps->ntargets++;
		}
	}
	spec.addrs = addrs;
	spec.ports = ports;
	spec.nports = s->nports;
	spec.affinity = s->affinity;
	spec.affinity_timeout = s->affinity_timeout;
	r = lb_service_set(ls->lb, key, &spec, e);
out:
	free(addrs);
	free(ports);
	free(targets);
	return r;
}

static const struct svc_obj *service_of(const struct svc_model *m, const char *key)
{
	const char *slash = strchr(key, '/');
	char ns[256];

	if (!slash || (size_t)(slash - key) >= sizeof(ns))
		return NULL;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = 0;
	return model_get(m, KIND_SERVICE, ns, slash + 1);
}

/* Each service on its own: one that cannot be served (its nodePort taken by
 * another program, say) keeps what it had and is reported, and the others
 * still change.  The reconciler retries the failed ones. */
static int lb_sync(void *priv, const struct svc_model *m, const char *const *changed, size_t n,
		   bool full, struct svc_err *e)
{
	struct lbsync *ls = priv;
	struct svc_err one = {0};
	char key[600];
	int first = 0;

	if (full) {
		struct svc_obj *o;
		size_t cur = 0;
		while ((o = model_iter(m, KIND_SERVICE, &cur))) {
			snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
			if (sync_one(ls, key, o, &one) && !first) {
				first = -one.code;
				*e = one;
			}
			svc_err_clear(&one);
		}
		/* Services the balancer has that the model no longer has. */
		cur = 0;
		for (const char *k; (k = lb_service_next(ls->lb, &cur));)
			if (!served(ls, service_of(m, k)))
				lb_service_set(ls->lb, k, NULL, &one); /* removing cannot fail */
		return first;
	}
	for (size_t i = 0; i < n; i++) {
		if (sync_one(ls, changed[i], service_of(m, changed[i]), &one) && !first) {
			first = -one.code;
			*e = one;
		}
		svc_err_clear(&one);
	}
	return first;
}

static void lb_destroy(void *priv)
{
	struct lbsync *ls = priv;

	lb_free(ls->lb);
	free(ls);
}

static void lb_backend_stats(void *priv, size_t *elements, size_t *chains)
{
	struct lbsync *ls = priv;
	struct lb_stats st;

	lb_stats(ls->lb, &st);
	*elements = st.listeners;
	*chains = st.services;
}

int lb_backend_new(struct ev_loop *loop, const struct lb_config *cfg, bool all,
		   struct svc_backend *out, struct lb **lbp, struct svc_err *e)
{
	struct lbsync *ls = calloc(1, sizeof(*ls));
	int r;

	if (!ls)
		return svc_errf(e, ENOMEM, "out of memory");
	if ((r = lb_new(loop, cfg, &ls->lb, e))) {
		free(ls);
		return r;
	}
	ls->all = all;
	*out = (struct svc_backend){.name = "userspace",
				    .sync = lb_sync,
				    .destroy = lb_destroy,
				    .stats = lb_backend_stats,
				    .priv = ls};
	*lbp = ls->lb;
	return 0;
}
