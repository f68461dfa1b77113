/* SPDX-License-Identifier: MIT */
/* A host address (/32 or /128) on the loopback interface, so that a
 * virtual address such as the DNS service IP is local to the node and a
 * socket can be bound to it.  Both calls are idempotent. */
#ifndef SVCD_LOCALADDR_H
#define SVCD_LOCALADDR_H

#include <stdbool.h>

#include "err.h"

/* Add ip ("10.96.0.10") to lo; already there is success. */
int localaddr_add(const char *ip, struct svc_err *e);
/* The same, with an IPv4 label ("lo:svcd") naming who owns it; *added
 * (when not NULL) says whether this call put it there, false when it was
 * there already (someone else's: leave it when done). */
int localaddr_add_label(const char *ip, const char *label, bool *added, struct svc_err *e);
/* Remove every address of lo carrying label (left by an earlier run). */
int localaddr_flush_label(const char *label, struct svc_err *e);
/* Remove ip from lo; already gone is success. */
int localaddr_del(const char *ip, struct svc_err *e);

#endif
