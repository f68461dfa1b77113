// SPDX-License-Identifier: MIT
/* svcctl status [-o json|yaml]: is the data plane programmed as desired? */
#include "svcctl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "json.h"

static const char usage[] = "Usage: svcctl status [-o json|yaml]\n"
			    "  -o, --output FORMAT  json or yaml (default: a summary)\n";

#define LABEL_WIDTH 20

/* "Name:" padded to LABEL_WIDTH columns; `name` may come from the daemon. */
static void label(const char *name, bool capitalize)
{
	size_t n = strlen(name);

	if (capitalize && *name >= 'a' && *name <= 'z') {
		putchar(*name - 'a' + 'A');
		name++;
	}
	ctl_put_clean(stdout, name);
	printf(":%*s", n + 1 < LABEL_WIDTH ? (int)(LABEL_WIDTH - n - 1) : 1, "");
}

static void print_synced(const cJSON *st)
{
	long long want = ctl_json_int(st, "desiredGeneration", -1);
	long long have = ctl_json_int(st, "appliedGeneration", -1);

	label("Synced", false);
	if (ctl_json_bool(st, "synced", false))
		printf("yes (generation %lld)\n", have);
	else
		printf("no (applied generation %lld, desired %lld)\n", have, want);
}

static void print_duration(double s)
{
	double ms = s * 1000;

	if (!isfinite(s) || s < 0)
		fputs("?", stdout);
	else if (ms < 0.1)
		printf("%.1f µs", ms * 1000);
	else if (ms < 10)
		printf("%.1f ms", ms);
	else if (ms < 1000)
		printf("%.0f ms", ms);
	else
		printf("%.2f s", s);
}

/* "2026-11-26T19:40:00Z (5m ago)" */
static void print_time(const char *name, const char *when)
{
	struct sbuf age = {0};

	ctl_fmt_age(&age, when, time(NULL));
	label(name, false);
	ctl_put_clean(stdout, when);
	printf(" (%s ago)\n", age.p ? age.p : "?");
	sbuf_free(&age);
}

static void print_last_sync(const cJSON *st)
{
	const cJSON *ls = ctl_json_obj(st, "lastSync");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(ls, "durationSeconds");
	const char *err = ctl_json_str(ls, "error"), *when = ctl_json_str(ls, "time");
	long long changed = ctl_json_int(ls, "services", -1);

	label("Last sync", false);
	if (!ls) {
		puts("never");
		return;
	}
	print_duration(cJSON_IsNumber(d) ? d->valuedouble : -1);
	printf(", %s", ctl_json_bool(ls, "full", false) ? "full" : "partial");
	if (changed >= 0)
		printf(" (%lld service%s)", changed, changed == 1 ? "" : "s");
	fputs(err ? ", failed: " : ", ok", stdout);
	ctl_put_clean(stdout, err ? err : "");
	putchar('\n');
	if (when)
		print_time("Last sync at", when);
}

static void print_syncs(const cJSON *st)
{
	long long syncs = ctl_json_int(st, "syncs", -1);

	if (syncs < 0)
		return;
	label("Syncs", false);
	printf("%lld (%lld failed)\n", syncs, ctl_json_int(st, "syncFailures", 0));
}

/* "services": 3 -> "Services:           3", in the daemon's order. */
static void print_counts(const cJSON *st)
{
	const cJSON *c;
	long long n;

	cJSON_ArrayForEach(c, ctl_json_obj(st, "counts"))
	{
		if (c->string && *c->string && ctl_json_to_int(c, &n)) {
			label(c->string, true);
			printf("%lld\n", n);
		}
	}
}

/* Files in the state directory that could not be loaded. */
static void print_store_errors(const cJSON *st)
{
	const cJSON *errs = ctl_json_arr(st, "storeErrors"), *e;

	if (!errs || !errs->child)
		return;
	label("Store errors", false);
	printf("%d\n", cJSON_GetArraySize(errs));
	cJSON_ArrayForEach(e, errs)
	{
		const char *file = ctl_json_str(e, "file"), *msg = ctl_json_str(e, "error");
		fputs("  ", stdout);
		ctl_put_clean(stdout, file ? file : "?");
		fputs(": ", stdout);
		ctl_put_clean(stdout, msg ? msg : "?");
		putchar('\n');
	}
}

static void print_string(const cJSON *st, const char *key, const char *name)
{
	const char *v = ctl_json_str(st, key);

	if (!v)
		return;
	label(name, false);
	ctl_put_clean(stdout, v);
	putchar('\n');
}

static void print_human(const cJSON *st)
{
	const char *started = ctl_json_str(st, "startTime");
	long long heap = ctl_json_int(st, "heapBytes", -1);

	print_string(st, "mode", "Mode");
	print_synced(st);
	print_last_sync(st);
	print_syncs(st);
	print_counts(st);
	print_string(st, "stateDir", "State directory");
	print_store_errors(st);
	if (started)
		print_time("Started", started);
	if (heap >= 0) {
		label("Heap in use", false);
		printf("%.1f MiB\n", (double)heap / (1 << 20));
	}
}

static int status(struct ctl *ctl, enum ctl_output out)
{
	struct ctl_client c;
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	enum ctl_call r;
	int ret = CTL_ERROR;

	if (!cJSON_AddStringToObject(req, "op", "status"))
		ret = ctl_fail("status: out of memory");
	else if (!ctl_open(ctl, &c, ctl->timeout_ms)) {
		r = ctl_call(&c, req, &resp, NULL);
		ctl_client_close(&c);
		if (r == CALL_REFUSED)
			ctl_print_refusal(resp, false);
		if (r == CALL_OK && out == OUT_TABLE) {
			print_human(resp);
			ret = CTL_OK;
		} else if (r == CALL_OK) {
			cJSON_DeleteItemFromObjectCaseSensitive(resp, "ok");
			ret = ctl_print_value(resp, out, false);
		}
	}
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return ret;
}

int ctl_status_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    CTL_COMMON_OPTIONS,
	};
	enum ctl_output out = OUT_TABLE;
	int opt, ret = -1;

	while (ret < 0 && (opt = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		if (opt != 'o')
			ret = ctl_option(ctl, opt, argv, usage);
		else if (ctl_parse_output(optarg, 1u << OUT_JSON | 1u << OUT_YAML, &out))
			ret = ctl_usage_error(usage, "unknown output format \"%s\"", optarg);
	}
	if (ret >= 0)
		return ret;
	if (optind < argc)
		return ctl_usage_error(usage, "unexpected argument \"%s\"", argv[optind]);
	return status(ctl, out);
}
