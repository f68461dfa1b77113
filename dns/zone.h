/* SPDX-License-Identifier: MIT */
/* The cluster zone: Kubernetes DNS-based service discovery (schema 1.1.0,
 * CoreDNS's choices where it is silent), answered from an index kept in step
 * with the object model.  Answering allocates nothing; updates rebuild the
 * names of one service or pod at a time.  Nothing here prints. */
#ifndef SVCD_DNS_ZONE_H
#define SVCD_DNS_ZONE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "err.h"
#include "model.h"
#include "msg.h"
#include "state.h"

/* What dns_zone_answer did with a query. */
enum dns_zone_result {
	DNS_Z_ANSWERED,	      /* r holds the complete answer (or NXDOMAIN/NODATA + SOA) */
	DNS_Z_NOT_OURS,	      /* outside the zone and not a PTR we own: forward it */
	DNS_Z_CNAME_EXTERNAL, /* a CNAME to an ExternalName was added: resolve target */
};

struct dns_zone;

/* A zone for domain ("cluster.local") whose records live ttl seconds.
 * Returns 0 or -errno with e filled. */
int dns_zone_new(const char *domain, uint32_t ttl, struct dns_zone **out, struct svc_err *e);
void dns_zone_free(struct dns_zone *z);

/* Keep the zone in step with the model: call for every Service and Pod
 * event, and EV_ENDPOINTS of a service (other kinds are ignored; obj may be
 * NULL).  Returns 0 or -ENOMEM, in which case the object's names are gone
 * until its next event. */
int dns_zone_update(struct dns_zone *z, enum svc_event ev, const struct svc_obj *obj);

/* Answer q (class IN; the caller refuses others) into r, which the caller
 * has dns_resp_init'ed.  AA is set on everything we answer.  For
 * DNS_Z_CNAME_EXTERNAL the CNAME is in r and its target, lower case without
 * the trailing dot, in target (n bytes). */
enum dns_zone_result dns_zone_answer(const struct dns_zone *z, const struct dns_query *q,
				     struct dns_resp *r, char *target, size_t n);

/* The namespace of the pod with this IP (search-path completion), or NULL. */
const char *dns_zone_pod_ns(const struct dns_zone *z, const struct svc_addr *ip);

/* The SOA serial: grows with every change, for tests and metrics. */
uint32_t dns_zone_serial(const struct dns_zone *z);

#endif
