// SPDX-License-Identifier: MIT
/* The image store: references, loading an image's config, listing and
 * removing.  The import itself is in image_import.c. */
#include "image.h"

#include "err.h"
#include "fsutil.h"
#include "image_int.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* An escaped ref plus file_write_atomic's ".tmp-<pid>-" fits in NAME_MAX. */
#define REF_FILE_MAX 200
#define NAME_LEN_MAX 255 /* Docker's limit on the repository name */
#define TAG_LEN_MAX  128

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A path component: [a-z0-9]+ joined by ".", "_", "__" or a run of "-". */
static bool component_ok(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (!lower_alnum(s[i]))
			return false;
		while (i < n && lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
		if (i == n)
			return false;
	}
	return n > 0;
}

/* A registry host: DNS labels joined by dots, then an optional :port. */
static bool domain_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t host = colon ? (size_t)(colon - s) : n;

	for (size_t i = host + 1; colon && i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	if (!host || (colon && host + 1 == n))
		return false;
	for (size_t i = 0; i < host; i++) {
		bool edge = i == 0 || i + 1 == host || s[i - 1] == '.' || s[i + 1] == '.';

		if (!isalnum((unsigned char)s[i]) && !(s[i] == '-' && !edge) &&
		    !(s[i] == '.' && !edge))
			return false;
	}
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);

	if (!n || n > TAG_LEN_MAX || t[0] == '.' || t[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && !strchr("_.-", t[i]))
			return false;
	return true;
}

/* Check every "/"-separated component of the repository path. */
static const char *path_problem(const char *p)
{
	for (const char *c = p; *c; c++)
		if (isupper((unsigned char)*c))
			return "repository name must be lowercase";
	while (*p) {
		size_t n = strcspn(p, "/");

		if (!component_ok(p, n))
			return "invalid repository name";
		p += n + (p[n] == '/');
		if (p[-1] == '/' && !*p)
			return "invalid repository name";
	}
	return NULL;
}

/* Docker's familiar form: docker.io and library/ are implied. */
static const char *familiar(const char *name, size_t *dlen)
{
	const char *slash = strchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : 0;
	bool domain = slash && (memchr(name, '.', n) || memchr(name, ':', n) ||
				(n == 9 && !memcmp(name, "localhost", 9)));

	for (size_t i = 0; slash && !domain && i < n; i++)
		domain = isupper((unsigned char)name[i]);
	*dlen = domain ? n : 0;
	if (domain && ((n == 9 && !memcmp(name, "docker.io", 9)) ||
		       (n == 15 && !memcmp(name, "index.docker.io", 15)))) {
		name = slash + 1;
		*dlen = 0;
	}
	if (!*dlen && !strncmp(name, "library/", 8) && !strchr(name + 8, '/'))
		name += 8;
	return name;
}

static size_t escaped_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '/' || *s == ':' ? 3 : 1;
	return n;
}

/* NULL when ref is valid (out then holds NAME:TAG), else what is wrong. */
static const char *normalize(const char *ref, char *out, size_t n)
{
	char name[IMAGE_REF_MAX * 2];
	const char *slash = strrchr(ref, '/'), *colon, *tag = "latest", *fam, *path, *p;
	size_t len, dlen;

	if (!*ref)
		return "empty reference";
	if (strchr(ref, '@'))
		return "digest references are not supported";
	if (strlen(ref) >= sizeof(name))
		return "reference too long";
	colon = strchr(slash ? slash : ref, ':');
	len = colon ? (size_t)(colon - ref) : strlen(ref);
	snprintf(name, sizeof(name), "%.*s", (int)len, ref);
	if (colon)
		tag = colon + 1;
	if (!tag_ok(tag))
		return "invalid tag";
	fam = familiar(name, &dlen);
	if (dlen && !domain_ok(fam, dlen))
		return "invalid registry host";
	path = fam + (dlen ? dlen + 1 : 0);
	if (!*path)
		return "empty repository name";
	if ((p = path_problem(path)))
		return p;
	if (strlen(fam) > NAME_LEN_MAX || (size_t)snprintf(out, n, "%s:%s", fam, tag) >= n ||
	    escaped_len(out) > REF_FILE_MAX)
		return "reference too long";
	return NULL;
}

int image_ref_normalize(const char *ref, char *out, size_t n, struct svc_err *e)
{
	const char *why = normalize(ref, out, n);

	if (why)
		return svc_errf(e, EINVAL, "invalid image reference \"%.300s\": %s", ref, why);
	return 0;
}

/* '/' and ':' percent-encoded: a valid ref has no '%', so this is one to one. */
static void ref_escape(const char *ref, char out[static REF_FILE_MAX + 1])
{
	size_t n = 0;

	for (; *ref && n + 3 <= REF_FILE_MAX; ref++) {
		if (*ref == '/' || *ref == ':')
			n += (size_t)sprintf(out + n, "%%%02X", (unsigned char)*ref);
		else
			out[n++] = *ref;
	}
	out[n] = '\0';
}

static int ref_unescape(const char *file, char *out, size_t n)
{
	size_t k = 0;

	for (; *file; file++) {
		char c = *file;

		if (c == '%') {
			if (strncmp(file, "%2F", 3) && strncmp(file, "%3A", 3))
				return -EINVAL;
			c = file[1] == '2' ? '/' : ':';
			file += 2;
		}
		if (k + 1 >= n)
			return -ENAMETOOLONG;
		out[k++] = c;
	}
	out[k] = '\0';
	return 0;
}

bool image_id_valid(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!isxdigit((unsigned char)id[n]) || isupper((unsigned char)id[n]))
			return false;
	return n == 64;
}

int image_store_open(const char *dir, bool create, struct image_store *s, struct svc_err *e)
{
	int r;

	s->dfd = s->refs = -1;
	if (create && (r = mkdir_p(dir, 0755)))
		return svc_errf(e, -r, "creating %s: %s", dir, strerror(-r));
	s->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0)
		return svc_errf(e, errno, "opening %s: %s", dir, strerror(errno));
	if (create && mkdirat(s->dfd, "refs", 0755) && errno != EEXIST)
		r = -errno;
	else
		r = (s->refs = openat(s->dfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
			? -errno
			: 0;
	if (r) {
		image_store_close(s);
		return svc_errf(e, -r, "opening %s/refs: %s", dir, strerror(-r));
	}
	return 0;
}

void image_store_close(struct image_store *s)
{
	if (s->refs >= 0)
		close(s->refs);
	if (s->dfd >= 0)
		close(s->dfd);
	s->dfd = s->refs = -1;
}

int image_store_lock(struct image_store *s, struct svc_err *e)
{
	while (flock(s->dfd, LOCK_EX))
		if (errno != EINTR)
			return svc_errf(e, errno, "locking the image store: %s", strerror(errno));
	return 0;
}

int image_ref_read(const struct image_store *s, const char *ref, char id[static 65])
{
	char file[REF_FILE_MAX + 1], *buf = NULL;
	size_t len;
	int r;

	ref_escape(ref, file);
	if ((r = file_read_all(s->refs, file, 128, &buf, &len)))
		return r;
	while (len && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	r = image_id_valid(buf) ? 0 : -EINVAL;
	if (!r)
		memcpy(id, buf, 65);
	free(buf);
	return r;
}

int image_ref_write(const struct image_store *s, const char *ref, const char *id, struct svc_err *e)
{
	char file[REF_FILE_MAX + 1], line[66];

	ref_escape(ref, file);
	snprintf(line, sizeof(line), "%s\n", id);
	if (file_write_atomic(s->refs, file, line, strlen(line), 0644, e))
		return svc_err_ctx(e, "tagging %s", ref);
	return 0;
}

/* The refs, as file names; *n of them, each malloc'd. */
static int ref_files(const struct image_store *s, char ***out, size_t *n)
{
	int fd = openat(s->refs, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0;
	DIR *d;

	*n = 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", file_write_atomic's temp files */
		if (*n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	closedir(d);
	*out = v;
	return de ? -ENOMEM : 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

bool image_id_in_use(const struct image_store *s, const char *id)
{
	char **files, ref[IMAGE_REF_MAX], other[65];
	size_t n;
	bool used = false;

	if (ref_files(s, &files, &n))
		return true; /* when unsure, keep the image */
	for (size_t i = 0; i < n && !used; i++)
		used = !ref_unescape(files[i], ref, sizeof(ref)) &&
		       !image_ref_read(s, ref, other) && !strcmp(other, id);
	strv_free(files, n);
	return used;
}

int image_drop(const struct image_store *s, const char *id)
{
	char aside[128];

	snprintf(aside, sizeof(aside), IMAGE_TMP_PREFIX "%d-rm-%s", (int)getpid(), id);
	if (renameat(s->dfd, id, s->dfd, aside))
		return errno == ENOENT ? 0 : -errno;
	fsync(s->dfd);
	return remove_tree(s->dfd, aside);
}

/* NULL, or a NULL-terminated copy of an array of strings. */
static int json_strv(const cJSON *o, const char *key, char ***out, struct svc_err *e)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *it;
	size_t n = 0;

	*out = NULL;
	if (!a || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return svc_errf(e, EINVAL, "config.%s: not a list of strings", key);
	if (!(*out = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(char *))))
		return svc_errf(e, ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, a)
	{
		if (!cJSON_IsString(it))
			return svc_errf(e, EINVAL, "config.%s: not a list of strings", key);
		if (!((*out)[n++] = strdup(it->valuestring)))
			return svc_errf(e, ENOMEM, "out of memory");
	}
	return 0;
}

/* NULL when absent or empty: Docker writes "" for unset. */
static int json_str(const cJSON *o, const char *key, char **out, struct svc_err *e)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (!s || cJSON_IsNull(s))
		return 0;
	if (!cJSON_IsString(s))
		return svc_errf(e, EINVAL, "config.%s: not a string", key);
	if (*s->valuestring && !(*out = strdup(s->valuestring)))
		return svc_errf(e, ENOMEM, "out of memory");
	return 0;
}

/* {"8080/tcp": {}, "53/udp": {}}: the numbers, each once. */
static int json_ports(const cJSON *o, struct image *img, struct svc_err *e)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "ExposedPorts"), *it;

	if (!p || cJSON_IsNull(p))
		return 0;
	if (!cJSON_IsObject(p))
		return svc_errf(e, EINVAL, "config.ExposedPorts: not an object");
	if (!(img->ports = calloc((size_t)cJSON_GetArraySize(p) + 1, sizeof(*img->ports))))
		return svc_errf(e, ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, p)
	{
		char *end;
		unsigned long v = strtoul(it->string, &end, 10);
		bool dup = false;

		if (!isdigit((unsigned char)it->string[0]) || v < 1 || v > 65535 ||
		    (*end && strcmp(end, "/tcp") && strcmp(end, "/udp") && strcmp(end, "/sctp")))
			return svc_errf(e, EINVAL, "config.ExposedPorts: bad port \"%.64s\"",
					it->string);
		for (size_t i = 0; i < img->n_ports; i++)
			dup |= img->ports[i] == v;
		if (!dup)
			img->ports[img->n_ports++] = (uint16_t)v;
	}
	return 0;
}

static int parse_config_obj(const cJSON *c, struct image *img, struct svc_err *e)
{
	int r;

	if ((r = json_strv(c, "Entrypoint", &img->entrypoint, e)) ||
	    (r = json_strv(c, "Cmd", &img->cmd, e)) || (r = json_strv(c, "Env", &img->env, e)) ||
	    (r = json_str(c, "WorkingDir", &img->workdir, e)) ||
	    (r = json_str(c, "User", &img->user, e)))
		return r;
	return json_ports(c, img, e);
}

int image_parse_config(const char *json, size_t len, struct image *img, struct svc_err *e)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "config");
	int r = 0;

	if (!cJSON_IsObject(root))
		r = svc_errf(e, EINVAL, "not a JSON object");
	else if (c && !cJSON_IsNull(c) && !cJSON_IsObject(c))
		r = svc_errf(e, EINVAL, "config: not an object");
	else if (c && cJSON_IsObject(c))
		r = parse_config_obj(c, img, e);
	cJSON_Delete(root);
	return r;
}

/* size and imported from info.json; a missing file only loses them. */
static void load_info(int idfd, struct image *img)
{
	char *buf = NULL;
	cJSON *root, *it;

	if (file_read_all(idfd, IMAGE_INFO_FILE, 4096, &buf, NULL))
		return;
	root = cJSON_Parse(buf);
	if ((it = cJSON_GetObjectItemCaseSensitive(root, "size")) && cJSON_IsNumber(it))
		img->size = (int64_t)it->valuedouble;
	if ((it = cJSON_GetObjectItemCaseSensitive(root, "imported")) && cJSON_IsString(it))
		parse_rfc3339(it->valuestring, &img->imported);
	cJSON_Delete(root);
	free(buf);
}

static int load_id(const struct image_store *s, const char *dir, const char *ref, const char *id,
		   struct image *img, struct svc_err *e)
{
	char real[PATH_MAX], *json = NULL;
	size_t len;
	int idfd = openat(s->dfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (idfd < 0)
		return svc_errf(e, errno, "image %s (%.12s): %s", ref, id, strerror(errno));
	r = file_read_all(idfd, IMAGE_CONFIG_FILE, IMAGE_JSON_MAX, &json, &len);
	if (r)
		svc_errf(e, -r, "image %s: reading %s: %s", ref, IMAGE_CONFIG_FILE, strerror(-r));
	else if ((r = image_parse_config(json, len, img, e)))
		svc_err_ctx(e, "image %s: %s", ref, IMAGE_CONFIG_FILE);
	free(json);
	if (!r)
		load_info(idfd, img);
	close(idfd);
	if (r)
		return r;
	if (!realpath(dir, real))
		return svc_errf(e, errno, "%s: %s", dir, strerror(errno));
	if (asprintf(&img->rootfs, "%s/%s/rootfs", real, id) < 0)
		img->rootfs = NULL;
	if (!img->rootfs || !(img->ref = strdup(ref)) || !(img->id = strdup(id)))
		return svc_errf(e, ENOMEM, "out of memory");
	return 0;
}

static int load_ref(const struct image_store *s, const char *dir, const char *ref,
		    struct image *out, struct svc_err *e)
{
	char id[65];
	int r = image_ref_read(s, ref, id);

	memset(out, 0, sizeof(*out));
	if (r == -ENOENT)
		return svc_errf(e, ENOENT, "image %s not found", ref);
	if (r)
		return svc_errf(e, -r, "image %s: reading its ref: %s", ref, strerror(-r));
	r = load_id(s, dir, ref, id, out, e);
	if (r)
		image_free(out);
	return r;
}

int image_load(const char *dir, const char *ref, struct image *out, struct svc_err *e)
{
	struct image_store s;
	char nref[IMAGE_REF_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = image_ref_normalize(ref, nref, sizeof(nref), e)))
		return r;
	if ((r = image_store_open(dir, false, &s, e)))
		return r == -ENOENT ? svc_errf(e, ENOENT, "image %s not found", nref) : r;
	r = load_ref(&s, dir, nref, out, e);
	image_store_close(&s);
	return r;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void image_free(struct image *img)
{
	if (!img)
		return;
	free(img->ref);
	free(img->id);
	free(img->rootfs);
	free_strv(img->entrypoint);
	free_strv(img->cmd);
	free_strv(img->env);
	free(img->workdir);
	free(img->user);
	free(img->ports);
	memset(img, 0, sizeof(*img));
}

static int by_ref(const void *a, const void *b)
{
	return strcmp(((const struct image *)a)->ref, ((const struct image *)b)->ref);
}

/* A ref file name that does not decode to a normalised ref is no ref. */
static bool ref_from_file(const char *file, char ref[static IMAGE_REF_MAX])
{
	char again[IMAGE_REF_MAX];

	return !ref_unescape(file, ref, IMAGE_REF_MAX) && !normalize(ref, again, sizeof(again)) &&
	       !strcmp(ref, again);
}

static int list_refs(const struct image_store *s, const char *dir, struct image **out, size_t *n,
		     struct svc_err *e)
{
	char **files, ref[IMAGE_REF_MAX];
	size_t nf;
	int r = ref_files(s, &files, &nf);

	if (r)
		return svc_errf(e, -r, "reading %s/refs: %s", dir, strerror(-r));
	if (nf && !(*out = calloc(nf, sizeof(**out))))
		r = svc_errf(e, ENOMEM, "out of memory");
	for (size_t i = 0; !r && i < nf; i++)
		if (ref_from_file(files[i], ref) && !(r = load_ref(s, dir, ref, &(*out)[*n], e)))
			(*n)++;
	strv_free(files, nf);
	return r;
}

int image_list(const char *dir, struct image **out, size_t *n, struct svc_err *e)
{
	struct image_store s;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = image_store_open(dir, false, &s, e)))
		return r == -ENOENT ? 0 : r; /* no store yet: no images */
	r = list_refs(&s, dir, out, n, e);
	image_store_close(&s);
	if (r) {
		for (size_t i = 0; i < *n; i++)
			image_free(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		return r;
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), by_ref);
	return 0;
}

static int remove_ref(struct image_store *s, const char *ref, struct svc_err *e)
{
	char id[65], file[REF_FILE_MAX + 1];
	int r = image_store_lock(s, e);

	if (r)
		return r;
	r = image_ref_read(s, ref, id);
	if (r == -ENOENT)
		return svc_errf(e, ENOENT, "image %s not found", ref);
	ref_escape(ref, file);
	if (unlinkat(s->refs, file, 0))
		return svc_errf(e, errno, "removing the ref %s: %s", ref, strerror(errno));
	fsync(s->refs);
	/* A ref that held no valid id is gone; there is no image to look at. */
	if (r || image_id_in_use(s, id))
		return 0;
	if ((r = image_drop(s, id)))
		return svc_errf(e, -r, "removing image %.12s: %s", id, strerror(-r));
	return 0;
}

int image_remove(const char *dir, const char *ref, struct svc_err *e)
{
	struct image_store s;
	char nref[IMAGE_REF_MAX];
	int r;

	if ((r = image_ref_normalize(ref, nref, sizeof(nref), e)))
		return r;
	if ((r = image_store_open(dir, false, &s, e)))
		return r == -ENOENT ? svc_errf(e, ENOENT, "image %s not found", nref) : r;
	r = remove_ref(&s, nref, e);
	image_store_close(&s);
	return r;
}
