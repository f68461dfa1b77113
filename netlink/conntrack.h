/* SPDX-License-Identifier: MIT */
/* Conntrack clean-up through ctnetlink (libmnl): when a UDP endpoint goes
 * away, the flows the kernel still translates to it are deleted so that the
 * next datagram is load-balanced afresh instead of blackholed. */
#ifndef SVCD_CONNTRACK_H
#define SVCD_CONNTRACK_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "err.h"

/* One translated flow to forget: its original destination (a ClusterIP,
 * external IP or, with orig_dst unset, any local address for a nodePort) and
 * the endpoint it was sent to (the reply tuple's source). */
struct ct_match {
	struct svc_addr orig_dst; /* family 0: any destination */
	uint16_t orig_dport;	  /* host order */
	uint8_t proto;		  /* IPPROTO_UDP here; the nftables backend notes others too */
	struct svc_addr endpoint;
	uint16_t endpoint_port; /* host order; 0: any */
};

/* Delete every UDP conntrack entry (IPv4 and IPv6) matching one of `m`, in
 * the caller's network namespace; *deleted gets the count.  Entries that
 * vanish meanwhile are not errors. */
int ct_delete_udp(const struct ct_match *m, size_t n, size_t *deleted, struct svc_err *e);

#endif
