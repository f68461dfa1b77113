/* SPDX-License-Identifier: MIT */
/* kubectl's names for the kinds svcd stores. */
#ifndef SVCCTL_KINDS_H
#define SVCCTL_KINDS_H

#include "util.h"

struct ctl_kind {
	const char *kind;     /* "Deployment": as in manifests and the protocol */
	const char *resource; /* "deployment.apps": kubectl's "deployment.apps/web created" */
	const char *plural;   /* "deployments.apps": kubectl's NotFound messages */
	const char *names[6]; /* what the command line accepts, case-insensitively */
};

/* "svc", "Services", "deployments.apps"... or NULL. */
const struct ctl_kind *ctl_kind_lookup(const char *name);
/* The exact Kind a server reports, or NULL. */
const struct ctl_kind *ctl_kind_find(const char *kind);
/* Append the resource name for a server-reported Kind ("service"; an unknown
 * Kind is lower-cased).  Returns 0 or -ENOMEM. */
int ctl_kind_resource(struct sbuf *b, const char *kind);

#endif
