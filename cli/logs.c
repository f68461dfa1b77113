// SPDX-License-Identifier: MIT
/* svcctl logs POD [-c CONTAINER] [-f] [--previous]: the daemon names the log
 * file of the container's current (or previous) run; svcctl reads it, and
 * with -f keeps reading across rotations and restarts until the pod goes. */
#include "svcctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static const char usage[] =
    "Usage: svcctl logs POD [-c CONTAINER] [-n NAMESPACE] [-f] [-p]\n"
    "  -c, --container NAME  the container (needed when the pod has several)\n"
    "  -n, --namespace NS    the pod's namespace (default \"default\")\n"
    "  -f, --follow          keep printing what the container writes\n"
    "  -p, --previous        the log of the run before the current one\n";

struct logs_opts {
	const char *pod, *container, *ns;
	bool follow, previous;
};

#define LOG_NOT_YET 3 /* log_path: the pod is there, its log not yet */

/* The file of the run: CTL_OK, LOG_NOT_YET, or CTL_ERROR (the pod is gone,
 * or svcd cannot be asked). */
static int log_path(struct ctl *ctl, const struct logs_opts *o, char *buf, size_t n, bool quiet)
{
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	struct ctl_client c;
	const char *path;
	int r = CTL_ERROR;

	cJSON_AddStringToObject(req, "op", "logs");
	cJSON_AddStringToObject(req, "namespace", o->ns);
	cJSON_AddStringToObject(req, "name", o->pod);
	if (o->container)
		cJSON_AddStringToObject(req, "container", o->container);
	cJSON_AddBoolToObject(req, "previous", o->previous);
	if (!ctl_open(ctl, &c, ctl->timeout_ms)) {
		enum ctl_call k = ctl_call(&c, req, &resp, NULL);
		ctl_client_close(&c);
		if (k == CALL_OK && (path = ctl_json_str(resp, "path")) && strlen(path) < n) {
			snprintf(buf, n, "%s", path);
			r = CTL_OK;
		} else if (k == CALL_REFUSED && quiet &&
			   !strcmp(ctl_reason(resp), "ServiceUnavailable")) {
			r = LOG_NOT_YET;
		} else if (k == CALL_REFUSED && !quiet) {
			ctl_print_refusal(resp, true);
		}
	}
	cJSON_Delete(req);
	cJSON_Delete(resp);
	return r;
}

static int copy_out(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
	fflush(stdout);
	return n < 0 ? -errno : 0;
}

/* Keep reading: a rotation renames the file (finish the old one, open the
 * new); a restart names a new file; the pod's deletion ends it. */
static int follow(struct ctl *ctl, const struct logs_opts *o, char *path, int fd)
{
	struct timespec tick = {0, 200 * 1000 * 1000};
	struct stat open_st, now_st;
	int polls = 0;

	fstat(fd, &open_st);
	for (;;) {
		if (copy_out(fd))
			break;
		nanosleep(&tick, NULL);
		if (stat(path, &now_st) == 0 && now_st.st_ino != open_st.st_ino) {
			copy_out(fd);
			close(fd);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				return CTL_OK;
			fstat(fd, &open_st);
			continue;
		}
		if (++polls % 5)
			continue;
		char next[PATH_MAX];
		int k = log_path(ctl, o, next, sizeof(next), true);
		if (k == LOG_NOT_YET)
			continue; /* restarting: its next log comes */
		if (k)
			break; /* the pod is gone */
		if (strcmp(next, path)) {
			copy_out(fd);
			close(fd);
			snprintf(path, PATH_MAX, "%s", next);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				return CTL_OK;
			fstat(fd, &open_st);
		}
	}
	close(fd);
	return CTL_OK;
}

static int logs(struct ctl *ctl, const struct logs_opts *o)
{
	char path[PATH_MAX], old[PATH_MAX + 4];
	int fd, r;

	if ((r = log_path(ctl, o, path, sizeof(path), false)))
		return r;
	/* The rotated part first, when there is one. */
	snprintf(old, sizeof(old), "%s.1", path);
	if ((fd = open(old, O_RDONLY | O_CLOEXEC)) >= 0) {
		copy_out(fd);
		close(fd);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ctl_fail("logs: %s: %m", path);
	if (o->follow && !o->previous)
		return follow(ctl, o, path, fd);
	r = copy_out(fd) ? CTL_ERROR : CTL_OK;
	close(fd);
	return r;
}

int ctl_logs_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"container", required_argument, NULL, 'c'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'f'},
	    {"previous", no_argument, NULL, 'p'},
	    CTL_COMMON_OPTIONS,
	};
	struct logs_opts o = {.ns = "default"};
	int c, r;

	while ((c = getopt_long(argc, argv, "c:n:fph", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.container = optarg;
			break;
		case 'n':
			o.ns = optarg;
			break;
		case 'f':
			o.follow = true;
			break;
		case 'p':
			o.previous = true;
			break;
		default:
			if ((r = ctl_option(ctl, c, argv, usage)) >= 0)
				return r;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error(usage, "logs: one POD expected");
	o.pod = argv[optind];
	if (!strncmp(o.pod, "pod/", 4) || !strncmp(o.pod, "pods/", 5))
		o.pod = strchr(o.pod, '/') + 1;
	return logs(ctl, &o);
}
