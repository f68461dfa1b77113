/* SPDX-License-Identifier: MIT */
/* The state directory: one file per object under <state-dir>/objects, written
 * atomically (temp file, fsync, rename, fsync of the directory), watched with
 * inotify so that files added or removed by hand are noticed. */
#ifndef SVCD_STORE_H
#define SVCD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct svc_store;

/* What a file looked like when we wrote or read it: an event for a file
 * that still looks like this is our own, an in-place edit is not. */
struct file_stamp {
	uint64_t ino;
	int64_t size, mtime_ns;
};
bool file_stamp_eq(const struct file_stamp *a, const struct file_stamp *b);

/* Create the directories if needed, take the state-dir lock (one daemon per
 * directory), remove temp files a crash left behind, start watching. */
int store_open(const char *state_dir, struct svc_store **out, struct svc_err *e);
void store_close(struct svc_store *s);
const char *store_objects_dir(const struct svc_store *s);
int store_watch_fd(const struct svc_store *s);

/* Names of the object files (not temp or hidden files), sorted. */
int store_list(struct svc_store *s, char ***names, size_t *n, struct svc_err *e);
void store_names_free(char **names, size_t n);
/* Read one file, at most `max` bytes, and its stamp. */
int store_read(struct svc_store *s, const char *name, size_t max, char **text, size_t *len,
	       struct file_stamp *stamp, struct svc_err *e);

/* The stamp of an object file; -ENOENT when it is gone. */
int store_stat(struct svc_store *s, const char *name, struct file_stamp *stamp);

/* A set of writes and removals made durable together.  Writes go to temp
 * files first; if any of them fails nothing is renamed into place.  With
 * more than one change, a journal of the renames is made durable before
 * the first one, and replayed by store_open after a crash: all or none. */
struct store_op {
	const char *name;
	const char *data; /* NULL: remove the file */
	size_t len;
	struct file_stamp stamp; /* out: the written file */
};
int store_commit(struct svc_store *s, struct store_op *ops, size_t n, struct svc_err *e);

/* Drain inotify.  The callback gets each object file that changed (exists
 * says whether it is there now); name NULL means events were lost and the
 * caller must rescan. */
typedef void (*store_event_fn)(void *ctx, const char *name);
int store_read_events(struct svc_store *s, store_event_fn fn, void *ctx);

/* The canonical file name for an object: "service.default.web.json". */
int store_name_for(char *buf, size_t n, const char *kind, const char *ns, const char *name);

#endif
