// SPDX-License-Identifier: MIT
#include "store.h"

#include "fsutil.h"

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
#define WATCH_MASK                                                                                 \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF |               \
	 IN_MOVE_SELF | IN_ONLYDIR)

struct svc_store {
	char *objects;
	int dirfd, lockfd, inofd;
};

static int replay_journal(struct svc_store *s, struct svc_err *e);
static void store_reopen(struct svc_store *s);

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
	if ((r = replay_journal(s, e)))
		goto fail;
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

static void stamp_of(const struct stat *st, struct file_stamp *out)
{
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

bool file_stamp_eq(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

int store_read(struct svc_store *s, const char *name, size_t max, char **text, size_t *len,
	       struct file_stamp *stamp, struct svc_err *e)
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
	stamp_of(&st, stamp);
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int store_stat(struct svc_store *s, const char *name, struct file_stamp *stamp)
{
	struct stat st;

	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	stamp_of(&st, stamp);
	return 0;
}

static void tmp_name(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, TMP_PREFIX "%d-%s", (int)getpid(), name);
}

static void remove_temps(struct svc_store *s, struct store_op *ops, size_t n)
{
	char tmp[NAME_MAX + 1];

	for (size_t i = 0; i < n; i++) {
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		unlinkat(s->dirfd, tmp, 0);
	}
}

static int write_one(struct svc_store *s, const char *name, const char *data, size_t len, bool sync,
		     struct file_stamp *stamp)
{
	struct stat st;
	int fd, r;

	fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (!r && sync && fdatasync(fd))
		r = -errno;
	if (!r && stamp && !fstat(fd, &st))
		stamp_of(&st, stamp);
	close(fd);
	return r;
}

/* Write every temp file; on failure remove the ones already written. */
static int write_temps(struct svc_store *s, struct store_op *ops, size_t n, bool sync_each,
		       struct svc_err *e)
{
	char tmp[NAME_MAX + 1];
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		if (!ops[i].data)
			continue;
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		r = write_one(s, tmp, ops[i].data, ops[i].len, sync_each, &ops[i].stamp);
		if (r) {
			svc_errf(e, -r, "writing %s/%s: %s", s->objects, ops[i].name, strerror(-r));
			remove_temps(s, ops, i + 1);
			return r;
		}
	}
	return 0;
}

/* The journal: records of NUL-terminated fields, "R" tmp final or "U"
 * final, written atomically before the first rename. */
#define JOURNAL ".journal"

static int write_journal(struct svc_store *s, struct store_op *ops, size_t n)
{
	char tmp[NAME_MAX + 1];
	struct sbuf b = {0};
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		if (ops[i].data)
			r = sbuf_add(&b, "R", 2) | sbuf_add(&b, tmp, strlen(tmp) + 1) |
			    sbuf_add(&b, ops[i].name, strlen(ops[i].name) + 1);
		else
			r = sbuf_add(&b, "U", 2) |
			    sbuf_add(&b, ops[i].name, strlen(ops[i].name) + 1);
	}
	if (r)
		r = -ENOMEM;
	else if (!(r = write_one(s, TMP_PREFIX JOURNAL, b.p, b.len, true, NULL)) &&
		 renameat(s->dirfd, TMP_PREFIX JOURNAL, s->dirfd, JOURNAL))
		r = -errno;
	if (!r && fsync(s->dirfd))
		r = -errno;
	sbuf_free(&b);
	return r;
}

/* The NUL-terminated field at *off, or NULL when the text ends first. */
static const char *next_field(const char *text, size_t len, size_t *off)
{
	const char *f = text + *off, *nul;

	if (*off >= len || !(nul = memchr(f, '\0', len - *off)))
		return NULL;
	*off += (size_t)(nul - f) + 1;
	return f;
}

/* Carry out a journal left by a crash: its temp files are durable, so the
 * change it describes is finished rather than lost. */
static int replay_journal(struct svc_store *s, struct svc_err *e)
{
	cleanup_free char *text = NULL;
	struct file_stamp stamp;
	size_t len, off = 0;
	int r;

	r = store_read(s, JOURNAL, 1u << 30, &text, &len, &stamp, e);
	if (r == -ENOENT) {
		svc_err_clear(e);
		return 0;
	}
	if (r)
		return svc_err_ctx(e, "reading %s/" JOURNAL, s->objects);
	while (off < len) {
		size_t at = off;
		const char *op = next_field(text, len, &off), *a = next_field(text, len, &off);
		const char *b = op && !strcmp(op, "R") ? next_field(text, len, &off) : "";
		if (!op || !a || !b || (strcmp(op, "R") && strcmp(op, "U")))
			return svc_errf(e, EINVAL, "%s/" JOURNAL ": bad record at offset %zu",
					s->objects, at);
		/* Either may be done already: a crash can come at any step. */
		if (*op == 'R')
			renameat(s->dirfd, a, s->dirfd, b);
		else
			unlinkat(s->dirfd, a, 0);
	}
	if (fsync(s->dirfd) || unlinkat(s->dirfd, JOURNAL, 0) || fsync(s->dirfd))
		return svc_errf(e, errno, "finishing %s/" JOURNAL ": %s", s->objects,
				strerror(errno));
	svc_log(SVC_LOG_INFO, "store: finished a change interrupted by a crash (%s/" JOURNAL ")",
		s->objects);
	return 0;
}

/* Renames and removals; past the journal, failures are logged, not undone:
 * the journal finishes them at the next start. */
static void apply_ops(struct svc_store *s, struct store_op *ops, size_t n, bool journaled)
{
	char tmp[NAME_MAX + 1];
	bool failed = false;

	for (size_t i = 0; i < n; i++) {
		if (!ops[i].data) {
			if (unlinkat(s->dirfd, ops[i].name, 0) && errno != ENOENT)
				failed = true;
			continue;
		}
		tmp_name(tmp, sizeof(tmp), ops[i].name);
		if (renameat(s->dirfd, tmp, s->dirfd, ops[i].name))
			failed = true;
	}
	if (fsync(s->dirfd))
		failed = true;
	if (failed)
		svc_log(SVC_LOG_ERROR, "store: finishing a change in %s: %s%s", s->objects,
			strerror(errno), journaled ? "; the next start completes it" : "");
	else if (journaled)
		unlinkat(s->dirfd, JOURNAL, 0);
}

int store_commit(struct svc_store *s, struct store_op *ops, size_t n, struct svc_err *e)
{
	bool sync_each = n <= SYNCFS_THRESHOLD, journaled = n > 1;
	int r;

	r = write_temps(s, ops, n, sync_each, e);
	if (r == -ENOENT) {
		/* The directory went away before we heard of it. */
		store_reopen(s);
		svc_err_clear(e);
		r = write_temps(s, ops, n, sync_each, e);
	}
	if (r)
		return r;
	/* The data must be on disk before any rename makes it visible. */
	if (!sync_each && syncfs(s->dirfd))
		r = -errno;
	if (!r && journaled)
		r = write_journal(s, ops, n);
	if (r) {
		remove_temps(s, ops, n);
		return svc_errf(e, -r, "making %s durable: %s", s->objects, strerror(-r));
	}
	if (n == 1 && !ops[0].data) {
		if (unlinkat(s->dirfd, ops[0].name, 0) && errno != ENOENT)
			return svc_errf(e, errno, "removing %s/%s: %s", s->objects, ops[0].name,
					strerror(errno));
		if (fsync(s->dirfd))
			return svc_errf(e, errno, "syncing %s: %s", s->objects, strerror(errno));
		return 0;
	}
	if (n == 1) {
		char tmp[NAME_MAX + 1];
		tmp_name(tmp, sizeof(tmp), ops[0].name);
		if (renameat(s->dirfd, tmp, s->dirfd, ops[0].name) || fsync(s->dirfd)) {
			r = svc_errf(e, errno, "renaming into %s/%s: %s", s->objects, ops[0].name,
				     strerror(errno));
			unlinkat(s->dirfd, tmp, 0);
			return r;
		}
		return 0;
	}
	apply_ops(s, ops, n, journaled);
	return 0;
}

/* The objects directory was removed or moved away: make a new one and
 * watch it, so that the daemon keeps storing (the rescan that follows
 * finds the files gone and deletes their objects, as for any removal). */
static void store_reopen(struct svc_store *s)
{
	int fd;

	if (mkdir_p(s->objects, 0700) ||
	    (fd = open(s->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		svc_log(SVC_LOG_ERROR, "store: %s is gone and cannot be made again: %s", s->objects,
			strerror(errno));
		return;
	}
	if (inotify_add_watch(s->inofd, s->objects, WATCH_MASK) < 0)
		svc_log(SVC_LOG_ERROR, "store: watching %s: %s", s->objects, strerror(errno));
	dup2(fd, s->dirfd);
	close(fd);
	svc_log(SVC_LOG_WARN, "store: %s was removed; made it again", s->objects);
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
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				store_reopen(s);
			if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
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
