// SPDX-License-Identifier: MIT
#include "vutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vpath(char out[static VPATH], const char *parent, const char *field)
{
	snprintf(out, VPATH, "%s%s%s", parent, *parent ? "." : "", field);
}

void vpath_i(char out[static VPATH], const char *parent, const char *field, int i)
{
	snprintf(out, VPATH, "%s%s%s[%d]", parent, *parent ? "." : "", field, i);
}

const char *vtype(const cJSON *j)
{
	if (cJSON_IsString(j))
		return "string";
	if (cJSON_IsNumber(j))
		return "number";
	if (cJSON_IsObject(j))
		return "mapping";
	if (cJSON_IsArray(j))
		return "sequence";
	if (cJSON_IsBool(j))
		return "boolean";
	return "null";
}

int vfail(struct vctx *v, const char *path, const char *fmt, ...)
{
	char msg[SVC_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return svc_errf(v->e, EINVAL, "%s: %s", path, msg);
}

/* "got 70000", "got string \"abc\"", "got a mapping". */
int vbad(struct vctx *v, const char *path, const char *want, const cJSON *got)
{
	if (cJSON_IsNumber(got))
		return vfail(v, path, "must be %s, got %.15g", want, got->valuedouble);
	if (cJSON_IsString(got))
		return vfail(v, path, "must be %s, got \"%.100s\"", want, got->valuestring);
	if (cJSON_IsBool(got))
		return vfail(v, path, "must be %s, got %s", want,
			     cJSON_IsTrue(got) ? "true" : "false");
	return vfail(v, path, "must be %s, got %s", want, vtype(got));
}

void vknown(struct vctx *v, const cJSON *obj, const char *path, const char *const *known)
{
	const cJSON *c;
	char p[VPATH];

	cJSON_ArrayForEach(c, obj)
	{
		const char *const *k = known;
		while (*k && strcmp(*k, c->string))
			k++;
		if (!*k) {
			vpath(p, path, c->string);
			svc_warnf(v->w, "unknown field \"%s\"", p);
		}
	}
}

static const cJSON *vget(const cJSON *parent, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(parent, key);
	return cJSON_IsNull(j) ? NULL : j;
}

static int vmissing(struct vctx *v, const char *path)
{
	return vfail(v, path, "required field is missing");
}

/* A present value of the wanted type, or absent (an error when required). */
static int vtyped(struct vctx *v, const cJSON *parent, const char *key, const char *ppath,
		  bool required, cJSON_bool (*is)(const cJSON *), const char *want,
		  const cJSON **out)
{
	const cJSON *j = vget(parent, key);
	char p[VPATH];

	vpath(p, ppath, key);
	*out = NULL;
	if (!j)
		return required ? vmissing(v, p) : 0;
	if (!is(j))
		return vbad(v, p, want, j);
	*out = j;
	return 0;
}

int vobj(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const cJSON **out)
{
	return vtyped(v, parent, key, ppath, required, cJSON_IsObject, "a mapping", out);
}

int varr(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const cJSON **out)
{
	return vtyped(v, parent, key, ppath, required, cJSON_IsArray, "a sequence", out);
}

int vstr(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 const char **out)
{
	const cJSON *j;
	char p[VPATH];
	int r;

	*out = NULL;
	if ((r = vtyped(v, parent, key, ppath, required, cJSON_IsString, "a string", &j)) || !j)
		return r;
	vpath(p, ppath, key);
	if (required && !*j->valuestring)
		return vfail(v, p, "must not be empty");
	*out = j->valuestring;
	return 0;
}

int vint(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool required,
	 long lo, long hi, long dflt, long *out)
{
	const cJSON *j = vget(parent, key);
	char p[VPATH], want[64];
	double d;

	vpath(p, ppath, key);
	*out = dflt;
	if (!j)
		return required ? vmissing(v, p) : 0;
	snprintf(want, sizeof(want), "%ld-%ld", lo, hi);
	if (!cJSON_IsNumber(j))
		return vbad(v, p, "an integer", j);
	d = j->valuedouble;
	if (d != floor(d))
		return vbad(v, p, "an integer", j);
	if (d < (double)lo || d > (double)hi)
		return vbad(v, p, want, j);
	*out = (long)d;
	return 0;
}

int vbool(struct vctx *v, const cJSON *parent, const char *key, const char *ppath, bool dflt,
	  bool *out)
{
	const cJSON *j = vget(parent, key);
	char p[VPATH];

	vpath(p, ppath, key);
	*out = dflt;
	if (!j)
		return 0;
	if (!cJSON_IsBool(j))
		return vbad(v, p, "true or false", j);
	*out = cJSON_IsTrue(j);
	return 0;
}

int venum(struct vctx *v, const cJSON *parent, const char *key, const char *ppath,
	  const char *const *values, int dflt, int *out)
{
	const cJSON *j = vget(parent, key);
	char p[VPATH], want[256] = "one of";

	vpath(p, ppath, key);
	*out = dflt;
	if (!j)
		return 0;
	for (int i = 0; values[i]; i++) {
		if (cJSON_IsString(j) && !strcmp(j->valuestring, values[i])) {
			*out = i;
			return 0;
		}
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s %s",
			 i ? (values[i + 1] ? "," : ", or") : "", values[i]);
	}
	return vbad(v, p, want, j);
}

static bool label_name_ok(const char *s, size_t n)
{
	if (!n || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');
	char prefix[254];

	if (!slash)
		return label_name_ok(k, strlen(k));
	if ((size_t)(slash - k) >= sizeof(prefix))
		return false;
	memcpy(prefix, k, (size_t)(slash - k));
	prefix[slash - k] = '\0';
	return is_dns_subdomain(prefix) && label_name_ok(slash + 1, strlen(slash + 1));
}

int vlabels(struct vctx *v, const cJSON *parent, const char *key, const char *ppath,
	    struct svc_labels *out)
{
	const cJSON *m, *c;
	char p[VPATH], cp[VPATH];
	int r, n;

	memset(out, 0, sizeof(*out));
	if ((r = vobj(v, parent, key, ppath, false, &m)) || !m)
		return r;
	vpath(p, ppath, key);
	n = cJSON_GetArraySize(m);
	out->v = calloc((size_t)n + 1, sizeof(*out->v));
	if (!out->v)
		return svc_errf(v->e, ENOMEM, "out of memory");
	cJSON_ArrayForEach(c, m)
	{
		snprintf(cp, sizeof(cp), "%s[\"%.100s\"]", p, c->string);
		if (!label_key_ok(c->string))
			return vfail(v, cp,
				     "invalid key: a name of at most 63 characters (letters, "
				     "digits, '-', '_', '.'), with an optional DNS prefix and '/'");
		if (!cJSON_IsString(c))
			return vbad(v, cp, "a string", c);
		if (*c->valuestring && !label_name_ok(c->valuestring, strlen(c->valuestring)))
			return vbad(v, cp,
				    "at most 63 letters, digits, '-', '_' or '.', starting and "
				    "ending with a letter or digit",
				    c);
		out->v[out->n].key = strdup(c->string);
		out->v[out->n].value = strdup(c->valuestring);
		out->n++;
		if (!out->v[out->n - 1].key || !out->v[out->n - 1].value)
			return svc_errf(v->e, ENOMEM, "out of memory");
	}
	return 0;
}

/* Annotation keys follow the label rules; values are free text. */
int vannotations(struct vctx *v, const cJSON *parent, const char *ppath)
{
	const cJSON *m, *c;
	char p[VPATH];
	int r;

	if ((r = vobj(v, parent, "annotations", ppath, false, &m)) || !m)
		return r;
	cJSON_ArrayForEach(c, m)
	{
		snprintf(p, sizeof(p), "%s.annotations[\"%.100s\"]", ppath, c->string);
		if (!label_key_ok(c->string))
			return vfail(v, p,
				     "invalid key: a name of at most 63 characters (letters, "
				     "digits, '-', '_', '.'), with an optional DNS prefix and '/'");
		if (!cJSON_IsString(c))
			return vbad(v, p, "a string", c);
	}
	return 0;
}

int vaddr(struct vctx *v, const cJSON *j, const char *path, struct svc_addr *out)
{
	if (!cJSON_IsString(j) || addr_parse(j->valuestring, out))
		return vbad(v, path, "an IP address", j);
	return 0;
}

int vproto(struct vctx *v, const cJSON *parent, const char *ppath, uint8_t *out)
{
	static const char *const protos[] = {"TCP", "UDP", "SCTP", NULL};
	static const uint8_t nums[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP};
	int i, r;

	if ((r = venum(v, parent, "protocol", ppath, protos, 0, &i)))
		return r;
	*out = nums[i];
	return 0;
}

bool is_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

bool is_dns1035_label(const char *s)
{
	return is_dns_label(s) && islower((unsigned char)s[0]);
}

bool is_dns_subdomain(const char *s)
{
	char label[64];
	size_t n = strlen(s);

	if (!n || n > 253)
		return false;
	while (*s) {
		size_t l = strcspn(s, ".");
		if (l >= sizeof(label))
			return false;
		memcpy(label, s, l);
		label[l] = '\0';
		if (!is_dns_label(label))
			return false;
		s += l;
		if (*s == '.' && !*++s)
			return false;
	}
	return true;
}

bool is_port_name(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = true;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return letter;
}

bool is_quantity(const char *s)
{
	static const char *const suffixes[] = {"",   "m",  "k",	 "M",  "G",  "T",  "P", "E",
					       "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", NULL};
	const char *p = s;
	bool digits = false;

	if (*p == '+' || *p == '-')
		p++;
	while (isdigit((unsigned char)*p))
		p++, digits = true;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits = true;
	if (!digits)
		return false;
	if ((*p == 'e' || *p == 'E') && p[1]) {
		const char *q = p + 1;
		if (*q == '+' || *q == '-')
			q++;
		if (isdigit((unsigned char)*q)) {
			while (isdigit((unsigned char)*q))
				q++;
			return !*q;
		}
	}
	for (int i = 0; suffixes[i]; i++)
		if (!strcmp(p, suffixes[i]))
			return true;
	return false;
}

int vset_str(cJSON *obj, const char *key, const char *val)
{
	cJSON *s = cJSON_CreateString(val);

	if (!s)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s) ? 0 : -ENOMEM;
	return cJSON_AddItemToObject(obj, key, s) ? 0 : -ENOMEM;
}

int vset_num(cJSON *obj, const char *key, double val)
{
	cJSON *s = cJSON_CreateNumber(val);

	if (!s)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s) ? 0 : -ENOMEM;
	return cJSON_AddItemToObject(obj, key, s) ? 0 : -ENOMEM;
}
