/* SPDX-License-Identifier: MIT */
/* IP addresses and prefixes as the model stores them, family-tagged. */
#ifndef SVCD_ADDR_H
#define SVCD_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

struct svc_addr {
	uint8_t family; /* AF_INET or AF_INET6; 0 means unset */
	uint8_t a[16];	/* network order; IPv4 uses a[0..3] */
};

struct svc_cidr {
	struct svc_addr base; /* host bits cleared */
	uint8_t len;
};

#define SVC_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/* Strict parse of a textual address (no leading zeros games, no ports). */
int addr_parse(const char *s, struct svc_addr *out);
const char *addr_fmt(const struct svc_addr *a, char buf[static SVC_ADDR_STRLEN]);
bool addr_eq(const struct svc_addr *x, const struct svc_addr *y);
/* "10.96.0.0/16"; host bits set is an error (-EINVAL). */
int cidr_parse(const char *s, struct svc_cidr *out);
bool cidr_contains(const struct svc_cidr *c, const struct svc_addr *a);
/* For IPv4 only: address as a host-order integer. */
uint32_t addr_v4(const struct svc_addr *a);
void addr_from_v4(struct svc_addr *a, uint32_t host_order);

#endif
