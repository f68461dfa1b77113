/* SPDX-License-Identifier: MIT */
/* File helpers shared by the store, IPAM, the image store and the pod
 * runtime: every file svcd keeps is written through file_write_atomic, so a
 * crash leaves either the old or the new content, never a torn file. */
#ifndef SVCD_FSUTIL_H
#define SVCD_FSUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct svc_err;

/* mkdir -p; returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* write(2) until done, retrying EINTR; returns 0 or -errno. */
int write_all(int fd, const void *p, size_t n);
/* Write `name` in the directory `dirfd` atomically: a temp file in the same
 * directory, fdatasync, rename over `name`, fsync the directory.  Returns 0
 * or -errno with e naming the step. */
int file_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		      struct svc_err *e);
/* The same with `sync` false: temp file and rename, no fsync.  A process
 * crash still sees the old or the new content, never a torn file; only a
 * power loss may lose the change.  For records of kernel state that a power
 * loss takes away anyway (IPAM). */
int file_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
		 struct svc_err *e);
/* Read a whole regular file of at most `max` bytes (NUL-terminated);
 * -EFBIG when larger.  *out is malloc'd. */
int file_read_all(int dirfd, const char *name, size_t max, char **out, size_t *len);
/* rm -rf of `name` under dirfd, never following symlinks or crossing mount
 * points; missing is not an error.  Returns 0 or -errno. */
int remove_tree(int dirfd, const char *name);
#endif
