// SPDX-License-Identifier: MIT
/* svcctl delete -f FILE... | KIND NAME... | KIND/NAME...: one request per
 * file or name; a failure is reported and the rest still go ahead. */
#include "svcctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kinds.h"

static const char usage[] =
    "Usage: svcctl delete -f FILE|- [-f FILE...] [--ignore-not-found]\n"
    "       svcctl delete KIND NAME [NAME...] [-n NAMESPACE] [--ignore-not-found]\n"
    "       svcctl delete KIND/NAME [KIND/NAME...] [-n NAMESPACE] [--ignore-not-found]\n"
    "  -f, --filename FILE     delete the objects a manifest names; - reads stdin\n"
    "  -n, --namespace NS      namespace of the named objects (default \"default\")\n"
    "      --ignore-not-found  a missing object is not an error\n";

struct target {
	const struct ctl_kind *kind;
	const char *name;
};

struct delete_opts {
	char **files;
	size_t nfiles;
	struct target *targets;
	size_t ntargets;
	const char *ns;
	bool ignore_not_found;
};

static int report(const cJSON *resp, enum ctl_call r, const struct target *t, bool ignore)
{
	bool not_found = r == CALL_REFUSED && !strcmp(ctl_reason(resp), "NotFound");

	if (r == CALL_OK && t && !ctl_json_arr(resp, "results"))
		printf("%s \"%s\" deleted\n", t->kind->resource, t->name);
	else if (r == CALL_OK)
		ctl_print_results(resp, true);
	if (r == CALL_OK || (not_found && ignore))
		return CTL_OK;
	if (t)
		ctl_print_refusal_for(resp, t->kind, t->name);
	else
		ctl_print_refusal(resp, true);
	return CTL_ERROR;
}

static cJSON *name_request(const struct target *t, const char *ns, bool ignore)
{
	cJSON *req = cJSON_CreateObject();

	if (!cJSON_AddStringToObject(req, "op", "delete") ||
	    !cJSON_AddStringToObject(req, "kind", t->kind->kind) ||
	    !cJSON_AddStringToObject(req, "namespace", ns) ||
	    !cJSON_AddStringToObject(req, "name", t->name) ||
	    !cJSON_AddBoolToObject(req, "ignoreNotFound", ignore)) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

static cJSON *file_request(const struct ctl_source *s, bool ignore)
{
	cJSON *req = cJSON_CreateObject();

	if (!cJSON_AddStringToObject(req, "op", "delete") ||
	    !cJSON_AddStringToObject(req, "source", s->name) ||
	    !cJSON_AddStringToObject(req, "content", s->text ? s->text : "") ||
	    !cJSON_AddBoolToObject(req, "ignoreNotFound", ignore)) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/* Send one request and report it; `t` is the target of a delete by name.
 * Returns CTL_OK, CTL_ERROR, or -1 when the connection is gone. */
static int delete_one(struct ctl_client *c, cJSON *req, const struct target *t, bool ignore)
{
	cJSON *resp = NULL;
	enum ctl_call r;
	int ret;

	if (!req)
		return ctl_fail("delete: out of memory");
	r = ctl_call(c, req, &resp, NULL);
	ret = r == CALL_BROKEN ? -1 : report(resp, r, t, ignore);
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return ret;
}

static int delete_files(struct ctl_client *c, const struct delete_opts *o,
			const struct ctl_source *src)
{
	int ret = CTL_OK;

	for (size_t i = 0; i < o->nfiles; i++) {
		int r = delete_one(c, file_request(&src[i], o->ignore_not_found), NULL,
				   o->ignore_not_found);
		if (r < 0)
			return CTL_ERROR;
		ret |= r;
	}
	return ret;
}

static int delete_names(struct ctl_client *c, const struct delete_opts *o)
{
	int ret = CTL_OK;

	for (size_t i = 0; i < o->ntargets; i++) {
		const struct target *t = &o->targets[i];
		int r = delete_one(c, name_request(t, o->ns, o->ignore_not_found), t,
				   o->ignore_not_found);
		if (r < 0)
			return CTL_ERROR;
		ret |= r;
	}
	return ret;
}

static int run(struct ctl *ctl, const struct delete_opts *o)
{
	struct ctl_source *src = calloc(o->nfiles + 1, sizeof(*src));
	struct ctl_client c;
	int ret = CTL_ERROR;

	if (!src)
		return ctl_fail("out of memory");
	if (ctl_read_sources(o->files, o->nfiles, src))
		goto out;
	if (!ctl_open(ctl, &c, ctl->timeout_ms)) {
		ret = o->nfiles ? delete_files(&c, o, src) : delete_names(&c, o);
		ctl_client_close(&c);
	}
	ctl_free_sources(src, o->nfiles);
out:
	free(src);
	return ret;
}

static int unknown_kind(const char *kind)
{
	fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", kind);
	return CTL_ERROR;
}

/* KIND NAME... or KIND/NAME... */
static int parse_targets(struct delete_opts *o, int argc, char **argv)
{
	bool slashed = strchr(argv[0], '/') != NULL;
	const struct ctl_kind *kind = slashed ? NULL : ctl_kind_lookup(argv[0]);

	if (!slashed && !kind)
		return unknown_kind(argv[0]);
	if (!slashed && argc < 2)
		return ctl_usage_error(usage, "delete %s needs a NAME", argv[0]);
	for (int i = slashed ? 0 : 1; i < argc; i++) {
		char *slash = strchr(argv[i], '/');
		struct target *t = &o->targets[o->ntargets++];

		if (!slashed != !slash || (slash && (slash == argv[i] || !slash[1])))
			return ctl_usage_error(usage, "cannot mix KIND NAME and KIND/NAME: \"%s\"",
					       argv[i]);
		if (slash)
			*slash = '\0';
		t->kind = slash ? ctl_kind_lookup(argv[i]) : kind;
		t->name = slash ? slash + 1 : argv[i];
		if (!t->kind)
			return unknown_kind(argv[i]);
	}
	return -1;
}

static int parse(struct ctl *ctl, struct delete_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"filename", required_argument, NULL, 'f'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"ignore-not-found", no_argument, NULL, OPT_IGNORE_NOT_FOUND},
	    CTL_COMMON_OPTIONS,
	};
	int opt, ret = -1;

	while (ret < 0 && (opt = getopt_long(argc, argv, ":f:n:h", opts, NULL)) != -1) {
		if (opt == 'f')
			o->files[o->nfiles++] = optarg;
		else if (opt == 'n')
			o->ns = optarg;
		else if (opt == OPT_IGNORE_NOT_FOUND)
			o->ignore_not_found = true;
		else
			ret = ctl_option(ctl, opt, argv, usage);
	}
	if (ret >= 0)
		return ret;
	if (!*o->ns)
		return ctl_usage_error(usage, "-n needs a namespace");
	if (o->nfiles && optind < argc)
		return ctl_usage_error(usage, "give either -f FILE or KIND NAME, not both");
	if (!o->nfiles && optind >= argc)
		return ctl_usage_error(usage, "nothing to delete");
	return o->nfiles ? -1 : parse_targets(o, argc - optind, argv + optind);
}

int ctl_delete_main(struct ctl *ctl, int argc, char **argv)
{
	struct delete_opts o = {.ns = "default"};
	int ret;

	o.files = calloc((size_t)argc, sizeof(*o.files));
	o.targets = calloc((size_t)argc, sizeof(*o.targets));
	if (!o.files || !o.targets)
		ret = ctl_fail("out of memory");
	else if ((ret = parse(ctl, &o, argc, argv)) < 0)
		ret = run(ctl, &o);
	free(o.files);
	free(o.targets);
	return ret;
}
