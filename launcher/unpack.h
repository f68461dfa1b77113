/* SPDX-License-Identifier: MIT */
/* Unpacking a tar stream into a directory that no member can leave: every
 * path is resolved with openat2(RESOLVE_IN_ROOT), so `..` in a symlink or an
 * absolute link target stops at the directory, as it would in a chroot;
 * nothing is ever written through a symlink at the last component. */
#ifndef SVCD_UNPACK_H
#define SVCD_UNPACK_H
#include <limits.h>

struct svc_err;
struct tar;

enum unpack_mode {
	/* An image layer: every member type, whiteouts (.wh.NAME removes NAME
	 * from the lower layers, .wh..wh..opq hides all their content of its
	 * directory), modes, owners and mtimes kept. */
	UNPACK_LAYER,
	/* The outer image archive: regular files, directories and symlinks
	 * only, owned by root, no whiteouts. */
	UNPACK_PLAIN,
};

/* Unpack every member of t under the directory rootfd (opened O_RDONLY |
 * O_DIRECTORY).  Returns 0 or -errno with e naming the offset and member:
 * "offset 1536: member etc/x: ...". */
int unpack_tar(int rootfd, struct tar *t, enum unpack_mode mode, struct svc_err *e);
/* Open path below rootfd as if rootfd were "/".  Returns an fd or -errno. */
int unpack_open(int rootfd, const char *path, int flags);
/* An archive path made relative and canonical: "/", "." and empty
 * components dropped ("" is the root itself).  -EINVAL for a ".."
 * component, -ENAMETOOLONG past PATH_MAX. */
int unpack_clean_path(const char *in, char out[static PATH_MAX]);
#endif
