// SPDX-License-Identifier: MIT
#include "reconcile.h"

#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smap.h"
#include "util.h"

#define MAX_BACKENDS  4
#define RETRY_SECONDS 1.0

struct reconcile_waiter {
	struct reconcile_waiter *next;
	uint64_t gen;
	reconcile_wait_fn fn;
	void *ctx;
};

struct svc_reconciler {
	struct ev_loop *loop;
	struct svc_state *st;
	struct svc_backend backends[MAX_BACKENDS];
	int nbackends;
	struct smap dirty; /* "ns/name" -> the same string, owned */
	bool full_pending;
	ev_idle idle;
	ev_timer resync, retry;
	double resync_period;
	struct reconcile_status status;
	char mode[64];
	struct reconcile_waiter *waiters;
};

static void schedule(struct svc_reconciler *r)
{
	if (!ev_is_active(&r->idle) && !ev_is_active(&r->retry))
		ev_idle_start(r->loop, &r->idle);
}

static void mark_dirty(struct svc_reconciler *r, const struct svc_obj *svc)
{
	char *key;

	if (asprintf(&key, "%s/%s", svc->ns, svc->name) < 0) {
		r->full_pending = true; /* cannot track it: resync everything */
		return;
	}
	if (smap_get(&r->dirty, key)) {
		free(key);
	} else if (smap_put(&r->dirty, key, key)) {
		r->full_pending = true;
		free(key);
	}
}

static void on_change(void *ctx, enum svc_event ev, const struct svc_obj *o)
{
	struct svc_reconciler *r = ctx;

	(void)ev;
	if (o->kind == KIND_SERVICE)
		mark_dirty(r, o);
	schedule(r);
}

static void clear_dirty(struct svc_reconciler *r)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&r->dirty, &cur)))
		free((char *)ent->key);
	smap_free(&r->dirty);
}

/* Wake the waiters that this outcome settles. */
static void settle(struct svc_reconciler *r, uint64_t gen, int err, const char *msg)
{
	struct reconcile_waiter **pp = &r->waiters, *w, *done = NULL;

	while ((w = *pp)) {
		if (w->gen <= gen) {
			*pp = w->next;
			w->next = done;
			done = w;
		} else {
			pp = &w->next;
		}
	}
	/* Callbacks run after the list is consistent: they may add or cancel waiters. */
	while ((w = done)) {
		done = w->next;
		w->fn(w->ctx, err, msg);
		free(w);
	}
}

static int run_backends(struct svc_reconciler *r, const char *const *keys, size_t n, bool full,
			struct svc_err *e)
{
	for (int i = 0; i < r->nbackends; i++) {
		struct svc_backend *b = &r->backends[i];
		int rc = b->sync(b->priv, r->st->model, keys, n, full, e);
		if (rc)
			return rc; /* backends name themselves in their messages */
	}
	return 0;
}

static void sync_now(struct svc_reconciler *r)
{
	uint64_t gen = r->st->generation;
	bool full = r->full_pending;
	struct svc_err e = {0};
	const char **keys;
	struct smap_ent *ent;
	size_t n = 0, cur = 0;
	double t0 = now_mono();
	int rc;

	keys = calloc(r->dirty.n + 1, sizeof(*keys));
	if (!keys) {
		ev_timer_again(r->loop, &r->retry);
		return;
	}
	while ((ent = smap_next(&r->dirty, &cur)))
		keys[n++] = ent->key;
	rc = run_backends(r, keys, n, full, &e);
	free(keys);
	r->status.last_duration = now_mono() - t0;
	r->status.last_full = full;
	r->status.last_time = time(NULL);
	r->status.last_changed = full ? model_count(r->st->model, KIND_SERVICE) : n;
	r->status.syncs++;
	if (rc) {
		r->status.failures++;
		snprintf(r->status.last_error, sizeof(r->status.last_error), "%s", e.msg);
		svc_log(SVC_LOG_ERROR, "sync failed (retrying in %.0f s): %s", RETRY_SECONDS,
			e.msg);
		ev_timer_again(r->loop, &r->retry);
		settle(r, gen, rc, e.msg);
		return;
	}
	r->status.last_error[0] = '\0';
	r->status.applied = gen;
	/* A big sync leaves big holes in the heap (dumps, diffs): return them. */
	if (full || n > 1000)
		malloc_trim(0);
	r->full_pending = false;
	clear_dirty(r);
	settle(r, gen, 0, NULL);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct svc_reconciler *r = w->data;

	(void)revents;
	ev_idle_stop(loop, w);
	sync_now(r);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct svc_reconciler *r = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	schedule(r);
}

static void on_resync(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct svc_reconciler *r = w->data;

	(void)loop;
	(void)revents;
	r->full_pending = true;
	schedule(r);
}

int reconciler_new(struct ev_loop *loop, struct svc_state *st, double resync_seconds,
		   struct svc_reconciler **out, struct svc_err *e)
{
	struct svc_reconciler *r = calloc(1, sizeof(*r));

	if (!r)
		return svc_errf(e, ENOMEM, "out of memory");
	r->loop = loop;
	r->st = st;
	r->resync_period = resync_seconds;
	r->full_pending = true; /* the first sync takes in everything */
	snprintf(r->mode, sizeof(r->mode), "none");
	ev_idle_init(&r->idle, on_idle);
	r->idle.data = r;
	ev_init(&r->retry, on_retry);
	r->retry.repeat = RETRY_SECONDS;
	r->retry.data = r;
	ev_timer_init(&r->resync, on_resync, resync_seconds, resync_seconds);
	r->resync.data = r;
	if (resync_seconds > 0)
		ev_timer_start(loop, &r->resync);
	state_listen(st, on_change, r);
	schedule(r);
	*out = r;
	return 0;
}

void reconciler_free(struct svc_reconciler *r)
{
	if (!r)
		return;
	ev_idle_stop(r->loop, &r->idle);
	ev_timer_stop(r->loop, &r->retry);
	ev_timer_stop(r->loop, &r->resync);
	settle(r, UINT64_MAX, -ECANCELED, "svcd is shutting down");
	for (int i = 0; i < r->nbackends; i++)
		if (r->backends[i].destroy)
			r->backends[i].destroy(r->backends[i].priv);
	clear_dirty(r);
	free(r);
}

int reconciler_add_backend(struct svc_reconciler *r, const struct svc_backend *b)
{
	if (r->nbackends == MAX_BACKENDS)
		return -ENOSPC;
	r->backends[r->nbackends++] = *b;
	r->mode[0] = '\0';
	for (int i = 0; i < r->nbackends; i++)
		snprintf(r->mode + strlen(r->mode), sizeof(r->mode) - strlen(r->mode), "%s%s",
			 i ? "+" : "", r->backends[i].name);
	r->full_pending = true;
	schedule(r);
	return 0;
}

void reconciler_status(const struct svc_reconciler *r, struct reconcile_status *out)
{
	*out = r->status;
	out->mode = r->mode;
	out->desired = r->st->generation;
	out->synced = out->applied >= out->desired && !out->last_error[0];
	for (int i = 0; i < r->nbackends; i++) {
		size_t el = 0, ch = 0;
		if (r->backends[i].stats)
			r->backends[i].stats(r->backends[i].priv, &el, &ch);
		out->elements += el;
		out->chains += ch;
	}
}

struct reconcile_waiter *reconciler_wait(struct svc_reconciler *r, uint64_t gen,
					 reconcile_wait_fn fn, void *ctx)
{
	struct reconcile_waiter *w;

	if (r->status.applied >= gen) {
		fn(ctx, 0, NULL);
		return NULL;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		fn(ctx, -ENOMEM, "out of memory");
		return NULL;
	}
	w->gen = gen;
	w->fn = fn;
	w->ctx = ctx;
	w->next = r->waiters;
	r->waiters = w;
	schedule(r);
	return w;
}

void reconciler_cancel(struct svc_reconciler *r, struct reconcile_waiter *w)
{
	for (struct reconcile_waiter **pp = &r->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			free(w);
			return;
		}
}
