/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the core: a growable byte buffer, time stamps,
 * identifiers and a log hook (the core never prints; the front end decides
 * where log lines go). */
#ifndef SVCD_UTIL_H
#define SVCD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
	void **pp = p;
	__builtin_free(*pp);
}
#define cleanup_free __attribute__((cleanup(freep)))

/* Growable buffer; `len` bytes used, always NUL-terminated when non-empty. */
struct sbuf {
	char *p;
	size_t len, cap;
};
int sbuf_reserve(struct sbuf *b, size_t extra);
int sbuf_add(struct sbuf *b, const void *data, size_t n);
int sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_adds(struct sbuf *b, const char *s);
void sbuf_consume(struct sbuf *b, size_t n); /* drop n bytes from the front */
void sbuf_free(struct sbuf *b);

/* RFC 3339 UTC, "2026-11-26T19:40:00Z"; buf holds at least 21 bytes. */
void fmt_rfc3339(time_t t, char buf[static 21]);
/* Parses the format above; returns 0 or -EINVAL. */
int parse_rfc3339(const char *s, time_t *out);
double now_mono(void);
/* A random RFC 4122 version 4 UUID, 36 characters plus NUL. */
void make_uuid(char out[static 37]);

enum { SVC_LOG_ERROR, SVC_LOG_WARN, SVC_LOG_INFO, SVC_LOG_DEBUG };
typedef void (*svc_log_fn)(int level, const char *msg);
void svc_log_set(svc_log_fn fn, int max_level);
void svc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 64-bit FNV-1a, for hash tables keyed by strings. */
uint64_t hash_str(const char *s);

#endif
