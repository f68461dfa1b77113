/* SPDX-License-Identifier: MIT */
/* The image store: Docker images imported from `docker save` or OCI
 * image-layout archives, flattened into one root filesystem per image.
 *
 * Layout under `dir` (the daemon uses <state-dir>/images):
 *   <dir>/<hex id>/rootfs/      the layers applied in order, whiteouts honoured
 *   <dir>/<hex id>/config.json  the image config as the archive carried it
 *   <dir>/<hex id>/info.json    {"imported": RFC 3339 time, "size": bytes}
 *   <dir>/refs/<escaped ref>    one small file per NAME:TAG holding the id;
 *                               '/' and ':' escaped as %2F and %3A
 * Every file is written atomically; an import extracts into a temp directory
 * (<dir>/.tmp-<pid>-*, swept once its process is gone) and renames it into
 * place, so a crash leaves no half image.  <dir>/<hex id> is mode 0700: the
 * set-uid files of a rootfs must not be reachable by host users. */
#ifndef SVCD_IMAGE_H
#define SVCD_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct svc_err;

/* What svcd needs from an image's config ("config" object of the image
 * config JSON).  String arrays are NULL-terminated; NULL when absent. */
struct image {
	char *ref;    /* normalised NAME:TAG */
	char *id;     /* hex sha256 of the config blob (64 chars) */
	char *rootfs; /* absolute path of the flattened root filesystem */
	char **entrypoint;
	char **cmd;
	char **env;	 /* "K=V" */
	char *workdir;	 /* NULL when unset */
	char *user;	 /* NULL when unset */
	uint16_t *ports; /* ExposedPorts, n_ports entries (protocol dropped) */
	size_t n_ports;
	int64_t size; /* bytes of the rootfs */
	time_t imported;
};

/* A buffer of this size holds any normalised reference. */
#define IMAGE_REF_MAX 256

/* Normalise a reference as Docker does for local names: "busybox" ->
 * "busybox:latest", "docker.io/library/busybox:1" -> "busybox:1".  Returns 0
 * or -EINVAL with e naming what is wrong (empty, bad characters, uppercase in
 * the name, a digest, longer than 200 bytes once escaped). */
int image_ref_normalize(const char *ref, char *out, size_t n, struct svc_err *e);

/* Import `archive` (docker save or OCI layout, the tar itself plain or
 * gzip-compressed) under `ref`; an existing tag is moved to the new image
 * (its old image is removed when no other tag names it).
 * All bytes of the archive go through bounds-checked readers; errors name
 * the member and offset ("layer 2 (abc.../layer.tar): offset 1536: bad
 * header checksum").  Nothing is left behind on failure.  The id of the
 * imported image is copied into id_out (65 bytes) when not NULL. */
int image_import(const char *dir, const char *ref, const char *archive, char id_out[65],
		 struct svc_err *e);
/* Load the image a reference names; -ENOENT (with e saying so) when absent. */
int image_load(const char *dir, const char *ref, struct image *out, struct svc_err *e);
void image_free(struct image *img);
/* All tagged images, sorted by ref; free each with image_free, then free(). */
int image_list(const char *dir, struct image **out, size_t *n, struct svc_err *e);
/* Remove a tag; the image's files go when no tag names them any more.
 * -ENOENT when the tag does not exist. */
int image_remove(const char *dir, const char *ref, struct svc_err *e);
#endif
