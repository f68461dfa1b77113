/* SPDX-License-Identifier: MIT */
/* Allocation of ClusterIPs and nodePorts from fixed ranges.  Every change is
 * made inside a transaction so that a failed apply gives back exactly what it
 * took; releases only happen at commit, so a value freed by one document
 * cannot be handed to another document of the same apply. */
#ifndef SVCD_ALLOC_H
#define SVCD_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "err.h"

struct svc_range {
	uint32_t base, size, used, cursor;
	uint64_t *bits;
};

struct svc_alloc {
	struct svc_cidr cidr;	     /* --service-cidr */
	struct svc_range ips;	     /* host-order IPv4 values */
	struct svc_range node_ports; /* --node-port-range */
};

struct alloc_op {
	struct svc_range *r;
	uint32_t v;
	bool take; /* false: release at commit */
};

struct alloc_txn {
	struct svc_alloc *a;
	struct alloc_op *ops;
	uint32_t n, cap;
};

/* `reserved` (may be unset) is kept out of the pool, e.g. the DNS service IP. */
int alloc_init(struct svc_alloc *a, const char *service_cidr, uint16_t np_lo, uint16_t np_hi,
	       const struct svc_addr *reserved, struct svc_err *e);
void alloc_free(struct svc_alloc *a);

void alloc_txn_begin(struct alloc_txn *t, struct svc_alloc *a);
/* Take a given ClusterIP (free and in range) or any free one when `ip` is unset. */
int alloc_txn_ip(struct alloc_txn *t, struct svc_addr *ip, const char *field, struct svc_err *e);
/* Same for a nodePort; *port == 0 asks for any free one. */
int alloc_txn_port(struct alloc_txn *t, uint16_t *port, const char *field, struct svc_err *e);
void alloc_txn_release_ip(struct alloc_txn *t, const struct svc_addr *ip);
void alloc_txn_release_port(struct alloc_txn *t, uint16_t port);
void alloc_txn_commit(struct alloc_txn *t);
void alloc_txn_abort(struct alloc_txn *t);

#endif
