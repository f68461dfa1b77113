/* SPDX-License-Identifier: MIT */
/* A streaming tar reader: ustar, GNU long names ('L'/'K'), pax extended
 * headers, base-256 numbers, header checksums.  Gzip input is detected by
 * its magic and inflated on the fly.  Every header byte goes through a
 * bounds-checked cursor; the first error sticks, and every message starts
 * with the offset of the header at fault in the (uncompressed) stream:
 * "offset 1536: bad header checksum". */
#ifndef SVCD_TAR_H
#define SVCD_TAR_H
#include <stdint.h>
#include <sys/types.h>

struct svc_err;
struct tar;

/* The byte source: fill buf with up to n bytes; 0 at the end, -errno on error. */
typedef ssize_t (*tar_read_fn)(void *ctx, void *buf, size_t n);

enum tar_type { TAR_REG, TAR_DIR, TAR_SYMLINK, TAR_HARDLINK, TAR_CHR, TAR_BLK, TAR_FIFO };

struct tar_entry {
	enum tar_type type;
	const char *path; /* as archived (pax and GNU long names applied), never empty */
	const char *link; /* target of a symlink or hardlink, else "" */
	uint32_t mode;	  /* permission bits (07777) */
	uint32_t uid, gid;
	uint32_t devmajor, devminor;
	uint64_t size;	 /* bytes of data (0 for all but regular files) */
	int64_t mtime;	 /* seconds since the epoch */
	uint64_t offset; /* of the entry's first header, for messages */
};

struct tar_limits {
	uint64_t max_size;    /* of one member's data */
	uint64_t max_total;   /* of all data together, the pax and GNU headers' too */
	uint64_t max_entries; /* headers, the pax and GNU ones included */
};

/* Start reading from fn(ctx); the source is read lazily.  Returns 0 or -errno. */
int tar_open(struct tar **out, tar_read_fn fn, void *ctx, const struct tar_limits *lim,
	     struct svc_err *e);
/* Step to the next member, skipping what is left of the current one.
 * Returns 1 with *ent valid until the next call, 0 at the end of the
 * archive, or -errno (the same error again on every later call). */
int tar_next(struct tar *t, const struct tar_entry **ent, struct svc_err *e);
/* Read the current member's data: up to n bytes, 0 once it is all read. */
ssize_t tar_read(struct tar *t, void *buf, size_t n, struct svc_err *e);
/* The data read or skipped so far: what counts against max_total. */
uint64_t tar_total(const struct tar *t);
void tar_close(struct tar *t);
#endif
