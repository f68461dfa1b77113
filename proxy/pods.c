// SPDX-License-Identifier: MIT
/* The pod runtime: pod lifecycle, status, events and crash recovery.
 * Containers themselves are in pods_ctr.c. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "fsutil.h"
#include "image.h"
#include "ipam.h"
#include "podnet.h"
#include "pods_int.h"
#include "state.h"

#define NET_RETRY 5.0 /* seconds between attempts to wire a pod */

static void pod_start(struct pod_rt *p);
static void pod_stop_all(struct pod_rt *p, double grace);

void pod_ref(struct pod_rt *p)
{
	p->refs++;
}

void pod_unref(struct pod_rt *p)
{
	if (--p->refs > 0)
		return;
	for (uint32_t i = 0; i < p->nc; i++)
		ctr_free(&p->c[i]);
	ev_timer_stop(p->pods->loop, &p->retry);
	free(p->c);
	free(p->key);
	free(p->ns);
	free(p->name);
	free(p);
}

struct svc_obj *pod_obj(struct pod_rt *p)
{
	struct svc_obj *o = p->gone ? NULL : model_get_key(p->pods->st->model, p->key);

	return o && !strcmp(o->uid, p->uid) ? o : NULL;
}

void pod_event(struct pod_rt *p, bool warning, const char *reason, const char *fmt, ...)
{
	struct pod_event *ev = p->nev ? &p->ev[p->nev - 1] : NULL;
	char msg[sizeof(ev->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc_log(warning ? SVC_LOG_WARN : SVC_LOG_INFO, "pod %s/%s: %s: %s", p->ns, p->name, reason,
		msg);
	/* A repeat of the last event counts, as Kubernetes' events do. */
	if (ev && !strcmp(ev->reason, reason) && !strcmp(ev->msg, msg)) {
		ev->count++;
		ev->last = time(NULL);
		return;
	}
	if (p->nev == POD_EVENTS) {
		memmove(p->ev, p->ev + 1, sizeof(p->ev[0]) * (POD_EVENTS - 1));
		p->nev--;
	}
	ev = &p->ev[p->nev++];
	memset(ev, 0, sizeof(*ev));
	ev->first = ev->last = time(NULL);
	ev->count = 1;
	ev->warning = warning;
	snprintf(ev->reason, sizeof(ev->reason), "%s", reason);
	snprintf(ev->msg, sizeof(ev->msg), "%s", msg);
}

/* --- status ------------------------------------------------------------------ */

static void add_time(cJSON *o, const char *key, double t)
{
	char ts[21];

	if (t <= 0)
		return;
	fmt_rfc3339((time_t)t, ts);
	cJSON_AddStringToObject(o, key, ts);
}

static cJSON *run_json(const struct ctr_run *r)
{
	cJSON *t = cJSON_CreateObject();

	cJSON_AddNumberToObject(t, "exitCode", r->exit_code);
	if (r->signal)
		cJSON_AddNumberToObject(t, "signal", r->signal);
	cJSON_AddStringToObject(t, "reason", r->reason);
	if (r->msg[0])
		cJSON_AddStringToObject(t, "message", r->msg);
	add_time(t, "startedAt", r->started);
	add_time(t, "finishedAt", r->finished);
	return t;
}

static cJSON *ctr_json(const struct ctr_rt *c, const char *image)
{
	cJSON *j = cJSON_CreateObject(), *state = cJSON_CreateObject(), *s;

	cJSON_AddStringToObject(j, "name", c->name);
	cJSON_AddStringToObject(j, "image", image ? image : "");
	cJSON_AddBoolToObject(j, "ready", c->state == CS_RUNNING);
	cJSON_AddBoolToObject(j, "started", c->state == CS_RUNNING);
	cJSON_AddNumberToObject(j, "restartCount", c->restarts);
	if (c->state == CS_RUNNING) {
		s = cJSON_AddObjectToObject(state, "running");
		add_time(s, "startedAt", c->started);
	} else if (c->state == CS_TERMINATED) {
		cJSON_AddItemToObject(state, "terminated", run_json(&c->cur));
	} else {
		s = cJSON_AddObjectToObject(state, "waiting");
		cJSON_AddStringToObject(s, "reason", c->reason);
		if (c->msg[0])
			cJSON_AddStringToObject(s, "message", c->msg);
	}
	cJSON_AddItemToObject(j, "state", state);
	s = cJSON_AddObjectToObject(j, "lastState");
	if (c->last.set && !(c->state == CS_TERMINATED))
		cJSON_AddItemToObject(s, "terminated", run_json(&c->last));
	return j;
}

/* Kubernetes' phase rules: Pending until every container has run once;
 * Succeeded or Failed once all have stopped for good; else Running. */
static enum pod_phase phase_of(const struct pod_rt *p, bool *ready)
{
	bool all_done = true, any_failed = false, all_started = true;

	*ready = p->nc > 0;
	for (uint32_t i = 0; i < p->nc; i++) {
		const struct ctr_rt *c = &p->c[i];
		if (c->state != CS_RUNNING)
			*ready = false;
		if (c->state == CS_WAITING && !c->last.set && !c->restarts)
			all_started = false;
		if (!c->done)
			all_done = false;
		else if (c->last.exit_code)
			any_failed = true;
	}
	if (p->deleting)
		*ready = false;
	if (all_done && p->nc)
		return any_failed ? POD_FAILED : POD_SUCCEEDED;
	return all_started && p->net_up ? POD_RUNNING : POD_PENDING;
}

void pod_publish(struct pod_rt *p)
{
	struct svc_obj *o = pod_obj(p);
	struct svc_pod *sp;
	cJSON *arr;
	bool ready;

	if (!o || p->pods->closing)
		return;
	sp = o->u.pod;
	sp->phase = phase_of(p, &ready);
	sp->ready = ready;
	memset(&sp->ip, 0, sizeof(sp->ip));
	if (p->has_ip && p->net_up)
		addr_from_v4(&sp->ip, ntohl(p->ip.s_addr));
	sp->start_time = p->start_time;
	free(sp->reason);
	free(sp->message);
	sp->reason = p->reason[0] ? strdup(p->reason) : NULL;
	sp->message = p->msg[0] ? strdup(p->msg) : NULL;
	arr = cJSON_CreateArray();
	for (uint32_t i = 0; i < p->nc && arr; i++) {
		const char *image = NULL;
		for (uint32_t k = 0; k < sp->ncontainers; k++)
			if (!strcmp(sp->containers[k].name, p->c[i].name))
				image = sp->containers[k].image;
		cJSON_AddItemToArray(arr, ctr_json(&p->c[i], image));
	}
	cJSON_Delete(sp->container_statuses);
	sp->container_statuses = arr;
	state_pod_status(p->pods->st, o);
}

/* --- files of a pod ------------------------------------------------------------- */

static int write_in(const char *dir, const char *name, const char *text, struct svc_err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return svc_errf(e, errno, "opening %s: %s", dir, strerror(errno));
	/* Renamed into place, not fsynced: like IPAM's, these files describe
	 * processes and namespaces that a power loss takes away (ipam.h). */
	r = file_replace(fd, name, text, strlen(text), 0644, false, e);
	close(fd);
	return r;
}

/* The pod's record (what a restarted svcd needs to find its pieces) and
 * the files bound into its containers for name resolution. */
static int pod_files(struct pod_rt *p, struct svc_err *e)
{
	const struct pods_config *cfg = &p->pods->cfg;
	char etc[PATH_MAX + 8], ip[INET_ADDRSTRLEN], text[1024];
	int r;

	inet_ntop(AF_INET, &p->ip, ip, sizeof(ip));
	snprintf(etc, sizeof(etc), "%s/etc", p->dir);
	if ((r = mkdir_p(etc, 0755)))
		return svc_errf(e, -r, "creating %s: %s", etc, strerror(-r));
	snprintf(text, sizeof(text), "key=%s\nip=%s\ngeneration=%lld\n", p->key,
		 p->has_ip ? ip : "", (long long)p->generation);
	if ((r = write_in(p->dir, "pod", text, e)))
		return r;
	snprintf(text, sizeof(text),
		 "# Kubernetes-style hosts file, written by svcd.\n127.0.0.1\tlocalhost\n"
		 "::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
		 p->has_ip ? ip : "127.0.1.1", p->name);
	if ((r = write_in(etc, "hosts", text, e)))
		return r;
	snprintf(text, sizeof(text), "search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n",
		 p->ns, cfg->cluster_domain, cfg->cluster_domain, cfg->cluster_domain, cfg->dns_ip);
	if ((r = write_in(etc, "resolv.conf", text, e)))
		return r;
	snprintf(text, sizeof(text), "%s\n", p->name);
	return write_in(etc, "hostname", text, e);
}

/* --- the node's pod network ---------------------------------------------------- */

static int pods_net(struct svc_pods *ps, struct svc_err *e)
{
	struct podnet_config nc = {
	    .bridge = ps->cfg.bridge,
	    .pod_net = ps->pod_net,
	    .pod_prefix = ps->pod_prefix,
	    .cluster_net = ps->cluster_net,
	    .cluster_prefix = ps->cluster_prefix,
	    .netns_dir = ps->cfg.netns_dir,
	    .masq_table = "svcd-pods",
	};
	int r;

	if (ps->net)
		return 0;
	if ((r = podnet_open(&nc, &ps->net, e)))
		return svc_err_ctx(e, "setting up the pod network");
	svc_log(SVC_LOG_INFO, "pod network: bridge %s, pod CIDR %s", ps->cfg.bridge,
		ps->cfg.pod_cidr);
	return 0;
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pod_rt *p = w->data;

	pod_ref(p);
	pod_start(p);
	pod_unref(p);
}

static void retry_later(struct pod_rt *p, double after)
{
	ev_timer_stop(p->pods->loop, &p->retry);
	ev_timer_init(&p->retry, on_retry, after, 0);
	p->retry.data = p;
	ev_timer_start(p->pods->loop, &p->retry);
}

/* Every image present?  If not the pod waits, saying how to get it. */
static bool images_ready(struct pod_rt *p, const struct svc_pod *sp)
{
	for (uint32_t i = 0; i < sp->ncontainers; i++) {
		struct svc_err e = {0};
		struct image img = {0};
		char ref[256];

		if (!image_load(p->pods->images, sp->containers[i].image, &img, &e)) {
			image_free(&img);
			continue;
		}
		if (image_ref_normalize(sp->containers[i].image, ref, sizeof(ref), &e))
			snprintf(ref, sizeof(ref), "%s", sp->containers[i].image);
		snprintf(p->reason, sizeof(p->reason), "ImageNotFound");
		snprintf(p->msg, sizeof(p->msg),
			 "image \"%s\" of container %s is not in the image store; import it with: "
			 "svcctl image import %s FILE",
			 ref, sp->containers[i].name, ref);
		for (uint32_t k = 0; k < p->nc; k++)
			if (!strcmp(p->c[k].name, sp->containers[i].name)) {
				snprintf(p->c[k].reason, sizeof(p->c[k].reason), "ImageNotFound");
				snprintf(p->c[k].msg, sizeof(p->c[k].msg), "%s", p->msg);
			}
		pod_event(p, true, "Failed", "%s", p->msg);
		return false;
	}
	return true;
}

static int pod_wire(struct pod_rt *p, struct svc_err *e)
{
	struct svc_pods *ps = p->pods;
	int r;

	if ((r = pods_net(ps, e)))
		return r;
	if (!p->has_ip) {
		if ((r = ipam_alloc(ps->ipam, p->id, &p->ip, e)))
			return svc_err_ctx(e, "allocating an address");
		p->has_ip = true;
	}
	if ((r = pod_files(p, e)) || (r = podnet_add(ps->net, p->id, p->ip, e)))
		return r;
	p->net_up = true;
	return 0;
}

/* Admit the pod: images, address, network, then every container. */
static void pod_start(struct pod_rt *p)
{
	struct svc_obj *o = pod_obj(p);
	struct svc_err e = {0};

	if (!o || p->deleting || p->respec)
		return;
	if (!images_ready(p, o->u.pod)) {
		pod_publish(p);
		return;
	}
	if (!p->net_up && pod_wire(p, &e)) {
		snprintf(p->reason, sizeof(p->reason), "NetworkNotReady");
		snprintf(p->msg, sizeof(p->msg), "%s", e.msg);
		pod_event(p, true, "FailedCreatePodSandBox", "%s", e.msg);
		pod_publish(p);
		retry_later(p, NET_RETRY);
		return;
	}
	p->reason[0] = p->msg[0] = '\0';
	if (!p->start_time)
		p->start_time = time(NULL);
	for (uint32_t i = 0; i < p->nc; i++) {
		struct ctr_rt *c = &p->c[i];
		if (!ctr_alive(c) && !c->done && !ev_is_active(&c->restart_timer))
			ctr_start(c);
	}
	pod_publish(p);
}

/* --- creating, changing, deleting ----------------------------------------------- */

static struct pod_rt *pod_new(struct svc_pods *ps, const struct svc_obj *o)
{
	struct pod_rt *p = calloc(1, sizeof(*p));
	const struct svc_pod *sp = o->u.pod;

	if (!p)
		return NULL;
	p->pods = ps;
	p->refs = 1;
	memcpy(p->uid, o->uid, sizeof(p->uid));
	p->key = strdup(o->key);
	p->ns = strdup(o->ns);
	p->name = strdup(o->name);
	p->generation = o->generation;
	snprintf(p->id, sizeof(p->id), "svcd-%s", p->uid);
	snprintf(p->dir, sizeof(p->dir), "%s/%s", ps->podsdir, p->uid);
	p->c = calloc(sp->ncontainers ? sp->ncontainers : 1, sizeof(*p->c));
	if (!p->key || !p->ns || !p->name || !p->c) {
		pod_unref(p);
		return NULL;
	}
	for (uint32_t i = 0; i < sp->ncontainers; i++)
		ctr_init(&p->c[p->nc++], p, sp->containers[i].name);
	ev_timer_init(&p->retry, on_retry, 0, 0);
	if (smap_put(&ps->by_uid, p->uid, p)) {
		pod_unref(p);
		return NULL;
	}
	return p;
}

static double grace_of(const struct svc_obj *o)
{
	cJSON *j = o ? obj_to_json(o) : NULL;
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "spec"), "terminationGracePeriodSeconds");
	double v = cJSON_IsNumber(g) && g->valuedouble >= 0 ? g->valuedouble : 30;

	cJSON_Delete(j);
	return v;
}

/* Kill what is left in a cgroup and wait (2 s at most) until it is empty,
 * since a cgroup with a process, even a dying one, cannot be removed.
 * Only ever has work after a crash: a killed launcher's container. */
static void cgroup_empty(const char *dir)
{
	char path[PATH_MAX * 2 + 300], *text;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	for (int i = 0; i < 200; i++) {
		bool any = false;
		if (file_read_all(AT_FDCWD, path, 1 << 20, &text, NULL))
			return;
		for (char *p = text, *end; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 1) {
				kill((pid_t)pid, SIGKILL);
				any = true;
			}
		}
		free(text);
		if (!any)
			return;
		usleep(10 * 1000);
	}
}

/* Remove every cgroup directory of the pod, in every mounted hierarchy.
 * svcrun removes its container's own; this catches what a killed launcher
 * left behind. */
static void cgroups_remove(const char *parent, const char *uid)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64], path[PATH_MAX * 2];
		const char *sep = strstr(line, " - ");
		DIR *d;
		struct dirent *de;

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1 ||
		    (strcmp(fstype, "cgroup") && strcmp(fstype, "cgroup2")))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", mnt, parent, uid);
		if ((d = opendir(path))) {
			while ((de = readdir(d)))
				if (de->d_type == DT_DIR && de->d_name[0] != '.') {
					char sub[PATH_MAX * 2 + 256];
					snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
					cgroup_empty(sub);
					rmdir(sub);
				}
			closedir(d);
		}
		cgroup_empty(path);
		rmdir(path);
	}
	fclose(f);
}

/* Network, address, cgroups and files: nothing of the pod is left. */
static void pod_teardown(struct svc_pods *ps, const char *uid, const char *dir)
{
	struct svc_err e = {0};
	char id[48];

	snprintf(id, sizeof(id), "svcd-%s", uid);
	if (ps->net && podnet_del(ps->net, id, &e))
		svc_log(SVC_LOG_WARN, "pod %s: %s", uid, e.msg);
	svc_err_clear(&e);
	if (ps->ipam && ipam_release(ps->ipam, id, &e))
		svc_log(SVC_LOG_WARN, "pod %s: %s", uid, e.msg);
	cgroups_remove(ps->cfg.cgroup_parent, uid);
	if (remove_tree(AT_FDCWD, dir))
		svc_log(SVC_LOG_WARN, "pod %s: removing %s: %s", uid, dir, strerror(errno));
}

void pod_check_stopped(struct pod_rt *p)
{
	struct svc_err e = {0};
	struct svc_obj *o;

	for (uint32_t i = 0; i < p->nc; i++)
		if (ctr_alive(&p->c[i]))
			return;
	if (p->deleting) {
		struct svc_pods *ps = p->pods;
		if (smap_get(&ps->by_uid, p->uid) != p)
			return;
		smap_del(&ps->by_uid, p->uid);
		pod_teardown(ps, p->uid, p->dir);
		svc_log(SVC_LOG_INFO, "pod %s/%s: deleted", p->ns, p->name);
		pod_unref(p);
		return;
	}
	if (!p->respec || !(o = pod_obj(p)))
		return;
	/* The spec changed: new containers, same sandbox. */
	p->respec = false;
	p->generation = o->generation;
	for (uint32_t i = 0; i < p->nc; i++)
		ctr_free(&p->c[i]);
	free(p->c);
	p->nc = 0;
	p->c = calloc(o->u.pod->ncontainers ? o->u.pod->ncontainers : 1, sizeof(*p->c));
	for (uint32_t i = 0; p->c && i < o->u.pod->ncontainers; i++) {
		ctr_init(&p->c[p->nc], p, o->u.pod->containers[i].name);
		ctr_save(&p->c[p->nc++]); /* not the old container's restarts */
	}
	/* The record names the spec that runs, for a restarted svcd. */
	if (p->net_up && pod_files(p, &e))
		svc_log(SVC_LOG_WARN, "pod %s: %s", p->key, e.msg);
	pod_start(p);
}

static void pod_stop_all(struct pod_rt *p, double grace)
{
	ev_timer_stop(p->pods->loop, &p->retry);
	for (uint32_t i = 0; i < p->nc; i++)
		ctr_stop(&p->c[i], grace);
	pod_check_stopped(p);
}

static void pod_deleted(struct svc_pods *ps, const char *uid, double grace)
{
	struct pod_rt *p = smap_get(&ps->by_uid, uid);

	if (!p || p->deleting)
		return;
	p->deleting = true;
	p->gone = true;
	pod_ref(p);
	pod_stop_all(p, grace);
	pod_unref(p);
}

/* A new object under an old name is a new pod: the old one goes. */
static void replaced(struct svc_pods *ps, const char *key)
{
	struct smap_ent *en;
	size_t cur = 0;

	while ((en = smap_next(&ps->by_uid, &cur))) {
		struct pod_rt *old = en->val;
		if (!strcmp(old->key, key) && !old->deleting) {
			pod_deleted(ps, old->uid, 30);
			cur = 0; /* the map may have changed */
		}
	}
}

static void on_state(void *ctx, enum svc_event ev, const struct svc_obj *o)
{
	struct svc_pods *ps = ctx;
	struct pod_rt *p;

	if (o->kind != KIND_POD || ps->closing)
		return;
	p = smap_get(&ps->by_uid, o->uid);
	if (ev == EV_DELETED) {
		pod_deleted(ps, o->uid, grace_of(o));
		return;
	}
	if (!p) {
		replaced(ps, o->key);
		if ((p = pod_new(ps, o))) {
			pod_ref(p);
			pod_start(p);
			pod_unref(p);
		}
		return;
	}
	if (ev == EV_MODIFIED && o->generation != p->generation && !p->deleting && !p->respec) {
		p->respec = true;
		pod_ref(p);
		pod_event(p, false, "Killing", "the pod's spec changed: restarting its containers");
		pod_stop_all(p, grace_of(o));
		pod_unref(p);
	}
}

/* --- crash recovery -------------------------------------------------------------- */

static void kv_pod(char *text, char *key, size_t nk, char *ip, size_t nip, int64_t *gen)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "key=", 4))
			snprintf(key, nk, "%s", line + 4);
		else if (!strncmp(line, "ip=", 3))
			snprintf(ip, nip, "%s", line + 3);
		else if (!strncmp(line, "generation=", 11))
			*gen = strtoll(line + 11, NULL, 10);
	}
}

/* gen: the generation the containers run (0: unknown, the object's). */
static void adopt_pod(struct svc_pods *ps, struct svc_obj *o, const char *ipstr, int64_t gen)
{
	struct svc_err e = {0};
	struct pod_rt *p = pod_new(ps, o);

	if (!p)
		return;
	pod_ref(p);
	if (gen > 0)
		p->generation = gen;
	if (inet_pton(AF_INET, ipstr, &p->ip) == 1) {
		if (ipam_claim(ps->ipam, p->id, p->ip, &e)) {
			svc_log(SVC_LOG_WARN, "pod %s: %s", o->key, e.msg);
			svc_err_clear(&e);
		} else {
			p->has_ip = true;
		}
	}
	if (p->has_ip && pod_wire(p, &e))
		svc_log(SVC_LOG_WARN, "pod %s: re-wiring: %s", o->key, e.msg);
	else if (p->has_ip)
		p->start_time = time(NULL);
	/* Running containers are adopted even if the network could not be
	 * wired again: else pod_start() would start them a second time. */
	for (uint32_t i = 0; i < p->nc; i++) {
		ctr_load(&p->c[i]);
		ctr_adopt(&p->c[i]);
	}
	if (p->generation != o->generation) {
		/* The spec changed while its containers were being stopped. */
		p->respec = true;
		pod_event(p, false, "Killing", "the pod's spec changed: restarting its containers");
		pod_stop_all(p, grace_of(o));
	} else {
		pod_start(p);
	}
	pod_unref(p);
}

/* A pod directory of the last run whose pod is gone: kill, unwire, forget. */
static void remove_orphan(struct svc_pods *ps, const char *uid, const char *dir)
{
	char cdir[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;

	snprintf(cdir, sizeof(cdir), "%s/containers", dir);
	d = opendir(cdir);

	svc_log(SVC_LOG_INFO, "pod %s: no longer exists; removing what is left of it", uid);
	while (d && (de = readdir(d))) {
		char path[PATH_MAX * 2 + 300];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/state", cdir, de->d_name);
		ctr_kill_state_file(path);
	}
	if (d)
		closedir(d);
	pods_net(ps, &(struct svc_err){0});
	pod_teardown(ps, uid, dir);
}

static bool is_uid(const char *s)
{
	size_t n = strlen(s);

	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void scan_pod_dirs(struct svc_pods *ps)
{
	DIR *d = opendir(ps->podsdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char dir[PATH_MAX * 2], key[512] = "", ip[64] = "", *text;
		int64_t gen = 0;
		struct svc_obj *o;

		if (!is_uid(de->d_name))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", ps->podsdir, de->d_name);
		snprintf(key, sizeof(key), "%s/pod", dir);
		if (!file_read_all(AT_FDCWD, key, 4096, &text, NULL)) {
			key[0] = '\0';
			kv_pod(text, key, sizeof(key), ip, sizeof(ip), &gen);
			free(text);
		} else {
			key[0] = '\0';
		}
		o = key[0] ? model_get_key(ps->st->model, key) : NULL;
		if (o && o->kind == KIND_POD && !strcmp(o->uid, de->d_name) &&
		    !smap_get(&ps->by_uid, o->uid))
			adopt_pod(ps, o, ip, gen);
		else
			remove_orphan(ps, de->d_name, dir);
	}
	if (d)
		closedir(d);
}

static int leak_cb(const struct podnet_entry *ent, void *ctx)
{
	struct svc_pods *ps = ctx;
	struct svc_err e = {0};

	if (strncmp(ent->id, "svcd-", 5) || smap_get(&ps->by_uid, ent->id + 5))
		return 0;
	svc_log(SVC_LOG_INFO, "pod network: removing leaked %s%s%s", ent->id,
		ent->has_veth ? " (veth)" : "", ent->has_netns ? " (namespace)" : "");
	if (podnet_del(ps->net, ent->id, &e))
		svc_log(SVC_LOG_WARN, "pod network: %s", e.msg);
	return 0;
}

static bool keep_owner(const char *owner, void *ctx)
{
	struct svc_pods *ps = ctx;

	return !strncmp(owner, "svcd-", 5) && smap_get(&ps->by_uid, owner + 5);
}

/* Whatever no pod owns: leaked veths and namespaces, addresses. */
static void collect_leaks(struct svc_pods *ps)
{
	struct svc_err e = {0};
	int n;

	if (ps->net && podnet_list(ps->net, leak_cb, ps, &e))
		svc_log(SVC_LOG_WARN, "pod network: listing: %s", e.msg);
	svc_err_clear(&e);
	if ((n = ipam_retain(ps->ipam, keep_owner, ps, &e)) < 0)
		svc_log(SVC_LOG_WARN, "ipam: %s", e.msg);
	else if (n > 0)
		svc_log(SVC_LOG_INFO, "ipam: freed %d addresses that belonged to no pod", n);
}

/* --- opening -------------------------------------------------------------------- */

static int parse_cidr4(const char *s, struct in_addr *net, int *prefix, const char *what,
		       struct svc_err *e)
{
	struct svc_cidr c;

	if (cidr_parse(s, &c) || c.base.family != AF_INET || c.len < 8 || c.len > 30)
		return svc_errf(e, EINVAL, "%s: \"%s\" is not an IPv4 CIDR with a /8 to /30 prefix",
				what, s);
	memcpy(&net->s_addr, c.base.a, 4);
	*prefix = c.len;
	return 0;
}

/* The launcher: --svcrun, else next to this executable (build/ and make
 * install both put it there), else /usr/local/bin.  A missing one is not
 * fatal: each container start then fails saying so. */
static void find_svcrun(struct svc_pods *ps)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (ps->cfg.svcrun) {
		snprintf(ps->svcrun, sizeof(ps->svcrun), "%s", ps->cfg.svcrun);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			snprintf(ps->svcrun, sizeof(ps->svcrun), "%s/svcrun", self);
			if (!access(ps->svcrun, X_OK))
				return;
		}
	}
	snprintf(ps->svcrun, sizeof(ps->svcrun), "/usr/local/bin/svcrun");
	if (access(ps->svcrun, X_OK))
		svc_log(SVC_LOG_WARN,
			"svcrun not found next to svcd nor in /usr/local/bin: pods cannot start "
			"(give its path with --svcrun)");
}

/* The node's pods must be in the cluster CIDR: it is what decides which
 * traffic is masqueraded on its way out. */
static int pod_cidr_inside(const struct svc_pods *ps, const struct pods_config *cfg,
			   struct svc_err *e)
{
	uint32_t mask = ps->cluster_prefix ? ~0u << (32 - ps->cluster_prefix) : 0;

	if (ps->pod_prefix >= ps->cluster_prefix &&
	    (ntohl(ps->pod_net.s_addr) & mask) == (ntohl(ps->cluster_net.s_addr) & mask))
		return 0;
	return svc_errf(e, EINVAL, "--pod-cidr %s is not inside --cluster-cidr %s", cfg->pod_cidr,
			cfg->cluster_cidr);
}

int pods_open(struct ev_loop *loop, struct svc_state *st, const struct pods_config *cfg,
	      struct svc_pods **out, struct svc_err *e)
{
	struct svc_pods *ps = calloc(1, sizeof(*ps));
	struct svc_obj *o;
	size_t cur = 0;
	char ipdir[PATH_MAX];
	int r;

	if (!ps)
		return svc_errf(e, ENOMEM, "out of memory");
	ps->loop = loop;
	ps->st = st;
	ps->cfg = *cfg;
	snprintf(ps->images, sizeof(ps->images), "%s/images", cfg->state_dir);
	snprintf(ps->podsdir, sizeof(ps->podsdir), "%s/pods", cfg->state_dir);
	snprintf(ipdir, sizeof(ipdir), "%s/ipam", cfg->state_dir);
	find_svcrun(ps);
	if ((r = parse_cidr4(cfg->pod_cidr, &ps->pod_net, &ps->pod_prefix, "--pod-cidr", e)) ||
	    (r = parse_cidr4(cfg->cluster_cidr, &ps->cluster_net, &ps->cluster_prefix,
			     "--cluster-cidr", e)) ||
	    (r = pod_cidr_inside(ps, cfg, e)) || (r = mkdir_p(ps->podsdir, 0700)) ||
	    (r = ipam_open(ipdir, ps->pod_net, ps->pod_prefix, &ps->ipam, e))) {
		if (r && !e->code)
			svc_errf(e, -r, "creating %s: %s", ps->podsdir, strerror(-r));
		pods_close(ps);
		return r;
	}
	scan_pod_dirs(ps);
	while ((o = model_iter(st->model, KIND_POD, &cur)))
		if (!smap_get(&ps->by_uid, o->uid)) {
			struct pod_rt *p = pod_new(ps, o);
			if (p)
				pod_start(p);
		}
	if (ps->net || ipam_used(ps->ipam))
		collect_leaks(ps);
	state_listen(st, on_state, ps);
	*out = ps;
	return 0;
}

void pods_close(struct svc_pods *ps)
{
	struct smap_ent *en;
	size_t cur = 0;

	if (!ps)
		return;
	ps->closing = true;
	while ((en = smap_next(&ps->by_uid, &cur)))
		pod_unref(en->val);
	smap_free(&ps->by_uid);
	if (ps->net)
		podnet_close(ps->net);
	if (ps->ipam)
		ipam_close(ps->ipam);
	free(ps);
}

void pods_images_changed(struct svc_pods *ps)
{
	struct smap_ent *en;
	size_t cur = 0;

	while ((en = smap_next(&ps->by_uid, &cur))) {
		struct pod_rt *p = en->val;
		if (!strcmp(p->reason, "ImageNotFound"))
			retry_later(p, 0);
	}
}

bool pods_image_in_use(struct svc_pods *ps, const char *ref)
{
	struct svc_obj *o;
	size_t cur = 0;

	while ((o = model_iter(ps->st->model, KIND_POD, &cur)))
		for (uint32_t i = 0; i < o->u.pod->ncontainers; i++) {
			char r[256];
			struct svc_err e = {0};
			if (!image_ref_normalize(o->u.pod->containers[i].image, r, sizeof(r), &e) &&
			    !strcmp(r, ref))
				return true;
		}
	return false;
}

static struct pod_rt *find_pod(struct svc_pods *ps, const char *ns, const char *name)
{
	struct svc_obj *o = model_get(ps->st->model, KIND_POD, ns, name);

	return o ? smap_get(&ps->by_uid, o->uid) : NULL;
}

int pods_log_path(struct svc_pods *ps, const char *ns, const char *name, const char *container,
		  bool previous, char *buf, size_t n, struct svc_err *e)
{
	struct pod_rt *p = find_pod(ps, ns, name);
	struct ctr_rt *c = NULL;
	struct stat sb;

	if (!p)
		return svc_errf(e, ENOENT, "pods \"%s\" not found in namespace \"%s\"", name, ns);
	if ((!container || !*container) && p->nc > 1)
		return svc_errf(e, EINVAL, "pod %s has %u containers: choose one with -c (%s%s%s)",
				name, p->nc, p->c[0].name, p->nc > 1 ? ", " : "",
				p->nc > 1 ? p->c[1].name : "");
	for (uint32_t i = 0; i < p->nc; i++)
		if (!container || !*container || !strcmp(p->c[i].name, container))
			c = &p->c[i];
	if (!c)
		return svc_errf(e, ENOENT, "container %s is not valid for pod %s", container, name);
	if (previous && !c->restarts)
		return svc_errf(e, ENOENT,
				"previous terminated container \"%s\" in pod \"%s\" not found",
				c->name, name);
	snprintf(buf, n, "%s/logs/%s/%d.log", p->dir, c->name, c->restarts - (previous ? 1 : 0));
	if (stat(buf, &sb)) /* EAGAIN: not yet, unlike a pod that is gone */
		return svc_errf(e, EAGAIN, "container \"%s\" in pod \"%s\" has no log yet%s%s%s",
				c->name, name, c->reason[0] ? " (" : "", c->reason,
				c->reason[0] ? ")" : "");
	return 0;
}

cJSON *pods_events(struct svc_pods *ps, const char *ns, const char *name)
{
	struct pod_rt *p = find_pod(ps, ns, name);
	cJSON *arr;

	if (!p || !(arr = cJSON_CreateArray()))
		return NULL;
	for (int i = 0; i < p->nev; i++) {
		const struct pod_event *ev = &p->ev[i];
		cJSON *j = cJSON_CreateObject();
		char ts[21];

		cJSON_AddStringToObject(j, "type", ev->warning ? "Warning" : "Normal");
		cJSON_AddStringToObject(j, "reason", ev->reason);
		cJSON_AddStringToObject(j, "message", ev->msg);
		cJSON_AddNumberToObject(j, "count", ev->count);
		fmt_rfc3339(ev->first, ts);
		cJSON_AddStringToObject(j, "firstTimestamp", ts);
		fmt_rfc3339(ev->last, ts);
		cJSON_AddStringToObject(j, "lastTimestamp", ts);
		cJSON_AddItemToArray(arr, j);
	}
	return arr;
}

void pods_stats(const struct svc_pods *ps, size_t *pods, size_t *running)
{
	struct smap_ent *en;
	size_t cur = 0;

	*pods = *running = 0;
	while ((en = smap_next(&ps->by_uid, &cur))) {
		const struct pod_rt *p = en->val;
		bool ready;
		(*pods)++;
		if (phase_of(p, &ready) == POD_RUNNING)
			(*running)++;
	}
}

int pods_cleanup(const struct pods_config *cfg, struct svc_err *e)
{
	struct podnet_config nc = {
	    .bridge = cfg->bridge, .netns_dir = cfg->netns_dir, .masq_table = "svcd-pods"};
	struct svc_pods tmp = {0};
	int r;

	if ((r = parse_cidr4(cfg->pod_cidr, &tmp.pod_net, &tmp.pod_prefix, "--pod-cidr", e)) ||
	    (r = parse_cidr4(cfg->cluster_cidr, &tmp.cluster_net, &tmp.cluster_prefix,
			     "--cluster-cidr", e)))
		return r;
	nc.pod_net = tmp.pod_net;
	nc.pod_prefix = tmp.pod_prefix;
	nc.cluster_net = tmp.cluster_net;
	nc.cluster_prefix = tmp.cluster_prefix;
	return podnet_cleanup(&nc, e);
}
