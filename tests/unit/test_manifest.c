// SPDX-License-Identifier: MIT
#include "manifest.h"
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* Parses from an exact-size heap copy with no terminator, so that ASan and
 * valgrind catch any read past `len`. */
static int parse(const char *name, const char *text, struct svc_docs *d, struct svc_err *e)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1);
	int r;

	memcpy(copy, text, len);
	svc_err_clear(e);
	r = manifest_parse(name, copy, len, d, e);
	free(copy);
	return r;
}

/* The parse fails, `out` is left empty and the message contains `want`. */
static void expect_error(const char *name, const char *text, const char *want)
{
	struct svc_docs d = {(struct svc_doc *)&d, 7}; /* garbage that must be cleared */
	struct svc_err e;

	CHECK(parse(name, text, &d, &e) < 0);
	CHECK(d.v == NULL && d.n == 0);
	CHECK_HAS(e.msg, want);
}

/* A dotted path into a document: "spec.ports.0.port". */
static const cJSON *at(const cJSON *j, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save))
		j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(tok))
				     : cJSON_GetObjectItemCaseSensitive(j, tok);
	return j;
}

static const char *str_at(const cJSON *j, const char *path)
{
	const cJSON *v = at(j, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool num_is(const cJSON *j, const char *path, double want)
{
	const cJSON *v = at(j, path);

	return cJSON_IsNumber(v) && v->valuedouble == want;
}

static char *repeat(const char *s, int n)
{
	size_t len = strlen(s);
	char *out = malloc(len * (size_t)n + 1);

	for (int i = 0; i < n; i++)
		memcpy(out + len * (size_t)i, s, len);
	out[len * (size_t)n] = '\0';
	return out;
}

static void test_kubernetes_yaml(void)
{
	static const char text[] = "# web app\n"		     /* 1 */
				   "apiVersion: v1\n"		     /* 2 */
				   "kind: Service\n"		     /* 3 */
				   "metadata:\n"		     /* 4 */
				   "  name: web\n"		     /* 5 */
				   "  labels:\n"		     /* 6 */
				   "    app: web\n"		     /* 7 */
				   "spec:\n"			     /* 8 */
				   "  selector:\n"		     /* 9 */
				   "    app: web\n"		     /* 10 */
				   "  ports:\n"			     /* 11 */
				   "  - name: http\n"		     /* 12 */
				   "    port: 80\n"		     /* 13 */
				   "    targetPort: http\n"	     /* 14 */
				   "    protocol: TCP\n"	     /* 15 */
				   "---\n"			     /* 16 */
				   "---\n"			     /* 17: empty, skipped */
				   "# the workload\n"		     /* 18 */
				   "apiVersion: apps/v1\n"	     /* 19 */
				   "kind: Deployment\n"		     /* 20 */
				   "metadata:\n"		     /* 21 */
				   "  name: web\n"		     /* 22 */
				   "spec:\n"			     /* 23 */
				   "  replicas: 3\n"		     /* 24 */
				   "  selector:\n"		     /* 25 */
				   "    matchLabels:\n"		     /* 26 */
				   "      app: web\n"		     /* 27 */
				   "  template:\n"		     /* 28 */
				   "    metadata:\n"		     /* 29 */
				   "      labels: {app: web}\n"	     /* 30 */
				   "    spec:\n"		     /* 31 */
				   "      containers:\n"	     /* 32 */
				   "      - name: web\n"	     /* 33 */
				   "        image: \"nginx:1.25\"\n" /* 34 */
				   "        args: [\"--port\", \"8080\"]\n"
				   "        ports:\n"
				   "        - containerPort: 8080\n"
				   "        env:\n"
				   "        - name: DEBUG\n"
				   "          value: \"true\"\n"
				   "...\n";
	struct svc_docs d;
	struct svc_err e;

	CHECK(parse("my-app.yaml", text, &d, &e) == 0);
	CHECK(d.n == 2);
	if (d.n != 2) {
		manifest_docs_free(&d);
		return;
	}
	CHECK_STR(d.v[0].label, "document 1");
	CHECK(d.v[0].line == 2);
	CHECK_STR(str_at(d.v[0].json, "kind"), "Service");
	CHECK_STR(str_at(d.v[0].json, "metadata.labels.app"), "web");
	CHECK(num_is(d.v[0].json, "spec.ports.0.port", 80));
	CHECK_STR(str_at(d.v[0].json, "spec.ports.0.targetPort"), "http");
	CHECK_STR(str_at(d.v[0].json, "spec.ports.0.protocol"), "TCP");
	CHECK_STR(d.v[1].label, "document 2");
	CHECK(d.v[1].line == 19);
	CHECK_STR(str_at(d.v[1].json, "kind"), "Deployment");
	CHECK(num_is(d.v[1].json, "spec.replicas", 3));
	CHECK_STR(str_at(d.v[1].json, "spec.template.metadata.labels.app"), "web");
	CHECK_STR(str_at(d.v[1].json, "spec.template.spec.containers.0.image"), "nginx:1.25");
	CHECK_STR(str_at(d.v[1].json, "spec.template.spec.containers.0.args.1"), "8080");
	CHECK(num_is(d.v[1].json, "spec.template.spec.containers.0.ports.0.containerPort", 8080));
	CHECK_STR(str_at(d.v[1].json, "spec.template.spec.containers.0.env.0.value"), "true");
	manifest_docs_free(&d);
	CHECK(d.v == NULL && d.n == 0);
}

static void test_json(void)
{
	struct svc_docs d;
	struct svc_err e;

	CHECK(parse("x.json",
		    "\n\n{\"kind\": \"Service\", \"spec\": {\"ports\": [{\"port\": 80}]}}\n", &d,
		    &e) == 0);
	CHECK(d.n == 1 && d.v[0].line == 3);
	CHECK(d.n == 1 && num_is(d.v[0].json, "spec.ports.0.port", 80));
	manifest_docs_free(&d);

	/* A top-level array is a list of documents. */
	CHECK(parse("x.json", "[\n  {\"kind\": \"A\"},\n  {\"kind\": \"B\"}\n]\n", &d, &e) == 0);
	CHECK(d.n == 2);
	if (d.n == 2) {
		CHECK_STR(d.v[0].label, "document 1");
		CHECK_STR(d.v[1].label, "document 2");
		CHECK(d.v[0].line == 2 && d.v[1].line == 3);
		CHECK_STR(str_at(d.v[1].json, "kind"), "B");
	}
	manifest_docs_free(&d);

	/* Objects one after another, after a comment header. */
	CHECK(parse("x.json",
		    "# "
		    "generated\n{\"kind\":\"A\"}\n{\"kind\":\"B\"}{\"kind\":\"C\"}\n\n[{\"kind\":"
		    "\"D\"}]",
		    &d, &e) == 0);
	CHECK(d.n == 4);
	if (d.n == 4) {
		CHECK(d.v[0].line == 2 && d.v[1].line == 3 && d.v[2].line == 3 && d.v[3].line == 5);
		CHECK_STR(d.v[3].label, "document 4");
		CHECK_STR(str_at(d.v[2].json, "kind"), "C");
	}
	manifest_docs_free(&d);

	/* A byte order mark does not hide the JSON. */
	CHECK(parse("x.json", "\xef\xbb\xbf{\"a\": [1, 2.5, true, null, \"s\"]}", &d, &e) == 0);
	CHECK(d.n == 1 && num_is(d.v[0].json, "a.1", 2.5));
	manifest_docs_free(&d);
}

static void test_list(void)
{
	static const char text[] = "apiVersion: v1\n"	     /* 1 */
				   "kind: List\n"	     /* 2 */
				   "items:\n"		     /* 3 */
				   "- kind: Service\n"	     /* 4 */
				   "  metadata: {name: a}\n" /* 5 */
				   "-\n"		     /* 6 */
				   "  kind: Pod\n"	     /* 7 */
				   "  metadata:\n"	     /* 8 */
				   "    name: b\n"	     /* 9 */
				   "---\n"		     /* 10 */
				   "kind: Service\n";	     /* 11 */
	struct svc_docs d;
	struct svc_err e;

	CHECK(parse("l.yaml", text, &d, &e) == 0);
	CHECK(d.n == 3);
	if (d.n == 3) {
		CHECK_STR(d.v[0].label, "document 1 items[0]");
		CHECK(d.v[0].line == 4);
		CHECK_STR(str_at(d.v[0].json, "metadata.name"), "a");
		CHECK_STR(d.v[1].label, "document 1 items[1]");
		CHECK(d.v[1].line == 7);
		CHECK_STR(str_at(d.v[1].json, "kind"), "Pod");
		CHECK_STR(d.v[2].label, "document 2");
		CHECK(d.v[2].line == 11);
	}
	manifest_docs_free(&d);

	CHECK(parse("l.json",
		    "{\"kind\": \"List\", \"items\": [\n{\"kind\": \"A\"},\n\n{\"kind\": \"B\"}]}",
		    &d, &e) == 0);
	CHECK(d.n == 2 && d.v[0].line == 2 && d.v[1].line == 4);
	CHECK(d.n == 2 && !strcmp(d.v[1].label, "document 1 items[1]"));
	manifest_docs_free(&d);

	/* Items copied from an anchor begin where the alias is. */
	CHECK(parse("l.yaml", "shared: &i\n- kind: A\n- kind: B\nkind: List\nitems: *i\n", &d,
		    &e) == 0);
	CHECK(d.n == 2 && d.v[1].line == 5 && !strcmp(str_at(d.v[1].json, "kind"), "B"));
	manifest_docs_free(&d);

	CHECK(parse("l.yaml", "kind: List\nitems: []\n---\nkind: List\n", &d, &e) == 0);
	CHECK(d.n == 0);
	manifest_docs_free(&d);

	expect_error("l.yaml", "kind: List\nitems:\n- kind: A\n- just a string\n",
		     "l.yaml: document 1 items[1] (line 4): must be a mapping, got a string");
	expect_error("l.yaml", "kind: List\nitems: {a: 1}\n",
		     "l.yaml: document 1 (line 1): items must be a sequence, got a mapping");
}

static void test_typing(void)
{
	static const char text[] = "a: \"80\"\n"
				   "b: 80\n"
				   "c: true\n"
				   "d: null\n"
				   "e: ~\n"
				   "f:\n"
				   "g: \"yes\"\n"
				   "h: yes\n"
				   "i: 0x1F\n"
				   "j: 0o17\n"
				   "k: 0644\n"
				   "l: 1.5\n"
				   "p: 1e3\n"
				   "q: !!str 80\n"
				   "r: !!int \"42\"\n"
				   "s: |\n"
				   "  line1\n"
				   "  line2\n"
				   "t: >\n"
				   "  folded\n"
				   "  text\n"
				   "u: 'single'\n"
				   "v: -12\n"
				   "w: 9007199254740992\n"
				   "x: False\n"
				   "y: NULL\n"
				   "z: !!float 3\n"
				   "aa: 0128\n"
				   "ab: 1_000\n"
				   "ac: 12:30\n"
				   "ad: +5\n"
				   "ae: .5\n"
				   "af: 2001-12-14\n"
				   "ag: !!bool \"true\"\n"
				   "ah: !!null \"\"\n"
				   "ai: 'null'\n"
				   "aj: ! 12\n"
				   "ak: -9007199254740992\n"
				   "al: 1.\n"
				   "am: 1e\n"
				   "an: !!float 9007199254740993\n"
				   "ao: 0x\n"
				   "ap: !!map {x: !!seq [1]}\n"
				   "\"80\": quoted key\n"
				   "90: plain key\n";
	struct svc_docs d;
	struct svc_err e;
	const cJSON *j;

	CHECK(parse("t.yaml", text, &d, &e) == 0);
	CHECK(d.n == 1);
	if (d.n != 1) {
		fprintf(stderr, "%s\n", e.msg);
		manifest_docs_free(&d);
		return;
	}
	j = d.v[0].json;
	CHECK_STR(str_at(j, "a"), "80");
	CHECK(num_is(j, "b", 80));
	CHECK(cJSON_IsTrue(at(j, "c")));
	CHECK(cJSON_IsNull(at(j, "d")) && cJSON_IsNull(at(j, "e")) && cJSON_IsNull(at(j, "f")));
	CHECK_STR(str_at(j, "g"), "yes");
	CHECK_STR(str_at(j, "h"), "yes"); /* YAML 1.2: no yes/no booleans */
	CHECK(num_is(j, "i", 31));
	CHECK(num_is(j, "j", 15));
	CHECK(num_is(j, "k", 420)); /* 0644 is octal, as kubectl reads it */
	CHECK(num_is(j, "l", 1.5));
	CHECK(num_is(j, "p", 1000));
	CHECK_STR(str_at(j, "q"), "80");
	CHECK(num_is(j, "r", 42));
	CHECK_STR(str_at(j, "s"), "line1\nline2\n");
	CHECK_STR(str_at(j, "t"), "folded text\n");
	CHECK_STR(str_at(j, "u"), "single");
	CHECK(num_is(j, "v", -12));
	CHECK(num_is(j, "w", 9007199254740992.0));
	CHECK(cJSON_IsFalse(at(j, "x")));
	CHECK(cJSON_IsNull(at(j, "y")));
	CHECK(num_is(j, "z", 3));
	CHECK(num_is(j, "aa", 128));
	CHECK_STR(str_at(j, "ab"), "1_000");
	CHECK_STR(str_at(j, "ac"), "12:30");
	CHECK(num_is(j, "ad", 5));
	CHECK(num_is(j, "ae", 0.5));
	CHECK_STR(str_at(j, "af"), "2001-12-14");
	CHECK(cJSON_IsTrue(at(j, "ag")));
	CHECK(cJSON_IsNull(at(j, "ah")));
	CHECK_STR(str_at(j, "ai"), "null");
	CHECK_STR(str_at(j, "aj"), "12");
	CHECK(num_is(j, "ak", -9007199254740992.0));
	CHECK(num_is(j, "al", 1));
	CHECK_STR(str_at(j, "am"), "1e");
	CHECK(num_is(j, "an", 9007199254740992.0));
	CHECK_STR(str_at(j, "ao"), "0x");
	CHECK(num_is(j, "ap.x.0", 1));
	CHECK_STR(str_at(j, "80"), "quoted key");
	CHECK_STR(str_at(j, "90"), "plain key");
	manifest_docs_free(&d);

	expect_error("t.yaml", "a: 1\nb: 9007199254740993\n",
		     "t.yaml: line 2: integer 9007199254740993 cannot be held exactly");
	expect_error("t.yaml", "a: 1\nb: !!binary aGVsbG8=\n",
		     "line 2: unsupported tag '!!binary'");
	expect_error("t.yaml", "a: !foo x\n", "line 1: unsupported tag '!foo'");
	expect_error("t.yaml", "a:\n  b: !!int abc\n", "line 2: 'abc' is not a valid !!int");
	expect_error("t.yaml", "a: !!bool yes\n", "line 1: 'yes' is not a valid !!bool");
	expect_error("t.yaml", "a: !!str [1]\n", "line 1: unsupported tag '!!str'");
	expect_error("t.yaml", "a: \"x\\0y\"\n", "line 1: NUL characters are not supported");
}

static void test_syntax_errors(void)
{
	struct svc_err e;
	struct svc_docs d;

	expect_error("my-app.yaml", "a: 1\nb: 2\nc: d: e\n",
		     "my-app.yaml: line 3: mapping values are not allowed in this context");
	expect_error("my-app.yaml", "a: 1\nb: \"unterminated\n\n",
		     "(while scanning a quoted scalar at line 2)");
	expect_error("my-app.yaml", "a: 1\nb:\n  - x\n  y: 2\n", "my-app.yaml: line 4: ");
	expect_error("my-app.yaml", "a: 1\n\tb: 2\n", "my-app.yaml: line 2: ");
	expect_error("bad.yaml", "a: 1\nb: \xff\n", "bad.yaml: line 2: invalid");
	CHECK(parse("bad.yaml", "a: 1\nb: \xff\n", &d, &e) == -EINVAL && e.code == EINVAL);

	expect_error("x.json", "{\n  \"a\": 1,\n  \"b\": ,\n  \"c\": 2\n}\n",
		     "x.json: line 3: invalid JSON near ','");
	expect_error("x.json", "{\"a\": 1}\n\n{\"b\": [1, 2\n", "x.json: line 3: invalid JSON");
	expect_error("x.json", "{\"a\": 1}\n  oops\n", "x.json: line 2: invalid JSON near 'oops'");
	expect_error("x.json", "[{\"a\": 1} {\"b\": 2}]", "x.json: line 1: invalid JSON near");
	/* No name: the message still says where. */
	CHECK(parse(NULL, "a: [\n", &d, &e) < 0);
	CHECK_HAS(e.msg, "<input>: line ");
}

static void test_structure_errors(void)
{
	expect_error("t.yaml", "metadata:\n  name: a\n  name: b\n",
		     "t.yaml: line 3: duplicate key 'name'");
	expect_error("t.json", "{\"a\": {\"x\": 1},\n \"a\": 2}",
		     "t.json: line 2: duplicate key 'a'");
	expect_error("my.yaml", "kind: A\n---\n- x\n- y\n",
		     "my.yaml: document 2 (line 3): must be a mapping, got a sequence");
	expect_error("my.yaml", "hello\n",
		     "my.yaml: document 1 (line 1): must be a mapping, got a string");
	expect_error("my.json", "[{\"a\": 1},\n 5]",
		     "my.json: document 2 (line 2): must be a mapping, got a number");
	expect_error("my.json", "{\"a\": 1} true",
		     "my.json: document 2 (line 1): must be a mapping, got a boolean");
	expect_error("t.yaml", "base: &b {x: 1}\nd:\n  <<: *b\n",
		     "t.yaml: line 3: merge keys (<<) are not supported");
	expect_error("t.yaml", "? [a, b]\n: c\n", "t.yaml: line 1: complex mapping keys");
	expect_error("t.yaml", "a: &k x\n*k : y\n", "t.yaml: line 2: aliases as mapping keys");
	expect_error("t.yaml", "&k a: x\n", "t.yaml: line 1: anchors on mapping keys");
}

static void test_depth(void)
{
	char *open = repeat("[", 255), *close = repeat("]", 255), *text;
	struct svc_docs d;
	struct svc_err e;

	/* The mapping is level 1, so 255 sequences inside it reach the limit. */
	if (asprintf(&text, "a: %s%s\n", open, close) < 0)
		return;
	CHECK(parse("t.yaml", text, &d, &e) == 0 && d.n == 1);
	manifest_docs_free(&d);
	free(text);
	if (asprintf(&text, "a: [%s%s]\n", open, close) < 0)
		return;
	expect_error("t.yaml", text, "t.yaml: line 1: nesting deeper than 256 levels");
	free(text);
	free(open);
	free(close);

	/* Block mappings, one level per line: level 257 starts on line 257. */
	text = malloc(300 * 320);
	text[0] = '\0';
	for (int i = 0; i < 300; i++)
		sprintf(text + strlen(text), "%*sk:\n", i, "");
	expect_error("t.yaml", text, "t.yaml: line 257: nesting deeper than 256 levels");

	/* The same in JSON, which cJSON alone would accept up to 1000. */
	text[0] = '\0';
	for (int i = 0; i < 300; i++)
		strcat(text, "{\"k\":\n");
	strcat(text, "1");
	for (int i = 0; i < 300; i++)
		strcat(text, "}");
	expect_error("t.json", text, "t.json: line 257: nesting deeper than 256 levels");
	free(text);

	/* An alias may not carry a deep anchor past the limit either. */
	open = repeat("[", 200);
	close = repeat("]", 200);
	char *open2 = repeat("[", 100), *close2 = repeat("]", 100);
	if (asprintf(&text, "a: &x %s1%s\nb: %s*x%s\n", open, close, open2, close2) >= 0) {
		expect_error("t.yaml", text, "t.yaml: line 2: nesting deeper than 256 levels");
		free(text);
	}
	free(open);
	free(close);
	free(open2);
	free(close2);
}

static void test_aliases(void)
{
	static const char text[] = "base: &b\n"
				   "  x: 1\n"
				   "  y: [a, {z: b}]\n"
				   "copy: *b\n"
				   "s: &s hello\n"
				   "t: *s\n"
				   "list: [*s, *b]\n"
				   "r1: &r 1\n"
				   "r2: &r 2\n"
				   "r3: *r\n";
	struct svc_docs d;
	struct svc_err e;
	const cJSON *j;

	CHECK(parse("a.yaml", text, &d, &e) == 0 && d.n == 1);
	if (d.n != 1) {
		manifest_docs_free(&d);
		return;
	}
	j = d.v[0].json;
	CHECK(cJSON_Compare(at(j, "base"), at(j, "copy"), 1));
	CHECK(at(j, "base") != at(j, "copy") && at(j, "base.y") != at(j, "copy.y"));
	CHECK_STR(at(j, "copy")->string, "copy");
	CHECK_STR(str_at(j, "copy.y.1.z"), "b");
	CHECK_STR(str_at(j, "t"), "hello");
	CHECK_STR(str_at(j, "list.0"), "hello");
	CHECK(at(j, "list.0")->string == NULL);
	CHECK(cJSON_Compare(at(j, "list.1"), at(j, "base"), 1));
	CHECK(at(j, "list.1")->string == NULL);
	CHECK(num_is(j, "r3", 2)); /* a redefined anchor means the latest */
	manifest_docs_free(&d);

	expect_error("a.yaml", "a: 1\nb: *nope\n",
		     "a.yaml: line 2: alias '*nope' does not name an earlier anchor");
	expect_error("a.yaml", "a: &x [1, *x]\n", "line 1: alias '*x' does not name");
	expect_error("a.yaml", "a: &x 1\n---\nb: *x\n", "a.yaml: line 3: alias '*x'");
}

static void test_alias_bomb(void)
{
	static const char text[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
				   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
				   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
				   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
				   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
				   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
				   "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_error("bomb.yaml", text,
		     "bomb.yaml: line 7: aliases expand to more than 1000000 nodes");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Generous, for valgrind; unbounded it would not finish at all. */
	CHECK(t1.tv_sec - t0.tv_sec < 20);
}

static void test_empty(void)
{
	static const char *const texts[] = {
	    "",	  "   \n\n", "# only a comment\n",	   "---\n---\n...\n", "--- ~\n",
	    "[]", " [ ]\n",  "--- null\n---\n# nothing\n",
	};
	struct svc_docs d;
	struct svc_err e;

	CHECK(manifest_parse("e.yaml", NULL, 0, &d, &e) == 0 && d.n == 0 && d.v == NULL);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		CHECK(parse("e.yaml", texts[i], &d, &e) == 0);
		CHECK(d.n == 0);
		manifest_docs_free(&d);
	}
	/* Empty documents are not counted. */
	CHECK(parse("e.yaml", "---\n---\na: 1\n---\n---\n- x\n", &d, &e) < 0);
	CHECK_HAS(e.msg, "document 2 (line 6)");
	manifest_docs_free(NULL);
}

static void test_crlf_and_big(void)
{
	struct svc_docs d;
	struct svc_err e;
	char *text;
	size_t n = 20000, len;

	CHECK(parse("w.yaml", "a: 1\r\nb: \"2\"\r\n---\r\nc: 3\r\n", &d, &e) == 0);
	CHECK(d.n == 2 && d.v[1].line == 4 && num_is(d.v[1].json, "c", 3));
	manifest_docs_free(&d);

	/* Many items and keys stay linear (labels, lines, duplicate checks). */
	text = malloc(n * 40 + 64);
	len = (size_t)sprintf(text, "kind: List\nitems:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "- {kind: A, k%zu: %zu}\n", i, i);
	CHECK(parse("big.yaml", text, &d, &e) == 0 && d.n == n);
	CHECK(d.n == n && d.v[n - 1].line == (int)n + 2);
	CHECK(d.n == n && !strcmp(d.v[n - 1].label, "document 1 items[19999]"));
	manifest_docs_free(&d);
	len = (size_t)sprintf(text, "a:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "  k%zu: %zu\n", i, i);
	sprintf(text + len, "  k7: dup\n");
	expect_error("big.yaml", text, "big.yaml: line 20002: duplicate key 'k7'");
	free(text);
}

static cJSON *tricky_object(void)
{
	static const char *const strings[] = {
	    "true",
	    "0123",
	    "",
	    " x",
	    "x ",
	    "a: b",
	    "null",
	    "1e3",
	    "line 1\nline 2\n",
	    "no\ntrailing newline",
	    "  indented\nblock\n",
	    "\n",
	    "\nx",
	    "trailing\n\n",
	    "yes",
	    "No",
	    "on",
	    "~",
	    "-",
	    "- x",
	    "#c",
	    "a #b",
	    "[x]",
	    "{y}",
	    "0x1F",
	    "0o17",
	    ".inf",
	    ".5",
	    "-1",
	    "+1",
	    "1_000",
	    "12:30",
	    "2001-12-14",
	    "1.2.3",
	    "héllo wörld",
	    "\xf0\x9f\x98\x80 \xe2\x82\xac",
	    "a\tb",
	    "it's \"q\"",
	    "*x",
	    "&x",
	    "!x",
	    "%x",
	    "@x",
	    "`x",
	    "|",
	    ">",
	    "?",
	    "<<",
	    "=",
	    "'",
	    "\"",
	    "9007199254740993",
	    "back\\slash",
	    "\001ctl",
	    "tail space \nx",
	};
	cJSON *o = cJSON_CreateObject(), *nested = cJSON_CreateObject(), *list;
	char key[32], longkey[201];

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(key, sizeof(key), "s%zu", i);
		cJSON_AddStringToObject(o, key, strings[i]);
	}
	cJSON_AddNumberToObject(o, "n0", 0);
	cJSON_AddNumberToObject(o, "n42", 42);
	cJSON_AddNumberToObject(o, "neg", -1);
	cJSON_AddNumberToObject(o, "frac", 1.5);
	cJSON_AddNumberToObject(o, "tenth", 0.1);
	cJSON_AddNumberToObject(o, "tiny", 1e-7);
	cJSON_AddNumberToObject(o, "big", 1e20);
	cJSON_AddNumberToObject(o, "e16", 1e16);
	cJSON_AddNumberToObject(o, "two53", 9007199254740992.0);
	cJSON_AddNumberToObject(o, "max", 9007199254740991.0);
	cJSON_AddNumberToObject(o, "min", -9007199254740991.0);
	cJSON_AddTrueToObject(o, "yes");
	cJSON_AddFalseToObject(o, "no");
	cJSON_AddNullToObject(o, "nothing");
	cJSON_AddObjectToObject(o, "emptyo");
	cJSON_AddArrayToObject(o, "emptya");
	cJSON_AddNumberToObject(o, "true", 1);
	cJSON_AddNumberToObject(o, "1", 2);
	cJSON_AddNumberToObject(o, "a b", 3);
	cJSON_AddNumberToObject(o, "", 4);
	cJSON_AddNumberToObject(o, "key: x", 5);
	cJSON_AddNumberToObject(o, "multi\nline key", 6);
	memset(longkey, 'k', 200);
	longkey[200] = '\0';
	cJSON_AddNumberToObject(o, longkey, 7);
	list = cJSON_AddArrayToObject(nested, "list");
	cJSON_AddItemToArray(list, cJSON_Parse("{\"a\": 1, \"b\": [\"x\", {}]}"));
	cJSON_AddItemToArray(list, cJSON_Parse("[1, [2, []], \"true\"]"));
	cJSON_AddItemToArray(list, cJSON_CreateString("0123"));
	cJSON_AddItemToObject(nested, "m", cJSON_Parse("{\"k\": \"v\", \"e\": {}}"));
	cJSON_AddItemToObject(o, "nested", nested);
	return o;
}

static void report_diff(const cJSON *want, const cJSON *got, const char *yaml, const char *err)
{
	fprintf(stderr, "emitted:\n%s\nerror: %s\n", yaml, err);
	for (const cJSON *w = want->child; w && got; w = w->next) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);

		if (!g || !cJSON_Compare(w, g, 1))
			fprintf(stderr, "differs: key \"%s\"\n", w->string);
	}
}

static void test_round_trip(void)
{
	cJSON *o = tricky_object();
	struct svc_docs d;
	struct svc_err e;
	char *yaml = manifest_yaml_emit(o, &e);

	CHECK(yaml != NULL);
	if (!yaml) {
		fprintf(stderr, "%s\n", e.msg);
		cJSON_Delete(o);
		return;
	}
	CHECK(parse("rt.yaml", yaml, &d, &e) == 0 && d.n == 1);
	CHECK(d.n == 1 && cJSON_Compare(o, d.v[0].json, 1));
	if (d.n != 1 || !cJSON_Compare(o, d.v[0].json, 1))
		report_diff(o, d.n ? d.v[0].json : NULL, yaml, e.msg);
	manifest_docs_free(&d);
	CHECK_HAS(yaml, "s0: 'true'\n");
	CHECK_HAS(yaml, "s1: '0123'\n");
	CHECK_HAS(yaml, "s2: ''\n");
	CHECK_HAS(yaml, "s8: |\n  line 1\n  line 2\n");
	CHECK_HAS(yaml, "n42: 42\n");
	CHECK_HAS(yaml, "neg: -1\n");
	CHECK_HAS(yaml, "frac: 1.5\n");
	CHECK_HAS(yaml, "tenth: 0.1\n");
	CHECK_HAS(yaml, "e16: 1e+16\n");
	CHECK_HAS(yaml, "max: 9007199254740991\n");
	CHECK_HAS(yaml, "emptyo: {}\n");
	CHECK_HAS(yaml, "emptya: []\n");
	CHECK_HAS(yaml, "'true': 1\n");
	CHECK_HAS(yaml, "nested:\n  list:\n  - a: 1\n");
	CHECK(strstr(yaml, "42.0") == NULL);
	free(yaml);
	cJSON_Delete(o);
}

static void test_emit_other(void)
{
	struct svc_docs d;
	struct svc_err e;
	cJSON *j = cJSON_CreateString("true"), *deep, *cur;
	char *yaml = manifest_yaml_emit(j, &e);

	CHECK(yaml && !strncmp(yaml, "'true'", 6));
	free(yaml);
	cJSON_Delete(j);

	j = cJSON_CreateNumber(NAN);
	yaml = manifest_yaml_emit(j, &e);
	CHECK(yaml && !strncmp(yaml, ".nan", 4));
	free(yaml);
	cJSON_Delete(j);

	/* cJSON_Compare cannot compare infinities, so check them by hand. */
	j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "p", INFINITY);
	cJSON_AddNumberToObject(j, "n", -INFINITY);
	yaml = manifest_yaml_emit(j, &e);
	CHECK_STR(yaml, "p: .inf\n'n': -.inf\n"); /* n is a YAML 1.1 boolean */
	/* Reading them back is refused: a manifest becomes JSON, which has no
	 * infinities or NaN. */
	CHECK(yaml && parse("inf.yaml", yaml, &d, &e) < 0);
	CHECK_HAS(e.msg, "inf.yaml: line 1: .inf is not a number JSON can hold");
	CHECK(parse("nan.yaml", "a: 1\nb: .nan\n", &d, &e) < 0);
	CHECK_HAS(e.msg, "nan.yaml: line 2: .nan is not a number JSON can hold");
	free(yaml);
	cJSON_Delete(j);

	j = cJSON_Parse("[1, \"2\", {\"a\": null}]");
	yaml = manifest_yaml_emit(j, &e);
	CHECK_STR(yaml, "- 1\n- '2'\n- a: null\n");
	free(yaml);
	cJSON_Delete(j);

	/* Invalid UTF-8 is refused as such, not blamed on memory. */
	static const char *const bad_utf8[] = {"\xff\xfe", "ok \xc3", "\xed\xa0\x80", "\xc0\xaf",
					       "\xf4\x90\x80\x80"};
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "bad", bad_utf8[i]);
		CHECK(manifest_yaml_emit(j, &e) == NULL);
		CHECK(e.code == EINVAL);
		CHECK_HAS(e.msg, "is not valid UTF-8");
		cJSON_Delete(j);
	}

	deep = cur = cJSON_CreateArray();
	for (int i = 0; i < 1100; i++) {
		cJSON *next = cJSON_CreateArray();
		cJSON_AddItemToArray(cur, next);
		cur = next;
	}
	CHECK(manifest_yaml_emit(deep, &e) == NULL);
	CHECK_HAS(e.msg, "nesting deeper than");
	cJSON_Delete(deep);
	CHECK(manifest_yaml_emit(NULL, &e) == NULL);
}

int main(void)
{
	test_kubernetes_yaml();
	test_json();
	test_list();
	test_typing();
	test_syntax_errors();
	test_structure_errors();
	test_depth();
	test_aliases();
	test_alias_bomb();
	test_empty();
	test_crlf_and_big();
	test_round_trip();
	test_emit_other();
	return UNIT_DONE("manifest");
}
