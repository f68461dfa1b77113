// SPDX-License-Identifier: MIT
#include "unpack.h"

#include "err.h"
#include "fsutil.h"
#include "tar.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WH	  ".wh."
#define WH_META	  ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define COPY_BUF  65536

/* A set of paths, open addressing: what the current layer wrote, and every
 * directory above something it wrote. */
struct pset {
	char **v;
	size_t cap, n;
};

struct whiteout {
	char *path; /* the path removed, or the opaque directory */
	bool opaque;
	uint64_t offset;
};

struct unpack {
	int rootfd;
	struct tar *t;
	bool layer;
	struct pset written, under;
	struct whiteout *wh;
	size_t n_wh, cap_wh;
	uint8_t *buf;
};

static size_t pset_slot(const struct pset *s, const char *p)
{
	size_t i = (size_t)hash_str(p) & (s->cap - 1);

	while (s->v[i] && strcmp(s->v[i], p))
		i = (i + 1) & (s->cap - 1);
	return i;
}

static bool pset_has(const struct pset *s, const char *p)
{
	return s->cap && s->v[pset_slot(s, p)];
}

static int pset_grow(struct pset *s)
{
	struct pset n = {calloc(s->cap ? s->cap * 2 : 64, sizeof(char *)), s->cap ? s->cap * 2 : 64,
			 s->n};

	if (!n.v)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i])
			n.v[pset_slot(&n, s->v[i])] = s->v[i];
	free(s->v);
	*s = n;
	return 0;
}

/* Returns 1 when added, 0 when already there, -ENOMEM. */
static int pset_add(struct pset *s, const char *p, size_t len)
{
	char *d = strndup(p, len);
	size_t i;

	if (!d || ((s->n + 1) * 2 > s->cap && pset_grow(s))) {
		free(d);
		return -ENOMEM;
	}
	i = pset_slot(s, d);
	if (s->v[i]) {
		free(d);
		return 0;
	}
	s->v[i] = d;
	s->n++;
	return 1;
}

static void pset_free(struct pset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int unpack_clean_path(const char *in, char out[static PATH_MAX])
{
	size_t n = 0;

	while (*in) {
		size_t len = strcspn(in, "/");

		if (len == 2 && !memcmp(in, "..", 2))
			return -EINVAL;
		if (len && !(len == 1 && *in == '.')) {
			if (n + !!n + len >= PATH_MAX)
				return -ENAMETOOLONG;
			if (n)
				out[n++] = '/';
			memcpy(out + n, in, len);
			n += len;
		}
		in += len + (in[len] == '/');
	}
	out[n] = '\0';
	return 0;
}

/* The directory `cur` (a canonical path below root, no symlinks in it). */
static int walk_reopen(int rootfd, const char *cur, int old)
{
	int fd = openat(rootfd, *cur ? cur : ".", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	close(old);
	return fd < 0 ? -errno : fd;
}

/* Splice a symlink's target in front of what is left of the path. */
static int walk_splice(char *rest, char **p, const char *target)
{
	char buf[PATH_MAX];

	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", target, *p) >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(rest, buf, sizeof(buf));
	*p = rest;
	return 0;
}

/* One step of the walk: a symlink is spliced in (returns 1), a directory
 * entered (0); the last component is opened into *out (2). */
static int walk_step(int rootfd, char *cur, int *dfd, const char *name, bool last, int flags,
		     char *rest, char **p, int *links, int *out)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	if (fstatat(*dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
		if (++*links > 40)
			return -ELOOP;
		if ((n = readlinkat(*dfd, name, target, sizeof(target) - 1)) < 0)
			return -errno;
		target[n] = '\0';
		if (target[0] == '/') /* absolute: back to the root */
			cur[0] = '\0';
		if (target[0] == '/' && (*dfd = walk_reopen(rootfd, cur, *dfd)) < 0)
			return *dfd;
		return walk_splice(rest, p, target) ?: 1;
	}
	fd = openat(*dfd, name,
		    last ? flags | O_NOFOLLOW | O_CLOEXEC
			 : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (last) {
		*out = fd;
		return 2;
	}
	if (strlen(cur) + strlen(name) + 2 > PATH_MAX) {
		close(fd);
		return -ENAMETOOLONG;
	}
	strcat(strcat(cur, *cur ? "/" : ""), name);
	close(*dfd);
	*dfd = fd;
	return 0;
}

/* RESOLVE_IN_ROOT without openat2 (kernels before 5.6, valgrind): walk the
 * path a component at a time, never following a symlink by the kernel;
 * each target is read and resolved here, ".." stopping at the root. */
static int walk_in_root(int rootfd, const char *path, int flags)
{
	char rest[PATH_MAX], cur[PATH_MAX] = "", name[NAME_MAX + 1], *p = rest;
	int links = 0, out = -1, r = 0;
	int dfd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	if (snprintf(rest, sizeof(rest), "%s", path) >= (int)sizeof(rest))
		r = -ENAMETOOLONG;
	while (!r && dfd >= 0) {
		size_t len;

		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (!len) { /* the path named a directory: cur */
			r = openat(dfd, ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
			out = r < 0 ? -1 : r;
			r = r < 0 ? -errno : 2;
			break;
		}
		if (len > NAME_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		p += len;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			char *slash = strrchr(cur, '/');

			*(slash ? slash : cur) = '\0';
			dfd = walk_reopen(rootfd, cur, dfd);
			continue;
		}
		r = walk_step(rootfd, cur, &dfd, name, !p[strspn(p, "/")], flags, rest, &p, &links,
			      &out);
		r = r == 1 ? 0 : r;
	}
	if (dfd >= 0)
		close(dfd);
	return r == 2 ? out : r < 0 ? r : dfd;
}

int unpack_open(int rootfd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	static bool no_openat2;
	long fd = -1;

	/* EAGAIN: a concurrent rename elsewhere made the kernel unsure. */
	for (int i = 0; i < 8 && !no_openat2; i++) {
		fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0 && (no_openat2 || errno == ENOSYS)) {
		no_openat2 = true;
		return walk_in_root(rootfd, path, flags);
	}
	return fd < 0 ? -errno : (int)fd;
}

/* Member names are attacker-chosen: keep messages on one printable line. */
static const char *printable(const char *s, char buf[static 256])
{
	size_t i = 0;

	for (; s[i] && i < 255; i++)
		buf[i] = (unsigned char)s[i] < ' ' || s[i] == 127 ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static int member_err(struct svc_err *e, const struct tar_entry *en, int code, const char *what)
{
	char p[256];

	return svc_errf(e, code, "offset %" PRIu64 ": member %s: %s", en->offset,
			printable(en->path, p), what);
}

static int member_errno(struct svc_err *e, const struct tar_entry *en, int r, const char *step)
{
	char what[256];

	snprintf(what, sizeof(what), "%s: %s", step, strerror(-r));
	return member_err(e, en, -r, what);
}

/* Remember a path this layer wrote, and the directories above it; when a
 * parent is already known, so are all of its ancestors. */
static int mark_written(struct unpack *u, const char *path)
{
	size_t len = strlen(path);

	if (!u->layer)
		return 0;
	if (pset_add(&u->written, path, len) < 0)
		return -ENOMEM;
	while (len) {
		int r;

		while (len && path[len - 1] != '/')
			len--;
		if (!len)
			break;
		r = pset_add(&u->under, path, --len);
		if (r <= 0)
			return r;
	}
	return 0;
}

/* Open the directory `dir` below the root, making missing components
 * (mode 0755, as Docker does for parents a layer does not list). */
static int open_parent(struct unpack *u, const char *dir)
{
	char prefix[PATH_MAX];
	int fd = unpack_open(u->rootfd, dir, O_PATH | O_DIRECTORY), prev;
	size_t i = 0;

	if (fd != -ENOENT)
		return fd;
	if ((prev = unpack_open(u->rootfd, "", O_PATH | O_DIRECTORY)) < 0)
		return prev;
	while (dir[i]) {
		size_t len = strcspn(dir + i, "/");

		memcpy(prefix, dir, i + len);
		prefix[i + len] = '\0';
		fd = unpack_open(u->rootfd, prefix, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT && (mkdirat(prev, prefix + i, 0755) == 0 || errno == EEXIST))
			fd = unpack_open(u->rootfd, prefix, O_PATH | O_DIRECTORY);
		close(prev);
		if (fd < 0)
			return fd;
		if (mark_written(u, prefix) < 0) {
			close(fd);
			return -ENOMEM;
		}
		prev = fd;
		i += len + (dir[i + len] == '/');
	}
	return prev;
}

/* Clear the way for a new entry at pfd/base.  Returns 1 when base is a
 * directory and a directory is wanted: it is kept with its content. */
static int make_room(int pfd, const char *base, bool dir)
{
	struct stat st;

	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return dir ? 1 : remove_tree(pfd, base);
	return unlinkat(pfd, base, 0) ? -errno : 0;
}

/* Without CAP_CHOWN (a user namespace) files stay ours, as rootless
 * engines do; a root daemon always keeps the archive's owners. */
static bool chown_ignorable(int err)
{
	return err == EPERM || err == EINVAL;
}

/* Owner before mode: chown clears the set-id bits. */
static int meta_fd(struct unpack *u, int fd, const struct tar_entry *en)
{
	struct timespec ts[2] = {{.tv_sec = en->mtime}, {.tv_sec = en->mtime}};

	if (!u->layer)
		return 0;
	if (fchown(fd, en->uid, en->gid) && !chown_ignorable(errno))
		return -errno;
	if (fchmod(fd, en->mode))
		return -errno;
	futimens(fd, ts); /* best effort: a time the filesystem cannot hold is no failure */
	return 0;
}

static int meta_at(struct unpack *u, int pfd, const char *base, const struct tar_entry *en)
{
	struct timespec ts[2] = {{.tv_sec = en->mtime}, {.tv_sec = en->mtime}};

	if (!u->layer)
		return 0;
	if (fchownat(pfd, base, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) && !chown_ignorable(errno))
		return -errno;
	/* A symlink's mode means nothing; a node we just made is no symlink. */
	if (en->type != TAR_SYMLINK && fchmodat(pfd, base, en->mode, 0))
		return -errno;
	utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int put_file(struct unpack *u, int pfd, const char *base, const struct tar_entry *en,
		    struct svc_err *e)
{
	int fd, r = make_room(pfd, base, false);
	ssize_t k;

	if (r)
		return member_errno(e, en, r, "replacing");
	/* O_EXCL and O_NOFOLLOW: never write through whatever is there. */
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return member_errno(e, en, -errno, "creating");
	while ((k = tar_read(u->t, u->buf, COPY_BUF, e)) > 0)
		if ((r = write_all(fd, u->buf, (size_t)k)))
			break;
	if (k < 0)
		r = (int)k;
	else if (r)
		r = member_errno(e, en, r, "writing");
	else if ((r = meta_fd(u, fd, en)))
		r = member_errno(e, en, r, "setting owner and mode");
	close(fd);
	return r;
}

/* An existing directory is kept (a lower layer's content stays) and only
 * takes the new metadata.  Its mtime changes again when later members land
 * in it: directory times are best effort. */
static int put_dir(struct unpack *u, int pfd, const char *base, const struct tar_entry *en,
		   struct svc_err *e)
{
	int r = make_room(pfd, base, true), fd;

	if (r < 0)
		return member_errno(e, en, r, "replacing");
	if (r == 0 && mkdirat(pfd, base, 0700))
		return member_errno(e, en, -errno, "mkdir");
	fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return member_errno(e, en, -errno, "opening");
	r = meta_fd(u, fd, en);
	close(fd);
	return r ? member_errno(e, en, r, "setting owner and mode") : 0;
}

static int put_hardlink(struct unpack *u, int pfd, const char *path, const char *base,
			const struct tar_entry *en, struct svc_err *e)
{
	char target[PATH_MAX], *slash;
	struct stat st;
	int tfd, r = unpack_clean_path(en->link, target);

	if (r || !*target)
		return member_err(e, en, EINVAL, "hardlink target leaves the root");
	if (!strcmp(target, path))
		return 0;
	slash = strrchr(target, '/');
	if (slash)
		*slash = '\0';
	tfd = unpack_open(u->rootfd, slash ? target : "", O_PATH | O_DIRECTORY);
	if (tfd < 0)
		return member_errno(e, en, tfd, "hardlink target");
	if (fstatat(tfd, slash ? slash + 1 : target, &st, AT_SYMLINK_NOFOLLOW))
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (!(r = make_room(pfd, base, false)) &&
		 linkat(tfd, slash ? slash + 1 : target, pfd, base,
			0)) /* 0: a symlink is not followed */
		r = -errno;
	close(tfd);
	return r ? member_errno(e, en, r, "hardlink") : 0;
}

/* Device nodes need CAP_MKNOD: without it (a user namespace) they are left
 * out, as rootless engines do, rather than failing the whole image. */
static int put_node(struct unpack *u, int pfd, const char *base, const struct tar_entry *en,
		    struct svc_err *e)
{
	mode_t type = en->type == TAR_CHR ? S_IFCHR : en->type == TAR_BLK ? S_IFBLK : S_IFIFO;
	int r = make_room(pfd, base, false);

	if (r)
		return member_errno(e, en, r, "replacing");
	if (mknodat(pfd, base, type | 0600, makedev(en->devmajor, en->devminor)))
		return errno == EPERM && type != S_IFIFO ? 0 : member_errno(e, en, -errno, "mknod");
	r = meta_at(u, pfd, base, en);
	return r ? member_errno(e, en, r, "setting owner and mode") : 0;
}

static int put_symlink(struct unpack *u, int pfd, const char *base, const struct tar_entry *en,
		       struct svc_err *e)
{
	int r = make_room(pfd, base, false);

	if (r)
		return member_errno(e, en, r, "replacing");
	if (symlinkat(en->link, pfd, base))
		return member_errno(e, en, -errno, "symlink");
	r = meta_at(u, pfd, base, en);
	return r ? member_errno(e, en, r, "setting owner") : 0;
}

static int put_entry(struct unpack *u, int pfd, const char *path, const char *base,
		     const struct tar_entry *en, struct svc_err *e)
{
	if (!u->layer && en->type != TAR_REG && en->type != TAR_DIR && en->type != TAR_SYMLINK)
		return member_err(e, en, EINVAL,
				  "only files, directories and symlinks are allowed");
	switch (en->type) {
	case TAR_REG:
		return put_file(u, pfd, base, en, e);
	case TAR_DIR:
		return put_dir(u, pfd, base, en, e);
	case TAR_SYMLINK:
		return put_symlink(u, pfd, base, en, e);
	case TAR_HARDLINK:
		return put_hardlink(u, pfd, path, base, en, e);
	default:
		return put_node(u, pfd, base, en, e);
	}
}

static int add_whiteout(struct unpack *u, const char *dir, const char *name,
			const struct tar_entry *en, struct svc_err *e)
{
	struct whiteout *w;
	bool opaque = !strcmp(name, WH_OPAQUE);
	const char *victim = name + strlen(WH);

	if (!opaque && !strncmp(name, WH_META, strlen(WH_META)))
		return 0; /* aufs bookkeeping (.wh..wh.plnk and the like) */
	if (!opaque && (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")))
		return member_err(e, en, EINVAL, "bad whiteout name");
	if (u->n_wh == u->cap_wh) {
		size_t cap = u->cap_wh ? u->cap_wh * 2 : 16;

		if (!(w = realloc(u->wh, cap * sizeof(*w))))
			return member_err(e, en, ENOMEM, "out of memory");
		u->wh = w;
		u->cap_wh = cap;
	}
	w = &u->wh[u->n_wh];
	w->opaque = opaque;
	w->offset = en->offset;
	if (opaque)
		w->path = strdup(dir);
	else if (asprintf(&w->path, "%s%s%s", dir, *dir ? "/" : "", victim) < 0)
		w->path = NULL;
	if (!w->path)
		return member_err(e, en, ENOMEM, "out of memory");
	u->n_wh++;
	return 0;
}

/* The root directory itself ("./"): only a directory makes sense there. */
static int put_root(struct unpack *u, const struct tar_entry *en, struct svc_err *e)
{
	int fd, r;

	if (en->type != TAR_DIR)
		return member_err(e, en, EINVAL, "the root must be a directory");
	if ((fd = unpack_open(u->rootfd, "", O_RDONLY | O_DIRECTORY)) < 0)
		return member_errno(e, en, fd, "opening the root");
	r = meta_fd(u, fd, en);
	close(fd);
	return r ? member_errno(e, en, r, "setting owner and mode") : 0;
}

static int apply_entry(struct unpack *u, const struct tar_entry *en, struct svc_err *e)
{
	char path[PATH_MAX], dir[PATH_MAX];
	const char *slash, *base;
	int pfd, r = unpack_clean_path(en->path, path);

	if (r)
		return member_err(e, en, -r,
				  r == -EINVAL ? "path leaves the root" : "name too long");
	if (!*path)
		return put_root(u, en, e);
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	if (u->layer && !strncmp(base, WH, strlen(WH)))
		return add_whiteout(u, dir, base, en, e);
	if ((pfd = open_parent(u, dir)) < 0)
		return member_errno(e, en, pfd, "parent directory");
	r = put_entry(u, pfd, path, base, en, e);
	close(pfd);
	if (!r && mark_written(u, path) < 0)
		return member_err(e, en, ENOMEM, "out of memory");
	return r;
}

static int prune(struct unpack *u, int dfd, const char *name, char *path, int depth);

static int prune_children(struct unpack *u, int dfd, char *path, int depth)
{
	size_t len = strlen(path);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (depth > PATH_MAX / 2)
		return -ELOOP;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return -errno;
	}
	while (!r && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len + 1 + strlen(de->d_name) >= PATH_MAX)
			r = -ENAMETOOLONG;
		else
			snprintf(path + len, PATH_MAX - len, "%s%s", len ? "/" : "", de->d_name);
		if (!r)
			r = prune(u, dirfd(d), de->d_name, path, depth + 1);
		path[len] = '\0';
	}
	closedir(d);
	return r;
}

/* Remove what the lower layers left at `path` (dfd/name), keeping what
 * this layer wrote there or below. */
static int prune(struct unpack *u, int dfd, const char *name, char *path, int depth)
{
	struct stat st;
	int fd;

	if (!pset_has(&u->written, path) && !pset_has(&u->under, path))
		return remove_tree(dfd, name);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return prune_children(u, fd, path, depth);
}

static int apply_whiteout(struct unpack *u, const struct whiteout *w)
{
	char path[PATH_MAX], *slash;
	int fd, r;

	snprintf(path, sizeof(path), "%s", w->path);
	if (w->opaque) {
		/* O_NOFOLLOW: an opaque symlink hides nothing of its target. */
		fd = unpack_open(u->rootfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
			return 0;
		return fd < 0 ? fd : prune_children(u, fd, path, 0);
	}
	slash = strrchr(path, '/');
	if (slash)
		*slash = '\0';
	fd = unpack_open(u->rootfd, slash ? path : "", O_PATH | O_DIRECTORY);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return 0;
	if (fd < 0)
		return fd;
	if (slash)
		*slash = '/';
	r = prune(u, fd, slash ? slash + 1 : path, path, 0);
	close(fd);
	return r;
}

/* Whiteouts hide the lower layers only, and the order of members within a
 * layer is arbitrary: so they run once the whole layer is in place, sparing
 * everything the layer itself wrote. */
static int apply_whiteouts(struct unpack *u, struct svc_err *e)
{
	for (size_t i = 0; i < u->n_wh; i++) {
		char p[256];
		int r = apply_whiteout(u, &u->wh[i]);

		if (r)
			return svc_errf(e, -r, "offset %" PRIu64 ": whiteout of %s: %s",
					u->wh[i].offset, printable(u->wh[i].path, p), strerror(-r));
	}
	return 0;
}

static void unpack_free(struct unpack *u)
{
	for (size_t i = 0; i < u->n_wh; i++)
		free(u->wh[i].path);
	free(u->wh);
	pset_free(&u->written);
	pset_free(&u->under);
	free(u->buf);
}

int unpack_tar(int rootfd, struct tar *t, enum unpack_mode mode, struct svc_err *e)
{
	struct unpack u = {.rootfd = rootfd, .t = t, .layer = mode == UNPACK_LAYER};
	const struct tar_entry *en;
	int r;

	if (!(u.buf = malloc(COPY_BUF)))
		return svc_errf(e, ENOMEM, "out of memory");
	while ((r = tar_next(t, &en, e)) > 0)
		if ((r = apply_entry(&u, en, e)))
			break;
	if (!r)
		r = apply_whiteouts(&u, e);
	unpack_free(&u);
	return r;
}
