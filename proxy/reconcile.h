/* SPDX-License-Identifier: MIT */
/* The reconciler: changes to the desired state mark services dirty; when the
 * loop is idle the dirty set is handed to every data-plane backend in one
 * call, so bursts coalesce.  A periodic full resync repairs drift. */
#ifndef SVCD_RECONCILE_H
#define SVCD_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "state.h"

struct ev_loop;

/* The one narrow interface every data plane (nftables, userspace balancer,
 * DNS) implements. */
struct svc_backend {
	const char *name;
	/* Make the data plane match the model for the services in `changed`
	 * ("namespace/name"; a name missing from the model was deleted), or for
	 * everything when `full`.  Must be all-or-nothing per call. */
	int (*sync)(void *priv, const struct svc_model *m, const char *const *changed, size_t n,
		    bool full, struct svc_err *e);
	void (*destroy)(void *priv);
	/* Optional: how much the backend has programmed, for status. */
	void (*stats)(void *priv, size_t *elements, size_t *chains);
	void *priv;
};

struct reconcile_status {
	const char *mode; /* names of the active backends, or "none" */
	uint64_t desired, applied;
	bool synced;
	double last_duration; /* seconds */
	bool last_full;
	time_t last_time;     /* 0: never */
	char last_error[256]; /* "" when the last sync succeeded */
	uint64_t syncs, failures;
	size_t last_changed;	 /* services handed to the backends in the last sync */
	size_t elements, chains; /* what the backends report having programmed */
};

struct svc_reconciler;

int reconciler_new(struct ev_loop *loop, struct svc_state *st, double resync_seconds,
		   struct svc_reconciler **out, struct svc_err *e);
void reconciler_free(struct svc_reconciler *r);
/* Takes ownership of the backend (destroy is called on free). */
int reconciler_add_backend(struct svc_reconciler *r, const struct svc_backend *b);
void reconciler_status(const struct svc_reconciler *r, struct reconcile_status *out);

/* Call fn once the applied generation reaches gen (err 0), or a sync of it
 * fails (err < 0, msg says why).  The returned handle cancels it. */
typedef void (*reconcile_wait_fn)(void *ctx, int err, const char *msg);
struct reconcile_waiter;
struct reconcile_waiter *reconciler_wait(struct svc_reconciler *r, uint64_t gen,
					 reconcile_wait_fn fn, void *ctx);
void reconciler_cancel(struct svc_reconciler *r, struct reconcile_waiter *w);

#endif
