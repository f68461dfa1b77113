// SPDX-License-Identifier: MIT
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smap.h"
#include "util.h"

static const struct {
	const char *name, *resource;
} kinds[KIND_COUNT] = {
    [KIND_SERVICE] = {"Service", "services"},
    [KIND_ENDPOINTS] = {"Endpoints", "endpoints"},
    [KIND_ENDPOINTSLICE] = {"EndpointSlice", "endpointslices.discovery.k8s.io"},
    [KIND_POD] = {"Pod", "pods"},
    [KIND_DEPLOYMENT] = {"Deployment", "deployments.apps"},
};

const char *kind_name(enum svc_kind k)
{
	return k < KIND_COUNT ? kinds[k].name : "?";
}

const char *kind_resource(enum svc_kind k)
{
	return k < KIND_COUNT ? kinds[k].resource : "?";
}

int kind_parse(const char *s, enum svc_kind *out)
{
	for (int k = 0; k < KIND_COUNT; k++)
		if (!strcmp(s, kinds[k].name)) {
			*out = (enum svc_kind)k;
			return 0;
		}
	return -EINVAL;
}

const char *svc_type_name(enum svc_type t)
{
	static const char *const names[] = {"ClusterIP", "NodePort", "LoadBalancer",
					    "ExternalName"};
	return t < ARRAY_SIZE(names) ? names[t] : "?";
}

const char *pod_phase_name(enum pod_phase p)
{
	static const char *const names[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};
	return p < ARRAY_SIZE(names) ? names[p] : "Unknown";
}

bool labels_match(const struct svc_labels *sel, const struct svc_labels *labels)
{
	if (!sel->n)
		return false;
	for (uint32_t i = 0; i < sel->n; i++) {
		uint32_t j = 0;
		while (j < labels->n && strcmp(labels->v[j].key, sel->v[i].key))
			j++;
		if (j == labels->n || strcmp(labels->v[j].value, sel->v[i].value))
			return false;
	}
	return true;
}

static void labels_free(struct svc_labels *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
}

static void ep_ports_free(struct svc_ep_port *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(p[i].name);
	free(p);
}

static void service_free(struct svc_service *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_name);
		if (s->targets)
			free(s->targets[i].v);
	}
	free(s->targets);
	free(s->ports);
	labels_free(&s->selector);
	free(s->external_ips);
	free(s->lb_ips);
	free(s->external_name);
	free(s);
}

static void epset_free(struct svc_epset *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		free(s->v[i].hostname);
		free(s->v[i].node);
	}
	for (uint32_t i = 0; i < s->nlists; i++)
		ep_ports_free(s->lists[i], s->list_len[i]);
	free(s->lists);
	free(s->list_len);
	free(s->v);
	free(s->service);
	free(s);
}

static void pod_free(struct svc_pod *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->ncontainers; i++) {
		free(p->containers[i].name);
		free(p->containers[i].image);
		ep_ports_free(p->containers[i].ports, p->containers[i].nports);
	}
	free(p->containers);
	free(p->restart_policy);
	free(p->node_name);
	free(p->reason);
	free(p->message);
	cJSON_Delete(p->container_statuses);
	free(p);
}

static void deployment_free(struct svc_deployment *d)
{
	if (!d)
		return;
	labels_free(&d->selector);
	free(d);
}

void obj_free(struct svc_obj *o)
{
	if (!o)
		return;
	switch (o->kind) {
	case KIND_SERVICE:
		service_free(o->u.svc);
		break;
	case KIND_ENDPOINTS:
	case KIND_ENDPOINTSLICE:
		epset_free(o->u.eps);
		break;
	case KIND_POD:
		pod_free(o->u.pod);
		break;
	case KIND_DEPLOYMENT:
		deployment_free(o->u.dep);
		break;
	case KIND_COUNT:
		break;
	}
	labels_free(&o->labels);
	free(o->ns);
	free(o->name);
	free(o->key);
	free(o->json);
	free(o->path);
	free(o);
}

int obj_key(char *buf, size_t n, enum svc_kind k, const char *ns, const char *name)
{
	int r = snprintf(buf, n, "%s/%s/%s", kind_name(k), ns, name);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static cJSON *pod_status_json(const struct svc_pod *p)
{
	cJSON *st = cJSON_CreateObject();
	char ip[SVC_ADDR_STRLEN];

	char ts[21];
	cJSON *conds, *c;

	cJSON_AddStringToObject(st, "phase", pod_phase_name(p->phase));
	conds = cJSON_AddArrayToObject(st, "conditions");
	if (conds && (c = cJSON_CreateObject())) {
		cJSON_AddStringToObject(c, "type", "Ready");
		cJSON_AddStringToObject(c, "status", p->ready ? "True" : "False");
		cJSON_AddItemToArray(conds, c);
	}
	if (p->ip.family) {
		cJSON_AddStringToObject(st, "podIP", addr_fmt(&p->ip, ip));
		c = cJSON_AddArrayToObject(st, "podIPs");
		cJSON *one = c ? cJSON_CreateObject() : NULL;
		if (one) {
			cJSON_AddStringToObject(one, "ip", ip);
			cJSON_AddItemToArray(c, one);
		}
	}
	if (p->start_time) {
		fmt_rfc3339(p->start_time, ts);
		cJSON_AddStringToObject(st, "startTime", ts);
	}
	if (p->reason)
		cJSON_AddStringToObject(st, "reason", p->reason);
	if (p->message)
		cJSON_AddStringToObject(st, "message", p->message);
	if (p->container_statuses)
		cJSON_AddItemToObject(st, "containerStatuses",
				      cJSON_Duplicate(p->container_statuses, true));
	return st;
}

int obj_json_text(const struct svc_obj *o, struct sbuf *b)
{
	static const char key[] = "\"metadata\":{";
	const char *at = strstr(o->json, key);
	char ts[21];
	size_t head;
	int r = 0;

	/* serialize() puts metadata right after apiVersion and kind, so the
	 * first match is the object's own (strings hold it only escaped). */
	if (!at)
		return sbuf_adds(b, o->json);
	head = (size_t)(at - o->json) + sizeof(key) - 1;
	fmt_rfc3339(o->created, ts);
	r |= sbuf_add(b, o->json, head);
	r |= sbuf_addf(b,
		       "\"uid\":\"%s\",\"creationTimestamp\":\"%s\",\"generation\":%lld,"
		       "\"resourceVersion\":\"%llu\"%s",
		       o->uid, ts, (long long)o->generation, (unsigned long long)o->rv,
		       o->json[head] == '}' ? "" : ",");
	r |= sbuf_adds(b, o->json + head);
	return r ? -ENOMEM : 0;
}

cJSON *obj_to_json(const struct svc_obj *o)
{
	struct sbuf b = {0};
	cJSON *j = obj_json_text(o, &b) ? NULL : cJSON_Parse(b.p);

	sbuf_free(&b);

	if (!j)
		return NULL;
	if (o->kind == KIND_POD) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, "status");
		cJSON_AddItemToObject(j, "status", pod_status_json(o->u.pod));
	}
	return j;
}

/* One map per kind, keyed by obj->key (which the object owns). */
struct svc_model {
	struct smap t[KIND_COUNT];
};

struct svc_model *model_new(void)
{
	return calloc(1, sizeof(struct svc_model));
}

void model_free(struct svc_model *m)
{
	if (!m)
		return;
	for (int k = 0; k < KIND_COUNT; k++) {
		size_t cur = 0;
		struct smap_ent *ent;
		while ((ent = smap_next(&m->t[k], &cur)))
			obj_free(ent->val);
		smap_free(&m->t[k]);
	}
	free(m);
}

static int key_kind(const char *key, enum svc_kind *k)
{
	char kind[32];
	const char *slash = strchr(key, '/');

	if (!slash || (size_t)(slash - key) >= sizeof(kind))
		return -EINVAL;
	memcpy(kind, key, (size_t)(slash - key));
	kind[slash - key] = '\0';
	return kind_parse(kind, k);
}

struct svc_obj *model_get_key(const struct svc_model *m, const char *key)
{
	enum svc_kind k;

	return key_kind(key, &k) ? NULL : smap_get(&m->t[k], key);
}

struct svc_obj *model_get(const struct svc_model *m, enum svc_kind k, const char *ns,
			  const char *name)
{
	char key[600];

	if (obj_key(key, sizeof(key), k, ns, name))
		return NULL;
	return smap_get(&m->t[k], key);
}

int model_put(struct svc_model *m, struct svc_obj *o, struct svc_obj **old)
{
	*old = smap_get(&m->t[o->kind], o->key);
	/* smap_put also swaps the borrowed key over to o's copy. */
	return smap_put(&m->t[o->kind], o->key, o);
}

struct svc_obj *model_del(struct svc_model *m, const char *key)
{
	enum svc_kind k;

	return key_kind(key, &k) ? NULL : smap_del(&m->t[k], key);
}

size_t model_count(const struct svc_model *m, enum svc_kind k)
{
	return m->t[k].n;
}

struct svc_obj *model_iter(const struct svc_model *m, enum svc_kind k, size_t *cursor)
{
	struct smap_ent *ent = smap_next(&m->t[k], cursor);

	return ent ? ent->val : NULL;
}

static int cmp_ns_name(const void *a, const void *b)
{
	const struct svc_obj *x = *(struct svc_obj *const *)a, *y = *(struct svc_obj *const *)b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

int model_list(const struct svc_model *m, enum svc_kind k, const char *ns, struct svc_obj ***out,
	       size_t *n)
{
	struct svc_obj **v = malloc((m->t[k].n + 1) * sizeof(*v)), *o;
	size_t cur = 0, cnt = 0;

	if (!v)
		return -ENOMEM;
	while ((o = model_iter(m, k, &cur)))
		if (!ns || !strcmp(o->ns, ns))
			v[cnt++] = o;
	qsort(v, cnt, sizeof(*v), cmp_ns_name);
	*out = v;
	*n = cnt;
	return 0;
}
