/* SPDX-License-Identifier: MIT */
/* The nftables data plane: service DNAT programmed through libnftnl and
 * libmnl in one table per family, every sync one atomic transaction.  See
 * the README's "nftables ruleset" section for the shape. */
#ifndef SVCD_NFT_H
#define SVCD_NFT_H

#include "err.h"
#include "reconcile.h"

struct nft_config {
	const char *table;	  /* "svcd" */
	const char *cluster_cidr; /* traffic from outside it is masqueraded */
	const char *node_name;	  /* endpoints with this nodeName are local */
};

/* Check that nf_tables can be programmed here (creates the table if it is
 * missing, touching nothing else) and fill a backend.  Fails with EPERM or
 * EPROTONOSUPPORT-like errors where nftables cannot be used. */
int nft_backend_new(const struct nft_config *cfg, struct svc_backend *out, struct svc_err *e);

/* Remove everything svcd programmed (its tables); absent tables are fine. */
int nft_cleanup(const char *table, struct svc_err *e);

#endif
