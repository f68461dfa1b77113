// SPDX-License-Identifier: MIT
/* Host-local IPAM over a temp directory: allocation, round-robin,
 * exhaustion, claims, release, retain, persistence across reopen, and a
 * directory full of garbage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "ipam.h"
#include "unit.h"
#include "util.h"

static char root[64];
static int warnings;

static void count_warn(int level, const char *msg)
{
	warnings += level == SVC_LOG_WARN;
}

static struct in_addr A(const char *s) {
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a;
}

static const char *
S(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;

	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], sizeof(buf[i]));
}

/* A fresh directory under root for one test. */
static const char *dir_for(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", root, name);
	return buf;
}

static void put_file(const char *dir, const char *name, const char *content)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_all(fd, content, strlen(content)))
		abort();
	close(fd);
}

static char *get_file(const char *dir, const char *name)
{
	char p[256], *s = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (file_read_all(AT_FDCWD, p, 4096, &s, NULL))
		return NULL;
	return s;
}

static bool exists(const char *dir, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* Set the mtime of a file an hour ahead, newer than any written now. */
static int touch_later(const char *dir, const char *name)
{
	struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = time(NULL) + 3600}};
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return utimensat(AT_FDCWD, p, t, 0);
}

static void test_alloc_and_round_robin(void)
{
	struct svc_err e = {0};
	struct ipam *ip;
	struct in_addr a, b, c, x;
	char d[128];
	char *s;

	dir_for("basic", d, sizeof(d));
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_alloc(ip, "pod-a", &a, &e) == 0);
	CHECK_STR(S(a), "10.244.0.2"); /* .0 network, .1 gateway */
	CHECK(ipam_alloc(ip, "pod-a", &x, &e) == 0);
	CHECK(x.s_addr == a.s_addr); /* idempotent */
	CHECK(ipam_alloc(ip, "pod-b", &b, &e) == 0);
	CHECK_STR(S(b), "10.244.0.3");
	CHECK(ipam_used(ip) == 2);
	CHECK_STR((s = get_file(d, "10.244.0.2")), "pod-a\n");
	free(s);

	/* A freed address is not handed out again at once. */
	CHECK(ipam_release(ip, "pod-a", &e) == 0);
	CHECK(!exists(d, "10.244.0.2"));
	CHECK(ipam_release(ip, "pod-a", &e) == 0); /* absent is fine */
	CHECK(ipam_lookup(ip, "pod-a", &x) == -ENOENT);
	CHECK(ipam_alloc(ip, "pod-c", &c, &e) == 0);
	CHECK_STR(S(c), "10.244.0.4");
	CHECK(ipam_lookup(ip, "pod-c", &x) == 0 && x.s_addr == c.s_addr);

	CHECK(ipam_alloc(ip, "", &x, &e) == -EINVAL);
	CHECK(ipam_alloc(ip, "has space", &x, &e) == -EINVAL);
	CHECK_HAS(e.msg, "invalid owner");
	ipam_close(ip);
}

static void test_exhaustion_and_wrap(void)
{
	struct svc_err e = {0};
	struct ipam *ip;
	struct in_addr x;
	char d[128], owner[16];

	dir_for("small", d, sizeof(d));
	/* /29: .2 to .6 can be handed out. */
	CHECK(ipam_open(d, A("10.1.0.0"), 29, &ip, &e) == 0);
	for (int i = 0; i < 5; i++) {
		snprintf(owner, sizeof(owner), "p%d", i);
		CHECK(ipam_alloc(ip, owner, &x, &e) == 0);
	}
	CHECK(ipam_alloc(ip, "one-too-many", &x, &e) == -ENOSPC);
	CHECK(e.code == ENOSPC);
	CHECK_HAS(e.msg, "no address left in 10.1.0.0/29 for one-too-many");
	CHECK(!exists(d, "10.1.0.7") && !exists(d, "10.1.0.1")); /* broadcast, gateway */

	/* Free .3 then .5: the next goes after the last (.6), so wraps to .3. */
	CHECK(ipam_release(ip, "p1", &e) == 0);
	CHECK(ipam_release(ip, "p3", &e) == 0);
	CHECK(ipam_alloc(ip, "q1", &x, &e) == 0);
	CHECK_STR(S(x), "10.1.0.3");
	CHECK(ipam_alloc(ip, "q2", &x, &e) == 0);
	CHECK_STR(S(x), "10.1.0.5");
	ipam_close(ip);
}

static void test_claim(void)
{
	struct svc_err e = {0};
	struct ipam *ip;
	struct in_addr x;
	char d[128];

	dir_for("claim", d, sizeof(d));
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_claim(ip, "pod-x", A("10.244.0.9"), &e) == 0);
	CHECK(ipam_claim(ip, "pod-x", A("10.244.0.9"), &e) == 0);
	CHECK(ipam_claim(ip, "pod-y", A("10.244.0.9"), &e) == -EEXIST);
	CHECK_HAS(e.msg, "10.244.0.9 for pod-y: held by pod-x");
	CHECK(ipam_claim(ip, "pod-y", A("10.245.0.9"), &e) == -EINVAL);
	CHECK_HAS(e.msg, "10.245.0.9 is not an assignable address of 10.244.0.0/24");
	CHECK(ipam_claim(ip, "pod-y", A("10.244.0.1"), &e) == -EINVAL);
	CHECK(ipam_claim(ip, "pod-y", A("10.244.0.255"), &e) == -EINVAL);
	CHECK(ipam_claim(ip, "pod-y", A("10.244.0.0"), &e) == -EINVAL);

	/* The namespace is the truth: pod-x moves, its old file goes. */
	CHECK(ipam_claim(ip, "pod-x", A("10.244.0.20"), &e) == 0);
	CHECK(!exists(d, "10.244.0.9") && exists(d, "10.244.0.20"));
	CHECK(ipam_lookup(ip, "pod-x", &x) == 0);
	CHECK_STR(S(x), "10.244.0.20");
	CHECK(ipam_used(ip) == 1);
	/* Allocation skips what was claimed. */
	CHECK(ipam_claim(ip, "pod-z", A("10.244.0.2"), &e) == 0);
	CHECK(ipam_alloc(ip, "pod-w", &x, &e) == 0);
	CHECK_STR(S(x), "10.244.0.3");
	ipam_close(ip);
}

static bool keep_even(const char *owner, void *ctx)
{
	(*(int *)ctx)++;
	return (owner[strlen(owner) - 1] - '0') % 2 == 0;
}

static void test_retain_and_reopen(void)
{
	struct svc_err e = {0};
	struct ipam *ip;
	struct in_addr x;
	char d[128], owner[16];
	int calls = 0;

	dir_for("retain", d, sizeof(d));
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	for (int i = 0; i < 6; i++) {
		snprintf(owner, sizeof(owner), "p%d", i);
		CHECK(ipam_alloc(ip, owner, &x, &e) == 0);
	}
	CHECK(ipam_retain(ip, keep_even, &calls, &e) == 3);
	CHECK(calls == 6);
	CHECK(ipam_used(ip) == 3);
	CHECK(ipam_lookup(ip, "p1", &x) == -ENOENT);
	CHECK(!exists(d, "10.244.0.3") && exists(d, "10.244.0.4"));
	ipam_close(ip);

	/* Reopen: the same owners, and round-robin goes on after .7 (p5's,
	 * freed, but the last handed out is what counts). */
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_used(ip) == 3);
	CHECK(ipam_lookup(ip, "p4", &x) == 0);
	CHECK_STR(S(x), "10.244.0.6");
	CHECK(ipam_alloc(ip, "p6", &x, &e) == 0);
	CHECK_STR(S(x), "10.244.0.7"); /* after the newest file, .6 */
	CHECK(ipam_alloc(ip, "p7", &x, &e) == 0);
	CHECK_STR(S(x), "10.244.0.8");
	ipam_close(ip);

	/* Persistence of the last allocation: .8 is newest now. */
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_alloc(ip, "p8", &x, &e) == 0);
	CHECK_STR(S(x), "10.244.0.9");
	ipam_close(ip);

	/* The newest file counts, not the highest address: with .4 newer than
	 * the rest (as after a wrap-around), the next is .5, not .10. */
	CHECK(touch_later(d, "10.244.0.4") == 0);
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_alloc(ip, "p9", &x, &e) == 0);
	CHECK_STR(S(x), "10.244.0.5");
	ipam_close(ip);
}

static void test_garbage(void)
{
	struct svc_err e = {0};
	struct ipam *ip;
	struct in_addr x;
	char d[128], p[256], big[600];

	dir_for("garbage", d, sizeof(d));
	CHECK(mkdir_p(d, 0700) == 0);
	put_file(d, "10.244.0.5", "good-owner\n");
	put_file(d, "10.244.0.6", "no-newline");
	put_file(d, "hello", "x\n");
	put_file(d, "10.244.0.300", "x\n");
	put_file(d, "010.244.0.7", "x\n");  /* not canonical */
	put_file(d, "10.244.1.5", "x\n");   /* outside the CIDR */
	put_file(d, "10.244.0.1", "x\n");   /* the gateway */
	put_file(d, "10.244.0.255", "x\n"); /* broadcast */
	put_file(d, "10.244.0.10", "");	    /* no owner */
	put_file(d, "10.244.0.11", "two words\n");
	put_file(d, "10.244.0.12", "a\nb\n");
	put_file(d, "10.244.0.13", "\x01\x02\xff");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_file(d, "10.244.0.14", big);
	put_file(d, "10.244.0.15", "good-owner\n"); /* a second file of one owner */
	put_file(d, ".tmp-99-10.244.0.16", "half-written\n");
	snprintf(p, sizeof(p), "%s/10.244.0.17", d);
	CHECK(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/10.244.0.18", d);
	CHECK(symlink("/etc/passwd", p) == 0);

	warnings = 0;
	CHECK(ipam_open(d, A("10.244.0.0"), 24, &ip, &e) == 0);
	CHECK(ipam_used(ip) == 2);
	CHECK(warnings == 14);
	CHECK(!exists(d, ".tmp-99-10.244.0.16"));
	CHECK(ipam_lookup(ip, "good-owner", &x) == 0);
	CHECK_STR(S(x), "10.244.0.5"); /* the lower of the two */
	CHECK(ipam_lookup(ip, "no-newline", &x) == 0);
	CHECK_STR(S(x), "10.244.0.6");
	/* Skipped files are free addresses; allocation writes over them. */
	CHECK(ipam_claim(ip, "new-owner", A("10.244.0.10"), &e) == 0);
	char *s = get_file(d, "10.244.0.10");
	CHECK_STR(s, "new-owner\n");
	free(s);
	/* Not over a directory, though: that one stays unusable. */
	CHECK(ipam_claim(ip, "other", A("10.244.0.17"), &e) < 0);
	CHECK_HAS(e.msg, "10.244.0.17");
	ipam_close(ip);
}

static void test_bad_open(void)
{
	struct svc_err e = {0};
	struct ipam *ip = NULL;
	char d[128];

	dir_for("bad", d, sizeof(d));
	CHECK(ipam_open(d, A("10.244.0.0"), 31, &ip, &e) == -EINVAL);
	CHECK(ipam_open(d, A("10.244.0.1"), 24, &ip, &e) == -EINVAL);
	CHECK_HAS(e.msg, "host bits set");
	CHECK(ipam_open("/proc/self/nonexistent/x", A("10.244.0.0"), 24, &ip, &e) < 0);
	CHECK(ip == NULL);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/test_ipam.XXXXXX");
	if (!mkdtemp(root))
		return 1;
	svc_log_set(count_warn, SVC_LOG_WARN);
	test_alloc_and_round_robin();
	test_exhaustion_and_wrap();
	test_claim();
	test_retain_and_reopen();
	test_garbage();
	test_bad_open();
	remove_tree(AT_FDCWD, root);
	return UNIT_DONE("test_ipam");
}
