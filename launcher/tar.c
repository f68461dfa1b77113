// SPDX-License-Identifier: MIT
#include "tar.h"

#include "err.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BLOCK	 512
#define IN_SIZE	 65536
#define META_MAX (1u << 20) /* pax data; real ones are a few hundred bytes */

/* Header fields at their ustar offsets; GNU shares all up to the magic. */
enum {
	H_NAME = 0,
	H_NAME_LEN = 100,
	H_MODE = 100,
	H_UID = 108,
	H_GID = 116,
	H_SIZE = 124,
	H_MTIME = 136,
	H_CHKSUM = 148,
	H_TYPE = 156,
	H_LINK = 157,
	H_LINK_LEN = 100,
	H_MAGIC = 257,
	H_DEVMAJOR = 329,
	H_DEVMINOR = 337,
	H_PREFIX = 345,
	H_PREFIX_LEN = 155,
};

/* A bounds-checked view of a header block or of pax data: a read past the
 * end yields NULL and sets err, which stays set. */
struct cur {
	const uint8_t *p;
	size_t len, pos;
	bool err;
};

/* What pax ('x') and GNU ('L', 'K') headers say about the next entry. */
struct pending {
	char *pax_path, *pax_link, *gnu_path, *gnu_link;
	bool has_size, has_uid, has_gid, has_mtime;
	int64_t size, uid, gid, mtime;
};

struct tar {
	tar_read_fn fn;
	void *ctx;
	struct tar_limits lim;
	size_t in_pos, in_len;
	bool in_eof, started, gz, gz_end, z_live;
	z_stream z;
	uint64_t off;	      /* uncompressed bytes consumed */
	uint64_t remain, pad; /* of the current member */
	uint64_t n_hdr, total;
	bool done;
	struct svc_err fail; /* the sticky error */
	struct pending pend;
	struct tar_entry ent;
	char *path, *link;
	uint8_t in[IN_SIZE];
	uint8_t scratch[16384];
};

static const uint8_t *cur_at(struct cur *c, size_t off, size_t n)
{
	if (c->err || off > c->len || n > c->len - off) {
		c->err = true;
		return NULL;
	}
	return c->p + off;
}

static int cur_getc(struct cur *c)
{
	const uint8_t *b = cur_at(c, c->pos, 1);

	if (!b)
		return -1;
	c->pos++;
	return *b;
}

static int sticky(struct tar *t, struct svc_err *e)
{
	if (e)
		*e = t->fail;
	return -t->fail.code;
}

static int fail(struct tar *t, struct svc_err *e, uint64_t off, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct tar *t, struct svc_err *e, uint64_t off, int code, const char *fmt, ...)
{
	char msg[SVC_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc_errf(&t->fail, code, "offset %" PRIu64 ": %s", off, msg);
	return sticky(t, e);
}

/* Have at least `need` raw bytes buffered, or all that is left. */
static int raw_want(struct tar *t, size_t need)
{
	while (t->in_len - t->in_pos < need && !t->in_eof) {
		ssize_t k;

		if (t->in_pos) {
			memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
			t->in_len -= t->in_pos;
			t->in_pos = 0;
		}
		k = t->fn(t->ctx, t->in + t->in_len, IN_SIZE - t->in_len);
		if (k == -EINTR)
			continue;
		if (k < 0)
			return (int)k;
		if ((size_t)k > IN_SIZE - t->in_len)
			return -EIO;
		t->in_eof = k == 0;
		t->in_len += (size_t)k;
	}
	return 0;
}

static bool raw_has(struct tar *t, const char *magic, size_t n)
{
	return t->in_len - t->in_pos >= n && !memcmp(t->in + t->in_pos, magic, n);
}

/* Look at the first bytes: gzip is inflated, other compressors refused by
 * name rather than reported as a bad tar header. */
static int detect(struct tar *t, struct svc_err *e)
{
	int r = raw_want(t, 10);

	if (r)
		return fail(t, e, 0, -r, "reading: %s", strerror(-r));
	if (raw_has(t, "\x28\xb5\x2f\xfd", 4))
		return fail(t, e, 0, ENOTSUP, "zstd-compressed data is not supported");
	if (raw_has(t,
		    "\xfd"
		    "7zXZ",
		    6))
		return fail(t, e, 0, ENOTSUP, "xz-compressed data is not supported");
	if (raw_has(t, "BZh", 3) && t->in_len - t->in_pos >= 10 &&
	    !memcmp(t->in + t->in_pos + 4, "\x31\x41\x59\x26\x53\x59", 6))
		return fail(t, e, 0, ENOTSUP, "bzip2-compressed data is not supported");
	if (!raw_has(t, "\x1f\x8b", 2))
		return 0;
	if (inflateInit2(&t->z, 16 + MAX_WBITS) != Z_OK)
		return fail(t, e, 0, ENOMEM, "gzip: cannot initialise zlib");
	t->gz = t->z_live = true;
	return 0;
}

/* After one gzip member, another may follow (pigz, concatenated files);
 * anything else after it is padding and ignored, as gzip(1) does. */
static int gz_member_end(struct tar *t)
{
	int r = raw_want(t, 2);

	if (r)
		return r;
	if (!raw_has(t, "\x1f\x8b", 2))
		t->gz_end = true;
	else if (inflateReset(&t->z) != Z_OK)
		return -EINVAL;
	return 0;
}

static ssize_t gz_read(struct tar *t, uint8_t *buf, size_t n, struct svc_err *e)
{
	uInt want = n > UINT_MAX ? UINT_MAX : (uInt)n;

	t->z.next_out = buf;
	t->z.avail_out = want;
	while (t->z.avail_out == want && !t->gz_end) {
		uint64_t at = t->off;
		int r = raw_want(t, 1), zr;

		if (r)
			return fail(t, e, at, -r, "reading: %s", strerror(-r));
		if (t->in_pos == t->in_len)
			return fail(t, e, at, EINVAL, "gzip: unexpected end of compressed data");
		t->z.next_in = t->in + t->in_pos;
		t->z.avail_in = (uInt)(t->in_len - t->in_pos);
		zr = inflate(&t->z, Z_NO_FLUSH);
		if (zr == Z_BUF_ERROR && t->z.next_in == t->in + t->in_pos)
			zr = Z_DATA_ERROR; /* no progress with input and room: never loop */
		t->in_pos = (size_t)(t->z.next_in - t->in);
		if (zr == Z_STREAM_END && (r = gz_member_end(t)))
			return fail(t, e, at, -r, "gzip: reading: %s", strerror(-r));
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return fail(t, e, at, EINVAL, "gzip: %s", t->z.msg ? t->z.msg : "bad data");
	}
	return (ssize_t)(want - t->z.avail_out);
}

/* Up to n bytes of the tar stream, 0 at its end. */
static ssize_t stream_read(struct tar *t, uint8_t *buf, size_t n, struct svc_err *e)
{
	ssize_t k;

	if (t->gz) {
		k = gz_read(t, buf, n, e);
	} else {
		int r = raw_want(t, 1);

		if (r)
			return fail(t, e, t->off, -r, "reading: %s", strerror(-r));
		k = (ssize_t)(t->in_len - t->in_pos < n ? t->in_len - t->in_pos : n);
		memcpy(buf, t->in + t->in_pos, (size_t)k);
		t->in_pos += (size_t)k;
	}
	if (k > 0)
		t->off += (uint64_t)k;
	return k;
}

/* Exactly n bytes unless the stream ends first; returns the count. */
static ssize_t stream_full(struct tar *t, uint8_t *buf, size_t n, struct svc_err *e)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = stream_read(t, buf + got, n - got, e);

		if (k < 0)
			return k;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* Skip n bytes of member data or padding; the end of input here is a
 * truncated archive, reported at the member's header. */
static int stream_skip(struct tar *t, uint64_t n, uint64_t at, struct svc_err *e)
{
	while (n) {
		size_t want = n < sizeof(t->scratch) ? (size_t)n : sizeof(t->scratch);
		ssize_t k = stream_read(t, t->scratch, want, e);

		if (k < 0)
			return (int)k;
		if (k == 0)
			return fail(t, e, at, EINVAL, "unexpected end of archive (truncated?)");
		n -= (uint64_t)k;
	}
	return 0;
}

static int base256(const uint8_t *b, size_t len, int64_t *out)
{
	uint8_t inv = b[0] & 0x40 ? 0xff : 0; /* bit 6 is the sign */
	uint64_t x = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t v = (uint8_t)(b[i] ^ inv);

		if (i == 0)
			v &= 0x3f;
		if (x >> 55)
			return -ERANGE;
		x = x << 8 | v;
	}
	*out = inv ? -(int64_t)x - 1 : (int64_t)x;
	return 0;
}

static int octal(const uint8_t *b, size_t len, int64_t *out)
{
	uint64_t x = 0;
	size_t i = 0;

	while (i < len && (b[i] == ' ' || b[i] == 0))
		i++;
	for (; i < len && b[i] >= '0' && b[i] <= '7'; i++) {
		if (x >> 60)
			return -ERANGE;
		x = x * 8 + (uint64_t)(b[i] - '0');
	}
	for (; i < len; i++)
		if (b[i] != ' ' && b[i] != 0)
			return -EINVAL;
	*out = (int64_t)x;
	return 0;
}

/* A numeric field: octal, or GNU base-256 when the top bit is set. */
static int field_num(struct tar *t, struct cur *c, size_t off, size_t len, const char *what,
		     uint64_t at, int64_t *out, struct svc_err *e)
{
	const uint8_t *b = cur_at(c, off, len);
	int r = !b ? -EINVAL : (b[0] & 0x80) ? base256(b, len, out) : octal(b, len, out);

	if (r)
		return fail(t, e, at, EINVAL, "bad number in the %s field", what);
	return 0;
}

static char *field_dup(struct cur *c, size_t off, size_t len)
{
	const uint8_t *b = cur_at(c, off, len);

	return b ? strndup((const char *)b, len) : NULL;
}

static int check_sum(struct tar *t, struct cur *c, uint64_t at, struct svc_err *e)
{
	const uint8_t *b = cur_at(c, 0, BLOCK);
	uint64_t u = 0;
	int64_t s = 0, stored;
	int r = field_num(t, c, H_CHKSUM, 8, "checksum", at, &stored, e);

	if (r || !b)
		return r ? r : -EINVAL;
	for (size_t i = 0; i < BLOCK; i++) {
		uint8_t x = i >= H_CHKSUM && i < H_CHKSUM + 8 ? ' ' : b[i];

		u += x;
		s += (int8_t)x; /* some old tars summed signed chars */
	}
	if ((uint64_t)stored == u || stored == s)
		return 0;
	return fail(t, e, at, EINVAL, "bad header checksum%s", at ? "" : " (not a tar archive?)");
}

static void pending_clear(struct pending *p)
{
	free(p->pax_path);
	free(p->pax_link);
	free(p->gnu_path);
	free(p->gnu_link);
	memset(p, 0, sizeof(*p));
}

/* All data read (members', pax and GNU headers') counts against max_total:
 * gzip inflates a thousandfold, so each member's bound alone is not one. */
static int account(struct tar *t, uint64_t at, uint64_t size, struct svc_err *e)
{
	if (size > t->lim.max_total - t->total)
		return fail(t, e, at, EFBIG, "more than %" PRIu64 " bytes of data in all",
			    t->lim.max_total);
	t->total += size;
	return 0;
}

/* The data of a pax or GNU header, NUL-terminated, padding skipped. */
static int meta_data(struct tar *t, struct cur *c, uint64_t at, uint64_t max, char **out,
		     size_t *len, struct svc_err *e)
{
	int64_t size;
	ssize_t k;
	char *buf;
	int r = field_num(t, c, H_SIZE, 12, "size", at, &size, e);

	if (r)
		return r;
	if (size < 0 || (uint64_t)size > max)
		return fail(t, e, at, EFBIG, "extended header of %" PRId64 " bytes is too large",
			    size);
	if ((r = account(t, at, (uint64_t)size, e)))
		return r;
	if (!(buf = malloc((size_t)size + 1)))
		return fail(t, e, at, ENOMEM, "out of memory");
	k = stream_full(t, (uint8_t *)buf, (size_t)size, e);
	if (k >= 0 && k < size)
		k = fail(t, e, at, EINVAL, "unexpected end of archive (truncated?)");
	if (k < 0 || (r = stream_skip(t, (BLOCK - (uint64_t)size % BLOCK) % BLOCK, at, e))) {
		free(buf);
		return k < 0 ? (int)k : r;
	}
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/* GNU 'L' and 'K': the next entry's name or link target. */
static int read_long(struct tar *t, struct cur *c, uint64_t at, char **dst, struct svc_err *e)
{
	char *buf;
	size_t len;
	int r = meta_data(t, c, at, PATH_MAX, &buf, &len, e);

	if (r)
		return r;
	if (strlen(buf) >= PATH_MAX) {
		free(buf);
		return fail(t, e, at, ENAMETOOLONG, "name longer than PATH_MAX");
	}
	free(*dst);
	*dst = buf;
	return 0;
}

static int pax_num(const uint8_t *v, size_t n, bool frac, int64_t *out)
{
	bool neg = frac && n && v[0] == '-';
	uint64_t x = 0;
	size_t i = neg;

	if (i == n)
		return -EINVAL;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > (uint64_t)INT64_MAX / 10 - 1)
			return -ERANGE;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (i < n && !(frac && v[i] == '.')) /* sub-second mtime is dropped */
		return -EINVAL;
	*out = neg ? -(int64_t)x : (int64_t)x;
	return 0;
}

static int pax_str(struct tar *t, char **dst, const uint8_t *v, size_t n, uint64_t at,
		   struct svc_err *e)
{
	if (memchr(v, 0, n))
		return fail(t, e, at, EINVAL, "NUL byte in a pax path");
	if (n >= PATH_MAX)
		return fail(t, e, at, ENAMETOOLONG, "name longer than PATH_MAX");
	free(*dst);
	*dst = n ? strndup((const char *)v, n) : NULL; /* empty: back to the header's */
	if (n && !*dst)
		return fail(t, e, at, ENOMEM, "out of memory");
	return 0;
}

static bool key_is(const uint8_t *k, size_t n, const char *s)
{
	return n == strlen(s) && !memcmp(k, s, n);
}

static int pax_apply(struct tar *t, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn,
		     uint64_t at, struct svc_err *e)
{
	struct pending *p = &t->pend;
	int64_t *num = NULL;
	bool *has = NULL;

	if (key_is(k, kn, "path"))
		return pax_str(t, &p->pax_path, v, vn, at, e);
	if (key_is(k, kn, "linkpath"))
		return pax_str(t, &p->pax_link, v, vn, at, e);
	if (kn > 11 && !memcmp(k, "GNU.sparse.", 11))
		return fail(t, e, at, ENOTSUP, "GNU sparse files are not supported");
	if (key_is(k, kn, "size"))
		num = &p->size, has = &p->has_size;
	else if (key_is(k, kn, "uid"))
		num = &p->uid, has = &p->has_uid;
	else if (key_is(k, kn, "gid"))
		num = &p->gid, has = &p->has_gid;
	else if (key_is(k, kn, "mtime"))
		num = &p->mtime, has = &p->has_mtime;
	if (!num)
		return 0; /* atime, uname, xattrs...: not kept */
	if (pax_num(v, vn, num == &p->mtime, num))
		return fail(t, e, at, EINVAL, "bad number in pax record %.*s", (int)kn, k);
	*has = true;
	return 0;
}

/* One "LEN KEY=VALUE\n" record; LEN counts the whole record. */
static int pax_record(struct tar *t, struct cur *c, uint64_t at, struct svc_err *e)
{
	size_t start = c->pos, len = 0, head;
	const uint8_t *rec, *eq;
	int ch;

	while ((ch = cur_getc(c)) >= '0' && ch <= '9' && len <= META_MAX)
		len = len * 10 + (size_t)(ch - '0');
	head = c->pos - start;
	rec = cur_at(c, start, len);
	if (ch != ' ' || !rec || len <= head || rec[len - 1] != '\n')
		return fail(t, e, at, EINVAL, "bad pax record at byte %zu of the header", start);
	eq = memchr(rec + head, '=', len - head - 1);
	if (!eq)
		return fail(t, e, at, EINVAL, "bad pax record at byte %zu of the header", start);
	c->pos = start + len;
	return pax_apply(t, rec + head, (size_t)(eq - rec) - head, eq + 1,
			 (size_t)(rec + len - 1 - (eq + 1)), at, e);
}

static int read_pax(struct tar *t, struct cur *hc, uint64_t at, struct svc_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int r = meta_data(t, hc, at, META_MAX, &buf, &len, e);
	struct cur c = {(const uint8_t *)buf, len, 0, false};

	while (!r && c.pos < c.len)
		r = pax_record(t, &c, at, e);
	free(buf);
	return r;
}

/* Global pax headers and volume labels say nothing svcd keeps. */
static int skip_meta(struct tar *t, struct cur *c, uint64_t at, struct svc_err *e)
{
	int64_t size;
	int r = field_num(t, c, H_SIZE, 12, "size", at, &size, e);

	if (r)
		return r;
	if (size < 0 || (uint64_t)size > t->lim.max_size)
		return fail(t, e, at, EFBIG, "extended header of %" PRId64 " bytes is too large",
			    size);
	if ((r = account(t, at, (uint64_t)size, e)))
		return r;
	return stream_skip(t, ((uint64_t)size + BLOCK - 1) / BLOCK * BLOCK, at, e);
}

static int entry_type(struct tar *t, char flag, const char *path, uint64_t at, enum tar_type *out,
		      struct svc_err *e)
{
	size_t n = strlen(path);

	switch (flag) {
	case '\0': /* pre-POSIX: a directory is a regular entry named "dir/" */
		*out = n && path[n - 1] == '/' ? TAR_DIR : TAR_REG;
		return 0;
	case '0':
	case '7':
		*out = TAR_REG;
		return 0;
	case '1':
		*out = TAR_HARDLINK;
		return 0;
	case '2':
		*out = TAR_SYMLINK;
		return 0;
	case '3':
		*out = TAR_CHR;
		return 0;
	case '4':
		*out = TAR_BLK;
		return 0;
	case '5':
		*out = TAR_DIR;
		return 0;
	case '6':
		*out = TAR_FIFO;
		return 0;
	case 'S':
		return fail(t, e, at, ENOTSUP, "GNU sparse files are not supported");
	}
	if (flag > ' ' && flag < 127)
		return fail(t, e, at, ENOTSUP, "unsupported entry type '%c'", flag);
	return fail(t, e, at, ENOTSUP, "unsupported entry type 0x%02x", (unsigned char)flag);
}

/* The ustar name: prefix "/" name when the POSIX magic says prefix is one. */
static char *header_path(struct cur *c)
{
	const uint8_t *magic = cur_at(c, H_MAGIC, 6);
	char *name = field_dup(c, H_NAME, H_NAME_LEN), *prefix, *full = NULL;

	if (!name || !magic || memcmp(magic, "ustar\0", 6))
		return name;
	prefix = field_dup(c, H_PREFIX, H_PREFIX_LEN);
	if (prefix && *prefix && asprintf(&full, "%s/%s", prefix, name) < 0)
		full = NULL;
	if (prefix && *prefix) {
		free(name);
		name = full;
	}
	free(prefix);
	return name;
}

/* Move the names into t->path and t->link, pending overrides winning. */
static int entry_names(struct tar *t, struct cur *c, uint64_t at, struct svc_err *e)
{
	struct pending *p = &t->pend;

	free(t->path);
	free(t->link);
	t->path = p->pax_path ? p->pax_path : p->gnu_path ? p->gnu_path : header_path(c);
	t->link = p->pax_link	? p->pax_link
		  : p->gnu_link ? p->gnu_link
				: field_dup(c, H_LINK, H_LINK_LEN);
	if (t->path == p->pax_path)
		p->pax_path = NULL;
	if (t->path == p->gnu_path)
		p->gnu_path = NULL;
	if (t->link == p->pax_link)
		p->pax_link = NULL;
	if (t->link == p->gnu_link)
		p->gnu_link = NULL;
	if (!t->path || !t->link)
		return fail(t, e, at, ENOMEM, "out of memory");
	if (!*t->path)
		return fail(t, e, at, EINVAL, "empty member name");
	if (strlen(t->path) >= PATH_MAX || strlen(t->link) >= PATH_MAX)
		return fail(t, e, at, ENAMETOOLONG, "name longer than PATH_MAX");
	return 0;
}

static int id_field(struct tar *t, struct cur *c, size_t off, bool has, int64_t pax,
		    const char *what, uint64_t at, uint32_t *out, struct svc_err *e)
{
	int64_t v = pax;
	int r = has ? 0 : field_num(t, c, off, 8, what, at, &v, e);

	if (r)
		return r;
	if (v < 0 || v > (int64_t)UINT32_MAX - 1) /* (uid_t)-1 means "unchanged" to chown */
		return fail(t, e, at, EINVAL, "%s %" PRId64 " out of range", what, v);
	*out = (uint32_t)v;
	return 0;
}

static int entry_numbers(struct tar *t, struct cur *c, uint64_t at, struct svc_err *e)
{
	struct pending *p = &t->pend;
	struct tar_entry *en = &t->ent;
	int64_t mode, size = p->size, mtime = p->mtime;
	int r = field_num(t, c, H_MODE, 8, "mode", at, &mode, e);

	if (!r && !p->has_size)
		r = field_num(t, c, H_SIZE, 12, "size", at, &size, e);
	if (!r && !p->has_mtime)
		r = field_num(t, c, H_MTIME, 12, "mtime", at, &mtime, e);
	if (!r)
		r = id_field(t, c, H_UID, p->has_uid, p->uid, "uid", at, &en->uid, e);
	if (!r)
		r = id_field(t, c, H_GID, p->has_gid, p->gid, "gid", at, &en->gid, e);
	if (!r && (en->type == TAR_CHR || en->type == TAR_BLK))
		r = id_field(t, c, H_DEVMAJOR, false, 0, "devmajor", at, &en->devmajor, e);
	if (!r && (en->type == TAR_CHR || en->type == TAR_BLK))
		r = id_field(t, c, H_DEVMINOR, false, 0, "devminor", at, &en->devminor, e);
	if (r)
		return r;
	if (size < 0)
		return fail(t, e, at, EINVAL, "negative size");
	en->mode = (uint32_t)mode & 07777;
	en->mtime = mtime;
	/* Links, directories and devices carry no data, whatever the size
	 * field says (as GNU tar and Go's archive/tar read them). */
	en->size = en->type == TAR_REG ? (uint64_t)size : 0;
	if (en->size > t->lim.max_size)
		return fail(t, e, at, EFBIG,
			    "member %s: %" PRIu64 " bytes, more than the limit of %" PRIu64,
			    t->path, en->size, t->lim.max_size);
	return account(t, at, en->size, e);
}

static int make_entry(struct tar *t, struct cur *c, char flag, uint64_t at, uint64_t first,
		      struct svc_err *e)
{
	struct tar_entry *en = &t->ent;
	int r = entry_names(t, c, at, e);

	memset(en, 0, sizeof(*en));
	if (!r)
		r = entry_type(t, flag, t->path, at, &en->type, e);
	if (!r)
		r = entry_numbers(t, c, at, e);
	pending_clear(&t->pend);
	if (r)
		return r;
	en->path = t->path;
	en->link = t->link;
	en->offset = first;
	t->remain = en->size;
	t->pad = (BLOCK - en->size % BLOCK) % BLOCK;
	return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Returns 1 with a header in blk, 0 at the end of the archive.  A missing
 * end marker is tolerated, as GNU tar and Go's archive/tar do. */
static int read_block(struct tar *t, uint8_t blk[BLOCK], struct svc_err *e)
{
	uint64_t at = t->off;
	ssize_t k = stream_full(t, blk, BLOCK, e);

	if (k <= 0)
		return (int)k;
	if (k < BLOCK)
		return fail(t, e, at, EINVAL, "truncated header%s",
			    at ? "" : " (not a tar archive?)");
	if (!all_zero(blk, BLOCK))
		return 1;
	k = stream_full(t, blk, BLOCK, e);
	if (k < 0)
		return (int)k;
	if (all_zero(blk, (size_t)k))
		return 0;
	return fail(t, e, at + BLOCK, EINVAL, "data after the end-of-archive block");
}

enum { HDR_META, HDR_ENTRY, HDR_END };

/* Read one header: an entry, a meta header (pax, GNU) or the end. */
static int one_header(struct tar *t, uint64_t first, struct svc_err *e)
{
	uint8_t blk[BLOCK];
	uint64_t at = t->off;
	struct cur c = {blk, BLOCK, 0, false};
	const uint8_t *type;
	int r = read_block(t, blk, e);

	if (r == 0 && (t->pend.pax_path || t->pend.gnu_path || t->pend.has_size))
		return fail(t, e, first, EINVAL, "archive ends after an extended header");
	if (r <= 0)
		return r < 0 ? r : HDR_END;
	if (++t->n_hdr > t->lim.max_entries)
		return fail(t, e, at, EFBIG, "more than %" PRIu64 " entries", t->lim.max_entries);
	if ((r = check_sum(t, &c, at, e)) || !(type = cur_at(&c, H_TYPE, 1)))
		return r ? r : -EINVAL;
	switch (*type) {
	case 'x':
		return read_pax(t, &c, at, e);
	case 'g':
	case 'V':
		return skip_meta(t, &c, at, e);
	case 'L':
		return read_long(t, &c, at, &t->pend.gnu_path, e);
	case 'K':
		return read_long(t, &c, at, &t->pend.gnu_link, e);
	}
	r = make_entry(t, &c, (char)*type, at, first, e);
	return r ? r : HDR_ENTRY;
}

int tar_next(struct tar *t, const struct tar_entry **ent, struct svc_err *e)
{
	uint64_t first;
	int r;

	if (t->fail.code)
		return sticky(t, e);
	if (!t->started && (r = detect(t, e)))
		return r;
	t->started = true;
	if (t->done)
		return 0;
	if ((r = stream_skip(t, t->remain + t->pad, t->ent.offset, e)))
		return r;
	t->remain = t->pad = 0;
	first = t->off;
	while ((r = one_header(t, first, e)) == HDR_META)
		;
	if (r < 0)
		return r;
	if (r == HDR_END) {
		t->done = true;
		return 0;
	}
	*ent = &t->ent;
	return 1;
}

ssize_t tar_read(struct tar *t, void *buf, size_t n, struct svc_err *e)
{
	ssize_t k;

	if (t->fail.code)
		return sticky(t, e);
	if (n > t->remain)
		n = (size_t)t->remain;
	if (!n)
		return 0;
	k = stream_read(t, buf, n, e);
	if (k == 0)
		return fail(t, e, t->ent.offset, EINVAL, "member %s: unexpected end of archive",
			    t->ent.path);
	if (k > 0)
		t->remain -= (uint64_t)k;
	return k;
}

uint64_t tar_total(const struct tar *t)
{
	return t->total;
}

int tar_open(struct tar **out, tar_read_fn fn, void *ctx, const struct tar_limits *lim,
	     struct svc_err *e)
{
	struct tar *t = calloc(1, sizeof(*t));

	if (!t)
		return svc_errf(e, ENOMEM, "out of memory");
	t->fn = fn;
	t->ctx = ctx;
	t->lim = *lim;
	*out = t;
	return 0;
}

void tar_close(struct tar *t)
{
	if (!t)
		return;
	if (t->z_live)
		inflateEnd(&t->z);
	pending_clear(&t->pend);
	free(t->path);
	free(t->link);
	free(t);
}
