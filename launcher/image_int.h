/* SPDX-License-Identifier: MIT */
/* Internals shared by image.c (the store: refs, load, list, remove) and
 * image_import.c (the archive formats). */
#ifndef SVCD_IMAGE_INT_H
#define SVCD_IMAGE_INT_H
#include <stdbool.h>
#include <stddef.h>

#include "image.h"

#define IMAGE_JSON_MAX	  (8u << 20) /* config, manifest, index */
#define IMAGE_TMP_PREFIX  ".tmp-"    /* .tmp-<pid>-...: work in progress */
#define IMAGE_CONFIG_FILE "config.json"
#define IMAGE_INFO_FILE	  "info.json"

/* The store's directory and its refs/ directory, open. */
struct image_store {
	int dfd, refs;
};

int image_store_open(const char *dir, bool create, struct image_store *s, struct svc_err *e);
void image_store_close(struct image_store *s);
/* Serialise the writers of refs and image directories (flock on dfd). */
int image_store_lock(struct image_store *s, struct svc_err *e);

/* The id a ref file holds; -ENOENT when there is no such ref. */
int image_ref_read(const struct image_store *s, const char *ref, char id[static 65]);
int image_ref_write(const struct image_store *s, const char *ref, const char *id,
		    struct svc_err *e);
/* Whether any ref names the image id. */
bool image_id_in_use(const struct image_store *s, const char *id);
/* Remove an image directory: renamed aside first, so that a crash halfway
 * never leaves a partial image under its id. */
int image_drop(const struct image_store *s, const char *id);
bool image_id_valid(const char *id);

/* Check an image config (the JSON of the config blob) and fill the fields
 * of img that come from its "config" object. */
int image_parse_config(const char *json, size_t len, struct image *img, struct svc_err *e);
#endif
