// SPDX-License-Identifier: MIT
/* svcctl get KIND [NAME] [-n NS|-A] [-o json|yaml|wide|name] [-w] */
#include "svcctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "kinds.h"
#include "printers.h"

static const char usage[] =
    "Usage: svcctl get KIND [NAME] [-n NAMESPACE|-A] [-o json|yaml|wide|name] [-w]\n"
    "  KIND: services (svc), endpoints (ep), endpointslices, pods (po), deployments (deploy)\n"
    "  -n, --namespace NS     namespace (default \"default\")\n"
    "  -A, --all-namespaces   every namespace\n"
    "  -o, --output FORMAT    json, yaml, wide or name (default: a table)\n"
    "  -w, --watch            print changes as they happen, until interrupted\n";

struct get_opts {
	const struct ctl_kind *kind;
	const char *name;
	const char *ns; /* NULL: all namespaces */
	enum ctl_output out;
	bool watch;
};

/* Table and -o name output, for one-shot gets and watch streams alike. */
struct view {
	const struct get_opts *o;
	const struct ctl_printer *pr;
	struct ctl_table t;
	struct ctl_row_ctx ctx;
	bool started;
};

static size_t count(const char *const *v, size_t max)
{
	size_t n = 0;

	while (n < max && v[n])
		n++;
	return n;
}

static int view_init(struct view *v, const struct get_opts *o)
{
	bool wide = o->out == OUT_WIDE;

	*v = (struct view){.o = o, .pr = ctl_printer_find(o->kind->kind)};
	v->ctx.now = time(NULL);
	return ctl_table_init(&v->t, !o->ns + count(v->pr->columns, ARRAY_SIZE(v->pr->columns)) +
					 (wide ? count(v->pr->wide, ARRAY_SIZE(v->pr->wide)) : 0));
}

static void view_header(struct view *v)
{
	const struct ctl_printer *pr = v->pr;

	if (!v->o->ns)
		ctl_table_cell(&v->t, "NAMESPACE");
	for (size_t i = 0; i < ARRAY_SIZE(pr->columns) && pr->columns[i]; i++)
		ctl_table_cell(&v->t, pr->columns[i]);
	for (size_t i = 0; v->o->out == OUT_WIDE && i < ARRAY_SIZE(pr->wide) && pr->wide[i]; i++)
		ctl_table_cell(&v->t, pr->wide[i]);
}

static void view_add(struct view *v, const cJSON *obj)
{
	const char *name = ctl_json_str2(obj, "metadata", "name");

	if (v->o->out == OUT_NAME) {
		printf("%s/", v->o->kind->resource);
		ctl_put_clean(stdout, name ? name : "");
		putchar('\n');
		return;
	}
	if (!v->started)
		view_header(v);
	v->started = true;
	if (!v->o->ns)
		ctl_table_cell(&v->t, ctl_json_str2(obj, "metadata", "namespace"));
	v->pr->row(&v->t, obj, v->o->out == OUT_WIDE, &v->ctx);
}

static int view_flush(struct view *v)
{
	int err = ctl_table_flush(&v->t, stdout);

	if (err)
		return ctl_fail("writing the table: %s", strerror(-err));
	return CTL_OK;
}

static void view_free(struct view *v)
{
	ctl_table_free(&v->t);
	sbuf_free(&v->ctx.tmp);
}

/* Rows for the items of an array, or for `obj` alone when it is not one. */
static int print_rows(const struct get_opts *o, const cJSON *j)
{
	const cJSON *it = cJSON_IsArray(j) ? j->child : j;
	struct view v;
	int ret = CTL_ERROR;

	if (!it && o->ns)
		fprintf(stderr, "No resources found in %s namespace.\n", o->ns);
	else if (!it)
		fputs("No resources found\n", stderr);
	if (!it)
		return CTL_OK;
	if (!view_init(&v, o)) {
		for (; it; it = it == j ? NULL : it->next) /* one object: one row */
			view_add(&v, it);
		ret = view_flush(&v);
	}
	view_free(&v);
	return ret;
}

/* -o json and -o yaml of a list: kubectl's List wrapper around the items. */
static int print_list_value(cJSON *resp, enum ctl_output out)
{
	cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(resp, "items");
	cJSON *list = cJSON_CreateObject(), *meta = NULL;
	bool ok = cJSON_AddStringToObject(list, "apiVersion", "v1") &&
		  cJSON_AddStringToObject(list, "kind", "List");
	int ret;

	if (ok && cJSON_AddItemToObject(list, "items", items))
		items = NULL; /* the list owns them now */
	ok = ok && !items && (meta = cJSON_AddObjectToObject(list, "metadata")) &&
	     cJSON_AddStringToObject(meta, "resourceVersion", "");
	ret =
	    ok ? ctl_print_value(list, out, false) : ctl_fail("formatting the list: out of memory");
	cJSON_Delete(items);
	cJSON_Delete(list);
	return ret;
}

static int print_response(const struct get_opts *o, cJSON *resp)
{
	const cJSON *obj = ctl_json_obj(resp, "object"), *items = ctl_json_arr(resp, "items");

	if (o->name && !obj)
		return ctl_fail("svcd sent a get response without \"object\"");
	if (!o->name && !items)
		return ctl_fail("svcd sent a get response without \"items\"");
	if (o->out == OUT_JSON || o->out == OUT_YAML)
		return o->name ? ctl_print_value(obj, o->out, false)
			       : print_list_value(resp, o->out);
	return print_rows(o, o->name ? obj : items);
}

static cJSON *request(const struct get_opts *o, const char *op)
{
	cJSON *req = cJSON_CreateObject();
	bool ok = cJSON_AddStringToObject(req, "op", op) &&
		  cJSON_AddStringToObject(req, "kind", o->kind->kind) &&
		  (o->ns ? cJSON_AddStringToObject(req, "namespace", o->ns)
			 : cJSON_AddNullToObject(req, "namespace")) &&
		  (!o->name || strcmp(op, "get") || cJSON_AddStringToObject(req, "name", o->name));

	if (!ok) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/* Send the get request; on success *resp holds the daemon's answer. */
static int fetch(struct ctl *ctl, const struct get_opts *o, cJSON **resp)
{
	struct ctl_client c;
	cJSON *req = request(o, "get");
	enum ctl_call r = CALL_BROKEN;

	*resp = NULL;
	if (!req)
		return ctl_fail("get: out of memory");
	if (!ctl_open(ctl, &c, ctl->timeout_ms)) {
		r = ctl_call(&c, req, resp, NULL);
		ctl_client_close(&c);
	}
	if (r == CALL_REFUSED && o->name)
		ctl_print_refusal_for(*resp, o->kind, o->name);
	else if (r == CALL_REFUSED)
		ctl_print_refusal(*resp, true);
	cJSON_Delete(req);
	if (r == CALL_OK)
		return CTL_OK;
	cJSON_Delete(*resp);
	*resp = NULL;
	return CTL_ERROR;
}

static int get_once(struct ctl *ctl, const struct get_opts *o)
{
	cJSON *resp;
	int ret = fetch(ctl, o, &resp);

	if (!ret)
		ret = print_response(o, resp);
	cJSON_Delete(resp);
	return ret;
}

/* Print one object of a watch (the first list or an event). */
static int watch_print(struct view *v, const cJSON *obj, bool *first)
{
	int ret = CTL_OK;

	if (v->o->out == OUT_JSON || v->o->out == OUT_YAML)
		ret = ctl_print_value(obj, v->o->out, !*first);
	else
		view_add(v, obj);
	*first = false;
	return ret;
}

/* Show what has been printed so far, now. */
static int watch_flush(struct view *v)
{
	int ret = view_flush(v);

	if (!ret && fflush(stdout))
		ret = ctl_fail("writing output: %s", strerror(errno));
	return ret;
}

/* One line of the stream: {"type": ..., "object": {...}}.  Returns CTL_OK,
 * or CTL_ERROR when the stream must end. */
static int watch_event(struct view *v, const cJSON *ev, bool *first)
{
	const cJSON *obj = ctl_json_obj(ev, "object");
	const char *name = ctl_json_str2(obj, "metadata", "name");

	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(ev, "ok"))) {
		ctl_print_refusal(ev, true);
		return CTL_ERROR;
	}
	if (!obj || (v->o->name && (!name || strcmp(name, v->o->name))))
		return CTL_OK; /* another object, or a line this svcctl does not know */
	v->ctx.now = time(NULL);
	return watch_print(v, obj, first) ? CTL_ERROR : watch_flush(v);
}

static int watch_stream(struct ctl_client *c, struct view *v, bool *first)
{
	struct svc_err e = {0};
	int ret = CTL_OK;

	/* Events come whenever something changes: no time limit from now on. */
	if (ctl_client_set_timeout(c, 0, &e))
		ret = ctl_fail("%s", e.msg);
	while (!ret) {
		cJSON *ev;
		int r = ctl_client_recv(c, &ev, &e);

		if (r > 0)
			break; /* the daemon ended the stream */
		if (r < 0)
			ret = ctl_fail("%s", e.msg);
		else
			ret = watch_event(v, ev, first);
		cJSON_Delete(ev);
	}
	return ret;
}

/* What exists now, like kubectl: the watch is already open, so nothing that
 * changes meanwhile is lost (it may show twice). */
static int watch_initial(struct ctl *ctl, struct view *v, bool *first)
{
	const struct get_opts *o = v->o;
	const cJSON *obj, *it;
	cJSON *resp;
	int ret = fetch(ctl, o, &resp);

	if (ret)
		return ret;
	if (o->name) {
		obj = ctl_json_obj(resp, "object");
		ret = obj ? watch_print(v, obj, first)
			  : ctl_fail("svcd sent a get response without \"object\"");
	}
	it = o->name ? NULL : ctl_json_arr(resp, "items");
	for (it = it ? it->child : NULL; it && !ret; it = it->next)
		ret = cJSON_IsObject(it) ? watch_print(v, it, first) : CTL_OK;
	cJSON_Delete(resp);
	return ret ? ret : watch_flush(v);
}

/* Open the watch, then print what exists and every change after it. */
static int watch_run(struct ctl *ctl, struct view *v, const cJSON *req)
{
	struct ctl_client c;
	cJSON *resp = NULL;
	bool first = true;
	enum ctl_call r;
	int ret = CTL_ERROR;

	if (ctl_open(ctl, &c, ctl->timeout_ms))
		return CTL_ERROR;
	r = ctl_call(&c, req, &resp, NULL);
	if (r == CALL_REFUSED)
		ctl_print_refusal(resp, true);
	if (r == CALL_OK)
		ret = watch_initial(ctl, v, &first);
	if (r == CALL_OK && !ret)
		ret = watch_stream(&c, v, &first);
	ctl_client_close(&c);
	cJSON_Delete(resp);
	return ret;
}

static int watch(struct ctl *ctl, const struct get_opts *o)
{
	cJSON *req = request(o, "watch");
	struct view v;
	int ret = view_init(&v, o);

	if (ret || !req)
		ret = ctl_fail("watch: out of memory");
	else
		ret = watch_run(ctl, &v, req);
	view_free(&v);
	cJSON_Delete(req);
	return ret;
}

static int parse_what(struct get_opts *o, int argc, char **argv)
{
	char *slash = argc > 0 ? strchr(argv[0], '/') : NULL;

	if (argc < 1)
		return ctl_usage_error(usage, "get needs a KIND");
	if (argc > (slash ? 1 : 2))
		return ctl_usage_error(usage, "unexpected argument \"%s\"", argv[slash ? 1 : 2]);
	if (slash) {
		*slash = '\0';
		o->name = slash + 1;
	} else if (argc == 2) {
		o->name = argv[1];
	}
	o->kind = ctl_kind_lookup(argv[0]);
	if (!o->kind) {
		fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", argv[0]);
		return CTL_ERROR;
	}
	if (o->name && !*o->name)
		return ctl_usage_error(usage, "empty NAME");
	if (o->name && !o->ns)
		return ctl_usage_error(usage, "a resource cannot be retrieved by name across all "
					      "namespaces");
	return -1;
}

static int parse(struct ctl *ctl, struct get_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"namespace", required_argument, NULL, 'n'},
	    {"all-namespaces", no_argument, NULL, 'A'},
	    {"output", required_argument, NULL, 'o'},
	    {"watch", no_argument, NULL, 'w'},
	    CTL_COMMON_OPTIONS,
	};
	const unsigned outputs = 1u << OUT_WIDE | 1u << OUT_JSON | 1u << OUT_YAML | 1u << OUT_NAME;
	bool all = false;
	int opt, ret = -1;

	while (ret < 0 && (opt = getopt_long(argc, argv, ":n:Ao:wh", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o->ns = optarg;
			break;
		case 'A':
			all = true;
			break;
		case 'o':
			if (ctl_parse_output(optarg, outputs, &o->out))
				ret =
				    ctl_usage_error(usage, "unknown output format \"%s\"", optarg);
			break;
		case 'w':
			o->watch = true;
			break;
		default:
			ret = ctl_option(ctl, opt, argv, usage);
		}
	}
	if (ret >= 0)
		return ret;
	if (o->ns && !*o->ns)
		return ctl_usage_error(usage, "-n needs a namespace");
	if (all && o->ns)
		return ctl_usage_error(usage, "give -n NAMESPACE or -A, not both");
	if (!all && !o->ns)
		o->ns = "default";
	if (all)
		o->ns = NULL;
	return parse_what(o, argc - optind, argv + optind);
}

int ctl_get_main(struct ctl *ctl, int argc, char **argv)
{
	struct get_opts o = {.out = OUT_TABLE};
	int ret = parse(ctl, &o, argc, argv);

	if (ret >= 0)
		return ret;
	return o.watch ? watch(ctl, &o) : get_once(ctl, &o);
}
