// SPDX-License-Identifier: MIT
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int svc_errf(struct svc_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (code <= 0)
		code = EIO;
	if (!e)
		return -code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -code;
}

int svc_err_ctx(struct svc_err *e, const char *fmt, ...)
{
	char ctx[SVC_ERR_MAX], old[SVC_ERR_MAX];
	va_list ap;

	if (!e)
		return -EIO;
	if (!e->code)
		e->code = EIO;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", ctx, old);
	return -e->code;
}

void svc_err_clear(struct svc_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}

void svc_warnf(struct svc_warn *w, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return; /* a warning lost under memory pressure is acceptable */
		w->v = v;
		w->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s)
		w->v[w->n++] = s;
}

void svc_warn_free(struct svc_warn *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->v = NULL;
	w->n = w->cap = 0;
}
