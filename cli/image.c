// SPDX-License-Identifier: MIT
/* svcctl image import NAME[:TAG] FILE | list | rm NAME[:TAG]...: the node's
 * image store.  The daemon reads the archive, so FILE is made absolute. */
#include "svcctl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "json.h"
#include "table.h"

static const char usage[] =
    "Usage: svcctl image import NAME[:TAG] FILE   a `docker save` or OCI image-layout archive\n"
    "       svcctl image list                     (or ls)\n"
    "       svcctl image rm NAME[:TAG]... [--force]\n";

static int import(struct ctl *ctl, const char *ref, const char *file)
{
	char path[PATH_MAX];
	cJSON *req = cJSON_CreateObject(), *resp;
	int r;

	if (!realpath(file, path)) {
		cJSON_Delete(req);
		return ctl_fail("image import: %s: %m", file);
	}
	cJSON_AddStringToObject(req, "op", "image.import");
	cJSON_AddStringToObject(req, "image", ref);
	cJSON_AddStringToObject(req, "path", path);
	/* An import takes as long as the archive needs, unless --timeout says. */
	r = ctl_request(ctl, req, &resp, ctl->timeout_set ? ctl->timeout_ms : 0);
	if (!r) {
		const char *id = ctl_json_str(resp, "id");
		printf("Imported %s (id %.12s)\n", ctl_json_str(resp, "image"), id ? id : "?");
	}
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return r;
}

static void size_cell(struct ctl_table *t, long long bytes)
{
	if (bytes >= 1000000000)
		ctl_table_cellf(t, "%.2fGB", (double)bytes / 1e9);
	else if (bytes >= 1000000)
		ctl_table_cellf(t, "%.1fMB", (double)bytes / 1e6);
	else
		ctl_table_cellf(t, "%.1fkB", (double)bytes / 1e3);
}

static void image_row(struct ctl_table *t, const cJSON *img)
{
	const char *ref = ctl_json_str(img, "image"), *id = ctl_json_str(img, "id");
	const char *colon = ref ? strrchr(ref, ':') : NULL;
	struct sbuf age = {0};

	if (colon) {
		ctl_table_cellf(t, "%.*s", (int)(colon - ref), ref);
		ctl_table_cell(t, colon + 1);
	} else {
		ctl_table_cell(t, ref ? ref : "<none>");
		ctl_table_cell(t, "<none>");
	}
	ctl_table_cellf(t, "%.12s", id ? id : "");
	ctl_fmt_age(&age, ctl_json_str(img, "imported"), time(NULL));
	ctl_table_cell(t, age.p ? age.p : "<unknown>");
	sbuf_free(&age);
	size_cell(t, ctl_json_int(img, "size", 0));
}

static int list(struct ctl *ctl)
{
	static const char *const head[] = {"REPOSITORY", "TAG", "IMAGE ID", "IMPORTED", "SIZE"};
	cJSON *req = cJSON_CreateObject(), *resp;
	const cJSON *img;
	struct ctl_table t;
	int r;

	cJSON_AddStringToObject(req, "op", "image.list");
	r = ctl_request(ctl, req, &resp, ctl->timeout_ms);
	cJSON_Delete(req);
	if (r)
		return r;
	ctl_table_init(&t, ARRAY_SIZE(head));
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		ctl_table_cell(&t, head[i]);
	cJSON_ArrayForEach(img, ctl_json_arr(resp, "images")) image_row(&t, img);
	r = ctl_table_flush(&t, stdout) ? CTL_ERROR : CTL_OK;
	ctl_table_free(&t);
	cJSON_Delete(resp);
	return r;
}

static int rm(struct ctl *ctl, char **refs, int n, bool force)
{
	int ret = CTL_OK;

	for (int i = 0; i < n; i++) {
		cJSON *req = cJSON_CreateObject(), *resp;
		cJSON_AddStringToObject(req, "op", "image.rm");
		cJSON_AddStringToObject(req, "image", refs[i]);
		cJSON_AddBoolToObject(req, "force", force);
		if (ctl_request(ctl, req, &resp, ctl->timeout_ms))
			ret = CTL_ERROR;
		else
			printf("Untagged: %s\n", refs[i]);
		cJSON_Delete(req);
		cJSON_Delete(resp);
	}
	return ret;
}

int ctl_image_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, CTL_COMMON_OPTIONS};
	bool force = false;
	const char *sub;
	int c, r;

	while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else if ((r = ctl_option(ctl, c, argv, usage)) >= 0)
			return r;
	}
	if (optind >= argc)
		return ctl_usage_error(usage, "image: a subcommand is required");
	sub = argv[optind++];
	/* options may follow the subcommand too */
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else if ((r = ctl_option(ctl, c, argv, usage)) >= 0)
			return r;
	}
	if (!strcmp(sub, "import")) {
		if (argc - optind != 2)
			return ctl_usage_error(usage, "image import: NAME[:TAG] and FILE expected");
		return import(ctl, argv[optind], argv[optind + 1]);
	}
	if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
		if (optind != argc)
			return ctl_usage_error(usage, "image list: no arguments expected");
		return list(ctl);
	}
	if (!strcmp(sub, "rm") || !strcmp(sub, "remove")) {
		if (optind >= argc)
			return ctl_usage_error(usage, "image rm: NAME[:TAG] expected");
		return rm(ctl, argv + optind, argc - optind, force);
	}
	return ctl_usage_error(usage, "image: unknown subcommand \"%s\"", sub);
}
