// SPDX-License-Identifier: MIT
/* Containers, through the bundled launcher (docs/svcrun.md).  svcd spawns
 * `svcrun run` in its own session; svcrun is the shim that outlives svcd.
 * A sync pipe says whether the command runs; a pidfd on the shim says when
 * it ended; the shim's state file says how, also to a restarted svcd. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "image.h"
#include "podnet.h"
#include "pods_int.h"

extern char **environ;

#define STATE_MAX 4096

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

const char *ctr_dir(const struct ctr_rt *c, char *buf, size_t n)
{
	snprintf(buf, n, "%s/containers/%s", c->pod->dir, c->name);
	return buf;
}

void ctr_init(struct ctr_rt *c, struct pod_rt *p, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->pod = p;
	c->name = strdup(name);
	c->state = CS_WAITING;
	snprintf(c->reason, sizeof(c->reason), "ContainerCreating");
	c->sync_fd = c->pidfd = -1;
}

static void ctr_unwatch(struct ctr_rt *c)
{
	struct ev_loop *loop = c->pod->pods->loop;

	ev_io_stop(loop, &c->sync_io);
	ev_io_stop(loop, &c->pid_io);
	if (c->sync_fd >= 0)
		close(c->sync_fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->sync_fd = c->pidfd = -1;
	sbuf_free(&c->sync_buf);
}

void ctr_free(struct ctr_rt *c)
{
	struct ev_loop *loop = c->pod->pods->loop;

	ctr_unwatch(c);
	ev_timer_stop(loop, &c->restart_timer);
	ev_timer_stop(loop, &c->kill_timer);
	free(c->name);
}

bool ctr_alive(const struct ctr_rt *c)
{
	return c->pidfd >= 0;
}

/* --- the restart count and last state, kept across svcd restarts ---------- */

static void put_run(struct sbuf *b, const char *pfx, const struct ctr_run *r)
{
	if (!r->set)
		return;
	sbuf_addf(b, "%s_reason=%s\n%s_exit=%d\n%s_signal=%d\n%s_started=%.6f\n%s_finished=%.6f\n",
		  pfx, r->reason, pfx, r->exit_code, pfx, r->signal, pfx, r->started, pfx,
		  r->finished);
	sbuf_addf(b, "%s_message=", pfx);
	for (const char *s = r->msg; *s; s++)
		sbuf_add(b, *s == '\n' ? " " : s, 1);
	sbuf_adds(b, "\n");
}

int ctr_save(struct ctr_rt *c)
{
	struct svc_err e = {0};
	struct sbuf b = {0};
	char dir[PATH_MAX];
	int fd, r;

	sbuf_addf(&b, "restarts=%d\nbackoff=%.3f\ndone=%d\n", c->restarts, c->backoff, c->done);
	put_run(&b, "last", &c->last);
	fd = open(ctr_dir(c, dir, sizeof(dir)), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		sbuf_free(&b);
		return -errno;
	}
	r = file_replace(fd, "status", b.p, b.len, 0600, false, &e); /* see pod_files */
	close(fd);
	sbuf_free(&b);
	if (r)
		svc_log(SVC_LOG_WARN, "pod %s: container %s: %s", c->pod->key, c->name, e.msg);
	return r;
}

/* Bounds-checked key=value lines: calls fn for each well-formed one. */
static void each_kv(char *text, void (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	for (char *line = text, *next; line && *line; line = next) {
		char *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		eq = strchr(line, '=');
		if (!eq || eq == line)
			continue;
		*eq = '\0';
		fn(ctx, line, eq + 1);
	}
}

static void load_kv(void *ctx, const char *k, const char *v)
{
	struct ctr_rt *c = ctx;
	struct ctr_run *r = &c->last;

	if (!strcmp(k, "restarts"))
		c->restarts = atoi(v) < 0 ? 0 : atoi(v) > 1000000 ? 1000000 : atoi(v);
	else if (!strcmp(k, "backoff"))
		c->backoff = strtod(v, NULL);
	else if (!strcmp(k, "done"))
		c->done = atoi(v) != 0;
	else if (!strcmp(k, "last_reason"))
		r->set = true, snprintf(r->reason, sizeof(r->reason), "%s", v);
	else if (!strcmp(k, "last_exit"))
		r->exit_code = atoi(v);
	else if (!strcmp(k, "last_signal"))
		r->signal = atoi(v);
	else if (!strcmp(k, "last_started"))
		r->started = strtod(v, NULL);
	else if (!strcmp(k, "last_finished"))
		r->finished = strtod(v, NULL);
	else if (!strcmp(k, "last_message"))
		snprintf(r->msg, sizeof(r->msg), "%s", v);
}

void ctr_load(struct ctr_rt *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 8];
	char *text;

	snprintf(path, sizeof(path), "%s/status", ctr_dir(c, dir, sizeof(dir)));
	if (file_read_all(AT_FDCWD, path, STATE_MAX, &text, NULL))
		return;
	each_kv(text, load_kv, c);
	free(text);
	if (!(c->backoff >= 0 && c->backoff <= c->pod->pods->cfg.backoff_max)) /* NaN too */
		c->backoff = c->pod->pods->cfg.backoff_max;
}

/* --- the launcher's state file ------------------------------------------------ */

struct lstate {
	pid_t shim, pid;
	unsigned long long shim_start;
	char state[16];
	int exit_code, signal;
	bool has_exit;
	double started, finished;
	char error[512];
};

static void lstate_kv(void *ctx, const char *k, const char *v)
{
	struct lstate *s = ctx;

	if (!strcmp(k, "shim_pid"))
		s->shim = (pid_t)atoi(v);
	else if (!strcmp(k, "shim_start"))
		s->shim_start = strtoull(v, NULL, 10);
	else if (!strcmp(k, "pid"))
		s->pid = (pid_t)atoi(v);
	else if (!strcmp(k, "state"))
		snprintf(s->state, sizeof(s->state), "%s", v);
	else if (!strcmp(k, "exit_code"))
		s->exit_code = atoi(v), s->has_exit = true;
	else if (!strcmp(k, "signal"))
		s->signal = atoi(v);
	else if (!strcmp(k, "started"))
		s->started = strtod(v, NULL);
	else if (!strcmp(k, "finished"))
		s->finished = strtod(v, NULL);
	else if (!strcmp(k, "error"))
		snprintf(s->error, sizeof(s->error), "%s", v);
}

static int lstate_read(const char *path, struct lstate *s)
{
	char *text;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = file_read_all(AT_FDCWD, path, STATE_MAX, &text, NULL)))
		return r;
	each_kv(text, lstate_kv, s);
	free(text);
	return s->state[0] ? 0 : -EINVAL;
}

static const char *lstate_path(const struct ctr_rt *c, char *buf, size_t n)
{
	char dir[PATH_MAX];

	snprintf(buf, n, "%s/state", ctr_dir(c, dir, sizeof(dir)));
	return buf;
}

/* Field 22 of /proc/<pid>/stat: the process's start time, which tells a
 * live shim from an unrelated process that took its pid. */
static unsigned long long proc_start(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_all(AT_FDCWD, path, 4096, &text, NULL))
		return 0;
	p = strrchr(text, ')');
	for (int field = 2; p && *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (p)
		v = strtoull(p, NULL, 10);
	free(text);
	return v;
}

void ctr_kill_state_file(const char *path)
{
	struct lstate s;

	if (lstate_read(path, &s) || strcmp(s.state, "running"))
		return;
	if (s.shim > 0 && s.shim_start && proc_start(s.shim) == s.shim_start) {
		if (s.pid > 0)
			kill(s.pid, SIGKILL); /* the pid namespace's init: all of it goes */
		kill(s.shim, SIGKILL);
	}
}

/* --- ending -------------------------------------------------------------------- */

static void restart_now(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctr_rt *c = w->data;
	struct pod_rt *p = c->pod;

	pod_ref(p);
	if (!p->deleting && !p->respec && !c->done) {
		c->restarts++;
		ctr_save(c);
		if (ctr_start(c))
			pod_publish(p);
	}
	pod_unref(p);
}

static bool wants_restart(const struct ctr_rt *c, bool failed)
{
	struct svc_obj *o = pod_obj(c->pod);
	const char *pol = o && o->u.pod->restart_policy ? o->u.pod->restart_policy : "Always";

	if (!strcmp(pol, "Never"))
		return false;
	return strcmp(pol, "OnFailure") || failed;
}

static void schedule_restart(struct ctr_rt *c, double ran)
{
	const struct pods_config *cfg = &c->pod->pods->cfg;
	double delay;

	if (ran >= cfg->backoff_reset)
		c->backoff = 0;
	delay = c->backoff;
	c->backoff = c->backoff ? c->backoff * 2 : cfg->backoff_initial;
	if (c->backoff > cfg->backoff_max)
		c->backoff = cfg->backoff_max;
	ctr_save(c);
	c->state = CS_WAITING;
	if (delay > 0) {
		snprintf(c->reason, sizeof(c->reason), "CrashLoopBackOff");
		snprintf(c->msg, sizeof(c->msg),
			 "back-off %gs restarting failed container=%s pod=%s_%s%s%s", delay,
			 c->name, c->pod->name, c->pod->uid, c->last.msg[0] ? ": " : "",
			 c->last.msg);
		pod_event(c->pod, true, "BackOff", "Back-off restarting failed container %s",
			  c->name);
	} else {
		snprintf(c->reason, sizeof(c->reason), "%s",
			 !strcmp(c->last.reason, "StartError") ? "StartError" : "Restarting");
		snprintf(c->msg, sizeof(c->msg), "%s", c->last.msg);
	}
	ev_timer_stop(c->pod->pods->loop, &c->restart_timer);
	ev_timer_init(&c->restart_timer, restart_now, delay, 0);
	c->restart_timer.data = c;
	ev_timer_start(c->pod->pods->loop, &c->restart_timer);
}

/* The run ended: record it as lastState and restart by the pod's policy. */
static void ctr_ended(struct ctr_rt *c, const struct lstate *s)
{
	struct pod_rt *p = c->pod;
	struct ctr_run *run = &c->cur;
	double now = (double)time(NULL);
	bool start_error = c->start_error[0] || !strcmp(s->state, "error") || !s->state[0];

	memset(run, 0, sizeof(*run));
	run->set = true;
	run->started = s->started ? s->started : c->started;
	run->finished = s->finished ? s->finished : now;
	if (start_error) {
		snprintf(run->reason, sizeof(run->reason), "StartError");
		snprintf(run->msg, sizeof(run->msg), "%s",
			 c->start_error[0] ? c->start_error
			 : s->error[0]	   ? s->error
					   : "the launcher exited without reporting");
		run->exit_code = 128;
		pod_event(c->pod, true, "Failed", "Error: %s", run->msg);
	} else {
		run->exit_code = s->exit_code;
		run->signal = s->signal;
		snprintf(run->reason, sizeof(run->reason), "%s",
			 s->exit_code ? "Error" : "Completed");
		if (s->signal)
			snprintf(run->msg, sizeof(run->msg), "killed by signal %d", s->signal);
	}
	c->last = *run;
	c->start_error[0] = '\0';
	c->shim = c->init = 0;
	c->state = CS_TERMINATED;
	c->reason[0] = c->msg[0] = '\0';
	if (c->pod->deleting || c->pod->respec || !wants_restart(c, start_error || run->exit_code))
		c->done = !c->pod->respec;
	if (c->done || c->pod->deleting || c->pod->respec) {
		ctr_save(c);
		/* A re-spec frees c (the pod's new containers replace it). */
		pod_check_stopped(p);
	} else {
		schedule_restart(c, run->started > 0 ? run->finished - run->started : 0);
	}
	pod_publish(p);
}

static void ctr_exited(struct ctr_rt *c)
{
	char path[PATH_MAX + 8];
	struct lstate s;

	ev_timer_stop(c->pod->pods->loop, &c->kill_timer);
	/* Our own child: reap it (libev may have done so already). */
	if (c->pidfd >= 0) {
		siginfo_t si;
		waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG);
	}
	ctr_unwatch(c);
	if (lstate_read(lstate_path(c, path, sizeof(path)), &s))
		memset(&s, 0, sizeof(s));
	if (!strcmp(s.state, "running")) {
		/* The shim died, not the container: take the container down too. */
		if (s.pid > 0)
			kill(s.pid, SIGKILL);
		snprintf(s.state, sizeof(s.state), "exited");
		s.exit_code = 137;
		s.signal = SIGKILL;
	}
	ctr_ended(c, &s);
}

static void on_pidfd(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctr_rt *c = w->data;
	struct pod_rt *p = c->pod;

	pod_ref(p);
	ctr_exited(c);
	pod_unref(p);
}

/* --- starting ---------------------------------------------------------------- */

static void on_sync_line(struct ctr_rt *c, const char *line)
{
	if (!strncmp(line, "ok ", 3)) {
		c->init = (pid_t)atoi(line + 3);
		c->state = CS_RUNNING;
		c->started = (double)time(NULL);
		c->reason[0] = c->msg[0] = '\0';
		pod_event(c->pod, false, "Started", "Started container %s", c->name);
	} else {
		snprintf(c->start_error, sizeof(c->start_error), "%s",
			 !strncmp(line, "error ", 6) ? line + 6 : line);
	}
	pod_publish(c->pod);
}

static void on_sync(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctr_rt *c = w->data;
	struct pod_rt *p = c->pod;
	char buf[512], *nl;
	ssize_t n = read(c->sync_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	pod_ref(p);
	if (n > 0 && c->sync_buf.len < 4096)
		sbuf_add(&c->sync_buf, buf, (size_t)n);
	nl = c->sync_buf.len ? memchr(c->sync_buf.p, '\n', c->sync_buf.len) : NULL;
	if (nl || n <= 0) {
		if (nl)
			*nl = '\0';
		ev_io_stop(loop, &c->sync_io);
		close(c->sync_fd);
		c->sync_fd = -1;
		if (nl || c->sync_buf.len)
			on_sync_line(c, c->sync_buf.p);
		else
			snprintf(c->start_error, sizeof(c->start_error),
				 "svcrun: exited without reporting");
		sbuf_free(&c->sync_buf);
	}
	pod_unref(p);
}

struct argv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void av_add(struct argv *a, const char *s)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	if (!(a->v[a->n] = strdup(s)))
		a->oom = true;
	else
		a->v[++a->n] = NULL;
}

/* An option and its value, as two arguments. */
static void av_opt(struct argv *a, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void av_opt(struct argv *a, const char *opt, const char *fmt, ...)
{
	char buf[PATH_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	av_add(a, opt);
	av_add(a, buf);
}

static void av_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

static const cJSON *ctr_spec(const cJSON *pod, const char *name)
{
	const cJSON *c, *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
			return c;
	}
	return NULL;
}

/* "500m" -> 500, "2" -> 2000 (millicpus); "128Mi" -> bytes.  Validation
 * already checked the shape; anything odd here is ignored (no limit). */
static double quantity(const cJSON *q, bool cpu)
{
	static const struct {
		const char *sfx;
		double mul;
	} units[] = {
	    {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
	    {"k", 1e3},	    {"K", 1e3},	       {"M", 1e6},	     {"G", 1e9},
	    {"T", 1e12},    {"m", 1e-3}};
	char *end;
	double v;

	if (cJSON_IsNumber(q))
		return cpu ? q->valuedouble * 1000 : q->valuedouble;
	if (!cJSON_IsString(q))
		return 0;
	v = strtod(q->valuestring, &end);
	for (size_t i = 0; *end && i < ARRAY_SIZE(units); i++)
		if (!strcmp(end, units[i].sfx)) {
			v *= units[i].mul;
			end += strlen(end);
		}
	if (*end)
		return 0;
	return cpu ? v * 1000 : v;
}

static void add_limits(struct argv *a, const cJSON *cs)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cs, "resources"), "limits");
	double cpu = quantity(cJSON_GetObjectItemCaseSensitive(lim, "cpu"), true);
	double mem = quantity(cJSON_GetObjectItemCaseSensitive(lim, "memory"), false);

	if (cpu >= 1)
		av_opt(a, "--cpu", "%.0f", cpu);
	if (mem >= 4096)
		av_opt(a, "--memory", "%.0f", mem);
	av_add(a, "--pids");
	av_add(a, "4096");
}

static void add_env(struct argv *a, const struct image *img, const cJSON *cs)
{
	const cJSON *e;

	for (char **v = img->env; v && *v; v++)
		av_opt(a, "--env", "%s", *v);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cs, "env"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
		if (cJSON_IsString(n))
			av_opt(a, "--env", "%s=%s", n->valuestring,
			       cJSON_IsString(v) ? v->valuestring : "");
	}
}

static void add_user(struct argv *a, const struct image *img, const cJSON *cs, const cJSON *pod)
{
	const cJSON *psc = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(pod, "spec"), "securityContext");
	const cJSON *sc = cJSON_GetObjectItemCaseSensitive(cs, "securityContext");
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(sc, "runAsUser");
	const cJSON *gid = cJSON_GetObjectItemCaseSensitive(sc, "runAsGroup");

	if (!cJSON_IsNumber(uid))
		uid = cJSON_GetObjectItemCaseSensitive(psc, "runAsUser");
	if (!cJSON_IsNumber(gid))
		gid = cJSON_GetObjectItemCaseSensitive(psc, "runAsGroup");
	if (cJSON_IsNumber(uid) && cJSON_IsNumber(gid))
		av_opt(a, "--user", "%.0f:%.0f", uid->valuedouble, gid->valuedouble);
	else if (cJSON_IsNumber(uid))
		av_opt(a, "--user", "%.0f", uid->valuedouble);
	else if (img->user && *img->user)
		av_opt(a, "--user", "%s", img->user);
}

/* Kubernetes' rule: command replaces the Entrypoint, args the Cmd; args
 * alone run after the image's Entrypoint. */
static int add_command(struct argv *a, const struct image *img, const cJSON *cs)
{
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(cs, "command");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(cs, "args"), *s;
	size_t before = a->n + 1;

	av_add(a, "--");
	if (cJSON_GetArraySize(cmd) > 0) {
		cJSON_ArrayForEach(s, cmd) av_add(a, cJSON_IsString(s) ? s->valuestring : "");
	} else {
		for (char **v = img->entrypoint; v && *v; v++)
			av_add(a, *v);
	}
	if (cJSON_GetArraySize(args) > 0) {
		cJSON_ArrayForEach(s, args) av_add(a, cJSON_IsString(s) ? s->valuestring : "");
	} else if (cJSON_GetArraySize(cmd) <= 0) {
		for (char **v = img->cmd; v && *v; v++)
			av_add(a, *v);
	}
	return a->n > before ? 0 : -ENOEXEC;
}

static int build_argv(struct ctr_rt *c, const cJSON *pod, const cJSON *cs, const struct image *img,
		      struct argv *a)
{
	struct pod_rt *p = c->pod;
	const struct pods_config *cfg = &p->pods->cfg;
	const cJSON *wd = cJSON_GetObjectItemCaseSensitive(cs, "workingDir");
	char dir[PATH_MAX], ns[PATH_MAX];

	ctr_dir(c, dir, sizeof(dir));
	podnet_netns_path(p->pods->net, p->id, ns, sizeof(ns));
	av_add(a, p->pods->svcrun);
	av_add(a, "run");
	av_add(a, "--sync-fd");
	av_add(a, "3");
	av_opt(a, "--rootfs", "%s", img->rootfs);
	av_opt(a, "--scratch", "%s/scratch", dir);
	av_opt(a, "--netns", "%s", ns);
	av_opt(a, "--hostname", "%s", p->name);
	add_env(a, img, cs);
	if (cJSON_IsString(wd) && *wd->valuestring)
		av_opt(a, "--cwd", "%s", wd->valuestring);
	else if (img->workdir && *img->workdir)
		av_opt(a, "--cwd", "%s", img->workdir);
	add_user(a, img, cs, pod);
	av_opt(a, "--bind", "%s/etc/hosts:/etc/hosts", p->dir);
	av_opt(a, "--bind", "%s/etc/resolv.conf:/etc/resolv.conf", p->dir);
	av_opt(a, "--bind", "%s/etc/hostname:/etc/hostname", p->dir);
	av_opt(a, "--cgroup", "%s/%s/%s", cfg->cgroup_parent, p->uid, c->name);
	add_limits(a, cs);
	av_opt(a, "--log", "%s/logs/%s/%d.log", p->dir, c->name, c->restarts);
	av_opt(a, "--log-max", "%zu", cfg->log_max);
	av_opt(a, "--state", "%s/state", dir);
	if (add_command(a, img, cs))
		return -ENOEXEC;
	return a->oom ? -ENOMEM : 0;
}

/* The logs of the run before the previous one go (kubelet keeps two). */
static int prepare_dirs(struct ctr_rt *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	int dfd, r = 0;

	ctr_dir(c, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/logs/%s", c->pod->dir, c->name);
	if ((r = mkdir_p(dir, 0700)) || (r = mkdir_p(path, 0700)))
		return r;
	if (c->restarts >= 2) {
		char old[PATH_MAX + 96];
		snprintf(old, sizeof(old), "%s/%d.log", path, c->restarts - 2);
		unlink(old);
		snprintf(old, sizeof(old), "%s/%d.log.1", path, c->restarts - 2);
		unlink(old);
	}
	/* Each run starts from the image, as a Kubernetes container does. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	r = remove_tree(dfd, "scratch");
	unlinkat(dfd, "state", 0);
	close(dfd);
	return r;
}

static int spawn(struct ctr_rt *c, struct argv *a)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int pfd[2], r;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 3);
	posix_spawnattr_init(&at);
	/* Its own session: a ^C to svcd's terminal must not reach containers. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	r = posix_spawn(&pid, a->v[0], &fa, &at, a->v, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		return -r;
	}
	c->shim = pid;
	c->shim_start = proc_start(pid);
	c->sync_fd = pfd[0];
	c->pidfd = pidfd_open_(pid);
	if (c->pidfd < 0) { /* nothing would tell us it ended: do not run it */
		r = errno;
		kill(pid, SIGKILL);
		close(c->sync_fd);
		c->sync_fd = -1;
		c->shim = 0;
		return -r;
	}
	fcntl(c->sync_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

static void watch(struct ctr_rt *c)
{
	struct ev_loop *loop = c->pod->pods->loop;

	if (c->sync_fd >= 0) {
		ev_io_init(&c->sync_io, on_sync, c->sync_fd, EV_READ);
		c->sync_io.data = c;
		ev_io_start(loop, &c->sync_io);
	}
	if (c->pidfd >= 0) {
		ev_io_init(&c->pid_io, on_pidfd, c->pidfd, EV_READ);
		c->pid_io.data = c;
		ev_io_start(loop, &c->pid_io);
	}
}

static void start_failed(struct ctr_rt *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void start_failed(struct ctr_rt *c, const char *fmt, ...)
{
	struct lstate s = {0};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->start_error, sizeof(c->start_error), fmt, ap);
	va_end(ap);
	snprintf(s.state, sizeof(s.state), "error");
	ctr_ended(c, &s);
}

/* Start one run of the container; errors end the run as a StartError. */
int ctr_start(struct ctr_rt *c)
{
	struct pod_rt *p = c->pod;
	struct svc_obj *o = pod_obj(p);
	struct svc_err e = {0};
	struct image img = {0};
	struct argv a = {0};
	const cJSON *cs;
	cJSON *pod;
	int r;

	if (!o)
		return -ENOENT;
	pod = obj_to_json(o);
	cs = pod ? ctr_spec(pod, c->name) : NULL;
	c->state = CS_WAITING;
	c->started = 0; /* the last run's: a failed start must not count it */
	snprintf(c->reason, sizeof(c->reason), "ContainerCreating");
	c->msg[0] = c->start_error[0] = '\0';
	if (!cs) {
		r = -ENOMEM;
		start_failed(c, "no spec for container %s", c->name);
	} else if ((r = image_load(
			p->pods->images,
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cs, "image")), &img,
			&e))) {
		start_failed(c, "image: %s", e.msg);
	} else if ((r = build_argv(c, pod, cs, &img, &a))) {
		start_failed(c, r == -ENOEXEC ? "no command specified: the container has no "
						"command and the image no Entrypoint or Cmd"
					      : "out of memory");
	} else if ((r = prepare_dirs(c))) {
		start_failed(c, "preparing %s: %s", c->name, strerror(-r));
	} else if ((r = spawn(c, &a))) {
		start_failed(c, "starting %s: %s", a.v[0], strerror(-r));
	} else {
		pod_event(p, false, "Created", "Created container %s (image %s)", c->name, img.ref);
		watch(c);
	}
	av_free(&a);
	image_free(&img);
	cJSON_Delete(pod);
	return r;
}

/* A shim of an earlier svcd: watch it if it still runs, else learn how
 * its container ended. */
void ctr_adopt(struct ctr_rt *c)
{
	char path[PATH_MAX + 8];
	struct lstate s;

	if (lstate_read(lstate_path(c, path, sizeof(path)), &s))
		return; /* never started: pod_start() starts it */
	if (!strcmp(s.state, "running") && s.shim > 0 && s.shim_start &&
	    proc_start(s.shim) == s.shim_start && (c->pidfd = pidfd_open_(s.shim)) >= 0) {
		c->shim = s.shim;
		c->shim_start = s.shim_start;
		c->init = s.pid;
		c->state = CS_RUNNING;
		c->started = s.started;
		c->reason[0] = c->msg[0] = '\0';
		watch(c);
		svc_log(SVC_LOG_INFO, "pod %s: adopted container %s (pid %d)", c->pod->key, c->name,
			(int)s.pid);
		return;
	}
	/* Learning how it ended restarts it: that needs the pod's network. */
	if (c->done || !c->pod->net_up)
		return;
	if (!strcmp(s.state, "running")) {
		/* The shim is gone: so is the run (its init dies with it).  No
		 * kill of s.pid: nothing guards it against reuse, and after a
		 * reboot it names an unrelated process. */
		snprintf(s.state, sizeof(s.state), "exited");
		s.exit_code = 137;
		s.signal = SIGKILL;
	}
	c->started = s.started;
	ctr_ended(c, &s);
}

static void on_kill_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctr_rt *c = w->data;

	if (c->init > 0 && ctr_alive(c))
		kill(c->init, SIGKILL);
	if (c->shim > 0 && ctr_alive(c) && !c->init)
		kill(c->shim, SIGKILL);
}

/* SIGTERM through the shim (its init forwards it), SIGKILL after grace. */
void ctr_stop(struct ctr_rt *c, double grace)
{
	struct ev_loop *loop = c->pod->pods->loop;

	ev_timer_stop(loop, &c->restart_timer);
	if (!ctr_alive(c))
		return;
	if (c->shim > 0)
		kill(c->shim, SIGTERM);
	pod_event(c->pod, false, "Killing", "Stopping container %s", c->name);
	ev_timer_stop(loop, &c->kill_timer);
	ev_timer_init(&c->kill_timer, on_kill_timer, grace, 0);
	c->kill_timer.data = c;
	ev_timer_start(loop, &c->kill_timer);
}
