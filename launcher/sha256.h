/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4): image ids and OCI blob digests.  svcd links no
 * crypto library, and a digest of public data needs no constant-time code. */
#ifndef SVCD_SHA256_H
#define SVCD_SHA256_H
#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Finish and write 64 lowercase hex digits plus NUL. */
void sha256_hex(struct sha256 *s, char out[static 65]);
/* One-shot: the hex digest of a buffer. */
void sha256_buf_hex(const void *data, size_t n, char out[static 65]);
#endif
