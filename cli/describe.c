// SPDX-License-Identifier: MIT
/* svcctl describe pod NAME [-n NS]: kubectl's description of a pod, its
 * containers' states and the runtime's recent events. */
#include "svcctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "json.h"
#include "kinds.h"
#include "table.h"

static const char usage[] = "Usage: svcctl describe pod NAME [-n NAMESPACE]\n"
			    "  -n, --namespace NS  the pod's namespace (default \"default\")\n";

static void field(int indent, const char *name, const char *value)
{
	int pad = 18 - indent - (int)strlen(name);

	printf("%*s%s:%*s", indent, "", name, pad > 1 ? pad : 1, "");
	ctl_put_clean(stdout, value && *value ? value : "<none>");
	putchar('\n');
}

static void fieldf(int indent, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fieldf(int indent, const char *name, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	field(indent, name, buf);
}

static void labels(const cJSON *map)
{
	struct sbuf b = {0};

	ctl_fmt_selector(&b, map);
	field(0, "Labels", b.p);
	sbuf_free(&b);
}

/* "Running", "Waiting" or "Terminated" with its details below. */
static void state(const char *title, const cJSON *st)
{
	const cJSON *s;

	if ((s = ctl_json_obj(st, "running"))) {
		field(4, title, "Running");
		field(6, "Started", ctl_json_str(s, "startedAt"));
	} else if ((s = ctl_json_obj(st, "waiting"))) {
		field(4, title, "Waiting");
		field(6, "Reason", ctl_json_str(s, "reason"));
		if (ctl_json_str(s, "message"))
			field(6, "Message", ctl_json_str(s, "message"));
	} else if ((s = ctl_json_obj(st, "terminated"))) {
		field(4, title, "Terminated");
		field(6, "Reason", ctl_json_str(s, "reason"));
		if (ctl_json_str(s, "message"))
			field(6, "Message", ctl_json_str(s, "message"));
		fieldf(6, "Exit Code", "%lld", ctl_json_int(s, "exitCode", 0));
		if (ctl_json_int(s, "signal", 0))
			fieldf(6, "Signal", "%lld", ctl_json_int(s, "signal", 0));
		field(6, "Started", ctl_json_str(s, "startedAt"));
		field(6, "Finished", ctl_json_str(s, "finishedAt"));
	} else if (!strcmp(title, "State")) {
		field(4, title, "Waiting");
	}
}

/* kubectl prints a command one word per line, under its label. */
static void words(const cJSON *arr, const char *title)
{
	const cJSON *w;

	if (!arr)
		return;
	printf("    %s:\n", title);
	cJSON_ArrayForEach(w, arr)
	{
		fputs("      ", stdout);
		ctl_put_clean(stdout, cJSON_IsString(w) ? w->valuestring : "?");
		putchar('\n');
	}
}

static void containers(const cJSON *pod)
{
	const cJSON *c, *st;

	puts("Containers:");
	cJSON_ArrayForEach(c, ctl_json_arr(ctl_json_obj(pod, "spec"), "containers"))
	{
		const char *name = ctl_json_str(c, "name");

		st = NULL;
		cJSON_ArrayForEach(st,
				   ctl_json_arr(ctl_json_obj(pod, "status"), "containerStatuses"))
		{
			const char *n = ctl_json_str(st, "name");
			if (n && name && !strcmp(n, name))
				break;
		}
		printf("  ");
		ctl_put_clean(stdout, name ? name : "?");
		puts(":");
		field(4, "Image", ctl_json_str(c, "image"));
		words(ctl_json_arr(c, "command"), "Command");
		words(ctl_json_arr(c, "args"), "Args");
		state("State", ctl_json_obj(st, "state"));
		if (ctl_json_obj(st, "lastState") && ctl_json_obj(st, "lastState")->child)
			state("Last State", ctl_json_obj(st, "lastState"));
		field(4, "Ready", ctl_json_bool(st, "ready", false) ? "True" : "False");
		fieldf(4, "Restart Count", "%lld", ctl_json_int(st, "restartCount", 0));
	}
}

/* The table, each line indented by two spaces as kubectl does. */
static void indented(struct ctl_table *t)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	ctl_table_flush(t, f);
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("  %s\n", line);
	free(text);
}

static void events(const cJSON *evs)
{
	static const char *const head[] = {"Type", "Reason", "Age", "From", "Message"};
	struct ctl_table t;
	const cJSON *ev;

	if (!evs || !evs->child) {
		puts("Events:           <none>");
		return;
	}
	puts("Events:");
	ctl_table_init(&t, ARRAY_SIZE(head));
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		ctl_table_cell(&t, head[i]);
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		ctl_table_cellf(&t, "%.*s", (int)strlen(head[i]), "--------------");
	cJSON_ArrayForEach(ev, evs)
	{
		struct sbuf age = {0};
		long long n = ctl_json_int(ev, "count", 1);

		ctl_table_cell(&t, ctl_json_str(ev, "type"));
		ctl_table_cell(&t, ctl_json_str(ev, "reason"));
		ctl_fmt_age(&age, ctl_json_str(ev, "lastTimestamp"), time(NULL));
		if (n > 1)
			sbuf_addf(&age, " (x%lld)", n);
		ctl_table_cell(&t, age.p);
		sbuf_free(&age);
		ctl_table_cell(&t, "svcd");
		ctl_table_cell(&t, ctl_json_str(ev, "message"));
	}
	indented(&t);
	ctl_table_free(&t);
}

static void describe(const cJSON *pod, const cJSON *evs)
{
	const cJSON *md = ctl_json_obj(pod, "metadata"), *st = ctl_json_obj(pod, "status"), *c;

	field(0, "Name", ctl_json_str(md, "name"));
	field(0, "Namespace", ctl_json_str(md, "namespace"));
	field(0, "Node", ctl_json_str2(pod, "spec", "nodeName"));
	field(0, "Start Time", ctl_json_str(st, "startTime"));
	labels(ctl_json_obj(md, "labels"));
	field(0, "Status", ctl_json_str(st, "phase"));
	if (ctl_json_str(st, "reason"))
		field(0, "Reason", ctl_json_str(st, "reason"));
	if (ctl_json_str(st, "message"))
		field(0, "Message", ctl_json_str(st, "message"));
	field(0, "IP", ctl_json_str(st, "podIP"));
	containers(pod);
	puts("Conditions:\n  Type    Status");
	cJSON_ArrayForEach(c, ctl_json_arr(st, "conditions"))
	{
		printf("  %-7s ", ctl_json_str(c, "type") ? ctl_json_str(c, "type") : "?");
		ctl_put_clean(stdout, ctl_json_str(c, "status") ? ctl_json_str(c, "status") : "?");
		putchar('\n');
	}
	events(evs);
}

static int run(struct ctl *ctl, const char *ns, const char *name)
{
	cJSON *req = cJSON_CreateObject(), *pod = NULL, *ev = NULL;
	int r;

	cJSON_AddStringToObject(req, "op", "get");
	cJSON_AddStringToObject(req, "kind", "Pod");
	cJSON_AddStringToObject(req, "namespace", ns);
	cJSON_AddStringToObject(req, "name", name);
	r = ctl_request(ctl, req, &pod, ctl->timeout_ms);
	cJSON_Delete(req);
	if (r)
		return r;
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "events");
	cJSON_AddStringToObject(req, "namespace", ns);
	cJSON_AddStringToObject(req, "name", name);
	r = ctl_request(ctl, req, &ev, ctl->timeout_ms);
	cJSON_Delete(req);
	if (!r)
		describe(ctl_json_obj(pod, "object"), ctl_json_arr(ev, "events"));
	cJSON_Delete(pod);
	cJSON_Delete(ev);
	return r;
}

int ctl_describe_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
					     CTL_COMMON_OPTIONS};
	const struct ctl_kind *k;
	const char *ns = "default", *name;
	int c, r;

	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		if (c == 'n')
			ns = optarg;
		else if ((r = ctl_option(ctl, c, argv, usage)) >= 0)
			return r;
	}
	if (argc - optind == 1 && strchr(argv[optind], '/')) {
		char *slash = strchr(argv[optind], '/');
		*slash = '\0';
		k = ctl_kind_lookup(argv[optind]);
		name = slash + 1;
	} else if (argc - optind == 2) {
		k = ctl_kind_lookup(argv[optind]);
		name = argv[optind + 1];
	} else {
		return ctl_usage_error(usage, "describe: KIND NAME expected");
	}
	if (!k || strcmp(k->kind, "Pod"))
		return ctl_usage_error(usage, "describe: only pods can be described");
	return run(ctl, ns, name);
}
