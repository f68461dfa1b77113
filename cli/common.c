// SPDX-License-Identifier: MIT
/* Helpers every subcommand uses: options, errors, the request/response
 * exchange, manifest sources and -o json/yaml. */
#include "svcctl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "kinds.h"
#include "manifest.h"
#include "util.h"

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("svcctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_ERROR;
}

int ctl_usage_error(const char *usage, const char *fmt, ...)
{
	const char *end;
	va_list ap;

	fputs("svcctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* The synopsis lines only ("Usage:" and the indented "svcctl ..." ones);
	 * --help has the option lines ("  -f, ..."). */
	for (end = usage; (end = strstr(end, "\n  ")) && end[3] == ' '; end++)
		;
	fprintf(stderr, "\n%.*s", end ? (int)(end - usage + 1) : (int)strlen(usage), usage);
	return CTL_USAGE;
}

void ctl_put_clean(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		putc((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : ch, f);
	}
}

int ctl_parse_timeout(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end), unit = 1;

	if (end == s)
		return -EINVAL;
	if (*end == 'm' || *end == 'h')
		unit = *end++ == 'm' ? 60 : 3600;
	else if (*end == 's')
		end++;
	v *= unit;
	if (*end || !isfinite(v) || v < 0 || v > 1e6)
		return -EINVAL;
	*ms = (int)ceil(v * 1000);
	return 0;
}

int ctl_option(struct ctl *ctl, int opt, char **argv, const char *usage)
{
	switch (opt) {
	case OPT_SOCKET:
		if (!*optarg)
			return ctl_usage_error(usage, "--socket needs a path");
		ctl->socket = optarg;
		return -1;
	case OPT_TIMEOUT:
		if (ctl_parse_timeout(optarg, &ctl->timeout_ms))
			return ctl_usage_error(
			    usage, "invalid --timeout \"%s\": want seconds, e.g. 30", optarg);
		ctl->timeout_set = true;
		return -1;
	case 'h':
		fputs(usage, stdout);
		return CTL_OK;
	case ':':
		return ctl_usage_error(usage, "option %s needs a value", argv[optind - 1]);
	default:
		if (optopt && optopt < 0x100)
			return ctl_usage_error(usage, "unknown option -%c", optopt);
		return ctl_usage_error(usage, "unknown option %s", argv[optind - 1]);
	}
}

int ctl_open(const struct ctl *ctl, struct ctl_client *c, int timeout_ms)
{
	struct svc_err e = {0};

	if (ctl_client_connect(c, ctl->socket, timeout_ms, &e))
		return ctl_fail("%s", e.msg);
	return CTL_OK;
}

void ctl_print_refusal_for(const cJSON *resp, const struct ctl_kind *k, const char *name)
{
	if (!ctl_json_str(resp, "error") && !strcmp(ctl_reason(resp), "NotFound"))
		fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", k->plural,
			name);
	else
		ctl_print_refusal(resp, true);
}

static void print_warnings(const cJSON *resp)
{
	const cJSON *w;

	cJSON_ArrayForEach(w, ctl_json_arr(resp, "warnings"))
	{
		if (!cJSON_IsString(w) || !w->valuestring)
			continue;
		fputs("Warning: ", stderr);
		ctl_put_clean(stderr, w->valuestring);
		fputc('\n', stderr);
	}
}

enum ctl_call ctl_call(struct ctl_client *c, const cJSON *req, cJSON **resp, const char *what)
{
	struct svc_err e = {0};
	const cJSON *ok;
	int r = ctl_client_send(c, req, &e);

	*resp = NULL;
	if (!r)
		r = ctl_client_recv(c, resp, &e);
	if (r > 0)
		svc_errf(&e, EPROTO, "svcd closed the connection without answering");
	if (r) {
		ctl_fail("%s%s%s", what ? what : "", what ? ": " : "", e.msg);
		return CALL_BROKEN;
	}
	ok = cJSON_GetObjectItemCaseSensitive(*resp, "ok");
	if (!cJSON_IsBool(ok)) {
		cJSON_Delete(*resp);
		*resp = NULL;
		ctl_fail("svcd sent a response without \"ok\"");
		return CALL_BROKEN;
	}
	print_warnings(*resp);
	return cJSON_IsTrue(ok) ? CALL_OK : CALL_REFUSED;
}

const char *ctl_reason(const cJSON *resp)
{
	const char *r = ctl_json_str(resp, "reason");

	return r ? r : "";
}

void ctl_print_refusal(const cJSON *resp, bool kube)
{
	const char *msg = ctl_json_str(resp, "error"), *reason = ctl_json_str(resp, "reason");

	if (!msg || !*msg)
		msg = "svcd refused the request without saying why";
	if (kube && reason && *reason) {
		fputs("Error from server (", stderr);
		ctl_put_clean(stderr, reason);
		fputs("): ", stderr);
	} else {
		fputs("error: ", stderr);
	}
	ctl_put_clean(stderr, msg);
	fputc('\n', stderr);
}

void ctl_print_results(const cJSON *resp, bool quoted)
{
	struct sbuf line = {0};
	const cJSON *r;

	cJSON_ArrayForEach(r, ctl_json_arr(resp, "results"))
	{
		const char *name = ctl_json_str(r, "name"), *action = ctl_json_str(r, "action");

		line.len = 0;
		if (ctl_kind_resource(&line, ctl_json_str(r, "kind")) ||
		    sbuf_addf(&line, quoted ? " \"%s\" %s" : "/%s %s", name ? name : "",
			      action ? action : "done"))
			continue;
		ctl_put_clean(stdout, line.p);
		putchar('\n');
	}
	sbuf_free(&line);
}

static int read_fd(int fd, struct sbuf *b)
{
	struct stat st;
	size_t chunk = 64 << 10;

	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0) {
		if ((unsigned long long)st.st_size > CTL_MAX_REQUEST)
			return -EFBIG;
		chunk = (size_t)st.st_size + 1; /* one read, plus one to see EOF */
	}
	for (;;) {
		ssize_t r;

		if (sbuf_reserve(b, chunk))
			return -ENOMEM;
		r = read(fd, b->p + b->len, chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		b->len += (size_t)r;
		b->p[b->len] = '\0';
		if (r == 0)
			return 0;
		if (b->len > CTL_MAX_REQUEST)
			return -EFBIG;
	}
}

static int read_source(const char *path, struct ctl_source *s)
{
	bool in = !strcmp(path, "-");
	struct sbuf b = {0};
	int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	int err = fd < 0 ? -errno : read_fd(fd, &b);

	if (fd >= 0 && !in)
		close(fd);
	s->name = in ? "<stdin>" : path;
	if (!err && b.len && memchr(b.p, '\0', b.len))
		err = -EILSEQ;
	if (err == -EFBIG)
		ctl_fail("cannot read %s: larger than %u MiB", s->name, CTL_MAX_REQUEST >> 20);
	else if (err == -EILSEQ)
		ctl_fail("cannot read %s: contains a NUL byte, not a manifest", s->name);
	else if (err)
		ctl_fail("cannot read %s: %s", s->name, strerror(-err));
	s->text = err ? NULL : b.p;
	s->len = err ? 0 : b.len;
	if (err)
		sbuf_free(&b);
	return err ? CTL_ERROR : CTL_OK;
}

int ctl_read_sources(char **paths, size_t n, struct ctl_source *out)
{
	size_t stdin_uses = 0;

	for (size_t i = 0; i < n; i++)
		stdin_uses += !strcmp(paths[i], "-");
	if (stdin_uses > 1)
		return ctl_fail("-f - (stdin) can be given only once");
	for (size_t i = 0; i < n; i++) {
		if (read_source(paths[i], &out[i])) {
			ctl_free_sources(out, i);
			return CTL_ERROR;
		}
	}
	return CTL_OK;
}

void ctl_free_sources(struct ctl_source *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].text);
}

int ctl_parse_output(const char *s, unsigned allowed, enum ctl_output *out)
{
	static const char *const names[] = {
	    [OUT_WIDE] = "wide", [OUT_JSON] = "json", [OUT_YAML] = "yaml", [OUT_NAME] = "name"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (names[i] && (allowed & (1u << i)) && !strcmp(s, names[i])) {
			*out = (enum ctl_output)i;
			return 0;
		}
	}
	return -1;
}

static int write_out(const char *p, size_t n)
{
	if (fwrite(p, 1, n, stdout) != n)
		return ctl_fail("writing output: %s", strerror(errno));
	return CTL_OK;
}

int ctl_print_value(const cJSON *j, enum ctl_output out, bool yaml_sep)
{
	struct svc_err e = {0};
	struct sbuf b = {0};
	char *yaml;
	int ret;

	if (out == OUT_JSON) {
		ret = ctl_json_pretty(&b, j) ? ctl_fail("formatting JSON: out of memory")
					     : write_out(b.p, b.len);
		sbuf_free(&b);
		return ret;
	}
	yaml = manifest_yaml_emit(j, &e);
	if (!yaml)
		return ctl_fail("formatting YAML: %s", e.msg);
	ret = yaml_sep && strncmp(yaml, "---", 3) ? write_out("---\n", 4) : CTL_OK;
	if (!ret)
		ret = write_out(yaml, strlen(yaml));
	free(yaml);
	return ret;
}

int ctl_request(const struct ctl *ctl, const cJSON *req, cJSON **resp, int timeout_ms)
{
	struct ctl_client c;
	enum ctl_call r;

	*resp = NULL;
	if (!req)
		return ctl_fail("out of memory");
	if (ctl_open(ctl, &c, timeout_ms))
		return CTL_ERROR;
	r = ctl_call(&c, req, resp, NULL);
	ctl_client_close(&c);
	if (r == CALL_REFUSED)
		ctl_print_refusal(*resp, true);
	if (r != CALL_OK) {
		cJSON_Delete(*resp);
		*resp = NULL;
		return CTL_ERROR;
	}
	return CTL_OK;
}
