// SPDX-License-Identifier: MIT
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int addr_parse(const char *s, struct svc_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, out->a) != 1)
			return -EINVAL;
		out->family = AF_INET6;
		return 0;
	}
	/* inet_pton(AF_INET) already rejects octal and short forms. */
	if (inet_pton(AF_INET, s, out->a) != 1)
		return -EINVAL;
	out->family = AF_INET;
	return 0;
}

/* Dotted quad by hand: the DNS responder formats the client's address for
 * each name it does not have (is the client a pod?), and inet_ntop goes
 * through sprintf. */
static void fmt_v4(const uint8_t a[4], char *buf)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (v >= 100)
			*buf++ = (char)('0' + v / 100);
		if (v >= 10)
			*buf++ = (char)('0' + v / 10 % 10);
		*buf++ = (char)('0' + v % 10);
		*buf++ = i < 3 ? '.' : '\0';
	}
}

const char *addr_fmt(const struct svc_addr *a, char buf[static SVC_ADDR_STRLEN])
{
	if (a->family == AF_INET) {
		fmt_v4(a->a, buf);
		return buf;
	}
	if (!a->family || !inet_ntop(a->family, a->a, buf, SVC_ADDR_STRLEN))
		snprintf(buf, SVC_ADDR_STRLEN, "<none>");
	return buf;
}

bool addr_eq(const struct svc_addr *x, const struct svc_addr *y)
{
	return x->family == y->family && !memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16);
}

static bool prefix_match(const uint8_t *x, const uint8_t *y, unsigned len)
{
	unsigned full = len / 8, rem = len % 8;

	if (memcmp(x, y, full))
		return false;
	if (!rem)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (x[full] & mask) == (y[full] & mask);
}

int cidr_parse(const char *s, struct svc_cidr *out)
{
	char ip[SVC_ADDR_STRLEN], *end;
	const char *slash = strchr(s, '/');
	long len;
	unsigned max;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (addr_parse(ip, &out->base))
		return -EINVAL;
	errno = 0;
	len = strtol(slash + 1, &end, 10);
	max = out->base.family == AF_INET ? 32 : 128;
	if (errno || *end || end == slash + 1 || len < 0 || len > (long)max)
		return -EINVAL;
	out->len = (uint8_t)len;
	/* Host bits must be clear, as Kubernetes requires for its CIDR flags. */
	for (unsigned bit = (unsigned)len; bit < max; bit++)
		if (out->base.a[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	return 0;
}

bool cidr_contains(const struct svc_cidr *c, const struct svc_addr *a)
{
	return a->family == c->base.family && prefix_match(a->a, c->base.a, c->len);
}

uint32_t addr_v4(const struct svc_addr *a)
{
	return (uint32_t)a->a[0] << 24 | (uint32_t)a->a[1] << 16 | (uint32_t)a->a[2] << 8 | a->a[3];
}

void addr_from_v4(struct svc_addr *a, uint32_t v)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->a[0] = (uint8_t)(v >> 24);
	a->a[1] = (uint8_t)(v >> 16);
	a->a[2] = (uint8_t)(v >> 8);
	a->a[3] = (uint8_t)v;
}
