// SPDX-License-Identifier: MIT
/* The DNS wire cursors.  See wire.h for the contract: bounds-checked,
 * sticky errors, no allocation. */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DNS_HDR_LEN 12 /* compression pointers never point into the header */

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* ---- reader ---- */

void dns_rd_init(struct dns_rd *r, const uint8_t *wire, size_t size)
{
	r->wire = wire;
	r->size = size;
	r->pos = r->err_pos = 0;
	r->err = 0;
	r->why[0] = 0;
}

int dns_rd_fail(struct dns_rd *r, size_t pos, const char *fmt, ...)
{
	va_list ap;

	if (r->err)
		return r->err;
	r->err = -EBADMSG;
	r->err_pos = pos;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return r->err;
}

int dns_rd_error(const struct dns_rd *r, struct svc_err *e)
{
	return svc_errf(e, r->err ? -r->err : EBADMSG, "offset %zu: %s", r->err_pos, r->why);
}

size_t dns_rd_left(const struct dns_rd *r)
{
	return r->err ? 0 : r->size - r->pos;
}

/* Returns the n bytes at the cursor and advances, or NULL (and fails). */
static const uint8_t *take(struct dns_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->size - r->pos) {
		dns_rd_fail(r, r->pos, "truncated: need %zu bytes, %zu left", n, r->size - r->pos);
		return NULL;
	}
	p = r->wire + r->pos;
	r->pos += n;
	return p;
}

uint8_t dns_rd_u8(struct dns_rd *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

uint16_t dns_rd_u16(struct dns_rd *r)
{
	const uint8_t *p = take(r, 2);
	return p ? dns_get16(p) : 0;
}

uint32_t dns_rd_u32(struct dns_rd *r)
{
	const uint8_t *p = take(r, 4);
	return p ? dns_get32(p) : 0;
}

void dns_rd_bytes(struct dns_rd *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

void dns_rd_skip(struct dns_rd *r, size_t n)
{
	take(r, n);
}

void dns_rd_seek(struct dns_rd *r, size_t pos)
{
	if (r->err)
		return;
	if (pos > r->size)
		dns_rd_fail(r, r->pos, "seek to %zu past the end (%zu bytes)", pos, r->size);
	else
		r->pos = pos;
}

/* A pointer at p to t is followed only when t lies before run, the start of
 * the labels read since the last jump: offsets then strictly decrease and
 * no loop can form. */
static int check_ptr(struct dns_rd *r, size_t p, size_t t, size_t run)
{
	if (t == p)
		return dns_rd_fail(r, p, "compression pointer to itself");
	if (t > p)
		return dns_rd_fail(r, p, "forward compression pointer to %zu", t);
	if (t >= run)
		return dns_rd_fail(r, p, "compression loop: pointer to %zu", t);
	if (t < DNS_HDR_LEN)
		return dns_rd_fail(r, p, "compression pointer to %zu, inside the header", t);
	return 0;
}

/* Append the label at p to n; returns its length byte or -1 on failure. */
static int take_label(struct dns_rd *r, size_t p, struct dns_name *n)
{
	uint8_t c = r->wire[p];

	if (c > DNS_LABEL_MAX) /* 0x40 and 0x80 label types are obsolete or reserved */
		return dns_rd_fail(r, p, "label of %u bytes (at most %d)", c, DNS_LABEL_MAX), -1;
	if (n->len + 1 + c > DNS_NAME_MAX)
		return dns_rd_fail(r, p, "name longer than %d bytes", DNS_NAME_MAX), -1;
	if (c >= r->size - p)
		return dns_rd_fail(r, p, "label of %u bytes runs past the end", c), -1;
	memcpy(n->wire + n->len, r->wire + p, 1 + (size_t)c);
	n->len += 1 + c;
	if (c)
		n->labels++;
	return c;
}

int dns_rd_name(struct dns_rd *r, struct dns_name *out)
{
	struct dns_name tmp, *n = out ? out : &tmp;
	size_t p = r->pos, run = r->pos, end = 0;
	int c;

	n->len = n->labels = 0;
	while (!r->err) {
		if (p >= r->size)
			return dns_rd_fail(r, p, "name runs past the end");
		if ((r->wire[p] & 0xc0) == 0xc0) {
			size_t t;

			if (p + 1 >= r->size)
				return dns_rd_fail(r, p, "truncated compression pointer");
			t = (size_t)(r->wire[p] & 0x3f) << 8 | r->wire[p + 1];
			if (check_ptr(r, p, t, run))
				break;
			if (!end)
				end = p + 2;
			p = run = t;
			continue;
		}
		c = take_label(r, p, n);
		if (c == 0)
			r->pos = end ? end : p + 1;
		if (c <= 0)
			break;
		p += 1 + (size_t)c;
	}
	if (r->err)
		n->len = n->labels = 0;
	return r->err;
}

/* ---- writer ---- */

void dns_wr_init(struct dns_wr *w, uint8_t *buf, size_t cap)
{
	w->wire = buf;
	w->cap = w->limit = cap;
	w->pos = w->ncomp = 0; /* comp is read only below ncomp */
	w->err = 0;
	w->truncated = false;
}

void dns_wr_set_limit(struct dns_wr *w, size_t limit)
{
	if (limit > w->cap)
		limit = w->cap;
	w->limit = limit < w->pos ? w->pos : limit;
}

/* Returns where n bytes may go and advances, or NULL (and fails). */
static uint8_t *room(struct dns_wr *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (n > w->limit - w->pos) {
		w->err = -EMSGSIZE;
		w->truncated = true;
		return NULL;
	}
	p = w->wire + w->pos;
	w->pos += n;
	return p;
}

void dns_wr_u8(struct dns_wr *w, uint8_t v)
{
	dns_wr_bytes(w, &v, 1);
}

void dns_wr_u16(struct dns_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	dns_wr_bytes(w, b, 2);
}

void dns_wr_u32(struct dns_wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	dns_wr_bytes(w, b, 4);
}

void dns_wr_bytes(struct dns_wr *w, const void *src, size_t n)
{
	uint8_t *p = room(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void dns_wr_u16_at(struct dns_wr *w, size_t pos, uint16_t v)
{
	if (w->err)
		return;
	if (pos > w->pos || w->pos - pos < 2) {
		w->err = -EINVAL; /* a caller bug, not a full message */
		return;
	}
	w->wire[pos] = (uint8_t)(v >> 8);
	w->wire[pos + 1] = (uint8_t)v;
}

struct dns_wr_mark dns_wr_mark(const struct dns_wr *w)
{
	return (struct dns_wr_mark){.pos = w->pos, .ncomp = w->ncomp};
}

void dns_wr_rewind(struct dns_wr *w, struct dns_wr_mark m)
{
	if (m.pos > w->pos || m.ncomp > w->ncomp)
		return;
	w->pos = m.pos;
	w->ncomp = m.ncomp;
	w->err = 0;
}

/* Does the name at offset o of our own output equal the uncompressed
 * suffix s?  We wrote both, yet the hop limit keeps a bug from looping. */
static bool comp_match(const struct dns_wr *w, size_t o, const uint8_t *s)
{
	for (int hops = 0; hops < 128 && o < w->pos; hops++) {
		uint8_t c = w->wire[o];

		if ((c & 0xc0) == 0xc0) {
			o = (size_t)(c & 0x3f) << 8 | w->wire[o + 1];
			continue;
		}
		if (c != s[0])
			return false;
		if (c == 0)
			return true;
		for (size_t i = 1; i <= c; i++)
			if (lower(w->wire[o + i]) != lower(s[i]))
				return false;
		o += 1 + (size_t)c;
		s += 1 + c;
	}
	return false;
}

/* Offset of an earlier copy of suffix s, or -1. */
static long comp_find(const struct dns_wr *w, const uint8_t *s)
{
	for (size_t i = 0; i < w->ncomp; i++)
		if (comp_match(w, w->comp[i], s))
			return w->comp[i];
	return -1;
}

/* Do n's labels end with the root label exactly at n->len?  Checked before
 * writing so that a bad name cannot make us read past it. */
bool dns_name_valid(const struct dns_name *n)
{
	size_t p = 0;

	while (p < n->len && n->wire[p] && n->wire[p] <= DNS_LABEL_MAX)
		p += 1 + (size_t)n->wire[p];
	return p + 1 == n->len && n->wire[p] == 0;
}

void dns_wr_name(struct dns_wr *w, const struct dns_name *n, bool compress)
{
	size_t p = 0, start = w->pos;
	long o = -1;
	uint8_t *dst;

	if (!w->err && !dns_name_valid(n))
		w->err = -EINVAL;
	if (w->err)
		return;
	/* The longest suffix already in the message, if any: labels before it
	 * are written as they are, in one copy, then a pointer or the root. */
	for (; compress && w->ncomp && n->wire[p]; p += 1 + (size_t)n->wire[p])
		if ((o = comp_find(w, n->wire + p)) >= 0)
			break;
	if (!compress || !w->ncomp)
		p = (size_t)n->len - 1;
	if (!(dst = room(w, p + (o >= 0 ? 2 : 1))))
		return;
	memcpy(dst, n->wire, p);
	if (o >= 0) {
		dst[p] = (uint8_t)(0xc0 | o >> 8);
		dst[p + 1] = (uint8_t)o;
	} else {
		dst[p] = 0;
	}
	/* Remember these suffixes for later names, while a pointer can reach them. */
	for (size_t q = 0; q < p && w->ncomp < DNS_WR_COMP_MAX && start + q <= DNS_PTR_MAX;
	     q += 1 + (size_t)n->wire[q])
		w->comp[w->ncomp++] = (uint16_t)(start + q);
}

/* ---- names ---- */

/* Parse one possibly escaped character of s; returns chars consumed or 0. */
static size_t unescape(const char *s, uint8_t *out)
{
	if (s[0] != '\\') {
		*out = (uint8_t)s[0];
		return 1;
	}
	if (s[1] >= '0' && s[1] <= '9') {
		int v = 0;

		for (int i = 1; i <= 3; i++) {
			if (s[i] < '0' || s[i] > '9')
				return 0;
			v = v * 10 + (s[i] - '0');
		}
		*out = (uint8_t)v;
		return v > 255 ? 0 : 4;
	}
	*out = (uint8_t)s[1];
	return s[1] ? 2 : 0;
}

/* Parse one label of s into n; returns chars consumed or -1 (e filled). */
static long from_str_label(struct dns_name *n, const char *s, struct svc_err *e)
{
	size_t i = 0, start = n->len, len = 0;

	while (s[i] && s[i] != '.') {
		uint8_t c;
		size_t k = unescape(s + i, &c);

		if (!k)
			return svc_errf(e, EINVAL, "name \"%s\": bad escape", s), -1;
		if (len == DNS_LABEL_MAX)
			return svc_errf(e, EINVAL, "label longer than %d bytes", DNS_LABEL_MAX), -1;
		if (start + 2 + len >= DNS_NAME_MAX)
			return svc_errf(e, EINVAL, "name longer than %d bytes", DNS_NAME_MAX), -1;
		n->wire[start + 1 + len++] = c;
		i += k;
	}
	if (!len)
		return svc_errf(e, EINVAL, "empty label"), -1;
	n->wire[start] = (uint8_t)len;
	n->len += (uint8_t)(1 + len);
	n->labels++;
	return (long)i;
}

int dns_name_from_str(struct dns_name *n, const char *s, struct svc_err *e)
{
	n->len = n->labels = 0;
	if (!strcmp(s, "."))
		s++;
	while (*s) {
		long k = from_str_label(n, s, e);

		if (k < 0) {
			n->len = n->labels = 0;
			return -EINVAL;
		}
		s += k;
		if (*s == '.')
			s++;
	}
	n->wire[n->len++] = 0;
	return 0;
}

/* Append the presentation form of one byte; returns chars written. */
static size_t present(uint8_t c, char *out)
{
	c = lower(c);
	if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c > 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = (char)('0' + c / 100);
	out[2] = (char)('0' + c / 10 % 10);
	out[3] = (char)('0' + c % 10);
	return 4;
}

/* Bytes that stand for themselves in presentation form: printable ASCII
 * but the six that present() escapes.  Checked first, as nearly every byte
 * of a real name is one of them. */
static const uint8_t plain[256] = {
    [0x21] = 1,		 [0x23 ... 0x27] = 1, [0x2a ... 0x2d] = 1,
    [0x2f ... 0x3a] = 1, [0x3c ... 0x5b] = 1, [0x5d ... 0x7e] = 1,
};

int dns_name_str(const struct dns_name *n, char *buf, size_t size)
{
	char tmp[4];
	size_t o = 0;

	if (size < 2)
		return -ENOSPC;
	if (n->len <= 1) /* the root, or unset */
		return buf[0] = '.', buf[1] = 0, 1;
	for (size_t p = 0; p < n->len && n->wire[p]; p += 1 + (size_t)n->wire[p]) {
		if (p && o + 1 < size)
			buf[o++] = '.';
		for (size_t i = 1; i <= n->wire[p]; i++) {
			uint8_t c = n->wire[p + i];
			size_t k;

			if (plain[c] && o + 1 < size) {
				buf[o++] = (char)lower(c);
				continue;
			}
			k = present(c, tmp);
			if (o + k >= size)
				return -ENOSPC;
			memcpy(buf + o, tmp, k);
			o += k;
		}
	}
	buf[o] = 0;
	return (int)o;
}

bool dns_name_eq(const struct dns_name *a, const struct dns_name *b)
{
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (lower(a->wire[i]) != lower(b->wire[i]))
			return false;
	return true;
}
