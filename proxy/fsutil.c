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
	if (fsync(dirfd))
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

static int remove_children(int fd, dev_t dev, int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 256)
		return -ELOOP;
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
			int sub;

			if (st.st_dev != dev) {
				r = -EBUSY;
				continue;
			}
			sub =
			    openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			int k = remove_children(sub, dev, depth + 1);
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
	struct stat st;
	int fd, r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) && errno != ENOENT ? -errno : 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = remove_children(fd, st.st_dev, 0);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) && errno != ENOENT && !r)
		r = -errno;
	return r;
}
