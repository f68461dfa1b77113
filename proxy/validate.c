// SPDX-License-Identifier: MIT
/* Manifest documents -> typed objects.  Every rule names the field path of
 * the offending value; defaults are written back into the document so that
 * the stored form is complete. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"
#include "vutil.h"

#define NOMEM(v) svc_errf((v)->e, ENOMEM, "out of memory")

static const char *const top_known[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
static const char *const endpoints_top_known[] = {"apiVersion", "kind", "metadata", "subsets",
						  NULL};
static const char *const slice_top_known[] = {"apiVersion", "kind",  "metadata", "addressType",
					      "endpoints",  "ports", NULL};
static const char *const meta_known[] = {"name",
					 "namespace",
					 "labels",
					 "annotations",
					 "uid",
					 "resourceVersion",
					 "creationTimestamp",
					 "generation",
					 "ownerReferences",
					 "finalizers",
					 "managedFields",
					 "selfLink",
					 "deletionTimestamp",
					 "deletionGracePeriodSeconds",
					 NULL};

static const char *const api_versions[KIND_COUNT] = {
    [KIND_SERVICE] = "v1",
    [KIND_ENDPOINTS] = "v1",
    [KIND_ENDPOINTSLICE] = "discovery.k8s.io/v1",
    [KIND_POD] = "v1",
    [KIND_DEPLOYMENT] = "apps/v1",
};

static int dup_str(struct vctx *v, const char *s, char **out)
{
	*out = NULL;
	if (s && !(*out = strdup(s)))
		return NOMEM(v);
	return 0;
}

static int check_kind(struct vctx *v, const cJSON *doc, enum svc_kind *k)
{
	const char *kind, *api;
	int r;

	if ((r = vstr(v, doc, "kind", "", true, &kind)) ||
	    (r = vstr(v, doc, "apiVersion", "", true, &api)))
		return r;
	if (kind_parse(kind, k))
		return vfail(v, "kind",
			     "unsupported kind \"%.64s\" (svcd takes Service, Endpoints, "
			     "EndpointSlice, Pod and Deployment)",
			     kind);
	if (strcmp(api, api_versions[*k]))
		return vfail(v, "apiVersion", "%s is \"%s\", got \"%.64s\"", kind, api_versions[*k],
			     api);
	return 0;
}

static int check_meta(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	const cJSON *meta;
	const char *name, *ns;
	int r;

	if ((r = vobj(v, doc, "metadata", "", true, &meta)))
		return r;
	vknown(v, meta, "metadata", meta_known);
	if ((r = vstr(v, meta, "name", "metadata", true, &name)) ||
	    (r = vstr(v, meta, "namespace", "metadata", false, &ns)))
		return r;
	if (o->kind == KIND_SERVICE ? !is_dns1035_label(name) : !is_dns_subdomain(name))
		return vfail(v, "metadata.name",
			     "must be %s (lowercase letters, digits and '-'%s), got \"%.100s\"",
			     o->kind == KIND_SERVICE ? "a DNS label of at most 63 characters "
						       "starting with a letter"
						     : "a DNS subdomain of at most 253 characters",
			     o->kind == KIND_SERVICE ? "" : ", '.' between labels", name);
	if (!ns || !*ns)
		ns = "default";
	else if (!is_dns_label(ns))
		return vfail(v, "metadata.namespace",
			     "must be a DNS label (lowercase letters, digits and '-', at most 63), "
			     "got \"%.100s\"",
			     ns);
	if (dup_str(v, name, &o->name) || dup_str(v, ns, &o->ns))
		return -ENOMEM;
	if (vset_str((cJSON *)meta, "namespace", ns))
		return NOMEM(v);
	if ((r = vlabels(v, meta, "labels", "metadata", &o->labels)))
		return r;
	return vannotations(v, meta, "metadata");
}

/* --- Service ------------------------------------------------------------ */

/* metadata.annotations["svcd.io/proxy-mode"]: "userspace" has the service
 * carried by the userspace balancer whatever the node's mode; "auto" (or
 * no annotation) follows the node. */
static int svc_proxy_mode(struct vctx *v, const cJSON *doc, struct svc_service *s)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(ann, SVC_PROXY_MODE_ANNOTATION);

	if (!cJSON_IsString(m) || !strcmp(m->valuestring, "auto"))
		return 0;
	if (strcmp(m->valuestring, "userspace"))
		return vfail(v, "metadata.annotations[\"" SVC_PROXY_MODE_ANNOTATION "\"]",
			     "must be \"userspace\" or \"auto\", got \"%.100s\"", m->valuestring);
	s->userspace = true;
	return 0;
}

static const char *const svc_spec_known[] = {"type",
					     "clusterIP",
					     "clusterIPs",
					     "ports",
					     "selector",
					     "sessionAffinity",
					     "sessionAffinityConfig",
					     "externalIPs",
					     "externalTrafficPolicy",
					     "internalTrafficPolicy",
					     "externalName",
					     "loadBalancerIP",
					     "loadBalancerSourceRanges",
					     "publishNotReadyAddresses",
					     "ipFamilies",
					     "ipFamilyPolicy",
					     "allocateLoadBalancerNodePorts",
					     "healthCheckNodePort",
					     "loadBalancerClass",
					     NULL};
static const char *const svc_port_known[] = {"name",	 "protocol",	"port", "targetPort",
					     "nodePort", "appProtocol", NULL};

static int svc_target_port(struct vctx *v, cJSON *pj, const char *pp, struct svc_port *sp)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(pj, "targetPort");
	char p[VPATH];
	long n;
	int r;

	vpath(p, pp, "targetPort");
	if (!t || cJSON_IsNull(t)) {
		sp->target_port = sp->port;
		return vset_num(pj, "targetPort", sp->port) ? NOMEM(v) : 0;
	}
	if (cJSON_IsString(t)) {
		if (!is_port_name(t->valuestring))
			return vbad(v, p,
				    "a port number or a port name (at most 15 lowercase letters, "
				    "digits and '-', with a letter)",
				    t);
		return dup_str(v, t->valuestring, &sp->target_name);
	}
	if ((r = vint(v, pj, "targetPort", pp, true, 1, 65535, 0, &n)))
		return r;
	sp->target_port = (uint16_t)n;
	return 0;
}

static int svc_port(struct vctx *v, struct svc_service *s, cJSON *pj, int i, bool many)
{
	struct svc_port *sp = &s->ports[i];
	const char *name;
	char pp[VPATH], p[VPATH];
	long port, np;
	int r;

	vpath_i(pp, "spec", "ports", i);
	if (!cJSON_IsObject(pj))
		return vbad(v, pp, "a mapping", pj);
	vknown(v, pj, pp, svc_port_known);
	if ((r = vstr(v, pj, "name", pp, many, &name)))
		return r;
	vpath(p, pp, "name");
	if (name && *name && !is_dns_label(name))
		return vfail(v, p,
			     "must be a DNS label (lowercase letters, digits, '-'), got \"%.64s\"",
			     name);
	if ((r = dup_str(v, name ? name : "", &sp->name)) || (r = vproto(v, pj, pp, &sp->proto)) ||
	    (r = vint(v, pj, "port", pp, true, 1, 65535, 0, &port)))
		return r;
	sp->port = (uint16_t)port;
	if (vset_str(pj, "protocol",
		     sp->proto == IPPROTO_TCP	? "TCP"
		     : sp->proto == IPPROTO_UDP ? "UDP"
						: "SCTP"))
		return NOMEM(v);
	if ((r = svc_target_port(v, pj, pp, sp)) ||
	    (r = vint(v, pj, "nodePort", pp, false, 0, 65535, 0, &np)))
		return r;
	vpath(p, pp, "nodePort");
	if (np && (s->type == SVC_CLUSTER_IP || s->type == SVC_EXTERNAL_NAME))
		return vfail(v, p, "may not be set for type %s", svc_type_name(s->type));
	sp->node_port = (uint16_t)np;
	for (int j = 0; j < i; j++) {
		if (s->ports[j].port == sp->port && s->ports[j].proto == sp->proto)
			return vfail(v, pp, "duplicate port %u/%s (also spec.ports[%d])", sp->port,
				     sp->proto == IPPROTO_UDP ? "UDP" : "TCP", j);
		if (*sp->name && !strcmp(s->ports[j].name, sp->name))
			return vfail(v, p, "duplicate port name \"%s\" (also spec.ports[%d])",
				     sp->name, j);
	}
	return 0;
}

static int svc_ports(struct vctx *v, cJSON *spec, struct svc_service *s)
{
	const cJSON *ports;
	int r, n, i = 0;
	cJSON *pj;

	if ((r = varr(v, spec, "ports", "spec", false, &ports)))
		return r;
	n = ports ? cJSON_GetArraySize(ports) : 0;
	if (!n && !s->headless && s->type != SVC_EXTERNAL_NAME)
		return vfail(v, "spec.ports", "at least one port is required");
	if (!n)
		return 0;
	s->ports = calloc((size_t)n, sizeof(*s->ports));
	if (!s->ports)
		return NOMEM(v);
	s->nports = (uint32_t)n;
	cJSON_ArrayForEach(pj, ports)
	{
		if ((r = svc_port(v, s, pj, i, n > 1)))
			return r;
		i++;
	}
	return 0;
}

static int svc_cluster_ip(struct vctx *v, cJSON *spec, struct svc_service *s)
{
	const char *ip;
	const cJSON *ips, *first;
	int r;

	if ((r = vstr(v, spec, "clusterIP", "spec", false, &ip)))
		return r;
	if (s->type == SVC_EXTERNAL_NAME) {
		if (ip && *ip)
			return vfail(v, "spec.clusterIP", "must be empty for type ExternalName");
		return 0;
	}
	if (ip && !strcmp(ip, "None")) {
		if (s->type != SVC_CLUSTER_IP)
			return vfail(v, "spec.clusterIP", "may not be None for type %s",
				     svc_type_name(s->type));
		s->headless = true;
	} else if (ip && *ip && addr_parse(ip, &s->cluster_ip)) {
		return vbad(v, "spec.clusterIP", "an IP address, \"None\" or empty",
			    cJSON_GetObjectItemCaseSensitive(spec, "clusterIP"));
	} else if (s->cluster_ip.family == AF_INET6) {
		return vfail(v, "spec.clusterIP", "IPv6 ClusterIPs are not supported yet, got %s",
			     ip);
	}
	if ((r = varr(v, spec, "clusterIPs", "spec", false, &ips)) || !ips)
		return r;
	first = cJSON_GetArrayItem(ips, 0);
	if (first && (!cJSON_IsString(first) || !ip || strcmp(first->valuestring, ip)))
		return vbad(v, "spec.clusterIPs[0]", "equal to spec.clusterIP", first);
	return 0;
}

static int addr_list(struct vctx *v, const cJSON *arr, const char *path, struct svc_addr **out,
		     uint32_t *n)
{
	const cJSON *c;
	char p[VPATH];
	int i = 0, r;

	*n = 0;
	if (!arr || !cJSON_GetArraySize(arr))
		return 0;
	*out = calloc((size_t)cJSON_GetArraySize(arr), sizeof(**out));
	if (!*out)
		return NOMEM(v);
	cJSON_ArrayForEach(c, arr)
	{
		snprintf(p, sizeof(p), "%s[%d]", path, i++);
		if ((r = vaddr(v, c, p, &(*out)[(*n)++])))
			return r;
	}
	return 0;
}

static int svc_lb_ips(struct vctx *v, const cJSON *doc, const cJSON *spec, struct svc_service *s)
{
	const cJSON *st, *lb, *ing, *c;
	const char *lbip;
	char p[VPATH];
	int r, i = 0;

	if ((r = vstr(v, spec, "loadBalancerIP", "spec", false, &lbip)) ||
	    (r = vobj(v, doc, "status", "", false, &st)) || !st ||
	    (r = vobj(v, st, "loadBalancer", "status", false, &lb)) || !lb ||
	    (r = varr(v, lb, "ingress", "status.loadBalancer", false, &ing)) || !ing)
		goto spec_ip;
	s->lb_ips = calloc((size_t)cJSON_GetArraySize(ing) + 1, sizeof(*s->lb_ips));
	if (!s->lb_ips)
		return NOMEM(v);
	cJSON_ArrayForEach(c, ing)
	{
		const char *ip;
		vpath_i(p, "status.loadBalancer", "ingress", i++);
		if ((r = vstr(v, c, "ip", p, false, &ip)))
			return r;
		if (ip && addr_parse(ip, &s->lb_ips[s->n_lb_ips++]))
			return vbad(v, p, "an IP address", cJSON_GetObjectItem(c, "ip"));
	}
spec_ip:
	if (r || !lbip || !*lbip || s->n_lb_ips)
		return r;
	if (!s->lb_ips && !(s->lb_ips = calloc(1, sizeof(*s->lb_ips))))
		return NOMEM(v);
	if (addr_parse(lbip, &s->lb_ips[0]))
		return vbad(v, "spec.loadBalancerIP", "an IP address",
			    cJSON_GetObjectItem(spec, "loadBalancerIP"));
	s->n_lb_ips = 1;
	return 0;
}

static int svc_affinity(struct vctx *v, cJSON *spec, struct svc_service *s)
{
	static const char *const aff[] = {"None", "ClientIP", NULL};
	const cJSON *cfg, *cip;
	int r, a;
	long t;

	if ((r = venum(v, spec, "sessionAffinity", "spec", aff, 0, &a)))
		return r;
	if (vset_str(spec, "sessionAffinity", aff[a]))
		return NOMEM(v);
	s->affinity = a == 1;
	s->affinity_timeout = 10800;
	if ((r = vobj(v, spec, "sessionAffinityConfig", "spec", false, &cfg)) || !cfg ||
	    (r = vobj(v, cfg, "clientIP", "spec.sessionAffinityConfig", false, &cip)) || !cip)
		return r;
	if ((r = vint(v, cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP", false, 1,
		      86400, 10800, &t)))
		return r;
	if (!s->affinity)
		return vfail(v, "spec.sessionAffinityConfig",
			     "only allowed with sessionAffinity: ClientIP");
	s->affinity_timeout = (uint32_t)t;
	return 0;
}

static int svc_policies(struct vctx *v, cJSON *spec, struct svc_service *s)
{
	static const char *const pol[] = {"Cluster", "Local", NULL};
	int r, ext, in;

	if ((r = venum(v, spec, "externalTrafficPolicy", "spec", pol, 0, &ext)) ||
	    (r = venum(v, spec, "internalTrafficPolicy", "spec", pol, 0, &in)))
		return r;
	if (ext && s->type != SVC_NODE_PORT && s->type != SVC_LOAD_BALANCER)
		return vfail(v, "spec.externalTrafficPolicy",
			     "Local is only allowed for type NodePort or LoadBalancer");
	s->external_local = ext;
	s->internal_local = in;
	if (s->type == SVC_EXTERNAL_NAME)
		return 0;
	if (vset_str(spec, "internalTrafficPolicy", pol[in]) ||
	    ((s->type == SVC_NODE_PORT || s->type == SVC_LOAD_BALANCER) &&
	     vset_str(spec, "externalTrafficPolicy", pol[ext])))
		return NOMEM(v);
	return 0;
}

static int svc_external(struct vctx *v, cJSON *spec, struct svc_service *s)
{
	const cJSON *eips;
	const char *en;
	int r;

	if ((r = varr(v, spec, "externalIPs", "spec", false, &eips)) ||
	    (r = addr_list(v, eips, "spec.externalIPs", &s->external_ips, &s->n_external_ips)) ||
	    (r = vstr(v, spec, "externalName", "spec", s->type == SVC_EXTERNAL_NAME, &en)))
		return r;
	if (s->type != SVC_EXTERNAL_NAME)
		return 0;
	if (!is_dns_subdomain(en))
		return vfail(v, "spec.externalName",
			     "must be a lowercase DNS name (RFC 1123), got \"%.100s\"", en);
	return dup_str(v, en, &s->external_name);
}

static int parse_service(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	static const char *const types[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName",
					    NULL};
	struct svc_service *s = calloc(1, sizeof(*s));
	const cJSON *spec;
	int r, t;

	if (!s)
		return NOMEM(v);
	o->u.svc = s;
	vknown(v, doc, "", top_known);
	if ((r = vobj(v, doc, "spec", "", true, &spec)))
		return r;
	vknown(v, spec, "spec", svc_spec_known);
	if ((r = venum(v, spec, "type", "spec", types, 0, &t)))
		return r;
	s->type = (enum svc_type)t;
	if (vset_str((cJSON *)spec, "type", types[t]))
		return NOMEM(v);
	if ((r = svc_cluster_ip(v, (cJSON *)spec, s)) || (r = svc_ports(v, (cJSON *)spec, s)) ||
	    (r = vlabels(v, spec, "selector", "spec", &s->selector)) ||
	    (r = svc_affinity(v, (cJSON *)spec, s)) || (r = svc_policies(v, (cJSON *)spec, s)) ||
	    (r = svc_external(v, (cJSON *)spec, s)) || (r = svc_lb_ips(v, doc, spec, s)) ||
	    (r = svc_proxy_mode(v, doc, s)))
		return r;
	s->has_selector = s->selector.n > 0;
	return 0;
}

/* --- Endpoints and EndpointSlice ------------------------------------------ */

static const char *const ep_port_known[] = {"name", "port", "protocol", "appProtocol", NULL};

static int ep_ports(struct vctx *v, const cJSON *arr, const char *path, struct svc_ep_port **out,
		    uint32_t *n)
{
	const cJSON *c;
	char p[VPATH];
	int i = 0, r;

	*n = 0;
	*out = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(**out));
	if (!*out)
		return NOMEM(v);
	cJSON_ArrayForEach(c, arr)
	{
		struct svc_ep_port *ep = &(*out)[(*n)++];
		const char *name;
		long port;
		snprintf(p, sizeof(p), "%s[%d]", path, i++);
		if (!cJSON_IsObject(c))
			return vbad(v, p, "a mapping", c);
		vknown(v, c, p, ep_port_known);
		if ((r = vstr(v, c, "name", p, false, &name)) ||
		    (r = dup_str(v, name ? name : "", &ep->name)) ||
		    (r = vint(v, c, "port", p, true, 1, 65535, 0, &port)) ||
		    (r = vproto(v, c, p, &ep->proto)))
			return r;
		ep->port = (uint16_t)port;
	}
	return 0;
}

static int epset_grow(struct vctx *v, struct svc_epset *s, uint32_t more)
{
	struct svc_endpoint *nv = realloc(s->v, (s->n + more + 1) * sizeof(*nv));

	if (!nv)
		return NOMEM(v);
	memset(nv + s->n, 0, (more + 1) * sizeof(*nv));
	s->v = nv;
	return 0;
}

static int copy_ports(struct vctx *v, struct svc_endpoint *ep, const struct svc_ep_port *p,
		      uint32_t n)
{
	(void)v;
	ep->ports = p; /* owned by the set: see keep_ports */
	ep->nports = n;
	return 0;
}

/* Hand a parsed port list to the set, which frees it; endpoints borrow it. */
static int keep_ports(struct vctx *v, struct svc_epset *s, struct svc_ep_port **pv, uint32_t *np)
{
	struct svc_ep_port **l = realloc(s->lists, (s->nlists + 1) * sizeof(*l));
	uint32_t *len;

	if (l)
		s->lists = l;
	len = l ? realloc(s->list_len, (s->nlists + 1) * sizeof(*len)) : NULL;
	if (!len)
		return NOMEM(v);
	s->list_len = len;
	s->lists[s->nlists] = *pv;
	s->list_len[s->nlists++] = *np;
	*pv = NULL;
	*np = 0;
	return 0;
}

static const char *const ep_addr_known[] = {"ip", "hostname", "nodeName", "targetRef", NULL};

static int subset_addrs(struct vctx *v, struct svc_epset *s, const cJSON *arr, const char *path,
			bool ready, const struct svc_ep_port *ports, uint32_t nports)
{
	const cJSON *c;
	char p[VPATH], ip[VPATH];
	int i = 0, r;

	if (!arr || epset_grow(v, s, (uint32_t)cJSON_GetArraySize(arr)))
		return arr ? -ENOMEM : 0;
	cJSON_ArrayForEach(c, arr)
	{
		struct svc_endpoint *ep = &s->v[s->n];
		const char *host, *node;
		snprintf(p, sizeof(p), "%s[%d]", path, i++);
		if (!cJSON_IsObject(c))
			return vbad(v, p, "a mapping", c);
		vknown(v, c, p, ep_addr_known);
		vpath(ip, p, "ip");
		s->n++;
		ep->ready = ready;
		if ((r = vstr(v, c, "hostname", p, false, &host)) ||
		    (r = vstr(v, c, "nodeName", p, false, &node)) ||
		    (r = vaddr(v, cJSON_GetObjectItemCaseSensitive(c, "ip"), ip, &ep->addr)) ||
		    (r = dup_str(v, host, &ep->hostname)) || (r = dup_str(v, node, &ep->node)) ||
		    (r = copy_ports(v, ep, ports, nports)))
			return r;
		if (host && !is_dns_label(host))
			return vfail(v, p, "hostname must be a DNS label, got \"%.64s\"", host);
	}
	return 0;
}

static const char *const subset_known[] = {"addresses", "notReadyAddresses", "ports", NULL};

static int parse_subset(struct vctx *v, struct svc_epset *s, const cJSON *sub, int i)
{
	const cJSON *addrs, *nr, *ports;
	struct svc_ep_port *pv = NULL;
	uint32_t np = 0;
	char p[VPATH], pp[VPATH];
	int r;

	vpath_i(p, "", "subsets", i);
	if (!cJSON_IsObject(sub))
		return vbad(v, p, "a mapping", sub);
	vknown(v, sub, p, subset_known);
	if ((r = varr(v, sub, "addresses", p, false, &addrs)) ||
	    (r = varr(v, sub, "notReadyAddresses", p, false, &nr)) ||
	    (r = varr(v, sub, "ports", p, false, &ports)))
		return r;
	vpath(pp, p, "ports");
	if (ports && (r = ep_ports(v, ports, pp, &pv, &np)) == 0) {
		char ap[VPATH], nrp[VPATH];
		struct svc_ep_port *shared = pv;
		uint32_t nshared = np;
		vpath(ap, p, "addresses");
		vpath(nrp, p, "notReadyAddresses");
		if (!(r = keep_ports(v, s, &pv, &np)) &&
		    !(r = subset_addrs(v, s, addrs, ap, true, shared, nshared)))
			r = subset_addrs(v, s, nr, nrp, false, shared, nshared);
	}
	for (uint32_t k = 0; k < np; k++)
		free(pv[k].name);
	free(pv);
	return r;
}

static int parse_endpoints(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	struct svc_epset *s = calloc(1, sizeof(*s));
	const cJSON *subs, *sub;
	int r, i = 0;

	if (!s)
		return NOMEM(v);
	o->u.eps = s;
	vknown(v, doc, "", endpoints_top_known);
	if ((r = dup_str(v, o->name, &s->service)) ||
	    (r = varr(v, doc, "subsets", "", false, &subs)) || !subs)
		return r;
	cJSON_ArrayForEach(sub, subs)
	{
		if ((r = parse_subset(v, s, sub, i++)))
			return r;
	}
	return 0;
}

static const char *const slice_ep_known[] = {"addresses",	   "conditions", "hostname",
					     "nodeName",	   "zone",	 "targetRef",
					     "deprecatedTopology", "hints",	 NULL};

static int slice_endpoint(struct vctx *v, struct svc_epset *s, const cJSON *c, const char *p,
			  const struct svc_ep_port *pv, uint32_t np)
{
	const cJSON *addrs, *cond, *a;
	const char *host, *node;
	char ap[VPATH];
	bool ready;
	int r, k = 0;

	if (!cJSON_IsObject(c))
		return vbad(v, p, "a mapping", c);
	vknown(v, c, p, slice_ep_known);
	vpath(ap, p, "conditions");
	if ((r = varr(v, c, "addresses", p, true, &addrs)) ||
	    (r = vobj(v, c, "conditions", p, false, &cond)) ||
	    (r = vbool(v, cond, "ready", ap, true, &ready)) ||
	    (r = vstr(v, c, "hostname", p, false, &host)) ||
	    (r = vstr(v, c, "nodeName", p, false, &node)))
		return r;
	if (!cJSON_GetArraySize(addrs))
		return vfail(v, ap, "at least one address is required");
	if ((r = epset_grow(v, s, (uint32_t)cJSON_GetArraySize(addrs))))
		return r;
	cJSON_ArrayForEach(a, addrs)
	{
		struct svc_endpoint *ep = &s->v[s->n++];
		vpath_i(ap, p, "addresses", k++);
		ep->ready = ready;
		if ((r = vaddr(v, a, ap, &ep->addr)) || (r = dup_str(v, host, &ep->hostname)) ||
		    (r = dup_str(v, node, &ep->node)) || (r = copy_ports(v, ep, pv, np)))
			return r;
	}
	return 0;
}

static int parse_slice(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	static const char *const types[] = {"IPv4", "IPv6", "FQDN", NULL};
	struct svc_epset *s = calloc(1, sizeof(*s));
	const cJSON *eps, *ports, *c;
	struct svc_ep_port *pv = NULL;
	uint32_t np = 0;
	char p[VPATH];
	int r, t, i = 0;

	if (!s)
		return NOMEM(v);
	o->u.eps = s;
	vknown(v, doc, "", slice_top_known);
	for (uint32_t k = 0; k < o->labels.n; k++)
		if (!strcmp(o->labels.v[k].key, "kubernetes.io/service-name") &&
		    (r = dup_str(v, o->labels.v[k].value, &s->service)))
			return r;
	if (!s->service)
		return vfail(v, "metadata.labels[\"kubernetes.io/service-name\"]",
			     "required: it names the service these endpoints belong to");
	if ((r = venum(v, doc, "addressType", "", types, -1, &t)))
		return r;
	if (t < 0)
		return vfail(v, "addressType", "required field is missing");
	if ((r = varr(v, doc, "endpoints", "", false, &eps)) ||
	    (r = varr(v, doc, "ports", "", false, &ports)) ||
	    (ports && (r = ep_ports(v, ports, "ports", &pv, &np))))
		goto out;
	struct svc_ep_port *shared = pv;
	uint32_t nshared = np;
	if (pv && (r = keep_ports(v, s, &pv, &np)))
		goto out;
	if (t == 2 && eps && cJSON_GetArraySize(eps))
		svc_warnf(v->w, "addressType: FQDN endpoints are not used by svcd");
	else if (eps)
		cJSON_ArrayForEach(c, eps)
		{
			vpath_i(p, "", "endpoints", i++);
			if ((r = slice_endpoint(v, s, c, p, shared, nshared)))
				break;
		}
out:
	for (uint32_t k = 0; k < np; k++)
		free(pv[k].name);
	free(pv);
	return r;
}

/* --- Pod and Deployment ---------------------------------------------------- */

static const char *const pod_spec_known[] = {"containers",
					     "initContainers",
					     "restartPolicy",
					     "nodeName",
					     "nodeSelector",
					     "volumes",
					     "hostname",
					     "subdomain",
					     "dnsPolicy",
					     "dnsConfig",
					     "securityContext",
					     "serviceAccountName",
					     "serviceAccount",
					     "terminationGracePeriodSeconds",
					     "tolerations",
					     "affinity",
					     "hostNetwork",
					     "imagePullSecrets",
					     "priorityClassName",
					     "enableServiceLinks",
					     "automountServiceAccountToken",
					     "readinessGates",
					     NULL};
static const char *const ctr_known[] = {"name",
					"image",
					"command",
					"args",
					"env",
					"envFrom",
					"ports",
					"workingDir",
					"resources",
					"securityContext",
					"readinessProbe",
					"livenessProbe",
					"startupProbe",
					"imagePullPolicy",
					"volumeMounts",
					"stdin",
					"stdinOnce",
					"tty",
					"lifecycle",
					"terminationMessagePath",
					"terminationMessagePolicy",
					NULL};
static const char *const ctr_port_known[] = {"name",	 "containerPort", "protocol",
					     "hostPort", "hostIP",	  NULL};

static int str_array(struct vctx *v, const cJSON *parent, const char *key, const char *pp)
{
	const cJSON *arr, *c;
	char p[VPATH];
	int r, i = 0;

	if ((r = varr(v, parent, key, pp, false, &arr)) || !arr)
		return r;
	cJSON_ArrayForEach(c, arr)
	{
		vpath_i(p, pp, key, i++);
		if (!cJSON_IsString(c))
			return vbad(v, p, "a string", c);
	}
	return 0;
}

static int ctr_ports(struct vctx *v, const cJSON *arr, const char *pp, struct svc_container *c)
{
	const cJSON *pj;
	char p[VPATH], np[VPATH];
	int r, i = 0;

	c->ports = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*c->ports));
	if (!c->ports)
		return NOMEM(v);
	cJSON_ArrayForEach(pj, arr)
	{
		struct svc_ep_port *ep = &c->ports[c->nports++];
		const char *name;
		long port;
		vpath_i(p, pp, "ports", i++);
		if (!cJSON_IsObject(pj))
			return vbad(v, p, "a mapping", pj);
		vknown(v, pj, p, ctr_port_known);
		if ((r = vstr(v, pj, "name", p, false, &name)) ||
		    (r = vint(v, pj, "containerPort", p, true, 1, 65535, 0, &port)) ||
		    (r = vproto(v, pj, p, &ep->proto)) ||
		    (r = dup_str(v, name ? name : "", &ep->name)))
			return r;
		vpath(np, p, "name");
		if (name && !is_port_name(name))
			return vbad(v, np,
				    "a port name (at most 15 lowercase letters, digits and '-', "
				    "with a letter)",
				    cJSON_GetObjectItem(pj, "name"));
		ep->port = (uint16_t)port;
	}
	return 0;
}

static int ctr_env(struct vctx *v, const cJSON *ctr, const char *pp)
{
	const cJSON *env, *c;
	const char *name, *val;
	char p[VPATH];
	int r, i = 0;

	if ((r = varr(v, ctr, "env", pp, false, &env)) || !env)
		return r;
	cJSON_ArrayForEach(c, env)
	{
		vpath_i(p, pp, "env", i++);
		if (!cJSON_IsObject(c))
			return vbad(v, p, "a mapping", c);
		if ((r = vstr(v, c, "name", p, true, &name)) ||
		    (r = vstr(v, c, "value", p, false, &val)))
			return r;
	}
	return 0;
}

static int ctr_resources(struct vctx *v, const cJSON *ctr, const char *pp)
{
	static const char *const sections[] = {"limits", "requests"};
	static const char *const known[] = {"limits", "requests", "claims", NULL};
	const cJSON *res, *sec, *q;
	char rp[VPATH], sp[VPATH], qp[VPATH];
	int r;

	if ((r = vobj(v, ctr, "resources", pp, false, &res)) || !res)
		return r;
	vpath(rp, pp, "resources");
	vknown(v, res, rp, known);
	for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
		if ((r = vobj(v, res, sections[s], rp, false, &sec)) || !sec)
			continue;
		vpath(sp, rp, sections[s]);
		cJSON_ArrayForEach(q, sec)
		{
			vpath(qp, sp, q->string);
			if (!(cJSON_IsNumber(q) && q->valuedouble >= 0) &&
			    !(cJSON_IsString(q) && is_quantity(q->valuestring)))
				return vbad(v, qp, "a quantity such as 500m, 1, 128Mi or 1Gi", q);
		}
	}
	return r;
}

/* runAsUser and runAsGroup, in a container's or the pod's securityContext. */
static int run_as(struct vctx *v, const cJSON *parent, const char *pp)
{
	const cJSON *sc;
	char sp[VPATH];
	long id;
	int r;

	if ((r = vobj(v, parent, "securityContext", pp, false, &sc)) || !sc)
		return r;
	vpath(sp, pp, "securityContext");
	if ((r = vint(v, sc, "runAsUser", sp, false, 0, 2147483647, 0, &id)) ||
	    (r = vint(v, sc, "runAsGroup", sp, false, 0, 2147483647, 0, &id)))
		return r;
	return 0;
}

static int container(struct vctx *v, const cJSON *cj, const char *pp, struct svc_container *c)
{
	const cJSON *ports;
	const char *name, *image;
	char np[VPATH];
	int r;

	if (!cJSON_IsObject(cj))
		return vbad(v, pp, "a mapping", cj);
	vknown(v, cj, pp, ctr_known);
	vpath(np, pp, "name");
	if ((r = vstr(v, cj, "name", pp, true, &name)) || (r = dup_str(v, name, &c->name)))
		return r;
	if (!is_dns_label(name))
		return vfail(v, np,
			     "must be a DNS label (lowercase letters, digits, '-'), got \"%.64s\"",
			     name);
	if ((r = vstr(v, cj, "image", pp, true, &image)) || (r = dup_str(v, image, &c->image)) ||
	    (r = str_array(v, cj, "command", pp)) || (r = str_array(v, cj, "args", pp)) ||
	    (r = ctr_env(v, cj, pp)) || (r = ctr_resources(v, cj, pp)) || (r = run_as(v, cj, pp)) ||
	    (r = varr(v, cj, "ports", pp, false, &ports)))
		return r;
	return ports ? ctr_ports(v, ports, pp, c) : 0;
}

static int pod_spec(struct vctx *v, const cJSON *spec, const char *sp, struct svc_pod *p)
{
	static const char *const policies[] = {"Always", "OnFailure", "Never", NULL};
	const cJSON *ctrs, *cj;
	const char *node;
	char cp[VPATH];
	int r, pol, i = 0;

	vknown(v, spec, sp, pod_spec_known);
	if ((r = varr(v, spec, "containers", sp, true, &ctrs)))
		return r;
	vpath(cp, sp, "containers");
	if (!cJSON_GetArraySize(ctrs))
		return vfail(v, cp, "at least one container is required");
	p->containers = calloc((size_t)cJSON_GetArraySize(ctrs), sizeof(*p->containers));
	if (!p->containers)
		return NOMEM(v);
	cJSON_ArrayForEach(cj, ctrs)
	{
		vpath_i(cp, sp, "containers", i);
		p->ncontainers++;
		if ((r = container(v, cj, cp, &p->containers[i])))
			return r;
		for (int j = 0; j < i; j++)
			if (!strcmp(p->containers[j].name, p->containers[i].name))
				return vfail(v, cp, "duplicate container name \"%s\"",
					     p->containers[i].name);
		i++;
	}
	long grace;

	if ((r = run_as(v, spec, sp)) ||
	    (r = vint(v, spec, "terminationGracePeriodSeconds", sp, false, 0, 86400, 30, &grace)))
		return r;
	if ((r = venum(v, spec, "restartPolicy", sp, policies, 0, &pol)) ||
	    (r = dup_str(v, policies[pol], &p->restart_policy)) ||
	    (r = vstr(v, spec, "nodeName", sp, false, &node)) ||
	    (r = dup_str(v, node, &p->node_name)))
		return r;
	return vset_str((cJSON *)spec, "restartPolicy", policies[pol]) ? NOMEM(v) : 0;
}

static int parse_pod(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	const cJSON *spec;
	int r;

	if (!(o->u.pod = calloc(1, sizeof(*o->u.pod))))
		return NOMEM(v);
	vknown(v, doc, "", top_known);
	if ((r = vobj(v, doc, "spec", "", true, &spec)))
		return r;
	/* Status belongs to whoever runs the pod, never to the manifest. */
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "status");
	return pod_spec(v, spec, "spec", o->u.pod);
}

static const char *const dep_spec_known[] = {"replicas",
					     "selector",
					     "template",
					     "strategy",
					     "minReadySeconds",
					     "revisionHistoryLimit",
					     "progressDeadlineSeconds",
					     "paused",
					     NULL};

/* The pod template is checked as a pod would be, into a scratch object. */
static int dep_template(struct vctx *v, const cJSON *spec, struct svc_deployment *d)
{
	static const char *const tmeta_known[] = {"labels", "annotations", "name", NULL};
	struct svc_obj *tmp = calloc(1, sizeof(*tmp));
	const cJSON *tmpl, *tmeta, *tspec;
	int r;

	if (!tmp || !(tmp->u.pod = calloc(1, sizeof(*tmp->u.pod)))) {
		free(tmp);
		return NOMEM(v);
	}
	tmp->kind = KIND_POD;
	if ((r = vobj(v, spec, "template", "spec", true, &tmpl)) ||
	    (r = vobj(v, tmpl, "metadata", "spec.template", true, &tmeta)))
		goto out;
	vknown(v, tmeta, "spec.template.metadata", tmeta_known);
	if ((r = vlabels(v, tmeta, "labels", "spec.template.metadata", &tmp->labels)))
		goto out;
	if (!labels_match(&d->selector, &tmp->labels)) {
		r = vfail(v, "spec.template.metadata.labels",
			  "must include every label of spec.selector.matchLabels");
		goto out;
	}
	if (!(r = vobj(v, tmpl, "spec", "spec.template", true, &tspec)))
		r = pod_spec(v, tspec, "spec.template.spec", tmp->u.pod);
out:
	obj_free(tmp);
	return r;
}

static int parse_deployment(struct vctx *v, cJSON *doc, struct svc_obj *o)
{
	static const char *const sel_known[] = {"matchLabels", "matchExpressions", NULL};
	struct svc_deployment *d = calloc(1, sizeof(*d));
	const cJSON *spec, *sel, *expr;
	long replicas;
	int r;

	if (!d)
		return NOMEM(v);
	o->u.dep = d;
	vknown(v, doc, "", top_known);
	if ((r = vobj(v, doc, "spec", "", true, &spec)))
		return r;
	vknown(v, spec, "spec", dep_spec_known);
	if ((r = vint(v, spec, "replicas", "spec", false, 0, 1000000, 1, &replicas)) ||
	    (r = vobj(v, spec, "selector", "spec", true, &sel)))
		return r;
	d->replicas = (int32_t)replicas;
	vknown(v, sel, "spec.selector", sel_known);
	if ((r = varr(v, sel, "matchExpressions", "spec.selector", false, &expr)))
		return r;
	if (expr && cJSON_GetArraySize(expr))
		return vfail(v, "spec.selector.matchExpressions",
			     "not supported yet; use matchLabels");
	if ((r = vlabels(v, sel, "matchLabels", "spec.selector", &d->selector)))
		return r;
	if (!d->selector.n)
		return vfail(v, "spec.selector.matchLabels", "at least one label is required");
	if (vset_num((cJSON *)spec, "replicas", (double)replicas))
		return NOMEM(v);
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "status");
	return dep_template(v, spec, d);
}

/* --- Entry point ----------------------------------------------------------- */

static int (*const parsers[KIND_COUNT])(struct vctx *, cJSON *, struct svc_obj *) = {
    [KIND_SERVICE] = parse_service,	  [KIND_ENDPOINTS] = parse_endpoints,
    [KIND_ENDPOINTSLICE] = parse_slice,	  [KIND_POD] = parse_pod,
    [KIND_DEPLOYMENT] = parse_deployment,
};

int obj_from_doc(cJSON *doc, struct svc_obj **out, struct svc_warn *w, struct svc_err *e)
{
	struct vctx v = {.w = w, .e = e};
	struct svc_obj *o = calloc(1, sizeof(*o));
	char key[600];
	int r;

	*out = NULL;
	if (!o)
		return svc_errf(e, ENOMEM, "out of memory");
	if ((r = check_kind(&v, doc, &o->kind)) || (r = check_meta(&v, doc, o)) ||
	    (r = parsers[o->kind](&v, doc, o)))
		goto fail;
	if ((r = obj_key(key, sizeof(key), o->kind, o->ns, o->name)) || !(o->key = strdup(key))) {
		r = svc_errf(e, ENOMEM, "out of memory");
		goto fail;
	}
	*out = o;
	return 0;
fail:
	obj_free(o);
	return r;
}
