// SPDX-License-Identifier: MIT
/* Manifest text -> cJSON.  JSON goes through cJSON; YAML goes through
 * libyaml's event parser and is built straight into cJSON, so no second tree
 * (yaml_document_t) is ever held.  The input is untrusted: nesting depth,
 * alias expansion and hash collisions are bounded, and every error names the
 * line it comes from. */
#include "manifest.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Deeper documents are refused: the builders, cJSON_Delete, cJSON_Duplicate,
 * cJSON_Compare and the emitter all recurse once per level. */
#define MAX_DEPTH 256
/* Nodes that aliases may create in one input, so that a "billion laughs"
 * file fails at once instead of exhausting memory. */
#define MAX_ALIAS_NODES 1000000
/* The largest integer a double (cJSON's only number type) holds exactly. */
#define EXACT_INT_MAX (UINT64_C(1) << 53)
/* Only bounds the emitter's recursion; parsed trees are far shallower. */
#define EMIT_MAX_DEPTH 1000

static int oom(struct svc_err *e)
{
	return svc_errf(e, ENOMEM, "out of memory");
}

static int line_errf(struct svc_err *e, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int line_errf(struct svc_err *e, int line, const char *fmt, ...)
{
	char msg[SVC_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return svc_errf(e, EINVAL, "line %d: %s", line, msg);
}

/* 1-based line of text[n]. */
static int line_at(const char *text, size_t n)
{
	const char *p = text, *end = text + n;
	int line = 1;

	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		line++;
		p++;
	}
	return line;
}

/* ---- A string -> index hash table (open addressing, borrowed keys) ---- */

struct strmap {
	struct sm_slot {
		const char *key;
		size_t val;
	} * slot;
	size_t cap, n;
};

static size_t sm_hash(const char *s)
{
	/* FNV-1a seeded with an address that ASLR moves: keys come from
	 * untrusted manifests, and a fixed hash would let them be chosen to
	 * collide and make every insertion linear. */
	static const char seed;
	uint64_t h = UINT64_C(14695981039346656037) ^ (uintptr_t)&seed;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= UINT64_C(1099511628211);
	}
	return (size_t)(h ^ (h >> 32));
}

static struct sm_slot *sm_lookup(struct sm_slot *slot, size_t cap, const char *key)
{
	size_t i = sm_hash(key) & (cap - 1);

	while (slot[i].key && strcmp(slot[i].key, key))
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static bool sm_find(const struct strmap *m, const char *key, size_t *val)
{
	const struct sm_slot *s;

	if (!m->cap)
		return false;
	s = sm_lookup(m->slot, m->cap, key);
	if (s->key && val)
		*val = s->val;
	return s->key != NULL;
}

static int sm_grow(struct strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct sm_slot *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slot[i].key)
			*sm_lookup(slot, cap, m->slot[i].key) = m->slot[i];
	free(m->slot);
	m->slot = slot;
	m->cap = cap;
	return 0;
}

/* Inserts `key`, or replaces its value. */
static int sm_put(struct strmap *m, const char *key, size_t val)
{
	struct sm_slot *s;

	if ((m->n + 1) * 2 > m->cap && sm_grow(m))
		return -ENOMEM;
	s = sm_lookup(m->slot, m->cap, key);
	if (!s->key)
		m->n++;
	s->key = key;
	s->val = val;
	return 0;
}

static void sm_free(struct strmap *m)
{
	free(m->slot);
	memset(m, 0, sizeof(*m));
}

/* ---- The documents being collected ---- */

/* Where an element of a depth-2 sequence begins: that is where `kind: List`
 * items live, and cJSON nodes carry no position. */
struct node_line {
	const cJSON *node;
	int line;
};

struct pctx {
	struct svc_docs docs;
	size_t cap;
	int ndoc;	      /* non-empty documents so far */
	struct node_line *lt; /* for the current document only */
	size_t nlt, caplt;
	struct svc_err *e;
};

static int lt_add(struct pctx *pc, const cJSON *node, int line)
{
	if (pc->nlt == pc->caplt) {
		size_t cap = pc->caplt ? pc->caplt * 2 : 16;
		struct node_line *v = realloc(pc->lt, cap * sizeof(*v));

		if (!v)
			return oom(pc->e);
		pc->lt = v;
		pc->caplt = cap;
	}
	pc->lt[pc->nlt++] = (struct node_line){node, line};
	return 0;
}

/* Items are looked up in document order, so a cursor keeps this linear. */
static int lt_find(const struct pctx *pc, const cJSON *node, size_t *cur, int fallback)
{
	for (size_t i = *cur; i < pc->nlt; i++) {
		if (pc->lt[i].node == node) {
			*cur = i + 1;
			return pc->lt[i].line;
		}
	}
	return fallback;
}

static const char *type_name(const cJSON *j)
{
	if (cJSON_IsObject(j))
		return "a mapping";
	if (cJSON_IsArray(j))
		return "a sequence";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsBool(j))
		return "a boolean";
	return "null";
}

/* Takes ownership of `j`. */
static int push_doc(struct pctx *pc, cJSON *j, int line, const char *label)
{
	struct svc_doc *d;

	if (pc->docs.n == pc->cap) {
		size_t cap = pc->cap ? pc->cap * 2 : 8;
		struct svc_doc *v = realloc(pc->docs.v, cap * sizeof(*v));

		if (!v) {
			cJSON_Delete(j);
			return oom(pc->e);
		}
		pc->docs.v = v;
		pc->cap = cap;
	}
	d = &pc->docs.v[pc->docs.n++];
	d->json = j;
	d->line = line;
	snprintf(d->label, sizeof(d->label), "%s", label);
	return 0;
}

static int not_mapping(struct pctx *pc, const char *label, int line, const cJSON *j)
{
	return svc_errf(pc->e, EINVAL, "%s (line %d): must be a mapping, got %s", label, line,
			type_name(j));
}

/* Moves the items of a `kind: List` document into their own documents. */
static int expand_list(struct pctx *pc, cJSON *root, int line)
{
	cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
	size_t i = 0, cur = 0;
	int r = 0;

	if (!items || cJSON_IsNull(items))
		return 0;
	if (!cJSON_IsArray(items))
		return svc_errf(pc->e, EINVAL,
				"document %d (line %d): items must be a sequence, got %s", pc->ndoc,
				line, type_name(items));
	while (items->child && !r) {
		cJSON *it = cJSON_DetachItemViaPointer(items, items->child);
		int iline = lt_find(pc, it, &cur, line);
		char label[sizeof(pc->docs.v->label)];

		snprintf(label, sizeof(label), "document %d items[%zu]", pc->ndoc, i++);
		if (cJSON_IsObject(it)) {
			r = push_doc(pc, it, iline, label);
		} else {
			r = not_mapping(pc, label, iline, it);
			cJSON_Delete(it);
		}
	}
	return r;
}

static bool is_list(const cJSON *root)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");

	return cJSON_IsString(kind) && !strcmp(kind->valuestring, "List");
}

/* One top-level value; takes ownership of `root`.  A null document (an empty
 * one in YAML) is skipped and not counted. */
static int add_document(struct pctx *pc, cJSON *root, int line)
{
	char label[sizeof(pc->docs.v->label)];
	int r;

	if (cJSON_IsNull(root)) {
		cJSON_Delete(root);
		return 0;
	}
	pc->ndoc++;
	snprintf(label, sizeof(label), "document %d", pc->ndoc);
	if (!cJSON_IsObject(root)) {
		r = not_mapping(pc, label, line, root);
		cJSON_Delete(root);
		return r;
	}
	if (!is_list(root))
		return push_doc(pc, root, line, label);
	r = expand_list(pc, root, line);
	cJSON_Delete(root);
	return r;
}

static int key_once(struct pctx *pc, struct strmap *keys, const char *key, int line)
{
	if (sm_find(keys, key, NULL))
		return line_errf(pc->e, line, "duplicate key '%.100s'", key);
	return sm_put(keys, key, 0) ? oom(pc->e) : 0;
}

/* ---- Plain scalar typing: the YAML 1.2 core schema, mostly ---- */

enum ykind { YK_STR, YK_NULL, YK_BOOL, YK_INT, YK_FLOAT, YK_RANGE, YK_MAP, YK_SEQ, YK_BAD };

static bool is_null_word(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* 1 for true, 0 for false, -1 for neither. */
static int bool_word(const char *s)
{
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return 1;
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return 0;
	return -1;
}

/* 1 and the value, 0 if `s` is not all digits of `base`, -1 if too big to
 * be held exactly. */
static int parse_digits(const char *s, unsigned base, double *out)
{
	uint64_t v = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned d = isdigit((unsigned char)*s)	   ? (unsigned)(*s - '0')
			     : isxdigit((unsigned char)*s) ? (unsigned)(tolower(*s) - 'a' + 10)
							   : 99;
		if (d >= base)
			return 0;
		if (v <= EXACT_INT_MAX) /* stop growing once too big, so no overflow */
			v = v * base + d;
	}
	if (v > EXACT_INT_MAX)
		return -1;
	*out = (double)v;
	return 1;
}

/* Decimal with optional sign, 0x hex, 0o octal.  A leading zero (0644) means
 * octal, as YAML 1.1 and so kubectl read it, where the 1.2 core schema would
 * say 644: file modes in pod templates are written that way. */
static int parse_int(const char *s, double *out)
{
	bool neg = false;
	int r;

	if (s[0] == '0' && s[1] == 'x')
		return parse_digits(s + 2, 16, out);
	if (s[0] == '0' && s[1] == 'o')
		return parse_digits(s + 2, 8, out);
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (s[0] == '0' && s[1] && strspn(s, "01234567") == strlen(s))
		r = parse_digits(s, 8, out);
	else
		r = parse_digits(s, 10, out);
	if (r > 0 && neg)
		*out = -*out;
	return r;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? -- stricter than
 * strtod, which would also take "inf", "0x1p3" and leading spaces. */
static bool float_syntax(const char *s)
{
	static const char digits[] = "0123456789";
	size_t a, b = 0;

	if (*s == '-' || *s == '+')
		s++;
	a = strspn(s, digits);
	s += a;
	if (*s == '.') {
		b = strspn(++s, digits);
		s += b;
	}
	if (!a && !b)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!strspn(s, digits))
			return false;
		s += strspn(s, digits);
	}
	return !*s;
}

static bool special_float(const char *s, double *out)
{
	const char *t = (*s == '-' || *s == '+') ? s + 1 : s;

	if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
		*out = *s == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
		*out = NAN;
		return true;
	}
	return false;
}

/* The type a plain scalar `s` denotes, and its value. */
static enum ykind resolve_plain(const char *s, double *num, bool *b)
{
	int r;

	if (is_null_word(s))
		return YK_NULL;
	if ((r = bool_word(s)) >= 0) {
		*b = r;
		return YK_BOOL;
	}
	if ((r = parse_int(s, num)))
		return r > 0 ? YK_INT : YK_RANGE;
	if (float_syntax(s)) {
		*num = strtod(s, NULL);
		return YK_FLOAT;
	}
	return special_float(s, num) ? YK_FLOAT : YK_STR;
}

/* ---- YAML: events -> cJSON ---- */

struct anchor {
	char *name;
	const cJSON *node; /* inside the document being built */
	size_t size;	   /* nodes in it */
	int height;	   /* collection levels in it, 0 for a scalar */
};

struct yctx {
	struct pctx *pc;
	yaml_parser_t p;
	const char *text;
	size_t len;
	struct anchor *anch;
	size_t nanch, capanch;
	struct strmap amap; /* anchor name -> index in anch */
	size_t nodes;	    /* built in this document, copies included */
	size_t alias_nodes; /* copied for aliases, in the whole input */
};

static int y_node(struct yctx *c, yaml_event_t *ev, int depth, cJSON **out, int *height);

static int y_syntax(struct yctx *c)
{
	const yaml_parser_t *p = &c->p;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	int line = (int)p->problem_mark.line + 1;

	if (p->error == YAML_MEMORY_ERROR)
		return oom(c->pc->e);
	/* The reader knows only a byte offset, not a mark. */
	if (p->error == YAML_READER_ERROR)
		line = line_at(c->text, p->problem_offset < c->len ? p->problem_offset : c->len);
	if (p->context)
		return line_errf(c->pc->e, line, "%s (%s at line %d)", problem, p->context,
				 (int)p->context_mark.line + 1);
	return line_errf(c->pc->e, line, "%s", problem);
}

static int y_next(struct yctx *c, yaml_event_t *ev)
{
	return yaml_parser_parse(&c->p, ev) ? 0 : y_syntax(c);
}

static enum ykind tag_kind(const char *tag)
{
	static const struct {
		const char *tag;
		enum ykind kind;
	} tags[] = {
	    {"!", YK_STR},
	    {"tag:yaml.org,2002:str", YK_STR},
	    {"tag:yaml.org,2002:null", YK_NULL},
	    {"tag:yaml.org,2002:bool", YK_BOOL},
	    {"tag:yaml.org,2002:int", YK_INT},
	    {"tag:yaml.org,2002:float", YK_FLOAT},
	    {"tag:yaml.org,2002:map", YK_MAP},
	    {"tag:yaml.org,2002:seq", YK_SEQ},
	};

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (!strcmp(tag, tags[i].tag))
			return tags[i].kind;
	return YK_BAD;
}

/* Shows "tag:yaml.org,2002:binary" as the "!!binary" the user wrote. */
static int bad_tag(struct yctx *c, const char *tag, int line)
{
	static const char std[] = "tag:yaml.org,2002:";

	if (!strncmp(tag, std, sizeof(std) - 1))
		return line_errf(c->pc->e, line, "unsupported tag '!!%.100s'",
				 tag + sizeof(std) - 1);
	return line_errf(c->pc->e, line, "unsupported tag '%.100s'", tag);
}

static int y_coll_tag(struct yctx *c, const yaml_char_t *tag, enum ykind want, int line)
{
	if (!tag || !strcmp((const char *)tag, "!") || tag_kind((const char *)tag) == want)
		return 0;
	return bad_tag(c, (const char *)tag, line);
}

static int y_make(struct yctx *c, enum ykind k, const char *v, double num, bool b, int line,
		  cJSON **out)
{
	switch (k) {
	case YK_NULL:
		*out = cJSON_CreateNull();
		break;
	case YK_BOOL:
		*out = cJSON_CreateBool(b);
		break;
	case YK_INT:
	case YK_FLOAT:
		/* Manifests become JSON, which has no infinity and no NaN. */
		if (!isfinite(num))
			return line_errf(
			    c->pc->e, line,
			    "%.40s is not a number JSON can hold; quote it for a string", v);
		*out = cJSON_CreateNumber(num);
		break;
	case YK_RANGE:
		return line_errf(c->pc->e, line,
				 "integer %.40s cannot be held exactly (limit 2^53); quote it, or "
				 "tag it !!float",
				 v);
	default:
		*out = cJSON_CreateString(v);
		break;
	}
	if (!*out)
		return oom(c->pc->e);
	c->nodes++;
	return 0;
}

static int y_tagged(struct yctx *c, const char *v, const char *tag, int line, cJSON **out)
{
	enum ykind want = tag_kind(tag), got;
	double num = 0;
	bool b = false;

	if (want == YK_STR)
		return y_make(c, YK_STR, v, 0, false, line, out);
	if (want > YK_FLOAT)
		return bad_tag(c, tag, line);
	got = resolve_plain(v, &num, &b);
	if (want == YK_FLOAT && got == YK_RANGE)
		num = strtod(v, NULL);
	if (want == YK_FLOAT && (got == YK_INT || got == YK_RANGE))
		got = YK_FLOAT;
	if (got != want && got != YK_RANGE)
		return line_errf(c->pc->e, line, "'%.40s' is not a valid !!%s", v,
				 strrchr(tag, ':') + 1);
	return y_make(c, got, v, num, b, line, out);
}

/* Quoted and block scalars are strings; plain ones are typed. */
static int y_scalar(struct yctx *c, const yaml_event_t *ev, int line, cJSON **out)
{
	const char *v = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	enum ykind kind;
	double num = 0;
	bool b = false;

	/* cJSON strings end at the first NUL: refuse rather than truncate. */
	if (strlen(v) != ev->data.scalar.length)
		return line_errf(c->pc->e, line, "NUL characters are not supported in strings");
	if (tag)
		return y_tagged(c, v, tag, line, out);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return y_make(c, YK_STR, v, 0, false, line, out);
	kind = resolve_plain(v, &num, &b); /* before num and b are read */
	return y_make(c, kind, v, num, b, line, out);
}

static int y_alias(struct yctx *c, const char *name, int line, int depth, cJSON **out, int *height)
{
	const struct anchor *a;
	size_t i;
	cJSON *copy;

	/* Anchors are registered when their node is complete, so this also
	 * refuses an alias inside its own anchor (a cycle). */
	if (!sm_find(&c->amap, name, &i))
		return line_errf(c->pc->e, line, "alias '*%.100s' does not name an earlier anchor",
				 name);
	a = &c->anch[i];
	if (depth + a->height - 1 > MAX_DEPTH)
		return line_errf(c->pc->e, line, "nesting deeper than %d levels", MAX_DEPTH);
	if (a->size > MAX_ALIAS_NODES - c->alias_nodes)
		return line_errf(c->pc->e, line,
				 "aliases expand to more than %d nodes (an alias bomb?)",
				 MAX_ALIAS_NODES);
	if (!(copy = cJSON_Duplicate(a->node, 1)))
		return oom(c->pc->e);
	/* The anchored node's own key came along; the copy's parent sets its own. */
	cJSON_free(copy->string);
	copy->string = NULL;
	copy->type &= ~cJSON_StringIsConst;
	c->alias_nodes += a->size;
	c->nodes += a->size;
	*height = a->height;
	*out = copy;
	return 0;
}

/* One element; returns 1 at the end of the sequence. */
static int y_seq_item(struct yctx *c, cJSON *arr, int depth, int *height)
{
	yaml_event_t ev;
	cJSON *child;
	int line, h, r;

	if ((r = y_next(c, &ev)))
		return r;
	if (ev.type == YAML_SEQUENCE_END_EVENT) {
		yaml_event_delete(&ev);
		return 1;
	}
	line = (int)ev.start_mark.line + 1;
	if ((r = y_node(c, &ev, depth + 1, &child, &h)))
		return r;
	if (!cJSON_AddItemToArray(arr, child)) {
		cJSON_Delete(child);
		return oom(c->pc->e);
	}
	if (h + 1 > *height)
		*height = h + 1;
	return depth == 2 ? lt_add(c->pc, child, line) : 0;
}

static int y_seq(struct yctx *c, int line, int depth, cJSON **out, int *height)
{
	cJSON *arr;
	int r;

	if (depth > MAX_DEPTH)
		return line_errf(c->pc->e, line, "nesting deeper than %d levels", MAX_DEPTH);
	if (!(arr = cJSON_CreateArray()))
		return oom(c->pc->e);
	c->nodes++;
	*height = 1;
	while (!(r = y_seq_item(c, arr, depth, height)))
		;
	if (r < 0) {
		cJSON_Delete(arr);
		return r;
	}
	*out = arr;
	return 0;
}

/* Keys are plain strings: no aliases, anchors, collections or merges. */
static int y_key(struct yctx *c, const yaml_event_t *kev)
{
	int line = (int)kev->start_mark.line + 1;
	const char *tag, *v;

	if (kev->type == YAML_ALIAS_EVENT)
		return line_errf(c->pc->e, line, "aliases as mapping keys are not supported");
	if (kev->type != YAML_SCALAR_EVENT)
		return line_errf(c->pc->e, line, "complex mapping keys are not supported");
	if (kev->data.scalar.anchor)
		return line_errf(c->pc->e, line, "anchors on mapping keys are not supported");
	tag = (const char *)kev->data.scalar.tag;
	v = (const char *)kev->data.scalar.value;
	if (tag && tag_kind(tag) != YK_STR)
		return bad_tag(c, tag, line);
	if (strlen(v) != kev->data.scalar.length)
		return line_errf(c->pc->e, line, "NUL characters are not supported in strings");
	if (!tag && kev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(v, "<<"))
		return line_errf(c->pc->e, line, "merge keys (<<) are not supported");
	return 0;
}

static int y_value(struct yctx *c, cJSON *obj, struct strmap *keys, const yaml_event_t *kev,
		   int depth, int *height)
{
	int kline = (int)kev->start_mark.line + 1, line, h, r;
	yaml_event_t ev;
	cJSON *val;
	bool alias;

	if ((r = y_next(c, &ev)))
		return r;
	line = (int)ev.start_mark.line + 1;
	alias = ev.type == YAML_ALIAS_EVENT;
	if ((r = y_node(c, &ev, depth + 1, &val, &h)))
		return r;
	if (!cJSON_AddItemToObject(obj, (const char *)kev->data.scalar.value, val)) {
		cJSON_Delete(val);
		return oom(c->pc->e);
	}
	if (h + 1 > *height)
		*height = h + 1;
	if ((r = key_once(c->pc, keys, val->string, kline)))
		return r;
	/* List items copied from an anchor begin where the alias is. */
	if (depth == 1 && alias && cJSON_IsArray(val))
		for (const cJSON *it = val->child; it && !r; it = it->next)
			r = lt_add(c->pc, it, line);
	return r;
}

/* One key and its value; returns 1 at the end of the mapping. */
static int y_map_entry(struct yctx *c, cJSON *obj, struct strmap *keys, int depth, int *height)
{
	yaml_event_t kev;
	int r;

	if ((r = y_next(c, &kev)))
		return r;
	if (kev.type == YAML_MAPPING_END_EVENT)
		r = 1;
	else if (!(r = y_key(c, &kev)))
		r = y_value(c, obj, keys, &kev, depth, height);
	yaml_event_delete(&kev);
	return r;
}

static int y_map(struct yctx *c, int line, int depth, cJSON **out, int *height)
{
	struct strmap keys = {0};
	cJSON *obj;
	int r;

	if (depth > MAX_DEPTH)
		return line_errf(c->pc->e, line, "nesting deeper than %d levels", MAX_DEPTH);
	if (!(obj = cJSON_CreateObject()))
		return oom(c->pc->e);
	c->nodes++;
	*height = 1;
	while (!(r = y_map_entry(c, obj, &keys, depth, height)))
		;
	sm_free(&keys);
	if (r < 0) {
		cJSON_Delete(obj);
		return r;
	}
	*out = obj;
	return 0;
}

static const char *y_anchor_of(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return (const char *)ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return (const char *)ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return (const char *)ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

static int y_anchor_put(struct yctx *c, const char *name, const cJSON *node, size_t size,
			int height)
{
	struct anchor *a;

	if (c->nanch == c->capanch) {
		size_t cap = c->capanch ? c->capanch * 2 : 8;
		struct anchor *v = realloc(c->anch, cap * sizeof(*v));

		if (!v)
			return oom(c->pc->e);
		c->anch = v;
		c->capanch = cap;
	}
	a = &c->anch[c->nanch];
	if (!(a->name = strdup(name)))
		return oom(c->pc->e);
	a->node = node;
	a->size = size;
	a->height = height;
	c->nanch++;
	/* A later anchor of the same name hides the earlier one. */
	return sm_put(&c->amap, a->name, c->nanch - 1) ? oom(c->pc->e) : 0;
}

/* Anchors do not reach across documents. */
static void y_anchors_reset(struct yctx *c)
{
	for (size_t i = 0; i < c->nanch; i++)
		free(c->anch[i].name);
	c->nanch = 0;
	sm_free(&c->amap);
}

static int y_node_body(struct yctx *c, const yaml_event_t *ev, int depth, cJSON **out, int *height)
{
	int line = (int)ev->start_mark.line + 1;
	int r;

	*height = 0;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return y_alias(c, (const char *)ev->data.alias.anchor, line, depth, out, height);
	case YAML_SCALAR_EVENT:
		return y_scalar(c, ev, line, out);
	case YAML_SEQUENCE_START_EVENT:
		r = y_coll_tag(c, ev->data.sequence_start.tag, YK_SEQ, line);
		return r ? r : y_seq(c, line, depth, out, height);
	case YAML_MAPPING_START_EVENT:
		r = y_coll_tag(c, ev->data.mapping_start.tag, YK_MAP, line);
		return r ? r : y_map(c, line, depth, out, height);
	default:
		return line_errf(c->pc->e, line, "unexpected YAML event %d", (int)ev->type);
	}
}

/* Builds the node `ev` starts, at nesting `depth` if it is a collection, and
 * deletes `ev`.  On error *out is NULL. */
static int y_node(struct yctx *c, yaml_event_t *ev, int depth, cJSON **out, int *height)
{
	size_t before = c->nodes;
	const char *anchor = y_anchor_of(ev);
	int r;

	*out = NULL;
	r = y_node_body(c, ev, depth, out, height);
	if (!r && anchor)
		r = y_anchor_put(c, anchor, *out, c->nodes - before, *height);
	yaml_event_delete(ev);
	if (r) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return r;
}

static int y_document(struct yctx *c)
{
	yaml_event_t ev;
	cJSON *root;
	int line, h, r;

	if ((r = y_next(c, &ev)))
		return r;
	line = (int)ev.start_mark.line + 1;
	c->pc->nlt = 0;
	c->nodes = 0;
	r = y_node(c, &ev, 1, &root, &h);
	y_anchors_reset(c);
	return r ? r : add_document(c->pc, root, line);
}

static int y_stream(struct yctx *c)
{
	yaml_event_t ev;
	yaml_event_type_t type;
	int r;

	do {
		if ((r = y_next(c, &ev)))
			return r;
		type = ev.type;
		yaml_event_delete(&ev);
		if (type == YAML_DOCUMENT_START_EVENT && (r = y_document(c)))
			return r;
	} while (type != YAML_STREAM_END_EVENT);
	return 0;
}

static int parse_yaml(struct pctx *pc, const char *text, size_t len)
{
	struct yctx c = {.pc = pc, .text = text, .len = len};
	int r;

	if (!yaml_parser_initialize(&c.p))
		return oom(pc->e);
	yaml_parser_set_input_string(&c.p, (const unsigned char *)text, len);
	r = y_stream(&c);
	y_anchors_reset(&c);
	free(c.anch);
	yaml_parser_delete(&c.p);
	return r;
}

/* ---- JSON ---- */

struct ivec {
	int *v;
	size_t n, cap;
};

static int iv_push(struct ivec *iv, int x)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 64;
		int *v = realloc(iv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		iv->v = v;
		iv->cap = cap;
	}
	iv->v[iv->n++] = x;
	return 0;
}

static int iv_at(const struct ivec *iv, size_t i)
{
	return i < iv->n ? iv->v[i] : 0;
}

/* Past the closing quote of a string whose opening quote is before `p`. */
static const char *json_skip_string(const char *p, const char *end, int *line)
{
	while (p < end && *p != '"') {
		if (*p == '\\' && p + 1 < end)
			p++;
		if (*p == '\n')
			(*line)++;
		p++;
	}
	return p < end ? p + 1 : p;
}

static const char *json_skip_atom(const char *p, const char *end)
{
	static const char delim[] = " \t\r\n,:[]{}\"";

	while (p < end && !memchr(delim, *p, sizeof(delim) - 1))
		p++;
	return p;
}

/* A first look at one JSON value, before cJSON: refuses nesting deeper than
 * `maxdepth` naming the line (cJSON would only say "invalid"), and records
 * the line of each value in text order, which is the order a pre-order walk
 * of the cJSON tree meets them.  Malformed text is left to cJSON. */
static int json_scan(struct pctx *pc, const char *p, const char *end, int line, int maxdepth,
		     struct ivec *lines)
{
	char open[MAX_DEPTH + 1];
	int depth = 0;
	bool want_key = false;

	while (p < end) {
		char ch = *p++;

		switch (ch) {
		case '\n':
			line++;
			continue;
		case ' ':
		case '\t':
		case '\r':
			continue;
		case ':':
			want_key = false;
			continue;
		case ',':
			want_key = depth && open[depth - 1] == '{';
			continue;
		case '}':
		case ']':
			if (--depth <= 0)
				return 0; /* the end of the value (or a stray bracket) */
			continue;
		}
		if (!(ch == '"' && want_key) && iv_push(lines, line))
			return oom(pc->e);
		if (ch == '{' || ch == '[') {
			if (depth == maxdepth)
				return line_errf(pc->e, line, "nesting deeper than %d levels",
						 MAX_DEPTH);
			open[depth++] = ch;
			want_key = ch == '{';
			continue;
		}
		p = ch == '"' ? json_skip_string(p, end, &line) : json_skip_atom(p, end);
		if (!depth)
			return 0;
	}
	return 0;
}

/* Rejects duplicate keys (cJSON keeps both; cJSON_GetObjectItem would see
 * the first where Kubernetes keeps the last) and notes where List items
 * begin.  `*idx` walks the scanner's lines in pre-order. */
static int json_walk(struct pctx *pc, const cJSON *j, int depth, const struct ivec *lines,
		     size_t *idx)
{
	struct strmap keys = {0};
	int r = 0;

	(*idx)++;
	if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
		return 0;
	for (const cJSON *ch = j->child; ch && !r; ch = ch->next) {
		int line = iv_at(lines, *idx);

		if (cJSON_IsObject(j))
			r = key_once(pc, &keys, ch->string, line);
		if (!r && depth == 2 && cJSON_IsArray(j))
			r = lt_add(pc, ch, line);
		if (!r)
			r = json_walk(pc, ch, depth + 1, lines, idx);
	}
	sm_free(&keys);
	return r;
}

/* Takes ownership of `d`. */
static int json_doc(struct pctx *pc, cJSON *d, const struct ivec *lines, size_t *idx)
{
	int line = iv_at(lines, *idx);
	int r;

	pc->nlt = 0;
	if ((r = json_walk(pc, d, 1, lines, idx))) {
		cJSON_Delete(d);
		return r;
	}
	return add_document(pc, d, line);
}

/* A top-level array is a list of documents.  Takes ownership of `v`. */
static int json_docs(struct pctx *pc, cJSON *v, const struct ivec *lines)
{
	size_t idx = 0;
	int r = 0;

	if (!cJSON_IsArray(v))
		return json_doc(pc, v, lines, &idx);
	idx = 1; /* the array itself */
	while (v->child && !r)
		r = json_doc(pc, cJSON_DetachItemViaPointer(v, v->child), lines, &idx);
	cJSON_Delete(v);
	return r;
}

static int json_syntax(struct pctx *pc, const char *buf, const char *at, const char *end)
{
	int line = line_at(buf, (size_t)(at - buf));
	char near[24];
	size_t i;

	for (i = 0; at + i < end && i < sizeof(near) - 1 && at[i] != '\n' && at[i] != '\r'; i++)
		near[i] = isprint((unsigned char)at[i]) ? at[i] : '?';
	near[i] = '\0';
	if (at >= end)
		return line_errf(pc->e, line, "invalid JSON: unexpected end of input");
	if (!i)
		return line_errf(pc->e, line, "invalid JSON at end of line");
	return line_errf(pc->e, line, "invalid JSON near '%s'", near);
}

/* One top-level value at *pp (not blank); moves *pp past it. */
static int json_value(struct pctx *pc, const char *buf, const char **pp, const char *end, int line)
{
	struct ivec lines = {0};
	const char *p = *pp, *ep = NULL;
	int r = json_scan(pc, p, end, line, *p == '[' ? MAX_DEPTH + 1 : MAX_DEPTH, &lines);
	cJSON *v;

	if (!r) {
		v = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &ep, 0);
		if (!ep)
			ep = p;
		r = v ? json_docs(pc, v, &lines) : json_syntax(pc, buf, ep, end);
		*pp = ep;
	}
	free(lines.v);
	return r;
}

/* Whitespace and `#` comments: allowed before JSON too, so that a JSON file
 * with a comment header is still recognised as JSON. */
static const char *skip_blank(const char *p, const char *end)
{
	while (p < end) {
		if (*p == '#') {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			p = nl ? nl + 1 : end;
		} else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else {
			break;
		}
	}
	return p;
}

/* `start` is the first character that is not blank or a comment. */
static int parse_json(struct pctx *pc, const char *text, size_t len, size_t start)
{
	char *buf = malloc(len + 1); /* cJSON is happier with a terminator */
	const char *p, *end, *counted;
	int line = 1, r = 0;

	if (!buf)
		return oom(pc->e);
	memcpy(buf, text, len);
	buf[len] = '\0';
	end = buf + len;
	counted = buf;
	/* cJSON stops after one value; several may follow one another. */
	for (p = buf + start; p < end && !r; p = skip_blank(p, end)) {
		/* Count lines incrementally: many small documents stay linear. */
		line += line_at(counted, (size_t)(p - counted)) - 1;
		counted = p;
		r = json_value(pc, buf, &p, end, line);
	}
	free(buf);
	return r;
}

/* ---- Entry points ---- */

int manifest_parse(const char *name, const char *text, size_t len, struct svc_docs *out,
		   struct svc_err *e)
{
	struct pctx pc = {.e = e};
	const char *start;
	int r;

	out->v = NULL;
	out->n = 0;
	if (!len)
		return 0;
	start = text;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		start += 3; /* a UTF-8 byte order mark */
	start = skip_blank(start, text + len);
	if (start < text + len && (*start == '{' || *start == '['))
		r = parse_json(&pc, text, len, (size_t)(start - text));
	else
		r = parse_yaml(&pc, text, len);
	free(pc.lt);
	if (r) {
		manifest_docs_free(&pc.docs);
		svc_err_ctx(e, "%s", name ? name : "<input>");
		return r;
	}
	*out = pc.docs;
	return 0;
}

void manifest_docs_free(struct svc_docs *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		cJSON_Delete(d->v[i].json);
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* ---- YAML emitter ---- */

struct obuf {
	char *p;
	size_t n, cap; /* cap keeps one byte spare for the terminator */
	bool oom;
};

static int obuf_write(void *data, unsigned char *buf, size_t size)
{
	struct obuf *b = data;

	if (b->n + size + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (b->n + size + 1 > cap)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, buf, size);
	b->n += size;
	return 1;
}

struct emctx {
	yaml_emitter_t em;
	struct obuf out;
	struct svc_err *e;
};

static int em_fail(struct emctx *m)
{
	if (m->out.oom || m->em.error == YAML_MEMORY_ERROR)
		return oom(m->e);
	return svc_errf(m->e, EINVAL, "emitting YAML: %s",
			m->em.problem ? m->em.problem : "unknown error");
}

static int em_emit(struct emctx *m, yaml_event_t *ev)
{
	return yaml_emitter_emit(&m->em, ev) ? 0 : em_fail(m);
}

/* Would a YAML reader take the plain scalar `s` for something other than
 * this string?  Ours (YAML 1.2 core), and also YAML 1.1 readers such as
 * kubectl's: yes/no/on/off, 1_000, 1:30, 2001-12-14, merge and value keys.
 * Syntax (": ", leading "- ", spaces at the ends...) is libyaml's to judge. */
static bool needs_quote(const char *s)
{
	static const char *const words[] = {"y",  "Y",	 "yes", "Yes", "YES", "n",
					    "N",  "no",	 "No",	"NO",  "on",  "On",
					    "ON", "off", "Off", "OFF", "<<",  "="};
	const unsigned char *u = (const unsigned char *)s;
	double num;
	bool b;

	if (resolve_plain(s, &num, &b) != YK_STR)
		return true;
	if (isdigit(u[0]) ||
	    ((u[0] == '-' || u[0] == '+' || u[0] == '.') && (isdigit(u[1]) || u[1] == '.')))
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(s, words[i]))
			return true;
	return false;
}

/* `ok` is what the yaml_*_event_initialize call that filled `ev` returned:
 * they fail only for lack of memory. */
static int em_event(struct emctx *m, int ok, yaml_event_t *ev)
{
	return ok ? em_emit(m, ev) : oom(m->e);
}

/* Length of the UTF-8 sequence that lead byte `c` starts, 0 if none does. */
static unsigned utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c < 0xc2) /* a continuation byte, or an overlong 2-byte form */
		return 0;
	return c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
}

/* Strict UTF-8: no overlong forms, surrogates or values past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned len = utf8_len(s[i]);
		uint32_t cp;

		if (!len || n - i < len)
			return false;
		cp = len == 1 ? s[i] : s[i] & (0x3fu >> (len - 1));
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

static int em_scalar(struct emctx *m, const char *s, bool plain_ok, yaml_scalar_style_t style)
{
	size_t len = strlen(s);
	yaml_event_t ev;

	if (len > INT_MAX)
		return svc_errf(m->e, EINVAL, "emitting YAML: string too long");
	/* Checked here so that a failure below can only mean memory. */
	if (!utf8_valid((const unsigned char *)s, len))
		return svc_errf(m->e, EINVAL, "emitting YAML: string '%.40s' is not valid UTF-8",
				s);
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s, (int)len,
					  plain_ok, 1, style))
		return oom(m->e);
	return em_emit(m, &ev);
}

/* Multi-line text reads best as a literal block; libyaml falls back to
 * double quotes where a block cannot hold it exactly. */
static int em_string(struct emctx *m, const char *s)
{
	return em_scalar(m, s, !needs_quote(s),
			 strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
}

/* Integers without a point; otherwise the shortest text that reads back as
 * the same double, and always in a form our reader takes for a number. */
static void fmt_number(double d, char *buf, size_t n)
{
	if (isnan(d)) {
		snprintf(buf, n, ".nan");
	} else if (isinf(d)) {
		snprintf(buf, n, "%s", d > 0 ? ".inf" : "-.inf");
	} else if (d > -(double)EXACT_INT_MAX && d < (double)EXACT_INT_MAX &&
		   d == (double)(int64_t)d) {
		snprintf(buf, n, "%" PRId64, (int64_t)d);
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, n, "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		/* 1e16 prints as 10000000000000000, an integer too big for us. */
		if (!strpbrk(buf, ".eE"))
			strncat(buf, ".0", n - strlen(buf) - 1);
	}
}

static int em_node(struct emctx *m, const cJSON *j, int depth);

static int em_collection(struct emctx *m, const cJSON *j, int depth)
{
	bool map = cJSON_IsObject(j);
	yaml_event_t ev;
	int r, ok;

	/* Block style, except that empty ones can only be written {} and []. */
	if (map)
		ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
							 j->child ? YAML_BLOCK_MAPPING_STYLE
								  : YAML_FLOW_MAPPING_STYLE);
	else
		ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							  j->child ? YAML_BLOCK_SEQUENCE_STYLE
								   : YAML_FLOW_SEQUENCE_STYLE);
	if ((r = em_event(m, ok, &ev)))
		return r;
	for (const cJSON *ch = j->child; ch; ch = ch->next) {
		if (map && !ch->string)
			return svc_errf(m->e, EINVAL, "emitting YAML: object member without a key");
		if (map && (r = em_string(m, ch->string)))
			return r;
		if ((r = em_node(m, ch, depth + 1)))
			return r;
	}
	ok = map ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev);
	return em_event(m, ok, &ev);
}

static int em_node(struct emctx *m, const cJSON *j, int depth)
{
	char num[64];

	if (depth > EMIT_MAX_DEPTH)
		return svc_errf(m->e, EINVAL, "emitting YAML: nesting deeper than %d levels",
				EMIT_MAX_DEPTH);
	switch (j->type & 0xff) {
	case cJSON_NULL:
		return em_scalar(m, "null", true, YAML_PLAIN_SCALAR_STYLE);
	case cJSON_True:
		return em_scalar(m, "true", true, YAML_PLAIN_SCALAR_STYLE);
	case cJSON_False:
		return em_scalar(m, "false", true, YAML_PLAIN_SCALAR_STYLE);
	case cJSON_Number:
		fmt_number(j->valuedouble, num, sizeof(num));
		return em_scalar(m, num, true, YAML_PLAIN_SCALAR_STYLE);
	case cJSON_String:
		return em_string(m, j->valuestring ? j->valuestring : "");
	case cJSON_Array:
	case cJSON_Object:
		return em_collection(m, j, depth);
	default:
		return svc_errf(m->e, EINVAL, "emitting YAML: unsupported JSON value (type %d)",
				j->type & 0xff);
	}
}

static int em_document(struct emctx *m, const cJSON *j)
{
	yaml_event_t ev;
	int r;

	if ((r = em_event(m, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING), &ev)) ||
	    (r = em_event(m, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1),
			  &ev)) ||
	    (r = em_node(m, j, 1)) ||
	    (r = em_event(m, yaml_document_end_event_initialize(&ev, 1), &ev)) ||
	    (r = em_event(m, yaml_stream_end_event_initialize(&ev), &ev)))
		return r;
	return yaml_emitter_flush(&m->em) ? 0 : em_fail(m);
}

char *manifest_yaml_emit(const cJSON *j, struct svc_err *e)
{
	struct emctx m = {.e = e};
	int r;

	if (!j) {
		svc_errf(e, EINVAL, "emitting YAML: no value");
		return NULL;
	}
	if (!yaml_emitter_initialize(&m.em)) {
		oom(e);
		return NULL;
	}
	yaml_emitter_set_output(&m.em, obuf_write, &m.out);
	yaml_emitter_set_unicode(&m.em, 1);
	yaml_emitter_set_width(&m.em, -1); /* never fold long strings */
	yaml_emitter_set_indent(&m.em, 2);
	r = em_document(&m, j);
	yaml_emitter_delete(&m.em);
	if (r || !m.out.p) {
		free(m.out.p);
		return NULL;
	}
	m.out.p[m.out.n] = '\0';
	return m.out.p;
}
