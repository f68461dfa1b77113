// SPDX-License-Identifier: MIT
/* The image store end to end on archives built here in memory by a tiny
 * tar writer: docker save and OCI layouts, whiteouts, hostile members
 * (nothing may land outside the rootfs), broken archives (clear errors,
 * nothing left behind), refs, list and remove. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"
#include "fsutil.h"
#include "image.h"
#include "sha256.h"
#include "tar.h"
#include "unit.h"
#include "util.h"

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#else
#define HOST_ARCH "unknown-host"
#endif

static char top[64], store[96], arch[96];

/* ---- a tiny tar writer ---- */

static void tw_header(struct sbuf *b, const char *name, char type, size_t size, const char *link,
		      unsigned mode)
{
	unsigned char h[512] = {0};
	unsigned sum = 0;

	strncpy((char *)h, name, 100);
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", 1000u);
	snprintf((char *)h + 116, 8, "%07o", 1001u);
	snprintf((char *)h + 124, 12, "%011zo", size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000u);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (link)
		strncpy((char *)h + 157, link, 100);
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	sbuf_add(b, h, 512);
}

static void tw_data(struct sbuf *b, const void *d, size_t n)
{
	static const char zero[512];

	sbuf_add(b, d, n);
	sbuf_add(b, zero, (512 - n % 512) % 512);
}

static void tw_file(struct sbuf *b, const char *name, const char *data)
{
	tw_header(b, name, '0', strlen(data), NULL, 0644);
	tw_data(b, data, strlen(data));
}

static void tw_blob(struct sbuf *b, const char *name, const struct sbuf *data)
{
	tw_header(b, name, '0', data->len, NULL, 0644);
	tw_data(b, data->p, data->len);
}

static void tw_dir(struct sbuf *b, const char *name, unsigned mode)
{
	tw_header(b, name, '5', 0, NULL, mode);
}

static void tw_link(struct sbuf *b, const char *name, char type, const char *target)
{
	tw_header(b, name, type, 0, target, 0777);
}

/* A pax header giving the next member a long path. */
static void tw_pax_path(struct sbuf *b, const char *path)
{
	char rec[1000];
	int n = (int)strlen(path) + 7, len = n + (n >= 98 ? 3 : 2);

	snprintf(rec, sizeof(rec), "%d path=%s\n", len, path);
	tw_header(b, "PaxHeaders/x", 'x', strlen(rec), NULL, 0644);
	tw_data(b, rec, strlen(rec));
}

static void tw_gnu_long(struct sbuf *b, const char *path)
{
	tw_header(b, "././@LongLink", 'L', strlen(path) + 1, NULL, 0644);
	tw_data(b, path, strlen(path) + 1);
}

static void tw_end(struct sbuf *b)
{
	static const char zero[1024];

	sbuf_add(b, zero, sizeof(zero));
}

static void gzip_buf(const struct sbuf *in, struct sbuf *out)
{
	z_stream z = {0};

	deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
	sbuf_reserve(out, deflateBound(&z, in->len) + 64);
	z.next_in = (unsigned char *)in->p;
	z.avail_in = (unsigned)in->len;
	z.next_out = (unsigned char *)out->p;
	z.avail_out = (unsigned)out->cap;
	deflate(&z, Z_FINISH);
	out->len = z.total_out;
	deflateEnd(&z);
}

static void write_file(const char *path, const struct sbuf *b)
{
	FILE *f = fopen(path, "wb");

	CHECK(f && fwrite(b->p, 1, b->len, f) == b->len);
	if (f)
		fclose(f);
}

/* ---- image archives ---- */

#define CONFIG                                                                                     \
	"{\"architecture\":\"" HOST_ARCH "\",\"os\":\"linux\",\"config\":{"                        \
	"\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"                               \
	"\"Env\":[\"PATH=/bin\",\"A=b\"],\"WorkingDir\":\"/www\",\"User\":\"nobody\","             \
	"\"ExposedPorts\":{\"8080/tcp\":{},\"53/udp\":{},\"8080/udp\":{}}},"                       \
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"

/* docker save, before Docker 25: <id>.json, lN/layer.tar, manifest.json. */
static void docker_archive(const char *out, const char *config, struct sbuf *layers, int n)
{
	struct sbuf b = {0}, man = {0};
	char hex[65], name[64];

	sha256_buf_hex(config, strlen(config), hex);
	snprintf(name, sizeof(name), "%s.json", hex);
	tw_file(&b, name, config);
	sbuf_addf(&man, "[{\"Config\":\"%s\",\"RepoTags\":[\"img:1\"],\"Layers\":[", name);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "l%d/", i + 1);
		tw_dir(&b, name, 0755);
		snprintf(name, sizeof(name), "l%d/layer.tar", i + 1);
		tw_blob(&b, name, &layers[i]);
		sbuf_addf(&man, "%s\"%s\"", i ? "," : "", name);
	}
	sbuf_adds(&man, "]}]");
	tw_file(&b, "manifest.json", man.p);
	tw_end(&b);
	write_file(out, &b);
	sbuf_free(&b);
	sbuf_free(&man);
}

static void add_blob(struct sbuf *b, const void *data, size_t n, char hex[65])
{
	struct sbuf d = {0};
	char name[96];

	sha256_buf_hex(data, n, hex);
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	sbuf_add(&d, data, n);
	tw_blob(b, name, &d);
	sbuf_free(&d);
}

/* An OCI layout: gzip layers, an index -> nested index -> manifest for
 * this machine (next to one for another OS whose blob is missing). */
static void oci_archive(const char *out, const char *config, struct sbuf *layers, int n,
			bool docker25)
{
	struct sbuf b = {0}, man = {0}, idx = {0}, top_idx = {0}, outer = {0};
	char hex[65], chex[65];

	tw_file(&b, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	tw_dir(&b, "blobs/", 0755);
	tw_dir(&b, "blobs/sha256/", 0755);
	add_blob(&b, config, strlen(config), chex);
	sbuf_addf(&man,
		  "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
		  "vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu},"
		  "\"layers\":[",
		  chex, strlen(config));
	for (int i = 0; i < n; i++) {
		struct sbuf gz = {0};

		gzip_buf(&layers[i], &gz);
		add_blob(&b, gz.p, gz.len, hex);
		sbuf_addf(&man,
			  "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
			  "\"digest\":\"sha256:%s\",\"size\":%zu}",
			  i ? "," : "", hex, gz.len);
		sbuf_free(&gz);
	}
	sbuf_adds(&man, "]}");
	add_blob(&b, man.p, man.len, hex);
	sbuf_addf(
	    &idx,
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:%064d\","
	    "\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}},"
	    "{\"digest\":\"sha256:%s\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" HOST_ARCH
	    "\"}}]}",
	    0, hex);
	add_blob(&b, idx.p, idx.len, hex);
	sbuf_addf(&top_idx, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:%s\"}]}",
		  hex);
	tw_file(&b, "index.json", top_idx.p);
	if (docker25) {
		sbuf_free(&man);
		sbuf_addf(&man,
			  "[{\"Config\":\"blobs/sha256/%s\",\"RepoTags\":[\"x:1\"],\"Layers\":[]}]",
			  chex);
		tw_file(&b, "manifest.json", man.p);
	}
	tw_end(&b);
	gzip_buf(&b, &outer); /* the whole archive compressed too */
	write_file(out, &outer);
	sbuf_free(&b);
	sbuf_free(&man);
	sbuf_free(&idx);
	sbuf_free(&top_idx);
	sbuf_free(&outer);
}

/* ---- helpers ---- */

static void setup(void)
{
	strcpy(top, "/tmp/svcd-test-image.XXXXXX");
	CHECK(mkdtemp(top) != NULL);
	snprintf(store, sizeof(store), "%s/store", top);
	snprintf(arch, sizeof(arch), "%s/a.tar", top);
}

static void teardown(void)
{
	CHECK(remove_tree(AT_FDCWD, top) == 0);
}

static char *rootfs_path(const char *rel, char *buf, size_t n, const char *id)
{
	snprintf(buf, n, "%s/%s/rootfs/%s", store, id, rel);
	return buf;
}

static bool in_rootfs(const char *id, const char *rel)
{
	char p[512];
	struct stat st;

	return lstat(rootfs_path(rel, p, sizeof(p), id), &st) == 0;
}

static char *read_rootfs(const char *id, const char *rel)
{
	char p[512], *buf = NULL;

	if (file_read_all(AT_FDCWD, rootfs_path(rel, p, sizeof(p), id), 1 << 20, &buf, NULL))
		return NULL;
	return buf;
}

/* Nothing in the store but an empty refs/, nothing in top but store and
 * the archive: a failed import leaves nothing behind. */
static bool store_clean(void)
{
	int n = 0;
	struct dirent *de;
	char p[128];
	DIR *d;

	for (int pass = 0; pass < 3; pass++) {
		const char *dir = pass == 0 ? top : pass == 1 ? store : p;

		snprintf(p, sizeof(p), "%s/refs", store);
		if (!(d = opendir(dir)))
			return pass == 1; /* no store at all is clean too */
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				n += !(pass == 0 && (!strcmp(de->d_name, "store") ||
						     !strcmp(de->d_name, "a.tar"))) &&
				     !(pass == 1 && !strcmp(de->d_name, "refs"));
		closedir(d);
	}
	return n == 0;
}

static int import(const char *ref, char id[65], struct svc_err *e)
{
	svc_err_clear(e);
	return image_import(store, ref, arch, id, e);
}

/* Build a docker archive of the given layers and import it as img:1. */
static int import_layers(struct sbuf *layers, int n, char id[65], struct svc_err *e)
{
	docker_archive(arch, CONFIG, layers, n);
	for (int i = 0; i < n; i++)
		sbuf_free(&layers[i]);
	return import("img:1", id, e);
}

/* ---- tests ---- */

static void test_ref_normalize(void)
{
	static const char *const good[][2] = {
	    {"busybox", "busybox:latest"},
	    {"busybox:1.36", "busybox:1.36"},
	    {"docker.io/library/busybox:1", "busybox:1"},
	    {"index.docker.io/library/busybox", "busybox:latest"},
	    {"library/busybox", "busybox:latest"},
	    {"docker.io/foo/bar:v2", "foo/bar:v2"},
	    {"localhost:5000/my-app:Dev_1", "localhost:5000/my-app:Dev_1"},
	    {"ghcr.io/a__b/c.d-e:x", "ghcr.io/a__b/c.d-e:x"},
	};
	static const char *const bad[][2] = {
	    {"", "empty reference"},
	    {"BusyBox", "must be lowercase"},
	    {"busybox:", "invalid tag"},
	    {"busybox:-x", "invalid tag"},
	    {"busybox@sha256:abcd", "digest"},
	    {"a//b", "invalid repository name"},
	    {"a_", "invalid repository name"},
	    {"-a", "invalid repository name"},
	    {"localhost:5000/", "empty repository name"},
	    {"bad_host:5000/x", "invalid registry host"},
	    {"Bad_name/x", "invalid registry host"},
	    {"a/Bad", "must be lowercase"},
	    {"my.host:99x/x", "invalid registry host"},
	};
	struct svc_err e = {0};
	char out[256], lng[400];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		CHECK(image_ref_normalize(good[i][0], out, sizeof(out), &e) == 0);
		CHECK_STR(out, good[i][1]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(image_ref_normalize(bad[i][0], out, sizeof(out), &e) == -EINVAL);
		CHECK_HAS(e.msg, bad[i][1]);
	}
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	CHECK(image_ref_normalize(lng, out, sizeof(out), &e) == -EINVAL);
	CHECK_HAS(e.msg, "too long");
}

static void check_config(const struct image *img)
{
	CHECK(img->entrypoint && img->entrypoint[0] && img->entrypoint[1] && !img->entrypoint[2]);
	CHECK_STR(img->entrypoint ? img->entrypoint[1] : NULL, "-c");
	CHECK_STR(img->cmd ? img->cmd[0] : NULL, "echo hi");
	CHECK_STR(img->env ? img->env[1] : NULL, "A=b");
	CHECK_STR(img->workdir, "/www");
	CHECK_STR(img->user, "nobody");
	CHECK(img->n_ports == 2 && img->ports[0] == 8080 && img->ports[1] == 53);
}

static void test_docker_import(void)
{
	struct sbuf l[2] = {0};
	struct svc_err e = {0};
	struct image img;
	char id[65], hex[65], *s, longname[300];
	struct stat st;

	setup();
	tw_dir(&l[0], "./", 0755);
	tw_dir(&l[0], "bin/", 0755);
	tw_file(&l[0], "bin/busybox", "#!busybox\n");
	tw_link(&l[0], "bin/sh", '2', "busybox");
	tw_header(&l[0], "bin/suid", '0', 0, NULL, 04755);
	tw_header(&l[0], "dev-null", '3', 0, NULL, 0666);
	tw_header(&l[0], "fifo", '6', 0, NULL, 0600);
	tw_end(&l[0]);
	snprintf(longname, sizeof(longname), "www/%0120d/%0150d", 1, 2); /* over 255 bytes */
	tw_pax_path(&l[1], longname);
	tw_file(&l[1], "ignored-name", "pax\n");
	tw_gnu_long(&l[1], "www/a-gnu-long-name-that-is-long-enough-to-need-more-than-one-hundred-"
			   "bytes-in-the-name-field.txt");
	tw_file(&l[1], "ignored-too", "gnu\n");
	tw_link(&l[1], "www/hard", '1', "bin/busybox");
	tw_end(&l[1]);
	CHECK(import_layers(l, 2, id, &e) == 0);
	CHECK_STR(e.msg, "");
	sha256_buf_hex(CONFIG, strlen(CONFIG), hex);
	CHECK_STR(id, hex);
	CHECK_STR((s = read_rootfs(id, "bin/busybox")), "#!busybox\n");
	free(s);
	CHECK_STR((s = read_rootfs(id, longname)), "pax\n");
	free(s);
	CHECK_STR((s = read_rootfs(id, "www/a-gnu-long-name-that-is-long-enough-to-need-more-"
				       "than-one-hundred-bytes-in-the-name-field.txt")),
		  "gnu\n");
	free(s);
	CHECK_STR((s = read_rootfs(id, "www/hard")), "#!busybox\n");
	free(s);
	rootfs_path("bin/sh", longname, sizeof(longname), id);
	CHECK(lstat(longname, &st) == 0 && S_ISLNK(st.st_mode));
	rootfs_path("bin/suid", longname, sizeof(longname), id);
	CHECK(stat(longname, &st) == 0 && (st.st_mode & 07777) == 04755);
	CHECK(st.st_mtime == 1700000000);
	CHECK(geteuid() || (st.st_uid == 1000 && st.st_gid == 1001)); /* owners need root */
	rootfs_path("dev-null", longname, sizeof(longname), id);
	CHECK(lstat(longname, &st) == 0 && S_ISCHR(st.st_mode));
	rootfs_path("fifo", longname, sizeof(longname), id);
	CHECK(lstat(longname, &st) == 0 && S_ISFIFO(st.st_mode));
	CHECK(image_load(store, "img:1", &img, &e) == 0);
	CHECK_STR(img.ref, "img:1");
	CHECK_STR(img.id, hex);
	CHECK(img.rootfs && img.rootfs[0] == '/' && strstr(img.rootfs, hex));
	CHECK(img.size >= 14 && img.imported > time(NULL) - 60);
	check_config(&img);
	image_free(&img);
	teardown();
}

static void oci_layers(struct sbuf l[2])
{
	tw_file(&l[0], "etc/passwd", "root:x:0:0::/:/bin/sh\n");
	tw_file(&l[0], "etc/gone", "x");
	tw_end(&l[0]);
	tw_file(&l[1], "etc/.wh.gone", "");
	tw_file(&l[1], "www/index.html", "hello\n");
	tw_end(&l[1]);
}

static void test_oci_import(void)
{
	struct sbuf l[2] = {0};
	struct svc_err e = {0};
	struct image img;
	char id[65], *s;

	setup();
	oci_layers(l);
	oci_archive(arch, CONFIG, l, 2, false);
	CHECK(import("docker.io/library/web", id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK_STR((s = read_rootfs(id, "www/index.html")), "hello\n");
	free(s);
	CHECK(in_rootfs(id, "etc/passwd") && !in_rootfs(id, "etc/gone"));
	CHECK(image_load(store, "web:latest", &img, &e) == 0);
	check_config(&img);
	image_free(&img);
	/* Docker 25+: the OCI layout plus a manifest.json (no layers), which wins. */
	oci_archive(arch, "{\"config\":{\"Cmd\":[\"x\"]}}", l, 2, true);
	CHECK(import("x:1", id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(!in_rootfs(id, "www/index.html") && !in_rootfs(id, "etc"));
	sbuf_free(&l[0]);
	sbuf_free(&l[1]);
	teardown();
}

/* Lower: a/{x,y}, b/z, c, d/keep, e/old, f/old.  Upper: whiteouts for
 * a/x, b and c, opaque d (marker after d/new) and e (marker first), and
 * .wh.f next to a new f/new. */
static void test_whiteouts(void)
{
	struct sbuf l[2] = {0};
	struct svc_err e = {0};
	char id[65];

	setup();
	tw_file(&l[0], "a/x", "1");
	tw_file(&l[0], "a/y", "1");
	tw_file(&l[0], "b/z", "1");
	tw_file(&l[0], "c", "1");
	tw_file(&l[0], "d/keep", "1");
	tw_file(&l[0], "d/sub/deep", "1");
	tw_file(&l[0], "e/old", "1");
	tw_file(&l[0], "f/old", "1");
	tw_end(&l[0]);
	tw_file(&l[1], "a/.wh.x", "");
	tw_file(&l[1], ".wh.b", "");
	tw_file(&l[1], "./.wh.c", "");
	tw_file(&l[1], "d/new", "2");
	tw_file(&l[1], "d/sub/new", "2");
	tw_file(&l[1], "d/.wh..wh..opq", "");
	tw_file(&l[1], "e/.wh..wh..opq", "");
	tw_file(&l[1], "e/n", "2");
	tw_file(&l[1], "f/new", "2");
	tw_file(&l[1], ".wh.f", "");
	tw_file(&l[1], ".wh..wh.plnk", "");
	tw_end(&l[1]);
	CHECK(import_layers(l, 2, id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(!in_rootfs(id, "a/x") && in_rootfs(id, "a/y"));
	CHECK(!in_rootfs(id, "b") && !in_rootfs(id, "c"));
	CHECK(!in_rootfs(id, "d/keep") && in_rootfs(id, "d/new"));
	CHECK(!in_rootfs(id, "d/sub/deep") && in_rootfs(id, "d/sub/new"));
	CHECK(!in_rootfs(id, "e/old") && in_rootfs(id, "e/n"));
	CHECK(!in_rootfs(id, "f/old") && in_rootfs(id, "f/new"));
	CHECK(!in_rootfs(id, ".wh..wh.plnk") && !in_rootfs(id, "a/.wh.x"));
	teardown();
}

/* One hostile layer: the import fails with `msg`, or succeeds when msg is
 * NULL; either way nothing appears outside the store. */
static void hostile(struct sbuf *layer, const char *msg, char id[65])
{
	struct svc_err e = {0};
	int r;

	tw_end(layer);
	r = import_layers(layer, 1, id, &e);
	if (msg) {
		CHECK(r < 0);
		CHECK_HAS(e.msg, msg);
		CHECK(store_clean());
	} else {
		CHECK(r == 0);
		CHECK_STR(e.msg, "");
	}
}

static void test_traversal(void)
{
	struct sbuf l = {0};
	char id[65], *s, outside[128];
	struct stat host, st;

	setup();
	snprintf(outside, sizeof(outside), "%s/x", top);
	tw_file(&l, "../x", "evil");
	hostile(&l, "offset 0: member ../x: path leaves the root", id);
	tw_file(&l, "a/../../x", "evil");
	hostile(&l, "path leaves the root", id);
	tw_link(&l, "h", '1', "../../etc/passwd");
	hostile(&l, "member h: hardlink target leaves the root", id);
	tw_file(&l, "etc/.wh...", "");
	hostile(&l, "bad whiteout name", id);
	CHECK(access(outside, F_OK) != 0);

	CHECK(stat("/etc/passwd", &host) == 0);
	tw_link(&l, "h2", '1', "/etc/passwd"); /* in the rootfs, where it does not exist */
	hostile(&l, "member h2: hardlink target: No such file or directory", id);
	tw_file(&l, "/svcd-image-test-abs", "contained");
	tw_link(&l, "evil", '2', "/");
	tw_file(&l, "evil/etc/svcd-image-test", "contained");
	tw_link(&l, "up", '2', "../../../..");
	tw_file(&l, "up/svcd-image-test-up", "contained");
	tw_link(&l, "lnk", '2', "/etc");
	tw_link(&l, "hp", '1', "lnk/svcd-image-test");
	tw_link(&l, "pw", '2', "/etc/passwd");
	tw_file(&l, "pw", "replaced the symlink");
	hostile(&l, NULL, id);
	CHECK(access("/svcd-image-test-abs", F_OK) != 0 &&
	      access("/svcd-image-test-up", F_OK) != 0);
	CHECK(access("/etc/svcd-image-test", F_OK) != 0);
	CHECK_STR((s = read_rootfs(id, "svcd-image-test-abs")), "contained");
	free(s);
	CHECK_STR((s = read_rootfs(id, "etc/svcd-image-test")), "contained");
	free(s);
	CHECK(in_rootfs(id, "svcd-image-test-up") && in_rootfs(id, "hp"));
	CHECK_STR((s = read_rootfs(id, "pw")), "replaced the symlink");
	free(s);
	CHECK(stat("/etc/passwd", &st) == 0 && st.st_size == host.st_size &&
	      st.st_nlink == host.st_nlink && st.st_mtime == host.st_mtime);
	teardown();
}

/* Whiteouts through a symlink to a host path (absolute: in the rootfs, that
 * is) hide nothing outside: neither a file next to the store nor the store. */
static void test_whiteout_escape(void)
{
	struct sbuf l[2] = {0};
	struct svc_err e = {0};
	char id[65], victim[128];

	setup();
	snprintf(victim, sizeof(victim), "%s/victim", top);
	sbuf_adds(&l[1], "v");
	write_file(victim, &l[1]);
	l[1].len = 0;
	tw_link(&l[0], "esc", '2', top);
	tw_link(&l[0], "up", '2', "../../../../../../..");
	tw_end(&l[0]);
	tw_file(&l[1], "esc/.wh.victim", "");
	tw_file(&l[1], "esc/.wh.store", "");
	tw_file(&l[1], "up/.wh..wh..opq", "");
	tw_end(&l[1]);
	CHECK(import_layers(l, 2, id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(access(victim, F_OK) == 0);
	CHECK(in_rootfs(id, "esc") && in_rootfs(id, "up"));
	teardown();
}

/* Deeper than a descriptor per level allows to remove: a failed import and
 * a removed image still leave nothing behind. */
static void test_deep(void)
{
	struct sbuf l = {0};
	struct svc_err e = {0};
	char id[65], deep[700] = "";

	setup();
	for (int i = 0; i < 300; i++)
		strcat(deep, "d/");
	strcat(deep, "f");
	tw_pax_path(&l, deep);
	tw_file(&l, "ignored", "deep");
	CHECK(import_layers(&l, 1, id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(in_rootfs(id, deep));
	CHECK(image_remove(store, "img:1", &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(store_clean());
	tw_pax_path(&l, deep);
	tw_file(&l, "ignored", "deep");
	tw_file(&l, "../x", "evil");
	hostile(&l, "path leaves the root", id);
	teardown();
}

/* The outer archive: only plain members, names inside it. */
static void test_outer_hostile(void)
{
	struct svc_err e = {0};
	struct sbuf b = {0}, man = {0};
	char id[65];

	setup();
	tw_file(&b, "../evil", "x");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_HAS(e.msg, "a.tar: offset 0: member ../evil: path leaves the root");
	CHECK(store_clean());
	b.len = 0;
	tw_file(&b, "f", "x");
	tw_link(&b, "g", '1', "f");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_HAS(e.msg, "offset 1024: member g: only files, directories and symlinks");
	b.len = 0;
	tw_file(&b, "manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"../../etc/passwd\"]}]");
	tw_file(&b, "c.json", "{}");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_HAS(e.msg, "manifest.json: bad layer name");
	b.len = 0;
	tw_file(&b, "manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]");
	tw_file(&b, "c.json", "{}");
	tw_link(&b, "l.tar", '2', "/etc/passwd");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_STR(e.msg, "layer 1 (l.tar): missing from the archive");
	CHECK(store_clean());
	b.len = 0;
	sbuf_adds(&man, "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"");
	for (int i = 0; i < 128; i++)
		sbuf_adds(&man, ",\"l.tar\"");
	sbuf_adds(&man, "]}]");
	tw_file(&b, "manifest.json", man.p);
	tw_file(&b, "c.json", "{}");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_STR(e.msg, "manifest.json: more than 128 layers");
	CHECK(store_clean());
	sbuf_free(&man);
	sbuf_free(&b);
	teardown();
}

/* Older docker save links a repeated layer to its first copy; a manifest
 * listing several images is matched by tag. */
static void test_docker_links(void)
{
	struct sbuf b = {0}, l = {0};
	struct svc_err e = {0};
	char id[65], *s;

	setup();
	tw_file(&l, "f", "layer");
	tw_end(&l);
	tw_file(&b, "c.json", "{\"config\":{\"Cmd\":[\"true\"]}}");
	tw_file(&b, "c2.json", "{}");
	tw_blob(&b, "l1/layer.tar", &l);
	tw_link(&b, "l2/layer.tar", '2', "../l1/layer.tar");
	tw_file(&b, "manifest.json",
		"[{\"Config\":\"c2.json\",\"RepoTags\":[\"other:1\"],\"Layers\":[]},"
		"{\"Config\":\"c.json\",\"RepoTags\":[\"docker.io/library/app:2\"],"
		"\"Layers\":[\"l1/layer.tar\",\"./l2//layer.tar\"]}]");
	tw_end(&b);
	write_file(arch, &b);
	CHECK(import("app:2", id, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK_STR((s = read_rootfs(id, "f")), "layer");
	free(s);
	CHECK(import("app:3", id, &e) == -EINVAL);
	CHECK_STR(e.msg, "manifest.json: the archive holds 2 images and none is tagged app:3");
	sbuf_free(&b);
	sbuf_free(&l);
	teardown();
}

static void expect_fail(const struct sbuf *b, const char *msg)
{
	struct svc_err e = {0};
	char id[65];

	write_file(arch, b);
	CHECK(import("x", id, &e) < 0);
	CHECK_HAS(e.msg, msg);
	CHECK(store_clean());
}

static void test_broken(void)
{
	struct sbuf l = {0}, b = {0}, gz = {0};
	char id[65];
	struct svc_err e = {0};

	setup();
	tw_file(&l, "bin/x", "x");
	tw_end(&l);
	docker_archive(arch, CONFIG, &l, 1);
	CHECK(file_read_all(AT_FDCWD, arch, 1 << 20, &b.p, &b.len) == 0);
	b.cap = b.len + 1;
	sbuf_free(&l);
	b.len -= 1500; /* into manifest.json's data */
	expect_fail(&b, "a.tar: offset 4096: member manifest.json: unexpected end of archive");
	b.len += 1500;
	b.p[2048 + 148] ^= 1; /* the checksum of l1/layer.tar's first member */
	expect_fail(&b, "layer 1 (l1/layer.tar): offset 0: bad header checksum (not a tar");
	b.p[2048 + 148] ^= 1;
	b.p[0] ^= 1;
	expect_fail(&b, "a.tar: offset 0: bad header checksum");
	gzip_buf(&b, &gz);
	memset(gz.p + 20, 0x55, 40);
	expect_fail(&gz, "a.tar: offset 0: gzip: ");
	gz.len = 0;
	sbuf_adds(&gz, "\x1f\x8b");
	expect_fail(&gz, "gzip: unexpected end of compressed data");
	gz.len = 0;
	sbuf_adds(&gz, "\x28\xb5\x2f\xfd rest");
	expect_fail(&gz, "zstd-compressed data is not supported");
	b.len = 0;
	tw_file(&b, "hello.txt", "hi");
	tw_end(&b);
	expect_fail(&b, "not a docker save or OCI image archive: no manifest.json or index.json");
	gz.len = 0;
	expect_fail(&gz, "not a docker save or OCI image archive");
	CHECK(image_import(store, "x", "/nonexistent/a.tar", id, &e) == -ENOENT);
	CHECK_HAS(e.msg, "/nonexistent/a.tar: No such file or directory");
	sbuf_free(&b);
	sbuf_free(&gz);
	teardown();
}

static void test_digest_mismatch(void)
{
	struct sbuf l[2] = {0}, b = {0};
	struct svc_err e = {0};
	char id[65], *p;
	z_stream z = {0};

	setup();
	oci_layers(l);
	oci_archive(arch, CONFIG, l, 2, false);
	sbuf_free(&l[0]);
	sbuf_free(&l[1]);
	/* Flip one byte inside the config blob of the (gzipped) archive. */
	CHECK(file_read_all(AT_FDCWD, arch, 1 << 20, &p, &b.len) == 0);
	b.p = malloc(1 << 20);
	inflateInit2(&z, 16 + 15);
	z.next_in = (unsigned char *)p;
	z.avail_in = (unsigned)b.len;
	z.next_out = (unsigned char *)b.p;
	z.avail_out = 1 << 20;
	inflate(&z, Z_FINISH);
	b.len = z.total_out;
	b.cap = 1 << 20;
	inflateEnd(&z);
	free(p);
	p = memmem(b.p, b.len, "echo hi", 7);
	CHECK(p != NULL);
	if (p)
		*p = 'E';
	write_file(arch, &b);
	CHECK(import("x", id, &e) < 0);
	CHECK_HAS(e.msg, "digest mismatch (content is sha256:");
	CHECK(store_clean());
	sbuf_free(&b);
	teardown();
}

static void test_list_remove(void)
{
	struct sbuf l = {0};
	struct svc_err e = {0};
	struct image *v, img;
	char id[65], id2[65], p[256];
	size_t n;

	setup();
	CHECK(image_list(store, &v, &n, &e) == 0 && n == 0);
	tw_file(&l, "f", "1");
	tw_end(&l);
	docker_archive(arch, CONFIG, &l, 1);
	CHECK(import("b:2", id, &e) == 0);
	CHECK(import("localhost:5000/a/b:1", id2, &e) == 0);
	CHECK_STR(id, id2);
	snprintf(p, sizeof(p), "%s/refs/localhost%%3A5000%%2Fa%%2Fb%%3A1", store);
	CHECK(access(p, F_OK) == 0);
	CHECK(image_list(store, &v, &n, &e) == 0 && n == 2);
	if (n == 2) {
		CHECK_STR(v[0].ref, "b:2");
		CHECK_STR(v[1].ref, "localhost:5000/a/b:1");
		CHECK_STR(v[1].id, id);
	}
	for (size_t i = 0; i < n; i++)
		image_free(&v[i]);
	free(v);
	CHECK(image_remove(store, "b:2", &e) == 0);
	CHECK(in_rootfs(id, "f"));
	CHECK(image_remove(store, "b:2", &e) == -ENOENT);
	CHECK_STR(e.msg, "image b:2 not found");
	CHECK(image_load(store, "b:2", &img, &e) == -ENOENT);
	CHECK(image_remove(store, "localhost:5000/a/b:1", &e) == 0);
	CHECK(!in_rootfs(id, "f") && store_clean());
	/* Moving a tag drops the image nothing else names. */
	CHECK(import("t", id, &e) == 0);
	docker_archive(arch, "{\"config\":{}}", &l, 1);
	CHECK(import("t", id2, &e) == 0);
	CHECK(strcmp(id, id2) && !in_rootfs(id, "f") && in_rootfs(id2, "f"));
	CHECK(image_load(store, "t:latest", &img, &e) == 0 && !img.cmd && !img.n_ports);
	image_free(&img);
	sbuf_free(&l);
	teardown();
}

struct mem {
	const struct sbuf *b;
	size_t pos;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t k = m->b->len - m->pos < n ? m->b->len - m->pos : n;

	memcpy(buf, m->b->p + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

/* Each member within max_size, all together over max_total: a gzip stream
 * of a few bytes per member would otherwise inflate without bound. */
static void test_tar_total(void)
{
	static const struct tar_limits lim = {
	    .max_size = 1000, .max_total = 1500, .max_entries = 99};
	const struct tar_entry *en;
	struct sbuf b = {0}, gz = {0};
	struct svc_err e = {0};
	char data[600];
	struct tar *t;

	memset(data, 'x', sizeof(data));
	data[sizeof(data) - 1] = '\0';
	for (int i = 0; i < 3; i++)
		tw_file(&b, "f", data);
	tw_end(&b);
	gzip_buf(&b, &gz);
	for (int pass = 0; pass < 2; pass++) {
		struct mem m = {pass ? &gz : &b, 0};
		int n = 0, r;

		CHECK(tar_open(&t, mem_read, &m, &lim, &e) == 0);
		while ((r = tar_next(t, &en, &e)) > 0)
			n++;
		CHECK(n == 2 && r == -EFBIG);
		CHECK_STR(e.msg, "offset 3072: more than 1500 bytes of data in all");
		CHECK(tar_total(t) == 2 * 599);
		tar_close(t);
	}
	sbuf_free(&b);
	sbuf_free(&gz);
}

int main(void)
{
	test_ref_normalize();
	test_docker_import();
	test_oci_import();
	test_whiteouts();
	test_traversal();
	test_whiteout_escape();
	test_deep();
	test_outer_hostile();
	test_docker_links();
	test_broken();
	test_digest_mismatch();
	test_list_remove();
	test_tar_total();
	return UNIT_DONE("test_image");
}
