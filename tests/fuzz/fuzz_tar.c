// SPDX-License-Identifier: MIT
/* libFuzzer harness for the tar reader: any bytes must give members or an
 * error, never a crash, a leak or a hang; an error must stick; the data of
 * a member must be exactly its size.  Each input is also read a second
 * time gzip-compressed here, so that the inflate path sees every tar the
 * fuzzer makes, and both reads must agree. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "err.h"
#include "tar.h"
#include "unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t n, pos;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t k = m->n - m->pos;

	if (k > n)
		k = n;
	if (k > 977) /* short reads, at odd sizes, exercise the buffering */
		k = 977;
	memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

/* Returns the number of members, or the error. */
static int read_all(const uint8_t *data, size_t size)
{
	static const struct tar_limits lim = {
	    .max_size = 1 << 20, .max_total = 4 << 20, .max_entries = 4096};
	struct mem m = {data, size, 0};
	const struct tar_entry *en;
	struct svc_err e = {0};
	struct tar *t;
	char buf[4096], clean[PATH_MAX];
	int r, n = 0;

	if (tar_open(&t, mem_read, &m, &lim, &e))
		return -ENOMEM;
	while ((r = tar_next(t, &en, &e)) > 0) {
		uint64_t got = 0;
		ssize_t k;

		if (!en->path[0] || strlen(en->path) >= PATH_MAX || en->mode > 07777)
			abort();
		unpack_clean_path(en->path, clean);
		while ((k = tar_read(t, buf, sizeof(buf), &e)) > 0)
			got += (uint64_t)k;
		if (k == 0 && got != en->size)
			abort();
		n++;
	}
	if (r < 0 && (tar_next(t, &en, &e) != r || !e.msg[0]))
		abort(); /* the error sticks and says something */
	if (tar_total(t) > lim.max_total)
		abort();
	tar_close(t);
	return r < 0 ? r : n;
}

static int read_gzipped(const uint8_t *data, size_t size)
{
	z_stream z = {0};
	uLong cap;
	uint8_t *gz;
	int r;

	if (deflateInit2(&z, 1, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, size);
	if (!(gz = malloc(cap))) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (uint8_t *)data;
	z.avail_in = (uInt)size;
	z.next_out = gz;
	z.avail_out = (uInt)cap;
	r = deflate(&z, Z_FINISH) == Z_STREAM_END ? read_all(gz, z.total_out) : -ENOMEM;
	deflateEnd(&z);
	free(gz);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t none[1];
	int plain, gz;

	if (!size)
		data = none; /* libFuzzer may pass NULL */
	plain = read_all(data, size);
	/* Compressed input (by its magic) is read differently the second time. */
	if (size > (1 << 16) || (size && memchr("\x1f\x28\xfd"
						"B",
						data[0], 4)))
		return 0;
	gz = read_gzipped(data, size);
	if (gz != plain && gz != -ENOMEM && plain != -ENOMEM)
		abort();
	return 0;
}
