/* SPDX-License-Identifier: MIT */
/* DNS wire format: bounds-checked cursors for reading and writing messages
 * (RFC 1035 section 4).  Every access is checked; the first failure sticks
 * in the cursor and later calls do nothing, so a caller reads or writes a
 * run of fields and checks once.  Nothing here prints or allocates. */
#ifndef SVCD_DNS_WIRE_H
#define SVCD_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DNS_LABEL_MAX	 63	/* bytes in one label */
#define DNS_NAME_MAX	 255	/* bytes in a name's wire form, root label included */
#define DNS_NAME_STR_MAX 1024	/* presentation form: every byte may become "\DDD" */
#define DNS_PTR_MAX	 0x3fff /* highest offset a compression pointer can hold */

/* A domain name in uncompressed wire form, in the case it was given. */
struct dns_name {
	uint8_t wire[DNS_NAME_MAX];
	uint8_t len;	/* bytes used in wire, the root label included; 0 = unset */
	uint8_t labels; /* not counting the root */
};

/* Reader.  err is 0 or -EBADMSG; err_pos and why say where and what. */
struct dns_rd {
	const uint8_t *wire;
	size_t size, pos;
	int err;
	size_t err_pos;
	char why[80];
};

void dns_rd_init(struct dns_rd *r, const uint8_t *wire, size_t size);
uint8_t dns_rd_u8(struct dns_rd *r);
uint16_t dns_rd_u16(struct dns_rd *r);
uint32_t dns_rd_u32(struct dns_rd *r);
void dns_rd_bytes(struct dns_rd *r, void *out, size_t n);
void dns_rd_skip(struct dns_rd *r, size_t n);
/* Move to an absolute offset (to read rdata found earlier); past the end fails. */
void dns_rd_seek(struct dns_rd *r, size_t pos);
size_t dns_rd_left(const struct dns_rd *r);
/* Read a possibly compressed name into out (NULL just validates and skips).
 * Pointers must point strictly before the labels that led to them and not
 * into the header, so loops are impossible.  Returns r->err. */
int dns_rd_name(struct dns_rd *r, struct dns_name *out);
/* Record a failure at pos unless one is already recorded; returns r->err. */
int dns_rd_fail(struct dns_rd *r, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy the reader's failure into e as "offset N: why"; returns -errno. */
int dns_rd_error(const struct dns_rd *r, struct svc_err *e);

/* Writer.  Writing past limit fails with -EMSGSIZE and sets truncated,
 * which the message builder turns into TC=1.  comp holds the offsets of the
 * labels already written, for compressing later names against them. */
#define DNS_WR_COMP_MAX 64
struct dns_wr {
	uint8_t *wire;
	size_t cap, limit, pos;
	int err;
	bool truncated;
	uint16_t comp[DNS_WR_COMP_MAX];
	size_t ncomp;
};
/* A point to roll back to, dropping what was written after it. */
struct dns_wr_mark {
	size_t pos, ncomp;
};

/* buf holds cap bytes; the limit starts at cap. */
void dns_wr_init(struct dns_wr *w, uint8_t *buf, size_t cap);
/* Lower (or restore) the limit, never above cap nor below what is written. */
void dns_wr_set_limit(struct dns_wr *w, size_t limit);
void dns_wr_u8(struct dns_wr *w, uint8_t v);
void dns_wr_u16(struct dns_wr *w, uint16_t v);
void dns_wr_u32(struct dns_wr *w, uint32_t v);
void dns_wr_bytes(struct dns_wr *w, const void *p, size_t n);
/* Overwrite two bytes already written (a count or an RDLENGTH). */
void dns_wr_u16_at(struct dns_wr *w, size_t pos, uint16_t v);
/* Write a name; with compress, its longest suffix already in the message
 * (compared case-insensitively) becomes a pointer. */
void dns_wr_name(struct dns_wr *w, const struct dns_name *n, bool compress);
struct dns_wr_mark dns_wr_mark(const struct dns_wr *w);
/* Drop everything after m and clear the error; truncated stays set. */
void dns_wr_rewind(struct dns_wr *w, struct dns_wr_mark m);

/* Parse presentation form ("a.b.c", trailing dot optional, "." or "" is the
 * root, "\." and "\DDD" escapes).  Returns 0 or -EINVAL with e filled. */
int dns_name_from_str(struct dns_name *n, const char *s, struct svc_err *e);
/* Presentation form, lower-cased, without the trailing dot ("." for the
 * root), for lookups.  Returns the length or -ENOSPC. */
int dns_name_str(const struct dns_name *n, char *buf, size_t size);
/* Is n well formed: labels of at most 63 bytes ending with the root at len? */
bool dns_name_valid(const struct dns_name *n);
/* Case-insensitive equality of two wire-form names. */
bool dns_name_eq(const struct dns_name *a, const struct dns_name *b);

static inline uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t dns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
