/* SPDX-License-Identifier: MIT */
/* A string-keyed hash map of borrowed keys to pointers (open addressing).
 * Keys are not copied: they must live as long as their entry. */
#ifndef SVCD_SMAP_H
#define SVCD_SMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smap_ent {
	const char *key;
	void *val;
};

struct smap {
	struct smap_ent *v;
	size_t cap, n, tomb;
	/* With hashed set (before the first put), each slot's hash is kept
	 * beside it so that a probe compares strings only when the hashes
	 * agree: 4 bytes a slot for maps on a hot path (the DNS zone). */
	bool hashed;
	uint32_t *h;
};

void *smap_get(const struct smap *m, const char *key);
int smap_put(struct smap *m, const char *key, void *val); /* replaces, key too */
/* The value slot of an existing key (its stored key is kept), or NULL. */
void **smap_ref(const struct smap *m, const char *key);
void *smap_del(struct smap *m, const char *key);
/* Remove key; returns the key as stored (for maps that own their keys) and
 * its value through *val, or NULL when absent. */
const char *smap_take(struct smap *m, const char *key, void **val);
/* Free every owned key and value, then the map. */
void smap_free_owned(struct smap *m);
void smap_free(struct smap *m);
/* Iterate: returns the next entry at or after *cursor, or NULL. */
struct smap_ent *smap_next(const struct smap *m, size_t *cursor);

#endif
