// SPDX-License-Identifier: MIT
/* The control socket: one JSON request per line, one JSON response per line
 * (docs/protocol.md).  Each connection is reference-counted: a handler may
 * close its connection, which is freed only when the last reference drops. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "image.h"
#include "server.h"
#include "util.h"

#define MAX_REQUEST	  (64u << 20)
#define MAX_BACKLOG	  (256u << 20) /* a reader this far behind is dropped */
#define MAX_WATCH_BACKLOG (16u << 20)  /* a watcher that far behind re-lists */
#define MAX_CONNS	  1024
#define ACCEPT_RETRY	  0.1 /* seconds, after running out of descriptors */

struct conn {
	struct svc_api *api;
	struct conn *prev, *next;
	int fd, refs;
	bool closing, processing;
	bool eof; /* the client shut down its side: answer, then close */
	ev_io rio, wio;
	struct sbuf in, out;
	/* apply --wait: requests after it wait for its answer */
	struct reconcile_waiter *waiter;
	bool busy; /* an image import runs for this connection */
	cJSON *pending;
	/* watch */
	bool watching;
	int watch_kind; /* -1: every kind */
	char *watch_ns;
};

struct svc_api {
	struct svcd *d;
	int fd;
	char *path;
	ev_io io;
	ev_timer retry; /* accept paused: out of descriptors or connections */
	struct conn *conns;
	unsigned nconns;
};

static void conn_process(struct conn *c);

static void conn_ref(struct conn *c)
{
	c->refs++;
}

static void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	cJSON_Delete(c->pending);
	free(c->watch_ns);
	free(c);
}

static void conn_close(struct conn *c)
{
	struct svc_api *a = c->api;

	if (c->closing)
		return;
	c->closing = true;
	ev_io_stop(a->d->loop, &c->rio);
	ev_io_stop(a->d->loop, &c->wio);
	if (c->waiter)
		reconciler_cancel(a->d->rec, c->waiter);
	c->waiter = NULL;
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (a->nconns-- == MAX_CONNS && !ev_is_active(&a->retry))
		ev_io_start(a->d->loop, &a->io);
	conn_unref(c);
}

/* After the client's EOF: close once every answer is out. */
static void conn_maybe_finish(struct conn *c)
{
	if (c->eof && !c->closing && !c->waiter && !c->busy && !c->out.len)
		conn_close(c);
}

static void conn_flush(struct conn *c)
{
	while (c->out.len && !c->closing) {
		ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		sbuf_consume(&c->out, (size_t)n);
	}
	if (c->closing)
		return;
	if (c->out.len)
		ev_io_start(c->api->d->loop, &c->wio);
	else
		ev_io_stop(c->api->d->loop, &c->wio);
	if (!c->out.len && !c->processing)
		conn_maybe_finish(c);
}

static void conn_send_text(struct conn *c, const char *text, size_t len)
{
	if (c->closing)
		return;
	if (c->out.len + len > (c->watching ? MAX_WATCH_BACKLOG : MAX_BACKLOG) ||
	    sbuf_add(&c->out, text, len) || sbuf_add(&c->out, "\n", 1)) {
		svc_log(SVC_LOG_WARN, "api: client too far behind, disconnecting it");
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_send(struct conn *c, cJSON *resp)
{
	char *text = cJSON_PrintUnformatted(resp);

	if (text)
		conn_send_text(c, text, strlen(text));
	else
		conn_close(c);
	free(text);
	cJSON_Delete(resp);
}

static cJSON *resp_ok(void)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	return r;
}

static const char *reason_for(int err)
{
	switch (-err) {
	case ENOENT:
		return "NotFound";
	case EEXIST:
		return "Conflict";
	case EINVAL:
	case ENOSPC:
	case EFBIG:
		return "Invalid";
	case EAGAIN:
		return "ServiceUnavailable";
	default:
		return "Internal";
	}
}

static cJSON *resp_err(int err, const char *msg)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON_AddStringToObject(r, "reason", reason_for(err));
	cJSON_AddStringToObject(r, "error", msg);
	return r;
}

static cJSON *bad_request(const char *msg)
{
	cJSON *r = resp_err(-EINVAL, msg);
	cJSON_ReplaceItemInObject(r, "reason", cJSON_CreateString("BadRequest"));
	return r;
}

static void add_warnings(cJSON *resp, const struct svc_warn *w)
{
	cJSON *arr;

	if (!w->n)
		return;
	arr = cJSON_AddArrayToObject(resp, "warnings");
	for (size_t i = 0; i < w->n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(w->v[i]));
}

static void add_results(cJSON *resp, const struct state_results *res)
{
	cJSON *arr = cJSON_AddArrayToObject(resp, "results");

	for (size_t i = 0; i < res->n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", kind_name(res->v[i].kind));
		cJSON_AddStringToObject(o, "namespace", res->v[i].ns ? res->v[i].ns : "");
		cJSON_AddStringToObject(o, "name", res->v[i].name ? res->v[i].name : "");
		cJSON_AddStringToObject(o, "action", res->v[i].action);
		cJSON_AddItemToArray(arr, o);
	}
	cJSON_AddNumberToObject(resp, "generation", (double)res->generation);
}

/* Request fields, checked. */
static const char *req_str(const cJSON *req, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(req, key);
	return cJSON_IsString(j) ? j->valuestring : NULL;
}

static int req_kind(const cJSON *req, bool required, int *kind, cJSON **err)
{
	const char *k = req_str(req, "kind");
	enum svc_kind kk;

	*kind = -1;
	if (!k) {
		if (required)
			*err = bad_request("\"kind\" is required");
		return required ? -1 : 0;
	}
	if (kind_parse(k, &kk)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the server doesn't have a resource type \"%.64s\"", k);
		*err = bad_request(msg);
		return -1;
	}
	*kind = (int)kk;
	return 0;
}

/* --- apply and delete -------------------------------------------------------- */

static void on_waited(void *ctx, int err, const char *msg)
{
	struct conn *c = ctx;
	cJSON *resp = c->pending;

	c->waiter = NULL; /* also when called before reconciler_wait returns */
	c->pending = NULL;
	if (err) {
		char buf[SVC_ERR_MAX + 64];
		snprintf(buf, sizeof(buf), "stored, but the data plane did not program it: %s",
			 msg);
		cJSON_ReplaceItemInObject(resp, "ok", cJSON_CreateFalse());
		cJSON_AddStringToObject(resp, "reason", "SyncFailed");
		cJSON_AddStringToObject(resp, "error", buf);
	}
	conn_ref(c); /* sending may close, and free, the connection */
	conn_send(c, resp);
	if (!c->closing)
		conn_process(c); /* requests queued behind the wait */
	conn_unref(c);
}

static cJSON *op_apply(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *content = req_str(req, "content"), *source = req_str(req, "source");
	struct state_results res;
	struct svc_warn w = {0};
	struct svc_err e = {0};
	cJSON *resp;
	int r;

	if (!content)
		return bad_request("\"content\" is required");
	r = state_apply(&d->st, source ? source : "<request>", content, strlen(content), &res, &w,
			&e);
	resp = r ? resp_err(r, e.msg) : resp_ok();
	if (!r)
		add_results(resp, &res);
	add_warnings(resp, &w);
	svc_warn_free(&w);
	if (!r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "wait"))) {
		/* The answer waits for the data plane; so do later requests. */
		c->pending = resp;
		c->waiter = reconciler_wait(d->rec, res.generation, on_waited, c);
		resp = NULL;
	}
	state_results_free(&res);
	return resp;
}

static cJSON *op_delete(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *content = req_str(req, "content"), *source = req_str(req, "source");
	const char *ns = req_str(req, "namespace"), *name = req_str(req, "name");
	bool ignore = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "ignoreNotFound"));
	struct state_results res;
	struct svc_err e = {0};
	cJSON *resp = NULL;
	int kind, r;

	if (content) {
		r = state_delete_manifest(&d->st, source ? source : "<request>", content,
					  strlen(content), ignore, &res, &e);
	} else {
		if (req_kind(req, true, &kind, &resp))
			return resp;
		if (!name)
			return bad_request("\"name\" or \"content\" is required");
		r = state_delete(&d->st, (enum svc_kind)kind, ns ? ns : "default", name, &res, &e);
		if (r == -ENOENT && ignore) {
			r = 0;
			memset(&res, 0, sizeof(res));
		}
	}
	resp = r ? resp_err(r, e.msg) : resp_ok();
	if (!r)
		add_results(resp, &res);
	state_results_free(&res);
	return resp;
}

/* --- get, list, status ----------------------------------------------------- */

/* Appends an object's JSON to `b`: its stored text, plus status where the
 * model keeps one. */
static int add_obj_text(struct sbuf *b, const struct svc_obj *o)
{
	cJSON *j;
	char *text;
	int r;

	if (o->kind != KIND_POD)
		return obj_json_text(o, b);
	if (!(j = obj_to_json(o)) || !(text = cJSON_PrintUnformatted(j))) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	r = sbuf_adds(b, text);
	free(text);
	cJSON_Delete(j);
	return r;
}

static int add_synth_text(struct sbuf *b, const struct svc_obj *svc)
{
	cJSON *j = endpoints_synthesize(svc);
	char *text = j ? cJSON_PrintUnformatted(j) : NULL;
	int r = text ? sbuf_adds(b, text) : -ENOMEM;

	free(text);
	cJSON_Delete(j);
	return r;
}

static int cmp_obj(const struct svc_obj *x, const struct svc_obj *y)
{
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

/* Endpoints: the stored objects merged, in order, with those the controller
 * keeps for services with a selector. */
static int add_endpoints_items(struct svcd *d, const char *ns, struct sbuf *b)
{
	struct svc_obj **ev, **sv;
	size_t en, sn, i = 0, k = 0;
	int r = 0, first = 1;

	if (model_list(d->st.model, KIND_ENDPOINTS, ns, &ev, &en))
		return -ENOMEM;
	if (model_list(d->st.model, KIND_SERVICE, ns, &sv, &sn)) {
		free(ev);
		return -ENOMEM;
	}
	while (!r && (i < en || k < sn)) {
		if (k < sn && !sv[k]->u.svc->has_selector) {
			k++;
			continue;
		}
		if (!first)
			r |= sbuf_add(b, ",", 1);
		first = 0;
		if (k == sn || (i < en && cmp_obj(ev[i], sv[k]) <= 0))
			r |= obj_json_text(ev[i++], b);
		else
			r |= add_synth_text(b, sv[k++]);
	}
	free(ev);
	free(sv);
	return r;
}

static void send_items(struct conn *c, enum svc_kind k, const char *ns)
{
	struct svc_obj **v = NULL;
	struct sbuf b = {0};
	size_t n = 0;
	int r = 0;

	if (k != KIND_ENDPOINTS && model_list(c->api->d->st.model, k, ns, &v, &n)) {
		conn_send(c, resp_err(-ENOMEM, "out of memory"));
		return;
	}
	r |= sbuf_adds(&b, "{\"ok\":true,\"items\":[");
	if (k == KIND_ENDPOINTS)
		r |= add_endpoints_items(c->api->d, ns, &b);
	for (size_t i = 0; i < n && !r; i++) {
		if (i)
			r |= sbuf_add(&b, ",", 1);
		r |= add_obj_text(&b, v[i]);
	}
	r |= sbuf_adds(&b, "]}");
	free(v);
	if (r)
		conn_send(c, resp_err(-ENOMEM, "out of memory"));
	else
		conn_send_text(c, b.p, b.len);
	sbuf_free(&b);
}

static cJSON *op_get(struct conn *c, const cJSON *req)
{
	const char *ns = req_str(req, "namespace"), *name = req_str(req, "name");
	struct svc_obj *o;
	cJSON *resp = NULL, *j;
	char msg[400];
	int kind;

	if (req_kind(req, true, &kind, &resp))
		return resp;
	if (!name) {
		send_items(c, (enum svc_kind)kind, ns);
		return NULL;
	}
	o = model_get(c->api->d->st.model, (enum svc_kind)kind, ns ? ns : "default", name);
	if (!o && kind == KIND_ENDPOINTS) {
		struct svc_obj *svc =
		    model_get(c->api->d->st.model, KIND_SERVICE, ns ? ns : "default", name);
		if (svc && svc->u.svc->has_selector) {
			resp = resp_ok();
			cJSON_AddItemToObject(resp, "object", endpoints_synthesize(svc));
			return resp;
		}
	}
	if (!o) {
		const char *res = kind_resource((enum svc_kind)kind);
		snprintf(msg, sizeof(msg), "%.*s \"%s\" not found", (int)strcspn(res, "."), res,
			 name);
		return resp_err(-ENOENT, msg);
	}
	if (!(j = obj_to_json(o)))
		return resp_err(-ENOMEM, "out of memory");
	resp = resp_ok();
	cJSON_AddItemToObject(resp, "object", j);
	return resp;
}

static const char *proto_name(uint8_t proto)
{
	return proto == 17 ? "UDP" : proto == 132 ? "SCTP" : "TCP";
}

/* One row of the service table.  Every string here passed validation as a
 * DNS name, port name or address, so none needs JSON escaping; the rows
 * are written directly because a 10,000-service list must stay cheap. */
struct lb_row {
	struct sbuf *b;
	int r, n;
	bool in_eps; /* the walk gives every listener, then every endpoint */
};

/* From the listen array to the lb object's endpoint array. */
static void lb_row_to_eps(struct lb_row *x)
{
	if (x->in_eps)
		return;
	x->r |= sbuf_adds(x->b, "],\"lb\":{\"endpoints\":[");
	x->in_eps = true;
	x->n = 0;
}

static void lb_row_listen(void *ctx, const char *where)
{
	struct lb_row *x = ctx;

	x->r |= sbuf_addf(x->b, "%s\"%s\"", x->n++ ? "," : "", where);
}

static int lb_counters_json(struct sbuf *b, const struct lb_counters *c)
{
	return sbuf_addf(b,
			 "\"active\":%llu,\"total\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
			 "\"connect_failures\":%llu",
			 (unsigned long long)c->active, (unsigned long long)c->total,
			 (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
			 (unsigned long long)c->connect_failures);
}

static void lb_row_ep(void *ctx, const char *ep, const struct lb_counters *c)
{
	struct lb_row *x = ctx;

	lb_row_to_eps(x);
	x->r |= sbuf_addf(x->b, "%s{\"endpoint\":\"%s\",", x->n++ ? "," : "", ep);
	x->r |= lb_counters_json(x->b, c) | sbuf_adds(x->b, "}");
}

/* Where the userspace balancer listens for o, and its counters. */
static int lb_row(struct sbuf *b, const struct lb *lb, const struct svc_obj *o)
{
	struct lb_row x = {.b = b};
	struct lb_counters tot;
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
	if (!lb || !lb_has_service(lb, key))
		return 0;
	x.r |= sbuf_adds(b, ",\"listen\":[");
	lb_service_walk(lb, key, lb_row_listen, lb_row_ep, &tot, &x);
	lb_row_to_eps(&x); /* a service with no endpoint */
	x.r |= sbuf_adds(b, "],") | lb_counters_json(b, &tot);
	return x.r | sbuf_adds(b, "}");
}

static int service_row(struct sbuf *b, const struct svc_obj *o, const struct lb *lb)
{
	const struct svc_service *s = o->u.svc;
	char ip[SVC_ADDR_STRLEN];
	uint32_t shown = 0;
	int r = 0;

	r |= sbuf_addf(b,
		       "{\"namespace\":\"%s\",\"name\":\"%s\",\"type\":\"%s\",\"clusterIP\":\"%s\"",
		       o->ns, o->name, svc_type_name(s->type),
		       s->headless	      ? "None"
		       : s->cluster_ip.family ? addr_fmt(&s->cluster_ip, ip)
					      : "");
	if (s->external_name)
		r |= sbuf_addf(b, ",\"externalName\":\"%s\"", s->external_name);
	r |= sbuf_adds(b, ",\"externalIPs\":[");
	for (uint32_t i = 0; i < s->n_external_ips; i++)
		r |= sbuf_addf(b, "%s\"%s\"", i ? "," : "", addr_fmt(&s->external_ips[i], ip));
	r |= sbuf_adds(b, "],\"ports\":[");
	for (uint32_t i = 0; i < s->nports; i++) {
		const struct svc_port *p = &s->ports[i];
		char tp[16];
		snprintf(tp, sizeof(tp), "%u", p->target_port);
		r |= sbuf_addf(b,
			       "%s{\"port\":%u,\"protocol\":\"%s\",\"nodePort\":%u,\"targetPort\":"
			       "\"%s\",\"name\":\"%s\"}",
			       i ? "," : "", p->port, proto_name(p->proto), p->node_port,
			       p->target_name ? p->target_name : tp, p->name);
	}
	r |= sbuf_adds(b, "],\"endpoints\":[");
	for (uint32_t p = 0; s->targets && p < s->nports; p++)
		for (uint32_t i = 0; i < s->targets[p].n; i++) {
			const struct svc_target *t = &s->targets[p].v[i];
			bool v6 = t->addr.family == AF_INET6;
			if (!t->ready || shown++ >= 3)
				continue;
			r |= sbuf_addf(b, "%s\"%s%s%s:%u\"", shown > 1 ? "," : "", v6 ? "[" : "",
				       addr_fmt(&t->addr, ip), v6 ? "]" : "", t->port);
		}
	r |= sbuf_addf(b, "],\"endpointCount\":%u", shown);
	r |= lb_row(b, lb, o);
	return r | sbuf_adds(b, "}");
}

/* The cluster DNS service, as Kubernetes lists it.  Shown, never stored:
 * in the model the data plane would program it with no endpoints, which
 * refuses connections to the address svcd itself answers on. */
#define DNS_SVC_NS   "kube-system"
#define DNS_SVC_NAME "kube-dns"

static bool dns_row_wanted(const struct svcd *d, const char *ns)
{
	return d->dns && (!ns || !strcmp(ns, DNS_SVC_NS)) &&
	       !model_get(d->st.model, KIND_SERVICE, DNS_SVC_NS, DNS_SVC_NAME);
}

static int dns_row(struct sbuf *b, const struct svcd *d)
{
	const char *ip = d->cfg.dns_service_ip;

	return sbuf_addf(b,
			 "{\"namespace\":\"" DNS_SVC_NS "\",\"name\":\"" DNS_SVC_NAME
			 "\",\"type\":\"ClusterIP\",\"clusterIP\":\"%s\",\"externalIPs\":[],"
			 "\"ports\":[{\"port\":53,\"protocol\":\"UDP\",\"nodePort\":0,"
			 "\"targetPort\":\"53\",\"name\":\"dns\"},{\"port\":53,\"protocol\":"
			 "\"TCP\",\"nodePort\":0,\"targetPort\":\"53\",\"name\":\"dns-tcp\"}],"
			 "\"endpoints\":[\"%s:53\"],\"endpointCount\":1}",
			 ip, ip);
}

/* Does the DNS row sort before o (namespace, then name, as model_list)? */
static bool dns_row_before(const struct svc_obj *o)
{
	int c = strcmp(DNS_SVC_NS, o->ns);
	return c < 0 || (!c && strcmp(DNS_SVC_NAME, o->name) < 0);
}

static cJSON *op_list(struct conn *c, const cJSON *req)
{
	const char *ns = req_str(req, "namespace");
	struct sbuf b = {0};
	struct svc_obj **v;
	size_t n;
	int r = 0;

	if (model_list(c->api->d->st.model, KIND_SERVICE, ns, &v, &n))
		return resp_err(-ENOMEM, "out of memory");
	bool dns = dns_row_wanted(c->api->d, ns);
	size_t rows = 0;
	r |= sbuf_adds(&b, "{\"ok\":true,\"services\":[");
	for (size_t i = 0; i <= n && !r; i++) {
		if (dns && (i == n || dns_row_before(v[i]))) {
			r |= (rows++ ? sbuf_add(&b, ",", 1) : 0) | dns_row(&b, c->api->d);
			dns = false;
		}
		if (i < n)
			r |= (rows++ ? sbuf_add(&b, ",", 1) : 0) |
			     service_row(&b, v[i], c->api->d->lb);
	}
	r |= sbuf_adds(&b, "]}");
	free(v);
	if (r) {
		sbuf_free(&b);
		return resp_err(-ENOMEM, "out of memory");
	}
	conn_send_text(c, b.p, b.len);
	sbuf_free(&b);
	return NULL;
}

static void add_dns_status(cJSON *resp, const struct svcd *d)
{
	cJSON *j = cJSON_AddObjectToObject(resp, "dns"), *t, *rc;
	struct dns_server_stats ds;

	dns_server_stats(d->dns, &ds);
	cJSON_AddStringToObject(j, "zone", d->cfg.cluster_domain);
	cJSON_AddStringToObject(j, "serviceIP", d->cfg.dns_service_ip);
	cJSON_AddNumberToObject(j, "serial", ds.serial);
	cJSON_AddNumberToObject(j, "queries", (double)ds.queries);
	t = cJSON_AddObjectToObject(j, "queriesByType");
	for (size_t i = 0; i < DNS_STAT_TYPES; i++)
		cJSON_AddNumberToObject(t, dns_stat_type_name(i), (double)ds.by_type[i]);
	rc = cJSON_AddObjectToObject(j, "responsesByRcode");
	for (size_t i = 0; i < DNS_STAT_RCODES; i++)
		cJSON_AddNumberToObject(rc, dns_stat_rcode_name(i), (double)ds.by_rcode[i]);
	cJSON_AddNumberToObject(j, "dropped", (double)ds.dropped);
	cJSON_AddNumberToObject(j, "forwarded", (double)ds.forwarded);
	cJSON_AddNumberToObject(j, "searchPathCompleted", (double)ds.autopath);
	cJSON_AddNumberToObject(j, "tcpConnections", (double)ds.tcp_connections);
	cJSON_AddNumberToObject(j, "upstreamQueries", (double)ds.fwd.forwarded);
	cJSON_AddNumberToObject(j, "cacheHits", (double)ds.fwd.cache_hits);
	cJSON_AddNumberToObject(j, "cacheMisses", (double)ds.fwd.cache_misses);
	cJSON_AddNumberToObject(j, "upstreamTimeouts", (double)ds.fwd.timeouts);
	cJSON_AddNumberToObject(j, "upstreamTCPRetries", (double)ds.fwd.tcp_retries);
}

static cJSON *op_status(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	struct reconcile_status rs;
	cJSON *resp = resp_ok(), *ls, *counts, *bad;
	struct smap_ent *ent;
	size_t cur = 0;
	char ts[21];

	(void)req;
	reconciler_status(d->rec, &rs);
	cJSON_AddStringToObject(resp, "mode", d->mode ? d->mode : rs.mode);
	if (d->lb) {
		struct lb_stats st;
		cJSON *u = cJSON_AddObjectToObject(resp, "userspace");
		lb_stats(d->lb, &st);
		cJSON_AddNumberToObject(u, "services", (double)st.services);
		cJSON_AddNumberToObject(u, "listeners", (double)st.listeners);
		cJSON_AddNumberToObject(u, "active", (double)st.active);
		cJSON_AddNumberToObject(u, "total", (double)st.total);
		cJSON_AddNumberToObject(u, "acceptPauses", (double)st.accept_paused);
		cJSON_AddBoolToObject(u, "loopbackOnly", st.loopback_only);
		cJSON_AddBoolToObject(u, "batchedSends", st.batched_sends);
	}
	cJSON_AddBoolToObject(resp, "synced", rs.synced);
	cJSON_AddNumberToObject(resp, "desiredGeneration", (double)rs.desired);
	cJSON_AddNumberToObject(resp, "appliedGeneration", (double)rs.applied);
	ls = cJSON_AddObjectToObject(resp, "lastSync");
	cJSON_AddNumberToObject(ls, "durationSeconds", rs.last_duration);
	cJSON_AddBoolToObject(ls, "full", rs.last_full);
	if (rs.last_error[0])
		cJSON_AddStringToObject(ls, "error", rs.last_error);
	else
		cJSON_AddNullToObject(ls, "error");
	if (rs.last_time) {
		fmt_rfc3339(rs.last_time, ts);
		cJSON_AddStringToObject(ls, "time", ts);
	}
	cJSON_AddNumberToObject(ls, "services", (double)rs.last_changed);
	cJSON_AddNumberToObject(resp, "programmedElements", (double)rs.elements);
	cJSON_AddNumberToObject(resp, "programmedChains", (double)rs.chains);
	cJSON_AddNumberToObject(resp, "syncs", (double)rs.syncs);
	cJSON_AddNumberToObject(resp, "syncFailures", (double)rs.failures);
	counts = cJSON_AddObjectToObject(resp, "counts");
	cJSON_AddNumberToObject(counts, "services", (double)model_count(d->st.model, KIND_SERVICE));
	cJSON_AddNumberToObject(counts, "endpoints",
				(double)(model_count(d->st.model, KIND_ENDPOINTS) +
					 model_count(d->st.model, KIND_ENDPOINTSLICE)));
	cJSON_AddNumberToObject(counts, "pods", (double)model_count(d->st.model, KIND_POD));
	cJSON_AddNumberToObject(counts, "deployments",
				(double)model_count(d->st.model, KIND_DEPLOYMENT));
	cJSON_AddStringToObject(resp, "stateDir", d->cfg.state_dir);
	if (d->pods) {
		size_t np, nrun;
		cJSON *pj = cJSON_AddObjectToObject(resp, "pods");
		pods_stats(d->pods, &np, &nrun);
		cJSON_AddNumberToObject(pj, "managed", (double)np);
		cJSON_AddNumberToObject(pj, "running", (double)nrun);
		cJSON_AddStringToObject(pj, "bridge", d->cfg.pods.bridge);
		cJSON_AddStringToObject(pj, "podCIDR", d->cfg.pods.pod_cidr);
	}
	if (d->dns)
		add_dns_status(resp, d);
	cJSON_AddNumberToObject(resp, "heapBytes", (double)mallinfo2().uordblks);
	fmt_rfc3339(d->started, ts);
	cJSON_AddStringToObject(resp, "startTime", ts);
	bad = cJSON_AddArrayToObject(resp, "storeErrors");
	while ((ent = smap_next(&d->st.bad_files, &cur))) {
		cJSON *b = cJSON_CreateObject();
		cJSON_AddStringToObject(b, "file", ent->key);
		cJSON_AddStringToObject(b, "error", ent->val);
		cJSON_AddItemToArray(bad, b);
	}
	return resp;
}

static cJSON *op_watch(struct conn *c, const cJSON *req)
{
	const char *ns = req_str(req, "namespace");
	cJSON *resp = NULL;

	if (req_kind(req, false, &c->watch_kind, &resp))
		return resp;
	if (ns && !(c->watch_ns = strdup(ns)))
		return resp_err(-ENOMEM, "out of memory");
	c->watching = true;
	return resp_ok();
}

/* Send one event to every watcher of its kind and namespace. */
static void broadcast(struct svc_api *a, enum svc_kind kind, const struct svc_obj *o,
		      const char *type, bool synth)
{
	struct sbuf b = {0};

	for (struct conn *c = a->conns, *next; c; c = next) {
		next = c->next;
		if (!c->watching || (c->watch_kind >= 0 && c->watch_kind != (int)kind) ||
		    (c->watch_ns && strcmp(c->watch_ns, o->ns)))
			continue;
		if (!b.len &&
		    (sbuf_addf(&b, "{\"type\":\"%s\",\"object\":", type) ||
		     (synth ? add_synth_text(&b, o) : add_obj_text(&b, o)) || sbuf_add(&b, "}", 1)))
			break;
		conn_ref(c);
		conn_send_text(c, b.p, b.len);
		conn_unref(c);
	}
	sbuf_free(&b);
}

static void on_state_event(void *ctx, enum svc_event ev, const struct svc_obj *o)
{
	struct svc_api *a = ctx;
	bool selector = o->kind == KIND_SERVICE && o->u.svc->has_selector;

	if (ev != EV_ENDPOINTS)
		broadcast(a, o->kind, o, event_name(ev), false);
	/* A selector service comes with the Endpoints object svcd keeps for
	 * it: watchers of Endpoints see it appear, change and go. */
	if (selector)
		broadcast(a, KIND_ENDPOINTS, o, ev == EV_ENDPOINTS ? "MODIFIED" : event_name(ev),
			  true);
}

/* --- images, logs, events ----------------------------------------------------- */

/* An import reads and writes a whole image: it runs in a child process so
 * that the loop goes on serving; the connection waits for its answer. */
struct import_job {
	struct conn *c;
	ev_child cw;
	int fd;
	char ref[256];
};

static void on_import_done(struct ev_loop *loop, ev_child *w, int revents)
{
	struct import_job *job = w->data;
	struct conn *c = job->c;
	struct svcd *d = c->api->d;
	char buf[SVC_ERR_MAX + 80];
	ssize_t n = read(job->fd, buf, sizeof(buf) - 1);
	cJSON *resp;

	ev_child_stop(loop, w);
	close(job->fd);
	buf[n > 0 ? n : 0] = '\0';
	if (!strncmp(buf, "ok ", 3)) {
		resp = resp_ok();
		cJSON_AddStringToObject(resp, "image", job->ref);
		cJSON_AddStringToObject(resp, "id", buf + 3);
		svc_log(SVC_LOG_INFO, "image %s imported (%.12s)", job->ref, buf + 3);
		if (d->pods)
			pods_images_changed(d->pods);
	} else {
		resp = resp_err(-EINVAL, n > 0 ? buf : "the import process failed");
	}
	c->busy = false;
	free(job);
	if (!c->closing) {
		conn_send(c, resp);
		conn_process(c);
	} else {
		cJSON_Delete(resp);
	}
	conn_unref(c);
}

static void import_child(int fd, const char *dir, const char *ref, const char *path)
{
	struct svc_err e = {0};
	char id[65], msg[SVC_ERR_MAX + 8];
	sigset_t none;
	int len;

	/* Hold nothing of svcd's (its listening socket kept open here would
	 * make a restarted svcd find it busy), and let SIGTERM and SIGINT end
	 * the import (svcd's handlers would only wake svcd's loop). */
	if (fd > 3)
		syscall(SYS_close_range, 3u, (unsigned int)fd - 1, 0u);
	syscall(SYS_close_range, (unsigned int)fd + 1, ~0u, 0u);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (image_import(dir, ref, path, id, &e))
		len = snprintf(msg, sizeof(msg), "%s", e.msg);
	else
		len = snprintf(msg, sizeof(msg), "ok %s", id);
	_exit(write(fd, msg, (size_t)len) == len ? 0 : 1);
}

static cJSON *op_image_import(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *ref = req_str(req, "image"), *path = req_str(req, "path");
	struct svc_err e = {0};
	struct import_job *job;
	char dir[PATH_MAX];
	int pfd[2];
	pid_t pid;

	if (!ref || !path)
		return bad_request("\"image\" and \"path\" are required");
	if (path[0] != '/')
		return bad_request("\"path\" must be absolute");
	if (!(job = calloc(1, sizeof(*job))))
		return resp_err(-ENOMEM, "out of memory");
	if (image_ref_normalize(ref, job->ref, sizeof(job->ref), &e)) {
		free(job);
		return resp_err(-EINVAL, e.msg);
	}
	snprintf(dir, sizeof(dir), "%s/images", d->cfg.state_dir);
	if (pipe2(pfd, O_CLOEXEC)) {
		free(job);
		return resp_err(-errno, strerror(errno));
	}
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(job);
		return resp_err(-errno, strerror(errno));
	}
	if (pid == 0)
		import_child(pfd[1], dir, job->ref, path);
	close(pfd[1]);
	job->fd = pfd[0];
	job->c = c;
	conn_ref(c);
	c->busy = true;
	ev_child_init(&job->cw, on_import_done, pid, 0);
	job->cw.data = job;
	ev_child_start(d->loop, &job->cw);
	return NULL;
}

static cJSON *image_json(const struct image *img)
{
	cJSON *j = cJSON_CreateObject();
	char ts[21];

	cJSON_AddStringToObject(j, "image", img->ref);
	cJSON_AddStringToObject(j, "id", img->id);
	cJSON_AddNumberToObject(j, "size", (double)img->size);
	fmt_rfc3339(img->imported, ts);
	cJSON_AddStringToObject(j, "imported", ts);
	return j;
}

static cJSON *op_image_list(struct conn *c, const cJSON *req)
{
	struct svc_err e = {0};
	struct image *imgs = NULL;
	char dir[PATH_MAX];
	size_t n = 0;
	cJSON *resp, *arr;

	(void)req;
	snprintf(dir, sizeof(dir), "%s/images", c->api->d->cfg.state_dir);
	if (image_list(dir, &imgs, &n, &e))
		return resp_err(-e.code, e.msg);
	resp = resp_ok();
	arr = cJSON_AddArrayToObject(resp, "images");
	for (size_t i = 0; i < n; i++) {
		cJSON_AddItemToArray(arr, image_json(&imgs[i]));
		image_free(&imgs[i]);
	}
	free(imgs);
	return resp;
}

static cJSON *op_image_rm(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *ref = req_str(req, "image");
	struct svc_err e = {0};
	char dir[PATH_MAX], norm[256];

	if (!ref)
		return bad_request("\"image\" is required");
	if (image_ref_normalize(ref, norm, sizeof(norm), &e))
		return resp_err(-EINVAL, e.msg);
	if (d->pods && pods_image_in_use(d->pods, norm) &&
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "force"))) {
		snprintf(e.msg, sizeof(e.msg),
			 "image %s is used by a pod; delete the pod first (or --force)", norm);
		return resp_err(-EEXIST, e.msg);
	}
	snprintf(dir, sizeof(dir), "%s/images", d->cfg.state_dir);
	if (image_remove(dir, norm, &e))
		return resp_err(-e.code, e.msg);
	return resp_ok();
}

static cJSON *op_logs(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *ns = req_str(req, "namespace"), *name = req_str(req, "name");
	struct svc_err e = {0};
	char path[PATH_MAX];
	cJSON *resp;

	if (!name)
		return bad_request("\"name\" is required");
	if (!d->pods)
		return resp_err(-ENOTSUP, "this svcd runs no pods (--no-pods)");
	if (pods_log_path(d->pods, ns ? ns : "default", name, req_str(req, "container"),
			  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "previous")), path,
			  sizeof(path), &e))
		return resp_err(-e.code, e.msg);
	resp = resp_ok();
	cJSON_AddStringToObject(resp, "path", path);
	return resp;
}

static cJSON *op_events(struct conn *c, const cJSON *req)
{
	struct svcd *d = c->api->d;
	const char *ns = req_str(req, "namespace"), *name = req_str(req, "name");
	cJSON *resp, *ev;

	if (!name)
		return bad_request("\"name\" is required");
	ev = d->pods ? pods_events(d->pods, ns ? ns : "default", name) : NULL;
	resp = resp_ok();
	cJSON_AddItemToObject(resp, "events", ev ? ev : cJSON_CreateArray());
	return resp;
}

/* --- the connection loop ------------------------------------------------------ */

static const struct {
	const char *name;
	cJSON *(*fn)(struct conn *c, const cJSON *req);
} ops[] = {
    {"apply", op_apply},
    {"delete", op_delete},
    {"get", op_get},
    {"list", op_list},
    {"status", op_status},
    {"watch", op_watch},
    {"image.import", op_image_import},
    {"image.list", op_image_list},
    {"image.rm", op_image_rm},
    {"logs", op_logs},
    {"events", op_events},
};

static void handle_line(struct conn *c, const char *line, size_t len)
{
	cJSON *req = cJSON_ParseWithLength(line, len), *resp = NULL;
	const char *op = req_str(req, "op");
	size_t i;

	if (!cJSON_IsObject(req)) {
		resp = bad_request("request is not a JSON object");
	} else if (c->watching) {
		resp = bad_request("this connection is watching; open another for requests");
	} else {
		for (i = 0; i < ARRAY_SIZE(ops) && !(op && !strcmp(op, ops[i].name)); i++)
			;
		resp = i < ARRAY_SIZE(ops) ? ops[i].fn(c, req) : bad_request("unknown \"op\"");
	}
	cJSON_Delete(req);
	if (resp)
		conn_send(c, resp);
}

static void conn_process(struct conn *c)
{
	char *nl;

	if (c->processing)
		return; /* re-entered from a callback: the outer loop goes on */
	c->processing = true;
	conn_ref(c);
	while (!c->closing && !c->waiter && !c->busy && c->in.len &&
	       (nl = memchr(c->in.p, '\n', c->in.len))) {
		size_t len = (size_t)(nl - c->in.p);
		*nl = '\0';
		if (len)
			handle_line(c, c->in.p, len);
		sbuf_consume(&c->in, len + 1);
		/* A big request leaves big holes in the heap: hand them back. */
		if (len > (1u << 20))
			malloc_trim(0);
	}
	if (!c->closing && !c->waiter && !c->busy && c->in.len >= MAX_REQUEST) {
		conn_send(c, bad_request("request longer than 64 MiB"));
		conn_close(c);
	}
	/* A last request without its newline still counts once the client is done. */
	if (!c->closing && !c->waiter && !c->busy && c->eof && c->in.len) {
		handle_line(c, c->in.p, c->in.len);
		sbuf_consume(&c->in, c->in.len);
	}
	c->processing = false;
	conn_maybe_finish(c);
	conn_unref(c);
}

static void on_conn_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	(void)revents;
	if (sbuf_reserve(&c->in, 65536)) {
		conn_close(c);
		return;
	}
	n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0) {
		/* Half-close: what was asked is still answered. */
		c->eof = true;
		ev_io_stop(loop, &c->rio);
		conn_process(c);
		return;
	}
	c->in.len += (size_t)n;
	c->in.p[c->in.len] = '\0';
	conn_process(c);
}

static void on_conn_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	conn_ref(c);
	conn_flush(c);
	conn_unref(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct svc_api *a = w->data;
	struct conn *c;
	int fd;

	(void)revents;
	fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors: the socket stays readable, so pause
		 * instead of spinning, and try again shortly. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			ev_io_stop(loop, &a->io);
			ev_timer_set(&a->retry, ACCEPT_RETRY, 0);
			ev_timer_start(loop, &a->retry);
		}
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return;
	}
	if (++a->nconns == MAX_CONNS)
		ev_io_stop(loop, &a->io); /* resumed when one closes */
	c->api = a;
	c->fd = fd;
	c->refs = 1;
	c->watch_kind = -1;
	ev_io_init(&c->rio, on_conn_read, fd, EV_READ);
	ev_io_init(&c->wio, on_conn_write, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	ev_io_start(loop, &c->rio);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct svc_api *a = w->data;

	(void)revents;
	if (a->nconns < MAX_CONNS)
		ev_io_start(loop, &a->io);
}

static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!(slash = strrchr(dir, '/')) || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file nobody answers on is left over from a crash: remove it. */
static int claim_path(const struct sockaddr_un *sa, struct svc_err *e)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return svc_errf(e, errno, "socket: %s", strerror(errno));
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return svc_errf(e, EADDRINUSE, "another svcd is already listening on %s",
				sa->sun_path);
	unlink(sa->sun_path);
	return 0;
}

int api_open(struct svcd *d, const char *path, struct svc_api **out, struct svc_err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct svc_api *a;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return svc_errf(e, ENAMETOOLONG, "--socket: path longer than %zu bytes: %s",
				sizeof(sa.sun_path) - 1, path);
	strcpy(sa.sun_path, path);
	if ((r = make_parent(path)))
		return svc_errf(e, -r, "creating the directory of %s: %s", path, strerror(-r));
	if ((r = claim_path(&sa, e)))
		return r;
	if (!(a = calloc(1, sizeof(*a))) || !(a->path = strdup(path))) {
		free(a);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	a->d = d;
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	old = umask(0177); /* the socket is born 0600: only root may drive svcd */
	r = a->fd < 0 || bind(a->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(a->fd, 128);
	umask(old);
	if (r) {
		r = svc_errf(e, errno, "listening on %s: %s", path, strerror(errno));
		if (a->fd >= 0)
			close(a->fd);
		free(a->path);
		free(a);
		return r;
	}
	ev_io_init(&a->io, on_accept, a->fd, EV_READ);
	a->io.data = a;
	ev_init(&a->retry, on_accept_retry);
	a->retry.data = a;
	ev_io_start(d->loop, &a->io);
	state_listen(&d->st, on_state_event, a);
	*out = a;
	return 0;
}

void api_close(struct svc_api *a)
{
	if (!a)
		return;
	while (a->conns)
		conn_close(a->conns);
	ev_io_stop(a->d->loop, &a->io);
	ev_timer_stop(a->d->loop, &a->retry);
	close(a->fd);
	unlink(a->path);
	free(a->path);
	free(a);
}
