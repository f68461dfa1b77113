// SPDX-License-Identifier: MIT
#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define TMP_PREFIX ".tmp-"
/* Below this many files, fsync each; above, one syncfs is far cheaper. */
#define SYNCFS_THRESHOLD 8

struct svc_store {
	char *objects;
	int dirfd, lockfd, inofd;
};

static int mkdir_p(const char *path, mode_t mode)
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

static bool is_object_file(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".json")) ||
	       (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

/* Temp files are never acknowledged to anyone: a crash leaves them to us. */
static void remove_temp_files(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

static int open_lock(struct svc_store *s, const char *state_dir, struct svc_err *e)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/.lock", state_dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return svc_errf(e, errno, "opening %s: %s", path, strerror(errno));
	if (flock(s->lockfd, LOCK_EX | LOCK_NB))
		return svc_errf(e, errno == EWOULDBLOCK ? EBUSY : errno,
				"state directory %s is in use by another svcd (lock %s held)",
				state_dir, path);
	return 0;
}

int store_open(const char *state_dir, struct svc_store **out, struct svc_err *e)
{
	struct svc_store *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if (!s)
		return svc_errf(e, ENOMEM, "out of memory");
	s->dirfd = s->lockfd = s->inofd = -1;
	if (asprintf(&s->objects, "%s/objects", state_dir) < 0) {
		free(s);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	if ((r = mkdir_p(s->objects, 0700))) {
		r = svc_errf(e, -r, "creating %s: %s", s->objects, strerror(-r));
		goto fail;
	}
	if ((r = open_lock(s, state_dir, e)))
		goto fail;
	s->dirfd = open(s->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->dirfd < 0 || s->inofd < 0 ||
	    inotify_add_watch(s->inofd, s->objects,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
				  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		r = svc_errf(e, errno, "watching %s: %s", s->objects, strerror(errno));
		goto fail;
	}
	remove_temp_files(s->dirfd);
	*out = s;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct svc_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->inofd >= 0)
		close(s->inofd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->objects);
	free(s);
}

const char *store_objects_dir(const struct svc_store *s)
{
	return s->objects;
}

int store_watch_fd(const struct svc_store *s)
{
	return s->inofd;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void store_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int store_list(struct svc_store *s, char ***names, size_t *n, struct svc_err *e)
{
	DIR *d = fdopendir(dup(s->dirfd));
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	if (!d)
		return svc_errf(e, errno, "reading %s: %s", s->objects, strerror(errno));
	rewinddir(d);
	while ((de = readdir(d))) {
		if (!is_object_file(de->d_name))
			continue;
		if (cnt == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		if (!(v[cnt] = strdup(de->d_name)))
			goto nomem;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_names);
	*names = v;
	*n = cnt;
	return 0;
nomem:
	closedir(d);
	store_names_free(v, cnt);
	return svc_errf(e, ENOMEM, "out of memory");
}

int store_read(struct svc_store *s, const char *name, size_t max, char **text, size_t *len,
	       ino_t *ino, struct svc_err *e)
{
	int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int r = 0;

	if (fd < 0)
		return svc_errf(e, errno, "%s", strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		r = svc_errf(e, EINVAL, "not a regular file");
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = svc_errf(e, EFBIG, "file is %lld bytes, more than the %zu allowed",
			     (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = svc_errf(e, ENOMEM, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* truncated under us: take what is there */
		got += (size_t)k;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	*ino = st.st_ino;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int store_stat(struct svc_store *s, const char *name, ino_t *ino)
{
	struct stat st;

	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
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

static void tmp_name(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, TMP_PREFIX "%d-%s", (int)getpid(), name);
}

/* Write every temp file; on failure remove the ones already written. */
static int write_temps(struct svc_store *s, struct store_op *ops, size_t n, bool sync_each,
		       struct svc_err *e)
{
	char tmp[NAME_MAX + 1];
	size_t i;
	int r = 0;

	for (i = 0; i < n && !r; i++) {
		struct stat st;
		int fd;
		if (!ops[i].data)
			continue;
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			break;
		}
		r = write_all(fd, ops[i].data, ops[i].len);
		if (!r && sync_each && fdatasync(fd))
			r = -errno;
		if (!r && !fstat(fd, &st))
			ops[i].ino = st.st_ino;
		close(fd);
	}
	if (!r)
		return 0;
	svc_errf(e, -r, "writing %s/%s: %s", s->objects, ops[i - 1].name, strerror(-r));
	while (i-- > 0) {
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		unlinkat(s->dirfd, tmp, 0);
	}
	return r;
}

int store_commit(struct svc_store *s, struct store_op *ops, size_t n, struct svc_err *e)
{
	char tmp[NAME_MAX + 1];
	bool sync_each = n <= SYNCFS_THRESHOLD;
	int r;

	if ((r = write_temps(s, ops, n, sync_each, e)))
		return r;
	/* The data must be on disk before any rename makes it visible. */
	if (!sync_each && syncfs(s->dirfd)) {
		r = svc_errf(e, errno, "syncing %s: %s", s->objects, strerror(errno));
		for (size_t i = 0; i < n; i++) {
			tmp_name(tmp, sizeof(tmp), ops[i].name);
			unlinkat(s->dirfd, tmp, 0);
		}
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ops[i].data) {
			if (unlinkat(s->dirfd, ops[i].name, 0) && errno != ENOENT)
				r = r ? r
				      : svc_errf(e, errno, "removing %s/%s: %s", s->objects,
						 ops[i].name, strerror(errno));
			continue;
		}
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		if (renameat(s->dirfd, tmp, s->dirfd, ops[i].name))
			r = r ? r
			      : svc_errf(e, errno, "renaming into %s/%s: %s", s->objects,
					 ops[i].name, strerror(errno));
	}
	if (fsync(s->dirfd))
		r = r ? r : svc_errf(e, errno, "syncing %s: %s", s->objects, strerror(errno));
	return r;
}

int store_read_events(struct svc_store *s, store_event_fn fn, void *ctx)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(s->inofd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 && errno != EAGAIN ? -errno : 0;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF))
				fn(ctx, NULL);
			else if (ev->len && is_object_file(ev->name))
				fn(ctx, ev->name);
		}
	}
}

int store_name_for(char *buf, size_t n, const char *kind, const char *ns, const char *name)
{
	char k[32], full[600];
	size_t i;
	int r;

	for (i = 0; kind[i] && i < sizeof(k) - 1; i++)
		k[i] = (char)tolower((unsigned char)kind[i]);
	k[i] = '\0';
	r = snprintf(full, sizeof(full), "%s.%s.%s", k, ns, name);
	if (r < 0 || (size_t)r >= sizeof(full))
		return -ENAMETOOLONG;
	/* Leave room under NAME_MAX for the temp prefix: long names get a hash. */
	if (r > 200)
		r = snprintf(buf, n, "%.180s-%016llx.json", full,
			     (unsigned long long)hash_str(full));
	else
		r = snprintf(buf, n, "%s.json", full);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}
