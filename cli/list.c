// SPDX-License-Identifier: MIT
/* svcctl list [-n NS|-A] [-o wide|json|yaml]: every service with its ports and
 * ready endpoints, from one "list" request.  Built for 10,000+ services: one
 * parse, one pass over the array, one write. */
#include "svcctl.h"

#include <stdio.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "table.h"

static const char usage[] =
    "Usage: svcctl list [-n NAMESPACE|-A] [-o wide|json|yaml]\n"
    "  -n, --namespace NS     only this namespace (default: every namespace)\n"
    "  -A, --all-namespaces   every namespace\n"
    "  -o, --output FORMAT    wide (adds EXTERNAL-IP, SELECTOR and, for services the\n"
    "                         userspace balancer carries, LISTEN, CONNECTIONS active/total\n"
    "                         and FAILED connects), json or yaml\n";

static const char *const columns[] = {"NAMESPACE",   "NAME",	    "TYPE",	 "CLUSTER-IP",
				      "EXTERNAL-IP", "PORT(S)",	    "ENDPOINTS", "SELECTOR",
				      "LISTEN",	     "CONNECTIONS", "FAILED"};
enum { COL_EXTERNAL = 4, COL_SELECTOR = 7, COL_LISTEN = 8 };
#define LB_COLS 3 /* LISTEN, CONNECTIONS (active/total), FAILED (connects) */

struct list_view {
	bool wide, selector; /* EXTERNAL-IP; SELECTOR, only if the daemon sends one */
	bool lb;	     /* the userspace balancer's columns, when it serves any */
	struct ctl_table t;
	struct sbuf tmp;
};

static void cell_tmp(struct list_view *v)
{
	ctl_table_cell(&v->t, v->tmp.p);
	sbuf_consume(&v->tmp, v->tmp.len);
}

static void cell_or(struct list_view *v, const char *s, const char *dflt)
{
	ctl_table_cell(&v->t, s && *s ? s : dflt);
}

static void external_cell(struct list_view *v, const cJSON *s, const char *type)
{
	const char *name = ctl_json_str(s, "externalName");

	if (!strcmp(type, "ExternalName") && name && *name)
		sbuf_adds(&v->tmp, name);
	else if (!ctl_fmt_join(&v->tmp, ctl_json_arr(s, "externalIPs")))
		sbuf_adds(&v->tmp, !strcmp(type, "LoadBalancer") ? "<pending>" : "<none>");
	cell_tmp(v);
}

static void endpoints_cell(struct list_view *v, const cJSON *s)
{
	size_t shown = ctl_fmt_join(&v->tmp, ctl_json_arr(s, "endpoints"));

	ctl_fmt_more(&v->tmp, shown, ctl_json_int(s, "endpointCount", (long long)shown), "<none>");
	cell_tmp(v);
}

/* Where the userspace balancer listens for s, its connections (active/
 * total) and failed connects; "-" for a service it does not carry. */
static void lb_cells(struct list_view *v, const cJSON *s)
{
	const cJSON *lb = ctl_json_obj(s, "lb");

	if (!lb) {
		for (int i = 0; i < LB_COLS; i++)
			ctl_table_cell(&v->t, "-");
		return;
	}
	ctl_fmt_join(&v->tmp, ctl_json_arr(s, "listen"));
	cell_tmp(v);
	sbuf_addf(&v->tmp, "%lld/%lld", ctl_json_int(lb, "active", 0),
		  ctl_json_int(lb, "total", 0));
	cell_tmp(v);
	sbuf_addf(&v->tmp, "%lld", ctl_json_int(lb, "connect_failures", 0));
	cell_tmp(v);
}

static void row(struct list_view *v, const cJSON *s)
{
	const char *type = ctl_json_str(s, "type");

	type = type && *type ? type : "ClusterIP";
	cell_or(v, ctl_json_str(s, "namespace"), "");
	cell_or(v, ctl_json_str(s, "name"), "");
	ctl_table_cell(&v->t, type);
	cell_or(v, ctl_json_str(s, "clusterIP"), "<none>");
	if (v->wide)
		external_cell(v, s, type);
	ctl_fmt_ports(&v->tmp, ctl_json_arr(s, "ports"));
	cell_tmp(v);
	endpoints_cell(v, s);
	if (v->selector) {
		ctl_fmt_selector(&v->tmp, ctl_json_obj(s, "selector"));
		cell_tmp(v);
	}
	if (v->lb)
		lb_cells(v, s);
}

static bool any_has(const cJSON *services, const char *key)
{
	const cJSON *s;

	cJSON_ArrayForEach(s, services)
	{
		if (ctl_json_obj(s, key))
			return true;
	}
	return false;
}

static int print_table(const cJSON *services, bool wide)
{
	struct list_view v = {.wide = wide,
			      .selector = wide && any_has(services, "selector"),
			      .lb = wide && any_has(services, "lb")};
	size_t ncols = ARRAY_SIZE(columns) - !v.wide - !v.selector - (v.lb ? 0 : LB_COLS);
	const cJSON *s;
	int err = ctl_table_init(&v.t, ncols);

	for (size_t i = 0; i < ARRAY_SIZE(columns); i++)
		if ((i != COL_EXTERNAL || v.wide) && (i != COL_SELECTOR || v.selector) &&
		    (i < COL_LISTEN || v.lb))
			ctl_table_cell(&v.t, columns[i]);
	cJSON_ArrayForEach(s, services)
	{
		row(&v, s);
	}
	if (!err)
		err = ctl_table_flush(&v.t, stdout);
	ctl_table_free(&v.t);
	sbuf_free(&v.tmp);
	return err ? ctl_fail("writing the table: %s", strerror(-err)) : CTL_OK;
}

static int print_response(cJSON *resp, enum ctl_output out, const char *ns)
{
	const cJSON *services = ctl_json_arr(resp, "services");

	if (!services)
		return ctl_fail("svcd sent a list response without \"services\"");
	if (out == OUT_JSON || out == OUT_YAML) {
		cJSON_DeleteItemFromObjectCaseSensitive(resp, "ok");
		return ctl_print_value(resp, out, false);
	}
	if (!services->child && ns)
		fprintf(stderr, "No resources found in %s namespace.\n", ns);
	else if (!services->child)
		fputs("No resources found\n", stderr);
	return services->child ? print_table(services, out == OUT_WIDE) : CTL_OK;
}

static int list(struct ctl *ctl, const char *ns, enum ctl_output out)
{
	struct ctl_client c;
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	enum ctl_call r;
	int ret = CTL_ERROR;

	if (!cJSON_AddStringToObject(req, "op", "list") ||
	    !(ns ? cJSON_AddStringToObject(req, "namespace", ns)
		 : cJSON_AddNullToObject(req, "namespace")))
		ret = ctl_fail("list: out of memory");
	else if (!ctl_open(ctl, &c, ctl->timeout_ms)) {
		r = ctl_call(&c, req, &resp, NULL);
		ctl_client_close(&c);
		if (r == CALL_REFUSED)
			ctl_print_refusal(resp, true);
		else if (r == CALL_OK)
			ret = print_response(resp, out, ns);
	}
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return ret;
}

int ctl_list_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"namespace", required_argument, NULL, 'n'},
	    {"all-namespaces", no_argument, NULL, 'A'},
	    {"output", required_argument, NULL, 'o'},
	    CTL_COMMON_OPTIONS,
	};
	const unsigned outputs = 1u << OUT_WIDE | 1u << OUT_JSON | 1u << OUT_YAML;
	enum ctl_output out = OUT_TABLE;
	const char *ns = NULL;
	bool all = false;
	int opt, ret = -1;

	while (ret < 0 && (opt = getopt_long(argc, argv, ":n:Ao:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			ns = optarg;
			break;
		case 'A':
			all = true;
			break;
		case 'o':
			if (ctl_parse_output(optarg, outputs, &out))
				ret =
				    ctl_usage_error(usage, "unknown output format \"%s\"", optarg);
			break;
		default:
			ret = ctl_option(ctl, opt, argv, usage);
		}
	}
	if (ret >= 0)
		return ret;
	if (optind < argc)
		return ctl_usage_error(usage, "unexpected argument \"%s\"", argv[optind]);
	if (ns && !*ns)
		return ctl_usage_error(usage, "-n needs a namespace");
	if (all && ns)
		return ctl_usage_error(usage, "give -n NAMESPACE or -A, not both");
	return list(ctl, ns, out);
}
