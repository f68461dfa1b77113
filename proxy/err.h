/* SPDX-License-Identifier: MIT */
/* One error convention for the whole core: a fallible function returns 0 or
 * a negative errno and fills a struct svc_err.  Callers add context while the
 * error travels up ("applying my-app.yaml: ...").  The core never prints; the
 * front end prints e->msg once. */
#ifndef SVCD_ERR_H
#define SVCD_ERR_H

#include <stddef.h>

#define SVC_ERR_MAX 1024

struct svc_err {
	int code;	       /* positive errno, 0 when no error */
	char msg[SVC_ERR_MAX]; /* human-readable, no trailing newline */
};

/* Record an error; returns -code so that `return svc_errf(e, EINVAL, ...)` works. */
int svc_errf(struct svc_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the current message with "<context>: "; returns -e->code. */
int svc_err_ctx(struct svc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void svc_err_clear(struct svc_err *e);

/* A growable list of warnings (unknown fields and the like). */
struct svc_warn {
	char **v;
	size_t n, cap;
};
void svc_warnf(struct svc_warn *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void svc_warn_free(struct svc_warn *w);

#endif
