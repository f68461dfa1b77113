/* SPDX-License-Identifier: MIT */
/* Field readers for manifest validation.  Each takes the JSON value and its
 * field path and, on a bad value, fills the error with "path: reason, got X". */
#ifndef SVCD_VUTIL_H
#define SVCD_VUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "model.h"

#define VPATH 256

struct vctx {
	struct svc_warn *w;
	struct svc_err *e;
};

/* Child path: "spec" + "ports" -> "spec.ports"; index: "spec.ports" + 2 -> "spec.ports[2]". */
void vpath(char out[static VPATH], const char *parent, const char *field);
void vpath_i(char out[static VPATH], const char *parent, const char *field, int i);

const char *vtype(const cJSON *j); /* "string", "number", "mapping", ... */
int vfail(struct vctx *v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vbad(struct vctx *v, const char *path, const char *want, const cJSON *got);

/* Warn about keys of `obj` not in the NULL-terminated list `known`. */
void vknown(struct vctx *v, const cJSON *obj, const char *path, const char *const *known);

/* A mapping (or absent when !required).  *out is NULL when absent. */
int vobj(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const cJSON **out);
int varr(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const cJSON **out);
/* A string; absent gives *out = NULL unless required. */
int vstr(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const char **out);
/* An integer in [lo, hi]; absent gives *out = dflt unless required. */
int vint(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 long lo, long hi, long dflt, long *out);
int vbool(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool dflt,
	  bool *out);
/* One of the NULL-terminated values; returns the index, dflt when absent. */
int venum(struct vctx *v, const cJSON *parent, const char *key, const char *ppath,
	  const char *const *values, int dflt, int *out);
/* A map of string to string, checked as labels (keys and values). */
int vannotations(struct vctx *v, const cJSON *parent, const char *ppath);
int vlabels(struct vctx *v, const cJSON *parent, const char *key, const char *ppath,
	    struct svc_labels *out);
int vaddr(struct vctx *v, const cJSON *j, const char *path, struct svc_addr *out);
int vproto(struct vctx *v, const cJSON *parent, const char *ppath, uint8_t *out);

bool is_dns_label(const char *s);     /* RFC 1123 label, at most 63 */
bool is_dns1035_label(const char *s); /* starts with a letter */
bool is_dns_subdomain(const char *s); /* at most 253 */
bool is_port_name(const char *s);     /* IANA_SVC_NAME: at most 15, a letter */
bool is_quantity(const char *s);      /* "500m", "128Mi", "1.5", "1e3" */

/* Set a string member, replacing any existing one (for defaults). */
int vset_str(cJSON *obj, const char *key, const char *val);
int vset_num(cJSON *obj, const char *key, double val);

#endif
