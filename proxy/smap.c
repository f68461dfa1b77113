// SPDX-License-Identifier: MIT
#include "smap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char tomb_key[] = "";
#define TOMB tomb_key

/* The slot of key (whose hash_str is hash; the low 32 bits are enough, as
 * the table never has 2^32 slots), or where it would go. */
static size_t find_h(const struct smap *m, const char *key, uint64_t hash, bool *found)
{
	size_t mask = m->cap - 1, i = hash & mask, first_tomb = SIZE_MAX;

	for (;; i = (i + 1) & mask) {
		const char *k = m->v[i].key;
		if (!k) {
			*found = false;
			return first_tomb != SIZE_MAX ? first_tomb : i;
		}
		if (k == TOMB) {
			if (first_tomb == SIZE_MAX)
				first_tomb = i;
		} else if ((!m->h || m->h[i] == (uint32_t)hash) && !strcmp(k, key)) {
			*found = true;
			return i;
		}
	}
}

static size_t find(const struct smap *m, const char *key, bool *found)
{
	return find_h(m, key, hash_str(key), found);
}

static int grow(struct smap *m)
{
	struct smap nm = {.cap = m->cap ? m->cap * 2 : 64, .hashed = m->hashed};
	bool found;

	if (m->cap && (m->n + 1) * 2 < m->cap)
		nm.cap = m->cap;
	nm.v = calloc(nm.cap, sizeof(*nm.v));
	if (nm.v && nm.hashed)
		nm.h = calloc(nm.cap, sizeof(*nm.h));
	if (!nm.v || (nm.hashed && !nm.h)) {
		free(nm.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->v[i].key && m->v[i].key != TOMB) {
			uint64_t h = m->h ? m->h[i] : hash_str(m->v[i].key);
			size_t j = find_h(&nm, m->v[i].key, h, &found);

			nm.v[j] = m->v[i];
			if (nm.h)
				nm.h[j] = (uint32_t)h;
			nm.n++;
		}
	free(m->v);
	free(m->h);
	*m = nm;
	return 0;
}

void *smap_get(const struct smap *m, const char *key)
{
	bool found;
	size_t i;

	if (!m->cap)
		return NULL;
	i = find(m, key, &found);
	return found ? m->v[i].val : NULL;
}

void **smap_ref(const struct smap *m, const char *key)
{
	bool found;
	size_t i;

	if (!m->cap)
		return NULL;
	i = find(m, key, &found);
	return found ? &m->v[i].val : NULL;
}

int smap_put(struct smap *m, const char *key, void *val)
{
	uint64_t h = hash_str(key);
	bool found;
	size_t i;

	if ((m->n + m->tomb + 1) * 4 >= m->cap * 3 && grow(m))
		return -ENOMEM;
	i = find_h(m, key, h, &found);
	if (!found) {
		if (m->v[i].key == TOMB)
			m->tomb--;
		m->n++;
	}
	m->v[i].key = key;
	m->v[i].val = val;
	if (m->h)
		m->h[i] = (uint32_t)h;
	return 0;
}

void *smap_del(struct smap *m, const char *key)
{
	bool found;
	size_t i;
	void *val;

	if (!m->cap)
		return NULL;
	i = find(m, key, &found);
	if (!found)
		return NULL;
	val = m->v[i].val;
	m->v[i].key = TOMB;
	m->v[i].val = NULL;
	m->n--;
	m->tomb++;
	return val;
}

const char *smap_take(struct smap *m, const char *key, void **val)
{
	const char *stored;
	bool found;
	size_t i;

	if (!m->cap)
		return NULL;
	i = find(m, key, &found);
	if (!found)
		return NULL;
	stored = m->v[i].key;
	*val = m->v[i].val;
	m->v[i].key = TOMB;
	m->v[i].val = NULL;
	m->n--;
	m->tomb++;
	return stored;
}

void smap_free_owned(struct smap *m)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(m, &cur))) {
		free((char *)ent->key);
		free(ent->val);
	}
	smap_free(m);
}

void smap_free(struct smap *m)
{
	bool hashed = m->hashed;

	free(m->v);
	free(m->h);
	memset(m, 0, sizeof(*m));
	m->hashed = hashed;
}

struct smap_ent *smap_next(const struct smap *m, size_t *cursor)
{
	while (*cursor < m->cap) {
		struct smap_ent *e = &m->v[(*cursor)++];
		if (e->key && e->key != TOMB)
			return e;
	}
	return NULL;
}
