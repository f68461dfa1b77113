// SPDX-License-Identifier: MIT
// svcrun: the container launcher's front end (docs/svcrun.md).  Parses the
// command line, then hands over to the shim (svcrun_shim.c), which reports
// the outcome: the sync line, the state file and one line on stderr.
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "svcrun.h"

#define DEFAULT_LOG_MAX (10 * 1024 * 1024)

int sr_fail(struct sr_err *e, const char *step, int err, const char *fmt, ...)
{
	size_t n = 0;

	snprintf(e->step, sizeof(e->step), "%s", step);
	e->msg[0] = 0;
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		n = strlen(e->msg);
	}
	if (err)
		snprintf(e->msg + n, sizeof(e->msg) - n, "%s%s", n ? ": " : "", strerror(err));
	if (!e->code)
		e->code = SR_EXIT_FAIL;
	return err ? -err : -EINVAL;
}

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};
#define N_CAPS (sizeof(cap_names) / sizeof(cap_names[0]))

static int cap_bit(const char *name, size_t len)
{
	if (len > 4 && !strncasecmp(name, "CAP_", 4)) {
		name += 4;
		len -= 4;
	}
	for (size_t i = 0; i < N_CAPS; i++)
		if (strlen(cap_names[i]) == len && !strncasecmp(cap_names[i], name, len))
			return (int)i;
	return -1;
}

int sr_caps_parse(const char *list, uint64_t *mask, struct sr_err *e)
{
	*mask = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		int bit = cap_bit(p, len);

		if (len == 3 && !strncasecmp(p, "ALL", 3))
			*mask = (1ULL << N_CAPS) - 1;
		else if (bit < 0)
			return sr_fail(e, "args", 0, "--caps: unknown capability \"%.*s\"",
				       (int)len, p);
		else
			*mask |= 1ULL << bit;
		p += len + (p[len] == ',');
	}
	return 0;
}

static int parse_num(const char *opt, const char *s, int64_t min, int64_t *out, struct sr_err *e)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min)
		return sr_fail(e, "args", 0, "%s: bad number \"%s\"", opt, s);
	*out = v;
	return 0;
}

static int push(void *arr, size_t *n, size_t size)
{
	void **a = arr;
	void *p = realloc(*a, (*n + 1) * size);

	if (!p)
		return -ENOMEM;
	*a = p;
	(*n)++;
	return 0;
}

/* SRC:DST[:ro], both absolute. */
static int parse_bind(struct sr_opts *o, char *arg, struct sr_err *e)
{
	char *dst = strchr(arg, ':'), *mode;
	struct sr_bind *b;

	if (!dst || arg[0] != '/' || dst[1] != '/')
		return sr_fail(e, "args", 0, "--bind %s: expected /SRC:/DST[:ro]", arg);
	*dst++ = 0;
	mode = strchr(dst, ':');
	if (mode) {
		*mode++ = 0;
		if (strcmp(mode, "ro") && strcmp(mode, "rw"))
			return sr_fail(e, "args", 0, "--bind: bad mode \"%s\" (ro or rw)", mode);
	}
	if (push(&o->binds, &o->n_binds, sizeof(*o->binds)))
		return sr_fail(e, "args", ENOMEM, NULL);
	b = &o->binds[o->n_binds - 1];
	*b = (struct sr_bind){.src = arg, .dst = dst, .ro = mode && !strcmp(mode, "ro")};
	return 0;
}

enum {
	OPT_ROOTFS = 256,
	OPT_SCRATCH,
	OPT_NETNS,
	OPT_HOSTNAME,
	OPT_CWD,
	OPT_USER,
	OPT_BIND,
	OPT_CGROUP,
	OPT_MEMORY,
	OPT_CPU,
	OPT_PIDS,
	OPT_LOG,
	OPT_LOG_MAX,
	OPT_STATE,
	OPT_SYNC_FD,
	OPT_DETACH,
	OPT_CAPS,
};

static const struct option long_opts[] = {
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"scratch", required_argument, NULL, OPT_SCRATCH},
    {"netns", required_argument, NULL, OPT_NETNS},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"env", required_argument, NULL, 'e'},
    {"cwd", required_argument, NULL, OPT_CWD},
    {"user", required_argument, NULL, OPT_USER},
    {"bind", required_argument, NULL, OPT_BIND},
    {"cgroup", required_argument, NULL, OPT_CGROUP},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-max", required_argument, NULL, OPT_LOG_MAX},
    {"state", required_argument, NULL, OPT_STATE},
    {"sync-fd", required_argument, NULL, OPT_SYNC_FD},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"caps", required_argument, NULL, OPT_CAPS},
    {"help", no_argument, NULL, 'h'},
    {0},
};

static int parse_one(struct sr_opts *o, int c, char *arg, struct sr_err *e)
{
	int64_t fd;

	switch (c) {
	case OPT_ROOTFS:
		o->rootfs = arg;
		return 0;
	case OPT_SCRATCH:
		o->scratch = arg;
		return 0;
	case OPT_NETNS:
		o->netns = arg;
		return 0;
	case OPT_HOSTNAME:
		o->hostname = arg;
		return 0;
	case 'e':
		if (!strchr(arg, '=') || arg[0] == '=')
			return sr_fail(e, "args", 0, "--env %s: expected K=V", arg);
		if (push(&o->env, &o->n_env, sizeof(*o->env)))
			return sr_fail(e, "args", ENOMEM, NULL);
		o->env[o->n_env - 1] = arg;
		return 0;
	case OPT_CWD:
		o->cwd = arg;
		return arg[0] == '/' ? 0 : sr_fail(e, "args", 0, "--cwd %s: not absolute", arg);
	case OPT_USER:
		o->user = arg;
		return 0;
	case OPT_BIND:
		return parse_bind(o, arg, e);
	case OPT_CGROUP:
		o->cgroup = arg;
		return 0;
	case OPT_MEMORY:
		return parse_num("--memory", arg, 1, &o->memory, e);
	case OPT_CPU:
		return parse_num("--cpu", arg, 1, &o->cpu, e);
	case OPT_PIDS:
		return parse_num("--pids", arg, 1, &o->pids, e);
	case OPT_LOG:
		o->log = arg;
		return 0;
	case OPT_LOG_MAX:
		return parse_num("--log-max", arg, 0, &o->log_max, e);
	case OPT_STATE:
		o->state = arg;
		return 0;
	case OPT_SYNC_FD:
		if (parse_num("--sync-fd", arg, 0, &fd, e) || fd > 65535)
			return sr_fail(e, "args", 0, "--sync-fd: bad descriptor \"%s\"", arg);
		o->sync_fd = (int)fd;
		return 0;
	case OPT_DETACH:
		o->detach = true;
		return 0;
	case OPT_CAPS:
		return sr_caps_parse(arg, &o->caps, e);
	default:
		return sr_fail(e, "args", 0, "bad option (see svcrun --help)");
	}
}

/* Paths that go into the overlay's option string cannot hold its separators. */
static int check_paths(const struct sr_opts *o, struct sr_err *e)
{
	if (!o->rootfs)
		return sr_fail(e, "args", 0, "--rootfs is required");
	if (!o->argv[0])
		return sr_fail(e, "args", 0, "no command given");
	if (o->scratch && (strpbrk(o->rootfs, ",:\\") || strpbrk(o->scratch, ",:\\")))
		return sr_fail(e, "args", 0,
			       "--rootfs and --scratch cannot contain ',', ':' or '\\'");
	if (!o->cgroup && (o->memory >= 0 || o->cpu >= 0 || o->pids >= 0))
		return sr_fail(e, "args", 0, "--memory, --cpu and --pids need --cgroup");
	if (o->cgroup && (o->cgroup[0] == '/' || strstr(o->cgroup, "..")))
		return sr_fail(e, "args", 0, "--cgroup %s: must be relative, without ..",
			       o->cgroup);
	if (o->sync_fd >= 0 && o->sync_fd <= 2)
		return sr_fail(e, "args", 0, "--sync-fd: %d is stdin, stdout or stderr",
			       o->sync_fd);
	return 0;
}

int sr_parse(int argc, char **argv, struct sr_opts *o, struct sr_err *e)
{
	int c, rc = 0;

	*o = (struct sr_opts){.memory = -1,
			      .cpu = -1,
			      .pids = -1,
			      .log_max = DEFAULT_LOG_MAX,
			      .caps = SR_CAPS_DOCKER,
			      .sync_fd = -1};
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, "+e:h", long_opts, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (c == '?')
			return sr_fail(e, "args", 0, "bad option %s (see svcrun --help)",
				       argv[optind - 1]);
		rc = parse_one(o, c, optarg, e);
	}
	o->argv = argv + optind;
	return rc ? rc : check_paths(o, e);
}

void sr_opts_free(struct sr_opts *o)
{
	free(o->env);
	free(o->binds);
}

static void usage(FILE *f)
{
	fputs(
	    "usage: svcrun run --rootfs DIR [--scratch DIR] [--netns PATH|host] [--hostname NAME]\n"
	    "        [-e K=V]... [--cwd DIR] [--user USER[:GROUP]] [--bind SRC:DST[:ro]]...\n"
	    "        [--cgroup PATH [--memory BYTES] [--cpu MILLICPUS] [--pids N]]\n"
	    "        [--log FILE [--log-max BYTES]] [--state FILE] [--sync-fd N] [--detach]\n"
	    "        [--caps LIST] -- COMMAND [ARG...]\n"
	    "Starts COMMAND in a container; see docs/svcrun.md.\n",
	    f);
}

int main(int argc, char **argv)
{
	struct sr_opts o;
	struct sr_err e = {0};
	int rc;

	if (argc < 2 || strcmp(argv[1], "run")) {
		bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		usage(help ? stdout : stderr);
		return help ? 0 : SR_EXIT_FAIL;
	}
	rc = sr_parse(argc - 1, argv + 1, &o, &e);
	if (rc > 0) {
		usage(stdout);
		sr_opts_free(&o);
		return 0;
	}
	if (rc < 0) {
		rc = sr_report_early(&o, &e);
		sr_opts_free(&o);
		return rc;
	}
	o.self_start = argv[0];
	o.self_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	rc = sr_shim_run(&o);
	sr_opts_free(&o);
	return rc;
}
