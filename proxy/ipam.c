// SPDX-License-Identifier: MIT
/* Host-local IPAM.  The directory is the truth on disk (one file per address,
 * named by the address, holding the owner); memory holds a bitmap of taken
 * offsets and two maps over the same records, by owner and by address.
 *
 * Round-robin: the next allocation starts after the last one.  The last one
 * is not kept in a file of its own (host-local's last_reserved_ip): that
 * would be a second durable write per pod.  At open it is taken to be the
 * newest address file (mtime, then the higher address on a tie), which is
 * what such a file would say, give or take allocations within one tick of
 * the file system clock. */
#include "ipam.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "smap.h"
#include "util.h"

#define OWNER_MAX  255
#define TMP_PREFIX ".tmp-" /* file_write_atomic's temp files */

struct ipam_rec {
	uint32_t off;		    /* from the network address */
	char addr[INET_ADDRSTRLEN]; /* the file name; key of by_addr */
	char owner[];		    /* key of by_owner */
};

struct ipam {
	int dirfd;
	uint32_t net;  /* host order */
	uint32_t size; /* addresses in the CIDR */
	int prefix;
	uint32_t last; /* offset of the last allocation */
	uint64_t *bits;
	struct smap by_owner, by_addr;
};

/* --- addresses and owners -------------------------------------------------- */

/* Network address, gateway and broadcast are never handed out. */
static bool off_usable(const struct ipam *ip, uint32_t off)
{
	return off >= 2 && off < ip->size - 1;
}

static struct in_addr off_addr(const struct ipam *ip, uint32_t off)
{
	return (struct in_addr){.s_addr = htonl(ip->net + off)};
}

/* For messages: inet_ntoa without its shared buffer. */
#define A2S(a)                                                                                     \
	inet_ntop(AF_INET, &(struct in_addr){(a)}, (char[INET_ADDRSTRLEN]){0}, INET_ADDRSTRLEN)

/* The offset of addr, or UINT32_MAX when it is outside the CIDR. */
static uint32_t addr_off(const struct ipam *ip, struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return h - ip->net < ip->size ? h - ip->net : UINT32_MAX;
}

static bool owner_valid(const char *s, size_t n)
{
	if (n == 0 || n > OWNER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

static bool bit_get(const struct ipam *ip, uint32_t off)
{
	return ip->bits[off / 64] >> (off % 64) & 1;
}

static void bit_set(struct ipam *ip, uint32_t off, bool on)
{
	if (on)
		ip->bits[off / 64] |= 1ULL << (off % 64);
	else
		ip->bits[off / 64] &= ~(1ULL << (off % 64));
}

/* The first free usable offset in [from, to), or UINT32_MAX. */
static uint32_t free_in(const struct ipam *ip, uint32_t from, uint32_t to)
{
	for (uint32_t off = from; off < to;) {
		if (ip->bits[off / 64] == UINT64_MAX) {
			off = (off / 64 + 1) * 64; /* a full word: skip it */
			continue;
		}
		if (!bit_get(ip, off))
			return off;
		off++;
	}
	return UINT32_MAX;
}

/* Round-robin: after the last allocation, then from the start. */
static uint32_t next_free(const struct ipam *ip)
{
	uint32_t lo = 2, hi = ip->size - 1, from = ip->last + 1, off;

	if (from < lo || from >= hi)
		from = lo;
	off = free_in(ip, from, hi);
	return off != UINT32_MAX ? off : free_in(ip, lo, from);
}

/* --- records ---------------------------------------------------------------- */

static struct ipam_rec *rec_new(const struct ipam *ip, uint32_t off, const char *owner, size_t n)
{
	struct ipam_rec *rec = malloc(sizeof(*rec) + n + 1);
	struct in_addr a = off_addr(ip, off);

	if (!rec)
		return NULL;
	rec->off = off;
	inet_ntop(AF_INET, &a, rec->addr, sizeof(rec->addr));
	memcpy(rec->owner, owner, n);
	rec->owner[n] = '\0';
	return rec;
}

static int rec_insert(struct ipam *ip, struct ipam_rec *rec)
{
	if (smap_put(&ip->by_owner, rec->owner, rec))
		return -ENOMEM;
	if (smap_put(&ip->by_addr, rec->addr, rec)) {
		smap_del(&ip->by_owner, rec->owner);
		return -ENOMEM;
	}
	bit_set(ip, rec->off, true);
	return 0;
}

static void rec_remove(struct ipam *ip, struct ipam_rec *rec)
{
	smap_del(&ip->by_owner, rec->owner);
	smap_del(&ip->by_addr, rec->addr);
	bit_set(ip, rec->off, false);
	free(rec);
}

/* --- loading ---------------------------------------------------------------- */

struct newest {
	struct timespec t;
	uint32_t off;
	bool any;
};

static void note_newest(struct newest *nw, const struct stat *st, uint32_t off)
{
	const struct timespec *t = &st->st_mtim;

	if (nw->any &&
	    (t->tv_sec < nw->t.tv_sec ||
	     (t->tv_sec == nw->t.tv_sec && t->tv_nsec < nw->t.tv_nsec) ||
	     (t->tv_sec == nw->t.tv_sec && t->tv_nsec == nw->t.tv_nsec && off < nw->off)))
		return;
	*nw = (struct newest){.t = *t, .off = off, .any = true};
}

/* The offset a file name stands for, when it is an address of the CIDR
 * that can be handed out, written the one canonical way. */
static uint32_t name_off(const struct ipam *ip, const char *name)
{
	struct in_addr a;
	char again[INET_ADDRSTRLEN];
	uint32_t off;

	if (inet_pton(AF_INET, name, &a) != 1)
		return UINT32_MAX;
	inet_ntop(AF_INET, &a, again, sizeof(again));
	off = addr_off(ip, a);
	if (strcmp(again, name) || off == UINT32_MAX || !off_usable(ip, off))
		return UINT32_MAX;
	return off;
}

/* A file's owner: one line of printable characters.  NULL when unusable. */
static char *read_owner(int dirfd, const char *name, size_t *n)
{
	char *buf = NULL;
	size_t len;

	if (file_read_all(dirfd, name, OWNER_MAX + 1, &buf, &len))
		return NULL;
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (!owner_valid(buf, len)) {
		free(buf);
		return NULL;
	}
	*n = len;
	return buf;
}

static int skip(const char *name, const char *why)
{
	svc_log(SVC_LOG_WARN, "ipam: skipping %s: %s", name, why);
	return 0;
}

/* Keep the lower address when two files name the same owner. */
static int load_one(struct ipam *ip, const char *name, struct newest *nw)
{
	struct stat st;
	struct ipam_rec *rec, *old;
	uint32_t off = name_off(ip, name);
	size_t n;
	char *owner;

	if (off == UINT32_MAX)
		return skip(name, "not an assignable address of the pod CIDR");
	if (fstatat(ip->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
		return skip(name, "not a regular file");
	if (!(owner = read_owner(ip->dirfd, name, &n)))
		return skip(name, "unreadable, or not one line naming an owner");
	old = smap_get(&ip->by_owner, owner);
	if (old && old->off < off) {
		svc_log(SVC_LOG_WARN, "ipam: skipping %s: %s already holds %s", name, owner,
			old->addr);
		free(owner);
		return 0;
	}
	rec = rec_new(ip, off, owner, n);
	free(owner);
	if (!rec)
		return -ENOMEM;
	if (old) {
		svc_log(SVC_LOG_WARN, "ipam: skipping %s: %s also holds %s", old->addr, rec->owner,
			name);
		rec_remove(ip, old);
	}
	if (rec_insert(ip, rec)) {
		free(rec);
		return -ENOMEM;
	}
	note_newest(nw, &st, off);
	return 0;
}

static int load(struct ipam *ip, struct svc_err *e)
{
	struct newest nw = {0};
	struct dirent *de;
	int fd = dup(ip->dirfd), r = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		r = errno;
		if (fd >= 0)
			close(fd);
		return svc_errf(e, r, "ipam: reading the directory: %s", strerror(r));
	}
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		/* What an interrupted write left: never the committed state. */
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			unlinkat(ip->dirfd, de->d_name, 0);
		else
			r = load_one(ip, de->d_name, &nw);
	}
	closedir(d);
	if (r)
		return svc_errf(e, -r, "ipam: loading: %s", strerror(-r));
	ip->last = nw.any ? nw.off : 1;
	return 0;
}

/* --- the API ---------------------------------------------------------------- */

int ipam_open(const char *dir, struct in_addr net, int prefix, struct ipam **out, struct svc_err *e)
{
	struct ipam *ip;
	int r;

	if (prefix < 8 || prefix > 30)
		return svc_errf(e, EINVAL, "ipam: prefix /%d: must be 8-30", prefix);
	if (ntohl(net.s_addr) & ((1u << (32 - prefix)) - 1))
		return svc_errf(e, EINVAL, "ipam: %s/%d: host bits set", A2S(net.s_addr), prefix);
	if ((r = mkdir_p(dir, 0700)))
		return svc_errf(e, -r, "ipam: creating %s: %s", dir, strerror(-r));
	if (!(ip = calloc(1, sizeof(*ip))))
		return svc_errf(e, ENOMEM, "ipam: out of memory");
	ip->net = ntohl(net.s_addr);
	ip->prefix = prefix;
	ip->size = 1u << (32 - prefix);
	ip->bits = calloc((ip->size + 63) / 64, sizeof(*ip->bits));
	ip->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!ip->bits || ip->dirfd < 0) {
		r = ip->bits ? errno : ENOMEM;
		ipam_close(ip);
		return svc_errf(e, r, "ipam: opening %s: %s", dir, strerror(r));
	}
	if ((r = load(ip, e))) {
		ipam_close(ip);
		return svc_err_ctx(e, "%s", dir);
	}
	*out = ip;
	return 0;
}

void ipam_close(struct ipam *ip)
{
	struct smap_ent *ent;
	size_t cur = 0;

	if (!ip)
		return;
	while ((ent = smap_next(&ip->by_owner, &cur))) {
		free(ent->val);
	}
	smap_free(&ip->by_owner);
	smap_free(&ip->by_addr);
	free(ip->bits);
	if (ip->dirfd >= 0)
		close(ip->dirfd);
	free(ip);
}

/* Write the file of (off, owner) and record it. */
static int take(struct ipam *ip, uint32_t off, const char *owner, struct svc_err *e)
{
	size_t n = strlen(owner);
	struct ipam_rec *rec = rec_new(ip, off, owner, n);
	char line[OWNER_MAX + 2];
	int r;

	if (!rec)
		return svc_errf(e, ENOMEM, "ipam: out of memory");
	memcpy(line, owner, n);
	line[n] = '\n';
	/* No fsync: see "Durability" in ipam.h. */
	if ((r = file_replace(ip->dirfd, rec->addr, line, n + 1, 0600, false, e))) {
		free(rec);
		return svc_err_ctx(e, "ipam: recording %s for %s", A2S(off_addr(ip, off).s_addr),
				   owner);
	}
	if (rec_insert(ip, rec)) {
		unlinkat(ip->dirfd, rec->addr, 0);
		free(rec);
		return svc_errf(e, ENOMEM, "ipam: out of memory");
	}
	return 0;
}

/* Remove the file of rec (no fsync: see "Durability" in ipam.h). */
static int drop(struct ipam *ip, struct ipam_rec *rec, struct svc_err *e)
{
	if (unlinkat(ip->dirfd, rec->addr, 0) && errno != ENOENT)
		return svc_errf(e, errno, "ipam: removing %s of %s: %s", rec->addr, rec->owner,
				strerror(errno));
	rec_remove(ip, rec);
	return 0;
}

int ipam_alloc(struct ipam *ip, const char *owner, struct in_addr *out, struct svc_err *e)
{
	struct ipam_rec *rec = smap_get(&ip->by_owner, owner);
	uint32_t off;
	int r;

	if (rec) {
		*out = off_addr(ip, rec->off);
		return 0;
	}
	if (!owner_valid(owner, strlen(owner)))
		return svc_errf(e, EINVAL, "ipam: invalid owner \"%.64s\"", owner);
	if ((off = next_free(ip)) == UINT32_MAX)
		return svc_errf(e, ENOSPC, "ipam: no address left in %s/%d for %s",
				A2S(htonl(ip->net)), ip->prefix, owner);
	if ((r = take(ip, off, owner, e)))
		return r;
	ip->last = off;
	*out = off_addr(ip, off);
	return 0;
}

int ipam_claim(struct ipam *ip, const char *owner, struct in_addr addr, struct svc_err *e)
{
	uint32_t off = addr_off(ip, addr);
	struct ipam_rec *held, *mine;
	char a[INET_ADDRSTRLEN];
	int r;

	inet_ntop(AF_INET, &addr, a, sizeof(a));
	if (!owner_valid(owner, strlen(owner)))
		return svc_errf(e, EINVAL, "ipam: invalid owner \"%.64s\"", owner);
	if (off == UINT32_MAX || !off_usable(ip, off))
		return svc_errf(e, EINVAL, "ipam: %s is not an assignable address of %s/%d", a,
				A2S(htonl(ip->net)), ip->prefix);
	held = smap_get(&ip->by_addr, a);
	if (held)
		return strcmp(held->owner, owner)
			   ? svc_errf(e, EEXIST, "ipam: %s for %s: held by %s", a, owner,
				      held->owner)
			   : 0;
	/* The namespace is the truth: an owner moving to another address
	 * gives up the one recorded. */
	mine = smap_get(&ip->by_owner, owner);
	if (mine && (r = drop(ip, mine, e)))
		return r;
	return take(ip, off, owner, e);
}

int ipam_lookup(const struct ipam *ip, const char *owner, struct in_addr *out)
{
	const struct ipam_rec *rec = smap_get(&ip->by_owner, owner);

	if (!rec)
		return -ENOENT;
	*out = off_addr(ip, rec->off);
	return 0;
}

int ipam_release(struct ipam *ip, const char *owner, struct svc_err *e)
{
	struct ipam_rec *rec = smap_get(&ip->by_owner, owner);

	return rec ? drop(ip, rec, e) : 0;
}

int ipam_retain(struct ipam *ip, ipam_keep_fn keep, void *ctx, struct svc_err *e)
{
	struct ipam_rec **gone = NULL;
	struct smap_ent *ent;
	size_t cur = 0, n = 0;
	int r = 0;

	/* Collected first: dropping edits the map being walked. */
	if (ip->by_owner.n && !(gone = malloc(ip->by_owner.n * sizeof(*gone))))
		return svc_errf(e, ENOMEM, "ipam: out of memory");
	while ((ent = smap_next(&ip->by_owner, &cur))) {
		if (!keep(ent->key, ctx))
			gone[n++] = ent->val;
	}
	for (size_t i = 0; i < n && !r; i++)
		r = drop(ip, gone[i], e);
	free(gone);
	return r ? r : (int)n;
}

size_t ipam_used(const struct ipam *ip)
{
	return ip->by_owner.n;
}
