// SPDX-License-Identifier: MIT
/* Transactions over the desired state.  A transaction stages every object
 * (validated, allocated, serialized) before anything is written; the files
 * are then made durable together and only then published to the model and
 * its listeners.  A failure before publishing undoes the allocations and
 * leaves model and disk as they were. */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "smap.h"
#include "util.h"
#include "vutil.h"

#define MAX_FILE (64u << 20)

const char *event_name(enum svc_event ev)
{
	static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "ENDPOINTS"};
	return names[ev];
}

struct titem {
	struct svc_obj *o;   /* new object; NULL when deleting */
	struct svc_obj *old; /* object replaced or deleted; NULL when creating */
	char *text;	     /* serialized new object, as its file holds it */
	char *mem;	     /* the same without server metadata, as the model keeps it */
	char *path;	     /* file it goes to */
	const char *action;
	bool write;
};

struct txn {
	struct svc_state *st;
	struct alloc_txn at;
	struct titem *v;
	size_t n, cap;
	struct smap keys; /* obj->key -> 1 + index in v */
	bool from_file;	  /* staging a file found on disk, not an API request */
};

void state_results_free(struct state_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].ns);
		free(r->v[i].name);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static void bad_file_clear(struct svc_state *st, const char *name);

static void touched_service(void *ctx, struct svc_obj *svc);

static void notify(struct svc_state *st, enum svc_event ev, const struct svc_obj *o)
{
	for (int i = 0; i < st->nlisteners; i++)
		st->listeners[i].fn(st->listeners[i].ctx, ev, o);
}

void state_pod_status(struct svc_state *st, struct svc_obj *pod)
{
	pod->rv = ++st->rv;
	notify(st, EV_MODIFIED, pod);
	endpoints_source_changed(st, pod, touched_service, st);
}

void state_listen(struct svc_state *st, state_listener_fn fn, void *ctx)
{
	if (st->nlisteners < (int)ARRAY_SIZE(st->listeners)) {
		st->listeners[st->nlisteners].fn = fn;
		st->listeners[st->nlisteners++].ctx = ctx;
	}
}

static void txn_begin(struct txn *t, struct svc_state *st, bool from_file)
{
	memset(t, 0, sizeof(*t));
	t->st = st;
	t->from_file = from_file;
	alloc_txn_begin(&t->at, &st->alloc);
}

static void txn_free_items(struct txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		obj_free(t->v[i].o);
		free(t->v[i].text);
		free(t->v[i].mem);
		free(t->v[i].path);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
	smap_free(&t->keys);
}

static void txn_abort(struct txn *t)
{
	alloc_txn_abort(&t->at);
	txn_free_items(t);
}

static struct titem *txn_add(struct txn *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct titem *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	return &t->v[t->n++];
}

static const struct titem *txn_find(const struct txn *t, const char *key)
{
	uintptr_t i = (uintptr_t)smap_get(&t->keys, key);
	return i ? &t->v[i - 1] : NULL;
}

/* Items are found by key so that a big apply stays linear. */
static int txn_index(struct txn *t, struct titem *it)
{
	const struct svc_obj *o = it->o ? it->o : it->old;
	return smap_put(&t->keys, o->key, (void *)(uintptr_t)(it - t->v + 1));
}

/* --- allocation of ClusterIPs and nodePorts -------------------------------- */

static int set_cluster_ip(cJSON *spec, const char *ip)
{
	cJSON *ips = cJSON_CreateArray();

	if (!ips || !cJSON_AddItemToArray(ips, cJSON_CreateString(ip)) ||
	    vset_str(spec, "clusterIP", ip)) {
		cJSON_Delete(ips);
		return -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "clusterIPs");
	return cJSON_AddItemToObject(spec, "clusterIPs", ips) ? 0 : -ENOMEM;
}

/* A stored object keeps an address or port outside today's ranges (the
 * flags changed since it was allocated), as Kubernetes keeps such services:
 * it is served, and just never handed out again. */
static bool kept_out_of_range(struct txn *t, int r, struct svc_err *e)
{
	if (r != -EINVAL || !t->from_file)
		return false;
	svc_log(SVC_LOG_WARN, "store: keeping %s", e->msg);
	svc_err_clear(e);
	return true;
}

static int stage_cluster_ip(struct txn *t, cJSON *spec, struct svc_service *s,
			    const struct svc_service *os, struct svc_err *e)
{
	char ip[SVC_ADDR_STRLEN], was[SVC_ADDR_STRLEN];
	bool keep = false;
	int r;

	if (s->type == SVC_EXTERNAL_NAME) {
		if (os && os->cluster_ip.family)
			alloc_txn_release_ip(&t->at, &os->cluster_ip);
		return 0;
	}
	if (os && os->type != SVC_EXTERNAL_NAME) {
		bool same = s->headless ? os->headless
					: (!s->cluster_ip.family && !os->headless) ||
					      addr_eq(&s->cluster_ip, &os->cluster_ip);
		if (!same)
			return svc_errf(e, EINVAL,
					"spec.clusterIP: field is immutable (it is %s); delete the "
					"service to change it",
					os->headless ? "None" : addr_fmt(&os->cluster_ip, was));
		keep = true;
		s->cluster_ip = os->cluster_ip;
	}
	if (s->headless)
		return set_cluster_ip(spec, "None") ? svc_errf(e, ENOMEM, "out of memory") : 0;
	if (!keep && (r = alloc_txn_ip(&t->at, &s->cluster_ip, "spec.clusterIP", e)) &&
	    !kept_out_of_range(t, r, e))
		return r;
	return set_cluster_ip(spec, addr_fmt(&s->cluster_ip, ip))
		   ? svc_errf(e, ENOMEM, "out of memory")
		   : 0;
}

/* An old nodePort for this port: the same number asked for, else the same
 * port and protocol.  `used` marks old ports already carried over. */
static int old_node_port(const struct svc_service *os, const struct svc_port *p, bool *used)
{
	if (!os)
		return -1;
	for (uint32_t i = 0; i < os->nports; i++)
		if (!used[i] && os->ports[i].node_port &&
		    (p->node_port ? os->ports[i].node_port == p->node_port
				  : os->ports[i].port == p->port && os->ports[i].proto == p->proto))
			return (int)i;
	return -1;
}

static int stage_node_ports(struct txn *t, cJSON *spec, struct svc_service *s,
			    const struct svc_service *os, struct svc_err *e)
{
	bool want = s->type == SVC_NODE_PORT || s->type == SVC_LOAD_BALANCER;
	bool used[os && os->nports ? os->nports : 1];
	cJSON *ports = cJSON_GetObjectItemCaseSensitive(spec, "ports");
	char field[64];
	int r;

	memset(used, 0, sizeof(used));
	for (uint32_t i = 0; want && i < s->nports; i++) {
		struct svc_port *p = &s->ports[i];
		int o = old_node_port(os, p, used);
		snprintf(field, sizeof(field), "spec.ports[%u].nodePort", i);
		if (o >= 0) {
			used[o] = true;
			p->node_port = os->ports[o].node_port;
		} else if ((r = alloc_txn_port(&t->at, &p->node_port, field, e)) &&
			   !kept_out_of_range(t, r, e)) {
			return r;
		}
		if (vset_num(cJSON_GetArrayItem(ports, (int)i), "nodePort", p->node_port))
			return svc_errf(e, ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; os && i < os->nports; i++)
		if (!used[i] && os->ports[i].node_port)
			alloc_txn_release_port(&t->at, os->ports[i].node_port);
	return 0;
}

/* Each external address . protocol . port of a service, in turn. */
static bool external_key(const struct svc_service *s, uint32_t i, char *buf, size_t n,
			 const char **field_ip)
{
	uint32_t nip = s->n_external_ips + s->n_lb_ips, ip = i / (s->nports ? s->nports : 1);
	const struct svc_port *p = s->nports ? &s->ports[i % s->nports] : NULL;
	const struct svc_addr *a;
	char addr[SVC_ADDR_STRLEN];

	if (!p || ip >= nip)
		return false;
	a = ip < s->n_external_ips ? &s->external_ips[ip] : &s->lb_ips[ip - s->n_external_ips];
	*field_ip = ip < s->n_external_ips ? "spec.externalIPs" : "spec.loadBalancerIP";
	snprintf(buf, n, "%s/%s/%u", addr_fmt(a, addr),
		 p->proto == 17	   ? "UDP"
		 : p->proto == 132 ? "SCTP"
				   : "TCP",
		 p->port);
	return true;
}

/* Two services serving one external address and port would fight over it
 * in the data plane: the second is refused, naming the first. */
static int stage_external(struct txn *t, const struct svc_obj *o, struct svc_err *e)
{
	const char *field;
	char key[96];

	for (uint32_t i = 0; external_key(o->u.svc, i, key, sizeof(key), &field); i++) {
		const char *owner = smap_get(&t->st->external, key);
		for (size_t k = 0; !owner && k + 1 < t->n; k++) {
			const struct svc_obj *other = t->v[k].o;
			char ok[96];
			const char *f2;
			for (uint32_t j = 0; other && other->kind == KIND_SERVICE &&
					     external_key(other->u.svc, j, ok, sizeof(ok), &f2);
			     j++)
				if (!strcmp(ok, key))
					owner = other->key;
		}
		if (owner && strcmp(owner, o->key))
			return svc_errf(e, EEXIST, "%s: %s is already served by %s", field, key,
					owner);
	}
	return 0;
}

static void external_release(struct svc_state *st, const struct svc_obj *o)
{
	const char *field;
	char key[96];

	for (uint32_t i = 0; external_key(o->u.svc, i, key, sizeof(key), &field); i++) {
		const char *owner = smap_get(&st->external, key);
		void *val = NULL;
		if (!owner || strcmp(owner, o->key))
			continue;
		free((char *)smap_take(&st->external, key, &val));
		free(val);
	}
}

static void external_claim(struct svc_state *st, const struct svc_obj *o)
{
	const char *field;
	char key[96];

	for (uint32_t i = 0; external_key(o->u.svc, i, key, sizeof(key), &field); i++) {
		char *k, *v;
		if (smap_get(&st->external, key))
			continue;
		k = strdup(key);
		v = strdup(o->key);
		if (!k || !v || smap_put(&st->external, k, v)) {
			free(k);
			free(v);
		}
	}
}

static int stage_allocations(struct txn *t, cJSON *doc, struct svc_obj *o,
			     const struct svc_obj *old, struct svc_err *e)
{
	const struct svc_service *os = old ? old->u.svc : NULL;
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
	int r;

	if (o->kind != KIND_SERVICE)
		return 0;
	if ((r = stage_external(t, o, e)) || (r = stage_cluster_ip(t, spec, o->u.svc, os, e)))
		return r;
	return stage_node_ports(t, spec, o->u.svc, os, e);
}

static void release_allocations(struct txn *t, const struct svc_obj *old)
{
	if (old->kind != KIND_SERVICE)
		return;
	alloc_txn_release_ip(&t->at, &old->u.svc->cluster_ip);
	for (uint32_t i = 0; i < old->u.svc->nports; i++)
		alloc_txn_release_port(&t->at, old->u.svc->ports[i].node_port);
}

/* --- metadata and serialization ------------------------------------------ */

static bool same_except_metadata(const cJSON *a, const cJSON *b)
{
	const cJSON *c;
	int na = 0, nb = 0;

	cJSON_ArrayForEach(c, a)
	{
		if (!strcmp(c->string, "metadata"))
			continue;
		na++;
		if (!cJSON_Compare(c, cJSON_GetObjectItemCaseSensitive(b, c->string), true))
			return false;
	}
	cJSON_ArrayForEach(c, b) nb += strcmp(c->string, "metadata") != 0;
	return na == nb;
}

/* Metadata a file on disk already carries is kept, so that a restart gives
 * the same uid, creationTimestamp, generation and resourceVersion. */
static void meta_from_file(struct txn *t, const cJSON *meta, struct svc_obj *o)
{
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(meta, "uid");
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp");
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(meta, "generation");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");

	if (cJSON_IsString(uid) && strlen(uid->valuestring) == 36)
		memcpy(o->uid, uid->valuestring, 37);
	if (cJSON_IsString(ts))
		parse_rfc3339(ts->valuestring, &o->created);
	if (cJSON_IsNumber(gen) && gen->valuedouble >= 1)
		o->generation = (int64_t)gen->valuedouble;
	if (cJSON_IsString(rv))
		o->rv = strtoull(rv->valuestring, NULL, 10);
	if (o->rv > t->st->rv)
		t->st->rv = o->rv;
}

static int put_meta(cJSON *meta, const struct svc_obj *o)
{
	char ts[21], rv[24];

	fmt_rfc3339(o->created, ts);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)o->rv);
	if (vset_str(meta, "uid", o->uid) || vset_str(meta, "creationTimestamp", ts) ||
	    vset_num(meta, "generation", (double)o->generation) ||
	    vset_str(meta, "resourceVersion", rv))
		return -ENOMEM;
	return 0;
}

/* Labels and annotations are the user's part of metadata. */
static bool same_labels(const cJSON *a, const cJSON *b)
{
	static const char *const keys[] = {"labels", "annotations"};
	const cJSON *ma = cJSON_GetObjectItemCaseSensitive(a, "metadata");
	const cJSON *mb = cJSON_GetObjectItemCaseSensitive(b, "metadata");

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(ma, keys[i]);
		const cJSON *y = cJSON_GetObjectItemCaseSensitive(mb, keys[i]);
		bool ex = !x || (cJSON_IsObject(x) && !x->child);
		bool ey = !y || (cJSON_IsObject(y) && !y->child);
		if (!(ex && ey) && !(x && y && cJSON_Compare(x, y, true)))
			return false;
	}
	return true;
}

/* The file gets the whole object; the model keeps it without the fields
 * it holds itself (uid, timestamps, versions), which obj_json puts back,
 * so tens of thousands of objects cost less memory.  metadata goes first
 * after apiVersion and kind, where obj_json looks for it. */
static void move_item(cJSON *to, cJSON *from, cJSON *item)
{
	if (item) {
		cJSON_DetachItemViaPointer(from, item);
		cJSON_AddItemToObject(to, item->string, item);
	}
}

/* apiVersion, kind, metadata, then the rest in their order (this cJSON's
 * InsertItemInArray refuses object members, so the members go round a
 * scratch object). */
static void order_metadata(cJSON *doc, cJSON *meta)
{
	cJSON *tmp = cJSON_CreateObject();

	if (!tmp) {
		cJSON_AddItemToObject(doc, "metadata", meta);
		return;
	}
	move_item(tmp, doc, cJSON_GetObjectItemCaseSensitive(doc, "apiVersion"));
	move_item(tmp, doc, cJSON_GetObjectItemCaseSensitive(doc, "kind"));
	cJSON_AddItemToObject(tmp, "metadata", meta);
	while (doc->child)
		move_item(tmp, doc, doc->child);
	while (tmp->child)
		move_item(doc, tmp, tmp->child);
	cJSON_Delete(tmp);
}

static int serialize(cJSON *doc, const struct svc_obj *o, char **text, char **mem)
{
	static const char *const server[] = {"uid", "creationTimestamp", "generation",
					     "resourceVersion"};
	cJSON *meta = cJSON_DetachItemFromObjectCaseSensitive(doc, "metadata");

	free(*text);
	free(*mem);
	*text = *mem = NULL;
	if (!meta)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(server); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(meta, server[i]);
	order_metadata(doc, meta);
	if (!(*mem = cJSON_PrintUnformatted(doc)) || put_meta(meta, o))
		return -ENOMEM;
	*text = cJSON_PrintUnformatted(doc);
	return *text ? 0 : -ENOMEM;
}

/* Fill in uid, timestamps and versions; decide created/configured/unchanged. */
static int stage_meta(struct txn *t, cJSON *doc, struct svc_obj *o, const struct svc_obj *old,
		      struct titem *it, struct svc_err *e)
{
	cJSON *olddoc;
	bool spec_same;

	if (!old) {
		if (t->from_file)
			meta_from_file(t, cJSON_GetObjectItemCaseSensitive(doc, "metadata"), o);
		if (!o->uid[0])
			make_uuid(o->uid);
		if (!o->created)
			o->created = time(NULL);
		if (!o->generation)
			o->generation = 1;
		if (!o->rv)
			o->rv = ++t->st->rv;
		it->action = "created";
		return serialize(doc, o, &it->text, &it->mem) ? svc_errf(e, ENOMEM, "out of memory")
							      : 0;
	}
	memcpy(o->uid, old->uid, sizeof(o->uid));
	o->created = old->created;
	o->generation = old->generation;
	o->rv = old->rv;
	olddoc = cJSON_Parse(old->json);
	spec_same = olddoc && same_except_metadata(doc, olddoc);
	if (spec_same && same_labels(doc, olddoc)) {
		cJSON_Delete(olddoc);
		it->action = "unchanged";
		return 0;
	}
	cJSON_Delete(olddoc);
	it->action = "configured";
	o->generation += !spec_same;
	o->rv = ++t->st->rv;
	return serialize(doc, o, &it->text, &it->mem) ? svc_errf(e, ENOMEM, "out of memory") : 0;
}

/* --- staging ---------------------------------------------------------------- */

/* "document 2 (Service default/web)", from whatever the document says. */
static void doc_label(const struct svc_doc *d, char *buf, size_t n)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(d->json, "kind");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(d->json, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");

	if (cJSON_IsString(kind) && cJSON_IsString(name))
		snprintf(buf, n, "%s (%.40s %.63s/%.100s)", d->label, kind->valuestring,
			 cJSON_IsString(ns) && *ns->valuestring ? ns->valuestring : "default",
			 name->valuestring);
	else
		snprintf(buf, n, "%s", d->label);
}

/* The canonical file name for a new object, or a variant of it when a
 * hand-written file of that name holds something else. */
static const char *free_name(struct svc_state *st, const struct svc_obj *o, char *buf, size_t n)
{
	char base[256];

	if (store_name_for(base, sizeof(base), kind_name(o->kind), o->ns, o->name))
		return NULL;
	snprintf(buf, n, "%s", base);
	for (int i = 2; i < 1000 && (smap_get(&st->paths, buf) || smap_get(&st->bad_files, buf));
	     i++)
		snprintf(buf, n, "%.*s-%d.json", (int)strlen(base) - 5, base, i);
	return buf;
}

/* Validate one document and stage it.  Warnings and errors get the prefix. */
static int stage_doc(struct txn *t, const char *source, struct svc_doc *d, const char *path,
		     struct svc_warn *w, struct svc_err *e)
{
	struct svc_warn dw = {0};
	struct svc_obj *o, *old;
	struct titem *it;
	char label[256], name[256];
	int r;

	doc_label(d, label, sizeof(label));
	r = obj_from_doc(d->json, &o, &dw, e);
	for (size_t i = 0; i < dw.n; i++)
		svc_warnf(w, "%s: %s: %s", source, label, dw.v[i]);
	svc_warn_free(&dw);
	if (r)
		return svc_err_ctx(e, "%s: %s", source, label);
	if (txn_find(t, o->key)) {
		obj_free(o);
		return svc_errf(e, EINVAL, "%s: %s: defined twice in one apply", source, label);
	}
	old = model_get_key(t->st->model, o->key);
	if (!path)
		path = old ? old->path : free_name(t->st, o, name, sizeof(name));
	if (!(it = txn_add(t)) || !path || !(it->path = strdup(path))) {
		obj_free(o);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	it->o = o;
	it->old = old;
	it->write = true;
	if (txn_index(t, it))
		return svc_errf(e, ENOMEM, "out of memory");
	if ((r = stage_allocations(t, d->json, o, old, e)) ||
	    (r = stage_meta(t, d->json, o, old, it, e)))
		return svc_err_ctx(e, "%s: %s", source, label);
	return 0;
}

static int stage_delete(struct txn *t, struct svc_obj *old, struct svc_err *e)
{
	struct titem *it = txn_add(t);

	if (!it || !(it->path = strdup(old->path)))
		return svc_errf(e, ENOMEM, "out of memory");
	it->old = old;
	it->write = true;
	it->action = "deleted";
	if (txn_index(t, it))
		return svc_errf(e, ENOMEM, "out of memory");
	release_allocations(t, old);
	return 0;
}

/* --- commit and publish ----------------------------------------------------- */

static int txn_write(struct txn *t, struct svc_err *e)
{
	struct store_op *ops = calloc(t->n + 1, sizeof(*ops));
	size_t n = 0;
	int r;

	if (!ops)
		return svc_errf(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n; i++) {
		struct titem *it = &t->v[i];
		if (!strcmp(it->action, "unchanged") || !it->write)
			continue;
		ops[n].name = it->path;
		ops[n].data = it->o ? it->text : NULL;
		ops[n].len = it->o ? strlen(it->text) : 0;
		n++;
	}
	r = n ? store_commit(t->st->store, ops, n, e) : 0;
	/* Remember what we wrote, so our own inotify events are ignored; a
	 * file we replaced is no longer a bad one. */
	for (size_t i = 0, k = 0; !r && i < t->n; i++) {
		struct titem *it = &t->v[i];
		if (!strcmp(it->action, "unchanged") || !it->write)
			continue;
		if (it->o)
			it->o->stamp = ops[k].stamp;
		bad_file_clear(t->st, it->path);
		k++;
	}
	free(ops);
	return r;
}

/* Runtime status belongs to the pod, not to its manifest: carry it over. */
static void carry_runtime(struct svc_obj *o, struct svc_obj *old)
{
	if (o->kind != KIND_POD || old->kind != KIND_POD)
		return;
	struct svc_pod *p = o->u.pod, *op = old->u.pod;
	p->phase = op->phase;
	p->ready = op->ready;
	p->ip = op->ip;
	p->reason = op->reason;
	p->message = op->message;
	p->start_time = op->start_time;
	p->container_statuses = op->container_statuses;
	op->reason = op->message = NULL;
	op->container_statuses = NULL;
}

static void touched_service(void *ctx, struct svc_obj *svc)
{
	notify(ctx, EV_ENDPOINTS, svc);
}

static void publish_one(struct txn *t, struct titem *it)
{
	struct svc_state *st = t->st;
	struct svc_obj *o = it->o, *old = it->old, *prev;

	/* The path may already belong to the object replacing this one. */
	if (old && smap_get(&st->paths, old->path) == old)
		smap_del(&st->paths, old->path);
	if (old && old->kind == KIND_SERVICE)
		external_release(st, old);
	if (!o) {
		model_del(st->model, old->key);
		notify(st, EV_DELETED, old);
		if (old->kind != KIND_SERVICE && old->kind != KIND_DEPLOYMENT)
			endpoints_source_changed(st, old, touched_service, st);
		obj_free(old);
		return;
	}
	o->json = it->mem;
	o->path = it->path;
	it->mem = it->path = NULL;
	it->o = NULL;
	if (old)
		carry_runtime(o, old);
	/* model_put only fails when the table cannot grow; the object stays
	 * on disk and is picked up again by the next rescan. */
	if (model_put(st->model, o, &prev)) {
		obj_free(o);
		return;
	}
	smap_put(&st->paths, o->path, o);
	if (o->kind == KIND_SERVICE) {
		external_claim(st, o);
		endpoints_service_changed(st, o);
	}
	notify(st, old ? EV_MODIFIED : EV_ADDED, o);
	if (o->kind != KIND_SERVICE && o->kind != KIND_DEPLOYMENT) {
		if (old)
			endpoints_source_changed(st, old, touched_service, st);
		endpoints_source_changed(st, o, touched_service, st);
	}
	obj_free(old);
}

static int txn_commit(struct txn *t, struct state_results *res, struct svc_err *e)
{
	bool changed = false;
	int r;

	if ((r = txn_write(t, e))) {
		txn_abort(t);
		return r;
	}
	alloc_txn_commit(&t->at);
	if (res && !(res->v = calloc(t->n + 1, sizeof(*res->v))))
		res = NULL; /* the change is made; only the report is lost */
	for (size_t i = 0; i < t->n; i++) {
		struct titem *it = &t->v[i];
		struct svc_obj *o = it->o ? it->o : it->old;
		if (res) {
			struct state_result *sr = &res->v[res->n++];
			sr->kind = o->kind;
			sr->ns = strdup(o->ns);
			sr->name = strdup(o->name);
			sr->action = it->action;
		}
		if (!strcmp(it->action, "unchanged"))
			continue;
		changed = true;
		publish_one(t, it);
	}
	if (changed)
		t->st->generation++;
	if (res)
		res->generation = t->st->generation;
	txn_free_items(t);
	return 0;
}

/* --- the public operations -------------------------------------------------- */

int state_apply(struct svc_state *st, const char *source, const char *text, size_t len,
		struct state_results *res, struct svc_warn *w, struct svc_err *e)
{
	struct svc_docs docs = {0};
	struct txn t;
	int r;

	double t0 = now_mono(), t1, t2;

	memset(res, 0, sizeof(*res));
	if ((r = manifest_parse(source, text, len, &docs, e)))
		return r;
	t1 = now_mono();
	txn_begin(&t, st, false);
	for (size_t i = 0; i < docs.n; i++) {
		if ((r = stage_doc(&t, source, &docs.v[i], NULL, w, e)))
			break;
		/* Staged objects keep their text; the tree is no longer needed. */
		cJSON_Delete(docs.v[i].json);
		docs.v[i].json = NULL;
	}
	if (!r && !docs.n)
		r = svc_errf(e, EINVAL, "%s: no objects found", source);
	t2 = now_mono();
	if (r)
		txn_abort(&t);
	else
		r = txn_commit(&t, res, e);
	svc_log(SVC_LOG_DEBUG,
		"apply %s: %zu documents, parse %.1f ms, stage %.1f ms, commit %.1f ms", source,
		docs.n, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (now_mono() - t2) * 1e3);
	manifest_docs_free(&docs);
	return r;
}

static int not_found(struct svc_err *e, enum svc_kind k, const char *name)
{
	char res[64];
	const char *dot = strchr(kind_resource(k), '.');
	size_t n = dot ? (size_t)(dot - kind_resource(k)) : strlen(kind_resource(k));

	snprintf(res, sizeof(res), "%.*s", (int)n, kind_resource(k));
	return svc_errf(e, ENOENT, "%s \"%s\" not found", res, name);
}

int state_delete(struct svc_state *st, enum svc_kind k, const char *ns, const char *name,
		 struct state_results *res, struct svc_err *e)
{
	struct svc_obj *old = model_get(st->model, k, ns, name);
	struct txn t;
	int r;

	memset(res, 0, sizeof(*res));
	if (!old)
		return not_found(e, k, name);
	txn_begin(&t, st, false);
	if ((r = stage_delete(&t, old, e))) {
		txn_abort(&t);
		return r;
	}
	return txn_commit(&t, res, e);
}

int state_delete_manifest(struct svc_state *st, const char *source, const char *text, size_t len,
			  bool ignore_missing, struct state_results *res, struct svc_err *e)
{
	struct svc_docs docs = {0};
	struct svc_warn w = {0};
	struct txn t;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = manifest_parse(source, text, len, &docs, e)))
		return r;
	txn_begin(&t, st, false);
	for (size_t i = 0; i < docs.n && !r; i++) {
		struct svc_obj *o, *old;
		char label[256];
		doc_label(&docs.v[i], label, sizeof(label));
		if ((r = obj_from_doc(docs.v[i].json, &o, &w, e))) {
			svc_err_ctx(e, "%s: %s", source, label);
			break;
		}
		old = model_get_key(st->model, o->key);
		if (!old && !ignore_missing)
			r = not_found(e, o->kind, o->name);
		else if (old && !txn_find(&t, old->key))
			r = stage_delete(&t, old, e);
		obj_free(o);
	}
	svc_warn_free(&w);
	manifest_docs_free(&docs);
	if (r) {
		txn_abort(&t);
		return r;
	}
	return txn_commit(&t, res, e);
}

/* --- the state directory ---------------------------------------------------- */

int state_open(struct svc_state *st, const struct state_config *cfg, struct svc_err *e)
{
	struct svc_addr reserved = {0};
	int r;

	memset(st, 0, sizeof(*st));
	if (cfg->reserved_ip && addr_parse(cfg->reserved_ip, &reserved))
		return svc_errf(e, EINVAL, "reserved address \"%s\" is not an IP address",
				cfg->reserved_ip);
	if ((r = alloc_init(&st->alloc, cfg->service_cidr, cfg->node_port_lo, cfg->node_port_hi,
			    &reserved, e)))
		return r;
	if (!(st->model = model_new())) {
		alloc_free(&st->alloc);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	if ((r = store_open(cfg->state_dir, &st->store, e))) {
		state_close(st);
		return r;
	}
	return 0;
}

static void bad_file_clear(struct svc_state *st, const char *name)
{
	void *val = NULL;

	free((char *)smap_take(&st->bad_files, name, &val));
	free(val);
}

static void bad_file(struct svc_state *st, const char *name, const struct svc_err *e)
{
	char *key, *val;

	svc_log(SVC_LOG_ERROR, "store: skipping %s/%s: %s", store_objects_dir(st->store), name,
		e->msg);
	bad_file_clear(st, name);
	key = strdup(name);
	val = strdup(e->msg);
	if (!key || !val || smap_put(&st->bad_files, key, val)) {
		free(key);
		free(val);
	}
}

void state_close(struct svc_state *st)
{
	smap_free_owned(&st->bad_files);
	smap_free_owned(&st->external);
	smap_free(&st->paths);
	model_free(st->model);
	store_close(st->store);
	alloc_free(&st->alloc);
	memset(st, 0, sizeof(*st));
}

/* A file read from disk, parsed but not yet staged. */
struct loaded {
	char *name, *text;
	size_t len;
	struct file_stamp stamp;
	struct svc_docs docs;
};

static void loaded_free(struct loaded *l)
{
	free(l->name);
	free(l->text);
	manifest_docs_free(&l->docs);
}

static int read_one(struct svc_state *st, const char *name, struct loaded *l, struct svc_err *e)
{
	int r;

	memset(l, 0, sizeof(*l));
	if (!(l->name = strdup(name)))
		return svc_errf(e, ENOMEM, "out of memory");
	if ((r = store_read(st->store, name, MAX_FILE, &l->text, &l->len, &l->stamp, e)))
		return r;
	if ((r = manifest_parse(name, l->text, l->len, &l->docs, e)))
		return r;
	if (l->docs.n != 1)
		return svc_errf(e, EINVAL,
				"holds %zu objects; the state directory takes one object per file",
				l->docs.n);
	return 0;
}

/* Stage and commit one file's object, replacing whatever the file held before. */
static int load_one(struct svc_state *st, struct loaded *l, struct svc_err *e)
{
	struct svc_obj *prev = smap_get(&st->paths, l->name), *other;
	struct svc_warn w = {0};
	struct titem *it;
	struct txn t;
	int r;

	txn_begin(&t, st, true);
	r = stage_doc(&t, l->name, &l->docs.v[0], l->name, &w, e);
	for (size_t i = 0; i < w.n; i++)
		svc_log(SVC_LOG_WARN, "store: %s", w.v[i]);
	svc_warn_free(&w);
	if (r)
		goto fail;
	it = &t.v[0];
	other = model_get_key(st->model, it->o->key);
	if (other && other != prev) {
		r = svc_errf(e, EEXIST, "%s %s/%s is already defined by %s", kind_name(it->o->kind),
			     it->o->ns, it->o->name, other->path);
		goto fail;
	}
	/* The file now names another object: the one it held goes away, but
	 * the file itself stays, holding the new one. */
	if (prev && prev != other) {
		if ((r = stage_delete(&t, prev, e)))
			goto fail;
		t.v[t.n - 1].write = false;
	}
	it = &t.v[0];
	it->write = it->text && strcmp(it->text, l->text) != 0;
	it->o->stamp = l->stamp;
	if (prev && !it->text)
		prev->stamp = l->stamp; /* unchanged: later events for this file are ours too */
	if ((r = txn_commit(&t, NULL, e)))
		return r;
	bad_file_clear(st, l->name);
	return 0;
fail:
	txn_abort(&t);
	return r;
}

/* Files with allocations of their own load first, so that files without one
 * cannot take an address that another file already holds. */
static bool has_explicit_allocation(const struct loaded *l)
{
	const cJSON *doc = l->docs.n ? l->docs.v[0].json : NULL;
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
	const cJSON *ip = cJSON_GetObjectItemCaseSensitive(spec, "clusterIP"), *p;

	if (cJSON_IsString(ip) && *ip->valuestring)
		return true;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
	{
		const cJSON *np = cJSON_GetObjectItemCaseSensitive(p, "nodePort");
		if (cJSON_IsNumber(np) && np->valuedouble > 0)
			return true;
	}
	return false;
}

/* Each file is read, loaded and freed before the next, so that start-up
 * needs memory for one file at a time, not for the whole directory. */
static void load_name(struct svc_state *st, const char *name, int pass, bool *explicit)
{
	struct svc_err fe = {0};
	struct loaded l;

	if (read_one(st, name, &l, &fe)) {
		if (pass == 0)
			bad_file(st, name, &fe);
	} else if (pass == 0) {
		*explicit = has_explicit_allocation(&l);
	} else if (load_one(st, &l, &fe)) {
		bad_file(st, name, &fe);
	}
	loaded_free(&l);
}

int state_load(struct svc_state *st, struct svc_err *e)
{
	bool *explicit;
	char **names;
	size_t n;
	int r;

	if ((r = store_list(st->store, &names, &n, e)))
		return r;
	if (!(explicit = calloc(n + 1, sizeof(*explicit)))) {
		store_names_free(names, n);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		load_name(st, names[i], 0, &explicit[i]);
	for (int pass = 1; pass <= 2; pass++)
		for (size_t i = 0; i < n; i++)
			if (explicit[i] == (pass == 1) && !smap_get(&st->bad_files, names[i]))
				load_name(st, names[i], pass, &explicit[i]);
	free(explicit);
	store_names_free(names, n);
	return 0;
}

static void file_removed(struct svc_state *st, const char *name)
{
	struct svc_obj *prev = smap_get(&st->paths, name);
	struct svc_err e = {0};
	struct txn t;

	bad_file_clear(st, name);
	if (!prev)
		return;
	svc_log(SVC_LOG_INFO, "store: %s removed: deleting %s %s/%s", name, kind_name(prev->kind),
		prev->ns, prev->name);
	txn_begin(&t, st, true);
	if (stage_delete(&t, prev, &e) || txn_commit(&t, NULL, &e)) {
		txn_abort(&t);
		svc_log(SVC_LOG_ERROR, "store: deleting %s/%s: %s", prev->ns, prev->name, e.msg);
	}
}

static void file_changed(struct svc_state *st, const char *name)
{
	struct svc_obj *prev = smap_get(&st->paths, name);
	struct svc_err e = {0};
	struct loaded l = {0};
	struct file_stamp stamp;
	int r = store_stat(st->store, name, &stamp);

	/* Our own write (or nothing new): the file is as we left it. */
	if (!r && prev && file_stamp_eq(&prev->stamp, &stamp))
		return;
	if (r != -ENOENT)
		r = read_one(st, name, &l, &e);
	if (r == -ENOENT) {
		if (l.name)
			loaded_free(&l);
		file_removed(st, name);
		return;
	}
	if (r || load_one(st, &l, &e))
		bad_file(st, name, &e);
	loaded_free(&l);
}

static void rescan(struct svc_state *st)
{
	struct smap seen = {0};
	struct svc_err e = {0};
	struct smap_ent *ent;
	char **names, **gone;
	size_t n, ngone = 0, cur = 0;

	if (store_list(st->store, &names, &n, &e)) {
		svc_log(SVC_LOG_ERROR, "store: rescan: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		smap_put(&seen, names[i], names[i]);
		file_changed(st, names[i]);
	}
	gone = calloc(st->paths.n + 1, sizeof(*gone));
	while (gone && (ent = smap_next(&st->paths, &cur)))
		if (!smap_get(&seen, ent->key))
			gone[ngone++] = strdup(ent->key);
	for (size_t i = 0; i < ngone; i++) {
		if (gone[i])
			file_removed(st, gone[i]);
		free(gone[i]);
	}
	free(gone);
	smap_free(&seen);
	store_names_free(names, n);
}

void state_file_event(struct svc_state *st, const char *name)
{
	if (!name)
		rescan(st);
	else
		file_changed(st, name);
}
