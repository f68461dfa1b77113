/* SPDX-License-Identifier: MIT */
/* Type-checked reads of untrusted cJSON (a missing member and a member of the
 * wrong type look the same: absent), and kubectl's -o json layout. */
#ifndef SVCCTL_JSON_H
#define SVCCTL_JSON_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "util.h"

/* All of these accept a NULL or non-object `o`. */
const char *ctl_json_str(const cJSON *o, const char *key);  /* NULL unless a string */
const cJSON *ctl_json_obj(const cJSON *o, const char *key); /* NULL unless an object */
const cJSON *ctl_json_arr(const cJSON *o, const char *key); /* NULL unless an array */
/* Whether `v` is an integral number within +-2^53; stores it in *out. */
bool ctl_json_to_int(const cJSON *v, long long *out);
/* An integral number within +-2^53, else `dflt`. */
long long ctl_json_int(const cJSON *o, const char *key, long long dflt);
bool ctl_json_bool(const cJSON *o, const char *key, bool dflt);
/* o.a.b as a string, e.g. ("metadata", "name"). */
const char *ctl_json_str2(const cJSON *o, const char *a, const char *b);

/* Append `j` as `json.MarshalIndent(j, "", "    ")` would, plus a newline.
 * Returns 0 or -ENOMEM. */
int ctl_json_pretty(struct sbuf *out, const cJSON *j);

#endif
