/* SPDX-License-Identifier: MIT */
/* Manifest text -> cJSON documents.  Accepts JSON or YAML (several documents
 * separated by `---`), expands `kind: List` into its items, and reports
 * syntax errors with the line.  Emits YAML back from cJSON for `-o yaml`. */
#ifndef SVCD_MANIFEST_H
#define SVCD_MANIFEST_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"

struct svc_doc {
	cJSON *json;	/* owned; always a JSON object */
	int line;	/* 1-based line where the document starts */
	char label[48]; /* "document 2" or "document 1 items[3]" */
};

struct svc_docs {
	struct svc_doc *v;
	size_t n;
};

/* Parse `len` bytes of `text` (need not be NUL-terminated).  `name` is used
 * only in error messages ("my-app.yaml: line 7: ...").  Empty documents are
 * skipped; a document that is not a mapping is an error naming it.  On error
 * nothing is returned in `out`.
 * YAML plain scalars are typed by the YAML 1.2 core schema (so `yes` is a
 * string), except that 0644 is octal as kubectl reads it; integers past 2^53
 * are refused rather than rounded.  Refused as hostile or ambiguous: nesting
 * deeper than 256, aliases expanding to over 1,000,000 nodes, duplicate keys
 * (JSON too), merge keys (<<), non-string keys, tags other than !!str, !!int,
 * !!float, !!bool, !!null, !!map and !!seq. */
int manifest_parse(const char *name, const char *text, size_t len, struct svc_docs *out,
		   struct svc_err *e);
void manifest_docs_free(struct svc_docs *d);

/* Render a cJSON value as a YAML document (block style, keys in their JSON
 * order, strings quoted where YAML would otherwise change their type).
 * Returns a malloc'd NUL-terminated string, or NULL with `e` set. */
char *manifest_yaml_emit(const cJSON *j, struct svc_err *e);

#endif
