/* SPDX-License-Identifier: MIT */
/* The userspace balancer as a reconciler backend: services of the model
 * become lb_service_set calls. */
#ifndef SVCD_LBSYNC_H
#define SVCD_LBSYNC_H

#include "lb.h"
#include "reconcile.h"

/* With all, every service goes through the balancer (--mode userspace);
 * without, only those annotated for it.  *lbp gets the balancer (owned by
 * the backend: freed by its destroy) for status and listings. */
int lb_backend_new(struct ev_loop *loop, const struct lb_config *cfg, bool all,
		   struct svc_backend *out, struct lb **lbp, struct svc_err *e);

#endif
