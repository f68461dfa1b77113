// SPDX-License-Identifier: MIT
/* image_import: `docker save` and OCI image-layout archives into the store.
 *
 * The archive is a stream whose members come in any order (docker save
 * writes manifest.json last), so the first pass unpacks all of it into a
 * private temp directory, <dir>/.tmp-<pid>-<random>/archive.  The manifests
 * are read from there, the layers applied in order into .../rootfs, and the
 * temp directory renamed to <dir>/<id> once complete. */
#include "image.h"

#include "err.h"
#include "fsutil.h"
#include "image_int.h"
#include "sha256.h"
#include "tar.h"
#include "unpack.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT_MAX  (64ull << 30) /* data unpacked in all: the archive's and every layer's */
#define ENTRIES_MAX 1000000	  /* members of the archive or of one layer */
#define LAYERS_MAX  128		  /* as Docker's overlay2 */
#define INDEX_DEPTH 4		  /* OCI indexes pointing to indexes */

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__i386__)
#define HOST_ARCH "386"
#elif defined(__arm__)
#define HOST_ARCH "arm"
#else
#define HOST_ARCH ""
#endif

/* A tar byte source over a file, hashing what it reads when asked to. */
struct src {
	int fd;
	struct sha256 *hash;
};

struct import {
	struct image_store st;
	const char *archive;
	char ref[IMAGE_REF_MAX];
	char tmp[64]; /* the temp directory under the store; "" once renamed */
	int tmpfd, archfd, rootfd;
	char *config, *config_path;
	size_t config_len;
	char id[65];
	char **layers;
	size_t n_layers;
	uint64_t budget; /* of IMPORT_MAX, what is left */
};

static ssize_t src_read(void *ctx, void *buf, size_t n)
{
	struct src *s = ctx;
	ssize_t k = read(s->fd, buf, n);

	if (k < 0)
		return -errno;
	if (s->hash)
		sha256_update(s->hash, buf, (size_t)k);
	return k;
}

static const cJSON *item(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *str_item(const cJSON *o, const char *key)
{
	const cJSON *s = item(o, key);

	return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* Content-addressed members say what they must hash to: OCI blobs
 * (blobs/sha256/<hex>) and the config of the old docker save (<hex>.json). */
static bool expected_digest(const char *path, char hex[static 65])
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);

	if ((base - path == 13 && !strncmp(path, "blobs/sha256/", 13)) ||
	    (base == path && n == 69 && !strcmp(base + 64, ".json"))) {
		snprintf(hex, 65, "%.64s", base);
		return image_id_valid(hex);
	}
	return false;
}

static int read_fd(int fd, size_t max, char **out, size_t *len)
{
	struct stat st;
	size_t got = 0;
	char *buf;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	if (!(buf = malloc((size_t)st.st_size + 1)))
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k <= 0) {
			free(buf);
			return k < 0 ? -errno : -EIO;
		}
		got += (size_t)k;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* A member of the archive (symlinks resolved inside it), digest checked. */
static int read_member(struct import *im, const char *name, size_t max, char **out, size_t *len,
		       struct svc_err *e)
{
	char path[PATH_MAX], hex[65], got[65];
	int fd, r = unpack_clean_path(name, path);

	if (r)
		return svc_errf(e, EINVAL, "%.200s: bad member name", name);
	if ((fd = unpack_open(im->archfd, path, O_RDONLY)) < 0)
		return svc_errf(e, -fd, "%s: %s", path,
				fd == -ENOENT ? "missing from the archive" : strerror(-fd));
	r = read_fd(fd, max, out, len);
	close(fd);
	if (r)
		return svc_errf(e, -r, "%s: %s", path, r == -EFBIG ? "too large" : strerror(-r));
	if (expected_digest(path, hex) && (sha256_buf_hex(*out, *len, got), strcmp(got, hex))) {
		free(*out);
		*out = NULL;
		return svc_errf(e, EINVAL, "%s: digest mismatch (content is sha256:%s)", path, got);
	}
	return 0;
}

static int read_json(struct import *im, const char *name, cJSON **out, struct svc_err *e)
{
	char *buf;
	size_t len;
	int r = read_member(im, name, IMAGE_JSON_MAX, &buf, &len, e);

	if (r)
		return r;
	*out = cJSON_ParseWithLength(buf, len);
	free(buf);
	return *out ? 0 : svc_errf(e, EINVAL, "%.200s: not valid JSON", name);
}

static bool member_exists(struct import *im, const char *name)
{
	int fd = unpack_open(im->archfd, name, O_PATH);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static int add_layer(struct import *im, const char *path, const char *where, struct svc_err *e)
{
	char clean[PATH_MAX], **v;

	if (unpack_clean_path(path, clean) || !*clean)
		return svc_errf(e, EINVAL, "%s: bad layer name \"%.200s\"", where, path);
	if (im->n_layers >= LAYERS_MAX)
		return svc_errf(e, EINVAL, "%s: more than %d layers", where, LAYERS_MAX);
	if (!(v = realloc(im->layers, (im->n_layers + 1) * sizeof(*v))))
		return svc_errf(e, ENOMEM, "out of memory");
	im->layers = v;
	if (!(v[im->n_layers] = strdup(clean)))
		return svc_errf(e, ENOMEM, "out of memory");
	im->n_layers++;
	return 0;
}

/* The manifest.json entry to import: the one tagged with our ref, else
 * the only one. */
static const cJSON *docker_pick(const cJSON *root, const char *ref, struct svc_err *e)
{
	const cJSON *it, *tag;

	cJSON_ArrayForEach(it, root)
	{
		cJSON_ArrayForEach(tag, item(it, "RepoTags"))
		{
			char norm[IMAGE_REF_MAX];

			if (cJSON_IsString(tag) &&
			    !image_ref_normalize(tag->valuestring, norm, sizeof(norm), NULL) &&
			    !strcmp(norm, ref))
				return it;
		}
	}
	if (cJSON_GetArraySize(root) == 1)
		return root->child;
	svc_errf(e, EINVAL, "manifest.json: the archive holds %d images and none is tagged %s",
		 cJSON_GetArraySize(root), ref);
	return NULL;
}

static int docker_manifest(struct import *im, struct svc_err *e)
{
	const cJSON *img, *layers = NULL, *it;
	const char *config;
	cJSON *root;
	int r = read_json(im, "manifest.json", &root, e);

	if (r)
		return r;
	if (!cJSON_IsArray(root) || !cJSON_GetArraySize(root))
		r = svc_errf(e, EINVAL, "manifest.json: no images listed");
	else if (!(img = docker_pick(root, im->ref, e)))
		r = -EINVAL;
	else if (!(config = str_item(img, "Config")))
		r = svc_errf(e, EINVAL, "manifest.json: no Config");
	else if (!cJSON_IsArray(layers = item(img, "Layers")))
		r = svc_errf(e, EINVAL, "manifest.json: Layers: not a list");
	else if (!(im->config_path = strdup(config)))
		r = svc_errf(e, ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, (r ? NULL : layers))
	{
		if (!cJSON_IsString(it))
			r = svc_errf(e, EINVAL, "manifest.json: Layers: not a list of strings");
		else
			r = add_layer(im, it->valuestring, "manifest.json", e);
		if (r)
			break;
	}
	cJSON_Delete(root);
	return r;
}

/* "sha256:<hex>" to the member that holds the blob. */
static int blob_path(const cJSON *desc, const char *where, char out[static 96], struct svc_err *e)
{
	const char *d = str_item(desc, "digest");

	if (!d)
		return svc_errf(e, EINVAL, "%s: a descriptor has no digest", where);
	if (strncmp(d, "sha256:", 7) || !image_id_valid(d + 7))
		return svc_errf(e, ENOTSUP, "%s: unsupported digest \"%.80s\"", where, d);
	snprintf(out, 96, "blobs/sha256/%s", d + 7);
	return 0;
}

/* Prefer the manifest named after our ref, then one for this machine. */
static int desc_score(const cJSON *d, const char *ref)
{
	const cJSON *ann = item(d, "annotations"), *plat = item(d, "platform");
	const char *keys[] = {"io.containerd.image.name", "org.opencontainers.image.ref.name"};
	const char *os = str_item(plat, "os"), *arch = str_item(plat, "architecture");
	int score = !plat							     ? 1
		    : os && arch && !strcmp(os, "linux") && !strcmp(arch, HOST_ARCH) ? 2
										     : 0;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *name = str_item(ann, keys[i]);
		char norm[IMAGE_REF_MAX];

		if (!name)
			continue;
		/* ref.name is often just the tag */
		if (!strcmp(name, strrchr(ref, ':') + 1) ||
		    (!image_ref_normalize(name, norm, sizeof(norm), NULL) && !strcmp(norm, ref)))
			score |= 4;
	}
	return score;
}

static const cJSON *oci_pick(const cJSON *list, const char *ref)
{
	const cJSON *it, *best = NULL;
	int top = -1;

	cJSON_ArrayForEach(it, list)
	{
		int s = desc_score(it, ref);

		if (s > top) {
			top = s;
			best = it;
		}
	}
	return best;
}

static int oci_manifest(struct import *im, const cJSON *m, const char *where, struct svc_err *e)
{
	const cJSON *layers = item(m, "layers"), *it;
	char path[96];
	int r = blob_path(item(m, "config"), where, path, e), i = 0;

	if (!r && !cJSON_IsArray(layers))
		r = svc_errf(e, EINVAL, "%s: layers: not a list", where);
	if (!r && !(im->config_path = strdup(path)))
		r = svc_errf(e, ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, (r ? NULL : layers))
	{
		const char *mt = str_item(it, "mediaType");

		i++;
		if (mt && strstr(mt, "zstd"))
			r = svc_errf(e, ENOTSUP, "%s: layer %d: %s is not supported", where, i, mt);
		else if (!(r = blob_path(it, where, path, e)))
			r = add_layer(im, path, where, e);
		if (r)
			break;
	}
	return r;
}

/* An index lists manifests or further indexes (one per platform). */
static int oci_resolve(struct import *im, const cJSON *index, const char *where, int depth,
		       struct svc_err *e)
{
	const cJSON *list = item(index, "manifests"), *pick = oci_pick(list, im->ref);
	char path[96];
	cJSON *m;
	int r;

	if (!cJSON_IsArray(list) || !pick)
		return svc_errf(e, EINVAL, "%s: no manifests", where);
	if ((r = blob_path(pick, where, path, e)) || (r = read_json(im, path, &m, e)))
		return r;
	if (!cJSON_IsArray(item(m, "manifests")))
		r = oci_manifest(im, m, path, e);
	else if (depth >= INDEX_DEPTH)
		r = svc_errf(e, EINVAL, "%s: indexes nested too deep", path);
	else
		r = oci_resolve(im, m, path, depth + 1, e);
	cJSON_Delete(m);
	return r;
}

static int oci_layout(struct import *im, struct svc_err *e)
{
	cJSON *root;
	int r;

	if (!member_exists(im, "oci-layout"))
		return svc_errf(e, EINVAL,
				"not an OCI image layout: index.json without oci-layout");
	if ((r = read_json(im, "oci-layout", &root, e)))
		return r;
	if (!str_item(root, "imageLayoutVersion"))
		r = svc_errf(e, EINVAL, "oci-layout: no imageLayoutVersion");
	cJSON_Delete(root);
	if (!r && !(r = read_json(im, "index.json", &root, e))) {
		r = oci_resolve(im, root, "index.json", 0, e);
		cJSON_Delete(root);
	}
	return r;
}

/* Docker 25+ writes an OCI layout and a manifest.json: the latter wins,
 * being what `docker load` reads. */
static int find_image(struct import *im, struct svc_err *e)
{
	if (member_exists(im, "manifest.json"))
		return docker_manifest(im, e);
	if (member_exists(im, "index.json"))
		return oci_layout(im, e);
	return svc_errf(e, EINVAL,
			"not a docker save or OCI image archive: no manifest.json or index.json");
}

static int load_config(struct import *im, struct svc_err *e)
{
	struct image img = {0};
	int r = read_member(im, im->config_path, IMAGE_JSON_MAX, &im->config, &im->config_len, e);

	if (r)
		return svc_err_ctx(e, "image config");
	sha256_buf_hex(im->config, im->config_len, im->id);
	r = image_parse_config(im->config, im->config_len, &img, e);
	image_free(&img);
	return r ? svc_err_ctx(e, "image config %s", im->config_path) : 0;
}

/* Unpack the tar stream of s under rootfd, within what is left of the
 * import's budget: the archive and all its layers together (a gzip layer of
 * a few megabytes may inflate to terabytes). */
static int unpack_src(struct import *im, struct src *s, int rootfd, enum unpack_mode mode,
		      struct svc_err *e)
{
	struct tar_limits lim = {
	    .max_size = im->budget, .max_total = im->budget, .max_entries = ENTRIES_MAX};
	struct tar *t = NULL;
	int r = tar_open(&t, src_read, s, &lim, e);

	if (!r) {
		r = unpack_tar(rootfd, t, mode, e);
		im->budget -= tar_total(t);
	}
	tar_close(t);
	return r;
}

/* Read what the tar reader left (end-of-archive padding) into the hash. */
static int drain(struct src *s)
{
	char buf[4096];
	ssize_t k;

	while ((k = src_read(s, buf, sizeof(buf))) > 0)
		;
	return (int)k;
}

static int apply_layer(struct import *im, const char *path, struct svc_err *e)
{
	char hex[65], got[65];
	struct sha256 h;
	struct src s = {.fd = unpack_open(im->archfd, path, O_RDONLY)};
	int r;

	if (s.fd < 0)
		return svc_errf(e, -s.fd, "%s",
				s.fd == -ENOENT ? "missing from the archive" : strerror(-s.fd));
	if (expected_digest(path, hex)) {
		sha256_init(&h);
		s.hash = &h;
	}
	r = unpack_src(im, &s, im->rootfd, UNPACK_LAYER, e);
	if (!r && s.hash && (r = drain(&s)))
		svc_errf(e, -r, "reading: %s", strerror(-r));
	if (!r && s.hash && (sha256_hex(&h, got), strcmp(got, hex)))
		r = svc_errf(e, EINVAL, "digest mismatch (content is sha256:%s)", got);
	close(s.fd);
	return r;
}

static int apply_layers(struct import *im, struct svc_err *e)
{
	for (size_t i = 0; i < im->n_layers; i++) {
		int r = apply_layer(im, im->layers[i], e);

		if (r)
			return svc_err_ctx(e, "layer %zu (%s)", i + 1, im->layers[i]);
	}
	return 0;
}

/* Regular files' bytes, a file with n links counting 1/n per link. */
static int64_t tree_size(int fd, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int64_t sum = 0;

	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;
		int sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode))
			sum += st.st_size / (int64_t)(st.st_nlink ? st.st_nlink : 1);
		else if (S_ISDIR(st.st_mode) && depth < PATH_MAX / 2 &&
			 (sub = openat(dirfd(d), de->d_name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
			sum += tree_size(sub, depth + 1);
	}
	closedir(d);
	return sum;
}

static int write_files(struct import *im, struct svc_err *e)
{
	char info[128], ts[21];
	int r, fd = dup(im->rootfd);

	fmt_rfc3339(time(NULL), ts);
	snprintf(info, sizeof(info), "{\"imported\":\"%s\",\"size\":%" PRId64 "}\n", ts,
		 fd < 0 ? 0 : tree_size(fd, 0));
	if ((r = remove_tree(im->tmpfd, "archive")))
		return svc_errf(e, -r, "removing the unpacked archive: %s", strerror(-r));
	if (file_write_atomic(im->tmpfd, IMAGE_CONFIG_FILE, im->config, im->config_len, 0644, e) ||
	    file_write_atomic(im->tmpfd, IMAGE_INFO_FILE, info, strlen(info), 0644, e))
		return -e->code;
	/* The rename below publishes the image: its files must be on disk. */
	if (syncfs(im->tmpfd))
		return svc_errf(e, errno, "syncing the image: %s", strerror(errno));
	return 0;
}

/* Move the temp directory to <dir>/<id> (an image already there is the same
 * content and stays), then point the ref at it. */
static int publish(struct import *im, struct svc_err *e)
{
	char old[65];
	bool created = false, had_old;
	int r = image_store_lock(&im->st, e);

	if (r)
		return r;
	if (!renameat(im->st.dfd, im->tmp, im->st.dfd, im->id)) {
		created = true;
		im->tmp[0] = '\0';
		fsync(im->st.dfd);
	} else if (errno != EEXIST && errno != ENOTEMPTY) {
		return svc_errf(e, errno, "renaming %s to %s: %s", im->tmp, im->id,
				strerror(errno));
	}
	had_old = !image_ref_read(&im->st, im->ref, old);
	if ((r = image_ref_write(&im->st, im->ref, im->id, e))) {
		if (created)
			image_drop(&im->st, im->id);
		return r;
	}
	/* The tag moved: its old image goes when no other tag names it. */
	if (had_old && strcmp(old, im->id) && !image_id_in_use(&im->st, old))
		image_drop(&im->st, old);
	return 0;
}

/* Temp directories of imports whose process is gone (a crash). */
static void sweep_stale(struct image_store *st)
{
	int fd = openat(st->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		const char *p = de->d_name + strlen(IMAGE_TMP_PREFIX);
		char *end;
		long pid;

		if (strncmp(de->d_name, IMAGE_TMP_PREFIX, strlen(IMAGE_TMP_PREFIX)))
			continue;
		pid = strtol(p, &end, 10);
		if (end != p && *end == '-' && pid > 0 && pid != getpid() && kill((pid_t)pid, 0) &&
		    errno == ESRCH)
			remove_tree(dirfd(d), de->d_name);
	}
	closedir(d);
}

static int make_tmp(struct import *im, struct svc_err *e)
{
	uint64_t rnd = 0;

	sweep_stale(&im->st);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)time(NULL) ^ (uint64_t)now_mono();
	snprintf(im->tmp, sizeof(im->tmp), IMAGE_TMP_PREFIX "%d-%016" PRIx64, (int)getpid(), rnd);
	if (mkdirat(im->st.dfd, im->tmp, 0700)) {
		im->tmp[0] = '\0';
		return svc_errf(e, errno, "creating a temp directory: %s", strerror(errno));
	}
	im->tmpfd = openat(im->st.dfd, im->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (im->tmpfd < 0 || mkdirat(im->tmpfd, "archive", 0700) ||
	    mkdirat(im->tmpfd, "rootfs", 0755) ||
	    (im->archfd = openat(im->tmpfd, "archive", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (im->rootfd = openat(im->tmpfd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return svc_errf(e, errno, "creating a temp directory: %s", strerror(errno));
	return 0;
}

static int unpack_archive(struct import *im, struct svc_err *e)
{
	struct src s = {.fd = open(im->archive, O_RDONLY | O_CLOEXEC)};
	int r;

	if (s.fd < 0)
		return svc_errf(e, errno, "%s: %s", im->archive, strerror(errno));
	r = unpack_src(im, &s, im->archfd, UNPACK_PLAIN, e);
	close(s.fd);
	return r ? svc_err_ctx(e, "%s", im->archive) : 0;
}

static void import_free(struct import *im)
{
	if (im->rootfd >= 0)
		close(im->rootfd);
	if (im->archfd >= 0)
		close(im->archfd);
	if (im->tmpfd >= 0)
		close(im->tmpfd);
	if (im->tmp[0])
		remove_tree(im->st.dfd, im->tmp);
	image_store_close(&im->st);
	for (size_t i = 0; i < im->n_layers; i++)
		free(im->layers[i]);
	free(im->layers);
	free(im->config);
	free(im->config_path);
}

int image_import(const char *dir, const char *ref, const char *archive, char id_out[65],
		 struct svc_err *e)
{
	struct import im = {.st = {-1, -1},
			    .archive = archive,
			    .tmpfd = -1,
			    .archfd = -1,
			    .rootfd = -1,
			    .budget = IMPORT_MAX};
	int r = image_ref_normalize(ref, im.ref, sizeof(im.ref), e);

	if (!r)
		r = image_store_open(dir, true, &im.st, e);
	if (!r)
		r = make_tmp(&im, e);
	if (!r)
		r = unpack_archive(&im, e);
	if (!r)
		r = find_image(&im, e);
	if (!r)
		r = load_config(&im, e);
	if (!r)
		r = apply_layers(&im, e);
	if (!r)
		r = write_files(&im, e);
	if (!r)
		r = publish(&im, e);
	if (!r && id_out)
		memcpy(id_out, im.id, 65);
	import_free(&im);
	return r;
}
