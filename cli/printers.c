// SPDX-License-Identifier: MIT
#include "printers.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "json.h"

/* Emit the scratch buffer as the next cell and clear it. */
static void cell_tmp(struct ctl_table *t, struct ctl_row_ctx *ctx)
{
	ctl_table_cell(t, ctx->tmp.p);
	sbuf_consume(&ctx->tmp, ctx->tmp.len);
}

static void cell_or(struct ctl_table *t, const char *s, const char *dflt)
{
	ctl_table_cell(t, s && *s ? s : dflt);
}

static void cell_age(struct ctl_table *t, const cJSON *o, struct ctl_row_ctx *ctx)
{
	ctl_fmt_age(&ctx->tmp, ctl_json_str2(o, "metadata", "creationTimestamp"), ctx->now);
	cell_tmp(t, ctx);
}

static void add_sep(struct sbuf *b, const char *s, size_t *n)
{
	sbuf_addf(b, "%s%s", (*n)++ ? "," : "", s);
}

/* kubectl's EXTERNAL-IP: load balancer ingress, then spec.externalIPs. */
static void service_external(struct sbuf *b, const cJSON *o, const char *type)
{
	const cJSON *spec = ctl_json_obj(o, "spec"), *lbs = ctl_json_obj(o, "status"), *in;
	bool lb = !strcmp(type, "LoadBalancer");
	size_t n = 0;

	if (!strcmp(type, "ExternalName")) {
		const char *name = ctl_json_str(spec, "externalName");
		sbuf_adds(b, name && *name ? name : "<none>");
		return;
	}
	lbs = lb ? ctl_json_arr(ctl_json_obj(lbs, "loadBalancer"), "ingress") : NULL;
	cJSON_ArrayForEach(in, lbs)
	{
		const char *ip = ctl_json_str(in, "ip"), *host = ctl_json_str(in, "hostname");
		if ((ip && *ip) || (host && *host))
			add_sep(b, ip && *ip ? ip : host, &n);
	}
	cJSON_ArrayForEach(in, ctl_json_arr(spec, "externalIPs"))
	{
		if (cJSON_IsString(in) && in->valuestring && *in->valuestring)
			add_sep(b, in->valuestring, &n);
	}
	if (!n)
		sbuf_adds(b, lb ? "<pending>" : "<none>");
}

static void service_row(struct ctl_table *t, const cJSON *o, bool wide, struct ctl_row_ctx *ctx)
{
	const cJSON *spec = ctl_json_obj(o, "spec");
	const char *type = ctl_json_str(spec, "type");

	type = type && *type ? type : "ClusterIP";
	cell_or(t, ctl_json_str2(o, "metadata", "name"), "");
	ctl_table_cell(t, type);
	cell_or(t, ctl_json_str(spec, "clusterIP"), "<none>");
	service_external(&ctx->tmp, o, type);
	cell_tmp(t, ctx);
	ctl_fmt_ports(&ctx->tmp, ctl_json_arr(spec, "ports"));
	cell_tmp(t, ctx);
	cell_age(t, o, ctx);
	if (!wide)
		return;
	ctl_fmt_selector(&ctx->tmp, ctl_json_obj(spec, "selector"));
	cell_tmp(t, ctx);
}

/* kubectl's formatEndpoints: ip:port for each port of each subset. */
static void endpoints_list(struct ctl_fmt_list *l, const cJSON *subset)
{
	const cJSON *ports = ctl_json_arr(subset, "ports"), *addrs, *port, *a;

	addrs = ctl_json_arr(subset, "addresses");
	if (!ports || !ports->child) {
		cJSON_ArrayForEach(a, addrs)
		{
			if (ctl_json_str(a, "ip"))
				ctl_fmt_list_hostport(l, ctl_json_str(a, "ip"), -1);
		}
		return;
	}
	cJSON_ArrayForEach(port, ports)
	{
		cJSON_ArrayForEach(a, addrs)
		{
			if (ctl_json_str(a, "ip"))
				ctl_fmt_list_hostport(l, ctl_json_str(a, "ip"),
						      ctl_json_int(port, "port", 0));
		}
	}
}

static void endpoints_row(struct ctl_table *t, const cJSON *o, bool wide, struct ctl_row_ctx *ctx)
{
	struct ctl_fmt_list l = {.b = &ctx->tmp};
	const cJSON *subset;

	cell_or(t, ctl_json_str2(o, "metadata", "name"), "");
	cJSON_ArrayForEach(subset, ctl_json_arr(o, "subsets"))
	{
		endpoints_list(&l, subset);
	}
	ctl_fmt_more(&ctx->tmp, l.shown, l.total, "<none>");
	cell_tmp(t, ctx);
	cell_age(t, o, ctx);
}

static void slice_ports(struct ctl_row_ctx *ctx, const cJSON *ports)
{
	struct ctl_fmt_list l = {.b = &ctx->tmp};
	const cJSON *p;
	char num[24];

	cJSON_ArrayForEach(p, ports)
	{
		const char *name = ctl_json_str(p, "name");
		long long port = ctl_json_int(p, "port", -1);

		snprintf(num, sizeof(num), "%lld", port);
		ctl_fmt_list_add(&l, port >= 0 ? num : name ? name : "*");
	}
	ctl_fmt_more(&ctx->tmp, l.shown, l.total, "<unset>");
}

static void slice_endpoints(struct ctl_row_ctx *ctx, const cJSON *endpoints)
{
	struct ctl_fmt_list l = {.b = &ctx->tmp};
	const cJSON *ep, *a;

	cJSON_ArrayForEach(ep, endpoints)
	{
		cJSON_ArrayForEach(a, ctl_json_arr(ep, "addresses"))
		{
			if (cJSON_IsString(a) && a->valuestring)
				ctl_fmt_list_add(&l, a->valuestring);
		}
	}
	ctl_fmt_more(&ctx->tmp, l.shown, l.total, "<unset>");
}

static void slice_row(struct ctl_table *t, const cJSON *o, bool wide, struct ctl_row_ctx *ctx)
{
	cell_or(t, ctl_json_str2(o, "metadata", "name"), "");
	cell_or(t, ctl_json_str(o, "addressType"), "<unset>");
	slice_ports(ctx, ctl_json_arr(o, "ports"));
	cell_tmp(t, ctx);
	slice_endpoints(ctx, ctl_json_arr(o, "endpoints"));
	cell_tmp(t, ctx);
	cell_age(t, o, ctx);
}

static const char *pod_status(const cJSON *o)
{
	const cJSON *status = ctl_json_obj(o, "status");
	const char *reason = ctl_json_str(status, "reason"), *phase = ctl_json_str(status, "phase");

	const cJSON *c;

	if (ctl_json_str2(o, "metadata", "deletionTimestamp"))
		return "Terminating";
	if (reason && *reason)
		return reason;
	/* As kubectl: a container's waiting or terminated reason says more. */
	cJSON_ArrayForEach(c, ctl_json_arr(status, "containerStatuses"))
	{
		const cJSON *st = ctl_json_obj(c, "state");
		const char *r = ctl_json_str2(st, "waiting", "reason");
		if (!r && phase && strcmp(phase, "Running"))
			r = ctl_json_str2(st, "terminated", "reason");
		if (r && *r)
			return r;
	}
	return phase && *phase ? phase : "Pending";
}

static void pod_row(struct ctl_table *t, const cJSON *o, bool wide, struct ctl_row_ctx *ctx)
{
	const cJSON *status = ctl_json_obj(o, "status"), *c;
	long long ready = 0, restarts = 0;
	int total = cJSON_GetArraySize(ctl_json_arr(ctl_json_obj(o, "spec"), "containers"));

	cJSON_ArrayForEach(c, ctl_json_arr(status, "containerStatuses"))
	{
		long long n = ctl_json_int(c, "restartCount", 0);

		ready += ctl_json_bool(c, "ready", false);
		if (n > 0) /* saturate: the numbers are the daemon's, not ours */
			restarts = restarts > LLONG_MAX - n ? LLONG_MAX : restarts + n;
	}
	cell_or(t, ctl_json_str2(o, "metadata", "name"), "");
	ctl_table_cellf(t, "%lld/%d", ready, total);
	ctl_table_cell(t, pod_status(o));
	ctl_table_cellf(t, "%lld", restarts);
	cell_age(t, o, ctx);
	cell_or(t, ctl_json_str(status, "podIP"), "<none>");
	if (wide)
		cell_or(t, ctl_json_str2(o, "spec", "nodeName"), "<none>");
}

static void deployment_row(struct ctl_table *t, const cJSON *o, bool wide, struct ctl_row_ctx *ctx)
{
	const cJSON *status = ctl_json_obj(o, "status");

	cell_or(t, ctl_json_str2(o, "metadata", "name"), "");
	ctl_table_cellf(t, "%lld/%lld", ctl_json_int(status, "readyReplicas", 0),
			ctl_json_int(ctl_json_obj(o, "spec"), "replicas", 1));
	ctl_table_cellf(t, "%lld", ctl_json_int(status, "updatedReplicas", 0));
	ctl_table_cellf(t, "%lld", ctl_json_int(status, "availableReplicas", 0));
	cell_age(t, o, ctx);
}

static const struct ctl_printer printers[] = {
    {"Service",
     {"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"},
     {"SELECTOR"},
     service_row},
    {"Endpoints", {"NAME", "ENDPOINTS", "AGE"}, {NULL}, endpoints_row},
    {"EndpointSlice", {"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}, {NULL}, slice_row},
    {"Pod", {"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"}, {"NODE"}, pod_row},
    {"Deployment", {"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, {NULL}, deployment_row},
};

const struct ctl_printer *ctl_printer_find(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(printers); i++)
		if (!strcmp(kind, printers[i].kind))
			return &printers[i];
	return NULL;
}
