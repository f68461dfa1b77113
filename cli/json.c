// SPDX-License-Identifier: MIT
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53 */

static const cJSON *member(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

const char *ctl_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = member(o, key);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

const cJSON *ctl_json_obj(const cJSON *o, const char *key)
{
	const cJSON *v = member(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *ctl_json_arr(const cJSON *o, const char *key)
{
	const cJSON *v = member(o, key);

	return cJSON_IsArray(v) ? v : NULL;
}

bool ctl_json_to_int(const cJSON *v, long long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!isfinite(d) || fabs(d) > MAX_SAFE_INT || d != floor(d))
		return false;
	*out = (long long)d;
	return true;
}

long long ctl_json_int(const cJSON *o, const char *key, long long dflt)
{
	long long v;

	return ctl_json_to_int(member(o, key), &v) ? v : dflt;
}

bool ctl_json_bool(const cJSON *o, const char *key, bool dflt)
{
	const cJSON *v = member(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

const char *ctl_json_str2(const cJSON *o, const char *a, const char *b)
{
	return ctl_json_str(ctl_json_obj(o, a), b);
}

/* The pretty printer: errors stick in `err`, so the walk checks nothing. */
struct pretty {
	struct sbuf *out;
	int err;
};

static void put(struct pretty *p, const char *s, size_t n)
{
	if (!p->err && n)
		p->err = sbuf_add(p->out, s, n);
}

static void indent(struct pretty *p, int depth)
{
	static const char spaces[] = "                                ";

	put(p, "\n", 1);
	for (size_t n = (size_t)depth * 4; n;) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
		put(p, spaces, k);
		n -= k;
	}
}

static void put_string(struct pretty *p, const char *s)
{
	const char *run = s;
	char esc[8];

	put(p, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		put(p, run, (size_t)(s - run));
		run = s + 1;
		switch (ch) {
		case '"':
			put(p, "\\\"", 2);
			break;
		case '\\':
			put(p, "\\\\", 2);
			break;
		case '\n':
			put(p, "\\n", 2);
			break;
		case '\r':
			put(p, "\\r", 2);
			break;
		case '\t':
			put(p, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			put(p, esc, 6);
		}
	}
	put(p, run, (size_t)(s - run));
	put(p, "\"", 1);
}

static void put_number(struct pretty *p, double d)
{
	char buf[32];
	int n;

	if (!isfinite(d)) {
		put(p, "null", 4);
		return;
	}
	if (d == floor(d) && fabs(d) < MAX_SAFE_INT) {
		n = snprintf(buf, sizeof(buf), "%.0f", d);
	} else {
		n = snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d) /* 15 digits were not enough */
			n = snprintf(buf, sizeof(buf), "%.17g", d);
	}
	put(p, buf, (size_t)n);
}

static void put_value(struct pretty *p, const cJSON *j, int depth);

static void put_container(struct pretty *p, const cJSON *j, int depth, bool obj)
{
	const cJSON *c;

	put(p, obj ? "{" : "[", 1);
	for (c = j->child; c; c = c->next) {
		indent(p, depth + 1);
		if (obj) {
			put_string(p, c->string ? c->string : "");
			put(p, ": ", 2);
		}
		put_value(p, c, depth + 1);
		if (c->next)
			put(p, ",", 1);
	}
	if (j->child)
		indent(p, depth);
	put(p, obj ? "}" : "]", 1);
}

static void put_value(struct pretty *p, const cJSON *j, int depth)
{
	if (cJSON_IsObject(j) || cJSON_IsArray(j))
		put_container(p, j, depth, cJSON_IsObject(j));
	else if (cJSON_IsString(j))
		put_string(p, j->valuestring ? j->valuestring : "");
	else if (cJSON_IsNumber(j))
		put_number(p, j->valuedouble);
	else if (cJSON_IsBool(j))
		put(p, cJSON_IsTrue(j) ? "true" : "false", cJSON_IsTrue(j) ? 4 : 5);
	else
		put(p, "null", 4);
}

int ctl_json_pretty(struct sbuf *out, const cJSON *j)
{
	struct pretty p = {.out = out};

	put_value(&p, j, 0);
	put(&p, "\n", 1);
	return p.err ? -ENOMEM : 0;
}
