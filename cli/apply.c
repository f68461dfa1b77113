// SPDX-License-Identifier: MIT
/* svcctl apply -f FILE|- [-f FILE...] [--wait]: one request per file, in
 * order, on one connection; the first refusal stops the rest. */
#include "svcctl.h"

#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "Usage: svcctl apply -f FILE|- [-f FILE...] [--wait] [--timeout SECONDS]\n"
    "  -f, --filename FILE  manifest (JSON or YAML, several documents); - reads stdin\n"
    "      --wait           return once the data plane has programmed the change\n"
    "                       (waits up to --timeout, 60 s unless given)\n";

static enum ctl_call call(struct ctl_client *c, cJSON *req, cJSON **resp, const char *name,
			  bool wait)
{
	char what[256];

	snprintf(what, sizeof(what), "apply %s%s", name,
		 wait ? " (waiting for the data plane)" : "");
	return ctl_call(c, req, resp, what);
}

static int apply_one(struct ctl_client *c, const struct ctl_source *s, bool wait)
{
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	enum ctl_call r = CALL_BROKEN;

	if (!cJSON_AddStringToObject(req, "op", "apply") ||
	    !cJSON_AddStringToObject(req, "source", s->name) ||
	    !cJSON_AddStringToObject(req, "content", s->text ? s->text : "") ||
	    !cJSON_AddBoolToObject(req, "wait", wait))
		ctl_fail("apply %s: out of memory", s->name);
	else
		r = call(c, req, &resp, s->name, wait);
	if (r == CALL_OK)
		ctl_print_results(resp, false);
	else if (r == CALL_REFUSED)
		ctl_print_refusal(resp, false);
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return r == CALL_OK ? CTL_OK : CTL_ERROR;
}

static int apply_all(struct ctl *ctl, char **files, size_t n, bool wait)
{
	struct ctl_source *src = calloc(n, sizeof(*src));
	struct ctl_client c;
	int timeout = wait && !ctl->timeout_set ? CTL_WAIT_TIMEOUT_MS : ctl->timeout_ms;
	int ret = CTL_ERROR;

	if (!src)
		return ctl_fail("out of memory");
	if (ctl_read_sources(files, n, src))
		goto out;
	if (ctl_open(ctl, &c, timeout))
		goto free_src;
	ret = CTL_OK;
	for (size_t i = 0; i < n && ret == CTL_OK; i++)
		ret = apply_one(&c, &src[i], wait);
	ctl_client_close(&c);
free_src:
	ctl_free_sources(src, n);
out:
	free(src);
	return ret;
}

int ctl_apply_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"filename", required_argument, NULL, 'f'},
	    {"wait", no_argument, NULL, OPT_WAIT},
	    CTL_COMMON_OPTIONS,
	};
	char **files = calloc((size_t)argc, sizeof(*files));
	size_t n = 0;
	bool wait = false;
	int opt, ret = -1;

	if (!files)
		return ctl_fail("out of memory");
	while (ret < 0 && (opt = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
		if (opt == 'f')
			files[n++] = optarg;
		else if (opt == OPT_WAIT)
			wait = true;
		else
			ret = ctl_option(ctl, opt, argv, usage);
	}
	if (ret < 0 && optind < argc)
		ret = ctl_usage_error(usage, "unexpected argument \"%s\"", argv[optind]);
	else if (ret < 0 && !n)
		ret = ctl_usage_error(usage, "nothing to apply: give -f FILE");
	if (ret < 0)
		ret = apply_all(ctl, files, n, wait);
	free(files);
	return ret;
}
