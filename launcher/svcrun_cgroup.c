// SPDX-License-Identifier: MIT
// The container's cgroup: v2 when the unified hierarchy (wherever it is
// mounted) offers every controller a limit asks for, else v1 with one
// directory per hierarchy.  Mount points come from /proc/self/mountinfo, so
// pure v2 (/sys/fs/cgroup), hybrid (/sys/fs/cgroup/unified) and v1 layouts
// all work.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svcrun.h"

enum { CG_MEMORY = 1, CG_CPU = 2, CG_PIDS = 4 };
static const char *const cg_names[SR_CG_MAX] = {"memory", "cpu", "pids"};

#define CFS_PERIOD_US 100000

struct cg_mounts {
	char v2[PATH_MAX];
	char v1[SR_CG_MAX][PATH_MAX]; /* indexed like cg_names */
};

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = 0;
}

/* True when the comma-separated OPTS holds WORD. */
static bool has_word(const char *opts, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = opts; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == 0 || p[n] == '\n'))
			return true;
	}
	return false;
}

/* One mountinfo line: "id parent maj:min root mountpoint opts ... - fstype src superopts". */
static void mountinfo_line(char *line, struct cg_mounts *m)
{
	char *sep = strstr(line, " - "), *f[5], *save = NULL, *fstype, *super;
	int i;

	if (!sep)
		return;
	*sep = 0;
	f[0] = strtok_r(line, " ", &save);
	for (i = 1; i < 5 && f[i - 1]; i++)
		f[i] = strtok_r(NULL, " ", &save);
	if (i < 5 || !f[4])
		return;
	save = NULL;
	fstype = strtok_r(sep + 3, " ", &save);
	strtok_r(NULL, " ", &save);
	super = strtok_r(NULL, " \n", &save);
	if (!fstype || !super)
		return;
	unescape(f[4]);
	if (!strcmp(fstype, "cgroup2") && !m->v2[0])
		snprintf(m->v2, sizeof(m->v2), "%s", f[4]);
	if (strcmp(fstype, "cgroup"))
		return;
	for (i = 0; i < SR_CG_MAX; i++)
		if (has_word(super, cg_names[i]) && !m->v1[i][0])
			snprintf(m->v1[i], sizeof(m->v1[i]), "%s", f[4]);
}

static int find_mounts(struct cg_mounts *m, struct sr_err *e)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return sr_fail(e, "cgroup", errno, "/proc/self/mountinfo");
	memset(m, 0, sizeof(*m));
	while (getline(&line, &cap, f) > 0)
		mountinfo_line(line, m);
	free(line);
	fclose(f);
	return 0;
}

static int want_of(const struct sr_opts *o)
{
	return (o->memory >= 0 ? CG_MEMORY : 0) | (o->cpu >= 0 ? CG_CPU : 0) |
	       (o->pids >= 0 ? CG_PIDS : 0);
}

static int write_file(const char *dir, const char *name, const char *val, struct sr_err *e)
{
	char path[PATH_MAX];
	ssize_t n, len = (ssize_t)strlen(val);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return sr_fail(e, "cgroup", errno, "%s", path);
	n = write(fd, val, (size_t)len);
	if (n != len) {
		int err = n < 0 ? errno : EIO;

		close(fd);
		return sr_fail(e, "cgroup", err, "writing \"%s\" to %s", val, path);
	}
	close(fd);
	return 0;
}

/* v2: every controller of WANT listed in the root's cgroup.controllers. */
static int v2_has(const char *root, int want)
{
	char path[PATH_MAX], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = 0;
	for (char *save, *p = strtok_r(buf, " \n", &save); p; p = strtok_r(NULL, " \n", &save))
		for (int i = 0; i < SR_CG_MAX; i++)
			if (!strcmp(p, cg_names[i]))
				want &= ~(1 << i);
	return want == 0;
}

/* mkdir -p ROOT/REL (an existing directory is reused: the name is ours); with
 * CONTROL, enable it in every ancestor's cgroup.subtree_control on the way
 * down (v2).  The leaf is appended to cg->dirs, to be removed at the end. */
static int make_path(const char *root, const char *rel, const char *control, struct sr_cgroup *cg,
		     struct sr_err *e)
{
	char path[PATH_MAX];
	size_t len;
	int n = snprintf(path, sizeof(path), "%s/%s", root, rel);

	if (n < 0 || (size_t)n >= sizeof(path))
		return sr_fail(e, "cgroup", ENAMETOOLONG, "%s/%s", root, rel);
	for (len = strlen(root); len < (size_t)n;) {
		char *slash = strchr(path + len + 1, '/');

		if (control) {
			path[len] = 0;
			if (write_file(path, "cgroup.subtree_control", control, e))
				return -1;
			path[len] = '/';
		}
		len = slash ? (size_t)(slash - path) : (size_t)n;
		path[len] = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return sr_fail(e, "cgroup", errno, "mkdir %s", path);
		if (slash)
			*slash = '/';
	}
	cg->dirs[cg->n] = strdup(path);
	return cg->dirs[cg->n++] ? 0 : sr_fail(e, "cgroup", ENOMEM, NULL);
}

static int set_limits(const char *dir, int v2, int which, const struct sr_opts *o, struct sr_err *e)
{
	char val[64];
	int64_t quota = o->cpu * (CFS_PERIOD_US / 1000);

	if (quota < 1000) /* the kernel's minimum quota, 1 ms */
		quota = 1000;
	if ((which & CG_MEMORY) && o->memory >= 0) {
		snprintf(val, sizeof(val), "%lld", (long long)o->memory);
		if (write_file(dir, v2 ? "memory.max" : "memory.limit_in_bytes", val, e))
			return -1;
	}
	if ((which & CG_PIDS) && o->pids >= 0) {
		snprintf(val, sizeof(val), "%lld", (long long)o->pids);
		if (write_file(dir, "pids.max", val, e))
			return -1;
	}
	if (!(which & CG_CPU) || o->cpu < 0)
		return 0;
	if (v2) {
		snprintf(val, sizeof(val), "%lld %d", (long long)quota, CFS_PERIOD_US);
		return write_file(dir, "cpu.max", val, e) ? -1 : 0;
	}
	snprintf(val, sizeof(val), "%d", CFS_PERIOD_US);
	if (write_file(dir, "cpu.cfs_period_us", val, e))
		return -1;
	snprintf(val, sizeof(val), "%lld", (long long)quota);
	return write_file(dir, "cpu.cfs_quota_us", val, e) ? -1 : 0;
}

static int create_v2(const struct sr_opts *o, const char *root, int want, struct sr_cgroup *cg,
		     struct sr_err *e)
{
	char control[64] = "";
	const char *dir;

	for (int i = 0; i < SR_CG_MAX; i++)
		if (want & (1 << i))
			snprintf(control + strlen(control), sizeof(control) - strlen(control),
				 "%s+%s", control[0] ? " " : "", cg_names[i]);
	cg->mode = SR_CG_V2;
	if (make_path(root, o->cgroup, want ? control : NULL, cg, e))
		return -1;
	dir = cg->dirs[0];
	cg->v2_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->v2_fd < 0)
		return sr_fail(e, "cgroup", errno, "%s", dir);
	return set_limits(dir, 1, want, o, e);
}

static int create_v1(const struct sr_opts *o, const struct cg_mounts *m, int want,
		     struct sr_cgroup *cg, struct sr_err *e)
{
	/* memory and pids always: they count what the container holds */
	int use = want | CG_MEMORY | CG_PIDS;

	cg->mode = SR_CG_V1;
	for (int i = 0; i < SR_CG_MAX; i++) {
		if (!(use & (1 << i)))
			continue;
		if (!m->v1[i][0]) {
			if (!(want & (1 << i)))
				continue;
			return sr_fail(e, "cgroup", 0, "no %s controller (v1 or v2)", cg_names[i]);
		}
		if (make_path(m->v1[i], o->cgroup, NULL, cg, e) ||
		    set_limits(cg->dirs[cg->n - 1], 0, 1 << i, o, e))
			return -1;
	}
	return cg->n ? 0 : sr_fail(e, "cgroup", 0, "no cgroup hierarchy mounted");
}

int sr_cgroup_create(const struct sr_opts *o, struct sr_cgroup *cg, struct sr_err *e)
{
	struct cg_mounts m;
	int want = want_of(o), rc;

	*cg = (struct sr_cgroup){.v2_fd = -1};
	if (!o->cgroup)
		return 0;
	if (find_mounts(&m, e))
		return -1;
	if (m.v2[0] && v2_has(m.v2, want))
		rc = create_v2(o, m.v2, want, cg, e);
	else
		rc = create_v1(o, &m, want, cg, e);
	if (rc)
		sr_cgroup_remove(cg);
	return rc;
}

int sr_cgroup_place(const struct sr_cgroup *cg, pid_t pid, struct sr_err *e)
{
	char val[32];

	if (cg->mode != SR_CG_V1)
		return 0;
	snprintf(val, sizeof(val), "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++)
		if (write_file(cg->dirs[i], "cgroup.procs", val, e))
			return -1;
	return 0;
}

void sr_cgroup_remove(struct sr_cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		/* v1 may report EBUSY for a moment after the last task exited */
		for (int try = 0; rmdir(cg->dirs[i]) < 0 && errno == EBUSY && try < 200; try++)
			nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		free(cg->dirs[i]);
	}
	if (cg->v2_fd >= 0)
		close(cg->v2_fd);
	*cg = (struct sr_cgroup){.v2_fd = -1};
}
