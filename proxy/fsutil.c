// SPDX-License-Identifier: MIT
#include "fsutil.h"

#include "err.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int file_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		      struct svc_err *e)
{
	return file_replace(dirfd, name, data, len, mode, true, e);
}

int file_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
		 struct svc_err *e)
{
	char tmp[NAME_MAX + 1];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), ".tmp-%d-%s", (int)getpid(), name) >= (int)sizeof(tmp))
		return svc_errf(e, ENAMETOOLONG, "%s: name too long", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return svc_errf(e, errno, "creating %s: %s", tmp, strerror(errno));
	r = write_all(fd, data, len);
	if (!r && sync && fdatasync(fd))
		r = -errno;
	close(fd);
	if (r) {
		unlinkat(dirfd, tmp, 0);
		return svc_errf(e, -r, "writing %s: %s", tmp, strerror(-r));
	}
	if (renameat(dirfd, tmp, dirfd, name)) {
		r = errno;
		unlinkat(dirfd, tmp, 0);
		return svc_errf(e, r, "renaming %s to %s: %s", tmp, name, strerror(r));
	}
	if (sync && fsync(dirfd))
		return svc_errf(e, errno, "fsync of the directory of %s: %s", name,
				strerror(errno));
	return 0;
}

int file_read_all(int dirfd, const char *name, size_t max, char **out, size_t *len)
{
	struct sbuf b = {0};
	struct stat st;
	char chunk[4096];
	int fd, r = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	/* Read to EOF, not st_size: /proc files say 0. */
	for (;;) {
		ssize_t k = read(fd, chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		if (b.len + (size_t)k > max) {
			r = -EFBIG;
			break;
		}
		if ((r = sbuf_add(&b, chunk, (size_t)k)))
			break;
	}
	close(fd);
	if (!r && !b.p)
		r = sbuf_reserve(&b, 0); /* an empty file is "" */
	if (r) {
		sbuf_free(&b);
		return r;
	}
	b.p[b.len] = '\0';
	*out = b.p;
	if (len)
		*len = b.len;
	return 0;
}

/* The descent holds a descriptor per level; a deeper directory is moved up
 * to the top of the tree (a rename on the same filesystem) and removed in a
 * later pass, so that a tree of any depth goes (an image layer's, a
 * container's files). */
#define RM_DEPTH 64

struct rm {
	int top; /* the tree's top directory, where deep ones are moved */
	dev_t dev;
	unsigned long moved; /* names for the moved ones */
	bool again;	     /* some were moved this pass */
};

/* Move fd/name to the top under a name of its own: only an empty directory
 * of this same tree can be in the way (rename replaces nothing else). */
static int rm_move_up(struct rm *rm, int fd, const char *name)
{
	char up[32];

	for (int tries = 0; tries < 100; tries++) {
		snprintf(up, sizeof(up), ".rm-deep-%lu", ++rm->moved);
		if (!renameat(fd, name, rm->top, up)) {
			rm->again = true;
			return 0;
		}
		if (errno != EEXIST && errno != ENOTEMPTY && errno != ENOTDIR)
			return -errno;
	}
	return -EEXIST;
}

static int remove_children(int fd, struct rm *rm, int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub, k;

			if (st.st_dev != rm->dev) {
				r = -EBUSY;
				continue;
			}
			if (depth >= RM_DEPTH) {
				if ((k = rm_move_up(rm, fd, de->d_name)) && !r)
					r = k;
				continue;
			}
			sub =
			    openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			k = remove_children(sub, rm, depth + 1);
			if (k && !r)
				r = k;
			if (unlinkat(fd, de->d_name, AT_REMOVEDIR) && !r)
				r = -errno;
		} else if (unlinkat(fd, de->d_name, 0) && errno != ENOENT && !r) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

int remove_tree(int dirfd, const char *name)
{
	struct rm rm = {.top = -1};
	struct stat st;
	int r = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) && errno != ENOENT ? -errno : 0;
	rm.dev = st.st_dev;
	do { /* until no pass moves anything up */
		int fd, k;

		rm.again = false;
		rm.top = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (rm.top < 0)
			return -errno;
		fd = fcntl(rm.top, F_DUPFD_CLOEXEC, 0);
		k = fd < 0 ? -errno : remove_children(fd, &rm, 1);
		if (k && !r)
			r = k;
		close(rm.top);
	} while (rm.again);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) && errno != ENOENT && !r)
		r = -errno;
	return r;
}
