// SPDX-License-Identifier: MIT
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int range_init(struct svc_range *r, uint32_t base, uint32_t size)
{
	memset(r, 0, sizeof(*r));
	r->bits = calloc((size + 63) / 64, sizeof(uint64_t));
	if (!r->bits)
		return -ENOMEM;
	r->base = base;
	r->size = size;
	return 0;
}

static bool range_has(const struct svc_range *r, uint32_t v)
{
	return v - r->base < r->size;
}

static bool range_test(const struct svc_range *r, uint32_t v)
{
	uint32_t i = v - r->base;
	return r->bits[i / 64] >> (i % 64) & 1;
}

static void range_set(struct svc_range *r, uint32_t v, bool on)
{
	uint32_t i = v - r->base;
	uint64_t m = 1ULL << (i % 64);

	if (on == !!(r->bits[i / 64] & m))
		return;
	r->bits[i / 64] ^= m;
	r->used += on ? 1 : -1;
}

/* Next free value after the cursor, so freed values are not reused at once. */
static int range_any(struct svc_range *r, uint32_t *out)
{
	if (r->used >= r->size)
		return -ENOSPC;
	for (uint32_t k = 0; k < r->size; k++) {
		uint32_t i = (r->cursor + k) % r->size;
		if (r->bits[i / 64] == UINT64_MAX) {
			k += 63 - i % 64;
			continue;
		}
		if (!(r->bits[i / 64] >> (i % 64) & 1)) {
			r->cursor = (i + 1) % r->size;
			*out = r->base + i;
			return 0;
		}
	}
	return -ENOSPC;
}

int alloc_init(struct svc_alloc *a, const char *service_cidr, uint16_t np_lo, uint16_t np_hi,
	       const struct svc_addr *reserved, struct svc_err *e)
{
	uint32_t size, base;

	memset(a, 0, sizeof(*a));
	if (cidr_parse(service_cidr, &a->cidr) || a->cidr.base.family != AF_INET)
		return svc_errf(e, EINVAL,
				"--service-cidr: \"%s\" is not an IPv4 CIDR like 10.96.0.0/16",
				service_cidr);
	if (a->cidr.len < 12 || a->cidr.len > 30)
		return svc_errf(e, EINVAL, "--service-cidr: prefix length must be 12-30, got /%u",
				a->cidr.len);
	if (!np_lo || np_lo > np_hi)
		return svc_errf(e, EINVAL, "--node-port-range: %u-%u is not a valid range", np_lo,
				np_hi);
	size = 1U << (32 - a->cidr.len);
	base = addr_v4(&a->cidr.base);
	if (range_init(&a->ips, base, size) ||
	    range_init(&a->node_ports, np_lo, (uint32_t)np_hi - np_lo + 1)) {
		alloc_free(a);
		return svc_errf(e, ENOMEM, "allocating address bitmaps");
	}
	/* The network and broadcast addresses are never handed out. */
	range_set(&a->ips, base, true);
	range_set(&a->ips, base + size - 1, true);
	if (reserved && reserved->family == AF_INET && cidr_contains(&a->cidr, reserved))
		range_set(&a->ips, addr_v4(reserved), true);
	return 0;
}

void alloc_free(struct svc_alloc *a)
{
	free(a->ips.bits);
	free(a->node_ports.bits);
	a->ips.bits = a->node_ports.bits = NULL;
}

void alloc_txn_begin(struct alloc_txn *t, struct svc_alloc *a)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
}

static int txn_log(struct alloc_txn *t, struct svc_range *r, uint32_t v, bool take)
{
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		struct alloc_op *ops = realloc(t->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		t->ops = ops;
		t->cap = cap;
	}
	t->ops[t->n++] = (struct alloc_op){.r = r, .v = v, .take = take};
	return 0;
}

static int txn_take(struct alloc_txn *t, struct svc_range *r, uint32_t v, struct svc_err *e)
{
	if (txn_log(t, r, v, true))
		return svc_errf(e, ENOMEM, "out of memory");
	range_set(r, v, true);
	return 0;
}

int alloc_txn_ip(struct alloc_txn *t, struct svc_addr *ip, const char *field, struct svc_err *e)
{
	struct svc_range *r = &t->a->ips;
	char cidr[SVC_ADDR_STRLEN], s[SVC_ADDR_STRLEN];
	uint32_t v;

	addr_fmt(&t->a->cidr.base, cidr);
	if (!ip->family) {
		if (range_any(r, &v))
			return svc_errf(e, ENOSPC,
					"%s: no free address in the service CIDR %s/%u (%u in use)",
					field, cidr, t->a->cidr.len, r->used);
		addr_from_v4(ip, v);
		return txn_take(t, r, v, e);
	}
	if (!cidr_contains(&t->a->cidr, ip))
		return svc_errf(e, EINVAL, "%s: %s is not in the service CIDR %s/%u", field,
				addr_fmt(ip, s), cidr, t->a->cidr.len);
	v = addr_v4(ip);
	if (range_test(r, v))
		return svc_errf(e, EEXIST, "%s: %s is already allocated or reserved", field,
				addr_fmt(ip, s));
	return txn_take(t, r, v, e);
}

int alloc_txn_port(struct alloc_txn *t, uint16_t *port, const char *field, struct svc_err *e)
{
	struct svc_range *r = &t->a->node_ports;
	uint32_t v;

	if (!*port) {
		if (range_any(r, &v))
			return svc_errf(e, ENOSPC, "%s: no free nodePort in %u-%u (%u in use)",
					field, r->base, r->base + r->size - 1, r->used);
		*port = (uint16_t)v;
		return txn_take(t, r, v, e);
	}
	if (!range_has(r, *port))
		return svc_errf(e, EINVAL, "%s: %u is not in the nodePort range %u-%u", field,
				*port, r->base, r->base + r->size - 1);
	if (range_test(r, *port))
		return svc_errf(e, EEXIST, "%s: %u is already allocated", field, *port);
	return txn_take(t, r, *port, e);
}

void alloc_txn_release_ip(struct alloc_txn *t, const struct svc_addr *ip)
{
	if (ip->family == AF_INET && cidr_contains(&t->a->cidr, ip))
		txn_log(t, &t->a->ips, addr_v4(ip), false);
}

void alloc_txn_release_port(struct alloc_txn *t, uint16_t port)
{
	if (port && range_has(&t->a->node_ports, port))
		txn_log(t, &t->a->node_ports, port, false);
}

void alloc_txn_commit(struct alloc_txn *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (!t->ops[i].take)
			range_set(t->ops[i].r, t->ops[i].v, false);
	free(t->ops);
	memset(t, 0, sizeof(*t));
}

void alloc_txn_abort(struct alloc_txn *t)
{
	for (uint32_t i = t->n; i-- > 0;)
		if (t->ops[i].take)
			range_set(t->ops[i].r, t->ops[i].v, false);
	free(t->ops);
	memset(t, 0, sizeof(*t));
}
